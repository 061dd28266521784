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
