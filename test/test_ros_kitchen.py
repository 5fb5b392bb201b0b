"""env=kitchen over ROS: the embodiment mapping (no DDS), the sim bridge and the policy node over DDS
in-process, and an end-to-end bringup run (scripted kitchen expert -> MCAP demo -> dmil/adapt)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("gymnasium_robotics")

from builtin_interfaces.msg import Time  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402

from dmil_ros.core.checkpoint import save_checkpoint  # noqa: E402
from dmil_ros.core.config import ModelConfig  # noqa: E402
from dmil_ros.core.hierarchy import Hierarchy  # noqa: E402
from dmil_ros.envs.base import RobotState  # noqa: E402
from dmil_ros.envs.registry import make_env  # noqa: E402
from dmil_ros.ros import interfaces as itf  # noqa: E402
from dmil_ros.ros.checkpoint_path import shipped_checkpoint_available  # noqa: E402
from dmil_ros.ros.embodiment import (  # noqa: E402
    KITCHEN,
    KITCHEN_JOINTS,
    KITCHEN_ROBOT_JOINTS,
    CommandError,
    kitchen_command_to_action,
)
from dmil_ros.ros.mcap_io import demo_from_mcap, list_demos  # noqa: E402
from dmil_ros.ros.observation import StateError, stamp_ns  # noqa: E402
from dmil_ros.ros.policy_node import PolicyNode, load_policy  # noqa: E402
from dmil_ros.ros.sim_bridge import SimBridge  # noqa: E402
from dmil_ros.ros.testing import InProcessGraph, Probe, interrupt, isolated_ros_env  # noqa: E402

pytestmark = pytest.mark.ros
TASK = "microwave+kettle+top_burner+light_switch"


@pytest.fixture(scope="module")
def kitchen_env() -> Iterator[Any]:
    env = make_env("kitchen", TASK, max_episode_steps=50)
    env.reset(0)
    yield env
    env.close()


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """A small random kitchen checkpoint (30-dim observations, 9 joint velocities)."""
    return save_checkpoint(Hierarchy.initialize(ModelConfig(30, 9, 3, (32, 32)), seed=0), tmp_path / "ckpt")


# --- the mapping, no DDS --------------------------------------------------------------------------
def test_state_messages_rebuild_the_observation_exactly(kitchen_env: Any) -> None:
    state = kitchen_env.robot_state()
    assert state.joint_names == KITCHEN_JOINTS
    js, ee, objs, goal = KITCHEN.state_to_msgs(state, Time(sec=5), "world")
    assert list(js.name) == list(KITCHEN_JOINTS) and len(objs.poses) == 1
    assert (goal.point.x, goal.point.y, goal.point.z) == (0.0, 0.0, 0.0)
    # joint order on the wire does not matter
    order = np.random.default_rng(0).permutation(len(js.name))
    js.name, js.position = [js.name[i] for i in order], [js.position[i] for i in order]
    mapping = KITCHEN.mapping(TASK, "ignored", 3.0, 10)
    robot = KITCHEN.robot_state_from_msgs(mapping, js, ee, objs, goal)
    obs = KITCHEN.builder(mapping).observe(robot)
    np.testing.assert_array_equal(obs, kitchen_env._last_obs)
    assert robot.gripper_opening == pytest.approx(state.gripper_opening)


def test_bad_kitchen_states_are_refused_with_a_reason(kitchen_env: Any) -> None:
    mapping = KITCHEN.mapping(TASK)

    def parts() -> tuple:
        return KITCHEN.state_to_msgs(kitchen_env.robot_state(), Time(sec=5), "world")

    js, ee, objs, goal = parts()
    js.position = list(js.position)[:-1]
    with pytest.raises(StateError, match="23 names but 22 positions"):
        KITCHEN.robot_state_from_msgs(mapping, js, ee, objs, goal)
    js, ee, objs, goal = parts()
    js.name, js.position = list(js.name)[:-1], list(js.position)[:-1]
    with pytest.raises(StateError, match="has 22 joints.*lacks microwave"):
        KITCHEN.robot_state_from_msgs(mapping, js, ee, objs, goal)
    js, ee, objs, goal = parts()
    js.position = [float("nan")] + list(js.position)[1:]
    with pytest.raises(StateError, match="NaN"):
        KITCHEN.robot_state_from_msgs(mapping, js, ee, objs, goal)
    js, ee, objs, goal = parts()
    objs.poses = []
    with pytest.raises(StateError, match="0 poses, the kitchen needs 1"):
        KITCHEN.robot_state_from_msgs(mapping, js, ee, objs, goal)


def test_joint_velocity_command_round_trip_and_refusals() -> None:
    action = np.linspace(-1.2, 1.2, 9)  # saturates like the env
    cmd, gripper = KITCHEN.action_to_command(action, Time(sec=1), "world")
    assert gripper is None and list(cmd.name) == list(KITCHEN_ROBOT_JOINTS)
    np.testing.assert_allclose(cmd.velocity, 2.0 * np.clip(action, -1, 1))
    np.testing.assert_allclose(kitchen_command_to_action(cmd), np.clip(action, -1, 1), atol=1e-6)
    # any joint order
    rev = JointState(name=list(cmd.name)[::-1], velocity=list(cmd.velocity)[::-1])
    np.testing.assert_allclose(kitchen_command_to_action(rev), np.clip(action, -1, 1), atol=1e-6)
    with pytest.raises(CommandError, match="9 names but 8 velocities"):
        kitchen_command_to_action(JointState(name=list(cmd.name), velocity=list(cmd.velocity)[:8]))
    with pytest.raises(CommandError, match="missing"):
        kitchen_command_to_action(JointState(name=["a"] * 9, velocity=[0.0] * 9))
    with pytest.raises(CommandError, match="NaN"):
        kitchen_command_to_action(JointState(name=list(cmd.name), velocity=[float("nan")] + [0.0] * 8))


def test_kitchen_checkpoints_are_checked(tmp_path: Path, checkpoint: Path) -> None:
    hierarchy, _, _ = load_policy(str(checkpoint), "kitchen")
    assert hierarchy.config.obs_dim == 30
    metaworld = save_checkpoint(Hierarchy.initialize(ModelConfig(39, 4, 3, (8,)), seed=0), tmp_path / "mw")
    with pytest.raises(itf.ConfigError, match="the kitchen mapping gives 30 -> 9"):
        load_policy(str(metaworld), "kitchen")
    if shipped_checkpoint_available("kitchen"):  # the default is the shipped no_top_burner hierarchy
        shipped, _, _ = load_policy("", "kitchen")
        assert (shipped.config.obs_dim, shipped.config.action_dim) == (30, 9)
    else:
        with pytest.raises(itf.ConfigError, match="kitchen/no_top_burner"):
            load_policy("", "kitchen")


def test_graph_passes_env_kitchen_to_every_node() -> None:
    from dmil_ros.ros import graph

    nodes = graph.build_graph("sim", {"env": "kitchen", "task": TASK})
    assert {n.name for n in nodes} == {"sim_bridge", "policy_node", "demo_recorder", "scripted_teleop"}
    assert all(n.parameters["env"] == "kitchen" and n.parameters["task"] == TASK for n in nodes)
    with pytest.raises(itf.ConfigError, match="env:=moon"):
        graph.build_graph("sim", {"env": "moon"})
    hw = {n.name: n for n in graph.build_graph("hardware", {"env": "kitchen",
                                                            "joint_velocity_topic": "/arm/joint_vel"})}
    assert dict(hw["policy_node"].remappings)[itf.POLICY_JOINT_VELOCITY.name] == "/arm/joint_vel"


def test_policy_process_without_kitchen_checkpoint_refuses_to_start(tmp_path: Path) -> None:
    missing = tmp_path / "kitchen" / "no_top_burner"
    cmd = [sys.executable, "-m", "dmil_ros.ros.policy_node", "--ros-args", "-p", "env:=kitchen",
           "-p", "task:=microwave", "-p", f"checkpoint:={missing}"]
    proc = subprocess.run(cmd, env=isolated_ros_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert str(missing) in proc.stderr and "Traceback" not in proc.stderr


# --- sim bridge over DDS --------------------------------------------------------------------------
@pytest.fixture
def ros() -> Iterator[InProcessGraph]:
    g = InProcessGraph()
    for spec in (itf.JOINT_STATES, itf.OBJECT_POSES, itf.GOAL, itf.EPISODE_INFO, itf.POLICY_JOINT_VELOCITY,
                 itf.POLICY_STATUS):
        g.probe.watch(spec)
    yield g
    g.close()


def distinct_states(ros: InProcessGraph) -> list[Any]:
    out: list[Any] = []
    for m in ros.probe.received(itf.JOINT_STATES):
        if not out or stamp_ns(out[-1].header.stamp) != stamp_ns(m.header.stamp):
            out.append(m)
    return out


def joint_command(stamp: Time, velocity: dict[str, float]) -> JointState:
    msg = JointState(name=list(KITCHEN_ROBOT_JOINTS),
                     velocity=[velocity.get(n, 0.0) for n in KITCHEN_ROBOT_JOINTS])
    msg.header.stamp = stamp
    return msg


def test_sim_bridge_publishes_the_kitchen_and_executes_joint_velocities(ros: InProcessGraph) -> None:
    bridge = ros.add(SimBridge, env="kitchen", task=TASK, lock_step=True)
    ros.probe.wait_matched(publish=(itf.TELEOP_JOINT_VELOCITY, itf.POLICY_JOINT_VELOCITY),
                           watch=(itf.JOINT_STATES,), timeout=20, nodes=(bridge,))
    ros.probe.wait_until(lambda: ros.probe.received(itf.OBJECT_POSES) and ros.probe.received(itf.GOAL), 10,
                         "the first state")
    first = distinct_states(ros)[-1]
    assert list(first.name) == list(KITCHEN_JOINTS)
    kettle = ros.probe.received(itf.OBJECT_POSES)[-1].poses
    assert len(kettle) == 1 and 1.5 < kettle[0].position.z < 1.7  # on the stove
    goal = ros.probe.received(itf.GOAL)[-1].point
    assert (goal.x, goal.y, goal.z) == (0.0, 0.0, 0.0)
    info = json.loads(ros.probe.received(itf.EPISODE_INFO)[-1].data)
    assert info["task"] == TASK and info["completed"] == [] and info["episode"] == 0

    # a malformed command is refused (logged), no step
    ros.probe.publisher(itf.TELEOP_JOINT_VELOCITY).publish(JointState(name=["x"], velocity=[1.0]))
    ros.probe.wait_until(lambda: ros.logged("ignoring joint command from teleop"), 5, "the refusal")
    assert len(distinct_states(ros)) == 1

    # lock-step: each command for the current state is one step; joint 1 (vertical axis) turns +, then -
    j1 = KITCHEN_ROBOT_JOINTS[0]
    q = [first.position[0]]
    for k, v in enumerate((1.0, 1.0, -1.0, -1.0, -1.0)):
        stamp = distinct_states(ros)[-1].header.stamp
        ros.probe.publisher(itf.TELEOP_JOINT_VELOCITY).publish(joint_command(stamp, {j1: v}))
        ros.probe.wait_until(lambda k=k: len(distinct_states(ros)) == k + 2, 5, f"step {k + 1}")
        q.append(distinct_states(ros)[-1].position[0])
    assert q[2] > q[0] + 0.05, q  # 2 rad/s x 0.08 s per step, minus the actuator lag
    assert q[5] < q[2] - 0.05, q
    # a stale command (stamp of the first state) is dropped
    ros.probe.publisher(itf.POLICY_JOINT_VELOCITY).publish(joint_command(first.header.stamp, {j1: 1.0}))
    time.sleep(0.3)
    assert len(distinct_states(ros)) == 6


# --- policy node over DDS -------------------------------------------------------------------------
def kitchen_state(k: int) -> RobotState:
    """A plausible kitchen state drifting with k (no simulator needed)."""
    q = np.zeros(23)
    q[:7] = [0.15, -1.77, 1.84, -2.48, 0.26, 0.71, 1.6]
    q[7:9] = 0.04
    q[0] += 0.001 * k
    return RobotState(joint_names=KITCHEN_JOINTS, joint_positions=q, ee_position=np.array([-0.4, 0.1, 2.0]),
                      ee_orientation=np.array([0.0, 0.0, 0.0, 1.0]), gripper_opening=1.0,
                      object_positions=np.array([[-0.27, 0.35, 1.62]]),
                      object_orientations=np.array([[0.0, 0.0, 0.0, 1.0]]), goal_position=np.zeros(3))


def publish_kitchen_state(probe: Probe, k: int, mutate: Any = None) -> None:
    js, ee, objs, goal = KITCHEN.state_to_msgs(kitchen_state(k), Time(sec=100 + k), "world")
    if mutate is not None:
        mutate(js)
    for spec, msg in ((itf.GOAL, goal), (itf.OBJECT_POSES, objs), (itf.JOINT_STATES, js), (itf.EE_POSE, ee)):
        probe.publisher(spec).publish(msg)


def test_policy_node_drives_joint_velocities_and_refuses_bad_states(ros: InProcessGraph, checkpoint: Path,
                                                                     tmp_path: Path) -> None:
    policy = ros.add(PolicyNode, env="kitchen", task=TASK, checkpoint=str(checkpoint), enabled=True,
                     demo_dir=str(tmp_path / "demos"), state_timeout=0.3, expected_joint_count=10,
                     max_clock_skew=0.0)  # synthetic stamps (1970)
    ros.probe.wait_matched(publish=itf.STATE_TOPICS, watch=(itf.POLICY_JOINT_VELOCITY, itf.POLICY_STATUS),
                           timeout=20, nodes=(policy,))

    def commands_for(k: int) -> list[Any]:
        return [c for c in ros.probe.received(itf.POLICY_JOINT_VELOCITY)
                if stamp_ns(c.header.stamp) == stamp_ns(Time(sec=100 + k))]

    for k in range(3):
        publish_kitchen_state(ros.probe, k)
        cmd = ros.probe.wait_until(lambda k=k: commands_for(k), 5, f"the command for state {k}")[0]
        assert list(cmd.name) == list(KITCHEN_ROBOT_JOINTS) and len(cmd.velocity) == 9
        assert all(abs(v) <= 2.0 for v in cmd.velocity) and any(v != 0.0 for v in cmd.velocity)
    assert ros.status() == "driving"

    def drop_joint(js: Any) -> None:  # 22 joints: refused, zero command, reason on status and log
        js.name, js.position = list(js.name)[:-1], list(js.position)[:-1]

    publish_kitchen_state(ros.probe, 3, drop_joint)
    refused = ros.probe.wait_until(lambda: commands_for(3), 5, "the refusal")
    assert all(v == 0.0 for c in refused for v in c.velocity)
    reason = "joint_states has 22 joints"
    ros.probe.wait_until(lambda: ros.said(reason) and ros.logged(reason), 5, "the reason")

    def nan(js: Any) -> None:
        js.position = [float("nan")] + list(js.position)[1:]

    publish_kitchen_state(ros.probe, 4, nan)
    ros.probe.wait_until(lambda: ros.said("NaN"), 5, "the NaN refusal")
    publish_kitchen_state(ros.probe, 5)  # and it drives again
    ros.probe.wait_until(lambda: commands_for(5) and ros.status() == "driving", 5, "recovery")
    assert any(v != 0.0 for v in commands_for(5)[0].velocity)


# --- end to end: bringup sim env=kitchen, scripted expert demo, dmil/adapt --------------------------
def test_kitchen_graph_records_a_demo_and_adapts(tmp_path: Path, checkpoint: Path) -> None:
    t0 = time.monotonic()
    env = isolated_ros_env()
    log_path = tmp_path / "bringup.log"
    task = "microwave"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dmil_ros.ros.bringup", "sim", "--env", "kitchen", "--task", task,
             "--checkpoint", str(checkpoint), "--demo-dir", str(tmp_path / "demos"), "--teleop", "on"],
            env=env, stdout=log, stderr=subprocess.STDOUT)
        probe = Probe(int(env["ROS_DOMAIN_ID"]))
        for spec in (itf.EPISODE_INFO, itf.SKILL):
            probe.watch(spec)
        try:
            _kitchen_e2e(probe, tmp_path, task, log_path)
        finally:
            probe.close()
            interrupt(proc, 20)
            code = proc.returncode
    assert code == 0, log_path.read_text(errors="replace")
    print(f"kitchen e2e: {time.monotonic() - t0:.1f} s")


def _kitchen_e2e(probe: Probe, tmp_path: Path, task: str, log_path: Path) -> None:
    def log() -> str:
        return log_path.read_text(errors="replace")

    for spec in (itf.SIM_RESET, itf.RECORD_START, itf.ADAPT, itf.POLICY_ENABLE, itf.TELEOP_ENABLE):
        assert probe.wait_for_service(spec, 60), f"{spec.name} never came up:\n{log()}"
    node = probe.node
    wanted = {"/joint_states": (1, 3), "/teleop/joint_velocity_cmd": (1, 2),
              "/dmil/policy/joint_velocity_cmd": (1, 1)}
    probe.wait_until(lambda: all(node.count_publishers(t) >= p and node.count_subscribers(t) >= s
                                 for t, (p, s) in wanted.items()), 30, "the graph's topics to connect")

    def info() -> dict:
        msgs = probe.received(itf.EPISODE_INFO)
        return json.loads(msgs[-1].data) if msgs else {}

    def episode(source: itf.ServiceSpec, timeout: float, until: Any = None) -> dict:
        number = int(re.match(r"episode (\d+) ", probe.call(itf.SIM_RESET).message).group(1))
        res = probe.call(source, SetBool.Request(data=True))
        assert res.success and "(command_subscribers)" not in res.message, res.message  # teleop: reaches all
        done = until or (lambda i: i.get("done"))
        final = probe.wait_until(lambda: (i := info()).get("episode") == number and done(i) and i, timeout,
                                 f"episode {number} with {source.name}")
        assert probe.call(source, SetBool.Request(data=False)).success
        return final

    probe.start_recording(30, log)
    demo_info = episode(itf.TELEOP_ENABLE, 60)
    assert demo_info["success"] and demo_info["completed"] == [task], f"{demo_info}\n{log()}"
    res = probe.call(itf.RECORD_STOP)
    assert res.success, res.message
    demos = list_demos(tmp_path / "demos", task)
    assert len(demos) == 1
    demo = demo_from_mcap(demos[0], KITCHEN.mapping(task))
    assert demo.observations.shape[1] == 30
    # one sample per step, plus possibly the operator's answer to the final state (which the sim ignores)
    assert demo.actions.shape[1] == 9 and 0 <= len(demo.actions) - demo_info["step"] <= 1, demo.actions.shape

    res = probe.call(itf.ADAPT, timeout=120)
    assert res.success and "accepted" in res.message and "1 demo" in res.message, res.message
    print(f"adapt: {res.message}")

    # the adapted policy drives (a random checkpoint: only that it steps the kitchen)
    probe.clear(itf.SKILL)
    episode(itf.POLICY_ENABLE, 60, until=lambda i: len(probe.received(itf.SKILL)) >= 20)
