"""The Evaluate page (issue #13): a run's evaluation computed off the GUI thread with a progress bar and
served from the run folder's cache when reopened; the confusion matrix, per-class table, mistakes
gallery and regression views filled from it; export; theme; the app's run → Evaluate path; and the
command line's figures drawn by these same views."""
from __future__ import annotations

import csv
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QWidget

import main as entry
from ui.evaluate_view import EvaluateWorkspace, RunFacts
from ui.training_controller import install_training
from workbench.evaluation import evaluate_run, load_cached
from workbench.events import Finished
from workbench.presets import load_builtin
from workbench.runs import read_summary
from workbench.trainer import Trainer

EVAL_TIMEOUT_MS = 120_000
RUN_TIMEOUT_MS = 60_000


def train(root: Path, key: str, epochs: int) -> Path:
    preset = load_builtin(key)
    preset.train.epochs = epochs
    preset.train.device = "cpu"
    run = root / key
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert Trainer(preset, run_dir=run).run(lambda e: None).status == "finished"
    finally:
        torch.set_num_threads(before)
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {"digits": train(root, "mlp-relu-digits", 2), "diabetes": train(root, "hannet-diabetes", 3)}


def facts(run: Path, status: str = "finished") -> RunFacts:
    from workbench.datasets import dataset_info
    from workbench.spec import load_preset

    preset = load_preset(run / "preset.json")
    info = dataset_info(preset.task.dataset, preset.task.options)
    shape = info.input_shape
    return RunFacts(run.name, status, info.task, preset.task.dataset, shape[0] if len(shape) == 1 else None,
                    len(shape) == 3, run, str(run))


@pytest.fixture
def page(qtbot):
    widget = EvaluateWorkspace()
    qtbot.addWidget(widget)
    widget.resize(1100, 700)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    assert widget.shutdown(10_000)


def evaluated(qtbot, page: EvaluateWorkspace, f: RunFacts):
    """Show ``f`` and wait for its evaluation; returns (evaluation, from_cache)."""
    with qtbot.waitSignal(page.runner.finished, timeout=EVAL_TIMEOUT_MS) as blocker:
        page.set_run(f)
    qtbot.waitUntil(lambda: page.evaluation is not None, timeout=5000)
    return blocker.args[1], blocker.args[2]


# ------------------------------------------------------------------------------ classification
def test_evaluation_runs_off_the_gui_thread_with_progress_then_reopens_from_the_cache(qtbot, page, runs, monkeypatch):
    import os

    import workbench.evaluation as evaluation

    gui_priority = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    threads = []
    real = evaluation.evaluate_model
    monkeypatch.setattr(evaluation, "evaluate_model",
                        lambda *a, **k: (threads.append(threading.get_ident()), real(*a, **k))[1])
    progress = []
    page.runner.progress.connect(lambda key, stage, done, total: progress.append((stage, done, total)))
    run = runs["digits"]
    f = facts(run)
    page.set_run(f)
    assert page.progress.isVisible() and "Evaluating" in page.body.text()      # at once, before any result
    with qtbot.waitSignal(page.runner.finished, timeout=EVAL_TIMEOUT_MS) as blocker:
        pass
    key, ev, from_cache = blocker.args
    assert not from_cache and threads and threads[0] != threading.get_ident()
    # the evaluation thread runs below the GUI; the GUI thread's own priority is untouched
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == gui_priority
    assert ("evaluating", 1, 1) in progress and not page.progress.isVisible()
    assert page.evaluation is ev and page.stack.currentWidget() is page.views_scroll
    assert f"accuracy {100 * read_summary(run).best_val_accuracy:.2f}%" in page.summary.text()
    # a new page (the app opened again) finds the run folder's cache: no model, no data
    other = EvaluateWorkspace()
    qtbot.addWidget(other)
    try:
        with qtbot.waitSignal(other.runner.finished, timeout=EVAL_TIMEOUT_MS) as blocker:
            other.set_run(f)
        assert blocker.args[2] is True and len(threads) == 1
        np.testing.assert_array_equal(blocker.args[1].confusion, ev.confusion)
    finally:
        assert other.shutdown()
    qtbot.waitUntil(lambda: not page.runner.busy(), timeout=5000)
    assert page.runner._thread is None               # idle: no thread left running


def test_confusion_matrix_and_per_class_table_show_the_evaluation(qtbot, page, runs):
    ev, _ = evaluated(qtbot, page, facts(runs["digits"]))
    matrix = page.findChild(QWidget, "confusionMatrix")
    assert matrix is page.confusion and matrix.isVisible()
    np.testing.assert_array_equal(matrix.counts, ev.confusion)
    assert matrix.names == [str(k) for k in range(10)]
    assert [t for _, t in matrix.plot_item.getAxis("bottom")._tickLevels[0]] == matrix.names
    assert matrix.cell_text(1, 1) == str(ev.confusion[1, 1])
    # hover shows the counts and the share of the true class
    row, col = np.unravel_index(np.argmax(ev.confusion - np.diag(np.diag(ev.confusion))), ev.confusion.shape)
    text = matrix.hover_cell(int(row), int(col))
    n = int(ev.confusion[row, col])
    assert f"true '{row}', predicted '{col}'" in text and f"{n:,} samples" in text
    assert f"{100 * n / ev.confusion[row].sum():.1f}%" in text
    matrix.set_normalized(True)
    assert matrix.cell_text(row, row) == f"{100 * ev.confusion[row, row] / ev.confusion[row].sum():.0f}%"
    table = page.findChild(QWidget, "perClassTable")
    assert table.rowCount() == 12
    assert [table.item(r, 0).text() for r in range(10)] == [str(k) for k in range(10)]
    assert table.item(3, 3).text() == f"{100 * ev.f1[3]:.1f}" and table.item(3, 4).text() == str(ev.support[3])
    assert table.item(11, 0).text() == "accuracy" and table.item(11, 3).text() == f"{100 * ev.accuracy:.2f}"
    assert not page.regression.isVisible()


def test_gallery_shows_only_wrong_predictions_most_confident_first(qtbot, page, runs):
    ev, _ = evaluated(qtbot, page, facts(runs["digits"]))
    gallery = page.findChild(QWidget, "mistakesGallery")
    assert gallery is page.gallery and gallery.isVisible()
    shown = gallery.shown()
    assert len(shown) == int((ev.predicted != ev.true).sum()) > 0
    assert all(s["true"] != s["predicted"] for s in shown)
    assert all(ev.true[s["index"]] == s["true"] and ev.predicted[s["index"]] == s["predicted"] for s in shown)
    confidence = [s["confidence"] for s in shown]
    assert confidence == sorted(confidence, reverse=True)
    assert f"{len(shown)} of 359 validation samples misclassified" in gallery.title.text()
    # clicking a tile shows its top-5 probabilities, the prediction first
    tiles = gallery.tiles
    pick = min(2, len(shown) - 1)
    qtbot.mouseClick(tiles, Qt.MouseButton.LeftButton, pos=tiles.tile_rect(pick).center().toPoint())
    rows = gallery.detail_rows()
    assert len(rows) == 5 and rows[0][0] == str(shown[pick]["predicted"])
    assert rows[0][1] == pytest.approx(shown[pick]["confidence"])
    probs = [p for _, p, _ in rows]
    assert probs == sorted(probs, reverse=True)
    assert [name for name, _, is_true in rows if is_true] in ([], [str(shown[pick]["true"])])


def test_export_png_at_twice_the_size_and_csv(qtbot, page, runs, tmp_path):
    ev, _ = evaluated(qtbot, page, facts(runs["digits"]))
    asked = []

    def ask_path(title, suggested, flt):
        asked.append(Path(suggested))
        return str(tmp_path / Path(suggested).name)

    page.set_ask_path(ask_path)
    page._fill_export_menu()
    texts = [a.text() for a in page.export_menu.actions()]
    assert texts == ["Confusion matrix as PNG…", "Confusion matrix data as CSV…", "Per-class figures data as CSV…",
                     "Mistakes gallery as PNG…", "Mistakes gallery data as CSV…"]
    for action in page.export_menu.actions():
        action.trigger()
    assert [p.parent for p in asked] == [runs["digits"]] * 5              # dialogs start in the run's folder
    image = QImage(str(tmp_path / "confusion.png"))
    assert image.width() >= 2 * page.confusion.width() and image.height() >= 2 * page.confusion.height()
    gallery_png = QImage(str(tmp_path / "misclassified.png"))
    assert gallery_png.width() >= 2 * page.gallery.tiles.tile.width()
    with open(tmp_path / "confusion.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    np.testing.assert_array_equal(np.array([r[1:] for r in rows[1:]], dtype=int), ev.confusion)
    with open(tmp_path / "per_class.csv", newline="") as fh:
        per_class = list(csv.DictReader(fh))
    assert float(per_class[0]["precision"]) == pytest.approx(ev.precision[0], abs=1e-3)
    with open(tmp_path / "misclassified.csv", newline="") as fh:
        mistakes = list(csv.DictReader(fh))
    assert [int(m["index"]) for m in mistakes] == ev.mistake_index[:len(mistakes)].tolist()


def test_views_follow_the_dark_theme(qtbot, page, runs):
    from ui.theme import apply_theme

    evaluated(qtbot, page, facts(runs["digits"]))
    app = QApplication.instance()
    light_cell = page.confusion.image.image[0, 1].copy()
    try:
        apply_theme(app, "dark")
        app.processEvents()
        assert page.confusion.backgroundBrush().color().lightness() < 100
        assert page.confusion.image.image[0, 1].mean() < light_cell.mean()        # an empty cell is dark now
        assert page.confusion.plot_item.getAxis("left").textPen().color().lightness() > 150
        assert page.gallery.tiles._colors[0].lightness() < 100
    finally:
        apply_theme(app, "light")
        app.processEvents()
    np.testing.assert_array_equal(page.confusion.image.image[0, 1], light_cell)


# ------------------------------------------------------------------------------ regression
def test_regression_run_shows_predicted_against_true_and_residuals(qtbot, page, runs):
    ev, _ = evaluated(qtbot, page, facts(runs["diabetes"]))
    scatter = page.findChild(QWidget, "regressionScatter")
    assert scatter is page.regression.scatter and scatter.isVisible()
    assert not page.confusion.isVisible() and not page.gallery.isVisible() and not page.boundary.isVisible()
    points = scatter.curve("points")
    assert len(points.x) == ev.n == 88
    np.testing.assert_allclose(np.sort(points.x), np.sort(ev.true[:, 0]))
    identity = scatter.curve("identity")
    np.testing.assert_allclose(identity.x, identity.y)
    hist = page.regression.residuals.curve("residuals")
    # the step outline holds each bin's count over the bin: the counts sum to N
    assert hist.y[0] == 0 and hist.y[-1] == 0
    assert int(round(sum(hist.y[1:-1][::2]))) == ev.n
    for figure in (f"RMSE {ev.rmse:.4g}", f"MAE {ev.mae:.4g}", f"R² {ev.r2:.4f}"):
        assert figure in page.summary.text()


# ------------------------------------------------------------------------------ states
def test_a_run_without_checkpoint_or_not_on_disk_says_why(qtbot, page, tmp_path):
    preset = load_builtin("mlp-relu-digits")
    preset.monitor.checkpoints = False
    preset.train.epochs, preset.train.device = 1, "cpu"
    Trainer(preset, run_dir=tmp_path / "run").run(lambda e: None)
    with qtbot.waitSignal(page.runner.failed, timeout=EVAL_TIMEOUT_MS):
        page.set_run(facts(tmp_path / "run"))
    assert "cannot be evaluated" in page.body.text() and "no checkpoint" in page.body.text()
    assert page.stack.currentWidget() is page.body
    page.set_run(RunFacts("unsaved", "finished", "classification", "digits", None, True, None, "live-1"))
    assert "not saved on disk" in page.body.text()
    page.set_run(RunFacts("running", "training", "classification", "digits", None, True, None, "live-2"))
    assert "training" in page.body.text() and "best checkpoint" in page.body.text()


def test_closing_during_an_evaluation_ends_its_thread_and_starts_no_other(qtbot, page, runs, tmp_path, monkeypatch):
    import shutil

    import workbench.evaluation as evaluation

    # the evaluation is held before its forward pass until the page is closing: a small run's
    # evaluation could otherwise end before the test looks (busy() False on a fast machine)
    gate = threading.Event()
    real = evaluation.evaluate_model
    monkeypatch.setattr(evaluation, "evaluate_model", lambda *a, **k: (gate.wait(120), real(*a, **k))[1])
    run = tmp_path / "copy"
    shutil.copytree(runs["digits"], run, ignore=shutil.ignore_patterns("evaluation"))   # nothing cached
    with qtbot.waitSignal(page.runner.progress, timeout=EVAL_TIMEOUT_MS):
        page.set_run(facts(run))
    assert page.runner.busy()
    page.runner.cancel(None)
    gate.set()
    assert page.shutdown(10_000)
    qtbot.wait(50)                                     # the cancelled signal arrives: no new request
    assert page.runner._thread is None and page.runner.pending() == []
    page.set_run(facts(runs["diabetes"]))
    assert page.runner._thread is None


# ------------------------------------------------------------------------------ the app
def test_a_run_in_the_app_is_evaluated_on_the_evaluate_page(make_window, qtbot):
    preset = load_builtin("mlp-relu-digits")
    preset.train.epochs, preset.train.device = 1, "cpu"
    window = make_window(preset)
    c = install_training(window)
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    with qtbot.waitSignal(c.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        assert c.start_run()
    assert isinstance(blocker.args[0], Finished)
    window.show_workspace("Evaluate")
    qtbot.waitUntil(lambda: c.evaluate.evaluation is not None, timeout=EVAL_TIMEOUT_MS)
    ev = c.evaluate.evaluation
    assert ev.accuracy == pytest.approx(blocker.args[0].summary.best_val_accuracy, abs=1e-12)
    for name in ("confusionMatrix", "perClassTable", "mistakesGallery"):
        assert window.findChild(QWidget, name).isVisible(), name
    # the last checkpoint, picked in the page
    c.evaluate.checkpoint_combo.setCurrentIndex(c.evaluate.checkpoint_combo.findData("last"))
    qtbot.waitUntil(lambda: c.evaluate.evaluation is not None and c.evaluate.evaluation.checkpoint.which == "last",
                    timeout=EVAL_TIMEOUT_MS)
    assert c.evaluate.summary.text().startswith("last.pt")
    assert window.close()
    assert c.evaluate.runner._thread is None


# ------------------------------------------------------------------------------ the command line's figures
def test_eval_writes_the_figures_with_the_apps_views(runs, tmp_path, capsys):
    out = tmp_path / "digits"
    assert entry.main(["eval", str(runs["digits"]), "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"confusion.csv", "per_class.csv", "predictions.csv", "confusion.png",
                                               "misclassified.png"}
    from ui.eval_figures import FIGURE_SIZES

    confusion = QImage(str(out / "confusion.png"))
    assert confusion.width() >= 2 * FIGURE_SIZES["confusion"][0]
    gallery = QImage(str(out / "misclassified.png"))
    assert not gallery.isNull() and gallery.width() >= 2 * 8 * 48
    out = tmp_path / "diabetes"
    assert entry.main(["eval", str(runs["diabetes"]), "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"predictions.csv", "regression.png", "residuals.png"}
    assert "wrote" in capsys.readouterr().out
    assert load_cached(runs["digits"], "best") is not None
    assert evaluate_run(runs["digits"]).accuracy == pytest.approx(read_summary(runs["digits"]).best_val_accuracy)


# ------------------------------------------------------------------------------ the live decision boundary
def test_a_checkerboard_run_in_the_app_shows_its_boundary_live_then_the_checkpoints(make_window, qtbot):
    """The app's trainer sends the grid at emits; the Evaluate page draws it while the run trains,
    and the best checkpoint's once it has ended."""
    from workbench.boundary import DecisionBoundary

    preset = load_builtin("hannet-checkerboard")
    preset.train.epochs, preset.train.device = 3, "cpu"
    preset.monitor.every_steps = 5
    window = make_window(preset)
    c = install_training(window)
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    c.train_on_run_action.setChecked(False)     # stay on the Evaluate page while it trains
    window.show_workspace("Evaluate")
    drawn_live: list = []

    def on_events(batch) -> None:     # after the page's own slot: what it draws for this batch
        if any(isinstance(e, DecisionBoundary) for e in batch) and c.evaluate.boundary.plots:
            drawn_live.append((c.evaluate.boundary.plots[0].boundary, c.evaluate.summary.text()))

    c.run_started.connect(lambda _id: c.worker.events.connect(on_events))
    with qtbot.waitSignal(c.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        assert c.start_run()
    assert isinstance(blocker.args[0], Finished)
    assert drawn_live, "no decision boundary was drawn during the run"
    live, text = drawn_live[0]
    assert live.source == "live" and live.n_classes == 2 and text.startswith("Live: the model at step")
    qtbot.waitUntil(lambda: c.evaluate.evaluation is not None, timeout=EVAL_TIMEOUT_MS)
    view = window.findChild(QWidget, "decisionBoundary")
    assert view is c.evaluate.boundary and view.isVisible()
    assert view.plots[0].boundary.source == "best" and view.plots[0].boundary == c.evaluate.evaluation.boundary
    assert window.close()


def test_the_views_have_their_object_names(page):
    for name in ("confusionMatrix", "mistakesGallery", "decisionBoundary", "regressionScatter", "perClassTable"):
        assert page.findChild(QWidget, name) is not None, name


def test_checked_runs_are_drawn_side_by_side_with_the_selected_one(page):
    """Live boundaries of three training runs: the selected one first, the checked ones beside it."""
    from workbench.boundary import BoundaryPoints, DecisionBoundary

    def grid(step: int, cls: int) -> DecisionBoundary:
        return DecisionBoundary(step=step, epoch=0, x_range=(-1.0, 1.0), y_range=(-1.0, 1.0), resolution=2,
                                task="classification", n_classes=2, classes=(cls,) * 4, confidence=(0.9,) * 4)

    points = BoundaryPoints("classification", (0.5, -0.5), (0.5, -0.5), (1.0, 0.0), (), (), (), 2, 0)
    runs = [RunFacts(f"run {i}", "training", "classification", "checkerboard", 2, False, None, f"id-{i}")
            for i in range(3)]
    for i, f in enumerate(runs):
        page.add_live_events(f.run_id, [points, grid(10 * i, i % 2)])
    page.set_run(runs[1])
    page.set_compare_runs([runs[0], runs[1], runs[2]])
    view = page.findChild(QWidget, "decisionBoundary")
    assert view.keys == ["id-1", "id-0", "id-2"]
    assert [p.label for p in view.plots] == ["run 1", "run 0", "run 2"]
    assert [p.boundary.step for p in view.plots] == [10, 0, 20] and all(p.isVisible() for p in view.plots)
    # a newer grid of a checked run replaces its picture in place
    page.add_live_events("id-2", [grid(30, 1)])
    assert view.plots[2].boundary.step == 30 and view.keys == ["id-1", "id-0", "id-2"]
    page.set_compare_runs([runs[1]])
    assert view.keys == ["id-1"]
