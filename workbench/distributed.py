"""What one training process does differently when several train one run together (torchrun + DDP).

A :class:`workbench.trainer.Trainer` holds one *process context* and asks it, in one place, every
question whose answer depends on being one of several processes:

============================  =================================  ==========================================
question                      :class:`SingleProcess`             :class:`DDPProcess` (rank r of W)
============================  =================================  ==========================================
which device                  ``train.device``                   ``cuda:LOCAL_RANK`` (NCCL) or ``cpu`` (gloo)
the model that trains         the model                          ``DistributedDataParallel`` over it
which samples of a batch      all of the global batch            slice r of the global batch (the preset's
                                                                 ``batch_size`` stays the global batch)
loss, accuracy at an emit     as computed                        summed over ranks (one all-reduce)
stop / pause / a failure      honoured before the next step      agreed at the next emit (a flag in the
                                                                 same all-reduce), so every rank stops at
                                                                 the same step and none waits alone
who writes the run folder     this process                       rank 0 only (the others write nothing)
who sends events              this process                       rank 0 only
validation                    the whole split                    slice r of it, sums all-reduced
============================  =================================  ==========================================

Every rank draws the epoch's permutation from the same seeded generator, so the slices of all ranks
together are exactly the single-process batch. Gradients: DDP all-reduces the mean of the ranks'
gradients during ``backward()``; a rank whose slice holds n_r of the batch's N samples scales its
loss by n_r·W/N first, so the mean of the ranks' gradients is the gradient of the global batch mean
whatever the split (the factor is 1 when N divides evenly). Probes: after that all-reduce every rank
holds the same gradients and (optimiser steps being identical) the same weights, learned depth and
hardness, so each rank reads its own probes — identical on all ranks, no extra communication.

Random numbers: the permutation generator is shared (same seed, same draws on every rank);
augmentation and fresh batches (the parity task) draw from a per-rank generator reseeded at each
epoch from (seed, rank, epoch), and ranks > 0 reseed torch's global generator (dropout) the same
way, so a resumed run draws what the uninterrupted one would have. With one process nothing of
this applies and a run draws exactly what it drew before DDP existed.
"""
from __future__ import annotations

import os
import re
import threading
import time
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

__all__ = ["ProcessContext", "SingleProcess", "DDPProcess", "context_from_env", "ddp_device", "PeerFailure",
           "is_peer_failure", "watch_parent", "DDP_ENV"]

#: The environment variables torchrun sets for every worker.
DDP_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE")

#: Store key prefix under which a failing rank leaves its message for the others.
_FAILURE_KEY = "afwb/failure/"


class PeerFailure(Exception):
    """Another process of this run failed or went away; ``message`` says which and why, if known."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ProcessContext:
    """The single-process answers (see the module docstring); :class:`DDPProcess` overrides them.

    ``distributed`` is False here: the trainer's fast single-process loop never calls the per-step
    methods, so one process pays nothing for DDP's existence."""

    rank = 0
    local_rank = 0
    world_size = 1
    distributed = False
    backend = ""

    @property
    def is_main(self) -> bool:
        """Rank 0: writes the run folder and sends the events."""
        return self.rank == 0

    def device(self, requested: str) -> torch.device:
        from .devices import resolve_device

        return resolve_device(requested)

    def start(self, device: torch.device) -> None:
        """Join the process group (nothing to join alone)."""

    def agree(self, failure: tuple[str, str] | None) -> tuple[int, str, str] | None:
        """Every rank says whether its set-up failed; returns (rank, message, hint) of the first that did."""
        return (0, *failure) if failure else None

    def wrap(self, model: nn.Module, reg_modules: Sequence[nn.Module], unused_parameters: bool) -> nn.Module:
        return model

    def shard(self, start: int, stop: int) -> tuple[int, int]:
        return start, stop

    def all_reduce(self, vector: torch.Tensor) -> torch.Tensor:
        return vector

    def sync_buffers(self, model: nn.Module) -> None:
        pass

    def seed_epoch(self, generator: torch.Generator, seed: int, epoch: int) -> None:
        pass

    def announce_failure(self, message: str) -> None:
        pass

    def peer_failure(self, exc: BaseException, step: int | None, run_dir: Any = None) -> PeerFailure | None:
        return None

    def close(self, clean: bool) -> None:
        pass

    def describe(self, device_name: str) -> str:
        return device_name


class SingleProcess(ProcessContext):
    """One process trains the run (the default)."""


def ddp_device(requested: str, local_rank: int) -> torch.device:
    """The device of the process with ``local_rank`` on its machine: ``cuda:LOCAL_RANK`` for ``auto``
    (when CUDA is present), ``cuda`` and ``cuda:N`` (under DDP each process owns the GPU of its local
    rank, whatever index the preset names); ``cpu`` for ``cpu`` (and ``auto`` without CUDA). Apple MPS
    has no DDP backend. Raises :class:`workbench.devices.DeviceUnavailable` with the fix."""
    from .devices import DeviceUnavailable

    req = (requested or "auto").strip().lower()
    if req == "cpu" or (req == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if req == "auto" or req.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceUnavailable(requested, "no CUDA GPU is visible to PyTorch: train on the CPU (--device cpu, "
                                               "gloo) or install a CUDA build of PyTorch")
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise DeviceUnavailable(f"cuda:{local_rank}", f"this machine has {count} GPU(s) but {local_rank + 1} or "
                                                          f"more processes were started on it: pass --nproc {count} "
                                                          "(--nproc-per-node for torchrun) or fewer")
        return torch.device("cuda", local_rank)
    if req == "mps":
        raise DeviceUnavailable(requested, "PyTorch's DDP has no Apple MPS backend: train with one process, or on "
                                           "the CPU (--device cpu)")
    raise DeviceUnavailable(requested, "use one of auto, cpu, cuda, cuda:N")


class _TrainForward(nn.Module):
    """What DDP wraps when layers add a regularisation term: forward returns (output, Σ regularization()).

    DDP must see every parameter's use inside its forward: a term computed outside it (InfiniteDepth's
    w_l2·w² when its depth is 0 and w is not used by the forward) would reach a parameter DDP had
    already declared unused, which it refuses."""

    def __init__(self, model: nn.Module, reg_modules: Sequence[nn.Module]) -> None:
        super().__init__()
        self.model = model
        self._reg = list(reg_modules)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.model(x)
        reg = None
        for m in self._reg:
            term = m.regularization()
            reg = term if reg is None else reg + term
        return out, reg


def _mix(*values: int) -> int:
    """A 63-bit seed from small integers (splitmix64 of their combination)."""
    z = 0x9E3779B97F4A7C15
    for v in values:
        z = (z ^ (int(v) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        z = (z ^ (z >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
    return z & 0x7FFFFFFFFFFFFFFF


class DDPProcess(ProcessContext):
    """Rank ``rank`` of ``world_size`` processes started by torchrun (see the module docstring)."""

    distributed = True

    def __init__(self, rank: int, local_rank: int, world_size: int) -> None:
        if not (0 <= rank < world_size and 0 <= local_rank):
            raise ValueError(f"bad process ranks: RANK={rank}, LOCAL_RANK={local_rank}, WORLD_SIZE={world_size}")
        self.rank = rank
        self.local_rank = local_rank
        self.world_size = world_size
        self._device: torch.device | None = None
        self._started = False

    def device(self, requested: str) -> torch.device:
        return ddp_device(requested, self.local_rank)

    def start(self, device: torch.device) -> None:
        """Join the process group: NCCL for CUDA (after ``cuda.set_device``: each process drives the
        GPU of its local rank), gloo for the CPU. Rendezvous comes from torchrun's environment."""
        import torch.distributed as dist

        self._device = device
        if device.type == "cuda":
            torch.cuda.set_device(device)
            self.backend = "nccl"
            dist.init_process_group("nccl", device_id=device)
        else:
            self.backend = "gloo"
            dist.init_process_group("gloo")
        self._started = True
        if dist.get_world_size() != self.world_size or dist.get_rank() != self.rank:
            raise RuntimeError(f"the process group has rank {dist.get_rank()} of {dist.get_world_size()}, "
                               f"the environment says {self.rank} of {self.world_size}")

    # -- set-up --------------------------------------------------------------------------------
    def agree(self, failure: tuple[str, str] | None) -> tuple[int, str, str] | None:
        import torch.distributed as dist

        said: list[Any] = [None] * self.world_size
        dist.all_gather_object(said, failure)
        for rank, item in enumerate(said):
            if item:
                return rank, str(item[0]), str(item[1])
        return None

    def wrap(self, model: nn.Module, reg_modules: Sequence[nn.Module], unused_parameters: bool) -> nn.Module:
        """DDP over the model (and its regularisation terms, see :class:`_TrainForward`). It
        broadcasts rank 0's parameters and buffers at construction, so every rank starts alike.
        ``unused_parameters``: some parameters take no part in some steps (InfiniteDepth runs only
        ⌈w⌉ of its sub-layers): DDP then looks for them after each forward."""
        from torch.nn.parallel import DistributedDataParallel as DDP

        assert self._device is not None
        target = _TrainForward(model, reg_modules)
        ids = [self._device.index] if self._device.type == "cuda" else None
        return DDP(target, device_ids=ids, output_device=ids[0] if ids else None,
                   find_unused_parameters=unused_parameters)

    # -- per step and per emit -------------------------------------------------------------------
    def shard(self, start: int, stop: int) -> tuple[int, int]:
        """This rank's part [a, b) of the global batch [start, stop): contiguous, sizes differ by ≤ 1."""
        n, w, r = stop - start, self.world_size, self.rank
        return start + (n * r) // w, start + (n * (r + 1)) // w

    def all_reduce(self, vector: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        dist.all_reduce(vector)
        return vector

    def sync_buffers(self, model: nn.Module) -> None:
        """Rank 0's buffers (BatchNorm running statistics) to every rank, so all validate alike."""
        import torch.distributed as dist

        for buf in model.buffers():
            dist.broadcast(buf, 0)

    def seed_epoch(self, generator: torch.Generator, seed: int, epoch: int) -> None:
        generator.manual_seed(_mix(seed, self.rank, epoch, 1))
        if self.rank:
            torch.manual_seed(_mix(seed, self.rank, epoch, 2))

    # -- failures ----------------------------------------------------------------------------------
    def _store(self) -> Any:
        try:
            from torch.distributed import distributed_c10d

            return distributed_c10d._get_default_store()
        except Exception:  # noqa: BLE001 - no group (yet), or a torch without it: no notes
            return None

    def announce_failure(self, message: str) -> None:
        """Leave this rank's failure message in the rendezvous store, for rank 0 to report."""
        store = self._store() if self._started else None
        if store is not None:
            try:
                store.set(f"{_FAILURE_KEY}{self.rank}", message)
            except Exception:  # noqa: BLE001 - the store may be gone with the run
                pass

    def peer_failure(self, exc: BaseException, step: int | None, run_dir: Any = None,
                     wait_s: float = 3.0) -> PeerFailure | None:
        """A :class:`PeerFailure` when ``exc`` says a collective failed because another process
        failed or vanished (None otherwise). The other ranks' notes are read from the store for up to
        ``wait_s`` seconds (a rank that failed writes its note before it exits; a killed one never does)."""
        if not is_peer_failure(exc):
            return None
        where = f" at step {step}" if step is not None else ""
        notes: list[str] = []
        store = self._store() if self._started else None
        if store is not None:
            deadline = time.monotonic() + wait_s
            others = [r for r in range(self.world_size) if r != self.rank]
            while True:
                notes = []
                for r in others:
                    try:
                        if store.check([f"{_FAILURE_KEY}{r}"]):
                            notes.append(f"rank {r}: {store.get(f'{_FAILURE_KEY}{r}').decode('utf-8', 'replace')}")
                    except Exception:  # noqa: BLE001 - the store went away with the agent
                        deadline = 0.0
                        break
                if notes or time.monotonic() >= deadline:
                    break
                time.sleep(0.1)
        hint = (f"the last checkpoint is kept: resume with `python main.py train --resume {run_dir or 'RUN_FOLDER'} "
                f"--nproc {self.world_size}` once the cause is fixed")
        if notes:
            return PeerFailure(f"another process of this run failed{where}: " + "; ".join(notes), hint)
        return PeerFailure(f"another process of this {self.world_size}-process run ended without a word{where} "
                           f"(killed, crashed, or its machine went away): {_collective_error(exc)}",
                           "torchrun's report names the rank and how it ended; " + hint)

    def close(self, clean: bool) -> None:
        """Leave the process group. After a failure the group may be broken (a collective waiting
        for a dead peer): leaving it could block, so the process just ends and the OS cleans up."""
        if not self._started or not clean:
            return
        import torch.distributed as dist

        try:
            dist.destroy_process_group()
        except Exception:  # noqa: BLE001
            pass
        self._started = False

    def describe(self, device_name: str) -> str:
        return f"{device_name} × {self.world_size} processes (DDP, {self.backend or '?'})"


def _collective_error(exc: BaseException) -> str:
    """The first sentence of a backend's error, without its source location (gloo's begin with
    ``[.../gloo/transport/tcp/pair.cc:561]``)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"^\[[^\]]*\]\s*", "", text)
    end = text.find(". ")
    text = text[:end + 1] if end > 0 else text
    return text[:200]


def is_peer_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a failed collective (a peer died, closed its connection or timed out)."""
    import torch.distributed as dist

    kinds = tuple(t for t in (getattr(dist, "DistError", None), getattr(dist, "DistBackendError", None),
                              getattr(dist, "DistNetworkError", None)) if t is not None)
    if kinds and isinstance(exc, kinds):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(t in text for t in (
        "connection closed by peer", "connection reset by peer", "gloo", "nccl", "broken pipe",
        "socket timeout", "timed out"))


def context_from_env(environ: Mapping[str, str] | None = None) -> ProcessContext:
    """:class:`DDPProcess` when torchrun started this process as one of several (``WORLD_SIZE`` > 1),
    else :class:`SingleProcess`."""
    env = os.environ if environ is None else environ
    try:
        world = int(env.get("WORLD_SIZE", "1"))
    except ValueError:
        world = 1
    if world <= 1 or "RANK" not in env:
        return SingleProcess()
    return DDPProcess(int(env["RANK"]), int(env.get("LOCAL_RANK", env["RANK"])), world)



def watch_parent(on_orphaned: Callable[[], None], period_s: float = 1.0) -> threading.Thread:
    """Call ``on_orphaned()`` once if this process's parent (torchrun's agent) goes away — killed
    without passing a signal on: the ranks then stop at the next emit instead of training on alone."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(period_s)
            if os.getppid() != parent:
                on_orphaned()
                return

    thread = threading.Thread(target=watch, name="afwb-parent-watch", daemon=True)
    thread.start()
    return thread
