"""DMIL on the synthetic benchmark with known sub-skills: the command's numbers, asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dmil_ros.core import synthetic


def test_ground_truth_rollouts_switch_skills():
    train, held_out = synthetic.make_tasks(0)
    assert {t.sequence for t in train}.isdisjoint({t.sequence for t in held_out})
    demo, skills = synthetic.rollout(held_out[0], np.random.default_rng(0))
    assert demo.observations[-1, 0] >= synthetic.X_END - 0.2
    assert len(set(skills.tolist())) >= 2 and np.count_nonzero(np.diff(skills)) == 2


def test_segmentation_accuracy_is_permutation_invariant():
    truth = np.array([0, 0, 1, 1, 2, 2])
    assert synthetic.segmentation_accuracy(np.array([2, 2, 0, 0, 1, 1]), truth, 3) == 1.0
    assert synthetic.segmentation_accuracy(np.array([0, 0, 0, 0, 0, 0]), truth, 3) == 1 / 3


def test_dmil_synthetic_command_recovers_segmentation_and_beats_baselines():
    out = subprocess.run(
        [sys.executable, "-m", "dmil_ros.cli", "synthetic", "--json", "--draws", "3"],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["segmentation_accuracy"] >= 0.90, result
    # Not only the headline demo: two more independent adaptation demos per held-out task too.
    assert result["over_draws"]["segmentation_accuracy_min"] >= 0.90, result["over_draws"]
    assert result["adapted_mse"] < 0.5 * result["unadapted_mse"], result
    assert result["adapted_mse"] < 0.5 * result["bc_scratch_mse"], result


def test_extra_draws_report_the_spread_and_keep_the_headline_draw():
    from dmil_ros.evaluation.synthetic import SyntheticSettings, run

    result = run(SyntheticSettings(iterations=5, test_rollouts=2, bc_steps=5, extra_draws=2))
    spread = result["over_draws"]
    assert spread["draws"] == 3 and len(spread["segmentation_accuracy_per_draw"]) == 3
    assert spread["segmentation_accuracy_per_draw"][0] == result["segmentation_accuracy"]
    assert spread["segmentation_accuracy_min"] <= spread["segmentation_accuracy_mean"] <= 1.0
    assert "over_draws" not in run(SyntheticSettings(iterations=5, test_rollouts=2, bc_steps=5))


def test_synthetic_command_refuses_negative_threads_like_eval():
    from dmil_ros.evaluation.synthetic_cli import main

    with pytest.raises(SystemExit) as refused:
        main(["--torch-threads", "-1"])
    assert refused.value.code == 2  # argparse's usage error, before any training
