"""Celery workers: run a config through gxnor_core and report every epoch into SQL."""
