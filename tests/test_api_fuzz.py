"""Property-based API fuzzing with schemathesis against /openapi.json: no server errors, and every
response conforms to its own schema.  Fixed seed and a bounded number of cases per operation in
the suite; `GXNOR_FUZZ_EXAMPLES=500 pytest tests/test_api_fuzz.py` for the long run."""

import os
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.main import create_app
from app.settings import Settings

_data = Path(tempfile.mkdtemp(prefix="gxnor-fuzz-"))
ADMIN = "gx_fuzz-admin-token"
app = create_app(Settings(data_dir=_data, admin_token=ADMIN))
# Not fuzzed: the SSE stream (never ends by design); revoking tokens and rewriting users, which would
# revoke the fuzzer's own token or strip its teams and leave every later case a 401/404 (tests/test_auth.py
# covers both).
schema = (schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path_regex=r".*/events$")
          .exclude(method="DELETE", path_regex=r".*/tokens/.*").exclude(method="PATCH", path_regex=r".*/users/.*"))


@schema.auth()
class AdminToken:
    """The admin's bearer token on every case (schemathesis then knows the security requirement is met)."""

    def get(self, case, ctx):
        return ADMIN

    def set(self, case, data, ctx):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


EXAMPLES = int(os.environ.get("GXNOR_FUZZ_EXAMPLES", "25"))


@schema.parametrize()
@settings(max_examples=EXAMPLES, derandomize=True, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_api_never_errors_and_keeps_its_schema(case):
    # Every check but "schema-valid data is accepted": the server rightly answers 422 to some
    # schema-valid configs (a network too big for its input, a dataset path, the server's caps).
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
