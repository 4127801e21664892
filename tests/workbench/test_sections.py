"""workbench.sections: every task/train/monitor field declared once; validation and the command line
derived from that declaration."""
from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import pytest

from workbench import cli
from workbench.sections import (AUGMENT_OPTIONS, OPTIMIZER_OPTIONS, SECTIONS, MonitorSpec, TaskSpec, TrainSpec,
                                section_schema)
from workbench.spec import Preset, load_preset, preset_from_dict, preset_to_dict, save_preset, validate

#: The lr 50 / batch 200,000 / weight decay 5 preset: valid, and beyond the old inspector's widgets.
BIG = {"name": "big", "task": {"dataset": "parity", "batch_size": 200_000},
       "model": {"layers": [{"type": "Linear", "params": {"out_features": "classes"}}]},
       "train": {"lr": 50.0, "weight_decay": 5.0, "seed": 4_000_000_000}}


def test_every_field_is_declared_and_its_default_is_the_tables():
    for name, cls in SECTIONS.items():
        schema = section_schema(cls)
        settings = [f.name for f in dataclasses.fields(cls) if f.name != "base_dir"]
        assert list(schema) == settings, name  # every field has its declaration, in file order
        instance = cls()
        for key, spec in schema.items():
            assert getattr(instance, key) == spec.default, (name, key)
            assert spec.name == key and spec.help and spec.label, (name, key)
            assert spec.check(spec.default) is None, (name, key)
    assert TaskSpec().augment is not TaskSpec().augment  # list defaults are copied per instance


def _numeric(cls: type) -> list[tuple[str, object]]:
    return [(key, spec) for key, spec in section_schema(cls).items() if spec.kind in ("int", "float")]


@pytest.mark.parametrize("section", ["task", "train", "monitor"])
def test_validation_accepts_exactly_the_tables_range(section):
    cls = SECTIONS[section]
    for key, spec in _numeric(cls):
        for value, ok in ((spec.min, True), (spec.max, True)):
            if value is None:
                continue
            value = int(value) if spec.kind == "int" else float(value)
            p = preset_from_dict({**BIG, section: {**BIG.get(section, {}), key: value}})
            found = [q.path for q in validate(p, resources=False)]
            assert (f"{section}.{key}" not in found) == ok, (key, value, found)
        below = spec.min - (1 if spec.kind == "int" else max(abs(spec.min) * 0.5, 1e-3)) if spec.min is not None \
            else None
        above = spec.max * 2 + 1 if spec.max is not None else None
        for value in (below, above):
            if value is None:
                continue
            value = int(value) if spec.kind == "int" else float(value)
            p = preset_from_dict({**BIG, section: {**BIG.get(section, {}), key: value}})
            assert f"{section}.{key}" in [q.path for q in validate(p, resources=False)], (key, value)


def test_the_big_preset_is_valid_and_round_trips(tmp_path):
    p = preset_from_dict(BIG)
    assert validate(p, resources=False) == []
    save_preset(p, tmp_path / "big.json")
    q = load_preset(tmp_path / "big.json")
    assert (q.train.lr, q.task.batch_size, q.train.weight_decay, q.train.seed) == (50.0, 200_000, 5.0, 4_000_000_000)


def test_option_tables_check_their_own_defaults():
    for table in (OPTIMIZER_OPTIONS, AUGMENT_OPTIONS):
        for name, schema in table.items():
            for key, spec in schema.items():
                assert spec.name == key and spec.check(spec.default) is None, (name, key)


def test_device_accepts_numbered_gpus_and_says_so():
    for device in ("auto", "cpu", "cuda", "mps", "cuda:0", "cuda:12"):
        assert validate(preset_from_dict({**BIG, "train": {"device": device}}), resources=False) == []
    (problem,) = validate(preset_from_dict({**BIG, "train": {"device": "gpu"}}), resources=False)
    assert problem.path == "train.device" and "cuda:N" in problem.message


def test_lists_report_each_item_at_its_path():
    p = preset_from_dict({**BIG, "task": {"dataset": "digits", "augment": ["hflip", "crp"]},
                          "train": {"milestones": [0.5, 1.5]}})
    found = {q.path: q for q in validate(p, resources=False)}
    assert "task.augment[1]" in found and "did you mean 'crop'" in found["task.augment[1]"].fix
    assert "train.milestones[1]" in found and "strictly between 0 and 1" in found["train.milestones[1]"].message
    p = preset_from_dict({**BIG, "train": {"milestones": [0.75, 0.5]}})
    assert [q.path for q in validate(p, resources=False)] == ["train.milestones"]
    p = preset_from_dict({**BIG, "task": {**BIG["task"], "limit_train": None}})
    assert validate(p, resources=False) == []


# -------------------------------------------------------------------------------------- command line
def _train_parser() -> argparse.ArgumentParser:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def test_every_plain_setting_has_a_flag_with_the_tables_help_range_and_choices():
    actions = {a.dest: a for a in _train_parser()._actions}
    for section, cls in SECTIONS.items():
        for key, spec in section_schema(cls).items():
            action = actions.get(f"set_{section}_{key}")
            if spec.kind in ("list", "object"):
                assert action is None
                continue
            assert action is not None, key
            assert action.option_strings[0] == "--" + key.replace("_", "-")
            assert spec.help in action.help
            if spec.min is not None and spec.kind == "float":
                assert f"{spec.min:g}" in action.help and f"{spec.max:g}" in action.help
            if spec.kind == "choice" and not spec.pattern:
                assert tuple(action.choices) == spec.choices


def test_flags_and_set_override_the_preset(tmp_path):
    args = _train_parser().parse_args(["z-digits", "--lr", "50", "--batch-size", "200000", "--weight-decay", "5",
                                       "--no-normalize", "--device", "cuda:1",
                                       "--set", "train.milestones=[0.3, 0.6]",
                                       "--set", "train.optimizer_options.beta2=0.99",
                                       "--set", "task.dataset=csv", "--set", "task.options.path=data/x.csv"])
    p = Preset()
    cli._apply_overrides(p, args)
    assert (p.train.lr, p.task.batch_size, p.train.weight_decay, p.task.normalize) == (50.0, 200_000, 5.0, False)
    assert p.train.device == "cuda:1" and p.train.milestones == [0.3, 0.6]
    assert p.train.optimizer_options == {"beta2": 0.99}
    assert p.task.options["path"] == str(Path("data/x.csv").resolve())  # typed here: relative to this folder
    untouched = Preset()
    cli._apply_overrides(untouched, _train_parser().parse_args(["z-digits"]))
    assert preset_to_dict(untouched) == preset_to_dict(Preset())


def test_set_names_what_is_wrong(capsys):
    assert cli.main(["train", "z-digits", "--set", "train.lrr=1"]) == 2
    assert "did you mean 'lr'" in capsys.readouterr().err
    assert cli.main(["train", "z-digits", "--set", "lr=1"]) == 2
    assert "SECTION.KEY=VALUE" in capsys.readouterr().err
    assert cli.main(["train", "z-digits", "--lr", "0", "--quiet"]) == 2
    assert "train.lr" in capsys.readouterr().err


def test_the_finite_ranges_fit_a_float():
    for cls in (TaskSpec, TrainSpec, MonitorSpec):
        for key, spec in _numeric(cls):
            for bound in (spec.min, spec.max):
                assert bound is None or math.isfinite(bound), key
