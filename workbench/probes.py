"""Per-layer probes read from a model in one batched device computation and one host sync.

Figures (all per top-level child of the model, in model order, keyed by its name ``3_ZLinear``):

* ``grad_norm``   L2 norm of all gradients of the layer's parameters (√Σ‖g‖²); layers whose
                  parameters have no gradient this step (frozen, or sub-layers not evaluated)
                  read 0.0. Must be captured after ``backward()`` and before ``optimizer.step()``
                  / ``zero_grad()`` of that step.
* ``weight_norm`` L2 norm of all the layer's parameters (√Σ‖θ‖²).
* ``depth_w`` / ``depth``  for every module with attributes ``w`` and ``depth`` (``InfiniteDepth``),
                  keyed by its dotted module path: the raw w and the active depth max(0, ⌈w⌉)
                  (capped at the module's ``max_depth`` when it has one).
* ``hardness``    for every module with a ``hardness`` parameter (Z layers), its mean.

How it stays cheap: :meth:`Probes.read` — the one place probes are read, by the trainer at every
emit and by :meth:`Probes.values` — runs ONE ``torch._foreach_norm`` over every gradient and every
parameter, stacks those norms with the depth and hardness values and the caller's extra device
scalars (the trainer's window losses and correct-prediction count) into one device vector, and
copies it to the host with ONE ``.tolist()`` — the only host sync of an emit. The per-layer
combination √Σ‖·‖² over each layer's parameters is done on the host with the precomputed
parameter → layer index (a few float additions; no device op per layer). Under DDP the trainer
passes a ``reduce`` that all-reduces the extra scalars before that copy; the probe figures
themselves need no reduction (see :mod:`workbench.distributed`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

__all__ = ["Probes", "ProbeValues", "first_nonfinite_layer"]


@dataclass
class ProbeValues:
    """Host copies of one probe capture (plain floats/ints; see the module docstring for units)."""

    grad_norm: dict[str, float] = field(default_factory=dict)
    weight_norm: dict[str, float] = field(default_factory=dict)
    depth_w: dict[str, float] = field(default_factory=dict)
    depth: dict[str, int] = field(default_factory=dict)
    hardness: dict[str, float] = field(default_factory=dict)


def first_nonfinite_layer(values: ProbeValues, layer_names: Sequence[str]) -> str | None:
    """The first layer (model order) whose gradient or weight norm is NaN/inf, else None."""
    for name in layer_names:
        g = values.grad_norm.get(name, 0.0)
        if not math.isfinite(g):
            return name
    for name in layer_names:
        w = values.weight_norm.get(name, 0.0)
        if not math.isfinite(w):
            return name
    return None


class Probes:
    """Probe plan for one model: which parameter belongs to which top-level layer, and which
    modules report learned depth and hardness. Build once per run (after the model is on its device)."""

    def __init__(self, model: nn.Module, device: torch.device | str | None = None) -> None:
        self.model = model
        self.layer_names: list[str] = [name for name, _ in model.named_children()]
        params: list[nn.Parameter] = []
        owner: list[int] = []
        seen: set[int] = set()
        groups = list(model.named_children())
        for li, (_, child) in enumerate(groups):
            for p in child.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    params.append(p)
                    owner.append(li)
        loose = [p for p in model.parameters() if id(p) not in seen]
        if loose:  # parameters registered on the root itself
            self.layer_names.append("(model)")
            for p in loose:
                seen.add(id(p))
                params.append(p)
                owner.append(len(self.layer_names) - 1)
        if device is None:
            device = params[0].device if params else torch.device("cpu")
        self.device = torch.device(device)
        self.params = params
        self.owner = owner
        self.n_layers = len(self.layer_names)
        # parameters are listed layer by layer, so each layer owns one contiguous slice
        self._spans = [(name, owner.index(i) if i in owner else 0, (len(owner) - owner[::-1].index(i)) if i in owner else 0)
                       for i, name in enumerate(self.layer_names)]
        self.last_mask: tuple[bool, ...] | None = None
        self._detached = [p.detach() for p in params]  # views sharing storage: always current values
        self.depth_modules: list[tuple[str, nn.Module]] = []
        self.hardness_modules: list[tuple[str, nn.Module]] = []
        for path, mod in model.named_modules():
            if not path:
                continue
            if _has_attr(mod, "w") and _has_attr(mod, "depth") and isinstance(getattr(mod, "w", None), torch.Tensor):
                self.depth_modules.append((path, mod))
            h = mod._parameters.get("hardness") if hasattr(mod, "_parameters") else None
            if isinstance(h, torch.Tensor):
                self.hardness_modules.append((path, mod))

    @property
    def depth_layers(self) -> tuple[str, ...]:
        return tuple(p for p, _ in self.depth_modules)

    @property
    def hardness_layers(self) -> tuple[str, ...]:
        return tuple(p for p, _ in self.hardness_modules)

    # -----------------------------------------------------------------------------------------
    def capture_parts(self) -> list[torch.Tensor]:
        """The probe figures as 0-d device tensors, in :meth:`decode` order: ‖g‖ of each present
        gradient, ‖θ‖ of every parameter (both from ONE ``_foreach_norm``), then w of each depth
        module and the mean hardness of each Z module. Device work only (no host sync)."""
        params = self.params
        grads = [p.grad for p in params]
        present = [g for g in grads if g is not None]
        self.last_mask = None if len(present) == len(params) else tuple(g is not None for g in grads)
        tensors = present + self._detached  # detached views / grads: no autograd recording
        parts: list[torch.Tensor] = list(torch._foreach_norm(tensors)) if tensors else []
        if self.depth_modules:
            parts.extend(m.w.detach().reshape(()) for _, m in self.depth_modules)
        if self.hardness_modules:
            parts.extend(m.hardness.detach().mean() for _, m in self.hardness_modules)
        return parts

    def read(self, extra: Sequence[torch.Tensor] = (),
             reduce: Callable[[list[torch.Tensor]], torch.Tensor] | None = None
             ) -> tuple[ProbeValues, list[float], bool]:
        """Capture the probes and copy them, with ``extra`` (0-d device tensors the caller wants on
        the host too), to the host in ONE ``.tolist()``. ``reduce`` (optional) turns ``extra`` into
        a 1-D device vector first (the trainer's all-reduce under DDP); its values are returned in
        place of ``extra``'s. Returns (probe values, the extra values, whether every value is finite)."""
        parts = self.capture_parts()
        n = len(parts)
        if reduce is None:
            parts.extend(extra)
            flat = torch.stack(parts).tolist() if parts else []
        else:
            reduced = reduce(list(extra)).float()
            flat = (torch.cat([torch.stack(parts).float(), reduced]) if parts else reduced).tolist()
        return self.decode(flat[:n], self.last_mask), flat[n:], math.isfinite(sum(flat))

    @property
    def n_values(self) -> int:
        """Length of the last capture (present gradients + parameters + depth + hardness)."""
        n_grads = len(self.params) if self.last_mask is None else sum(self.last_mask)
        return n_grads + len(self.params) + len(self.depth_modules) + len(self.hardness_modules)

    def decode(self, flat: Sequence[float], mask: tuple[bool, ...] | None = None) -> ProbeValues:
        """Turn a host copy of :meth:`capture`'s vector into named per-layer mappings. ``mask``
        says which parameters had a gradient (None: all of them)."""
        L = self.n_layers
        names = self.layer_names
        owner = self.owner
        if mask is None:  # every parameter has a gradient: contiguous per-layer slices, C-level hypot
            np_ = len(owner)
            spans = self._spans
            out = ProbeValues(grad_norm={n: math.hypot(*flat[a:b]) for n, a, b in spans},
                              weight_norm={n: math.hypot(*flat[np_ + a:np_ + b]) for n, a, b in spans})
            self._decode_extras(out, flat, 2 * np_)
            return out
        g_sq = [0.0] * L
        w_sq = [0.0] * L
        grad_owners = owner if mask is None else [o for o, m in zip(owner, mask) if m]
        ng = len(grad_owners)
        for o, v in zip(grad_owners, flat[:ng]):
            g_sq[o] += v * v
        np_ = len(owner)
        for o, v in zip(owner, flat[ng:ng + np_]):
            w_sq[o] += v * v
        out = ProbeValues(grad_norm={names[i]: math.sqrt(g_sq[i]) for i in range(L)},
                          weight_norm={names[i]: math.sqrt(w_sq[i]) for i in range(L)})
        self._decode_extras(out, flat, ng + np_)
        return out

    def _decode_extras(self, out: ProbeValues, flat: Sequence[float], pos: int) -> None:
        for path, mod in self.depth_modules:
            w = float(flat[pos])
            pos += 1
            out.depth_w[path] = w
            out.depth[path] = _active_depth(w, getattr(mod, "max_depth", None))
        for path, _ in self.hardness_modules:
            out.hardness[path] = float(flat[pos])
            pos += 1

    def values(self) -> ProbeValues:
        """Capture and read in one go (one host sync)."""
        return self.read()[0]


def _has_attr(mod: nn.Module, name: str) -> bool:
    try:
        return name in dir(type(mod)) or name in mod.__dict__ or name in mod._parameters
    except Exception:
        return False


def _active_depth(w: float, max_depth: int | None) -> int:
    if not math.isfinite(w):
        return 0 if w < 0 else (int(max_depth) if max_depth else 0)
    d = max(0, math.ceil(w))
    return min(d, int(max_depth)) if max_depth else d
