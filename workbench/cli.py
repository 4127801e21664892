"""Headless command line: ``python main.py train|eval|export|presets|runs|reproduce ...``.

Exit codes: 0 success; 1 the run failed (or was interrupted); 2 bad input — an unknown preset or
path, an invalid preset (every problem is printed), missing data set files (the folders searched
and ``--download``), an unwritable run folder, a checkpoint from another architecture (the layers
that differ), an export a layer does not support. Bad input is caught before anything is written.
"""
from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["main", "build_parser"]


class CliError(Exception):
    """Bad input: printed as ``error: ...`` lines on stderr, exit code 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="afwb", description="Activation-Free Workbench, headless")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", help="train a preset (built-in key or file) and write a run folder")
    t.add_argument("preset", nargs="?", help="built-in key (see `presets`) or a preset .json path; "
                                             "optional with --resume (then the run's own preset.json)")
    t.add_argument("--data-root", type=Path, help="data set folder (default: env AFWB_DATA or the user data dir)")
    t.add_argument("--download", action="store_true", help="allow downloading MNIST/Fashion/CIFAR into the data root")
    _add_setting_flags(t)
    t.add_argument("--out", type=Path,
                   help="runs folder to create the run in (default: env AFWB_RUNS or the user data dir)")
    t.add_argument("--resume", type=Path, help="run folder to continue from its checkpoints/last.pt")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--nproc", type=int, metavar="N",
                   help="train on N processes of this machine with DDP (runs torch.distributed.run for you): one per "
                        "GPU, or N CPU processes with --device cpu; the preset's batch_size stays the global batch. "
                        "For several machines use torchrun yourself (docs/distributed.md)")
    t.add_argument("--run-dir", type=Path, help="train into this new, empty folder instead of a fresh one under --out")

    e = sub.add_parser("eval", help="evaluate a run's best.pt (or last.pt): confusion matrix, per-class "
                                    "figures, predictions, mistakes, decision boundary")
    e.add_argument("run", type=Path)
    e.add_argument("--data-root", type=Path)
    e.add_argument("--download", action="store_true")
    e.add_argument("--checkpoint", choices=("best", "last"), default="best")
    e.add_argument("--device", default="auto")
    e.add_argument("--out", type=Path, help="folder for confusion.csv, per_class.csv, predictions.csv and the "
                                            "figures (default: <run>/evaluation/<checkpoint>)")
    e.add_argument("--json", action="store_true", help="print the summary as JSON")
    e.add_argument("--no-figures", action="store_true", help="write the CSV files only (no PNG figures)")

    x = sub.add_parser("export", help="export a run's model to TorchScript or ONNX")
    x.add_argument("run", type=Path)
    x.add_argument("--format", choices=("torchscript", "onnx"), required=True)
    x.add_argument("--output", type=Path, help="file to write (default: <run>/export/model.pt|.onnx)")
    x.add_argument("--checkpoint", choices=("best", "last"), default="best")

    sub.add_parser("presets", help="list the built-in presets")

    d = sub.add_parser("download", help="download a data set (mnist, fashion-mnist, cifar10) into the data root")
    d.add_argument("dataset", help="the data set's name")
    d.add_argument("--data-root", type=Path, help="data set folder (default: env AFWB_DATA or the user data dir)")
    d.add_argument("--quiet", action="store_true", help="no progress bar")

    r = sub.add_parser("runs", help="list runs")
    r.add_argument("--root", type=Path, help="runs folder (default: env AFWB_RUNS or the user data dir)")

    rp = sub.add_parser("reproduce", help="re-run the published experiments of presets with a reproduction "
                                          "protocol and write published vs measured (Markdown + figures)")
    rp.add_argument("keys", nargs="*", metavar="KEY", help="built-in keys or preset .json paths (default: every "
                                                             "built-in preset with a protocol)")
    rp.add_argument("--budget", choices=("smoke", "cpu", "full"), default="cpu",
                    help="smoke: a few steps each (tests); cpu: what fits in about an hour on a 2-core CPU; "
                         "full: everything as published (GPU)")
    rp.add_argument("--out", type=Path, help="output folder for results.json and the run folders (default: "
                                              "<runs folder>/reproduce-<budget>-<time>); an existing one resumes")
    rp.add_argument("--report", type=Path, help="Markdown report to write (default: <out>/reproduction.md; "
                                                 "figures go to a folder of the same name beside it)")
    rp.add_argument("--device", help="override train.device of every run: auto, cpu, cuda, mps")
    rp.add_argument("--data-root", type=Path, help="data set folder (default: env AFWB_DATA or the user data dir)")
    rp.add_argument("--download", action="store_true", help="allow downloading MNIST/Fashion/CIFAR into the data root")
    rp.add_argument("--threads", type=int, help="torch CPU threads with --jobs 1 (default: torch's choice)")
    rp.add_argument("--jobs", type=int, default=1, help="runs trained at once, each in its own process with one "
                                                        "torch thread (default 1; 2 uses both cores of a 2-core CPU)")
    rp.add_argument("--list", action="store_true", help="list the protocols and their budgets, run nothing")
    rp.add_argument("--quiet", action="store_true", help="no progress bars, one line per run")
    return parser


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """``--lr``, ``--batch-size``, … for every task/train/monitor setting with a plain value, derived
    from the sections' schema (help, range and choices included), and ``--set KEY=VALUE`` for any
    setting (lists, objects, dataset options)."""
    from .sections import SECTIONS, section_schema

    for section, cls in SECTIONS.items():
        group = parser.add_argument_group(f"{section} settings (override the preset's {section}.*)")
        for name, spec in section_schema(cls).items():
            if spec.kind not in ("int", "float", "bool", "choice", "str"):
                continue
            text = spec.help + (f" ({spec.range_text().strip()})" if spec.range_text() else "")
            if spec.kind == "bool":
                group.add_argument(_flag(name), dest=f"set_{section}_{name}", action=argparse.BooleanOptionalAction,
                                   help=text)
                continue
            kwargs: dict[str, Any] = {"dest": f"set_{section}_{name}", "help": text}
            if spec.kind == "choice":
                kwargs["metavar"] = "{" + ",".join([str(c) for c in spec.choices] + (
                    [spec.pattern_text] if spec.pattern_text else [])) + "}"
                if not spec.pattern:
                    kwargs["choices"] = spec.choices
            else:
                kwargs["metavar"] = {"int": "N", "float": "X", "str": "TEXT"}[spec.kind]
                if spec.kind != "str":
                    kwargs["type"] = int if spec.kind == "int" else float
            group.add_argument(_flag(name), **kwargs)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="set any setting by its JSON path, the value as JSON (or plain text): "
                             "--set task.options.path=data.csv, --set train.milestones=[0.3,0.6], "
                             "--set train.optimizer_options.rho=0.95; a relative file path is read from the "
                             "current folder")


def _apply_overrides(preset: Any, args: argparse.Namespace) -> None:
    """Apply the setting flags and ``--set`` to ``preset`` (validated afterwards with the rest)."""
    import json
    import os

    from .datasets import DATASETS
    from .sections import SECTIONS, section_schema

    for section, cls in SECTIONS.items():
        for name in section_schema(cls):
            value = getattr(args, f"set_{section}_{name}", None)
            if value is not None:
                setattr(getattr(preset, section), name, value)
    for item in getattr(args, "set", []) or []:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) < 2 or parts[0] not in SECTIONS:
            raise CliError(f"--set {item}: write SECTION.KEY=VALUE with SECTION one of {', '.join(SECTIONS)}, "
                           "e.g. --set train.lr=0.01")
        schema = section_schema(SECTIONS[parts[0]])
        if parts[1] not in schema:
            from .problems import did_you_mean

            raise CliError(f"--set {item}: {parts[0]} has no setting '{parts[1]}'; "
                           f"{did_you_mean(parts[1], list(schema), known='its settings')}")
        try:
            value = json.loads(text)
        except ValueError:
            value = text  # plain text: a name, a path
        section = getattr(preset, parts[0])
        if len(parts) == 2:
            setattr(section, parts[1], value)
            continue
        target = getattr(section, parts[1])
        if not isinstance(target, dict):
            raise CliError(f"--set {item}: {parts[0]}.{parts[1]} is not an object; set it whole with "
                           f"--set {parts[0]}.{parts[1]}=VALUE")
        for part in parts[2:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise CliError(f"--set {item}: {part} is not an object")
        entry = DATASETS.get(preset.task.dataset)
        if (parts[:2] == ["task", "options"] and len(parts) == 3 and entry is not None
                and parts[2] in entry.path_options and isinstance(value, str) and not os.path.isabs(value)):
            value = os.path.abspath(os.path.expanduser(value))  # typed here: relative to this folder
        target[parts[-1]] = value


#: ``render(evaluation) -> {file name: PNG bytes}``: draws ``eval``'s figures. The core cannot draw
#: them itself (no Qt here): ``main.py`` passes the app's own plot code (``ui.eval_figures``).
FigureRenderer = Callable[[Any], "dict[str, bytes]"]


def main(argv: Sequence[str] | None = None, *, render_figures: FigureRenderer | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # argparse prints its own one-line usage error
        return 0 if exc.code in (0, None) else 2
    args.render_figures = render_figures
    args.argv = args_list
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return {"train": _train, "eval": _eval, "export": _export, "presets": _presets, "runs": _runs,
                "reproduce": _reproduce, "download": _download}[args.command](args)
    except CliError as exc:
        for line in exc.message.splitlines() or [""]:
            print(f"error: {line}", file=sys.stderr)
        return 2


# ---------------------------------------------------------------------------------------------
# Shared checks (all before anything is written)
# ---------------------------------------------------------------------------------------------
def _spec_error_text(exc: Exception) -> str:
    problems = getattr(exc, "problems", None)
    if problems:
        return "\n".join(str(p) for p in problems)
    return str(exc)


def _load_preset_arg(arg: str) -> Any:
    from .presets import resolve_preset
    from .spec import SpecError

    try:
        return resolve_preset(arg)
    except SpecError as exc:
        raise CliError(_spec_error_text(exc)) from None


def _validate(preset: Any) -> None:
    from .spec import validate

    problems = validate(preset)
    if problems:
        raise CliError("invalid preset:\n" + "\n".join(str(p) for p in problems))


def _check_data(task: Any, data_root: Path | None, download: bool) -> None:
    from .data import DatasetMissing, check_available

    try:
        check_available(task, data_root, download)
    except DatasetMissing as exc:
        raise CliError(str(exc)) from None


def _check_device(preset: Any) -> None:
    from .devices import DeviceUnavailable, resolve_device

    try:
        resolve_device(preset.train.device)
    except DeviceUnavailable as exc:
        raise CliError(f"{exc}; {exc.hint}") from None


def _writable_root(root: Path) -> None:
    import os
    import tempfile

    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=root, prefix=".afwb-write-test-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise CliError(f"cannot write a run folder under {root}: {exc.strerror or exc}; "
                       f"pass --out with a writable folder") from None


def _run_folder(path: Path) -> Path:
    """A run folder given as a path, or as a folder name under the runs root."""
    from .runs import default_runs_root

    if path.is_dir():
        return path
    alt = default_runs_root() / path
    if alt.is_dir():
        return alt
    raise CliError(f"run folder not found: {path}; list runs with `python main.py runs`")


def _model_with_checkpoint(run: Path, which: str, device: Any = "cpu") -> tuple[Any, Any, dict[str, Any], Path]:
    """(preset, model with weights, checkpoint dict, checkpoint path) of a run; CliError on any problem."""
    from .evaluation import EvaluationError, load_run_model

    try:
        return load_run_model(_run_folder(run), which, device)
    except EvaluationError as exc:
        raise CliError(exc.message) from None


# ---------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------
class _Progress:
    """tqdm bar on stderr driven by trainer events (steps, loss, accuracy, samples/s)."""

    def __init__(self, quiet: bool, position: int = 0, leave: bool = True) -> None:
        self.quiet = quiet
        self.position = position
        self.leave = leave
        self.bar = None
        self.pos = 0
        self.last_val: str = ""
        self.data_bar: Any = None
        self.data_what = ""

    def __call__(self, event: Any) -> None:
        name = type(event).__name__
        if self.quiet:
            return
        if name == "RunStarted":
            from tqdm import tqdm

            self.pos = event.start_step
            self.bar = tqdm(total=event.total_steps, initial=event.start_step, file=sys.stderr, unit="step",
                            dynamic_ncols=True, desc=event.preset_name[:30], leave=self.leave,
                            position=self.position)
        elif name == "Metrics" and self.bar is not None:
            self.bar.update(event.step - self.pos)
            self.pos = event.step
            post = {"ep": event.epoch + 1, "loss": f"{event.loss:.4g}"}
            if event.accuracy is not None:
                post["acc"] = f"{100 * event.accuracy:.1f}%"
            if event.rmse is not None:
                post["rmse"] = f"{event.rmse:.4g}"
            post["samples/s"] = f"{event.samples_per_s:,.0f}"
            if self.last_val:
                post["val"] = self.last_val
            self.bar.set_postfix(post, refresh=False)
        elif name == "EpochEnd":
            if event.val_accuracy is not None:
                self.last_val = f"{100 * event.val_accuracy:.1f}%"
            elif event.val_rmse is not None:
                self.last_val = f"{event.val_rmse:.4g}"
        elif name in ("Finished", "Stopped", "Failed") and self.bar is not None:
            self.bar.close()
            self.bar = None
        elif name == "DataProgress":
            self.data(event.what, event.done, event.total)

    def data(self, what: str, done: int, total: int) -> None:
        """A bar per data step (``decoding images``, ``downloading <file>``), bytes shown scaled."""
        if self.quiet:
            return
        from tqdm import tqdm

        if self.data_bar is None or self.data_what != what:
            if self.data_bar is not None:
                self.data_bar.close()
            download = what.startswith("downloading")
            self.data_bar = tqdm(total=total or None, file=sys.stderr, desc=what[:40], leave=False,
                                 unit="B" if download else "it", unit_scale=download, dynamic_ncols=True)
            self.data_what = what
        self.data_bar.update(done - self.data_bar.n)
        if total and done >= total:
            self.data_bar.close()
            self.data_bar = None
            self.data_what = ""


def summary_line(summary: Any) -> str:
    """One line: status, validation figures, loss, time, samples/s, learned depth."""
    parts = [summary.status]
    if summary.final_val_accuracy is not None:
        best = f" (best {100 * summary.best_val_accuracy:.2f}% at epoch {summary.best_epoch + 1})" \
            if summary.best_val_accuracy is not None and summary.best_epoch is not None else ""
        parts.append(f"val accuracy {100 * summary.final_val_accuracy:.2f}%{best}")
    if summary.final_val_rmse is not None:
        parts.append(f"val RMSE {summary.final_val_rmse:.4g}")
    if summary.final_val_loss is not None:
        parts.append(f"val loss {summary.final_val_loss:.4g}")
    if summary.final_train_loss is not None:
        parts.append(f"train loss {summary.final_train_loss:.4g}")
    parts.append(f"{summary.epochs_completed} epochs / {summary.steps} steps in {summary.seconds:.1f} s")
    parts.append(f"{summary.samples_per_s:,.0f} samples/s")
    for name, w in dict(summary.learned_depth).items():
        depth = max(0, math.ceil(w)) if math.isfinite(w) else 0
        parts.append(f"depth {name}: w = {w:.3f} ({depth} layers)")
    return ", ".join(parts)


def _train(args: argparse.Namespace) -> int:
    from .distributed import context_from_env
    from .runs import checkpoint_path, default_runs_root, new_run_dir, run_is_live
    from .trainer import Trainer

    under_torchrun = all(name in os.environ for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if args.nproc is not None:
        if under_torchrun:
            raise CliError("--nproc starts torchrun itself: under torchrun leave it out (torchrun's "
                           "--nproc-per-node sets the number of processes)")
        if args.nproc < 1:
            raise CliError(f"--nproc must be at least 1, got {args.nproc}")
    process = context_from_env()
    resume = None
    if args.resume is not None:
        resume = _run_folder(args.resume)
        if process.is_main and run_is_live(resume):  # (rank 0 of this run may hold it already)
            raise CliError(f"{resume} is still training in another process; wait for it to end or stop it first")
        if not checkpoint_path(resume, "last").exists():
            raise CliError(f"{resume} has no checkpoints/last.pt to resume from: the run ended (or was interrupted) "
                           f"before its first epoch was saved; start it again as a new run "
                           f"(python main.py train {resume / 'preset.json'})")
    if args.preset is None:
        if resume is None:
            raise CliError("give a preset (a built-in key or a .json path); list them with `python main.py presets`")
        preset = _load_preset_arg(str(resume / "preset.json"))
    else:
        preset = _load_preset_arg(args.preset)
    _apply_overrides(preset, args)
    _validate(preset)
    if args.nproc is not None and args.nproc > 1:
        _check_launch_devices(preset, args.nproc)
    else:
        _check_device(preset)
    _check_data(preset.task, args.data_root, args.download)
    if resume is not None:
        # the checkpoint must fit the preset's model before anything is written
        from .runs import load_checkpoint
        from .spec import build_model
        from .trainer import CheckpointMismatch, check_checkpoint

        path = checkpoint_path(resume, "last")
        try:
            check_checkpoint(build_model(preset), load_checkpoint(path), path)
        except CheckpointMismatch as exc:
            raise CliError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - unreadable checkpoint
            raise CliError(f"cannot read {path}: {exc}") from None
        run_dir = resume
    elif args.run_dir is not None:
        run_dir = args.run_dir
        if process.is_main and ((run_dir / "summary.json").exists() or (run_dir / "metrics.jsonl").exists()):
            raise CliError(f"{run_dir} already holds a run: pass a new folder, or --resume that run")
    elif not process.is_main:
        run_dir = None  # rank 0 reserves the folder and alone writes it
    else:
        root = args.out if args.out is not None else default_runs_root()
        _writable_root(root)
        try:
            run_dir = new_run_dir(root, preset.name)  # reserved: no other run can take this folder
        except (OSError, RuntimeError) as exc:
            raise CliError(f"cannot create a run folder under {root}: {exc}; "
                           "pass --out with a writable folder") from None

    # a rank launched by train --nproc (which prints these itself) stays silent; rank 0 otherwise speaks
    speaks = process.is_main and "AFWB_EVENT_LINK" not in os.environ
    if speaks:
        print(f"run folder: {run_dir}", flush=True)
    if args.nproc is not None:
        return _launch(args, preset, run_dir)
    # a rank that streams its events to the app (launched by its "all N GPUs (DDP)" choice) sends the
    # live decision boundary too; the trainer runs hooks on rank 0 only
    hooks = []
    if under_torchrun and "AFWB_EVENT_LINK" in os.environ:
        from .boundary import BoundaryHook

        hooks.append(BoundaryHook(preset))
    trainer = Trainer(preset, run_dir=run_dir, data_root=args.data_root, download=args.download, resume_from=resume,
                      process=process, emit_hooks=hooks)
    interrupted = {"flag": False}

    def on_signal(signum: int, frame: Any) -> None:
        interrupted["flag"] = True
        trainer.stop()

    # under torchrun, its agent passes a Ctrl-C on as SIGINT and a teardown as SIGTERM: stop cleanly
    signals = (signal.SIGINT, signal.SIGTERM) if under_torchrun else (signal.SIGINT,)
    previous = {}
    for sig in signals:
        try:
            previous[sig] = signal.signal(sig, on_signal)
        except ValueError:  # not in the main thread
            pass
    progress = _Progress(args.quiet or not process.is_main)
    on_event: Any = progress
    link = None
    if under_torchrun:
        from .distributed import watch_parent
        from .eventlink import connect_rank0

        watch_parent(trainer.stop)
        if process.is_main:
            link, on_event = connect_rank0(trainer, progress)
    try:
        summary = trainer.run(on_event)
    finally:
        if link is not None:
            link.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if under_torchrun:
        return _rank_exit(summary, process, speaks)
    line = summary_line(summary)
    print(line, flush=True)
    return _exit_code(summary, interrupted["flag"])


def _check_launch_devices(preset: Any, nproc: int) -> None:
    """Every one of ``nproc`` processes of this machine gets its device (a GPU each, or the CPU)."""
    from .devices import DeviceUnavailable
    from .distributed import ddp_device

    try:
        ddp_device(preset.train.device, nproc - 1)
    except DeviceUnavailable as exc:
        raise CliError(f"{exc}; {exc.hint}") from None


def _launch(args: argparse.Namespace, preset: Any, run_dir: Path) -> int:
    """``train --nproc N``: the same arguments on N torchrun processes, followed here like a local run."""
    from .launch import TorchrunLaunch

    argv = list(args.argv)
    worker = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            worker.append(arg)
    if build_parser().parse_args(worker).nproc is not None:
        raise CliError("write --nproc in full (torchrun's ranks must not see it)")
    if args.resume is None and args.run_dir is None:
        worker += ["--run-dir", str(run_dir)]
    worker.append("--quiet")  # the progress bar is drawn here, from rank 0's events
    launch = TorchrunLaunch(worker, args.nproc, run_dir, preset_name=preset.name)
    interrupted = {"flag": False}

    def on_sigint(signum: int, frame: Any) -> None:
        interrupted["flag"] = True
        launch.stop()  # the first asks rank 0; a second Ctrl-C sends torchrun SIGTERM

    previous = None
    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not in the main thread
        previous = None
    try:
        summary = launch.run(_Progress(args.quiet))
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    print(summary_line(summary), flush=True)
    return _exit_code(summary, interrupted["flag"])


def _exit_code(summary: Any, interrupted: bool) -> int:
    """``train``'s exit status for the run's summary: 0 finished; 1 failed (its message and hint on
    stderr) or stopped; 130 stopped by Ctrl+C."""
    if summary.status == "failed":
        print(f"error: {summary.message}", file=sys.stderr)
        if summary.hint:
            print(f"hint: {summary.hint}", file=sys.stderr)
        return 1
    if summary.status == "stopped":
        return 130 if interrupted else 1
    return 0


def _rank_exit(summary: Any, process: Any, speaks: bool) -> int:
    """A torchrun rank's exit: 0 when the run finished or was stopped as asked (torchrun then reports
    no failure), 1 when it failed — with the message on stderr, from rank 0 (which speaks for the
    run) and from any rank whose own failure it was."""
    if summary.status != "failed":
        if speaks:
            print(summary_line(summary), flush=True)
        return 0
    if process.is_main or not summary.message.startswith(("another process of this", "process rank ")):
        prefix = "" if process.is_main else f"[rank {process.rank}] "
        print(f"{prefix}error: {summary.message}", file=sys.stderr)
        if summary.hint:
            print(f"{prefix}hint: {summary.hint}", file=sys.stderr)
    return 1


# ---------------------------------------------------------------------------------------------
# eval / export / presets / runs
# ---------------------------------------------------------------------------------------------
def _eval(args: argparse.Namespace) -> int:
    import json

    from .evaluation import EvaluationError, evaluate_run
    from .evaluation_files import write_tables

    run = _run_folder(args.run)
    try:
        ev = evaluate_run(run, args.checkpoint, device=args.device, data_root=args.data_root, download=args.download)
    except EvaluationError as exc:
        raise CliError(str(exc)) from None
    out = args.out if args.out is not None else run / "evaluation" / args.checkpoint
    try:
        if out.is_symlink() or (args.out is None and (run / "evaluation").is_symlink()):
            raise OSError(f"{out} is a symbolic link: evaluation files are never written through one")
        written = write_tables(ev, out)
        notes = []
        if not args.no_figures:
            figures, why = _write_figures(ev, out, args.render_figures)
            written += figures
            if why:
                notes.append(why)
    except OSError as exc:
        raise CliError(f"cannot write the evaluation files into {out}: {exc.strerror or exc}; "
                       "pass --out with a writable folder") from None
    if args.json:
        print(json.dumps({**ev.summary(), "files": [str(p) for p in written]}, indent=2, allow_nan=False))
        return 0
    print(ev.summary_line())
    if ev.task == "classification" and ev.n_classes <= 30:
        rows = [[name, f"{ev.precision[k]:.4f}", f"{ev.recall[k]:.4f}", f"{ev.f1[k]:.4f}", str(int(ev.support[k]))]
                for k, name in enumerate(ev.class_names)]
        rows.append(["macro avg", f"{ev.precision.mean():.4f}", f"{ev.recall.mean():.4f}", f"{ev.macro_f1:.4f}",
                     str(ev.n)])
        print(_table(rows, ["class", "precision", "recall", "F1", "support"]))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print("wrote " + ", ".join(p.name for p in written) + f" in {out}")
    return 0


def _write_figures(ev: Any, out: Path, render: FigureRenderer | None) -> tuple[list[Path], str]:
    """The PNG figures, drawn by ``render`` (the app's own plot code, offscreen); without it, or
    without Qt, the CSV files are still written and the reason is returned."""
    from .fileio import atomic_write

    if render is None:
        return [], ("no PNG figures: they are drawn by the app's plot code; run `python main.py eval ...` "
                    "for them, or pass --no-figures")
    try:
        figures = render(ev)
    except ImportError as exc:
        return [], (f"no PNG figures: they are drawn by the app's plot code, which needs PySide6 and pyqtgraph "
                    f"({exc}); install them (pip install PySide6-Essentials pyqtgraph), or pass --no-figures")
    written = []
    for name, png in figures.items():
        path = out / name
        atomic_write(path, lambda handle, data=png: handle.write(data))
        written.append(path)
    return written, ""


def _export(args: argparse.Namespace) -> int:
    import contextlib
    import os
    import warnings

    import torch

    from .fileio import open_temp

    preset, model, _, path = _model_with_checkpoint(args.run, args.checkpoint)
    run = path.parent.parent
    input_shape = tuple(getattr(model, "input_shape", ()))
    if not input_shape:
        from .datasets import dataset_info

        input_shape = tuple(dataset_info(preset.task.dataset, preset.task.options, preset.task.base_dir).input_shape)
    example = torch.zeros((1, *input_shape))
    suffix = ".pt" if args.format == "torchscript" else ".onnx"
    output = args.output or (run / "export" / f"model{suffix}")
    try:  # a fresh temp beside the output (never an existing file or link), renamed over it at the end
        output.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = open_temp(output.parent, output.name, suffix)
        os.close(fd)
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}; pass --output with a writable path") from None
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            if args.format == "torchscript":
                traced = torch.jit.trace(model, example, check_trace=False)
                traced.save(str(tmp))
            else:
                _export_onnx(model, example, tmp)
        tmp.replace(output)
    except Exception as exc:  # noqa: BLE001 - a layer the exporter cannot handle, or the disk
        with_msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        for leftover in (tmp, tmp.with_name(tmp.name + ".data")):
            with contextlib.suppress(OSError):  # the first failure is the one to report
                leftover.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise CliError(f"cannot write {output}: {exc.strerror or exc}; "
                           "pass --output with a writable path") from None
        raise CliError(f"{args.format} export of {run.name} failed: {type(exc).__name__}: {with_msg}") from None
    print(f"wrote {output}")
    return 0


def _export_onnx(model: Any, example: Any, path: Path) -> None:
    import torch

    try:  # the TorchScript-based exporter: fast and self-contained
        torch.onnx.export(model, (example,), str(path), input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, dynamo=False)
    except TypeError:  # a torch without the ``dynamo`` keyword
        torch.onnx.export(model, (example,), str(path), input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})


def _download(args: argparse.Namespace) -> int:
    from .data import DataError, download_dataset

    progress = _Progress(args.quiet)
    try:
        folder = download_dataset(args.dataset, args.data_root, progress.data)
    except DataError as exc:
        raise CliError(str(exc)) from None
    finally:
        if progress.data_bar is not None:
            progress.data_bar.close()
    print(f"{args.dataset}: {folder}")
    return 0


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in rows + [headers]) for i in range(len(headers))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _presets(args: argparse.Namespace) -> int:
    from .presets import builtin_presets
    from .spec import infer_shapes, load_preset

    rows = []
    for info in builtin_presets():
        dataset, params = "?", "?"
        try:
            preset = load_preset(info.path)
            dataset = preset.task.dataset
            report = infer_shapes(preset)
            params = f"{report.total_params:,}"
        except Exception:  # noqa: BLE001 - list the preset even if it is broken
            pass
        desc = info.description.split(". ")[0]
        rows.append([info.key, dataset, params, desc[:70] + ("…" if len(desc) > 70 else "")])
    print(_table(rows, ["key", "dataset", "params", "description"]))
    return 0


def _runs(args: argparse.Namespace) -> int:
    from .runs import default_runs_root, list_runs

    root = args.root if args.root is not None else default_runs_root()
    records = list_runs(root)
    if not records:
        print(f"no runs under {root}")
        return 0
    rows = []
    for rec in records:
        s = rec.summary
        problem = "; ".join(rec.problems)
        if s is None:
            rows.append([rec.path.name, rec.name, rec.status, "", "", "", problem])
            continue
        if s.best_val_accuracy is not None:
            best = f"{100 * s.best_val_accuracy:.2f}%"
        elif s.best_val_rmse is not None:
            best = f"RMSE {s.best_val_rmse:.4g}"
        else:
            best = ""
        rows.append([rec.path.name, rec.name, rec.status, str(s.epochs_completed), best, f"{s.seconds:.1f}", problem])
    headers = ["folder", "name", "status", "epochs", "best val", "seconds", "problem"]
    if not any(rec.problems for rec in records):
        headers, rows = headers[:-1], [row[:-1] for row in rows]
    print(_table(rows, headers))
    return 0


# ---------------------------------------------------------------------------------------------
# reproduce
# ---------------------------------------------------------------------------------------------
def _protocol_presets(keys: list[str]) -> list[tuple[str, Any]]:
    """(key, preset) for the given keys/paths, or every built-in preset with a protocol."""
    from .presets import builtin_keys

    if keys:
        out = []
        for key in keys:
            preset = _load_preset_arg(key)
            if preset.reproduction is None:
                with_protocol = [k for k, _ in _protocol_presets([])]
                raise CliError(f"preset '{key}' has no reproduction protocol; built-in presets with one: "
                               + (", ".join(with_protocol) or "none"))
            out.append((Path(key).stem if key.endswith(".json") else key, preset))
        return out
    found = []
    for key in builtin_keys():
        preset = _load_preset_arg(key)
        if preset.reproduction is not None:
            found.append((key, preset))
    return found


class _ReproduceProgress:
    """An overall bar (runs) and a per-run bar (steps), or one line per run when quiet."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.overall = None
        self.inner: dict[int, _Progress] = {}  # worker slot -> its run's step bar

    def __call__(self, event: Any) -> None:
        name = type(event).__name__
        if name == "RunBegins":
            if not self.quiet and self.overall is None:
                from tqdm import tqdm

                self.overall = tqdm(total=event.total, file=sys.stderr, unit="run", position=0, leave=True,
                                    dynamic_ncols=True, desc="reproduce")
            if self.overall is not None:
                self.overall.set_postfix_str(f"{event.run.key} {event.run.label}", refresh=True)
        elif name == "RunEnds":
            row = event.row
            figures = [f"best {row['best_accuracy']:.2f}%" if row.get("best_accuracy") is not None else "",
                       f"final {row['final_accuracy']:.2f}%" if row.get("final_accuracy") is not None else "",
                       ("w " + ", ".join(f"{w:.2f}" for w in row["w"])) if row.get("w") else "",
                       f"{row['wall_s']:.0f} s" if row.get("wall_s") is not None else ""]
            text = f"[{event.index + 1}/{event.total}] {row['key']} {row['label']}: {row['status']}"
            if any(figures):
                text += ", " + ", ".join(f for f in figures if f)
            if row.get("message") and row["status"] != "finished":
                text += f" ({row['message']})"
            if self.overall is not None:
                self.overall.update(1)
                self.overall.write(text, file=sys.stderr)
            else:
                print(text, flush=True)
            if event.index + 1 == event.total and self.overall is not None:
                self.overall.close()
                self.overall = None
        elif name == "RunProgress":
            bar = self.inner.setdefault(event.slot, _Progress(self.quiet, position=event.slot + 1, leave=False))
            bar(event.event)

    def close(self) -> None:
        for inner in self.inner.values():
            if inner.bar is not None:
                inner.bar.close()
        if self.overall is not None:
            self.overall.close()
            self.overall = None


def _reproduce(args: argparse.Namespace) -> int:
    from .reproduce import Reproducer, load_results, planned_summary, plan_experiment
    from .reproduce_report import write_report
    from .runs import default_runs_root
    from .spec import SpecError

    presets = _protocol_presets(list(args.keys))
    if not presets:
        raise CliError("no preset has a reproduction protocol")
    if args.jobs < 1:
        raise CliError(f"--jobs must be at least 1, got {args.jobs}")
    if args.threads is not None:
        if args.threads < 1:
            raise CliError(f"--threads must be at least 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    experiments = []
    for key, preset in presets:
        try:
            experiments.append(plan_experiment(key, preset, args.budget, device=args.device))
        except SpecError as exc:
            raise CliError(f"{key}: the {args.budget} protocol is invalid:\n{_spec_error_text(exc)}") from None
    if args.list:
        for line in planned_summary(experiments):
            print(line)
        return 0
    for exp in experiments:
        if exp.runs:
            _check_device(exp.runs[0].preset)
    import time as _time

    stamp = _time.strftime("%Y%m%d-%H%M%S")
    out = args.out if args.out is not None else default_runs_root() / f"reproduce-{args.budget}-{stamp}"
    _writable_root(out)
    try:
        previous = load_results(out)
    except ValueError as exc:
        raise CliError(f"{exc}; pick another --out folder") from None
    if previous is not None and previous.get("budget") != args.budget:
        raise CliError(f"{out} holds a '{previous.get('budget')}' reproduction, not '{args.budget}'; "
                       f"pick another --out folder (or the same --budget to resume it)")
    report = args.report if args.report is not None else out / "reproduction.md"
    _writable_root(report.parent)
    command = " ".join(["python main.py reproduce", *args.keys, "--budget", args.budget]
                       + (["--device", args.device] if args.device else [])
                       + (["--jobs", str(args.jobs)] if args.jobs > 1 else []))
    print(f"output folder: {out}", flush=True)
    for line in planned_summary(experiments):
        print(f"  {line}", flush=True)
    progress = _ReproduceProgress(args.quiet)

    def rewrite(results: dict[str, Any]) -> None:
        write_report(results, report, command=command)

    reproducer = Reproducer(experiments, out, data_root=args.data_root, download=args.download, jobs=args.jobs,
                            on_event=progress, on_results=rewrite)
    interrupted = {"flag": False}

    def on_sigint(signum: int, frame: Any) -> None:
        interrupted["flag"] = True
        reproducer.stop()

    try:
        previous_handler = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not in the main thread
        previous_handler = None
    try:
        results = reproducer.run()
    finally:
        progress.close()
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)
    print(f"report: {report}", flush=True)
    rows = results.get("rows", [])
    missing = [r for r in rows if r.get("status") == "data missing"]
    if missing:
        print(f"note: {len(missing)} run(s) not made because their data set is missing; pass --download "
              f"or --data-root", file=sys.stderr)
    if interrupted["flag"] or reproducer.interrupted:
        return 130 if interrupted["flag"] else 1
    return 1 if any(r.get("status") == "failed" for r in rows) else 0


if __name__ == "__main__":  # torchrun ... -m workbench.cli train PRESET
    _code = main()
    if "TORCHELASTIC_RUN_ID" in os.environ:
        # a torchrun rank: end here, before the interpreter's finalisation can destroy a process
        # group whose threads still run (PyTorch may then abort the process after a clean run)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_code)
    sys.exit(_code)
