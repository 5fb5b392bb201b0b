"""Franka Kitchen (gymnasium-robotics 1.4.2 `FrankaKitchen-v1`, MuJoCo 3) behind `ManipulationEnv`.

A task is an ordered-or-not set of kitchen sub-tasks joined by "+", e.g.
"microwave+kettle+light_switch+slide_cabinet"; sub-task slugs are `SUBTASKS` (kitchen_tasks.py;
gymnasium spells them with spaces). The wrapped env always tracks all 7 sub-tasks and never terminates early
(`terminate_on_tasks_completed=False`); this wrapper counts the *target* sub-tasks itself: one counts
as done from the first step its joints are within `BONUS_THRESH` (0.3, L2) of the gymnasium goal, in
any order, and stays done. `success` = every target sub-task done; `done` = horizon reached.

Observation layout (30 float32, D4RL's first 30 entries; gymnasium's uniform observation noise,
seeded by `reset`, is included). Units are rad for hinges, m for slides and the kettle position.

    index   content                                            model joints (qpos address)
    0:7     Franka arm joint angles                            robot:panda0_joint1..7  (0:7)
    7:9     finger slide positions, 0 (closed) .. 0.04 m       robot:panda0_finger_joint1/2 (7:9)
    9:13    bottom burner knobs (right, left) + burner slides  knob_Joint_1, bottom_right_burner,
                                                               knob_Joint_2, bottom_left_burner (9:13)
    13:17   top burner knobs + burner slides                   knob_Joint_3, top_right_burner,
                                                               knob_Joint_4, top_left_burner (13:17)
    17:19   light switch hinge, light slide                    light_switch, light_joint (17:19)
    19      slide cabinet (m, +x)                              slide_cabinet (19)
    20:22   hinge cabinet doors (left, right)                  left/right_hinge_cabinet (20:22)
    22      microwave door (rad, opens negative)               microwave (22)
    23:30   kettle free joint: position xyz (m, world) then    kettle (23:30)
            quaternion **wxyz** (MuJoCo qpos order)

`RobotState.joint_names` gives the robot joints franka_description's names (`panda_joint1..7`,
`panda_finger_joint1/2`, what a real Panda's joint_states carry) instead of the model's
`robot:panda0_*`; the object joints keep the model's names.

The observation index equals the MuJoCo qpos address, so `observation[OBS_ELEMENT_INDICES[t]]`
(gymnasium's table) is the (noisy) achieved goal of sub-task t. World frame: MuJoCo world, z up, the
arm base (`panda0_link0`) at (0, 0, 1.8) m, the kitchen towards +y.

Actions (9 floats in [-1, 1]): joint velocities, x2 -> rad/s (m/s for fingers). The env turns them
into position targets `last observed qpos + 2 * action * control_dt` for position actuators, so the
arm sags under gravity at zero action (the expert compensates). control_dt = 40 x 2 ms = 0.08 s.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dmil_ros.envs.base import RobotState, StepResult
from dmil_ros.envs.kitchen_layout import ACTION_DIM, FINGER_MAX, KETTLE_QPOS, N_ROBOT_JOINTS, OBS_DIM
from dmil_ros.envs.kitchen_tasks import SUBTASKS, gym_name, parse_task, task_name

__all__ = [
    "ACTION_DIM", "FINGER_MAX", "KETTLE_QPOS", "N_ROBOT_JOINTS", "OBS_DIM", "SUBTASKS", "KitchenEnv",
    "gym_name", "observation_from_state", "parse_task", "task_name",
]  # fmt: skip


def observation_from_qpos(robot_qpos: np.ndarray, object_qpos: np.ndarray) -> np.ndarray:
    return np.concatenate([np.asarray(robot_qpos, float), np.asarray(object_qpos, float)]).astype(np.float32)


def observation_from_state(state: RobotState) -> np.ndarray:
    """Rebuild the 30-dim observation from a RobotState (the ROS policy node's view).

    `state.joint_positions` holds the 9 robot joints and then the 14 one-dof object joints in qpos
    order (qpos[0:23]); the kettle comes from object pose 0 (xyzw in the state, wxyz in the obs).
    """
    q = np.asarray(state.joint_positions, dtype=np.float64)
    if q.shape != (23,):
        raise ValueError(f"expected 23 joint positions (9 robot + 14 object), got {q.shape}")
    pos = np.asarray(state.object_positions, dtype=np.float64).reshape(-1, 3)[0]
    xyzw = np.asarray(state.object_orientations, dtype=np.float64).reshape(-1, 4)[0]
    return np.concatenate([q, pos, xyzw[[3, 0, 1, 2]]]).astype(np.float32)


_MODEL_ROBOT_PREFIX = "robot:panda0_"


def ros_joint_name(model_name: str) -> str:
    """franka_description's name for a robot joint of the kitchen model; other joints unchanged."""
    if model_name.startswith(_MODEL_ROBOT_PREFIX):
        return "panda_" + model_name[len(_MODEL_ROBOT_PREFIX) :]
    return model_name


class KitchenEnv:
    """FrankaKitchen-v1 with a chain of target sub-tasks and a scripted, observation-only expert."""

    def __init__(self, task: str, max_episode_steps: int = 500) -> None:
        import gymnasium as gym
        import gymnasium_robotics

        self._subtasks = parse_task(task)
        if max_episode_steps <= 0:
            raise ValueError("max_episode_steps must be positive")
        self._max_steps = int(max_episode_steps)
        gym.register_envs(gymnasium_robotics)
        # All 7 sub-tasks tracked and no early termination: we count the targets ourselves, and
        # off-target completions must not end the episode. `.unwrapped` skips gymnasium's
        # TimeLimit/checker wrappers (our own horizon applies).
        self._env = gym.make(
            "FrankaKitchen-v1",
            tasks_to_complete=[gym_name(s) for s in SUBTASKS],
            terminate_on_tasks_completed=False,
            remove_task_when_completed=False,
            max_episode_steps=self._max_steps,
        ).unwrapped
        from gymnasium_robotics.envs.franka_kitchen.kitchen_env import (
            BONUS_THRESH,
            OBS_ELEMENT_GOALS,
            OBS_ELEMENT_INDICES,
        )

        self._thresh = float(BONUS_THRESH)
        self._goal_idx = {s: OBS_ELEMENT_INDICES[gym_name(s)] for s in SUBTASKS}
        self._goals = {s: OBS_ELEMENT_GOALS[gym_name(s)] for s in SUBTASKS}
        model = self._env.model
        # Robot joints, then every 1-dof object joint (the kettle's free joint is the object pose).
        self._joint_names = tuple(
            ros_joint_name(model.joint(j).name) for j in range(model.njnt) if model.jnt_type[j] != 0
        )  # jnt_type 0 = mjJNT_FREE
        self._ee_site = model.site("end_effector").id
        self._expert: Any = None
        self._completed: list[str] = []
        self._last_obs: np.ndarray | None = None
        self._t = 0

    # --- ManipulationEnv -------------------------------------------------------------------------
    @property
    def task_name(self) -> str:
        return "+".join(self._subtasks)

    @property
    def subtasks(self) -> tuple[str, ...]:
        return self._subtasks

    @property
    def obs_dim(self) -> int:
        return OBS_DIM

    @property
    def action_dim(self) -> int:
        return ACTION_DIM

    @property
    def max_episode_steps(self) -> int:
        return self._max_steps

    @property
    def control_dt(self) -> float:
        return float(self._env.robot_env.dt)

    @property
    def raw_env(self) -> Any:
        """The unwrapped gymnasium_robotics KitchenEnv (benchmarks, debugging)."""
        return self._env

    def _observe(self, gym_obs: dict[str, Any]) -> np.ndarray:
        o = gym_obs["observation"]
        # gymnasium layout: robot qpos 9, robot qvel 9, object qpos 21, object qvel 20.
        return observation_from_qpos(o[0:9], o[18:39])

    def _update_completed(self) -> None:
        qpos = self._env.data.qpos  # noise-free, like gymnasium's own achieved_goal
        for s in self._subtasks:
            if s not in self._completed:
                if np.linalg.norm(qpos[self._goal_idx[s]] - self._goals[s]) < self._thresh:
                    self._completed.append(s)

    def reset(self, seed: int) -> np.ndarray:
        gym_obs, _ = self._env.reset(seed=int(seed))
        self._t = 0
        self._completed = []
        self._update_completed()
        self._last_obs = self._observe(gym_obs)
        if self._expert is not None:
            self._expert.reset()
        return self._last_obs.copy()

    def step(self, action: np.ndarray) -> StepResult:
        if self._last_obs is None:
            raise RuntimeError("call reset(seed) before step()")
        if self._t >= self._max_steps:
            raise RuntimeError(f"episode over after {self._max_steps} steps; call reset(seed)")
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(ACTION_DIM), -1.0, 1.0)
        gym_obs, reward, *_ = self._env.step(a)
        self._t += 1
        self._update_completed()
        self._last_obs = self._observe(gym_obs)
        return StepResult(
            observation=self._last_obs.copy(),
            success=len(self._completed) == len(self._subtasks),
            done=self._t >= self._max_steps,
            info={"completed": list(self._completed), "n_completed": len(self._completed)},
            reward=float(reward),
        )

    def robot_state(self) -> RobotState:
        """Parsed from the last observation (so `observation_from_state` round-trips exactly).

        The ee pose is the `end_effector` site (on panda0_link7, between the fingertips; its z axis
        is the approach direction) from the simulator.
        """
        if self._last_obs is None:
            raise RuntimeError("call reset(seed) before robot_state()")
        obs = self._last_obs.astype(np.float64)
        data = self._env.data
        import mujoco

        wxyz = np.zeros(4)
        mujoco.mju_mat2Quat(wxyz, data.site_xmat[self._ee_site])
        return RobotState(
            joint_names=self._joint_names,
            joint_positions=obs[:23].copy(),
            ee_position=data.site_xpos[self._ee_site].copy(),
            ee_orientation=wxyz[[1, 2, 3, 0]],
            gripper_opening=float(np.clip((obs[7] + obs[8]) / (2 * FINGER_MAX), 0.0, 1.0)),
            object_positions=obs[KETTLE_QPOS][:3].reshape(1, 3).copy(),
            object_orientations=obs[KETTLE_QPOS][[4, 5, 6, 3]].reshape(1, 4).copy(),
            goal_position=np.zeros(3),
        )

    def expert_action(self, observation: np.ndarray) -> np.ndarray:
        if self._expert is None:
            from dmil_ros.envs.kitchen_expert import KitchenExpert

            self._expert = KitchenExpert(self._subtasks)
        return self._expert.act(observation)

    def close(self) -> None:
        self._env.close()
