"""The runs list (``runsList``): this session's runs and those found in the runs folder.

Check runs to overlay their curves on every plot; rename (a label in ``run.json``), delete (after a
confirmation through the window's injectable ``ask``), open a run's preset in the editor, reveal
its folder. Each row shows the run's status, best validation figure, training time and learned
depth; the tooltip has the whole summary.

The panel only lists and edits runs; the training controller loads a checked historic run's
curves (``metrics.jsonl``) into the dashboard.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QSignalBlocker, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices, QIcon, QPixmap
from PySide6.QtWidgets import (QApplication, QGridLayout, QHeaderView, QInputDialog, QLineEdit, QMessageBox,
                               QPushButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from workbench.events import RunSummary
from ui.status_widgets import format_eta

__all__ = ["RunEntry", "RunsPanel", "summary_columns", "AskText", "Ask"]

#: ``ask(title, text, buttons) -> chosen button text`` (the window's injectable prompt).
Ask = Callable[[str, str, "tuple[str, ...]"], str]
#: ``ask_text(title, label, default) -> str | None`` (None = cancelled).
AskText = Callable[[str, str, str], "str | None"]

COLUMNS = ("Run", "Status", "Best", "Time", "Depth")


@dataclass
class RunEntry:
    """One row: ``run_id`` is the run folder's path as text (or ``live-N`` for an unsaved run)."""

    run_id: str
    label: str
    path: Path | None = None
    preset: Any = None
    summary: RunSummary | None = None
    live: bool = False
    problems: tuple[str, ...] = ()


def summary_columns(summary: RunSummary | None, live: bool = False,
                    problems: tuple[str, ...] = ()) -> tuple[str, str, str, str]:
    """Status, best validation figure, time and learned depth as short texts (status ``damaged``
    for a run whose summary.json cannot be read: ``problems`` says why)."""
    if summary is None:
        return ("training" if live else "damaged" if problems else "?"), "", "", ""
    status = "training" if live and summary.status == "running" else summary.status
    best = ""
    if summary.best_val_accuracy is not None:
        best = f"{100 * summary.best_val_accuracy:.2f}%"
    elif summary.best_val_rmse is not None:
        best = f"RMSE {summary.best_val_rmse:.4g}"
    elif summary.final_train_loss is not None:
        best = f"loss {summary.final_train_loss:.4g}"
    seconds = format_eta(summary.seconds) if summary.seconds else ""
    depth = ", ".join(f"{w:.2f}" for w in summary.learned_depth.values()) if summary.learned_depth else ""
    return status, best, seconds, depth


def _reason(exc: BaseException) -> str:
    """An OS error as its text and file (``[Errno 13] ...`` without the code), else ``str(exc)``."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc)


def _tooltip(entry: RunEntry) -> str:
    s = entry.summary
    lines = [entry.label]
    if entry.path is not None:
        lines.append(str(entry.path))
    if s is not None:
        lines.append(f"status: {s.status}; {s.epochs_completed} epochs, {s.steps} steps in "
                     f"{format_eta(s.seconds)} on {s.device}")
        if s.best_val_accuracy is not None:
            lines.append(f"best val accuracy {100 * s.best_val_accuracy:.2f}% (epoch {s.best_epoch})")
        if s.best_val_rmse is not None:
            lines.append(f"best val RMSE {s.best_val_rmse:.4g} (epoch {s.best_epoch})")
        if s.samples_per_s:
            lines.append(f"{s.samples_per_s:,.0f} samples/s")
        for name, w in s.learned_depth.items():
            lines.append(f"learned depth {name}: w = {w:.3f}")
        if s.message:
            lines.append(f"{s.message} {s.hint}".strip())
    lines.extend(f"damaged: {problem}" for problem in entry.problems)
    return "\n".join(lines)


class RunsPanel(QWidget):
    """The runs dock's content."""

    #: The checked runs' ids, in list order.
    visibility_changed = Signal(list)
    #: A run's preset to open in the editor.
    open_preset_requested = Signal(object)
    run_renamed = Signal(str, str)
    run_deleted = Signal(str)

    def __init__(self, parent: QWidget | None = None, *, ask: Ask | None = None, ask_text: AskText | None = None,
                 open_url: Callable[[QUrl], Any] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("runsPanel")
        self.ask = ask
        self.ask_text = ask_text
        self.open_url = open_url or QDesktopServices.openUrl
        self.entries: dict[str, RunEntry] = {}
        self._live_count = 0
        self.tree = QTreeWidget()
        self.tree.setObjectName("runsList")
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        header = self.tree.header()
        # The name keeps a readable width in a narrow dock (the figures scroll instead).
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(0, 150)
        for c in range(1, len(COLUMNS)):
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        header.setMinimumSectionSize(36)
        self.tree.setIconSize(QSize(10, 10))   # the run's colour swatch
        self.tree.itemChanged.connect(self._on_item_changed)
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        self.tree.itemDoubleClicked.connect(lambda *_: self.open_selected())

        self.rename_button = QPushButton("Rename…")
        self.rename_button.setObjectName("renameRunButton")
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setObjectName("deleteRunButton")
        self.open_button = QPushButton("Open preset")
        self.open_button.setObjectName("openRunPresetButton")
        self.open_button.setToolTip("Load this run's preset into the editor")
        self.reveal_button = QPushButton("Show folder")
        self.reveal_button.setObjectName("revealRunButton")
        self.rename_button.clicked.connect(self.rename_selected)
        self.delete_button.clicked.connect(self.delete_selected)
        self.open_button.clicked.connect(self.open_selected)
        self.reveal_button.clicked.connect(self.reveal_selected)
        buttons = QGridLayout()   # two rows: the list stays usable in a narrow dock
        for i, b in enumerate((self.rename_button, self.delete_button, self.open_button, self.reveal_button)):
            buttons.addWidget(b, i // 2, i % 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)
        self._update_buttons()

    # ------------------------------------------------------------------ content
    def add_live_run(self, label: str, path: Path | None, preset: Any) -> RunEntry:
        """A run of this session that is starting now (checked, at the top)."""
        self._live_count += 1
        run_id = str(path) if path is not None else f"live-{self._live_count}"
        entry = RunEntry(run_id, label, path, preset, None, live=True)
        self._insert(entry, checked=True, index=0)
        return entry

    def update_run(self, run_id: str, summary: RunSummary | None, *, live: bool | None = None) -> None:
        entry = self.entries.get(run_id)
        if entry is None:
            return
        entry.summary = summary
        if live is not None:
            entry.live = live
        self._refresh_item(entry)

    def add_saved_run(self, record: Any) -> RunEntry | None:
        """A run found on disk (a :class:`workbench.runs.RunRecord`); ignored when already listed."""
        run_id = str(record.path)
        if run_id in self.entries:
            return None
        label = getattr(record, "name", None) or getattr(record, "label", "") or Path(record.path).name
        entry = RunEntry(run_id, str(label), Path(record.path), record.preset, record.summary,
                         problems=tuple(getattr(record, "problems", ())))
        self._insert(entry, checked=False)
        return entry

    def refresh_from_disk(self, root: Path | str) -> int:
        """List the runs under ``root`` not yet shown; returns how many were added."""
        from workbench.runs import list_runs

        added = 0
        for record in list_runs(root):
            if self.add_saved_run(record) is not None:
                added += 1
        return added

    def _insert(self, entry: RunEntry, *, checked: bool, index: int | None = None) -> None:
        self.entries[entry.run_id] = entry
        item = QTreeWidgetItem()
        item.setData(0, Qt.ItemDataRole.UserRole, entry.run_id)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        with QSignalBlocker(self.tree):
            item.setCheckState(0, Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
            if index is None:
                self.tree.addTopLevelItem(item)
            else:
                self.tree.insertTopLevelItem(index, item)
        self._refresh_item(entry)
        if checked:
            self.visibility_changed.emit(self.checked_ids())

    def _item(self, run_id: str) -> QTreeWidgetItem | None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.data(0, Qt.ItemDataRole.UserRole) == run_id:
                return item
        return None

    def _refresh_item(self, entry: RunEntry) -> None:
        item = self._item(entry.run_id)
        if item is None:
            return
        with QSignalBlocker(self.tree):
            texts = (entry.label,) + summary_columns(entry.summary, entry.live, entry.problems)
            for c, text in enumerate(texts):
                item.setText(c, text)
                item.setToolTip(c, _tooltip(entry))
        self._update_buttons()

    # ------------------------------------------------------------------ checking
    def checked_ids(self) -> list[str]:
        out = []
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.checkState(0) == Qt.CheckState.Checked:
                out.append(item.data(0, Qt.ItemDataRole.UserRole))
        return out

    def set_checked(self, run_id: str, checked: bool) -> None:
        item = self._item(run_id)
        if item is not None:
            item.setCheckState(0, Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if column == 0:
            run_id = item.data(0, Qt.ItemDataRole.UserRole)
            entry = self.entries.get(run_id)
            if entry is not None and item.text(0) != entry.label:
                item.setText(0, entry.label)
            self.visibility_changed.emit(self.checked_ids())

    # ------------------------------------------------------------------ selection actions
    def select(self, run_id: str) -> None:
        item = self._item(run_id)
        if item is not None:
            self.tree.setCurrentItem(item)

    def selected(self) -> RunEntry | None:
        item = self.tree.currentItem()
        if item is None:
            return None
        return self.entries.get(item.data(0, Qt.ItemDataRole.UserRole))

    def _update_buttons(self) -> None:
        entry = self.selected()
        on_disk = entry is not None and entry.path is not None
        self.rename_button.setEnabled(on_disk)
        self.delete_button.setEnabled(on_disk and not entry.live)
        self.delete_button.setToolTip("A run cannot be deleted while it trains" if entry is not None and entry.live
                                      else "Delete the run folder")
        self.open_button.setEnabled(entry is not None and entry.preset is not None)
        self.reveal_button.setEnabled(on_disk)

    def rename_selected(self) -> bool:
        entry = self.selected()
        if entry is None or entry.path is None:
            return False
        ask_text = self.ask_text or self._dialog_text
        label = ask_text("Rename run", "New name for this run:", entry.label)
        if label is None or not label.strip():
            return False
        from workbench.runs import NotARunDir, rename_run

        try:
            rename_run(entry.path, label.strip())
        except (OSError, NotARunDir) as exc:
            self._tell("Cannot rename run", f"The run “{entry.label}” could not be renamed: {_reason(exc)}")
            return False
        entry.label = label.strip()
        self._refresh_item(entry)
        self.run_renamed.emit(entry.run_id, entry.label)
        return True

    def delete_selected(self) -> bool:
        entry = self.selected()
        if entry is None or entry.path is None or entry.live:
            return False
        answer = "Delete"
        if self.ask is not None:
            answer = self.ask("Delete run", f"Delete the run “{entry.label}” and its folder\n{entry.path}?\n"
                              "Its checkpoints and metrics are removed from disk.", ("Delete", "Cancel"))
        if answer != "Delete":
            return False
        from workbench.runs import NotARunDir, delete_run

        try:
            delete_run(entry.path)
        except (OSError, NotARunDir) as exc:
            self._tell("Cannot delete run", f"The run “{entry.label}” could not be deleted: {_reason(exc)}")
            return False
        self.remove(entry.run_id)
        self.run_deleted.emit(entry.run_id)
        return True

    def remove(self, run_id: str) -> None:
        item = self._item(run_id)
        self.entries.pop(run_id, None)
        if item is not None:
            self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(item))
        self.visibility_changed.emit(self.checked_ids())
        self._update_buttons()

    def open_selected(self) -> bool:
        entry = self.selected()
        if entry is None or entry.preset is None:
            return False
        self.open_preset_requested.emit(entry.preset)
        return True

    def reveal_selected(self) -> bool:
        """Open the run's folder in the file manager; without one, say so and show (and copy) the path."""
        entry = self.selected()
        if entry is None or entry.path is None:
            return False
        if self.open_url(QUrl.fromLocalFile(str(entry.path))) is False:
            QApplication.clipboard().setText(str(entry.path))
            if self.ask is not None:
                self.ask("Show folder", f"No file manager could open the run's folder.\n\n{entry.path}\n\n"
                                        "The path is on the clipboard.", ("OK",))
            return False
        return True

    def _tell(self, title: str, text: str) -> None:
        """Show why an action failed (through the window's ``ask``, else a message box); the list is
        left as it was."""
        if self.ask is not None:
            self.ask(title, text, ("OK",))
        else:
            QMessageBox.warning(self, title, text)

    def set_run_colors(self, colors: dict) -> None:
        """A swatch in each drawn run's row in the colour its curves have (none for the others)."""
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            color = colors.get(item.data(0, Qt.ItemDataRole.UserRole))
            if color is None:
                item.setIcon(0, QIcon())
            else:
                pixmap = QPixmap(12, 12)
                pixmap.fill(QColor(color))
                item.setIcon(0, QIcon(pixmap))

    def _dialog_text(self, title: str, label: str, default: str) -> str | None:
        dialog = QInputDialog(self)
        dialog.setWindowTitle(title)
        dialog.setLabelText(label)
        dialog.setTextValue(default)
        dialog.setTextEchoMode(QLineEdit.EchoMode.Normal)
        edit = dialog.findChild(QLineEdit)
        if edit is not None:   # the whole name in view, and room to type a longer one
            edit.setMinimumWidth(max(380, edit.fontMetrics().horizontalAdvance(default) + 40))
        try:
            ok = dialog.exec()
            return dialog.textValue() if ok else None
        finally:
            dialog.deleteLater()
