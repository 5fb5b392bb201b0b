"""ROS 2 front end of dmil_ros: thin rclpy nodes around the ROS-free core.

Nodes (one per module, each with `main(argv) -> int`): sim_bridge, policy_node, demo_recorder,
scripted_teleop. `interfaces` names every topic/service/parameter, `graph` defines the node graphs
that both the launch files and `bringup` (`dmil bringup sim|hardware`, no `ros2 launch` needed) start.
Importing this package does not import rclpy; the node modules do.
"""
