"""Where the policy node's checkpoint comes from: a given directory or the one shipped for its env
family (core/shipped.py)."""

from __future__ import annotations

import os
from pathlib import Path

from dmil_ros.core.checkpoint import CONFIG_FILE, WEIGHTS_FILE
from dmil_ros.core.config import ConfigError
from dmil_ros.core.shipped import shipped_checkpoint_available, shipped_checkpoint_dir

__all__ = ["resolve_checkpoint", "shipped_checkpoint_available", "shipped_checkpoint_dir"]


def resolve_checkpoint(param: str, env: str = "metaworld") -> Path:
    """The `checkpoint` parameter as a directory; '' means `env`'s shipped one. ConfigError if absent."""
    if not param:
        d = shipped_checkpoint_dir(env)
        if not shipped_checkpoint_available(env):
            raise ConfigError(f"no checkpoint given and the shipped one is absent ({d} lacks {CONFIG_FILE} "
                              f"or {WEIGHTS_FILE}); pass checkpoint:=<directory>")
        return d
    d = Path(os.path.expanduser(param))
    if not d.is_dir():
        raise ConfigError(f"checkpoint directory {d} does not exist")
    return d
