"""The one environment interface that training, evaluation, the sim bridge and the ROS nodes share.

A simulator is wrapped once behind `ManipulationEnv`; everything above it only sees flat float32
observations/actions (what the policy consumes) and a `RobotState` (what the ROS bridge publishes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class RobotState:
    """Physical state in SI units, world frame, as the sim bridge publishes it.

    Quaternions are (x, y, z, w) like geometry_msgs/Quaternion.
    """

    joint_names: tuple[str, ...]
    joint_positions: np.ndarray  # (n_joints,) rad or m
    ee_position: np.ndarray  # (3,) m
    ee_orientation: np.ndarray  # (4,) xyzw
    gripper_opening: float  # normalised finger distance, as in the observation
    object_positions: np.ndarray  # (n_objects, 3) m
    object_orientations: np.ndarray  # (n_objects, 4) xyzw
    goal_position: np.ndarray  # (3,) m


@dataclass(frozen=True)
class StepResult:
    observation: np.ndarray  # (obs_dim,) float32
    success: bool  # task solved at this step
    done: bool  # episode over (horizon reached)
    info: dict[str, Any] = field(default_factory=dict)
    reward: float = 0.0  # the simulator's own reward (recorded with demos; DMIL does not use it)


@runtime_checkable
class ManipulationEnv(Protocol):
    """A single-task manipulation environment with a scripted expert."""

    @property
    def task_name(self) -> str: ...

    @property
    def obs_dim(self) -> int: ...

    @property
    def action_dim(self) -> int: ...

    @property
    def max_episode_steps(self) -> int: ...

    @property
    def control_dt(self) -> float:
        """Seconds of simulated time per `step`."""
        ...

    def reset(self, seed: int) -> np.ndarray:
        """Start a reproducible episode; the same seed gives the same initial state and goal."""
        ...

    def step(self, action: np.ndarray) -> StepResult: ...

    def robot_state(self) -> RobotState: ...

    def expert_action(self, observation: np.ndarray) -> np.ndarray:
        """The scripted expert's action for this observation (stands in for a human operator)."""
        ...

    def close(self) -> None: ...
