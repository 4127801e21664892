"""ui.dashboard / ui.plots: every plot fed from events, labels with units, smoothing, the depth
note, the gradient heatmap, overlay styles, hover read-out, PNG/CSV export, a 1e6-point series
redrawn in < 200 ms, and a redraw timer that stops when idle or closed."""
from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from ui.dashboard import Dashboard
from ui.plot_buffers import RunBuffers
from workbench.events import EpochEnd, Finished, Metrics, RunStarted, RunSummary

LAYERS = ("0_ZConv2d", "1_SoftPool2d", "2_InfiniteDepth", "3_Flatten", "4_ZLinear")


def events(n_steps=200, task="classification", depth=True):
    yield RunStarted("p", None, "cpu", "CPU", task, 2, n_steps // 2, n_steps, 1000, 100, 64, 1000, 1000, LAYERS,
                     ("2_InfiniteDepth",) if depth else ())
    for step in range(5, n_steps + 1, 5):
        kw = dict(accuracy=min(1.0, step / n_steps)) if task == "classification" else dict(rmse=1.0 / step)
        yield Metrics(step, step * 2 // n_steps, 0.5, 2.0 * math.exp(-step / 50), 1e-3, 1000.0 + step,
                      grad_norm={name: (0.0 if name == "3_Flatten" else 10.0 ** -i) for i, name in enumerate(LAYERS)},
                      weight_norm={name: (0.0 if name == "3_Flatten" else 1.0) for name in LAYERS},
                      depth_w={"2_InfiniteDepth": 1 + step / 100} if depth else {},
                      depth={"2_InfiniteDepth": math.ceil(1 + step / 100)} if depth else {}, **kw)
        if step % (n_steps // 2) == 0:
            if task == "classification":
                yield EpochEnd(step * 2 // n_steps - 1, step, 1.0, 1.0, 1.1, 0.5, 0.6)
            else:
                yield EpochEnd(step * 2 // n_steps - 1, step, 1.0, 1.0, 1.1, train_rmse=0.9, val_rmse=1.0)
    yield Finished(RunSummary("finished", "p", task, "cpu", steps=n_steps))


@pytest.fixture
def dash(qtbot):
    d = Dashboard()
    qtbot.addWidget(d)
    d.resize(1400, 700)
    d.show()
    qtbot.waitExposed(d)
    return d


def feed(d, run_id="r1", label="run 1", **kw):
    d.start_run(run_id, label)
    d.add_events(run_id, list(events(**kw)))
    d.end_run(run_id)
    d.redraw()
    d.timer.stop()


def test_every_plot_gets_data_with_labelled_axes(dash) -> None:
    feed(dash)
    assert dash.loss_plot.has_data("r1:loss") and dash.loss_plot.has_data("r1:loss_raw")
    assert dash.loss_plot.has_data("r1:val_loss")
    assert dash.loss_plot.curve("r1:val_loss").symbol == "o"          # validation as markers
    assert dash.loss_plot.y_label() == "loss (cross-entropy)"
    assert dash.accuracy_plot.y_label() == "accuracy (%)"
    assert dash.accuracy_plot.curve("r1:accuracy_raw").y.max() == pytest.approx(100.0)
    assert dash.throughput_plot.y_label() == "samples/s"
    grad = dash.grad_panel.lines
    assert grad.log_y and grad.y_label().startswith("‖∇‖₂")
    assert grad.legend_labels() == ["0_ZConv2d", "1_SoftPool2d", "2_InfiniteDepth", "4_ZLinear"]
    colors = [grad.curve(f"r1:g:{n}").color for n in ("0_ZConv2d", "1_SoftPool2d", "2_InfiniteDepth", "4_ZLinear")]
    assert len(set(colors)) == 4
    assert dash.depth_panel.has_depth()
    # runs are colours: every curve of the run has the run's colour, except the gradient plot's,
    # whose colours are the layers'
    color = dash.run_color("r1")
    assert dash.depth_panel.plot.curve("r1:w:2_InfiniteDepth").color == color
    assert {dash.loss_plot.curve(k).color for k in dash.loss_plot.curve_keys()} == {color}
    assert color not in colors
    step_curve = dash.depth_panel.plot.curve("r1:d:2_InfiniteDepth")
    assert step_curve.step and set(np.unique(step_curve.y)) <= {2.0, 3.0}
    for panel in dash.panels():
        assert panel.plot_item.getAxis("bottom").labelText == "step"
    assert not dash.timer.isActive()


def test_regression_shows_rmse(dash) -> None:
    feed(dash, task="regression", depth=False)
    assert dash.accuracy_plot.y_label() == "RMSE (target units)"
    assert dash.accuracy_plot.has_data("r1:rmse") and dash.accuracy_plot.has_data("r1:val_rmse")
    assert dash.loss_plot.y_label() == "loss (MSE)"


def test_no_infinite_depth_layer_shows_a_note(dash) -> None:
    feed(dash, depth=False)
    assert not dash.depth_panel.has_depth()
    assert dash.depth_panel.note.text().startswith("The model in the editor has no InfiniteDepth layer")
    assert dash.depth_panel.note.isVisible()
    # the note describes the model on screen: with an InfiniteDepth layer there, it says so
    dash.set_model_depth_layers(["2_InfiniteDepth"])
    dash.redraw()
    note = dash.depth_panel.note.text()
    assert "run 1 had no InfiniteDepth layer" in note and "has an InfiniteDepth layer (2_InfiniteDepth)" in note


def test_smoothing_slider_changes_the_bold_curve_only(dash) -> None:
    feed(dash)
    raw = dash.loss_plot.curve("r1:loss_raw").y.copy()
    dash.smoothing_slider.setValue(0)
    dash.redraw()
    assert "r1:loss_raw" not in dash.loss_plot.curve_keys()           # nothing to smooth: one curve
    np.testing.assert_allclose(dash.loss_plot.curve("r1:loss").y, raw)
    dash.smoothing_slider.setValue(99)
    dash.redraw()
    assert dash.smoothing == pytest.approx(0.99)
    smooth = dash.loss_plot.curve("r1:loss").y
    np.testing.assert_allclose(dash.loss_plot.curve("r1:loss_raw").y, raw)
    assert np.std(np.diff(smooth)) < np.std(np.diff(raw))
    assert dash.loss_plot.curve("r1:loss_raw").alpha < dash.loss_plot.curve("r1:loss").alpha
    assert dash.loss_plot.curve("r1:loss").width > dash.loss_plot.curve("r1:loss_raw").width


def test_heatmap_view_shows_layers_by_log_norm(dash, qtbot) -> None:
    feed(dash)
    dash.grad_panel.heatmap_toggle.setChecked(True)
    assert dash.grad_panel.is_heatmap()
    dash.redraw()
    heat = dash.grad_panel.heatmap
    assert heat.layers == ["0_ZConv2d", "1_SoftPool2d", "2_InfiniteDepth", "4_ZLinear"]
    assert heat.matrix.shape == (4, 40)
    np.testing.assert_allclose(heat.matrix[:, 0], [0.0, -1.0, -2.0, -4.0])
    ticks = heat.plot_item.getAxis("left")._tickLevels[0]
    assert [t[1] for t in ticks] == heat.layers
    dash.grad_panel.heatmap_toggle.setChecked(False)
    assert not dash.grad_panel.is_heatmap()


def test_overlay_styles_and_legend_samples(dash) -> None:
    old = RunBuffers()
    old.ingest_all(events(n_steps=100))
    dash.add_run("old", "older run", old)
    feed(dash, "new", "new run")
    dash.set_visible_runs(["old", "new"])
    dash.redraw()
    assert dash.visible_runs() == ["new", "old"]                       # the current run first
    new_color, old_color = dash.run_color("new"), dash.run_color("old")
    assert new_color != old_color
    # runs are colours: a distinct colour per run, the current run bolder
    for panel, key in ((dash.loss_plot, "loss"), (dash.accuracy_plot, "accuracy"),
                       (dash.throughput_plot, "sps"), (dash.depth_panel.plot, "w:2_InfiniteDepth")):
        new, old = panel.curve(f"new:{key}"), panel.curve(f"old:{key}")
        assert (new.color, old.color) == (new_color, old_color), panel.objectName()
        assert new.width > old.width
    # the gradient plot colours layers: there runs are line styles, named in its legend
    grad = dash.grad_panel.lines
    assert grad.curve("new:g:0_ZConv2d").style == Qt.PenStyle.SolidLine
    assert grad.curve("old:g:0_ZConv2d").style == Qt.PenStyle.DashLine
    assert grad.curve("new:g:0_ZConv2d").color == grad.curve("old:g:0_ZConv2d").color
    assert "new run (current)" in grad.legend_labels() and "older run" in grad.legend_labels()
    # the bar above the plots names each run in its colour
    legend = dash.run_legend.text()
    assert dash.run_legend.isVisibleTo(dash) and "new run (current)" in legend and "older run" in legend
    assert new_color in legend and old_color in legend
    dash.remove_run("old")
    dash.redraw()
    assert not any(k.startswith("old:") for k in dash.loss_plot.curve_keys())


def test_hover_shows_step_and_values(dash) -> None:
    feed(dash)
    text = dash.loss_plot.hover_at(51.0)
    assert text.startswith("step 50")
    assert "train:" in text and "raw:" in text and "val:" in text
    assert dash.loss_plot.crosshair.isVisible() and dash.loss_plot.readout.isVisible()
    value = dash.loss_plot.curve("r1:loss_raw").y[9]
    assert f"{value:.4g}" in text


def test_export_png_and_csv_through_ask_path(dash, tmp_path) -> None:
    feed(dash)
    asked = []

    def ask_path(title, suggested, flt):
        asked.append((title, suggested, flt))
        return str(tmp_path / Path(suggested).name)

    run_folder = tmp_path / "run-folder"
    run_folder.mkdir()
    dash.set_ask_path(ask_path)
    dash.set_export_dir(run_folder)              # the dialogs start in the run's folder
    png_action, csv_action = dash.loss_plot._export_actions
    png_action.trigger()
    csv_action.trigger()
    assert [Path(a[1]) for a in asked] == [run_folder / "lossPlot.png", run_folder / "lossPlot.csv"]
    image = QImage(str(tmp_path / "lossPlot.png"))
    shown = dash.loss_plot.size()
    assert not image.isNull()
    assert image.width() >= 2 * shown.width() and image.height() >= 2 * shown.height()   # ≥ 2× the screen
    with open(tmp_path / "lossPlot.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["curve", "step", "value"]
    names = {r[0] for r in rows[1:]}
    assert {"run 1: train (raw)", "run 1: train (smoothed 0.60)", "run 1: val"} <= names
    val = [r for r in rows[1:] if r[0] == "run 1: val"]
    assert [float(r[1]) for r in val] == [100.0, 200.0]
    # heatmap export too
    dash.grad_panel.heatmap_toggle.setChecked(True)
    dash.redraw()
    dash.grad_panel.heatmap.export_csv_dialog()
    assert (tmp_path / "gradNormHeatmap.csv").read_text().startswith("layer,step,log10_grad_norm")
    # a cancelled prompt writes nothing
    dash.set_ask_path(lambda *a: None)
    assert dash.throughput_plot.export_png_dialog() is None
    assert not (tmp_path / "throughputPlot.png").exists()


def test_a_million_points_redraw_fast(dash, qtbot, cpu_reference) -> None:
    """A redraw of 1e6-point series (downsampled, clipped to the view) costs less GUI-thread CPU
    time than 40 × the suite's reference work (~5 ms each: the former 200 ms on the development
    machine), both timed in this process at the same time: a slower or loaded machine moves both
    alike. Drawing every point costs several times the limit."""
    feed(dash)
    rng = np.random.default_rng(0)
    cost = []
    for trial in range(3):   # best of three: the machine is shared with other processes
        b = RunBuffers()
        b.get("loss").extend(np.arange(1_000_000, dtype=float), rng.random(1_000_000))
        b.get("samples_per_s").extend(np.arange(1_000_000, dtype=float), rng.random(1_000_000))
        dash.add_run(f"big{trial}", "big", b)
        dash.set_visible_runs([f"big{trial}"])
        cpu_reference.sample()
        t0 = time.thread_time()   # the GUI thread's own CPU time: waiting for a busy core is not ours
        dash.redraw()
        dash.loss_plot.viewport().repaint()
        dash.throughput_plot.viewport().repaint()
        cost.append((time.thread_time() - t0) * 1000.0)
    best, unit = min(cost), cpu_reference.best()
    print(f"redraw of a 1e6-point series: {best:.0f} ms of GUI-thread CPU = {best / unit:.1f} x the reference "
          f"work ({unit:.2f} ms)")
    assert best < 40 * unit, (f"redraw of a 1e6-point series took {best:.0f} ms of GUI-thread CPU time, "
                              f"{best / unit:.1f} x the reference work")
    item = dash.loss_plot._items["big2:loss"]
    assert item.opts["autoDownsample"] and item.opts["clipToView"]
    assert len(dash.loss_plot.curve("big2:loss").x) <= 20_000 + 1_000


def test_timer_runs_only_while_needed(dash, qtbot) -> None:
    assert not dash.timer.isActive()
    dash.start_run("r1", "run")
    assert dash.timer.isActive()
    dash.add_events("r1", list(events())[:10])
    with qtbot.waitSignal(dash.redrawn, timeout=2000):
        pass
    dash.end_run("r1")
    qtbot.waitUntil(dash.is_idle, timeout=3000)      # the last points drawn, then the timer stops
    assert "r1:loss" in dash.loss_plot.curve_keys()
    # new data for an idle dashboard: the timer draws it, then stops by itself
    old = RunBuffers()
    old.ingest_all(events(n_steps=100))
    dash.add_run("old", "old", old)
    assert dash.timer.isActive()
    qtbot.waitUntil(lambda: not dash.timer.isActive(), timeout=3000)
    assert "old:loss" in dash.loss_plot.curve_keys()
    dash.start_run("r2", "run 2")
    dash.close()
    assert not dash.timer.isActive()


def test_a_tick_redraws_at_most_two_plots(dash, qtbot) -> None:
    dash.start_run("r1", "run")
    dash.add_events("r1", list(events())[:20])
    drawn = []
    for panel in dash.panels():
        orig = panel.set_curves
        panel.set_curves = (lambda p, o: (lambda *a, **k: (drawn.append(p.objectName()), o(*a, **k))))(panel, orig)
    dash._tick()
    assert 1 <= len(drawn) <= 2
    dash.shutdown()


def test_a_tick_stops_after_a_plot_that_used_up_its_budget(dash, qtbot) -> None:
    """The second plot of a tick is drawn only if the first was quick (TICK_BUDGET_MS): a slow one
    and the repaints Qt runs right after it must not be followed by another in the same tick."""
    import time

    from ui.dashboard import TICK_BUDGET_MS

    dash.start_run("r1", "run")
    dash.add_events("r1", list(events())[:20])
    drawn = []
    for panel in dash.panels():
        orig = panel.set_curves

        def slow(*a, _p=panel, _o=orig, **k):
            drawn.append(_p.objectName())
            time.sleep(1.5 * TICK_BUDGET_MS / 1000)   # sleeps at least this long: over the budget
            return _o(*a, **k)
        panel.set_curves = slow
    dash._tick()
    assert len(drawn) == 1
    dash._tick()
    assert len(drawn) == 2 and drawn[0] != drawn[1]   # the next tick draws the next stale plot
    dash.shutdown()


def test_plots_follow_the_dark_theme(dash, qtbot) -> None:
    from PySide6.QtWidgets import QApplication

    from ui.theme import apply_theme

    app = QApplication.instance()
    feed(dash)
    panel = dash.loss_plot
    assert panel.backgroundBrush().color().lightness() > 200          # light theme: paper
    try:
        apply_theme(app, "dark")
        app.processEvents()
        assert panel.backgroundBrush().color().lightness() < 100
        assert panel.plot_item.getAxis("bottom").textPen().color().lightness() > 150
        assert panel.plot_item.getAxis("left").pen().color().lightness() > 150
        heat = dash.grad_panel.heatmap
        assert heat.backgroundBrush().color().lightness() < 100
        assert heat.plot_item.getAxis("left").textPen().color().lightness() > 150
    finally:
        apply_theme(app, "light")
        app.processEvents()
    assert panel.backgroundBrush().color().lightness() > 200
    assert panel.plot_item.getAxis("bottom").textPen().color().lightness() < 100
