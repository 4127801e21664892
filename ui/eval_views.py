"""The Evaluate page's views of an evaluation (:class:`workbench.evaluation.Evaluation`).

* :class:`ConfusionMatrixPanel` (``confusionMatrix``) — true class × predicted class, counts or
  row-normalised, class names on the axes, the value in each cell (up to :data:`CELL_TEXT_LIMIT`
  classes), a read-out of the cell under the mouse (counts and share of the true class);
* :class:`PerClassTable` (``perClassTable``) — precision, recall, F1 and support per class, the
  macro average and the accuracy;
* :class:`MistakesGallery` (``mistakesGallery``) — the misclassified images, most confident first,
  each with its true and predicted class and the confidence; clicking one shows its top-5
  probabilities;
* :class:`BoundaryPlot` — one run's decision boundary: the predicted class per grid cell (its colour,
  paler where the model is less sure) or the predicted value (a colour map) with the training and
  validation points on top; :class:`DecisionBoundaryView` (``decisionBoundary``) shows one per run,
  side by side;
* :class:`RegressionView` — ``regressionScatter`` (predicted against true with the identity line)
  and ``residualHistogram``.

Every plot follows the light/dark theme and exports PNG (at least twice its on-screen size) and
CSV from its context menu, with the dashboard's machinery (:mod:`ui.plots`); the gallery renders
its tiles at twice their size. ``ui.eval_figures`` draws the command line's figures with these same
classes.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, QSignalBlocker, QSize, Qt, Signal
from PySide6.QtGui import QAction, QColor, QFont, QFontMetricsF, QImage, QPainter, QPen
from PySide6.QtWidgets import (QAbstractItemView, QBoxLayout, QCheckBox, QHBoxLayout, QHeaderView, QLabel, QMenu,
                               QScrollArea,
                               QSizePolicy, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from ui.plots import (EXPORT_SCALE, TAB10, Curve, PlotPanel, _color_axes, _Exportable,
                      _FollowsTheme, _ThemedPlot, _title_html, theme_colors)

__all__ = ["ConfusionMatrixPanel", "PerClassTable", "MistakesGallery", "BoundaryPlot", "DecisionBoundaryView",
           "RegressionView", "class_color", "boundary_rgb", "CELL_TEXT_LIMIT", "GALLERY_SHOWN"]

#: Cell values are written in the confusion matrix up to this many classes.
CELL_TEXT_LIMIT = 20
#: Tiles the gallery lays out (the cache keeps the pictures of GALLERY_IMAGES mistakes).
GALLERY_SHOWN = 120
#: Most runs shown side by side in the decision-boundary view.
MAX_SIDE_BY_SIDE = 4

_TAB20_EXTRA = ("#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7",
                "#dbdb8d", "#9edae5")


def class_color(k: int) -> QColor:
    """The colour of class ``k`` (Tableau-10, then its light tints, then again)."""
    palette = TAB10 + _TAB20_EXTRA
    return QColor(palette[int(k) % len(palette)])


def _rgb(color: QColor) -> np.ndarray:
    return np.array([color.red(), color.green(), color.blue()], dtype=np.float64)


def boundary_rgb(classes: np.ndarray, confidence: np.ndarray, n_classes: int, background: QColor) -> np.ndarray:
    """(rows, cols, 3) uint8 picture of a classification grid: each cell the colour of its predicted
    class, mixed with ``background`` by how sure the model is — weight 0.18 at chance (1/K) up to 0.9
    at probability 1, so confidence reads as saturation."""
    k = max(2, int(n_classes))
    colors = np.stack([_rgb(class_color(i)) for i in range(max(k, int(classes.max(initial=0)) + 1))])
    strength = np.clip((confidence - 1.0 / k) / (1.0 - 1.0 / k), 0.0, 1.0)
    weight = (0.18 + 0.72 * strength)[..., None]
    out = colors[classes] * weight + _rgb(background)[None, None, :] * (1.0 - weight)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _short(text: str, limit: int = 14) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mix(a: QColor, b: QColor, t: float) -> QColor:
    """``a`` moved a fraction ``t`` towards ``b``."""
    return QColor(round(a.red() + (b.red() - a.red()) * t), round(a.green() + (b.green() - a.green()) * t),
                  round(a.blue() + (b.blue() - a.blue()) * t))


def _accent(bg: QColor) -> QColor:
    """The confusion matrix's strongest colour: dark blue on a light background, light blue on dark."""
    return QColor("#1f4e9c") if bg.lightness() >= 128 else QColor("#8ab8ff")


# ---------------------------------------------------------------------------------------------
# Confusion matrix
# ---------------------------------------------------------------------------------------------
class _CellLabels(pg.GraphicsObject):
    """Every cell's label of a K × K matrix drawn by ONE item (cell (r, c) spans [c, c+1] × [r, r+1]
    in the plot's coordinates), at a fixed font size whatever the zoom. One ``pg.TextItem`` per cell
    cost ~0.7 ms each to create and place: 70 ms of the GUI thread for 10 classes, at the end of
    every run (the app evaluates the run as it ends, bench/gui_latency.py)."""

    def __init__(self) -> None:
        super().__init__()
        self._cells: list[tuple[str, QColor]] = []   # row-major
        self._k = 0
        self.font = QFont()

    def set_cells(self, k: int, cells: list[tuple[str, QColor]], font: QFont) -> None:
        self.prepareGeometryChange()
        self._k, self._cells, self.font = k, cells, QFont(font)
        self.update()

    def texts(self) -> list[str]:
        """The labels, row by row (what is drawn)."""
        return [text for text, _ in self._cells]

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        return QRectF(0, 0, self._k, self._k)

    def paint(self, painter: QPainter, *args: Any) -> None:
        if not self._cells:
            return
        to_device = painter.transform()   # cell centres in pixels; the text itself is not scaled
        font = QFont(self.font)
        if self._exportOpts is not False:   # an image export at n × the screen size: n × the font
            font.setPointSizeF(font.pointSizeF() * float(self._exportOpts.get("resolutionScale", 1.0)))
        painter.save()
        painter.resetTransform()
        painter.setFont(font)
        metrics = QFontMetricsF(font)
        half_h = metrics.height() / 2
        k = self._k
        for i, (text, color) in enumerate(self._cells):
            centre = to_device.map(QPointF(i % k + 0.5, i // k + 0.5))
            width = metrics.horizontalAdvance(text)
            painter.setPen(color)
            painter.drawText(QRectF(centre.x() - width / 2 - 1, centre.y() - half_h, width + 2, 2 * half_h),
                             Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()


class ConfusionMatrixPanel(_ThemedPlot):
    """``confusionMatrix``: rows are the true class (first at the top), columns the predicted class.
    The colour of a cell is its row-normalised value (the share of the true class predicted so), in
    both modes, so a rare class's mistakes show as clearly as a frequent one's."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        self.setObjectName("confusionMatrix")
        self.export_name = "confusion"
        self.ci.setContentsMargins(4, 4, 12, 4)
        item = self._add_labelled_plot("predicted class", "true class")
        item.invertY(True)
        item.setMouseEnabled(x=False, y=False)
        item.hideButtons()
        item.setMenuEnabled(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        item.addItem(self.image)
        self.readout = pg.TextItem("", color=self._fg, anchor=(0, 0), fill=pg.mkBrush(255, 255, 255, 230))
        self.readout.setZValue(100)
        self.readout.setVisible(False)
        item.addItem(self.readout, ignoreBounds=True)
        self.normalized = False
        self.counts = np.zeros((0, 0), dtype=np.int64)
        self.names: list[str] = []
        self.labels = _CellLabels()
        self.labels.setZValue(10)   # above the image, below the read-out
        item.addItem(self.labels, ignoreBounds=True)
        self._title = "Confusion matrix (counts)"
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self._add_export_actions(item.vb.menu)
        self.normalize_action = QAction("Row-normalised (share of the true class)", item.vb.menu, checkable=True)
        self.normalize_action.toggled.connect(self.set_normalized)
        item.vb.menu.addAction(self.normalize_action)
        self._adopt_popups(item)
        self.setMinimumSize(200, 190)
        self._styled = True
        self.restyle()

    # ------------------------------------------------------------------ data
    def set_matrix(self, counts: np.ndarray, names: Sequence[str]) -> None:
        """Show ``counts`` (K × K, rows = true class) with the class ``names``."""
        self.counts = np.asarray(counts, dtype=np.int64)
        self.names = [str(n) for n in names]
        k = len(self.names)
        axis_names = [_short(n) for n in self.names]
        ticks = [[(i + 0.5, axis_names[i]) for i in range(k)]] if k <= 40 else \
            [[(i + 0.5, axis_names[i]) for i in range(0, k, math.ceil(k / 40))]]
        self.plot_item.getAxis("bottom").setTicks(ticks)
        self.plot_item.getAxis("left").setTicks(ticks)
        self._draw()

    def clear_matrix(self) -> None:
        """No matrix. (Not ``clear``: pyqtgraph's GraphicsLayoutWidget sets an instance attribute
        ``clear`` — its layout's — which would shadow it and empty the whole plot.)"""
        self.set_matrix(np.zeros((0, 0), dtype=np.int64), [])

    def set_normalized(self, on: bool) -> None:
        """Cell values as counts (False) or as the share of the row's true class (True)."""
        self.normalized = bool(on)
        if self.normalize_action.isChecked() != self.normalized:
            self.normalize_action.setChecked(self.normalized)
            return
        self._draw()

    def fractions(self) -> np.ndarray:
        c = self.counts.astype(np.float64)
        rows = c.sum(axis=1, keepdims=True)
        return np.divide(c, rows, out=np.zeros_like(c), where=rows > 0)

    def cell_text(self, row: int, col: int) -> str:
        """What a cell shows: the count, or the row share in percent."""
        if self.normalized:
            return f"{100 * self.fractions()[row, col]:.0f}%" if self.counts[row].sum() else "–"
        return str(int(self.counts[row, col]))

    def _draw(self) -> None:
        self._title = "Confusion matrix (" + ("share of each true class" if self.normalized else "counts") + ")"
        self.plot_item.setTitle(_title_html(self._title, self._fg))
        k = len(self.names)
        if k == 0:
            self.image.clear()
            self.labels.set_cells(0, [], self.labels.font)
            return
        frac = self.fractions()
        lo, hi = self._bg, _accent(self._bg)
        rgb = np.empty((k, k, 3), dtype=np.uint8)
        a, b = _rgb(lo), _rgb(hi)
        shade = np.sqrt(frac)[..., None]                # small shares stay visible
        rgb[:] = np.clip(np.round(a * (1 - shade) + b * shade), 0, 255).astype(np.uint8)
        self.image.setImage(rgb, autoLevels=False)
        self.image.setRect(QRectF(0, 0, k, k))
        self.plot_item.setXRange(0, k, padding=0)
        self.plot_item.setYRange(0, k, padding=0)
        cells: list[tuple[str, QColor]] = []
        font = QFont()
        if k <= CELL_TEXT_LIMIT:
            font.setPointSizeF(8.5 if k <= 12 else 7)
            white, black = QColor("#ffffff"), QColor("#111111")
            light_theme = self._bg.lightness() >= 128
            for r in range(k):
                for c in range(k):
                    dark_cell = math.sqrt(frac[r, c]) > 0.55
                    color = white if dark_cell == light_theme else black
                    if not light_theme and not dark_cell:
                        color = self._fg
                    cells.append((self.cell_text(r, c), color))
        self.labels.set_cells(k if cells else 0, cells, font)

    # ------------------------------------------------------------------ theme
    def _restyle_items(self, bg: QColor, fg: QColor) -> None:
        self.readout.setColor(fg)
        fill = QColor(bg)
        fill.setAlpha(230)
        self.readout.fill = pg.mkBrush(fill)
        self.readout.update()
        if self.names:
            self._draw()

    # ------------------------------------------------------------------ hover
    def hover_cell(self, row: int, col: int) -> str:
        """Show (and return) the read-out of cell (``row`` = true class, ``col`` = predicted class)."""
        k = len(self.names)
        if not (0 <= row < k and 0 <= col < k):
            self.readout.setVisible(False)
            return ""
        n = int(self.counts[row, col])
        total = int(self.counts[row].sum())
        share = f" = {100 * n / total:.1f}% of the {total:,} samples of true '{self.names[row]}'" if total else ""
        what = "correct" if row == col else "mistaken"
        text = f"true '{self.names[row]}', predicted '{self.names[col]}' ({what}):\n{n:,} samples{share}"
        self.readout.setText(text)
        self.readout.setPos(0, 0)
        self.readout.setVisible(True)
        self.setToolTip(text)
        return text

    def _on_mouse_moved(self, pos) -> None:
        vb = self.plot_item.vb
        if not vb.sceneBoundingRect().contains(pos) or not self.names:
            self.readout.setVisible(False)
            return
        point = vb.mapSceneToView(pos)
        self.hover_cell(int(math.floor(point.y())), int(math.floor(point.x())))

    def leaveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.readout.setVisible(False)
        super().leaveEvent(event)

    # ------------------------------------------------------------------ export
    def export_csv(self, path: str | Path) -> Path:
        """Counts (or shares) per true class × predicted class, with the class names."""
        from workbench.evaluation_files import csv_text

        rows: list[list[Any]] = [["true \\ predicted", *self.names]]
        for r, name in enumerate(self.names):
            values = self.fractions()[r] if self.normalized else self.counts[r]
            rows.append([name, *[(f"{v:.6g}" if self.normalized else int(v)) for v in values]])
        path = Path(path)
        path.write_text(csv_text(rows), encoding="utf-8")
        return path


# ---------------------------------------------------------------------------------------------
# Per-class table
# ---------------------------------------------------------------------------------------------
class PerClassTable(_Exportable, QTableWidget):
    """``perClassTable``: precision, recall, F1 and support per class, then the macro average and
    the accuracy (all in %, support in samples)."""

    HEADERS = ("class", "precision", "recall", "F1", "support")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(self.HEADERS), parent)
        self.setObjectName("perClassTable")
        self.export_name = "per_class"
        self.setHorizontalHeaderLabels(list(self.HEADERS))
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setAlternatingRowColors(True)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)   # never a clipped figure
        header.setStretchLastSection(True)
        self.setToolTip("precision: share of the samples predicted as the class that are of it; recall: share "
                        "of the class's samples predicted as it; F1: their harmonic mean; support: samples of "
                        "the class")
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)   # compact rows
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.setMinimumSize(200, 100)
        self.rows: list[tuple[str, float, float, float, int]] = []

    def set_figures(self, names: Sequence[str], precision: np.ndarray, recall: np.ndarray, f1: np.ndarray,
                    support: np.ndarray, accuracy: float, macro_f1: float) -> None:
        self.rows = [(str(n), float(p), float(r), float(f), int(s))
                     for n, p, r, f, s in zip(names, precision, recall, f1, support)]
        total = int(np.sum(support))
        summary = [("macro avg", float(np.mean(precision)), float(np.mean(recall)), float(macro_f1), total)]
        self.setRowCount(len(self.rows) + 2)
        for r, row in enumerate(self.rows + summary):
            self._set_row(r, row[0], [f"{100 * v:.1f}" for v in row[1:4]], str(row[4]), bold=r >= len(self.rows))
        self._set_row(len(self.rows) + 1, "accuracy", ["", "", f"{100 * accuracy:.2f}"], str(total), bold=True)
        self.setHorizontalHeaderLabels(["class", "precision %", "recall %", "F1 %", "support"])

    def clear_figures(self) -> None:
        self.rows = []
        self.setRowCount(0)

    def _set_row(self, r: int, name: str, values: list[str], support: str, bold: bool) -> None:
        cells = [name, *values, support]
        for c, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if c:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if bold:
                font = item.font()
                font.setBold(True)
                item.setFont(font)
            self.setItem(r, c, item)

    def _menu(self, pos) -> None:
        menu = QMenu(self)
        menu.addAction("Export data as CSV…", self.export_csv_dialog)
        menu.exec(self.viewport().mapToGlobal(pos))
        menu.deleteLater()

    def export_csv(self, path: str | Path) -> Path:
        from workbench.evaluation_files import csv_text

        rows: list[list[Any]] = [["class", "precision", "recall", "f1", "support"]]
        for r in range(self.rowCount()):
            texts = [self.item(r, c).text() if self.item(r, c) else "" for c in range(self.columnCount())]
            rows.append([texts[0]] + [f"{float(t) / 100:.6g}" if t else "" for t in texts[1:4]] + [texts[4]])
        path = Path(path)
        path.write_text(csv_text(rows), encoding="utf-8")
        return path


# ---------------------------------------------------------------------------------------------
# Mistakes gallery
# ---------------------------------------------------------------------------------------------
class _Tiles(QWidget):
    """The gallery's tiles, painted: each picture (scaled by a whole factor, pixels kept sharp) with
    "true → predicted" and the confidence under it. Click (or arrow keys) selects one."""

    selected = Signal(int)
    CAPTION_LINES = 2
    PAD = 6

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.images: list[QImage] = []
        self.captions: list[tuple[str, str]] = []
        self.current = -1
        self.columns = 1
        self.tile = QSize(96, 110)
        self.picture = 64
        self._colors = (QColor("#ffffff"), QColor("#111111"), QColor("#d62728"), QColor("#2f6fde"))

    def set_tiles(self, images: list[QImage], captions: list[tuple[str, str]], picture: int) -> None:
        self.images, self.captions = images, captions
        self.picture = picture
        fm = self.fontMetrics()
        text_w = max([fm.horizontalAdvance(c[0]) for c in captions] + [fm.horizontalAdvance("100.0% sure")]) + 8
        self.tile = QSize(max(picture + 2 * self.PAD, min(text_w, 150)),
                          picture + self.PAD * 2 + fm.height() * self.CAPTION_LINES + 2)
        self.current = -1
        self._relayout(self.width())
        self.update()

    def set_colors(self, bg: QColor, fg: QColor, wrong: QColor, select: QColor) -> None:
        self._colors = (bg, fg, wrong, select)
        self.update()

    def _relayout(self, width: int) -> None:
        self.columns = max(1, width // max(1, self.tile.width()))
        rows = math.ceil(len(self.images) / self.columns) if self.images else 0
        self.setMinimumHeight(rows * self.tile.height())

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._relayout(event.size().width())
        super().resizeEvent(event)

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt override
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt override
        columns = max(1, width // max(1, self.tile.width()))
        return math.ceil(len(self.images) / columns) * self.tile.height() if self.images else 0

    def tile_rect(self, i: int) -> QRectF:
        r, c = divmod(i, self.columns)
        return QRectF(c * self.tile.width(), r * self.tile.height(), self.tile.width(), self.tile.height())

    def paint_tiles(self, painter: QPainter, count: int | None = None) -> None:
        """Paint the tiles (the first ``count``) in this widget's layout."""
        bg, fg, wrong, select = self._colors
        fm = self.fontMetrics()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        for i, (image, (line1, line2)) in enumerate(zip(self.images, self.captions)):
            if count is not None and i >= count:
                break
            rect = self.tile_rect(i)
            if i == self.current:
                painter.setPen(QPen(select, 2))
                painter.setBrush(_mix(bg, select, 0.15))
                painter.drawRoundedRect(rect.adjusted(2, 2, -2, -2), 4, 4)
            x = rect.x() + (rect.width() - self.picture) / 2
            y = rect.y() + self.PAD
            painter.drawImage(QRectF(x, y, self.picture, self.picture), image)
            painter.setPen(QPen(_mix(bg, fg, 0.35), 1))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(QRectF(x - 0.5, y - 0.5, self.picture + 1, self.picture + 1))
            ty = y + self.picture + 2
            painter.setPen(fg)
            painter.drawText(QRectF(rect.x(), ty, rect.width(), fm.height()), Qt.AlignmentFlag.AlignHCenter,
                             fm.elidedText(line1, Qt.TextElideMode.ElideRight, int(rect.width()) - 4))
            painter.setPen(wrong)
            painter.drawText(QRectF(rect.x(), ty + fm.height(), rect.width(), fm.height()),
                             Qt.AlignmentFlag.AlignHCenter, line2)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.fillRect(self.rect(), self._colors[0])
        self.paint_tiles(painter)
        painter.end()

    def index_at(self, pos: QPointF) -> int:
        c = int(pos.x() // self.tile.width())
        r = int(pos.y() // self.tile.height())
        i = r * self.columns + c
        return i if 0 <= c < self.columns and 0 <= i < len(self.images) else -1

    def select(self, i: int) -> None:
        if not (0 <= i < len(self.images)) or i == self.current:
            return
        self.current = i
        self.update()
        self.selected.emit(i)

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        i = self.index_at(event.position())
        if i >= 0:
            self.setFocus()
            self.select(i)
        super().mousePressEvent(event)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt override
        step = {Qt.Key.Key_Right: 1, Qt.Key.Key_Left: -1, Qt.Key.Key_Down: self.columns,
                Qt.Key.Key_Up: -self.columns}.get(Qt.Key(event.key()))
        if step is not None and self.images:
            self.select(min(max(0, self.current + step), len(self.images) - 1))
            return
        super().keyPressEvent(event)


class _TopK(QWidget):
    """The selected mistake: its picture and its top-5 classes as bars (the true class marked)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image: QImage | None = None
        self.rows: list[tuple[str, float, bool]] = []
        self.title = ""
        self._colors = (QColor("#ffffff"), QColor("#111111"), QColor("#d62728"), QColor("#2ca02c"))
        self.setMinimumWidth(190)

    def set_sample(self, image: QImage | None, title: str, rows: list[tuple[str, float, bool]]) -> None:
        self.image, self.title, self.rows = image, title, rows
        self.update()

    def set_colors(self, bg: QColor, fg: QColor, wrong: QColor, right: QColor) -> None:
        self._colors = (bg, fg, wrong, right)
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(220, 260)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        bg, fg, wrong, right = self._colors
        painter = QPainter(self)
        painter.fillRect(self.rect(), bg)
        fm = self.fontMetrics()
        y = 6.0
        painter.setPen(fg)
        if not self.rows:
            painter.drawText(self.rect().adjusted(8, 8, -8, -8), Qt.TextFlag.TextWordWrap,
                             "Click a picture to see the five classes the model found most likely.")
            painter.end()
            return
        painter.drawText(QRectF(8, y, self.width() - 16, fm.height()), Qt.AlignmentFlag.AlignLeft,
                         fm.elidedText(self.title, Qt.TextElideMode.ElideRight, self.width() - 16))
        y += fm.height() + 4
        x = 8.0
        wide = self.width() >= 2.2 * self.height()    # under the tiles: picture left, bars right
        if self.image is not None:
            side = min(112.0, self.width() - 16.0, self.height() - y - 6.0 if wide else 112.0)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            painter.drawImage(QRectF(x, y, side, side), self.image)
            if wide:
                x += side + 12
            else:
                y += side + 6
        label_w = max(fm.horizontalAdvance(_short(name, 16)) for name, _, _ in self.rows) + 10
        bar_x = x + label_w
        bar_w = max(20.0, min(260.0, self.width() - bar_x - 8 - fm.horizontalAdvance("100.0%") - 6))
        for name, p, is_true in self.rows:
            painter.setPen(right if is_true else fg)
            painter.drawText(QRectF(x, y, label_w, fm.height()), Qt.AlignmentFlag.AlignLeft, _short(name, 16))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(_mix(bg, fg, 0.12))
            painter.drawRect(QRectF(bar_x, y + 2, bar_w, fm.height() - 4))
            painter.setBrush(right if is_true else wrong)
            painter.drawRect(QRectF(bar_x, y + 2, bar_w * max(0.0, min(1.0, p)), fm.height() - 4))
            painter.setPen(fg)
            painter.drawText(QRectF(bar_x + bar_w + 6, y, self.width(), fm.height()), Qt.AlignmentFlag.AlignLeft,
                             f"{100 * p:.1f}%")
            y += fm.height() + 4
        painter.setPen(_mix(bg, fg, 0.6))
        painter.drawText(QRectF(x, y + 2, self.width() - x - 8, fm.height() * 2), Qt.TextFlag.TextWordWrap,
                         "green: the true class")
        painter.end()


def _qimage(picture: np.ndarray) -> QImage:
    """(H, W, C) uint8 → a QImage that owns a copy of the pixels (grey for C = 1, RGB for C = 3)."""
    pic = np.ascontiguousarray(picture)
    h, w, c = pic.shape
    if c == 1:
        image = QImage(pic.data, w, h, w, QImage.Format.Format_Grayscale8)
    else:
        rgb = np.ascontiguousarray(pic[..., :3])
        image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return image.copy()


class MistakesGallery(_FollowsTheme, QWidget):
    """``mistakesGallery``: the misclassified pictures, most confident mistake first (up to
    :data:`GALLERY_SHOWN`), and the top-5 probabilities of the one clicked."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mistakesGallery")
        self.title = QLabel(self)
        self.title.setObjectName("mistakesTitle")
        self.title.setWordWrap(True)
        self.tiles = _Tiles(self)
        self.tiles.setObjectName("mistakesTiles")
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(self.tiles)
        self.detail = _TopK(self)
        self.detail.setObjectName("mistakeDetail")
        self.row = row = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.scroll, 1)
        row.addWidget(self.detail)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addWidget(self.title)
        layout.addLayout(row, 1)
        self.tiles.selected.connect(self._show_detail)
        self.entries: list[dict[str, Any]] = []
        self.names: list[str] = []
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.tiles.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tiles.customContextMenuRequested.connect(lambda pos: self._menu(self.tiles.mapTo(self, pos)))
        self.exporter = _GalleryExport(self)
        self.setMinimumSize(220, 200)
        self._styled = True
        self.restyle()

    #: Below this width the top-5 detail goes under the tiles instead of beside them.
    NARROW = 560

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        narrow = event.size().width() < self.NARROW
        direction = QBoxLayout.Direction.TopToBottom if narrow else QBoxLayout.Direction.LeftToRight
        if self.row.direction() != direction:
            self.row.setDirection(direction)
            if narrow:
                self.detail.setMinimumWidth(0)
                self.detail.setFixedHeight(self.detail.fontMetrics().height() * 8 + 30)
            else:
                self.detail.setMinimumWidth(190)
                self.detail.setMinimumHeight(0)
                self.detail.setMaximumHeight(16777215)
        super().resizeEvent(event)

    # ------------------------------------------------------------------ data
    def set_mistakes(self, ev: Any) -> None:
        """Show ``ev``'s misclassified samples that have a picture (most confident first)."""
        self.names = list(ev.class_names)
        images = ev.mistake_images if ev.mistake_images is not None else np.zeros((0, 1, 1, 1), np.uint8)
        shown = min(len(images), GALLERY_SHOWN)
        true, pred, conf = ev.mistake_true, ev.mistake_predicted, ev.mistake_confidence
        self.entries = []
        qimages, captions = [], []
        for i in range(shown):
            self.entries.append({"index": int(ev.mistake_index[i]), "true": int(true[i]), "predicted": int(pred[i]),
                                 "confidence": float(conf[i]), "topk": [int(k) for k in ev.mistake_topk[i]],
                                 "topp": [float(p) for p in ev.mistake_topp[i]]})
            qimages.append(_qimage(images[i]))
            captions.append((f"{_short(self.names[true[i]], 10)} → {_short(self.names[pred[i]], 10)}",
                             f"{100 * conf[i]:.1f}% sure"))
        h = int(images.shape[1]) if shown else 28
        picture = max(48, min(96, h * max(1, round(64 / max(1, h)))))
        picture = h * max(1, picture // max(1, h))          # a whole scale factor: sharp pixels
        self.tiles.set_tiles(qimages, captions, picture)
        wrong = int(ev.mistake_index.shape[0]) if ev.mistake_index is not None else 0
        if wrong == 0:
            self.title.setText(f"No misclassified samples: all {ev.n:,} {ev.split} samples are predicted right.")
        else:
            more = f"; the {shown} most confident shown" if wrong > shown else ""
            self.title.setText(f"{wrong:,} of {ev.n:,} {ev.split} samples misclassified{more}, most confident "
                               f"mistake first. Caption: true → predicted class, and how sure the model was.")
        self.detail.set_sample(None, "", [])
        if self.entries:
            self.tiles.select(0)

    def clear(self) -> None:
        self.entries = []
        self.tiles.set_tiles([], [], 64)
        self.title.setText("")
        self.detail.set_sample(None, "", [])

    def shown(self) -> list[dict[str, Any]]:
        """The tiles in order: sample index, true and predicted class, confidence, top-5."""
        return list(self.entries)

    def select(self, i: int) -> None:
        self.tiles.select(i)

    def _show_detail(self, i: int) -> None:
        e = self.entries[i]
        rows = [(self.names[k], p, k == e["true"]) for k, p in zip(e["topk"], e["topp"])]
        title = f"sample {e['index']}: true '{self.names[e['true']]}'"
        self.detail.set_sample(self.tiles.images[i], title, rows)

    def detail_rows(self) -> list[tuple[str, float, bool]]:
        """The detail's rows: (class, probability, is the true class), most likely first."""
        return list(self.detail.rows)

    # ------------------------------------------------------------------ theme
    def restyle(self, force: bool = False) -> None:
        bg, fg, _ = theme_colors()
        wrong = QColor("#d62728") if bg.lightness() >= 128 else QColor("#ff7b7b")
        right = QColor("#2ca02c") if bg.lightness() >= 128 else QColor("#6fd36f")
        self.tiles.set_colors(bg, fg, wrong, QColor("#2f6fde") if bg.lightness() >= 128 else QColor("#7fb0ff"))
        self.detail.set_colors(bg, fg, wrong, right)

    # ------------------------------------------------------------------ export
    def _menu(self, pos) -> None:
        menu = QMenu(self)
        menu.addAction("Export gallery as PNG…", self.exporter.export_png_dialog)
        menu.addAction("Export data as CSV…", self.exporter.export_csv_dialog)
        menu.exec(self.mapToGlobal(pos))
        menu.deleteLater()

    def render_image(self, columns: int = 8, count: int | None = None, scale: float = EXPORT_SCALE,
                     title: str | None = None) -> QImage:
        """The first ``count`` tiles (all by default) in ``columns`` columns, drawn at ``scale`` × their
        on-screen size on the theme's background, under a title line."""
        n = len(self.entries) if count is None else min(count, len(self.entries))
        columns = max(1, min(columns, n or 1))
        tile = self.tiles.tile
        rows = math.ceil(n / columns) if n else 0
        fm = self.tiles.fontMetrics()
        head = fm.height() * 2 + 8
        w, h = columns * tile.width(), rows * tile.height() + head
        image = QImage(int(w * scale), int(h * scale), QImage.Format.Format_ARGB32)
        image.setDevicePixelRatio(scale)
        bg, fg = self.tiles._colors[0], self.tiles._colors[1]
        image.fill(bg)
        painter = QPainter(image)
        painter.setFont(self.tiles.font())
        painter.setPen(fg)
        text = title if title is not None else self.title.text()
        painter.drawText(QRectF(4, 2, w - 8, head - 4), Qt.TextFlag.TextWordWrap, text)
        painter.translate(0, head)
        saved = self.tiles.columns, self.tiles.current
        self.tiles.columns, self.tiles.current = columns, -1
        try:
            self.tiles.paint_tiles(painter, n)
        finally:
            self.tiles.columns, self.tiles.current = saved
            painter.end()
        return image

    def export_csv(self, path: str | Path) -> Path:
        """One row per tile: index, true, predicted, confidence, then the top-5 classes and probabilities."""
        path = Path(path)
        top = max((len(e["topk"]) for e in self.entries), default=0)
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["index", "true", "predicted", "confidence"]
                            + [f"{what}{i + 1}" for i in range(top) for what in ("class", "p")])
            for e in self.entries:
                extra = []
                for k, p in zip(e["topk"], e["topp"]):
                    extra += [self.names[k], f"{p:.6g}"]
                writer.writerow([e["index"], self.names[e["true"]], self.names[e["predicted"]],
                                 f"{e['confidence']:.6g}", *extra])
        return path


class _GalleryExport(_Exportable):
    """The gallery's PNG and CSV export through the plots' file prompts."""

    def __init__(self, gallery: MistakesGallery) -> None:
        self.gallery = gallery
        self.export_name = "misclassified"

    def export_png(self, path: str | Path, width: int | None = None) -> Path:
        columns = max(1, self.gallery.tiles.columns)
        self.gallery.render_image(columns=columns).save(str(path))
        return Path(path)

    def export_csv(self, path: str | Path) -> Path:
        return self.gallery.export_csv(path)

    def _ask(self, title: str, suffix: str, file_filter: str) -> str | None:
        ask = self.ask_path
        if ask is None:
            from PySide6.QtWidgets import QFileDialog

            def ask(t: str, name: str, flt: str) -> str | None:
                path, _ = QFileDialog.getSaveFileName(self.gallery, t, name, flt)
                return path or None
        return ask(title, str(self._start_folder() / f"{self.export_name}{suffix}"), file_filter)


# ---------------------------------------------------------------------------------------------
# Decision boundary
# ---------------------------------------------------------------------------------------------
class BoundaryPlot(_ThemedPlot):
    """One run's decision boundary over the plane of its two input features, with the data on top
    (training points filled, validation points as rings)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        self.setObjectName("boundaryPlot")
        self.export_name = "decision_boundary"
        self.ci.setContentsMargins(4, 4, 12, 4)
        item = self._add_labelled_plot("feature 1", "feature 2")
        item.setAspectLocked(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        item.addItem(self.image)
        self.colormap = pg.colormap.get("viridis")
        self.colorbar: pg.ColorBarItem | None = None
        self._scatters: list[pg.ScatterPlotItem] = []
        self.readout = pg.TextItem("", color=self._fg, anchor=(0, 0), fill=pg.mkBrush(255, 255, 255, 230))
        self.readout.setZValue(100)
        self.readout.setVisible(False)
        item.addItem(self.readout, ignoreBounds=True)
        self.boundary: Any = None
        self.points: Any = None
        self.label = ""
        self.names: list[str] = []
        self.show_train = True
        self.show_val = True
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self._add_export_actions(item.vb.menu)
        self._adopt_popups(item)
        self.setMinimumSize(200, 200)
        self._title = "Decision boundary"
        self._styled = True
        self.restyle()

    def set_boundary(self, boundary: Any, points: Any, label: str = "", names: Sequence[str] = ()) -> None:
        """Draw ``boundary`` (a :class:`workbench.boundary.DecisionBoundary`) and ``points``
        (:class:`workbench.boundary.BoundaryPoints`, or None) titled with ``label``."""
        new_points = points is not self.points
        self.boundary, self.points, self.label = boundary, points, label
        self.names = [str(n) for n in names]
        self._draw_grid()
        if new_points:
            self._draw_points()
        self._update_title()

    def set_points_visible(self, train: bool, val: bool) -> None:
        self.show_train, self.show_val = bool(train), bool(val)
        self._draw_points()

    def _name(self, k: int) -> str:
        return self.names[k] if 0 <= k < len(self.names) else str(k)

    def _update_title(self) -> None:
        """Two lines: the run (elided to the plot's width: a long title would widen the plot past
        its pane) and what model the grid shows."""
        b = self.boundary
        if b is None:
            what = ""
        elif b.source == "live":
            what = f"live · step {b.step:,}"
        else:
            what = f"{b.source} checkpoint · epoch {b.epoch} · step {b.step:,}"
        font = QFont()
        font.setPointSize(9)
        font.setWeight(QFont.Weight.DemiBold)
        room = max(80, self.width() - 40)
        label = QFontMetricsF(font).elidedText(self.label or "Decision boundary", Qt.TextElideMode.ElideRight, room)
        self._title = f"{label}\n{what}" if what else label
        html = _title_html(label, self._fg) + (f"<br><span style='color:{self._fg.name()};font-size:8pt'>{what}"
                                               "</span>" if what else "")
        self.plot_item.setTitle(html)

    def _draw_grid(self) -> None:
        b = self.boundary
        if b is None:
            self.image.clear()
            return
        if b.task == "regression":
            values = b.value_grid()
            lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
            if hi - lo < 1e-12:
                lo, hi = lo - 0.5, hi + 0.5
            self.image.setImage(values, autoLevels=False, levels=(lo, hi))
            self.image.setColorMap(self.colormap)
            if self.colorbar is None:
                self.colorbar = pg.ColorBarItem(values=(lo, hi), colorMap=self.colormap, interactive=False, width=12,
                                                colorMapMenu=False)
                self.colorbar.setImageItem(self.image, insert_in=self.plot_item)
                self.colorbar.getAxis("right").setLabel("predicted value")
                self._restyle_items(self._bg, self._fg)
            self.colorbar.setLevels((lo, hi))
        else:
            rgb = boundary_rgb(b.class_grid(), b.confidence_grid(), b.n_classes, self._bg)
            self.image.setImage(rgb, autoLevels=False)
        (x0, x1), (y0, y1) = b.x_range, b.y_range
        self.image.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        self.plot_item.setXRange(x0, x1, padding=0)
        self.plot_item.setYRange(y0, y1, padding=0)

    def _point_size(self) -> float:
        p = self.points
        n = 0 if p is None else (len(p.train_x1) if self.show_train else 0) + (len(p.val_x1) if self.show_val else 0)
        if n == 0:
            return 6.0
        side = max(100.0, min(self.width(), self.height()) - 60.0)
        return float(np.clip(0.55 * side / math.sqrt(n), 2.5, 8.0))

    def _draw_points(self) -> None:
        for s in self._scatters:
            self.plot_item.removeItem(s)
        self._scatters = []
        p = self.points
        if p is None:
            return
        size = self._point_size()
        outline = QColor(self._fg)
        outline.setAlpha(170)
        for split, shown in (("train", self.show_train), ("val", self.show_val)):
            if not shown:
                continue
            x1 = np.asarray(getattr(p, f"{split}_x1"), dtype=np.float64)
            x2 = np.asarray(getattr(p, f"{split}_x2"), dtype=np.float64)
            labels = np.asarray(getattr(p, f"{split}_label"), dtype=np.float64)
            if x1.size == 0:
                continue
            if p.task == "regression":
                lo, hi = (self.colorbar.levels() if self.colorbar is not None else (labels.min(), labels.max()))
                t = np.clip((labels - lo) / max(hi - lo, 1e-12), 0, 1)
                colors = self.colormap.map(t, mode="qcolor")
                brushes = [pg.mkBrush(c) for c in colors] if split == "train" else None
                pens = [pg.mkPen(outline, width=0.8)] * len(x1) if split == "train" else \
                    [pg.mkPen(c, width=1.4) for c in colors]
                scatter = pg.ScatterPlotItem(x=x1, y=x2, size=size, pen=pens,
                                             brush=brushes if brushes else pg.mkBrush(None), pxMode=True)
                self.plot_item.addItem(scatter)
                self._scatters.append(scatter)
                continue
            for k in np.unique(labels.astype(np.int64)):
                mask = labels.astype(np.int64) == k
                color = class_color(int(k))
                if split == "train":
                    scatter = pg.ScatterPlotItem(x=x1[mask], y=x2[mask], size=size, symbol="o",
                                                 pen=pg.mkPen(outline, width=0.8), brush=pg.mkBrush(color))
                else:
                    scatter = pg.ScatterPlotItem(x=x1[mask], y=x2[mask], size=size, symbol="o",
                                                 pen=pg.mkPen(color, width=1.4), brush=pg.mkBrush(None))
                self.plot_item.addItem(scatter)
                self._scatters.append(scatter)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        scatters = getattr(self, "_scatters", None)     # pyqtgraph resizes before __init__ is done
        if scatters is None:
            return
        if scatters and abs(scatters[0].opts["size"] - self._point_size()) > 0.5:
            self._draw_points()
        self._update_title()

    # ------------------------------------------------------------------ theme
    def _restyle_items(self, bg: QColor, fg: QColor) -> None:
        self.readout.setColor(fg)
        fill = QColor(bg)
        fill.setAlpha(230)
        self.readout.fill = pg.mkBrush(fill)
        self.readout.update()
        if self.colorbar is not None:
            _color_axes((self.colorbar.getAxis("right"),), fg)
        if self.boundary is not None:
            self._draw_grid()
            self._draw_points()

    # ------------------------------------------------------------------ hover
    def hover_at(self, x: float, y: float) -> str:
        """Show (and return) what the model predicts in the grid cell holding (``x``, ``y``)."""
        b = self.boundary
        if b is None:
            return ""
        (x0, x1), (y0, y1) = b.x_range, b.y_range
        col = int((x - x0) / (x1 - x0) * b.resolution)
        row = int((y - y0) / (y1 - y0) * b.resolution)
        if not (0 <= col < b.resolution and 0 <= row < b.resolution):
            self.readout.setVisible(False)
            return ""
        i = row * b.resolution + col
        if b.task == "regression":
            what = f"predicted {b.values[i]:.4g}"
        else:
            what = f"predicted '{self._name(b.classes[i])}', {100 * b.confidence[i]:.1f}% sure"
        text = f"({x:.3g}, {y:.3g}): {what}"
        self.readout.setText(text)
        (vx0, _), (_, vy1) = self.plot_item.vb.viewRange()
        self.readout.setPos(vx0, vy1)
        self.readout.setVisible(True)
        return text

    def _on_mouse_moved(self, pos) -> None:
        vb = self.plot_item.vb
        if not vb.sceneBoundingRect().contains(pos):
            self.readout.setVisible(False)
            return
        point = vb.mapSceneToView(pos)
        self.hover_at(point.x(), point.y())

    def leaveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.readout.setVisible(False)
        super().leaveEvent(event)

    # ------------------------------------------------------------------ export
    def export_csv(self, path: str | Path) -> Path:
        """Rows ``kind, x1, x2, label, confidence``: every grid cell centre with its prediction
        (kind ``grid``), then the drawn training and validation points with their labels."""
        path = Path(path)
        b, p = self.boundary, self.points
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["kind", "x1", "x2", "label", "confidence"])
            if b is not None:
                (x0, x1), (y0, y1) = b.x_range, b.y_range
                n = b.resolution
                for i in range(n * n):
                    r, c = divmod(i, n)
                    cx = x0 + (c + 0.5) * (x1 - x0) / n
                    cy = y0 + (r + 0.5) * (y1 - y0) / n
                    if b.task == "regression":
                        writer.writerow(["grid", f"{cx:.6g}", f"{cy:.6g}", f"{b.values[i]:.6g}", ""])
                    else:
                        writer.writerow(["grid", f"{cx:.6g}", f"{cy:.6g}", self._name(b.classes[i]),
                                         f"{b.confidence[i]:.6g}"])
            if p is not None:
                for split, kind in (("train", "train"), ("val", "validation")):
                    for a, c, lab in zip(getattr(p, f"{split}_x1"), getattr(p, f"{split}_x2"),
                                         getattr(p, f"{split}_label")):
                        label = f"{lab:.6g}" if p.task == "regression" else self._name(int(lab))
                        writer.writerow([kind, f"{a:.6g}", f"{c:.6g}", label, ""])
        return path


class DecisionBoundaryView(_FollowsTheme, QWidget):
    """``decisionBoundary``: the decision boundary of the selected run, and of the other runs checked
    in the runs list beside it (up to :data:`MAX_SIDE_BY_SIDE`), with a legend line and toggles for
    the training and validation points."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("decisionBoundary")
        self.plots: list[BoundaryPlot] = []
        self.keys: list[str] = []
        self.row = QHBoxLayout()
        self.row.setContentsMargins(0, 0, 0, 0)
        self.row.setSpacing(4)
        self.train_toggle = QCheckBox("training points", self)
        self.train_toggle.setObjectName("boundaryTrainPoints")
        self.train_toggle.setChecked(True)
        self.val_toggle = QCheckBox("validation points", self)
        self.val_toggle.setObjectName("boundaryValPoints")
        self.val_toggle.setChecked(True)
        self._user_toggled = False
        for toggle in (self.train_toggle, self.val_toggle):
            toggle.toggled.connect(self._on_toggles)
            toggle.clicked.connect(lambda _on: setattr(self, "_user_toggled", True))
        self.legend = QLabel(self)
        self.legend.setObjectName("boundaryLegend")
        self.legend.setWordWrap(True)
        self.legend.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 0, 4, 0)
        bar.addWidget(self.legend, 1)
        bar.addWidget(self.train_toggle)
        bar.addWidget(self.val_toggle)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(self.row, 1)
        layout.addLayout(bar)
        self.setMinimumSize(200, 220)

    #: Validation points start hidden when a run has more points than this (they would cover the grid).
    CROWDED = 3000

    def set_boundaries(self, items: Sequence[tuple[str, str, Any, Any, Sequence[str]]]) -> None:
        """``items``: (key, label, DecisionBoundary, BoundaryPoints, class names) per run, the
        selected run first; a plot per item (reused by key), at most :data:`MAX_SIDE_BY_SIDE`."""
        items = list(items)[:MAX_SIDE_BY_SIDE]
        if items and not self._user_toggled and items[0][3] is not None:
            p = items[0][3]
            with QSignalBlocker(self.val_toggle):
                self.val_toggle.setChecked(p.train_total + p.val_total <= self.CROWDED)
        keys = [key for key, *_ in items]
        if keys != self.keys:
            by_key = dict(zip(self.keys, self.plots))
            for key, plot in by_key.items():
                if key not in keys:
                    self.row.removeWidget(plot)
                    plot.hide()
                    plot.deleteLater()
            self.plots = []
            for key in keys:
                plot = by_key.get(key)
                if plot is None:
                    plot = BoundaryPlot(self)
                    plot.ask_path = getattr(self, "ask_path", None)
                    plot.export_dir = getattr(self, "export_dir", None)
                self.row.removeWidget(plot)
                self.row.addWidget(plot, 1)
                plot.show()
                self.plots.append(plot)
            self.keys = keys
        for plot, (_key, label, boundary, points, names) in zip(self.plots, items):
            plot.show_train, plot.show_val = self.train_toggle.isChecked(), self.val_toggle.isChecked()
            plot.set_boundary(boundary, points, label, names)
        self._update_legend()

    def plot(self, key: str) -> BoundaryPlot | None:
        return dict(zip(self.keys, self.plots)).get(key)

    def _on_toggles(self) -> None:
        for plot in self.plots:
            plot.set_points_visible(self.train_toggle.isChecked(), self.val_toggle.isChecked())
        self._update_legend()

    def _update_legend(self) -> None:
        if not self.plots or self.plots[0].boundary is None:
            self.legend.setText("")
            return
        first = self.plots[0]
        p = first.points
        counts = ""
        if p is not None:
            counts = (f": {p.train_total:,}" + (f" / {p.val_total:,}" if p.val_total else "")
                      + (", thinned for drawing" if len(p.train_x1) < p.train_total or len(p.val_x1) < p.val_total
                         else ""))
        if first.boundary.task == "regression":
            text = "Colour: the predicted value; points (● training, ○ validation) by their target" + counts + "."
        else:
            text = "Colour: the predicted class, paler = less sure; points (● training, ○ validation) by their " \
                   "class" + counts + "."
        self.legend.setText(text)

    def restyle(self, force: bool = False) -> None:
        for plot in self.plots:
            plot.restyle(force)


# ---------------------------------------------------------------------------------------------
# Regression
# ---------------------------------------------------------------------------------------------
class RegressionView(QWidget):
    """``regressionScatter`` (predicted against true, the identity line) and ``residualHistogram``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("regressionView")
        self.scatter = PlotPanel("regressionScatter", "Predicted vs true", "true value (target units)",
                                 "predicted value", legend_position="bottom", parent=self)
        self.scatter.export_name = "regression"
        self.residuals = PlotPanel("residualHistogram", "Residuals (predicted − true)", "residual (target units)",
                                   "samples", legend_position="bottom", parent=self)
        self.residuals.export_name = "residuals"
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.scatter, 3)
        layout.addWidget(self.residuals, 2)

    def set_predictions(self, true: np.ndarray, predicted: np.ndarray, target: str = "") -> None:
        """Draw the first target's predictions: points sorted by the true value, the identity line
        y = x over their range, and a histogram of the residuals (√N bins, at most 40)."""
        t = np.asarray(true, dtype=np.float64).reshape(len(true), -1)[:, 0]
        p = np.asarray(predicted, dtype=np.float64).reshape(len(predicted), -1)[:, 0]
        order = np.argsort(t, kind="stable")
        t, p = t[order], p[order]
        lo = float(min(t.min(), p.min())) if t.size else 0.0      # the identity over the data's range
        hi = float(max(t.max(), p.max())) if t.size else 1.0
        name = f" ({target})" if target else ""
        self.scatter.set_curves([
            Curve("identity", np.array([lo, hi]), np.array([lo, hi]), "#7f7f7f", "identity (predicted = true)",
                  width=1.5, style=Qt.PenStyle.DashLine),
            Curve("points", t, p, TAB10[0], f"samples{name}", width=0, symbol="o", symbol_size=7, alpha=210,
                  csv_name="predicted"),
        ])
        residual = p - t
        bins = int(np.clip(round(math.sqrt(max(1, residual.size))), 5, 40))
        counts, edges = np.histogram(residual, bins=bins) if residual.size else (np.zeros(1), np.array([0.0, 1.0]))
        # a closed outline: up from 0 at the first edge, each bin's count, down to 0 at the last edge
        x = np.concatenate([edges[:1], edges]).astype(np.float64)
        y = np.concatenate([[0.0], counts, [0.0]]).astype(np.float64)
        self.residuals.set_curves([
            Curve("residuals", x, y, TAB10[3], "samples per bin", width=2.0, step=True, csv_name="samples"),
        ])

    def clear(self) -> None:
        self.scatter.clear_curves()
        self.residuals.clear_curves()

    def restyle(self, force: bool = False) -> None:
        self.scatter.restyle(force)
        self.residuals.restyle(force)
