"""The command line's evaluation figures, drawn offscreen by the Evaluate page's own views.

``render_figures(evaluation) -> {file name: PNG bytes}`` (``main.py`` hands it to ``python main.py
eval``, whose core must not import Qt): ``confusion.png`` (classification), ``misclassified.png``
(image data: the most confident mistakes), ``decision_boundary.png`` (two input features),
``regression.png`` and ``residuals.png`` (regression). Each is the view the app shows
(:mod:`ui.eval_views`), laid out at a fixed size in the light theme and exported as the app exports
it (PNG at :data:`ui.plots.EXPORT_SCALE` × that size). Without a running QApplication one is made
on Qt's offscreen platform, so no screen is needed and no window ever appears.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["render_figures", "FIGURE_SIZES"]

#: Logical size (pixels, before the export scale) each figure is laid out at.
FIGURE_SIZES = {"confusion": (640, 580), "boundary": (620, 600), "regression": (640, 480)}
#: Tiles in misclassified.png (the most confident mistakes), in this many columns.
GALLERY_TILES, GALLERY_COLUMNS = 48, 8


def _application() -> Any:
    """The running QApplication, or a new one on the offscreen platform in the light theme."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"   # figures need no screen, and show no window
        app = QApplication(["afwb-eval"])
        from ui.theme import apply_theme

        apply_theme(app, "light")
    return app


def _laid_out(widget: Any, size: tuple[int, int], app: Any) -> None:
    from PySide6.QtCore import Qt

    widget.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)
    widget.resize(*size)
    widget.show()
    for _ in range(3):
        app.processEvents()


def _png(view: Any, folder: Path, name: str) -> bytes:
    path = folder / name
    view.export_png(path)
    return path.read_bytes()


def render_figures(ev: Any) -> dict[str, bytes]:
    """The PNG figures of evaluation ``ev`` (see the module docstring), as bytes by file name."""
    from ui.eval_views import BoundaryPlot, ConfusionMatrixPanel, MistakesGallery, RegressionView

    app = _application()
    out: dict[str, bytes] = {}
    made: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="afwb-figures-") as tmp:
        folder = Path(tmp)
        try:
            if ev.task == "classification":
                confusion = ConfusionMatrixPanel()
                made.append(confusion)
                confusion.set_matrix(ev.confusion, ev.class_names)
                _laid_out(confusion, FIGURE_SIZES["confusion"], app)
                out["confusion.png"] = _png(confusion, folder, "confusion.png")
                if ev.image and ev.mistake_images is not None and len(ev.mistake_images):
                    gallery = MistakesGallery()
                    made.append(gallery)
                    gallery.set_mistakes(ev)
                    _laid_out(gallery, (900, 600), app)
                    wrong = int(ev.mistake_index.shape[0])
                    shown = min(GALLERY_TILES, len(gallery.entries))
                    title = (f"{ev.run_name} [{ev.checkpoint.file}]: {wrong:,} of {ev.n:,} {ev.split} samples "
                             f"misclassified; the {shown} most confident mistakes (true → predicted, confidence)")
                    image = gallery.render_image(columns=GALLERY_COLUMNS, count=GALLERY_TILES, title=title)
                    path = folder / "misclassified.png"
                    if not image.save(str(path)):
                        raise OSError(f"cannot write {path}")
                    out["misclassified.png"] = path.read_bytes()
            else:
                view = RegressionView()
                made.append(view)
                view.set_predictions(ev.true, ev.predicted, ev.class_names[0] if ev.class_names else "")
                # side by side as on the page: the scatter gets 3/5 of the width, the histogram 2/5
                _laid_out(view, (FIGURE_SIZES["regression"][0] * 5 // 3, FIGURE_SIZES["regression"][1]), app)
                out["regression.png"] = _png(view.scatter, folder, "regression.png")
                out["residuals.png"] = _png(view.residuals, folder, "residuals.png")
            if ev.boundary is not None:
                plot = BoundaryPlot()
                made.append(plot)
                _laid_out(plot, FIGURE_SIZES["boundary"], app)
                plot.set_boundary(ev.boundary, ev.points, ev.run_name, ev.class_names)
                app.processEvents()
                out["decision_boundary.png"] = _png(plot, folder, "decision_boundary.png")
        finally:
            from PySide6.QtCore import QCoreApplication, QEvent

            for widget in made:
                widget.close()
                widget.deleteLater()
            QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    return out
