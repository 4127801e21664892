"""workbench.spec: the preset document, its errors, shape inference and the model builder."""
from __future__ import annotations

import json
import os

import pytest
import torch

from workbench import spec as spec_mod
from workbench.spec import (
    FORMAT,
    LayerSpec,
    ModelSpec,
    Preset,
    SpecError,
    TaskSpec,
    build_model,
    dumps_preset,
    infer_shapes,
    layer_names,
    load_preset,
    loads_preset,
    preset_from_dict,
    preset_to_dict,
    save_preset,
    upgrade,
    validate,
)


def doc(layers, dataset="digits", **task):
    return {"format": FORMAT, "name": "t", "task": {"dataset": dataset, **task}, "model": {"layers": layers}}


SMALL = doc([
    {"type": "ZConv2d", "params": {"out_channels": 8, "kernel_size": 3, "padding": 1}},
    {"type": "SoftPool2d"},
    {"type": "Flatten"},
    {"type": "ZLinear", "params": {"out_features": "classes", "routes": 2}},
])


def paths(problems):
    return [p.path for p in problems]


# --------------------------------------------------------------------------------------- documents
def test_dict_round_trip_and_defaults():
    p = preset_from_dict(SMALL)
    assert isinstance(p, Preset) and p.task.dataset == "digits" and p.train.optimizer == "adam"
    assert p.model.layers[1] == LayerSpec("SoftPool2d")
    again = preset_from_dict(preset_to_dict(p))
    assert again == p
    assert loads_preset(dumps_preset(p)) == p


def test_dumps_is_canonical():
    text = dumps_preset(preset_from_dict(SMALL))
    assert text.endswith("}\n") and "\n  \"task\": {" in text
    assert list(json.loads(text)) == ["format", "name", "description", "reference", "task", "model", "train",
                                      "monitor"]
    assert all(len(line) <= 100 for line in text.splitlines())
    assert dumps_preset(loads_preset(text)) == text


def test_int_in_float_field_becomes_float():
    p = preset_from_dict({**SMALL, "train": {"lr": 1}})
    assert p.train.lr == 1.0 and isinstance(p.train.lr, float)


def test_malformed_json_reports_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "name": "x",\n  "task": {"dataset": "digits",}\n}\n', encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_preset(path)
    assert "line 3, column" in str(err.value) and str(path) in str(err.value)


def test_nan_constant_refused():
    with pytest.raises(SpecError) as err:
        loads_preset('{"name": "x", "train": {"lr": NaN}}')
    assert "NaN" in str(err.value)


def test_missing_file():
    with pytest.raises(SpecError) as err:
        load_preset("/nonexistent/x.json")
    assert "not found" in str(err.value)


def test_newer_format_refused():
    with pytest.raises(SpecError) as err:
        preset_from_dict({**SMALL, "format": "afwb.preset/2"})
    assert "newer Activation-Free Workbench" in str(err.value) and "upgrade" in str(err.value)
    with pytest.raises(SpecError):
        preset_from_dict({**SMALL, "format": "something/1"})


def test_upgrade_is_identity_for_current_and_fills_missing_format():
    d = {k: v for k, v in SMALL.items() if k != "format"}
    assert upgrade(d)["format"] == FORMAT
    assert upgrade(SMALL) == SMALL


def test_structural_problems_all_at_once():
    bad = {"name": "x", "taks": {}, "train": {"lrate": 0.1}, "model": {"layers": [
        {"type": "Linear", "param": {}}, {"params": {}}, 3]}}
    with pytest.raises(SpecError) as err:
        preset_from_dict(bad)
    problems = {p.path: p for p in err.value.problems}
    assert "'task'" in problems["taks"].fix
    assert "'lr'" in problems["train.lrate"].fix
    assert "'params'" in problems["model.layers[0].param"].fix
    assert "model.layers[1].type" in problems
    assert "model.layers[2]" in problems
    assert len(str(err.value).splitlines()) == len(err.value.problems)


def test_save_is_atomic_and_stable(tmp_path):
    path = tmp_path / "p.json"
    p = preset_from_dict(SMALL)
    save_preset(p, path)
    first = path.read_bytes()
    save_preset(load_preset(path), path)
    assert path.read_bytes() == first
    assert first.endswith(b"\n") and b'\n  "name"' in first
    assert sorted(os.listdir(tmp_path)) == ["p.json"]


@pytest.mark.parametrize("target", ["dumps", "fsync", "replace"])
def test_failed_save_keeps_existing_file(tmp_path, monkeypatch, target):
    path = tmp_path / "p.json"
    save_preset(preset_from_dict(SMALL), path)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    if target == "dumps":
        monkeypatch.setattr(json, "dumps", boom)
    else:
        monkeypatch.setattr(os, target, boom)
    changed = preset_from_dict({**SMALL, "name": "changed"})
    with pytest.raises(OSError):
        save_preset(changed, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["p.json"]


def test_unserialisable_value_is_spec_error(tmp_path):
    p = preset_from_dict(SMALL)
    p.train.lr = float("nan")
    with pytest.raises(SpecError):
        save_preset(p, tmp_path / "x.json")
    assert not list(tmp_path.iterdir())


# -------------------------------------------------------------------------------------- validation
def test_valid_spec_has_no_problems():
    assert validate(preset_from_dict(SMALL)) == []


def test_unknown_layer_type_suggests():
    p = preset_from_dict(doc([{"type": "Flatten"}, {"type": "Linaer", "params": {"out_features": "classes"}}]))
    problems = validate(p)
    assert paths(problems) == ["model.layers[1].type"]
    assert "unknown layer type 'Linaer'" in problems[0].message and "'Linear'" in problems[0].fix


def test_wrong_param_type_and_range_and_unknown_key():
    p = preset_from_dict(doc([
        {"type": "ZConv2d", "params": {"out_channels": "eight", "kernel_size": 3, "routes": 0, "rutes": 2}},
        {"type": "Flatten"}, {"type": "Linear", "params": {"out_features": "classes"}}]))
    problems = {p.path: p for p in validate(p)}
    assert set(problems) == {"model.layers[0].params.out_channels", "model.layers[0].params.routes",
                             "model.layers[0].params.rutes"}
    assert "whole number" in problems["model.layers[0].params.out_channels"].message
    assert "out of range" in problems["model.layers[0].params.routes"].message
    assert "between 1 and 64" in problems["model.layers[0].params.routes"].fix
    assert "'routes'" in problems["model.layers[0].params.rutes"].fix


def test_impossible_kernel_message_names_layer():
    p = preset_from_dict(doc([
        {"type": "ZConv2d", "params": {"out_channels": 4, "kernel_size": 3}},   # 8×8 -> 6×6
        {"type": "SoftPool2d"},                                                # -> 3×3
        {"type": "Identity"},
        {"type": "Dropout", "params": {"p": 0.1}},
        {"type": "ZConv2d", "params": {"out_channels": 4, "kernel_size": 5}},
        {"type": "Flatten"}, {"type": "Linear", "params": {"out_features": "classes"}}]))
    problems = validate(p)
    assert len(problems) == 1
    assert problems[0].path == "model.layers[4]"
    assert str(problems[0]) == ("model.layers[4]: layer 4 ZConv2d: kernel 5 does not fit a 3×3 input; "
                                "lower kernel_size or remove a pooling layer")


def test_unknown_and_missing_dataset():
    problems = validate(preset_from_dict(doc([{"type": "Flatten"}], dataset="mnits")))
    assert paths(problems) == ["task.dataset"] and "'mnist'" in problems[0].fix
    p = preset_from_dict(SMALL)
    p.task.dataset = ""
    assert "task.dataset" in paths(validate(p))


def test_every_problem_at_once():
    d = doc([{"type": "Linear"}, {"type": "Nope"}, {"type": "Linear", "params": {"out_features": -1}}],
            batch_size=0, augment=["rotate"])
    d["train"] = {"lr": "fast", "optimizer": "adamm", "milestones": [0.9, 0.1]}
    problems = paths(validate(preset_from_dict(d)))
    for expected in ["task.batch_size", "task.augment[0]", "train.lr", "train.optimizer", "train.milestones",
                     "model.layers[0]", "model.layers[1].type", "model.layers[2].params.out_features"]:
        assert expected in problems, (expected, problems)


def test_output_must_match_dataset():
    p = preset_from_dict(doc([{"type": "Flatten"}, {"type": "Linear", "params": {"out_features": 5}}]))
    problems = validate(p)
    assert paths(problems) == ["model.layers[1]"] and '"classes"' in problems[0].fix
    empty = validate(preset_from_dict(doc([])))
    assert paths(empty) == ["model.layers"]


def test_container_body_problems_have_nested_paths():
    p = preset_from_dict(doc([{"type": "Flatten"}, {"type": "InfiniteDepth", "body": [
        {"type": "Linear", "params": {"out_features": "same", "bias": "yes"}}]},
        {"type": "Linear", "params": {"out_features": "classes"}}]))
    assert paths(validate(p)) == ["model.layers[1].body[0].params.bias"]
    p2 = preset_from_dict(doc([{"type": "Flatten"}, {"type": "InfiniteDepth"},
                               {"type": "Linear", "params": {"out_features": "classes"}}]))
    assert paths(validate(p2)) == ["model.layers[1].body"]
    p3 = preset_from_dict(doc([{"type": "Flatten", "body": [{"type": "ReLU"}]},
                               {"type": "Linear", "params": {"out_features": "classes"}}]))
    assert paths(validate(p3)) == ["model.layers[0].body"]


def test_regression_rejects_cross_entropy():
    d = doc([{"type": "Linear", "params": {"out_features": "classes"}}], dataset="diabetes", loss="cross_entropy")
    assert paths(validate(preset_from_dict(d))) == ["task.loss"]


def test_bce_needs_two_classes_and_one_logit_and_classes_resolves_to_it():
    head = {"type": "Linear", "params": {"out_features": "classes"}}
    parity = doc([{"type": "Linear", "params": {"out_features": 8}}, {"type": "ReLU"}, head],
                 dataset="parity", loss="bce", normalize=False)
    p = preset_from_dict(parity)
    assert validate(p) == [] and infer_shapes(p).output_shape == (1,)  # one logit for two classes
    assert build_model(p)(torch.zeros(3, 8)).shape == (3, 1)
    two = preset_from_dict({**parity, "model": {"layers": [{"type": "Linear", "params": {"out_features": 2}}]}})
    problems = validate(two)
    assert paths(problems) == ["model.layers[0]"] and "needs 1 output (one logit: loss bce)" in problems[0].message
    for dataset, what in (("digits", "10 classes"), ("diabetes", "a regression task")):
        problems = validate(preset_from_dict(doc([{"type": "Flatten"}, head], dataset=dataset, loss="bce")))
        assert paths(problems) == ["task.loss"] and what in problems[0].message and '"auto"' in problems[0].fix


# -------------------------------------------------------------------------------- shapes and build
def test_infer_shapes_report():
    d = doc([{"type": "Flatten"}, {"type": "Linear", "params": {"out_features": 16}, "trainable": False},
             {"type": "InfiniteDepth", "params": {"max_depth": 3},
              "body": [{"type": "Linear", "params": {"out_features": "same"}}, {"type": "BatchNorm"}]},
             {"type": "Linear", "params": {"out_features": "classes"}}])
    report = infer_shapes(preset_from_dict(d))
    assert report.ok and report.input_shape == (1, 8, 8) and report.output_shape == (10,)
    rows = report.layers
    assert [r.name for r in rows] == ["0_Flatten", "1_Linear", "2_InfiniteDepth", "3_Linear"]
    assert rows[0].output_shape == (64,)
    assert rows[1].params == 64 * 16 + 16 and rows[1].trainable_params == 0 and not rows[1].trainable
    body_params = 16 * 16 + 16 + 2 * 16
    assert [c.params for c in rows[2].children] == [16 * 16 + 16, 32]
    assert rows[2].params == 3 * body_params + 1  # max_depth copies + the depth parameter w
    assert rows[2].children[0].path == "model.layers[2].body[0]"
    model = build_model(preset_from_dict(d))
    assert report.total_params == sum(p.numel() for p in model.parameters())
    assert report.trainable_params == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_infer_shapes_marks_problem_and_stops():
    d = doc([{"type": "Linear"}, {"type": "ReLU"}])
    report = infer_shapes(preset_from_dict(d))
    assert not report.ok
    assert report.layers[0].problem and "add a Flatten" in report.layers[0].problem
    assert report.layers[1].input_shape is None and report.output_shape is None


def test_build_model_names_freezing_and_forward():
    d = doc([{"type": "ZConv2d", "params": {"out_channels": 4, "padding": 1}, "trainable": False},
             {"type": "SoftPool2d"}, {"type": "Flatten"},
             {"type": "ZLinear", "params": {"out_features": "classes"}}])
    p = preset_from_dict(d)
    model = build_model(p)
    assert [name for name, _ in model.named_children()] == layer_names(p) == [
        "0_ZConv2d", "1_SoftPool2d", "2_Flatten", "3_ZLinear"]
    assert isinstance(model, torch.nn.Sequential)
    assert all(not q.requires_grad for q in model.get_submodule("0_ZConv2d").parameters())
    assert all(q.requires_grad for q in model.get_submodule("3_ZLinear").parameters())
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)


def test_build_model_refuses_invalid():
    with pytest.raises(SpecError) as err:
        build_model(preset_from_dict(doc([{"type": "Linear"}])))
    assert err.value.problems[0].path == "model.layers[0]"


def test_same_and_classes_resolve_from_context():
    d = doc([{"type": "Linear", "params": {"out_features": "same"}},
             {"type": "Linear", "params": {"out_features": "classes"}}],
            dataset="parity", options={"n_inputs": 6, "k_active": 2})
    report = infer_shapes(preset_from_dict(d))
    assert [r.output_shape for r in report.layers] == [(6,), (2,)]


def test_layer_spec_defaults():
    p = Preset(name="x", task=TaskSpec(dataset="checkerboard"),
               model=ModelSpec([LayerSpec("Linear", {"out_features": "classes"})]))
    assert validate(p) == []
    assert spec_mod.FORMAT == "afwb.preset/1"


# -------------------------------------------------------------------------------- nested containers
def nested(depth: int, leaf=None, trainable_inner=True):
    """``depth`` containers inside each other (Residual and InfiniteDepth in turn, max_depth 1 so
    the model itself grows linearly), then the classifier, on checkerboard (2 inputs)."""
    layer = leaf or {"type": "Linear", "params": {"out_features": "same"}, "trainable": trainable_inner}
    for level in range(depth):
        if level % 2:
            layer = {"type": "InfiniteDepth", "params": {"max_depth": 1, "h": "identity"}, "body": [layer]}
        else:
            layer = {"type": "Residual", "body": [layer]}
    return preset_from_dict(doc([layer, {"type": "Linear", "params": {"out_features": "classes"}}],
                                dataset="checkerboard"))


def test_nested_bodies_cost_linear_work_in_validate_infer_and_build(monkeypatch):
    from workbench.registry import LayerEntry

    calls = {"shape": 0, "build": 0}
    budget = {"n": 0}
    for name, key in (("output_shape", "shape"), ("build", "build")):
        real = getattr(LayerEntry, name)

        def counted(self, *args, _real=real, _key=key, **kwargs):
            calls[_key] += 1
            if calls[_key] > budget["n"]:  # exponential work: fail now instead of running for minutes
                raise AssertionError(f"more than {budget['n']} {_key} calls")
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(LayerEntry, name, counted)
    work = {}
    for depth in (10, 20, 30):
        p = nested(depth)
        budget["n"] = 40 * depth + 40
        per_stage = []
        for stage in (validate, infer_shapes, build_model):
            calls.update(shape=0, build=0)
            stage(p)
            per_stage.append((calls["shape"], calls["build"]))
        work[depth] = per_stage
    for stage in range(3):  # the same work for each 10 more levels: linear
        step1 = [b - a for a, b in zip(work[10][stage], work[20][stage])]
        step2 = [b - a for a, b in zip(work[20][stage], work[30][stage])]
        assert step1 == step2 and max(step1) <= 40, work


def test_parameter_counts_of_nested_bodies_match_the_built_model():
    for p in (nested(5), nested(6, trainable_inner=False),
              nested(1, leaf={"type": "Residual", "body": [{"type": "Linear", "params": {"out_features": 3}}],
                              "params": {"projection": "conv1x1"}})):
        report = infer_shapes(p)
        assert report.ok, report.problems
        model = build_model(p)
        assert report.total_params == sum(t.numel() for t in model.parameters())
        assert report.trainable_params == sum(t.numel() for t in model.parameters() if t.requires_grad)


def test_nesting_is_capped_with_a_clear_message_and_the_cap_builds_and_runs():
    cap = f"nested more than {spec_mod.MAX_NESTING} deep"
    with pytest.raises(SpecError, match=cap):          # read from a file: refused at load
        nested(spec_mod.MAX_NESTING + 1)
    too_deep = nested(spec_mod.MAX_NESTING)             # built in code (the editor): refused by validate
    too_deep.model.layers[0] = LayerSpec("Residual", body=[too_deep.model.layers[0]])
    assert any(cap in p.message for p in validate(too_deep))
    deepest = build_model(nested(spec_mod.MAX_NESTING))
    out = deepest(torch.randn(4, 2))
    assert out.shape == (4, 2) and torch.isfinite(out).all()


# -------------------------------------------------------------------------------- resource limits
def test_every_built_in_preset_is_far_inside_the_resource_limits():
    from workbench.presets import builtin_presets, load_builtin

    for info in builtin_presets():
        p = load_builtin(info.key)
        report = infer_shapes(p)
        assert report.ok, (info.key, report.problems)
        assert report.total_params * 10 < spec_mod.MAX_PARAMS, info.key
        assert report.activations * p.task.batch_size * 4 * 10 < spec_mod.MAX_ACTIVATION_BYTES, info.key
        assert spec_mod._layer_count(p.model.layers, spec_mod.MAX_LAYERS) * 100 < spec_mod.MAX_LAYERS


def test_models_that_cannot_fit_are_refused_with_the_figure_and_the_limit(tmp_path, capsys):
    from workbench import cli

    huge = preset_from_dict(doc([{"type": "Linear", "params": {"out_features": 1_000_000}},
                                 {"type": "Linear", "params": {"out_features": 1_000_000}},
                                 {"type": "Linear", "params": {"out_features": "classes"}}], dataset="checkerboard"))
    [problem] = validate(huge)                     # counted on the meta device: nothing allocated
    assert "1,000,006,000,002 parameters" in problem.message and "at most 1,000,000,000" in problem.message
    wide = preset_from_dict(doc([{"type": "Conv2d", "params": {"out_channels": 4096, "kernel_size": 3,
                                                               "padding": 1}},
                                 {"type": "Flatten"}, {"type": "Linear", "params": {"out_features": "classes"}}],
                                batch_size=1_000_000))
    [problem] = validate(wide)
    assert problem.path == "task.batch_size" and "GiB of activations" in problem.message
    assert "lower task.batch_size (now 1000000)" in problem.fix
    path = tmp_path / "huge.json"
    save_preset(huge, path)
    assert cli.main(["train", str(path), "--out", str(tmp_path / "runs"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "parameters" in err and "Traceback" not in err


def test_a_preset_of_too_many_layers_is_refused_before_any_layer_is_read(monkeypatch):
    calls = []
    real = spec_mod._layer_from_dict
    monkeypatch.setattr(spec_mod, "_layer_from_dict", lambda *a, **k: calls.append(1) or real(*a, **k))
    text = json.dumps(doc([{"type": "Identity"}] * (spec_mod.MAX_LAYERS + 1), dataset="checkerboard"))
    with pytest.raises(SpecError, match="more than 10,000 layers"):
        loads_preset(text)
    assert calls == []
    in_code = Preset(model=ModelSpec(layers=[LayerSpec("Identity") for _ in range(spec_mod.MAX_LAYERS + 1)]))
    walked = []
    monkeypatch.setattr(spec_mod._Walker, "check_layer", lambda *a: walked.append(1))
    assert any("more than 10,000 layers" in p.message for p in validate(in_code)) and walked == []


def test_optimizer_options_are_checked_against_the_chosen_optimiser():
    def problems(optimizer, options, **train):
        layers = [{"type": "Flatten"}, {"type": "Linear", "params": {"out_features": "classes"}}]
        p = preset_from_dict({"name": "x", "model": {"layers": layers},
                              "train": {"optimizer": optimizer, "optimizer_options": options, **train}})
        return {q.path: q for q in validate(p)}

    assert problems("adadelta", {"rho": 0.95, "eps": 1e-8}) == {}
    assert problems("adam", {"beta1": 0.8, "beta2": 0.99, "eps": 1e-7}) == {}
    found = problems("adadelta", {"roh": 0.95})
    assert "did you mean 'rho'" in found["train.optimizer_options.roh"].fix
    found = problems("sgd", {"rho": 0.95})
    assert "sgd takes: nesterov, dampening" in found["train.optimizer_options.rho"].fix
    assert "train.optimizer_options.beta2" in problems("adamw", {"beta2": 1.5})
    assert "train.optimizer_options.nesterov" in problems("sgd", {"nesterov": True}, momentum=0.0)
    assert problems("sgd", {"nesterov": True}) == {}
    assert "train.optimizer_options" in problems("adam", [0.9])


def test_make_optimizer_reads_the_options():
    import torch

    from workbench.trainer import make_optimizer

    model = torch.nn.Linear(3, 2)
    for optimizer, options, expected in [
        ("adadelta", {"rho": 0.95, "eps": 1e-8}, {"rho": 0.95, "eps": 1e-8}),
        ("adadelta", {}, {"rho": 0.9, "eps": 1e-6}),  # PyTorch's defaults when unset
        ("adam", {"beta2": 0.99}, {"betas": (0.9, 0.99), "eps": 1e-8}),
        ("adamw", {"eps": 1e-6}, {"betas": (0.9, 0.999), "eps": 1e-6}),
        ("sgd", {"nesterov": True}, {"nesterov": True, "dampening": 0.0, "momentum": 0.9}),
    ]:
        p = preset_from_dict({"train": {"optimizer": optimizer, "optimizer_options": options}})
        opt = make_optimizer(model, p.train)
        assert {k: opt.defaults[k] for k in expected} == expected, optimizer
