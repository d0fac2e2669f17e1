"""GXNOR Lab service: settings, database, REST API and the UI it serves."""
