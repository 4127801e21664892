"""The live decision boundary (workbench.boundary.BoundaryHook): its events arrive during a real
checkerboard run and hold the model's own predictions at that step, without changing the training;
they cross the DDP event link; and a one-logit (bce) classifier is read as two classes."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from workbench.boundary import BoundaryHook, BoundaryPoints, DecisionBoundary, grid_centres, grid_extent
from workbench.events import Finished, Metrics
from workbench.hooks import evaluating
from workbench.presets import load_builtin
from workbench.trainer import Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RESOLUTION = 16


def _checkerboard(epochs: int = 3):
    p = load_builtin("hannet-checkerboard")
    p.train.epochs = epochs
    p.train.device = "cpu"
    p.monitor.every_steps = 5
    p.monitor.checkpoints = False
    return p


def test_boundary_events_arrive_during_a_checkerboard_run_with_the_models_predictions():
    preset = _checkerboard()
    hook = BoundaryHook(preset, resolution=RESOLUTION)
    seen: dict[int, torch.Tensor] = {}

    def model_at_grid(context):
        """Runs right after the boundary hook at the same emit: the model's raw outputs at the grid."""
        points = grid_centres(*grid_extent(context.data), RESOLUTION)
        with evaluating(context.model) as model:
            seen[int(context.metrics.step)] = model(points).float()
        return None

    events: list = []
    Trainer(preset, emit_hooks=[hook, model_at_grid]).run(events.append)
    plain: list = []
    Trainer(_checkerboard()).run(plain.append)

    assert isinstance(events[-1], Finished)
    metrics = [e for e in events if isinstance(e, Metrics)]
    grids = [e for e in events if isinstance(e, DecisionBoundary)]
    # 51 steps, an emit every 5 (and at each epoch's end); a grid at the first emit, then at each
    # emit ⌈3·16²/100⌉ = 8 or more steps after the previous grid
    assert hook.steps_between == 8
    due, last = [], None
    for m in metrics:
        if last is None or m.step - last >= 8:
            due.append(m.step)
            last = m.step
    assert [g.step for g in grids] == due and len(grids) >= 5
    points = [e for e in events if isinstance(e, BoundaryPoints)]
    assert len(points) == 1 and events.index(points[0]) < events.index(grids[0])
    assert points[0].train_total == 1640 and points[0].val_total == 4921
    for g in grids:
        at = events.index(g)
        before = events[at - 1] if not isinstance(events[at - 1], BoundaryPoints) else events[at - 2]
        assert isinstance(before, Metrics) and before.step == g.step      # sent at its step's emit
        assert g.source == "live" and g.task == "classification" and g.n_classes == 2
        assert len(g.classes) == len(g.confidence) == RESOLUTION ** 2
        out = seen[g.step]
        # MSE on one-hot targets: the prediction is the argmax, its probability the clipped output
        # over the clipped outputs' sum (uniform when none is positive)
        clipped = out.clamp_min(0)
        total = clipped.sum(-1)
        pred = out.argmax(-1)
        conf = torch.where(total > 0, clipped.gather(1, pred[:, None])[:, 0] / total.clamp_min(1e-30), 0.5)
        assert list(g.classes) == pred.tolist()
        np.testing.assert_allclose(g.confidence, conf.numpy(), rtol=1e-6, atol=1e-7)
    # the grids show a model that learns: the picture changes between the first and the last
    assert grids[0].classes != grids[-1].classes
    # and computing them changed nothing in the training
    assert [m.loss for m in metrics] == [m.loss for m in plain if isinstance(m, Metrics)]


def test_the_hook_sends_nothing_for_data_that_is_not_two_features():
    hook = BoundaryHook(_checkerboard())
    context = SimpleNamespace(data=SimpleNamespace(input_shape=(64,)), metrics=SimpleNamespace(step=0, epoch=0))
    assert hook(context) is None and hook.grids == 0


def test_boundary_events_cross_the_event_link():
    from workbench.eventlink import decode, encode

    grid = DecisionBoundary(step=7, epoch=1, x_range=(-1.1, 1.1), y_range=(-2.0, 2.0), resolution=2,
                            task="classification", n_classes=2, classes=(0, 1, 1, 0), confidence=(0.5, 0.9, 1.0, 0.75))
    points = BoundaryPoints("regression", (0.1, 0.2), (0.3, 0.4), (1.5, -2.5), (), (), (), 2, 0)
    for event in (grid, points):
        assert decode(encode(event)) == event


# ------------------------------------------------------------------------------ one logit (bce)
def test_a_one_logit_classifier_is_evaluated_as_two_classes():
    """task.loss "bce": one output z per sample, p(class 1) = σ(z); the prediction is class 1 where z > 0."""
    from workbench.data import load_dataset
    from workbench.evaluation import CheckpointRef, evaluate_model

    preset = _checkerboard()
    preset.task.loss = "bce"       # set on the object: this branch's spec may not list bce yet
    data = load_dataset(preset.task, "cpu", None, False, 0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    with torch.no_grad():       # logits large enough that some pass the Keras clip (|z| > 16.12)
        model[2].weight.mul_(120.0)
    model.eval()
    ev = evaluate_model(model, data, preset, CheckpointRef("last", "last.pt", 0, 0, "k"))

    with torch.no_grad():
        z = model(data.val_x)[:, 0].double()
    y = data.val_y.long()
    p1 = torch.sigmoid(z)
    pred = (z > 0).long()
    assert (z.abs() > math.log((1 - 1e-7) / 1e-7)).any() and ((pred == 0).any() and (pred == 1).any())
    assert ev.n_classes == 2 and ev.confusion.shape == (2, 2)
    np.testing.assert_array_equal(ev.predicted, pred.numpy())
    np.testing.assert_allclose(ev.confidence, torch.where(pred == 1, p1, 1 - p1).numpy(), rtol=1e-6)
    assert ev.accuracy == pytest.approx(float((pred == y).double().mean()), abs=1e-12)
    assert np.trace(ev.confusion) / ev.confusion.sum() == pytest.approx(ev.accuracy, abs=1e-12)
    # Keras's binary cross-entropy: σ clipped to [1e-7, 1 − 1e-7]
    eps = 1e-7
    pc = p1.clamp(eps, 1 - eps)
    keras = float(-(y * pc.log() + (1 - y) * (1 - pc).log()).mean())
    assert ev.loss == pytest.approx(keras, rel=1e-5)
    assert math.isfinite(ev.loss)
    # the mistakes' top-2 are both classes with σ and 1 − σ
    np.testing.assert_allclose(ev.mistake_topp.sum(axis=1), 1.0, rtol=1e-6)
    # the decision boundary: two classes, class 1 where the logit is positive
    b = ev.boundary
    assert b.n_classes == 2
    with torch.no_grad():
        zg = model(grid_centres(b.x_range, b.y_range, b.resolution))[:, 0]
    assert list(b.classes) == (zg > 0).long().tolist()
    np.testing.assert_allclose(b.confidence, torch.sigmoid(zg.abs()).double().numpy(), rtol=1e-6)
