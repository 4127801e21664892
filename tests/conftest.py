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
