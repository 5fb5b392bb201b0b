"""Robot graph: policy_node + demo_recorder against the robot's topics and MoveIt Servo.

    ros2 launch dmil_ros hardware.launch.py task:=pick-place-v3 twist_topic:=/servo_node/delta_twist_cmds \
        joint_states_topic:=/joint_states ee_pose_topic:=/ee_pose object_poses_topic:=/perception/objects

The nodes, parameters and remappings come from dmil_ros.ros.graph, which `dmil bringup hardware` uses too.
"""

from dmil_ros.ros.launch_description import launch_description


def generate_launch_description():
    return launch_description("hardware")
