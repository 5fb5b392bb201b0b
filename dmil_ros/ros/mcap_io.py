"""Demonstrations on disk: one MCAP file per demo (ros2 profile, CDR; readable by ros2 bag and Foxglove).

Writing: `DemoWriter` streams messages into `<name>.mcap.part` (one record each, flushed at least
every second) and renames it to `<name>.mcap` only when the demo is finalized, so a recorder killed
mid-demo leaves a readable `.part` next to intact earlier demos, and nothing ever adapts on a
half-written demo: `recover_part` turns a leftover `.part` into `<name>.mcap.recovered` (a complete
MCAP of what was written, for inspection; not listed by `list_demos`), or moves an unreadable one
aside as `.part.unreadable`. A metadata record "dmil_ros" stores the
task and the topic each role was recorded from (topics may be remapped on a robot).

Reading: `demo_from_mcap` rebuilds the core `Demo` with the policy node's own observation mapping:
one sample per operator twist command, paired with the state it was computed from (same header
stamp; else the latest complete state), the previous frame carried from the previous sample, the
action converted back from the twist + latest gripper command. Kitchen demos (joint-velocity
commands): the same pairing, in embodiment.KitchenEmbodiment.demo_from_messages.
"""

from __future__ import annotations

import bisect
import importlib
import math
import os
import re
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from mcap.exceptions import McapError
from mcap.reader import make_reader
from mcap.records import Channel, Message, Metadata, Schema
from mcap.stream_reader import StreamReader
from mcap.well_known import MessageEncoding, SchemaEncoding
from mcap.writer import Writer as McapWriter
from mcap_ros2.decoder import DecoderFactory
from rclpy.serialization import serialize_message

from dmil_ros.core.data import Demo
from dmil_ros.ros import interfaces as itf
from dmil_ros.ros.observation import (
    ObservationBuilder,
    ObservationMapping,
    StateError,
    command_to_action,
    robot_state_from_msgs,
    stamp_ns,
)
from dmil_ros.ros.state_sync import ROLES, StateSync

METADATA_NAME = "dmil_ros"
SUFFIX = ".mcap"
PART_SUFFIX = ".mcap.part"


class DemoFileError(ValueError):
    """A demo file is missing, corrupt or holds no usable demonstration; the message says why."""


# --- message definitions (ros2msg schema text) from the generated Python classes -------------------
_PRIMITIVES = {"boolean": "bool", "octet": "byte", "float": "float32", "double": "float64"}


def _field_type(rosidl: str) -> tuple[str, str | None]:
    """rosidl type string -> (.msg type string, nested 'pkg/Name' or None)."""
    m = re.fullmatch(r"sequence<([^,>]+)(?:, (\d+))?>", rosidl)
    if m:
        base, nested = _field_type(m.group(1))
        return (f"{base}[<={m.group(2)}]" if m.group(2) else f"{base}[]"), nested
    m = re.fullmatch(r"(.+)\[(\d+)\]", rosidl)
    if m:
        base, nested = _field_type(m.group(1))
        return f"{base}[{m.group(2)}]", nested
    m = re.fullmatch(r"string<(\d+)>", rosidl)
    if m:
        return f"string<={m.group(1)}", None
    if "/" in rosidl:
        return rosidl, rosidl
    return _PRIMITIVES.get(rosidl, rosidl), None


def _msg_class(full_name: str) -> Any:
    pkg, name = full_name.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


def _type_name(msg_type: Any) -> str:
    pkg = msg_type.__module__.split(".")[0]
    return f"{pkg}/msg/{msg_type.__name__}"


def msgdef_text(msg_type: Any) -> str:
    """Concatenated .msg definition with dependencies, the layout rosbag2 writes into MCAP schemas."""
    def body(cls: Any) -> tuple[str, list[str]]:
        lines, deps = [], []
        for field, rosidl in cls.get_fields_and_field_types().items():
            text, nested = _field_type(rosidl)
            lines.append(f"{text} {field}")
            if nested:
                deps.append(nested)
        return "\n".join(lines) + "\n", deps

    main, todo = body(msg_type)
    parts, seen = [main], set()
    while todo:
        dep = todo.pop(0)
        if dep in seen:
            continue
        seen.add(dep)
        text, more = body(_msg_class(dep))
        parts.append("=" * 80 + f"\nMSG: {dep}\n{text}")
        todo.extend(more)
    return "\n".join(parts)


# --- writing --------------------------------------------------------------------------------------
FLUSH_PERIOD = 1.0  # [s] the longest a written message waits in the process before it is on its way to disk


class DemoWriter:
    """One demonstration being recorded. Call `finish()` to publish it under its final name.

    Written incrementally: every message goes out as its own MCAP record (no chunk held in memory) and
    the file is flushed to the OS at least every FLUSH_PERIOD (on `write`, and by the recorder's timer
    through `flush`), so a recorder killed mid-demo leaves a `.part` holding everything up to the last
    second, readable with `read_partial` (`recover_part` finalizes it). Messages are CDR-serialized by
    rclpy (rosbag2's encoding); `write_serialized` takes bytes straight from a raw subscription."""

    def __init__(self, path: Path, metadata: dict[str, str]) -> None:
        self.path = Path(path)
        self.part_path = self.path.with_name(self.path.name[: -len(SUFFIX)] + PART_SUFFIX)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.part_path, "wb")  # noqa: SIM115 - closed in finish()
        self._writer = McapWriter(self._file, use_chunking=False)
        self._writer.start(profile="ros2", library=f"dmil_ros {_version()}")
        self._writer.add_metadata(METADATA_NAME, {k: str(v) for k, v in metadata.items()})
        self._schemas: dict[type, int] = {}
        self._channels: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        self.flush()

    def write(self, topic: str, msg: Any, log_time_ns: int | None = None) -> None:
        self.write_serialized(topic, type(msg), serialize_message(msg), log_time_ns)

    def write_serialized(self, topic: str, msg_type: type, data: bytes,
                         log_time_ns: int | None = None) -> None:
        channel = self._channels.get(topic)
        if channel is None:
            schema = self._schemas.get(msg_type)
            if schema is None:
                schema = self._schemas[msg_type] = self._writer.register_schema(
                    _type_name(msg_type), SchemaEncoding.ROS2, msgdef_text(msg_type).encode())
            channel = self._writer.register_channel(topic, MessageEncoding.CDR, schema)
            self._channels[topic] = channel
        now = time.time_ns()
        self._writer.add_message(channel, log_time=log_time_ns or now, data=bytes(data), publish_time=now,
                                 sequence=self.counts.get(topic, 0))
        self.counts[topic] = self.counts.get(topic, 0) + 1
        if time.monotonic() - self._flushed >= FLUSH_PERIOD:
            self.flush()

    def flush(self) -> None:
        """Hand what was written to the OS (a killed process loses nothing flushed; power loss may)."""
        self._file.flush()
        self._flushed = time.monotonic()

    def finish(self, path: Path | None = None) -> Path:
        """Write the MCAP summary and footer, fsync and rename into place (atomically)."""
        final = Path(path) if path is not None else self.path
        self._writer.finish()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.part_path, final)
        _fsync_dir(final.parent)
        return final

    def discard(self) -> None:
        self._file.close()
        self.part_path.unlink(missing_ok=True)

    def abandon(self) -> None:
        """Stop writing but keep the `.part` (what reached it stays recoverable with recover_part)."""
        try:
            self._file.close()
        except OSError:
            pass


def _version() -> str:
    from dmil_ros import __version__

    return __version__


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def task_dir(demo_dir: str | Path, task: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", task) or "_"
    return Path(os.path.expanduser(str(demo_dir))) / safe


def new_demo_path(demo_dir: str | Path, task: str) -> Path:
    directory = task_dir(demo_dir, task)
    stem = time.strftime("demo-%Y%m%d-%H%M%S")
    n = 0
    while any((directory / f"{stem}-{n:02d}{s}").exists() for s in (SUFFIX, PART_SUFFIX)):
        n += 1
    return directory / f"{stem}-{n:02d}{SUFFIX}"


def list_demos(demo_dir: str | Path, task: str) -> list[Path]:
    """Finalized demos of `task`, oldest first (names sort by recording time)."""
    directory = task_dir(demo_dir, task)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.name.endswith(SUFFIX) and p.is_file())


# --- reading --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecordedMessage:
    role: str  # the interfaces.TopicSpec name, whatever the topic was remapped to
    topic: str
    log_time_ns: int
    msg: Any


def read_metadata(path: str | Path) -> dict[str, str]:
    try:
        with open(path, "rb") as f:
            for record in make_reader(f).iter_metadata():
                if record.name == METADATA_NAME:
                    return dict(record.metadata)
    except (McapError, OSError, ValueError, EOFError) as e:
        raise DemoFileError(f"{path} is corrupt or unreadable: {type(e).__name__}: {e}") from e
    return {}


def read_messages(path: str | Path) -> Iterator[RecordedMessage]:
    """Every message of the demo in log-time order, tagged with its role."""
    meta = read_metadata(path)
    role_of = {meta.get(f"topic:{spec.name}", "/" + spec.name): spec.name for spec in itf.ALL_RECORDED_TOPICS}
    try:
        with open(path, "rb") as f:
            reader = make_reader(f, decoder_factories=[DecoderFactory()])
            for _schema, channel, message, decoded in reader.iter_decoded_messages(log_time_order=True):
                role = role_of.get(channel.topic)
                if role is not None:
                    yield RecordedMessage(role, channel.topic, message.log_time, decoded)
    except (McapError, OSError, ValueError, EOFError, KeyError, IndexError) as e:
        raise DemoFileError(f"{path} is corrupt or unreadable: {type(e).__name__}: {e}") from e
    except Exception as e:  # the CDR decoder raises assorted errors on garbage bytes
        raise DemoFileError(f"{path} is corrupt or unreadable: {type(e).__name__}: {e}") from e


@dataclass
class PartialDemo:
    """What a `.part` file holds up to its last complete record (the writer may have been killed)."""

    metadata: dict[str, str]
    schemas: dict[int, Schema]
    channels: dict[int, Channel]
    messages: list[Message]


def read_partial(path: str | Path) -> PartialDemo:
    """Every complete record of a possibly truncated demo file, in file order; DemoFileError if not even
    the MCAP header is there."""
    demo = PartialDemo({}, {}, {}, [])
    with open(path, "rb") as f:
        try:
            records = StreamReader(f, skip_magic=False).records
            for record in records:
                if isinstance(record, Schema):
                    demo.schemas[record.id] = record
                elif isinstance(record, Channel):
                    demo.channels[record.id] = record
                elif isinstance(record, Message) and record.channel_id in demo.channels:
                    demo.messages.append(record)
                elif isinstance(record, Metadata) and record.name == METADATA_NAME:
                    demo.metadata = dict(record.metadata)
        except (McapError, EOFError, ValueError, struct.error) as e:
            if not demo.schemas and not demo.metadata:
                raise DemoFileError(f"{path} holds no readable MCAP data: {type(e).__name__}: {e}") from e
            # else: the truncated end of an interrupted recording; everything before it is kept
    return demo


def decode_partial(demo: PartialDemo) -> Iterator[tuple[str, int, Any]]:
    """(topic, log time, decoded message) of a partial demo's messages."""
    factory = DecoderFactory()
    for message in demo.messages:
        channel = demo.channels[message.channel_id]
        decoder = factory.decoder_for(channel.message_encoding, demo.schemas.get(channel.schema_id))
        if decoder is not None:
            yield channel.topic, message.log_time, decoder(message.data)


def recover_part(part: Path) -> tuple[Path, str]:
    """A leftover `<name>.mcap.part` made safe: what it holds written out as a complete MCAP
    `<name>.mcap.recovered` (readable by any tool; never adapted on unless the operator renames it to
    .mcap), or, if nothing is readable, the file moved aside as `<name>.mcap.part.unreadable`. Returns
    the new path and a line for the log."""
    base = part.name[: -len(PART_SUFFIX)]
    try:
        demo = read_partial(part)
    except (DemoFileError, OSError) as e:
        aside = part.with_name(part.name + ".unreadable")
        os.replace(part, aside)
        return aside, f"moved the unreadable leftover {part.name} aside as {aside.name} ({e})"
    target = part.with_name(base + SUFFIX + ".recovered")
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "wb") as f:
        writer = McapWriter(f, use_chunking=False)
        writer.start(profile="ros2", library=f"dmil_ros {_version()} (recovered)")
        writer.add_metadata(METADATA_NAME, {**demo.metadata, "recovered_from": part.name})
        ids = {sid: writer.register_schema(sc.name, sc.encoding, sc.data) for sid, sc in demo.schemas.items()}
        chans = {cid: writer.register_channel(ch.topic, ch.message_encoding, ids.get(ch.schema_id, 0),
                                              ch.metadata) for cid, ch in demo.channels.items()}
        for m in demo.messages:
            writer.add_message(chans[m.channel_id], log_time=m.log_time, data=m.data,
                               publish_time=m.publish_time, sequence=m.sequence)
        writer.finish()
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    part.unlink()
    _fsync_dir(part.parent)
    return target, (f"recovered the interrupted recording {part.name} ({len(demo.messages)} messages) as "
                    f"{target.name}; not used for adaptation: inspect it, and rename it to {base}{SUFFIX} "
                    "to use it")


def leftover_parts(demo_dir: str | Path) -> list[Path]:
    """`.mcap.part` files in the task folders of `demo_dir` (recordings that never finished)."""
    root = Path(os.path.expanduser(str(demo_dir)))
    if not root.is_dir():
        return []
    return sorted(p for d in root.iterdir() if d.is_dir() for p in d.glob("*" + PART_SUFFIX) if p.is_file())


def track_state(rec: RecordedMessage, sync: StateSync, by_stamp: dict[int, Any]) -> bool:
    """Feed a recorded state part to `sync`, indexing every complete state by its stamp.

    False (nothing done) when `rec` is not a state part, so callers go on with their own roles.
    """
    if rec.role not in ROLES:
        return False
    sync.update(rec.role, rec.msg, rec.log_time_ns * 1e-9)
    exact = sync.exact()
    if exact is not None:
        by_stamp[exact.stamp_ns] = exact
    return True


def demo_from_messages(
    messages: list[RecordedMessage], mapping: ObservationMapping, name: str = "demo"
) -> Demo:
    """Pair each operator twist with its state and rebuild (observation, action) samples."""
    sync = StateSync()
    by_stamp: dict[int, Any] = {}
    twists: list[tuple[int, Any, Any, int]] = []  # (log time, twist, state at that time, episode)
    grippers: list[tuple[int, float]] = []
    episode = 0
    for rec in messages:
        if track_state(rec, sync, by_stamp):
            continue
        if rec.role == itf.EPISODE_INFO.name:
            episode = _episode_number(rec.msg.data, episode)  # a reset restarts the previous frame
        elif rec.role == itf.TELEOP_TWIST.name:
            twists.append((rec.log_time_ns, rec.msg, sync.latest(rec.log_time_ns * 1e-9, math.inf), episode))
        elif rec.role == itf.TELEOP_GRIPPER.name and math.isfinite(rec.msg.data):
            grippers.append((rec.log_time_ns, float(rec.msg.data)))
    if not twists:
        raise DemoFileError(f"{name}: no operator commands ({itf.TELEOP_TWIST.name}) recorded")

    gripper_times = [t for t, _ in grippers]
    builder = ObservationBuilder(mapping)
    observations, actions, used = [], [], set()
    last_episode = None
    for i, (_t, twist, latest, ep) in enumerate(twists):
        stamp = stamp_ns(twist.header.stamp)
        if stamp and stamp in used:
            continue  # a second command for a state already acted on (the sim ignored it too)
        state_set = by_stamp.get(stamp) if stamp else None
        state_set = state_set or latest
        if state_set is None:
            continue  # commands before the first complete state
        used.add(stamp)
        # The gripper command of this cycle: the latest one sent before the next twist.
        until = twists[i + 1][0] if i + 1 < len(twists) else math.inf
        k = bisect.bisect_right(gripper_times, until)
        gripper = grippers[k - 1][1] if k else -1.0  # never commanded: open, as after reset
        try:
            state = robot_state_from_msgs(mapping, state_set.joints, state_set.ee, state_set.objects,
                                          state_set.goal)
            if ep != last_episode:
                builder.reset()
                last_episode = ep
            observations.append(builder.observe(state))
        except StateError as e:
            raise DemoFileError(f"{name}: command {i}: {e}") from e
        actions.append(command_to_action(twist, gripper))
    if not observations:
        raise DemoFileError(f"{name}: no operator command came with a complete state")
    return Demo(np.stack(observations).astype(np.float32), np.stack(actions).astype(np.float32),
                task=mapping.task)


def _episode_number(info_json: str, current: int) -> int:
    info = itf.parse_episode_info(info_json)
    return current if info is None else info["episode"]


def demo_from_mcap(path: str | Path, mapping: Any) -> Demo:
    """The demo rebuilt with `mapping` (an ObservationMapping, or a kitchen mapping: the embodiment of
    dmil_ros/ros/embodiment.py that made it decides how commands and states are read)."""
    from dmil_ros.ros.embodiment import embodiment_of

    path = Path(path)
    if not path.is_file():
        raise DemoFileError(f"{path} does not exist")
    check_recorded_task(path, mapping.task)
    return embodiment_of(mapping).demo_from_messages(list(read_messages(path)), mapping, name=path.name)


def check_recorded_task(path: Path, task: str) -> None:
    """DemoFileError naming the file unless its metadata says it is a demo of `task`: a demo of another
    task (copied into this task's folder, or recorded while the task topic said otherwise) must not be
    adapted on without a word."""
    recorded = read_metadata(path).get("task")
    if recorded is None:
        raise DemoFileError(f"{path.name} records no task (no '{METADATA_NAME}' metadata with a task); "
                            f"not used for {task}")
    if recorded != task:
        raise DemoFileError(f"{path.name} is a demo of {recorded}, not of {task}; move it to {recorded}'s "
                            "folder or delete it")
