"""The live dashboard: loss, accuracy (or RMSE), gradient norm per layer, learned depth, throughput.

Events from the worker are stored in :class:`ui.plot_buffers.RunBuffers` (one per run) as they
arrive; the plots are redrawn from those buffers by a ~20 Hz ``QTimer`` owned by the dashboard. The
timer runs only while a run is active or new data waits to be drawn, and stops on close, so an idle
dashboard costs nothing (and leaves no active timer behind).

Several runs can be drawn at once (overlay): the live/current run with solid lines, the others
dashed, dotted, ...; colours belong to metrics (train blue, validation orange) and to layers (by
their index in the model), the same in every plot.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QSlider, QVBoxLayout, QWidget

from ui.plot_buffers import RunBuffers, SmoothedCache
from ui.plots import (SPEED_COLOR, TRAIN_COLOR, VAL_COLOR, AskPath, Curve, DepthPanel, GradNormPanel, PlotPanel,
                      layer_color, run_style)

__all__ = ["Dashboard", "REDRAW_MS", "LOSS_LABELS"]

#: Redraw period of the plots while a run is active, in milliseconds (~20 Hz).
REDRAW_MS = 50

#: The dashboard's plots, in redraw order.
PANEL_NAMES = ("loss", "accuracy", "grad", "depth", "throughput")

#: At most this many plots are redrawn per timer tick (a full redraw is spread over ticks).
PANELS_PER_TICK = 2

LOSS_LABELS = {"classification": "loss (cross-entropy)", "regression": "loss (MSE)"}


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
    smooth: SmoothedCache = field(default_factory=SmoothedCache)


class Dashboard(QWidget):
    """All training plots of the window, fed with event batches on the GUI thread.

    Typical use (the training controller does this)::

        dash.start_run(run_id, label)          # the live run becomes current and visible
        dash.add_events(run_id, events)        # per worker batch; cheap, no drawing
        dash.end_run(run_id)                   # final redraw; the timer stops when idle
    """

    #: Emitted after every redraw (tests, benchmarks).
    redrawn = Signal()

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

        self.loss_plot = PlotPanel("lossPlot", "Loss", "step", LOSS_LABELS["classification"])
        self.accuracy_plot = PlotPanel("accuracyPlot", "Accuracy", "step", "accuracy (%)")
        self.grad_panel = GradNormPanel()
        self.depth_panel = DepthPanel()
        self.throughput_plot = PlotPanel("throughputPlot", "Throughput", "step", "samples/s")
        self.set_ask_path(ask_path)

        self.smoothing_slider = QSlider(Qt.Orientation.Horizontal)
        self.smoothing_slider.setObjectName("smoothingSlider")
        self.smoothing_slider.setRange(0, 99)
        self.smoothing_slider.setValue(int(round(self._smoothing * 100)))
        self.smoothing_slider.setFixedWidth(160)
        self.smoothing_slider.setToolTip("Exponential moving average of the training loss "
                                         "(TensorBoard style): 0 = raw, 0.99 = very smooth")
        self.smoothing_value = QLabel(f"{self._smoothing:.2f}")
        self.smoothing_slider.valueChanged.connect(lambda v: self.set_smoothing(v / 100))
        self.run_note = QLabel("No run yet: press Run (Ctrl+R) to train the model in the editor.")
        self.run_note.setObjectName("dashboardNote")
        self.run_note.setStyleSheet("font-style: italic;")  # palette text colour: legible in both themes

        top = QHBoxLayout()
        top.setContentsMargins(6, 2, 6, 2)
        top.addWidget(self.run_note, 1)
        top.addWidget(QLabel("Loss smoothing"))
        top.addWidget(self.smoothing_slider)
        top.addWidget(self.smoothing_value)
        grid = QGridLayout()
        grid.setContentsMargins(2, 2, 2, 2)
        grid.setSpacing(4)
        grid.addWidget(self.loss_plot, 0, 0)
        grid.addWidget(self.accuracy_plot, 0, 1)
        grid.addWidget(self.throughput_plot, 0, 2)
        grid.addWidget(self.grad_panel, 1, 0, 1, 2)
        grid.addWidget(self.depth_panel, 1, 2)
        for c in range(3):
            grid.setColumnStretch(c, 1)
        grid.setRowStretch(0, 1)
        grid.setRowStretch(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(top)
        layout.addLayout(grid, 1)

        self.grad_panel.heatmap_toggle.toggled.connect(lambda _on: self._mark_dirty())

        self.timer = QTimer(self)
        self.timer.setObjectName("dashboardRedrawTimer")
        self.timer.setInterval(REDRAW_MS)
        self.timer.timeout.connect(self._tick)

    # ------------------------------------------------------------------ configuration
    def set_ask_path(self, ask_path: AskPath | None) -> None:
        """Route every plot's export file prompt through ``ask_path`` (tests inject one)."""
        self.ask_path = ask_path
        for panel in self.panels() + [self.grad_panel.heatmap]:
            panel.ask_path = ask_path

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

    # ------------------------------------------------------------------ runs
    def start_run(self, run_id: str, label: str) -> RunBuffers:
        """Add a live run: it becomes the current run, visible, drawn solid; the timer starts."""
        run = _Run(run_id, label, RunBuffers())
        self._runs[run_id] = run
        self._current = run_id
        self._active.add(run_id)
        if run_id not in self._visible:
            self._visible.insert(0, run_id)
        self.run_note.setText(f"Training: {label}")
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

    def is_idle(self) -> bool:
        """No run active and every plot shows the latest data (the redraw timer is stopped)."""
        return not self._active and not self.timer.isActive()

    def add_run(self, run_id: str, label: str, buffers: RunBuffers, *, visible: bool = True) -> None:
        """Add a finished run (e.g. loaded from its ``metrics.jsonl``)."""
        self._runs[run_id] = _Run(run_id, label, buffers)
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
        """The drawn runs, the current one first (it gets the solid line style)."""
        ids = [r for r in self._visible if r in self._runs]
        if self._current in ids:
            ids.remove(self._current)
            ids.insert(0, self._current)
        return ids

    @property
    def current_run(self) -> str | None:
        return self._current

    def is_active(self) -> bool:
        return bool(self._active)

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
        # Hidden (dock closed, window closing): nothing to draw for; data keeps arriving in buffers.
        if not self._active:
            self.timer.stop()
        super().hideEvent(event)

    # ------------------------------------------------------------------ drawing
    def _state(self) -> tuple:
        """What the plots depend on: the drawn runs and their data versions, smoothing, view mode."""
        runs = tuple((r, self._runs[r].buffers.version, self._runs[r].label) for r in self.visible_runs())
        return runs, self._smoothing, self.grad_panel.is_heatmap()

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
            self._draw(stale[:PANELS_PER_TICK], state)
        elif not self._active:
            self._dirty = False
            self.timer.stop()

    def _draw(self, names: list[str], state: tuple | None = None) -> None:
        state = state if state is not None else self._state()
        runs = [self._runs[r] for r in self.visible_runs()]
        primary = runs[0] if runs else None
        task = primary.buffers.task if primary else "classification"
        regression = task == "regression"
        samples: list[tuple[str, Qt.PenStyle]] = []
        if len(runs) > 1:
            samples = [(short_label(run.label) + (" (current)" if rank == 0 else ""), run_style(rank))
                       for rank, run in enumerate(runs)]
        x_max = self._x_extent(runs)
        self._draw_count += 1
        for name in names:
            if name == "loss":
                self.loss_plot.set_axis_label(LOSS_LABELS.get(task, "loss"))
                curves: list[Curve] = []
                for rank, run in enumerate(runs):
                    self._loss_curves(run, run_style(rank), rank == 0, curves)
                self._show(self.loss_plot, curves, samples, x_max)
            elif name == "accuracy":
                self.accuracy_plot.set_axis_label("RMSE (target units)" if regression else "accuracy (%)")
                self.accuracy_plot.set_title("RMSE" if regression else "Accuracy")
                curves = []
                for rank, run in enumerate(runs):
                    self._accuracy_curves(run, run_style(rank), rank == 0, curves, regression)
                self._show(self.accuracy_plot, curves, samples, x_max)
            elif name == "throughput":
                curves = []
                for rank, run in enumerate(runs):
                    b = run.buffers
                    if b.has("samples_per_s"):
                        sps = b.get("samples_per_s")
                        curves.append(Curve(f"{run.run_id}:sps", sps.x, sps.y, SPEED_COLOR,
                                            "samples/s" if rank == 0 else None, width=1.5, style=run_style(rank)))
                self._show(self.throughput_plot, curves, samples, x_max)
            elif name == "grad":
                if self.grad_panel.is_heatmap():
                    if primary is not None:
                        self._draw_heatmap(primary.buffers)
                else:
                    curves = []
                    for rank, run in enumerate(runs):
                        self._grad_curves(run, run_style(rank), rank == 0, curves)
                    self._show(self.grad_panel.lines, curves, samples, x_max)
            elif name == "depth":
                curves = []
                for rank, run in enumerate(runs):
                    self._depth_curves(run, run_style(rank), rank == 0, curves)
                has_depth = bool(curves) or any(run.buffers.depth_layers for run in runs)
                self.depth_panel.set_has_depth(has_depth)
                self._show(self.depth_panel.plot, curves, samples, x_max)
            self._panel_state[name] = state
            self._panel_drawn_at[name] = self._draw_count
        if all(self._panel_state.get(n) == state for n in PANEL_NAMES):
            self._dirty = False
        self.redrawn.emit()

    @staticmethod
    def _show(panel: PlotPanel, curves: list[Curve], samples: list, x_max: float | None) -> None:
        panel.set_x_extent(x_max)
        panel.set_curves(curves, samples)

    def _grad_curves(self, run: _Run, style: Qt.PenStyle, named: bool, out: list[Curve]) -> None:
        b = run.buffers
        order = {name: i for i, name in enumerate(b.layer_names)}
        for layer in b.grad_layers():
            s = b.get(f"grad_norm/{layer}")
            idx = order.get(layer.split(".")[0], len(order))
            label = layer if (s.y > 0).any() else f"{layer} (no gradient)"
            out.append(Curve(f"{run.run_id}:g:{layer}", s.x, s.y, layer_color(idx), label if named else None,
                             width=1.5, style=style))

    def _depth_curves(self, run: _Run, style: Qt.PenStyle, named: bool, out: list[Curve]) -> None:
        b = run.buffers
        order = {name: i for i, name in enumerate(b.layer_names)}
        for layer in b.layers_with("depth_w"):
            idx = order.get(layer.split(".")[0], len(order))
            w = b.get(f"depth_w/{layer}")
            out.append(Curve(f"{run.run_id}:w:{layer}", w.x, w.y, layer_color(idx),
                             f"w {layer}" if named else None, width=2.0, style=style))
            if b.has(f"depth/{layer}"):
                d = b.get(f"depth/{layer}")
                out.append(Curve(f"{run.run_id}:d:{layer}", d.x, d.y, layer_color(idx),
                                 f"⌈w⌉ {layer}" if named else None, width=1.2, style=style, alpha=150, step=True))

    def _x_extent(self, runs: Sequence[_Run]) -> float | None:
        """The step range to show: the live run's total steps, or the longest drawn run."""
        ends = []
        for run in runs:
            b = run.buffers
            if b.started is not None and b.final is None:
                ends.append(float(b.started.total_steps))
            last = b.get("loss").last() if b.has("loss") else None
            if last is not None:
                ends.append(last[0])
        return max(ends) if ends else None

    def _loss_curves(self, run: _Run, style: Qt.PenStyle, named: bool, out: list[Curve]) -> None:
        b = run.buffers
        if b.has("loss"):
            s = b.get("loss")
            smooth = run.smooth.update(s, self._smoothing)
            if self._smoothing > 0:
                out.append(Curve(f"{run.run_id}:loss_raw", s.x, s.y, TRAIN_COLOR, "train" if named else None,
                                 width=1.0, style=style, alpha=70))
            out.append(Curve(f"{run.run_id}:loss", s.x, smooth, TRAIN_COLOR,
                             ("train EMA" if self._smoothing > 0 else "train") if named else None,
                             width=2.2, style=style))
        if b.has("val_loss"):
            v = b.get("val_loss")
            out.append(Curve(f"{run.run_id}:val_loss", v.x, v.y, VAL_COLOR, "val" if named else None,
                             width=1.2, style=style, symbol="o"))
        elif b.has("train_loss_epoch") and not b.has("loss"):
            t = b.get("train_loss_epoch")
            out.append(Curve(f"{run.run_id}:train_epoch", t.x, t.y, TRAIN_COLOR, "train (epoch)" if named else None,
                             width=1.5, style=style, symbol="s"))

    def _accuracy_curves(self, run: _Run, style: Qt.PenStyle, named: bool, out: list[Curve],
                         regression: bool) -> None:
        b = run.buffers
        if regression:
            pairs = (("rmse", "train", TRAIN_COLOR, None), ("val_rmse", "val", VAL_COLOR, "o"))
            scale = 1.0
        else:
            pairs = (("accuracy", "train", TRAIN_COLOR, None), ("val_accuracy", "val", VAL_COLOR, "o"))
            scale = 100.0
        for series, name, color, symbol in pairs:
            if b.has(series):
                s = b.get(series)
                out.append(Curve(f"{run.run_id}:{series}", s.x, s.y * scale, color, name if named else None,
                                 width=1.2 if symbol else 1.8, style=style, symbol=symbol))

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
