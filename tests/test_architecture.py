"""Import rules: layers/ imports no workbench/ui/Qt; workbench/ imports no ui/Qt (checked with ast)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
QT = ("PySide6", "PyQt5", "PyQt6", "PySide2", "pyqtgraph", "shiboken6")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: stays inside its own package
                continue
            found.append((node.lineno, node.module or ""))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            found.append((node.lineno, str(node.args[0].value)))
    return found


def _violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    files = sorted((REPO / package).rglob("*.py"))
    assert files, f"no modules under {package}/"
    bad = []
    for path in files:
        for line, name in _imports(path):
            top = name.split(".")[0]
            if top in forbidden:
                bad.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    return bad


def test_layers_import_no_workbench_ui_or_qt():
    assert _violations("layers", ("workbench", "ui", "main") + QT) == []


def test_workbench_imports_no_ui_or_qt():
    assert _violations("workbench", ("ui", "main") + QT) == []


def test_the_checker_sees_imports(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("import os\nfrom PySide6.QtCore import Qt\nfrom . import x\n"
                      "def f():\n    import ui.app\n", encoding="utf-8")
    assert _imports(sample) == [(1, "os"), (2, "PySide6.QtCore"), (5, "ui.app")]


@pytest.mark.parametrize("module", ["workbench.spec", "workbench.registry", "workbench.presets"])
def test_core_import_loads_no_qt(module):
    code = (f"import sys, {module}, {module}; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('PySide6', 'pyqtgraph', 'shiboken6', 'ui')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"
