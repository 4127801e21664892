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

How it stays cheap: :meth:`Probes.capture` runs ONE ``torch._foreach_norm`` over every gradient
and every parameter, squares, and sums per layer with a precomputed index (``index_add_``); the
depth and hardness values are appended, and the whole vector stays on the device.
:meth:`Probes.read` turns it (plus any extra device scalars the caller wants, e.g. the loss
accumulators) into Python floats with ONE ``.tolist()`` — the only host sync of an emit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

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
        self._index_cache: dict[tuple[bool, ...], torch.Tensor] = {}
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
    def _index(self, mask: tuple[bool, ...]) -> torch.Tensor:
        """Slot of each norm in the [grad × L, weight × L] vector: the owners of the present
        gradients, then the owners of all parameters shifted by L. Cached per gradient pattern."""
        idx = self._index_cache.get(mask)
        if idx is None:
            L = self.n_layers
            owners = [o for o, m in zip(self.owner, mask) if m] + [o + L for o in self.owner]
            idx = torch.tensor(owners, dtype=torch.long, device=self.device)
            self._index_cache[mask] = idx
        return idx

    @torch.no_grad()
    def capture(self) -> torch.Tensor:
        """One device vector: [grad_norm × L, weight_norm × L, w × D, mean hardness × H] (float32).

        Device work: one ``_foreach_norm`` over every present gradient and every parameter, one
        ``index_add_`` of the squared norms into per-layer slots, one ``sqrt``, one ``cat``."""
        L = self.n_layers
        grads = [p.grad for p in self.params]
        mask = tuple(g is not None for g in grads)
        tensors = [g for g in grads if g is not None] + self._detached
        if tensors:
            norms = torch.stack(torch._foreach_norm(tensors)).float()
            sq = torch.zeros(2 * L, device=self.device, dtype=torch.float32).index_add_(
                0, self._index(mask), norms * norms)
            parts = [sq.sqrt_()]
        else:
            parts = [torch.zeros(2 * L, device=self.device)]
        if self.depth_modules:
            parts.append(torch.stack([m.w.detach().reshape(()).float() for _, m in self.depth_modules]))
        if self.hardness_modules:
            parts.append(torch.stack([m.hardness.detach().float().mean() for _, m in self.hardness_modules]))
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def read(self, captured: torch.Tensor, extra: torch.Tensor | None = None) -> tuple[ProbeValues, list[float]]:
        """Copy ``captured`` (and ``extra``, any 1-D device vector) to the host with ONE ``.tolist()``."""
        if extra is not None:
            flat = torch.cat([captured, extra.reshape(-1).to(captured.dtype)]).tolist()
        else:
            flat = captured.tolist()
        n_probe = captured.numel()
        return self.decode(flat[:n_probe]), flat[n_probe:]

    def decode(self, flat: Sequence[float]) -> ProbeValues:
        """Split a host copy of :meth:`capture`'s vector into named mappings."""
        L = self.n_layers
        names = self.layer_names
        out = ProbeValues(
            grad_norm={names[i]: float(flat[i]) for i in range(L)},
            weight_norm={names[i]: float(flat[L + i]) for i in range(L)},
        )
        pos = 2 * L
        for path, mod in self.depth_modules:
            w = float(flat[pos])
            pos += 1
            out.depth_w[path] = w
            out.depth[path] = _active_depth(w, getattr(mod, "max_depth", None))
        for path, _ in self.hardness_modules:
            out.hardness[path] = float(flat[pos])
            pos += 1
        return out

    def values(self) -> ProbeValues:
        """Capture and read in one go (one host sync)."""
        return self.read(self.capture())[0]


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
