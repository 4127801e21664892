"""Shared fixtures for the Qt tests (pytest-qt, offscreen).

* ``qt_leak_check`` (autouse): fails any test that leaves a ``QThread`` running or a ``QTimer``
  active (napari PR #5373 style). ``QThread.start`` and ``QTimer.start`` are wrapped to record
  every instance started from Python with the stack that started it; at teardown (after pytest-qt
  has closed the test's widgets) a still-running thread is asked to ``quit()`` and ``wait(2000)``,
  and the test fails with the stack that started it; a still-active timer is stopped and fails the
  test the same way. Timers started by third-party code (site-packages: pytest-qt, pyqtgraph) are
  not tracked. Opt out per test with ``@pytest.mark.qt_allow_leaks``.
* ``_gui_thread_gc`` (autouse, session): while a test runs the Qt event loop, the suite's
  collector (tests/conftest.py) collects from a timer on the GUI thread, as the app does
  (ui/gui_gc.py).
* ``main_window``: a :class:`ui.main_window.MainWindow` on the default preset with an ``ask`` stub
  (answers "Discard" to unsaved-changes prompts, "OK" otherwise) that records every prompt in
  ``window.asked``; file prompts go through ``window.ask_path`` (tests set it).
"""
from __future__ import annotations

import traceback
import weakref
from pathlib import Path
from typing import Any, Callable

import pytest

_SITE_MARKERS = ("site-packages", "dist-packages", "/lib/python")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "qt_allow_leaks: do not fail this test for running QThreads/active QTimers")


class QtLeakTracker:
    """Records QThread/QTimer instances started from project code; :meth:`problems` lists leaks."""

    def __init__(self) -> None:
        self.threads: list[tuple[weakref.ref, str]] = []
        self.timers: list[tuple[weakref.ref, str]] = []

    @staticmethod
    def _caller_is_ours(stack: list[traceback.FrameSummary]) -> bool:
        # stack[-1] is the wrapper itself; stack[-2] called .start()
        caller = stack[-2].filename if len(stack) >= 2 else ""
        return not any(m in caller for m in _SITE_MARKERS)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from PySide6.QtCore import QThread, QTimer

        tracker = self
        orig_thread_start = QThread.start
        orig_timer_start = QTimer.start

        def thread_start(self: Any, *args: Any, **kwargs: Any) -> Any:
            stack = traceback.extract_stack()
            tracker.threads.append((weakref.ref(self), "".join(traceback.format_list(stack[:-1]))))
            return orig_thread_start(self, *args, **kwargs)

        def timer_start(self: Any, *args: Any, **kwargs: Any) -> Any:
            stack = traceback.extract_stack()
            if tracker._caller_is_ours(stack):
                tracker.timers.append((weakref.ref(self), "".join(traceback.format_list(stack[:-1]))))
            return orig_timer_start(self, *args, **kwargs)

        monkeypatch.setattr(QThread, "start", thread_start)
        monkeypatch.setattr(QTimer, "start", timer_start)

    def problems(self) -> list[str]:
        """Stop what leaked and describe it (empty list: nothing leaked)."""
        import shiboken6

        out: list[str] = []
        for ref, stack in self.threads:
            thread = ref()
            if thread is None or not shiboken6.isValid(thread):
                continue
            if thread.isRunning():
                thread.quit()
                joined = thread.wait(2000)
                out.append(f"dangling QThread {thread!r} still running at teardown "
                           f"({'joined after quit()' if joined else 'did NOT stop within 2 s'}); started in:\n{stack}")
        for ref, stack in self.timers:
            timer = ref()
            if timer is None or not shiboken6.isValid(timer):
                continue
            if timer.isActive():
                timer.stop()
                out.append(f"QTimer {timer!r} (interval {timer.interval()} ms) still active at teardown; "
                           f"started in:\n{stack}")
        self.threads.clear()
        self.timers.clear()
        return out


@pytest.fixture(autouse=True)
def qt_leak_check(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Fail the test if it leaves a QThread running or a QTimer active (see the module docstring)."""
    tracker = QtLeakTracker()
    tracker.install(monkeypatch)
    yield tracker
    problems = tracker.problems()
    if problems and request.node.get_closest_marker("qt_allow_leaks") is None:
        pytest.fail("Qt objects leaked by this test:\n\n" + "\n\n".join(problems), pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _gui_thread_gc(qapp, main_thread_gc):
    """Collect cyclic garbage on the GUI thread from a timer while tests spin the event loop."""
    from ui.gui_gc import install_gui_thread_gc

    collector = install_gui_thread_gc(qapp, collector=main_thread_gc)
    yield collector
    collector.timer.stop()


class AskStub:
    """Stands in for the window's ``ask``: records prompts, answers from a queue or a default rule."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, tuple[str, ...]]] = []
        self.answers: list[str] = []

    def __call__(self, title: str, text: str, buttons: tuple[str, ...]) -> str:
        self.calls.append((title, text, tuple(buttons)))
        if self.answers:
            return self.answers.pop(0)
        return "Discard" if "Discard" in buttons else buttons[0]

    def titles(self) -> list[str]:
        return [c[0] for c in self.calls]


@pytest.fixture
def ask() -> AskStub:
    return AskStub()


@pytest.fixture
def make_window(qtbot, ask: AskStub) -> Callable[..., Any]:
    """Factory: ``make_window(preset=None)`` → a MainWindow registered with qtbot (torch preloaded,
    so shapes are computed at once), its ``ask`` the shared :class:`AskStub`, modeless dialogs kept
    in ``window.dialogs`` instead of shown."""
    import torch  # noqa: F401 - the window computes shapes synchronously when torch is loaded

    import shiboken6
    from PySide6.QtWidgets import QApplication

    from ui.main_window import MainWindow

    made: list[Any] = []

    def make(preset=None, **kwargs: Any):
        window = MainWindow(preset, ask=ask, **kwargs)
        made.append(window)
        window.asked = ask
        window.dialogs = []
        window.show_dialog = window.dialogs.append
        window.ask_path = lambda *a: pytest.fail(f"unexpected file prompt {a}")
        qtbot.addWidget(window)
        return window

    yield make
    # pytest-qt has closed the windows by now; free them so later tests (theme switches repolish
    # every live widget) do not pay for them.
    for window in made:
        if shiboken6.isValid(window):
            window.deleteLater()
    QApplication.processEvents()


@pytest.fixture
def main_window(make_window):
    """The main window on the default built-in preset (z-digits)."""
    return make_window()


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def double_click_item(qtbot, tree, item) -> None:
    """Double-click a tree item the way a user does: press/release, then the double-click event
    (Qt 6's QTest.mouseDClick sends only the MouseButtonDblClick event, which item views ignore
    without the preceding press)."""
    from PySide6.QtCore import Qt

    tree.scrollToItem(item)
    pos = tree.visualItemRect(item).center()
    assert tree.itemAt(pos) is item, "item not visible: is the widget shown and large enough?"
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    qtbot.mouseDClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=pos)
