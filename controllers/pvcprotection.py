"""The PVC protection controller: a claim in use is not removed until its pods are gone.

Follows k/k `pkg/controller/volume/pvcprotection`. Every new claim carries the
`kubernetes.io/pvc-protection` finalizer (put there by admission, `apiserver/storage_admission.py`,
and by this controller for older claims). When a claim is deleted, the finalizer is removed only
once no pod of its namespace that has not finished names it in a `persistentVolumeClaim`
volume; the cache answers first and a live list confirms, so a pod created a moment ago still
counts. Keys are `namespace/name` of claims; a pod that ends or goes enqueues the claims it used.
"""

from __future__ import annotations

from minikube_py.api import errors
from minikube_py.api.core import Pod
from minikube_py.api.storage import PVC_PROTECTION_FINALIZER, PersistentVolumeClaim
from minikube_py.client.api import Client
from minikube_py.client.controller import Controller
from minikube_py.client.informer import SharedInformers, cache_key, shared_informers, split_cache_key
from minikube_py.clock import Clock

COMPONENT = "pvc-protection-controller"


def claims_of(pod: Pod) -> list[str]:
    return [volume.persistent_volume_claim.claim_name for volume in pod.spec.volumes or []
            if volume.persistent_volume_claim is not None]


def pod_uses_claim(pod: Pod, claim_name: str) -> bool:
    """A pod that has not finished and names the claim (`podUsesPVC`)."""
    return pod.status.phase not in ("Succeeded", "Failed") and claim_name in claims_of(pod)


class PVCProtectionController(Controller[str]):
    def __init__(self, client: Client, clock: Clock | None = None, informers: SharedInformers | None = None,
                 workers: int = 1):
        super().__init__(COMPONENT, clock, workers)
        self.client = client
        informers = informers or shared_informers(client)
        self.claims = self.watch(informers.informer("persistentvolumeclaims"),
                                 on_add=lambda claim: self.enqueue(cache_key(claim)),
                                 on_update=lambda old, new: self.enqueue(cache_key(new)))
        self.pods = self.watch(informers.informer("pods"), on_add=self._pod_changed,
                               on_update=lambda old, new: self._pod_changed(new), on_delete=self._pod_changed)

    def _pod_changed(self, pod: Pod) -> None:
        for name in claims_of(pod):
            self.enqueue(f"{pod.metadata.namespace}/{name}")

    def sync(self, key: str) -> float | None:
        claim: PersistentVolumeClaim | None = self.claims.get(key)
        if claim is None:
            return None
        finalizers = list(claim.metadata.finalizers or [])
        if claim.metadata.deletion_timestamp is None:
            if PVC_PROTECTION_FINALIZER not in finalizers:
                self._set_finalizers(claim, [*finalizers, PVC_PROTECTION_FINALIZER])
            return None
        if PVC_PROTECTION_FINALIZER not in finalizers or self._in_use(claim):
            return None
        self._set_finalizers(claim, [item for item in finalizers if item != PVC_PROTECTION_FINALIZER])
        return None

    def _in_use(self, claim: PersistentVolumeClaim) -> bool:
        namespace, name = split_cache_key(cache_key(claim))
        if any(pod_uses_claim(pod, name) for pod in self.pods.list(namespace=namespace)):
            return True
        # The cache may not have a pod created just now: ask the API before letting go.
        live, _ = self.client.list("pods", namespace=namespace)
        return any(pod_uses_claim(pod, name) for pod in live)

    def _set_finalizers(self, claim: PersistentVolumeClaim, finalizers: list[str]) -> None:
        patch = {"metadata": {"finalizers": finalizers or None, "resourceVersion": claim.metadata.resource_version}}
        try:
            self.client.patch("persistentvolumeclaims", claim.metadata.name or "", patch,
                              namespace=claim.metadata.namespace)
        except errors.NotFound:
            pass
