"""Application start-up: the QApplication, the theme, the main window with training installed.

``python main.py [PRESET]`` opens the app on the default built-in preset (``z-digits``), or on
``PRESET`` (a file path or a built-in key). ``AFWB_EXIT_AFTER_PAINT=1`` makes the app quit right
after the first paint of the window and the shape inference that follows it (``=paint``: right
after the first paint) and print, in seconds since ``AFWB_LAUNCH_T0`` (a
``time.time()`` taken by the launcher; the process start time otherwise):
``first_paint_s=…`` (a usable window: the cards are there) and ``shapes_s=…`` (shapes and
parameter counts filled in, torch loaded). ``bench/startup.py`` uses it; ``AFWB_EDITOR_ONLY=1``
leaves the training side out (to measure what it costs).
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from ui import settings as settings_mod
from ui.gui_gc import install_gui_thread_gc
from ui.theme import apply_theme


def _process_start_time() -> float:
    """Wall-clock time this process started (Linux /proc; else now), in seconds since the epoch."""
    t0 = os.environ.get("AFWB_LAUNCH_T0")
    if t0:
        try:
            return float(t0)
        except ValueError:
            pass
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
        return time.time() - uptime + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.time()


#: The GIL switch interval while the app runs, in seconds (Python's default is 0.005).
GUI_SWITCH_INTERVAL_S = 0.001


def create_app(argv: list[str] | None = None) -> QApplication:
    """The QApplication (existing one reused), named, with the saved theme applied."""
    app = QApplication.instance()
    if app is None:
        app = QApplication([sys.argv[0] if sys.argv else "afwb", *(argv or [])])
    # The training thread holds the GIL for up to the switch interval whenever the GUI thread asks
    # for it, and the GUI thread asks many times per event (every Python override Qt calls while
    # painting): at Python's default 5 ms those waits added up to tens of milliseconds of stall.
    # 1 ms keeps each wait short; the training thread's speed is unchanged (docs/benchmarks.md).
    sys.setswitchinterval(GUI_SWITCH_INTERVAL_S)
    app.setOrganizationName(settings_mod.ORGANIZATION)
    app.setApplicationName(settings_mod.APPLICATION)
    app.setApplicationDisplayName(settings_mod.APPLICATION)
    apply_theme(app, settings_mod.theme_name(settings_mod.make_settings()))
    return app  # type: ignore[return-value]


def build_main_window(preset=None, **kwargs: Any):
    """A :class:`ui.main_window.MainWindow` with the training side installed
    (``ui.training_controller.install_training``) when that module is present."""
    from ui.main_window import MainWindow

    window = MainWindow(preset, **kwargs)
    try:
        from ui.training_controller import install_training
    except ImportError as exc:
        if getattr(exc, "name", None) not in ("ui.training_controller",):
            raise
        install_training = None
    if install_training is not None:
        window.training_controller = install_training(window)
    return window


def main(argv: list[str] | None = None) -> int:
    """Open the app; ``argv`` may hold one preset (path or built-in key). Returns the exit code."""
    args = list(argv or [])
    t0 = _process_start_time()
    app = create_app([])
    # Python's cyclic GC only on this (the GUI) thread: a Qt object in a reference cycle must
    # never be destroyed by a collection that happens to run on the training thread.
    collector = install_gui_thread_gc(app)
    preset = None
    if args:
        from workbench.presets import resolve_preset
        from workbench.spec import SpecError

        try:
            preset = resolve_preset(args[0])
        except SpecError as exc:
            print(f"cannot open {args[0]}: {exc}", file=sys.stderr)
            return 2
    if os.environ.get("AFWB_EDITOR_ONLY"):  # diagnostic (bench/startup.py --editor-only): no training side
        from ui.main_window import MainWindow

        window = MainWindow(preset)
    else:
        window = build_main_window(preset)
        if not os.environ.get("AFWB_EXIT_AFTER_PAINT"):   # a start-up measurement quits before any run
            from ui.warmup import warm_after_start

            warm_after_start(window)   # the first run's heavy imports, at idle after start-up
    if args and os.path.isfile(args[0]):
        from pathlib import Path

        window.document.load(preset, Path(args[0]))
    if os.environ.get("AFWB_EXIT_AFTER_PAINT"):
        def painted() -> None:
            print(f"first_paint_s={time.time() - t0:.3f}", flush=True)

        def shapes() -> None:
            print(f"shapes_s={time.time() - t0:.3f}", flush=True)
            QTimer.singleShot(0, window.close)

        window.first_painted.connect(painted)
        if os.environ["AFWB_EXIT_AFTER_PAINT"] == "paint":  # do not wait for torch
            window.first_painted.connect(lambda: QTimer.singleShot(0, window.close))
        else:
            window.shapes_ready.connect(shapes)
        QTimer.singleShot(60_000, app.quit)  # safety net
    window.show()
    code = int(app.exec())
    collector.timer.stop()
    return code
