"""The browser UI's type check: TypeScript (pinned by ``scripts/bootstrap --dev``) reads frontend/'s ES modules and
their JSDoc types (frontend/tsconfig.json: strict) and passes; a type error planted in a copy fails it.  There is no
build step: the check emits nothing and the browser loads frontend/js as it is (docs/DESIGN.md, "Browser UI")."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

try:
    from tests.services import missing
except ImportError:  # plain `pytest` puts tests/ itself on sys.path, not the repository root
    from services import missing

ROOT = Path(__file__).resolve().parents[1]
FRONTEND = ROOT / "frontend"
TSC = ROOT / ".venv" / "node_modules" / "typescript" / "bin" / "tsc"


def _node() -> str | None:
    """The node on PATH, else the one Playwright's driver ships (the dev extra installs Playwright)."""
    node = shutil.which("node")
    if node:
        return node
    try:
        import playwright
    except ImportError:
        return None
    bundled = Path(playwright.__file__).parent / "driver" / "node"
    return str(bundled) if bundled.is_file() else None


def _tsc(project: Path) -> subprocess.CompletedProcess:
    node = _node()
    if not TSC.is_file() or node is None:
        missing("no TypeScript in .venv (or no node) for the UI's type check: run `scripts/bootstrap --dev` "
                "(it needs npm), as scripts/test does")
    return subprocess.run([node, str(TSC), "-p", str(project), "--pretty", "false"],
                          capture_output=True, text=True, timeout=180)


def test_every_module_is_type_checked():
    modules = sorted(FRONTEND.glob("js/**/*.js"))
    assert len(modules) > 20
    assert [str(p.relative_to(FRONTEND)) for p in modules if not p.read_text().startswith("// @ts-check\n")] == []


def test_the_frontend_type_checks():
    result = _tsc(FRONTEND)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_type_error_fails_the_check(tmp_path):
    copy = tmp_path / "frontend"
    shutil.copytree(FRONTEND, copy)
    cards = copy / "js" / "views" / "run" / "cards.js"
    # A misspelt field of the API's Run (frontend/js/types.d.ts): plain JavaScript would render `undefined`.
    cards.write_text(cards.read_text() + "\n/** @param {import('../../types').Run} r */\n"
                     "export const epochsDone = (r) => r.progress.epochs_dne;\n")
    result = _tsc(copy)
    assert result.returncode != 0
    assert "cards.js" in result.stdout and "epochs_dne" in result.stdout, result.stdout
