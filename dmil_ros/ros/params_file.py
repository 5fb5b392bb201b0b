"""Check a node's `--ros-args` parameters (params files, `-p name:=value`) before rclpy reads them.

rcl accepts a params file with misspelt keys or node names and drops them without a word (the node
then runs on the default), takes `state_timeout: abc` as a string the node never asks for, and ends
in an RCLError traceback on a file that is not valid YAML. `check_ros_args` finds every such problem
at once, against the one list of parameters in interfaces.py (NODE_PARAMS), so the node refuses to
start with all of them listed (exit 2) instead.

Sections: `<node>` / `/<node>` / `/<ns>/<node>` name a node; a name with `*` (`/**`) applies to every
node, so its keys must be parameters of some node. A section whose name is close to one of ours but
not equal (`polcy_node`) is reported as a misspelling; other names belong to other nodes sharing the
file and are left alone.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from dmil_ros.ros.interfaces import NODE_PARAMS, ParamSpec

# Parameters every rclpy node declares itself (or reads from overrides), not in NODE_PARAMS.
BUILTIN_PARAMS = frozenset({"use_sim_time", "start_type_description_service"})


def _type_problem(spec: ParamSpec, value: Any) -> str | None:
    want = spec.default
    if isinstance(want, bool):
        ok = isinstance(value, bool)
        name = "a bool (true/false)"
    elif isinstance(want, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        name = "an integer"
    elif isinstance(want, float):
        ok = isinstance(value, float)
        name = "a double (write 80.0, not 80)" if isinstance(value, int) and not isinstance(value, bool) \
            else "a double"
    elif isinstance(want, tuple):
        ok = isinstance(value, list) and all(isinstance(v, float) for v in value)
        name = "a list of doubles (write [0.0, 0.5, 1.0])"
    else:
        ok = isinstance(value, str)
        name = "a string"
    if not ok:
        return f"{spec.name}: {value!r} must be {name}"
    return spec.check(tuple(value) if isinstance(want, tuple) else value)


def check_values(node: str, values: Mapping[str, Any], where: str) -> list[str]:
    """Problems of `values` (parameter name -> YAML value) meant for `node`."""
    specs = {s.name: s for s in NODE_PARAMS[node]}
    problems = []
    for name, value in values.items():
        if name in BUILTIN_PARAMS:
            continue
        spec = specs.get(name)
        if spec is None:
            close = difflib.get_close_matches(str(name), list(specs), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{where}: {node} has no parameter {name!r}{hint}")
            continue
        problem = _type_problem(spec, value)
        if problem:
            problems.append(f"{where}: {problem}")
    return problems


def _section_node(name: str) -> str:
    return str(name).rstrip("/").rsplit("/", 1)[-1]


def check_params_file(path: str, node: str) -> list[str]:
    """Every problem of params file `path` (as one node, `node`, would read it)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        return [f"{path}: cannot read: {e.strerror or e}"]
    except yaml.YAMLError as e:
        return [f"{path}: not valid YAML: {' '.join(str(e).split())}"]
    if not isinstance(data, dict):
        return [f"{path}: must map node names to {{ros__parameters: {{...}}}}, found {type(data).__name__}"]
    problems = []
    all_params = set().union(*({s.name for s in specs} for specs in NODE_PARAMS.values())) | BUILTIN_PARAMS
    for section, body in data.items():
        where = f"{path} [{section}]"
        if not isinstance(body, dict) or not isinstance(body.get("ros__parameters"), dict):
            problems.append(f"{where}: needs 'ros__parameters:' holding the parameters")
            continue
        params = body["ros__parameters"]
        extra = sorted(set(body) - {"ros__parameters"})
        if extra:
            problems.append(f"{where}: unexpected key(s) {', '.join(map(str, extra))} beside ros__parameters")
        name = _section_node(section)
        if "*" in str(section):
            unknown = sorted(str(k) for k in params if k not in all_params)
            if unknown:
                problems.append(f"{where}: no node of dmil_ros has parameter(s) {', '.join(unknown)}")
            if node in NODE_PARAMS:  # what applies to this node must also have the right type
                specs = {s.name: s for s in NODE_PARAMS[node]}
                problems += [f"{where}: {p}" for k, v in params.items() if k in specs
                             for p in [_type_problem(specs[k], v)] if p]
        elif name in NODE_PARAMS:
            problems += check_values(name, params, where)
        else:
            close = difflib.get_close_matches(name, list(NODE_PARAMS), n=1, cutoff=0.8)
            if close:
                problems.append(f"{where}: no node is called {name!r} (did you mean {close[0]}?)")
    return problems


def _param_args(ros_args: Sequence[str]) -> Iterable[tuple[str, str]]:
    """('params-file', path) and ('param', 'name:=value') from the arguments after --ros-args."""
    inside = False
    it = iter(ros_args)
    for arg in it:
        if arg == "--ros-args":
            inside = True
        elif arg == "--":
            inside = False
        elif inside and arg == "--params-file":
            yield "params-file", next(it, "")
        elif inside and arg in ("-p", "--param"):
            yield "param", next(it, "")
        elif inside and arg.startswith("--param="):
            yield "param", arg.split("=", 1)[1]


def check_ros_args(node: str, argv: Sequence[str]) -> list[str]:
    """Every problem of the parameters `argv` (the node's command line) gives node `node`."""
    problems = []
    for kind, value in _param_args(argv):
        if kind == "params-file":
            problems += check_params_file(value, node)
            continue
        name, sep, text = value.partition(":=")
        if not sep:
            problems.append(f"-p {value}: write -p name:=value")
            continue
        if ":" in name:  # node-scoped: `-p policy_node:state_timeout:=0.5`
            target, name = name.rsplit(":", 1)
            if _section_node(target) != node:
                continue
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError:
            parsed = text
        problems += check_values(node, {name: parsed}, f"-p {value}")
    return problems
