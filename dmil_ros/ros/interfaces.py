"""The single source of truth for the ROS 2 interface of dmil_ros: topics, services, QoS, parameters.

Every node, the graph, the bench and the tests import names, types and QoS from here; nothing else
spells a topic or service name. Names are relative, so a namespace or a remapping moves them.

Topics (type, QoS)                       publisher -> subscribers
  joint_states      JointState    state  sim_bridge | robot -> policy_node, scripted_teleop, recorder
  ee_pose           PoseStamped   state  sim_bridge | robot -> ...
  object_poses      PoseArray     state  sim_bridge | perception -> ...
  goal              PointStamped  state  sim_bridge | operator -> ...
  task_success      Bool          state  sim_bridge -> recorder, tests
  episode_info      String(JSON)  latch  sim_bridge -> policy_node, scripted_teleop, recorder
  task              String        latch  sim_bridge -> policy_node, scripted_teleop, recorder
  dmil/policy/twist_cmd    TwistStamped  cmd  policy_node -> sim_bridge | MoveIt Servo
  dmil/policy/gripper_cmd  Float64       cmd  policy_node -> sim_bridge | gripper driver
  teleop/twist_cmd         TwistStamped  cmd  scripted_teleop | human device -> sim_bridge, recorder
  teleop/gripper_cmd       Float64       cmd  scripted_teleop | human device -> sim_bridge, recorder
  dmil/policy/joint_velocity_cmd  JointState  cmd  kitchen: policy_node -> sim_bridge | controller
  teleop/joint_velocity_cmd       JointState  cmd  kitchen: scripted_teleop | device -> sim_bridge, recorder
  dmil/policy/skill        Int32         cmd  active sub-skill (plot it in Foxglove / rqt_plot)
  dmil/policy/skill_probs  Float32MultiArray  sub-skill probabilities
  dmil/policy/status       String        latch  "disabled" | "driving" | "refusing: <reason>"
  dmil/record/status       String        latch  recorder: what is being recorded, messages dropped

Services (all std_srvs)
  dmil/sim/reset        Trigger  sim_bridge: new episode (seed = seed parameter + episode index)
  dmil/policy/enable    SetBool  policy_node: drive (true) or stay silent (false)
  dmil/policy/adapt     Trigger  policy_node (internal): adapt to the current task's demos on disk
  dmil/policy/revert    Trigger  policy_node: drop the adaptation, back to the loaded checkpoint
  dmil/record/start     Trigger  demo_recorder: begin a demonstration (one MCAP file)
  dmil/record/stop      Trigger  demo_recorder: finalize it
  dmil/adapt            Trigger  demo_recorder: user-facing adaptation (forwards to dmil/policy/adapt)
  dmil/teleop/enable    SetBool  scripted_teleop: operate (true) or not

Robot stand-in (robot_standin; `dmil bringup standin`): plays a real cell for the hardware graph
  servo_node/delta_twist_cmds  TwistStamped  cmd    policy | operator -> robot_standin's MoveIt Servo
  gripper/command              Float64       cmd    policy | operator -> robot_standin's gripper driver
  standin/episode              String(JSON)  latch  robot_standin: task, episode, seed, success
  standin/reset         Trigger  new scene (seed = seed parameter + episode index), arm homed
  standin/report        Trigger  JSON of the episode: success, Servo counters, commands that moved the arm
  standin/state_dropout SetBool  stop (true) / resume (false) publishing the state: a driver/camera outage

Command per env family (`env` parameter, dmil_ros/ros/embodiment.py): metaworld drives the end
effector (twist + gripper); kitchen (Franka Kitchen) drives the 9 robot joints with a JointState whose
`name` lists the joints and `velocity` holds rad/s (m/s for the fingers) = 2 x the env action.
JointState, not control_msgs/JointJog: control_msgs is not installable here; a robot launch remaps the
topic to its joint-velocity controller's input. The kitchen state goes out on the same state topics:
joint_states = the 9 robot + 14 one-dof object joints, object_poses = [kettle], goal = zeros.

Switching task: set the `task` parameter of sim_bridge (`ros2 param set /sim_bridge task
drawer-open-v3`); it rebuilds the env, resets and publishes the latched `task` topic, which the other
nodes follow.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from geometry_msgs.msg import PointStamped, PoseArray, PoseStamped, TwistStamped
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float32MultiArray, Float64, Int32, String
from std_srvs.srv import SetBool, Trigger

from dmil_ros.core.config import ConfigError
from dmil_ros.envs.registry import ENV_FAMILIES
from dmil_ros.ros.guarded import subscribe

# --- QoS ------------------------------------------------------------------------------------------
# Reliable so that lock-step simulation never loses the one state a step produces; depth 10 absorbs
# bursts. A best-effort variant exists for robots/perception publishing best-effort.
STATE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
BEST_EFFORT_STATE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)
COMMAND_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
# Sub-skill traces are for plotting (paper Fig. 3 live) and for recording: a viewer or recorder that
# falls behind under load must not lose samples to a 10-deep writer history (a loaded test machine
# lost 17 of 500 that way), and the messages are tiny.
TRACE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=200, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
# Late joiners (a recorder started after the sim) still learn the task / episode.
LATCHED_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


def state_qos(reliability: str) -> QoSProfile:
    return BEST_EFFORT_STATE_QOS if reliability == "best_effort" else STATE_QOS


RECORDING_DEPTH = 1000
# Lock-step commanders re-send their last command for a state seen again at most this often [s], so
# one lost command cannot stall the sim.
RESEND_PERIOD = 0.05


def recording_qos(qos: QoSProfile) -> QoSProfile:
    """`qos` with a deep history: a lock-step sim runs faster than real time and the recorder must not
    lose messages while it is busy writing (KEEP_LAST drops the oldest once the history is full)."""
    if qos.durability == DurabilityPolicy.TRANSIENT_LOCAL:
        return qos
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=RECORDING_DEPTH, reliability=qos.reliability,
                      durability=qos.durability)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    msg_type: type
    qos: QoSProfile
    description: str


JOINT_STATES = TopicSpec("joint_states", JointState, STATE_QOS, "arm + finger joints, plus the gripper joint")
EE_POSE = TopicSpec("ee_pose", PoseStamped, STATE_QOS, "end-effector pose, world frame")
OBJECT_POSES = TopicSpec("object_poses", PoseArray, STATE_QOS, "poses of the task's objects, world frame")
GOAL = TopicSpec("goal", PointStamped, STATE_QOS, "task goal position, world frame")
TASK_SUCCESS = TopicSpec("task_success", Bool, STATE_QOS, "task solved at this step")
EPISODE_INFO = TopicSpec("episode_info", String, LATCHED_QOS,
                         "JSON: task, episode, seed, step, success, done, start_ns (stamp of the "
                         "episode's first state: older states belong to an earlier episode)")


def parse_episode_info(text: str) -> dict[str, Any] | None:
    """An EPISODE_INFO payload with `episode` as an int and `start_ns` (0 if absent); None if malformed."""
    try:
        info = json.loads(text)
        if not isinstance(info, dict):
            return None
        # int() of a JSON Infinity / 1e400 (a float inf) raises OverflowError, of NaN ValueError
        info["episode"] = int(info["episode"])
        info["start_ns"] = int(info.get("start_ns", 0))
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
        return None
    return info

TASK = TopicSpec("task", String, LATCHED_QOS, "name of the current task")
POLICY_TWIST = TopicSpec("dmil/policy/twist_cmd", TwistStamped, COMMAND_QOS, "policy ee velocity command")
POLICY_GRIPPER = TopicSpec("dmil/policy/gripper_cmd", Float64, COMMAND_QOS,
                           "policy gripper effort, +1 closes")
TELEOP_TWIST = TopicSpec("teleop/twist_cmd", TwistStamped, COMMAND_QOS, "operator ee velocity command")
TELEOP_GRIPPER = TopicSpec("teleop/gripper_cmd", Float64, COMMAND_QOS, "operator gripper effort, +1 closes")
POLICY_JOINT_VELOCITY = TopicSpec("dmil/policy/joint_velocity_cmd", JointState, COMMAND_QOS,
                                  "kitchen: policy joint velocities (name + velocity, rad/s)")
TELEOP_JOINT_VELOCITY = TopicSpec("teleop/joint_velocity_cmd", JointState, COMMAND_QOS,
                                  "kitchen: operator joint velocities (name + velocity, rad/s)")
SKILL = TopicSpec("dmil/policy/skill", Int32, TRACE_QOS, "index of the active sub-skill")
SKILL_PROBS = TopicSpec("dmil/policy/skill_probs", Float32MultiArray, TRACE_QOS, "sub-skill probabilities")
POLICY_STATUS = TopicSpec("dmil/policy/status", String, LATCHED_QOS, "disabled | driving | refusing: <why>")
RECORD_STATUS = TopicSpec("dmil/record/status", String, LATCHED_QOS,
                          "recorder: idle | recording <file>: counts and messages dropped (every second)")

# The parts of the robot state the observation is rebuilt from (the recorder also stores the rest).
STATE_TOPICS = (JOINT_STATES, EE_POSE, OBJECT_POSES, GOAL)
RECORDED_TOPICS = (*STATE_TOPICS, TASK_SUCCESS, EPISODE_INFO, TASK, TELEOP_TWIST, TELEOP_GRIPPER)
KITCHEN_RECORDED_TOPICS = (*STATE_TOPICS, TASK_SUCCESS, EPISODE_INFO, TASK, TELEOP_JOINT_VELOCITY)
# What a demo file may contain, whichever env recorded it (the reader's topic -> role table).
ALL_RECORDED_TOPICS = (*RECORDED_TOPICS, TELEOP_JOINT_VELOCITY)
# The goal first, the parts that complete a state last (see subscribe_robot_state).
SUBSCRIBE_ORDER = (GOAL, OBJECT_POSES, EE_POSE, JOINT_STATES)


def subscribe_robot_state(
    node: Any,
    reliability: str,
    on_part: Callable[[str, Any], None],
    on_task: Callable[[Any], None],
    on_episode: Callable[[Any], None],
) -> None:
    """Subscribe `node` to the state topics (`on_part(topic, msg)`), the task and the episode info:
    what every node that rebuilds observations listens to.

    Order matters: rclpy's executor takes one message per ready subscription per wait, in the order
    the subscriptions were created. A node that falls behind finds a reset's task, episode info, goal
    and state parts ready at once; created in this order (the order sim_bridge publishes in), the
    task, the episode and the new goal are known before the state they belong to is complete (else
    the first step of an episode is acted on with the previous episode's goal and previous frame)."""
    qos = state_qos(reliability)
    subscribe(node, TASK.msg_type, TASK.name, on_task, TASK.qos)
    subscribe(node, EPISODE_INFO.msg_type, EPISODE_INFO.name, on_episode, EPISODE_INFO.qos)
    for spec in SUBSCRIBE_ORDER:
        subscribe(node, spec.msg_type, spec.name, lambda m, r=spec.name: on_part(r, m), qos)


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    srv_type: type
    description: str


SIM_RESET = ServiceSpec("dmil/sim/reset", Trigger, "start a new episode")
POLICY_ENABLE = ServiceSpec("dmil/policy/enable", SetBool, "let the policy drive (true) or not (false)")
POLICY_ADAPT = ServiceSpec("dmil/policy/adapt", Trigger, "internal: adapt to the current task's demos")
POLICY_REVERT = ServiceSpec("dmil/policy/revert", Trigger, "back to the loaded checkpoint")
RECORD_START = ServiceSpec("dmil/record/start", Trigger, "start recording a demonstration")
RECORD_STOP = ServiceSpec("dmil/record/stop", Trigger, "stop and finalize the demonstration")
ADAPT = ServiceSpec("dmil/adapt", Trigger, "adapt the policy to the recorded demos of the current task")
TELEOP_ENABLE = ServiceSpec("dmil/teleop/enable", SetBool, "let the scripted operator drive")

# --- robot stand-in: the cell's side of the hardware graph (dmil_ros/ros/robot_standin.py) ----------
SERVO_TWIST = TopicSpec("servo_node/delta_twist_cmds", TwistStamped, COMMAND_QOS,
                        "MoveIt Servo's twist input (command_in_type speed_units: m/s, rad/s)")
GRIPPER_COMMAND = TopicSpec("gripper/command", Float64, COMMAND_QOS,
                            "gripper driver input: effort in [-1, 1], +1 closes")
STANDIN_EPISODE = TopicSpec("standin/episode", String, LATCHED_QOS,
                            "JSON: task, episode, seed, success of the stand-in's scene")
STANDIN_RESET = ServiceSpec("standin/reset", Trigger, "new scene: seed parameter + episode index")
STANDIN_REPORT = ServiceSpec("standin/report", Trigger, "JSON report of the current episode")
STANDIN_DROPOUT = ServiceSpec("standin/state_dropout", SetBool,
                              "stop (true) or resume (false) publishing the robot state")

# --- Parameters -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    description: str
    range: tuple[float, float] | None = None  # inclusive
    choices: tuple[str, ...] = ()
    dynamic: bool = False  # may be changed at runtime (`ros2 param set`); others are read-only

    def descriptor(self) -> ParameterDescriptor:
        d = ParameterDescriptor(name=self.name, description=self.description, read_only=not self.dynamic)
        if isinstance(self.default, tuple):  # a double array, unset by default
            d.type = ParameterType.PARAMETER_DOUBLE_ARRAY
        if self.range is not None and isinstance(self.default, bool):
            raise TypeError(f"{self.name}: a range makes no sense for a bool")
        if self.range is not None and isinstance(self.default, int):
            lo, hi = int(self.range[0]), int(self.range[1])
            d.integer_range = [IntegerRange(from_value=lo, to_value=hi, step=0)]
        elif self.range is not None:
            d.floating_point_range = [
                FloatingPointRange(from_value=float(self.range[0]), to_value=float(self.range[1]), step=0.0)
            ]
        if self.choices:
            d.additional_constraints = "one of: " + ", ".join(self.choices)
        return d

    def check(self, value: Any) -> str | None:
        """None if `value` is acceptable, else the reason (ranges are also enforced by rclpy)."""
        if isinstance(self.default, tuple):
            values = list(value or ())
            if values and (len(values) != 3 or not all(math.isfinite(v) for v in values)):
                return f"{self.name}={values} must be 3 finite numbers [x, y, z] (or unset)"
            return None
        if self.choices and value not in self.choices:
            return f"{self.name}={value!r} is not one of {', '.join(self.choices)}"
        if self.range is not None and not (self.range[0] <= value <= self.range[1]):
            return f"{self.name}={value!r} is outside [{self.range[0]}, {self.range[1]}]"
        if isinstance(value, float) and not math.isfinite(value):
            return f"{self.name}={value!r} is not finite"
        return None


_TYPE_NAMES = {bool: "a bool (true/false)", int: "an integer", float: "a double (write 80.0, not 80)",
               str: "a string", tuple: "a list of doubles (write [0.0, 0.5, 1.0])"}

DEFAULT_DEMO_DIR = "~/.dmil/demos"
# The task a graph runs when the launch argument `task` is left empty.
DEFAULT_TASKS = {"metaworld": "reach-v3", "kitchen": "microwave+kettle+top_burner+light_switch"}

COMMON_PARAMS = (
    ParamSpec("env", "metaworld", "environment family the policy was trained in (observation and command "
              "mapping: dmil_ros/ros/embodiment.py)", choices=ENV_FAMILIES),
    ParamSpec("task", "reach-v3", "task name; nodes follow the latched `task` topic when it is published"),
)
OBSERVATION_PARAMS = (
    ParamSpec("gripper_joint", "gripper_opening",
              "metaworld: joint in joint_states whose position gives the gripper opening (sim: a virtual "
              "joint)"),
    ParamSpec("gripper_scale", 1.0,
              "metaworld: opening in the observation = clip(position * gripper_scale, 0, 1)",
              range=(1e-6, 1e6)),
    ParamSpec("expected_joint_count", 0, "refuse joint_states with another number of joints (0: any); "
              "metaworld only (kitchen requires its 23 joint names)",
              range=(0, 1000)),
    ParamSpec("state_reliability", "reliable", "QoS reliability of the state subscriptions",
              choices=("reliable", "best_effort")),
    ParamSpec("action_speed", 0.8, "metaworld: hand speed [m/s] per axis of an action of 1.0, both ways "
              "(policy action -> twist, recorded operator twist -> demo action). Meta-World's is 0.8 (1 cm "
              "per 12.5 ms step); a robot slower than that sets its speed (config/hardware.yaml: 0.25 = "
              "max_linear_speed): the policy then runs Meta-World's motions slowed down, and demos recorded "
              "at the robot's speed come out in the action scale the policy was trained on",
              range=(0.001, 10.0)),
)

SIM_BRIDGE_PARAMS = (
    *COMMON_PARAMS[:1],
    ParamSpec("task", "reach-v3", "task of `env` (kitchen: sub-tasks joined by '+'); set it at runtime to "
              "switch task (rebuilds the env)",
              dynamic=True),
    ParamSpec("seed", 0, "episode i is reset with seed + i", range=(0, 2**31 - 1)),
    ParamSpec("lock_step", True, "one physics step per received command (reproducible evaluation)"),
    ParamSpec("rate", 80.0, "real-time mode: physics steps per second (80 = Meta-World's 12.5 ms)",
              range=(1.0, 1000.0)),
    ParamSpec("command_timeout", 0.2, "real-time mode: zero velocity when no twist for this long [s]",
              range=(0.001, 10.0), dynamic=True),
    ParamSpec("command_source", "any", "accept commands from the policy, the operator, or any of them",
              choices=("any", "policy", "teleop"), dynamic=True),
    ParamSpec("max_episode_steps", 500, "episode horizon in steps", range=(1, 100000)),
    ParamSpec("end_on_success", True, "the episode is over at the first successful step", dynamic=True),
    ParamSpec("auto_reset", False, "start the next episode as soon as one is over", dynamic=True),
    ParamSpec("heartbeat_rate", 10.0, "republish the (unchanged) state this often while waiting [Hz]",
              range=(0.1, 1000.0)),
    ParamSpec("gripper_grace", 0.02,
              "metaworld lock-step: after a twist, wait this long for its gripper command [s]",
              range=(0.0, 1.0), dynamic=True),
    ParamSpec("gripper_joint", "gripper_opening",
              "metaworld: name of the virtual joint carrying the gripper opening"),
    ParamSpec("frame_id", "world", "frame of the published poses"),
)

POLICY_PARAMS = (
    *COMMON_PARAMS,
    *OBSERVATION_PARAMS,
    ParamSpec("checkpoint", "", "checkpoint directory; empty: the shipped one of `env` "
              "(metaworld_ml45, kitchen/no_top_burner)"),
    ParamSpec("enabled", False, "drive from the start (otherwise call dmil/policy/enable)", dynamic=True),
    ParamSpec("trigger", "state", "state: act on each new complete state (all parts share one stamp); "
              "timer: act at `rate` on the latest parts", choices=("state", "timer")),
    ParamSpec("rate", 80.0, "timer mode: control rate; both modes: watchdog rate [Hz]", range=(1.0, 2000.0)),
    ParamSpec("state_timeout", 0.25, "zero command when no complete state arrived for this long [s]",
              range=(0.001, 10.0), dynamic=True),
    ParamSpec("stale_zero_duration", 0.5, "on stale state, publish zero commands for this long [s], then "
              "nothing until state returns (a driver/Servo then sees the stream stop and halts); the "
              "gripper gets no command meanwhile and holds its last one", range=(0.0, 60.0), dynamic=True),
    ParamSpec("max_linear_speed", 0.8, "metaworld: limit of the commanded linear velocity's norm [m/s] "
              "(kitchen: joint velocities are clipped to the env's +-2 rad/s)",
              range=(0.0, 10.0), dynamic=True),
    ParamSpec("workspace_min", (), "lower corner [x, y, z] of the box the end effector, objects and goal "
              "must lie in [m, frame of the state]; unset: the env's (dmil_ros/ros/embodiment.py)",
              dynamic=True),
    ParamSpec("workspace_max", (), "upper corner [x, y, z] of that box; unset: the env's", dynamic=True),
    ParamSpec("max_joint_position", 0.0, "refuse joint positions beyond +- this [rad or m]; 0: the env's",
              range=(0.0, 1e6), dynamic=True),
    ParamSpec("max_clock_skew", 1.0, "refuse a state whose stamp is further than this from the node's clock "
              "[s] (future: always; past: not against a lock-step sim, which waits for its command); "
              "0: stamps are not judged", range=(0.0, 1e6), dynamic=True),
    ParamSpec("max_angular_speed", 1.0, "metaworld: limit of the commanded angular velocity's norm "
              "[rad/s] (the policy commands none: Meta-World's hand does not turn; see "
              "orientation_hold_gain)", range=(0.0, 10.0), dynamic=True),
    ParamSpec("orientation_hold_gain", 0.0, "metaworld: turn the hand back to its orientation at the "
              "episode's first state with this angular velocity per radian of error [1/s]; 0: no rotation "
              "is commanded. Meta-World's hand never turns, so its policies assume it does not; contact "
              "can turn a real one", range=(0.0, 20.0), dynamic=True),
    ParamSpec("frame_id", "world", "frame of the published twist", dynamic=True),
    ParamSpec("demo_dir", DEFAULT_DEMO_DIR, "directory with one sub-directory of MCAP demos per task",
              dynamic=True),
    ParamSpec("max_demos", 3, "adapt on the newest N demos of the task (dynamic: `ros2 param set "
              "/policy_node max_demos 1`; applies to the next dmil/adapt)", range=(1, 100), dynamic=True),
    ParamSpec("adapt_steps", -1, "adaptation steps (HI + LI each); -1: the checkpoint's adapt config",
              range=(-1, 1000), dynamic=True),
    ParamSpec("adapt_lr", 0.0, "adaptation step size of both levels; 0: the checkpoint's adapt config",
              range=(0.0, 10.0), dynamic=True),
    ParamSpec("torch_threads", 1, "torch intra-op threads (1 keeps control latency low)", range=(1, 256)),
    ParamSpec("adapt_threads", 1, "torch threads of the adaptation worker process (it runs niced, below "
              "the control loop)", range=(1, 256)),
    ParamSpec("prestart_adapt_worker", False, "start the adaptation worker process with the node (in the "
              "background), so the first dmil/adapt does not wait for it; otherwise at the first one"),
    ParamSpec("realtime_priority", 0, "SCHED_FIFO priority of the node's threads (Linux; needs root, "
              "CAP_SYS_NICE or an rtprio limit; adaptation runs at normal priority); 0: normal "
              "scheduler. If it cannot be set the node logs why and runs normally", range=(0, 99)),
)

RECORDER_PARAMS = (
    *COMMON_PARAMS,
    ParamSpec("state_reliability", "reliable", "QoS reliability of the recorded state subscriptions",
              choices=("reliable", "best_effort")),
    ParamSpec("demo_dir", DEFAULT_DEMO_DIR, "demos go to <demo_dir>/<task>/demo-*.mcap", dynamic=True),
    ParamSpec("adapt_timeout", 120.0, "give up waiting for the policy node's adaptation [s]",
              range=(1.0, 3600.0), dynamic=True),
)

# How the operator paces itself against a robot whose topics are stamped independently (hardware).
_TELEOP_PACING_PARAMS = (
    ParamSpec("trigger", "state", "state: act on each new complete state (sim: all parts share one stamp); "
              "timer: act at `rate` on the latest parts (robot topics stamped independently)",
              choices=("state", "timer")),
    ParamSpec("rate", 80.0, "timer mode: operator command rate [Hz]", range=(1.0, 2000.0)),
    ParamSpec("state_timeout", 0.25, "timer mode: no command while a state part is older than this [s]",
              range=(0.001, 10.0)),
    ParamSpec("max_linear_speed", 10.0, "limit of the commanded linear velocity [m/s] (as the policy's "
              "max_linear_speed; the sim's 0.8 per axis is below the default)", range=(0.0, 10.0)),
    ParamSpec("realtime_priority", 0, "SCHED_FIFO priority of the node's threads: a scripted operator on a "
              "loaded machine must keep its pace against a real-time robot (0: normal scheduler)",
              range=(0, 99)),
)

TELEOP_PARAMS = (
    *COMMON_PARAMS,
    *OBSERVATION_PARAMS,
    *_TELEOP_PACING_PARAMS,
    ParamSpec("enabled", True, "operate from the start (otherwise call dmil/teleop/enable)"),
    ParamSpec("frame_id", "world", "frame of the published twist", dynamic=True),
    ParamSpec("command_subscribers", 2,
              "dmil/teleop/enable waits until the operator command publishers are matched with this many "
              "subscribers (sim graph: sim_bridge + demo_recorder; 0: don't wait), up to match_timeout",
              range=(0, 100), dynamic=True),
    ParamSpec("match_timeout", 5.0, "longest wait for command_subscribers at enable [s]", range=(0.0, 60.0),
              dynamic=True),
)

# The stand-in's Servo parameters carry MoveIt Servo's names (`scale.linear` is scale_linear here).
STANDIN_PARAMS = (
    ParamSpec("task", "reach-v3", "Meta-World v3 task whose scene the stand-in runs"),
    ParamSpec("seed", 0, "episode i of the scene is reset with seed + i (as sim_bridge)",
              range=(0, 2**31 - 1)),
    ParamSpec("driver_rate", 500.0, "joint_states and ee_pose rate of the robot driver [Hz]",
              range=(1.0, 2000.0)),
    ParamSpec("camera_rate", 30.0, "perception: object_poses frames per second", range=(0.1, 1000.0)),
    ParamSpec("latency", 0.05, "perception: capture -> delivery of a frame [s] (frames are stamped with "
              "their capture time)", range=(0.0, 5.0)),
    ParamSpec("position_noise", 0.002, "perception: standard deviation of object positions, per axis [m]",
              range=(0.0, 1.0)),
    ParamSpec("orientation_noise", 0.0, "perception: standard deviation of object orientations, per axis "
              "[rad]", range=(0.0, 3.2)),
    ParamSpec("goal_rate", 10.0, "operator side: goal republished at this rate [Hz]", range=(0.1, 1000.0)),
    ParamSpec("frame_id", "base", "frame of the published poses (the Sawyer's base frame)"),
    ParamSpec("gripper_joint", "right_gripper_l_finger_joint",
              "joint_states name of the finger joint (travel from the centre line [m]; opening = 20 x it)"),
    ParamSpec("command_in_type", "speed_units", "Servo: speed_units (m/s, rad/s) or unitless ([-1, 1] x "
              "scale_linear / scale_rotational)", choices=("speed_units", "unitless")),
    ParamSpec("scale_linear", 0.4, "Servo scale.linear: m/s at a unitless 1.0", range=(0.0, 10.0)),
    ParamSpec("scale_rotational", 0.8, "Servo scale.rotational: rad/s at a unitless 1.0", range=(0.0, 10.0)),
    ParamSpec("publish_period", 0.01, "Servo cycle [s]", range=(0.001, 1.0)),
    ParamSpec("incoming_command_timeout", 0.1, "Servo: a twist older than this (by its header stamp) is "
              "not used; the arm halts [s]", range=(0.001, 10.0)),
    ParamSpec("lower_singularity_threshold", 17.0, "Servo: decelerate above this Jacobian condition number",
              range=(1.0, 1e6)),
    ParamSpec("hard_stop_singularity_threshold", 30.0, "Servo: halt above this condition number",
              range=(1.0, 1e6)),
    ParamSpec("leaving_singularity_threshold_multiplier", 2.0, "Servo: thresholds x this when moving away "
              "from a singularity", range=(1.0, 100.0)),
    ParamSpec("joint_limit_margin", 0.1, "Servo: halt when a joint would come this close to a limit [rad]",
              range=(0.0, 1.0)),
    ParamSpec("halt_all_joints_in_cartesian_mode", True, "Servo: a joint at its limit halts every joint"),
    ParamSpec("posture_gain", 2.0, "null-space pull of the 7-joint arm towards its reset posture [1/s] "
              "(0: plain pseudo-inverse, the elbow drifts)", range=(0.0, 100.0)),
    ParamSpec("tracking_bandwidth", 100.0, "arm joint controller bandwidth [rad/s]", range=(1.0, 150.0)),
    ParamSpec("effort_scale", 10.0, "joint effort limits = this x the Sawyer's (Meta-World's scenes need "
              "more than a Sawyer's strength)", range=(0.01, 1000.0)),
    ParamSpec("realtime_priority", 0, "SCHED_FIFO priority of the node's threads, as a robot driver runs "
              "(config/standin.yaml: 50, as ros2_control); 0: normal scheduler", range=(0, 99)),
)

NODE_PARAMS: dict[str, tuple[ParamSpec, ...]] = {
    "sim_bridge": SIM_BRIDGE_PARAMS,
    "policy_node": POLICY_PARAMS,
    "demo_recorder": RECORDER_PARAMS,
    "scripted_teleop": TELEOP_PARAMS,
    "robot_standin": STANDIN_PARAMS,
}


def param_spec(node: str, name: str) -> ParamSpec:
    for spec in NODE_PARAMS[node]:
        if spec.name == name:
            return spec
    raise KeyError(f"{node} has no parameter {name!r}")


# What a launch argument (always a string) must look like to become a parameter of that type: unlike a
# params file, `rate:=80` is fine for a double.
_ARG_TYPE_NAMES = {bool: "true or false", int: "an integer (e.g. 3)", float: "a number (e.g. 80 or 80.0)",
                   str: "a string"}


def coerce(spec: ParamSpec, text: Any, arg: str | None = None) -> Any:
    """A launch-argument string (or value) as the parameter's type; raises ConfigError with a one-line
    reason naming the launch argument `arg` (default: the parameter's name)."""
    given = f"{arg or spec.name}:={text}"
    if not isinstance(text, str) or isinstance(spec.default, str):
        value = text
    elif isinstance(spec.default, bool):
        low = text.strip().lower()
        if low not in ("true", "false", "1", "0", "on", "off", "yes", "no"):
            raise ConfigError(f"{given} is not {_ARG_TYPE_NAMES[bool]}")
        value = low in ("true", "1", "on", "yes")
    else:
        try:
            value = type(spec.default)(text.strip())
        except ValueError:
            raise ConfigError(f"{given} is not {_ARG_TYPE_NAMES[type(spec.default)]}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{given} is not a finite number")
    problem = spec.check(value)
    if problem:
        lo_hi = f"[{spec.range[0]:g}, {spec.range[1]:g}]" if spec.range is not None else ""
        raise ConfigError(f"{given} is outside {lo_hi}" if lo_hi and "outside" in problem else problem)
    return value


def follow_dynamic_parameters(
    node: Node, specs: Sequence[ParamSpec], values: dict[str, Any],
    validate: Callable[[dict[str, Any]], str | None] | None = None,
    applied: Callable[[set[str]], None] | None = None,
) -> None:
    """Keep `values` (as returned by declare_parameters) up to date with `ros2 param set` on the dynamic
    parameters of `specs`, each checked like at startup (rclpy also enforces the descriptor: read-only,
    type, range); a bad value is rejected with the reason and the old value kept.

    `validate(prospective values)` may refuse a combination (a reason, or None); `applied(names)` runs
    after `values` took the new ones (the node rebuilds what depends on them)."""
    dynamic = {spec.name: spec for spec in specs if spec.dynamic}

    def new_value(prm: Any) -> Any:
        return tuple(prm.value or ()) if isinstance(dynamic[prm.name].default, tuple) else prm.value

    def check(params: list[Any]) -> SetParametersResult:
        for prm in params:
            spec = dynamic.get(prm.name)
            problem = spec.check(prm.value) if spec is not None else None
            if problem:
                return SetParametersResult(successful=False, reason=problem)
        if validate is not None:
            problem = validate({**values, **{p.name: new_value(p) for p in params if p.name in dynamic}})
            if problem:
                return SetParametersResult(successful=False, reason=problem)
        return SetParametersResult(successful=True)

    def apply(params: list[Any]) -> None:
        changed = set()
        for prm in params:
            if prm.name in dynamic:
                values[prm.name] = new_value(prm)
                changed.add(prm.name)
        if changed and applied is not None:
            applied(changed)

    node.add_on_set_parameters_callback(check)
    node.add_post_set_parameters_callback(apply)


def declare_parameters(node: Node, specs: Sequence[ParamSpec]) -> dict[str, Any]:
    """Declare `specs` on `node` (with descriptors) and return their values; ConfigError lists every
    bad value, so the operator fixes the YAML once."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for spec in specs:
        try:
            default = Parameter.Type.DOUBLE_ARRAY if isinstance(spec.default, tuple) else spec.default
            value = node.declare_parameter(spec.name, default, spec.descriptor()).value
            if isinstance(spec.default, tuple):
                value = tuple(value or ())
        except InvalidParameterTypeException:
            problems.append(f"{spec.name} must be {_TYPE_NAMES[type(spec.default)]}")
            continue
        except InvalidParameterValueException as e:
            # rclpy only rejects declared values through the descriptor, i.e. the range
            if spec.range is not None:
                problems.append(f"{spec.name} is outside [{spec.range[0]}, {spec.range[1]}]")
            else:
                problems.append(f"{spec.name}: {e}")
            continue
        problem = spec.check(value)
        if problem:
            problems.append(problem)
        values[spec.name] = value
    if problems:
        raise ConfigError("invalid parameters: " + "; ".join(problems))
    return values
