"""No message content can crash a node: every subscription callback of every node, fuzzed.

Property-based (hypothesis): each node (policy_node, scripted_teleop, sim_bridge for both env families,
demo_recorder while recording) is built in-process, never spun, and its subscription callbacks are
called directly, in random order, with messages generated over every field of every subscribed type
(strings and JSON, huge / negative / non-finite numbers, wrong lengths, names the node knows and
names it does not), mixed with plausible state so the deep paths (observation, policy, env step) run.

The raw callbacks (under the guard every subscription has) must not raise; whatever the policy
publishes must be finite and within its speed limit. A separate test checks the guard itself over
DDS: a callback that raises is logged with its topic and the node keeps serving.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("rclpy")
hypothesis = pytest.importorskip("hypothesis")

import rclpy  # noqa: E402
from builtin_interfaces.msg import Time  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.serialization import serialize_message  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from dmil_ros.core.checkpoint import save_checkpoint  # noqa: E402
from dmil_ros.core.config import ModelConfig  # noqa: E402
from dmil_ros.core.hierarchy import Hierarchy  # noqa: E402
from dmil_ros.envs.base import RobotState  # noqa: E402
from dmil_ros.ros import interfaces as itf  # noqa: E402
from dmil_ros.ros.embodiment import KITCHEN, KITCHEN_JOINTS, METAWORLD  # noqa: E402
from dmil_ros.ros.testing import isolated_ros_env  # noqa: E402

pytestmark = pytest.mark.ros

# Bounded: the suite keeps its run time (each example is a short sequence of callbacks).
FUZZ = settings(max_examples=40, deadline=None, database=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

# --- messages over every field --------------------------------------------------------------------
_INTS = {"int8": 8, "int16": 16, "int32": 32, "int64": 64}
_UINTS = {"uint8": 8, "uint16": 16, "uint32": 32, "uint64": 64, "octet": 8, "byte": 8, "char": 8}
NAMES = ("gripper_opening", *KITCHEN_JOINTS, *(f"right_j{i}" for i in range(7)), "r_close", "l_close")
STAMPS = (Time(sec=100), Time(sec=101))  # few: the synced parts often share one, so states complete
EXTREMES = (0.0, -0.0, 1e30, -1e30, 1e308, -1e308, 5e-324, math.inf, -math.inf, math.nan, 1.0, -1.0)


def doubles(width: int = 64) -> st.SearchStrategy[float]:
    return st.one_of(st.floats(-2.0, 2.0, width=width), st.sampled_from(EXTREMES),
                     st.floats(allow_nan=True, allow_infinity=True, width=width))


def json_text() -> st.SearchStrategy[str]:
    """episode_info-like JSON with hostile values (Infinity, 1e400, NaN, wrong types), and raw text."""
    values = st.one_of(st.integers(-(2**70), 2**70), doubles(), st.text(max_size=8), st.booleans(),
                       st.none(), st.lists(st.integers(), max_size=3))
    keys = st.sampled_from(["task", "episode", "seed", "step", "success", "done", "start_ns", "lock_step",
                            "max_steps", "completed"])
    objects = st.dictionaries(keys, values, max_size=9).map(json.dumps)
    literal = st.sampled_from(['{"episode": 1e400, "start_ns": 0}', '{"episode": Infinity}',
                               '{"episode": 0, "start_ns": -Infinity}', '{"episode": NaN}',
                               '[1, 2]', '"text"', "null", "{", "[" * 100000, '{"episode": "1e5"}'])
    return st.one_of(objects, literal, st.text(max_size=40))


def value(rosidl: str) -> st.SearchStrategy[Any]:
    m = re.fullmatch(r"sequence<(.+?)(?:, (\d+))?>", rosidl)
    if m:
        return st.lists(value(m.group(1)), max_size=int(m.group(2)) if m.group(2) else 25)
    m = re.fullmatch(r"(.+)\[(\d+)\]", rosidl)
    if m:
        return st.lists(value(m.group(1)), min_size=int(m.group(2)), max_size=int(m.group(2)))
    if rosidl == "double":
        return doubles()
    if rosidl == "float":
        return doubles(32)
    if rosidl == "boolean":
        return st.booleans()
    if rosidl in _INTS:
        b = _INTS[rosidl]
        return st.one_of(st.sampled_from([0, 1, -1]), st.integers(-(2 ** (b - 1)), 2 ** (b - 1) - 1))
    if rosidl in _UINTS:
        return st.one_of(st.sampled_from([0, 1]), st.integers(0, 2 ** _UINTS[rosidl] - 1))
    if rosidl == "string" or rosidl.startswith("string<"):
        return st.one_of(st.sampled_from(NAMES), json_text(), st.text(max_size=30))
    if rosidl == "builtin_interfaces/Time":
        return st.one_of(st.sampled_from(STAMPS), message(Time))
    pkg, name = rosidl.split("/")
    return message(getattr(__import__(f"{pkg}.msg", fromlist=[name]), name))


def message(msg_type: type) -> st.SearchStrategy[Any]:
    """Any message of `msg_type`: every field drawn from `value` of its rosidl type."""
    fields = msg_type.get_fields_and_field_types()
    return st.fixed_dictionaries({f: st.deferred(lambda t=t: value(t)) for f, t in fields.items()}).map(
        lambda kw: msg_type(**kw))


def plausible_state(emb: Any, k: int) -> dict[str, Any]:
    """role -> a good message of a state with stamp STAMPS[k] (what a working robot sends)."""
    if emb is KITCHEN:
        state = RobotState(joint_names=KITCHEN_JOINTS, joint_positions=np.zeros(len(KITCHEN_JOINTS)),
                           ee_position=np.array([0.0, 0.5, 2.0]), ee_orientation=np.array([0.0, 0, 0, 1]),
                           gripper_opening=0.5, object_positions=np.array([[-0.27, 0.75, 1.6]]),
                           object_orientations=np.array([[0.0, 0, 0, 1]]), goal_position=np.zeros(3))
    else:
        state = RobotState(joint_names=tuple(f"right_j{i}" for i in range(7)) + ("r_close", "l_close"),
                           joint_positions=np.linspace(-0.5, 0.5, 9), ee_position=np.array([0.0, 0.6, 0.2]),
                           ee_orientation=np.array([0.0, 0, 0, 1]), gripper_opening=1.0,
                           object_positions=np.array([[0.0, 0.7, 0.02]]),
                           object_orientations=np.array([[0.0, 0, 0, 1]]),
                           goal_position=np.array([0.1, 0.8, 0.2]))
    js, ee, objs, goal = emb.state_to_msgs(state, STAMPS[k], "world", "gripper_opening")
    return {itf.JOINT_STATES.name: js, itf.EE_POSE.name: ee, itf.OBJECT_POSES.name: objs, itf.GOAL.name: goal}


def plausible_command(emb: Any, k: int) -> dict[str, Any]:
    twist, gripper = METAWORLD.action_to_command(np.array([0.3, -0.2, 0.1, 0.5]), STAMPS[k], "world")
    joints, _ = KITCHEN.action_to_command(np.full(9, 0.1), STAMPS[k], "world")
    return {itf.POLICY_TWIST.name: twist, itf.TELEOP_TWIST.name: twist, itf.POLICY_GRIPPER.name: gripper,
            itf.TELEOP_GRIPPER.name: gripper, itf.POLICY_JOINT_VELOCITY.name: joints,
            itf.TELEOP_JOINT_VELOCITY.name: joints,
            itf.EPISODE_INFO.name: itf.EPISODE_INFO.msg_type(data=json.dumps({"episode": k, "start_ns": 0})),
            itf.TASK.name: itf.TASK.msg_type(data="reach-v3" if emb is METAWORLD else "microwave")}


@st.composite
def events(draw: Any, subs: dict[str, Any], emb: Any) -> list[tuple[str, Any]]:
    """A sequence of (topic, message): plausible ones with a fuzzed one (or several) among them."""
    out = []
    for _ in range(draw(st.integers(1, 8))):
        topic = draw(st.sampled_from(sorted(subs)))
        k = draw(st.integers(0, 1))
        good = {**plausible_state(emb, k), **plausible_command(emb, k)}
        if topic in good and draw(st.booleans()):
            # a whole good state first, so the fuzzed part lands on an otherwise complete state
            out += [(t, m) for t, m in plausible_state(emb, k).items() if t in subs]
            out.append((topic, good[topic]))
        else:
            out.append((topic, draw(message(subs[topic].msg_type))))
    return out


# --- nodes, built in a context that is never spun -------------------------------------------------
@pytest.fixture(scope="module")
def context() -> Iterator[Context]:
    ctx = Context()
    rclpy.init(context=ctx, domain_id=int(isolated_ros_env()["ROS_DOMAIN_ID"]))
    yield ctx
    rclpy.try_shutdown(context=ctx)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpt")
    return {"metaworld": save_checkpoint(Hierarchy.initialize(ModelConfig(39, 4, 3, (32, 32))), root / "mw"),
            "kitchen": save_checkpoint(Hierarchy.initialize(ModelConfig(30, 9, 3, (32, 32))), root / "k")}


def build(cls: type, context: Context, **params: Any) -> Any:
    from rclpy.parameter import Parameter

    return cls(context=context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])


def raw_callbacks(node: Any) -> dict[str, Any]:
    """topic -> subscription; every subscription must be guarded (its raw callback is __wrapped__)."""
    subs = {}
    for sub in node.subscriptions:
        assert hasattr(sub.callback, "dmil_guarded_topic"), f"{sub.topic_name} is not guarded"
        subs[sub.topic_name.lstrip("/")] = sub
    return subs


def capture(publisher: Any) -> list[Any]:
    sent: list[Any] = []
    publish = publisher.publish
    publisher.publish = lambda msg: (sent.append(msg), publish(msg))
    return sent


def feed(subs: dict[str, Any], sequence: list[tuple[str, Any]],
         tick: Callable[[], None] | None = None) -> None:
    for seq, (topic, msg) in enumerate(sequence, start=1):
        sub = subs[topic]
        raw = sub.callback.__wrapped__
        if sub.raw:  # a raw subscription (the recorder) gets the serialized bytes
            msg = serialize_message(msg)
        if sub._callback_type == sub.CallbackType.WithMessageInfo:
            raw(msg, {"received_timestamp": time.time_ns(), "source_timestamp": 0,
                      "publication_sequence_number": seq * 3})
        else:
            raw(msg)
        if tick is not None:
            tick()


def finite_command(msg: Any, max_speed: float) -> bool:
    if hasattr(msg, "twist"):
        lin, ang = msg.twist.linear, msg.twist.angular
        v = np.array([lin.x, lin.y, lin.z, ang.x, ang.y, ang.z])
        return bool(np.isfinite(v).all() and np.linalg.norm(v[:3]) <= max_speed * (1 + 1e-9))
    return bool(np.isfinite(msg.velocity).all() and np.all(np.abs(msg.velocity) <= 2.0))


def is_zero_command(msg: Any) -> bool:
    if hasattr(msg, "twist"):
        lin = msg.twist.linear
        return lin.x == lin.y == lin.z == 0.0
    return not any(msg.velocity)


@pytest.mark.parametrize("env", ["metaworld", "kitchen"])
def test_policy_node_survives_any_message(env: str, context: Context, checkpoints: dict[str, Path],
                                          tmp_path: Path) -> None:
    from dmil_ros.ros.policy_node import PolicyNode

    task = "reach-v3" if env == "metaworld" else "microwave"
    node = build(PolicyNode, context, env=env, task=task, checkpoint=str(checkpoints[env]), enabled=True,
                 demo_dir=str(tmp_path), max_linear_speed=0.25,
                 max_clock_skew=0.0)  # STAMPS are synthetic: judged, they would stop every state early
    emb = METAWORLD if env == "metaworld" else KITCHEN
    subs = raw_callbacks(node)
    assert set(subs) == {itf.TASK.name, itf.EPISODE_INFO.name, *(s.name for s in itf.STATE_TOPICS)}
    commands = capture(node._pub_twist)
    try:
        @FUZZ
        @given(sequence=events(subs, emb))
        def run(sequence: list[tuple[str, Any]]) -> None:
            feed(subs, sequence, node._tick)
            assert all(finite_command(c, 0.25) for c in commands), commands[-1]

        run()
        moving = [c for c in commands if not is_zero_command(c)]  # the policy acted
        assert moving, "the fuzzing never reached the policy (only refusals were published)"
    finally:
        node.destroy_node()


@pytest.mark.parametrize("env", ["metaworld", "kitchen"])
def test_scripted_teleop_survives_any_message(env: str, context: Context) -> None:
    from dmil_ros.ros.scripted_teleop import ScriptedTeleop

    task = "reach-v3" if env == "metaworld" else "microwave"
    node = build(ScriptedTeleop, context, env=env, task=task, enabled=True)
    subs = raw_callbacks(node)
    try:
        @FUZZ
        @given(sequence=events(subs, METAWORLD if env == "metaworld" else KITCHEN))
        def run(sequence: list[tuple[str, Any]]) -> None:
            feed(subs, sequence)

        run()
    finally:
        node.close()
        node.destroy_node()


@pytest.mark.parametrize("env", ["metaworld", "kitchen"])
def test_sim_bridge_survives_any_command(env: str, context: Context) -> None:
    from dmil_ros.ros.sim_bridge import SimBridge

    task = "reach-v3" if env == "metaworld" else "microwave"
    node = build(SimBridge, context, env=env, task=task, max_episode_steps=50, auto_reset=True)
    subs = raw_callbacks(node)
    twist = {itf.POLICY_TWIST.name, itf.POLICY_GRIPPER.name, itf.TELEOP_TWIST.name, itf.TELEOP_GRIPPER.name}
    joints = {itf.POLICY_JOINT_VELOCITY.name, itf.TELEOP_JOINT_VELOCITY.name}
    expected = twist if env == "metaworld" else joints
    assert set(subs) == expected
    try:
        @FUZZ
        @given(sequence=events(subs, METAWORLD if env == "metaworld" else KITCHEN))
        def run(sequence: list[tuple[str, Any]]) -> None:
            feed(subs, sequence)
            assert np.isfinite(node._env.robot_state().ee_position).all()

        run()
    finally:
        node.close()
        node.destroy_node()


def test_demo_recorder_survives_any_message(context: Context, tmp_path: Path) -> None:
    from dmil_ros.ros.demo_recorder import DemoRecorder

    node = build(DemoRecorder, context, demo_dir=str(tmp_path))
    subs = raw_callbacks(node)
    assert set(subs) == {s.name for s in itf.RECORDED_TOPICS}
    assert node._on_start(Trigger.Request(), Trigger.Response()).success
    try:
        @FUZZ
        @given(sequence=events(subs, METAWORLD))
        def run(sequence: list[tuple[str, Any]]) -> None:
            feed(subs, sequence)

        run()
        assert node._writer is not None, "recording stopped while fuzzing"
        node._on_stop(Trigger.Request(), Trigger.Response())
    finally:
        node.destroy_node()


@FUZZ
@given(text=json_text())
def test_parse_episode_info_never_raises(text: str) -> None:
    info = itf.parse_episode_info(text)
    assert info is None or (isinstance(info["episode"], int) and isinstance(info["start_ns"], int))


@pytest.mark.parametrize("text", ['{"episode": Infinity, "start_ns": 0}', '{"episode": 1, "start_ns": 1e400}',
                                  '{"episode": NaN}', "[1]", "[" * 100000])
def test_parse_episode_info_refuses_overflowing_numbers(text: str) -> None:
    assert itf.parse_episode_info(text) is None


# --- file parsers ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good_demo(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from dmil_ros.ros.mcap_io import DemoWriter

    path = tmp_path_factory.mktemp("demo") / "reach-v3" / "demo-20260101-000000-00.mcap"
    writer = DemoWriter(path, {"task": "reach-v3", "env": "metaworld"})
    for k in range(2):
        for topic, msg in {**plausible_state(METAWORLD, k), **plausible_command(METAWORLD, k)}.items():
            if topic in (*(s.name for s in itf.STATE_TOPICS), itf.TELEOP_TWIST.name, itf.TELEOP_GRIPPER.name):
                writer.write("/" + topic, msg)
    return writer.finish().read_bytes()


@FUZZ
@given(data=st.data())
def test_a_damaged_part_file_is_recovered_or_moved_aside(good_demo: bytes, tmp_path_factory: Any,
                                                         data: Any) -> None:
    """Whatever a killed recorder (or a disk) left: recover_part never raises, and what it keeps reads."""
    from dmil_ros.ros.mcap_io import read_messages, recover_part

    cut = data.draw(st.integers(0, len(good_demo)))
    noise = data.draw(st.binary(max_size=64))
    folder = tmp_path_factory.mktemp("part")
    part = folder / "demo-20260101-000000-00.mcap.part"
    part.write_bytes(good_demo[:cut] + noise)
    kept, line = recover_part(part)
    assert not part.exists() and kept.exists() and line
    if kept.name.endswith(".recovered"):
        list(read_messages(kept))  # a complete MCAP


@FUZZ
@given(text=st.one_of(st.text(max_size=200), st.sampled_from([
    "policy_node: 3", "policy_node:\n  ros__parameters: [1, 2]", "- a\n- b", "{",
    "policy_node:\n  ros__parameters:\n    rate: .nan\n    workspace_min: [a, b, c]\n    enabled: maybe",
    "/**:\n  ros__parameters:\n    x: 1",
    "? [1, 2]\n: 3", "policy_node:\n  ros__parameters:\n    ? [1]\n    : 2"])))
def test_params_file_check_never_raises(text: str, tmp_path_factory: Any) -> None:
    from dmil_ros.ros.params_file import check_params_file

    path = tmp_path_factory.mktemp("params") / "p.yaml"
    path.write_text(text)
    for node in itf.NODE_PARAMS:
        problems = check_params_file(str(path), node)
        assert all(isinstance(p, str) and p for p in problems)


def test_every_node_subscribes_through_the_guard() -> None:
    """One home for the net under callbacks: a node that calls create_subscription itself has
    callbacks that can take it down (use dmil_ros.ros.guarded.subscribe)."""
    root = Path(__file__).resolve().parents[1] / "dmil_ros" / "ros"
    direct = [p.name for p in root.glob("*.py")
              if p.name not in ("guarded.py", "testing.py") and ".create_subscription(" in p.read_text()]
    assert direct == [], f"{direct} subscribe without dmil_ros.ros.guarded.subscribe"
