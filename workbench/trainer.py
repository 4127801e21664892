"""The training engine: one preset in, events out (see :mod:`workbench.events`).

``Trainer(preset, run_dir=None, data_root=None, *, download=False, resume_from=None).run(on_event)``
runs in whatever thread calls it and returns the final :class:`RunSummary`. It never raises for
user-caused problems (invalid preset, missing data set, absent device, a layer that fails in
forward, non-finite or exploding loss, out of memory): those end the run with a :class:`Failed`
event that names the cause and the fix. ``stop()``, ``pause()`` and ``resume()`` are thread-safe; a stop is
honoured before the next optimiser step (and between validation batches).

Event order: ``DataProgress`` while long data steps run (decoding images, downloading),
``RunStarted``, then ``Metrics`` every ``monitor.every_steps`` optimiser steps and at the last step
of each epoch, ``EpochEnd`` after each epoch's validation, and exactly one of ``Finished`` /
``Stopped`` / ``Failed``.

The hot loop does no host sync of its own: the per-step losses are copied into a small device
buffer and the correct-prediction count is accumulated on the device; at an emit the probe vector,
the loss buffer and the count come to the host in ONE ``.tolist()``. A non-finite loss is found
from that buffer (so the exact step is known) and the first layer with a non-finite gradient from
the probe's per-layer gradient norms of the same step; a loss that explodes without becoming
non-finite (more than :data:`EXPLODING_FACTOR` times where the run started) is found from the
same values. Layers that read their own parameters on the host (``InfiniteDepth`` reads w to know
how many sub-layers to run) add their own syncs.
"""
from __future__ import annotations

import contextlib
import gc
import math
import random
import re
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .datasets import LoadCancelled
from .distributed import ProcessContext, SingleProcess
from .events import DataProgress, EpochEnd, Failed, Finished, Metrics, RunStarted, RunSummary, Stopped
from .hooks import EmitHook
from .losses import binary_cross_entropy, predicted_class
from .probes import Probes, ProbeValues, first_nonfinite_layer
from .sections import TrainSpec

__all__ = ["Trainer", "CheckpointMismatch", "check_checkpoint", "make_optimizer", "seed_everything"]

CHECKPOINT_FORMAT = "afwb.checkpoint/1"

#: The run fails as diverging when an emit window's mean training loss exceeds this many times
#: max(the loss of the run's first step, the loss of an uninformed model: ln(classes) for
#: cross-entropy, 1 for MSE). A loss 10,000 times that of a random guess (cross-entropy beyond
#: 23,000 for 10 classes, a regression off by 100 standard deviations) is no healthy run; the
#: built-in presets never go above their first loss. Adam at lr 1e6 sits at 1e13-1e21 without a NaN.
EXPLODING_FACTOR = 1e4

#: Seconds between the ranks' agreements while a DDP run is paused (one tiny all-reduce each).
HOLD_POLL_S = 0.1


class CheckpointMismatch(ValueError):
    """A checkpoint's model state does not fit the preset's model; ``differences`` lists them."""

    def __init__(self, path: Path, differences: list[str]) -> None:
        shown = "; ".join(differences[:8]) + (f"; … {len(differences) - 8} more" if len(differences) > 8 else "")
        super().__init__(f"checkpoint {path} was saved from a different architecture: {shown}")
        self.path = path
        self.differences = differences


class _RunFailure(Exception):
    """Internal: end the run with Failed(message, hint, step). ``from_peer``: another rank's failure."""

    def __init__(self, message: str, hint: str, step: int | None = None, *, from_peer: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.step = step
        self.from_peer = from_peer


class _StopRequested(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def _discard(event: Any) -> None:
    """Where a DDP rank other than 0 sends its events: nowhere (rank 0 speaks for the run)."""

def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy's global RNG and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def make_optimizer(model: torch.nn.Module, train: TrainSpec) -> torch.optim.Optimizer:
    """``train.optimizer`` over the model's trainable parameters (requires_grad True only).

    ``train.optimizer_options`` (validated against :data:`workbench.sections.OPTIMIZER_OPTIONS`,
    whose defaults are PyTorch's) sets sgd's nesterov/dampening, adam/adamw's beta1/beta2/eps and
    adadelta's rho/eps.
    """
    from .params import defaults
    from .sections import OPTIMIZER_OPTIONS

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise _RunFailure("the model has no trainable parameters", "set \"trainable\": true on at least one layer")
    name = str(train.optimizer)
    lr, wd = float(train.lr), float(train.weight_decay)
    schema = OPTIMIZER_OPTIONS.get(name)
    if schema is None:
        raise _RunFailure(f"unknown optimizer '{name}'", "set train.optimizer to sgd, adam, adamw or adadelta")
    o = defaults(schema, train.optimizer_options)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=float(train.momentum), weight_decay=wd,
                               dampening=float(o["dampening"]), nesterov=bool(o["nesterov"]))
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        return cls(params, lr=lr, weight_decay=wd, betas=(float(o["beta1"]), float(o["beta2"])), eps=float(o["eps"]))
    return torch.optim.Adadelta(params, lr=lr, weight_decay=wd, rho=float(o["rho"]), eps=float(o["eps"]))


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    np_state = np.random.get_state()
    py_state = random.getstate()
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": int(py_state[0]), "state": [int(v) for v in py_state[1]],
                   "gauss": None if py_state[2] is None else float(py_state[2])},
        "batches": generator.get_state(),
    }
    if torch.cuda.is_available():
        out["cuda"] = [s for s in torch.cuda.get_rng_state_all()]
    return out


def _set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    if "torch" in state:
        torch.set_rng_state(state["torch"].cpu())
    if "numpy" in state:
        n = state["numpy"]
        np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                             n["cached_gaussian"]))
    if "python" in state:
        p = state["python"]
        random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "batches" in state:
        generator.set_state(state["batches"].cpu() if generator.device.type == "cpu" else state["batches"])
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(Exception):
            torch.cuda.set_rng_state_all(state["cuda"])


def _state_differences(expected: dict[str, torch.Tensor], found: dict[str, Any]) -> list[str]:
    """Human-readable differences between two state dicts, grouped by top-level layer."""
    diffs: list[str] = []
    layer = lambda k: k.split(".", 1)[0]  # noqa: E731
    missing = [k for k in expected if k not in found]
    extra = [k for k in found if k not in expected]
    for key in expected:
        if key in found and hasattr(found[key], "shape") and tuple(found[key].shape) != tuple(expected[key].shape):
            diffs.append(f"layer {layer(key)}: {key} has shape {tuple(found[key].shape)} in the checkpoint, "
                         f"{tuple(expected[key].shape)} in the preset's model")
    by_layer: dict[str, list[str]] = {}
    for k in missing:
        by_layer.setdefault(layer(k), []).append(k)
    for name, keys in by_layer.items():
        diffs.append(f"layer {name}: missing from the checkpoint ({', '.join(keys[:3])}{'…' if len(keys) > 3 else ''})")
    by_layer = {}
    for k in extra:
        by_layer.setdefault(layer(k), []).append(k)
    for name, keys in by_layer.items():
        diffs.append(f"layer {name}: in the checkpoint but not in the preset's model "
                     f"({', '.join(keys[:3])}{'…' if len(keys) > 3 else ''})")
    return diffs


def check_checkpoint(model: torch.nn.Module, checkpoint: dict[str, Any], path: Path) -> None:
    """Raise :class:`CheckpointMismatch` if ``checkpoint['model']`` does not fit ``model``."""
    state = checkpoint.get("model")
    if not isinstance(state, dict):
        raise CheckpointMismatch(path, ["the file holds no model state"])
    diffs = _state_differences(model.state_dict(), state)
    if diffs:
        raise CheckpointMismatch(path, diffs)


def _task_kind(data_task: str) -> str:
    return "regression" if data_task == "regression" else "classification"


_OOM_TEXTS = ("out of memory", "can't allocate memory", "cannot allocate memory", "not enough memory")


def _is_oom(exc: BaseException) -> bool:
    """A GPU out-of-memory error, the CPU allocator's refusal, or Python's MemoryError."""
    oom_types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None),
                                  getattr(torch.cuda, "OutOfMemoryError", None)) if t is not None)
    if isinstance(exc, MemoryError) or (oom_types and isinstance(exc, oom_types)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(t in text for t in _OOM_TEXTS)


def _oom_detail(exc: BaseException) -> str:
    """What was refused, in plain words: the size asked for when the allocator says it."""
    match = re.search(r"tried to allocate (\d+) bytes", str(exc))
    if match:
        size = int(match.group(1))
        for unit, scale in (("PB", 10**15), ("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
            if size >= scale:
                return f"an allocation of {size / scale:,.1f} {unit} was refused"
        return f"an allocation of {size:,} bytes was refused"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if first and "tried to allocate" in first.lower():  # CUDA's text: "Tried to allocate 20.00 MiB (GPU 0; ...)"
        return first
    return "the memory it needed could not be allocated"


# ---------------------------------------------------------------------------------------------
# The trainer
# ---------------------------------------------------------------------------------------------
class Trainer:
    """Train ``preset``; write a run folder when ``run_dir`` is given (``None`` → nothing on disk).

    ``resume_from``: a run folder whose ``checkpoints/last.pt`` is loaded (``weights_only=True``);
    training continues at the next epoch, in that folder unless ``run_dir`` names another.
    ``download``: allow torchvision to fetch a missing MNIST/Fashion/CIFAR set into ``data_root``.
    """

    def __init__(self, preset: Any, run_dir: Path | str | None = None, data_root: Path | str | None = None, *,
                 download: bool = False, resume_from: Path | str | None = None,
                 process: ProcessContext | None = None, emit_hooks: Sequence[EmitHook] = ()) -> None:
        self.preset = preset
        self.process = process if process is not None else SingleProcess()
        self.emit_hooks = tuple(emit_hooks)
        self.resume_from = Path(resume_from) if resume_from is not None else None
        if run_dir is None and self.resume_from is not None:
            run_dir = self.resume_from
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.data_root = Path(data_root) if data_root is not None else None
        self.download = download
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.model: torch.nn.Module | None = None
        self.device: torch.device | None = None

    # -- control (any thread) -------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the run to stop before its next optimiser step (also wakes a paused run)."""
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        """Hold the run before its next optimiser step until :meth:`resume` or :meth:`stop`."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    # -- the run ----------------------------------------------------------------------------------
    def run(self, on_event: Callable[[Any], None]) -> RunSummary:
        """Train to the end (or stop/failure), sending events to ``on_event``; returns the summary.

        Under DDP (:class:`workbench.distributed.DDPProcess`) every rank returns the summary, but only
        rank 0 sends events and writes the run folder."""
        from .runs import RunWriter

        proc = self.process
        send = on_event if proc.is_main else _discard
        self._t0 = time.perf_counter()
        self._paused_s = 0.0
        self._writer = RunWriter(self.run_dir if proc.is_main else None)
        self._summary = RunSummary(status="running", preset_name=str(getattr(self.preset, "name", "")),
                                   task="classification", device="",
                                   run_dir=str(self.run_dir) if self.run_dir else None, world_size=proc.world_size)
        self._step = 0
        self._epochs_done = 0
        self._samples = 0
        self._train_seconds = 0.0
        self._epoch_clock: tuple[float, float] | None = None   # (start, paused seconds then) of the epoch under way
        self._epoch_partial = (0.0, 0)                          # (loss sum, samples) of that epoch so far
        self._started = False
        self._diverged = False  # non-finite or exploding: no checkpoint of these weights is kept
        clean = False
        try:
            try:
                self._on_event = send  # the data load reports its progress through it
                self._setup()
                self._started = True
                self._loop(send)
                final = self._finish("finished")
                event: Any = Finished(final)
                clean = True
            except (_StopRequested, LoadCancelled):
                final = self._finish("stopped")
                event = Stopped(final)
                clean = True
            except _RunFailure as exc:
                if not exc.from_peer:
                    proc.announce_failure(exc.message)
                final = self._finish("failed", exc.message, exc.hint)
                event = Failed(exc.message, exc.hint, exc.step, final)
            except Exception as exc:  # noqa: BLE001 - any user model/preset error ends as Failed
                step = self._step if self._started else None
                peer = proc.peer_failure(exc, step, self.run_dir)
                if peer is not None:
                    message, hint = peer.message, peer.hint
                else:
                    message, hint = self._describe(exc)
                    proc.announce_failure(message)
                final = self._finish("failed", message, hint)
                event = Failed(message, hint, step, final)
        finally:
            try:
                self._writer.close()
            finally:
                if proc.distributed:  # DDP's reducer holds the process group: let it go first
                    self._train_model = self.model
                    gc.collect()
                proc.close(clean)
        send(event)
        return final

    # ---------------------------------------------------------------------------------------------
    def _describe(self, exc: BaseException) -> tuple[str, str]:
        from .data import DataError
        from .devices import DeviceUnavailable

        if isinstance(exc, DataError):
            return exc.message, exc.hint
        if isinstance(exc, DeviceUnavailable):
            return str(exc), exc.hint
        if isinstance(exc, CheckpointMismatch):
            return str(exc), "resume with the preset that wrote the checkpoint, or start a new run"
        if _is_oom(exc):
            batch = getattr(getattr(self.preset, "task", None), "batch_size", "?")
            where = f" at step {self._step}" if self._started else " while preparing the run"
            params = self._summary.params
            size = f" (it has {params:,} parameters)" if params else ""
            return (f"out of memory on {self.device or 'this machine'}{where}: {_oom_detail(exc)}",
                    f"lower task.batch_size (now {batch}) or use a smaller model{size}: fewer or narrower layers")
        from .problems import SpecError

        if isinstance(exc, SpecError):
            return f"invalid preset: {exc}", "fix the listed problems in the preset"
        where = f" at step {self._step}" if self._started else " while preparing the run"
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return (f"{type(exc).__name__}{where}: {text}" if text else f"{type(exc).__name__}{where}",
                "check the model's layers and their shapes against the data set (see the message)")

    # ---------------------------------------------------------------------------------------------
    def _data_progress(self, what: str, done: int, total: int) -> None:
        """The progress callback of the data load: a :class:`DataProgress` event; a stop cancels it."""
        if self._stop.is_set():
            raise LoadCancelled(what)
        on_event = getattr(self, "_on_event", None)
        if on_event is not None:
            on_event(DataProgress(what, int(done), int(total)))

    def _setup(self) -> None:
        from .devices import device_name
        from .spec import validate

        p = self.preset
        proc = self.process
        if not proc.distributed:
            self._claim()  # the folder is this run's (locked) before anything is written into it
        problems = validate(p)
        if problems:
            raise _RunFailure("invalid preset: " + "; ".join(str(x) for x in problems),
                              "fix the listed problems in the preset")
        self.device = proc.device(p.train.device)
        proc.start(self.device)  # DDP: join the process group (every rank validated the same preset)
        self._device_name = proc.describe(device_name(self.device))
        self._summary = replace(self._summary, device=str(self.device))
        # Under DDP every rank must learn whether another failed, or it would wait for it in the next
        # collective: each phase ends with an agreement (a no-op with one process).
        self._agreed(self._setup_data)
        self._agreed(self._setup_training)
        if proc.distributed:
            self._train_model = proc.wrap(self.model, self.reg_modules, bool(self.probes.depth_modules))

    def _claim(self) -> None:
        from .runs import RunFolderError

        try:
            self._writer.claim(resume=self.resume_from is not None)
        except RunFolderError as exc:
            raise _RunFailure(str(exc), exc.hint) from None

    def _agreed(self, phase: Callable[[], None]) -> None:
        """Run one set-up phase on every rank, then agree: a rank's own failure is raised on that
        rank, another rank's as a :class:`_RunFailure` naming it."""
        proc = self.process
        if not proc.distributed:
            phase()
            return
        failure: BaseException | None = None
        text = None
        try:
            phase()
        except _RunFailure as exc:
            failure, text = exc, (exc.message, exc.hint)
        except Exception as exc:  # noqa: BLE001 - described here, raised below after the agreement
            failure, text = exc, self._describe(exc)
        verdict = proc.agree(text)
        if failure is not None:
            raise failure
        if verdict is not None:
            rank, message, hint = verdict
            raise _RunFailure(f"process rank {rank} could not prepare the run: {message}", hint, from_peer=True)

    def _setup_data(self) -> None:
        """Claim the run folder (rank 0 under DDP) and load the data onto this process's device. With
        ``download`` under DDP only local rank 0 loads here (and downloads); the others load in the
        next phase, from the files it wrote."""
        from .data import load_dataset

        proc = self.process
        if proc.distributed:
            self._claim()
        self.data = None
        if not (proc.distributed and self.download and proc.local_rank != 0):
            seed_everything(int(self.preset.train.seed))
            self.data = load_dataset(self.preset.task, self.device, self.data_root, self.download,
                                     int(self.preset.train.seed), progress=self._data_progress)

    def _setup_training(self) -> None:
        from .data import load_dataset
        from .runs import checkpoint_path, load_checkpoint
        from .schedules import make_schedule
        from .spec import build_model

        p = self.preset
        proc = self.process
        seed = int(p.train.seed)
        if self.data is None:
            seed_everything(seed)
            self.data = load_dataset(p.task, self.device, self.data_root, False, seed, progress=self._data_progress)
        self.task = _task_kind(self.data.task)
        self._summary = replace(self._summary, task=self.task)  # type: ignore[arg-type]
        seed_everything(seed)  # the model's init does not depend on how much data was drawn
        model = build_model(p)
        model.to(self.device)
        self.model = model
        self._train_model = model
        self.optimizer = make_optimizer(model, p.train)
        self.batch_size = int(p.task.batch_size)
        self.slices = self._batch_slices()
        self.steps_per_epoch = len(self.slices)
        if self.steps_per_epoch < 1:
            raise _RunFailure(f"the training set has {self.data.train_size} samples: not enough for one batch",
                              "lower task.batch_size or task.val_split")
        self.schedule = make_schedule(self.optimizer, p.train, self.steps_per_epoch)
        self.probes = Probes(model, self.device)
        self.reg_modules = [m for m in model.modules()
                            if m is not model and callable(getattr(m, "regularization", None))]
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        # augmentation and fresh batches: the shared generator alone, a per-rank one under DDP
        self.local_generator = torch.Generator(device=self.device) if proc.distributed else self.generator
        self.val_data = self._val_shard()
        self.loss_kind = self._loss_kind()
        self.epochs = int(p.train.epochs)
        self.every = max(1, int(p.monitor.every_steps))
        self.start_epoch = 0
        self.start_step = 0
        self.best: dict[str, Any] = {"score": None, "epoch": None, "val_loss": None}
        self._history: dict[str, Any] = {}
        n_params = sum(t.numel() for t in model.parameters())
        n_train = sum(t.numel() for t in model.parameters() if t.requires_grad)
        self._summary = replace(self._summary, params=n_params, trainable_params=n_train)
        if self.resume_from is not None:  # every rank loads the checkpoint rank 0 wrote
            path = checkpoint_path(self.resume_from, "last")
            if not path.exists():
                raise _RunFailure(f"no checkpoint to resume from: {path} does not exist",
                                  "resume a run that completed at least one epoch, or start a new run")
            ckpt = load_checkpoint(path, map_location=self.device)
            check_checkpoint(model, ckpt, path)
            model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.schedule.load_state_dict(ckpt.get("scheduler") or {})
            _set_rng_state(ckpt.get("rng", {}), self.generator)
            self.start_epoch = int(ckpt.get("epoch", 0))
            self.start_step = int(ckpt.get("step", 0))
            self.best = dict(ckpt.get("best") or self.best)
            self._history = dict(ckpt.get("history") or {})
            self._train_seconds = float(ckpt.get("seconds", 0.0))
            self._samples = int(ckpt.get("samples", 0))
            self._step = self.start_step
            self._epochs_done = self.start_epoch
            self._summary = self._summary_now("running")  # the figures so far, as the run goes on
        self._autocast = (torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
                          if p.train.precision == "bf16" else None)

    def _batch_slices(self) -> list[tuple[int, int]]:
        """The epoch's global batches [start, stop) of the permutation. Under DDP every rank needs at
        least one sample of each batch, and a trailing batch that would give a rank fewer than two
        (BatchNorm cannot train on one) is dropped — as one process drops a trailing batch of one."""
        slices = self.data.batch_slices(self.batch_size)
        world = self.process.world_size
        if world > 1:
            if self.batch_size < world:
                raise _RunFailure(f"task.batch_size ({self.batch_size}) is smaller than the number of processes "
                                  f"({world}): each process trains on its share of every batch",
                                  f"raise task.batch_size to at least {world} (the global batch), or use fewer "
                                  "processes")
            if slices and slices[-1][1] - slices[-1][0] < 2 * world:
                slices = slices[:-1]
        return slices

    def _val_shard(self) -> Any:
        """The validation split this rank validates: all of it alone, its contiguous share under DDP."""
        data, proc = self.data, self.process
        if not proc.distributed or data.val_x is None:
            return data
        a, b = proc.shard(0, data.val_size)
        return replace(data, val_x=data.val_x[a:b], val_y=data.val_y[a:b])

    def _loss_kind(self) -> str:
        loss = self.preset.task.loss
        if self.task == "regression":
            if loss == "cross_entropy":
                raise _RunFailure("task.loss 'cross_entropy' does not fit the regression data set "
                                  f"'{self.data.name}'", "set task.loss to 'auto' or 'mse'")
            return "mse"
        if loss == "bce":
            return "bce"
        return "mse_onehot" if loss == "mse" else "cross_entropy"

    # ---------------------------------------------------------------------------------------------
    def _compute_loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.loss_kind == "cross_entropy":
            return F.cross_entropy(out.float(), y)
        if self.loss_kind == "bce":
            return binary_cross_entropy(out, y)
        if self.loss_kind == "mse_onehot":
            return F.mse_loss(out.float(), F.one_hot(y, out.shape[-1]).float())
        return F.mse_loss(out.float().reshape(y.shape), y)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._autocast is not None:
            with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16):
                return self.model(x)
        return self.model(x)

    def _wait_if_paused(self) -> None:
        if not self._running.is_set():
            t = time.perf_counter()
            self._running.wait()
            self._paused_s += time.perf_counter() - t
        if self._stop.is_set():
            raise _StopRequested

    # ---------------------------------------------------------------------------------------------
    def _started_event(self) -> RunStarted:
        return RunStarted(
            preset_name=self._summary.preset_name, run_dir=self._summary.run_dir, device=str(self.device),
            device_name=self._device_name, task=self.task, epochs=self.epochs,  # type: ignore[arg-type]
            steps_per_epoch=self.steps_per_epoch, total_steps=self.epochs * self.steps_per_epoch,
            train_size=self.data.train_size, val_size=self.data.val_size, batch_size=self.batch_size,
            params=self._summary.params, trainable_params=self._summary.trainable_params,
            layer_names=tuple(self.probes.layer_names), depth_layers=self.probes.depth_layers,
            hardness_layers=self.probes.hardness_layers, start_step=self.start_step, start_epoch=self.start_epoch,
            world_size=self.process.world_size,
        )

    def _loop(self, on_event: Callable[[Any], None]) -> None:
        model, opt, data, schedule = self.model, self.optimizer, self.data, self.schedule
        assert model is not None
        self._writer.open(self.preset, self._summary, resume=self.resume_from is not None,
                          keep_until_step=self.start_step)
        on_event(self._started_event())
        proc = self.process
        ddp = proc.distributed
        main = proc.is_main
        every = self.every
        classification = self.task == "classification"
        reg_modules = self.reg_modules
        grad_clip = float(self.preset.train.grad_clip)
        params = [p for g in opt.param_groups for p in g["params"]]
        target_scale = float(self.data.target_scale)
        stop, running = self._stop, self._running
        local_control = not ddp  # under DDP a stop or pause is agreed at the next emit instead
        writer = self._writer
        write = writer.enabled
        probes = self.probes
        layer_names = probes.layer_names
        # one process, fp32 cross-entropy: the common case, without the helper calls
        plain = not ddp and self._autocast is None and self.loss_kind == "cross_entropy"
        cross_entropy = F.cross_entropy
        generator, local_generator = self.generator, self.local_generator
        seed = int(self.preset.train.seed)
        fresh = data.fresh_batches
        steps = self._rank_steps()
        last_index = len(steps) - 1
        hooks = self.emit_hooks if main else ()
        step = self.start_step
        emits = 0
        explode_at: float | None = None  # set at the first emit (see EXPLODING_FACTOR)

        for epoch in range(self.start_epoch, self.epochs):
            model.train()
            if ddp:
                proc.seed_epoch(local_generator, seed, epoch)
            t_epoch = time.perf_counter()
            paused_at_epoch = self._paused_s
            self._epoch_clock = (t_epoch, paused_at_epoch)
            self._epoch_partial = (0.0, 0)
            # fresh batches (the Going-Deeper parity task) are drawn per step and need no permutation
            perm = None if fresh else data.permutation(generator)
            # the window since the last emit: references to tensors the step computed anyway, so
            # the hot loop adds no device work; reduced in one go at the emit
            win_loss: list[torch.Tensor] = []
            win_out: list[torch.Tensor] = []
            win_y: list[torch.Tensor] = []
            win_n: list[int] = []
            ep_loss_sum = 0.0
            ep_n = 0
            ep_correct = 0
            t_emit = time.perf_counter()
            paused_at_emit = self._paused_s
            for bi, (s0, s1, n_global, scale) in enumerate(steps):
                if local_control and (stop.is_set() or not running.is_set()):
                    try:
                        self._wait_if_paused()
                    except _StopRequested:   # the steps since the last emit were trained: count them
                        self._step = step
                        self._samples += sum(win_n)
                        raise
                if fresh:
                    x, y = data.fresh_batch(s1 - s0, local_generator)
                else:
                    x, y = data.train_batch(perm, s0, s1, local_generator)
                if plain:
                    out = model(x)
                    loss = cross_entropy(out, y)
                    total = loss
                    if reg_modules:
                        for m in reg_modules:
                            total = total + m.regularization()
                else:
                    out, loss, total = self._forward_loss(x, y, scale)
                opt.zero_grad(set_to_none=True)
                total.backward()
                if grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(params, grad_clip)
                win_loss.append(loss.detach())
                win_n.append(n_global)
                if classification:
                    win_out.append(out.detach())
                    win_y.append(y)  # the labels the window trained on
                step += 1
                emit = (step % every == 0) or bi == last_index
                if emit:
                    values, losses, loss_sum, n_correct, finite, votes = self._read_window(
                        win_loss, win_n, win_out, win_y, bi, steps)
                    n = sum(win_n)
                    if not finite and (  # cheap: one sum, the detail only on trouble
                            not math.isfinite(loss_sum) or first_nonfinite_layer(values, layer_names)):
                        self._fail_nonfinite(losses, win_n, values, step)
                    if explode_at is None:  # the run's first step: the loss of the model as it starts
                        explode_at = EXPLODING_FACTOR * max(abs(losses[0]), self._loss_floor())
                    if loss_sum > explode_at * n:  # one multiply and compare per emit
                        self._fail_exploding(losses, step, explode_at)
                opt.step()
                schedule.after_step()
                if emit:
                    ep_loss_sum += loss_sum
                    ep_n += n
                    self._epoch_partial = (ep_loss_sum, ep_n)
                    ep_correct += int(n_correct)
                    self._samples += n
                    self._step = step
                    if main:
                        now = time.perf_counter()
                        seconds = max(1e-9, now - t_emit - (self._paused_s - paused_at_emit))
                        mean_loss = loss_sum / n
                        metrics = Metrics(
                            step=step, epoch=epoch, epoch_fraction=epoch + (bi + 1) / len(steps), loss=mean_loss,
                            lr=float(opt.param_groups[0]["lr"]), samples_per_s=n / seconds,
                            accuracy=(n_correct / n) if classification else None,
                            rmse=None if classification else math.sqrt(max(mean_loss, 0.0)) * target_scale,
                            grad_norm=values.grad_norm, weight_norm=values.weight_norm, depth_w=values.depth_w,
                            depth=values.depth, hardness=values.hardness,
                            seconds=self._train_seconds + (now - t_epoch - (self._paused_s - paused_at_epoch)),
                        )
                        if write:
                            writer.append([metrics.flat()])
                        on_event(metrics)
                        if hooks:
                            self._run_hooks(metrics, emits, on_event)
                    emits += 1
                    win_loss, win_out, win_y, win_n = [], [], [], []
                    t_emit = time.perf_counter()
                    paused_at_emit = self._paused_s
                    if votes is not None:  # DDP: what the ranks agreed at this emit
                        if votes[0] > 0:
                            raise _StopRequested
                        if votes[1] > 0:
                            self._hold()
            self._step = step
            schedule.after_epoch()
            train_seconds = time.perf_counter() - t_epoch - (self._paused_s - paused_at_epoch)
            self._train_seconds += train_seconds
            self._epoch_clock = None
            self._epochs_done = epoch + 1
            val_loss, val_metric = self._validate()
            train_loss = ep_loss_sum / max(1, ep_n)
            end = EpochEnd(
                epoch=epoch, step=step, seconds=train_seconds, train_loss=train_loss, val_loss=val_loss,
                train_accuracy=(ep_correct / max(1, ep_n)) if classification else None,
                val_accuracy=val_metric if classification else None,
                train_rmse=None if classification else math.sqrt(max(train_loss, 0.0)) * target_scale,
                val_rmse=None if classification or val_loss is None else val_metric,
            )
            self._record_epoch(end)
            on_event(end)

    # ---------------------------------------------------------------------------------------------
    # What a rank does differently: the process context answers (workbench.distributed); these
    # helpers are where the loop asks it. With one process none of them runs per step.
    # ---------------------------------------------------------------------------------------------
    def _rank_steps(self) -> list[tuple[int, int, int, float]]:
        """Per step of an epoch: (start, stop) of this rank's samples in the permutation, the global
        batch size, and the factor this rank's loss is scaled by before ``backward()`` (n_r·W/N, so
        that DDP's mean of the ranks' gradients is the gradient of the global batch mean)."""
        proc = self.process
        if not proc.distributed:
            return [(s0, s1, s1 - s0, 1.0) for s0, s1 in self.slices]
        out = []
        for s0, s1 in self.slices:
            a, b = proc.shard(s0, s1)
            out.append((a, b, s1 - s0, (b - a) * proc.world_size / (s1 - s0)))
        return out

    def _forward_loss(self, x: torch.Tensor, y: torch.Tensor, scale: float
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(output, loss, what ``backward()`` runs on) for one step, off the plain path: bf16
        autocast, MSE losses, and DDP (whose forward also returns the regularisation terms)."""
        if self.process.distributed:
            if self._autocast is not None:
                with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16):
                    out, reg = self._train_model(x)
            else:
                out, reg = self._train_model(x)
            loss = self._compute_loss(out, y)
            total = loss if scale == 1.0 else loss * scale
            return out, loss, (total if reg is None else total + reg)
        out = self._forward(x)
        loss = self._compute_loss(out, y)
        total = loss
        for m in self.reg_modules:
            total = total + m.regularization()
        return out, loss, total

    def _read_window(self, win_loss: list[torch.Tensor], win_n: list[int], win_out: list[torch.Tensor],
                     win_y: list[torch.Tensor], bi: int, steps: list[tuple[int, int, int, float]]
                     ) -> tuple[ProbeValues, list[float], float, float, bool, list[float] | None]:
        """The emit's one host read: probes, the window's losses and correct predictions (and under
        DDP the ranks' stop and pause votes), through :meth:`Probes.read` — ONE ``.tolist()``.

        Returns (probe values, per-step mean losses, Σ loss·n, correct predictions, all finite,
        votes). One process: ``votes`` is None. DDP: loss·n_r and the counts are summed over the
        ranks (one all-reduce), so every figure is the global batch's, on every rank."""
        k = len(win_loss)
        extra = win_loss
        if win_out:
            outs = win_out[0] if k == 1 else torch.cat(win_out)
            ys = win_y[0] if k == 1 else torch.cat(win_y)
            extra.append((predicted_class(outs) == ys).sum(dtype=torch.float32))
        if not self.process.distributed:
            values, host, finite = self.probes.read(extra)
            losses = host[:k]
            loss_sum = sum(v * m for v, m in zip(losses, win_n))
            return values, losses, loss_sum, (host[k] if win_out else 0.0), finite, None
        local = [float(b - a) for a, b, _, _ in steps[bi - k + 1:bi + 1]]
        values, host, finite = self.probes.read(extra, reduce=lambda parts: self._all_reduce_window(parts, local))
        sums = host[:k]
        losses = [v / m for v, m in zip(sums, win_n)]
        return values, losses, sum(sums), (host[k] if win_out else 0.0), finite, host[-2:]

    def _all_reduce_window(self, parts: list[torch.Tensor], local: list[float]) -> torch.Tensor:
        """[loss_i·n_r,i …, correct, stop vote, pause vote] summed over the ranks (one all-reduce)."""
        m = len(parts)
        aux = torch.tensor(local + [1.0] * (m - len(local)) + [float(self._stop.is_set()),
                                                               float(not self._running.is_set())],
                           dtype=torch.float32, device=self.device)
        vector = torch.cat([torch.stack(parts).float() * aux[:m], aux[m:]])
        return self.process.all_reduce(vector)

    def _hold(self) -> None:
        """DDP pause: a rank asked to pause, so every rank waits here, agreeing every
        :data:`HOLD_POLL_S` seconds (one tiny all-reduce) whether to go on, stay, or stop."""
        t = time.perf_counter()
        try:
            while True:
                self._running.wait(HOLD_POLL_S)  # returns at once on a rank that is not paused
                votes = torch.tensor([float(self._stop.is_set()), float(not self._running.is_set())],
                                     dtype=torch.float32, device=self.device)
                stop_votes, pause_votes = self.process.all_reduce(votes).tolist()
                if stop_votes > 0:
                    raise _StopRequested
                if pause_votes == 0:
                    return
        finally:
            self._paused_s += time.perf_counter() - t

    def _run_hooks(self, metrics: Metrics, index: int, on_event: Callable[[Any], None]) -> None:
        """Each emit hook, on this thread, under ``no_grad``; the model is left in train mode after it."""
        from .hooks import EmitContext

        model = self.model
        context = EmitContext(metrics=metrics, emit_index=index, model=model, data=self.data,
                              device=self.device, task=self.task)
        for hook in self.emit_hooks:
            try:
                with torch.no_grad():
                    produced = hook(context)
                    produced = list(produced) if produced is not None else []
            except Exception as exc:  # noqa: BLE001 - named below; out of memory keeps its own message
                if _is_oom(exc):
                    raise
                name = getattr(hook, "__name__", type(hook).__name__)
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise _RunFailure(f"the emit hook {name} failed at step {metrics.step}: {type(exc).__name__}"
                                  + (f": {first}" if first else ""),
                                  "this is an error in that hook, not in the preset; remove the hook or fix it")
            finally:
                if not model.training:
                    model.train()
            for event in produced:
                on_event(event)

    # ---------------------------------------------------------------------------------------------
    def _loss_floor(self) -> float:
        """The loss of an uninformed model: ln(classes) for cross-entropy (a uniform guess; ln 2 for
        bce), 1 for mean squared error (on standardised targets, or on one-hot targets an upper bound)."""
        if self.loss_kind in ("cross_entropy", "bce"):
            return math.log(max(2, int(self.data.output_dim)))
        return 1.0

    def _fail_exploding(self, losses: list[float], step: int, limit: float) -> None:
        """The loss grew more than :data:`EXPLODING_FACTOR` times past where the run started: it
        diverges (an optimiser such as Adam can do so for ever without a NaN)."""
        self._diverged = True
        window_start = step - len(losses) + 1
        bad = next((i for i, v in enumerate(losses) if v > limit), len(losses) - 1)
        bad_step = window_start + bad
        start = limit / EXPLODING_FACTOR
        self._step = bad_step
        raise _RunFailure(
            f"the loss exploded at step {bad_step}: {losses[bad]:.3g}, more than {EXPLODING_FACTOR:g} × its "
            f"starting level ({start:.3g}); the run is diverging",
            f"lower train.lr (now {self.preset.train.lr:g}), set train.grad_clip (e.g. 1.0), or check the "
            f"data normalisation; the last good checkpoint is kept", bad_step)

    def _fail_nonfinite(self, losses: list[float], ns: list[int], values: ProbeValues, step: int) -> None:
        self._diverged = True
        window_start = step - len(losses) + 1
        bad = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
        bad_step = window_start + bad if bad is not None else step
        layer = first_nonfinite_layer(values, self.probes.layer_names)
        what = "loss" if bad is not None else "gradient"
        where = f"; first layer with a non-finite gradient: {layer}" if layer else ""
        self._step = bad_step
        raise _RunFailure(
            f"the {what} became non-finite (NaN or inf) at step {bad_step}{where}",
            f"lower train.lr (now {self.preset.train.lr:g}), set train.grad_clip (e.g. 1.0), or check the "
            f"data normalisation; the last good checkpoint is kept", bad_step)

    @torch.no_grad()
    def _validate(self) -> tuple[float | None, float | None]:
        """Validation loss and accuracy (classification) or RMSE in target units (regression).
        Under DDP each rank validates its share (with rank 0's BatchNorm statistics) and the sums
        are all-reduced with the ranks' stop votes."""
        proc, model = self.process, self.model
        n = self.data.val_size
        if n == 0:
            return None, None
        if proc.distributed:
            proc.sync_buffers(model)
        model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        classification = self.task == "classification"
        stopped = False
        for x, y in self.val_data.val_batches(max(self.batch_size, 1024)):
            if self._stop.is_set():
                if not proc.distributed:
                    model.train()
                    raise _StopRequested
                stopped = True  # the others learn it from the vote below
                break
            out = self._forward(x)
            loss_sum += self._compute_loss(out, y) * y.shape[0]
            if classification:
                correct += (predicted_class(out) == y).sum()
        model.train()
        parts = [loss_sum.float(), correct.float()]
        if proc.distributed:
            parts.append(torch.full((), float(stopped), device=self.device))
            figures = proc.all_reduce(torch.stack(parts)).tolist()
            if figures[2] > 0:
                raise _StopRequested
        else:
            figures = torch.stack(parts).tolist()
        total, n_correct = figures[0], figures[1]
        val_loss = total / n
        if classification:
            return val_loss, n_correct / n
        return val_loss, math.sqrt(max(val_loss, 0.0)) * float(self.data.target_scale)

    def _record_epoch(self, end: EpochEnd) -> None:
        """Append the epoch's record, then write the checkpoints and the summary: in this order a
        run killed between any two of them resumes with every epoch record (the resumed run drops
        the records past its checkpoint and writes them again)."""
        self._writer.append([end.flat()])
        h = self._history
        h["final_train_loss"] = end.train_loss
        h["final_val_loss"] = end.val_loss
        classification = self.task == "classification"
        if end.val_loss is not None:
            best = h.get("best_val_loss")
            h["best_val_loss"] = end.val_loss if best is None else min(best, end.val_loss)
        if classification:
            h["final_val_accuracy"] = end.val_accuracy
            if end.val_accuracy is not None:
                h["best_val_accuracy"] = max(h.get("best_val_accuracy") or 0.0, end.val_accuracy)
            score = end.val_accuracy if end.val_accuracy is not None else -end.train_loss
        else:
            h["final_val_rmse"] = end.val_rmse
            if end.val_rmse is not None:
                best = h.get("best_val_rmse")
                h["best_val_rmse"] = end.val_rmse if best is None else min(best, end.val_rmse)
            score = -(end.val_rmse if end.val_rmse is not None else end.train_loss)
        improved = math.isfinite(score) and (self.best.get("score") is None or score > self.best["score"])
        if improved:
            self.best = {"score": float(score), "epoch": end.epoch, "val_loss": end.val_loss}
            h["best_epoch"] = end.epoch
        if self._writer.enabled and self.preset.monitor.checkpoints:
            state = self._checkpoint_state(end.epoch + 1)
            self._writer.save("last", state)
            if improved:
                self._writer.save("best", state)
        self._summary = self._summary_now("running")
        self._writer.write_summary(self._summary)

    def _checkpoint_state(self, epochs_done: int) -> dict[str, Any]:
        assert self.model is not None
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "epoch": int(epochs_done),
            "step": int(self._step),
            "samples": int(self._samples),
            "seconds": float(self._train_seconds),
            "rng": _rng_state(self.generator),
            "best": {k: v for k, v in self.best.items()},
            "history": {k: v for k, v in self._history.items()},
            "layer_names": list(self.probes.layer_names),
        }

    def _learned_depth(self) -> dict[str, float]:
        if self.model is None or not getattr(self, "probes", None) or not self.probes.depth_modules:
            return {}
        ws = torch.stack([m.w.detach().reshape(()).float() for _, m in self.probes.depth_modules]).tolist()
        return {path: float(w) for (path, _), w in zip(self.probes.depth_modules, ws)}

    def _summary_now(self, status: str, message: str = "", hint: str = "") -> RunSummary:
        h = self._history
        seconds = self._train_seconds
        final_train_loss = h.get("final_train_loss")
        if status in ("stopped", "failed") and self._epoch_clock is not None:
            # ended inside an epoch: count its time, and its mean loss when no epoch completed
            t_epoch, paused_at_epoch = self._epoch_clock
            seconds += max(0.0, time.perf_counter() - t_epoch - (self._paused_s - paused_at_epoch))
            loss_sum, n = self._epoch_partial
            if final_train_loss is None and n > 0 and math.isfinite(loss_sum):
                final_train_loss = loss_sum / n
        return replace(
            self._summary, status=status, epochs_completed=self._epochs_done, steps=self._step,  # type: ignore[arg-type]
            seconds=seconds, samples_per_s=(self._samples / seconds) if seconds > 0 else 0.0,
            final_train_loss=final_train_loss, final_val_loss=h.get("final_val_loss"),
            best_val_loss=h.get("best_val_loss"), final_val_accuracy=h.get("final_val_accuracy"),
            best_val_accuracy=h.get("best_val_accuracy"), final_val_rmse=h.get("final_val_rmse"),
            best_val_rmse=h.get("best_val_rmse"), best_epoch=h.get("best_epoch"),
            learned_depth=self._learned_depth(), message=message, hint=hint,
        )

    def _finish(self, status: str, message: str = "", hint: str = "") -> RunSummary:
        """Final summary; on stop (and on failures other than non-finite values) keep a last.pt."""
        try:
            summary = self._summary_now(status, message, hint)
        except Exception:  # noqa: BLE001 - a broken model must not hide the real failure
            summary = replace(self._summary, status=status, message=message, hint=hint)  # type: ignore[arg-type]
        if self._started and self._writer.enabled and self.preset.monitor.checkpoints and self._step > 0:
            try:
                keep = status == "stopped" or (status == "failed" and not self._diverged and all(
                    bool(torch.isfinite(p).all()) for p in self.model.parameters()))
                if keep and self._step > self.start_step:
                    self._writer.save("last", self._checkpoint_state(self._epochs_done))
            except Exception:  # noqa: BLE001
                pass
        # never into a folder this run did not claim (another run's); and a resume that failed
        # before training leaves the run's summary as it was (its figures are the run's record)
        if self._writer.owned and (self._started or self.resume_from is None):
            with contextlib.suppress(Exception):
                self._writer.write_summary(summary)
        return summary
