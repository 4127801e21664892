"""Trainer overhead: samples/s of ``workbench.trainer.Trainer`` (default probes on, no run folder)
÷ a bare PyTorch loop on the same model, data, batches, optimiser and device, in one process.

Method (after Lightning's parity tests): both loops train the same freshly seeded model on the
same device-resident data with the same device-side permutation and optimiser; they alternate
(trainer, bare, trainer, bare, ...); the first pair is a warm-up and is dropped; the ratio is the
median over the remaining pairs of (trainer samples/s) / (bare samples/s). Timed is the training
loop only — the trainer's validation pass at each epoch end is outside its reported training
seconds, and the bare loop has none. The bare loop keeps no statistics at all (no loss, no
accuracy, no probes): it is the fastest possible loop, so the ratio is the full price of monitoring.

Usage::

    python bench/overhead.py                                  # z-mnist (10,000 images) and mlp-relu-digits
    python bench/overhead.py --presets z-mnist --limit-train 10000 --repeats 5
    python bench/overhead.py --full-epoch                     # also: z-mnist seconds per full 60,000-image epoch

Prints a Markdown table (samples/s = training samples per wall-clock second).
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
from workbench.trainer import Trainer, make_optimizer, seed_everything  # noqa: E402

DEFAULT_MNIST = REPO.parent / "shared" / "data" / "mnist"


def bare_loop(preset, data, device, epochs: int) -> float:
    """Plain PyTorch: same model init, optimiser and batches; returns training samples/s."""
    seed = int(preset.train.seed)
    seed_everything(seed)
    model = build_model(preset).to(device)
    opt = make_optimizer(model, preset.train)
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    loss_fn = torch.nn.functional.cross_entropy
    regs = [m for m in model.modules() if m is not model and callable(getattr(m, "regularization", None))]
    bs = int(preset.task.batch_size)
    slices = data.batch_slices(bs)
    n = 0
    model.train()
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = data.permutation(gen)
        for s0, s1 in slices:
            x, y = data.train_batch(perm, s0, s1, gen)
            loss = loss_fn(model(x), y)
            for m in regs:
                loss = loss + m.regularization()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            n += s1 - s0
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def trainer_loop(preset, data_root, epochs: int) -> tuple[float, object]:
    preset.train.epochs = epochs
    summary = Trainer(preset, run_dir=None, data_root=data_root).run(lambda e: None)
    if summary.status != "finished":
        raise SystemExit(f"trainer run failed: {summary.message}")
    return summary.samples_per_s, summary


def measure(key: str, args: argparse.Namespace) -> dict:
    preset = resolve_preset(key)
    preset.train.device = args.device
    if preset.task.dataset in ("mnist", "fashion-mnist") and args.limit_train:
        preset.task.limit_train = args.limit_train
    device = resolve_device(args.device)
    data = load_dataset(preset.task, device, args.data_root, False, int(preset.train.seed))
    trainer_sps, bare_sps, ratios = [], [], []
    for r in range(args.repeats + 1):
        t = trainer_loop(resolve_copy(preset), args.data_root, args.epochs)[0]
        b = bare_loop(preset, data, device, args.epochs)
        if r == 0:
            print(f"  {key}: warm-up pair dropped (trainer {t:,.0f}, bare {b:,.0f} samples/s)", file=sys.stderr)
            continue
        trainer_sps.append(t)
        bare_sps.append(b)
        ratios.append(t / b)
        print(f"  {key}: repeat {r}: trainer {t:,.0f}, bare {b:,.0f} samples/s, ratio {t / b:.3f}", file=sys.stderr)
    return {
        "key": key, "train_size": data.train_size, "batch": int(preset.task.batch_size),
        "every": int(preset.monitor.every_steps), "trainer": statistics.median(trainer_sps),
        "bare": statistics.median(bare_sps), "ratio": statistics.median(ratios),
        "ratio_min": min(ratios), "ratio_max": max(ratios), "device": device,
    }


def resolve_copy(preset):
    from workbench.spec import preset_from_dict, preset_to_dict

    return preset_from_dict(preset_to_dict(preset))


def full_epoch(args: argparse.Namespace) -> tuple[float, float, float]:
    preset = resolve_preset("z-mnist")
    preset.train.device = args.device
    preset.task.limit_train = None
    sps, summary = trainer_loop(preset, args.data_root, 1)
    return summary.seconds, sps, summary.final_val_accuracy or 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["z-mnist", "mlp-relu-digits"])
    parser.add_argument("--limit-train", type=int, default=10_000, help="MNIST training images (0 = all)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per timed run")
    parser.add_argument("--repeats", type=int, default=5, help="timed pairs after the warm-up pair")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_MNIST if DEFAULT_MNIST.exists() else None)
    parser.add_argument("--full-epoch", action="store_true", help="also time one full 60,000-image z-mnist epoch")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    print(f"device: {device} — {device_name(device)}; torch {torch.__version__}", file=sys.stderr)
    rows = [measure(key, args) for key in args.presets]
    print()
    print(f"Device: {device_name(device)}, torch {torch.__version__}, {args.epochs} epoch(s) per run, "
          f"median of {args.repeats} alternating pairs after one warm-up pair.")
    print()
    print("| preset | train samples | batch | probes every | Trainer samples/s | bare loop samples/s | ratio (median) | ratio range |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['key']} | {r['train_size']:,} | {r['batch']} | {r['every']} steps | {r['trainer']:,.0f} | "
              f"{r['bare']:,.0f} | {r['ratio']:.3f} | {r['ratio_min']:.3f}–{r['ratio_max']:.3f} |")
    if args.full_epoch:
        seconds, sps, acc = full_epoch(args)
        print()
        print(f"z-mnist, one epoch on the full 60,000-image MNIST training set ({device}): "
              f"{seconds:.1f} s ({sps:,.0f} samples/s; validation accuracy after it {100 * acc:.2f}%).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
