"""ui.runs_panel: runs found on disk (with summary columns), rename, delete after confirmation,
open the preset, reveal the folder (injectable), check to overlay."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QUrl

from ui.runs_panel import RunsPanel, summary_columns
from workbench.events import RunSummary
from workbench.presets import load_builtin
from workbench.runs import new_run_dir, rename_run, write_json_atomic
from workbench.spec import save_preset


def make_run(root: Path, name: str, acc: float | None = 0.9, status: str = "finished", depth=None) -> Path:
    preset = load_builtin("z-digits")
    preset.name = name
    path = new_run_dir(root, name)
    save_preset(preset, path / "preset.json")
    summary = RunSummary(status=status, preset_name=name, task="classification", device="cpu", run_dir=str(path),
                         epochs_completed=3, steps=60, seconds=75.0, best_val_accuracy=acc, best_epoch=2,
                         learned_depth=depth or {})
    write_json_atomic(path / "summary.json", summary.to_dict())
    (path / "metrics.jsonl").write_text(json.dumps({"kind": "metrics", "step": 10, "loss": 1.0}) + "\n")
    return path


@pytest.fixture
def panel(qtbot):
    asked = []

    def ask(title, text, buttons):
        asked.append((title, text, buttons))
        return panel_answers.pop(0) if panel_answers else buttons[-1]

    panel_answers: list[str] = []
    opened: list[QUrl] = []
    p = RunsPanel(ask=ask, ask_text=lambda title, label, default: "renamed run", open_url=opened.append)
    p.asked, p.answers, p.opened = asked, panel_answers, opened
    qtbot.addWidget(p)
    return p


def test_lists_runs_on_disk_with_their_summary(panel, tmp_path) -> None:
    make_run(tmp_path, "alpha", acc=0.9512, depth={"2_InfiniteDepth": 2.13})
    make_run(tmp_path, "beta", acc=None, status="failed")
    (tmp_path / "not-a-run").mkdir()
    assert panel.refresh_from_disk(tmp_path) == 2
    assert panel.refresh_from_disk(tmp_path) == 0          # already listed
    tree = panel.tree
    assert tree.objectName() == "runsList" and tree.topLevelItemCount() == 2
    rows = {tree.topLevelItem(i).text(0): [tree.topLevelItem(i).text(c) for c in range(5)]
            for i in range(2)}
    assert rows["alpha"][1:] == ["finished", "95.12%", "1m 15s", "2.13"]
    assert rows["beta"][1] == "failed"
    assert "learned depth 2_InfiniteDepth: w = 2.130" in tree.topLevelItem(0).toolTip(0) + tree.topLevelItem(1).toolTip(0)
    assert panel.checked_ids() == []


def test_check_to_overlay_emits_the_checked_runs(panel, tmp_path, qtbot) -> None:
    a = make_run(tmp_path, "alpha")
    panel.refresh_from_disk(tmp_path)
    with qtbot.waitSignal(panel.visibility_changed, timeout=1000) as blocker:
        panel.set_checked(str(a), True)
    assert blocker.args[0] == [str(a)]
    live = panel.add_live_run("live", tmp_path / "live", load_builtin("z-digits"))
    assert panel.checked_ids() == [live.run_id, str(a)]          # the live run on top, checked
    assert panel.tree.topLevelItem(0).text(1) == "training"


def test_rename_writes_the_label(panel, tmp_path, qtbot) -> None:
    a = make_run(tmp_path, "alpha")
    panel.refresh_from_disk(tmp_path)
    panel.select(str(a))
    with qtbot.waitSignal(panel.run_renamed, timeout=1000) as blocker:
        assert panel.rename_selected()
    assert blocker.args == [str(a), "renamed run"]
    assert json.loads((a / "run.json").read_text())["label"] == "renamed run"
    assert panel.tree.topLevelItem(0).text(0) == "renamed run"


def test_delete_asks_first(panel, tmp_path) -> None:
    a = make_run(tmp_path, "alpha")
    panel.refresh_from_disk(tmp_path)
    panel.select(str(a))
    panel.answers.append("Cancel")
    assert not panel.delete_selected()
    assert a.exists() and panel.asked[-1][2] == ("Delete", "Cancel")
    panel.answers.append("Delete")
    assert panel.delete_selected()
    assert not a.exists() and panel.tree.topLevelItemCount() == 0


def test_a_live_run_cannot_be_deleted(panel, tmp_path) -> None:
    path = tmp_path / "live"
    path.mkdir()
    entry = panel.add_live_run("live", path, load_builtin("z-digits"))
    panel.select(entry.run_id)
    assert not panel.delete_button.isEnabled()
    assert not panel.delete_selected() and path.exists()
    panel.update_run(entry.run_id, RunSummary("finished", "p", "classification", "cpu"), live=False)
    assert panel.delete_button.isEnabled()


def test_open_preset_and_reveal_folder(panel, tmp_path, qtbot) -> None:
    a = make_run(tmp_path, "alpha")
    panel.refresh_from_disk(tmp_path)
    panel.select(str(a))
    with qtbot.waitSignal(panel.open_preset_requested, timeout=1000) as blocker:
        assert panel.open_selected()
    assert blocker.args[0].name == "alpha"
    assert panel.reveal_selected()
    assert panel.opened == [QUrl.fromLocalFile(str(a))]


def test_labels_from_run_json_and_summary_columns(panel, tmp_path) -> None:
    a = make_run(tmp_path, "alpha")
    rename_run(a, "my label")
    panel.refresh_from_disk(tmp_path)
    assert panel.tree.topLevelItem(0).text(0) == "my label"
    assert summary_columns(None, live=True)[0] == "training"
    s = RunSummary("finished", "p", "regression", "cpu", best_val_rmse=0.1234, seconds=3.0)
    assert summary_columns(s)[1:3] == ("RMSE 0.1234", "3s")


# -------------------------------------------------------------------------------- damaged runs
def test_app_starts_and_lists_damaged_runs_with_the_reason(make_window, make_damaged_runs, qtbot) -> None:
    from workbench.runs import default_runs_root
    from ui.training_controller import install_training

    made = make_damaged_runs(default_runs_root())
    window = make_window()
    controller = install_training(window)           # what the app does at start (refresh_runs)
    panel = controller.runs_panel
    assert set(panel.entries) == {str(p) for p in made}
    for path, reason in made.items():
        item = panel._item(str(path))
        if "run-json" in path.name or not reason:
            assert item.text(1) == "finished"
        else:
            assert item.text(1) == "damaged"
        assert reason in item.toolTip(1)
    for path in made:                               # checking each loads its curves (none for most)
        panel.set_checked(str(path), True)
    assert controller.dashboard.has_run(str(next(iter(made))))
    assert "damaged" in window.statusBar().currentMessage()


def test_failed_delete_or_rename_says_why_and_changes_nothing(panel, tmp_path) -> None:
    root, elsewhere = tmp_path / "runs", tmp_path / "elsewhere"
    target = make_run(elsewhere, "alpha")
    link = root / "linked-run"
    root.mkdir()
    link.symlink_to(target, target_is_directory=True)
    panel.refresh_from_disk(root)
    panel.select(str(link))
    panel.answers.append("Delete")
    assert not panel.delete_selected()
    title, text, buttons = panel.asked[-1]
    assert title == "Cannot delete run" and "symbolic link" in text and buttons == ("OK",)
    assert link.is_symlink() and (target / "preset.json").exists() and panel.tree.topLevelItemCount() == 1
    (target / "run.json").mkdir()                    # run.json cannot be replaced: the rename fails
    assert not panel.rename_selected()
    title, text, _ = panel.asked[-1]
    assert title == "Cannot rename run" and "run.json" in text
    assert panel.tree.topLevelItem(0).text(0) == "alpha"


def test_rename_dialog_shows_its_text_whole(panel, tmp_path, qtbot) -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QInputDialog, QLineEdit

    make_run(tmp_path, "a run with a fairly long name to rename")
    panel.refresh_from_disk(tmp_path)
    panel.ask_text = None                        # the real dialog
    panel.select(next(iter(panel.entries)))
    seen = {}

    def answer() -> None:
        dialog = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QInputDialog) and w.isVisible())
        edit = dialog.findChild(QLineEdit)
        seen["fits"] = edit.width() >= edit.fontMetrics().horizontalAdvance(edit.text())
        seen["parent"] = dialog.parent() is panel
        edit.setText("renamed")
        dialog.accept()

    QTimer.singleShot(0, answer)
    assert panel.rename_selected()
    assert seen == {"fits": True, "parent": True}
    assert panel.selected().label == "renamed"
