"""An evaluation as CSV text and files: ``confusion.csv``, ``per_class.csv``, ``predictions.csv``.

The command line's ``eval`` writes these files; the Evaluate page's "Export data as CSV…" writes
the same texts. Every file is written atomically (:func:`workbench.fileio.atomic_write_text`).

* ``confusion.csv`` — one row per true class: ``true \\ predicted`` then the counts per predicted class;
* ``per_class.csv`` — ``class, precision, recall, f1, support`` per class, then ``macro avg``
  (the means; support = all samples);
* ``predictions.csv`` — classification: ``index, true, predicted, confidence`` (class names; the
  predicted class's probability); regression: ``index, true, predicted, residual`` per target
  (target units; ``true_<name>``… for several targets). ``index`` is the sample's position in the
  evaluated split.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Iterable

__all__ = ["confusion_csv", "per_class_csv", "predictions_csv", "write_tables", "csv_text"]


def csv_text(rows: Iterable[Iterable[Any]]) -> str:
    """Rows as CSV text (``\\n`` line ends, quoted where needed)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow(list(row))
    return buffer.getvalue()


def _g(value: float) -> str:
    return f"{float(value):.6g}"


def confusion_csv(ev: Any, normalized: bool = False) -> str:
    """The confusion matrix (counts, or each row divided by its total) as CSV text."""
    names = list(ev.class_names)
    matrix = ev.normalized_confusion() if normalized else ev.confusion
    rows: list[list[Any]] = [["true \\ predicted", *names]]
    for k, name in enumerate(names):
        rows.append([name, *[(_g(v) if normalized else int(v)) for v in matrix[k]]])
    return csv_text(rows)


def per_class_csv(ev: Any) -> str:
    rows: list[list[Any]] = [["class", "precision", "recall", "f1", "support"]]
    for k, name in enumerate(ev.class_names):
        rows.append([name, _g(ev.precision[k]), _g(ev.recall[k]), _g(ev.f1[k]), int(ev.support[k])])
    rows.append(["macro avg", _g(ev.precision.mean()), _g(ev.recall.mean()), _g(ev.macro_f1), int(ev.n)])
    return csv_text(rows)


def predictions_csv(ev: Any) -> str:
    if ev.task == "classification":
        names = list(ev.class_names)
        rows: list[list[Any]] = [["index", "true", "predicted", "confidence"]]
        for i, (t, p, c) in enumerate(zip(ev.true.tolist(), ev.predicted.tolist(), ev.confidence.tolist())):
            rows.append([i, names[t], names[p], _g(c)])
        return csv_text(rows)
    true = ev.true.reshape(ev.n, -1)
    pred = ev.predicted.reshape(ev.n, -1)
    targets = true.shape[1]
    if targets == 1:
        header = ["index", "true", "predicted", "residual"]
    else:
        names = list(ev.class_names) if len(ev.class_names) == targets else [str(j) for j in range(targets)]
        header = ["index"] + [f"{what}_{n}" for n in names for what in ("true", "predicted", "residual")]
    rows = [header]
    for i in range(ev.n):
        row: list[Any] = [i]
        for j in range(targets):
            row += [_g(true[i, j]), _g(pred[i, j]), _g(pred[i, j] - true[i, j])]
        rows.append(row)
    return csv_text(rows)


def write_tables(ev: Any, out: Path | str) -> list[Path]:
    """Write the CSV files of ``ev`` into folder ``out`` (created); returns their paths."""
    from .fileio import atomic_write_text

    out = Path(out)
    files: dict[str, str] = {"predictions.csv": predictions_csv(ev)}
    if ev.task == "classification":
        files = {"confusion.csv": confusion_csv(ev), "per_class.csv": per_class_csv(ev), **files}
    written = []
    for name, text in files.items():
        path = out / name
        atomic_write_text(path, text)
        written.append(path)
    return written
