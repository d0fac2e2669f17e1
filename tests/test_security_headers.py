"""Security headers on every kind of response, /docs without a CDN or an inline script, HEAD, and 405's Allow."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings

ADMIN = "gx_security-test-admin"
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
DIRECTIVES = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'", "'unsafe-inline'"},
    "img-src": {"'self'", "data:", "blob:"},
    "connect-src": {"'self'"},
    "frame-ancestors": {"'none'"},
    "base-uri": {"'none'"},
    "form-action": {"'self'"},
    "object-src": {"'none'"},
}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return create_app(Settings(data_dir=tmp_path_factory.mktemp("security") / "data", admin_token=ADMIN,
                               max_body_bytes=1024))


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, headers=AS_ADMIN) as c:
        yield c


def csp(response) -> dict[str, set[str]]:
    policy = response.headers.get("content-security-policy", "")
    out = {}
    for part in filter(None, (p.strip() for p in policy.split(";"))):
        name, *values = part.split()
        out[name] = set(values)
    return out


def assert_secured(response):
    h = response.headers
    where = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
    assert h.get("x-content-type-options") == "nosniff", where
    assert h.get("referrer-policy") == "no-referrer", where
    assert h.get("x-frame-options") == "DENY", where
    assert len(h.get_list("content-security-policy")) == 1, where
    assert csp(response) == DIRECTIVES, where


# (method, path, headers, body, expected status): one of each kind of response the service gives.
RESPONSES = [
    ("GET", "/api/v1/runs", None, None, 200),  # JSON API
    ("GET", "/healthz", None, None, 200),
    ("GET", "/openapi.json", None, None, 200),
    ("GET", "/", None, None, 200),  # the UI shell
    ("GET", "/static/js/app.js", None, None, 200),  # static files
    ("GET", "/static/css/app.css", None, None, 200),
    ("GET", "/static/vendor/plotly.min.js", None, None, 200),
    ("GET", "/docs", None, None, 200),
    ("GET", "/api/v1/runs", {"Authorization": ""}, None, 401),
    ("GET", "/api/v1/runs", {"Authorization": "Bearer gx_wrong"}, None, 401),
    ("GET", "/no/such/page", None, None, 404),
    ("GET", "/static/no-such-file.js", None, None, 404),
    ("GET", "/api/v1/runs/987654", None, None, 404),
    ("DELETE", "/healthz", None, None, 405),
    ("PUT", "/api/v1/runs", None, None, 405),
    ("GET", "/api/v1/runs?limit=-5", None, None, 422),
    ("POST", "/api/v1/runs", {"Content-Type": "application/json"}, b"{" + b" " * 2000 + b"}", 413),  # BodyLimit
]


@pytest.mark.parametrize(("method", "path", "headers", "body", "status"), RESPONSES,
                         ids=[f"{m} {p} {s}" for m, p, _, _, s in RESPONSES])
def test_every_kind_of_response_carries_the_security_headers(client, method, path, headers, body, status):
    response = client.request(method, path, headers=headers, content=body)
    assert response.status_code == status, response.text[:300]
    assert_secured(response)


def test_policy_allows_no_inline_script_no_eval_and_no_other_host(client):
    policy = csp(client.get("/"))
    assert policy["script-src"] == {"'self'"} and "'unsafe-eval'" not in str(policy)
    assert not any(v.startswith(("http", "*", "//")) for values in policy.values() for v in values)


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.scripts: list[tuple[dict, str]] = []
        self.links: list[dict] = []
        self.handlers: list[str] = []
        self._in_script: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.handlers += [k for k in attrs if k.startswith("on")]
        if tag == "script":
            self._in_script = attrs
            self.scripts.append((attrs, ""))
        elif tag == "link":
            self.links.append(attrs)

    def handle_data(self, data):
        if self._in_script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None


def _same_origin(url: str) -> bool:
    return url.startswith("/") and not url.startswith("//")


@pytest.mark.parametrize("page", ["/docs", "/"])
def test_pages_load_only_same_origin_scripts_and_have_no_inline_script(client, page):
    response = client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    tags = _Tags()
    tags.feed(response.text)
    assert tags.scripts, "no script at all?"
    for attrs, body in tags.scripts:
        assert attrs.get("src") and _same_origin(attrs["src"]), attrs
        assert not body.strip(), f"inline script in {page}: {body[:200]}"
    assert not tags.handlers, f"inline event handlers in {page}: {tags.handlers}"
    for link in tags.links:
        href = link.get("href", "")
        assert _same_origin(href) or href.startswith("data:"), link
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", response.text), "a reference to another host"
    # Every script and stylesheet the page loads is served, with a type that nosniff accepts.
    for url in [a["src"] for a, _ in tags.scripts] + [lk["href"] for lk in tags.links if lk.get("rel") == "stylesheet"]:
        asset = client.get(url)
        assert asset.status_code == 200, url
        kind = asset.headers["content-type"]
        assert ("javascript" in kind) if url.endswith(".js") else kind.startswith("text/css"), (url, kind)
        assert_secured(asset)


def test_docs_start_swagger_ui_from_a_static_script_on_the_local_openapi(client):
    tags = _Tags()
    tags.feed(client.get("/docs").text)
    sources = [a["src"] for a, _ in tags.scripts]
    bundle = [s for s in sources if s.endswith("swagger-ui-bundle.js")]
    assert bundle, sources
    assert "SwaggerUIBundle" in client.get(bundle[0]).text  # the real Swagger UI, served locally
    starters = [client.get(s).text for s in sources if s not in bundle]
    assert any("SwaggerUIBundle(" in js and "/openapi.json" in js for js in starters), sources
    css = [lk["href"] for lk in tags.links if lk.get("rel") == "stylesheet"]
    assert any(c.endswith("swagger-ui.css") and ".swagger-ui" in client.get(c).text for c in css), css
    # Not the package's demo page (it loads a petstore from another host), nor anything outside the package.
    for other in ("index.html", "swagger-initializer.js", "..%2F..%2F__init__.py"):
        assert client.get(f"/static/vendor/swagger-ui/{other}").status_code == 404, other
    # FastAPI's own CDN-based pages are gone.
    assert client.get("/redoc").status_code == 404
    assert client.get("/docs/oauth2-redirect").status_code == 404


@pytest.mark.parametrize("path", ["/", "/healthz", "/docs", "/static/js/app.js", "/static/css/app.css",
                                  "/static/vendor/plotly.min.js", "/openapi.json"])
def test_head_works_where_get_does(client, path):
    get = client.get(path)
    head = client.head(path)
    assert get.status_code == 200
    assert head.status_code == 200, (path, head.status_code, head.text[:200])
    assert head.headers["content-type"] == get.headers["content-type"]
    assert_secured(head)


def _flat_routes(app):
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: app.routes already lists the included routers' routes
        return list(app.routes)
    return list(iter_route_contexts(app.routes))


def test_every_405_carries_a_correct_allow_header(app, client):
    routes = [r for r in _flat_routes(app) if getattr(r, "methods", None) and getattr(r, "path", None)]
    assert any(r.path == "/api/v1/runs/{run_id}" for r in routes), "included routers were not walked"
    tried, wrong = 0, []
    for route in routes:
        path = re.sub(r"\{[^}:]+(:[^}]+)?\}", "1", route.path)
        # Every route at this concrete path (several routes may share one: GET and DELETE /runs/{id}).
        expected = set().union(*(r.methods for r in routes if r.path_regex.match(path)))
        for method in METHODS:
            if method in expected:
                continue
            tried += 1
            response = client.request(method, path)
            allow = {m.strip() for m in response.headers.get("allow", "").split(",") if m.strip()}
            if response.status_code != 405 or allow != expected:
                wrong.append(f"{method} {path}: {response.status_code} Allow={response.headers.get('allow')!r}, "
                             f"expected 405 Allow={', '.join(sorted(expected))}")
            else:
                assert_secured(response)
    assert tried > 50
    assert not wrong, "\n".join(wrong)


def test_an_unhandled_error_answers_500_with_the_security_headers(tmp_path):
    """An error no handler turns into a response: still 500 with the headers, and the error still reaches the
    server (which logs it)."""
    broken = create_app(Settings(data_dir=tmp_path / "data", admin_token=ADMIN))

    def boom():
        raise RuntimeError("a bug in a route")

    broken.add_api_route("/api/v1/boom", boom)
    with TestClient(broken, headers=AS_ADMIN, raise_server_exceptions=False) as c:
        response = c.get("/api/v1/boom")
    assert response.status_code == 500 and response.json() == {"detail": "internal server error"}
    assert_secured(response)
    with TestClient(broken, headers=AS_ADMIN) as c, pytest.raises(RuntimeError, match="a bug in a route"):
        c.get("/api/v1/boom")  # not swallowed: it goes on to the server
