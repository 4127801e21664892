"""Data sets as tensors on the training device, sliced into batches there.

:func:`load_dataset` asks the dataset's entry (:mod:`workbench.datasets`) for every sample as numpy
arrays, then does what every data set shares: the split, the subset, the standardisation and the
move to the device. The entries: embedded sets (``digits``, ``diabetes``), generated ones
(``parity``, ``checkerboard``, ``spirals``), downloadable ones (``mnist``, ``fashion-mnist``,
``cifar10``, looked for under the data root: ``--data-root``, env ``AFWB_DATA``, default the
per-user data folder; fetched only when ``download=True``, otherwise a missing set raises
:class:`DatasetMissing` naming every folder searched) and your own (``csv``, ``image-folder``,
``npz``).

Splits (documented choice):

* ``mnist``, ``fashion-mnist``, ``cifar10``: validation = the official test split;
  ``task.val_split`` is ignored for them.
* every other set: ``val_split`` carves a seeded random fraction off the data (0 → no
  validation). HanNet's own checkerboard split (1,640 train / 4,921 test of the 81×81 grid, the
  files it ships) is ``options.split = "hannet"`` (``val_split`` is then ignored); ``val_split``
  = 0.75 gives a random split of the same sizes.
* ``parity`` draws ``n_samples`` random bit vectors once (seeded) and splits them. The original
  drew a fresh batch of 1,000 every step; ``options.fresh_batches`` does that too (each training
  batch drawn on the device from the run's seeded generator, so runs still repeat exactly and
  resume where they stopped), with the fixed validation part for validation and an epoch of
  n_samples·(1 − val_split) fresh samples. Without it the fixed training part is used.

Standardisation is fitted on the training split only (before ``task.limit_train``), never on the
validation part. ``task.normalize`` standardises image sets per channel (fixed published
means/stds for MNIST/Fashion/CIFAR; the training split's for digits, image folders and image
arrays) and the features of your own tables and arrays (each feature by its training-split mean
and std); ``diabetes`` is always standardised; the generated 2-D and parity sets are used as
generated. Regression targets are always standardised by the training split (one mean per target,
one common scale, so an error converts back to target units exactly: ``target_scale``).
``task.limit_train`` keeps a seeded random subset of that many training samples.
Augmentations (``crop``, ``hflip``, ``affine``, ``jitter``) run on the device on whole batches.
"""
from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from workbench.datasets import (DATASETS, DataError, DatasetMissing, LoadCancelled, LoadRequest, Progress, RawData,
                                check_options, default_options, get_dataset)
from workbench.datasets.downloadable import read_idx
from workbench.datasets.generated import hannet_split, make_checkerboard, make_parity, make_spirals
from workbench.problems import SpecError
from workbench.sections import AUGMENT_OPTIONS, AUGMENTS, TaskSpec

__all__ = [
    "DatasetMissing",
    "DataError",
    "LoadCancelled",
    "LoadedData",
    "load_dataset",
    "download_dataset",
    "default_data_root",
    "read_idx",
    "check_available",
    "hannet_split",
    "make_checkerboard",
    "make_parity",
    "make_spirals",
    "EMBEDDED",
    "DOWNLOADABLE",
]

#: Data sets that need neither a download nor the user's files.
EMBEDDED = tuple(name for name, e in DATASETS.items() if e.source in ("embedded", "generated"))
#: Data sets fetched into the data root on request.
DOWNLOADABLE = tuple(name for name, e in DATASETS.items() if e.downloads)
AUGMENTATIONS = AUGMENTS


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
    (otherwise the stored tensors are already normalised). ``class_names``: one name per class
    (classification) or per regression target. ``fresh_parity`` = (n_inputs, k_active)
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
    class_names: tuple[str, ...] = ()

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
    return tuple((key, spec.default) for key, spec in AUGMENT_OPTIONS[name].items())

def _augment_settings(name: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """One augmentation's settings: the preset's ``task.augment_options[name]`` over the schema's
    defaults (looked up once per name: this runs for every training batch)."""
    given = (options or {}).get(name) or {}
    return {key: given.get(key, default) for key, default in _augment_defaults(name)}


def augment_batch(x: torch.Tensor, names: Sequence[str], generator: torch.Generator | None = None,
                  options: Mapping[str, Mapping[str, Any]] | None = None) -> torch.Tensor:
    """Apply the named augmentations to an (N, C, H, W) batch in [0, 1], each sample drawn independently.

    ``options`` maps a name to its settings (:data:`workbench.sections.AUGMENT_OPTIONS`; the
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
# Fresh parity batches (drawn on the device)
# ---------------------------------------------------------------------------------------------
def parity_batch(n: int, n_inputs: int, k_active: int, generator: torch.Generator | None,
                 device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` fresh parity samples on ``device``: uniform random bits (0/1 floats) and the XOR of the
    first ``k_active`` as an int64 label; what ``experiment_00_xor.py`` ``generate_xor_data`` draws
    before every step (github.com/kutoga/going_deeper, commit e4d72d8)."""
    bits = torch.randint(0, 2, (n, n_inputs), generator=generator, device=device)
    labels = bits[:, :k_active].sum(dim=1) % 2
    return bits.float(), labels



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


def _root(data_root: Path | str | None) -> Path:
    return Path(data_root).expanduser() if data_root is not None else default_data_root()


def check_available(task: TaskSpec, data_root: Path | str | None = None, download: bool = False) -> None:
    """Cheap pre-flight: raise :class:`DatasetMissing` if a downloadable set's files are absent and
    ``download`` is off (other sets always pass: :func:`workbench.spec.validate` checks the user's
    files). Reads no data."""
    entry = DATASETS.get(task.dataset)
    if entry is None or download or entry.locate is None:
        return
    root = _root(data_root)
    if entry.locate(root) is None:
        raise DatasetMissing(entry.name, entry.searched(root) if entry.searched else [root],
                             "expected the files of its torchvision download")


def download_dataset(name: str, data_root: Path | str | None = None, progress: Progress | None = None) -> Path:
    """Download ``name`` into the data root (torchvision's files, MD5-checked, in its layout) and
    return the folder holding it. ``progress(what, done, total)`` may raise :class:`LoadCancelled`
    to stop; nothing half-written is left. A data set that does not download is a :class:`DataError`."""
    entry = DATASETS.get(name)
    if entry is None or entry.download is None:
        raise DataError(f"data set '{name}' is not downloadable", "downloadable: " + ", ".join(DOWNLOADABLE))
    root = _root(data_root)
    entry.download(root, progress)
    found = entry.locate(root) if entry.locate is not None else root
    return found if found is not None else root


def _standardise_columns(xt: np.ndarray, xv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column by the training part's mean and std (a constant column is only centred)."""
    mx, sx = xt.mean(0), xt.std(0)
    sx[sx == 0] = 1.0
    return ((xt - mx) / sx).astype(np.float32), ((xv - mx) / sx).astype(np.float32)


def load_dataset(task: TaskSpec, device: torch.device | str = "cpu", data_root: Path | str | None = None,
                 download: bool = False, seed: int = 0, progress: Progress | None = None) -> LoadedData:
    """Load ``task.dataset`` onto ``device`` as tensors (see the module docstring for the splits).

    Relative file paths in ``task.options`` are read from ``task.base_dir``. ``progress(what,
    done, total)`` reports long steps (decoding images, downloading) and may raise
    :class:`LoadCancelled`. Raises :class:`DatasetMissing` (files absent, no download) or
    :class:`DataError` (bad options, unreadable data: the message names the file, row or image).
    Nothing is kept from a load that fails.
    """
    device = torch.device(device)
    name = task.dataset
    try:
        entry = get_dataset(name)
    except SpecError as exc:
        raise DataError(exc.problems[0].message, exc.problems[0].fix) from None
    problems = check_options(name, task.options)
    if problems:
        raise DataError(str(problems[0]), "fix task.options")
    augment = tuple(task.augment or ())
    for a in augment:
        if a not in AUGMENTATIONS:
            raise DataError(f"unknown augmentation '{a}'", f"use one of {', '.join(AUGMENTATIONS)}")
    rng = np.random.default_rng(seed)
    options = {**default_options(name), **(task.options or {})}
    raw = entry.load(LoadRequest(name, options, _root(data_root), download, rng, task.base_dir, progress))
    xt, yt, xv, yv, target_scale, notes = _split_and_scale(raw, float(task.val_split or 0.0), bool(task.normalize), rng)
    mean_std = _image_mean_std(raw, xt) if raw.image and task.normalize else None
    limit = task.limit_train
    if limit is not None:
        limit = int(limit)
        if limit < 1:
            raise DataError(f"task.limit_train must be at least 1, got {limit}", "use a positive count or null")
        if limit < len(xt):
            keep = np.sort(rng.permutation(len(xt))[:limit])
            xt, yt = xt[keep], yt[keep]
    classification = raw.task == "classification"

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
        return (t.long() if classification else t.float()).to(device)

    train_x, train_y = to_x(xt), to_y(yt)
    val_x, val_y = to_x(xv), to_y(yv)
    if train_x is None or train_y is None:
        raise DataError(f"data set '{name}' has no training samples after the split",
                        "lower task.val_split or raise task.limit_train")
    if raw.image and task.normalize and raw.norm == "channels":  # fitted on the training tensor
        dims = (0, *range(2, train_x.dim()))
        mean_std = (train_x.mean(dim=dims).tolist(), [s or 1.0 for s in train_x.std(dim=dims, unbiased=False).tolist()])
    batch_mean = batch_std = None
    if raw.image and mean_std is not None:
        c = train_x.shape[1]
        mean = torch.tensor(mean_std[0], device=device, dtype=torch.float32).reshape(1, -1, 1, 1).expand(1, c, 1, 1)
        std = torch.tensor(mean_std[1], device=device, dtype=torch.float32).reshape(1, -1, 1, 1).expand(1, c, 1, 1)
        if augment:
            batch_mean, batch_std = mean.contiguous(), std.contiguous()
        else:  # normalise once, in place on the device
            train_x = train_x.sub_(mean).div_(std)
            if val_x is not None:
                val_x = val_x.sub_(mean).div_(std)
    if augment and not raw.image:
        raise DataError(f"augmentations {list(augment)} need an image data set, '{name}' is not one",
                        "clear task.augment")
    output_dim = len(raw.names) if classification else int(train_y.shape[1])
    return LoadedData(
        name=name, task=raw.task, input_shape=tuple(train_x.shape[1:]), output_dim=output_dim,
        train_x=train_x, train_y=train_y, val_x=val_x, val_y=val_y, device=device,
        augment=augment, augment_options=dict(task.augment_options or {}), fresh_parity=raw.fresh_parity,
        batch_mean=batch_mean, batch_std=batch_std, target_scale=target_scale, notes=notes,
        class_names=tuple(raw.names),
    )


def _split_and_scale(raw: RawData, val_split: float, normalize: bool, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, dict[str, Any]]:
    """The training and validation parts (the official split, the entry's, or a seeded random
    one), features and regression targets standardised with the training part's statistics."""
    notes = dict(raw.notes)
    if raw.val_x is not None and raw.val_y is not None:
        xt, yt, xv, yv = raw.x, raw.y, raw.val_x, raw.val_y
    else:
        tr, va = raw.split if raw.split is not None else _split(len(raw.x), val_split, rng)
        xt, yt, xv, yv = raw.x[tr], raw.y[tr], raw.x[va], raw.y[va]
    if raw.norm == "features_always" or (raw.norm == "features" and normalize):
        xt, xv = _standardise_columns(xt, xv)
    target_scale = 1.0
    if raw.task == "regression":
        if yt.shape[1] == 1:  # one target: its mean and std
            my: Any = float(yt.mean())
            scale = float(yt.std()) or 1.0
            notes["target_mean"] = my
        else:  # a mean per target, one common scale: the root of the mean variance
            my = yt.mean(0)
            scale = math.sqrt(float(yt.var(0).mean())) or 1.0
            notes["target_mean"] = [float(m) for m in my]
        yt, yv = ((yt - my) / scale).astype(np.float32), ((yv - my) / scale).astype(np.float32)
        target_scale = scale
        notes["target_std"] = scale
    return xt, yt, xv, yv, target_scale, notes


def _image_mean_std(raw: RawData, xt: np.ndarray) -> tuple[Sequence[float], Sequence[float]] | None:
    """Per-channel mean and std for images, before any subset: the published ones, or one over all
    training pixels (``pixels``); ``channels`` is fitted on the device tensor by the caller."""
    if raw.norm == "published":
        return raw.mean_std
    if raw.norm == "pixels":
        return (float(xt.mean()),), (float(xt.std()) or 1.0,)
    return None
