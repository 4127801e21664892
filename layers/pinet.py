"""Π-Nets: polynomial networks built from Hadamard products, no activation function needed.

Grigorios G. Chrysos, Stylianos Moschoglou, Giorgos Bouritsas, Yannis Panagakis, Jiankang Deng,
Stefanos Zafeiriou, "Π-nets: Deep Polynomial Neural Networks", CVPR 2020, arXiv 2003.03828; and
"Deep Polynomial Neural Networks", TPAMI 2021, arXiv 2006.13026. Official code:
github.com/grigorisg9gr/polynomial_nets (``classification-NO-activation-function/pinet_norelu.py``).

Products are computed in float32 when autocast hands over float16/bfloat16 factors (the product
of two low-precision factors is where overflow and rounding bite).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import (IntPair, check_bool, check_choice, check_features, check_image, check_int, check_pair,
                      low_precision)
from .init import CONV_INITS, init_weight_

__all__ = ["ProductConv2d", "PiBlock2d", "CCPPolynomial"]


def _product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a ⊙ b, promoted to float32 when either factor is float16/bfloat16."""
    if low_precision(a) or low_precision(b):
        return a.float() * b.float()
    return a * b


class ProductConv2d(nn.Module):
    """Second-order convolution ``y = (K_a ∗ x + b_a) ⊙ (K_b ∗ x + b_b)``.

    The block of the seed blog post (a Hadamard product of two convolutions, the simplest Π-Net
    building block; Chrysos et al., "Π-nets: Deep Polynomial Neural Networks", CVPR 2020,
    arXiv 2003.03828). Both convs have a bias; they run as one convolution with 2·out channels.
    Along any line x₀ + t·v the output is a polynomial of degree 2 in t.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, stride: IntPair = 1,
                 padding: IntPair = 0) -> None:
        super().__init__()
        name = type(self).__name__
        self.in_channels = check_int(name, "in_channels", in_channels)
        self.out_channels = check_int(name, "out_channels", out_channels)
        self.kernel_size = check_pair(name, "kernel_size", kernel_size)
        self.stride = check_pair(name, "stride", stride)
        self.padding = check_pair(name, "padding", padding, minimum=0)
        self.conv_a = nn.Conv2d(in_channels, out_channels, self.kernel_size, self.stride, self.padding)
        self.conv_b = nn.Conv2d(in_channels, out_channels, self.kernel_size, self.stride, self.padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image("ProductConv2d", x, self.in_channels)
        weight = torch.cat([self.conv_a.weight, self.conv_b.weight], dim=0)
        bias = torch.cat([self.conv_a.bias, self.conv_b.bias], dim=0)
        a, b = F.conv2d(x, weight, bias, self.stride, self.padding).chunk(2, dim=-3)
        return _product(a, b)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")


class PiBlock2d(nn.Module):
    """Π-Net residual block without activation (``pinet_norelu.py``, Chrysos et al., arXiv 2003.03828).

        t = BN₂(conv₂(BN₁(conv₁ x)))          3×3 convs, conv₁ carries the stride, no bias
        s = x   or   BN(conv1×1_stride(x))     when the shape changes
        y = t + s + BN₃(t ⊙ s)                 (product_conv1x1: BN₃(conv1×1(t ⊙ s)))

    In eval mode t and s are affine in x, so y is a polynomial of degree 2 in x; with the product
    branch zeroed the block is affine. The product is taken in float32 under low-precision autocast.

    Initialisation (the official ``ResNet.init_weights`` as its training log ``logs/pinet_norelu.log``
    lists it per tensor; github.com/grigorisg9gr/polynomial_nets, commit 210f0d3):

    * ``zero_init_residual=True`` sets γ of BN₂ to 0 (mmcls ``zero_init_residual``, the official
      default): t = 0 at the start, so s ⊙ t = 0 too and every block starts as the identity /
      projection y = s. BN₃ keeps γ = 1.
    * ``conv_init="kaiming_normal_fan_out"``: every conv (3×3, shortcut 1×1, product 1×1) drawn from
      N(0, 2/fan_out) as the official ``KaimingInit(mode="fan_out", nonlinearity="relu")``;
      ``"default"`` keeps PyTorch's.
    * ``zero_init_product=True`` sets γ of BN₃ to 0 instead (no product term at the start); this is
      not in the official code, which leaves BN₃ at γ = 1.

    The defaults (all off / "default") are PyTorch's; the official recipe is
    ``zero_init_residual=True, conv_init="kaiming_normal_fan_out"``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, product_conv1x1: bool = False,
                 zero_init_product: bool = False, zero_init_residual: bool = False,
                 conv_init: str = "default") -> None:
        super().__init__()
        name = type(self).__name__
        self.in_channels = check_int(name, "in_channels", in_channels)
        self.out_channels = check_int(name, "out_channels", out_channels)
        self.stride = check_int(name, "stride", stride)
        self.product_conv1x1 = check_bool(name, "product_conv1x1", product_conv1x1)
        self.zero_init_product = check_bool(name, "zero_init_product", zero_init_product)
        self.zero_init_residual = check_bool(name, "zero_init_residual", zero_init_residual)
        self.conv_init = check_choice(name, "conv_init", conv_init, CONV_INITS)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.conv3 = nn.Conv2d(out_channels, out_channels, 1, bias=False) if product_conv1x1 else None
        self.bn3 = nn.BatchNorm2d(out_channels)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                init_weight_(m, conv_init)
        if zero_init_residual:
            nn.init.zeros_(self.bn2.weight)
        if zero_init_product:
            nn.init.zeros_(self.bn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image("PiBlock2d", x, self.in_channels)
        t = self.bn2(self.conv2(self.bn1(self.conv1(x))))
        s = self.shortcut(x)
        p = _product(t, s)
        if self.conv3 is not None:
            p = self.conv3(p)
        return t + s + self.bn3(p)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, stride={self.stride}, "
                f"product_conv1x1={self.product_conv1x1}, zero_init_product={self.zero_init_product}, "
                f"zero_init_residual={self.zero_init_residual}, conv_init={self.conv_init}")


class CCPPolynomial(nn.Module):
    """Coupled-CP polynomial of degree N (Chrysos et al., "Π-nets", CVPR 2020, arXiv 2003.03828, eq. CCP).

        x₁ = U₁ᵀ z
        x_n = (U_nᵀ z) ⊙ x_{n−1} + x_{n−1},   n = 2..N
        G(z) = C x_N + β

    The N injections U_n (no bias, as in the official ``CCP`` model) run as one ``nn.Linear`` ``U``
    with N·hidden outputs (rows n·hidden … (n+1)·hidden − 1 are U_{n+1}); ``C`` is an ``nn.Linear``
    with bias β. G is a polynomial of degree ≤ N in z.
    """

    def __init__(self, in_features: int, hidden_features: int, out_features: int, degree: int = 3) -> None:
        super().__init__()
        name = type(self).__name__
        self.in_features = check_int(name, "in_features", in_features)
        self.hidden_features = check_int(name, "hidden_features", hidden_features)
        self.out_features = check_int(name, "out_features", out_features)
        self.degree = check_int(name, "degree", degree)
        self.U = nn.Linear(in_features, hidden_features * degree, bias=False)
        self.C = nn.Linear(hidden_features, out_features, bias=True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        check_features("CCPPolynomial", z, self.in_features)
        injections = self.U(z).chunk(self.degree, dim=-1)
        x = injections[0]
        for u in injections[1:]:
            x = _product(u, x) + x
        return self.C(x)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, hidden_features={self.hidden_features}, "
                f"out_features={self.out_features}, degree={self.degree}")
