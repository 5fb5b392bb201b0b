"""Simulated graph: sim_bridge + policy_node + demo_recorder (+ scripted_teleop).

    ros2 launch dmil_ros sim.launch.py task:=reach-v3 lock_step:=true teleop:=on checkpoint:=/path

The nodes, parameters and remappings come from dmil_ros.ros.graph, which `dmil bringup sim` uses too.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from dmil_ros.ros import graph

KIND = "sim"


def _nodes(context, *args, **kwargs):
    # Launch arguments are only known once the launch context exists: resolve them, then build the graph.
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in graph.launch_args(KIND)}
    return [
        Node(
            package=spec.package,
            executable=spec.executable,
            name=spec.name,
            output="screen",
            parameters=[str(spec.params_file), spec.parameters],
            remappings=list(spec.remappings),
        )
        for spec in graph.build_graph(KIND, values)
    ]


def generate_launch_description() -> LaunchDescription:
    arguments = [
        DeclareLaunchArgument(a.name, default_value=a.default, description=a.description,
                              **({"choices": list(a.choices)} if a.choices else {}))
        for a in graph.launch_args(KIND)
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_nodes)])
