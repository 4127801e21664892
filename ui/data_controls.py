"""The data rows of the inspector's Task section: Import…, the data folder, and Download.

* **Import…** opens a file or folder chooser (a CSV table, NumPy arrays, an image folder) and
  hands the inspector the dataset and its options (the path relative to the preset's folder when
  the data lie inside it, else absolute; a CSV's last column as the target) to apply as one
  undoable edit.
* **Data folder** shows where MNIST, Fashion-MNIST and CIFAR-10 are looked for and downloaded to
  (env ``AFWB_DATA``, else the ``training/data_root`` setting, else the per-user data folder) and
  changes the setting.
* **Download** (for those three) fetches the data set with torchvision's files into the data
  folder off the GUI thread (:class:`ui.downloader.DatasetDownload`), with a progress bar and
  Cancel; the row says whether the files are there.

File choosers go through :func:`ask_open_file` and :func:`ask_folder` (tests replace them).
A problem with your own data (no file chosen, a missing target column, a cell that is not a
number, …) shows under the dataset's options (``dataProblem``). Object names, for tests and
automation: ``importButton``, ``dataFolderLabel``,
``dataFolderButton``, ``downloadStatus``, ``downloadButton``, ``downloadProgress``,
``downloadCancel``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QMenu, QProgressBar, QPushButton, QToolButton,
                               QVBoxLayout, QWidget)

__all__ = ["DataControls", "ask_open_file", "ask_folder"]

_IMPORTS = (  # (menu text, dataset, chooser title, file filter; "" = a folder)
    ("CSV table…", "csv", "Import a CSV table", "CSV files (*.csv *.tsv *.txt);;All files (*)"),
    ("NumPy arrays (.npz)…", "npz", "Import NumPy arrays", "NumPy arrays (*.npz);;All files (*)"),
    ("Image folder (one sub-folder per class)…", "image-folder", "Import an image folder", ""),
)


def ask_open_file(parent: QWidget, title: str, file_filter: str, start: str) -> str | None:
    """The file the user picks, or None."""
    path, _ = QFileDialog.getOpenFileName(parent, title, start, file_filter)
    return path or None


def ask_folder(parent: QWidget, title: str, start: str) -> str | None:
    """The folder the user picks, or None."""
    path = QFileDialog.getExistingDirectory(parent, title, start)
    return path or None


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


class DataControls(QWidget):
    """Import…, the data folder and Download, for the preset shown by :meth:`show_for`."""

    #: The user imported data: (dataset name, its options) for the inspector to apply.
    import_requested = Signal(str, dict)
    #: The data folder setting changed (the new folder).
    data_root_changed = Signal(str)
    #: A download ended: (dataset, "finished" | "failed" | "cancelled").
    download_ended = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings: Any = None
        self._preset: Any = None
        self.download: Any = None  # the DatasetDownload in flight (or the last one)
        self.downloading: str | None = None  # the data set being downloaded (until its end signal)
        self._error = ""
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(4)

        self.import_button = QToolButton(self)
        self.import_button.setObjectName("importButton")
        self.import_button.setText("Import…")
        self.import_button.setToolTip("use your own data: a CSV table, NumPy arrays or a folder of images")
        self.import_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.import_menu = QMenu(self.import_button)
        self.import_actions = {}
        for text, dataset, title, file_filter in _IMPORTS:
            action = self.import_menu.addAction(text)
            action.triggered.connect(lambda _=False, d=dataset, t=title, f=file_filter: self.import_data(d, t, f))
            self.import_actions[dataset] = action
        self.import_button.setMenu(self.import_menu)

        self.folder_row = QWidget(self)
        row = QHBoxLayout(self.folder_row)
        row.setContentsMargins(0, 0, 0, 0)
        self.folder_label = QLabel(self.folder_row)
        self.folder_label.setObjectName("dataFolderLabel")
        self.folder_label.setWordWrap(True)
        self.folder_button = QPushButton("Change…", self.folder_row)
        self.folder_button.setObjectName("dataFolderButton")
        self.folder_button.setToolTip("where MNIST, Fashion-MNIST and CIFAR-10 are looked for and downloaded to")
        self.folder_button.clicked.connect(self.choose_data_folder)
        row.addWidget(self.folder_label, 1)
        row.addWidget(self.folder_button)

        self.download_row = QWidget(self)
        drow = QVBoxLayout(self.download_row)
        drow.setContentsMargins(0, 0, 0, 0)
        drow.setSpacing(2)
        self.status_label = QLabel(self.download_row)
        self.status_label.setObjectName("downloadStatus")
        self.status_label.setWordWrap(True)
        buttons = QHBoxLayout()
        self.download_button = QPushButton("Download", self.download_row)
        self.download_button.setObjectName("downloadButton")
        self.download_button.clicked.connect(self.start_download)
        self.progress_bar = QProgressBar(self.download_row)
        self.progress_bar.setObjectName("downloadProgress")
        self.progress_bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel", self.download_row)
        self.cancel_button.setObjectName("downloadCancel")
        self.cancel_button.clicked.connect(self.cancel_download)
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.progress_bar, 1)
        buttons.addWidget(self.cancel_button)
        drow.addWidget(self.status_label)
        drow.addLayout(buttons)
        self.progress_bar.hide()
        self.cancel_button.hide()

        self.problem_label = QLabel(self)
        self.problem_label.setObjectName("dataProblem")
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet("color: #c0392b;")
        self.problem_label.hide()

        col.addWidget(self.problem_label)
        col.addWidget(self.folder_row)
        col.addWidget(self.download_row)

    # ------------------------------------------------------------------------------------ state
    def set_settings(self, settings: Any) -> None:
        """The app's QSettings (where the data folder setting lives)."""
        self.settings = settings
        self.show_for(self._preset)

    def data_root(self) -> Path:
        """The data folder runs use: env ``AFWB_DATA``, else the setting, else the per-user default."""
        from workbench.data import default_data_root

        from ui.training_controller import data_root_setting

        return data_root_setting(self.settings) or default_data_root()

    def entry(self) -> Any:
        from workbench.datasets import DATASETS

        dataset = getattr(getattr(self._preset, "task", None), "dataset", None)
        return DATASETS.get(dataset) if isinstance(dataset, str) else None

    def show_for(self, preset: Any) -> None:
        """Show the rows that concern ``preset``'s dataset and what is on disk now."""
        self._preset = preset
        entry = self.entry()
        problem = self._show_problem(entry)
        downloads = entry is not None and entry.downloads
        self.folder_row.setVisible(downloads)
        self.download_row.setVisible(downloads)
        self.setVisible(downloads or problem)  # no empty row in the form
        if not downloads:
            return
        root = self.data_root()
        from_env = bool(os.environ.get("AFWB_DATA"))
        self.folder_label.setText(f"Data folder: {root}" + ("  (set by AFWB_DATA)" if from_env else ""))
        self.folder_button.setEnabled(not from_env)
        self.folder_button.setToolTip("the environment variable AFWB_DATA chooses the folder" if from_env else
                                      "where MNIST, Fashion-MNIST and CIFAR-10 are looked for and downloaded to")
        busy = self.downloading is not None
        if self.downloading == entry.name:
            return  # the progress row shows it
        found = entry.locate(root) if entry.locate is not None else None
        if found is not None:
            self.status_label.setText(f"{entry.name}: found in {found}")
            self.download_button.setText("Downloaded")
            self.download_button.setEnabled(False)
        else:
            text = f"{entry.name} is not in the data folder: download it (torchvision's files, checked by MD5)"
            if self._error:
                text = self._error
            self.status_label.setText(text)
            self.download_button.setText("Download")
            self.download_button.setEnabled(not busy)
        self.progress_bar.setVisible(False)
        self.cancel_button.setVisible(False)

    def _show_problem(self, entry: Any) -> bool:
        """The first problem with the dataset's options or the user's file (a missing file, a
        missing target column …), named as the command line names it."""
        from workbench.datasets import dataset_info
        from workbench.problems import SpecError

        text = ""
        if entry is not None and entry.source == "file":
            task = self._preset.task
            try:
                dataset_info(task.dataset, task.options, task.base_dir)
            except SpecError as exc:
                text = "\n".join(str(p) for p in exc.problems[:3])
        self.problem_label.setText(text)
        self.problem_label.setVisible(bool(text))
        return bool(text)

    # ----------------------------------------------------------------------------------- import
    def _start_dir(self) -> str:
        base = getattr(getattr(self._preset, "task", None), "base_dir", None)
        return str(base) if base else str(Path.home())

    def import_data(self, dataset: str, title: str = "", file_filter: str = "") -> bool:
        """Ask for the file or folder of ``dataset`` and request the import; False when cancelled."""
        from workbench.datasets import portable_path

        if file_filter:
            chosen = ask_open_file(self, title or "Import data", file_filter, self._start_dir())
        else:
            chosen = ask_folder(self, title or "Import an image folder", self._start_dir())
        if not chosen:
            return False
        base = getattr(getattr(self._preset, "task", None), "base_dir", None)
        options: dict[str, Any] = {"path": portable_path(chosen, base)}
        if dataset == "csv":
            from workbench.datasets.base import DataError
            from workbench.datasets.csv_file import read_table

            try:
                options["target"] = read_table(chosen).names[-1]
            except DataError:
                pass  # the inspector shows the file's problem on the path
        self.import_requested.emit(dataset, options)
        return True

    # ------------------------------------------------------------------------------ data folder
    def choose_data_folder(self) -> bool:
        from ui.training_controller import DATA_ROOT_KEY

        chosen = ask_folder(self, "Choose the data folder", str(self.data_root()))
        if not chosen or self.settings is None:
            return False
        self.settings.setValue(DATA_ROOT_KEY, chosen)
        self._error = ""
        self.data_root_changed.emit(chosen)
        self.show_for(self._preset)
        return True

    # --------------------------------------------------------------------------------- download
    def start_download(self) -> bool:
        """Download the preset's data set into the data folder (False when it does not download)."""
        from ui.downloader import DatasetDownload

        entry = self.entry()
        if entry is None or not entry.downloads or self.downloading is not None:
            return False
        self._error = ""
        job = DatasetDownload(entry.name, self.data_root(), self)
        job.progress.connect(self._on_progress)
        job.finished.connect(lambda folder, n=entry.name: self._on_end(n, "finished", ""))
        job.failed.connect(lambda message, hint, n=entry.name: self._on_end(n, "failed", f"{message}; {hint}"))
        job.cancelled.connect(lambda n=entry.name: self._on_end(n, "cancelled", ""))
        old, self.download = self.download, job
        if old is not None:
            old.deleteLater()
        self.downloading = entry.name
        self.download_button.setEnabled(False)
        self.progress_bar.setRange(0, 0)  # busy until the first byte counts arrive
        self.progress_bar.setVisible(True)
        self.cancel_button.setVisible(True)
        self.cancel_button.setEnabled(True)
        self.status_label.setText(f"downloading {entry.name} into {self.data_root()} …")
        job.start()
        return True

    def cancel_download(self) -> None:
        if self.download is not None and self.downloading is not None:
            self.download.cancel()
            self.cancel_button.setEnabled(False)
            self.status_label.setText("cancelling …")

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        """Cancel a download in flight and wait for its thread (before the window goes)."""
        if self.download is None:
            return True
        self.download.cancel()
        return self.download.wait(timeout_s)

    def _on_progress(self, what: str, done: int, total: int) -> None:
        if total > 0:
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(int(1000 * min(done, total) / total))
            self.progress_bar.setFormat(f"{_mb(done)} of {_mb(total)}")
        else:
            self.progress_bar.setRange(0, 0)
        self.status_label.setText(what)

    def _on_end(self, name: str, how: str, error: str) -> None:
        self.downloading = None
        if how == "failed":
            self._error = error
        elif how == "cancelled":
            self._error = f"{name}: download cancelled; nothing half-written was kept"
        self.progress_bar.setVisible(False)
        self.cancel_button.setVisible(False)
        self.show_for(self._preset)
        self.download_ended.emit(name, how)

