"""MoveIt Servo's twist pipeline (moveit_servo on ROS 2 Jazzy/Kilted), for the robot stand-in.

One `Servo.update` is one servo cycle (`publish_period`), in Servo's order:
1. stale: the latest twist is used while `now - header.stamp < incoming_command_timeout`; after that
   (or before any command) the arm halts and holds its position.
2. frame: the twist is rotated from `header.frame_id` into `planning_frame` (the frames the robot
   model knows); an unknown frame makes the command INVALID (no motion, as Servo's "Cannot transform").
3. units: `speed_units` takes m/s and rad/s as they are; `unitless` clips each component to [-1, 1]
   and multiplies by `scale_linear` [m/s] / `scale_rotational` [rad/s].
4. joint velocities = J^+ twist (pseudo-inverse: Servo without an IK plugin).
5. singularity: with the Jacobian's condition number c, a command that increases c (approaching) is
   scaled by 1 - (c - lower) / (hard - lower) between `lower_singularity_threshold` and
   `hard_stop_singularity_threshold`, and halts beyond; one that decreases it (leaving) uses thresholds
   multiplied by `leaving_singularity_threshold_multiplier`. (Servo tests the approach along the
   smallest singular direction; here the condition number after a small step along the command.)
6. velocity limits: scaled down uniformly so that no joint exceeds its limit.
7. joint limits: a joint whose next position would be within `joint_limit_margin` of a limit while
   moving towards it halts every joint (`halt_all_joints_in_cartesian_mode: true`, the default).

Every distinct command that moved the arm in at least one cycle is logged (stamp, reception time):
the bench counts from this log which commands reached the arm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

COMMAND_IN_TYPES = ("speed_units", "unitless")

# moveit_servo's status codes (the subset a twist command can produce), plus why a cycle did not move.
NO_WARNING = "NO_WARNING"
DECELERATE_FOR_APPROACHING_SINGULARITY = "DECELERATE_FOR_APPROACHING_SINGULARITY"
HALT_FOR_SINGULARITY = "HALT_FOR_SINGULARITY"
DECELERATE_FOR_LEAVING_SINGULARITY = "DECELERATE_FOR_LEAVING_SINGULARITY"
JOINT_BOUND = "JOINT_BOUND"
INVALID = "INVALID"
STALE = "STALE"  # no command fresher than incoming_command_timeout: halted
NO_COMMAND = "NO_COMMAND"


class ArmKinematics(Protocol):
    """What Servo needs from the robot model (MoveIt's RobotState)."""

    def jacobian(self, q: np.ndarray) -> np.ndarray:
        """(6, n) Jacobian of the ee frame at joint positions q, planning frame, linear rows first."""
        ...

    def frame_rotation(self, frame: str) -> np.ndarray | None:
        """Rotation planning_frame <- frame (3x3), or None for a frame the model does not know."""
        ...


@dataclass(frozen=True)
class ServoParams:
    """Servo's parameters of the same names (moveit_servo/config/servo_parameters.yaml; scale_linear is
    its scale.linear). The planning frame and ee frame are the arm model's (ArmKinematics)."""

    command_in_type: str = "speed_units"
    scale_linear: float = 0.4  # unitless only [m/s at 1.0]
    scale_rotational: float = 0.8  # unitless only [rad/s at 1.0]
    publish_period: float = 0.01
    incoming_command_timeout: float = 0.1
    lower_singularity_threshold: float = 17.0
    hard_stop_singularity_threshold: float = 30.0
    leaving_singularity_threshold_multiplier: float = 2.0
    joint_limit_margin: float = 0.1
    halt_all_joints_in_cartesian_mode: bool = True

    def __post_init__(self) -> None:
        if self.command_in_type not in COMMAND_IN_TYPES:
            raise ValueError(f"command_in_type {self.command_in_type!r} is not one of {COMMAND_IN_TYPES}")
        if self.hard_stop_singularity_threshold <= self.lower_singularity_threshold:
            raise ValueError("hard_stop_singularity_threshold must exceed lower_singularity_threshold")
        if self.publish_period <= 0 or self.incoming_command_timeout <= 0:
            raise ValueError("publish_period and incoming_command_timeout must be positive")


@dataclass(frozen=True)
class TwistCommand:
    """A TwistStamped as Servo receives it (velocities in `frame_id`)."""

    frame_id: str
    linear: np.ndarray  # (3,)
    angular: np.ndarray  # (3,)
    stamp_ns: int
    received_ns: int

    @property
    def velocities(self) -> np.ndarray:
        return np.concatenate([self.linear, self.angular]).astype(np.float64)


@dataclass
class ServoOutput:
    joint_velocities: np.ndarray  # (n,) rad/s; zeros when halted
    status: str
    command: TwistCommand | None = None  # the command this cycle executed (None: halted)

    @property
    def moving(self) -> bool:
        return bool(np.any(self.joint_velocities != 0.0))


@dataclass
class ServoCounters:
    cycles: int = 0
    moving_cycles: int = 0
    stale_cycles: int = 0
    invalid: int = 0
    joint_bound: int = 0
    singularity_halt: int = 0
    rejected_non_finite: int = 0


@dataclass
class Servo:
    """Twist -> joint velocities of one arm, with Servo's staleness, frame, unit and limit handling.

    A redundant arm (the Sawyer has 7 joints for a 6-dof twist) needs its null space resolved: the
    minimum-norm J^+ solution lets the elbow drift into singular postures within seconds. With
    `posture_gain` > 0 the null-space motion pulls the joints towards `home` (as an IK plugin with a
    joint-centring cost does, e.g. pick_ik's center_joints_weight); it is applied only while a non-zero
    twist moves the arm, and cannot change the end-effector motion.
    """

    params: ServoParams
    joint_lower: np.ndarray
    joint_upper: np.ndarray
    velocity_limits: np.ndarray
    posture_gain: float = 0.0  # 1/s
    home: np.ndarray | None = None
    latest: TwistCommand | None = None
    counters: ServoCounters = field(default_factory=ServoCounters)
    # (stamp_ns, received_ns) of every command that moved the arm, in order of first use
    motion_log: list[tuple[int, int]] = field(default_factory=list)
    _logged: TwistCommand | None = None

    def receive(self, command: TwistCommand) -> bool:
        """Take a twist as the latest command (Servo keeps only the newest); False for NaN/inf values."""
        if not np.all(np.isfinite(command.velocities)):
            self.counters.rejected_non_finite += 1
            return False
        self.latest = command
        return True

    def clear(self) -> None:
        """Forget the command and the log (a new episode)."""
        self.latest, self._logged = None, None
        self.motion_log.clear()
        self.counters = ServoCounters()

    def fresh(self, now_ns: int) -> bool:
        return self.latest is not None and \
            now_ns - self.latest.stamp_ns < self.params.incoming_command_timeout * 1e9

    def update(self, now_ns: int, q: np.ndarray, arm: ArmKinematics) -> ServoOutput:
        """One cycle at joint positions `q` of `arm`."""
        self.counters.cycles += 1
        halt = np.zeros(len(q))
        if self.latest is None:
            return ServoOutput(halt, NO_COMMAND)
        if not self.fresh(now_ns):
            self.counters.stale_cycles += 1
            return ServoOutput(halt, STALE)
        cmd = self.latest
        rotation = arm.frame_rotation(cmd.frame_id)
        if rotation is None:
            self.counters.invalid += 1
            return ServoOutput(halt, INVALID)
        twist = self._in_units(cmd.velocities)
        twist = np.concatenate([rotation @ twist[:3], rotation @ twist[3:]])
        jacobian = arm.jacobian(q)
        pinv = np.linalg.pinv(jacobian)
        qd = pinv @ twist
        if self.posture_gain > 0 and self.home is not None and np.any(twist != 0.0):
            # redundancy resolution (see the class doc): never moves the ee, only the elbow
            qd = qd + (np.eye(len(q)) - pinv @ jacobian) @ (self.posture_gain * (self.home - q))
        if not np.all(np.isfinite(qd)):  # a finite but absurd twist (1e300 m/s) overflowed: refuse it
            self.counters.invalid += 1
            return ServoOutput(halt, INVALID)
        scale, status = self._singularity_scale(arm, q, jacobian, qd)
        if scale == 0.0:
            self.counters.singularity_halt += 1
            return ServoOutput(halt, status)
        qd = qd * scale
        over = float(np.max(np.abs(qd) / self.velocity_limits))
        if over > 1.0:
            qd = qd / over
        nxt = q + qd * self.params.publish_period
        margin = self.params.joint_limit_margin
        bound = (((nxt < self.joint_lower + margin) & (qd < 0))
                 | ((nxt > self.joint_upper - margin) & (qd > 0)))
        if bound.any():
            self.counters.joint_bound += 1
            if self.params.halt_all_joints_in_cartesian_mode:
                return ServoOutput(halt, JOINT_BOUND)
            qd = np.where(bound, 0.0, qd)
            status = JOINT_BOUND
        out = ServoOutput(qd, status, cmd)
        if out.moving:
            self.counters.moving_cycles += 1
            if cmd is not self._logged:
                self._logged = cmd
                self.motion_log.append((cmd.stamp_ns, cmd.received_ns))
        return out

    def _in_units(self, velocities: np.ndarray) -> np.ndarray:
        if self.params.command_in_type == "speed_units":
            return velocities
        v = np.clip(velocities, -1.0, 1.0)
        return np.concatenate([v[:3] * self.params.scale_linear, v[3:] * self.params.scale_rotational])

    def _singularity_scale(self, arm: ArmKinematics, q: np.ndarray, jacobian: np.ndarray,
                           qd: np.ndarray) -> tuple[float, str]:
        """(velocity scale, status) from the Jacobian's condition number, and whether the commanded
        motion increases it (approaching) or not (leaving: thresholds x the leaving multiplier)."""
        condition = _condition(jacobian)
        lower = self.params.lower_singularity_threshold
        if condition <= lower:  # the common case: no second Jacobian needed
            return 1.0, NO_WARNING
        norm = float(np.linalg.norm(qd))
        step = qd / norm * SINGULARITY_PROBE_STEP if norm > 0 else qd
        approaching = _condition(arm.jacobian(q + step)) > condition
        hard = self.params.hard_stop_singularity_threshold
        if not approaching:
            lower *= self.params.leaving_singularity_threshold_multiplier
            hard *= self.params.leaving_singularity_threshold_multiplier
        if condition >= hard:
            return 0.0, HALT_FOR_SINGULARITY
        if condition > lower:
            status = (DECELERATE_FOR_APPROACHING_SINGULARITY if approaching
                      else DECELERATE_FOR_LEAVING_SINGULARITY)
            return 1.0 - (condition - lower) / (hard - lower), status
        return 1.0, NO_WARNING


SINGULARITY_PROBE_STEP = 0.01  # rad: joint-space step along the command to tell approaching from leaving


def _condition(jacobian: np.ndarray) -> float:
    s = np.linalg.svd(jacobian, compute_uv=False)
    return float(s[0] / s[-1]) if s[-1] > 0 else math.inf
