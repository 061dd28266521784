"""The HorizontalPodAutoscaler's reaction, and the autoscaling demo's plot of replicas and CPU.

`python3 -m benchmarks.autoscaling [--sync-period 5] [--plot docs/img/autoscaling-demo.png]`
starts a private cluster (`--hpa-sync-period`, `--metric-resolution 1s`), applies the busybox
CPU burner of docs/workloads.md idle (its ConfigMap without the key `on`) with an HPA aiming at
50 % of its CPU request, then:
1. turns the load on and times how long until the HPA's first scale-up (the `SuccessfulRescale`
   event's time, or the first change of the Deployment's replicas seen by polling every 100 ms,
   whichever is earlier): the target is at most one sync period plus 1 s;
2. keeps the load on until the burner is at 4 replicas, then turns it off and waits for 1;
3. samples the Deployment's replicas and the pods' summed CPU (Metrics API) every second all
   along, and plots both over time (matplotlib, the `bench` extra).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from harness.cluster import PrivateCluster, random_suffix, wait_for

BURNER_AND_HPA = """
apiVersion: v1
kind: ConfigMap
metadata: {name: load}
data: {}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: burner}
spec:
  replicas: 1
  selector: {matchLabels: {app: burner}}
  template:
    metadata: {labels: {app: burner}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: burn
        image: busybox
        command: ["sh", "-c", "while :; do if [ -e /load/on ]; then i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; else sleep 0.5; fi; done"]
        resources:
          requests: {cpu: 50m}
          limits: {cpu: 200m}
        volumeMounts: [{name: load, mountPath: /load}]
      volumes: [{name: load, configMap: {name: load}}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: burner}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: burner}
  minReplicas: 1
  maxReplicas: 4
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
  behavior:
    scaleDown: {stabilizationWindowSeconds: 10}
"""


class AutoscalingCluster(PrivateCluster):
    def __init__(self, sync_period: float) -> None:
        super().__init__(name=f"hpa{random_suffix(3)}")
        self.start_flags = ("--hpa-sync-period", f"{sync_period}s", "--metric-resolution", "1s")


def replicas(cluster: PrivateCluster) -> int:
    return int(cluster.client.raw.get("deployments", "default", "burner")["spec"]["replicas"])


def cpu_millicores(cluster: PrivateCluster) -> float:
    from minikube_py.api.quantity import parse_quantity

    items = cluster.client.raw.list_metrics("pods", "default", "app=burner")["items"]
    return float(sum(parse_quantity(c["usage"]["cpu"]) for item in items for c in item["containers"]) * 1000)


def run(sync_period: float, plot: str | None) -> dict:
    cluster = AutoscalingCluster(sync_period).start()
    samples: list[tuple[float, int, float]] = []
    try:
        cluster.cli("apply", "-f", "-", input=BURNER_AND_HPA)
        cluster.cli("rollout", "status", "deployment/burner", "--timeout=60s", timeout=70)
        started = time.monotonic()

        def sample() -> None:
            try:
                samples.append((time.monotonic() - started, replicas(cluster), cpu_millicores(cluster)))
            except Exception:
                pass
        for _ in range(5):
            sample()
            time.sleep(1)
        load_on = time.monotonic()
        cluster.client.raw.patch("configmaps", "default", "load", {"data": {"on": "yes"}})
        first_scale = wait_for(lambda: time.monotonic() if replicas(cluster) > 1 else None, 60 + sync_period,
                               "the first scale-up", interval=0.1)
        reaction = first_scale - load_on
        last = 0.0
        deadline = time.monotonic() + 120
        while replicas(cluster) < 4 and time.monotonic() < deadline:
            if time.monotonic() - last >= 1:
                sample()
                last = time.monotonic()
            time.sleep(0.1)
        for _ in range(10):
            sample()
            time.sleep(1)
        load_off = time.monotonic()
        cluster.client.raw.patch("configmaps", "default", "load", {"data": {"on": None}})
        while replicas(cluster) > 1 and time.monotonic() < deadline + 120:
            sample()
            time.sleep(1)
        back_to_one = time.monotonic() - load_off
        for _ in range(5):
            sample()
            time.sleep(1)
    finally:
        leftovers = cluster.stop()
    result = {"sync_period_s": sync_period, "load_start_to_first_scale_up_s": round(reaction, 2),
              "target_s": sync_period + 1, "met": reaction <= sync_period + 1,
              "load_stop_to_one_replica_s": round(back_to_one, 2), "max_replicas_seen": max(r for _, r, _ in samples),
              "leftovers": leftovers, "load_on_at_s": round(load_on - started, 1),
              "load_off_at_s": round(load_off - started, 1)}
    if plot:
        write_plot(plot, samples, load_on - started, load_off - started)
    return result


def write_plot(path: str, samples: list[tuple[float, int, float]], load_on: float, load_off: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [t for t, _, _ in samples]
    figure, replicas_axis = plt.subplots(figsize=(8, 4))
    replicas_axis.step(times, [r for _, r, _ in samples], where="post", color="tab:blue", label="replicas")
    replicas_axis.set_xlabel("seconds")
    replicas_axis.set_ylabel("replicas", color="tab:blue")
    replicas_axis.set_ylim(0, 5)
    cpu_axis = replicas_axis.twinx()
    cpu_axis.plot(times, [c for _, _, c in samples], color="tab:red", label="CPU (millicores, all pods)")
    cpu_axis.set_ylabel("CPU of all burner pods (millicores)", color="tab:red")
    for moment, text in ((load_on, "load on"), (load_off, "load off")):
        replicas_axis.axvline(moment, color="grey", linestyle="--")
        replicas_axis.text(moment, 4.7, f" {text}", color="grey")
    replicas_axis.set_title("HorizontalPodAutoscaler: a busybox CPU burner, target 50 % of 50m requested")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m benchmarks.autoscaling", description=__doc__.splitlines()[0])
    parser.add_argument("--sync-period", type=float, default=5.0, help="the HPA sync period in seconds (default 5)")
    parser.add_argument("--plot", metavar="PNG", help="write the replicas and CPU plot here")
    arguments = parser.parse_args(argv)
    result = run(arguments.sync_period, arguments.plot)
    print(json.dumps(result, indent=2))
    return 0 if result["met"] and not result["leftovers"] else 1


if __name__ == "__main__":
    sys.exit(main())
