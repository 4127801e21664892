"""The header of the Build workspace: the preset's name, description and reference, editable.

A preset's identity used to live only in its file and in a menu tooltip; here it is on screen above
the cards. Every keystroke is an edit of the document (``set_field("", "name", …)``, undoable, and
consecutive keystrokes merge into one undo step); the window title and the names of new runs follow
the name. Object names: ``presetHeader``, ``presetName``, ``presetDescription``, ``presetReference``.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics, QPainter
from PySide6.QtWidgets import (QFrame, QLineEdit, QPlainTextEdit, QSizePolicy, QStyle, QStyleOptionFrame,
                               QVBoxLayout, QWidget)

from ui.document import PresetDocument, ReadOnlyError

__all__ = ["PresetHeader", "DESCRIPTION_LINES"]

#: Lines of description shown without scrolling (more scroll; the header never crowds out the cards).
DESCRIPTION_LINES = 3


class _ElidingLineEdit(QLineEdit):
    """A line edit that, while it does not have the focus, shows a text too long for it with "…" at
    the end (a plain line edit would show it cut at the edge); with the focus it edits as usual."""

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        fm = self.fontMetrics()
        option = QStyleOptionFrame()
        self.initStyleOption(option)
        rect = self.style().subElementRect(QStyle.SubElement.SE_LineEditContents, option, self)
        rect = rect.adjusted(2 + self.textMargins().left(), 0, -2 - self.textMargins().right(), 0)
        if self.hasFocus() or not self.text() or fm.horizontalAdvance(self.text()) <= rect.width():
            super().paintEvent(event)
            return
        painter = QPainter(self)
        self.style().drawPrimitive(QStyle.PrimitiveElement.PE_PanelLineEdit, option, painter, self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                         fm.elidedText(self.text(), Qt.TextElideMode.ElideRight, rect.width()))
        painter.end()


class _DescriptionEdit(QPlainTextEdit):
    """Plain text that grows with its content up to :data:`DESCRIPTION_LINES` lines."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("presetDescription")
        self.setTabChangesFocus(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.document().documentLayout().documentSizeChanged.connect(lambda _s: self._fit())
        self._fit()

    def _fit(self) -> None:
        fm = QFontMetrics(self.font())
        lines = max(1, min(DESCRIPTION_LINES, int(self.document().size().height())))
        margins = self.contentsMargins()
        # top margin + whole lines only: the next line must not peek in at the bottom
        height = lines * fm.lineSpacing() + int(self.document().documentMargin()) + margins.top() + margins.bottom()
        if self.height() != height:
            self.setFixedHeight(height)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        self._fit()


class PresetHeader(QFrame):
    """Name (a title-sized line edit), description (up to three lines, then it scrolls) and reference."""

    def __init__(self, document: PresetDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("presetHeader")
        self.document = document
        self._updating = False
        self.name_edit = _ElidingLineEdit(self)
        self.name_edit.setObjectName("presetName")
        self.name_edit.setPlaceholderText("Name this model")
        self.name_edit.setToolTip("The model's name: it appears in the window title, in run names and in "
                                  "the file name Save As suggests")
        font = QFont(self.name_edit.font())
        font.setPointSizeF(font.pointSizeF() * 1.35)
        font.setBold(True)
        self.name_edit.setFont(font)
        self.name_edit.setFrame(False)
        self.description_edit = _DescriptionEdit(self)
        self.description_edit.setPlaceholderText("Describe this model: what it tests, what it should reach…")
        self.description_edit.setToolTip("The model's description (saved in the preset)")
        self.reference_edit = _ElidingLineEdit(self)
        self.reference_edit.setObjectName("presetReference")
        self.reference_edit.setPlaceholderText("Reference: the paper or repository it reproduces")
        self.reference_edit.setToolTip("Reference (saved in the preset)")
        self.reference_edit.setFrame(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(14, 8, 14, 4)
        lay.setSpacing(2)
        lay.addWidget(self.name_edit)
        lay.addWidget(self.description_edit)
        lay.addWidget(self.reference_edit)

        self.name_edit.textEdited.connect(lambda text: self._set("name", text))
        self.reference_edit.textEdited.connect(lambda text: self._set("reference", text))
        self.description_edit.textChanged.connect(self._description_changed)
        document.changed.connect(self.refresh)
        document.read_only_changed.connect(lambda flag, _reason: self._set_read_only(flag))
        self.refresh()

    def refresh(self) -> None:
        """Show the document's name, description and reference (the cursor stays where it is)."""
        preset = self.document.current
        self._updating = True
        try:
            if self.name_edit.text() != preset.name:
                self.name_edit.setText(preset.name)
                self.name_edit.setCursorPosition(0)
            if self.description_edit.toPlainText() != preset.description:
                self.description_edit.setPlainText(preset.description)
            if self.reference_edit.text() != preset.reference:
                self.reference_edit.setText(preset.reference)
                self.reference_edit.setCursorPosition(0)
        finally:
            self._updating = False

    def edit_name(self) -> None:
        """Put the cursor in the name with the whole name selected (after New)."""
        self.name_edit.setFocus(Qt.FocusReason.OtherFocusReason)
        self.name_edit.selectAll()

    def _description_changed(self) -> None:
        if not self._updating:
            self._set("description", self.description_edit.toPlainText())

    def _set(self, field: str, value: str) -> None:
        try:
            self.document.set_field("", field, value)
        except ReadOnlyError:
            self.refresh()

    def _set_read_only(self, flag: bool) -> None:
        for w in (self.name_edit, self.reference_edit):
            w.setReadOnly(flag)
        self.description_edit.setReadOnly(flag)
