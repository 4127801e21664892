"""The preset's reproduction section: round trip, validation messages, dotted overrides, expansion."""
from __future__ import annotations

import pytest

from workbench.presets import load_builtin
from workbench.protocol import (BudgetPlan, GridAxis, PublishedCurve, PublishedFigure, Reproduction, SourceRef,
                                apply_overrides, parse_path, protocol_problems, set_path)
from workbench.reproduce import plan_experiment, point_label
from workbench.spec import SpecError, dumps_preset, loads_preset, preset_from_dict, preset_to_dict, validate


def digits_with_protocol(**budgets):
    p = load_builtin("mlp-relu-digits")
    p.reproduction = Reproduction(
        source=SourceRef("github.com/example/repo", "train.py", "abc1234"),
        published=[PublishedFigure("accuracy", 97.0, tolerance=1.0),
                   PublishedFigure("accuracy", 95.5, statistic="at_epoch", epoch=2, verified=False,
                                   note="read off a plot")],
        curves=[PublishedCurve("the paper's curve", values=[80.0, 90.5, 94.0])],
        grid=[GridAxis("train.lr", [0.001, 0.003, 0.01])],
        seeds=[0, 1],
        figure="digits",
        note="a test protocol",
        budgets=budgets or {"smoke": BudgetPlan(overrides={"train.epochs": 1, "task.limit_train": 128}),
                            "cpu": BudgetPlan(grid={"train.lr": [0.003]}, seeds=[0], estimate="1 min"),
                            "full": BudgetPlan(skip="needs a GPU", estimate="2 h on one GPU")})
    return p


def parity_sweep():
    p = load_builtin("infinite-parity")
    p.reproduction = Reproduction(
        published=[PublishedFigure("w", w, statistic="final", at={"task.options.k_active": k})
                   for k, w in enumerate([0.12, 0.23, 1.11])],
        grid=[GridAxis("task.options.k_active", [0, 1, 2], report="each")],
        budgets={"smoke": BudgetPlan(overrides={"train.epochs": 1, "task.options.n_samples": 400})})
    return p


# ------------------------------------------------------------------------------------- round trip
def test_reproduction_round_trips_byte_identically():
    p = digits_with_protocol()
    text = dumps_preset(p)
    again = loads_preset(text)
    assert again == p
    assert dumps_preset(again) == text
    doc = preset_to_dict(p)["reproduction"]
    assert list(preset_to_dict(p))[-1] == "reproduction"
    assert doc["published"][0] == {"metric": "accuracy", "value": 97.0, "unit": "%", "statistic": "best",
                                   "tolerance": 1.0}
    assert doc["budgets"]["full"] == {"skip": "needs a GPU", "estimate": "2 h on one GPU"}


def test_preset_without_reproduction_writes_no_section():
    p = load_builtin("mlp-relu-digits")
    assert p.reproduction is None
    assert "reproduction" not in preset_to_dict(p)


def test_unit_defaults_to_the_metric_unit():
    fig = preset_from_dict({"name": "x", "reproduction": {
        "published": [{"metric": "w", "value": 2.13, "statistic": "final"}], "budgets": {}}}).reproduction.published[0]
    assert fig.unit == "" and PublishedFigure("accuracy", 99.0).unit == "%"


def test_structural_problems_name_their_paths():
    with pytest.raises(SpecError) as info:
        preset_from_dict({"name": "x", "reproduction": {
            "publshed": [], "grid": {"path": "train.lr"}, "budgets": {"cpu": {"overide": {}}},
            "curves": [{"label": "c", "valuez": [1]}]}})
    paths = {p.path for p in info.value.problems}
    assert {"reproduction.publshed", "reproduction.grid", "reproduction.budgets.cpu.overide",
            "reproduction.curves[0].valuez"} <= paths
    assert "did you mean 'published'" in str(info.value)
    with pytest.raises(SpecError, match="'path' is required"):
        preset_from_dict({"name": "x", "reproduction": {"grid": [{"values": [1]}]}})


# ------------------------------------------------------------------------------------- validation
def test_valid_protocol_has_no_problems():
    assert protocol_problems(digits_with_protocol()) == []
    assert protocol_problems(parity_sweep()) == []


def test_an_edited_preset_still_trains_when_its_protocol_no_longer_fits():
    p = load_builtin("infinite-mnist")
    p.model.layers[3:] = p.model.layers[-4:-3] + p.model.layers[-1:]  # Flatten → the classifier
    assert validate(p) == []  # trains: the protocol's overrides of layers 3 and 7 are not its business
    assert any(q.path == "reproduction.budgets.full.overrides" for q in protocol_problems(p))


def test_value_problems_have_paths_and_fixes():
    p = digits_with_protocol(
        smoke=BudgetPlan(overrides={"trian.epochs": 1, "train.epochs": 0, "train.lr": 0.1}),
        cpu=BudgetPlan(grid={"train.momentum": [0.5]}, seeds=[]),
        gpu=BudgetPlan())
    p.reproduction.published += [
        PublishedFigure("w", 2.0, statistic="best"),
        PublishedFigure("accuracy", 90.0, unit="", at={"train.lr": 0.003}),
        PublishedFigure("acuracy", 90.0, statistic="at_epoch"),
    ]
    p.reproduction.grid.append(GridAxis("task.options.k_active", [1]))
    problems = {(q.path, q.message): q.fix for q in protocol_problems(p)}
    text = "\n".join(f"{path}: {msg}; {fix}" for (path, msg), fix in problems.items())
    assert "reproduction.budgets.smoke.overrides: 'trian.epochs' cannot be overridden" in text
    assert "did you mean 'train'?" in text
    assert "train.epochs = 0: epochs = 0 is out of range" in text
    assert "'train.lr' is a grid axis" in text and 'narrow it with "grid"' in text
    assert "reproduction.budgets.cpu.grid: 'train.momentum' is not one of the protocol's grid axes" in text
    assert "reproduction.budgets.cpu.seeds: seeds must be a non-empty list" in text
    assert "reproduction.budgets.gpu: unknown budget 'gpu'" in text
    assert "reproduction.published[2].statistic: w is read at the end of a run" in text
    assert "reproduction.published[3].unit: accuracy is measured in '%'" in text
    assert "reproduction.published[3].at: 'train.lr' is not a grid axis reported per value" in text
    assert "reproduction.published[4].metric: unknown metric 'acuracy'" in text
    assert "reproduction.published[4].epoch: an at_epoch figure needs the epoch" in text
    assert "reproduction.grid[1].values[0]: task.options.k_active = 1: unknown option 'k_active' for dataset digits" in text


# ------------------------------------------------------------------------------------- overrides
def test_parse_path():
    assert parse_path("model.layers[3].params.depth") == ["model", "layers", 3, "params", "depth"]
    for bad in ("", "train..lr", "train.lr[x]", "3train"):
        with pytest.raises(SpecError, match="dotted"):
            parse_path(bad)


def test_apply_overrides_sets_nested_fields_on_a_copy():
    p = load_builtin("infinite-parity")
    before = dumps_preset(p)
    i = next(i for i, layer in enumerate(p.model.layers) if layer.type == "InfiniteDepth")
    q = apply_overrides(p, {"train.lr": 1, "task.options.k_active": 5, f"model.layers[{i}].params.max_depth": 8,
                            "monitor.checkpoints": False})
    assert q.train.lr == 1.0 and isinstance(q.train.lr, float)
    assert q.task.options["k_active"] == 5 and q.model.layers[i].params["max_depth"] == 8
    assert q.monitor.checkpoints is False
    assert dumps_preset(p) == before  # the original is untouched


@pytest.mark.parametrize("path, value, message", [
    ("trian.lr", 0.1, "did you mean 'train'"),
    ("train.lrr", 0.1, "unknown field 'lrr' in train"),
    ("train", 0.1, "is a whole section"),
    ("model.layers", [], "is a whole section"),
    ("model.layers[99].params.depth", 1, "entries; [99] does not exist"),
    ("format", "x", "cannot be overridden"),
    ("reproduction.seeds", [1], "cannot be overridden"),
    ("train.lr.x", 1, "is a value"),
])
def test_apply_overrides_refuses_unknown_paths(path, value, message):
    with pytest.raises(SpecError) as info:
        apply_overrides(load_builtin("infinite-parity"), {path: value})
    assert message in str(info.value)


def test_apply_overrides_validates_the_result():
    with pytest.raises(SpecError) as info:
        apply_overrides(load_builtin("infinite-parity"), {"train.epochs": 0, "task.options.k_active": 9},
                        where="cpu budget")
    text = str(info.value)
    assert "train.epochs: epochs = 0 is out of range" in text
    assert "task.options.k_active: k_active = 9 is more than n_inputs = 8" in text
    assert "(with cpu budget train.epochs=0, task.options.k_active=9)" in text


def test_set_path_adds_a_dataset_option():
    p = load_builtin("z-digits")
    set_path(p, "task.limit_train", 10)
    assert p.task.limit_train == 10


# ------------------------------------------------------------------------------------- expansion
def test_an_lr_grid_gives_one_run_per_lr_and_seed():
    exp = plan_experiment("digits", digits_with_protocol(), "smoke")
    assert not exp.skip and exp.shortened == "1 of 15 epochs, 128 training samples"
    assert [(r.preset.train.lr, r.seed) for r in exp.runs] == [
        (0.001, 0), (0.001, 1), (0.003, 0), (0.003, 1), (0.01, 0), (0.01, 1)]
    for run in exp.runs:
        assert run.preset.train.seed == run.seed and run.preset.train.epochs == 1
        assert run.preset.task.limit_train == 128 and run.preset.reproduction is None
        assert validate(run.preset) == []
    assert len({r.fingerprint for r in exp.runs}) == 6
    assert exp.runs[2].label == "lr=0.003, seed 0"


def test_a_budget_narrows_the_grid_and_seeds_or_skips():
    cpu = plan_experiment("digits", digits_with_protocol(), "cpu", device="cpu")
    assert [(r.preset.train.lr, r.seed, r.preset.train.device) for r in cpu.runs] == [(0.003, 0, "cpu")]
    assert cpu.shortened == ""
    full = plan_experiment("digits", digits_with_protocol(), "full")
    assert full.skip == "needs a GPU" and full.runs == [] and full.plan.estimate == "2 h on one GPU"
    none = plan_experiment("digits", digits_with_protocol(smoke=BudgetPlan()), "cpu")
    assert none.skip == "the protocol has no 'cpu' budget"


def test_a_sweep_sets_the_dataset_option():
    exp = plan_experiment("parity", parity_sweep(), "smoke")
    assert [r.preset.task.options["k_active"] for r in exp.runs] == [0, 1, 2]
    assert exp.runs[0].label == "k_active=0, seed 0"


def test_plan_refuses_a_preset_without_protocol_or_an_invalid_one():
    with pytest.raises(SpecError, match="has no reproduction protocol"):
        plan_experiment("z-digits", load_builtin("z-digits"), "smoke")
    p = digits_with_protocol(smoke=BudgetPlan(overrides={"train.epochs": -1}))
    with pytest.raises(SpecError, match="epochs = -1 is out of range"):
        plan_experiment("digits", p, "smoke")
    p = digits_with_protocol(smoke=BudgetPlan())
    with pytest.raises(SpecError, match="device must be one of"):
        plan_experiment("digits", p, "smoke", device="tpu")


def test_point_label():
    assert point_label({"train.lr": 0.05, "task.options.k_active": 3}, 1) == "lr=0.05, k_active=3, seed 1"
    assert point_label({}) == ""


def test_published_curves_per_step_at_a_grid_point():
    p = parity_sweep()
    p.reproduction.curves = [PublishedCurve("original, k=1", metric="w", x="step", every=1000, values=[0.9, 0.5],
                                            at={"task.options.k_active": 1})]
    text = dumps_preset(p)
    assert '"x": "step",\n        "every": 1000,\n        "at": {"task.options.k_active": 1},\n' in text
    again = loads_preset(text)
    assert again == p and protocol_problems(again) == []
    assert again.reproduction.curves[0].points() == [(1000, 0.9), (2000, 0.5)]
    p.reproduction.curves[0].x, p.reproduction.curves[0].every = "iteration", 0
    p.reproduction.curves[0].at = {"train.lr": 0.1}
    paths = {q.path for q in protocol_problems(p)}
    assert {"reproduction.curves[0].x", "reproduction.curves[0].every", "reproduction.curves[0].at"} <= paths


def test_published_targets_follow_the_presets_own_grid_point():
    from workbench.protocol import get_path, published_targets

    parity = load_builtin("infinite-parity")
    k = get_path(parity, "task.options.k_active")
    [w, acc] = sorted(published_targets(parity), key=lambda t: t.metric, reverse=True)
    assert (w.metric, w.value) == ("w", [0.12, 0.23, 1.11, 2.13, 2.23, 3.13, 3.46, 4.26, 4.41][k])
    assert w.label == f"published w {w.value:g} · kutoga/going_deeper"
    assert w.source == "github.com/kutoga/going_deeper experiment_00_xor.py @ e4d72d8"
    assert (acc.metric, acc.value) == ("accuracy", 100.0)
    parity.task.options["k_active"] = 8
    assert [t.value for t in published_targets(parity) if t.metric == "w"] == [4.41]
    z = published_targets(load_builtin("z-mnist"))
    assert [(t.metric, t.value) for t in z] == [("accuracy", 99.63), ("accuracy", 99.57)]  # not the at-epoch one
    assert z[0].label == "published best 99.63 % · ZdsAlpha/Z" and z[0].source.endswith("MNIST.ipynb @ fcfa600")
    assert published_targets(load_builtin("pinet-mnist"))[0].label.endswith(" (unverified)")
    assert [t.depth_layer for t in published_targets(load_builtin("infinite-mnist")) if t.metric == "w"] == [0, 1, 2]
    assert published_targets(load_builtin("z-digits")) == []
    assert get_path(parity, "task.options.nope", None) is None
    with pytest.raises(SpecError, match="has no 'train.nope'"):
        get_path(parity, "train.nope")
