"""workbench.schedules: lr curves per scheduler name."""
from __future__ import annotations

import math
import pytest
import torch

from workbench.schedules import exp_curve_factor, make_schedule, step_milestones
from workbench.sections import TrainSpec


def _train(**kw):
    base = dict(scheduler="none", epochs=10, lr=0.1, milestones=[0.5, 0.75], gamma=0.1, peak_epoch=5.0)
    base.update(kw)
    return TrainSpec(**base)


def _lrs(train, steps_per_epoch=4):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=train.lr)
    sched = make_schedule(opt, train, steps_per_epoch)
    per_epoch = []
    for _ in range(train.epochs):
        per_epoch.append(opt.param_groups[0]["lr"])
        for _ in range(steps_per_epoch):
            opt.step()
            sched.after_step()
        sched.after_epoch()
    return per_epoch, opt


def test_exp_curve_matches_the_twist_recipe():
    # lr(x) = lr·e·(x/p)·exp(−x/p), x = epoch + 1: peak (factor 1) at epoch p − 1
    assert exp_curve_factor(4, 5.0) == pytest.approx(1.0)
    assert exp_curve_factor(0, 5.0) == pytest.approx(math.e * 0.2 * math.exp(-0.2))
    lrs, _ = _lrs(_train(scheduler="exp_curve", epochs=50, lr=0.1))
    assert lrs[4] == pytest.approx(0.1)
    assert max(lrs) == pytest.approx(0.1)
    assert lrs[49] == pytest.approx(0.1 * math.e * 10 * math.exp(-10))  # ≈ 1.2e-4, as in the digest
    with pytest.raises(ValueError):
        exp_curve_factor(0, 0.0)


def test_step_milestones_are_fractions_of_epochs():
    assert step_milestones([0.5, 0.75], 100) == [50, 75]
    lrs, _ = _lrs(_train(scheduler="step", epochs=8, milestones=[0.5, 0.75], gamma=0.1))
    assert lrs[:4] == [pytest.approx(0.1)] * 4
    assert lrs[4:6] == [pytest.approx(0.01)] * 2 and lrs[6:] == [pytest.approx(0.001)] * 2


def test_step_milestones_are_fractions_of_optimiser_steps_applied_per_step():
    # HanNet's MultiStepLR(milestones=[0.5, 0.7, 0.9]·maxiter, gamma=0.2) is stepped after every
    # iteration: 2 epochs × 10 steps = 20 steps → drops after steps 10, 14 and 18, mid-epoch
    train = _train(scheduler="step", epochs=2, milestones=[0.5, 0.7, 0.9], gamma=0.2, lr=1.0)
    assert step_milestones(train.milestones, 20) == [10, 14, 18]
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=train.lr)
    sched = make_schedule(opt, train, steps_per_epoch=10)
    per_step = []
    for _ in range(train.epochs):
        for _ in range(10):
            per_step.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.after_step()
        sched.after_epoch()
    assert per_step == pytest.approx([1.0] * 10 + [0.2] * 4 + [0.04] * 4 + [0.008] * 2)


def test_cosine_and_onecycle_run_per_step():
    lrs, opt = _lrs(_train(scheduler="cosine", epochs=4))
    assert lrs[0] == pytest.approx(0.1) and opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-9)
    lrs, _ = _lrs(_train(scheduler="onecycle", epochs=10), steps_per_epoch=10)
    assert max(lrs) <= 0.1 + 1e-9 and lrs[0] < 0.02 and max(lrs) > 0.09


def test_none_keeps_lr_and_unknown_name_fails():
    lrs, _ = _lrs(_train(scheduler="none", epochs=3))
    assert lrs == [0.1, 0.1, 0.1]
    with pytest.raises(ValueError, match="unknown"):
        _lrs(_train(scheduler="warp"))
