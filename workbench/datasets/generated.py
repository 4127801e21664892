"""The data sets that need no download: scikit-learn's ``digits`` and ``diabetes`` and the
generated ``parity``, ``checkerboard`` and ``spirals`` (numpy; scikit-learn imported on first load).

Each loader returns every sample (:class:`~workbench.datasets.base.RawData`); the split by
``task.val_split`` is drawn afterwards from the same seeded generator, so a seed gives the same
data and split every time.
"""
from __future__ import annotations

import base64
from typing import Any, Mapping

import numpy as np

from workbench.datasets.base import DataError, Described, LoadRequest, RawData

__all__ = ["make_parity", "make_checkerboard", "make_spirals", "hannet_split", "DIGIT_NAMES", "load_digits",
           "load_parity", "load_checkerboard", "load_spirals", "load_diabetes", "describe_digits",
           "describe_parity", "describe_checkerboard", "describe_spirals", "describe_diabetes",
           "check_parity", "check_checkerboard", "sklearn_arrays", "SKLEARN_ARRAYS"]

DIGIT_NAMES = tuple(str(d) for d in range(10))


# ------------------------------------------------------------------------------------------- digits
def describe_digits(options: Mapping[str, Any], base_dir: Any = None) -> Described:
    return Described("classification", (1, 8, 8), DIGIT_NAMES)


#: scikit-learn's embedded sets parsed so far in this process (``"digits"`` → (data, target)).
SKLEARN_ARRAYS: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def sklearn_arrays(name: str) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ``load_<name>()`` data and targets (``digits``: 1,797 × 64, values 0–16;
    ``diabetes``: 442 × 10), parsed once per process and kept read-only. Parsing the digits CSV holds
    the GIL ~30 ms, which the app's GUI thread would wait for if a run did it: the app prefetches the
    preset's set at idle (:mod:`ui.warmup`)."""
    if name not in SKLEARN_ARRAYS:
        import sklearn.datasets

        d = getattr(sklearn.datasets, f"load_{name}")()
        SKLEARN_ARRAYS[name] = (_read_only(d.data), _read_only(d.target))
    return SKLEARN_ARRAYS[name]


def _read_only(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def load_digits(req: LoadRequest) -> RawData:
    """scikit-learn's 1,797 8×8 digits as 1×8×8 images in [0, 1] (values 0–16 divided by 16)."""
    data, target = sklearn_arrays("digits")
    x = (data.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    return RawData(x, target.astype(np.int64), "classification", DIGIT_NAMES, image=True, norm="pixels")


# ------------------------------------------------------------------------------------------- parity
def make_parity(n_inputs: int, k_active: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random binary vectors of ``n_inputs`` bits (0/1 floats); label = XOR of the first ``k_active``."""
    if not 0 <= k_active <= n_inputs:
        raise DataError(f"parity: k_active must lie in 0..n_inputs ({n_inputs}), got {k_active}",
                        "set task.options.k_active to at most task.options.n_inputs", option="k_active")
    bits = rng.integers(0, 2, size=(n, n_inputs))
    labels = bits[:, :k_active].sum(axis=1) % 2 if k_active else np.zeros(n, dtype=np.int64)
    return bits.astype(np.float32), labels.astype(np.int64)


def describe_parity(options: Mapping[str, Any], base_dir: Any = None) -> Described:
    return Described("classification", (int(options["n_inputs"]),), ("even", "odd"))


def check_parity(options: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    if options["k_active"] > options["n_inputs"]:
        return [("k_active", f"k_active = {options['k_active']} is more than n_inputs = {options['n_inputs']}",
                 "lower k_active or raise n_inputs")]
    return []


def load_parity(req: LoadRequest) -> RawData:
    o = req.options
    n_inputs, k_active = int(o["n_inputs"]), int(o["k_active"])
    x, y = make_parity(n_inputs, k_active, int(o["n_samples"]), req.rng)
    raw = RawData(x, y, "classification", ("even", "odd"))
    if o["fresh_batches"]:
        raw.fresh_parity = (n_inputs, k_active)
        raw.notes["split"] = "fresh training batches every step (as the original); validation = a fixed seeded sample"
    else:
        raw.notes["split"] = "a fixed seeded sample (the original drew a fresh batch each step)"
    return raw


# ------------------------------------------------------------------------------------- checkerboard
# HanNet's shipped train/test split of the 81×81 checkerboard grid, as a bitmask over the grid index
# 81·i + j (point (linspace(-1, 1, 81)[i], linspace(-1, 1, 81)[j]), row-major as make_checkerboard
# orders it): bit set = one of the 1,640 training points, clear = one of the 4,921 test points.
# Derived from github.com/yyy32/HanNet checkerboard_experiments/dataset/trainset.txt and testset.txt
# (commit 09f8dc0, unchanged since 7507e20) by locating every row's (x1, x2) on the grid; only this
# index list is kept here (the repository has no licence file), not the files. np.packbits order
# (most significant bit first), base64. The shipped labels (columns 3 and 4, the same 0/1 label
# twice) equal make_checkerboard(12, 6561) at every one of the 6,561 points.
_HANNET_TRAIN_MASK = (
    "BAsQGMZQwkCFCAFEgCyKAVCTKACOdEIVNA0gU1wQFEIAAtCUEoWHIICGICCQBED4ExEYAID4aEg2SMLQJ0KXUgpgGIkUIkgA"
    "AhlwAMggkAAsMeBAZpAQGAkAI5EhChIIBg5QQxAAoRsZMCYmEMsMF6HARAAApogoAgVIgBAAYGKYdEQQiKSgBgAMAFBRgGQA"
    "BEAMLJlBQYCyiKgBYUQgAAQRhhLBIwwEIQAARgkiQgIYJpAgiY7EBgwAKGAKOIhIgAAACAKGAZQCAABBioKoCIAQACeRMAIA"
    "AaABEDCQECZhIELYBAKAhARMIQ9gjAhAqCcpBEcxRQ4BAUUFKsgAAIAIAADANQJAQBNTSgEAhkDAUHi0wIOQAcQtAAYCNCGQ"
    "ATyQERYQUKEBIIQAUCAQdE2w0SMAAQOCEUIAAUiYECCABNQACR1IcEAABYQwEDQ0jUggaGAQkAALgSmIksICAAgiAAIwOaqB"
    "ACAcEQCTBJCGRCIwRJEVImhAwVBBIAEGwEEoBRJSipIBECASABHAGxBgkFIySACghQiIFBAQIIAABByYBQJIoNIkwQgCJCQB"
    "wQSgZGxRAIQOQqAeBBAA4giLLADAoEFhAUGoGlIgAOAIQFqJwwAEAEQQdY4AAmICKoEAooEEAAE4NtCABgRBeEg8AYAB5Igg"
    "AAETChMBCM0ENBxAIhDEJSSQAiWxABBQhEAKycEQUoKSDAAREgUorACEuAWFEomERiMAgAwgCbMiADhkcCFCyADC00QGCAGA"
    "BAsCYSAACCgAGMlAKIk1QgQAApIGFFBfASRAYcQABXAYR8VAWHAqCAHpriYACBIUBJCEYIMAACMNlgKSoIRAAYAjADPAxJGh"
    "JABJAKIAAJAkI0CQAkECoLBhAcOSAEAACRgJECgJKAc1/wEGAAEBAACLcYHKEgDEAVgWhSBXBTJAAGAQBOUcgEllAA+gCgAQ"
    "KCUAIGEJUkCACAYRAQAChUIDAFAYABoMAAQqAMYBKxU0cYAKAAioEoRAAsDCeTAxKQIEBJUhCQhAIgQEIAFYcQAtWBkwDQAN"
    "WkaAMCEgBCEADjThAKAKBAAHQAQKWCEGAikigAA="
)


def hannet_split() -> tuple[np.ndarray, np.ndarray]:
    """Grid indices (ascending) of HanNet's shipped 1,640 training and 4,921 test points."""
    bits = np.unpackbits(np.frombuffer(base64.b64decode("".join(_HANNET_TRAIN_MASK)), dtype=np.uint8))[:81 * 81]
    train = np.flatnonzero(bits)
    test = np.flatnonzero(bits == 0)
    return train, test


def make_checkerboard(squares: int, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """HanNet's styled problem on [-1, 1]²: a ``squares``×``squares`` board of alternating classes
    over the inner square [-0.9, 0.9)² and a class-0 border.

    ``n_samples`` = 6,561 (= 81²) gives HanNet's exact data: the 81×81 grid of ``linspace(-1, 1, 81)``
    (``utl.problem(t)`` with t = squares/2 in github.com/yyy32/HanNet ``checkerboard_experiments``;
    the shipped data set is t = 6, i.e. a 12×12 board of 6-point squares, not the function's default
    t = 4). Any other count draws that many uniform random points.
    """
    if n_samples == 81 * 81:
        idx = np.arange(81)
        iu, iv = np.meshgrid(idx, idx, indexing="ij")
        iu, iv = iu.ravel(), iv.ravel()
        grid = np.linspace(-1.0, 1.0, 81)
        x = np.stack([grid[iu], grid[iv]], axis=1).astype(np.float32)
        inside = (iu >= 4) & (iu < 76) & (iv >= 4) & (iv < 76)
        cu = np.clip(iu - 4, 0, 71) * squares // 72
        cv = np.clip(iv - 4, 0, 71) * squares // 72
    else:
        x = rng.uniform(-1.0, 1.0, size=(n_samples, 2)).astype(np.float32)
        inside = (np.abs(x) < 0.9).all(axis=1) | ((x >= -0.9) & (x < 0.9)).all(axis=1)
        cell = np.floor((x.astype(np.float64) + 0.9) / (1.8 / squares)).astype(np.int64).clip(0, squares - 1)
        cu, cv = cell[:, 0], cell[:, 1]
    y = np.where(inside, (cu + cv) % 2, 0).astype(np.int64)
    return x, y


#: class 0: the border and the squares whose row + column is even; class 1: the others
CHECKERBOARD_NAMES = ("light", "dark")


def describe_checkerboard(options: Mapping[str, Any], base_dir: Any = None) -> Described:
    return Described("classification", (2,), CHECKERBOARD_NAMES)


def check_checkerboard(options: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    if options["split"] == "hannet" and options["n_samples"] != 6561:
        return [("split", f"split 'hannet' is a split of the 81×81 grid (6,561 points), but n_samples = "
                 f"{options['n_samples']}", "set n_samples to 6561 or split to 'random'")]
    return []


def load_checkerboard(req: LoadRequest) -> RawData:
    o = req.options
    x, y = make_checkerboard(int(o["squares"]), int(o["n_samples"]), req.rng)
    raw = RawData(x, y, "classification", CHECKERBOARD_NAMES)
    if o["split"] == "hannet":
        if len(x) != 81 * 81:
            raise DataError(f"checkerboard: split 'hannet' needs the 81×81 grid (n_samples 6561), got {len(x)}",
                            "set task.options.n_samples to 6561 or split to 'random'", option="split")
        raw.split = hannet_split()
        raw.notes["split"] = "HanNet's shipped split: 1,640 train / 4,921 test grid points (val_split ignored)"
    return raw


# ------------------------------------------------------------------------------------------ spirals
def make_spirals(n: int, n_arms: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n_arms`` interleaved spiral arms (one class each, 1.5 turns, radius up to 1), ``n`` points
    in total, plus Gaussian ``noise`` (std, input units)."""
    per = max(1, n // n_arms)
    turns = 1.5
    xs, ys = [], []
    for arm in range(n_arms):
        t = np.sqrt(rng.random(per))  # radius fraction, denser towards the outside
        theta = t * turns * 2 * np.pi + 2 * np.pi * arm / n_arms
        pts = np.stack([t * np.cos(theta), t * np.sin(theta)], axis=1)
        xs.append(pts + rng.normal(0.0, noise, size=pts.shape))
        ys.append(np.full(per, arm, dtype=np.int64))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)


def _arm_names(n_arms: int) -> tuple[str, ...]:
    return tuple(f"arm {i + 1}" for i in range(int(n_arms)))


def describe_spirals(options: Mapping[str, Any], base_dir: Any = None) -> Described:
    return Described("classification", (2,), _arm_names(options["n_arms"]))


def load_spirals(req: LoadRequest) -> RawData:
    o = req.options
    x, y = make_spirals(int(o["n_samples"]), int(o["n_arms"]), float(o["noise"]), req.rng)
    return RawData(x, y, "classification", _arm_names(o["n_arms"]))


# ----------------------------------------------------------------------------------------- diabetes
def describe_diabetes(options: Mapping[str, Any], base_dir: Any = None) -> Described:
    return Described("regression", (10,), ("disease progression",))


def load_diabetes(req: LoadRequest) -> RawData:
    """442 patients, 10 features and the disease progression one year later; features and target
    are standardised with the training split's mean and std."""
    data, target = sklearn_arrays("diabetes")
    return RawData(data.astype(np.float64), target.astype(np.float64)[:, None], "regression",
                   ("disease progression",), norm="features_always")
