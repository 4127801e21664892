"""Tests for ui.inspector: schema-generated widgets, ranges, placeholders, sections, undo merging."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QSpinBox

from ui.inspector import NumberSpin
from workbench.registry import REGISTRY
from workbench.spec import preset_to_dict


def _select(window, path):
    window.editor.select(path)
    return window.inspector


def test_form_follows_the_registry_schema(main_window) -> None:
    insp = _select(main_window, (0,))
    assert insp.objectName() == "inspector"
    entry = REGISTRY[main_window.document.current.model.layers[0].type]
    assert set(insp.layer_editors) == {p.name for p in entry.params} | {"__trainable__"}
    for spec in entry.params:
        w = insp.findChild(QSpinBox if spec.kind == "int" else QDoubleSpinBox if spec.kind == "float"
                           else QCheckBox if spec.kind == "bool" else QComboBox, f"param_{spec.name}")
        assert w is not None, spec.name
        if spec.kind == "int":
            assert (w.minimum(), w.maximum()) == (int(spec.min), int(spec.max))
    assert insp.findChild(QCheckBox, "trainableCheck") is not None


def test_out_of_range_values_cannot_be_entered(main_window, qtbot) -> None:
    insp = _select(main_window, (0,))
    spin = insp.findChild(QSpinBox, "param_routes")
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin, "999")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    routes = main_window.document.current.model.layers[0].params.get("routes")
    assert routes is not None and routes <= REGISTRY["ZConv2d"].param("routes").max
    spin.setValue(-5)
    assert spin.value() >= 1


def test_typed_value_applies_immediately_and_merges(main_window, qtbot) -> None:
    insp = _select(main_window, (0,))
    before = preset_to_dict(main_window.document.preset())
    spin = insp.findChild(QSpinBox, "param_out_channels")
    for v in (3, 33, 32):
        spin.setValue(v)
    assert main_window.document.current.model.layers[0].params["out_channels"] == 32
    assert main_window.document.undo_stack.count() == 1
    assert main_window.editor.card_for((0,)).shape.text().startswith("→ 32×")
    main_window.action_undo.trigger()
    assert preset_to_dict(main_window.document.preset()) == before
    assert spin.value() == before["model"]["layers"][0]["params"]["out_channels"]  # widget follows undo


def test_placeholder_combo_switches_between_number_and_classes(main_window) -> None:
    last = (len(main_window.document.current.model.layers) - 1,)
    insp = _select(main_window, last)
    mode = insp.findChild(QComboBox, "mode_out_features")
    spin = insp.findChild(QSpinBox, "param_out_features")
    assert mode.currentText() == "classes" and not spin.isEnabled()
    mode.setCurrentText("number")
    assert isinstance(main_window.document.current.model.layers[-1].params["out_features"], int)
    assert spin.isEnabled()
    mode.setCurrentText("classes")
    assert main_window.document.current.model.layers[-1].params["out_features"] == "classes"


def test_trainable_checkbox_freezes_the_layer(main_window) -> None:
    insp = _select(main_window, (0,))
    check = insp.findChild(QCheckBox, "trainableCheck")
    total = main_window.analysis().report.trainable_params
    check.setChecked(False)
    assert main_window.document.current.model.layers[0].trainable is False
    assert main_window.analysis().report.trainable_params < total
    assert main_window.editor.card_for((0,)).property("frozen") is True


def test_task_train_monitor_sections(main_window) -> None:
    insp = main_window.inspector
    doc = main_window.document
    insp.findChild(QComboBox, "field_task_dataset").setCurrentText("mnist")
    assert doc.current.task.dataset == "mnist"
    assert main_window.editor.input_card.shape.text() == "1×28×28"
    insp.findChild(QSpinBox, "field_task_batch_size").setValue(64)
    insp.findChild(QSpinBox, "field_train_epochs").setValue(3)
    insp.findChild(QComboBox, "field_train_optimizer").setCurrentText("sgd")
    insp.findChild(QSpinBox, "field_monitor_every_steps").setValue(7)
    insp.findChild(QComboBox, "field_train_precision").setCurrentText("bf16")
    lr = insp.findChild(NumberSpin, "field_train_lr")
    lr.setValue(0.001)
    lr.stepBy(1)
    assert abs(doc.current.train.lr - 0.002) < 1e-12  # 1-2-5 ladder
    lr.stepBy(-2)
    assert abs(doc.current.train.lr - 0.0005) < 1e-12
    assert (doc.current.task.batch_size, doc.current.train.epochs, doc.current.train.optimizer,
            doc.current.monitor.every_steps, doc.current.train.precision) == (64, 3, "sgd", 7, "bf16")


def test_device_choices_come_from_torch(main_window) -> None:
    from workbench.devices import available_devices

    combo = main_window.inspector.findChild(QComboBox, "field_train_device")
    items = [combo.itemText(i) for i in range(combo.count())]
    assert items[:1] == ["auto"] and "cpu" in items
    for d in ("cuda", "mps"):
        assert (d in items) == (d in available_devices())


def test_dataset_options_rows(main_window) -> None:
    from workbench.datasets import DATASETS

    for name in ("parity", "spirals"):
        main_window.document.set_field("task", "dataset", name)
        assert set(main_window.inspector.option_editors) == set(DATASETS[name].option_schema)


def test_read_only_disables_the_form(main_window) -> None:
    insp = _select(main_window, (0,))
    main_window.document.set_read_only(True, "training")
    assert not insp.layer_box.isEnabled() and insp.banner.isVisibleTo(insp)
    main_window.document.set_read_only(False, "")
    assert insp.layer_box.isEnabled()


def test_number_spin_rejects_garbage() -> None:
    from PySide6.QtGui import QValidator

    spin = NumberSpin(0.0, 1.0)
    assert spin.validate("abc", 0)[0] == QValidator.State.Invalid
    assert spin.validate("1e-", 0)[0] == QValidator.State.Intermediate
    assert spin.validate("5", 0)[0] == QValidator.State.Intermediate  # above max: not acceptable
    assert spin.validate("0.25", 0)[0] == QValidator.State.Acceptable
    assert spin.textFromValue(1e-8) == "1e-08"
