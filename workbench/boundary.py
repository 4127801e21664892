"""Decision boundary of a model with two input features: its prediction over a grid of the plane.

For a data set whose samples have shape (2,) (checkerboard, spirals, a two-column CSV), the model
is evaluated at the centres of a ``resolution`` × ``resolution`` grid covering the data (the
smallest box holding every training and validation point, widened by :data:`MARGIN` of its size on
each side). Classification gives each cell its predicted class and that class's probability
(:func:`workbench.predictions.class_probabilities`); regression gives the first target's predicted
value in target units.

Two consumers:

* :mod:`workbench.evaluation` computes the grid of a run's checkpoint (``decision_boundary.png``,
  the Evaluate page after training);
* :class:`BoundaryHook`, an emit hook (:mod:`workbench.hooks`), computes it *during* training on
  the training thread and sends it as a :class:`DecisionBoundary` event, after one
  :class:`BoundaryPoints` event with the data to draw on top.

Cost of the hook, bounded by construction: one batched forward of ``resolution``² points (under
``no_grad``, in ``eval()`` mode) at an emit, and only once at least
⌈``samples_per_point`` · ``resolution``² / batch size⌉ optimiser steps — ``samples_per_point`` ×
``resolution``² training samples — went by since the previous grid (:meth:`BoundaryHook.due`:
"every N emits", N the emits that take). A training sample costs a forward and a backward pass (≈ 3
forward passes of one sample), so at the default ``samples_per_point`` = 3 the grid's forward passes
are at most 1/9 of the run's forward-pass work in arithmetic, plus the first grid at the first emit.
In time they cost far less for the small models 2-D data train (a training step's per-batch work
dwarfs one large batched forward): bench/overhead.py ``--boundary`` measures it
(docs/benchmarks.md; the issue's limit: 2 % of the training time).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

if TYPE_CHECKING:  # annotations only
    import torch

# torch is imported inside the functions: the event classes are read on the GUI thread, which
# never imports torch for them

__all__ = ["DecisionBoundary", "BoundaryPoints", "BoundaryHook", "grid_extent", "grid_centres", "predict_grid",
           "boundary_points", "is_two_feature", "DEFAULT_RESOLUTION", "DEFAULT_SAMPLES_PER_POINT", "MAX_POINTS",
           "MARGIN"]

#: Grid cells per side (the grid has this many squared points).
DEFAULT_RESOLUTION = 64
#: Training samples between two grids, per grid point (see the module docstring).
DEFAULT_SAMPLES_PER_POINT = 3.0
#: The grid covers the data's bounding box widened by this fraction of its size on each side.
MARGIN = 0.05
#: At most this many points per split are drawn over the grid (every k-th point beyond).
MAX_POINTS = 5000


def is_two_feature(input_shape: Iterable[int]) -> bool:
    """Whether one sample of a data set is two numbers (a point of the plane): shape (2,)."""
    return tuple(int(d) for d in input_shape) == (2,)


@dataclass(frozen=True)
class DecisionBoundary:
    """The model's prediction over the grid at optimiser step ``step``.

    Cells are row-major: ``index = row · resolution + column``, row 0 at ``y_range[0]`` (the second
    feature), column 0 at ``x_range[0]`` (the first feature); a cell's centre is
    ``lo + (i + ½)·(hi − lo)/resolution``. Classification: ``classes`` (predicted class per cell)
    and ``confidence`` (its probability, in [0, 1]); regression: ``values`` (first target, target
    units). ``source`` says what model it shows: ``"live"`` (during training) or the checkpoint
    (``"best"``, ``"last"``)."""

    step: int
    epoch: int
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    resolution: int
    task: str
    n_classes: int = 0
    classes: tuple[int, ...] = ()
    confidence: tuple[float, ...] = ()
    values: tuple[float, ...] = ()
    source: str = "live"

    def class_grid(self) -> np.ndarray:
        """``classes`` as a (resolution, resolution) int array, row = y."""
        return np.asarray(self.classes, dtype=np.int64).reshape(self.resolution, self.resolution)

    def confidence_grid(self) -> np.ndarray:
        return np.asarray(self.confidence, dtype=np.float64).reshape(self.resolution, self.resolution)

    def value_grid(self) -> np.ndarray:
        return np.asarray(self.values, dtype=np.float64).reshape(self.resolution, self.resolution)


@dataclass(frozen=True)
class BoundaryPoints:
    """The data drawn over the grid: training and validation points (``*_x1``, ``*_x2``: the two
    features) with their labels (class index, or the first target in target units). Sent once per
    run; each split is thinned to at most :data:`MAX_POINTS` points (every k-th)."""

    task: str
    train_x1: tuple[float, ...]
    train_x2: tuple[float, ...]
    train_label: tuple[float, ...]
    val_x1: tuple[float, ...] = ()
    val_x2: tuple[float, ...] = ()
    val_label: tuple[float, ...] = ()
    train_total: int = 0
    val_total: int = 0


def grid_extent(data: Any, margin: float = MARGIN) -> tuple[tuple[float, float], tuple[float, float]]:
    """((x lo, x hi), (y lo, y hi)): the box holding every training and validation point of
    ``data`` (a :class:`workbench.data.LoadedData` with 2-feature samples), widened by ``margin``."""
    import torch

    xs = [data.train_x.reshape(-1, 2)]
    if getattr(data, "val_x", None) is not None:
        xs.append(data.val_x.reshape(-1, 2))
    pts = torch.cat(xs)
    lo, hi = torch.stack([pts.amin(0), pts.amax(0)]).double().cpu().tolist()
    out = []
    for a, b in zip(lo, hi):
        span = b - a
        if not math.isfinite(span) or span <= 0:
            span = 1.0 if not math.isfinite(span) or abs(a) < 1e-12 else abs(a)
            a, b = a - span / 2, b + span / 2
        out.append((float(a - margin * span), float(b + margin * span)))
    return out[0], out[1]


def grid_centres(x_range: tuple[float, float], y_range: tuple[float, float], resolution: int,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """The (resolution², 2) float32 cell centres, row-major (row = y), on ``device``."""
    import torch

    n = int(resolution)
    cx = torch.tensor([x_range[0] + (i + 0.5) * (x_range[1] - x_range[0]) / n for i in range(n)], dtype=torch.float64)
    cy = torch.tensor([y_range[0] + (i + 0.5) * (y_range[1] - y_range[0]) / n for i in range(n)], dtype=torch.float64)
    gy, gx = torch.meshgrid(cy, cx, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1).float().to(device)


def predict_grid(model: torch.nn.Module, points: torch.Tensor, *, task: str, kind: str, precision: str = "fp32",
                 target_scale: float = 1.0, target_mean: float = 0.0
                 ) -> tuple[list[int], list[float], list[float], int]:
    """(classes, confidence, values, n_classes) of ``model`` at ``points``: one batched forward.
    The caller sets ``eval()`` mode and ``no_grad``."""
    import torch

    from .predictions import class_probabilities, class_scores, forward

    out = forward(model, points, precision)
    if task == "regression":
        first = out.reshape(out.shape[0], -1)[:, 0]
        return [], [], (first.double() * float(target_scale) + float(target_mean)).tolist(), 0
    out = class_scores(out)        # one logit z of two classes → (0, z)
    probs = class_probabilities(out, kind)
    pred = out.argmax(-1)
    conf = probs.gather(1, pred[:, None])[:, 0]
    both = torch.stack([pred.float(), conf]).tolist()   # one host copy
    return [int(c) for c in both[0]], both[1], [], int(out.shape[-1])


def _thinned(x: torch.Tensor | None, y: torch.Tensor | None, task: str, scale: float, mean: float,
             limit: int) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...], int]:
    if x is None or y is None or x.shape[0] == 0:
        return (), (), (), 0
    n = int(x.shape[0])
    step = max(1, math.ceil(n / limit))
    xs = x.reshape(n, 2)[::step].double().cpu()
    if task == "regression":
        labels = (y.reshape(n, -1)[::step, 0].double().cpu() * scale + mean).tolist()
    else:
        labels = [float(v) for v in y[::step].cpu().tolist()]
    return tuple(xs[:, 0].tolist()), tuple(xs[:, 1].tolist()), tuple(labels), n


def boundary_points(data: Any, limit: int = MAX_POINTS) -> BoundaryPoints:
    """The training and validation points of ``data`` for drawing (each split thinned to ``limit``)."""
    from .predictions import target_offset

    task = "regression" if data.task == "regression" else "classification"
    scale = float(getattr(data, "target_scale", 1.0))
    mean = target_offset(getattr(data, "notes", {}), 1)[0]
    tx1, tx2, tl, tn = _thinned(data.train_x, data.train_y, task, scale, mean, limit)
    vx1, vx2, vl, vn = _thinned(getattr(data, "val_x", None), getattr(data, "val_y", None), task, scale, mean, limit)
    return BoundaryPoints(task, tx1, tx2, tl, vx1, vx2, vl, tn, vn)


def boundary_of(model: torch.nn.Module, data: Any, preset: Any, *, step: int, epoch: int, source: str,
                resolution: int = DEFAULT_RESOLUTION) -> DecisionBoundary:
    """The grid of ``model`` over ``data``'s plane (``model`` already in eval mode, under no_grad)."""
    from .predictions import loss_kind, target_offset

    task = "regression" if data.task == "regression" else "classification"
    x_range, y_range = grid_extent(data)
    points = grid_centres(x_range, y_range, resolution, data.device)
    classes, conf, values, k = predict_grid(
        model, points, task=task, kind=loss_kind(preset.task, data.task),
        precision=str(getattr(preset.train, "precision", "fp32")), target_scale=float(data.target_scale),
        target_mean=target_offset(getattr(data, "notes", {}), 1)[0])
    return DecisionBoundary(step=int(step), epoch=int(epoch), x_range=x_range, y_range=y_range,
                            resolution=int(resolution), task=task, n_classes=k, classes=tuple(classes),
                            confidence=tuple(conf), values=tuple(values), source=source)


class BoundaryHook:
    """Emit hook (``Trainer(..., emit_hooks=[BoundaryHook(preset)])``) sending the live decision
    boundary of a 2-feature task: :class:`BoundaryPoints` and a first :class:`DecisionBoundary` at
    the run's first emit, then a :class:`DecisionBoundary` at every emit at least
    :attr:`steps_between` optimiser steps after the previous one. A data set whose
    samples are not two numbers makes it send nothing.

    Runs on the training thread; builds its grid tensor there, on the run's device, at its first
    call. Draws no random numbers and changes nothing in the model (``evaluating``: eval mode and
    no_grad for the forward, then the mode the model had)."""

    __name__ = "decision_boundary"

    def __init__(self, preset: Any, *, resolution: int = DEFAULT_RESOLUTION,
                 samples_per_point: float = DEFAULT_SAMPLES_PER_POINT) -> None:
        if resolution < 2:
            raise ValueError(f"resolution must be at least 2, got {resolution}")
        if not samples_per_point > 0:
            raise ValueError(f"samples_per_point must be positive, got {samples_per_point}")
        self.preset = preset
        self.resolution = int(resolution)
        self.samples_per_point = float(samples_per_point)
        self.batch_size = max(1, int(getattr(preset.task, "batch_size", 1)))
        self.grids = 0                 # grids computed so far (tests, benchmarks)
        self._points: Any = None      # the grid's centres, a tensor on the run's device
        self._extent: tuple[tuple[float, float], tuple[float, float]] | None = None
        self._last_step: int | None = None
        self._active: bool | None = None

    @property
    def steps_between(self) -> int:
        """Optimiser steps between two grids: ⌈``samples_per_point`` · resolution² / batch size⌉."""
        return math.ceil(self.samples_per_point * self.resolution ** 2 / self.batch_size)

    def due(self, step: int) -> bool:
        """Whether a grid is due at an emit at optimiser ``step``."""
        return self._last_step is None or step - self._last_step >= self.steps_between

    def __call__(self, context: Any) -> list[Any] | None:
        from .hooks import evaluating
        from .predictions import loss_kind, target_offset

        data = context.data
        if self._active is None:
            self._active = is_two_feature(getattr(data, "input_shape", ()))
        if not self._active:
            return None
        step = int(context.metrics.step)
        if not self.due(step):
            return None
        out: list[Any] = []
        if self._points is None:
            self._extent = grid_extent(data)
            self._points = grid_centres(*self._extent, self.resolution, context.device)
            out.append(boundary_points(data))
        task = "regression" if data.task == "regression" else "classification"
        with evaluating(context.model) as model:     # eval() and no_grad, then the mode it had
            classes, conf, values, k = predict_grid(
                model, self._points, task=task, kind=loss_kind(self.preset.task, data.task),
                precision=str(getattr(self.preset.train, "precision", "fp32")),
                target_scale=float(data.target_scale), target_mean=target_offset(getattr(data, "notes", {}), 1)[0])
        self._last_step = step
        self.grids += 1
        assert self._extent is not None
        out.append(DecisionBoundary(step=step, epoch=int(context.metrics.epoch), x_range=self._extent[0],
                                    y_range=self._extent[1], resolution=self.resolution, task=task, n_classes=k,
                                    classes=tuple(classes), confidence=tuple(conf), values=tuple(values)))
        return out
