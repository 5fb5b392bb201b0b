"""The layering of pyproject.toml's import contracts holds, and the contracts catch a violation."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(cwd), "PATH": str(LINT.parent)})  # fmt: skip


def test_import_contracts_hold() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_import_contracts_catch_a_core_module_importing_evaluation(tmp_path: Path) -> None:
    shutil.copytree(
        ROOT / "dmil_ros", tmp_path / "dmil_ros", ignore=shutil.ignore_patterns("checkpoints", "__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    hierarchy = tmp_path / "dmil_ros" / "core" / "hierarchy.py"
    hierarchy.write_text(hierarchy.read_text() + "\nfrom dmil_ros.evaluation import table  # noqa\n")
    # and a ros module importing a method inside a function (the adaptation worker adapting through
    # the methods registry): lazy imports count too
    worker = tmp_path / "dmil_ros" / "ros" / "adapt_worker.py"
    lazy = "\n\ndef _method():\n    from dmil_ros.methods import registry  # noqa\n"
    worker.write_text(worker.read_text() + lazy)
    result = _lint(tmp_path)
    assert result.returncode == 1, result.stdout
    assert "core and envs import no other subpackage BROKEN" in result.stdout
    assert "Layers (no package imports one above it) BROKEN" in result.stdout
    assert "ros imports core, envs and data only BROKEN" in result.stdout
    assert "dmil_ros.ros.adapt_worker -> dmil_ros.methods.registry" in result.stdout
