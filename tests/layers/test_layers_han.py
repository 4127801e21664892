"""Han layers: HouseholderLinear, HanLayer, HanStack."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils._python_dispatch import TorchDispatchMode

from layers import HanLayer, HanStack, HouseholderLinear


def test_parameter_count_is_two_d_per_layer() -> None:
    assert sum(p.numel() for p in HanLayer(37).parameters()) == 74
    assert sum(p.numel() for p in HanLayer(37, bias=False).parameters()) == 37
    assert sum(p.numel() for p in HanStack(20, depth=7).parameters()) == 2 * 20 * 7


def test_init_unit_vector_and_bias_range() -> None:
    m = HouseholderLinear(400)
    assert m.u.norm().item() == pytest.approx(1.0, abs=1e-5)
    assert m.bias.abs().max().item() <= 1 / 20 and m.bias.abs().max().item() > 0.04


def test_reflector_is_orthogonal_involutory_with_det_minus_one() -> None:
    m = HouseholderLinear(9).double()
    with torch.no_grad():
        m.u.mul_(3.7)  # not unit length: H must not depend on ‖u‖
    h = m.matrix()
    eye = torch.eye(9, dtype=torch.float64)
    torch.testing.assert_close(h @ h.T, eye, rtol=0, atol=1e-12)
    torch.testing.assert_close(h @ h, eye, rtol=0, atol=1e-12)
    assert torch.linalg.det(h).item() == pytest.approx(-1.0, abs=1e-12)
    torch.testing.assert_close(h, h.T)


def test_forward_equals_the_matrix_form() -> None:
    m = HouseholderLinear(6).double()
    x = torch.randn(5, 6, dtype=torch.float64)
    torch.testing.assert_close(m(x), x @ m.matrix().T + m.bias)
    layer = HanLayer(6).double()
    layer.load_state_dict(m.state_dict())
    torch.testing.assert_close(layer(x), torch.abs(m(x)))


@settings(max_examples=25, deadline=None)
@given(features=st.integers(1, 300), seed=st.integers(0, 10_000), scale=st.floats(1e-3, 1e3))
def test_bias_free_han_layer_preserves_the_norm(features: int, seed: int, scale: float) -> None:
    torch.manual_seed(seed)
    m = HanLayer(features, bias=False)
    x = torch.randn(16, features) * scale
    torch.testing.assert_close(m(x).norm(dim=-1), x.norm(dim=-1), rtol=1e-5, atol=0)


def test_bias_free_deep_stack_preserves_the_norm() -> None:
    m = HanStack(64, depth=20, bias=False)
    x = torch.randn(32, 64)
    torch.testing.assert_close(m(x).norm(dim=-1), x.norm(dim=-1), rtol=1e-5, atol=0)


def test_six_layer_stack_jacobian_is_orthogonal() -> None:
    torch.manual_seed(1)
    m = HanStack(10, depth=6).double()
    x = torch.randn(10, dtype=torch.float64)
    j = torch.autograd.functional.jacobian(m, x)
    assert j.shape == (10, 10)
    torch.testing.assert_close(j.T @ j, torch.eye(10, dtype=torch.float64), rtol=0, atol=1e-10)


def test_gradient_norm_is_preserved_through_a_stack() -> None:
    m = HanStack(50, depth=20)
    x = torch.randn(50, requires_grad=True)
    g = torch.randn(50)
    (m(x) * g).sum().backward()
    assert x.grad.norm().item() == pytest.approx(g.norm().item(), rel=1e-5)


def test_abs_is_out_of_place() -> None:
    m = HanLayer(5)
    x = torch.randn(3, 5)
    before = x.clone()
    m(x)
    assert torch.equal(x, before)


class _MaxNumel(TorchDispatchMode):
    """Records the largest tensor any aten op produces."""

    def __init__(self) -> None:
        super().__init__()
        self.max_numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.max_numel = max(self.max_numel, t.numel())
        return out


def test_forward_and_backward_never_build_a_d_by_d_matrix() -> None:
    d, batch = 512, 4
    m = HanStack(d, depth=3)
    x = torch.randn(batch, d, requires_grad=True)
    with _MaxNumel() as mode:
        m(x).sum().backward()
    assert mode.max_numel <= batch * d < d * d


def test_gradcheck_stack_and_parameters() -> None:
    m = HanStack(5, depth=3).double()
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(m, (x,))
    names = [n for n, _ in m.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in m.parameters())
    assert torch.autograd.gradcheck(
        lambda *ps: torch.func.functional_call(m, dict(zip(names, ps)), (x.detach(),)), params
    )


@pytest.mark.parametrize(
    ("factory", "argument"),
    [
        (lambda: HouseholderLinear(0), "features"),
        (lambda: HouseholderLinear(4, eps=-1.0), "eps"),
        (lambda: HouseholderLinear(4, bias=1), "bias"),
        (lambda: HanLayer(-3), "features"),
        (lambda: HanStack(0, depth=2), "features"),
        (lambda: HanStack(4, depth=0), "depth"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(factory, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        factory()


@pytest.mark.parametrize("cls", [HouseholderLinear, HanLayer])
def test_forward_shape_mismatch_messages(cls) -> None:
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: expected input with 16 features in the last "
                                         r"dimension, got shape \(8, 32\)$"):
        cls(16)(torch.randn(8, 32))
    with pytest.raises(ValueError, match=r"HanStack: expected input with 16 features"):
        HanStack(16, depth=2)(torch.randn(8, 15))


def test_bf16_autocast_keeps_the_reflection_exact_to_float32() -> None:
    m = HanStack(32, depth=10, bias=False)
    x = torch.randn(4, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(x)
    torch.testing.assert_close(y.float().norm(dim=-1), x.norm(dim=-1), rtol=1e-5, atol=0)
