"""The training side of the main window: Run / Stop / Pause, the dashboard, the runs list, status.

``install_training(window) -> TrainingController`` is called once by :func:`ui.app.build_main_window`
after the :class:`ui.main_window.MainWindow` is built. It only uses the window's public seam:
``document``, ``run_block_reason()``, ``validity_changed``, ``add_dock()``, ``menu()``, ``toolbar``,
``statusBar()``, ``training_hooks`` and ``ask``.

Life of a run: Run (Ctrl+R) takes a deep copy of the document's preset, creates a run folder under
:func:`workbench.runs.default_runs_root` (env ``AFWB_RUNS``), makes the document read-only and starts
a :class:`ui.worker.TrainingWorker`. Event batches feed the dashboard's buffers and the status bar;
the final event (finished, stopped or failed) makes the document editable again and the window
ready for the next run. Closing the window stops and joins the worker first.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence

from ui.dashboard import Dashboard
from ui.plot_buffers import RunBuffers
from ui.runs_panel import RunsPanel
from ui.status_widgets import TrainingStatus
from ui.worker import TrainerFactory, TrainingWorker

__all__ = ["TrainingController", "install_training", "data_root_setting", "JOIN_TIMEOUT_MS"]

#: How long closing the window waits for a stopping run, in milliseconds.
JOIN_TIMEOUT_MS = 10_000

#: QSettings key of the data folder used when env ``AFWB_DATA`` is not set.
DATA_ROOT_KEY = "training/data_root"


def data_root_setting(settings: Any = None) -> Path | None:
    """The data folder for runs: env ``AFWB_DATA``, else the ``training/data_root`` setting, else None
    (the trainer's default per-user folder)."""
    env = os.environ.get("AFWB_DATA")
    if env:
        return Path(env).expanduser()
    if settings is not None:
        value = settings.value(DATA_ROOT_KEY)
        if value:
            return Path(str(value)).expanduser()
    return None


class TrainingController(QObject):
    """Owns the run actions, the dashboard and runs docks, the status widgets and the worker."""

    #: A run started: its id (the run folder as text).
    run_started = Signal(str)
    #: A run ended: the final event (``Finished``, ``Stopped`` or ``Failed``).
    run_finished = Signal(object)

    def __init__(self, window: Any, *, trainer_factory: TrainerFactory | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.trainer_factory = trainer_factory
        self.worker: TrainingWorker | None = None
        self.run_id: str | None = None
        self.last_final: Any = None
        self._run_count = 0
        self._preset_name = ""

        # ---------------------------------------------------------------- widgets and docks
        self.dashboard = Dashboard()
        self.runs_panel = RunsPanel(ask=getattr(window, "ask", None))
        self.status = TrainingStatus(window.statusBar())
        window.statusBar().addPermanentWidget(self.status)
        self.dashboard_dock = window.add_dock(self.dashboard, "Training dashboard",
                                              Qt.DockWidgetArea.BottomDockWidgetArea, "dashboardDock")
        self.runs_dock = window.add_dock(self.runs_panel, "Runs", Qt.DockWidgetArea.BottomDockWidgetArea, "runsDock")
        try:
            window.splitDockWidget(self.dashboard_dock, self.runs_dock, Qt.Orientation.Horizontal)
            window.resizeDocks([self.dashboard_dock, self.runs_dock], [1000, 300], Qt.Orientation.Horizontal)
        except (AttributeError, RuntimeError):  # a window without dock splitting (test doubles)
            pass

        # ---------------------------------------------------------------- actions
        self.run_action = QAction("Run", window)
        self.run_action.setObjectName("runAction")
        self.run_action.setShortcut(QKeySequence("Ctrl+R"))
        self.run_action.triggered.connect(self.start_run)
        self.stop_action = QAction("Stop", window)
        self.stop_action.setObjectName("stopAction")
        self.stop_action.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.stop_action.setToolTip("Stop the run (Esc): it saves a checkpoint and ends")
        self.stop_action.triggered.connect(self.stop)
        self.pause_action = QAction("Pause", window)
        self.pause_action.setObjectName("pauseAction")
        self.pause_action.setCheckable(True)
        self.pause_action.setToolTip("Pause or resume the run")
        self.pause_action.toggled.connect(self.set_paused)
        toolbar = window.toolbar
        toolbar.addSeparator()
        for action, name in ((self.run_action, "runButton"), (self.stop_action, "stopButton"),
                             (self.pause_action, "pauseButton")):
            toolbar.addAction(action)
            button = toolbar.widgetForAction(action)
            if button is not None:
                button.setObjectName(name)
        run_menu = window.menu("&Run")
        for action in (self.run_action, self.stop_action, self.pause_action):
            run_menu.addAction(action)
        run_menu.addSeparator()
        self.refresh_runs_action = run_menu.addAction("Refresh runs list", self.refresh_runs)
        for action in (self.run_action, self.stop_action, self.pause_action):
            window.addAction(action)   # shortcuts work whatever has focus

        # ---------------------------------------------------------------- wiring
        window.validity_changed.connect(lambda _reason: self.update_actions())
        self.runs_panel.visibility_changed.connect(self._on_visibility)
        self.runs_panel.open_preset_requested.connect(self.open_preset)
        self.runs_panel.run_renamed.connect(self.dashboard.rename_run)
        self.runs_panel.run_deleted.connect(self.dashboard.remove_run)
        window.training_hooks.append(self.shutdown)
        self.refresh_runs()
        self.update_actions()

    # ------------------------------------------------------------------ state
    def is_training(self) -> bool:
        return self.worker is not None

    def run_block_reason(self) -> str | None:
        """Why Run is disabled now (None when a run can start)."""
        if self.worker is not None:
            return "A run is training; stop it first (Esc)"
        return self.window.run_block_reason()

    def update_actions(self) -> None:
        reason = self.run_block_reason()
        training = self.worker is not None
        self.run_action.setEnabled(reason is None)
        if reason is None:
            self.run_action.setToolTip("Train the model in the editor (Ctrl+R)")
        else:
            self.run_action.setToolTip(f"Cannot run: {reason}")
        button = self.window.toolbar.widgetForAction(self.run_action)
        if button is not None:
            button.setToolTip(self.run_action.toolTip())
        self.stop_action.setEnabled(training)
        self.pause_action.setEnabled(training)
        if not training:
            if reason is not None:
                self.status.message.setStyleSheet("color: #d8383a;")
                self.status.message.setText(f"Cannot run: {reason}")
                self.status.message.setToolTip(reason)
            elif self.status.message.text().startswith("Cannot run"):
                self.status.message.setStyleSheet("")
                self.status.message.setText("Ready to run (Ctrl+R)")
                self.status.message.setToolTip("")

    # ------------------------------------------------------------------ runs
    def start_run(self) -> bool:
        """Start training the document's preset; False (and the reason shown) when it cannot."""
        reason = self.run_block_reason()
        if reason is not None:
            self.update_actions()
            self.window.statusBar().showMessage(f"Cannot run: {reason}", 10000)
            return False
        from workbench.runs import default_runs_root, new_run_dir

        preset = self.window.document.preset()
        try:
            run_dir = new_run_dir(default_runs_root(), preset.name)
        except OSError as exc:
            self.window.statusBar().showMessage(
                f"Cannot create a run folder under {default_runs_root()}: {exc}. "
                "Set AFWB_RUNS to a writable folder.", 15000)
            return False
        self._run_count += 1
        self._preset_name = preset.name
        label = f"run {self._run_count} · {preset.name}"
        entry = self.runs_panel.add_live_run(label, run_dir, preset)
        self.run_id = entry.run_id
        self.dashboard.start_run(entry.run_id, label)
        self.status.run_starting(label)
        self.window.document.set_read_only(
            True, f"Training {preset.name} — the model is read-only until the run ends")
        worker = TrainingWorker(preset, run_dir, data_root_setting(getattr(self.window, "settings", None)),
                                factory=self.trainer_factory, parent=self)
        worker.events.connect(self._on_events)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self.pause_action.setChecked(False)
        self.update_actions()
        worker.start()
        self.run_started.emit(entry.run_id)
        return True

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.status.message.setText("Stopping…")

    def set_paused(self, paused: bool) -> None:
        self.pause_action.setText("Resume" if paused else "Pause")
        if self.worker is None:
            return
        if paused:
            self.worker.pause()
        else:
            self.worker.resume()
        self.status.set_paused(paused)

    def _on_events(self, batch: list) -> None:
        if self.run_id is None:
            return
        self.dashboard.add_events(self.run_id, batch)
        self.status.add_events(batch)

    def _on_finished(self, final: Any) -> None:
        run_id = self.run_id
        worker = self.worker
        self.worker = None
        self.last_final = final
        if run_id is not None:
            self.dashboard.end_run(run_id)
            self.runs_panel.update_run(run_id, getattr(final, "summary", None), live=False)
        if final is not None:
            self.status.finish(final)
        self.window.document.set_read_only(False, "")
        with_block = self.pause_action.blockSignals(True)
        self.pause_action.setChecked(False)
        self.pause_action.setText("Pause")
        self.pause_action.blockSignals(with_block)
        if worker is not None:
            worker.deleteLater()
        self.update_actions()
        self.run_finished.emit(final)

    # ------------------------------------------------------------------ runs list
    def refresh_runs(self) -> int:
        """Add the runs found in the runs folder to the list."""
        from workbench.runs import default_runs_root

        try:
            added = self.runs_panel.refresh_from_disk(default_runs_root())
        except OSError as exc:
            self.window.statusBar().showMessage(f"Cannot read the runs folder: {exc}", 10000)
            return 0
        damaged = sum(1 for entry in self.runs_panel.entries.values() if entry.problems)
        if damaged:
            self.window.statusBar().showMessage(
                f"{damaged} run{'s are' if damaged > 1 else ' is'} damaged in {default_runs_root()}: "
                "hover a run in the Runs list for the reason", 15000)
        return added

    def _on_visibility(self, run_ids: list) -> None:
        for run_id in run_ids:
            if not self.dashboard.has_run(run_id):
                self._load_run_curves(run_id)
        self.dashboard.set_visible_runs(run_ids)

    def _load_run_curves(self, run_id: str) -> None:
        entry = self.runs_panel.entries.get(run_id)
        if entry is None or entry.path is None:
            return
        from workbench.runs import read_metrics

        buffers = RunBuffers.from_records(read_metrics(entry.path), entry.summary)
        self.dashboard.add_run(run_id, entry.label, buffers, visible=False)

    def open_preset(self, preset: Any) -> bool:
        """Load a run's preset into the editor (refused while a run trains)."""
        if self.worker is not None:
            self.window.statusBar().showMessage("Stop the run before opening another preset", 8000)
            return False
        maybe_save: Callable[[], bool] | None = getattr(self.window, "maybe_save", None)
        if maybe_save is not None and not maybe_save():
            return False
        self.window.document.load(preset, path=None)
        return True

    # ------------------------------------------------------------------ closing
    def shutdown(self, timeout_ms: int = JOIN_TIMEOUT_MS) -> bool:
        """Stop and join the worker (window closing); True when no training thread is left."""
        worker = self.worker
        if worker is not None:
            if not worker.stop_and_join(timeout_ms):
                self.window.statusBar().showMessage("The run is still stopping; try closing again", 10000)
                return False
            if self.worker is worker:   # the final event was not delivered through the queue
                self._on_finished(worker.final)
        self.dashboard.shutdown()
        return True


def install_training(window: Any, *, trainer_factory: TrainerFactory | None = None) -> TrainingController:
    """Add Run/Stop/Pause, the dashboard and runs docks and the status widgets to ``window``."""
    controller = TrainingController(window, trainer_factory=trainer_factory)
    window.training_controller = controller
    return controller
