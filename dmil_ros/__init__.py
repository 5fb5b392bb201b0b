"""dmil_ros: Dual Meta Imitation Learning for robot arms, with a ROS 2 front end.

`dmil_ros.core`, `dmil_ros.envs` and `dmil_ros.data` are ROS-free (torch/numpy only);
`dmil_ros.ros` holds the thin rclpy adapters.
"""

__version__ = "0.1.0"
