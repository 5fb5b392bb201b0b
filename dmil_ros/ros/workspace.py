"""Plausibility of a robot state: finite is not enough, it must also lie where the robot can be.

A finite but absurd pose (1e30 in ee_pose, object_poses or goal) would otherwise drive the policy at
its speed limit in whatever direction the network extrapolates to. `Workspace.check` refuses, with a
reason, a state whose end-effector, object or goal position lies outside an axis-aligned box (world
frame of the state messages), whose joint positions exceed a bound, or whose quaternions hold values
no rotation has. The defaults per env family live in dmil_ros/ros/embodiment.py; the policy node's
`workspace_min` / `workspace_max` / `max_joint_position` parameters override them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dmil_ros.envs.base import RobotState
from dmil_ros.ros.observation import StateError

QUATERNION_BOUND = 1.0 + 1e-3  # a unit (or all-zero, "unknown") quaternion has no larger component


@dataclass(frozen=True)
class Workspace:
    low: tuple[float, float, float]  # [m] per axis, world frame
    high: tuple[float, float, float]
    max_joint_position: float  # [rad or m], absolute

    def __post_init__(self) -> None:
        ordered = all(lo < hi for lo, hi in zip(self.low, self.high))
        if len(self.low) != 3 or len(self.high) != 3 or not ordered:
            raise ValueError(f"workspace needs 3 lower bounds below 3 upper bounds: {self.low}, {self.high}")

    def describe(self) -> str:
        return (f"[{', '.join(f'{v:g}' for v in self.low)}] .. [{', '.join(f'{v:g}' for v in self.high)}] m")

    def _inside(self, positions: np.ndarray) -> bool:
        p = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
        return bool(np.all(p >= self.low) and np.all(p <= self.high))

    def check(self, state: RobotState) -> None:
        """StateError naming the part that is implausible (the text stays the same while it stays wrong,
        so an operator's log gets it once)."""
        for name, positions in (("ee_pose position", state.ee_position),
                                ("object_poses position", state.object_positions),
                                ("goal", state.goal_position)):
            if not self._inside(positions):
                raise StateError(f"{name} lies outside the workspace {self.describe()} "
                                 "(parameters workspace_min / workspace_max)")
        if np.any(np.abs(np.asarray(state.joint_positions, dtype=np.float64)) > self.max_joint_position):
            raise StateError(f"joint_states holds a position beyond +-{self.max_joint_position:g} "
                             "(parameter max_joint_position)")
        for name, quats in (("ee_pose", state.ee_orientation), ("object_poses", state.object_orientations)):
            if np.any(np.abs(np.asarray(quats, dtype=np.float64)) > QUATERNION_BOUND):
                raise StateError(f"{name} orientation is not a quaternion (a component beyond 1)")


def workspace_from_params(default: Workspace, low: Sequence[float], high: Sequence[float],
                          max_joint_position: float) -> Workspace:
    """`default` with the parameters' overrides (empty arrays / 0: keep the default); ValueError if bad."""
    return Workspace(tuple(float(v) for v in low) if len(low) else default.low,  # type: ignore[arg-type]
                     tuple(float(v) for v in high) if len(high) else default.high,  # type: ignore[arg-type]
                     float(max_joint_position) if max_joint_position > 0 else default.max_joint_position)
