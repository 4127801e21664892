"""Save screenshots of the editor: ``python bench/screenshot.py [--preset z-mnist] [--theme light|dark]
[--out docs/screenshot-editor.png] [--select N]``.

Opens the main window (training side installed when present) offscreen at 1400×900, waits for the
shapes, selects a card so the inspector shows a layer form, and saves ``window.grab()``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="z-mnist")
    parser.add_argument("--theme", default="light", choices=("light", "dark", "system"))
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshot-editor.png"))
    parser.add_argument("--select", type=int, default=0, help="index of the layer card to select (-1: none)")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("AFWB_CONFIG", tempfile.mkdtemp(prefix="afwb-shot-"))  # default layout, no user prefs

    import torch  # noqa: F401  - shapes at once

    from PySide6.QtWidgets import QApplication

    from ui.app import build_main_window, create_app
    from ui.theme import apply_theme

    app = create_app([])
    apply_theme(app, args.theme)
    window = build_main_window(ask=lambda *a: "Discard")
    window.resize(1400, 900)
    window.open_builtin(args.preset)
    window.show()
    window.ensure_shapes()
    if args.select >= 0 and window.document.current.model.layers:
        window.editor.select((args.select,))
    for _ in range(10):
        app.processEvents()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    ok = window.grab().save(args.out)
    print(f"{'saved' if ok else 'FAILED to save'} {args.out} ({window.width()}×{window.height()})")
    window.close()
    QApplication.processEvents()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
