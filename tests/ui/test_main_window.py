"""Tests for ui.main_window and ui.app: building a network by clicks, title, seam API, layout,
shortcuts, model views, and the leak-check fixture itself."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from PySide6.QtCore import QPoint, QSettings, Qt, QThread, QTimer
from PySide6.QtWidgets import QDockWidget, QLabel, QSpinBox

from tests.ui.conftest import QtLeakTracker, double_click_item
from ui.cards import format_count, format_shape
from workbench.spec import infer_shapes

REPO = Path(__file__).resolve().parents[2]


def test_build_a_network_by_clicks_only(main_window, qtbot) -> None:
    """New → double-click ZConv2d, SoftPool2d, Flatten, ZLinear in the palette → set routes in the
    inspector → the cards show what infer_shapes computes, and the model can run."""
    w = main_window
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    w.menu("&File")  # the action lives there
    w.action_new.trigger()
    assert w.document.current.model.layers == []
    assert w.run_block_reason() is not None  # an empty model cannot run
    tree = w.palette.tree
    for name in ("ZConv2d", "SoftPool2d", "Flatten", "ZLinear"):
        double_click_item(qtbot, tree, w.palette.item_for(name))
    assert [layer.type for layer in w.document.current.model.layers] == ["ZConv2d", "SoftPool2d", "Flatten", "ZLinear"]
    assert w.editor.selected() == (3,)  # each new card is appended after the selected one and selected
    for path, routes in (((0,), 2), ((3,), 3)):
        card = w.editor.card_for(path)
        qtbot.mouseClick(card, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
        spin = w.inspector.findChild(QSpinBox, "param_routes")
        spin.lineEdit().selectAll()
        qtbot.keyClicks(spin.lineEdit(), str(routes))
        qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Return)
        assert w.document.current.model.layers[path[0]].params["routes"] == routes
    report = infer_shapes(w.document.preset())
    assert not report.problems and w.run_block_reason() is None
    for row, card in zip(report.layers, w.editor.layer_cards()):
        assert card.shape.text() == f"→ {format_shape(row.output_shape)}"
        assert card.params.text() == f"{format_count(row.params)} params"
    assert report.output_shape == (10,)
    assert format_count(report.total_params) in w.editor.params_label.text()


def test_window_title_and_modified_marker(main_window) -> None:
    w = main_window
    name = w.document.current.name
    assert w.windowTitle() == f"{name}[*] — Activation-Free Workbench"
    assert not w.isWindowModified()
    w.document.set_field("train", "epochs", 2)
    assert w.isWindowModified()
    w.action_undo.trigger()
    assert not w.isWindowModified()


def test_seam_api(main_window, qtbot) -> None:
    from PySide6.QtWidgets import QMainWindow

    from ui.document import PresetDocument

    w = main_window
    assert isinstance(w, QMainWindow) and isinstance(w.document, PresetDocument)
    assert w.training_hooks == []
    label = QLabel("dashboard")
    dock = w.add_dock(label, "Dashboard", Qt.DockWidgetArea.BottomDockWidgetArea, "dashboardDock")
    assert isinstance(dock, QDockWidget) and dock.objectName() == "dashboardDock"
    run = w.menu("&Run")
    assert w.menu("&Run") is run
    titles = [a.text() for a in w.menuBar().actions()]
    assert titles == ["&File", "&Edit", "&View", "&Run", "&Presets", "&Help"]
    assert w.toolbar is not None and w.statusBar() is not None
    with qtbot.waitSignal(w.validity_changed, timeout=1000) as blocker:
        w.document.set_layer_param((0,), "kernel_size", 64)
    assert blocker.args[0] == w.run_block_reason() and blocker.args[0]
    w.document.load(w.document.preset())  # "open the run's preset": no undo entry, clean
    assert w.document.undo_stack.count() == 0 and not w.document.is_dirty()


def test_training_hooks_can_veto_close(main_window) -> None:
    w = main_window
    calls = []
    w.training_hooks.append(lambda: calls.append(1) or False)
    assert not w.close()
    assert calls == [1]
    w.training_hooks.clear()
    assert w.close()


def test_unsaved_changes_prompt_on_close(main_window) -> None:
    w = main_window
    w.document.set_field("train", "epochs", 2)
    w.asked.answers = ["Cancel"]
    assert not w.close()
    assert w.asked.titles() == ["Unsaved changes"]
    w.asked.answers = ["Discard"]
    assert w.close()


def test_geometry_and_docks_remembered(make_window, tmp_path) -> None:
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    w = make_window(settings=settings)
    w.show()
    w.resize(760, 560)  # within the offscreen screen (800×600): restoreGeometry clamps to the screen
    w.removeDockWidget(w.palette_dock)
    w.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, w.palette_dock)
    w.palette_dock.show()
    assert w.close()
    settings.sync()
    again = make_window(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    again.show()
    assert (again.width(), again.height()) == (760, 560)
    assert again.dockWidgetArea(again.palette_dock) == Qt.DockWidgetArea.RightDockWidgetArea


def test_default_size_and_afwb_config(make_window) -> None:
    w = make_window()
    assert (w.width(), w.height()) == (1400, 900)
    assert w.settings.fileName().startswith(os.environ["AFWB_CONFIG"])


def test_edit_menu_actions(main_window) -> None:
    w = main_window
    types = [layer.type for layer in w.document.current.model.layers]
    w.editor.select((0,))
    assert not w.action_up.isEnabled() and w.action_down.isEnabled()
    w.action_down.trigger()
    assert [layer.type for layer in w.document.current.model.layers][:2] == [types[1], types[0]]
    assert w.editor.selected() == (1,)
    w.action_up.trigger()
    w.action_duplicate.trigger()
    assert len(w.document.current.model.layers) == len(types) + 1
    assert w.editor.selected() == (1,)
    for seq in ("Ctrl+Z", "Ctrl+Y", "Ctrl+Shift+Z"):
        assert any(s.toString() == seq for a in (w.action_undo, w.action_redo) for s in a.shortcuts())
    assert w.action_up.shortcut().toString() == "Alt+Up" and w.action_duplicate.shortcut().toString() == "Ctrl+D"
    assert w.action_save_as.shortcut().toString() == "Ctrl+Shift+S"


def test_layer_table_markdown(main_window) -> None:
    text = main_window.copy_layer_table()
    lines = text.strip().splitlines()
    assert lines[0] == "| # | name | type | output shape | params | trainable |"
    report = infer_shapes(main_window.document.preset())
    assert len(lines) == 2 + len(report.layers) + 1
    assert lines[2].startswith("| 0 | 0_ZConv2d | ZConv2d | ")
    from PySide6.QtWidgets import QApplication

    assert QApplication.clipboard().text() == text


def test_show_pytorch_module(main_window) -> None:
    dialog = main_window.show_module()
    assert dialog is not None and main_window.dialogs == [dialog]
    text = dialog.text.toPlainText()
    assert "(0_ZConv2d): ZConv2d(" in text and text == main_window.module_text()
    font = dialog.text.font()
    assert font.styleHint() == font.StyleHint.Monospace or "Mono" in font.family()
    main_window.document.set_layer_param((0,), "kernel_size", 64)
    assert main_window.show_module() is None
    assert main_window.asked.titles()[-1] == "Cannot build the model"


def test_theme_switch_persists(main_window) -> None:
    from PySide6.QtGui import QPalette
    from PySide6.QtWidgets import QApplication

    from ui import settings as s

    main_window.set_theme("dark")
    assert QApplication.instance().palette().color(QPalette.ColorRole.Window).lightness() < 100
    assert s.theme_name(main_window.settings) == "dark"
    main_window.set_theme("light")
    assert QApplication.instance().palette().color(QPalette.ColorRole.Window).lightness() > 200


def test_build_main_window_installs_training_when_available(qtbot, ask) -> None:
    import torch  # noqa: F401

    from ui.app import build_main_window

    w = build_main_window(ask=ask)
    qtbot.addWidget(w)
    try:
        import ui.training_controller  # noqa: F401
    except ImportError:
        return
    assert getattr(w, "training_controller", None) is not None


def test_main_exits_after_first_paint() -> None:
    """`python main.py` with AFWB_EXIT_AFTER_PAINT=paint paints a window and exits 0 (bench/startup.py
    measures the full figure, with shapes)."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", AFWB_EXIT_AFTER_PAINT="paint")
    out = subprocess.run([sys.executable, str(REPO / "main.py")], env=env, capture_output=True, text=True,
                         timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert "first_paint_s=" in out.stdout


def test_ui_and_registry_do_not_import_torch_at_import_time() -> None:
    code = ("import sys; import ui.main_window, ui.app, workbench.registry, workbench.datasets, workbench.presets;"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO,
                         env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert out.stdout.strip() == "False", out.stderr


# ------------------------------------------------------------------------------- the leak check
def test_leak_tracker_reports_a_running_thread_and_an_active_timer(qapp, monkeypatch) -> None:
    tracker = QtLeakTracker()
    tracker.install(monkeypatch)
    thread = QThread()
    thread.start()
    timer = QTimer()
    timer.start(1000)
    problems = tracker.problems()
    assert len(problems) == 2
    assert "dangling QThread" in problems[0] and "test_main_window.py" in problems[0]
    assert "QTimer" in problems[1] and "still active" in problems[1]
    assert not thread.isRunning() and not timer.isActive()
    assert tracker.problems() == []  # stopped and forgotten


def test_leak_check_fixture_fails_a_leaking_test(tmp_path) -> None:
    """Run a deliberately leaking test in a child pytest with this conftest: it must error."""
    (tmp_path / "conftest.py").write_text(textwrap.dedent(f"""
        import importlib.util, os, sys
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        sys.path.insert(0, {str(REPO)!r})
        spec = importlib.util.spec_from_file_location("uiconf", {str(REPO / 'tests' / 'ui' / 'conftest.py')!r})
        uiconf = importlib.util.module_from_spec(spec); spec.loader.exec_module(uiconf)
        qt_leak_check = uiconf.qt_leak_check
        pytest_configure = uiconf.pytest_configure
    """))
    (tmp_path / "test_leaky.py").write_text(textwrap.dedent("""
        import pytest
        from PySide6.QtCore import QTimer, QThread
        KEEP = []
        def test_leaks_timer(qapp):
            t = QTimer(); t.start(5000); KEEP.append(t)
        def test_leaks_thread(qapp):
            th = QThread(); th.start(); KEEP.append(th)
        @pytest.mark.qt_allow_leaks
        def test_allowed(qapp):
            t = QTimer(); t.start(5000); KEEP.append(t)
        def test_clean(qapp):
            t = QTimer(); t.start(5000); t.stop()
    """))
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    summary = out.stdout.strip().splitlines()[-1]
    assert "4 passed" in summary and "2 error" in summary, out.stdout[-3000:]
    assert "still active at teardown" in out.stdout and "dangling QThread" in out.stdout
