"""docker-compose.yml: the API is published on loopback only, and no password is written in the file."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_publishes_ports_on_loopback_only():
    services = _compose()["services"]
    published = []
    for name, svc in services.items():
        for port in svc.get("ports", []):
            if isinstance(port, dict):  # the long syntax
                assert port.get("host_ip") in ("127.0.0.1", "::1"), (name, port)
            else:
                assert re.fullmatch(r"(127\.0\.0\.1|\[::1\]):\d+:\d+(/tcp)?", str(port)), (name, port)
            published.append(name)
    assert published == ["api"]


def test_compose_has_no_literal_secret_and_reads_them_from_an_env_file():
    text = (ROOT / "docker-compose.yml").read_text()
    services = _compose()["services"]
    pg_env = services["postgres"]["environment"]
    assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:\?[^}]+\}", pg_env["POSTGRES_PASSWORD"]), pg_env
    # The database URL carries the same variable, not a password of its own.
    urls = re.findall(r"postgresql\+psycopg://[^\s\"']+", text)
    assert urls and all(re.match(r"postgresql\+psycopg://\w+:\$\{POSTGRES_PASSWORD[:?}]", u) for u in urls), urls
    assert re.search(r"GXNOR_ADMIN_TOKEN: \$\{GXNOR_ADMIN_TOKEN", text)
    assert "gxnor:gxnor@" not in text and "POSTGRES_PASSWORD: gxnor" not in text
    example = (ROOT / ".env.example").read_text()
    assert re.search(r"^POSTGRES_PASSWORD=", example, re.M) and re.search(r"^#?\s*GXNOR_ADMIN_TOKEN=", example, re.M)
    ignored = (ROOT / ".gitignore").read_text().split()
    assert ".env" in ignored


def test_the_api_and_every_worker_see_the_datasets_at_the_same_path_on_one_volume():
    compose = _compose()
    services = compose["services"]
    paths = {}
    for name in ("api", "worker"):
        env = services[name]["environment"]
        mounts = dict(reversed(v.split(":")[:2]) for v in services[name]["volumes"])  # path in the container → volume
        paths[name] = (env["GXNOR_DATASETS_DIR"], mounts.get(env["GXNOR_DATASETS_DIR"]))
    assert paths["api"] == paths["worker"] == ("/datasets", "gxnor-datasets"), paths
    assert "gxnor-datasets" in compose["volumes"]
