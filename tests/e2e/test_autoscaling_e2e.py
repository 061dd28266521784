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


HPA = """
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: burner
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: burner}
  minReplicas: 1
  maxReplicas: 4
  metrics:
  - type: Resource
    resource:
      name: cpu
      target: {type: Utilization, averageUtilization: 50}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 3
"""


def replicas(cluster) -> int:
    return int(cluster.client.raw.get("deployments", "default", "burner")["spec"]["replicas"])


def test_hpa_scales_the_burner_up_under_load_and_back_to_one_after(cluster):
    cluster.kubectl("apply", "-f", "-", input=HPA)
    wait_for(lambda: replicas(cluster) >= 3, 40, "the HPA scales the burner to at least 3 replicas")
    row = cluster.kubectl("get", "hpa", "burner").stdout.splitlines()
    assert row[0].split() == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    assert row[1].split()[:3] == ["burner", "Deployment/burner", "cpu:"]
    hpa = cluster.client.raw.get("horizontalpodautoscalers", "default", "burner")
    conditions = {c["type"]: c for c in hpa["status"]["conditions"]}
    assert conditions["ScalingActive"]["reason"] == "ValidMetricFound"
    events = cluster.kubectl("get", "events", "--field-selector", "involvedObject.name=burner,reason=SuccessfulRescale",
                             "-o", "jsonpath={.items[*].message}").stdout
    assert "above target" in events

    cluster.client.raw.patch("configmaps", "default", "load", {"data": {"on": None}})  # the load stops
    wait_for(lambda: replicas(cluster) == 1, 45, "the HPA scales the burner back to 1 replica")
    assert "All metrics below target" in cluster.kubectl(
        "get", "events", "--field-selector", "involvedObject.name=burner,reason=SuccessfulRescale",
        "-o", "jsonpath={.items[*].message}").stdout


def test_kubectl_autoscale_and_a_target_without_scale(cluster):
    cluster.cli("autoscale", "deployment/burner", "--name", "second", "--max", "2", "--cpu-percent", "70")
    described = cluster.client.raw.get("horizontalpodautoscalers", "default", "second")
    assert described["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    cluster.apply(HPA.replace("name: burner\nspec", "name: wrong\nspec").replace("kind: Deployment", "kind: ConfigMap")
                  .replace("apiVersion: apps/v1, kind: ConfigMap", "apiVersion: v1, kind: ConfigMap"))

    def failed_get_scale():
        status = cluster.client.raw.get("horizontalpodautoscalers", "default", "wrong").get("status") or {}
        return next((c for c in status.get("conditions") or [] if c["reason"] == "FailedGetScale"), None)
    condition = wait_for(failed_get_scale, 15, "the HPA on a ConfigMap reports FailedGetScale")
    assert condition["type"] == "AbleToScale" and condition["status"] == "False"
