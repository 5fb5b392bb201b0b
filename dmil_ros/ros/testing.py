"""Test and bench support: an isolated ROS graph and a probe node that calls services and watches topics.

Isolation: every test gets its own ROS_DOMAIN_ID (random in 100..200), localhost-only discovery and
Fast DDS, so parallel test runs on one machine do not see each other.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import rclpy
from rcl_interfaces.msg import Log
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from dmil_ros.ros import interfaces as itf
from dmil_ros.ros.interfaces import ServiceSpec, TopicSpec

_ROSOUT_QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
ROSOUT = TopicSpec("/rosout", Log, _ROSOUT_QOS, "every node's log")


def interrupt(proc: subprocess.Popen, timeout: float) -> str | None:
    """End a node or graph process as Ctrl-C does (SIGINT), killing it after `timeout` s; its output if
    piped. The exit status is then `proc.returncode`."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def isolated_ros_env(domain_id: int | None = None) -> dict[str, str]:
    """os.environ plus the variables that confine a ROS graph to this machine and one domain."""
    env = dict(os.environ)
    env.update({
        "ROS_DOMAIN_ID": str(domain_id if domain_id is not None else random.randint(100, 200)),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
        "PYTHONUNBUFFERED": "1",
    })
    env.pop("ROS_LOCALHOST_ONLY", None)  # deprecated spelling; conflicts with the discovery range
    return env


class Probe:
    """A node in its own context, spun in a background thread; records every watched message."""

    def __init__(self, domain_id: int, name: str = "dmil_test_probe",
                 parameter_services: bool = True) -> None:
        """`parameter_services=False`: a lighter node (7 fewer services in every executor wait)."""
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node(name, context=self.context, start_parameter_services=parameter_services)
        self.messages: dict[str, list[Any]] = defaultdict(list)
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._publishers: dict[str, Any] = {}
        self._subscriptions: dict[str, Any] = {}
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except (ExternalShutdownException, KeyboardInterrupt):
            pass

    def watch(self, spec: TopicSpec, name: str | None = None, qos: Any = None) -> None:
        topic = name or spec.name

        def store(msg: Any) -> None:
            with self._lock:
                self.messages[topic].append(msg)

        # A deep history, as the recorder uses: the probe counts messages, and a busy test process
        # must not lose any to KEEP_LAST eviction while its Python callbacks lag behind.
        sub = self.node.create_subscription(spec.msg_type, topic, store, qos or itf.recording_qos(spec.qos))
        self._subscriptions[topic] = sub

    def wait_matched(self, publish: tuple[TopicSpec, ...] = (), watch: tuple[TopicSpec, ...] = (),
                     timeout: float = 10.0, nodes: Sequence[Node] = ()) -> None:
        """Until the DDS endpoints are matched on both sides. Matching is not symmetric: a writer can list
        a reader whose side does not know the writer yet (the reader drops what comes meanwhile), and a
        reader can list a writer that does not know the reader yet (the writer sends it nothing); a
        volatile reader never gets either back. So: published topics have a reader, and every
        subscription of `nodes` (in-process) to them has matched a publisher; watched topics have a
        publisher, and every publisher of `nodes` on them has matched a subscription."""
        pubs = [self.publisher(spec) for spec in publish]
        subs = [self._subscriptions[spec.name] for spec in watch]
        published = {p.topic_name for p in pubs}
        watched = {s.topic_name for s in subs}
        node_subs = [s for node in nodes for s in node.subscriptions if s.topic_name in published]
        node_pubs = [p for node in nodes for p in node.publishers if p.topic_name in watched]
        self.wait_until(lambda: all(p.get_subscription_count() >= 1 for p in pubs + node_pubs)
                        and all(s.get_publisher_count() >= 1 for s in subs + node_subs),
                        timeout, "matched endpoints")

    def received(self, spec_or_name: TopicSpec | str) -> list[Any]:
        name = spec_or_name if isinstance(spec_or_name, str) else spec_or_name.name
        with self._lock:
            return list(self.messages[name])

    def clear(self, spec_or_name: TopicSpec | str) -> None:
        name = spec_or_name if isinstance(spec_or_name, str) else spec_or_name.name
        with self._lock:
            self.messages[name].clear()

    def publisher(self, spec: TopicSpec, name: str | None = None) -> Any:
        topic = name or spec.name
        if topic not in self._publishers:
            self._publishers[topic] = self.node.create_publisher(spec.msg_type, topic, spec.qos)
        return self._publishers[topic]

    def wait_for_service(self, spec: ServiceSpec, timeout: float) -> bool:
        return self._client(spec).wait_for_service(timeout_sec=timeout)

    def _client(self, spec: ServiceSpec) -> Any:
        if spec.name not in self._clients:
            self._clients[spec.name] = self.node.create_client(spec.srv_type, spec.name)
        return self._clients[spec.name]

    def start_recording(self, timeout: float = 30.0, context: Callable[[], str] = str) -> None:
        """dmil/record/start once the *recorder* is matched with every state and command publisher.

        The probe seeing every endpoint does not mean the recorder has discovered them: under load a
        whole demo was once recorded without a single state. The recorder's answer names the inputs
        it has no publisher for ("none yet"); until it names none, the empty demo is discarded and
        recording restarted. `context()` adds e.g. the graph's log to a timeout's message.
        """
        deadline = time.monotonic() + timeout
        while True:
            res = self.call(itf.RECORD_START)
            assert res.success, res.message
            if "none yet" not in res.message:
                return
            assert time.monotonic() < deadline, f"{res.message}\n{context()}"
            self.call(itf.RECORD_STOP)  # empty: discarded
            time.sleep(0.2)

    def call(self, spec: ServiceSpec, request: Any = None, timeout: float = 30.0) -> Any:
        """Call a service and wait for the response (raises TimeoutError)."""
        client = self._client(spec)
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service {spec.name} not available within {timeout} s")
        done = threading.Event()
        future = client.call_async(request if request is not None else spec.srv_type.Request())
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(timeout):
            raise TimeoutError(f"service {spec.name} did not answer within {timeout} s")
        return future.result()

    def wait_until(self, predicate: Callable[[], Any], timeout: float, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        raise TimeoutError(f"timed out after {timeout} s waiting for {what}")

    def close(self) -> None:
        # The spin thread ends before the node goes: a wait still running on a destroyed node left an
        # InvalidHandle in a task ("exception was never retrieved ... Destroyable" at exit).
        self.executor.shutdown(timeout_sec=1.0)
        self._thread.join(timeout=2.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


class InProcessGraph:
    """Nodes of the package in one context + executor thread, and a probe on the same domain."""

    def __init__(self) -> None:
        env = isolated_ros_env()
        self.domain = int(env["ROS_DOMAIN_ID"])
        os.environ["RMW_IMPLEMENTATION"] = env["RMW_IMPLEMENTATION"]
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = env["ROS_AUTOMATIC_DISCOVERY_RANGE"]
        self.context = Context()
        rclpy.init(context=self.context, domain_id=self.domain)
        self.executor = MultiThreadedExecutor(num_threads=4, context=self.context)
        self.nodes: list[Any] = []
        self.probe = Probe(self.domain)
        self.probe.watch(ROSOUT)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._started = False

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except (ExternalShutdownException, KeyboardInterrupt):
            pass

    def add(self, cls: type, **params: Any) -> Any:
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        node = cls(context=self.context, parameter_overrides=overrides)
        self.nodes.append(node)
        self.executor.add_node(node)
        if not self._started:
            self._thread.start()
            self._started = True
        return node

    def status(self) -> str:
        """Last dmil/policy/status (watch it first)."""
        msgs = self.probe.received(itf.POLICY_STATUS)
        return msgs[-1].data if msgs else ""

    def said(self, text: str) -> bool:
        """Whether any dmil/policy/status so far contained `text` (watch it first). A refusal's status
        is soon replaced (the watchdog's "stale state" follows once no good state comes), so a
        check that needs it together with the log line must not look at the latest status only."""
        return any(text in m.data for m in self.probe.received(itf.POLICY_STATUS))

    def logged(self, text: str) -> bool:
        """Whether any node logged `text` (seen on /rosout)."""
        return any(text in m.msg for m in self.probe.received(ROSOUT.name))

    def twists(self) -> list[Any]:
        """dmil/policy/twist_cmd messages so far (watch it first)."""
        return self.probe.received(itf.POLICY_TWIST)

    def close(self) -> None:
        self.probe.close()
        self.executor.shutdown(timeout_sec=2.0)
        if self._started:
            self._thread.join(timeout=2.0)  # before the nodes go (see Probe.close)
        for node in self.nodes:
            getattr(node, "close", lambda: None)()
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)
