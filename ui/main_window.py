"""The main window: workspaces in the centre (``workspaceTabs``), docks around them, menus, files.

The centre holds one page per workspace, after Neural Network Console's EDIT / TRAINING /
EVALUATION tabs: **Build** (the preset's name and description above the model editor's cards) is
made here; the training side adds **Train** (the dashboard) and **Evaluate**. The palette, the
inspector and the runs list are docks around them; View → Reset layout puts them back
(palette and runs tabbed on the left — the workspace raises the one it needs — inspector on the
right). Ctrl+1/2/3 switch workspaces.

The seam with the training side (``ui.training_controller.install_training``) is documented on
:class:`MainWindow`: ``document``, ``run_block_reason()``, ``validity_changed``, ``add_dock()``,
``add_workspace()``, ``show_workspace()``, ``menu()``, ``toolbar``, ``training_hooks``,
``open_run_preset()``.

Start-up never waits for torch: the first paint shows the cards with "…" for shapes and counts;
right after it, :meth:`MainWindow.ensure_shapes` imports torch (meta-device parameter counts) and
fills them in. If torch is already imported (tests, a second window) shapes are computed at once.
"""
from __future__ import annotations

import copy
import functools
import sys
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QByteArray, QEvent, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (QApplication, QDockWidget, QMainWindow, QMenu, QTabWidget, QToolBar, QVBoxLayout,
                               QWidget)

from ui import settings as settings_mod
from ui.dialogs import PRESET_FILTER, TextDialog, file_ask_path, message_ask, problems_text
from ui.document import Analysis, PresetDocument, ReadOnlyError, get_layer, make_layer
from ui.inspector import Inspector
from ui.model_editor import ModelEditor
from ui.palette import PaletteWidget
from ui.preset_header import PresetHeader
from ui.statusbar import ElidedLabel, StatusBar
from ui.theme import apply_theme
from workbench.spec import Preset, SpecError, load_preset, save_preset

APP_TITLE = "Activation-Free Workbench"
DEFAULT_SIZE = (1400, 900)
MENU_ORDER = ("&File", "&Edit", "&View", "&Run", "&Presets", "&Help")
#: Version stamp of the saved dock layout: a layout saved before the workspaces is not restored.
LAYOUT_VERSION = 2
#: Default dock widths (pixels) after Reset layout: the left (palette / runs) and right (inspector) areas.
LEFT_DOCK_WIDTH = 300
RIGHT_DOCK_WIDTH = 330


def guarded(method: Callable) -> Callable:
    """Slot decorator: an unexpected exception becomes a status-bar message instead of a crash."""

    @functools.wraps(method)
    def wrapper(self: "MainWindow", *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except ReadOnlyError as exc:
            self.statusBar().showMessage(f"Cannot edit: {exc}", 6000)
        except Exception as exc:  # noqa: BLE001 - the point is to catch everything a slot might raise
            self.report_error(f"{method.__name__.strip('_').replace('_', ' ')} failed: {type(exc).__name__}: {exc}")
        return None

    return wrapper


def _default_preset() -> Preset:
    from workbench.presets import DEFAULT_PRESET, load_builtin

    try:
        return load_builtin(DEFAULT_PRESET)
    except Exception:  # noqa: BLE001 - a broken install must still open a window
        return Preset(name="Untitled")


class MainWindow(QMainWindow):
    """``MainWindow(preset=None, *, settings=None, ask=None)``.

    ``ask(title, text, buttons) -> str`` answers every prompt (unsaved changes, errors, problems);
    ``window.ask_path(mode, title, directory, filter) -> str | None`` picks files; ``window.show_dialog``
    shows modeless dialogs (tests replace all three).
    """

    #: Emitted with :meth:`run_block_reason` whenever it may have changed.
    validity_changed = Signal(object)
    #: Emitted once, right after the first paint of the window.
    first_painted = Signal()
    #: Emitted when shapes and parameter counts are known (torch loaded) for the current revision.
    shapes_ready = Signal()

    def __init__(self, preset: Preset | None = None, *, settings: QSettings | None = None,
                 ask: Callable[[str, str, tuple[str, ...]], str] | None = None) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.settings = settings if settings is not None else settings_mod.make_settings()
        self.ask = ask if ask is not None else message_ask(self)
        self.ask_path = file_ask_path(self)
        self.show_dialog: Callable[[QWidget], None] = lambda dialog: dialog.show()
        self.training_hooks: list[Callable[[], bool]] = []
        self._painted = False
        self._layout_restored = False
        self._shapes_enabled = "torch" in sys.modules
        self._analysis: Analysis | None = None
        self._origin: tuple[str, str] | None = ("builtin", "z-digits") if preset is None else None
        self._origin_preset: Preset | None = None   # the preset Revert restores when it came from a run
        self._menus: dict[str, QMenu] = {}
        self._dock_defaults: dict[QDockWidget, tuple[Qt.DockWidgetArea, QDockWidget | None]] = {}
        self._workspace_docks: dict[str, QDockWidget] = {}
        self.workspace_actions: dict[str, QAction] = {}
        self.setStatusBar(StatusBar(self))
        view = self.menu("&View")
        self._workspaces_end = view.addSeparator()   # workspace actions go above it, dock toggles below
        self._docks_separator = view.addSeparator()
        self._workspace_group = QActionGroup(self)
        app = QApplication.instance()
        if app is not None and app.property("afwb_theme") is None:
            apply_theme(app, settings_mod.theme_name(self.settings))

        self.document = PresetDocument(preset if preset is not None else _default_preset(), parent=self)

        self.workspace_tabs = QTabWidget(self)
        self.workspace_tabs.setObjectName("workspaceTabs")
        self.workspace_tabs.setDocumentMode(True)
        self.workspace_tabs.currentChanged.connect(self._on_workspace_changed)
        self.setCentralWidget(self.workspace_tabs)
        self.build_page = QWidget(self.workspace_tabs)
        self.build_page.setObjectName("buildWorkspace")
        self.preset_header = PresetHeader(self.document, self.build_page)
        self.editor = ModelEditor(self.document, self.build_page)
        build_layout = QVBoxLayout(self.build_page)
        build_layout.setContentsMargins(0, 0, 0, 0)
        build_layout.setSpacing(0)
        build_layout.addWidget(self.preset_header)
        build_layout.addWidget(self.editor, 1)
        self.add_workspace("Build", self.build_page, "Edit the model: layers, shapes, parameters")
        self.palette = PaletteWidget(self)
        self.inspector = Inspector(self.document, self)   # as wide as its form needs, never clipped
        self.inspector.set_settings(self.settings)         # the data folder setting
        self.palette_dock = self.add_dock(self.palette, "Palette", Qt.DockWidgetArea.LeftDockWidgetArea, "paletteDock")
        self.inspector_dock = self.add_dock(self.inspector, "Inspector", Qt.DockWidgetArea.RightDockWidgetArea,
                                            "inspectorDock")
        self.set_workspace_dock("Build", self.palette_dock)
        self.resizeDocks([self.palette_dock, self.inspector_dock], [LEFT_DOCK_WIDTH, RIGHT_DOCK_WIDTH],
                         Qt.Orientation.Horizontal)

        self.toolbar = QToolBar("Main", self)
        self.toolbar.setObjectName("mainToolBar")
        self.toolbar.setMovable(False)
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.toolbar)
        self._make_actions()
        self._path_label = ElidedLabel("", self, mode=Qt.TextElideMode.ElideMiddle, min_chars=16)
        self._path_label.setObjectName("pathLabel")
        self.statusBar().addPermanentWidget(self._path_label)

        self.document.changed.connect(self._on_document_changed)
        self.document.dirty_changed.connect(lambda _d: self._update_title())
        self.document.path_changed.connect(lambda _p: self._update_title())
        self.document.read_only_changed.connect(lambda *_: self._update_actions())
        self.editor.selection_changed.connect(self._on_selection)
        self.editor.error.connect(self.report_error)
        self.inspector.error.connect(self.report_error)
        self.palette.add_requested.connect(self.add_layer)
        self.setAcceptDrops(True)

        self._restore_geometry()
        self._on_document_changed()
        if self._shapes_enabled:
            self._after_torch()

    # =============================================================================== seam: public API
    def run_block_reason(self) -> str | None:
        """None when the current model validates; otherwise its first problem as one line of text."""
        if self._analysis is None:
            self._refresh()
        assert self._analysis is not None
        return self._analysis.block_reason()

    def add_dock(self, widget: QWidget, title: str, area: Qt.DockWidgetArea, object_name: str, *,
                 tabify_with: QDockWidget | None = None) -> QDockWidget:
        """Add a dock that takes part in the remembered layout (in ``area``, or tabbed with
        ``tabify_with``; Reset layout puts it back there); its toggle goes in View."""
        dock = QDockWidget(title, self)
        dock.setObjectName(object_name)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        if tabify_with is not None:
            self.tabifyDockWidget(tabify_with, dock)
        self._dock_defaults[dock] = (area, tabify_with)
        action = dock.toggleViewAction()
        action.setText(f"Show {title}")
        self.menu("&View").insertAction(self._docks_separator, action)
        if self._layout_restored:
            self._restore_state()
        return dock

    def add_workspace(self, title: str, widget: QWidget, tip: str = "") -> int:
        """Add a page to the centre (``workspaceTabs``); View gets "title" with Ctrl+<its number>."""
        index = self.workspace_tabs.addTab(widget, title)
        if tip:
            self.workspace_tabs.setTabToolTip(index, tip)
        action = QAction(f"&{title}", self, checkable=True)
        action.setObjectName(f"actionWorkspace{title}")
        if index < 9:
            action.setShortcut(QKeySequence(f"Ctrl+{index + 1}"))
        action.setStatusTip(tip or f"Show the {title} workspace")
        action.triggered.connect(lambda _c=False, t=title: self.show_workspace(t))
        action.setChecked(index == self.workspace_tabs.currentIndex())
        self._workspace_group.addAction(action)
        self.addAction(action)
        self.menu("&View").insertAction(self._workspaces_end, action)
        self.workspace_actions[title] = action
        return index

    def workspace_titles(self) -> list[str]:
        return [self.workspace_tabs.tabText(i) for i in range(self.workspace_tabs.count())]

    def show_workspace(self, title: str) -> bool:
        """Make the workspace ``title`` ("Build", "Train", "Evaluate") current; False if there is none."""
        titles = self.workspace_titles()
        if title not in titles:
            return False
        self.workspace_tabs.setCurrentIndex(titles.index(title))
        return True

    def prepare_hidden_workspaces(self) -> None:
        """Lay out and paint, off screen, each workspace not shown now, at the size of the one shown
        (one page per event-loop turn). A page's first show otherwise lays out, resizes and paints
        all its plots in one go: at the first Run after launch that was ~40 ms of the GUI thread
        (bench/gui_latency.py --first-run, docs/benchmarks.md). The app calls this at idle after
        start-up (:func:`ui.warmup.warm_after_start`); a page shown later at the same size only
        repaints what changed."""
        tabs = self.workspace_tabs
        pages = [tabs.widget(i) for i in range(tabs.count()) if i != tabs.currentIndex()]

        def next_page() -> None:
            while pages:
                page = pages.pop(0)
                current = tabs.currentWidget()
                if page.isVisible() or current is None:
                    continue
                page.resize(current.size())
                page.grab()   # polishes, sends the pending resize events, paints once
                if pages:
                    QTimer.singleShot(0, self, next_page)
                return

        next_page()

    def current_workspace(self) -> str:
        return self.workspace_tabs.tabText(self.workspace_tabs.currentIndex())

    def set_workspace_dock(self, title: str, dock: QDockWidget) -> None:
        """Raise ``dock`` (when it shares its place with others as a tab) whenever ``title`` is shown."""
        self._workspace_docks[title] = dock
        if self.current_workspace() == title:
            self._on_workspace_changed(self.workspace_tabs.currentIndex())

    def _on_workspace_changed(self, index: int) -> None:
        title = self.workspace_tabs.tabText(index)
        action = self.workspace_actions.get(title)
        if action is not None:
            action.setChecked(True)
        dock = self._workspace_docks.get(title)
        if dock is not None and dock.isVisible() and self.tabifiedDockWidgets(dock):
            dock.raise_()

    def reset_layout(self) -> None:
        """Docks back to their default places and widths, all shown, none floating."""
        for dock, (area, _tab) in self._dock_defaults.items():
            dock.setFloating(False)
            self.addDockWidget(area, dock)
            dock.show()
        for dock, (_area, tab) in self._dock_defaults.items():
            if tab is not None:
                self.tabifyDockWidget(tab, dock)
        widths = {Qt.DockWidgetArea.LeftDockWidgetArea: LEFT_DOCK_WIDTH,
                  Qt.DockWidgetArea.RightDockWidgetArea: RIGHT_DOCK_WIDTH}
        docks = [d for d, (area, _t) in self._dock_defaults.items() if area in widths]
        self.resizeDocks(docks, [widths[self._dock_defaults[d][0]] for d in docks], Qt.Orientation.Horizontal)
        self._on_workspace_changed(self.workspace_tabs.currentIndex())

    def menu(self, name: str) -> QMenu:
        """The top-level menu ``name`` ("&File", "&Edit", "&View", "&Run", "&Presets", "&Help"), created
        in that order on first use."""
        if name in self._menus:
            return self._menus[name]
        menu = QMenu(name, self)
        menu.setObjectName("menu" + name.replace("&", ""))
        menu.setToolTipsVisible(True)
        bar = self.menuBar()
        rank = MENU_ORDER.index(name) if name in MENU_ORDER else len(MENU_ORDER)
        before = None
        for other_name, other in self._menus.items():
            other_rank = MENU_ORDER.index(other_name) if other_name in MENU_ORDER else len(MENU_ORDER)
            if other_rank > rank and (before is None or other_rank < before[0]):
                before = (other_rank, other)
        if before is None:
            bar.addMenu(menu)
        else:
            bar.insertMenu(before[1].menuAction(), menu)
        self._menus[name] = menu
        return menu

    # ====================================================================================== analysis
    def ensure_shapes(self) -> None:
        """Compute shapes and parameter counts now (imports torch if needed)."""
        if not self._shapes_enabled:
            self._shapes_enabled = True
            self._refresh()
            self._after_torch()

    def analysis(self) -> Analysis:
        if self._analysis is None:
            self._refresh()
        assert self._analysis is not None
        return self._analysis

    def _refresh(self) -> None:
        self._analysis = Analysis(self.document.current, with_shapes=self._shapes_enabled)
        self.editor.show_analysis(self._analysis)
        if self._analysis.error:
            self.statusBar().showMessage(self._analysis.error, 8000)
        self.validity_changed.emit(self._analysis.block_reason())
        if self._analysis.report is not None:
            self.shapes_ready.emit()

    def _after_torch(self) -> None:
        try:
            from workbench.devices import available_devices, visible_gpus

            self.inspector.set_available_devices(available_devices(), gpu_count=visible_gpus())
        except Exception as exc:  # noqa: BLE001
            self.statusBar().showMessage(f"Could not query devices: {exc}", 6000)

    def _on_document_changed(self) -> None:
        self._refresh()
        self._update_title()
        self._update_actions()

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.StatusTip:   # menu/action status tips: elided like every message
            self.statusBar().showMessage(event.tip())
            return True
        if event.type() == QEvent.Type.Paint and not self._painted:
            self._painted = True
            QTimer.singleShot(0, self._on_first_paint)
        return super().event(event)

    def _on_first_paint(self) -> None:
        self.first_painted.emit()
        if not self._shapes_enabled:
            QTimer.singleShot(0, self.ensure_shapes)

    # ======================================================================================= actions
    def _action(self, text: str, slot: Callable, shortcut: Any = None, tip: str = "", name: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            if isinstance(shortcut, (list, tuple)):
                action.setShortcuts([QKeySequence(s) for s in shortcut])
            else:
                action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        if name:
            action.setObjectName(name)
        action.triggered.connect(lambda _checked=False: slot())
        self.addAction(action)
        return action

    def _make_actions(self) -> None:
        SK = QKeySequence.StandardKey  # noqa: N806 - an alias of a Qt enum
        self.action_new = self._action("&New", self.new_document, SK.New, "Start an empty model", "actionNew")
        self.action_open = self._action("&Open…", self.open_dialog, SK.Open, "Open a preset file", "actionOpen")
        self.action_save = self._action("&Save", self.save, SK.Save, "Save the preset", "actionSave")
        self.action_save_as = self._action("Save &As…", self.save_as, "Ctrl+Shift+S", "Save under a new name",
                                           "actionSaveAs")
        self.action_revert = self._action("&Revert", self.revert, None, "Discard unsaved changes", "actionRevert")
        self.action_quit = self._action("&Quit", self.close, SK.Quit, "Close the window", "actionQuit")
        self.action_undo = self.document.undo_stack.createUndoAction(self, "&Undo")
        self.action_undo.setShortcuts([QKeySequence(SK.Undo)])
        self.action_undo.setObjectName("actionUndo")
        self.action_redo = self.document.undo_stack.createRedoAction(self, "&Redo")
        self.action_redo.setShortcuts([QKeySequence("Ctrl+Y"), QKeySequence("Ctrl+Shift+Z")])
        self.action_redo.setObjectName("actionRedo")
        self.action_delete = self._action("&Delete layer", self.delete_selected, QKeySequence(Qt.Key.Key_Delete),
                                          "Remove the selected layer", "actionDelete")
        self.action_duplicate = self._action("D&uplicate layer", self.duplicate_selected, "Ctrl+D",
                                             "Copy the selected layer below it", "actionDuplicate")
        self.action_up = self._action("Move &up", lambda: self.move_selected(-1), "Alt+Up",
                                      "Move the selected layer up", "actionMoveUp")
        self.action_down = self._action("Move do&wn", lambda: self.move_selected(1), "Alt+Down",
                                        "Move the selected layer down", "actionMoveDown")
        self.action_table = self._action("Copy layer table as &Markdown", self.copy_layer_table, "Ctrl+Shift+C",
                                         "Copy #, name, type, output shape, params, trainable", "actionCopyTable")
        self.action_module = self._action("Show &PyTorch module…", self.show_module, None,
                                          "print() of the built torch.nn.Module", "actionShowModule")
        for a in (self.action_undo, self.action_redo):
            self.addAction(a)

        file_menu = self.menu("&File")
        for a in (self.action_new, self.action_open):
            file_menu.addAction(a)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.setObjectName("recentMenu")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file_menu.addSeparator()
        for a in (self.action_save, self.action_save_as, self.action_revert):
            file_menu.addAction(a)
        file_menu.addSeparator()
        file_menu.addAction(self.action_quit)

        edit = self.menu("&Edit")
        edit.addAction(self.action_undo)
        edit.addAction(self.action_redo)
        edit.addSeparator()
        for a in (self.action_delete, self.action_duplicate, self.action_up, self.action_down):
            edit.addAction(a)

        view = self.menu("&View")
        self.action_reset_layout = self._action("&Reset layout", self.reset_layout, None,
                                                "Put the palette, inspector and runs back in their places",
                                                "actionResetLayout")
        view.addAction(self.action_reset_layout)
        theme_menu = view.addMenu("&Theme")
        group = QActionGroup(self)
        current = settings_mod.theme_name(self.settings)
        self.theme_actions: dict[str, QAction] = {}
        for name in settings_mod.THEMES:
            a = QAction(name.capitalize(), self, checkable=True)
            a.setChecked(name == current)
            a.triggered.connect(lambda _c=False, n=name: self.set_theme(n))
            group.addAction(a)
            theme_menu.addAction(a)
            self.theme_actions[name] = a
        view.addSeparator()
        view.addAction(self.action_table)
        view.addAction(self.action_module)

        self.menu("&Run")  # filled by the training side; kept in its place between View and Presets
        presets = self.menu("&Presets")
        self._fill_presets(presets)
        help_menu = self.menu("&Help")
        help_menu.addAction(self._action("&About", self.show_about, None, "About this app", "actionAbout"))

        for a in (self.action_new, self.action_open, self.action_save):
            self.toolbar.addAction(a)
        self.toolbar.addSeparator()
        # The toolbar's Undo/Redo keep short, fixed texts (the menu's say what they undo), so the
        # buttons after them never move; they trigger the same commands and carry no shortcut.
        stack = self.document.undo_stack
        for text, name, trigger, can, changed_text, can_changed in (
                ("Undo", "toolbarUndo", stack.undo, stack.canUndo, stack.undoTextChanged, stack.canUndoChanged),
                ("Redo", "toolbarRedo", stack.redo, stack.canRedo, stack.redoTextChanged, stack.canRedoChanged)):
            proxy = QAction(text, self)
            proxy.setObjectName(name)
            proxy.triggered.connect(lambda _c=False, t=trigger: t())
            proxy.setEnabled(can())
            can_changed.connect(lambda flag, p=proxy: p.setEnabled(flag and not self.document.is_read_only()))
            changed_text.connect(lambda what, p=proxy, t=text: p.setToolTip(f"{t} {what}".strip()))
            self.toolbar.addAction(proxy)
            setattr(self, f"toolbar_{text.lower()}", proxy)
        self.toolbar.addSeparator()

    def _fill_presets(self, menu: QMenu) -> None:
        from workbench.presets import builtin_presets

        try:
            infos = builtin_presets()
        except Exception as exc:  # noqa: BLE001
            menu.addAction(f"(built-in presets unavailable: {exc})").setEnabled(False)
            return
        for info in infos:
            a = QAction(f"{info.name}  ({info.key})", self)
            a.setObjectName(f"preset_{info.key}")
            a.setToolTip(info.description or info.name)
            a.setStatusTip(info.description or info.name)
            a.setData(info.key)
            a.triggered.connect(lambda _c=False, k=info.key: self.open_builtin(k))
            menu.addAction(a)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        items = settings_mod.recent_files(self.settings)
        if not items:
            self.recent_menu.addAction("(no recent files)").setEnabled(False)
            return
        for i, path in enumerate(items):
            a = self.recent_menu.addAction(f"&{i + 1}  {Path(path).name}")
            a.setToolTip(path)
            a.setStatusTip(path)
            a.triggered.connect(lambda _c=False, p=path: self.open_path(p))
        self.recent_menu.addSeparator()
        clear = self.recent_menu.addAction("Clear list")
        clear.triggered.connect(lambda: self.settings.setValue("files/recent", []))

    def _update_actions(self) -> None:
        editable = not self.document.is_read_only()
        path = self.editor.selected_layer_path()
        has = path is not None and editable
        self.action_delete.setEnabled(has)
        self.action_duplicate.setEnabled(has)
        siblings = 0
        if path is not None:
            try:
                siblings = (len(get_layer(self.document.current, path[:-1]).body or []) if path[:-1]
                            else len(self.document.current.model.layers))
            except (IndexError, TypeError):
                siblings = 0
        self.action_up.setEnabled(has and path[-1] > 0)
        self.action_down.setEnabled(has and path[-1] < siblings - 1)
        for a in (self.action_new, self.action_open, self.action_revert):
            a.setEnabled(editable)
        self.action_revert.setEnabled(editable and self._origin is not None and self.document.is_dirty())
        self.action_undo.setEnabled(editable and self.document.undo_stack.canUndo())
        self.action_redo.setEnabled(editable and self.document.undo_stack.canRedo())
        if hasattr(self, "toolbar_undo"):
            self.toolbar_undo.setEnabled(self.action_undo.isEnabled())
            self.toolbar_redo.setEnabled(self.action_redo.isEnabled())
        self.document.undo_stack.setActive(editable)
        self.palette.setEnabled(editable)

    def _update_title(self) -> None:
        name = self.document.current.name or "Untitled"
        self.setWindowTitle(f"{name}[*] — {APP_TITLE}")
        self.setWindowModified(self.document.is_dirty())
        path = self.document.path
        if path is not None:
            self._path_label.setText(str(path))
        elif self._origin and self._origin[0] == "builtin":
            self._path_label.setText(f"built-in preset {self._origin[1]} (Save As to keep a copy)")
        elif self._origin and self._origin[0] == "run":
            self._path_label.setText(f"preset of the run {self._origin[1]} (Save As to keep a copy)")
        else:
            self._path_label.setText("not saved yet")
        if hasattr(self, "action_revert"):
            self._update_actions()

    # ==================================================================================== editing
    @guarded
    def add_layer(self, type_name: str) -> tuple[int, ...] | None:
        """Insert a new ``type_name`` layer after the selected card (at the end when none)."""
        sel = self.editor.selected()
        if isinstance(sel, tuple) and self.document.has_layer(sel):
            parent, index = sel[:-1], sel[-1] + 1
        elif sel == "input":
            parent, index = (), 0
        else:
            parent, index = (), len(self.document.current.model.layers)
        new_path = self.document.insert_layer(parent, index, make_layer(type_name))
        self.editor.select(new_path)
        self.statusBar().showMessage(f"Added {type_name}", 3000)
        return new_path

    @guarded
    def delete_selected(self) -> None:
        path = self.editor.selected_layer_path()
        if path is not None:
            self.document.remove_layer(path)

    @guarded
    def duplicate_selected(self) -> None:
        path = self.editor.selected_layer_path()
        if path is not None:
            self.editor.select(self.document.duplicate_layer(path))

    @guarded
    def move_selected(self, delta: int) -> None:
        path = self.editor.selected_layer_path()
        if path is not None:
            self.editor.select(self.document.move_by(path, delta))

    def _on_selection(self, key: Any) -> None:
        self.inspector.show_selection(key)
        self._update_actions()

    # ====================================================================================== files
    def maybe_save(self) -> bool:
        """Ask what to do with unsaved changes; True when it is fine to replace/close the document."""
        if not self.document.is_dirty():
            return True
        name = self.document.current.name or "Untitled"
        answer = self.ask("Unsaved changes", f"Save the changes to “{name}”?\n\n"
                                             "Your changes are lost if you don't save them.",
                          ("Save", "Discard", "Cancel"))
        if answer == "Save":
            return self.save()
        return answer == "Discard"

    @guarded
    def new_document(self) -> bool:
        if not self.maybe_save():
            return False
        blank = Preset(name="Untitled")
        blank.task.dataset = self.document.current.task.dataset
        self._origin = None
        self.document.load(blank)
        self.editor.select(None)
        self.show_workspace("Build")
        self.preset_header.edit_name()
        self.statusBar().showMessage("New model: name it, then double-click layers in the palette to add them", 5000)
        return True

    @guarded
    def open_dialog(self) -> bool:
        if not self.maybe_save():
            return False
        start = str(self.document.path.parent) if self.document.path else str(Path.home())
        path = self.ask_path("open", "Open preset", start, PRESET_FILTER)
        if not path:
            return False
        return self.open_path(path, confirm=False)

    def open_path(self, path: str | Path, *, confirm: bool = True) -> bool:
        """Open a preset file. A file that cannot be read or parsed shows its problems through ``ask`` and
        leaves the current model untouched; a readable preset with invalid values opens (its cards show why)."""
        if confirm and not self.maybe_save():
            return False
        path = Path(path)
        try:
            preset = load_preset(path)
        except (SpecError, OSError, ValueError) as exc:
            self.ask("Cannot open preset", problems_text(str(path), exc), ("OK",))
            self.statusBar().showMessage(f"Could not open {path.name}", 6000)
            return False
        self._origin = ("file", str(path))
        self.document.load(preset, path)
        self.editor.select(None)
        settings_mod.add_recent_file(self.settings, path)
        self.statusBar().showMessage(f"Opened {path}", 4000)
        return True

    @guarded
    def open_builtin(self, key: str) -> bool:
        from workbench.presets import load_builtin

        if not self.maybe_save():
            return False
        try:
            preset = load_builtin(key)
        except (SpecError, OSError) as exc:
            self.ask("Cannot open preset", problems_text(key, exc), ("OK",))
            return False
        self._origin = ("builtin", key)
        self.document.load(preset)
        self.editor.select(None)
        self.statusBar().showMessage(f"Opened built-in preset {key}", 4000)
        return True

    def open_run_preset(self, preset: Preset, run_label: str) -> bool:
        """Make a run's preset the document (the caller asked about unsaved changes): the title, the
        path label and Revert follow it ("the preset of the run …"; Revert restores it)."""
        self._origin = ("run", run_label)
        self._origin_preset = copy.deepcopy(preset)
        self.document.load(preset)
        self.editor.select(None)
        self.statusBar().showMessage(f"Opened the preset of the run {run_label}", 4000)
        return True

    def go_to_field(self, section: str, name: str) -> bool:
        """Show the inspector with the field ``section.name`` focused (a failed run's fix)."""
        self.inspector_dock.show()
        self.inspector_dock.raise_()
        ok = self.inspector.focus_field(section, name)
        if ok:
            self.statusBar().showMessage("Change it here in the inspector, then press Run again (Ctrl+R)", 8000)
        return ok

    def save(self) -> bool:
        if self.document.path is None:
            return self.save_as()
        return self.save_to(self.document.path)

    def save_as(self) -> bool:
        name = (self.document.current.name or "untitled").strip()
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name.lower()).strip("-") or "preset"
        folder = self.document.path.parent if self.document.path else Path.home()
        path = self.ask_path("save", "Save preset as", str(folder / f"{safe}.json"), PRESET_FILTER)
        if not path:
            return False
        return self.save_to(path)

    def save_to(self, path: str | Path) -> bool:
        """Write the preset to ``path`` (atomic). On failure say why and keep the unsaved state."""
        path = Path(path)
        try:
            save_preset(self.document.preset(), path)
        except (OSError, SpecError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.ask("Cannot save", f"Cannot save to {path}\n\n{reason}.\n\nThe model is still unsaved: "
                                    "choose another folder with Save As.", ("OK",))
            self.statusBar().showMessage(f"Not saved: {reason}", 8000)
            return False
        self._origin = ("file", str(path))
        self.document.mark_saved(path)
        settings_mod.add_recent_file(self.settings, path)
        self.statusBar().showMessage(f"Saved {path}", 4000)
        return True

    @guarded
    def revert(self) -> bool:
        if self._origin is None or not self.document.is_dirty():
            return False
        answer = self.ask("Revert", "Discard all unsaved changes?", ("Discard", "Cancel"))
        if answer != "Discard":
            return False
        kind, where = self._origin
        if kind == "file":
            try:
                preset = load_preset(where)
            except (SpecError, OSError) as exc:
                self.ask("Cannot revert", problems_text(where, exc), ("OK",))
                return False
            self.document.load(preset, where)
        elif kind == "run" and self._origin_preset is not None:
            self.document.load(self._origin_preset)
        else:
            from workbench.presets import load_builtin

            self.document.load(load_builtin(where))
        return True

    # drag a preset file onto the window -----------------------------------------------------------
    @staticmethod
    def _json_paths(mime) -> list[str]:
        if not mime.hasUrls():
            return []
        return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile().lower().endswith(".json")]

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._json_paths(event.mimeData()) and not self.document.is_read_only():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        paths = self._json_paths(event.mimeData())
        if not paths or self.document.is_read_only():
            event.ignore()
            return
        event.acceptProposedAction()
        QTimer.singleShot(0, lambda: self.open_path(paths[0]))  # not inside the drag's event handler

    # ================================================================================== model views
    def layer_table_markdown(self) -> str:
        """The layer table: ``| # | name | type | output shape | params | trainable |``."""
        from ui.cards import format_count, format_shape

        self.ensure_shapes()
        report = self.analysis().report
        rows = ["| # | name | type | output shape | params | trainable |",
                "|---:|---|---|---|---:|:---:|"]

        def walk(items: list[Any], prefix: str, depth: int) -> None:
            for i, item in enumerate(items):
                num = f"{prefix}{i}"
                name = ("↳ " * depth) + str(item.name)
                rows.append(f"| {num} | {name} | {item.type} | {format_shape(item.output_shape)} | "
                            f"{format_count(item.params)} | {'yes' if item.trainable else 'no'} |")
                walk(list(item.children or []), f"{num}.", depth + 1)

        if report is not None:
            walk(list(report.layers), "", 0)
            rows.append(f"| | **total** | | {format_shape(report.output_shape)} | "
                        f"**{format_count(report.total_params)}** ({format_count(report.trainable_params)} "
                        f"trainable) | |")
        return "\n".join(rows) + "\n"

    @guarded
    def copy_layer_table(self) -> str:
        text = self.layer_table_markdown()
        QApplication.clipboard().setText(text)
        self.statusBar().showMessage("Layer table copied as Markdown", 4000)
        return text

    def module_text(self) -> str:
        """``print(build_model(preset))`` (raises SpecError for an invalid preset)."""
        from workbench.spec import build_model

        return str(build_model(self.document.preset()))

    @guarded
    def show_module(self) -> TextDialog | None:
        try:
            text = self.module_text()
        except SpecError as exc:
            self.ask("Cannot build the model", f"The model cannot be built yet.\n\n{exc}", ("OK",))
            return None
        dialog = TextDialog(f"PyTorch module — {self.document.current.name}", text, self)
        self.show_dialog(dialog)
        return dialog

    def show_about(self) -> None:
        self.ask("About", f"{APP_TITLE}\n\nBuild, train and compare networks made of activation-free layers: "
                          "Z layers, Han layers, Π-Nets, twist convolutions and learned (infinite) depth.", ("OK",))

    # ====================================================================================== theme
    @guarded
    def set_theme(self, name: str) -> None:
        app = QApplication.instance()
        apply_theme(app, name)
        settings_mod.set_theme_name(self.settings, name)
        if name in getattr(self, "theme_actions", {}):
            self.theme_actions[name].setChecked(True)

    # ==================================================================================== feedback
    def report_error(self, message: str) -> None:
        """Show a problem in the status bar (and on stderr, for bug reports)."""
        self.statusBar().showMessage(message, 10000)
        print(f"[afwb] {message}", file=sys.stderr)

    # ============================================================================ geometry / close
    def _restore_geometry(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, (QByteArray, bytes)) and self.restoreGeometry(QByteArray(geometry)):
            return
        self.resize(*DEFAULT_SIZE)

    def _restore_state(self) -> None:
        state = self.settings.value("window/state")
        if isinstance(state, (QByteArray, bytes)) and self.restoreState(QByteArray(state), LAYOUT_VERSION):
            self._on_workspace_changed(self.workspace_tabs.currentIndex())
            return
        self.reset_layout()   # first launch, or a layout saved before the workspaces

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if not self._layout_restored:  # after install_training added its docks
            self._layout_restored = True
            self._restore_state()

    def save_layout(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(LAYOUT_VERSION))
        self.settings.sync()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        if not self.maybe_save():
            event.ignore()
            return
        for hook in list(self.training_hooks):
            try:
                ok = hook()
            except Exception as exc:  # noqa: BLE001
                self.report_error(f"could not stop training: {exc}")
                ok = False
            if not ok:
                event.ignore()
                return
        self.inspector.data_controls.shutdown()  # a download in flight: cancelled, its thread joined
        self.save_layout()
        event.accept()
