"""Glue layers the palette needs beside the five families: ``Abs`` and the ``Residual`` container."""
from __future__ import annotations

import torch
from torch import nn


class Abs(nn.Module):
    """Element-wise absolute value, y = |x|: the HanNet non-linearity after its first Linear
    (Yu & Zhang, "A Lightweight and Gradient-Stable Neural Layer", arXiv 2106.04088)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.abs(x)


class Residual(nn.Module):
    """y = body(x) + skip(x); ``skip`` is the identity or a 1×1 conv / linear projection
    (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, arXiv 1512.03385)."""

    def __init__(self, body: nn.Module, skip: nn.Module) -> None:
        super().__init__()
        self.body = body
        self.skip = skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)
