"""workbench.evaluation: a run's checkpoint on its validation set — figures that agree with the trainer's
own (summary.json) and with scikit-learn's, mistakes sorted by confidence, the run-folder cache keyed on
the checkpoint file, and ``eval``'s CSV files and JSON."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench import cli
from workbench.evaluation import (EvaluationError, cache_path, classification_figures, evaluate_run, load_cached,
                                  load_run_model, regression_figures, save_cache)
from workbench.presets import load_builtin
from workbench.runs import read_summary
from workbench.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def train(root: Path, key: str, epochs: int, **task) -> Path:
    """A real run of built-in ``key`` on the CPU (tiny: a few epochs), in a folder under ``root``."""
    preset = load_builtin(key)
    preset.train.epochs = epochs
    preset.train.device = "cpu"
    for name, value in task.items():
        setattr(preset.task, name, value)
    run = root / key
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = Trainer(preset, run_dir=run).run(lambda e: None)
    finally:
        torch.set_num_threads(before)
    assert summary.status == "finished", summary.message
    return run


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    return train(tmp_path_factory.mktemp("runs"), "mlp-relu-digits", 3)


@pytest.fixture(scope="module")
def diabetes_run(tmp_path_factory) -> Path:
    return train(tmp_path_factory.mktemp("runs"), "hannet-diabetes", 4)


# ------------------------------------------------------------------------------ agreement with the trainer
def test_confusion_trace_over_total_is_the_accuracy_of_summary_and_eval(digits_run, capsys):
    """best.pt is the checkpoint of best_val_accuracy; last.pt that of final_val_accuracy."""
    summary = read_summary(digits_run)
    for which, expected in (("best", summary.best_val_accuracy), ("last", summary.final_val_accuracy)):
        ev = evaluate_run(digits_run, which, use_cache=False, write_cache=False)
        assert ev.split == "validation" and ev.n == 359 and ev.confusion.sum() == ev.n
        assert np.trace(ev.confusion) / ev.confusion.sum() == pytest.approx(expected, abs=1e-12)
        assert ev.accuracy == pytest.approx(expected, abs=1e-12)
        assert cli.main(["eval", str(digits_run), "--checkpoint", which, "--out", str(digits_run / f"out-{which}"),
                         "--no-figures"]) == 0
        assert f"accuracy {100 * expected:.2f}%" in capsys.readouterr().out
    assert summary.best_epoch is not None
    assert load_run_model(digits_run, "best")[2]["epoch"] == summary.best_epoch + 1


def test_loss_matches_the_trainers_validation_loss(digits_run, diabetes_run):
    for run in (digits_run, diabetes_run):
        ev = evaluate_run(run, "last", use_cache=False, write_cache=False)
        assert ev.loss == pytest.approx(read_summary(run).final_val_loss, rel=1e-5)


def test_regression_rmse_is_the_summarys_and_the_figures_are_scikit_learns(diabetes_run):
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    summary = read_summary(diabetes_run)
    ev = evaluate_run(diabetes_run, "last", use_cache=False, write_cache=False)
    assert ev.task == "regression" and ev.true.shape == (88, 1) and ev.confusion is None
    assert ev.rmse == pytest.approx(summary.final_val_rmse, rel=1e-5)
    assert ev.rmse == pytest.approx(np.sqrt(mean_squared_error(ev.true, ev.predicted)), rel=1e-12)
    assert ev.mae == pytest.approx(mean_absolute_error(ev.true, ev.predicted), rel=1e-12)
    assert ev.r2 == pytest.approx(r2_score(ev.true, ev.predicted), rel=1e-12)
    assert 25 < ev.true.mean() < 350          # target units (disease progression), not z-scores
    np.testing.assert_allclose(ev.residuals, ev.predicted - ev.true)


# ------------------------------------------------------------------------------ agreement with scikit-learn
def _sklearn_report(true, pred, k):
    from sklearn.metrics import classification_report

    return classification_report(true, pred, labels=list(range(k)), output_dict=True, zero_division=0)


def test_per_class_figures_equal_classification_report(digits_run):
    ev = evaluate_run(digits_run, "best", use_cache=False, write_cache=False)
    report = _sklearn_report(ev.true, ev.predicted, ev.n_classes)
    for k in range(ev.n_classes):
        row = report[str(k)]
        assert (ev.precision[k], ev.recall[k], ev.f1[k], ev.support[k]) == pytest.approx(
            (row["precision"], row["recall"], row["f1-score"], row["support"]), abs=1e-12)
    assert ev.macro_f1 == pytest.approx(report["macro avg"]["f1-score"], abs=1e-12)
    assert ev.accuracy == pytest.approx(report["accuracy"], abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 6).flatmap(lambda k: st.tuples(
    st.just(k), st.lists(st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)), min_size=1, max_size=60))))
def test_figures_equal_scikit_learn_on_any_predictions(case):
    """Classes never predicted, never present, or both: scikit-learn's zero_division=0 rules."""
    from sklearn.metrics import confusion_matrix

    k, pairs = case
    true = np.array([t for t, _ in pairs])
    pred = np.array([p for _, p in pairs])
    fig = classification_figures(true, pred, k)
    np.testing.assert_array_equal(fig["confusion"], confusion_matrix(true, pred, labels=list(range(k))))
    report = _sklearn_report(true, pred, k)
    for c in range(k):
        row = report[str(c)]
        assert (fig["precision"][c], fig["recall"][c], fig["f1"][c]) == pytest.approx(
            (row["precision"], row["recall"], row["f1-score"]), abs=1e-12)
    assert fig["macro_f1"] == pytest.approx(report["macro avg"]["f1-score"], abs=1e-12)


def test_regression_figures_equal_scikit_learn_for_several_targets():
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    rng = np.random.default_rng(3)
    true = rng.normal(size=(40, 3)) * [1.0, 10.0, 0.1]
    pred = true + rng.normal(size=(40, 3))
    fig = regression_figures(true, pred)
    assert fig["rmse"] == pytest.approx(np.sqrt(mean_squared_error(true, pred)), rel=1e-12)
    assert fig["mae"] == pytest.approx(mean_absolute_error(true, pred), rel=1e-12)
    assert fig["r2"] == pytest.approx(r2_score(true, pred), rel=1e-12)


# ------------------------------------------------------------------------------ mistakes
def test_mistakes_are_the_wrong_predictions_most_confident_first(digits_run):
    ev = evaluate_run(digits_run, "best", use_cache=False, write_cache=False)
    wrong = np.flatnonzero(ev.predicted != ev.true)
    assert wrong.size > 0 and sorted(ev.mistake_index.tolist()) == wrong.tolist()
    conf = ev.mistake_confidence
    assert np.all(np.diff(conf) <= 0)                                  # most confident first
    assert np.all(ev.mistake_true != ev.mistake_predicted)
    assert ev.mistake_topk.shape == (wrong.size, 5)
    np.testing.assert_array_equal(ev.mistake_topk[:, 0], ev.mistake_predicted)   # the prediction is the top-1
    np.testing.assert_allclose(ev.mistake_topp[:, 0], conf)
    assert np.all(np.diff(ev.mistake_topp, axis=1) <= 0) and np.all(ev.mistake_topp.sum(axis=1) <= 1 + 1e-9)
    # the pictures are the validation images of the first mistakes, as 8-bit grey
    assert ev.mistake_images.shape == (min(wrong.size, 120), 8, 8, 1) and ev.mistake_images.dtype == np.uint8
    # the probabilities are the model's softmax at those samples
    preset, model, _, _ = load_run_model(digits_run, "best")
    from workbench.data import load_dataset

    data = load_dataset(preset.task, "cpu", None, False, int(preset.train.seed))
    with torch.no_grad():
        probs = torch.softmax(model(data.val_x[torch.as_tensor(ev.mistake_index)]), -1).double().numpy()
    np.testing.assert_allclose(probs.max(axis=1), conf, rtol=1e-6)


def test_mse_trained_classifier_gets_clipped_normalised_outputs_as_probabilities():
    from workbench.predictions import class_probabilities

    out = torch.tensor([[0.9, 0.1], [1.2, -0.3], [-0.2, -0.1], [0.5, 0.5]])
    probs = class_probabilities(out, "mse_onehot")
    np.testing.assert_allclose(probs.numpy(), [[0.9, 0.1], [1.0, 0.0], [0.5, 0.5], [0.5, 0.5]], atol=1e-7)
    np.testing.assert_allclose(class_probabilities(out, "cross_entropy").numpy(), torch.softmax(out, -1).numpy())


# ------------------------------------------------------------------------------ the cache
def test_cache_serves_the_same_figures_until_the_checkpoint_changes(tmp_path):
    run = train(tmp_path, "mlp-relu-digits", 1)
    first = evaluate_run(run, "last")
    assert cache_path(run, "last").is_file()
    cached = load_cached(run, "last")
    assert cached is not None and cached.checkpoint == first.checkpoint
    for name in ("true", "predicted", "confidence", "confusion", "precision", "f1", "mistake_index",
                 "mistake_topk", "mistake_topp", "mistake_images"):
        np.testing.assert_array_equal(getattr(cached, name), getattr(first, name), err_msg=name)
    assert (cached.accuracy, cached.macro_f1, cached.loss, cached.class_names) == \
        (first.accuracy, first.macro_f1, first.loss, first.class_names)
    # resume the run for one more epoch: last.pt is a new file, the cache is not served
    preset = load_builtin("mlp-relu-digits")
    preset.train.epochs, preset.train.device = 2, "cpu"
    assert Trainer(preset, resume_from=run).run(lambda e: None).status == "finished"
    assert load_cached(run, "last") is None
    again = evaluate_run(run, "last")
    assert again.checkpoint.epoch == 2 and again.checkpoint.step > first.checkpoint.step
    assert again.accuracy == pytest.approx(read_summary(run).final_val_accuracy, abs=1e-12)
    assert load_cached(run, "last").checkpoint == again.checkpoint


def test_cache_is_never_written_or_read_through_a_symbolic_link(tmp_path):
    run = train(tmp_path, "mlp-relu-digits", 1)
    ev = evaluate_run(run, "best")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "best.npz"
    os.replace(cache_path(run, "best"), target)
    cache_path(run, "best").symlink_to(target)          # a planted link at the cache's name
    assert load_cached(run, "best") is None
    save_cache(run, ev)                                  # replaces the link itself, not its target
    assert not cache_path(run, "best").is_symlink() and load_cached(run, "best") is not None
    folder = run / "evaluation"
    os.replace(folder, tmp_path / "moved")
    folder.symlink_to(tmp_path / "moved")                # the whole folder is a link
    with pytest.raises(OSError, match="symbolic link"):
        save_cache(run, ev)
    assert load_cached(run, "best") is None
    assert cli.main(["eval", str(run), "--no-figures"]) == 2


def test_a_damaged_cache_is_recomputed(tmp_path):
    run = train(tmp_path, "mlp-relu-digits", 1)
    evaluate_run(run, "best")
    cache_path(run, "best").write_bytes(b"not a zip file")
    assert load_cached(run, "best") is None
    assert evaluate_run(run, "best").n == 359 and load_cached(run, "best") is not None


def test_a_run_without_checkpoint_says_so(tmp_path):
    preset = load_builtin("mlp-relu-digits")
    preset.monitor.checkpoints = False
    preset.train.epochs, preset.train.device = 1, "cpu"
    Trainer(preset, run_dir=tmp_path / "run").run(lambda e: None)
    with pytest.raises(EvaluationError, match="no checkpoint"):
        evaluate_run(tmp_path / "run")


# ------------------------------------------------------------------------------ eval's files
def test_eval_writes_confusion_per_class_and_predictions(digits_run, capsys, tmp_path):
    out = tmp_path / "out"
    assert cli.main(["eval", str(digits_run), "--out", str(out), "--json", "--no-figures"]) == 0
    report = json.loads(capsys.readouterr().out)
    ev = evaluate_run(digits_run, "best")
    assert report["accuracy"] == pytest.approx(ev.accuracy) and report["samples"] == 359
    assert [row["class"] for row in report["per_class"]] == [str(k) for k in range(10)]
    assert sorted(Path(p).name for p in report["files"]) == ["confusion.csv", "per_class.csv", "predictions.csv"]
    with open(out / "confusion.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["true \\ predicted"] + [str(k) for k in range(10)]
    np.testing.assert_array_equal(np.array([r[1:] for r in rows[1:]], dtype=int), ev.confusion)
    with open(out / "predictions.csv", newline="") as fh:
        preds = list(csv.DictReader(fh))
    assert len(preds) == 359 and list(preds[0]) == ["index", "true", "predicted", "confidence"]
    assert sum(p["true"] == p["predicted"] for p in preds) == np.trace(ev.confusion)
    with open(out / "per_class.csv", newline="") as fh:
        per_class = list(csv.DictReader(fh))
    assert [r["class"] for r in per_class] == [str(k) for k in range(10)] + ["macro avg"]
    assert float(per_class[-1]["f1"]) == pytest.approx(ev.macro_f1, abs=1e-6)


def test_eval_of_a_regression_run_writes_predictions_with_residuals(diabetes_run, capsys, tmp_path):
    assert cli.main(["eval", str(diabetes_run), "--checkpoint", "last", "--out", str(tmp_path), "--no-figures"]) == 0
    out = capsys.readouterr().out
    assert "RMSE" in out and "R²" in out
    with open(tmp_path / "predictions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 88 and list(rows[0]) == ["index", "true", "predicted", "residual"]
    r = rows[0]
    assert float(r["residual"]) == pytest.approx(float(r["predicted"]) - float(r["true"]), abs=1e-3)
    assert not (tmp_path / "confusion.csv").exists()


def test_eval_without_the_app_writes_the_tables_and_says_why_no_figures(digits_run, capsys, tmp_path):
    assert cli.main(["eval", str(digits_run), "--out", str(tmp_path)]) == 0     # no renderer passed
    captured = capsys.readouterr()
    assert "no PNG figures" in captured.err and "python main.py eval" in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["confusion.csv", "per_class.csv", "predictions.csv"]


def test_eval_without_qt_says_how_to_get_the_figures(digits_run, capsys, tmp_path):
    def no_qt(ev):
        raise ImportError("No module named 'PySide6'")

    assert cli.main(["eval", str(digits_run), "--out", str(tmp_path)], render_figures=no_qt) == 0
    err = capsys.readouterr().err
    assert "PySide6" in err and "pip install" in err and "Traceback" not in err


def test_checkerboard_evaluation_has_the_decision_boundary_of_the_checkpoint(tmp_path):
    from workbench.boundary import grid_centres, predict_grid

    run = train(tmp_path, "hannet-checkerboard", 2)
    ev = evaluate_run(run, "best")
    b = ev.boundary
    assert b is not None and b.source == "best" and b.task == "classification" and b.n_classes == 2
    assert b.x_range[0] < -1 < 1 < b.x_range[1] and b.y_range[0] < -1 < 1 < b.y_range[1]
    assert len(b.classes) == len(b.confidence) == b.resolution ** 2
    assert ev.points.train_total == 1640 and ev.points.val_total == 4921
    preset, model, _, _ = load_run_model(run, "best")
    with torch.no_grad():
        classes, conf, _, _ = predict_grid(model, grid_centres(b.x_range, b.y_range, b.resolution), task=b.task,
                                           kind="mse_onehot")
    assert list(b.classes) == classes and np.allclose(b.confidence, conf)
    cached = load_cached(run, "best")
    assert cached.boundary == b and cached.points == ev.points
