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
from typing import Any, Callable, Sequence

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeySequence, QValidator
from PySide6.QtWidgets import (QAbstractSpinBox, QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QFrame,
                               QGroupBox, QHBoxLayout, QLabel, QLineEdit, QScrollArea, QSizePolicy, QSpinBox,
                               QVBoxLayout, QWidget)

from ui.document import LayerPath, PresetDocument, ReadOnlyError, json_path

INT_MAX = 2_147_483_647
#: The device choice "all N GPUs (DDP)" (the preset gets ``cuda``; the window runs N processes).
DDP_DEVICE = "ddp"
NUMBER = "number"


# ------------------------------------------------------------------------------------ value widgets
class NumberSpin(QDoubleSpinBox):
    """A double spin box that shows values compactly (``0.001``, ``1e-08``), accepts scientific
    notation, and with ``log=True`` steps ×/÷ along 1-2-5 (1e-4 → 2e-4 → 5e-4 → 1e-3)."""

    def __init__(self, lo: float, hi: float, *, log: bool = False, step: float = 0.1,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._log = log
        self.setDecimals(12)
        self.setRange(lo, hi)
        self.setSingleStep(step)
        self.setKeyboardTracking(False)
        self.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.setCorrectionMode(QDoubleSpinBox.CorrectionMode.CorrectToNearestValue)

    def textFromValue(self, value: float) -> str:  # noqa: N802 - Qt API
        return f"{value:.6g}"

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
    """Int or float spin box; with ``placeholders`` a combo (number / same / classes) beside it."""

    def __init__(self, name: str, kind: str, lo: float | None, hi: float | None,
                 placeholders: Sequence[str] = (), *, log: bool = False, step: float | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = kind
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        if kind == "int":
            spin = QSpinBox(self)
            spin.setRange(int(lo) if lo is not None else -INT_MAX, int(min(hi, INT_MAX)) if hi is not None else INT_MAX)
            spin.setKeyboardTracking(False)
            spin.setAlignment(Qt.AlignmentFlag.AlignRight)
            spin.setSingleStep(int(step or 1))
            spin.valueChanged.connect(lambda v: self._emit())
        else:
            spin = NumberSpin(lo if lo is not None else -1e12, hi if hi is not None else 1e12, log=log,
                              step=step or 0.1, parent=self)
            spin.valueChanged.connect(lambda v: self._emit())
        spin.setObjectName(f"param_{name}")
        spin.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        spin.setMinimumWidth(70)  # the range's widest number would otherwise set a huge minimum
        self.spin = spin
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

    def value(self) -> Any:
        if self.mode is not None and self.mode.currentText() != NUMBER:
            return self.mode.currentText()
        return int(self.spin.value()) if self.kind == "int" else float(self.spin.value())

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
                if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                    self.spin.setValue(int(value) if self.kind == "int" else float(value))
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
        current = self._values[self.combo.currentIndex()] if 0 <= self.combo.currentIndex() < len(self._values) else None
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


def editor_for_param(spec) -> ValueEditor:
    """The widget for a registry :class:`~workbench.registry.ParamSpec`."""
    if spec.kind == "bool":
        return BoolEditor(spec.name)
    if spec.kind == "choice":
        return ChoiceEditor(spec.name, spec.choices)
    if spec.kind == "str":
        return TextEditor(spec.name)
    log = spec.kind == "float" and spec.min is not None and spec.min >= 0 and (spec.max or 0) <= 1 \
        and isinstance(spec.default, float) and 0 < spec.default < 0.01
    return NumberEditor(spec.name, spec.kind, spec.min, spec.max, spec.placeholders, log=log)


# ------------------------------------------------------------------------------- section field table
def _f(section: str, name: str, label: str, make: Callable[[], ValueEditor], tip: str = "") -> tuple:
    return section, name, label, make, tip


def _section_fields() -> list[tuple]:
    from workbench import spec as S
    from workbench.catalog import DATASET_NAMES

    def choice(name, values):
        return lambda: ChoiceEditor(name, values)

    def num(name, kind, lo, hi, log=False, step=None):
        return lambda: NumberEditor(name, kind, lo, hi, log=log, step=step)

    return [
        _f("task", "dataset", "Dataset", choice("dataset", list(DATASET_NAMES)), "what to learn"),
        _f("task", "batch_size", "Batch size", num("batch_size", "int", 1, 65536), "samples per optimiser step"),
        _f("task", "val_split", "Validation split", num("val_split", "float", 0.0, 0.9, step=0.05),
           "fraction of the training data held out for validation (0 = use the test split)"),
        _f("task", "loss", "Loss", choice("loss", list(getattr(S, "LOSSES", ("auto", "cross_entropy", "mse")))),
           "auto: cross-entropy for classification, MSE for regression"),
        _f("task", "normalize", "Normalise inputs", lambda: BoolEditor("normalize"), "standardise inputs"),
        _f("train", "epochs", "Epochs", num("epochs", "int", 1, 100000), "passes over the training set"),
        _f("train", "optimizer", "Optimiser", choice("optimizer", list(getattr(S, "OPTIMIZERS", ("sgd", "adam", "adamw", "adadelta"))))),
        _f("train", "lr", "Learning rate", num("lr", "float", 1e-7, 10.0, log=True), "arrows step 1-2-5 (×2/×2.5)"),
        _f("train", "weight_decay", "Weight decay", num("weight_decay", "float", 0.0, 1.0, step=1e-4)),
        _f("train", "momentum", "Momentum (SGD)", num("momentum", "float", 0.0, 0.999, step=0.05)),
        _f("train", "scheduler", "LR schedule", choice("scheduler", list(getattr(S, "SCHEDULERS", ("none",))))),
        _f("train", "gamma", "Decay factor", num("gamma", "float", 0.0, 1.0, step=0.05), "step schedule: lr ×= gamma at each milestone"),
        _f("train", "peak_epoch", "Peak epoch", num("peak_epoch", "float", 0.1, 10000.0, step=0.5), "exp_curve schedule peak"),
        _f("train", "grad_clip", "Gradient clip", num("grad_clip", "float", 0.0, 1e6, step=0.5), "max gradient L2 norm (0 = off)"),
        _f("train", "device", "Device", choice("device", ["auto", "cpu"]), "auto: CUDA, then MPS, then CPU"),
        _f("train", "precision", "Precision", choice("precision", list(getattr(S, "PRECISIONS", ("fp32", "bf16")))),
           "bf16 = bfloat16 autocast"),
        _f("train", "seed", "Seed", num("seed", "int", 0, INT_MAX), "same seed, same run"),
        _f("monitor", "every_steps", "Probe every (steps)", num("every_steps", "int", 1, 1_000_000),
           "gradient norms, depth and hardness are measured every N optimiser steps"),
        _f("monitor", "checkpoints", "Write checkpoints", lambda: BoolEditor("checkpoints")),
    ]


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
            tip = spec.help
            if spec.min is not None or spec.max is not None:
                tip += f" (range {spec.min if spec.min is not None else '−∞'} … {spec.max if spec.max is not None else '∞'})"
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

    def _sync_options(self) -> None:
        """Rows for the dataset's options (e.g. parity: n_inputs, k_active), rebuilt when the dataset changes."""
        from workbench.catalog import DATASET_OPTIONS

        preset = self.document.current
        dataset = preset.task.dataset
        if dataset != self._options_dataset:
            for ed in self.option_editors.values():
                self.options_form.removeRow(ed)
            self.option_editors = {}
            for name, spec in (DATASET_OPTIONS.get(dataset) or {}).items():
                ed = editor_for_param(spec)
                for child in ed.findChildren(QWidget):
                    if child.objectName() == f"param_{spec.name}":
                        child.setObjectName(f"field_options_{name}")
                ed.setToolTip(spec.help)
                ed.edited.connect(lambda v, n=name: self._set_option(n, v))
                self.options_form.insertRow(1 + len(self.option_editors), f"  {name}", ed)
                self.option_editors[name] = ed
                self._watch_undo_keys(ed)
            self._options_dataset = dataset
        schema = DATASET_OPTIONS.get(dataset) or {}
        for name, ed in self.option_editors.items():
            ed.set_value(preset.task.options.get(name, schema[name].default))

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
        except Exception as exc:  # nothing typed into the inspector may crash the app
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
        if (section, name) == ("train", "device"):
            # "all N GPUs (DDP)": the preset trains on cuda, N processes (a choice of this window's runs)
            self.ddp_processes = self._gpu_count if value == DDP_DEVICE else 0
            value = "cuda" if value == DDP_DEVICE else value
            if value == self.document.current.train.device:
                self._show_device()
                return
        self._guard(lambda: self.document.set_field(section, name, value))

    def _set_option(self, name: str, value: Any) -> None:
        self._guard(lambda: self.document.set_task_option(name, value))

    def _on_read_only(self, flag: bool, reason: str) -> None:
        self.banner.setText(f"Read-only: {reason}" if reason else "Read-only")
        self.banner.setVisible(flag)
        self.layer_box.setEnabled(not flag)
        for box in self.section_boxes.values():
            box.setEnabled(not flag)

