"""The DaemonSet controller: one pod on every node that should run it.

Follows k/k `pkg/controller/daemon` (daemon_controller.go, update.go, util/daemonset_util.go).
A node should run a DaemonSet's pod when the pod, as the controller would make it for that node,
fits the node's name, nodeSelector and required node affinity and tolerates its NoSchedule and
NoExecute taints; a pod already there may stay while it only fails on NoSchedule taints
(`node_should_run`). Every pod carries the tolerations the controller adds
(`add_daemon_pod_tolerations`: not-ready and unreachable NoExecute forever, disk, memory and pid
pressure and unschedulable NoSchedule), and a
required node affinity `matchFields metadata.name In [<node>]` replacing the template's required
terms, so the scheduler binds it to that node and only there, as Kubernetes has done since 1.12.

`sync(key)`, level-triggered:
1. History: the template is a ControllerRevision (`client/history.py`), labelled with
   `controller-revision-hash`; a template seen before (a rollback) gets its old revision back,
   renumbered as the newest. Pods carry the hash and `pod-template-generation`.
2. Manage: per node, create the missing pod, delete failed pods (with a per-node back-off, as
   the controller does against a kubelet that keeps rejecting them), succeeded pods, extra pods
   (the oldest stays; with maxSurge one old and one new may overlap) and pods on nodes that
   should not run them; unscheduled pods aimed at nodes that are gone are deleted too. Creates
   and deletes are guarded by expectations, so a lagging cache never doubles a pod.
3. RollingUpdate (once the cache has caught up): with maxSurge 0, delete old pods while at most
   maxUnavailable nodes are without an available pod (the manage step puts the new one there);
   with maxSurge, start a new pod beside an old one on up to maxSurge nodes and delete the old
   one once the new one is available. OnDelete leaves old pods until someone deletes them.
4. Old revisions beyond `revisionHistoryLimit` that no pod uses are deleted; the status counts
   nodes (desired, current, ready, up-to-date, available, unavailable, misscheduled).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from minikube_py.api import errors
from minikube_py.api.apps import ControllerRevision, DaemonSet, DaemonSetStatus
from minikube_py.api.apps_validation import TEMPLATE_GENERATION_ANNOTATION
from minikube_py.api.core import Node, Pod, PodSpec
from minikube_py.api.names import is_dns1123_subdomain
from minikube_py.api.placement import (
    NO_EXECUTE,
    NO_SCHEDULE,
    TAINT_NOT_READY,
    TAINT_UNREACHABLE,
    TAINT_UNSCHEDULABLE,
    Affinity,
    NodeAffinity,
    NodeSelector,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    Toleration,
)
from minikube_py.api.selectors import Selector
from minikube_py.api.times import parse_time
from minikube_py.client import history
from minikube_py.client.api import Client
from minikube_py.client.controller import Controller
from minikube_py.client.events import NORMAL, WARNING, EventRecorder
from minikube_py.client.informer import SharedInformers, cache_key, shared_informers
from minikube_py.clock import Clock
from controllers.common import (
    SLOW_START_INITIAL_BATCH_SIZE,
    ControllerExpectations,
    ControllerRefManager,
    error_text,
    get_controller_of,
    is_pod_available,
    is_pod_ready,
    new_controller_ref,
    pod_keys,
    pod_deleter,
    run_in_parallel,
    slow_start_batch,
)
from controllers.scheduler_framework import NodeInfo
from controllers.scheduler_plugins import matches_node_selector_and_affinity, untolerated_taint

log = logging.getLogger(__name__)

COMPONENT = "daemonset-controller"
REVISION_HASH_LABEL = "controller-revision-hash"  # apps.DefaultDaemonSetUniqueLabelKey
TEMPLATE_GENERATION_LABEL = "pod-template-generation"  # extensions.DaemonSetTemplateGenerationKey
NODE_NAME_FIELD = "metadata.name"
# The DaemonSet controller's own burst (daemon_controller.go BurstReplicas).
BURST_REPLICAS = 250
# failedPodsBackoff: 1 s doubling up to 15 min per (DaemonSet, node).
FAILED_POD_BACKOFF_INITIAL = 1.0
FAILED_POD_BACKOFF_MAX = 15 * 60.0
TAINT_DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
TAINT_MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
TAINT_PID_PRESSURE = "node.kubernetes.io/pid-pressure"
# AddOrUpdateDaemonPodTolerations, in its order (its network-unavailable toleration is for
# hostNetwork pods, which pods here cannot be).
DAEMON_POD_TOLERATIONS = (
    Toleration(key=TAINT_NOT_READY, operator="Exists", effect=NO_EXECUTE),
    Toleration(key=TAINT_UNREACHABLE, operator="Exists", effect=NO_EXECUTE),
    Toleration(key=TAINT_DISK_PRESSURE, operator="Exists", effect=NO_SCHEDULE),
    Toleration(key=TAINT_MEMORY_PRESSURE, operator="Exists", effect=NO_SCHEDULE),
    Toleration(key=TAINT_PID_PRESSURE, operator="Exists", effect=NO_SCHEDULE),
    Toleration(key=TAINT_UNSCHEDULABLE, operator="Exists", effect=NO_SCHEDULE),
)


# -- the pod a DaemonSet runs on a node ---------------------------------------------------------


def _same_toleration(first: Toleration, second: Toleration) -> bool:
    """MatchToleration: same key, effect, operator and value (tolerationSeconds aside)."""
    return (first.key or "", first.effect or "", first.operator or "", first.value or "") == \
        (second.key or "", second.effect or "", second.operator or "", second.value or "")


def add_or_update_toleration(spec: PodSpec, toleration: Toleration) -> None:
    """AddOrUpdateTolerationInPodSpec: replace a matching toleration (e.g. one with
    tolerationSeconds) by this one, or append it."""
    tolerations = list(spec.tolerations or [])
    for index, existing in enumerate(tolerations):
        if _same_toleration(existing, toleration):
            tolerations[index] = toleration.model_copy()
            spec.tolerations = tolerations
            return
    spec.tolerations = [*tolerations, toleration.model_copy()]


def add_daemon_pod_tolerations(spec: PodSpec) -> None:
    """What the controller adds to every DaemonSet pod, so node problems neither evict it nor
    keep it off a node (AddOrUpdateDaemonPodTolerations)."""
    for toleration in DAEMON_POD_TOLERATIONS:
        add_or_update_toleration(spec, toleration)


def node_name_affinity(affinity: Affinity | None, node_name: str) -> Affinity:
    """ReplaceDaemonSetPodNodeNameNodeAffinity: the required node affinity becomes the single
    term `matchFields metadata.name In [node_name]`; preferred terms and pod (anti-)affinity stay."""
    term = NodeSelectorTerm(match_fields=[NodeSelectorRequirement(key=NODE_NAME_FIELD, operator="In",
                                                                  values=[node_name])])
    affinity = affinity.model_copy(deep=True) if affinity is not None else Affinity()
    if affinity.node_affinity is None:
        affinity.node_affinity = NodeAffinity()
    affinity.node_affinity.required_during_scheduling_ignored_during_execution = NodeSelector(node_selector_terms=[term])
    return affinity


def target_node_name(pod: Pod) -> str | None:
    """GetTargetNodeName: the node the pod is bound to, else the one its node-name affinity names."""
    if pod.spec.node_name:
        return pod.spec.node_name
    affinity = pod.spec.affinity
    required = affinity.node_affinity.required_during_scheduling_ignored_during_execution \
        if affinity is not None and affinity.node_affinity is not None else None
    if required is None:
        return None
    for term in required.node_selector_terms:
        for requirement in term.match_fields or []:
            if requirement.key == NODE_NAME_FIELD and requirement.operator == "In" and len(requirement.values or []) == 1:
                return (requirement.values or [""])[0]
    return None


def template_generation(daemon_set: DaemonSet) -> str | None:
    return (daemon_set.metadata.annotations or {}).get(TEMPLATE_GENERATION_ANNOTATION)


def pod_for_node(daemon_set: DaemonSet, node_name: str, revision_hash: str = "", bind: bool = True) -> Pod:
    """CreatePodTemplate + the node-name affinity: the pod the controller makes for one node.
    Without `bind`, NewPod: the template with the daemon tolerations, to test a node with."""
    template = daemon_set.spec.template
    name = daemon_set.metadata.name or ""
    labels = dict(template.metadata.labels or {})
    generation = template_generation(daemon_set)
    if generation is not None:
        labels[TEMPLATE_GENERATION_LABEL] = generation
    if revision_hash:
        labels[REVISION_HASH_LABEL] = revision_hash
    metadata = {
        # k8s getPodsPrefix: `<ds>-` unless that is not a valid name prefix.
        "generateName": f"{name}-" if is_dns1123_subdomain(f"{name}a") else name,
        "namespace": daemon_set.metadata.namespace,
        "labels": labels or None,
        "annotations": dict(template.metadata.annotations or {}) or None,
        "finalizers": list(template.metadata.finalizers or []) or None,
        "ownerReferences": [new_controller_ref(daemon_set).to_dict()],
    }
    pod = Pod.model_validate({"apiVersion": "v1", "kind": "Pod",
                              "metadata": {key: value for key, value in metadata.items() if value is not None},
                              "spec": template.spec.to_dict()})
    add_daemon_pod_tolerations(pod.spec)
    if bind:
        pod.spec.affinity = node_name_affinity(pod.spec.affinity, node_name)
    return pod


def node_should_run(node: Node, daemon_set: DaemonSet) -> tuple[bool, bool]:
    """(shouldRun, shouldContinueRunning) of NodeShouldRunDaemonPod: the pod must fit the
    node's name and affinity; a taint it does not tolerate keeps a new pod off the node, and
    only a NoExecute one removes a pod already there."""
    node_name = node.metadata.name or ""
    wanted = daemon_set.spec.template.spec.node_name
    if wanted and wanted != node_name:
        return False, False
    pod = pod_for_node(daemon_set, node_name, bind=False)
    if not matches_node_selector_and_affinity(pod, NodeInfo(node)):
        return False, False
    taints = node.spec.taints or []
    if untolerated_taint(pod, taints) is not None:
        return False, untolerated_taint(pod, taints, (NO_EXECUTE,)) is None
    return True, True


def is_pod_updated(pod: Pod, revision_hash: str, generation: str | None) -> bool:
    """IsPodUpdated: the pod carries the current revision's hash, or the template generation."""
    labels = pod.metadata.labels or {}
    return bool(revision_hash) and labels.get(REVISION_HASH_LABEL) == revision_hash or \
        generation is not None and labels.get(TEMPLATE_GENERATION_LABEL) == generation


def is_terminal(pod: Pod) -> bool:
    return pod.status.phase in ("Succeeded", "Failed")


def _creation_order(pod: Pod) -> tuple[bool, float, str]:
    """podByCreationTimestampAndPhase: bound pods first, then the oldest, then by name."""
    created = pod.metadata.creation_timestamp
    return (not pod.spec.node_name, parse_time(created) if created else 0.0, pod.metadata.name or "")


def scaled_value(value: int | str | None, total: int) -> int:
    """GetScaledValueFromIntOrPercent rounding up, as UnavailableCount and SurgeCount use it:
    maxUnavailable 10% of 12 nodes is ceil(1.2) = 2 nodes."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    return math.ceil(int(value.rstrip("%")) * total / 100)


@dataclass
class _Backoff:
    """flowcontrol.Backoff for failed pods, per (DaemonSet, node): delay doubles up to a cap, and
    starts over once nothing failed for twice the cap."""

    clock: Clock
    entries: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (delay, last update)

    def in_backoff(self, key: str) -> float | None:
        """The delay when the key failed less than that long ago, else None."""
        entry = self.entries.get(key)
        if entry is None:
            return None
        delay, updated = entry
        return delay if self.clock.monotonic() - updated < delay else None

    def next(self, key: str) -> None:
        now = self.clock.monotonic()
        entry = self.entries.get(key)
        if entry is None or now - entry[1] > 2 * FAILED_POD_BACKOFF_MAX:
            self.entries[key] = (FAILED_POD_BACKOFF_INITIAL, now)
        else:
            self.entries[key] = (min(entry[0] * 2, FAILED_POD_BACKOFF_MAX), now)


@dataclass
class _Plan:
    """What one manage or rolling-update pass does: pods to delete, nodes that get a new pod."""

    delete: list[Pod] = field(default_factory=list)
    create_on: list[str] = field(default_factory=list)
    retry_after: float | None = None

    def later(self, seconds: float) -> None:
        self.retry_after = seconds if self.retry_after is None else min(self.retry_after, seconds)


class DaemonSetController(Controller[str]):
    """Reconciles DaemonSets; keys are `namespace/name`."""

    pace_slow_syncs = True

    def __init__(self, client: Client, clock: Clock | None = None, informers: SharedInformers | None = None,
                 recorder: EventRecorder | None = None, workers: int = 2, burst_replicas: int = BURST_REPLICAS):
        super().__init__(COMPONENT, clock, workers)
        self.client = client
        informers = informers or shared_informers(client)
        self.recorder = recorder or EventRecorder(client, COMPONENT, self.clock)
        self.expectations = ControllerExpectations(self.clock)
        self.burst_replicas = burst_replicas
        self.failed_pods_backoff = _Backoff(self.clock)
        self.daemon_sets = self.watch(informers.informer("daemonsets"),
                                      on_add=lambda item: self.enqueue(cache_key(item)),
                                      on_update=lambda old, new: self.enqueue(cache_key(new)),
                                      on_delete=self._daemon_set_deleted)
        self.pods = self.watch(informers.informer("pods"), on_add=self._pod_added, on_update=self._pod_updated,
                               on_delete=self._pod_deleted)
        self.nodes = self.watch(informers.informer("nodes"), on_add=lambda node: self._enqueue_all(),
                                on_update=self._node_updated, on_delete=lambda node: self._enqueue_all())
        self.revisions = self.watch(informers.informer("controllerrevisions"), on_add=self._revision_changed,
                                    on_update=lambda old, new: self._revision_changed(new),
                                    on_delete=self._revision_changed)

    # -- event handlers: compute the DaemonSet key and enqueue it ------------------------------

    def _daemon_set_deleted(self, daemon_set: DaemonSet) -> None:
        key = cache_key(daemon_set)
        self.expectations.delete(key)
        self.enqueue(key)

    def _enqueue_all(self) -> None:
        for daemon_set in self.daemon_sets.list():
            self.enqueue(cache_key(daemon_set))

    def _node_updated(self, old: Node, new: Node) -> None:
        # shouldIgnoreNodeUpdate: heartbeats change nothing a DaemonSet looks at.
        def relevant(node: Node) -> Any:
            conditions = sorted((condition.type, condition.status) for condition in node.status.conditions or [])
            return node.metadata.labels, node.spec.to_dict(), conditions
        if relevant(old) != relevant(new):
            self._enqueue_all()

    def _owner_key(self, obj: Any) -> str | None:
        reference = get_controller_of(obj)
        if reference is None or reference.kind != "DaemonSet":
            return None
        key = f"{obj.metadata.namespace}/{reference.name}"
        owner = self.daemon_sets.get(key)
        return key if owner is not None and owner.metadata.uid == reference.uid else None

    def _selecting(self, obj: Pod | ControllerRevision) -> list[DaemonSet]:
        labels = obj.metadata.labels or {}
        return [daemon_set for daemon_set in self.daemon_sets.list(namespace=obj.metadata.namespace)
                if Selector.from_label_selector(daemon_set.spec.selector).matches(labels)]

    def _pod_added(self, pod: Pod) -> None:
        if pod.metadata.deletion_timestamp is not None:
            self._pod_deleted(pod)
            return
        if get_controller_of(pod) is not None:
            key = self._owner_key(pod)
            if key is not None:
                self.expectations.creation_observed(key)
                self.enqueue(key)
            return
        for daemon_set in self._selecting(pod):
            self.enqueue(cache_key(daemon_set))

    def _pod_updated(self, old: Pod, new: Pod) -> None:
        if new.metadata.deletion_timestamp is not None:
            self._pod_deleted(new)
            return
        key = self._owner_key(new)
        if key is not None:
            self.enqueue(key)
            owner = self.daemon_sets.get(key)
            if owner is not None and owner.spec.min_ready_seconds > 0 and not is_pod_ready(old) and is_pod_ready(new):
                self.enqueue_after(key, owner.spec.min_ready_seconds + 1)
        elif get_controller_of(new) is None and (old.metadata.labels or {}) != (new.metadata.labels or {}):
            for daemon_set in self._selecting(new):
                self.enqueue(cache_key(daemon_set))
        old_key = self._owner_key(old)
        if old_key is not None and old_key != key:
            self.enqueue(old_key)

    def _pod_deleted(self, pod: Pod) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, cache_key(pod))
            self.enqueue(key)

    def _revision_changed(self, revision: ControllerRevision) -> None:
        key = self._owner_key(revision)
        if key is not None:
            self.enqueue(key)
        elif get_controller_of(revision) is None:
            for daemon_set in self._selecting(revision):  # an orphan: who may adopt it
                self.enqueue(cache_key(daemon_set))

    # -- sync -----------------------------------------------------------------------------------

    def sync(self, key: str) -> float | None:
        daemon_set: DaemonSet | None = self.daemon_sets.get(key)
        if daemon_set is None:
            self.expectations.delete(key)
            return None
        selector = daemon_set.spec.selector
        if selector is not None and not selector.match_labels and not selector.match_expressions:
            self.recorder.event(daemon_set, WARNING, "SelectingAll",
                                "This daemon set is selecting all pods. A non-empty selector is required.")
            return None
        if daemon_set.metadata.deletion_timestamp is not None:
            return None
        nodes = sorted(self.nodes.list(), key=lambda node: node.metadata.name or "")
        current, old = self._construct_history(daemon_set)
        revision_hash = (current.metadata.labels or {}).get(REVISION_HASH_LABEL, "")
        if not self.expectations.satisfied(key):
            # Only the status: the generation was not acted on yet.
            return self._update_status(daemon_set, nodes, revision_hash, observed=False)
        retry_after = self._manage(key, daemon_set, nodes, revision_hash)
        if self.expectations.satisfied(key) and daemon_set.spec.update_strategy.type == "RollingUpdate":
            self._rolling_update(key, daemon_set, nodes, revision_hash)
        self._cleanup_history(daemon_set, old)
        status_retry = self._update_status(daemon_set, nodes, revision_hash, observed=True)
        delays = [delay for delay in (retry_after, status_retry) if delay is not None]
        return min(delays) if delays else None

    # -- history ---------------------------------------------------------------------------------

    def _snapshot(self, daemon_set: DaemonSet, revision: int, collision_count: int) -> ControllerRevision:
        """The revision of the current template, labelled with its hash (`controller-revision-hash`)
        and carrying the DaemonSet's annotations, as kube's snapshot makes it."""
        made = history.new_controller_revision(daemon_set, daemon_set.spec.template.metadata.labels,
                                               history.template_patch(daemon_set.spec.template), revision,
                                               collision_count)
        labels = dict(made.metadata.labels or {})
        labels[REVISION_HASH_LABEL] = labels.pop(history.CONTROLLER_REVISION_HASH_LABEL)
        made.metadata.labels = labels
        made.metadata.annotations = dict(daemon_set.metadata.annotations or {}) or None
        return made

    def _create_revision(self, daemon_set: DaemonSet, revision: int) -> ControllerRevision:
        """Create the snapshot; a name taken by a revision with other data bumps collisionCount."""
        collision_count = daemon_set.status.collision_count or 0
        while True:
            made = self._snapshot(daemon_set, revision, collision_count)
            try:
                created = self.client.create(made)
                break
            except errors.AlreadyExists:
                existing = self.client.get("controllerrevisions", made.metadata.name or "",
                                           namespace=made.metadata.namespace)
                owner = get_controller_of(existing)
                if history.revision_data_bytes(existing.data) == history.revision_data_bytes(made.data) and \
                        owner is not None and owner.uid == daemon_set.metadata.uid:
                    created = existing
                    break
                collision_count += 1
        if collision_count != (daemon_set.status.collision_count or 0):
            self.client.patch_status("daemonsets", daemon_set.metadata.name or "",
                                     {"status": {"collisionCount": collision_count}},
                                     namespace=daemon_set.metadata.namespace)
            daemon_set.status.collision_count = collision_count
        return created

    def _construct_history(self, daemon_set: DaemonSet) -> tuple[ControllerRevision, list[ControllerRevision]]:
        """(current, old) revisions (constructHistory): the current one matches the template."""
        namespace = daemon_set.metadata.namespace
        wanted = history.revision_data_bytes(history.template_patch(daemon_set.spec.template))
        matching: list[ControllerRevision] = []
        old: list[ControllerRevision] = []
        # controlledHistories: adopt orphan revisions the selector matches, release ones it no longer does.
        claimed = ControllerRefManager(self.client, daemon_set, "daemonsets",
                                       Selector.from_label_selector(daemon_set.spec.selector)).claim(
            "controllerrevisions", self.revisions.list(namespace=namespace))
        for revision in history.sorted_revisions(claimed):
            (matching if history.revision_data_bytes(revision.data) == wanted else old).append(revision)
        next_number = max((revision.revision for revision in old), default=0) + 1
        if not matching:
            return self._create_revision(daemon_set, next_number), old
        current = self._dedup_revisions(daemon_set, matching)
        if current.revision < next_number:
            renumbered = current.model_copy(deep=True)
            renumbered.revision = next_number
            current = self.client.replace(renumbered)
        return current, old

    def _dedup_revisions(self, daemon_set: DaemonSet, matching: list[ControllerRevision]) -> ControllerRevision:
        """dedupCurHistories: keep the newest of equal revisions, move their pods onto it."""
        keep = max(matching, key=lambda revision: revision.revision)
        keep_hash = (keep.metadata.labels or {}).get(REVISION_HASH_LABEL, "")
        for duplicate in matching:
            if duplicate is keep:
                continue
            duplicate_hash = (duplicate.metadata.labels or {}).get(REVISION_HASH_LABEL)
            for pod in self.pods.list(namespace=daemon_set.metadata.namespace):
                if (pod.metadata.labels or {}).get(REVISION_HASH_LABEL) == duplicate_hash and \
                        (reference := get_controller_of(pod)) is not None and reference.uid == daemon_set.metadata.uid:
                    self.client.patch("pods", pod.metadata.name or "",
                                      {"metadata": {"labels": {REVISION_HASH_LABEL: keep_hash}}},
                                      namespace=pod.metadata.namespace)
            try:
                self.client.delete("controllerrevisions", duplicate.metadata.name or "",
                                   namespace=duplicate.metadata.namespace)
            except errors.NotFound:
                pass
        return keep

    def _cleanup_history(self, daemon_set: DaemonSet, old: list[ControllerRevision]) -> None:
        """Delete the oldest revisions beyond revisionHistoryLimit whose hash no pod carries."""
        excess = len(old) - daemon_set.spec.revision_history_limit
        if excess <= 0:
            return
        live = {(pod.metadata.labels or {}).get(REVISION_HASH_LABEL) for pods in
                self._nodes_to_daemon_pods(daemon_set, include_deleted_terminal=True).values() for pod in pods}
        for revision in history.sorted_revisions(old):
            if excess <= 0:
                break
            if (revision.metadata.labels or {}).get(REVISION_HASH_LABEL) in live:
                continue
            try:
                self.client.delete("controllerrevisions", revision.metadata.name or "",
                                   namespace=revision.metadata.namespace)
            except errors.NotFound:
                pass
            excess -= 1

    # -- pods per node -------------------------------------------------------------------------

    def _nodes_to_daemon_pods(self, daemon_set: DaemonSet, include_deleted_terminal: bool) -> dict[str, list[Pod]]:
        """getNodesToDaemonPods: the DaemonSet's pods (adopting orphans it selects, releasing pods
        it no longer selects) by the node they are for."""
        selector = Selector.from_label_selector(daemon_set.spec.selector)
        candidates = self.pods.list(namespace=daemon_set.metadata.namespace)
        owned = ControllerRefManager(self.client, daemon_set, "daemonsets", selector).claim("pods", candidates)
        by_node: dict[str, list[Pod]] = {}
        for pod in owned:
            if not include_deleted_terminal and is_terminal(pod) and pod.metadata.deletion_timestamp is not None:
                continue
            node_name = target_node_name(pod)
            if node_name is not None:
                by_node.setdefault(node_name, []).append(pod)
        return by_node

    def _manage(self, key: str, daemon_set: DaemonSet, nodes: list[Node], revision_hash: str) -> float | None:
        """Create and delete pods so each node has what it should (manage)."""
        by_node = self._nodes_to_daemon_pods(daemon_set, include_deleted_terminal=False)
        plan = _Plan()
        for node in nodes:
            self._plan_node(daemon_set, node, by_node.get(node.metadata.name or "", []), revision_hash, plan)
        # Unscheduled pods aimed at nodes that are gone: the pod GC never sees them (getUnscheduledPodsWithoutNode).
        known = {node.metadata.name for node in nodes}
        for node_name, pods in by_node.items():
            if node_name not in known:
                plan.delete += [pod for pod in pods if not pod.spec.node_name]
        self._sync_nodes(key, daemon_set, plan.delete, plan.create_on, revision_hash)
        return plan.retry_after

    def _plan_node(self, daemon_set: DaemonSet, node: Node, pods: list[Pod], revision_hash: str, plan: _Plan) -> None:
        """podsShouldBeOnNode."""
        node_name = node.metadata.name or ""
        should_run, should_continue = node_should_run(node, daemon_set)
        if should_run and not pods:
            plan.create_on.append(node_name)
            return
        if not should_continue:
            plan.delete += [pod for pod in pods if pod.metadata.deletion_timestamp is None]
            return
        running = []
        for pod in pods:
            if pod.metadata.deletion_timestamp is not None:
                continue
            if pod.status.phase == "Failed":
                # The controller fights a kubelet that rejects the pod: back off per node.
                backoff_key = f"{daemon_set.metadata.namespace}/{daemon_set.metadata.name}/{node_name}"
                delay = self.failed_pods_backoff.in_backoff(backoff_key)
                if delay is not None:
                    plan.later(delay)
                    continue
                self.failed_pods_backoff.next(backoff_key)
                self.recorder.event(daemon_set, WARNING, "FailedDaemonPod",
                                    f"Found failed daemon pod {pod.metadata.namespace}/{pod.metadata.name} on node "
                                    f"{node_name}, will try to kill it")
                plan.delete.append(pod)
            elif pod.status.phase == "Succeeded":
                plan.delete.append(pod)
            else:
                running.append(pod)
        running.sort(key=_creation_order)
        if max_surge_of(daemon_set) is None:
            plan.delete += running[1:]  # the oldest stays
            return
        if len(running) <= 1:
            if not running and should_run:
                plan.create_on.append(node_name)
            return
        # With surge, one old and one new pod may overlap: the oldest of each kind stays, the old
        # one until it is not ready or the new one is available.
        oldest_new = oldest_old = None
        for pod in running:
            if (pod.metadata.labels or {}).get(REVISION_HASH_LABEL) == revision_hash:
                if oldest_new is None:
                    oldest_new = pod
                    continue
            elif oldest_old is None:
                oldest_old = pod
                continue
            plan.delete.append(pod)
        if oldest_new is not None and oldest_old is not None:
            if not is_pod_ready(oldest_old) or \
                    is_pod_available(oldest_new, daemon_set.spec.min_ready_seconds, self.clock.now()):
                plan.delete.append(oldest_old)

    def _sync_nodes(self, key: str, daemon_set: DaemonSet, to_delete: list[Pod], create_on: list[str],
                    revision_hash: str) -> None:
        """syncNodes: create on those nodes (slow start) and delete those pods, under expectations."""
        create_on = create_on[:self.burst_replicas]
        to_delete = to_delete[:self.burst_replicas]
        self.expectations.expect(key, len(create_on), pod_keys(to_delete))
        failures: list[BaseException] = []
        if create_on:
            remaining = list(create_on)

            def create_one() -> None:
                node_name = remaining.pop(0)
                pod = pod_for_node(daemon_set, node_name, revision_hash)
                try:
                    created = self.client.create(pod)
                except Exception as error:
                    self.recorder.event(daemon_set, WARNING, "FailedCreate", f"Error creating: {error_text(error)}")
                    raise
                self.recorder.event(daemon_set, NORMAL, "SuccessfulCreate", f"Created pod: {created.metadata.name}")

            with self.unpaced():
                successes, error = slow_start_batch(len(create_on), SLOW_START_INITIAL_BATCH_SIZE, create_one)
            for _ in range(len(create_on) - successes):
                self.expectations.creation_observed(key)
            if error is not None:
                failures.append(error)
        if to_delete:
            with self.unpaced():
                failures += run_in_parallel([pod_deleter(self.client, self.expectations, self.recorder, key, daemon_set, pod)
                                            for pod in to_delete])
        if failures:
            raise failures[0]

    # -- rolling update -------------------------------------------------------------------------

    def _rolling_update(self, key: str, daemon_set: DaemonSet, nodes: list[Node], revision_hash: str) -> None:
        by_node = self._nodes_to_daemon_pods(daemon_set, include_deleted_terminal=False)
        nodes_by_name = {node.metadata.name or "": node for node in nodes}
        desired = 0
        for node in nodes:
            if node_should_run(node, daemon_set)[0]:
                desired += 1
                by_node.setdefault(node.metadata.name or "", [])
        rolling = daemon_set.spec.update_strategy.rolling_update
        max_unavailable = scaled_value(rolling.max_unavailable if rolling else None, desired)
        max_surge = scaled_value(rolling.max_surge if rolling else None, desired)
        if desired > 0 and max_unavailable == 0 and max_surge == 0:
            max_unavailable = 1  # an impossible configuration obeys the default
        generation = template_generation(daemon_set)
        now = self.clock.now()
        min_ready = daemon_set.spec.min_ready_seconds

        def available(pod: Pod) -> bool:
            return is_pod_available(pod, min_ready, now)

        def should_run(node_name: str) -> bool:
            node = nodes_by_name.get(node_name)
            return node is not None and node_should_run(node, daemon_set)[0]

        plan = _Plan()
        if max_surge == 0:
            # Delete old pods while few enough nodes are without an available pod; the manage
            # step then creates the new ones. 3 nodes, maxUnavailable 1: one node at a time.
            unavailable = 0
            replacements: list[Pod] = []
            candidates: list[Pod] = []
            for node_name in sorted(by_node):
                found = updated_pods_on_node(by_node[node_name], revision_hash, generation)
                if found is None:
                    unavailable += 1  # excess pods: the manage step sorts this node out first
                    continue
                new_pod, old_pod = found
                if (old_pod is None) == (new_pod is None):
                    unavailable += 1
                elif new_pod is not None:
                    if not available(new_pod):
                        unavailable += 1
                elif old_pod is not None and not available(old_pod):
                    replacements.append(old_pod)  # not serving anyway: replace it now
                elif unavailable < max_unavailable and old_pod is not None:
                    candidates.append(old_pod)
            room = min(max(max_unavailable - unavailable, 0), len(candidates))
            plan.delete = replacements + candidates[:room]
            self._sync_nodes(key, daemon_set, plan.delete, [], revision_hash)
            return
        # Surge: a new pod beside an old one on up to maxSurge nodes at a time; the old one goes
        # once the new one is available (the manage step deletes it). 3 nodes, maxSurge 1: one
        # node has two pods at a time, and no node is ever without an available pod.
        surging = available_count = 0
        allowed_nodes: list[str] = []
        candidate_nodes: list[str] = []
        should_not_run: list[Pod] = []
        for node_name in sorted(by_node):
            found = updated_pods_on_node(by_node[node_name], revision_hash, generation)
            if found is None:
                surging += 1
                continue
            new_pod, old_pod = found
            if old_pod is not None:
                available_count += available(old_pod)
            elif new_pod is not None:
                available_count += available(new_pod)
            if old_pod is None:
                continue
            if new_pod is None:
                if not available(old_pod):
                    if not should_run(node_name):
                        plan.delete.append(old_pod)
                    else:
                        allowed_nodes.append(node_name)
                elif not should_run(node_name):
                    should_not_run.append(old_pod)
                elif surging < max_surge:
                    candidate_nodes.append(node_name)
                continue
            if not available(new_pod):
                surging += 1
                continue
            plan.delete.append(old_pod)
        # Pods on nodes that should no longer run them go only once enough pods elsewhere are available.
        deletable = min(max(available_count - desired, 0), len(should_not_run))
        plan.delete += should_not_run[:deletable]
        room = min(max(max_surge - surging, 0), len(candidate_nodes))
        self._sync_nodes(key, daemon_set, plan.delete, allowed_nodes + candidate_nodes[:room], revision_hash)

    # -- status ---------------------------------------------------------------------------------

    def _update_status(self, daemon_set: DaemonSet, nodes: list[Node], revision_hash: str,
                       observed: bool) -> float | None:
        """updateDaemonSetStatus: counts of nodes; a resync after minReadySeconds when some ready
        pods are not available yet."""
        by_node = self._nodes_to_daemon_pods(daemon_set, include_deleted_terminal=False)
        generation = template_generation(daemon_set)
        now = self.clock.now()
        desired = current = misscheduled = ready = updated = available = 0
        for node in nodes:
            should_run, _ = node_should_run(node, daemon_set)
            pods = sorted(by_node.get(node.metadata.name or "", []), key=_creation_order)
            if not should_run:
                misscheduled += bool(pods)
                continue
            desired += 1
            if not pods:
                continue
            current += 1
            pod = pods[0]
            if is_pod_ready(pod):
                ready += 1
                available += is_pod_available(pod, daemon_set.spec.min_ready_seconds, now)
            updated += is_pod_updated(pod, revision_hash, generation)
        old = daemon_set.status
        status = DaemonSetStatus(
            current_number_scheduled=current, number_misscheduled=misscheduled, desired_number_scheduled=desired,
            number_ready=ready,
            observed_generation=daemon_set.metadata.generation if observed else old.observed_generation,
            # Kubernetes' JSON omits these three when 0.
            updated_number_scheduled=updated or None, number_available=available or None,
            number_unavailable=(desired - available) or None,
            collision_count=old.collision_count, conditions=old.conditions)
        wire, old_wire = status.to_dict(), old.to_dict()
        if wire != old_wire:
            # A merge patch: a count back to 0 (omitted) must be removed with a null.
            patch = {**dict.fromkeys(old_wire), **wire}
            try:
                self.client.patch_status("daemonsets", daemon_set.metadata.name or "", {"status": patch},
                                         namespace=daemon_set.metadata.namespace)
            except errors.NotFound:
                return None
        if daemon_set.spec.min_ready_seconds > 0 and ready != available:
            return float(daemon_set.spec.min_ready_seconds)
        return None


def max_surge_of(daemon_set: DaemonSet) -> int | str | None:
    """AllowsSurge: the maxSurge of a RollingUpdate DaemonSet when it is not zero, else None."""
    strategy = daemon_set.spec.update_strategy
    if strategy.type != "RollingUpdate" or strategy.rolling_update is None:
        return None
    surge = strategy.rolling_update.max_surge
    return surge if surge not in (None, 0, "0%") else None


def updated_pods_on_node(pods: Iterable[Pod], revision_hash: str,
                         generation: str | None) -> tuple[Pod | None, Pod | None] | None:
    """findUpdatedPodsOnNode: (new, old) of the node's pods not being deleted; None when there
    is more than one of either."""
    new_pod = old_pod = None
    for pod in pods:
        if pod.metadata.deletion_timestamp is not None:
            continue
        if is_pod_updated(pod, revision_hash, generation):
            if new_pod is not None:
                return None
            new_pod = pod
        else:
            if old_pod is not None:
                return None
            old_pod = pod
    return new_pod, old_pod

