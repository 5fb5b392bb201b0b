"""policy_node: the DMIL hierarchy driving the end effector, adapted on the robot from a few demos.

Control (single-threaded executor: state handling never races itself, and no per-callback thread
hand-off cost):
- trigger=state: act once per new complete state (joint_states, ee_pose, object_poses and goal with
  one stamp) the moment its last part arrives; the command carries the state's stamp.
- trigger=timer: act at `rate` Hz on the latest parts, each fresher than `state_timeout`.
- watchdog (both): enabled and no complete state for `state_timeout` -> zero velocity, with the reason
  (only the reason while no state part was ever received: nothing was commanded yet), for at most
  `stale_zero_duration`; then nothing is published until a state comes back, so a driver or MoveIt
  Servo sees the command stream stop and its own timeout halts the arm. No gripper command is sent
  meanwhile: the gripper holds its last command (opening or closing it blind could drop the object).
  Against a lock-step sim (episode_info says lock_step) the watchdog and disabling publish no zero
  twist: such a sim holds still without commands, and would take any twist as the command for its
  current state, i.e. step the episode with a velocity the policy never chose for it.
- speed limits: the norm of the commanded linear velocity is clamped to `max_linear_speed` (direction
  kept), the angular one's to `max_angular_speed`.
- a state older than the current episode's first state (episode_info start_ns) is a leftover of the
  previous episode (a reset raced the enable) and is not acted on.
A task the node cannot map (not a task of `env`) is refused at start (exit 2); named on the latched
`task` topic, it stops the policy driving (zero commands, adaptation refused) until a known one comes.
A state that cannot be used (wrong-length/NaN joint states, missing object poses, a position outside
the workspace box or a joint beyond max_joint_position (dmil_ros/ros/workspace.py), a stamp further
than max_clock_skew from the node's clock, ...) is refused:
zero velocity, the reason logged and published on dmil/policy/status; the node never crashes on data.
Outputs: twist + gripper command (gripper first: a lock-step sim steps on the twist), the active
sub-skill (Int32) and the sub-skill probabilities (Float32MultiArray). With env=kitchen the command
is one JointState of joint velocities on dmil/policy/joint_velocity_cmd instead, and the observation
is the kitchen's (dmil_ros/ros/embodiment.py); the default checkpoint is then kitchen/no_top_burner.

Adaptation (dmil/policy/adapt, Trigger): an async service callback hands the work to a worker
process (dmil_ros/ros/adapt_worker.py; spawned at the first adaptation, reused; niced, `adapt_threads`
torch threads): the newest `max_demos` demos of the current task from <demo_dir>/<task>/ ->
core.adaptation.adapt, starting from the loaded (meta-learned) hierarchy. The control loop keeps
acting with the old hierarchy meanwhile, without sharing the GIL with the adaptation; progress goes
out on dmil/policy/status ("adapting to <task>: step i/N, loss L", at most twice a second). An
accepted result is swapped in on the executor thread with one reference assignment (atomic between
two control steps); a diverged, refused or failed one (a worker that died included) keeps the old
hierarchy, with the reason. A second request while one runs is refused. A task switch reverts to the
loaded hierarchy.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from typing import Any

import numpy as np
import torch
from geometry_msgs.msg import TwistStamped
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.task import Future
from std_msgs.msg import Float32MultiArray, Float64, Int32, String
from std_srvs.srv import SetBool, Trigger

from dmil_ros.core.checkpoint import CheckpointError, load_checkpoint
from dmil_ros.core.config import AdaptConfig
from dmil_ros.core.hierarchy import Hierarchy, ObservationError
from dmil_ros.envs.base import RobotState
from dmil_ros.ros import interfaces as itf
from dmil_ros.ros.actor import Actor
from dmil_ros.ros.adapt_worker import AdaptJob, AdaptWorker, hierarchy_from
from dmil_ros.ros.checkpoint_path import resolve_checkpoint
from dmil_ros.ros.embodiment import embodiment_for
from dmil_ros.ros.mcap_io import DemoFileError, check_recorded_task, list_demos, task_dir
from dmil_ros.ros.observation import ObservationMapping, StateError, hold_orientation, unit_quaternion
from dmil_ros.ros.realtime import normal_priority, set_realtime_priority
from dmil_ros.ros.runner import run_node
from dmil_ros.ros.state_sync import StateSet, StateSync
from dmil_ros.ros.workspace import Workspace, workspace_from_params

NAME = "policy_node"
PRESTART_DELAY = 5.0  # [s] after start-up, the adaptation worker starts (prestart_adapt_worker)


def load_policy(param: str, env: str = "metaworld") -> tuple[Hierarchy, str, AdaptConfig]:
    """Load and check the checkpoint named by the `checkpoint` parameter ('' : `env`'s shipped one);
    ConfigError says why not. Also returns the adaptation settings the hierarchy was meta-trained for
    (defaults without)."""
    emb = embodiment_for(env)
    directory = resolve_checkpoint(param, env)
    try:
        hierarchy, dmil_cfg, _ = load_checkpoint(directory)
    except CheckpointError as e:
        raise itf.ConfigError(f"cannot load checkpoint: {e}") from e
    cfg = hierarchy.config
    if (cfg.obs_dim, cfg.action_dim) != (emb.obs_dim, emb.action_dim):
        raise itf.ConfigError(
            f"checkpoint {directory} maps {cfg.obs_dim}-dim observations to {cfg.action_dim}-dim actions, "
            f"but the {emb.name} mapping gives {emb.obs_dim} -> {emb.action_dim}; "
            "wrong checkpoint for this env")
    return hierarchy, str(directory), dmil_cfg.adapt if dmil_cfg is not None else AdaptConfig()


def adapt_config(base: AdaptConfig, steps: int, lr: float) -> AdaptConfig:
    """The checkpoint's adapt config with the node's overrides (-1 steps / 0 lr: keep the checkpoint's)."""
    if steps >= 0:
        base = dataclasses.replace(base, steps=steps)
    if lr > 0:  # one step size for both levels (older AdaptConfigs have no separate lr_high)
        both = {"lr_high": None} if "lr_high" in {f.name for f in dataclasses.fields(base)} else {}
        base = dataclasses.replace(base, lr=lr, **both)
    return base


class PolicyNode(Node):
    def __init__(self, **node_kwargs: Any) -> None:
        """`node_kwargs` go to rclpy's Node (context, parameter_overrides, ...: in-process tests)."""
        super().__init__(NAME, **node_kwargs)
        self.p = itf.declare_parameters(self, itf.POLICY_PARAMS)
        # `ros2 param set` on the dynamic ones (speed limits, timeouts, workspace, adaptation budget,
        # enabled, ...): checked, applied by _params_changed
        itf.follow_dynamic_parameters(self, itf.POLICY_PARAMS, self.p, self._check_params,
                                      self._params_changed)
        torch.set_num_threads(self.p["torch_threads"])
        self._blas_limits = _limit_blas_threads(self.p["torch_threads"])
        self._emb = embodiment_for(self.p["env"])  # observation + command mapping of the env family
        self._base, self._checkpoint, self._trained_adapt = load_policy(self.p["checkpoint"], self.p["env"])
        self._adapt_cfg = adapt_config(self._trained_adapt, self.p["adapt_steps"], self.p["adapt_lr"])
        self._base_actor = Actor(self._base)
        self._actors: dict[int, Actor] = {}
        self._hierarchy = self._base  # swapped by reference: the control loop reads it once per cycle
        self._actor.act(np.zeros(self._emb.obs_dim, np.float32))  # warm-up: the first call allocates
        self._adapted_for: str | None = None
        self._task: str = self.p["task"]
        self._mapping = self._make_mapping(self._task)  # ConfigError (refuse to start) for an unknown task
        self._task_error = ""  # set while the latched `task` topic names a task this node cannot map
        self._builder = self._emb.builder(self._mapping)
        self._workspace = self._make_workspace()
        self._sync = StateSync()
        self._enabled = bool(self.p["enabled"])
        self._last_acted: int | None = None
        self._last_complete = -math.inf
        self._last_command: tuple[Float64 | None, TwistStamped] | None = None
        self._last_sent = -math.inf
        self._stale_since: float | None = None  # when the watchdog began sending zeros (stale state)
        self._hold_reference: np.ndarray | None = None  # ee orientation (xyzw) at the episode's first state
        self._episode: int | None = None
        self._episode_start = 0  # stamp [ns] of the current episode's first state (episode_info)
        self._lock_step = False  # the sim steps once per command (episode_info)
        self._status = ""
        self._control_status = ""  # what the control loop last reported (progress lines aside)
        self._last_reason = ""
        self._adapting = False  # only touched on the executor thread
        # Adaptation runs in a worker process (dmil_ros/ros/adapt_worker.py), started at the first one.
        self._adapt_worker = AdaptWorker(self.p["adapt_threads"], self._on_adapt_progress)
        self._job = 0
        self._adapting_task = ""
        self._progress: tuple[str, int, int, float] | None = None
        self._progress_wake = self.create_guard_condition(self._publish_progress)
        if self.p["prestart_adapt_worker"]:  # a little later: not while the rest of the graph starts up
            self._prestart_timer = self.create_timer(PRESTART_DELAY, self._prestart_worker)

        # Everything runs on one executor thread (rclpy's multi-threaded executor costs milliseconds per
        # callback); only the adapt service is reentrant, so a second request is answered while the
        # first one's coroutine waits for its worker thread.
        adapting = ReentrantCallbackGroup()
        itf.subscribe_robot_state(self, self.p["state_reliability"], self._on_part, self._on_task,
                                  self._on_episode)
        # _pub_twist: the embodiment's command (metaworld: the twist; kitchen: the joint-velocity JointState,
        # and then no gripper command is ever sent)
        self._pub_twist, self._pub_gripper, self._pub_skill, self._pub_probs, self._pub_status = (
            self.create_publisher(spec.msg_type, spec.name, spec.qos)
            for spec in (self._emb.policy_command, itf.POLICY_GRIPPER, itf.SKILL, itf.SKILL_PROBS,
                         itf.POLICY_STATUS))
        # timer mode: the control loop; state mode: only the watchdog, a few checks per timeout suffice
        self._timer = self.create_timer(self._tick_period(), self._tick)
        self.create_service(SetBool, itf.POLICY_ENABLE.name, self._on_enable)
        self.create_service(Trigger, itf.POLICY_REVERT.name, self._on_revert)
        self.create_service(Trigger, itf.POLICY_ADAPT.name, self._on_adapt, callback_group=adapting)
        self._set_status("driving" if self._enabled else "disabled")
        cfg = self._base.config
        self.get_logger().info(
            f"loaded {self._checkpoint} ({cfg.num_skills} sub-skills, hidden {list(cfg.hidden_sizes)}); "
            f"task {self._task}, trigger={self.p['trigger']}, {'enabled' if self._enabled else 'disabled'}")
        priority = self.p["realtime_priority"]
        if priority > 0:
            problem = set_realtime_priority(priority)
            if problem:
                self.get_logger().warning(f"realtime_priority {priority} not set: {problem}")
            else:
                self.get_logger().info(f"threads run SCHED_FIFO at priority {priority}")

    # The control loop acts through an Actor (the weights copied into numpy, dmil_ros/ros/actor.py: a
    # third of Hierarchy.act's time for one state); assigning _hierarchy swaps the actor with it, one
    # prepared off the control thread (_adapt) when there is one.
    @property
    def _hierarchy(self) -> Hierarchy:
        return self._actor.hierarchy

    @_hierarchy.setter
    def _hierarchy(self, hierarchy: Hierarchy) -> None:
        actor = self._base_actor if hierarchy is self._base else self._actors.get(id(hierarchy))
        self._actor = actor if actor is not None and actor.hierarchy is hierarchy else Actor(hierarchy)
        self._actors = {}

    def _tick_period(self) -> float:
        """timer mode: the control loop's; state mode: only the watchdog's, a few checks per timeout."""
        period = 1.0 / self.p["rate"]
        return max(period, self.p["state_timeout"] / 5) if self.p["trigger"] == "state" else period

    def _check_params(self, values: dict[str, Any]) -> str | None:
        """Combinations a single parameter's range cannot rule out (the workspace box)."""
        try:
            workspace_from_params(self._emb.workspace, values["workspace_min"], values["workspace_max"],
                                  values["max_joint_position"])
        except ValueError as e:
            return str(e)
        return None

    def _params_changed(self, names: set[str]) -> None:
        """Runs on the executor thread after `ros2 param set`: rebuild what depends on the new values."""
        if names & {"workspace_min", "workspace_max", "max_joint_position"}:
            self._workspace = self._make_workspace()
        if names & {"adapt_steps", "adapt_lr"}:
            self._adapt_cfg = adapt_config(self._trained_adapt, self.p["adapt_steps"], self.p["adapt_lr"])
        if "state_timeout" in names:
            self._timer.timer_period_ns = int(self._tick_period() * 1e9)
        if "enabled" in names:
            self._apply_enabled(bool(self.p["enabled"]))
        self.get_logger().info("parameters set: " + ", ".join(f"{n}={self.p[n]!r}" for n in sorted(names)))

    def _make_workspace(self) -> Workspace:
        try:
            p = self.p
            return workspace_from_params(self._emb.workspace, p["workspace_min"], p["workspace_max"],
                                         p["max_joint_position"])
        except ValueError as e:
            raise itf.ConfigError(str(e)) from None

    def _check_stamp(self, stamp: int) -> None:
        """StateError for a state stamped too far from this node's clock (max_clock_skew; 0: off)."""
        skew = self.p["max_clock_skew"]
        if skew <= 0:
            return
        ahead = (stamp - self.get_clock().now().nanoseconds) * 1e-9
        if ahead > skew:
            raise StateError(f"state stamped in the future of this node's clock by more than max_clock_skew "
                             f"({skew:g} s): clocks not synchronised?")
        # A lock-step sim holds its state (and its stamp) until it gets a command: age means nothing there.
        if -ahead > skew and not self._lock_step:
            raise StateError(f"state stamped longer ago than max_clock_skew ({skew:g} s): clocks not "
                             "synchronised, or the state is stale")

    def _make_mapping(self, task: str) -> ObservationMapping:
        return self._emb.mapping(task, self.p["gripper_joint"], self.p["gripper_scale"],
                                 self.p["expected_joint_count"], action_speed=self.p["action_speed"])

    # --- control ------------------------------------------------------------------------------
    def _on_part(self, role: str, msg: Any) -> None:
        now = time.monotonic()
        self._sync.update(role, msg, now)
        if self.p["trigger"] != "state":
            return
        state = self._sync.exact()
        if state is None or state.stamp_ns < self._episode_start:
            return
        self._last_complete = now
        if not self._enabled:
            return
        if state.stamp_ns != self._last_acted:
            self._last_acted = state.stamp_ns
            self._act(state, msg.header.stamp)
        elif now - self._last_sent >= itf.RESEND_PERIOD:
            self._resend()  # same state again (heartbeat): a waiting lock-step sim lost our command

    def _tick(self) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        timeout = self.p["state_timeout"]
        if self.p["trigger"] == "timer":
            state = self._sync.latest(now, timeout)
            if state is not None:
                self._act(state, self.get_clock().now().to_msg())
                return
        elif now - self._last_complete <= timeout:
            return
        problem = self._sync.problem(now, timeout, exact=self.p["trigger"] == "state")
        self._builder.reset()  # continuity is broken: the next good state starts a new sequence
        reason = problem or f"stale state: no complete state within {timeout:.3g} s"
        # No zero twist to a lock-step sim, nor before anything was heard from the robot (the timer can
        # fire before the first messages are taken, and it never commanded anything yet anyway).
        command = self._sync.received_any and not self._lock_step
        if command:
            # Zeros for stale_zero_duration, then silence: a driver/Servo must see the stream stop
            # (its own timeout halts the arm) rather than a live stream of zeros forever.
            if self._stale_since is None:
                self._stale_since = now
            if now - self._stale_since > self.p["stale_zero_duration"]:
                command = False
                reason += f"; command stream stopped after {self.p['stale_zero_duration']:.3g} s of zeros"
        self._refuse(reason, command=command)

    def _act(self, state: StateSet, stamp: Any) -> None:
        if self._task_error:
            self._refuse(self._task_error, stamp)
            return
        try:
            self._check_stamp(state.stamp_ns)
            robot = self._emb.robot_state_from_msgs(self._mapping, state.joints, state.ee, state.objects,
                                                    state.goal)
            self._workspace.check(robot)
            obs = self._builder.observe(robot)
            action, skill, probs = self._actor.act(obs)
            if not np.isfinite(action).all():
                raise StateError("the policy produced a non-finite action")
            angular = self._angular_velocity(robot)
        except (StateError, ObservationError) as e:
            self._builder.reset()
            self._refuse(str(e), stamp)
            return
        twist, gripper = self._emb.action_to_command(action, stamp, self.p["frame_id"],
                                                     self.p["max_linear_speed"], self.p["max_angular_speed"],
                                                     action_speed=self.p["action_speed"],
                                                     angular=angular)
        self._send(gripper, twist)
        self._stale_since = None
        self._pub_skill.publish(Int32(data=int(skill)))
        self._pub_probs.publish(Float32MultiArray(data=[float(v) for v in probs]))
        self._last_reason = ""
        self._set_status("driving")

    def _angular_velocity(self, robot: RobotState) -> np.ndarray | None:
        """orientation_hold_gain > 0: back to the orientation at the episode's (or enable's) first state."""
        if self.p["orientation_hold_gain"] <= 0.0:
            return None
        current = unit_quaternion(robot.ee_orientation, "ee_pose")  # a refused one is never the reference
        if self._hold_reference is None:
            self._hold_reference = current
        return hold_orientation(self._hold_reference, current, self.p["orientation_hold_gain"])

    def _send(self, gripper: Float64 | None, twist: TwistStamped) -> None:
        if gripper is not None:
            self._pub_gripper.publish(gripper)
        self._pub_twist.publish(twist)
        self._last_command = (gripper, twist)
        self._last_sent = time.monotonic()

    def _resend(self) -> None:
        if self._last_command is not None:
            self._send(*self._last_command)

    def _refuse(self, reason: str, stamp: Any = None, command: bool = True) -> None:
        if command:
            self._send(None, self._emb.zero_command(stamp or self.get_clock().now().to_msg(),
                                                    self.p["frame_id"]))
        if reason != self._last_reason:
            self.get_logger().warning(f"refusing to drive (zero velocity): {reason}")
            self._last_reason = reason
        else:
            self.get_logger().warning(f"still refusing: {reason}", throttle_duration_sec=5.0)
        self._set_status(f"refusing: {reason}")

    def _set_status(self, status: str) -> None:
        self._control_status = status
        if status != self._status:
            self._status = status
            self._pub_status.publish(String(data=status))

    # --- task / episode -----------------------------------------------------------------------
    def _on_task(self, msg: String) -> None:
        if msg.data == self._task:
            return
        reverted = self._adapted_for is not None
        self._hierarchy, self._adapted_for = self._base, None
        self._task = msg.data
        try:
            mapping = self._make_mapping(self._task)
        except itf.ConfigError as e:  # not a task of `env`: refuse to drive until a known one comes
            self._task_error = f"cannot drive task {self._task!r}: {e}"
            self.get_logger().error(self._task_error)
            return
        self._task_error = ""
        self._mapping, self._builder = mapping, self._emb.builder(mapping)
        note = "; back to the loaded hierarchy" if reverted else ""
        self.get_logger().info(f"task is now {self._task}{note}")

    def _on_episode(self, msg: String) -> None:
        info = itf.parse_episode_info(msg.data)
        if info is None:
            return
        self._lock_step = bool(info.get("lock_step", False))
        episode, start = info["episode"], info["start_ns"]
        if episode != self._episode or start != self._episode_start:  # (a task switch restarts at 0)
            self._episode, self._episode_start = episode, start
            self._builder.reset()
            self._hold_reference = None

    # --- services -----------------------------------------------------------------------------
    def _on_enable(self, req: SetBool.Request, res: SetBool.Response) -> SetBool.Response:
        """The `enabled` parameter set through a service: one path for both (_apply_enabled)."""
        result = self.set_parameters([Parameter("enabled", value=bool(req.data))])[0]
        adapted = f"adapted to {self._adapted_for}" if self._adapted_for else "not adapted"
        res.success = result.successful
        res.message = (f"policy {'enabled' if self._enabled else 'disabled'} ({self._checkpoint}, {adapted})"
                       if result.successful else result.reason)
        self.get_logger().info(res.message)
        return res

    def _apply_enabled(self, enabled: bool) -> None:
        self._enabled = enabled
        if self._enabled:
            self._builder.reset()
            self._hold_reference = None
            self._last_acted = None
            self._stale_since = None  # a stale period before is over: zeros again first
            self._last_reason = ""
            self._set_status("driving")
            state = self._sync.exact() if self.p["trigger"] == "state" else None
            if state is not None and state.stamp_ns >= self._episode_start and \
                    time.monotonic() - self._last_complete <= self.p["state_timeout"]:
                self._last_acted = state.stamp_ns
                self._act(state, state.joints.header.stamp)  # a lock-step sim waits for this command
        else:
            if not self._lock_step:  # a lock-step sim would step on it (see the module docstring)
                self._send(None, self._emb.zero_command(self.get_clock().now().to_msg(), self.p["frame_id"]))
            self._last_command = None
            self._set_status("disabled")

    def _on_revert(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        self._hierarchy, self._adapted_for = self._base, None
        res.success, res.message = True, f"back to the loaded hierarchy {self._checkpoint}"
        return res

    async def _on_adapt(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        """Runs as a coroutine on the executor thread; the work happens in a worker thread meanwhile."""
        if self._adapting:
            res.success, res.message = False, "adaptation already running; try again when it has finished"
            self.get_logger().warning(res.message)
            return res
        if self._task_error:
            res.success, res.message = False, self._task_error
            self.get_logger().warning(res.message)
            return res
        self._adapting = True
        task, mapping = self._task, self._mapping
        self._adapting_task, self._progress = task, None
        done: Future = Future()
        wake = self.create_guard_condition(lambda: None)  # wakes the executor when the worker is done

        def work() -> None:
            normal_priority()  # seconds of CPU: never at the control loop's real-time priority
            try:
                outcome = self._adapt(task, mapping)
            except Exception as e:  # the service must answer whatever goes wrong
                outcome = (False, f"adaptation failed: {type(e).__name__}: {e}", None)
            done.set_result(outcome)
            wake.trigger()

        threading.Thread(target=work, name="dmil-adapt", daemon=True).start()
        try:
            ok, message, hierarchy = await done
            self._publish_progress()  # the last step's line (the worker forwards it before its result)
        finally:
            self._adapting = False
            self.destroy_guard_condition(wake)
        if ok and task != self._task:
            ok, message = False, f"task changed to {self._task} while adapting to {task}; result discarded"
        if ok:
            # Back on the executor thread, between two control steps: the swap is one assignment.
            self._hierarchy, self._adapted_for = hierarchy, task
            self.get_logger().info(message)
        else:
            self.get_logger().error(message)
        self._set_status(self._control_status)  # the progress lines are over
        res.success, res.message = ok, message
        return res

    def _adapt(self, task: str, mapping: ObservationMapping) -> tuple[bool, str, Hierarchy | None]:
        """Helper thread: hand the job to the worker process and wait (never touches control state)."""
        paths = list_demos(self.p["demo_dir"], task)[-int(self.p["max_demos"]):]
        if not paths:
            where = task_dir(self.p["demo_dir"], task)
            return False, f"no demos of task {task} in {where}; record some first", None
        try:  # cheap (the files' metadata): a wrong or corrupt demo is refused without the worker
            for path in paths:
                check_recorded_task(path, task)
        except DemoFileError as e:
            return False, f"cannot adapt to {task}: {e}", None
        self._job += 1
        job = AdaptJob(self._job, self._base, tuple(paths), mapping, self._adapt_cfg)
        outcome = self._adapt_worker.run(job)
        if not outcome.ok or outcome.params is None:
            return False, outcome.message, None
        hierarchy = hierarchy_from(self._base, outcome.params)
        self._actors[id(hierarchy)] = Actor(hierarchy)  # weights copied off the control thread
        return True, outcome.message, hierarchy

    def _on_adapt_progress(self, job: int, step: int, steps: int, loss: float) -> None:
        """Progress thread: keep the latest, let the executor thread publish it."""
        self._progress = (self._adapting_task, step, steps, loss)
        self._progress_wake.trigger()

    def _publish_progress(self) -> None:
        """Executor thread: a progress line on the status topic (the control status, republished at
        its next change and after the adaptation, stays what _set_status last said)."""
        if self._progress is not None and self._adapting:
            task, step, steps, loss = self._progress
            line = f"adapting to {task}: step {step}/{steps}, loss {loss:.4g}"
            if line != self._status:
                self._status = line
                self._pub_status.publish(String(data=line))

    def _prestart_worker(self) -> None:
        self.destroy_timer(self._prestart_timer)
        self._adapt_worker.prestart()

    def close(self) -> None:
        self._adapt_worker.close()


def _limit_blas_threads(threads: int) -> object | None:
    """numpy's BLAS (the Actor's matrix-vector products) to `threads` threads: OpenBLAS splits a 512 x 512
    product over every core, and waking those threads costs more than the product for one state."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # (installed with scikit-learn) without it BLAS keeps its default
        return None
    return threadpool_limits(limits=threads, user_api="blas")


def main(argv: list[str] | None = None) -> int:
    return run_node(NAME, PolicyNode, argv)


if __name__ == "__main__":
    raise SystemExit(main())
