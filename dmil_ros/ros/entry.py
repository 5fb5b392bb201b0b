"""The node executables' entry points (console scripts, and `python -m dmil_ros.ros.entry <node>`).

A node imports torch and a simulator before `runner.run_node` can handle Ctrl-C: seconds on a loaded
machine. A Ctrl-C in that window (`ros2 launch` or `dmil bringup` stopping the graph because another
node failed to start) ends the node quietly, as a normal shutdown does, instead of with a
KeyboardInterrupt traceback. This module imports only the standard library for that reason.
"""

from __future__ import annotations

import importlib
import signal
import sys

NODES = ("sim_bridge", "policy_node", "demo_recorder", "scripted_teleop", "robot_standin")
EXIT_OK, EXIT_CONFIG = 0, 2  # runner.EXIT_OK / EXIT_CONFIG (not imported: runner imports rclpy)


def run(node: str, argv: list[str] | None = None) -> int:
    """Import the node's module and run its `main(argv)`; `argv` excludes the program name."""
    if node not in NODES:
        print(f"unknown node {node!r}; one of: {', '.join(NODES)}", file=sys.stderr)
        return EXIT_CONFIG
    # Ctrl-C is held back during the imports and raised after them: now and then a SIGINT in the middle
    # of torch's import killed the process silently (signal default action, exit -2), as if a library
    # reset the disposition for a moment.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        try:
            module = importlib.import_module(f"{__package__}.{node}")
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # a pending Ctrl-C raises here
        return module.main(argv)
    except KeyboardInterrupt:  # stopped while starting (or while finishing): nothing to clean up
        return EXIT_OK


def sim_bridge() -> int:
    return run("sim_bridge")


def policy_node() -> int:
    return run("policy_node")


def demo_recorder() -> int:
    return run("demo_recorder")


def scripted_teleop() -> int:
    return run("scripted_teleop")


def robot_standin() -> int:
    return run("robot_standin")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(f"usage: python -m {__package__}.entry <node> [--ros-args ...]; node: {', '.join(NODES)}",
              file=sys.stderr)
        raise SystemExit(EXIT_CONFIG)
    raise SystemExit(run(sys.argv[1], sys.argv[2:]))
