"""Optional rollout video: MuJoCo offscreen rendering of one episode, saved as an animated GIF.

Headless machines need an offscreen GL backend, chosen before mujoco is imported:
  MUJOCO_GL=egl dmil plot ... --video      (GPU / Mesa EGL)
  MUJOCO_GL=osmesa dmil plot ... --video   (software; needs libosmesa)
If no backend works the video is skipped with a message; the plots are written regardless.
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path

import numpy as np

from dmil_ros.core.hierarchy import Hierarchy
from dmil_ros.envs.metaworld_env import MetaWorldEnv

_log = logging.getLogger(__name__)


def render_rollout(
    policy: Hierarchy,
    task: str,
    seed: int,
    path: str | Path,
    horizon: int = 300,
    camera: str = "corner",
    size: tuple[int, int] = (240, 320),
    every: int = 2,
) -> Path | None:
    """Roll out `policy` and write a GIF and a PNG of its last frame beside it; None (and a warning)
    when rendering is unavailable."""
    try:
        import mujoco
        from PIL import Image
    except ImportError as e:
        _log.warning("video skipped: %s", e)
        return None
    env = MetaWorldEnv(task, max_episode_steps=horizon)
    try:
        renderer, reason = None, ""
        try:
            renderer = mujoco.Renderer(env.raw_env.model, *size)
        except Exception as e:  # no GL context: any backend error means "cannot render here"
            reason = str(e)
        if renderer is None:
            gc.collect()  # the half-built Renderer complains in __del__: let it happen here, not later
            _log.warning("video skipped: no offscreen rendering (%s); try MUJOCO_GL=egl or osmesa", reason)
            return None
        # Meta-World's corner cameras have their image y axis pointing down (xyaxes ... -1): flip rows.
        frames = []
        obs = env.reset(seed)
        for t in range(horizon):
            if t % every == 0:
                renderer.update_scene(env.raw_env.data, camera=camera)
                frames.append(Image.fromarray(np.asarray(renderer.render())[::-1]))
            result = env.step(np.clip(policy.act(obs)[0], -1.0, 1.0))
            obs = result.observation
            if result.success:
                renderer.update_scene(env.raw_env.data, camera=camera)
                frames.append(Image.fromarray(np.asarray(renderer.render())[::-1]))
                break
        renderer.close()
    finally:
        env.close()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=40 * every, loop=0)
    frames[-1].save(path.with_suffix(".png"))  # a still of the last frame, for documents
    return path
