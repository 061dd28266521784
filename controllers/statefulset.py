"""The StatefulSet controller: pods with stable names, hostnames and claims, made and updated in order.

Follows k/k `pkg/controller/statefulset` (stateful_set_control.go, stateful_set_utils.go).
A StatefulSet `web` with 3 replicas owns pods `web-0`, `web-1`, `web-2` (from `ordinals.start`),
each with `hostname: web-N`, `subdomain: <serviceName>` (so a headless Service of that name gives
it the DNS name `web-N.<service>.<namespace>.svc.cluster.local`), the labels
`statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index`, and, for each
volumeClaimTemplate `data`, its own claim `data-web-N`, made before the pod and never deleted
with it, so a replaced pod finds its data again.

`sync(key)`, level-triggered, one step at a time like Kubernetes':
1. The revisions: the template is recorded as a ControllerRevision (`client/history.py`); the
   current revision (what the pods run) and the update revision (what the spec says) come from
   the status and the history; old revisions beyond `revisionHistoryLimit` are pruned.
2. Each ordinal below `replicas` must have a healthy pod. A missing pod is created (current
   revision below the partition, update revision above); a Failed or Succeeded one is deleted so
   that it is created again. With `OrderedReady` it stops at the first pod not Running and Ready
   (or being deleted): `web-1` is only created once `web-0` is Ready. `Parallel` does not wait.
3. Pods of ordinals at or above `replicas` are deleted from the highest down; with
   `OrderedReady` one at a time, and only when every other pod is healthy.
4. RollingUpdate: from the highest ordinal down to `partition`, a pod not at the update
   revision is deleted (it comes back at the update revision in step 2), at most
   `maxUnavailable` (default 1) unavailable at once; OnDelete leaves pods until a user deletes them.
5. Status: replicas, ready/available/current/updated counts, the two revisions; a rollout whose
   pods all run the update revision and are ready makes it the current revision.

Before all that, as every workload controller does (`ControllerRefManager`, controllers/common.py),
the set claims its objects: an orphan pod the selector matches whose name is one of the set's
ordinals (`web-N`) is adopted, an owned pod that no longer matches (labels changed, or renamed
out of the set) is released, and orphan ControllerRevisions the selector matches are adopted.
Adoption first re-reads the set from the API and refuses when it is gone or being deleted.

`persistentVolumeClaimRetentionPolicy` is carried out through controller references on the claims,
as Kubernetes does (`updateClaimOwnerRefForSetAndPod`): `whenDeleted: Delete` makes the StatefulSet
the claims' controller, `whenScaled: Delete` makes a condemned pod the controller of its claims
instead, and the garbage collector deletes a claim once its owner is gone. A claim another
controller owns, or whose reference names an earlier set or pod of the same name, is left alone.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from minikube_py.api import errors
from minikube_py.api.apps import ControllerRevision, StatefulSet, StatefulSetStatus
from minikube_py.api.core import Pod, PodTemplateSpec, Volume
from minikube_py.api.meta import OwnerReference
from minikube_py.api.selectors import Selector
from minikube_py.api.storage import PersistentVolumeClaim
from minikube_py.client import history
from minikube_py.client.api import Client
from minikube_py.client.controller import Controller
from minikube_py.client.events import NORMAL, WARNING, EventRecorder
from minikube_py.client.informer import SharedInformers, cache_key, shared_informers, split_cache_key
from minikube_py.clock import Clock
from controllers.common import (
    ControllerRefManager,
    error_text,
    get_controller_of,
    is_pod_active,
    is_pod_available,
    is_pod_ready,
    new_controller_ref,
)

log = logging.getLogger(__name__)

COMPONENT = "statefulset-controller"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"  # apps.StatefulSetRevisionLabel: the revision's name
_ORDINAL = re.compile(r"^(.*)-([0-9]+)$")


def pod_name(set_name: str, ordinal: int) -> str:
    return f"{set_name}-{ordinal}"


def claim_name(template_name: str, set_name: str, ordinal: int) -> str:
    """`data-web-0`: the claim of template `data` for pod `web-0`."""
    return f"{template_name}-{pod_name(set_name, ordinal)}"


def ordinal_of(pod: Pod, set_name: str) -> int | None:
    """The ordinal in the pod's name, None when the name is not `<set>-<number>`."""
    match = _ORDINAL.match(pod.metadata.name or "")
    if match is None or match.group(1) != set_name:
        return None
    return int(match.group(2))


def start_ordinal(stateful_set: StatefulSet) -> int:
    return stateful_set.spec.ordinals.start if stateful_set.spec.ordinals is not None else 0


def revision_of(pod: Pod) -> str:
    return (pod.metadata.labels or {}).get(REVISION_LABEL, "")


def is_terminating(pod: Pod) -> bool:
    return pod.metadata.deletion_timestamp is not None


def is_running_and_ready(pod: Pod) -> bool:
    return pod.status.phase == "Running" and is_pod_ready(pod)


def is_healthy(pod: Pod) -> bool:
    return is_running_and_ready(pod) and not is_terminating(pod)


def max_unavailable(stateful_set: StatefulSet) -> int:
    """`rollingUpdate.maxUnavailable` as a number of pods (percent of replicas rounded down, at least 1)."""
    rolling = stateful_set.spec.update_strategy.rolling_update
    value = rolling.max_unavailable if rolling is not None else None
    if value is None:
        return 1
    if isinstance(value, str):
        # 40% of 5 replicas: floor(2.0) = 2; 10% of 3: floor(0.3) = 0, raised to 1.
        return max(1, math.floor(int(value.rstrip("%")) * stateful_set.spec.replicas / 100))
    return max(1, value)


def partition(stateful_set: StatefulSet) -> int:
    rolling = stateful_set.spec.update_strategy.rolling_update
    return (rolling.partition or 0) if rolling is not None else 0


def _references(owner_reference: OwnerReference, obj: Any) -> bool:
    """The reference names `obj` by apiVersion, kind and name, whatever its uid (`matchesRef`)."""
    return (owner_reference.api_version, owner_reference.kind, owner_reference.name) == \
        (obj.api_version, obj.kind, obj.metadata.name)


def claim_owner_references(claim: PersistentVolumeClaim, stateful_set: StatefulSet, pod: Pod,
                           scaled_down: bool) -> list[OwnerReference] | None:
    """The claim's ownerReferences under the set's retention policy, or None when they need no
    change (`isClaimOwnerUpToDate` + `updateClaimOwnerRefForSetAndPod`).

    Retain/Retain: no reference from us. whenDeleted Delete: the set is the controller.
    whenScaled Delete: a scaled-down pod (`scaled_down`) is the controller instead of the set.
    A reference naming the set or pod with another uid (left by an earlier object of that name)
    means the claim is not ours to touch; a claim with another controller loses our references
    and gets none (the policy may have changed, so ours are always allowed to go).
    """
    references = list(claim.metadata.owner_references or [])
    for owner in (stateful_set, pod):
        stale = next((reference for reference in references if _references(reference, owner)), None)
        if stale is not None and stale.uid != owner.metadata.uid:
            return None
    ours = {stateful_set.metadata.uid, pod.metadata.uid}
    policy = stateful_set.spec.persistent_volume_claim_retention_policy
    retain_all = policy.when_scaled != "Delete" and policy.when_deleted != "Delete"
    foreign_controller = not retain_all and any(
        reference.controller and reference.uid not in ours for reference in references)
    wanted = [reference for reference in references if reference.uid not in ours]
    if not foreign_controller:
        if policy.when_scaled == "Delete" and scaled_down:
            wanted.append(new_controller_ref(pod))
        elif policy.when_deleted == "Delete":
            wanted.append(new_controller_ref(stateful_set))

    def as_set(items: list[OwnerReference]) -> set[tuple[Any, ...]]:
        return {tuple(sorted(item.to_dict().items())) for item in items}
    return None if as_set(wanted) == as_set(references) else wanted


def new_revision(stateful_set: StatefulSet, revision: int, collision_count: int) -> ControllerRevision:
    return history.new_controller_revision(stateful_set, stateful_set.spec.template.metadata.labels,
                                           history.template_patch(stateful_set.spec.template), revision,
                                           collision_count)


def new_pod(stateful_set: StatefulSet, template: PodTemplateSpec, revision_name: str, ordinal: int) -> Pod:
    """The pod of one ordinal from one revision's template: identity, storage and owner."""
    name = pod_name(stateful_set.metadata.name or "", ordinal)
    wire: dict[str, Any] = template.to_dict()
    metadata = wire.setdefault("metadata", {})
    metadata.update(name=name, namespace=stateful_set.metadata.namespace)
    metadata["labels"] = {**(metadata.get("labels") or {}), POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal),
                          REVISION_LABEL: revision_name}
    metadata["ownerReferences"] = [new_controller_ref(stateful_set).to_dict()]
    pod = Pod.model_validate(wire)
    pod.spec.hostname = name
    if stateful_set.spec.service_name:
        pod.spec.subdomain = stateful_set.spec.service_name
    claims = {template.metadata.name: claim_name(template.metadata.name or "", stateful_set.metadata.name or "",
                                                 ordinal)
              for template in stateful_set.spec.volume_claim_templates or []}
    volumes = [volume for volume in pod.spec.volumes or [] if volume.name not in claims]
    for volume_name, claim in claims.items():
        volumes.append(Volume.model_validate({"name": volume_name, "persistentVolumeClaim": {"claimName": claim}}))
    pod.spec.volumes = volumes or None
    return pod


class StatefulSetController(Controller[str]):
    """Reconciles StatefulSets; keys are `namespace/name`."""

    def __init__(self, client: Client, clock: Clock | None = None, informers: SharedInformers | None = None,
                 recorder: EventRecorder | None = None, workers: int = 2):
        super().__init__(COMPONENT, clock, workers)
        self.client = client
        informers = informers or shared_informers(client)
        self.recorder = recorder or EventRecorder(client, COMPONENT, self.clock)
        self.sets = self.watch(informers.informer("statefulsets"),
                               on_add=lambda item: self.enqueue(cache_key(item)),
                               on_update=lambda old, new: self.enqueue(cache_key(new)),
                               on_delete=lambda item: self.enqueue(cache_key(item)))
        self.pods = self.watch(informers.informer("pods"), on_add=self._pod_changed,
                               on_update=self._pod_updated, on_delete=self._pod_changed)
        self.revisions = self.watch(informers.informer("controllerrevisions"))
        self.claims = self.watch(informers.informer("persistentvolumeclaims"), on_update=self._claim_changed,
                                 on_delete=self._claim_changed)

    # -- event handlers -----------------------------------------------------------------------

    def _owner_key(self, obj: Any) -> str | None:
        reference = get_controller_of(obj)
        if reference is None or reference.kind != "StatefulSet":
            return None
        key = f"{obj.metadata.namespace}/{reference.name}"
        owner = self.sets.get(key)
        return key if owner is not None and owner.metadata.uid == reference.uid else None

    def _selecting(self, pod: Pod) -> list[StatefulSet]:
        """The sets whose selector matches an orphan pod: candidates to adopt it (`getPodStatefulSets`)."""
        labels = pod.metadata.labels or {}
        return [stateful_set for stateful_set in self.sets.list(namespace=pod.metadata.namespace)
                if Selector.from_label_selector(stateful_set.spec.selector).matches(labels)]

    def _pod_changed(self, pod: Pod) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.enqueue(key)
        elif get_controller_of(pod) is None and pod.metadata.deletion_timestamp is None:
            for stateful_set in self._selecting(pod):
                self.enqueue(cache_key(stateful_set))

    def _pod_updated(self, old: Pod, new: Pod) -> None:
        self._pod_changed(new)
        old_key = self._owner_key(old)
        key = self._owner_key(new)
        if old_key is not None and old_key != key:
            self.enqueue(old_key)  # released, or adopted by another controller
        if key is None:
            return
        owner = self.sets.get(key)
        if owner is not None and owner.spec.min_ready_seconds > 0 and not is_pod_ready(old) and is_pod_ready(new):
            self.enqueue_after(key, owner.spec.min_ready_seconds + 1)

    def _claim_changed(self, *claims: PersistentVolumeClaim) -> None:
        # A claim that was being deleted is gone: its pod can be made again.
        claim = claims[-1]
        for stateful_set in self.sets.list(namespace=claim.metadata.namespace):
            self.enqueue(cache_key(stateful_set))

    # -- sync ---------------------------------------------------------------------------------

    def sync(self, key: str) -> float | None:
        stateful_set: StatefulSet | None = self.sets.get(key)
        if stateful_set is None or stateful_set.metadata.deletion_timestamp is not None:
            return None
        namespace, _ = split_cache_key(key)
        selector = Selector.from_label_selector(stateful_set.spec.selector)
        claims = ControllerRefManager(self.client, stateful_set, "statefulsets", selector)
        revisions = self._adopt_orphan_revisions(stateful_set, claims, self.revisions.list(namespace=namespace))
        set_name = stateful_set.metadata.name or ""
        pods = claims.claim("pods", self.pods.list(namespace=namespace),
                            member=lambda pod: ordinal_of(pod, set_name) is not None)
        revisions = history.owned_revisions(stateful_set, revisions)
        current, update, collision_count = self._revisions(stateful_set, revisions)
        revisions = history.owned_revisions(stateful_set, self.revisions.list(namespace=namespace)) or [update]
        status = self._update_pods(stateful_set, pods, current, update)
        status.collision_count = collision_count
        self._write_status(stateful_set, status)
        self._prune_history(stateful_set, revisions, pods, status)
        # minReadySeconds: look again once Ready pods may count as available.
        if stateful_set.spec.min_ready_seconds > 0 and (status.available_replicas or 0) < (status.ready_replicas or 0):
            return float(stateful_set.spec.min_ready_seconds)
        return None

    @staticmethod
    def _adopt_orphan_revisions(stateful_set: StatefulSet, claims: ControllerRefManager,
                                revisions: list[ControllerRevision]) -> list[ControllerRevision]:
        """Adopt the orphan revisions the selector matches (`adoptOrphanRevisions`); the namespace's
        revisions with the adopted ones shown as ours, since the cache has not seen the patch yet."""
        adopted = {revision.metadata.uid for revision in claims.adopt_orphans("controllerrevisions", revisions)}
        if not adopted:
            return revisions
        shown = []
        for revision in revisions:
            if revision.metadata.uid in adopted:
                revision = revision.model_copy(deep=True)
                revision.metadata.owner_references = [*(revision.metadata.owner_references or []),
                                                      new_controller_ref(stateful_set)]
            shown.append(revision)
        return shown

    def _revisions(self, stateful_set: StatefulSet,
                   revisions: list[ControllerRevision]) -> tuple[ControllerRevision, ControllerRevision, int]:
        """(current, update, collisionCount), creating or renumbering the update revision (`getStatefulSetRevisions`)."""
        collision_count = stateful_set.status.collision_count or 0
        update = new_revision(stateful_set, history.next_revision(revisions), collision_count)
        equal = history.find_equal_revisions(revisions, update)
        if equal and equal[-1].metadata.name == revisions[-1].metadata.name:
            update = revisions[-1]
        elif equal:
            # Back to an older template (a rollback): it becomes the newest revision again.
            renumbered = equal[-1].model_copy(deep=True)
            renumbered.revision = update.revision
            update = self.client.replace(renumbered)
        else:
            update, collision_count = history.create_controller_revision(self.client, stateful_set, update,
                                                                         collision_count)
        current = next((revision for revision in revisions
                        if revision.metadata.name == stateful_set.status.current_revision), update)
        return current, update, collision_count

    def _update_pods(self, stateful_set: StatefulSet, pods: list[Pod], current: ControllerRevision,
                     update: ControllerRevision) -> StatefulSetStatus:
        name = stateful_set.metadata.name or ""
        first = start_ordinal(stateful_set)
        replicas = stateful_set.spec.replicas
        monotonic = stateful_set.spec.pod_management_policy != "Parallel"
        slots: dict[int, Pod | None] = dict.fromkeys(range(first, first + replicas))
        condemned: list[Pod] = []
        for pod in pods:
            ordinal = ordinal_of(pod, name)
            if ordinal is None:
                continue
            if ordinal in slots:
                slots[ordinal] = pod
            else:
                condemned.append(pod)
        condemned.sort(key=lambda pod: ordinal_of(pod, name) or 0, reverse=True)
        status = self._status(stateful_set, [pod for pod in pods if ordinal_of(pod, name) is not None],
                              current, update)
        for pod in condemned:
            self._update_claim_owners(stateful_set, pod, condemned=True)

        # Step 2: every ordinal below replicas has a healthy pod, in order.
        for ordinal in sorted(slots):
            slot = slots[ordinal]
            if slot is not None and slot.status.phase in ("Failed", "Succeeded") and not is_terminating(slot):
                self._delete_pod(stateful_set, slot)
                if monotonic:
                    return status
                continue
            if slot is None:
                if not self._create_pod(stateful_set, ordinal, current, update):
                    return status
                if monotonic:
                    return status
                continue
            self._update_claim_owners(stateful_set, slot, condemned=False)
            if monotonic and not is_healthy(slot):
                return status  # wait for this one before the next

        # Step 3: condemned pods, highest ordinal first.
        for pod in condemned:
            if is_terminating(pod):
                if monotonic:
                    return status
                continue
            if monotonic and any(not is_healthy(other) for other in [*slots.values(), *condemned]
                                 if other is not None and other is not pod):
                return status
            self._delete_pod(stateful_set, pod)
            if monotonic:
                return status

        # Step 4: rolling update from the highest ordinal down to the partition.
        if stateful_set.spec.update_strategy.type != "RollingUpdate":
            return status
        minimum = first + partition(stateful_set)
        targets = [slots[ordinal] for ordinal in sorted(slots, reverse=True) if ordinal >= minimum]
        unavailable = sum(1 for target in targets if target is None or not is_healthy(target) or not is_pod_available(
            target, stateful_set.spec.min_ready_seconds, self.clock.now()))
        allowed = max_unavailable(stateful_set) - unavailable
        for target in targets:
            if allowed <= 0:
                break
            if target is not None and revision_of(target) != update.metadata.name and not is_terminating(target):
                self._delete_pod(stateful_set, target)
                allowed -= 1
        return status

    def _create_pod(self, stateful_set: StatefulSet, ordinal: int, current: ControllerRevision,
                    update: ControllerRevision) -> bool:
        """Claims first, then the pod; False when it has to wait (a claim is being deleted) or failed."""
        name = stateful_set.metadata.name or ""
        revision = update
        if stateful_set.spec.update_strategy.type == "RollingUpdate" and \
                ordinal < start_ordinal(stateful_set) + partition(stateful_set):
            revision = current
        pod = new_pod(stateful_set, history.template_of(revision), revision.metadata.name or "", ordinal)
        for template in stateful_set.spec.volume_claim_templates or []:
            claim_key = f"{stateful_set.metadata.namespace}/{claim_name(template.metadata.name or '', name, ordinal)}"
            existing = self.claims.get(claim_key)
            if existing is not None and existing.metadata.deletion_timestamp is not None:
                return False  # the old claim must be gone before the pod may use the name again
            if existing is None and not self._create_claim(stateful_set, template, ordinal, pod):
                return False
        try:
            self.client.create(pod)
        except errors.AlreadyExists:
            return True
        except errors.ApiError as error:
            self.recorder.event(stateful_set, WARNING, "FailedCreate",
                                f"create Pod {pod.metadata.name} in StatefulSet {name} failed error: {error_text(error)}")
            raise
        self.recorder.event(stateful_set, NORMAL, "SuccessfulCreate",
                            f"create Pod {pod.metadata.name} in StatefulSet {name} successful")
        return True

    def _create_claim(self, stateful_set: StatefulSet, template: PersistentVolumeClaim, ordinal: int,
                      pod: Pod) -> bool:
        name = stateful_set.metadata.name or ""
        claim = template.model_copy(deep=True)
        claim.metadata.name = claim_name(template.metadata.name or "", name, ordinal)
        claim.metadata.namespace = stateful_set.metadata.namespace
        selector_labels = stateful_set.spec.selector.match_labels if stateful_set.spec.selector is not None else None
        claim.metadata.labels = {**(claim.metadata.labels or {}), **(selector_labels or {})} or None
        claim.status = type(claim.status)()
        claim.metadata.owner_references = claim_owner_references(claim, stateful_set, pod, scaled_down=False)
        try:
            self.client.create(claim)
        except errors.AlreadyExists:
            return True
        except errors.ApiError as error:
            self.recorder.event(stateful_set, WARNING, "FailedCreate",
                                f"create Claim {claim.metadata.name} for Pod {pod.metadata.name} in StatefulSet "
                                f"{name} failed error: {error_text(error)}")
            raise
        self.recorder.event(stateful_set, NORMAL, "SuccessfulCreate",
                            f"create Claim {claim.metadata.name} Pod {pod.metadata.name} in StatefulSet {name} success")
        return True

    def _update_claim_owners(self, stateful_set: StatefulSet, pod: Pod, condemned: bool) -> None:
        """The retention policy as owner references on the pod's claims (`updateClaimOwnerRefForSetAndPod`)."""
        ordinal = ordinal_of(pod, stateful_set.metadata.name or "")
        if ordinal is None:
            return
        for template in stateful_set.spec.volume_claim_templates or []:
            name = claim_name(template.metadata.name or "", stateful_set.metadata.name or "", ordinal)
            claim = self.claims.get(f"{stateful_set.metadata.namespace}/{name}")
            if claim is None or claim.metadata.deletion_timestamp is not None:
                continue
            references = claim_owner_references(claim, stateful_set, pod, scaled_down=condemned)
            if references is not None:
                patch = {"metadata": {"ownerReferences": [reference.to_dict() for reference in references] or None,
                                      "resourceVersion": claim.metadata.resource_version}}
                try:
                    self.client.patch("persistentvolumeclaims", name, patch, namespace=claim.metadata.namespace)
                except errors.NotFound:
                    pass

    def _delete_pod(self, stateful_set: StatefulSet, pod: Pod) -> None:
        name = stateful_set.metadata.name or ""
        try:
            self.client.delete("pods", pod.metadata.name or "", namespace=pod.metadata.namespace)
        except errors.NotFound:
            return
        except errors.ApiError as error:
            self.recorder.event(stateful_set, WARNING, "FailedDelete",
                                f"delete Pod {pod.metadata.name} in StatefulSet {name} failed error: {error_text(error)}")
            raise
        self.recorder.event(stateful_set, NORMAL, "SuccessfulDelete",
                            f"delete Pod {pod.metadata.name} in StatefulSet {name} successful")

    # -- status -------------------------------------------------------------------------------

    def _status(self, stateful_set: StatefulSet, pods: list[Pod], current: ControllerRevision,
                update: ControllerRevision) -> StatefulSetStatus:
        now = self.clock.now()
        counted = [pod for pod in pods if is_pod_active(pod) or pod.status.phase in ("Succeeded", "Failed")]
        status = StatefulSetStatus(
            observed_generation=stateful_set.metadata.generation,
            replicas=len(counted),
            ready_replicas=sum(1 for pod in counted if is_running_and_ready(pod)),
            available_replicas=sum(1 for pod in counted if is_running_and_ready(pod) and
                                   is_pod_available(pod, stateful_set.spec.min_ready_seconds, now)),
            current_replicas=sum(1 for pod in counted if revision_of(pod) == current.metadata.name),
            updated_replicas=sum(1 for pod in counted if revision_of(pod) == update.metadata.name),
            current_revision=current.metadata.name, update_revision=update.metadata.name)
        # A finished rolling update: every pod runs the update revision and is ready.
        if stateful_set.spec.update_strategy.type == "RollingUpdate" and \
                status.updated_replicas == status.replicas and status.ready_replicas == status.replicas:
            status.current_revision = update.metadata.name
            status.current_replicas = status.updated_replicas
        return status

    def _write_status(self, stateful_set: StatefulSet, status: StatefulSetStatus) -> None:
        if status.to_dict() == stateful_set.status.to_dict():
            return
        try:
            self.client.patch_status("statefulsets", stateful_set.metadata.name or "", {"status": status.to_dict()},
                                     namespace=stateful_set.metadata.namespace)
        except errors.NotFound:
            pass

    def _prune_history(self, stateful_set: StatefulSet, revisions: list[ControllerRevision], pods: list[Pod],
                       status: StatefulSetStatus) -> None:
        live = {revision_of(pod) for pod in pods} | {status.current_revision or "", status.update_revision or ""}
        for revision in history.revisions_to_prune(revisions, live, stateful_set.spec.revision_history_limit):
            try:
                self.client.delete("controllerrevisions", revision.metadata.name or "",
                                   namespace=revision.metadata.namespace)
            except errors.NotFound:
                pass
