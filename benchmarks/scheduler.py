"""Scheduler throughput: pods bound per second over simulated nodes, with affinity and spreading.

The scheduler (`controllers/scheduler.py`) runs against an in-memory API (a Registry on an
in-memory sqlite store, the in-process client and shared informers), as the daemon's does, with
no node agent: the nodes are Node objects with zone labels and room for every pod. The pods are
created first (not timed); then the clock runs from the scheduler's first cycle to the last
binding, each binding being a real write through the API (`pods/binding`) plus its `Scheduled`
event, and each cycle filtering and scoring every node. Every pod carries:

- a `topologySpreadConstraints` entry (zone, maxSkew 1, DoNotSchedule) over its app's pods;
- a preferred pod anti-affinity on the hostname against its own app;
- a required node affinity (`kubernetes.io/os In [linux]`),

and the pods are split over 10 apps, so the affinity and spreading counts have real work to do.
Reported: pods/s, the mean time per pod, and how much of it went to the two API writes each
binding makes (the binding and the `Scheduled` event, timed around the calls), so the
scheduler's own work (filters, scores, its cache, and decoding the watch events its informers
receive) can be told from the in-process API server's writes; the
target is >= 500 pods/s over 3 nodes. Beside the wall-clock rate comes the rate per CPU second
of the process (`time.process_time`): on a shared machine the wall figure mostly measures the
load average, while the CPU figure is what the scheduler and the API writes cost, and compares
two versions fairly when they cannot run on a quiet machine.

Run from the repository root: `python3 -m benchmarks.scheduler [--pods 1500] [--nodes 3] [--rounds 3]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from controllers.scheduler import Scheduler
from minikube_py.apiserver.registry import Registry
from minikube_py.client.api import ApiClient
from minikube_py.client.informer import SharedInformers
from minikube_py.store import Store

TARGET_PODS_PER_SECOND = 500.0
APPS = 10


def node_body(index: int, pods: int) -> dict:
    name = f"node-{index}"
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                                  "topology.kubernetes.io/zone": f"zone-{index % 3}"}},
            "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2027-01-01T00:00:00Z"}],
                       "allocatable": {"cpu": "512", "memory": "2Ti", "pods": str(pods)}}}


def pod_body(index: int) -> dict:
    app = f"app-{index % APPS}"
    selector = {"matchLabels": {"app": app}}
    return {"metadata": {"name": f"pod-{index}", "labels": {"app": app}},
            "spec": {"containers": [{"name": "main", "image": "busybox",
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
                     "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                                    "whenUnsatisfiable": "DoNotSchedule", "labelSelector": selector}],
                     "affinity": {
                         "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                             {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}]}},
                         "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                             {"weight": 50, "podAffinityTerm": {"labelSelector": selector,
                                                                "topologyKey": "kubernetes.io/hostname"}}]}}}}


class TimedCalls:
    """Wraps a callable and adds up the time spent in it."""

    def __init__(self, call):
        self.call, self.seconds = call, 0.0

    def __call__(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return self.call(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started


def one_round(pods: int, nodes: int) -> tuple[float, float, float, float]:
    """(pods per second, mean ms per pod, of which ms in API writes, pods per CPU second) for
    `pods` pending pods on `nodes` nodes."""
    store = Store(":memory:")
    registry = Registry(store)
    client = ApiClient.local(registry)
    informers = SharedInformers(client)
    try:
        for index in range(nodes):
            registry.create("nodes", None, node_body(index, pods))
        for index in range(pods):
            registry.create("pods", "default", pod_body(index))
        scheduler = Scheduler(client, informers=informers)
        binds = TimedCalls(client.bind)
        events = TimedCalls(scheduler.recorder.event)
        client.bind = binds  # type: ignore[method-assign]
        scheduler.recorder.event = events  # type: ignore[method-assign]
        informers.refresh()
        started, cpu_started = time.perf_counter(), time.process_time()
        # Each pass schedules every pod in the queue, then the informers catch up with the
        # bindings (as their watches would); a pass with nothing left to schedule ends it.
        while scheduler.drain():
            informers.refresh()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        bound = sum(1 for pod in registry.list("pods", "default")["items"] if pod["spec"].get("nodeName"))
        if bound != pods:
            raise SystemExit(f"only {bound} of {pods} pods were bound: the benchmark's pods should all fit")
        return pods / elapsed, elapsed / pods * 1000, (binds.seconds + events.seconds) / pods * 1000, pods / cpu
    finally:
        informers.stop()
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=1500, help="pods to schedule per round (default 1500)")
    parser.add_argument("--nodes", type=int, default=3, help="simulated nodes (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is reported (default 3)")
    args = parser.parse_args(argv)
    rates, per_pod, writes, cpu_rates = [], [], [], []
    for round_number in range(1, args.rounds + 1):
        rate, pod_ms, write_ms, cpu_rate = one_round(args.pods, args.nodes)
        rates.append(rate)
        per_pod.append(pod_ms)
        writes.append(write_ms)
        cpu_rates.append(cpu_rate)
        print(f"round {round_number}: {args.pods} pods over {args.nodes} nodes: {rate:.0f} pods/s, "
              f"{pod_ms:.2f} ms per pod, of which {write_ms:.2f} ms in the binding and event writes; "
              f"{cpu_rate:.0f} pods per CPU second")
    median = statistics.median(rates)
    verdict = "met" if median >= TARGET_PODS_PER_SECOND else "NOT met"
    scheduling_ms = statistics.median(per_pod) - statistics.median(writes)
    print(f"median: {median:.0f} pods/s, {statistics.median(per_pod):.2f} ms per pod "
          f"({scheduling_ms:.2f} ms scheduling: filters, scores, cache and the informers' watch decoding; "
          f"{statistics.median(writes):.2f} ms API writes); "
          f"target >= {TARGET_PODS_PER_SECOND:.0f} pods/s: {verdict}; "
          f"{statistics.median(cpu_rates):.0f} pods per CPU second; load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
