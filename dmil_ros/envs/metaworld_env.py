"""Meta-World v3 (metaworld 3.1.1) behind `ManipulationEnv`, and the observation <-> RobotState mapping.

Observation layout (39 float32, verified against metaworld/sawyer_xyz_env.py `_get_obs`,
`_get_curr_obs_combined_no_goal`; goal-observable variant). Positions are metres in the MuJoCo world
frame, whose origin is the Sawyer arm base (`right_arm_base_link`), z up, y towards the table.
The hand position is the `hand` body origin, about 4.5 cm above the fingertip centre (TCP).

    index   content                                        source
    0:3     hand position (current frame)                  data.body("hand").xpos
    3       gripper opening in [0, 1] (current)            |rightclaw - leftclaw| / 0.1, clipped
    4:7     object 1 position (current)                    task specific body/geom/site
    7:11    object 1 quaternion (current)                  order is task specific, see below
    11:14   object 2 position (current; zeros if absent)
    14:18   object 2 quaternion (current; zeros if absent)
    18:36   the same 18 entries one control step earlier   (the "previous frame")
    36:39   goal position                                  env._target_pos

"Previous frame" means the current-frame block of the previous `step` (control_dt = 5 MuJoCo steps
of 2.5 ms = 12.5 ms of sim time earlier); right after `reset` the previous frame equals the current
frame. `step` clips observations to the env's observation space (hand to the reachable box, goal to
the goal space); `robot_state()` parses the clipped observation so the round trip is exact.

Quaternion order inside the observation is NOT uniform in Meta-World: tasks whose object comes from
`Rotation.as_quat()` store xyzw, tasks that read MuJoCo's `body.xquat` store wxyz, and a few store
zeros (orientation not observed). `obs_quat_order(task)` records this per task (checked against
the sources by the tests); `RobotState` is always xyzw, and zeros stay zeros ("not observed").

Actions (4 floats in [-1, 1]): xyz moves the mocap target that drags the hand by
`action * action_scale` metres per step (action_scale = 0.01 m), i.e. a commanded end-effector
velocity of `action * action_scale / control_dt` = up to 0.8 m/s per axis in the world frame;
action[3] is the gripper effort (+1 closes, -1 opens) sent as +a / -a to the two finger actuators.
The hand orientation is fixed by the mocap weld (mocap quat wxyz = (1, 0, 1, 0)).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from dmil_ros.envs.base import RobotState, StepResult

QuatOrder = Literal["xyzw", "wxyz", "none"]

OBS_DIM = 39
ACTION_DIM = 4
FRAME_DIM = 18  # one frame: hand 3 + gripper 1 + 2 objects x (pos 3 + quat 4)
MAX_OBJECTS = 2
GOAL_SLICE = slice(36, 39)
PREVIOUS_SLICE = slice(18, 36)

# metaworld SawyerXYZEnv defaults (also read back from the live env by MetaWorldEnv).
ACTION_SCALE = 0.01  # metres of mocap displacement per unit action per step
CONTROL_DT = 0.0125  # frame_skip 5 x timestep 0.0025 s

# The expert policies warn whenever their P-gain saturates the [-1, 1] box; that is by design and the
# env clips anyway, so silence exactly that message from exactly that module (it would flood logs).
# A global filter rather than catch_warnings() per call: that cost ~20 us per expert step.
warnings.filterwarnings(
    "ignore", message=r"Constant\(s\) may be too high", category=UserWarning, module=r"metaworld\.policies"
)

# Per-task quaternion order in the observation, read off each env's `_get_quat_objects`.
_XYZW_TASKS = (
    "coffee-pull-v3 coffee-push-v3 door-close-v3 door-open-v3 lever-pull-v3 pick-place-wall-v3 "
    "pick-place-v3 plate-slide-v3 plate-slide-side-v3 plate-slide-back-v3 plate-slide-back-side-v3 "
    "peg-insert-side-v3 soccer-v3 push-v3 push-wall-v3 push-back-v3 reach-v3 reach-wall-v3 "
    "shelf-place-v3 sweep-into-v3"
).split()
_WXYZ_TASKS = (
    "assembly-v3 basketball-v3 bin-picking-v3 box-close-v3 button-press-topdown-v3 "
    "button-press-topdown-wall-v3 button-press-v3 button-press-wall-v3 coffee-button-v3 dial-turn-v3 "
    "disassemble-v3 door-lock-v3 door-unlock-v3 hand-insert-v3 drawer-open-v3 faucet-open-v3 "
    "faucet-close-v3 pick-out-of-hole-v3 peg-unplug-side-v3 sweep-v3"
).split()
_NO_QUAT_TASKS = (
    "drawer-close-v3 handle-press-side-v3 handle-press-v3 handle-pull-side-v3 handle-pull-v3 "
    "window-open-v3 window-close-v3"
).split()
_QUAT_ORDERS: dict[str, tuple[QuatOrder, ...]] = {
    **{t: ("xyzw",) for t in _XYZW_TASKS},
    **{t: ("wxyz",) for t in _WXYZ_TASKS},
    **{t: ("none",) for t in _NO_QUAT_TASKS},
    "hammer-v3": ("wxyz", "wxyz"),  # hammer and nail bodies
    "stick-push-v3": ("xyzw", "none"),  # stick, then the insertion site (no orientation)
    "stick-pull-v3": ("xyzw", "none"),
}


def obs_quat_order(task: str) -> tuple[QuatOrder, ...]:
    """Quaternion order of each observed object of `task` (length = number of objects)."""
    try:
        return _QUAT_ORDERS[task]
    except KeyError:
        raise ValueError(f"unknown Meta-World v3 task {task!r} (e.g. 'reach-v3')") from None


def wxyz_to_xyzw(q: np.ndarray) -> np.ndarray:
    return np.asarray(q)[..., [1, 2, 3, 0]]


def xyzw_to_wxyz(q: np.ndarray) -> np.ndarray:
    return np.asarray(q)[..., [3, 0, 1, 2]]


def _quat_to_xyzw(q: np.ndarray, order: QuatOrder) -> np.ndarray:
    return wxyz_to_xyzw(q) if order == "wxyz" else np.asarray(q, dtype=np.float64).copy()


def _quat_from_xyzw(q: np.ndarray, order: QuatOrder) -> np.ndarray:
    return xyzw_to_wxyz(q) if order == "wxyz" else np.asarray(q, dtype=np.float64)


def frame_from_state(state: RobotState, task: str) -> np.ndarray:
    """The 18-entry observation frame of `state` (hand, gripper, objects padded to 2)."""
    orders = obs_quat_order(task)
    positions = np.asarray(state.object_positions, dtype=np.float64).reshape(-1, 3)
    quats = np.asarray(state.object_orientations, dtype=np.float64).reshape(-1, 4)
    if len(positions) != len(orders) or len(quats) != len(orders):
        raise ValueError(f"{task} observes {len(orders)} object(s), the state has {len(positions)}")
    frame = np.zeros(FRAME_DIM, dtype=np.float64)
    frame[0:3] = state.ee_position
    frame[3] = state.gripper_opening
    for i, order in enumerate(orders):
        frame[4 + 7 * i : 7 + 7 * i] = positions[i]
        frame[7 + 7 * i : 11 + 7 * i] = _quat_from_xyzw(quats[i], order)
    return frame


def observation_from_state(
    current: RobotState,
    previous: RobotState | None = None,
    goal: np.ndarray | None = None,
    *,
    task: str,
) -> np.ndarray:
    """Rebuild the 39-dim policy observation from RobotStates (the ROS policy node's view).

    `previous` is the state one control step earlier (None on the first step: reuse `current`, as
    `reset` does); `goal` defaults to `current.goal_position`.
    """
    cur = frame_from_state(current, task)
    prev = cur if previous is None else frame_from_state(previous, task)
    g = current.goal_position if goal is None else goal
    return np.concatenate([cur, prev, np.asarray(g, dtype=np.float64)]).astype(np.float32)


def state_from_observation(
    observation: np.ndarray,
    task: str,
    *,
    previous: bool = False,
    joint_names: Sequence[str] = (),
    joint_positions: np.ndarray | None = None,
    ee_orientation: np.ndarray | None = None,
) -> RobotState:
    """Parse one frame (current, or the previous one with `previous=True`) of an observation.

    The observation holds no joint angles or hand orientation; pass them in from the simulator,
    otherwise they are empty / identity.
    """
    obs = np.asarray(observation, dtype=np.float64)
    if obs.shape != (OBS_DIM,):
        raise ValueError(f"expected a ({OBS_DIM},) observation, got {obs.shape}")
    frame = obs[PREVIOUS_SLICE] if previous else obs[:FRAME_DIM]
    orders = obs_quat_order(task)
    positions = np.stack([frame[4 + 7 * i : 7 + 7 * i] for i in range(len(orders))])
    quats = np.stack([_quat_to_xyzw(frame[7 + 7 * i : 11 + 7 * i], o) for i, o in enumerate(orders)])
    return RobotState(
        joint_names=tuple(joint_names),
        joint_positions=np.zeros(0) if joint_positions is None else np.asarray(joint_positions, float),
        ee_position=frame[0:3].copy(),
        ee_orientation=np.array([0.0, 0.0, 0.0, 1.0]) if ee_orientation is None else ee_orientation,
        gripper_opening=float(frame[3]),
        object_positions=positions,
        object_orientations=quats,
        goal_position=obs[GOAL_SLICE].copy(),
    )


def ee_velocity_from_action(
    action: np.ndarray, action_scale: float = ACTION_SCALE, control_dt: float = CONTROL_DT
) -> tuple[np.ndarray, float]:
    """(commanded linear ee velocity xyz in m/s, world frame; gripper effort in [-1, 1])."""
    a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
    return a[:3] * (action_scale / control_dt), float(a[3])


def action_from_ee_velocity(
    linear_velocity: np.ndarray,
    gripper_effort: float,
    action_scale: float = ACTION_SCALE,
    control_dt: float = CONTROL_DT,
) -> np.ndarray:
    """Inverse of `ee_velocity_from_action`; saturates at the env's [-1, 1] box like the env does."""
    xyz = np.asarray(linear_velocity, dtype=np.float64) * (control_dt / action_scale)
    return np.clip(np.append(xyz, gripper_effort), -1.0, 1.0).astype(np.float32)


class MetaWorldEnv:
    """One goal-observable Meta-World v3 task with its scripted expert (`metaworld.policies`)."""

    def __init__(self, task: str, max_episode_steps: int = 500) -> None:
        # Imported here so that the mapping functions above work without metaworld installed.
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE
        from metaworld.policies import ENV_POLICY_MAP

        key = f"{task}-goal-observable"
        if key not in ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE:
            raise ValueError(f"unknown Meta-World v3 task {task!r} (e.g. 'reach-v3')")
        if max_episode_steps <= 0:
            raise ValueError("max_episode_steps must be positive")
        self._task = task
        self._max_steps = int(max_episode_steps)
        env = ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE[key]()
        # v3 ignores reset(seed=): goals come from env.np_random only with seeded_rand_vec, and the
        # goal-observable constructor freezes the random vector, so unfreeze it.
        env._freeze_rand_vec = False
        env.seeded_rand_vec = True
        env.max_path_length = self._max_steps  # metaworld raises past its own horizon
        self._env = env
        self._policy = ENV_POLICY_MAP[task]()
        self._orders = obs_quat_order(task)
        n_obj = len(env._get_pos_objects()) // 3
        if n_obj != len(self._orders):
            raise RuntimeError(f"{task}: env has {n_obj} objects, obs_quat_order has {len(self._orders)}")
        model = env.model
        names = [model.joint(i).name for i in range(model.njnt)]
        self._joint_names = tuple(n for n in names if n.startswith("right_j") or n in ("r_close", "l_close"))
        self._joint_qpos = np.array([model.jnt_qposadr[model.joint(n).id] for n in self._joint_names])
        self._hand_id = model.body("hand").id
        self._last_obs: np.ndarray | None = None
        self._t = 0

    # --- ManipulationEnv -------------------------------------------------------------------------
    @property
    def task_name(self) -> str:
        return self._task

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
        return float(self._env.dt)

    @property
    def action_scale(self) -> float:
        """Metres of mocap (hand target) displacement per unit action per step."""
        return float(self._env.action_scale)

    @property
    def raw_env(self) -> Any:
        """The wrapped metaworld SawyerXYZEnv (benchmarks, debugging)."""
        return self._env

    def reset(self, seed: int) -> np.ndarray:
        self._env.seed(int(seed))
        obs, _ = self._env.reset()
        self._last_obs = obs
        self._t = 0
        return obs.astype(np.float32)

    def step(self, action: np.ndarray) -> StepResult:
        if self._last_obs is None:
            raise RuntimeError("call reset(seed) before step()")
        if self._t >= self._max_steps:
            raise RuntimeError(f"episode over after {self._max_steps} steps; call reset(seed)")
        obs, reward, _, _, info = self._env.step(np.asarray(action, dtype=np.float32))
        self._t += 1
        self._last_obs = obs
        return StepResult(
            observation=obs.astype(np.float32),
            success=bool(info["success"] > 0),
            done=self._t >= self._max_steps,
            info=info,  # metaworld's own, fresh every step
            reward=float(reward),
        )

    def robot_state(self) -> RobotState:
        if self._last_obs is None:
            raise RuntimeError("call reset(seed) before robot_state()")
        data = self._env.data
        return state_from_observation(
            self._last_obs,
            self._task,
            joint_names=self._joint_names,
            joint_positions=data.qpos[self._joint_qpos].copy(),
            ee_orientation=wxyz_to_xyzw(data.xquat[self._hand_id]).copy(),
        )

    def expert_action(self, observation: np.ndarray) -> np.ndarray:
        # Clipped to the action box: the env clips anyway, and bounded targets suit BC.
        action = self._policy.get_action(np.asarray(observation, dtype=np.float64))
        return action.astype(np.float32).clip(-1.0, 1.0)

    def close(self) -> None:
        self._env.close()

    # --- action <-> ee velocity with this env's constants ------------------------------------------
    def ee_velocity_from_action(self, action: np.ndarray) -> tuple[np.ndarray, float]:
        return ee_velocity_from_action(action, self.action_scale, self.control_dt)

    def action_from_ee_velocity(self, linear_velocity: np.ndarray, gripper_effort: float) -> np.ndarray:
        return action_from_ee_velocity(linear_velocity, gripper_effort, self.action_scale, self.control_dt)
