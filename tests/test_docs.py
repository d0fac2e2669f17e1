"""The docs a maintainer follows are in the repository and match the code they describe."""

import os
import re
import typing
from pathlib import Path

from pydantic import BaseModel

from app.main import create_app
from app.settings import Settings
from gxnor_core import ARCHITECTURES, DATASETS, OPTIMIZERS, PRESETS, WINDOWS
from gxnor_core.config import DEVICES, LOSSES, ExperimentConfig

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, info in model.model_fields.items():
        sub = info.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            out += _fields(sub, f"{prefix}{name}.")
        else:
            out.append(prefix + name)
    return out


def test_config_reference_covers_every_field_and_every_registered_choice():
    text = (DOCS / "CONFIG.md").read_text()
    fields = _fields(ExperimentConfig)
    assert len(fields) > 25
    assert [f for f in fields if f"`{f}`" not in text] == []
    choices = [*DATASETS, *ARCHITECTURES, *WINDOWS, *OPTIMIZERS, *LOSSES, *DEVICES, *PRESETS]
    assert [c for c in choices if f"`{c}`" not in text] == []
    for name, entry in DATASETS.items():  # the split table's default-val_fraction row
        train, val, test = entry.split_sizes(0.1)
        row = [line for line in text.splitlines() if line.startswith("| ") and f"`{name}`" in line.split("|")[1]]
        assert any(all(f"{n:,}".replace(",", " ") in line for n in (train, val, test)) for line in row), name


def test_api_guide_covers_every_route(tmp_path):
    text = (DOCS / "API.md").read_text()
    spec = create_app(Settings(data_dir=tmp_path / "data")).openapi()
    routes = [(method.upper(), path) for path, ops in spec["paths"].items() for method in ops]
    assert len(routes) > 25
    # Each route is written `METHOD /path` (with OpenAPI's parameter names) at least once.
    missing = [f"{m} {p}" for m, p in routes if not re.search(rf"`{m} {re.escape(p)}[`?]", text)]
    assert missing == []


def test_readme_links_every_doc_and_every_cited_doc_exists():
    readme = (ROOT / "README.md").read_text()
    assert [d.name for d in sorted(DOCS.glob("*.md")) if f"docs/{d.name}" not in readme] == []
    cited = set()
    for path in _sources():
        cited |= set(re.findall(r"docs/([A-Z_]+\.md)", path.read_text(errors="replace")))
    assert sorted(c for c in cited if not (DOCS / c).is_file()) == []


def test_no_source_cites_a_document_outside_the_repository():
    outside = re.compile(r"\b(SPEC|METHOD|PERF|UX|STYLE) ?§|(?<!docs/)\b(SPEC|METHOD|PERF|UX|STYLE)\.md")
    found = [f"{p.relative_to(ROOT)}:{i}" for p in _sources() if p.name != "test_docs.py"
             for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1) if outside.search(line)]
    assert found == []


def _sources() -> typing.Iterator[Path]:
    """The repository's own text files (not the virtual environment, data or test output)."""
    skip = {".venv", ".git", "test-artifacts", "gxnor-data", "runs", "node_modules", "__pycache__"}
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in skip and not d.startswith(".")]
        for name in files:
            if name.endswith((".py", ".js", ".html", ".css", ".md", ".toml", ".yml")):
                yield Path(folder) / name
