"""Presets → "Reproduce…": run the preset's published protocol in the app.

The dialog shows what a budget (smoke, cpu, full) runs for the preset in the editor — the grid
points and seeds of its ``reproduction`` protocol (:func:`workbench.reproduce.plan_experiment`), the
time estimate, or why the budget does not run it. Start hands the runs to the training controller
one at a time (:class:`ReproduceSession`): each becomes a run in the runs list, checked, so the
dashboard overlays them, and trains on the controller's background thread as any other run; Stop
ends the current run and cancels the rest. The published figures themselves are drawn as dashed
target lines by the dashboard (:meth:`ui.dashboard.Dashboard.set_targets`).
"""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QPlainTextEdit,
                               QVBoxLayout, QWidget)

from workbench.protocol import BUDGETS

__all__ = ["ReproduceDialog", "ReproduceSession", "install_reproduce", "plan_text"]


def plan_text(exp: Any) -> str:
    """What an expanded experiment runs, in a few lines (or why it does not run)."""
    lines = []
    if exp.skip:
        lines.append(f"Not run under '{exp.budget}': {exp.skip}")
    else:
        n = len(exp.runs)
        lines.append(f"{n} run{'s' if n != 1 else ''}, one after another:")
        lines += [f"  • {run.label}" for run in exp.runs[:12]]
        if n > 12:
            lines.append(f"  … and {n - 12} more")
        if exp.shortened:
            lines.append(f"Shortened by the budget: {exp.shortened}")
    if exp.plan.estimate:
        lines.append(f"Estimate: {exp.plan.estimate}")
    figures = [f"{f.metric} {f.value:g}{' ' + f.unit if f.unit else ''} ({f.statistic})"
               for f in exp.protocol.published if not f.at][:4]
    if figures:
        lines.append("Published: " + "; ".join(figures))
    return "\n".join(lines)


class ReproduceDialog(QDialog):
    """Pick a budget for the preset's protocol and see what it runs; accepted → :attr:`experiment`."""

    def __init__(self, preset: Any, key: str, parent: QWidget | None = None, device: str | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reproduceDialog")
        self.setWindowTitle(f"Reproduce {preset.name}")
        self.preset = preset
        self.key = key
        self.device = device
        self.experiment: Any = None
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.budget = QComboBox(self)
        self.budget.setObjectName("reproduceBudget")
        self.budget.addItems(list(BUDGETS))
        self.budget.setCurrentText("smoke")
        self.budget.setToolTip("smoke: a few steps each; cpu: what fits in about an hour on a 2-core CPU; "
                               "full: everything as published (GPU)")
        form.addRow("Budget", self.budget)
        layout.addLayout(form)
        self.plan = QPlainTextEdit(self)
        self.plan.setObjectName("reproducePlan")
        self.plan.setReadOnly(True)
        self.plan.setMinimumSize(520, 200)
        layout.addWidget(self.plan)
        self.note = QLabel("The runs appear in the Runs list and are overlaid on the dashboard; "
                           "Stop (Esc) ends the current run and cancels the rest.", self)
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, parent=self)
        self.start_button = self.buttons.addButton("Start", QDialogButtonBox.ButtonRole.AcceptRole)
        self.start_button.setObjectName("reproduceStart")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.budget.currentTextChanged.connect(self._update)
        self._update()

    def _update(self) -> None:
        from workbench.reproduce import plan_experiment
        from workbench.spec import SpecError

        try:
            self.experiment = plan_experiment(self.key, self.preset, self.budget.currentText(), device=self.device)
        except SpecError as exc:
            self.experiment = None
            self.plan.setPlainText("The protocol cannot run with this preset:\n"
                                   + "\n".join(str(p) for p in exc.problems))
            self.start_button.setEnabled(False)
            return
        self.plan.setPlainText(plan_text(self.experiment))
        self.start_button.setEnabled(bool(self.experiment.runs))


class ReproduceSession(QObject):
    """Feeds an experiment's runs to the training controller one at a time.

    ``progressed(done, total)`` after each run; ``ended(completed)`` once (False when cancelled or
    a run could not start)."""

    progressed = Signal(int, int)
    ended = Signal(bool)

    def __init__(self, controller: Any, experiment: Any) -> None:
        super().__init__(controller)
        self.controller = controller
        self.experiment = experiment
        self.pending = list(experiment.runs)
        self.total = len(self.pending)
        self.done = 0
        self.cancelled = False
        self.run_ids: list[str] = []
        self._active = False
        controller.run_finished.connect(self._on_finished)
        controller.stop_action.triggered.connect(self.cancel)

    def start(self) -> bool:
        """Start the first run; False when it could not start (the controller says why)."""
        self._active = True
        return self._next()

    def cancel(self) -> None:
        """No further run starts (the current one is stopped by the Stop action itself)."""
        if self._active and self.pending:
            self.cancelled = True
            self.pending.clear()

    def _next(self) -> bool:
        if not self.pending:
            self._finish(not self.cancelled)
            return False
        run = self.pending.pop(0)
        label = f"{self.experiment.key} {run.label} ({self.experiment.budget})"
        if not self.controller.start_run(run.preset, label):
            self.cancelled = True
            self._finish(False)
            return False
        self.run_ids.append(self.controller.run_id)
        self.controller.window.statusBar().showMessage(
            f"Reproducing {self.experiment.key}: run {self.done + 1} of {self.total}", 5000)
        return True

    def _on_finished(self, _final: Any) -> None:
        if not self._active:
            return
        self.done += 1
        self.progressed.emit(self.done, self.total)
        if self.pending and not self.cancelled:
            QTimer.singleShot(0, self, self._next)   # after the controller has finished with this run
        else:
            self._finish(not self.cancelled and self.done == self.total)

    def _finish(self, completed: bool) -> None:
        if not self._active:
            return
        self._active = False
        self.controller.run_finished.disconnect(self._on_finished)
        self.controller.stop_action.triggered.disconnect(self.cancel)
        self.ended.emit(completed)
        self.deleteLater()


def _preset_key(preset: Any) -> str:
    """The built-in key whose preset has this name, else a slug of the name (for labels)."""
    from workbench.presets import builtin_presets
    from workbench.runs import slugify

    for info in builtin_presets():
        if info.name == preset.name:
            return info.key
    return slugify(preset.name)


def install_reproduce(controller: Any) -> QAction:
    """Presets → "Reproduce…" (enabled when the preset on screen has a protocol and nothing trains)."""
    window = controller.window
    action = QAction("Reproduce…", window)
    action.setObjectName("actionReproduce")
    action.setToolTip("Run the preset's published protocol (its lr grid, sweep or seeds) for a budget")
    menu = window.menu("&Presets")
    menu.addSeparator()
    menu.addAction(action)
    controller.reproduce_action = action
    controller.reproduce_session = None

    def update() -> None:
        has = getattr(window.document.current, "reproduction", None) is not None
        action.setEnabled(has and not controller.is_training())
        action.setToolTip("Run the preset's published protocol for a budget" if has else
                          "This preset cites no published experiment (it has no reproduction protocol)")

    def open_dialog() -> ReproduceDialog | None:
        if window.document.current.reproduction is None or controller.is_training():
            return None
        preset = window.document.preset()
        dialog = ReproduceDialog(preset, _preset_key(preset), window)
        dialog.accepted.connect(lambda: start(dialog.experiment))
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        controller.reproduce_dialog = dialog
        return dialog

    def start(experiment: Any) -> ReproduceSession | None:
        if experiment is None or not experiment.runs:
            return None
        session = ReproduceSession(controller, experiment)
        controller.reproduce_session = session
        session.ended.connect(lambda _ok: setattr(controller, "reproduce_session", None))
        session.start()
        return session

    controller.open_reproduce = open_dialog
    controller.start_reproduction = start
    action.triggered.connect(lambda _checked=False: open_dialog())
    window.document.changed.connect(update)
    controller.run_started.connect(lambda _id: update())
    controller.run_finished.connect(lambda _final: update())
    update()
    return action
