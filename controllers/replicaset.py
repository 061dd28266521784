"""The ReplicaSet controller: keeps `spec.replicas` active pods matching a ReplicaSet's selector.

Follows k/k `pkg/controller/replicaset/replica_set.go` (semantics.md 2.1-2.5). Event handlers
only compute which ReplicaSet a pod event concerns and enqueue its `namespace/name` key. `sync`
re-reads everything from the shared caches: claims pods (adopting matching orphans, releasing
pods whose labels no longer match), creates or deletes pods to reach `spec.replicas` (creates in
slow-start batches, deletes in ranking order, both guarded by expectations so a lagging cache
cannot cause a double create), then writes status. Failed and Succeeded pods are not active: they
do not count and are replaced, but, as in Kubernetes, they are left for their owner to remove.
"""

from __future__ import annotations

import logging

from minikube_py.client.api import Client
from minikube_py.api.apps import ReplicaSet, ReplicaSetCondition, ReplicaSetStatus
from minikube_py.api.core import Pod
from minikube_py.api.meta import OwnerReference
from minikube_py.api.names import is_dns1123_subdomain
from minikube_py.api.selectors import Selector
from minikube_py.api.times import format_time
from minikube_py.client.controller import Controller
from minikube_py.client.events import NORMAL, WARNING, EventRecorder
from minikube_py.client.informer import SharedInformers, shared_informers, cache_key, split_cache_key
from minikube_py.clock import Clock
from controllers.common import (
    BURST_REPLICAS,
    SLOW_START_INITIAL_BATCH_SIZE,
    ControllerExpectations,
    ControllerRefManager,
    error_text,
    get_controller_of,
    is_controlled_by,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    new_controller_ref,
    pod_keys,
    pods_to_delete,
    pod_deleter,
    run_in_parallel,
    slow_start_batch,
)

log = logging.getLogger(__name__)

COMPONENT = "replicaset-controller"
REPLICA_FAILURE = "ReplicaFailure"


class ReplicaSetController(Controller[str]):
    """Reconciles ReplicaSets; keys are `namespace/name`."""

    # A sync reads every pod of the namespace: see Controller.pace_slow_syncs.
    pace_slow_syncs = True

    def __init__(
        self,
        client: Client,
        clock: Clock | None = None,
        informers: SharedInformers | None = None,
        recorder: EventRecorder | None = None,
        workers: int = 2,
        burst_replicas: int = BURST_REPLICAS,
    ):
        super().__init__(COMPONENT, clock, workers)
        self.client = client
        informers = informers or shared_informers(client)
        self.recorder = recorder or EventRecorder(client, COMPONENT, self.clock)
        self.expectations = ControllerExpectations(self.clock)
        self.burst_replicas = burst_replicas
        self._selectors: dict[str, Selector] = {}
        self.replica_sets = self.watch(
            informers.informer("replicasets"),
            on_add=self._replica_set_added,
            on_update=self._replica_set_updated,
            on_delete=self._replica_set_deleted,
        )
        self.pods = self.watch(
            informers.informer("pods"),
            on_add=self._pod_added,
            on_update=self._pod_updated,
            on_delete=self._pod_deleted,
        )

    # -- event handlers: compute the ReplicaSet key and enqueue it, nothing else ----------------

    def _replica_set_added(self, replica_set: ReplicaSet) -> None:
        self.enqueue(cache_key(replica_set))

    def _replica_set_updated(self, old: ReplicaSet, new: ReplicaSet) -> None:
        if old.metadata.uid != new.metadata.uid:
            self._replica_set_deleted(old)
        self.enqueue(cache_key(new))

    def _replica_set_deleted(self, replica_set: ReplicaSet) -> None:
        key = cache_key(replica_set)
        self.expectations.delete(key)
        self._selectors.pop(replica_set.metadata.uid or "", None)
        self.enqueue(key)

    def _pod_added(self, pod: Pod) -> None:
        if pod.metadata.deletion_timestamp is not None:
            # Seen for the first time already being deleted (e.g. after a re-list): a delete.
            self._pod_deleted(pod)
            return
        reference = get_controller_of(pod)
        if reference is not None:
            replica_set = self._resolve_controller_ref(pod.metadata.namespace, reference)
            if replica_set is not None:
                key = cache_key(replica_set)
                self.expectations.creation_observed(key)
                self.enqueue(key)
            return
        for replica_set in self._replica_sets_selecting(pod):
            self.enqueue(cache_key(replica_set))

    def _pod_updated(self, old: Pod, new: Pod) -> None:
        if old.metadata.resource_version == new.metadata.resource_version:
            return
        labels_changed = (old.metadata.labels or {}) != (new.metadata.labels or {})
        if new.metadata.deletion_timestamp is not None:
            # A pod being deleted no longer counts: treat it as deleted now, so its replacement
            # is created without waiting for the node agent to finish stopping it.
            self._pod_deleted(new)
            if labels_changed:
                self._pod_deleted(old)
            return
        new_reference, old_reference = get_controller_of(new), get_controller_of(old)
        reference_changed = new_reference != old_reference
        if reference_changed and old_reference is not None:
            previous_owner = self._resolve_controller_ref(old.metadata.namespace, old_reference)
            if previous_owner is not None:
                self.enqueue(cache_key(previous_owner))
        if new_reference is not None:
            replica_set = self._resolve_controller_ref(new.metadata.namespace, new_reference)
            if replica_set is None:
                return
            key = cache_key(replica_set)
            self.enqueue(key)
            min_ready_seconds = replica_set.spec.min_ready_seconds
            if min_ready_seconds > 0 and not is_pod_ready(old) and is_pod_ready(new):
                # Look again once the pod can count as available; the extra second absorbs the
                # sub-second difference between our clock and the Ready condition's timestamp.
                self.enqueue_after(key, min_ready_seconds + 1)
            return
        if labels_changed or reference_changed:
            for replica_set in self._replica_sets_selecting(new):
                self.enqueue(cache_key(replica_set))

    def _pod_deleted(self, pod: Pod) -> None:
        reference = get_controller_of(pod)
        if reference is None:
            return
        replica_set = self._resolve_controller_ref(pod.metadata.namespace, reference)
        if replica_set is None:
            return
        key = cache_key(replica_set)
        self.expectations.deletion_observed(key, cache_key(pod))
        self.enqueue(key)

    def _resolve_controller_ref(self, namespace: str | None, reference: OwnerReference) -> ReplicaSet | None:
        """The cached ReplicaSet a controllerRef points at, if it is one and the uid matches."""
        if reference.kind != "ReplicaSet":
            return None
        replica_set = self.replica_sets.get(f"{namespace}/{reference.name}")
        if replica_set is None or replica_set.metadata.uid != reference.uid:
            return None
        return replica_set

    def _selector(self, replica_set: ReplicaSet) -> Selector:
        # apps/v1 selectors are immutable, so one parse per ReplicaSet uid is enough.
        uid = replica_set.metadata.uid or ""
        selector = self._selectors.get(uid)
        if selector is None:
            selector = self._selectors[uid] = Selector.from_label_selector(replica_set.spec.selector)
        return selector

    def _replica_sets_selecting(self, pod: Pod) -> list[ReplicaSet]:
        labels = pod.metadata.labels or {}
        return [
            replica_set
            for replica_set in self.replica_sets.list(namespace=pod.metadata.namespace)
            if self._selector(replica_set).matches(labels)
        ]

    # -- sync -------------------------------------------------------------------------------

    def sync(self, key: str) -> float | None:
        namespace, name = split_cache_key(key)
        replica_set = self.replica_sets.get(key)
        if replica_set is None:
            log.debug("replicaset %s has been deleted", key)
            self.expectations.delete(key)
            return None
        needs_sync = self.expectations.satisfied(key)
        selector = self._selector(replica_set)
        active_pods = [pod for pod in self.pods.list(namespace=namespace) if is_pod_active(pod)]
        owned_pods = ControllerRefManager(self.client, replica_set, "replicasets", selector).claim("pods", active_pods)

        manage_error: Exception | None = None
        if needs_sync and replica_set.metadata.deletion_timestamp is None:
            try:
                self._manage_replicas(key, owned_pods, replica_set)
            except Exception as error:
                manage_error = error

        status = self._write_status(replica_set, owned_pods, manage_error)
        if manage_error is not None:
            raise manage_error
        min_ready_seconds = replica_set.spec.min_ready_seconds
        wanted = replica_set.spec.replicas
        if min_ready_seconds > 0 and status.ready_replicas == wanted and status.available_replicas != wanted:
            return float(min_ready_seconds)
        return None

    def _manage_replicas(self, key: str, owned_pods: list[Pod], replica_set: ReplicaSet) -> None:
        difference = len(owned_pods) - replica_set.spec.replicas
        with self.unpaced():
            if difference < 0:
                self._create_pods(key, replica_set, min(-difference, self.burst_replicas))
            elif difference > 0:
                self._delete_pods(key, replica_set, owned_pods, min(difference, self.burst_replicas))

    def _create_pods(self, key: str, replica_set: ReplicaSet, count: int) -> None:
        # Expect every create before issuing any: the informer may deliver a pod's ADDED event
        # before its create call even returns here.
        self.expectations.expect_creations(key, count)
        pod = self._pod_from_template(replica_set)

        def create_one() -> None:
            try:
                created = self.client.create(pod)
            except Exception as error:
                self.recorder.event(replica_set, WARNING, "FailedCreate", f"Error creating: {error_text(error)}")
                raise
            self.recorder.event(replica_set, NORMAL, "SuccessfulCreate", f"Created pod: {created.metadata.name}")

        successes, error = slow_start_batch(count, SLOW_START_INITIAL_BATCH_SIZE, create_one)
        # Creations skipped after a failed batch (and the failures) will never be observed.
        for _ in range(count - successes):
            self.expectations.creation_observed(key)
        if error is not None:
            raise error

    def _pod_from_template(self, replica_set: ReplicaSet) -> Pod:
        template = replica_set.spec.template
        name = replica_set.metadata.name
        # k8s getPodsPrefix: `<rs>-` unless that is not a valid name prefix.
        prefix = f"{name}-" if is_dns1123_subdomain(f"{name}a") else name
        metadata = {
            "generateName": prefix,
            "namespace": replica_set.metadata.namespace,
            "labels": dict(template.metadata.labels or {}) or None,
            "annotations": dict(template.metadata.annotations or {}) or None,
            "finalizers": list(template.metadata.finalizers or []) or None,
            "ownerReferences": [new_controller_ref(replica_set).to_dict()],
        }
        return Pod.model_validate({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {field: value for field, value in metadata.items() if value is not None},
            "spec": template.spec.to_dict(),
        })

    def _delete_pods(self, key: str, replica_set: ReplicaSet, owned_pods: list[Pod], count: int) -> None:
        victims = pods_to_delete(owned_pods, count, self._related_pods(replica_set), self.clock.now())
        # Expect exactly these pods' deletions, tracked by key so each is counted once.
        self.expectations.expect_deletions(key, pod_keys(victims))

        failures = run_in_parallel([pod_deleter(self.client, self.expectations, self.recorder, key, replica_set, pod)
                                    for pod in victims])
        if failures:
            raise failures[0]

    def _related_pods(self, replica_set: ReplicaSet) -> list[Pod]:
        """Pods of every ReplicaSet controlled by the same Deployment (else this one's own),
        for the same-node rank in the deletion order."""
        owners = [replica_set]
        reference = get_controller_of(replica_set)
        if reference is not None and reference.kind == "Deployment":
            siblings = [
                sibling
                for sibling in self.replica_sets.by_owner_uid(reference.uid)
                if (get_controller_of(sibling) or reference).uid == reference.uid
            ]
            owners = siblings or owners
        related: list[Pod] = []
        for owner in owners:
            related.extend(pod for pod in self.pods.by_owner_uid(owner.metadata.uid or "") if is_controlled_by(pod, owner))
        return related

    # -- status -----------------------------------------------------------------------------

    def _calculate_status(self, replica_set: ReplicaSet, owned_pods: list[Pod], manage_error: Exception | None) -> ReplicaSetStatus:
        template_labels = replica_set.spec.template.metadata.labels or {}
        now = self.clock.now()
        fully_labeled = ready = available = 0
        for pod in owned_pods:
            labels = pod.metadata.labels or {}
            if all(labels.get(label) == value for label, value in template_labels.items()):
                fully_labeled += 1
            if is_pod_ready(pod):
                ready += 1
                if is_pod_available(pod, replica_set.spec.min_ready_seconds, now):
                    available += 1
        conditions = list(replica_set.status.conditions or [])
        failure = replica_set.status.condition(REPLICA_FAILURE)
        if manage_error is not None and failure is None:
            difference = len(owned_pods) - replica_set.spec.replicas
            reason = "FailedCreate" if difference < 0 else "FailedDelete" if difference > 0 else None
            conditions.append(ReplicaSetCondition(
                type=REPLICA_FAILURE,
                status="True",
                last_transition_time=format_time(now),
                reason=reason,
                message=error_text(manage_error),
            ))
        elif manage_error is None and failure is not None:
            conditions = [condition for condition in conditions if condition.type != REPLICA_FAILURE]
        return ReplicaSetStatus(
            replicas=len(owned_pods),
            fully_labeled_replicas=fully_labeled,
            ready_replicas=ready,
            available_replicas=available,
            observed_generation=replica_set.status.observed_generation,
            conditions=conditions or None,
        )

    def _write_status(self, replica_set: ReplicaSet, owned_pods: list[Pod], manage_error: Exception | None) -> ReplicaSetStatus:
        status = self._calculate_status(replica_set, owned_pods, manage_error)
        generation = replica_set.metadata.generation
        if status == replica_set.status and replica_set.status.observed_generation == generation:
            return status
        status.observed_generation = generation
        wire = status.to_dict()
        # A merge patch removes a field only when told to with null.
        wire.setdefault("conditions", None)
        self.client.patch_status(
            "replicasets", replica_set.metadata.name or "", {"status": wire}, namespace=replica_set.metadata.namespace
        )
        return status
