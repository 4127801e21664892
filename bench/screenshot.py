"""Screenshots of the app's three workspaces, after real training runs:

    python bench/screenshot.py [--workspace all|build|train|evaluate] [--theme light|dark]
                               [--size 1400x900] [--out-dir docs] [--suffix ""]
                               [--build-preset z-mnist] [--train-preset infinite-parity] [--epochs 30]

Opens the main window offscreen (a fresh settings folder: the default layout) and saves
``window.grab()`` of each workspace as ``<out-dir>/screenshot-<workspace><suffix>.png``:

* **build** — ``--build-preset`` in the editor, a card selected so the inspector shows its form;
* **train** — ``--train-preset`` trained three times in the app (CPU; learning rate × 0.3, × 3 and
  × 1, the last one the current run; for infinite-parity a 12,000-sample version of the
  Going-Deeper parity task so each run takes seconds), all three overlaid;
* **evaluate** — the Evaluate workspace with the last of those runs selected in the runs list.

The README shows the default (light, 1400×900) images; ``--theme dark --size 1024x700 --suffix
-dark-1024`` and the like are for looking at the other combinations.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WORKSPACES = ("build", "train", "evaluate")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", default="all", choices=("all",) + WORKSPACES)
    parser.add_argument("--theme", default="light", choices=("light", "dark", "system"))
    parser.add_argument("--size", default="1400x900", help="window size, WIDTHxHEIGHT")
    parser.add_argument("--out-dir", default=str(REPO / "docs"))
    parser.add_argument("--suffix", default="", help="appended to each file name (before .png)")
    parser.add_argument("--build-preset", default="z-mnist")
    parser.add_argument("--train-preset", default="infinite-parity")
    parser.add_argument("--epochs", type=int, default=30, help="epochs of the current (last) run")
    parser.add_argument("--select", type=int, default=0, help="build: index of the layer card to select")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    wanted = WORKSPACES if args.workspace == "all" else (args.workspace,)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("AFWB_RUNS", tempfile.mkdtemp(prefix="afwb-shot-runs-"))
    os.environ["AFWB_CONFIG"] = tempfile.mkdtemp(prefix="afwb-shot-config-")  # default layout, no user prefs

    import torch

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from ui.app import build_main_window, create_app
    from ui.theme import apply_theme
    from workbench.presets import resolve_preset

    torch.set_num_threads(1)
    app = create_app([])
    apply_theme(app, args.theme)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def pump(n: int = 20) -> None:
        for _ in range(n):
            app.processEvents()

    def preset_for(key: str, lr_scale: float = 1.0, epochs: int | None = None):
        preset = resolve_preset(key)
        if preset.task.dataset == "parity":
            preset.task.options = {**preset.task.options, "n_samples": 12_000}
            preset.task.batch_size = 250
            preset.monitor.every_steps = 5
        if epochs is not None:
            preset.train.epochs = epochs
        preset.train.device = "cpu"
        preset.train.lr *= lr_scale
        return preset

    window = build_main_window(preset_for(args.build_preset), ask=lambda t, x, b: "Discard" if "Discard" in b else b[0])
    window.resize(width, height)
    window.show()
    window.ensure_shapes()
    c = window.training_controller
    saved: list[str] = []

    def shot(workspace: str) -> None:
        window.show_workspace(workspace.capitalize())
        pump(30)
        if workspace == "train":
            c.dashboard.redraw()
            pump(10)
        path = out_dir / f"screenshot-{workspace}{args.suffix}.png"
        window.grab().save(str(path))
        saved.append(f"{path} ({window.width()}×{window.height()})")

    if "build" in wanted:
        if args.select >= 0 and window.document.current.model.layers:
            window.editor.select((args.select,))
        shot("build")

    if "train" in wanted or "evaluate" in wanted:
        def train() -> None:
            loop = QEventLoop()
            c.run_finished.connect(loop.quit)
            QTimer.singleShot(0, c.start_run)
            loop.exec()
            c.run_finished.disconnect(loop.quit)
            while not c.dashboard.is_idle():
                app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)

        ids = []
        for scale, epochs in ((0.3, max(1, args.epochs // 2)), (3.0, max(1, args.epochs // 2)), (1.0, args.epochs)):
            window.document.load(preset_for(args.train_preset, scale, epochs))
            train()
            ids.append(c.run_id)
        for run_id in ids:
            c.runs_panel.set_checked(run_id, True)
        c.runs_panel.select(ids[-1])
        final = c.last_final.summary
        print(f"last run: {final.status}, {final.steps} steps in {final.seconds:.1f} s, "
              f"best val accuracy {final.best_val_accuracy}, learned depth {dict(final.learned_depth)}")
        for workspace in ("train", "evaluate"):
            if workspace in wanted:
                shot(workspace)

    print("saved " + "; ".join(saved))
    window.close()
    QApplication.processEvents()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
