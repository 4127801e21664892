"""The editable preset document: one :class:`~workbench.spec.Preset` plus its undo history.

Every edit goes through a method here, becomes one ``QUndoCommand`` on :attr:`PresetDocument.undo_stack`
and ends with :attr:`PresetDocument.changed`. Commands store whole before/after snapshots of the
preset (a preset is a few kB), so undo restores the previous spec exactly; consecutive edits of the
same field merge into one command (``id()``/``mergeWith``), so typing ``128`` into a spin box is one
undo step, not three.

Layers are addressed by an *index path*: ``(3,)`` is ``model.layers[3]``, ``(3, 0)`` is
``model.layers[3].body[0]``. No Qt widget lives here; the module only needs QtCore/QtGui.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from workbench.spec import LayerSpec, Preset

LayerPath = tuple[int, ...]

#: Sections of a preset the inspector edits field by field.
SECTIONS = ("task", "train", "monitor")


class ReadOnlyError(RuntimeError):
    """Raised by an edit while the document is read-only (e.g. during a training run)."""


def json_path(path: LayerPath) -> str:
    """``(3, 0)`` → ``model.layers[3].body[0]`` (the JSON path :func:`workbench.spec.validate` uses)."""
    if not path:
        return "model"
    out = f"model.layers[{path[0]}]"
    for i in path[1:]:
        out += f".body[{i}]"
    return out


def get_layer(preset: Preset, path: LayerPath) -> LayerSpec:
    """The layer at ``path`` (IndexError when there is none)."""
    if not path:
        raise IndexError("empty layer path")
    layer = preset.model.layers[path[0]]
    for i in path[1:]:
        if layer.body is None:
            raise IndexError(f"{json_path(path)}: {layer.type} has no body")
        layer = layer.body[i]
    return layer


def layer_list(preset: Preset, parent: LayerPath) -> list[LayerSpec]:
    """The list that holds the children of ``parent``: the model's layers for ``()``, else a body."""
    if not parent:
        return preset.model.layers
    layer = get_layer(preset, parent)
    if layer.body is None:
        layer.body = []
    return layer.body


def iter_paths(layers: list[LayerSpec], prefix: LayerPath = ()) -> list[LayerPath]:
    """Every layer path in document order (parents before their bodies)."""
    out: list[LayerPath] = []
    for i, layer in enumerate(layers):
        out.append(prefix + (i,))
        if layer.body:
            out.extend(iter_paths(layer.body, prefix + (i,)))
    return out


class _SnapshotCommand(QUndoCommand):
    """Replace the document's preset with ``after``; undo puts ``before`` back.

    ``merge_key`` (hashable, or None) makes consecutive commands with the same key merge."""

    _ID = 0x4146  # any int >= 0 enables mergeWith; the key decides

    def __init__(self, doc: "PresetDocument", text: str, before: Preset, after: Preset,
                 merge_key: object = None, select_after: LayerPath | None = None,
                 select_before: LayerPath | None = None) -> None:
        super().__init__(text)
        self._doc = doc
        self.before = before
        self.after = after
        self.merge_key = merge_key
        self.select_after = select_after
        self.select_before = select_before

    def id(self) -> int:  # noqa: A003 - Qt API
        return self._ID if self.merge_key is not None else -1

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 - Qt API
        if not isinstance(other, _SnapshotCommand) or other.merge_key != self.merge_key:
            return False
        self.after = other.after
        self.select_after = other.select_after
        return True

    def redo(self) -> None:
        self._doc._replace(copy.deepcopy(self.after), self.select_after)

    def undo(self) -> None:
        self._doc._replace(copy.deepcopy(self.before), self.select_before)


class PresetDocument(QObject):
    """The current preset, its file path, dirty state and undo stack (see the module docstring)."""

    #: Emitted after every edit, undo, redo and load.
    changed = Signal()
    #: Emitted with the new path (str, or "" for an unsaved document) after load/save.
    path_changed = Signal(str)
    #: Emitted with True/False when the document becomes dirty/clean.
    dirty_changed = Signal(bool)
    #: Emitted with (read_only, reason).
    read_only_changed = Signal(bool, str)
    #: Emitted with the layer path (tuple) the last command wants selected, or None.
    selection_hint = Signal(object)

    def __init__(self, preset: Preset | None = None, path: str | Path | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._preset: Preset = copy.deepcopy(preset) if preset is not None else Preset()
        self._path: Path | None = Path(path) if path else None
        self._read_only = False
        self._read_only_reason = ""
        self.revision = 0  #: increases on every change (cache key for shape reports)
        self.undo_stack = QUndoStack(self)
        self.undo_stack.setUndoLimit(500)
        self.undo_stack.cleanChanged.connect(self._on_clean_changed)

    def _on_clean_changed(self, clean: bool) -> None:
        self.dirty_changed.emit(not clean)

    # ------------------------------------------------------------------------------------ reading
    def preset(self) -> Preset:
        """A deep copy of the current preset (safe to mutate or hand to a worker thread)."""
        return copy.deepcopy(self._preset)

    @property
    def current(self) -> Preset:
        """The live preset — read only; use the edit methods to change it."""
        return self._preset

    @property
    def path(self) -> Path | None:
        return self._path

    def is_dirty(self) -> bool:
        return not self.undo_stack.isClean()

    def is_read_only(self) -> bool:
        return self._read_only

    def read_only_reason(self) -> str:
        return self._read_only_reason

    def layer(self, path: LayerPath) -> LayerSpec:
        return get_layer(self._preset, path)

    def has_layer(self, path: LayerPath | None) -> bool:
        if not path:
            return False
        try:
            get_layer(self._preset, path)
        except (IndexError, TypeError):
            return False
        return True

    # ------------------------------------------------------------------------------ whole document
    def load(self, preset: Preset, path: str | Path | None = None) -> None:
        """Replace the document (New/Open/Revert, "open the run's preset"): clears undo, marks clean."""
        self._preset = copy.deepcopy(preset)
        self._path = Path(path) if path else None
        self.undo_stack.clear()
        self.undo_stack.setClean()
        self.revision += 1
        self.path_changed.emit(str(self._path) if self._path else "")
        self.dirty_changed.emit(False)
        self.selection_hint.emit(None)
        self.changed.emit()

    def mark_saved(self, path: str | Path) -> None:
        """Record a successful save to ``path``: the current state becomes the clean state."""
        self._path = Path(path)
        self.undo_stack.setClean()
        self.path_changed.emit(str(self._path))

    def set_read_only(self, flag: bool, reason: str = "") -> None:
        """While ``flag`` is True every edit method raises :class:`ReadOnlyError`; views show ``reason``."""
        self._read_only = bool(flag)
        self._read_only_reason = reason if flag else ""
        self.read_only_changed.emit(self._read_only, self._read_only_reason)

    # ------------------------------------------------------------------------------------ internals
    def _replace(self, preset: Preset, select: LayerPath | None) -> None:
        self._preset = preset
        self.revision += 1
        self.selection_hint.emit(select)
        self.changed.emit()

    def _edit(self, text: str, mutate: Callable[[Preset], LayerPath | None], merge_key: object = None,
              select_before: LayerPath | None = None) -> LayerPath | None:
        if self._read_only:
            raise ReadOnlyError(self._read_only_reason or "the document is read-only")
        before = copy.deepcopy(self._preset)
        after = copy.deepcopy(self._preset)
        select = mutate(after)
        if after == before:
            return select
        self.undo_stack.push(_SnapshotCommand(self, text, before, after, merge_key, select, select_before))
        return select

    # ---------------------------------------------------------------------------------- layer edits
    def set_layer_param(self, path: LayerPath, name: str, value: Any) -> None:
        """Set one parameter of the layer at ``path`` (``value`` None removes it: the default applies)."""
        def mutate(p: Preset) -> LayerPath:
            layer = get_layer(p, path)
            if value is None:
                layer.params.pop(name, None)
            else:
                layer.params[name] = copy.deepcopy(value)
            return path
        layer = get_layer(self._preset, path)
        self._edit(f"Set {layer.type}.{name}", mutate, merge_key=("param", path, name), select_before=path)

    def set_layer_trainable(self, path: LayerPath, trainable: bool) -> None:
        def mutate(p: Preset) -> LayerPath:
            get_layer(p, path).trainable = bool(trainable)
            return path
        self._edit(f"{'Unfreeze' if trainable else 'Freeze'} {get_layer(self._preset, path).type}", mutate,
                   select_before=path)

    def insert_layer(self, parent: LayerPath, index: int, layer: LayerSpec) -> LayerPath:
        """Insert ``layer`` at ``index`` of the model (``parent=()``) or of a container's body; return its path."""
        def mutate(p: Preset) -> LayerPath:
            items = layer_list(p, parent)
            i = max(0, min(index, len(items)))
            items.insert(i, copy.deepcopy(layer))
            return parent + (i,)
        # undo selects the layer before the insertion point (or the container, or nothing)
        before = parent + (index - 1,) if index > 0 else (parent or None)
        return self._edit(f"Add {layer.type}", mutate, select_before=before) or parent + (index,)

    def remove_layer(self, path: LayerPath) -> None:
        def mutate(p: Preset) -> LayerPath | None:
            items = layer_list(p, path[:-1])
            del items[path[-1]]
            if items:
                return path[:-1] + (min(path[-1], len(items) - 1),)
            return path[:-1] or None
        self._edit(f"Delete {get_layer(self._preset, path).type}", mutate, select_before=path)

    def move_layer(self, path: LayerPath, parent: LayerPath, index: int) -> LayerPath:
        """Move the layer at ``path`` to position ``index`` of ``parent``'s list (index counted *before*
        the removal, i.e. "insert before the item now at ``index``"). Returns the new path."""
        if parent[: len(path)] == path:
            raise ValueError("a container cannot be moved into its own body")
        def mutate(p: Preset) -> LayerPath:
            src = layer_list(p, path[:-1])
            layer = src[path[-1]]
            # Resolve the destination list before removing (paths are valid for the old tree).
            dst = layer_list(p, parent)
            target = dst[index] if 0 <= index < len(dst) else None
            del src[path[-1]]
            i = len(dst) if target is None else next(k for k, v in enumerate(dst) if v is target)
            dst.insert(i, layer)
            return _find_path(p.model.layers, layer) or parent + (i,)
        return self._edit(f"Move {get_layer(self._preset, path).type}", mutate, select_before=path) or path

    def move_by(self, path: LayerPath, delta: int) -> LayerPath:
        """Move a layer up (``delta=-1``) or down (``+1``) among its siblings."""
        siblings = layer_list(self._preset, path[:-1]) if path[:-1] else self._preset.model.layers
        j = path[-1] + delta
        if not 0 <= j < len(siblings):
            return path
        target = j if delta < 0 else j + 1
        return self.move_layer(path, path[:-1], target)

    def duplicate_layer(self, path: LayerPath) -> LayerPath:
        layer = get_layer(self._preset, path)
        return self.insert_layer(path[:-1], path[-1] + 1, copy.deepcopy(layer))

    # -------------------------------------------------------------------------------- preset fields
    def set_field(self, section: str, name: str, value: Any) -> None:
        """Set ``section.name`` (section "task", "train", "monitor", or "" for name/description)."""
        def mutate(p: Preset) -> None:
            target = p if not section else getattr(p, section)
            if not hasattr(target, name):
                raise AttributeError(f"{section or 'preset'} has no field {name!r}")
            setattr(target, name, copy.deepcopy(value))
            return None
        label = f"{section}.{name}" if section else name
        self._edit(f"Set {label}", mutate, merge_key=("field", section, name))

    def set_task_option(self, name: str, value: Any) -> None:
        def mutate(p: Preset) -> None:
            if value is None:
                p.task.options.pop(name, None)
            else:
                p.task.options[name] = copy.deepcopy(value)
            return None
        self._edit(f"Set task.options.{name}", mutate, merge_key=("option", name))


def _find_path(layers: list[LayerSpec], target: LayerSpec, prefix: LayerPath = ()) -> LayerPath | None:
    for i, layer in enumerate(layers):
        if layer is target:
            return prefix + (i,)
        if layer.body:
            found = _find_path(layer.body, target, prefix + (i,))
            if found:
                return found
    return None


# ------------------------------------------------------------------------------------------ analysis
class Analysis:
    """What the editor shows about one revision of the preset: ``problems`` from
    :func:`workbench.spec.validate` and, once torch may be imported, the ``report`` from
    :func:`workbench.spec.infer_shapes` (None until then: cards show "…").

    ``layer_problems`` maps a layer's JSON path (``model.layers[3]``) to its first problem's text;
    ``other_problems`` are those outside any layer (task, train, …).
    """

    def __init__(self, preset: Preset, with_shapes: bool) -> None:
        from workbench import spec as _spec

        self.problems: list[Any] = []
        self.error: str | None = None
        self.report = None
        try:
            if with_shapes:  # infer_shapes = validate + meta-device parameter counts (imports torch)
                self.report = _spec.infer_shapes(preset)
                self.problems = list(self.report.problems)
            else:
                self.problems = list(_spec.validate(preset, resources=False))  # no torch yet
        except Exception as exc:  # a bug in the core must not take the editor down
            self.error = f"checking the model failed: {type(exc).__name__}: {exc}"
        self.shapes: dict[str, Any] = {}
        if self.report is not None:
            self._index(getattr(self.report, "layers", []) or [])
        layer_paths = {json_path(p) for p in iter_paths(preset.model.layers)}
        self.layer_problems: dict[str, str] = {}
        self.other_problems: list[Any] = []
        for problem in self.problems:
            owner = _owner(str(getattr(problem, "path", "")), layer_paths)
            if owner is None:
                self.other_problems.append(problem)
            else:
                self.layer_problems.setdefault(owner, _problem_text(problem, owner))

    def _index(self, layers: list[Any]) -> None:
        for item in layers:
            path = getattr(item, "path", None)
            if path:
                self.shapes[str(path)] = item
            self._index(list(getattr(item, "children", None) or []))

    def block_reason(self) -> str | None:
        """The first problem as one line, or None when the preset can run."""
        if self.problems:
            return str(self.problems[0])
        return self.error


def _owner(problem_path: str, layer_paths: set[str]) -> str | None:
    """The deepest layer path that ``problem_path`` lies in (``model.layers[2].params.k`` → ``model.layers[2]``)."""
    best: str | None = None
    for lp in layer_paths:
        if problem_path == lp or problem_path.startswith(lp + ".") or problem_path.startswith(lp + "["):
            if best is None or len(lp) > len(best):
                best = lp
    return best


def _problem_text(problem: Any, owner: str) -> str:
    """A problem's text for its card: the path relative to the layer (``params.routes: …``)."""
    path = str(getattr(problem, "path", ""))
    rel = path[len(owner):].lstrip(".")
    message = str(getattr(problem, "message", problem))
    fix = str(getattr(problem, "fix", "") or "")
    text = f"{rel}: {message}" if rel else message
    return f"{text} — {fix}" if fix else text


def make_layer(type_name: str) -> LayerSpec:
    """A new layer of registry type ``type_name`` with default parameters (containers get an empty body)."""
    from workbench.registry import get_entry

    entry = get_entry(type_name)
    return LayerSpec(type=entry.type, params={}, body=[] if entry.container else None, trainable=True)
