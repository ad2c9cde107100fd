"""The engine must run headless: importing any engine module never loads Qt or the GUI."""

import ast
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import engine

FORBIDDEN = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph", "workbench")
ENGINE_DIR = Path(engine.__file__).parent


def test_engine_sources_do_not_import_qt():
    offenders = []
    for path in ENGINE_DIR.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            offenders += [f"{path.name}: {name}" for name in names if name.split(".")[0] in FORBIDDEN]

    assert offenders == []


def test_importing_every_engine_module_loads_no_qt():
    modules = sorted(
        f"engine.{info.name}" for info in pkgutil.iter_modules([str(ENGINE_DIR)]) if info.name not in ("migrations",)
    )
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(loaded))\n"
    )

    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stderr
    assert "engine.cli" in modules and "engine.trainer" in modules
    assert result.stdout.strip() == ""


def test_import_linter_contract_is_kept():
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert command is not None, "import-linter is a dev dependency; install the project with its dev extra"

    result = subprocess.run([command], capture_output=True, text=True, cwd=ENGINE_DIR.parent, timeout=300)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "The engine never imports Qt or the GUI KEPT" in result.stdout
