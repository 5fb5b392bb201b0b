"""Build environments by name and list the task suites (ML10, ML45, and the DMIL paper's ML10 split).

Suites are read from metaworld's own tables (`metaworld.env_dict.ML10_V3` is exactly what
`metaworld.ML10().train_classes / .test_classes` return, without building 50 goals per task), except
'ml10-dmil', the split used by the official DMIL code.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from dmil_ros.envs.base import ManipulationEnv
from dmil_ros.envs.kitchen_tasks import SUITE_PREFIX, kitchen_suites
from dmil_ros.envs.kitchen_tasks import suite_tasks as kitchen_suite_tasks

ENV_FAMILIES = ("metaworld", "kitchen")
# Kitchen suites 'kitchen-no-<object>': tasks without that object (train) / its unseen combos (test).
SUITES = ("ml10", "ml10-dmil", "ml45", *kitchen_suites())
SPLITS = ("train", "test", "all")

# Official DMIL code's ML10 split (differs from metaworld's ML10).
_DMIL_ML10 = {
    "train": [
        "basketball-v3",
        "button-press-v3",
        "dial-turn-v3",
        "drawer-close-v3",
        "peg-insert-side-v3",
        "reach-v3",
        "push-v3",
        "pick-place-v3",
        "sweep-into-v3",
        "window-open-v3",
    ],
    "test": ["door-close-v3", "drawer-open-v3", "lever-pull-v3", "shelf-place-v3", "sweep-v3"],
}

# Meta-validation tasks: never trained on by a run that is selected with them, never reported as results;
# they only rank settings (scripts/select_on_validation.py). ml10: five tasks in neither ML10 split, each
# the nearest sibling of an ML10 training task (as the ML10 test tasks are). ml45: five of its training
# tasks, drawn once (results/ml45_validation.md); the runs evaluated on them train on the other 40.
VALIDATION_TASKS: dict[str, tuple[str, ...]] = {
    "ml10": ("window-close-v3", "button-press-v3", "reach-wall-v3", "push-back-v3", "pick-place-wall-v3"),
    "ml45": ("peg-insert-side-v3", "peg-unplug-side-v3", "plate-slide-v3", "shelf-place-v3",
             "window-open-v3"),
}


def make_env(env: str, task: str, **kw: Any) -> ManipulationEnv:
    """`make_env("metaworld", "reach-v3", max_episode_steps=300)`; kitchen: "kettle+microwave"."""
    if env == "metaworld":
        from dmil_ros.envs.metaworld_env import MetaWorldEnv

        return MetaWorldEnv(task, **kw)
    if env == "kitchen":
        from dmil_ros.envs.kitchen_env import KitchenEnv

        return KitchenEnv(task, **kw)
    raise ValueError(f"unknown env family {env!r}; known: {', '.join(ENV_FAMILIES)}")


# This process's environments, reused across episodes, demos and jobs (building one costs ~0.2 s).
_CACHE: OrderedDict[tuple[str, str, int], ManipulationEnv] = OrderedDict()
MAX_CACHED_ENVS = 4


def cached_env(env: str, task: str, max_episode_steps: int) -> ManipulationEnv:
    """`make_env(env, task, max_episode_steps=...)`, built once per process and reused; beyond
    `MAX_CACHED_ENVS` the least recently used one is closed."""
    key = (env, task, max_episode_steps)
    if key not in _CACHE:
        _CACHE[key] = make_env(env, task, max_episode_steps=max_episode_steps)
        while len(_CACHE) > MAX_CACHED_ENVS:
            _CACHE.popitem(last=False)[1].close()
    _CACHE.move_to_end(key)
    return _CACHE[key]


def available_tasks(env: str = "metaworld") -> list[str]:
    if env == "metaworld":
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS

        return list(ALL_V3_ENVIRONMENTS)
    if env == "kitchen":
        from dmil_ros.envs.kitchen_env import SUBTASKS

        return list(SUBTASKS)
    raise ValueError(f"unknown env family {env!r}; known: {', '.join(ENV_FAMILIES)}")


def suite_tasks(suite: str, split: str) -> list[str]:
    """Task names of `suite` ('ml10', 'ml10-dmil', 'ml45') for `split` ('train', 'test', 'all')."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    if suite.startswith(SUITE_PREFIX):
        return kitchen_suite_tasks(suite, split)
    if suite == "ml10-dmil":
        table = _DMIL_ML10
    elif suite in ("ml10", "ml45"):
        from metaworld import env_dict

        src = env_dict.ML10_V3 if suite == "ml10" else env_dict.ML45_V3
        table = {"train": list(src["train"]), "test": list(src["test"])}
    else:
        raise ValueError(f"unknown suite {suite!r}; known: {', '.join(SUITES)}")
    if split == "all":
        return list(table["train"]) + list(table["test"])
    return list(table[split])
