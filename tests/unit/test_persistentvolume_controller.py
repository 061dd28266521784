"""PersistentVolumes, claims and classes: admission, binding, provisioning, protection, scheduling."""

from __future__ import annotations

import os
import stat

import pytest

from minikube_py.agent.localpath import LocalPathProvisioner, default_storage_class
from minikube_py.api import errors
from minikube_py.api.printers import PRINTERS
from controllers.persistentvolume import PersistentVolumeController
from controllers.pvcprotection import PVCProtectionController
from controllers.pvprotection import PVProtectionController
from controllers.scheduler import Scheduler


class Storage:
    """The storage controllers of one fake cluster, settled together."""

    def __init__(self, cluster, root=None):
        self.cluster = cluster
        self.controllers = [PersistentVolumeController(cluster.client, cluster.clock, cluster.informers),
                            PVCProtectionController(cluster.client, cluster.clock, cluster.informers),
                            PVProtectionController(cluster.client, cluster.clock, cluster.informers),
                            Scheduler(cluster.client, cluster.clock, cluster.informers)]
        if root is not None:
            self.controllers.append(LocalPathProvisioner(cluster.client, "node-1", root, cluster.clock,
                                                         informers=cluster.informers))

    def settle(self, rounds=30):
        for _ in range(rounds):
            self.cluster.refresh()
            if sum(controller.drain() for controller in self.controllers) == 0:
                return


def volume(cluster, name, size="1Gi", modes=("ReadWriteOnce",), policy="Retain", storage_class="", labels=None):
    return cluster.create("persistentvolumes", {
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name, "labels": labels or {}},
        "spec": {"capacity": {"storage": size}, "accessModes": list(modes), "storageClassName": storage_class,
                 "persistentVolumeReclaimPolicy": policy, "hostPath": {"path": f"/srv/{name}"}}}, namespace=None)


def claim(cluster, name, size="1Gi", modes=("ReadWriteOnce",), storage_class: str | None = "", selector=None):
    spec = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    if selector is not None:
        spec["selector"] = selector
    return cluster.create("persistentvolumeclaims", {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                                     "metadata": {"name": name}, "spec": spec})


def pod_using(cluster, name, claim_name):
    return cluster.create("pods", {"metadata": {"name": name}, "spec": {
        "containers": [{"name": "main", "image": "busybox", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}]}})


def events(cluster, name):
    return [(event.reason, event.message) for event in cluster.list("events")
            if event.involved_object.name == name]


def test_a_claim_binds_the_smallest_matching_available_volume_and_both_become_bound(cluster):
    storage = Storage(cluster)
    volume(cluster, "big", size="10Gi")
    volume(cluster, "small", size="2Gi")
    volume(cluster, "too-small", size="500Mi")
    volume(cluster, "read-only", size="1Gi", modes=("ReadOnlyMany",))
    claim(cluster, "data", size="1Gi")
    storage.settle()
    bound = cluster.get("persistentvolumeclaims", "data")
    assert (bound.status.phase, bound.spec.volume_name) == ("Bound", "small")
    assert bound.status.capacity == {"storage": "2Gi"} and bound.status.access_modes == ["ReadWriteOnce"]
    assert bound.metadata.annotations["pv.kubernetes.io/bind-completed"] == "yes"
    small = cluster.get("persistentvolumes", "small", namespace=None)
    assert small.status.phase == "Bound" and small.spec.claim_ref.uid == bound.metadata.uid
    assert {name: cluster.get("persistentvolumes", name, namespace=None).status.phase
            for name in ("big", "too-small", "read-only")} == dict.fromkeys(("big", "too-small", "read-only"),
                                                                           "Available")
    row = PRINTERS["persistentvolumeclaims"].row(cluster.registry.get("persistentvolumeclaims", "default", "data"), 0)
    assert row[:5] == ["data", "Bound", "small", "2Gi", "RWO"]
    row = PRINTERS["persistentvolumes"].row(cluster.registry.get("persistentvolumes", None, "small"), 0)
    assert row[:7] == ["small", "2Gi", "RWO", "Retain", "Bound", "default/data", ""]


def test_a_selector_and_a_prebound_volume_decide_the_match(cluster):
    storage = Storage(cluster)
    volume(cluster, "fast", labels={"speed": "fast"})
    volume(cluster, "slow", size="1Gi", labels={"speed": "slow"})
    claim(cluster, "picky", selector={"matchLabels": {"speed": "fast"}})
    storage.settle()
    assert cluster.get("persistentvolumeclaims", "picky").spec.volume_name == "fast"


def test_deleting_the_claim_releases_a_retain_volume_and_fails_delete_on_a_volume_nobody_provisioned(cluster):
    storage = Storage(cluster)
    volume(cluster, "kept", policy="Retain")
    claim(cluster, "a")
    storage.settle()
    cluster.registry.delete("persistentvolumeclaims", "default", "a")
    storage.settle()
    assert cluster.get("persistentvolumeclaims", "a") is None
    kept = cluster.get("persistentvolumes", "kept", namespace=None)
    assert kept.status.phase == "Released" and kept.spec.claim_ref.name == "a"
    # A Released volume is not bound again by a new claim of the same name.
    claim(cluster, "a")
    storage.settle()
    assert cluster.get("persistentvolumeclaims", "a").status.phase == "Pending"
    volume(cluster, "manual", policy="Delete")
    storage.settle()
    assert cluster.get("persistentvolumeclaims", "a").spec.volume_name == "manual"
    cluster.registry.delete("persistentvolumeclaims", "default", "a")
    storage.settle()
    manual = cluster.get("persistentvolumes", "manual", namespace=None)
    assert manual.status.phase == "Failed"
    assert ("VolumeFailedDelete", 'error getting deleter volume plugin for volume "manual": '
            "no deletable volume plugin matched") in events(cluster, "manual")


def test_a_bound_claim_whose_volume_is_gone_is_lost(cluster):
    storage = Storage(cluster)
    volume(cluster, "v1")
    claim(cluster, "data")
    storage.settle()
    # Remove the volume behind everyone's back (its protection finalizer too).
    cluster.registry.patch("persistentvolumes", None, "v1", {"metadata": {"finalizers": None}})
    cluster.registry.delete("persistentvolumes", None, "v1")
    storage.settle()
    assert cluster.get("persistentvolumeclaims", "data").status.phase == "Lost"
    assert ("ClaimLost", "Bound claim has lost its PersistentVolume. Data on the volume is lost!") in \
        events(cluster, "data")


def test_a_claim_for_a_class_that_does_not_exist_stays_pending_with_kubernetes_event(cluster):
    storage = Storage(cluster)
    claim(cluster, "orphan", storage_class="x")
    storage.settle()
    assert cluster.get("persistentvolumeclaims", "orphan").status.phase == "Pending"
    assert ("ProvisioningFailed", 'storageclass.storage.k8s.io "x" not found') in events(cluster, "orphan")
    claim(cluster, "classless")
    storage.settle()
    assert ("FailedBinding", "no persistent volumes available for this claim and no storage class is set") in \
        events(cluster, "classless")


def test_admission_gives_claims_the_default_class_and_the_protection_finalizers(cluster):
    assert claim(cluster, "before", storage_class=None).spec.storage_class_name is None
    cluster.create("storageclasses", default_storage_class().to_dict(), namespace=None)
    made = claim(cluster, "after", storage_class=None)
    assert made.spec.storage_class_name == "local-path"
    assert made.metadata.finalizers == ["kubernetes.io/pvc-protection"]
    assert claim(cluster, "explicit", storage_class="").spec.storage_class_name == ""
    assert volume(cluster, "v").metadata.finalizers == ["kubernetes.io/pv-protection"]
    row = PRINTERS["storageclasses"].row(cluster.registry.get("storageclasses", None, "local-path"), 0)
    assert row[:5] == ["local-path (default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer", "false"]


@pytest.mark.parametrize("body, message", [
    ({"accessModes": [], "resources": {"requests": {"storage": "1Gi"}}},
     "spec.accessModes: Required value: at least 1 access mode is required"),
    ({"accessModes": ["ReadWriteSometimes"], "resources": {"requests": {"storage": "1Gi"}}},
     'spec.accessModes: Unsupported value: "ReadWriteSometimes"'),
    ({"accessModes": ["ReadWriteOnce"]}, "spec.resources[storage]: Required value"),
    ({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "0"}}},
     'spec.resources[storage]: Invalid value: "0": must be greater than zero'),
])
def test_bad_claims_are_refused_with_kubernetes_messages(cluster, body, message):
    with pytest.raises(errors.Invalid, match=message.replace("[", r"\[").replace("]", r"\]")):
        cluster.registry.create("persistentvolumeclaims", "default", {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "bad"}, "spec": body})


def test_a_claim_spec_is_immutable_except_a_larger_request_once_bound(cluster):
    storage = Storage(cluster)
    volume(cluster, "v1")
    claim(cluster, "data")
    storage.settle()
    current = cluster.registry.get("persistentvolumeclaims", "default", "data")
    changed = {**current, "spec": {**current["spec"], "accessModes": ["ReadWriteMany"]}}
    with pytest.raises(errors.Invalid, match="spec: Forbidden: spec is immutable after creation"):
        cluster.registry.replace("persistentvolumeclaims", "default", "data", changed)


def test_a_pod_with_a_missing_or_immediate_unbound_claim_is_unschedulable(cluster):
    cluster.add_node("node-1")
    storage = Storage(cluster)
    pod_using(cluster, "lonely", "nothing")
    storage.settle()
    condition = cluster.get("pods", "lonely").status.condition("PodScheduled")
    assert (condition.reason, condition.message) == ("Unschedulable", 'persistentvolumeclaim "nothing" not found')
    claim(cluster, "nothing")  # class "" and no volume: an unbound immediate claim
    cluster.clock.advance(1)  # the claim's event moved the pod into its back-off
    storage.settle()
    assert cluster.get("pods", "lonely").status.condition("PodScheduled").message == \
        "pod has unbound immediate PersistentVolumeClaims"
    volume(cluster, "v1")
    storage.settle()
    cluster.clock.advance(10)  # the longest back-off a pod waits after its failed attempts
    storage.settle()
    assert cluster.get("pods", "lonely").spec.node_name == "node-1"


def test_wait_for_first_consumer_provisions_a_private_directory_on_the_chosen_node_then_binds_the_pod(cluster, tmp_path):
    cluster.add_node("node-1", labels={"kubernetes.io/hostname": "node-1"})
    root = tmp_path / "storage"
    storage = Storage(cluster, str(root))
    cluster.create("storageclasses", default_storage_class().to_dict(), namespace=None)
    made = claim(cluster, "data", storage_class=None)
    storage.settle()
    assert cluster.get("persistentvolumeclaims", "data").status.phase == "Pending"
    assert ("WaitForFirstConsumer", "waiting for first consumer to be created before binding") in \
        events(cluster, "data")
    pod_using(cluster, "consumer", "data")
    storage.settle()
    bound = cluster.get("persistentvolumeclaims", "data")
    assert bound.metadata.annotations["volume.kubernetes.io/selected-node"] == "node-1"
    assert bound.metadata.annotations["volume.kubernetes.io/storage-provisioner"] == "rancher.io/local-path"
    assert (bound.status.phase, bound.spec.volume_name) == ("Bound", f"pvc-{made.metadata.uid}")
    provisioned = cluster.get("persistentvolumes", f"pvc-{made.metadata.uid}", namespace=None)
    directory = root / f"pvc-{made.metadata.uid}_default_data"
    assert provisioned.spec.host_path.path == str(directory)
    assert provisioned.spec.persistent_volume_reclaim_policy == "Delete"
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700  # nobody else reaches the volumes
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o777  # any container user may write
    assert cluster.get("pods", "consumer").spec.node_name == "node-1"
    reasons = [reason for reason, _ in events(cluster, "data")]
    assert {"ExternalProvisioning", "Provisioning", "ProvisioningSucceeded"} <= set(reasons)

    # PVC protection: deleting the claim waits for the pod; then Delete removes the directory and the volume.
    (directory / "file").write_text("kept until the claim goes")
    cluster.registry.delete("persistentvolumeclaims", "default", "data")
    storage.settle()
    held = cluster.get("persistentvolumeclaims", "data")
    assert held is not None and held.metadata.deletion_timestamp is not None
    assert directory.exists()
    cluster.registry.delete("pods", "default", "consumer", grace_period_seconds=0)
    storage.settle()
    assert cluster.get("persistentvolumeclaims", "data") is None
    assert cluster.get("persistentvolumes", f"pvc-{made.metadata.uid}", namespace=None) is None
    assert not directory.exists() and root.exists()


def test_a_retain_class_keeps_the_directory_and_the_released_volume(cluster, tmp_path):
    cluster.add_node("node-1")
    root = tmp_path / "storage"
    storage = Storage(cluster, str(root))
    keep = default_storage_class()
    keep.metadata.name, keep.metadata.annotations, keep.reclaim_policy = "keep", None, "Retain"
    cluster.create("storageclasses", keep.to_dict(), namespace=None)
    made = claim(cluster, "data", storage_class="keep")
    pod_using(cluster, "consumer", "data")
    storage.settle()
    cluster.registry.delete("pods", "default", "consumer", grace_period_seconds=0)
    cluster.registry.delete("persistentvolumeclaims", "default", "data")
    storage.settle()
    kept = cluster.get("persistentvolumes", f"pvc-{made.metadata.uid}", namespace=None)
    assert kept.status.phase == "Released" and kept.metadata.deletion_timestamp is None
    assert (root / f"pvc-{made.metadata.uid}_default_data").is_dir()


def test_a_bound_volume_is_not_removed_until_its_claim_lets_go(cluster):
    storage = Storage(cluster)
    volume(cluster, "v1")
    claim(cluster, "data")
    storage.settle()
    cluster.registry.delete("persistentvolumes", None, "v1")
    storage.settle()
    held = cluster.get("persistentvolumes", "v1", namespace=None)
    assert held is not None and held.metadata.deletion_timestamp is not None
    cluster.registry.delete("persistentvolumeclaims", "default", "data")
    storage.settle()
    assert cluster.get("persistentvolumes", "v1", namespace=None) is None


def test_each_node_provisions_the_volumes_of_pods_scheduled_to_it_under_its_own_root(cluster, tmp_path):
    """Every node runs a provisioner (the daemon's node and each added one): a claim goes to the
    provisioner of the node its pod is scheduled to, and nobody else makes a directory for it."""
    for name in ("node-1", "node-2"):
        cluster.add_node(name, labels={"kubernetes.io/hostname": name})
    storage = Storage(cluster, str(tmp_path / "daemon"))
    storage.controllers.append(LocalPathProvisioner(cluster.client, "node-2", str(tmp_path / "added"), cluster.clock,
                                                    informers=cluster.informers, takes_unselected=False))
    cluster.create("storageclasses", default_storage_class().to_dict(), namespace=None)
    made = claim(cluster, "data", storage_class=None)
    cluster.create("pods", {"metadata": {"name": "consumer"}, "spec": {
        "nodeSelector": {"kubernetes.io/hostname": "node-2"},
        "containers": [{"name": "main", "image": "busybox", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}})
    storage.settle()
    assert cluster.get("pods", "consumer").spec.node_name == "node-2"
    provisioned = cluster.get("persistentvolumes", f"pvc-{made.metadata.uid}", namespace=None)
    assert provisioned.spec.host_path.path == str(tmp_path / "added" / f"pvc-{made.metadata.uid}_default_data")
    assert provisioned.spec.node_affinity.required.node_selector_terms[0].match_expressions[0].values == ["node-2"]
    assert (tmp_path / "added" / f"pvc-{made.metadata.uid}_default_data").is_dir()
    assert not (tmp_path / "daemon").exists()
    assert cluster.get("persistentvolumeclaims", "data").status.phase == "Bound"
