"""Trainer events: the only thing that crosses from a training run to its listeners.

A :class:`workbench.trainer.Trainer` calls ``on_event(event)`` from whatever thread runs it.
Listeners (the command line's progress bar, the app's worker adapter, tests) receive these
small frozen dataclasses and never touch the model or torch tensors: every figure in an event
is a plain Python ``float``/``int`` already copied to the host.

Units: ``seconds`` are wall-clock seconds; ``samples_per_s`` is training samples per
wall-clock second; norms are L2 norms (square root of the sum of squares) of the named
parameters or gradients; ``lr`` is the learning rate of the first parameter group.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Union, get_args

TaskKind = Literal["classification", "regression"]
#: ``interrupted`` is never written by a trainer: the runs list shows it for a summary that says
#: ``running`` while no live process trains the run (killed, crashed, machine turned off).
RunStatus = Literal["running", "finished", "stopped", "failed", "interrupted"]


@dataclass(frozen=True)
class RunSummary:
    """What a run achieved; written to ``summary.json`` and carried by the final event.

    ``best_val_accuracy`` / ``final_val_accuracy`` are fractions in [0, 1] (classification);
    ``best_val_rmse`` / ``final_val_rmse`` are in target units (regression); ``learned_depth``
    maps each ``InfiniteDepth`` layer name to its raw ``w`` at the end of the run. A run trained
    by several processes (DDP) has ``world_size`` > 1; its figures are those of the global batch.
    """

    status: RunStatus
    preset_name: str
    task: TaskKind
    device: str
    run_dir: str | None = None
    epochs_completed: int = 0
    steps: int = 0
    seconds: float = 0.0
    samples_per_s: float = 0.0
    final_train_loss: float | None = None
    final_val_loss: float | None = None
    best_val_loss: float | None = None
    final_val_accuracy: float | None = None
    best_val_accuracy: float | None = None
    final_val_rmse: float | None = None
    best_val_rmse: float | None = None
    best_epoch: int | None = None
    learned_depth: Mapping[str, float] = field(default_factory=dict)
    params: int = 0
    trainable_params: int = 0
    message: str = ""
    hint: str = ""
    #: processes that trained the run together (torchrun + DDP); 1 for an ordinary run
    world_size: int = 1

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["learned_depth"] = dict(self.learned_depth)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> "RunSummary":
        """The summary in ``data`` (a parsed ``summary.json``), every field checked against its type.

        Unknown keys are ignored and missing ones take their defaults; anything else that does not
        fit (not an object, a string where a number belongs, an unknown status) raises
        :class:`ValueError` naming the field, so no caller ever formats a value of the wrong type."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a run summary must be a JSON object, got {_short(data)}")
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name in data:
                kwargs[f.name] = _typed(f.name, data[f.name], str(f.type))
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ValueError(f"{f.name} is missing")
        return cls(**kwargs)


def _short(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters (a damaged file may hold megabytes)."""
    if isinstance(value, (dict, list)):
        return f"a JSON {'object' if isinstance(value, dict) else 'list'}"
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else "a huge integer"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(name: str, value: Any, null: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number{null}, got {_short(value)}")
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{name} is too large for a number: {_short(value)}") from None


def _typed(name: str, value: Any, annotation: str) -> Any:
    """``value`` checked (and ints made floats) for a field annotated ``annotation``."""
    null = ""
    if annotation.endswith(" | None"):
        if value is None:
            return None
        annotation, null = annotation[: -len(" | None")], " or null"
    choices = {"RunStatus": RunStatus, "TaskKind": TaskKind}.get(annotation)
    if choices is not None:
        allowed = get_args(choices)
        if not isinstance(value, str) or value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {_short(value)}")
        return value
    if annotation == "str":
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string{null}, got {_short(value)}")
        return value
    if annotation == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be a whole number{null}, got {_short(value)}")
        return value
    if annotation == "float":
        return _number(name, value, null)
    if annotation == "Mapping[str, float]":
        if not isinstance(value, Mapping):
            raise ValueError(f"{name} must be an object of numbers, got {_short(value)}")
        return {str(k): _number(f"{name}.{k}", v) for k, v in value.items()}
    raise TypeError(f"RunSummary.{name}: no check for {annotation}")  # a new field needs one


@dataclass(frozen=True)
class RunStarted:
    """Sent once, before the first step. ``layer_names`` are the model's top-level children
    (``0_ZConv2d``, ``1_SoftPool2d``, ...) in order; ``depth_layers`` and ``hardness_layers``
    name the layers that will report learned depth and Z-layer hardness."""

    preset_name: str
    run_dir: str | None
    device: str
    device_name: str
    task: TaskKind
    epochs: int
    steps_per_epoch: int
    total_steps: int
    train_size: int
    val_size: int
    batch_size: int
    params: int
    trainable_params: int
    layer_names: tuple[str, ...]
    depth_layers: tuple[str, ...] = ()
    hardness_layers: tuple[str, ...] = ()
    start_step: int = 0
    start_epoch: int = 0
    #: processes training the run together (torchrun + DDP; ``device`` is rank 0's); 1 otherwise
    world_size: int = 1


@dataclass(frozen=True)
class Metrics:
    """Training figures every ``monitor.every_steps`` optimiser steps.

    ``loss`` (and ``accuracy``/``rmse``) are means over the steps since the previous emit;
    ``seconds`` is the run's training wall-clock time so far (pauses and validation excluded;
    ``None`` from writers older than this field). Per-layer mappings are keyed by the top-level layer name (``3_ZLinear``); for
    ``InfiniteDepth`` layers nested in a container the key is the dotted module path.
    """

    step: int
    epoch: int
    epoch_fraction: float
    loss: float
    lr: float
    samples_per_s: float
    accuracy: float | None = None
    rmse: float | None = None
    grad_norm: Mapping[str, float] = field(default_factory=dict)
    weight_norm: Mapping[str, float] = field(default_factory=dict)
    depth_w: Mapping[str, float] = field(default_factory=dict)
    depth: Mapping[str, int] = field(default_factory=dict)
    hardness: Mapping[str, float] = field(default_factory=dict)
    seconds: float | None = None

    def flat(self) -> dict[str, float | int | None]:
        """One flat JSON-ready record (the ``metrics.jsonl`` line format)."""
        out: dict[str, float | int | None] = {
            "kind": "metrics",  # type: ignore[dict-item]
            "step": self.step,
            "epoch": self.epoch,
            "epoch_fraction": self.epoch_fraction,
            "loss": self.loss,
            "lr": self.lr,
            "samples_per_s": self.samples_per_s,
        }
        if self.accuracy is not None:
            out["accuracy"] = self.accuracy
        if self.rmse is not None:
            out["rmse"] = self.rmse
        if self.seconds is not None:
            out["seconds"] = self.seconds
        for prefix, mapping in (
            ("grad_norm", self.grad_norm),
            ("weight_norm", self.weight_norm),
            ("depth_w", self.depth_w),
            ("depth", self.depth),
            ("hardness", self.hardness),
        ):
            for name, value in mapping.items():
                out[f"{prefix}/{name}"] = value
        return out


@dataclass(frozen=True)
class EpochEnd:
    """End of an epoch: mean training figures over the epoch and the validation figures
    (``None`` when the preset has no validation split)."""

    epoch: int
    step: int
    seconds: float
    train_loss: float
    val_loss: float | None = None
    train_accuracy: float | None = None
    val_accuracy: float | None = None
    train_rmse: float | None = None
    val_rmse: float | None = None

    def flat(self) -> dict[str, Any]:
        out = {"kind": "epoch", **dataclasses.asdict(self)}
        return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True)
class Finished:
    summary: RunSummary


@dataclass(frozen=True)
class Stopped:
    """The user asked the run to stop; the last checkpoint was written."""

    summary: RunSummary


@dataclass(frozen=True)
class Failed:
    """The run could not go on. ``message`` names the cause, ``hint`` the fix;
    ``step`` is the optimiser step at which it failed (``None`` before training began)."""

    message: str
    hint: str
    step: int | None
    summary: RunSummary


Event = Union[RunStarted, Metrics, EpochEnd, Finished, Stopped, Failed]
FinalEvent = Union[Finished, Stopped, Failed]
