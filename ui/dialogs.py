"""Dialogs and the two injectable prompt hooks.

``ask(title, text, buttons) -> str`` asks the user to pick one of ``buttons`` (returns its text);
``ask_path(mode, title, directory, name_filter) -> str | None`` picks a file ("open" or "save").
The main window calls only these hooks, so tests answer them with a lambda and no modal dialog
ever blocks a test. Under the offscreen platform the file dialog is Qt's own (native dialogs
cannot be driven and may crash when closed headless).
"""
from __future__ import annotations

from typing import Callable, Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QApplication, QDialog, QDialogButtonBox, QFileDialog, QLabel, QMessageBox,
                               QPlainTextEdit, QVBoxLayout, QWidget)

from ui.theme import monospace_font

Ask = Callable[[str, str, Sequence[str]], str]
AskPath = Callable[[str, str, str, str], "str | None"]

PRESET_FILTER = "Presets (*.json);;All files (*)"


def _use_native() -> bool:
    return QGuiApplication.platformName() not in ("offscreen", "minimal")


def message_ask(parent: QWidget | None) -> Ask:
    """The real ``ask``: a QMessageBox with one button per entry of ``buttons`` (the first is the default;
    "Cancel" also answers Esc). Returns the chosen button's text."""

    def ask(title: str, text: str, buttons: Sequence[str]) -> str:
        box = QMessageBox(parent)
        box.setWindowTitle(title)
        box.setText(text.split("\n\n", 1)[0])
        if "\n\n" in text:
            box.setInformativeText(text.split("\n\n", 1)[1])
        box.setIcon(QMessageBox.Icon.Question if len(buttons) > 1 else QMessageBox.Icon.Warning)
        made = {}
        for i, label in enumerate(buttons):
            role = (QMessageBox.ButtonRole.RejectRole if label.lower() == "cancel"
                    else QMessageBox.ButtonRole.DestructiveRole if label.lower() in ("discard", "don't save")
                    else QMessageBox.ButtonRole.AcceptRole)
            made[box.addButton(label, role)] = label
            if i == 0:
                box.setDefaultButton(list(made)[0])
        box.exec()
        return made.get(box.clickedButton(), "Cancel" if "Cancel" in buttons else buttons[-1])

    return ask


def file_ask_path(parent: QWidget | None) -> AskPath:
    """The real ``ask_path``: QFileDialog (Qt's own dialog when offscreen)."""

    def ask_path(mode: str, title: str, directory: str, name_filter: str = PRESET_FILTER) -> str | None:
        options = QFileDialog.Option(0)
        if not _use_native():
            options |= QFileDialog.Option.DontUseNativeDialog
        if mode == "save":
            path, _ = QFileDialog.getSaveFileName(parent, title, directory, name_filter, options=options)
            if path and not path.lower().endswith(".json") and "." not in path.rsplit("/", 1)[-1]:
                path += ".json"
        else:
            path, _ = QFileDialog.getOpenFileName(parent, title, directory, name_filter, options=options)
        return path or None

    return ask_path


class TextDialog(QDialog):
    """A resizable read-only monospace text (used for "Show PyTorch module"), with Copy and Close."""

    def __init__(self, title: str, text: str, parent: QWidget | None = None, note: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setObjectName("textDialog")
        self.resize(760, 560)
        lay = QVBoxLayout(self)
        if note:
            label = QLabel(note, self)
            label.setWordWrap(True)
            lay.addWidget(label)
        self.text = QPlainTextEdit(self)
        self.text.setObjectName("moduleText")
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(monospace_font())
        self.text.setPlainText(text)
        lay.addWidget(self.text, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        copy = buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(lambda: QApplication.clipboard().setText(self.text.toPlainText()))
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)


def problems_text(path: str, error: BaseException) -> str:
    """Message for a preset that cannot be opened: the path, then one line per problem (with its fix)."""
    problems = getattr(error, "problems", None)
    if problems:
        lines = [f"• {p}" for p in problems[:20]]
        if len(problems) > 20:
            lines.append(f"… and {len(problems) - 20} more")
        body = "\n".join(lines)
    else:
        body = str(error)
    return f"Cannot open {path}\n\n{body}\n\nThe current model was left unchanged."
