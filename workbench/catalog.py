"""Datasets known to the editor: name, task, per-sample input shape, output size, options (no torch).

The loaders live in :mod:`workbench.data`; this module only describes the datasets so the editor and
:func:`workbench.spec.validate` can infer shapes without loading anything.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from workbench.registry import ParamSpec
from workbench.spec import Problem, SpecError, check_option_values

__all__ = ["DatasetInfo", "DATASET_NAMES", "DATASET_OPTIONS", "dataset_info", "check_options", "default_options"]


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset as the editor sees it; ``input_shape`` is one sample (no batch dimension)."""

    name: str
    task: Literal["classification", "regression"]
    input_shape: tuple[int, ...]
    output_dim: int
    embedded: bool
    description: str


def _P(name: str, kind: str, default: Any, help: str, lo: float | None = None, hi: float | None = None,
       choices: tuple[Any, ...] = ()) -> ParamSpec:
    return ParamSpec(name=name, kind=kind, default=default, help=help, min=lo, max=hi,  # type: ignore[arg-type]
                     choices=choices)


DATASET_OPTIONS: dict[str, dict[str, ParamSpec]] = {
    "digits": {},
    "parity": {
        "n_inputs": _P("n_inputs", "int", 8, "random binary inputs per sample", 1, 64),
        "k_active": _P("k_active", "int", 3, "the target is the parity (XOR) of the first k_active inputs", 0, 64),
        "n_samples": _P("n_samples", "int", 16384, "samples drawn (train + validation)", 16, 10_000_000),
        "fresh_batches": _P("fresh_batches", "bool", False, "draw every training batch fresh on the device, as the "
                            "original did (an epoch is then n_samples·(1 − val_split) fresh samples; the "
                            "validation part stays a fixed sample)"),
    },
    "checkerboard": {
        "squares": _P("squares", "int", 12, "board squares per side on the inner [-0.9, 0.9)² (HanNet's shipped data: "
                      "12); neighbouring squares alternate class", 2, 32),
        "n_samples": _P("n_samples", "int", 6561, "points: 6,561 = HanNet's 81×81 grid on [-1, 1]², any other count "
                        "draws uniform random points", 16, 10_000_000),
        "split": _P("split", "choice", "random", "random: val_split carves a seeded random part off; hannet: the "
                    "original's shipped 1,640 train / 4,921 test points of the 81×81 grid (val_split is ignored)",
                    choices=("random", "hannet")),
    },
    "spirals": {
        "n_arms": _P("n_arms", "int", 2, "interleaved spiral arms, one class each", 2, 16),
        "n_samples": _P("n_samples", "int", 2000, "points drawn over all arms", 16, 10_000_000),
        "noise": _P("noise", "float", 0.05, "Gaussian noise std added to the points (input units)", 0.0, 1.0),
    },
    "diabetes": {},
    "mnist": {},
    "fashion-mnist": {},
    "cifar10": {},
}

DATASET_NAMES: tuple[str, ...] = tuple(DATASET_OPTIONS)

_DESCRIPTIONS = {
    "digits": "scikit-learn's 1,797 handwritten digits, 8×8 grey images (values 0–16), 10 classes; embedded",
    "parity": "n_inputs random bits, target = parity of the first k_active (the Going-Deeper XOR task); generated",
    "checkerboard": "2-D points in [-1, 1]² labelled by a 12×12 checkerboard inside a class-0 border (HanNet's "
                    "styled problem, the 81×81 grid by default); generated",
    "spirals": "2-D points on interleaved spirals, one class per arm; generated",
    "diabetes": "scikit-learn diabetes regression: 442 patients, 10 standardised features, 1 target "
                "(disease progression after one year); embedded",
    "mnist": "MNIST handwritten digits, 60,000 train + 10,000 test 28×28 grey images, 10 classes; downloaded",
    "fashion-mnist": "Fashion-MNIST clothing images, 60,000 train + 10,000 test 28×28 grey, 10 classes; downloaded",
    "cifar10": "CIFAR-10 colour images, 50,000 train + 10,000 test 32×32 RGB, 10 classes; downloaded",
}


def default_options(name: str) -> dict[str, Any]:
    """``{option: default}`` for dataset ``name`` (empty for datasets without options)."""
    return {key: spec.default for key, spec in DATASET_OPTIONS.get(name, {}).items()}


def check_options(name: str, options: Mapping[str, Any] | None, path: str = "task.options") -> list[Problem]:
    """Problems with a dataset's options (unknown keys with the closest key, types, ranges)."""
    if options is None:
        return []
    if not isinstance(options, Mapping):
        return [Problem(path, f"options must be an object, got {type(options).__name__}",
                        'write "options": {} or {"name": value}')]
    problems = check_option_values(path, options, DATASET_OPTIONS.get(name, {}), owner=name, where=f"dataset {name}")
    if name == "checkerboard" and not problems:
        merged = {**default_options(name), **options}
        if merged["split"] == "hannet" and merged["n_samples"] != 6561:
            problems.append(Problem(f"{path}.split", f"split 'hannet' is a split of the 81×81 grid (6,561 points), "
                                    f"but n_samples = {merged['n_samples']}", "set n_samples to 6561 or split to "
                                    "'random'"))
    if name == "parity" and not problems:
        merged = {**default_options(name), **options}
        if merged["k_active"] > merged["n_inputs"]:
            problems.append(Problem(f"{path}.k_active", f"k_active = {merged['k_active']} is more than "
                                    f"n_inputs = {merged['n_inputs']}", "lower k_active or raise n_inputs"))
    return problems


def dataset_info(name: str, options: Mapping[str, Any] | None = None) -> DatasetInfo:
    """Describe dataset ``name`` with ``options``; unknown names or bad options raise :class:`SpecError`."""
    if not isinstance(name, str) or name not in DATASET_OPTIONS:
        close = difflib.get_close_matches(str(name), list(DATASET_NAMES), n=3, cutoff=0.4)
        fix = ("did you mean " + " or ".join(f"'{c}'" for c in close) + "?") if close else \
            "known datasets: " + ", ".join(DATASET_NAMES)
        raise SpecError(Problem("task.dataset", f"unknown dataset '{name}'", fix))
    problems = check_options(name, options)
    if problems:
        raise SpecError(problems)
    opts = {**default_options(name), **(options or {})}
    description = _DESCRIPTIONS[name]
    if name == "digits":
        return DatasetInfo(name, "classification", (1, 8, 8), 10, True, description)
    if name == "parity":
        return DatasetInfo(name, "classification", (int(opts["n_inputs"]),), 2, True, description)
    if name == "checkerboard":
        return DatasetInfo(name, "classification", (2,), 2, True, description)
    if name == "spirals":
        return DatasetInfo(name, "classification", (2,), int(opts["n_arms"]), True, description)
    if name == "diabetes":
        return DatasetInfo(name, "regression", (10,), 1, True, description)
    if name in ("mnist", "fashion-mnist"):
        return DatasetInfo(name, "classification", (1, 28, 28), 10, False, description)
    return DatasetInfo(name, "classification", (3, 32, 32), 10, False, description)
