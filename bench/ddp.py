"""DDP scaling: training samples/s of one preset on 1 and N processes (torchrun + DDP).

Each configuration is one real run launched the way ``python main.py train PRESET --nproc N`` does
(``workbench.launch.TorchrunLaunch``: ``torch.distributed.run --standalone``, rank 0 streaming its
events back); the figure is the run's ``samples_per_s`` from its summary — global training samples
per second of rank 0's training time (validation, start-up and the launch are outside it). The
preset's batch size is the global batch, so N processes each compute batch/N samples per step and
all-reduce the gradients once per step.

On the CPU every process gets ``--threads`` torch threads (default 1), so N processes use N cores;
on a machine with GPUs pass ``--device cuda`` to put one process on each GPU (NCCL).

Usage::

    python bench/ddp.py                                   # z-mnist on 2,000 images, 1 and 2 CPU processes
    python bench/ddp.py --presets z-digits mlp-relu-digits --epochs 5 --repeats 3
    python bench/ddp.py --device cuda --nproc 1 2 4       # a GPU machine

Prints a Markdown table; run ``uptime`` beside it: other work on the machine takes cores from the
processes and shows as poor scaling.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from workbench.launch import TorchrunLaunch  # noqa: E402
from workbench.presets import resolve_preset  # noqa: E402
from workbench.spec import save_preset  # noqa: E402

DEFAULT_MNIST = REPO.parent / "shared" / "data" / "mnist"


def one_run(key: str, nproc: int, args: argparse.Namespace, folder: Path) -> tuple[float, float]:
    """(samples/s, final validation accuracy or nan) of one launched run."""
    preset = resolve_preset(key)
    preset.train.epochs = args.epochs
    preset.train.device = args.device
    preset.monitor.checkpoints = False
    if args.limit_train and preset.task.dataset in ("mnist", "fashion-mnist", "cifar10"):
        preset.task.limit_train = args.limit_train
    preset_file = folder / f"{key}.json"
    save_preset(preset, preset_file)
    run_dir = folder / f"{key}-{nproc}-{len(list(folder.iterdir()))}"
    worker = ["train", str(preset_file), "--run-dir", str(run_dir), "--quiet"]
    if args.data_root is not None:
        worker += ["--data-root", str(args.data_root)]
    env = {"OMP_NUM_THREADS": str(args.threads)} if args.device == "cpu" else {}
    summary = TorchrunLaunch(worker, nproc, run_dir, preset_name=preset.name, capture_output=True,
                             env=env).run(lambda event: None)
    if summary.status != "finished":
        raise SystemExit(f"{key} on {nproc} process(es) did not finish: {summary.message}")
    return summary.samples_per_s, summary.final_val_accuracy if summary.final_val_accuracy is not None else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["z-mnist"])
    parser.add_argument("--nproc", type=int, nargs="+", default=[1, 2], help="process counts to compare")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--limit-train", type=int, default=2000, help="MNIST/CIFAR training images (0 = all)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per configuration (median shown)")
    parser.add_argument("--device", default="cpu", help="cpu (gloo) or cuda (NCCL, one GPU per process)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per CPU process")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_MNIST if DEFAULT_MNIST.exists() else None)
    args = parser.parse_args(argv)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    rows = []
    with tempfile.TemporaryDirectory(prefix="afwb-bench-ddp-") as tmp:
        folder = Path(tmp)
        for key in args.presets:
            figures: dict[int, list[tuple[float, float]]] = {n: [] for n in args.nproc}
            for r in range(args.repeats):  # configurations alternate, so both see the same machine load
                for n in (args.nproc if r % 2 == 0 else args.nproc[::-1]):
                    sps, acc = one_run(key, n, args, folder)
                    figures[n].append((sps, acc))
                    print(f"  {key}: {n} process(es), run {r + 1}: {sps:,.0f} samples/s, val accuracy {acc:.4f}",
                          file=sys.stderr)
            base = statistics.median(s for s, _ in figures[args.nproc[0]])
            for n in args.nproc:
                sps = statistics.median(s for s, _ in figures[n])
                rows.append((key, n, sps, sps / base, statistics.median(a for _, a in figures[n])))
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print()
    print(f"Device {args.device}, {args.threads} torch thread(s) per process, {args.epochs} epoch(s), "
          f"limit_train {args.limit_train or 'all'}, median of {args.repeats}; load average "
          f"{load[0]:.2f} before, {load_after[0]:.2f} after, on {os.cpu_count()} cores.")
    print()
    print(f"| preset | processes | samples/s | ÷ {args.nproc[0]} process(es) | final val accuracy |")
    print("|---|---:|---:|---:|---:|")
    for key, n, sps, ratio, acc in rows:
        print(f"| {key} | {n} | {sps:,.0f} | {ratio:.2f} | {acc:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
