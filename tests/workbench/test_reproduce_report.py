"""Published vs measured on tiny hand-made results: the comparison, the verdicts, the table, the figures."""
from __future__ import annotations

import struct
from pathlib import Path

import pytest

from workbench.protocol import BudgetPlan, GridAxis, PublishedCurve, PublishedFigure, Reproduction, reproduction_to_dict
from workbench.reproduce import point_label
from workbench.reproduce_report import (FIGURES_MISSING, compare, measure, render_figures, render_markdown,
                                        verdict, write_report)


def _exp(key, protocol, *, skip="", estimate="", shortened="", overrides=None, budget="cpu"):
    return {"key": key, "name": key.title(), "reference": "", "budget": budget, "skip": skip, "estimate": estimate,
            "shortened": shortened, "overrides": overrides or {}, "planned_runs": 0, "epochs": 10,
            "protocol": reproduction_to_dict(protocol)}


def _row(key, point, seed, best, final, *, w=None, curve=None, status="finished", epochs=3, **extra):
    curve = curve if curve is not None else [{"epoch": i + 1, "step": 10 * (i + 1), "accuracy": a}
                                             for i, a in enumerate([best - 2, best - 1, final][:epochs])]
    row = {"key": key, "label": point_label(point, seed), "point": point, "seed": seed, "status": status,
           "message": "", "device": "cpu", "device_name": "Test CPU", "wall_s": 12.0, "train_s": 10.0,
           "epochs": epochs, "planned_epochs": epochs, "steps": 30, "best_accuracy": best, "final_accuracy": final,
           "best_epoch": 2, "w": w or [], "depth_layers": ["2_InfiniteDepth"] if w else [], "curve": curve,
           "at_epoch": {str(p["epoch"]): p["accuracy"] for p in curve if "accuracy" in p}}
    row.update(extra)
    return row


LR_GRID = Reproduction(published=[PublishedFigure("accuracy", 99.5, tolerance=0.5)],
                       curves=[PublishedCurve("original run", values=[97.0, 98.5, 99.0])],
                       grid=[GridAxis("train.lr", [0.05, 0.1])], seeds=[0, 1], figure="board",
                       budgets={"cpu": BudgetPlan()})
BASELINE = Reproduction(published=[PublishedFigure("accuracy", 85.6, tolerance=0.5),
                                   PublishedFigure("accuracy", 95.0, statistic="at_epoch", epoch=10)],
                        figure="board", budgets={"cpu": BudgetPlan()})
SWEEP = Reproduction(published=[PublishedFigure("w", w, statistic="final", at={"task.options.k_active": k},
                                                tolerance=0.3) for k, w in enumerate([0.12, 0.23, 1.11])]
                     + [PublishedFigure("depth", 2, statistic="final", at={"task.options.k_active": 2})],
                     curves=[PublishedCurve("w, k=1", metric="w", x="step", every=5, values=[0.8, 0.23],
                                            at={"task.options.k_active": 1})],
                     grid=[GridAxis("task.options.k_active", [0, 1, 2], report="each")],
                     budgets={"cpu": BudgetPlan()})
NO_FIGURE = Reproduction(note="the published figure is for ImageNet", budgets={"cpu": BudgetPlan()})
GPU_ONLY = Reproduction(published=[PublishedFigure("accuracy", 94.32, note="best at epoch 48")],
                        budgets={"cpu": BudgetPlan(skip="needs a GPU", estimate="about 40 h on this CPU")})


def fake_results(dirty=False):
    rows = [
        _row("hannet", {"train.lr": 0.05}, 0, 95.0, 94.0),
        _row("hannet", {"train.lr": 0.05}, 1, 96.0, 95.0),
        _row("hannet", {"train.lr": 0.1}, 0, 99.4, 99.0),
        _row("hannet", {"train.lr": 0.1}, 1, 99.6, 99.2),
        _row("fcnet", {}, 0, 83.0, 82.0),
    ]
    for k, w in enumerate([0.2, 0.9, 1.2]):
        rows.append(_row("parity", {"task.options.k_active": k}, 0, 100.0, 100.0, w=[w],
                         curve=[{"epoch": 1, "step": 5, "accuracy": 90.0, "w": [1.0]},
                                {"epoch": 2, "step": 10, "accuracy": 100.0, "w": [w]}], epochs=2))
    rows.append(_row("imagenet", {}, 0, 60.0, 59.0))
    return {"format": "afwb.reproduction/1", "budget": "cpu", "started": "2026-01-01 10:00:00",
            "updated": "2026-01-01 11:00:00", "commit": "0123456789abcdef", "dirty": dirty,
            "machine": {"cpu": "Test CPU", "cores": 2, "torch": "2.x", "torch_threads": 2, "python": "3.11"},
            "experiments": [_exp("hannet", LR_GRID), _exp("fcnet", BASELINE, shortened="3 of 10 epochs"),
                            _exp("parity", SWEEP), _exp("twist", GPU_ONLY, skip="needs a GPU",
                                                        estimate="about 40 h on this CPU"),
                            _exp("imagenet", NO_FIGURE)],
            "rows": rows}


# ------------------------------------------------------------------------------------------ compare
def test_best_over_the_lr_grid_with_mean_and_sd_over_seeds():
    [row] = [r for r in compare(fake_results()) if r.key == "hannet"]
    m = row.measured
    assert m.point == {"train.lr": 0.1} and m.n == 2
    assert m.value == pytest.approx(99.5) and m.sd == pytest.approx(0.1414, abs=1e-3)
    assert m.final == pytest.approx(99.1)
    assert row.reproduced is True and row.verdict.startswith("reproduced (Δ +0.00 pp")
    assert row.wall_s == pytest.approx(48.0) and row.device == "Test CPU"


def test_missed_shortened_and_epoch_not_reached():
    rows = [r for r in compare(fake_results()) if r.key == "fcnet"]
    best, at10 = rows
    assert best.reproduced is False
    assert best.verdict == "missed by 2.60 pp (tolerance ±0.5); shortened run: 3 of 10 epochs"
    assert at10.measured.value is None and at10.reproduced is None
    assert at10.verdict == "not measured: epoch 10 not reached (3 epochs run)"


def test_sweep_figures_are_per_grid_point():
    rows = [r for r in compare(fake_results()) if r.key == "parity"]
    assert [r.measured.value for r in rows] == pytest.approx([0.2, 0.9, 1.2, 2.0])
    assert [r.reproduced for r in rows] == [True, False, True, True]
    assert rows[1].verdict == "missed by 0.67 (tolerance ±0.3)"
    assert rows[3].figure.metric == "depth" and rows[3].verdict.startswith("reproduced (Δ +0 layer(s)")
    assert rows[0].wall_s == pytest.approx(12.0)  # its own point's run only


def test_an_experiment_without_a_published_figure_still_reports_its_measurement():
    [row] = [r for r in compare(fake_results()) if r.key == "imagenet"]
    assert row.measured.value == pytest.approx(60.0) and row.reproduced is None
    assert row.verdict == "nothing to compare: no published figure for this setting"


def test_not_run_rows_say_why_and_how_long():
    [row] = [r for r in compare(fake_results()) if r.key == "twist"]
    assert row.measured.value is None and row.reproduced is None
    assert row.verdict == "not run: needs a GPU (estimate: about 40 h on this CPU)"


def test_failed_and_missing_data_rows_are_not_measured():
    fig = PublishedFigure("accuracy", 99.0)
    failed = _row("x", {}, 0, None, None, curve=[], status="failed", message="the loss became non-finite")
    assert measure([failed], fig).why == "failed: the loss became non-finite"
    missing = _row("x", {}, 0, None, None, curve=[], status="data missing", message="data set 'cifar10' not found")
    text, ok = verdict(fig, measure([missing], fig))
    assert ok is None and text == "not measured: data missing: data set 'cifar10' not found"


def test_verdict_rules():
    acc = PublishedFigure("accuracy", 99.0, tolerance=0.5)
    from workbench.reproduce_report import Measured
    assert verdict(acc, Measured(value=99.8))[1] is True  # higher accuracy is reproduced
    assert verdict(acc, Measured(value=98.5))[1] is True  # at the edge of the band
    assert verdict(acc, Measured(value=98.4))[1] is False
    w = PublishedFigure("w", 2.13, statistic="final", tolerance=0.3)
    assert verdict(w, Measured(value=2.5))[1] is False  # w misses on either side
    unverified = PublishedFigure("accuracy", 99.0, verified=False)
    assert verdict(unverified, Measured(value=99.1))[0].endswith("; the published figure is unverified")


# ------------------------------------------------------------------------------------------ markdown
def test_markdown_table_commit_and_machine(tmp_path):
    text = render_markdown(fake_results(dirty=True), [("Accuracy", tmp_path / "r" / "a.png")], tmp_path,
                           command="python main.py reproduce --budget cpu")
    assert "`python main.py reproduce --budget cpu`" in text
    assert "Commit: `0123456789ab` with uncommitted changes" in text
    assert "Test CPU, 2 logical cores, torch 2.x (2 threads)" in text
    assert "| Experiment | Protocol | Device | Wall time | Measured | Published | Verdict |" in text
    hannet = next(line for line in text.splitlines() if line.startswith("| hannet |"))
    assert "best 99.50 ± 0.14 % · final 99.10 ± 0.14 % at lr=0.1 (2 seeds)" in hannet
    assert "99.50 % (best epoch on the test set, best over the lr grid)" in hannet
    assert "lr ∈ {0.05, 0.1}; 2 seeds; cpu budget, as published" in hannet
    assert "| parity (k_active=1) |" in text and "w = 0.90" in text
    assert "## Not run under this budget" in text
    assert "| twist | needs a GPU | about 40 h on this CPU | `python main.py reproduce twist --budget full` |" in text
    assert "![Accuracy](r/a.png)" in text
    assert "**twist**, accuracy 94.32: best at epoch 48" in text
    assert text.count("| hannet | lr=0.05, seed") == 2
    clean = render_markdown(fake_results(dirty=False), [], tmp_path, figures_note=FIGURES_MISSING)
    assert "uncommitted" not in clean and FIGURES_MISSING in clean


# ------------------------------------------------------------------------------------------ figures
def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_figures_are_drawn_from_fake_results(tmp_path):
    pytest.importorskip("matplotlib")
    written = render_figures(fake_results(), tmp_path / "figs")
    names = sorted(p.name for _, p in written)
    assert names == ["board-accuracy.png", "imagenet-accuracy.png", "parity-depth-vs-k-active.png",
                     "parity-w-per-step.png", "parity-w-vs-k-active.png"]
    for caption, path in written:
        width, height = _png_size(path)
        assert width > 300 and height > 200 and caption
    assert not list((tmp_path / "figs").glob(".*"))  # no temp files left
    captions = dict((p.name, c) for c, p in written)
    assert captions["board-accuracy.png"] == "Accuracy per epoch: hannet vs fcnet"


def test_figure_content_follows_the_data(tmp_path):
    """The sweep plot's measured line is drawn at the measured values (read back from the artist)."""
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    drawn = {}
    original = Figure.savefig

    def spy(self, *args, **kwargs):
        ax = self.axes[0]
        drawn[ax.get_title()] = {line.get_label(): list(map(float, line.get_ydata())) for line in ax.get_lines()}
        return original(self, *args, **kwargs)

    Figure.savefig = spy
    try:
        render_figures(fake_results(), tmp_path)
    finally:
        Figure.savefig = original
    sweep = next(v for k, v in drawn.items() if "w against k_active" in k)
    assert sweep["measured (this project)"] == pytest.approx([0.2, 0.9, 1.2])
    assert next(v for k, v in sweep.items() if k.startswith("published")) == pytest.approx([0.12, 0.23, 1.11])
    board = next(v for k, v in drawn.items() if k.startswith("board"))
    assert board["hannet measured (lr=0.1, seed 0)"] == pytest.approx([97.4, 98.4, 99.0])
    assert board["hannet published: original run"] == pytest.approx([97.0, 98.5, 99.0])
    assert board["fcnet published best: 85.6 %"] == pytest.approx([85.6, 85.6])
    steps = next(v for k, v in drawn.items() if "w during training" in k)
    assert steps["k_active=1, seed 0"] == pytest.approx([1.0, 0.9]) and steps["published k_active=1"] == [0.8, 0.23]


def test_write_report_without_matplotlib_still_writes_the_table(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    assert write_report(fake_results(), tmp_path / "reproduction.md") == []
    text = (tmp_path / "reproduction.md").read_text(encoding="utf-8")
    assert FIGURES_MISSING in text and "| hannet |" in text


def test_write_report_links_figures_relative_to_the_report(tmp_path):
    pytest.importorskip("matplotlib")
    written = write_report(fake_results(), tmp_path / "docs" / "reproduction.md", command="cmd")
    text = (tmp_path / "docs" / "reproduction.md").read_text(encoding="utf-8")
    assert written and all(p.parent == tmp_path / "docs" / "reproduction" for _, p in written)
    assert "![Accuracy per epoch: hannet vs fcnet](reproduction/board-accuracy.png)" in text


def test_the_protocol_text_says_when_a_budget_narrowed_the_grid():
    from workbench.reproduce_report import protocol_text

    exp = _exp("hannet", LR_GRID, overrides={"train.epochs": 3}, budget="smoke")
    exp["budget_grid"] = {"train.lr": [0.1]}
    assert protocol_text(exp) == "lr ∈ {0.1} of the source's 2; 2 seeds; smoke budget: train.epochs=3"
