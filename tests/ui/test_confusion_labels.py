"""The confusion matrix's cell labels: one item draws them all (it was one ``pg.TextItem`` per cell,
~70 ms of the GUI thread for 10 classes at the end of every run; issue #12 item 8)."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor, QImage

from ui.eval_views import CELL_TEXT_LIMIT, ConfusionMatrixPanel


def matrix(k: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 5, (k, k)) + np.diag(rng.integers(20, 40, k))


def cell_rect(panel: ConfusionMatrixPanel, row: int, col: int, scale: float = 1.0) -> tuple[int, int, int, int]:
    """The middle 60 % of cell (row, col) in widget pixels (× ``scale``): x0, y0, x1, y1."""
    vb = panel.plot_item.vb
    a = panel.mapFromScene(vb.mapViewToScene(QPointF(col + 0.2, row + 0.2)))
    b = panel.mapFromScene(vb.mapViewToScene(QPointF(col + 0.8, row + 0.8)))
    xs, ys = sorted((a.x(), b.x())), sorted((a.y(), b.y()))
    return int(xs[0] * scale), int(ys[0] * scale), int(xs[1] * scale), int(ys[1] * scale)


def light_pixels(image: QImage, rect: tuple[int, int, int, int]) -> int:
    """How many pixels in ``rect`` are near white (label text on a dark cell)."""
    x0, y0, x1, y1 = rect
    assert x1 - x0 > 5 and y1 - y0 > 5
    return sum(min(QColor(image.pixel(x, y)).getRgb()[:3]) > 200 for y in range(y0, y1) for x in range(x0, x1))


def test_every_cell_is_labelled_with_its_text_and_drawn(qtbot) -> None:
    panel = ConfusionMatrixPanel()
    qtbot.addWidget(panel)
    panel.resize(520, 460)
    panel.show()
    qtbot.waitExposed(panel)
    counts = matrix(10)
    panel.set_matrix(counts, [str(i) for i in range(10)])
    assert panel.labels.texts() == [panel.cell_text(r, c) for r in range(10) for c in range(10)]
    panel.set_normalized(True)
    assert panel.labels.texts() == [panel.cell_text(r, c) for r in range(10) for c in range(10)]
    assert panel.labels.texts()[0].endswith("%")
    # drawn: a diagonal (dark) cell has light text pixels, which vanish with the labels hidden
    with_labels = panel.grab().toImage()
    panel.labels.hide()
    without = panel.grab().toImage()
    panel.labels.show()
    assert light_pixels(with_labels, cell_rect(panel, 0, 0)) > 5
    assert light_pixels(without, cell_rect(panel, 0, 0)) == 0


def test_big_matrices_have_no_labels_and_an_empty_one_clears_them(qtbot) -> None:
    panel = ConfusionMatrixPanel()
    qtbot.addWidget(panel)
    k = CELL_TEXT_LIMIT + 1
    panel.set_matrix(matrix(k), [f"c{i}" for i in range(k)])
    assert panel.labels.texts() == []
    panel.set_matrix(matrix(3), ["a", "b", "c"])
    assert len(panel.labels.texts()) == 9
    panel.clear_matrix()
    assert panel.labels.texts() == [] and panel.labels.boundingRect().isEmpty()


def test_an_exported_png_scales_the_cell_labels_with_the_image(qtbot, tmp_path) -> None:
    """The export is 2× the screen size: the labels are 2× as big, as the axis labels are."""
    panel = ConfusionMatrixPanel()
    qtbot.addWidget(panel)
    panel.resize(520, 460)
    panel.show()
    qtbot.waitExposed(panel)
    panel.set_matrix(matrix(10), [str(i) for i in range(10)])
    screen = panel.grab().toImage()
    on_screen = light_pixels(screen, cell_rect(panel, 0, 0))
    image = QImage(str(panel.export_png(tmp_path / "cm.png")))
    scale = image.width() / screen.width()
    assert scale >= 2.0 and on_screen > 5
    exported = light_pixels(image, cell_rect(panel, 0, 0, scale))   # the same cell in the export
    assert exported > 2.5 * on_screen      # ~scale² as many text pixels, not as few as on screen
