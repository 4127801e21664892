"""The GUI thread stays responsive while a real run trains: while z-digits trains for STEPS
optimiser steps in the window (then is stopped), no gap between ticks of a 10 ms QTimer on the GUI
thread — less the time the GUI and training threads spent waiting for a CPU — reaches 100 ms (the
design goal is ≤ 50 ms; bench/gui_latency.py reports it for z-mnist).

Why each part:

* A step count, not epochs of a tiny set: the run is as long as STEPS steps on any machine, and
  the test checks that the GUI handled the events of all of them while it measured. It does not
  ask for a number of ticks: a fast machine gives fewer ticks, which is no reason to fail.
* "Less the time waiting for a CPU": on a loaded machine (other programs on every core) a thread
  can be runnable and still not run; that is the machine's stall, not the app's. Linux counts it
  per thread (``/proc/self/task/<tid>/schedstat``, second field: time spent on a run queue, ns).
  A gap's share of it, for the GUI thread and for the training thread (which may hold the GIL
  the GUI thread waits for), is subtracted. What remains is time the GUI thread spent running our
  code or waiting for the training thread to let go of the GIL: the app's doing. Where the
  counters are missing (not Linux) nothing is subtracted.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from PySide6.QtCore import QTimer

from ui.training_controller import install_training
from workbench.events import Metrics, RunStarted, Stopped
from workbench.presets import load_builtin

LIMIT_MS = 100.0
#: Optimiser steps measured (z-digits, batch 64: ~23 steps an epoch).
STEPS = 600
TRAINING_THREAD = "trainingThread"  # ui.worker.TrainingWorker names its QThread so


def _task_dir(tid: int) -> Path:
    return Path("/proc/self/task") / str(tid)


def run_queue_ns(tid: int | None) -> int | None:
    """Time thread ``tid`` (native id) has spent runnable but waiting for a CPU, in nanoseconds
    (None where Linux's schedstat is not available, or the thread has ended)."""
    if tid is None:
        return None
    try:
        return int((_task_dir(tid) / "schedstat").read_text().split()[1])
    except (OSError, ValueError, IndexError):
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
    """Intervals between ticks of a 10 ms timer on the GUI thread, in milliseconds: ``gaps`` as
    measured on the wall clock, ``app_gaps`` less the time the GUI and training threads waited
    for a CPU in that interval."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.gui = threading.get_native_id()
        self.trainer: int | None = None
        self.last: tuple[float, list[int | None]] | None = None
        self.gaps: list[float] = []
        self.app_gaps: list[float] = []
        self.measuring = False

    def _now(self) -> tuple[float, list[int | None]]:
        return time.perf_counter(), [run_queue_ns(self.gui), run_queue_ns(self.trainer)]

    def _tick(self) -> None:
        now = self._now()
        if self.measuring and self.last is not None:
            wall_ms = (now[0] - self.last[0]) * 1000.0
            waited_ms = sum(max(b - a, 0) for a, b in zip(self.last[1], now[1])
                            if a is not None and b is not None) / 1e6
            self.gaps.append(wall_ms)
            self.app_gaps.append(max(wall_ms - waited_ms, 0.0))
        self.last = now

    def start(self) -> None:
        self.trainer = thread_named(TRAINING_THREAD)
        self.measuring = True
        self.last = self._now()


def measure_run(make_window, qtbot) -> GapMeter:
    """Train z-digits (CPU) in a window for STEPS steps, then stop it; the meter's gaps cover the
    run from RunStarted to its final event."""
    preset = load_builtin("z-digits")
    preset.train.epochs = 1000  # far more than STEPS steps: the test stops the run
    preset.train.device = "cpu"
    window = make_window(preset)
    c = install_training(window)
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    meter = GapMeter()
    meter.timer.start()
    seen = {"step": 0}

    def on_events(batch: list) -> None:
        if not meter.measuring and any(isinstance(e, RunStarted) for e in batch):
            meter.start()
        for e in batch:
            if isinstance(e, Metrics) and meter.measuring:
                seen["step"] = max(seen["step"], e.step)
        if seen["step"] >= STEPS and c.worker is not None and not seen.get("stopping"):
            seen["stopping"] = True
            c.stop()

    c.run_started.connect(lambda _run: c.worker.events.connect(on_events))
    try:
        with qtbot.waitSignal(c.run_finished, timeout=180_000) as blocker:
            assert c.start_run()
        meter.measuring = False
    finally:
        meter.timer.stop()
    assert isinstance(blocker.args[0], Stopped), getattr(blocker.args[0], "message", blocker.args[0])
    assert seen["step"] >= STEPS and meter.gaps, "the GUI did not handle the run's events while measuring"
    window.close()
    return meter


def test_gui_stays_responsive_while_training(make_window, qtbot, one_torch_thread, main_thread_gc) -> None:
    main_thread_gc.collect(2)  # start from a collected heap (a full collection is a ~180 ms stall)
    full_before = main_thread_gc.collections[2]
    meter = measure_run(make_window, qtbot)
    full = main_thread_gc.collections[2] - full_before
    worst = max(meter.app_gaps)
    i = meter.app_gaps.index(worst)
    print(f"longest GUI gap while training {STEPS} steps: {worst:.1f} ms of the app's "
          f"({meter.gaps[i]:.1f} ms on the clock; longest on the clock {max(meter.gaps):.1f} ms) "
          f"over {len(meter.gaps)} ticks; {full} full GC collections; load {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    assert worst < LIMIT_MS, (f"the GUI thread stalled for {worst:.0f} ms while training "
                              f"({meter.gaps[i]:.0f} ms on the clock, the rest waiting for a CPU)")
