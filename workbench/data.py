"""Data sets as tensors on the training device, sliced into batches there.

Embedded sets (never download): ``digits`` (scikit-learn's 8×8 handwritten digits as 1×8×8
images in [0, 1]), ``parity`` (n binary inputs, label = parity of the first k: the Going-Deeper
XOR task), ``checkerboard`` (the HanNet "styled" 2-D problem), ``spirals`` (two interleaved
spirals) and ``diabetes`` (scikit-learn regression set, inputs and target z-scored).

MNIST-format sets (``mnist``, ``fashion-mnist``) are read from the four standard IDX files
(gzip or plain) with numpy; ``cifar10`` through torchvision. Each is looked for under the data
root (``--data-root``; env ``AFWB_DATA``; default the per-user data folder): directly in the
root, in ``<root>/<name>`` and in torchvision's layout (``<root>/MNIST/raw``,
``<root>/FashionMNIST/raw``, ``<root>/cifar-10-batches-py``). Nothing is downloaded unless the
caller passes ``download=True`` (the command line's ``--download``); otherwise a missing set
raises :class:`DatasetMissing` naming every folder searched.

Splits (documented choice):

* ``mnist``, ``fashion-mnist``, ``cifar10``: validation = the official test split;
  ``task.val_split`` is ignored for them.
* every embedded set (``digits``, ``parity``, ``checkerboard``, ``spirals``, ``diabetes``):
  ``val_split`` carves a seeded random fraction off the generated/shipped data (0 → no
  validation). HanNet's own checkerboard split (1,640 train / 4,921 test of the 81×81 grid, the
  files it ships) is ``options.split = "hannet"`` (``val_split`` is then ignored); ``val_split``
  = 0.75 gives a random split of the same sizes.
* ``parity`` draws ``n_samples`` random bit vectors once (seeded) and splits them. The original
  drew a fresh batch of 1,000 every step; ``options.fresh_batches`` does that too (each training
  batch drawn on the device from the run's seeded generator, so runs still repeat exactly and
  resume where they stopped), with the fixed validation part for validation and an epoch of
  n_samples·(1 − val_split) fresh samples. Without it the fixed training part is used.

``task.limit_train`` keeps a seeded random subset of that many training samples.
``task.normalize`` standardises image sets per channel (fixed published means/stds for
MNIST/Fashion/CIFAR, the training set's for digits); tabular/2-D sets are used as generated.
Augmentations (``crop``, ``hflip``, ``affine``, ``jitter``) run on the device on whole batches.
"""
from __future__ import annotations

import functools
import gzip
import math
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from workbench.catalog import DATASET_OPTIONS

__all__ = [
    "DatasetMissing",
    "DataError",
    "LoadedData",
    "load_dataset",
    "default_data_root",
    "read_idx",
    "check_available",
    "hannet_split",
    "make_checkerboard",
    "EMBEDDED",
    "DOWNLOADABLE",
]

EMBEDDED = ("digits", "parity", "checkerboard", "spirals", "diabetes")
DOWNLOADABLE = ("mnist", "fashion-mnist", "cifar10")

_MNIST_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "val_x": "t10k-images-idx3-ubyte",
    "val_y": "t10k-labels-idx1-ubyte",
}
_TV_FOLDER = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
_MEAN_STD = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}
AUGMENTATIONS = ("crop", "hflip", "affine", "jitter")


class DataError(ValueError):
    """A data set could not be prepared as asked (bad option, unknown name)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class DatasetMissing(DataError):
    """The files of a downloadable data set are not on disk and downloading was not allowed."""

    def __init__(self, name: str, searched: Sequence[Path], detail: str = "") -> None:
        folders = ", ".join(str(p) for p in searched)
        message = f"data set '{name}' not found; looked in: {folders}"
        if detail:
            message += f" ({detail})"
        hint = ("pass --download (or turn on 'download data sets' in the app's settings), "
                "or point --data-root at a folder holding the files")
        super().__init__(message, hint)
        self.name = name
        self.searched = [Path(p) for p in searched]

    def __str__(self) -> str:  # one line with the fix
        return f"{self.message}; {self.hint}"


def default_data_root() -> Path:
    """Where data sets live: env ``AFWB_DATA`` if set, else ``user_data_dir("afwb")/data``."""
    env = os.environ.get("AFWB_DATA")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("afwb")) / "data"


# ---------------------------------------------------------------------------------------------
# The loaded data
# ---------------------------------------------------------------------------------------------
@dataclass
class LoadedData:
    """Train/validation tensors on ``device`` and how to cut them into batches.

    ``train_y``/``val_y`` are int64 class labels (classification) or float targets of shape
    (N, output_dim) (regression). ``target_scale`` converts a regression error in stored
    (z-scored) units back into target units (the target's standard deviation; 1.0 otherwise).
    ``batch_mean``/``batch_std``: when set, batches are standardised after augmentation
    (otherwise the stored tensors are already normalised). ``fresh_parity`` = (n_inputs, k_active)
    makes :attr:`fresh_batches` true: every training batch is then drawn fresh by
    :meth:`fresh_batch` and ``train_x``/``train_y`` only fix the epoch length.
    """

    name: str
    task: str
    input_shape: tuple[int, ...]
    output_dim: int
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor | None
    val_y: torch.Tensor | None
    device: torch.device
    augment: tuple[str, ...] = ()
    augment_options: dict[str, Any] = field(default_factory=dict)
    fresh_parity: tuple[int, int] | None = None
    batch_mean: torch.Tensor | None = None
    batch_std: torch.Tensor | None = None
    target_scale: float = 1.0
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def train_size(self) -> int:
        return int(self.train_x.shape[0])

    @property
    def val_size(self) -> int:
        return 0 if self.val_x is None else int(self.val_x.shape[0])

    def steps_per_epoch(self, batch_size: int) -> int:
        """Batches per epoch; a trailing batch of one sample is dropped (BatchNorm cannot train on it)."""
        n = self.train_size
        full, rest = divmod(n, batch_size)
        return full + (1 if rest > 1 else 0)

    def batch_slices(self, batch_size: int) -> list[tuple[int, int]]:
        n = self.train_size
        out = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
        return out[: self.steps_per_epoch(batch_size)]

    def permutation(self, generator: torch.Generator | None) -> torch.Tensor:
        """A device-side random order of the training set (one per epoch)."""
        return torch.randperm(self.train_size, generator=generator, device=self.device)

    def train_batch(self, perm: torch.Tensor, start: int, stop: int,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Training batch ``perm[start:stop]``: gathered, augmented and normalised on the device."""
        idx = perm[start:stop]
        x = self.train_x.index_select(0, idx)
        y = self.train_y.index_select(0, idx)
        if self.augment:
            x = augment_batch(x, self.augment, generator, self.augment_options)
        if self.batch_mean is not None:
            x = (x - self.batch_mean) / self.batch_std
        return x, y

    @property
    def fresh_batches(self) -> bool:
        """True when every training batch is drawn fresh (:meth:`fresh_batch`) instead of sliced."""
        return self.fresh_parity is not None

    def fresh_batch(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` new random samples drawn on the device from ``generator`` (no host sync)."""
        if self.fresh_parity is None:
            raise DataError(f"data set '{self.name}' has no fresh batches", "slice the stored training set")
        n_inputs, k_active = self.fresh_parity
        return parity_batch(n, n_inputs, k_active, generator, self.device)

    def train_batches(self, batch_size: int, generator: torch.Generator | None = None
                      ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of shuffled training batches (convenience over :meth:`train_batch`)."""
        perm = self.permutation(generator)
        for start, stop in self.batch_slices(batch_size):
            yield self.train_batch(perm, start, stop, generator)

    def val_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Validation batches in order, normalised, never augmented."""
        if self.val_x is None or self.val_y is None:
            return
        n = self.val_size
        for start in range(0, n, batch_size):
            x = self.val_x[start:start + batch_size]
            if self.batch_mean is not None:
                x = (x - self.batch_mean) / self.batch_std
            yield x, self.val_y[start:start + batch_size]


# ---------------------------------------------------------------------------------------------
# Device-side augmentation (whole batches, no per-sample Python)
# ---------------------------------------------------------------------------------------------
def _rand(shape: Sequence[int], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return torch.rand(*shape, generator=generator, device=device)


@functools.lru_cache(maxsize=None)
def _augment_defaults(name: str) -> tuple[tuple[str, Any], ...]:
    from workbench.spec import augment_options_schema

    return tuple((key, spec.default) for key, spec in augment_options_schema()[name].items())


def _augment_settings(name: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """One augmentation's settings: the preset's ``task.augment_options[name]`` over the schema's
    defaults (looked up once per name: this runs for every training batch)."""
    given = (options or {}).get(name) or {}
    return {key: given.get(key, default) for key, default in _augment_defaults(name)}


def augment_batch(x: torch.Tensor, names: Sequence[str], generator: torch.Generator | None = None,
                  options: Mapping[str, Mapping[str, Any]] | None = None) -> torch.Tensor:
    """Apply the named augmentations to an (N, C, H, W) batch in [0, 1], each sample drawn independently.

    ``options`` maps a name to its settings (:func:`workbench.spec.augment_options_schema`; the
    defaults are given here):

    * ``crop``: zero-pad ``padding`` (4) pixels and crop back at a random offset;
    * ``hflip``: mirror each sample with probability ``p`` (0.5);
    * ``affine``: torchvision ``RandomAffine(degrees, translate=(t, t), scale=(scale_min, scale_max))``
      semantics: angle ~ U(−degrees, degrees) (10), zoom ~ U(scale_min, scale_max) (1–1.2) about the
      centre, then a shift of round(U(−t·W, t·W)) × round(U(−t·H, t·H)) whole pixels (t = ``translate``,
      0.1); zero fill; ``interpolation`` bilinear (default) or nearest (torchvision's default);
    * ``jitter``: brightness ×U(1 − b, 1 + b) and contrast ×U(1 − c, 1 + c) (b = c = 0.2), clamped to [0, 1].
    """
    if x.dim() != 4:
        return x
    n, c, h, w = x.shape
    dev = x.device
    for name in names:
        if name not in AUGMENTATIONS:
            raise DataError(f"unknown augmentation '{name}'", f"use one of {', '.join(AUGMENTATIONS)}")
        o = _augment_settings(name, options)
        if name == "crop":
            pad = int(o["padding"])
            padded = F.pad(x, (pad, pad, pad, pad))
            oy = (_rand((n,), generator, dev) * (2 * pad + 1)).long().clamp_(max=2 * pad)
            ox = (_rand((n,), generator, dev) * (2 * pad + 1)).long().clamp_(max=2 * pad)
            rows = (oy[:, None] + torch.arange(h, device=dev))[:, None, :, None].expand(n, c, h, w + 2 * pad)
            cols = (ox[:, None] + torch.arange(w, device=dev))[:, None, None, :].expand(n, c, h, w)
            tmp = padded.gather(2, rows)
            x = tmp.gather(3, cols)
        elif name == "hflip":
            flip = _rand((n, 1, 1, 1), generator, dev) < float(o["p"])
            x = torch.where(flip, x.flip(-1), x)
        elif name == "affine":
            angle = (_rand((n,), generator, dev) * 2 - 1) * math.radians(float(o["degrees"]))
            lo, hi = float(o["scale_min"]), float(o["scale_max"])
            scale = lo + (hi - lo) * _rand((n,), generator, dev)
            t = float(o["translate"])
            dx = torch.round((_rand((n,), generator, dev) * 2 - 1) * (t * w))  # whole pixels, as torchvision
            dy = torch.round((_rand((n,), generator, dev) * 2 - 1) * (t * h))
            # affine_grid maps output coordinates p (in [-1, 1], align_corners=False: one pixel = 2/size)
            # to input coordinates A·(p − s) with A = (rotation·zoom)⁻¹: the content is rotated and
            # zoomed about the centre, then shifted by s = (2·dx/W, 2·dy/H), like torchvision's inverse matrix
            cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
            sx, sy = dx * (2.0 / w), dy * (2.0 / h)
            theta = torch.stack([torch.stack([cos, -sin, -(cos * sx - sin * sy)], 1),
                                 torch.stack([sin, cos, -(sin * sx + cos * sy)], 1)], 1)
            grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode=str(o["interpolation"]), padding_mode="zeros", align_corners=False)
        elif name == "jitter":
            b, k = float(o["brightness"]), float(o["contrast"])
            bright = (1.0 - b) + 2 * b * _rand((n, 1, 1, 1), generator, dev)
            contrast = (1.0 - k) + 2 * k * _rand((n, 1, 1, 1), generator, dev)
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = ((x * bright - mean) * contrast + mean).clamp(0.0, 1.0)
    return x


# ---------------------------------------------------------------------------------------------
# IDX (MNIST-format) files
# ---------------------------------------------------------------------------------------------
#: DEFLATE cannot expand data more than about 1032 : 1, so a .gz of n bytes holds at most this × n.
_GZIP_MAX_RATIO = 1032


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (``.gz`` or plain) into a numpy array (uint8 data, big-endian header).

    The header's size (the product of its dimensions, in Python integers: no overflow) is checked
    against the file before any data is read: a plain file must hold exactly that many bytes, a
    ``.gz`` no more than DEFLATE's ratio allows; then exactly that many bytes are read, so a
    decompression bomb is never inflated further. A truncated, corrupt or over-long file is a
    :class:`DataError`."""
    path = Path(path)
    gz = str(path).endswith(".gz")
    retry = "re-download the data set (delete the damaged file first)"
    try:
        with (gzip.open if gz else open)(path, "rb") as fh:
            head = fh.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0:
                raise DataError(f"{path} is not an IDX file (bad magic number)", "re-download the data set")
            dtype_code, ndim = head[2], head[3]
            dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
            if dtype_code not in dtypes:
                raise DataError(f"{path}: unknown IDX data type 0x{dtype_code:02x}", "re-download the data set")
            dtype = np.dtype(dtypes[dtype_code])
            raw_dims = fh.read(4 * ndim)
            if len(raw_dims) < 4 * ndim:
                raise DataError(f"{path} is truncated (its header ends early)", retry)
            dims = [int.from_bytes(raw_dims[4 * i:4 * i + 4], "big") for i in range(ndim)]
            count = math.prod(dims)
            need = count * dtype.itemsize
            size = os.path.getsize(path)
            room = size * _GZIP_MAX_RATIO if gz else size - 4 - 4 * ndim
            if need > room:
                what = f"a {size:,}-byte .gz can hold at most {room:,}" if gz else f"the file holds {room:,}"
                raise DataError(f"{path} is truncated or damaged: its header says {'×'.join(map(str, dims))} = "
                                f"{count:,} values ({need:,} bytes), but {what}", retry)
            raw = fh.read(need)
            if len(raw) < need:
                raise DataError(f"{path} is truncated ({len(raw) // dtype.itemsize:,} of {count:,} values)", retry)
            if fh.read(1):
                raise DataError(f"{path} is damaged: it holds more data than its header's {count:,} values", retry)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path} cannot be read, it is truncated or corrupt: {exc}", retry) from None
    return np.frombuffer(raw, dtype=dtype).reshape(tuple(dims)).copy()  # writable: torch.from_numpy needs it


def _find_idx_folder(folders: Sequence[Path]) -> dict[str, Path] | None:
    for folder in folders:
        found: dict[str, Path] = {}
        for key, stem in _MNIST_FILES.items():
            for cand in (folder / stem, folder / (stem + ".gz")):
                if cand.is_file():
                    found[key] = cand
                    break
        if len(found) == 4:
            return found
    return None


def _mnist_folders(name: str, root: Path) -> list[Path]:
    tv = _TV_FOLDER[name]
    return [root, root / name, root / tv / "raw", root / name / tv / "raw"]


def _load_mnist_like(name: str, root: Path, download: bool) -> tuple[np.ndarray, ...]:
    folders = _mnist_folders(name, root)
    files = _find_idx_folder(folders)
    if files is None and download:
        import torchvision

        cls = torchvision.datasets.MNIST if name == "mnist" else torchvision.datasets.FashionMNIST
        try:
            for train in (True, False):
                cls(str(root), train=train, download=True)
        except Exception as exc:  # network errors and the like
            raise DataError(f"downloading '{name}' into {root} failed: {exc}",
                            "check the network connection, or copy the four IDX files into the data root") from exc
        files = _find_idx_folder(folders)
    if files is None:
        raise DatasetMissing(name, folders, "expected the four IDX files train-images-idx3-ubyte[.gz], "
                                            "train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], "
                                            "t10k-labels-idx1-ubyte[.gz]")
    arrays = {k: read_idx(p) for k, p in files.items()}
    return arrays["train_x"], arrays["train_y"], arrays["val_x"], arrays["val_y"]


def _load_cifar10(root: Path, download: bool) -> tuple[np.ndarray, ...]:
    folders = [root, root / "cifar10"]
    base = next((f for f in folders if (f / "cifar-10-batches-py" / "data_batch_1").is_file()), None)
    if base is None and not download:
        raise DatasetMissing("cifar10", [f / "cifar-10-batches-py" for f in folders])
    import torchvision

    base = base or root
    try:
        train = torchvision.datasets.CIFAR10(str(base), train=True, download=download)
        test = torchvision.datasets.CIFAR10(str(base), train=False, download=download)
    except RuntimeError as exc:
        raise DatasetMissing("cifar10", [f / "cifar-10-batches-py" for f in folders], str(exc)) from exc
    except Exception as exc:
        raise DataError(f"loading 'cifar10' from {base} failed: {exc}",
                        "check the network connection or re-download the data set") from exc
    to_chw = lambda a: np.ascontiguousarray(a.transpose(0, 3, 1, 2))  # noqa: E731
    return (to_chw(train.data), np.asarray(train.targets), to_chw(test.data), np.asarray(test.targets))


# ---------------------------------------------------------------------------------------------
# Embedded generators
# ---------------------------------------------------------------------------------------------
def _opt(options: Mapping[str, Any], dataset: str, key: str) -> Any:
    """A dataset option from the preset, else its default from :data:`workbench.catalog.DATASET_OPTIONS`
    (the one place option defaults are written)."""
    value = options.get(key)
    return DATASET_OPTIONS[dataset][key].default if value is None else value


def make_parity(n_inputs: int, k_active: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random binary vectors of ``n_inputs`` bits (0/1 floats); label = XOR of the first ``k_active``."""
    if not 0 <= k_active <= n_inputs:
        raise DataError(f"parity: k_active must lie in 0..n_inputs ({n_inputs}), got {k_active}",
                        "set task.options.k_active to at most task.options.n_inputs")
    bits = rng.integers(0, 2, size=(n, n_inputs))
    labels = bits[:, :k_active].sum(axis=1) % 2 if k_active else np.zeros(n, dtype=np.int64)
    return bits.astype(np.float32), labels.astype(np.int64)


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
    import base64

    bits = np.unpackbits(np.frombuffer(base64.b64decode("".join(_HANNET_TRAIN_MASK)), dtype=np.uint8))[:81 * 81]
    train = np.flatnonzero(bits)
    test = np.flatnonzero(bits == 0)
    return train, test


def parity_batch(n: int, n_inputs: int, k_active: int, generator: torch.Generator | None,
                 device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` fresh parity samples on ``device``: uniform random bits (0/1 floats) and the XOR of the
    first ``k_active`` as an int64 label; what ``experiment_00_xor.py`` ``generate_xor_data`` draws
    before every step (github.com/kutoga/going_deeper, commit e4d72d8)."""
    bits = torch.randint(0, 2, (n, n_inputs), generator=generator, device=device)
    labels = bits[:, :k_active].sum(dim=1) % 2
    return bits.float(), labels


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


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------
def _split(n: int, val_split: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if not 0.0 <= val_split < 1.0:
        raise DataError(f"task.val_split must lie in [0, 1), got {val_split}", "use e.g. 0.1")
    perm = rng.permutation(n)
    n_val = int(round(n * val_split))
    if val_split > 0 and n_val == 0:
        n_val = 1
    return perm[n_val:], perm[:n_val]


def check_available(task: Any, data_root: Path | str | None = None, download: bool = False) -> None:
    """Cheap pre-flight: raise :class:`DatasetMissing` if a downloadable set's files are absent and
    ``download`` is off (embedded sets always pass). Reads no data."""
    name = str(_attr(task, "dataset", "digits"))
    root = Path(data_root).expanduser() if data_root is not None else default_data_root()
    if download or name in EMBEDDED:
        return
    if name in _TV_FOLDER:
        folders = _mnist_folders(name, root)
        if _find_idx_folder(folders) is None:
            raise DatasetMissing(name, folders, "expected the four IDX files (train/t10k images and labels)")
    elif name == "cifar10":
        folders = [root, root / "cifar10"]
        if not any((f / "cifar-10-batches-py" / "data_batch_1").is_file() for f in folders):
            raise DatasetMissing("cifar10", [f / "cifar-10-batches-py" for f in folders])


def _attr(task: Any, name: str, default: Any) -> Any:
    return getattr(task, name, default) if not isinstance(task, Mapping) else task.get(name, default)


def load_dataset(task: Any, device: torch.device | str = "cpu", data_root: Path | str | None = None,
                 download: bool = False, seed: int = 0) -> LoadedData:
    """Load ``task.dataset`` onto ``device`` as tensors (see the module docstring for the splits).

    Raises :class:`DatasetMissing` (files absent, no download) or :class:`DataError` (bad options).
    """
    device = torch.device(device)
    name = str(_attr(task, "dataset", "digits"))
    options: Mapping[str, Any] = dict(_attr(task, "options", {}) or {})
    val_split = float(_attr(task, "val_split", 0.1) or 0.0)
    normalize = bool(_attr(task, "normalize", True))
    augment = tuple(_attr(task, "augment", ()) or ())
    augment_options = dict(_attr(task, "augment_options", {}) or {})
    limit = _attr(task, "limit_train", None)
    for a in augment:
        if a not in AUGMENTATIONS:
            raise DataError(f"unknown augmentation '{a}'", f"use one of {', '.join(AUGMENTATIONS)}")
    rng = np.random.default_rng(seed)
    root = Path(data_root).expanduser() if data_root is not None else default_data_root()
    task_kind = "classification"
    target_scale = 1.0
    image = False
    mean_std: tuple[Sequence[float], Sequence[float]] | None = None
    notes: dict[str, Any] = {}
    fresh_parity: tuple[int, int] | None = None

    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        x = (d.data.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
        y = d.target.astype(np.int64)
        tr, va = _split(len(x), val_split, rng)
        xt, yt, xv, yv = x[tr], y[tr], x[va], y[va]
        image = True
        if normalize:
            mean_std = ((float(xt.mean()),), (float(xt.std()) or 1.0,))
        classes = 10
    elif name == "parity":
        n_inputs = int(_opt(options, "parity", "n_inputs"))
        k_active = int(_opt(options, "parity", "k_active"))
        x, y = make_parity(n_inputs, k_active, int(_opt(options, "parity", "n_samples")), rng)
        tr, va = _split(len(x), val_split, rng)
        xt, yt, xv, yv = x[tr], y[tr], x[va], y[va]
        classes = 2
        if _opt(options, "parity", "fresh_batches"):
            fresh_parity = (n_inputs, k_active)
            notes["split"] = "fresh training batches every step (as the original); validation = a fixed seeded sample"
        else:
            notes["split"] = "a fixed seeded sample (the original drew a fresh batch each step)"
    elif name == "checkerboard":
        x, y = make_checkerboard(int(_opt(options, "checkerboard", "squares")), int(_opt(options, "checkerboard", "n_samples")), rng)
        if _opt(options, "checkerboard", "split") == "hannet":
            if len(x) != 81 * 81:
                raise DataError(f"checkerboard: split 'hannet' needs the 81×81 grid (n_samples 6561), got {len(x)}",
                                "set task.options.n_samples to 6561 or split to 'random'")
            tr, va = hannet_split()
            notes["split"] = "HanNet's shipped split: 1,640 train / 4,921 test grid points (val_split ignored)"
        else:
            tr, va = _split(len(x), val_split, rng)
        xt, yt, xv, yv = x[tr], y[tr], x[va], y[va]
        classes = 2
    elif name == "spirals":
        n_arms = int(_opt(options, "spirals", "n_arms"))
        x, y = make_spirals(int(_opt(options, "spirals", "n_samples")), n_arms,
                            float(_opt(options, "spirals", "noise")), rng)
        tr, va = _split(len(x), val_split, rng)
        xt, yt, xv, yv = x[tr], y[tr], x[va], y[va]
        classes = n_arms
    elif name == "diabetes":
        from sklearn.datasets import load_diabetes

        d = load_diabetes()
        x = d.data.astype(np.float64)
        y = d.target.astype(np.float64)[:, None]
        tr, va = _split(len(x), val_split, rng)
        mx, sx = x[tr].mean(0), x[tr].std(0)
        sx[sx == 0] = 1.0
        my, sy = float(y[tr].mean()), float(y[tr].std()) or 1.0
        x = ((x - mx) / sx).astype(np.float32)
        y = ((y - my) / sy).astype(np.float32)
        xt, yt, xv, yv = x[tr], y[tr], x[va], y[va]
        task_kind, classes, target_scale = "regression", 1, sy
        notes["target_mean"], notes["target_std"] = my, sy
    elif name in ("mnist", "fashion-mnist"):
        xt, yt, xv, yv = _load_mnist_like(name, root, download)
        xt = xt[:, None]
        xv = xv[:, None]
        image, classes = True, 10
        mean_std = _MEAN_STD[name] if normalize else None
        notes["split"] = "validation = official test split"
    elif name == "cifar10":
        xt, yt, xv, yv = _load_cifar10(root, download)
        image, classes = True, 10
        mean_std = _MEAN_STD[name] if normalize else None
        notes["split"] = "validation = official test split"
    else:
        known = ", ".join(EMBEDDED + DOWNLOADABLE)
        raise DataError(f"unknown data set '{name}'", f"set task.dataset to one of: {known}")

    if limit is not None:
        limit = int(limit)
        if limit < 1:
            raise DataError(f"task.limit_train must be at least 1, got {limit}", "use a positive count or null")
        if limit < len(xt):
            keep = np.sort(rng.permutation(len(xt))[:limit])
            xt, yt = xt[keep], yt[keep]

    def to_x(a: np.ndarray | None) -> torch.Tensor | None:
        if a is None or len(a) == 0:
            return None
        t = torch.from_numpy(np.ascontiguousarray(a))
        if t.dtype == torch.uint8:  # images: uint8 → float in [0, 1] on the device (4× less copying)
            return t.to(device).float().div_(255.0)
        return t.float().to(device)

    def to_y(a: np.ndarray | None) -> torch.Tensor | None:
        if a is None or len(a) == 0:
            return None
        t = torch.from_numpy(np.ascontiguousarray(a))
        return (t.long() if task_kind == "classification" else t.float()).to(device)

    train_x, train_y = to_x(xt), to_y(yt)
    val_x, val_y = to_x(xv), to_y(yv)
    if train_x is None or train_y is None:
        raise DataError(f"data set '{name}' has no training samples after the split",
                        "lower task.val_split or raise task.limit_train")
    batch_mean = batch_std = None
    if image and mean_std is not None:
        c = train_x.shape[1]
        mean = torch.tensor(mean_std[0], device=device, dtype=torch.float32).reshape(1, -1, 1, 1).expand(1, c, 1, 1)
        std = torch.tensor(mean_std[1], device=device, dtype=torch.float32).reshape(1, -1, 1, 1).expand(1, c, 1, 1)
        if augment:
            batch_mean, batch_std = mean.contiguous(), std.contiguous()
        else:  # normalise once, in place on the device
            train_x = train_x.sub_(mean).div_(std)
            if val_x is not None:
                val_x = val_x.sub_(mean).div_(std)
    if augment and not image:
        raise DataError(f"augmentations {list(augment)} need an image data set, '{name}' is not one",
                        "clear task.augment")
    return LoadedData(
        name=name, task=task_kind, input_shape=tuple(train_x.shape[1:]), output_dim=classes,
        train_x=train_x, train_y=train_y, val_x=val_x, val_y=val_y, device=device,
        augment=augment, augment_options=augment_options, fresh_parity=fresh_parity, batch_mean=batch_mean, batch_std=batch_std, target_scale=target_scale, notes=notes,
    )
