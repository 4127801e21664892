"""Π-Nets: ProductConv2d, PiBlock2d, CCPPolynomial."""
from __future__ import annotations

from math import comb
from typing import Callable

import pytest
import torch
from torch import nn

from layers import CCPPolynomial, PiBlock2d, ProductConv2d


def finite_difference(f: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor, v: torch.Tensor,
                      order: int, step: float = 0.5) -> tuple[torch.Tensor, float]:
    """order-th forward difference of t ↦ f(x0 + t v) at t = 0, and the largest |f| seen."""
    values = [f(x0 + k * step * v) for k in range(order + 1)]
    diff = sum((-1) ** (order - k) * comb(order, k) * values[k] for k in range(order + 1))
    return diff, max(val.abs().max().item() for val in values)


def randomise_batch_norms(model: nn.Module) -> None:
    """Non-trivial eval-mode statistics and affine parameters in every BatchNorm."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_()
                m.bias.normal_()


def assert_degree(f, x0, v, degree: int) -> None:
    """Along the line x0 + t·v, f is a polynomial of degree exactly ``degree`` (float64)."""
    high, scale = finite_difference(f, x0, v, degree + 1)
    top, _ = finite_difference(f, x0, v, degree)
    assert high.abs().max().item() <= 1e-9 * max(scale, 1.0), "difference of order degree+1 must vanish"
    assert top.abs().max().item() >= 1e-3 * scale, "difference of order degree must not vanish"


# ----------------------------------------------------------------------------- ProductConv2d
def test_product_conv_is_the_product_of_two_convs() -> None:
    m = ProductConv2d(3, 4, kernel_size=3, stride=2, padding=1).double()
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    torch.testing.assert_close(m(x), m.conv_a(x) * m.conv_b(x))
    assert m.conv_a.bias is not None and m.conv_b.bias is not None
    assert m(x).shape == (2, 4, 5, 4)


def test_product_conv_is_degree_two_along_lines() -> None:
    m = ProductConv2d(2, 3, kernel_size=3, padding=1).double()
    x0 = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    assert_degree(m, x0, torch.randn_like(x0), 2)


# ----------------------------------------------------------------------------- PiBlock2d
@pytest.mark.parametrize(
    ("cin", "cout", "stride", "conv1x1"),
    [(4, 4, 1, False), (4, 6, 1, False), (3, 5, 2, False), (4, 4, 1, True), (3, 6, 2, True)],
)
def test_pi_block_is_degree_two_along_lines_in_eval(cin: int, cout: int, stride: int, conv1x1: bool) -> None:
    torch.manual_seed(cin * 10 + cout + stride)
    m = PiBlock2d(cin, cout, stride=stride, product_conv1x1=conv1x1).double()
    randomise_batch_norms(m)
    m.eval()
    x0 = torch.randn(2, cin, 8, 8, dtype=torch.float64)
    assert_degree(m, x0, torch.randn_like(x0), 2)
    assert m(x0).shape == (2, cout, 8 // stride, 8 // stride)


@pytest.mark.parametrize("stride", [1, 2])
def test_pi_block_without_product_branch_is_affine_and_equals_t_plus_s(stride: int) -> None:
    m = PiBlock2d(4, 6 if stride == 2 else 4, stride=stride).double()
    randomise_batch_norms(m)
    with torch.no_grad():
        m.bn3.weight.zero_()
        m.bn3.bias.zero_()
    m.eval()
    x0 = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    second, scale = finite_difference(m, x0, torch.randn_like(x0), 2)
    assert second.abs().max().item() <= 1e-9 * scale
    t = m.bn2(m.conv2(m.bn1(m.conv1(x0))))
    torch.testing.assert_close(m(x0), t + m.shortcut(x0))


def test_pi_block_structure_and_zero_init_option() -> None:
    m = PiBlock2d(4, 4)
    assert isinstance(m.shortcut, nn.Identity) and m.conv3 is None
    assert m.conv1.bias is None and m.conv2.bias is None and m.conv1.kernel_size == (3, 3)
    assert torch.equal(m.bn3.weight, torch.ones(4))  # official default
    m = PiBlock2d(4, 8, stride=2, product_conv1x1=True, zero_init_product=True)
    assert isinstance(m.shortcut, nn.Sequential) and m.shortcut[0].stride == (2, 2)
    assert isinstance(m.conv3, nn.Conv2d) and m.conv3.kernel_size == (1, 1)
    assert torch.equal(m.bn3.weight, torch.zeros(8))


def test_pi_block_matches_the_formula_in_train_mode() -> None:
    m = PiBlock2d(3, 5, stride=2).double()
    x = torch.randn(4, 3, 6, 6, dtype=torch.float64)
    reference = PiBlock2d(3, 5, stride=2).double()
    reference.load_state_dict(m.state_dict())
    t = reference.bn2(reference.conv2(reference.bn1(reference.conv1(x))))
    s = reference.shortcut(x)
    torch.testing.assert_close(m(x), t + s + reference.bn3(t * s))


# ----------------------------------------------------------------------------- CCPPolynomial
def test_ccp_matches_the_recursion() -> None:
    m = CCPPolynomial(5, 7, 3, degree=3).double()
    z = torch.randn(4, 5, dtype=torch.float64)
    u = [z @ m.U.weight[n * 7:(n + 1) * 7].T for n in range(3)]
    x = u[0]
    for n in (1, 2):
        x = u[n] * x + x
    torch.testing.assert_close(m(z), x @ m.C.weight.T + m.C.bias)
    assert m.U.bias is None and m.C.bias is not None


@pytest.mark.parametrize("degree", [1, 2, 3, 4])
def test_ccp_degree_along_lines(degree: int) -> None:
    torch.manual_seed(degree)
    m = CCPPolynomial(6, 8, 4, degree=degree).double()
    z0 = torch.randn(3, 6, dtype=torch.float64)
    assert_degree(m, z0, torch.randn_like(z0), degree)


def test_ccp_parameter_count() -> None:
    m = CCPPolynomial(10, 16, 3, degree=4)
    assert sum(p.numel() for p in m.parameters()) == 4 * 10 * 16 + 16 * 3 + 3


# ----------------------------------------------------------------------------- gradients, autocast
def test_gradcheck_pinet_family() -> None:
    x = torch.randn(2, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(ProductConv2d(2, 3, 3, padding=1).double(), (x,))
    block = PiBlock2d(2, 3, stride=2, product_conv1x1=True).double()
    assert torch.autograd.gradcheck(block, (x,), fast_mode=True)
    block.eval()
    assert torch.autograd.gradcheck(block, (x,), fast_mode=True)
    z = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(CCPPolynomial(4, 5, 2, degree=3).double(), (z,))


def test_products_are_taken_in_float32_under_bf16_autocast() -> None:
    x = torch.randn(2, 3, 8, 8)
    ccp = CCPPolynomial(8, 6, 2)
    seen: list[torch.dtype] = []
    ccp.C.register_forward_pre_hook(lambda module, args: seen.append(args[0].dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert ProductConv2d(3, 4, 3)(x).dtype == torch.float32
        ccp(x.flatten(1)[:, :8])
        y = PiBlock2d(3, 4, stride=2)(x)
    assert seen == [torch.float32]  # the recursion ran in float32; C itself is autocast to bf16
    assert torch.isfinite(y).all()


# ----------------------------------------------------------------------------- arguments and shapes
@pytest.mark.parametrize(
    ("factory", "argument"),
    [
        (lambda: ProductConv2d(0, 3, 3), "in_channels"),
        (lambda: ProductConv2d(3, 0, 3), "out_channels"),
        (lambda: ProductConv2d(3, 3, 0), "kernel_size"),
        (lambda: ProductConv2d(3, 3, 3, stride=0), "stride"),
        (lambda: ProductConv2d(3, 3, 3, padding=-2), "padding"),
        (lambda: PiBlock2d(3, 0), "out_channels"),
        (lambda: PiBlock2d(3, 3, stride=0), "stride"),
        (lambda: PiBlock2d(3, 3, product_conv1x1=None), "product_conv1x1"),
        (lambda: CCPPolynomial(3, 4, 5, degree=0), "degree"),
        (lambda: CCPPolynomial(3, 0, 5), "hidden_features"),
        (lambda: CCPPolynomial(0, 4, 5), "in_features"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(factory, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        factory()


def test_forward_shape_mismatch_messages() -> None:
    with pytest.raises(ValueError, match=r"^ProductConv2d: expected input of shape \(N, 3, H, W\) or \(3, H, W\), "
                                         r"got shape \(2, 5, 8, 8\)$"):
        ProductConv2d(3, 4, 3)(torch.randn(2, 5, 8, 8))
    with pytest.raises(ValueError, match=r"PiBlock2d: expected input of shape \(N, 4, H, W\)"):
        PiBlock2d(4, 4)(torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"^CCPPolynomial: expected input with 6 features in the last dimension, "
                                         r"got shape \(3, 5\)$"):
        CCPPolynomial(6, 4, 2)(torch.randn(3, 5))
