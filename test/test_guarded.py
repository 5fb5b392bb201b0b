"""dmil_ros.ros.guarded without ROS: what the net under the callbacks logs, and what it does not."""

from __future__ import annotations

from types import SimpleNamespace

from dmil_ros.ros.guarded import guard


class FakeNode:
    def __init__(self, context_ok: bool) -> None:
        self.context = SimpleNamespace(ok=lambda: context_ok)
        self.errors: list[str] = []

    def get_logger(self) -> SimpleNamespace:
        return SimpleNamespace(error=self.errors.append)


def failing(_msg: object) -> None:
    raise RuntimeError("publisher's context is invalid")


def test_a_failing_callback_is_logged_with_its_topic_while_the_node_runs() -> None:
    node = FakeNode(context_ok=True)
    guard(node, "ee_pose", failing)(object())
    assert len(node.errors) == 1 and "message on ee_pose dropped" in node.errors[0]


def test_a_failure_after_shutdown_is_the_shutdown_s_and_not_logged() -> None:
    node = FakeNode(context_ok=False)
    guard(node, "ee_pose", failing)(object())
    assert node.errors == []
