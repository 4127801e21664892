"""Emit hooks: extra work on the training thread at an emit, producing extra events.

A hook is any callable ``hook(context: EmitContext) -> Iterable[event] | None`` passed to
``Trainer(..., emit_hooks=[hook])``. The trainer calls it right after each ``Metrics`` event has been
sent (after that step's ``optimizer.step()``), on the training thread, inside ``torch.no_grad()``,
and sends the events it returns, in order, to the same ``on_event`` (so they reach the app, the
command line and, for a DDP run, the launcher's event link — see :mod:`workbench.eventlink`, whose
``register_event`` a new event class needs). Under DDP hooks run on rank 0 only (the other ranks
wait for it at their next collective).

Contract for a hook:

* cadence is the hook's: ``context.emit_index`` counts the run's emits (0, 1, 2, ...), so "every
  N emits" is ``if context.emit_index % N: return None``;
* it may switch the model to ``eval()`` (use :func:`evaluating`); the trainer puts it back in
  ``train()`` after every hook whatever happened;
* it must not change parameters, gradients or the optimiser, nor draw from the run's random
  generators (a run must train the same with or without hooks);
* it should stay small next to a training step (one batched forward, not a pass over the data):
  its time counts in the run's samples/s;
* an exception in a hook ends the run as ``Failed`` naming the hook (out of memory keeps the
  trainer's own message and hint).

Example (what a live decision-boundary view needs)::

    def boundary(context):
        if context.emit_index % 5:
            return None
        with evaluating(context.model):
            logits = context.model(grid_points)          # one batched forward
        return [BoundaryGrid(step=context.metrics.step, classes=logits.argmax(-1).tolist())]
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Protocol

import torch
from torch import nn

from .events import Metrics

__all__ = ["EmitContext", "EmitHook", "evaluating"]


@dataclass(frozen=True)
class EmitContext:
    """What an emit hook sees. ``model`` is the model being trained (the module inside DDP's
    wrapper under DDP), in train mode; ``data`` the run's :class:`workbench.data.LoadedData`
    (device-resident tensors); ``task`` "classification" or "regression"."""

    metrics: Metrics
    emit_index: int
    model: nn.Module
    data: Any
    device: torch.device
    task: str


class EmitHook(Protocol):
    def __call__(self, context: EmitContext) -> Iterable[Any] | None: ...


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``model.eval()`` under ``torch.no_grad()`` for the block, then back to the mode it had."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)
