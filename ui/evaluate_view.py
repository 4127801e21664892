"""The Evaluate workspace: what a trained run's model does, for the run selected in the runs list.

For a run on disk that has a checkpoint (the best one, or the last: the combo box), the page asks
:class:`ui.evaluation_runner.EvaluationRunner` for its evaluation (computed in a background thread
with a progress bar, cached in the run folder: reopening is instant) and shows, by task:

* classification — the confusion matrix (``confusionMatrix``, counts or row-normalised) and the
  per-class precision, recall, F1 and support (``perClassTable``); for image data the gallery of
  misclassified pictures, most confident mistakes first (``mistakesGallery``);
* regression — predicted against true values with the identity line (``regressionScatter``) and a
  histogram of the residuals, with RMSE, MAE and R² in the summary line;
* two input features — the decision boundary (``decisionBoundary``): during a run it is the live
  grid the trainer sends every few emits (:class:`workbench.boundary.BoundaryHook`), after it the
  evaluated checkpoint's; the other runs checked in the runs list are drawn beside it.

The training controller calls :meth:`EvaluateWorkspace.set_run` when the selection in the runs list
changes or a run ends, :meth:`set_compare_runs` when the checked runs change, and
:meth:`add_live_events` with each batch of a run's events. Every view exports PNG and CSV (context
menu, or the Export button).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QFrame, QHBoxLayout, QLabel, QMenu, QProgressBar, QPushButton,
                               QScrollArea, QSplitter, QStackedWidget, QToolButton, QVBoxLayout, QWidget)

from ui.eval_views import ConfusionMatrixPanel, DecisionBoundaryView, MistakesGallery, PerClassTable, RegressionView
from ui.evaluation_runner import EvaluationRunner, request_key
from ui.plots import AskPath
from ui.statusbar import ElidedLabel

__all__ = ["EvaluateWorkspace", "RunFacts", "what_it_will_show"]

#: Evaluations kept in memory (the run folders keep them all).
MEMORY_CACHE = 12


@dataclass(frozen=True)
class RunFacts:
    """What the Evaluate page knows about a run."""

    label: str
    status: str                       # "training", "finished", "stopped", "failed", …
    task: str | None = None           # "classification" / "regression" (None: not known yet)
    dataset: str | None = None
    input_features: int | None = None  # flat input size of a 1-D sample (2 → a decision boundary)
    image: bool = False                # image inputs (a gallery of mistakes)
    path: Path | None = None           # the run folder (checkpoints), None for a run not on disk
    run_id: str = ""                   # the runs list's id (live events carry it)
    class_names: tuple[str, ...] = ()

    @property
    def two_features(self) -> bool:
        return self.input_features == 2


def what_it_will_show(facts: RunFacts) -> list[str]:
    """The evaluation views that fit the run: one line each."""
    if facts.task == "regression":
        views = ["predicted against true values with the identity line, RMSE, MAE and R²",
                 "a histogram of the residuals"]
    else:
        views = ["a confusion matrix (counts and row-normalised) with per-class precision, recall and F1"]
        if facts.image:
            views.append("a gallery of the misclassified examples, most confident mistakes first")
    if facts.two_features:
        views.append("the decision boundary over the two input features, with the data on top")
    return views


class EvaluateWorkspace(QWidget):
    """``evaluateWorkspace``: the evaluation of the selected run (see the module docstring)."""

    EMPTY = ("Select a run in the Runs list to evaluate it. Evaluate shows what a trained model does "
             "with the validation data, not only its loss and accuracy.")

    def __init__(self, parent: QWidget | None = None, *, ask_path: AskPath | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("evaluateWorkspace")
        self.facts: RunFacts | None = None
        self.compare: list[RunFacts] = []
        self.which = "best"
        self.evaluation: Any = None                      # the shown run's Evaluation
        self.data_root: Callable[[], Path | None] = lambda: None
        self._memory: dict[str, Any] = {}                 # request key → Evaluation
        self._errors: dict[str, str] = {}                 # request key → why it failed
        self._live: dict[str, dict[str, Any]] = {}        # run id → {"boundary": …, "points": …}
        self._live_dirty = False
        self._key: str | None = None                     # the shown run's request key
        self.runner = EvaluationRunner(self)
        self.runner.progress.connect(self._on_progress)
        self.runner.finished.connect(self._on_finished)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(self._on_cancelled)

        # ---------------------------------------------------------------- header
        self.title = ElidedLabel("", self)              # a long run name ends in "…" (whole in the tooltip)
        self.title.setObjectName("evaluateTitle")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.title.setFont(font)
        self.checkpoint_combo = QComboBox(self)
        self.checkpoint_combo.setObjectName("evaluateCheckpoint")
        self.checkpoint_combo.addItem("best checkpoint", "best")
        self.checkpoint_combo.addItem("last checkpoint", "last")
        self.checkpoint_combo.setToolTip("Evaluate the checkpoint with the best validation figure, or the one "
                                         "saved last")
        self.checkpoint_combo.currentIndexChanged.connect(
            lambda i: self.set_checkpoint(self.checkpoint_combo.itemData(i)))
        self.recompute_button = QPushButton("Recompute", self)
        self.recompute_button.setObjectName("evaluateRecompute")
        self.recompute_button.setToolTip("Evaluate the checkpoint again instead of using the cached figures")
        self.recompute_button.clicked.connect(self.recompute)
        self.export_button = QToolButton(self)
        self.export_button.setObjectName("evaluateExport")
        self.export_button.setText("Export")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.export_menu = QMenu(self.export_button)
        self.export_menu.aboutToShow.connect(self._fill_export_menu)
        self.export_button.setMenu(self.export_menu)
        self.export_button.setToolTip("Save a view as a PNG image (twice its size on screen) or its data as CSV")
        top = QHBoxLayout()
        top.setSpacing(6)
        top.addWidget(self.title, 1)
        top.addWidget(self.checkpoint_combo)
        top.addWidget(self.recompute_button)
        top.addWidget(self.export_button)

        self.summary = QLabel(self)
        self.summary.setObjectName("evaluateSummary")
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.progress = QProgressBar(self)
        self.progress.setObjectName("evaluateProgress")
        self.progress.setMaximumWidth(260)
        self.progress.setTextVisible(True)
        self.progress.hide()
        second = QHBoxLayout()
        second.setSpacing(6)
        second.addWidget(self.summary, 1)
        second.addWidget(self.progress)

        # ---------------------------------------------------------------- views
        self.confusion = ConfusionMatrixPanel(self)
        self.per_class = PerClassTable(self)
        self.gallery = MistakesGallery(self)
        self.boundary = DecisionBoundaryView(self)
        self.regression = RegressionView(self)
        self.regression_scatter = self.regression.scatter
        self.right = QSplitter(Qt.Orientation.Vertical, self)
        self.right.setObjectName("evaluateRight")
        self.right.setChildrenCollapsible(False)
        self.right.addWidget(self.confusion)
        self.right.addWidget(self.per_class)
        self.right.addWidget(self.regression)
        self.right.setStretchFactor(0, 3)
        self.right.setStretchFactor(1, 2)
        self.left = QSplitter(Qt.Orientation.Vertical, self)
        self.left.setObjectName("evaluateLeft")
        self.left.setChildrenCollapsible(False)
        self.left.addWidget(self.boundary)
        self.left.addWidget(self.gallery)
        self.views = QSplitter(Qt.Orientation.Horizontal, self)
        self.views.setObjectName("evaluateViews")
        self.views.setChildrenCollapsible(False)
        self.views.addWidget(self.left)
        self.views.addWidget(self.right)
        self.views.setStretchFactor(0, 3)
        self.views.setStretchFactor(1, 2)

        self.body = QLabel(self)
        self.body.setObjectName("evaluateEmptyState")
        self.body.setTextFormat(Qt.TextFormat.PlainText)
        self.body.setWordWrap(True)
        self.body.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.body.setMargin(4)
        # in a scroll area: a narrow window scrolls the views instead of growing past the screen
        self.views_scroll = QScrollArea(self)
        self.views_scroll.setObjectName("evaluateScroll")
        self.views_scroll.setWidgetResizable(True)
        self.views_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.views_scroll.setWidget(self.views)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.body)
        self.stack.addWidget(self.views_scroll)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 10, 12, 8)
        lay.setSpacing(6)
        lay.addLayout(top)
        lay.addLayout(second)
        lay.addWidget(self.stack, 1)
        self.set_ask_path(ask_path)
        self.set_run(None)

    # ------------------------------------------------------------------ configuration
    def exportables(self) -> list[Any]:
        """Every view that exports (PNG and CSV), in the Export menu's order."""
        out: list[Any] = [self.confusion, self.per_class, self.gallery.exporter, self.regression.scatter,
                          self.regression.residuals]
        return out + list(self.boundary.plots)

    def set_ask_path(self, ask_path: AskPath | None) -> None:
        """Route every view's export file prompt through ``ask_path`` (tests inject one)."""
        self.ask_path = ask_path
        self.boundary.ask_path = ask_path
        self.boundary.export_dir = self._export_folder
        for view in self.exportables():
            view.ask_path = ask_path
            view.export_dir = self._export_folder

    def _export_folder(self) -> Path | None:
        return self.facts.path if self.facts is not None else None

    # ------------------------------------------------------------------ what to show
    def set_run(self, facts: RunFacts | None) -> None:
        """Show the run ``facts`` describes (None: no run selected)."""
        previous, self.facts = self.facts, facts
        if facts is None:
            self._key = None
            self.title.setText("Evaluate")
            self._message(self.EMPTY)
            self._set_controls(False)
            return
        self.title.setText(f"Evaluate: {facts.label}")
        if previous is not None and previous.run_id != facts.run_id and self._key is not None:
            self.runner.cancel(self._key)   # the user moved on: do not finish the old one first
        if previous is not None and previous.run_id == facts.run_id and previous.status != facts.status \
                and facts.path is not None:
            for which in ("best", "last"):  # the run went on (or ended): its checkpoints changed
                self._memory.pop(request_key(facts.path, which), None)
                self._errors.pop(request_key(facts.path, which), None)
        self._refresh()

    def set_compare_runs(self, runs: list[RunFacts]) -> None:
        """The runs checked in the runs list: those with two input features are drawn beside the
        selected run's decision boundary."""
        self.compare = [f for f in runs if f.two_features]
        for f in self.compare:
            if f.path is not None and f.status not in ("training", "running") and f.run_id not in self._live:
                key = request_key(f.path, self.which)
                if key not in self._memory and key not in self._errors:
                    self.runner.request(f.path, self.which, data_root=self.data_root())
        self._draw_boundaries()

    def set_checkpoint(self, which: str) -> None:
        """Evaluate the ``best`` or the ``last`` checkpoint."""
        if which not in ("best", "last") or which == self.which:
            return
        self.which = which
        i = self.checkpoint_combo.findData(which)
        if self.checkpoint_combo.currentIndex() != i:
            self.checkpoint_combo.setCurrentIndex(i)
        self._refresh()
        self.set_compare_runs(self.compare)

    def recompute(self) -> None:
        """Evaluate the shown run's checkpoint again (the cache is replaced)."""
        f = self.facts
        if f is None or f.path is None or self._is_live(f):
            return
        key = request_key(f.path, self.which)
        self._memory.pop(key, None)
        self._errors.pop(key, None)
        self._key = key
        self.runner.request(f.path, self.which, data_root=self.data_root(), use_cache=False)
        self._show_waiting()

    @staticmethod
    def _is_live(f: RunFacts) -> bool:
        return f.status in ("training", "running")

    def _set_controls(self, evaluable: bool) -> None:
        self.checkpoint_combo.setEnabled(evaluable)
        self.recompute_button.setEnabled(evaluable)
        self.export_button.setEnabled(self.stack.currentWidget() is self.views_scroll)

    def _message(self, text: str) -> None:
        self.body.setText(text)
        self.stack.setCurrentWidget(self.body)
        self.summary.setText("")
        self.progress.hide()
        self.evaluation = None
        self.export_button.setEnabled(False)

    def _refresh(self) -> None:
        f = self.facts
        if f is None:
            return
        if self._is_live(f):
            self._key = None
            self._set_controls(False)
            if f.two_features:
                self._show_live()
            else:
                views = "\n".join(f"  • {v}" for v in what_it_will_show(f))
                self._message(f"This run is training. Once it has ended (or been stopped), this page shows, from "
                              f"its best checkpoint:\n{views}\n\nMeanwhile its curves are in the Train workspace "
                              "(Ctrl+2).")
            return
        if f.path is None:
            self._key = None
            self._set_controls(False)
            self._message("This run is not saved on disk, so there is no checkpoint to evaluate.")
            return
        self._set_controls(True)
        key = request_key(f.path, self.which)
        self._key = key
        if key in self._memory:
            self._show(self._memory[key])
        elif key in self._errors:
            self._message(self._errors[key])
        else:
            self.runner.request(f.path, self.which, data_root=self.data_root())
            self._show_waiting()

    def _show_waiting(self) -> None:
        self.evaluation = None
        f = self.facts
        views = "\n".join(f"  • {v}" for v in what_it_will_show(f)) if f is not None else ""
        self.body.setText(f"Evaluating the {self.which} checkpoint on the validation data…\n\nThis page will show:\n"
                          f"{views}")
        self.stack.setCurrentWidget(self.body)
        self.summary.setText("")
        self.progress.setRange(0, 0)
        self.progress.setFormat("loading…")
        self.progress.show()
        self.export_button.setEnabled(False)

    # ------------------------------------------------------------------ results
    def _on_progress(self, key: str, stage: str, done: int, total: int) -> None:
        if key != self._key:
            return
        self.progress.show()
        if total <= 0:
            self.progress.setRange(0, 0)
            self.progress.setFormat(f"{stage}…")
        else:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
            self.progress.setFormat(f"{stage} %p%")

    def _on_finished(self, key: str, ev: Any, from_cache: bool) -> None:
        self._memory[key] = ev
        self._errors.pop(key, None)
        while len(self._memory) > MEMORY_CACHE:
            self._memory.pop(next(iter(self._memory)))
        if key == self._key:
            self._show(ev)
        elif any(f.path is not None and request_key(f.path, self.which) == key for f in self.compare):
            self._draw_boundaries()

    def _on_failed(self, key: str, message: str) -> None:
        self._errors[key] = f"This run cannot be evaluated: {message}."
        if key == self._key:
            self._message(self._errors[key])

    def _on_cancelled(self, key: str) -> None:
        if key == self._key and self.facts is not None and not self.runner.closed:   # cancelled, then asked again
            self._refresh()

    def _show(self, ev: Any) -> None:
        """Fill the views with evaluation ``ev`` of the selected run."""
        self.evaluation = ev
        self.progress.hide()
        classification = ev.task == "classification"
        two = ev.boundary is not None
        self.confusion.setVisible(classification)
        self.per_class.setVisible(classification)
        self.regression.setVisible(not classification)
        self.gallery.setVisible(classification and ev.image)
        self.boundary.setVisible(two)
        self.left.setVisible(two or (classification and ev.image))
        if classification:
            self.confusion.set_matrix(ev.confusion, ev.class_names)
            self.per_class.set_figures(ev.class_names, ev.precision, ev.recall, ev.f1, ev.support, ev.accuracy,
                                       ev.macro_f1)
            if ev.image:
                self.gallery.set_mistakes(ev)
            wrong = int(ev.mistake_index.shape[0]) if ev.mistake_index is not None else 0
            figures = (f"accuracy {100 * ev.accuracy:.2f}% · macro-F1 {ev.macro_f1:.4f} · {wrong:,} misclassified"
                       f" · loss {ev.loss:.4g}")
        else:
            target = ev.class_names[0] if ev.class_names else ""
            self.regression.set_predictions(ev.true, ev.predicted, target)
            figures = f"RMSE {ev.rmse:.4g} · MAE {ev.mae:.4g} · R² {ev.r2:.4f} (target units) · loss {ev.loss:.4g}"
        ck = ev.checkpoint
        fallback = " (no best checkpoint: the last one)" if ck.which == "best" and ck.file != "best.pt" else ""
        self.summary.setText(f"{ck.file}{fallback}, epoch {ck.epoch}, step {ck.step:,} · {ev.split} set: {ev.n:,} "
                             f"samples · {figures}")
        self._draw_boundaries()
        self._split(ev.task, two, ev.image)
        self.stack.setCurrentWidget(self.views_scroll)
        self.export_button.setEnabled(True)

    def _split(self, task: str, two: bool, image: bool) -> None:
        """Share the width between the picture views (left) and the figures (right) for this kind of
        run; kept while the user evaluates runs of the same kind (their own dragging is respected)."""
        kind = (task, two, image)
        if getattr(self, "_split_kind", None) == kind:
            return
        self._split_kind = kind
        width = max(self.views.width(), 600)
        left = 0.47 if image else 0.55 if two else 0.0
        if left:
            self.views.setSizes([int(width * left), width - int(width * left)])
        height = max(self.right.height(), 300)
        if task == "classification":   # the table as tall as its rows (at most 42 %), the matrix the rest
            t = self.per_class
            table = t.horizontalHeader().sizeHint().height() + t.verticalHeader().length() + 2 * t.frameWidth() + 2
            table = min(int(height * 0.42), table)
            self.right.setSizes([height - table, table, 0])

    # ------------------------------------------------------------------ decision boundaries
    def add_live_events(self, run_id: str, events: list) -> None:
        """A batch of a run's events: keep its latest decision boundary (and its points)."""
        from workbench.boundary import BoundaryPoints, DecisionBoundary

        changed = False
        for event in events:
            if isinstance(event, DecisionBoundary):
                self._live.setdefault(run_id, {})["boundary"] = event
                changed = True
            elif isinstance(event, BoundaryPoints):
                self._live.setdefault(run_id, {})["points"] = event
                changed = True
        if not changed:
            return
        shown = {f.run_id for f in self.compare} | ({self.facts.run_id} if self.facts is not None else set())
        if run_id in shown:
            if self.isVisible():
                self._refresh_live()
            else:
                self._live_dirty = True

    def live_boundary(self, run_id: str) -> Any:
        """The latest live decision boundary of run ``run_id`` (None before its first)."""
        return self._live.get(run_id, {}).get("boundary")

    def _refresh_live(self) -> None:
        self._live_dirty = False
        f = self.facts
        if f is not None and self._is_live(f) and f.two_features:
            self._show_live()
        else:
            self._draw_boundaries()

    def _show_live(self) -> None:
        f = self.facts
        assert f is not None
        live = self._live.get(f.run_id, {})
        if live.get("boundary") is None:
            self._message("This run is training: its decision boundary appears here at its first report "
                          "(the model's prediction over the plane of its two input features, updated every few "
                          "reports). The confusion matrix and per-class figures follow from its best checkpoint "
                          "once it has ended.")
            return
        b = live["boundary"]
        self.confusion.hide()
        self.per_class.hide()
        self.regression.hide()
        self.gallery.hide()
        self.boundary.show()
        self.left.show()
        self.evaluation = None
        self.summary.setText(f"Live: the model at step {b.step:,} (epoch {b.epoch + 1}). The confusion matrix and "
                             "per-class figures follow from the best checkpoint once the run has ended.")
        self.progress.hide()
        self._draw_boundaries()
        self.stack.setCurrentWidget(self.views_scroll)
        self.export_button.setEnabled(True)

    def _boundary_of(self, f: RunFacts) -> tuple[Any, Any, tuple[str, ...]] | None:
        live = self._live.get(f.run_id, {})
        if self._is_live(f) and live.get("boundary") is not None:
            return live["boundary"], live.get("points"), f.class_names
        if f.path is not None:
            ev = self._memory.get(request_key(f.path, self.which))
            if ev is not None and ev.boundary is not None:
                return ev.boundary, ev.points, ev.class_names
        if live.get("boundary") is not None:      # ended this session, not evaluated (yet)
            return live["boundary"], live.get("points"), f.class_names
        return None

    def _draw_boundaries(self) -> None:
        items = []
        f = self.facts
        if f is not None and f.two_features:
            found = self._boundary_of(f)
            if found is not None:
                items.append((f.run_id or f.label, f.label, *found))
        for other in self.compare:
            if f is not None and other.run_id == f.run_id:
                continue
            found = self._boundary_of(other)
            if found is not None:
                items.append((other.run_id or other.label, other.label, *found))
        self.boundary.set_boundaries(items)
        self.set_ask_path(self.ask_path)      # new plots get the prompts

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self._live_dirty:
            self._refresh_live()

    # ------------------------------------------------------------------ export
    def _fill_export_menu(self) -> None:
        menu = self.export_menu
        menu.clear()
        names = {id(self.confusion): "Confusion matrix", id(self.per_class): "Per-class figures",
                 id(self.gallery.exporter): "Mistakes gallery", id(self.regression.scatter): "Predicted vs true",
                 id(self.regression.residuals): "Residual histogram"}
        visible = {id(self.confusion): self.confusion.isVisible(), id(self.per_class): self.per_class.isVisible(),
                   id(self.gallery.exporter): self.gallery.isVisible(),
                   id(self.regression.scatter): self.regression.isVisible(),
                   id(self.regression.residuals): self.regression.isVisible()}
        for view in self.exportables():
            name = names.get(id(view))
            shown = visible.get(id(view))
            if name is None:     # a decision boundary plot
                name = f"Decision boundary: {view.label}"
                shown = view.isVisible()
            if not shown:
                continue
            if view is not self.per_class:
                menu.addAction(f"{name} as PNG…", view.export_png_dialog)
            menu.addAction(f"{name} data as CSV…", view.export_csv_dialog)

    # ------------------------------------------------------------------ closing
    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Stop the background evaluation for good (window closing); True when its thread has ended."""
        return self.runner.close(timeout_ms)
