"""The training side of the main window with the REAL trainer: Run → Finished with every plot fed,
Stop within 2 s leaving a readable run folder, a NaN run reported in the status bar (and the app
ready to run again), overlay of two runs, closing mid-run, Run disabled for an invalid model."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QThread, Qt
from PySide6.QtWidgets import QApplication, QToolButton, QWidget

from ui.training_controller import install_training
from workbench.events import Failed, Finished, Metrics, RunStarted, Stopped
from workbench.presets import load_builtin
from workbench.runs import default_runs_root, read_metrics
from workbench.spec import LayerSpec

RUN_TIMEOUT_MS = 60_000


def small_digits(epochs: int = 2):
    preset = load_builtin("z-digits")
    preset.train.epochs = epochs
    preset.train.device = "cpu"
    preset.monitor.every_steps = 5
    return preset


def small_parity():
    preset = load_builtin("infinite-parity")
    preset.task.options = {**preset.task.options, "n_samples": 3000}
    preset.task.batch_size = 250
    preset.train.epochs = 2
    preset.train.device = "cpu"
    preset.monitor.every_steps = 2
    return preset


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


def run_to_end(qtbot, controller, timeout=RUN_TIMEOUT_MS):
    with qtbot.waitSignal(controller.run_finished, timeout=timeout) as blocker:
        assert controller.start_run()
    wait_drawn(qtbot, controller)
    return blocker.args[0]


def wait_drawn(qtbot, controller) -> None:
    """The dashboard draws a run's last points over the next timer ticks, then stops its timer."""
    qtbot.waitUntil(controller.dashboard.is_idle, timeout=5000)


def test_run_finishes_and_every_plot_holds_data(train_window, qtbot) -> None:
    window, c = train_window(small_digits())
    run_button = window.findChild(QToolButton, "runButton")
    stop_button = window.findChild(QToolButton, "stopButton")
    assert run_button is not None and run_button.isEnabled()
    assert stop_button is not None and not stop_button.isEnabled()
    with qtbot.waitSignal(c.run_started, timeout=5000):
        qtbot.mouseClick(run_button, Qt.MouseButton.LeftButton)
    assert window.document.is_read_only()
    assert "Training" in window.document.read_only_reason()
    assert not run_button.isEnabled() and stop_button.isEnabled()
    with qtbot.waitSignal(c.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        pass
    wait_drawn(qtbot, c)
    final = blocker.args[0]
    assert isinstance(final, Finished), getattr(final, "message", final)
    assert not window.document.is_read_only()
    assert run_button.isEnabled() and not stop_button.isEnabled()
    d = c.dashboard
    buffers = d.buffers(c.run_id)
    assert buffers.started is not None
    layers = list(buffers.started.layer_names)
    assert d.loss_plot.has_data(f"{c.run_id}:loss") and d.loss_plot.has_data(f"{c.run_id}:val_loss")
    assert d.accuracy_plot.has_data(f"{c.run_id}:accuracy") and d.accuracy_plot.has_data(f"{c.run_id}:val_accuracy")
    assert d.accuracy_plot.y_label() == "accuracy (%)"
    assert d.throughput_plot.has_data(f"{c.run_id}:sps")
    grad = d.grad_panel.lines
    weights = buffers.last_metrics.weight_norm
    with_params = [name for name in layers if weights.get(name, 0) > 0]
    assert with_params == ["0_ZConv2d", "1_SoftPool2d", "3_ZLinear"]   # Flatten has no parameters
    for name in with_params:
        assert grad.has_data(f"{c.run_id}:g:{name}"), name
    assert grad.legend_labels() == with_params
    assert f"{c.run_id}:g:2_Flatten" not in grad.curve_keys()
    assert not d.depth_panel.has_depth()   # z-digits has no InfiniteDepth layer
    # accuracy is shown in per cent, the final val accuracy matches the summary
    val = d.accuracy_plot.curve(f"{c.run_id}:val_accuracy").y
    assert val[-1] == pytest.approx(100 * final.summary.final_val_accuracy)
    # status bar and runs list
    assert "finished" in c.status.message.text()
    assert c.runs_panel.entries[c.run_id].summary.status == "finished"
    assert Path(c.run_id).parent == default_runs_root()
    assert json.loads((Path(c.run_id) / "summary.json").read_text())["status"] == "finished"
    assert not d.timer.isActive()   # idle dashboard: no redraw timer


def test_infinite_depth_run_feeds_the_depth_plot(train_window, qtbot) -> None:
    window, c = train_window(small_parity())
    final = run_to_end(qtbot, c)
    assert isinstance(final, Finished), getattr(final, "message", final)
    d = c.dashboard
    assert d.depth_panel.has_depth()
    keys = d.depth_panel.plot.curve_keys()
    assert any(":w:" in k for k in keys) and any(":d:" in k for k in keys)
    w_key = next(k for k in keys if ":w:" in k)
    assert d.depth_panel.plot.has_data(w_key)
    layer = w_key.split(":w:")[1]
    assert final.summary.learned_depth[layer] == pytest.approx(d.depth_panel.plot.curve(w_key).y[-1], abs=0.05)
    # gradient norms of the frozen layers are absent or zero, the meta-layer's are positive
    assert d.grad_panel.lines.has_data(f"{c.run_id}:g:{layer}")


def test_stop_mid_run_ends_quickly_and_leaves_a_readable_folder(train_window, qtbot) -> None:
    window, c = train_window(small_digits(epochs=200))
    with qtbot.waitSignal(c.run_started, timeout=5000):
        c.start_run()
    # wait until it really trains (some metrics arrived)
    qtbot.waitUntil(lambda: c.dashboard.buffers(c.run_id).has("loss"), timeout=RUN_TIMEOUT_MS)
    t0 = time.perf_counter()
    with qtbot.waitSignal(c.run_finished, timeout=5000) as blocker:
        qtbot.keyClick(window, Qt.Key.Key_Escape)
    elapsed = time.perf_counter() - t0
    assert isinstance(blocker.args[0], Stopped)
    assert elapsed < 2.0, f"stop took {elapsed:.2f} s"
    run_dir = Path(c.run_id)
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "stopped"
    records = read_metrics(run_dir)
    assert records and any(r.get("kind") == "metrics" for r in records)
    assert (run_dir / "checkpoints" / "last.pt").exists()
    assert "stopped" in c.status.message.text()
    assert not window.document.is_read_only()


def test_nan_run_is_reported_and_the_app_can_run_again(train_window, qtbot) -> None:
    preset = small_digits(epochs=3)
    preset.train.optimizer = "sgd"
    preset.train.lr = 1e6   # SGD diverges to a non-finite loss within a few steps
    window, c = train_window(preset)
    final = run_to_end(qtbot, c)
    assert isinstance(final, Failed)
    assert "finite" in final.message.lower() or "nan" in final.message.lower()
    text = c.status.message.text()
    assert text.startswith(f"Run failed at step {final.step}") and final.hint in c.status.message.toolTip()
    # the Train workspace shows the whole message and hint, and a button to the setting to change
    banner = c.dashboard.failure_banner
    assert window.current_workspace() == "Train" and banner.isVisible()
    assert banner.message.text() == final.message and final.hint in banner.hint.text()
    assert banner.title.text().endswith(f"failed at step {final.step}")
    assert banner.fix_button.isVisible() and banner.fix_button.text() == "Edit the learning rate"
    qtbot.mouseClick(banner.fix_button, Qt.MouseButton.LeftButton)
    assert QApplication.focusWidget() is window.inspector.findChild(QWidget, "field_train_lr")
    assert json.loads((Path(c.run_id) / "summary.json").read_text())["status"] == "failed"
    # the model is not lost and the window is ready for the next run
    assert not window.document.is_read_only()
    assert [l.type for l in window.document.current.model.layers] == [l.type for l in preset.model.layers]
    assert c.run_action.isEnabled()
    window.document.load(small_digits(epochs=1))
    final2 = run_to_end(qtbot, c)
    assert isinstance(final2, Finished), getattr(final2, "message", final2)
    assert c.status.failure is None


def test_bad_data_folder_is_reported(train_window, qtbot, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AFWB_DATA", str(tmp_path / "no-mnist-here"))
    preset = load_builtin("z-mnist")
    preset.train.device = "cpu"
    window, c = train_window(preset)
    final = run_to_end(qtbot, c)
    assert isinstance(final, Failed)
    assert "no-mnist-here" in final.message + final.hint
    assert c.status.failure is final
    assert c.run_action.isEnabled()


def test_overlay_of_two_runs_draws_two_curves_per_plot(train_window, qtbot) -> None:
    window, c = train_window(small_digits(epochs=1))
    first = run_to_end(qtbot, c)
    first_id = c.run_id
    assert isinstance(first, Finished)
    window.document.load(small_digits(epochs=2))
    second = run_to_end(qtbot, c)
    second_id = c.run_id
    assert isinstance(second, Finished) and second_id != first_id
    # the new run is checked; check the first one too
    c.runs_panel.set_checked(first_id, True)
    assert c.runs_panel.checked_ids()[:2] == [second_id, first_id]
    d = c.dashboard
    d.redraw()
    for panel, suffix in ((d.loss_plot, "loss"), (d.accuracy_plot, "accuracy"), (d.throughput_plot, "sps")):
        keys = panel.curve_keys()
        assert f"{first_id}:{suffix}" in keys and f"{second_id}:{suffix}" in keys, (panel.objectName(), keys)
        live = panel.curve(f"{second_id}:{suffix}")
        other = panel.curve(f"{first_id}:{suffix}")
        assert live.color == d.run_color(second_id) and other.color == d.run_color(first_id)
        assert live.color != other.color and live.width > other.width
    g = d.grad_panel.lines
    assert g.curve(f"{first_id}:g:0_ZConv2d").color == g.curve(f"{second_id}:g:0_ZConv2d").color
    # unchecking removes the curves
    c.runs_panel.set_checked(first_id, False)
    d.redraw()
    assert f"{first_id}:loss" not in d.loss_plot.curve_keys()


def test_historic_run_curves_load_from_metrics_jsonl(train_window, make_window, qtbot) -> None:
    window, c = train_window(small_digits(epochs=1))
    final = run_to_end(qtbot, c)
    run_id = c.run_id
    window.close()
    # a new window finds the run in the runs folder and overlays it from metrics.jsonl
    window2 = make_window(small_digits())
    c2 = install_training(window2)
    assert run_id in c2.runs_panel.entries
    entry = c2.runs_panel.entries[run_id]
    assert entry.summary.status == "finished"
    assert c2.runs_panel.tree.topLevelItem(0).text(2).endswith("%")   # best accuracy column
    c2.runs_panel.set_checked(run_id, True)
    c2.dashboard.redraw()
    loss = c2.dashboard.loss_plot.curve(f"{run_id}:loss")
    metrics = [r for r in read_metrics(run_id) if r.get("kind") == "metrics"]
    assert len(loss.y) == len(metrics)
    assert loss.x[-1] == final.summary.steps


def test_closing_mid_run_stops_and_joins_the_worker(train_window, qtbot) -> None:
    window, c = train_window(small_digits(epochs=200))
    with qtbot.waitSignal(c.run_started, timeout=5000):
        c.start_run()
    qtbot.waitUntil(lambda: c.dashboard.buffers(c.run_id).has("loss"), timeout=RUN_TIMEOUT_MS)
    thread = c.worker.thread
    assert thread.isRunning()
    assert window.close()
    assert not thread.isRunning()
    assert c.worker is None and isinstance(c.last_final, Stopped)
    assert not c.dashboard.timer.isActive()
    assert json.loads((Path(c.run_id) / "summary.json").read_text())["status"] == "stopped"


def test_run_is_disabled_with_the_reason_for_an_invalid_model(train_window, qtbot) -> None:
    preset = small_digits()
    window, c = train_window(preset)
    assert c.run_action.isEnabled()
    # an impossible network: a Linear on an image without Flatten is fine, an unknown param is not
    window.document.set_layer_param((0,), "routes", 0)
    reason = window.run_block_reason()
    assert reason is not None
    assert not c.run_action.isEnabled()
    button = window.findChild(QToolButton, "runButton")
    assert reason in button.toolTip()
    assert reason in c.status.message.text()
    assert c.start_run() is False
    window.document.undo_stack.undo()
    assert window.run_block_reason() is None and c.run_action.isEnabled()
    assert "Cannot run" not in c.status.message.text()


def test_open_a_runs_preset_in_the_editor(train_window, qtbot) -> None:
    preset = small_digits(epochs=1)
    window, c = train_window(preset)
    run_to_end(qtbot, c)
    window.document.insert_layer((), 0, LayerSpec("Flatten"))
    assert len(window.document.current.model.layers) == len(preset.model.layers) + 1
    c.runs_panel.select(c.run_id)
    assert c.runs_panel.open_selected()
    assert [l.type for l in window.document.current.model.layers] == [l.type for l in preset.model.layers]
    assert window.document.path is None


def test_pause_and_resume(train_window, qtbot) -> None:
    window, c = train_window(small_digits(epochs=200))
    with qtbot.waitSignal(c.run_started, timeout=5000):
        c.start_run()
    qtbot.waitUntil(lambda: c.dashboard.buffers(c.run_id).has("loss"), timeout=RUN_TIMEOUT_MS)
    c.pause_action.trigger()
    assert c.pause_action.text() == "Resume" and c.worker.is_paused()
    qtbot.wait(300)   # the step in flight may still report; after that nothing may arrive
    steps = len(c.dashboard.buffers(c.run_id).get("loss"))
    with qtbot.assertNotEmitted(c.worker.events, wait=500):
        pass
    assert len(c.dashboard.buffers(c.run_id).get("loss")) == steps
    c.pause_action.trigger()
    assert c.pause_action.text() == "Pause"
    qtbot.waitUntil(lambda: len(c.dashboard.buffers(c.run_id).get("loss")) > steps, timeout=RUN_TIMEOUT_MS)
    with qtbot.waitSignal(c.run_finished, timeout=5000):
        c.stop()


def test_the_depth_panel_describes_the_model_on_screen(train_window, qtbot) -> None:
    window, c = train_window(small_parity())
    c.dashboard.redraw()
    note = c.dashboard.depth_panel.note.text()
    assert not c.dashboard.depth_panel.has_depth()
    assert "The model in the editor has an InfiniteDepth layer (2_InfiniteDepth)" in note   # before any run
    window.open_builtin("z-digits")
    c.dashboard.redraw()
    assert c.dashboard.depth_panel.note.text().startswith("The model in the editor has no InfiniteDepth layer")


def test_a_stopped_run_shows_how_far_it_got(train_window, qtbot) -> None:
    window, c = train_window(small_digits(epochs=200))
    with qtbot.waitSignal(c.run_started, timeout=5000):
        c.start_run()
    qtbot.waitUntil(lambda: c.dashboard.buffers(c.run_id).has("loss"), timeout=RUN_TIMEOUT_MS)
    with qtbot.waitSignal(c.run_finished, timeout=10_000) as blocker:
        c.stop()
    summary = blocker.args[0].summary
    bar = c.status.progress
    assert bar.value() == summary.steps < bar.maximum()          # not a full bar
    assert bar.format() == f"stopped at step {summary.steps}/{bar.maximum()}"
    text = c.status.message.text()
    assert text.startswith(f"Run stopped after {summary.steps} steps") and summary.seconds > 0
    row = c.runs_panel._item(c.run_id)
    assert row.text(3) != "" and row.text(2) != ""               # time and a figure in the runs list


def test_runs_list_shows_each_drawn_runs_colour(train_window, qtbot) -> None:
    window, c = train_window(small_digits(epochs=1))
    run_to_end(qtbot, c)
    first = c.run_id
    run_to_end(qtbot, c)
    c.runs_panel.set_checked(first, True)
    c.dashboard.redraw()
    for run_id in (first, c.run_id):
        icon = c.runs_panel._item(run_id).icon(0)
        color = icon.pixmap(10, 10).toImage().pixelColor(5, 5).name()
        assert color == c.dashboard.run_color(run_id)
