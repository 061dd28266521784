"""Three nodes, 300 pods each (issue 14): `python -m benchmarks.nodes [--pods-per-node N] [--out DIR]`.

Needs root and loads the whole machine for minutes: run it only to measure. One private cluster
with a /16 pod CIDR and `--max-pods N` (each node's slice then holds twice that), the daemon's
node-1 and two nodes added with `node add` (each its own process, supervisor and network
namespace), and one Deployment scaled 0 -> 3N busybox pods, measured as a user sees it:

- seconds from the scale request until the pods watch has seen all 3N Running;
- how the scheduler spread them (pods per node);
- CPU time over the scale-up of the daemon (API server, controllers, scheduler and node-1's
  agent), of each added node's process (its agent, service proxy, DNS) and of every node's
  supervisor, per pod;
- seconds for `stop` with every pod running.

Prints the figures and writes them to results-nodes.json in `--out`.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections import Counter

from benchmarks import procfs
from benchmarks.report import measure_and_save
from benchmarks.minikube_side import NAMESPACE, BenchCluster, MinikubePods, make_busybox_rootfs_tarball
from benchmarks.pods1000 import scale_and_wait_running
from benchmarks.runner import SLEEP_COMMAND

DEFAULT_RESULTS_DIRECTORY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
ADDED_NODES = ("node-2", "node-3")


def pid_in(path: str) -> int:
    with open(path) as file:
        return int(file.read().split()[0])


def measure(pods_per_node: int, timeout: float) -> dict:
    figures: dict = {}
    total = 3 * pods_per_node
    with tempfile.TemporaryDirectory(prefix="minikube-py-bench-") as scratch:
        tarball = make_busybox_rootfs_tarball(os.path.join(scratch, "busybox-rootfs.tar"))
        cluster = BenchCluster()
        cluster.pod_cidr = f"10.{random.randint(248, 251)}.0.0/16"
        cluster.start_flags = ("--max-pods", str(pods_per_node), "--node-name", "node-1")
        print(f"[nodes] starting cluster {cluster.name} ({cluster.pod_cidr}) in {cluster.home}", flush=True)
        try:
            cluster.start()
            cluster.ensure_busybox(tarball)
            for name in ADDED_NODES:
                started = time.perf_counter()
                cluster.cli("node", "add", name, timeout=180)
                figures[f"node_add_{name}_s"] = time.perf_counter() - started
                print(f"[nodes] {name} added in {figures[f'node_add_{name}_s']:.1f} s", flush=True)
            processes = {"daemon": cluster.pid_of("daemon"), "supervisor node-1": cluster.pid_of("supervisor")}
            for name in ADDED_NODES:
                directory = os.path.join(cluster.home, "nodes", name)
                processes[f"agent {name}"] = pid_in(os.path.join(directory, "node.pid"))
                processes[f"supervisor {name}"] = pid_in(os.path.join(directory, "supervisor.pid"))
            ours = MinikubePods(cluster, "nodes", timeout=timeout)
            deployment = "bench-nodes"
            ours.create_deployment(deployment, SLEEP_COMMAND)
            cpu_before = {label: procfs.cpu_seconds_of(pid) for label, pid in processes.items()}
            print(f"[nodes] scale 0 -> {total}", flush=True)
            figures["scale_up_s"] = scale_and_wait_running(ours, deployment, total, timeout)
            for label, pid in processes.items():
                used = procfs.cpu_seconds_of(pid) - cpu_before[label]
                figures[f"cpu_s {label}"] = used
                figures[f"cpu_ms_per_pod {label}"] = 1000 * used / total
            pods = ours.api.list("pods", NAMESPACE, label_selector=f"app={deployment}")["items"]
            figures["pods_per_node"] = dict(sorted(Counter(p["spec"].get("nodeName") for p in pods).items()))
            ours.close()
            print(f"[nodes] {total} Running in {figures['scale_up_s']:.1f} s; stop", flush=True)
            started = time.perf_counter()
            cluster.cli("stop", "--grace-period", "2", timeout=max(timeout, 300))
            figures["stop_s"] = time.perf_counter() - started
        finally:
            leftovers = cluster.stop()
            if leftovers:
                print(f"[nodes] cluster {cluster.name} left these on the host: {leftovers[:10]}", file=sys.stderr)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.nodes", description=__doc__.split("\n")[0])
    parser.add_argument("--pods-per-node", type=int, default=300, help="pods on each of the three nodes (default 300)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds any one step may take (default 900)")
    parser.add_argument("--out", default=DEFAULT_RESULTS_DIRECTORY, help="where results-nodes.json goes")
    arguments = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("benchmarks.nodes needs root (real pods, network namespaces)", file=sys.stderr)
        return 1
    measure_and_save(lambda: measure(arguments.pods_per_node, arguments.timeout), arguments.out, "results-nodes.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
