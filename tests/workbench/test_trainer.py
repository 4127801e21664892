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
def _threaded(trainer, hold: threading.Event):
    """Run ``trainer`` in a thread; return once its first Metrics event arrived, with the training
    thread held inside that event until ``hold`` is set (so the caller acts at a known step)."""
    events: list = []
    first = threading.Event()

    def on(e):
        events.append(e)
        if isinstance(e, Metrics) and not first.is_set():
            first.set()
            hold.wait()

    th = threading.Thread(target=trainer.run, args=(on,), daemon=True)
    th.start()
    assert first.wait(120), "no Metrics event arrived"
    return th, events


def test_stop_from_another_thread_is_honoured_before_the_next_step(tmp_path, optimizer_steps):
    """stop() from another thread ends the run before its next optimiser step. Counted, not
    timed: a slow or loaded machine takes the same number of steps. The training thread is held
    in its first Metrics event (step 10 of mlp-digits' 23-step epoch) while stop() is called, so
    a stop honoured only at validation or between epochs takes 13 more steps, every time."""
    trainer = Trainer(mlp_digits(epochs=1000), run_dir=tmp_path / "run")
    release = threading.Event()
    th, events = _threaded(trainer, hold=release)
    trainer.stop()
    at_stop = optimizer_steps.count
    release.set()
    th.join(120)                         # a hang-only limit
    assert not th.is_alive(), "the run did not end after stop()"
    after = optimizer_steps.count - at_stop
    assert after == 0, f"the run took {after} optimiser steps after stop()"
    assert isinstance(events[-1], Stopped) and events[-1].summary.status == "stopped"
    assert checkpoint_path(tmp_path / "run", "last").exists()


def test_pause_and_resume(optimizer_steps):
    trainer = Trainer(mlp_digits(epochs=3))
    trainer.pause()
    assert trainer.paused
    events: list = []
    th = threading.Thread(target=trainer.run, args=(events.append,), daemon=True)
    th.start()
    deadline = time.monotonic() + 120        # a hang-only limit
    while not (optimizer_steps.trainer_waits_in_pause() or optimizer_steps.count or not th.is_alive()) \
            and time.monotonic() < deadline:
        time.sleep(0.01)
    assert optimizer_steps.count == 0 and optimizer_steps.trainer_waits_in_pause()  # held before the first step
    assert kinds(events) == ["RunStarted"]
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


# -------------------------------------------------------------------------------- killed runs
class _Killed(BaseException):
    """Stands in for SIGKILL: no handler in the trainer runs (only `finally`, which writes nothing)."""


def _kill_at(monkeypatch, method: str, when) -> None:
    """Make ``RunWriter.<method>`` do its work and then "kill the process" when ``when(args)``."""
    from workbench.runs import RunWriter

    real = getattr(RunWriter, method)

    def dying(self, *args, **kwargs):
        real(self, *args, **kwargs)
        if when(args):
            raise _Killed

    monkeypatch.setattr(RunWriter, method, dying)


def test_a_run_killed_right_after_a_checkpoint_keeps_every_epoch_record(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    last_saves = []

    def second_last_checkpoint(args) -> bool:
        if args[0] == "last":
            last_saves.append(args)
            return len(last_saves) == 2
        return False

    _kill_at(monkeypatch, "save", second_last_checkpoint)
    with pytest.raises(_Killed):
        Trainer(mlp_digits(epochs=4), run_dir=run_dir).run(lambda e: None)
    assert torch.load(checkpoint_path(run_dir, "last"), weights_only=True)["epoch"] == 2
    monkeypatch.undo()
    summary, _ = run(mlp_digits(epochs=4), resume_from=run_dir)
    assert summary.status == "finished"
    assert [r["epoch"] for r in read_metrics(run_dir) if r["kind"] == "epoch"] == [0, 1, 2, 3]


def test_a_run_killed_before_its_first_checkpoint_is_interrupted_and_says_how_to_go_on(tmp_path, monkeypatch,
                                                                                         capsys):
    from workbench import cli
    from workbench.runs import load_run

    run_dir = tmp_path / "run"
    _kill_at(monkeypatch, "append", lambda args: True)          # dies at its first metrics line
    with pytest.raises(_Killed):
        Trainer(mlp_digits(epochs=2), run_dir=run_dir).run(lambda e: None)
    monkeypatch.undo()
    assert (run_dir / "summary.json").exists() and not checkpoint_path(run_dir, "last").exists()
    assert load_run(run_dir).status == "interrupted"            # the summary on disk says "running"
    assert cli.main(["train", "--resume", str(run_dir), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "before its first epoch was saved" in err and "preset.json" in err


def test_a_live_run_is_listed_as_running_and_its_folder_cannot_be_taken(tmp_path):
    from workbench.runs import load_run

    run_dir = tmp_path / "run"
    trainer = Trainer(mlp_digits(epochs=1000), run_dir=run_dir)
    trainer.pause()                      # holds before its first step, the summary written
    events: list = []
    th = threading.Thread(target=trainer.run, args=(events.append,), daemon=True)
    th.start()
    deadline = time.time() + 60
    while not events and time.time() < deadline:
        time.sleep(0.01)
    try:
        assert load_run(run_dir).status == "running"
        before = (run_dir / "summary.json").read_bytes()
        _, second = run(mlp_digits(epochs=2), resume_from=run_dir)
        assert isinstance(second[-1], Failed) and "in use" in second[-1].message
        assert (run_dir / "summary.json").read_bytes() == before   # the live run's summary untouched
    finally:
        trainer.stop()
        th.join(30)
    assert load_run(run_dir).status == "stopped"


# -------------------------------------------------------------------------------- planted links
def _tree(path):
    """Every file under ``path`` with its bytes (to show nothing outside the run changed)."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("planted", ["checkpoints/.last.pt.tmp", "metrics.jsonl", ".metrics.jsonl.tmp",
                                     "checkpoints", "summary.json", ".lock"])
def test_resume_never_writes_through_a_planted_link(tmp_path, planted):
    import shutil

    run_dir, outside = tmp_path / "run", tmp_path / "outside"
    run(mlp_digits(epochs=1), run_dir=run_dir)
    outside.mkdir()
    target = outside / "victim"
    if planted == "checkpoints":                   # the run's checkpoints moved out, a link left
        shutil.move(str(run_dir / "checkpoints"), str(target))
    else:
        target.write_bytes(b"precious\nno final newline")
    (run_dir / planted).unlink(missing_ok=True)
    (run_dir / planted).symlink_to(target, target_is_directory=planted == "checkpoints")
    before = _tree(outside)
    summary, events = run(mlp_digits(epochs=2), resume_from=run_dir)
    assert _tree(outside) == before                # the outside file or folder is untouched
    if planted in ("checkpoints/.last.pt.tmp", ".metrics.jsonl.tmp"):   # names it never opens
        assert summary.status == "finished" and summary.epochs_completed == 2
    else:                                          # stops, saying why, before writing anything
        final = events[-1]
        assert isinstance(final, Failed) and final.step is None
        assert "symbolic link" in final.message or ".lock" in final.hint, final
        assert (run_dir / planted).is_symlink()


# -------------------------------------------------------------------------------- failed resume
@pytest.mark.parametrize("damage", ["optimizer", "rng", "epoch"])
def test_a_resume_that_fails_in_setup_leaves_the_summary_as_it_was(tmp_path, damage):
    run_dir = tmp_path / "run"
    first, _ = run(mlp_digits(epochs=2), run_dir=run_dir)
    assert first.status == "finished" and first.best_val_accuracy > 0.5
    path = checkpoint_path(run_dir, "last")
    ckpt = torch.load(path, weights_only=True)
    if damage == "optimizer":
        ckpt["optimizer"] = {}
    elif damage == "rng":
        ckpt["rng"]["torch"] = torch.zeros(3, dtype=torch.uint8)
    else:
        ckpt["epoch"] = "x"
    torch.save(ckpt, path)
    before = (run_dir / "summary.json").read_bytes()
    summary, events = run(mlp_digits(epochs=4), resume_from=run_dir)
    assert isinstance(events[-1], Failed) and events[-1].step is None
    assert (run_dir / "summary.json").read_bytes() == before


def test_a_resumed_run_keeps_its_figures_in_the_running_summary(tmp_path):
    import json

    run_dir = tmp_path / "run"
    first, _ = run(mlp_digits(epochs=1), run_dir=run_dir)
    trainer = Trainer(mlp_digits(epochs=1000), resume_from=run_dir)
    trainer.pause()                                    # held before its first step: summary "running"
    events: list = []
    th = threading.Thread(target=trainer.run, args=(events.append,), daemon=True)
    th.start()
    deadline = time.time() + 60
    while not events and time.time() < deadline:
        time.sleep(0.01)
    try:
        on_disk = json.loads((run_dir / "summary.json").read_text())
        assert on_disk["status"] == "running" and on_disk["epochs_completed"] == 1
        assert on_disk["best_val_accuracy"] == first.best_val_accuracy and on_disk["steps"] == first.steps
    finally:
        trainer.stop()
        th.join(30)


# -------------------------------------------------------------------------------- out of memory
@pytest.mark.parametrize("allocate", ["torch", "python"])
def test_out_of_memory_says_so_with_the_batch_size_hint(monkeypatch, allocate):
    """A real refusal: 1 PB from torch's CPU allocator ("can't allocate memory"), or a Python
    MemoryError; both fail at once without using memory."""
    import workbench.spec as spec

    class Greedy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(64, 10)

        def forward(self, x):
            if allocate == "torch":
                torch.empty(2**50, dtype=torch.uint8)
            else:
                bytearray(2**50)
            return self.lin(x.flatten(1))

    monkeypatch.setattr(spec, "build_model", lambda p: torch.nn.Sequential(Greedy()))
    _, events = run(mlp_digits())
    final = events[-1]
    assert isinstance(final, Failed) and final.message.startswith("out of memory on cpu at step 0"), final
    if allocate == "torch":
        assert "an allocation of 1.1 PB was refused" in final.message
    assert "lower task.batch_size (now 64)" in final.hint and "smaller model" in final.hint


# -------------------------------------------------------------------------------- exploding loss
EMBEDDED_PRESETS = ["z-digits", "mlp-relu-digits", "fcnet-checkerboard", "hannet-checkerboard", "hannet-diabetes",
                    "infinite-parity"]


def test_embedded_presets_are_complete():
    from workbench.data import EMBEDDED
    from workbench.presets import builtin_presets

    embedded = sorted(i.key for i in builtin_presets() if load_builtin(i.key).task.dataset in EMBEDDED)
    assert embedded == sorted(EMBEDDED_PRESETS)


@pytest.mark.parametrize("key", EMBEDDED_PRESETS)
def test_the_divergence_guard_never_fires_on_a_healthy_run(key):
    from workbench.trainer import EXPLODING_FACTOR

    p = load_builtin(key)
    p.train.epochs, p.train.device = 3, "cpu"
    summary, events = run(p)
    assert not (isinstance(events[-1], Failed) and "exploded" in events[-1].message), events[-1]
    losses = [e.loss for e in events if isinstance(e, Metrics) and math.isfinite(e.loss)]
    assert max(losses) < EXPLODING_FACTOR / 100 * max(losses[0], 0.5)   # not even close to the limit


@pytest.mark.parametrize("key", ["z-digits", "mlp-relu-digits"])
def test_adam_at_lr_1e6_fails_as_diverging_and_saves_no_checkpoint_of_it(tmp_path, key):
    p = load_builtin(key)
    p.train.epochs, p.train.device, p.train.lr = 4, "cpu", 1e6
    summary, events = run(p, run_dir=tmp_path / "run")
    final = events[-1]
    assert isinstance(final, Failed) and "the loss exploded at step" in final.message, final
    assert final.step is not None and "lower train.lr (now 1e+06)" in final.hint
    assert summary.status == "failed" and summary.epochs_completed == 0
    assert not checkpoint_path(tmp_path / "run", "last").exists()   # no weights of a diverged run kept


# -------------------------------------------------------------------------------- fresh batches
def fresh_parity(epochs):
    return preset_from_dict({
        "name": "fresh parity",
        "task": {"dataset": "parity", "batch_size": 100, "val_split": 0.25, "normalize": False,
                 "options": {"n_inputs": 6, "k_active": 2, "n_samples": 1200, "fresh_batches": True}},
        "model": {"layers": [{"type": "Linear", "params": {"out_features": 16}}, {"type": "ReLU"},
                             {"type": "Dropout", "params": {"p": 0.1}},
                             {"type": "Linear", "params": {"out_features": "classes"}}]},
        "train": {"optimizer": "adam", "lr": 0.01, "epochs": epochs, "device": "cpu"},
        "monitor": {"every_steps": 4},
    })


class RecordingTrainer(Trainer):
    """Records every training batch's labels (as drawn) and the model's training outputs."""

    def _setup(self):
        super()._setup()
        self.seen_y, self.seen_out = [], []
        draw = self.data.fresh_batch

        def fresh_batch(n, generator=None):
            x, y = draw(n, generator)
            self.seen_y.append(y.clone())
            return x, y

        self.data.fresh_batch = fresh_batch
        self.model.register_forward_hook(lambda m, i, o: self.seen_out.append(o.detach()) if m.training else None)


def test_fresh_batches_are_drawn_every_step_and_the_accuracy_window_uses_their_labels():
    # the Going-Deeper XOR experiment draws a new batch of 1,000 before every step; the window accuracy
    # must be counted against those labels (not against a slice of the stored training labels)
    trainer = RecordingTrainer(fresh_parity(epochs=2))
    events: list = []
    summary = trainer.run(events.append)
    assert summary.status == "finished" and summary.steps == 2 * 9  # 900 train samples / batch 100
    assert len(trainer.seen_y) == summary.steps
    stored = trainer.data.train_y[:100]
    assert not all(torch.equal(y, stored) for y in trainer.seen_y)  # fresh, not the stored set
    assert not torch.equal(trainer.seen_y[0], trainer.seen_y[1])
    correct = [int((o.argmax(-1) == y).sum()) for o, y in zip(trainer.seen_out, trainer.seen_y)]
    previous = 0
    for m in (e for e in events if isinstance(e, Metrics)):
        window = range(previous, m.step)
        assert m.accuracy == pytest.approx(sum(correct[i] for i in window) / (100 * len(window)), abs=1e-12)
        previous = m.step


def test_fresh_batch_runs_repeat_and_resume_to_the_same_weights(tmp_path):
    _, straight = run(fresh_parity(epochs=3), run_dir=tmp_path / "a")
    run(fresh_parity(epochs=1), run_dir=tmp_path / "b")
    _, resumed = run(fresh_parity(epochs=3), resume_from=tmp_path / "b")
    a = torch.load(checkpoint_path(tmp_path / "a", "last"), weights_only=True)["model"]
    b = torch.load(checkpoint_path(tmp_path / "b", "last"), weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    last = lambda evs: [e for e in evs if isinstance(e, Metrics)][-1]  # noqa: E731
    assert (last(straight).loss, last(straight).accuracy) == (last(resumed).loss, last(resumed).accuracy)


def test_bce_trains_one_logit_and_counts_sigma_above_half_as_class_1():
    # Going Deeper's head: Dense(1, sigmoid) + binary_crossentropy; the window accuracy and the
    # validation accuracy must read the single logit (z > 0), not an argmax over one output
    from workbench.losses import binary_cross_entropy

    p = fresh_parity(epochs=6)
    p.task.loss = "bce"
    trainer = RecordingTrainer(p)
    events: list = []
    summary = trainer.run(events.append)
    assert summary.status == "finished" and trainer.seen_out[0].shape == (100, 1)
    correct = [int(((o[:, 0] > 0).long() == y).sum()) for o, y in zip(trainer.seen_out, trainer.seen_y)]
    previous = 0
    for m in (e for e in events if isinstance(e, Metrics)):
        window = range(previous, m.step)
        assert m.accuracy == pytest.approx(sum(correct[i] for i in window) / (100 * len(window)), abs=1e-12)
        losses = [float(binary_cross_entropy(trainer.seen_out[i], trainer.seen_y[i])) for i in window]
        assert m.loss == pytest.approx(sum(losses) / len(losses), rel=1e-5)
        previous = m.step
    model, data = trainer.model.eval(), trainer.data
    with torch.no_grad():
        z = model(data.val_x)[:, 0]
    assert summary.final_val_accuracy == pytest.approx(float(((z > 0).long() == data.val_y).float().mean()), abs=1e-12)
    assert summary.final_val_accuracy > 0.9  # k = 2 of 6 bits is learnable in 54 steps; an argmax of 1 output is ~½


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


def test_a_run_stopped_between_emits_counts_the_steps_it_took(optimizer_steps):
    """summary.steps and samples/s count every optimiser step taken, also those after the last
    emit (they were set only at emits, so a stop between two undercounted them)."""
    p = mlp_digits(epochs=1)
    p.task.batch_size = 8                  # 180 steps in the epoch
    p.monitor.every_steps = 5
    trainer = Trainer(p)
    calls = {"n": 0}

    def stop_at_the_seventh_training_forward(module, args, output):
        if module.training:
            calls["n"] += 1
            if calls["n"] == 7:
                trainer.stop()             # step 7 completes; honoured before step 8

    def on_event(event):
        if isinstance(event, RunStarted):
            trainer.model.register_forward_hook(stop_at_the_seventh_training_forward)

    summary = trainer.run(on_event)
    assert summary.status == "stopped"
    assert optimizer_steps.count == 7
    assert summary.steps == 7
    assert summary.samples_per_s == pytest.approx(7 * 8 / summary.seconds)
