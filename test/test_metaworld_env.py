"""MetaWorldEnv: seeding, observation <-> RobotState mapping, action scaling, suites (real physics)."""

from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("metaworld")
# The scripted experts warn when their gain saturates; by design (pytest resets our global filter).
pytestmark = pytest.mark.filterwarnings("ignore:Constant\\(s\\) may be too high")

from dmil_ros.envs.base import ManipulationEnv  # noqa: E402
from dmil_ros.envs.metaworld_env import (  # noqa: E402
    ACTION_SCALE,
    CONTROL_DT,
    MetaWorldEnv,
    action_from_ee_velocity,
    ee_velocity_from_action,
    obs_quat_order,
    observation_from_state,
    state_from_observation,
    wxyz_to_xyzw,
)
from dmil_ros.envs.registry import available_tasks, make_env, suite_tasks  # noqa: E402


@pytest.fixture(scope="module")
def reach() -> MetaWorldEnv:
    env = MetaWorldEnv("reach-v3")
    yield env
    env.close()


def test_protocol_and_constants(reach: MetaWorldEnv) -> None:
    assert isinstance(reach, ManipulationEnv)
    assert (reach.obs_dim, reach.action_dim, reach.max_episode_steps) == (39, 4, 500)
    assert reach.control_dt == pytest.approx(CONTROL_DT)
    assert reach.action_scale == pytest.approx(ACTION_SCALE)


def test_same_seed_same_initial_state_different_seed_different(reach: MetaWorldEnv) -> None:
    a = reach.reset(1)
    for _ in range(5):  # history must not leak into the next reset
        reach.step(np.ones(4, np.float32))
    b = reach.reset(2)
    c = reach.reset(1)
    np.testing.assert_array_equal(a, c)
    assert not np.allclose(a, b)
    assert not np.allclose(a[36:39], b[36:39])  # goal moves with the seed
    assert a.dtype == np.float32 and a.shape == (39,)


def test_horizon_is_configurable() -> None:
    env = MetaWorldEnv("reach-v3", max_episode_steps=3)
    obs = env.reset(0)
    results = [env.step(env.expert_action(obs)) for _ in range(3)]
    assert [r.done for r in results] == [False, False, True]
    with pytest.raises(RuntimeError, match="episode over"):
        env.step(np.zeros(4, np.float32))
    env.close()


@pytest.mark.parametrize("task", ["reach-v3", "button-press-v3", "stick-push-v3"])
def test_observation_from_state_round_trips_env_observations(task: str) -> None:
    env = MetaWorldEnv(task)
    obs = env.reset(7)
    prev = env.robot_state()
    np.testing.assert_allclose(observation_from_state(prev, None, task=task), obs, atol=1e-5)
    for _ in range(25):
        obs = env.step(env.expert_action(obs)).observation
        cur = env.robot_state()
        # previous frame = the state one control step earlier
        np.testing.assert_allclose(observation_from_state(cur, prev, task=task), obs, atol=1e-5)
        prev = cur
    data = env.raw_env.data
    np.testing.assert_allclose(cur.ee_position, data.body("hand").xpos, atol=1e-6)
    np.testing.assert_allclose(cur.ee_orientation, wxyz_to_xyzw(data.body("hand").xquat), atol=1e-9)
    assert len(cur.joint_names) == len(cur.joint_positions) == 9  # 7 arm joints + 2 fingers
    assert cur.object_positions.shape == (len(obs_quat_order(task)), 3)
    if task == "button-press-v3":  # observation stores MuJoCo wxyz; RobotState must be xyzw
        np.testing.assert_allclose(
            cur.object_orientations[0], wxyz_to_xyzw(data.body("button").xquat), atol=1e-6
        )
    env.close()


def test_quat_order_table_matches_metaworld_sources() -> None:
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    for task, cls in ALL_V3_ENVIRONMENTS.items():
        src = inspect.getsource(cls._get_quat_objects)
        orders = obs_quat_order(task)
        n_objects = 2 if "hstack" in inspect.getsource(cls._get_pos_objects) else 1
        assert len(orders) == n_objects, task
        if "xquat" in src or "[1.0, 0.0, 0.0, 0.0]" in src:
            assert set(orders) == {"wxyz"}, task
        elif "as_quat" in src:
            assert orders[0] == "xyzw", task
        else:
            assert "zeros" in src and orders == ("none",), task


def test_unknown_task_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown Meta-World"):
        obs_quat_order("reach-v2")


def test_state_from_observation_previous_frame() -> None:
    obs = np.arange(39, dtype=np.float32)
    prev = state_from_observation(obs, "reach-v3", previous=True)
    np.testing.assert_array_equal(prev.ee_position, obs[18:21])
    np.testing.assert_array_equal(prev.object_orientations[0], obs[25:29])  # xyzw task: unchanged
    np.testing.assert_array_equal(prev.goal_position, obs[36:39])


def test_action_maps_to_mocap_displacement(reach: MetaWorldEnv) -> None:
    reach.reset(3)
    mocap = reach.raw_env.data.mocap_pos[0].copy()
    action = np.array([0.5, -0.25, 0.1, 1.0], np.float32)
    reach.step(action)
    np.testing.assert_allclose(reach.raw_env.data.mocap_pos[0] - mocap, action[:3] * ACTION_SCALE, atol=1e-9)
    lin, grip = reach.ee_velocity_from_action(action)
    np.testing.assert_allclose(lin, action[:3] * ACTION_SCALE / CONTROL_DT)
    assert grip == 1.0
    np.testing.assert_allclose(action_from_ee_velocity(*ee_velocity_from_action(action)), action, atol=1e-6)
    # saturation: commands beyond 0.8 m/s are clipped like the env clips actions
    assert action_from_ee_velocity(np.array([5.0, 0, 0]), -3.0).tolist() == [1.0, 0.0, 0.0, -1.0]


def test_expert_action_is_bounded(reach: MetaWorldEnv) -> None:
    obs = reach.reset(0)
    a = reach.expert_action(obs)
    assert a.shape == (4,) and a.dtype == np.float32
    assert np.all(np.abs(a) <= 1.0)


def test_suites() -> None:
    assert len(suite_tasks("ml10", "train")) == 10 and len(suite_tasks("ml10", "test")) == 5
    assert len(suite_tasks("ml45", "train")) == 45 and len(suite_tasks("ml45", "test")) == 5
    dmil = suite_tasks("ml10-dmil", "train")
    assert "basketball-v3" in dmil and "window-open-v3" in dmil and len(dmil) == 10
    assert suite_tasks("ml10-dmil", "test") == [
        "door-close-v3",
        "drawer-open-v3",
        "lever-pull-v3",
        "shelf-place-v3",
        "sweep-v3",
    ]
    assert len(suite_tasks("ml10-dmil", "all")) == 15
    tasks = set(available_tasks())
    assert len(tasks) == 50
    for suite in ("ml10", "ml10-dmil", "ml45"):
        assert set(suite_tasks(suite, "all")) <= tasks
    with pytest.raises(ValueError, match="unknown suite"):
        suite_tasks("ml99", "train")
    with pytest.raises(ValueError, match="unknown env family"):
        make_env("gazebo", "reach-v3")
    with pytest.raises(ValueError, match="unknown Meta-World"):
        make_env("metaworld", "reach-v2")


def test_core_packages_do_not_import_rclpy() -> None:
    code = (
        "import sys, dmil_ros.envs.metaworld_env, dmil_ros.envs.registry, dmil_ros.data.collect; "
        "assert 'rclpy' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
