"""run_node: how a node process ends."""

from __future__ import annotations

import os
import random

import pytest

pytest.importorskip("rclpy")
os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(100, 200)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

import rclpy  # noqa: E402
from rclpy.node import Node  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from dmil_ros.ros.runner import EXIT_ERROR, EXIT_OK, run_node  # noqa: E402


class PublishesAfterShutdown(Node):
    """A timer that is still running when the context goes down (as on SIGINT), then publishes."""

    def __init__(self) -> None:
        super().__init__("publishes_after_shutdown")
        self.pub = self.create_publisher(String, "runner_test", 1)
        self.create_timer(0.01, self.tick)

    def tick(self) -> None:
        rclpy.shutdown()
        self.pub.publish(String(data="late"))


class BindingErrorAfterShutdown(Node):
    """What the executor raised once when SIGINT came while it took a message: the bindings' RuntimeError
    ("Unable to convert call argument '0' to Python object") on a context already shut down."""

    def __init__(self) -> None:
        super().__init__("binding_error_after_shutdown")
        self.create_timer(0.01, self.tick)

    def tick(self) -> None:
        rclpy.shutdown()
        raise RuntimeError("Unable to convert call argument '0' to Python object")


class Fails(Node):
    def __init__(self) -> None:
        super().__init__("fails")
        self.create_timer(0.01, self.tick)

    def tick(self) -> None:
        raise RuntimeError("a bug")


def test_a_publish_racing_the_shutdown_is_a_clean_exit() -> None:
    assert run_node("publishes_after_shutdown", PublishesAfterShutdown, argv=[]) == EXIT_OK


def test_any_error_once_the_context_is_shut_down_is_a_clean_exit() -> None:
    assert run_node("binding_error_after_shutdown", BindingErrorAfterShutdown, argv=[]) == EXIT_OK


def test_a_bug_in_a_callback_is_still_an_error() -> None:
    assert run_node("fails", Fails, argv=[]) == EXIT_ERROR
