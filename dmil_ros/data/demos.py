"""Demos for a run: collected on first use, loaded, and split into training and validation demos."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from dmil_ros.core.data import Demo, DemoError
from dmil_ros.data.collect import CollectConfig, collect_demos, settings_clash
from dmil_ros.data.hdf5_dataset import RecordedDemo, load_demos

_log = logging.getLogger(__name__)


def to_core(demos: Sequence[RecordedDemo]) -> list[Demo]:
    return [Demo(d.observations, d.actions, d.task) for d in demos]


def ensure_demos(
    path: str | Path,
    tasks: Sequence[str],
    demos_per_task: int,
    config: CollectConfig,
    workers: int = 1,
    suite: str | None = None,
    progress: bool = True,
) -> dict[str, list[RecordedDemo]]:
    """Load `demos_per_task` demos of each task from `path`, collecting whatever is missing first.

    Collection resumes an existing file (it adds tasks or demos), so asking for more demos later
    only collects the difference.
    """
    path = Path(path)
    if path.exists():
        # A file of other settings (another expert, horizon or noise) is never reused quietly.
        clash = settings_clash(path, config)
        if clash:
            raise DemoError(
                f"{path} holds demos collected with other settings (recorded, wanted): {clash}; "
                "delete it to collect it anew, or point the config at another file"
            )
    have = load_demos(path, tasks=tasks) if path.exists() else {}
    short = [t for t in tasks if len(have.get(t, [])) < demos_per_task]
    if short:
        _log.info("collecting demos for %d task(s) into %s: %s", len(short), path, ", ".join(short))
        path.parent.mkdir(parents=True, exist_ok=True)
        report = collect_demos(
            path, short, demos_per_task, config, workers=workers, suite=suite, progress=progress
        )
        _log.info("collection done in %.1f s", report.wall_s)
        have = load_demos(path, tasks=tasks)
    missing = {t: len(have.get(t, [])) for t in tasks if len(have.get(t, [])) < demos_per_task}
    if missing:
        raise DemoError(f"{path}: too few successful demos (have {missing}, need {demos_per_task} per task)")
    return {t: sorted(have[t], key=lambda d: d.demo_index)[:demos_per_task] for t in tasks}


def split_validation(
    demos: Mapping[str, Sequence[RecordedDemo]], validation_demos: int
) -> tuple[dict[str, list[Demo]], dict[str, list[Demo]]]:
    """(training, validation) per task; the last `validation_demos` of each task are held out."""
    train, val = {}, {}
    for task, ds in demos.items():
        if len(ds) <= validation_demos:
            raise DemoError(f"task {task}: {len(ds)} demos cannot spare {validation_demos} for validation")
        train[task] = to_core(ds[: len(ds) - validation_demos])
        val[task] = to_core(ds[len(ds) - validation_demos :])
    return train, val
