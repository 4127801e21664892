"""What a dataset entry is and what its loader hands back (no torch: loaders return numpy arrays).

A :class:`DatasetEntry` describes one data set: its name, kind, options (declared as
:class:`~workbench.params.ParamSpec`, like layer parameters), a citation, where its samples come
from, ``describe`` (input shape and class names without loading the samples: what the editor asks
on every keystroke) and ``load`` (every sample, as a :class:`RawData`). :mod:`workbench.data`
turns a :class:`RawData` into tensors on the training device (split, subset, standardisation).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np

from workbench.params import ParamSpec

__all__ = [
    "DataError", "DatasetMissing", "LoadCancelled", "DatasetEntry", "DatasetInfo", "Described", "RawData",
    "LoadRequest", "Progress", "resolve_path", "portable_path", "TaskKind", "Source", "Norm",
]

TaskKind = Literal["classification", "regression"]
#: ``embedded``: shipped with a package (scikit-learn); ``generated``: computed from the options;
#: ``download``: fetched once into the data root; ``file``: the user's own file or folder.
Source = Literal["embedded", "generated", "download", "file"]
#: How inputs are standardised (see :class:`RawData`).
Norm = Literal["none", "features", "features_always", "pixels", "channels", "published"]
#: ``progress(what, done, total)``: ``done`` of ``total`` units of the step ``what`` are finished
#: (``"decoding images"``, ``"downloading t10k-images-idx3-ubyte.gz"``; bytes or items).
Progress = Callable[[str, int, int], None]


class DataError(ValueError):
    """A data set could not be prepared as asked: ``message`` names the cause (the file, row or
    image), ``hint`` the fix; ``option`` is the dataset option at fault (``"path"``, ``"target"``,
    …) when one is, so the editor can put the problem on that field."""

    def __init__(self, message: str, hint: str = "", option: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.option = option

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class DatasetMissing(DataError):
    """The files of a downloadable data set are not on disk and downloading was not allowed."""

    def __init__(self, name: str, searched: Sequence[Path], detail: str = "") -> None:
        folders = ", ".join(str(p) for p in searched)
        message = f"data set '{name}' not found; looked in: {folders}"
        if detail:
            message += f" ({detail})"
        hint = ("download it: in the app, Task → Download (the data folder is shown above it: Change… picks "
                "another); on the command line, --download or `python main.py download " + name + "`; or point "
                "the data folder (--data-root) at a folder holding the files")
        super().__init__(message, hint)
        self.name = name
        self.searched = [Path(p) for p in searched]


class LoadCancelled(Exception):
    """Raised by a ``progress`` callback to stop a load or download; nothing is kept."""


@dataclass(frozen=True)
class Described:
    """What ``describe`` tells without loading the samples: the task, one sample's shape, and the
    class names (classification) or target names (regression, one per output)."""

    task: TaskKind
    input_shape: tuple[int, ...]
    names: tuple[str, ...]


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset with its options as the editor sees it; ``input_shape`` is one sample (no batch
    dimension), ``output_dim`` the model's output size (classes, or regression targets),
    ``class_names`` one name per output (the classes, or the regression targets)."""

    name: str
    task: TaskKind
    input_shape: tuple[int, ...]
    output_dim: int
    class_names: tuple[str, ...]
    source: Source
    description: str

    @property
    def embedded(self) -> bool:
        """True when nothing has to be downloaded or read from the user's files."""
        return self.source in ("embedded", "generated")

    @property
    def downloads(self) -> bool:
        return self.source == "download"


@dataclass
class RawData:
    """Every sample of a data set as numpy arrays, before the split.

    ``x``/``y``: all samples, split by ``task.val_split`` unless ``split`` gives the (train, val)
    indices or ``val_x``/``val_y`` an official validation set (then ``x``/``y`` are the training
    set). ``y`` holds class indices (classification) or targets of shape (N, outputs).
    ``norm`` says how inputs are standardised: ``none``; ``features`` (each feature by the training
    split's mean and std, when ``task.normalize``); ``features_always`` (also without it);
    ``pixels`` (one mean and std over all training pixels); ``channels`` (per channel, from the
    training split); ``published`` (the fixed ``mean_std`` per channel). Regression targets are
    always standardised by the training split (``target_scale`` = their std converts back).
    ``uint8`` image arrays are scaled to [0, 1] on the device.
    """

    x: np.ndarray
    y: np.ndarray
    task: TaskKind
    names: tuple[str, ...]
    image: bool = False
    norm: Norm = "none"
    mean_std: tuple[Sequence[float], Sequence[float]] | None = None
    val_x: np.ndarray | None = None
    val_y: np.ndarray | None = None
    split: tuple[np.ndarray, np.ndarray] | None = None
    fresh_parity: tuple[int, int] | None = None
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoadRequest:
    """What a loader gets: the options (defaults filled in), the data root, whether it may
    download, the seeded generator (the split draws from it after the loader), the folder
    relative paths are read from, and a progress callback (it may raise :class:`LoadCancelled`)."""

    name: str
    options: Mapping[str, Any]
    root: Path
    download: bool = False
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    base_dir: Path | None = None
    progress: Progress | None = None

    def path(self, key: str = "path") -> Path:
        """The file or folder named by option ``key``, relative to :attr:`base_dir`."""
        return resolve_path(self.options[key], self.base_dir)


@dataclass(frozen=True)
class DatasetEntry:
    """One data set. ``describe(options, base_dir)`` and ``load(request)`` get the options with
    their defaults filled in; ``check(options)`` returns ``(option, message, fix)`` for options
    that are valid one by one but not together. ``kind`` is ``auto`` when the data decide (a CSV's
    target column). ``download(root, progress)`` fetches a downloadable set into the data root;
    ``locate(root)`` says where its files are (None: not there), ``searched(root)`` where it looks.
    ``imports``: the heavy libraries ``load`` imports on first use (the app imports them ahead of
    the first run, :mod:`ui.warmup`). ``prefetch()``, for an embedded set, parses its files into
    memory (kept for later loads), so the app can do it at idle instead of in the first run."""

    name: str
    kind: Literal["classification", "regression", "auto"]
    summary: str
    citation: str
    source: Source
    options: tuple[ParamSpec, ...]
    describe: Callable[[Mapping[str, Any], Path | None], Described] = field(repr=False, compare=False)
    load: Callable[[LoadRequest], RawData] = field(repr=False, compare=False)
    check: Callable[[Mapping[str, Any]], list[tuple[str, str, str]]] | None = field(default=None, repr=False,
                                                                                  compare=False)
    download: Callable[[Path, Progress | None], None] | None = field(default=None, repr=False, compare=False)
    locate: Callable[[Path], Path | None] | None = field(default=None, repr=False, compare=False)
    searched: Callable[[Path], list[Path]] | None = field(default=None, repr=False, compare=False)
    imports: tuple[str, ...] = ()
    prefetch: Callable[[], object] | None = field(default=None, repr=False, compare=False)

    @property
    def option_schema(self) -> dict[str, ParamSpec]:
        return {spec.name: spec for spec in self.options}

    @property
    def path_options(self) -> tuple[str, ...]:
        """Options naming a file or folder (resolved against the preset file's folder)."""
        return tuple(spec.name for spec in self.options if spec.kind == "path")

    @property
    def downloads(self) -> bool:
        return self.download is not None


def stat_data_file(path: Path, what: str, choose: str) -> os.stat_result:
    """``os.stat`` of a user's data file (``what``: "CSV file", ".npz file"), or a :class:`DataError`
    on ``task.options.path`` naming the file: missing, unreadable, or not a file (``choose`` is the
    fix for the last, e.g. "choose a CSV file")."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DataError(f"{what} not found: {path}", "check task.options.path, or choose the file with Import… "
                        "(a relative path is read from the preset file's folder)", option="path") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}", "check the file and its permissions",
                        option="path") from None
    if not os.path.isfile(path):
        raise DataError(f"{path} is not a file", choose, option="path")
    return st


def resolve_path(value: str | os.PathLike[str], base_dir: Path | str | None) -> Path:
    """``value`` with ``~`` expanded; a relative path is taken relative to ``base_dir`` (the preset
    file's folder; the working directory when None)."""
    path = Path(value).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


def portable_path(path: str | os.PathLike[str], folder: Path | str | None) -> str:
    """How a preset in ``folder`` should name ``path`` (absolute, or relative to the working
    directory): relative to ``folder`` when it lies inside it (a preset and its data can be moved
    and shared together), else absolute. Without a folder: absolute."""
    where = Path(os.path.abspath(Path(path).expanduser()))
    if folder is None:
        return str(where)
    try:
        return where.relative_to(Path(os.path.abspath(Path(folder).expanduser()))).as_posix()
    except ValueError:
        return str(where)
