"""Reading the dashboard (issue #12, item 3 and the plot parts of 4 and 7): validation markers or a
line, smoothing of every training curve, log scales, the x axis by step / epoch / time, warnings
for runs that do not compare, the loss that was used, legends, reference lines, theme switches,
tick labels of an exploded loss, the empty heatmap, and a full-size PNG export."""
from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtGui import QColor, QImage

from ui.dashboard import MARKER_LIMIT, Dashboard, loss_axis_label
from ui.plot_buffers import RunBuffers
from ui.plots import EXPORT_MIN_LOGICAL, EXPORT_SCALE, distinct_tick_strings
from workbench.events import EpochEnd, Finished, Metrics, RunStarted, RunSummary

LAYERS = ("0_Linear", "1_InfiniteDepth", "2_Linear")


def events(epochs: int = 4, steps_per_epoch: int = 10, task: str = "classification", seconds_per_step=0.5,
           with_seconds: bool = True):
    total = epochs * steps_per_epoch
    yield RunStarted("p", None, "cpu", "CPU", task, epochs, steps_per_epoch, total, 100, 10, 10, 10, 10, LAYERS,
                     ("1_InfiniteDepth",))
    rng = np.random.default_rng(0)
    for step in range(1, total + 1):
        epoch = (step - 1) // steps_per_epoch
        noise = 0.3 * rng.standard_normal()
        kw = dict(accuracy=min(1.0, 0.5 + step / total / 2 + 0.05 * noise)) if task == "classification" \
            else dict(rmse=1.0 / step + 0.1 * abs(noise))
        yield Metrics(step, epoch, step / steps_per_epoch, 2.0 * math.exp(-step / 20) + 0.1 * noise, 1e-3,
                      1000.0 + 100 * noise, grad_norm={n: 10.0 ** -i * (1 + 0.2 * noise) for i, n in enumerate(LAYERS)},
                      weight_norm={n: 1.0 for n in LAYERS}, depth_w={"1_InfiniteDepth": 1 + step / 100},
                      depth={"1_InfiniteDepth": math.ceil(1 + step / 100)},
                      seconds=step * seconds_per_step if with_seconds else None, **kw)
        if step % steps_per_epoch == 0:
            if task == "classification":
                yield EpochEnd(epoch, step, steps_per_epoch * seconds_per_step, 1.0, 1.1, 0.5, 0.6)
            else:
                yield EpochEnd(epoch, step, steps_per_epoch * seconds_per_step, 1.0, 1.1, train_rmse=0.9,
                               val_rmse=1.0)
    yield Finished(RunSummary("finished", "p", task, "cpu", steps=total))


@pytest.fixture
def dash(qtbot):
    d = Dashboard()
    qtbot.addWidget(d)
    d.resize(1100, 700)
    d.show()
    qtbot.waitExposed(d)
    yield d
    d.shutdown()


def feed(d: Dashboard, run_id: str = "r1", label: str = "run 1", dataset: str = "digits", loss: str = "auto",
         **kw) -> None:
    d.start_run(run_id, label, dataset=dataset, loss=loss)
    d.add_events(run_id, list(events(**kw)))
    d.end_run(run_id)
    d.redraw()
    d.timer.stop()


def test_validation_is_markers_up_to_the_limit_then_a_line(dash) -> None:
    feed(dash, epochs=MARKER_LIMIT, steps_per_epoch=2)
    val = dash.loss_plot.curve("r1:val_loss")
    assert len(val.x) == MARKER_LIMIT and val.symbol == "o"
    feed(dash, "r2", "run 2", epochs=MARKER_LIMIT + 1, steps_per_epoch=2)
    val = dash.loss_plot.curve("r2:val_loss")
    assert len(val.x) == MARKER_LIMIT + 1 and val.symbol is None and val.width > 0


def test_smoothing_applies_to_every_training_curve(dash) -> None:
    feed(dash)
    dash.set_smoothing(0.9)
    dash.redraw()
    b = dash.buffers("r1")
    for panel, key, series, scale in ((dash.loss_plot, "loss", "loss", 1.0),
                                      (dash.accuracy_plot, "accuracy", "accuracy", 100.0),
                                      (dash.throughput_plot, "sps", "samples_per_s", 1.0),
                                      (dash.grad_panel.lines, "g:0_Linear", "grad_norm/0_Linear", 1.0)):
        raw = b.get(series).y * scale
        smooth = panel.curve(f"r1:{key}").y
        assert np.std(np.diff(smooth)) < 0.5 * np.std(np.diff(raw)), panel.objectName()
    # learned depth is a parameter: drawn as measured
    np.testing.assert_allclose(dash.depth_panel.plot.curve("r1:w:1_InfiniteDepth").y,
                               b.get("depth_w/1_InfiniteDepth").y)
    dash.set_smoothing(0.0)
    dash.redraw()
    np.testing.assert_allclose(dash.accuracy_plot.curve("r1:accuracy").y, b.get("accuracy").y * 100)
    assert "r1:accuracy_raw" not in dash.accuracy_plot.curve_keys()


def test_log_scale_where_it_makes_sense(dash) -> None:
    feed(dash)
    assert dash.grad_panel.lines.log_y and not dash.loss_plot.log_y
    dash.set_log_scale("loss", True)
    dash.redraw()
    assert dash.loss_plot.log_y and dash.loss_plot.plot_item.getAxis("left").logMode
    dash.set_log_scale("grad", False)
    dash.redraw()
    assert not dash.grad_panel.lines.log_y
    dash.set_log_scale("accuracy", True)        # per cent accuracy stays linear …
    dash.redraw()
    assert not dash.accuracy_plot.log_y
    feed(dash, "reg", "regression run", task="regression")
    dash.set_visible_runs(["reg"])
    dash.redraw()
    assert dash.accuracy_plot.log_y              # … RMSE may be logarithmic


@pytest.mark.parametrize("axis", ["epoch", "time"])
def test_x_axis_by_epoch_or_training_time(dash, axis) -> None:
    feed(dash, epochs=4, steps_per_epoch=10, seconds_per_step=0.5)
    dash.set_x_axis(axis)
    dash.redraw()
    loss = dash.loss_plot.curve("r1:loss")
    val = dash.loss_plot.curve("r1:val_loss")
    per_step = 1 / 10 if axis == "epoch" else 0.5
    np.testing.assert_allclose(loss.x, np.arange(1, 41) * per_step)
    np.testing.assert_allclose(val.x, np.array([10, 20, 30, 40]) * per_step)   # epoch ends
    label = dash.loss_plot.plot_item.getAxis("bottom").labelText
    assert label == ("epoch" if axis == "epoch" else "training time (s)")
    assert dash.loss_plot.hover_at(val.x[1]).startswith(label)


def test_time_axis_of_a_run_written_before_metrics_had_seconds(dash) -> None:
    """Older metrics.jsonl files have no per-emit seconds: the epoch ends' seconds place them."""
    b = RunBuffers()
    b.ingest_all(events(epochs=2, steps_per_epoch=10, seconds_per_step=0.5, with_seconds=False))
    np.testing.assert_allclose(b.x_values(np.array([10.0, 15.0, 20.0]), "time"), [5.0, 7.5, 10.0])


def test_overlaying_another_task_warns(dash) -> None:
    feed(dash, "a", "run 1", dataset="digits")
    feed(dash, "b", "run 2", dataset="digits")
    dash.set_visible_runs(["a", "b"])
    dash.redraw()
    assert not dash.overlay_warning.isVisibleTo(dash)
    feed(dash, "c", "run 3", dataset="parity")
    feed(dash, "d", "run 4", dataset="diabetes", task="regression")
    dash.set_visible_runs(["b", "c", "d"])
    dash._current = "b"
    dash.redraw()
    text = dash.overlay_warning.text()
    assert dash.overlay_warning.isVisibleTo(dash)
    assert "run 3 trains the data set 'parity', not 'digits'" in text
    assert "run 4 trains a regression task" in text
    assert "d:rmse" not in " ".join(dash.accuracy_plot.curve_keys())   # % and RMSE never share an axis


def test_the_loss_axis_names_the_loss_used(dash) -> None:
    assert loss_axis_label("auto", "classification") == "loss (cross-entropy)"
    assert loss_axis_label("mse", "classification") == "loss (MSE, one-hot targets)"
    assert loss_axis_label("auto", "regression") == loss_axis_label("mse", "regression") == "loss (MSE)"
    feed(dash, loss="mse")                      # e.g. hannet-checkerboard
    assert dash.loss_plot.y_label() == "loss (MSE, one-hot targets)"


def test_legends_can_be_hidden(dash) -> None:
    feed(dash)
    assert all(p.legend_visible() for p in dash.panels())
    dash.legend_toggle.setChecked(False)
    assert not any(p.legend_visible() for p in dash.panels())
    assert dash.loss_plot.legend.scene() is None
    dash.legend_toggle.setChecked(True)
    assert dash.loss_plot.legend.scene() is dash.loss_plot.scene()
    assert set(dash.loss_plot.legend_labels()) == {"train", "raw", "val"}


def test_reference_lines(dash) -> None:
    feed(dash)
    plot = dash.accuracy_plot
    plot.set_reference_line("published", 85.0, "published 85.0 %")
    assert plot.reference_lines() == {"published": (85.0, "published 85.0 %")}
    plot.set_reference_line("published", 90.0, "published 90.0 %")
    assert plot.reference_lines() == {"published": (90.0, "published 90.0 %")}
    plot.remove_reference_line("published")
    assert plot.reference_lines() == {}


def test_legend_text_follows_a_theme_switch(dash, qtbot) -> None:
    from PySide6.QtWidgets import QApplication

    from ui.theme import apply_theme

    feed(dash)
    app = QApplication.instance()

    def legend_colors() -> set[str]:
        return {QColor(label.opts["color"]).name() for _s, label in dash.loss_plot.legend.items}

    try:
        apply_theme(app, "dark")
        app.processEvents()
        dark = legend_colors()
        assert all(QColor(c).lightness() > 150 for c in dark), dark       # light text on dark
    finally:
        apply_theme(app, "light")
        app.processEvents()
    assert all(QColor(c).lightness() < 100 for c in legend_colors())      # dark text on light again


def test_tick_labels_are_always_distinct() -> None:
    values = [2.538270e17 + i * 1e9 for i in range(3)]
    labels = distinct_tick_strings(values, 1e9)
    assert len(set(labels)) == 3
    assert distinct_tick_strings([0.0, 0.5, 1.0], 0.5) == ["0", "0.5", "1.0"]
    assert distinct_tick_strings([0, 50000, 100000, 150000], 50000) == ["0", "50k", "100k", "150k"]


def test_an_empty_heatmap_shows_no_stale_rows(dash) -> None:
    feed(dash)
    dash.grad_panel.set_heatmap(True)
    dash.redraw()
    heat = dash.grad_panel.heatmap
    assert heat.layers and heat.plot_item.getAxis("left")._tickLevels[0]
    (x0, _x1), _ = heat.plot_item.vb.viewRange()
    assert x0 >= heat.steps[0]                  # no negative steps: the view is the data
    dash.start_run("empty", "failed before training")
    dash.end_run("empty")
    dash.redraw()
    assert heat.layers == [] and heat.plot_item.getAxis("left")._tickLevels in ([[]], [])


def test_png_export_is_at_least_twice_the_screen_size(dash, tmp_path, qtbot) -> None:
    feed(dash)
    plot = dash.throughput_plot
    plot.resize(230, 180)                       # a small plot on screen
    qtbot.wait(10)
    path = plot.export_png(tmp_path / "small.png")
    image = QImage(str(path))
    assert image.width() >= EXPORT_SCALE * EXPORT_MIN_LOGICAL[0] - 1
    assert image.height() >= EXPORT_SCALE * EXPORT_MIN_LOGICAL[1] - 1
    assert plot.ci.geometry().width() < EXPORT_MIN_LOGICAL[0]     # the screen layout is restored
