"""The GUI thread stays responsive while a real run trains: the longest gap between ticks of a
10 ms QTimer, from the run's first event (RunStarted) to its final event, stays under 100 ms
(the design goal is ≤ 50 ms; bench/gui_latency.py reports it for z-mnist)."""
from __future__ import annotations

import os
import time

from PySide6.QtCore import QTimer

from ui.training_controller import install_training
from workbench.events import Finished, RunStarted
from workbench.presets import load_builtin

LIMIT_MS = 100.0


class GapMeter:
    """Longest interval between ticks of a 10 ms timer on the GUI thread, in milliseconds."""

    def __init__(self) -> None:
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.last: float | None = None
        self.gaps: list[float] = []
        self.measuring = False

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.measuring and self.last is not None:
            self.gaps.append((now - self.last) * 1000.0)
        self.last = now

    def start(self) -> None:
        self.measuring = True
        self.last = time.perf_counter()


def measure_run(make_window, qtbot) -> tuple[float, int]:
    """Train z-digits (CPU, 6 epochs) in a window; the longest tick gap in ms and the tick count."""
    preset = load_builtin("z-digits")
    preset.train.epochs = 6
    preset.train.device = "cpu"
    window = make_window(preset)
    c = install_training(window)
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    meter = GapMeter()
    meter.timer.start()

    def on_events(batch: list) -> None:
        if not meter.measuring and any(isinstance(e, RunStarted) for e in batch):
            meter.start()

    c.run_started.connect(lambda _run: c.worker.events.connect(on_events))
    try:
        with qtbot.waitSignal(c.run_finished, timeout=120_000) as blocker:
            assert c.start_run()
        meter.measuring = False
    finally:
        meter.timer.stop()
    assert isinstance(blocker.args[0], Finished), getattr(blocker.args[0], "message", "")
    assert len(meter.gaps) > 50, "the run was too short to measure"
    window.close()
    return max(meter.gaps), len(meter.gaps)


def test_gui_stays_responsive_while_training(make_window, qtbot) -> None:
    worst, ticks = measure_run(make_window, qtbot)
    print(f"longest GUI gap while training: {worst:.1f} ms over {ticks} ticks")
    cores = os.cpu_count() or 1
    if worst >= LIMIT_MS and os.getloadavg()[0] > cores:
        # Other programs keep every core busy (a shared CI box): the GUI thread then waits for a
        # CPU, not for us. Measure once more before blaming the app.
        first = worst
        worst, ticks = measure_run(make_window, qtbot)
        print(f"machine overloaded (load {os.getloadavg()[0]:.1f} on {cores} cores): first {first:.0f} ms, "
              f"second run {worst:.1f} ms")
    assert worst < LIMIT_MS, f"the GUI thread stalled for {worst:.0f} ms while training"
