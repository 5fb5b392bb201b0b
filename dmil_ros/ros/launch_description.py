"""The launch_ros form of a graph from `graph.py`: what launch/*.launch.py return.

`launch`/`launch_ros` are imported inside the function: they exist on full ROS 2 installs only, and
nothing else in the package needs them.
"""

from __future__ import annotations

from typing import Any

from dmil_ros.ros import graph


def on_node_exit(name: str) -> Any:
    """The `on_exit` of node `name` (ExecuteProcess calls it with the ProcessExited event and the launch
    context): graph.node_exit's policy. A clean exit emits Shutdown; a failure raises NodeFailed, which
    `ros2 launch` logs ("Caught exception in launch: <reason>") before it shuts everything down and
    exits 1 (a Shutdown action alone would end the launch with 0). Nothing happens for the exits of a
    shutdown already under way (Ctrl-C)."""
    from launch.actions import Shutdown

    def handle(event: Any, context: Any) -> Any:
        if context.is_shutdown:
            return None
        outcome = graph.node_exit(name, event.returncode)
        if outcome.exit_code:
            raise graph.NodeFailed(outcome.reason)
        return [Shutdown(reason=outcome.reason)]

    return handle


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
                on_exit=on_node_exit(spec.name),
            )
            for spec in graph.build_graph(kind, values)
        ]

    arguments = [
        DeclareLaunchArgument(a.name, default_value=a.default, description=a.description,
                              **({"choices": list(a.choices)} if a.choices else {}))
        for a in graph.launch_args(kind)
    ]  # fmt: skip
    return LaunchDescription([*arguments, OpaqueFunction(function=nodes)])
