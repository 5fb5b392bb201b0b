"""Fault handling over DDS, in-process (fast): bad states, stale states, bad demos, busy/diverging
adaptation, bad checkpoints; plus a recorder SIGKILLed mid-demo (a real subprocess).

Every refusal must come with its reason (dmil/policy/status, the log, or the service response).
"""

from __future__ import annotations

import contextlib
import math
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("rclpy")

from builtin_interfaces.msg import Time  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402

from dmil_ros.core.checkpoint import save_checkpoint  # noqa: E402
from dmil_ros.core.config import ModelConfig  # noqa: E402
from dmil_ros.core.hierarchy import Hierarchy  # noqa: E402
from dmil_ros.envs.base import RobotState  # noqa: E402
from dmil_ros.ros import interfaces as itf  # noqa: E402
from dmil_ros.ros.adapt_worker import AdaptJob, AdaptWorker  # noqa: E402
from dmil_ros.ros.demo_recorder import DemoRecorder  # noqa: E402
from dmil_ros.ros.mcap_io import (  # noqa: E402
    decode_partial,
    demo_from_mcap,
    list_demos,
    read_messages,
    read_partial,
    task_dir,
)
from dmil_ros.ros.observation import ObservationMapping, action_to_command, stamp_ns, state_to_msgs  # noqa: E402
from dmil_ros.ros.policy_node import PolicyNode  # noqa: E402
from dmil_ros.ros.testing import InProcessGraph, Probe, isolated_ros_env  # noqa: E402

pytestmark = pytest.mark.ros
TASK = "reach-v3"
ANSWER_S = 15.0  # a wait for something that must come: generous, the suite shares 2 cores with other work


def fake_state(k: int) -> RobotState:
    """A plausible Sawyer state drifting with k (no simulator needed)."""
    return RobotState(
        joint_names=tuple(f"right_j{i}" for i in range(7)) + ("r_close", "l_close"),
        joint_positions=np.linspace(-0.5, 0.5, 9),
        ee_position=np.array([0.0, 0.6, 0.2]) + 0.001 * k,
        ee_orientation=np.array([0.0, 0.0, 0.0, 1.0]),
        gripper_opening=1.0,
        object_positions=np.array([[0.0, 0.7, 0.02]]),
        object_orientations=np.array([[0.0, 0.0, 0.0, 1.0]]),
        goal_position=np.array([0.1, 0.8, 0.2]),
    )


def stamp(k: int) -> Time:
    return Time(sec=100 + k)


def publish_state(probe: Probe, k: int, mutate: Any = None, skip: tuple[str, ...] = (),
                  at: Time | None = None) -> None:
    js, ee, objs, goal = state_to_msgs(fake_state(k), at or stamp(k), "world", "gripper_opening")
    if mutate is not None:
        mutate(js, ee, objs, goal)
    for spec, msg in ((itf.GOAL, goal), (itf.OBJECT_POSES, objs), (itf.JOINT_STATES, js), (itf.EE_POSE, ee)):
        if spec.name not in skip:
            probe.publisher(spec).publish(msg)


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    return save_checkpoint(Hierarchy.initialize(ModelConfig(39, 4, 3, (64, 64)), seed=0), tmp_path / "ckpt")


@pytest.fixture
def ros() -> Iterator[InProcessGraph]:
    g = InProcessGraph()
    for spec in (itf.POLICY_TWIST, itf.POLICY_STATUS):
        g.probe.watch(spec)
    yield g
    g.close()


def start_policy(ros: InProcessGraph, checkpoint: Path, tmp_path: Path, **params: Any) -> PolicyNode:
    # stamp(k) is synthetic (1970): the clock check is off here, and on in its own tests
    defaults = {"checkpoint": str(checkpoint), "demo_dir": str(tmp_path / "demos"), "enabled": True,
                "state_timeout": 0.3, "rate": 50.0, "expected_joint_count": 10, "max_clock_skew": 0.0}
    node = ros.add(PolicyNode, **{**defaults, **params})
    ros.probe.wait_matched(publish=itf.STATE_TOPICS, watch=(itf.POLICY_TWIST, itf.POLICY_STATUS),
                           nodes=(node,))
    return node


def is_zero(twist: Any) -> bool:
    lin = twist.twist.linear
    return lin.x == lin.y == lin.z == 0.0


def first_command(ros: InProcessGraph) -> Any:
    """The node's command for the good state fake_state(0), stamped within second 100 (before stamp(1))."""
    # Matched on both sides is not always enough under load: the state or its answer can still be lost.
    # The node acts once per stamp, so each retry carries a new stamp (a few ns later).
    def answered() -> list[Any]:
        return [t for t in ros.twists() if t.header.stamp.sec == stamp(0).sec]

    deadline = time.monotonic() + ANSWER_S
    attempt = 0
    while not answered():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {ANSWER_S} s waiting for a command for the good state")
        publish_state(ros.probe, 0, at=Time(sec=stamp(0).sec, nanosec=attempt))
        attempt += 1
        with contextlib.suppress(TimeoutError):
            ros.probe.wait_until(answered, 0.5, "a command for the good state")
    return answered()[0]


def answers_to(ros: InProcessGraph, k: int, what: str) -> list[Any]:
    """The node's commands stamped stamp(k), waited for (something that must come)."""
    return ros.probe.wait_until(
        lambda: [t for t in ros.twists() if stamp_ns(t.header.stamp) == stamp_ns(stamp(k))], ANSWER_S, what)


def drive_then_break(ros: InProcessGraph, mutate: Any = None, skip: tuple[str, ...] = ()) -> Any:
    """One good state (the policy drives), then a bad one with stamp 101: its command must be zero."""
    first_command(ros)
    # the status goes out right after the command, but on its own topic: it can arrive a little later
    ros.probe.wait_until(lambda: ros.status() == "driving", ANSWER_S, "the driving status")
    publish_state(ros.probe, 1, mutate, skip)
    return answers_to(ros, 1, "the refusal")


def test_wrong_length_joint_states_are_refused(ros: InProcessGraph, checkpoint: Path, tmp_path: Path) -> None:
    start_policy(ros, checkpoint, tmp_path)

    def drop_one(js: Any, *_: Any) -> None:
        js.position = list(js.position)[:-1]

    refused = drive_then_break(ros, drop_one)
    assert all(is_zero(t) for t in refused)
    reason = "joint_states has 10 names but 9 positions"
    ros.probe.wait_until(lambda: ros.said(reason) and ros.logged(reason), ANSWER_S, "the reason")


def test_nan_joint_states_are_refused(ros: InProcessGraph, checkpoint: Path, tmp_path: Path) -> None:
    start_policy(ros, checkpoint, tmp_path)

    def nan(js: Any, *_: Any) -> None:
        js.position = [float("nan")] + list(js.position)[1:]

    assert all(is_zero(t) for t in drive_then_break(ros, nan))
    ros.probe.wait_until(lambda: ros.said("NaN") and ros.logged("NaN"), ANSWER_S, "the reason")


def test_empty_object_poses_are_refused(ros: InProcessGraph, checkpoint: Path, tmp_path: Path) -> None:
    start_policy(ros, checkpoint, tmp_path)

    def no_objects(_js: Any, _ee: Any, objs: Any, _goal: Any) -> None:
        objs.poses = []

    assert all(is_zero(t) for t in drive_then_break(ros, no_objects))
    reason = "object_poses has 0 poses, task reach-v3 needs 1"
    ros.probe.wait_until(lambda: ros.said(reason) and ros.logged(reason), ANSWER_S, "the reason")


def test_never_published_object_poses_give_zero_commands(ros: InProcessGraph, checkpoint: Path,
                                                         tmp_path: Path) -> None:
    start_policy(ros, checkpoint, tmp_path)
    for k in range(10):
        publish_state(ros.probe, k, skip=(itf.OBJECT_POSES.name,))
        time.sleep(0.05)
    ros.probe.wait_until(lambda: "never received object_poses" in ros.status(), ANSWER_S, "the watchdog")
    assert ros.twists() and all(is_zero(t) for t in ros.twists())
    assert ros.logged("never received object_poses")


def test_stale_state_gives_zero_commands(ros: InProcessGraph, checkpoint: Path, tmp_path: Path) -> None:
    start_policy(ros, checkpoint, tmp_path, state_timeout=0.2)
    for k in range(5):
        publish_state(ros.probe, k)
        time.sleep(0.02)
    ros.probe.wait_until(lambda: ros.status() == "driving", ANSWER_S, "driving")
    assert not is_zero(ros.twists()[-1])
    stopped = time.monotonic()
    status = ros.probe.wait_until(lambda: "stale state" in (s := ros.status()) and s,
                                  ANSWER_S, "the watchdog")
    waited = time.monotonic() - stopped
    assert 0.15 < waited < 1.5, waited
    assert is_zero(ros.twists()[-1]) and status.startswith("refusing: stale state")
    # and it drives again as soon as states come back
    publish_state(ros.probe, 50)
    ros.probe.wait_until(lambda: ros.status() == "driving", ANSWER_S, "recovery")


def test_stale_state_zeros_for_a_bounded_time_then_silence(ros: InProcessGraph, checkpoint: Path,
                                                           tmp_path: Path) -> None:
    """A driver/Servo must see the command stream stop: zeros for stale_zero_duration, then nothing
    until state returns (a robot that stopped publishing got zero twists at 80 Hz forever)."""
    start_policy(ros, checkpoint, tmp_path, state_timeout=0.2, stale_zero_duration=0.4)
    for k in range(5):
        publish_state(ros.probe, k)
        time.sleep(0.02)
    ros.probe.wait_until(lambda: ros.status() == "driving", ANSWER_S, "driving")
    ros.probe.wait_until(lambda: "command stream stopped" in ros.status(), ANSWER_S, "the stream to stop")
    zeros = [t for t in ros.twists() if is_zero(t)]
    assert zeros, "no zero command before the stream stopped"
    first_zero = stamp_ns(zeros[0].header.stamp)
    last_zero = stamp_ns(zeros[-1].header.stamp)
    assert 0.2 <= (last_zero - first_zero) / 1e9 <= 0.4 + 0.3, (first_zero, last_zero)
    count = len(ros.twists())
    time.sleep(0.8)  # 40 watchdog periods at 50 Hz
    assert len(ros.twists()) == count, "still publishing after stale_zero_duration"
    assert ros.logged("command stream stopped after 0.4 s of zeros")
    publish_state(ros.probe, 50)  # state returns: driving, and the next stale period zeros again
    ros.probe.wait_until(lambda: ros.status() == "driving", ANSWER_S, "recovery")
    ros.probe.wait_until(lambda: len([t for t in ros.twists() if is_zero(t)]) > len(zeros),
                         ANSWER_S, "zeros again")


def now_stamp(offset_s: float = 0.0) -> Time:
    ns = time.time_ns() + int(offset_s * 1e9)
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def publish_stamped(probe: Probe, k: int, at: Time, mutate: Any = None) -> None:
    js, ee, objs, goal = state_to_msgs(fake_state(k), at, "world", "gripper_opening")
    if mutate is not None:
        mutate(js, ee, objs, goal)
    for spec, msg in ((itf.GOAL, goal), (itf.OBJECT_POSES, objs), (itf.JOINT_STATES, js), (itf.EE_POSE, ee)):
        probe.publisher(spec).publish(msg)


def answer_to(ros: InProcessGraph, at: Time, timeout: float = ANSWER_S) -> Any:
    return ros.probe.wait_until(
        lambda: [t for t in ros.twists() if stamp_ns(t.header.stamp) == stamp_ns(at)], timeout, "the answer")


@pytest.mark.parametrize(("offset", "reason"), [
    (3600.0, "state stamped in the future of this node's clock by more than max_clock_skew (1 s)"),
    (-3600.0, "state stamped longer ago than max_clock_skew (1 s)"),
    (-time.time(), "state stamped longer ago than max_clock_skew (1 s)"),  # 1970
])
def test_states_stamped_far_from_the_clock_are_refused(ros: InProcessGraph, checkpoint: Path, tmp_path: Path,
                                                       offset: float, reason: str) -> None:
    start_policy(ros, checkpoint, tmp_path, max_clock_skew=1.0)
    good = now_stamp()
    publish_stamped(ros.probe, 0, good)
    assert not is_zero(answer_to(ros, good)[0])
    bad = now_stamp(offset)
    publish_stamped(ros.probe, 1, bad)
    assert all(is_zero(t) for t in answer_to(ros, bad))
    ros.probe.wait_until(lambda: ros.said(reason) and ros.logged(reason), ANSWER_S, "the reason")


@pytest.mark.parametrize(("part", "mutate"), [
    ("ee_pose position", lambda js, ee, objs, goal: setattr(ee.pose.position, "x", 1e30)),
    ("object_poses position", lambda js, ee, objs, goal: setattr(objs.poses[0].position, "z", -1e30)),
    ("goal", lambda js, ee, objs, goal: setattr(goal.point, "y", 1e30)),
    ("joint_states holds a position beyond",
     lambda js, ee, objs, goal: setattr(js, "position", [1e30] + list(js.position)[1:])),
    ("ee_pose orientation is not a quaternion",
     lambda js, ee, objs, goal: setattr(ee.pose.orientation, "w", 1e30)),
])
def test_implausible_but_finite_states_are_refused(ros: InProcessGraph, checkpoint: Path, tmp_path: Path,
                                                   part: str, mutate: Any) -> None:
    """A finite but absurd pose drove the policy at its full speed clamp, without a word."""
    start_policy(ros, checkpoint, tmp_path)
    refused = drive_then_break(ros, mutate)
    assert all(is_zero(t) for t in refused)
    ros.probe.wait_until(lambda: ros.said(part) and ros.logged(part), ANSWER_S, "the reason")


def test_workspace_is_configurable(ros: InProcessGraph, checkpoint: Path, tmp_path: Path) -> None:
    start_policy(ros, checkpoint, tmp_path, workspace_min=[-0.1, 0.0, 0.0], workspace_max=[0.1, 1.0, 0.5])
    refused = drive_then_break(ros, lambda js, ee, objs, goal: setattr(ee.pose.position, "x", 0.2))
    assert all(is_zero(t) for t in refused)
    reason = "ee_pose position lies outside the workspace [-0.1, 0, 0] .. [0.1, 1, 0.5] m"
    ros.probe.wait_until(lambda: ros.said(reason), ANSWER_S, "the reason")


def test_orientation_hold_turns_the_hand_back_and_refuses_a_non_rotation(
        ros: InProcessGraph, checkpoint: Path, tmp_path: Path) -> None:
    """orientation_hold_gain: the hand's orientation at the first state is held (angular velocity = gain x
    the rotation back to it); an ee orientation that is no rotation is refused with the reason."""
    start_policy(ros, checkpoint, tmp_path, orientation_hold_gain=2.0, max_angular_speed=10.0)
    first = first_command(ros)  # the reference: no error yet
    assert [first.twist.angular.x, first.twist.angular.y, first.twist.angular.z] == [0.0, 0.0, 0.0]

    def turned(_js: Any, ee: Any, *_: Any) -> None:  # 0.1 rad about z
        ee.pose.orientation.z, ee.pose.orientation.w = math.sin(0.05), math.cos(0.05)

    publish_state(ros.probe, 1, turned)
    twist = answers_to(ros, 1, "the command for the turned hand")[0]
    ang = twist.twist.angular
    np.testing.assert_allclose([ang.x, ang.y, ang.z], [0.0, 0.0, -0.2], atol=1e-9)

    def no_rotation(_js: Any, ee: Any, *_: Any) -> None:
        ee.pose.orientation.z = ee.pose.orientation.w = 0.0

    publish_state(ros.probe, 2, no_rotation)
    refused = answers_to(ros, 2, "the refusal")
    assert all(is_zero(t) for t in refused)
    reason = "ee_pose orientation is not a unit quaternion (norm 0)"
    ros.probe.wait_until(lambda: ros.said(reason) and ros.logged(reason), ANSWER_S, "the reason")
    # enabled again (a new reference) and the first state refused: the next good one is the reference
    assert ros.probe.call(itf.POLICY_ENABLE, SetBool.Request(data=False)).success
    assert ros.probe.call(itf.POLICY_ENABLE, SetBool.Request(data=True)).success
    publish_state(ros.probe, 3, no_rotation)
    answers_to(ros, 3, "the refusal after enabling")
    publish_state(ros.probe, 4, turned)
    again = answers_to(ros, 4, "the command after the refusal")[0]
    assert not is_zero(again)
    assert [again.twist.angular.x, again.twist.angular.y, again.twist.angular.z] == [0.0, 0.0, 0.0]


def test_action_speed_is_the_speed_of_an_action_of_one(ros: InProcessGraph, checkpoint: Path,
                                                       tmp_path: Path) -> None:
    """On a robot slower than Meta-World (config/hardware.yaml: 0.25 m/s), the policy's action is scaled
    to it, not clamped: the twist is the action x action_speed."""
    from dmil_ros.ros.observation import ObservationBuilder, robot_state_from_msgs

    node = start_policy(ros, checkpoint, tmp_path, action_speed=0.25, max_linear_speed=10.0)
    mapping = ObservationMapping(TASK, "gripper_opening", 1.0, 10, action_speed=0.25)
    obs = ObservationBuilder(mapping).observe(robot_state_from_msgs(
        mapping, *state_to_msgs(fake_state(0), stamp(0), "world", "gripper_opening")))
    action = np.clip(node._actor.act(obs)[0], -1.0, 1.0)

    lin = first_command(ros).twist.linear
    np.testing.assert_allclose([lin.x, lin.y, lin.z], action[:3] * 0.25, atol=1e-6)


def test_disabled_policy_is_silent(ros: InProcessGraph, checkpoint: Path, tmp_path: Path) -> None:
    start_policy(ros, checkpoint, tmp_path, enabled=False)
    for k in range(3):
        publish_state(ros.probe, k)
    time.sleep(0.5)
    assert ros.twists() == []
    publish_state(ros.probe, 2)  # the current state again, as the sim's heartbeat does
    time.sleep(0.05)
    res = ros.probe.call(itf.POLICY_ENABLE, SetBool.Request(data=True))
    assert res.success and "enabled" in res.message
    # enabling acts on the current state at once (a lock-step sim is waiting for that command)
    ros.probe.wait_until(lambda: any(stamp_ns(t.header.stamp) == stamp_ns(stamp(2)) for t in ros.twists()),
                         ANSWER_S,
                         "the first command")


# --- adaptation -----------------------------------------------------------------------------------
def write_demo(demo_dir: Path, steps: int = 40, name: str = "demo-20260101-000000-00.mcap",
               recorded_task: str | None = TASK) -> Path:
    """A plausible demo (fake states, varied actions) written like the recorder does, into TASK's folder
    (its metadata saying `recorded_task`: None writes none)."""
    from dmil_ros.ros.mcap_io import DemoWriter

    meta = {"task": recorded_task} if recorded_task is not None else {"env": "metaworld"}
    writer = DemoWriter(task_dir(demo_dir, TASK) / name, meta)
    rng = np.random.default_rng(0)
    for k in range(steps):
        for spec, msg in zip((itf.JOINT_STATES, itf.EE_POSE, itf.OBJECT_POSES, itf.GOAL),
                             state_to_msgs(fake_state(k), stamp(k), "world", "gripper_opening"), strict=True):
            writer.write("/" + spec.name, msg)
        twist, gripper = action_to_command(np.tanh(rng.normal(size=4)), stamp(k), "world")
        writer.write("/" + itf.TELEOP_GRIPPER.name, gripper)
        writer.write("/" + itf.TELEOP_TWIST.name, twist)
    return writer.finish()


def test_adapt_without_demos_says_so(ros: InProcessGraph, checkpoint: Path, tmp_path: Path) -> None:
    start_policy(ros, checkpoint, tmp_path)
    ros.add(DemoRecorder, demo_dir=str(tmp_path / "demos"))
    res = ros.probe.call(itf.ADAPT, timeout=20)
    assert not res.success and "no demos of task reach-v3" in res.message
    res = ros.probe.call(itf.POLICY_ADAPT, timeout=20)  # the policy's own check
    assert not res.success and "no demos of task reach-v3" in res.message


def test_adapt_with_corrupt_mcap_says_which(ros: InProcessGraph, checkpoint: Path, tmp_path: Path) -> None:
    start_policy(ros, checkpoint, tmp_path)
    ros.add(DemoRecorder, demo_dir=str(tmp_path / "demos"))
    write_demo(tmp_path / "demos")
    bad = task_dir(tmp_path / "demos", TASK) / "demo-20260101-000001-00.mcap"
    bad.write_bytes(b"\x89MCAP0\r\nthis is not an mcap file")
    policy = ros.nodes[0]
    res = ros.probe.call(itf.ADAPT, timeout=30)
    assert not res.success, res.message
    assert bad.name in res.message and "corrupt" in res.message
    assert policy._hierarchy is policy._base  # nothing swapped in


def test_adapt_refuses_a_demo_of_another_task_naming_it(ros: InProcessGraph, checkpoint: Path,
                                                        tmp_path: Path) -> None:
    """A door-open demo in door-close's folder was adapted on without a word."""
    policy = start_policy(ros, checkpoint, tmp_path)
    write_demo(tmp_path / "demos")
    other = write_demo(tmp_path / "demos", name="demo-20260101-000001-00.mcap", recorded_task="door-open-v3")
    res = ros.probe.call(itf.POLICY_ADAPT, timeout=60)
    assert not res.success, res.message
    assert f"{other.name} is a demo of door-open-v3, not of {TASK}" in res.message
    assert policy._hierarchy is policy._base
    other.unlink()
    untagged = write_demo(tmp_path / "demos", name="demo-20260101-000002-00.mcap", recorded_task=None)
    res = ros.probe.call(itf.POLICY_ADAPT, timeout=60)
    assert not res.success and f"{untagged.name} records no task" in res.message, res.message
    untagged.unlink()
    res = ros.probe.call(itf.POLICY_ADAPT, timeout=60)
    assert res.success, res.message


def hold_adaptation(policy: PolicyNode) -> tuple[threading.Event, threading.Event]:
    """Make the policy's adaptation worker wait at its start until `release` is set (`entered` tells it
    got there): overlaps are certain instead of depending on how fast 300 steps run on this machine."""
    entered, release = threading.Event(), threading.Event()
    work = policy._adapt

    def held(*args: Any) -> Any:
        entered.set()
        release.wait(60)
        return work(*args)

    policy._adapt = held  # type: ignore[method-assign]
    return entered, release


def test_adapt_while_adapting_is_refused(ros: InProcessGraph, checkpoint: Path, tmp_path: Path) -> None:
    policy = start_policy(ros, checkpoint, tmp_path)
    ros.add(DemoRecorder, demo_dir=str(tmp_path / "demos"))
    write_demo(tmp_path / "demos", steps=100)
    entered, release = hold_adaptation(policy)
    results: list[Any] = []
    first = threading.Thread(target=lambda: results.append(ros.probe.call(itf.ADAPT, timeout=120)))
    first.start()
    assert entered.wait(30), "the first adaptation never started"
    via_recorder = ros.probe.call(itf.ADAPT, timeout=10)
    via_policy = ros.probe.call(itf.POLICY_ADAPT, timeout=10)
    release.set()
    first.join(timeout=120)
    for res in (via_recorder, via_policy):
        assert not res.success and "already running" in res.message, res.message
    assert results and results[0].success, results


def test_control_continues_during_adaptation(ros: InProcessGraph, checkpoint: Path, tmp_path: Path) -> None:
    policy = start_policy(ros, checkpoint, tmp_path)
    write_demo(tmp_path / "demos", steps=100)
    old = policy._hierarchy
    entered, release = hold_adaptation(policy)
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(ros.probe.call(itf.POLICY_ADAPT, timeout=120)))
    worker.start()
    assert entered.wait(30), "the adaptation never started"
    answered = 0
    for k in range(5):  # while the adaptation worker is busy
        publish_state(ros.probe, k)
        try:
            ros.probe.wait_until(lambda k=k: any(stamp_ns(t.header.stamp) == stamp_ns(stamp(k))
                                                 for t in ros.twists()), 1.0, "command")
            answered += 1
        except TimeoutError:
            pass
    assert worker.is_alive() and not results  # still adapting
    release.set()
    worker.join(timeout=120)
    assert answered >= 3, answered
    assert results[0].success and "accepted" in results[0].message, results[0].message
    assert policy._hierarchy is not old  # swapped in after the fact


def test_diverging_adaptation_is_rolled_back(ros: InProcessGraph, checkpoint: Path, tmp_path: Path) -> None:
    policy = start_policy(ros, checkpoint, tmp_path, adapt_lr=10.0, adapt_steps=20)
    write_demo(tmp_path / "demos")
    res = ros.probe.call(itf.POLICY_ADAPT, timeout=60)
    assert not res.success and "refused" in res.message, res.message
    assert "diverged" in res.message or "loss increased" in res.message
    assert policy._hierarchy is policy._base


# --- checkpoints ----------------------------------------------------------------------------------
def test_missing_or_mismatched_checkpoint_refuses_to_start(tmp_path: Path) -> None:
    from dmil_ros.ros.policy_node import load_policy

    with pytest.raises(itf.ConfigError, match="does not exist"):
        load_policy(str(tmp_path / "nowhere"))
    wrong = save_checkpoint(Hierarchy.initialize(ModelConfig(30, 4, 3, (8,))), tmp_path / "wrong")
    with pytest.raises(itf.ConfigError, match="30-dim observations"):
        load_policy(str(wrong))
    corrupt = save_checkpoint(Hierarchy.initialize(ModelConfig(39, 4, 3, (8,))), tmp_path / "corrupt")
    (corrupt / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(itf.ConfigError, match="corrupt"):
        load_policy(str(corrupt))


def test_adaptation_settings_come_from_the_checkpoint(tmp_path: Path) -> None:
    from dmil_ros.core.config import AdaptConfig, make_dmil_config
    from dmil_ros.ros.policy_node import adapt_config, load_policy

    trained = make_dmil_config("dmil-high", adapt={"steps": 5, "lr": 0.05})
    ckpt = save_checkpoint(Hierarchy.initialize(ModelConfig(39, 4, 3, (8,))), tmp_path / "c", trained)
    _, _, cfg = load_policy(str(ckpt))
    assert (cfg.steps, cfg.lr, cfg.adapt_low) == (5, 0.05, False)  # DMIL-High adapts the high level only
    assert adapt_config(cfg, -1, 0.0) == cfg
    assert (adapt_config(cfg, 2, 0.5).steps, adapt_config(cfg, 2, 0.5).lr) == (2, 0.5)
    assert adapt_config(cfg, 2, 0.5).adapt_low is False
    _, _, default = load_policy(str(save_checkpoint(Hierarchy.initialize(ModelConfig(39, 4, 3, (8,))),
                                                    tmp_path / "plain")))
    assert default == AdaptConfig()


def test_policy_process_exits_cleanly_on_bad_start(tmp_path: Path) -> None:
    env = isolated_ros_env()
    runs = {
        "missing": [sys.executable, "-m", "dmil_ros.ros.policy_node", "--ros-args",
                    "-p", f"checkpoint:={tmp_path / 'nowhere'}"],
        "bad_param": [sys.executable, "-m", "dmil_ros.ros.policy_node", "--ros-args",
                      "-p", "trigger:=sometimes", "-p", "state_timeout:=-1.0"],
        "bad_task": [sys.executable, "-m", "dmil_ros.ros.policy_node", "--ros-args",
                     "-p", "task:=no-such-task-v3"],
    }
    procs = {k: subprocess.Popen(v, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for k, v in runs.items()}
    out = {k: p.communicate(timeout=60)[0] for k, p in procs.items()}
    for k, p in procs.items():
        assert p.returncode == 2, (k, out[k])
        assert "Traceback" not in out[k]
    assert "refusing to start" in out["missing"] and "does not exist" in out["missing"]
    assert "trigger='sometimes' is not one of state, timer" in out["bad_param"]
    assert "state_timeout=-1.0 is outside [0.001, 10.0]" in out["bad_param"]
    assert "refusing to start" in out["bad_task"] and "unknown Meta-World v3 task 'no-such-task-v3'" in out[
        "bad_task"], out["bad_task"]


def test_unknown_task_on_the_topic_refuses_to_drive(ros: InProcessGraph, checkpoint: Path,
                                                    tmp_path: Path) -> None:
    """A task name the policy cannot map (sim and policy disagree) stops it driving; it never crashes."""
    start_policy(ros, checkpoint, tmp_path)
    task = ros.probe.publisher(itf.TASK)
    ros.probe.wait_until(lambda: task.get_subscription_count() >= 1, 10, "the policy's task subscription")
    task.publish(String(data="no-such-task-v3"))
    reason = "cannot drive task 'no-such-task-v3'"
    ros.probe.wait_until(lambda: ros.logged(reason), ANSWER_S, "the task refusal")
    publish_state(ros.probe, 0)
    ros.probe.wait_until(lambda: ros.said(reason), ANSWER_S, "refusing")
    assert is_zero(ros.twists()[-1])
    res = ros.probe.call(itf.POLICY_ADAPT)
    assert not res.success and reason in res.message, res.message
    task.publish(String(data=TASK))
    ros.probe.wait_until(lambda: ros.logged(f"task is now {TASK}"), ANSWER_S, "the known task")
    publish_state(ros.probe, 1)
    ros.probe.wait_until(lambda: ros.status() == "driving", ANSWER_S, "driving again")


# --- recorder crash -------------------------------------------------------------------------------
def test_recorder_killed_mid_demo_keeps_earlier_demos(tmp_path: Path) -> None:
    env = isolated_ros_env()
    demo_dir = tmp_path / "demos"
    proc = subprocess.Popen([sys.executable, "-m", "dmil_ros.ros.demo_recorder", "--ros-args",
                             "-p", f"demo_dir:={demo_dir}"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    probe = Probe(int(env["ROS_DOMAIN_ID"]))
    try:
        assert probe.wait_for_service(itf.RECORD_START, 30), "recorder never came up"

        def record(first: int, steps: int) -> None:
            for k in range(first, first + steps):
                publish_state(probe, k)
                twist, gripper = action_to_command(np.array([0.1, 0.2, -0.1, 0.5]), stamp(k), "world")
                probe.publisher(itf.TELEOP_GRIPPER).publish(gripper)
                probe.publisher(itf.TELEOP_TWIST).publish(twist)
                time.sleep(0.01)

        probe.wait_matched(publish=(*itf.STATE_TOPICS, itf.TELEOP_TWIST, itf.TELEOP_GRIPPER))
        assert probe.call(itf.RECORD_START).success
        record(0, 20)
        time.sleep(0.3)
        res = probe.call(itf.RECORD_STOP)
        assert res.success and "20 operator commands" in res.message, res.message
        assert probe.call(itf.RECORD_START).success
        record(20, 30)
        time.sleep(1.5)  # the recorder flushes at least every second
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        probe.close()
        if proc.poll() is None:
            proc.kill()
    demos = list_demos(demo_dir, TASK)
    assert len(demos) == 1, demos
    demo = demo_from_mcap(demos[0], ObservationMapping(TASK, expected_joint_count=10))
    assert demo.observations.shape == (20, 39)
    leftovers = list(task_dir(demo_dir, TASK).glob("*.mcap.part"))
    assert len(leftovers) == 1  # the interrupted demo, never mistaken for a finished one
    # ... and readable: it was written as it came (a 0-byte .part, nothing recoverable, before)
    partial = read_partial(leftovers[0])
    assert partial.metadata["task"] == TASK
    twists = [m for m in decode_partial(partial) if m[0] == "/" + itf.TELEOP_TWIST.name]
    assert len(twists) == 30, len(twists)

    # A restarted recorder recovers it (with a log line), never silently using it
    proc = subprocess.Popen([sys.executable, "-m", "dmil_ros.ros.demo_recorder", "--ros-args",
                             "-p", f"demo_dir:={demo_dir}"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    probe = Probe(int(env["ROS_DOMAIN_ID"]))
    try:
        assert probe.wait_for_service(itf.RECORD_START, 30), "recorder never came up again"
    finally:
        probe.close()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    recovered = task_dir(demo_dir, TASK) / leftovers[0].name.replace(".mcap.part", ".mcap.recovered")
    assert f"recovered the interrupted recording {leftovers[0].name}" in out and recovered.name in out, out
    assert not leftovers[0].exists() and recovered.is_file()
    assert list_demos(demo_dir, TASK) == demos  # not used for adaptation unless renamed
    usable = recovered.with_name(recovered.name.replace(".recovered", ""))
    recovered.rename(usable)
    rebuilt = demo_from_mcap(usable, ObservationMapping(TASK, expected_joint_count=10))
    assert rebuilt.observations.shape == (30, 39)


def test_an_unreadable_leftover_is_moved_aside(ros: InProcessGraph, tmp_path: Path) -> None:
    folder = task_dir(tmp_path / "demos", TASK)
    folder.mkdir(parents=True)
    (folder / "demo-20260101-000000-00.mcap.part").write_bytes(b"")  # killed before its first write
    ros.add(DemoRecorder, demo_dir=str(tmp_path / "demos"))
    ros.probe.wait_until(lambda: ros.logged("moved the unreadable leftover demo-20260101-000000-00.mcap.part "
                                            "aside"), 10, "the log line")
    assert [p.name for p in folder.iterdir()] == ["demo-20260101-000000-00.mcap.part.unreadable"]


def test_flooded_recorder_counts_what_it_lost_and_does_not_call_the_demo_complete(
        ros: InProcessGraph, tmp_path: Path) -> None:
    """Under a flood the recorder kept 13,472 of 54,312 operator commands and record/stop reported no
    loss. Now every command is either in the file or counted as dropped; a demo that lost commands is
    kept as .incomplete and record/stop fails."""
    import re

    recorder = ros.add(DemoRecorder, demo_dir=str(tmp_path / "demos"))
    ros.probe.watch(itf.RECORD_STATUS)
    ros.probe.wait_matched(publish=(*itf.STATE_TOPICS, itf.TELEOP_TWIST, itf.TELEOP_GRIPPER),
                           nodes=(recorder,))
    twist, _ = action_to_command(np.array([0.1, 0.2, -0.1, 0.5]), stamp(0), "world")
    pub = ros.probe.publisher(itf.TELEOP_TWIST)
    for _ in range(3):  # the recorder learns the publisher's sequence numbers
        pub.publish(twist)
        time.sleep(0.05)
    time.sleep(0.3)
    publish_state(ros.probe, 0)
    assert ros.probe.call(itf.RECORD_START).success
    flood = 20000
    for _ in range(flood):
        pub.publish(twist)
    for _ in range(5):  # a few more, slowly: a loss at the very end shows as a gap before these
        time.sleep(0.1)
        pub.publish(twist)
    time.sleep(1.5)
    statuses = ros.probe.received
    ros.probe.wait_until(lambda: any("operator commands" in m.data for m in statuses(itf.RECORD_STATUS)),
                         ANSWER_S,
                         "a recording status")
    res = ros.probe.call(itf.RECORD_STOP, timeout=60)
    files = list(task_dir(tmp_path / "demos", TASK).iterdir())
    assert len(files) == 1, files
    recorded = sum(1 for m in read_messages(files[0]) if m.role == itf.TELEOP_TWIST.name)
    if res.success:
        assert recorded == flood + 5 and "0 dropped" in res.message, res.message
        assert files[0].name.endswith(".mcap")
    else:
        lost = int(re.search(r"(\d+) operator command\(s\) were lost", res.message).group(1))
        assert recorded + lost == flood + 5, (recorded, lost, res.message)
        assert files[0].name.endswith(".mcap.incomplete") and list_demos(tmp_path / "demos", TASK) == []
    print(f"flood of {flood}: recorded {recorded}; {res.message}")


def test_max_demos_is_dynamic_and_checked(ros: InProcessGraph, checkpoint: Path, tmp_path: Path) -> None:
    from rclpy.parameter import Parameter

    policy = start_policy(ros, checkpoint, tmp_path)
    write_demo(tmp_path / "demos", name="demo-20260101-000000-00.mcap")
    write_demo(tmp_path / "demos", steps=30, name="demo-20260101-000001-00.mcap")
    res = ros.probe.call(itf.POLICY_ADAPT, timeout=60)
    assert res.success and "2 demo(s), 70 states" in res.message, res.message
    assert policy.set_parameters([Parameter("max_demos", value=1)])[0].successful
    res = ros.probe.call(itf.POLICY_ADAPT, timeout=60)
    assert res.success and "1 demo(s), 30 states" in res.message, res.message  # the newest one
    for bad in (Parameter("max_demos", value=0), Parameter("checkpoint", value="elsewhere")):
        assert not policy.set_parameters([bad])[0].successful
    assert policy.p["max_demos"] == 1


def test_realtime_priority_without_permission_is_logged_and_the_node_drives(
        ros: InProcessGraph, checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No rtprio permission (the usual case for a normal user): a warning with the reason, then the
    node drives on the normal scheduler. (Really raising this test process is left to
    test_ros_realtime.py, which restores it.)"""
    from dmil_ros.ros import policy_node

    asked: list[int] = []
    monkeypatch.setattr(policy_node, "set_realtime_priority",
                        lambda priority: asked.append(priority) or "no permission for SCHED_FIFO")
    start_policy(ros, checkpoint, tmp_path, realtime_priority=5)
    assert asked == [5]
    ros.probe.wait_until(lambda: ros.logged("realtime_priority 5 not set: no permission"),
                         ANSWER_S, "the warning")
    first_command(ros)
    ros.probe.wait_until(lambda: ros.status() == "driving", ANSWER_S, "driving")


# --- hostile messages -----------------------------------------------------------------------------
@pytest.mark.parametrize("payload", ['{"episode": Infinity, "start_ns": 0}',
                                     '{"episode": 1, "start_ns": 1e400}'])
def test_overflowing_episode_info_is_ignored(ros: InProcessGraph, checkpoint: Path, tmp_path: Path,
                                             payload: str) -> None:
    """JSON Infinity / 1e400 in episode_info killed policy_node (OverflowError in the callback)."""
    start_policy(ros, checkpoint, tmp_path)
    info = ros.probe.publisher(itf.EPISODE_INFO)
    ros.probe.wait_until(lambda: info.get_subscription_count() >= 1, 10, "the episode_info subscription")
    info.publish(String(data=payload))
    drive_then_break(ros)  # still answers states, one after the other
    assert not ros.logged("dropped: its callback failed"), "parse_episode_info raised"


def test_a_failing_callback_is_logged_with_its_topic_and_the_node_keeps_running(
        ros: InProcessGraph, checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The net under every callback (dmil_ros/ros/guarded.py): an unexpected exception is logged with
    the topic and the message dropped; the node keeps serving."""
    start_policy(ros, checkpoint, tmp_path)

    def broken(_text: str) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(itf, "parse_episode_info", broken)
    info = ros.probe.publisher(itf.EPISODE_INFO)
    ros.probe.wait_until(lambda: info.get_subscription_count() >= 1, 10, "the episode_info subscription")
    info.publish(String(data='{"episode": 0}'))
    ros.probe.wait_until(lambda: ros.logged("message on episode_info dropped: its callback failed with "
                                            "RuntimeError: simulated bug"), 10, "the logged failure")
    drive_then_break(ros)
    assert ros.probe.call(itf.POLICY_ENABLE, SetBool.Request(data=False)).success


# --- parameters -----------------------------------------------------------------------------------
def set_remote(ros: InProcessGraph, node: str, *params: Any) -> list[Any]:
    """Set parameters over the node's parameter service, as `ros2 param set` does."""
    from rclpy.parameter_client import AsyncParameterClient

    client = AsyncParameterClient(ros.probe.node, node)
    assert client.wait_for_services(timeout_sec=20), f"{node}'s parameter services"
    done = threading.Event()
    future = client.set_parameters(list(params))
    future.add_done_callback(lambda _f: done.set())
    assert done.wait(20), "set_parameters did not answer"
    return list(future.result().results)


def test_safe_parameters_are_runtime_settable_and_checked(ros: InProcessGraph, checkpoint: Path,
                                                          tmp_path: Path) -> None:
    """Only max_demos and task could be set at runtime; the speed limit, timeouts, adaptation budget,
    enabled... were read-only. Bad values are refused with the reason and the old value kept."""
    from rclpy.parameter import Parameter

    policy = start_policy(ros, checkpoint, tmp_path)
    (ok,) = set_remote(ros, "policy_node", Parameter("max_linear_speed", value=0.05))
    assert ok.successful, ok.reason
    twist = drive_then_break(ros, lambda js, ee, objs, goal: None)[0]  # a good state with stamp 101
    lin = twist.twist.linear
    assert 0 < np.linalg.norm([lin.x, lin.y, lin.z]) <= 0.05 + 1e-9
    for param, why in ((Parameter("max_linear_speed", value=-1.0), "max_linear_speed"),
                       (Parameter("state_timeout", value="abc"), "type"),
                       (Parameter("workspace_min", value=[0.0, 0.0]), "3 finite numbers"),
                       (Parameter("workspace_min", value=[5.0, 5.0, 5.0]), "lower bounds below"),
                       (Parameter("checkpoint", value="elsewhere"), "read-only")):
        (res,) = set_remote(ros, "policy_node", param)
        assert not res.successful and why in res.reason, (param.name, res.reason)
    assert policy.p["max_linear_speed"] == 0.05 and policy.p["state_timeout"] == 0.3
    assert policy.p["workspace_min"] == ()
    results = set_remote(ros, "policy_node", Parameter("adapt_steps", value=2),
                         Parameter("state_timeout", value=0.5),
                         Parameter("workspace_max", value=[1.0, 2.0, 1.0]),
                         Parameter("stale_zero_duration", value=1.0))
    assert all(r.successful for r in results), results
    assert policy._adapt_cfg.steps == 2 and policy._workspace.high == (1.0, 2.0, 1.0)
    assert policy._timer.timer_period_ns == int(0.5 / 5 * 1e9)
    (res,) = set_remote(ros, "policy_node", Parameter("enabled", value=False))
    assert res.successful
    ros.probe.wait_until(lambda: ros.status() == "disabled", ANSWER_S, "disabled by the parameter")
    res = ros.probe.call(itf.POLICY_ENABLE, SetBool.Request(data=True))
    assert res.success and policy.get_parameter("enabled").value is True  # the service sets the parameter


def test_bad_params_file_exits_2_listing_every_problem(tmp_path: Path) -> None:
    """A malformed params file ended in an RCLError traceback; misspelt keys and a string for a double
    were silently ignored."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("policy_node:\n  ros__parameters:\n    state_timeout: abc\n    max_linear_sped: 0.1\n"
                   "    rate: 80\npolcy_node:\n  ros__parameters:\n    rate: 80.0\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("policy_node:\n  ros__parameters:\n    rate: [80.0\n")
    env = isolated_ros_env()
    runs = {name: subprocess.run([sys.executable, "-m", "dmil_ros.ros.policy_node", "--ros-args",
                                  "--params-file", str(path), "-p", "max_demos:=many"],
                                 env=env, capture_output=True, text=True, timeout=120)
            for name, path in (("bad", bad), ("broken", broken), ("missing", tmp_path / "none.yaml"))}
    for name, run in runs.items():
        assert run.returncode == 2, (name, run.stdout, run.stderr)
        assert "Traceback" not in run.stdout + run.stderr and "refusing to start" in run.stderr, name
        assert "-p max_demos:=many: max_demos: 'many' must be an integer" in run.stderr, run.stderr
    out = runs["bad"].stderr
    for problem in ("state_timeout: 'abc' must be a double",
                    "policy_node has no parameter 'max_linear_sped' (did you mean max_linear_speed?)",
                    "rate: 80 must be a double (write 80.0, not 80)",
                    "no node is called 'polcy_node' (did you mean policy_node?)"):
        assert problem in out, out
    assert "not valid YAML" in runs["broken"].stderr and "none.yaml: cannot read" in runs["missing"].stderr


def test_shipped_configs_pass_the_params_check() -> None:
    from dmil_ros.ros.graph import config_file
    from dmil_ros.ros.params_file import check_params_file

    for kind in ("sim", "hardware", "standin"):
        for node in itf.NODE_PARAMS:
            assert check_params_file(str(config_file(kind)), node) == [], (kind, node)


# --- adaptation in a worker process ---------------------------------------------------------------
def test_adaptation_runs_in_a_worker_process_and_reports_progress(ros: InProcessGraph, checkpoint: Path,
                                                                  tmp_path: Path) -> None:
    """It ran in a thread of the control process (sharing the GIL with the control loop), silently."""
    import os

    policy = start_policy(ros, checkpoint, tmp_path, adapt_steps=40, adapt_lr=0.01)
    write_demo(tmp_path / "demos", steps=60)
    res = ros.probe.call(itf.POLICY_ADAPT, timeout=120)
    assert res.success and "40 adaptation steps" in res.message, res.message
    workers = [p.pid for p in policy._adapt_worker._pool._processes.values()]
    assert workers and os.getpid() not in workers
    lines = [m.data for m in ros.probe.received(itf.POLICY_STATUS) if m.data.startswith("adapting")]
    assert lines and lines[0].startswith("adapting to reach-v3: step 1/40, loss "), lines
    assert lines[-1].startswith("adapting to reach-v3: step 40/40, loss "), lines
    ros.probe.wait_until(lambda: not ros.status().startswith("adapting"),
                         ANSWER_S, "the control status again")
    assert policy._adapted_for == TASK and policy._hierarchy is not policy._base


def test_a_result_comes_after_its_last_progress(ros: InProcessGraph, checkpoint: Path,
                                                tmp_path: Path) -> None:
    """Progress travels on its own queue: a slow forwarder must still deliver the last step first."""
    policy = start_policy(ros, checkpoint, tmp_path, adapt_steps=40, adapt_lr=0.01)
    path = write_demo(tmp_path / "demos", steps=60)
    seen: list[int] = []

    def slow(_job: int, step: int, _steps: int, _loss: float) -> None:
        time.sleep(0.3)
        seen.append(step)

    worker = AdaptWorker(1, slow)
    try:
        outcome = worker.run(AdaptJob(1, policy._base, (path,), policy._mapping, policy._adapt_cfg))
        assert outcome.ok, outcome.message
        assert seen and seen[-1] == 40, seen
    finally:
        worker.close()


def test_a_closed_worker_leaves_nothing_to_the_interpreter_exit() -> None:
    """At exit concurrent.futures wakes every pool's manager thread: a pool still closing there printed
    an OSError traceback (and a leaked-semaphore warning) after the node had ended."""
    code = ("from dmil_ros.ros.adapt_worker import AdaptWorker, _ready\n"
            "w = AdaptWorker(1, print)\nw._ensure_pool().submit(_ready).result()\nw.close()\n")
    for _ in range(3):  # the race is timing-dependent: a few tries
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and r.stderr == "", r.stderr


def test_a_worker_that_dies_keeps_the_old_hierarchy(ros: InProcessGraph, checkpoint: Path,
                                                    tmp_path: Path) -> None:
    import os

    policy = start_policy(ros, checkpoint, tmp_path, adapt_steps=1000, adapt_lr=0.001)
    write_demo(tmp_path / "demos", steps=100)
    results: list[Any] = []
    caller = threading.Thread(target=lambda: results.append(ros.probe.call(itf.POLICY_ADAPT, timeout=120)))
    caller.start()
    ros.probe.wait_until(lambda: ros.said("adapting to reach-v3: step"), 60, "the adaptation under way")
    for p in policy._adapt_worker._pool._processes.values():
        os.kill(p.pid, signal.SIGKILL)
    caller.join(timeout=60)
    assert results and not results[0].success and "worker process died" in results[0].message, results
    assert policy._hierarchy is policy._base
    publish_state(ros.probe, 7)  # still driving
    ros.probe.wait_until(lambda: any(stamp_ns(t.header.stamp) == stamp_ns(stamp(7)) for t in ros.twists()),
                         ANSWER_S,
                         "a command")
    assert policy.set_parameters([Parameter("adapt_steps", value=3)])[0].successful
    res = ros.probe.call(itf.POLICY_ADAPT, timeout=120)  # a new worker
    assert res.success, res.message


def test_the_worker_can_start_with_the_node(ros: InProcessGraph, checkpoint: Path, tmp_path: Path) -> None:
    """prestart_adapt_worker (on in config/*.yaml): the first dmil/adapt does not wait for a process start."""
    policy = start_policy(ros, checkpoint, tmp_path, prestart_adapt_worker=True)
    ros.probe.wait_until(lambda: policy._adapt_worker._pool is not None
                         and any(p.is_alive() for p in policy._adapt_worker._pool._processes.values()), 60,
                         "the worker process")
    publish_state(ros.probe, 0)  # the node drives meanwhile
    ros.probe.wait_until(lambda: ros.status() == "driving", 30, "driving")
