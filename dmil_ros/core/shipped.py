"""What ships with the package, found from the installed package and never from the working
directory (an installed `dmil` works from any folder):

- trained checkpoints inside it, dmil_ros/checkpoints/<name>/, and which one is the default where:
  `dmil eval` per suite (ml10, ml10-dmil and custom task lists: metaworld_ml10; ml45: metaworld_ml45;
  kitchen: kitchen/no_<excluded object>), the policy node per env family (Meta-World: metaworld_ml45);
- the YAML files of config/ (training recipes, evaluation presets, ROS parameters): beside the package
  in a source checkout, else in the installed share/dmil_ros/config.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from dmil_ros.core.config import ConfigError

PACKAGE = "dmil_ros"
SUITE_CHECKPOINTS = {"ml10": "metaworld_ml10", "ml10-dmil": "metaworld_ml10", "ml45": "metaworld_ml45"}
OTHER_TASKS_CHECKPOINT = "metaworld_ml10"  # an explicit task list (suite 'custom')
# The policy node's prior per env family. Meta-World: the ML45 hierarchy, which adapts better than the
# ML10 one to tasks neither trained on (the five ML45 test tasks, paired; docs/ml45.md).
ENV_CHECKPOINTS = {"metaworld": "metaworld_ml45", "kitchen": "kitchen/no_top_burner"}
KITCHEN_CHECKPOINTS = "kitchen"  # one run per excluded object: kitchen/no_<object>/
SUITE_RECIPES = {"ml10": "config/train_ml10.yaml", "ml10-dmil": "config/train_ml10.yaml",
                 "ml45": "config/train_ml45.yaml"}  # fmt: skip
METAWORLD_RECIPE = "config/train_ml10.yaml"
KITCHEN_RECIPE = "config/train_kitchen.yaml"


def checkpoints_root() -> Path:
    """dmil_ros/checkpoints inside the installed package."""
    return Path(str(resources.files(PACKAGE))) / "checkpoints"


def suite_checkpoint_dir(suite: str) -> Path:
    """The checkpoint `dmil eval --suite <suite>` evaluates when none is given (may be absent)."""
    return checkpoints_root() / SUITE_CHECKPOINTS.get(suite, OTHER_TASKS_CHECKPOINT)


def suite_recipe(suite: str) -> str:
    """The training config a method without a checkpoint is trained with for `suite`."""
    return SUITE_RECIPES.get(suite, METAWORLD_RECIPE)


def kitchen_checkpoint_root() -> Path:
    return checkpoints_root() / KITCHEN_CHECKPOINTS


def shipped_checkpoint_dir(env: str = "metaworld") -> Path:
    """The checkpoint the policy node of env family `env` loads when none is given (may be absent)."""
    if env not in ENV_CHECKPOINTS:
        raise ConfigError(f"unknown env family {env!r}; known: {', '.join(ENV_CHECKPOINTS)}")
    return checkpoints_root() / ENV_CHECKPOINTS[env]


def shipped_checkpoint_available(env: str = "metaworld") -> bool:
    from dmil_ros.core.checkpoint import checkpoint_present  # torch: only when asked

    return checkpoint_present(shipped_checkpoint_dir(env))


def config_dirs() -> list[Path]:
    """Where config/*.yaml may be: the source checkout first, then the installed share directories."""
    pkg_dir = Path(str(resources.files(PACKAGE))).resolve()
    dirs = []
    if (pkg_dir.parent / "package.xml").is_file():  # source checkout / editable install
        dirs.append(pkg_dir.parent / "config")
    try:
        from ament_index_python.packages import get_package_share_directory

        dirs.append(Path(get_package_share_directory(PACKAGE)) / "config")
    except (ImportError, LookupError, OSError, ValueError):
        pass
    if len(pkg_dir.parents) > 3:  # installed at <prefix>/lib/pythonX.Y/site-packages/dmil_ros
        dirs.append(pkg_dir.parents[3] / "share" / PACKAGE / "config")
    dirs.append(Path(sys.prefix) / "share" / PACKAGE / "config")
    return dirs


def shipped_config(name: str) -> Path:
    """config/<name> as shipped; ConfigError names every place it looked."""
    looked = [d / name for d in config_dirs()]
    for candidate in looked:
        if candidate.is_file():
            return candidate
    raise ConfigError(f"cannot find {name}; looked in {', '.join(str(c.parent) for c in looked)}")


def config_path(path: str | Path) -> Path:
    """A config file a user names: `path` when that file exists, else (for a bare name or
    config/<name>) the shipped config of that name."""
    given = Path(path).expanduser()
    if given.is_file():
        return given
    if given.parent not in (Path("."), Path("config")):
        raise ConfigError(f"config file {path} does not exist")
    try:
        return shipped_config(given.name)
    except ConfigError as e:
        raise ConfigError(f"config file {path} does not exist here, and {e}") from None
