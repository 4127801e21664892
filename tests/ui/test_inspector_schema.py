"""The inspector's task/train/monitor forms come from the sections' schema: same ranges, choices and
defaults as validation, values shown as they are (never clamped, never written back), the option
rows of the dataset, optimiser and augmentations, Import…, and the limit-training-samples field."""
from __future__ import annotations

import math

import numpy as np
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QLineEdit

import ui.data_controls as data_controls
from ui.inspector import NOT_SET, ChoiceEditor, ListEditor, MultiChoiceEditor, NumberEditor
from workbench.sections import OPTIMIZER_OPTIONS, SECTIONS, section_schema
from workbench.spec import load_preset, preset_from_dict, preset_to_dict, save_preset

BIG = {"name": "big", "task": {"dataset": "digits", "batch_size": 200_000, "limit_train": 1000},
       "model": {"layers": [{"type": "Flatten"}, {"type": "Linear", "params": {"out_features": "classes"}}]},
       "train": {"lr": 50.0, "weight_decay": 5.0, "seed": 4_000_000_000, "grad_clip": 1e8, "epochs": 200_000}}


def _load(window, tmp_path, document: dict):
    path = tmp_path / "p.json"
    save_preset(preset_from_dict(document), path)
    window.document.load(load_preset(path), path)
    return window.inspector


def _shown(editor) -> object:
    return editor.value() if isinstance(editor, NumberEditor) else None


def test_the_lr_50_preset_round_trips_through_the_inspector_unchanged(main_window, tmp_path):
    insp = _load(main_window, tmp_path, BIG)
    before = preset_to_dict(main_window.document.preset())
    for (section, name), value in {("train", "lr"): 50.0, ("task", "batch_size"): 200_000,
                                   ("train", "weight_decay"): 5.0, ("train", "seed"): 4_000_000_000,
                                   ("train", "grad_clip"): 1e8, ("train", "epochs"): 200_000,
                                   ("task", "limit_train"): 1000}.items():
        assert _shown(insp.field_editor(section, name)) == value, (section, name)
    insp.field_editor("train", "momentum").spin.setValue(0.5)  # an edit elsewhere …
    after = preset_to_dict(main_window.document.preset())
    assert after["train"].pop("momentum") == 0.5
    before["train"].pop("momentum")
    assert after == before  # … changes nothing else
    insp.field_editor("train", "lr").spin.stepBy(1)  # 1-2-5 steps from the value shown: 50 → 100
    assert main_window.document.current.train.lr == 100.0


def test_an_out_of_range_value_is_shown_as_it_is_and_not_written_back(main_window, tmp_path):
    insp = _load(main_window, tmp_path, {**BIG, "train": {"lr": 1e9, "seed": -3}})
    assert _shown(insp.field_editor("train", "lr")) == 1e9  # invalid: validation says so, the form shows it
    assert _shown(insp.field_editor("train", "seed")) == -3
    insp.field_editor("task", "batch_size").spin.setValue(64)
    assert (main_window.document.current.train.lr, main_window.document.current.train.seed) == (1e9, -3)


def test_every_field_widget_has_the_tables_range_and_choices(main_window):
    insp = main_window.inspector
    for section, cls in SECTIONS.items():
        for name, spec in section_schema(cls).items():
            if spec.kind == "object":
                continue
            ed = insp.field_editor(section, name)
            assert ed.toolTip().startswith(spec.help), name
            label = ed.parentWidget().layout().labelForField(ed)
            assert label is not None and label.text() == spec.title, name
            if spec.kind in ("int", "float"):
                assert isinstance(ed, NumberEditor), name
                low = ed.spin.minimum() if not spec.nullable else ed.spin.minimum() + 1
                assert math.isclose(low, spec.min) and math.isclose(ed.spin.maximum(), spec.max), name
            elif spec.kind == "choice" and name != "device":
                assert isinstance(ed, ChoiceEditor) and tuple(ed._values) == spec.choices, name
            elif spec.kind == "list":
                assert isinstance(ed, (ListEditor, MultiChoiceEditor)), name


def test_limit_training_samples_is_all_or_a_count(main_window):
    insp = main_window.inspector
    ed = insp.field_editor("task", "limit_train")
    assert main_window.document.current.task.limit_train is None and ed.spin.text() == NOT_SET
    ed.spin.setValue(5000)
    assert main_window.document.current.task.limit_train == 5000
    ed.spin.setValue(ed.spin.minimum())
    assert main_window.document.current.task.limit_train is None


def test_dataset_optimiser_and_augmentation_options_follow_their_field(main_window):
    insp = main_window.inspector
    doc = main_window.document
    doc.set_field("task", "dataset", "parity")
    insp.option_editors["n_inputs"].spin.setValue(12)
    assert doc.current.task.options == {"n_inputs": 12}
    insp.field_editor("task", "dataset").combo.setCurrentText("spirals")  # parity's options do not apply
    assert (doc.current.task.dataset, doc.current.task.options) == ("spirals", {})
    doc.undo_stack.undo()
    assert (doc.current.task.dataset, doc.current.task.options) == ("parity", {"n_inputs": 12})

    insp.field_editor("train", "optimizer").combo.setCurrentText("adadelta")
    group = insp.option_groups[1]
    assert set(group.editors) == set(OPTIMIZER_OPTIONS["adadelta"])
    group.editors["rho"].spin.setValue(0.95)
    assert doc.current.train.optimizer_options == {"rho": 0.95}
    insp.field_editor("train", "optimizer").combo.setCurrentText("sgd")
    assert doc.current.train.optimizer_options == {}

    doc.set_field("task", "dataset", "digits")
    augment = insp.field_editor("task", "augment")
    augment.checks["affine"].setChecked(True)
    assert doc.current.task.augment == ["affine"]
    rows = insp.option_groups[2].editors
    rows["affine.translate"].spin.setValue(0.3)
    assert doc.current.task.augment_options == {"affine": {"translate": 0.3}}
    augment.checks["affine"].setChecked(False)
    assert (doc.current.task.augment, doc.current.task.augment_options) == ([], {})


def test_milestones_are_typed_as_a_list(main_window, qtbot):
    ed = main_window.inspector.field_editor("train", "milestones")
    line = ed.findChild(QLineEdit)
    line.setText("0.3, 0.6, 0.9")
    line.editingFinished.emit()
    assert main_window.document.current.train.milestones == [0.3, 0.6, 0.9]
    line.setText("0.3, half")
    line.editingFinished.emit()
    assert main_window.document.current.train.milestones == [0.3, 0.6, 0.9]  # not a list of numbers: not taken


def test_import_a_csv_is_one_undoable_edit_and_its_problems_show(main_window, qtbot, tmp_path, monkeypatch):
    insp = main_window.inspector
    doc = main_window.document
    (tmp_path / "t.csv").write_text("a,b,kind\n1,2,x\n3,4,y\n5,6,x\n")
    monkeypatch.setattr(data_controls, "ask_open_file", lambda *a: str(tmp_path / "t.csv"))
    before = doc.undo_stack.count()
    insp.data_controls.import_actions["csv"].trigger()
    assert doc.current.task.dataset == "csv"
    assert doc.current.task.options == {"path": str(tmp_path / "t.csv"), "target": "kind"}  # untitled: absolute
    assert doc.undo_stack.count() == before + 1
    assert insp.option_editors["path"].findChild(QLineEdit).text() == str(tmp_path / "t.csv")
    problem = insp.findChild(QLabel, "dataProblem")
    assert problem.isHidden()
    qtbot.keyClick(insp.option_editors["target"].findChild(QLineEdit), "\b")  # types: "kin"
    assert doc.current.task.options["target"] == "kin"
    assert not problem.isHidden() and "did you mean 'kind'" in problem.text()
    doc.undo_stack.undo()
    doc.undo_stack.undo()
    assert doc.current.task.dataset == "digits"


def test_a_browsed_file_is_relative_to_the_preset(main_window, tmp_path, monkeypatch):
    folder = tmp_path / "project"
    (folder / "data").mkdir(parents=True)
    np.savez(folder / "data" / "a.npz", x=np.zeros((4, 3)), y=np.arange(4) % 2)
    insp = _load(main_window, folder, {**BIG, "task": {"dataset": "npz"}})
    monkeypatch.setattr(data_controls, "ask_open_file", lambda *a: str(folder / "data" / "a.npz"))
    insp.option_editors["path"].browse.click()
    assert main_window.document.current.task.options == {"path": "data/a.npz"}
    assert main_window.editor.findChildren(QLabel)  # the editor rebuilt on the new input shape without error


def test_the_data_rows_are_there_for_downloadable_sets(main_window):
    insp = main_window.inspector
    main_window.document.set_field("task", "dataset", "cifar10")
    assert not insp.data_controls.download_row.isHidden()
    assert insp.findChild(QCheckBox, "field_task_normalize") is not None
    assert insp.findChild(QComboBox, "field_task_dataset").currentText() == "cifar10"
