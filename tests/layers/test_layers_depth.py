"""Infinite depth: DepthGate, InfiniteDepth."""
from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from layers import DepthGate, InfiniteDepth


def linear_sublayer(width: int = 6):
    def make(i: int) -> nn.Module:
        return nn.Linear(width, width)
    return make


def bn_sublayer(width: int = 6):
    def make(i: int) -> nn.Module:
        return nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width))
    return make


def set_w(m: InfiniteDepth, value: float) -> None:
    with torch.no_grad():
        m.w.fill_(value)


def count_calls(m: InfiniteDepth) -> list[int]:
    calls: list[int] = []
    for i, layer in enumerate(m.layers):
        layer.register_forward_hook(lambda module, args, out, i=i: calls.append(i))
    return calls


# ----------------------------------------------------------------------------- DepthGate
def test_depth_gate_values() -> None:
    gate = DepthGate(init_w=2.5)
    for i in range(5):
        expected = max(0.0, 1.0 - math.exp(i - 2.5))
        assert gate(i).item() == pytest.approx(expected, abs=1e-7)
    assert gate(3).item() == 0.0 and gate(2.5).item() == 0.0
    steep = DepthGate(init_w=2.5, slope=3.0)
    assert steep(2).item() == pytest.approx(1 - math.exp(-1.5), abs=1e-7)
    assert isinstance(gate.w, nn.Parameter) and gate.w.shape == ()


def test_depth_gate_gradient_wrt_w() -> None:
    gate = DepthGate(init_w=2.5)
    gate(1).backward()
    assert gate.w.grad.item() == pytest.approx(math.exp(1 - 2.5), rel=1e-6)


# ----------------------------------------------------------------------------- active depth
@pytest.mark.parametrize(("w", "depth"), [(0.0, 0), (1.0, 1), (2.5, 3), (7.3, 8), (-1.5, 0), (3.0, 3)])
def test_exactly_ceil_w_sublayers_run(w: float, depth: int) -> None:
    m = InfiniteDepth(linear_sublayer(), init_w=w, max_depth=10)
    calls = count_calls(m)
    m(torch.randn(4, 6))
    assert m.depth == depth
    assert calls == list(range(depth))
    assert len(m.layers) == 10  # all pre-allocated


@pytest.mark.parametrize("w", [0.0, -0.3, -5.0])
def test_non_positive_w_gives_h_of_x(w: float) -> None:
    m = InfiniteDepth(linear_sublayer(), init_w=w)
    x = torch.randn(5, 6)
    assert torch.equal(m(x), torch.relu(x))
    ident = InfiniteDepth(linear_sublayer(), h="identity", init_w=w)
    assert torch.equal(ident(x), x)


@pytest.mark.parametrize("residual", [True, False])
@pytest.mark.parametrize("w", [1.0, 2.5, 4.0])
def test_output_equals_the_hand_built_gated_stack(residual: bool, w: float) -> None:
    m = InfiniteDepth(linear_sublayer(), init_w=w, max_depth=6, residual=residual).double()
    x = torch.randn(3, 6, dtype=torch.float64)
    g = x
    for i in range(math.ceil(w)):
        delta = max(0.0, 1 - math.exp(i - w))
        f = m.layers[i](g)
        g = torch.relu(g + delta * f) if residual else torch.relu((1 - delta) * g + delta * f)
    torch.testing.assert_close(m(x), torch.relu(g))


def test_w_is_the_parameter_and_depth_an_int() -> None:
    m = InfiniteDepth(linear_sublayer(), init_w=2.5)
    assert isinstance(m.w, nn.Parameter) and m.w.shape == ()
    assert any(p is m.w for p in m.parameters())
    assert isinstance(m.depth, int) and m.depth == 3
    assert sum(p.numel() for p in m.parameters()) == 32 * (36 + 6) + 1


# ----------------------------------------------------------------------------- gradients
@pytest.mark.parametrize(("w", "k"), [(0.4, 1), (2.5, 3), (4.99, 5)])
def test_gradient_wrt_w_and_inactive_layers(w: float, k: int) -> None:
    m = InfiniteDepth(linear_sublayer(), init_w=w, max_depth=8)
    m(torch.randn(16, 6) + 1.0).square().sum().backward()
    assert m.w.grad is not None and m.w.grad.item() != 0.0
    for i, layer in enumerate(m.layers):
        grads = [p.grad for p in layer.parameters()]
        if i < k:
            assert all(g is not None for g in grads)
        else:
            assert all(g is None or torch.count_nonzero(g) == 0 for g in grads)


def test_gradcheck_wrt_input_and_w() -> None:
    m = InfiniteDepth(linear_sublayer(4), h="identity", init_w=2.5, max_depth=4).double()
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    w = m.w.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t, v: torch.func.functional_call(m, {"gate.w": v}, (t,)), (x, w))
    relu = InfiniteDepth(linear_sublayer(4), init_w=1.7, max_depth=4).double()
    assert torch.autograd.gradcheck(relu, (x,))


# ----------------------------------------------------------------------------- max_depth, regularisation
def test_w_beyond_max_depth_warns_and_clamps() -> None:
    m = InfiniteDepth(linear_sublayer(), init_w=7.3, max_depth=5)
    calls = count_calls(m)
    with pytest.warns(RuntimeWarning, match="max_depth"):
        m(torch.randn(2, 6))
    assert calls == [0, 1, 2, 3, 4] and m.depth == 5
    set_w(m, 5.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m(torch.randn(2, 6))


def test_regularization_matches_the_formula() -> None:
    m = InfiniteDepth(bn_sublayer(), init_w=2.5, max_depth=6, w_l2=1e-3, f_l2=1e-2)
    with torch.no_grad():
        for layer in m.layers:
            layer[1].weight.normal_()
    expected = 1e-3 * 2.5 ** 2
    for i in range(3):
        delta = max(0.0, 1 - math.exp(i + 1e-7 - 2.5))
        expected += 1e-2 * delta * layer_gamma_sq(m, i)
    reg = m.regularization()
    assert reg.shape == () and reg.item() == pytest.approx(expected, rel=1e-5)
    reg.backward()
    assert m.w.grad is not None and m.layers[0][1].weight.grad is not None
    assert m.layers[3][1].weight.grad is None


def layer_gamma_sq(m: InfiniteDepth, i: int) -> float:
    return m.layers[i][1].weight.detach().square().sum().item()


def test_regularization_without_batch_norm_is_the_w_penalty() -> None:
    m = InfiniteDepth(linear_sublayer(), init_w=-2.0, w_l2=0.5)
    assert m.regularization().item() == pytest.approx(2.0)


def test_optimiser_state_survives_growth() -> None:
    m = InfiniteDepth(linear_sublayer(), init_w=0.5, max_depth=4)
    opt = torch.optim.Adam(m.parameters(), lr=0.1)
    n_params = len(opt.param_groups[0]["params"])
    for w in (0.5, 2.5):
        set_w(m, w)
        opt.zero_grad()
        m(torch.randn(8, 6)).sum().backward()
        opt.step()
    assert len(opt.param_groups[0]["params"]) == n_params
    assert opt.state[m.layers[0].weight]["step"].item() == 2.0
    assert opt.state[m.layers[2].weight]["step"].item() == 1.0


# ----------------------------------------------------------------------------- arguments and shapes
@pytest.mark.parametrize("h", ["tanh", "gelu", nn.LeakyReLU(), nn.GELU(), nn.Tanh(), nn.ReLU(inplace=True), 3])
def test_non_idempotent_h_is_rejected(h) -> None:
    with pytest.raises(ValueError, match=r"InfiniteDepth: h must .*relu.*identity"):
        InfiniteDepth(linear_sublayer(), h=h)


@pytest.mark.parametrize("h", ["relu", "identity", "ReLU", nn.ReLU(), nn.ReLU6(), nn.Hardtanh(), nn.Identity()])
def test_idempotent_h_is_accepted(h) -> None:
    m = InfiniteDepth(linear_sublayer(), h=h, max_depth=2)
    x = torch.randn(3, 6) * 10
    torch.testing.assert_close(m.h(m.h(x)), m.h(x))


def test_module_declaring_idempotence_is_accepted() -> None:
    class Clamp(nn.Module):
        idempotent = True

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.clamp(-1, 1)

    m = InfiniteDepth(linear_sublayer(), h=Clamp(), init_w=0.0, max_depth=1)
    assert torch.equal(m(torch.tensor([[3.0] * 6])), torch.ones(1, 6))


@pytest.mark.parametrize(
    ("factory", "argument"),
    [
        (lambda: InfiniteDepth(linear_sublayer(), max_depth=0), "max_depth"),
        (lambda: InfiniteDepth(linear_sublayer(), w_l2=-1.0), "w_l2"),
        (lambda: InfiniteDepth(linear_sublayer(), f_l2=-1e-8), "f_l2"),
        (lambda: InfiniteDepth(linear_sublayer(), init_w="deep"), "init_w"),
        (lambda: InfiniteDepth(linear_sublayer(), residual=None), "residual"),
        (lambda: InfiniteDepth(None), "make_sublayer"),
        (lambda: InfiniteDepth(lambda i: 42), "make_sublayer"),
        (lambda: DepthGate(slope=0.0), "slope"),
        (lambda: DepthGate(init_w=float("nan")), "init_w"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(factory, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        factory()


def test_sublayer_that_changes_the_shape_is_reported() -> None:
    m = InfiniteDepth(lambda i: nn.Linear(6, 3), init_w=1.0, max_depth=2)
    with pytest.raises(ValueError, match=r"InfiniteDepth: sub-layer 0 must preserve the shape, "
                                         r"got input \(2, 6\) and output \(2, 3\)"):
        m(torch.randn(2, 6))


def test_nan_w_is_reported() -> None:
    m = InfiniteDepth(linear_sublayer(), init_w=1.0)
    set_w(m, float("nan"))
    with pytest.raises(ValueError, match="NaN"):
        m(torch.randn(2, 6))
