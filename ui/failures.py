"""Where a failed run's fix lies: the preset field its hint names, as a target the window can show.

A run's failure (:class:`workbench.events.Failed`) carries a message and a hint in words, e.g.
"lower train.lr (now 1e+06), set train.grad_clip (e.g. 1.0) …" or, for a missing data set,
"… put the files in /data/mnist". :func:`fix_for` reads the first preset field the hint names
(``section.field``), or recognises a data problem (a missing torchvision set: its Download button;
other data problems: the dataset), and returns a :class:`Fix`: what the failure banner's button
says and which inspector field it opens. Nothing here imports Qt.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Fix", "fix_for", "FIELD_LABELS"]

def _field_labels() -> dict[str, str]:
    from workbench.sections import SECTIONS, section_schema

    return {f"{section}.{name}": spec.title for section, cls in SECTIONS.items()
            for name, spec in section_schema(cls).items() if spec.kind != "object"}


#: Labels of the preset fields a hint may name: the inspector's labels, from the sections' schema.
FIELD_LABELS: dict[str, str] = _field_labels()

_FIELD = re.compile(r"\b(task|train|monitor)\.([a-z_]+)\b")
_DATA_WORDS = ("data set", "dataset", "idx file", "download", "mnist", "cifar", "csv", ".npz", "image", "import")


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
            return Fix(path, f"Edit “{FIELD_LABELS[path]}”")
    if "Task → Download" in (hint or ""):  # a missing torchvision data set (DatasetMissing)
        return Fix("task.download", "Download the data set")
    text = f"{message} {hint}".lower()
    if any(word in text for word in _DATA_WORDS):
        return Fix("task.dataset", "Open the data settings")
    return None
