"""Checkpoints: weights in safetensors plus a JSON config, in one directory. Loading never unpickles.

Layout of a checkpoint directory:
  config.json        {"format": "dmil_ros/1", "model": {...}, "dmil": {...} | null, "meta": {...}}
  model.safetensors  high.*/low.* parameters and normalizer.mean / normalizer.std
Saving writes to temporary files and renames them into place, so a failed save never leaves a
half-written checkpoint over a good one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from dmil_ros.core.config import (
    DMILConfig,
    ModelConfig,
    dmil_config_from_dict,
    model_config_from_dict,
    to_dict,
)
from dmil_ros.core.data import Normalizer
from dmil_ros.core.hierarchy import Hierarchy
from dmil_ros.core.networks import expected_shapes

FORMAT = "dmil_ros/1"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt or does not match its config; the message says why."""


def checkpoint_present(directory: str | Path) -> bool:
    """Both files of a checkpoint are in `directory` (whether they load is `load_checkpoint`'s call)."""
    return (Path(directory) / CONFIG_FILE).is_file() and (Path(directory) / WEIGHTS_FILE).is_file()


def _atomic_write(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        # mkstemp makes the file private (0600); a checkpoint is read by other users (installed packages).
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_checkpoint(
    hierarchy: Hierarchy,
    directory: str | Path,
    dmil_config: DMILConfig | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in hierarchy.params.items()}
    tensors["normalizer.mean"] = torch.from_numpy(hierarchy.normalizer.mean.copy())
    tensors["normalizer.std"] = torch.from_numpy(hierarchy.normalizer.std.copy())
    config = {
        "format": FORMAT,
        "model": to_dict(hierarchy.config),
        "dmil": to_dict(dmil_config) if dmil_config is not None else None,
        "meta": meta or {},
    }
    _atomic_write(directory / WEIGHTS_FILE, lambda tmp: save_file(tensors, tmp))
    _atomic_write(directory / CONFIG_FILE, lambda tmp: Path(tmp).write_text(json.dumps(config, indent=2)))
    return directory


def read_config(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {directory}: {CONFIG_FILE} is missing")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is not valid JSON: {e}") from e
    found = config.get("format") if isinstance(config, dict) else None
    if found != FORMAT:
        raise CheckpointError(f"{path}: unknown checkpoint format {found!r}, expected {FORMAT!r}")
    return config


def load_checkpoint(
    directory: str | Path, device: torch.device | str = "cpu"
) -> tuple[Hierarchy, DMILConfig | None, dict[str, Any]]:
    """(hierarchy, DMIL config or None, meta). Raises CheckpointError with the reason."""
    directory = Path(directory)
    config = read_config(directory)
    try:
        model_cfg: ModelConfig = model_config_from_dict(config["model"])
        dmil_cfg = dmil_config_from_dict(config["dmil"]) if config.get("dmil") else None
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{directory / CONFIG_FILE}: invalid config ({e})") from e
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"no weights at {weights}")
    try:
        tensors = load_file(str(weights), device=str(device))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights} is corrupt or unreadable: {e}") from e

    expected = expected_shapes(model_cfg)
    expected["normalizer.mean"] = expected["normalizer.std"] = (model_cfg.obs_dim,)
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise CheckpointError(f"{weights} does not match its config: missing {missing}, unexpected {extra}")
    for name, shape in expected.items():
        if tuple(tensors[name].shape) != shape:
            raise CheckpointError(
                f"{weights}: {name} has shape {tuple(tensors[name].shape)}, config says {shape}"
            )
        if not bool(torch.isfinite(tensors[name]).all()):
            raise CheckpointError(f"{weights}: {name} contains NaN or infinite values")
    normalizer = Normalizer(
        tensors.pop("normalizer.mean").cpu().numpy().astype(np.float32),
        tensors.pop("normalizer.std").cpu().numpy().astype(np.float32),
    )
    params = {k: v.float() for k, v in tensors.items()}
    return Hierarchy(model_cfg, params, normalizer), dmil_cfg, dict(config.get("meta") or {})
