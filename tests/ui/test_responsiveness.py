"""The GUI thread stays responsive while a real run trains: while z-digits trains for STEPS
optimiser steps in the window (then is stopped), no gap between ticks of a 10 ms QTimer on the GUI
thread holds more of the app's own work than STALL_REFERENCES times the suite's reference piece of
Python work (tests/conftest.py ``CpuReference``) measured on the GUI thread during the same run
(about 16 × 5 ms: the former 100 ms bound on the development machine; the design goal is ≤ 50 ms;
bench/gui_latency.py reports it for z-mnist).
A full garbage collection (~180 ms of CPU there), on the GUI thread or on the training thread while
the GUI thread waits for the GIL, fails it on any machine.

Why each part:

* A step count, not epochs of a tiny set: the run is as long as STEPS steps on any machine, and
  the test checks that the GUI handled the events of all of them while it measured. It does not
  ask for a number of ticks: a fast machine gives fewer ticks, which is no reason to fail.
* The app's part of a gap, in CPU time (:meth:`GapMeter.app_ms`): on a loaded machine a thread can
  be runnable and still not run, or be descheduled while it holds the GIL; that is the machine's
  stall, not the app's. Linux counts per thread (``/proc/self/task/<tid>/schedstat``: time on a
  CPU, time waiting for one). A gap counts the GUI thread's CPU time, plus the training thread's
  CPU time while the GUI thread slept (a collection or a long call holding the GIL it waits for).
  Where the counters are missing (not Linux) the wall time counts.
* A limit in units of work, not milliseconds: the reference work is timed on the GUI thread
  every 20 ticks during the run, so a slower machine, or a core shared with another program's
  hyperthread, lengthens the limit as much as it lengthens the app's own work. Only the timer's
  interval and the interpreter's GIL switch interval are fixed wall-clock parts of the limit.
"""
from __future__ import annotations

import importlib
import os
import sys
import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer

from ui.training_controller import install_training
from ui.warmup import modules_for_dataset
from workbench.events import EpochEnd, Metrics, Stopped
from workbench.presets import load_builtin

#: The longest stall allowed, in units of the reference work's cost (tests/conftest.py
#: ``reference_work``, ~5 ms): 16 × 5 ms + the 10 ms interval and 10 ms of GIL hand-overs ≈ the
#: former 100 ms limit on the development machine; a full garbage collection (~180 ms) is far above.
STALL_REFERENCES = 16
#: Optimiser steps of the run (z-digits, batch 64: 23 steps an epoch; measured from the first
#: epoch's end). A count, so the run is as long on any machine.
STEPS = 300
#: Hang guard for the run (it takes 10-150 s: idle to load 17 on 2 cores), below the test's timeout.
HANG_MS = 540_000
TRAINING_THREAD = "trainingThread"  # ui.worker.TrainingWorker names its QThread so


def _task_dir(tid: int) -> Path:
    return Path("/proc/self/task") / str(tid)


def cpu_ns(tid: int | None) -> tuple[int, int] | None:
    """Thread ``tid``'s (native id) time on a CPU and time runnable but waiting for one, in
    nanoseconds (Linux ``/proc/self/task/<tid>/schedstat``, first two fields); None where that is
    not available or the thread has ended."""
    if tid is None:
        return None
    try:
        on_cpu, waiting = (_task_dir(tid) / "schedstat").read_text().split()[:2]
        return int(on_cpu), int(waiting)
    except (OSError, ValueError):
        return None


def thread_named(name: str) -> int | None:
    """Native id of this process's thread called ``name`` (Linux), else None."""
    try:
        for task in Path("/proc/self/task").iterdir():
            if (task / "comm").read_text().strip() == name:
                return int(task.name)
    except OSError:
        pass
    return None


class GapMeter:
    """Intervals between ticks of a 10 ms timer on the GUI thread, in milliseconds: ``gaps`` on
    the wall clock, ``app_gaps`` the part of each that was the app's doing (:meth:`app_ms`); and
    every :attr:`REFERENCE_EVERY` ticks the GUI thread's CPU time for the suite's reference work
    (``reference``, a :class:`tests.conftest.CpuReference`), measured in the same process at the
    same time."""

    INTERVAL_MS = 10
    REFERENCE_EVERY = 20

    def __init__(self, reference) -> None:
        self.reference = reference
        self.timer = QTimer()
        self.timer.setInterval(self.INTERVAL_MS)
        self.timer.timeout.connect(self._tick)
        self.gui = threading.get_native_id()
        self.trainer: int | None = None
        self.last: tuple[float, tuple[int, int] | None, tuple[int, int] | None] | None = None
        self.gaps: list[float] = []
        self.app_gaps: list[float] = []
        self.measuring = False
        #: (GUI, training thread) (time on a CPU, time waiting for one) of each gap, in ms
        self.parts: list = []

    def _now(self) -> tuple[float, tuple[int, int] | None, tuple[int, int] | None]:
        return time.perf_counter(), cpu_ns(self.gui), cpu_ns(self.trainer)

    @staticmethod
    def app_ms(wall_ms: float, gui: tuple[float, float] | None, trainer: tuple[float, float] | None) -> float:
        """The app's part of a gap of ``wall_ms``, given the GUI and training threads' (time on a
        CPU, time waiting for one) in that gap, in ms: the GUI thread's own CPU time, plus the
        training thread's CPU time while the GUI thread slept (idle until the tick, or waiting for
        the GIL the training thread held: a collection or a long call there). Time either thread
        waited for a CPU is the machine's load, not the app's. Without the counters: the wall time."""
        if gui is None or trainer is None:
            return wall_ms
        gui_cpu, gui_queued = gui
        asleep = max(wall_ms - gui_cpu - gui_queued, 0.0)
        return gui_cpu + min(asleep, trainer[0])

    def _tick(self) -> None:
        now = self._now()
        if self.measuring and self.last is not None:
            wall_ms = (now[0] - self.last[0]) * 1000.0
            gui, trainer = ((None if a is None or b is None else ((b[0] - a[0]) / 1e6, (b[1] - a[1]) / 1e6))
                            for a, b in ((self.last[1], now[1]), (self.last[2], now[2])))
            self.gaps.append(wall_ms)
            self.app_gaps.append(self.app_ms(wall_ms, gui, trainer))
            self.parts.append((gui, trainer))
            if len(self.gaps) % self.REFERENCE_EVERY == 0:
                self.reference.sample()
                now = self._now()   # the reference's own time is no gap
        self.last = now

    def start(self) -> None:
        self.trainer = thread_named(TRAINING_THREAD)
        self.measuring = True
        self.last = self._now()

    def limit_ms(self) -> float:
        """The longest gap allowed: the timer's interval, two of the interpreter's GIL switch
        intervals (fixed wall-clock waits for the training thread to hand the GIL over), and
        :data:`STALL_REFERENCES` times the reference work's cost."""
        return self.INTERVAL_MS + 2 * 1000.0 * sys.getswitchinterval() + STALL_REFERENCES * self.reference.median()


def measure_run(make_window, qtbot, reference) -> GapMeter:
    """Train z-digits (CPU) in a window for STEPS steps, then stop it; the meter's gaps cover the
    run from its first EpochEnd (every plot has been created and drawn once: a window's first run
    pays that once, and it is no stall caused by training) to its final event."""
    preset = load_builtin("z-digits")
    preset.train.epochs = 1000  # far more than STEPS steps: the test stops the run
    preset.train.device = "cpu"
    window = make_window(preset)
    c = install_training(window)
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    meter = GapMeter(reference)
    meter.timer.start()
    seen = {"step": 0}

    def on_events(batch: list) -> None:
        if not meter.measuring and any(isinstance(e, EpochEnd) for e in batch):
            meter.start()
        for e in batch:
            if isinstance(e, Metrics) and meter.measuring:
                seen["step"] = max(seen["step"], e.step)
        if seen["step"] >= STEPS and c.worker is not None and not seen.get("stopping"):
            seen["stopping"] = True
            c.stop()

    c.run_started.connect(lambda _run: c.worker.events.connect(on_events))
    try:
        with qtbot.waitSignal(c.run_finished, timeout=HANG_MS) as blocker:
            assert c.start_run()
        meter.measuring = False
    finally:
        meter.timer.stop()
    assert isinstance(blocker.args[0], Stopped), getattr(blocker.args[0], "message", blocker.args[0])
    assert seen["step"] >= STEPS and meter.gaps, "the GUI did not handle the run's events while measuring"
    window.close()
    return meter


def _ms(pair) -> str:
    return "n/a" if pair is None else f"({pair[0]:.1f}, {pair[1]:.1f}) ms"


@pytest.mark.timeout(600)
def test_gui_stays_responsive_while_training(make_window, qtbot, one_torch_thread, main_thread_gc,
                                              cpu_reference) -> None:
    # The steady state, whatever ran before: the run's modules imported (as the app's start-up
    # warm-up does, ui/warmup.py; alone, the first run's sklearn import grew the heap by a quarter
    # and made a full collection due mid-run), then a collected heap (a full collection is a
    # ~180 ms stall, which the app makes as rare as CPython does).
    for name in modules_for_dataset("digits"):
        importlib.import_module(name)
    main_thread_gc.collect(2)
    full_before = main_thread_gc.collections[2]
    meter = measure_run(make_window, qtbot, cpu_reference)
    full = main_thread_gc.collections[2] - full_before
    worst = max(meter.app_gaps)
    i = meter.app_gaps.index(worst)
    limit = meter.limit_ms()
    print(f"longest GUI gap while training {STEPS} steps: {worst:.1f} ms of the app's "
          f"({meter.gaps[i]:.1f} ms on the clock; longest on the clock {max(meter.gaps):.1f} ms) "
          f"over {len(meter.gaps)} ticks; reference work {meter.reference.median():.2f} ms "
          f"(min {min(meter.reference.samples_ms):.2f}, max {max(meter.reference.samples_ms):.2f}, "
          f"n={len(meter.reference.samples_ms)}); limit {limit:.1f} ms; {full} full GC collections; "
          f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    top = sorted(range(len(meter.app_gaps)), key=meter.app_gaps.__getitem__)[-3:]
    detail = "; ".join(
        f"tick {k}: {meter.app_gaps[k]:.1f} of {meter.gaps[k]:.1f} ms, GUI thread (cpu, queued) "
        f"{_ms(meter.parts[k][0])}, training thread {_ms(meter.parts[k][1])}" for k in reversed(top))
    print("longest gaps:", detail)
    assert worst < limit, (f"the GUI thread stalled for {worst:.0f} ms while training, more than {limit:.0f} ms "
                           f"({STALL_REFERENCES} × the reference work's {meter.reference.median():.1f} ms + "
                           f"the timer's and the GIL's intervals); {meter.gaps[i]:.0f} ms on the clock, "
                           "the rest waiting for a CPU. "
                           f"Longest gaps: {detail}")
