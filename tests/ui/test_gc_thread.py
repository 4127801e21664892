"""Python's cyclic garbage collector never runs on the training thread (issue #11 item 2).

The hazard: a window with menus, shown and then dropped in a reference cycle, is destroyed by an
automatic collection on whatever thread allocates next — during a run, the training thread
(``load_dataset`` importing sklearn allocates a great deal). Qt objects destroyed off the GUI
thread hang the app (GUI thread on a Qt mutex, training thread on the GIL) or segfault it.

Each test provokes it: a low collection threshold (50, 5, 5), windows with menus shown then
dropped in self-cycles before and every 20 ms during a real z-digits run through the app's
training controller on its QThread. It records, with ``gc.callbacks``, every collection that
starts on a thread other than the main one, and passes only when there was none, the run
finished, and the dropped windows were really collected (on the GUI thread).

* ``test_app_collects_only_on_the_gui_thread`` runs the app's own start-up (``ui.app.main``) in a
  child process — this file run as a script — so a regression fails the test (exit code, stacks
  from faulthandler) instead of killing the suite.
* ``test_suite_collects_only_on_the_main_thread`` does the same inside the test process, under
  the suite's set-up (tests/conftest.py, tests/ui/conftest.py).
"""
from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import weakref
from pathlib import Path
from typing import Any

LOW_THRESHOLDS = (50, 5, 5)
EPOCHS = 2


class OffThreadCollections:
    """Records every collection that starts on a thread other than the one that made this."""

    def __init__(self) -> None:
        self.main = threading.get_ident()
        self.seen: list[tuple[str, int]] = []

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start" and threading.get_ident() != self.main:
            self.seen.append((threading.current_thread().name, info["generation"]))

    def __enter__(self) -> "OffThreadCollections":
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        gc.callbacks.remove(self)


def drop_windows_with_menus(n: int, dropped: list) -> None:
    """Show ``n`` windows, each with a menu-bar menu and a parentless menu, pop both menus up,
    hide everything, put each window and free menu in a self-cycle and drop them; ``dropped`` gets
    a weak reference to each (dead once the collector destroyed it)."""
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QApplication, QMainWindow, QMenu

    for i in range(n):
        window = QMainWindow()
        menu = QMenu(f"Menu {i}", window)
        menu.addAction("one")
        menu.addAction("two")
        window.menuBar().addMenu(menu)
        free = QMenu(f"Free {i}")
        free.addAction("three")
        window.show()
        menu.popup(QPoint(10, 10))
        free.popup(QPoint(20, 20))
        QApplication.processEvents()
        menu.hide()
        free.hide()
        window.hide()
        window.cycle = window
        free.cycle = free
        window.free = free
        dropped.append(weakref.ref(window))
        dropped.append(weakref.ref(free))
        del window, menu, free


def small_digits():
    from workbench.presets import load_builtin

    preset = load_builtin("z-digits")
    preset.train.epochs = EPOCHS
    preset.train.device = "cpu"
    return preset


def _app_scenario() -> int:
    """Child process: the app's own start-up (``ui.app.main``) with the provocation; exit 0 when
    no collection ran off the GUI thread, the run finished and the dropped windows were collected."""
    import faulthandler

    faulthandler.enable()
    faulthandler.dump_traceback_later(150, exit=True)  # a hang prints every thread's stack
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    import ui.app
    from workbench.events import Finished

    app = QApplication([sys.argv[0]])  # ui.app.main reuses it
    gc.set_threshold(*LOW_THRESHOLDS)
    dropped: list = []
    result: list = []
    ticker = QTimer()
    ticker.timeout.connect(lambda: drop_windows_with_menus(1, dropped))

    def scenario() -> None:
        window = next(w for w in app.topLevelWidgets() if hasattr(w, "training_controller"))
        controller = window.training_controller
        window.document.load(small_digits(), path=None)
        drop_windows_with_menus(30, dropped)

        def finished(final: Any) -> None:
            ticker.stop()
            result.append(final)
            QTimer.singleShot(500, window.close)  # let the GUI-thread collector run a few times

        controller.run_finished.connect(finished)
        ticker.start(20)
        if not controller.start_run():
            result.append("the run did not start")
            window.close()

    with OffThreadCollections() as off:
        QTimer.singleShot(0, scenario)
        code = ui.app.main([])
    gc.collect()  # on the main thread: what the timer has not collected yet
    alive = sum(ref() is not None for ref in dropped)
    final = result[0] if result else None
    print(f"exit={code} final={type(final).__name__} message={getattr(final, 'message', '')!r} "
          f"off_thread_collections={len(off.seen)} first={off.seen[:3]} dropped={len(dropped)} alive={alive}",
          flush=True)
    return 0 if (code == 0 and isinstance(final, Finished) and not off.seen and dropped and not alive) else 1


def test_app_collects_only_on_the_gui_thread(tmp_path: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OMP_NUM_THREADS": "1",
           "AFWB_RUNS": str(tmp_path / "runs"), "AFWB_DATA": str(tmp_path / "data"),
           "AFWB_CONFIG": str(tmp_path / "config")}
    try:
        proc = subprocess.run([sys.executable, __file__, "--app-scenario"], capture_output=True, text=True,
                              env=env, cwd=Path(__file__).resolve().parents[2], timeout=180)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the app hung (stacks, if dumped):\n{exc.stderr}") from None
    stderr = "\n".join(line for line in proc.stderr.splitlines() if "This plugin does not support" not in line)
    tail = f"{proc.stdout}\n{stderr[-6000:]}"
    assert proc.returncode == 0, f"exit status {proc.returncode} (negative: killed by that signal)\n{tail}"
    assert "off_thread_collections=0" in proc.stdout, tail


def test_suite_collects_only_on_the_main_thread(make_window, qtbot, main_thread_gc, one_torch_thread) -> None:
    from ui.training_controller import install_training
    from workbench.events import Finished

    before = gc.get_threshold(), main_thread_gc.thresholds
    gc.set_threshold(*LOW_THRESHOLDS)
    main_thread_gc.thresholds = LOW_THRESHOLDS
    dropped: list = []
    try:
        with OffThreadCollections() as off:
            window = make_window(small_digits())
            controller = install_training(window)
            window.show()
            qtbot.waitExposed(window)
            drop_windows_with_menus(30, dropped)
            ticker_ref: list = []
            from PySide6.QtCore import QTimer

            ticker = QTimer()
            ticker.timeout.connect(lambda: drop_windows_with_menus(1, dropped))
            ticker_ref.append(ticker)
            ticker.start(20)
            try:
                with qtbot.waitSignal(controller.run_finished, timeout=120_000) as blocker:
                    assert controller.start_run()
            finally:
                ticker.stop()
            qtbot.wait(300)  # the GUI-thread collector's timer runs a few times
            main_thread_gc.collect(2)
    finally:
        gc.set_threshold(*before[0])
        main_thread_gc.thresholds = before[1]
    assert isinstance(blocker.args[0], Finished), getattr(blocker.args[0], "message", "")
    assert off.seen == [], f"{len(off.seen)} collections ran off the main thread, first: {off.seen[:5]}"
    assert dropped and all(ref() is None for ref in dropped), "the dropped windows were not collected"


if __name__ == "__main__" and "--app-scenario" in sys.argv:
    sys.exit(_app_scenario())
