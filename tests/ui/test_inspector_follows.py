"""The inspector always shows the selected card, after every kind of edit (issue #12, item 1).

Each test does one edit the way a user does it (palette double-click, drop, keys, menu actions,
undo/redo, clicks) and then asserts on what the inspector SHOWS — its group title, the layer type
line and the values in its widgets — against the card that is highlighted in the editor and the
document's layer at that card's path. Layers of one type get distinct parameter values, so a form
that shows the right type at the wrong place is caught too.
"""
from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt
from PySide6.QtWidgets import QApplication, QCheckBox

from tests.ui.conftest import double_click_item
from ui.inspector import BoolEditor, ChoiceEditor, NumberEditor, TextEditor
from ui.model_editor import MOVE_MIME
from ui.palette import LAYER_MIME
from workbench.registry import REGISTRY
from workbench.spec import LayerSpec, Preset

NO_LAYER_TEXT = "Select a card in the model to edit its parameters."


def _shown_value(editor: Any) -> Any:
    """The value a form widget displays (read from the widget, not from the document)."""
    if isinstance(editor, NumberEditor):
        if editor.mode is not None and editor.mode.currentText() != "number":
            return editor.mode.currentText()
        return editor.spin.value()
    if isinstance(editor, BoolEditor):
        return editor.check.isChecked()
    if isinstance(editor, ChoiceEditor):
        return editor.combo.currentText()
    if isinstance(editor, TextEditor):
        return editor.line.text()
    raise AssertionError(f"unknown editor {editor!r}")


def _expected_value(editor: Any, value: Any) -> Any:
    if isinstance(editor, ChoiceEditor):
        return str(value)
    if isinstance(editor, TextEditor):
        return "" if value is None else str(value)
    if isinstance(editor, BoolEditor):
        return bool(value)
    return value


def highlighted(window) -> list[tuple[int, ...]]:
    """Paths of the cards drawn as selected."""
    return [card.path for card in window.editor.layer_cards() if card.property("selected") is True]


def assert_inspector_shows(window, path: tuple[int, ...]) -> None:
    """The highlighted card is ``path`` and the inspector shows exactly that layer."""
    QApplication.processEvents()
    insp = window.inspector
    assert highlighted(window) == [path]
    layer = window.document.layer(path)
    entry = REGISTRY[layer.type]
    assert insp.layer_box.title() == "Layer #" + ".".join(str(i) for i in path)
    assert insp.layer_title.text().split("  ·  ")[0] == layer.type
    assert insp.layer_summary.text() == entry.summary
    shown = {name: _shown_value(ed) for name, ed in insp.layer_editors.items() if name != "__trainable__"}
    expected = {spec.name: _expected_value(insp.layer_editors[spec.name], layer.params.get(spec.name, spec.default))
                for spec in entry.params}
    assert shown == expected
    assert insp.findChild(QCheckBox, "trainableCheck").isChecked() == layer.trainable


def assert_inspector_shows_nothing(window) -> None:
    QApplication.processEvents()
    assert highlighted(window) == []
    assert window.inspector.layer_box.title() == "Layer"
    assert window.inspector.layer_summary.text() == NO_LAYER_TEXT


def zlinear(out_features: int) -> LayerSpec:
    return LayerSpec("ZLinear", {"out_features": out_features})


def mlp_preset() -> Preset:
    """Flatten, then three ZLinear layers told apart by their widths (parity: a flat input)."""
    preset = Preset(name="inspector test")
    preset.task.dataset = "parity"
    preset.model.layers = [LayerSpec("Flatten"), zlinear(31), zlinear(32), zlinear(33),
                           LayerSpec("InfiniteDepth", {}, body=[zlinear(34)])]
    return preset


@pytest.fixture
def window(make_window, qtbot):
    w = make_window(mlp_preset())
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    return w


def click_card(qtbot, window, path) -> None:
    QApplication.processEvents()   # lay out the cards of the last rebuild
    qtbot.mouseClick(window.editor.card_for(path), Qt.MouseButton.LeftButton, pos=QPoint(6, 6))


def drop(window, mime: QMimeData, widget, where: str) -> bool:
    QApplication.processEvents()
    rect = widget.rect()
    local = {"top": QPoint(rect.center().x(), 3), "bottom": QPoint(rect.center().x(), rect.height() - 3),
             "center": rect.center()}[where]
    return window.editor.handle_drop(mime, widget.mapTo(window.editor.canvas, local))


def mime(kind: str, data: bytes) -> QMimeData:
    m = QMimeData()
    m.setData(kind, data)
    return m


def test_click_shows_the_clicked_card(window, qtbot) -> None:
    for path in ((2,), (0,), (4,), (4, 0), (3,)):
        click_card(qtbot, window, path)
        assert_inspector_shows(window, path)


def test_add_by_double_click_shows_the_new_layer(window, qtbot) -> None:
    click_card(qtbot, window, (1,))
    double_click_item(qtbot, window.palette.tree, window.palette.item_for("HanLayer"))
    assert window.document.layer((2,)).type == "HanLayer"
    assert_inspector_shows(window, (2,))
    double_click_item(qtbot, window.palette.tree, window.palette.item_for("ZLinear"))
    assert_inspector_shows(window, (3,))
    assert window.document.layer((3,)).params == {}   # the new one, not the ZLinear(32) that was at (3,)


def test_add_by_drag_from_the_palette_shows_the_new_layer(window, qtbot) -> None:
    click_card(qtbot, window, (3,))
    assert drop(window, mime(LAYER_MIME, b"HanLayer"), window.editor.card_for((1,)), "top")
    assert window.document.layer((1,)).type == "HanLayer"
    assert_inspector_shows(window, (1,))


def test_drop_into_a_body_shows_the_new_layer(window, qtbot) -> None:
    click_card(qtbot, window, (1,))
    body_card = window.editor.card_for((4, 0))
    assert drop(window, mime(LAYER_MIME, b"HanLayer"), body_card, "bottom")
    assert window.document.layer((4, 1)).type == "HanLayer"
    assert_inspector_shows(window, (4, 1))


def test_duplicate_shows_the_copy(window, qtbot) -> None:
    click_card(qtbot, window, (2,))
    window.document.set_layer_param((2,), "out_features", 40)
    qtbot.keyClick(window.editor, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert [l.params.get("out_features") for l in window.document.current.model.layers[1:5]] == [31, 40, 40, 33]
    assert_inspector_shows(window, (3,))
    window.inspector.layer_editor("out_features").spin.setValue(41)   # edits the copy, not the original
    assert [l.params.get("out_features") for l in window.document.current.model.layers[1:5]] == [31, 40, 41, 33]


@pytest.mark.parametrize("key, start, end", [(Qt.Key.Key_Down, (1,), (2,)), (Qt.Key.Key_Up, (3,), (2,))])
def test_move_with_alt_arrows_follows_the_layer(window, qtbot, key, start, end) -> None:
    click_card(qtbot, window, start)
    width = window.document.layer(start).params["out_features"]
    qtbot.keyClick(window.editor, key, Qt.KeyboardModifier.AltModifier)
    assert window.document.layer(end).params["out_features"] == width
    assert_inspector_shows(window, end)


def test_move_by_dragging_a_card_follows_the_layer(window, qtbot) -> None:
    click_card(qtbot, window, (1,))
    assert drop(window, mime(MOVE_MIME, b"[1]"), window.editor.card_for((3,)), "bottom")
    assert window.document.layer((3,)).params["out_features"] == 31
    assert_inspector_shows(window, (3,))
    # into a container's body
    assert drop(window, mime(MOVE_MIME, b"[3]"), window.editor.card_for((4, 0)), "top")
    assert window.document.layer((3, 0)).params["out_features"] == 31
    assert_inspector_shows(window, (3, 0))


def test_delete_shows_the_card_that_takes_its_place(window, qtbot) -> None:
    click_card(qtbot, window, (2,))
    qtbot.keyClick(window.editor, Qt.Key.Key_Delete)
    assert window.document.layer((2,)).params["out_features"] == 33
    assert_inspector_shows(window, (2,))
    click_card(qtbot, window, (3, 0))          # the only layer of a body: the container is selected next
    qtbot.keyClick(window.editor, Qt.Key.Key_Delete)
    assert window.document.layer((3,)).body == []
    assert_inspector_shows(window, (3,))
    window.action_delete.trigger()             # the last layer: the one before it is selected
    assert_inspector_shows(window, (2,))


def test_undo_and_redo_show_the_layer_they_restore(window, qtbot) -> None:
    click_card(qtbot, window, (1,))
    qtbot.keyClick(window.editor, Qt.Key.Key_Down, Qt.KeyboardModifier.AltModifier)   # 31 moves to (2,)
    click_card(qtbot, window, (3,))
    qtbot.keyClick(window.editor, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo the move
    assert window.document.layer((1,)).params["out_features"] == 31
    assert_inspector_shows(window, (1,))
    qtbot.keyClick(window.editor, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)  # redo it
    assert window.document.layer((2,)).params["out_features"] == 31
    assert_inspector_shows(window, (2,))
    click_card(qtbot, window, (3,))
    qtbot.keyClick(window.editor, Qt.Key.Key_Delete)
    click_card(qtbot, window, (0,))
    window.action_undo.trigger()                                                      # undo the delete
    assert window.document.layer((3,)).params["out_features"] == 33
    assert_inspector_shows(window, (3,))
    window.action_redo.trigger()
    assert_inspector_shows(window, (3,))      # redo deletes it again: the next card is shown


def test_undo_of_an_add_or_a_duplicate_shows_the_layer_before_it(window, qtbot) -> None:
    n = len(window.document.current.model.layers)
    click_card(qtbot, window, (3,))
    double_click_item(qtbot, window.palette.tree, window.palette.item_for("HanLayer"))
    assert_inspector_shows(window, (4,))
    window.action_undo.trigger()
    assert len(window.document.current.model.layers) == n
    assert_inspector_shows(window, (3,))       # the layer the new one was added after
    window.action_redo.trigger()
    assert_inspector_shows(window, (4,))
    assert window.document.layer((4,)).type == "HanLayer"
    click_card(qtbot, window, (5, 0))
    qtbot.keyClick(window.editor, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert_inspector_shows(window, (5, 1))
    window.action_undo.trigger()               # undo a duplicate in a body: the original is shown
    assert_inspector_shows(window, (5, 0))
    click_card(qtbot, window, (0,))
    double_click_item(qtbot, window.palette.tree, window.palette.item_for("HanLayer"))
    click_card(qtbot, window, (0,))
    window.action_undo.trigger()
    assert_inspector_shows(window, (0,))


def test_param_edit_then_undo_keeps_the_layer_shown(window, qtbot) -> None:
    click_card(qtbot, window, (2,))
    window.inspector.layer_editor("out_features").spin.setValue(50)
    assert_inspector_shows(window, (2,))
    window.action_undo.trigger()
    assert window.document.layer((2,)).params["out_features"] == 32
    assert_inspector_shows(window, (2,))


def test_clicking_the_selected_card_refreshes_the_inspector(window, qtbot) -> None:
    click_card(qtbot, window, (2,))
    window.inspector.show_selection(None)        # whatever made it stale…
    assert window.inspector.layer_summary.text() == NO_LAYER_TEXT
    click_card(qtbot, window, (2,))              # …one click on the highlighted card shows it again
    assert_inspector_shows(window, (2,))


def test_new_and_open_show_no_layer(window, qtbot) -> None:
    click_card(qtbot, window, (2,))
    window.action_new.trigger()
    assert_inspector_shows_nothing(window)
    window.open_builtin("z-digits")
    assert_inspector_shows_nothing(window)
    click_card(qtbot, window, (0,))
    assert_inspector_shows(window, (0,))


def test_keyboard_selection_shows_the_card(window, qtbot) -> None:
    click_card(qtbot, window, (1,))
    qtbot.keyClick(window.editor, Qt.Key.Key_Down)
    assert_inspector_shows(window, (2,))
    qtbot.keyClick(window.editor, Qt.Key.Key_Up)
    assert_inspector_shows(window, (1,))

