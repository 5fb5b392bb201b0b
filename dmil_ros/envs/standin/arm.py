"""A Meta-World scene whose Sawyer arm is driven through its joints, as a real arm behind ros2_control.

Meta-World moves the hand with a mocap weld (the hand is dragged to a target each step). Here the
weld is off between resets and the seven arm joints are position/velocity controlled in MuJoCo physics
instead: a joint-velocity command (from Servo) is integrated into a joint position reference, and
computed-torque control (inverse dynamics from the model's mass matrix, bias forces and damping, plus
PD feedback) tracks it through `qfrc_applied`, clipped to joint effort limits. Contacts, joint
limits, gravity and the objects answer as physics; nothing sets the hand pose.

Strength: Meta-World's scenes were built for the mocap, which pushes with several hundred newtons
(lifting lever-pull's lever took 400-550 N at the hand in the sim). With the Sawyer's own effort
limits (80/40/9 N m) and a softer joint controller, even the scripted expert fails lever-pull on this
arm (0/5 measured at 0.25 m/s, 50 ms latency). The defaults are therefore a stiff position-controlled
arm (joint tracking bandwidth 100 rad/s) with 10x the Sawyer's effort limits (`effort_scale`), as a
Meta-World-strength robot; set effort_scale 1 for the Sawyer's own limits.

Joint limits are the Sawyer's (intera sawyer_description URDF: position, velocity, effort). They
equal Meta-World's model except right_j1's upper limit: Meta-World's model stops it at -0.5 rad, and
its mocap-dragged arm rests against that stop after every reset (e.g. door-close-v3), which a
Servo margin check would refuse to move away from; the stand-in uses the robot's own 2.2736 rad.
The reset itself is Meta-World's (weld on, its own model limits), so initial scenes equal the sim's.

The gripper is Meta-World's: two finger position actuators, effort +1 closes. The driver reports the
finger travel from the gripper's centre line (half the distance between the claws, in metres), as a
Franka's panda_finger_joint1 does; opening = 2 * travel / 0.1 m (gripper_scale 20) is Meta-World's.
Success is Meta-World's own criterion (`evaluate_state`) on the current physics state.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from dmil_ros.envs.base import RobotState
from dmil_ros.envs.metaworld_env import MetaWorldEnv, state_from_observation, wxyz_to_xyzw

ARM_JOINTS = tuple(f"right_j{i}" for i in range(7))
_NO_POSITIONS, _NO_QUATS = np.zeros((0, 3)), np.zeros((0, 4))
# Sawyer URDF (intera sawyer_description): (lower, upper) [rad], velocity [rad/s], effort [N m].
JOINT_LOWER = np.array([-3.0503, -3.8095, -3.0426, -3.0439, -2.9761, -2.9761, -4.7124])
JOINT_UPPER = np.array([3.0503, 2.2736, 3.0426, 3.0439, 2.9761, 2.9761, 4.7124])
VELOCITY_LIMITS = np.array([1.74, 1.328, 1.957, 1.957, 3.485, 3.485, 4.545])
EFFORT_LIMITS = np.array([80.0, 80.0, 40.0, 40.0, 9.0, 9.0, 9.0])
BASE_FRAME = "base"  # the Sawyer's root link; MuJoCo's world frame coincides with it
EE_FRAME = "hand"  # the body whose position is the policy's hand position
HAND_QUAT_WXYZ = np.array([1.0, 0.0, 1.0, 0.0])  # Meta-World's mocap orientation (set_xyz_action)
GRIPPER_SCALE = 20.0  # opening = finger travel [m] * 20 (2 fingers / Meta-World's 0.1 m)


@dataclass(frozen=True)
class ArmState:
    q: np.ndarray  # (7,) rad
    qd: np.ndarray  # (7,) rad/s
    finger_travel: float  # m, each finger from the centre line


class SawyerScene:
    """One Meta-World v3 task with its Sawyer driven through joint velocities (see the module doc)."""

    def __init__(self, task: str, tracking_bandwidth: float = 100.0, effort_scale: float = 10.0) -> None:
        """`tracking_bandwidth` [rad/s]: of the joint controller (critically damped); `effort_scale`:
        multiplies the Sawyer's joint effort limits (see the module doc)."""
        if tracking_bandwidth <= 0 or effort_scale <= 0:
            raise ValueError("tracking_bandwidth and effort_scale must be positive")
        self.tracking_bandwidth = float(tracking_bandwidth)
        self.effort_scale = float(effort_scale)
        self.env = MetaWorldEnv(task, max_episode_steps=500)  # only its reset, scene and success are used
        raw = self.env.raw_env
        self.model, self.data = raw.model, raw.data
        m = self.model
        self._joint_ids = np.array([m.joint(n).id for n in ARM_JOINTS])
        self._qadr = np.array([m.jnt_qposadr[j] for j in self._joint_ids])
        self._dof = np.array([m.jnt_dofadr[j] for j in self._joint_ids])
        # The arm's joints are MuJoCo's first seven (qpos and dof): slices are cheaper than index arrays.
        if list(self._qadr) != list(range(7)) or list(self._dof) != list(range(7)):
            raise RuntimeError(f"{task}: the arm joints are not the model's first seven")
        self._qslice = self._arm = slice(0, 7)
        self._damping = m.dof_damping[self._arm].copy()
        self._implicit_damping = np.diag(m.opt.timestep * self._damping)
        self._effort = EFFORT_LIMITS * self.effort_scale
        self._steps = 0
        self._observed_at = -1
        self._observed = np.zeros(0)
        self._meta_world_range = m.jnt_range[self._joint_ids].copy()
        self._weld = [i for i in range(m.neq) if m.eq_type[i] == mujoco.mjtEq.mjEQ_WELD]
        self._hand = m.body(EE_FRAME).id
        self._claws = (m.body("rightclaw").id, m.body("leftclaw").id)
        self._scratch = mujoco.MjData(m)  # Jacobians at other joint positions (Servo's look-ahead)
        self._jacp, self._jacr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
        self._mass = np.zeros((m.nv, m.nv))
        self._q_ref = np.zeros(7)
        self._qd_ref = np.zeros(7)
        self._holding = True
        self._gripper = -1.0
        self.time = 0.0  # simulated seconds since the reset
        self.unstable = False  # MuJoCo diverged (NaN state); only a reset recovers

    @property
    def task(self) -> str:
        return self.env.task_name

    @property
    def timestep(self) -> float:
        return float(self.model.opt.timestep)

    # --- episode -------------------------------------------------------------------------------
    def reset(self, seed: int) -> None:
        """Meta-World's reset for `seed` (weld on, its own limits), then the arm is on its joints."""
        m, d = self.model, self.data
        m.jnt_range[self._joint_ids] = self._meta_world_range
        for i in self._weld:
            d.eq_active[i] = 1
        self.env.reset(seed)
        for i in self._weld:
            d.eq_active[i] = 0
        m.jnt_range[self._joint_ids] = np.stack([JOINT_LOWER, JOINT_UPPER], axis=1)
        self._home_orientation()
        d.qfrc_applied[:] = 0.0
        self._steps += 1  # the scene changed: observe it anew
        self._q_ref = d.qpos[self._qadr].copy()
        self._qd_ref = np.zeros(7)
        self._holding = True
        self._gripper = -1.0  # open, as after Meta-World's reset
        self.time = 0.0
        self.unstable = False
        mujoco.mj_forward(m, d)

    def _home_orientation(self) -> None:
        """Turn the hand to Meta-World's commanded orientation (gripper pointing down) at the same
        position: the weld leaves it a few degrees off, and a robot holds whatever it was homed to."""
        m, d = self.model, self.data
        target = np.zeros(9)
        mujoco.mju_quat2Mat(target, HAND_QUAT_WXYZ / np.linalg.norm(HAND_QUAT_WXYZ))
        target = target.reshape(3, 3)
        position = d.xpos[self._hand].copy()
        for _ in range(50):
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            rot = d.xmat[self._hand].reshape(3, 3)
            err_r = 0.5 * sum(np.cross(rot[:, i], target[:, i]) for i in range(3))
            err_p = position - d.xpos[self._hand]
            err = np.concatenate([err_p, err_r])
            if np.linalg.norm(err) < 1e-6:
                break
            mujoco.mj_jacBody(m, d, self._jacp, self._jacr, self._hand)
            jac = np.vstack([self._jacp[:, self._dof], self._jacr[:, self._dof]])
            d.qpos[self._qadr] += jac.T @ np.linalg.solve(jac @ jac.T + 1e-6 * np.eye(6), err)
        d.qvel[:] = 0.0
        mujoco.mj_forward(m, d)

    # --- driver interface ----------------------------------------------------------------------
    def command_joint_velocities(self, qd: np.ndarray) -> None:
        """Joint velocity command [rad/s] (zeros: hold the current reference)."""
        qd = np.asarray(qd, dtype=np.float64)
        moving = bool(np.any(qd != 0.0))
        if moving and self._holding:
            self._q_ref = self.data.qpos[self._qadr].copy()  # resume from where the arm is
        self._holding = not moving
        self._qd_ref = qd

    def command_gripper(self, effort: float) -> None:
        """Gripper effort in [-1, 1], +1 closes (Meta-World's actuator convention)."""
        self._gripper = float(np.clip(effort, -1.0, 1.0))

    def step(self) -> None:
        """One physics step: computed-torque tracking of the joint reference, then mj_step."""
        if self.unstable:
            return
        m, d, arm = self.model, self.data, self._arm
        dt = self.timestep
        q, qd = d.qpos[self._qslice], d.qvel[arm]
        self._q_ref = np.clip(self._q_ref + self._qd_ref * dt, JOINT_LOWER, JOINT_UPPER)
        w = self.tracking_bandwidth
        acc = w * w * (self._q_ref - q) + 2.0 * w * (self._qd_ref - qd)
        mujoco.mj_fullM(m, self._mass, d.qM)
        # Euler integrates joint damping implicitly: the effective inertia is M + dt * D.
        tau = (self._mass[arm, arm] + self._implicit_damping) @ acc + d.qfrc_bias[arm] + self._damping * qd
        d.qfrc_applied[arm] = np.clip(tau, -self._effort, self._effort)
        d.ctrl[0], d.ctrl[1] = self._gripper, -self._gripper
        mujoco.mj_step(m, d)
        self.time += dt
        self._steps += 1
        if not np.isfinite(d.qpos[0]) or not np.all(np.isfinite(d.qpos)):
            self.unstable = True

    # --- what the robot reports -----------------------------------------------------------------
    def arm_state(self) -> ArmState:
        d = self.data
        c0, c1 = (d.xpos[i] for i in self._claws)
        return ArmState(d.qpos[self._qslice].copy(), d.qvel[self._arm].copy(),
                        float(np.linalg.norm(c0 - c1)) / 2.0)

    def _observation(self) -> np.ndarray:
        """Meta-World's 39-dim observation of the current physics state (previous frame = current);
        computed once per physics step (its object orientations cost milliseconds)."""
        if self._observed_at != self._steps:
            raw = self.env.raw_env
            frame = raw._get_curr_obs_combined_no_goal()
            self._observed = np.concatenate([frame, frame, raw._get_pos_goal()])
            self._observed_at = self._steps
        return self._observed

    def robot_state(self) -> RobotState:
        """The true state, in the same mapping as MetaWorldEnv.robot_state (the sim bridge's)."""
        return state_from_observation(
            self._observation(), self.task, joint_names=ARM_JOINTS,
            joint_positions=self.data.qpos[self._qslice].copy(),
            ee_orientation=wxyz_to_xyzw(self.data.xquat[self._hand]))

    def driver_state(self, goal: np.ndarray) -> RobotState:
        """What the robot driver knows (joints, hand pose, gripper opening as Meta-World computes it),
        without objects: cheap enough for every driver cycle."""
        d = self.data
        opening = min(1.0, 2.0 * self.arm_state().finger_travel / 0.1)
        return RobotState(ARM_JOINTS, d.qpos[self._qslice].copy(), d.xpos[self._hand].copy(),
                          wxyz_to_xyzw(d.xquat[self._hand]), opening, _NO_POSITIONS, _NO_QUATS, goal)

    def success(self) -> bool:
        """Meta-World's success criterion of the task on the current physics state."""
        # (the criteria read the state; the action only enters Meta-World's reward shaping)
        action = np.array([0.0, 0.0, 0.0, self._gripper], dtype=np.float32)
        _, info = self.env.raw_env.evaluate_state(self._observation(), action)
        return bool(info["success"] > 0)

    # --- kinematics (what Servo asks the robot model) --------------------------------------------
    def jacobian(self, q: np.ndarray) -> np.ndarray:
        """(6, 7) Jacobian of the hand body at arm joint positions `q` (world = base frame)."""
        s = self._scratch
        s.qpos[:] = self.data.qpos
        s.qpos[self._qadr] = q
        mujoco.mj_kinematics(self.model, s)
        mujoco.mj_comPos(self.model, s)
        mujoco.mj_jacBody(self.model, s, self._jacp, self._jacr, self._hand)
        return np.vstack([self._jacp[:, self._dof], self._jacr[:, self._dof]])

    def frame_rotation(self, frame: str) -> np.ndarray | None:
        """Rotation base <- `frame` for the world, the base or any body of the model; None otherwise."""
        if frame == "world":
            return np.eye(3)
        try:
            body = self.model.body(frame).id
        except (KeyError, TypeError):  # no such body; a name MuJoCo cannot take (e.g. a lone surrogate)
            return None
        base = self.data.xmat[self.model.body(BASE_FRAME).id].reshape(3, 3)
        return base.T @ self.data.xmat[body].reshape(3, 3)

    def close(self) -> None:
        self.env.close()
