"""Your own table: a CSV file, one sample per row, one column the target.

Options: ``path`` (the file), ``target`` (the column to predict; empty = the last column),
``features`` (the input columns; empty = every other column), ``task`` (``auto``: classification
when the target holds text or at most :data:`MAX_AUTO_CLASSES` different whole numbers, else
regression). The delimiter (``,`` ``;`` tab ``|``) and whether the first row is a header are
detected; a file without a header has columns ``col1``, ``col2``, …

The file is read once per change (cached by path, size and modification time), so the editor can
ask for its shape on every keystroke. Every problem names the file and, where there is one, the
line and column: a missing file, a missing target column (with the closest names), a non-numeric
or empty feature cell, rows of different lengths, a target with a single class.
"""
from __future__ import annotations

import csv
import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from workbench.datasets.base import DataError, Described, LoadRequest, RawData, resolve_path, stat_data_file
from workbench.params import ParamSpec
from workbench.problems import did_you_mean

__all__ = ["OPTIONS", "MAX_AUTO_CLASSES", "describe_csv", "load_csv", "read_table", "Table"]

#: ``task: auto`` reads a target of whole numbers with at most this many different values as classes.
MAX_AUTO_CLASSES = 20
_DELIMITERS = ",;\t|"
_SNIFF_BYTES = 64 * 1024

OPTIONS = (
    ParamSpec("path", "path", "", "the CSV file: one sample per row (relative to the preset file's folder, or "
              "absolute)", label="File", file_filter="CSV files (*.csv *.tsv *.txt);;All files (*)"),
    ParamSpec("target", "str", "", "the column to predict, by its header name (col1, col2, … when the file has no "
              "header); empty = the last column", label="Target column"),
    ParamSpec("features", "list", [], "the input columns by name; empty = every column but the target",
              label="Feature columns", item=ParamSpec("feature", "str", "", "a column name")),
    ParamSpec("task", "choice", "auto", f"auto: classification when the target holds text or at most "
              f"{MAX_AUTO_CLASSES} different whole numbers, else regression", label="Task",
              choices=("auto", "classification", "regression")),
)


@dataclass(frozen=True)
class Column:
    """One column: its cells as numbers (None when a cell is not a number: then ``bad`` is the
    first such cell as (line, text)) and as text."""

    name: str
    text: tuple[str, ...]
    numbers: np.ndarray | None
    bad: tuple[int, str] | None


@dataclass(frozen=True)
class Table:
    """A parsed CSV: the columns (each as text and, where every cell is one, as numbers), the
    file's line number of every data row, the delimiter and whether a header row was found."""

    path: Path
    columns: tuple[Column, ...]
    lines: tuple[int, ...]
    delimiter: str
    header: bool

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        return self.columns[self.names.index(name)]


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _sniff(sample: str, path: Path) -> str:
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:  # one column, or too little to tell
        return "\t" if path.suffix.lower() == ".tsv" else ","


def _has_header(rows: list[list[str]]) -> bool:
    """The first row is a header when a column holds numbers below it but not in it, or when no
    column holds numbers at all and its cells are all different (names)."""
    first, rest = rows[0], rows[1:51]
    if not rest:
        return all(_number(c) is None for c in first)
    numeric_below = [all(_number(r[j]) is not None for r in rest if j < len(r)) for j in range(len(first))]
    if any(numeric_below[j] and _number(first[j]) is None for j in range(len(first))):
        return True
    return not any(numeric_below) and len(set(first)) == len(first)


def read_table(path: Path | str) -> Table:
    """The CSV at ``path``, parsed (cached while its size and modification time stay the same)."""
    path = Path(path)
    st = stat_data_file(path, "CSV file", "choose a CSV file")
    return _read_table(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _read_table(name: str, size: int, mtime_ns: int) -> Table:
    path = Path(name)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            delimiter = _sniff(fh.read(_SNIFF_BYTES), path)
            fh.seek(0)
            reader = csv.reader(fh, delimiter=delimiter)
            rows: list[list[str]] = []
            lines: list[int] = []
            for row in reader:
                if not row or all(not c.strip() for c in row):
                    continue
                rows.append([c.strip() for c in row])
                lines.append(reader.line_num)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not a UTF-8 text file (byte {exc.start}: {exc.reason})",
                        "save the table as CSV (UTF-8) and choose that file", option="path") from None
    except (OSError, csv.Error) as exc:
        raise DataError(f"cannot read {path} as CSV: {exc}", "check the file", option="path") from None
    if not rows:
        raise DataError(f"{path} is empty", "choose a CSV file with a row per sample", option="path")
    header = _has_header(rows)
    width = len(rows[0])
    if header:
        names = tuple(rows[0])
        rows, lines = rows[1:], lines[1:]
        if len(set(names)) != len(names) or any(not n for n in names):
            dup = next((n for n in names if names.count(n) > 1 or not n), "")
            raise DataError(f"{path}: the header names a column {'twice' if dup else 'with an empty name'}"
                            f"{f' ({dup!r})' if dup else ''}", "give every column a different name", option="path")
    else:
        names = tuple(f"col{j + 1}" for j in range(width))
    if not rows:
        raise DataError(f"{path} holds a header but no data rows", "add a row per sample", option="path")
    for row, line in zip(rows, lines):
        if len(row) != width:
            raise DataError(f"{path} line {line} has {len(row)} cells, but the {'header' if header else 'first row'} "
                            f"has {width}", "give every row the same columns (check the delimiter and quotes)",
                            option="path")
    columns = []
    for j, name in enumerate(names):
        text = tuple(row[j] for row in rows)
        bad = None
        values = np.empty(len(text), dtype=np.float64)
        for i, cell in enumerate(text):
            v = _number(cell)
            if v is None:
                bad = (lines[i], cell)
                break
            values[i] = v
        columns.append(Column(name, text, None if bad else values, bad))
    return Table(path, tuple(columns), tuple(lines), delimiter, header)


@dataclass(frozen=True)
class _Plan:
    table: Table
    target: str
    features: tuple[str, ...]
    task: str
    names: tuple[str, ...]


def _plan(options: Mapping[str, Any], base_dir: Path | None) -> _Plan:
    """Which columns are the target and the features, the task and the class names; every user
    error as a :class:`DataError` naming the file, line and column."""
    if not str(options.get("path", "")).strip():
        raise DataError("no CSV file chosen", "set task.options.path (in the app: Task → Dataset options → "
                        "Import…)", option="path")
    table = read_table(resolve_path(options["path"], base_dir))
    path, names = table.path, table.names
    target = options.get("target") or names[-1]
    if target not in names:
        header = "" if table.header else " (the file has no header row, so its columns are col1, col2, …)"
        raise DataError(f"{path} has no column '{target}'{header}",
                        did_you_mean(target, names, known="its columns are"), option="target")
    features = tuple(options.get("features") or ())
    for name in features:
        if name not in names:
            raise DataError(f"{path} has no column '{name}' (task.options.features)",
                            did_you_mean(name, names, known="its columns are"), option="features")
    if target in features:
        raise DataError(f"'{target}' is both the target and a feature", "remove it from task.options.features",
                        option="features")
    if not features:
        features = tuple(n for n in names if n != target)
    if not features:
        raise DataError(f"{path} has only the target column '{target}', no feature to learn from",
                        "add input columns to the file", option="path")
    for name in features:
        col = table.column(name)
        if col.bad is not None:
            line, text = col.bad
            what = "is empty (a missing value)" if not text else f"holds {text!r}, not a number"
            raise DataError(f"{path} line {line}, column '{name}' {what}",
                            "every feature column must hold a number in every row: fix or remove that row, or "
                            "leave the column out of task.options.features", option="features")
    col = table.column(target)
    task = options.get("task", "auto")
    if task == "auto":
        whole = col.numbers is not None and bool(np.all(col.numbers == np.round(col.numbers)))
        few = whole and len(np.unique(col.numbers)) <= MAX_AUTO_CLASSES
        task = "classification" if col.numbers is None or few else "regression"
    if task == "regression":
        if col.numbers is None:
            line, text = col.bad  # type: ignore[misc]
            raise DataError(f"{path} line {line}: the target '{target}' holds {text!r}; regression needs numbers",
                            "set task.options.task to classification (or auto), or fix that row", option="task")
        return _Plan(table, target, features, task, (target,))
    classes = _class_names(col)
    if len(classes) < 2:
        raise DataError(f"{path}: the target '{target}' has the one value {classes[0]!r} in all {len(col.text):,} "
                        f"rows, so there is nothing to classify", "choose another target column, or set "
                        "task.options.task to regression", option="target")
    return _Plan(table, target, features, task, classes)


def _class_names(col: Column) -> tuple[str, ...]:
    """The target's values in order: numerically for numbers (``2`` before ``10``), else as text."""
    if col.numbers is not None:
        values = np.unique(col.numbers)
        return tuple(str(int(v)) if float(v).is_integer() else repr(float(v)) for v in values)
    return tuple(sorted(set(col.text)))


def describe_csv(options: Mapping[str, Any], base_dir: Path | None = None) -> Described:
    plan = _plan(options, base_dir)
    return Described(plan.task, (len(plan.features),), plan.names)  # type: ignore[arg-type]


def load_csv(req: LoadRequest) -> RawData:
    """Features as float64 (standardised later with the training split's mean and std when
    ``task.normalize``), the target as class indices or a (N, 1) float64 column."""
    plan = _plan(req.options, req.base_dir)
    table = plan.table
    x = np.stack([table.column(n).numbers for n in plan.features], axis=1)  # type: ignore[misc]
    col = table.column(plan.target)
    if plan.task == "regression":
        y = col.numbers[:, None].astype(np.float64)  # type: ignore[index]
    else:
        keys = [str(int(v)) if float(v).is_integer() else repr(float(v)) for v in col.numbers] \
            if col.numbers is not None else list(col.text)
        index = {name: i for i, name in enumerate(plan.names)}
        y = np.asarray([index[k] for k in keys], dtype=np.int64)
    notes = {"file": str(table.path), "target": plan.target, "features": list(plan.features)}
    return RawData(x, y, plan.task, plan.names, norm="features", notes=notes)  # type: ignore[arg-type]
