"""persistentVolumeClaim volumes on the node: from a claim to a link to its volume's directory."""

from __future__ import annotations

import os

import pytest

from minikube_py import api
from minikube_py.agent.volumes_claims import ClaimNotReady, claim_directory, link_claim_volume
from minikube_py.agent.containers import volume_mounts
from minikube_py.api.storage import PersistentVolume, PersistentVolumeClaim


def make_claim(phase="Bound", volume_name="pv-1", deleting=False):
    metadata = {"name": "data", "namespace": "default", "uid": "claim-uid"}
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-03T00:00:00Z"
    return PersistentVolumeClaim.model_validate({
        "metadata": metadata, "spec": {"accessModes": ["ReadWriteOnce"], "volumeName": volume_name,
                                       "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": phase}})


def make_volume(path, uid="claim-uid"):
    return PersistentVolume.model_validate({
        "metadata": {"name": "pv-1"}, "spec": {
            "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": path},
            "claimRef": {"namespace": "default", "name": "data", "uid": uid}}})


@pytest.mark.parametrize("claim, volume, message", [
    (None, None, 'persistentvolumeclaim "data" not found'),
    (make_claim(deleting=True), None, 'persistentvolumeclaim "data" is being deleted'),
    (make_claim(phase="Pending", volume_name=None), None, "PVC default/data has not been bound"),
    (make_claim(), None, 'persistentvolume "pv-1" not found'),
    (make_claim(), make_volume("/srv/x", uid="another"), "PVC default/data is not bound to PV pv-1"),
])
def test_a_claim_that_cannot_be_mounted_yet_says_why_in_kubelets_words(claim, volume, message):
    with pytest.raises(ClaimNotReady, match=message):
        claim_directory("default", "data", lambda namespace, name: claim, lambda namespace, name: volume)


def test_the_pods_volume_becomes_a_link_to_the_bound_volumes_directory_and_containers_bind_it(tmp_path):
    data = tmp_path / "pv-1"
    directory = claim_directory("default", "data", lambda namespace, name: make_claim(),
                                lambda namespace, name: make_volume(str(data)))
    link = tmp_path / "pod" / "volumes" / "data"
    link_claim_volume(str(link), directory, create_missing=True)
    assert os.readlink(link) == str(data) and data.is_dir()
    link_claim_volume(str(link), directory, create_missing=True)  # again: nothing changes
    assert os.readlink(link) == str(data)
    with pytest.raises(ClaimNotReady, match="is not a directory"):
        link_claim_volume(str(link), str(tmp_path / "missing"), create_missing=False)
    pod = api.Pod.model_validate({"metadata": {"name": "p", "namespace": "default", "uid": "u"}, "spec": {
        "containers": [{"name": "main", "image": "busybox",
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data", "readOnly": True}}]}})
    mount = volume_mounts(pod, pod.spec.containers[0], str(tmp_path / "pod"))[0]
    assert (mount.destination, mount.source, mount.read_only) == ("/data", str(link), True)
