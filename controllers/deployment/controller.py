"""The Deployment controller: keeps each Deployment's ReplicaSets rolled out to its pod template.

It watches Deployments, ReplicaSets and pods; every event only works out which Deployment it
concerns and enqueues its `namespace/name` key. `sync(key)` then re-reads everything from the
informer caches and takes one step, in the order of k/k `syncDeployment` (semantics.md 1.3):
refuse an empty selector, claim ReplicaSets (adopt orphans, release non-matching ones), report
status only while the Deployment is being deleted, maintain the paused condition, then either
scale (paused or resized), roll back (legacy annotation), or roll out by strategy. The steps
themselves live in `sync`, `rolling`, `recreate`, `rollback` and `progress`; nothing sleeps:
a sync that must look again later returns the delay and the work queue brings it back.
"""

from __future__ import annotations


from minikube_py.client.api import ApiObject, Client
from minikube_py.api.core import Pod
from minikube_py.api.apps import Deployment, ReplicaSet
from minikube_py.api.selectors import Selector
from minikube_py.client.controller import Controller
from minikube_py.client.events import WARNING, EventRecorder
from minikube_py.client.informer import Informer, SharedInformers, cache_key, shared_informers, split_cache_key
from minikube_py.clock import Clock

from controllers.common import claim_replica_sets, get_controller_of
from controllers.deployment import sync as sync_steps
from controllers.deployment import util
from controllers.deployment.recreate import rollout_recreate
from controllers.deployment.rollback import rollback
from controllers.deployment.rolling import rollout_rolling

CONTROLLER_NAME = "deployment-controller"


class DeploymentController(Controller[str]):
    """Reconciles Deployments into ReplicaSets (RollingUpdate, Recreate, rollback, pause, scaling)."""

    # A sync reads every pod of the namespace: see Controller.pace_slow_syncs.
    pace_slow_syncs = True

    def __init__(self, client: Client, clock: Clock | None = None, informers: SharedInformers | None = None,
                 recorder: EventRecorder | None = None, workers: int = 1):
        super().__init__(CONTROLLER_NAME, clock, workers)
        self.client = client
        self.recorder = recorder or EventRecorder(client, CONTROLLER_NAME, self.clock)
        informers = informers or shared_informers(client)
        self.deployments: Informer = self.watch(
            informers.informer("deployments"),
            on_add=self._enqueue_deployment,
            on_update=lambda old, new: self._enqueue_deployment(new),
            on_delete=self._enqueue_deployment,
        )
        self.replica_sets: Informer = self.watch(
            informers.informer("replicasets"),
            on_add=self._replica_set_added,
            on_update=self._replica_set_updated,
            on_delete=self._replica_set_deleted,
        )
        self.pods: Informer = self.watch(
            informers.informer("pods"),
            on_update=self._pod_updated,
            on_delete=self._pod_deleted,
        )

    def event(self, obj: ApiObject, event_type: str, reason: str, message: str) -> None:
        self.recorder.event(obj, event_type, reason, message)

    # -- event handlers: work out the Deployment, enqueue its key -----------------------------

    def _enqueue_deployment(self, deployment: Deployment) -> None:
        self.enqueue(cache_key(deployment))

    def _deployment_controlling(self, obj: ApiObject) -> Deployment | None:
        """The cached Deployment named by obj's controllerRef, if the uid still matches."""
        reference = get_controller_of(obj)
        if reference is None or reference.kind != "Deployment":
            return None
        deployment = self.deployments.get(f"{obj.metadata.namespace}/{reference.name}")
        if deployment is None or deployment.metadata.uid != reference.uid:
            return None
        return deployment

    def _deployments_selecting(self, replica_set: ReplicaSet) -> list[Deployment]:
        """Deployments whose selector matches an orphan ReplicaSet: candidates to adopt it."""
        labels = replica_set.metadata.labels or {}
        matching = []
        for deployment in self.deployments.list(namespace=replica_set.metadata.namespace):
            selector = Selector.from_label_selector(deployment.spec.selector)
            if not selector.is_empty() and selector.matches(labels):
                matching.append(deployment)
        return matching

    def _replica_set_added(self, replica_set: ReplicaSet) -> None:
        owner = self._deployment_controlling(replica_set)
        if owner is not None:
            self._enqueue_deployment(owner)
        elif get_controller_of(replica_set) is None:
            for deployment in self._deployments_selecting(replica_set):
                self._enqueue_deployment(deployment)

    def _replica_set_updated(self, old: ReplicaSet, new: ReplicaSet) -> None:
        if old.metadata.resource_version == new.metadata.resource_version:
            return
        old_reference, new_reference = get_controller_of(old), get_controller_of(new)
        if old_reference is not None and (new_reference is None or old_reference.uid != new_reference.uid):
            # Released or handed over: the previous owner must notice it lost one.
            previous_owner = self._deployment_controlling(old)
            if previous_owner is not None:
                self._enqueue_deployment(previous_owner)
        if new_reference is not None:
            owner = self._deployment_controlling(new)
            if owner is not None:
                self._enqueue_deployment(owner)
            return
        if old.metadata.labels != new.metadata.labels or old_reference is not None:
            for deployment in self._deployments_selecting(new):
                self._enqueue_deployment(deployment)

    def _replica_set_deleted(self, replica_set: ReplicaSet) -> None:
        owner = self._deployment_controlling(replica_set)
        if owner is not None:
            self._enqueue_deployment(owner)

    def _recreate_deployment_of_pod(self, pod: Pod) -> Deployment | None:
        """The Recreate Deployment owning the pod's ReplicaSet: only Recreate waits on pods."""
        reference = get_controller_of(pod)
        if reference is None or reference.kind != "ReplicaSet":
            return None
        replica_set = self.replica_sets.get(f"{pod.metadata.namespace}/{reference.name}")
        if replica_set is None or replica_set.metadata.uid != reference.uid:
            return None
        deployment = self._deployment_controlling(replica_set)
        if deployment is None or deployment.spec.strategy.type != util.RECREATE:
            return None
        return deployment

    def _pod_updated(self, old: Pod, new: Pod) -> None:
        if old.status.phase != new.status.phase:
            deployment = self._recreate_deployment_of_pod(new)
            if deployment is not None:
                self._enqueue_deployment(deployment)

    def _pod_deleted(self, pod: Pod) -> None:
        deployment = self._recreate_deployment_of_pod(pod)
        if deployment is not None:
            self._enqueue_deployment(deployment)

    # -- sync ---------------------------------------------------------------------------------

    def sync(self, key: str) -> float | None:
        cached = self.deployments.get(key)
        if cached is None:
            return None  # deleted: its ReplicaSets go with it through garbage collection
        deployment = cached.model_copy(deep=True)

        selector = Selector.from_label_selector(deployment.spec.selector)
        if selector.is_empty():
            self.event(deployment, WARNING, "SelectingAll",
                       "This deployment is selecting all pods. A non-empty selector is required.")
            generation = deployment.metadata.generation or 0
            if (deployment.status.observed_generation or 0) < generation:
                deployment.status.observed_generation = generation
                sync_steps.write_status(self, deployment)
            return None

        replica_sets = self.replica_sets_for(deployment, selector)

        if deployment.metadata.deletion_timestamp is not None:
            sync_steps.sync_status_only(self, deployment, replica_sets)
            return None

        sync_steps.check_paused_conditions(self, deployment)
        if deployment.spec.paused:
            sync_steps.sync(self, deployment, replica_sets)
            return None

        if sync_steps.rollback_to(deployment) is not None:
            rollback(self, deployment, replica_sets)
            return None

        if sync_steps.is_scaling_event(self, deployment, replica_sets):
            sync_steps.sync(self, deployment, replica_sets)
            return None

        strategy = deployment.spec.strategy.type
        if strategy == util.RECREATE:
            # Only Recreate reads the pods (kube's sync lists them always; a rolling update of a
            # thousand pods would read them all on every ReplicaSet status change for nothing).
            return rollout_recreate(self, deployment, replica_sets, self.pods_by_replica_set_uid(replica_sets))
        if strategy == util.ROLLING_UPDATE:
            return rollout_rolling(self, deployment, replica_sets)
        namespace, name = split_cache_key(key)
        raise ValueError(
            f"deployment/{name} in {namespace}: spec.strategy.type: unsupported value {strategy!r}; "
            "use RollingUpdate or Recreate"
        )

    def replica_sets_for(self, deployment: Deployment, selector: Selector) -> list[ReplicaSet]:
        """The ReplicaSets this Deployment controls, after adopting orphans and releasing strays."""
        candidates = self.replica_sets.list(namespace=deployment.metadata.namespace)
        claimed = claim_replica_sets(self.client, deployment, selector, candidates)
        # A ReplicaSet adopted just now is newer than its cached copy; writing the cached copy
        # later in this sync would only fail with Conflict.
        return [
            replica_set if get_controller_of(replica_set) is not None
            else self.client.get("replicasets", replica_set.metadata.name or "", namespace=replica_set.metadata.namespace)
            for replica_set in claimed
        ]

    def pods_by_replica_set_uid(self, replica_sets: list[ReplicaSet]) -> dict[str, list[Pod]]:
        """Every pod (terminal ones too: Recreate must see them) controlled by each ReplicaSet."""
        pods: dict[str, list[Pod]] = {}
        for replica_set in replica_sets:
            uid = replica_set.metadata.uid or ""
            pods[uid] = [pod for pod in self.pods.by_owner_uid(uid)
                         if (reference := get_controller_of(pod)) is not None and reference.uid == uid]
        return pods
