"""MNIST, Fashion-MNIST and CIFAR-10: found under the data root, downloaded there on request.

MNIST-format sets are read from the four standard IDX files (gzip or plain) with numpy, looked for
directly in the root, in ``<root>/<name>`` and in torchvision's layout (``<root>/MNIST/raw``,
``<root>/FashionMNIST/raw``); CIFAR-10 from ``cifar-10-batches-py`` in the root or
``<root>/cifar10`` through torchvision. Validation is the official test split.

:func:`download` fetches a set the way torchvision does (its mirrors, file names, MD5 sums and
archive extraction, into torchvision's layout) with a progress callback that may cancel: each file
is streamed into a temp file beside its destination, checked against torchvision's MD5 and only
then renamed into place, so a cancelled or failed download leaves nothing half-written.
"""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Mapping, Sequence

import numpy as np

from workbench.datasets.base import DataError, DatasetMissing, Described, LoadRequest, Progress, RawData
from workbench.fileio import atomic_write

__all__ = ["read_idx", "MNIST_NAMES", "FASHION_NAMES", "CIFAR10_NAMES", "MEAN_STD", "describe_mnist",
           "describe_fashion", "describe_cifar10", "load_mnist_like", "load_cifar10", "download",
           "mnist_folders", "cifar_folders", "locate", "searched"]

MNIST_NAMES = tuple(str(d) for d in range(10))
#: github.com/zalandoresearch/fashion-mnist README, labels 0–9
FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot")
#: batches.meta of the CIFAR-10 python archive, labels 0–9
CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
#: per-channel mean and std of the training images in [0, 1] (the values the literature uses)
MEAN_STD = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}

_MNIST_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "val_x": "t10k-images-idx3-ubyte",
    "val_y": "t10k-labels-idx1-ubyte",
}
_TV_CLASS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "cifar10": "CIFAR10"}
_CHUNK = 1 << 16


# ------------------------------------------------------------------------------------- IDX files
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


def mnist_folders(name: str, root: Path) -> list[Path]:
    """Where an MNIST-format set is looked for, in order."""
    tv = _TV_CLASS[name]
    return [root, root / name, root / tv / "raw", root / name / tv / "raw"]


def cifar_folders(root: Path) -> list[Path]:
    """Folders that may hold ``cifar-10-batches-py``, in order."""
    return [root, root / "cifar10"]


def searched(name: str, root: Path) -> list[Path]:
    """Every folder looked in for ``name`` (for the "not found" message)."""
    if name == "cifar10":
        return [f / "cifar-10-batches-py" for f in cifar_folders(root)]
    return mnist_folders(name, root)


def locate(name: str, root: Path) -> Path | None:
    """The folder holding ``name``'s files under ``root``, or None (reads no data)."""
    if name == "cifar10":
        return next((f for f in cifar_folders(root) if (f / "cifar-10-batches-py" / "data_batch_1").is_file()), None)
    files = _find_idx_folder(mnist_folders(name, root))
    return None if files is None else files["train_x"].parent


# ---------------------------------------------------------------------------------------- loading
def describe_mnist(options: Mapping[str, Any], base_dir: Any = None) -> Described:
    return Described("classification", (1, 28, 28), MNIST_NAMES)


def describe_fashion(options: Mapping[str, Any], base_dir: Any = None) -> Described:
    return Described("classification", (1, 28, 28), FASHION_NAMES)


def describe_cifar10(options: Mapping[str, Any], base_dir: Any = None) -> Described:
    return Described("classification", (3, 32, 32), CIFAR10_NAMES)


def _ensure(name: str, req: LoadRequest) -> None:
    if locate(name, req.root) is None and req.download:
        download(name, req.root, req.progress)


def load_mnist_like(req: LoadRequest) -> RawData:
    """MNIST or Fashion-MNIST: 60,000 training and 10,000 validation (test) 1×28×28 uint8 images."""
    name = req.name
    _ensure(name, req)
    files = _find_idx_folder(mnist_folders(name, req.root))
    if files is None:
        raise DatasetMissing(name, mnist_folders(name, req.root),
                             "expected the four IDX files train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], "
                             "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]")
    arrays = {k: read_idx(p) for k, p in files.items()}
    names = MNIST_NAMES if name == "mnist" else FASHION_NAMES
    return RawData(arrays["train_x"][:, None], arrays["train_y"].astype(np.int64), "classification", names,
                   image=True, norm="published", mean_std=MEAN_STD[name], val_x=arrays["val_x"][:, None],
                   val_y=arrays["val_y"].astype(np.int64), notes={"split": "validation = official test split"})


def load_cifar10(req: LoadRequest) -> RawData:
    """CIFAR-10: 50,000 training and 10,000 validation (test) 3×32×32 uint8 images."""
    _ensure("cifar10", req)
    base = locate("cifar10", req.root)
    if base is None:
        raise DatasetMissing("cifar10", searched("cifar10", req.root))
    import torchvision

    try:
        train = torchvision.datasets.CIFAR10(str(base), train=True, download=False)
        test = torchvision.datasets.CIFAR10(str(base), train=False, download=False)
    except RuntimeError as exc:
        raise DatasetMissing("cifar10", searched("cifar10", req.root), str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - a damaged pickle, a wrong file: say which folder
        raise DataError(f"loading 'cifar10' from {base} failed: {exc}",
                        "delete the folder and download the data set again") from exc
    to_chw = lambda a: np.ascontiguousarray(a.transpose(0, 3, 1, 2))  # noqa: E731
    return RawData(to_chw(train.data), np.asarray(train.targets, dtype=np.int64), "classification", CIFAR10_NAMES,
                   image=True, norm="published", mean_std=MEAN_STD["cifar10"], val_x=to_chw(test.data),
                   val_y=np.asarray(test.targets, dtype=np.int64),
                   notes={"split": "validation = official test split"})


# --------------------------------------------------------------------------------------- download
def _resources(name: str, root: Path) -> list[tuple[list[str], Path, str]]:
    """torchvision's files of ``name``: (candidate URLs, destination, MD5) per file."""
    import torchvision

    cls = getattr(torchvision.datasets, _TV_CLASS[name])
    if name == "cifar10":
        return [([cls.url], root / cls.filename, cls.tgz_md5)]
    raw = root / cls.__name__ / "raw"
    return [([mirror + filename for mirror in cls.mirrors], raw / filename, md5) for filename, md5 in cls.resources]


def download(name: str, root: Path | str, progress: Progress | None = None) -> Path:
    """Fetch ``name`` (``mnist``, ``fashion-mnist``, ``cifar10``) into ``root`` in torchvision's layout
    and return the folder holding it. Files already there with the right MD5 are kept.

    ``progress(what, done_bytes, total_bytes)`` is called as bytes arrive (total 0 when the server
    does not say); it may raise :class:`~workbench.datasets.base.LoadCancelled` to stop. A network
    failure is a :class:`DataError` naming the URLs tried."""
    from torchvision.datasets.utils import check_integrity, extract_archive

    root = Path(root).expanduser()
    for urls, dest, md5 in _resources(name, root):
        if check_integrity(str(dest), md5):
            continue
        errors = []
        for url in urls:
            try:
                _fetch(url, dest, md5, progress)
                break
            except (urllib.error.URLError, OSError, TimeoutError) as exc:  # the next mirror
                errors.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
        else:
            raise DataError(f"downloading '{name}' into {root} failed: " + "; ".join(errors),
                            "check the network connection and try again, or copy the files into the data folder")
    if name == "cifar10":
        archive = _resources(name, root)[0][1]
        if locate(name, root) is None:
            extract_archive(str(archive), str(root))
    found = locate(name, root)
    if found is None:  # pragma: no cover - the archive held something else
        raise DataError(f"the downloaded '{name}' files are not where they belong under {root}",
                        "delete the folder and download again")
    return found


def _fetch(url: str, dest: Path, md5: str, progress: Progress | None) -> None:
    """Stream ``url`` into ``dest`` atomically, checking the MD5 before the file appears."""
    from torchvision.datasets.utils import USER_AGENT

    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    what = f"downloading {dest.name}"
    with urllib.request.urlopen(request, timeout=60) as response:
        total = int(response.headers.get("Content-Length") or 0) if hasattr(response, "headers") else 0

        def write(fh: BinaryIO) -> None:
            digest = hashlib.md5(usedforsecurity=False)
            done = 0
            if progress is not None:
                progress(what, 0, total)
            while chunk := response.read(_CHUNK):
                fh.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(what, done, total)
            if digest.hexdigest() != md5:
                raise DataError(f"the file downloaded from {url} is damaged (its MD5 is {digest.hexdigest()}, "
                                f"torchvision expects {md5})", "try the download again later")

        atomic_write(dest, write)
