"""Demonstrations on disk: robomimic-style HDF5, appended demo by demo, resumable, damage-aware.

Layout (readable with plain h5py; T = steps of the demo):

    /data                            attrs: total (int, complete demos), format ("dmil_ros.demos/1"),
                                     env_args (JSON string: env_name, suite, tasks, horizon, noise_std,
                                     steps_after_success, base_seed, metaworld_version, ...)
    /data/demo_<k>/obs/state         (T, obs_dim) float32   observation before action t
    /data/demo_<k>/actions           (T, act_dim) float32   clean expert action at t (the BC target)
    /data/demo_<k>/executed_actions  (T, act_dim) float32   what ran (expert + noise, clipped)
    /data/demo_<k>/rewards           (T,) float32
    /data/demo_<k>/dones             (T,) uint8, 1 on the last step
        attrs: num_samples (T), task, seed (env.reset(seed) reproduces the initial state),
               demo_index (per task), success_step (0-based step after which the task was first
               solved, -1 if never), checksum (CRC32 over the four float32 datasets above, in that
               order), complete (True, written last)
    /mask/<name>                     optional 1-D array of demo group names (bytes), as in robomimic

`k` is a file-wide counter in write order (parallel collection finishes out of order); readers sort
by (task, demo_index). A demo counts only once `complete` is set: an interrupted writer leaves at
most one incomplete group, which readers ignore and the writer deletes when it resumes.

Damage. HDF5 moves its group index as it grows, so a truncated file loses the index to *every* demo
and cannot even be opened; `load_demos` then raises `CorruptDatasetError`. For recovery the writer
keeps `<file>.index.jsonl` next to it: one JSON line per completed demo with its attributes and the
byte offsets of its (contiguous, uncompressed) datasets. `load_demos(path, salvage=True)` and
`salvage_demos(path, new_path)` read the raw bytes through that index and keep every demo whose bytes
are still present and match the checksum. Keep the two files together.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

FORMAT = "dmil_ros.demos/1"
_log = logging.getLogger(__name__)
# env_args keys that may differ between the runs that fill one file (everything else must match).
_MERGEABLE_ARGS = ("tasks", "suite")
# Float32 datasets of a demo, in checksum order, with their trailing dimension key.
_FLOAT_SETS = ("obs/state", "actions", "executed_actions", "rewards")


class CorruptDatasetError(RuntimeError):
    """The file is truncated or damaged; the message says what and how to recover."""


@dataclass(frozen=True)
class RecordedDemo:
    observations: np.ndarray  # (T, obs_dim) float32
    actions: np.ndarray  # (T, act_dim) float32, clean expert actions
    task: str
    seed: int  # env reset seed
    demo_index: int = -1
    success_step: int = -1
    rewards: np.ndarray | None = None  # (T,) float32
    executed_actions: np.ndarray | None = None  # (T, act_dim) float32


def index_path(path: str | os.PathLike) -> Path:
    return Path(f"{os.fspath(path)}.index.jsonl")


def _checksum(arrays: Iterable[np.ndarray]) -> int:
    c = 0
    for a in arrays:
        c = zlib.crc32(np.ascontiguousarray(a, dtype=np.float32).tobytes(), c)
    return c


class DatasetBusyError(OSError):
    """The HDF5 file is locked by a writer in another process; nothing is wrong with it."""


def _open(path: str | os.PathLike, mode: str) -> h5py.File:
    try:
        return h5py.File(path, mode)
    except OSError as e:
        if not Path(path).exists():
            raise
        if "unable to lock file" in str(e):  # HDF5's file lock: another process is writing it
            raise DatasetBusyError(
                f"{path} is open for writing by another process (e.g. a collection still running); "
                "wait for it to finish"
            ) from e
        raise CorruptDatasetError(
            f"{path}: HDF5 file is truncated or corrupt ({e}). Intact demos can be recovered with "
            f"load_demos(path, salvage=True) or salvage_demos(path, new_path), which need "
            f"{index_path(path).name}."
        ) from e


_ATTR_KEYS = ("task", "seed", "demo_index", "success_step", "num_samples", "checksum")


def _index_entry(name: str, attrs: Mapping[str, Any], datasets: Mapping[str, h5py.Dataset]) -> dict[str, Any]:
    """Recovery-index line: the demo's attributes and where each float32 dataset's bytes start."""
    entry: dict[str, Any] = {k: str(attrs[k]) if k == "task" else int(attrs[k]) for k in _ATTR_KEYS}
    entry["name"] = name
    entry["datasets"] = {
        ds: [int(d.id.get_offset()), int(np.prod(d.shape[1:], dtype=int))] for ds, d in datasets.items()
    }
    return entry


class DemoWriter:
    """Appends demos to a file, flushing after each; reopening an existing file resumes it."""

    def __init__(self, path: str | os.PathLike, env_args: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self._f = _open(self.path, "a")
        try:
            self._init(dict(env_args))
        except BaseException:
            self._f.close()
            raise

    def _init(self, env_args: dict[str, Any]) -> None:
        if "data" not in self._f:
            data = self._f.create_group("data")
            data.attrs["format"] = FORMAT
            data.attrs["env_args"] = json.dumps(env_args, sort_keys=True)
        data = self._f["data"]
        old = json.loads(data.attrs["env_args"])
        clash = {
            k: (old.get(k), env_args.get(k))
            for k in set(old) | set(env_args)
            if k not in _MERGEABLE_ARGS and old.get(k) != env_args.get(k)
        }
        if clash:
            raise ValueError(
                f"{self.path} was collected with different settings (existing, new): {clash}; "
                "collect into another file, or delete this one to collect it anew"
            )
        env_args["tasks"] = list(dict.fromkeys([*(old.get("tasks") or []), *(env_args.get("tasks") or [])]))
        data.attrs["env_args"] = json.dumps(env_args, sort_keys=True)
        # Drop what an interrupted run left half-written (it is collected again) and rebuild the
        # recovery index from what is really in the file.
        self._done: set[tuple[str, int]] = set()
        self._next = 0
        entries = []
        for name in sorted(data.keys(), key=lambda n: int(n.removeprefix("demo_"))):
            g = data[name]
            self._next = max(self._next, int(name.removeprefix("demo_")) + 1)
            if g.attrs.get("complete", False):
                self._done.add((str(g.attrs["task"]), int(g.attrs["demo_index"])))
                entries.append(_index_entry(name, g.attrs, {ds: g[ds] for ds in _FLOAT_SETS}))
            else:
                _log.warning("%s: removing incomplete %s left by an interrupted run", self.path, name)
                del data[name]
        data.attrs["total"] = len(self._done)
        self._data = data  # (a path lookup per append costs more than the append's own attributes)
        self._f.flush()
        self._index = open(index_path(self.path), "w")  # kept open for the writer's lifetime
        self._index.write(json.dumps({"format": FORMAT, "env_args": env_args}) + "\n")
        for e in entries:
            self._index.write(json.dumps(e) + "\n")
        self._index.flush()

    def completed(self) -> set[tuple[str, int]]:
        """(task, demo_index) pairs already stored completely."""
        return set(self._done)

    def append(self, demo: RecordedDemo) -> str:
        key = (demo.task, demo.demo_index)
        if key in self._done:
            raise ValueError(f"demo {key} is already in {self.path}")
        obs = np.ascontiguousarray(demo.observations, dtype=np.float32)
        act = np.ascontiguousarray(demo.actions, dtype=np.float32)
        n = len(obs)
        if obs.ndim != 2 or act.ndim != 2 or len(act) != n or n == 0:
            raise ValueError(f"bad demo shapes: observations {obs.shape}, actions {act.shape}")
        executed = act if demo.executed_actions is None else demo.executed_actions
        rewards = np.zeros(n, np.float32) if demo.rewards is None else demo.rewards
        if np.shape(executed) != act.shape or np.shape(rewards) != (n,):
            raise ValueError(f"bad demo shapes: executed {np.shape(executed)}, rewards {np.shape(rewards)}")
        arrays = [np.ascontiguousarray(a, dtype="<f4") for a in (obs, act, executed, rewards)]
        name = f"demo_{self._next}"
        g = self._data.create_group(name)
        # Contiguous, uncompressed datasets: their bytes sit at a fixed offset, which salvage relies on.
        datasets = {ds: g.create_dataset(ds, data=a) for ds, a in zip(_FLOAT_SETS, arrays, strict=True)}
        dones = np.zeros(n, np.uint8)
        dones[-1] = 1
        g.create_dataset("dones", data=dones)
        attrs = {
            "num_samples": n,
            "task": demo.task,
            "seed": int(demo.seed),
            "demo_index": int(demo.demo_index),
            "success_step": int(demo.success_step),
            "checksum": _checksum(arrays),
        }
        g.attrs.update(attrs)
        # Completion mark last, then flush: a crash before this point leaves an ignorable group.
        g.attrs["complete"] = True
        self._done.add(key)
        self._next += 1
        self._data.attrs["total"] = len(self._done)
        self._f.flush()
        self._index.write(json.dumps(_index_entry(name, attrs, datasets)) + "\n")
        self._index.flush()
        return name

    def close(self) -> None:
        if self._f.id.valid:
            self._f.close()
        if not self._index.closed:
            self._index.close()

    def __enter__(self) -> DemoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_demo(path: str | os.PathLike, g: h5py.Group) -> RecordedDemo:
    arrays = [g[ds][()] for ds in _FLOAT_SETS]
    if len(arrays[0]) != int(g.attrs["num_samples"]) or _checksum(arrays) != int(g.attrs["checksum"]):
        raise CorruptDatasetError(f"{path}: {g.name} does not match its checksum; try salvage=True")
    obs, act, executed, rewards = arrays
    return RecordedDemo(
        observations=obs,
        actions=act,
        task=str(g.attrs["task"]),
        seed=int(g.attrs["seed"]),
        demo_index=int(g.attrs["demo_index"]),
        success_step=int(g.attrs["success_step"]),
        rewards=rewards,
        executed_actions=executed,
    )


def _sorted(out: dict[str, list[RecordedDemo]]) -> dict[str, list[RecordedDemo]]:
    # Tasks by name and demos by index, so the result does not depend on (parallel) write order.
    return {task: sorted(out[task], key=lambda d: d.demo_index) for task in sorted(out)}


def _load_strict(path: str | os.PathLike, wanted: set[str] | None) -> dict[str, list[RecordedDemo]]:
    out: dict[str, list[RecordedDemo]] = {}
    with _open(path, "r") as f:
        try:
            groups = [(name, f["data"][name]) for name in f["data"]]
        except (KeyError, OSError, RuntimeError) as e:
            raise CorruptDatasetError(f"{path}: cannot list /data ({e}); try salvage=True") from e
        incomplete = []
        for name, g in groups:
            try:
                if not g.attrs.get("complete", False):
                    incomplete.append(name)
                    continue
                if wanted is not None and str(g.attrs["task"]) not in wanted:
                    continue
                d = _read_demo(path, g)
            except (KeyError, OSError) as e:
                raise CorruptDatasetError(f"{path}: demo {name} is damaged ({e}); try salvage=True") from e
            out.setdefault(d.task, []).append(d)
    if incomplete:
        _log.warning("%s: ignored incomplete demo(s) %s (interrupted write)", path, ", ".join(incomplete))
    return _sorted(out)


def _read_index(path: str | os.PathLike) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    idx = index_path(path)
    if not idx.exists():
        raise CorruptDatasetError(f"{path}: cannot salvage, the recovery index {idx.name} is missing")
    header: dict[str, Any] = {}
    entries: dict[str, dict[str, Any]] = {}
    for line in idx.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
        if "format" in rec:
            header = rec
        else:
            entries[rec["name"]] = rec
    return header, list(entries.values())


def _load_salvage(path: str | os.PathLike, wanted: set[str] | None) -> dict[str, list[RecordedDemo]]:
    _, entries = _read_index(path)
    size = os.path.getsize(path)
    out: dict[str, list[RecordedDemo]] = {}
    lost = []
    with open(path, "rb") as fh:
        for e in entries:
            if wanted is not None and e["task"] not in wanted:
                continue
            arrays = []
            for ds in _FLOAT_SETS:
                offset, width = e["datasets"][ds]
                count = e["num_samples"] * width
                if offset + 4 * count > size:
                    break
                fh.seek(offset)
                a = np.frombuffer(fh.read(4 * count), dtype="<f4")
                arrays.append(a.reshape(e["num_samples"], width) if ds != "rewards" else a)
            if len(arrays) != len(_FLOAT_SETS) or _checksum(arrays) != e["checksum"]:
                lost.append(e["name"])
                continue
            obs, act, executed, rewards = arrays
            d = RecordedDemo(
                obs, act, e["task"], e["seed"], e["demo_index"], e["success_step"], rewards, executed
            )
            out.setdefault(d.task, []).append(d)
    if lost:
        _log.warning("%s: %d demo(s) lost to damage: %s", path, len(lost), ", ".join(lost[:20]))
    return _sorted(out)


def load_demos(
    path: str | os.PathLike, *, tasks: Iterable[str] | None = None, salvage: bool = False
) -> dict[str, list[RecordedDemo]]:
    """Complete demos per task (tasks in name order), each list sorted by demo_index.

    Raises CorruptDatasetError on a truncated or damaged file; with `salvage=True` it instead returns
    every demo whose bytes are intact (via the recovery index) and logs the ones that are lost.
    """
    wanted = None if tasks is None else set(tasks)
    if not salvage:
        return _load_strict(path, wanted)
    try:
        return _load_strict(path, wanted)
    except CorruptDatasetError as e:
        _log.warning("%s", e)
    return _load_salvage(path, wanted)


def read_env_args(path: str | os.PathLike) -> dict[str, Any]:
    with _open(path, "r") as f:
        return json.loads(f["data"].attrs["env_args"])


def salvage_demos(src: str | os.PathLike, dst: str | os.PathLike) -> int:
    """Copy the intact demos of a damaged `src` into `dst` (which collection can then resume)."""
    header, _ = _read_index(src)
    demos = _load_salvage(src, None)
    n = 0
    with DemoWriter(dst, header.get("env_args", {})) as w:
        done = w.completed()
        for task_demos in demos.values():
            for d in task_demos:
                if (d.task, d.demo_index) not in done:
                    w.append(d)
                    n += 1
    return n


def write_mask(path: str | os.PathLike, name: str, demo_names: Iterable[str]) -> None:
    """robomimic-style filter key: /mask/<name> = array of demo group names."""
    with _open(path, "a") as f:
        if f"mask/{name}" in f:
            del f[f"mask/{name}"]
        f.create_dataset(f"mask/{name}", data=np.array([n.encode() for n in demo_names], dtype="S"))
