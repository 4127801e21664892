"""Each dataset entry's ``imports`` names the heavy libraries its loader imports (the app's warm-up
imports them ahead of the first run, ``ui.warmup.modules_for_dataset``): checked by loading every
data set in a fresh process, so a loader that starts importing a library, or stops, fails here."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workbench.datasets import DATASETS

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("sklearn", "scipy", "torchvision", "PIL", "pandas", "matplotlib")

CHILD = r"""
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from workbench.datasets import DATASETS, LoadRequest, default_options
name, options, root = sys.argv[2], json.loads(sys.argv[3]), Path(sys.argv[4])
before = set(sys.modules)
DATASETS[name].load(LoadRequest(name, {**default_options(name), **options}, root))
print("RESULT " + json.dumps(sorted(set(sys.modules) - before)), flush=True)
"""


def _own_files(tmp_path: Path, fake_mnist) -> dict[str, tuple[dict, Path]]:
    """(options, data root) that make each data set's loader load without a download."""
    from PIL import Image

    table = tmp_path / "t.csv"
    table.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(20)), encoding="utf-8")
    arrays = tmp_path / "a.npz"
    np.savez(arrays, x=np.zeros((10, 3), np.float32), y=np.arange(10) % 2)
    for label in ("cat", "dog"):
        (tmp_path / "img" / label).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (4, 4), (i * 50, 0, 0)).save(tmp_path / "img" / label / f"{i}.png")
    root = tmp_path / "root"
    fake_mnist(root / "MNIST" / "raw", True)
    fake_mnist(root / "FashionMNIST" / "raw", True)
    return {"csv": ({"path": str(table), "target": "y"}, root), "npz": ({"path": str(arrays)}, root),
            "image-folder": ({"path": str(tmp_path / "img"), "size": 4}, root)}


# cifar10's loader checks the archive's MD5 sums (torchvision), so only the real 170 MB archive loads.
LOADABLE = [name for name in DATASETS if name != "cifar10"]


@pytest.mark.slow
@pytest.mark.parametrize("name", LOADABLE)
def test_an_entry_declares_the_heavy_libraries_its_loader_imports(name, tmp_path, fake_mnist):
    files = _own_files(tmp_path, fake_mnist)
    options, root = files.get(name, ({}, tmp_path / "root"))
    proc = subprocess.run([sys.executable, "-c", CHILD, str(REPO), name, json.dumps(options), str(root)],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    new = json.loads(lines[-1][len("RESULT "):])
    heavy = sorted({m.split(".")[0] for m in new if m.split(".")[0] in HEAVY} - {"scipy"})
    declared = DATASETS[name].imports
    assert heavy == sorted({m.split(".")[0] for m in declared}), (name, heavy, declared)
    assert set(declared) <= set(new), (name, sorted(set(declared) - set(new)))


def test_cifar10_declares_torchvision_and_the_warm_up_reads_the_entries():
    pytest.importorskip("PySide6")
    from ui.warmup import RUN_MODULES, modules_for_dataset

    assert DATASETS["cifar10"].imports == ("torchvision",)
    for name, entry in DATASETS.items():
        assert modules_for_dataset(name) == RUN_MODULES + entry.imports
    assert modules_for_dataset("no-such-set") == RUN_MODULES
