"""The observation mapping through ROS messages and the MCAP demo format, without DDS.

The policy must see, through the sim bridge's messages, exactly the observation the env returns;
a recorded demo must turn back into the (observation, action) pairs that were executed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("metaworld")

from builtin_interfaces.msg import Time  # noqa: E402
from mcap.reader import make_reader  # noqa: E402
from mcap_ros2.decoder import DecoderFactory  # noqa: E402

from dmil_ros.envs.registry import make_env  # noqa: E402
from dmil_ros.ros import interfaces as itf  # noqa: E402
from dmil_ros.ros.mcap_io import (  # noqa: E402
    DemoFileError,
    DemoWriter,
    demo_from_mcap,
    list_demos,
    msgdef_text,
    new_demo_path,
)
from dmil_ros.ros.observation import (  # noqa: E402
    ObservationBuilder,
    ObservationMapping,
    StateError,
    action_to_command,
    command_to_action,
    robot_state_from_msgs,
    state_to_msgs,
)

GRIPPER = "gripper_opening"


def _rollout(task: str, steps: int, seed: int = 0):
    """(env observations, expert actions, messages of each step) of a scripted episode."""
    env = make_env("metaworld", task)
    obs = env.reset(seed)
    observations, actions, msgs = [], [], []
    for k in range(steps):
        msgs.append(state_to_msgs(env.robot_state(), Time(sec=1000 + k), "world", GRIPPER))
        action = env.expert_action(obs)
        observations.append(obs)
        actions.append(action)
        obs = env.step(action).observation
    env.close()
    return np.array(observations), np.array(actions), msgs


@pytest.mark.parametrize("task", ["reach-v3", "drawer-open-v3", "hammer-v3"])  # xyzw, wxyz, two objects
def test_observation_rebuilt_from_messages_equals_env_observation(task: str) -> None:
    env_obs, _, msgs = _rollout(task, 15)
    builder = ObservationBuilder(ObservationMapping(task, GRIPPER, 1.0, 10))
    rebuilt = np.array([builder.observe(robot_state_from_msgs(builder.mapping, *m)) for m in msgs])
    np.testing.assert_allclose(rebuilt, env_obs, atol=1e-6)


def test_action_twist_round_trip() -> None:
    action = np.array([0.5, -1.0, 0.25, 0.7], np.float32)
    twist, gripper = action_to_command(action, Time(sec=1), "world")
    assert math.isclose(twist.twist.linear.x, 0.4)  # 0.5 * 0.01 m / 12.5 ms
    np.testing.assert_allclose(command_to_action(twist, gripper.data), action, atol=1e-6)
    clamped, _ = action_to_command(action, Time(sec=1), "world", max_linear_speed=0.1)
    lin = clamped.twist.linear
    assert math.isclose(math.hypot(lin.x, lin.y, lin.z), 0.1)  # the norm, not each axis, is limited
    np.testing.assert_allclose([lin.x, lin.y, lin.z], np.array([0.4, -0.8, 0.2]) * 0.1 / math.sqrt(0.84))


def test_speed_clamp_holds_along_a_diagonal() -> None:
    """0.25 m/s per axis let 0.43 m/s through along the diagonal."""
    twist, _ = action_to_command(np.ones(4), Time(sec=1), "world", max_linear_speed=0.25)
    lin = twist.twist.linear
    assert math.hypot(lin.x, lin.y, lin.z) <= 0.25 + 1e-12 and math.isclose(lin.x, lin.y)
    spin, _ = action_to_command(np.zeros(4), Time(sec=1), "world", 0.25, 0.5, angular=np.array([1.0, 1, 1]))
    ang = spin.twist.angular
    assert math.isclose(math.hypot(ang.x, ang.y, ang.z), 0.5)


def _good_msgs():
    _, _, msgs = _rollout("reach-v3", 1)
    return msgs[0]


def test_refusals_name_the_problem() -> None:
    mapping = ObservationMapping("reach-v3", GRIPPER, 1.0, 10)
    js, ee, objs, goal = _good_msgs()
    js.position = list(js.position)[:-1]
    with pytest.raises(StateError, match="10 names but 9 positions"):
        robot_state_from_msgs(mapping, js, ee, objs, goal)
    js, ee, objs, goal = _good_msgs()
    js.position = [float("nan")] * len(js.name)
    with pytest.raises(StateError, match="NaN"):
        robot_state_from_msgs(mapping, js, ee, objs, goal)
    js, ee, objs, goal = _good_msgs()
    objs.poses = []
    with pytest.raises(StateError, match="object_poses has 0 poses, task reach-v3 needs 1"):
        robot_state_from_msgs(mapping, js, ee, objs, goal)
    with pytest.raises(StateError, match="no object_poses received"):
        robot_state_from_msgs(mapping, js, ee, None, goal)
    js, ee, objs, goal = _good_msgs()
    js.name = [n for n in js.name if n != GRIPPER] + ["other"]
    with pytest.raises(StateError, match="gripper joint"):
        robot_state_from_msgs(mapping, js, ee, objs, goal)


def _write_demo(path: Path, msgs, actions, shuffle_parts: bool = False) -> Path:
    writer = DemoWriter(path, {"task": "reach-v3"})
    rng = np.random.default_rng(0)
    t = 1_000_000_000
    for (js, ee, objs, goal), action in zip(msgs, actions, strict=True):
        parts = [(itf.GOAL, goal), (itf.OBJECT_POSES, objs), (itf.JOINT_STATES, js), (itf.EE_POSE, ee)]
        if shuffle_parts:  # DDS gives no order across topics
            parts = [parts[i] for i in rng.permutation(4)]
        for spec, msg in parts:
            t += 1000
            writer.write("/" + spec.name, msg, t)
        twist, gripper = action_to_command(action, js.header.stamp, "world")
        writer.write("/" + itf.TELEOP_GRIPPER.name, gripper, t + 500)
        writer.write("/" + itf.TELEOP_TWIST.name, twist, t + 600)
        t += 10_000
    return writer.finish()


@pytest.mark.parametrize("shuffle", [False, True])
def test_mcap_demo_round_trip(tmp_path: Path, shuffle: bool) -> None:
    env_obs, actions, msgs = _rollout("reach-v3", 20)
    path = _write_demo(new_demo_path(tmp_path, "reach-v3"), msgs, actions, shuffle)
    assert list_demos(tmp_path, "reach-v3") == [path]
    demo = demo_from_mcap(path, ObservationMapping("reach-v3", GRIPPER, 1.0, 10))
    np.testing.assert_allclose(demo.observations, env_obs, atol=1e-6)
    np.testing.assert_allclose(demo.actions, actions, atol=1e-5)
    # any ros2 MCAP reader can decode it: schemas are complete ros2msg definitions
    with open(path, "rb") as f:
        topics = {c.topic for _, c, _, _ in make_reader(f, decoder_factories=[DecoderFactory()])
                  .iter_decoded_messages()}
    assert "/teleop/twist_cmd" in topics and "/joint_states" in topics


def test_msgdef_includes_nested_definitions() -> None:
    text = msgdef_text(itf.OBJECT_POSES.msg_type)
    assert text.startswith("std_msgs/Header header\ngeometry_msgs/Pose[] poses")
    for dep in ("MSG: std_msgs/Header", "MSG: builtin_interfaces/Time", "MSG: geometry_msgs/Pose",
                "MSG: geometry_msgs/Point", "MSG: geometry_msgs/Quaternion"):
        assert dep in text


def test_corrupt_and_unfinished_files_are_refused(tmp_path: Path) -> None:
    mapping = ObservationMapping("reach-v3", GRIPPER, 1.0, 10)
    garbage = tmp_path / "garbage.mcap"
    garbage.write_bytes(b"\x89MCAP0\r\n" + b"\x00garbage" * 50)
    with pytest.raises(DemoFileError, match="corrupt"):
        demo_from_mcap(garbage, mapping)
    _, actions, msgs = _rollout("reach-v3", 5)
    good = _write_demo(tmp_path / "good.mcap", msgs, actions)
    truncated = tmp_path / "truncated.mcap"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DemoFileError):
        demo_from_mcap(truncated, mapping)
    # a demo still being written (or whose recorder was killed) is not a finished demo
    unfinished = DemoWriter(tmp_path / "reach-v3" / "demo-x.mcap", {"task": "reach-v3"})
    unfinished.write("/" + itf.JOINT_STATES.name, msgs[0][0])
    assert list_demos(tmp_path, "reach-v3") == []
    unfinished.discard()


def test_demo_without_commands_is_refused(tmp_path: Path) -> None:
    writer = DemoWriter(tmp_path / "empty.mcap", {"task": "reach-v3"})
    js, ee, objs, goal = _good_msgs()
    writer.write("/joint_states", js)
    path = writer.finish()
    with pytest.raises(DemoFileError, match="no operator commands"):
        demo_from_mcap(path, ObservationMapping("reach-v3"))
