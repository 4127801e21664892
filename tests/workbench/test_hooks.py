"""Emit hooks (workbench.hooks): extra work at emits on the training thread, producing extra events."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from workbench.events import Failed, Finished, Metrics
from workbench.hooks import EmitContext, evaluating
from workbench.presets import load_builtin
from workbench.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@dataclass(frozen=True)
class GridClasses:
    step: int
    classes: tuple[int, ...]


def _preset(epochs: int = 1):
    p = load_builtin("mlp-relu-digits")
    p.train.epochs = epochs
    p.train.device = "cpu"
    p.monitor.every_steps = 5
    return p


def test_a_hook_runs_every_nth_emit_after_its_metrics_and_leaves_training_unchanged():
    """A decision-boundary-like hook: every 2nd emit, one batched forward in eval mode under no_grad."""
    seen: list[tuple[int, bool, bool]] = []

    def boundary(context: EmitContext):
        seen.append((context.emit_index, context.model.training, torch.is_grad_enabled()))
        if context.emit_index % 2:
            return None
        with evaluating(context.model) as model:
            assert not model.training
            logits = model(context.data.val_x[:16])
        return [GridClasses(context.metrics.step, tuple(logits.argmax(-1).tolist()))]

    events: list = []
    summary = Trainer(_preset(), emit_hooks=[boundary]).run(events.append)
    plain: list = []
    Trainer(_preset()).run(plain.append)
    assert isinstance(events[-1], Finished) and summary.status == "finished"
    metrics = [e for e in events if isinstance(e, Metrics)]
    assert [i for i, _, _ in seen] == list(range(len(metrics)))
    assert all(training and not grad for _, training, grad in seen)  # train mode in, no_grad around it
    grids = [e for e in events if isinstance(e, GridClasses)]
    assert [g.step for g in grids] == [m.step for m in metrics[::2]]
    for grid in grids:  # each right after the Metrics of its step
        at = events.index(grid)
        assert isinstance(events[at - 1], Metrics) and events[at - 1].step == grid.step
    # the hook changed nothing in the training: the same losses as without it
    assert [m.loss for m in metrics] == [m.loss for m in plain if isinstance(m, Metrics)]


def test_a_failing_hook_ends_the_run_naming_it():
    def broken_view(context: EmitContext):
        raise KeyError("grid")

    events: list = []
    summary = Trainer(_preset(), emit_hooks=[broken_view]).run(events.append)
    assert summary.status == "failed" and isinstance(events[-1], Failed)
    assert summary.message.startswith("the emit hook broken_view failed at step 5: KeyError")
    assert "hook" in summary.hint
