"""Demo collection and the HDF5 format: clean actions, determinism, resume, damage handling."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("metaworld")
# The scripted experts warn when their gain saturates; by design (pytest resets our global filter).
pytestmark = pytest.mark.filterwarnings("ignore:Constant\\(s\\) may be too high")

import dmil_ros.data.collect as collect_mod  # noqa: E402
from dmil_ros.data.collect import CollectConfig, collect_demos, episode_seeds  # noqa: E402
from dmil_ros.data.hdf5_dataset import (  # noqa: E402
    CorruptDatasetError,
    DemoWriter,
    index_path,
    load_demos,
    read_env_args,
    salvage_demos,
    write_mask,
)
from dmil_ros.envs.metaworld_env import MetaWorldEnv  # noqa: E402

TASKS = ["reach-v3", "door-close-v3"]
CONFIG = CollectConfig(max_episode_steps=300, noise_std=0.1, steps_after_success=10, base_seed=0)


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, collect_mod.CollectReport]:
    path = tmp_path_factory.mktemp("demos") / "demos.hdf5"
    report = collect_demos(path, TASKS, 2, CONFIG, progress=False)
    return path, report


def _copy(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    shutil.copyfile(index_path(src), index_path(dst))
    return dst


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for task in a:
        assert [d.demo_index for d in a[task]] == [d.demo_index for d in b[task]]
        for x, y in zip(a[task], b[task], strict=True):
            assert x.seed == y.seed
            np.testing.assert_array_equal(x.observations, y.observations)
            np.testing.assert_array_equal(x.actions, y.actions)


def test_collects_successful_demos_with_clean_actions(collected) -> None:
    path, report = collected
    demos = load_demos(path)
    assert sorted(demos) == sorted(TASKS)
    for task in TASKS:
        assert [d.demo_index for d in demos[task]] == [0, 1]
        assert report.tasks[task].written == 2 and report.tasks[task].success_rate > 0
        env = MetaWorldEnv(task, max_episode_steps=CONFIG.max_episode_steps)
        for d in demos[task]:
            T = len(d.observations)
            assert d.observations.shape == (T, 39) and d.observations.dtype == np.float32
            assert d.actions.shape == (T, 4) and d.actions.dtype == np.float32
            assert d.success_step >= 0 and T == min(d.success_step + 1 + 10, CONFIG.max_episode_steps)
            # recorded actions are the clean expert's, the executed ones carry the noise
            clean = np.stack([env.expert_action(o) for o in d.observations])
            np.testing.assert_allclose(d.actions, clean, atol=1e-6)
            assert np.abs(d.executed_actions - d.actions).mean() > 0.03
            # replaying the executed actions from the stored seed reproduces the episode and success
            obs = env.reset(d.seed)
            np.testing.assert_allclose(obs, d.observations[0], atol=1e-6)
            for t, a in enumerate(d.executed_actions):
                r = env.step(a)
                if t + 1 < T:
                    np.testing.assert_allclose(r.observation, d.observations[t + 1], atol=1e-4)
                if t == d.success_step:
                    assert r.success
        env.close()
    args = read_env_args(path)
    assert args["horizon"] == 300 and args["noise_std"] == 0.1 and args["metaworld_version"] == "3.1.1"
    with h5py.File(path, "r") as f:  # plain-h5py robomimic layout
        assert f["data"].attrs["total"] == 4
        g = f["data/demo_0"]
        assert g.attrs["num_samples"] == len(g["obs/state"]) == len(g["actions"]) == len(g["dones"])
        assert g["dones"][-1] == 1 and g["dones"][:-1].sum() == 0
        assert json.loads(f["data"].attrs["env_args"])["tasks"] == TASKS


def test_seeds_are_deterministic_and_distinct() -> None:
    assert episode_seeds(0, "reach-v3", 3, 0)[0] == episode_seeds(0, "reach-v3", 3, 0)[0]
    seeds = {episode_seeds(0, t, i, a)[0] for t in TASKS for i in range(20) for a in range(3)}
    assert len(seeds) == 2 * 20 * 3


def test_resume_after_interruption_adds_only_missing(collected, tmp_path: Path, monkeypatch) -> None:
    reference, _ = collected
    path = tmp_path / "demos.hdf5"
    real_run_chunk = collect_mod._run_chunk
    calls = []

    def interrupted(chunk):
        if calls:
            raise KeyboardInterrupt
        calls.append(chunk)
        return real_run_chunk(chunk)

    monkeypatch.setattr(collect_mod, "_run_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        collect_demos(path, TASKS, 2, CONFIG, chunk_size=1, progress=False)
    monkeypatch.undo()
    assert sum(len(v) for v in load_demos(path).values()) == 1
    # an extra half-written group, as a crash mid-write would leave, must be ignored then replaced
    with h5py.File(path, "a") as f:
        f["data"].create_group("demo_7").create_dataset("actions", data=np.zeros((3, 4), np.float32))
    assert sum(len(v) for v in load_demos(path).values()) == 1

    report = collect_demos(path, TASKS, 2, CONFIG, chunk_size=1, progress=False)
    assert report.tasks["reach-v3"].skipped == 1 and report.tasks["reach-v3"].written == 1
    assert report.tasks["door-close-v3"].skipped == 0 and report.tasks["door-close-v3"].written == 2
    _assert_same(load_demos(path), load_demos(reference))  # same seeds -> same demos as uninterrupted
    with h5py.File(path, "r") as f:
        assert "demo_7" not in f["data"] and f["data"].attrs["total"] == 4
    with pytest.raises(ValueError, match="different settings"):
        collect_demos(path, TASKS, 2, CollectConfig(max_episode_steps=500), progress=False)


def test_truncated_file_is_detected_and_intact_demos_salvaged(collected, tmp_path: Path) -> None:
    reference, _ = collected
    path = _copy(reference, tmp_path / "cut.hdf5")
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size - 2000)
    with pytest.raises(CorruptDatasetError, match="truncated or corrupt.*salvage"):
        load_demos(path)
    with pytest.raises(CorruptDatasetError, match="truncated or corrupt"):
        DemoWriter(path, read_env_args(reference))
    salvaged = load_demos(path, salvage=True)
    original = load_demos(reference)
    n = sum(len(v) for v in salvaged.values())
    assert 1 <= n < 4  # the demo whose bytes were cut is dropped, the others survive intact
    for task, demos in salvaged.items():
        by_index = {d.demo_index: d for d in original[task]}
        for d in demos:
            np.testing.assert_array_equal(d.observations, by_index[d.demo_index].observations)
    # recover into a fresh file and resume collection there
    fixed = tmp_path / "fixed.hdf5"
    assert salvage_demos(path, fixed) == n
    report = collect_demos(fixed, TASKS, 2, CONFIG, progress=False)
    assert sum(s.written for s in report.tasks.values()) == 4 - n
    _assert_same(load_demos(fixed), original)


def test_corrupted_bytes_fail_checksum(collected, tmp_path: Path) -> None:
    reference, _ = collected
    path = _copy(reference, tmp_path / "flip.hdf5")
    with h5py.File(path, "r") as f:
        offset = f["data/demo_0/actions"].id.get_offset()
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\x7f" * 16)
    with pytest.raises(CorruptDatasetError, match="checksum"):
        load_demos(path)
    assert sum(len(v) for v in load_demos(path, salvage=True).values()) == 3


def test_mask_is_robomimic_style(collected, tmp_path: Path) -> None:
    path = _copy(collected[0], tmp_path / "mask.hdf5")
    write_mask(path, "train", ["demo_0", "demo_1"])
    with h5py.File(path, "r") as f:
        assert [n.decode() for n in f["mask/train"][()]] == ["demo_0", "demo_1"]
    assert sum(len(v) for v in load_demos(path).values()) == 4


def test_parallel_workers_match_serial(collected, tmp_path: Path) -> None:
    reference, _ = collected
    path = tmp_path / "par.hdf5"
    report = collect_demos(path, TASKS, 2, CONFIG, workers=2, chunk_size=1, progress=False)
    assert report.workers == 2
    _assert_same(load_demos(path), load_demos(reference))


def test_reusing_a_file_of_other_settings_is_refused(collected, tmp_path: Path) -> None:
    """Enough demos in a file once meant reuse without a look at how they were made."""
    import dataclasses

    from dmil_ros.core.data import DemoError
    from dmil_ros.data.collect import demo_settings
    from dmil_ros.data.demos import ensure_demos

    path = _copy(collected[0], tmp_path / "reused.hdf5")
    assert set(ensure_demos(path, TASKS, 2, CONFIG, progress=False)) == set(TASKS)
    before = path.read_bytes()
    with pytest.raises(DemoError, match="noise_std.*delete it"):
        ensure_demos(path, TASKS, 2, dataclasses.replace(CONFIG, noise_std=0.2), progress=False)
    assert path.read_bytes() == before
    # The kitchen's own expert has no package version to record: its EXPERT_VERSION is.
    assert "kitchen_expert_version" in demo_settings(CollectConfig(env="kitchen"))
    assert "kitchen_expert_version" not in demo_settings(CONFIG)
