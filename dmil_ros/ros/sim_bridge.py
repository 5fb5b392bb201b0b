"""sim_bridge: a Meta-World task behind the robot's ROS interface (state out, ee commands in).

Modes (parameter `lock_step`):
- lock-step (default): one physics step per received twist command, state published after each
  step; a command stamped older than the current state is stale and dropped, so a step is taken
  exactly once per state -> reproducible evaluation. After a twist the bridge waits up to
  `gripper_grace` s for the gripper command of the same cycle (commanders send gripper first).
- real-time: a timer steps at `rate` Hz with the last command held; zero velocity once no twist
  arrived for `command_timeout` s (the gripper keeps its last command).
While nothing changes (waiting for a command, episode over) the unchanged state is republished at
`heartbeat_rate` with its original stamp, so late joiners see it and the watchdogs stay calm.

Command sources: it listens to both the policy's (dmil/policy/*) and the operator's (teleop/*)
command topics; `command_source` = any | policy | teleop picks which are obeyed. With `any`,
enable one source at a time (dmil/policy/enable, dmil/teleop/enable).

Services: dmil/sim/reset (Trigger). Task switch: the `task` parameter (rebuilds the env, resets).

env=kitchen (Franka Kitchen; mapping in dmil_ros/ros/embodiment.py): the same state topics (23 joints,
object_poses = [kettle], goal = zeros, episode_info adds the `completed` sub-tasks) and, instead of
twist + gripper, one JointState joint-velocity command per step on dmil/policy/joint_velocity_cmd or
teleop/joint_velocity_cmd (validated: a bad one is refused with a logged reason).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_msgs.msg import Bool, Float64, String
from std_srvs.srv import Trigger

from dmil_ros.envs.base import ManipulationEnv
from dmil_ros.envs.registry import make_env
from dmil_ros.ros import interfaces as itf
from dmil_ros.ros.embodiment import CommandError, embodiment_for
from dmil_ros.ros.guarded import subscribe
from dmil_ros.ros.observation import stamp_ns
from dmil_ros.ros.runner import run_node

NAME = "sim_bridge"


def build_env(env: str, task: str, max_episode_steps: int) -> ManipulationEnv:
    try:
        return make_env(env, task, max_episode_steps=max_episode_steps)
    except (ValueError, KeyError) as e:
        raise itf.ConfigError(f"cannot build {env} task {task!r}: {e}") from e


def env_action(env: ManipulationEnv, velocity: np.ndarray, gripper: float) -> np.ndarray:
    """Twist -> env action with the env's own constants (tiny adapter: not part of ManipulationEnv)."""
    convert = getattr(env, "action_from_ee_velocity", None)
    if convert is None:
        raise itf.ConfigError(f"{type(env).__name__} cannot convert ee velocities to actions")
    return np.asarray(convert(velocity, gripper), dtype=np.float32)


class SimBridge(Node):
    def __init__(self, **node_kwargs: Any) -> None:
        """`node_kwargs` go to rclpy's Node (context, parameter_overrides, ...: in-process tests)."""
        super().__init__(NAME, **node_kwargs)
        self.p = itf.declare_parameters(self, itf.SIM_BRIDGE_PARAMS)
        self._emb = embodiment_for(self.p["env"])
        self._extra: dict[str, Any] = {}  # env-specific episode_info fields
        self._task: str = self.p["task"]
        self._env = build_env(self.p["env"], self._task, self.p["max_episode_steps"])
        self._pending_env: ManipulationEnv | None = None
        self._episode = -1
        self._step = 0
        self._success = False
        self._done = True
        self._stamp = self._start_stamp = self.get_clock().now().to_msg()
        self._last_publish = 0.0
        # Command state: latest twist/gripper and, in lock-step, whether a step is owed.
        self._velocity = self._emb.zero_velocity()  # metaworld: ee twist; kitchen: the whole action
        self._twist_time = -math.inf
        self._twist_pending = False
        self._gripper = -1.0  # open, as after reset
        self._gripper_fresh = False
        self._last_source = ""

        def pub(spec: itf.TopicSpec) -> Any:
            return self.create_publisher(spec.msg_type, spec.name, spec.qos)

        self._pub_js, self._pub_ee = pub(itf.JOINT_STATES), pub(itf.EE_POSE)
        self._pub_obj, self._pub_goal = pub(itf.OBJECT_POSES), pub(itf.GOAL)
        self._pub_success, self._pub_info, self._pub_task = pub(itf.TASK_SUCCESS), pub(itf.EPISODE_INFO), pub(
            itf.TASK)
        for source, twist, grip in self._emb.twist_command_topics:  # metaworld: policy and teleop
            subscribe(self, twist.msg_type, twist.name, lambda m, s=source: self._on_twist(s, m), twist.qos)
            subscribe(self, grip.msg_type, grip.name, lambda m, s=source: self._on_gripper(s, m), grip.qos)
        for source, joint_cmd in self._emb.joint_command_topics:  # kitchen: policy and teleop
            subscribe(self, joint_cmd.msg_type, joint_cmd.name,
                      lambda m, s=source: self._on_joint_command(s, m), joint_cmd.qos)
        self.create_service(itf.SIM_RESET.srv_type, itf.SIM_RESET.name, self._on_reset)
        itf.follow_dynamic_parameters(self, itf.SIM_BRIDGE_PARAMS, self.p, applied=self._params_changed)
        self.add_on_set_parameters_callback(self._check_params)
        self.add_post_set_parameters_callback(self._apply_params)

        # Lock-step: fires once `gripper_grace` after a twist whose gripper command has not come.
        self._grace_timer = self.create_timer(max(self.p["gripper_grace"], 1e-3), self._try_step)
        self._grace_timer.cancel()
        if not self.p["lock_step"]:
            self.create_timer(1.0 / self.p["rate"], self._tick)
        self.create_timer(1.0 / self.p["heartbeat_rate"], self._heartbeat)
        self._publish_task()
        self._reset()
        mode = "lock-step" if self.p["lock_step"] else f"real-time {self.p['rate']:g} Hz"
        self.get_logger().info(f"{self.p['env']} {self._task} ready ({mode}, commands from "
                               f"{self.p['command_source']})")

    # --- episode ------------------------------------------------------------------------------
    def _reset(self) -> str:
        self._episode += 1
        seed = self.p["seed"] + self._episode
        self._env.reset(seed)
        self._step, self._success, self._done = 0, False, False
        self._twist_pending, self._gripper_fresh = False, False
        self._velocity, self._gripper = self._emb.zero_velocity(), -1.0
        self._extra = self._emb.episode_extra({})
        # The episode's first stamp goes out with the info, before the state (receivers then know
        # that any older state is a leftover of the previous episode).
        self._stamp = self._start_stamp = self.get_clock().now().to_msg()
        self._publish_info()
        self._publish_state(new_stamp=False)
        return f"episode {self._episode} of {self._task} started (seed {seed})"

    def _do_step(self, velocity: np.ndarray, gripper: float) -> None:
        result = self._env.step(self._emb.env_action(self._env, velocity, gripper))
        self._step += 1
        newly_solved = result.success and not self._success
        self._success = bool(result.success)
        self._done = bool(result.done or (self.p["end_on_success"] and result.success))
        extra = self._emb.episode_extra(result.info)  # kitchen: a sub-task completed -> new info
        extra_changed, self._extra = extra != self._extra, extra
        self._publish_state(new_stamp=True)
        if newly_solved or self._done or extra_changed:
            self._publish_info()
        if self._done and self.p["auto_reset"]:
            self._reset()

    def _try_step(self) -> None:
        """Lock-step: take the owed step once its gripper command arrived (or the grace expired)."""
        if self._done or not self._twist_pending:
            self._grace_timer.cancel()
            return
        if not self._gripper_fresh and time.monotonic() - self._twist_time < self.p["gripper_grace"]:
            if self._grace_timer.is_canceled():
                self._grace_timer.reset()
            return
        self._grace_timer.cancel()
        self._twist_pending, self._gripper_fresh = False, False
        self._do_step(self._velocity, self._gripper)

    def _tick(self) -> None:
        """Real-time: step with the held command, zero velocity after the command timeout."""
        if self._done:
            return
        fresh = time.monotonic() - self._twist_time <= self.p["command_timeout"]
        self._do_step(self._velocity if fresh else self._emb.zero_velocity(), self._gripper)

    # --- commands -----------------------------------------------------------------------------
    def _accepts(self, source: str) -> bool:
        wanted = self.p["command_source"]
        if wanted != "any" and wanted != source:
            return False
        if self._last_source and source != self._last_source and \
                time.monotonic() - self._twist_time < self.p["command_timeout"]:
            self.get_logger().warning(f"commands from both {self._last_source} and {source}; enable only "
                                      "one source (or set command_source)", throttle_duration_sec=2.0)
        return True

    def _on_twist(self, source: str, msg: Any) -> None:
        if not self._accepts(source):
            return
        lin = msg.twist.linear
        velocity = np.array([lin.x, lin.y, lin.z], dtype=np.float64)
        if not np.isfinite(velocity).all():
            self.get_logger().warning(f"ignoring non-finite twist from {source}", throttle_duration_sec=1.0)
            return
        self._take_command(source, msg.header.stamp, velocity, with_gripper=False)

    def _on_gripper(self, source: str, msg: Float64) -> None:
        if not self._accepts(source) or not math.isfinite(msg.data):
            return
        self._gripper = float(np.clip(msg.data, -1.0, 1.0))
        self._gripper_fresh = True
        if self.p["lock_step"]:
            self._try_step()

    def _on_joint_command(self, source: str, msg: Any) -> None:
        """kitchen: one JointState carries the whole action (gripper included): step on it at once."""
        if not self._accepts(source):
            return
        try:
            action = self._emb.joint_command_to_action(msg)
        except CommandError as e:
            self.get_logger().warning(f"ignoring joint command from {source}: {e}", throttle_duration_sec=1.0)
            return
        self._take_command(source, msg.header.stamp, action, with_gripper=True)

    def _take_command(self, source: str, stamp: Any, command: np.ndarray, with_gripper: bool) -> None:
        """Hold `command` (twist velocity, or a whole kitchen action); in lock-step, step on it."""
        ns = stamp_ns(stamp)
        if self.p["lock_step"] and ns and ns < stamp_ns(self._stamp):
            return  # computed for an older state: that step was already taken
        self._last_source = source
        self._velocity, self._twist_time = command, time.monotonic()
        if self.p["lock_step"]:
            self._twist_pending = True
            self._gripper_fresh = self._gripper_fresh or with_gripper  # a kitchen action carries the fingers
            self._try_step()

    # --- publishing ---------------------------------------------------------------------------
    def _publish_state(self, new_stamp: bool) -> None:
        if new_stamp:
            self._stamp = self.get_clock().now().to_msg()
        js, ee, objs, goal = self._emb.state_to_msgs(self._env.robot_state(), self._stamp, self.p["frame_id"],
                                                     self.p["gripper_joint"])
        # Goal and objects first: receivers act once the synced parts are complete.
        self._pub_goal.publish(goal)
        self._pub_obj.publish(objs)
        self._pub_js.publish(js)
        self._pub_ee.publish(ee)
        self._pub_success.publish(Bool(data=self._success))
        self._last_publish = time.monotonic()

    def _heartbeat(self) -> None:
        if time.monotonic() - self._last_publish >= 0.9 / self.p["heartbeat_rate"]:
            self._publish_state(new_stamp=False)

    def _publish_info(self) -> None:
        info = {"task": self._task, "episode": self._episode, "seed": self.p["seed"] + self._episode,
                "step": self._step, "success": self._success, "done": self._done,
                "start_ns": stamp_ns(self._start_stamp),
                "max_steps": self._env.max_episode_steps, "lock_step": self.p["lock_step"], **self._extra}
        self._pub_info.publish(String(data=json.dumps(info)))

    def _publish_task(self) -> None:
        self._pub_task.publish(String(data=self._task))

    # --- services / parameters ----------------------------------------------------------------
    def _on_reset(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        res.success, res.message = True, self._reset()
        self.get_logger().info(res.message)
        return res

    def _params_changed(self, names: set[str]) -> None:
        if "gripper_grace" in names:
            self._grace_timer.timer_period_ns = int(max(self.p["gripper_grace"], 1e-3) * 1e9)

    def _check_params(self, params: list[Parameter]) -> SetParametersResult:
        for prm in params:
            if prm.name == "task":
                try:
                    self._pending_env = build_env(self.p["env"], str(prm.value), self.p["max_episode_steps"])
                except itf.ConfigError as e:
                    return SetParametersResult(successful=False, reason=str(e))
        return SetParametersResult(successful=True)

    def _apply_params(self, params: list[Parameter]) -> None:
        for prm in params:
            if prm.name == "task" and self._pending_env is not None:
                self._env.close()
                self._env, self._pending_env = self._pending_env, None
                self._task, self.p["task"] = str(prm.value), str(prm.value)
                self._episode = -1
                self._publish_task()
                self.get_logger().info(f"switched task: {self._reset()}")

    def close(self) -> None:
        self._env.close()


def main(argv: list[str] | None = None) -> int:
    return run_node(NAME, SimBridge, argv)


if __name__ == "__main__":
    raise SystemExit(main())
