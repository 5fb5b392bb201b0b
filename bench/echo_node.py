"""The middleware floor for bench/control_latency.py: a node that only answers each state with a twist.

Same topics, QoS, executor and GC treatment as policy_node, no policy: it takes the four state parts
and, once joint_states, ee_pose and object_poses of one stamp are in, publishes an empty TwistStamped
with that stamp. `control_latency.py --echo` measures it in place of policy_node, which separates what
rclpy + Fast DDS cost on this machine from what the policy adds.

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
from dmil_ros.ros.observation import stamp_ns


def main() -> int:
    rclpy.init(args=sys.argv)
    node = Node("policy_node")  # parameter services as on the real node: they are in its wait set too
    pub = node.create_publisher(TwistStamped, itf.POLICY_TWIST.name, itf.POLICY_TWIST.qos)
    stamps: dict[str, int] = {}
    synced = {spec.name for spec in (itf.JOINT_STATES, itf.EE_POSE, itf.OBJECT_POSES)}

    def on_part(role: str, msg) -> None:
        stamps[role] = stamp_ns(msg.header.stamp)
        if role in synced and len({stamps.get(r) for r in synced}) == 1:
            out = TwistStamped()
            out.header.stamp = msg.header.stamp
            pub.publish(out)

    itf.subscribe_robot_state(node, "reliable", on_part, lambda _m: None, lambda _m: None)
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
