"""DaemonSets on real nodes: one pod per node, bound by the scheduler to the node its node-name
affinity names; a node added with `node add` gets its pod; a rolling update replaces every pod
(watched with the real kubectl's `rollout status`), and kubectl's undo brings the old template
back; a nodeSelector keeps a node out, a node labelled to match gets its pod and loses it when
the label goes. One cluster for the module, started with one node.
"""

from __future__ import annotations

import os
import random

import pytest

from tests.e2e.cluster import Cluster, free_port, wait_for

pytestmark = pytest.mark.e2e

DAEMON_SET = """\
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: {name}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 1
{node_selector}      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "echo version {version} on $NODE; exec sleep 3600"]
        env:
        - name: NODE
          valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}
"""


def manifest(name: str, version: int = 1, node_selector: dict | None = None) -> str:
    selector = "".join(f"      nodeSelector: {{{key}: {value}}}\n" for key, value in (node_selector or {}).items())
    return DAEMON_SET.format(name=name, version=version, node_selector=selector)


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("e2e tests run real pods and need root")
    cluster = Cluster(name=f"e2eds{os.getpid() % 10000}", pod_cidr=f"10.249.{random.randint(0, 15) * 16}.0/20")
    cluster.start_flags = ("--node-name", "node-1")
    try:
        cluster.start(port=free_port())
        yield cluster
    finally:
        leftovers = cluster.stop()
        assert not leftovers, f"left on the host: {leftovers}"


def running_by_node(cluster: Cluster, app: str) -> dict[str, dict]:
    """node -> the DaemonSet's running pod there (not being deleted)."""
    pods = cluster.client.raw.list("pods", "default", label_selector=f"app={app}")["items"]
    return {pod["spec"]["nodeName"]: pod for pod in pods
            if pod["status"].get("phase") == "Running" and not pod["metadata"].get("deletionTimestamp")}


def pods_of(cluster: Cluster, app: str) -> list[dict]:
    return cluster.client.raw.list("pods", "default", label_selector=f"app={app}")["items"]


def test_one_pod_per_node_and_an_added_node_gets_its_own(cluster):
    cluster.apply(manifest("agent"))
    first = wait_for(lambda: running_by_node(cluster, "agent") or None, 60, "agent pod on node-1")
    assert list(first) == ["node-1"]
    pod = first["node-1"]
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms == {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                                             "values": ["node-1"]}]}]}

    cluster.cli("node", "add", "node-2", timeout=120)
    both = wait_for(lambda: (lambda found: found if len(found) == 2 else None)(running_by_node(cluster, "agent")),
                    90, "agent pods on node-1 and node-2")
    assert sorted(both) == ["node-1", "node-2"]
    assert len(pods_of(cluster, "agent")) == 2
    assert wait_for(lambda: "version 1 on node-2" in cluster.cli("logs", both["node-2"]["metadata"]["name"]).stdout,
                    20, "the node-2 pod's log")
    status = wait_for(lambda: (lambda ds: ds["status"] if ds["status"].get("numberAvailable") == 2 else None)(
        cluster.client.raw.get("daemonsets", "default", "agent")), 30, "2 available")
    assert (status["desiredNumberScheduled"], status["currentNumberScheduled"], status["numberReady"],
            status["updatedNumberScheduled"], status["numberMisscheduled"]) == (2, 2, 2, 2, 0)
    table = cluster.cli("get", "ds", "agent").stdout.splitlines()
    assert table[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE", "SELECTOR",
                                "AGE"]
    assert table[1].split()[:7] == ["agent", "2", "2", "2", "2", "2", "<none>"]


def test_a_rolling_update_replaces_the_pod_on_every_node(cluster):
    before = {pod["metadata"]["name"] for pod in pods_of(cluster, "agent")}
    assert len(before) == 2
    cluster.apply(manifest("agent", version=2))
    result = cluster.kubectl("rollout", "status", "daemonset/agent", "--timeout=90s", timeout=100)
    assert 'daemon set "agent" successfully rolled out' in result.stdout
    after = running_by_node(cluster, "agent")
    assert sorted(after) == ["node-1", "node-2"]
    assert not before & {pod["metadata"]["name"] for pod in after.values()}
    for node, pod in after.items():
        assert wait_for(lambda node=node, name=pod["metadata"]["name"]: f"version 2 on {node}" in cluster.cli(
            "logs", name).stdout, 20, f"the new pod's log on {node}")
    history = cluster.kubectl("rollout", "history", "daemonset/agent").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    wait_for(lambda: len(pods_of(cluster, "agent")) == 2 or None, 30, "the old pods gone")


def test_kubectl_undoes_restarts_and_describes_a_daemonset(cluster):
    undone = cluster.kubectl("rollout", "undo", "daemonset/agent")
    assert undone.stdout.strip() == "daemonset.apps/agent rolled back"
    cluster.kubectl("rollout", "status", "daemonset/agent", "--timeout=90s", timeout=100)
    for pod in running_by_node(cluster, "agent").values():
        assert "version 1 on" in pod["spec"]["containers"][0]["command"][-1]
    history = cluster.kubectl("rollout", "history", "daemonset/agent").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "3"]
    restarted = cluster.kubectl("rollout", "restart", "daemonset/agent")
    assert restarted.stdout.strip() == "daemonset.apps/agent restarted"
    described = cluster.kubectl("describe", "daemonset", "agent").stdout
    for line in ("Desired Number of Nodes Scheduled: 2", "Number of Nodes Misscheduled: 0", "Pod Template:",
                 "SuccessfulCreate"):
        assert line in described, described


def test_a_node_selector_keeps_a_node_out_until_it_is_labelled(cluster):
    cluster.apply(manifest("edge", node_selector={"role": "edge"}))
    cluster.client.raw.patch("nodes", None, "node-2", {"metadata": {"labels": {"role": "edge"}}})
    found = wait_for(lambda: running_by_node(cluster, "edge") or None, 60, "edge pod on node-2")
    assert list(found) == ["node-2"]
    status = cluster.client.raw.get("daemonsets", "default", "edge")["status"]
    assert status["desiredNumberScheduled"] == 1
    # node-1 is not labelled: no pod was ever made for it.
    assert [pod["spec"].get("nodeName") for pod in pods_of(cluster, "edge")] == ["node-2"]
    cluster.client.raw.patch("nodes", None, "node-2", {"metadata": {"labels": {"role": None}}})
    wait_for(lambda: not pods_of(cluster, "edge") or None, 30, "the edge pod deleted from the unlabelled node")
    assert cluster.client.raw.get("daemonsets", "default", "edge")["status"]["desiredNumberScheduled"] == 0
