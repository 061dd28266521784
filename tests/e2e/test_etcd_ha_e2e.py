"""A highly available control plane on a 3-member etcd (issue 14): two daemons of one cluster on
the same etcd, both with `--leader-elect`: the control plane `cp` (`start --control-plane-only`:
an API server and controller manager with no node, started first, so it leads) and the daemon
`node` (API server, controller manager and the node). Killing the leading daemon in the middle of
a rolling update hands leadership to the other within the lease duration and the update ends with
exactly the right pods (first: losing etcd's leader may move the Lease too); losing one etcd
member changes nothing a client sees; losing etcd's quorum makes writes fail with a 503/504
Status while reads go on, until a member comes back."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from minikube_py.api import errors
from minikube_py.client.transport import HttpTransport
from tests.e2e.cluster import Cluster, wait_for
from tests.etcd_cluster import ETCD, ETCD_MISSING, EtcdCluster

LEASE = "minikube-py-controller-manager"
# Short enough to keep the test quick, long enough that a loaded machine's slow renewals do not
# move the Lease before the test kills its holder.
LEASE_DURATION = 6.0
ELECTION = ("--leader-elect", "--leader-elect-lease-duration", f"{LEASE_DURATION:g}s",
            "--leader-elect-renew-deadline", "4s", "--leader-elect-retry-period", "1s")


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
        super().__init__(name=like.name if like else None, pod_cidr=like.pod_cidr if like else None)
        if like is not None:  # one cluster: the same service range and node ports everywhere
            self.service_cidr, self.node_port_range = like.service_cidr, like.node_port_range
        self.start_flags = ("--store", etcd.spec, *ELECTION, "--default-unreachable-toleration-seconds", "20", *flags)

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
    with EtcdCluster(3, name="ha") as members:
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
    daemon = Daemon(etcd, "--certificates-from", control_plane.home, like=control_plane).start()
    try:
        yield daemon
    finally:
        leftovers = daemon.stop()
        assert not leftovers, f"cluster {daemon.name} left these on the host after stop: {leftovers}"


def holder(daemon: Daemon) -> str | None:
    return daemon.raw.get("leases", "kube-system", LEASE)["spec"].get("holderIdentity")


def test_both_api_servers_serve_one_cluster_and_the_first_daemon_leads(control_plane, node):
    leader = wait_for(control_plane.identity, 30, "the control plane to lead")
    assert holder(node) == holder(control_plane) == leader
    # A pod created through the control plane is scheduled by its scheduler onto the other
    # daemon's node, and both API servers see it run; it got the admission's toleration seconds.
    control_plane.raw.create("pods", "default", {"metadata": {"name": "one"}, "spec": {
        "terminationGracePeriodSeconds": 1, "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}})
    running = node.wait_running("one", timeout=60)
    assert running["spec"]["nodeName"] == node.raw.list("nodes", None)["items"][0]["metadata"]["name"]
    assert control_plane.raw.get("pods", "default", "one")["status"]["phase"] == "Running"
    seconds = {t["key"]: t.get("tolerationSeconds") for t in running["spec"]["tolerations"]}
    assert seconds["node.kubernetes.io/unreachable"] == 20 and seconds["node.kubernetes.io/not-ready"] == 300
    control_plane.raw.delete("pods", "default", "one")


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
        assert re.match(r"Error from server \((ServiceUnavailable|Timeout)\): the etcd store at 127\.0\.0\.1:\d+ ",
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
