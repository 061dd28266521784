"""A simulated 50-node cluster holding 5,000 pods (issue 14): `python -m benchmarks.kwok [--nodes N] [--pods N]`.

What the control plane costs at a size this machine cannot run for real, measured the way kwok
(Kubernetes WithOut Kubelet) measures it: the daemon is real (API server, store, controllers,
scheduler), the nodes are not. One simulator process registers N Nodes labelled `type=kwok`,
renews their Leases every 10 s as kubelet does, and plays each node's kubelet for the pods bound
to it: one field-selected pods watch per node (`spec.nodeName=NAME`, as each kubelet holds), a
Running and Ready status written for every new pod, and a pod being deleted removed at once (as
kwok's default stages do). No process or network is created for a pod. The Deployment's pods
select `type=kwok`, so the daemon's own node runs none of them.

Measured as a user sees it:

- seconds from the scale request until the pods watch has seen all pods Running (0 -> pods);
- the daemon's CPU over that scale-up (per pod) and its RSS with every pod in place; the
  simulator's CPU beside it;
- watch fan-out latency: with every pod in place, one pod per node gets a label, and the time from
  the patch being sent until that node's watch delivers it (p50 and p99 over the nodes, three
  rounds), while all N node watches and the controllers' watches are open;
- seconds to scale back to 0 until no pod is left.

Prints the figures and writes them to results-kwok.json in `--out`. Needs root (it starts a
cluster with its own bridge and node), and loads the machine for minutes: run it only to measure.
"""

from __future__ import annotations

import argparse
import itertools
import os
import queue
import random
import statistics
import sys
import threading
import time

from benchmarks import procfs
from benchmarks.report import measure_and_save
from benchmarks.minikube_side import NAMESPACE, BenchCluster
from benchmarks.pods1000 import threads_of
from minikube_py.agent.node import node_labels, node_status
from minikube_py.agent.node_lease import NodeLease
from minikube_py.api import errors
from minikube_py.api.times import format_time
from minikube_py.clock import Clock

DEFAULT_RESULTS_DIRECTORY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
DEPLOYMENT = "bench-kwok"
NODE_LABEL = ("type", "kwok")
STATUS_WRITERS = 8  # threads writing pod status: a kubelet's status manager per node, pooled here
FAN_OUT_ROUNDS = 3
JSON_PATCH = "application/json-patch+json"


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def running_status(pod: dict, node_address: str, pod_ip: str) -> dict:
    """What kubelet reports for a pod whose containers all started and are ready."""
    now = format_time(time.time())
    conditions = [{"type": kind, "status": "True", "lastTransitionTime": now, "lastProbeTime": None}
                  for kind in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")]
    containers = [{"name": container["name"], "image": container.get("image", ""), "imageID": "",
                   "containerID": f"kwok://{pod['metadata']['uid']}-{container['name']}", "ready": True,
                   "started": True, "restartCount": 0, "state": {"running": {"startedAt": now}}}
                  for container in pod["spec"]["containers"]]
    return {"phase": "Running", "conditions": conditions, "containerStatuses": containers, "hostIP": node_address,
            "podIP": pod_ip, "podIPs": [{"ip": pod_ip}], "startTime": now}


class SimulatedNodes:
    """N Nodes with their Leases and one kubelet-like pods watch each, in this process."""

    def __init__(self, cluster: BenchCluster, count: int):
        self.raw = cluster.client.raw
        self.client = cluster.client
        self.names = [f"kwok-{index:03d}" for index in range(1, count + 1)]
        # Node k's address is 172.31.k.1 (a range outside the cluster's); its pods get 172.30.k.x.
        self.addresses = {name: f"172.31.{index // 250}.{index % 250 + 1}" for index, name in enumerate(self.names)}
        # Each node's next pod address; the status writers share them (next() on a count is atomic).
        self._pod_numbers = {name: itertools.count() for name in self.names}
        self._stopped = threading.Event()
        self._work: queue.Queue = queue.Queue()
        self._watches: list = []
        self._threads: list[threading.Thread] = []
        self._seen: dict[tuple[str, str], float] = {}  # (node, label value) -> when its watch saw it
        self._seen_lock = threading.Lock()
        self.status_writes = 0
        self.deletes = 0
        self.failures: list[str] = []

    def register(self) -> None:
        for name in self.names:
            body = {"apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": name, "labels": {**node_labels(name), NODE_LABEL[0]: NODE_LABEL[1]}},
                    "status": node_status(name, self.addresses[name], time.time())}
            self.raw.create("nodes", None, body)
        leases = [NodeLease(self.client, name, Clock()) for name in self.names]
        self._start(self._renew_leases, leases)
        for _ in range(STATUS_WRITERS):
            self._start(self._write_statuses)
        for index, name in enumerate(self.names):
            self._start(self._play_kubelet, name, index)

    def _start(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _renew_leases(self, leases: list[NodeLease]) -> None:
        while not self._stopped.is_set():
            for lease in leases:
                lease.renew()
            self._stopped.wait(leases[0].renew_interval if leases else 10)

    def _play_kubelet(self, node: str, index: int) -> None:
        """List and watch the node's pods until stopped; list again after a failure, as kubelet does."""
        while not self._stopped.is_set():
            try:
                self._follow_pods(node, index)
            except (OSError, errors.ApiError):
                self._stopped.wait(0.5)

    def _follow_pods(self, node: str, index: int) -> None:
        listing = self.raw.list("pods", None, field_selector=f"spec.nodeName={node}")
        watch = self.raw.watch("pods", None, resource_version=listing["metadata"]["resourceVersion"],
                               field_selector=f"spec.nodeName={node}")
        self._watches.append(watch)
        for pod in listing["items"]:
            self._handle(node, index, "ADDED", pod)
        for event in watch:
            if self._stopped.is_set():
                return
            self._handle(node, index, event["type"], event["object"])

    def _handle(self, node: str, index: int, change: str, pod: dict) -> None:
        if change not in ("ADDED", "MODIFIED"):
            return
        marker = (pod["metadata"].get("labels") or {}).get("kwok-probe")
        if marker is not None:
            with self._seen_lock:
                self._seen.setdefault((node, marker), time.perf_counter())
        if pod["metadata"].get("deletionTimestamp"):
            self._work.put(("delete", pod, node, index))
        elif pod.get("status", {}).get("phase") != "Running":
            self._work.put(("run", pod, node, index))

    def _write_statuses(self) -> None:
        while not self._stopped.is_set():
            try:
                action, pod, node, index = self._work.get(timeout=0.5)
            except queue.Empty:
                continue
            metadata = pod["metadata"]
            try:
                if action == "delete":
                    self.raw.delete("pods", metadata["namespace"], metadata["name"], grace_period_seconds=0)
                    self.deletes += 1
                    continue
                pod_ip = f"172.30.{index}.{next(self._pod_numbers[node]) % 250 + 2}"
                operations = [{"op": "test", "path": "/metadata/uid", "value": metadata["uid"]}]
                operations += [{"op": "add", "path": f"/status/{key}", "value": value}
                               for key, value in running_status(pod, self.addresses[node], pod_ip).items()]
                self.raw.patch_status("pods", metadata["namespace"], metadata["name"], operations, JSON_PATCH)
                self.status_writes += 1
            except (errors.NotFound, errors.Conflict):
                pass  # deleted or replaced meanwhile, as a kubelet finds it
            except errors.ApiError as error:
                self.failures.append(f"{action} {metadata['name']}: {error}")

    def fan_out_latencies(self, pods_by_node: dict[str, str]) -> list[float]:
        """Label one pod per node; seconds from sending each patch until its node's watch saw it."""
        latencies: list[float] = []
        for round_number in range(FAN_OUT_ROUNDS):
            marker = f"r{round_number}-{random.randint(0, 1 << 30)}"
            sent: dict[str, float] = {}
            for node, pod_name in pods_by_node.items():
                sent[node] = time.perf_counter()
                self.raw.patch("pods", NAMESPACE, pod_name, {"metadata": {"labels": {"kwok-probe": marker}}})
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with self._seen_lock:
                    if all((node, marker) in self._seen for node in sent):
                        break
                time.sleep(0.01)
            with self._seen_lock:
                latencies += [self._seen[(node, marker)] - sent[node] for node in sent if (node, marker) in self._seen]
        return latencies

    def stop(self) -> None:
        self._stopped.set()
        for watch in self._watches:
            watch.close()


def deployment_body(replicas: int) -> dict:
    labels = {"app": DEPLOYMENT}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": DEPLOYMENT, "namespace": NAMESPACE},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "nodeSelector": {NODE_LABEL[0]: NODE_LABEL[1]},
                         "terminationGracePeriodSeconds": 0,
                         "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}}}}


def count_until(raw, wanted: int, running: bool, timeout: float) -> float:
    """Seconds until the Deployment's pods number `wanted` (all Running when `running`)."""
    started = time.perf_counter()
    listing = raw.list("pods", NAMESPACE, label_selector=f"app={DEPLOYMENT}")
    state = {pod["metadata"]["name"]: pod for pod in listing["items"]}

    def done() -> bool:
        if len(state) != wanted:
            return False
        return not running or all(pod.get("status", {}).get("phase") == "Running" for pod in state.values())

    if done():
        return time.perf_counter() - started
    watch = raw.watch("pods", NAMESPACE, resource_version=listing["metadata"]["resourceVersion"],
                      label_selector=f"app={DEPLOYMENT}")
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = watch.next(timeout=max(0.1, deadline - time.monotonic()))
            if event is None:
                continue
            if event["type"] == "ERROR":
                raise RuntimeError(f"the pods watch ended: {event['object'].get('message')}")
            pod = event["object"]
            if event["type"] == "DELETED":
                state.pop(pod["metadata"]["name"], None)
            else:
                state[pod["metadata"]["name"]] = pod
            if done():
                return time.perf_counter() - started
    finally:
        watch.close()
    raise TimeoutError(f"{DEPLOYMENT}: {wanted} pods{' Running' if running else ''} not reached within {timeout:.0f} s "
                       f"({len(state)} pods)")


def measure(nodes: int, pods: int, timeout: float) -> dict:
    figures: dict = {"nodes": nodes, "pods": pods}
    cluster = BenchCluster()
    cluster.pod_cidr = f"10.{random.randint(248, 251)}.{random.randint(0, 255)}.0/24"
    print(f"[kwok] starting cluster {cluster.name} in {cluster.home}", flush=True)
    simulated = None
    try:
        cluster.start()
        daemon = cluster.pid_of("daemon")
        raw = cluster.client.raw
        simulated = SimulatedNodes(cluster, nodes)
        simulated.register()
        print(f"[kwok] {nodes} simulated nodes registered", flush=True)
        raw.create("deployments", NAMESPACE, deployment_body(0))
        cpu_before, own_before = procfs.cpu_seconds_of(daemon), procfs.cpu_seconds_of(os.getpid())
        print(f"[kwok] scale 0 -> {pods}", flush=True)
        raw.patch("deployments", NAMESPACE, DEPLOYMENT, {"spec": {"replicas": pods}})
        figures["scale_up_s"] = count_until(raw, pods, True, timeout)
        daemon_cpu = procfs.cpu_seconds_of(daemon) - cpu_before
        figures["scale_up_daemon_cpu_s"] = daemon_cpu
        figures["scale_up_daemon_cpu_ms_per_pod"] = 1000 * daemon_cpu / pods
        figures["scale_up_simulator_cpu_ms_per_pod"] = 1000 * (procfs.cpu_seconds_of(os.getpid()) - own_before) / pods
        figures["daemon_rss_mb"] = rss_kib(daemon) / 1024
        figures["daemon_threads"] = threads_of(daemon)
        print(f"[kwok] {pods} Running in {figures['scale_up_s']:.1f} s; fan-out", flush=True)
        listing = raw.list("pods", NAMESPACE, label_selector=f"app={DEPLOYMENT}")["items"]
        one_per_node: dict[str, str] = {}
        for pod in listing:
            one_per_node.setdefault(pod["spec"].get("nodeName", ""), pod["metadata"]["name"])
        figures["nodes_with_pods"] = len([node for node in one_per_node if node.startswith("kwok-")])
        latencies = sorted(simulated.fan_out_latencies({node: name for node, name in one_per_node.items()
                                                        if node.startswith("kwok-")}))
        if latencies:
            figures["fan_out_p50_ms"] = 1000 * statistics.median(latencies)
            figures["fan_out_p99_ms"] = 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
            figures["fan_out_samples"] = len(latencies)
        print(f"[kwok] scale {pods} -> 0", flush=True)
        cpu_before = procfs.cpu_seconds_of(daemon)
        raw.patch("deployments", NAMESPACE, DEPLOYMENT, {"spec": {"replicas": 0}})
        figures["scale_down_s"] = count_until(raw, 0, False, timeout)
        figures["scale_down_daemon_cpu_ms_per_pod"] = 1000 * (procfs.cpu_seconds_of(daemon) - cpu_before) / pods
        figures["status_writes"] = simulated.status_writes
        figures["simulator_write_failures"] = len(simulated.failures)
        if simulated.failures:
            print(f"[kwok] writes the API refused, the first: {simulated.failures[0]}", file=sys.stderr)
    finally:
        if simulated is not None:
            simulated.stop()
        leftovers = cluster.stop()
        if leftovers:
            print(f"[kwok] cluster {cluster.name} left these on the host: {leftovers[:10]}", file=sys.stderr)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.kwok", description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=50, help="simulated nodes (default 50)")
    parser.add_argument("--pods", type=int, default=5000, help="pods of the Deployment (default 5000)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a scale may take (default 1800)")
    parser.add_argument("--out", default=DEFAULT_RESULTS_DIRECTORY, help="where results-kwok.json goes")
    arguments = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("benchmarks.kwok needs root (it starts a cluster)", file=sys.stderr)
        return 1
    measure_and_save(lambda: measure(arguments.nodes, arguments.pods, arguments.timeout), arguments.out, "results-kwok.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
