"""sim_bridge over DDS, in-process: lock-step stepping, stale commands, command sources, reset, task
switch through the `task` parameter, and real-time mode's command timeout."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("metaworld")

from builtin_interfaces.msg import Time  # noqa: E402
from geometry_msgs.msg import TwistStamped  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.parameter_client import AsyncParameterClient  # noqa: E402
from std_msgs.msg import Float64  # noqa: E402

from dmil_ros.ros import interfaces as itf  # noqa: E402
from dmil_ros.ros.observation import stamp_ns  # noqa: E402
from dmil_ros.ros.sim_bridge import SimBridge  # noqa: E402
from dmil_ros.ros.testing import InProcessGraph  # noqa: E402

pytestmark = pytest.mark.ros


@pytest.fixture
def ros() -> Iterator[InProcessGraph]:
    g = InProcessGraph()
    for spec in (itf.EE_POSE, itf.EPISODE_INFO, itf.TASK, itf.JOINT_STATES):
        g.probe.watch(spec)
    yield g
    g.close()


def start_bridge(ros: InProcessGraph, **params: Any) -> SimBridge:
    node = ros.add(SimBridge, **params)
    commands = (itf.TELEOP_TWIST, itf.TELEOP_GRIPPER, itf.POLICY_TWIST, itf.POLICY_GRIPPER)
    ros.probe.wait_matched(publish=commands, watch=(itf.EE_POSE,), nodes=(node,))
    ros.probe.wait_until(lambda: ros.probe.received(itf.EE_POSE), 10, "the first state")
    return node


def stamps(ros: InProcessGraph) -> list[int]:
    """Distinct state stamps seen so far, in order (heartbeats repeat a stamp)."""
    out: list[int] = []
    for m in ros.probe.received(itf.EE_POSE):
        s = stamp_ns(m.header.stamp)
        if not out or out[-1] != s:
            out.append(s)
    return out


def command(ros: InProcessGraph, stamp: Time, vx: float, source: str = "teleop",
            gripper: bool = True) -> None:
    twist_spec, grip_spec = ((itf.TELEOP_TWIST, itf.TELEOP_GRIPPER) if source == "teleop"
                             else (itf.POLICY_TWIST, itf.POLICY_GRIPPER))
    if gripper:
        ros.probe.publisher(grip_spec).publish(Float64(data=-1.0))
    twist = TwistStamped()
    twist.header.stamp = stamp
    twist.twist.linear.x = vx
    ros.probe.publisher(twist_spec).publish(twist)


def latest_stamp(ros: InProcessGraph) -> Time:
    return ros.probe.received(itf.EE_POSE)[-1].header.stamp


def test_lock_step_takes_one_step_per_command_and_drops_stale_ones(ros: InProcessGraph) -> None:
    start_bridge(ros, lock_step=True)
    time.sleep(0.3)
    assert len(stamps(ros)) == 1  # heartbeats repeat the first state's stamp
    x0 = ros.probe.received(itf.EE_POSE)[-1].pose.position.x
    for k in range(1, 4):
        command(ros, latest_stamp(ros), 0.4)
        ros.probe.wait_until(lambda k=k: len(stamps(ros)) == k + 1, 5, f"step {k}")
    old = ros.probe.received(itf.EE_POSE)[0].header.stamp
    command(ros, old, 0.4)  # computed for a state that is long gone
    time.sleep(0.3)
    assert len(stamps(ros)) == 4
    assert ros.probe.received(itf.EE_POSE)[-1].pose.position.x > x0 + 0.003  # it moved +x


def test_lock_step_twist_without_gripper_steps_after_the_grace(ros: InProcessGraph) -> None:
    start_bridge(ros, lock_step=True, gripper_grace=0.05)
    command(ros, latest_stamp(ros), 0.2, gripper=False)
    ros.probe.wait_until(lambda: len(stamps(ros)) == 2, 5, "the step")


def test_command_source_filters_commands(ros: InProcessGraph) -> None:
    start_bridge(ros, lock_step=True, command_source="policy")
    command(ros, latest_stamp(ros), 0.2, source="teleop")
    time.sleep(0.3)
    assert len(stamps(ros)) == 1
    command(ros, latest_stamp(ros), 0.2, source="policy")
    ros.probe.wait_until(lambda: len(stamps(ros)) == 2, 5, "the policy's step")


def test_reset_service_and_episode_info(ros: InProcessGraph) -> None:
    start_bridge(ros, lock_step=True, seed=7)
    info = json.loads(ros.probe.received(itf.EPISODE_INFO)[-1].data)
    assert info["episode"] == 0 and info["seed"] == 7 and info["task"] == "reach-v3"
    res = ros.probe.call(itf.SIM_RESET)
    assert res.success and "episode 1" in res.message and "seed 8" in res.message
    ros.probe.wait_until(lambda: json.loads(ros.probe.received(itf.EPISODE_INFO)[-1].data)["episode"] == 1, 5,
                         "the new episode")


def test_episode_ends_at_horizon(ros: InProcessGraph) -> None:
    start_bridge(ros, lock_step=True, max_episode_steps=3)
    for k in range(1, 4):
        command(ros, latest_stamp(ros), 0.0)
        ros.probe.wait_until(lambda k=k: len(stamps(ros)) == k + 1, 5, f"step {k}")
    last_info = lambda: json.loads(ros.probe.received(itf.EPISODE_INFO)[-1].data)  # noqa: E731
    info = ros.probe.wait_until(lambda: (i := last_info())["done"] and i, 5, "done")
    assert info["step"] == 3
    command(ros, latest_stamp(ros), 0.0)  # ignored until reset
    time.sleep(0.3)
    assert len(stamps(ros)) == 4


def test_task_switch_through_the_parameter(ros: InProcessGraph) -> None:
    start_bridge(ros, lock_step=True)
    assert ros.probe.received(itf.TASK)[-1].data == "reach-v3"
    client = AsyncParameterClient(ros.probe.node, "sim_bridge")
    assert client.wait_for_services(timeout_sec=10)

    def set_task(task: str) -> Any:
        future = client.set_parameters([Parameter("task", value=task)])
        ros.probe.wait_until(future.done, 20, "set_parameters")
        return future.result().results[0]

    bad = set_task("no-such-task-v3")
    assert not bad.successful and "no-such-task-v3" in bad.reason
    good = set_task("drawer-close-v3")
    assert good.successful, good.reason
    ros.probe.wait_until(lambda: ros.probe.received(itf.TASK)[-1].data == "drawer-close-v3", 5, "task topic")
    info = json.loads(ros.probe.received(itf.EPISODE_INFO)[-1].data)
    assert info["task"] == "drawer-close-v3" and info["episode"] == 0


def test_real_time_mode_zeroes_velocity_after_command_timeout(ros: InProcessGraph) -> None:
    start_bridge(ros, lock_step=False, rate=50.0, command_timeout=0.2)
    time.sleep(0.3)
    n_before = len(stamps(ros))
    assert n_before >= 10  # stepping on its own at 50 Hz
    command(ros, Time(), 0.4)  # unstamped, as from a spacemouse
    t0 = time.monotonic()
    poses: list[tuple[float, float]] = []
    while time.monotonic() - t0 < 1.2:
        poses.append((time.monotonic() - t0, ros.probe.received(itf.EE_POSE)[-1].pose.position.x))
        time.sleep(0.02)
    xs = np.array(poses)
    early = xs[xs[:, 0] < 0.25, 1]
    late = xs[xs[:, 0] > 0.8, 1]
    assert early.max() - early.min() > 0.01, "the held command did not move the hand"
    assert late.max() - late.min() < 0.002, "the hand kept moving after the command timeout"
