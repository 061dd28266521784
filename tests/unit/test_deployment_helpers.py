"""Builders shared by the Deployment controller's unit tests (this module holds no tests itself).

`deployment(...)` and `replica_set(...)` make models without an API server for the pure
arithmetic tests; the controller tests use a real in-memory Registry (see
test_deployment_controller.py).
"""

from __future__ import annotations

from minikube_py.api.apps import Deployment, ReplicaSet
from minikube_py.api.times import format_time

from controllers.deployment import util

START = 1_800_000_000.0
DEPLOYMENT_UID = "deployment-uid"


def template(image: str = "busybox:1", labels: dict | None = None) -> dict:
    return {
        "metadata": {"labels": labels or {"app": "web"}},
        "spec": {"containers": [{"name": "main", "image": image}]},
    }


def deployment(
    replicas: int = 3,
    max_surge: int | str | None = "25%",
    max_unavailable: int | str | None = "25%",
    strategy: str = "RollingUpdate",
    image: str = "busybox:1",
    annotations: dict | None = None,
    status: dict | None = None,
    generation: int = 1,
    **spec,
) -> Deployment:
    strategy_wire: dict = {"type": strategy}
    if strategy == "RollingUpdate":
        strategy_wire["rollingUpdate"] = {"maxSurge": max_surge, "maxUnavailable": max_unavailable}
    return Deployment.model_validate({
        "metadata": {"name": "web", "namespace": "default", "uid": DEPLOYMENT_UID, "generation": generation,
                     "annotations": annotations},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "template": template(image),
                 "strategy": strategy_wire, **spec},
        "status": status or {},
    })


def replica_set(
    name: str,
    replicas: int,
    available: int | None = None,
    image: str = "busybox:1",
    created: float = START,
    annotations: dict | None = None,
    revision: int | None = None,
    status_replicas: int | None = None,
    uid: str | None = None,
) -> ReplicaSet:
    annotations = dict(annotations or {})
    if revision is not None:
        annotations[util.REVISION_ANNOTATION] = str(revision)
    labelled = template(image, {"app": "web", util.POD_TEMPLATE_HASH_LABEL: name})
    return ReplicaSet.model_validate({
        "metadata": {
            "name": name, "namespace": "default", "uid": uid or f"uid-{name}", "creationTimestamp": format_time(created),
            "annotations": annotations or None,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                 "uid": DEPLOYMENT_UID, "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web", util.POD_TEMPLATE_HASH_LABEL: name}},
                 "template": labelled},
        "status": {"replicas": replicas if status_replicas is None else status_replicas,
                   "availableReplicas": replicas if available is None else available},
    })


# -- a one-namespace cluster for driving DeploymentController.sync ------------------------------


class RecordingRecorder:
    """Keeps the events the controller records, in order, as (type, reason, message)."""

    def __init__(self):
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj, event_type: str, reason: str, message: str) -> None:
        self.events.append((event_type, reason, message))

    def messages(self, reason: str) -> list[str]:
        return [message for _, event_reason, message in self.events if event_reason == reason]


class Cluster:
    """An in-memory API with the Deployment controller and a small stand-in for the ReplicaSet
    controller, driven step by step: `sync()` runs one Deployment sync against fresh caches,
    `run_replica_sets()` makes pods match each ReplicaSet and writes ReplicaSet status.

    Pods become Ready at once unless `auto_ready` is off (then tests call `make_ready`). With
    `bind_pods`, pods are bound to a node, so deleting one leaves it Terminating until
    `finish_terminating()`.
    """

    def __init__(self, auto_ready: bool = True, bind_pods: bool = False):
        from minikube_py.apiserver.registry import Registry
        from minikube_py.client.api import ApiClient
        from minikube_py.client.informer import SharedInformers
        from minikube_py.clock import FakeClock
        from minikube_py.store import Store

        from controllers.deployment import DeploymentController

        self.clock = FakeClock(START)
        self.client = ApiClient.local(Registry(Store(":memory:"), clock=self.clock))
        self.informers = SharedInformers(self.client)
        self.recorder = RecordingRecorder()
        self.controller = DeploymentController(self.client, self.clock, informers=self.informers,
                                               recorder=self.recorder)
        self.auto_ready = auto_ready
        self.bind_pods = bind_pods

    # -- objects --

    def create_deployment(self, replicas: int = 3, image: str = "busybox:1", **spec_fields) -> Deployment:
        from minikube_py import api

        spec = {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "template": template(image)}
        spec.update(spec_fields)
        wire = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
                "spec": spec}
        return self.client.create(api.parse_object(wire))

    def deployment(self) -> Deployment:
        return self.client.get("deployments", "web", namespace="default")

    def patch_deployment(self, patch: dict) -> Deployment:
        return self.client.patch("deployments", "web", patch, namespace="default")

    def set_image(self, image: str) -> Deployment:
        return self.patch_deployment({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": image}]}}}})

    def replica_sets(self) -> list[ReplicaSet]:
        items, _ = self.client.list("replicasets", namespace="default")
        return util.by_creation(items)

    def replica_set_for(self, image: str) -> ReplicaSet | None:
        for replica_set in self.replica_sets():
            if replica_set.spec.template.spec.containers[0].image == image:
                return replica_set
        return None

    def sizes(self) -> dict[str, int]:
        """spec.replicas by image, oldest ReplicaSet first."""
        return {rs.spec.template.spec.containers[0].image: rs.spec.replicas for rs in self.replica_sets()}

    def pods(self) -> list:
        items, _ = self.client.list("pods", namespace="default")
        return items

    def revision(self) -> str:
        items, revision = self.client.list("namespaces")
        return revision

    # -- driving --

    def sync(self) -> float | None:
        self.informers.refresh()
        return self.controller.sync("default/web")

    def step(self) -> float | None:
        requeue = self.sync()
        self.run_replica_sets()
        return requeue

    def converge(self, max_steps: int = 40) -> None:
        """Step until a whole step writes nothing."""
        for _ in range(max_steps):
            before = self.revision()
            self.step()
            if self.revision() == before:
                return
        raise AssertionError(f"no steady state after {max_steps} steps: {self.sizes()}")

    def scaling_events(self) -> list[str]:
        return self.recorder.messages("ScalingReplicaSet")

    # -- the ReplicaSet controller stand-in --

    def run_replica_sets(self) -> None:
        from minikube_py.api.core import Pod

        from controllers.common import get_controller_of, is_pod_active, is_pod_available, is_pod_ready

        pods = self.pods()
        for replica_set in self.replica_sets():
            owned = [pod for pod in pods
                     if (reference := get_controller_of(pod)) is not None and reference.uid == replica_set.metadata.uid]
            active = [pod for pod in owned if is_pod_active(pod)]
            missing = replica_set.spec.replicas - len(active)
            for _ in range(missing):
                template_wire = replica_set.spec.template.to_dict()
                spec = template_wire["spec"]
                if self.bind_pods:
                    spec["nodeName"] = "node-1"
                pod = self.client.create(Pod.model_validate({
                    "metadata": {"generateName": f"{replica_set.metadata.name}-", "namespace": "default",
                                 "labels": template_wire["metadata"]["labels"],
                                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                      "name": replica_set.metadata.name,
                                                      "uid": replica_set.metadata.uid,
                                                      "controller": True, "blockOwnerDeletion": True}]},
                    "spec": spec,
                }))
                self._set_pod_status(pod, ready=self.auto_ready)
                active.append(self.client.get("pods", pod.metadata.name, namespace="default"))
            if missing < 0:
                # Not-ready pods go first, as the real controller's ranking does.
                for pod in sorted(active, key=is_pod_ready)[:-missing]:
                    self.client.delete("pods", pod.metadata.name, namespace="default")
                    active.remove(pod)
            now = self.clock.now()
            min_ready = replica_set.spec.min_ready_seconds
            status = {"replicas": len(active) or None,
                      "readyReplicas": sum(is_pod_ready(pod) for pod in active) or None,
                      "availableReplicas": sum(is_pod_available(pod, min_ready, now) for pod in active) or None,
                      "observedGeneration": replica_set.metadata.generation}
            if replica_set.status.to_dict() != {k: v for k, v in status.items() if v is not None}:
                self.client.patch_status("replicasets", replica_set.metadata.name,
                                         {"status": status}, namespace="default")

    def _set_pod_status(self, pod, ready: bool) -> None:
        condition = {"type": "Ready", "status": "True" if ready else "False",
                     "lastTransitionTime": format_time(self.clock.now())}
        self.client.patch_status("pods", pod.metadata.name,
                                 {"status": {"phase": "Running", "conditions": [condition]}}, namespace="default")

    def make_ready(self, image: str | None = None, count: int | None = None) -> None:
        """Turn pods (of the ReplicaSet running `image`; at most `count`) Ready, then refresh
        ReplicaSet status."""
        pods = [pod for pod in self.pods() if image is None or pod.spec.containers[0].image == image]
        for pod in pods[:count]:
            self._set_pod_status(pod, ready=True)
        self.run_replica_sets()

    def finish_terminating(self) -> None:
        """The node agent's part: pods marked for deletion are removed for good."""
        for pod in self.pods():
            if pod.metadata.deletion_timestamp is not None:
                self.client.delete("pods", pod.metadata.name, namespace="default", grace_period_seconds=0)
