"""`dmil bringup` runs the graph as subprocesses: signals are forwarded, failures stop the graph, and
no node outlives it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy")

from dmil_ros.core.checkpoint import save_checkpoint  # noqa: E402
from dmil_ros.core.config import ModelConfig  # noqa: E402
from dmil_ros.core.hierarchy import Hierarchy  # noqa: E402
from dmil_ros.ros import interfaces as itf  # noqa: E402
from dmil_ros.ros.testing import Probe, isolated_ros_env  # noqa: E402

pytestmark = pytest.mark.ros


def marked_processes(mark: str) -> list[int]:
    """PIDs whose environment carries DMIL_TEST_MARK=mark (inherited by every node bringup starts)."""
    needle = f"DMIL_TEST_MARK={mark}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if needle in (proc / "environ").read_bytes().split(b"\0"):
                    pids.append(int(proc.name))
            except OSError:
                pass
    return pids


def node_processes(mark: str) -> list[int]:
    """The marked processes that are bringup or a node: not the adaptation worker a node prestarts
    (multiprocessing spawn and its resource tracker), which comes a few seconds after its node."""
    nodes = []
    for pid in marked_processes(mark):
        try:
            if b"multiprocessing" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                nodes.append(pid)
        except OSError:
            pass
    return nodes


def bringup(kind: str, tmp_path: Path, *args: str) -> tuple[subprocess.Popen, dict[str, str]]:
    env = isolated_ros_env()
    env["DMIL_TEST_MARK"] = str(tmp_path)
    cmd = [sys.executable, "-m", "dmil_ros.ros.bringup", kind, "--demo-dir", str(tmp_path / "demos"), *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), env


def stop_graph(proc: subprocess.Popen, mark: str) -> None:
    """After a failed test: SIGTERM (bringup stops its nodes), then SIGKILL everything marked. Killing
    bringup alone is not enough: its nodes (own sessions) hold its stdout, so communicate() would hang.
    The graph's log is printed: pytest shows it with the failure."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            print(proc.communicate(timeout=30)[0])
            return
        except subprocess.TimeoutExpired:
            pass
    for pid in marked_processes(mark):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    print(proc.communicate(timeout=30)[0])


def test_bringup_forwards_sigterm_and_exits_cleanly(tmp_path: Path) -> None:
    """(SIGINT is covered by the end-to-end test, which stops its graph with Ctrl-C's signal.)"""
    ckpt = save_checkpoint(Hierarchy.initialize(ModelConfig(39, 4, 3, (16,))), tmp_path / "ckpt")
    proc, env = bringup("hardware", tmp_path, "--checkpoint", str(ckpt))
    try:
        probe = Probe(int(env["ROS_DOMAIN_ID"]))
        try:
            for spec in (itf.POLICY_ENABLE, itf.RECORD_START):
                assert probe.wait_for_service(spec, 45), f"{spec.name} never came up"
        finally:
            probe.close()
        assert len(marked_processes(str(tmp_path))) == 3  # bringup and its two nodes
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        stop_graph(proc, str(tmp_path))
    assert proc.returncode == 0, out
    assert "shutting down" in out and "Traceback" not in out
    time.sleep(0.2)
    assert marked_processes(str(tmp_path)) == [], "a node outlived bringup"


def test_bringup_stops_the_graph_when_a_node_fails(tmp_path: Path) -> None:
    proc, _ = bringup("hardware", tmp_path, "--checkpoint", str(tmp_path / "missing"))
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2, out
    assert "policy_node exited with code 2" in out and "does not exist" in out
    assert marked_processes(str(tmp_path)) == []


def test_bringup_sim_with_an_unknown_task_exits_nonzero_within_seconds(tmp_path: Path) -> None:
    """The nodes that refuse the task exit 2; the graph (recorder included) must not stay up."""
    started = time.monotonic()
    proc, _ = bringup("sim", tmp_path, "--task", "no-such-task-v3")
    out, _ = proc.communicate(timeout=120)
    took = time.monotonic() - started
    assert proc.returncode == 2, out
    assert "exited with code 2" in out and "unknown Meta-World v3 task 'no-such-task-v3'" in out, out
    assert "Traceback" not in out
    assert took < 60, took  # node start-up (imports) on a loaded 2-core machine; ~10 s when quiet
    assert marked_processes(str(tmp_path)) == []


@pytest.mark.parametrize("after_s", [0.2, 0.6])
def test_a_node_stopped_while_it_starts_exits_quietly(after_s: float) -> None:
    """A graph stops its nodes when one fails; the others may still be importing torch and the
    simulator (seconds under load). SIGINT then must not print a KeyboardInterrupt traceback."""
    cmd = [sys.executable, "-m", "dmil_ros.ros.entry", "sim_bridge", "--ros-args", "-p", "task:=reach-v3"]
    proc = subprocess.Popen(cmd, env=isolated_ros_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    time.sleep(after_s)  # inside the imports (python + torch alone take over a second here)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in out, out


def test_live_sim_graph_survives_hostile_messages(tmp_path: Path) -> None:
    """The attacks that killed policy_node and scripted_teleop, against the graph `dmil bringup sim` runs
    (real processes, real DDS): every node stays up, the policy refuses the absurd state with a reason."""
    import numpy as np
    from builtin_interfaces.msg import Time
    from std_msgs.msg import String

    from dmil_ros.envs.base import RobotState
    from dmil_ros.ros.observation import state_to_msgs

    proc, env = bringup("sim", tmp_path, "--enable-policy", "true")
    try:
        probe = Probe(int(env["ROS_DOMAIN_ID"]))
        try:
            probe.watch(itf.POLICY_STATUS)
            for spec in (itf.POLICY_ENABLE, itf.RECORD_START, itf.TELEOP_ENABLE, itf.SIM_RESET):
                assert probe.wait_for_service(spec, 90), f"{spec.name} never came up"
            nodes = len(node_processes(str(tmp_path)))
            assert nodes == 5  # bringup and its four nodes
            probe.wait_matched(publish=(itf.EPISODE_INFO, *itf.STATE_TOPICS), watch=(itf.POLICY_STATUS,))
            for payload in ('{"episode": Infinity, "start_ns": 0}', '{"episode": 1, "start_ns": 1e400}',
                            '[1, 2]', "{"):
                probe.publisher(itf.EPISODE_INFO).publish(String(data=payload))
            state = RobotState(joint_names=tuple(f"right_j{i}" for i in range(7)) + ("r_close", "l_close"),
                               joint_positions=np.zeros(9), ee_position=np.array([1e30, 0.6, 0.2]),
                               ee_orientation=np.array([0.0, 0, 0, 1]), gripper_opening=1.0,
                               object_positions=np.array([[0.0, 0.7, 0.02]]),
                               object_orientations=np.array([[0.0, 0, 0, 1]]), goal_position=np.zeros(3))
            # the sim publishes the same topics: the absurd state goes out (fresh stamps) until refused
            def refused() -> bool:
                return any("ee_pose position lies outside the workspace" in m.data
                           for m in probe.received(itf.POLICY_STATUS))

            deadline = time.monotonic() + 30
            while not refused():
                assert time.monotonic() < deadline, "no refusal within 30 s"
                now = time.time_ns()
                msgs = state_to_msgs(state, Time(sec=now // 10**9, nanosec=now % 10**9), "world",
                                     "gripper_opening")
                for spec, msg in zip(itf.STATE_TOPICS, msgs, strict=True):
                    probe.publisher(spec).publish(msg)
                with contextlib.suppress(TimeoutError):
                    probe.wait_until(refused, 0.5, "the refusal")
            time.sleep(2.0)
            assert proc.poll() is None, "the graph went down"
            assert len(node_processes(str(tmp_path))) == nodes, "a node died"
            assert probe.call(itf.SIM_RESET).success  # and it still serves
        finally:
            probe.close()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        stop_graph(proc, str(tmp_path))
    assert proc.returncode == 0, out
    assert "Traceback" not in out and "dropped: its callback failed" not in out, out
