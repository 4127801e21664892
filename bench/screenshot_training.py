"""Screenshot of the app right after a real training run: docs/screenshot-training.png (1400×900).

    python bench/screenshot_training.py [--preset infinite-parity] [--epochs 30] [--out docs/screenshot-training.png]

Trains the preset in the app (offscreen, CPU; for infinite-parity a 12,000-sample version of the
Going-Deeper parity task so it takes seconds), overlays it on a second, shorter run with a
different learning rate (dashed), waits until the dashboard has drawn the last points and saves
``window.grab()``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="infinite-parity")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshot-training.png"))
    parser.add_argument("--heatmap", action="store_true", help="show the gradient heatmap instead of lines")
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("AFWB_RUNS", tempfile.mkdtemp(prefix="afwb-shot-"))
    os.environ.setdefault("AFWB_CONFIG", tempfile.mkdtemp(prefix="afwb-shot-config-"))

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from ui.app import build_main_window, create_app
    from workbench.presets import resolve_preset

    app = create_app([])
    import torch  # noqa: F401

    def preset_for(lr_scale: float, epochs: int):
        preset = resolve_preset(args.preset)
        if preset.task.dataset == "parity":
            preset.task.options = {**preset.task.options, "n_samples": 12_000}
            preset.task.batch_size = 250
            preset.monitor.every_steps = 5
        preset.train.epochs = epochs
        preset.train.device = "cpu"
        preset.train.lr *= lr_scale
        return preset

    window = build_main_window(preset_for(0.3, args.epochs // 2), ask=lambda t, x, b: b[0])
    window.resize(1400, 900)
    window.show()
    c = window.training_controller
    from PySide6.QtCore import Qt

    # Training is the subject here: give the dashboard most of the window's height.
    window.resizeDocks([c.dashboard_dock], [600], Qt.Orientation.Vertical)

    def train() -> None:
        loop = QEventLoop()
        c.run_finished.connect(loop.quit)
        QTimer.singleShot(0, c.start_run)
        loop.exec()
        c.run_finished.disconnect(loop.quit)
        while not c.dashboard.is_idle():
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)

    train()                                   # a slower baseline (lr × 0.3), half as long
    first = c.run_id
    window.document.load(preset_for(1.0, args.epochs))
    train()                                   # the run of the preset itself
    c.runs_panel.set_checked(first, True)     # overlay: dashed
    if args.heatmap:
        c.dashboard.grad_panel.set_heatmap(True)
    c.dashboard.redraw()
    for _ in range(10):
        app.processEvents()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    image = window.grab()
    image.save(args.out)
    print(f"wrote {args.out} ({image.width()}×{image.height()}); last run: {c.last_final.summary.status}, "
          f"learned depth {dict(c.last_final.summary.learned_depth)}")
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
