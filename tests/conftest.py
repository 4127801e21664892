"""Suite-wide test set-up: Qt offscreen, isolated user folders, the shared MNIST copy, and Python's
cyclic garbage collector on the main thread only (automatic collection off; a collection between
tests, and from a timer while a Qt test runs the event loop: tests/ui/conftest.py)."""
from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

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


#: Hang guard, in seconds, for a test waiting on a training thread (never a speed bound).
HANG_S = 120


class OptimizerSteps:
    """Counts the optimiser steps this process takes (any optimiser, on any thread) while the
    :func:`optimizer_steps` fixture is active, through torch's global step hook (called after every
    ``Optimizer.step()``). Tests that ask "how many steps did the run take after stop()/pause()"
    count with this instead of timing the run: a slow or loaded machine takes as many steps.

    ``hold_at = n`` holds the training thread right after its n-th step (``held`` is set) until
    ``release`` is set: a test acts (stop, pause) at a known step, whatever the machine's speed."""

    def __init__(self) -> None:
        self.count = 0
        self.hold_at: int | None = None
        self.held = threading.Event()
        self.release = threading.Event()

    def __call__(self, optimizer, args, kwargs) -> None:
        self.count += 1
        if self.count == self.hold_at:
            self.held.set()
            self.release.wait(HANG_S)

    @staticmethod
    def trainer_waits_in_pause() -> bool:
        """True when a thread of this process is parked in the trainer's pause (inside
        ``Trainer._wait_if_paused``): how a test knows a paused run really holds, without a sleep."""
        for frame in sys._current_frames().values():
            while frame is not None:
                code = frame.f_code
                if code.co_name == "_wait_if_paused" and code.co_filename.endswith(
                        os.path.join("workbench", "trainer.py")):
                    return True
                frame = frame.f_back
        return False


def reference_work() -> int:
    """A fixed piece of Python work (dicts, strings, tuples: what a GUI slot does), about 5 ms of
    CPU time on one core of the development machine (2 cores, idle or loaded alike)."""
    d = {}
    for i in range(20000):
        d[str(i)] = (i, i * 2.0)
    return len(d)


class CpuReference:
    """The unit of CPU time for tests that bound how long some work takes: :func:`reference_work`
    timed on the calling thread (``time.thread_time``), in the same process at the same time as
    the work it is compared with. A machine twice as slow, or a core shared with another program's
    hyperthread, makes both twice as long, so a bound in these units holds on any machine."""

    def __init__(self) -> None:
        self.samples_ms: list[float] = []

    def sample(self) -> float:
        """Time one :func:`reference_work` on this thread's CPU clock, in ms (kept in ``samples_ms``)."""
        t = time.thread_time()
        reference_work()
        ms = (time.thread_time() - t) * 1000.0
        self.samples_ms.append(ms)
        return ms

    def best(self) -> float:
        """The cheapest sample so far (at least three are taken), in ms."""
        while len(self.samples_ms) < 3:
            self.sample()
        return min(self.samples_ms)

    def median(self) -> float:
        """The median sample so far (at least three are taken), in ms."""
        import statistics

        while len(self.samples_ms) < 3:
            self.sample()
        return statistics.median(self.samples_ms)


@pytest.fixture
def cpu_reference() -> CpuReference:
    """A fresh :class:`CpuReference` (tests interleave :meth:`CpuReference.sample` with their work)."""
    return CpuReference()


@pytest.fixture
def optimizer_steps() -> Iterator[OptimizerSteps]:
    """An :class:`OptimizerSteps` counting from now to the end of the test."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    counter = OptimizerSteps()
    handle = register_optimizer_step_post_hook(counter)
    yield counter
    counter.release.set()   # a failed test never leaves a training thread held
    handle.remove()


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


def idx_bytes(array) -> bytes:
    """``array`` as an IDX file (uint8 data, big-endian header), uncompressed."""
    import struct

    import numpy as np

    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _mnist_arrays() -> dict[str, Any]:
    """The four MNIST IDX files' contents: 20 training and 6 test images of random pixels, labels
    0-9 in turn (file name without ``.gz`` → array)."""
    import numpy as np

    rng = np.random.default_rng(0)
    return {"train-images-idx3-ubyte": rng.integers(0, 256, (20, 28, 28)),
            "train-labels-idx1-ubyte": np.arange(20) % 10,
            "t10k-images-idx3-ubyte": rng.integers(0, 256, (6, 28, 28)),
            "t10k-labels-idx1-ubyte": np.arange(6) % 10}


def mnist_gz_files() -> dict[str, bytes]:
    """:func:`fake_mnist`'s four files gzipped in memory (``name.gz`` → bytes; the same bytes every
    call), as a download server would send them."""
    import gzip

    return {f"{name}.gz": gzip.compress(idx_bytes(array), mtime=0) for name, array in _mnist_arrays().items()}


def _write_idx(path: Path, array, compress: bool) -> None:
    import gzip

    data = idx_bytes(array)
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


@pytest.fixture
def fake_mnist():
    """``make(folder, compress)``: the four MNIST IDX files in ``folder`` (20 training and 6 test
    images of random pixels, labels 0-9 in turn), gzipped or plain."""

    def make(folder: Path, compress: bool) -> None:
        folder.mkdir(parents=True)
        for name, array in _mnist_arrays().items():
            _write_idx(folder / name, array, compress)

    return make
