"""Z layers: routes of a vanilla layer merged by a learned-hardness soft mean.

Source: github.com/ZdsAlpha/Z (GitHub user ZdsAlpha, 2020–2021, read at HEAD a42312c). There is no
paper; the README and ``z.py`` are the reference. The primitive is

    softmean_z(a) = Σ_r a_r · softmax_r(z · a) = Σ_r a_r e^{z a_r} / Σ_s e^{z a_s}

which is the mean at z = 0, tends to max for z → +∞ and to min for z → −∞, and always lies in
[min_r a_r, max_r a_r]. (Not to be confused with Stergiou et al.'s parameter-free "SoftPool",
ICCV 2021, arXiv 2101.00440.)

Every Z layer runs ONE inner vanilla layer with ``out × routes`` outputs (channel index
``o·routes + r``) and merges the routes of each output with its own hardness ``z_{o,r}``.
"""
from __future__ import annotations

from typing import Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import (
    IntPair,
    check_bool,
    check_features,
    check_float,
    check_image,
    check_int,
    check_padding,
    check_pair,
    shape_str,
)

__all__ = ["softmean", "ZLinear", "ZConv2d", "SoftPool2d"]


def softmean(values: torch.Tensor, hardness: Union[torch.Tensor, float], dim: int) -> torch.Tensor:
    """Soft mean of ``values`` along ``dim`` with hardness (inverse temperature) ``hardness``.

    ``Σ_r a_r softmax_r(z·a)``; ``hardness`` broadcasts against ``values``. Uses the numerically
    stable ``torch.softmax``; the result always lies between the minimum and maximum along ``dim``
    (up to rounding), 0 gives the arithmetic mean, large positive the max, large negative the min.
    """
    weights = torch.softmax(values * hardness, dim=dim)
    return (values * weights).sum(dim=dim)


def _gated_mean(values: torch.Tensor, logits: torch.Tensor, hardness: torch.Tensor, dim: int) -> torch.Tensor:
    """``Σ_r a_r softmax_r(z·l)``: the share_weights=False form (gate logits from a second layer)."""
    weights = torch.softmax(logits * hardness, dim=dim)
    return (values * weights).sum(dim=dim)


def _init_hardness(out: int, routes: int, per_route: bool) -> nn.Parameter:
    return nn.Parameter(torch.randn(out, routes if per_route else 1))


class ZLinear(nn.Module):
    """Z linear layer (ZdsAlpha/Z): ``routes`` linear maps merged by a learned soft mean.

        h = W x + b ∈ R^{out·routes},  h_{o,r} = h[o·routes + r]
        y_o = Σ_r h_{o,r} softmax_r(z_{o,r} h_{o,r})                       (share_weights=True)
        y_o = Σ_r h_{o,r} softmax_r(z_{o,r} l_{o,r}),  l = W' x + b'        (share_weights=False)

    ``hardness`` z has shape (out, routes) (per_route_hardness) or (out, 1), initialised N(0, 1).
    ``routes=1`` is exactly the inner ``nn.Linear``; z = 0 gives the mean of the routes.
    Reference: github.com/ZdsAlpha/Z (README "Z layers", 2020–2021), no paper.
    """

    def __init__(self, in_features: int, out_features: int, routes: int = 4, bias: bool = True,
                 per_route_hardness: bool = True, share_weights: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        self.in_features = check_int(name, "in_features", in_features)
        self.out_features = check_int(name, "out_features", out_features)
        self.routes = check_int(name, "routes", routes)
        self.per_route_hardness = check_bool(name, "per_route_hardness", per_route_hardness)
        self.share_weights = check_bool(name, "share_weights", share_weights)
        check_bool(name, "bias", bias)
        self.inner = nn.Linear(in_features, out_features * routes, bias=bias)
        self.gate = None if share_weights else nn.Linear(in_features, out_features * routes, bias=bias)
        self.hardness = _init_hardness(out_features, routes, per_route_hardness)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_features("ZLinear", x, self.in_features)
        h = self.inner(x).unflatten(-1, (self.out_features, self.routes))
        if self.gate is None:
            return softmean(h, self.hardness, dim=-1)
        logits = self.gate(x).unflatten(-1, (self.out_features, self.routes))
        return _gated_mean(h, logits, self.hardness, dim=-1)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, routes={self.routes}, "
                f"bias={self.inner.bias is not None}, per_route_hardness={self.per_route_hardness}, "
                f"share_weights={self.share_weights}")


class ZConv2d(nn.Module):
    """Z 2-D convolution (ZdsAlpha/Z): ``routes`` convolutions merged per pixel by a soft mean.

        h = K ∗ x + b with out·routes channels,  h_{o,r} = channel o·routes + r
        y_o = Σ_r h_{o,r} softmax_r(z_{o,r} h_{o,r})                       (share_weights=True)
        y_o = Σ_r h_{o,r} softmax_r(z_{o,r} l_{o,r}),  l = K' ∗ x + b'      (share_weights=False)

    One fused ``nn.Conv2d`` (``self.inner``) computes all routes. ``hardness`` z is (out, routes)
    or (out, 1), initialised N(0, 1). Note the argument order: ``kernel_size`` before ``routes``
    (the original puts routes first). Reference: github.com/ZdsAlpha/Z, no paper.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair, routes: int = 4,
                 stride: IntPair = 1, padding: Union[IntPair, str] = 0, bias: bool = True,
                 per_route_hardness: bool = True, share_weights: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        self.in_channels = check_int(name, "in_channels", in_channels)
        self.out_channels = check_int(name, "out_channels", out_channels)
        self.kernel_size = check_pair(name, "kernel_size", kernel_size)
        self.routes = check_int(name, "routes", routes)
        self.stride = check_pair(name, "stride", stride)
        self.padding = check_padding(name, padding)
        self.per_route_hardness = check_bool(name, "per_route_hardness", per_route_hardness)
        self.share_weights = check_bool(name, "share_weights", share_weights)
        check_bool(name, "bias", bias)
        if self.padding == "same" and self.stride != (1, 1):
            raise ValueError(f"{name}: padding='same' needs stride=1, got stride={stride!r}")

        def conv() -> nn.Conv2d:
            return nn.Conv2d(in_channels, out_channels * routes, self.kernel_size, stride=self.stride,
                             padding=self.padding, bias=bias)

        self.inner = conv()
        self.gate = None if share_weights else conv()
        self.hardness = _init_hardness(out_channels, routes, per_route_hardness)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image("ZConv2d", x, self.in_channels)
        # (…, out·routes, H, W) -> (…, out, routes, H, W); merge over the routes axis (-3).
        h = self.inner(x).unflatten(-3, (self.out_channels, self.routes))
        z = self.hardness[:, :, None, None]
        if self.gate is None:
            return softmean(h, z, dim=-3)
        logits = self.gate(x).unflatten(-3, (self.out_channels, self.routes))
        return _gated_mean(h, logits, z, dim=-3)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, routes={self.routes}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.inner.bias is not None}, "
                f"per_route_hardness={self.per_route_hardness}, share_weights={self.share_weights}")


class SoftPool2d(nn.Module):
    """Spatial soft-mean pooling with one learned hardness per channel (ZdsAlpha/Z ``SoftPool2d``).

        y_{c,i,j} = Σ_{p∈window(i,j)} x_{c,p} softmax_p(z_c x_{c,p})

    ``hardness`` z (shape (channels,)) starts at ``init_hardness`` (0 = ``avg_pool2d``); it can learn
    to be max-like (z > 0) or min-like (z < 0). No padding; output size
    ``⌊(H − kH)/sH⌋ + 1 × ⌊(W − kW)/sW⌋ + 1`` (the original swapped the H/W indices of kernel and
    stride, which only matters for non-square settings). Windows are gathered with ``F.unfold``.
    Reference: github.com/ZdsAlpha/Z; the parameter-free cousin is
    Stergiou et al., "Refining activation downsampling with SoftPool", ICCV 2021, arXiv 2101.00440.
    """

    def __init__(self, channels: int, kernel_size: IntPair = 2, stride: IntPair = 2,
                 init_hardness: float = 0.0) -> None:
        super().__init__()
        name = type(self).__name__
        self.channels = check_int(name, "channels", channels)
        self.kernel_size = check_pair(name, "kernel_size", kernel_size)
        self.stride = check_pair(name, "stride", stride)
        self.init_hardness = check_float(name, "init_hardness", init_hardness)
        self.hardness = nn.Parameter(torch.full((channels,), self.init_hardness))

    def output_size(self, height: int, width: int) -> Tuple[int, int]:
        """Spatial output size for an input of ``height × width``."""
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        return (height - kh) // sh + 1, (width - kw) // sw + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image("SoftPool2d", x, self.channels)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        height, width = x.shape[-2], x.shape[-1]
        if height < kh or width < kw:
            raise ValueError(f"SoftPool2d: input of shape {shape_str(x.shape)} is smaller than "
                             f"kernel_size {self.kernel_size}")
        ho, wo = self.output_size(height, width)
        batched = x.dim() == 4
        xb = x if batched else x.unsqueeze(0)
        n, c = xb.shape[0], xb.shape[1]
        # im2col puts each window along dim 2 with the L = Ho·Wo positions contiguous behind it, so the
        # stable softmax runs vectorised over positions (faster on CPU than a 6-D reshape view).
        cols = F.unfold(xb, (kh, kw), stride=(sh, sw)).view(n, c, kh * kw, ho * wo)
        y = softmean(cols, self.hardness[:, None, None], dim=2).view(n, c, ho, wo)
        return y if batched else y.squeeze(0)

    def extra_repr(self) -> str:
        return (f"{self.channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"init_hardness={self.init_hardness}")
