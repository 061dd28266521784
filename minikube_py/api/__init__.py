"""The API layer: Kubernetes object models, defaulting, validation, selectors and manifest loading.

Everything above the store speaks these types. The models mirror Kubernetes' (same class names,
snake_case attributes, camelCase wire); `parse_object` is how a wire dict from a user, the HTTP
API or the store becomes a checked model. This package imports nothing else of minikube-py, so
every other layer can depend on it.

The package imports its modules lazily (PEP 562): `from minikube_py import api` costs nothing, and
`api.Pod` or `from minikube_py.api import Pod` imports `api.core` on first use. Building every
pydantic model takes about half a second, which each CLI command paid before it did anything;
now a command pays only for the models it touches. The names re-exported here are exactly the
imports in the `TYPE_CHECKING` block below (which mypy and readers see); at run time
`__getattr__` finds a name's module from that same block, and any other attribute that names a
module of this package (`api.printers`) imports that module.
"""

from __future__ import annotations

import ast
import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from minikube_py.api import errors, names, quantity, selectors, times
    from minikube_py.api.apps import (
        ControllerRevision,
        DaemonSet,
        DaemonSetSpec,
        DaemonSetStatus,
        DaemonSetUpdateStrategy,
        Deployment,
        DeploymentCondition,
        DeploymentSpec,
        DeploymentStatus,
        DeploymentStrategy,
        ReplicaSet,
        ReplicaSetCondition,
        ReplicaSetSpec,
        ReplicaSetStatus,
        RollingUpdateDaemonSet,
        RollingUpdateDeployment,
        RollingUpdateStatefulSetStrategy,
        StatefulSet,
        StatefulSetSpec,
        StatefulSetStatus,
        StatefulSetUpdateStrategy,
    )
    from minikube_py.api.configuration import ConfigMap, LocalObjectReference, Secret, ServiceAccount
    from minikube_py.api.core import (
        ConfigMapProjection,
        ConfigMapVolumeSource,
        Container,
        ContainerPort,
        ContainerState,
        ContainerStateRunning,
        ContainerStateTerminated,
        ContainerStateWaiting,
        ContainerStatus,
        DownwardAPIProjection,
        DownwardAPIVolumeFile,
        DownwardAPIVolumeSource,
        EmptyDirVolumeSource,
        EnvVar,
        EnvVarSource,
        Event,
        EventSource,
        ExecAction,
        HostPathVolumeSource,
        HTTPGetAction,
        HTTPHeader,
        KeyToPath,
        Lifecycle,
        LifecycleHandler,
        Namespace,
        NamespaceSpec,
        NamespaceStatus,
        Node,
        NodeAddress,
        NodeCondition,
        NodeSpec,
        NodeStatus,
        NodeSystemInfo,
        ObjectFieldSelector,
        Pod,
        PodCondition,
        PodIP,
        PodReadinessGate,
        PodSecurityContext,
        PodSpec,
        PodStatus,
        PodTemplateSpec,
        Probe,
        ProjectedVolumeSource,
        ResourceRequirements,
        SecretProjection,
        SecretVolumeSource,
        SecurityContext,
        ServiceAccountTokenProjection,
        SleepAction,
        TCPSocketAction,
        Volume,
        VolumeMount,
        VolumeProjection,
    )
    from minikube_py.api.defaults import set_defaults
    from minikube_py.api.loader import ManifestDocument, load_manifests
    from minikube_py.api.meta import (
        LabelSelector,
        LabelSelectorRequirement,
        ObjectMeta,
        ObjectReference,
        OwnerReference,
        WireModel,
    )
    from minikube_py.api.networking import (
        EndpointAddress,
        EndpointConditions,
        EndpointPort,
        Endpoints,
        EndpointSlice,
        EndpointSliceEndpoint,
        EndpointSlicePort,
        EndpointSubset,
        Service,
        ServicePort,
        ServiceSpec,
        ServiceStatus,
    )
    from minikube_py.api.parsing import parse_object
    from minikube_py.api.storage import PersistentVolume, PersistentVolumeClaim, StorageClass
    from minikube_py.api.resources import (
        RESOURCES, ResourceInfo, ServedVersion, resource_and_version_for, resource_for, resource_for_kind)
    from minikube_py.api.validation import validate_update


def _exported_names() -> dict[str, str]:
    """Each re-exported name and the module it comes from, read from the TYPE_CHECKING block."""
    with open(__file__, encoding="utf-8") as source:
        tree = ast.parse(source.read())
    block = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    return {alias.asname or alias.name: (node.module if node.module != __name__ else f"{__name__}.{alias.name}")
            for node in block.body if isinstance(node, ast.ImportFrom) and node.module
            for alias in node.names}


_module_of: dict[str, str] = {}


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if not _module_of:
        _module_of.update(_exported_names())
    module_name = _module_of.get(name)
    if module_name is None:  # a module of this package not imported yet, e.g. `api.printers`
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if module_name == f"{__name__}.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    if not _module_of:
        _module_of.update(_exported_names())
    return sorted(set(globals()) | set(_module_of))
