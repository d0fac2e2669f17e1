"""The layering and the lifecycle's single owner, checked on the source (docs/DESIGN.md, "Run lifecycle"):

- imports run one way, worker → app → gxnor_core: no module under app/ imports worker;
- ``Run.status`` is written only by app/lifecycle.py.
"""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIFECYCLE = ROOT / "app" / "lifecycle.py"


def sources(*packages: str) -> list[Path]:
    return sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py"))


def worker_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import of the worker package: import statements and importlib calls."""
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        elif (isinstance(node, ast.Call) and _name(node.func) in ("import_module", "__import__") and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names = [node.args[0].value]
        found += [(node.lineno, n) for n in names if n == "worker" or n.startswith("worker.")]
    return found


def _name(func: ast.AST) -> str | None:
    """The called name: ``f`` of ``f(…)`` or of ``x.y.f(…)``."""
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _statement_table(node: ast.AST) -> str | None:
    """For ``update(T)…values(…)`` / ``insert(T)…``: the name of T, following the method chain down to the
    ``update``/``insert`` call; None when the chain does not start there (a statement kept in a variable)."""
    while isinstance(node, ast.Call | ast.Attribute):
        if isinstance(node, ast.Call) and _name(node.func) in ("update", "insert") and node.args:
            target = node.args[0]
            if isinstance(target, ast.Attribute):  # Run.__table__
                target = target.value
            return target.id if isinstance(target, ast.Name) else None
        node = node.func if isinstance(node, ast.Call) else node.value
    return None


def _sets_status(call: ast.Call) -> bool:
    """``status=…``, ``**{"status": …}``, or a positional ``{"status": …}`` / ``{Run.status: …}``."""
    dicts = [k.value for k in call.keywords if k.arg is None and isinstance(k.value, ast.Dict)]
    dicts += [a for a in call.args if isinstance(a, ast.Dict)]
    keys = [k for d in dicts for k in d.keys if k is not None]
    return any(k.arg == "status" for k in call.keywords) or any(
        (isinstance(k, ast.Constant) and k.value == "status") or (isinstance(k, ast.Attribute) and k.attr == "status")
        for k in keys)


_RAW_SQL = re.compile(r"\b(update\s+runs\b.*\bset\b.*\bstatus|insert\s+into\s+runs\b)", re.I | re.S)


def status_writes(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) of every write of a run's status in the code."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _name(node.func)
            if name == "values" and isinstance(node.func, ast.Attribute) and _sets_status(node) \
                    and _statement_table(node.func.value) in ("Run", None):
                found.append((node.lineno, "update(Run).values(status=…)"))
            elif name == "Run" and _sets_status(node):
                found.append((node.lineno, "Run(status=…)"))
            elif name in ("fenced", "_write") and _sets_status(node):
                found.append((node.lineno, "a lease write of status"))
            elif name == "setattr" and len(node.args) > 1 and isinstance(node.args[1], ast.Constant) \
                    and node.args[1].value == "status":
                found.append((node.lineno, "setattr(…, 'status', …)"))
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for sub in ast.walk(t):
                    if isinstance(sub, ast.Attribute) and sub.attr == "status":
                        found.append((node.lineno, "….status = …"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _RAW_SQL.search(node.value):
            found.append((node.lineno, "raw SQL writing runs"))
    return found


def _parse(path: Path) -> ast.AST:
    return ast.parse(path.read_text(), filename=str(path))


def test_no_module_of_app_imports_worker():
    offenders = [f"{p.relative_to(ROOT)}:{line} imports {mod}"
                 for p in sources("app") for line, mod in worker_imports(_parse(p))]
    assert offenders == [], "app/ must not import worker/ (imports run worker → app → gxnor_core):\n" + \
        "\n".join(offenders)


def test_run_status_is_written_only_by_the_lifecycle_module():
    offenders = [f"{p.relative_to(ROOT)}:{line}: {what}"
                 for p in sources("app", "worker", "gxnor_cli") if p != LIFECYCLE
                 for line, what in status_writes(_parse(p))]
    assert offenders == [], "only app/lifecycle.py may write Run.status; found:\n" + "\n".join(offenders)


def test_the_lifecycle_module_is_where_the_status_writes_are():
    """The scan finds the real writes (so an empty result elsewhere means something)."""
    assert len(status_writes(_parse(LIFECYCLE))) >= 6


@pytest.mark.parametrize("code", [
    "session.execute(update(Run).where(Run.id == 1).values(status='failed'))",
    "update(Run).values(status='queued', lease_expires_at=None)",
    "stmt = sa.update(Run.__table__).where(x).values(**{'status': 'cancelled'})",
    "session.execute(update(Run).values({Run.status: 'failed'}))",
    "stmt.values(status='failed')",  # a statement built elsewhere: counted, to be safe
    "session.add(Run(project=p, name='x', status='running'))",
    "lease.fenced(s, status='succeeded')",
    "run.status = 'cancelled'",
    "self.run.status: str = 'failed'",
    "setattr(run, 'status', 'failed')",
    "session.execute(text('UPDATE runs SET status = :s WHERE id = :i'))",
    "conn.exec_driver_sql('insert into runs (status) values (1)')",
])
def test_the_status_scan_catches_each_way_of_writing_it(code):
    assert status_writes(ast.parse(textwrap.dedent(code))), code


@pytest.mark.parametrize("code", [
    "update(Team).where(Team.id == 1).values(name='x')",
    "update(Sweep).values(status='x')",  # another table
    "select(Run.id).where(Run.status == 'queued')",
    "bar.set_postfix(status=run['status'])",
    "print({'id': run['id'], 'status': run['status']})",
    "JSONResponse(status_code=503, content={})",
    "text('SELECT status FROM runs')",
])
def test_the_status_scan_leaves_reads_and_other_tables_alone(code):
    assert status_writes(ast.parse(code)) == [], code


@pytest.mark.parametrize("code", ["import worker.runner", "from worker.tasks import celery_app", "import worker",
                                  "importlib.import_module('worker.runner')"])
def test_the_import_scan_catches_each_way_of_importing_worker(code):
    assert worker_imports(ast.parse(code)), code


def test_the_import_scan_leaves_other_names_alone():
    assert worker_imports(ast.parse("import workers\nfrom app.worker_pool import x\nfrom . import worker")) == []
