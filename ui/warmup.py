"""Import what the first training run needs while the app is idle after start-up.

Without this, the first Run after launch imports ``torch._dynamo`` (``torch.optim`` optimisers
import it on first use), the trainer's modules and the data set's loader (scikit-learn and SciPy
for the embedded data sets, torchvision for MNIST/CIFAR) on the training thread: about a thousand
modules. Python allocates so much during those imports that it runs full (generation 2) garbage
collections over the whole heap — torch, SciPy and Qt wrappers: 130–500 ms each on a 2-core
machine — and a collection holds the GIL, so the GUI thread stalls for that long, twice
(measured with ``gc.callbacks`` and a 5 ms ticker thread: the two long GIL holds of the first run
were exactly the two generation-2 collections; the imports themselves let the GIL go every few
milliseconds).

:class:`ImportWarmer` imports those modules in a background thread right after start-up, with
automatic collection switched off meanwhile, then (on the GUI thread) moves every object alive at
that point into the permanent generation with :func:`gc.freeze` and restores automatic
collection. Later collections then skip the ~10⁶ start-up objects: a full collection costs what
the run itself allocated, not the size of torch. The first run imports nothing heavy and stalls
the GUI no more than later runs (``bench/gui_latency.py --first-run``).

The same thread then reads the preset's embedded data set into memory (its registry entry's
``prefetch``: parsing scikit-learn's digits CSV held the GIL ~30 ms, which the GUI thread waited for
at the first Run), and once it is done :func:`warm_after_start` has the window lay out its hidden
workspaces (:meth:`ui.main_window.MainWindow.prepare_hidden_workspaces`), so the Train workspace's
first show at the first Run resizes and re-lays out nothing.

Only :func:`ui.app.main` (and the benchmark that imitates it) starts a warmer: tests share one
process and must not freeze each other's objects.
"""
from __future__ import annotations

import gc
import importlib
import threading
from typing import Callable, Iterable

from PySide6.QtCore import QObject, Signal

__all__ = ["ImportWarmer", "RUN_MODULES", "modules_for_dataset", "prefetch_for_dataset", "warm_after_start"]

#: Imported by every training run (the trainer, its helpers, the optimisers' ``torch._dynamo``).
RUN_MODULES: tuple[str, ...] = (
    "workbench.trainer", "workbench.data", "workbench.runs", "workbench.schedules", "workbench.devices",
    "workbench.probes", "workbench.model", "torch.optim", "torch._dynamo",
    "torch.utils.serialization",   # torch.save of the checkpoints
    "workbench.boundary",          # the app's live decision-boundary hook
    "workbench.evaluation",        # imported on the GUI thread when a run starts (the runs list)
    "workbench.predictions",       # the evaluation of each run as it ends
    "platformdirs",                # the default data and runs folders
)

def _dataset_entry(dataset: str):
    """``dataset``'s registry entry (:class:`~workbench.datasets.base.DatasetEntry`), None if unknown."""
    from workbench.datasets import DATASETS

    return DATASETS.get(dataset) if isinstance(dataset, str) else None


def modules_for_dataset(dataset: str) -> tuple[str, ...]:
    """:data:`RUN_MODULES` plus the libraries the loader of ``dataset`` imports lazily, as its entry
    in the dataset registry declares them (``DatasetEntry.imports``; none for most data sets)."""
    entry = _dataset_entry(dataset)
    return RUN_MODULES + (entry.imports if entry is not None else ())


def prefetch_for_dataset(dataset: str) -> Callable[[], object] | None:
    """What reads ``dataset``'s embedded files into memory ahead of the first run (its registry
    entry's ``prefetch``; None for the others)."""
    entry = _dataset_entry(dataset)
    return entry.prefetch if entry is not None else None


class ImportWarmer(QObject):
    """Imports modules in a background thread; :attr:`finished` is emitted on the GUI thread once
    they are imported and the heap is frozen (see the module docstring).

    ``failed`` lists the modules that could not be imported (a missing optional library): the run
    that needs one reports it itself."""

    #: Emitted once, on the GUI thread, when the warm-up is over.
    finished = Signal()
    _done = Signal()   # emitted from the worker thread; queued to the GUI thread

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.failed: list[str] = []
        self.is_finished = False
        self._thread: threading.Thread | None = None
        self._gc_was_enabled = gc.isenabled()
        self._done.connect(self._on_done)

    def start(self, modules: Iterable[str], prefetch: Callable[[], object] | None = None) -> None:
        """Import ``modules`` (those not imported yet) in a daemon thread, then call ``prefetch`` there
        (the data set's :attr:`~workbench.datasets.base.DatasetEntry.prefetch`); at most once."""
        if self._thread is not None:
            return
        names = [m for m in dict.fromkeys(modules)]
        self._gc_was_enabled = gc.isenabled()
        gc.disable()   # no collection over the whole heap while ~10⁶ objects are created
        self._thread = threading.Thread(target=self._run, args=(names, prefetch), name="afwb-import-warmup",
                                        daemon=True)
        self._thread.start()

    def is_running(self) -> bool:
        return self._thread is not None and not self.is_finished

    def _run(self, names: list[str], prefetch: Callable[[], object] | None) -> None:
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - an optional library may be missing; the run says so
                self.failed.append(name)
        if prefetch is not None:
            try:
                prefetch()
            except Exception:  # noqa: BLE001 - a data set that cannot be read: the run reports it
                self.failed.append(getattr(prefetch, "__name__", "prefetch"))
        try:
            self._done.emit()
        except RuntimeError:   # the window (and this object) closed meanwhile
            pass

    def _on_done(self) -> None:
        if self.is_finished:
            return
        if self._thread is not None:
            self._thread.join()
        # Collect first (here, on the GUI thread), then freeze: gc.freeze() would otherwise move
        # garbage not yet collected — Qt widgets in reference cycles among it — into the
        # permanent generation, where it is never freed. What start-up created and still uses
        # becomes permanent: later collections skip it.
        gc.collect()
        gc.freeze()
        if self._gc_was_enabled:
            gc.enable()
        self.is_finished = True
        self.finished.emit()


def warm_after_start(window) -> ImportWarmer:
    """Start an :class:`ImportWarmer` for ``window`` (a :class:`ui.main_window.MainWindow`) once its
    shapes are known (torch imported, after the first paint), prefetching the current preset's data
    set; when it is done, the window lays out its hidden workspaces. ``window.import_warmer`` holds it."""
    warmer = ImportWarmer(window)
    window.import_warmer = warmer

    def start() -> None:
        if window.analysis().report is not None:
            dataset = window.document.current.task.dataset
            warmer.start(modules_for_dataset(dataset), prefetch_for_dataset(dataset))

    window.shapes_ready.connect(start)
    if hasattr(window, "prepare_hidden_workspaces"):
        warmer.finished.connect(window.prepare_hidden_workspaces)
    return warmer
