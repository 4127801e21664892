"""Reproduction protocols: what a paper published and how to re-run it, stored with its preset.

A preset may carry an optional ``"reproduction"`` section (data, never code) that
:mod:`workbench.reproduce` expands into runs::

    "reproduction": {
      "source": {"repository": "github.com/yyy32/HanNet", "file": "checkerboard_experiments/main.py",
                 "commit": "7507e20"},
      "published": [{"metric": "accuracy", "value": 99.5, "unit": "%", "statistic": "best",
                     "tolerance": 0.5}],
      "grid": [{"path": "train.lr", "values": [0.025, 0.05, 0.075, 0.1], "report": "best"}],
      "seeds": [0],
      "budgets": {"smoke": {"overrides": {"train.epochs": 1, "task.limit_train": 200}},
                  "cpu": {"estimate": "≈ 8 min on a 2-core CPU (…)"},
                  "full": {}}
    }

* ``published``: the figures the source reported. ``metric`` is ``accuracy`` (per cent of the test
  set), ``w`` (an ``InfiniteDepth`` layer's learned depth parameter, dimensionless) or ``depth``
  (its active sub-layers, ⌈w⌉); ``statistic`` says what the figure is: ``best`` (the best epoch,
  chosen on the test set), ``final`` (the last epoch) or ``at_epoch`` (the value after epoch
  ``epoch``, counted from 1). ``at`` pins a figure to one grid point (``{"task.options.k_active": 3}``);
  ``depth_layer`` picks the InfiniteDepth layer (0 = the first in the model); ``tolerance`` is the
  band, in the figure's unit, within which a measured value counts as reproduced; ``verified``
  false marks a figure nobody could check against its source.
* ``curves``: published per-epoch curves (value after epoch 1, 2, …) drawn beside the measured ones.
* ``grid``: the axes the source reported over. A run is made for every combination of values and
  seed; ``report`` ``best`` means the source reported the best over the axis (an lr grid), ``each``
  one figure per value (a sweep over ``task.options.k_active``).
* ``seeds``: the seeds to run (default: the preset's ``train.seed``); several give mean ± sd.
* ``budgets``: per budget (``smoke``, ``cpu``, ``full``) the ``overrides`` to apply (dotted paths,
  see :func:`apply_overrides`), an optional narrower ``grid`` (path → values) or ``seeds``, ``skip``
  (a reason not to run it under this budget, e.g. "needs a GPU") and ``estimate`` (the expected
  time and how it was derived).
* ``figure``: experiments sharing a figure id are overlaid in one accuracy-curve figure.

Every path given to :func:`apply_overrides` (budget overrides, grid axes, ``at``) names a field of
the preset the way :func:`workbench.spec.validate` names problems: ``train.lr``,
``task.options.k_active``, ``model.layers[3].params.depth``.
"""
from __future__ import annotations

import copy
import math
import re
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any, Mapping

from .spec import Preset, Problem, SpecError, _did_you_mean, _float_fields

__all__ = [
    "BUDGETS", "METRICS", "STATISTICS", "GRID_REPORTS", "SourceRef", "GridAxis", "PublishedFigure",
    "PublishedCurve", "BudgetPlan", "Reproduction", "reproduction_from_dict", "reproduction_to_dict",
    "check_reproduction", "protocol_problems", "apply_overrides", "set_path", "get_path", "parse_path", "Target", "published_targets",
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


# ----------------------------------------------------------------------------------- dotted paths
_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)")
_EDITABLE_TOP = ("name", "description", "reference", "task", "model", "train", "monitor")


def parse_path(path: str) -> list[str | int]:
    """``"model.layers[3].params.depth"`` → ``["model", "layers", 3, "params", "depth"]``;
    a :class:`SpecError` for anything else."""
    if not isinstance(path, str) or not path:
        raise SpecError(Problem("", f"an override path must be a dotted name like 'train.lr', got {path!r}",
                                "write e.g. \"train.lr\" or \"task.options.k_active\""))
    tokens: list[str | int] = []
    for part in path.split("."):
        match = _TOKEN.fullmatch(part)
        if match is None:
            raise SpecError(Problem(path, f"'{path}' is not a dotted preset path ('{part}' is not a name)",
                                    "write e.g. \"train.lr\", \"task.options.k_active\" or "
                                    "\"model.layers[3].params.depth\""))
        tokens.append(match.group(1))
        tokens.extend(int(i) for i in re.findall(r"\[(\d+)\]", match.group(2)))
    return tokens


def set_path(preset: Preset, path: str, value: Any) -> None:
    """Set the field ``path`` of ``preset`` to ``value`` in place (no validation of the value).

    An unknown name is a :class:`SpecError` naming the closest known ones; a dataset option that
    the preset does not write yet may be added (``task.options.k_active``); whole sections and
    the ``format`` / ``reproduction`` fields cannot be overridden."""
    tokens = parse_path(path)
    head = tokens[0]
    if head not in _EDITABLE_TOP:
        fix = _did_you_mean(str(head), _EDITABLE_TOP)
        if head in ("format", "reproduction"):
            fix = "override fields of task, model, train or monitor instead"
        raise SpecError(Problem(path, f"'{path}' cannot be overridden: '{head}' is not an editable part of a preset",
                                fix))
    obj: Any = preset
    for depth, token in enumerate(tokens):
        last = depth == len(tokens) - 1
        where = ".".join(str(t) for t in tokens[:depth]) or "the preset"
        if is_dataclass(obj):
            names = [f.name for f in fields(obj)]
            if not isinstance(token, str) or token not in names:
                raise SpecError(Problem(path, f"unknown field '{token}' in {where} (override '{path}')",
                                        _did_you_mean(str(token), names)))
            if last:
                current = getattr(obj, token)
                if is_dataclass(current) or token == "layers":
                    raise SpecError(Problem(path, f"'{path}' is a whole section; override one of its fields",
                                            "write e.g. \"train.lr\" rather than \"train\""))
                if token in _float_fields(type(obj)) and isinstance(value, int) and not isinstance(value, bool):
                    value = float(value)
                setattr(obj, token, copy.deepcopy(value))
                return
            obj = getattr(obj, token)
        elif isinstance(obj, dict):
            if not isinstance(token, str):
                raise SpecError(Problem(path, f"{where} is an object, not a list (override '{path}')",
                                        "index it by name, not by [number]"))
            if last:
                obj[token] = copy.deepcopy(value)
                return
            if token not in obj:
                raise SpecError(Problem(path, f"unknown key '{token}' in {where} (override '{path}')",
                                        _did_you_mean(token, list(obj))))
            obj = obj[token]
        elif isinstance(obj, list):
            if not isinstance(token, int):
                raise SpecError(Problem(path, f"{where} is a list: index it like {where}[0] (override '{path}')",
                                        f"write {where}[<index>]"))
            if token >= len(obj):
                raise SpecError(Problem(path, f"{where} has {len(obj)} entries; [{token}] does not exist "
                                              f"(override '{path}')", f"use an index below {len(obj)}"))
            if last:
                obj[token] = copy.deepcopy(value)
                return
            obj = obj[token]
        else:
            raise SpecError(Problem(path, f"{where} is a value ({obj!r}), it has no field '{token}' "
                                          f"(override '{path}')", f"override '{where}' itself"))


_MISSING_VALUE = object()


def get_path(preset: Preset, path: str, default: Any = _MISSING_VALUE) -> Any:
    """The value at dotted ``path`` of ``preset`` (``default`` when it is absent, else SpecError)."""
    obj: Any = preset
    for token in parse_path(path):
        if is_dataclass(obj) and isinstance(token, str) and hasattr(obj, token):
            obj = getattr(obj, token)
        elif isinstance(obj, dict) and token in obj:
            obj = obj[token]
        elif isinstance(obj, list) and isinstance(token, int) and token < len(obj):
            obj = obj[token]
        elif default is not _MISSING_VALUE:
            return default
        else:
            raise SpecError(Problem(path, f"the preset has no '{path}'", "check the path"))
    return obj


@dataclass(frozen=True)
class Target:
    """A published figure to draw beside a live run: ``metric`` ``accuracy`` (value in %) or ``w``
    (an InfiniteDepth layer's learned w; ``depth_layer`` 0 = the first), a short label naming the
    statistic and the source's repository (it fits on a small plot), and the full ``source``."""

    metric: str
    value: float
    label: str
    depth_layer: int | None = None
    source: str = ""


def published_targets(preset: Preset) -> list[Target]:
    """The published figures that apply to ``preset`` as it stands: accuracy figures (best or final)
    and learned-w figures whose grid point (``at``) matches the preset's own values — e.g. the w of
    k_active = 3 for the parity preset at k_active = 3. Empty without a protocol."""
    r = preset.reproduction
    if r is None:
        return []
    src = r.source
    full = " ".join(x for x in (src.repository, src.file) if x) + (f" @ {src.commit}" if src.commit else "")
    repository = src.repository.split("github.com/", 1)[-1]
    where = (repository if len(repository) <= 30 else repository[:29] + "…") or "the source"
    out = []
    for fig in r.published:
        if fig.statistic not in ("best", "final") or fig.metric not in ("accuracy", "w"):
            continue
        if any(get_path(preset, path, None) != value for path, value in fig.at.items()):
            continue
        if fig.metric == "accuracy":
            label = f"published {fig.statistic} {fig.value:g} % · {where}"
        else:
            layer = f" layer {fig.depth_layer + 1}" if fig.depth_layer is not None else ""
            label = f"published w{layer} {fig.value:g} · {where}"
        if not fig.verified:
            label += " (unverified)"
        out.append(Target(fig.metric, float(fig.value), label, fig.depth_layer, full or "unknown"))
    return out


def _override_text(overrides: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in overrides.items())


def apply_overrides(preset: Preset, overrides: Mapping[str, Any], *, where: str = "override") -> Preset:
    """A copy of ``preset`` with every dotted ``path: value`` of ``overrides`` set, validated.

    Raises :class:`SpecError` for an unknown path (with the closest names) or for any problem the
    result has (each problem keeps its JSON path and names the overrides that led to it)."""
    out = copy.deepcopy(preset)
    for path, value in overrides.items():
        try:
            set_path(out, path, value)
        except SpecError as exc:
            raise SpecError([Problem(q.path, f"{where}: {q.message}", q.fix) for q in exc.problems]) from None
    from .spec import validate

    problems = validate(out)
    if problems:
        text = _override_text(overrides)
        raise SpecError([Problem(q.path, f"{q.message} (with {where} {text})", q.fix) for q in problems])
    return out


# ----------------------------------------------------------------------------------- value checks
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _json_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool)) or _is_number(value)


class _OverrideChecker:
    """Checks one override at a time on a copy of the preset: the section values only (no shapes),
    reporting only problems the preset itself does not already have."""

    def __init__(self, preset: Preset) -> None:
        from .spec import _check_sections

        self.preset = copy.copy(preset)
        self.preset.reproduction = None
        baseline: list[Problem] = []
        _check_sections(self.preset, baseline)
        self.known = {(q.path, q.message) for q in baseline}

    def __call__(self, path: str, value: Any, where: str, problems: list[Problem]) -> None:
        from .spec import _check_sections

        trial = copy.deepcopy(self.preset)
        try:
            set_path(trial, path, value)
        except SpecError as exc:
            problems.extend(Problem(where, q.message, q.fix) for q in exc.problems)
            return
        found: list[Problem] = []
        _check_sections(trial, found)
        problems.extend(Problem(where, f"{path} = {value!r}: {q.message}", q.fix)
                        for q in found if (q.path, q.message) not in self.known)


def protocol_problems(p: Preset) -> list[Problem]:
    """Every problem of the preset and of its reproduction protocol (the preset's own
    :func:`~workbench.spec.validate` leaves the protocol alone: an edited copy of a seed preset still
    trains even when the protocol's overrides no longer fit it)."""
    from .spec import validate

    problems = validate(p)
    check_reproduction(p, problems)
    return problems


def check_reproduction(p: Preset, problems: list[Problem]) -> None:
    """Append the value problems of ``p.reproduction`` (metrics, statistics, paths, budgets) to
    ``problems``: every path must be one :func:`set_path` accepts and every value one the preset
    field accepts."""
    r = p.reproduction
    if r is None:
        return
    base = "reproduction"
    _check_override = _OverrideChecker(p)
    axes = {a.path for a in r.grid}
    each_axes = {a.path for a in r.grid if a.report == "each"}
    for i, axis in enumerate(r.grid):
        where = f"{base}.grid[{i}]"
        if axis.report not in GRID_REPORTS:
            problems.append(Problem(f"{where}.report", f"report must be one of {', '.join(GRID_REPORTS)}, "
                                                       f"got {axis.report!r}",
                                    "best: the source published the best over the values; each: one per value"))
        if not isinstance(axis.values, list) or not axis.values:
            problems.append(Problem(f"{where}.values", "a grid axis needs a non-empty list of values",
                                    'write "values": [0.05, 0.1]'))
            continue
        if len(set(map(repr, axis.values))) != len(axis.values):
            problems.append(Problem(f"{where}.values", "the values repeat", "list each value once"))
        for j, value in enumerate(axis.values):
            _check_override(axis.path, value, f"{where}.values[{j}]", problems)
    if len(axes) != len(r.grid):
        problems.append(Problem(f"{base}.grid", "two grid axes set the same path", "merge them into one axis"))
    if not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**32 for s in r.seeds):
        problems.append(Problem(f"{base}.seeds", f"seeds must be whole numbers ≥ 0, got {r.seeds!r}",
                                'write e.g. "seeds": [0, 1, 2]'))
    for i, fig in enumerate(r.published):
        where = f"{base}.published[{i}]"
        if fig.metric not in METRICS:
            problems.append(Problem(f"{where}.metric", f"unknown metric {fig.metric!r}", _did_you_mean(fig.metric, METRICS)))
        elif fig.unit != METRICS[fig.metric][0]:
            problems.append(Problem(f"{where}.unit", f"{fig.metric} is measured in {METRICS[fig.metric][0]!r}, "
                                                     f"not {fig.unit!r}", f'write "unit": "{METRICS[fig.metric][0]}"'))
        if not _is_number(fig.value):
            problems.append(Problem(f"{where}.value", f"value must be a finite number, got {fig.value!r}",
                                    "write the published number"))
        if fig.statistic not in STATISTICS:
            problems.append(Problem(f"{where}.statistic", f"unknown statistic {fig.statistic!r}",
                                    "best (best epoch on the test set), final (last epoch) or at_epoch"))
        elif fig.metric in ("w", "depth") and fig.statistic != "final":
            problems.append(Problem(f"{where}.statistic", f"{fig.metric} is read at the end of a run",
                                    'write "statistic": "final"'))
        if fig.statistic == "at_epoch":
            if not (isinstance(fig.epoch, int) and not isinstance(fig.epoch, bool) and fig.epoch >= 1):
                problems.append(Problem(f"{where}.epoch", "an at_epoch figure needs the epoch (counted from 1)",
                                        'write e.g. "epoch": 10'))
        elif fig.epoch is not None:
            problems.append(Problem(f"{where}.epoch", "epoch only goes with \"statistic\": \"at_epoch\"",
                                    "remove it or change the statistic"))
        if fig.tolerance is not None and not (_is_number(fig.tolerance) and fig.tolerance >= 0):
            problems.append(Problem(f"{where}.tolerance", f"tolerance must be a number ≥ 0, got {fig.tolerance!r}",
                                    "write the band, in the figure's unit, within which it counts as reproduced"))
        if fig.depth_layer is not None and fig.metric not in ("w", "depth"):
            problems.append(Problem(f"{where}.depth_layer", "depth_layer only goes with the w and depth metrics",
                                    "remove it"))
        elif fig.depth_layer is not None and not (isinstance(fig.depth_layer, int) and fig.depth_layer >= 0):
            problems.append(Problem(f"{where}.depth_layer", "depth_layer must be an index ≥ 0 "
                                                            "(0 = the first InfiniteDepth layer)", 'write "depth_layer": 0'))
        if not isinstance(fig.at, dict):
            problems.append(Problem(f"{where}.at", "at must be an object (grid path → value)",
                                    'write e.g. "at": {"task.options.k_active": 3}'))
        else:
            for path, value in fig.at.items():
                if path not in each_axes:
                    problems.append(Problem(f"{where}.at", f"'{path}' is not a grid axis reported per value",
                                            "add it to \"grid\" with \"report\": \"each\", or remove it from at"))
                elif not any(value == v for a in r.grid if a.path == path for v in a.values):
                    problems.append(Problem(f"{where}.at", f"{path} = {value!r} is not one of the grid's values",
                                            "use a value from the grid axis"))
        if not isinstance(fig.verified, bool) or not isinstance(fig.note, str):
            problems.append(Problem(where, "verified must be true/false and note a string", "fix their types"))
    for i, curve in enumerate(r.curves):
        where = f"{base}.curves[{i}]"
        if curve.metric not in METRICS:
            problems.append(Problem(f"{where}.metric", f"unknown metric {curve.metric!r}",
                                    _did_you_mean(curve.metric, METRICS)))
        if not isinstance(curve.values, list) or not curve.values or not all(_is_number(v) for v in curve.values):
            problems.append(Problem(f"{where}.values", "a curve needs a non-empty list of numbers (one per epoch)",
                                    'write "values": [95.3, 97.5, ...]'))
        if curve.x not in ("epoch", "step"):
            problems.append(Problem(f"{where}.x", f"x must be 'epoch' or 'step', got {curve.x!r}",
                                    'write "x": "epoch"'))
        if not (isinstance(curve.every, int) and not isinstance(curve.every, bool) and curve.every >= 1):
            problems.append(Problem(f"{where}.every", f"every must be a whole number ≥ 1, got {curve.every!r}",
                                    "write the spacing of the values in epochs or steps"))
        if not isinstance(curve.at, dict) or any(path not in each_axes for path in curve.at):
            problems.append(Problem(f"{where}.at", "at must name grid axes reported per value",
                                    'write e.g. "at": {"task.options.k_active": 3}'))
    for name, plan in r.budgets.items():
        where = f"{base}.budgets.{name}"
        if name not in BUDGETS:
            problems.append(Problem(where, f"unknown budget '{name}'", _did_you_mean(name, BUDGETS)))
            continue
        if not isinstance(plan.overrides, dict):
            problems.append(Problem(f"{where}.overrides", "overrides must be an object (path → value)",
                                    'write e.g. "overrides": {"train.epochs": 1}'))
        else:
            for path, value in plan.overrides.items():
                if path in axes:
                    problems.append(Problem(f"{where}.overrides", f"'{path}' is a grid axis",
                                            f'narrow it with "grid": {{"{path}": [...]}} instead'))
                elif path == "train.seed":
                    problems.append(Problem(f"{where}.overrides", "the seed comes from the protocol's seeds",
                                            'write "seeds": [...] in the budget instead'))
                elif not _json_scalar(value) and not isinstance(value, list):
                    problems.append(Problem(f"{where}.overrides", f"{path}: an override is a number, string, "
                                                                  f"boolean or list", "write a plain JSON value"))
                else:
                    _check_override(path, value, f"{where}.overrides", problems)
        if not isinstance(plan.grid, dict):
            problems.append(Problem(f"{where}.grid", "a budget's grid must be an object (axis path → values)",
                                    'write e.g. "grid": {"train.lr": [0.1]}'))
        else:
            for path, values in plan.grid.items():
                if path not in axes:
                    problems.append(Problem(f"{where}.grid", f"'{path}' is not one of the protocol's grid axes",
                                            _did_you_mean(path, sorted(axes)) if axes else "remove it"))
                elif not isinstance(values, list) or not values:
                    problems.append(Problem(f"{where}.grid", f"{path}: give a non-empty list of values",
                                            'write e.g. [0.1]'))
                else:
                    for value in values:
                        _check_override(path, value, f"{where}.grid", problems)
        if plan.seeds is not None and (not isinstance(plan.seeds, list) or not plan.seeds or not all(
                isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in plan.seeds)):
            problems.append(Problem(f"{where}.seeds", f"seeds must be a non-empty list of whole numbers ≥ 0, "
                                                      f"got {plan.seeds!r}", 'write e.g. "seeds": [0]'))
        for key in ("skip", "estimate"):
            if not isinstance(getattr(plan, key), str):
                problems.append(Problem(f"{where}.{key}", f"{key} must be a string", f'write "{key}": "..."'))
