"""Robot stand-in: a simulated robot cell (MoveIt Servo, driver, perception, gripper on a Meta-World
scene) for the hardware graph, with the scripted expert as operator (teleop:=on).

    ros2 launch dmil_ros standin.launch.py task:=door-close-v3 latency:=0.05
    ros2 launch dmil_ros hardware.launch.py task:=door-close-v3 frame_id:=base \\
        gripper_joint:=right_gripper_l_finger_joint gripper_topic:=/gripper/command \\
        teleop_twist_topic:=/servo_node/delta_twist_cmds teleop_gripper_topic:=/gripper/command

The nodes, parameters and remappings come from dmil_ros.ros.graph, which `dmil bringup standin` uses too.
"""

from dmil_ros.ros.launch_description import launch_description


def generate_launch_description():
    return launch_description("standin")
