"""Stored configs keep the derivative they were made with: ``activations.overlap: "sum"``

Until this revision the activation's derivative summed the windows of the steps at ±s_k, so where they overlap
(r < a for the ``rect`` and ``tri`` windows, always for ``gauss`` and ``exp``) it was the sum of both.  The config
gained ``activations.overlap`` with the paper's form, ``paper`` (one window per |x|), as its default
(docs/METHOD.md §2, docs/CONFIG.md).  So that a stored config keeps its meaning — a queued run trains as it was
submitted, a run resumed after a worker loss continues as it began, a clone or a sweep's base repeats what was
measured — every run's config (``runs.config``) and every sweep's base config (``sweeps.spec["base"]``) that
does not name an overlap gets ``"sum"``, the only derivative there was.  A config without an ``activations``
section gets one holding just that key.

Downgrade removes the key again (the older code refuses unknown keys).  A run submitted with ``"paper"`` after
the upgrade then reads as the summed form, the only one the older code has.  A sweep submitted after the
upgrade that *varies* ``activations.overlap`` keeps that in its stored grid or list (it is shown, never
re-expanded); its runs lose the key like every run.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BEFORE = "sum"  # the derivative every config stored before this revision was trained with
CHUNK = 500  # rows read and written at once


def with_overlap(config: object) -> dict | None:
    """``config`` with ``activations.overlap: "sum"`` added, or None when it needs no change (it names an
    overlap already, or is not a config object)."""
    if not isinstance(config, dict):
        return None
    activations = config.get("activations", {})
    if not isinstance(activations, dict) or "overlap" in activations:
        return None
    return {**config, "activations": {**activations, "overlap": BEFORE}}


def without_overlap(config: object) -> dict | None:
    """``config`` without ``activations.overlap``, or None when it has none."""
    if not isinstance(config, dict) or not isinstance(config.get("activations"), dict) \
            or "overlap" not in config["activations"]:
        return None
    return {**config, "activations": {k: v for k, v in config["activations"].items() if k != "overlap"}}


def _in_base(change: Callable[[object], dict | None]) -> Callable[[object], dict | None]:
    """The same change applied to a sweep spec's ``base``."""
    def spec_change(spec: object) -> dict | None:
        if not isinstance(spec, dict):
            return None
        base = change(spec.get("base", {}))
        return None if base is None else {**spec, "base": base}
    return spec_change


def _rewrite(table: str, column: str, change: Callable[[object], dict | None]) -> None:
    """Apply ``change`` to ``column`` of every row of ``table``, CHUNK rows at a time (by id)."""
    bind = op.get_bind()
    t = sa.table(table, sa.column("id", sa.Integer), sa.column(column, sa.JSON))
    col = t.c[column]
    write = sa.update(t).where(t.c.id == sa.bindparam("k")).values({column: sa.bindparam("v")})
    last = 0
    while rows := bind.execute(sa.select(t.c.id, col).where(t.c.id > last).order_by(t.c.id).limit(CHUNK)).all():
        last = rows[-1][0]
        changed = [{"k": row_id, "v": new} for row_id, value in rows if (new := change(value)) is not None]
        if changed:
            bind.execute(write, changed)


def upgrade() -> None:
    _rewrite("runs", "config", with_overlap)
    _rewrite("sweeps", "spec", _in_base(with_overlap))


def downgrade() -> None:
    _rewrite("runs", "config", without_overlap)
    _rewrite("sweeps", "spec", _in_base(without_overlap))
