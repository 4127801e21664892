"""ui.worker: the trainer runs in a QThread, events reach the GUI thread in ordered batches, the
final event is flushed at once, stop/pause reach the trainer, a crash becomes Failed.

The fake trainer here emits REAL workbench.events dataclasses; the real trainer is exercised in
test_training_controller.py and test_responsiveness.py.
"""
from __future__ import annotations

import json
import threading
import time

import pytest
from PySide6.QtCore import QThread

from ui.worker import FLUSH_MS, TrainingWorker, training_threads
from workbench.events import EpochEnd, Failed, Finished, Metrics, RunStarted, RunSummary, Stopped


def _summary(status: str = "finished", **kw) -> RunSummary:
    return RunSummary(status=status, preset_name="fake", task="classification", device="cpu", **kw)


class FakeTrainer:
    """Emits RunStarted, ``n`` Metrics ``gap_s`` apart (one EpochEnd in the middle), then Finished;
    honours stop() and pause() between steps like the real trainer."""

    def __init__(self, n: int = 200, gap_s: float = 0.0, fail: Exception | None = None) -> None:
        self.n = n
        self.gap_s = gap_s
        self.fail = fail
        self._stop = threading.Event()
        self._go = threading.Event()
        self._go.set()
        self.thread_ident: int | None = None
        self.paused_seen = False

    def stop(self) -> None:
        self._stop.set()
        self._go.set()

    def pause(self) -> None:
        self._go.clear()

    def resume(self) -> None:
        self._go.set()

    def run(self, on_event):
        self.thread_ident = threading.get_ident()
        on_event(RunStarted("fake", None, "cpu", "CPU", "classification", 1, self.n, self.n, 10, 2, 5, 1, 1,
                            ("0_Linear",)))
        for step in range(1, self.n + 1):
            if not self._go.is_set():
                self.paused_seen = True
            self._go.wait()
            if self._stop.is_set():
                summary = _summary("stopped", steps=step - 1)
                on_event(Stopped(summary))
                return summary
            if self.fail is not None and step == 3:
                raise self.fail
            on_event(Metrics(step, 0, step / self.n, 1.0 / step, 1e-3, 100.0, accuracy=0.5,
                             grad_norm={"0_Linear": 0.1}))
            if step == self.n // 2:
                on_event(EpochEnd(0, step, 0.1, 0.5, 0.6, 0.5, 0.5))
            if self.gap_s:
                time.sleep(self.gap_s)
        summary = _summary(steps=self.n)
        on_event(Finished(summary))
        return summary


def make_worker(trainer: FakeTrainer, run_dir=None) -> TrainingWorker:
    return TrainingWorker(object(), run_dir, None, factory=lambda preset, rd, dr: trainer)


def collect(worker: TrainingWorker) -> list[list]:
    batches: list[list] = []
    worker.events.connect(lambda batch: batches.append(list(batch)))
    return batches


def test_events_arrive_in_order_in_batches_and_the_thread_ends(qtbot) -> None:
    trainer = FakeTrainer(n=300)
    worker = make_worker(trainer)
    batches = collect(worker)
    with qtbot.waitSignal(worker.finished, timeout=10_000) as blocker:
        worker.start()
    assert isinstance(blocker.args[0], Finished)
    assert not worker.thread.isRunning()             # finished is emitted after the thread ended
    assert trainer.thread_ident != threading.get_ident()  # the trainer ran off the GUI thread
    flat = [e for b in batches for e in b]
    assert isinstance(flat[0], RunStarted) and isinstance(flat[-1], Finished)
    steps = [e.step for e in flat if isinstance(e, Metrics)]
    assert steps == list(range(1, 301))              # nothing lost, nothing reordered
    # 300 fast events (microseconds apart) must not become 300 signals
    assert len(batches) < 30, len(batches)


def test_slow_events_are_flushed_without_waiting_for_more(qtbot) -> None:
    trainer = FakeTrainer(n=6, gap_s=2 * FLUSH_MS / 1000)
    worker = make_worker(trainer)
    arrivals: list[tuple[float, list]] = []
    worker.events.connect(lambda b: arrivals.append((time.perf_counter(), list(b))))
    with qtbot.waitSignal(worker.finished, timeout=10_000):
        worker.start()
    # with events farther apart than FLUSH_MS, each is sent on its own
    metric_batches = [b for _, b in arrivals if any(isinstance(e, Metrics) for e in b)]
    assert len(metric_batches) >= 5


def test_stop_reaches_the_trainer(qtbot) -> None:
    trainer = FakeTrainer(n=100_000, gap_s=0.001)
    worker = make_worker(trainer)
    batches = collect(worker)
    with qtbot.waitSignal(worker.events, timeout=10_000):
        worker.start()
    assert worker.is_running()
    with qtbot.waitSignal(worker.finished, timeout=5000) as blocker:
        worker.stop()
    assert isinstance(blocker.args[0], Stopped)
    assert isinstance(batches[-1][-1], Stopped)
    assert not worker.is_running()


def test_pause_and_resume_reach_the_trainer(qtbot) -> None:
    trainer = FakeTrainer(n=100_000, gap_s=0.001)
    worker = make_worker(trainer)
    with qtbot.waitSignal(worker.events, timeout=10_000):
        worker.start()
    worker.pause()
    assert worker.is_paused()
    qtbot.waitUntil(lambda: trainer.paused_seen, timeout=5000)
    worker.resume()
    assert not worker.is_paused()
    assert worker.stop_and_join(5000)
    assert isinstance(worker.final, Stopped)


def test_stop_and_join_while_paused(qtbot) -> None:
    trainer = FakeTrainer(n=100_000, gap_s=0.001)
    worker = make_worker(trainer)
    finals = []
    worker.finished.connect(finals.append)
    with qtbot.waitSignal(worker.events, timeout=10_000):
        worker.start()
    worker.pause()
    assert worker.stop_and_join(5000)
    assert not worker.thread.isRunning()
    assert len(finals) == 1 and isinstance(finals[0], Stopped)


def test_an_exception_in_the_trainer_becomes_failed(qtbot, tmp_path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "summary.json").write_text(json.dumps(_summary("running").to_dict()))
    trainer = FakeTrainer(n=10, fail=RuntimeError("boom in a layer"))
    worker = make_worker(trainer, run_dir)
    with qtbot.waitSignal(worker.finished, timeout=10_000) as blocker:
        worker.start()
    final = blocker.args[0]
    assert isinstance(final, Failed)
    assert "boom in a layer" in final.message and final.hint
    data = json.loads((run_dir / "summary.json").read_text())
    assert data["status"] == "failed" and "boom in a layer" in data["message"]
    assert "boom in a layer" in (run_dir / "error.txt").read_text()


def test_a_factory_error_becomes_failed(qtbot) -> None:
    def factory(preset, run_dir, data_root):
        raise ValueError("cannot build the trainer")

    worker = TrainingWorker(object(), None, None, factory=factory)
    with qtbot.waitSignal(worker.finished, timeout=10_000) as blocker:
        worker.start()
    assert isinstance(blocker.args[0], Failed)
    assert "cannot build the trainer" in blocker.args[0].message


def test_a_worker_runs_once(qtbot) -> None:
    worker = make_worker(FakeTrainer(n=2))
    with qtbot.waitSignal(worker.finished, timeout=10_000):
        worker.start()
    with pytest.raises(RuntimeError, match="runs once"):
        worker.start()
    assert worker.stop_and_join(100)


def test_stop_and_join_before_start_is_a_no_op() -> None:
    worker = make_worker(FakeTrainer(n=2))
    assert worker.stop_and_join(10)
    assert isinstance(worker.thread, QThread) and not worker.thread.isRunning()


def test_training_threads_leaves_a_core_for_the_gui(monkeypatch) -> None:
    monkeypatch.delenv("AFWB_TRAIN_THREADS", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert training_threads() == 1
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert training_threads() == 15
    monkeypatch.setenv("AFWB_TRAIN_THREADS", "3")
    assert training_threads() == 3


def test_installed_pyside6_keeps_the_refcounts_of_true_and_none() -> None:
    """PySide6 6.12.0 on CPython 3.11 drops a reference to True on every emit() and to None on
    every void Qt call, and the interpreter aborts ("bool_dealloc"/"none_dealloc") after a while:
    the Makefile pins 6.11.3 and pyproject excludes 6.12.0. This fails if such a build comes back."""
    import sys

    from PySide6.QtCore import QObject, Signal

    class Source(QObject):
        ping = Signal(object)

    source = Source()
    received = []
    source.ping.connect(received.append)
    true_before, none_before = sys.getrefcount(True), sys.getrefcount(None)
    for i in range(200):
        source.ping.emit(i)
        source.setObjectName("probe")
    assert received == list(range(200))
    assert abs(sys.getrefcount(True) - true_before) <= 2
    assert abs(sys.getrefcount(None) - none_before) <= 20


class FailingTrainer(FakeTrainer):
    """Fails like the real trainer does on a NaN loss: a ``Failed`` event with the step, then returns."""

    def run(self, on_event):
        on_event(RunStarted("fake", None, "cpu", "CPU", "classification", 1, 10, 10, 10, 2, 5, 1, 1, ("0_Linear",)))
        for step in range(1, 7):
            on_event(Metrics(step, 0, step / 10, 1.0, 1e-3, 100.0))
        summary = _summary("failed", steps=7, message="the loss became non-finite", hint="lower train.lr")
        on_event(Failed("the loss became non-finite", "lower train.lr", 7, summary))
        return summary


def test_the_trainers_final_event_arrives_once_with_its_step(qtbot) -> None:
    worker = make_worker(FailingTrainer())
    batches = collect(worker)
    with qtbot.waitSignal(worker.finished, timeout=10_000) as blocker:
        worker.start()
    final = blocker.args[0]
    assert isinstance(final, Failed) and final.step == 7       # not a copy rebuilt from the summary
    finals = [e for b in batches for e in b if isinstance(e, (Finished, Stopped, Failed))]
    assert finals == [final]
