"""What the workload controllers share (k/k `pkg/controller/controller_utils.go`).

Pod state tests (active, ready, available after minReadySeconds), controller references and
the claim rules that adopt orphans and release objects that no longer match
(`ControllerRefManager`), expectations that stop a lagging cache from causing double creates,
the scale-down ranking that picks which pods to delete first, and slow-start batching of
creates. Everything reads models (`minikube_py.api`) and takes time as an argument or a Clock,
so it is tested without threads or sleeps.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from minikube_py.api.selectors import Selector
from minikube_py.client.api import ApiObject, Client, ModelT
from minikube_py.api.core import Pod, PodCondition
from minikube_py.api.apps import Deployment, ReplicaSet
from minikube_py.api import errors
from minikube_py.api.meta import OwnerReference
from minikube_py.api.times import parse_time
from minikube_py.client.events import NORMAL, WARNING, EventRecorder
from minikube_py.client.informer import cache_key
from minikube_py.clock import Clock

log = logging.getLogger(__name__)

# k/k controller_utils.go constants.
BURST_REPLICAS = 500
SLOW_START_INITIAL_BATCH_SIZE = 1
EXPECTATIONS_TIMEOUT_SECONDS = 5 * 60
POD_DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"

# Create/delete calls of one slow-start batch run on this many threads at most.
PARALLEL_API_CALLS = 16


# -- pod state ---------------------------------------------------------------------------------


def is_pod_active(pod: Pod) -> bool:
    """Counts towards replicas: not Succeeded or Failed and not being deleted (`IsPodActive`)."""
    return pod.status.phase not in ("Succeeded", "Failed") and pod.metadata.deletion_timestamp is None


def pod_ready_condition(pod: Pod) -> PodCondition | None:
    return pod.status.condition("Ready")


def is_pod_ready(pod: Pod) -> bool:
    condition = pod_ready_condition(pod)
    return condition is not None and condition.status == "True"


def pod_ready_since(pod: Pod) -> float | None:
    """When the pod last turned Ready (the Ready condition's lastTransitionTime), or None."""
    condition = pod_ready_condition(pod)
    if condition is None or condition.status != "True" or not condition.last_transition_time:
        return None
    return parse_time(condition.last_transition_time)


def is_pod_available(pod: Pod, min_ready_seconds: int, now: float) -> bool:
    """Ready for at least `min_ready_seconds` (`podutil.IsPodAvailable`: strictly before now)."""
    if not is_pod_ready(pod):
        return False
    if min_ready_seconds == 0:
        return True
    ready_since = pod_ready_since(pod)
    return ready_since is not None and ready_since + min_ready_seconds < now


def max_container_restarts(pod: Pod) -> int:
    return max((status.restart_count for status in pod.status.container_statuses or ()), default=0)


def pod_deletion_cost(pod: Pod) -> int:
    """The `controller.kubernetes.io/pod-deletion-cost` annotation; 0 when absent or not an int32."""
    text = (pod.metadata.annotations or {}).get(POD_DELETION_COST_ANNOTATION)
    if text is None:
        return 0
    try:
        cost = int(text)
    except ValueError:
        return 0
    return cost if -(2**31) <= cost < 2**31 else 0


# -- controller references --------------------------------------------------------------------


def get_controller_of(obj: ApiObject) -> OwnerReference | None:
    """The ownerReference with `controller: true`, if any."""
    return obj.metadata.controller_reference()


def new_controller_ref(owner: ApiObject) -> OwnerReference:
    """A controllerRef to `owner`, with both flags Kubernetes requires on one."""
    return OwnerReference(
        api_version=owner.api_version,
        kind=owner.kind,
        name=owner.metadata.name or "",
        uid=owner.metadata.uid or "",
        controller=True,
        block_owner_deletion=True,
    )


def is_controlled_by(obj: ApiObject, owner: ApiObject) -> bool:
    reference = get_controller_of(obj)
    return reference is not None and reference.uid == owner.metadata.uid


class ControllerRefManager:
    """Claims objects for one owner (k/k `controller_ref_manager.go`).

    Per candidate: ours and still matching -> keep; ours but no longer matching -> release
    (remove our ownerReference) unless the owner is being deleted (an object being deleted is
    released too, as Kubernetes does); another
    controller's -> ignore; an orphan that matches and is not being deleted -> adopt, but only
    after one fresh GET of the owner (not the cache) shows it still exists with the same uid and
    no deletionTimestamp. Patches carry the object's resourceVersion, so a concurrent change
    makes the claim fail with Conflict and the sync retry, instead of overwriting it.
    """

    def __init__(self, client: Client, owner: ApiObject, owner_resource: str, selector: Selector):
        self.client = client
        self.owner = owner
        self.owner_resource = owner_resource
        self.selector = selector
        self._adoption_check: errors.ApiError | bool | None = None

    def claim(self, resource: str, candidates: Iterable[ModelT],
              member: Callable[[ModelT], bool] | None = None) -> list[ModelT]:
        """The candidates that belong to the owner after adopting and releasing as needed.

        An object matches when the selector selects its labels and, if given, `member` accepts
        it (the StatefulSet's: the name is one of the set's ordinals). Every candidate is handled
        even when one fails; the first error is raised at the end.
        """
        claimed = []
        first_error: Exception | None = None
        for obj in candidates:
            try:
                if self._claim_one(resource, obj, member is None or member(obj)):
                    claimed.append(obj)
            except Exception as error:
                first_error = first_error or error
        if first_error is not None:
            raise first_error
        return claimed

    def adopt_orphans(self, resource: str, candidates: Iterable[ModelT]) -> list[ModelT]:
        """Adopt the candidates without a controller that the selector matches, releasing nothing
        (the StatefulSet's `AdoptOrphanRevisions`); returns the ones adopted."""
        orphans = [obj for obj in candidates if get_controller_of(obj) is None]
        return self.claim(resource, orphans)

    def _claim_one(self, resource: str, obj: ApiObject, member: bool = True) -> bool:
        owner_uid = self.owner.metadata.uid
        matches = member and self.selector.matches(obj.metadata.labels or {})
        reference = get_controller_of(obj)
        if reference is not None:
            if reference.uid != owner_uid:
                return False
            if matches:
                return True
            if self.owner.metadata.deletion_timestamp is None:
                self._patch_owner_references(resource, obj, [r for r in obj.metadata.owner_references or [] if r.uid != owner_uid])
            return False
        if (
            not matches
            or self.owner.metadata.deletion_timestamp is not None
            or obj.metadata.deletion_timestamp is not None
            or obj.metadata.namespace != self.owner.metadata.namespace
        ):
            return False
        self._check_owner_can_adopt()
        others = [r for r in obj.metadata.owner_references or () if r.uid != owner_uid]
        return self._patch_owner_references(resource, obj, [*others, new_controller_ref(self.owner)])

    def _check_owner_can_adopt(self) -> None:
        # Once per claim pass, as k8s's canAdoptOnce: the cache may still show an owner that
        # was deleted (or deleted and recreated under the same name) a moment ago.
        if self._adoption_check is None:
            metadata = self.owner.metadata
            kind_and_name = f"{self.owner.kind.lower()}/{metadata.name}"
            try:
                fresh = self.client.get(self.owner_resource, metadata.name or "", namespace=metadata.namespace)
            except errors.NotFound:
                fresh = None
            if fresh is None or fresh.metadata.uid != metadata.uid:
                self._adoption_check = errors.Conflict(
                    f"{kind_and_name}: original object (uid {metadata.uid}) is gone; not adopting orphans for it"
                )
            elif fresh.metadata.deletion_timestamp is not None:
                self._adoption_check = errors.Conflict(
                    f"{kind_and_name}: being deleted (deletionTimestamp {fresh.metadata.deletion_timestamp}); "
                    "not adopting orphans for it"
                )
            else:
                self._adoption_check = True
        if isinstance(self._adoption_check, errors.ApiError):
            raise self._adoption_check

    def _patch_owner_references(self, resource: str, obj: ApiObject, references: list[OwnerReference]) -> bool:
        """Set obj's ownerReferences; False when the object is gone."""
        patch = {
            "metadata": {
                "ownerReferences": [reference.to_dict() for reference in references] or None,
                "resourceVersion": obj.metadata.resource_version,
            }
        }
        try:
            self.client.patch(resource, obj.metadata.name or "", patch, namespace=obj.metadata.namespace)
        except errors.NotFound:
            return False
        return True


def claim_replica_sets(client: Client, deployment: Deployment, selector: Selector,
                       replica_sets: Iterable[ReplicaSet]) -> list[ReplicaSet]:
    """The ReplicaSets a Deployment controls after adoption/release."""
    return ControllerRefManager(client, deployment, "deployments", selector).claim("replicasets", replica_sets)


# -- expectations -----------------------------------------------------------------------------


@dataclass
class _Expectation:
    creations: int
    deletions: int
    set_at: float
    # Keys of the pods whose deletion we wait for, so a pod seen first with a
    # deletionTimestamp and later as DELETED is counted once (UIDTrackingControllerExpectations).
    deletion_keys: set[str] = field(default_factory=set)


class ControllerExpectations:
    """Creates and deletes a controller has issued but not yet seen in its cache, per key.

    A sync may act only when the key's expectations are satisfied: no record, nothing
    outstanding, or a record older than five minutes (a lost watch event must not wedge the
    controller). Setting expectations replaces the previous record.
    """

    def __init__(self, clock: Clock | None = None, timeout_seconds: float = EXPECTATIONS_TIMEOUT_SECONDS):
        self.clock = clock or Clock()
        self.timeout_seconds = timeout_seconds
        self._records: dict[str, _Expectation] = {}
        self._lock = threading.Lock()

    def satisfied(self, key: str) -> bool:
        with self._lock:
            record = self._records.get(key)
            if record is None:
                return True
            if record.creations <= 0 and record.deletions <= 0:
                return True
            return self.clock.monotonic() - record.set_at > self.timeout_seconds

    def expect_creations(self, key: str, count: int) -> None:
        self.expect(key, count, ())

    def expect_deletions(self, key: str, pod_keys: Iterable[str]) -> None:
        self.expect(key, 0, pod_keys)

    def expect(self, key: str, creations: int, pod_keys: Iterable[str]) -> None:
        """Both at once (SetExpectations), for a controller that creates and deletes in one pass."""
        keys = set(pod_keys)
        with self._lock:
            self._records[key] = _Expectation(creations, len(keys), self.clock.monotonic(), keys)

    def creation_observed(self, key: str) -> None:
        with self._lock:
            record = self._records.get(key)
            if record is not None:
                record.creations -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        """Count `pod_key`'s deletion once, and only if we were waiting for it."""
        with self._lock:
            record = self._records.get(key)
            if record is not None and pod_key in record.deletion_keys:
                record.deletion_keys.discard(pod_key)
                record.deletions -= 1

    def pending(self, key: str) -> tuple[int, int]:
        """(creations, deletions) still expected for `key`."""
        with self._lock:
            record = self._records.get(key)
            return (0, 0) if record is None else (record.creations, record.deletions)

    def delete(self, key: str) -> None:
        with self._lock:
            self._records.pop(key, None)


# -- scale-down ranking -----------------------------------------------------------------------


def _zero_first_then_newer(first: float | None, second: float | None) -> bool:
    # afterOrZero: a missing time sorts first, then the more recent one.
    if first is None or second is None:
        return first is None
    return first > second


def _log2_age_bucket(then: float, now: float) -> int:
    # Kubernetes buckets the age in nanoseconds by floor(log2(age)); a non-positive age is -1.
    age_nanoseconds = (now - then) * 1e9
    return int(math.log2(age_nanoseconds)) if age_nanoseconds > 0 else -1


def _newer_first_logarithmic(first: Pod, second: Pod, first_time: float | None, second_time: float | None,
                              now: float) -> bool:
    """LogarithmicScaleDown: compare age buckets; pods of similar age are ordered by uid."""
    if first_time is None or second_time is None:
        return _zero_first_then_newer(first_time, second_time)
    bucket_difference = _log2_age_bucket(first_time, now) - _log2_age_bucket(second_time, now)
    if bucket_difference == 0:
        return (first.metadata.uid or "") < (second.metadata.uid or "")
    return bucket_difference < 0


_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


@dataclass
class _RankedPod:
    pod: Pod
    rank: int
    ready: bool
    ready_since: float | None
    created: float | None


def _delete_before(first: _RankedPod, second: _RankedPod, now: float) -> bool:
    """`ActivePodsWithRanks.Less`: True when `first` should be deleted before `second`."""
    first_pod, second_pod = first.pod, second.pod
    # 1. Not assigned to a node < assigned.
    first_node, second_node = first_pod.spec.node_name or "", second_pod.spec.node_name or ""
    if first_node != second_node and (not first_node or not second_node):
        return not first_node
    # 2. Pending < Unknown < Running.
    first_phase = _PHASE_ORDINAL.get(first_pod.status.phase or "", 0)
    second_phase = _PHASE_ORDINAL.get(second_pod.status.phase or "", 0)
    if first_phase != second_phase:
        return first_phase < second_phase
    # 3. Not ready < ready.
    if first.ready != second.ready:
        return not first.ready
    # 4. Lower pod-deletion-cost < higher.
    first_cost, second_cost = pod_deletion_cost(first_pod), pod_deletion_cost(second_pod)
    if first_cost != second_cost:
        return first_cost < second_cost
    # 5. More related pods on the same node < fewer (spreads the survivors).
    if first.rank != second.rank:
        return first.rank > second.rank
    # 6. Both ready: ready more recently < ready longer.
    if first.ready and second.ready and first.ready_since != second.ready_since:
        return _newer_first_logarithmic(first_pod, second_pod, first.ready_since, second.ready_since, now)
    # 7. Higher max container restart count < lower.
    first_restarts, second_restarts = max_container_restarts(first_pod), max_container_restarts(second_pod)
    if first_restarts != second_restarts:
        return first_restarts > second_restarts
    # 8. Newer < older.
    if first.created != second.created:
        return _newer_first_logarithmic(first_pod, second_pod, first.created, second.created, now)
    return False


def _parse_optional_time(text: str | None) -> float | None:
    return parse_time(text) if text else None


def pods_to_delete(pods: Sequence[Pod], count: int, related_pods: Iterable[Pod], now: float) -> list[Pod]:
    """The `count` pods to delete first (semantics.md 2.3, `getPodsToDelete`).

    `related_pods` are the active pods of every ReplicaSet of the same Deployment (or of this
    ReplicaSet alone); a pod's rank is how many of them share its node. When every pod goes,
    no ranking happens.
    """
    if count >= len(pods):
        return list(pods)
    pods_on_node: dict[str, int] = {}
    for related in related_pods:
        if is_pod_active(related):
            node = related.spec.node_name or ""
            pods_on_node[node] = pods_on_node.get(node, 0) + 1
    ranked = [
        _RankedPod(
            pod=pod,
            rank=pods_on_node.get(pod.spec.node_name or "", 0),
            ready=is_pod_ready(pod),
            ready_since=pod_ready_since(pod),
            created=_parse_optional_time(pod.metadata.creation_timestamp),
        )
        for pod in pods
    ]

    def compare(first: _RankedPod, second: _RankedPod) -> int:
        if _delete_before(first, second, now):
            return -1
        if _delete_before(second, first, now):
            return 1
        return 0

    ranked.sort(key=functools.cmp_to_key(compare))
    return [entry.pod for entry in ranked[:count]]


# -- slow start ---------------------------------------------------------------------------------

def error_text(error: Exception) -> str:
    """What an event or condition says of a failed API call: the Status message, else the error."""
    return error.message if isinstance(error, errors.ApiError) else str(error)


def run_in_parallel(calls: Sequence[Callable[[], Any]]) -> list[BaseException]:
    """Run the calls concurrently (at most PARALLEL_API_CALLS at a time) and wait for all; the
    exceptions they raised, in call order. The threads last as long as the batch: an idle node
    keeps none of them."""
    if len(calls) == 1:
        try:
            calls[0]()
        except Exception as error:
            return [error]
        return []
    with ThreadPoolExecutor(max_workers=min(len(calls), PARALLEL_API_CALLS), thread_name_prefix="controller-api-call") as pool:
        futures = [pool.submit(call) for call in calls]
        return [error for error in (future.exception() for future in futures) if error is not None]


def pod_deleter(client: Client, expectations: "ControllerExpectations", recorder: EventRecorder, key: str,
                owner: ApiObject, pod: Pod, before_delete: Callable[[], None] | None = None) -> Callable[[], None]:
    """A call deleting one of `owner`'s pods, as the ReplicaSet, DaemonSet and Job controllers do:
    the expected deletion is counted as observed when it cannot happen (already gone, or the
    delete failed, which the informer will never see), and the owner gets kubelet-style
    SuccessfulDelete / FailedDelete events. `before_delete` runs first (the Job's finalizer)."""
    def delete_one() -> None:
        try:
            if before_delete is not None:
                before_delete()
            client.delete("pods", pod.metadata.name or "", namespace=pod.metadata.namespace)
        except errors.NotFound:
            expectations.deletion_observed(key, cache_key(pod))
            return
        except Exception as error:
            expectations.deletion_observed(key, cache_key(pod))
            recorder.event(owner, WARNING, "FailedDelete", f"Error deleting: {error_text(error)}")
            raise
        recorder.event(owner, NORMAL, "SuccessfulDelete", f"Deleted pod: {pod.metadata.name}")
    return delete_one


def slow_start_batch(count: int, initial_batch: int, fn: Callable[[], Any]) -> tuple[int, BaseException | None]:
    """Call `fn` `count` times in growing concurrent batches (1, 2, 4, ...); stop after a
    batch with a failure. Returns (successful calls, first error or None).

    Purpose (k8s `slowStartBatch`): when every call fails (quota, a broken template), fail after
    one call instead of hammering the API with hundreds.
    """
    remaining = count
    successes = 0
    batch_size = min(remaining, initial_batch)
    while batch_size > 0:
        failures = run_in_parallel([fn] * batch_size)
        successes += batch_size - len(failures)
        if failures:
            return successes, failures[0]
        remaining -= batch_size
        batch_size = min(2 * batch_size, remaining)
    return successes, None


def pod_keys(pods: Iterable[Pod]) -> list[str]:
    return [cache_key(pod) for pod in pods]
