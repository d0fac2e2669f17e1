"""Property-based API fuzzing with schemathesis against /openapi.json: no server errors, and every
response conforms to its own schema — on a SQLite file and on a fresh PostgreSQL database (the two answer
some hostile input differently: PostgreSQL cannot store a NUL byte, for one).  Fixed seed and a bounded
number of cases per operation in the suite; `GXNOR_FUZZ_EXAMPLES=500 pytest tests/test_api_fuzz.py` for the
long run (add `-k postgresql` or `-k sqlite` for one database)."""

import os
import tempfile
from contextlib import nullcontext
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.main import create_app
from app.settings import Settings
from tests.pg import fresh_database, new_database_url

pytestmark = pytest.mark.slow  # every operation fuzzed on two databases: about a minute

ADMIN = "gx_fuzz-admin-token"
EXAMPLES = int(os.environ.get("GXNOR_FUZZ_EXAMPLES", "25"))
# The apps are made at import (schemathesis reads their schemas then) but touch no database until their
# fixture starts them: the PostgreSQL database is made only when its test runs.
APPS = {db: create_app(Settings(data_dir=Path(tempfile.mkdtemp(prefix=f"gxnor-fuzz-{db}-")), database_url=url,
                                admin_token=ADMIN))
        for db, url in (("sqlite", None), ("postgresql", new_database_url("gxnor_fuzz")))}


def _without_lifespan(app):
    """The app as schemathesis sees it: schemathesis would start the lifespan itself and keep it until the
    process exits; the fixtures run it instead, so it ends before the database is dropped."""

    async def asgi(scope, receive, send):
        if scope["type"] == "lifespan":
            raise RuntimeError("the fixture runs the lifespan")  # refused before any message: "no lifespan"
        await app(scope, receive, send)

    return asgi


def _started(db: str):
    app = APPS[db]
    url = app.state.settings.database_url
    with fresh_database(url=url) if url else nullcontext(), TestClient(app):  # start-up: migrations, the admin
        yield


@pytest.fixture(scope="module")
def sqlite_started():
    yield from _started("sqlite")


@pytest.fixture(scope="module")
def postgresql_started():
    yield from _started("postgresql")


class AdminToken:
    """The admin's bearer token on every case (schemathesis then knows the security requirement is met)."""

    def get(self, case, ctx):
        return ADMIN

    def set(self, case, data, ctx):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


# Not fuzzed: the SSE stream (never ends by design); revoking tokens and rewriting users, which would
# revoke the fuzzer's own token or strip its teams and leave every later case a 401/404 (tests/test_auth.py
# covers both).
SCHEMAS = {db: schemathesis.openapi.from_asgi("/openapi.json", _without_lifespan(app))
           .exclude(path_regex=r".*/events$").exclude(method="DELETE", path_regex=r".*/tokens/.*")
           .exclude(method="PATCH", path_regex=r".*/users/.*") for db, app in APPS.items()}
for _schema in SCHEMAS.values():
    _schema.auth()(AdminToken)
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))


def _check(case):
    # Every check but "schema-valid data is accepted": the server rightly answers 422 to some
    # schema-valid configs (a network too big for its input, a dataset path, the server's caps).
    case.call_and_validate(excluded_checks=[positive_data_acceptance])


@SCHEMAS["sqlite"].parametrize()
@FUZZ
def test_api_never_errors_and_keeps_its_schema_on_sqlite(case, sqlite_started):
    _check(case)


@SCHEMAS["postgresql"].parametrize()
@FUZZ
def test_api_never_errors_and_keeps_its_schema_on_postgresql(case, postgresql_started):
    _check(case)
