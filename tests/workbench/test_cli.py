"""workbench.cli: the headless command line, its exit codes, and a run killed with SIGKILL."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from workbench import cli
from workbench.presets import load_builtin
from workbench.runs import checkpoint_path, list_runs, read_metrics
from workbench.spec import preset_to_dict, save_preset

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_preset_file(tmp_path: Path, name="tiny.json", **train) -> Path:
    p = load_builtin("mlp-relu-digits")
    p.train.epochs = 1
    p.train.device = "cpu"
    for k, v in train.items():
        setattr(p.train, k, v)
    path = tmp_path / name
    save_preset(p, path)
    return path


def train_tiny(tmp_path: Path, capsys) -> Path:
    root = tmp_path / "runs"
    assert cli.main(["train", str(tiny_preset_file(tmp_path)), "--out", str(root), "--quiet"]) == 0
    out = capsys.readouterr().out
    run = Path(out.splitlines()[0].split("run folder: ", 1)[1])
    assert run.parent == root and (run / "summary.json").exists()
    return run


def test_train_prints_folder_and_summary_line(tmp_path, capsys):
    root = tmp_path / "runs"
    code = cli.main(["train", "mlp-relu-digits", "--epochs", "1", "--device", "cpu", "--out", str(root)])
    captured = capsys.readouterr()
    assert code == 0
    lines = captured.out.splitlines()
    assert lines[0].startswith("run folder: ")
    assert lines[-1].startswith("finished, val accuracy") and "samples/s" in lines[-1]
    assert "step" in captured.err  # the tqdm progress bar goes to stderr
    [rec] = list_runs(root)
    assert rec.summary.status == "finished" and rec.summary.epochs_completed == 1


def test_train_learned_depth_in_summary_line(tmp_path, capsys):
    p = load_builtin("infinite-parity")
    p.task.options["n_samples"] = 512
    p.task.batch_size = 128
    p.train.epochs = 1
    path = tmp_path / "parity.json"
    save_preset(p, path)
    assert cli.main(["train", str(path), "--out", str(tmp_path / "runs"), "--quiet", "--device", "cpu"]) == 0
    assert "depth 2_InfiniteDepth: w = " in capsys.readouterr().out


def test_presets_and_runs_tables(tmp_path, capsys):
    assert cli.main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "z-digits" in out and "z-mnist" in out and "mnist" in out
    run = train_tiny(tmp_path, capsys)
    assert cli.main(["runs", "--root", str(run.parent)]) == 0
    assert run.name in capsys.readouterr().out


def test_eval_reports_validation_figures(tmp_path, capsys):
    run = train_tiny(tmp_path, capsys)
    assert cli.main(["eval", str(run)]) == 0
    out = capsys.readouterr().out
    summary = json.loads((run / "summary.json").read_text())
    assert "validation set: 359 samples" in out
    assert f"accuracy {100 * summary['best_val_accuracy']:.2f}%" in out


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_eval_of_a_bce_run_reads_the_single_logit(tmp_path, capsys):
    from workbench.spec import preset_from_dict

    p = preset_from_dict({
        "name": "bce parity", "task": {"dataset": "parity", "batch_size": 100, "val_split": 0.25, "loss": "bce",
                                       "normalize": False,
                                       "options": {"n_inputs": 6, "k_active": 2, "n_samples": 1200}},
        "model": {"layers": [{"type": "Linear", "params": {"out_features": 16}}, {"type": "ReLU"},
                             {"type": "Linear", "params": {"out_features": "classes"}}]},
        "train": {"optimizer": "adam", "lr": 0.01, "epochs": 6, "device": "cpu"}})
    save_preset(p, tmp_path / "bce.json")
    assert cli.main(["train", str(tmp_path / "bce.json"), "--out", str(tmp_path / "runs"), "--quiet"]) == 0
    run = Path(capsys.readouterr().out.splitlines()[0].split("run folder: ", 1)[1])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final_val_accuracy"] > 0.9  # seeded; an argmax over one output would say ~50%
    assert cli.main(["eval", str(run), "--checkpoint", "last"]) == 0
    out = capsys.readouterr().out
    assert f"accuracy {100 * summary['final_val_accuracy']:.2f}%" in out
    shown = float(out.split("loss ", 1)[1].split(",", 1)[0])
    assert shown == pytest.approx(summary["final_val_loss"], rel=1e-3)  # the trainer's bce, computed again
    # export keeps the single logit (σ(z) is the probability of class 1)
    ts = tmp_path / "bce.pt"
    assert cli.main(["export", str(run), "--format", "torchscript", "--output", str(ts)]) == 0
    x = torch.randint(0, 2, (5, 6)).float()
    assert torch.jit.load(str(ts))(x).shape == (5, 1)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_export_torchscript_and_onnx(tmp_path, capsys):
    import onnx

    run = train_tiny(tmp_path, capsys)
    ts = tmp_path / "m.pt"
    assert cli.main(["export", str(run), "--format", "torchscript", "--output", str(ts)]) == 0
    from workbench.spec import build_model, load_preset

    model = build_model(load_preset(run / "preset.json"))
    model.load_state_dict(torch.load(checkpoint_path(run, "best"), weights_only=True)["model"])
    model.eval()
    x = torch.randn(5, 1, 8, 8)
    assert torch.allclose(torch.jit.load(str(ts))(x), model(x), atol=1e-5)
    assert cli.main(["export", str(run), "--format", "onnx"]) == 0
    onnx_file = run / "export" / "model.onnx"
    onnx.checker.check_model(onnx.load(str(onnx_file)))


def test_export_failure_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    run = train_tiny(tmp_path, capsys)

    def refuse(*a, **k):
        raise RuntimeError("Unsupported operator 'aten::softmean'\nmore detail")

    monkeypatch.setattr(torch.onnx, "export", refuse)
    assert cli.main(["export", str(run), "--format", "onnx"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "onnx export" in err[0] and "Unsupported operator" in err[0]
    assert not (run / "export" / "model.onnx").exists()
    assert list((run / "export").iterdir()) == []              # no temp file left


def test_export_to_a_read_only_place_exits_2(tmp_path, capsys, monkeypatch):
    """A read-only file system refuses writing the model and removing the temp file alike (the
    tester's read-only tmpfs, which needs privileges to mount: its refusals are stood in for)."""
    import errno

    run = train_tiny(tmp_path, capsys)
    read_only = OSError(errno.EROFS, "Read-only file system")

    def refuse(*a, **k):
        raise read_only

    monkeypatch.setattr(torch.jit, "trace", refuse)
    monkeypatch.setattr(Path, "unlink", refuse)
    assert cli.main(["export", str(run), "--format", "torchscript", "--output", str(tmp_path / "ro" / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write") and "Read-only file system" in err and "Traceback" not in err
    monkeypatch.undo()
    (tmp_path / "dir.pt").mkdir()                                # an output that cannot be replaced
    assert cli.main(["export", str(run), "--format", "torchscript", "--output", str(tmp_path / "dir.pt")]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".dir.pt")] == []


# -------------------------------------------------------------------------------- bad input: exit 2
def _nothing_written(root: Path) -> bool:
    return not root.exists() or not any(root.iterdir())


def test_unknown_preset_exit_2(tmp_path, capsys):
    assert cli.main(["train", "no-such-preset", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "no-such-preset" in err and err.startswith("error: ")
    assert _nothing_written(tmp_path / "runs")


def test_invalid_preset_prints_every_problem_exit_2(tmp_path, capsys):
    doc = preset_to_dict(load_builtin("mlp-relu-digits"))
    doc["model"]["layers"][1]["params"]["out_features"] = -3
    doc["train"]["optimizer"] = "adamax"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    assert cli.main(["train", str(path), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "model.layers[1].params.out_features" in err and "train.optimizer" in err
    assert _nothing_written(tmp_path / "runs")


def test_missing_dataset_exit_2_names_folder_and_download(tmp_path, capsys):
    empty = tmp_path / "data"
    empty.mkdir()
    assert cli.main(["train", "z-mnist", "--data-root", str(empty), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "--download" in err
    assert _nothing_written(tmp_path / "runs")


def test_unwritable_run_folder_exit_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert cli.main(["train", str(tiny_preset_file(tmp_path)), "--out", str(blocker / "runs")]) == 2
    assert "cannot write a run folder" in capsys.readouterr().err


def test_checkpoint_from_other_architecture_exit_2(tmp_path, capsys):
    run = train_tiny(tmp_path, capsys)
    other = load_builtin("mlp-relu-digits")
    other.model.layers[3].params["out_features"] = 32
    path = tmp_path / "other.json"
    save_preset(other, path)
    before = (run / "metrics.jsonl").read_text()
    assert cli.main(["train", str(path), "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "different architecture" in err and "3_Linear" in err
    assert (run / "metrics.jsonl").read_text() == before


def test_failed_run_exit_1(tmp_path, capsys):
    path = tiny_preset_file(tmp_path, optimizer="sgd", lr=1e6, epochs=5)
    assert cli.main(["train", str(path), "--out", str(tmp_path / "runs"), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "non-finite" in captured.err and "hint:" in captured.err
    assert captured.out.splitlines()[-1].startswith("failed")


def test_eval_of_missing_run_exit_2(tmp_path, capsys):
    assert cli.main(["eval", str(tmp_path / "nope")]) == 2
    assert "run folder not found" in capsys.readouterr().err


# -------------------------------------------------------------------------------- a killed run
def test_sigkilled_run_leaves_readable_metrics_and_resumes(tmp_path, capsys):
    preset = tiny_preset_file(tmp_path, epochs=400)
    root = tmp_path / "runs"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, str(REPO / "main.py"), "train", str(preset), "--out", str(root),
                             "--quiet"], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("run folder: "), line
        run = Path(line.split("run folder: ", 1)[1].strip())
        deadline = time.time() + 120
        while time.time() < deadline:
            ckpt = checkpoint_path(run, "last")
            if ckpt.exists() and len(read_metrics(run)) > 12:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the subprocess wrote no checkpoint in time")
        assert list_runs(root)[0].status == "running"         # its process holds the run
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert json.loads((run / "summary.json").read_text())["status"] == "running"
    assert list_runs(root)[0].status == "interrupted"         # no live process owns it any more
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"kind": "metrics", "step": 99999, "lo')  # a torn last line, as a kill mid-write leaves
    records = read_metrics(run)
    assert records and all(isinstance(r, dict) and "step" in r for r in records)
    done = torch.load(checkpoint_path(run, "last"), weights_only=True)["epoch"]
    assert done >= 1
    assert cli.main(["train", "--resume", str(run), "--epochs", str(done + 1), "--quiet"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["epochs_completed"] == done + 1
    epochs = [r["epoch"] for r in read_metrics(run) if r["kind"] == "epoch"]
    assert epochs == list(range(done + 1))  # no duplicates from the killed tail, nothing torn
    steps = [r["step"] for r in read_metrics(run) if r["kind"] == "metrics"]
    assert steps == sorted(steps) and 99999 not in steps


# -------------------------------------------------------------------------------- concurrent runs
# Runs `main.py train` with every process wanting the same folder name (the clock is frozen) and
# all of them past new_run_dir before any trains: the race of D1 made certain, not left to chance.
_SYNCED_TRAIN = r'''
import os, sys, time
from pathlib import Path
import workbench.runs as runs
barrier, n = Path(sys.argv[1]), int(sys.argv[2])
time.strftime = lambda fmt, *a: "20990101-000000"
real = runs.new_run_dir
def synced(*args, **kwargs):
    path = real(*args, **kwargs)
    (barrier / str(os.getpid())).touch()
    deadline = time.monotonic() + 120
    while len(os.listdir(barrier)) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return path
runs.new_run_dir = synced
from workbench.cli import main
sys.exit(main(sys.argv[3:]))
'''


def test_concurrent_trainings_of_one_preset_get_their_own_folders(tmp_path):
    n, epochs = 3, 3
    root, barrier = tmp_path / "runs", tmp_path / "barrier"
    barrier.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    procs = [subprocess.Popen([sys.executable, "-c", _SYNCED_TRAIN, str(barrier), str(n), "train", "z-digits",
                               "--epochs", str(epochs), "--device", "cpu", "--quiet", "--out", str(root)],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(n)]
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            outputs.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert [code for code, _, _ in outputs] == [0] * n, [err[-2000:] for _, _, err in outputs]
    folders = [Path(out.splitlines()[0].split("run folder: ", 1)[1]) for _, out, _ in outputs]
    assert len(set(folders)) == n and sorted(folders) == sorted(p for p in root.iterdir())
    for run in folders:
        lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines]             # no torn or interleaved line
        assert [r["epoch"] for r in records if r["kind"] == "epoch"] == list(range(epochs))
        steps = [r["step"] for r in records if r["kind"] == "metrics"]
        assert steps == sorted(set(steps))
        summary = json.loads((run / "summary.json").read_text())
        assert summary["status"] == "finished" and summary["epochs_completed"] == epochs
        assert summary["run_dir"] == str(run)
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.pt", "last.pt"]


# -------------------------------------------------------------------------------- hostile input
_HUGE = "1" + "0" * 309   # an integer beyond float's range (> 1.8e308)
HOSTILE_PRESETS = {
    "deep-json": "[" * 1000 + "]" * 1000,
    "deep-body": '{"model": {"layers": [%s{"type": "Identity"}%s]}}' % ('{"type": "Residual", "body": [' * 600,
                                                                       "]}" * 600),
    "huge-lr": '{"train": {"lr": %s}}' % _HUGE,
    "huge-layer-param": '{"model": {"layers": [{"type": "Dropout", "params": {"p": %s}}]}}' % _HUGE,
    "huge-option": '{"task": {"dataset": "spirals", "options": {"noise": %s}}}' % _HUGE,
    "huge-int-digits": '{"train": {"seed": %s}}' % ("1" * 5000),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_PRESETS))
def test_hostile_preset_files_exit_2_without_a_traceback(tmp_path, capsys, name):
    path = tmp_path / f"{name}.json"
    path.write_text(HOSTILE_PRESETS[name])
    assert cli.main(["train", str(path), "--out", str(tmp_path / "runs"), "--quiet", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and len(err) < 2000
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("name", ["deep-json", "huge-lr", "huge-layer-param"])
def test_eval_and_export_of_a_run_with_a_hostile_preset_exit_2(tmp_path, capsys, name):
    run = train_tiny(tmp_path, capsys)
    (run / "preset.json").write_text(HOSTILE_PRESETS[name])
    for argv in (["eval", str(run)], ["export", str(run), "--format", "torchscript"]):
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "Traceback" not in err


def test_eval_on_a_truncated_gz_exits_2_with_the_file_named(tmp_path, capsys, fake_mnist):
    data = tmp_path / "data"
    fake_mnist(data, compress=True)
    p = load_builtin("mlp-relu-digits")
    p.task.dataset, p.task.batch_size, p.train.epochs, p.train.device = "mnist", 10, 1, "cpu"
    preset = tmp_path / "mnist-mlp.json"
    save_preset(p, preset)
    assert cli.main(["train", str(preset), "--data-root", str(data), "--out", str(tmp_path / "runs"),
                     "--quiet"]) == 0
    run = Path(capsys.readouterr().out.splitlines()[0].split("run folder: ", 1)[1])
    images = data / "t10k-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:-40])
    assert cli.main(["eval", str(run), "--data-root", str(data)]) == 2
    err = capsys.readouterr().err
    assert str(images) in err and "truncated or corrupt" in err and "Traceback" not in err


# -------------------------------------------------------------------------------- small things
def test_limit_train_1_is_bad_input_with_the_reason(tmp_path, capsys):
    code = cli.main(["train", "z-digits", "--limit-train", "1", "--device", "cpu", "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and "task.limit_train" in err and "between 2 and" in err
    assert _nothing_written(tmp_path / "runs")


def test_a_numbered_gpu_is_a_valid_device():
    from workbench.spec import validate

    p = load_builtin("z-digits")
    for device in ("cuda:0", "cuda:3"):
        p.train.device = device
        assert not [q for q in validate(p) if q.path == "train.device"], device
    for device in ("cuda:", "cuda:x", "cuda0", "CUDA:0 ", "tpu"):
        p.train.device = device
        assert [q for q in validate(p) if q.path == "train.device"], device


def test_the_printed_run_folder_exists_even_when_the_run_fails_at_once(tmp_path, capsys):
    p = load_builtin("mlp-relu-digits")
    p.train.device = "cpu"
    for layer in p.model.layers:
        layer.trainable = False                      # valid, but the optimiser has nothing to train
    path = tmp_path / "frozen.json"
    save_preset(p, path)
    assert cli.main(["train", str(path), "--out", str(tmp_path / "runs"), "--quiet"]) == 1
    captured = capsys.readouterr()
    run = Path(captured.out.splitlines()[0].split("run folder: ", 1)[1])
    assert run.is_dir() and "no trainable parameters" in captured.err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and "no trainable parameters" in summary["message"]


def test_main_py_hands_every_command_to_the_command_line():
    """``python main.py COMMAND`` opens the app unless COMMAND is in main.py's list: every
    sub-command of the parser must be there (``download`` was missing: it opened the app)."""
    import argparse
    import importlib.util

    spec = importlib.util.spec_from_file_location("afwb_main", REPO / "main.py")
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) <= entry.CLI_COMMANDS, set(sub.choices) - entry.CLI_COMMANDS
