"""The node's resource metrics: CPU and memory of its pods and of itself, read from cgroups.

This is the part of kubelet (with cAdvisor) that metrics-server scrapes. The API server asks each
node's agent for it when someone reads `metrics.k8s.io` (`kubectl top`, the HorizontalPodAutoscaler),
so usage always comes from the node that runs the pod. CPU usage is a rate: the cgroup's
cumulative CPU time read twice, divided by the time between the two readings (the `window`).
Memory is the working set (usage minus inactive file pages), as cAdvisor reports it.

Readings are taken every `resolution` seconds (metrics-server's `--metric-resolution`, 15 s), but
only while someone reads the metrics: after `idle_after` seconds without a reader the sampler
sleeps, so an idle node with a thousand pods spends nothing on it. A read that finds the sampler
asleep takes two readings `COLD_WINDOW_SECONDS` apart, so it can still answer with a rate.
A container appears once it has two readings, as with metrics-server; a restarted container is
a new cgroup (a new container id) and starts over.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from minikube_py.api.metrics import (
    ContainerMetrics, NodeMetrics, PodMetrics, format_binary_bytes, format_go_duration, format_nanocores)
from minikube_py.api.meta import ObjectMeta
from minikube_py.api.times import format_time
from minikube_py.agent.pod import PodTable
from minikube_py.clock import Clock
from minikube_py.runtime.types import ResourceUsage, Runtime

log = logging.getLogger(__name__)

DEFAULT_RESOLUTION_SECONDS = 15.0
IDLE_AFTER_SECONDS = 600.0
COLD_WINDOW_SECONDS = 0.5
NODE_KEY = ""


@dataclass(frozen=True)
class Reading:
    time: float  # the clock's wall time of the reading
    usage: ResourceUsage


@dataclass(frozen=True)
class Rate:
    """Usage over a window: CPU as nanocores, memory as the newest working set."""

    timestamp: float
    window: float
    nanocores: int
    working_set_bytes: int

    def usage(self) -> dict[str, str]:
        return {"cpu": format_nanocores(self.nanocores), "memory": format_binary_bytes(self.working_set_bytes)}


def rate_between(previous: Reading, latest: Reading) -> Rate | None:
    """The CPU rate between two readings of one cgroup; None when it cannot be told (a counter
    missing or going backwards, no time between them)."""
    window = latest.time - previous.time
    before, after = previous.usage.cpu_usage_ns, latest.usage.cpu_usage_ns
    if window <= 0 or before is None or after is None or after < before:
        return None
    return Rate(latest.time, window, round((after - before) / window), latest.usage.memory_working_set_bytes or 0)


class ResourceMetricsCollector:
    """Keeps the last two readings of every running container's cgroup and of the node's, and
    turns them into PodMetrics and NodeMetrics (without labels: the API server adds them)."""

    def __init__(self, runtime: Runtime, table: PodTable, node_name: str, clock: Clock,
                 resolution: float = DEFAULT_RESOLUTION_SECONDS, idle_after: float = IDLE_AFTER_SECONDS):
        self.runtime = runtime
        self.table = table
        self.node_name = node_name
        self.clock = clock
        self.resolution = resolution
        self.idle_after = idle_after
        self._readings: dict[str, tuple[Reading | None, Reading]] = {}  # container id (NODE_KEY: node) -> (previous, latest)
        self._last_pass: float | None = None  # monotonic time of the last reading pass
        self._last_read = float("-inf")  # monotonic time someone last asked
        self._lock = threading.Lock()
        self._fresh_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the sampler

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="agent-resource-metrics", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stopping.is_set():
            if self.clock.monotonic() - self._last_read > self.idle_after:
                self._wake.wait()  # asleep until someone reads the metrics
                self._wake.clear()
                continue
            since = self.clock.monotonic() - self._last_pass if self._last_pass is not None else self.resolution
            if since >= self.resolution:
                try:
                    self.take_readings()
                except Exception:  # a reading must never end the sampler
                    log.exception("reading the node's cgroup counters failed; trying again in %.0fs", self.resolution)
                since = 0.0
            self._wake.wait(max(0.0, self.resolution - since))
            self._wake.clear()

    def take_readings(self) -> None:
        """One pass: the node's cgroup and every running container's."""
        seen = {NODE_KEY}
        readings = [(NODE_KEY, self.runtime.node_usage())]
        for record in self.table.all():
            if record.sandbox is None or record.terminal_phase:
                continue
            for container in record.containers.values():
                if container.running is not None:
                    seen.add(container.running.id)
                    readings.append((container.running.id, self.runtime.container_usage(record.sandbox,
                                                                                        container.running.id)))
        now = self.clock.now()
        with self._lock:
            for key, usage in readings:
                if usage is not None:
                    previous = self._readings.get(key)
                    self._readings[key] = (previous[1] if previous else None, Reading(now, usage))
            for key in list(self._readings):
                if key not in seen:
                    del self._readings[key]
            self._last_pass = self.clock.monotonic()

    # -- what the API server asks for

    def _ensure_fresh(self) -> None:
        """Mark the metrics as read, and when the sampler was asleep take two readings now."""
        with self._fresh_lock:
            was_idle = self.clock.monotonic() - self._last_read > self.idle_after
            self._last_read = self.clock.monotonic()
            stale = self._last_pass is None or self.clock.monotonic() - self._last_pass > 2 * self.resolution
            if was_idle or stale:
                self.take_readings()
                self.clock.sleep(COLD_WINDOW_SECONDS)
                self.take_readings()
                self._wake.set()

    def _rate(self, key: str) -> Rate | None:
        with self._lock:
            previous, latest = self._readings.get(key, (None, None))
        if previous is None or latest is None:
            return None
        return rate_between(previous, latest)

    def node_metrics(self) -> NodeMetrics | None:
        self._ensure_fresh()
        rate = self._rate(NODE_KEY)
        if rate is None:
            return None
        return NodeMetrics(metadata=ObjectMeta(name=self.node_name), timestamp=format_time(rate.timestamp),
                           window=format_go_duration(rate.window), usage=rate.usage())

    def pod_metrics(self) -> list[PodMetrics]:
        """A PodMetrics for each running pod all of whose running containers have a rate."""
        self._ensure_fresh()
        answer = []
        for record in self.table.all():
            if record.sandbox is None or record.terminal_phase:
                continue
            app_containers = {container.name for container in record.pod.spec.containers}
            rates: list[tuple[str, Rate]] = []
            complete = True
            for name, container in record.containers.items():
                if name not in app_containers or container.running is None:
                    continue
                rate = self._rate(container.running.id)
                if rate is None:
                    complete = False
                    break
                rates.append((name, rate))
            if not complete or not rates:
                continue
            answer.append(PodMetrics(
                metadata=ObjectMeta(name=record.name, namespace=record.namespace, uid=record.uid),
                timestamp=format_time(max(rate.timestamp for _, rate in rates)),
                window=format_go_duration(max(rate.window for _, rate in rates)),
                containers=[ContainerMetrics(name=name, usage=rate.usage()) for name, rate in rates]))
        return answer
