"""The robot stand-in's ROS-free parts: Servo semantics, the joint-driven Sawyer, perception, success.

No rclpy here: the stand-in's maths must be testable (and usable) without ROS.
"""

from __future__ import annotations

import numpy as np
import pytest

from dmil_ros.envs.standin.perception import Perception, PerceptionSettings
from dmil_ros.envs.standin.servo import (
    HALT_FOR_SINGULARITY,
    INVALID,
    JOINT_BOUND,
    NO_COMMAND,
    NO_WARNING,
    STALE,
    Servo,
    ServoParams,
    TwistCommand,
)

MS = 1_000_000


class PlanarArm:
    """Kinematics stub for Servo: a fixed, well-conditioned 6x7 Jacobian; frames 'base' and 'tool'
    (the tool frame rotated 90 degrees about z)."""

    def __init__(self, jacobian: np.ndarray | None = None) -> None:
        self.J = jacobian if jacobian is not None else np.hstack([np.eye(6), np.zeros((6, 1))])

    def jacobian(self, q: np.ndarray) -> np.ndarray:
        return self.J

    def frame_rotation(self, frame: str) -> np.ndarray | None:
        if frame == "base":
            return np.eye(3)
        if frame == "tool":
            return np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        return None


def servo(**params: object) -> Servo:
    limits = np.full(7, 10.0)
    return Servo(ServoParams(**params), -limits, limits, np.full(7, 2.0))


def twist(v: tuple[float, ...], stamp_ms: int, frame: str = "base",
          w: tuple[float, ...] = (0, 0, 0)) -> TwistCommand:
    return TwistCommand(frame, np.array(v, float), np.array(w, float), stamp_ms * MS, stamp_ms * MS)


def test_servo_uses_a_command_only_while_its_stamp_is_fresh_and_halts_after() -> None:
    s, arm, q = servo(incoming_command_timeout=0.1), PlanarArm(), np.zeros(7)
    assert s.update(0, q, arm).status == NO_COMMAND
    s.receive(twist((0.1, 0, 0), stamp_ms=1000))
    out = s.update(1050 * MS, q, arm)  # 50 ms old: used
    assert out.status == NO_WARNING and out.joint_velocities[0] == pytest.approx(0.1)
    out = s.update(1100 * MS, q, arm)  # exactly the timeout: stale (Servo: age >= timeout)
    assert out.status == STALE and not out.moving
    # A command that is already older than the timeout when it arrives never moves the arm.
    s.receive(twist((0.1, 0, 0), stamp_ms=900))
    assert not s.update(1100 * MS, q, arm).moving
    assert s.motion_log == [(1000 * MS, 1000 * MS)]  # only the fresh one reached the arm


def test_servo_speed_units_are_taken_as_is_and_unitless_is_scaled() -> None:
    arm, q = PlanarArm(), np.zeros(7)
    fast = servo(command_in_type="speed_units")
    fast.receive(twist((0.3, 0, 0), 0))
    assert fast.update(0, q, arm).joint_velocities[0] == pytest.approx(0.3)
    scaled = servo(command_in_type="unitless", scale_linear=0.2, scale_rotational=0.5)
    scaled.receive(twist((3.0, 0.5, 0), 0, w=(0, 0, 1.0)))  # unitless commands saturate at 1
    qd = scaled.update(0, q, arm).joint_velocities
    assert qd[:3] == pytest.approx([0.2, 0.1, 0.0]) and qd[5] == pytest.approx(0.5)


def test_servo_rotates_the_twist_from_its_frame_and_refuses_unknown_frames() -> None:
    s, arm, q = servo(), PlanarArm(), np.zeros(7)
    s.receive(twist((0.1, 0, 0), 0, frame="tool"))  # tool x = base y
    assert s.update(0, q, arm).joint_velocities[:3] == pytest.approx([0.0, 0.1, 0.0])
    s.receive(twist((0.1, 0, 0), 0, frame="panda_link0"))
    out = s.update(0, q, arm)
    assert out.status == INVALID and not out.moving


def test_servo_scales_all_joints_to_the_velocity_limit_and_halts_at_joint_limits() -> None:
    arm = PlanarArm()
    s = servo(joint_limit_margin=0.1)
    s.receive(twist((4.0, 1.0, 0), 0))  # joint 0 would need 4 rad/s, its limit is 2
    qd = s.update(0, np.zeros(7), arm).joint_velocities
    assert qd[:2] == pytest.approx([2.0, 0.5])  # the direction is kept
    near_limit = np.zeros(7)
    near_limit[0] = 9.95  # within the margin of +10
    out = s.update(0, near_limit, arm)
    assert out.status == JOINT_BOUND and not out.moving  # halt_all_joints_in_cartesian_mode
    s.receive(twist((-0.5, 0, 0), 0))  # moving away from the limit is allowed
    assert s.update(0, near_limit, arm).moving


def test_servo_halts_near_a_singularity() -> None:
    nearly_singular = np.hstack([np.diag([1, 1, 1, 1, 1, 0.01]), np.zeros((6, 1))])
    s = servo()
    s.receive(twist((0, 0, 0), 0, w=(0, 0, 0.1)))
    out = s.update(0, np.zeros(7), PlanarArm(nearly_singular))
    assert out.status == HALT_FOR_SINGULARITY and not out.moving


def test_servo_refuses_non_finite_commands() -> None:
    s = servo()
    assert not s.receive(twist((float("nan"), 0, 0), 0))
    assert s.latest is None and s.counters.rejected_non_finite == 1
    # Finite but absurd: the joint velocities overflow; Servo refuses the command instead of moving.
    assert s.receive(twist((1e308, -1e308, 1e308), 0, w=(1e308, 0, 0)))
    out = s.update(0, np.zeros(7), PlanarArm(np.hstack([np.eye(6) * 0.1, np.zeros((6, 1))])))
    assert out.status == INVALID and not out.moving and np.isfinite(out.joint_velocities).all()


def test_perception_delivers_frames_at_its_rate_after_the_latency_with_noise() -> None:
    from dmil_ros.envs.base import RobotState

    state = RobotState((), np.zeros(0), np.zeros(3), np.array([0, 0, 0, 1.0]), 1.0,
                       np.array([[0.1, 0.6, 0.05]]), np.array([[0, 0, 0, 1.0]]), np.zeros(3))
    cam = Perception(PerceptionSettings(rate=30.0, latency=0.05, position_noise=0.002), seed=0)
    cam.reset(0.0, seed=0)
    released = []
    for k in range(3001):  # 3 s in 1 ms steps
        t = k * 1e-3
        if cam.capture_due(t):
            cam.capture(t, state)
        released += [(t, f) for f in cam.released(t)]
    assert 88 <= len(released) <= 91  # 30 Hz
    delays = [t - f.capture_time for t, f in released]
    assert min(delays) >= 0.05 - 1e-9 and max(delays) <= 0.05 + 1.001e-3
    errors = np.array([f.positions[0] - state.object_positions[0] for _, f in released])
    assert 0.0015 < errors.std() < 0.0025  # 2 mm per axis


pytest.importorskip("metaworld")


def _cell(task: str, **settings: object):
    from dmil_ros.envs.standin.cell import CellSettings, RobotCell

    return RobotCell(task, CellSettings(**settings))


def test_the_arm_moves_at_the_commanded_twist_through_its_joints_not_the_mocap() -> None:
    cell = _cell("reach-v3")
    cell.reset(seed=0, now_ns=0)
    scene = cell.scene
    start = scene.robot_state()
    mocap = scene.data.mocap_pos.copy()
    assert not scene.data.eq_active.any()  # the weld is off
    q0 = scene.arm_state().q
    t = 0.0
    while t < 0.5:  # 0.1 m/s along +x (base frame) for 0.5 s, commands at 80 Hz
        now = int(t * 1e9)
        cell.receive_twist(TwistCommand("base", np.array([0.1, 0, 0]), np.zeros(3), now, now))
        t += 1 / 80
        cell.advance(int(t * 1e9))
    moved = scene.robot_state().ee_position - start.ee_position
    assert moved[0] == pytest.approx(0.05, abs=0.005) and np.abs(moved[1:]).max() < 0.003
    assert np.abs(scene.arm_state().q - q0).max() > 0.01  # the joints did it
    assert np.array_equal(scene.data.mocap_pos, mocap)  # not the mocap
    quat = scene.robot_state().ee_orientation
    assert abs(abs(float(np.dot(quat, start.ee_orientation))) - 1.0) < 1e-3  # orientation held
    # Commands stop: the arm halts within Servo's timeout and stays.
    halt_at = t + 0.1 + 0.02
    while t < halt_at:
        t += 1 / 80
        cell.advance(int(t * 1e9))
    resting = scene.robot_state().ee_position
    cell.advance(int((t + 0.3) * 1e9))
    assert np.abs(scene.robot_state().ee_position - resting).max() < 5e-4
    assert cell.status == STALE


def test_the_scripted_expert_solves_door_close_on_the_stand_in() -> None:
    """The closed loop the ROS graph runs, without ROS: the expert sees the hand from the driver and
    the door through 50 ms late, noisy perception, and commands 0.25 m/s twists to Servo at 80 Hz."""
    from dmil_ros.envs import metaworld_env as mw
    from dmil_ros.envs.standin.perception import with_objects

    cell = _cell("door-close-v3")
    expert = mw.MetaWorldEnv("door-close-v3", 300)
    cell.reset(seed=3, now_ns=0)
    assert not cell.success
    frame, previous, t = None, None, 0.0
    while t < 8.0 and cell.first_success is None:
        now = int(t * 1e9)
        cell.advance(now)
        frame = ([frame, *cell.released_frames(now)])[-1]
        if frame is not None:
            state = with_objects(cell.robot_state(), frame)
            action = expert.expert_action(mw.observation_from_state(state, previous, task="door-close-v3"))
            previous = state
            v, gripper = mw.ee_velocity_from_action(action)
            cell.receive_gripper(gripper)
            cell.receive_twist(TwistCommand("base", np.clip(v, -0.25, 0.25), np.zeros(3), now, now))
        t += 1 / 80
    assert cell.first_success is not None, cell.report()
    # Success is Meta-World's own criterion on the physics state: the door is within 8 cm of its goal.
    door = cell.robot_state().object_positions[0]
    assert np.linalg.norm(door - cell.robot_state().goal_position) <= 0.08
