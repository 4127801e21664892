"""Runs a :class:`workbench.trainer.Trainer` in a ``QThread`` and hands its events to the GUI in batches.

Composition, not multiple inheritance: :class:`TrainingWorker` (lives on the GUI thread) owns a
``QThread`` and a small :class:`_TrainerAdapter` ``QObject`` moved to that thread. The adapter
builds the trainer *in the worker thread* (so the model, the data and every tensor are created and
used there only), calls ``Trainer.run(on_event)``, and collects the events in a thread-safe deque.
The deque is flushed as one list across a queued connection at most every :data:`FLUSH_MS`
milliseconds, and at once for the first event (``RunStarted``), epoch ends and the final event.

Signals of :class:`TrainingWorker` (emitted on the GUI thread):

* ``events(list)`` — a batch of :mod:`workbench.events` objects, in order;
* ``finished(object)`` — the final event (``Finished``, ``Stopped`` or ``Failed``), emitted after the
  thread has ended, so a slot may start the next run at once.

An exception escaping the trainer (a bug, not a user error) becomes a ``Failed`` event with the
exception text; the run's ``summary.json`` then says ``failed`` too.
"""
from __future__ import annotations

import json
import os
import threading
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Any, Callable, Protocol

from PySide6.QtCore import QObject, QThread, Signal, Slot

from workbench.events import EpochEnd, Failed, Finished, RunStarted, RunSummary, Stopped

__all__ = ["TrainingWorker", "TrainerLike", "TrainerFactory", "FLUSH_MS", "default_trainer_factory", "ddp_trainer_factory",
           "training_threads"]


#: Longest time, in milliseconds, an event waits in the worker before it is sent to the GUI.
FLUSH_MS = 50


class TrainerLike(Protocol):
    def run(self, on_event: Callable[[Any], None]) -> RunSummary: ...
    def stop(self) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...


#: ``factory(preset, run_dir, data_root) -> TrainerLike``; called in the worker thread.
TrainerFactory = Callable[[Any, "Path | None", "Path | None"], TrainerLike]


def training_threads() -> int:
    """Intra-op threads for torch while the GUI shares the machine: all cores but one (at least 1).

    Override with env ``AFWB_TRAIN_THREADS``."""
    env = os.environ.get("AFWB_TRAIN_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, (os.cpu_count() or 2) - 1)


def default_trainer_factory(preset: Any, run_dir: Path | None, data_root: Path | None) -> TrainerLike:
    """The real trainer (imported here, in the worker thread, with torch)."""
    import torch

    from workbench.trainer import Trainer

    torch.set_num_threads(training_threads())
    return Trainer(preset, run_dir, data_root)


def ddp_trainer_factory(nproc: int, device: str = "cuda") -> TrainerFactory:
    """A factory whose "trainer" is a run on ``nproc`` torchrun processes (one per GPU with
    ``device`` "cuda"; "cpu": gloo CPU processes, what the tests use). Rank 0 streams the run's
    events back (:mod:`workbench.eventlink`), so the worker, the dashboard and Stop treat it exactly
    like a local run; Stop stops every process (a second Stop sends torchrun SIGTERM)."""

    def factory(preset: Any, run_dir: Path | None, data_root: Path | None) -> TrainerLike:
        from workbench.launch import launch_preset

        if run_dir is None:
            raise ValueError("a DDP run needs a run folder")
        return launch_preset(preset, run_dir, nproc, data_root=data_root, device=device)

    return factory


def training_nice() -> int:
    """How much lower than the GUI the training thread runs (Linux ``nice`` increment of that
    thread only; env ``AFWB_TRAIN_NICE``, default 5, 0 = off). With 2 cores shared with other
    programs, this lets the scheduler run the GUI thread first whenever it has work, so redraws
    and input never wait behind a training step; on an idle machine the two threads run on
    different cores and training loses nothing."""
    env = os.environ.get("AFWB_TRAIN_NICE", "")
    try:
        return max(0, min(19, int(env))) if env else 5
    except ValueError:
        return 5


def _lower_thread_priority() -> None:
    nice = training_nice()
    if nice and hasattr(os, "setpriority") and hasattr(threading, "get_native_id"):
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
        except OSError:   # not permitted / not Linux: run at normal priority
            pass


class _TrainerAdapter(QObject):
    """Lives in the worker thread: builds and runs the trainer, batches its events."""

    batch = Signal(list)
    done = Signal(object)

    def __init__(self, preset: Any, run_dir: Path | None, data_root: Path | None, factory: TrainerFactory) -> None:
        super().__init__()
        self._preset = preset
        self._run_dir = run_dir
        self._data_root = data_root
        self._factory = factory
        self._queue: deque[Any] = deque()
        self._lock = threading.Lock()
        self._last_flush = 0.0
        self.trainer: TrainerLike | None = None
        self.stop_requested = False
        self.pause_requested = False
        self.last_started: RunStarted | None = None
        self.last_final: Any = None   # the trainer's own final event (it carries the failing step)

    # ---- control, called from the GUI thread
    def request_stop(self) -> None:
        with self._lock:
            self.stop_requested = True
            trainer = self.trainer
        if trainer is not None:
            trainer.stop()

    def request_pause(self, paused: bool) -> None:
        with self._lock:
            self.pause_requested = paused
            trainer = self.trainer
        if trainer is not None:
            trainer.pause() if paused else trainer.resume()

    # ---- the worker thread
    def _on_event(self, event: Any) -> None:
        self._queue.append(event)
        if isinstance(event, RunStarted):
            self.last_started = event
        elif isinstance(event, (Finished, Stopped, Failed)):
            self.last_final = event
        now = time.monotonic()
        urgent = isinstance(event, (RunStarted, EpochEnd, Finished, Stopped, Failed))
        if urgent or (now - self._last_flush) * 1000.0 >= FLUSH_MS:
            self._flush(now)

    def _flush(self, now: float | None = None) -> None:
        items = []
        while True:
            try:
                items.append(self._queue.popleft())
            except IndexError:
                break
        self._last_flush = time.monotonic() if now is None else now
        if items:
            self.batch.emit(items)

    @Slot()
    def run(self) -> None:
        final: Any = None
        _lower_thread_priority()
        try:
            trainer = self._factory(self._preset, self._run_dir, self._data_root)
            with self._lock:
                self.trainer = trainer
                stop, pause = self.stop_requested, self.pause_requested
            if stop:
                trainer.stop()
            elif pause:
                trainer.pause()
            summary = trainer.run(self._on_event)
            # The trainer's final event was usually flushed already (final events are urgent): use
            # it, not a copy rebuilt from the summary (which lost Failed.step) and sent twice.
            final = self.last_final
            if final is None:
                final = self._final_from_summary(summary)
                self._queue.append(final)
        except BaseException as exc:  # a bug in a layer or the trainer: report it, keep the app alive
            final = self._failed_from_exception(exc)
            self._queue.append(final)
        finally:
            self._flush()
            with self._lock:
                self.trainer = None
            self.done.emit(final)
            # End this thread's event loop from inside, so a GUI thread blocked in wait() (closing
            # the window) is released without needing its own event loop to run.
            QThread.currentThread().quit()

    def _final_from_summary(self, summary: RunSummary) -> Any:
        if summary.status == "stopped":
            return Stopped(summary)
        if summary.status == "failed":
            return Failed(summary.message or "the run failed", summary.hint, None, summary)
        return Finished(summary)

    def _failed_from_exception(self, exc: BaseException) -> Failed:
        name = getattr(self._preset, "name", "run")
        task = "classification"
        device = "cpu"
        if self.last_started is not None:
            task, device = self.last_started.task, self.last_started.device
        message = f"{type(exc).__name__}: {exc}"
        hint = ("This is an error inside the training code, not in your settings. The traceback is in "
                "the run folder's error.txt; please report it.")
        summary = RunSummary(status="failed", preset_name=str(name), task=task, device=device,
                             run_dir=str(self._run_dir) if self._run_dir else None, message=message, hint=hint)
        if self._run_dir is not None:
            try:
                run_dir = Path(self._run_dir)
                run_dir.mkdir(parents=True, exist_ok=True)
                (run_dir / "error.txt").write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
                old = {}
                if (run_dir / "summary.json").exists():
                    try:
                        old = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
                    except ValueError:
                        old = {}
                data = {**old, **{k: v for k, v in summary.to_dict().items() if k in
                                  ("status", "message", "hint", "preset_name", "run_dir")}}
                from workbench.runs import write_json_atomic

                write_json_atomic(run_dir / "summary.json", {**summary.to_dict(), **data})
            except OSError:
                pass
        return Failed(message, hint, None, summary)


class TrainingWorker(QObject):
    """Start, pause, resume and stop one training run in a background thread.

    One worker runs one run; make a new worker for the next run. ``stop_and_join(ms)`` is what
    the window calls when it closes.
    """

    events = Signal(list)
    finished = Signal(object)
    started = Signal()

    def __init__(self, preset: Any, run_dir: Path | None = None, data_root: Path | None = None, *,
                 factory: TrainerFactory | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("trainingThread")
        self._adapter = _TrainerAdapter(preset, run_dir, data_root, factory or default_trainer_factory)
        self._adapter.moveToThread(self._thread)
        self._thread.started.connect(self._adapter.run)
        self._adapter.batch.connect(self._on_batch)
        self._adapter.done.connect(self._on_done)
        self._thread.finished.connect(self._complete)
        self.run_dir = run_dir
        self.final: Any = None
        self._final_pending: Any = None
        self._paused = False
        self._started = False

    # ---- control
    def start(self) -> None:
        if self._started:
            raise RuntimeError("a TrainingWorker runs once; create a new one for the next run")
        self._started = True
        self._thread.start()
        self.started.emit()

    def stop(self) -> None:
        """Ask the trainer to stop (it writes its checkpoint and ends with ``Stopped``)."""
        self._adapter.request_stop()

    def pause(self) -> None:
        self._paused = True
        self._adapter.request_pause(True)

    def resume(self) -> None:
        self._paused = False
        self._adapter.request_pause(False)

    def is_paused(self) -> bool:
        return self._paused

    def is_running(self) -> bool:
        return self._started and self.final is None

    def stop_and_join(self, timeout_ms: int = 5000) -> bool:
        """Stop the run and wait for the thread to end; True when it has ended (safe to close)."""
        if not self._started:
            return True
        if self._thread.isRunning():
            self._adapter.request_stop()
            if self._paused:
                self._adapter.request_pause(False)
            if not self._thread.wait(max(int(timeout_ms), 0)):
                return False
        # Deliver what is still queued (the final batch, done, the thread's finished) so listeners
        # see the end of the run before the window goes away.
        if self.final is None:
            from PySide6.QtCore import QCoreApplication

            QCoreApplication.sendPostedEvents(self)
            self._complete()
        return not self._thread.isRunning()

    # ---- GUI-thread slots
    def _on_batch(self, items: list) -> None:
        self.events.emit(items)

    def _on_done(self, final: Any) -> None:
        # Never block here: the adapter ends its thread itself; ``finished`` is emitted once the
        # thread has really ended (its own finished signal, or at once if it already has).
        self._final_pending = final
        if not self._thread.isRunning():
            self._complete()

    def _complete(self) -> None:
        if self.final is None and self._final_pending is not None and not self._thread.isRunning():
            self.final = self._final_pending
            self.finished.emit(self.final)

    @property
    def thread(self) -> QThread:
        return self._thread
