"""Start-up time of the desktop app: ``python bench/startup.py [--runs 5]``.

Launches ``python main.py`` in a subprocess (offscreen, ``AFWB_EXIT_AFTER_PAINT=1``) several times
and reports, in seconds of wall-clock time from just before the launch (``AFWB_LAUNCH_T0``):

* ``first_paint_s`` — the window has painted for the first time (a usable editor: cards, palette,
  inspector; shapes show "…");
* ``shapes_s`` — torch is imported and every card shows its output shape and parameter count.

The first launch warms the disk cache and is reported separately; the median of the others is the
"warm" figure. Goal: first paint ≤ 2 s warm.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def launch(editor_only: bool = False) -> dict[str, float]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", AFWB_EXIT_AFTER_PAINT="1",
               AFWB_CONFIG=tempfile.mkdtemp(prefix="afwb-startup-"))
    if editor_only:
        env["AFWB_EDITOR_ONLY"] = "1"
    env["AFWB_LAUNCH_T0"] = repr(time.time())
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, str(REPO / "main.py")], env=env, capture_output=True, text=True,
                         timeout=300, cwd=REPO)
    total = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"main.py failed ({out.returncode}):\n{out.stderr[-2000:]}")
    figures = {"exit_s": total}
    for line in out.stdout.splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            figures[key.strip()] = float(value)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="launches after the cold one (default 5)")
    parser.add_argument("--editor-only", action="store_true",
                        help="leave the training side (dashboard, runs) out, to see what it costs")
    args = parser.parse_args()
    print("editor only (AFWB_EDITOR_ONLY=1)" if args.editor_only else "full app")
    cold = launch(args.editor_only)
    warm = [launch(args.editor_only) for _ in range(args.runs)]
    med = {k: statistics.median(r[k] for r in warm) for k in ("first_paint_s", "shapes_s", "exit_s")}
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "")
    print(f"first launch:   first paint {cold['first_paint_s']:.2f} s, shapes {cold['shapes_s']:.2f} s")
    print(f"warm (median of {args.runs}): first paint {med['first_paint_s']:.2f} s, shapes {med['shapes_s']:.2f} s, "
          f"process exit {med['exit_s']:.2f} s")
    print("warm first paint, each run (s): " + ", ".join(f"{r['first_paint_s']:.2f}" for r in warm))
    print(f"goal first paint ≤ 2 s: {'met' if med['first_paint_s'] <= 2.0 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
