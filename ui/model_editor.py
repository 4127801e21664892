"""The model editor: the network as a vertical stack of cards between an input and an output card.

Cards are rebuilt from the document after every change (about 1 ms per card; see
``tests/ui/test_model_editor.py::test_rebuild_is_fast``). Layers are added by dropping a palette
entry (:data:`ui.palette.LAYER_MIME`) at the cursor — into a container's body too — and reordered
by dragging a card (:data:`MOVE_MIME`). The footer shows total/trainable parameter counts and, when
the model cannot run, the reason (the same text as ``MainWindow.run_block_reason()``).
"""
from __future__ import annotations

import json
import time
from typing import Any

from PySide6.QtCore import QMimeData, QPoint, Qt, Signal
from PySide6.QtGui import QDrag
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QScrollArea, QSizePolicy, QVBoxLayout,
                               QWidget)

from ui.cards import PENDING, EndCard, LayerCard, format_count, format_shape, format_value
from ui.document import Analysis, LayerPath, PresetDocument, ReadOnlyError, json_path, make_layer
from ui.palette import LAYER_MIME

#: Mime type of a card being dragged to a new place: its layer path as JSON (``[3, 0]``).
MOVE_MIME = "application/x-afwb-move"

Key = Any  # a layer path tuple, "input", "output" or None


def key_params_text(layer, entry) -> str:
    """``out_channels=16 · kernel_size=5`` from the entry's key parameters (defaults filled in)."""
    if entry is None:
        return ", ".join(f"{k}={format_value(v)}" for k, v in layer.params.items())
    parts = []
    for name in entry.key_params:
        try:
            default = entry.param(name).default
        except KeyError:
            default = None
        value = layer.params.get(name, default)
        if value is None:
            continue
        parts.append(f"{name}={format_value(value)}")
    return "  ·  ".join(parts)


class _Canvas(QWidget):
    """The scrolled widget: holds the cards and accepts drops."""

    def __init__(self, editor: "ModelEditor") -> None:
        super().__init__()
        self.editor = editor
        self.setObjectName("editorCanvas")
        self.setAcceptDrops(True)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.outer = QVBoxLayout(self)
        self.outer.setContentsMargins(16, 14, 16, 14)
        self.outer.setSpacing(0)
        self.indicator = QFrame(self)
        self.indicator.setObjectName("dropIndicator")
        self.indicator.setFixedHeight(3)
        self.indicator.setStyleSheet("background: palette(highlight); border-radius: 1px;")
        self.indicator.hide()

    # drag and drop --------------------------------------------------------------------------------
    def _accepts(self, mime: QMimeData) -> bool:
        return (not self.editor.document.is_read_only()
                and (mime.hasFormat(LAYER_MIME) or mime.hasFormat(MOVE_MIME)))

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._accepts(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802 - Qt API
        if not self._accepts(event.mimeData()):
            event.ignore()
            return
        _parent, _index, (x, y, w) = self.editor.drop_target(event.position().toPoint())
        self.indicator.setGeometry(x, max(0, y - 1), w, 3)
        self.indicator.show()
        self.indicator.raise_()
        event.acceptProposedAction()

    def dragLeaveEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.indicator.hide()
        super().dragLeaveEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.indicator.hide()
        if not self._accepts(event.mimeData()):
            event.ignore()
            return
        if self.editor.handle_drop(event.mimeData(), event.position().toPoint()):
            event.acceptProposedAction()
        else:
            event.ignore()


class ModelEditor(QWidget):
    """Cards for every layer of ``document``; ``objectName`` is ``modelEditor``."""

    #: Emitted with the selected key: a layer path tuple, "input", "output" or None.
    selection_changed = Signal(object)
    #: Emitted with a message when an edit through the editor failed (shown in the status bar).
    error = Signal(str)

    def __init__(self, document: PresetDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelEditor")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # clicking a card focuses the editor (Delete, Alt+Up)
        self.document = document
        self.analysis: Analysis | None = None
        self._selected: Key = None
        self._emitted: Key = None   #: the key listeners (the inspector) were last told about
        self._collapsed: set[LayerPath] = set()
        self._cards: dict[LayerPath, LayerCard] = {}
        self._top_cards: list[LayerCard] = []
        self.input_card: EndCard | None = None
        self.output_card: EndCard | None = None
        self.last_rebuild_ms = 0.0  #: wall-clock milliseconds the last rebuild took

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        self.read_only_banner = QLabel(self)
        self.read_only_banner.setObjectName("readOnlyBanner")
        self.read_only_banner.setWordWrap(True)
        self.read_only_banner.hide()
        banner_box = QHBoxLayout()
        banner_box.setContentsMargins(12, 8, 12, 0)
        banner_box.addWidget(self.read_only_banner)
        lay.addLayout(banner_box)

        self.scroll = QScrollArea(self)
        self.scroll.setObjectName("editorScroll")
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.canvas = _Canvas(self)
        self.scroll.setWidget(self.canvas)
        lay.addWidget(self.scroll, 1)

        footer = QFrame(self)
        footer.setObjectName("editorFooter")
        footer.setFrameShape(QFrame.Shape.NoFrame)
        fl = QHBoxLayout(footer)
        fl.setContentsMargins(12, 6, 12, 8)
        fl.setSpacing(12)
        self.block_label = QLabel(footer)
        self.block_label.setObjectName("blockBanner")
        self.block_label.setWordWrap(True)
        self.block_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.ready_label = QLabel("Ready to run", footer)
        self.ready_label.setObjectName("footerParams")
        self.params_label = QLabel(footer)
        self.params_label.setObjectName("footerParams")
        self.params_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        fl.addWidget(self.block_label, 1)
        fl.addWidget(self.ready_label, 1)
        fl.addWidget(self.params_label, 0)
        lay.addWidget(footer)

        self._content: QWidget | None = None
        document.read_only_changed.connect(self._on_read_only)
        document.selection_hint.connect(self._on_selection_hint)

    # ---------------------------------------------------------------------------------- public API
    def selected(self) -> Key:
        return self._selected

    def selected_layer_path(self) -> LayerPath | None:
        return self._selected if isinstance(self._selected, tuple) else None

    def select(self, key: Key, *, notify: bool = False) -> None:
        """Select a card (a layer path, "input", "output") or nothing (None).

        :attr:`selection_changed` is emitted whenever the key differs from the one listeners were
        last told about (not from the previous ``_selected``, which a command's selection hint may
        already have moved), and always with ``notify=True`` (a click on the selected card)."""
        if isinstance(key, list):
            key = tuple(key)
        if isinstance(key, tuple) and not self.document.has_layer(key):
            key = None
        self._selected = key
        for path, card in self._cards.items():
            card.set_selected(path == key)
        if self.input_card is not None:
            self.input_card.set_selected(key == "input")
        if self.output_card is not None:
            self.output_card.set_selected(key == "output")
        if isinstance(key, tuple) and key in self._cards:
            self.scroll.ensureWidgetVisible(self._cards[key], 20, 20)
        if notify or key != self._emitted:
            self._emitted = key
            self.selection_changed.emit(key)

    def layer_cards(self) -> list[LayerCard]:
        """All layer cards in document order (bodies after their container)."""
        return list(self._cards.values())

    def card_for(self, path: LayerPath) -> LayerCard:
        return self._cards[tuple(path)]

    def is_collapsed(self, path: LayerPath) -> bool:
        return tuple(path) in self._collapsed

    def set_collapsed(self, path: LayerPath, flag: bool) -> None:
        path = tuple(path)
        if flag:
            self._collapsed.add(path)
        else:
            self._collapsed.discard(path)
        self.rebuild()

    def show_analysis(self, analysis: Analysis | None) -> None:
        """Rebuild the cards for the document's current state and ``analysis``."""
        self.analysis = analysis
        self.rebuild()

    def rebuild(self) -> None:
        """Recreate every card from the document (and the last analysis); keeps selection and scroll."""
        t0 = time.perf_counter()
        preset = self.document.current
        scroll_value = self.scroll.verticalScrollBar().value()
        self.setUpdatesEnabled(False)
        try:
            if self._content is not None:
                self._content.hide()
                self._content.deleteLater()
            content = QWidget(self.canvas)
            content.setObjectName("editorContent")
            col = QVBoxLayout(content)
            col.setContentsMargins(0, 0, 0, 0)
            col.setSpacing(8)
            self._cards = {}
            self._top_cards = []
            self._collapsed = {p for p in self._collapsed if self.document.has_layer(p)}
            self.input_card = self._make_input_card(preset, content)
            col.addWidget(self.input_card)
            for i, layer in enumerate(preset.model.layers):
                card = self._make_card((i,), layer, content)
                self._top_cards.append(card)
                col.addWidget(card)
            if not preset.model.layers:
                empty = QLabel("No layers yet: double-click a layer in the palette, or drag it here.", content)
                empty.setObjectName("cardMeta")
                empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
                empty.setMinimumHeight(60)
                col.addWidget(empty)
            self.output_card = self._make_output_card(preset, content)
            col.addWidget(self.output_card)
            col.addStretch(1)
            self.canvas.outer.addWidget(content)
            self._content = content
            self._update_footer()
            if isinstance(self._selected, tuple) and self._selected not in self._cards:
                self._selected = None
            self.select(self._selected)   # tells the inspector when a command moved the selection
        finally:
            self.setUpdatesEnabled(True)
        self.scroll.verticalScrollBar().setValue(scroll_value)
        self.last_rebuild_ms = (time.perf_counter() - t0) * 1000.0

    def drop_target(self, pos: QPoint) -> tuple[LayerPath, int, tuple[int, int, int]]:
        """Where a drop at ``pos`` (canvas coordinates) inserts: ``(parent path, index, (x, y, width)
        of the insertion line)``. Over a container's body the drop goes into the body."""
        return self._locate(self._top_cards, (), pos)

    def handle_drop(self, mime: QMimeData, pos: QPoint) -> bool:
        """Insert a palette layer or move a card to the position under ``pos``; True when done."""
        parent, index, _line = self.drop_target(pos)
        try:
            if mime.hasFormat(MOVE_MIME):
                src = tuple(json.loads(bytes(mime.data(MOVE_MIME)).decode("utf-8")))
                if parent[: len(src)] == src:
                    return False  # into its own body
                new_path = self.document.move_layer(src, parent, index)
            elif mime.hasFormat(LAYER_MIME):
                type_name = bytes(mime.data(LAYER_MIME)).decode("utf-8")
                new_path = self.document.insert_layer(parent, index, make_layer(type_name))
            else:
                return False
        except ReadOnlyError as exc:
            self.error.emit(f"Cannot edit: {exc}")
            return False
        except Exception as exc:  # noqa: BLE001 - never let a drop crash the app
            self.error.emit(f"Drop failed: {exc}")
            return False
        self.select(new_path)
        return True

    # ---------------------------------------------------------------------------------- internals
    def _entry(self, type_name: str):
        from workbench.registry import REGISTRY

        return REGISTRY.get(type_name)

    def _shape_of(self, path: LayerPath):
        if self.analysis is None or self.analysis.report is None:
            return None
        return self.analysis.shapes.get(json_path(path))

    def _make_card(self, path: LayerPath, layer, parent: QWidget) -> LayerCard:
        entry = self._entry(layer.type)
        shape = self._shape_of(path)
        pending = self.analysis is None or self.analysis.report is None
        if pending:
            shape_text, params_text = f"→ {PENDING}", f"{PENDING} params"
        elif shape is None:
            shape_text, params_text = "→ ?", "? params"
        else:
            out = getattr(shape, "output_shape", None)
            shape_text = f"→ {format_shape(out)}"
            n = getattr(shape, "params", None)
            params_text = f"{format_count(n)} params"
        problem = None
        if self.analysis is not None:
            problem = self.analysis.layer_problems.get(json_path(path))
            if problem is None and shape is not None and getattr(shape, "problem", None):
                problem = str(shape.problem)
        container = bool(entry.container) if entry is not None else layer.body is not None
        body = layer.body or []
        card = LayerCard(path, type_name=layer.type, family=entry.family if entry else "unknown type",
                         key_params=key_params_text(layer, entry), shape_text=shape_text,
                         params_text=params_text, trainable=layer.trainable, problem=problem,
                         container=container, collapsed=path in self._collapsed, body_count=len(body),
                         parent=parent)
        if entry is not None:
            card.title.setToolTip(entry.summary)
        card.clicked.connect(self._card_clicked)
        card.toggle_requested.connect(lambda p: self.set_collapsed(p, p not in self._collapsed))
        card.drag_started.connect(self._start_move)
        self._cards[path] = card
        if container and path not in self._collapsed:
            for j, child in enumerate(body):
                card.add_body_card(self._make_card(path + (j,), child, card.body))
        elif container:
            for j, child in enumerate(body):  # hidden children still need their problems indexed
                self._cards.pop(path + (j,), None)
        return card

    def _make_input_card(self, preset, parent: QWidget) -> EndCard:
        from workbench.datasets import dataset_info

        problem = None
        try:
            info = dataset_info(preset.task.dataset, preset.task.options, preset.task.base_dir)
            shape = format_shape(info.input_shape)
            desc = info.description
            subtitle = f"{info.name} · {info.task}"
        except Exception as exc:  # noqa: BLE001 - the card shows any problem with the data as text
            shape, desc, subtitle = "?", "", str(preset.task.dataset)
            problem = str(exc)
        detail = f"{desc}\nbatch {preset.task.batch_size} · validation {preset.task.val_split:g}"
        card = EndCard("input", "Input", subtitle, shape, detail, problem, parent)
        card.clicked.connect(self._card_clicked)
        return card

    def _make_output_card(self, preset, parent: QWidget) -> EndCard:
        from workbench.datasets import dataset_info
        from workbench.spec import model_outputs

        try:
            info = dataset_info(preset.task.dataset, preset.task.options, preset.task.base_dir)
            loss = preset.task.loss
            if loss == "auto":
                loss = "cross-entropy" if info.task == "classification" else "mean squared error"
            what = (f"{info.output_dim} classes" if info.task == "classification"
                    else f"{info.output_dim} target{'s' if info.output_dim != 1 else ''}")
            subtitle = f"{what} · loss: {loss}"
            expected = (model_outputs(info, preset.task),)  # one logit under loss bce
        except Exception:  # noqa: BLE001 - the card shows what it can
            subtitle, expected = "unknown dataset", None
        report = self.analysis.report if self.analysis is not None else None
        if report is None:
            shape_text = f"model gives {PENDING}"
        else:
            shape_text = f"model gives {format_shape(getattr(report, 'output_shape', None))}"
        detail = f"expects {format_shape(expected)}" if expected else ""
        others = self.analysis.other_problems if self.analysis is not None else []
        problem = "\n".join(str(p) for p in others[:3]) or None
        card = EndCard("output", "Output", subtitle, shape_text, detail, problem, parent)
        card.clicked.connect(self._card_clicked)
        return card

    def _update_footer(self) -> None:
        report = self.analysis.report if self.analysis is not None else None
        if report is None:
            self.params_label.setText(f"Parameters: {PENDING} total · {PENDING} trainable")
        else:
            self.params_label.setText(f"Parameters: {format_count(report.total_params)} total · "
                                      f"{format_count(report.trainable_params)} trainable")
        reason = self.analysis.block_reason() if self.analysis is not None else None
        self.block_label.setText(f"Cannot run: {reason}" if reason else "")
        self.block_label.setToolTip(reason or "")
        self.block_label.setVisible(bool(reason))
        self.ready_label.setVisible(not reason)
        self.ready_label.setText("Checking…" if self.analysis is None else "Ready to run")

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt API
        """Delete/Backspace remove the selected layer; Up/Down move the selection."""
        key = event.key()
        path = self.selected_layer_path()
        if key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and path is not None:
            try:
                self.document.remove_layer(path)
            except ReadOnlyError as exc:
                self.error.emit(f"Cannot edit: {exc}")
            event.accept()
            return
        if key in (Qt.Key.Key_Up, Qt.Key.Key_Down) and not event.modifiers():
            order: list[Key] = ["input", *self._cards.keys(), "output"]
            i = order.index(self._selected) if self._selected in order else 0
            i = max(0, min(len(order) - 1, i + (1 if key == Qt.Key.Key_Down else -1)))
            self.select(order[i])
            event.accept()
            return
        super().keyPressEvent(event)

    def _card_clicked(self, key: Key) -> None:
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        self.select(key, notify=True)   # a click on the selected card refreshes the inspector too

    def _on_read_only(self, flag: bool, reason: str) -> None:
        self.read_only_banner.setText(f"Read-only: {reason}" if reason else "Read-only")
        self.read_only_banner.setVisible(flag)

    def _on_selection_hint(self, path: object) -> None:
        if path is not None:
            self._selected = tuple(path)  # applied (and announced) by the rebuild that follows the change

    def _start_move(self, path: LayerPath) -> None:
        if self.document.is_read_only():
            return
        card = self._cards.get(path)
        if card is None:
            return
        mime = QMimeData()
        mime.setData(MOVE_MIME, json.dumps(list(path)).encode("utf-8"))
        drag = QDrag(card)
        drag.setMimeData(mime)
        drag.setPixmap(card.grab().scaledToWidth(min(card.width(), 360),
                                                  Qt.TransformationMode.SmoothTransformation))
        drag.exec(Qt.DropAction.MoveAction)

    def _rect(self, widget: QWidget):
        top_left = widget.mapTo(self.canvas, QPoint(0, 0))
        return top_left.x(), top_left.y(), widget.width(), widget.height()

    def _locate(self, cards: list[LayerCard], parent: LayerPath, pos: QPoint,
                body: QWidget | None = None) -> tuple[LayerPath, int, tuple[int, int, int]]:
        gap = 4
        for i, card in enumerate(cards):
            x, y, w, h = self._rect(card)
            if pos.y() < y + h:
                if card.container and card.body_visible():
                    bx, by, bw, bh = self._rect(card.body)
                    if by <= pos.y() < by + bh:
                        if not card.body_cards:
                            return card.path, 0, (bx + 8, by + bh // 2, bw - 16)
                        return self._locate(card.body_cards, card.path, pos, card.body)
                    if pos.y() < by:
                        return parent, i, (x, y - gap, w)
                    return parent, i + 1, (x, y + h + gap, w)
                if pos.y() < y + h / 2:
                    return parent, i, (x, y - gap, w)
                return parent, i + 1, (x, y + h + gap, w)
        if cards:
            x, y, w, h = self._rect(cards[-1])
            return parent, len(cards), (x, y + h + gap, w)
        if self.input_card is not None:
            x, y, w, h = self._rect(self.input_card)
            return parent, 0, (x, y + h + gap, w)
        return parent, 0, (0, 0, self.canvas.width())
