"""workbench.probes: per-layer norms, learned depth, hardness — one host sync per read."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from layers.depth import InfiniteDepth
from layers.z import ZLinear
from workbench.probes import Probes, ProbeValues, first_nonfinite_layer


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(),
                         InfiniteDepth(lambda i: nn.Linear(6, 6), init_w=1.5, max_depth=4),
                         ZLinear(6, 3, routes=2))


def _named(model: nn.Sequential) -> nn.Sequential:
    from collections import OrderedDict

    return nn.Sequential(OrderedDict((f"{i}_{type(m).__name__}", m) for i, m in enumerate(model)))


def _backward(model: nn.Module) -> None:
    model.zero_grad(set_to_none=True)
    x = torch.randn(8, 4)
    model(x).pow(2).sum().backward()


def test_grad_and_weight_norms_per_top_level_layer():
    model = _named(_model())
    _backward(model)
    values = Probes(model).values()
    for name, child in model.named_children():
        params = list(child.parameters())
        expect_w = math.sqrt(sum(float(p.detach().pow(2).sum()) for p in params))
        expect_g = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in params if p.grad is not None))
        assert values.weight_norm[name] == pytest.approx(expect_w, rel=1e-5)
        assert values.grad_norm[name] == pytest.approx(expect_g, rel=1e-5, abs=1e-7)
    assert values.grad_norm["1_ReLU"] == 0.0 and values.weight_norm["1_ReLU"] == 0.0
    # sub-layers 2 and 3 of the depth module are not evaluated (w = 1.5 → 2 active): no grad, no error
    assert model[2].layers[3].weight.grad is None


def test_learned_depth_and_hardness_are_reported_by_module_path():
    model = _named(_model())
    _backward(model)
    probes = Probes(model)
    assert probes.depth_layers == ("2_InfiniteDepth",)
    assert probes.hardness_layers == ("3_ZLinear",)
    values = probes.values()
    assert values.depth_w["2_InfiniteDepth"] == pytest.approx(1.5)
    assert values.depth["2_InfiniteDepth"] == 2
    assert values.hardness["3_ZLinear"] == pytest.approx(float(model[3].hardness.detach().mean()), rel=1e-6)
    with torch.no_grad():
        model[2].w.fill_(-0.3)
    assert probes.values().depth["2_InfiniteDepth"] == 0


def test_nested_depth_module_is_keyed_by_dotted_path():
    inner = nn.Sequential(nn.Linear(3, 3), InfiniteDepth(lambda i: nn.Linear(3, 3), init_w=2.2, max_depth=3))
    model = nn.Sequential()
    model.add_module("0_Residual", inner)
    assert Probes(model).depth_layers == ("0_Residual.1",)
    assert Probes(model).values().depth["0_Residual.1"] == 3


def test_one_host_sync_per_read(monkeypatch):
    model = _named(_model())
    _backward(model)
    probes = Probes(model)
    extra = [torch.tensor(1.0), torch.tensor(2.0)]
    calls: list[str] = []
    for method in ("tolist", "item", "cpu", "numpy", "__float__", "__bool__", "__int__"):
        original = getattr(torch.Tensor, method)

        def spy(self, *a, _name=method, _orig=original, **k):
            calls.append(_name)
            return _orig(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, method, spy)
    probes.capture_parts()
    assert calls == []  # capture is device work only
    values, host, finite = probes.read(extra)
    assert calls == ["tolist"]
    assert host == [1.0, 2.0] and finite and "0_Linear" in values.grad_norm
    # a reduction of the extra values (the trainer's all-reduce under DDP) stays within the one copy
    values, host, finite = probes.read(extra, reduce=lambda parts: torch.stack(parts) * 3)
    assert calls == ["tolist", "tolist"]
    assert host == [3.0, 6.0] and finite and "0_Linear" in values.grad_norm
    _, host, finite = probes.read([torch.tensor(float("nan"))])
    assert not finite


def test_first_nonfinite_layer_in_model_order():
    names = ["0_a", "1_b", "2_c"]
    v = ProbeValues(grad_norm={"0_a": 1.0, "1_b": float("nan"), "2_c": float("inf")},
                    weight_norm={"0_a": 1.0, "1_b": 1.0, "2_c": 1.0})
    assert first_nonfinite_layer(v, names) == "1_b"
    v = ProbeValues(grad_norm=dict.fromkeys(names, 1.0), weight_norm=dict.fromkeys(names, 1.0))
    assert first_nonfinite_layer(v, names) is None
    model = _named(_model())
    _backward(model)
    with torch.no_grad():
        model[3].inner.weight.grad = None
    model[3].hardness.grad.fill_(float("nan"))
    values = Probes(model).values()
    assert first_nonfinite_layer(values, list(values.grad_norm)) == "3_ZLinear"
