"""Your own images: a folder with one sub-folder per class (torchvision's ``ImageFolder`` layout).

::

    pets/cat/001.jpg  pets/cat/002.png  …
    pets/dog/001.jpg  …

Options: ``path`` (the folder), ``size`` (every image is resized to size × size pixels),
``grayscale`` (one channel instead of three). The classes are the sub-folders' names in sorted
order, as ``ImageFolder`` does; files whose extension is not an image's are skipped. Every image
is decoded once, at load time, with a progress report, into one uint8 array (then one tensor on
the training device); nothing is kept when an image cannot be read.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from workbench.datasets.base import DataError, Described, LoadRequest, RawData, resolve_path
from workbench.params import ParamSpec

__all__ = ["OPTIONS", "IMAGE_EXTENSIONS", "describe_image_folder", "load_image_folder", "scan"]

#: torchvision's IMG_EXTENSIONS
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

OPTIONS = (
    ParamSpec("path", "path", "", "the folder holding one sub-folder of images per class (relative to the preset "
              "file's folder, or absolute)", label="Folder", folder=True),
    ParamSpec("size", "int", 32, "every image is resized to size × size pixels", 4, 1024, label="Image size"),
    ParamSpec("grayscale", "bool", False, "one grey channel instead of red, green and blue", label="Grayscale"),
)


@dataclass(frozen=True)
class Listing:
    """The images of an image folder: class names (sorted) and (file, class index) pairs."""

    root: Path
    classes: tuple[str, ...]
    files: tuple[tuple[Path, int], ...]


def scan(options: Mapping[str, Any], base_dir: Path | None = None) -> Listing:
    """List the classes and images (cached while the folders' modification times stay the same)."""
    if not str(options.get("path", "")).strip():
        raise DataError("no image folder chosen", "set task.options.path (in the app: Task → Dataset options → "
                        "Import…)", option="path")
    root = resolve_path(options["path"], base_dir)
    try:
        subdirs = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
        stamps = tuple(os.stat(root / d).st_mtime_ns for d in subdirs)
        root_stamp = os.stat(root).st_mtime_ns
    except FileNotFoundError:
        raise DataError(f"image folder not found: {root}", "check task.options.path, or choose the folder with "
                        "Import… (a relative path is read from the preset file's folder)", option="path") from None
    except NotADirectoryError:
        raise DataError(f"{root} is a file, not a folder", "choose the folder that holds one sub-folder per class",
                        option="path") from None
    except OSError as exc:
        raise DataError(f"cannot read the folder {root}: {exc.strerror or exc}", "check its permissions",
                        option="path") from None
    return _scan(str(root), root_stamp, stamps)


@functools.lru_cache(maxsize=8)
def _scan(name: str, root_stamp: int, stamps: tuple[int, ...]) -> Listing:
    root = Path(name)
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise DataError(f"{root} holds no class folders (it is empty, or holds images directly)",
                        "put the images of each class in a sub-folder named after the class: "
                        f"{root / 'cat' / '001.jpg'}, {root / 'dog' / '001.jpg'}, …", option="path")
    files: list[tuple[Path, int]] = []
    for index, cls in enumerate(classes):
        found = sorted(p for p in (root / cls).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not found:
            raise DataError(f"the class folder {root / cls} holds no images ({', '.join(IMAGE_EXTENSIONS)})",
                            "add images to it or remove it", option="path")
        files.extend((p, index) for p in found)
    if len(classes) < 2:
        raise DataError(f"{root} has one class folder ('{classes[0]}'), so there is nothing to classify",
                        "add a sub-folder of images for every other class", option="path")
    return Listing(root, tuple(classes), tuple(files))


def describe_image_folder(options: Mapping[str, Any], base_dir: Path | None = None) -> Described:
    listing = scan(options, base_dir)
    channels = 1 if options["grayscale"] else 3
    return Described("classification", (channels, int(options["size"]), int(options["size"])), listing.classes)


def load_image_folder(req: LoadRequest) -> RawData:
    """Decode every image once into an (N, C, size, size) uint8 array; ``progress("decoding
    images", done, total)`` after each (it may cancel)."""
    from PIL import Image, UnidentifiedImageError

    listing = scan(req.options, req.base_dir)
    size = int(req.options["size"])
    mode = "L" if req.options["grayscale"] else "RGB"
    channels = 1 if mode == "L" else 3
    n = len(listing.files)
    x = np.empty((n, channels, size, size), dtype=np.uint8)
    y = np.fromiter((cls for _, cls in listing.files), dtype=np.int64, count=n)
    what = "decoding images"
    if req.progress is not None:
        req.progress(what, 0, n)
    for i, (path, _) in enumerate(listing.files):
        try:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert(mode).resize((size, size), Image.Resampling.BILINEAR))
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
            raise DataError(f"cannot read the image {path}: {exc}", "delete or replace that file",
                            option="path") from None
        x[i] = pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)
        if req.progress is not None and (i + 1 == n or (i + 1) % 64 == 0):
            req.progress(what, i + 1, n)
    return RawData(x, y, "classification", listing.classes, image=True, norm="channels",
                   notes={"folder": str(listing.root)})

