"""A status bar whose texts are elided, never cut mid-word and never overlapping.

Qt's own status bar draws a temporary message in whatever width the permanent widgets leave and
clips it at that edge ("Opened built-in preset z-di|built-in preset z-digits …"). Here:

* :class:`ElidedLabel` — a label that shows as many whole words of its text as fit, ending in "…"
  (or with the middle elided, for paths), with the whole text as its tooltip; its minimum width is small,
  so a crowded status bar shrinks it instead of pushing other widgets out of the window.
* :class:`StatusBar` — ``showMessage``/``clearMessage``/``currentMessage`` go to an elided label
  that takes the stretch on the left; permanent widgets (path, training status) sit to its right
  and shrink too. Status tips of menus reach it through :meth:`ui.main_window.MainWindow.event`.
"""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QFontMetrics, QPainter
from PySide6.QtWidgets import QLabel, QSizePolicy, QStatusBar, QWidget

__all__ = ["ElidedLabel", "StatusBar", "elide_words"]


def elide_words(text: str, fm: QFontMetrics, width: int) -> str:
    """``text`` if it fits in ``width`` pixels, else its longest run of whole words that fits with
    "…" after it (a single word too long for the width is cut, as there is no other way)."""
    if fm.horizontalAdvance(text) <= width:
        return text
    cut = fm.elidedText(text, Qt.TextElideMode.ElideRight, width)   # ends in "…", maybe mid-word
    head = cut[:-1] if cut.endswith("…") else cut
    if head and len(head) < len(text) and not text[len(head)].isspace() and not head[-1].isspace():
        space = head.rstrip().rfind(" ")
        if space > 0:
            head = head[:space]
    head = head.rstrip(" ,;:·—-")
    return f"{head}…" if head else cut


class ElidedLabel(QLabel):
    """One line of text elided to the label's width (``mode``: where the "…" goes)."""

    def __init__(self, text: str = "", parent: QWidget | None = None, *,
                 mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight, min_chars: int = 6) -> None:
        super().__init__(parent)
        self._full = ""
        self._mode = mode
        self._min_chars = min_chars
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt API
        text = " ".join(str(text or "").split())   # one line: newlines become spaces
        if text == self._full:
            return
        self._full = text
        super().setText(text)
        self.setToolTip(text if text else "")
        self.updateGeometry()
        self.update()

    def text(self) -> str:
        """The whole text (what is painted may be elided)."""
        return self._full

    def displayed_text(self) -> str:
        """The text as painted at the current width (whole words, for right elision)."""
        fm = QFontMetrics(self.font())
        width = max(0, self.contentsRect().width())
        if self._mode == Qt.TextElideMode.ElideRight:
            return elide_words(self._full, fm, width)
        return fm.elidedText(self._full, self._mode, width)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt API
        fm = QFontMetrics(self.font())
        width = min(fm.horizontalAdvance(self._full), fm.averageCharWidth() * self._min_chars)
        return QSize(width, super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        fm = QFontMetrics(self.font())
        return QSize(fm.horizontalAdvance(self._full) + 4, super().sizeHint().height())

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        rect = self.contentsRect()
        painter.drawText(rect, int(self.alignment() | Qt.AlignmentFlag.AlignVCenter), self.displayed_text())
        painter.end()


class StatusBar(QStatusBar):
    """A status bar whose temporary message is an :class:`ElidedLabel` (see the module docstring)."""

    #: Emitted with the new message (like QStatusBar.messageChanged, which this class bypasses).
    message_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("statusBar")
        self.message_label = ElidedLabel("", self, min_chars=12)
        self.message_label.setObjectName("statusMessage")
        self.addWidget(self.message_label, 1)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.clearMessage)

    def showMessage(self, text: str, timeout: int = 0) -> None:  # noqa: N802 - Qt API
        self._timer.stop()
        self.message_label.setText(text)
        if timeout > 0 and text and self.isVisible():   # hidden: nothing to time (and no timer left running)
            self._timer.start(int(timeout))
        self.message_changed.emit(self.message_label.text())

    def clearMessage(self) -> None:  # noqa: N802 - Qt API
        self._timer.stop()
        if self.message_label.text():
            self.message_label.setText("")
            self.message_changed.emit("")

    def currentMessage(self) -> str:  # noqa: N802 - Qt API
        return self.message_label.text()

    def hideEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._timer.stop()   # the window closed: a pending "clear" has nothing left to clear
        super().hideEvent(event)
