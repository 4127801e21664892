"""Evaluations off the GUI thread: :class:`EvaluationRunner` runs :func:`workbench.evaluation.evaluate_run`
in a ``QThread`` of its own, one request at a time, in the order asked.

Composition as in :mod:`ui.worker`: the runner (GUI thread) owns a ``QThread`` and a small adapter
``QObject`` moved to it; a request crosses to the adapter as a queued signal, results come back as
queued signals. A request first looks for the run folder's cached evaluation of the same
checkpoint file (instant); otherwise the model and the data are loaded and evaluated in that
thread (torch is used there only) and the result is cached in the run folder.

Signals (GUI thread), each with the request's key ``"<run folder>::<checkpoint>"``:

* ``progress(key, stage, done, total)`` — ``total`` 0 while the stage has no count (loading);
* ``finished(key, evaluation, from_cache)``;
* ``failed(key, message)`` — a problem the user can fix, named (no checkpoint, data missing, …);
* ``cancelled(key)`` — :meth:`EvaluationRunner.cancel` stopped it (nothing cached).
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

__all__ = ["EvaluationRunner", "request_key"]


def request_key(run_dir: Path | str, which: str) -> str:
    return f"{Path(run_dir)}::{which}"


class _Adapter(QObject):
    """Lives in the runner's thread: evaluates one request per call."""

    progress = Signal(str, str, int, int)
    done = Signal(str, object, bool)
    failed = Signal(str, str)
    cancelled = Signal(str)

    def __init__(self, stop: set[str], lock: threading.Lock) -> None:
        super().__init__()
        self._stop = stop
        self._lock = lock

    @Slot()
    def lower_priority(self) -> None:
        """Run below the GUI, as the training thread does. A slot of this object, which lives in
        the evaluation thread, so it runs there: a plain function connected to ``started`` ran on
        the GUI thread and lowered the GUI's own priority by 5 at each evaluation (to 19)."""
        from ui.worker import _lower_thread_priority

        _lower_thread_priority()

    def _cancelled(self, key: str) -> bool:
        with self._lock:
            return key in self._stop or "*" in self._stop

    @Slot(str, str, str, object, bool)
    def evaluate(self, key: str, run_dir: str, which: str, data_root: Any, use_cache: bool) -> None:
        from workbench.evaluation import EvaluationCancelled, EvaluationError, evaluate_run, load_cached

        if self._cancelled(key):
            self.cancelled.emit(key)
            return
        try:
            if use_cache:
                cached = load_cached(run_dir, which)
                if cached is not None:
                    self.done.emit(key, cached, True)
                    return

            def progress(stage: str, done: int, total: int) -> None:
                if self._cancelled(key):
                    raise EvaluationCancelled(key)
                self.progress.emit(key, stage, int(done), int(total))

            self.progress.emit(key, "loading", 0, 0)
            ev = evaluate_run(run_dir, which, device="cpu", data_root=data_root, progress=progress, use_cache=False)
            self.done.emit(key, ev, False)
        except EvaluationCancelled:
            self.cancelled.emit(key)
        except EvaluationError as exc:
            self.failed.emit(key, str(exc))
        except MemoryError:
            self.failed.emit(key, "out of memory while evaluating; close other programs or evaluate it with "
                                  "`python main.py eval RUN`")
        except Exception as exc:  # noqa: BLE001 - a bug must not take the app down
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            self.failed.emit(key, f"the evaluation failed: {type(exc).__name__}: {first}; this is an error in the "
                                  "evaluation code, not in your run — please report it")
        finally:
            with self._lock:
                self._stop.discard(key)


class EvaluationRunner(QObject):
    """Evaluate runs in a background thread, one at a time (see the module docstring)."""

    progress = Signal(str, str, int, int)
    finished = Signal(str, object, bool)
    failed = Signal(str, str)
    cancelled = Signal(str)
    _submit = Signal(str, str, str, object, bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._stop: set[str] = set()
        self._pending: list[str] = []
        self._thread: QThread | None = None
        self._adapter: _Adapter | None = None
        self.closed = False

    def _start(self) -> None:
        if self._thread is not None:
            return
        self._thread = QThread()
        self._thread.setObjectName("evaluationThread")
        self._adapter = _Adapter(self._stop, self._lock)
        self._adapter.moveToThread(self._thread)
        self._submit.connect(self._adapter.evaluate)
        self._adapter.progress.connect(self.progress)
        self._adapter.done.connect(self._on_done)
        self._adapter.failed.connect(self._on_failed)
        self._adapter.cancelled.connect(self._on_cancelled)
        self._thread.started.connect(self._adapter.lower_priority)
        self._thread.start()

    def request(self, run_dir: Path | str, which: str = "best", *, data_root: Path | None = None,
                use_cache: bool = True) -> str:
        """Queue the evaluation of ``run_dir``'s ``which`` checkpoint; returns its key. A request
        already waiting or under way is not queued twice."""
        key = request_key(run_dir, which)
        if self.closed:                 # the window is closing: nothing starts any more
            return key
        with self._lock:
            self._stop.discard(key)
            self._stop.discard("*")
        if key in self._pending:
            return key
        self._start()
        self._pending.append(key)
        self._submit.emit(key, str(run_dir), which, data_root, bool(use_cache))
        return key

    def cancel(self, key: str | None = None) -> None:
        """Stop request ``key`` (every request when None) at its next batch; a waiting one is dropped."""
        with self._lock:
            if key is None:
                self._stop.update(self._pending)
            elif key in self._pending:
                self._stop.add(key)

    def pending(self) -> list[str]:
        """The keys waiting or under way, in order."""
        return list(self._pending)

    def busy(self) -> bool:
        return bool(self._pending)

    def _forget(self, key: str) -> None:
        if key in self._pending:
            self._pending.remove(key)
        if not self._pending:   # idle: the thread ends until the next request
            self.shutdown()

    def _on_done(self, key: str, ev: Any, from_cache: bool) -> None:
        self._forget(key)
        self.finished.emit(key, ev, from_cache)

    def _on_failed(self, key: str, message: str) -> None:
        self._forget(key)
        self.failed.emit(key, message)

    def _on_cancelled(self, key: str) -> None:
        self._forget(key)
        self.cancelled.emit(key)

    def close(self, timeout_ms: int = 10_000) -> bool:
        """Cancel everything, end the thread and take no more requests (the window closes); True
        when the thread has ended."""
        self.closed = True
        return self.shutdown(timeout_ms)

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel everything and end the thread (a later request starts it again); True when it has ended."""
        self.cancel(None)
        thread = self._thread
        if thread is None:
            return True
        thread.quit()
        if not thread.wait(max(0, int(timeout_ms))):
            return False
        # the thread has ended: dropping the last references here destroys both on the GUI thread
        self._thread = None
        self._adapter = None
        self._pending.clear()
        return True

