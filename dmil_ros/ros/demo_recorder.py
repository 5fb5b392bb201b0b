"""demo_recorder: teleoperated demonstrations -> one MCAP file each; `dmil/adapt` for the operator.

dmil/record/start (Trigger) opens <demo_dir>/<task>/demo-<time>-NN.mcap.part and writes every message
of the state topics and the operator's command topics (teleop/*; remap them to the real device)
until dmil/record/stop (Trigger) finalizes it as .mcap. The latest state/latched messages are written
at the start so each file stands alone. Each message is logged at its DDS reception time (not when
the executor got round to it), and stop first writes what DDS delivered but the executor has not
handed over yet: rclpy takes one message per subscription per wait and serves a service request
after them, so a recorder that lags behind would otherwise lose the end of every demo. The start
response names every recorded input without a publisher yet, and every state input that has not
delivered a message yet ("none yet"): DDS matching is not symmetric, so a recorder can see the sim's
publisher before the sim's writer sends to it, and the first states would be lost. A demo without
operator commands is discarded.

No silent loss: messages are recorded raw (the serialized bytes as they came) and written as they
arrive, flushed at least every second, so killing the recorder mid-demo leaves a readable .part
(earlier demos untouched); at the next start every leftover .part is recovered as .mcap.recovered or
moved aside, with a log line, never used for adaptation. A clean shutdown mid-demo finalizes it as
.mcap.interrupted (kept for inspection, never used for adaptation). Messages lost before they reach
the recorder (a flooding publisher overflowing the queues) show as gaps in the publisher's sequence
numbers: they are counted per topic, reported every second on dmil/record/status and by record/stop,
and a demo that lost operator commands is not called complete: it is kept as .mcap.incomplete and
record/stop fails with the count.

dmil/adapt (Trigger): checks there is something to adapt to (not recording, >= 1 demo of the current
task, no adaptation in flight) and forwards to the policy node's dmil/policy/adapt, which rebuilds the
demos with its observation mapping, adapts off its control thread and answers with the numbers.
"""

from __future__ import annotations

import time
from typing import Any

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from rclpy.task import Future
from std_msgs.msg import String
from std_srvs.srv import Trigger

from dmil_ros import __version__
from dmil_ros.ros import interfaces as itf
from dmil_ros.ros.embodiment import embodiment_for
from dmil_ros.ros.guarded import guard, subscribe
from dmil_ros.ros.mcap_io import (
    FLUSH_PERIOD,
    DemoWriter,
    leftover_parts,
    list_demos,
    new_demo_path,
    recover_part,
    task_dir,
)
from dmil_ros.ros.runner import run_node

NAME = "demo_recorder"
SERVICE_DISCOVERY_GRACE = 5.0  # s to wait for the policy's adapt service before refusing
LATCHED_ROLES = (itf.TASK.name, itf.EPISODE_INFO.name, *(s.name for s in itf.STATE_TOPICS))


class DemoRecorder(Node):
    def __init__(self, **node_kwargs: Any) -> None:
        """`node_kwargs` go to rclpy's Node (context, parameter_overrides, ...: in-process tests)."""
        super().__init__(NAME, **node_kwargs)
        self.p = itf.declare_parameters(self, itf.RECORDER_PARAMS)
        itf.follow_dynamic_parameters(self, itf.RECORDER_PARAMS, self.p)  # `ros2 param set`, checked
        self._emb = embodiment_for(self.p["env"])  # which operator command topics a demo holds
        self._task: str = self.p["task"]
        self._writer: DemoWriter | None = None
        self._started = 0.0
        self._latest: dict[str, tuple[str, bytes, int | None]] = {}  # role -> (topic, last message, rx ns)
        self._seq: dict[str, int] = {}  # role -> publication sequence number of its last message
        self._dropped: dict[str, int] = {}  # role -> messages lost while recording (sequence gaps)
        self._command_roles = {s.name for s in (itf.TELEOP_TWIST, itf.TELEOP_GRIPPER,
                                                itf.TELEOP_JOINT_VELOCITY)} & {s.name for s in
                                                                               self._emb.recorded_topics}
        self._heard: set[str] = set()  # roles that have delivered at least one message
        self._adapting = False
        self._topics: dict[str, str] = {}
        self._subs: list[tuple[itf.TopicSpec, Any]] = []
        self._sub_of: dict[str, Any] = {}
        self._recover_leftovers()
        state_qos = itf.state_qos(self.p["state_reliability"])
        for spec in self._emb.recorded_topics:  # metaworld: itf.RECORDED_TOPICS
            qos = state_qos if spec in itf.STATE_TOPICS or spec is itf.TASK_SUCCESS else spec.qos
            # raw: the serialized bytes go to the file as they came, no (de)serialization per message
            sub = subscribe(self, spec.msg_type, spec.name, self._callback(spec), itf.recording_qos(qos),
                            raw=True)
            self._topics[spec.name] = sub.topic_name  # after remapping: what Foxglove will show
            self._subs.append((spec, sub))
            self._sub_of[spec.name] = sub
            if spec is self._emb.teleop_command:  # metaworld: the twist
                self._twist_sub = sub
        self._pub_status = self.create_publisher(itf.RECORD_STATUS.msg_type, itf.RECORD_STATUS.name,
                                                 itf.RECORD_STATUS.qos)
        self._status = ""
        # flushes the demo being written (FLUSH_PERIOD) and reports its counts and drops
        self.create_timer(FLUSH_PERIOD / 2, self._flush_and_report)
        self._set_status("idle")
        self.create_service(Trigger, itf.RECORD_START.name, self._on_start)
        self.create_service(Trigger, itf.RECORD_STOP.name, self._on_stop)
        # The adapt service awaits the policy's answer: while it waits, the client (and the timeout timer)
        # must not be blocked behind it in the node's default mutually exclusive group.
        self._async_group = ReentrantCallbackGroup()
        self.create_service(Trigger, itf.ADAPT.name, self._on_adapt, callback_group=self._async_group)
        self._policy_adapt = self.create_client(Trigger, itf.POLICY_ADAPT.name,
                                                callback_group=self._async_group)
        self.get_logger().info(f"demos of {self._task} go to {task_dir(self.p['demo_dir'], self._task)}")

    @property
    def twist_topic(self) -> str:
        return self._topics[self._emb.teleop_command.name]

    def _callback(self, spec: itf.TopicSpec) -> Any:
        def on_msg(msg: Any, info: Any) -> None:  # two arguments: rclpy passes the MessageInfo
            self._on_msg(spec, msg, info.get("received_timestamp") or None,
                         info.get("publication_sequence_number"))
        return on_msg

    def _recover_leftovers(self) -> None:
        """`.part` files of recordings that never finished (a killed recorder): recovered as
        .mcap.recovered or moved aside, each with a log line; never silently used."""
        for part in leftover_parts(self.p["demo_dir"]):
            try:
                _, line = recover_part(part)
            except OSError as e:
                line = f"cannot recover the leftover {part}: {e}; left as it is (never used for adaptation)"
            self.get_logger().warning(line)

    def _drain(self) -> int:
        """Hand what DDS has delivered but the executor has not taken yet to _on_msg, in arrival order
        (the executor runs subscriptions before services within a wait, so nothing it took is left)."""
        pending = []
        for spec, sub in self._subs:
            for _ in range(itf.RECORDING_DEPTH):  # bounded: a flooding publisher cannot stall stop
                with sub.handle:
                    taken = sub.handle.take_message(sub.msg_type, sub.raw)
                if taken is None:
                    break
                msg, info = taken
                pending.append((info.get("received_timestamp") or time.time_ns(), len(pending), spec, msg,
                                info.get("publication_sequence_number")))
        on_msg = guard(self, "the recorded topics", self._on_msg)  # as the subscriptions' callbacks
        for received, _, spec, msg, seq in sorted(pending, key=lambda p: p[:2]):
            on_msg(spec, msg, received, seq)
        return len(pending)

    def _count_gap(self, role: str, seq: int | None) -> None:
        """Messages lost before they reached us (the publisher's or our history overflowed under load)
        show as a gap in the publisher's sequence numbers. Counted while recording, and only with a
        single publisher on the topic: two publishers' numbers interleave."""
        if not isinstance(seq, int) or seq <= 0:
            return
        last = self._seq.get(role)
        self._seq[role] = seq
        if last is not None and seq > last + 1 and self._writer is not None \
                and self._sub_of[role].get_publisher_count() == 1:
            self._dropped[role] = self._dropped.get(role, 0) + seq - last - 1

    def _on_msg(self, spec: itf.TopicSpec, data: bytes, received_ns: int | None = None,
                seq: int | None = None) -> None:
        topic = self._topics[spec.name]
        self._heard.add(spec.name)
        self._count_gap(spec.name, seq)
        if spec is itf.TASK:
            task = deserialize_message(data, String).data
            if task != self._task:
                if self._writer is not None:
                    self.get_logger().warning(f"task changed to {task} during a demo of {self._task}")
                self._task = task
        if spec.name in LATCHED_ROLES:
            self._latest[spec.name] = (topic, data, received_ns)
        if self._writer is None:
            return
        try:
            self._writer.write_serialized(topic, spec.msg_type, data, received_ns)
        except OSError as e:  # disk full, directory gone: stop cleanly, keep what was written
            self.get_logger().error(f"cannot write {self._writer.part_path}: {e}; recording stopped, what "
                                    "was written stays in the .part (recovered at the next start)")
            self._writer.abandon()
            self._writer = None

    def _set_status(self, status: str) -> None:
        if status != self._status:
            self._status = status
            self._pub_status.publish(String(data=status))

    def _progress(self) -> str:
        assert self._writer is not None
        dropped = sum(self._dropped.values())
        where = ", ".join(f"{self._topics[r]}: {n}" for r, n in sorted(self._dropped.items()) if n)
        counts = self._writer.counts
        return (f"{sum(counts.values())} messages ({counts.get(self.twist_topic, 0)} operator commands), "
                f"{dropped} dropped" + (f" ({where})" if where else ""))

    def _flush_and_report(self) -> None:
        if self._writer is None:
            return
        try:
            self._writer.flush()
        except OSError as e:
            self.get_logger().error(f"cannot write {self._writer.part_path}: {e}", throttle_duration_sec=5.0)
        self._set_status(f"recording {self._writer.part_path.name}: {self._progress()}")

    # --- recording ----------------------------------------------------------------------------
    def _on_start(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        if self._writer is not None:
            res.success, res.message = False, f"already recording to {self._writer.part_path}"
            return res
        path = new_demo_path(self.p["demo_dir"], self._task)
        meta = {"task": self._task, "env": self.p["env"], "started_unix": f"{time.time():.3f}",
                "dmil_ros_version": __version__, **{f"topic:{r}": t for r, t in self._topics.items()}}
        types = {spec.name: spec.msg_type for spec, _ in self._subs}
        try:
            self._writer = DemoWriter(path, meta)
            self._dropped = {}
            for role, (topic, data, received_ns) in self._latest.items():
                self._writer.write_serialized(topic, types[role], data, received_ns)
        except OSError as e:
            res.success, res.message = False, f"cannot create {path}: {e}"
            return res
        self._started = time.monotonic()
        senders = self._twist_sub.get_publisher_count()
        inputs = (*itf.STATE_TOPICS, itf.TELEOP_TWIST, itf.TELEOP_GRIPPER, itf.TELEOP_JOINT_VELOCITY)
        # State streams (the sim republishes its state while idle): silent until a message has arrived.
        silent = [self._topics[spec.name] for spec, sub in self._subs
                  if spec in inputs and (sub.get_publisher_count() == 0
                                         or (spec in itf.STATE_TOPICS and spec.name not in self._heard))]
        hint = f" (none yet on {', '.join(silent)}: are the robot/sim and the device up?)" if silent else ""
        res.success = True
        res.message = (f"recording a demo of {self._task} to {path}; {senders} operator command "
                       f"publisher(s) on {self.twist_topic}{hint}")
        self.get_logger().info(res.message)
        return res

    def _on_stop(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        if self._writer is not None:
            self._drain()
            progress = self._progress()
        writer, self._writer = self._writer, None
        if writer is None:
            res.success, res.message = False, "not recording"
            return res
        self._set_status("idle")
        commands = writer.counts.get(self.twist_topic, 0)
        lost_commands = sum(n for r, n in self._dropped.items() if r in self._command_roles)
        if commands == 0 and not lost_commands:
            writer.discard()
            res.success = False
            res.message = f"no operator commands on {self.twist_topic} were recorded; demo discarded"
            self.get_logger().warning(res.message)
            return res
        # Commands lost: the demo is not what the operator did. Kept for inspection, never adapted on.
        final = writer.path.with_name(writer.path.name + ".incomplete") if lost_commands else None
        try:
            path = writer.finish(final)
        except OSError as e:
            res.success, res.message = False, f"cannot finalize {writer.part_path}: {e}"
            return res
        seconds = time.monotonic() - self._started
        if lost_commands:
            res.success = False
            res.message = (f"demo incomplete: {lost_commands} operator command(s) were lost before reaching "
                           f"the recorder (it fell behind: queue overflow); {progress}; kept as {path}, not "
                           "used for adaptation: record the demo again")
            self.get_logger().error(res.message)
            return res
        total = len(list_demos(self.p["demo_dir"], self._task))
        res.success = True
        res.message = (f"saved {path} ({commands} operator commands, {sum(writer.counts.values())} messages, "
                       f"{sum(self._dropped.values())} dropped, {seconds:.1f} s); {total} demo(s) of "
                       f"{self._task}")
        self.get_logger().info(res.message)
        return res

    # --- adaptation ---------------------------------------------------------------------------
    async def _on_adapt(self, _req: Trigger.Request, res: Trigger.Response) -> Trigger.Response:
        res.success = False
        if self._writer is not None:
            res.message = "a demo is being recorded; call dmil/record/stop first"
        elif self._adapting:
            res.message = "adaptation already running; try again when it has finished"
        elif not list_demos(self.p["demo_dir"], self._task):
            res.message = (f"no demos of task {self._task} in {task_dir(self.p['demo_dir'], self._task)}; "
                           "record one with dmil/record/start and dmil/record/stop")
        # Discovery can lag behind the caller's (right after bring-up): allow it a moment.
        elif not self._policy_adapt.wait_for_service(timeout_sec=SERVICE_DISCOVERY_GRACE):
            res.message = f"{self._policy_adapt.srv_name} is not available (is policy_node running?)"
        else:
            self._adapting = True
            try:
                res.success, res.message = await self._forward()
            finally:
                self._adapting = False
        if res.success:  # rclpy loggers insist on one severity per call site
            self.get_logger().info(f"dmil/adapt: {res.message}")
        else:
            self.get_logger().warning(f"dmil/adapt: {res.message}")
        return res

    async def _forward(self) -> tuple[bool, str]:
        future: Future = self._policy_adapt.call_async(Trigger.Request())
        timeout = self.p["adapt_timeout"]
        timer = self.create_timer(timeout, future.cancel, callback_group=self._async_group)
        try:
            reply = await future
        finally:
            self.destroy_timer(timer)
        if future.cancelled() or reply is None:
            return False, f"the policy node did not answer within {timeout:g} s"
        return bool(reply.success), reply.message

    def close(self) -> None:
        """Clean shutdown mid-demo: keep the data as .mcap.interrupted (never used for adaptation)."""
        if self._writer is not None:
            path = self._writer.finish(self._writer.path.with_name(self._writer.path.name + ".interrupted"))
            self.get_logger().warning(f"shut down mid-demo; kept the partial demo as {path}")
            self._writer = None


def main(argv: list[str] | None = None) -> int:
    return run_node(NAME, DemoRecorder, argv)


if __name__ == "__main__":
    raise SystemExit(main())
