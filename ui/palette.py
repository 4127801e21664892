"""The palette: every registry entry, grouped by family, with a search box.

Double-click (or Enter) on an entry emits :attr:`PaletteWidget.add_requested` with the type name;
dragging an entry carries :data:`LAYER_MIME` (the type name, UTF-8) to the model editor.
Everything shown comes from :mod:`workbench.registry`; nothing about a layer is written here.
"""
from __future__ import annotations

import html

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QDrag
from PySide6.QtWidgets import (QAbstractItemView, QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout,
                               QWidget)

from workbench.registry import FAMILIES, entries_by_family

#: Mime type of a palette drag: the registry type name as UTF-8 bytes.
LAYER_MIME = "application/x-afwb-layer"
TYPE_ROLE = Qt.ItemDataRole.UserRole + 1


def entry_tooltip(entry) -> str:
    """Rich-text tooltip: summary, equation (monospace) and the paper."""
    parts = [f"<b>{html.escape(entry.type)}</b> <i>({html.escape(entry.family)})</i>",
             html.escape(entry.summary)]
    if getattr(entry, "equation", ""):
        parts.append(f"<code>{html.escape(entry.equation)}</code>")
    if getattr(entry, "paper", ""):
        parts.append(f"<small>{html.escape(entry.paper)}</small>")
    return "<p style='white-space:pre-wrap; max-width:420px'>" + "<br>".join(parts) + "</p>"


class _PaletteTree(QTreeWidget):
    """A tree whose leaf items drag as :data:`LAYER_MIME`; Enter on an item emits ``enter_pressed``
    (double-click is the tree's own ``itemDoubleClicked``; ``itemActivated`` is not used because it
    fires on single click in some styles and twice with double-click in others)."""

    enter_pressed = Signal(object, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderHidden(True)
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setRootIsDecorated(True)
        self.setUniformRowHeights(True)
        self.setAnimated(False)
        self.setIndentation(14)

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentItem() is not None:
            self.enter_pressed.emit(self.currentItem(), 0)
            return
        super().keyPressEvent(event)

    def mimeTypes(self) -> list[str]:  # noqa: N802 - Qt API
        return [LAYER_MIME]

    def mimeData(self, items) -> QMimeData:  # noqa: N802 - Qt API
        data = QMimeData()
        names = [it.data(0, TYPE_ROLE) for it in items if it.data(0, TYPE_ROLE)]
        if names:
            data.setData(LAYER_MIME, names[0].encode("utf-8"))
            data.setText(names[0])
        return data

    def startDrag(self, actions) -> None:  # noqa: N802 - Qt API
        item = self.currentItem()
        if item is None or not item.data(0, TYPE_ROLE):
            return
        drag = QDrag(self)
        drag.setMimeData(self.mimeData([item]))
        drag.exec(Qt.DropAction.CopyAction)


class PaletteWidget(QWidget):
    """Search box + family tree. ``objectName`` is ``palette``."""

    #: Emitted with a registry type name when the user double-clicks (or presses Enter on) an entry.
    add_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("palette")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        self.search = QLineEdit(self)
        self.search.setObjectName("paletteSearch")
        self.search.setPlaceholderText("Search layers…")
        self.search.setClearButtonEnabled(True)
        self.tree = _PaletteTree(self)
        self.tree.setObjectName("paletteTree")
        layout.addWidget(self.search)
        layout.addWidget(self.tree, 1)
        self._items: dict[str, QTreeWidgetItem] = {}
        self._families: dict[str, QTreeWidgetItem] = {}
        self._populate()
        self.search.textChanged.connect(self.set_filter)
        self.tree.itemDoubleClicked.connect(self._activated)
        self.tree.enter_pressed.connect(self._activated)

    def _populate(self) -> None:
        groups = entries_by_family()
        order = [f for f in FAMILIES if f in groups] + [f for f in groups if f not in FAMILIES]
        for family in order:
            entries = groups.get(family) or []
            if not entries:
                continue
            top = QTreeWidgetItem(self.tree, [family])
            top.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = top.font(0)
            font.setBold(True)
            top.setFont(0, font)
            self._families[family] = top
            for entry in entries:
                child = QTreeWidgetItem(top, [entry.type])
                child.setData(0, TYPE_ROLE, entry.type)
                child.setToolTip(0, entry_tooltip(entry))
                child.setStatusTip(0, f"{entry.type}: {entry.summary}")
                child.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                               | Qt.ItemFlag.ItemIsDragEnabled)
                child.setData(0, Qt.ItemDataRole.UserRole + 2, f"{entry.type} {entry.summary}".lower())
                self._items[entry.type] = child
        self.tree.expandAll()

    # ------------------------------------------------------------------------------------- public
    def item_for(self, type_name: str) -> QTreeWidgetItem:
        """The tree item of a registry type (tests click it)."""
        return self._items[type_name]

    def type_names(self) -> list[str]:
        return list(self._items)

    def visible_type_names(self) -> list[str]:
        return [name for name, item in self._items.items() if not item.isHidden()]

    def set_filter(self, text: str) -> None:
        """Show only entries whose type name or summary contains every word of ``text``."""
        words = text.lower().split()
        for family, top in self._families.items():
            shown = 0
            for i in range(top.childCount()):
                child = top.child(i)
                hay = child.data(0, Qt.ItemDataRole.UserRole + 2) or ""
                hide = bool(words) and not all(w in hay or w in family.lower() for w in words)
                child.setHidden(hide)
                shown += not hide
            top.setHidden(shown == 0)
            if words:
                top.setExpanded(True)

    # ------------------------------------------------------------------------------------ private
    def _activated(self, item: QTreeWidgetItem, _column: int = 0) -> None:
        name = item.data(0, TYPE_ROLE)
        if name:
            self.add_requested.emit(name)
