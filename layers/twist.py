"""ResNet with a "twist": convolutions whose coefficients vary affinely with position.

"ResNet with a twist" by GitHub user liuyao12 — github.com/liuyao12/pytorch-cifar (notebooks 2020, a
fork of kuangliu/pytorch-cifar); no paper. The PDE reading: a 3×3 convolution is a constant-coefficient
differential operator; the twist adds the position-dependent first-order terms

    y = K ∗ x + X ⊙ (Kₓ ∗ x) + Y ⊙ (K_y ∗ x)

with Kₓ odd under 180° rotation and K_y = rot90(Kₓ, −1) = Kₓᵀ flipped left–right: the convention of
the notebook that produced the 94.32 % CIFAR-10 run (``cifar10_with_PDE.ipynb`` at commit 410b9bb,
``conv1y.weight = conv1x.weight.transpose(2, 3).flip(3)``). In PyTorch's cross-correlation with
X = column and Y = row this maps ∂x → ∂y and ∂y → −∂x, so the position-dependent part spans exactly
the dilation X∂x + Y∂y and the rotation X∂y − Y∂x ("rotation and scaling", as the notebook says)
and none of the strain X∂x − Y∂y or shear X∂y + Y∂x (the later notebooks and ``mxresnet.py`` use
``.flip(2)``, the negative, which spans strain and shear instead). Related: CoordConv (Liu et al.,
NeurIPS 2018, arXiv 1807.03247).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import IntPair, check_bool, check_choice, check_image, check_int, check_pair

__all__ = ["TwistConv2d", "TwistBasicBlock", "coordinate_grid", "TWIST_INITS"]


TWIST_INITS = ("zero", "random")


def _odd_part(v: torch.Tensor) -> torch.Tensor:
    """(V − rot180(V)) / 2: the part of V that is odd under a 180° rotation of the kernel."""
    return 0.5 * (v - torch.flip(v, dims=(-2, -1)))


def _axis(n: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    if n == 1:
        return torch.zeros(1, device=device, dtype=dtype)
    return torch.linspace(-0.5, 0.5, n, device=device, dtype=dtype)


def coordinate_grid(height: int, width: int, device: torch.device | None = None,
                    dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Centred coordinate maps for an output of ``height × width``, broadcastable to (…, H, W).

    ``X[i, j] = linspace(−0.5, 0.5, W)[j]`` (shape (1, W)) and ``Y[i, j] = linspace(−0.5, 0.5, H)[i]``
    (shape (H, 1)). Unlike the original's ``j/W − 0.5`` (range [−0.5, 0.5 − 1/W]) these are symmetric
    about the image centre, so the centre pixel of an odd-sized map has X = Y = 0; a size of 1 gives 0.
    """
    device = torch.device("cpu") if device is None else device
    xs = _axis(width, device, dtype).view(1, width)
    ys = _axis(height, device, dtype).view(height, 1)
    return xs, ys


class TwistConv2d(nn.Module):
    """Twisted convolution ``y = K ∗ x + X ⊙ (Kₓ ∗ x) + Y ⊙ (K_y ∗ x) + b`` (liuyao12/pytorch-cifar).

    Parameters: ``weight`` K (out, in, k, k) with ``nn.Conv2d``'s default init, ``twist_weight`` V
    (same shape), optional ``bias``. ``twist_init="zero"`` (default) sets V = 0, so the layer starts
    as its plain convolution; ``"random"`` starts as the original does: V drawn like ``nn.Conv2d``'s
    default weight (its ``conv1x``) and projected to its odd part, as the original's first forward
    does. The twist kernels are computed from V in every forward (no ``.data`` writes):

        Kₓ = (V − rot180(V)) / 2          odd: rot180(Kₓ) = −Kₓ
        K_y = rot90(Kₓ, −1) = Kₓᵀ.flip(−1)  ``kx.transpose(-2, -1).flip(-1)``, as 410b9bb

    Differences from the original (liuyao12/pytorch-cifar 410b9bb ``BasicBlock``), each leaving
    the set of representable functions unchanged: the original overwrites ``conv1y`` with the
    transform of ``conv1x`` before each forward, so its K_y gets no gradient of its own and Kₓ learns
    from the X path only (then re-projected); here V receives the gradient of both paths. X, Y are
    ``linspace(−0.5, 0.5)`` instead of ``j/W − 0.5`` (an affine change absorbed by K and the scale of V).

    X, Y are the centred maps of ``coordinate_grid`` for the actual OUTPUT size, rebuilt each call
    (W + H values, negligible), so the input resolution may change between calls. K runs as its own
    convolution (so zero twist is bitwise ``F.conv2d(x, K, b)``) and Kₓ, K_y as one fused convolution
    with 2·out channels. ``kernel_size`` must be odd (and square, for rot90).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair = 3, stride: IntPair = 1,
                 padding: IntPair = 1, bias: bool = False, twist_init: str = "zero") -> None:
        super().__init__()
        name = type(self).__name__
        self.twist_init = check_choice(name, "twist_init", twist_init, TWIST_INITS)
        self.in_channels = check_int(name, "in_channels", in_channels)
        self.out_channels = check_int(name, "out_channels", out_channels)
        kh, kw = check_pair(name, "kernel_size", kernel_size)
        if kh != kw or kh % 2 == 0:
            raise ValueError(f"{name}: kernel_size must be an odd integer >= 1 (a square kernel), "
                             f"got {kernel_size!r}")
        self.kernel_size = kh
        self.stride = check_pair(name, "stride", stride)
        self.padding = check_pair(name, "padding", padding, minimum=0)
        check_bool(name, "bias", bias)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kh, kh))
        self.twist_weight = nn.Parameter(torch.empty(out_channels, in_channels, kh, kh))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """K and b as ``nn.Conv2d`` initialises them (Kaiming-uniform, a=√5); V = 0 (``twist_init="zero"``)
        or Kaiming-uniform (a=√5) projected to its odd part (``"random"``)."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.twist_init == "random":
            with torch.no_grad():
                nn.init.kaiming_uniform_(self.twist_weight, a=math.sqrt(5))
                self.twist_weight.copy_(_odd_part(self.twist_weight))
        else:
            nn.init.zeros_(self.twist_weight)
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_channels * self.kernel_size * self.kernel_size)
            nn.init.uniform_(self.bias, -bound, bound)

    def twist_kernels(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The effective (Kₓ, K_y) computed from ``twist_weight``."""
        kx = _odd_part(self.twist_weight)
        ky = kx.transpose(-2, -1).flip(-1)  # = rot90(kx, -1): 410b9bb's conv1x.weight.transpose(2,3).flip(3)
        return kx, ky

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image("TwistConv2d", x, self.in_channels)
        kx, ky = self.twist_kernels()
        # The plain part is the very call nn.Conv2d makes, so zero twist reproduces it bit for bit
        # (one fused 3·out conv is not bitwise stable: backends pick kernels by channel count).
        base = F.conv2d(x, self.weight, self.bias, self.stride, self.padding)
        zx, zy = F.conv2d(x, torch.cat([kx, ky], dim=0), None, self.stride, self.padding).chunk(2, dim=-3)
        xs, ys = coordinate_grid(base.shape[-2], base.shape[-1], device=base.device, dtype=zx.dtype)
        return torch.addcmul(torch.addcmul(base, zx, xs), zy, ys)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}, "
                f"twist_init={self.twist_init}")


class TwistBasicBlock(nn.Module):
    """Pre-activation ResNet BasicBlock with both 3×3 convolutions twisted (liuyao12/pytorch-cifar).

        a = relu(BN₁ x)
        y = conv₂'(relu(BN₂(conv₁'(a)))) + shortcut(a)

    conv₁' carries the stride; shortcut = identity, or BN(1×1 conv with the stride) when the shape
    changes (the original's ``nn.Sequential(Conv2d(1×1, stride), BatchNorm2d)``); no ReLU after the
    addition. ``twist=False`` uses plain ``nn.Conv2d`` (the baseline block); ``twist_init`` is passed
    to both twisted convs ("zero": start as the plain block; "random": the original's random twist).
    Source: ``BasicBlock`` in ``cifar10_with_PDE.ipynb``, liuyao12/pytorch-cifar commit 410b9bb.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, twist: bool = True,
                 twist_init: str = "zero") -> None:
        super().__init__()
        name = type(self).__name__
        self.in_channels = check_int(name, "in_channels", in_channels)
        self.out_channels = check_int(name, "out_channels", out_channels)
        self.stride = check_int(name, "stride", stride)
        self.twist = check_bool(name, "twist", twist)
        self.twist_init = check_choice(name, "twist_init", twist_init, TWIST_INITS)

        def conv3x3(cin: int, cout: int, s: int) -> nn.Module:
            if twist:
                return TwistConv2d(cin, cout, 3, stride=s, padding=1, bias=False, twist_init=twist_init)
            return nn.Conv2d(cin, cout, 3, stride=s, padding=1, bias=False)

        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels, 1)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image("TwistBasicBlock", x, self.in_channels)
        a = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(a))))
        return out + self.shortcut(a)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, stride={self.stride}, twist={self.twist}, "
                f"twist_init={self.twist_init}")
