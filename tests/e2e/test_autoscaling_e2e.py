"""The Metrics API and autoscaling on real pods, driven by the real kubectl: `kubectl top` shows a
busybox CPU burner's usage measured from its cgroup on its node.

One cluster with short windows (`--metric-resolution 1s --hpa-sync-period 1s`). The burner burns
while its ConfigMap has the key `on` (a configMap volume, updated in place), so the test turns
the load on and off without touching the pods.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.e2e.cluster import Cluster, free_port, wait_for

BURNER = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: load
data:
  "on": "yes"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: burner
spec:
  replicas: 1
  selector:
    matchLabels: {app: burner}
  template:
    metadata:
      labels: {app: burner}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: burn
        image: busybox
        # Busy while /load/on exists (checked every 20,000 additions), idle otherwise.
        command: ["sh", "-c", "while :; do if [ -e /load/on ]; then i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; else sleep 0.5; fi; done"]
        resources:
          requests: {cpu: 50m, memory: 16Mi}
          limits: {cpu: 200m, memory: 32Mi}
        volumeMounts:
        - {name: load, mountPath: /load}
      volumes:
      - name: load
        configMap: {name: load}
"""


class AutoscalingCluster(Cluster):
    start_flags = ("--metric-resolution", "1s", "--hpa-sync-period", "1s")


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("e2e tests run real pods and need root")
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    running = AutoscalingCluster().start(port=free_port())
    try:
        running.apply(BURNER)
        yield running
    finally:
        leftovers = running.stop()
        assert not leftovers, f"cluster {running.name} left these on the host after stop: {leftovers}"


def millicores(cell: str) -> int:
    assert cell.endswith("m"), cell
    return int(cell[:-1])


def test_kubectl_top_shows_the_burners_cpu_from_its_cgroup(cluster):
    cluster.cli("rollout", "status", "deployment/burner", "--timeout=60s", timeout=70)

    def busy_lines():
        result = cluster.kubectl("top", "pods", "-l", "app=burner", check=False)
        lines = result.stdout.splitlines()
        if result.returncode != 0 or len(lines) != 2:
            return None
        return lines if millicores(lines[1].split()[1]) >= 100 else None
    lines = wait_for(busy_lines, 30, "kubectl top pods shows the burner using at least 100m of CPU")
    assert lines[0].split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    row = lines[1].split()
    assert row[0].startswith("burner-") and millicores(row[1]) <= 260  # its limit is 200m
    assert row[2].endswith("Mi")
    ours = cluster.cli("top", "pods", "-l", "app=burner").stdout.splitlines()
    assert ours[0].split() == ["NAME", "CPU(cores)", "MEMORY(bytes)"] and ours[1].startswith("burner-")

    nodes = cluster.kubectl("top", "nodes").stdout.splitlines()
    assert nodes[0].split() == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    name, cpu, cpu_percent, memory, memory_percent = nodes[1].split()
    assert millicores(cpu) >= 50 and cpu_percent.endswith("%") and memory.endswith("Mi")
    raw = cluster.client.raw.list_metrics("pods", "default", "app=burner")["items"][0]
    assert raw["kind"] == "PodMetrics" and raw["window"].endswith("s")
    assert raw["metadata"]["labels"] == {"app": "burner", "pod-template-hash": raw["metadata"]["labels"]["pod-template-hash"]}
