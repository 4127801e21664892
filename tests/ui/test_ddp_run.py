"""The app's "all N GPUs (DDP)" device choice (issue #15): the window starts torchrun processes,
shows the run live like a local one (events from rank 0) and Stop stops every process.

No GPU here: two visible GPUs are injected into the device choice and the processes train on the
CPU with gloo (``controller.ddp_device = "cpu"``). Waits are hang guards, never timing assertions.
"""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from ui.inspector import DDP_DEVICE
from ui.training_controller import install_training
from workbench.events import Metrics, RunStarted, Stopped
from workbench.presets import load_builtin
from workbench.runs import read_summary, run_is_live

HANG_MS = 240_000

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _marked_processes(mark: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if f"AFWB_TEST_MARK={mark}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_the_device_choice_offers_all_gpus_only_when_several_are_visible(make_window) -> None:
    window = make_window(load_builtin("z-digits"))
    inspector = window.inspector
    combo = inspector.field_editor("train", "device").combo
    inspector.set_available_devices(["cuda", "cpu"], gpu_count=1)
    assert not any("DDP" in combo.itemText(i) for i in range(combo.count()))
    inspector.set_available_devices(["cuda", "cpu"], gpu_count=4)
    labels = [combo.itemText(i) for i in range(combo.count())]
    assert labels[-1] == "all 4 GPUs (DDP)"
    combo.setCurrentIndex(labels.index("all 4 GPUs (DDP)"))
    assert inspector.ddp_processes == 4 and window.document.current.train.device == "cuda"
    assert combo.currentText() == "all 4 GPUs (DDP)"  # shown as chosen, though the preset says cuda
    combo.setCurrentIndex(labels.index("cpu"))
    assert inspector.ddp_processes == 0 and window.document.current.train.device == "cpu"


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="checks the processes through /proc")
def test_a_ddp_run_shows_live_like_a_local_one_and_stop_ends_every_process(make_window, qtbot, monkeypatch) -> None:
    mark = uuid.uuid4().hex
    monkeypatch.setenv("AFWB_TEST_MARK", mark)  # inherited by torchrun and its ranks
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    preset = load_builtin("z-digits")
    preset.train.epochs = 500
    preset.monitor.every_steps = 5
    window = make_window(preset)
    controller = install_training(window)
    window.show()
    qtbot.waitExposed(window)
    inspector = window.inspector
    inspector.set_available_devices(["cpu"], gpu_count=2)  # two GPUs "visible"
    combo = inspector.field_editor("train", "device").combo
    combo.setCurrentIndex(inspector.field_editor("train", "device")._values.index(DDP_DEVICE))
    assert inspector.ddp_processes == 2
    controller.ddp_device = "cpu"  # ... and the two processes train on the CPU (gloo)
    seen: list = []
    assert controller.start_run()
    controller.worker.events.connect(seen.extend)  # before the event loop delivers the first batch
    run_dir = Path(controller.run_id)
    # live: rank 0's metrics reach the dashboard while the run trains
    qtbot.waitUntil(lambda: sum(isinstance(e, Metrics) for e in seen) >= 3, timeout=HANG_MS)
    assert controller.dashboard.buffers(controller.run_id).has("loss")
    started = next(e for e in seen if isinstance(e, RunStarted))
    assert started.world_size == 2 and "2 processes (DDP, gloo)" in started.device_name
    assert "2 processes (DDP, gloo)" in controller.status.device.text()
    assert run_is_live(run_dir)
    with qtbot.waitSignal(controller.run_finished, timeout=HANG_MS) as blocker:
        qtbot.keyClick(window, Qt.Key.Key_Escape)  # Stop
    final = blocker.args[0]
    assert isinstance(final, Stopped), getattr(final, "message", final)
    assert final.summary.world_size == 2 and final.summary.epochs_completed < 500
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert on_disk["status"] == "stopped" and on_disk["world_size"] == 2
    assert read_summary(run_dir).status == "stopped" and not run_is_live(run_dir)
    assert [p.name for p in run_dir.parent.iterdir() if p.is_dir()] == [run_dir.name]  # one run folder
    assert _marked_processes(mark) == []  # torchrun and both ranks have ended
    assert not window.document.is_read_only()  # the app is ready for the next run
    assert os.environ["AFWB_TEST_MARK"] == mark
