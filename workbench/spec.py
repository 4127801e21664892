"""The preset document: typed dataclasses, JSON load/save, validation, shape inference, model build.

A preset is one JSON object (``"format": "afwb.preset/1"``) with the sections ``task``, ``model``,
``train`` and ``monitor``. Nothing in a preset is ever evaluated: no code, no pickle. Loading checks
the *structure* (objects where objects belong, no unknown keys, every layer has a ``type``) and raises
:class:`SpecError`; :func:`validate` checks the *values* (types, ranges, choices, known layer types,
shapes) and returns every problem at once, each with a JSON path and a fix, so an editor can show a
half-finished network. :func:`build_model` refuses an invalid preset with a :class:`SpecError`.

This module imports neither torch nor the registry at import time; both are imported lazily by the
functions that need them.
"""
from __future__ import annotations

import copy
import difflib
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

__all__ = [
    "FORMAT", "FORMAT_VERSION", "Problem", "SpecError", "LayerSpec", "ModelSpec", "TaskSpec", "TrainSpec",
    "MonitorSpec", "Preset", "LayerShape", "ShapeReport", "SpecModel", "upgrade", "preset_from_dict",
    "preset_to_dict", "loads_preset", "dumps_preset", "load_preset", "save_preset", "validate",
    "infer_shapes", "build_model", "layer_names", "layer_name", "layer_path",
]

FORMAT_VERSION = 1
FORMAT = f"afwb.preset/{FORMAT_VERSION}"
_FORMAT_RE = re.compile(r"^afwb\.preset/(\d+)$")

OPTIMIZERS = ("sgd", "adam", "adamw", "adadelta")
SCHEDULERS = ("none", "step", "cosine", "onecycle", "exp_curve")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16")
LOSSES = ("auto", "cross_entropy", "mse")
AUGMENTS = ("crop", "hflip", "affine", "jitter")


# --------------------------------------------------------------------------------------------- errors
@dataclass(frozen=True)
class Problem:
    """One thing wrong with a preset: where (a JSON path such as ``model.layers[3].params.routes``),
    what (``message``) and how to fix it (``fix``, may be empty)."""

    path: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        tail = f"; {self.fix}" if self.fix else ""
        return f"{where}{self.message}{tail}"


class SpecError(ValueError):
    """A user-caused problem with a preset; ``problems`` lists every one, ``str(e)`` one line each."""

    def __init__(self, problems: Problem | str | Sequence[Problem], fix: str = "") -> None:
        if isinstance(problems, str):
            problems = [Problem("", problems, fix)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems) or "invalid preset")


def _closest(word: str, options: Sequence[str], n: int = 3) -> list[str]:
    return difflib.get_close_matches(str(word), list(options), n=n, cutoff=0.5)


def _did_you_mean(word: str, options: Sequence[str]) -> str:
    close = _closest(word, options)
    if close:
        return "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
    return "known: " + ", ".join(options)


# ---------------------------------------------------------------------------------------- dataclasses
@dataclass
class LayerSpec:
    """One layer: its registry ``type``, its parameters (JSON values, may hold ``"same"``/``"classes"``),
    a ``body`` of sub-layers for containers (``InfiniteDepth``, ``Residual``), and ``trainable``
    (False freezes the layer's parameters: requires_grad False)."""

    type: str
    params: dict[str, Any] = field(default_factory=dict)
    body: list[LayerSpec] | None = None
    trainable: bool = True


@dataclass
class ModelSpec:
    """The network: layers applied in order to one sample of the dataset's input shape."""

    layers: list[LayerSpec] = field(default_factory=list)


@dataclass
class TaskSpec:
    """What to learn: the dataset and how it is fed (batch size in samples, validation fraction)."""

    dataset: str = "digits"
    batch_size: int = 128
    val_split: float = 0.1
    loss: str = "auto"
    normalize: bool = True
    augment: list[str] = field(default_factory=list)
    limit_train: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainSpec:
    """How to learn: optimiser, learning rate and its schedule, epochs, seed, device, precision.

    ``milestones`` are fractions of the whole run (step scheduler); ``peak_epoch`` shapes the
    ``exp_curve`` schedule lr·e·(x/p)·exp(−x/p) with x = epoch + 1; ``grad_clip`` 0 means off.
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    epochs: int = 10
    scheduler: str = "none"
    milestones: list[float] = field(default_factory=lambda: [0.5, 0.75])
    gamma: float = 0.1
    peak_epoch: float = 5.0
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    grad_clip: float = 0.0


@dataclass
class MonitorSpec:
    """Probe cadence (every ``every_steps`` optimiser steps) and whether checkpoints are written."""

    every_steps: int = 10
    checkpoints: bool = True


@dataclass
class Preset:
    """A whole preset document."""

    name: str = "Untitled"
    description: str = ""
    reference: str = ""
    task: TaskSpec = field(default_factory=TaskSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    monitor: MonitorSpec = field(default_factory=MonitorSpec)
    format: str = FORMAT


_SECTIONS: dict[str, type] = {"task": TaskSpec, "train": TrainSpec, "monitor": MonitorSpec}
_TOP_KEYS = ("format", "name", "description", "reference", "task", "model", "train", "monitor")
_LAYER_KEYS = ("type", "params", "body", "trainable")


# ------------------------------------------------------------------------------------------- upgrade
def upgrade(document: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``document`` migrated to the current format; the one place older versions are handled.

    A missing ``format`` is read as the current one (hand-written files). A newer version is refused:
    it was written by a newer Activation-Free Workbench and may mean things this one cannot know.
    """
    doc = dict(document)
    fmt = doc.get("format", FORMAT)
    if not isinstance(fmt, str):
        raise SpecError(Problem("format", f"format must be a string like '{FORMAT}', got {fmt!r}",
                                f'set "format": "{FORMAT}"'))
    match = _FORMAT_RE.match(fmt)
    if match is None:
        raise SpecError(Problem("format", f"'{fmt}' is not an Activation-Free Workbench preset format",
                                f'set "format": "{FORMAT}"'))
    version = int(match.group(1))
    if version > FORMAT_VERSION:
        raise SpecError(Problem(
            "format", f"this preset ('{fmt}') was written by a newer Activation-Free Workbench; "
                      f"this version reads up to '{FORMAT}'",
            "upgrade Activation-Free Workbench (pip install -U activation-free-workbench)"))
    if version < 1:
        raise SpecError(Problem("format", f"unknown preset version '{fmt}'", f'set "format": "{FORMAT}"'))
    # version 1 is current: future migrations go here, oldest first (if version == 1: ...; version = 2).
    doc["format"] = FORMAT
    return doc


# ------------------------------------------------------------------------------------- dict <-> spec
def _plain(value: Any) -> Any:
    """A deep copy of a JSON value (dicts, lists, scalars)."""
    return copy.deepcopy(value)


def _float_fields(cls: type) -> set[str]:
    return {f.name for f in fields(cls) if f.type in ("float", float)}


def _section_from_dict(name: str, cls: type, data: Any, problems: list[Problem]) -> Any:
    if data is None:
        return cls()
    if not isinstance(data, dict):
        problems.append(Problem(name, f"'{name}' must be an object, got {type(data).__name__}",
                                f'write "{name}": {{...}} or leave it out for the defaults'))
        return cls()
    known = [f.name for f in fields(cls)]
    floats = _float_fields(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            problems.append(Problem(f"{name}.{key}", f"unknown key '{key}' in {name}",
                                    _did_you_mean(key, known)))
            continue
        if key in floats and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        kwargs[key] = _plain(value)
    return cls(**kwargs)


def _layer_from_dict(data: Any, path: str, problems: list[Problem]) -> LayerSpec | None:
    if not isinstance(data, dict):
        problems.append(Problem(path, f"a layer must be an object like {{\"type\": \"Linear\"}}, "
                                      f"got {type(data).__name__}", "write the layer as a JSON object"))
        return None
    ok = True
    for key in data:
        if key not in _LAYER_KEYS:
            problems.append(Problem(f"{path}.{key}", f"unknown layer key '{key}'",
                                    _did_you_mean(key, _LAYER_KEYS) + " (layer parameters go under \"params\")"))
            ok = False
    type_name = data.get("type")
    if not isinstance(type_name, str) or not type_name:
        problems.append(Problem(f"{path}.type", "every layer needs a \"type\" string",
                                'add "type": "<layer name>", e.g. "Linear"'))
        ok = False
    params = data.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        problems.append(Problem(f"{path}.params", f"params must be an object, got {type(params).__name__}",
                                'write "params": {"name": value, ...}'))
        ok = False
    trainable = data.get("trainable", True)
    if not isinstance(trainable, bool):
        problems.append(Problem(f"{path}.trainable", f"trainable must be true or false, got {trainable!r}",
                                'write "trainable": true or false'))
        ok = False
    body_data = data.get("body")
    body: list[LayerSpec] | None = None
    if body_data is not None:
        if not isinstance(body_data, list):
            problems.append(Problem(f"{path}.body", f"body must be a list of layers, got {type(body_data).__name__}",
                                    'write "body": [{"type": ...}, ...]'))
            ok = False
        else:
            body = []
            for i, item in enumerate(body_data):
                child = _layer_from_dict(item, f"{path}.body[{i}]", problems)
                if child is None:
                    ok = False
                else:
                    body.append(child)
    if not ok:
        return None
    return LayerSpec(type=type_name, params=_plain(params), body=body, trainable=trainable)


def preset_from_dict(d: Mapping[str, Any]) -> Preset:
    """Build a :class:`Preset` from a parsed JSON document.

    Checks structure only and raises :class:`SpecError` listing every structural problem (unknown
    keys with the closest known key, sections that are not objects, layers without a type, a newer
    format). Values are kept as written (ints in float fields become floats) for :func:`validate`.
    """
    if not isinstance(d, Mapping):
        raise SpecError(Problem("", f"a preset must be a JSON object, got {type(d).__name__}",
                                'start the file with {"format": "' + FORMAT + '", ...}'))
    doc = upgrade(d)
    problems: list[Problem] = []
    for key in doc:
        if key not in _TOP_KEYS:
            problems.append(Problem(key, f"unknown key '{key}'", _did_you_mean(key, _TOP_KEYS)))
    strings: dict[str, str] = {}
    for key, default in (("name", "Untitled"), ("description", ""), ("reference", "")):
        value = doc.get(key, default)
        if not isinstance(value, str):
            problems.append(Problem(key, f"{key} must be a string, got {type(value).__name__}",
                                    f'write "{key}": "..."'))
            value = default
        strings[key] = value
    sections = {name: _section_from_dict(name, cls, doc.get(name), problems) for name, cls in _SECTIONS.items()}
    model_data = doc.get("model")
    layers: list[LayerSpec] = []
    if model_data is None:
        model_data = {"layers": []}
    if not isinstance(model_data, dict):
        problems.append(Problem("model", f"model must be an object, got {type(model_data).__name__}",
                                'write "model": {"layers": [...]}'))
    else:
        for key in model_data:
            if key != "layers":
                problems.append(Problem(f"model.{key}", f"unknown key '{key}' in model",
                                        _did_you_mean(key, ["layers"])))
        raw_layers = model_data.get("layers", [])
        if not isinstance(raw_layers, list):
            problems.append(Problem("model.layers", f"layers must be a list, got {type(raw_layers).__name__}",
                                    'write "layers": [{"type": ...}, ...]'))
        else:
            for i, item in enumerate(raw_layers):
                layer = _layer_from_dict(item, f"model.layers[{i}]", problems)
                if layer is not None:
                    layers.append(layer)
    if problems:
        raise SpecError(problems)
    return Preset(name=strings["name"], description=strings["description"], reference=strings["reference"],
                  task=sections["task"], model=ModelSpec(layers=layers), train=sections["train"],
                  monitor=sections["monitor"], format=FORMAT)


def _layer_to_dict(layer: LayerSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"type": layer.type}
    if layer.params:
        out["params"] = _plain(layer.params)
    if layer.body is not None:
        out["body"] = [_layer_to_dict(child) for child in layer.body]
    if layer.trainable is not True:
        out["trainable"] = layer.trainable
    return out


def _section_to_dict(section: Any) -> dict[str, Any]:
    return {f.name: _plain(getattr(section, f.name)) for f in fields(section)}


def preset_to_dict(p: Preset) -> dict[str, Any]:
    """The JSON document for ``p``, keys in a stable order (format, name, …, task, model, train, monitor).

    Layer keys ``params``/``body``/``trainable`` are written only when they differ from the default."""
    return {
        "format": FORMAT,
        "name": p.name,
        "description": p.description,
        "reference": p.reference,
        "task": _section_to_dict(p.task),
        "model": {"layers": [_layer_to_dict(layer) for layer in p.model.layers]},
        "train": _section_to_dict(p.train),
        "monitor": _section_to_dict(p.monitor),
    }


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a preset")


def loads_preset(text: str, source: str = "preset") -> Preset:
    """Parse preset JSON text; malformed JSON is a :class:`SpecError` naming the line and column."""
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise SpecError(Problem("", f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                                    f"column {exc.colno}",
                                "fix the JSON syntax there (a missing comma, quote or bracket is typical)")) from None
    except ValueError as exc:  # NaN / Infinity constants
        raise SpecError(Problem("", f"{source}: {exc}", "write a finite number")) from None
    return preset_from_dict(document)


def dumps_preset(p: Preset) -> str:
    """The canonical text of ``p``: 2-space indent, stable key order, UTF-8 text, trailing newline."""
    try:
        return json.dumps(preset_to_dict(p), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise SpecError(Problem("", f"the preset holds a value JSON cannot store: {exc}",
                                "use only numbers, strings, booleans, lists and objects (finite numbers)")) from None


def load_preset(path: str | os.PathLike[str]) -> Preset:
    """Read a preset file (structure checked; call :func:`validate` for values)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(Problem("", f"preset file not found: {path}", "check the path, or list built-ins "
                                                                       "with `python main.py presets`")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(Problem("", f"cannot read preset {path}: {exc}", "check the file and its permissions")) from None
    return loads_preset(text, source=str(path))


def save_preset(p: Preset, path: str | os.PathLike[str]) -> None:
    """Write ``p`` to ``path`` atomically: a temp file in the same folder, fsync, then ``os.replace``.

    If anything fails the temp file is removed and an existing file at ``path`` is left untouched."""
    path = Path(path)
    text = dumps_preset(p)
    folder = path.parent if str(path.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise


# -------------------------------------------------------------------------------------- layer naming
def layer_name(index: int, layer: LayerSpec) -> str:
    """The module name of top-level layer ``index`` in a built model, e.g. ``"0_ZConv2d"``."""
    return f"{index}_{layer.type}"


def layer_names(p: Preset) -> list[str]:
    """Names of the top-level children of :func:`build_model` (``"0_ZConv2d"``, ``"1_SoftPool2d"``, …)."""
    return [layer_name(i, layer) for i, layer in enumerate(p.model.layers)]


def layer_path(index: int, parent: str = "model") -> str:
    """JSON path of a layer: ``model.layers[3]`` or ``<parent>.body[3]`` for a container body."""
    return f"model.layers[{index}]" if parent == "model" else f"{parent}.body[{index}]"
