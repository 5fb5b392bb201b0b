"""Subscriptions whose callbacks cannot take a node down: the one way the nodes subscribe.

rclpy lets an exception escape a subscription callback out of `executor.spin()`, which ends the node.
A message is data from outside: whatever it holds, the node must go on. Every node therefore creates
its subscriptions with `subscribe`, which wraps the callback: an unexpected exception is logged with
the topic (rate-limited per topic, with a count of the suppressed ones) and the message is dropped.
Expected refusals (a bad state, a bad command) are still handled, with their reasons, by the callbacks
themselves; this is the net under them. A failure once the node's context is shut down (a callback
still running when Ctrl-C came) is the shutdown's, not the message's, and goes unlogged.
"""

from __future__ import annotations

import functools
import time
import traceback
from collections.abc import Callable
from typing import Any

LOG_PERIOD = 2.0  # s between two logged failures of one topic's callback


def guard(node: Any, topic: str, callback: Callable[..., None]) -> Callable[..., None]:
    """`callback` wrapped so that an exception is logged with `topic` instead of raised.

    The wrapper keeps the callback's signature (functools.wraps): rclpy inspects it to decide whether
    to pass the MessageInfo."""
    last_logged = -float("inf")
    suppressed = 0

    @functools.wraps(callback)
    def guarded(*args: Any) -> None:
        nonlocal last_logged, suppressed
        try:
            callback(*args)
        except Exception as e:  # noqa: BLE001 - the point: no message may end the node
            if not node.context.ok():  # shut down (Ctrl-C) while the callback ran: teardown, not a fault
                return
            now = time.monotonic()
            if now - last_logged < LOG_PERIOD:
                suppressed += 1
                return
            more = f" ({suppressed} more since the last report)" if suppressed else ""
            node.get_logger().error(
                f"message on {topic} dropped: its callback failed with {type(e).__name__}: {e}{more}; "
                f"the node keeps running\n{traceback.format_exc(limit=-3)}")
            last_logged, suppressed = now, 0

    guarded.dmil_guarded_topic = topic  # type: ignore[attr-defined]  (checked by the tests)
    return guarded


def subscribe(node: Any, msg_type: type, topic: str, callback: Callable[..., None], qos: Any,
              **kwargs: Any) -> Any:
    """node.create_subscription with the callback guarded (see the module docstring)."""
    return node.create_subscription(msg_type, topic, guard(node, topic, callback), qos, **kwargs)
