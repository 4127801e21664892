"""The preset document: typed dataclasses, JSON load/save, validation, shape inference, model build.

A preset is one JSON object (``"format": "afwb.preset/1"``) with the sections ``task``, ``model``,
``train`` and ``monitor``. Nothing in a preset is ever evaluated: no code, no pickle. Loading checks
the *structure* (objects where objects belong, no unknown keys, every layer has a ``type``) and raises
:class:`SpecError`; :func:`validate` checks the *values* (types, ranges, choices, known layer types,
shapes) and returns every problem at once, each with a JSON path and a fix, so an editor can show a
half-finished network. :func:`build_model` refuses an invalid preset with a :class:`SpecError`.

The ``task``/``train``/``monitor`` sections and their schema live in :mod:`workbench.sections`, the
datasets in :mod:`workbench.datasets`. A file path in the dataset options may be relative: it is
read from the preset file's folder (``task.base_dir``, set by :func:`load_preset`), and
:func:`save_preset` rewrites it for the folder it saves into.

This module imports neither torch nor the layer registry at import time; both are imported lazily
by the functions that need them.
"""
from __future__ import annotations

import copy
import json
import math
import os
import re
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from .datasets import DATASETS, check_options, dataset_info, portable_path, resolve_path
from .fileio import atomic_write_text
from .problems import Problem, SpecError, did_you_mean, unknown_key_problem
from .sections import (AUGMENT_OPTIONS, AUGMENTS, DEVICES, LOSSES, OPTIMIZER_OPTIONS, OPTIMIZERS, PRECISIONS,
                       SCHEDULERS, SECTIONS, MonitorSpec, TaskSpec, TrainSpec, check_monitor, check_task,
                       check_train, section_schema)

if TYPE_CHECKING:  # the reproduction section's dataclasses
    from .reproduction import Reproduction

__all__ = [
    "FORMAT", "FORMAT_VERSION", "Problem", "SpecError", "LayerSpec", "ModelSpec", "TaskSpec", "TrainSpec",
    "MonitorSpec", "Preset", "LayerShape", "ShapeReport", "upgrade", "preset_from_dict",
    "preset_to_dict", "loads_preset", "dumps_preset", "load_preset", "save_preset", "validate",
    "infer_shapes", "build_model", "layer_names", "layer_name", "layer_path", "unknown_key_problem",
    "OPTIMIZERS", "SCHEDULERS", "DEVICES", "PRECISIONS", "LOSSES", "AUGMENTS", "OPTIMIZER_OPTIONS",
    "AUGMENT_OPTIONS", "data_paths_for",
]

FORMAT_VERSION = 1
FORMAT = f"afwb.preset/{FORMAT_VERSION}"
_FORMAT_RE = re.compile(r"^afwb\.preset/(\d+)$")


def _did_you_mean(word: str, options: Sequence[str]) -> str:
    return did_you_mean(word, options)


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
class Preset:
    """A whole preset document; ``reproduction`` is the optional protocol of the published
    experiment it re-creates (:mod:`workbench.reproduction`, applied by :mod:`workbench.protocol`)."""

    name: str = "Untitled"
    description: str = ""
    reference: str = ""
    task: TaskSpec = field(default_factory=TaskSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    monitor: MonitorSpec = field(default_factory=MonitorSpec)
    format: str = FORMAT
    reproduction: Reproduction | None = None


_SECTIONS: dict[str, type] = SECTIONS
_TOP_KEYS = ("format", "name", "description", "reference", "task", "model", "train", "monitor", "reproduction")
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
    """Fields of ``cls`` that hold floats (an int written there is read as a float)."""
    if is_dataclass(cls) and cls in SECTIONS.values():
        return {key for key, spec in section_schema(cls).items() if spec.kind == "float"}
    return {f.name for f in fields(cls) if f.type in ("float", float)}


def _section_from_dict(name: str, cls: type, data: Any, problems: list[Problem]) -> Any:
    if data is None:
        return cls()
    if not isinstance(data, dict):
        problems.append(Problem(name, f"'{name}' must be an object, got {type(data).__name__}",
                                f'write "{name}": {{...}} or leave it out for the defaults'))
        return cls()
    schema = section_schema(cls)
    floats = _float_fields(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in schema:
            problems.append(Problem(f"{name}.{key}", f"unknown key '{key}' in {name}",
                                    _did_you_mean(key, list(schema))))
            continue
        if key in floats and isinstance(value, int) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:  # beyond float's range: kept as written, validate says so
                pass
        kwargs[key] = _plain(value)
    return cls(**kwargs)


def _layer_from_dict(data: Any, path: str, problems: list[Problem], depth: int = 0) -> LayerSpec | None:
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
        elif depth >= MAX_NESTING:
            problems.append(Problem(f"{path}.body", f"containers are nested more than {MAX_NESTING} deep here",
                                    f"nest at most {MAX_NESTING} Residual/InfiniteDepth layers inside each other "
                                    "(real models use 1 or 2)"))
            ok = False
        else:
            body = []
            for i, item in enumerate(body_data):
                child = _layer_from_dict(item, f"{path}.body[{i}]", problems, depth + 1)
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
        if _layer_count(raw_layers, MAX_LAYERS) > MAX_LAYERS:  # before building millions of LayerSpecs
            raise SpecError(problems + [_too_many_layers()])
        if not isinstance(raw_layers, list):
            problems.append(Problem("model.layers", f"layers must be a list, got {type(raw_layers).__name__}",
                                    'write "layers": [{"type": ...}, ...]'))
        else:
            for i, item in enumerate(raw_layers):
                layer = _layer_from_dict(item, f"model.layers[{i}]", problems)
                if layer is not None:
                    layers.append(layer)
    reproduction = None
    if doc.get("reproduction") is not None:
        from .reproduction import reproduction_from_dict

        reproduction = reproduction_from_dict(doc["reproduction"], problems)
    if problems:
        raise SpecError(problems)
    return Preset(name=strings["name"], description=strings["description"], reference=strings["reference"],
                  task=sections["task"], model=ModelSpec(layers=layers), train=sections["train"],
                  monitor=sections["monitor"], format=FORMAT, reproduction=reproduction)


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
    return {key: _plain(getattr(section, key)) for key in section_schema(type(section))}


def preset_to_dict(p: Preset) -> dict[str, Any]:
    """The JSON document for ``p``, keys in a stable order (format, name, …, task, model, train, monitor,
    and ``reproduction`` when the preset has one).

    Layer keys ``params``/``body``/``trainable`` are written only when they differ from the default."""
    out = {
        "format": FORMAT,
        "name": p.name,
        "description": p.description,
        "reference": p.reference,
        "task": _section_to_dict(p.task),
        "model": {"layers": [_layer_to_dict(layer) for layer in p.model.layers]},
        "train": _section_to_dict(p.train),
        "monitor": _section_to_dict(p.monitor),
    }
    if p.reproduction is not None:
        from .reproduction import reproduction_to_dict

        out["reproduction"] = reproduction_to_dict(p.reproduction)
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a preset")


def loads_preset(text: str, source: str = "preset") -> Preset:
    """Parse preset JSON text; malformed JSON is a :class:`SpecError` naming the line and column."""
    try:
        document = json.loads(text, parse_constant=_reject_constant)
        return preset_from_dict(document)
    except json.JSONDecodeError as exc:
        raise SpecError(Problem("", f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                                    f"column {exc.colno}",
                                "fix the JSON syntax there (a missing comma, quote or bracket is typical)")) from None
    except SpecError:
        raise
    except ValueError as exc:  # NaN / Infinity constants, integers of more than 4,300 digits
        text = str(exc)
        if "integer string conversion" in text:
            text = "holds a number with more than 4,300 digits"
        raise SpecError(Problem("", f"{source}: {text}", "write a finite number")) from None
    except RecursionError:
        raise SpecError(Problem("", f"{source} nests objects or lists too deeply to read",
                                "a preset nests a few levels (layers, bodies, params); check the file")) from None


_LINE_WIDTH = 100


def _format_json(value: Any, indent: int, prefix_len: int) -> str:
    """JSON with 2-space indent where an object or list that fits on its line is written inline.

    Deterministic (a function of the value only), so load → save → load is byte-identical."""
    inline = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))
    fits = indent > 0 and indent + prefix_len + len(inline) <= _LINE_WIDTH
    if not isinstance(value, (dict, list)) or not value or fits:
        return inline
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            key_text = json.dumps(str(key), ensure_ascii=False) + ": "
            items.append(pad + key_text + _format_json(item, indent + 2, len(key_text) + 1))
    elif all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in value):
        # a long list of numbers (a published curve): as many per line as fit, not one per line
        lines, line = [], ""
        for item in value:
            text = json.dumps(item, allow_nan=False)
            if line and len(pad) + len(line) + len(text) + 2 > _LINE_WIDTH:
                lines.append(pad + line.rstrip())
                line = ""
            line += text + ", "
        lines.append(pad + line[:-2])
        return "[\n" + "\n".join(lines) + "\n" + " " * indent + "]"
    else:
        items = [pad + _format_json(item, indent + 2, 1) for item in value]
    open_, close = ("{", "}") if isinstance(value, dict) else ("[", "]")
    return open_ + "\n" + ",\n".join(items) + "\n" + " " * indent + close


def dumps_preset(p: Preset, folder: str | os.PathLike[str] | None = None) -> str:
    """The canonical text of ``p``: 2-space indent (short objects and lists on one line, at most
    100 columns), stable key order, UTF-8 text, trailing newline.

    ``folder``: where the text will be saved; relative data paths are rewritten for it (see
    :func:`data_paths_for`)."""
    if folder is not None:
        p = data_paths_for(p, folder)
    try:
        return _format_json(preset_to_dict(p), 0, 0) + "\n"
    except (TypeError, ValueError, RecursionError) as exc:
        raise SpecError(Problem("", f"the preset holds a value JSON cannot store: {exc}",
                                "use only numbers, strings, booleans, lists and objects (finite numbers)")) from None


def load_preset(path: str | os.PathLike[str]) -> Preset:
    """Read a preset file (structure checked; call :func:`validate` for values). Relative data
    paths in it are read from the file's folder (``task.base_dir``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(Problem("", f"preset file not found: {path}", "check the path, or list built-ins "
                                                                       "with `python main.py presets`")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(Problem("", f"cannot read preset {path}: {exc}",
                                "check the file and its permissions")) from None
    preset = loads_preset(text, source=str(path))
    preset.task.base_dir = path.parent.resolve()
    return preset


def save_preset(p: Preset, path: str | os.PathLike[str]) -> None:
    """Write ``p`` to ``path`` atomically: a temp file in the same folder, fsync, then ``os.replace``.

    Relative data paths are rewritten for ``path``'s folder (:func:`data_paths_for`). If anything
    fails the temp file is removed and an existing file at ``path`` is left untouched."""
    atomic_write_text(path, dumps_preset(p, Path(path).parent))


def data_paths_for(p: Preset, folder: str | os.PathLike[str]) -> Preset:
    """``p`` as it should be written into ``folder``: each file or folder named by a dataset option
    stays relative when it lies inside ``folder`` (relative to it, so a preset and its data can be
    shared together), else becomes absolute (a run folder's ``preset.json`` finds the data wherever
    the run folder is). ``task.base_dir`` becomes ``folder``. Returns ``p`` itself when nothing
    changes."""
    entry = DATASETS.get(p.task.dataset) if isinstance(p.task.dataset, str) else None
    options = p.task.options
    if entry is None or not entry.path_options or not isinstance(options, Mapping):
        return p
    target = Path(os.path.abspath(Path(folder).expanduser()))
    changed = dict(options)
    for key in entry.path_options:
        value = options.get(key)
        if not isinstance(value, str) or not value.strip() or Path(value).expanduser().is_absolute():
            continue
        changed[key] = portable_path(resolve_path(value, p.task.base_dir), target)
    if changed == options:
        return p
    return replace(p, task=replace(p.task, options=changed, base_dir=target))


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


# --------------------------------------------------------------------------------------- validation
def _check_sections(p: Preset, problems: list[Problem]) -> Any:
    """Check name, task, train and monitor values; return the DatasetInfo (or None if unknown)."""
    if not isinstance(p.name, str) or not p.name.strip():
        problems.append(Problem("name", "the preset has no name", 'set "name" to a short title'))
    for key in ("description", "reference"):
        if not isinstance(getattr(p, key), str):
            problems.append(Problem(key, f"{key} must be a string", f'write "{key}": "..."'))
    task = p.task
    problems.extend(check_task(task))
    problems.extend(check_train(p.train))
    problems.extend(check_monitor(p.monitor))
    info = None
    if not isinstance(task.dataset, str) or task.dataset not in DATASETS:
        problems.append(Problem("task.dataset", f"unknown dataset {task.dataset!r}",
                                _did_you_mean(str(task.dataset), list(DATASETS))))
    else:
        option_problems = check_options(task.dataset, task.options)
        problems.extend(option_problems)
        if not option_problems:
            try:
                info = dataset_info(task.dataset, task.options, task.base_dir)
            except SpecError as exc:  # the user's file cannot be read or does not fit the options
                problems.extend(exc.problems)
    if isinstance(task.augment, list) and task.augment and info is not None and len(info.input_shape) != 3:
        problems.append(Problem("task.augment", f"augmentations work on images, but {info.name} samples "
                                f"have shape {tuple(info.input_shape)}", 'set "augment": []'))
    if info is not None and info.task == "regression" and task.loss == "cross_entropy":
        problems.append(Problem("task.loss", f"{info.name} is a regression task; cross-entropy needs classes",
                                'set loss to "mse" or "auto"'))
    if info is not None and task.loss == "bce" and (info.task != "classification" or info.output_dim != 2):
        what = "a regression task" if info.task == "regression" else f"{info.output_dim} classes"
        problems.append(Problem("task.loss", f"bce (binary cross-entropy) needs two classes; {info.name} has {what}",
                                'set loss to "auto"'))
    return info


def _sublayer_path(index: int, parent: str) -> str:
    return f"model.layers[{index}]" if parent == "model" else f"{parent}.body[{index}]"


def _layer_label(index: int, layer: LayerSpec, parent: str) -> str:
    prefix = "layer" if parent == "model" else "body layer"
    return f"{prefix} {index} {layer.type}"


@dataclass
class LayerShape:
    """Shape inference for one layer. Shapes are per sample; ``None`` when unknown (an earlier problem).

    ``params``/``trainable_params`` count parameter elements (for a container: everything it builds,
    e.g. InfiniteDepth's max_depth copies of its body; its ``children`` count one copy).
    ``activations`` counts the values per sample its forward pass produces: its output, and for a
    container its body's (one copy's, from ``children``) times the copies it may run."""

    path: str
    name: str
    type: str
    input_shape: tuple[int, ...] | None
    output_shape: tuple[int, ...] | None
    params: int | None = None
    trainable_params: int | None = None
    trainable: bool = True
    problem: str | None = None
    children: list[LayerShape] = field(default_factory=list)
    activations: int | None = None


@dataclass
class ShapeReport:
    """Per-layer shapes and parameter counts for a preset, plus every problem found.

    ``activations``: values per sample the forward pass produces (see :class:`LayerShape`)."""

    input_shape: tuple[int, ...] | None
    output_shape: tuple[int, ...] | None
    layers: list[LayerShape]
    total_params: int
    trainable_params: int
    problems: list[Problem]
    activations: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


#: Containers (Residual, InfiniteDepth) nest at most this deep. Real models nest 1 or 2 levels
#: (the built-in presets: at most 1); each level costs about a dozen Python frames when the model
#: is built and in its forward pass, so 32 levels stay far inside Python's recursion limit (1000)
#: with room for torch's own recursion (state_dict, named_modules, deepcopy).
MAX_NESTING = 32

#: At most this many layers in a model, bodies included (as written, not times their copies). The
#: built-in presets have at most 22; a real network a few hundred. A preset of 2.5 million layers
#: took 130 s to load and validate, then failed for memory: it is refused before any walk.
MAX_LAYERS = 10_000

#: At most this many parameters (elements): 4 GB of float32 weights, and about 16 GB to train with
#: Adam (weights, gradients and two moment estimates). The largest built-in preset
#: (twist-resnet-cifar10) has 31.8 M, 31× below.
MAX_PARAMS = 1_000_000_000

#: At most this many bytes of activations in one training batch, estimated as the values the
#: forward pass produces per sample (:attr:`ShapeReport.activations`) × batch size × 4 bytes (what
#: the backward pass keeps, roughly). 16 GiB: about what the parameter limit needs to train. The
#: largest built-in preset needs 0.33 GB (twist-resnet-cifar10, batch 128), 50× below.
MAX_ACTIVATION_BYTES = 16 * 2**30


def _layer_count(layers: Any, limit: int) -> int:
    """Layers in ``layers`` and all their bodies (LayerSpecs or JSON objects), counted without
    recursion and only until the count passes ``limit``."""
    count, stack = 0, [layers]
    while stack:
        items = stack.pop()
        if not isinstance(items, list):
            continue
        count += len(items)
        if count > limit:
            break
        for item in items:
            body = item.get("body") if isinstance(item, dict) else getattr(item, "body", None)
            if body:
                stack.append(body)
    return count


def _too_many_layers() -> Problem:
    return Problem("model.layers", f"the model has more than {MAX_LAYERS:,} layers (bodies included)",
                   f"use at most {MAX_LAYERS:,} layers; a real network has a few hundred at most")


def _check_resources(report: ShapeReport, p: Preset, problems: list[Problem]) -> None:
    """Refuse models whose parameters or activations cannot fit (see :data:`MAX_PARAMS`,
    :data:`MAX_ACTIVATION_BYTES`); counts of a model with other problems are lower bounds."""
    if report.total_params > MAX_PARAMS:
        problems.append(Problem("model.layers", f"the model has {report.total_params:,} parameters "
                                f"({report.total_params * 16 / 1e9:,.0f} GB to train with Adam); at most "
                                f"{MAX_PARAMS:,} fit", "use fewer, narrower or shallower layers"))
    batch = p.task.batch_size
    if isinstance(batch, int) and not isinstance(batch, bool) and batch > 0:
        need = report.activations * batch * 4
        if need > MAX_ACTIVATION_BYTES:
            problems.append(Problem("task.batch_size", f"one training batch needs about {need / 2**30:,.1f} GiB "
                                    f"of activations ({report.activations:,} values per sample × batch {batch} × "
                                    f"4 bytes); at most {MAX_ACTIVATION_BYTES // 2**30} GiB fit",
                                    f"lower task.batch_size (now {batch}) or use a smaller model"))


def _body_key(body: Sequence[LayerSpec], in_shape: tuple[int, ...]) -> tuple[Any, ...]:
    """Identity of one body at one input shape (the layer objects live as long as the walk)."""
    return tuple(id(layer) for layer in body), tuple(in_shape)


class _Walker:
    """Walks layer lists: checks types and params, infers shapes, optionally builds and counts.

    Linear in the size of the model: each body's output shape is worked out once and remembered
    (``shapes``, shared by the walkers of one analysis), so a container asking for its body's shape
    (``sequence_shape``, from its shape rule and again from its build) never walks the body again;
    a container's parameters are counted as its own plus its body's (counted once, in the walk)
    times the copies it builds, never by building its body again."""

    def __init__(self, classes: int, problems: list[Problem], count: bool = False,
                 shapes: dict[tuple[Any, ...], tuple[int, ...]] | None = None) -> None:
        self.classes = classes
        self.problems = problems
        self.count = count
        self.shapes: dict[tuple[Any, ...], tuple[int, ...]] = {} if shapes is None else shapes

    # the callbacks handed to containers (only called for bodies already known to be valid)
    def sequence_shape(self, body: Sequence[LayerSpec], in_shape: tuple[int, ...]) -> tuple[int, ...]:
        from workbench.registry import ShapeError
        key = _body_key(body, in_shape)
        known = self.shapes.get(key)
        if known is not None:
            return known
        problems: list[Problem] = []
        out, _ = _Walker(self.classes, problems, shapes=self.shapes).walk(list(body), in_shape, "body")
        if problems or out is None:
            raise ShapeError(problems[0].message if problems else "the body has a problem",
                             problems[0].fix if problems else "")
        self.shapes[key] = out
        return out

    def build_sequence(self, body: Sequence[LayerSpec], in_shape: tuple[int, ...]) -> Any:
        from torch import nn
        modules, _ = self.build_list(list(body), in_shape, "body")
        return nn.Sequential(*modules) if len(modules) != 1 else modules[0]

    def context(self, layer: LayerSpec, build_sequence: Callable[..., Any] | None = None) -> Any:
        from workbench.registry import BuildContext
        return BuildContext(classes=self.classes, body=tuple(layer.body or ()),
                            sequence_shape=self.sequence_shape, build_sequence=build_sequence or self.build_sequence)

    def check_layer(self, index: int, layer: LayerSpec, path: str) -> Any:
        """Registry entry of a layer, or None after recording its type/param problems."""
        from workbench.registry import check_params, get_entry
        try:
            entry = get_entry(layer.type)
        except SpecError as exc:
            self.problems.extend(Problem(f"{path}.type", q.message, q.fix) for q in exc.problems)
            return None
        ok = True
        if not isinstance(layer.params, dict):
            self.problems.append(Problem(f"{path}.params", "params must be an object", 'write "params": {...}'))
            return None
        for q in check_params(entry, layer.params):
            self.problems.append(Problem(f"{path}.{q.path}", q.message, q.fix))
            ok = False
        if not isinstance(layer.trainable, bool):
            self.problems.append(Problem(f"{path}.trainable", "trainable must be true or false",
                                         'write "trainable": true or false'))
            ok = False
        if entry.container and not layer.body:
            self.problems.append(Problem(f"{path}.body", f"{entry.type} needs at least one layer in its body",
                                         'add layers under "body"'))
            ok = False
        if not entry.container and layer.body is not None:
            self.problems.append(Problem(f"{path}.body", f"{entry.type} is not a container and takes no body",
                                         'remove "body", or put these layers in a Residual or InfiniteDepth'))
            ok = False
        return entry if ok else None

    def walk(self, layers: list[LayerSpec], in_shape: tuple[int, ...] | None,
             parent: str, depth: int = 0) -> tuple[tuple[int, ...] | None, list[LayerShape]]:
        from workbench.registry import ShapeError
        shape = in_shape
        rows: list[LayerShape] = []
        for i, layer in enumerate(layers):
            path = _sublayer_path(i, parent)
            row = LayerShape(path=path, name=layer_name(i, layer), type=str(layer.type), input_shape=shape,
                             output_shape=None, trainable=layer.trainable is not False)
            rows.append(row)
            before = len(self.problems)
            entry = self.check_layer(i, layer, path)
            body_ok = True
            if entry is not None and entry.container and layer.body and depth >= MAX_NESTING:
                self.problems.append(Problem(f"{path}.body", f"containers are nested more than {MAX_NESTING} deep "
                                             f"here", f"nest at most {MAX_NESTING} Residual/InfiniteDepth layers "
                                             "inside each other (real models use 1 or 2)"))
                body_ok = False
            elif entry is not None and entry.container and layer.body:
                body_out, row.children = self.walk(layer.body, shape, path, depth + 1)
                body_ok = len(self.problems) == before and all(c.output_shape is not None for c in row.children)
                if body_ok and shape is not None and body_out is not None:
                    self.shapes[_body_key(layer.body, shape)] = body_out
            if entry is None or not body_ok:
                if len(self.problems) > before:
                    row.problem = str(self.problems[before])
                shape = None
                continue
            if shape is None:
                continue
            try:
                out = entry.output_shape(shape, layer.params, self.context(layer))
            except ShapeError as exc:
                label = _layer_label(i, layer, parent)
                problem = Problem(path, f"{label}: {exc.message}", exc.fix)
                self.problems.append(problem)
                row.problem = str(problem)
                shape = None
                continue
            row.output_shape = out
            if self.count:
                self.count_params(row, layer, shape, entry)
            shape = out
        return shape, rows

    def count_params(self, row: LayerShape, layer: LayerSpec, shape: tuple[int, ...], entry: Any) -> None:
        """``row.params``/``trainable_params``: the layer built on the meta device; a container is
        built with a parameter-free stand-in for its body, whose counts (its children's rows, already
        counted) are added once per copy it asked for."""
        from torch import nn
        copies: list[int] = []

        def body_stand_in(body: Sequence[LayerSpec], in_shape: tuple[int, ...]) -> Any:
            copies.append(1)
            return nn.Identity()

        try:
            module = self.build_one(layer, shape, entry, meta=True,
                                    build_sequence=body_stand_in if entry.container else None)
        except (ValueError, TypeError) as exc:  # a constructor check the registry rules did not foresee
            problem = Problem(row.path, f"{row.type} cannot be built: {exc}",
                              "change the parameters named in the message")
            self.problems.append(problem)
            row.problem = str(problem)
            return
        row.params = sum(int(p.numel()) for p in module.parameters())
        row.trainable_params = sum(int(p.numel()) for p in module.parameters() if p.requires_grad)
        row.activations = math.prod(row.output_shape or ())
        if copies:
            n = len(copies)
            row.params += n * sum(c.params or 0 for c in row.children)
            row.activations += n * sum(c.activations or 0 for c in row.children)
            if layer.trainable is not False:
                row.trainable_params += n * sum(c.trainable_params or 0 for c in row.children)

    def build_one(self, layer: LayerSpec, shape: tuple[int, ...], entry: Any, meta: bool = False,
                  build_sequence: Callable[..., Any] | None = None) -> Any:
        ctx = self.context(layer, build_sequence)
        if meta:
            import torch
            try:
                with torch.device("meta"):
                    module = entry.build(shape, layer.params, ctx)
            except (RuntimeError, NotImplementedError):  # an init op without a meta kernel: count on CPU
                module = entry.build(shape, layer.params, ctx)
        else:
            module = entry.build(shape, layer.params, ctx)
        if layer.trainable is False:
            for param in module.parameters():
                param.requires_grad_(False)
        return module

    def build_list(self, layers: list[LayerSpec], in_shape: tuple[int, ...],
                   parent: str) -> tuple[list[Any], tuple[int, ...]]:
        from workbench.registry import ShapeError, get_entry
        shape = in_shape
        modules = []
        for i, layer in enumerate(layers):
            entry = get_entry(layer.type)
            ctx = self.context(layer)
            try:
                module = self.build_one(layer, shape, entry)
                shape = entry.output_shape(shape, layer.params, ctx)
            except ShapeError as exc:
                raise SpecError(Problem(_sublayer_path(i, parent), f"{_layer_label(i, layer, parent)}: {exc.message}",
                                        exc.fix)) from None
            except (ValueError, TypeError) as exc:
                if isinstance(exc, SpecError):
                    raise
                raise SpecError(Problem(_sublayer_path(i, parent),
                                        f"{_layer_label(i, layer, parent)} cannot be built: {exc}",
                                        "change the parameters named in the message")) from None
            modules.append(module)
        return modules, shape


def model_outputs(info: Any, task: Any) -> int:
    """The output size the model must end with: the data set's (one per class or regression target),
    or 1 under ``loss: "bce"`` (one logit for two classes). ``"classes"`` in a layer resolves to it."""
    return 1 if getattr(task, "loss", "auto") == "bce" else int(info.output_dim)


def _check_output(info: Any, out: tuple[int, ...] | None, p: Preset, problems: list[Problem]) -> None:
    if info is None or out is None:
        return
    if not p.model.layers:
        return
    want = (model_outputs(info, p.task),)
    if tuple(out) == want:
        return
    last = f"model.layers[{len(p.model.layers) - 1}]"
    what = "one per class" if info.task == "classification" else "one per regression target"
    if p.task.loss == "bce":
        what = "one logit: loss bce"
    if len(out) != 1:
        fix = 'add a Flatten and then a Linear with out_features "classes"'
    else:
        fix = 'end with a Linear (or ZLinear) whose out_features is "classes"'
    problems.append(Problem(last, f"the network ends with shape {_shape_text(out)} but {info.name} needs "
                                  f"{want[0]} output{'s' if want[0] != 1 else ''} ({what})", fix))


def _shape_text(shape: Sequence[int]) -> str:
    return "×".join(str(s) for s in shape)


def _analyse(p: Preset, count: bool) -> ShapeReport:
    problems: list[Problem] = []
    if not isinstance(p, Preset):
        raise TypeError(f"expected a Preset, got {type(p).__name__}")
    info = _check_sections(p, problems)
    layers = p.model.layers
    if not isinstance(layers, list):
        problems.append(Problem("model.layers", "layers must be a list", 'write "layers": [...]'))
        return ShapeReport(None, None, [], 0, 0, problems)
    if not layers:
        problems.append(Problem("model.layers", "the model has no layers", "add layers from the palette"))
    in_shape = tuple(info.input_shape) if info is not None else None
    if _layer_count(layers, MAX_LAYERS) > MAX_LAYERS:
        problems.append(_too_many_layers())
        return ShapeReport(in_shape, None, [], 0, 0, problems)
    classes = model_outputs(info, p.task) if info is not None else 10
    walker = _Walker(classes, problems, count=count)
    out, rows = walker.walk(layers, in_shape, "model")
    _check_output(info, out, p, problems)
    total = sum(r.params or 0 for r in rows)
    trainable = sum(r.trainable_params or 0 for r in rows)
    report = ShapeReport(in_shape, out, rows, total, trainable, problems,
                         activations=sum(r.activations or 0 for r in rows))
    if count:
        _check_resources(report, p, problems)
    return report


def validate(p: Preset, *, resources: bool = True) -> list[Problem]:
    """Every problem with ``p`` at once (empty list = valid), each with a JSON path and a fix.

    ``resources``: also refuse a model whose parameters or activations cannot fit
    (:data:`MAX_PARAMS`, :data:`MAX_ACTIVATION_BYTES`); that counts parameters on the meta device,
    so it imports torch. ``resources=False`` checks everything else without torch (an editor that
    has not loaded torch yet; :func:`infer_shapes` adds the rest)."""
    return _analyse(p, count=resources).problems


def infer_shapes(p: Preset) -> ShapeReport:
    """Per-layer input/output shapes, parameter and activation counts (built on the ``meta`` device:
    no memory), and every problem, the resource limits included."""
    return _analyse(p, count=True)


def build_model(p: Preset) -> Any:
    """The ``torch.nn.Module`` for ``p`` (an ``nn.Sequential`` whose children are ``"0_<type>"``, …).

    Raises :class:`SpecError` listing every problem if ``p`` is invalid. Layers with
    ``"trainable": false`` have ``requires_grad`` False on all their parameters."""
    from workbench.model import SpecModel

    problems = validate(p)
    if problems:
        raise SpecError(problems)
    info = dataset_info(p.task.dataset, p.task.options, p.task.base_dir)
    walker = _Walker(model_outputs(info, p.task), [])
    modules, _ = walker.build_list(p.model.layers, tuple(info.input_shape), "model")
    named = [(layer_name(i, layer), module) for i, (layer, module) in enumerate(zip(p.model.layers, modules))]
    return SpecModel(named, [layer.type for layer in p.model.layers], tuple(info.input_shape))
