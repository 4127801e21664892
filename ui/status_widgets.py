"""Status-bar widgets of a training run: progress (epoch/step), ETA, samples/s, device, failures.

:class:`TrainingStatus` is fed the same event batches as the dashboard. When a run fails (NaN loss,
out of memory, missing data set, an error in a layer) it shows the message and the hint in red and
puts them in the status bar's message; the window stays usable and the model in the editor is not
touched.
"""
from __future__ import annotations

import math
import time
from typing import Any, Iterable

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QSizePolicy, QStatusBar, QWidget

from ui.statusbar import ElidedLabel
from workbench.events import DataProgress, EpochEnd, Failed, Finished, Metrics, RunStarted, Stopped

__all__ = ["TrainingStatus", "format_eta"]


def format_eta(seconds: float | None) -> str:
    """``seconds`` (wall clock) as ``1h 02m``, ``3m 05s`` or ``12s``; ``—`` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "—"
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h {(s % 3600) // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s}s"


class TrainingStatus(QWidget):
    """Progress bar (epoch and step), ETA, samples/s and device name, for the status bar."""

    def __init__(self, status_bar: QStatusBar | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingStatus")
        self.status_bar = status_bar
        self.progress = QProgressBar(self)
        self.progress.setObjectName("trainingProgress")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFixedWidth(200)
        self.progress.setTextVisible(True)
        self.progress.setFormat("idle")
        self.eta = QLabel("", self)
        self.eta.setObjectName("trainingEta")
        self.speed = QLabel("", self)
        self.speed.setObjectName("trainingSpeed")
        self.device = ElidedLabel("", self, min_chars=8)
        self.device.setObjectName("trainingDevice")
        self.message = ElidedLabel("", self, min_chars=14)   # elided, never cut mid-word
        self.message.setObjectName("trainingMessage")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 6, 0)
        layout.setSpacing(10)
        # The message takes what is left and is elided first; the figures keep their width.
        self.message.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.message, 1)
        for w in (self.progress, self.eta, self.speed, self.device):
            layout.addWidget(w)
        self._started: RunStarted | None = None
        self._t0 = 0.0
        self._step0 = 0
        self.failure: Failed | None = None

    # ------------------------------------------------------------------ feeding
    def _fit_progress_text(self, longest: str) -> None:
        """Widen the progress bar (never below 200 px) so its longest text for this run fits on one
        line: 'epoch 206/600 · step 3502/10200' wrapped at 200 px."""
        needed = self.progress.fontMetrics().horizontalAdvance(longest) + 24
        self.progress.setFixedWidth(max(200, needed))

    def run_starting(self, label: str) -> None:
        self.failure = None
        self._started = None
        self.message.setStyleSheet("")
        self.message.setText(f"Preparing {label}…")
        self.progress.setRange(0, 0)   # busy until RunStarted (data loading, model build)
        self.progress.setFormat("starting")
        self.eta.setText("")
        self.speed.setText("")
        self.device.setText("")
        self._show(f"Starting {label}: loading data and building the model…")

    def add_events(self, events: Iterable[Any]) -> None:
        for event in events:
            if isinstance(event, RunStarted):
                self._started = event
                self._t0 = time.monotonic()
                self._step0 = event.start_step
                self.progress.setRange(0, max(event.total_steps, 1))
                self.progress.setValue(event.start_step)
                self.progress.setFormat(f"epoch {event.start_epoch + 1}/{event.epochs} · step "
                                        f"{event.start_step}/{event.total_steps}")
                self._fit_progress_text(f"epoch {event.epochs}/{event.epochs} · step "
                                        f"{event.total_steps}/{event.total_steps}")
                self.device.setText(f"device: {event.device_name or event.device}")
                self.message.setText("Training")
                self._show(f"Training {event.preset_name} on {event.device_name or event.device}")
            elif isinstance(event, DataProgress):
                self._on_data(event)
            elif isinstance(event, Metrics):
                self._on_metrics(event)
            elif isinstance(event, EpochEnd):
                pass
            elif isinstance(event, (Finished, Stopped, Failed)):
                self.finish(event)

    def _on_data(self, d: DataProgress) -> None:
        """Before the first step: how far the data load is (images decoded, bytes downloaded)."""
        if self._started is not None:
            return
        if d.total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * min(d.done, d.total) / d.total))
        else:
            self.progress.setRange(0, 0)
        if d.what.startswith("downloading"):
            figures = f"{d.done / 1e6:,.1f}" + (f" of {d.total / 1e6:,.1f} MB" if d.total else " MB")
        else:
            figures = f"{d.done:,}" + (f" of {d.total:,}" if d.total else "")
        self.progress.setFormat(d.what.split(" ", 1)[0])
        self.message.setText(f"{d.what[:1].upper()}{d.what[1:]}: {figures}")

    def _on_metrics(self, m: Metrics) -> None:
        start = self._started
        self.speed.setText(f"{m.samples_per_s:,.0f} samples/s")
        if start is None:
            return
        self.progress.setValue(min(m.step, start.total_steps))
        self.progress.setFormat(f"epoch {m.epoch + 1}/{start.epochs} · step {m.step}/{start.total_steps}")
        done = m.step - self._step0
        left = start.total_steps - m.step
        elapsed = time.monotonic() - self._t0
        eta = elapsed / done * left if done > 0 else None
        self.eta.setText(f"ETA {format_eta(eta)}")

    def finish(self, final: Any) -> None:
        """Show how the run ended."""
        self.progress.setRange(0, 1)
        summary = final.summary
        if isinstance(final, Failed):
            self.failure = final
            self.progress.setValue(0)
            self.progress.setFormat("failed")
            where = f" at step {final.step}" if final.step is not None else ""
            if summary.seconds:
                where += f" after {format_eta(summary.seconds)}"
            text = f"Run failed{where}: {final.message}"
            self.message.setStyleSheet("color: #d8383a; font-weight: 600;")
            self.message.setText(text)
            self.message.setToolTip(f"{text}\n{final.hint}" if final.hint else text)
            self.eta.setText("")
            if self.status_bar is not None:
                self.status_bar.clearMessage()   # the whole message and hint are in the Train workspace's banner
            return
        done = isinstance(final, Finished)
        start = self._started
        if done or start is None:
            self.progress.setValue(1)
            self.progress.setFormat("finished" if done else "stopped")
        else:   # a stopped run: the bar shows how far it got, not a full bar
            self.progress.setRange(0, max(start.total_steps, 1))
            self.progress.setValue(min(summary.steps, start.total_steps))
            self.progress.setFormat(f"stopped at step {summary.steps}/{start.total_steps}")
        self.eta.setText("")
        figure = ""
        if summary.best_val_accuracy is not None:
            figure = f", best val accuracy {100 * summary.best_val_accuracy:.2f}%"
        elif summary.best_val_rmse is not None:
            figure = f", best val RMSE {summary.best_val_rmse:.4g}"
        elif summary.final_train_loss is not None:
            figure = f", train loss {summary.final_train_loss:.4g} (no validation yet)"
        text = (f"Run {'finished' if done else 'stopped'} after {summary.steps} steps "
                f"({format_eta(summary.seconds)}){figure}")
        self.message.setStyleSheet("")
        self.message.setText(text)
        self.message.setToolTip(summary.run_dir or "")
        if self.status_bar is not None:
            self.status_bar.clearMessage()   # the "Training …" message is over; the label says how it ended

    def set_paused(self, paused: bool) -> None:
        self.message.setText("Paused" if paused else "Training")

    def _show(self, text: str) -> None:
        if self.status_bar is not None:
            self.status_bar.showMessage(text)
