"""The first Run after launch is as smooth as the others (issue #12, item 8).

Its GUI stalls came from heavy imports on the training thread (``torch._dynamo`` through the
optimiser, SciPy/scikit-learn through the data loader) and the full garbage collections they
trigger. Timing the stall would make the test depend on the machine's load, so the test checks the
cause instead, in a fresh process started like ``python main.py`` (nothing imported yet): after the
app's idle warm-up (:mod:`ui.warmup`) the first run imports no module of torch, SciPy,
scikit-learn, triton or torchvision, and the start-up heap is frozen out of the collector. A control
process without the warm-up shows that the same first run does import them (so the check can fail).
``bench/gui_latency.py --first-run`` measures the stall itself (docs/benchmarks.md).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "scipy", "sklearn", "triton", "torchvision")
OURS = ("workbench", "ui", "layers", "platformdirs")   # light, but imported on the GUI thread by a run

CHILD = r"""
import gc, json, sys, time
sys.path.insert(0, sys.argv[1])
warm = sys.argv[2] == "warm"
from PySide6.QtCore import QTimer
from ui.app import build_main_window, create_app
from workbench.presets import load_builtin

app = create_app([])
preset = load_builtin("z-digits")
preset.train.epochs = 1
preset.train.device = "cpu"
window = build_main_window(preset, ask=lambda t, x, b: "Discard" if "Discard" in b else b[0])
controller = window.training_controller
out = {}

def run():
    from workbench.datasets import generated
    out["digits_parsed"] = "digits" in generated.SKLEARN_ARRAYS
    out["frozen"] = gc.get_freeze_count()
    out["gc_enabled"] = gc.isenabled()
    before = set(sys.modules)
    def finished(final):
        out["status"] = final.summary.status
        out["new_modules"] = sorted(set(sys.modules) - before)
        QTimer.singleShot(0, app.quit)
    controller.run_finished.connect(finished)
    controller.start_run()

if warm:
    from ui.warmup import warm_after_start
    warmer = warm_after_start(window)
    warmer.finished.connect(lambda: QTimer.singleShot(0, run))
else:   # the control: wait for the shapes (torch imported) as the warm-up does, then run at once
    window.shapes_ready.connect(lambda: QTimer.singleShot(0, run) if "frozen" not in out else None)
window.show()
QTimer.singleShot(240_000, app.quit)
app.exec()
window.close()
print("RESULT " + json.dumps(out), flush=True)
"""


def first_run(mode: str, tmp_path: Path) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", AFWB_RUNS=str(tmp_path / f"runs-{mode}"),
               AFWB_CONFIG=str(tmp_path / f"config-{mode}"), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", CHILD, str(REPO), mode], env=env, capture_output=True, text=True,
                          timeout=600, cwd=REPO)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    assert result.get("status") == "finished", result
    return result


def heavy_modules(result: dict) -> list[str]:
    return [m for m in result["new_modules"] if m.split(".")[0] in HEAVY]


def test_first_run_after_the_warm_up_imports_nothing_heavy(tmp_path) -> None:
    warmed = first_run("warm", tmp_path)
    assert heavy_modules(warmed) == [], " ".join(warmed["new_modules"])
    assert [m for m in warmed["new_modules"] if m.split(".")[0] in OURS] == []
    assert warmed["digits_parsed"] is True     # the data set's files were read at idle, not by the run
    assert warmed["frozen"] > 100_000       # the start-up heap left the collector's generations
    assert warmed["gc_enabled"]             # and automatic collection is back on
    control = first_run("cold", tmp_path)
    assert any(m.startswith("torch._dynamo") for m in heavy_modules(control)), heavy_modules(control)[:10]
    assert any(m.startswith("sklearn") for m in heavy_modules(control))
    assert "workbench.evaluation" in control["new_modules"]
    assert control["digits_parsed"] is False


def test_the_warm_up_frees_garbage_before_it_freezes_the_heap(qtbot) -> None:
    """gc.freeze() makes everything alive at that moment permanent: garbage not yet collected —
    Qt widgets in reference cycles among it — would never be freed. The warm-up collects first."""
    import gc
    import weakref

    from PySide6.QtWidgets import QWidget

    from ui.warmup import ImportWarmer

    gc.unfreeze()
    was_enabled = gc.isenabled()
    warmer = ImportWarmer()
    try:
        with qtbot.waitSignal(warmer.finished, timeout=60_000):
            warmer.start(["json"])       # gc is off until the warm-up ends
            widget = QWidget()
            widget.cycle = widget        # cyclic garbage created while collection is off
            ref = weakref.ref(widget)
            del widget
        assert ref() is None, "the warm-up froze cyclic garbage into the permanent generation"
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        (gc.enable if was_enabled else gc.disable)()
        warmer.deleteLater()
