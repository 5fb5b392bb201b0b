"""scripted_teleop (sim only): Meta-World's scripted expert playing the human operator.

It sees the robot exactly like the policy does (state topics -> observation with the same mapping,
one action per new complete state) and answers on the operator's command topics teleop/twist_cmd and
teleop/gripper_cmd, i.e. where a spacemouse driver would publish; the recorder records those. The
expert comes from a MetaWorldEnv of the same task (only its `expert_action` is used). With env=kitchen
it is the KitchenExpert of the task's sub-tasks (reset at every episode and enable), answering with
joint velocities on teleop/joint_velocity_cmd (dmil_ros/ros/embodiment.py).
dmil/teleop/enable (SetBool) starts/stops it; it follows the latched `task` topic. Enabling first waits
(up to match_timeout) until the command publishers are matched with `command_subscribers` readers: DDS
matching is not symmetric, so the recorder can list our publisher while our writer does not yet send to
it, and the first commands of a demo were lost (the sim, matched earlier, stepped on them). A human
device driver has no such wait; for it the recorder's "none yet" at record/start is the check.
"""

from __future__ import annotations

import time
from typing import Any

from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from std_msgs.msg import Float64, String
from std_srvs.srv import SetBool

from dmil_ros.ros import interfaces as itf
from dmil_ros.ros.embodiment import embodiment_for
from dmil_ros.ros.observation import ObservationMapping, StateError
from dmil_ros.ros.runner import run_node
from dmil_ros.ros.state_sync import StateSet, StateSync

NAME = "scripted_teleop"


class ScriptedTeleop(Node):
    def __init__(self, **node_kwargs: Any) -> None:
        """`node_kwargs` go to rclpy's Node (context, parameter_overrides, ...: in-process tests)."""
        super().__init__(NAME, **node_kwargs)
        self.p = itf.declare_parameters(self, itf.TELEOP_PARAMS)
        itf.follow_dynamic_parameters(self, itf.TELEOP_PARAMS, self.p)  # `ros2 param set`, checked
        self._emb = embodiment_for(self.p["env"])  # observation, command and expert of the env family
        self._task = ""
        self._expert: Any = None  # act(obs) / reset() / close()
        self._builder: Any = None
        self._mapping: ObservationMapping | None = None
        self._switch_task(self.p["task"])
        self._sync = StateSync()
        self._enabled = bool(self.p["enabled"])
        self._last_acted: int | None = None
        self._episode: int | None = None
        self._episode_start = 0  # stamp [ns] of the current episode's first state (episode_info)
        self._last_command: tuple[TwistStamped, Float64] | None = None
        self._last_sent = 0.0
        itf.subscribe_robot_state(self, self.p["state_reliability"], self._on_part, self._on_task,
                                  self._on_episode)
        command = self._emb.teleop_command  # metaworld: the twist; kitchen: the joint-velocity JointState
        self._pub_twist = self.create_publisher(command.msg_type, command.name, command.qos)
        self._pub_gripper = (self.create_publisher(itf.TELEOP_GRIPPER.msg_type, itf.TELEOP_GRIPPER.name,
                                                   itf.TELEOP_GRIPPER.qos)
                             if self._emb.twist_command_topics else None)  # (kitchen: in the joint command)
        self.create_service(SetBool, itf.TELEOP_ENABLE.name, self._on_enable)
        state = "enabled" if self._enabled else "disabled (dmil/teleop/enable)"
        self.get_logger().info(f"scripted expert for {self._task} {state}")

    def _switch_task(self, task: str) -> None:
        expert = self._emb.make_expert(task)  # ConfigError at startup for an unknown task
        if self._expert is not None:
            self._expert.close()
        self._expert, self._task = expert, task
        self._mapping = self._emb.mapping(task, self.p["gripper_joint"], self.p["gripper_scale"],
                                          self.p["expected_joint_count"])
        self._builder = self._emb.builder(self._mapping)

    def _on_part(self, role: str, msg: Any) -> None:
        self._sync.update(role, msg, 0.0)
        state = self._sync.exact()
        if state is None or not self._enabled or state.stamp_ns < self._episode_start:
            return  # (an older state is a leftover of the previous episode)
        if state.stamp_ns != self._last_acted:
            self._last_acted = state.stamp_ns
            self._act(state)
        elif self._last_command is not None and time.monotonic() - self._last_sent >= itf.RESEND_PERIOD:
            self._send(*self._last_command)  # same state again (heartbeat): the sim lost our command

    def _act(self, state: StateSet) -> None:
        assert self._mapping is not None and self._builder is not None and self._expert is not None
        try:
            robot = self._emb.robot_state_from_msgs(self._mapping, state.joints, state.ee, state.objects,
                                                    state.goal)
            action = self._expert.act(self._builder.observe(robot))
        except StateError as e:
            self._builder.reset()
            self.get_logger().warning(f"cannot operate: {e}", throttle_duration_sec=2.0)
            return
        self._send(*self._emb.action_to_command(action, state.joints.header.stamp, self.p["frame_id"]))

    def _send(self, twist: TwistStamped, gripper: Float64 | None) -> None:
        if gripper is not None and self._pub_gripper is not None:  # (kitchen: the joint command has them)
            self._pub_gripper.publish(gripper)  # gripper first: a lock-step sim steps on the twist
        self._pub_twist.publish(twist)
        self._last_command = (twist, gripper)
        self._last_sent = time.monotonic()

    def _on_task(self, msg: String) -> None:
        if msg.data and msg.data != self._task:
            try:
                self._switch_task(msg.data)
                self.get_logger().info(f"now operating {msg.data}")
            except itf.ConfigError as e:
                self.get_logger().error(str(e))

    def _on_episode(self, msg: String) -> None:
        info = itf.parse_episode_info(msg.data)
        if info is None:
            return
        episode, start = info["episode"], info["start_ns"]
        if (episode != self._episode or start != self._episode_start) and self._builder is not None:
            self._episode, self._episode_start = episode, start  # (a task switch restarts at 0)
            self._builder.reset()
            self._expert.reset()  # kitchen: the expert's phase machine starts over

    def _matched_subscribers(self) -> int:
        """Readers every command publisher is matched with (the least of them)."""
        return min(p.get_subscription_count() for p in (self._pub_twist, self._pub_gripper) if p is not None)

    def _wait_for_subscribers(self) -> str:
        """Block (bounded) until the commands reach `command_subscribers` readers; a note for the reply.
        The wait happens in DDS's own threads, so blocking this callback does not hold matching up."""
        wanted = self.p["command_subscribers"]
        deadline = time.monotonic() + self.p["match_timeout"]
        while (matched := self._matched_subscribers()) < wanted and time.monotonic() < deadline:
            time.sleep(0.01)
        note = f"; commands reach {matched} subscriber(s)"
        if matched < wanted:
            note += f", not the {wanted} expected (command_subscribers): is the recorder/sim up?"
            self.get_logger().warning(f"{self._pub_twist.topic_name}{note}")
        return note

    def _on_enable(self, req: SetBool.Request, res: SetBool.Response) -> SetBool.Response:
        note = self._wait_for_subscribers() if req.data else ""
        self._enabled = bool(req.data)
        self._last_command = None
        if self._enabled and self._builder is not None:
            self._builder.reset()
            self._expert.reset()
            self._last_acted = None
            state = self._sync.exact()
            if state is not None and state.stamp_ns >= self._episode_start:
                self._last_acted = state.stamp_ns
                self._act(state)  # a waiting lock-step sim needs this first command
        res.success, res.message = True, f"scripted teleop {'enabled' if self._enabled else 'disabled'}{note}"
        self.get_logger().info(res.message)
        return res

    def close(self) -> None:
        if self._expert is not None:
            self._expert.close()


def main(argv: list[str] | None = None) -> int:
    return run_node(NAME, ScriptedTeleop, argv)


if __name__ == "__main__":
    raise SystemExit(main())
