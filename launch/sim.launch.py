"""Simulated graph: sim_bridge + policy_node + demo_recorder (+ scripted_teleop).

    ros2 launch dmil_ros sim.launch.py task:=reach-v3 lock_step:=true teleop:=on checkpoint:=/path
    ros2 launch dmil_ros sim.launch.py env:=kitchen task:=microwave+kettle+top_burner+light_switch

The nodes, parameters and remappings come from dmil_ros.ros.graph, which `dmil bringup sim` uses too.
"""

from dmil_ros.ros.launch_description import launch_description


def generate_launch_description():
    return launch_description("sim")
