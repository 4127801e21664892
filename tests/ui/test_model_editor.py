"""Tests for ui.model_editor: cards match infer_shapes, invalid cards, containers, drops, speed."""
from __future__ import annotations

import time

import pytest
from PySide6.QtWidgets import QApplication
from PySide6.QtCore import QMimeData, QPoint, Qt

from ui.cards import format_count, format_shape
from ui.document import iter_paths, json_path
from ui.model_editor import MOVE_MIME
from ui.palette import LAYER_MIME
from workbench.presets import builtin_keys, load_builtin
from workbench.spec import LayerSpec, infer_shapes


def _shape_rows(report) -> dict:
    out = {}

    def walk(items):
        for item in items:
            out[item.path] = item
            walk(item.children or [])
    walk(report.layers)
    return out


def assert_cards_match_report(window) -> None:
    """Every visible card's output shape and parameter count equal infer_shapes of the document."""
    report = infer_shapes(window.document.preset())
    rows = _shape_rows(report)
    for card in window.editor.layer_cards():
        row = rows[json_path(card.path)]
        if row.output_shape is not None:
            assert card.shape.text() == f"→ {format_shape(row.output_shape)}", card.path
            assert card.params.text() == f"{format_count(row.params)} params", card.path
    footer = window.editor.params_label.text()
    assert format_count(report.total_params) in footer and format_count(report.trainable_params) in footer


def test_object_name_and_end_cards(main_window) -> None:
    editor = main_window.editor
    assert editor.objectName() == "modelEditor"
    assert editor.input_card.shape.text() == "1×8×8"  # z-digits: scikit-learn digits
    assert "10 classes" in editor.output_card.subtitle.text()
    assert_cards_match_report(main_window)


@pytest.mark.parametrize("key", builtin_keys())
def test_every_builtin_preset_shows_its_layers(make_window, key) -> None:
    """Opening each built-in shows one card per layer (nested bodies included) with matching shapes."""
    window = make_window()
    assert window.open_builtin(key)
    preset = window.document.current
    assert len(window.editor.layer_cards()) == len(iter_paths(preset.model.layers))
    assert len(window.editor._top_cards) == len(preset.model.layers)
    assert window.run_block_reason() is None, window.run_block_reason()
    assert_cards_match_report(window)
    # the output card expects what the model gives (one logit under loss bce: infinite-parity)
    expected = f"expects {format_shape(infer_shapes(preset).output_shape)}"
    assert window.editor.output_card.detail.text() == expected


def test_impossible_edit_marks_the_card_and_blocks_run(main_window, qtbot) -> None:
    reasons = []
    main_window.validity_changed.connect(reasons.append)
    assert main_window.run_block_reason() is None
    main_window.document.set_layer_param((0,), "kernel_size", 40)  # 8×8 input
    reason = main_window.run_block_reason()
    assert reason and "kernel" in reason.lower()
    assert reasons and reasons[-1] == reason
    card = main_window.editor.card_for((0,))
    assert card.property("invalid") is True
    assert card.problem.isVisibleTo(card) and card.problem.text()
    assert main_window.editor.block_label.isVisibleTo(main_window.editor)
    assert reason in main_window.editor.block_label.text()
    main_window.document.undo_stack.undo()
    assert main_window.run_block_reason() is None
    assert reasons[-1] is None
    assert not main_window.editor.card_for((0,)).property("invalid")


def test_container_body_nested_and_collapsible(make_window) -> None:
    window = make_window(load_builtin("infinite-parity"))
    containers = [c for c in window.editor.layer_cards() if c.container]
    assert containers, "infinite-parity has an InfiniteDepth container"
    card = containers[0]
    assert card.body_cards and all(c.path[:-1] == card.path for c in card.body_cards)
    n = len(card.body_cards)
    window.editor.set_collapsed(card.path, True)
    assert not window.editor.card_for(card.path).body_visible()
    assert all(window.editor._cards.get(card.path + (i,)) is None for i in range(n))
    window.editor.set_collapsed(card.path, False)
    assert len(window.editor.card_for(card.path).body_cards) == n


def _drop(window, mime: QMimeData, widget, where: str = "center") -> bool:
    from PySide6.QtWidgets import QApplication

    QApplication.processEvents()  # lay out the cards of the last rebuild, as the event loop would
    editor = window.editor
    rect = widget.rect()
    local = {"top": QPoint(rect.center().x(), 3), "bottom": QPoint(rect.center().x(), rect.height() - 3),
             "center": rect.center()}[where]
    return editor.handle_drop(mime, widget.mapTo(editor.canvas, local))


def test_drop_palette_layer_at_cursor_and_into_body(make_window, qtbot) -> None:
    window = make_window()
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    mime = QMimeData()
    mime.setData(LAYER_MIME, b"Residual")
    n = len(window.document.current.model.layers)
    assert _drop(window, mime, window.editor.card_for((1,)), "top")  # above card 1 → index 1
    assert window.document.current.model.layers[1].type == "Residual"
    assert len(window.document.current.model.layers) == n + 1
    QApplication.processEvents()
    body = window.editor.card_for((1,)).body
    inner = QMimeData()
    inner.setData(LAYER_MIME, b"Identity")
    assert _drop(window, inner, body, "center")  # empty body → into the body
    assert [layer.type for layer in window.document.current.model.layers[1].body] == ["Identity"]
    assert window.editor.selected() == (1, 0)
    assert_cards_match_report(window)


def test_drag_card_to_reorder(make_window, qtbot) -> None:
    window = make_window()
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    types = [layer.type for layer in window.document.current.model.layers]
    mime = QMimeData()
    mime.setData(MOVE_MIME, b"[0]")
    last = window.editor.card_for((len(types) - 1,))
    assert _drop(window, mime, last, "bottom")
    assert [layer.type for layer in window.document.current.model.layers] == types[1:] + types[:1]
    window.document.undo_stack.undo()
    assert [layer.type for layer in window.document.current.model.layers] == types


def test_click_selects_and_delete_key_removes(main_window, qtbot) -> None:
    main_window.show()
    qtbot.waitExposed(main_window)
    n = len(main_window.document.current.model.layers)
    card = main_window.editor.card_for((1,))
    qtbot.mouseClick(card, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    assert main_window.editor.selected() == (1,)
    assert card.property("selected") is True
    qtbot.keyClick(main_window.editor, Qt.Key.Key_Delete)
    assert len(main_window.document.current.model.layers) == n - 1
    assert main_window.action_delete.shortcut().toString() == "Del"
    main_window.action_delete.trigger()  # Edit → Delete layer (the selection moved to the next card)
    assert len(main_window.document.current.model.layers) == n - 2


def test_rebuild_is_fast_for_the_30_layer_twist_preset(make_window, cpu_reference) -> None:
    """A full rebuild of the largest built-in (twist-resnet-cifar10) costs less GUI-thread CPU time
    than 10 × the suite's reference work (~5 ms each: the former 50 ms budget on the development
    machine), both timed in this process at the same time, so a slower or loaded machine moves both
    alike."""
    window = make_window(load_builtin("twist-resnet-cifar10"))
    cards = len(window.editor.layer_cards())
    assert cards >= 20
    cpu = []
    for _ in range(5):
        cpu_reference.sample()
        t0 = time.thread_time()
        window.editor.rebuild()
        cpu.append((time.thread_time() - t0) * 1000)
    unit = cpu_reference.best()
    print(f"rebuild of {cards} cards: best CPU {min(cpu):.1f} ms = {min(cpu) / unit:.1f} x the reference work "
          f"({unit:.2f} ms)")
    assert min(cpu) < 10 * unit, f"a rebuild took {min(cpu):.0f} ms of CPU, {min(cpu) / unit:.1f} x the reference work"


def test_read_only_banner_and_refused_drop(main_window) -> None:
    main_window.document.set_read_only(True, "a run is training this model")
    assert main_window.editor.read_only_banner.isVisibleTo(main_window.editor)
    assert "training" in main_window.editor.read_only_banner.text()
    mime = QMimeData()
    mime.setData(LAYER_MIME, b"Flatten")
    n = len(main_window.document.current.model.layers)
    assert not main_window.editor.handle_drop(mime, QPoint(10, 10))
    assert len(main_window.document.current.model.layers) == n
    assert not main_window.action_delete.isEnabled()
    main_window.document.set_read_only(False, "")
    assert not main_window.editor.read_only_banner.isVisibleTo(main_window.editor)


def test_unknown_layer_type_shows_a_card_with_the_problem(make_window) -> None:
    preset = load_builtin("z-digits")
    preset.model.layers.insert(1, LayerSpec("ZConv3d"))
    window = make_window(preset)
    card = window.editor.card_for((1,))
    assert card.property("invalid") is True and "ZConv3d" in (window.run_block_reason() or "")
