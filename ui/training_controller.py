"""The training side of the main window: Run / Stop / Pause, the Train and Evaluate workspaces,
the runs list, status.

``install_training(window) -> TrainingController`` is called once by :func:`ui.app.build_main_window`
after the :class:`ui.main_window.MainWindow` is built. It only uses the window's public seam:
``document``, ``run_block_reason()``, ``validity_changed``, ``add_dock()``, ``add_workspace()``,
``show_workspace()``, ``set_workspace_dock()``, ``open_run_preset()``, ``go_to_field()``, ``menu()``,
``toolbar``, ``statusBar()``, ``training_hooks``, ``settings`` and ``ask`` (the optional ones through
``getattr``, so a test double may leave them out).

Life of a run: Run (Ctrl+R) takes a deep copy of the document's preset, creates a run folder under
:func:`workbench.runs.default_runs_root` (env ``AFWB_RUNS``), makes the document read-only, shows the
Train workspace (a setting: Run → "Show Train when a run starts") and starts a
:class:`ui.worker.TrainingWorker`. Event batches feed the dashboard's buffers and the status bar;
the final event (finished, stopped or failed) makes the document editable again and the window
ready for the next run. Closing the window stops and joins the worker first.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence

from ui.dashboard import Dashboard
from ui.evaluate_view import EvaluateWorkspace, RunFacts
from ui.failures import fix_for
from ui.plot_buffers import RunBuffers
from ui.runs_panel import RunsPanel
from ui.status_widgets import TrainingStatus
from ui.worker import TrainerFactory, TrainingWorker, ddp_trainer_factory
from workbench.events import Failed

__all__ = ["TrainingController", "install_training", "data_root_setting", "JOIN_TIMEOUT_MS"]

#: How long closing the window waits for a stopping run, in milliseconds.
JOIN_TIMEOUT_MS = 10_000

#: QSettings key of the data folder used when env ``AFWB_DATA`` is not set.
DATA_ROOT_KEY = "training/data_root"

#: QSettings key: show the Train workspace when a run starts (default yes).
TRAIN_ON_RUN_KEY = "view/train_on_run"


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
        #: the device of each process of a DDP run ("cuda": one GPU each; tests use "cpu": gloo)
        self.ddp_device = "cuda"
        self.worker: TrainingWorker | None = None
        self.run_id: str | None = None
        self.last_final: Any = None
        self._run_count = 0
        self._preset_name = ""

        # ---------------------------------------------------------------- workspaces and docks
        self.dashboard = Dashboard(window)
        self.evaluate = EvaluateWorkspace(window)
        self.runs_panel = RunsPanel(window, ask=getattr(window, "ask", None))
        self.status = TrainingStatus(window.statusBar(), window)
        window.statusBar().addPermanentWidget(self.status, 3)
        add_workspace = getattr(window, "add_workspace", None)
        if add_workspace is not None:
            add_workspace("Train", self.dashboard, "Train the model and watch its curves")
            add_workspace("Evaluate", self.evaluate, "What a trained run's model does")
        else:   # a window without workspaces (test doubles): the dashboard as a dock
            self.dashboard_dock = window.add_dock(self.dashboard, "Training dashboard",
                                                  Qt.DockWidgetArea.BottomDockWidgetArea, "dashboardDock")
        palette_dock = getattr(window, "palette_dock", None)
        if palette_dock is not None:
            self.runs_dock = window.add_dock(self.runs_panel, "Runs", Qt.DockWidgetArea.LeftDockWidgetArea,
                                             "runsDock", tabify_with=palette_dock)
        else:
            self.runs_dock = window.add_dock(self.runs_panel, "Runs", Qt.DockWidgetArea.LeftDockWidgetArea,
                                             "runsDock")
        set_workspace_dock = getattr(window, "set_workspace_dock", None)
        if set_workspace_dock is not None:
            set_workspace_dock("Train", self.runs_dock)
            set_workspace_dock("Evaluate", self.runs_dock)

        # ---------------------------------------------------------------- actions
        self.run_action = QAction("Run", window)
        self.run_action.setObjectName("runAction")
        self.run_action.setShortcut(QKeySequence("Ctrl+R"))
        self.run_action.triggered.connect(lambda _checked=False: self.start_run())
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
        self.train_on_run_action = QAction("Show the Train workspace when a run starts", window, checkable=True)
        self.train_on_run_action.setObjectName("actionTrainOnRun")
        self.train_on_run_action.setChecked(self._setting(TRAIN_ON_RUN_KEY, True))
        self.train_on_run_action.toggled.connect(lambda on: self._set_setting(TRAIN_ON_RUN_KEY, on))
        run_menu.addAction(self.train_on_run_action)
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
        self.runs_panel.tree.currentItemChanged.connect(lambda *_: self._show_selected_run())
        self.dashboard.colors_changed.connect(self.runs_panel.set_run_colors)
        self.dashboard.fix_requested.connect(self._go_to_fix)
        window.document.changed.connect(self._on_document_changed)
        window.training_hooks.append(self.confirm_close)
        window.training_hooks.append(self.shutdown)
        self.refresh_runs()
        self._on_document_changed()
        self.update_actions()

    # ------------------------------------------------------------------ settings
    def _setting(self, key: str, default: bool) -> bool:
        settings = getattr(self.window, "settings", None)
        if settings is None:
            return default
        value = settings.value(key, default)
        return value if isinstance(value, bool) else str(value).lower() in ("true", "1", "yes")

    def _set_setting(self, key: str, value: bool) -> None:
        settings = getattr(self.window, "settings", None)
        if settings is not None:
            settings.setValue(key, bool(value))

    def _on_document_changed(self) -> None:
        """The depth panel describes the model on screen (its InfiniteDepth layers)."""
        from ui.document import iter_paths

        layers = self.window.document.current.model.layers
        names = []
        for path in iter_paths(layers):
            layer = self.window.document.layer(path)
            if layer.type == "InfiniteDepth":
                names.append(f"{path[0]}_InfiniteDepth" if len(path) == 1
                             else f"#{'.'.join(str(i) for i in path)} InfiniteDepth")
        self.dashboard.set_model_depth_layers(names)
        from workbench.protocol import published_targets

        self.dashboard.set_targets(published_targets(self.window.document.current))

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
    def start_run(self, preset: Any = None, label: str | None = None) -> bool:
        """Start training the document's preset (or ``preset``, e.g. one run of a reproduction
        protocol, labelled ``label``); False (and the reason shown) when it cannot."""
        reason = self.run_block_reason()
        if reason is not None:
            self.update_actions()
            self.window.statusBar().showMessage(f"Cannot run: {reason}", 10000)
            return False
        from workbench.runs import default_runs_root, new_run_dir

        if preset is None:
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
        label = f"run {self._run_count} · {label or preset.name}"
        entry = self.runs_panel.add_live_run(label, run_dir, preset)
        self.run_id = entry.run_id
        self.dashboard.start_run(entry.run_id, label, dataset=preset.task.dataset, loss=preset.task.loss)
        if self.train_on_run_action.isChecked() and hasattr(self.window, "show_workspace"):
            # next event-loop turn: the first paint of the plots is not added to this click's work
            QTimer.singleShot(0, self, lambda: self.window.show_workspace("Train"))
        self.status.run_starting(label)
        self.window.document.set_read_only(
            True, f"Training {preset.name} — the model is read-only until the run ends")
        worker = TrainingWorker(preset, run_dir, data_root_setting(getattr(self.window, "settings", None)),
                                factory=self._factory_for_run(), parent=self)
        worker.events.connect(self._on_events)
        worker.finished.connect(self._on_finished)
        self.worker = worker
        self.pause_action.setChecked(False)
        self.update_actions()
        worker.start()
        self.run_started.emit(entry.run_id)
        return True

    def _factory_for_run(self) -> TrainerFactory | None:
        """The trainer factory of the next run: torchrun processes when the device choice is "all N
        GPUs (DDP)" (the inspector's ``ddp_processes``), else the local one."""
        nproc = int(getattr(getattr(self.window, "inspector", None), "ddp_processes", 0) or 0)
        if nproc > 1:
            return ddp_trainer_factory(nproc, self.ddp_device)
        return self.trainer_factory

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
        if isinstance(final, Failed) and run_id is not None:
            entry = self.runs_panel.entries.get(run_id)
            fix = fix_for(final.message, final.hint)
            self.dashboard.show_failure(entry.label if entry else "The run", final.message, final.hint, final.step,
                                        fix.target if fix else "", fix.label if fix else "")
        self._show_selected_run()
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
        task = entry.preset.task if entry.preset is not None else None
        self.dashboard.add_run(run_id, entry.label, buffers, visible=False,
                               dataset=getattr(task, "dataset", None), loss=getattr(task, "loss", "auto"))

    def open_preset(self, preset: Any) -> bool:
        """Make a run's preset the document (refused while a run trains): title, path label and
        Revert follow it."""
        if self.worker is not None:
            self.window.statusBar().showMessage("Stop the run before opening another preset", 8000)
            return False
        maybe_save: Callable[[], bool] | None = getattr(self.window, "maybe_save", None)
        if maybe_save is not None and not maybe_save():
            return False
        entry = self.runs_panel.selected()
        open_run_preset = getattr(self.window, "open_run_preset", None)
        if open_run_preset is not None:
            open_run_preset(preset, entry.label if entry is not None else "?")
            if hasattr(self.window, "show_workspace"):
                self.window.show_workspace("Build")
        else:
            self.window.document.load(preset, path=None)
        return True

    def _go_to_fix(self, target: str) -> None:
        """The failure banner's button: show the setting its hint names (``train.lr``, …)."""
        go = getattr(self.window, "go_to_field", None)
        if go is not None and "." in target:
            section, name = target.split(".", 1)
            go(section, name)

    def _show_selected_run(self) -> None:
        """The Evaluate page follows the run selected in the runs list (else the current run)."""
        entry = self.runs_panel.selected()
        if entry is None and self.run_id is not None:
            entry = self.runs_panel.entries.get(self.run_id)
        if entry is None:
            self.evaluate.set_run(None)
            return
        summary = entry.summary
        status = "training" if entry.live else (summary.status if summary is not None else "unknown")
        task = summary.task if summary is not None else None
        dataset = features = None
        image = False
        if entry.preset is not None:
            dataset = entry.preset.task.dataset
            try:
                from workbench.catalog import dataset_info

                info = dataset_info(dataset, entry.preset.task.options)
                shape = tuple(info.input_shape)
                image = len(shape) == 3
                features = int(shape[0]) if len(shape) == 1 else None
                task = task or info.task
            except Exception:  # noqa: BLE001 - an unknown data set: say less, never fail
                pass
        self.evaluate.set_run(RunFacts(entry.label, status, task, dataset, features, image, entry.path))
    # ------------------------------------------------------------------ closing
    def confirm_close(self) -> bool:
        """Closing the window while a run trains asks first (the run is stopped and saved if so)."""
        if self.worker is None:
            return True
        ask = getattr(self.window, "ask", None)
        if ask is None:
            return True
        answer = ask("A run is training",
                     "A run is training. Stop it and close the window?\n\nThe run stops at its next step and "
                     "is saved as stopped, with a checkpoint.", ("Stop the run and close", "Keep training"))
        return answer == "Stop the run and close"

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
    from ui.reproduce import install_reproduce

    install_reproduce(controller)
    return controller
