"""Numpy buffers that hold a run's curves between the worker's events and the plots' redraws.

The worker thread never touches a plot: its events land here (on the GUI thread), and the
dashboard's timer redraws the plots from these arrays. Nothing in this module imports Qt or torch.

* :class:`Series` — one growable (x, y) pair of float64 arrays; ``append`` is amortised O(1)
  (capacity doubles), ``x``/``y`` are views without copies.
* :class:`RunBuffers` — every series of one run, keyed by name (see :data:`SERIES_HELP`), fed by
  :meth:`RunBuffers.ingest` with live :mod:`workbench.events` or by :meth:`RunBuffers.ingest_record`
  with the flat ``metrics.jsonl`` records of a finished run.
* :func:`ema` — TensorBoard-style debiased exponential moving average.
* :func:`minmax_decimate` — keep the min and max of each bin so spikes survive downsampling.

Units: x is the optimiser step (:meth:`RunBuffers.x_values` maps steps to epochs or to training
seconds for the plots' other x axes); losses are in the loss's own units; accuracies are fractions in
[0, 1] (the plots show per cent); ``samples_per_s`` is training samples per wall-clock second;
gradient norms are L2 norms.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping

import numpy as np


from workbench.events import EpochEnd, Failed, Finished, Metrics, RunStarted, RunSummary, Stopped

__all__ = ["Series", "RunBuffers", "SERIES_HELP", "X_AXES", "SmoothedCache", "ema", "minmax_decimate"]

#: The series names a :class:`RunBuffers` may hold (per-layer ones take ``/<layer name>``).
SERIES_HELP: dict[str, str] = {
    "loss": "training loss, mean over the steps since the previous emit",
    "val_loss": "validation loss at the end of each epoch",
    "train_loss_epoch": "training loss, mean over each epoch",
    "accuracy": "training accuracy (fraction) since the previous emit",
    "train_accuracy": "training accuracy (fraction) over each epoch",
    "val_accuracy": "validation accuracy (fraction) at the end of each epoch",
    "rmse": "training RMSE (target units) since the previous emit",
    "val_rmse": "validation RMSE (target units) at the end of each epoch",
    "samples_per_s": "training samples per wall-clock second",
    "lr": "learning rate of the first parameter group",
    "grad_norm/<layer>": "gradient L2 norm of the layer's parameters",
    "weight_norm/<layer>": "weight L2 norm of the layer's parameters",
    "depth_w/<layer>": "raw learned depth w of an InfiniteDepth layer",
    "depth/<layer>": "effective depth ceil(w) of an InfiniteDepth layer",
    "hardness/<layer>": "mean hardness of a Z layer",
    "epoch_at": "epochs done (fractional) at each emit, for the epoch x axis",
    "seconds_at": "training wall-clock seconds at each emit (pauses excluded), for the time x axis",
    "epoch_seconds": "training seconds at each epoch end (the time axis of runs written before seconds_at)",
}

#: The plots' x axes: what :meth:`RunBuffers.x_values` maps steps to.
X_AXES = ("step", "epoch", "time")


class Series:
    """A growable pair of float64 arrays (x, y). ``append`` is amortised O(1)."""

    __slots__ = ("_x", "_y", "_n")

    def __init__(self, capacity: int = 256) -> None:
        capacity = max(int(capacity), 1)
        self._x = np.empty(capacity, dtype=np.float64)
        self._y = np.empty(capacity, dtype=np.float64)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    @property
    def capacity(self) -> int:
        return len(self._x)

    def _reserve(self, needed: int) -> None:
        if needed <= len(self._x):
            return
        capacity = max(needed, 2 * len(self._x))
        for name in ("_x", "_y"):
            old = getattr(self, name)
            new = np.empty(capacity, dtype=np.float64)
            new[: self._n] = old[: self._n]
            setattr(self, name, new)

    def append(self, x: float, y: float) -> None:
        self._reserve(self._n + 1)
        self._x[self._n] = x
        self._y[self._n] = y
        self._n += 1

    def extend(self, xs: Iterable[float] | np.ndarray, ys: Iterable[float] | np.ndarray) -> None:
        xa = np.asarray(xs, dtype=np.float64).ravel()
        ya = np.asarray(ys, dtype=np.float64).ravel()
        if xa.shape != ya.shape:
            raise ValueError(f"x and y lengths differ: {xa.size} vs {ya.size}")
        self._reserve(self._n + xa.size)
        self._x[self._n : self._n + xa.size] = xa
        self._y[self._n : self._n + ya.size] = ya
        self._n += xa.size

    def clear(self) -> None:
        self._n = 0

    @property
    def x(self) -> np.ndarray:
        """The steps, a read-only view (no copy)."""
        view = self._x[: self._n]
        view.flags.writeable = False
        return view

    @property
    def y(self) -> np.ndarray:
        """The values, a read-only view (no copy)."""
        view = self._y[: self._n]
        view.flags.writeable = False
        return view

    def last(self) -> tuple[float, float] | None:
        if self._n == 0:
            return None
        return float(self._x[self._n - 1]), float(self._y[self._n - 1])


def _num(value: Any) -> float:
    """A JSON/event value as float; None and non-numbers become NaN (a gap in the curve)."""
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


@dataclass
class RunBuffers:
    """Every curve of one run, fed on the GUI thread.

    ``layer_names`` and ``depth_layers`` come from :class:`RunStarted` (or are discovered from
    ``metrics.jsonl`` keys for historic runs); ``version`` increases on every change so a view can
    tell whether it must redraw.
    """

    task: str = "classification"
    layer_names: list[str] = field(default_factory=list)
    depth_layers: list[str] = field(default_factory=list)
    started: RunStarted | None = None
    last_metrics: Metrics | None = None
    final: Finished | Stopped | Failed | None = None
    summary: RunSummary | None = None
    version: int = 0
    series: dict[str, Series] = field(default_factory=dict)

    # ------------------------------------------------------------------ access
    def get(self, name: str) -> Series:
        """The named series, created empty on first use."""
        s = self.series.get(name)
        if s is None:
            s = self.series[name] = Series()
        return s

    def has(self, name: str) -> bool:
        s = self.series.get(name)
        return s is not None and len(s) > 0

    def names(self, prefix: str = "") -> Iterator[str]:
        return (n for n in self.series if n.startswith(prefix))

    def layers_with(self, prefix: str) -> list[str]:
        """Layer names that have a non-empty ``prefix/<layer>`` series, in model order."""
        found = [n.split("/", 1)[1] for n in self.series if n.startswith(prefix + "/") and len(self.series[n])]
        order = {name: i for i, name in enumerate(self.layer_names)}
        return sorted(found, key=lambda n: (order.get(n.split(".")[0], len(order)), n))

    def grad_layers(self) -> list[str]:
        """Layers to show in the gradient plots: those with parameters (a non-zero weight norm at
        some point; without weight norms, a non-zero gradient norm). Parameter-free layers
        (Flatten, pooling) report a gradient norm of 0 and are left out."""
        out = []
        for layer in self.layers_with("grad_norm"):
            w = self.series.get(f"weight_norm/{layer}")
            if w is not None and len(w):
                if np.nanmax(np.abs(w.y)) > 0 if np.isfinite(w.y).any() else True:
                    out.append(layer)
            else:
                g = self.series[f"grad_norm/{layer}"].y
                if not np.isfinite(g).all() or np.nanmax(np.abs(g)) > 0:
                    out.append(layer)
        return out

    @property
    def is_regression(self) -> bool:
        return self.task == "regression"

    # ------------------------------------------------------------------ x axes
    def _clock(self, axis: str) -> Series | None:
        """The step → ``axis`` reference points (None when this run has none for that axis)."""
        names = {"epoch": ("epoch_at",), "time": ("seconds_at", "epoch_seconds")}[axis]
        for name in names:
            ref = self.series.get(name)
            if ref is not None and len(ref) and np.isfinite(ref.y).any():
                return ref
        return None

    def has_axis(self, axis: str) -> bool:
        """Whether :meth:`x_values` can map this run's steps to ``axis``."""
        return axis == "step" or self._clock(axis) is not None

    def x_values(self, steps: np.ndarray, axis: str = "step") -> np.ndarray:
        """``steps`` as ``axis`` values: "step" (unchanged), "epoch" (fractional epochs done) or
        "time" (training seconds), interpolated between the emits; NaN when the run has no such data."""
        steps = np.asarray(steps, dtype=np.float64)
        if axis == "step":
            return steps
        ref = self._clock(axis)
        if ref is None:
            return np.full(steps.shape, np.nan)
        xs, ys = np.asarray(ref.x), np.asarray(ref.y)
        keep = np.isfinite(ys)
        xs, ys = xs[keep], ys[keep]
        start = float(self.started.start_step) if self.started is not None else 0.0
        if xs[0] > start and start == 0.0:   # a fresh run starts at (0 steps, 0 epochs, 0 s)
            xs, ys = np.concatenate([[0.0], xs]), np.concatenate([[0.0], ys])
        return np.interp(steps, xs, ys)

    def x_extent(self, axis: str = "step") -> float | None:
        """How far this run's x axis goes: a live run's planned total (steps or epochs), else its last
        point; None when unknown (a live run's training time)."""
        live = self.started is not None and self.final is None
        if live and axis == "step":
            return float(self.started.total_steps)
        if live and axis == "epoch":
            return float(self.started.epochs)
        if live:
            return None
        last = self.get("loss").last() if self.has("loss") else None
        if last is None:
            return None
        value = float(self.x_values(np.array([last[0]]), axis)[0])
        return value if math.isfinite(value) else None

    # ------------------------------------------------------------------ live events
    def ingest(self, event: Any) -> None:
        """Add one :mod:`workbench.events` event."""
        if isinstance(event, RunStarted):
            self.started = event
            self.task = event.task
            self.layer_names = list(event.layer_names)
            self.depth_layers = list(event.depth_layers)
        elif isinstance(event, Metrics):
            self.last_metrics = event
            self._add_metrics(event.step, event.loss, event.accuracy, event.rmse, event.samples_per_s, event.lr,
                              event.grad_norm, event.weight_norm, event.depth_w, event.depth, event.hardness)
            self._add_clock(event.step, event.epoch_fraction, event.seconds)
        elif isinstance(event, EpochEnd):
            self._add_epoch(event.step, event.train_loss, event.val_loss, event.train_accuracy,
                            event.val_accuracy, event.train_rmse, event.val_rmse, event.seconds)
        elif isinstance(event, (Finished, Stopped, Failed)):
            self.final = event
            self.summary = event.summary
            self.task = event.summary.task or self.task
        else:
            return
        self.version += 1

    def ingest_all(self, events: Iterable[Any]) -> None:
        for event in events:
            self.ingest(event)

    def _add_metrics(self, step: float, loss: Any, accuracy: Any, rmse: Any, sps: Any, lr: Any,
                     grad: Mapping[str, Any], weight: Mapping[str, Any], depth_w: Mapping[str, Any],
                     depth: Mapping[str, Any], hardness: Mapping[str, Any]) -> None:
        self.get("loss").append(step, _num(loss))
        if accuracy is not None:
            self.get("accuracy").append(step, _num(accuracy))
        if rmse is not None:
            self.get("rmse").append(step, _num(rmse))
        self.get("samples_per_s").append(step, _num(sps))
        self.get("lr").append(step, _num(lr))
        for prefix, mapping in (("grad_norm", grad), ("weight_norm", weight), ("depth_w", depth_w),
                                ("depth", depth), ("hardness", hardness)):
            for name, value in mapping.items():
                self.get(f"{prefix}/{name}").append(step, _num(value))
                if prefix == "depth_w" and name not in self.depth_layers:
                    self.depth_layers.append(name)
                if prefix == "grad_norm" and name not in self.layer_names:
                    self.layer_names.append(name)

    def _add_clock(self, step: float, epoch_fraction: Any, seconds: Any) -> None:
        if epoch_fraction is not None:
            self.get("epoch_at").append(step, _num(epoch_fraction))
        if seconds is not None:
            self.get("seconds_at").append(step, _num(seconds))

    def _add_epoch(self, step: float, train_loss: Any, val_loss: Any, train_acc: Any, val_acc: Any,
                   train_rmse: Any, val_rmse: Any, epoch_seconds: Any = None) -> None:
        if epoch_seconds is not None:
            done = self.get("epoch_seconds")
            previous = done.last()[1] if len(done) else 0.0
            done.append(step, previous + _num(epoch_seconds))
        self.get("train_loss_epoch").append(step, _num(train_loss))
        for name, value in (("val_loss", val_loss), ("train_accuracy", train_acc), ("val_accuracy", val_acc),
                            ("train_rmse", train_rmse), ("val_rmse", val_rmse)):
            if value is not None:
                self.get(name).append(step, _num(value))
        if val_rmse is not None or train_rmse is not None:
            self.task = "regression"

    # ------------------------------------------------------------------ metrics.jsonl
    def ingest_record(self, record: Mapping[str, Any]) -> None:
        """Add one flat ``metrics.jsonl`` record (``Metrics.flat()`` / ``EpochEnd.flat()`` format)."""
        kind = record.get("kind", "metrics")
        if "step" not in record:
            return
        step = _num(record["step"])
        if kind == "epoch":
            self._add_epoch(step, record.get("train_loss"), record.get("val_loss"), record.get("train_accuracy"),
                            record.get("val_accuracy"), record.get("train_rmse"), record.get("val_rmse"),
                            record.get("seconds"))
        elif kind == "metrics":
            per_layer: dict[str, dict[str, Any]] = {p: {} for p in
                                                     ("grad_norm", "weight_norm", "depth_w", "depth", "hardness")}
            for key, value in record.items():
                if "/" in key:
                    prefix, name = key.split("/", 1)
                    if prefix in per_layer:
                        per_layer[prefix][name] = value
            self._add_metrics(step, record.get("loss"), record.get("accuracy"), record.get("rmse"),
                              record.get("samples_per_s"), record.get("lr"), per_layer["grad_norm"],
                              per_layer["weight_norm"], per_layer["depth_w"], per_layer["depth"],
                              per_layer["hardness"])
            self._add_clock(step, record.get("epoch_fraction"), record.get("seconds"))
            if record.get("rmse") is not None:
                self.task = "regression"
        else:
            return
        self.version += 1

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]], summary: RunSummary | None = None,
                     layer_names: Iterable[str] = ()) -> "RunBuffers":
        """Buffers of a finished run, from its ``metrics.jsonl`` records and ``summary.json``."""
        buf = cls(layer_names=list(layer_names))
        if summary is not None:
            buf.summary = summary
            buf.task = summary.task
        for record in records:
            buf.ingest_record(record)
        buf.version += 1
        return buf


def ema(values: np.ndarray, smoothing: float) -> np.ndarray:
    """TensorBoard's debiased exponential moving average.

    ``smoothing`` in [0, 1): 0 returns the values unchanged; 0.99 is very smooth. NaN/inf points
    are skipped (they keep the previous smoothed value) so one bad emit does not blank the curve.
    The first points are debiased (divided by 1 − smoothing^k) so the curve does not start at 0.
    """
    v = np.asarray(values, dtype=np.float64)
    if smoothing <= 0 or v.size == 0:
        return v.copy()
    s = min(float(smoothing), 0.999)
    finite = np.isfinite(v)
    if finite.all():
        return _ema_blocks(v, s)[0]
    # Non-finite points: smooth the finite ones, then hold the last smoothed value across the gaps.
    out = np.full_like(v, math.nan)
    idx = np.flatnonzero(finite)
    if idx.size == 0:
        return out
    smoothed = _ema_blocks(v[idx], s)[0]
    pos = np.searchsorted(idx, np.arange(v.size), side="right") - 1
    have = pos >= 0
    out[have] = smoothed[pos[have]]
    return out


def _ema_blocks(v: np.ndarray, s: float, carry: float = 0.0, done: int = 0) -> tuple[np.ndarray, float, int]:
    """Vectorised debiased EMA of finite input, continuing from ``carry`` (the un-debiased EMA after
    ``done`` points).

    e_t = s·e_{t−1} + (1−s)·x_t, reported debiased as e_t / (1 − s^t). The input is cut into blocks
    short enough that s^−block stays below 1e100; inside block b, with j = 0..B−1,
    e_{b,j} = (1−s)·s^j·Σ_{i≤j} s^−i·x_{b,i} + s^(j+1)·E_{b−1}, where E_{b−1} is the previous block's last
    value. The first term is one 2-D ``cumsum`` for all blocks; only the scalar carries E_b run in a
    Python loop (one step per block)."""
    n = int(v.size)
    if n == 0:
        return np.empty(0, dtype=np.float64), carry, done
    block = int(max(1, min(4096, math.floor(100 * math.log(10) / -math.log(s)))))
    block = min(block, n)
    n_blocks = -(-n // block)
    x = np.zeros(n_blocks * block, dtype=np.float64)
    x[:n] = v
    x = x.reshape(n_blocks, block)
    j = np.arange(block, dtype=np.float64)
    inv = s ** -j                  # s^0 .. s^-(B-1)
    powers = s ** (j + 1)          # s^1 .. s^B
    local = np.cumsum(x * inv, axis=1) * ((1 - s) / inv)   # each block's EMA from a zero start
    starts = np.empty(n_blocks, dtype=np.float64)
    decay = s ** block
    for b, end in enumerate(local[:, -1].tolist()):
        starts[b] = carry
        carry = end + decay * carry
    e = (local + np.outer(starts, powers)).reshape(-1)[:n]
    last = float(e[-1])
    # debias only while s^t is visible in float64 (t < 37 / −log10 s); beyond, 1 − s^t == 1
    horizon = int(math.ceil(37.0 / -math.log10(s)))
    m = min(n, max(horizon - done, 0))
    if m:
        e[:m] /= 1 - s ** (done + np.arange(1, m + 1, dtype=np.float64))
    return e, last, done + n


class SmoothedCache:
    """Keeps the EMA of a growing :class:`Series` up to date in O(new points) per redraw."""

    def __init__(self) -> None:
        self._key: tuple[int, float] | None = None
        self._out = Series()
        self._carry = 0.0
        self._done = 0
        self._last = math.nan

    def update(self, series: Series, smoothing: float) -> np.ndarray:
        """The smoothed values of ``series`` (same length), recomputing only what is new."""
        key = (id(series), float(smoothing))
        n = len(series)
        if key != self._key or n < len(self._out):
            self._key = key
            self._out.clear()
            self._carry, self._done, self._last = 0.0, 0, math.nan
        start = len(self._out)
        if n > start:
            new = np.asarray(series.y[start:n])
            if smoothing <= 0:
                self._out.extend(series.x[start:n], new)
            else:
                s = min(float(smoothing), 0.999)
                finite = np.isfinite(new)
                vals = np.full(new.size, math.nan)
                if finite.any():
                    sm, self._carry, self._done = _ema_blocks(new[finite], s, self._carry, self._done)
                    vals[finite] = sm
                # hold the last smoothed value across NaN/inf points
                last = self._last
                for i in np.flatnonzero(~finite) if not finite.all() else ():
                    prev = vals[i - 1] if i > 0 else last
                    vals[i] = prev
                if vals.size:
                    self._last = vals[-1]
                self._out.extend(series.x[start:n], vals)
        return self._out.y


def minmax_decimate(x: np.ndarray, y: np.ndarray, max_points: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """Down to about ``max_points`` points, keeping each bin's min and max (in x order).

    Series at or under the limit come back unchanged (no copy). A NaN in a bin is kept (it shows as
    a gap), so a non-finite loss stays visible however far the plot is zoomed out.
    """
    n = len(x)
    if n <= max_points or max_points < 4:
        return x, y
    bins = max_points // 2
    size = n // bins
    main = bins * size
    yb = np.asarray(y[:main]).reshape(bins, size)
    xb = np.asarray(x[:main]).reshape(bins, size)
    i_lo = yb.argmin(axis=1)
    i_hi = yb.argmax(axis=1)
    rows = np.arange(bins)
    first = np.minimum(i_lo, i_hi)
    second = np.maximum(i_lo, i_hi)
    tail = n - main
    out_x = np.empty(2 * bins + tail)
    out_y = np.empty(2 * bins + tail)
    out_x[0 : 2 * bins : 2] = xb[rows, first]
    out_x[1 : 2 * bins : 2] = xb[rows, second]
    out_y[0 : 2 * bins : 2] = yb[rows, first]
    out_y[1 : 2 * bins : 2] = yb[rows, second]
    out_x[2 * bins :] = x[main:]
    out_y[2 * bins :] = y[main:]
    return out_x, out_y
