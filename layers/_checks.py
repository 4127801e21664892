"""Argument and shape validation shared by the palette layers.

Constructor checks raise ``ValueError`` naming the argument and its allowed range. Forward-time
checks compare Python ints taken from ``Tensor.shape`` only, so they never synchronise with a device.
"""
from __future__ import annotations

from typing import Sequence, Tuple, Union

import torch

IntPair = Union[int, Tuple[int, int]]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(owner: str, name: str, value: object, minimum: int = 1) -> int:
    """Return ``value`` if it is an int ≥ ``minimum``; otherwise raise ``ValueError``."""
    if not _is_int(value) or value < minimum:  # type: ignore[operator]
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)  # type: ignore[arg-type]


def check_pair(owner: str, name: str, value: object, minimum: int = 1) -> Tuple[int, int]:
    """Accept an int or a pair of ints, each ≥ ``minimum``; return the pair."""
    if _is_int(value):
        check_int(owner, name, value, minimum)
        return (int(value), int(value))  # type: ignore[arg-type]
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) and v >= minimum for v in value):
        return (int(value[0]), int(value[1]))
    raise ValueError(
        f"{owner}: {name} must be an integer >= {minimum} or a pair of such integers, got {value!r}"
    )


def check_padding(owner: str, value: object) -> Union[str, Tuple[int, int]]:
    """Accept a non-negative int, a pair of them, or ``"valid"`` / ``"same"`` (as ``nn.Conv2d`` does)."""
    if isinstance(value, str):
        if value not in ("valid", "same"):
            raise ValueError(f"{owner}: padding must be >= 0, a pair, 'valid' or 'same', got {value!r}")
        return value
    return check_pair(owner, "padding", value, minimum=0)


def check_bool(owner: str, name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: {name} must be True or False, got {value!r}")
    return value


def check_choice(owner: str, name: str, value: object, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``; otherwise raise ``ValueError`` listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{owner}: {name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    return value


def check_float(owner: str, name: str, value: object, minimum: float | None = None,
                exclusive: bool = False) -> float:
    """Return ``value`` as a float; with ``minimum`` require ``value ≥ minimum`` (``>`` if exclusive)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ValueError(f"{owner}: {name} must be a real number, got {value!r}")
    if minimum is not None:
        bad = value <= minimum if exclusive else value < minimum
        if bad:
            op = ">" if exclusive else ">="
            raise ValueError(f"{owner}: {name} must be {op} {minimum}, got {value!r}")
    return float(value)


def shape_str(shape: Sequence[int]) -> str:
    """``(8, 32)`` style text for a shape (also for 1-D shapes, without the trailing comma)."""
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def check_features(owner: str, x: torch.Tensor, features: int) -> None:
    """Raise if the last dimension of ``x`` is not ``features``."""
    if x.dim() < 1 or x.shape[-1] != features:
        raise ValueError(
            f"{owner}: expected input with {features} features in the last dimension, "
            f"got shape {shape_str(x.shape)}"
        )


def check_image(owner: str, x: torch.Tensor, channels: int) -> None:
    """Raise unless ``x`` is ``(N, channels, H, W)`` or unbatched ``(channels, H, W)``."""
    if x.dim() not in (3, 4) or x.shape[-3] != channels:
        raise ValueError(
            f"{owner}: expected input of shape (N, {channels}, H, W) or ({channels}, H, W), "
            f"got shape {shape_str(x.shape)}"
        )


def low_precision(t: torch.Tensor) -> bool:
    """True for float16 / bfloat16 tensors (what autocast produces)."""
    return t.dtype in (torch.float16, torch.bfloat16)
