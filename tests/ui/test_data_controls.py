"""The inspector's data rows: Import…, the data folder and Download (progress, Cancel), off the GUI thread.

Downloads use the real code path; only the network fetch (``urllib.request.urlopen``) is replaced
by a fake server, and torchvision's table of MNIST's files is set to describe the files it serves."""
from __future__ import annotations

import hashlib
import io
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torchvision
from PySide6.QtCore import QSettings

import ui.data_controls as data_controls
from tests.conftest import mnist_gz_files
from ui.data_controls import DataControls
from ui.downloader import DatasetDownload
from workbench.spec import Preset, TaskSpec




class _Slow(io.BytesIO):
    """A response that hands out 1 KiB per read and waits for ``gate`` before the second read."""

    def __init__(self, data: bytes, gate: threading.Event) -> None:
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}
        self.gate = gate
        self.reads = 0

    def read(self, n: int = -1) -> bytes:  # noqa: A003 - the file API
        self.reads += 1
        if self.reads == 2:
            self.gate.wait(10)
        return super().read(1024)


@pytest.fixture
def fake_mnist_server(monkeypatch):
    files = mnist_gz_files()
    gate = threading.Event()
    gate.set()
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["https://mirror.example/"])
    monkeypatch.setattr(torchvision.datasets.MNIST, "resources",
                        [(n, hashlib.md5(b).hexdigest()) for n, b in files.items()])

    def urlopen(request, timeout=None):
        return _Slow(files[request.full_url.rsplit("/", 1)[-1]], gate)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return gate


@pytest.fixture
def controls(qtbot, tmp_path, monkeypatch):
    monkeypatch.delenv("AFWB_DATA", raising=False)
    widget = DataControls()
    qtbot.addWidget(widget)
    widget.set_settings(QSettings(str(tmp_path / "afwb.ini"), QSettings.Format.IniFormat))
    widget.settings.setValue("training/data_root", str(tmp_path / "data"))
    yield widget
    assert widget.shutdown(10)


def _mnist_preset() -> Preset:
    return Preset(task=TaskSpec(dataset="mnist"))


def test_rows_follow_the_dataset(controls, tmp_path):
    controls.show_for(Preset(task=TaskSpec(dataset="digits")))
    assert controls.download_row.isHidden() and controls.folder_row.isHidden()
    controls.show_for(_mnist_preset())
    assert not controls.download_row.isHidden()
    assert str(tmp_path / "data") in controls.folder_label.text()
    assert "not in the data folder" in controls.status_label.text() and controls.download_button.isEnabled()


def test_download_with_progress_then_the_files_are_found(controls, qtbot, tmp_path, fake_mnist_server):
    controls.show_for(_mnist_preset())
    seen: list[tuple[str, int, int]] = []
    with qtbot.waitSignal(controls.download_ended, timeout=20_000) as ended:
        assert controls.start_download()
        controls.download.progress.connect(lambda *a: seen.append(a))
        assert not controls.progress_bar.isHidden() and not controls.cancel_button.isHidden()
    assert ended.args == ["mnist", "finished"]
    raw = tmp_path / "data" / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(mnist_gz_files())
    assert "found in" in controls.status_label.text() and not controls.download_button.isEnabled()
    assert controls.progress_bar.isHidden()
    assert seen and seen[-1][1] == seen[-1][2] > 0  # the last report of a file: all its bytes


def test_cancel_keeps_nothing_and_download_is_offered_again(controls, qtbot, tmp_path, fake_mnist_server):
    fake_mnist_server.clear()  # the server stalls after the first KiB until the gate opens
    controls.show_for(_mnist_preset())
    with qtbot.waitSignal(controls.download_ended, timeout=20_000) as ended:
        controls.start_download()
        controls.cancel_download()
        fake_mnist_server.set()
    assert ended.args == ["mnist", "cancelled"]
    raw = tmp_path / "data" / "MNIST" / "raw"
    assert not raw.exists() or list(raw.iterdir()) == []
    assert "cancelled" in controls.status_label.text() and controls.download_button.isEnabled()


def test_a_failed_download_says_why(controls, qtbot, monkeypatch):
    import urllib.error

    def refuse(request, timeout=None):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    controls.show_for(_mnist_preset())
    with qtbot.waitSignal(controls.download_ended, timeout=20_000) as ended:
        controls.start_download()
    assert ended.args == ["mnist", "failed"]
    assert "no route to host" in controls.status_label.text() and "network" in controls.status_label.text()
    assert controls.download_button.isEnabled()


def test_the_download_job_on_its_own(qtbot, tmp_path):
    calls: list[str] = []

    def fetch(name, root, progress):
        for i in range(5):
            progress("downloading x.gz", i * 10, 40)
        calls.append(name)
        return Path(root) / "done"

    job = DatasetDownload("mnist", tmp_path, fetch=fetch)
    with qtbot.waitSignal(job.finished, timeout=10_000) as done:
        job.start()
    assert done.args == [str(tmp_path / "done")] and calls == ["mnist"] and job.wait(5)
    job.deleteLater()


def test_import_fills_dataset_and_options(controls, qtbot, tmp_path, monkeypatch):
    folder = tmp_path / "project"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "t.csv").write_text("a,b,label\n1,2,x\n3,4,y\n")
    outside = tmp_path / "elsewhere.npz"
    np.savez(outside, x=np.zeros((4, 2)), y=np.arange(4) % 2)
    controls.show_for(Preset(task=TaskSpec(dataset="digits", base_dir=folder)))
    monkeypatch.setattr(data_controls, "ask_open_file", lambda *a: str(folder / "data" / "t.csv"))
    with qtbot.waitSignal(controls.import_requested) as got:
        controls.import_actions["csv"].trigger()
    assert got.args == ["csv", {"path": "data/t.csv", "target": "label"}]
    monkeypatch.setattr(data_controls, "ask_open_file", lambda *a: str(outside))
    with qtbot.waitSignal(controls.import_requested) as got:
        controls.import_actions["npz"].trigger()
    assert got.args == ["npz", {"path": str(outside)}]
    monkeypatch.setattr(data_controls, "ask_folder", lambda *a: str(folder / "data"))
    with qtbot.waitSignal(controls.import_requested) as got:
        controls.import_actions["image-folder"].trigger()
    assert got.args == ["image-folder", {"path": "data"}]
    monkeypatch.setattr(data_controls, "ask_folder", lambda *a: None)  # the chooser was cancelled
    with qtbot.assertNotEmitted(controls.import_requested):
        assert controls.import_data("image-folder") is False


def test_the_data_folder_setting(controls, qtbot, tmp_path, monkeypatch):
    controls.show_for(_mnist_preset())
    monkeypatch.setattr(data_controls, "ask_folder", lambda *a: str(tmp_path / "elsewhere"))
    with qtbot.waitSignal(controls.data_root_changed):
        controls.folder_button.click()
    assert controls.settings.value("training/data_root") == str(tmp_path / "elsewhere")
    assert str(tmp_path / "elsewhere") in controls.folder_label.text()
    monkeypatch.setenv("AFWB_DATA", str(tmp_path / "env"))
    controls.show_for(_mnist_preset())
    assert "AFWB_DATA" in controls.folder_label.text() and not controls.folder_button.isEnabled()


def test_a_missing_data_set_run_points_to_download_and_then_trains(make_window, qtbot, tmp_path, monkeypatch,
                                                                     fake_mnist_server):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication

    from ui.training_controller import install_training
    from workbench.events import Failed, Finished
    from workbench.presets import load_builtin

    monkeypatch.setenv("AFWB_DATA", str(tmp_path / "data"))
    preset = load_builtin("z-mnist")
    preset.train.device = "cpu"
    preset.train.epochs = 1
    window = make_window(preset)
    c = install_training(window)
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    with qtbot.waitSignal(c.run_finished, timeout=60_000) as run:
        assert c.start_run()
    final = run.args[0]
    assert isinstance(final, Failed) and "Task → Download" in final.hint
    banner = c.dashboard.failure_banner
    qtbot.waitUntil(banner.isVisible)
    assert banner.fix_button.text() == "Download the data set"
    qtbot.mouseClick(banner.fix_button, Qt.MouseButton.LeftButton)
    controls = window.inspector.data_controls
    assert QApplication.focusWidget() is controls.download_button
    with qtbot.waitSignal(controls.download_ended, timeout=20_000) as ended:
        qtbot.mouseClick(controls.download_button, Qt.MouseButton.LeftButton)
    assert ended.args == ["mnist", "finished"]
    with qtbot.waitSignal(c.run_finished, timeout=60_000) as run:
        assert c.start_run()
    assert isinstance(run.args[0], Finished), getattr(run.args[0], "message", "")
    qtbot.waitUntil(c.dashboard.is_idle, timeout=5000)


def test_the_status_bar_shows_the_data_load(qtbot):
    from ui.status_widgets import TrainingStatus
    from workbench.events import DataProgress

    status = TrainingStatus()
    qtbot.addWidget(status)
    status.run_starting("pets")
    status.add_events([DataProgress("decoding images", 120, 500)])
    assert status.message.text() == "Decoding images: 120 of 500"
    assert (status.progress.value(), status.progress.maximum()) == (240, 1000)
    status.add_events([DataProgress("downloading t10k-images-idx3-ubyte.gz", 2_000_000, 0)])
    assert status.message.text() == "Downloading t10k-images-idx3-ubyte.gz: 2.0 MB"
