"""GUI responsiveness while a run trains in the app, and the app's training speed against the CLI.

    python bench/gui_latency.py [--preset z-mnist] [--limit-train 12000] [--epochs 1] [--data-root DIR]
    python bench/gui_latency.py --first-run [--preset z-digits] [--epochs 2] [--repeat 3]

1. Opens the main window (offscreen unless --headed) with training installed, starts the preset
   and measures the gaps between ticks of a 10 ms ``QTimer`` on the GUI thread from the run's
   ``RunStarted`` to its final event (milliseconds: longest, 99th and 90th percentile) and the
   GUI thread's own CPU time in the longest gap (CPU busy in our code vs. waiting for a core).
2. Runs the same preset headless: ``python main.py train PRESET --limit-train N --epochs E
   --data-root DIR --device cpu`` in a subprocess, and reads ``samples_per_s`` (training samples
   per wall-clock second, from the run's ``summary.json``) of both.

``--first-run`` measures the FIRST run after launch instead, each time in a fresh process started
like ``python main.py`` (offscreen, the window shown, shapes computed after the first paint): it
waits until the app is idle after start-up (its import warm-up done, when it has one, and at least
3 s after the first paint, as a user reading the window would), clicks the Run button and measures
the 10 ms timer gaps from that click to the run's final event (and, separately, the longest gap
between the first paint and the click: what the start-up work costs the GUI).

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

    from ui.app import build_main_window, create_app

    app = create_app([])   # as the app's main() makes it (theme, GIL switch interval)
    import torch  # noqa: F401 - as in the app after the editor computed shapes

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


def first_run_child(preset_key: str, epochs: int, runs_root: str) -> dict:
    """In a fresh process: launch the app as main.py does, click Run once after start-up, measure."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["AFWB_RUNS"] = runs_root
    import numpy as np
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QToolButton

    from ui.app import build_main_window, create_app
    from workbench.presets import resolve_preset

    app = create_app([])
    preset = resolve_preset(preset_key)
    preset.train.epochs = epochs
    preset.train.device = "cpu"
    window = build_main_window(preset, ask=lambda title, text, buttons: "Discard" if "Discard" in buttons
                               else buttons[0])
    window.resize(1400, 900)
    c = window.training_controller
    state: dict = {"phase": "startup", "last": time.perf_counter(), "cpu": time.thread_time(), "final": None,
                   "painted": None, "ready": False, "warm": False}
    gaps: dict[str, list[float]] = {"startup": [], "run": [], "second": []}
    cpu: list[float] = []
    busy: dict[str, list[float]] = {"run": [], "second": []}   # GUI-thread CPU ms per tick

    def tick() -> None:
        now, now_cpu = time.perf_counter(), time.thread_time()
        if state["phase"] in gaps and state["painted"] is not None:
            gaps[state["phase"]].append((now - state["last"]) * 1000.0)
            if state["phase"] == "run":
                cpu.append((now_cpu - state["cpu"]) * 1000.0)
            if state["phase"] in busy:
                busy[state["phase"]].append((now_cpu - state["cpu"]) * 1000.0)
        state["last"], state["cpu"] = now, now_cpu
        if (state["phase"] == "startup" and state["painted"] is not None and state["warm"]
                and window.analysis().report is not None and now - state["painted"] >= 3.0):
            state["phase"] = "run"
            state["last"], state["cpu"] = time.perf_counter(), time.thread_time()
            button = window.findChild(QToolButton, "runButton")
            QTest.mouseClick(button, Qt.MouseButton.LeftButton)
            state["clicked"] = time.perf_counter()

    def on_final(final) -> None:
        if state["phase"] == "run":   # the first run ended: click Run again for the comparison run
            state["final"] = final
            state["run_s"] = time.perf_counter() - state["clicked"]
            state["phase"] = "between"
            QTimer.singleShot(1000, click_again)
        else:
            state["phase"] = "done"
            state["second_final"] = final
            QTimer.singleShot(200, app.quit)

    def click_again() -> None:
        state["phase"] = "second"
        state["last"] = time.perf_counter()
        QTest.mouseClick(window.findChild(QToolButton, "runButton"), Qt.MouseButton.LeftButton)

    window.first_painted.connect(lambda: state.update(painted=time.perf_counter()))
    try:   # as ui.app.main does
        from ui.warmup import warm_after_start
    except ImportError:   # a checkout from before the warm-up: only the 3 s wait
        state["warm"] = True
    else:
        warm_after_start(window).finished.connect(lambda: state.update(warm=True))
    c.run_finished.connect(on_final)
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    timer.start()
    window.show()
    QTimer.singleShot(180_000, app.quit)  # safety net
    app.exec()
    timer.stop()
    final = state["final"]
    window.close()
    if final is None or final.summary.status != "finished":
        raise SystemExit(f"the first run did not finish: {getattr(final, 'message', final)}")
    run = np.array(gaps["run"])
    worst = int(np.argmax(run))
    return {"max_gap_ms": float(run.max()), "second_max_gap_ms": float(max(gaps["second"] or [float("nan")])),
            "max_busy_ms": float(max(busy["run"])),
            "second_max_busy_ms": float(max(busy["second"] or [float("nan")])),
            "p99_gap_ms": float(np.percentile(run, 99)), "ticks": len(run),
            "cpu_in_max_gap_ms": float(cpu[worst]), "startup_max_gap_ms": float(max(gaps["startup"] or [0.0])),
            "run_s": state["run_s"], "steps": final.summary.steps}


def measure_first_run(preset_key: str, epochs: int) -> dict:
    """:func:`first_run_child` in a fresh Python process (nothing imported yet)."""
    with tempfile.TemporaryDirectory(prefix="afwb-first-run-") as tmp:
        env = dict(os.environ, AFWB_CONFIG=str(Path(tmp) / "config"), QT_QPA_PLATFORM="offscreen")
        out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--first-run-child", "--preset",
                              preset_key, "--epochs", str(epochs), "--runs-root", str(Path(tmp) / "runs")],
                             env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"first-run child failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(lines[-1])


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
    parser.add_argument("--first-run", action="store_true",
                        help="measure the first run after launch, in fresh processes (see the module docstring)")
    parser.add_argument("--repeat", type=int, default=3, help="--first-run: how many fresh processes")
    parser.add_argument("--first-run-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--runs-root", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--cli-default-threads", action="store_true",
                        help="also run the CLI with torch's default thread count (all cores)")
    args = parser.parse_args(argv)
    if args.first_run_child:
        print(json.dumps(first_run_child(args.preset, args.epochs, args.runs_root)), flush=True)
        return 0
    if args.first_run:
        preset = args.preset if args.preset != parser.get_default("preset") else "z-digits"
        epochs = args.epochs if args.epochs != parser.get_default("epochs") else 2
        rows = [measure_first_run(preset, epochs) for _ in range(max(1, args.repeat))]
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"first run after launch: preset {preset}, {epochs} epoch(s), CPU, {os.cpu_count()} cores, "
              f"{len(rows)} fresh processes, load average {load:.1f} at the end")
        print("| process | longest gap, click → end of the first run | GUI thread busy in it | most GUI-thread CPU "
              "in one gap | 99th pct gap | ticks | first run | second run (same process): longest gap / most GUI "
              "CPU | longest gap, first paint → click |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for i, r in enumerate(rows, 1):
            print(f"| {i} | {r['max_gap_ms']:.0f} ms | {r['cpu_in_max_gap_ms']:.0f} ms | {r['max_busy_ms']:.0f} ms | "
                  f"{r['p99_gap_ms']:.0f} ms | {r['ticks']} | {r['run_s']:.1f} s ({r['steps']} steps) | "
                  f"{r['second_max_gap_ms']:.0f} / {r['second_max_busy_ms']:.0f} ms | "
                  f"{r['startup_max_gap_ms']:.0f} ms |")
        return 0
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
