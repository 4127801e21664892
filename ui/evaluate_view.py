"""The Evaluate workspace: what a trained run's model does, for the run selected in the runs list.

This page is where the evaluation views go — a confusion matrix with per-class precision, recall
and F1 and the most confident mistakes for classification, the decision boundary for data with two
input features, predicted against true values for regression (object names ``confusionMatrix``,
``mistakesGallery``, ``decisionBoundary``, ``regressionScatter``). Those views are not part of the
app yet; until they are, the page says so plainly and names what it will show for the selected run
and when, instead of drawing anything that is not computed from the run.

The training controller calls :meth:`EvaluateWorkspace.set_run` when the selection in the runs
list changes or a run ends. ``set_run`` receives plain facts (label, status, task kind, data set,
input shape, run folder), so the evaluation views can be added inside this widget without
touching the controller.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

__all__ = ["EvaluateWorkspace", "RunFacts", "what_it_will_show"]


@dataclass(frozen=True)
class RunFacts:
    """What the Evaluate page knows about the selected run."""

    label: str
    status: str                       # "training", "finished", "stopped", "failed", …
    task: str | None = None           # "classification" / "regression" (None: not known yet)
    dataset: str | None = None
    input_features: int | None = None  # flat input size (2 → a decision boundary can be drawn)
    image: bool = False                # image inputs (a gallery of mistakes)
    path: Path | None = None           # the run folder (checkpoints), None for a run not on disk


def what_it_will_show(facts: RunFacts) -> list[str]:
    """The evaluation views that fit the run: one line each."""
    if facts.task == "regression":
        views = ["predicted against true values with the identity line, RMSE, MAE and R²",
                 "a histogram of the residuals"]
    else:
        views = ["a confusion matrix (counts and row-normalised) with per-class precision, recall and F1"]
        if facts.image:
            views.append("a gallery of the misclassified examples, most confident mistakes first")
    if facts.input_features == 2:
        views.append("the decision boundary over the two input features, with the data on top")
    return views


class EvaluateWorkspace(QWidget):
    """``evaluateWorkspace``: an honest empty state until the evaluation views exist."""

    EMPTY = ("Select a run in the Runs list to evaluate it. Evaluate shows what a trained model does "
             "with the validation data, not only its loss and accuracy.")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("evaluateWorkspace")
        self.facts: RunFacts | None = None
        self.title = QLabel(self)
        self.title.setObjectName("evaluateTitle")
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.title.setFont(font)
        self.title.setWordWrap(True)
        self.body = QLabel(self)
        self.body.setObjectName("evaluateEmptyState")
        self.body.setTextFormat(Qt.TextFormat.PlainText)
        self.body.setWordWrap(True)
        self.body.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(24, 20, 24, 20)
        lay.setSpacing(10)
        lay.addWidget(self.title)
        lay.addWidget(self.body)
        lay.addStretch(1)
        self.set_run(None)

    def set_run(self, facts: RunFacts | None) -> None:
        """Show what the page will hold for ``facts``' run (None: no run selected)."""
        self.facts = facts
        if facts is None:
            self.title.setText("Evaluate")
            self.body.setText(self.EMPTY)
            return
        self.title.setText(f"Evaluate: {facts.label}")
        views = what_it_will_show(facts)
        if facts.status in ("training", "running"):
            when = "once this run has ended (or been stopped), from its best checkpoint"
        elif facts.status == "failed":
            when = "only for a run that trained: this run failed, so there is no trained model to evaluate"
        elif facts.path is None:
            when = "only for runs saved on disk (their checkpoints hold the trained model)"
        else:
            when = "from this run's best checkpoint, computed in the background"
        lines = [f"For this {facts.task or 'run'}"
                 + (f" on '{facts.dataset}'" if facts.dataset else "") + ", the page will show:"]
        lines += [f"  • {v}" for v in views]
        lines += ["", f"When: {when}.", "",
                  "These views are not in this version of the app yet: nothing is drawn here until they are "
                  "computed from the run itself. Meanwhile the run's loss and accuracy curves are in the "
                  "Train workspace (Ctrl+2) and its summary is in the Runs list."]
        self.body.setText("\n".join(lines))
