"""Suite-wide test set-up: Qt offscreen, isolated user folders, the shared MNIST copy, and Python's
cyclic garbage collector on the main thread only (automatic collection off; a collection between
tests, and from a timer while a Qt test runs the event loop: tests/ui/conftest.py)."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--headed", action="store_true", help="show Qt windows instead of offscreen")


_COLLECTOR = None


def pytest_configure(config: pytest.Config) -> None:
    # Set here, not only in the Makefile, so a bare `pytest` also runs headless.
    if not config.getoption("--headed"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ.setdefault("PYTHONHASHSEED", "0")
    # A Qt object left in a reference cycle by one test must not be destroyed by an automatic
    # collection on another test's training thread (a hang or a segfault: ui/gui_gc.py).
    global _COLLECTOR
    from ui.gui_gc import CyclicCollector

    _COLLECTOR = CyclicCollector()


def pytest_unconfigure(config: pytest.Config) -> None:
    if _COLLECTOR is not None:
        _COLLECTOR.restore()


@pytest.fixture(scope="session")
def main_thread_gc():
    """The suite's :class:`ui.gui_gc.CyclicCollector` (automatic collection is off)."""
    return _COLLECTOR


@pytest.fixture(autouse=True)
def _collect_garbage_between_tests(main_thread_gc) -> Iterator[None]:
    """After each test (its threads joined, its windows closed), collect what is due, here on the
    main thread."""
    yield
    main_thread_gc.collect_due()


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real user's runs, data or settings folders."""
    base = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("AFWB_RUNS", str(base / "runs"))
    monkeypatch.setenv("AFWB_DATA", str(base / "data"))
    monkeypatch.setenv("AFWB_CONFIG", str(base / "config"))


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Tiny models on a shared 2-core machine: one intra-op thread avoids oversubscription stalls."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _find_shared_mnist() -> Path | None:
    env = os.environ.get("AFWB_TEST_MNIST")
    candidates = [Path(env)] if env else []
    candidates += [REPO.parent / "shared" / "data" / "mnist", REPO.parent.parent / "shared" / "data" / "mnist"]
    for path in candidates:
        if (path / "train-images-idx3-ubyte.gz").exists() or (path / "train-images-idx3-ubyte").exists():
            return path
    return None


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """The folder with the four standard MNIST IDX files (../shared/data/mnist beside the repo)."""
    path = _find_shared_mnist()
    if path is None:
        pytest.skip("real MNIST IDX files not found beside the repository (../shared/data/mnist); set AFWB_TEST_MNIST")
    return path


# Damaged run folders as the tester found them (reliability report, D2): file name, content, and a
# piece of the reason the runs list must give. Every one of these stopped `runs` or the app.
DAMAGED_RUN_FILES = {
    "summary-list": ("summary.json", "[]", "must be a JSON object"),
    "summary-string": ("summary.json", '"finished"', "must be a JSON object"),
    "summary-deep": ("summary.json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    "run-json-deep": ("run.json", "[" * 3_000 + "]" * 3_000, "nested too deeply"),
    "run-json-list": ("run.json", "[]", "must hold a JSON object"),
    "accuracy-text": ("summary.json", {"best_val_accuracy": "high"}, "best_val_accuracy must be a number"),
    "accuracy-list": ("summary.json", {"best_val_accuracy": [1]}, "best_val_accuracy must be a number"),
    "seconds-text": ("summary.json", {"seconds": "abc"}, "seconds must be a number"),
    "depth-list": ("summary.json", {"learned_depth": [1, 2]}, "learned_depth must be an object"),
    "depth-text": ("summary.json", {"learned_depth": {"a": "x"}}, "learned_depth.a must be a number"),
    "status-number": ("summary.json", {"status": 5, "preset_name": None}, "status must be one of"),
    "huge-number": ("summary.json", {"steps": 1, "seconds": 10**400}, "seconds is too large"),
    "summary-binary": ("summary.json", b"\xff\xfe\x00garbage", "is not UTF-8"),
}


@pytest.fixture
def make_damaged_runs():
    """``make(root) -> {folder: reason fragment}``: one good run plus every kind of damaged run of
    :data:`DAMAGED_RUN_FILES` under ``root`` (each with a good preset.json)."""
    import json

    from workbench.events import RunSummary
    from workbench.presets import load_builtin
    from workbench.spec import save_preset

    def make(root: Path) -> dict[Path, str]:
        good = RunSummary(status="finished", preset_name="good", task="classification", device="cpu",
                          epochs_completed=2, steps=20, seconds=3.0, best_val_accuracy=0.9, best_epoch=1).to_dict()
        out: dict[Path, str] = {}
        for name, (file, content, reason) in [("good", ("summary.json", {}, "")), *DAMAGED_RUN_FILES.items()]:
            run = root / f"20990101-000000-{name}"
            run.mkdir(parents=True)
            save_preset(load_builtin("z-digits"), run / "preset.json")
            (run / "summary.json").write_text(json.dumps(good))
            if isinstance(content, dict):
                content = json.dumps({**good, **content})
            if isinstance(content, str):
                content = content.encode("utf-8")
            (run / file).write_bytes(content)
            out[run] = reason
        return out

    return make


def _write_idx(path: Path, array, compress: bool) -> None:
    import gzip
    import struct

    import numpy as np

    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


@pytest.fixture
def fake_mnist():
    """``make(folder, compress)``: the four MNIST IDX files in ``folder`` (20 training and 6 test
    images of random pixels, labels 0-9 in turn), gzipped or plain."""
    import numpy as np

    def make(folder: Path, compress: bool) -> None:
        folder.mkdir(parents=True)
        rng = np.random.default_rng(0)
        _write_idx(folder / "train-images-idx3-ubyte", rng.integers(0, 256, (20, 28, 28)), compress)
        _write_idx(folder / "train-labels-idx1-ubyte", np.arange(20) % 10, compress)
        _write_idx(folder / "t10k-images-idx3-ubyte", rng.integers(0, 256, (6, 28, 28)), compress)
        _write_idx(folder / "t10k-labels-idx1-ubyte", np.arange(6) % 10, compress)

    return make
