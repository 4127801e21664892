"""Re-run published experiments from their presets' protocols and record measured vs published.

:func:`plan_experiment` expands a preset's ``reproduction`` protocol (:mod:`workbench.protocol`)
for one budget into runs, one per grid point × seed, each a validated preset. :class:`Reproducer`
trains them one after another with the ordinary :class:`~workbench.trainer.Trainer`, each into its
own run folder under the output folder, and after every run rewrites ``results.json`` there
(atomically), so a stop or a crash keeps every finished row; :mod:`workbench.reproduce_report`
turns that file into the Markdown report and its figures.

Per run the row records: the experiment key, grid point and seed, status, device (and its name),
wall time (s, data loading included) and training time (s), epochs and optimiser steps, the best
and the final validation accuracy (% of the validation set, which for MNIST/CIFAR-10 and the
checkerboard is the published test split), the epoch of the best, each ``InfiniteDepth`` layer's
learned w (dimensionless) and the per-epoch curve. Status is the trainer's (finished, stopped,
failed), ``diverged`` for a run its divergence guard ended (a non-finite or exploding loss; its
best epoch still counts, as in the sources, which kept their best-so-far on NaN), or ``data
missing``. A rerun with the same output folder skips the rows it already finished with the
identical preset (resume).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import platform
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from .protocol import BudgetPlan, Reproduction, apply_overrides, reproduction_to_dict
from .spec import Preset, Problem, SpecError, dumps_preset

__all__ = [
    "RESULTS_FILE", "RESULTS_FORMAT", "PlannedRun", "Experiment", "RunBegins", "RunEnds", "plan_experiment",
    "RunProgress", "Reproducer", "train_planned_run", "base_row", "load_results", "machine_info", "source_commit",
    "point_label", "planned_summary", "CURVE_POINTS",
]

RESULTS_FILE = "results.json"
RESULTS_FORMAT = "afwb.reproduction/1"
REPO = Path(__file__).resolve().parents[1]
#: at most this many points of a per-epoch curve are stored per run (plus the best and the last)
CURVE_POINTS = 800


@dataclass(frozen=True)
class PlannedRun:
    """One run of an experiment: the grid point (path → value), the seed and the preset to train."""

    key: str
    point: tuple[tuple[str, Any], ...]
    seed: int
    preset: Preset
    fingerprint: str

    @property
    def label(self) -> str:
        return point_label(dict(self.point), self.seed)


@dataclass
class Experiment:
    """A preset's protocol expanded for one budget; ``skip`` (non-empty) says why it is not run."""

    key: str
    name: str
    reference: str
    preset: Preset
    protocol: Reproduction
    budget: str
    plan: BudgetPlan
    runs: list[PlannedRun] = field(default_factory=list)
    skip: str = ""
    shortened: str = ""

    def header(self) -> dict[str, Any]:
        """The experiment as stored in ``results.json``."""
        return {"key": self.key, "name": self.name, "reference": self.reference, "budget": self.budget,
                "skip": self.skip, "estimate": self.plan.estimate, "shortened": self.shortened,
                "overrides": dict(self.plan.overrides), "budget_grid": dict(self.plan.grid),
                "planned_runs": len(self.runs),
                "epochs": int(self.preset.train.epochs),
                "protocol": reproduction_to_dict(self.protocol)}


@dataclass(frozen=True)
class RunBegins:
    """Sent before run ``index`` (0-based) of ``total`` starts."""

    run: PlannedRun
    index: int
    total: int


@dataclass(frozen=True)
class RunEnds:
    """Sent after a run ended (or was found missing its data); ``row`` is what was recorded."""

    row: Mapping[str, Any]
    index: int
    total: int


def _short(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def point_label(point: Mapping[str, Any], seed: int | None = None) -> str:
    """``"lr=0.05, seed 0"``: the grid values by their last path segment, then the seed."""
    parts = [f"{_short(k)}={v:g}" if isinstance(v, float) else f"{_short(k)}={v}" for k, v in point.items()]
    if seed is not None:
        parts.append(f"seed {seed}")
    return ", ".join(parts)


def _fingerprint(preset: Preset) -> str:
    return hashlib.sha256(dumps_preset(preset).encode("utf-8")).hexdigest()[:16]


def plan_experiment(key: str, preset: Preset, budget: str, *, device: str | None = None) -> Experiment:
    """Expand ``preset``'s protocol for ``budget`` into runs (grid points × seeds), each preset
    validated. Raises :class:`SpecError` when the preset has no protocol or a run would be invalid."""
    protocol = preset.reproduction
    if protocol is None:
        raise SpecError(Problem("reproduction", f"preset '{key}' has no reproduction protocol",
                                "reproduce a preset that cites a published figure (see `python main.py "
                                "reproduce --list`), or add a \"reproduction\" section"))
    from .protocol import protocol_problems

    problems = protocol_problems(preset)
    if problems:
        raise SpecError(problems)
    if device is not None:  # a bad --device is bad input even for an experiment this budget skips
        apply_overrides(preset, {"train.device": device}, where="--device")
    plan = protocol.budgets.get(budget)
    exp = Experiment(key=key, name=preset.name, reference=preset.reference, preset=preset, protocol=protocol,
                     budget=budget, plan=plan if plan is not None else BudgetPlan())
    if plan is None:
        exp.skip = f"the protocol has no '{budget}' budget"
        return exp
    if plan.skip:
        exp.skip = plan.skip
        return exp
    overrides = dict(plan.overrides)
    if device is not None:
        overrides["train.device"] = device
    base = apply_overrides(preset, overrides, where=f"{budget} budget")
    base.reproduction = None  # a run folder's preset.json is what ran; the protocol is in results.json
    exp.shortened = _shortened(preset, base)
    axes = [(axis.path, list(plan.grid.get(axis.path, axis.values))) for axis in protocol.grid]
    seeds = list(plan.seeds if plan.seeds is not None else (protocol.seeds or [int(preset.train.seed)]))
    for values in itertools.product(*(vals for _, vals in axes)):
        point = tuple((path, value) for (path, _), value in zip(axes, values))
        for seed in seeds:
            run_preset = apply_overrides(base, {**dict(point), "train.seed": seed},
                                         where=f"{budget} budget, {point_label(dict(point), seed)}")
            exp.runs.append(PlannedRun(key=key, point=point, seed=seed, preset=run_preset,
                                       fingerprint=_fingerprint(run_preset)))
    return exp


def _shortened(original: Preset, run: Preset) -> str:
    """How the budget shortened the published protocol ("" when it did not)."""
    notes = []
    if run.train.epochs < original.train.epochs:
        notes.append(f"{run.train.epochs} of {original.train.epochs} epochs")
    limit, before = run.task.limit_train, original.task.limit_train
    if limit is not None and (before is None or limit < before):
        notes.append(f"{limit:,} training samples")
    return ", ".join(notes)


# ------------------------------------------------------------------------------------------- machine
def machine_info() -> dict[str, Any]:
    """CPU model, logical cores, torch version and threads, and the GPU name when CUDA is present."""
    import torch

    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def source_commit(repo: Path = REPO) -> dict[str, Any]:
    """``{"commit": <git rev-parse HEAD>, "dirty": <tracked files changed>}`` of the project's checkout
    (``commit`` is ``"unknown"`` outside a git checkout)."""
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=20, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=20, check=True).stdout.strip()
        return {"commit": head, "dirty": bool(status)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": False}


# ------------------------------------------------------------------------------------------- results
def load_results(out_dir: Path) -> dict[str, Any] | None:
    """The ``results.json`` of ``out_dir`` (``None`` when there is none); a :class:`ValueError` when
    it is not a reproduction results file."""
    path = Path(out_dir) / RESULTS_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != RESULTS_FORMAT:
        raise ValueError(f"{path} is not a reproduction results file (format {RESULTS_FORMAT})")
    return data


def _percent(x: float | None) -> float | None:
    return None if x is None else 100.0 * float(x)


def _thin(curve: list[dict[str, Any]], keep_epochs: set[int]) -> list[dict[str, Any]]:
    """At most ~CURVE_POINTS evenly spaced points, always keeping ``keep_epochs`` and the last."""
    if len(curve) <= CURVE_POINTS:
        return curve
    stride = math.ceil(len(curve) / CURVE_POINTS)
    last = len(curve) - 1
    return [pt for i, pt in enumerate(curve) if i % stride == 0 or i == last or pt["epoch"] in keep_epochs]


class _RunRecorder:
    """Collects a run's per-epoch curve (validation accuracy in %, learned w) from trainer events."""

    def __init__(self) -> None:
        self.curve: list[dict[str, Any]] = []
        self.depth_w: dict[str, float] = {}
        self.device_name = ""

    def __call__(self, event: Any) -> None:
        name = type(event).__name__
        if name == "RunStarted":
            self.device_name = event.device_name
        elif name == "Metrics":
            if event.depth_w:
                self.depth_w = dict(event.depth_w)
        elif name == "EpochEnd":
            point: dict[str, Any] = {"epoch": event.epoch + 1, "step": event.step}
            if event.val_accuracy is not None:
                point["accuracy"] = 100.0 * event.val_accuracy
            if event.train_accuracy is not None:
                point["train_accuracy"] = 100.0 * event.train_accuracy
            if self.depth_w:
                point["w"] = list(self.depth_w.values())
            self.curve.append(point)


def base_row(run: PlannedRun) -> dict[str, Any]:
    """The identifying part of a run's row (key, grid point, seed, fingerprint, planned epochs)."""
    return {"key": run.key, "label": run.label, "point": dict(run.point), "seed": run.seed,
            "fingerprint": run.fingerprint, "planned_epochs": int(run.preset.train.epochs)}


def train_planned_run(run: PlannedRun, run_dir: Path, *, data_root: Path | str | None = None, download: bool = False,
                      wanted_epochs: set[int] | frozenset[int] = frozenset(),
                      on_event: Callable[[Any], None] = lambda event: None,
                      on_trainer: Callable[[Any], None] = lambda trainer: None) -> dict[str, Any]:
    """Train one planned run into ``run_dir`` with the Trainer and return its row (see the module
    docstring); ``on_trainer`` receives the trainer before it starts (to stop it from elsewhere)."""
    from .trainer import Trainer

    row = base_row(run)
    recorder = _RunRecorder()
    trainer = Trainer(run.preset, run_dir=run_dir, data_root=data_root, download=download)
    on_trainer(trainer)

    def forward(event: Any) -> None:
        recorder(event)
        on_event(event)

    t0 = time.perf_counter()
    summary = trainer.run(forward)
    wall = time.perf_counter() - t0
    # A run the trainer's divergence guard ended (a non-finite or exploding loss) "diverged": like the
    # sources (HanNet's main.py returns its best-so-far on NaN), its best epoch still counts for a
    # best-of-grid figure; it has no final figure.
    diverged = bool(getattr(trainer, "_diverged", False))
    status = "diverged" if summary.status == "failed" and diverged else summary.status
    keep = set(wanted_epochs) | ({int(summary.best_epoch) + 1} if summary.best_epoch is not None else set())
    row.update(
        status=status, message="; ".join(x for x in (summary.message, summary.hint) if x),
        run_dir=str(run_dir), device=summary.device, device_name=recorder.device_name,
        wall_s=wall, train_s=summary.seconds, epochs=summary.epochs_completed, steps=summary.steps,
        best_accuracy=_percent(summary.best_val_accuracy),
        best_epoch=None if summary.best_epoch is None else int(summary.best_epoch) + 1,
        final_accuracy=None if status == "diverged" else _percent(summary.final_val_accuracy),
        depth_layers=list(summary.learned_depth), w=[float(v) for v in summary.learned_depth.values()],
        at_epoch={str(pt["epoch"]): pt["accuracy"] for pt in recorder.curve
                  if "accuracy" in pt and pt["epoch"] in wanted_epochs},
        curve=_thin(recorder.curve, keep),
    )
    return row


@dataclass(frozen=True)
class RunProgress:
    """A trainer event of run ``index`` (running in worker ``slot``)."""

    index: int
    slot: int
    event: Any


class Reproducer:
    """Run experiments' planned runs into ``out_dir``; see the module docstring.

    ``jobs`` > 1 trains that many runs at once, each in its own process with one torch thread (on
    a CPU, small models train no faster with more threads, but two processes use two cores).
    ``on_event`` receives :class:`RunBegins`, :class:`RunProgress` (every trainer event) and
    :class:`RunEnds`, in the thread that calls :meth:`run`. :meth:`stop` (any thread) stops the
    runs in progress before their next optimiser step and starts no further one."""

    def __init__(self, experiments: list[Experiment], out_dir: Path | str, *, data_root: Path | str | None = None,
                 download: bool = False, jobs: int = 1, on_event: Callable[[Any], None] | None = None,
                 on_results: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.experiments = experiments
        self.out_dir = Path(out_dir)
        self.data_root = data_root
        self.download = download
        self.jobs = max(1, int(jobs))
        self.on_event = on_event or (lambda event: None)
        self.on_results = on_results or (lambda results: None)
        self._stop = threading.Event()
        self._trainer: Any = None
        self._lock = threading.Lock()
        self._stop_workers: Any = None
        self.interrupted = False

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            if self._trainer is not None:
                self._trainer.stop()
            if self._stop_workers is not None:
                self._stop_workers.set()

    # -------------------------------------------------------------------------------------------
    def _open_results(self) -> dict[str, Any]:
        previous = load_results(self.out_dir)
        budgets = {e.budget for e in self.experiments}
        fresh = {"format": RESULTS_FORMAT, "budget": ", ".join(sorted(budgets)),
                 "started": time.strftime("%Y-%m-%d %H:%M:%S"), **source_commit(),
                 "machine": machine_info(), "jobs": self.jobs, "experiments": [], "rows": []}
        if previous is not None:
            if previous.get("budget") != fresh["budget"]:
                raise ValueError(f"{self.out_dir} holds a '{previous.get('budget')}' reproduction, not "
                                 f"'{fresh['budget']}'; pick another --out folder")
            fresh["rows"] = [row for row in previous.get("rows", []) if row.get("status") == "finished"]
            fresh["experiments"] = [e for e in previous.get("experiments", [])
                                    if e.get("key") not in {x.key for x in self.experiments}]
        fresh["experiments"] += [e.header() for e in self.experiments]
        order = {e.key: i for i, e in enumerate(self.experiments)}
        fresh["experiments"].sort(key=lambda e: order.get(e["key"], -1))
        return fresh

    def _save(self, results: dict[str, Any]) -> None:
        from .runs import write_json_atomic

        results["updated"] = time.strftime("%Y-%m-%d %H:%M:%S")
        write_json_atomic(self.out_dir / RESULTS_FILE, results)
        self.on_results(results)

    def _reserve_run_dir(self, run: PlannedRun) -> Path:
        """A new folder ``<out>/<key>/<point>-seed-<n>`` (``-2``, ``-3``… when taken), created now."""
        slug = "".join(c if c.isalnum() or c in "-." else "-" for c in run.label.replace(", ", "_")) or "run"
        base = self.out_dir / run.key / slug
        base.parent.mkdir(parents=True, exist_ok=True)
        for i in range(1, 10_000):
            path = base if i == 1 else base.with_name(f"{base.name}-{i}")
            try:
                path.mkdir()
            except FileExistsError:
                continue
            return path
        raise RuntimeError(f"no free run folder name under {base.parent}")

    def _missing_data(self, run: PlannedRun) -> dict[str, Any] | None:
        """The row of a run whose data set is not on disk (and may not be downloaded), else None."""
        from .data import DatasetMissing, check_available

        try:
            check_available(run.preset.task, self.data_root, self.download)
        except DatasetMissing as exc:
            return {**base_row(run), "status": "data missing", "message": str(exc)}
        return None

    def run(self) -> dict[str, Any]:
        """Train every planned run not already finished; return the results (also on disk)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        results = self._open_results()
        done = {(row["key"], row.get("fingerprint")) for row in results["rows"]}
        todo = [r for e in self.experiments for r in e.runs if (r.key, r.fingerprint) not in done]
        self._save(results)
        if self.jobs > 1 and len(todo) > 1:
            self._run_parallel(todo, results)
        else:
            self._run_serial(todo, results)
        return results

    def _record(self, results: dict[str, Any], row: dict[str, Any], index: int, total: int) -> None:
        results["rows"].append(row)
        self._save(results)
        self.on_event(RunEnds(row, index, total))
        if row["status"] == "stopped":
            self.interrupted = True

    def _run_serial(self, todo: list[PlannedRun], results: dict[str, Any]) -> None:
        for index, run in enumerate(todo):
            if self._stop.is_set():
                self.interrupted = True
                return
            self.on_event(RunBegins(run, index, len(todo)))
            row = self._missing_data(run)
            if row is None:
                def register(trainer: Any) -> None:
                    with self._lock:
                        self._trainer = trainer
                        if self._stop.is_set():
                            trainer.stop()

                try:
                    row = train_planned_run(
                        run, self._reserve_run_dir(run), data_root=self.data_root, download=self.download,
                        wanted_epochs=_wanted_epochs(self.experiments, run.key), on_trainer=register,
                        on_event=lambda event, i=index: self.on_event(RunProgress(i, 0, event)))
                finally:
                    with self._lock:
                        self._trainer = None
            self._record(results, row, index, len(todo))
            if row["status"] == "stopped":
                return

    def _run_parallel(self, todo: list[PlannedRun], results: dict[str, Any]) -> None:
        import multiprocessing as mp
        import queue as queue_mod

        ctx = mp.get_context("spawn")  # no fork of a process that may hold torch threads
        n_workers = min(self.jobs, len(todo))
        tasks = [ctx.Queue() for _ in range(n_workers)]  # one per worker: a slot is a process
        messages = ctx.Queue()
        stop_workers = ctx.Event()
        with self._lock:
            self._stop_workers = stop_workers
            if self._stop.is_set():
                stop_workers.set()
        workers = [ctx.Process(target=_worker_main, args=(slot, tasks[slot], messages, stop_workers, self.data_root,
                                                          self.download), daemon=True)
                   for slot in range(n_workers)]
        for worker in workers:
            worker.start()
        pending = list(enumerate(todo))
        busy: dict[int, int] = {}  # slot -> run index
        idle = list(range(len(workers)))
        try:
            while pending or busy:
                while pending and idle and not self._stop.is_set():
                    index, run = pending.pop(0)
                    self.on_event(RunBegins(run, index, len(todo)))
                    row = self._missing_data(run)
                    if row is not None:
                        self._record(results, row, index, len(todo))
                        continue
                    slot = idle.pop(0)
                    busy[slot] = index
                    tasks[slot].put((index, run, self._reserve_run_dir(run),
                                     _wanted_epochs(self.experiments, run.key)))
                if self._stop.is_set():
                    self.interrupted = True
                    pending.clear()
                if not busy:
                    if pending:  # every worker died
                        for index, run in pending:
                            self._record(results, {**base_row(run), "status": "failed",
                                                   "message": "no worker process left"}, index, len(todo))
                    break
                try:
                    kind, slot, index, payload = messages.get(timeout=0.2)
                except queue_mod.Empty:
                    dead = [s for s in busy if not workers[s].is_alive()]
                    for s in dead:  # a worker that died (killed, out of memory) fails its run
                        i = busy.pop(s)
                        row = {**base_row(todo[i]), "status": "failed",
                               "message": f"the worker process ended (exit code {workers[s].exitcode})"}
                        self._record(results, row, i, len(todo))
                    continue
                if kind == "event":
                    self.on_event(RunProgress(index, slot, payload))
                else:  # "row"
                    busy.pop(slot, None)
                    idle.append(slot)
                    self._record(results, payload, index, len(todo))
        finally:
            for task_queue in tasks:
                task_queue.put(None)
            for worker in workers:
                worker.join(timeout=30)
                if worker.is_alive():
                    worker.terminate()
            with self._lock:
                self._stop_workers = None


def _worker_main(slot: int, tasks: Any, messages: Any, stop_workers: Any, data_root: Any, download: bool) -> None:
    """A worker process: one torch thread; trains the runs it is handed, sends events and rows."""
    import signal

    import torch

    torch.set_num_threads(1)
    current: dict[str, Any] = {}
    # Ctrl+C reaches the whole process group: the parent decides, the worker only stops its run
    signal.signal(signal.SIGINT, lambda signum, frame: stop_workers.set())

    def watch() -> None:
        stop_workers.wait()
        trainer = current.get("trainer")
        if trainer is not None:
            trainer.stop()

    threading.Thread(target=watch, daemon=True).start()
    while True:
        item = tasks.get()
        if item is None:
            return
        index, run, run_dir, wanted = item

        def on_trainer(trainer: Any) -> None:
            current["trainer"] = trainer
            if stop_workers.is_set():
                trainer.stop()

        row = train_planned_run(run, run_dir, data_root=data_root, download=download, wanted_epochs=wanted,
                                on_trainer=on_trainer,
                                on_event=lambda event, i=index, s=slot: messages.put(("event", s, i, event)))
        current.pop("trainer", None)
        messages.put(("row", slot, index, row))


def _wanted_epochs(experiments: list[Experiment], key: str) -> set[int]:
    """Epochs named by the experiment's ``at_epoch`` figures (kept exactly in the row)."""
    out: set[int] = set()
    for e in experiments:
        if e.key == key:
            out |= {int(f.epoch) for f in e.protocol.published if f.statistic == "at_epoch" and f.epoch}
    return out


def planned_summary(experiments: list[Experiment]) -> list[str]:
    """One line per experiment: its runs, or why it is not run, and the estimate."""
    lines = []
    for e in experiments:
        est = f" (estimate: {e.plan.estimate})" if e.plan.estimate else ""
        if e.skip:
            lines.append(f"{e.key}: not run under '{e.budget}': {e.skip}{est}")
        else:
            short = f", shortened: {e.shortened}" if e.shortened else ""
            lines.append(f"{e.key}: {len(e.runs)} run{'s' if len(e.runs) != 1 else ''}{short}{est}")
    return lines
