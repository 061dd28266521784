"""The garbage collector: finishes cascading deletion through ownerReferences (semantics.md 4.3).

The Registry only marks: a background delete removes the owner at once, a foreground delete
leaves it with the `foregroundDeletion` finalizer, an orphan delete with `orphan`. This
controller watches every namespaced kind that can own or be owned (pods, ReplicaSets,
Deployments) and, level-triggered per object (`<resource>/<namespace>/<name>` keys):
deletes dependents whose owners are all gone (an owner recreated under the same name has a new
uid and does not count); for a foreground-deleting owner deletes its dependents (foreground
too, so the deletion propagates) and removes the finalizer once no dependent with
`blockOwnerDeletion` remains; for an orphaning owner strips its ownerReference from every
dependent, then removes the finalizer. Unlike Kubernetes' collector it keeps no graph of its own:
the informers' owner-uid index answers "who depends on this uid".
"""

from __future__ import annotations

import functools
import logging

from minikube_py.client.api import ApiObject, Client
from minikube_py.api import errors
from minikube_py.api.meta import OwnerReference
from minikube_py.api.resources import resource_for_kind
from minikube_py.client.controller import Controller
from minikube_py.client.informer import Informer, SharedInformers, shared_informers, cache_key
from minikube_py.clock import Clock

log = logging.getLogger(__name__)

COMPONENT = "garbage-collector-controller"
FOREGROUND_FINALIZER = "foregroundDeletion"
ORPHAN_FINALIZER = "orphan"
WATCHED_RESOURCES = ("deployments", "replicasets", "pods", "cronjobs", "jobs", "controllerrevisions", "statefulsets", "daemonsets", "persistentvolumeclaims")

# What an ownerReference points at, as far as the collector is concerned.
OWNER_ABSENT, OWNER_PRESENT, OWNER_DELETING = "absent", "present", "deleting"


class GarbageCollector(Controller[str]):
    """Cascading deletion for `WATCHED_RESOURCES`; keys are `<resource>/<namespace>/<name>`."""

    def __init__(
        self,
        client: Client,
        clock: Clock | None = None,
        informers: SharedInformers | None = None,
        workers: int = 2,
        resources: tuple[str, ...] = WATCHED_RESOURCES,
    ):
        super().__init__(COMPONENT, clock, workers)
        self.client = client
        informers = informers or shared_informers(client)
        self.caches: dict[str, Informer] = {}
        for resource in resources:
            self.caches[resource] = self.watch(
                informers.informer(resource),
                on_add=functools.partial(self._object_added, resource),
                on_update=functools.partial(self._object_updated, resource),
                on_delete=functools.partial(self._object_deleted, resource),
            )

    # -- event handlers -------------------------------------------------------------------------

    def _object_added(self, resource: str, obj: ApiObject) -> None:
        self.enqueue(f"{resource}/{cache_key(obj)}")
        self._enqueue_deleting_owners(obj)

    def _object_updated(self, resource: str, old: ApiObject, new: ApiObject) -> None:
        before, after = old.metadata, new.metadata
        if (
            before.owner_references != after.owner_references
            or before.deletion_timestamp != after.deletion_timestamp
            or before.finalizers != after.finalizers
            or before.uid != after.uid
        ):
            self.enqueue(f"{resource}/{cache_key(new)}")
            self._enqueue_deleting_owners(old)
            self._enqueue_deleting_owners(new)

    def _object_deleted(self, resource: str, obj: ApiObject) -> None:
        # Its dependents may now be dangling, and an owner may have been waiting for it.
        for dependent_resource, dependent in self._dependents(obj):
            self.enqueue(f"{dependent_resource}/{cache_key(dependent)}")
        self._enqueue_deleting_owners(obj)

    def _enqueue_deleting_owners(self, obj: ApiObject) -> None:
        for reference in obj.metadata.owner_references or ():
            found = self._cached_owner(reference, obj.metadata.namespace)
            if found is not None and found[1].metadata.deletion_timestamp is not None:
                self.enqueue(f"{found[0]}/{cache_key(found[1])}")

    # -- lookups ------------------------------------------------------------------------------

    def _dependents(self, owner: ApiObject) -> list[tuple[str, ApiObject]]:
        """(resource, object) for every cached object with an ownerReference to owner's uid.

        A namespaced owner only owns objects in its own namespace; other references to its uid
        are invalid and ignored, as in Kubernetes.
        """
        namespace = owner.metadata.namespace
        found = []
        for resource, cache in self.caches.items():
            for dependent in cache.by_owner_uid(owner.metadata.uid or ""):
                if not namespace or dependent.metadata.namespace == namespace:
                    found.append((resource, dependent))
        return found

    def _cached_owner(self, reference: OwnerReference, namespace: str | None) -> tuple[str, ApiObject] | None:
        try:
            info = resource_for_kind(reference.api_version, reference.kind)
        except KeyError:
            return None
        cache = self.caches.get(info.plural)
        if cache is None:
            return None
        owner = cache.get(f"{namespace}/{reference.name}" if info.namespaced else reference.name)
        if owner is None or owner.metadata.uid != reference.uid:
            return None
        return info.plural, owner

    def _owner_state(self, reference: OwnerReference, namespace: str | None) -> str:
        """Whether the owner a reference names exists (same uid), is being deleted, or is gone.

        The cache answers when it has the owner; otherwise a fresh GET decides, because a cache
        that has not caught up yet must never be the reason to delete something.
        """
        cached = self._cached_owner(reference, namespace)
        if cached is not None:
            return OWNER_DELETING if cached[1].metadata.deletion_timestamp else OWNER_PRESENT
        try:
            info = resource_for_kind(reference.api_version, reference.kind)
        except KeyError:
            # A kind this server does not serve cannot be checked: never collect because of it.
            return OWNER_PRESENT
        try:
            owner = self.client.get(info.plural, reference.name, namespace=namespace if info.namespaced else None)
        except errors.NotFound:
            return OWNER_ABSENT
        if owner.metadata.uid != reference.uid:
            return OWNER_ABSENT
        return OWNER_DELETING if owner.metadata.deletion_timestamp else OWNER_PRESENT

    # -- sync -------------------------------------------------------------------------------

    def sync(self, key: str) -> float | None:
        resource, _, cache_key = key.partition("/")
        cache = self.caches.get(resource)
        obj = cache.get(cache_key) if cache is not None else None
        if obj is None:
            return None
        metadata = obj.metadata
        if metadata.deletion_timestamp is not None:
            finalizers = metadata.finalizers or []
            if ORPHAN_FINALIZER in finalizers:
                self._orphan_dependents(obj)
                self._remove_finalizer(resource, obj, ORPHAN_FINALIZER)
            elif FOREGROUND_FINALIZER in finalizers:
                self._delete_dependents_first(resource, obj)
            return None
        self._collect_if_owners_are_gone(resource, obj)
        return None

    def _orphan_dependents(self, owner: ApiObject) -> None:
        uid = owner.metadata.uid
        for resource, dependent in self._dependents(owner):
            self._set_owner_references(
                resource, dependent, [r for r in dependent.metadata.owner_references or [] if r.uid != uid]
            )

    def _delete_dependents_first(self, resource: str, owner: ApiObject) -> None:
        uid = owner.metadata.uid
        blocking = False
        for dependent_resource, dependent in self._dependents(owner):
            references = dependent.metadata.owner_references or []
            if any(r.block_owner_deletion for r in references if r.uid == uid):
                blocking = True
            if dependent.metadata.deletion_timestamp is not None:
                continue
            others = [r for r in references if r.uid != uid]
            namespace = dependent.metadata.namespace
            if any(self._owner_state(r, namespace) == OWNER_PRESENT for r in others):
                # Another owner still stands: only this owner's claim on it goes.
                self._set_owner_references(dependent_resource, dependent, others)
                continue
            self._delete(dependent_resource, dependent, "Foreground")
        if not blocking:
            self._remove_finalizer(resource, owner, FOREGROUND_FINALIZER)
        # Otherwise each blocking dependent's disappearance enqueues this owner again.

    def _collect_if_owners_are_gone(self, resource: str, obj: ApiObject) -> None:
        references = obj.metadata.owner_references or []
        if not references:
            return
        namespace = obj.metadata.namespace
        absent = [r for r in references if self._owner_state(r, namespace) == OWNER_ABSENT]
        if not absent:
            return
        if len(absent) < len(references):
            # Some owners remain: only drop the references to the ones that are gone.
            absent_uids = {r.uid for r in absent}
            self._set_owner_references(resource, obj, [r for r in references if r.uid not in absent_uids])
            return
        finalizers = obj.metadata.finalizers or []
        if ORPHAN_FINALIZER in finalizers:
            policy = "Orphan"
        elif FOREGROUND_FINALIZER in finalizers:
            policy = "Foreground"
        else:
            policy = "Background"
        log.info("%s: deleting %s %s: all its owners are gone", self.name, resource, cache_key(obj))
        self._delete(resource, obj, policy)

    # -- writes -------------------------------------------------------------------------------

    def _delete(self, resource: str, obj: ApiObject, propagation_policy: str) -> None:
        try:
            self.client.delete(resource, obj.metadata.name or "", namespace=obj.metadata.namespace,
                               propagation_policy=propagation_policy)
        except errors.NotFound:
            pass

    def _set_owner_references(self, resource: str, obj: ApiObject, references: list[OwnerReference]) -> None:
        # The resourceVersion makes this a compare-and-swap: a concurrent ownership change
        # fails with Conflict and the sync retries against the fresh object.
        patch = {"metadata": {
            "ownerReferences": [reference.to_dict() for reference in references] or None,
            "resourceVersion": obj.metadata.resource_version,
        }}
        try:
            self.client.patch(resource, obj.metadata.name or "", patch, namespace=obj.metadata.namespace)
        except errors.NotFound:
            pass

    def _remove_finalizer(self, resource: str, obj: ApiObject, finalizer: str) -> None:
        remaining = [name for name in obj.metadata.finalizers or [] if name != finalizer]
        patch = {"metadata": {"finalizers": remaining or None, "resourceVersion": obj.metadata.resource_version}}
        try:
            self.client.patch(resource, obj.metadata.name or "", patch, namespace=obj.metadata.namespace)
        except errors.NotFound:
            pass

