"""workbench.trainer: short real runs on CPU, events, guards, stop/pause, checkpoints and resume."""
from __future__ import annotations

import math
import threading
import time

import pytest
import torch

from workbench.events import EpochEnd, Failed, Finished, Metrics, RunStarted, Stopped
from workbench.presets import load_builtin
from workbench.runs import checkpoint_path, read_metrics
from workbench.spec import preset_from_dict
from workbench.trainer import Trainer


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run(preset, **kw):
    events: list = []
    summary = Trainer(preset, **kw).run(events.append)
    return summary, events


def mlp_digits(epochs=1, **train):
    p = load_builtin("mlp-relu-digits")
    p.train.epochs = epochs
    p.train.device = "cpu"
    for k, v in train.items():
        setattr(p.train, k, v)
    return p


def kinds(events):
    return [type(e).__name__ for e in events]


# -------------------------------------------------------------------------------- learning, per task
def test_z_digits_reaches_90_percent():
    p = load_builtin("z-digits")
    p.train.epochs = 3
    p.train.device = "cpu"
    summary, events = run(p)
    assert isinstance(events[-1], Finished) and summary.status == "finished"
    assert summary.final_val_accuracy >= 0.90
    m = [e for e in events if isinstance(e, Metrics)]
    assert m[-1].hardness and set(m[-1].hardness) <= {"0_ZConv2d", "1_SoftPool2d", "3_ZLinear"}


def test_infinite_parity_reaches_100_percent_and_reports_learned_depth(monkeypatch):
    from layers.depth import InfiniteDepth

    p = load_builtin("infinite-parity")
    # shortened via the spec: 4,096 fixed samples, batch 64, lr 1e-2, 16 epochs (the preset is the
    # published 100,000-step recipe)
    p.task.options.update({"n_samples": 4096, "k_active": 3})
    p.task.batch_size = 64
    p.train.lr = 0.01
    p.train.epochs = 16
    p.train.device = "cpu"
    calls = {"n": 0}
    original = InfiniteDepth.regularization

    def counted(self):
        calls["n"] += 1
        return original(self)

    monkeypatch.setattr(InfiniteDepth, "regularization", counted)
    summary, events = run(p)
    assert summary.status == "finished"
    assert summary.best_val_accuracy == 1.0
    assert calls["n"] >= summary.steps  # the depth regulariser is part of every step's loss
    started = events[0]
    assert isinstance(started, RunStarted) and started.depth_layers == ("2_InfiniteDepth",)
    last = [e for e in events if isinstance(e, Metrics)][-1]
    w = last.depth_w["2_InfiniteDepth"]
    assert last.depth["2_InfiniteDepth"] == max(0, math.ceil(w)) >= 1
    assert summary.learned_depth["2_InfiniteDepth"] == pytest.approx(w, abs=0.05)
    assert last.grad_norm["0_Linear"] == 0.0 and last.grad_norm["2_InfiniteDepth"] > 0  # frozen vs trained


def test_hannet_checkerboard_loss_falls():
    p = load_builtin("hannet-checkerboard")
    p.train.epochs = 4
    p.train.device = "cpu"
    p.monitor.every_steps = 4
    summary, events = run(p)
    assert summary.status == "finished"
    ends = [e for e in events if isinstance(e, EpochEnd)]
    assert ends[-1].train_loss < ends[0].train_loss and ends[-1].val_loss < ends[0].val_loss
    assert ends[-1].val_accuracy is not None  # mse on one-hot targets still reports argmax accuracy


def test_mnist_2000_images_learns(mnist_root):
    p = preset_from_dict({
        "name": "mlp mnist", "task": {"dataset": "mnist", "batch_size": 100, "val_split": 0.0, "limit_train": 2000},
        "model": {"layers": [{"type": "Flatten"}, {"type": "Linear", "params": {"out_features": 64}},
                             {"type": "ReLU"}, {"type": "Linear", "params": {"out_features": "classes"}}]},
        "train": {"optimizer": "adam", "lr": 0.002, "epochs": 2, "device": "cpu"},
        "monitor": {"every_steps": 10},
    })
    summary, events = run(p, data_root=mnist_root)
    assert summary.status == "finished"
    started = events[0]
    assert started.train_size == 2000 and started.val_size == 10_000
    assert summary.final_val_accuracy > 0.75  # chance is 0.10


def test_regression_reports_rmse_in_target_units():
    p = load_builtin("hannet-diabetes")
    p.train.epochs = 2
    p.train.device = "cpu"
    summary, events = run(p)
    assert summary.task == "regression" and summary.status == "finished"
    m = [e for e in events if isinstance(e, Metrics)][-1]
    assert m.accuracy is None and m.rmse is not None and m.rmse > 1.0  # target std ≈ 77
    assert summary.final_val_rmse == pytest.approx(math.sqrt(summary.final_val_loss) * 77, rel=0.1)


# -------------------------------------------------------------------------------- events and numerics
def test_event_sequence_and_metrics_cadence():
    p = mlp_digits(epochs=2)
    p.monitor.every_steps = 7
    summary, events = run(p)
    names = kinds(events)
    assert names[0] == "RunStarted" and names[-1] == "Finished"
    assert sum(n in ("Finished", "Stopped", "Failed") for n in names) == 1
    started = events[0]
    metrics = [e for e in events if isinstance(e, Metrics)]
    ends = [e for e in events if isinstance(e, EpochEnd)]
    assert len(ends) == 2 and summary.steps == 2 * started.steps_per_epoch == started.total_steps
    for m in metrics:  # every 7 steps, plus the last step of each epoch
        assert m.step % 7 == 0 or m.step % started.steps_per_epoch == 0
        assert set(m.grad_norm) == set(started.layer_names) and m.samples_per_s > 0 and 0 <= m.accuracy <= 1
    assert metrics[-1].step == summary.steps
    assert summary.samples_per_s > 0 and summary.epochs_completed == 2


def test_seeded_runs_repeat_exactly_and_seed_matters():
    a = [e.loss for e in run(mlp_digits())[1] if isinstance(e, Metrics)]
    b = [e.loss for e in run(mlp_digits())[1] if isinstance(e, Metrics)]
    c = [e.loss for e in run(mlp_digits(seed=1))[1] if isinstance(e, Metrics)]
    assert a == b and a != c


def test_bf16_autocast_runs():
    summary, _ = run(mlp_digits(precision="bf16"))
    assert summary.status == "finished" and math.isfinite(summary.final_train_loss)


def test_exp_curve_schedule_sets_lr_per_epoch():
    p = mlp_digits(epochs=2, scheduler="exp_curve", peak_epoch=2.0, lr=0.01)
    _, events = run(p)
    lrs = {e.epoch: e.lr for e in events if isinstance(e, Metrics)}
    assert lrs[0] == pytest.approx(0.01 * math.e * 0.5 * math.exp(-0.5))
    assert lrs[1] == pytest.approx(0.01)


# -------------------------------------------------------------------------------- guards
def test_nan_producing_preset_fails_with_step_and_layer():
    summary, events = run(mlp_digits(epochs=3, optimizer="sgd", lr=1e6))
    final = events[-1]
    assert isinstance(final, Failed) and summary.status == "failed"
    assert final.step is not None and final.step >= 1
    assert f"step {final.step}" in final.message and "non-finite" in final.message
    assert "_Linear" in final.message and "train.lr" in final.hint


def test_missing_dataset_fails_with_folders_and_download_hint(tmp_path):
    p = load_builtin("z-mnist")
    p.train.device = "cpu"
    summary, events = run(p, data_root=tmp_path)
    final = events[-1]
    assert isinstance(final, Failed) and final.step is None
    assert str(tmp_path) in final.message and "--download" in final.hint
    assert kinds(events) == ["Failed"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_requested_cuda_when_absent_fails_with_hint():
    _, events = run(mlp_digits(device="cuda"))
    assert isinstance(events[-1], Failed) and "cuda" in events[-1].message and "cpu" in events[-1].hint


def test_exception_in_a_model_forward_becomes_failed(monkeypatch):
    import workbench.spec as spec

    class Broken(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 3)

        def forward(self, x):
            return self.lin(x)  # digits are 1×8×8: a shape error at the first step

    monkeypatch.setattr(spec, "build_model", lambda p: torch.nn.Sequential(Broken()))
    summary, events = run(mlp_digits())
    final = events[-1]
    assert isinstance(final, Failed) and "RuntimeError" in final.message and final.step == 0
    assert kinds(events)[0] == "RunStarted"


def test_invalid_preset_fails_before_starting():
    p = mlp_digits()
    p.model.layers[1].params["out_features"] = -3
    _, events = run(p)
    assert kinds(events) == ["Failed"] and "invalid preset" in events[0].message and events[0].step is None


# -------------------------------------------------------------------------------- control from another thread
def _threaded(trainer):
    events: list = []
    first = threading.Event()

    def on(e):
        events.append(e)
        if isinstance(e, Metrics):
            first.set()

    th = threading.Thread(target=trainer.run, args=(on,), daemon=True)
    th.start()
    assert first.wait(60), "no Metrics event arrived"
    return th, events


def test_stop_from_another_thread_is_prompt(tmp_path):
    trainer = Trainer(mlp_digits(epochs=1000), run_dir=tmp_path / "run")
    th, events = _threaded(trainer)
    t = time.perf_counter()
    trainer.stop()
    th.join(10)
    assert not th.is_alive() and time.perf_counter() - t < 5
    assert isinstance(events[-1], Stopped) and events[-1].summary.status == "stopped"
    assert checkpoint_path(tmp_path / "run", "last").exists()


def test_pause_and_resume():
    trainer = Trainer(mlp_digits(epochs=3))
    trainer.pause()
    assert trainer.paused
    events: list = []
    th = threading.Thread(target=trainer.run, args=(events.append,), daemon=True)
    th.start()
    deadline = time.time() + 60
    while not events and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)
    assert kinds(events) == ["RunStarted"]  # held before the first step
    trainer.resume()
    th.join(60)
    assert isinstance(events[-1], Finished) and events[-1].summary.epochs_completed == 3


# -------------------------------------------------------------------------------- run folder and resume
def test_run_folder_checkpoints_and_resume(tmp_path):
    run_dir = tmp_path / "run"
    summary, events = run(mlp_digits(epochs=1), run_dir=run_dir)
    assert summary.status == "finished" and summary.run_dir == str(run_dir)
    for name in ("preset.json", "metrics.jsonl", "summary.json"):
        assert (run_dir / name).exists()
    records = read_metrics(run_dir)
    assert [r["kind"] for r in records].count("epoch") == 1
    assert sum(r["kind"] == "metrics" for r in records) == sum(isinstance(e, Metrics) for e in events)
    last = torch.load(checkpoint_path(run_dir, "last"), weights_only=True)
    assert torch.load(checkpoint_path(run_dir, "best"), weights_only=True)["epoch"] == 1
    assert last["epoch"] == 1 and last["step"] == summary.steps and "1_Linear.weight" in last["model"]

    more = mlp_digits(epochs=3)
    summary2, events2 = run(more, resume_from=run_dir)
    started = events2[0]
    assert started.start_epoch == 1 and started.start_step == summary.steps
    assert summary2.status == "finished" and summary2.epochs_completed == 3
    assert summary2.steps == 3 * started.steps_per_epoch
    epochs = [r["epoch"] for r in read_metrics(run_dir) if r["kind"] == "epoch"]
    assert epochs == [0, 1, 2]


def test_resume_with_other_architecture_names_the_layers(tmp_path):
    run_dir = tmp_path / "run"
    run(mlp_digits(epochs=1), run_dir=run_dir)
    other = mlp_digits(epochs=2)
    other.model.layers[3].params["out_features"] = 32
    _, events = run(other, resume_from=run_dir)
    final = events[-1]
    assert isinstance(final, Failed) and "different architecture" in final.message
    assert "3_Linear" in final.message and "5_Linear" in final.message
    assert torch.load(checkpoint_path(run_dir, "last"), weights_only=True)["epoch"] == 1  # kept


def test_nonfinite_run_keeps_the_last_good_checkpoint(tmp_path):
    p = mlp_digits(epochs=1)
    run(p, run_dir=tmp_path / "run")
    good = torch.load(checkpoint_path(tmp_path / "run", "last"), weights_only=True)
    bad = mlp_digits(epochs=4, optimizer="sgd", lr=1e6)
    _, events = run(bad, resume_from=tmp_path / "run")
    assert isinstance(events[-1], Failed)
    after = torch.load(checkpoint_path(tmp_path / "run", "last"), weights_only=True)
    assert all(torch.isfinite(t).all() for t in after["model"].values() if t.is_floating_point())
    assert after["epoch"] >= good["epoch"]


def test_a_run_stopped_inside_its_first_epoch_reports_its_time_and_loss():
    """A run stopped before any epoch ended used to report 0 s and no loss (issue #12, item 6)."""
    p = mlp_digits(epochs=1)
    p.task.batch_size = 8                  # 180 steps in the epoch
    p.monitor.every_steps = 5
    trainer = Trainer(p)
    events: list = []

    def on_event(event):
        events.append(event)
        if isinstance(event, Metrics) and event.step == 10:
            trainer.stop()                 # honoured before step 11

    summary = trainer.run(on_event)
    metrics = [e for e in events if isinstance(e, Metrics)]
    assert isinstance(events[-1], Stopped) and summary.epochs_completed == 0 and summary.steps == 10
    assert [m.step for m in metrics] == [5, 10]
    assert summary.final_train_loss == pytest.approx((metrics[0].loss + metrics[1].loss) / 2)
    # Metrics carry the training time so far; the summary counts the unfinished epoch's time too
    assert 0 < metrics[0].seconds < metrics[1].seconds <= summary.seconds
    assert summary.samples_per_s == pytest.approx(10 * 8 / summary.seconds)
