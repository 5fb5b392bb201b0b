"""Simulators behind one small interface (`ManipulationEnv`)."""

from dmil_ros.envs.base import ManipulationEnv, RobotState, StepResult

__all__ = ["ManipulationEnv", "RobotState", "StepResult"]
