"""Learning-rate schedules named by ``train.scheduler``.

=============  =======================================================================  ==========
name           learning rate                                                             stepped
=============  =======================================================================  ==========
``none``       constant ``lr``                                                           —
``step``       ``lr·gamma^k`` after the k-th milestone; milestones are fractions of      per step
               all optimiser steps (0.5 → halfway), rounded to whole steps
``cosine``     cosine annealing from ``lr`` to 0 over all optimiser steps                per step
``onecycle``   PyTorch's one-cycle policy with peak ``lr`` over all optimiser steps      per step
``exp_curve``  ``lr·e·(x/p)·exp(−x/p)``, x = epoch + 1, p = ``peak_epoch`` (twist-ResNet  per epoch
               recipe: rises to ``lr`` at epoch p − 1, then decays exponentially)
=============  =======================================================================  ==========
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from workbench.sections import SCHEDULERS, TrainSpec

__all__ = ["Schedule", "make_schedule", "exp_curve_factor", "step_milestones", "SCHEDULERS"]


def exp_curve_factor(epoch: int, peak_epoch: float) -> float:
    """Multiplier of ``lr`` in epoch ``epoch`` (0-based) for ``exp_curve``: e·(x/p)·exp(−x/p), x = epoch+1."""
    p = float(peak_epoch)
    if p <= 0:
        raise ValueError(f"train.peak_epoch must be > 0 for exp_curve, got {peak_epoch}")
    x = epoch + 1.0
    return math.e * (x / p) * math.exp(-x / p)


def step_milestones(fractions: list[float], total_steps: int) -> list[int]:
    """Optimiser-step counts after which the ``step`` schedule multiplies lr by gamma.

    Milestone m = round(f · total_steps): steps 1 … m run at the previous lr, step m + 1 on at the
    next. This is ``MultiStepLR(milestones=[f·maxiter, …])`` stepped after every iteration, as
    HanNet's ``checkerboard_experiments/main.py`` does (github.com/yyy32/HanNet, commit 09f8dc0).
    """
    out = sorted({max(1, int(round(float(f) * total_steps))) for f in fractions})
    return [m for m in out if m <= total_steps]


@dataclass
class Schedule:
    """A torch LR scheduler (or none) and when to advance it: ``per_step`` or per epoch."""

    scheduler: Any | None
    per_step: bool

    def after_step(self) -> None:
        if self.scheduler is not None and self.per_step:
            self.scheduler.step()

    def after_epoch(self) -> None:
        if self.scheduler is not None and not self.per_step:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return {} if self.scheduler is None else _plain_state(self.scheduler.state_dict())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scheduler is not None and state:
            self.scheduler.load_state_dict(state)


def _plain_state(state: dict[str, Any]) -> dict[str, Any]:
    """Drop callables (LambdaLR stores ``lr_lambdas`` as None for plain functions, but be safe)."""
    return {k: v for k, v in state.items() if not callable(v)}


def make_schedule(optimizer: torch.optim.Optimizer, train: TrainSpec, steps_per_epoch: int) -> Schedule:
    """Build the schedule named by ``train.scheduler`` for ``train.epochs`` × ``steps_per_epoch`` steps."""
    name = train.scheduler
    total_steps = max(1, int(train.epochs) * max(1, steps_per_epoch))
    sched = torch.optim.lr_scheduler
    if name == "none":
        return Schedule(None, per_step=False)
    if name == "step":
        milestones = step_milestones(list(train.milestones), total_steps)
        return Schedule(sched.MultiStepLR(optimizer, milestones=milestones, gamma=float(train.gamma)), per_step=True)
    if name == "cosine":
        return Schedule(sched.CosineAnnealingLR(optimizer, T_max=total_steps), per_step=True)
    if name == "onecycle":
        return Schedule(sched.OneCycleLR(optimizer, max_lr=float(train.lr), total_steps=total_steps), per_step=True)
    if name == "exp_curve":
        peak = float(train.peak_epoch)
        exp_curve_factor(0, peak)  # validates peak
        return Schedule(sched.LambdaLR(optimizer, lr_lambda=_ExpCurve(peak)), per_step=False)
    raise ValueError(f"unknown train.scheduler '{name}'; use one of {', '.join(SCHEDULERS)}")


class _ExpCurve:
    """Picklable-free callable for LambdaLR (its state is not saved: it is rebuilt from the preset)."""

    def __init__(self, peak: float) -> None:
        self.peak = peak

    def __call__(self, epoch: int) -> float:
        return exp_curve_factor(epoch, self.peak)
