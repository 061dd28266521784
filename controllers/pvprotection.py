"""The PV protection controller: a volume bound to a claim is not removed while it is bound.

Follows k/k `pkg/controller/volume/pvprotection`: every new volume carries the
`kubernetes.io/pv-protection` finalizer (admission puts it there, this controller too for older
ones); a deleted volume keeps it while its phase is `Bound`, and loses it once the claim has let
go (Released, Available or Failed). Keys are volume names.
"""

from __future__ import annotations

from minikube_py.api import errors
from minikube_py.api.storage import BOUND, PV_PROTECTION_FINALIZER, PersistentVolume
from minikube_py.client.api import Client
from minikube_py.client.controller import Controller
from minikube_py.client.informer import SharedInformers, cache_key, shared_informers
from minikube_py.clock import Clock

COMPONENT = "pv-protection-controller"


class PVProtectionController(Controller[str]):
    def __init__(self, client: Client, clock: Clock | None = None, informers: SharedInformers | None = None,
                 workers: int = 1):
        super().__init__(COMPONENT, clock, workers)
        self.client = client
        informers = informers or shared_informers(client)
        self.volumes = self.watch(informers.informer("persistentvolumes"),
                                  on_add=lambda volume: self.enqueue(cache_key(volume)),
                                  on_update=lambda old, new: self.enqueue(cache_key(new)))

    def sync(self, key: str) -> float | None:
        volume: PersistentVolume | None = self.volumes.get(key)
        if volume is None:
            return None
        finalizers = list(volume.metadata.finalizers or [])
        if volume.metadata.deletion_timestamp is None:
            if PV_PROTECTION_FINALIZER not in finalizers:
                self._set_finalizers(volume, [*finalizers, PV_PROTECTION_FINALIZER])
            return None
        if PV_PROTECTION_FINALIZER in finalizers and volume.status.phase != BOUND:
            self._set_finalizers(volume, [item for item in finalizers if item != PV_PROTECTION_FINALIZER])
        return None

    def _set_finalizers(self, volume: PersistentVolume, finalizers: list[str]) -> None:
        patch = {"metadata": {"finalizers": finalizers or None, "resourceVersion": volume.metadata.resource_version}}
        try:
            self.client.patch("persistentvolumes", volume.metadata.name or "", patch)
        except (errors.NotFound, errors.Conflict):
            pass
