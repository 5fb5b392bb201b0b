"""The launch_ros form of a graph from `graph.py`: what launch/*.launch.py return.

`launch`/`launch_ros` are imported inside the function: they exist on full ROS 2 installs only, and
nothing else in the package needs them.
"""

from __future__ import annotations

from typing import Any

from dmil_ros.ros import graph


def launch_description(kind: str) -> Any:
    """LaunchDescription declaring `kind`'s launch arguments and starting its nodes."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    def nodes(context: Any, *args: Any, **kwargs: Any) -> list[Any]:
        # Launch arguments are only known once the launch context exists: resolve, then build the graph.
        values = {a.name: LaunchConfiguration(a.name).perform(context) for a in graph.launch_args(kind)}
        return [
            Node(
                package=spec.package,
                executable=spec.executable,
                name=spec.name,
                output="screen",
                parameters=[str(spec.params_file), spec.parameters],
                remappings=list(spec.remappings),
            )
            for spec in graph.build_graph(kind, values)
        ]

    arguments = [
        DeclareLaunchArgument(a.name, default_value=a.default, description=a.description,
                              **({"choices": list(a.choices)} if a.choices else {}))
        for a in graph.launch_args(kind)
    ]  # fmt: skip
    return LaunchDescription([*arguments, OpaqueFunction(function=nodes)])
