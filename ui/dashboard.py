"""The Train workspace's dashboard: loss, accuracy (or RMSE), gradient norm per layer, learned
depth and throughput, for the live run and any runs overlaid on it.

Events from the worker are stored in :class:`ui.plot_buffers.RunBuffers` (one per run) as they
arrive; the plots are redrawn from those buffers by a ~20 Hz ``QTimer`` owned by the dashboard. The
timer runs only while a run is active or new data waits to be drawn, and stops on close, so an idle
dashboard costs nothing (and leaves no active timer behind).

Reading it:

* **Runs are colours.** Every drawn run has its own colour (the runs list shows it as a swatch and
  the bar above the plots names it); the current run is drawn a little bolder. Within a run, the
  training curve is a line (faint raw + bold smoothed), validation is markers when there are ≤
  :data:`MARKER_LIMIT` points, else a dotted line. The gradient plot colours *layers* (by their
  index in the model), so there runs differ by line style (current solid, others dashed, dotted).
* **Controls** above the plots: the x axis (step, epoch, or training time), smoothing (the
  TensorBoard-style EMA of every training curve; learned depth is a parameter and is drawn as it
  is), log scale per plot where it makes sense (loss, RMSE, gradient norm), legends on/off.
* **Failures** show as a banner above the plots: message, hint and, where the hint names a
  setting, a button that goes to it (:attr:`Dashboard.fix_requested`).
* Overlaying a run of another data set or task kind shows a warning line: its curves are drawn, but
  they do not measure the same thing.

Plots are laid out in three columns when the dashboard is wide enough, else two or one, in a
scroll area, so nothing is ever squeezed below a legible size.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFrame, QGridLayout, QHBoxLayout, QLabel, QMenu, QPushButton,
                               QScrollArea, QSizePolicy, QSlider, QToolButton, QVBoxLayout, QWidget)

from ui.plot_buffers import X_AXES, RunBuffers, SmoothedCache
from ui.plots import AskPath, Curve, DepthPanel, GradNormPanel, PlotPanel, layer_color, run_color, run_style
from ui.statusbar import ElidedLabel

__all__ = ["Dashboard", "REDRAW_MS", "LOSS_LABELS", "MARKER_LIMIT", "loss_axis_label", "short_label"]

#: Redraw period of the plots while a run is active, in milliseconds (~20 Hz).
REDRAW_MS = 50

#: The dashboard's plots, in redraw order.
PANEL_NAMES = ("loss", "accuracy", "grad", "depth", "throughput")

#: At most this many plots are redrawn per timer tick (a full redraw is spread over ticks).
PANELS_PER_TICK = 2

#: A tick draws its second plot only if the first took less than this (milliseconds of the GUI
#: thread). Qt repaints each changed plot 3–4 times right after the tick (items, then the layout
#: its legend changed), 2–3 ms each, in the same event-loop pass: two plots gaining curves and
#: legend entries in one tick held the loop 35–50 ms (bench/gui_latency.py --first-run). Most ticks
#: now draw one plot, so each plot is redrawn at least every len(PANEL_NAMES) × REDRAW_MS ms.
TICK_BUDGET_MS = 4.0

#: Validation points are drawn as markers up to this many per curve, as a line beyond.
MARKER_LIMIT = 50

#: The y label of the loss plot for the default loss of each task kind.
LOSS_LABELS = {"classification": "loss (cross-entropy)", "regression": "loss (MSE)"}

#: Titles of the x axes (the keys are :data:`ui.plot_buffers.X_AXES`).
X_LABELS = {"step": "step", "epoch": "epoch", "time": "training time (s)"}
#: The x axis choices as the bar's combo box names them.
X_CHOICES = {"step": "x: step", "epoch": "x: epoch", "time": "x: time (s)"}

#: Smallest width (pixels) of a plot column, and height of a plot row, before the grid reflows.
MIN_COLUMN_WIDTH = 250
MIN_ROW_HEIGHT = 250


def loss_axis_label(loss: str | None, task: str) -> str:
    """The loss plot's y label for the preset's ``task.loss`` ("auto", "cross_entropy", "mse") on a
    ``task`` ("classification" / "regression") data set: the loss the trainer actually uses."""
    if loss in (None, "", "auto"):
        return LOSS_LABELS.get(task, "loss")
    if loss == "cross_entropy":
        return "loss (cross-entropy)"
    if loss == "mse":
        return "loss (MSE, one-hot targets)" if task == "classification" else "loss (MSE)"
    return f"loss ({loss})"


def short_label(label: str, limit: int = 22) -> str:
    """A run's label for a legend: the part before " · " (``run 2 · Z-Net …`` → ``run 2``), cut
    to ``limit`` characters."""
    head = label.split(" · ", 1)[0]
    return head if len(head) <= limit else head[: limit - 1] + "…"


@dataclass
class _Run:
    run_id: str
    label: str
    buffers: RunBuffers
    dataset: str | None = None
    loss: str = "auto"
    smooth: dict[str, SmoothedCache] = field(default_factory=dict)

    def smoothed(self, name: str, smoothing: float) -> np.ndarray:
        """The EMA of series ``name`` (cached: O(new points) per redraw)."""
        cache = self.smooth.setdefault(name, SmoothedCache())
        return cache.update(self.buffers.get(name), smoothing)


class _FailureBanner(QFrame):
    """A failed run's message and hint, with a button that goes to the fix when one is known."""

    fix_clicked = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("failureBanner")
        self.title = QLabel(self)
        self.title.setObjectName("failureTitle")
        self.message = QLabel(self)
        self.message.setObjectName("failureMessage")
        self.hint = QLabel(self)
        self.hint.setObjectName("failureHint")
        for label in (self.title, self.message, self.hint):
            label.setWordWrap(True)
            label.setTextFormat(Qt.TextFormat.PlainText)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fix_button = QPushButton(self)
        self.fix_button.setObjectName("failureFixButton")
        self.dismiss_button = QPushButton("Dismiss", self)
        self.dismiss_button.setObjectName("failureDismissButton")
        self.dismiss_button.clicked.connect(self.hide)
        self._target = ""
        self.fix_button.clicked.connect(lambda: self.fix_clicked.emit(self._target))
        text = QVBoxLayout()
        text.setSpacing(2)
        for label in (self.title, self.message, self.hint):
            text.addWidget(label)
        buttons = QVBoxLayout()
        buttons.addWidget(self.fix_button)
        buttons.addWidget(self.dismiss_button)
        buttons.addStretch(1)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 8, 10, 8)
        lay.addLayout(text, 1)
        lay.addLayout(buttons)
        self.hide()

    def show_failure(self, title: str, message: str, hint: str, fix_target: str = "", fix_label: str = "") -> None:
        self.title.setText(title)
        self.message.setText(message)
        self.hint.setText(f"How to fix it: {hint}" if hint else "")
        self.hint.setVisible(bool(hint))
        self._target = fix_target
        self.fix_button.setText(fix_label)
        self.fix_button.setVisible(bool(fix_target))
        self.show()


class Dashboard(QWidget):
    """All training plots of the window, fed with event batches on the GUI thread.

    Typical use (the training controller does this)::

        dash.start_run(run_id, label, dataset="digits", loss="auto")   # live run: current, visible
        dash.add_events(run_id, events)        # per worker batch; cheap, no drawing
        dash.end_run(run_id)                   # final redraw; the timer stops when idle
    """

    #: Emitted after every redraw (tests, benchmarks).
    redrawn = Signal()
    #: The failure banner's fix button: a preset field path such as ``train.lr``.
    fix_requested = Signal(str)
    #: Emitted with ``{run_id: colour}`` whenever the drawn runs' colours change.
    colors_changed = Signal(dict)

    def __init__(self, parent: QWidget | None = None, *, ask_path: AskPath | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dashboard")
        self._runs: dict[str, _Run] = {}
        self._visible: list[str] = []
        self._current: str | None = None
        self._active: set[str] = set()
        self._panel_state: dict[str, tuple] = {}
        self._panel_drawn_at: dict[str, int] = {}
        self._draw_count = 0
        self._dirty = False
        self._smoothing = 0.6
        self._x_axis = "step"
        self._slots: dict[str, int] = {}          # run id → colour slot
        self._model_depth: list[str] = []         # InfiniteDepth layers of the model in the editor
        self._columns = 0
        self._emitted_colors: dict[str, str] = {}

        self.loss_plot = PlotPanel("lossPlot", "Loss", "step", LOSS_LABELS["classification"], parent=self)
        self.accuracy_plot = PlotPanel("accuracyPlot", "Accuracy", "step", "accuracy (%)", parent=self)
        self.grad_panel = GradNormPanel(self)
        self.depth_panel = DepthPanel(self)
        self.throughput_plot = PlotPanel("throughputPlot", "Throughput", "step", "samples/s", parent=self)
        self.set_ask_path(ask_path)
        self.set_export_dir(None)

        # ---------------------------------------------------------------- the bar above the plots
        self.run_note = ElidedLabel("No run yet: press Run (Ctrl+R) to train the model in the editor.", self)
        self.run_note.setObjectName("dashboardNote")
        self.run_note.setStyleSheet("font-style: italic;")  # palette text colour: legible in both themes
        self.run_legend = QLabel(self)
        self.run_legend.setObjectName("runLegend")
        self.run_legend.setTextFormat(Qt.TextFormat.RichText)
        self.run_legend.setWordWrap(True)
        self.run_legend.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        # one line always reserved: a run legend appearing must not re-lay (and repaint) every plot
        self.run_legend.setMinimumHeight(self.run_legend.fontMetrics().height() + 6)
        self.x_axis_combo = QComboBox(self)
        self.x_axis_combo.setObjectName("xAxisCombo")
        for axis in X_AXES:
            self.x_axis_combo.addItem(X_CHOICES[axis], axis)
        self.x_axis_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.x_axis_combo.setToolTip("What the x axis of every plot counts: optimiser steps, epochs, or "
                                     "training time in seconds (pauses and validation excluded)")
        self.x_axis_combo.currentIndexChanged.connect(lambda i: self.set_x_axis(self.x_axis_combo.itemData(i)))
        self.smoothing_slider = QSlider(Qt.Orientation.Horizontal, self)
        self.smoothing_slider.setObjectName("smoothingSlider")
        self.smoothing_slider.setRange(0, 99)
        self.smoothing_slider.setValue(int(round(self._smoothing * 100)))
        self.smoothing_slider.setFixedWidth(72)
        self.smoothing_slider.setToolTip("Exponential moving average (TensorBoard style) of every training "
                                         "curve: 0 = raw, 0.99 = very smooth. The raw curve stays, faint. "
                                         "Validation points and learned depth are drawn as measured.")
        self.smoothing_value = QLabel(f"{self._smoothing:.2f}", self)
        self.smoothing_value.setMinimumWidth(self.smoothing_value.fontMetrics().horizontalAdvance("0.00") + 2)
        self.smoothing_slider.valueChanged.connect(lambda v: self.set_smoothing(v / 100))
        self.log_button = QToolButton(self)
        self.log_button.setObjectName("logScaleButton")
        self.log_button.setText("Log y")
        self.log_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.log_button.setToolTip("Logarithmic y axis, per plot")
        log_menu = QMenu(self.log_button)
        self.log_actions: dict[str, QAction] = {}
        for key, text, on in (("loss", "Loss", False), ("accuracy", "RMSE (regression)", False),
                              ("grad", "Gradient norm", True)):
            action = QAction(text, log_menu, checkable=True)
            action.setObjectName(f"logScale_{key}")
            action.setChecked(on)
            action.toggled.connect(lambda _on: self._apply_log_scales())
            log_menu.addAction(action)
            self.log_actions[key] = action
        self.log_button.setMenu(log_menu)
        self.legend_toggle = QCheckBox("Legends", self)
        self.legend_toggle.setObjectName("legendToggle")
        self.legend_toggle.setChecked(True)
        self.legend_toggle.setToolTip("Show or hide the legend of every plot (hidden, the data gets the room)")
        self.legend_toggle.toggled.connect(self.set_legends_visible)

        row = QHBoxLayout()
        row.setSpacing(6)
        row.addWidget(self.run_note, 1)
        row.addWidget(self.x_axis_combo)
        row.addSpacing(4)
        row.addWidget(QLabel("Smoothing", self))
        row.addWidget(self.smoothing_slider)
        row.addWidget(self.smoothing_value)
        row.addSpacing(4)
        row.addWidget(self.log_button)
        row.addWidget(self.legend_toggle)
        bar = QVBoxLayout()
        bar.setContentsMargins(8, 4, 8, 2)
        bar.setSpacing(2)
        bar.addLayout(row)
        bar.addWidget(self.run_legend)

        self.failure_banner = _FailureBanner(self)
        self.failure_banner.fix_clicked.connect(self.fix_requested)
        self.overlay_warning = QLabel(self)
        self.overlay_warning.setObjectName("overlayWarning")
        self.overlay_warning.setWordWrap(True)
        self.overlay_warning.hide()

        # ---------------------------------------------------------------- the plots
        self.plots_area = QWidget(self)
        self.plots_area.setObjectName("plotsArea")
        self.grid = QGridLayout(self.plots_area)
        self.grid.setContentsMargins(2, 2, 2, 2)
        self.grid.setSpacing(4)
        self.scroll = QScrollArea(self)
        self.scroll.setObjectName("plotsScroll")
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(self.plots_area)
        for panel in (self.loss_plot, self.accuracy_plot, self.grad_panel, self.depth_panel, self.throughput_plot):
            panel.setMinimumSize(220, MIN_ROW_HEIGHT - 10)
        self._reflow(3)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(bar)
        layout.addWidget(self.failure_banner)
        layout.addWidget(self.overlay_warning)
        layout.addWidget(self.scroll, 1)

        self.grad_panel.heatmap_toggle.toggled.connect(lambda _on: self._mark_dirty())

        self.timer = QTimer(self)
        self.timer.setObjectName("dashboardRedrawTimer")
        self.timer.setInterval(REDRAW_MS)
        self.timer.timeout.connect(self._tick)
        self._update_depth_note([])

    # ------------------------------------------------------------------ configuration
    def set_ask_path(self, ask_path: AskPath | None) -> None:
        """Route every plot's export file prompt through ``ask_path`` (tests inject one)."""
        self.ask_path = ask_path
        for panel in self.panels() + [self.grad_panel.heatmap]:
            panel.ask_path = ask_path

    def set_export_dir(self, folder: Any) -> None:
        """Where export dialogs start: ``folder`` (a path or a ``() -> path`` callable); by default the
        current run's folder when it is on disk (else the user's documents)."""
        if folder is None:
            provider = self._current_run_folder
        elif callable(folder):
            provider = folder
        else:
            provider = lambda: folder   # noqa: E731
        for panel in self.panels() + [self.grad_panel.heatmap]:
            panel.export_dir = provider

    def _current_run_folder(self) -> Path | None:
        ids = self.visible_runs()
        if not ids:
            return None
        path = Path(ids[0])
        return path if path.is_dir() else None

    def panels(self) -> list[PlotPanel]:
        """The line plots: loss, accuracy, gradient norm, depth, throughput."""
        return [self.loss_plot, self.accuracy_plot, self.grad_panel.lines, self.depth_panel.plot,
                self.throughput_plot]

    @property
    def smoothing(self) -> float:
        return self._smoothing

    def set_smoothing(self, value: float) -> None:
        value = float(min(max(value, 0.0), 0.99))
        self._smoothing = value
        self.smoothing_value.setText(f"{value:.2f}")
        slider_value = int(round(value * 100))
        if self.smoothing_slider.value() != slider_value:
            with QSignalBlocker(self.smoothing_slider):
                self.smoothing_slider.setValue(slider_value)
        self._mark_dirty()

    @property
    def x_axis(self) -> str:
        return self._x_axis

    def set_x_axis(self, axis: str) -> None:
        """Draw every plot against "step", "epoch" or "time" (training seconds)."""
        if axis not in X_AXES:
            raise ValueError(f"unknown x axis {axis!r}; choose one of {', '.join(X_AXES)}")
        self._x_axis = axis
        index = self.x_axis_combo.findData(axis)
        if self.x_axis_combo.currentIndex() != index:
            with QSignalBlocker(self.x_axis_combo):
                self.x_axis_combo.setCurrentIndex(index)
        for panel in self.panels():
            panel.set_x_label(X_LABELS[axis])
            panel.reset_zoom()
        self._mark_dirty()

    def set_log_scale(self, plot: str, on: bool) -> None:
        """Log y axis for "loss", "accuracy" (RMSE only: per cent accuracy stays linear) or "grad"."""
        self.log_actions[plot].setChecked(on)

    def _apply_log_scales(self) -> None:
        self._mark_dirty()

    def set_legends_visible(self, visible: bool) -> None:
        if self.legend_toggle.isChecked() != visible:
            self.legend_toggle.setChecked(visible)
            return
        for panel in self.panels():
            panel.set_legend_visible(visible)

    def set_targets(self, targets: Sequence[Any]) -> None:
        """The published figures of the preset on screen (:func:`workbench.protocol.published_targets`)
        as dashed reference lines labelled with their source: accuracy (%) on the accuracy plot, a
        learned w on the depth plot. An empty list removes them."""
        wanted = {"accuracy": {}, "w": {}}
        for i, target in enumerate(targets):
            if target.metric in wanted:
                wanted[target.metric][f"published:{i}"] = target
        for metric, panel in (("accuracy", self.accuracy_plot), ("w", self.depth_panel.plot)):
            for key in [k for k in panel.reference_lines() if k.startswith("published:")]:
                if key not in wanted[metric]:
                    panel.remove_reference_line(key)
            for key, target in wanted[metric].items():
                panel.set_reference_line(key, target.value, target.label, color="#b15928")

    def set_model_depth_layers(self, names: Sequence[str]) -> None:
        """The InfiniteDepth layers of the model in the editor (the depth panel's note describes it)."""
        self._model_depth = list(names)
        self._mark_dirty()

    # ------------------------------------------------------------------ runs
    def start_run(self, run_id: str, label: str, *, dataset: str | None = None, loss: str = "auto") -> RunBuffers:
        """Add a live run: it becomes the current run, visible, drawn bold; the timer starts."""
        run = _Run(run_id, label, RunBuffers(), dataset, loss)
        self._runs[run_id] = run
        self._current = run_id
        self._active.add(run_id)
        if run_id not in self._visible:
            self._visible.insert(0, run_id)
        self.run_note.setText(f"Training: {label}")
        self.failure_banner.hide()
        self._mark_dirty()
        return run.buffers

    def add_events(self, run_id: str, events: Iterable[Any]) -> None:
        """Store a batch of events of ``run_id`` (no drawing here: the timer redraws)."""
        run = self._runs.get(run_id)
        if run is None:
            return
        run.buffers.ingest_all(events)
        self._mark_dirty()

    def end_run(self, run_id: str) -> None:
        """The run ended: its last points are drawn by the next ticks (a couple of plots per tick,
        so the end of a run never blocks the GUI), then the timer stops by itself."""
        self._active.discard(run_id)
        run = self._runs.get(run_id)
        if run is not None and run_id == self._current:
            final = run.buffers.final
            status = type(final).__name__.lower() if final is not None else "ended"
            self.run_note.setText(f"{run.label}: {status}")
        self._mark_dirty()

    def show_failure(self, run_label: str, message: str, hint: str, step: int | None,
                     fix_target: str = "", fix_label: str = "") -> None:
        """The failure banner for a run that failed (hidden again by the next run, or Dismiss)."""
        where = f" at step {step}" if step is not None else " before training began"
        self.failure_banner.show_failure(f"{run_label} failed{where}", message, hint, fix_target, fix_label)

    def is_idle(self) -> bool:
        """No run active and every plot shows the latest data (the redraw timer is stopped)."""
        return not self._active and not self.timer.isActive()

    def add_run(self, run_id: str, label: str, buffers: RunBuffers, *, visible: bool = True,
                dataset: str | None = None, loss: str = "auto") -> None:
        """Add a finished run (e.g. loaded from its ``metrics.jsonl``)."""
        self._runs[run_id] = _Run(run_id, label, buffers, dataset, loss)
        if visible and run_id not in self._visible:
            self._visible.append(run_id)
        self._mark_dirty()

    def remove_run(self, run_id: str) -> None:
        self._runs.pop(run_id, None)
        self._active.discard(run_id)
        if run_id in self._visible:
            self._visible.remove(run_id)
        if self._current == run_id:
            self._current = None
        self._mark_dirty()

    def rename_run(self, run_id: str, label: str) -> None:
        if run_id in self._runs:
            self._runs[run_id].label = label
            self._mark_dirty()

    def has_run(self, run_id: str) -> bool:
        return run_id in self._runs

    def buffers(self, run_id: str) -> RunBuffers:
        return self._runs[run_id].buffers

    def set_visible_runs(self, run_ids: Iterable[str]) -> None:
        """Draw exactly these runs (in this order after the current one)."""
        ids = [r for r in run_ids if r in self._runs]
        self._visible = ids
        self._mark_dirty()

    def visible_runs(self) -> list[str]:
        """The drawn runs, the current one first (it is drawn bold)."""
        ids = [r for r in self._visible if r in self._runs]
        if self._current in ids:
            ids.remove(self._current)
            ids.insert(0, self._current)
        return ids

    def run_color(self, run_id: str) -> str | None:
        """The colour ``run_id`` is drawn in (None when it is not drawn)."""
        slot = self._assign_colors().get(run_id)
        return None if slot is None else run_color(slot)

    def run_colors(self) -> dict[str, str]:
        return {r: run_color(slot) for r, slot in self._assign_colors().items()}

    def _assign_colors(self) -> dict[str, int]:
        """A colour slot per drawn run: a run keeps its slot while no other drawn run holds it."""
        drawn = self.visible_runs()
        taken: dict[int, str] = {}
        out: dict[str, int] = {}
        for run_id in drawn:
            slot = self._slots.get(run_id)
            if slot is not None and slot not in taken:
                taken[slot] = run_id
                out[run_id] = slot
        for run_id in drawn:
            if run_id not in out:
                slot = next(i for i in range(len(drawn) + len(taken) + 1) if i not in taken)
                taken[slot] = run_id
                out[run_id] = slot
                self._slots[run_id] = slot
        return out

    @property
    def current_run(self) -> str | None:
        return self._current

    def is_active(self) -> bool:
        return bool(self._active)

    # ------------------------------------------------------------------ layout
    def _reflow(self, columns: int) -> None:
        """Lay the plots out in ``columns`` columns (3: loss · accuracy · throughput over gradient
        (two wide) · depth; 2: loss · accuracy, gradient, depth · throughput; 1: a column)."""
        if columns == self._columns:
            return
        self._columns = columns
        for panel in (self.loss_plot, self.accuracy_plot, self.grad_panel, self.depth_panel, self.throughput_plot):
            self.grid.removeWidget(panel)
        if columns >= 3:
            places = ((self.loss_plot, 0, 0, 1), (self.accuracy_plot, 0, 1, 1), (self.throughput_plot, 0, 2, 1),
                      (self.grad_panel, 1, 0, 2), (self.depth_panel, 1, 2, 1))
        elif columns == 2:
            places = ((self.loss_plot, 0, 0, 1), (self.accuracy_plot, 0, 1, 1), (self.grad_panel, 1, 0, 2),
                      (self.depth_panel, 2, 0, 1), (self.throughput_plot, 2, 1, 1))
        else:
            places = tuple((p, i, 0, 1) for i, p in enumerate((self.loss_plot, self.accuracy_plot, self.grad_panel,
                                                                 self.depth_panel, self.throughput_plot)))
        rows = 1 + max(row for _p, row, _c, _s in places)
        for panel, row, col, span in places:
            self.grid.addWidget(panel, row, col, 1, span)
        for c in range(3):
            self.grid.setColumnStretch(c, 1 if c < max(columns, 1) else 0)
        for r in range(5):
            self.grid.setRowStretch(r, 1 if r < rows else 0)
            self.grid.setRowMinimumHeight(r, MIN_ROW_HEIGHT if r < rows else 0)

    def columns(self) -> int:
        return self._columns

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._reflow(max(1, min(3, self.width() // MIN_COLUMN_WIDTH)))

    # ------------------------------------------------------------------ timer
    def _mark_dirty(self) -> None:
        self._dirty = True
        if not self.timer.isActive():
            self.timer.start()

    def shutdown(self) -> None:
        """Stop the redraw timer (window closing)."""
        self._active.clear()
        self.timer.stop()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.timer.stop()
        super().closeEvent(event)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._dirty and not self.timer.isActive():
            self.timer.start()
        super().showEvent(event)

    def hideEvent(self, event) -> None:  # noqa: N802 - Qt override
        # Hidden (another workspace, window closing): nothing to draw for; data keeps arriving.
        if not self._active:
            self.timer.stop()
        super().hideEvent(event)

    # ------------------------------------------------------------------ drawing
    def _log_state(self) -> tuple[bool, bool, bool]:
        return tuple(self.log_actions[k].isChecked() for k in ("loss", "accuracy", "grad"))  # type: ignore[return-value]

    def _state(self) -> tuple:
        """What the plots depend on: the drawn runs and their data versions, smoothing, view mode."""
        runs = tuple((r, self._runs[r].buffers.version, self._runs[r].label) for r in self.visible_runs())
        return (runs, self._smoothing, self.grad_panel.is_heatmap(), self._x_axis, self._log_state(),
                tuple(self._model_depth))

    def redraw(self) -> None:
        """Redraw every plot from the buffers now."""
        self._draw(list(PANEL_NAMES))

    def _tick(self) -> None:
        state = self._state()
        stale = [name for name in PANEL_NAMES if self._panel_state.get(name) != state]
        if stale:
            # Oldest first, at most PANELS_PER_TICK per tick: one tick never paints every plot, so
            # the event loop stays free (each raster paint of a plot costs several milliseconds).
            stale.sort(key=lambda name: self._panel_drawn_at.get(name, -1))
            self._draw(stale[:PANELS_PER_TICK], state, budget_s=TICK_BUDGET_MS / 1000.0)
        elif not self._active:
            self._dirty = False
            self.timer.stop()

    def _draw(self, names: list[str], state: tuple | None = None, budget_s: float | None = None) -> None:
        """Redraw the panels ``names`` in order; with ``budget_s``, stop after the panel that used it up
        (the others stay stale for the next tick)."""
        started = time.perf_counter()
        state = state if state is not None else self._state()
        runs = [self._runs[r] for r in self.visible_runs()]
        primary = runs[0] if runs else None
        task = primary.buffers.task if primary else "classification"
        regression = task == "regression"
        slots = self._assign_colors()
        colors = {run.run_id: run_color(slots[run.run_id]) for run in runs}
        x_max = self._x_extent(runs)
        log_loss, log_rmse, log_grad = self._log_state()
        self._draw_count += 1
        if "loss" in names:   # once per full cycle: the bar's run legend and overlay warning
            self._update_run_legend(runs, colors)
            self._update_overlay_warning(runs)
            if colors != self._emitted_colors:
                self._emitted_colors = dict(colors)
                self.colors_changed.emit(dict(colors))
        for name in names:
            if name == "loss":
                self.loss_plot.set_axis_label(loss_axis_label(primary.loss if primary else None, task))
                self.loss_plot.set_log_y(log_loss)
                curves: list[Curve] = []
                for rank, run in enumerate(runs):
                    self._loss_curves(run, colors[run.run_id], rank, curves)
                self._show(self.loss_plot, curves, x_max)
            elif name == "accuracy":
                self.accuracy_plot.set_axis_label("RMSE (target units)" if regression else "accuracy (%)")
                self.accuracy_plot.set_title("RMSE" if regression else "Accuracy")
                self.accuracy_plot.set_log_y(log_rmse and regression)
                curves = []
                for rank, run in enumerate(runs):
                    if run.buffers.is_regression == regression:   # % and RMSE cannot share an axis
                        self._accuracy_curves(run, colors[run.run_id], rank, curves, regression)
                self._show(self.accuracy_plot, curves, x_max)
            elif name == "throughput":
                curves = []
                for rank, run in enumerate(runs):
                    self._smoothed_curves(run, "samples_per_s", "sps", colors[run.run_id], rank, curves,
                                          "samples/s")
                self._show(self.throughput_plot, curves, x_max)
            elif name == "grad":
                if self.grad_panel.is_heatmap():
                    if primary is not None:
                        self._draw_heatmap(primary.buffers)
                else:
                    self.grad_panel.lines.set_log_y(log_grad)
                    curves = []
                    for rank, run in enumerate(runs):
                        self._grad_curves(run, run_style(rank), rank, curves)
                    samples = [(short_label(run.label) + (" (current)" if rank == 0 else ""), run_style(rank))
                               for rank, run in enumerate(runs)] if len(runs) > 1 else []
                    self._show(self.grad_panel.lines, curves, x_max, samples)
            elif name == "depth":
                curves = []
                for rank, run in enumerate(runs):
                    self._depth_curves(run, colors[run.run_id], rank, curves)
                has_depth = bool(curves)
                self._update_depth_note(runs)
                self.depth_panel.set_has_depth(has_depth)
                self._show(self.depth_panel.plot, curves, x_max)
            self._panel_state[name] = state
            self._panel_drawn_at[name] = self._draw_count
            if budget_s is not None and time.perf_counter() - started >= budget_s:
                break
        if all(self._panel_state.get(n) == state for n in PANEL_NAMES):
            self._dirty = False
        self.redrawn.emit()

    @staticmethod
    def _show(panel: PlotPanel, curves: list[Curve], x_max: float | None, samples: Sequence = ()) -> None:
        panel.set_x_extent(x_max)
        panel.set_curves(curves, samples)

    def _x_extent(self, runs: Sequence[_Run]) -> float | None:
        """How far the x axis goes: the live run's planned total, or the longest drawn run."""
        ends = [run.buffers.x_extent(self._x_axis) for run in runs]
        if self._x_axis == "time" and any(run.buffers.final is None and run.buffers.started is not None
                                          for run in runs):
            return None   # a live run's time grows: auto-range
        ends = [e for e in ends if e is not None and math.isfinite(e)]
        return max(ends) if ends else None

    def _x(self, run: _Run, steps: np.ndarray) -> np.ndarray:
        return run.buffers.x_values(steps, self._x_axis)

    @staticmethod
    def _weight(rank: int) -> tuple[float, int]:
        """(line width, alpha) of a run's main curves: the current run bolder than overlays."""
        return (2.2, 255) if rank == 0 else (1.6, 210)

    def _smoothed_curves(self, run: _Run, series: str, key: str, color: str, rank: int, out: list[Curve],
                         name: str, scale: float = 1.0) -> None:
        """A training curve: faint raw and bold EMA when smoothing is on, else the raw curve bold."""
        b = run.buffers
        if not b.has(series):
            return
        s = b.get(series)
        x = self._x(run, s.x)
        width, alpha = self._weight(rank)
        named = rank == 0
        csv = f"{short_label(run.label)}: {name}"
        if self._smoothing > 0:   # the bold line is the smoothed one; "raw" the faint one under it
            out.append(Curve(f"{run.run_id}:{key}_raw", x, s.y * scale, color, "raw" if named else None,
                             width=1.0, alpha=min(alpha, 75), csv_name=f"{csv} (raw)"))
            out.append(Curve(f"{run.run_id}:{key}", x, run.smoothed(series, self._smoothing) * scale, color,
                             name if named else None, width=width, alpha=alpha,
                             csv_name=f"{csv} (smoothed {self._smoothing:.2f})"))
        else:
            out.append(Curve(f"{run.run_id}:{key}", x, s.y * scale, color, name if named else None, width=width,
                             alpha=alpha, csv_name=csv))

    def _validation_curve(self, run: _Run, series: str, key: str, color: str, rank: int, out: list[Curve],
                          name: str, scale: float = 1.0) -> None:
        """Validation points: markers when there are few (≤ MARKER_LIMIT), else a dotted line."""
        b = run.buffers
        if not b.has(series):
            return
        v = b.get(series)
        x = self._x(run, v.x)
        _width, alpha = self._weight(rank)
        markers = len(v) <= MARKER_LIMIT
        out.append(Curve(f"{run.run_id}:{key}", x, v.y * scale, color, name if rank == 0 else None,
                         width=1.2 if markers else 1.8, alpha=alpha,
                         style=Qt.PenStyle.DashLine if markers else Qt.PenStyle.DotLine,
                         symbol="o" if markers else None, symbol_size=7.0 if rank == 0 else 5.5,
                         csv_name=f"{short_label(run.label)}: {name}"))

    def _loss_curves(self, run: _Run, color: str, rank: int, out: list[Curve]) -> None:
        b = run.buffers
        if b.has("loss"):
            self._smoothed_curves(run, "loss", "loss", color, rank, out, "train")
        elif b.has("train_loss_epoch"):
            t = b.get("train_loss_epoch")
            out.append(Curve(f"{run.run_id}:train_epoch", self._x(run, t.x), t.y, color,
                             "train (epoch)" if rank == 0 else None, width=1.5, symbol="s",
                             csv_name=f"{short_label(run.label)}: train (epoch)"))
        self._validation_curve(run, "val_loss", "val_loss", color, rank, out, "val")

    def _accuracy_curves(self, run: _Run, color: str, rank: int, out: list[Curve], regression: bool) -> None:
        if regression:
            self._smoothed_curves(run, "rmse", "rmse", color, rank, out, "train")
            self._validation_curve(run, "val_rmse", "val_rmse", color, rank, out, "val")
        else:
            self._smoothed_curves(run, "accuracy", "accuracy", color, rank, out, "train", 100.0)
            self._validation_curve(run, "val_accuracy", "val_accuracy", color, rank, out, "val", 100.0)

    def _grad_curves(self, run: _Run, style: Qt.PenStyle, rank: int, out: list[Curve]) -> None:
        b = run.buffers
        order = {name: i for i, name in enumerate(b.layer_names)}
        for layer in b.grad_layers():
            series = f"grad_norm/{layer}"
            s = b.get(series)
            idx = order.get(layer.split(".")[0], len(order))
            label = layer if (s.y > 0).any() else f"{layer} (no gradient)"
            y = run.smoothed(series, self._smoothing) if self._smoothing > 0 else s.y
            out.append(Curve(f"{run.run_id}:g:{layer}", self._x(run, s.x), y, layer_color(idx, len(order)),
                             label if rank == 0 else None, width=1.5, style=style,
                             csv_name=f"{short_label(run.label)}: {layer}"))

    def _depth_curves(self, run: _Run, color: str, rank: int, out: list[Curve]) -> None:
        b = run.buffers
        styles = (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine, Qt.PenStyle.DashDotLine)
        width, alpha = self._weight(rank)
        layers = b.layers_with("depth_w")
        for i, layer in enumerate(layers):
            style = styles[i % len(styles)]
            suffix = f" · {layer}" if len(layers) > 1 else ""
            w = b.get(f"depth_w/{layer}")
            out.append(Curve(f"{run.run_id}:w:{layer}", self._x(run, w.x), w.y, color,
                             f"w{suffix}" if rank == 0 else None, width=width, alpha=alpha, style=style,
                             csv_name=f"{short_label(run.label)}: w {layer}"))
            if b.has(f"depth/{layer}"):
                d = b.get(f"depth/{layer}")
                out.append(Curve(f"{run.run_id}:d:{layer}", self._x(run, d.x), d.y, color,
                                 f"⌈w⌉ (layers run){suffix}" if rank == 0 else None, width=1.2, style=style,
                                 alpha=min(alpha, 150), step=True, csv_name=f"{short_label(run.label)}: ⌈w⌉ {layer}"))

    def _update_depth_note(self, runs: Sequence[_Run]) -> None:
        """What the depth panel says when there is no learned depth to plot: about the model in the
        editor (it may have an InfiniteDepth layer that has not trained yet) and the last run."""
        model = self._model_depth
        if model:
            names = ", ".join(model)
            which = "an InfiniteDepth layer" if len(model) == 1 else "InfiniteDepth layers"
            text = (f"The model in the editor has {which}"
                    f" ({names}): press Run to plot its learned depth w and ⌈w⌉, the number of layers it runs.")
            if runs:
                text = f"{short_label(runs[0].label)} had no InfiniteDepth layer. " + text
        else:
            text = ("The model in the editor has no InfiniteDepth layer: there is no learned depth to plot. "
                    "Add one from the palette (family Infinite depth) to learn how deep to go.")
        self.depth_panel.set_note(text)

    def _update_run_legend(self, runs: Sequence[_Run], colors: dict[str, str]) -> None:
        if not runs:
            self.run_legend.setText("")
            return
        parts = []
        for rank, run in enumerate(runs):
            name = short_label(run.label, 28).replace("&", "&amp;").replace("<", "&lt;")
            weight = "font-weight:600;" if rank == 0 else ""
            current = " (current)" if rank == 0 and len(runs) > 1 else ""
            parts.append(f"<span style='color:{colors[run.run_id]};font-size:14pt'>■</span>"
                         f"<span style='{weight}'>&nbsp;{name}{current}</span>")
        text = "&nbsp;&nbsp; ".join(parts)
        if self.run_legend.text() != text:
            self.run_legend.setText(text)

    def _update_overlay_warning(self, runs: Sequence[_Run]) -> None:
        """Warn when overlaid runs learn another data set or task kind than the current run."""
        if len(runs) < 2:
            self.overlay_warning.hide()
            return
        first = runs[0]
        notes = []
        for run in runs[1:]:
            reasons = []
            if run.buffers.task != first.buffers.task:
                reasons.append(f"a {run.buffers.task} task (its "
                               f"{'RMSE' if run.buffers.is_regression else 'accuracy'} is not drawn)")
            if run.dataset and first.dataset and run.dataset != first.dataset:
                reasons.append(f"the data set '{run.dataset}', not '{first.dataset}'")
            if (loss_axis_label(run.loss, run.buffers.task) != loss_axis_label(first.loss, first.buffers.task)
                    and run.buffers.task == first.buffers.task):
                reasons.append(f"another loss ({loss_axis_label(run.loss, run.buffers.task)[6:-1]})")
            if reasons:
                notes.append(f"{short_label(run.label)} trains " + " and ".join(reasons))
        if notes:
            self.overlay_warning.setText("⚠ Not comparable with the current run: " + "; ".join(notes) + ".")
            self.overlay_warning.show()
        else:
            self.overlay_warning.hide()

    def _draw_heatmap(self, b: RunBuffers) -> None:
        layers = b.grad_layers()
        if not layers:
            self.grad_panel.heatmap.set_data([], np.zeros(0), np.zeros((0, 0)))
            return
        steps = b.get(f"grad_norm/{layers[0]}").x
        n = len(steps)
        matrix = np.full((len(layers), n), np.nan)
        for i, layer in enumerate(layers):
            y = b.get(f"grad_norm/{layer}").y
            m = min(n, len(y))
            matrix[i, :m] = y[:m]
        self.grad_panel.heatmap.set_data(layers, np.asarray(steps), matrix)
