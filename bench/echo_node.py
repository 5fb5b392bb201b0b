"""The middleware floor for bench/control_latency.py: a node that only answers each state with a twist.

Same topics, QoS, executor, state assembly (StateSync) and GC treatment as policy_node, no policy:
once the four state parts of a new stamp are in, it publishes an empty TwistStamped with that stamp.
`control_latency.py --echo` measures it in place of policy_node, which separates what rclpy + Fast DDS
cost on this machine from what the policy adds.

    python bench/echo_node.py --ros-args   # started by control_latency.py --echo
"""

from __future__ import annotations

import gc
import sys

import rclpy
from geometry_msgs.msg import TwistStamped
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from dmil_ros.ros import interfaces as itf
from dmil_ros.ros.realtime import set_realtime_priority
from dmil_ros.ros.state_sync import StateSync


def main() -> int:
    rclpy.init(args=sys.argv)
    node = Node("policy_node")  # parameter services as on the real node: they are in its wait set too
    pub = node.create_publisher(TwistStamped, itf.POLICY_TWIST.name, itf.POLICY_TWIST.qos)
    sync = StateSync()  # as policy_node with trigger=state: act once per new complete stamp
    last_acted: int | None = None

    def on_part(role: str, msg) -> None:
        nonlocal last_acted
        sync.update(role, msg, 0.0)
        state = sync.exact()
        if state is not None and state.stamp_ns != last_acted:
            last_acted = state.stamp_ns
            out = TwistStamped()
            out.header.stamp = msg.header.stamp
            pub.publish(out)

    itf.subscribe_robot_state(node, "reliable", on_part, lambda _m: None, lambda _m: None)
    priority = node.declare_parameter("realtime_priority", 0).value  # as policy_node's parameter
    problem = set_realtime_priority(priority)
    if problem:
        node.get_logger().warning(f"realtime_priority {priority} not set: {problem}")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    gc.collect()
    gc.freeze()
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
