"""How the policy sees the robot through ROS: messages <-> RobotState <-> observation, twist <-> action.

Observation mapping (Meta-World, 39 floats; see dmil_ros/envs/metaworld_env.py for the layout):
  hand position 0:3       <- ee_pose.pose.position
  gripper opening 3       <- joint_states[gripper_joint] * gripper_scale, clipped to [0, 1]
  objects 4:18            <- object_poses.poses[i] (position, orientation in the task's order)
  previous frame 18:36    <- kept by ObservationBuilder: the frame of the previous control step
                             (equal to the current one right after a reset/enable, as in `env.reset`)
  goal 36:39              <- goal.point
Commands: twist.linear [m/s, world] <-> action[:3] = v * control_dt / action_scale (0.8 m/s = 1.0);
gripper command (Float64) <-> action[3] (+1 closes). The policy commands no rotation (the sim's hand
orientation is fixed); `hold_orientation` gives the angular velocity that keeps a real hand so.

Every check that can refuse a state lives here and raises StateError with a reason for the operator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, PointStamped, Pose, PoseArray, PoseStamped, Quaternion, TwistStamped
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64

from dmil_ros.envs import metaworld_env as mw
from dmil_ros.envs.base import RobotState


class StateError(ValueError):
    """The state received over ROS cannot be turned into an observation; the message says why."""


@dataclass(frozen=True)
class ObservationMapping:
    task: str
    gripper_joint: str = "gripper_opening"
    gripper_scale: float = 1.0
    expected_joint_count: int = 0  # 0: any number of joints
    action_speed: float = mw.ACTION_SCALE / mw.CONTROL_DT  # m/s per axis of an action of 1.0 (ACTION_SPEED)

    @property
    def num_objects(self) -> int:
        return len(mw.obs_quat_order(self.task))


OBS_DIM = mw.OBS_DIM
ACTION_DIM = mw.ACTION_DIM
ACTION_SPEED = mw.ACTION_SCALE / mw.CONTROL_DT  # m/s per axis of a Meta-World action of 1.0 (0.8)


def _finite(values: Sequence[float]) -> bool:
    return all(math.isfinite(v) for v in values)


def _xyz(p: Point) -> list[float]:
    return [p.x, p.y, p.z]


def _xyzw(q: Quaternion) -> list[float]:
    return [q.x, q.y, q.z, q.w]


def robot_state_from_msgs(
    mapping: ObservationMapping,
    joints: JointState | None,
    ee: PoseStamped | None,
    objects: PoseArray | None,
    goal: PointStamped | None,
) -> RobotState:
    """Validate the four state parts and assemble a RobotState; raises StateError naming the problem."""
    missing = [n for n, m in (("joint_states", joints), ("ee_pose", ee), ("object_poses", objects),
                              ("goal", goal)) if m is None]
    if missing:
        raise StateError(f"no {', '.join(missing)} received yet")
    assert joints is not None and ee is not None and objects is not None and goal is not None
    names, positions = list(joints.name), list(joints.position)
    if len(names) != len(positions):
        raise StateError(f"joint_states has {len(names)} names but {len(positions)} positions")
    if mapping.expected_joint_count and len(names) != mapping.expected_joint_count:
        raise StateError(f"joint_states has {len(names)} joints, expected {mapping.expected_joint_count}")
    if not _finite(positions):
        raise StateError("joint_states contains NaN or infinite positions")
    if mapping.gripper_joint not in names:
        raise StateError(f"joint_states lacks the gripper joint {mapping.gripper_joint!r}")
    opening = float(np.clip(positions[names.index(mapping.gripper_joint)] * mapping.gripper_scale, 0.0, 1.0))

    ee_pos, ee_quat = _xyz(ee.pose.position), _xyzw(ee.pose.orientation)
    if not _finite(ee_pos + ee_quat):
        raise StateError("ee_pose contains NaN or infinite values")
    need = mapping.num_objects
    if len(objects.poses) != need:
        raise StateError(f"object_poses has {len(objects.poses)} poses, task {mapping.task} needs {need}")
    obj_pos = [_xyz(p.position) for p in objects.poses]
    obj_quat = [_xyzw(p.orientation) for p in objects.poses]
    if not _finite([v for row in obj_pos + obj_quat for v in row]):
        raise StateError("object_poses contains NaN or infinite values")
    goal_pos = _xyz(goal.point)
    if not _finite(goal_pos):
        raise StateError("goal contains NaN or infinite values")
    keep = [i for i, n in enumerate(names) if n != mapping.gripper_joint]
    return RobotState(
        joint_names=tuple(names[i] for i in keep),
        joint_positions=np.array([positions[i] for i in keep], dtype=np.float64),
        ee_position=np.array(ee_pos),
        ee_orientation=np.array(ee_quat),
        gripper_opening=opening,
        object_positions=np.array(obj_pos, dtype=np.float64).reshape(-1, 3),
        object_orientations=np.array(obj_quat, dtype=np.float64).reshape(-1, 4),
        goal_position=np.array(goal_pos),
    )


def state_to_msgs(
    state: RobotState, stamp: Time, frame_id: str, gripper_joint: str, gripper_scale: float = 1.0
) -> tuple[JointState, PoseStamped, PoseArray, PointStamped]:
    """What the sim bridge publishes for one step; all four share `stamp` so receivers can pair them.
    The gripper joint's position is opening / `gripper_scale` (the inverse of robot_state_from_msgs's
    mapping: the robot stand-in reports finger travel in metres with gripper_scale 20)."""
    js = JointState()
    js.header.stamp = stamp
    js.name = [*state.joint_names, gripper_joint]
    js.position = [float(v) for v in state.joint_positions] + [float(state.gripper_opening) / gripper_scale]
    ee = PoseStamped()
    ee.header.stamp, ee.header.frame_id = stamp, frame_id
    ee.pose = _pose(state.ee_position, state.ee_orientation)
    objs = PoseArray()
    objs.header.stamp, objs.header.frame_id = stamp, frame_id
    objs.poses = [_pose(p, q) for p, q in zip(state.object_positions, state.object_orientations, strict=True)]
    goal = PointStamped()
    goal.header.stamp, goal.header.frame_id = stamp, frame_id
    goal.point = Point(x=float(state.goal_position[0]), y=float(state.goal_position[1]),
                       z=float(state.goal_position[2]))
    return js, ee, objs, goal


def _pose(position: np.ndarray, quat_xyzw: np.ndarray) -> Pose:
    p = Pose()
    p.position = Point(x=float(position[0]), y=float(position[1]), z=float(position[2]))
    q = [float(v) for v in quat_xyzw]
    p.orientation = Quaternion(x=q[0], y=q[1], z=q[2], w=q[3])
    return p


class ObservationBuilder:
    """Turns successive RobotStates into observations, keeping the previous frame itself."""

    def __init__(self, mapping: ObservationMapping) -> None:
        self.mapping = mapping
        self._previous: RobotState | None = None

    def reset(self) -> None:
        """Next observation starts a sequence (previous frame = current frame), as after env.reset."""
        self._previous = None

    def observe(self, state: RobotState) -> np.ndarray:
        try:
            obs = mw.observation_from_state(state, self._previous, task=self.mapping.task)
        except ValueError as e:
            raise StateError(str(e)) from e
        self._previous = state
        return obs


def clamp_norm(vector: np.ndarray, limit: float) -> np.ndarray:
    """`vector` scaled down (direction kept) so that its Euclidean norm is at most `limit`: a speed
    limit holds along a diagonal too (a per-axis clip lets sqrt(3) x the limit through)."""
    norm = float(np.linalg.norm(vector))
    return vector * (limit / norm) if norm > limit else vector


def action_to_command(
    action: np.ndarray, stamp: Time, frame_id: str, max_linear_speed: float = math.inf,
    max_angular_speed: float = math.inf, angular: np.ndarray | None = None,
    action_speed: float = ACTION_SPEED,
) -> tuple[TwistStamped, Float64]:
    """Env action -> (ee twist in m/s, gripper effort): an action of 1.0 is `action_speed` m/s along
    its axis; the linear velocity's norm clamped to `max_linear_speed`, the angular one's (zero for
    Meta-World, whose hand does not turn) to `max_angular_speed`."""
    velocity, gripper = mw.ee_velocity_from_action(np.asarray(action, dtype=np.float64),
                                                   control_dt=mw.ACTION_SCALE / action_speed)
    velocity = clamp_norm(velocity, max_linear_speed)
    rotation = np.zeros(3) if angular is None else np.asarray(angular, np.float64)
    rotation = clamp_norm(rotation, max_angular_speed)
    twist = TwistStamped()
    twist.header.stamp, twist.header.frame_id = stamp, frame_id
    twist.twist.linear.x, twist.twist.linear.y, twist.twist.linear.z = (float(v) for v in velocity)
    twist.twist.angular.x, twist.twist.angular.y, twist.twist.angular.z = (float(v) for v in rotation)
    return twist, Float64(data=gripper)


def unit_quaternion(quat_xyzw: np.ndarray, name: str) -> np.ndarray:
    """`quat_xyzw` normalized; StateError unless its norm is within 10 % of 1 (NaN fails too)."""
    q = np.asarray(quat_xyzw, dtype=np.float64)
    norm = float(np.linalg.norm(q))
    if not abs(norm - 1.0) < 0.1:
        raise StateError(f"{name} orientation is not a unit quaternion (norm {norm:.3g})")
    return q / norm


def hold_orientation(reference_xyzw: np.ndarray, current_xyzw: np.ndarray, gain: float) -> np.ndarray:
    """Angular velocity [rad/s, in the poses' frame] that turns `current` back towards `reference`:
    `gain` times the rotation vector from current to reference (the shorter way round)."""
    error = Rotation.from_quat(reference_xyzw) * Rotation.from_quat(current_xyzw).inv()
    return gain * error.as_rotvec()


def zero_twist(stamp: Time, frame_id: str) -> TwistStamped:
    twist = TwistStamped()
    twist.header.stamp, twist.header.frame_id = stamp, frame_id
    return twist


def command_to_action(twist: TwistStamped, gripper: float,
                      action_speed: float = ACTION_SPEED) -> np.ndarray:
    """Operator command -> env action (the inverse of action_to_command, saturating at [-1, 1])."""
    lin = twist.twist.linear
    return mw.action_from_ee_velocity(np.array([lin.x, lin.y, lin.z]), float(gripper),
                                      control_dt=mw.ACTION_SCALE / action_speed)


def stamp_ns(stamp: Time) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)
