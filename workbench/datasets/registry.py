"""The dataset registry: one :class:`~workbench.datasets.base.DatasetEntry` per data set.

Adding a data set is one :func:`_entry` call below (and its ``describe``/``load`` functions).
The editor's dataset list and option forms, :func:`workbench.spec.validate` and
:func:`workbench.data.load_dataset` all read these entries. Importing this module imports
neither torch nor scikit-learn.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from workbench.datasets import csv_file, downloadable, generated, image_folder, npz_file
from workbench.datasets.base import DataError, DatasetEntry, DatasetInfo, Described, LoadRequest, RawData
from workbench.params import ParamSpec, check_values
from workbench.problems import Problem, SpecError, did_you_mean

__all__ = ["DATASETS", "DATASET_NAMES", "get_dataset", "dataset_info", "check_options", "default_options",
           "describe", "OPTION_PATH"]

#: Where dataset options live in a preset (the JSON path prefix of their problems).
OPTION_PATH = "task.options"

DATASETS: dict[str, DatasetEntry] = {}

_YOUR_OWN = "your own data: cite where it comes from in the preset's reference"
_SKLEARN = ("sklearn.datasets", "sklearn.datasets.data", "sklearn.datasets.descr")  # load_digits/diabetes


def _entry(name: str, kind: str, summary: str, citation: str, source: str, options: Sequence[ParamSpec],
           describe: Callable[..., Described], load: Callable[[LoadRequest], RawData],
           check: Callable[..., list[tuple[str, str, str]]] | None = None, downloads: bool = False,
           imports: Sequence[str] = (), prefetch: Callable[[], object] | None = None) -> DatasetEntry:
    extra: dict[str, Any] = {}
    if downloads:
        extra = dict(download=lambda root, progress=None, _n=name: downloadable.download(_n, root, progress),
                     locate=lambda root, _n=name: downloadable.locate(_n, Path(root)),
                     searched=lambda root, _n=name: downloadable.searched(_n, Path(root)))
    entry = DatasetEntry(name=name, kind=kind, summary=summary, citation=citation, source=source,  # type: ignore[arg-type]
                         options=tuple(options), describe=describe, load=load, check=check, imports=tuple(imports),
                         prefetch=prefetch, **extra)
    DATASETS[name] = entry
    return entry


def _P(  # noqa: N802 - a short name: it fills the declaration tables
        name: str, kind: str, default: Any, help: str, lo: float | None = None, hi: float | None = None,
        choices: tuple[Any, ...] = (), **more: Any) -> ParamSpec:
    return ParamSpec(name, kind, default, help, lo, hi, choices, **more)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------- the entries
_entry("digits", "classification",
       "scikit-learn's 1,797 handwritten digits, 8×8 grey images (values 0–16), 10 classes; embedded",
       "E. Alpaydin, C. Kaynak, “Optical Recognition of Handwritten Digits”, UCI Machine Learning Repository, "
       "1998 (the test part, as scikit-learn's load_digits ships it)",
       "embedded", [], generated.describe_digits, generated.load_digits,
       imports=_SKLEARN, prefetch=functools.partial(generated.sklearn_arrays, "digits"))

_entry("parity", "classification",
       "n_inputs random bits, target = parity of the first k_active (the Going-Deeper XOR task); generated",
       "Benjamin Meier, “Going Deeper: Infinite Deep Neural Networks”, ZHAW, 2017, github.com/kutoga/going_deeper "
       "(experiment_00_xor.py)",
       "generated", [
           _P("n_inputs", "int", 8, "random binary inputs per sample", 1, 64, label="Inputs"),
           _P("k_active", "int", 3, "the target is the parity (XOR) of the first k_active inputs", 0, 64,
              label="Active inputs"),
           _P("n_samples", "int", 16384, "samples drawn (train + validation)", 16, 10_000_000, label="Samples"),
           _P("fresh_batches", "bool", False, "draw every training batch fresh on the device, as the original did "
              "(an epoch is then n_samples·(1 − val_split) fresh samples; the validation part stays a fixed "
              "sample)", label="Fresh batches"),
       ], generated.describe_parity, generated.load_parity, generated.check_parity)

_entry("checkerboard", "classification",
       "2-D points in [-1, 1]² labelled by a 12×12 checkerboard inside a class-0 border (HanNet's styled problem, "
       "the 81×81 grid by default); generated",
       "Yueyao Yu, Yin Zhang, “Householder-Absolute Neural Layers For High Variability and Deep Trainability”, "
       "2021, arXiv 2106.04088 (github.com/yyy32/HanNet checkerboard_experiments)",
       "generated", [
           _P("squares", "int", 12, "board squares per side on the inner [-0.9, 0.9)² (HanNet's shipped data: 12); "
              "neighbouring squares alternate class", 2, 32, label="Squares"),
           _P("n_samples", "int", 6561, "points: 6,561 = HanNet's 81×81 grid on [-1, 1]², any other count draws "
              "uniform random points", 16, 10_000_000, label="Samples"),
           _P("split", "choice", "random", "random: val_split carves a seeded random part off; hannet: the "
              "original's shipped 1,640 train / 4,921 test points of the 81×81 grid (val_split is ignored)",
              choices=("random", "hannet"), label="Split"),
       ], generated.describe_checkerboard, generated.load_checkerboard, generated.check_checkerboard)

_entry("spirals", "classification", "2-D points on interleaved spirals, one class per arm; generated",
       "Kevin J. Lang, Michael J. Witbrock, “Learning to Tell Two Spirals Apart”, Proceedings of the 1988 "
       "Connectionist Models Summer School",
       "generated", [
           _P("n_arms", "int", 2, "interleaved spiral arms, one class each", 2, 16, label="Arms"),
           _P("n_samples", "int", 2000, "points drawn over all arms", 16, 10_000_000, label="Samples"),
           _P("noise", "float", 0.05, "Gaussian noise std added to the points (input units)", 0.0, 1.0,
              label="Noise", step=0.01),
       ], generated.describe_spirals, generated.load_spirals)

_entry("diabetes", "regression",
       "scikit-learn diabetes regression: 442 patients, 10 standardised features, 1 target (disease progression "
       "after one year); embedded",
       "Bradley Efron, Trevor Hastie, Iain Johnstone, Robert Tibshirani, “Least Angle Regression”, Annals of "
       "Statistics 32(2), 2004 (scikit-learn's load_diabetes)",
       "embedded", [], generated.describe_diabetes, generated.load_diabetes,
       imports=_SKLEARN, prefetch=functools.partial(generated.sklearn_arrays, "diabetes"))

_entry("mnist", "classification",
       "MNIST handwritten digits, 60,000 train + 10,000 test 28×28 grey images, 10 classes; downloaded",
       "Yann LeCun, Léon Bottou, Yoshua Bengio, Patrick Haffner, “Gradient-Based Learning Applied to Document "
       "Recognition”, Proceedings of the IEEE 86(11), 1998",
       "download", [], downloadable.describe_mnist, downloadable.load_mnist_like, downloads=True)

_entry("fashion-mnist", "classification",
       "Fashion-MNIST clothing images, 60,000 train + 10,000 test 28×28 grey, 10 classes; downloaded",
       "Han Xiao, Kashif Rasul, Roland Vollgraf, “Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine "
       "Learning Algorithms”, 2017, arXiv 1708.07747",
       "download", [], downloadable.describe_fashion, downloadable.load_mnist_like, downloads=True)

_entry("cifar10", "classification",
       "CIFAR-10 colour images, 50,000 train + 10,000 test 32×32 RGB, 10 classes; downloaded",
       "Alex Krizhevsky, “Learning Multiple Layers of Features from Tiny Images”, technical report, University "
       "of Toronto, 2009",
       "download", [], downloadable.describe_cifar10, downloadable.load_cifar10, downloads=True,
       imports=("torchvision",))

_entry("csv", "auto", "your own table: a CSV file, one sample per row, one column the target", _YOUR_OWN,
       "file", csv_file.OPTIONS, csv_file.describe_csv, csv_file.load_csv)

_entry("image-folder", "classification",
       "your own images: a folder with one sub-folder of images per class (torchvision's ImageFolder layout)",
       _YOUR_OWN, "file", image_folder.OPTIONS, image_folder.describe_image_folder, image_folder.load_image_folder,
       imports=("PIL.Image",))

_entry("npz", "auto", "your own arrays: a NumPy .npz file with x (inputs) and y (targets)", _YOUR_OWN,
       "file", npz_file.OPTIONS, npz_file.describe_npz, npz_file.load_npz)

DATASET_NAMES: tuple[str, ...] = tuple(DATASETS)


# ----------------------------------------------------------------------------------------- look-ups
def get_dataset(name: Any) -> DatasetEntry:
    """The entry for ``name``; an unknown name is a :class:`SpecError` at ``task.dataset`` naming
    the closest names."""
    entry = DATASETS.get(name) if isinstance(name, str) else None
    if entry is None:
        raise SpecError(Problem("task.dataset", f"unknown dataset {name!r}",
                                did_you_mean(str(name), DATASET_NAMES, known="known datasets", cutoff=0.4)))
    return entry


def default_options(name: str) -> dict[str, Any]:
    """``{option: default}`` for dataset ``name`` (empty for datasets without options)."""
    entry = DATASETS.get(name)
    return {} if entry is None else {spec.name: spec.default for spec in entry.options}


def check_options(name: str, options: Mapping[str, Any] | None, path: str = OPTION_PATH) -> list[Problem]:
    """Problems with a dataset's options (unknown keys with the closest key, types, ranges, and the
    options that do not fit together). Reads no file: :func:`dataset_info` does."""
    if options is None:
        return []
    if not isinstance(options, Mapping):
        return [Problem(path, f"options must be an object, got {type(options).__name__}",
                        'write "options": {} or {"name": value}')]
    entry = DATASETS.get(name)
    if entry is None:
        return []
    problems = check_values(path, options, entry.option_schema, owner=name, where=f"dataset {name}")
    if not problems and entry.check is not None:
        merged = {**default_options(name), **options}
        problems = [Problem(f"{path}.{key}", message, fix) for key, message, fix in entry.check(merged)]
    return problems


def describe(name: str, options: Mapping[str, Any] | None = None, base_dir: Path | str | None = None) -> Described:
    """What the data look like (task, sample shape, class names) without loading them; a problem
    with the user's file is a :class:`DataError` naming it."""
    entry = get_dataset(name)
    merged = {**default_options(name), **(options or {})}
    return entry.describe(merged, Path(base_dir) if base_dir is not None else None)


def dataset_info(name: str, options: Mapping[str, Any] | None = None,
                 base_dir: Path | str | None = None) -> DatasetInfo:
    """Describe dataset ``name`` with ``options`` (relative paths read from ``base_dir``). Unknown
    names, bad options and unreadable files raise :class:`SpecError` (a file's problem at the
    option naming it, e.g. ``task.options.path``)."""
    entry = get_dataset(name)
    problems = check_options(name, options)
    if problems:
        raise SpecError(problems)
    try:
        found = describe(name, options, base_dir)
    except DataError as exc:
        raise SpecError(Problem(f"{OPTION_PATH}.{exc.option}" if exc.option else OPTION_PATH, exc.message,
                                exc.hint)) from None
    outputs = len(found.names) if found.task == "classification" else max(1, len(found.names))
    return DatasetInfo(name=name, task=found.task, input_shape=tuple(found.input_shape), output_dim=outputs,
                       class_names=tuple(found.names), source=entry.source, description=entry.summary)
