"""Trainer overhead: samples/s of ``workbench.trainer.Trainer`` (default probes on, no run folder)
÷ a bare PyTorch loop on the same model, data, batches, optimiser and device, in one process.

Method (after Lightning's parity tests, made robust to a shared machine): the trainer and a bare
loop train the same freshly seeded model on the same device-resident data with the same
device-side permutation and optimiser, in one process. Their epochs alternate — each bare epoch
runs inside the trainer's ``EpochEnd`` callback — so both see the same machine load. A trainer
epoch is timed from its start to the ``Metrics`` event of its last step (its validation pass is
outside); the first ``--warmup`` pairs are dropped. The headline ratio is (bare time) / (trainer
time) summed over the remaining pairs (= trainer samples/s ÷ bare samples/s, same samples); the
median of the per-pair ratios is printed beside it. Time is this thread's CPU time
(``time.thread_time``; exact with one intra-op thread, the default here, and insensitive to other
processes); the wall-clock ratio is printed beside it. The bare loop keeps no statistics at all
(no loss read-back, no accuracy, no probes): the ratio is the full price of monitoring.

Usage::

    python bench/overhead.py                                  # z-mnist (10,000 images) and mlp-relu-digits
    python bench/overhead.py --presets z-mnist --limit-train 10000 --epochs 8
    python bench/overhead.py --full-epoch                     # also: z-mnist seconds per full 60,000-image epoch

Prints a Markdown table (samples/s = training samples per wall-clock second).

``--boundary`` measures something else: the cost of the live decision boundary
(:class:`workbench.boundary.BoundaryHook`, at its default rate) as the ratio of the trainer's time
without it to the trainer's time with it, on hannet-checkerboard (the issue's limit: ≥ 0.98, i.e.
≤ 2 % of the training time). Two trainers of the same preset, one with the hook and one without,
run in two threads in lock step — one epoch of one, then one epoch of the other, never both at
once — so both see the same machine load; each one's time is its thread's CPU time over the whole
run (training, emits, hook, validation; from its ``RunStarted``). ``--repeats`` such pairs run one
after the other after one warm-up pair (which trainer goes first alternates); the median of their
ratios is the headline. Beside it, the in-place measurement: the trainer thread's CPU time spent
inside the hook ÷ that run's CPU time (free of
the A/B noise of a shared machine, ±2 % per pair here)::

    python bench/overhead.py --boundary --epochs 120 --repeats 5
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from workbench.data import load_dataset  # noqa: E402
from workbench.devices import device_name, resolve_device  # noqa: E402
from workbench.presets import resolve_preset  # noqa: E402
from workbench.spec import build_model  # noqa: E402
from workbench.events import EpochEnd, Metrics, RunStarted  # noqa: E402
from workbench.trainer import Trainer, make_optimizer, seed_everything  # noqa: E402

DEFAULT_MNIST = REPO.parent / "shared" / "data" / "mnist"


class BareLoop:
    """Plain PyTorch on the same data: same model init, optimiser and device-side batches; no
    statistics of any kind (no loss read-back, no accuracy, no probes)."""

    def __init__(self, preset, data, device) -> None:
        seed = int(preset.train.seed)
        seed_everything(seed)
        self.model = build_model(preset).to(device)
        self.opt = make_optimizer(self.model, preset.train)
        self.gen = torch.Generator(device=device)
        self.gen.manual_seed(seed)
        self.regs = [m for m in self.model.modules()
                     if m is not self.model and callable(getattr(m, "regularization", None))]
        self.data, self.device = data, device
        self.slices = data.batch_slices(int(preset.task.batch_size))

    def epoch(self) -> tuple[float, float, int]:
        """One epoch; returns (CPU seconds of this thread, wall seconds, samples)."""
        model, opt, data, gen, regs = self.model, self.opt, self.data, self.gen, self.regs
        loss_fn = torch.nn.functional.cross_entropy
        model.train()
        n = 0
        c0, w0 = time.thread_time(), time.perf_counter()
        perm = data.permutation(gen)
        for s0, s1 in self.slices:
            x, y = data.train_batch(perm, s0, s1, gen)
            loss = loss_fn(model(x), y)
            for m in regs:
                loss = loss + m.regularization()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            n += s1 - s0
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.thread_time() - c0, time.perf_counter() - w0, n


def measure(key: str, args: argparse.Namespace, every: int | None = None) -> dict:
    """Trainer epochs and bare-loop epochs alternate: the bare epoch runs inside the trainer's
    ``EpochEnd`` callback, so both see the same machine state within a fraction of a second."""
    preset = resolve_preset(key)
    preset.train.device = args.device
    if preset.task.dataset in ("mnist", "fashion-mnist") and args.limit_train:
        preset.task.limit_train = args.limit_train
    preset.train.epochs = args.warmup + args.epochs
    if every is not None:
        preset.monitor.every_steps = every
    device = resolve_device(args.device)
    data = load_dataset(preset.task, device, args.data_root, False, int(preset.train.seed))
    bare = BareLoop(preset, data, device)
    pairs: list[tuple[float, float, float, float, int]] = []  # trainer cpu, wall; bare cpu, wall; samples
    mark = {"c": 0.0, "w": 0.0, "t": None}

    def on_event(e) -> None:
        c, w = time.thread_time(), time.perf_counter()
        if isinstance(e, RunStarted):
            mark["c"], mark["w"] = c, w
        elif isinstance(e, Metrics) and abs(e.epoch_fraction - (e.epoch + 1)) < 1e-9:
            mark["t"] = (c - mark["c"], w - mark["w"])  # the trainer's epoch, up to its last step
        elif isinstance(e, EpochEnd):
            bc, bw, n = bare.epoch()
            tc, tw = mark["t"]
            pairs.append((tc, tw, bc, bw, n))
            print(f"  {key}: epoch {e.epoch}{' (warm-up, dropped)' if e.epoch < args.warmup else ''}: "
                  f"CPU-time ratio {bc / tc:.3f}, wall ratio {bw / tw:.3f} "
                  f"(trainer {n / tc:,.0f}, bare {n / bc:,.0f} samples/CPU-s)", file=sys.stderr)
            mark["c"], mark["w"] = time.thread_time(), time.perf_counter()

    summary = Trainer(preset, run_dir=None, data_root=args.data_root).run(on_event)
    if summary.status != "finished":
        raise SystemExit(f"trainer run failed: {summary.message}")
    kept = pairs[args.warmup:]
    med = statistics.median
    ratios = [p[2] / p[0] for p in kept]
    return {
        "key": key, "train_size": data.train_size, "batch": int(preset.task.batch_size),
        "every": int(preset.monitor.every_steps), "device": device, "epochs": len(kept),
        "trainer": med(p[4] / p[0] for p in kept), "bare": med(p[4] / p[2] for p in kept),
        "ratio": med(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
        "wall_trainer": med(p[4] / p[1] for p in kept), "wall_bare": med(p[4] / p[3] for p in kept),
        "wall_ratio": med(p[3] / p[1] for p in kept),
        "total_ratio": sum(p[2] for p in kept) / sum(p[0] for p in kept),
        "total_wall_ratio": sum(p[3] for p in kept) / sum(p[1] for p in kept),
    }


def boundary_pair(args: argparse.Namespace, first: str) -> dict:
    """One lock-step pair: the trainer with the boundary hook ("hook") and without ("plain"), each
    in its own thread, alternating epochs (``first`` starts). Returns each one's CPU seconds."""
    import threading

    from workbench.boundary import BoundaryHook

    presets, hooks = {}, {}
    for name in ("plain", "hook"):
        preset = resolve_preset("hannet-checkerboard")
        preset.train.device = args.device
        preset.train.epochs = args.epochs
        presets[name] = preset
    boundary = BoundaryHook(presets["hook"])
    in_hook = [0.0]

    def timed_hook(context):
        """The hook, with this thread's CPU time inside it added up (the in-place measurement)."""
        c = time.thread_time()
        try:
            return boundary(context)
        finally:
            in_hook[0] += time.thread_time() - c

    timed_hook.__name__ = boundary.__name__
    hooks["hook"] = [timed_hook]
    hooks["plain"] = []
    lock = threading.Condition()
    state = {"turn": first, "done": set()}
    cpu: dict[str, float] = {}
    result: dict[str, object] = {}
    other = {"plain": "hook", "hook": "plain"}

    def wait_turn(name: str) -> None:
        with lock:
            lock.wait_for(lambda: state["turn"] == name or other[name] in state["done"])

    def pass_turn(name: str, finished: bool = False) -> None:
        with lock:
            if finished:
                state["done"].add(name)
            state["turn"] = other[name]
            lock.notify_all()

    def run(name: str) -> None:
        torch.set_num_threads(args.threads or torch.get_num_threads())
        wait_turn(name)
        c0 = [time.thread_time()]

        def on_event(e) -> None:
            if isinstance(e, RunStarted):      # data and model built: the training starts
                c0[0] = time.thread_time()
            elif isinstance(e, EpochEnd):
                pass_turn(name)
                wait_turn(name)

        try:
            summary = Trainer(presets[name], emit_hooks=hooks[name]).run(on_event)
            result[name] = summary
        finally:
            cpu[name] = time.thread_time() - c0[0]
            pass_turn(name, finished=True)

    threads = [threading.Thread(target=run, args=(n,), name=f"bench-{n}") for n in ("plain", "hook")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name, summary in result.items():
        if summary.status != "finished":
            raise SystemExit(f"{name} run failed: {summary.message}")
    hook = boundary
    return {"plain": cpu["plain"], "hook": cpu["hook"], "ratio": cpu["plain"] / cpu["hook"], "grids": hook.grids,
            "in_hook": in_hook[0], "share": in_hook[0] / cpu["hook"],
            "steps": result["hook"].steps, "every": int(presets["hook"].monitor.every_steps),
            "between": hook.steps_between, "resolution": hook.resolution}


def boundary_bench(args: argparse.Namespace) -> int:
    import os

    pairs = []
    for r in range(-1, args.repeats):        # pair -1: warm-up, dropped
        first = "plain" if r % 2 == 0 else "hook"
        p = boundary_pair(args, first)
        p["first"] = "without" if first == "plain" else "with"
        if r >= 0:
            pairs.append(p)
        print(f"  pair {r + 1}{' (warm-up, dropped)' if r < 0 else ''} ({first} first): "
              f"without {p['plain']:.2f} CPU-s, with {p['hook']:.2f} CPU-s "
              f"({p['grids']} grids over {p['steps']} steps, {p['in_hook']:.3f} CPU-s in the hook = "
              f"{100 * p['share']:.2f} %), ratio {p['ratio']:.4f}; load average "
              f"{os.getloadavg()[0]:.2f}", file=sys.stderr)
    ratios = [p["ratio"] for p in pairs]
    load = os.getloadavg()
    p = pairs[0]
    print()
    print(f"Device: {device_name(resolve_device(args.device))}, {torch.get_num_threads()} torch thread(s), "
          f"torch {torch.__version__}. hannet-checkerboard, {args.epochs} epochs ({p['steps']:,} steps, batch 100), "
          f"probes every {p['every']} steps; the hook's default rate: a {p['resolution']}×{p['resolution']} grid "
          f"at an emit ≥ {p['between']} steps after the previous one ({p['grids']} grids per run). "
          f"Load average at the end: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min).")
    print()
    print("| pair | first | CPU-s without the boundary | CPU-s with it | ratio without ÷ with | CPU-s inside the hook "
          "| its share of the run with it |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for i, q in enumerate(pairs, 1):
        print(f"| {i} | {q['first']} | {q['plain']:.2f} | {q['hook']:.2f} | {q['ratio']:.4f} | {q['in_hook']:.3f} | "
              f"{100 * q['share']:.2f} % |")
    shares = [q["share"] for q in pairs]
    print(f"| **median** | | | | **{statistics.median(ratios):.4f}** (min {min(ratios):.4f}, max {max(ratios):.4f}) | "
          f"| **{100 * statistics.median(shares):.2f} %** (max {100 * max(shares):.2f} %) |")
    return 0


def trainer_seconds(preset, data_root, epochs: int):
    preset.train.epochs = epochs
    summary = Trainer(preset, run_dir=None, data_root=data_root).run(lambda e: None)
    if summary.status != "finished":
        raise SystemExit(f"trainer run failed: {summary.message}")
    return summary


def resolve_copy(preset):
    from workbench.spec import preset_from_dict, preset_to_dict

    return preset_from_dict(preset_to_dict(preset))


def full_epoch(args: argparse.Namespace) -> tuple[float, float, float]:
    preset = resolve_preset("z-mnist")
    preset.train.device = args.device
    preset.task.limit_train = None
    summary = trainer_seconds(preset, args.data_root, 1)
    return summary.seconds, summary.samples_per_s, summary.final_val_accuracy or 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["z-mnist", "mlp-relu-digits"])
    parser.add_argument("--limit-train", type=int, default=10_000, help="MNIST training images (0 = all)")
    parser.add_argument("--epochs", type=int, default=12, help="timed epoch pairs per preset")
    parser.add_argument("--warmup", type=int, default=2, help="leading epoch pairs dropped")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_MNIST if DEFAULT_MNIST.exists() else None)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads for both loops (0 = torch's default); the CPU-time "
                             "figures count only the calling thread, so keep 1 for them")
    parser.add_argument("--also-every", type=int, nargs="*", default=[],
                        help="extra rows with monitor.every_steps overridden to these values")
    parser.add_argument("--full-epoch", action="store_true", help="also time one full 60,000-image z-mnist epoch")
    parser.add_argument("--boundary", action="store_true",
                        help="instead: the live decision boundary's cost on hannet-checkerboard (trainer without "
                             "÷ with it, lock-step pairs; --epochs per run, --repeats pairs)")
    parser.add_argument("--repeats", type=int, default=5, help="--boundary: lock-step pairs")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.boundary:
        return boundary_bench(args)
    device = resolve_device(args.device)
    print(f"device: {device} — {device_name(device)}; torch {torch.__version__}", file=sys.stderr)
    rows = [measure(key, args) for key in args.presets]
    for every in args.also_every:
        rows += [measure(key, args, every) for key in args.presets]
    print()
    print(f"Device: {device_name(device)}, {torch.get_num_threads()} torch thread(s), torch {torch.__version__}. "
          f"Trainer epochs alternate with bare-loop epochs in one process; {args.warmup} warm-up pair(s) "
          f"dropped; medians over the remaining epoch pairs.")
    print()
    print("| preset | train samples | batch | probes every | epoch pairs | Trainer samples/CPU-s | "
          "bare samples/CPU-s | ratio, CPU time (all pairs) | ratio, CPU time (median pair) | "
          "ratio, wall clock (all pairs) | ratio, wall clock (median pair) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['key']} | {r['train_size']:,} | {r['batch']} | {r['every']} steps | {r['epochs']} | "
              f"{r['trainer']:,.0f} | {r['bare']:,.0f} | **{r['total_ratio']:.3f}** | {r['ratio']:.3f} | "
              f"{r['total_wall_ratio']:.3f} | {r['wall_ratio']:.3f} |")
    if args.full_epoch:
        seconds, sps, acc = full_epoch(args)
        print()
        print(f"z-mnist, one epoch on the full 60,000-image MNIST training set ({device}): "
              f"{seconds:.1f} s ({sps:,.0f} samples/s; validation accuracy after it {100 * acc:.2f}%).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
