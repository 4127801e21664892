"""Tests for files: New/Open/Save/Save As/Revert, recent files, presets menu, drag-dropped files,
broken and newer-format presets, unwritable save paths."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from ui import settings as settings_mod
from workbench.presets import builtin_presets, load_builtin
from workbench.spec import dumps_preset, load_preset, preset_to_dict


def test_save_then_open_round_trip(make_window, tmp_path: Path) -> None:
    w = make_window()
    w.document.set_layer_param((0,), "routes", 3)
    w.document.set_field("train", "epochs", 7)
    target = tmp_path / "mine.json"
    w.ask_path = lambda mode, *a: str(target) if mode == "save" else None
    assert w.save()  # no path yet → Save As → ask_path
    assert not w.document.is_dirty() and not w.isWindowModified()
    assert w.document.path == target
    saved = preset_to_dict(w.document.preset())
    assert preset_to_dict(load_preset(target)) == saved
    other = make_window()
    other.ask_path = lambda mode, *a: str(target)
    assert other.open_dialog()
    assert preset_to_dict(other.document.preset()) == saved
    assert settings_mod.recent_files(other.settings)[0] == str(target.resolve())
    w.document.set_field("train", "epochs", 8)
    assert w.save() and load_preset(target).train.epochs == 8  # plain Save reuses the path


def test_revert_restores_the_file(make_window, tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(dumps_preset(load_builtin("z-digits")), encoding="utf-8")
    w = make_window()
    assert w.open_path(path)
    w.document.remove_layer((0,))
    assert w.action_revert.isEnabled()
    w.asked.answers = ["Discard"]
    assert w.revert()
    assert preset_to_dict(w.document.preset()) == preset_to_dict(load_preset(path))
    assert not w.document.is_dirty()


def test_new_and_open_ask_about_unsaved_changes(make_window, tmp_path: Path) -> None:
    w = make_window()
    w.document.set_field("train", "epochs", 99)
    w.asked.answers = ["Cancel"]
    assert not w.new_document()
    assert w.document.current.train.epochs == 99
    w.asked.answers = ["Discard"]
    assert w.new_document()
    assert w.document.current.model.layers == [] and w.document.path is None
    w.document.set_field("train", "epochs", 5)
    target = tmp_path / "saved-on-prompt.json"
    w.asked.answers = ["Save"]
    w.ask_path = lambda mode, *a: str(target)
    assert w.open_builtin("z-mnist")  # Save first (Save As → target), then open
    assert load_preset(target).train.epochs == 5
    assert w.document.current.name == load_builtin("z-mnist").name


def test_presets_menu_lists_builtins_with_descriptions(main_window) -> None:
    menu = main_window.menu("&Presets")
    actions = [a for a in menu.actions() if a.data()]
    infos = builtin_presets()
    assert [a.data() for a in actions] == [i.key for i in infos]
    for a, info in zip(actions, infos):
        assert a.toolTip() == (info.description or info.name) and a.statusTip()
    actions[1].trigger()
    assert main_window.document.current.name == infos[1].name
    assert "built-in" in main_window._path_label.text()


def test_recent_files_keep_the_last_eight(make_window, tmp_path: Path) -> None:
    w = make_window()
    text = dumps_preset(load_builtin("z-digits"))
    paths = []
    for i in range(10):
        p = tmp_path / f"r{i}.json"
        p.write_text(text, encoding="utf-8")
        paths.append(p)
        assert w.open_path(p)
    recent = settings_mod.recent_files(w.settings)
    assert recent == [str(p.resolve()) for p in reversed(paths)][:8]
    w._fill_recent()
    labels = [a.text() for a in w.recent_menu.actions() if a.toolTip() in recent]
    assert len(labels) == 8 and labels[0].endswith("r9.json")


def _drop_files(window, paths: list[Path]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(300, 300), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)


def test_drag_drop_a_preset_file_opens_it(make_window, tmp_path: Path, qtbot) -> None:
    path = tmp_path / "dropped.json"
    path.write_text(dumps_preset(load_builtin("infinite-parity")), encoding="utf-8")
    w = make_window()
    _drop_files(w, [path])
    qtbot.waitUntil(lambda: w.document.path == path, timeout=3000)
    assert w.document.current.name == load_builtin("infinite-parity").name


@pytest.mark.parametrize("content, expect", [
    ("{ not json", "not valid JSON"),
    (json.dumps({"format": "afwb.preset/99", "name": "future"}), "newer"),
    (json.dumps({"format": "afwb.preset/1", "model": {"layers": [{"params": {}}]}}), "type"),
])
def test_broken_preset_shows_problems_and_keeps_the_model(make_window, tmp_path: Path, qtbot,
                                                          content, expect) -> None:
    path = tmp_path / "broken.json"
    path.write_text(content, encoding="utf-8")
    w = make_window()
    w.document.set_field("train", "epochs", 42)  # unsaved edit that must survive
    before = preset_to_dict(w.document.preset())
    w.asked.answers = ["Discard", "OK"]  # unsaved prompt, then the problems dialog
    _drop_files(w, [path])
    qtbot.waitUntil(lambda: "Cannot open preset" in w.asked.titles(), timeout=3000)
    title, text, _buttons = w.asked.calls[-1]
    assert str(path) in text and expect in text
    assert preset_to_dict(w.document.preset()) == before


def test_missing_file_is_reported(main_window, tmp_path: Path) -> None:
    assert not main_window.open_path(tmp_path / "nope.json", confirm=False)
    assert "not found" in main_window.asked.calls[-1][1]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_save_path_says_so_and_stays_dirty(make_window, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        w = make_window()
        w.document.set_field("train", "epochs", 3)
        assert not w.save_to(locked / "x.json")
        title, text, _ = w.asked.calls[-1]
        assert title == "Cannot save" and str(locked / "x.json") in text
        assert w.document.is_dirty() and w.isWindowModified() and w.document.path is None
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_save_into_a_file_in_place_of_a_folder_fails_cleanly(make_window, tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    w = make_window()
    w.document.set_field("train", "epochs", 3)
    assert not w.save_to(blocker / "sub" / "x.json")
    assert w.asked.calls[-1][0] == "Cannot save" and w.document.is_dirty()
