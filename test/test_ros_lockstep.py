"""Regression tests for the lock-step races behind the intermittent e2e failure (deterministic).

Each node runs in its own context and is spun by hand (`spin_once`), so the test decides what the
executor finds ready at once, as a node that fell behind under CPU load does:
- the recorder's stop must not drop what DDS delivered but the executor had not handed over yet;
- a reset's goal and episode info must be known before the new state is acted on;
- the policy's watchdog / disable must not advance a lock-step sim with a zero twist.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("rclpy")

import rclpy  # noqa: E402
from builtin_interfaces.msg import Time  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import SetBool, Trigger  # noqa: E402

from dmil_ros.core.checkpoint import save_checkpoint  # noqa: E402
from dmil_ros.core.config import ModelConfig  # noqa: E402
from dmil_ros.core.hierarchy import Hierarchy  # noqa: E402
from dmil_ros.envs.base import RobotState  # noqa: E402
from dmil_ros.ros import interfaces as itf  # noqa: E402
from dmil_ros.ros.demo_recorder import DemoRecorder  # noqa: E402
from dmil_ros.ros.mcap_io import demo_from_mcap, list_demos  # noqa: E402
from dmil_ros.ros.observation import ObservationMapping, action_to_command, stamp_ns, state_to_msgs  # noqa: E402
from dmil_ros.ros.testing import Probe, isolated_ros_env  # noqa: E402

pytestmark = pytest.mark.ros
TASK = "reach-v3"
HAND = np.array([0.0, 0.6, 0.2])


def state(k: int, goal: np.ndarray) -> RobotState:
    return RobotState(
        joint_names=tuple(f"right_j{i}" for i in range(7)) + ("r_close", "l_close"),
        joint_positions=np.linspace(-0.5, 0.5, 9),
        ee_position=HAND + 0.001 * k,
        ee_orientation=np.array([0.0, 0.0, 0.0, 1.0]),
        gripper_opening=1.0,
        object_positions=np.array([[0.0, 0.7, 0.02]]),
        object_orientations=np.array([[0.0, 0.0, 0.0, 1.0]]),
        goal_position=goal,
    )


def stamp(k: int) -> Time:
    return Time(sec=100 + k)


class Manual:
    """One node in its own context, spun only when the test says so; a probe on the same domain."""

    def __init__(self) -> None:
        env = isolated_ros_env()
        os.environ["RMW_IMPLEMENTATION"] = env["RMW_IMPLEMENTATION"]
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = env["ROS_AUTOMATIC_DISCOVERY_RANGE"]
        self.context = Context()
        rclpy.init(context=self.context, domain_id=int(env["ROS_DOMAIN_ID"]))
        self.executor = SingleThreadedExecutor(context=self.context)
        self.probe = Probe(int(env["ROS_DOMAIN_ID"]))
        self.node: Any = None

    def start(self, cls: type, **params: Any) -> Any:
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        self.node = cls(context=self.context, parameter_overrides=overrides)
        self.executor.add_node(self.node)
        return self.node

    def wait_matched(self, publish: tuple = (), watch: tuple = ()) -> None:
        """The probe's endpoints matched, on the node's side too (its subscriptions know the probe's
        writers: without that a state published now can be lost, see Probe.wait_matched)."""
        self.probe.wait_matched(publish=publish, watch=watch, nodes=(self.node,))

    def spin(self, seconds: float = 0.3) -> None:
        """Let DDS deliver for `seconds` without running callbacks, then run everything that is ready."""
        time.sleep(seconds)
        end = time.monotonic() + 5.0
        while time.monotonic() < end:
            before = time.monotonic()
            self.executor.spin_once(timeout_sec=0.05)
            if time.monotonic() - before >= 0.05:  # nothing was ready
                return

    def spin_for(self, seconds: float) -> None:
        """Run callbacks (timers included) for `seconds`."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.01)

    def publish_state(self, k: int, goal: np.ndarray) -> None:
        js, ee, objs, g = state_to_msgs(state(k, goal), stamp(k), "world", "gripper_opening")
        for spec, msg in ((itf.GOAL, g), (itf.OBJECT_POSES, objs), (itf.JOINT_STATES, js), (itf.EE_POSE, ee)):
            self.probe.publisher(spec).publish(msg)

    def publish_episode(self, episode: int, start: Time, lock_step: bool = True) -> None:
        info = {"task": TASK, "episode": episode, "start_ns": stamp_ns(start), "lock_step": lock_step,
                "step": 0, "success": False, "done": False}
        self.probe.publisher(itf.EPISODE_INFO).publish(String(data=json.dumps(info)))

    def close(self) -> None:
        self.probe.close()
        self.executor.shutdown(timeout_sec=1.0)
        getattr(self.node, "close", lambda: None)()
        if self.node is not None:
            self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


@pytest.fixture
def manual() -> Iterator[Manual]:
    m = Manual()
    yield m
    m.close()


def test_recorder_stop_keeps_messages_the_executor_had_not_taken(manual: Manual, tmp_path: Path) -> None:
    rec = manual.start(DemoRecorder, demo_dir=str(tmp_path / "demos"))
    inputs = (*itf.STATE_TOPICS, itf.TELEOP_TWIST, itf.TELEOP_GRIPPER)
    manual.wait_matched(publish=inputs)  # the recorder's side included
    manual.publish_state(-1, np.array([0.1, 0.8, 0.2]))  # the robot's idle state: the streams are live
    state_roles = {spec.name for spec in itf.STATE_TOPICS}
    for _ in range(50):  # the recorder must have heard every state stream before "none yet" clears
        manual.spin(0.05)
        if state_roles <= rec._heard:
            break
    started = rec._on_start(Trigger.Request(), Trigger.Response())
    assert started.success and "none yet" not in started.message, started.message
    rng = np.random.default_rng(0)
    for k in range(30):  # a lock-step episode while the recorder's executor is starved
        manual.publish_state(k, np.array([0.1, 0.8, 0.2]))
        twist, gripper = action_to_command(np.tanh(rng.normal(size=4)), stamp(k), "world")
        manual.probe.publisher(itf.TELEOP_GRIPPER).publish(gripper)
        manual.probe.publisher(itf.TELEOP_TWIST).publish(twist)
    time.sleep(0.5)  # delivered to the recorder's DDS readers, never taken by its executor
    stopped = rec._on_stop(Trigger.Request(), Trigger.Response())  # the stop request overtakes them
    assert stopped.success and "30 operator commands" in stopped.message, stopped.message
    mapping = ObservationMapping(TASK, expected_joint_count=10)
    demo = demo_from_mcap(list_demos(tmp_path / "demos", TASK)[0], mapping)
    assert demo.observations.shape == (30, 39)


def test_recorder_start_names_inputs_without_publishers(manual: Manual, tmp_path: Path) -> None:
    rec = manual.start(DemoRecorder, demo_dir=str(tmp_path / "demos"))
    manual.wait_matched(publish=(itf.TELEOP_TWIST, itf.TELEOP_GRIPPER))  # the device, no robot
    res = rec._on_start(Trigger.Request(), Trigger.Response())
    assert res.success, res.message
    assert "none yet on /joint_states, /ee_pose, /object_poses, /goal" in res.message, res.message


def test_teleop_acts_on_a_reset_with_the_new_goal(manual: Manual) -> None:
    from dmil_ros.ros.scripted_teleop import ScriptedTeleop

    manual.start(ScriptedTeleop, enabled=True, expected_joint_count=10)
    manual.probe.watch(itf.TELEOP_TWIST)
    manual.wait_matched(publish=(*itf.STATE_TOPICS, itf.EPISODE_INFO), watch=(itf.TELEOP_TWIST,))
    right, left = HAND + [0.2, 0.2, 0.0], HAND + [-0.2, 0.2, 0.0]
    manual.publish_episode(0, stamp(0))
    manual.publish_state(0, right)
    manual.spin()
    # A reset (new episode, new goal) and its first state, all ready before the node gets to run:
    manual.publish_episode(1, stamp(5))
    manual.publish_state(5, left)
    manual.spin()
    manual.probe.wait_until(lambda: len(manual.probe.received(itf.TELEOP_TWIST)) >= 2, 5, "two commands")
    by_stamp = {stamp_ns(t.header.stamp): t.twist.linear.x for t in manual.probe.received(itf.TELEOP_TWIST)}
    assert by_stamp[stamp_ns(stamp(0))] > 0  # towards the first goal
    assert by_stamp[stamp_ns(stamp(5))] < 0, by_stamp  # the first command of episode 1 heads for its goal


def test_teleop_ignores_a_state_of_the_previous_episode(manual: Manual) -> None:
    from dmil_ros.ros.scripted_teleop import ScriptedTeleop

    teleop = manual.start(ScriptedTeleop, enabled=False, expected_joint_count=10, command_subscribers=0)
    manual.probe.watch(itf.TELEOP_TWIST)
    manual.wait_matched(publish=(*itf.STATE_TOPICS, itf.EPISODE_INFO), watch=(itf.TELEOP_TWIST,))
    manual.publish_episode(0, stamp(0))
    manual.publish_state(3, HAND + [0.2, 0.2, 0.0])  # the end of episode 0
    manual.spin()
    manual.publish_episode(1, stamp(5))  # the reset's info got through, its state not yet
    manual.spin()
    teleop._on_enable(SetBool.Request(data=True), SetBool.Response())  # enable overtakes the new state
    manual.spin()
    assert manual.probe.received(itf.TELEOP_TWIST) == []  # no command for the leftover state
    manual.publish_state(5, HAND + [-0.2, 0.2, 0.0])
    manual.spin()
    manual.probe.wait_until(lambda: manual.probe.received(itf.TELEOP_TWIST), 5, "the first command")
    assert [stamp_ns(t.header.stamp) for t in manual.probe.received(itf.TELEOP_TWIST)] == [stamp_ns(stamp(5))]


def test_teleop_enable_waits_until_its_commands_reach_the_recorder(manual: Manual) -> None:
    """The e2e demos lost their first commands: the recorder listed the teleop's publisher, but the
    teleop's writer was not yet matched with the recorder's reader (DDS matching is not symmetric)."""
    from dmil_ros.ros.scripted_teleop import ScriptedTeleop

    teleop = manual.start(ScriptedTeleop, enabled=False, expected_joint_count=10, command_subscribers=1,
                          match_timeout=10.0)
    # The listener appears just now: enabling without the wait would find the writer unmatched.
    manual.probe.watch(itf.TELEOP_TWIST)
    manual.probe.watch(itf.TELEOP_GRIPPER)
    res = teleop._on_enable(SetBool.Request(data=True), SetBool.Response())
    assert res.success and res.message.endswith("commands reach 1 subscriber(s)"), res.message
    assert teleop._pub_twist.get_subscription_count() == 1

    teleop._on_enable(SetBool.Request(data=False), SetBool.Response())
    teleop.p["command_subscribers"], teleop.p["match_timeout"] = 2, 0.2  # (read at start: set by hand)
    res = teleop._on_enable(SetBool.Request(data=True), SetBool.Response())
    assert res.success and "not the 2 expected" in res.message, res.message  # enabled, with the reason


def stale(m: Manual) -> bool:
    return any("stale state" in s.data for s in m.probe.received(itf.POLICY_STATUS))


def test_policy_watchdog_does_not_step_a_lock_step_sim(manual: Manual, tmp_path: Path) -> None:
    from dmil_ros.ros.policy_node import PolicyNode

    ckpt = save_checkpoint(Hierarchy.initialize(ModelConfig(39, 4, 3, (64, 64)), seed=0), tmp_path / "ckpt")
    policy = manual.start(PolicyNode, checkpoint=str(ckpt), demo_dir=str(tmp_path / "demos"), enabled=True,
                          state_timeout=0.1, rate=50.0, expected_joint_count=10,
                          max_clock_skew=0.0)  # synthetic stamps (1970)
    for spec in (itf.POLICY_TWIST, itf.POLICY_STATUS):
        manual.probe.watch(spec)
    manual.wait_matched(publish=(*itf.STATE_TOPICS, itf.EPISODE_INFO),
                              watch=(itf.POLICY_TWIST, itf.POLICY_STATUS))
    manual.publish_episode(0, stamp(0), lock_step=True)
    manual.publish_state(0, np.array([0.1, 0.8, 0.2]))
    time.sleep(0.3)
    manual.spin_for(0.1)
    manual.probe.wait_until(lambda: manual.probe.received(itf.POLICY_TWIST), 5, "the command for state 0")
    # the sim waits for this command to arrive; meanwhile the policy sees no state for > state_timeout
    manual.spin_for(0.5)
    manual.probe.wait_until(lambda: stale(manual),
                            5, "the watchdog")
    policy._on_enable(SetBool.Request(data=False), SetBool.Response())
    manual.spin_for(0.2)
    time.sleep(0.2)
    # one command, for state 0: neither the watchdog nor disabling sent a twist the sim would step on
    assert [stamp_ns(t.header.stamp) for t in manual.probe.received(itf.POLICY_TWIST)] == [stamp_ns(stamp(0))]
