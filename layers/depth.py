"""Learned ("infinite") depth: a meta-layer whose number of active sub-layers is a trained real w.

Benjamin Meier, "Going Deeper: Infinite Deep Neural Networks", ZHAW, December 2017 — code and PDF at
github.com/kutoga/going_deeper (Keras, ``GInftlyLayer``; ``doc/going_deeper.pdf``).

    δ_w(i) = ReLU(1 − exp(α (i − w)))                               the depth gate, α = slope
    g₀ = x,   g_{i+1} = h(g_i + δ_w(i) f_i(g_i))                      (residual)
              g_{i+1} = h((1 − δ_w(i)) g_i + δ_w(i) f_i(g_i))          (residual=False)
    g∞(x) = h(g_{max(0, ⌈w⌉)}(x))

δ_w(i) = 0 for i ≥ w, so with an idempotent h (h∘h = h) every layer from ⌈w⌉ on is the identity
after h and exactly ⌈w⌉ sub-layers are active; ∂δ_w(i)/∂w = α e^{α(i−w)} for i < w, so w learns.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, Union

import torch
from torch import nn

from ._checks import check_bool, check_float, check_int, shape_str

__all__ = ["DepthGate", "InfiniteDepth"]

_IDEMPOTENT_MODULES = (nn.ReLU, nn.Hardtanh, nn.Identity)  # nn.ReLU6 is a Hardtanh (a clamp)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
_H_ALLOWED = ('"relu", "identity", or an nn.ReLU / nn.ReLU6 / nn.Hardtanh / nn.Identity module '
              "(or any module with attribute idempotent=True)")


def _w_text(w: torch.Tensor) -> str:
    return "<meta>" if w.is_meta else f"{w.item():.4g}"


class DepthGate(nn.Module):
    """Depth gate ``δ_w(i) = relu(1 − exp(slope·(i − w)))`` with learnable scalar ``w`` (Meier 2017).

    Positive for i < w, exactly 0 for i ≥ w, non-increasing in i. The paper suggests a slope α > 1
    to steepen the gate of the newest layer; the default 1 is the original.
    """

    def __init__(self, init_w: float = 1.0, slope: float = 1.0) -> None:
        super().__init__()
        name = type(self).__name__
        check_float(name, "init_w", init_w)
        self.slope = check_float(name, "slope", slope, minimum=0.0, exclusive=True)
        self.w = nn.Parameter(torch.tensor(float(init_w)))

    def forward(self, i: Union[int, float]) -> torch.Tensor:
        return torch.relu(1.0 - torch.exp(self.slope * (i - self.w)))

    def extra_repr(self) -> str:
        return f"w={_w_text(self.w)}, slope={self.slope:g}"


def _resolve_h(h: Union[str, nn.Module]) -> tuple[nn.Module, str]:
    if isinstance(h, str):
        key = h.lower()
        if key == "relu":
            return nn.ReLU(), "relu"
        if key == "identity":
            return nn.Identity(), "identity"
        raise ValueError(f"InfiniteDepth: h must be idempotent (h(h(x)) = h(x)): {_H_ALLOWED}; got {h!r}")
    if isinstance(h, nn.Module):
        if getattr(h, "inplace", False):
            raise ValueError(f"InfiniteDepth: h must not be in-place (it would overwrite the input); "
                             f"allowed: {_H_ALLOWED}; got {h!r}")
        if isinstance(h, _IDEMPOTENT_MODULES) or getattr(h, "idempotent", False) is True:
            return h, repr(h)
    raise ValueError(f"InfiniteDepth: h must be idempotent (h(h(x)) = h(x)): {_H_ALLOWED}; got {h!r}")


class InfiniteDepth(nn.Module):
    """Meta-layer with learned depth (Meier, "Going Deeper: Infinite Deep Neural Networks", 2017).

        g₀ = x,  g_{i+1} = h(g_i + δ_w(i)·f_i(g_i))   (or h((1−δ)g_i + δ f_i(g_i)) with residual=False)
        output = h(g_⌈w⌉),  δ_w(i) = relu(1 − exp(i − w))

    ``make_sublayer(i)`` builds the shape-preserving sub-layer f_i; all ``max_depth`` of them are
    allocated up front in ``self.layers`` so an optimiser sees every parameter from the start (the
    Keras original rebuilt the model and lost the optimiser state). Only the first ``depth`` =
    max(0, ⌈w⌉) (capped at ``max_depth``, with a warning) are evaluated; reading w costs one
    ``.item()`` host sync per forward. ``w`` is the scalar ``nn.Parameter`` (held by ``self.gate``).
    ``h`` must be idempotent: "relu", "identity" or such a module.

    ``regularization()`` = w_l2·w² + Σ_i f_l2·δ_w(i + 1e-7)·‖γ_i‖², γ_i the BatchNorm weights in
    sub-layer i (the original's "conditional L2": it stops f_i from growing by 1/δ instead of w).
    Add it to the loss yourself.
    """

    def __init__(self, make_sublayer: Callable[[int], nn.Module], h: Union[str, nn.Module] = "relu",
                 init_w: float = 1.0, max_depth: int = 32, residual: bool = True, w_l2: float = 1e-4,
                 f_l2: float = 1e-8) -> None:
        super().__init__()
        name = type(self).__name__
        if not callable(make_sublayer):
            raise ValueError(f"{name}: make_sublayer must be a callable i -> nn.Module, got {make_sublayer!r}")
        self.h, self.h_name = _resolve_h(h)
        self.max_depth = check_int(name, "max_depth", max_depth)
        self.residual = check_bool(name, "residual", residual)
        self.w_l2 = check_float(name, "w_l2", w_l2, minimum=0.0)
        self.f_l2 = check_float(name, "f_l2", f_l2, minimum=0.0)
        self.gate = DepthGate(check_float(name, "init_w", init_w))
        layers = []
        for i in range(self.max_depth):
            layer = make_sublayer(i)
            if not isinstance(layer, nn.Module):
                raise ValueError(f"{name}: make_sublayer({i}) must return an nn.Module, got {type(layer).__name__}")
            layers.append(layer)
        self.layers = nn.ModuleList(layers)

    @property
    def w(self) -> nn.Parameter:
        """The raw depth parameter (a scalar ``nn.Parameter``)."""
        return self.gate.w

    def _depth(self, warn: bool) -> int:
        w = float(self.gate.w.detach())  # one host sync
        if math.isnan(w):
            raise ValueError("InfiniteDepth: the depth parameter w is NaN")
        if w > self.max_depth:
            if warn:
                warnings.warn(f"InfiniteDepth: w = {w:.4g} exceeds max_depth = {self.max_depth}; "
                              f"only {self.max_depth} sub-layers are evaluated", RuntimeWarning, stacklevel=3)
            return self.max_depth
        return max(0, math.ceil(w))

    @property
    def depth(self) -> int:
        """Active depth max(0, ⌈w⌉), capped at ``max_depth``."""
        return self._depth(warn=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        depth = self._depth(warn=True)
        if depth == 0:
            return self.h(x)
        g = x
        for i in range(depth):
            delta = self.gate(i)
            f = self.layers[i](g)
            if f.shape != g.shape:
                raise ValueError(f"InfiniteDepth: sub-layer {i} must preserve the shape, "
                                 f"got input {shape_str(g.shape)} and output {shape_str(f.shape)}")
            if self.residual:
                g = self.h(g + delta * f)
            else:
                g = self.h((1.0 - delta) * g + delta * f)
        return g  # h is idempotent, so h(g) == g here

    def regularization(self) -> torch.Tensor:
        """w_l2·w² + Σ_{i<⌈w⌉} f_l2·δ_w(i + 1e-7)·Σ‖γ‖² over the BatchNorm weights of sub-layer i."""
        w = self.gate.w
        reg = self.w_l2 * w * w
        for i in range(self.depth):
            gammas = [m.weight for m in self.layers[i].modules()
                      if isinstance(m, _BATCH_NORMS) and m.weight is not None]
            if gammas:
                sq = torch.stack([(g * g).sum() for g in gammas]).sum()
                reg = reg + self.f_l2 * self.gate(i + 1e-7) * sq
        return reg

    def extra_repr(self) -> str:
        return (f"h={self.h_name}, w={_w_text(self.gate.w)}, max_depth={self.max_depth}, "
                f"residual={self.residual}, w_l2={self.w_l2:g}, f_l2={self.f_l2:g}")
