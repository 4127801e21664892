"""Where a failed run's fix lies: the preset field its hint names, as a target the window can show.

A run's failure (:class:`workbench.events.Failed`) carries a message and a hint in words, e.g.
"lower train.lr (now 1e+06), set train.grad_clip (e.g. 1.0) …" or, for a missing data set,
"… put the files in /data/mnist". :func:`fix_for` reads the first preset field the hint names
(``section.field``), or recognises a data problem, and returns a :class:`Fix`: what the failure
banner's button says and which inspector field it opens. Nothing here imports Qt.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Fix", "fix_for", "FIELD_LABELS"]

#: Labels of the preset fields a hint may name (as the inspector shows them).
FIELD_LABELS: dict[str, str] = {
    "task.dataset": "data set", "task.batch_size": "batch size", "task.val_split": "validation split",
    "task.loss": "loss", "task.normalize": "input normalisation", "task.limit_train": "training samples",
    "train.epochs": "epochs", "train.optimizer": "optimiser", "train.lr": "learning rate",
    "train.weight_decay": "weight decay", "train.momentum": "momentum", "train.scheduler": "LR schedule",
    "train.grad_clip": "gradient clip", "train.device": "device", "train.precision": "precision",
    "train.seed": "seed", "monitor.every_steps": "probe interval", "monitor.checkpoints": "checkpoints",
}

_FIELD = re.compile(r"\b(task|train|monitor)\.([a-z_]+)\b")
_DATA_WORDS = ("data set", "dataset", "idx file", "download", "mnist", "cifar")


@dataclass(frozen=True)
class Fix:
    """``target``: a preset field path (``train.lr``); ``label``: the button's text."""

    target: str
    label: str


def fix_for(message: str, hint: str) -> Fix | None:
    """The fix a failure's hint points to, or None when it names nothing the app can show."""
    for section, name in _FIELD.findall(hint or ""):
        path = f"{section}.{name}"
        if path in FIELD_LABELS:
            return Fix(path, f"Edit the {FIELD_LABELS[path]}")
    text = f"{message} {hint}".lower()
    if any(word in text for word in _DATA_WORDS):
        return Fix("task.dataset", "Open the data settings")
    return None
