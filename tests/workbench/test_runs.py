"""workbench.runs: run folders, listing, labels, torn metrics files, checkpoints."""
from __future__ import annotations

import json
import re

import pytest
import torch

from workbench.events import RunSummary
from workbench.runs import (
    NotARunDir,
    RunWriter,
    default_runs_root,
    delete_run,
    list_runs,
    load_checkpoint,
    new_run_dir,
    read_metrics,
    rename_run,
    save_checkpoint,
    write_json_atomic,
)
from workbench.spec import Preset


def _summary(status="finished", **kw):
    return RunSummary(status=status, preset_name="P", task="classification", device="cpu", **kw)


def test_default_root_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("AFWB_RUNS", str(tmp_path / "r"))
    assert default_runs_root() == tmp_path / "r"


def test_new_run_dir_is_timestamped_slug_and_unique(tmp_path):
    a = new_run_dir(tmp_path, "Z-Net on MNIST!")
    b = new_run_dir(tmp_path, "Z-Net on MNIST!")
    assert a != b and a.is_dir() and b.is_dir()
    assert re.fullmatch(r"\d{8}-\d{6}-z-net-on-mnist", a.name)


def test_writer_list_rename_delete(tmp_path):
    run = new_run_dir(tmp_path, "demo")
    w = RunWriter(run)
    w.open(Preset(name="demo"), _summary("running"))
    w.append([{"kind": "metrics", "step": 1, "loss": 2.0}, {"kind": "metrics", "step": 2, "loss": 1.5}])
    w.write_summary(_summary("finished", best_val_accuracy=0.5))
    w.close()
    assert json.loads((run / "preset.json").read_text())["name"] == "demo"
    [rec] = list_runs(tmp_path)
    assert rec.path == run and rec.summary.status == "finished" and rec.preset.name == "demo"
    rename_run(run, "my label")
    assert list_runs(tmp_path)[0].name == "my label" and run.exists()
    (tmp_path / "not-a-run").mkdir()
    with pytest.raises(NotARunDir):
        delete_run(tmp_path / "not-a-run")
    delete_run(run)
    assert not run.exists() and list_runs(tmp_path) == []


def test_read_metrics_tolerates_a_torn_last_line(tmp_path):
    f = tmp_path / "metrics.jsonl"
    f.write_text('{"kind": "metrics", "step": 1}\n{"kind": "epoch", "step": 2}\n{"kind": "metr')
    assert [r["step"] for r in read_metrics(f)] == [1, 2]
    assert read_metrics(tmp_path / "absent") == []


def test_resume_drops_torn_tail_and_records_after_the_checkpoint(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 5}\n{"step": 10}\n{"step": 15}\n{"ste')
    w = RunWriter(run)
    w.open(Preset(name="p"), _summary("running"), resume=True, keep_until_step=10)
    w.append([{"step": 11}])
    w.close()
    assert [r["step"] for r in read_metrics(run)] == [5, 10, 11]
    assert (run / "metrics.jsonl").read_text().count("\n") == 3


def test_atomic_json_and_weights_only_checkpoint(tmp_path):
    write_json_atomic(tmp_path / "a.json", {"x": 1})
    write_json_atomic(tmp_path / "a.json", {"x": 2})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temp files left
    state = {"model": {"w": torch.ones(2)}, "epoch": 3, "rng": {"python": [1, 2], "gauss": None}}
    save_checkpoint(state, tmp_path / "c" / "last.pt")
    loaded = load_checkpoint(tmp_path / "c" / "last.pt")
    assert loaded["epoch"] == 3 and torch.equal(loaded["model"]["w"], torch.ones(2))


def test_disabled_writer_writes_nothing(tmp_path):
    w = RunWriter(None)
    w.open(Preset(name="p"), _summary("running"))
    w.append([{"step": 1}])
    w.save("last", {"x": 1})
    w.close()
    assert not w.enabled


# -------------------------------------------------------------------------------- damaged folders
def test_damaged_run_folders_are_listed_with_the_reason(tmp_path, make_damaged_runs, capsys):
    from workbench import cli

    made = make_damaged_runs(tmp_path)
    records = {rec.path: rec for rec in list_runs(tmp_path)}
    assert set(records) == set(made)
    for path, reason in made.items():
        rec = records[path]
        if not reason:
            assert rec.status == "finished" and rec.problems == () and rec.summary.best_val_accuracy == 0.9
            continue
        assert any(reason in p for p in rec.problems), (path.name, rec.problems)
        if "run-json" in path.name:       # only the label is lost
            assert rec.status == "finished" and rec.label == "" and rec.preset is not None
        else:
            assert rec.status == "damaged" and rec.summary is None and rec.preset is not None
    assert cli.main(["runs", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for path, reason in made.items():
        line = next(line for line in out.splitlines() if line.startswith(path.name))
        assert reason in line and (" damaged " in line) == (records[path].status == "damaged")


def test_run_summary_from_dict_checks_every_type():
    good = _summary(best_val_accuracy=0.5, best_epoch=1, learned_depth={"d": 2}, seconds=3)
    again = RunSummary.from_dict(good.to_dict())
    assert again == good and isinstance(again.seconds, float) and isinstance(again.learned_depth["d"], float)
    for bad in ([], "x", {**good.to_dict(), "steps": 1.5}, {**good.to_dict(), "best_epoch": True},
                {**good.to_dict(), "task": "poetry"}, {"status": "finished"}):
        with pytest.raises(ValueError):
            RunSummary.from_dict(bad)
    assert RunSummary.from_dict({**good.to_dict(), "unknown": 1}) == good


def test_read_metrics_never_raises_and_resume_skips_records_it_cannot_place(tmp_path):
    good = [{"kind": "metrics", "step": 5, "loss": 1.0}, {"kind": "epoch", "step": 10, "epoch": 0}]
    bad = ["[" * 100_000 + "]" * 100_000,                     # nested too deeply for json
           '{"kind": "metrics", "step": 7, "loss": ' + "9" * 5000 + "}",   # > 4,300 digits
           "[1, 2, 3]", '"text"', "\udcff garbage",
           '{"kind": "metrics", "step": "x", "loss": 1}']     # parses, but has no place on the step axis
    run = tmp_path / "run"
    run.mkdir()
    lines = [json.dumps(good[0]), *bad, json.dumps(good[1])]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n", errors="surrogateescape")
    assert [r["step"] for r in read_metrics(run)] == [5, "x", 10]
    assert read_metrics(tmp_path / "absent") == [] and read_metrics(run / "metrics.jsonl" / "x") == []
    w = RunWriter(run)
    w.open(Preset(name="p"), _summary("running"), resume=True, keep_until_step=10)
    w.close()
    assert read_metrics(run) == good


def test_listing_removes_what_killed_saves_left_in_run_folders(tmp_path):
    import os
    import time as _time

    from workbench.fileio import STALE_AFTER_S

    run = new_run_dir(tmp_path, "demo")
    write_json_atomic(run / "summary.json", _summary().to_dict())
    (run / "checkpoints").mkdir()
    (run / "evaluation").mkdir()
    old = _time.time() - 2 * STALE_AFTER_S
    orphans = [run / ".summary.json.0123456789abcdef.tmp", run / "checkpoints" / ".last.pt.fedcba9876543210.tmp",
               run / "evaluation" / ".best.npz.0123456789abcdef.tmp"]
    fresh = run / "checkpoints" / ".best.pt.00112233445566aa.tmp"
    for path in [*orphans, fresh]:
        path.write_bytes(b"half")
    for path in orphans:
        os.utime(path, (old, old))
    [rec] = list_runs(tmp_path)
    assert rec.status == "finished"
    assert not any(p.exists() for p in orphans) and fresh.exists()
