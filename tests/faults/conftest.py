from tests.integration.conftest import pg_url, procs, redis_url  # noqa: F401 - shared fixtures
