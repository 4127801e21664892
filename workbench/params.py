"""The one way a user-settable value is declared: :class:`ParamSpec` (type, default, range, choices,
help, label) and the checks derived from it.

Layer parameters (:mod:`workbench.registry`), the preset's task/train/monitor fields
(:mod:`workbench.sections`), the optimiser and augmentation options and the dataset options
(:mod:`workbench.datasets`) are all declared with it; validation, the choice lists, the command
line's overrides and the inspector's forms are derived from those declarations. Imports nothing of
the project but :mod:`workbench.problems`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from workbench.problems import Problem, shown_value, unknown_key_problem

__all__ = ["Kind", "ParamSpec", "check_values", "defaults"]

#: ``int``/``float``/``bool``/``str`` values; ``choice`` one of ``choices``; ``path`` a file or
#: folder name (relative to the preset file's folder); ``list`` a list of ``item`` values;
#: ``object`` a JSON object whose keys are declared elsewhere (the optimiser's options, …).
Kind = Literal["int", "float", "bool", "choice", "str", "path", "list", "object"]


@dataclass(frozen=True)
class ParamSpec:
    """A typed user-settable value.

    ``placeholders``: strings allowed in place of a number (``"same"``, ``"classes"``).
    ``label``: the form's label (default: the name). ``nullable``: ``null`` (None) is allowed and
    means "not set". ``pattern``: a string matching this regular expression is accepted besides the
    choices (``cuda:N`` for the device), ``pattern_text`` says it in words. ``item``: a list's item
    spec; ``increasing``: its items must increase. ``exclusive``: ``min``/``max`` themselves are
    out of range. ``log``/``step``: how a number field steps (log: 1-2-5 per decade). ``folder``,
    ``file_filter``: what a ``path`` names (a folder; the file chooser's filter).
    """

    name: str
    kind: Kind
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()
    placeholders: tuple[str, ...] = ()
    label: str = ""
    nullable: bool = False
    pattern: str = ""
    pattern_text: str = ""
    item: ParamSpec | None = None
    increasing: bool = False
    exclusive: bool = False
    log: bool = False
    step: float | None = None
    folder: bool = False
    file_filter: str = ""

    @property
    def title(self) -> str:
        """What a form calls this value: ``label``, else the name."""
        return self.label or self.name

    def check(self, value: Any) -> tuple[str, str] | None:
        """``None`` if ``value`` is acceptable, else ``(message, fix)``."""
        if value is None and self.nullable:
            return None
        if isinstance(value, str) and value in self.placeholders:
            return None
        shown = shown_value(value)
        kind = self.kind
        allowed = f' or {" / ".join(repr(p) for p in self.placeholders)}' if self.placeholders else ""
        if kind == "bool":
            if not isinstance(value, bool):
                return f"{self.name} must be true or false, got {shown}", f"set {self.name} to true or false"
            return None
        if kind == "choice":
            if self.pattern and isinstance(value, str) and re.fullmatch(self.pattern, value):
                return None
            if value not in self.choices or isinstance(value, bool) != any(isinstance(c, bool) for c in self.choices):
                opts = ", ".join(repr(c) for c in self.choices)
                if self.pattern_text:
                    opts += f" or {self.pattern_text}"
                return f"{self.name} must be one of {opts}, got {shown}", f"pick one of {opts}"
            return None
        if kind == "str":
            if not isinstance(value, str):
                return f"{self.name} must be a string, got {shown}", f'write "{self.name}": "..."'
            return None
        if kind == "path":
            if not isinstance(value, str) or not value.strip():
                what = "folder" if self.folder else "file"
                return (f"{self.name} must name a {what}, got {shown}",
                        f'write "{self.name}": "<{what} path>" (relative to the preset file, or absolute)')
            return None
        if kind == "object":
            if not isinstance(value, Mapping):
                return (f"{self.name} must be an object, got {type(value).__name__}",
                        f'write "{self.name}": {{}} or {{"key": value}}')
            return None
        if kind == "list":
            return self._check_list(value, shown)
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    return (f"{self.name} must be a whole number, got {shown}",
                            f"write {int(value)} without the decimal point")
                return (f"{self.name} must be a whole number{allowed}, got {shown}",
                        f"set {self.name} to an integer{self.range_text()}")
        elif kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return (f"{self.name} must be a number{allowed}, got {shown}",
                        f"set {self.name} to a number{self.range_text()}")
            try:
                finite = math.isfinite(value)  # an int beyond float's range raises here
            except OverflowError:  # compared exactly with the range below, when there is one
                if self.max is None:
                    return (f"{self.name} = {shown} is too large for a number",
                            f"set {self.name} to a number{self.range_text()}")
                finite = True
            if not finite:
                return f"{self.name} must be finite, got {shown}", f"set {self.name} to a finite number"
        if not self.in_range(value):
            return (f"{self.name} = {shown} is out of range{self.range_text()}",
                    f"set {self.name}{self.range_text(short=True)}")
        return None

    def in_range(self, value: Any) -> bool:
        """Whether a number lies in [min, max] (or (min, max) when ``exclusive``)."""
        lo, hi = self.min, self.max
        if self.exclusive:
            return (lo is None or value > lo) and (hi is None or value < hi)
        return (lo is None or value >= lo) and (hi is None or value <= hi)

    def _check_list(self, value: Any, shown: str) -> tuple[str, str] | None:
        example = f'"{self.name}": {shown_value(self.default)}'
        if not isinstance(value, list):
            return f"{self.name} must be a list, got {shown}", f"write e.g. {example}"
        if self.item is not None:
            for i, item in enumerate(value):
                bad = self.item.check(item)
                if bad is not None:
                    return f"{self.name}[{i}]: {bad[0]}", bad[1]
        if self.increasing and list(value) != sorted(value):
            return f"{self.name} must be in increasing order, got {shown}", "sort them"
        return None

    def range_text(self, short: bool = False) -> str:
        """`` between 1 and 64``, `` ≥ 0``, `` ≤ 1`` (empty without a range)."""
        lo, hi = self.min, self.max
        if lo is None and hi is None:
            return ""

        def fmt(v: float) -> str:
            return f"{int(v)}" if self.kind == "int" else f"{v:g}"

        if self.exclusive and lo is not None and hi is not None:
            return f" strictly between {fmt(lo)} and {fmt(hi)}"
        if lo is not None and hi is not None:
            return f" between {fmt(lo)} and {fmt(hi)}"
        if lo is not None:
            return f" {'>' if self.exclusive else '≥'} {fmt(lo)}"
        return f" {'<' if self.exclusive else '≤'} {fmt(hi)}"


def check_values(path: str, values: Any, schema: Mapping[str, ParamSpec], *, owner: str,
                 where: str) -> list[Problem]:
    """Problems with an ``{option: value}`` object checked against ``{option: ParamSpec}`` (unknown
    keys get the closest known key, values their type/range/choice problem)."""
    if not isinstance(values, Mapping):
        return [Problem(path, f"must be an object, got {type(values).__name__}", 'write {} or {"name": value}')]
    problems: list[Problem] = []
    for key, value in values.items():
        if key not in schema:
            problems.append(unknown_key_problem(f"{path}.{key}", key, list(schema), kind="option", owner=owner,
                                                where=where))
            continue
        bad = schema[key].check(value)
        if bad is not None:
            problems.append(Problem(f"{path}.{key}", bad[0], bad[1]))
    return problems


def defaults(schema: Mapping[str, ParamSpec], given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``{key: value}`` for every key of ``schema``: the given value, else the declared default."""
    given = given or {}
    return {key: given.get(key, spec.default) for key, spec in schema.items()}
