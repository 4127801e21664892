"""The preset's ``reproduction`` section: what a paper published and how to re-run it (data, never code).

The section's dataclasses and how they are read from and written to a preset's JSON;
:mod:`workbench.protocol` describes the section's keys and applies a protocol to a preset. This
module imports nothing of the project but :mod:`workbench.problems`, so the preset format
(:mod:`workbench.spec`) can read the section without an import cycle.
"""
from __future__ import annotations

import copy
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from .problems import Problem
from .problems import did_you_mean as _did_you_mean

__all__ = [
    "BUDGETS", "METRICS", "STATISTICS", "GRID_REPORTS", "SourceRef", "GridAxis", "PublishedFigure",
    "PublishedCurve", "BudgetPlan", "Reproduction", "reproduction_from_dict", "reproduction_to_dict",
]

BUDGETS = ("smoke", "cpu", "full")
#: metric → (unit, default tolerance in that unit, higher is better)
METRICS: dict[str, tuple[str, float, bool]] = {
    "accuracy": ("%", 0.5, True),
    "w": ("", 0.5, False),
    "depth": ("layers", 0.0, False),
}
STATISTICS = ("best", "final", "at_epoch")
GRID_REPORTS = ("best", "each")


@dataclass
class SourceRef:
    """Where the published figure comes from: a repository, the file that ran it and its commit."""

    repository: str = ""
    file: str = ""
    commit: str = ""


@dataclass
class GridAxis:
    """One axis the source reported over: a dotted preset path and its values; ``report`` is
    ``best`` (the best over the values was published) or ``each`` (a figure per value)."""

    path: str
    values: list[Any] = field(default_factory=list)
    report: str = "best"


@dataclass
class PublishedFigure:
    """One published number. Units: ``accuracy`` in per cent, ``w`` dimensionless, ``depth`` in layers."""

    metric: str = "accuracy"
    value: float = 0.0
    unit: str | None = None
    statistic: str = "best"
    at: dict[str, Any] = field(default_factory=dict)
    epoch: int | None = None
    depth_layer: int | None = None
    tolerance: float | None = None
    verified: bool = True
    note: str = ""

    def __post_init__(self) -> None:
        if self.unit is None:  # the metric's own unit when none is written
            self.unit = METRICS.get(self.metric, ("",))[0]

    @property
    def band(self) -> float:
        """The tolerance in the figure's unit (the metric's default when none is written)."""
        if self.tolerance is not None:
            return float(self.tolerance)
        return METRICS.get(self.metric, ("", 0.0, True))[1]


@dataclass
class PublishedCurve:
    """A published curve (unit as the metric): ``values[i]`` is the figure after epoch (``x`` =
    ``"epoch"``) or optimiser step (``x`` = ``"step"``) (i + 1)·``every``; ``at`` pins it to a grid point."""

    label: str = ""
    metric: str = "accuracy"
    values: list[float] = field(default_factory=list)
    x: str = "epoch"
    every: int = 1
    at: dict[str, Any] = field(default_factory=dict)

    def points(self) -> list[tuple[int, float]]:
        """``(epoch or step, value)`` pairs."""
        return [((i + 1) * int(self.every), float(v)) for i, v in enumerate(self.values)]


@dataclass
class BudgetPlan:
    """How one budget runs the protocol: ``overrides`` (dotted path → value), a narrower ``grid``
    (path → values), other ``seeds``, or ``skip`` (why it is not run) and ``estimate`` (time)."""

    overrides: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    seeds: list[int] | None = None
    skip: str = ""
    estimate: str = ""


@dataclass
class Reproduction:
    """The protocol of one published experiment (see the module docstring)."""

    source: SourceRef = field(default_factory=SourceRef)
    published: list[PublishedFigure] = field(default_factory=list)
    curves: list[PublishedCurve] = field(default_factory=list)
    grid: list[GridAxis] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    figure: str = ""
    note: str = ""
    budgets: dict[str, BudgetPlan] = field(default_factory=dict)


_REPRO_KEYS = tuple(f.name for f in fields(Reproduction))


# ------------------------------------------------------------------------------------ dict -> spec
def _object(data: Any, path: str, problems: list[Problem], example: str) -> dict[str, Any] | None:
    if not isinstance(data, dict):
        problems.append(Problem(path, f"{path.rsplit('.', 1)[-1]} must be an object, got {type(data).__name__}",
                                f"write {example}"))
        return None
    return data


def _list(data: Any, path: str, problems: list[Problem], example: str) -> list[Any] | None:
    if not isinstance(data, list):
        problems.append(Problem(path, f"{path.rsplit('.', 1)[-1]} must be a list, got {type(data).__name__}",
                                f"write {example}"))
        return None
    return data


def _simple(cls: type, data: Any, path: str, problems: list[Problem], example: str) -> Any:
    """A flat dataclass from an object: unknown keys reported, ints in float fields made floats."""
    obj = _object(data, path, problems, example)
    if obj is None:
        return None
    known = [f.name for f in fields(cls)]
    floats = {f.name for f in fields(cls) if f.type in ("float", "float | None")}
    kwargs: dict[str, Any] = {}
    ok = True
    for key, value in obj.items():
        if key not in known:
            problems.append(Problem(f"{path}.{key}", f"unknown key '{key}'", _did_you_mean(key, known)))
            ok = False
            continue
        if key in floats and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        kwargs[key] = copy.deepcopy(value)
    missing = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING
               and f.name not in kwargs]
    for name in missing:
        problems.append(Problem(f"{path}.{name}", f"'{name}' is required", f"add \"{name}\": ..."))
        ok = False
    return cls(**kwargs) if ok else None


def reproduction_from_dict(data: Any, problems: list[Problem], path: str = "reproduction") -> Reproduction | None:
    """Parse the ``reproduction`` section, appending structural problems (wrong containers, unknown
    keys) to ``problems``; values are checked by :func:`check_reproduction`."""
    obj = _object(data, path, problems, '"reproduction": {"published": [...], "budgets": {...}}')
    if obj is None:
        return None
    before = len(problems)
    for key in obj:
        if key not in _REPRO_KEYS:
            problems.append(Problem(f"{path}.{key}", f"unknown key '{key}' in reproduction",
                                    _did_you_mean(key, _REPRO_KEYS)))
    out = Reproduction()
    if "source" in obj:
        out.source = _simple(SourceRef, obj["source"], f"{path}.source", problems,
                             '"source": {"repository": ..., "file": ..., "commit": ...}') or SourceRef()
    for name, cls, example in (("published", PublishedFigure, '{"metric": "accuracy", "value": 99.5}'),
                               ("curves", PublishedCurve, '{"label": ..., "values": [...]}'),
                               ("grid", GridAxis, '{"path": "train.lr", "values": [0.05, 0.1]}')):
        items = _list(obj.get(name, []), f"{path}.{name}", problems, f'"{name}": [{example}, ...]')
        parsed = []
        for i, item in enumerate(items or []):
            value = _simple(cls, item, f"{path}.{name}[{i}]", problems, example)
            if value is not None:
                parsed.append(value)
        setattr(out, name, parsed)
    seeds = _list(obj.get("seeds", []), f"{path}.seeds", problems, '"seeds": [0, 1, 2]')
    out.seeds = copy.deepcopy(seeds) if seeds is not None else []
    for key in ("figure", "note"):
        value = obj.get(key, "")
        if not isinstance(value, str):
            problems.append(Problem(f"{path}.{key}", f"{key} must be a string, got {type(value).__name__}",
                                    f'write "{key}": "..."'))
        else:
            setattr(out, key, value)
    budgets = _object(obj.get("budgets", {}), f"{path}.budgets", problems, '"budgets": {"smoke": {...}, ...}')
    for name, plan in (budgets or {}).items():
        parsed_plan = _simple(BudgetPlan, plan, f"{path}.budgets.{name}", problems,
                              '{"overrides": {"train.epochs": 1}}')
        if parsed_plan is not None:
            out.budgets[str(name)] = parsed_plan
    return out if len(problems) == before else None


# ------------------------------------------------------------------------------------ spec -> dict
def _compact(obj: Any) -> dict[str, Any]:
    """The fields of a dataclass that differ from their defaults (required fields always)."""
    out: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            out[f.name] = copy.deepcopy(value)
            continue
        if value != default:
            out[f.name] = copy.deepcopy(value)
    return out


def reproduction_to_dict(r: Reproduction) -> dict[str, Any]:
    """The JSON object of ``r`` in a stable key order; optional fields left at their default are
    omitted (except a figure's metric, value, unit and statistic), so the text stays short."""
    out: dict[str, Any] = {}
    source = _compact(r.source)
    if source:
        out["source"] = source
    if r.published:
        out["published"] = []
        for figure in r.published:
            item = {"metric": figure.metric, "value": figure.value, "unit": figure.unit, "statistic": figure.statistic}
            item.update({k: v for k, v in _compact(figure).items() if k not in item})
            out["published"].append(item)
    if r.curves:
        out["curves"] = []
        for c in r.curves:
            item = {"label": c.label, "metric": c.metric}
            item.update({k: v for k, v in _compact(c).items() if k not in ("label", "metric", "values")})
            item["values"] = copy.deepcopy(c.values)
            out["curves"].append(item)
    if r.grid:
        out["grid"] = [{"path": a.path, "values": copy.deepcopy(a.values), "report": a.report} for a in r.grid]
    if r.seeds:
        out["seeds"] = copy.deepcopy(r.seeds)
    if r.figure:
        out["figure"] = r.figure
    if r.note:
        out["note"] = r.note
    out["budgets"] = {name: _compact(plan) for name, plan in r.budgets.items()}
    return out
