"""Python's cyclic garbage collector runs on the GUI thread only.

Why: CPython runs an automatic collection on whichever thread happens to allocate when a
generation's count passes its threshold — in this app often the training thread (a run's first
``load_dataset`` imports sklearn and scipy and allocates a great deal). A window, menu or dialog
left in a reference cycle is then destroyed on the training thread, off the GUI thread, which Qt
does not allow: the GUI thread waits on a Qt mutex the training thread holds while the training
thread waits for the GIL (a hang), or Qt dereferences a half-destroyed widget (a segfault; 18 of
18 processes with shown-then-dropped menus in cycles, research/reliability-report.md §8).

What: :class:`CyclicCollector` turns automatic collection off and collects on request, deciding
*which* generation as CPython 3.11's ``collect_generations`` does — the oldest generation whose
count passed its threshold — except that the full (oldest-generation) collection waits until the
heap (``sys.getallocatedblocks()``, memory blocks in use) has grown by a quarter since the last
full collection. CPython waits until the objects promoted since then reach a quarter of those it
kept, a count Python code cannot read without ``gc.get_objects()``, which must not be used here:
its list holds a reference to every tracked object, including a tuple another thread is still
building, whose resize then fails (``SystemError: Objects/tupleobject.c: bad argument to
internal function`` in a run's set-up, seen once in the responsiveness test). A full collection costs
about 180 ms with torch, sklearn and Qt loaded — a GUI stall — so it must stay as rare as CPython
makes it. :func:`install_gui_thread_gc` calls :meth:`CyclicCollector.collect_due` from a
``QTimer`` on the GUI thread, at most one collection a tick: young cyclic garbage waits up to
one interval (100 ms), older generations are collected in CPython's proportions (a generation-1
collection every 11th, ...) counted in ticks instead of allocations. Memory stays bounded as long
as the GUI thread runs its event loop (which the app keeps doing: tests/ui/test_responsiveness.py).
Garbage without cycles is freed by reference counting at once, on any thread, as before.

pyqtgraph ships ``pyqtgraph.util.garbage_collector.GarbageCollector`` for the same purpose; it is
not used because it makes every tenth second-generation collection a full one (a 180 ms stall
every ~100 timer ticks while the training thread allocates) and its timer has no parent.

This module imports Qt only inside :func:`install_gui_thread_gc`, so the test suite's top-level
conftest can use :class:`CyclicCollector` for tests that load no Qt.
"""
from __future__ import annotations

import gc
import sys
from typing import Any

__all__ = ["CyclicCollector", "install_gui_thread_gc", "INTERVAL_MS"]

#: How often the GUI thread checks whether a collection is due, in milliseconds.
INTERVAL_MS = 100


class CyclicCollector:
    """Automatic cyclic GC off; :meth:`collect_due` collects what CPython would collect now.

    ``thresholds`` (default: ``gc.get_threshold()`` at construction, CPython's 700, 10, 10) has
    CPython's meaning: collect generation 0 once its count (container allocations minus
    deallocations) exceeds ``thresholds[0]``; generation 1 once ``thresholds[1]`` generation-0
    collections happened since its last one; generation 2 once ``thresholds[2]`` generation-1
    collections happened and the heap grew by :attr:`FULL_GROWTH` since the last full collection.
    """

    #: Heap growth (fraction of the memory blocks in use after the last full collection) that
    #: makes a full collection due (CPython: long_lived_pending ≥ long_lived_total / 4).
    FULL_GROWTH = 0.25

    def __init__(self, thresholds: tuple[int, int, int] | None = None) -> None:
        self.thresholds = tuple(thresholds or gc.get_threshold())
        self.was_enabled = gc.isenabled()
        gc.disable()
        #: memory blocks in use after the last full collection (at construction before the first)
        self.heap_blocks = sys.getallocatedblocks()
        #: collections made, per generation
        self.collections = [0, 0, 0]
        #: the QTimer that calls :meth:`collect_due` on the GUI thread (set by install_gui_thread_gc)
        self.timer: Any = None

    def heap_grew(self) -> bool:
        """Whether the heap grew by :attr:`FULL_GROWTH` since the last full collection."""
        return sys.getallocatedblocks() - self.heap_blocks >= self.FULL_GROWTH * self.heap_blocks

    def collect_due(self) -> int:
        """Collect the generation that is due (if any) on the calling thread; returns it, or -1."""
        if gc.isenabled():  # something switched automatic collection back on: off again
            gc.disable()
        c0, c1, c2 = gc.get_count()
        t0, t1, t2 = self.thresholds
        if c0 <= t0:
            return -1
        if c2 > t2 and self.heap_grew():
            gen = 2
        elif c1 > t1:
            gen = 1
        else:
            gen = 0
        return self.collect(gen)

    def collect(self, generation: int = 2) -> int:
        """Collect ``generation`` (and the younger ones) now; returns ``generation``."""
        gc.collect(generation)
        if generation == 2:
            self.heap_blocks = sys.getallocatedblocks()
        self.collections[generation] += 1
        return generation

    def restore(self) -> None:
        """Automatic collection back as it was before this collector."""
        if self.was_enabled:
            gc.enable()


def install_gui_thread_gc(app: Any, interval_ms: int = INTERVAL_MS,
                          collector: CyclicCollector | None = None) -> CyclicCollector:
    """Switch automatic GC off and collect from a timer parented to ``app`` (the QApplication),
    on the GUI thread, with ``collector`` (a new one by default). Call on the GUI thread once the
    application exists; keep the returned collector (its ``timer`` stops with the application)."""
    from PySide6.QtCore import QTimer

    if collector is None:
        collector = CyclicCollector()
    timer = QTimer(app)
    timer.setObjectName("guiThreadGarbageCollector")
    timer.setInterval(int(interval_ms))
    timer.timeout.connect(collector.collect_due)
    timer.start()
    collector.timer = timer
    return collector
