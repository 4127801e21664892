"""The reproduce runner and command: runs per grid point, results kept on stop, resume, exit codes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import main as entry
from workbench import cli
from workbench.presets import load_builtin
from workbench.protocol import BudgetPlan, GridAxis, PublishedFigure, Reproduction
from workbench.reproduce import RESULTS_FILE, Reproducer, load_results, plan_experiment
from workbench.spec import save_preset

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_protocol_preset(lrs=(0.003, 0.01), epochs=1, limit=128, **budget):
    p = load_builtin("mlp-relu-digits")
    p.train.device = "cpu"
    p.reproduction = Reproduction(
        published=[PublishedFigure("accuracy", 97.0, tolerance=1.0)],
        grid=[GridAxis("train.lr", list(lrs))],
        budgets={"smoke": BudgetPlan(overrides={"train.epochs": epochs, "task.limit_train": limit, **budget}),
                 "cpu": BudgetPlan(skip="needs a GPU", estimate="1 h")})
    return p


def save(p, tmp_path, name="tiny.json"):
    path = tmp_path / name
    save_preset(p, path)
    return path


def test_one_run_per_lr_each_in_its_own_folder(tmp_path):
    exp = plan_experiment("tiny", tiny_protocol_preset(), "smoke")
    events = []
    results = Reproducer([exp], tmp_path / "out", on_event=events.append).run()
    rows = results["rows"]
    assert [r["point"] for r in rows] == [{"train.lr": 0.003}, {"train.lr": 0.01}]
    assert all(r["status"] == "finished" and r["epochs"] == 1 and r["steps"] > 0 for r in rows)
    assert all(0.0 <= r["best_accuracy"] <= 100.0 and r["final_accuracy"] is not None for r in rows)
    assert all(r["wall_s"] >= r["train_s"] > 0 for r in rows) and rows[0]["device"] == "cpu"
    folders = {Path(r["run_dir"]) for r in rows}
    assert len(folders) == 2 and all((f / "summary.json").exists() for f in folders)
    assert {json.loads((f / "preset.json").read_text())["train"]["lr"] for f in folders} == {0.003, 0.01}
    assert "reproduction" not in json.loads((rows[0] and Path(rows[0]["run_dir"]) / "preset.json").read_text())
    on_disk = load_results(tmp_path / "out")
    assert on_disk["rows"] == rows and on_disk["experiments"][0]["key"] == "tiny"
    assert on_disk["machine"]["cores"] == os.cpu_count() and "commit" in on_disk
    kinds = [type(e).__name__ for e in events]
    assert kinds.count("RunBegins") == 2 and kinds.count("RunEnds") == 2
    inner = [(e.index, type(e.event).__name__) for e in events if type(e).__name__ == "RunProgress"]
    assert (0, "EpochEnd") in inner and (1, "Finished") in inner


def test_stop_keeps_finished_rows_and_a_rerun_resumes(tmp_path):
    exp = plan_experiment("tiny", tiny_protocol_preset(lrs=(0.001, 0.003, 0.01), epochs=3), "smoke")
    out = tmp_path / "out"
    holder = {}

    def stop_in_second_run(event):
        if type(event).__name__ == "RunBegins" and event.index == 1:
            holder["second"] = True
        if holder.get("second") and type(event).__name__ == "RunProgress" and type(event.event).__name__ == "Metrics":
            holder["r"].stop()

    holder["r"] = Reproducer([exp], out, on_event=stop_in_second_run)
    results = holder["r"].run()
    assert holder["r"].interrupted
    assert [r["status"] for r in results["rows"]] == ["finished", "stopped"]
    assert [r["status"] for r in load_results(out)["rows"]] == ["finished", "stopped"]

    begun = []
    again = Reproducer([exp], out, on_event=lambda e: begun.append(e) if type(e).__name__ == "RunBegins" else None)
    rows = again.run()["rows"]
    assert [b.run.point for b in begun] == [(("train.lr", 0.003),), (("train.lr", 0.01),)]
    assert [(r["point"]["train.lr"], r["status"]) for r in rows] == [(0.001, "finished"), (0.003, "finished"),
                                                                    (0.01, "finished")]
    assert len({r["run_dir"] for r in rows}) == 3  # the stopped run's folder is not reused
    assert not again.interrupted


def test_parallel_jobs_train_every_run_once_and_stop(tmp_path):
    exp = plan_experiment("tiny", tiny_protocol_preset(lrs=(0.001, 0.003, 0.01)), "smoke")
    events = []
    results = Reproducer([exp], tmp_path / "out", jobs=2, on_event=events.append).run()
    assert sorted((r["point"]["train.lr"], r["status"]) for r in results["rows"]) == [
        (0.001, "finished"), (0.003, "finished"), (0.01, "finished")]
    assert len({r["run_dir"] for r in results["rows"]}) == 3 and results["jobs"] == 2
    assert {e.slot for e in events if type(e).__name__ == "RunProgress"} == {0, 1}
    assert load_results(tmp_path / "out")["rows"] == results["rows"]

    slow = plan_experiment("slow", tiny_protocol_preset(lrs=(0.001, 0.003, 0.01), epochs=500), "smoke")
    holder = {}

    def stop_when_both_train(event):
        if type(event).__name__ == "RunProgress" and type(event.event).__name__ == "Metrics":
            holder.setdefault("seen", set()).add(event.slot)
            if holder["seen"] == {0, 1}:
                holder["r"].stop()

    holder["r"] = Reproducer([slow], tmp_path / "slow", jobs=2, on_event=stop_when_both_train)
    rows = holder["r"].run()["rows"]
    assert holder["r"].interrupted
    assert sorted(r["status"] for r in rows) == ["stopped", "stopped"]  # the third run never started
    assert all(r["epochs"] < 500 for r in rows)


def test_missing_data_is_a_row_not_a_failure(tmp_path, capsys):
    p = load_builtin("pinet-cifar10")
    p.reproduction = Reproduction(published=[PublishedFigure("accuracy", 70.0)],
                                  budgets={"smoke": BudgetPlan(overrides={"train.epochs": 1, "task.limit_train": 64})})
    empty = tmp_path / "no-data"
    empty.mkdir()
    code = cli.main(["reproduce", str(save(p, tmp_path, "cifar.json")), "--budget", "smoke", "--out",
                     str(tmp_path / "out"), "--data-root", str(empty), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0
    [row] = load_results(tmp_path / "out")["rows"]
    assert row["status"] == "data missing" and "cifar10" in row["message"] and "run_dir" not in row
    assert "data set is missing" in captured.err
    assert not (tmp_path / "out" / "cifar").exists()
    assert "not measured: data missing" in (tmp_path / "out" / "reproduction.md").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------- the command
def test_command_writes_results_report_and_figures(tmp_path, capsys):
    path = save(tiny_protocol_preset(), tmp_path)
    out = tmp_path / "out"
    report = tmp_path / "docs" / "reproduction.md"
    code = cli.main(["reproduce", str(path), "--budget", "smoke", "--out", str(out), "--report", str(report)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"output folder: {out}" in captured.out and f"report: {report}" in captured.out
    assert "tiny: 2 runs, shortened: 1 of 15 epochs, 128 training samples" in captured.out
    assert "[2/2] tiny lr=0.01, seed 0: finished, best" in captured.err
    assert (out / RESULTS_FILE).exists()
    text = report.read_text(encoding="utf-8")
    assert "`python main.py reproduce " in text and "--budget smoke`" in text and "| tiny |" in text
    pytest.importorskip("matplotlib")
    assert (report.parent / "reproduction" / "tiny-accuracy.png").exists()


def test_command_list_and_skip(tmp_path, capsys):
    path = save(tiny_protocol_preset(), tmp_path)
    assert entry.main(["reproduce", str(path), "--budget", "cpu", "--list"]) == 0
    assert capsys.readouterr().out.strip() == "tiny: not run under 'cpu': needs a GPU (estimate: 1 h)"
    assert cli.main(["reproduce", str(path), "--budget", "cpu", "--out", str(tmp_path / "o"), "--quiet"]) == 0
    text = (tmp_path / "o" / "reproduction.md").read_text(encoding="utf-8")
    assert "| tiny | needs a GPU | 1 h | `python main.py reproduce tiny --budget full` |" in text


@pytest.mark.parametrize("args, message", [
    (["no-such-preset"], "neither a built-in preset nor an existing file"),
    (["z-digits"], "preset 'z-digits' has no reproduction protocol"),
    (["{tiny}", "--device", "tpu"], "device must be one of"),
    (["{tiny}", "--threads", "0"], "--threads must be at least 1"),
    (["{tiny}", "--budget", "gpu"], None),
])
def test_command_bad_input_exits_2(tmp_path, capsys, args, message):
    path = save(tiny_protocol_preset(), tmp_path)
    args = [str(path) if a == "{tiny}" else a for a in args]
    assert cli.main(["reproduce", *args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    if message:
        assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_command_refuses_an_out_folder_of_another_budget(tmp_path, capsys):
    path = save(tiny_protocol_preset(), tmp_path)
    out = tmp_path / "out"
    assert cli.main(["reproduce", str(path), "--budget", "cpu", "--out", str(out), "--quiet"]) == 0
    assert cli.main(["reproduce", str(path), "--budget", "smoke", "--out", str(out), "--quiet"]) == 2
    assert "holds a 'cpu' reproduction, not 'smoke'" in capsys.readouterr().err


def test_invalid_protocol_is_bad_input(tmp_path, capsys):
    p = tiny_protocol_preset()
    p.reproduction.budgets["smoke"].overrides["train.epohcs"] = 1
    assert cli.main(["reproduce", str(save(p, tmp_path)), "--budget", "smoke"]) == 2
    err = capsys.readouterr().err
    assert "invalid preset" in err or "train.epohcs" in err
    assert "did you mean 'epochs'" in err


@pytest.mark.slow
def test_ctrl_c_keeps_finished_rows(tmp_path):
    """SIGINT during the second run: exit 130, the first row finished on disk, the report written."""
    p = tiny_protocol_preset(lrs=(0.003, 0.01, 0.03), limit=None)
    p.reproduction.budgets["smoke"].overrides = {"train.epochs": 1}
    p.reproduction.budgets["smoke"].grid = {}
    p.reproduction.grid[0].values = [0.003, 0.01]
    first = p
    path = save(first, tmp_path)
    # the second run is long: 400 epochs of 8×8 digits
    slow = tiny_protocol_preset(lrs=(0.003,))
    slow.reproduction.budgets["smoke"].overrides = {"train.epochs": 400}
    slow_path = save(slow, tmp_path, "slow.json")
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "main.py", "reproduce", str(path), str(slow_path), "--budget", "smoke",
                             "--out", str(out), "--quiet"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            rows = (load_results(out) or {}).get("rows", []) if (out / RESULTS_FILE).exists() else []
            slow_dir = out / "slow"
            if len(rows) >= 2 and slow_dir.exists() and any(slow_dir.rglob("metrics.jsonl")):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the runs did not start in time")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    rows = load_results(out)["rows"]
    assert [r["status"] for r in rows] == ["finished", "finished", "stopped"]
    assert rows[2]["epochs"] < 400
    assert "| slow | lr=0.003, seed 0 | stopped" in (out / "reproduction.md").read_text(encoding="utf-8")


def test_a_diverging_grid_point_is_recorded_and_not_a_failure(tmp_path, capsys):
    p = tiny_protocol_preset(lrs=(0.003, 1e5), epochs=2)
    p.train.optimizer = "sgd"
    p.reproduction.grid[0].values = [0.05, 1e5]
    code = cli.main(["reproduce", str(save(p, tmp_path)), "--budget", "smoke", "--out", str(tmp_path / "out"),
                     "--quiet"])
    assert code == 0, capsys.readouterr().err
    ok, blown = load_results(tmp_path / "out")["rows"]
    assert ok["status"] == "finished"
    assert blown["status"] == "diverged" and "lower train.lr" in blown["message"] and blown["final_accuracy"] is None
    from workbench.reproduce_report import compare

    [row] = compare(load_results(tmp_path / "out"))
    assert row.measured.point == {"train.lr": 0.05}
