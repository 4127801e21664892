"""The inspector: a form for the selected layer, generated from its registry schema, plus the
task / training / monitor sections of the preset.

Widgets carry the schema's ranges, so a value outside a parameter's range cannot be typed
(spin boxes clamp; choices are combo boxes). Parameters that also accept ``"same"``/``"classes"``
get a combo box beside the number. Every edit goes straight to the document as an undoable,
mergeable command. Widget object names, for tests and automation: ``param_<name>``,
``mode_<name>`` (the placeholder combo), ``trainableCheck``, ``field_<section>_<name>``.

Ctrl+Z / Ctrl+Y (Ctrl+Shift+Z) typed in a field undo and redo the document, as everywhere else in
the window; a spin box whose text was typed but not yet committed (Enter / leaving the field) first
just forgets that text.
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeySequence, QValidator
from PySide6.QtWidgets import (QAbstractSpinBox, QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QFrame,
                               QGridLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QScrollArea, QSizePolicy,
                               QSpinBox, QToolButton, QVBoxLayout, QWidget)

from ui.data_controls import DataControls
from ui.document import PresetDocument, ReadOnlyError

INT_MAX = 2_147_483_647
#: The device choice "all N GPUs (DDP)" (the preset gets ``cuda``; the window runs N processes).
DDP_DEVICE = "ddp"
NUMBER = "number"
#: What a nullable number shows when it is not set (null in the preset).
NOT_SET = "all"


# ------------------------------------------------------------------------------------ value widgets
class NumberSpin(QDoubleSpinBox):
    """A double spin box that shows values compactly (``0.001``, ``1e-08``), accepts scientific
    notation, and with ``log=True`` steps ×/÷ along 1-2-5 (1e-4 → 2e-4 → 5e-4 → 1e-3)."""

    def __init__(self, lo: float, hi: float, *, log: bool = False, step: float = 0.1, integer: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._log = log
        self._integer = integer  # whole numbers beyond a QSpinBox's 32-bit range (a seed up to 2³² − 1)
        self.setDecimals(0 if integer else 12)
        self.setRange(lo, hi)
        self.setSingleStep(step)
        self.setKeyboardTracking(False)
        self.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.setCorrectionMode(QDoubleSpinBox.CorrectionMode.CorrectToNearestValue)

    def textFromValue(self, value: float) -> str:  # noqa: N802 - Qt API
        return str(int(round(value))) if self._integer else f"{value:.6g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802 - Qt API
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):  # noqa: D401 - Qt API
        s = text.strip()
        if s in ("", "-", "+", ".", "-.", "+.") or s.lower().endswith(("e", "e-", "e+")):
            return QValidator.State.Intermediate, text, pos
        try:
            v = float(s)
        except ValueError:
            return QValidator.State.Invalid, text, pos
        if not math.isfinite(v):
            return QValidator.State.Invalid, text, pos
        if v < self.minimum() or v > self.maximum():
            return QValidator.State.Intermediate, text, pos
        return QValidator.State.Acceptable, text, pos

    def fixup(self, text: str) -> str:
        try:
            v = float(text.strip())
        except ValueError:
            return self.textFromValue(self.value())
        return self.textFromValue(min(max(v, self.minimum()), self.maximum()))

    def stepBy(self, steps: int) -> None:  # noqa: N802 - Qt API
        if not self._log:
            super().stepBy(steps)
            return
        v = self.value()
        if v <= 0:
            v = max(self.minimum(), 1e-6) if steps > 0 else self.minimum()
            self.setValue(v)
            return
        ladder = (1.0, 2.0, 5.0)
        exp = math.floor(math.log10(v) + 1e-9)
        mant = v / 10 ** exp
        idx = min(range(3), key=lambda k: abs(ladder[k] - mant))
        pos = exp * 3 + idx + steps
        e, k = divmod(pos, 3)
        self.setValue(min(max(ladder[k] * 10 ** e, self.minimum()), self.maximum()))


class ValueEditor(QWidget):
    """One editable value; :attr:`edited` carries the new JSON value."""

    edited = Signal(object)

    def set_value(self, value: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class NumberEditor(ValueEditor):
    """Int or float spin box; with ``placeholders`` a combo (number / same / classes) beside it.

    The spin box's range is the schema's. ``nullable``: one step below the minimum reads
    :data:`NOT_SET` and means null (``limit_train``: all samples). A value from the document that
    lies outside the range (a preset written by hand) is shown as it is, the range widened to hold
    it, never clamped: validation names the problem, and nothing is written back."""

    def __init__(self, name: str, kind: str, lo: float | None, hi: float | None,
                 placeholders: Sequence[str] = (), *, log: bool = False, step: float | None = None,
                 nullable: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = kind
        self.nullable = nullable
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        big = kind == "int" and ((hi is not None and hi > INT_MAX) or (lo is not None and lo < -INT_MAX))
        if kind == "int" and not big:
            spin: QSpinBox | NumberSpin = QSpinBox(self)
            self._lo = int(lo) if lo is not None else -INT_MAX
            self._hi = int(min(hi, INT_MAX)) if hi is not None else INT_MAX
            spin.setKeyboardTracking(False)
            spin.setAlignment(Qt.AlignmentFlag.AlignRight)
            spin.setSingleStep(int(step or 1))
        else:
            self._lo = lo if lo is not None else -1e12
            self._hi = hi if hi is not None else 1e12
            spin = NumberSpin(self._lo, self._hi, log=log, step=step or (1 if kind == "int" else 0.1),
                              integer=kind == "int", parent=self)
        self._null_at = self._lo - (step or 1) if nullable else None
        self.spin = spin
        self._set_range(self._lo, self._hi)
        if nullable:
            spin.setSpecialValueText(NOT_SET)
        spin.valueChanged.connect(lambda v: self._emit())
        spin.setObjectName(f"param_{name}")
        spin.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        spin.setMinimumWidth(70)  # the range's widest number would otherwise set a huge minimum
        row.addWidget(spin, 1)
        self.mode: QComboBox | None = None
        if placeholders:
            self.mode = QComboBox(self)
            self.mode.setObjectName(f"mode_{name}")
            self.mode.addItem(NUMBER)
            for p in placeholders:
                self.mode.addItem(p)
            self.mode.setToolTip("a number, or " + " / ".join(f'"{p}"' for p in placeholders)
                                 + " (resolved from the input shape / the dataset)")
            self.mode.currentIndexChanged.connect(lambda i: self._emit())
            row.addWidget(self.mode)

    def _set_range(self, lo: float, hi: float) -> None:
        low = self._null_at if self._null_at is not None else lo
        if isinstance(self.spin, QSpinBox):
            self.spin.setRange(int(max(low, -INT_MAX)), int(min(hi, INT_MAX)))
        else:
            self.spin.setRange(low, hi)

    def value(self) -> Any:
        if self.mode is not None and self.mode.currentText() != NUMBER:
            return self.mode.currentText()
        if self.nullable and self.spin.value() == self.spin.minimum():
            return None
        return int(round(self.spin.value())) if self.kind == "int" else float(self.spin.value())

    def set_value(self, value: Any) -> None:
        self.spin.blockSignals(True)
        if self.mode is not None:
            self.mode.blockSignals(True)
        try:
            if isinstance(value, str) and self.mode is not None and self.mode.findText(value) >= 0:
                self.mode.setCurrentText(value)
                self.spin.setEnabled(False)
            else:
                if self.mode is not None:
                    self.mode.setCurrentText(NUMBER)
                self.spin.setEnabled(True)
                if value is None and self.nullable:
                    self._set_range(self._lo, self._hi)
                    self.spin.setValue(self.spin.minimum())
                elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
                        and abs(value) < 1e300:
                    self._set_range(min(self._lo, value), max(self._hi, value))  # shown as it is
                    self.spin.setValue(int(value) if self.kind == "int" and isinstance(self.spin, QSpinBox)
                                       else float(value))
        finally:
            self.spin.blockSignals(False)
            if self.mode is not None:
                self.mode.blockSignals(False)

    def _emit(self) -> None:
        self.spin.setEnabled(self.mode is None or self.mode.currentText() == NUMBER)
        self.edited.emit(self.value())


class BoolEditor(ValueEditor):
    def __init__(self, name: str, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.check = QCheckBox(text, self)
        self.check.setObjectName(f"param_{name}")
        self.check.toggled.connect(lambda v: self.edited.emit(bool(v)))
        row.addWidget(self.check)

    def set_value(self, value: Any) -> None:
        self.check.blockSignals(True)
        self.check.setChecked(bool(value))
        self.check.blockSignals(False)


class ChoiceEditor(ValueEditor):
    def __init__(self, name: str, choices: Sequence[Any], labels: Sequence[str] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.combo = QComboBox(self)
        self.combo.setObjectName(f"param_{name}")
        self.combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.combo.setMinimumWidth(70)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(6)
        self._values: list[Any] = []
        self.set_choices(choices, labels)
        self.combo.currentIndexChanged.connect(self._changed)
        row.addWidget(self.combo)

    def set_choices(self, choices: Sequence[Any], labels: Sequence[str] | None = None) -> None:
        self.combo.blockSignals(True)
        index = self.combo.currentIndex()
        current = self._values[index] if 0 <= index < len(self._values) else None
        self.combo.clear()
        self._values = list(choices)
        for i, c in enumerate(choices):
            self.combo.addItem(labels[i] if labels else str(c))
        if current in self._values:
            self.combo.setCurrentIndex(self._values.index(current))
        self.combo.blockSignals(False)

    def set_value(self, value: Any) -> None:
        self.combo.blockSignals(True)
        if value not in self._values:
            self._values.append(value)
            self.combo.addItem(f"{value} (not available here)")
        self.combo.setCurrentIndex(self._values.index(value))
        self.combo.blockSignals(False)

    def _changed(self, index: int) -> None:
        if 0 <= index < len(self._values):
            self.edited.emit(self._values[index])


class TextEditor(ValueEditor):
    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.line = QLineEdit(self)
        self.line.setObjectName(f"param_{name}")
        self.line.textEdited.connect(lambda t: self.edited.emit(t))
        row.addWidget(self.line)

    def set_value(self, value: Any) -> None:
        if self.line.text() != str(value):
            self.line.blockSignals(True)
            self.line.setText("" if value is None else str(value))
            self.line.blockSignals(False)


class ListEditor(ValueEditor):
    """A list of numbers (or words) typed as ``0.5, 0.75``; emitted when the text parses."""

    def __init__(self, name: str, item_kind: str = "float", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.item_kind = item_kind
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.line = QLineEdit(self)
        self.line.setObjectName(f"param_{name}")
        self.line.setPlaceholderText("comma-separated")
        self.line.editingFinished.connect(self._commit)
        row.addWidget(self.line)

    def parse(self, text: str) -> list[Any] | None:
        parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
        if self.item_kind not in ("float", "int"):
            return parts
        try:
            return [int(p) if self.item_kind == "int" else float(p) for p in parts]
        except ValueError:
            return None

    def set_value(self, value: Any) -> None:
        text = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value) \
            if isinstance(value, list) else str(value)
        if self.line.text() != text:
            self.line.blockSignals(True)
            self.line.setText(text)
            self.line.blockSignals(False)
        self.line.setStyleSheet("")

    def _commit(self) -> None:
        value = self.parse(self.line.text())
        if value is None:
            self.line.setStyleSheet("border: 1px solid #c0392b;")
            self.line.setToolTip("numbers separated by commas, e.g. 0.5, 0.75")
            return
        self.line.setStyleSheet("")
        self.edited.emit(value)


class MultiChoiceEditor(ValueEditor):
    """One check box per choice; emits the checked choices (the order kept, new ones appended)."""

    def __init__(self, name: str, choices: Sequence[Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)  # two columns: the inspector stays narrow
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(2)
        self._value: list[Any] = []
        self.checks: dict[Any, QCheckBox] = {}
        for i, choice in enumerate(choices):
            box = QCheckBox(str(choice), self)
            box.setObjectName(f"param_{name}_{choice}")
            box.toggled.connect(lambda on, c=choice: self._toggled(c, on))
            grid.addWidget(box, i // 2, i % 2)
            self.checks[choice] = box

    def set_value(self, value: Any) -> None:
        self._value = list(value) if isinstance(value, list) else []
        for choice, box in self.checks.items():
            box.blockSignals(True)
            box.setChecked(choice in self._value)
            box.blockSignals(False)

    def _toggled(self, choice: Any, on: bool) -> None:
        value = [c for c in self._value if c != choice] + ([choice] if on else [])
        self._value = value
        self.edited.emit(list(value))


class PathEditor(ValueEditor):
    """A file or folder name with a Browse… button (the chooser: :mod:`ui.data_controls`)."""

    def __init__(self, name: str, folder: bool = False, file_filter: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.folder = folder
        self.file_filter = file_filter or "All files (*)"
        self.start_dir: Callable[[], str] = lambda: ""
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        self.line = QLineEdit(self)
        self.line.setObjectName(f"param_{name}")
        self.line.editingFinished.connect(lambda: self.edited.emit(self.line.text()))
        self.browse = QToolButton(self)
        self.browse.setObjectName(f"browse_{name}")
        self.browse.setText("…")
        self.browse.setToolTip("choose the folder" if folder else "choose the file")
        self.browse.clicked.connect(self._browse)
        row.addWidget(self.line, 1)
        row.addWidget(self.browse)

    def set_value(self, value: Any) -> None:
        text = "" if value is None else str(value)
        if self.line.text() != text:
            self.line.blockSignals(True)
            self.line.setText(text)
            self.line.blockSignals(False)

    def _browse(self) -> None:
        from ui import data_controls

        start = self.start_dir()
        chosen = data_controls.ask_folder(self, "Choose the folder", start) if self.folder else \
            data_controls.ask_open_file(self, "Choose the file", self.file_filter, start)
        if chosen:
            self.edited.emit(chosen)  # the inspector makes it relative to the preset's folder


def editor_for_param(spec) -> ValueEditor:
    """The widget for a :class:`~workbench.params.ParamSpec` (a layer parameter, a task/train/monitor
    field, an option): its kind, range, choices and step come from the schema."""
    if spec.kind == "bool":
        return BoolEditor(spec.name)
    if spec.kind == "choice":
        return ChoiceEditor(spec.name, spec.choices)
    if spec.kind == "str":
        return TextEditor(spec.name)
    if spec.kind == "path":
        return PathEditor(spec.name, spec.folder, spec.file_filter)
    if spec.kind == "list":
        item = spec.item
        if item is not None and item.kind == "choice":
            return MultiChoiceEditor(spec.name, item.choices)
        return ListEditor(spec.name, item.kind if item is not None else "str")
    log = spec.log or (spec.kind == "float" and spec.min is not None and spec.min >= 0 and (spec.max or 0) <= 1
                       and isinstance(spec.default, float) and 0 < spec.default < 0.01)
    return NumberEditor(spec.name, spec.kind, spec.min, spec.max, spec.placeholders, log=log, step=spec.step,
                        nullable=spec.nullable)


def tooltip_for(spec) -> str:
    """The help line with the range, as every field's tooltip says it."""
    tip = spec.help
    if spec.min is not None or spec.max is not None:
        tip += f" ({spec.range_text().strip()})"
    if spec.log:
        tip += "; arrows step 1-2-5 (×2 / ×2.5)"
    return tip


# ------------------------------------------------------------------------------- section field table
def _section_fields() -> list[tuple]:
    """(section, name, label, make, tip) for every task/train/monitor field with a value of its own,
    in the schema's order (:func:`workbench.sections.section_schema`); object fields (the dataset's,
    optimiser's and augmentations' options) get rows of their own schema instead."""
    from workbench.sections import SECTIONS, section_schema

    out = []
    for section, cls in SECTIONS.items():
        for name, spec in section_schema(cls).items():
            if spec.kind == "object":
                continue
            out.append((section, name, spec.title, lambda spec=spec: editor_for_param(spec), tooltip_for(spec)))
    return out


class _DocumentUndoKeys(QObject):
    """Event filter on the inspector's fields: Undo/Redo keys go to the window's (document) undo
    instead of a spin box's or line edit's own text undo, which made Ctrl+Z look dead after an edit."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if event.type() != QEvent.Type.ShortcutOverride:
            return False
        undo = event.matches(QKeySequence.StandardKey.Undo)
        if not undo and not event.matches(QKeySequence.StandardKey.Redo) and not (
                event.key() == Qt.Key.Key_Y and event.modifiers() == Qt.KeyboardModifier.ControlModifier):
            return False
        spin = obj if isinstance(obj, QAbstractSpinBox) else None
        if undo and spin is not None and _pending_text(spin):
            # Typed but not committed: forget the typing (the document never saw it).
            spin.lineEdit().setText(spin.textFromValue(spin.value()))  # type: ignore[attr-defined]
            event.accept()
            return True
        event.ignore()   # not overridden: the window's Undo/Redo shortcut fires
        return True


def _pending_text(spin: QAbstractSpinBox) -> bool:
    """Whether the spin box shows typed text that differs from its committed value."""
    try:
        return spin.lineEdit().text().strip() != spin.textFromValue(spin.value()).strip()  # type: ignore[attr-defined]
    except AttributeError:
        return False


def _group(title: str, parent: QWidget) -> tuple[QGroupBox, QFormLayout]:
    box = QGroupBox(title, parent)
    form = QFormLayout(box)
    form.setContentsMargins(10, 8, 10, 10)
    form.setHorizontalSpacing(10)
    form.setVerticalSpacing(6)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return box, form


class _OptionGroup:
    """Rows in ``form`` right after ``anchor``'s row for options whose schema depends on another
    field (``key(preset)``: the dataset, the optimiser, the augmentations); rebuilt when the key
    changes. Widgets are named ``field_<prefix>_<option>``."""

    def __init__(self, inspector: Inspector, form: QFormLayout, anchor: QWidget, prefix: str, *,
                 key: Callable[[Any], Any], schema: Callable[[Any], dict[str, Any]],
                 values: Callable[[Any], dict[str, Any]], on_edit: Callable[[str, Any], None]) -> None:
        self.inspector = inspector
        self.form = form
        self.anchor = anchor
        self.prefix = prefix
        self.key, self.schema, self.values, self.on_edit = key, schema, values, on_edit
        self.editors: dict[str, ValueEditor] = {}
        self._key: Any = object()

    def sync(self, preset: Any) -> None:
        key = self.key(preset)
        schema = self.schema(preset)
        if key != self._key:
            for ed in self.editors.values():
                self.form.removeRow(ed)
            self.editors = {}
            row = self.form.getWidgetPosition(self.anchor)[0] + 1
            for name, spec in schema.items():
                ed = editor_for_param(spec)
                for child in ed.findChildren(QWidget):
                    if child.objectName().startswith(f"param_{spec.name}"):
                        child.setObjectName(child.objectName().replace(f"param_{spec.name}",
                                                                       f"field_{self.prefix}_{name}", 1))
                ed.setToolTip(tooltip_for(spec))
                ed.edited.connect(lambda v, n=name: self.on_edit(n, v))
                label = QLabel(f"  {spec.title}")
                label.setToolTip(tooltip_for(spec))
                self.form.insertRow(row + len(self.editors), label, ed)
                self.inspector._watch_undo_keys(ed)  # Ctrl+Z in the field undoes the document
                self.editors[name] = ed
            self._key = key
        given = self.values(preset)
        for name, ed in self.editors.items():
            ed.set_value(given.get(name, schema[name].default))


class Inspector(QScrollArea):
    """``objectName`` ``inspector``. Call :meth:`show_selection` when the editor's selection changes;
    it follows the document by itself."""

    #: Emitted with a message when an edit was refused (read-only) or failed.
    error = Signal(str)

    def __init__(self, document: PresetDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("inspector")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.document = document
        self._selection: Any = None
        self._layer_key: tuple | None = None
        self.layer_editors: dict[str, ValueEditor] = {}
        self.field_editors: dict[tuple[str, str], ValueEditor] = {}
        self.option_editors: dict[str, ValueEditor] = {}
        self._options_dataset: str | None = None
        #: processes of the next run: the number of GPUs when "all N GPUs (DDP)" is chosen, else 0
        self.ddp_processes = 0
        self._gpu_count = 0

        body = QWidget()
        body.setObjectName("inspectorBody")
        self._col = QVBoxLayout(body)
        self._col.setContentsMargins(8, 8, 8, 8)
        self._col.setSpacing(10)
        self.banner = QLabel(body)
        self.banner.setObjectName("readOnlyBanner")
        self.banner.setWordWrap(True)
        self.banner.hide()
        self._col.addWidget(self.banner)

        self.layer_box, self.layer_form = _group("Layer", body)
        self.layer_title = QLabel(body)
        self.layer_title.setObjectName("cardTitle")
        self.layer_summary = QLabel(body)
        self.layer_summary.setObjectName("cardMeta")
        self.layer_summary.setWordWrap(True)
        self._col.addWidget(self.layer_box)

        self.section_boxes: dict[str, QGroupBox] = {}
        forms: dict[str, QFormLayout] = {}
        for section, title in (("task", "Task"), ("train", "Training"), ("monitor", "Monitor")):
            box, form = _group(title, body)
            self.section_boxes[section] = box
            forms[section] = form
            self._col.addWidget(box)
        for section, name, label, make, tip in _section_fields():
            ed = make()
            for child in ed.findChildren(QWidget):
                if child.objectName() == f"param_{name}":
                    child.setObjectName(f"field_{section}_{name}")
            ed.setObjectName(f"fieldEditor_{section}_{name}")
            if tip:
                ed.setToolTip(tip)
            ed.edited.connect(lambda v, s=section, n=name: self._set_field(s, n, v))
            forms[section].addRow(label, ed)
            self.field_editors[(section, name)] = ed
        self.options_form = forms["task"]
        # the dataset row holds Import…; the data folder and Download rows follow the dataset's options
        self.data_controls = DataControls(body)
        self.data_controls.import_requested.connect(self._import_data)
        self.data_controls.data_root_changed.connect(lambda _folder: self.refresh())
        dataset_ed = self.field_editors[("task", "dataset")]
        row = self.options_form.getWidgetPosition(dataset_ed)[0]
        self.options_form.insertRow(row + 1, "", self.data_controls.import_button)
        self.options_form.insertRow(row + 2, self.data_controls)
        self.option_groups = self._make_option_groups(forms)
        self._col.addStretch(1)
        self.setWidget(body)
        self._undo_keys = _DocumentUndoKeys(self)
        self._watch_undo_keys(body)
        self._body = body
        body.installEventFilter(self)   # its layout changed (another form): fit the width again

        document.changed.connect(self.refresh)
        document.read_only_changed.connect(self._on_read_only)
        self._rebuild_layer_form()
        self.refresh()

    # ---------------------------------------------------------------------------------- public API
    def show_selection(self, key: Any) -> None:
        """Show the form for ``key`` (a layer path tuple, "input", "output" or None)."""
        self._selection = tuple(key) if isinstance(key, list) else key
        self.refresh()

    def set_settings(self, settings: Any) -> None:
        """The app's QSettings: the data folder setting lives there."""
        self.data_controls.set_settings(settings)

    def set_available_devices(self, devices: Sequence[str], gpu_count: int = 0) -> None:
        """Offer ``auto`` plus ``devices`` (``cpu`` always; ``cuda``/``mps`` when torch reports them),
        and "all N GPUs (DDP)" when ``gpu_count`` > 1 GPUs are visible: the run then trains on N
        torchrun processes, one per GPU (the preset itself says ``cuda``; see :attr:`ddp_processes`)."""
        ed = self.field_editors[("train", "device")]
        assert isinstance(ed, ChoiceEditor)
        values = ["auto"] + [d for d in devices if d != "auto"]
        self._gpu_count = int(gpu_count)
        if self._gpu_count > 1:
            ed.set_choices(values + [DDP_DEVICE], [str(v) for v in values] + [f"all {self._gpu_count} GPUs (DDP)"])
        else:
            ed.set_choices(values)
            self.ddp_processes = 0
        self._show_device()

    def _show_device(self) -> None:
        ed = self.field_editors[("train", "device")]
        device = self.document.current.train.device
        ed.set_value(DDP_DEVICE if self.ddp_processes > 1 and device == "cuda" else device)

    def layer_editor(self, name: str) -> ValueEditor:
        return self.layer_editors[name]

    def focus_field(self, section: str, name: str) -> bool:
        """Scroll to the field ``section.name`` (task, train, monitor) and give it the keyboard focus
        (a failed run's banner sends the user here); False when there is no such field."""
        if (section, name) == ("task", "download"):  # a missing data set: its Download button
            button = self.data_controls.download_button
            if self.data_controls.download_row.isHidden():
                return False
            self.ensureWidgetVisible(button, 20, 40)
            button.setFocus(Qt.FocusReason.OtherFocusReason)
            return True
        ed = self.field_editors.get((section, name))
        if ed is None:
            return False
        self.ensureWidgetVisible(ed, 20, 40)
        target = next((w for w in ed.findChildren(QWidget) if w.objectName().startswith("field_")), ed)
        target.setFocus(Qt.FocusReason.OtherFocusReason)
        if isinstance(target, QAbstractSpinBox):
            target.selectAll()
        return True

    def field_editor(self, section: str, name: str) -> ValueEditor:
        return self.field_editors[(section, name)]

    def refresh(self) -> None:
        """Bring every widget up to date with the document (rebuilding the layer form if needed)."""
        preset = self.document.current
        path = self._selection if isinstance(self._selection, tuple) else None
        if path is not None and not self.document.has_layer(path):
            path = None
            self._selection = None
        key = (path, self.document.layer(path).type) if path is not None else (self._selection,)
        if key != self._layer_key:
            self._rebuild_layer_form()
        if path is not None:
            layer = self.document.layer(path)
            from workbench.registry import REGISTRY

            entry = REGISTRY.get(layer.type)
            for name, ed in self.layer_editors.items():
                if name == "__trainable__":
                    ed.set_value(layer.trainable)
                    continue
                default = entry.param(name).default if entry is not None else None
                ed.set_value(layer.params.get(name, default))
        for (section, name), ed in self.field_editors.items():
            ed.set_value(getattr(getattr(preset, section), name))
        if preset.train.device != "cuda":
            self.ddp_processes = 0  # another device chosen (an undo, another preset): one process again
        self._show_device()
        self._sync_options()
        self._fit_width()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if obj is getattr(self, "_body", None) and event.type() == QEvent.Type.LayoutRequest:
            self._fit_width()
        return super().eventFilter(obj, event)

    def _fit_width(self) -> None:
        """Never narrower than the form (the dock would clip its fields: there is no horizontal
        scroll bar), whatever layer form is shown."""
        body = getattr(self, "_body", None)
        if body is None:
            return
        need = body.minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth()
        if self.minimumWidth() != need:
            self.setMinimumWidth(need)

    # ---------------------------------------------------------------------------------- internals
    def _clear_form(self, form: QFormLayout) -> None:
        while form.rowCount():
            form.removeRow(0)

    def _rebuild_layer_form(self) -> None:
        self._clear_form(self.layer_form)
        self.layer_editors = {}
        # removeRow deleted the title/summary labels too: recreate them.
        self.layer_title = QLabel(self.layer_box)
        self.layer_title.setObjectName("cardTitle")
        self.layer_summary = QLabel(self.layer_box)
        self.layer_summary.setObjectName("cardMeta")
        self.layer_summary.setWordWrap(True)
        sel = self._selection
        path = sel if isinstance(sel, tuple) and self.document.has_layer(sel) else None
        if path is None:
            self._layer_key = (sel,)
            if sel == "input":
                self.layer_box.setTitle("Input")
                self.layer_summary.setText("The input comes from the dataset: pick it in Task below.")
            elif sel == "output":
                self.layer_box.setTitle("Output")
                self.layer_summary.setText("Classes or targets come from the dataset; the loss is in Task below.")
            else:
                self.layer_box.setTitle("Layer")
                self.layer_summary.setText("Select a card in the model to edit its parameters.")
            self.layer_form.addRow(self.layer_summary)
            return
        layer = self.document.layer(path)
        self._layer_key = (path, layer.type)
        from workbench.registry import REGISTRY

        entry = REGISTRY.get(layer.type)
        self.layer_box.setTitle("Layer #" + ".".join(str(i) for i in path))
        self.layer_title.setText(layer.type + (f"  ·  {entry.family}" if entry else ""))
        self.layer_form.addRow(self.layer_title)
        if entry is None:
            self.layer_summary.setText(f"Unknown layer type '{layer.type}': delete it or fix the preset file.")
            self.layer_form.addRow(self.layer_summary)
            return
        self.layer_summary.setText(entry.summary)
        self.layer_form.addRow(self.layer_summary)
        for spec in entry.params:
            ed = editor_for_param(spec)
            tip = tooltip_for(spec)
            ed.setToolTip(tip)
            ed.edited.connect(lambda v, n=spec.name: self._set_param(n, v))
            label = QLabel(spec.name, self.layer_box)
            label.setToolTip(tip)
            self.layer_form.addRow(label, ed)
            self.layer_editors[spec.name] = ed
        trainable = BoolEditor("trainable", "trainable")
        trainable.check.setObjectName("trainableCheck")
        trainable.setToolTip("frozen layers keep their initial weights (requires_grad False)")
        trainable.edited.connect(self._set_trainable)
        self.layer_form.addRow("", trainable)
        self.layer_editors["__trainable__"] = trainable
        self._watch_undo_keys(self.layer_box)

    def _make_option_groups(self, forms: dict[str, QFormLayout]) -> list[_OptionGroup]:
        """Rows of the options whose schema depends on another field: the dataset's (after the
        dataset row), the optimiser's (after the optimiser row), each augmentation's (after the
        augmentations row)."""
        from workbench.datasets import DATASETS
        from workbench.sections import AUGMENT_OPTIONS, OPTIMIZER_OPTIONS

        def dataset_schema(p: Any) -> dict[str, Any]:
            entry = DATASETS.get(p.task.dataset) if isinstance(p.task.dataset, str) else None
            return entry.option_schema if entry is not None else {}

        def augment_schema(p: Any) -> dict[str, Any]:
            used = p.task.augment if isinstance(p.task.augment, list) else []
            return {f"{a}.{k}": replace(spec, label=f"{a} {spec.title}") for a in used if a in AUGMENT_OPTIONS
                    for k, spec in AUGMENT_OPTIONS[a].items()}

        def augment_values(p: Any) -> dict[str, Any]:
            given = p.task.augment_options if isinstance(p.task.augment_options, dict) else {}
            return {f"{a}.{k}": v for a, opts in given.items() if isinstance(opts, dict) for k, v in opts.items()}

        return [
            _OptionGroup(self, forms["task"], self.data_controls.import_button, "options",
                         key=lambda p: p.task.dataset, schema=dataset_schema,
                         values=lambda p: p.task.options if isinstance(p.task.options, dict) else {},
                         on_edit=self._set_option),
            _OptionGroup(self, forms["train"], self.field_editors[("train", "optimizer")], "optimizer_options",
                         key=lambda p: p.train.optimizer,
                         schema=lambda p: OPTIMIZER_OPTIONS.get(p.train.optimizer, {})
                         if isinstance(p.train.optimizer, str) else {},
                         values=lambda p: p.train.optimizer_options if isinstance(p.train.optimizer_options, dict)
                         else {},
                         on_edit=self._set_optimizer_option),
            _OptionGroup(self, forms["task"], self.field_editors[("task", "augment")], "augment_options",
                         key=lambda p: tuple(p.task.augment) if isinstance(p.task.augment, list) else (),
                         schema=augment_schema, values=augment_values, on_edit=self._set_augment_option),
        ]

    def _sync_options(self) -> None:
        """The option rows follow the dataset, optimiser and augmentations; the data rows the dataset."""
        preset = self.document.current
        for group in self.option_groups:
            group.sync(preset)
        self.option_editors = self.option_groups[0].editors
        self.data_controls.show_for(preset)
        entry_path = [ed for ed in self.option_editors.values() if isinstance(ed, PathEditor)]
        for ed in entry_path:
            base = preset.task.base_dir
            ed.start_dir = lambda base=base: str(base) if base else ""

    def _watch_undo_keys(self, root: QWidget) -> None:
        for w in root.findChildren(QWidget):
            if isinstance(w, (QAbstractSpinBox, QLineEdit)) and not w.property("_undoKeys"):
                w.setProperty("_undoKeys", True)
                w.installEventFilter(self._undo_keys)

    def _guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except ReadOnlyError as exc:
            self.error.emit(f"Cannot edit: {exc}")
            self.refresh()
        except Exception as exc:  # noqa: BLE001 - nothing typed into the inspector may crash the app
            self.error.emit(f"Edit failed: {type(exc).__name__}: {exc}")
            self.refresh()

    def _set_param(self, name: str, value: Any) -> None:
        path = self._selection
        if isinstance(path, tuple):
            self._guard(lambda: self.document.set_layer_param(path, name, value))

    def _set_trainable(self, value: bool) -> None:
        path = self._selection
        if isinstance(path, tuple):
            self._guard(lambda: self.document.set_layer_trainable(path, value))

    def _set_field(self, section: str, name: str, value: Any) -> None:
        """Set a field; a new dataset, optimiser or augmentation list keeps only the options that
        still apply (one undoable edit)."""
        from workbench.datasets import DATASETS
        from workbench.sections import OPTIMIZER_OPTIONS

        if (section, name) == ("train", "device"):
            # "all N GPUs (DDP)": the preset trains on cuda, N processes (a choice of this window's runs)
            self.ddp_processes = self._gpu_count if value == DDP_DEVICE else 0
            value = "cuda" if value == DDP_DEVICE else value
            if value == self.document.current.train.device:
                self._show_device()
                return
        p = self.document.current
        follow: dict[str, Any] = {}
        if (section, name) == ("task", "dataset") and isinstance(p.task.options, dict):
            entry = DATASETS.get(value)
            keep = entry.option_schema if entry is not None else {}
            follow["options"] = {k: v for k, v in p.task.options.items() if k in keep}
        elif (section, name) == ("train", "optimizer") and isinstance(p.train.optimizer_options, dict):
            keep = OPTIMIZER_OPTIONS.get(value, {})
            follow["optimizer_options"] = {k: v for k, v in p.train.optimizer_options.items() if k in keep}
        elif (section, name) == ("task", "augment") and isinstance(p.task.augment_options, dict):
            follow["augment_options"] = {k: v for k, v in p.task.augment_options.items() if k in (value or [])}
        if follow and any(getattr(getattr(p, section), k) != v for k, v in follow.items()):
            self._guard(lambda: self.document.set_fields(section, {name: value, **follow}))
        else:
            self._guard(lambda: self.document.set_field(section, name, value))

    def _set_option(self, name: str, value: Any) -> None:
        from workbench.datasets import DATASETS, portable_path

        p = self.document.current
        entry = DATASETS.get(p.task.dataset) if isinstance(p.task.dataset, str) else None
        if entry is not None and name in entry.path_options and isinstance(value, str) and value.strip() \
                and Path(value).expanduser().is_absolute():
            value = portable_path(value, p.task.base_dir)  # a chosen file: relative to the preset when inside
        self._guard(lambda: self.document.set_task_option(name, value))

    def _set_optimizer_option(self, name: str, value: Any) -> None:
        current = self.document.current.train.optimizer_options
        new = {**(current if isinstance(current, dict) else {}), name: value}
        self._guard(lambda: self.document.set_field("train", "optimizer_options", new))

    def _set_augment_option(self, key: str, value: Any) -> None:
        augmentation, name = key.split(".", 1)
        current = self.document.current.task.augment_options
        new = {k: dict(v) for k, v in (current if isinstance(current, dict) else {}).items() if isinstance(v, dict)}
        new.setdefault(augmentation, {})[name] = value
        self._guard(lambda: self.document.set_field("task", "augment_options", new))

    def _import_data(self, dataset: str, options: dict) -> None:
        self._guard(lambda: self.document.set_fields("task", {"dataset": dataset, "options": dict(options)},
                                                     text=f"Import {dataset} data"))

    def _on_read_only(self, flag: bool, reason: str) -> None:
        self.banner.setText(f"Read-only: {reason}" if reason else "Read-only")
        self.banner.setVisible(flag)
        self.layer_box.setEnabled(not flag)
        for box in self.section_boxes.values():
            box.setEnabled(not flag)

