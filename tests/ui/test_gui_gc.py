"""ui.gui_gc.CyclicCollector: automatic collection off, and CPython's choice of generation when
asked (the full collection only once the heap grew by a quarter)."""
from __future__ import annotations

import gc
import weakref

from ui.gui_gc import CyclicCollector


class Node:
    def __init__(self) -> None:
        self.me = self


def test_automatic_collection_is_off_and_stays_off(main_thread_gc) -> None:
    assert not gc.isenabled()
    collector = CyclicCollector()
    gc.enable()  # a library switching it back on
    collector.collect_due()
    assert not gc.isenabled()


def test_nothing_is_collected_below_the_first_threshold() -> None:
    collector = CyclicCollector(thresholds=(10**9, 10, 10))
    garbage = Node()
    ref = weakref.ref(garbage)
    del garbage
    assert collector.collect_due() == -1
    assert ref() is not None
    collector.collect(0)
    assert ref() is None


def test_generations_are_chosen_as_cpython_does() -> None:
    collector = CyclicCollector(thresholds=(0, 2, 1))
    collector.collect(2)  # every generation's count back to 0 (the first of 2 full collections)
    garbage = Node()
    ref = weakref.ref(garbage)
    del garbage
    kept: list = []
    gens = []
    for _ in range(9):
        kept.append(([], []))  # containers allocated and kept before each call: count 0 above 0
        gens.append(collector.collect_due())
    assert ref() is None
    # generation 1 once more than 2 generation-0 collections happened since its last one; at the
    # last call generation 2 is due by count (2 generation-1 collections > 1) but skipped: the
    # heap has not grown by a quarter since the last full collection.
    assert gens == [0, 0, 0, 1, 0, 0, 0, 1, 0]
    assert not collector.heap_grew()
    collector.heap_blocks = int(collector.heap_blocks * 0.7)  # as if the heap had grown by 43 %
    assert collector.heap_grew()
    for _ in range(4):
        kept.append(([], []))
        gens.append(collector.collect_due())
    assert gens[9:] == [2, 0, 0, 0]
    assert collector.collections == [10, 2, 2] and not collector.heap_grew()
