"""robot_standin: what a real robot cell answers to the hardware graph, on a Meta-World scene.

One node plays the cell's components (the maths lives in dmil_ros/envs/standin/, ROS-free):
- MoveIt Servo: TwistStamped on servo_node/delta_twist_cmds (speed_units by default), a twist used
  while its header stamp is younger than incoming_command_timeout, turned into joint velocities of
  the Sawyer through its MuJoCo Jacobian, with velocity/joint limits and singularity handling.
- the robot driver: joint_states (right_j0..right_j6 + the finger joint) and ee_pose at driver_rate,
  stamped with the clock, from the physics (never from the command).
- perception: object_poses at camera_rate, stamped with the capture time, delivered `latency` later
  with Gaussian noise.
- the operator side: the goal (PointStamped) at goal_rate.
- a gripper driver: Float64 effort on gripper/command (+1 closes), held until the next one.
Poses are in the Sawyer's `base` frame; the mapping to the policy's observation is the embodiment's
(dmil_ros/ros/embodiment.py, as for the sim bridge). Physics runs in real time with the node clock.

Services: standin/reset (Trigger: a new scene, seed + episode index, the arm homed), standin/report
(Trigger: JSON with success, Servo counters and every command that moved the arm), standin/state_dropout
(SetBool: stop / resume publishing the state, as a driver or camera outage; physics and Servo go on).
The latched standin/episode (JSON) says the task, episode, seed and success whenever they change.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from rclpy.node import Node
from std_msgs.msg import Float64, String
from std_srvs.srv import SetBool, Trigger

from dmil_ros.envs.standin.arm import GRIPPER_SCALE
from dmil_ros.envs.standin.cell import CellSettings, RobotCell
from dmil_ros.envs.standin.perception import PerceptionSettings, with_objects
from dmil_ros.envs.standin.servo import ServoParams, TwistCommand
from dmil_ros.ros import interfaces as itf
from dmil_ros.ros.embodiment import METAWORLD
from dmil_ros.ros.guarded import subscribe
from dmil_ros.ros.observation import stamp_ns
from dmil_ros.ros.realtime import set_realtime_priority
from dmil_ros.ros.runner import run_node

NAME = "robot_standin"


def settings_from_params(p: dict[str, Any]) -> CellSettings:
    """The cell's settings from the node's parameters; ConfigError for an inconsistent combination."""
    try:
        servo = ServoParams(
            command_in_type=p["command_in_type"], scale_linear=p["scale_linear"],
            scale_rotational=p["scale_rotational"], publish_period=p["publish_period"],
            incoming_command_timeout=p["incoming_command_timeout"],
            lower_singularity_threshold=p["lower_singularity_threshold"],
            hard_stop_singularity_threshold=p["hard_stop_singularity_threshold"],
            leaving_singularity_threshold_multiplier=p["leaving_singularity_threshold_multiplier"],
            joint_limit_margin=p["joint_limit_margin"],
            halt_all_joints_in_cartesian_mode=p["halt_all_joints_in_cartesian_mode"])
        camera = PerceptionSettings(rate=p["camera_rate"], latency=p["latency"],
                                    position_noise=p["position_noise"],
                                    orientation_noise=p["orientation_noise"])
    except ValueError as e:
        raise itf.ConfigError(str(e)) from None
    return CellSettings(servo=servo, perception=camera, posture_gain=p["posture_gain"],
                        tracking_bandwidth=p["tracking_bandwidth"], effort_scale=p["effort_scale"])


def _time(ns: int) -> Time:
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


class RobotStandin(Node):
    def __init__(self, **node_kwargs: Any) -> None:
        """`node_kwargs` go to rclpy's Node (context, parameter_overrides, ...: in-process tests)."""
        super().__init__(NAME, **node_kwargs)
        self.p = itf.declare_parameters(self, itf.STANDIN_PARAMS)
        try:
            self._cell = RobotCell(self.p["task"], settings_from_params(self.p))
        except ValueError as e:  # an unknown task
            raise itf.ConfigError(f"cannot run task {self.p['task']!r}: {e}") from None
        self._dropout = False
        self._last_state_ns = 0  # stamp of the newest state published
        self._next_goal_ns = 0
        self._reported: dict[str, Any] = {}

        def pub(spec: itf.TopicSpec) -> Any:
            return self.create_publisher(spec.msg_type, spec.name, spec.qos)

        self._pub_js, self._pub_ee = pub(itf.JOINT_STATES), pub(itf.EE_POSE)
        self._pub_obj, self._pub_goal = pub(itf.OBJECT_POSES), pub(itf.GOAL)
        self._pub_episode = pub(itf.STANDIN_EPISODE)
        self._subscribe(itf.SERVO_TWIST, self._on_twist)
        self._subscribe(itf.GRIPPER_COMMAND, self._on_gripper)
        self.create_service(Trigger, itf.STANDIN_RESET.name, self._on_reset)
        self.create_service(Trigger, itf.STANDIN_REPORT.name, self._on_report)
        self.create_service(SetBool, itf.STANDIN_DROPOUT.name, self._on_dropout)
        self._reset()
        self.create_timer(1.0 / self.p["driver_rate"], self._tick)
        priority = self.p["realtime_priority"]
        if priority > 0:
            problem = set_realtime_priority(priority)
            if problem:
                self.get_logger().warning(f"realtime_priority {priority} not set: {problem}")
        c = self._cell.settings
        self.get_logger().info(
            f"{self._cell.task}: Servo on {self.resolve_topic_name(itf.SERVO_TWIST.name)} "
            f"({c.servo.command_in_type}, timeout {c.servo.incoming_command_timeout:g} s), gripper on "
            f"{self.resolve_topic_name(itf.GRIPPER_COMMAND.name)}; joint_states "
            f"{self.p['driver_rate']:g} Hz, "
            f"perception {c.perception.rate:g} Hz, latency {c.perception.latency * 1e3:g} ms, noise "
            f"{c.perception.position_noise * 1e3:g} mm")

    def _subscribe(self, spec: itf.TopicSpec, callback: Any) -> None:
        subscribe(self, spec.msg_type, spec.name, callback, spec.qos)

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    # --- commands -------------------------------------------------------------------------------
    def _on_twist(self, msg: Any, info: Any) -> None:
        received = info.get("received_timestamp") or self._now_ns()
        lin, ang = msg.twist.linear, msg.twist.angular
        command = TwistCommand(str(msg.header.frame_id), np.array([lin.x, lin.y, lin.z], dtype=np.float64),
                               np.array([ang.x, ang.y, ang.z], dtype=np.float64), stamp_ns(msg.header.stamp),
                               int(received))
        if not self._cell.receive_twist(command):
            self.get_logger().warning("Servo: ignoring a twist with NaN/inf values",
                                      throttle_duration_sec=2.0)

    def _on_gripper(self, msg: Float64) -> None:
        if not self._cell.receive_gripper(float(msg.data)):
            self.get_logger().warning("gripper: ignoring a non-finite effort", throttle_duration_sec=2.0)

    # --- the cell's clock ----------------------------------------------------------------------
    def _tick(self) -> None:
        now = self._now_ns()
        self._cell.advance(now)
        frames = self._cell.released_frames(now)
        if self._cell.scene.unstable:
            self.get_logger().error("physics diverged; call standin/reset", throttle_duration_sec=5.0)
            return
        if not self._dropout:
            self._publish_state(now, frames)
        self._publish_episode()

    def _publish_state(self, now: int, frames: list[Any]) -> None:
        state = self._cell.driver_state()
        stamp = _time(now)
        js, ee, _, goal = METAWORLD.state_to_msgs(state, stamp, self.p["frame_id"], self.p["gripper_joint"],
                                                  GRIPPER_SCALE)
        if now >= self._next_goal_ns:
            self._pub_goal.publish(goal)
            self._next_goal_ns = now + round(1e9 / self.p["goal_rate"])
        for frame in frames:
            capture = _time(self._cell.clock_ns(frame.capture_time))
            objects = METAWORLD.state_to_msgs(with_objects(state, frame), capture, self.p["frame_id"], "")[2]
            self._pub_obj.publish(objects)
        self._pub_js.publish(js)
        self._pub_ee.publish(ee)
        self._last_state_ns = now

    def _episode_info(self) -> dict[str, Any]:
        c = self._cell
        return {"task": c.task, "episode": c.episode, "seed": c.seed, "success": c.first_success is not None,
                "first_success_time": c.first_success}

    def _publish_episode(self, force: bool = False) -> None:
        info = self._episode_info()
        if force or info != self._reported:
            self._reported = info
            self._pub_episode.publish(String(data=json.dumps(info)))

    # --- services ------------------------------------------------------------------------------
    def _reset(self) -> str:
        seed = self.p["seed"] + self._cell.episode + 1
        self._cell.reset(seed, self._now_ns())
        self._next_goal_ns = 0
        self._publish_episode(force=True)
        return f"episode {self._cell.episode} of {self._cell.task} started (seed {seed})"

    def _on_reset(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        res.success, res.message = True, self._reset()
        self.get_logger().info(res.message)
        return res

    def _on_report(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        report = {**self._cell.report(), "dropout": self._dropout, "last_state_ns": self._last_state_ns}
        res.success, res.message = True, json.dumps(report)
        return res

    def _on_dropout(self, req: SetBool.Request, res: SetBool.Response) -> SetBool.Response:
        self._dropout = bool(req.data)
        res.success = True
        res.message = json.dumps({"dropout": self._dropout, "last_state_ns": self._last_state_ns})
        what = "stopped" if self._dropout else "resumed"
        self.get_logger().warning(f"state publishing {what} (standin/state_dropout)")
        return res

    def close(self) -> None:
        self._cell.close()


def main(argv: list[str] | None = None) -> int:
    return run_node(NAME, RobotStandin, argv)


if __name__ == "__main__":
    raise SystemExit(main())
