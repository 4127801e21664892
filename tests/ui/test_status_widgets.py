"""The status bar's training progress (ui.status_widgets.TrainingStatus)."""
from __future__ import annotations

from PySide6.QtWidgets import QWidget

from ui.status_widgets import TrainingStatus
from workbench.events import Metrics, RunStarted


def test_the_progress_text_of_a_long_run_fits_on_one_line(qtbot) -> None:
    """'epoch 206/600 · step 3502/10200' wrapped inside the 200 px bar (issue #12's 'status-bar text is
    elided, never cut mid-word or overlapping'): the bar widens to its run's longest text."""
    host = QWidget()
    qtbot.addWidget(host)
    status = TrainingStatus(None, host)
    status.add_events([RunStarted("HanNet", None, "cpu", "CPU", "classification", 600, 17, 10_200, 1640, 4921,
                                  100, 3032, 3032, ("0_Linear",))])
    status.add_events([Metrics(step=10_200, epoch=599, epoch_fraction=600.0, loss=0.1, lr=0.05,
                               samples_per_s=800.0, accuracy=0.99)])
    text = status.progress.format()
    assert text == "epoch 600/600 · step 10200/10200"
    room = status.progress.width() - 12   # the bar's frame and padding
    assert status.progress.fontMetrics().horizontalAdvance(text) <= room
