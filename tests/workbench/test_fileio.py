"""workbench.fileio: atomic saves keep the user's file mode and clean up orphans of killed saves."""
from __future__ import annotations

import os
import stat
import time

import pytest

from workbench.fileio import STALE_AFTER_S, atomic_write_text, remove_stale_temps
from workbench.spec import Preset, save_preset

fcntl = pytest.importorskip("fcntl")


@pytest.fixture
def umask_022():
    before = os.umask(0o022)
    yield
    os.umask(before)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_save_keeps_umask_and_an_existing_files_mode(tmp_path, umask_022):
    fresh = tmp_path / "fresh.json"
    save_preset(Preset(name="a"), fresh)
    assert mode(fresh) == 0o644                       # 0o666 less the umask, as `touch` makes it
    kept = tmp_path / "kept.json"
    kept.write_text("{}")
    os.chmod(kept, 0o640)
    save_preset(Preset(name="b"), kept)
    assert mode(kept) == 0o640 and '"name": "b"' in kept.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.json", "kept.json"]


def test_next_save_removes_only_stale_unlocked_temps_of_that_file(tmp_path):
    target = tmp_path / "preset.json"
    old = time.time() - 2 * STALE_AFTER_S

    def temp(name: str, age_s: float | None = None):
        path = tmp_path / name
        path.write_bytes(b"half a preset")
        if age_s is not None:
            os.utime(path, (old, old))
        return path

    orphan_legacy = temp(".preset.json.k2_x9abc.tmp", old)        # the mkstemp names earlier versions left
    orphan = temp(".preset.json.0123456789abcdef.tmp", old)
    fresh = temp(".preset.json.fedcba9876543210.tmp")              # a save happening right now
    live = temp(".preset.json.00000000000000aa.tmp", old)          # a slow writer still holding its lock
    other_file = temp(".other.json.0123456789abcdef.tmp", old)     # another destination's temp
    not_ours = temp(".preset.json.tmp.bak", old)
    fd = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        save_preset(Preset(name="p"), target)
    finally:
        os.close(fd)
    left = {p.name for p in tmp_path.iterdir()}
    assert orphan_legacy.name not in left and orphan.name not in left
    assert {fresh.name, live.name, other_file.name, not_ours.name, "preset.json"} == left
    assert remove_stale_temps(tmp_path) == 2                     # live (now unlocked) and other_file
    assert {p.name for p in tmp_path.iterdir()} == {fresh.name, not_ours.name, "preset.json"}


def test_atomic_write_never_opens_a_planted_link(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "summary.json").symlink_to(outside)
    atomic_write_text(folder / "summary.json", "{}\n")
    assert outside.read_text() == "precious"
    assert not (folder / "summary.json").is_symlink() and (folder / "summary.json").read_text() == "{}\n"
