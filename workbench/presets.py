"""Built-in presets: the ``*.json`` files in the repository's ``presets/`` folder.

A built-in's key is its file name without ``.json`` (``"z-digits"``, ``"z-mnist"``, …).
"""
from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from workbench.spec import Preset, Problem, SpecError, load_preset

__all__ = ["PRESETS_DIR", "DEFAULT_PRESET", "PresetInfo", "builtin_presets", "builtin_keys", "load_builtin",
           "resolve_preset"]

PRESETS_DIR = Path(__file__).resolve().parents[1] / "presets"
DEFAULT_PRESET = "z-digits"


@dataclass(frozen=True)
class PresetInfo:
    """A built-in preset as listed: its key, file, display name and description."""

    key: str
    path: Path
    name: str
    description: str


def _files() -> list[Path]:
    if not PRESETS_DIR.is_dir():
        return []
    return sorted(path for path in PRESETS_DIR.glob("*.json") if path.is_file())


def builtin_keys() -> list[str]:
    """Keys of all built-in presets, sorted."""
    return [path.stem for path in _files()]


def builtin_presets() -> list[PresetInfo]:
    """Every built-in preset (sorted by key), read cheaply: only its name and description."""
    infos = []
    for path in _files():
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            name = str(document.get("name", path.stem))
            description = str(document.get("description", ""))
        except (OSError, ValueError, AttributeError) as exc:
            name, description = path.stem, f"(cannot be read: {exc})"
        infos.append(PresetInfo(key=path.stem, path=path, name=name, description=description))
    # the default first, so lists and menus open on it
    infos.sort(key=lambda info: (info.key != DEFAULT_PRESET, info.key))
    return infos


def load_builtin(key: str) -> Preset:
    """Load built-in preset ``key``; an unknown key is a :class:`SpecError` naming the closest keys."""
    keys = builtin_keys()
    if key not in keys:
        close = difflib.get_close_matches(str(key), keys, n=3, cutoff=0.4)
        fix = ("did you mean " + " or ".join(f"'{c}'" for c in close) + "?") if close else \
            "built-in presets: " + ", ".join(keys)
        raise SpecError(Problem("", f"no built-in preset '{key}'", fix))
    return load_preset(PRESETS_DIR / f"{key}.json")


def resolve_preset(arg: str | os.PathLike[str]) -> Preset:
    """A built-in key (``"z-mnist"``) or a path to a preset file."""
    text = os.fspath(arg)
    if text in builtin_keys():
        return load_builtin(text)
    path = Path(text)
    if path.is_file():
        return load_preset(path)
    keys = builtin_keys()
    close = difflib.get_close_matches(text, keys, n=3, cutoff=0.4)
    fix = ("did you mean " + " or ".join(f"'{c}'" for c in close) + "?") if close else \
        "give a preset file path or one of: " + ", ".join(keys)
    raise SpecError(Problem("", f"'{text}' is neither a built-in preset nor an existing file", fix))
