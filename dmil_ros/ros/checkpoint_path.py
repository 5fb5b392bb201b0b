"""Where the policy node's checkpoint comes from: a given directory or the one shipped in the package."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from dmil_ros.core.checkpoint import CONFIG_FILE, WEIGHTS_FILE
from dmil_ros.ros.interfaces import ConfigError

SHIPPED_NAME = "metaworld_ml10"
# The checkpoint each env family's policy node loads when none is given (under dmil_ros/checkpoints/).
SHIPPED_NAMES = {"metaworld": SHIPPED_NAME, "kitchen": "kitchen/no_top_burner"}


def shipped_checkpoint_dir(env: str = "metaworld") -> Path:
    """dmil_ros/checkpoints/<SHIPPED_NAMES[env]> inside the installed package (may not exist yet)."""
    return Path(str(resources.files("dmil_ros"))) / "checkpoints" / SHIPPED_NAMES[env]


def shipped_checkpoint_available(env: str = "metaworld") -> bool:
    d = shipped_checkpoint_dir(env)
    return (d / CONFIG_FILE).is_file() and (d / WEIGHTS_FILE).is_file()


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
