"""Tests for ui.document: edits, undo/redo exactness, merging, read-only, analysis."""
from __future__ import annotations

import pytest

from ui.document import Analysis, PresetDocument, ReadOnlyError, json_path, make_layer
from workbench.presets import load_builtin
from workbench.spec import LayerSpec, preset_to_dict


@pytest.fixture
def doc(qapp) -> PresetDocument:
    return PresetDocument(load_builtin("z-digits"))


def test_every_edit_undoes_exactly_and_redoes(doc: PresetDocument) -> None:
    """Each kind of edit is one undo step that restores the previous spec exactly."""
    states = [preset_to_dict(doc.preset())]
    doc.insert_layer((), 1, make_layer("Residual"))
    states.append(preset_to_dict(doc.preset()))
    doc.insert_layer((1,), 0, make_layer("Linear"))
    states.append(preset_to_dict(doc.preset()))
    doc.set_layer_param((0,), "routes", 2)
    states.append(preset_to_dict(doc.preset()))
    doc.set_layer_trainable((0,), False)
    states.append(preset_to_dict(doc.preset()))
    doc.move_layer((0,), (), 3)
    states.append(preset_to_dict(doc.preset()))
    doc.duplicate_layer((1,))
    states.append(preset_to_dict(doc.preset()))
    doc.remove_layer((2,))
    states.append(preset_to_dict(doc.preset()))
    doc.set_field("train", "lr", 0.01)
    states.append(preset_to_dict(doc.preset()))
    assert doc.undo_stack.count() == len(states) - 1
    for expected in reversed(states[:-1]):
        doc.undo_stack.undo()
        assert preset_to_dict(doc.preset()) == expected
    assert not doc.is_dirty()
    for expected in states[1:]:
        doc.undo_stack.redo()
        assert preset_to_dict(doc.preset()) == expected


def test_consecutive_edits_of_one_field_merge(doc: PresetDocument) -> None:
    """Typing 1, 12, 128 into one field is a single undo step; another field is a new step."""
    before = preset_to_dict(doc.preset())
    for v in (1, 12, 128):
        doc.set_field("task", "batch_size", v)
    assert doc.undo_stack.count() == 1
    doc.set_field("train", "epochs", 3)
    assert doc.undo_stack.count() == 2
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert preset_to_dict(doc.preset()) == before


def test_changed_emitted_for_edit_undo_redo_and_load(doc: PresetDocument, qtbot) -> None:
    for action in (lambda: doc.set_field("train", "seed", 5), doc.undo_stack.undo, doc.undo_stack.redo,
                   lambda: doc.load(load_builtin("z-mnist"))):
        with qtbot.waitSignal(doc.changed, timeout=1000):
            action()
    assert doc.undo_stack.count() == 0 and not doc.is_dirty()


def test_read_only_refuses_edits(doc: PresetDocument) -> None:
    doc.set_read_only(True, "training in progress")
    assert doc.is_read_only()
    with pytest.raises(ReadOnlyError, match="training in progress"):
        doc.set_layer_param((0,), "routes", 2)
    doc.set_read_only(False, "")
    doc.set_layer_param((0,), "routes", 2)
    assert doc.current.model.layers[0].params["routes"] == 2


def test_move_into_own_body_is_refused(doc: PresetDocument) -> None:
    doc.insert_layer((), 0, LayerSpec("Residual", body=[LayerSpec("Linear")]))
    with pytest.raises(ValueError):
        doc.move_layer((0,), (0,), 0)


def test_preset_returns_a_copy(doc: PresetDocument) -> None:
    copy = doc.preset()
    copy.model.layers.clear()
    assert doc.current.model.layers


def test_analysis_maps_problems_to_layers(doc: PresetDocument) -> None:
    import torch  # noqa: F401

    doc.set_layer_param((0,), "kernel_size", 64)
    analysis = Analysis(doc.current, with_shapes=True)
    assert analysis.block_reason() is not None
    assert json_path((0,)) in analysis.layer_problems
    assert analysis.report is not None
    ok = Analysis(load_builtin("z-digits"), with_shapes=False)
    assert ok.block_reason() is None and ok.report is None
