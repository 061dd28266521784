"""Three nodes on one host: the daemon's node-1 and node-2, node-3 added with `node add`, each in
its own network namespace with its own address, supervisor, bridge and pod CIDR slice.

Pods on different nodes reach each other by IP and by Service name; exec and logs reach a pod on
an added node through the API server; a claim of a pod on an added node is provisioned by that
node's local-path provisioner, and the pod's usage shows in `top`; an agent with a wrong token, or a second agent for a
running node, is refused; a node whose link goes down turns NotReady and is tainted unreachable
(with short tuned timeouts its pods are evicted and replaced on the other nodes, never two pods of
one name running at once), and once its link is back its stale pods are cleaned; `node rm` drains
a node and removes it. One cluster for the module; `stop` must leave nothing of any node.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random

import pytest

from tests.e2e.cluster import Cluster, host_leftovers, wait_for
from tests.e2e.node_links import http_get, set_link

pytestmark = pytest.mark.e2e

GRACE = 8  # --node-monitor-grace-period: NotReady after 8 s without a Lease renewal
TOLERATION = 3  # the lost node's pods tolerate `unreachable` for this long, then are evicted

SERVER = """\
apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: {app}}}}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo hello from {name}; echo from-{name} > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"]
"""

SERVICE = """\
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: spread}
spec:
  replicas: 3
  selector: {matchLabels: {app: spread}}
  template:
    metadata: {labels: {app: spread}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {name: main, image: busybox, command: ["sleep", "3600"]}
"""
# The pods tolerate a lost node for TOLERATION seconds only (kube-apiserver's default is 300).
TOLERATIONS = """\
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: %d}
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: %d}
""" % (TOLERATION, TOLERATION)


@pytest.fixture(scope="module")
def cluster():
    octet = random.choice([252, 253, 254])
    cluster = Cluster(name=None, pod_cidr=f"10.{octet}.{random.randint(0, 15) * 16}.0/20")
    cluster.start_flags = ("--node-name", "node-1", "--node-monitor-grace-period", str(GRACE))
    try:
        cluster.start()
        for node in ("node-2", "node-3"):
            cluster.cli("node", "add", node, timeout=120)
        yield cluster
    finally:
        leftovers = cluster.stop()
        assert not leftovers, f"left on the host: {leftovers}"


def node(cluster: Cluster, name: str) -> dict:
    return cluster.client.raw.get("nodes", None, name)


def ready_status(node_object: dict) -> str | None:
    return next((c["status"] for c in node_object["status"].get("conditions") or [] if c["type"] == "Ready"), None)


def test_each_node_has_its_own_slice_address_and_is_ready(cluster):
    listing = cluster.cli("node", "ls").stdout
    assert listing.split("\n")[0].split()[:5] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    cidrs, addresses = set(), set()
    for name in ("node-1", "node-2", "node-3"):
        found = node(cluster, name)
        assert ready_status(found) == "True", name
        cidrs.add(found["spec"]["podCIDR"])
        addresses.add(next(a["address"] for a in found["status"]["addresses"] if a["type"] == "InternalIP"))
        lease = cluster.client.raw.get("leases", "kube-node-lease", name)
        assert lease["spec"]["holderIdentity"] == name
    assert len(cidrs) == 3 and len(addresses) == 3
    assert os.path.exists(f"/run/netns/mkpy-{cluster.name}-node-3")


def test_pods_on_different_nodes_reach_each_other_by_ip_and_service_name(cluster):
    cluster.apply(SERVER.format(name="near", app="near", node="node-1") + "---\n"
                  + SERVER.format(name="far", app="far", node="node-3") + "---\n" + SERVICE.format(name="far")
                  + "---\n" + SERVICE.format(name="near"))
    cluster.wait_running("near", timeout=60)
    far = cluster.wait_running("far", timeout=60)
    assert far["spec"]["nodeName"] == "node-3"
    far_ip = far["status"]["podIP"]
    assert wait_for(lambda: http_get(cluster, "near", far_ip, 8080) == "from-far", 20, "near -> far by IP")
    assert wait_for(lambda: http_get(cluster, "near", "far.default.svc.cluster.local", 80) == "from-far", 30,
                    "near -> far by Service name")
    # And back, from node-3, through node-3's own DNS and service proxy.
    near_ip = cluster.pod("near")["status"]["podIP"]
    assert wait_for(lambda: http_get(cluster, "far", near_ip, 8080) == "from-near", 20, "far -> near by IP")
    assert wait_for(lambda: http_get(cluster, "far", "near", 80) == "from-near", 30,
                    "far -> near by Service name, through node-3's DNS and service proxy")


def test_exec_and_logs_reach_a_pod_on_an_added_node_through_the_api(cluster):
    cluster.wait_running("far", timeout=60)
    assert cluster.exec("far", "hostname").stdout.strip() == "far"
    assert wait_for(lambda: "hello from far" in cluster.cli("logs", "far").stdout, 10, "far's log")
    inspected = cluster.inspect("far")
    assert inspected["pod"]["node"] == "node-3"


STORED = """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: stored}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 64Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: stored}
spec:
  nodeSelector: {kubernetes.io/hostname: node-3}
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo written-on-node-3 > /data/proof; exec sleep 3600"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - {name: data, persistentVolumeClaim: {claimName: stored}}
"""


def test_a_claim_of_a_pod_on_an_added_node_is_provisioned_there_and_its_pod_shows_in_top(cluster):
    """node-3 runs its own local-path provisioner (WaitForFirstConsumer binds where the pod goes),
    and the Metrics API reaches node-3's agent over its kubelet port."""
    cluster.apply(STORED)
    pod = cluster.wait_running("stored", timeout=90)
    assert pod["spec"]["nodeName"] == "node-3"
    claim = cluster.client.raw.get("persistentvolumeclaims", "default", "stored")
    assert claim["status"]["phase"] == "Bound"
    volume = cluster.client.raw.get("persistentvolumes", None, claim["spec"]["volumeName"])
    directory = volume["spec"]["hostPath"]["path"]
    assert directory.startswith(os.path.join(cluster.home, "nodes", "node-3") + os.sep), directory
    assert wait_for(lambda: cluster.exec("stored", "cat", "/data/proof").stdout.strip() == "written-on-node-3", 20,
                    "the pod's write in its volume")
    with open(os.path.join(directory, "proof")) as file:
        assert file.read().strip() == "written-on-node-3"
    assert wait_for(lambda: "stored" in cluster.cli("top", "pod", "stored", check=False).stdout, 30,
                    "top pod of a pod on node-3")
    metrics = cluster.client.raw.list_metrics("nodes")["items"]
    assert {"node-1", "node-3"} <= {item["metadata"]["name"] for item in metrics}


def test_an_agent_with_a_wrong_token_or_a_running_nodes_name_is_refused(cluster):
    ca = os.path.join(cluster.home, "pki", "ca.crt")
    bridge = next(ipaddress.ip_network(node(cluster, "node-1")["spec"]["podCIDR"]).hosts())
    server = f"https://{bridge}:6443"  # the API's listener on node-1's bridge, where node add points nodes
    wrong = cluster.cli("join", "--server", server, "--token", "not-the-token", "--certificate-authority", ca,
                        "--name", "intruder", "--node-home", os.path.join(cluster.home, "intruder"), check=False,
                        timeout=60)
    assert wrong.returncode != 0
    assert "refused this node's credentials" in wrong.stderr and "Unauthorized" in wrong.stderr
    with open(os.path.join(cluster.home, "nodes", "node-2", "token")) as file:
        token = file.read().strip()
    twice = cluster.cli("join", "--server", server, "--token", token, "--certificate-authority", ca,
                        "--name", "node-2", "--node-home", os.path.join(cluster.home, "twice"), check=False, timeout=60)
    assert twice.returncode != 0 and 'a node named "node-2" is already running' in twice.stderr
    assert cluster.cli("node", "add", "node-2", check=False).returncode != 0


def running_names(cluster: Cluster) -> dict[str, str]:
    """Running pods of the Deployment: name -> node."""
    pods = cluster.client.raw.list("pods", "default", label_selector="app=spread")["items"]
    return {p["metadata"]["name"]: p["spec"].get("nodeName") for p in pods
            if p.get("status", {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")}


def test_a_node_that_loses_its_link_goes_not_ready_its_pods_move_and_it_comes_back_clean(cluster):
    # With node-1 and node-2 cordoned, the three pods land on node-3; then both are open again.
    for name in ("node-1", "node-2"):
        cluster.client.raw.patch("nodes", None, name, {"spec": {"unschedulable": True}})
    cluster.apply(DEPLOYMENT.replace("      containers:", TOLERATIONS + "      containers:"))
    wait_for(lambda: len(running_names(cluster)) == 3 or None, 60, "3 spread pods running")
    for name in ("node-1", "node-2"):
        cluster.client.raw.patch("nodes", None, name, {"spec": {"unschedulable": None}})
    placed = running_names(cluster)
    assert set(placed.values()) == {"node-3"}, placed
    lost = set(placed)

    set_link(cluster, "node-3", up=False)
    try:
        wait_for(lambda: ready_status(node(cluster, "node-3")) == "Unknown" or None, GRACE + 30, "node-3 Unknown")
        wait_for(lambda: ("node.kubernetes.io/unreachable", "NoExecute") in {
            (t["key"], t["effect"]) for t in node(cluster, "node-3")["spec"].get("taints") or []} or None,
            20, "node-3 tainted unreachable:NoExecute")
        assert ready_status(node(cluster, "node-1")) == "True"
        seen: dict[str, str] = {}

        def replaced() -> bool:
            now = running_names(cluster)
            for name, where in now.items():  # never one name on two nodes
                assert seen.setdefault(name, where) == where, f"{name} ran on {seen[name]} and {where}"
            return len([n for n, where in now.items() if where != "node-3"]) == 3
        wait_for(lambda: replaced() or None, TOLERATION + 60, "3 spread pods running off node-3")
        for name in lost:  # evicted: deleted with a grace period only node-3's agent can finish
            pod = cluster.client.raw.get("pods", "default", name)
            assert pod["metadata"].get("deletionTimestamp"), name
    finally:
        set_link(cluster, "node-3", up=True)
    wait_for(lambda: ready_status(node(cluster, "node-3")) == "True" or None, 60, "node-3 Ready again")
    wait_for(lambda: not any(t["effect"] == "NoExecute" for t in node(cluster, "node-3")["spec"].get("taints") or [])
             or None, 30, "node-3's NoExecute taint removed")

    def stale_gone() -> bool:
        names = {p["metadata"]["name"] for p in cluster.client.raw.list("pods", "default")["items"]}
        return not (names & lost)
    wait_for(lambda: stale_gone() or None, 60, "the evicted pods cleaned by node-3's agent")


def test_node_rm_drains_the_node_and_removes_it_from_the_host(cluster):
    cluster.apply(SERVER.format(name="doomed", app="doomed", node="node-2"))
    cluster.wait_running("doomed", timeout=60)
    result = cluster.cli("node", "rm", "node-2", timeout=150)
    assert "node/node-2 removed" in result.stdout
    names = {n["metadata"]["name"] for n in cluster.client.raw.list("nodes")["items"]}
    assert "node-2" not in names
    assert not any(p["metadata"]["name"] == "doomed" for p in cluster.client.raw.list("pods", "default")["items"])
    assert not os.path.exists(f"/run/netns/mkpy-{cluster.name}-node-2")
    assert not any("node-2" in leftover for leftover in host_leftovers(cluster.name, cluster.home)
                   if "network namespace" in leftover or "cgroup" in leftover)
    assert {n["metadata"]["name"] for n in json.loads(cluster.cli("get", "nodes", "-o", "json").stdout)["items"]} == {
        "node-1", "node-3"}
