"""``make soak N=…`` runs the suite N times and stops at the first failing run, naming it (issue #11
item 4). The suite command is replaced (``PYTEST=…``) by a script that counts its runs and fails
the chosen one; the install step is skipped (``make -o`` on its stamp file)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

FAKE_SUITE = """
import sys
from pathlib import Path

calls = Path(sys.argv[1])
n = len(calls.read_text()) + 1 if calls.exists() else 1
calls.write_text("x" * n)
sys.exit(1 if n == int(sys.argv[2]) else 0)
"""


def soak(tmp_path: Path, runs: int, failing_run: int) -> tuple[subprocess.CompletedProcess, int]:
    fake = tmp_path / "fake_suite.py"
    fake.write_text(FAKE_SUITE, encoding="utf-8")
    calls = tmp_path / "calls"
    proc = subprocess.run(["make", "-s", "-C", str(REPO), "-o", ".venv/.afwb-install-stamp", "soak", f"N={runs}",
                           f"PYTEST={sys.executable} -I {fake} {calls} {failing_run}"],
                          capture_output=True, text=True, timeout=60)
    return proc, len(calls.read_text()) if calls.exists() else 0


pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def test_soak_stops_at_the_first_failing_run(tmp_path: Path) -> None:
    proc, ran = soak(tmp_path, runs=5, failing_run=3)
    assert proc.returncode != 0
    assert ran == 3
    assert "soak: run 3 of 5 FAILED" in proc.stdout


def test_soak_runs_the_suite_n_times(tmp_path: Path) -> None:
    proc, ran = soak(tmp_path, runs=4, failing_run=0)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ran == 4
    assert "soak: 4 of 4 runs passed" in proc.stdout
    assert proc.stdout.count("=== soak run") == 4
