"""Headless command line: ``python main.py train|eval|export|presets|runs ...``.

Exit codes: 0 success; 1 the run failed (or was interrupted); 2 bad input — an unknown preset or
path, an invalid preset (every problem is printed), missing data set files (the folders searched
and ``--download``), an unwritable run folder, a checkpoint from another architecture (the layers
that differ), an export a layer does not support. Bad input is caught before anything is written.
"""
from __future__ import annotations

import argparse
import math
import signal
import sys
from pathlib import Path
from typing import Any, Sequence

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
    t.add_argument("--epochs", type=int, help="override train.epochs")
    t.add_argument("--device", help="override train.device: auto, cpu, cuda, cuda:N, mps")
    t.add_argument("--data-root", type=Path, help="data set folder (default: env AFWB_DATA or the user data dir)")
    t.add_argument("--download", action="store_true", help="allow downloading MNIST/Fashion/CIFAR into the data root")
    t.add_argument("--limit-train", type=int, help="train on this many samples only (task.limit_train)")
    t.add_argument("--out", type=Path, help="runs folder to create the run in (default: env AFWB_RUNS or the user data dir)")
    t.add_argument("--resume", type=Path, help="run folder to continue from its checkpoints/last.pt")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    e = sub.add_parser("eval", help="validation figures of a run's best.pt (or last.pt)")
    e.add_argument("run", type=Path)
    e.add_argument("--data-root", type=Path)
    e.add_argument("--download", action="store_true")
    e.add_argument("--checkpoint", choices=("best", "last"), default="best")
    e.add_argument("--device", default="auto")

    x = sub.add_parser("export", help="export a run's model to TorchScript or ONNX")
    x.add_argument("run", type=Path)
    x.add_argument("--format", choices=("torchscript", "onnx"), required=True)
    x.add_argument("--output", type=Path, help="file to write (default: <run>/export/model.pt|.onnx)")
    x.add_argument("--checkpoint", choices=("best", "last"), default="best")

    sub.add_parser("presets", help="list the built-in presets")

    r = sub.add_parser("runs", help="list runs")
    r.add_argument("--root", type=Path, help="runs folder (default: env AFWB_RUNS or the user data dir)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # argparse prints its own one-line usage error
        return 0 if exc.code in (0, None) else 2
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return {"train": _train, "eval": _eval, "export": _export, "presets": _presets, "runs": _runs}[args.command](args)
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
    from .runs import checkpoint_path, load_checkpoint
    from .spec import SpecError, build_model, load_preset
    from .trainer import CheckpointMismatch, check_checkpoint

    run = _run_folder(run)
    preset_file = run / "preset.json"
    if not preset_file.exists():
        raise CliError(f"{run} holds no preset.json: not a run folder")
    try:
        preset = load_preset(preset_file)
        model = build_model(preset)
    except SpecError as exc:
        raise CliError(f"the run's preset cannot be built:\n{_spec_error_text(exc)}") from None
    path = checkpoint_path(run, which)
    if not path.exists() and which == "best":
        path = checkpoint_path(run, "last")
    if not path.exists():
        raise CliError(f"{run} has no checkpoint (checkpoints/best.pt or last.pt): it ended before its first epoch")
    try:
        ckpt = load_checkpoint(path, map_location=device)
    except Exception as exc:  # noqa: BLE001
        raise CliError(f"cannot read {path}: {exc}") from None
    try:
        check_checkpoint(model, ckpt, path)
    except CheckpointMismatch as exc:
        raise CliError(str(exc)) from None
    model.load_state_dict(ckpt["model"])
    model.eval()
    return preset, model, ckpt, path


# ---------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------
class _Progress:
    """tqdm bar on stderr driven by trainer events (steps, loss, accuracy, samples/s)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = None
        self.pos = 0
        self.last_val: str = ""

    def __call__(self, event: Any) -> None:
        name = type(event).__name__
        if self.quiet:
            return
        if name == "RunStarted":
            from tqdm import tqdm

            self.pos = event.start_step
            self.bar = tqdm(total=event.total_steps, initial=event.start_step, file=sys.stderr, unit="step",
                            dynamic_ncols=True, desc=event.preset_name[:30], leave=True)
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
    from .runs import checkpoint_path, default_runs_root, new_run_dir, run_is_live
    from .trainer import Trainer

    resume = None
    if args.resume is not None:
        resume = _run_folder(args.resume)
        if run_is_live(resume):
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
    if args.epochs is not None:
        preset.train.epochs = args.epochs
    if args.device is not None:
        preset.train.device = args.device
    if args.limit_train is not None:
        preset.task.limit_train = args.limit_train
    _validate(preset)
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
    else:
        root = args.out if args.out is not None else default_runs_root()
        _writable_root(root)
        try:
            run_dir = new_run_dir(root, preset.name)  # reserved: no other run can take this folder
        except (OSError, RuntimeError) as exc:
            raise CliError(f"cannot create a run folder under {root}: {exc}; pass --out with a writable folder") from None

    print(f"run folder: {run_dir}", flush=True)
    trainer = Trainer(preset, run_dir=run_dir, data_root=args.data_root, download=args.download, resume_from=resume)
    interrupted = {"flag": False}

    def on_sigint(signum: int, frame: Any) -> None:
        interrupted["flag"] = True
        trainer.stop()

    previous = None
    try:
        previous = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not in the main thread
        previous = None
    progress = _Progress(args.quiet)
    try:
        summary = trainer.run(progress)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    line = summary_line(summary)
    print(line, flush=True)
    if summary.status == "failed":
        print(f"error: {summary.message}", file=sys.stderr)
        if summary.hint:
            print(f"hint: {summary.hint}", file=sys.stderr)
        return 1
    if summary.status == "stopped":
        return 130 if interrupted["flag"] else 1
    return 0


# ---------------------------------------------------------------------------------------------
# eval / export / presets / runs
# ---------------------------------------------------------------------------------------------
def _eval(args: argparse.Namespace) -> int:
    import torch
    import torch.nn.functional as F

    from .data import DataError, load_dataset
    from .devices import DeviceUnavailable, resolve_device
    from .losses import binary_cross_entropy, predicted_class

    try:
        device = resolve_device(args.device)
    except DeviceUnavailable as exc:
        raise CliError(f"{exc}; {exc.hint}") from None
    preset, model, ckpt, path = _model_with_checkpoint(args.run, args.checkpoint, device)
    _check_data(preset.task, args.data_root, args.download)
    try:
        data = load_dataset(preset.task, device, args.data_root, args.download, int(preset.train.seed))
    except DataError as exc:
        raise CliError(str(exc) if isinstance(exc, DataError) and not exc.hint else f"{exc.message}; {exc.hint}") from None
    model.to(device)
    split = "validation"
    if data.val_size == 0:
        split = "training (the preset has no validation split)"
        batches = ((data.train_x[i:i + 1024], data.train_y[i:i + 1024]) for i in range(0, data.train_size, 1024))
        n = data.train_size
    else:
        batches = data.val_batches(1024)
        n = data.val_size
    loss_name = str(getattr(preset.task, "loss", "auto"))
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for x, y in batches:
            out = model(x).float()
            if data.task == "regression":
                loss_sum += float(F.mse_loss(out.reshape(y.shape), y, reduction="sum")) / max(1, y[0].numel())
            else:
                if loss_name == "mse":
                    loss_sum += float(F.mse_loss(out, F.one_hot(y, out.shape[-1]).float(), reduction="sum")) / out.shape[-1]
                elif loss_name == "bce":
                    loss_sum += float(binary_cross_entropy(out, y, reduction="sum"))
                else:
                    loss_sum += float(F.cross_entropy(out, y, reduction="sum"))
                correct += int((predicted_class(out) == y).sum())
    loss = loss_sum / n
    figures = [f"{split} set: {n} samples", f"loss {loss:.4g}"]
    if data.task == "regression":
        figures.append(f"RMSE {math.sqrt(max(loss, 0.0)) * data.target_scale:.4g} (target units)")
    else:
        figures.append(f"accuracy {100 * correct / n:.2f}%")
    print(f"{path.parent.parent.name} [{path.name}, epoch {int(ckpt.get('epoch', 0))}]: " + ", ".join(figures))
    return 0


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
        from .catalog import dataset_info

        input_shape = tuple(dataset_info(preset.task.dataset, preset.task.options).input_shape)
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
            raise CliError(f"cannot write {output}: {exc.strerror or exc}; pass --output with a writable path") from None
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
