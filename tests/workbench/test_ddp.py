"""DDP on the CPU: two gloo processes started by torchrun train one run (issue #15).

Every test launches real torchrun processes (``python -m torch.distributed.run --standalone``, a
free port chosen by torchrun itself) on tiny models, one torch thread each. Waits are hang guards
only: no test asserts how long anything takes.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import torch

from workbench.events import EpochEnd, Finished, Metrics, RunStarted, Stopped
from workbench.launch import TorchrunLaunch, torchrun_command
from workbench.presets import load_builtin
from workbench.runs import checkpoint_path, read_metrics, read_summary, run_is_live
from workbench.spec import preset_from_dict, save_preset
from workbench.trainer import Trainer

REPO = Path(__file__).resolve().parents[2]
HANG_S = 240  # hang guard for one launch (a healthy one takes 10-30 s on a loaded 2-core machine)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600), pytest.mark.usefixtures("one_torch_thread")]


def _z_digits(epochs: int, every: int = 1):
    p = load_builtin("z-digits")
    p.train.epochs = epochs
    p.train.device = "cpu"
    p.monitor.every_steps = every
    return p


def _launch(preset, run_dir: Path, *extra: str, nproc: int = 2, resume: Path | None = None,
            control=None) -> tuple[object, list, TorchrunLaunch]:
    """Train ``preset`` on ``nproc`` torchrun processes (rank 0 streaming its events back)."""
    preset_file = run_dir.parent / f"{run_dir.name}-preset.json"
    save_preset(preset, preset_file)
    args = ["train", str(preset_file), "--quiet", *extra]
    args += ["--resume", str(resume)] if resume is not None else ["--run-dir", str(run_dir)]
    launch = TorchrunLaunch(args, nproc, resume or run_dir, preset_name=preset.name, capture_output=True)
    events: list = []

    def on_event(event):
        events.append(event)
        if control is not None:
            control(event, launch)

    return _joined(launch, on_event), events, launch


def _joined(launch: TorchrunLaunch, on_event=lambda event: None):
    """``launch.run(on_event)`` on a thread, under the hang guard; returns its summary."""
    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault("summary", launch.run(on_event)), daemon=True)
    thread.start()
    thread.join(HANG_S)
    if thread.is_alive():  # a hang: end the processes, then fail
        launch.stop()
        launch.stop()
        thread.join(60)
        pytest.fail(f"the DDP run did not end within {HANG_S} s (hang guard); output: {list(launch._tail)[-10:]}")
    return result["summary"]


def _losses(events) -> list[float]:
    return [e.loss for e in events if isinstance(e, Metrics)]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    """z-digits for 3 epochs on 2 processes, a Metrics event (the step's loss) every step."""
    root = tmp_path_factory.mktemp("ddp-runs")
    run_dir = root / "run"
    summary, events, launch = _launch(_z_digits(3), run_dir)
    return root, run_dir, summary, events, launch


def test_two_processes_reach_the_single_process_accuracy_band(two_process_run):
    root, run_dir, summary, events, launch = two_process_run
    assert summary.status == "finished", (summary.message, list(launch._tail)[-10:])
    assert summary.epochs_completed == 3
    assert summary.final_val_accuracy >= 0.90  # test_trainer: one process reaches ≥ 90 % in 3 epochs
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], Finished)
    assert events[0].world_size == 2 and "2 processes (DDP, gloo)" in events[0].device_name


def test_the_first_20_losses_equal_those_of_one_process_with_the_same_global_batch(two_process_run):
    """z-digits has neither dropout nor BatchNorm: each rank's half of every batch, gradients
    averaged by DDP, is the same optimisation as one process on the whole batch."""
    _, _, summary, events, _ = two_process_run
    single: list = []
    Trainer(_z_digits(1)).run(single.append)
    two, one = _losses(events)[:20], _losses(single)[:20]
    assert len(two) == len(one) == 20
    assert max(abs(a - b) for a, b in zip(two, one)) <= 1e-5, list(zip(two, one))


def test_rank_0_alone_writes_one_run_folder_that_records_the_world_size(two_process_run):
    root, run_dir, summary, events, _ = two_process_run
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["run"]  # one run folder, no other
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert on_disk["world_size"] == 2 and summary.world_size == 2 and on_disk["status"] == "finished"
    assert checkpoint_path(run_dir, "last").exists() and checkpoint_path(run_dir, "best").exists()
    assert not run_is_live(run_dir)
    records = read_metrics(run_dir)
    steps = [r["step"] for r in records if r["kind"] == "metrics"]
    assert steps == sorted(set(steps)) and len(steps) == 3 * events[0].steps_per_epoch  # written once, not per rank
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [0, 1, 2]
    # the events streamed from rank 0 carry what the folder holds
    streamed = [e.flat() for e in events if isinstance(e, (Metrics, EpochEnd))]
    assert streamed == records


def test_resume_pause_and_stop_under_ddp(two_process_run, tmp_path):
    """Every rank loads the checkpoint rank 0 wrote; a pause and a stop asked of rank 0 are agreed
    by both ranks at an emit; the stopped run keeps a checkpoint."""
    _, run_dir, first, _, _ = two_process_run
    copy = tmp_path / "resumed"
    shutil.copytree(run_dir, copy)
    asked: list[str] = []

    def control(event, launch):
        if isinstance(event, Metrics) and not asked:
            asked.append("pause")
            launch.pause()
            launch.resume()
        elif isinstance(event, Metrics) and event.step >= 3 * 23 + 5 and "stop" not in asked:
            asked.append("stop")
            launch.stop()

    summary, events, launch = _launch(_z_digits(50), copy, resume=copy, control=control)
    assert summary.status == "stopped", (summary.message, list(launch._tail)[-10:])
    assert isinstance(events[-1], Stopped)
    started = events[0]
    assert isinstance(started, RunStarted) and started.start_epoch == 3 and started.start_step == first.steps
    metrics = [e for e in events if isinstance(e, Metrics)]
    assert metrics[0].step == first.steps + 1  # training went on from the checkpoint
    assert summary.epochs_completed < 50 and read_summary(copy).status == "stopped"
    assert checkpoint_path(copy, "last").exists() and not run_is_live(copy)


def _depth_preset():
    """Digits through two InfiniteDepth layers: the first's w falls from 2.5 (3 sub-layers) under a
    strong w_l2, so its depth changes during the run; the second's w starts below 0 (no sub-layer
    runs, w is used only by its regularisation term)."""
    return preset_from_dict({
        "format": "afwb.preset/1", "name": "depth changes under DDP",
        "task": {"dataset": "digits", "batch_size": 64, "val_split": 0.2},
        "model": {"layers": [
            {"type": "Flatten"},
            {"type": "Linear", "params": {"out_features": 16}},
            {"type": "InfiniteDepth", "params": {"init_w": 2.5, "max_depth": 4, "w_l2": 3.0},
             "body": [{"type": "Linear", "params": {"out_features": "same"}}]},
            {"type": "InfiniteDepth", "params": {"init_w": -0.5, "max_depth": 2, "w_l2": 1.0},
             "body": [{"type": "Linear", "params": {"out_features": "same"}}]},
            {"type": "Linear", "params": {"out_features": "classes"}},
        ]},
        "train": {"optimizer": "sgd", "lr": 0.05, "momentum": 0.0, "epochs": 1, "seed": 3, "device": "cpu"},
        "monitor": {"every_steps": 1, "checkpoints": False},
    })


def test_infinite_depth_changes_during_a_two_process_run_and_both_ranks_agree(tmp_path):
    """Sub-layers beyond ⌈w⌉ get no gradient, and a depth-0 layer's w only its regularisation: DDP
    must accept both; the ranks run the same depth at every step (w is kept equal by DDP's
    gradient all-reduce), so the losses and depths are those of one process."""
    preset = _depth_preset()
    summary, events, launch = _launch(preset, tmp_path / "run")
    assert summary.status == "finished", (summary.message, list(launch._tail)[-10:])
    single: list = []
    Trainer(_depth_preset()).run(single.append)
    two = [(e.depth["2_InfiniteDepth"], e.depth["3_InfiniteDepth"]) for e in events if isinstance(e, Metrics)]
    one = [(e.depth["2_InfiniteDepth"], e.depth["3_InfiniteDepth"]) for e in single if isinstance(e, Metrics)]
    assert two == one
    assert len({d for d, _ in two}) >= 3, two  # the depth did change during the run (3 → 2 → 1)
    assert {d for _, d in two} == {0}
    assert max(abs(a - b) for a, b in zip(_losses(events), _losses(single))) <= 1e-5


def _bce_parity_preset():
    """Parity (6 bits, target the XOR of 2) with one logit and Keras's binary cross-entropy, the
    Going-Deeper head; no dropout or BatchNorm, so two ranks train as one process does."""
    return preset_from_dict({
        "format": "afwb.preset/1", "name": "bce under DDP",
        "task": {"dataset": "parity", "batch_size": 100, "val_split": 0.25, "loss": "bce", "normalize": False,
                 "options": {"n_inputs": 6, "k_active": 2, "n_samples": 1200}},
        "model": {"layers": [{"type": "Linear", "params": {"out_features": 16}}, {"type": "ReLU"},
                             {"type": "Linear", "params": {"out_features": "classes"}}]},
        "train": {"optimizer": "adam", "lr": 0.01, "epochs": 6, "seed": 0, "device": "cpu"},
        "monitor": {"every_steps": 3, "checkpoints": False},
    })


def test_bce_accuracy_and_loss_reduced_over_two_ranks_read_the_single_logit(tmp_path):
    """Under DDP the window's correct predictions and the validation counts are summed over the
    ranks: with one logit they must count z > 0 as class 1 (an argmax over one output says class 0
    always, ~50 %), and agree with one process on the same global batches."""
    summary, events, launch = _launch(_bce_parity_preset(), tmp_path / "run")
    assert summary.status == "finished", (summary.message, list(launch._tail)[-10:])
    single: list = []
    Trainer(_bce_parity_preset()).run(single.append)
    two_m = [e for e in events if isinstance(e, Metrics)]
    one_m = [e for e in single if isinstance(e, Metrics)]
    assert [m.step for m in two_m] == [m.step for m in one_m]
    assert max(abs(a.loss - b.loss) for a, b in zip(two_m, one_m)) <= 1e-5
    assert [m.accuracy for m in two_m] == pytest.approx([m.accuracy for m in one_m], abs=0.02)
    two_e = [e.val_accuracy for e in events if isinstance(e, EpochEnd)]
    one_e = [e.val_accuracy for e in single if isinstance(e, EpochEnd)]
    assert two_e == pytest.approx(one_e, abs=0.02)
    assert summary.final_val_accuracy > 0.9 and two_m[-1].accuracy > 0.9  # seeded; learnable in 54 steps


def _rank_pids(mark: str, rank: int) -> list[int]:
    """Processes whose environment holds AFWB_TEST_MARK=mark and RANK=rank (a torchrun worker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"AFWB_TEST_MARK={mark}".encode() in env and f"RANK={rank}".encode() in env:
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the rank's process through /proc")
def test_killing_one_rank_ends_the_run_with_a_clear_message(tmp_path):
    """`main.py train --nproc 2`; rank 1 is killed (SIGKILL) once training runs: rank 0 ends with a
    message that says so, the run folder says failed (lock released, a checkpoint kept to resume
    from), and the command exits 1 with that message."""
    preset_file = tmp_path / "z.json"
    save_preset(_z_digits(500, every=10), preset_file)
    mark = uuid.uuid4().hex
    env = dict(os.environ, AFWB_TEST_MARK=mark, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, str(REPO / "main.py"), "train", str(preset_file), "--nproc", "2",
                             "--quiet", "--out", str(tmp_path / "runs")], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + HANG_S
        killed = False
        while time.monotonic() < deadline and proc.poll() is None:
            metrics = list((tmp_path / "runs").glob("*/metrics.jsonl"))
            if metrics and len(read_metrics(metrics[0].parent)) >= 5:  # training is under way
                for pid in _rank_pids(mark, 1):
                    os.kill(pid, signal.SIGKILL)
                    killed = True
                if killed:
                    break
            time.sleep(0.2)
        assert killed, "rank 1 was never found running"
        out, err = proc.communicate(timeout=HANG_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err[-2000:]
    assert "error: another process of this 2-process run ended without a word" in err, err[-3000:]
    assert "killed, crashed, or its machine went away" in err
    folders = list((tmp_path / "runs").iterdir())
    assert len(folders) == 1
    summary = read_summary(folders[0])
    assert summary.status == "failed" and summary.world_size == 2
    assert summary.message.startswith("another process of this 2-process run ended without a word")
    assert "--resume" in summary.hint and not run_is_live(folders[0])
    assert checkpoint_path(folders[0], "last").exists()


def _planted_on_rank_1(tmp_path, mode: str, at_batch: int = 12):
    """z-digits, 2 epochs, an emit every 5 steps, on 2 processes of ``ddp_rank_script.py`` with
    ``mode`` planted on rank 1 at its ``at_batch``-th batch. Returns (completed process, the ranks'
    STATUS lines, run folder)."""
    preset_file = tmp_path / "z.json"
    save_preset(_z_digits(2, every=5), preset_file)
    run_dir = tmp_path / "run"
    command = torchrun_command(2, [], torchrun_args=())
    command = command[:command.index("-m", 3)] + [str(REPO / "tests" / "workbench" / "ddp_rank_script.py"),
                                                 str(preset_file), str(run_dir), "1", str(at_batch), mode]
    proc = subprocess.run(command, cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True,
                          text=True, timeout=HANG_S)
    statuses = sorted(line for line in proc.stdout.splitlines() if line.startswith("STATUS "))
    return proc, statuses, run_dir


def test_an_error_on_one_rank_stops_every_rank_and_rank_0_reports_it(tmp_path):
    """Rank 1 fails in the middle of an epoch while rank 0 waits for it in DDP's gradient
    all-reduce: rank 0 learns the cause from the note rank 1 left, ends the run as failed with it,
    and both processes end (none is left waiting)."""
    proc, statuses, run_dir = _planted_on_rank_1(tmp_path, "raise")
    assert proc.returncode != 0, proc.stdout + proc.stderr[-2000:]
    rank1 = next(line for line in statuses if line.startswith("STATUS 1 "))
    assert rank1.startswith("STATUS 1 failed RuntimeError at step") and "planted failure on this rank" in rank1
    summary = read_summary(run_dir)
    assert summary.status == "failed", (statuses, proc.stderr[-2000:])
    assert summary.message.startswith("another process of this run failed at step")
    assert "rank 1: RuntimeError at step" in summary.message and "planted failure on this rank" in summary.message
    assert not run_is_live(run_dir)


def test_a_non_finite_loss_on_one_rank_fails_every_rank_at_that_step(tmp_path):
    """Only rank 1's batch 12 is NaN: the loss reduced at the emit (step 15) is the global batch's,
    so both ranks find the non-finite loss of step 12 and end as failed with the same message, and
    rank 0 writes it; no checkpoint of the diverged weights is written."""
    proc, statuses, run_dir = _planted_on_rank_1(tmp_path, "nan")
    assert proc.returncode != 0, proc.stdout + proc.stderr[-2000:]
    expected = "the loss became non-finite (NaN or inf) at step 12"
    assert len(statuses) == 2 and all(line.split(" ", 3)[2] == "failed" and expected in line
                                      for line in statuses), (statuses, proc.stderr[-2000:])
    summary = read_summary(run_dir)
    assert summary.status == "failed" and summary.message.startswith(expected) and summary.world_size == 2
    assert [r["step"] for r in read_metrics(run_dir) if r["kind"] == "metrics"] == [5, 10]
    assert not checkpoint_path(run_dir, "last").exists() and not run_is_live(run_dir)


def test_a_stop_asked_of_rank_1_alone_stops_every_rank(tmp_path):
    """A stop reaches rank 1 only (as a signal to that process would): the ranks agree on it at the
    next emit (step 15), both end as stopped, and rank 0 keeps a checkpoint to resume from."""
    proc, statuses, run_dir = _planted_on_rank_1(tmp_path, "stop")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert [line.split(" ", 3)[:3] for line in statuses] == [["STATUS", "0", "stopped"],
                                                             ["STATUS", "1", "stopped"]], statuses
    summary = read_summary(run_dir)
    assert summary.status == "stopped" and summary.steps == 15 and summary.world_size == 2
    assert checkpoint_path(run_dir, "last").exists() and not run_is_live(run_dir)


def test_a_rank_that_refuses_before_training_gives_the_launch_its_own_message(tmp_path):
    """A launch that skipped the command line's checks (the app's, bench/ddp.py's): the rank's
    ``error:`` line names the cause (here a missing data set), not torchrun's ChildFailedError that
    follows it in the captured output; the run folder records it."""
    run_dir = tmp_path / "run"
    launch = TorchrunLaunch(["train", "z-mnist", "--run-dir", str(run_dir), "--data-root", str(tmp_path / "none"),
                             "--quiet"], 1, run_dir, preset_name="z-mnist", capture_output=True)
    summary = _joined(launch)
    assert summary.status == "failed"
    assert "data set 'mnist' not found" in summary.message, (summary.message, list(launch._tail)[-12:])
    assert "ChildFailedError" not in summary.message
    assert read_summary(run_dir).message == summary.message


def test_the_torchrun_command_is_standalone_on_a_free_port():
    command = torchrun_command(3, ["train", "z-digits"])
    assert command[1:4] == ["-m", "torch.distributed.run", "--standalone"]
    assert "--nproc-per-node" in command and command[command.index("--nproc-per-node") + 1] == "3"
    assert command[-4:] == ["-m", "workbench.cli", "train", "z-digits"]
    assert torch.distributed.is_available()


# --------------------------------------------------------------------- the command line's checks
def test_nproc_is_checked_before_anything_is_written(tmp_path, capsys, monkeypatch):
    from workbench import cli

    out = tmp_path / "runs"
    assert cli.main(["train", "z-digits", "--nproc", "0", "--out", str(out)]) == 2
    assert "--nproc must be at least 1" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert cli.main(["train", "z-digits", "--nproc", "2", "--device", "cuda", "--out", str(out)]) == 2
        assert "no CUDA GPU is visible" in capsys.readouterr().err
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert cli.main(["train", "z-digits", "--nproc", "2", "--out", str(out)]) == 2
    assert "under torchrun leave it out" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_rank_0_streams_the_live_decision_boundary_to_the_launcher(tmp_path):
    """A rank linked to a launcher runs the boundary hook (rank 0 only) and its events cross the link."""
    from workbench.boundary import BoundaryPoints, DecisionBoundary

    p = load_builtin("hannet-checkerboard")
    p.train.epochs, p.train.device, p.monitor.every_steps = 2, "cpu", 5
    summary, events, _ = _launch(p, tmp_path / "run")
    assert summary.status == "finished", summary.message
    points = [e for e in events if isinstance(e, BoundaryPoints)]
    grids = [e for e in events if isinstance(e, DecisionBoundary)]
    assert len(points) == 1 and points[0].train_total == 1640 and points[0].val_total == 4921
    assert grids and all(g.n_classes == 2 and len(g.classes) == g.resolution ** 2 for g in grids)
    steps = {e.step for e in events if isinstance(e, Metrics)}
    assert grids[0].step == min(steps) and all(g.step in steps for g in grids)
