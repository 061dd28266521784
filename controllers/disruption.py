"""The disruption controller: keeps each PodDisruptionBudget's status, which evictions consult.

As k/k `pkg/controller/disruption` does, for each PDB:
- the pods it covers: its selector in its namespace (none without a selector);
- `expectedPods` and `desiredHealthy`: with `minAvailable` as a number, the covered pods and that
  number; otherwise the replicas the pods' controllers want (a ReplicaSet's, or its Deployment's;
  other kinds through their `/scale`), and from it `minAvailable` as a percent rounded up, or that
  count less `maxUnavailable` (a number, or a percent rounded up). E.g. a Deployment of 5 with
  `maxUnavailable: 30%` expects 5 and desires 5 - ceil(1.5) = 3 healthy;
- `currentHealthy`: covered pods that are Ready and not being deleted, less those an eviction
  let go (`disruptedPods`, forgotten once the pod is gone or after 2 minutes);
- `disruptionsAllowed = max(0, currentHealthy - desiredHealthy)`, and the `DisruptionAllowed`
  condition (`SufficientPods` / `InsufficientPods`).
When the expected count cannot be known (a pod without a controller and a budget that needs one),
the budget fails safe: no disruption allowed, reason `SyncFailed` with the error.
"""

from __future__ import annotations

import math
from typing import Any

from minikube_py import api
from minikube_py.api import errors
from minikube_py.api.core import Pod
from minikube_py.api.policy import DISRUPTION_ALLOWED, PodDisruptionBudget
from minikube_py.api.selectors import Selector
from minikube_py.api.times import format_time, parse_time
from minikube_py.client.api import Client
from minikube_py.client.controller import Controller
from minikube_py.client.informer import SharedInformers, cache_key, shared_informers
from minikube_py.clock import Clock

COMPONENT = "disruption-controller"
# An evicted pod still present after this long no longer counts as disrupted (DeletionTimeout).
DISRUPTED_POD_TIMEOUT_SECONDS = 120.0


class ExpectedScaleError(Exception):
    """The replicas the covered pods' controllers want cannot be found."""


def _scaled(value: int | str, total: int) -> int:
    """An int-or-percent against `total`, percents rounded up (GetScaledValueFromIntOrPercent)."""
    if isinstance(value, int):
        return value
    return math.ceil(int(value.rstrip("%")) * total / 100)


def _healthy(pod: Pod) -> bool:
    ready = pod.status.condition("Ready")
    return pod.metadata.deletion_timestamp is None and ready is not None and ready.status == "True"


class DisruptionController(Controller[str]):
    """Writes PodDisruptionBudget status; keys are `namespace/name`."""

    def __init__(self, client: Client, clock: Clock | None = None, informers: SharedInformers | None = None,
                 workers: int = 1):
        super().__init__(COMPONENT, clock, workers)
        self.client = client
        informers = informers or shared_informers(client)
        self.budgets = self.watch(informers.informer("poddisruptionbudgets"),
                                  on_add=self._budget_changed, on_update=lambda old, new: self._budget_changed(new))
        self.pods = self.watch(informers.informer("pods"), on_add=self._pod_changed,
                               on_update=lambda old, new: self._pod_changed(new), on_delete=self._pod_changed)
        self.replica_sets = self.watch(informers.informer("replicasets"), on_update=self._scale_changed)
        self.deployments = self.watch(informers.informer("deployments"), on_update=self._scale_changed)

    def _budget_changed(self, pdb: PodDisruptionBudget) -> None:
        self.enqueue(cache_key(pdb))

    def _pod_changed(self, pod: Pod) -> None:
        for pdb in self.budgets.list(pod.metadata.namespace):
            if pdb.spec.selector is not None and Selector.from_label_selector(pdb.spec.selector).matches(pod.metadata.labels):
                self.enqueue(cache_key(pdb))

    def _scale_changed(self, old: Any, new: Any) -> None:
        if old.spec.replicas != new.spec.replicas:
            for pdb in self.budgets.list(new.metadata.namespace):
                self.enqueue(cache_key(pdb))

    # -- counting ------------------------------------------------------------------------------

    def covered_pods(self, pdb: PodDisruptionBudget) -> list[Pod]:
        if pdb.spec.selector is None:
            return []
        selector = Selector.from_label_selector(pdb.spec.selector)
        return [pod for pod in self.pods.list(pdb.metadata.namespace) if selector.matches(pod.metadata.labels)]

    def _controller_scale(self, pod: Pod) -> tuple[str, int]:
        """(controller uid, replicas) of the pod's controller; a Deployment's ReplicaSet counts as
        the Deployment."""
        owner = pod.metadata.controller_reference()
        if owner is None:
            raise ExpectedScaleError(f'found no controllers for pod "{pod.metadata.name}"')
        namespace = pod.metadata.namespace
        if owner.kind == "ReplicaSet":
            replica_set = self.replica_sets.get(f"{namespace}/{owner.name}")
            if replica_set is None or replica_set.metadata.uid != owner.uid:
                raise ExpectedScaleError(f'found no controllers for pod "{pod.metadata.name}"')
            parent = replica_set.metadata.controller_reference()
            if parent is not None and parent.kind == "Deployment":
                deployment = self.deployments.get(f"{namespace}/{parent.name}")
                if deployment is not None and deployment.metadata.uid == parent.uid:
                    return deployment.metadata.uid or "", deployment.spec.replicas
            return replica_set.metadata.uid or "", replica_set.spec.replicas
        try:
            info = api.resource_for_kind(owner.api_version, owner.kind)
            scale = self.client.get_scale(info.plural, owner.name, namespace=namespace)
        except (KeyError, errors.ApiError):
            raise ExpectedScaleError(f'found no controllers for pod "{pod.metadata.name}"') from None
        return owner.uid, int((scale.get("spec") or {}).get("replicas") or 0)

    def expected_and_desired(self, pdb: PodDisruptionBudget, pods: list[Pod]) -> tuple[int, int]:
        spec = pdb.spec
        if isinstance(spec.min_available, int) and spec.max_unavailable is None:
            return len(pods), spec.min_available
        controllers: dict[str, int] = {}
        for pod in pods:
            uid, replicas = self._controller_scale(pod)
            controllers[uid] = replicas
        expected = sum(controllers.values())
        if spec.max_unavailable is not None:
            return expected, max(0, expected - _scaled(spec.max_unavailable, expected))
        if spec.min_available is not None:
            return expected, _scaled(spec.min_available, expected)
        return expected, expected

    # -- sync ----------------------------------------------------------------------------------

    def sync(self, key: str) -> float | None:
        pdb = self.budgets.get(key)
        if pdb is None:
            return None
        now = self.clock.now()
        pods = self.covered_pods(pdb)
        present = {pod.metadata.name: pod for pod in pods}
        disrupted: dict[str, str] = {}
        next_expiry: float | None = None
        for name, since in (pdb.status.disrupted_pods or {}).items():
            pod = present.get(name)
            try:
                expires = parse_time(since) + DISRUPTED_POD_TIMEOUT_SECONDS
            except ValueError:
                continue
            if pod is None or pod.metadata.deletion_timestamp is not None or expires <= now:
                continue
            disrupted[name] = since
            next_expiry = expires if next_expiry is None else min(next_expiry, expires)
        try:
            expected, desired = self.expected_and_desired(pdb, pods)
        except ExpectedScaleError as error:
            self._write(pdb, expected=0, desired=0, healthy=0, allowed=0, disrupted=disrupted,
                        reason="SyncFailed", message=str(error))
            return None
        healthy = sum(1 for pod in pods if _healthy(pod) and pod.metadata.name not in disrupted)
        allowed = max(0, healthy - desired) if expected > 0 else 0
        self._write(pdb, expected=expected, desired=desired, healthy=healthy, allowed=allowed,
                    disrupted=disrupted, reason="SufficientPods" if allowed > 0 else "InsufficientPods", message="")
        return None if next_expiry is None else max(0.0, next_expiry - now)

    def _write(self, pdb: PodDisruptionBudget, expected: int, desired: int, healthy: int, allowed: int,
               disrupted: dict[str, str], reason: str, message: str) -> None:
        status = pdb.status
        condition_status = "True" if allowed > 0 else "False"
        current = status.condition(DISRUPTION_ALLOWED)
        transition = (current.last_transition_time if current is not None and current.status == condition_status
                      else format_time(self.clock.now()))
        wanted = {
            "observedGeneration": pdb.metadata.generation,
            "disruptedPods": disrupted or None,
            "disruptionsAllowed": allowed,
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "expectedPods": expected,
            "conditions": [{"type": DISRUPTION_ALLOWED, "status": condition_status,
                            "observedGeneration": pdb.metadata.generation, "lastTransitionTime": transition,
                            "reason": reason, "message": message}],
        }
        if {k: v for k, v in status.to_dict().items() if v is not None} == {k: v for k, v in wanted.items() if v is not None}:
            return
        body = {**pdb.to_dict(), "status": {k: v for k, v in wanted.items() if v is not None}}
        try:
            self.client.replace_status(PodDisruptionBudget.model_validate(body))
        except errors.NotFound:
            pass
