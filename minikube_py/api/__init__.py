"""The API layer: Kubernetes object models, defaulting, validation, selectors and manifest loading.

Everything above the store speaks these types. The models mirror Kubernetes' (same class names,
snake_case attributes, camelCase wire); `parse_object` is how a wire dict from a user, the HTTP
API or the store becomes a checked model. This package imports nothing else of minikube-py, so
every other layer can depend on it.
"""

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

__all__ = [name for name in dir() if not name.startswith("_")]
