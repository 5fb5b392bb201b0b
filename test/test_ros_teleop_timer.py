"""The scripted operator against a robot: robot topics are stamped independently (driver, camera), so
it acts on a timer on the latest parts, stamps its commands with the clock and limits their speed."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("metaworld")

from builtin_interfaces.msg import Time  # noqa: E402

from dmil_ros.ros import interfaces as itf  # noqa: E402
from dmil_ros.ros.observation import stamp_ns  # noqa: E402
from dmil_ros.ros.testing import InProcessGraph  # noqa: E402

pytestmark = pytest.mark.ros


def _time(ns: int) -> Time:
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def test_scripted_operator_in_timer_mode_acts_on_independently_stamped_parts() -> None:
    from dmil_ros.envs.metaworld_env import MetaWorldEnv
    from dmil_ros.ros.embodiment import METAWORLD
    from dmil_ros.ros.scripted_teleop import ScriptedTeleop

    env = MetaWorldEnv("reach-v3", 50)
    env.reset(0)
    state = env.robot_state()
    g = InProcessGraph()
    try:
        g.probe.watch(itf.TELEOP_TWIST)
        teleop = g.add(ScriptedTeleop, task="reach-v3", trigger="timer", rate=50.0, state_timeout=0.3,
              max_linear_speed=0.25, command_subscribers=0, enabled=True, gripper_joint="g")
        pubs = {spec.name: g.probe.publisher(spec) for spec in itf.STATE_TOPICS}
        g.probe.wait_matched(publish=tuple(itf.STATE_TOPICS), watch=(itf.TELEOP_TWIST,), nodes=(teleop,))

        def publish_state() -> None:
            now = time.time_ns()
            js, ee, objs, goal = METAWORLD.state_to_msgs(state, _time(now), "base", "g")
            objs.header.stamp = _time(now - 50_000_000)  # perception: its own, older stamp
            for spec, msg in zip(itf.STATE_TOPICS, (js, ee, objs, goal)):
                pubs[spec.name].publish(msg)

        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            publish_state()
            time.sleep(0.01)
        twists = g.probe.received(itf.TELEOP_TWIST)
        assert len(twists) >= 5, "the operator never acted on parts with different stamps"
        now = time.time_ns()
        for t in twists:
            v = np.array([t.twist.linear.x, t.twist.linear.y, t.twist.linear.z])
            assert np.abs(v).max() <= 0.25 + 1e-9  # (the policy's clamp: per axis, or the norm)
            assert 0 <= now - stamp_ns(t.header.stamp) < 5e9  # stamped with the clock, not a state
        assert max(np.linalg.norm([t.twist.linear.x, t.twist.linear.y, t.twist.linear.z])
                   for t in twists) > 0.1  # reach-v3's expert does move
        # No fresh state: the operator falls silent (the robot's Servo halts). Its state_timeout runs
        # from when it took the last part; a loaded machine may take that late, so the bound is generous.
        stopped = time.time_ns()
        time.sleep(1.5)
        count = len(g.probe.received(itf.TELEOP_TWIST))
        time.sleep(0.5)
        late = g.probe.received(itf.TELEOP_TWIST)
        assert len(late) == count
        assert max(stamp_ns(t.header.stamp) for t in late) < stopped + 1e9
    finally:
        g.close()
        env.close()


def test_scripted_operator_asks_for_its_realtime_priority(monkeypatch: pytest.MonkeyPatch) -> None:
    from dmil_ros.ros import scripted_teleop

    asked: list[int] = []
    monkeypatch.setattr(scripted_teleop, "set_realtime_priority", lambda p: asked.append(p) or "not allowed")
    g = InProcessGraph()
    try:
        g.add(scripted_teleop.ScriptedTeleop, task="reach-v3", trigger="timer", realtime_priority=7)
        g.probe.wait_until(lambda: g.logged("realtime_priority not set: not allowed"), 10.0, "the warning")
    finally:
        g.close()
    assert asked == [7]
