"""The seed presets' protocols: what each budget runs, the published figures, and the smoke budget end to end."""
from __future__ import annotations

import math

import pytest

from workbench import cli
from workbench.presets import builtin_keys, load_builtin
from workbench.reproduce import load_results, plan_experiment

PROTOCOLS = {"hannet-checkerboard", "fcnet-checkerboard", "infinite-parity", "z-mnist", "pinet-mnist",
             "twist-resnet-cifar10", "infinite-mnist", "pinet-cifar10", "pinet18-cifar10"}
CPU_RUNS = {"hannet-checkerboard": 4, "fcnet-checkerboard": 9, "infinite-parity": 9, "z-mnist": 1, "pinet-mnist": 1}


def test_the_seed_presets_with_a_published_figure_carry_a_protocol():
    with_protocol = {key for key in builtin_keys() if load_builtin(key).reproduction is not None}
    assert with_protocol == PROTOCOLS
    for key in PROTOCOLS:
        r = load_builtin(key).reproduction
        assert set(r.budgets) == {"smoke", "cpu", "full"}, key
        assert r.source.repository, key
        assert r.budgets["cpu"].estimate and r.budgets["full"].estimate, key


def test_published_figures_are_the_sources():
    def values(key, **match):
        return [f.value for f in load_builtin(key).reproduction.published
                if all(getattr(f, k) == v for k, v in match.items())]

    assert values("hannet-checkerboard") == [99.5] and values("fcnet-checkerboard") == [85.6]
    assert values("z-mnist", statistic="best") == [99.63]
    assert values("z-mnist", statistic="at_epoch") == [99.19]
    assert values("twist-resnet-cifar10") == [94.32, 94.18]
    assert values("infinite-parity", metric="w") == [0.12, 0.23, 1.11, 2.13, 2.23, 3.13, 3.46, 4.26, 4.41]
    assert values("infinite-mnist", metric="depth") == [1, 2, 1]
    assert values("pinet18-cifar10") == []  # its figure is ImageNet: nothing to compare on CIFAR-10
    assert [f.verified for f in load_builtin("pinet-mnist").reproduction.published] == [False]
    curve = load_builtin("z-mnist").reproduction.curves[0].values
    assert len(curve) == 100 and max(curve) == 99.63 and curve.index(99.63) == 83 and curve[9] == 99.19


@pytest.mark.parametrize("key", sorted(PROTOCOLS))
def test_the_cpu_budget(key):
    exp = plan_experiment(key, load_builtin(key), "cpu")
    if key not in CPU_RUNS:
        assert exp.skip and not exp.runs
        return
    assert len(exp.runs) == CPU_RUNS[key] and not exp.skip
    if key in ("hannet-checkerboard", "fcnet-checkerboard"):
        assert exp.shortened == ""  # the published 40,000 iterations for every lr
        assert sorted(r.preset.train.lr for r in exp.runs) == sorted(load_builtin(key).reproduction.grid[0].values)
    if key == "infinite-parity":
        assert [r.preset.task.options["k_active"] for r in exp.runs] == list(range(9))
        task = exp.runs[0].preset.task
        steps_per_epoch = task.options["n_samples"] * (1 - task.val_split) / task.batch_size
        assert steps_per_epoch * exp.runs[0].preset.train.epochs == 100_000 and task.options["fresh_batches"]
    if key == "z-mnist":
        assert exp.runs[0].preset.train.epochs == 10 and exp.shortened == "10 of 100 epochs"


def test_full_infinite_mnist_restores_the_original_widths():
    [run] = plan_experiment("infinite-mnist", load_builtin("infinite-mnist"), "full").runs
    widths = [layer.params.get("out_channels", layer.params.get("out_features")) for layer in run.preset.model.layers
              if layer.trainable is False]
    assert widths[:3] == [30, 60, 256] and run.preset.train.epochs == 5000


@pytest.mark.slow
def test_the_smoke_budget_runs_every_protocol(tmp_path, mnist_root, capsys, one_torch_thread):
    out = tmp_path / "smoke"
    code = cli.main(["reproduce", "--budget", "smoke", "--data-root", str(mnist_root), "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    results = load_results(out)
    by_key: dict[str, list] = {}
    for row in results["rows"]:
        by_key.setdefault(row["key"], []).append(row)
    skipped = {e["key"] for e in results["experiments"] if e["skip"]}
    assert skipped == {"twist-resnet-cifar10"} and set(by_key) == PROTOCOLS - skipped
    for key, rows in by_key.items():
        if "cifar10" in key:
            assert [r["status"] for r in rows] == ["data missing"], key
        else:
            assert all(r["status"] in ("finished", "diverged") for r in rows), (key, rows)
            assert any(r["status"] == "finished" and r["steps"] > 0 for r in rows), key
    assert all(len(r["w"]) == 1 and math.isfinite(r["w"][0]) for r in by_key["infinite-parity"])
    assert len(by_key["infinite-mnist"][0]["w"]) == 3
    report = (out / "reproduction.md").read_text(encoding="utf-8")
    for key in PROTOCOLS:
        assert f"| {key}" in report, key
    pytest.importorskip("matplotlib")
    figures = {p.name for p in (out / "reproduction").glob("*.png")}
    assert {"checkerboard-accuracy.png", "z-mnist-accuracy.png", "infinite-parity-w-vs-k-active.png"} <= figures
