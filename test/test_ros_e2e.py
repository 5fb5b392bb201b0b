"""End to end over DDS: the sim graph (via the bringup command) records a scripted demo, adapts, drives.

Real subprocesses on a random ROS_DOMAIN_ID (100..200), localhost discovery, Fast DDS; a test-side
rclpy node calls the services and reads the topics.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("metaworld")

from mcap.reader import make_reader  # noqa: E402
from mcap_ros2.decoder import DecoderFactory  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402

from dmil_ros.core.checkpoint import (
    checkpoint_present,  # noqa: E402
    save_checkpoint,  # noqa: E402
)
from dmil_ros.core.config import ModelConfig  # noqa: E402
from dmil_ros.core.hierarchy import Hierarchy  # noqa: E402
from dmil_ros.core.shipped import suite_checkpoint_dir  # noqa: E402
from dmil_ros.ros import interfaces as itf  # noqa: E402
from dmil_ros.ros.mcap_io import list_demos  # noqa: E402
from dmil_ros.ros.testing import Probe, interrupt, isolated_ros_env  # noqa: E402

TASK = "reach-v3"


def _info(probe: Probe) -> dict:
    msgs = probe.received(itf.EPISODE_INFO)
    return json.loads(msgs[-1].data) if msgs else {}


def _enable(probe: Probe, spec: itf.ServiceSpec, on: bool) -> None:
    res = probe.call(spec, SetBool.Request(data=on))
    assert res.success and "(command_subscribers)" not in res.message, res.message  # teleop: reaches all


class Graph:
    """`python -m dmil_ros.ros.bringup sim ...` plus a probe on the same domain."""

    def __init__(self, tmp: Path, checkpoint: Path, *extra: str) -> None:
        env = isolated_ros_env()
        self.log_path = tmp / "bringup.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        cmd = [sys.executable, "-m", "dmil_ros.ros.bringup", "sim", "--task", TASK,
               "--checkpoint", str(checkpoint), "--demo-dir", str(tmp / "demos"), "--lock-step", "true",
               "--teleop", "on", *extra]
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.probe = Probe(int(env["ROS_DOMAIN_ID"]))
        for spec in (itf.EPISODE_INFO, itf.TASK_SUCCESS, itf.POLICY_STATUS, itf.SKILL):
            self.probe.watch(spec)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 45.0) -> None:
        """All services up and every publisher/subscriber pair of the graph discovered."""
        deadline = time.monotonic() + timeout
        for spec in (itf.SIM_RESET, itf.RECORD_START, itf.ADAPT, itf.POLICY_ENABLE, itf.TELEOP_ENABLE):
            left = max(deadline - time.monotonic(), 0.1)
            assert self.probe.wait_for_service(spec, left), f"{spec.name} never came up:\n{self.log()}"
        node = self.probe.node
        wanted = {  # topic: (publishers, subscribers) of the graph itself
            "/joint_states": (1, 3), "/teleop/twist_cmd": (1, 2), "/dmil/policy/twist_cmd": (1, 1),
        }
        self.probe.wait_until(lambda: all(
            node.count_publishers(t) >= p and node.count_subscribers(t) >= s for t, (p, s) in wanted.items()),
            max(deadline - time.monotonic(), 0.1), "the graph's topics to connect")

    def start_recording(self, timeout: float = 30.0) -> None:
        self.probe.start_recording(timeout, self.log)

    def run_episode(self, source: itf.ServiceSpec, timeout: float) -> dict:
        """Reset, let `source` drive until the episode is over, stop it; the final episode info."""
        episode = self.probe.call(itf.SIM_RESET).message  # "episode N of <task> started (seed S)"
        number = int(re.match(r"episode (\d+) ", episode).group(1))
        _enable(self.probe, source, True)
        info = self.probe.wait_until(
            lambda: (i := _info(self.probe)).get("done") and i.get("episode") == number and i,
            timeout, f"the end of {episode}")
        _enable(self.probe, source, False)
        return info

    def close(self) -> int:
        self.probe.close()
        interrupt(self.proc, 20)
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def checkpoint_dir(tmp_path: Path) -> Path:
    """A small random checkpoint: exercises the plumbing, not the skill."""
    return save_checkpoint(Hierarchy.initialize(ModelConfig(39, 4, 3, (64, 64)), seed=0), tmp_path / "ckpt")


@pytest.fixture
def graph_factory(tmp_path: Path) -> Iterator:
    graphs: list[Graph] = []

    def make(checkpoint: Path) -> Graph:
        graphs.append(Graph(tmp_path, checkpoint))
        return graphs[-1]

    yield make
    for g in graphs:
        g.close()


def record_adapt_drive(g: Graph, tmp_path: Path) -> tuple[dict, str, bool]:
    g.wait_ready()
    # 1. record the scripted expert solving one episode
    g.start_recording()
    demo_info = g.run_episode(itf.TELEOP_ENABLE, timeout=30.0)
    assert demo_info["success"], f"the scripted expert failed {TASK}: {demo_info}\n{g.log()}"
    res = g.probe.call(itf.RECORD_STOP)
    assert res.success, res.message

    # 2. the demo is a finished MCAP file that plain mcap_ros2 decoding reads back
    demos = list_demos(tmp_path / "demos", TASK)
    assert len(demos) == 1
    counts: dict[str, int] = {}
    with open(demos[0], "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        for _s, channel, _m, msg in reader.iter_decoded_messages():
            counts[channel.topic] = counts.get(channel.topic, 0) + 1
            if channel.topic == "/teleop/twist_cmd":
                assert abs(msg.twist.linear.x) <= 0.81
    assert counts["/teleop/twist_cmd"] >= demo_info["step"]
    for topic in ("/joint_states", "/ee_pose", "/object_poses", "/goal", "/teleop/gripper_cmd"):
        assert counts.get(topic, 0) >= demo_info["step"], (topic, counts)

    # 3. adapt through the user-facing service
    res = g.probe.call(itf.ADAPT, timeout=60.0)
    assert res.success, res.message
    assert "accepted" in res.message and "loss" in res.message and "1 demo" in res.message, res.message
    before, after = (float(x) for x in res.message.split("loss ")[1].split(",")[0].split(" -> "))
    assert after < before, res.message

    # 4. the adapted policy drives an episode to its end
    g.probe.clear(itf.SKILL)
    final = g.run_episode(itf.POLICY_ENABLE, timeout=60.0)
    success = bool(g.probe.received(itf.TASK_SUCCESS)[-1].data)
    assert final["step"] > 0 and len(g.probe.received(itf.SKILL)) >= final["step"]
    return final, res.message, success


@pytest.mark.ros
def test_sim_graph_record_adapt_drive(graph_factory, checkpoint_dir: Path, tmp_path: Path) -> None:
    t0 = time.monotonic()
    g = graph_factory(checkpoint_dir)
    final, message, _success = record_adapt_drive(g, tmp_path)
    print(f"adapt: {message}\npolicy episode: {final}\n{time.monotonic() - t0:.1f} s")
    assert g.close() == 0, g.log()  # SIGINT forwarded, every node exited cleanly


@pytest.mark.ros
def test_shipped_checkpoint_solves_reach(graph_factory, tmp_path: Path) -> None:
    """The path with a prior that solves reach from one demo reliably: the ML10 hierarchy (the default
    ML45 one adapts better to unseen tasks but reaches 0.8 on reach-v3 at one shot: a coin this test
    would flip)."""
    ml10 = suite_checkpoint_dir("ml10")
    if not checkpoint_present(ml10):
        pytest.skip(f"no shipped checkpoint at {ml10} yet")
    g = graph_factory(ml10)
    final, message, success = record_adapt_drive(g, tmp_path)
    assert success and final["success"], f"adapted policy failed {TASK}: {final} ({message})"
