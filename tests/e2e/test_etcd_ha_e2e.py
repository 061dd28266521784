"""A highly available cluster on a 3-member etcd with 3 nodes (issue 14): two daemons of one cluster
on the same etcd, both with `--leader-elect`: the control plane `cp` (`start --control-plane-only`:
an API server and controller manager with no node, started first, so it leads) and the daemon
`node` (API server, controller manager and its node `node-a`), plus `node-b` and `node-c` added
with `node add` (each in its own network namespace). Killing the leading daemon in the middle of
a rolling update hands leadership to the other within the lease duration and the update ends with
exactly the right pods (first: losing etcd's leader may move the Lease too); losing one etcd
member changes nothing a client sees; losing etcd's quorum makes writes fail with a 503/504
Status while reads go on, until a member comes back. etcd speaks TLS only and asks every client
for a certificate its CA signed, so the cluster's Secrets there are the API servers' alone. Then a Deployment of 30 spreads 10/10/10
over the nodes, a pod on node-a reaches one on node-c by IP and by Service name, and cutting
node-c's link makes it NotReady: its pods are evicted and replaced on the other two nodes, a
StatefulSet's pod there stays Terminating (no second pod of its name) until the node is back,
and no pod name ever runs on two nodes."""

from __future__ import annotations

import os
import random
import re
import signal
import time

import pytest

from minikube_py.api import errors
from minikube_py.client.transport import HttpTransport
from minikube_py.store.etcd_client import EtcdMembers, encode
from minikube_py.store.etcd_endpoints import EtcdTLS
from tests.e2e.cluster import Cluster, wait_for
from tests.e2e.node_links import http_get, set_link
from tests.etcd_cluster import ETCD, ETCD_MISSING, EtcdCluster

LEASE = "minikube-py-controller-manager"
# Short enough to keep the test quick, long enough that a loaded machine's slow renewals do not
# move the Lease before the test kills its holder.
LEASE_DURATION = 6.0
ELECTION = ("--leader-elect", "--leader-elect-lease-duration", f"{LEASE_DURATION:g}s",
            "--leader-elect-renew-deadline", "4s", "--leader-elect-retry-period", "1s")
NODES = ("node-a", "node-b", "node-c")  # the node daemon's own, then two added with `node add`
GRACE = 10  # --node-monitor-grace-period: NotReady after 10 s without a Lease renewal
TOLERATION = 3  # the lost node's pods of this test tolerate `unreachable` for this long


def deployment(version: int) -> str:
    """4 replicas rolling one at a time, each new pod available only 2 s after it is ready, so
    the update is still under way when its leader dies."""
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 4
  minReadySeconds: 2
  selector:
    matchLabels:
      app: web
  strategy:
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        app: web
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: main
          image: busybox
          env:
            - name: VERSION
              value: "{version}"
          command: ["sleep", "3600"]
"""


def config_map(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": name}}


class Daemon(Cluster):
    """One daemon of the shared cluster, with a home of its own."""

    def __init__(self, etcd: EtcdCluster, *flags: str, like: "Daemon | None" = None):
        # A /20 pod CIDR in /24 node slices, room for three nodes and the node network.
        super().__init__(name=like.name if like else None,
                         pod_cidr=like.pod_cidr if like else f"10.250.{random.randint(0, 15) * 16}.0/20")
        if like is not None:  # one cluster: the same service range and node ports everywhere
            self.service_cidr, self.node_port_range = like.service_cidr, like.node_port_range
        self.start_flags = ("--store", etcd.spec, *etcd.tls_flags, *ELECTION, "--default-unreachable-toleration-seconds", "20",
                            "--node-monitor-grace-period", str(GRACE), *flags)

    @property
    def raw(self) -> HttpTransport:
        return self.client.raw

    def identity(self) -> str:
        """This daemon's candidate identity (one per run), from its log once it led; else ""."""
        with open(os.path.join(self.home, "daemon.log")) as file:
            found = re.findall(r"leader election: (\S+) became the leader", file.read())
        return found[-1] if found else ""

    def pid(self) -> int:
        with open(os.path.join(self.home, "daemon.pid")) as file:
            return int(file.read())


@pytest.fixture(scope="module")
def etcd():
    if ETCD is None:
        pytest.skip(ETCD_MISSING)
    with EtcdCluster(3, name="ha", tls=True) as members:
        yield members


@pytest.fixture(scope="module")
def control_plane(etcd):
    if os.geteuid() != 0:
        pytest.skip("e2e tests run real pods and need root")
    daemon = Daemon(etcd, "--control-plane-only").start()
    try:
        yield daemon
    finally:
        leftovers = daemon.stop()
        assert not leftovers, f"the control plane left these on the host after stop: {leftovers}"


@pytest.fixture(scope="module")
def node(etcd, control_plane):
    daemon = Daemon(etcd, "--certificates-from", control_plane.home, "--node-name", NODES[0], like=control_plane)
    try:
        daemon.start()
        for name in NODES[1:]:
            daemon.cli("node", "add", name, timeout=120)
        yield daemon
    finally:
        leftovers = daemon.stop()
        assert not leftovers, f"cluster {daemon.name} left these on the host after stop: {leftovers}"


def holder(daemon: Daemon) -> str | None:
    return daemon.raw.get("leases", "kube-system", LEASE)["spec"].get("holderIdentity")


def test_the_clusters_secrets_in_etcd_are_for_its_api_servers_only(etcd, node):
    node.raw.create("secrets", "default", {"metadata": {"name": "db-password"}, "stringData": {"password": "s3cret"}})
    key = {"key": encode(f"/{node.name}/registry/secrets/default/db-password")}
    assert EtcdMembers(etcd.endpoints, tls=etcd.client_tls).call("/kv/range", key)["kvs"], "the API servers' view"
    # Anyone else on the host reaches etcd's port but gets nothing without a client certificate.
    with pytest.raises(errors.ServiceUnavailable) as raised:
        EtcdMembers(etcd.endpoints[:1], tls=EtcdTLS(etcd.client_tls.ca_file)).call("/kv/range", key)
    assert "refused the TLS connection: it wants a client certificate it trusts" in raised.value.message


def test_both_api_servers_serve_one_cluster_and_the_first_daemon_leads(control_plane, node):
    leader = wait_for(control_plane.identity, 30, "the control plane to lead")
    assert holder(node) == holder(control_plane) == leader
    # A pod created through the control plane is scheduled by its scheduler onto the other
    # daemon's node, and both API servers see it run; it got the admission's toleration seconds.
    control_plane.raw.create("pods", "default", {"metadata": {"name": "one"}, "spec": {
        "terminationGracePeriodSeconds": 1, "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}})
    running = node.wait_running("one", timeout=60)
    nodes = {n["metadata"]["name"]: ready_status(n) for n in node.raw.list("nodes", None)["items"]}
    assert nodes == {name: "True" for name in NODES}
    assert running["spec"]["nodeName"] in NODES
    assert control_plane.raw.get("pods", "default", "one")["status"]["phase"] == "Running"
    seconds = {t["key"]: t.get("tolerationSeconds") for t in running["spec"]["tolerations"]}
    assert seconds["node.kubernetes.io/unreachable"] == 20 and seconds["node.kubernetes.io/not-ready"] == 300
    control_plane.raw.delete("pods", "default", "one")


def ready_status(node_object: dict) -> str | None:
    return next((c["status"] for c in node_object["status"].get("conditions") or [] if c["type"] == "Ready"), None)


def web_pods(daemon: Daemon) -> list[dict]:
    return daemon.raw.list("pods", "default", label_selector="app=web")["items"]


def rolled_out(daemon: Daemon, version: int) -> list[dict] | None:
    """The Deployment's pods once exactly 4 run, all of `version`, none going, the rollout done."""
    d = daemon.raw.get("deployments", "default", "web")
    status = d.get("status", {})
    if not (status.get("observedGeneration", 0) >= d["metadata"]["generation"]
            and status.get("updatedReplicas") == status.get("replicas") == status.get("availableReplicas") == 4):
        return None
    pods = web_pods(daemon)
    if len(pods) != 4 or any(pod["metadata"].get("deletionTimestamp") for pod in pods):
        return None
    if any(pod["spec"]["containers"][0]["env"] != [{"name": "VERSION", "value": str(version)}]
           or pod.get("status", {}).get("phase") != "Running" for pod in pods):
        return None
    return pods


def test_killing_the_leader_during_a_rolling_update_hands_over_and_the_update_ends_right(control_plane, node):
    node.apply(deployment(1))
    first = wait_for(lambda: rolled_out(node, 1), 90, "4 pods of version 1 running")
    listed = node.raw.list("pods", "default", label_selector="app=web")
    watch = node.raw.watch("pods", "default", resource_version=listed["metadata"]["resourceVersion"],
                           label_selector="app=web")
    try:
        node.apply(deployment(2))
        wait_for(lambda: any(p["spec"]["containers"][0]["env"][0]["value"] == "2" for p in web_pods(node)), 30,
                 "the first pod of version 2")
        assert rolled_out(node, 2) is None, "the update must still be under way when its leader dies"
        dead = control_plane.identity()
        assert holder(node) == dead, "the control plane must still lead when it is killed"
        killed = time.monotonic()
        os.kill(control_plane.pid(), signal.SIGKILL)
        new_leader = wait_for(lambda: (lambda h: h if h and h != dead else None)(holder(node)),
                              LEASE_DURATION + 15, "the node's daemon to take the Lease")
        handed_over = time.monotonic() - killed
        assert new_leader == node.identity()
        second = wait_for(lambda: rolled_out(node, 2), 120, "4 pods of version 2 running, the old ones gone")
        added = []
        while (event := watch.next(timeout=0.5)) is not None:
            if event["type"] == "ADDED":
                added.append(event["object"]["metadata"]["name"])
    finally:
        watch.close()
    print(f"leadership handed over {handed_over:.1f}s after the leader was killed (lease {LEASE_DURATION:g}s)")
    # Exactly the right pods: each new pod created once (no pod name twice, no second controller
    # creating its own), no version 1 pod left, two ReplicaSets.
    assert len(added) == len(set(added)) == 4, f"pods created during the update: {added}"
    assert set(added) == {pod["metadata"]["name"] for pod in second}
    assert not {pod["metadata"]["name"] for pod in first} & set(added)
    replica_sets = node.raw.list("replicasets", "default", label_selector="app=web")["items"]
    assert sorted(rs["spec"]["replicas"] for rs in replica_sets) == [0, 4]


def test_losing_one_etcd_member_changes_nothing_a_client_sees(etcd, node):
    # (After the control plane was killed: the node's daemon serves alone now.)
    start = node.raw.list("configmaps", "default")["metadata"]["resourceVersion"]
    watch = node.raw.watch("configmaps", "default", resource_version=start)
    try:
        etcd.kill_member(0)  # the member both daemons' stores talk to first
        names = [f"after-kill-{index}" for index in range(5)]
        for name in names:
            node.raw.create("configmaps", "default", config_map(name))
        seen = []
        while len(seen) < len(names) and (event := watch.next(timeout=30)) is not None:
            seen.append((event["type"], event["object"]["metadata"]["name"]))
        assert seen == [("ADDED", name) for name in names]
        listed = {item["metadata"]["name"] for item in node.raw.list("configmaps", "default")["items"]}
        assert set(names) <= listed
    finally:
        watch.close()
        etcd.start_member(0)
    etcd.wait_ready()


def created(daemon: Daemon, name: str) -> bool:
    """Create a ConfigMap; a try that timed out may have written it already."""
    try:
        daemon.raw.create("configmaps", "default", config_map(name))
    except errors.AlreadyExists:
        pass
    return True


def test_without_quorum_writes_fail_with_a_clear_status_and_reads_go_on(etcd, node):
    before = {pod["metadata"]["name"] for pod in web_pods(node)}
    etcd.kill_member(1)
    etcd.kill_member(2)
    try:
        # A write fails with a 503 or 504 Status (ServiceUnavailable or Timeout) saying why.
        cli = node.cli("create", "configmap", "no-quorum", "--from-literal=k=v", check=False)
        assert cli.returncode != 0 and "Traceback" not in cli.stderr + cli.stdout
        assert re.match(r"Error from server \((ServiceUnavailable|Timeout)\): the etcd store at https://127\.0\.0\.1:\d+ ",
                        cli.stderr), cli.stderr
        # Reads answer from the last revision the API server saw.
        assert {pod["metadata"]["name"] for pod in web_pods(node)} == before
        assert node.cli("get", "deployment", "web").returncode == 0
    finally:
        etcd.start_member(1)
    wait_for(lambda: created(node, "quorum-back"), 60, "writes to work again once a second member is back")
    assert node.raw.get("configmaps", "default", "quorum-back")["data"] == {"k": "quorum-back"}
    etcd.start_member(2)


def test_the_cluster_goes_on_after_the_faults(node):
    # The leader renews again and a write reaches the pods: scale the Deployment down.
    node.cli("scale", "deployment/web", "--replicas=2")
    wait_for(lambda: len([p for p in web_pods(node) if not p["metadata"].get("deletionTimestamp")]) == 2, 60,
             "the Deployment scaled to 2")
    assert holder(node) == node.identity()


# The pods of the node tests tolerate a lost node for TOLERATION seconds (kube-apiserver's default
# is 300) and carry an httpd page naming themselves.
POD_SPEC = f"""
      terminationGracePeriodSeconds: 1
      tolerations:
      - {{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: {TOLERATION}}}
      - {{key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: {TOLERATION}}}
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "hostname > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"]
"""

# maxSkew 1 over the hostname, DoNotSchedule: 10/10/10. `nodeTaintsPolicy: Honor` leaves a node
# tainted unreachable out of the count, so the evicted pods' replacements fit on the other two.
SPREAD = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: spread}
spec:
  replicas: 30
  selector: {matchLabels: {app: spread}}
  template:
    metadata: {labels: {app: spread}}
    spec:
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: DoNotSchedule
        nodeTaintsPolicy: Honor
        labelSelector: {matchLabels: {app: spread}}""" + POD_SPEC

PINNED = """
apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {{app: {name}}}}}
spec:
  nodeName: {node}""" + POD_SPEC.replace("\n      ", "\n  ").replace("{", "{{").replace("}", "}}") + """
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
"""

STATEFUL = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 1
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      nodeSelector: {kubernetes.io/hostname: node-c}""" + POD_SPEC


def placed(daemon: Daemon, app: str) -> dict[str, str]:
    """Running pods of `app` not being deleted: name -> node."""
    pods = daemon.raw.list("pods", "default", label_selector=f"app={app}")["items"]
    return {p["metadata"]["name"]: p["spec"].get("nodeName") for p in pods
            if p.get("status", {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")}


def per_node(names: dict[str, str]) -> dict[str, int]:
    counts = dict.fromkeys(NODES, 0)
    for where in names.values():
        counts[where] += 1
    return counts


def test_a_deployment_of_30_spreads_10_10_10_over_the_three_nodes(node):
    node.apply(SPREAD)
    # Generous deadlines: CI runs this module beside others on 2 cores.
    running = wait_for(lambda: (lambda now: now if len(now) == 30 else None)(placed(node, "spread")), 240,
                       "30 spread pods running")
    assert per_node(running) == {name: 10 for name in NODES}


def test_a_pod_on_node_a_reaches_a_pod_on_node_c_by_ip_and_by_service_name(node):
    node.apply(PINNED.format(name="near", node="node-a") + "---" + PINNED.format(name="far", node="node-c"))
    node.wait_running("near", timeout=60)
    far = node.wait_running("far", timeout=60)
    assert wait_for(lambda: http_get(node, "near", far["status"]["podIP"], 8080) == "far", 20, "near -> far by IP")
    assert wait_for(lambda: http_get(node, "near", "far.default.svc.cluster.local", 80) == "far", 30,
                    "near -> far by Service name")


def node_object(daemon: Daemon, name: str) -> dict:
    return daemon.raw.get("nodes", None, name)


def test_cutting_a_nodes_link_moves_its_pods_and_no_pod_name_ever_runs_on_two_nodes(node):
    node.apply(STATEFUL)
    first_db = wait_for(lambda: (lambda p: p if p.get("status", {}).get("phase") == "Running" else None)(
        node.raw.get("pods", "default", "db-0")) if "db-0" in placed(node, "db") else None, 60, "db-0 running")
    assert first_db["spec"]["nodeName"] == "node-c"
    lost = {name for name, where in placed(node, "spread").items() if where == "node-c"}
    assert len(lost) == 10
    # Every pod's (name, uid, node, phase) from before the cut to the end.
    listed = node.raw.list("pods", "default")
    watch = node.raw.watch("pods", "default", resource_version=listed["metadata"]["resourceVersion"])
    seen = [(p["metadata"]["name"], p["metadata"]["uid"], p["spec"].get("nodeName"), p["status"].get("phase"))
            for p in listed["items"]]
    try:
        set_link(node, "node-c", up=False)
        try:
            wait_for(lambda: ready_status(node_object(node, "node-c")) == "Unknown" or None, GRACE + 30,
                     "node-c NotReady (Unknown)")
            wait_for(lambda: ("node.kubernetes.io/unreachable", "NoExecute") in {
                (t["key"], t["effect"]) for t in node_object(node, "node-c")["spec"].get("taints") or []} or None,
                20, "node-c tainted unreachable:NoExecute")
            moved = wait_for(lambda: (lambda now: now if len(now) == 30 and "node-c" not in now.values() else None)(
                placed(node, "spread")), TOLERATION + 150, "30 spread pods running on node-a and node-b")
            assert not lost & set(moved)
            for name in lost:  # evicted: deleted with a grace period only node-c's agent can finish
                assert node.raw.get("pods", "default", name)["metadata"].get("deletionTimestamp"), name
            # The StatefulSet's pod is evicted too but stays, Terminating on node-c: no second db-0.
            db = wait_for(lambda: (lambda p: p if p["metadata"].get("deletionTimestamp") else None)(
                node.raw.get("pods", "default", "db-0")), 30, "db-0 evicted")
            assert (db["metadata"]["uid"], db["spec"]["nodeName"]) == (first_db["metadata"]["uid"], "node-c")
            assert ready_status(node_object(node, "node-a")) == ready_status(node_object(node, "node-b")) == "True"
        finally:
            set_link(node, "node-c", up=True)
        wait_for(lambda: ready_status(node_object(node, "node-c")) == "True" or None, 60, "node-c Ready again")
        wait_for(lambda: not any(t["effect"] == "NoExecute" for t in node_object(node, "node-c")["spec"].get("taints")
                                 or []) or None, 30, "node-c's NoExecute taint removed")
        names = lambda: {p["metadata"]["name"] for p in node.raw.list("pods", "default")["items"]}  # noqa: E731
        wait_for(lambda: not (names() & lost) or None, 60, "the evicted pods cleaned by node-c's agent")
        second_db = wait_for(lambda: (lambda p: p if p.get("status", {}).get("phase") == "Running"
                                      and p["metadata"]["uid"] != first_db["metadata"]["uid"] else None)(
            node.raw.get("pods", "default", "db-0")) if "db-0" in placed(node, "db") else None, 60,
            "a new db-0 running once the old one is gone")
        while (event := watch.next(timeout=0.5)) is not None:
            p = event["object"]
            seen.append((p["metadata"]["name"], p["metadata"]["uid"], p["spec"].get("nodeName"),
                         "Deleted" if event["type"] == "DELETED" else p["status"].get("phase")))
        assert not watch.closed, "the watch ended early: it may have missed changes"
    finally:
        watch.close()
    ran_on: dict[str, set[str]] = {}
    for name, _, where, phase in seen:
        if phase == "Running":
            ran_on.setdefault(name, set()).add(where)
    assert all(len(nodes) == 1 for nodes in ran_on.values()), {n: w for n, w in ran_on.items() if len(w) > 1}
    # db-0's second pod appeared only after the first was gone (the first gone before any sign of the second).
    db_events = [(uid, phase) for name, uid, _, phase in seen if name == "db-0"]
    first_gone = db_events.index((first_db["metadata"]["uid"], "Deleted"))
    second_seen = next(index for index, (uid, _) in enumerate(db_events) if uid == second_db["metadata"]["uid"])
    assert first_gone < second_seen, db_events
    assert second_db["spec"]["nodeName"] == "node-c"
