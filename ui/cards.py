"""The cards of the model editor: one QFrame per layer, plus the input and output cards.

A card shows the layer's type, family, key parameters, output shape and parameter count; an invalid
card gets the ``invalid`` property (red border, see :mod:`ui.theme`) and the validation message.
Containers (``Residual``, ``InfiniteDepth``) hold their body's cards in a collapsible frame.
Cards are cheap, stateless views: the editor rebuilds them after every change.
"""
from __future__ import annotations

from typing import Any, Iterable

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

#: Shown instead of shapes and counts until the first shape inference (torch still loading).
PENDING = "…"


def format_shape(shape: Iterable[int] | None) -> str:
    """``(16, 12, 12)`` → ``16×12×12``; None → ``?``."""
    if shape is None:
        return "?"
    shape = tuple(shape)
    return "×".join(str(int(s)) for s in shape) if shape else "scalar"


def format_count(n: int | None) -> str:
    """Parameter count with thousands separators (``12,345``); None → ``?``."""
    return "?" if n is None else f"{int(n):,}"


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "×".join(format_value(v) for v in value)
    return str(value)


def _label(text: str, name: str, parent: QWidget, *, wrap: bool = False) -> QLabel:
    label = QLabel(text, parent)
    label.setObjectName(name)
    label.setTextFormat(Qt.TextFormat.PlainText)
    if wrap:
        label.setWordWrap(True)
    return label


class BaseCard(QFrame):
    """Common look and the click-to-select behaviour."""

    #: Emitted with the card's key (a layer path tuple, "input" or "output") when clicked.
    clicked = Signal(object)

    def __init__(self, key: object, object_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.key = key
        self.setObjectName(object_name)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self._press_pos: QPoint | None = None

    def set_selected(self, flag: bool) -> None:
        if bool(self.property("selected")) == flag:
            return
        self.setProperty("selected", flag)
        self.style().unpolish(self)
        self.style().polish(self)

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.button() == Qt.MouseButton.LeftButton:
            self._press_pos = event.position().toPoint()
            self.clicked.emit(self.key)
            event.accept()
            return
        super().mousePressEvent(event)


class EndCard(BaseCard):
    """The input card (dataset, input shape) or the output card (classes/targets, loss)."""

    def __init__(self, key: str, title: str, subtitle: str, shape_text: str, detail: str,
                 problem: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(key, "inputCard" if key == "input" else "outputCard", parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 8, 12, 8)
        lay.setSpacing(2)
        top = QHBoxLayout()
        top.setSpacing(8)
        self.title = _label(title, "cardTitle", self)
        self.subtitle = _label(subtitle, "cardFamily", self)
        self.shape = _label(shape_text, "cardShape", self)
        self.shape.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        top.addWidget(self.title)
        top.addWidget(self.subtitle)
        top.addStretch(1)
        top.addWidget(self.shape)
        lay.addLayout(top)
        self.detail = _label(detail, "cardMeta", self, wrap=True)
        lay.addWidget(self.detail)
        self.problem = _label(problem or "", "cardProblem", self, wrap=True)
        self.problem.setVisible(bool(problem))
        lay.addWidget(self.problem)
        self.setProperty("invalid", bool(problem))


class LayerCard(BaseCard):
    """One layer. ``path`` is its index path in the document; ``body_cards`` its nested cards."""

    #: Emitted with the path when the collapse toggle of a container is clicked.
    toggle_requested = Signal(object)
    #: Emitted with (path, local press position) when the user starts dragging the card.
    drag_started = Signal(object)

    def __init__(self, path: tuple[int, ...], *, type_name: str, family: str, key_params: str,
                 shape_text: str, params_text: str, trainable: bool, problem: str | None,
                 container: bool = False, collapsed: bool = False, body_count: int = 0,
                 parent: QWidget | None = None) -> None:
        super().__init__(path, "layerCard", parent)
        self.path = path
        self.type_name = type_name
        self.container = container
        self.body_cards: list[LayerCard] = []
        self.setProperty("invalid", bool(problem))
        self.setProperty("frozen", not trainable)
        self.setToolTip(problem or "")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 7, 12, 8)
        lay.setSpacing(3)

        top = QHBoxLayout()
        top.setSpacing(8)
        self.toggle: QToolButton | None = None
        if container:
            self.toggle = QToolButton(self)
            self.toggle.setObjectName("cardToggle")
            self.toggle.setAutoRaise(True)
            self.toggle.setArrowType(Qt.ArrowType.RightArrow if collapsed else Qt.ArrowType.DownArrow)
            self.toggle.setToolTip("Show the body" if collapsed else "Hide the body")
            self.toggle.clicked.connect(lambda: self.toggle_requested.emit(self.path))
            top.addWidget(self.toggle)
        self.index_label = _label(".".join(str(i) for i in path), "cardMeta", self)
        self.index_label.setMinimumWidth(18)
        self.title = _label(type_name, "cardTitle", self)
        self.family = _label(family, "cardFamily", self)
        self.params = _label(params_text, "cardMeta", self)
        self.params.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        top.addWidget(self.index_label)
        top.addWidget(self.title)
        top.addWidget(self.family)
        top.addStretch(1)
        if not trainable:
            top.addWidget(_label("frozen", "cardFamily", self))
        top.addWidget(self.params)
        lay.addLayout(top)

        mid = QHBoxLayout()
        mid.setSpacing(8)
        self.key_params = _label(key_params or "defaults", "cardKeyParams", self)
        self.key_params.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.shape = _label(shape_text, "cardShape", self)
        self.shape.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        mid.addSpacing(self.toggle.sizeHint().width() + 8 if self.toggle else 0)
        mid.addWidget(self.key_params, 1)
        mid.addWidget(self.shape)
        lay.addLayout(mid)

        self.problem = _label(problem or "", "cardProblem", self, wrap=True)
        self.problem.setVisible(bool(problem))
        lay.addWidget(self.problem)

        self.body: QFrame | None = None
        self.body_layout: QVBoxLayout | None = None
        self.placeholder: QLabel | None = None
        if container:
            self.body = QFrame(self)
            self.body.setObjectName("cardBody")
            self.body_layout = QVBoxLayout(self.body)
            self.body_layout.setContentsMargins(10, 8, 8, 8)
            self.body_layout.setSpacing(6)
            if body_count == 0:
                self.placeholder = _label("Empty body: drop layers here", "cardMeta", self.body)
                self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
                self.body_layout.addWidget(self.placeholder)
            self.body.setVisible(not collapsed)
            lay.addWidget(self.body)
            if collapsed:
                self.key_params.setText(f"{self.key_params.text()}  ·  body: {body_count} layer"
                                        f"{'s' if body_count != 1 else ''} (hidden)")

    def add_body_card(self, card: "LayerCard") -> None:
        assert self.body_layout is not None
        self.body_cards.append(card)
        self.body_layout.addWidget(card)

    def body_visible(self) -> bool:
        return self.body is not None and self.body.isVisibleTo(self)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt API
        if (self._press_pos is not None and event.buttons() & Qt.MouseButton.LeftButton
                and (event.position().toPoint() - self._press_pos).manhattanLength() >= 8):
            self._press_pos = None
            self.drag_started.emit(self.path)
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._press_pos = None
        super().mouseReleaseEvent(event)
