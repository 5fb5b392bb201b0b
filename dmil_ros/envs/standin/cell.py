"""The robot cell the stand-in plays: Servo + the Sawyer scene + perception, on one clock.

Physics runs in real time against the caller's clock: `advance(now_ns)` takes MuJoCo steps until the
scene's time has caught up with `now_ns` (the episode starts at the reset's `now_ns`). Servo runs
every `publish_period` of that time with the clock value of its cycle (so its stale check compares
command stamps with the time the arm is at), perception captures at its own rate, and success is
checked at every capture (on the true state the camera sees: Meta-World's observation costs
milliseconds, too much for every physics step on a shared machine). If the caller stalls for longer
than MAX_LAG the scene does not race to catch up: the arm was paused that long (counted in
`stalls`), as a robot whose driver stalled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dmil_ros.envs.base import RobotState
from dmil_ros.envs.standin.arm import JOINT_LOWER, JOINT_UPPER, VELOCITY_LIMITS, SawyerScene
from dmil_ros.envs.standin.perception import ObjectFrame, Perception, PerceptionSettings
from dmil_ros.envs.standin.servo import NO_COMMAND, Servo, ServoParams, TwistCommand

MAX_LAG = 0.25  # s of physics the cell catches up at most in one advance


@dataclass(frozen=True)
class CellSettings:
    servo: ServoParams = field(default_factory=ServoParams)
    posture_gain: float = 2.0  # 1/s, null-space pull towards the reset posture (see Servo)
    tracking_bandwidth: float = 100.0  # rad/s, the arm's joint controller (see arm.py)
    effort_scale: float = 10.0  # x the Sawyer's joint effort limits (see arm.py)
    perception: PerceptionSettings = field(default_factory=PerceptionSettings)


class RobotCell:
    def __init__(self, task: str, settings: CellSettings | None = None) -> None:
        self.settings = settings or CellSettings()
        self.scene = SawyerScene(task, self.settings.tracking_bandwidth, self.settings.effort_scale)
        self.servo = Servo(self.settings.servo, JOINT_LOWER, JOINT_UPPER, VELOCITY_LIMITS,
                           posture_gain=self.settings.posture_gain)
        self.perception = Perception(self.settings.perception)
        self.episode = -1
        self.seed = 0
        self.status = NO_COMMAND
        self.stalls = 0
        self._t0_ns = 0
        self._next_servo = 0.0
        self._goal = np.zeros(3)
        self.success = False  # at the latest perception capture
        self.first_success: float | None = None  # scene time of the first successful cycle

    @property
    def task(self) -> str:
        return self.scene.task

    def clock_ns(self, scene_time: float) -> int:
        """The caller's clock value [ns] at scene time `scene_time`."""
        return self._t0_ns + round(scene_time * 1e9)

    def reset(self, seed: int, now_ns: int) -> None:
        self.episode += 1
        self.seed = seed
        self.scene.reset(seed)
        self.servo.clear()
        self.servo.home = self.scene.arm_state().q
        self.perception.reset(0.0, seed)
        self.status = NO_COMMAND
        self.stalls = 0
        self._t0_ns = now_ns
        self._next_servo = 0.0
        self.success = self.scene.success()
        self.first_success = 0.0 if self.success else None
        self._goal = self.scene.robot_state().goal_position

    def receive_twist(self, command: TwistCommand) -> bool:
        return self.servo.receive(command)

    def receive_gripper(self, effort: float) -> bool:
        if not np.isfinite(effort):
            return False
        self.scene.command_gripper(effort)
        return True

    def advance(self, now_ns: int) -> None:
        """Physics, Servo and perception up to `now_ns`."""
        target = (now_ns - self._t0_ns) * 1e-9
        dt = self.scene.timestep
        if target - self.scene.time > MAX_LAG:
            self.stalls += 1
            self._t0_ns += round((target - self.scene.time - dt) * 1e9)
            target = self.scene.time + dt
        period = self.settings.servo.publish_period
        while self.scene.time + dt <= target + 1e-12:
            t = self.scene.time
            if t >= self._next_servo - 1e-12:
                self._servo_cycle(t)
                self._next_servo += period
            if self.perception.capture_due(t):
                self.perception.capture(t, self.scene.robot_state())
                self._check_success(t)
            self.scene.step()

    def _servo_cycle(self, t: float) -> None:
        arm = self.scene.arm_state()
        out = self.servo.update(self.clock_ns(t), arm.q, self.scene)
        self.scene.command_joint_velocities(out.joint_velocities)
        self.status = out.status

    def _check_success(self, t: float) -> None:
        self.success = self.scene.success()
        if self.success and self.first_success is None:
            self.first_success = t

    def robot_state(self) -> RobotState:
        """The true state (objects included)."""
        return self.scene.robot_state()

    def driver_state(self) -> RobotState:
        """Joints, hand and gripper now, the goal of the episode, no objects (see SawyerScene)."""
        return self.scene.driver_state(self._goal)

    def released_frames(self, now_ns: int) -> list[ObjectFrame]:
        """Perception frames delivered by `now_ns` (capture times in scene seconds)."""
        return self.perception.released((now_ns - self._t0_ns) * 1e-9)

    def report(self) -> dict[str, Any]:
        c = self.servo.counters
        return {
            "task": self.task, "episode": self.episode, "seed": self.seed,
            "time": round(self.scene.time, 4), "success": self.success,
            "first_success_time": None if self.first_success is None else round(self.first_success, 4),
            "servo_status": self.status, "stalls": self.stalls, "unstable": self.scene.unstable,
            "servo": {"cycles": c.cycles, "moving_cycles": c.moving_cycles, "stale_cycles": c.stale_cycles,
                      "invalid": c.invalid, "joint_bound": c.joint_bound,
                      "singularity_halt": c.singularity_halt, "rejected_non_finite": c.rejected_non_finite},
            # every command that moved the arm: [header stamp ns, reception ns]
            "motion_commands": [list(e) for e in self.servo.motion_log],
        }

    def close(self) -> None:
        self.scene.close()
