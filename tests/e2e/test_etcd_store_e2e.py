"""A real cluster on etcd (`start --store etcd://... --leader-elect`): the daemon leads through
its Lease and runs the controllers, a Deployment of 3 pods runs and rolls to a new version with
exactly the right pods, its objects sit in etcd under the cluster's prefix with etcd's revisions as
their resourceVersions, and a restarted daemon finds everything there and leads again."""

from __future__ import annotations

import json
import os

import pytest

from minikube_py.store.etcd_client import EtcdMembers, decode, encode, prefix_end
from tests.e2e.cluster import Cluster, wait_for
from tests.etcd_cluster import ETCD, ETCD_MISSING, EtcdCluster


def deployment(version: int) -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
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


class EtcdBackedCluster(Cluster):
    def __init__(self, etcd: EtcdCluster):
        super().__init__()
        self.start_flags = ("--store", etcd.spec, "--leader-elect")


@pytest.fixture(scope="module")
def etcd():
    if ETCD is None:
        pytest.skip(ETCD_MISSING)
    with EtcdCluster(1, name="e2e") as members:
        yield members


@pytest.fixture(scope="module")
def cluster(etcd):
    if os.geteuid() != 0:
        pytest.skip("e2e tests run real pods and need root")
    running = EtcdBackedCluster(etcd).start()
    try:
        yield running
    finally:
        leftovers = running.stop()
        assert not leftovers, f"cluster {running.name} left these on the host after stop: {leftovers}"


def rolled_out(cluster: Cluster, version: int) -> list[dict] | None:
    """The Deployment's pods once exactly 3 run, all of the template with `version`, none going."""
    d = cluster.client.raw.get("deployments", "default", "web")
    status = d.get("status", {})
    if not (status.get("observedGeneration", 0) >= d["metadata"]["generation"]
            and status.get("updatedReplicas") == status.get("replicas") == status.get("availableReplicas") == 3):
        return None
    pods = cluster.client.raw.list("pods", "default", label_selector="app=web")["items"]
    if len(pods) != 3 or any(pod["metadata"].get("deletionTimestamp") for pod in pods):
        return None
    for pod in pods:
        env = pod["spec"]["containers"][0]["env"]
        if env != [{"name": "VERSION", "value": str(version)}] or pod.get("status", {}).get("phase") != "Running":
            return None
    return pods


def leader(cluster: Cluster) -> str | None:
    lease = cluster.client.raw.get("leases", "kube-system", "minikube-py-controller-manager")
    return lease["spec"].get("holderIdentity")


def test_a_deployment_rolls_to_a_new_version_on_the_etcd_store(cluster, etcd):
    holder = wait_for(lambda: leader(cluster), 30, "the daemon to hold the controller-manager Lease")
    node = cluster.client.raw.list("nodes", None)["items"][0]["metadata"]["name"]
    assert holder.startswith(f"{node}_")  # kube-controller-manager's identity: host name, "_", a uuid
    cluster.apply(deployment(1))
    first = wait_for(lambda: rolled_out(cluster, 1), 60, "3 pods of version 1 running")
    cluster.apply(deployment(2))
    second = wait_for(lambda: rolled_out(cluster, 2), 90, "3 pods of version 2 running, the old ones gone")
    assert not {pod["metadata"]["name"] for pod in first} & {pod["metadata"]["name"] for pod in second}
    replica_sets = cluster.client.raw.list("replicasets", "default", label_selector="app=web")["items"]
    assert sorted(rs["spec"]["replicas"] for rs in replica_sets) == [0, 3]

    # The objects live in etcd under the cluster's prefix; resourceVersion is the key's mod_revision.
    members = EtcdMembers(etcd.endpoints)
    prefix = f"/{cluster.name}/registry/pods/default/"
    kvs = members.call("/kv/range", {"key": encode(prefix), "range_end": encode(prefix_end(prefix))}).get("kvs", [])
    stored = {decode(kv["key"])[len(prefix):]: kv for kv in kvs}
    for pod in cluster.client.raw.list("pods", "default", label_selector="app=web")["items"]:
        kv = stored[pod["metadata"]["name"]]
        assert pod["metadata"]["resourceVersion"] == kv["mod_revision"]
        assert "resourceVersion" not in json.loads(decode(kv["value"]))["metadata"]


def restarts(cluster: Cluster) -> dict[str, int]:
    """Each web pod's container restart count, for the pods whose container runs now."""
    return {pod["metadata"]["name"]: status["restartCount"]
            for pod in cluster.client.raw.list("pods", "default", label_selector="app=web")["items"]
            for status in pod.get("status", {}).get("containerStatuses", []) if "running" in status.get("state", {})}


def test_a_restarted_daemon_finds_every_object_in_etcd_and_runs_the_pods_again(cluster):
    before = restarts(cluster)
    assert len(before) == 3
    first_leader = leader(cluster)
    cluster.cli("stop", "--grace-period", "1", timeout=120)
    cluster.start()
    new_leader = wait_for(lambda: leader(cluster), 30, "the restarted daemon to take the Lease")
    assert new_leader != first_leader, "each daemon run competes under an identity of its own"
    # Stopping the cluster stopped the pods; the objects stayed in etcd, and the new daemon runs
    # the same pods again (each container's restart count up by one, as after a node reboot).
    wait_for(lambda: (lambda now: now.keys() == before.keys() and all(now[name] > before[name] for name in now))(
        restarts(cluster)), 60, "the same 3 pods running again after the restart")
