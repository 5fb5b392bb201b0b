"""`dmil bringup sim|hardware [--task reach-v3 ...]`: the launch graph as plain subprocesses.

For machines without `ros2 launch` (pip-installed ROS): the same nodes, parameters and remappings as
launch/*.launch.py (both come from dmil_ros.ros.graph). Each node runs as `python -m
dmil_ros.ros.entry <node> --ros-args ...` in its own session; SIGINT/SIGTERM to bringup is forwarded as
SIGINT to every node (then SIGTERM, then SIGKILL after --shutdown-timeout). If any node exits, the
others are stopped (graph.node_exit, the launch files' policy too). Exit code: 0 after a requested
shutdown, else the first failing node's code.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

import yaml

from dmil_ros.ros import graph
from dmil_ros.ros.interfaces import ConfigError

EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dmil bringup", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    for kind in graph.KINDS:
        p = sub.add_parser(kind, help=f"the {kind} graph")
        for arg in graph.launch_args(kind):
            flag = "--" + arg.name.replace("_", "-")
            p.add_argument(flag, dest=arg.name, default=None, choices=arg.choices or None,
                           help=f"{arg.description} (default: {arg.default!r})")
        p.add_argument("--dry-run", action="store_true", help="print the node command lines and exit")
        p.add_argument("--shutdown-timeout", type=float, default=10.0, help="seconds to wait for the nodes")
    return parser


def node_commands(kind: str, values: dict[str, str], workdir: Path) -> list[tuple[str, list[str]]]:
    """(node name, argv) for every node of the graph; parameter overrides go to YAML files in workdir."""
    commands = []
    for spec in graph.build_graph(kind, values):
        overrides = workdir / f"{spec.name}.overrides.yaml"
        overrides.write_text(yaml.safe_dump({spec.name: {"ros__parameters": spec.parameters}}))
        commands.append((spec.name, [*spec.command(sys.executable), *graph.ros_args(spec, overrides)]))
    return commands


class _Stop:
    """Set by SIGINT/SIGTERM; a second signal means 'kill now'."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        self.count += 1


def _shutdown(procs: list[tuple[str, subprocess.Popen]], timeout: float, stop: _Stop) -> None:
    """SIGINT every node (rclpy shuts down cleanly), then SIGTERM, then SIGKILL the stragglers."""
    for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
        alive = [(n, p) for n, p in procs if p.poll() is None]
        if not alive:
            return
        if sig != signal.SIGINT:
            names = ", ".join(n for n, _ in alive)
            print(f"[bringup] {names} still running; sending {sig.name}", file=sys.stderr)
        for _, p in alive:
            try:
                p.send_signal(sig)
            except ProcessLookupError:
                pass
        deadline, seen = time.monotonic() + wait, stop.count
        while time.monotonic() < deadline and any(p.poll() is None for _, p in alive):
            if stop.count > seen:
                break  # a second Ctrl-C: escalate now
            time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    values = {a.name: getattr(args, a.name) for a in graph.launch_args(args.kind)
              if getattr(args, a.name) is not None}
    with tempfile.TemporaryDirectory(prefix="dmil_bringup_") as tmp:
        try:
            commands = node_commands(args.kind, values, Path(tmp))
        except ConfigError as e:
            print(f"[bringup] {e}", file=sys.stderr)
            return EXIT_CONFIG
        if args.dry_run:
            for name, cmd in commands:
                print(f"{name}: {shlex.join(cmd)}")
                print((Path(tmp) / f"{name}.overrides.yaml").read_text())
            return 0
        stop = _Stop()
        previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
        procs: list[tuple[str, subprocess.Popen]] = []
        code = 0
        try:
            for name, cmd in commands:
                print(f"[bringup] starting {name}", file=sys.stderr)
                procs.append((name, subprocess.Popen(cmd, start_new_session=True)))
            while stop.count == 0:
                ended = [(n, p.returncode) for n, p in procs if p.poll() is not None]
                if ended:
                    outcome = graph.node_exit(*ended[0])  # the same policy as the launch files
                    print(f"[bringup] {outcome.reason}", file=sys.stderr)
                    code = outcome.exit_code
                    break
                time.sleep(0.1)
            if stop.count:
                print("[bringup] shutting down", file=sys.stderr)
        finally:
            _shutdown(procs, args.shutdown_timeout, stop)
            for s, handler in previous.items():
                signal.signal(s, handler)
        failed = [(n, p.returncode) for n, p in procs if p.returncode not in (0, None, -signal.SIGINT)]
        if stop.count and failed and code == 0:
            print(f"[bringup] nodes exited uncleanly: {failed}", file=sys.stderr)
            code = 1
        return code


if __name__ == "__main__":
    raise SystemExit(main())
