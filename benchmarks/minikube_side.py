"""minikube-py as the system under test: a private cluster and the operations the benchmark times.

`BenchCluster` is the shared `PrivateCluster` (harness/cluster.py: start and stop through the
real CLI, leftovers check) with a name and pod CIDR of the benchmark's own (`bench` + 3 random
characters, 10.23x.0.0/24), so a run never touches another cluster. `MinikubePods` does what a
user does, over the API socket with wire dicts: create a pod and see it Running through a watch,
delete it and see it gone, scale a Deployment and roll it, and find which host processes each
pod costs (from the pod's inspect document) for the memory and CPU figures.

Every timing starts just before the API request and ends when the watch event showing the result
arrives at the client (`TimedWatch` stamps events on arrival), which is what a user observes.
"""

from __future__ import annotations

import os
import queue
import random
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field

from harness.cluster import PrivateCluster, random_suffix, wait_for

NAMESPACE = "default"
RUN_LABEL = "minikube-py-bench"


class BenchCluster(PrivateCluster):
    """A minikube-py cluster of the benchmark's own: unique name, home and pod CIDR."""

    # A rolling update of 100 replicas with 25% surge holds up to 125 pods: more than kubelet's
    # default 110, which would make later pods wait for a free slot (podman has no such limit).
    start_flags = ("--max-pods", "250")

    def __init__(self) -> None:
        super().__init__(name=f"bench{random_suffix(3)}", pod_cidr=f"10.23{random.randint(0, 9)}.0.0/24")

    def ensure_busybox(self, rootfs_tarball: str) -> None:
        """Import the benchmark's busybox root filesystem as `busybox:latest` unless the store has one."""
        listing = self.cli("image", "ls").stdout.split("\n")[1:]
        if not any(line.split()[:2] == ["busybox", "latest"] for line in listing if line.strip()):
            self.cli("image", "import", "busybox:latest", rootfs_tarball)

    def pid_of(self, component: str) -> int:
        """The pid in `<home>/<component>.pid` (daemon, supervisor). The daemon writes its file
        after the last of its loops started, a moment after `start` returned: wait for it."""
        path = os.path.join(self.home, f"{component}.pid")
        wait_for(lambda: os.path.exists(path), 30, path)
        with open(path) as file:
            return int(file.read().split()[0])


class TimedWatch:
    """Merges API watches into one queue of (arrival time, watch label, event)."""

    def __init__(self, watches: dict[str, object]):
        self._watches = watches
        self._events: queue.Queue = queue.Queue()
        for label, watch in watches.items():
            threading.Thread(target=self._read, args=(label, watch), name=f"bench-watch-{label}", daemon=True).start()

    def _read(self, label: str, watch) -> None:
        while True:
            event = watch.next(None)
            if event is None:
                return
            self._events.put((time.perf_counter(), label, event))

    def next(self, deadline: float) -> tuple[float, str, dict]:
        """The next event; raises TimeoutError once the monotonic `deadline` (perf_counter) passes."""
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise TimeoutError
            try:
                # Short slices: a signal (Ctrl-C) may land on a reader thread and only wakes this one
                # once the wait returns.
                return self._events.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue

    def close(self) -> None:
        for watch in self._watches.values():
            watch.close()


def pod_is_running(pod: dict) -> bool:
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    return status.get("phase") == "Running" and bool(statuses) and all(
        "running" in (container.get("state") or {}) for container in statuses)


def pod_is_ready(pod: dict) -> bool:
    return any(condition.get("type") == "Ready" and condition.get("status") == "True"
               for condition in (pod.get("status") or {}).get("conditions") or [])


def rollout_complete(deployment: dict) -> bool:
    """`kubectl rollout status` says "successfully rolled out" (semantics.md 5.3, steps 1-6)."""
    metadata, spec, status = deployment["metadata"], deployment["spec"], deployment.get("status") or {}
    if metadata.get("generation", 0) > status.get("observedGeneration", 0):
        return False
    updated = status.get("updatedReplicas", 0)
    return (updated >= spec.get("replicas", 1)
            and status.get("replicas", 0) <= updated
            and status.get("availableReplicas", 0) >= updated)


@dataclass
class ReadySeries:
    """Pods Ready over time, seconds from the start of the operation: [(t, {group: count})]."""

    points: list[tuple[float, dict[str, int]]] = field(default_factory=list)

    def record(self, seconds: float, counts: dict[str, int]) -> None:
        if not self.points or self.points[-1][1] != counts:
            self.points.append((seconds, dict(counts)))

    def to_dict(self) -> list[dict]:
        return [{"seconds": seconds, **counts} for seconds, counts in self.points]


class MinikubePods:
    """The operations being timed, against one running `BenchCluster`."""

    label = "minikube-py"

    def __init__(self, cluster: BenchCluster, run_id: str, timeout: float = 120):
        self.cluster = cluster
        self.api = cluster.client.raw
        self.run_id = run_id
        self.timeout = timeout
        self.selector = f"{RUN_LABEL}={run_id}"
        revision = self.api.list("pods", NAMESPACE)["metadata"]["resourceVersion"]
        self.events = TimedWatch({
            "pods": self.api.watch("pods", NAMESPACE, resource_version=revision, label_selector=self.selector),
            "deployments": self.api.watch("deployments", NAMESPACE, resource_version=revision),
        })

    def close(self) -> None:
        self.events.close()

    # -- bodies ------------------------------------------------------------------------------------
    def _labels(self, extra: dict | None = None) -> dict:
        return {RUN_LABEL: self.run_id, **(extra or {})}

    def pod_body(self, name: str, command: list[str]) -> dict:
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": NAMESPACE, "labels": self._labels()},
                "spec": {"containers": [{"name": "main", "image": "busybox", "command": command}]}}

    def deployment_body(self, name: str, replicas: int, command: list[str]) -> dict:
        labels = self._labels({"app": name})
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
                "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                         "strategy": {"type": "RollingUpdate",
                                      "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                         "template": {"metadata": {"labels": labels},
                                      "spec": {"containers": [{"name": "main", "image": "busybox",
                                                               "command": command}]}}}}

    # -- waiting -----------------------------------------------------------------------------------
    def _wait_pods(self, names: set[str], condition) -> dict[str, float]:
        """Arrival time of the first pod event satisfying `condition(event)` for each name."""
        seen: dict[str, float] = {}
        deadline = time.perf_counter() + self.timeout
        while len(seen) < len(names):
            try:
                arrived, label, event = self.events.next(deadline)
            except TimeoutError:
                missing = sorted(names - set(seen))
                raise TimeoutError(f"pods {missing[:5]} (of {len(missing)}) did not get there within "
                                   f"{self.timeout:.0f}s; see {self.cluster.home}/daemon.log") from None
            name = event["object"]["metadata"]["name"]
            if label == "pods" and name in names and name not in seen and condition(event):
                seen[name] = arrived
        return seen

    # -- single pods -------------------------------------------------------------------------------
    def start_pod(self, name: str, command: list[str]) -> float:
        """Seconds from the create request to the watch event showing the pod Running."""
        started = time.perf_counter()
        self.api.create("pods", NAMESPACE, self.pod_body(name, command))
        running = self._wait_pods({name}, lambda event: event["type"] != "DELETED" and pod_is_running(event["object"]))
        return running[name] - started

    def delete_pod(self, name: str) -> float:
        """Seconds from the DELETE request (default grace period) to the watch's DELETED event."""
        started = time.perf_counter()
        self.api.delete("pods", NAMESPACE, name)
        return self._wait_pods({name}, lambda event: event["type"] == "DELETED")[name] - started

    def start_pods_at_once(self, names: list[str], command: list[str]) -> tuple[list[float], float]:
        """Create all pods back to back; per pod seconds create -> Running, and the wall time."""
        created: dict[str, float] = {}
        started = time.perf_counter()
        for name in names:
            created[name] = time.perf_counter()
            self.api.create("pods", NAMESPACE, self.pod_body(name, command))
        running = self._wait_pods(set(names), lambda event: event["type"] != "DELETED" and pod_is_running(event["object"]))
        return [running[name] - created[name] for name in names], max(running.values()) - started

    def delete_pods_at_once(self, names: list[str]) -> float:
        started = time.perf_counter()
        for name in names:
            self.api.delete("pods", NAMESPACE, name)
        return max(self._wait_pods(set(names), lambda event: event["type"] == "DELETED").values()) - started

    # -- deployments -------------------------------------------------------------------------------
    def create_deployment(self, name: str, command: list[str]) -> None:
        self.api.create("deployments", NAMESPACE, self.deployment_body(name, 0, command))

    def scale_up(self, name: str, replicas: int) -> tuple[float, ReadySeries]:
        """Seconds from the scale request until `replicas` pods are Ready, with the Ready series."""
        ready: dict[str, bool] = {}
        series = ReadySeries()
        started = time.perf_counter()
        series.record(0.0, {"ready": 0})
        self.api.patch("deployments", NAMESPACE, name, {"spec": {"replicas": replicas}})
        deadline = started + self.timeout
        while sum(ready.values()) < replicas:
            arrived, label, event = self._next_or_fail(deadline, f"deployment {name} scaling to {replicas} Ready")
            if label == "pods":
                self._track_ready(ready, event)
                series.record(max(0.0, arrived - started), {"ready": sum(ready.values())})
        return series.points[-1][0], series

    def rolling_update(self, name: str) -> tuple[float, ReadySeries]:
        """Change the pod template; seconds until the rollout is complete, with old/new Ready series."""
        pods = self.api.list("pods", NAMESPACE, label_selector=f"app={name}")["items"]
        old_hashes = {pod["metadata"]["labels"].get("pod-template-hash") for pod in pods}
        ready: dict[str, tuple[bool, bool]] = {
            pod["metadata"]["name"]: (pod_is_ready(pod), False) for pod in pods}  # name -> (ready, is new)
        series = ReadySeries()

        def counts() -> dict[str, int]:
            return {"old": sum(1 for is_ready, new in ready.values() if is_ready and not new),
                    "new": sum(1 for is_ready, new in ready.values() if is_ready and new)}

        started = time.perf_counter()
        series.record(0.0, counts())
        patched = self.api.patch("deployments", NAMESPACE, name, {"spec": {"template": {"metadata": {
            "annotations": {"minikube-py-bench/revision": str(time.time())}}}}})
        generation = patched["metadata"]["generation"]
        deadline = started + self.timeout
        while True:
            arrived, label, event = self._next_or_fail(deadline, f"deployment {name} rolling out")
            obj = event["object"]
            # Events queued before the request still update the picture, dated at the start.
            seconds = max(0.0, arrived - started)
            if label == "pods":
                pod_name = obj["metadata"]["name"]
                if event["type"] == "DELETED":
                    ready.pop(pod_name, None)
                else:
                    is_new = obj["metadata"].get("labels", {}).get("pod-template-hash") not in old_hashes
                    ready[pod_name] = (pod_is_ready(obj) and not obj["metadata"].get("deletionTimestamp"), is_new)
                series.record(seconds, counts())
            elif (obj["metadata"]["name"] == name and event["type"] != "DELETED"
                  and obj["metadata"].get("generation", 0) >= generation and rollout_complete(obj)):
                return seconds, series

    def delete_deployment(self, name: str) -> None:
        """Delete the Deployment and wait until its pods are gone."""
        names = {pod["metadata"]["name"] for pod in
                 self.api.list("pods", NAMESPACE, label_selector=f"app={name}")["items"]}
        self.api.delete("deployments", NAMESPACE, name)
        if names:
            self._wait_pods(names, lambda event: event["type"] == "DELETED")

    def _next_or_fail(self, deadline: float, what: str) -> tuple[float, str, dict]:
        try:
            return self.events.next(deadline)
        except TimeoutError:
            raise TimeoutError(f"{what}: not done within {self.timeout:.0f}s; "
                               f"see {self.cluster.home}/daemon.log") from None

    @staticmethod
    def _track_ready(ready: dict[str, bool], event: dict) -> None:
        name = event["object"]["metadata"]["name"]
        if event["type"] == "DELETED":
            ready.pop(name, None)
        else:
            ready[name] = pod_is_ready(event["object"])

    # -- processes ---------------------------------------------------------------------------------
    def pod_processes(self, app: str) -> dict[str, list[int]]:
        """Process ids per role over a Deployment's pods: pause and container (main pid)."""
        roles: dict[str, list[int]] = {"pause": [], "container": []}
        for pod in self.api.list("pods", NAMESPACE, label_selector=f"app={app}")["items"]:
            document = self.api.inspect(NAMESPACE, pod["metadata"]["name"])
            roles["pause"].append(document["pause"]["pid"])
            roles["container"].extend(container["pid"] for container in document["containers"] if container["pid"])
        return roles


def make_busybox_rootfs_tarball(path: str, busybox: str = "/usr/bin/busybox") -> str:
    """A root filesystem tarball of the host's static busybox with its applet links: the one image both sides run."""
    with tempfile.TemporaryDirectory(prefix="minikube-py-bench-rootfs-") as rootfs:
        for directory in ("bin", "etc", "tmp", "root", "proc", "sys", "dev"):
            os.mkdir(os.path.join(rootfs, directory))
        os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
        subprocess.run(["cp", busybox, os.path.join(rootfs, "bin", "busybox")], check=True)
        applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
        for applet in applets:
            if applet != "busybox":
                os.symlink("busybox", os.path.join(rootfs, "bin", applet))
        with open(os.path.join(rootfs, "etc", "passwd"), "w") as file:
            file.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")
        with open(os.path.join(rootfs, "etc", "group"), "w") as file:
            file.write("root:x:0:\nnobody:x:65534:\n")
        subprocess.run(["tar", "-C", rootfs, "-cf", path, "."], check=True)
    return path
