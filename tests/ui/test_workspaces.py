"""The Build / Train / Evaluate workspaces and what the window shows around them (issue #12):
pages and shortcuts, Run → Train, Reset layout, sizes at 1400×900 and 1024×700, the preset's
name and description, a run's preset as the document, the status bar, and the small things
(toolbar, Ctrl+Z in a field, selected invalid cards, closing during a run)."""
from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import QApplication, QDockWidget, QSpinBox, QTabWidget, QToolButton, QWidget

from ui.statusbar import ElidedLabel
from ui.theme import INVALID_COLOR
from ui.training_controller import install_training
from workbench.events import Finished
from workbench.presets import load_builtin

RUN_TIMEOUT_MS = 60_000


def small_parity(epochs: int = 2, lr_scale: float = 1.0):
    preset = load_builtin("infinite-parity")
    preset.task.options = {**preset.task.options, "n_samples": 3000}
    preset.task.batch_size = 250
    preset.train.epochs = epochs
    preset.train.device = "cpu"
    preset.train.lr *= lr_scale
    preset.monitor.every_steps = 2
    return preset


@pytest.fixture
def app_window(make_window, qtbot):
    def make(preset=None, size=(1400, 900)):
        window = make_window(preset)
        controller = install_training(window)
        window.resize(*size)
        show_active(qtbot, window)
        return window, controller
    return make


def show_active(qtbot, window) -> None:
    """Shown and active, as a window the user works in (keyboard shortcuts and focus need it)."""
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)


def run_to_end(qtbot, controller):
    with qtbot.waitSignal(controller.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        assert controller.start_run()
    qtbot.waitUntil(controller.dashboard.is_idle, timeout=5000)
    return blocker.args[0]


def settle(qtbot) -> None:
    for _ in range(3):
        QApplication.processEvents()
    qtbot.wait(10)


# ------------------------------------------------------------------------------------- workspaces
def test_three_workspaces_with_shortcuts(app_window, qtbot) -> None:
    window, c = app_window()
    tabs = window.findChild(QTabWidget, "workspaceTabs")
    assert tabs is window.centralWidget()
    assert [tabs.tabText(i) for i in range(tabs.count())] == ["Build", "Train", "Evaluate"]
    assert tabs.widget(0).findChild(QWidget, "modelEditor") is window.editor
    assert tabs.widget(1) is c.dashboard and tabs.widget(2) is c.evaluate
    for name in ("lossPlot", "accuracyPlot", "gradNormPlot", "depthPlot"):
        assert c.dashboard.findChild(QWidget, name) is not None, name
    # palette, inspector and runs stay docks
    for name, widget in (("paletteDock", "palette"), ("inspectorDock", "inspector"), ("runsDock", "runsList")):
        dock = window.findChild(QDockWidget, name)
        assert dock is not None and dock.findChild(QWidget, widget) is not None or dock.widget().objectName() == widget
    assert tabs.currentIndex() == 0
    for key, title in ((Qt.Key.Key_2, "Train"), (Qt.Key.Key_3, "Evaluate"), (Qt.Key.Key_1, "Build")):
        qtbot.keyClick(window, key, Qt.KeyboardModifier.ControlModifier)
        assert window.current_workspace() == title
        assert window.workspace_actions[title].isChecked()


def test_the_workspace_raises_its_dock(app_window, qtbot) -> None:
    window, c = app_window()
    assert window.tabifiedDockWidgets(window.palette_dock) == [c.runs_dock]
    window.show_workspace("Train")
    settle(qtbot)
    assert not c.runs_dock.visibleRegion().isEmpty() and window.palette_dock.visibleRegion().isEmpty()
    window.show_workspace("Build")
    settle(qtbot)
    assert not window.palette_dock.visibleRegion().isEmpty() and c.runs_dock.visibleRegion().isEmpty()


def test_run_switches_to_train_unless_the_setting_is_off(app_window, qtbot) -> None:
    window, c = app_window(small_parity(epochs=1))
    assert c.train_on_run_action.isChecked()
    run_to_end(qtbot, c)
    assert window.current_workspace() == "Train"
    window.show_workspace("Build")
    c.train_on_run_action.setChecked(False)
    assert window.settings.value("view/train_on_run") in (False, "false")
    run_to_end(qtbot, c)
    assert window.current_workspace() == "Build"


def test_reset_layout_puts_every_dock_back(app_window, qtbot) -> None:
    window, c = app_window()
    window.inspector_dock.close()
    window.palette_dock.setFloating(True)
    window.removeDockWidget(c.runs_dock)
    window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, c.runs_dock)
    c.runs_dock.show()
    window.action_reset_layout.trigger()
    settle(qtbot)
    assert window.inspector_dock.isVisible() and not window.palette_dock.isFloating()
    assert window.dockWidgetArea(window.palette_dock) == Qt.DockWidgetArea.LeftDockWidgetArea
    assert window.dockWidgetArea(c.runs_dock) == Qt.DockWidgetArea.LeftDockWidgetArea
    assert window.dockWidgetArea(window.inspector_dock) == Qt.DockWidgetArea.RightDockWidgetArea
    assert window.tabifiedDockWidgets(window.palette_dock) == [c.runs_dock]
    assert "Reset layout" in [a.text().replace("&", "") for a in window.menu("&View").actions()]


# ------------------------------------------------------------------------------------------ sizes
def data_area(panel) -> QRect:
    return panel.plot_item.vb.sceneBoundingRect().toRect()


def test_every_plot_is_legible_at_1400x900_with_three_runs(app_window, qtbot) -> None:
    window, c = app_window(small_parity(epochs=2, lr_scale=0.3))
    ids = [c.run_id for _ in [run_to_end(qtbot, c)]]
    for scale in (3.0, 1.0):
        window.document.load(small_parity(epochs=2, lr_scale=scale))
        run_to_end(qtbot, c)
        ids.append(c.run_id)
    for run_id in ids:
        c.runs_panel.set_checked(run_id, True)
    window.show_workspace("Train")
    c.dashboard.redraw()
    settle(qtbot)
    assert len(c.dashboard.visible_runs()) == 3
    for panel in c.dashboard.panels():
        assert panel.isVisible(), panel.objectName()
        area = data_area(panel)
        assert area.height() >= 200, (panel.objectName(), area)
        # the legend lies outside the data area
        if panel.legend_visible() and panel.legend.items:
            assert not panel.legend.sceneBoundingRect().toRect().intersects(area), panel.objectName()
    # the whole plot area is on screen (no scrolling needed at this size)
    scroll = c.dashboard.scroll
    assert scroll.verticalScrollBar().maximum() == 0
    # hiding the legends gives their room to the data
    before = data_area(c.dashboard.loss_plot).height()
    c.dashboard.legend_toggle.setChecked(False)
    settle(qtbot)
    assert data_area(c.dashboard.loss_plot).height() > before


def test_usable_at_1024x700(app_window, qtbot) -> None:
    window, c = app_window(load_builtin("z-mnist"), size=(1024, 700))
    settle(qtbot)
    assert (window.width(), window.height()) == (1024, 700)   # the window's minimum fits the screen
    viewport = window.editor.scroll.viewport()
    visible = [card for card in window.editor.layer_cards()
               if viewport.rect().contains(QRect(card.mapTo(viewport, QPoint(0, 0)), card.size()))]
    assert len(visible) >= 4, len(visible)
    # nothing clipped: every dock is at least as wide as it needs, the centre shows its content
    for dock in (window.palette_dock, window.inspector_dock):
        assert dock.width() >= dock.minimumSizeHint().width()
    assert window.editor.scroll.horizontalScrollBar().maximum() == 0
    window.show_workspace("Train")
    settle(qtbot)
    assert c.dashboard.columns() >= 1
    for panel in (c.dashboard.loss_plot, c.dashboard.accuracy_plot, c.dashboard.grad_panel, c.dashboard.depth_panel,
                  c.dashboard.throughput_plot):   # in a scroll area: legible size, scrolled to when needed
        assert panel.width() >= 200 and panel.height() >= 200, panel.objectName()
    bar = window.statusBar()
    shown = [w for w in bar.findChildren(QWidget) if w.isVisible() and w.parent() in (bar, c.status)]
    for w in shown:   # inside the bar, and no two overlap
        assert bar.rect().contains(QRect(w.mapTo(bar, QPoint(0, 0)), w.size())), w.objectName()
    rects = [(w.objectName(), QRect(w.mapTo(bar, QPoint(0, 0)), w.size())) for w in shown
             if w.parent() is c.status or w is c.status.message]
    for i, (a, ra) in enumerate(rects):
        for b, rb in rects[i + 1:]:
            assert not ra.intersects(rb), (a, b)


# --------------------------------------------------------------------------------- preset identity
def test_name_and_description_are_shown_and_editable(app_window, qtbot) -> None:
    window, c = app_window(load_builtin("infinite-parity"))
    header = window.preset_header
    preset = window.document.current
    assert header.name_edit.text() == preset.name
    assert header.description_edit.toPlainText() == preset.description and preset.description
    assert header.reference_edit.text() == preset.reference
    assert header.isVisibleTo(window) and header.description_edit.isVisibleTo(window)
    header.name_edit.selectAll()
    qtbot.keyClicks(header.name_edit, "Parity sweep")
    assert window.document.current.name == "Parity sweep"
    assert window.windowTitle().startswith("Parity sweep[*]")
    assert window.document.undo_stack.count() == 1          # the typing is one undo step
    window.document.set_field("train", "epochs", 1)
    run_to_end(qtbot, c)
    assert c.runs_panel.entries[c.run_id].label.endswith("· Parity sweep")
    assert "parity-sweep" in Path(c.run_id).name
    window.action_undo.trigger()
    window.action_undo.trigger()
    assert header.name_edit.text() == preset.name


def test_new_model_is_untitled_until_named(app_window, qtbot) -> None:
    window, _c = app_window()
    window.action_new.trigger()
    header = window.preset_header
    assert header.name_edit.text() == "Untitled" and header.name_edit.selectedText() == "Untitled"
    assert QApplication.focusWidget() is header.name_edit
    qtbot.keyClicks(header.name_edit, "My HanNet")
    assert window.windowTitle().startswith("My HanNet[*]")


def test_a_runs_preset_becomes_the_document(app_window, qtbot) -> None:
    window, c = app_window(small_parity(epochs=1))
    run_to_end(qtbot, c)
    run_label = c.runs_panel.entries[c.run_id].label
    window.open_builtin("z-digits")
    c.runs_panel.select(c.run_id)
    assert c.runs_panel.open_selected()
    assert window.document.current.name == small_parity().name
    assert window.windowTitle().startswith(small_parity().name)
    assert run_label in window._path_label.text()
    window.document.set_field("train", "epochs", 7)
    assert window.action_revert.isEnabled()
    window.asked.answers = ["Discard"]
    assert window.revert()
    assert window.document.current.train.epochs == 1       # the run's preset, not z-digits
    assert window.document.current.task.dataset == "parity"


# ------------------------------------------------------------------------------------- status bar
def test_status_bar_text_is_elided_at_word_ends(main_window, qtbot) -> None:
    main_window.resize(1024, 700)
    main_window.show()
    qtbot.waitExposed(main_window)
    long = "Opened built-in preset z-digits " * 12
    main_window.statusBar().showMessage(long)
    settle(qtbot)
    label = main_window.statusBar().message_label
    shown = label.displayed_text()
    assert main_window.statusBar().currentMessage() == " ".join(long.split())
    assert shown.endswith("…") and long.startswith(shown[:-1])
    assert long[len(shown) - 1] == " "                      # cut between words
    assert label.fontMetrics().horizontalAdvance(shown) <= label.contentsRect().width()
    path_label = main_window.findChild(ElidedLabel, "pathLabel")
    assert not QRect(label.mapTo(main_window, QPoint(0, 0)), label.size()).intersects(
        QRect(path_label.mapTo(main_window, QPoint(0, 0)), path_label.size()))


def test_menu_status_tips_go_through_the_elided_message(main_window, qtbot) -> None:
    from PySide6.QtGui import QStatusTipEvent

    QApplication.sendEvent(main_window, QStatusTipEvent("A preset's description as a status tip"))
    assert main_window.statusBar().currentMessage() == "A preset's description as a status tip"


# ------------------------------------------------------------------------------------ small things
def test_run_button_does_not_move_when_undo_texts_change(app_window, qtbot) -> None:
    window, _c = app_window()
    run_button = window.findChild(QToolButton, "runButton")
    x = run_button.mapTo(window, QPoint(0, 0)).x()
    window.document.set_layer_param((0,), "kernel_size", 3)
    window.document.set_field("", "name", "a rather long name to make the undo text long")
    settle(qtbot)
    assert "Set name" in window.action_undo.text()            # the menu says what it undoes
    assert run_button.mapTo(window, QPoint(0, 0)).x() == x
    undo_button = window.toolbar.widgetForAction(window.toolbar_undo)
    assert undo_button.text() == "Undo" and "Set name" in undo_button.toolTip()
    qtbot.mouseClick(undo_button, Qt.MouseButton.LeftButton)
    assert window.document.current.name != "a rather long name to make the undo text long"


def test_ctrl_z_in_a_spin_box_undoes_the_document(main_window, qtbot) -> None:
    show_active(qtbot, main_window)
    main_window.editor.select((0,))
    spin = main_window.inspector.findChild(QSpinBox, "param_out_channels")
    before = spin.value()
    spin.setFocus()
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin.lineEdit(), "20")
    qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Return)
    assert main_window.document.current.model.layers[0].params["out_channels"] == 20
    assert QApplication.focusWidget() in (spin, spin.lineEdit())
    qtbot.keyClick(spin, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert main_window.document.current.model.layers[0].params.get("out_channels", before) == before
    assert spin.value() == before
    qtbot.keyClick(spin, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert main_window.document.current.model.layers[0].params["out_channels"] == 20
    # typed but not committed: Ctrl+Z forgets the typing, the document is untouched
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin.lineEdit(), "33")
    count = main_window.document.undo_stack.count()
    qtbot.keyClick(spin, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert spin.lineEdit().text() == "20" and main_window.document.undo_stack.count() == count
    assert main_window.document.current.model.layers[0].params["out_channels"] == 20


def test_a_selected_invalid_card_keeps_its_selection_visible(main_window, qtbot) -> None:
    from PySide6.QtGui import QColor

    main_window.resize(1400, 900)
    main_window.show()
    qtbot.waitExposed(main_window)
    main_window.document.set_layer_param((0,), "kernel_size", 40)   # does not fit 8×8
    main_window.editor.select((1,))
    settle(qtbot)
    plain_invalid = main_window.editor.card_for((0,)).grab().toImage()
    main_window.editor.select((0,))
    settle(qtbot)
    card = main_window.editor.card_for((0,))
    assert card.property("invalid") is True and card.property("selected") is True
    image = card.grab().toImage()
    inside = QPoint(image.width() // 2, image.height() - 6)
    border = QPoint(image.width() // 2, 1)
    assert QColor(image.pixel(border)).name() == QColor(INVALID_COLOR).name()       # still red…
    assert QColor(image.pixel(inside)) != QColor(plain_invalid.pixel(inside))       # …and visibly selected


def test_closing_during_a_run_asks_first(app_window, qtbot) -> None:
    preset = load_builtin("z-digits")
    preset.train.epochs = 500
    preset.train.device = "cpu"
    window, c = app_window(preset)
    with qtbot.waitSignal(c.run_started, timeout=5000):
        c.start_run()
    qtbot.waitUntil(lambda: c.dashboard.buffers(c.run_id).has("loss"), timeout=RUN_TIMEOUT_MS)
    window.asked.answers = ["Keep training"]
    assert not window.close()
    assert window.asked.titles()[-1] == "A run is training" and c.worker is not None
    window.asked.answers = ["Stop the run and close"]
    assert window.close()
    assert c.worker is None and c.last_final.summary.status == "stopped"


def test_show_folder_without_a_file_manager_says_so(app_window, qtbot) -> None:
    window, c = app_window(small_parity(epochs=1))
    run_to_end(qtbot, c)
    c.runs_panel.open_url = lambda url: False       # no desktop launcher
    c.runs_panel.select(c.run_id)
    assert not c.runs_panel.reveal_selected()
    title, text, _buttons = window.asked.calls[-1]
    assert title == "Show folder" and c.run_id in text
    assert QApplication.clipboard().text() == c.run_id


def test_evaluate_page_shows_the_views_that_fit_the_run(app_window, qtbot) -> None:
    window, c = app_window(small_parity(epochs=1))
    page = c.evaluate
    assert page.objectName() == "evaluateWorkspace"
    assert "Select a run" in page.body.text()
    final = run_to_end(qtbot, c)
    assert isinstance(final, Finished)
    window.show_workspace("Evaluate")
    qtbot.waitUntil(lambda: page.evaluation is not None, timeout=RUN_TIMEOUT_MS)
    # parity: 8 binary inputs, two classes — a confusion matrix, no pictures, no plane to draw
    assert page.findChild(QWidget, "confusionMatrix").isVisible()
    assert not page.findChild(QWidget, "mistakesGallery").isVisible()
    assert not page.findChild(QWidget, "decisionBoundary").isVisible()
    assert not page.findChild(QWidget, "regressionScatter").isVisible()
    assert page.evaluation.accuracy == final.summary.best_val_accuracy


def test_the_inspector_never_clips_a_form(app_window, qtbot) -> None:
    from workbench.registry import REGISTRY
    from workbench.spec import LayerSpec

    window, c = app_window(load_builtin("z-mnist"), size=(1024, 700))
    window.show_workspace("Train")                 # the widest centre page
    insp = window.inspector
    for name, entry in REGISTRY.items():
        window.document.insert_layer((), 0, LayerSpec(name, {}, body=[] if entry.container else None))
        window.editor.select((0,))
        settle(qtbot)
        assert insp.widget().width() <= insp.viewport().width(), name     # no field cut at the right
        assert window.width() == 1024, name                                # and the window still fits
        window.document.undo_stack.undo()


def test_hidden_workspaces_are_laid_out_at_idle_so_their_first_show_resizes_nothing(app_window, qtbot) -> None:
    """Issue #12 item 8: the first Run showed the Train workspace for the first time, and laying out,
    resizing and painting all its plots at once stalled the GUI. ``prepare_hidden_workspaces`` (the
    app calls it at idle after start-up) lays the hidden pages out at the shown page's size, so the
    show itself resizes no plot."""
    import pyqtgraph as pg

    window, _c = app_window()
    tabs = window.workspace_tabs
    assert window.current_workspace() == "Build"
    train = tabs.widget(window.workspace_titles().index("Train"))
    plots = [v for v in train.findChildren(pg.GraphicsView) if not v.isHidden()]
    assert plots
    assert train.size() != tabs.currentWidget().size()          # never shown: not laid out yet
    window.prepare_hidden_workspaces()
    hidden = [tabs.widget(i) for i in range(tabs.count()) if i != tabs.currentIndex()]
    qtbot.waitUntil(lambda: all(p.size() == tabs.currentWidget().size() for p in hidden), timeout=5000)
    before = {v.objectName(): v.size() for v in plots}
    resized: list[str] = []
    for view in plots:
        view.resizeEvent = (lambda event, _v=view, _orig=view.resizeEvent: (resized.append(_v.objectName()),
                                                                             _orig(event)))
    window.show_workspace("Train")
    qtbot.waitExposed(train)
    settle(qtbot)
    assert resized == []
    assert {v.objectName(): v.size() for v in plots} == before
