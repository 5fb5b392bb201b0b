"""The short version of bench/hardware_loop.py: one task, one demo, two episodes per path.

A small random checkpoint keeps adaptation to seconds: this checks the whole path (both graphs over
real DDS, the operator's demo through the cell, /dmil/adapt, the policy on the stand-in, the same seeds
on the sim path, the safety counts), not the skill; the bench itself measures success with the
shipped checkpoint (docs/hardware.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("metaworld")

from dmil_ros.core.checkpoint import save_checkpoint  # noqa: E402
from dmil_ros.core.config import ModelConfig  # noqa: E402
from dmil_ros.core.hierarchy import Hierarchy  # noqa: E402
from dmil_ros.ros.graph import launch_default  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.ros
def test_hardware_loop_short(tmp_path: Path) -> None:
    hierarchy = Hierarchy.initialize(ModelConfig(39, 4, 3, (64, 64)), seed=0)
    checkpoint = save_checkpoint(hierarchy, tmp_path / "ckpt")
    out = tmp_path / "hardware_loop.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "hardware_loop.py"), "--tasks", "reach-v3", "--demos", "1",
         "--episodes", "2", "--horizon-steps", "80", "--checkpoint", str(checkpoint), "--json",
         "--out", str(out)],
        capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-6000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == json.loads(out.read_text())
    assert {"per_task", "ratio_hardware_vs_sim", "commands_after_disable", "latency_curve"} <= set(result)
    assert result["complete"] is True  # the last task's write; earlier ones say False
    assert result["settings"]["control_rate_hz"] == float(launch_default("hardware", "rate"))
    reach = result["per_task"]["reach-v3"]
    # The scripted operator solved its demo through the stand-in's Servo, and in the sim.
    assert reach["hardware_demos_succeeded"] == 1 and reach["sim_demos_succeeded"] == 1, result["details"]
    details = result["details"]["reach-v3"]
    hardware = details["hardware"]["0.05"]
    seeds = [e["seed"] for e in hardware["episodes"]]
    assert seeds == [e["seed"] for e in details["sim"]["episodes"]] == [2, 3]
    assert "accepted" in hardware["adapt"] and "accepted" in details["sim"]["adapt"]
    # Safety at the arm: the policy's commands moved it before the outage, none after disable/outage.
    assert hardware["stale_state"]["commands_before_outage"] > 0
    assert result["commands_after_disable"] == 0
    detail = result["commands_after_disable_detail"]
    assert detail["episodes_checked"] == 2 and detail["stale_state_checks"] == 1
    assert result["settings"]["horizon_s_hardware"] == pytest.approx(80 * 0.0125 * 0.8 / 0.25)
