"""`dmil plot`: the Fig. 3 / Fig. 4 PNGs (and the optional GIF) from a tiny checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("metaworld")
pytest.importorskip("sklearn")
pytestmark = pytest.mark.filterwarnings("ignore:Constant\\(s\\) may be too high")

from dmil_ros.plotting import cli  # noqa: E402  (sets MUJOCO_GL=egl on headless machines)
from dmil_ros.training.config import config_from_dict  # noqa: E402
from dmil_ros.training.runner import train  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plot")
    raw = {
        "device": "cpu", "torch_threads": 1, "tasks": ["reach-v3"],
        "data": {"path": str(root / "t.hdf5"), "demos_per_task": 4, "validation_demos": 2, "horizon": 150},
        "model": {"num_skills": 3, "hidden_sizes": [32]},
        "dmil": {"tasks_per_batch": 1, "windows_per_batch": 2, "window_length": 8},
        "train": {"iterations": 2, "eval_interval": 2, "log_interval": 2},
    }  # fmt: skip
    return train(config_from_dict(raw), root / "run", progress=False).run_dir


def assert_figures(stdout: str, task: str) -> None:
    """The JSON last line names a skills and a t-SNE PNG of `task` that decode and are not blank."""
    import matplotlib.image

    files = json.loads(stdout.strip().splitlines()[-1])
    assert set(files) == {"skills", "tsne"}
    for kind in ("skills", "tsne"):
        path = Path(files[kind])
        assert path.name == f"{kind}_{task}.png" and path.read_bytes()[:8] == PNG_MAGIC
        image = matplotlib.image.imread(path)
        assert image.shape[0] > 100 and image.shape[1] > 100 and image.std() > 0  # decodes, not blank


def test_plot_writes_valid_pngs(run_dir: Path, tmp_path: Path, capsys) -> None:
    argv = ["--checkpoint", str(run_dir), "--task", "reach-v3", "--shots", "1", "--tsne-demos", "2",
            "--pool", str(tmp_path / "pool.hdf5"), "--out", str(tmp_path / "plots"), "--json"]  # fmt: skip
    assert cli.main(argv) == 0
    assert_figures(capsys.readouterr().out, "reach-v3")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # a half-built Renderer
@pytest.mark.filterwarnings("ignore::UserWarning:glfw")  # glfw without an X display
def test_rollout_video_or_a_clean_skip(run_dir: Path, tmp_path: Path) -> None:
    from dmil_ros.core.checkpoint import load_checkpoint
    from dmil_ros.plotting.video import render_rollout

    # In this process mujoco may already be bound to a GL backend that cannot render: then a clean None.
    policy = load_checkpoint(run_dir / "best")[0]
    path = render_rollout(policy, "reach-v3", 0, tmp_path / "r.gif", horizon=4, size=(48, 64))
    assert path is None or path.read_bytes()[:6] == b"GIF89a"
    # A fresh process with the documented headless backend renders for real (where EGL exists).
    ckpt, gif = str(run_dir / "best"), str(tmp_path / "e.gif")
    code = (
        "import sys; from dmil_ros.core.checkpoint import load_checkpoint; "
        "from dmil_ros.plotting.video import render_rollout; "
        f"p = render_rollout(load_checkpoint({ckpt!r})[0], 'reach-v3', 0, {gif!r}, horizon=4, size=(48, 64)); "  # noqa: E501
        "sys.exit(0 if p else 3)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "MUJOCO_GL": "egl"}, capture_output=True
    )
    if proc.returncode == 3:
        pytest.skip("no EGL offscreen rendering on this machine")
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert (tmp_path / "e.gif").read_bytes()[:6] == b"GIF89a"


def test_missing_checkpoint_exit_code(tmp_path: Path) -> None:
    assert cli.main(["--checkpoint", str(tmp_path / "nothing"), "--out", str(tmp_path)]) == 2


def test_kitchen_plot_writes_valid_pngs(tmp_path: Path, capsys) -> None:
    """`dmil plot --env kitchen` (paper Fig. 3 right) on a shipped kitchen checkpoint, 2 sub-tasks."""
    from dmil_ros.core.shipped import kitchen_checkpoint_root

    task = "microwave+kettle"
    checkpoint = kitchen_checkpoint_root() / "no_top_burner"
    argv = ["--env", "kitchen", "--checkpoint", str(checkpoint), "--task", task,
            "--shots", "1", "--tsne-demos", "2", "--pool", str(tmp_path / "pool.hdf5"),
            "--out", str(tmp_path / "plots"), "--json"]  # fmt: skip
    assert cli.main(argv) == 0
    assert_figures(capsys.readouterr().out, task)
