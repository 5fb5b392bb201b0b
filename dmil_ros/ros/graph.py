"""The node graphs, defined once: which executables, parameters and remappings make 'sim' and 'hardware'.

Both launch files (launch/*.launch.py, through launch_ros) and `dmil bringup` (plain subprocesses,
no `ros2 launch` needed) turn `build_graph(kind, args)` into running nodes, so they cannot drift.

sim:      sim_bridge + policy_node + demo_recorder (+ scripted_teleop when teleop=on)
hardware: policy_node + demo_recorder; the policy's twist goes to `twist_topic` (e.g. MoveIt Servo's
          /servo_node/delta_twist_cmds; env=kitchen: its joint-velocity JointState goes to
          `joint_velocity_topic`), the state comes from the robot's topics, the recorder records the
          operator's device topics.
standin:  the robot cell the hardware graph drives, simulated: robot_standin (MoveIt Servo, driver,
          perception, gripper on a Meta-World scene) + scripted_teleop as the operator (teleop=on),
          whose commands go where a device's would: to the cell's Servo and gripper topics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dmil_ros.core import shipped
from dmil_ros.ros import interfaces as itf

PACKAGE = "dmil_ros"
KINDS = ("sim", "hardware", "standin")


@dataclass(frozen=True)
class LaunchArg:
    name: str
    default: str
    description: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeSpec:
    executable: str  # console script in lib/dmil_ros, and `python -m dmil_ros.ros.entry <executable>`
    name: str
    params_file: Path
    parameters: dict[str, Any] = field(default_factory=dict)  # typed overrides of the params file
    remappings: tuple[tuple[str, str], ...] = ()
    package: str = PACKAGE

    def command(self, python: str) -> list[str]:
        """The node's command line without `ros2 run` (its ROS arguments follow)."""
        return [python, "-m", f"{PACKAGE}.ros.entry", self.executable]


class NodeFailed(RuntimeError):
    """A node of the graph exited with an error: the graph ends with a non-zero exit code."""


@dataclass(frozen=True)
class NodeExit:
    """What the graph does when one of its nodes exits on its own (not asked to by a shutdown)."""

    reason: str
    exit_code: int  # the graph's exit code: 0 for a clean exit, else non-zero


def node_exit(name: str, returncode: int) -> NodeExit:
    """The exit policy of every graph, one for the launch files and `dmil bringup`: every node is
    required, so any node that exits ends the whole graph; one that exited with an error (a node
    refusing to start exits 2 with the reason in its log) makes the graph's exit code non-zero: its
    own code, or 1 when a signal killed it."""
    if returncode == 0:
        return NodeExit(f"{name} exited; stopping the graph", 0)
    how = f"was killed by signal {-returncode}" if returncode < 0 else f"exited with code {returncode}"
    return NodeExit(f"{name} {how} (its log above says why); stopping the graph",
                    returncode if returncode > 0 else 1)


# policy_node parameters a robot cell sets for itself (hardware launch arguments; empty: config/hardware.yaml)
_ROBOT_PARAMS = ("frame_id", "gripper_joint", "gripper_scale", "max_linear_speed", "action_speed",
                 "orientation_hold_gain")

_COMMON_ARGS = (
    LaunchArg("env", "metaworld", "environment family the policy was trained in (kitchen: Franka Kitchen, "
              "joint-velocity commands)", itf.ENV_FAMILIES),
    LaunchArg("task", "", "task to run / adapt to (kitchen: sub-tasks joined by '+'; empty: "
              + ", ".join(f"{e} {t}" for e, t in itf.DEFAULT_TASKS.items()) + ")"),
    LaunchArg("checkpoint", "", "policy checkpoint directory (empty: the shipped metaworld_ml45, or "
              "kitchen/no_top_burner for env:=kitchen)"),
    LaunchArg("demo_dir", itf.DEFAULT_DEMO_DIR, "where demos are recorded, one sub-directory per task"),
    LaunchArg("enable_policy", "false", "let the policy drive from the start", ("true", "false")),
)
LAUNCH_ARGS: dict[str, tuple[LaunchArg, ...]] = {
    "sim": (
        *_COMMON_ARGS,
        LaunchArg("rate", "80.0", "sim real-time step rate and policy watchdog rate [Hz]"),
        LaunchArg("lock_step", "true", "one physics step per command (reproducible)", ("true", "false")),
        LaunchArg("teleop", "on", "run the scripted expert as operator (enable it: dmil/teleop/enable)",
                  ("on", "off")),
        LaunchArg("seed", "", "episode i is reset with seed + i (empty: the params file's)"),
        LaunchArg("max_episode_steps", "", "episode horizon in steps (empty: the params file's; the DMIL "
                  "evaluation protocol uses 300)"),
    ),
    "hardware": (
        *_COMMON_ARGS,
        LaunchArg("rate", "25.0", "policy control rate [Hz]; keep it 100 x action_speed [m/s] (the sim's "
                  "80 Hz x 0.25 / 0.8), so that one step moves the hand as far as one sim step"),
        LaunchArg("twist_topic", "/servo_node/delta_twist_cmds", "where the policy's TwistStamped goes"),
        LaunchArg("gripper_topic", "/" + itf.POLICY_GRIPPER.name, "where the policy's gripper command goes"),
        LaunchArg("joint_states_topic", "/joint_states", "robot joint states"),
        LaunchArg("ee_pose_topic", "/" + itf.EE_POSE.name, "end-effector PoseStamped"),
        LaunchArg("object_poses_topic", "/" + itf.OBJECT_POSES.name, "object PoseArray (perception)"),
        LaunchArg("goal_topic", "/" + itf.GOAL.name, "goal PointStamped"),
        LaunchArg("teleop_twist_topic", "/" + itf.TELEOP_TWIST.name, "operator device twist (recorded)"),
        LaunchArg("teleop_gripper_topic", "/" + itf.TELEOP_GRIPPER.name,
                  "operator gripper command (recorded)"),
        LaunchArg("joint_velocity_topic", "/" + itf.POLICY_JOINT_VELOCITY.name,
                  "env:=kitchen: where the policy's joint-velocity JointState goes"),
        LaunchArg("teleop_joint_velocity_topic", "/" + itf.TELEOP_JOINT_VELOCITY.name,
                  "env:=kitchen: operator joint-velocity JointState (recorded)"),
        *(LaunchArg(name, "", f"policy_node's {name} (empty: the params file's)")
          for name in _ROBOT_PARAMS),
    ),
    "standin": (
        LaunchArg("task", "", f"Meta-World task of the scene (empty: {itf.DEFAULT_TASKS['metaworld']})"),
        LaunchArg("seed", "0", "episode i of the scene uses seed + i (as the sim graph)"),
        LaunchArg("latency", "0.05", "perception latency [s]"),
        LaunchArg("position_noise", "0.002", "perception noise, standard deviation per axis [m]"),
        LaunchArg("camera_rate", "30.0", "perception rate [Hz]"),
        LaunchArg("driver_rate", "500.0", "joint_states / ee_pose rate [Hz]"),
        LaunchArg("twist_topic", "/" + itf.SERVO_TWIST.name, "the cell's Servo input (TwistStamped)"),
        LaunchArg("gripper_topic", "/" + itf.GRIPPER_COMMAND.name, "the cell's gripper input (Float64)"),
        LaunchArg("teleop", "on", "run the scripted expert as operator (enable it: dmil/teleop/enable)",
                  ("on", "off")),
        LaunchArg("teleop_rate", "", "the scripted operator's command rate [Hz] (empty: the params file's)"),
    ),
}


def launch_args(kind: str) -> tuple[LaunchArg, ...]:
    if kind not in LAUNCH_ARGS:
        raise itf.ConfigError(f"unknown graph {kind!r}; choose one of {', '.join(KINDS)}")
    return LAUNCH_ARGS[kind]


def launch_default(kind: str, name: str) -> str:
    """The default value of graph `kind`'s launch argument `name`."""
    return next(a.default for a in launch_args(kind) if a.name == name)


def config_file(kind: str) -> Path:
    """config/<kind>.yaml as shipped (core/shipped.py: the source checkout, else the installed share)."""
    return shipped.shipped_config(f"{kind}.yaml")


def _values(kind: str, given: Mapping[str, str]) -> dict[str, str]:
    known = {a.name: a for a in launch_args(kind)}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise itf.ConfigError(f"unknown {kind} argument(s) {', '.join(unknown)}; known: {', '.join(known)}")
    values = {name: str(given.get(name, a.default)) for name, a in known.items()}
    for name, value in values.items():
        if known[name].choices and value not in known[name].choices:
            raise itf.ConfigError(f"{name}:={value} is not one of {', '.join(known[name].choices)}")
    values["task"] = values["task"] or itf.DEFAULT_TASKS[values.get("env", "metaworld")]
    return values


def _params(node: str, values: Mapping[str, str], names: Mapping[str, str]) -> dict[str, Any]:
    """Typed parameter overrides for `node`: parameter name -> launch argument name."""
    return {p: itf.coerce(itf.param_spec(node, p), values[a], arg=a) for p, a in names.items()}


def _remaps(pairs: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((src, dst) for src, dst in pairs.items() if dst and dst.lstrip("/") != src)


def build_graph(kind: str, given: Mapping[str, str] | None = None) -> list[NodeSpec]:
    """The nodes of graph `kind` for the launch arguments `given` (strings, as from a launch file)."""
    values = _values(kind, given or {})
    cfg = config_file(kind)
    if kind == "standin":
        return _standin_nodes(values, cfg)
    common = {"env": "env", "task": "task"}
    policy = NodeSpec("policy_node", "policy_node", cfg, _params("policy_node", values, {
        **common, "checkpoint": "checkpoint", "rate": "rate", "demo_dir": "demo_dir",
        "enabled": "enable_policy"}))
    recorder = NodeSpec("demo_recorder", "demo_recorder", cfg,
                        _params("demo_recorder", values, {**common, "demo_dir": "demo_dir"}))
    if kind == "sim":
        nodes = [
            NodeSpec("sim_bridge", "sim_bridge", cfg, _params("sim_bridge", values, {
                **common, "rate": "rate", "lock_step": "lock_step",
                **{p: p for p in ("seed", "max_episode_steps") if values[p]}})),
            policy,
            recorder,
        ]
        if values["teleop"] == "on":
            nodes.append(NodeSpec("scripted_teleop", "scripted_teleop", cfg,
                                  _params("scripted_teleop", values, common)))
        return nodes
    state = {
        itf.JOINT_STATES.name: values["joint_states_topic"],
        itf.EE_POSE.name: values["ee_pose_topic"],
        itf.OBJECT_POSES.name: values["object_poses_topic"],
        itf.GOAL.name: values["goal_topic"],
    }
    policy_remaps = _remaps({**state, itf.POLICY_TWIST.name: values["twist_topic"],
                             itf.POLICY_GRIPPER.name: values["gripper_topic"],
                             itf.POLICY_JOINT_VELOCITY.name: values["joint_velocity_topic"]})
    recorder_remaps = _remaps({**state, itf.TELEOP_TWIST.name: values["teleop_twist_topic"],
                               itf.TELEOP_GRIPPER.name: values["teleop_gripper_topic"],
                               itf.TELEOP_JOINT_VELOCITY.name: values["teleop_joint_velocity_topic"]})
    robot = _params("policy_node", values, {p: p for p in _ROBOT_PARAMS if values[p]})
    return [
        NodeSpec(policy.executable, policy.name, cfg, {**policy.parameters, **robot}, policy_remaps),
        NodeSpec(recorder.executable, recorder.name, cfg, recorder.parameters, recorder_remaps),
    ]


def _standin_nodes(values: Mapping[str, str], cfg: Path) -> list[NodeSpec]:
    """robot_standin (+ the scripted operator, commanding the cell's Servo and gripper topics)."""
    standin = NodeSpec("robot_standin", "robot_standin", cfg, _params("robot_standin", values, {
        name: name for name in ("task", "seed", "latency", "position_noise", "camera_rate", "driver_rate")}),
        _remaps({itf.SERVO_TWIST.name: values["twist_topic"],
                 itf.GRIPPER_COMMAND.name: values["gripper_topic"]}))
    if values["teleop"] != "on":
        return [standin]
    rate = {"rate": "teleop_rate"} if values["teleop_rate"] else {}
    operator = NodeSpec("scripted_teleop", "scripted_teleop", cfg, _params("scripted_teleop", values, {
        "task": "task", **rate}), _remaps({itf.TELEOP_TWIST.name: values["twist_topic"],
                                           itf.TELEOP_GRIPPER.name: values["gripper_topic"]}))
    return [standin, operator]


def ros_args(spec: NodeSpec, overrides_file: Path) -> list[str]:
    """`--ros-args` for running `spec` outside launch (overrides written to `overrides_file`)."""
    args = ["--ros-args", "-r", f"__node:={spec.name}", "--params-file", str(spec.params_file),
            "--params-file", str(overrides_file)]
    for src, dst in spec.remappings:
        args += ["-r", f"{src}:={dst}"]
    return args

