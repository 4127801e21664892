"""Plot widgets of the dashboard (pyqtgraph, raster path: never OpenGL, never ``pg.plot()``).

* :class:`PlotPanel` — one ``PlotItem`` with labelled axes (units), a legend outside the data
  (below it, or to its right) that can be hidden, a linear/log y axis, labelled horizontal
  reference lines (:meth:`PlotPanel.set_reference_line`, e.g. a published figure), a crosshair whose
  read-out shows x and every named curve's value there, and export to PNG (at twice the screen
  size or more, axis labels whole) and CSV from its context menu. Curves are described each redraw
  by :class:`Curve` records; the panel reuses its ``PlotDataItem`` objects, so a redraw only calls
  ``setData``.
* :class:`HeatmapPanel` — gradient norms as a layer × step image (log10 of the norm), layers named
  on the y axis, a colour bar.
* :class:`GradNormPanel` — the ``gradNormPlot`` widget: log-scale lines per layer, or the heatmap.
* :class:`DepthPanel` — the ``depthPlot`` widget: the plot, or a note when the model has no
  ``InfiniteDepth`` layer.

Long series are cut to at most :data:`MAX_POINTS` points per curve with min/max decimation (spikes
survive) and pyqtgraph's own peak downsampling plus clip-to-view handle what is left on screen.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pyqtgraph as pg
from pyqtgraph import exporters
from PySide6.QtCore import QEvent, QRectF, Qt
from PySide6.QtGui import QAction, QColor, QFont, QPalette
from PySide6.QtWidgets import (QApplication, QCheckBox, QHBoxLayout, QLabel, QSizePolicy, QStackedWidget,
                               QVBoxLayout, QWidget)

from ui.plot_buffers import minmax_decimate

__all__ = ["Curve", "PlotPanel", "HeatmapPanel", "GradNormPanel", "DepthPanel", "layer_color",
           "run_style", "run_color", "AskPath", "MAX_POINTS", "TAB10", "EXPORT_SCALE", "distinct_tick_strings"]

#: Most points handed to a curve per redraw (after min/max decimation).
MAX_POINTS = 20_000

#: Tableau-10: the colours of layers (by index in the model) and of metrics.
TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
TRAIN_COLOR = TAB10[0]
VAL_COLOR = TAB10[1]
SPEED_COLOR = TAB10[2]

#: Line style per run: solid for the live/current run, then the others in order.
RUN_STYLES = (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine,
              Qt.PenStyle.DashDotLine, Qt.PenStyle.DashDotDotLine)

_VIRIDIS = pg.colormap.get("viridis")

#: Colours of runs, in the order runs get them (the first drawn run takes the first free one).
RUN_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
              "#bcbd22", "#7f7f7f")

#: ``ask_path(title, suggested_path, file_filter) -> str | None`` — returns the chosen path or None.
#: ``suggested_path`` is a file name inside the folder the dialog should start in.
AskPath = Callable[[str, str, str], "str | None"]

#: PNG exports are at least this many times the on-screen size …
EXPORT_SCALE = 2.0
#: … and are laid out at least this large (logical pixels) before scaling, so axis labels fit whole.
EXPORT_MIN_LOGICAL = (640, 400)

_FG = "#202020"
_BG = "w"

#: Events after which a panel re-reads its colours from the application palette.
_PALETTE_EVENTS = (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange)


def theme_colors() -> tuple[QColor, QColor, QColor]:
    """(background, foreground, muted) of the plots, from the application palette (Base, Text and a
    mix of the two); the fixed light colours when there is no QApplication."""
    app = QApplication.instance()
    if app is None:
        bg, fg = pg.mkColor(_BG), QColor(_FG)
    else:
        pal = app.palette()
        bg = pal.color(QPalette.ColorRole.Base)
        fg = pal.color(QPalette.ColorRole.Text)
    t = 0.62   # share of the foreground in the muted colour
    muted = QColor(round(fg.red() * t + bg.red() * (1 - t)), round(fg.green() * t + bg.green() * (1 - t)),
                   round(fg.blue() * t + bg.blue() * (1 - t)))
    return QColor(bg), QColor(fg), muted


def _is_dark(bg: QColor) -> bool:
    return bg.lightness() < 128


def _legible(color: QColor, bg: QColor | None) -> QColor:
    """``color``, lightened when it is near-black and the background is dark (alpha kept)."""
    if bg is None or not _is_dark(bg) or color.lightness() >= 90:
        return color
    out = color.lighter(180) if color.value() > 0 else QColor(170, 170, 170)
    out.setAlpha(color.alpha())
    return out


def _title_html(title: str, fg: QColor) -> str:
    return f"<span style='color:{fg.name()};font-size:9pt;font-weight:600'>{title}</span>"


def _color_axes(axes: Iterable[pg.AxisItem], fg: QColor) -> None:
    """Axis line, tick text and label in ``fg``."""
    for axis in axes:
        axis.setPen(pg.mkPen(fg))
        axis.setTextPen(pg.mkPen(fg))
        axis.labelStyle = {**axis.labelStyle, "color": fg.name()}
        axis._updateLabel()


def layer_color(index: int, count: int | None = None) -> str:
    """The colour of the layer at ``index`` of ``count`` layers: viridis from dark purple (first layer)
    to yellow-green (last), like the heatmap's rows — a sequence, so it never looks like the
    qualitative colours of runs. Without ``count`` the layer is placed on a 10-step scale."""
    n = max(int(count or 10), 1)
    t = 0.0 if n == 1 else min(max(index, 0), n - 1) / (n - 1)
    color = _VIRIDIS.map(0.05 + 0.8 * t, mode="qcolor")
    return color.name()


def run_color(index: int) -> str:
    """The colour of the run that got colour slot ``index``."""
    return RUN_COLORS[index % len(RUN_COLORS)]


def distinct_tick_strings(values: Sequence[float], spacing: float) -> list[str]:
    """Tick labels for a linear axis: as short as possible, never two the same (pyqtgraph's own
    ``%g`` printed "2.53827e+17" three times for a loss that exploded), no "-0"."""
    vals = [float(v) for v in values]
    if not vals:
        return []
    big = max(abs(v) for v in vals)
    for unit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):   # 250k, 1.5M: shorter than 2.5e+05
        if 1e4 <= big < 1e12 and big >= unit * 10 and spacing >= unit / 100:
            inner = distinct_tick_strings([v / unit for v in vals], spacing / unit)
            return [t if t == "0" else t + suffix for t in inner]
    places = max(0, int(math.ceil(-math.log10(spacing)))) if spacing > 0 and math.isfinite(spacing) else 0
    if big < 1e5 and places <= 5:
        out = [f"{v:.{places}f}" for v in vals]
    else:
        out = []
        for digits in range(3, 17):
            out = [f"{v:.{digits}g}" for v in vals]
            if len(set(out)) == len(out):
                break
    return ["0" if s.lstrip("-") in ("0", "0.0", "0.00", "0.000", "0.0000", "0.00000") else s for s in out]


def run_style(rank: int) -> Qt.PenStyle:
    """The line style of the ``rank``-th drawn run (0 = the live/current run: solid)."""
    return RUN_STYLES[0] if rank <= 0 else RUN_STYLES[1 + (rank - 1) % (len(RUN_STYLES) - 1)]


@dataclass
class Curve:
    """One curve to draw: ``key`` identifies it between redraws; ``name`` (if any) goes in the legend
    and the hover read-out; ``step`` draws a step curve (value held until the next x)."""

    key: str
    x: np.ndarray
    y: np.ndarray
    color: str
    name: str | None = None
    width: float = 1.5
    style: Qt.PenStyle = Qt.PenStyle.SolidLine
    alpha: int = 255
    symbol: str | None = None
    symbol_size: float = 7.0
    step: bool = False
    csv_name: str | None = None   #: the curve's name in a CSV export (default: ``name``, else ``key``)


def _pen(curve: Curve, bg: QColor | None = None) -> QColor:
    color = _legible(QColor(curve.color), bg)
    color.setAlpha(curve.alpha)
    pen = pg.mkPen(color, width=curve.width, style=curve.style)
    pen.setCosmetic(True)
    return pen


def _step_xy(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points of a step curve: each value held until the next x."""
    if len(x) < 2:
        return x, y
    xs = np.empty(2 * len(x) - 1)
    ys = np.empty(2 * len(x) - 1)
    xs[0::2] = x
    xs[1::2] = x[1:]
    ys[0::2] = y
    ys[1::2] = y[:-1]
    return xs, ys


def _style_axes(item: pg.PlotItem) -> None:
    font = QFont()
    font.setPointSize(8)
    for name in ("left", "bottom"):
        axis = item.getAxis(name)
        axis.enableAutoSIPrefix(False)   # the labels carry their own units; no "(x0.001)"
        axis.setTickFont(font)


class LogAxis(pg.AxisItem):
    """The value axis of every plot. On a log scale it labels decades, plus 2× and 5× only when
    fewer than three decades are in view (pyqtgraph's own labels every minor tick and they
    overlap in a short plot); on a linear scale its labels are always distinct
    (:func:`distinct_tick_strings`)."""

    def tickValues(self, minVal, maxVal, size):  # noqa: N802,N803 - pyqtgraph API
        if not self.logMode:
            return super().tickValues(minVal, maxVal, size)
        lo, hi = math.floor(minVal), math.ceil(maxVal)
        decades = [float(d) for d in range(lo, hi + 1) if minVal <= d <= maxVal]
        if len(decades) > 7:   # many decades (an exploding gradient): every k-th, at most 7 labels
            k = math.ceil(len(decades) / 7)
            decades = [d for d in decades if int(d) % k == 0]
        minor: list[float] = []
        if len(decades) < 3:
            for d in range(lo - 1, hi + 1):
                for m in (2.0, 5.0):
                    v = d + math.log10(m)
                    if minVal <= v <= maxVal:
                        minor.append(v)
        return [(1.0, decades), (0.3, minor)]

    def tickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph API
        if not self.logMode:
            return distinct_tick_strings([v * scale for v in values], spacing * scale)
        return [f"{10.0 ** v:.3g}" for v in values]


class _Exportable:
    """PNG and CSV export shared by the panels; ``ask_path`` is injectable (tests)."""

    ask_path: AskPath | None = None
    export_name: str = "plot"
    #: ``() -> folder`` where export dialogs start (the dashboard gives the current run's folder).
    export_dir: Callable[[], "str | Path | None"] | None = None

    def _start_folder(self) -> Path:
        """The run's folder when there is one, else the user's documents folder (never the working
        directory, which is the source tree when the app runs from a checkout)."""
        folder = self.export_dir() if self.export_dir is not None else None
        if folder and Path(folder).is_dir():
            return Path(folder)
        from PySide6.QtCore import QStandardPaths

        docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
        return Path(docs) if docs and Path(docs).is_dir() else Path.home()

    def _ask(self, title: str, suffix: str, file_filter: str) -> str | None:
        ask = self.ask_path
        if ask is None:
            from PySide6.QtWidgets import QFileDialog

            def ask(t: str, name: str, flt: str) -> str | None:
                path, _ = QFileDialog.getSaveFileName(self, t, name, flt)  # type: ignore[arg-type]
                return path or None
        return ask(title, str(self._start_folder() / f"{self.export_name}{suffix}"), file_filter)

    def export_png_dialog(self) -> str | None:
        path = self._ask("Export plot as PNG", ".png", "PNG image (*.png)")
        if path:
            self.export_png(path)
        return path

    def export_csv_dialog(self) -> str | None:
        path = self._ask("Export plot data as CSV", ".csv", "CSV (*.csv)")
        if path:
            self.export_csv(path)
        return path

    def export_png(self, path: str | Path, width: int | None = None) -> Path:
        """Write the plot (axes, curves, legend) as a PNG image: at least :data:`EXPORT_SCALE` × the
        on-screen size (``width`` pixels wide if given), laid out at no less than
        :data:`EXPORT_MIN_LOGICAL` first so axis labels are never clipped in a small plot."""
        path = Path(path)
        layout = self.ci  # type: ignore[attr-defined]
        shown = layout.geometry()
        w = max(shown.width(), EXPORT_MIN_LOGICAL[0])
        h = max(shown.height(), EXPORT_MIN_LOGICAL[1])
        try:
            if (w, h) != (shown.width(), shown.height()):
                layout.setGeometry(QRectF(0, 0, w, h))   # lay out at the export size (off screen only)
                layout.layout.activate()
            exporter = exporters.ImageExporter(layout)
            exporter.parameters()["width"] = int(width) if width else int(round(w * EXPORT_SCALE))
            exporter.export(str(path))
        finally:
            if (w, h) != (shown.width(), shown.height()):
                layout.setGeometry(shown)
                layout.layout.activate()
        return path

    def export_csv(self, path: str | Path) -> Path:  # pragma: no cover - overridden
        raise NotImplementedError

    def _add_export_actions(self, menu) -> None:
        menu.addSeparator()
        png = QAction("Export plot as PNG…", menu)
        png.triggered.connect(self.export_png_dialog)
        data = QAction("Export data as CSV…", menu)
        data.triggered.connect(self.export_csv_dialog)
        menu.addAction(png)
        menu.addAction(data)
        self._export_actions = (png, data)


class _FollowsTheme:
    """Mixin, listed before the Qt base: calls ``restyle()`` after a palette change (a theme
    switch), once the widget is built — its ``__init__`` sets ``_styled`` last."""

    _styled = False

    def restyle(self, force: bool = False) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().changeEvent(event)  # type: ignore[misc]
        if event.type() in _PALETTE_EVENTS and self._styled:
            self.restyle()


class _ThemedPlot(_FollowsTheme, pg.GraphicsLayoutWidget, _Exportable):
    """One ``plot_item`` whose background, axes and title (``_title``) follow the application
    palette; a subclass colours its own items in :meth:`_restyle_items`."""

    _theme: tuple | None = None   # the (background, text) colours last applied
    _title = ""
    plot_item: pg.PlotItem

    def restyle(self, force: bool = False) -> None:
        """Take the background and text colours from the application palette (a no-op when they
        have not changed, as each theme switch sends two palette events)."""
        bg, fg, _ = theme_colors()
        key = (bg.rgba(), fg.rgba())
        if key == self._theme and not force:
            return
        self._theme = key
        self._bg, self._fg = bg, fg
        self.setBackground(bg)
        item = self.plot_item
        _color_axes((item.getAxis("left"), item.getAxis("bottom")), fg)
        item.setTitle(_title_html(self._title, fg))
        self._restyle_items(bg, fg)

    def _restyle_items(self, bg: QColor, fg: QColor) -> None:
        """Colour what this plot adds beyond background, axes and title."""

    def _add_labelled_plot(self, x_label: str, y_label: str, **kwargs: Any) -> pg.PlotItem:
        """Take the palette's colours and add :attr:`plot_item` at (0, 0) (``kwargs`` go to
        ``addPlot``) with its axes labelled and styled."""
        self._bg, self._fg, _ = theme_colors()
        item = self.plot_item = self.addPlot(row=0, col=0, **kwargs)
        item.setLabel("bottom", x_label, color=self._fg.name())
        item.setLabel("left", y_label, color=self._fg.name())
        _style_axes(item)
        return item

    def _adopt_popups(self, *items: pg.PlotItem) -> None:
        """Make this widget the parent of pyqtgraph's pop-ups: each item's context menus (ViewBox
        menu, "Plot Options") and the scene's "Export..." dialog. pyqtgraph creates them without a
        parent, so they would be destroyed whenever Python frees their owner (on whatever thread)
        instead of with this widget, on the GUI thread."""
        for item in items:
            for menu in (item.vb.menu, item.ctrlMenu):
                if menu is not None and menu.parent() is None:
                    menu.setParent(self, menu.windowFlags())
        scene = self.scene()
        export = scene.contextMenu[0]
        export.triggered.disconnect(scene.showExportDialog)
        export.triggered.connect(self._show_export_dialog)

    def _show_export_dialog(self) -> None:
        """pyqtgraph's "Export..." dialog (``GraphicsScene.showExportDialog``) as a window owned by
        this widget."""
        from pyqtgraph.GraphicsScene.exportDialog import ExportDialog

        scene = self.scene()
        if scene.exportDialog is None:
            scene.exportDialog = ExportDialog(scene)
            scene.exportDialog.setParent(self, Qt.WindowType.Window)
        scene.exportDialog.show(scene.contextMenuItem)


class PlotPanel(_ThemedPlot):
    """One plot: labelled axes, a legend outside the data (``legend_position`` "bottom" or "right";
    :meth:`set_legend_visible`), linear/log y (:meth:`set_log_y`), reference lines, hover read-out,
    PNG/CSV export."""

    def __init__(self, object_name: str, title: str, x_label: str, y_label: str, *, log_y: bool = False,
                 legend_columns: int = 3, legend_position: str = "bottom", parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        self.setObjectName(object_name)
        self.export_name = object_name
        self.ci.setContentsMargins(4, 4, 14, 4)   # room on the right for the last x tick's label
        self.ci.setSpacing(2)
        item = self._add_labelled_plot(x_label, y_label, axisItems={"left": LogAxis("left")})
        self.setBackground(self._bg)
        self.set_title(title)
        # No grid: in the software (raster) painter grid lines cost 3x the rest of a redraw.
        item.setLogMode(x=False, y=log_y)
        item.setDownsampling(auto=True, mode="peak")
        item.setClipToView(True)
        item.setMenuEnabled(True)
        self.log_y = log_y
        self.x_name = x_label
        # The legend sits in its own layout cell under (or beside) the plot, so it never covers data.
        self.legend_position = legend_position
        self.legend = pg.LegendItem(colCount=1 if legend_position == "right" else legend_columns,
                                    labelTextColor=self._fg, labelTextSize="8pt", horSpacing=10, verSpacing=-8,
                                    frame=False)
        self._legend_cell = (0, 1) if legend_position == "right" else (1, 0)
        if legend_position == "right":   # its natural height, at the top: rows never spread over the plot's height
            self.legend.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.addItem(self.legend, *self._legend_cell)
        self._align_legend()
        self._legend_shown = True
        self._references: dict[str, tuple[pg.InfiniteLine, str, str]] = {}
        self._legend_sig: tuple = ()
        self._items: dict[str, pg.PlotDataItem] = {}
        self._data: dict[str, Curve] = {}
        self._samples: list[pg.PlotDataItem] = []
        # Hover: a vertical line and a read-out of the step and the named curves' values.
        self.crosshair = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#888888", width=1))
        self.crosshair.setVisible(False)
        item.addItem(self.crosshair, ignoreBounds=True)
        self.readout = pg.TextItem("", color=self._fg, anchor=(0, 0), fill=pg.mkBrush(255, 255, 255, 220))
        self.readout.setZValue(100)
        self.readout.setVisible(False)
        item.addItem(self.readout, ignoreBounds=True)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self._user_zoomed = False
        self._x_extent: float | None = None
        item.vb.sigRangeChangedManually.connect(self._on_manual_range)
        self._add_export_actions(item.vb.menu)
        self._adopt_popups(item)
        self.setMinimumSize(220, 170)
        self._styled = True
        self.restyle()

    # ---------------------------------------------------------------- theme
    def _restyle_items(self, bg: QColor, fg: QColor) -> None:
        """Legend text, hover read-out, curves and legend samples; near-black ones are lightened
        on a dark background."""
        self.legend.setLabelTextColor(fg)
        for _sample, label in self.legend.items:   # setLabelTextColor only affects labels added later
            label.setText(label.text, color=fg.name())
        self.readout.setColor(fg)
        fill = QColor(bg)
        fill.setAlpha(220)
        self.readout.fill = pg.mkBrush(fill)
        self.readout.update()
        for key_, data_item in self._items.items():
            curve = self._data.get(key_)
            if curve is None:
                continue
            if curve.width > 0:
                data_item.setPen(_pen(curve, bg))
            if curve.symbol:
                color = _legible(QColor(curve.color), bg)
                color.setAlpha(curve.alpha)
                data_item.setSymbolBrush(pg.mkBrush(color))
                data_item.setSymbolPen(pg.mkPen(color))
        for sample in self._samples:
            sample.setPen(pg.mkPen(_legible(QColor("#555555"), bg), width=1.5, style=sample.opts["pen"].style()))
        for key, (line, label, color) in self._references.items():
            self._style_reference(line, label, color)
        self.legend.update()

    # ---------------------------------------------------------------- drawing
    def set_axis_label(self, y_label: str) -> None:
        if self.y_label() != y_label:   # setting it re-lays the plot out: only on change
            self.plot_item.setLabel("left", y_label, color=self._fg.name())

    def set_x_label(self, x_label: str) -> None:
        """Name the x axis (step, epoch or training time); the hover read-out uses it too."""
        self.x_name = x_label
        if self.plot_item.getAxis("bottom").labelText != x_label:
            self.plot_item.setLabel("bottom", x_label, color=self._fg.name())

    def set_log_y(self, on: bool) -> None:
        """Linear or logarithmic y axis (values ≤ 0 leave a gap on a log axis); the next
        :meth:`set_curves` draws the data on it."""
        on = bool(on)
        if on == self.log_y:
            return
        self.log_y = on
        self.plot_item.setLogMode(x=False, y=on)
        self._legend_sig = ()
        self.plot_item.vb.enableAutoRange(y=True)

    def set_legend_visible(self, visible: bool) -> None:
        """Show or hide the legend; hidden, it gives its room back to the data."""
        visible = bool(visible)
        if visible == self._legend_shown:
            return
        self._legend_shown = visible
        if visible:
            self.addItem(self.legend, *self._legend_cell)
            self._align_legend()
        else:
            self.ci.removeItem(self.legend)

    def legend_visible(self) -> bool:
        return self._legend_shown

    def _align_legend(self) -> None:
        if self.legend_position == "right":
            self.ci.layout.setAlignment(self.legend, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)

    # ---------------------------------------------------------------- reference lines
    def set_reference_line(self, key: str, y: float, label: str, color: str = "#6b6b6b") -> None:
        """Draw (or move) a dashed horizontal line at ``y`` named ``label`` — e.g. a figure a paper
        published — that stays in view with the data. ``key`` identifies it for later changes."""
        if key in self._references:
            line = self._references[key][0]
            line.setPos(float(y))
        else:
            line = pg.InfiniteLine(pos=float(y), angle=0, movable=False)
            line.label = pg.InfLineLabel(line, text=label, position=0.02, anchors=[(0, 1), (0, 1)])
            self.plot_item.addItem(line)
        self._references[key] = (line, label, color)
        self._style_reference(line, label, color)

    def remove_reference_line(self, key: str) -> None:
        entry = self._references.pop(key, None)
        if entry is not None:
            self.plot_item.removeItem(entry[0])

    def reference_lines(self) -> dict[str, tuple[float, str]]:
        """``{key: (y, label)}`` of the reference lines drawn."""
        return {k: (float(line.value()), label) for k, (line, label, _c) in self._references.items()}

    def _style_reference(self, line: pg.InfiniteLine, label: str, color: str) -> None:
        c = _legible(QColor(color), self._bg)
        line.setPen(pg.mkPen(c, width=1.5, style=Qt.PenStyle.DashLine, cosmetic=True))
        line.label.setText(label)
        line.label.setColor(c)

    def set_title(self, title: str) -> None:
        if self._title != title:
            self._title = title
            self.plot_item.setTitle(_title_html(title, self._fg))

    def y_label(self) -> str:
        return self.plot_item.getAxis("left").labelText

    def _on_manual_range(self, *_: object) -> None:
        self._user_zoomed = True

    def set_x_extent(self, x_max: float | None) -> None:
        """Fix the x range to [0, x_max] (the run's total steps), so the step axis does not move and
        repaint on every new point; None goes back to auto-range. Ignored once the user zoomed."""
        if self._user_zoomed or x_max == self._x_extent:
            return
        self._x_extent = x_max
        vb = self.plot_item.vb
        if x_max is None or x_max <= 0:
            vb.enableAutoRange(x=True)
        else:
            vb.enableAutoRange(x=False)
            self.plot_item.setXRange(0, float(x_max), padding=0.02)

    def reset_zoom(self) -> None:
        """Forget a manual zoom: the x range follows the run again."""
        self._user_zoomed = False
        extent, self._x_extent = self._x_extent, None
        self.set_x_extent(extent)
        self.plot_item.vb.enableAutoRange(y=True)

    def set_curves(self, curves: Sequence[Curve], samples: Sequence[tuple[str, Qt.PenStyle]] = ()) -> None:
        """Draw exactly ``curves`` (reusing items by key); ``samples`` add legend entries showing
        a run's line style (``(label, style)``) without data."""
        seen = set()
        for curve in curves:
            seen.add(curve.key)
            x = np.asarray(curve.x, dtype=np.float64)
            y = np.asarray(curve.y, dtype=np.float64)
            if self.log_y:
                with np.errstate(all="ignore"):
                    y = np.where(y > 0, y, np.nan)
            if curve.step:
                x, y = _step_xy(x, y)
            x, y = minmax_decimate(x, y, MAX_POINTS)
            item = self._items.get(curve.key)
            if item is None:
                item = pg.PlotDataItem(connect="finite")
                item.setDownsampling(auto=True, method="peak")
                item.setClipToView(True)
                self.plot_item.addItem(item)
                self._items[curve.key] = item
            pen = _pen(curve, self._bg)
            kw = dict(pen=pen if curve.width > 0 else None)
            if curve.symbol:
                color = _legible(QColor(curve.color), self._bg)
                color.setAlpha(curve.alpha)
                kw.update(symbol=curve.symbol, symbolSize=curve.symbol_size, symbolBrush=pg.mkBrush(color),
                          symbolPen=pg.mkPen(color))
            else:
                kw.update(symbol=None)
            item.setData(x, y, **kw)
            item.opts["name"] = curve.name
            self._data[curve.key] = Curve(curve.key, x, y, curve.color, curve.name, curve.width, curve.style,
                                          curve.alpha, curve.symbol, curve.symbol_size, curve.step, curve.csv_name)
        for key in list(self._items):
            if key not in seen:
                self.plot_item.removeItem(self._items.pop(key))
                self._data.pop(key, None)
        self._update_legend(curves, samples)

    def _update_legend(self, curves: Sequence[Curve], samples: Sequence[tuple[str, Qt.PenStyle]]) -> None:
        named = [c for c in curves if c.name]
        sig = tuple((c.key, c.name, c.color, c.style, c.symbol, c.width) for c in named) + tuple(samples)
        if sig == self._legend_sig:
            return
        self._legend_sig = sig
        self.legend.clear()
        for c in named:
            self.legend.addItem(self._items[c.key], c.name)
        self._samples = []
        for label, style in samples:
            sample = pg.PlotDataItem(pen=pg.mkPen(_legible(QColor("#555555"), self._bg), width=1.5, style=style))
            self._samples.append(sample)
            self.legend.addItem(sample, label)

    def clear_curves(self) -> None:
        self.set_curves([])

    # ---------------------------------------------------------------- inspection (tests, export)
    def curve_keys(self) -> list[str]:
        return list(self._data)

    def curve(self, key: str) -> Curve:
        return self._data[key]

    def has_data(self, key: str | None = None) -> bool:
        """Whether a curve (or any curve) holds at least one finite point."""
        keys = [key] if key else list(self._data)
        return any(k in self._data and np.isfinite(self._data[k].y).any() for k in keys)

    def legend_labels(self) -> list[str]:
        return [label.text for _, label in self.legend.items]

    # ---------------------------------------------------------------- hover
    def _on_mouse_moved(self, pos) -> None:
        vb = self.plot_item.vb
        if not self.plot_item.sceneBoundingRect().contains(pos) or not vb.sceneBoundingRect().contains(pos):
            self.crosshair.setVisible(False)
            self.readout.setVisible(False)
            return
        point = vb.mapSceneToView(pos)
        self.hover_at(point.x())

    def hover_at(self, x: float) -> str:
        """Move the crosshair to step ``x`` and show the nearest value of each named curve."""
        lines = []
        step_shown = None
        for curve in self._data.values():
            if not curve.name or len(curve.x) == 0:
                continue
            i = int(np.clip(np.searchsorted(curve.x, x), 0, len(curve.x) - 1))
            if i > 0 and abs(curve.x[i - 1] - x) < abs(curve.x[i] - x):
                i -= 1
            value = curve.y[i]
            if step_shown is None:
                step_shown = curve.x[i]
            lines.append(f"{curve.name}: {value:.4g}")
        if step_shown is None:
            self.crosshair.setVisible(False)
            self.readout.setVisible(False)
            return ""
        x_text = f"{step_shown:.0f}" if self.x_name == "step" else f"{step_shown:.4g}"
        text = f"{self.x_name} {x_text}\n" + "\n".join(lines[:8])
        self.crosshair.setPos(x)
        self.crosshair.setVisible(True)
        (x0, x1), (y0, y1) = self.plot_item.vb.viewRange()
        self.readout.setText(text)
        self.readout.setPos(x0, y1)
        self.readout.setVisible(True)
        return text

    def leaveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.crosshair.setVisible(False)
        self.readout.setVisible(False)
        super().leaveEvent(event)

    # ---------------------------------------------------------------- export
    def export_csv(self, path: str | Path) -> Path:
        """Write every drawn curve as rows ``curve,<x axis>,value`` (what is on screen, decimated)."""
        path = Path(path)
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["curve", self.x_name, "value"])
            for key, curve in self._data.items():
                label = curve.csv_name or curve.name or key
                for x, y in zip(curve.x, curve.y):
                    if curve.step or not np.isfinite(y):
                        if not np.isfinite(y):
                            continue
                    writer.writerow([label, f"{x:.10g}", f"{y:.10g}"])
        return path


class HeatmapPanel(_ThemedPlot):
    """Gradient norms as an image: one row per layer (first layer at the top), one column per emit,
    colour = log10 of the L2 norm. A dark first row means the gradient does not reach that layer."""

    MAX_COLUMNS = 1500
    TITLE = "Gradient norm per layer (log10 ‖∇‖₂)"
    _title = TITLE

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        self.setObjectName("gradNormHeatmap")
        self.export_name = "gradNormHeatmap"
        item = self._add_labelled_plot("step", "layer")
        item.invertY(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        item.addItem(self.image)
        self.colormap = pg.colormap.get("viridis")
        self.image.setColorMap(self.colormap)
        # colorMapMenu=False: the bar's right-click colour-map menu would be a parentless QMenu.
        self.colorbar = pg.ColorBarItem(values=(-6, 0), colorMap=self.colormap,
                                        interactive=False, width=14, colorMapMenu=False)
        self.colorbar.setImageItem(self.image, insert_in=item)
        self.colorbar.getAxis("right").setLabel("log10 ‖∇‖₂")
        self.matrix = np.zeros((0, 0))
        self.steps = np.zeros(0)
        self.layers: list[str] = []
        self._add_export_actions(item.vb.menu)
        self._adopt_popups(item, self.colorbar)
        self.setMinimumSize(220, 170)
        self._styled = True
        self.restyle()

    def _restyle_items(self, bg: QColor, fg: QColor) -> None:
        """The colour bar's tick text and label."""
        bar_axis = self.colorbar.getAxis("right")
        bar_axis.setTextPen(pg.mkPen(fg))
        bar_axis.labelStyle = {**bar_axis.labelStyle, "color": fg.name()}
        bar_axis._updateLabel()

    def set_data(self, layers: Sequence[str], steps: np.ndarray, norms: np.ndarray) -> None:
        """``norms`` has shape (layers, emits); columns are max-pooled to at most MAX_COLUMNS."""
        self.layers = list(layers)
        steps = np.asarray(steps, dtype=np.float64)
        with np.errstate(all="ignore"):
            logn = np.where(norms > 0, np.log10(norms), np.nan)
        if logn.shape[1] > self.MAX_COLUMNS:
            size = int(math.ceil(logn.shape[1] / self.MAX_COLUMNS))
            pad = size * self.MAX_COLUMNS - logn.shape[1]
            padded = np.concatenate([logn, np.full((logn.shape[0], pad), np.nan)], axis=1)
            with np.errstate(all="ignore"), _quiet_nan():
                logn = np.nanmax(padded.reshape(logn.shape[0], self.MAX_COLUMNS, size), axis=2)
            steps = steps[::size]
        self.matrix = logn
        self.steps = steps
        if logn.size == 0 or not np.isfinite(logn).any():
            self.image.clear()   # nothing to show: no stale rows or layer names from another run
            self.plot_item.getAxis("left").setTicks([[]])
            return
        lo, hi = float(np.nanmin(logn)), float(np.nanmax(logn))
        if hi - lo < 1e-6:
            lo, hi = lo - 0.5, hi + 0.5
        shown = np.where(np.isfinite(logn), logn, lo)
        self.image.setImage(shown, autoLevels=False, levels=(lo, hi))
        self.colorbar.setLevels((lo, hi))
        x0 = float(steps[0]) if steps.size else 0.0
        x1 = float(steps[-1]) if steps.size > 1 else x0 + 1.0
        width = (x1 - x0) * (1 + 1 / max(len(steps) - 1, 1))
        self.image.setRect(QRectF(x0, 0.0, max(width, 1.0), float(len(self.layers))))
        self.plot_item.getAxis("left").setTicks([[(i + 0.5, name) for i, name in enumerate(self.layers)]])
        # exactly the data: no padding into negative steps or beyond the last layer
        self.plot_item.setXRange(x0, x0 + max(width, 1.0), padding=0)
        self.plot_item.setYRange(0.0, float(len(self.layers)), padding=0)

    def export_csv(self, path: str | Path) -> Path:
        """Rows ``layer,step,log10_grad_norm``."""
        path = Path(path)
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["layer", "step", "log10_grad_norm"])
            for r, name in enumerate(self.layers):
                for c, step in enumerate(self.steps):
                    v = self.matrix[r, c]
                    if np.isfinite(v):
                        writer.writerow([name, f"{step:.10g}", f"{v:.6g}"])
        return path


class _quiet_nan:  # noqa: N801 - used like a function: with _quiet_nan():
    """Silence numpy's 'All-NaN slice' warning inside a block."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


class GradNormPanel(QWidget):
    """``gradNormPlot``: per-layer gradient norm lines on a log axis, or the layer × step heatmap."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("gradNormPlot")
        self.lines = PlotPanel("gradNormLines", "Gradient norm per layer", "step", "‖∇‖₂ (L2 norm)", log_y=True,
                               legend_position="right", parent=self)
        self.heatmap = HeatmapPanel(self)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.lines)
        self.stack.addWidget(self.heatmap)
        self.heatmap_toggle = QCheckBox("Heatmap (layer × step)", self)
        self.heatmap_toggle.setObjectName("gradHeatmapToggle")
        self.heatmap_toggle.setToolTip("Show log10 of each layer's gradient norm as an image: a dark first "
                                       "row means the gradient does not reach the first layers.")
        self.heatmap_toggle.toggled.connect(self.set_heatmap)
        top = QHBoxLayout()
        top.setContentsMargins(4, 0, 4, 0)
        top.addStretch(1)
        top.addWidget(self.heatmap_toggle)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(top)
        layout.addWidget(self.stack, 1)

    def restyle(self, force: bool = False) -> None:
        """Re-read the theme colours in both views (each also does so itself on a palette change)."""
        self.lines.restyle(force)
        self.heatmap.restyle(force)

    def set_heatmap(self, on: bool) -> None:
        if self.heatmap_toggle.isChecked() != on:
            self.heatmap_toggle.setChecked(on)
            return
        self.stack.setCurrentWidget(self.heatmap if on else self.lines)

    def is_heatmap(self) -> bool:
        return self.stack.currentWidget() is self.heatmap

    def current(self) -> PlotPanel | HeatmapPanel:
        return self.stack.currentWidget()  # type: ignore[return-value]


class DepthPanel(_FollowsTheme, QWidget):
    """``depthPlot``: raw w and ⌈w⌉ of every InfiniteDepth layer, or a note (:meth:`set_note`) saying
    why there is nothing to plot — about the model on screen, not only the last run."""

    NOTE = "This model has no InfiniteDepth layer"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("depthPlot")
        self.plot = PlotPanel("depthLines", "Learned depth", "step", "depth (layers)", legend_columns=2, parent=self)
        self.note = QLabel(self.NOTE, self)
        self.note.setObjectName("depthNote")
        self.note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.note.setWordWrap(True)
        self.note.setMargin(16)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.plot)
        self.stack.addWidget(self.note)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)
        self.set_has_depth(False)
        self._styled = True
        self.restyle()

    def restyle(self, force: bool = False) -> None:
        """The note in the muted colour on the plot background; the plot restyles itself."""
        bg, _, muted = theme_colors()
        sheet = f"color: {muted.name()}; font-style: italic; background: {bg.name()};"
        if self.note.styleSheet() != sheet:
            self.note.setStyleSheet(sheet)
        self.plot.restyle(force)

    def set_has_depth(self, has: bool) -> None:
        self.stack.setCurrentWidget(self.plot if has else self.note)

    def set_note(self, text: str) -> None:
        """What the panel says when there is no learned depth to plot."""
        if self.note.text() != text:
            self.note.setText(text)

    def has_depth(self) -> bool:
        return self.stack.currentWidget() is self.plot


def panels_of(widgets: Iterable[QWidget]) -> list[PlotPanel]:
    """Every :class:`PlotPanel` among ``widgets`` (expanding the composite panels)."""
    out: list[PlotPanel] = []
    for w in widgets:
        if isinstance(w, PlotPanel):
            out.append(w)
        elif isinstance(w, GradNormPanel):
            out.append(w.lines)
        elif isinstance(w, DepthPanel):
            out.append(w.plot)
    return out
