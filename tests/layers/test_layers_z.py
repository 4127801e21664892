"""Z layers: softmean, ZLinear, ZConv2d, SoftPool2d."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from layers import SoftPool2d, ZConv2d, ZLinear, softmean


# ----------------------------------------------------------------------------- softmean
def test_softmean_zero_hardness_is_mean() -> None:
    a = torch.randn(5, 7, dtype=torch.float64)
    torch.testing.assert_close(softmean(a, 0.0, dim=-1), a.mean(-1), rtol=0, atol=1e-15)


def test_softmean_limits_are_max_and_min() -> None:
    a = torch.randn(6, 4)
    torch.testing.assert_close(softmean(a, 1e4, dim=1), a.amax(1), rtol=0, atol=1e-4)
    torch.testing.assert_close(softmean(a, -1e4, dim=1), a.amin(1), rtol=0, atol=1e-4)


def test_softmean_matches_the_formula_with_broadcast_hardness() -> None:
    a = torch.randn(3, 2, 5, dtype=torch.float64)
    z = torch.randn(2, 5, dtype=torch.float64)
    w = torch.exp(z * a) / torch.exp(z * a).sum(-1, keepdim=True)
    torch.testing.assert_close(softmean(a, z, dim=-1), (a * w).sum(-1))


def test_softmean_is_stable_for_huge_products() -> None:
    a = torch.tensor([[1e3, -1e3, 5.0]])
    out = softmean(a, torch.tensor(50.0), dim=-1)
    assert torch.isfinite(out).all()
    assert out.item() == pytest.approx(1e3)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.01, 100.0), routes=st.integers(1, 6))
def test_softmean_lies_between_min_and_max(seed: int, scale: float, routes: int) -> None:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(16, routes, generator=g) * scale
    z = torch.randn(16, routes, generator=g) * scale
    out = softmean(a, z, dim=-1)
    tol = 1e-5 * scale
    assert (out >= a.amin(-1) - tol).all() and (out <= a.amax(-1) + tol).all()


# ----------------------------------------------------------------------------- ZLinear
@pytest.mark.parametrize("share_weights", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_zlinear_one_route_is_its_inner_linear(share_weights: bool, bias: bool) -> None:
    m = ZLinear(12, 5, routes=1, bias=bias, share_weights=share_weights)
    x = torch.randn(8, 12)
    assert torch.equal(m(x), m.inner(x))


def test_zlinear_zero_hardness_is_the_mean_over_routes_out_major() -> None:
    m = ZLinear(6, 3, routes=4).double()
    with torch.no_grad():
        m.hardness.zero_()
    x = torch.randn(10, 6, dtype=torch.float64)
    h = m.inner(x)
    # channel index o·routes + r: output o averages inner outputs 4o .. 4o+3
    expected = torch.stack([h[:, 4 * o: 4 * o + 4].mean(-1) for o in range(3)], dim=-1)
    torch.testing.assert_close(m(x), expected, rtol=0, atol=1e-14)


def test_zlinear_matches_the_per_route_formula() -> None:
    m = ZLinear(4, 2, routes=3).double()
    x = torch.randn(5, 4, dtype=torch.float64)
    h = m.inner(x).view(5, 2, 3)
    w = torch.softmax(m.hardness * h, dim=-1)
    torch.testing.assert_close(m(x), (h * w).sum(-1))


def test_zlinear_hardness_shapes_and_init() -> None:
    torch.manual_seed(0)
    per_route = ZLinear(8, 300, routes=4)
    shared = ZLinear(8, 300, routes=4, per_route_hardness=False)
    assert per_route.hardness.shape == (300, 4) and shared.hardness.shape == (300, 1)
    assert abs(per_route.hardness.mean().item()) < 0.1 and abs(per_route.hardness.std().item() - 1) < 0.1


def test_zlinear_shared_hardness_is_a_plain_softmean() -> None:
    m = ZLinear(4, 3, routes=5, per_route_hardness=False).double()
    x = torch.randn(7, 4, dtype=torch.float64)
    h = m.inner(x).view(7, 3, 5)
    torch.testing.assert_close(m(x), softmean(h, m.hardness, dim=-1))


def test_zlinear_separate_gate_uses_second_layer_logits() -> None:
    m = ZLinear(4, 3, routes=2, share_weights=False).double()
    assert isinstance(m.gate, nn.Linear) and m.gate.out_features == 6
    x = torch.randn(9, 4, dtype=torch.float64)
    a = m.inner(x).view(9, 3, 2)
    logits = m.gate(x).view(9, 3, 2)
    torch.testing.assert_close(m(x), (a * torch.softmax(m.hardness * logits, -1)).sum(-1))
    n_shared = sum(p.numel() for p in ZLinear(4, 3, routes=2).parameters())
    assert sum(p.numel() for p in m.parameters()) == n_shared + 4 * 6 + 6


def test_zlinear_output_between_route_min_and_max() -> None:
    m = ZLinear(16, 8, routes=4)
    with torch.no_grad():
        m.hardness.mul_(20)
    x = torch.randn(32, 16)
    h = m.inner(x).view(32, 8, 4)
    y = m(x)
    assert (y >= h.amin(-1) - 1e-5).all() and (y <= h.amax(-1) + 1e-5).all()


def test_zlinear_accepts_extra_leading_dims() -> None:
    assert ZLinear(6, 2)(torch.randn(3, 4, 6)).shape == (3, 4, 2)
    assert ZLinear(6, 2)(torch.randn(6)).shape == (2,)


# ----------------------------------------------------------------------------- ZConv2d
@pytest.mark.parametrize("share_weights", [True, False])
def test_zconv_one_route_is_its_inner_conv(share_weights: bool) -> None:
    m = ZConv2d(3, 6, kernel_size=3, routes=1, padding=1, share_weights=share_weights)
    x = torch.randn(2, 3, 9, 7)
    assert torch.equal(m(x), m.inner(x))


def test_zconv_zero_hardness_is_the_mean_over_routes() -> None:
    m = ZConv2d(2, 3, kernel_size=3, routes=4, stride=2).double()
    with torch.no_grad():
        m.hardness.zero_()
    x = torch.randn(2, 2, 11, 10, dtype=torch.float64)
    h = m.inner(x)
    expected = torch.stack([h[:, 4 * o: 4 * o + 4].mean(1) for o in range(3)], dim=1)
    torch.testing.assert_close(m(x), expected, rtol=0, atol=1e-14)


def test_zconv_output_between_route_min_and_max_and_shape() -> None:
    m = ZConv2d(3, 5, kernel_size=(3, 5), routes=3, padding=(1, 2))
    with torch.no_grad():
        m.hardness.mul_(10)
    x = torch.randn(4, 3, 8, 12)
    y = m(x)
    h = m.inner(x).view(4, 5, 3, 8, 12)
    assert y.shape == (4, 5, 8, 12)
    assert (y >= h.amin(2) - 1e-5).all() and (y <= h.amax(2) + 1e-5).all()


def test_zconv_unbatched_input() -> None:
    m = ZConv2d(3, 4, kernel_size=3)
    x = torch.randn(3, 10, 10)
    torch.testing.assert_close(m(x), m(x[None])[0])


# ----------------------------------------------------------------------------- SoftPool2d
@pytest.mark.parametrize(
    ("kernel_size", "stride", "size"),
    [(2, 2, (8, 8)), (2, 2, (7, 9)), ((2, 3), (2, 3), (8, 12)), (3, 1, (7, 6)), ((2, 4), (1, 2), (6, 10)),
     (3, 2, (9, 8))],
)
def test_softpool_zero_hardness_is_avg_pool(kernel_size, stride, size) -> None:
    m = SoftPool2d(5, kernel_size=kernel_size, stride=stride)
    x = torch.randn(3, 5, *size)
    expected = F.avg_pool2d(x, kernel_size, stride)
    y = m(x)
    assert y.shape == expected.shape
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("kernel_size", "stride"), [(2, 2), ((2, 3), (2, 3)), (3, 2)])
def test_softpool_large_hardness_is_max_and_min_pool(kernel_size, stride) -> None:
    x = torch.randn(2, 4, 12, 12)
    m = SoftPool2d(4, kernel_size=kernel_size, stride=stride, init_hardness=1e4)
    torch.testing.assert_close(m(x), F.max_pool2d(x, kernel_size, stride), rtol=0, atol=1e-4)
    m = SoftPool2d(4, kernel_size=kernel_size, stride=stride, init_hardness=-1e4)
    torch.testing.assert_close(m(x), -F.max_pool2d(-x, kernel_size, stride), rtol=0, atol=1e-4)


def test_softpool_per_channel_hardness() -> None:
    m = SoftPool2d(2)
    assert m.hardness.shape == (2,) and torch.equal(m.hardness, torch.zeros(2))
    with torch.no_grad():
        m.hardness.copy_(torch.tensor([1e4, -1e4]))
    x = torch.randn(1, 2, 6, 6)
    torch.testing.assert_close(m(x)[:, 0], F.max_pool2d(x, 2)[:, 0], rtol=0, atol=1e-4)
    torch.testing.assert_close(m(x)[:, 1], -F.max_pool2d(-x, 2)[:, 1], rtol=0, atol=1e-4)


def test_softpool_output_between_window_min_and_max() -> None:
    m = SoftPool2d(3, kernel_size=3, stride=2)
    with torch.no_grad():
        m.hardness.copy_(torch.tensor([3.0, -7.0, 0.5]))
    x = torch.randn(2, 3, 11, 11) * 5
    y = m(x)
    assert (y <= F.max_pool2d(x, 3, 2) + 1e-5).all() and (y >= -F.max_pool2d(-x, 3, 2) - 1e-5).all()


def test_softpool_non_square_output_size_is_not_swapped() -> None:
    m = SoftPool2d(1, kernel_size=(2, 5), stride=(2, 5))
    assert m(torch.randn(1, 1, 8, 20)).shape == (1, 1, 4, 4)
    m = SoftPool2d(1, kernel_size=(1, 3), stride=(1, 2))
    assert m(torch.randn(1, 1, 6, 9)).shape == (1, 1, 6, 4)


def test_softpool_unbatched_and_too_small_input() -> None:
    m = SoftPool2d(3, kernel_size=3, stride=3)
    x = torch.randn(3, 9, 9)
    torch.testing.assert_close(m(x), m(x[None])[0])
    with pytest.raises(ValueError, match=r"SoftPool2d: input of shape \(3, 2, 9\) is smaller than kernel_size"):
        m(torch.randn(3, 2, 9))


# ----------------------------------------------------------------------------- counts, gradients
def test_mnist_reference_parameter_counts() -> None:
    model = nn.Sequential(
        ZConv2d(1, 16, kernel_size=5, routes=4), SoftPool2d(16),
        ZConv2d(16, 32, kernel_size=5, routes=4), SoftPool2d(32),
        nn.Flatten(), nn.Dropout(0.5), ZLinear(512, 10, routes=4),
    )
    inner = sum(p.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)) for p in m.parameters())
    total = sum(p.numel() for p in model.parameters())
    hardness = [m.hardness.numel() for m in model.modules() if hasattr(m, "hardness")]
    assert inner == 73_512
    assert total == 73_792
    assert hardness == [64, 16, 128, 32, 40]
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("share_weights", [True, False])
def test_gradcheck_zlinear_zconv(share_weights: bool) -> None:
    lin = ZLinear(3, 2, routes=3, share_weights=share_weights).double()
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: lin(t), (x,))
    conv = ZConv2d(2, 2, kernel_size=2, routes=2, share_weights=share_weights).double()
    xc = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: conv(t), (xc,))
    names = [n for n, _ in conv.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in conv.parameters())
    assert torch.autograd.gradcheck(
        lambda *ps: torch.func.functional_call(conv, dict(zip(names, ps)), (xc.detach(),)), params, fast_mode=True
    )


@pytest.mark.parametrize(("kernel_size", "stride"), [(2, 2), (3, 1)])
def test_gradcheck_softpool(kernel_size: int, stride: int) -> None:
    m = SoftPool2d(2, kernel_size=kernel_size, stride=stride, init_hardness=0.7).double()
    x = torch.randn(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    z = m.hardness.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t, h: torch.func.functional_call(m, {"hardness": h}, (t,)), (x, z))


# ----------------------------------------------------------------------------- arguments and shapes
@pytest.mark.parametrize(
    ("factory", "argument"),
    [
        (lambda: ZLinear(0, 3), "in_features"),
        (lambda: ZLinear(3, 0), "out_features"),
        (lambda: ZLinear(3, 3, routes=0), "routes"),
        (lambda: ZLinear(3, 3, routes=2.5), "routes"),
        (lambda: ZLinear(3, 3, share_weights="no"), "share_weights"),
        (lambda: ZConv2d(0, 3, 3), "in_channels"),
        (lambda: ZConv2d(3, 3, 0), "kernel_size"),
        (lambda: ZConv2d(3, 3, 3, routes=-1), "routes"),
        (lambda: ZConv2d(3, 3, 3, stride=0), "stride"),
        (lambda: ZConv2d(3, 3, 3, padding=-1), "padding"),
        (lambda: ZConv2d(3, 3, 3, padding="same", stride=2), "padding"),
        (lambda: SoftPool2d(0), "channels"),
        (lambda: SoftPool2d(3, kernel_size=0), "kernel_size"),
        (lambda: SoftPool2d(3, stride=(1, 0)), "stride"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(factory, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        factory()


def test_positional_order_matches_the_presets() -> None:
    m = ZConv2d(3, 4, 5, 2)  # kernel_size before routes (the original had routes first)
    assert m.kernel_size == (5, 5) and m.routes == 2
    m = ZConv2d(3, 4, 3, per_route_hardness=False)  # the original's positional bug flipped share_weights
    assert m.share_weights and m.gate is None and m.hardness.shape == (4, 1)


def test_forward_shape_mismatch_messages() -> None:
    with pytest.raises(ValueError, match=r"^ZLinear: expected input with 64 features in the last dimension, "
                                         r"got shape \(8, 32\)$"):
        ZLinear(64, 10)(torch.randn(8, 32))
    with pytest.raises(ValueError, match=r"ZConv2d: expected input of shape \(N, 3, H, W\) or \(3, H, W\), "
                                         r"got shape \(2, 4, 8, 8\)"):
        ZConv2d(3, 4, 3)(torch.randn(2, 4, 8, 8))
    with pytest.raises(ValueError, match=r"SoftPool2d: .*got shape \(8, 8\)"):
        SoftPool2d(3)(torch.randn(8, 8))
