"""GUI responsiveness while a run trains in the app, and the app's training speed against the CLI.

    python bench/gui_latency.py [--preset z-mnist] [--limit-train 12000] [--epochs 1] [--data-root DIR]

1. Opens the main window (offscreen unless --headed) with training installed, starts the preset
   and measures the gaps between ticks of a 10 ms ``QTimer`` on the GUI thread from the run's
   ``RunStarted`` to its final event (milliseconds: longest, 99th and 90th percentile) and the
   GUI thread's own CPU time in the longest gap (CPU busy in our code vs. waiting for a core).
2. Runs the same preset headless: ``python main.py train PRESET --limit-train N --epochs E
   --data-root DIR --device cpu`` in a subprocess, and reads ``samples_per_s`` (training samples
   per wall-clock second, from the run's ``summary.json``) of both.

Prints one Markdown table row per figure; the numbers go in docs/benchmarks.md.
Data: the MNIST IDX files under --data-root, else env ``AFWB_DATA``, else ../shared/data/mnist.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def default_data_root() -> str:
    env = os.environ.get("AFWB_DATA")
    if env:
        return env
    return str(REPO.parent / "shared" / "data" / "mnist")


def measure_app(preset_key: str, limit: int, epochs: int, data_root: str, runs_root: str,
                headed: bool) -> dict:
    if not headed:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["AFWB_RUNS"] = runs_root
    os.environ["AFWB_DATA"] = data_root
    import numpy as np
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    import torch  # noqa: F401 - as in the app after the editor computed shapes

    from ui.app import build_main_window
    from workbench.events import RunStarted
    from workbench.presets import resolve_preset

    preset = resolve_preset(preset_key)
    preset.task.limit_train = limit
    preset.train.epochs = epochs
    preset.train.device = "cpu"
    window = build_main_window(preset, ask=lambda title, text, buttons: buttons[0])
    window.resize(1400, 900)
    window.show()
    c = window.training_controller
    gaps: list[float] = []
    cpu: list[float] = []
    state = {"on": False, "last": time.perf_counter(), "cpu": time.thread_time(), "final": None}

    def tick() -> None:
        now, now_cpu = time.perf_counter(), time.thread_time()
        if state["on"]:
            gaps.append((now - state["last"]) * 1000.0)
            cpu.append((now_cpu - state["cpu"]) * 1000.0)
        state["last"], state["cpu"] = now, now_cpu

    def on_events(batch: list) -> None:
        if any(isinstance(e, RunStarted) for e in batch):
            state["on"] = True
            state["last"], state["cpu"] = time.perf_counter(), time.thread_time()

    def on_final(final) -> None:
        state["on"] = False
        state["final"] = final
        QTimer.singleShot(200, app.quit)

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    c.run_started.connect(lambda _run: c.worker.events.connect(on_events))
    c.run_finished.connect(on_final)

    def go() -> None:
        timer.start()
        c.start_run()

    QTimer.singleShot(500, go)
    app.exec()
    timer.stop()
    final = state["final"]
    window.close()
    if final is None or final.summary.status != "finished":
        raise SystemExit(f"the app run did not finish: {getattr(final, 'message', final)}")
    g = np.array(gaps)
    worst = int(np.argmax(g))
    return {"max_gap_ms": float(g.max()), "p99_gap_ms": float(np.percentile(g, 99)),
            "p90_gap_ms": float(np.percentile(g, 90)), "ticks": len(g), "cpu_in_max_gap_ms": float(cpu[worst]),
            "samples_per_s": final.summary.samples_per_s, "seconds": final.summary.seconds,
            "steps": final.summary.steps}


def measure_cli(preset_key: str, limit: int, epochs: int, data_root: str, runs_root: str,
                threads: int | None) -> dict:
    """The headless CLI in a subprocess; ``threads`` sets OMP_NUM_THREADS (torch's intra-op
    threads) — None keeps torch's default (all cores)."""
    out = Path(runs_root) / f"cli-{threads or 'default'}"
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(REPO / "main.py"), "train", preset_key, "--limit-train", str(limit), "--epochs",
           str(epochs), "--data-root", data_root, "--device", "cpu", "--out", str(out), "--quiet"]
    env = {**os.environ, "AFWB_RUNS": str(out)}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    subprocess.run(cmd, check=True, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    summaries = sorted(out.glob("*/summary.json"))
    summary = json.loads(summaries[-1].read_text())
    if summary["status"] != "finished":
        raise SystemExit(f"the CLI run did not finish: {summary.get('message')}")
    return {"samples_per_s": summary["samples_per_s"], "seconds": summary["seconds"], "steps": summary["steps"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="z-mnist")
    parser.add_argument("--limit-train", type=int, default=12_000, help="training samples (task.limit_train)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--data-root", default=None, help="folder with the MNIST IDX files")
    parser.add_argument("--headed", action="store_true", help="show the window (default: offscreen)")
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument("--cli-default-threads", action="store_true",
                        help="also run the CLI with torch's default thread count (all cores)")
    args = parser.parse_args(argv)
    data_root = args.data_root or default_data_root()
    with tempfile.TemporaryDirectory(prefix="afwb-gui-latency-") as tmp:
        from ui.worker import training_threads

        threads = training_threads()
        cli = None if args.skip_cli else measure_cli(args.preset, args.limit_train, args.epochs, data_root, tmp,
                                                     threads)
        cli_all = (measure_cli(args.preset, args.limit_train, args.epochs, data_root, tmp, None)
                   if args.cli_default_threads and not args.skip_cli else None)
        app = measure_app(args.preset, args.limit_train, args.epochs, data_root, str(Path(tmp) / "app"), args.headed)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"preset {args.preset}, {args.limit_train} training samples, {args.epochs} epoch(s), CPU, "
          f"{os.cpu_count()} cores, load average {load:.1f} at the end")
    print("| figure | value |")
    print("|---|---|")
    print(f"| longest gap between 10 ms GUI timer ticks while training | {app['max_gap_ms']:.0f} ms "
          f"(GUI thread busy {app['cpu_in_max_gap_ms']:.0f} ms of it) |")
    print(f"| 99th / 90th percentile gap | {app['p99_gap_ms']:.0f} / {app['p90_gap_ms']:.0f} ms "
          f"over {app['ticks']} ticks |")
    print(f"| samples/s in the app | {app['samples_per_s']:,.0f} ({app['steps']} steps in {app['seconds']:.1f} s) |")
    if cli is not None:
        print(f"| samples/s headless CLI, {threads} torch thread(s) like the app | {cli['samples_per_s']:,.0f} "
              f"({cli['steps']} steps in {cli['seconds']:.1f} s) |")
        print(f"| app ÷ CLI | {app['samples_per_s'] / cli['samples_per_s']:.3f} |")
    if cli_all is not None:
        print(f"| samples/s headless CLI, torch default threads | {cli_all['samples_per_s']:,.0f} "
              f"({cli_all['steps']} steps in {cli_all['seconds']:.1f} s) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
