"""A hung test fails, with every thread's stack, instead of hanging the run (issue #11 item 3).

Each case runs pytest in a child process with this project's configuration (pyproject.toml) on a
test that deadlocks in C — a second ``pthread_mutex_lock`` on a mutex it holds, which no signal
interrupts, like the Qt mutex of the deadlock the suite once hit — with the limits shortened
(``-o timeout=3 -o faulthandler_timeout=6``) and nothing else changed. The child must end by
itself, fail, and have printed the stuck function's frame:

* with the GIL released (ctypes.CDLL): pytest-timeout's "thread" method fails it at 3 s (its
  "signal" method never fires: the signal handler waits for the main thread to return to Python);
* with the GIL held (ctypes.PyDLL): pytest-timeout's timer thread cannot run either; pytest's
  faulthandler watchdog (C code) dumps every thread's stack at 6 s and exits.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

HUNG_TESTS = textwrap.dedent('''
    import ctypes
    import threading
    import time


    def stuck_in_c(lib):
        mutex = ctypes.create_string_buffer(64)  # all zeros: glibc's PTHREAD_MUTEX_INITIALIZER
        lib.pthread_mutex_lock(mutex)
        lib.pthread_mutex_lock(mutex)  # a normal mutex locked twice: deadlock


    def test_stuck_with_the_gil_released():
        threading.Thread(target=time.sleep, args=(600,), name="bystander", daemon=True).start()
        stuck_in_c(ctypes.CDLL(None))


    def test_stuck_holding_the_gil():
        stuck_in_c(ctypes.PyDLL(None))
''')


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="the deadlock uses glibc's all-zero mutex initializer")
@pytest.mark.parametrize("name", ["test_stuck_with_the_gil_released", "test_stuck_holding_the_gil"])
def test_a_test_stuck_in_c_fails_with_every_stack(tmp_path: Path, name: str) -> None:
    (tmp_path / "test_hung.py").write_text(HUNG_TESTS, encoding="utf-8")
    cmd = [sys.executable, "-m", "pytest", "-c", str(REPO / "pyproject.toml"), "--rootdir", str(tmp_path),
           "-p", "no:cacheprovider", "-q", "-o", "timeout=3", "-o", "faulthandler_timeout=6",
           f"test_hung.py::{name}"]
    try:
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name} was not stopped: the run hung past its limits (3 s, 6 s) for 90 s")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "stuck_in_c" in out and name in out, f"no stack of the stuck thread:\n{out}"
