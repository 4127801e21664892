"""Published figures as target lines, and Presets → "Reproduce…" running a protocol through the
training controller (the real trainer, tiny runs)."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from ui.training_controller import install_training
from workbench.presets import load_builtin
from workbench.protocol import BudgetPlan, GridAxis, PublishedFigure, Reproduction

RUN_TIMEOUT_MS = 60_000

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def digits_grid(lrs=(0.003, 0.01), epochs=1):
    p = load_builtin("mlp-relu-digits")
    p.train.device = "cpu"
    p.reproduction = Reproduction(
        published=[PublishedFigure("accuracy", 97.0)],
        grid=[GridAxis("train.lr", list(lrs))],
        budgets={"smoke": BudgetPlan(overrides={"train.epochs": epochs, "task.limit_train": 256}),
                 "cpu": BudgetPlan(skip="needs a GPU", estimate="about a day")})
    return p


@pytest.fixture
def train_window(make_window, qtbot):
    def make(preset):
        window = make_window(preset)
        controller = install_training(window)
        window.resize(1400, 900)
        window.show()
        qtbot.waitExposed(window)
        return window, controller
    return make


def test_published_figures_are_dashed_target_lines_that_follow_the_preset(train_window):
    window, c = train_window(load_builtin("z-mnist"))
    lines = c.dashboard.accuracy_plot.reference_lines()
    assert sorted(y for y, _ in lines.values()) == [99.57, 99.63]
    assert sorted(label for _, label in lines.values()) == ["published best 99.63 % · ZdsAlpha/Z",
                                                            "published final 99.57 % · ZdsAlpha/Z"]
    assert c.dashboard.depth_panel.plot.reference_lines() == {}
    window.document.load(load_builtin("infinite-parity"))
    k = window.document.current.task.options["k_active"]
    [(w, label)] = c.dashboard.depth_panel.plot.reference_lines().values()
    assert w == [0.12, 0.23, 1.11, 2.13, 2.23, 3.13, 3.46, 4.26, 4.41][k] and label.endswith("kutoga/going_deeper")
    window.document.load(load_builtin("z-digits"))
    assert c.dashboard.accuracy_plot.reference_lines() == {} and c.dashboard.depth_panel.plot.reference_lines() == {}


def test_reproduce_is_offered_only_for_a_preset_with_a_protocol(train_window):
    window, c = train_window(load_builtin("z-digits"))
    assert not c.reproduce_action.isEnabled() and c.open_reproduce() is None
    window.document.load(digits_grid())
    assert c.reproduce_action.isEnabled()
    assert c.reproduce_action in window.menu("&Presets").actions()


def test_the_dialog_shows_each_budgets_plan(train_window, qtbot):
    window, c = train_window(digits_grid())
    dialog = c.open_reproduce()
    assert dialog is not None and dialog.isVisible()
    assert dialog.budget.currentText() == "smoke"
    assert "2 runs, one after another" in dialog.plan.toPlainText()
    assert "lr=0.003, seed 0" in dialog.plan.toPlainText() and dialog.start_button.isEnabled()
    dialog.budget.setCurrentText("cpu")
    assert "Not run under 'cpu': needs a GPU" in dialog.plan.toPlainText()
    assert "Estimate: about a day" in dialog.plan.toPlainText() and not dialog.start_button.isEnabled()
    dialog.reject()


def test_a_protocol_runs_one_run_per_grid_point_overlaid(train_window, qtbot):
    window, c = train_window(digits_grid())
    dialog = c.open_reproduce()
    with qtbot.waitSignal(c.run_started, timeout=10_000):
        dialog.accept()
    session = c.reproduce_session
    assert session is not None and session.total == 2
    assert not c.reproduce_action.isEnabled()   # one reproduction at a time
    with qtbot.waitSignal(session.ended, timeout=2 * RUN_TIMEOUT_MS) as ended:
        pass
    assert ended.args == [True]
    runs = [c.runs_panel.entries[run_id] for run_id in session.run_ids]
    assert [e.preset.train.lr for e in runs] == [0.003, 0.01]
    assert all(e.summary is not None and e.summary.status == "finished" for e in runs)
    assert ["lr=0.003, seed 0" in runs[0].label, "lr=0.01, seed 0" in runs[1].label] == [True, True]
    assert set(session.run_ids) <= set(c.runs_panel.checked_ids())   # overlaid
    assert all(c.dashboard.has_run(run_id) for run_id in session.run_ids)
    assert all((Path(run_id) / "summary.json").exists() for run_id in session.run_ids)
    assert c.reproduce_session is None and c.reproduce_action.isEnabled()


def test_stop_cancels_the_remaining_runs(train_window, qtbot):
    window, c = train_window(digits_grid(lrs=(0.001, 0.003, 0.01), epochs=200))
    dialog = c.open_reproduce()
    with qtbot.waitSignal(c.run_started, timeout=10_000):
        dialog.accept()
    session = c.reproduce_session
    with qtbot.waitSignal(session.ended, timeout=RUN_TIMEOUT_MS) as ended:
        c.stop_action.trigger()
    assert ended.args == [False]
    assert len(session.run_ids) == 1 and session.done == 1
    entry = c.runs_panel.entries[session.run_ids[0]]
    assert entry.summary.status == "stopped"
    assert not c.is_training()


def test_screenshot_of_targets_and_overlaid_runs(train_window, qtbot, tmp_path):
    """The window as a person sees it after a reproduction: two overlaid runs, the target line."""
    window, c = train_window(digits_grid())
    dialog = c.open_reproduce()
    with qtbot.waitSignal(c.run_started, timeout=10_000):
        dialog.accept()
    with qtbot.waitSignal(c.reproduce_session.ended, timeout=2 * RUN_TIMEOUT_MS):
        pass
    qtbot.waitUntil(c.dashboard.is_idle, timeout=5000)
    window.show_workspace("Train")
    QApplication.processEvents()
    path = tmp_path / "reproduce.png"
    assert window.grab().save(str(path))
    assert path.stat().st_size > 10_000
    [(y, label)] = c.dashboard.accuracy_plot.reference_lines().values()
    assert (y, label) == (97.0, "published best 97 % · the source")
