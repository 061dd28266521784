"""Scheduling on real pods: a NoExecute taint evicts the pod that does not tolerate it,
preemption frees room for a higher-priority pod, and cordon + drain (the real kubectl's and ours)
honour a PodDisruptionBudget through the eviction subresource."""

from __future__ import annotations

import os
import shutil

import pytest

from minikube_py.api import errors
from tests.e2e.cluster import Cluster, free_port, wait_for

SLEEPER = """
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  {extra}
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
    {resources}
"""

PRIORITIES = """
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: e2e-low}
value: 10
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: e2e-high}
value: 1000
"""

WEB_WITH_BUDGET = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox
        command: ["sleep", "3600"]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: web}}
"""


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("e2e tests run real pods and need root")
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    running = Cluster().start(port=free_port())
    try:
        yield running
    finally:
        leftovers = running.stop()
        assert not leftovers, f"cluster {running.name} left these on the host after stop: {leftovers}"


@pytest.fixture(scope="module")
def node(cluster) -> str:
    return cluster.client.raw.list("nodes")["items"][0]["metadata"]["name"]


def gone(cluster, name: str) -> bool:
    try:
        cluster.client.raw.get("pods", "default", name)
    except errors.NotFound:
        return True
    return False


def sleeper(name: str, extra: str = "", resources: str = "") -> str:
    return SLEEPER.format(name=name, extra=extra, resources=resources)


def test_a_no_execute_taint_evicts_the_pod_that_does_not_tolerate_it(cluster, node):
    cluster.apply(sleeper("plain"))
    cluster.apply(sleeper("tolerant", extra="tolerations: [{key: maintenance, operator: Exists, effect: NoExecute}]"))
    cluster.wait_running("plain")
    cluster.wait_running("tolerant")

    cluster.kubectl("taint", "nodes", node, "maintenance=now:NoExecute")
    try:
        wait_for(lambda: gone(cluster, "plain"), 30, "the untolerating pod to be evicted")
        assert cluster.pod("tolerant")["status"]["phase"] == "Running"
        events = cluster.cli("get", "events", "--field-selector", "involvedObject.name=plain").stdout
        assert "TaintManagerEviction" in events
    finally:
        untainted = cluster.cli("taint", "nodes", node, "maintenance:NoExecute-").stdout
    assert untainted.strip() == f"node/{node} untainted"
    cluster.cli("delete", "pod", "tolerant")


def test_preemption_frees_room_for_a_higher_priority_pod(cluster, node):
    cluster.apply(PRIORITIES)
    cpu = cluster.client.raw.get("nodes", None, node)["status"]["allocatable"]["cpu"]
    three_quarters = f"{int(float(cpu) * 750)}m"
    requests = f"resources: {{requests: {{cpu: {three_quarters}}}}}"
    cluster.apply(sleeper("low", extra="priorityClassName: e2e-low", resources=requests))
    cluster.wait_running("low")
    assert cluster.pod("low")["spec"]["priority"] == 10

    cluster.apply(sleeper("high", extra="priorityClassName: e2e-high", resources=requests))
    high = cluster.wait_running("high", timeout=60)
    assert high["spec"]["nodeName"] == node
    assert high["status"].get("nominatedNodeName") == node
    wait_for(lambda: gone(cluster, "low"), 30, "the preempted pod to be gone")
    events = cluster.cli("get", "events", "--field-selector", "involvedObject.name=low").stdout
    assert "Preempted" in events
    cluster.cli("delete", "pod", "high")


def web_pods(cluster) -> list[dict]:
    return cluster.client.raw.list("pods", "default", label_selector="app=web")["items"]


def test_cordon_and_drain_evict_what_the_budget_allows_and_no_more(cluster, node):
    cluster.apply(WEB_WITH_BUDGET)
    wait_for(lambda: cluster.client.raw.get("poddisruptionbudgets", "default", "web")["status"].get(
        "disruptionsAllowed") == 1, 60, "the budget to allow one disruption")
    first = {pod["metadata"]["name"] for pod in web_pods(cluster)}

    drained = cluster.kubectl("drain", node, "--ignore-daemonsets", "--grace-period=1", "--timeout=7s",
                              check=False, timeout=60)
    assert drained.returncode != 0, drained.stdout
    assert f"node/{node} cordoned" in drained.stdout
    assert "Cannot evict pod as it would violate the pod's disruption budget." in drained.stderr
    assert "evicted" in drained.stdout, drained.stdout
    assert cluster.client.raw.get("nodes", None, node)["spec"].get("unschedulable") is True
    status = cluster.cli("get", "nodes").stdout
    assert "Ready,SchedulingDisabled" in status
    left = [pod for pod in web_pods(cluster) if pod["metadata"]["name"] in first]
    assert len(left) == 1 and left[0]["status"]["phase"] == "Running", "the budget kept one pod"
    pending = [pod for pod in web_pods(cluster) if pod["metadata"]["name"] not in first]
    assert pending and not pending[0]["spec"].get("nodeName"), "the replacement waits for an uncordoned node"

    ours = cluster.cli("drain", node, "--grace-period", "1", "--timeout", "6s", check=False)
    assert ours.returncode != 0
    assert f"node/{node} already cordoned" in ours.stdout
    assert 'error when evicting pods/"' in ours.stderr and "(will retry after 5s)" in ours.stderr

    assert cluster.cli("uncordon", node).stdout.strip() == f"node/{node} uncordoned"
    wait_for(lambda: sum(1 for pod in web_pods(cluster) if pod["status"].get("phase") == "Running") == 2,
             60, "the replacement to run once the node is uncordoned")
    cluster.cli("delete", "deployment", "web")
    cluster.cli("delete", "pdb", "web")
