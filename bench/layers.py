"""Layer cost: forward+backward time of each palette layer against a vanilla layer of the same output size.

Run: ``.venv/bin/python bench/layers.py [--device cpu|cuda] [--repeats N] [--warmup N] [--threads N]``

Each measurement is one training-style step on a fixed batch: ``m(x)``, ``.sum().backward()`` with
``x.requires_grad`` (a layer inside a network also back-propagates to its input), grads reset to
None before each step. Reported: the median over ``--repeats`` timed steps after ``--warmup``
untimed ones, in milliseconds; layer and reference are timed alternately and the ratio column is
the median of the paired ratios (robust on a shared CPU). On a CPU shared with other jobs, use
``--threads 1``: oversubscribed OpenMP threads make multi-threaded timings vary tenfold. Prints
Markdown tables (paste them into docs/benchmarks.md) and the two checks the palette promises: fused
Z routes are cheaper than separate convolutions, and a Han-layer's cost grows linearly, not
quadratically, with the width.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch
from torch import nn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from layers import (  # noqa: E402
    CCPPolynomial,
    HanLayer,
    InfiniteDepth,
    PiBlock2d,
    ProductConv2d,
    SoftPool2d,
    TwistBasicBlock,
    TwistConv2d,
    ZConv2d,
    ZLinear,
    softmean,
)


# ----------------------------------------------------------------------------- vanilla references
class SeparateRoutesConv2d(nn.Module):
    """The unfused Z conv: R separate convolutions, stacked, merged by the same soft mean."""

    def __init__(self, cin: int, cout: int, routes: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(cin, cout, 3, padding=1) for _ in range(routes))
        self.hardness = nn.Parameter(torch.randn(cout, routes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.stack([conv(x) for conv in self.convs], dim=2)  # (N, out, R, H, W)
        return softmean(h, self.hardness[:, :, None, None], dim=2)


class SeparateConvs(nn.Module):
    """R plain convolutions run one after another on the same input (outputs summed)."""

    def __init__(self, cin: int, cout: int, routes: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(cin, cout, 3, padding=1) for _ in range(routes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.convs[0](x)
        for conv in self.convs[1:]:
            out = out + conv(x)
        return out


class ReLUBasicBlock(nn.Module):
    """ResNet BasicBlock: relu(BN(conv(relu(BN(conv x)))) + x)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))) + x)


class ResidualStack(nn.Module):
    """k residual sub-layers with ReLU, g ← relu(g + f_i(g)): InfiniteDepth without the gate."""

    def __init__(self, make: Callable[[int], nn.Module], depth: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(make(i) for i in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.relu(x + layer(x))
        return x


def dense_bn(width: int) -> Callable[[int], nn.Module]:
    return lambda i: nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width))


# ----------------------------------------------------------------------------- timing
def _stepper(module: nn.Module, shape: tuple[int, ...], device: torch.device) -> Callable[[], float]:
    """A closure running one forward+backward step of ``module``; returns its wall time in ms."""
    torch.manual_seed(0)
    module = module.to(device).train()
    x = torch.randn(*shape, device=device, requires_grad=True)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step() -> float:
        module.zero_grad(set_to_none=True)
        x.grad = None
        sync()
        start = time.perf_counter()
        module(x).sum().backward()
        sync()
        return (time.perf_counter() - start) * 1e3

    return step


def compare_ms(make_a: Callable[[], nn.Module], make_b: Callable[[], nn.Module], shape: tuple[int, ...],
               device: torch.device, warmup: int, repeats: int) -> tuple[float, float, float]:
    """Median step times (ms) of two modules and the median of their paired ratios.

    The two are timed alternately, so each pair sees the same machine load; the ratio of a pair is
    therefore robust to load that drifts during the run (a shared or throttled CPU).
    """
    a, b = _stepper(make_a(), shape, device), _stepper(make_b(), shape, device)
    for _ in range(warmup):
        a(), b()
    times_a, times_b = [], []
    for _ in range(repeats):
        times_a.append(a())
        times_b.append(b())
    ratio = statistics.median(ta / tb for ta, tb in zip(times_a, times_b))
    return statistics.median(times_a), statistics.median(times_b), ratio


def time_ms(module: nn.Module, shape: tuple[int, ...], device: torch.device, warmup: int, repeats: int) -> float:
    step = _stepper(module, shape, device)
    for _ in range(warmup):
        step()
    return statistics.median(step() for _ in range(repeats))


@dataclass
class Row:
    layer: str
    vanilla: str
    shape: tuple[int, ...]
    make_layer: Callable[[], nn.Module]
    make_vanilla: Callable[[], nn.Module]


def rows() -> list[Row]:
    img = (8, 32, 32, 32)  # N, C, H, W
    vec = (256, 512)
    return [
        Row("ZConv2d(32→32, k3, routes=4)", "Conv2d(32→32, k3)", img,
            lambda: ZConv2d(32, 32, 3, routes=4, padding=1), lambda: nn.Conv2d(32, 32, 3, padding=1)),
        Row("ZConv2d(32→32, k3, routes=4)", "4 × Conv2d(32→32, k3) + soft mean (unfused Z)", img,
            lambda: ZConv2d(32, 32, 3, routes=4, padding=1), lambda: SeparateRoutesConv2d(32, 32, 4)),
        Row("ZConv2d(32→32, k3, routes=4)", "4 × Conv2d(32→32, k3), summed", img,
            lambda: ZConv2d(32, 32, 3, routes=4, padding=1), lambda: SeparateConvs(32, 32, 4)),
        Row("Conv2d(32→128, k3) (ZConv2d's fused inner conv)", "4 × Conv2d(32→32, k3), summed", img,
            lambda: nn.Conv2d(32, 128, 3, padding=1), lambda: SeparateConvs(32, 32, 4)),
        Row("ZConv2d(…, share_weights=False)", "Conv2d(32→32, k3)", img,
            lambda: ZConv2d(32, 32, 3, routes=4, padding=1, share_weights=False),
            lambda: nn.Conv2d(32, 32, 3, padding=1)),
        Row("ZLinear(512→512, routes=4)", "Linear(512→512)", vec,
            lambda: ZLinear(512, 512, routes=4), lambda: nn.Linear(512, 512)),
        Row("SoftPool2d(32, k2, s2)", "AvgPool2d(2)", img, lambda: SoftPool2d(32), lambda: nn.AvgPool2d(2)),
        Row("SoftPool2d(32, k3, s2) (overlapping)", "AvgPool2d(3, 2)", img,
            lambda: SoftPool2d(32, kernel_size=3, stride=2), lambda: nn.AvgPool2d(3, 2)),
        Row("HanLayer(256)", "Linear(256→256)", (256, 256), lambda: HanLayer(256), lambda: nn.Linear(256, 256)),
        Row("HanLayer(1024)", "Linear(1024→1024)", (256, 1024), lambda: HanLayer(1024),
            lambda: nn.Linear(1024, 1024)),
        Row("HanLayer(4096)", "Linear(4096→4096)", (256, 4096), lambda: HanLayer(4096),
            lambda: nn.Linear(4096, 4096)),
        Row("ProductConv2d(32→32, k3)", "Conv2d(32→32, k3)", img,
            lambda: ProductConv2d(32, 32, 3, padding=1), lambda: nn.Conv2d(32, 32, 3, padding=1)),
        Row("PiBlock2d(32→32)", "ReLU BasicBlock(32)", img, lambda: PiBlock2d(32, 32), lambda: ReLUBasicBlock(32)),
        Row("PiBlock2d(32→32, product_conv1x1)", "ReLU BasicBlock(32)", img,
            lambda: PiBlock2d(32, 32, product_conv1x1=True), lambda: ReLUBasicBlock(32)),
        Row("CCPPolynomial(512, 512, 512, degree=3)", "Linear(512→512)", vec,
            lambda: CCPPolynomial(512, 512, 512, degree=3), lambda: nn.Linear(512, 512)),
        Row("TwistConv2d(32→32, k3)", "Conv2d(32→32, k3, no bias)", img,
            lambda: TwistConv2d(32, 32), lambda: nn.Conv2d(32, 32, 3, padding=1, bias=False)),
        Row("TwistBasicBlock(32→32)", "TwistBasicBlock(twist=False)", img,
            lambda: TwistBasicBlock(32, 32), lambda: TwistBasicBlock(32, 32, twist=False)),
        Row("InfiniteDepth(w=3, Linear(512)+BN)", "3 residual Linear(512)+BN, ReLU", vec,
            lambda: InfiniteDepth(dense_bn(512), init_w=3.0, max_depth=8),
            lambda: ResidualStack(dense_bn(512), 3)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--repeats", type=int, default=11, help="timed steps per layer (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before timing")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = leave as is)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else (platform.processor() or platform.machine())
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# Layer cost — torch {torch.__version__}, device {args.device} ({name}), {os.cpu_count()} CPUs, "
          f"{torch.get_num_threads()} torch threads, load average {load:.1f} at start; median of {args.repeats} "
          f"after {args.warmup} warm-up, forward+backward per step\n")

    results: dict[tuple[str, str], tuple[float, float, float]] = {}
    print("| layer | vanilla reference | input shape | layer ms | vanilla ms | layer ÷ vanilla |")
    print("|---|---|---|---:|---:|---:|")
    for row in rows():
        t_layer, t_vanilla, ratio = compare_ms(row.make_layer, row.make_vanilla, row.shape, device,
                                               args.warmup, args.repeats)
        results[(row.layer, row.vanilla)] = (t_layer, t_vanilla, ratio)
        shape = "×".join(str(s) for s in row.shape)
        print(f"| {row.layer} | {row.vanilla} | {shape} | {t_layer:.2f} | {t_vanilla:.2f} | {ratio:.2f} |",
              flush=True)

    # Han-layer scaling at a fixed number of batch·d elements (2^19), so every row moves the same amount of
    # memory: an O(d)-per-sample layer then costs the same per step at every width (per-sample time ∝ d),
    # while a d×d matmul costs d/256 times more per step (per-sample time ∝ d²).
    elements = 1 << 19
    print(f"\n| width d | batch (batch·d = {elements}) | HanLayer ms | Linear(d→d) ms | HanLayer µs per sample |"
          " per-sample time ÷ d=256 |")
    print("|---:|---:|---:|---:|---:|---:|")
    han: dict[int, float] = {}
    for d in (256, 1024, 4096, 16384):
        batch = elements // d
        if d <= 4096:
            han[d], lin, _ = compare_ms(partial(HanLayer, d), partial(nn.Linear, d, d), (batch, d), device,
                                        args.warmup, args.repeats)
            lin_text = f"{lin:.2f}"
        else:  # a 16384² weight is 1 GiB: no Linear reference
            han[d], lin_text = time_ms(HanLayer(d), (batch, d), device, args.warmup, args.repeats), "—"
        per_sample = han[d] * 1e3 / batch
        growth = per_sample / (han[256] * 1e3 / (elements // 256))
        print(f"| {d} | {batch} | {han[d]:.2f} | {lin_text} | {per_sample:.2f} | {growth:.1f} |", flush=True)

    fused, unfused, r_unfused = results[("ZConv2d(32→32, k3, routes=4)",
                                         "4 × Conv2d(32→32, k3) + soft mean (unfused Z)")]
    _, separate, r_separate = results[("ZConv2d(32→32, k3, routes=4)", "4 × Conv2d(32→32, k3), summed")]
    per_sample = {d: han[d] / (elements // d) for d in han}
    end_load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nLoad average at the end: {end_load:.1f}.\n\nChecks:")
    print(f"- ZConv2d, 4 routes in one fused conv: {fused:.2f} ms = {r_unfused:.2f}× the unfused Z layer "
          f"(4 separate convs + soft mean, {unfused:.2f} ms) and {r_separate:.2f}× 4 separate convs alone "
          f"({separate:.2f} ms).")
    print(f"- HanLayer per-sample time, d 256 → 4096 (16× the width): ×{per_sample[4096] / per_sample[256]:.1f}; "
          f"d 256 → 16384 (64×): ×{per_sample[16384] / per_sample[256]:.1f} "
          "(O(d): ×16 and ×64; O(d²): ×256 and ×4096).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
