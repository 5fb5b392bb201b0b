"""Per env family ("embodiment"): how the ROS messages map to that env's observation and action.

The nodes pick one with their `env` parameter (interfaces.ENV_FAMILIES) and otherwise stay generic:
state messages -> validated RobotState -> observation, policy action -> command message(s), operator
command -> env action (sim bridge, demos), and the scripted expert standing in for the operator.

metaworld (39-dim observation, 4-dim action): exactly dmil_ros/ros/observation.py; the command is the
  end-effector twist (TwistStamped) + gripper effort (Float64) on dmil/policy/* and teleop/*.
kitchen (Franka Kitchen, 30-dim observation, 9-dim action; dmil_ros/envs/kitchen_env.py):
  state: joint_states = the 9 robot joints + the 14 one-dof object joints (KITCHEN_JOINTS, any order,
    exactly these names), object_poses = [kettle], goal = zeros (unused), ee_pose = the
    `end_effector` site (published for tools; not in the observation). Observation =
    `kitchen_env.observation_from_state` (no previous frame).
  command: sensor_msgs/JointState on dmil/policy/joint_velocity_cmd / teleop/joint_velocity_cmd with
    `name` = the 9 robot joints (any order) and `velocity` = 2 x action (rad/s, m/s for the fingers),
    clipped to the env's +-2. JointState rather than control_msgs/JointJog because control_msgs is
    not installable here; remap the topic to a joint-velocity controller on a robot.
  expert: `KitchenExpert(sub-tasks)` (stateful: reset at every new episode / enable).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import JointState

from dmil_ros.core.data import Demo
from dmil_ros.envs.base import ManipulationEnv, RobotState
from dmil_ros.envs.registry import make_env
from dmil_ros.ros import interfaces as itf
from dmil_ros.ros import observation as mwobs
from dmil_ros.ros.interfaces import ConfigError, TopicSpec
from dmil_ros.ros.observation import StateError, stamp_ns
from dmil_ros.ros.state_sync import StateSync
from dmil_ros.ros.workspace import Workspace

# franka_description's names (kitchen_env.ros_joint_name), as a real Panda's joint_states carry them.
KITCHEN_ROBOT_JOINTS = (
    *(f"panda_joint{i}" for i in range(1, 8)),
    "panda_finger_joint1", "panda_finger_joint2",
)
# qpos[0:23] of FrankaKitchen-v1, in order (the kettle's free joint is object pose 0).
KITCHEN_JOINTS = (
    *KITCHEN_ROBOT_JOINTS,
    "knob_Joint_1", "bottom_right_burner", "knob_Joint_2", "bottom_left_burner",
    "knob_Joint_3", "top_right_burner", "knob_Joint_4", "top_left_burner",
    "light_switch", "light_joint", "slide_cabinet", "left_hinge_cabinet", "right_hinge_cabinet", "microwave",
)
KITCHEN_VELOCITY_SCALE = 2.0  # action 1.0 = 2 rad/s (m/s for the fingers), as the env integrates it
KITCHEN_FINGER_MAX = 0.04  # m per finger


class CommandError(ValueError):
    """A command message cannot be turned into an env action; the message says why."""


def _finite(values: Sequence[float]) -> bool:
    return all(math.isfinite(v) for v in values)


def build_env(env: str, task: str, max_episode_steps: int) -> ManipulationEnv:
    try:
        return make_env(env, task, max_episode_steps=max_episode_steps)
    except (ValueError, KeyError) as e:
        raise ConfigError(f"cannot build {env} task {task!r}: {e}") from e


class _EnvExpert:
    """Meta-World: the expert of an env of the task (stateless: `reset` does nothing)."""

    def __init__(self, env: str, task: str) -> None:
        self._env = build_env(env, task, 1)  # ConfigError for an unknown task

    def act(self, observation: np.ndarray) -> np.ndarray:
        return self._env.expert_action(observation)

    def reset(self) -> None:
        pass

    def close(self) -> None:
        self._env.close()


class MetaWorldEmbodiment:
    """The end-effector embodiment of the original graph: everything delegates to observation.py."""

    name = "metaworld"
    obs_dim = mwobs.OBS_DIM
    action_dim = mwobs.ACTION_DIM
    policy_command: TopicSpec = itf.POLICY_TWIST
    teleop_command: TopicSpec = itf.TELEOP_TWIST
    # (source, twist, gripper) topics the sim bridge obeys / (source, joint command) topics
    twist_command_topics = (("policy", itf.POLICY_TWIST, itf.POLICY_GRIPPER),
                            ("teleop", itf.TELEOP_TWIST, itf.TELEOP_GRIPPER))
    joint_command_topics: tuple[tuple[str, TopicSpec], ...] = ()
    recorded_topics = itf.RECORDED_TOPICS
    # Meta-World's table spans ~1 m around (0, 0.7, 0); a real arm's base frame (panda_link0) lies
    # within it too. Generous: a fallen object is still in; 1e30 never is.
    workspace = Workspace((-2.0, -1.5, -1.5), (2.0, 2.5, 2.5), max_joint_position=10.0)

    def mapping(self, task: str, gripper_joint: str = "gripper_opening", gripper_scale: float = 1.0,
                expected_joint_count: int = 0,
                action_speed: float = mwobs.ACTION_SPEED) -> mwobs.ObservationMapping:
        """ConfigError for a task that is not a Meta-World v3 task (its object layout is unknown)."""
        mapping = mwobs.ObservationMapping(task, gripper_joint, gripper_scale, expected_joint_count,
                                           action_speed)
        try:
            mapping.num_objects  # noqa: B018 (the lookup is the check)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        return mapping

    def builder(self, mapping: Any) -> mwobs.ObservationBuilder:
        return mwobs.ObservationBuilder(mapping)

    def robot_state_from_msgs(self, mapping: Any, joints: Any, ee: Any, objects: Any,
                              goal: Any) -> RobotState:
        return mwobs.robot_state_from_msgs(mapping, joints, ee, objects, goal)

    def state_to_msgs(self, state: RobotState, stamp: Time, frame_id: str, gripper_joint: str,
                      gripper_scale: float = 1.0) -> tuple:
        return mwobs.state_to_msgs(state, stamp, frame_id, gripper_joint, gripper_scale)

    def action_to_command(self, action: np.ndarray, stamp: Time, frame_id: str,
                          max_linear_speed: float = math.inf, max_angular_speed: float = math.inf,
                          action_speed: float = mwobs.ACTION_SPEED,
                          angular: np.ndarray | None = None) -> tuple[Any, Any]:
        """(command, gripper command or None), the gripper to be sent first; an action of 1.0 is
        `action_speed` m/s along its axis (the mapping's); `angular` [rad/s]: none from the policy."""
        return mwobs.action_to_command(action, stamp, frame_id, max_linear_speed, max_angular_speed,
                                       angular=angular, action_speed=action_speed)

    def zero_command(self, stamp: Time, frame_id: str) -> Any:
        return mwobs.zero_twist(stamp, frame_id)

    def zero_velocity(self) -> np.ndarray:
        """The sim bridge's 'no command' velocity."""
        return np.zeros(3)

    def env_action(self, env: ManipulationEnv, velocity: np.ndarray, gripper: float) -> np.ndarray:
        """Twist -> env action with the env's own constants (tiny adapter: not part of ManipulationEnv)."""
        convert = getattr(env, "action_from_ee_velocity", None)
        if convert is None:
            raise ConfigError(f"{type(env).__name__} cannot convert ee velocities to actions")
        return np.asarray(convert(velocity, gripper), dtype=np.float32)

    def episode_extra(self, step_info: dict[str, Any]) -> dict[str, Any]:
        """Env-specific fields of episode_info (Meta-World: none)."""
        return {}

    def make_expert(self, task: str) -> Any:
        return _EnvExpert(self.name, task)

    def demo_from_messages(self, messages: list[Any], mapping: Any, name: str = "demo") -> Demo:
        from dmil_ros.ros.mcap_io import demo_from_messages

        return demo_from_messages(messages, mapping, name)


@dataclass(frozen=True)
class KitchenMapping:
    """The kitchen observation needs only the task (for the demo's label); joint names are fixed."""

    task: str


class KitchenBuilder:
    """observation_from_state of every state; no previous frame, so `reset` does nothing."""

    def __init__(self, mapping: KitchenMapping) -> None:
        self.mapping = mapping

    def reset(self) -> None:
        pass

    def observe(self, state: RobotState) -> np.ndarray:
        from dmil_ros.envs.kitchen_env import observation_from_state

        try:
            return observation_from_state(state)
        except ValueError as e:
            raise StateError(str(e)) from e


class _KitchenExpert:
    def __init__(self, task: str) -> None:
        from dmil_ros.envs.kitchen_tasks import parse_task

        try:
            subtasks = parse_task(task)
        except ValueError as e:
            raise ConfigError(f"cannot build kitchen task {task!r}: {e}") from e
        from dmil_ros.envs.kitchen_expert import KitchenExpert

        self._expert = KitchenExpert(subtasks)

    def act(self, observation: np.ndarray) -> np.ndarray:
        return np.asarray(self._expert.act(observation), dtype=np.float32)

    def reset(self) -> None:
        self._expert.reset()

    def close(self) -> None:
        pass


def kitchen_command_to_action(msg: JointState) -> np.ndarray:
    """JointState joint-velocity command -> the 9-dim kitchen action; CommandError says what is wrong."""
    names, velocity = list(msg.name), list(msg.velocity)
    if len(names) != len(velocity):
        raise CommandError(f"joint velocity command has {len(names)} names but {len(velocity)} velocities")
    if len(set(names)) != len(names) or set(names) != set(KITCHEN_ROBOT_JOINTS):
        missing = [n for n in KITCHEN_ROBOT_JOINTS if n not in names]
        extra = sorted(set(names) - set(KITCHEN_ROBOT_JOINTS))
        raise CommandError(f"joint velocity command must name each of the 9 robot joints once "
                           f"(missing {missing}, unknown {extra}, {len(names)} names)")
    if not _finite(velocity):
        raise CommandError("joint velocity command contains NaN or infinite velocities")
    by_name = dict(zip(names, velocity, strict=True))
    v = np.array([by_name[n] for n in KITCHEN_ROBOT_JOINTS], dtype=np.float64)
    return np.clip(v / KITCHEN_VELOCITY_SCALE, -1.0, 1.0).astype(np.float32)


class KitchenEmbodiment:
    name = "kitchen"
    obs_dim = 30
    action_dim = 9
    policy_command: TopicSpec = itf.POLICY_JOINT_VELOCITY
    teleop_command: TopicSpec = itf.TELEOP_JOINT_VELOCITY
    twist_command_topics: tuple[tuple[str, TopicSpec, TopicSpec], ...] = ()
    joint_command_topics = (("policy", itf.POLICY_JOINT_VELOCITY), ("teleop", itf.TELEOP_JOINT_VELOCITY))
    recorded_topics = itf.KITCHEN_RECORDED_TOPICS
    # The kitchen scene (counter at z ~1.6 m) with room to spare; the goal is all zeros (unused).
    workspace = Workspace((-3.0, -3.0, -1.0), (3.0, 3.0, 4.0), max_joint_position=10.0)

    def mapping(self, task: str, *_: Any, **__: Any) -> KitchenMapping:
        """The Meta-World mapping parameters (gripper joint, scale, joint count) do not apply.
        ConfigError for a task that is not sub-tasks joined by '+'."""
        from dmil_ros.envs.kitchen_tasks import parse_task

        try:
            parse_task(task)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        return KitchenMapping(task)

    def builder(self, mapping: Any) -> KitchenBuilder:
        return KitchenBuilder(mapping)

    def robot_state_from_msgs(self, mapping: Any, joints: Any, ee: Any, objects: Any,
                              goal: Any) -> RobotState:
        missing = [n for n, m in (("joint_states", joints), ("ee_pose", ee), ("object_poses", objects),
                                  ("goal", goal)) if m is None]
        if missing:
            raise StateError(f"no {', '.join(missing)} received yet")
        names, positions = list(joints.name), list(joints.position)
        if len(names) != len(positions):
            raise StateError(f"joint_states has {len(names)} names but {len(positions)} positions")
        if len(names) != len(KITCHEN_JOINTS) or set(names) != set(KITCHEN_JOINTS):
            lacking = [n for n in KITCHEN_JOINTS if n not in names]
            raise StateError(f"joint_states has {len(names)} joints, the kitchen needs its "
                             f"{len(KITCHEN_JOINTS)} joints (9 robot + 14 object) once each"
                             + (f"; lacks {', '.join(lacking)}" if lacking else ""))
        if not _finite(positions):
            raise StateError("joint_states contains NaN or infinite positions")
        by_name = dict(zip(names, positions, strict=True))
        q = np.array([by_name[n] for n in KITCHEN_JOINTS], dtype=np.float64)
        ee_pos, ee_quat = mwobs._xyz(ee.pose.position), mwobs._xyzw(ee.pose.orientation)
        if not _finite(ee_pos + ee_quat):
            raise StateError("ee_pose contains NaN or infinite values")
        if len(objects.poses) != 1:
            raise StateError(f"object_poses has {len(objects.poses)} poses, the kitchen needs 1 (the kettle)")
        kettle = objects.poses[0]
        pos, quat = mwobs._xyz(kettle.position), mwobs._xyzw(kettle.orientation)
        if not _finite(pos + quat):
            raise StateError("object_poses contains NaN or infinite values")
        goal_pos = mwobs._xyz(goal.point)
        if not _finite(goal_pos):
            raise StateError("goal contains NaN or infinite values")
        return RobotState(
            joint_names=KITCHEN_JOINTS,
            joint_positions=q,
            ee_position=np.array(ee_pos),
            ee_orientation=np.array(ee_quat),
            gripper_opening=float(np.clip((q[7] + q[8]) / (2 * KITCHEN_FINGER_MAX), 0.0, 1.0)),
            object_positions=np.array([pos], dtype=np.float64),
            object_orientations=np.array([quat], dtype=np.float64),
            goal_position=np.array(goal_pos),
        )

    def state_to_msgs(self, state: RobotState, stamp: Time, frame_id: str, gripper_joint: str = "") -> tuple:
        """As Meta-World's, without the virtual gripper joint (the fingers are real joints here)."""
        js, ee, objs, goal = mwobs.state_to_msgs(state, stamp, frame_id, "")
        js.name, js.position = list(js.name)[:-1], list(js.position)[:-1]
        return js, ee, objs, goal

    def action_to_command(self, action: np.ndarray, stamp: Time, frame_id: str,
                          max_linear_speed: float = math.inf, max_angular_speed: float = math.inf,
                          action_speed: float = 0.0,
                          angular: np.ndarray | None = None) -> tuple[JointState, None]:
        """(JointState joint velocities, no separate gripper command); the ee speed limits, action_speed
        and angular do not apply (each joint's velocity is clipped to the env's +-2)."""
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(self.action_dim), -1.0, 1.0)
        return self._command(stamp, frame_id, a * KITCHEN_VELOCITY_SCALE), None

    def zero_command(self, stamp: Time, frame_id: str) -> JointState:
        return self._command(stamp, frame_id, np.zeros(self.action_dim))

    @staticmethod
    def _command(stamp: Time, frame_id: str, velocity: np.ndarray) -> JointState:
        msg = JointState()
        msg.header.stamp, msg.header.frame_id = stamp, frame_id
        msg.name = list(KITCHEN_ROBOT_JOINTS)
        msg.velocity = [float(v) for v in velocity]
        return msg

    def zero_velocity(self) -> np.ndarray:
        return np.zeros(self.action_dim)

    def env_action(self, env: ManipulationEnv, velocity: np.ndarray, gripper: float) -> np.ndarray:
        """The sim bridge holds the kitchen action itself as its 'velocity' (the gripper is in it)."""
        return np.asarray(velocity, dtype=np.float32).reshape(self.action_dim)

    def episode_extra(self, step_info: dict[str, Any]) -> dict[str, Any]:
        return {"completed": list(step_info.get("completed", []))}

    joint_command_to_action = staticmethod(kitchen_command_to_action)

    def make_expert(self, task: str) -> _KitchenExpert:
        return _KitchenExpert(task)

    def demo_from_messages(self, messages: list[Any], mapping: Any, name: str = "demo") -> Demo:
        """One sample per operator joint-velocity command, with the state of its stamp (else the latest
        complete state); a second command for a state already used is skipped, as the sim skips it."""
        from dmil_ros.ros.mcap_io import DemoFileError, track_state

        sync = StateSync()
        by_stamp: dict[int, Any] = {}
        observations, actions, used = [], [], set()
        builder = self.builder(mapping)
        n_commands = 0
        for rec in messages:
            if track_state(rec, sync, by_stamp) or rec.role != itf.TELEOP_JOINT_VELOCITY.name:
                continue
            n_commands += 1
            stamp = stamp_ns(rec.msg.header.stamp)
            if stamp and stamp in used:
                continue
            state_set = by_stamp.get(stamp) if stamp else None
            state_set = state_set or sync.latest(rec.log_time_ns * 1e-9, math.inf)
            if state_set is None:
                continue  # commands before the first complete state
            used.add(stamp)
            try:
                state = self.robot_state_from_msgs(mapping, state_set.joints, state_set.ee, state_set.objects,
                                                   state_set.goal)
                observations.append(builder.observe(state))
                actions.append(kitchen_command_to_action(rec.msg))
            except (StateError, CommandError) as e:
                raise DemoFileError(f"{name}: command {n_commands - 1}: {e}") from e
        if not n_commands:
            raise DemoFileError(f"{name}: no operator commands ({itf.TELEOP_JOINT_VELOCITY.name}) recorded")
        if not observations:
            raise DemoFileError(f"{name}: no operator command came with a complete state")
        return Demo(np.stack(observations).astype(np.float32), np.stack(actions).astype(np.float32),
                    task=mapping.task)


METAWORLD = MetaWorldEmbodiment()
KITCHEN = KitchenEmbodiment()
EMBODIMENTS: dict[str, Any] = {"metaworld": METAWORLD, "kitchen": KITCHEN}
assert tuple(EMBODIMENTS) == itf.ENV_FAMILIES


def embodiment_for(env: str) -> Any:
    """The embodiment of env family `env`; ConfigError for an unknown one."""
    try:
        return EMBODIMENTS[env]
    except KeyError:
        raise ConfigError(f"unknown env {env!r}; choose one of {', '.join(EMBODIMENTS)}") from None


def embodiment_of(mapping: Any) -> Any:
    """The embodiment a mapping (from `embodiment.mapping(...)`) belongs to."""
    return KITCHEN if isinstance(mapping, KitchenMapping) else METAWORLD
