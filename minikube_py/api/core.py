"""Core (`v1`) kinds: Pod and the types inside it, Namespace, Node and Event.

Field names and unconditional defaults are Kubernetes' own (k/k `pkg/apis/core/v1/defaults.go`):
a pod written without `restartPolicy` is stored with `Always`, a probe without timings gets
10 s periods, and so on. Defaults that depend on other fields (imagePullPolicy from the image
tag, the namespace) are applied by `api.defaults.set_defaults`.
"""

from __future__ import annotations

from pydantic import Field

from minikube_py.api.configuration import LocalObjectReference
from minikube_py.api.meta import Int32, Int64, IntOrString, ObjectMeta, ObjectReference, ResourceList, WireModel, WithConditions
from minikube_py.api.placement import Affinity, PodSchedulingGate, Taint, Toleration, TopologySpreadConstraint


# --- containers --------------------------------------------------------------------------


class ObjectFieldSelector(WireModel):
    field_path: str
    api_version: str | None = None


class ConfigMapKeySelector(WireModel):
    key: str
    name: str | None = None
    optional: bool | None = None


class SecretKeySelector(WireModel):
    key: str
    name: str | None = None
    optional: bool | None = None


class ResourceFieldSelector(WireModel):
    resource: str
    container_name: str | None = None
    divisor: IntOrString | None = None


class EnvVarSource(WireModel):
    field_ref: ObjectFieldSelector | None = None
    config_map_key_ref: ConfigMapKeySelector | None = None
    secret_key_ref: SecretKeySelector | None = None
    resource_field_ref: ResourceFieldSelector | None = None


class EnvVar(WireModel):
    name: str
    value: str | None = None
    value_from: EnvVarSource | None = None


class ConfigMapEnvSource(WireModel):
    name: str | None = None
    optional: bool | None = None


class SecretEnvSource(WireModel):
    name: str | None = None
    optional: bool | None = None


class EnvFromSource(WireModel):
    prefix: str | None = None
    config_map_ref: ConfigMapEnvSource | None = None
    secret_ref: SecretEnvSource | None = None


class ContainerPort(WireModel):
    container_port: Int32
    name: str | None = None
    protocol: str = "TCP"
    host_port: Int32 | None = None


class ResourceRequirements(WireModel):
    limits: ResourceList | None = None
    requests: ResourceList | None = None


class ExecAction(WireModel):
    command: list[str] | None = None


class HTTPHeader(WireModel):
    name: str
    value: str


class HTTPGetAction(WireModel):
    path: str = "/"
    port: IntOrString
    host: str | None = None
    scheme: str = "HTTP"
    http_headers: list[HTTPHeader] | None = None


class TCPSocketAction(WireModel):
    port: IntOrString
    host: str | None = None


class SleepAction(WireModel):
    seconds: Int64


class LifecycleHandler(WireModel):
    """One hook handler: exactly one of exec, httpGet, sleep (tcpSocket is accepted for
    compatibility, as Kubernetes does, and fails when the hook runs)."""

    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    sleep: SleepAction | None = None


class Lifecycle(WireModel):
    post_start: LifecycleHandler | None = None
    pre_stop: LifecycleHandler | None = None


class Probe(WireModel):
    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    initial_delay_seconds: Int32 = 0
    period_seconds: Int32 = 10
    timeout_seconds: Int32 = 1
    success_threshold: Int32 = 1
    failure_threshold: Int32 = 3
    termination_grace_period_seconds: Int64 | None = None


class Capabilities(WireModel):
    add: list[str] | None = None
    drop: list[str] | None = None


class SeccompProfile(WireModel):
    type: str
    localhost_profile: str | None = None


class SecurityContext(WireModel):
    capabilities: Capabilities | None = None
    privileged: bool | None = None
    run_as_user: Int64 | None = None
    run_as_group: Int64 | None = None
    run_as_non_root: bool | None = None
    read_only_root_filesystem: bool | None = None
    allow_privilege_escalation: bool | None = None
    seccomp_profile: SeccompProfile | None = None


class VolumeMount(WireModel):
    name: str
    mount_path: str
    read_only: bool | None = None
    sub_path: str | None = None
    sub_path_expr: str | None = None


class Container(WireModel):
    name: str
    image: str
    image_pull_policy: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    working_dir: str | None = None
    env: list[EnvVar] | None = None
    env_from: list[EnvFromSource] | None = None
    ports: list[ContainerPort] | None = None
    resources: ResourceRequirements | None = None
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    startup_probe: Probe | None = None
    lifecycle: Lifecycle | None = None
    # Only on init containers, only "Always": a sidecar (kept running beside the app containers).
    restart_policy: str | None = None
    security_context: SecurityContext | None = None
    volume_mounts: list[VolumeMount] | None = None
    stdin: bool | None = None
    stdin_once: bool | None = None
    tty: bool | None = None
    termination_message_path: str = "/dev/termination-log"
    termination_message_policy: str = "File"


class EphemeralContainer(Container):
    """A container added to a running pod for debugging (`kubectl debug`), started once, never
    restarted; `targetContainerName` makes it share that container's PID namespace."""

    target_container_name: str | None = None


# --- pod spec ----------------------------------------------------------------------------


class EmptyDirVolumeSource(WireModel):
    medium: str | None = None
    size_limit: str | None = None


class HostPathVolumeSource(WireModel):
    path: str
    type: str | None = None


class PersistentVolumeClaimVolumeSource(WireModel):
    claim_name: str
    read_only: bool | None = None


# Files from the API (kubelet's "API data" volumes). Kubernetes defaults every defaultMode to
# 0644 (420 on the wire, where modes are decimal); a KeyToPath's or a file's own `mode` has no
# default and falls back to the volume's defaultMode.
DEFAULT_FILE_MODE = 0o644
DEFAULT_TOKEN_EXPIRATION_SECONDS = 3600


class KeyToPath(WireModel):
    key: str = ""
    path: str = ""
    mode: Int32 | None = None


class ConfigMapVolumeSource(WireModel):
    name: str | None = None
    items: list[KeyToPath] | None = None
    default_mode: Int32 | None = DEFAULT_FILE_MODE
    optional: bool | None = None


class SecretVolumeSource(WireModel):
    secret_name: str | None = None
    items: list[KeyToPath] | None = None
    default_mode: Int32 | None = DEFAULT_FILE_MODE
    optional: bool | None = None


class DownwardAPIVolumeFile(WireModel):
    path: str = ""
    field_ref: ObjectFieldSelector | None = None
    resource_field_ref: ResourceFieldSelector | None = None
    mode: Int32 | None = None


class DownwardAPIVolumeSource(WireModel):
    items: list[DownwardAPIVolumeFile] | None = None
    default_mode: Int32 | None = DEFAULT_FILE_MODE


class ConfigMapProjection(WireModel):
    name: str | None = None
    items: list[KeyToPath] | None = None
    optional: bool | None = None


class SecretProjection(WireModel):
    name: str | None = None
    items: list[KeyToPath] | None = None
    optional: bool | None = None


class DownwardAPIProjection(WireModel):
    items: list[DownwardAPIVolumeFile] | None = None


class ServiceAccountTokenProjection(WireModel):
    path: str = ""
    audience: str | None = None
    expiration_seconds: Int64 = DEFAULT_TOKEN_EXPIRATION_SECONDS


class VolumeProjection(WireModel):
    config_map: ConfigMapProjection | None = None
    secret: SecretProjection | None = None
    downward_api: DownwardAPIProjection | None = Field(default=None, alias="downwardAPI")
    service_account_token: ServiceAccountTokenProjection | None = None


class ProjectedVolumeSource(WireModel):
    sources: list[VolumeProjection] | None = None
    default_mode: Int32 | None = DEFAULT_FILE_MODE


class Volume(WireModel):
    name: str
    empty_dir: EmptyDirVolumeSource | None = None
    host_path: HostPathVolumeSource | None = None
    config_map: ConfigMapVolumeSource | None = None
    secret: SecretVolumeSource | None = None
    downward_api: DownwardAPIVolumeSource | None = Field(default=None, alias="downwardAPI")
    projected: ProjectedVolumeSource | None = None
    persistent_volume_claim: PersistentVolumeClaimVolumeSource | None = None


class PodSecurityContext(WireModel):
    run_as_user: Int64 | None = None
    run_as_group: Int64 | None = None
    run_as_non_root: bool | None = None
    supplemental_groups: list[Int64] | None = None
    fs_group: Int64 | None = None
    seccomp_profile: SeccompProfile | None = None


class PodReadinessGate(WireModel):
    condition_type: str


class PodDNSConfigOption(WireModel):
    name: str | None = None
    value: str | None = None


class PodDNSConfig(WireModel):
    nameservers: list[str] | None = None
    searches: list[str] | None = None
    options: list[PodDNSConfigOption] | None = None


class PodSpec(WireModel):
    containers: list[Container] = Field(default_factory=list)
    init_containers: list[Container] | None = None
    ephemeral_containers: list[EphemeralContainer] | None = None
    restart_policy: str = "Always"
    termination_grace_period_seconds: Int64 = 30
    active_deadline_seconds: Int64 | None = None
    share_process_namespace: bool | None = None
    hostname: str | None = None
    subdomain: str | None = None
    node_name: str | None = None
    node_selector: dict[str, str] | None = None
    service_account_name: str | None = None
    automount_service_account_token: bool | None = None
    image_pull_secrets: list[LocalObjectReference] | None = None
    dns_policy: str = "ClusterFirst"
    dns_config: PodDNSConfig | None = None
    enable_service_links: bool | None = None
    scheduler_name: str = "default-scheduler"
    volumes: list[Volume] | None = None
    security_context: PodSecurityContext | None = None
    readiness_gates: list[PodReadinessGate] | None = None
    # Scheduling (api/placement.py); `priority` is set from the PriorityClass by admission.
    affinity: Affinity | None = None
    tolerations: list[Toleration] | None = None
    topology_spread_constraints: list[TopologySpreadConstraint] | None = None
    priority_class_name: str | None = None
    priority: Int32 | None = None
    preemption_policy: str | None = None
    scheduling_gates: list[PodSchedulingGate] | None = None


# --- pod status --------------------------------------------------------------------------


class PodCondition(WireModel):
    type: str
    status: str
    last_probe_time: str | None = None
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class ContainerStateWaiting(WireModel):
    reason: str | None = None
    message: str | None = None


class ContainerStateRunning(WireModel):
    started_at: str | None = None


class ContainerStateTerminated(WireModel):
    exit_code: Int32
    signal: Int32 | None = None
    reason: str | None = None
    message: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    container_id: str | None = None


class ContainerState(WireModel):
    """Exactly one of waiting, running, terminated is set (none: state not known yet)."""

    waiting: ContainerStateWaiting | None = None
    running: ContainerStateRunning | None = None
    terminated: ContainerStateTerminated | None = None


class ContainerStatus(WireModel):
    name: str
    state: ContainerState | None = None
    last_state: ContainerState | None = None
    ready: bool = False
    started: bool | None = None
    restart_count: Int32 = 0
    image: str | None = None
    image_id: str | None = None
    container_id: str | None = None


class PodIP(WireModel):
    ip: str


class PodStatus(WithConditions, WireModel):
    phase: str | None = None
    conditions: list[PodCondition] | None = None
    message: str | None = None
    reason: str | None = None
    host_ip: str | None = None
    pod_ip: str | None = None
    pod_ips: list[PodIP] | None = None
    start_time: str | None = None
    container_statuses: list[ContainerStatus] | None = None
    init_container_statuses: list[ContainerStatus] | None = None
    ephemeral_container_statuses: list[ContainerStatus] | None = None
    qos_class: str | None = None
    nominated_node_name: str | None = None


class Pod(WireModel):
    api_version: str = "v1"
    kind: str = "Pod"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodSpec = Field(default_factory=PodSpec)
    status: PodStatus = Field(default_factory=PodStatus)


class PodTemplateSpec(WireModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodSpec = Field(default_factory=PodSpec)


# --- namespace, node, event --------------------------------------------------------------


class NamespaceSpec(WireModel):
    finalizers: list[str] | None = None


class NamespaceStatus(WireModel):
    phase: str | None = None


class Namespace(WireModel):
    api_version: str = "v1"
    kind: str = "Namespace"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: NamespaceSpec = Field(default_factory=NamespaceSpec)
    status: NamespaceStatus = Field(default_factory=NamespaceStatus)


class NodeSpec(WireModel):
    pod_cidr: str | None = None
    pod_cidrs: list[str] | None = None
    unschedulable: bool | None = None
    taints: list[Taint] | None = None


class NodeCondition(WireModel):
    type: str
    status: str
    last_heartbeat_time: str | None = None
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class NodeAddress(WireModel):
    type: str
    address: str


class NodeSystemInfo(WireModel):
    machine_id: str | None = None
    system_uuid: str | None = None
    boot_id: str | None = None
    kernel_version: str | None = None
    os_image: str | None = None
    container_runtime_version: str | None = None
    kubelet_version: str | None = None
    kube_proxy_version: str | None = None
    operating_system: str | None = None
    architecture: str | None = None


class NodeStatus(WithConditions, WireModel):
    capacity: ResourceList | None = None
    allocatable: ResourceList | None = None
    conditions: list[NodeCondition] | None = None
    addresses: list[NodeAddress] | None = None
    node_info: NodeSystemInfo | None = None


class Node(WireModel):
    api_version: str = "v1"
    kind: str = "Node"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: NodeSpec = Field(default_factory=NodeSpec)
    status: NodeStatus = Field(default_factory=NodeStatus)


class EventSource(WireModel):
    component: str | None = None
    host: str | None = None


class Event(WireModel):
    api_version: str = "v1"
    kind: str = "Event"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    involved_object: ObjectReference = Field(default_factory=ObjectReference)
    reason: str | None = None
    message: str | None = None
    type: str | None = None
    count: Int32 | None = None
    first_timestamp: str | None = None
    last_timestamp: str | None = None
    event_time: str | None = None
    source: EventSource | None = None
    reporting_component: str | None = None
    reporting_instance: str | None = None
    action: str | None = None
