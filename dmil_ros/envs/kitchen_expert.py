"""Scripted Franka Kitchen expert that sees only the 30-dim observation (see `kitchen_env`).

It loads its own copy of the kitchen MuJoCo model, writes the observation into qpos, runs
`mj_forward` and then does resolved-rate control: a desired end-effector (`end_effector` site) twist
towards a waypoint pose becomes joint velocities through damped-least-squares Jacobian IK with a
null-space pull towards the start posture. Because the env turns a velocity into a position target
for stiff-but-sagging position actuators, the action also carries a gravity/damping feed-forward
(`qfrc_bias / kp`), otherwise the arm would droop ~7 mm per step at zero action.

Each sub-task is a short phase machine (approach, grasp or push, drive the object joint, release,
back off, return to the start posture). Articulated objects are driven by moving the grasp pose
along the object's own joint: the waypoint is the grasp pose designed at joint value 0, rotated
about the joint axis (or shifted along it) to a target value a little ahead of the observed one, so
the controller stays closed-loop on the object state and recovers from perturbations (if the hand
loses the handle it goes back to the approach). The expert is deterministic; `reset()` restarts it.

The demonstrations exist to be cloned by a policy that sees only the observation, so the phase
machine avoids what a regressor cannot copy: states where the expert pauses and then acts differently
with nothing observable changed (a regressor averages "wait" and "go" into a fixed point). So the hand
closes over the last CLOSE_WITHIN of a reach instead of in a pause at the handle; grasp and release
end on the observed finger opening, not on a step count; the hand never creeps (MIN_SPEED); a retreat
ends once clear of the handle, not at a back-off pose that joint limits often make unreachable; the
microwave is let go as soon as it counts as open (-0.47 rad), before the slow end of its arc; the
kettle is lowered towards a point below its release height. BC on 36 demos of one four-sub-task chain
(closed loop, 20 trials) completes 2.95 sub-tasks with this expert (docs/kitchen.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from dmil_ros.envs.kitchen_layout import ACTION_DIM, KETTLE_QPOS, OBS_DIM
from dmil_ros.envs.kitchen_tasks import SUBTASKS, parse_task

# Recorded in every kitchen demo file (dmil_ros/data/collect.py): collection refuses to add demos to a
# file another version wrote. Change it with any change that alters the demos the expert produces.
EXPERT_VERSION = "2026-12-01"

# gymnasium-robotics' start posture (KitchenEnv.init_qpos[:7]); also the null-space / home target.
HOME_ARM = np.array([0.148388, -1.768486, 1.843903, -2.476858, 0.260252, 0.712533, 1.595154])
# Null-space posture: the start posture with joint 2 moved off its lower limit.
NULL_POSTURE = HOME_ARM + np.array([0.0, 0.4, 0.0, 0.0, 0.0, 0.0, 0.0])
ARM = slice(0, 7)
OPEN, CLOSE = 1.0, -1.0
# Finger opening (obs[7] + obs[8], m): ~0.080 open; closed on a handle 0.042 (microwave) .. 0.070
# (light switch). Phases that close or open the hand end on these observed values, not on a step
# count, so a policy cloned from the expert can tell "closing" from "closed" by looking.
FINGERS_CLOSED_BELOW = 0.072
FINGERS_OPEN_ABOVE = 0.075
# Within this distance of the grasp pose the reach already closes the hand: near the handle the
# label is CLOSE on every state, instead of OPEN for the slow last centimetre and CLOSE for a few
# steps after (a regressor averages those to "open" and the clone never grasps).
CLOSE_WITHIN = 0.025
# Proportional control alone creeps over the last centimetres of a reach (0.04 m/s at 1 cm), and a
# clone of a creeping expert stalls there: the hand moves at least MIN_SPEED [m/s] while it is more
# than MIN_SPEED_FROM [m] from its waypoint (closer than that, plain proportional control holds it).
MIN_SPEED = 0.06
MIN_SPEED_FROM = 0.004
# A retreat ends once the hand is this far from the handle it let go of.
RETREAT_CLEAR = 0.06
# Gripper frames (columns = site x, y, z axes in world). Site z is the approach direction, site y
# the finger-spread direction. R_FWD: approach +y, fingers along world x (vertical bars, knob fins).
R_FWD = np.column_stack([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
# R_KETTLE: approach +y, fingers spread vertically (pinch the kettle's horizontal handle bar).
R_KETTLE = np.column_stack([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
KETTLE_GOAL = np.array([-0.23, 0.75, 1.62])


def kitchen_xml_path() -> Path:
    import gymnasium_robotics

    root = Path(gymnasium_robotics.__file__).parent
    return root / "envs/assets/kitchen_franka/kitchen_assets/kitchen_env_model.xml"


def _axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def _rot_error(r_des: np.ndarray, r: np.ndarray) -> np.ndarray:
    """World-frame rotation vector taking r to r_des."""
    e = r_des @ r.T
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, e.reshape(-1))
    if quat[0] < 0:
        quat = -quat
    vec = np.zeros(3)
    mujoco.mju_quat2Vel(vec, quat, 1.0)
    return vec


@dataclass(frozen=True)
class _Articulated:
    """A 1-dof object driven by a grasp (or push) pose that moves with the joint."""

    joint: str
    site: str  # handle / knob / lever site: the grasp pose is designed relative to it at q = 0
    offset: tuple[float, float, float]  # grasp site position - handle site position (world, q = 0)
    rot: np.ndarray  # gripper orientation at q = 0
    goal: float  # joint value to drive towards
    done_at: float  # sub-task treated as done once the joint is past this value
    grasp: bool  # close on the handle (True) or push with closed fingers (False)
    lead: float  # how far ahead of the observed joint value the target runs
    back: float = 0.10  # pre-grasp / retreat distance along -approach
    rot_follow: float = 1.0  # fraction of a hinge's rotation the gripper follows (it pivots on the bar)


_SPECS: dict[str, _Articulated] = {
    "microwave": _Articulated(
        "microwave", "microhandle_site", (0.0, 0.0, 0.0), R_FWD, -0.85, -0.47, True, 0.15, rot_follow=0.5
    ),
    "slide_cabinet": _Articulated(
        "slide_cabinet", "slide_site", (0.0, 0.01, 0.0), R_FWD, 0.36, 0.25, True, 0.08
    ),
    "hinge_cabinet": _Articulated(
        "right_hinge_cabinet", "hinge_site2", (0.0, 0.01, 0.0), R_FWD, 1.5, 1.25, True, 0.2, rot_follow=0.7
    ),
    "light_switch": _Articulated(
        "light_switch", "light_site", (0.0, 0.015, 0.0), R_FWD, -0.7, -0.5, True, 0.15
    ),
    "bottom_burner": _Articulated(
        "knob_Joint_2", "knob2_site", (0.0, -0.012, 0.0), R_FWD, -0.95, -0.75, True, 0.3
    ),
    "top_burner": _Articulated(
        "knob_Joint_4", "knob4_site", (0.0, -0.012, 0.0), R_FWD, -0.95, -0.75, True, 0.3
    ),
}


class KitchenExpert:
    """Deterministic closed-loop scripted expert for a chain of kitchen sub-tasks (in task order)."""

    def __init__(
        self,
        subtasks: Sequence[str] | str,
        *,
        control_dt: float = 0.08,
        pos_gain: float = 4.0,
        rot_gain: float = 3.0,
        max_speed: float = 0.4,
        max_ang_speed: float = 1.5,
        damping: float = 0.05,
    ) -> None:
        if isinstance(subtasks, str):
            subtasks = parse_task(subtasks)
        self.subtasks = parse_task("+".join(subtasks))
        self.model = mujoco.MjModel.from_xml_path(str(kitchen_xml_path()))
        self.data = mujoco.MjData(self.model)
        m = self.model
        self._dt = float(control_dt)
        self._kp_gain, self._kr_gain = pos_gain, rot_gain
        self._vmax, self._wmax, self._lambda = max_speed, max_ang_speed, damping
        self._ee = m.site("end_effector").id
        self._act_kp = m.actuator_gainprm[:7, 0].copy()
        self._dof_damping = m.dof_damping[:7].copy()
        # Effective arm limits: the model's joint ranges within franka_config.xml's position bounds.
        self._q_lo = np.maximum(m.jnt_range[:7, 0], [-2.9, -1.8, -2.9, -3.1, -2.9, 0.0, -2.9])
        self._q_hi = np.minimum(m.jnt_range[:7, 1], [2.9, 1.8, 2.9, 0.0, 2.9, 3.8, 2.9])
        # Joint anchors/axes and handle sites at the all-zero object configuration (the kitchen is
        # static, so these are constants).
        self.data.qpos[:] = 0.0
        self.data.qpos[:7] = HOME_ARM
        self.data.qpos[KETTLE_QPOS] = [-0.269, 0.35, 1.62, 1.0, 0.0, 0.0, 0.0]
        mujoco.mj_forward(m, self.data)
        self._joint: dict[str, tuple[int, int, np.ndarray, np.ndarray]] = {}
        self._site0: dict[str, np.ndarray] = {}
        for spec in _SPECS.values():
            j = m.joint(spec.joint).id
            self._joint[spec.joint] = (
                int(m.jnt_type[j]),
                int(m.jnt_qposadr[j]),
                self.data.xanchor[j].copy(),
                self.data.xaxis[j].copy(),
            )
            self._site0[spec.site] = self.data.site_xpos[m.site(spec.site).id].copy()
        self._kettle_site = m.site("kettle_site").id
        self.reset()

    # --- public ----------------------------------------------------------------------------------
    def reset(self) -> None:
        self._k = 0  # index of the current sub-task
        self._phase = 0
        self._phase_steps = 0
        self._retries = 0
        self.finished: list[str] = []

    @property
    def current(self) -> str | None:
        return self.subtasks[self._k] if self._k < len(self.subtasks) else None

    @property
    def phase(self) -> str:
        return self._phase_name

    def act(self, observation: np.ndarray) -> np.ndarray:
        obs = np.asarray(observation, dtype=np.float64).reshape(OBS_DIM)
        d = self.data
        d.qpos[:] = obs
        d.qvel[:] = 0.0
        mujoco.mj_forward(self.model, d)
        # A phase may end immediately; allow a few transitions per call, then act.
        for _ in range(4):
            cmd = self._plan(obs)
            if cmd is not None:
                break
        else:  # pragma: no cover - defensive
            cmd = ("joints", HOME_ARM, OPEN)
        self._phase_steps += 1
        return self._command(obs, cmd)

    # --- phase machine -------------------------------------------------------------------------
    def _next_phase(self, phase: int | None = None) -> None:
        self._phase = self._phase + 1 if phase is None else phase
        self._phase_steps = 0

    def _next_subtask(self) -> None:
        if self.current is not None:
            self.finished.append(self.current)
        self._k += 1
        self._retries = 0
        self._next_phase(0)

    def _plan(self, obs: np.ndarray):
        """The command for the current phase, or None after switching phase (re-plan)."""
        name = self.current
        if name is None:
            self._phase_name = "idle"
            return ("joints", HOME_ARM, OPEN)
        if name == "kettle":
            return self._plan_kettle(obs)
        return self._plan_articulated(obs, _SPECS[name])

    def _ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        d = self.data
        return d.site_xpos[self._ee].copy(), d.site_xmat[self._ee].reshape(3, 3).copy()

    def _at(self, pos: np.ndarray, rot: np.ndarray, tol: float, rtol: float = 0.12) -> bool:
        p, r = self._ee_pose()
        return np.linalg.norm(pos - p) < tol and np.linalg.norm(_rot_error(rot, r)) < rtol

    def _near(self, pos: np.ndarray, dist: float) -> bool:
        return float(np.linalg.norm(pos - self._ee_pose()[0])) < dist

    @staticmethod
    def _fingers_closed(obs: np.ndarray) -> bool:
        return float(obs[7] + obs[8]) < FINGERS_CLOSED_BELOW

    @staticmethod
    def _fingers_open(obs: np.ndarray) -> bool:
        return float(obs[7] + obs[8]) > FINGERS_OPEN_ABOVE

    def _home_reached(self, obs: np.ndarray) -> bool:
        return float(np.max(np.abs(obs[ARM] - HOME_ARM))) < 0.15

    def _moved_pose(self, spec: _Articulated, q: float, back: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Grasp pose (q = 0 design, backed off by `back` along -approach) moved to joint value q."""
        jtype, _, anchor, axis = self._joint[spec.joint]
        p0 = self._site0[spec.site] + np.asarray(spec.offset) - back * spec.rot[:, 2]
        if jtype == mujoco.mjtJoint.mjJNT_SLIDE:
            return p0 + axis * q, spec.rot
        rot = _axis_angle(axis, q)
        return anchor + rot @ (p0 - anchor), _axis_angle(axis, spec.rot_follow * q) @ spec.rot

    def _plan_articulated(self, obs: np.ndarray, spec: _Articulated):
        _, adr, _, _ = self._joint[spec.joint]
        q = float(obs[adr])
        sign = np.sign(spec.goal)
        done = (q - spec.done_at) * sign >= 0
        grip = OPEN if spec.grasp else CLOSE
        ph, n = self._phase, self._phase_steps
        names = ("approach", "reach", "grasp", "drive", "release", "retreat", "home")
        self._phase_name = names[min(ph, len(names) - 1)]
        if ph == 0:  # approach: in front of the handle, gripper pre-shaped
            if done and n == 0:
                self._next_phase(6)  # already done (e.g. by an earlier sub-task): just go home
                return None
            pos, rot = self._moved_pose(spec, q, spec.back)
            if self._at(pos, rot, 0.02, 0.1) or n > 60:
                self._next_phase()
                return None
            return ("pose", pos, rot, grip)
        if ph == 1:  # reach the handle, closing the hand over the last CLOSE_WITHIN
            pos, rot = self._moved_pose(spec, q)
            if self._at(pos, rot, 0.01, 0.08) or n > 20:
                self._next_phase()
                return None
            return ("pose", pos, rot, CLOSE if self._near(pos, CLOSE_WITHIN) else grip)
        if ph == 2:  # close the fingers (a push closes them without an object between)
            pos, rot = self._moved_pose(spec, q)
            if not spec.grasp or self._fingers_closed(obs) or n >= 8:
                self._next_phase()
                return None
            return ("pose", pos, rot, CLOSE)
        if ph == 3:  # drive the joint towards the goal, a bounded lead ahead of the observation
            if done:
                self._next_phase()
                return None
            p_now, _ = self._moved_pose(spec, q)
            lost = np.linalg.norm(self._ee_pose()[0] - p_now) > 0.08
            if lost or n > 60:
                self._retries += 1
                if self._retries > 3:
                    self._next_phase(4)
                else:
                    self._next_phase(0)
                return None
            q_t = q + float(np.clip(spec.goal - q, -spec.lead, spec.lead))
            pos, rot = self._moved_pose(spec, q_t)
            return ("pose", pos, rot, CLOSE)
        if ph == 4:  # let go
            pos, rot = self._moved_pose(spec, q)
            if not spec.grasp or self._fingers_open(obs) or n >= 8:
                self._next_phase()
                return None
            return ("pose", pos, rot, OPEN)
        if ph == 5:  # back off along the approach axis, until clear of the handle (the full back-off
            # pose is often out of reach near joint limits: waiting for it left a 15-step hover)
            pos, rot = self._moved_pose(spec, q, spec.back)
            if not self._near(self._moved_pose(spec, q)[0], RETREAT_CLEAR) or n > 15:
                self._next_phase()
                return None
            return ("pose", pos, rot, OPEN)
        # ph == 6: return to the start posture, then the next sub-task
        if self._home_reached(obs) or n > 60:
            self._next_subtask()
            return None
        return ("joints", HOME_ARM, OPEN)

    def _plan_kettle(self, obs: np.ndarray):
        kettle = obs[KETTLE_QPOS][:3]
        handle = self.data.site_xpos[self._kettle_site].copy()
        p_ee, _ = self._ee_pose()
        ph, n = self._phase, self._phase_steps
        names = ("approach", "reach", "grasp", "lift", "carry", "lower", "release", "retreat", "home")
        self._phase_name = names[min(ph, len(names) - 1)]
        at_goal = np.linalg.norm(kettle[:2] - KETTLE_GOAL[:2]) < 0.06
        lifted_z = KETTLE_GOAL[2] + 0.15

        def carry_to(target: np.ndarray):
            # Move the hand by the kettle's position error: closed-loop on the kettle itself.
            step = target - kettle
            n_step = np.linalg.norm(step)
            if n_step > 0.05:  # slow carry: a fast swing lets the kettle pivot about the handle bar
                step *= 0.05 / n_step
            return ("pose", p_ee + step, R_KETTLE, CLOSE)

        back = np.array([0.0, 0.12, 0.0])
        if ph == 0:
            if n == 0 and at_goal and kettle[2] < KETTLE_GOAL[2] + 0.03:
                self._next_phase(8)
                return None
            pos = handle - back
            if self._at(pos, R_KETTLE, 0.02, 0.1) or n > 60:
                self._next_phase()
                return None
            return ("pose", pos, R_KETTLE, OPEN)
        if ph == 1:
            if self._at(handle, R_KETTLE, 0.01, 0.08) or n > 40:
                self._next_phase()
                return None
            return ("pose", handle, R_KETTLE, CLOSE if self._near(handle, CLOSE_WITHIN) else OPEN)
        if ph == 2:
            if self._fingers_closed(obs) or n >= 8:
                self._next_phase()
                return None
            return ("pose", handle, R_KETTLE, CLOSE)
        lost = np.linalg.norm(p_ee - handle) > 0.05
        if ph in (3, 4, 5) and lost:
            self._retries += 1
            self._next_phase(0 if self._retries <= 3 else 6)
            return None
        if ph == 3:  # lift straight up
            if kettle[2] > lifted_z - 0.02 or n > 30:
                self._next_phase()
                return None
            return carry_to(np.array([kettle[0], kettle[1], lifted_z]))
        if ph == 4:  # carry above the goal burner
            target = np.array([KETTLE_GOAL[0], KETTLE_GOAL[1], lifted_z])
            if np.linalg.norm(kettle[:2] - target[:2]) < 0.02 or n > 80:
                self._next_phase()
                return None
            return carry_to(target)
        if ph == 5:  # put it down, aiming 2 cm into the burner so the hand still moves when it lets go
            target = KETTLE_GOAL - np.array([0.0, 0.0, 0.02])
            if kettle[2] < KETTLE_GOAL[2] + 0.025 or n > 30:
                self._next_phase()
                return None
            return carry_to(target)
        if ph == 6:
            if self._fingers_open(obs) or n >= 8:
                self._next_phase()
                return None
            return ("pose", handle, R_KETTLE, OPEN)
        if ph == 7:
            pos = handle - back
            if not self._near(handle, RETREAT_CLEAR) or n > 15:
                self._next_phase()
                return None
            return ("pose", pos, R_KETTLE, OPEN)
        if self._home_reached(obs) or n > 60:
            self._next_subtask()
            return None
        return ("joints", HOME_ARM, OPEN)

    # --- low level -------------------------------------------------------------------------------
    def _command(self, obs: np.ndarray, cmd) -> np.ndarray:
        d = self.data
        q = obs[ARM]
        if cmd[0] == "joints":
            _, q_des, grip = cmd
            qdot = np.clip(3.0 * (q_des - q), -1.2, 1.2)
        else:
            _, pos, rot, grip = cmd
            p, r = self._ee_pose()
            v = self._kp_gain * (pos - p)
            w = self._kr_gain * _rot_error(rot, r)
            vn, wn = np.linalg.norm(v), np.linalg.norm(w)
            if vn > self._vmax:
                v *= self._vmax / vn
            elif MIN_SPEED_FROM * self._kp_gain < vn < MIN_SPEED:
                v *= MIN_SPEED / vn  # no slow creep over the last centimetres (see MIN_SPEED)
            if wn > self._wmax:
                w *= self._wmax / wn
            jacp = np.zeros((3, self.model.nv))
            jacr = np.zeros((3, self.model.nv))
            mujoco.mj_jacSite(self.model, d, jacp, jacr, self._ee)
            jac = np.vstack([jacp[:, ARM], jacr[:, ARM]])
            twist = np.concatenate([v, w])
            # Joints at a limit and pushed outwards are frozen and the IK re-solved without them
            # (the start posture already has joint 2 at its lower limit).
            free = np.ones(7, dtype=bool)
            for _ in range(3):
                jf = jac * free
                pinv = jf.T @ np.linalg.solve(jf @ jf.T + self._lambda**2 * np.eye(6), np.eye(6))
                qdot = pinv @ twist
                # Null-space pull towards a mid-range posture keeps the elbow/wrist away from limits.
                qdot += ((np.eye(7) - pinv @ jf) @ (0.5 * (NULL_POSTURE - q))) * free
                blocked = free & (
                    ((q <= self._q_lo + 0.02) & (qdot < 0)) | ((q >= self._q_hi - 0.02) & (qdot > 0))
                )
                if not blocked.any():
                    break
                free &= ~blocked
            qdot = np.clip(qdot * free, -1.5, 1.5)
        # Position target the env will set: q + 2 a dt. Add what the PD actuator needs to hold
        # gravity and overcome joint damping at the commanded speed.
        ff = (d.qfrc_bias[ARM] + self._dof_damping * qdot) / self._act_kp
        a = np.zeros(ACTION_DIM)
        a[ARM] = (qdot + ff / self._dt) / 2.0
        a[7:9] = grip
        return np.clip(a, -1.0, 1.0).astype(np.float32)


__all__ = ["KitchenExpert", "SUBTASKS", "kitchen_xml_path"]
