"""Where the app keeps its per-user settings (window layout, recent files, theme).

``AFWB_CONFIG`` (a folder) overrides the platform default; there the settings live in one INI
file, ``afwb.ini``. Tests point ``AFWB_CONFIG`` at a temp folder so they never touch the user's.
"""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings

ORGANIZATION = "ActivationFreeWorkbench"
APPLICATION = "Activation-Free Workbench"
MAX_RECENT = 8

_RECENT_KEY = "files/recent"
_THEME_KEY = "view/theme"
THEMES = ("system", "light", "dark")


def make_settings() -> QSettings:
    """The app's QSettings: ``$AFWB_CONFIG/afwb.ini`` when the variable is set, else the platform default."""
    folder = os.environ.get("AFWB_CONFIG")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return QSettings(str(Path(folder) / "afwb.ini"), QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, "workbench")


def _as_list(value: object) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]  # type: ignore[union-attr]


def recent_files(settings: QSettings) -> list[str]:
    """The recently opened/saved preset paths, newest first (at most :data:`MAX_RECENT`)."""
    return _as_list(settings.value(_RECENT_KEY, []))[:MAX_RECENT]


def add_recent_file(settings: QSettings, path: str | os.PathLike[str]) -> list[str]:
    """Put ``path`` first in the recent list (no duplicates, :data:`MAX_RECENT` kept); return the list."""
    path = str(Path(path).resolve())
    items = [p for p in recent_files(settings) if p != path]
    items.insert(0, path)
    items = items[:MAX_RECENT]
    settings.setValue(_RECENT_KEY, items)
    return items


def remove_recent_file(settings: QSettings, path: str) -> list[str]:
    items = [p for p in recent_files(settings) if p != path]
    settings.setValue(_RECENT_KEY, items)
    return items


def theme_name(settings: QSettings) -> str:
    value = str(settings.value(_THEME_KEY, "system") or "system")
    return value if value in THEMES else "system"


def set_theme_name(settings: QSettings, name: str) -> None:
    if name not in THEMES:
        raise ValueError(f"unknown theme {name!r}; choose one of {', '.join(THEMES)}")
    settings.setValue(_THEME_KEY, name)
