"""A torchrun entry point for tests/workbench/test_ddp.py: one rank of a DDP run, with a failure
planted on one rank (what no preset can do). Usage, under torchrun::

    ddp_rank_script.py PRESET_JSON RUN_DIR FAILING_RANK FAIL_AT_BATCH

The rank FAILING_RANK raises ``RuntimeError("planted failure on this rank")`` when it fetches its
FAIL_AT_BATCH-th training batch; every rank runs a real Trainer with the torchrun environment's
process context, stops on SIGINT/SIGTERM like the command line's ranks, and exits 1 when its run
failed. Rank 0 writes RUN_DIR; each rank prints ``STATUS <rank> <status> <message>``.
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from workbench import data as data_module  # noqa: E402
from workbench.distributed import context_from_env  # noqa: E402
from workbench.spec import load_preset  # noqa: E402
from workbench.trainer import Trainer  # noqa: E402


def main() -> int:
    preset_file, run_dir, failing_rank, fail_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(1)
    process = context_from_env()
    if process.rank == failing_rank:
        original = data_module.LoadedData.train_batch
        calls = {"n": 0}

        def train_batch(self, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] == fail_at:
                raise RuntimeError("planted failure on this rank")
            return original(self, *args, **kwargs)

        data_module.LoadedData.train_batch = train_batch  # type: ignore[method-assign]
    trainer = Trainer(load_preset(preset_file), run_dir=run_dir, process=process)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: trainer.stop())
    summary = trainer.run(lambda event: None)
    print(f"STATUS {process.rank} {summary.status} {summary.message}", flush=True)
    sys.stdout.flush()
    os._exit(1 if summary.status == "failed" else 0)


if __name__ == "__main__":
    main()
