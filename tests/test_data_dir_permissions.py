"""The data directory (SQLite file, checkpoints, filesystem queue) is the server's alone: 0700."""

import os
import stat

from app.settings import Settings


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_ensure_dirs_makes_the_data_dir_and_its_subdirs_private_also_when_they_exist(tmp_path):
    old = os.umask(0o022)  # a typical login shell's umask
    try:
        fresh = Settings(data_dir=tmp_path / "fresh")
        fresh.ensure_dirs()
        existing = Settings(data_dir=tmp_path / "old")
        for d in (existing.data_dir, existing.artifacts, *(existing.broker_dir / s for s in ("queue", "processed",
                                                                                               "control"))):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o755)
        os.chmod(existing.broker_dir, 0o755)
        existing.ensure_dirs()
    finally:
        os.umask(old)
    for s in (fresh, existing):
        dirs = [s.data_dir, s.artifacts, s.broker_dir, *(s.broker_dir / sub for sub in ("queue", "processed",
                                                                                         "control"))]
        assert {str(d.relative_to(s.data_dir.parent)): oct(_mode(d)) for d in dirs} == {
            str(d.relative_to(s.data_dir.parent)): oct(0o700) for d in dirs}
