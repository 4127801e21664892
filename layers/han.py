"""Householder-absolute neural layers (Han-layers).

Yueyao Yu, Yin Zhang, "Householder-Absolute Neural Layers For High Variability and Deep
Trainability" (arXiv 2106.04088v1, 2021), later "A Lightweight and Gradient-Stable Neural Layer",
Neural Networks 175 (2024) 106269. Official code: github.com/yyy32/HanNet.

One layer on R^d keeps the width and uses ONE Householder reflector:

    H(u) = I − 2 u uᵀ / uᵀu,        y = | H(u) x + b |

computed as ``x − 2 (uᵀx / (uᵀu + eps)) u`` in O(d) per sample, never forming the d×d matrix.
The Jacobian diag(sign(Hx + b))·H is orthogonal, so gradients keep their norm through any stack.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import check_bool, check_choice, check_features, check_float, check_int
from .init import HOUSEHOLDER_INITS, init_vector_

__all__ = ["HouseholderLinear", "HanLayer", "HanStack"]


class HouseholderLinear(nn.Module):
    """Affine Householder reflection ``y = x − 2 (uᵀx / (uᵀu + eps)) u + b`` (Yu & Zhang, arXiv 2106.04088).

    Parameters: ``u`` (features,), initialised by ``init`` (default ``"orthogonal"``: a random unit
    vector, ``nn.init.orthogonal_`` of a d×1 matrix, as the original's ``--initial orth``; also
    ``"kaiming_normal"`` and ``"xavier_normal"``, its other two choices, see :mod:`layers.init`), and
    ``bias`` (features,) ~ U(−1/√d, 1/√d) as in ``checkerboard_experiments/ann.py``
    ``HouseholderLayer`` (github.com/yyy32/HanNet, commit 09f8dc0): 2·features in all. The reflector is
    orthogonal (H Hᵀ = I), involutory (H² = I) with det H = −1; ``eps`` only guards u → 0.
    The projection uᵀx is an element-wise product and sum, which autocast leaves in the input's
    precision, so the reflection stays orthogonal to float32 accuracy under bf16 autocast.
    """

    def __init__(self, features: int, bias: bool = True, eps: float = 1e-12, init: str = "orthogonal") -> None:
        super().__init__()
        name = type(self).__name__
        self.features = check_int(name, "features", features)
        check_bool(name, "bias", bias)
        self.eps = check_float(name, "eps", eps, minimum=0.0)
        self.init = check_choice(name, "init", init, HOUSEHOLDER_INITS)
        self.u = nn.Parameter(torch.empty(features))
        self.bias = nn.Parameter(torch.empty(features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            init_vector_(self.u, self.init, type(self).__name__)
            if self.bias is not None:
                bound = 1.0 / math.sqrt(self.features)
                nn.init.uniform_(self.bias, -bound, bound)

    def _reflect(self, x: torch.Tensor) -> torch.Tensor:
        u = self.u
        scale = 2.0 / ((u * u).sum() + self.eps)
        coef = (x * u).sum(dim=-1, keepdim=True) * scale
        base = x if self.bias is None else x + self.bias
        return torch.addcmul(base, coef, u, value=-1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_features(type(self).__name__, x, self.features)
        return self._reflect(x)

    def matrix(self) -> torch.Tensor:
        """The d×d reflector H = I − 2 u uᵀ / (uᵀu + eps), for tests and inspection only."""
        u = self.u
        eye = torch.eye(self.features, dtype=u.dtype, device=u.device)
        return eye - (2.0 / ((u * u).sum() + self.eps)) * torch.outer(u, u)

    def extra_repr(self) -> str:
        return f"features={self.features}, bias={self.bias is not None}, eps={self.eps:g}, init={self.init}"


class HanLayer(HouseholderLinear):
    """Han-layer ``y = |H(u) x + b|`` (Yu & Zhang, arXiv 2106.04088; github.com/yyy32/HanNet).

    The absolute value is out of place (the original's in-place ``abs_`` is avoided). Without a bias
    ‖y‖₂ = ‖x‖₂ exactly; the Jacobian diag(sign(Hx + b))·H is orthogonal. 2·features parameters.
    """

    def __init__(self, features: int, bias: bool = True, init: str = "orthogonal") -> None:
        super().__init__(features, bias=bias, init=init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_features("HanLayer", x, self.features)
        return torch.abs(self._reflect(x))

    def extra_repr(self) -> str:
        return f"features={self.features}, bias={self.bias is not None}, init={self.init}"


class HanStack(nn.Module):
    """``depth`` Han-layers in sequence: y = |H_D(… |H_1 x + b_1| …) + b_D| (arXiv 2106.04088).

    The width stays ``features``; 2·features·depth parameters. The Jacobian of the whole stack is a
    product of orthogonal matrices, hence orthogonal (no vanishing or exploding gradients).
    """

    def __init__(self, features: int, depth: int, bias: bool = True, init: str = "orthogonal") -> None:
        super().__init__()
        name = type(self).__name__
        self.features = check_int(name, "features", features)
        self.depth = check_int(name, "depth", depth)
        check_bool(name, "bias", bias)
        check_choice(name, "init", init, HOUSEHOLDER_INITS)
        self.layers = nn.ModuleList(HanLayer(features, bias=bias, init=init) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_features("HanStack", x, self.features)
        for layer in self.layers:
            x = layer(x)
        return x

    def extra_repr(self) -> str:
        bias = self.layers[0].bias is not None
        return f"features={self.features}, depth={self.depth}, bias={bias}, init={self.layers[0].init}"
