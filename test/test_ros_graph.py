"""The graph defined once: launch files, bringup and the YAML configs agree with interfaces.py.

No DDS here. The launch files are executed against minimal stand-ins for `launch`/`launch_ros`
(not installable in this venv) that record what the real API would receive.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("rclpy")

from dmil_ros.ros import graph  # noqa: E402
from dmil_ros.ros import interfaces as itf  # noqa: E402
from dmil_ros.ros.bringup import node_commands  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# --- launch stand-ins -----------------------------------------------------------------------------
class _Recorder:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


class _LaunchConfiguration:
    def __init__(self, name: str) -> None:
        self.name = name

    def perform(self, context: Any) -> str:
        return context.launch_configurations[self.name]


def _fake_launch_modules() -> dict[str, types.ModuleType]:
    launch = types.ModuleType("launch")
    launch.LaunchDescription = lambda entities: list(entities)
    actions = types.ModuleType("launch.actions")
    actions.DeclareLaunchArgument = type("DeclareLaunchArgument", (_Recorder,), {})
    actions.OpaqueFunction = type("OpaqueFunction", (_Recorder,), {})
    actions.Shutdown = type("Shutdown", (_Recorder,), {})
    substitutions = types.ModuleType("launch.substitutions")
    substitutions.LaunchConfiguration = _LaunchConfiguration
    launch_ros = types.ModuleType("launch_ros")
    ros_actions = types.ModuleType("launch_ros.actions")
    ros_actions.Node = type("Node", (_Recorder,), {})
    return {"launch": launch, "launch.actions": actions, "launch.substitutions": substitutions,
            "launch_ros": launch_ros, "launch_ros.actions": ros_actions}


def _run_launch_file(name: str, overrides: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    for mod_name, mod in _fake_launch_modules().items():
        monkeypatch.setitem(sys.modules, mod_name, mod)
    spec = importlib.util.spec_from_file_location(name.replace(".", "_"), ROOT / "launch" / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    entities = module.generate_launch_description()
    declared = {e.args[0]: e.kwargs for e in entities if type(e).__name__ == "DeclareLaunchArgument"}
    opaque = [e for e in entities if type(e).__name__ == "OpaqueFunction"]
    assert len(opaque) == 1
    context = types.SimpleNamespace(launch_configurations={
        **{n: kw["default_value"] for n, kw in declared.items()}, **overrides})
    return opaque[0].kwargs["function"](context)


def test_sim_launch_file_builds_the_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = _run_launch_file("sim.launch.py", {"task": "drawer-open-v3", "lock_step": "false", "rate": "50"},
                             monkeypatch)
    by_name = {n.kwargs["name"]: n.kwargs for n in nodes}
    assert set(by_name) == {"sim_bridge", "policy_node", "demo_recorder", "scripted_teleop"}
    assert all(kw["package"] == "dmil_ros" and kw["executable"] == name for name, kw in by_name.items())
    sim_params = by_name["sim_bridge"]["parameters"]
    assert sim_params[0].endswith("sim.yaml")
    assert sim_params[1] == {"env": "metaworld", "task": "drawer-open-v3", "rate": 50.0, "lock_step": False}
    assert by_name["policy_node"]["parameters"][1]["rate"] == 50.0


def test_every_node_ends_the_launch_when_it_exits(monkeypatch: pytest.MonkeyPatch) -> None:
    """launch kept running when a node refused to start (task:=bad): each Node's on_exit now applies
    graph.node_exit. A failure raises NodeFailed (ros2 launch logs it, shuts down and exits 1), a clean
    exit emits Shutdown, and the exits of a shutdown already under way do nothing."""
    nodes = _run_launch_file("sim.launch.py", {"task": "no-such-task-v3"}, monkeypatch)
    assert len(nodes) == 4
    running, stopping = types.SimpleNamespace(is_shutdown=False), types.SimpleNamespace(is_shutdown=True)
    for node in nodes:
        on_exit = node.kwargs["on_exit"]  # ExecuteProcess: on_exit(ProcessExited event, LaunchContext)
        name = node.kwargs["name"]
        with pytest.raises(graph.NodeFailed, match=f"{name} exited with code 2"):
            on_exit(types.SimpleNamespace(returncode=2), running)
        with pytest.raises(graph.NodeFailed, match=f"{name} was killed by signal 9"):
            on_exit(types.SimpleNamespace(returncode=-9), running)
        (shutdown,) = on_exit(types.SimpleNamespace(returncode=0), running)
        assert type(shutdown).__name__ == "Shutdown" and name in shutdown.kwargs["reason"]
        assert on_exit(types.SimpleNamespace(returncode=2), stopping) is None


def test_graph_exit_policy() -> None:
    """One policy for launch and bringup: any exit ends the graph, a failure sets its exit code."""
    assert graph.node_exit("policy_node", 2).exit_code == 2
    assert graph.node_exit("policy_node", -11).exit_code == 1
    assert graph.node_exit("policy_node", 0).exit_code == 0
    assert "policy_node exited with code 2" in graph.node_exit("policy_node", 2).reason


def test_sim_launch_without_teleop(monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = _run_launch_file("sim.launch.py", {"teleop": "off"}, monkeypatch)
    assert {n.kwargs["name"] for n in nodes} == {"sim_bridge", "policy_node", "demo_recorder"}


def test_hardware_launch_remaps_twist_to_servo(monkeypatch: pytest.MonkeyPatch) -> None:
    args = {"joint_states_topic": "/franka/joint_states"}
    nodes = _run_launch_file("hardware.launch.py", args, monkeypatch)
    by_name = {n.kwargs["name"]: n.kwargs for n in nodes}
    assert set(by_name) == {"policy_node", "demo_recorder"}
    policy_remaps = dict(by_name["policy_node"]["remappings"])
    assert policy_remaps["dmil/policy/twist_cmd"] == "/servo_node/delta_twist_cmds"
    assert policy_remaps["joint_states"] == "/franka/joint_states"
    assert dict(by_name["demo_recorder"]["remappings"])["joint_states"] == "/franka/joint_states"
    assert by_name["policy_node"]["parameters"][0].endswith("hardware.yaml")


def test_standin_launch_file_builds_the_cell(monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = _run_launch_file("standin.launch.py", {"task": "drawer-open-v3", "latency": "0.1"}, monkeypatch)
    by_name = {n.kwargs["name"]: n.kwargs for n in nodes}
    assert set(by_name) == {"robot_standin", "scripted_teleop"}
    assert all(kw["executable"] == name and "on_exit" in kw for name, kw in by_name.items())
    params = by_name["robot_standin"]["parameters"]
    assert params[0].endswith("standin.yaml")
    assert params[1]["task"] == "drawer-open-v3" and params[1]["latency"] == 0.1
    assert dict(by_name["scripted_teleop"]["remappings"]) == {
        itf.TELEOP_TWIST.name: "/" + itf.SERVO_TWIST.name,
        itf.TELEOP_GRIPPER.name: "/" + itf.GRIPPER_COMMAND.name}


def test_standin_operator_rate_comes_from_the_params_file_unless_given() -> None:
    def operator(given: dict[str, str]) -> dict[str, Any]:
        return next(n.parameters for n in graph.build_graph("standin", given) if n.name == "scripted_teleop")

    assert "rate" not in operator({})
    assert operator({"teleop_rate": "25"})["rate"] == 25.0
    with pytest.raises(itf.ConfigError, match="teleop_rate"):
        graph.build_graph("standin", {"teleop_rate": "fast"})


def test_launch_arguments_declare_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    for mod_name, mod in _fake_launch_modules().items():
        monkeypatch.setitem(sys.modules, mod_name, mod)
    spec = importlib.util.spec_from_file_location("sim_launch", ROOT / "launch" / "sim.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    declared = {e.args[0]: e.kwargs for e in module.generate_launch_description()
                if type(e).__name__ == "DeclareLaunchArgument"}
    assert {"task", "checkpoint", "rate", "lock_step", "teleop", "env"} <= set(declared)
    assert declared["teleop"]["choices"] == ["on", "off"]


# --- graph / bringup ------------------------------------------------------------------------------
def test_empty_task_means_the_env_default_task() -> None:
    for env, task in itf.DEFAULT_TASKS.items():
        nodes = graph.build_graph("sim", {"env": env})
        assert {n.parameters["task"] for n in nodes} == {task}
    nodes = graph.build_graph("sim", {"env": "kitchen", "task": "microwave"})
    assert {n.parameters["task"] for n in nodes} == {"microwave"}


def test_graph_rejects_bad_arguments() -> None:
    with pytest.raises(itf.ConfigError, match="lock_step"):
        graph.build_graph("sim", {"lock_step": "maybe"})
    with pytest.raises(itf.ConfigError, match="rate"):
        graph.build_graph("sim", {"rate": "fast"})
    with pytest.raises(itf.ConfigError, match="unknown sim argument"):
        graph.build_graph("sim", {"twist_topic": "/x"})
    with pytest.raises(itf.ConfigError, match="unknown graph"):
        graph.build_graph("moon")


def test_bringup_commands_match_the_graph(tmp_path: Path) -> None:
    commands = dict(node_commands("hardware", {"twist_topic": "/servo/cmd", "rate": "100"}, tmp_path))
    policy = commands["policy_node"]
    assert policy[:4] == [sys.executable, "-m", "dmil_ros.ros.entry", "policy_node"]
    assert "dmil/policy/twist_cmd:=/servo/cmd" in policy
    overrides = yaml.safe_load((tmp_path / "policy_node.overrides.yaml").read_text())
    assert overrides["policy_node"]["ros__parameters"]["rate"] == 100.0


def test_every_node_executable_starts_through_the_quiet_entry_point() -> None:
    """Console scripts (ros2 run / launch) and bringup both go through dmil_ros.ros.entry, which ends a
    node stopped during its imports without a traceback (test_ros_bringup)."""
    from dmil_ros.ros import entry

    setup_py = (ROOT / "setup.py").read_text()
    for name in entry.NODES:
        assert f'"{name} = dmil_ros.ros.entry:{name}"' in setup_py
    for kind in graph.KINDS:
        assert {spec.executable for spec in graph.build_graph(kind, {})} <= set(entry.NODES)
    assert entry.run("no_such_node") == 2


def test_bringup_dry_run_and_bad_argument() -> None:
    ok = subprocess.run([sys.executable, "-m", "dmil_ros.ros.bringup", "sim", "--dry-run"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "sim_bridge:" in ok.stdout and "--params-file" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "dmil_ros.ros.bringup", "sim", "--rate", "fast"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "rate" in bad.stderr and "Traceback" not in bad.stderr


# --- configs agree with the declared parameters ---------------------------------------------------
@pytest.mark.parametrize("kind", graph.KINDS)
def test_config_files_only_set_declared_parameters_with_valid_values(kind: str) -> None:
    config = yaml.safe_load((ROOT / "config" / f"{kind}.yaml").read_text())
    assert config, f"{kind}.yaml is empty"
    for node, section in config.items():
        params = section["ros__parameters"]
        specs = {s.name: s for s in itf.NODE_PARAMS[node]}
        for name, value in params.items():
            assert name in specs, f"{kind}.yaml sets undeclared {node}.{name}"
            default = specs[name].default
            assert type(value) is type(default), f"{node}.{name}: {value!r} is not a {type(default).__name__}"
            assert specs[name].check(value) is None, specs[name].check(value)


def test_graph_overrides_are_declared_parameters() -> None:
    for kind in graph.KINDS:
        for spec in graph.build_graph(kind):
            declared = {s.name for s in itf.NODE_PARAMS[spec.executable]}
            assert set(spec.parameters) <= declared, (kind, spec.name)


def test_param_spec_coercion() -> None:
    rate = itf.param_spec("sim_bridge", "rate")
    assert itf.coerce(rate, "80") == 80.0
    with pytest.raises(itf.ConfigError, match="outside"):
        itf.coerce(rate, "0")
    lock = itf.param_spec("sim_bridge", "lock_step")
    assert itf.coerce(lock, "off") is False
    with pytest.raises(itf.ConfigError):
        itf.coerce(lock, "perhaps")
    assert rate.descriptor().floating_point_range[0].to_value == 1000.0
    assert rate.descriptor().read_only and not itf.param_spec("sim_bridge", "task").descriptor().read_only


@pytest.mark.parametrize(("args", "reason"), [
    ({"rate": "abc"}, "rate:=abc is not a number (e.g. 80 or 80.0)"),
    ({"rate": "0"}, "rate:=0 is outside [1, 2000]"),
    ({"rate": "1500"}, "rate:=1500 is outside [1, 1000]"),  # the policy takes it, the sim does not
    ({"rate": "nan"}, "rate:=nan is not a finite number"),
    ({"lock_step": "perhaps"}, "lock_step:=perhaps is not one of true, false"),
    ({"enable_policy": "yes please"}, "enable_policy:=yes please is not one of true, false"),
])
def test_bad_launch_arguments_say_why_in_one_line(args: dict[str, str], reason: str) -> None:
    """`rate:=abc` suggested "write 80.0, not 80", though rate:=80 works."""
    with pytest.raises(itf.ConfigError) as e:
        graph.build_graph("sim", args)
    assert str(e.value) == reason and "\n" not in str(e.value)
    assert graph.build_graph("sim", {"rate": "80"})[0].parameters["rate"] == 80.0


def test_bringup_with_a_bad_argument_exits_2_with_the_reason() -> None:
    out = subprocess.run([sys.executable, "-m", "dmil_ros.ros.bringup", "sim", "--rate", "abc", "--dry-run"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out
    assert out.stderr.strip() == "[bringup] rate:=abc is not a number (e.g. 80 or 80.0)", out.stderr
