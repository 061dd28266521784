"""The built-in local-path provisioner: a directory per volume under the cluster home, as k3s' has.

k3s ships rancher's local-path-provisioner with a default StorageClass `local-path`
(`WaitForFirstConsumer`, reclaim policy `Delete`). Ours behaves alike and runs beside the node
agent, because making and removing the directories is node work:

- A claim the PersistentVolume controller handed to `rancher.io/local-path` (its
  `volume.kubernetes.io/storage-provisioner` annotation) and, for `WaitForFirstConsumer`, whose
  selected node is this one (an `Immediate` claim, with no selected node, is the daemon's node's),
  gets a directory `<home>/storage/pvc-<uid>_<namespace>_<name>` and a
  PersistentVolume `pvc-<uid>` pre-bound to it: a `hostPath` volume of the requested size, the
  claim's access modes, the class's reclaim policy, node affinity to this node.
- A volume it made that is `Released` with reclaim policy `Delete` loses its directory, then the
  PersistentVolume is deleted. `Retain` keeps both until an administrator deletes them.

The storage root is 0700 and owned by root, so no other local user can read or reach a volume;
each volume directory inside is 0777, as the provisioner's helper makes it, so any container
user may write there. A directory is only ever removed when it sits directly in the root.
Keys are `claim/<namespace>/<name>` and `volume/<name>`.

Every node runs one for itself, as k3s' provisioner starts its helper pod on the selected node: the
daemon's node and each node that `node add` or `join` starts (nodes.py), each under its own home.
"""

from __future__ import annotations

import logging
import os
import shutil

from minikube_py.api import errors
from minikube_py.api.meta import ObjectMeta
from minikube_py.api.storage import (
    BIND_COMPLETED_ANNOTATION,
    DEFAULT_CLASS_ANNOTATION,
    HOSTNAME_LABEL,
    PROVISIONED_BY_ANNOTATION,
    RELEASED,
    SELECTED_NODE_ANNOTATION,
    STORAGE_PROVISIONER_ANNOTATION,
    PersistentVolume,
    PersistentVolumeClaim,
    StorageClass,
)
from minikube_py.client.api import Client
from minikube_py.client.controller import Controller
from minikube_py.client.events import NORMAL, WARNING, EventRecorder
from minikube_py.client.informer import Informer, SharedInformers
from minikube_py.clock import Clock

log = logging.getLogger(__name__)

PROVISIONER = "rancher.io/local-path"
DEFAULT_CLASS = "local-path"
NODE_ANNOTATION = "local.path.provisioner/selected-node"
ROOT_MODE = 0o700
VOLUME_MODE = 0o777


def default_storage_class() -> StorageClass:
    return StorageClass(metadata=ObjectMeta(name=DEFAULT_CLASS, annotations={DEFAULT_CLASS_ANNOTATION: "true"}),
                        provisioner=PROVISIONER, reclaim_policy="Delete", volume_binding_mode="WaitForFirstConsumer")


def ensure_default_storage_class(client: Client) -> None:
    """Create the `local-path` class unless it exists (an administrator may have changed it)."""
    try:
        client.create(default_storage_class())
    except errors.AlreadyExists:
        pass


def volume_directory(root: str, claim: PersistentVolumeClaim) -> str:
    return os.path.join(root, f"pvc-{claim.metadata.uid}_{claim.metadata.namespace}_{claim.metadata.name}")


class LocalPathProvisioner(Controller[str]):
    """Makes and removes this node's local-path volumes."""

    def __init__(self, client: Client, node_name: str, root: str, clock: Clock | None = None,
                 recorder: EventRecorder | None = None, informers: SharedInformers | None = None,
                 takes_unselected: bool = True):
        super().__init__("local-path-provisioner", clock, workers=1)
        self.client = client
        self.node_name = node_name
        # Whether claims without a selected node (Immediate binding) are this node's: the daemon's only.
        self.takes_unselected = takes_unselected
        self.root = root
        self.recorder = recorder or EventRecorder(client, PROVISIONER, self.clock)

        def informer(resource: str) -> Informer:
            # Its own caches, as the node agent's, unless a test shares the controllers' ones.
            return informers.informer(resource) if informers is not None else Informer(client, resource)

        self.claims = self.watch(informer("persistentvolumeclaims"),
                                 on_add=self._claim_changed, on_update=lambda old, new: self._claim_changed(new))
        self.volumes = self.watch(informer("persistentvolumes"),
                                  on_add=self._volume_changed, on_update=lambda old, new: self._volume_changed(new))
        self.classes = self.watch(informer("storageclasses"))

    def _claim_changed(self, claim: PersistentVolumeClaim) -> None:
        self.enqueue(f"claim/{claim.metadata.namespace}/{claim.metadata.name}")

    def _volume_changed(self, volume: PersistentVolume) -> None:
        self.enqueue(f"volume/{volume.metadata.name}")

    def sync(self, key: str) -> float | None:
        kind, _, rest = key.partition("/")
        if kind == "claim":
            claim = self.claims.get(rest)
            if claim is not None:
                self._provision(claim)
        else:
            volume = self.volumes.get(rest)
            if volume is not None:
                self._reclaim(volume)
        return None

    def _provision(self, claim: PersistentVolumeClaim) -> None:
        annotations = claim.metadata.annotations or {}
        if annotations.get(STORAGE_PROVISIONER_ANNOTATION) != PROVISIONER or \
                BIND_COMPLETED_ANNOTATION in annotations or claim.spec.volume_name or \
                claim.metadata.deletion_timestamp is not None:
            return
        storage_class: StorageClass | None = self.classes.get(claim.class_name())
        if storage_class is None or storage_class.provisioner != PROVISIONER:
            return
        selected = annotations.get(SELECTED_NODE_ANNOTATION)
        if selected != self.node_name and (selected or not self.takes_unselected):
            return
        name = f"pvc-{claim.metadata.uid}"
        if self.volumes.get(name) is not None:
            return
        claim_text = f"{claim.metadata.namespace}/{claim.metadata.name}"
        self.recorder.event(claim, NORMAL, "Provisioning",
                            f'External provisioner is provisioning volume for claim "{claim_text}"')
        directory = volume_directory(self.root, claim)
        try:
            os.makedirs(self.root, mode=ROOT_MODE, exist_ok=True)
            os.chmod(self.root, ROOT_MODE)
            os.makedirs(directory, exist_ok=True)
            os.chmod(directory, VOLUME_MODE)
        except OSError as error:
            self.recorder.event(claim, WARNING, "ProvisioningFailed",
                                f'failed to provision volume with StorageClass "{storage_class.metadata.name}": '
                                f"creating {directory}: {error}")
            raise
        volume = PersistentVolume.model_validate({
            "metadata": {"name": name, "annotations": {PROVISIONED_BY_ANNOTATION: PROVISIONER,
                                                       NODE_ANNOTATION: self.node_name}},
            "spec": {
                "capacity": {"storage": (claim.spec.resources.requests or {}).get("storage", "0")},
                "accessModes": list(claim.spec.access_modes or []),
                "persistentVolumeReclaimPolicy": storage_class.reclaim_policy,
                "storageClassName": storage_class.metadata.name,
                "volumeMode": claim.spec.volume_mode,
                "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
                             "namespace": claim.metadata.namespace, "name": claim.metadata.name,
                             "uid": claim.metadata.uid, "resourceVersion": claim.metadata.resource_version},
                "hostPath": {"path": directory, "type": "DirectoryOrCreate"},
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": HOSTNAME_LABEL, "operator": "In", "values": [self.node_name]}]}]}},
            },
        })
        try:
            self.client.create(volume)
        except errors.AlreadyExists:
            return
        self.recorder.event(claim, NORMAL, "ProvisioningSucceeded", f"Successfully provisioned volume {name}")

    def _reclaim(self, volume: PersistentVolume) -> None:
        annotations = volume.metadata.annotations or {}
        if annotations.get(PROVISIONED_BY_ANNOTATION) != PROVISIONER or \
                annotations.get(NODE_ANNOTATION) != self.node_name or \
                volume.status.phase != RELEASED or volume.spec.persistent_volume_reclaim_policy != "Delete":
            return
        directory = volume.source_path()
        if directory and os.path.dirname(os.path.normpath(directory)) == os.path.normpath(self.root):
            # Never follows a link out of the root: rmtree removes links, not what they point at.
            if os.path.isdir(directory) and not os.path.islink(directory):
                shutil.rmtree(directory)
        elif directory:
            self.recorder.event(volume, WARNING, "VolumeFailedDelete",
                                f"{directory} is not a local-path volume directory under {self.root}; left in place")
        try:
            self.client.delete("persistentvolumes", volume.metadata.name or "")
        except errors.NotFound:
            pass

