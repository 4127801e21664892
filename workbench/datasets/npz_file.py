"""Your own arrays: a NumPy ``.npz`` file holding ``x`` (the inputs) and ``y`` (the targets).

``x`` has one row per sample: (N, features) for a table, (N, H, W) for grey images (read as
1×H×W), (N, C, H, W) for images with channels; uint8 images are scaled to [0, 1]. ``y`` is (N,)
whole numbers for classification (the class of each sample; the classes are its different values,
named by an optional string array ``class_names`` in the file when ``y`` holds 0 … k − 1) or
(N,) / (N, k) floats for regression. The shape is read from the array headers, without loading
``x``, and cached by path, size and modification time.
"""
from __future__ import annotations

import functools
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from workbench.datasets.base import DataError, Described, LoadRequest, RawData, resolve_path, stat_data_file
from workbench.params import ParamSpec

__all__ = ["OPTIONS", "describe_npz", "load_npz"]

OPTIONS = (
    ParamSpec("path", "path", "", "the .npz file with arrays x (inputs, one row per sample) and y (targets) "
              "(relative to the preset file's folder, or absolute)", label="File",
              file_filter="NumPy arrays (*.npz);;All files (*)"),
)


@dataclass(frozen=True)
class _Header:
    path: Path
    x_shape: tuple[int, ...]
    x_dtype: np.dtype
    y: np.ndarray
    names: tuple[str, ...]
    task: str
    named: bool = False  # the file's class_names name the classes (y holds their indices)


def _member_header(archive: zipfile.ZipFile, member: str) -> tuple[tuple[int, ...], np.dtype]:
    with archive.open(member) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    return tuple(int(s) for s in shape), np.dtype(dtype)


def _header(options: Mapping[str, Any], base_dir: Path | None) -> _Header:
    if not str(options.get("path", "")).strip():
        raise DataError("no .npz file chosen", "set task.options.path (in the app: Task → Dataset options → "
                        "Import…)", option="path")
    path = resolve_path(options["path"], base_dir)
    st = stat_data_file(path, ".npz file", "choose a NumPy .npz file")
    return _read_header(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _read_header(name: str, size: int, mtime_ns: int) -> _Header:
    path = Path(name)
    fix = "save it with numpy.savez(path, x=inputs, y=targets)"
    try:
        with zipfile.ZipFile(path) as archive:
            members = {m[:-4]: m for m in archive.namelist() if m.endswith(".npy")}
            missing = [k for k in ("x", "y") if k not in members]
            if missing:
                have = ", ".join(sorted(members)) or "none"
                raise DataError(f"{path} has no array {' or '.join(repr(m) for m in missing)} (its arrays: {have})",
                                fix, option="path")
            x_shape, x_dtype = _member_header(archive, members["x"])
            with np.load(path, allow_pickle=False) as arrays:
                y = np.asarray(arrays["y"])
                names = np.asarray(arrays["class_names"]) if "class_names" in members else None
    except DataError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DataError(f"cannot read {path} as a NumPy .npz file: {exc}", fix, option="path") from None
    if x_dtype.kind not in "biuf":
        raise DataError(f"{path}: x holds {x_dtype} values, not numbers", "store the inputs as numbers",
                        option="path")
    if len(x_shape) not in (2, 3, 4):
        raise DataError(f"{path}: x has shape {x_shape}; expected (samples, features), (samples, height, width) "
                        "or (samples, channels, height, width)", fix, option="path")
    if y.ndim not in (1, 2) or y.dtype.kind not in "biuf":
        raise DataError(f"{path}: y has shape {y.shape} and type {y.dtype}; expected one number (or a row of "
                        "numbers) per sample", fix, option="path")
    if len(y) != x_shape[0]:
        raise DataError(f"{path}: x has {x_shape[0]:,} samples but y has {len(y):,} (mismatched lengths)",
                        "give x and y one row per sample each", option="path")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise DataError(f"{path}: y holds NaN or infinite values", "remove or fix those samples", option="path")
    if y.dtype.kind == "f":
        outputs = 1 if y.ndim == 1 else y.shape[1]
        target_names = ("y",) if outputs == 1 else tuple(f"y{i + 1}" for i in range(outputs))
        return _Header(path, x_shape, x_dtype, y, target_names, "regression")
    if y.ndim != 1:
        raise DataError(f"{path}: y has shape {y.shape}; class labels must be one whole number per sample",
                        "store y as a 1-D array", option="path")
    values = np.unique(y)
    if len(values) < 2:
        raise DataError(f"{path}: every sample of y has the one class {values[0] if len(values) else '?'}, so "
                        "there is nothing to classify", "include samples of at least two classes", option="path")
    if names is not None:
        if names.ndim != 1 or names.dtype.kind not in "US" or values.min() < 0 or values.max() >= len(names):
            raise DataError(f"{path}: class_names must be strings, one per class 0 … k − 1 of y "
                            f"(y holds {values.min()} … {values.max()}, class_names has {names.size})",
                            "fix class_names or leave it out", option="path")
        class_names = tuple(str(n) for n in names)
    else:
        class_names = tuple(str(int(v)) for v in values)
    return _Header(path, x_shape, x_dtype, y, class_names, "classification", named=names is not None)


def _sample_shape(x_shape: tuple[int, ...]) -> tuple[int, ...]:
    return (1, *x_shape[1:]) if len(x_shape) == 3 else tuple(x_shape[1:])


def describe_npz(options: Mapping[str, Any], base_dir: Path | None = None) -> Described:
    head = _header(options, base_dir)
    return Described(head.task, _sample_shape(head.x_shape), head.names)  # type: ignore[arg-type]


def load_npz(req: LoadRequest) -> RawData:
    head = _header(req.options, req.base_dir)
    try:
        with np.load(head.path, allow_pickle=False) as arrays:
            x = np.asarray(arrays["x"])
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"cannot read x from {head.path}: {exc}", "save it again with numpy.savez",
                        option="path") from None
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        row = int(np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))[0])
        raise DataError(f"{head.path}: x holds NaN or infinite values (first in sample {row})",
                        "remove or fix those samples", option="path")
    image = x.ndim >= 3
    if x.ndim == 3:
        x = x[:, None]
    if x.dtype != np.uint8:
        x = x.astype(np.float64 if not image else np.float32)
    if head.task == "regression":
        y = head.y.astype(np.float64).reshape(len(head.y), -1)
    elif head.named:  # y holds the indices of the file's class_names
        y = head.y.astype(np.int64)
    else:  # the classes are y's different values, in order
        y = np.searchsorted(np.unique(head.y), head.y).astype(np.int64)
    norm = "channels" if image else "features"
    return RawData(x, y, head.task, head.names, image=image, norm=norm,  # type: ignore[arg-type]
                   notes={"file": str(head.path)})

