"""The preset's ``task``, ``train`` and ``monitor`` sections: typed dataclasses whose fields declare
their own schema.

Every field is declared once, with :func:`setting`: its default, type, range or choices, help line
and form label (a :class:`~workbench.params.ParamSpec` kept in the field's metadata). Validation
(:func:`check_task`, :func:`check_train`, :func:`check_monitor`), the choice lists, the command
line's ``--lr``-style overrides (:mod:`workbench.cli`) and the inspector's forms (``ui.inspector``)
all read :func:`section_schema`; nothing about a field is written twice. The optimiser's own
options (:data:`OPTIMIZER_OPTIONS`, PyTorch's defaults) and each augmentation's options
(:data:`AUGMENT_OPTIONS`) are declared the same way; the dataset options are declared by each
dataset's entry in :mod:`workbench.datasets`.
"""
from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from workbench.datasets import DATASET_NAMES
from workbench.params import ParamSpec, check_values
from workbench.problems import Problem, closest, unknown_key_problem

__all__ = [
    "TaskSpec", "TrainSpec", "MonitorSpec", "SECTIONS", "setting", "section_schema", "OPTIMIZERS",
    "SCHEDULERS", "DEVICES", "PRECISIONS", "LOSSES", "AUGMENTS", "OPTIMIZER_OPTIONS", "AUGMENT_OPTIONS",
    "check_task", "check_train", "check_monitor", "check_fields",
]

OPTIMIZERS = ("sgd", "adam", "adamw", "adadelta")
SCHEDULERS = ("none", "step", "cosine", "onecycle", "exp_curve")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16")
LOSSES = ("auto", "cross_entropy", "mse", "bce")
AUGMENTS = ("crop", "hflip", "affine", "jitter")

_SPEC = "afwb.param"  # the metadata key of a field's ParamSpec


def _kind_of(default: Any, choices: tuple[Any, ...]) -> str:
    if choices:
        return "choice"
    for kind, types in (("bool", bool), ("int", int), ("float", float), ("str", str), ("list", list),
                        ("object", dict)):
        if isinstance(default, types):
            return kind
    raise TypeError(f"give the kind of a setting whose default is {default!r}")


def setting(default: Any, help: str, *, label: str, kind: str | None = None, lo: float | None = None,
            hi: float | None = None, choices: tuple[Any, ...] = (), **more: Any) -> Any:
    """A dataclass field declaring one user-settable value (see :class:`~workbench.params.ParamSpec`
    for ``more``); a list or object default is copied for every instance."""
    spec = ParamSpec("", kind or _kind_of(default, choices), default, help, lo, hi, tuple(choices),  # type: ignore[arg-type]
                     label=label, **more)
    meta = {_SPEC: spec}
    if isinstance(default, (list, dict)):
        return field(default_factory=functools.partial(copy.deepcopy, default), metadata=meta)
    return field(default=default, metadata=meta)


@functools.cache
def section_schema(cls: type) -> dict[str, ParamSpec]:
    """``{field: ParamSpec}`` of a section class, in declaration order (the order presets are written)."""
    return {f.name: replace(f.metadata[_SPEC], name=f.name) for f in fields(cls) if _SPEC in f.metadata}


# -------------------------------------------------------------------------------------- the sections
@dataclass
class TaskSpec:
    """What to learn: the dataset and how it is fed (batch size in samples, validation fraction).

    ``augment_options`` maps an augmentation named in ``augment`` to its settings, e.g.
    ``{"affine": {"translate": 0.3}}`` (:data:`AUGMENT_OPTIONS`; unset keys keep their defaults).
    ``base_dir`` is not a setting and is never written: the folder the preset was read from, against
    which relative file paths in ``options`` are resolved (None: the working directory).
    """

    dataset: str = setting("digits", "what to learn: a built-in, downloadable or your own data set",
                           label="Dataset", choices=DATASET_NAMES)
    batch_size: int = setting(128, "samples per optimiser step", label="Batch size", lo=1, hi=1_000_000)
    val_split: float = setting(0.1, "fraction of the training data held out for validation (data sets with an "
                               "official test split use it instead)", label="Validation split", lo=0.0, hi=0.9,
                               step=0.05)
    loss: str = setting("auto", "auto: cross-entropy for classification, MSE for regression; bce: binary "
                        "cross-entropy of one sigmoid output (two classes; Keras's, σ clipped to [1e-7, 1 − 1e-7])",
                        label="Loss", choices=LOSSES)
    normalize: bool = setting(True, "standardise inputs (with the training split's mean and std, or the data "
                              "set's published ones)", label="Normalise inputs")
    augment: list[str] = setting([], "augmentations applied to every training batch on the device (image data "
                                 "sets only)", label="Augmentations",
                                 item=ParamSpec("augmentation", "choice", "crop", "an augmentation", choices=AUGMENTS))
    augment_options: dict[str, Any] = setting({}, "settings of the augmentations named in augment, e.g. "
                                              '{"affine": {"translate": 0.3}}', label="Augmentation options")
    limit_train: int | None = setting(None, "train on this many samples only (a seeded random subset; at least 2: "
                                      "a lone sample makes no batch); empty = all", label="Training samples",
                                      kind="int", lo=2, hi=10**9, nullable=True)
    options: dict[str, Any] = setting({}, "the data set's own options (see its entry)", label="Dataset options")
    base_dir: Path | None = field(default=None, compare=False, repr=False)


@dataclass
class TrainSpec:
    """How to learn: optimiser, learning rate and its schedule, epochs, seed, device, precision.

    ``milestones`` are fractions of all optimiser steps (step scheduler, stepped after every
    step); ``optimizer_options`` holds the chosen optimiser's own settings (:data:`OPTIMIZER_OPTIONS`;
    unset keys keep PyTorch's defaults); ``peak_epoch`` shapes the ``exp_curve`` schedule
    lr·e·(x/p)·exp(−x/p) with x = epoch + 1; ``grad_clip`` 0 means off.
    """

    optimizer: str = setting("adam", "the optimiser", label="Optimiser", choices=OPTIMIZERS)
    optimizer_options: dict[str, Any] = setting({}, "the optimiser's own settings (unset: PyTorch's defaults)",
                                                label="Optimiser options")
    lr: float = setting(1e-3, "learning rate", label="Learning rate", lo=1e-12,
                        hi=1e6, log=True)
    weight_decay: float = setting(0.0, "L2 weight decay", label="Weight decay", lo=0.0, hi=10.0, step=1e-4)
    momentum: float = setting(0.9, "SGD momentum", label="Momentum (SGD)", lo=0.0, hi=1.0, step=0.05)
    epochs: int = setting(10, "passes over the training set", label="Epochs", lo=1, hi=1_000_000)
    scheduler: str = setting("none", "learning-rate schedule", label="LR schedule", choices=SCHEDULERS)
    milestones: list[float] = setting([0.5, 0.75], "step schedule: fractions of all optimiser steps after which lr "
                                      "is multiplied by gamma", label="Milestones", increasing=True,
                                      item=ParamSpec("milestone", "float", 0.5, "a fraction of training", 0.0, 1.0,
                                                     exclusive=True))
    gamma: float = setting(0.1, "step schedule: lr ×= gamma at each milestone", label="Decay factor", lo=1e-12,
                           hi=1.0, step=0.05)
    peak_epoch: float = setting(5.0, "exp_curve schedule: the epoch lr peaks at", label="Peak epoch", lo=1e-6,
                                hi=1e6, step=0.5)
    seed: int = setting(0, "random seed: same seed, same run", label="Seed", lo=0, hi=2**32 - 1)
    device: str = setting("auto", "where to train; auto: CUDA, then MPS, then CPU; cuda:N: GPU number N",
                          label="Device", choices=DEVICES, pattern=r"cuda:\d+", pattern_text="cuda:N")
    precision: str = setting("fp32", "numeric precision (bf16 = bfloat16 autocast)", label="Precision",
                             choices=PRECISIONS)
    grad_clip: float = setting(0.0, "largest gradient L2 norm (0 = off)", label="Gradient clip", lo=0.0, hi=1e9,
                               step=0.5)


@dataclass
class MonitorSpec:
    """Probe cadence (every ``every_steps`` optimiser steps) and whether checkpoints are written."""

    every_steps: int = setting(10, "gradient norms, depth and hardness are measured every N optimiser steps",
                               label="Probe every (steps)", lo=1, hi=10**9)
    checkpoints: bool = setting(True, "write last/best checkpoints", label="Write checkpoints")


SECTIONS: dict[str, type] = {"task": TaskSpec, "train": TrainSpec, "monitor": MonitorSpec}


# ------------------------------------------------------------------------- options of other settings
def _P(  # noqa: N802 - a short name: it fills the declaration tables
        name: str, kind: str, default: Any, help: str, lo: float | None = None, hi: float | None = None,
        choices: tuple[Any, ...] = (), **more: Any) -> ParamSpec:
    return ParamSpec(name, kind, default, help, lo, hi, choices, **more)  # type: ignore[arg-type]


_BETAS = {
    "beta1": _P("beta1", "float", 0.9, "decay rate of the gradient mean (β₁)", 0.0, 0.999999),
    "beta2": _P("beta2", "float", 0.999, "decay rate of the squared-gradient mean (β₂)", 0.0, 0.999999999),
    "eps": _P("eps", "float", 1e-8, "added to the denominator √v̂ + ε", 0.0, 1.0, log=True),
}

#: ``train.optimizer_options`` keys per optimiser; the defaults are PyTorch's.
OPTIMIZER_OPTIONS: dict[str, dict[str, ParamSpec]] = {
    "sgd": {
        "nesterov": _P("nesterov", "bool", False, "Nesterov momentum (needs momentum > 0 and dampening 0)"),
        "dampening": _P("dampening", "float", 0.0, "dampening of the momentum buffer", 0.0, 1.0, step=0.05),
    },
    "adam": dict(_BETAS),
    "adamw": dict(_BETAS),
    "adadelta": {
        "rho": _P("rho", "float", 0.9, "decay rate of the running averages (Keras: 0.95)", 0.0, 0.999999999),
        "eps": _P("eps", "float", 1e-6, "added inside both square roots (Keras 2.1: 1e-8)", 0.0, 1.0, log=True),
    },
}

#: ``task.augment_options`` keys per augmentation (defaults = the behaviour without options).
AUGMENT_OPTIONS: dict[str, dict[str, ParamSpec]] = {
    "crop": {"padding": _P("padding", "int", 4, "zero padding before the random crop back to size, pixels", 0, 64)},
    "hflip": {"p": _P("p", "float", 0.5, "probability of mirroring a sample", 0.0, 1.0, step=0.05)},
    "affine": {
        "degrees": _P("degrees", "float", 10.0, "rotation drawn from U(−degrees, degrees)", 0.0, 180.0),
        "translate": _P("translate", "float", 0.1, "shift drawn from U(−t, t) × width (and × height), rounded "
                        "to whole pixels, as torchvision RandomAffine(translate=(t, t))", 0.0, 1.0, step=0.05),
        "scale_min": _P("scale_min", "float", 1.0, "smallest zoom factor", 0.1, 10.0, step=0.05),
        "scale_max": _P("scale_max", "float", 1.2, "largest zoom factor", 0.1, 10.0, step=0.05),
        "interpolation": _P("interpolation", "choice", "bilinear", "resampling: bilinear, or nearest "
                            "(torchvision's RandomAffine default)", choices=("bilinear", "nearest")),
    },
    "jitter": {
        "brightness": _P("brightness", "float", 0.2, "brightness factor drawn from U(1 − b, 1 + b)", 0.0, 1.0,
                         step=0.05),
        "contrast": _P("contrast", "float", 0.2, "contrast factor drawn from U(1 − c, 1 + c)", 0.0, 1.0,
                       step=0.05),
    },
}
assert set(OPTIMIZER_OPTIONS) == set(OPTIMIZERS) and set(AUGMENT_OPTIONS) == set(AUGMENTS)


# ----------------------------------------------------------------------------------------- checking
def check_fields(name: str, section: Any) -> list[Problem]:
    """Type, range and choice problems of every field of ``section`` (JSON paths ``<name>.<field>``;
    a list's items ``<name>.<field>[i]``). The keys of object fields are checked by the section's
    own check (they depend on another field)."""
    problems: list[Problem] = []
    for key, spec in section_schema(type(section)).items():
        problems.extend(field_problems(f"{name}.{key}", spec, getattr(section, key)))
    return problems


def field_problems(path: str, spec: ParamSpec, value: Any) -> list[Problem]:
    """Problems of one value; a list's items are reported at ``path[i]``, a mistyped choice with the
    closest choices."""
    if spec.kind == "list" and isinstance(value, list) and spec.item is not None:
        found = [p for i, item in enumerate(value) for p in field_problems(f"{path}[{i}]", spec.item, item)]
        if found:
            return found
    bad = spec.check(value)
    if bad is None:
        return []
    message, fix = bad
    if spec.kind == "choice" and isinstance(value, str):
        close = closest(value, [str(c) for c in spec.choices])
        if close:
            fix = "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
    return [Problem(path, message, fix)]


def check_task(task: TaskSpec) -> list[Problem]:
    """Problems of the task section apart from the dataset and its options (see
    :func:`workbench.datasets.check_options`)."""
    problems = [p for p in check_fields("task", task) if p.path not in ("task.dataset", "task.options")]
    path = "task.augment_options"
    options = task.augment_options
    if not isinstance(options, Mapping):
        return problems  # reported by check_fields
    used = task.augment if isinstance(task.augment, list) else []
    for name, values in options.items():
        if name not in AUGMENT_OPTIONS:
            problems.append(unknown_key_problem(f"{path}.{name}", name, list(AUGMENT_OPTIONS), kind="augmentation",
                                                owner="augment_options", where="augment_options"))
            continue
        if name not in used:
            problems.append(Problem(f"{path}.{name}", f"options for '{name}', but '{name}' is not in task.augment",
                                    f'add "{name}" to task.augment, or remove its options'))
        schema = AUGMENT_OPTIONS[name]
        found = check_values(f"{path}.{name}", values, schema, owner=name, where=f"augmentation {name}")
        problems.extend(found)
        if name == "affine" and not found:
            lo = values.get("scale_min", schema["scale_min"].default)
            hi = values.get("scale_max", schema["scale_max"].default)
            if lo > hi:
                problems.append(Problem(f"{path}.affine.scale_min", f"scale_min = {lo:g} is more than "
                                        f"scale_max = {hi:g}", "swap them"))
    return problems


def check_train(train: TrainSpec) -> list[Problem]:
    """Problems of the train section, the chosen optimiser's options included."""
    problems = check_fields("train", train)
    schema = OPTIMIZER_OPTIONS.get(train.optimizer) if isinstance(train.optimizer, str) else None
    if schema is None or not isinstance(train.optimizer_options, Mapping):  # reported by check_fields
        return problems
    found = check_values("train.optimizer_options", train.optimizer_options, schema,
                         owner=train.optimizer, where=f"optimizer {train.optimizer}")
    problems.extend(found)
    options = train.optimizer_options
    if train.optimizer == "sgd" and not found and options.get("nesterov") is True and (
            options.get("dampening", 0.0) != 0.0 or not (
            isinstance(train.momentum, (int, float)) and train.momentum > 0)):
        problems.append(Problem("train.optimizer_options.nesterov", "Nesterov momentum needs momentum > 0 and "
                                "dampening 0", "set train.momentum above 0 and dampening to 0, or nesterov to false"))
    return problems


def check_monitor(monitor: MonitorSpec) -> list[Problem]:
    """Problems of the monitor section."""
    return check_fields("monitor", monitor)
