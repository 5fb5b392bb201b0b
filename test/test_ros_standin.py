"""The robot stand-in over DDS: what a real cell answers (Servo, driver, perception, gripper), and
the standin graph (with the hardware graph's cell arguments).

The node runs as its own process (as `dmil bringup standin` starts it) on a random domain; the test
process watches and commands it with a probe. Assertions are about order and bounds (a frame is never
delivered before its latency, a stale twist never moves the arm), not about timing on a loaded machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("metaworld")

from builtin_interfaces.msg import Time  # noqa: E402
from geometry_msgs.msg import TwistStamped  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402

from dmil_ros.ros import graph  # noqa: E402
from dmil_ros.ros import interfaces as itf  # noqa: E402
from dmil_ros.ros.observation import stamp_ns  # noqa: E402
from dmil_ros.ros.testing import Probe, interrupt, isolated_ros_env  # noqa: E402

pytestmark = pytest.mark.ros
TASK = "door-close-v3"
LATENCY = 0.08


class Standin:
    """`python -m dmil_ros.ros.robot_standin` and a probe watching its topics."""

    def __init__(self, tmp: Path) -> None:
        env = isolated_ros_env()
        self.log_path = tmp / "standin.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dmil_ros.ros.robot_standin", "--ros-args", "-p", f"task:={TASK}",
             "-p", f"latency:={LATENCY}", "-p", "driver_rate:=100.0", "-p", "seed:=7"],
            env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.probe = Probe(int(env["ROS_DOMAIN_ID"]))
        for spec in (itf.JOINT_STATES, itf.EE_POSE, itf.OBJECT_POSES, itf.GOAL, itf.STANDIN_EPISODE):
            self.probe.watch(spec)
        self.arrivals: list[tuple[int, int]] = []  # (object frame stamp, reception) [ns]
        self.probe.node.create_subscription(
            itf.OBJECT_POSES.msg_type, itf.OBJECT_POSES.name,
            lambda m: self.arrivals.append((stamp_ns(m.header.stamp), time.time_ns())), itf.OBJECT_POSES.qos)
        self.twist = self.probe.publisher(itf.SERVO_TWIST)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self) -> None:
        assert self.probe.wait_for_service(itf.STANDIN_RESET, 60.0), self.log()
        self.probe.wait_until(lambda: len(self.probe.received(itf.OBJECT_POSES)) >= 3, 30.0, "perception")
        self.probe.wait_matched(publish=(itf.SERVO_TWIST,))

    def report(self) -> dict[str, Any]:
        return json.loads(self.probe.call(itf.STANDIN_REPORT).message)

    def hand(self) -> np.ndarray:
        p = self.probe.received(itf.EE_POSE)[-1].pose.position
        return np.array([p.x, p.y, p.z])

    def send(self, vy: float, seconds: float, age: float = 0.0, frame: str = "base") -> None:
        """Twists along +y at 80 Hz for `seconds`, stamped `age` s in the past."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            msg = TwistStamped()
            msg.header.stamp = _time(time.time_ns() - int(age * 1e9))
            msg.header.frame_id = frame
            msg.twist.linear.y = vy
            self.twist.publish(msg)
            time.sleep(1 / 80)

    def settle(self, seconds: float = 0.5) -> np.ndarray:
        """The hand after `seconds` without commands (the probe has caught up with the stream)."""
        time.sleep(seconds)
        first = self.probe.received(itf.EE_POSE)[-1].header.stamp
        self.probe.wait_until(lambda: stamp_ns(self.probe.received(itf.EE_POSE)[-1].header.stamp)
                              > stamp_ns(first), 10.0, "a newer ee_pose")
        return self.hand()

    def close(self) -> int:
        self.probe.close()
        interrupt(self.proc, 20)
        self._log.close()
        return self.proc.returncode


def _time(ns: int) -> Time:
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standin]:
    s = Standin(tmp_path_factory.mktemp("standin"))
    s.wait_ready()
    yield s
    assert s.close() == 0, s.log()


def test_driver_perception_and_operator_topics(standin: Standin) -> None:
    js = standin.probe.received(itf.JOINT_STATES)[-1]
    assert list(js.name) == [*(f"right_j{i}" for i in range(7)), "right_gripper_l_finger_joint"]
    assert 0.0 < js.position[-1] <= 0.051  # finger travel [m]: the gripper starts open (20 x 0.05 = 1)
    assert standin.probe.received(itf.EE_POSE)[-1].header.frame_id == "base"
    objects = standin.probe.received(itf.OBJECT_POSES)[-1]
    assert objects.header.frame_id == "base" and len(objects.poses) == 1  # door-close observes the door
    assert standin.probe.received(itf.GOAL), "no goal from the operator side"
    # Perception frames carry their capture time and are never delivered before the latency.
    standin.probe.wait_until(lambda: len(standin.arrivals) >= 10, 10.0, "object frames")
    ages = [(received - stamp) * 1e-9 for stamp, received in standin.arrivals]
    assert min(ages) >= LATENCY - 0.002, ages
    stamps = [s for s, _ in standin.arrivals]
    assert stamps == sorted(stamps)
    # Rates from the stamps (each part is stamped when the cell produced it, whatever the delivery
    # delays on a loaded machine): the driver at driver_rate (100 Hz here), the camera at 30 Hz.
    driver = np.diff([stamp_ns(m.header.stamp) for m in standin.probe.received(itf.JOINT_STATES)[-50:]])
    assert np.median(driver) * 1e-9 == pytest.approx(1 / 100, rel=0.1), driver
    assert np.median(np.diff(stamps)) * 1e-9 == pytest.approx(1 / 30, abs=0.003), np.diff(stamps)
    info = json.loads(standin.probe.received(itf.STANDIN_EPISODE)[-1].data)
    assert info["task"] == TASK and info["seed"] == 7 + info["episode"]


def test_servo_moves_the_arm_on_fresh_twists_only_and_halts_when_they_stop(standin: Standin) -> None:
    standin.probe.call(itf.STANDIN_RESET)
    start = standin.settle(0.3)
    before = len(standin.report()["motion_commands"])
    standin.send(0.1, 0.5, age=0.3)  # stamped 300 ms ago: older than incoming_command_timeout
    stale = standin.settle()
    assert np.abs(stale - start).max() < 0.002
    report = standin.report()
    assert len(report["motion_commands"]) == before and report["servo"]["stale_cycles"] > 0
    # A frame the robot does not know: INVALID, no motion. (Stamped 80 ms ahead so that a loaded machine's
    # delivery delay cannot make it stale before Servo looks at its frame.)
    standin.send(0.1, 0.5, age=-0.08, frame="panda_link0")
    assert np.abs(standin.settle() - start).max() < 0.002
    assert standin.report()["servo"]["invalid"] > 0
    standin.send(0.1, 0.5)  # fresh, speed_units in the base frame: up to 5 cm along +y
    moved = standin.settle() - start
    # (the speed itself is checked without DDS in test_standin.py; a loaded machine delays delivery)
    assert 0.005 < moved[1] < 0.07 and np.abs(moved[[0, 2]]).max() < 0.2 * moved[1], moved
    assert len(standin.report()["motion_commands"]) > before
    resting = standin.hand()
    assert np.abs(standin.settle(0.5) - resting).max() < 0.001  # commands stopped: the arm halted


def test_state_dropout_stops_the_state_stream_and_reset_starts_a_new_episode(standin: Standin) -> None:
    episode = json.loads(standin.probe.received(itf.STANDIN_EPISODE)[-1].data)["episode"]
    res = standin.probe.call(itf.STANDIN_RESET)
    assert res.message.startswith(f"episode {episode + 1} of {TASK} started (seed {7 + episode + 1})")
    res = standin.probe.call(itf.STANDIN_DROPOUT, SetBool.Request(data=True))
    last = json.loads(res.message)["last_state_ns"]
    time.sleep(0.5)
    count = len(standin.probe.received(itf.JOINT_STATES))
    time.sleep(0.5)
    assert len(standin.probe.received(itf.JOINT_STATES)) == count  # nothing during the outage
    assert stamp_ns(standin.probe.received(itf.JOINT_STATES)[-1].header.stamp) <= last
    standin.probe.call(itf.STANDIN_DROPOUT, SetBool.Request(data=False))
    standin.probe.wait_until(lambda: len(standin.probe.received(itf.JOINT_STATES)) > count, 10.0,
                             "the state again")


# --- the standin graph and the hardware graph's cell arguments --------------------------------------
def test_standin_graph_points_the_operator_at_the_cells_command_topics() -> None:
    nodes = {n.name: n for n in graph.build_graph("standin", {"task": TASK, "latency": "0.1",
                                                              "twist_topic": "/servo/cmds"})}
    assert set(nodes) == {"robot_standin", "scripted_teleop"}
    assert nodes["robot_standin"].parameters["latency"] == 0.1
    assert nodes["robot_standin"].parameters["task"] == TASK
    assert dict(nodes["robot_standin"].remappings)[itf.SERVO_TWIST.name] == "/servo/cmds"
    operator = dict(nodes["scripted_teleop"].remappings)
    assert operator == {itf.TELEOP_TWIST.name: "/servo/cmds", itf.TELEOP_GRIPPER.name: "/gripper/command"}
    assert [n.name for n in graph.build_graph("standin", {"teleop": "off"})] == ["robot_standin"]
    with pytest.raises(itf.ConfigError, match="latency"):
        graph.build_graph("standin", {"latency": "-1"})


def test_hardware_graph_takes_the_cells_frame_and_gripper() -> None:
    plain = {n.name: n for n in graph.build_graph("hardware")}
    assert "frame_id" not in plain["policy_node"].parameters  # the params file's
    cell = {n.name: n for n in graph.build_graph("hardware", {
        "frame_id": "base", "gripper_joint": "right_gripper_l_finger_joint", "gripper_scale": "20",
        "max_linear_speed": "0.2", "action_speed": "0.2"})}
    params = cell["policy_node"].parameters
    assert params["action_speed"] == 0.2
    assert params["frame_id"] == "base" and params["gripper_scale"] == 20.0
    assert params["gripper_joint"] == "right_gripper_l_finger_joint" and params["max_linear_speed"] == 0.2
    sim = {n.name: n for n in graph.build_graph("sim", {"seed": "5", "max_episode_steps": "300"})}
    assert sim["sim_bridge"].parameters["seed"] == 5
    assert sim["sim_bridge"].parameters["max_episode_steps"] == 300


def test_the_node_refuses_bad_parameters_with_the_reason(tmp_path: Path) -> None:
    """Exit 2 with every problem listed, no traceback: a wrong type, an unknown task, a Servo
    combination MoveIt Servo would refuse too."""
    env = isolated_ros_env()
    cases = {"type": ["-p", "latency:=fast", "-p", "camera_rate:=30"],
             "task": ["-p", "task:=no-such-task-v3"],
             "servo": ["-p", "lower_singularity_threshold:=40.0",
                       "-p", "hard_stop_singularity_threshold:=30.0"]}
    runs = {name: subprocess.Popen([sys.executable, "-m", "dmil_ros.ros.robot_standin", "--ros-args", *args],
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for name, args in cases.items()}
    out = {name: proc.communicate(timeout=120)[0] for name, proc in runs.items()}
    for name, proc in runs.items():
        assert proc.returncode == 2 and "Traceback" not in out[name], (name, out[name])
        assert "refusing to start" in out[name], out[name]
    assert "latency: 'fast' must be a double" in out["type"], out["type"]
    assert "camera_rate: 30 must be a double (write 80.0, not 80)" in out["type"], out["type"]
    assert "cannot run task 'no-such-task-v3'" in out["task"], out["task"]
    assert "hard_stop_singularity_threshold must exceed lower_singularity_threshold" in out["servo"]
