"""ui.plot_buffers: growable series, run buffers fed by events or metrics.jsonl records, the
TensorBoard-style EMA (batch and incremental), min/max decimation."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ui.plot_buffers import RunBuffers, Series, SmoothedCache, ema, minmax_decimate
from workbench.events import EpochEnd, Finished, Metrics, RunStarted, RunSummary


def ema_reference(values, s):
    out, last, k = [], 0.0, 0
    for v in values:
        if math.isfinite(v):
            last = last * s + (1 - s) * v
            k += 1
        out.append(last / (1 - s ** k) if k else math.nan)
    return np.array(out)


def test_series_grows_by_doubling_and_keeps_values() -> None:
    s = Series(capacity=4)
    reallocations = 0
    capacity = s.capacity
    for i in range(10_000):
        s.append(i, 2 * i)
        if s.capacity != capacity:
            reallocations += 1
            capacity = s.capacity
    assert len(s) == 10_000
    assert reallocations <= 12          # amortised O(1): log2(10000/4) doublings
    assert np.array_equal(s.x, np.arange(10_000)) and np.array_equal(s.y, 2 * np.arange(10_000))
    s.extend(np.arange(3), np.arange(3))
    assert len(s) == 10_003 and s.last() == (2.0, 2.0)
    with pytest.raises(ValueError):
        s.y[0] = 1.0                    # views are read-only
    with pytest.raises(ValueError):
        s.extend([1, 2], [1])


def _events():
    layers = ("0_ZConv2d", "1_Flatten", "2_InfiniteDepth")
    yield RunStarted("p", None, "cpu", "CPU", "classification", 2, 10, 20, 100, 10, 10, 50, 50, layers,
                     ("2_InfiniteDepth",))
    for step in range(2, 21, 2):
        yield Metrics(step, step // 10, 0.1, 1.0 / step, 1e-3, 500.0 + step, accuracy=step / 20,
                      grad_norm={"0_ZConv2d": 0.5, "1_Flatten": 0.0, "2_InfiniteDepth": 0.1},
                      weight_norm={"0_ZConv2d": 2.0, "1_Flatten": 0.0, "2_InfiniteDepth": 1.0},
                      depth_w={"2_InfiniteDepth": 1 + step / 10}, depth={"2_InfiniteDepth": math.ceil(1 + step / 10)})
        if step % 10 == 0:
            yield EpochEnd(step // 10 - 1, step, 1.0, 0.5, 0.6, 0.7, 0.8)
    yield Finished(RunSummary("finished", "p", "classification", "cpu", steps=20))


def test_events_and_their_jsonl_records_give_the_same_series() -> None:
    live = RunBuffers()
    events = list(_events())
    live.ingest_all(events)
    records = [e.flat() for e in events if isinstance(e, (Metrics, EpochEnd))]
    saved = RunBuffers.from_records(records, events[-1].summary)
    assert live.final is events[-1] and live.summary.status == "finished"
    for name in ("loss", "accuracy", "samples_per_s", "val_loss", "val_accuracy", "train_accuracy",
                 "grad_norm/0_ZConv2d", "depth_w/2_InfiniteDepth", "depth/2_InfiniteDepth"):
        assert np.array_equal(live.get(name).x, saved.get(name).x), name
        assert np.array_equal(live.get(name).y, saved.get(name).y), name
    assert len(live.get("loss")) == 10 and len(live.get("val_loss")) == 2
    assert live.layers_with("grad_norm") == ["0_ZConv2d", "1_Flatten", "2_InfiniteDepth"]
    assert live.grad_layers() == saved.grad_layers() == ["0_ZConv2d", "2_InfiniteDepth"]  # Flatten has no params
    assert live.depth_layers == ["2_InfiniteDepth"] and saved.depth_layers == ["2_InfiniteDepth"]
    v = live.version
    live.ingest(object())               # unknown things are ignored
    assert live.version == v


def test_regression_runs_are_recognised_from_records() -> None:
    b = RunBuffers.from_records([{"kind": "metrics", "step": 1, "loss": 2.0, "rmse": 1.4, "samples_per_s": 10.0,
                                  "lr": 0.1},
                                 {"kind": "epoch", "epoch": 0, "step": 1, "train_loss": 2.0, "val_rmse": 1.2,
                                  "seconds": 1.0},
                                 {"kind": "metrics"}, {"unrelated": True}])
    assert b.is_regression and b.has("rmse") and b.has("val_rmse")
    assert len(b.get("loss")) == 1


@pytest.mark.parametrize("s", [0.0, 0.01, 0.6, 0.9, 0.99])
def test_ema_matches_the_tensorboard_formula(s) -> None:
    rng = np.random.default_rng(1)
    v = rng.normal(size=2000) + 3
    v[[0, 7, 500, 1999]] = [np.nan, np.inf, np.nan, np.nan]
    got = ema(v, s)
    want = ema_reference(v, s) if s > 0 else v
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, equal_nan=True)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=300), st.floats(0.0, 0.99),
       st.lists(st.integers(1, 40), min_size=1, max_size=20))
def test_incremental_ema_equals_the_batch_ema(values, s, chunks) -> None:
    series, cache = Series(), SmoothedCache()
    i = 0
    for size in chunks * 20:
        if i >= len(values):
            break
        part = values[i:i + size]
        series.extend(np.arange(i, i + len(part)), part)
        i += len(part)
        out = cache.update(series, s)
        assert len(out) == len(series)
    np.testing.assert_allclose(cache.update(series, s), ema(series.y, s), rtol=1e-9, atol=1e-9)


def test_minmax_decimation_keeps_spikes_order_and_size() -> None:
    rng = np.random.default_rng(0)
    x = np.arange(1_000_003, dtype=float)
    y = rng.normal(size=x.size)
    y[123_457] = 50.0
    y[900_001] = -50.0
    dx, dy = minmax_decimate(x, y, 4000)
    assert len(dx) <= 4000 + 1_000_003 // 2000
    assert dy.max() == 50.0 and dy.min() == -50.0
    assert np.all(np.diff(dx) >= 0)
    small_x, small_y = minmax_decimate(x[:100], y[:100], 4000)
    assert np.array_equal(small_x, x[:100]) and np.array_equal(small_y, y[:100])
