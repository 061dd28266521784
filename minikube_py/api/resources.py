"""The resource registry: which kinds exist and every name they answer to.

The API server routes URLs by plural (`/apis/apps/v1/.../deployments`), kubectl users type
singular names, short names and `deployments.apps`, and manifests name a kind and apiVersion.
`RESOURCES` ties all of these to one `ResourceInfo`, so no other layer keeps its own table.

The table itself is plain data: a resource's model and its kind's own defaulting and validation
are named here as `module:attribute` references inside `minikube_py.api` and imported the first
time something asks for them (`info.model`). A CLI command that only resolves `deploy` to
`deployments.apps` then builds no pydantic model at all; the API server imports each model when
it first serves that kind.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from minikube_py.api.meta import WireModel


def _unchanged(obj: dict[str, Any]) -> dict[str, Any]:
    return obj


def _load(reference: str | None) -> Any:
    """The object a `module:attribute` reference inside minikube_py.api names (None for None)."""
    if reference is None:
        return None
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(f"minikube_py.api.{module}"), attribute)


@dataclass(frozen=True)
class ServedVersion:
    """One version a resource is served at. Kubernetes serves some resources at several versions
    (HorizontalPodAutoscaler: autoscaling/v2 and autoscaling/v1) and stores each once, in its
    storage version; a request at another version is converted on the way in (`to_storage`) and
    every object on the way out (`from_storage`). Both take and give wire dicts, perhaps partial.
    The model and the converters are `module:attribute` references, imported on first use."""

    api_version: str
    model_reference: str
    to_storage_reference: str | None = None
    from_storage_reference: str | None = None

    @cached_property
    def model(self) -> type[WireModel]:
        return _load(self.model_reference)

    @cached_property
    def to_storage(self) -> Callable[[dict[str, Any]], dict[str, Any]]:
        return _load(self.to_storage_reference) or _unchanged

    @cached_property
    def from_storage(self) -> Callable[[dict[str, Any]], dict[str, Any]]:
        return _load(self.from_storage_reference) or _unchanged


@dataclass(frozen=True)
class ResourceInfo:
    kind: str
    api_version: str
    group: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    namespaced: bool
    list_kind: str
    # `module:attribute` references (see the module docstring). Kinds whose defaulting and
    # validation live in their own module (`api.networking_validation`) name them here;
    # `parse_object` and the Registry call them after the shared rules.
    model_reference: str
    defaults_reference: str | None = None
    validate_reference: str | None = None
    validate_update_reference: str | None = None
    # The versions served besides `api_version` (which is the storage and preferred version).
    other_versions: tuple[ServedVersion, ...] = ()

    @cached_property
    def model(self) -> type[WireModel]:
        return _load(self.model_reference)

    @cached_property
    def defaults(self) -> Callable[..., Any] | None:
        return _load(self.defaults_reference)

    @cached_property
    def validate(self) -> Callable[..., Any] | None:
        return _load(self.validate_reference)

    @cached_property
    def validate_update(self) -> Callable[..., Any] | None:
        return _load(self.validate_update_reference)

    @cached_property
    def versions(self) -> tuple[ServedVersion, ...]:
        """Every version this resource is served at, the storage (and preferred) version first."""
        return (ServedVersion(self.api_version, self.model_reference), *self.other_versions)

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
              model: str, defaults: str | None = None, validate: str | None = None,
              validate_update: str | None = None) -> ResourceInfo:
    api_version = f"{group}/v1" if group else "v1"
    return ResourceInfo(kind, api_version, group, plural, kind.lower(), short_names, namespaced, f"{kind}List",
                        model, defaults, validate, validate_update)


def _rules(module: str, *names: str | None) -> tuple[str | None, ...]:
    """`module:name` references to a kind's defaulting and validation functions in one module."""
    return tuple(f"{module}:{name}" if name else None for name in names)


RESOURCES: dict[str, ResourceInfo] = {
    info.plural: info
    for info in (
        _resource("Namespace", "", "namespaces", ("ns",), False, "core:Namespace"),
        _resource("Node", "", "nodes", ("no",), False, "core:Node"),
        _resource("Pod", "", "pods", ("po",), True, "core:Pod"),
        _resource("Event", "", "events", ("ev",), True, "core:Event"),
        _resource("ReplicaSet", "apps", "replicasets", ("rs",), True, "apps:ReplicaSet"),
        _resource("Deployment", "apps", "deployments", ("deploy",), True, "apps:Deployment"),
        _resource("Service", "", "services", ("svc",), True, "networking:Service",
                  *_rules("networking_validation", "default_service", "validate_service", "validate_service_update")),
        _resource("Endpoints", "", "endpoints", ("ep",), True, "networking:Endpoints",
                  *_rules("networking_validation", "default_endpoints", "validate_endpoints")),
        _resource("EndpointSlice", "discovery.k8s.io", "endpointslices", (), True, "networking:EndpointSlice",
                  *_rules("networking_validation", "default_endpoint_slice", "validate_endpoint_slice")),
        _resource("ConfigMap", "", "configmaps", ("cm",), True, "configuration:ConfigMap",
                  *_rules("networking_validation", "default_config_map", "validate_config_map",
                          "validate_config_map_update")),
        _resource("Secret", "", "secrets", (), True, "configuration:Secret",
                  *_rules("networking_validation", "default_secret", "validate_secret", "validate_secret_update")),
        _resource("ServiceAccount", "", "serviceaccounts", ("sa",), True, "configuration:ServiceAccount",
                  *_rules("networking_validation", "default_service_account", "validate_service_account")),
        _resource("Job", "batch", "jobs", (), True, "batch:Job",
                  *_rules("batch_validation", "default_job", "validate_job", "validate_job_update")),
        _resource("CronJob", "batch", "cronjobs", ("cj",), True, "batch:CronJob",
                  *_rules("batch_validation", "default_cron_job", "validate_cron_job", "validate_cron_job_update")),
        _resource("Lease", "coordination.k8s.io", "leases", (), True, "coordination:Lease",
                  *_rules("coordination", None, "validate_lease")),
        _resource("StatefulSet", "apps", "statefulsets", ("sts",), True, "apps:StatefulSet",
                  *_rules("apps_validation", "default_stateful_set", "validate_stateful_set",
                          "validate_stateful_set_update")),
        _resource("DaemonSet", "apps", "daemonsets", ("ds",), True, "apps:DaemonSet",
                  *_rules("apps_validation", "default_daemon_set", "validate_daemon_set",
                          "validate_daemon_set_update")),
        _resource("ControllerRevision", "apps", "controllerrevisions", (), True, "apps:ControllerRevision",
                  *_rules("apps_validation", "default_namespace", "validate_controller_revision",
                          "validate_controller_revision_update")),
        _resource("PersistentVolume", "", "persistentvolumes", ("pv",), False, "storage:PersistentVolume",
                  *_rules("storage_validation", None, "validate_persistent_volume",
                          "validate_persistent_volume_update")),
        _resource("PersistentVolumeClaim", "", "persistentvolumeclaims", ("pvc",), True,
                  "storage:PersistentVolumeClaim",
                  *_rules("storage_validation", "default_namespace", "validate_persistent_volume_claim",
                          "validate_persistent_volume_claim_update")),
        _resource("StorageClass", "storage.k8s.io", "storageclasses", ("sc",), False, "storage:StorageClass",
                  *_rules("storage_validation", None, "validate_storage_class", "validate_storage_class_update")),
        ResourceInfo("HorizontalPodAutoscaler", "autoscaling/v2", "autoscaling", "horizontalpodautoscalers",
                     "horizontalpodautoscaler", ("hpa",), True, "HorizontalPodAutoscalerList",
                     "autoscaling:HorizontalPodAutoscaler",
                     defaults_reference="autoscaling:default_horizontal_pod_autoscaler",
                     validate_reference="autoscaling:validate_horizontal_pod_autoscaler",
                     other_versions=(ServedVersion("autoscaling/v1", "autoscaling_v1:HorizontalPodAutoscaler",
                                                   "autoscaling_v1:to_v2", "autoscaling_v1:from_v2"),)),
        _resource("PriorityClass", "scheduling.k8s.io", "priorityclasses", ("pc",), False, "scheduling:PriorityClass",
                  *_rules("scheduling", "default_priority_class", "validate_priority_class",
                          "validate_priority_class_update")),
        _resource("PodDisruptionBudget", "policy", "poddisruptionbudgets", ("pdb",), True,
                  "policy:PodDisruptionBudget", *_rules("policy", None, "validate_pod_disruption_budget")),
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
