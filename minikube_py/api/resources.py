"""The resource registry: which kinds exist and every name they answer to.

The API server routes URLs by plural (`/apis/apps/v1/.../deployments`), kubectl users type
singular names, short names and `deployments.apps`, and manifests name a kind and apiVersion.
`RESOURCES` ties all of these to one `ResourceInfo`, so no other layer keeps its own table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from minikube_py.api import apps_validation, autoscaling_v1, batch_validation, storage_validation
from minikube_py.api import networking_validation as rules
from minikube_py.api.apps import ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet
from minikube_py.api.batch import CronJob, Job
from minikube_py.api.configuration import ConfigMap, Secret, ServiceAccount
from minikube_py.api.autoscaling import (
    HorizontalPodAutoscaler, default_horizontal_pod_autoscaler, validate_horizontal_pod_autoscaler)
from minikube_py.api.coordination import Lease, validate_lease
from minikube_py.api.core import Event, Namespace, Node, Pod
from minikube_py.api.meta import WireModel
from minikube_py.api.networking import EndpointSlice, Endpoints, Service
from minikube_py.api.storage import PersistentVolume, PersistentVolumeClaim, StorageClass
from minikube_py.api.policy import PodDisruptionBudget, validate_pod_disruption_budget
from minikube_py.api.scheduling import (
    PriorityClass,
    default_priority_class,
    validate_priority_class,
    validate_priority_class_update,
)


def _unchanged(obj: dict[str, Any]) -> dict[str, Any]:
    return obj


@dataclass(frozen=True)
class ServedVersion:
    """One version a resource is served at. Kubernetes serves some resources at several versions
    (HorizontalPodAutoscaler: autoscaling/v2 and autoscaling/v1) and stores each once, in its
    storage version; a request at another version is converted on the way in (`to_storage`) and
    every object on the way out (`from_storage`). Both take and give wire dicts, perhaps partial."""

    api_version: str
    model: type[WireModel]
    to_storage: Callable[[dict[str, Any]], dict[str, Any]] = _unchanged
    from_storage: Callable[[dict[str, Any]], dict[str, Any]] = _unchanged


@dataclass(frozen=True)
class ResourceInfo:
    kind: str
    api_version: str
    group: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    namespaced: bool
    model: type[WireModel]
    list_kind: str
    # Kinds whose defaulting and validation live in their own module (`api.networking_validation`)
    # carry them here; `parse_object` and the Registry call them after the shared rules.
    defaults: Callable[..., Any] | None = None
    validate: Callable[..., Any] | None = None
    validate_update: Callable[..., Any] | None = None
    # The versions served besides `api_version` (which is the storage and preferred version).
    other_versions: tuple[ServedVersion, ...] = ()

    @property
    def versions(self) -> tuple[ServedVersion, ...]:
        """Every version this resource is served at, the storage (and preferred) version first."""
        return (ServedVersion(self.api_version, self.model), *self.other_versions)

    def version(self, api_version: str) -> ServedVersion:
        """The served version `api_version` (group/version); KeyError when it is not served."""
        for served in self.versions:
            if served.api_version == api_version:
                return served
        raise KeyError(unknown_kind_message(api_version, self.kind))

    def name_at(self, api_version: str) -> str:
        """How to name this resource at a version: the plural at the storage version, kubectl's
        `PLURAL.VERSION.GROUP` at another (`horizontalpodautoscalers.v1.autoscaling`)."""
        if api_version == self.api_version:
            return self.plural
        return f"{self.plural}.{api_version.rpartition('/')[2]}.{self.group}".rstrip(".")

    @property
    def qualified_kind(self) -> str:
        """`Pod`, `Deployment.apps`: the kind as Kubernetes names it in error messages."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def qualified_plural(self) -> str:
        """`pods`, `deployments.apps`: the resource as NotFound and Conflict messages name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _resource(kind: str, group: str, plural: str, short_names: tuple[str, ...], namespaced: bool,
              model: type[WireModel],
              defaults: Callable[..., Any] | None = None, validate: Callable[..., Any] | None = None,
              validate_update: Callable[..., Any] | None = None) -> ResourceInfo:
    api_version = f"{group}/v1" if group else "v1"
    return ResourceInfo(kind, api_version, group, plural, kind.lower(), short_names, namespaced, model, f"{kind}List",
                        defaults, validate, validate_update)


RESOURCES: dict[str, ResourceInfo] = {
    info.plural: info
    for info in (
        _resource("Namespace", "", "namespaces", ("ns",), False, Namespace),
        _resource("Node", "", "nodes", ("no",), False, Node),
        _resource("Pod", "", "pods", ("po",), True, Pod),
        _resource("Event", "", "events", ("ev",), True, Event),
        _resource("ReplicaSet", "apps", "replicasets", ("rs",), True, ReplicaSet),
        _resource("Deployment", "apps", "deployments", ("deploy",), True, Deployment),
        _resource("Service", "", "services", ("svc",), True, Service,
                  rules.default_service, rules.validate_service, rules.validate_service_update),
        _resource("Endpoints", "", "endpoints", ("ep",), True, Endpoints,
                  rules.default_endpoints, rules.validate_endpoints),
        _resource("EndpointSlice", "discovery.k8s.io", "endpointslices", (), True, EndpointSlice,
                  rules.default_endpoint_slice, rules.validate_endpoint_slice),
        _resource("ConfigMap", "", "configmaps", ("cm",), True, ConfigMap,
                  rules.default_config_map, rules.validate_config_map, rules.validate_config_map_update),
        _resource("Secret", "", "secrets", (), True, Secret,
                  rules.default_secret, rules.validate_secret, rules.validate_secret_update),
        _resource("ServiceAccount", "", "serviceaccounts", ("sa",), True, ServiceAccount,
                  rules.default_service_account, rules.validate_service_account),
        _resource("Job", "batch", "jobs", (), True, Job,
                  batch_validation.default_job, batch_validation.validate_job, batch_validation.validate_job_update),
        _resource("CronJob", "batch", "cronjobs", ("cj",), True, CronJob,
                  batch_validation.default_cron_job, batch_validation.validate_cron_job,
                  batch_validation.validate_cron_job_update),
        _resource("Lease", "coordination.k8s.io", "leases", (), True, Lease, validate=validate_lease),
        _resource("StatefulSet", "apps", "statefulsets", ("sts",), True, StatefulSet,
                  apps_validation.default_stateful_set, apps_validation.validate_stateful_set,
                  apps_validation.validate_stateful_set_update),
        _resource("DaemonSet", "apps", "daemonsets", ("ds",), True, DaemonSet,
                  apps_validation.default_daemon_set, apps_validation.validate_daemon_set,
                  apps_validation.validate_daemon_set_update),
        _resource("ControllerRevision", "apps", "controllerrevisions", (), True, ControllerRevision,
                  apps_validation.default_namespace, apps_validation.validate_controller_revision,
                  apps_validation.validate_controller_revision_update),
        _resource("PersistentVolume", "", "persistentvolumes", ("pv",), False, PersistentVolume,
                  validate=storage_validation.validate_persistent_volume,
                  validate_update=storage_validation.validate_persistent_volume_update),
        _resource("PersistentVolumeClaim", "", "persistentvolumeclaims", ("pvc",), True, PersistentVolumeClaim,
                  storage_validation.default_namespace, storage_validation.validate_persistent_volume_claim,
                  storage_validation.validate_persistent_volume_claim_update),
        _resource("StorageClass", "storage.k8s.io", "storageclasses", ("sc",), False, StorageClass,
                  validate=storage_validation.validate_storage_class,
                  validate_update=storage_validation.validate_storage_class_update),
        ResourceInfo("HorizontalPodAutoscaler", "autoscaling/v2", "autoscaling", "horizontalpodautoscalers",
                     "horizontalpodautoscaler", ("hpa",), True, HorizontalPodAutoscaler,
                     "HorizontalPodAutoscalerList", default_horizontal_pod_autoscaler,
                     validate_horizontal_pod_autoscaler,
                     other_versions=(ServedVersion(autoscaling_v1.API_VERSION, autoscaling_v1.HorizontalPodAutoscaler,
                                                   autoscaling_v1.to_v2, autoscaling_v1.from_v2),)),
        _resource("PriorityClass", "scheduling.k8s.io", "priorityclasses", ("pc",), False, PriorityClass,
                  default_priority_class, validate_priority_class, validate_priority_class_update),
        _resource("PodDisruptionBudget", "policy", "poddisruptionbudgets", ("pdb",), True, PodDisruptionBudget,
                  validate=validate_pod_disruption_budget),
    )
}

_BY_NAME: dict[str, ResourceInfo] = {}
for _info in RESOURCES.values():
    for _name in (_info.plural, _info.singular, *_info.short_names):
        _BY_NAME[_name] = _info


def resource_for(name: str) -> ResourceInfo:
    """The resource a user or URL names: `pods`, `pod`, `po`, `Pod`, `deployments.apps`, `deploy.apps`,
    and with a version, `hpa.v1.autoscaling` (kubectl's RESOURCE.VERSION.GROUP).

    Raises KeyError naming the resource when there is no such type.
    """
    return resource_and_version_for(name)[0]


def resource_and_version_for(name: str) -> tuple[ResourceInfo, str]:
    """`resource_for`, and the apiVersion the name asks for (the storage version without one):
    `hpa.v1.autoscaling` -> (horizontalpodautoscalers, "autoscaling/v1")."""
    lowered = name.lower()
    base, _, group = lowered.partition(".")
    info = _BY_NAME.get(base)
    if info is not None:
        if not group or group == info.group:
            return info, info.api_version
        for served in info.versions:
            version = served.api_version.rpartition("/")[2]
            if group == f"{version}.{info.group}".strip("."):
                return info, served.api_version
    raise KeyError(f'the server doesn\'t have a resource type "{name}"')


def resource_for_kind(api_version: str, kind: str) -> ResourceInfo:
    """The resource of a manifest's apiVersion and kind; KeyError when it is not served."""
    for info in RESOURCES.values():
        if info.kind == kind and any(served.api_version == api_version for served in info.versions):
            return info
    raise KeyError(unknown_kind_message(api_version, kind))


def unknown_kind_message(api_version: object, kind: object) -> str:
    supported = ", ".join(f"{served.api_version} {info.kind}" for info in RESOURCES.values() for served in info.versions)
    return f'no matches for kind "{kind}" in version "{api_version}" (supported: {supported})'
