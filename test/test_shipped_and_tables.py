"""Default checkpoints per suite come from the package (one home: core/shipped.py), and the paper's
tables are generated from result files: missing ones are "n/a", the documented ones are current."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dmil_ros.core import shipped
from dmil_ros.core.checkpoint import save_checkpoint
from dmil_ros.core.config import ModelConfig
from dmil_ros.core.hierarchy import Hierarchy
from dmil_ros.evaluation import paper_tables, table_cli
from dmil_ros.evaluation.policies import MissingCheckpoint, resolve_policy

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def package_checkpoints(tmp_path: Path, monkeypatch) -> Path:
    """A stand-in for dmil_ros/checkpoints/ holding a tiny ML45 checkpoint only."""
    root = tmp_path / "checkpoints"
    save_checkpoint(Hierarchy.initialize(ModelConfig(39, 4, 3, (8,)), seed=0), root / "metaworld_ml45")
    monkeypatch.setattr(shipped, "checkpoints_root", lambda: root)
    return root


def test_each_suite_has_its_shipped_checkpoint(package_checkpoints: Path) -> None:
    assert resolve_policy(None, None, suite="ml45").checkpoint == str(package_checkpoints / "metaworld_ml45")
    for suite in ("ml10", "ml10-dmil", "custom"):
        assert shipped.suite_checkpoint_dir(suite) == package_checkpoints / "metaworld_ml10"
        with pytest.raises(MissingCheckpoint, match=f"shipped checkpoint is absent for --suite {suite}"):
            resolve_policy(None, None, suite=suite)
    assert shipped.shipped_checkpoint_dir("kitchen") == package_checkpoints / "kitchen" / "no_top_burner"
    # the policy node's Meta-World prior is the ML45 one (docs/ml45.md: better on tasks neither trained on)
    assert shipped.shipped_checkpoint_dir("metaworld") == package_checkpoints / "metaworld_ml45"


def test_the_real_package_ships_ml10_ml45_and_kitchen_checkpoints() -> None:
    assert shipped.shipped_checkpoint_available("metaworld")
    assert shipped.shipped_checkpoint_available("kitchen")
    assert shipped.checkpoints_root().parent.name == "dmil_ros"
    # `dmil eval --suite ml45` without --checkpoint evaluates the shipped ML45 hierarchy
    ml45 = resolve_policy(None, None, suite="ml45")
    assert ml45.checkpoint == str(shipped.checkpoints_root() / "metaworld_ml45")
    assert ml45.method.name == "dmil" and ml45.policy is not None and ml45.policy.config.obs_dim == 39
    meta = json.loads((Path(ml45.checkpoint) / "config.json").read_text())["meta"]
    assert (meta["suite"], len(meta["tasks"])) == ("ml45", 45)


def test_eval_without_checkpoint_uses_the_suites_own(package_checkpoints, capsys) -> None:
    pytest.importorskip("metaworld")
    from dmil_ros.evaluation import cli, pipeline

    seen = []

    def capture(cells, scorer, settings):
        seen.extend((c.suite, c.policy.checkpoint) for c in cells)
        raise RuntimeError("captured")

    with pytest.MonkeyPatch.context() as m:
        m.setattr(pipeline, "evaluate", capture)
        with pytest.raises(RuntimeError, match="captured"):
            cli.main(["--suite", "ml45", "--split", "test", "--shots", "3", "--no-progress"])
    assert seen == [("ml45", str(package_checkpoints / "metaworld_ml45"))]
    assert cli.main(["--suite", "ml10", "--shots", "3", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "shipped checkpoint is absent for --suite ml10" in err and "metaworld_ml10" in err
    shutil.rmtree(package_checkpoints / "metaworld_ml45")
    assert cli.main(["--suite", "ml45", "--shots", "3", "--no-progress"]) == 2
    assert "metaworld_ml45" in capsys.readouterr().err


def _cell(suite: str, split: str, shots: int, mean: float, method: str = "dmil") -> dict:
    return {"suite": suite, "split": split, "shots": shots, "method": method, "mean_success": mean,
            "stderr": 0.01, "seeds": [0, 1, 2], "protocol": "official", "horizon": 300, "trials": 20,
            "checkpoint": "x"}  # fmt: skip


def test_table_1_from_files_with_missing_ones_as_na(tmp_path: Path, capsys) -> None:
    (tmp_path / "ml45_test_dmil.json").write_text(json.dumps({"cells": [_cell("ml45", "test", 3, 0.812)]}))
    (tmp_path / "ml10_test_bc_scratch.json").write_text(
        json.dumps({"cells": [_cell("ml10", "test", 1, 0.3, "bc-scratch"), _cell("ml10", "test", 3, 0.6)]})
    )
    (tmp_path / "ml10_train_mil.json").write_text("{not json")
    table = paper_tables.build("1", tmp_path)
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| ")}
    assert rows["DMIL"].count("n/a") == 7 and "0.812 ± 0.010" in rows["DMIL"]
    assert "0.300 ± 0.010" in rows["BC from scratch"] and "0.600 ± 0.010" in rows["BC from scratch"]
    assert rows["MIL"].count("n/a") == 8 and rows["multi-task BC + fine-tune"].count("n/a") == 8
    assert "ML45 meta-testing 3-shot" in rows["Method"]
    assert "not a `dmil eval --out` file" in capsys.readouterr().err  # the broken file: named, not fatal
    assert "n/a" in paper_tables.build("2", tmp_path) and "n/a" in paper_tables.build("6", tmp_path)


def test_documented_tables_are_the_ones_the_result_files_give(tmp_path: Path) -> None:
    results = ["--results", str(ROOT / "results")]
    assert table_cli.main(["all", *results, "--check", str(ROOT / "docs" / "results.md")]) == 0
    doc = tmp_path / "doc.md"
    doc.write_text("intro\n<!-- dmil table 8 -->\nstale\n<!-- end dmil table 8 -->\nend\n")
    assert table_cli.main(["8", "--results", str(ROOT / "results"), "--check", str(doc)]) == 1
    assert table_cli.main(["8", "--results", str(ROOT / "results"), "--update", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("intro\n") and text.endswith("end\n") and "stale" not in text
    assert "DMIL-Soft (soft EM)" in text
    assert table_cli.main(["8", "--results", str(ROOT / "results"), "--check", str(doc)]) == 0
