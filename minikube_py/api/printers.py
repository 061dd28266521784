"""Kubernetes' server-side printers: the columns and cells of `get` for each kind, and the Table.

kubectl asks the API server for a `meta.k8s.io/v1` `Table` and prints what it gets, so the
columns (names, types, which are wide-only) and the cell values must be computed the way
kube-apiserver's printers compute them (k/k `pkg/printers/internalversion/printers.go`): a
pod's STATUS walks init containers then containers from last to first, RESTARTS carries the
age of the latest restart, AGE is apimachinery's `HumanDuration` text ("5m"). Our own CLI
prints the same rows with the same code. Everything here is a pure function of wire dicts and
`now` (epoch seconds), so the API server, the CLI and the tests share one source of truth.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable

from minikube_py.api import batch_rows, networking_rows, storage_rows, times
from minikube_py.api.autoscaling_rows import hpa_row_cells

NONE = "<none>"
TABLE_API_VERSION = "meta.k8s.io/v1"
# The values of the `includeObject` query parameter (metav1.IncludeObjectPolicy).
INCLUDE_NONE, INCLUDE_METADATA, INCLUDE_OBJECT = "None", "Metadata", "Object"
INCLUDE_POLICIES = (INCLUDE_NONE, INCLUDE_METADATA, INCLUDE_OBJECT)

Cell = str | int


@dataclass(frozen=True)
class Column:
    """One `TableColumnDefinition`: priority 0 is shown by default, 1 only with `-o wide`."""

    name: str
    type: str = "string"
    description: str = ""
    priority: int = 0
    format: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description, "priority": self.priority}


NAME_COLUMN = Column("Name", format="name", description=(
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name automatically."))
AGE_COLUMN = Column("Age", description=(
    "CreationTimestamp is a timestamp representing the server time when this object was created."))


def age(timestamp: str | None, now: float) -> str:
    """kubectl's `translateTimestampSince`: `<unknown>` without a time, else `HumanDuration`."""
    if not timestamp:
        return "<unknown>"
    return times.human_duration(now - times.parse_time(timestamp))


def format_labels(labels: dict[str, Any] | None) -> str:
    if not labels:
        return NONE
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def format_label_selector(selector: dict[str, Any] | None) -> str:
    """apimachinery's `FormatLabelSelector`: `app=web,tier in (a,b)`, `<none>` when empty."""
    if not selector:
        return NONE
    requirements = [(key, f"{key}={value}") for key, value in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        listed = ",".join(sorted(values))
        text = {
            "In": f"{key} in ({listed})",
            "NotIn": f"{key} notin ({listed})",
            "Exists": key,
            "DoesNotExist": f"!{key}",
        }.get(operator, f"{key} {operator} ({listed})")
        requirements.append((key, text))
    if not requirements:
        return NONE
    return ",".join(text for _, text in sorted(requirements))


def _created_age(obj: dict[str, Any], now: float) -> str:
    return age((obj.get("metadata") or {}).get("creationTimestamp"), now)


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


# -- pods ---------------------------------------------------------------------------------------

def _terminal(phase: str | None) -> bool:
    return phase in ("Succeeded", "Failed")


def _restartable_init_container(container: dict[str, Any] | None) -> bool:
    return container is not None and container.get("restartPolicy") == "Always"


def _latest(current: str | None, candidate: str | None) -> str | None:
    if not candidate:
        return current
    if not current or times.parse_time(candidate) > times.parse_time(current):
        return candidate
    return current


@dataclass
class PodSummary:
    ready: str
    status: str
    restarts: str


def pod_summary(pod: dict[str, Any], now: float) -> PodSummary:
    """READY, STATUS and RESTARTS as kubectl's `printPod` derives them."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_containers = {container["name"]: container for container in spec.get("initContainers") or []}
    total = len(spec.get("containers") or []) + sum(
        1 for container in init_containers.values() if _restartable_init_container(container))
    ready = 0
    restarts = 0
    sidecar_restarts = 0
    last_restart: str | None = None
    last_sidecar_restart: str | None = None

    initializing = False
    for index, container in enumerate(status.get("initContainerStatuses") or []):
        state = container.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        finished = ((container.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
        restarts += container.get("restartCount", 0)
        last_restart = _latest(last_restart, finished)
        sidecar = _restartable_init_container(init_containers.get(container.get("name")))
        if sidecar:
            sidecar_restarts += container.get("restartCount", 0)
            last_sidecar_restart = _latest(last_sidecar_restart, finished)
        if terminated and terminated.get("exitCode", 0) == 0:
            continue
        if sidecar and container.get("started"):
            ready += 1 if container.get("ready") else 0
            continue
        if terminated:
            if terminated.get("reason"):
                reason = "Init:" + terminated["reason"]
            elif terminated.get("signal"):
                reason = f"Init:Signal:{terminated['signal']}"
            else:
                reason = f"Init:ExitCode:{terminated.get('exitCode', 0)}"
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{index}/{len(init_containers)}"
        initializing = True
        break

    initialized = any(condition.get("type") == "Initialized" and condition.get("status") == "True"
                      for condition in status.get("conditions") or [])
    if not initializing or initialized:
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        for container in reversed(status.get("containerStatuses") or []):
            state = container.get("state") or {}
            terminated, waiting = state.get("terminated"), state.get("waiting")
            restarts += container.get("restartCount", 0)
            last_restart = _latest(
                last_restart, ((container.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
            if waiting and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated:
                reason = (f"Signal:{terminated['signal']}" if terminated.get("signal")
                          else f"ExitCode:{terminated.get('exitCode', 0)}")
            elif container.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = any(condition.get("type") == "Ready" and condition.get("status") == "True"
                            for condition in status.get("conditions") or [])
            reason = "Running" if pod_ready else "NotReady"

    deleting = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and not _terminal(phase):
        reason = "Terminating"

    restart_text = str(restarts)
    if restarts and last_restart:
        restart_text = f"{restarts} ({age(last_restart, now)} ago)"
    return PodSummary(ready=f"{ready}/{total}", status=reason, restarts=restart_text)


def pod_row(pod: dict[str, Any], now: float) -> list[Cell]:
    """Name, Ready, Status, Restarts, Age, then the wide IP, Node, Nominated Node, Readiness Gates."""
    summary = pod_summary(pod, now)
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    pod_ips = status.get("podIPs") or []
    ip = pod_ips[0].get("ip") if pod_ips else status.get("podIP")
    gates = spec.get("readinessGates") or []
    gate_text = NONE
    if gates:
        true_conditions = {condition.get("type") for condition in status.get("conditions") or []
                           if condition.get("status") == "True"}
        passed = sum(1 for gate in gates if gate.get("conditionType") in true_conditions)
        gate_text = f"{passed}/{len(gates)}"
    return [_name(pod), summary.ready, summary.status, summary.restarts, _created_age(pod, now),
            ip or NONE, spec.get("nodeName") or NONE, status.get("nominatedNodeName") or NONE, gate_text]


# -- workloads ----------------------------------------------------------------------------------

def _template_wide_cells(template: dict[str, Any], selector: dict[str, Any] | None) -> list[Cell]:
    containers = (template.get("spec") or {}).get("containers") or []
    return [
        ",".join(container.get("name", "") for container in containers),
        ",".join(container.get("image", "") for container in containers),
        format_label_selector(selector),
    ]


def replica_set_row(replica_set: dict[str, Any], now: float) -> list[Cell]:
    """Name, Desired, Current, Ready, Age, then the wide Containers, Images, Selector."""
    spec, status = replica_set.get("spec") or {}, replica_set.get("status") or {}
    return [_name(replica_set), spec.get("replicas", 0), status.get("replicas", 0), status.get("readyReplicas", 0),
            _created_age(replica_set, now)] + _template_wide_cells(spec.get("template") or {}, spec.get("selector"))


def deployment_row(deployment: dict[str, Any], now: float) -> list[Cell]:
    """Name, Ready, Up-to-date, Available, Age, then the wide Containers, Images, Selector."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    return [_name(deployment), f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
            status.get("updatedReplicas", 0), status.get("availableReplicas", 0),
            _created_age(deployment, now)] + _template_wide_cells(spec.get("template") or {}, spec.get("selector"))


def job_row(job: dict[str, Any], now: float) -> list[Cell]:
    """Name, Status, Completions, Duration, Age, then the wide Containers, Images, Selector."""
    spec = job.get("spec") or {}
    return batch_rows.job_cells(job, now) + _template_wide_cells(spec.get("template") or {}, spec.get("selector"))


def cron_job_row(cron_job: dict[str, Any], now: float) -> list[Cell]:
    """Name, Schedule, Timezone, Suspend, Active, Last Schedule, Age, then the wide Containers, Images, Selector."""
    job_spec = ((cron_job.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}
    return batch_rows.cron_job_cells(cron_job, now) + _template_wide_cells(job_spec.get("template") or {},
                                                                           job_spec.get("selector"))


def stateful_set_row(stateful_set: dict[str, Any], now: float) -> list[Cell]:
    """Name, Ready (`ready/replicas`), Age, then the wide Containers and Images."""
    spec = stateful_set.get("spec") or {}
    ready = (stateful_set.get("status") or {}).get("readyReplicas") or 0
    return [_name(stateful_set), f"{ready}/{spec.get('replicas', 1)}", _created_age(stateful_set, now)] + \
        _template_wide_cells(spec.get("template") or {}, spec.get("selector"))[:2]


def daemon_set_row(daemon_set: dict[str, Any], now: float) -> list[Cell]:
    """Name, Desired, Current, Ready, Up-to-date, Available, Node Selector, Age, then the wide
    Containers, Images, Selector (kubectl's printDaemonSet)."""
    spec, status = daemon_set.get("spec") or {}, daemon_set.get("status") or {}
    template = spec.get("template") or {}
    return [_name(daemon_set), status.get("desiredNumberScheduled", 0), status.get("currentNumberScheduled", 0),
            status.get("numberReady", 0), status.get("updatedNumberScheduled", 0), status.get("numberAvailable", 0),
            format_labels((template.get("spec") or {}).get("nodeSelector")), _created_age(daemon_set, now)] + \
        _template_wide_cells(template, spec.get("selector"))


def controller_revision_row(revision: dict[str, Any], now: float) -> list[Cell]:
    """Name, Controller (`statefulset.apps/web`), Revision, Age (kubectl's printControllerRevision)."""
    metadata = revision.get("metadata") or {}
    controller = NONE
    for reference in metadata.get("ownerReferences") or []:
        if reference.get("controller"):
            group = (reference.get("apiVersion") or "").rpartition("/")[0]
            kind = (reference.get("kind") or "").lower()
            controller = f"{kind}.{group}/{reference.get('name', '')}" if group else f"{kind}/{reference.get('name', '')}"
    return [_name(revision), controller, revision.get("revision", 0), _created_age(revision, now)]


# -- cluster objects ----------------------------------------------------------------------------

def namespace_row(namespace: dict[str, Any], now: float) -> list[Cell]:
    return [_name(namespace), (namespace.get("status") or {}).get("phase", ""), _created_age(namespace, now)]


def node_status(node: dict[str, Any]) -> str:
    ready = next((condition for condition in (node.get("status") or {}).get("conditions") or []
                  if condition.get("type") == "Ready"), None)
    text = "Ready" if ready and ready.get("status") == "True" else "NotReady"
    if (node.get("spec") or {}).get("unschedulable"):
        text += ",SchedulingDisabled"
    return text


def node_roles(node: dict[str, Any]) -> str:
    prefix = "node-role.kubernetes.io/"
    roles = sorted(key[len(prefix):] for key in (node["metadata"].get("labels") or {}) if key.startswith(prefix))
    return ",".join(roles) or NONE


def node_row(node: dict[str, Any], now: float) -> list[Cell]:
    """Name, Status, Roles, Age, Version, then the wide addresses, OS image, kernel and runtime."""
    status = node.get("status") or {}
    info = status.get("nodeInfo") or {}
    addresses = status.get("addresses") or []

    def address(kind: str) -> str:
        return next((item["address"] for item in addresses if item.get("type") == kind), NONE)

    return [_name(node), node_status(node), node_roles(node), _created_age(node, now), info.get("kubeletVersion", ""),
            address("InternalIP"), address("ExternalIP"), info.get("osImage") or "<unknown>",
            info.get("kernelVersion") or "<unknown>", info.get("containerRuntimeVersion") or "<unknown>"]


def event_last_seen_time(event: dict[str, Any]) -> str | None:
    """The time an event last happened, with kubectl's fallbacks (series, eventTime, first)."""
    series = event.get("series") or {}
    seen: str | None = (series.get("lastObservedTime") or event.get("lastTimestamp") or event.get("firstTimestamp")
                        or event.get("eventTime") or event["metadata"].get("creationTimestamp"))
    return seen


def event_object(event: dict[str, Any]) -> str:
    involved = event.get("involvedObject") or {}
    return f"{(involved.get('kind') or '').lower()}/{involved.get('name', '')}"


def event_source(event: dict[str, Any]) -> str:
    source = event.get("source") or {}
    text = source.get("component") or event.get("reportingComponent") or ""
    if source.get("host"):
        text += f", {source['host']}"
    return text


def event_row(event: dict[str, Any], now: float) -> list[Cell]:
    """Last Seen, Type, Reason, Object, Subobject, Source, Message, First Seen, Count, Name."""
    count = (event.get("series") or {}).get("count") or event.get("count") or 1
    return [age(event_last_seen_time(event), now), event.get("type", ""), event.get("reason", ""),
            event_object(event), (event.get("involvedObject") or {}).get("fieldPath", ""), event_source(event),
            (event.get("message") or "").strip(), age(event.get("firstTimestamp") or event.get("eventTime"), now),
            str(count), event["metadata"]["name"]]


# -- the printers -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Printer:
    """The columns of one kind and the function computing one object's cells, one per column."""

    columns: tuple[Column, ...]
    row: Callable[[dict[str, Any], float], list[Cell]]

    def visible(self, wide: bool) -> list[int]:
        """Indexes of the columns `get` shows: all with `-o wide`, else the priority-0 ones."""
        return [index for index, column in enumerate(self.columns) if wide or column.priority == 0]

    def name_index(self) -> int | None:
        return next((index for index, column in enumerate(self.columns) if column.format == "name"), None)


def _wide(name: str, description: str, type: str = "string") -> Column:
    return Column(name, type=type, description=description, priority=1)


_WORKLOAD_WIDE = (
    _wide("Containers", "Names of each container in the template."),
    _wide("Images", "Images referenced by each container in the template."),
    _wide("Selector", "Label selector for pods. Existing pods whose labels match this selector are "
                      "assumed to be controlled by this object."),
)

PRINTERS: dict[str, Printer] = {
    "pods": Printer((
        NAME_COLUMN,
        Column("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
        Column("Status", description="The aggregate status of the containers in this pod."),
        Column("Restarts", description="The number of times the containers in this pod have been restarted "
                                       "and when the last container in this pod has restarted."),
        AGE_COLUMN,
        _wide("IP", "IP address allocated to the pod. Routable at least within the cluster."),
        _wide("Node", "NodeName is a request to schedule this pod onto a specific node."),
        _wide("Nominated Node", "nominatedNodeName is set when this pod preempts other pods on the node."),
        _wide("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness."),
    ), pod_row),
    "replicasets": Printer((
        NAME_COLUMN,
        Column("Desired", "integer", "Replicas is the number of desired replicas."),
        Column("Current", "integer", "Replicas is the most recently observed number of replicas."),
        Column("Ready", "integer", "The number of ready replicas for this replica set."),
        AGE_COLUMN,
    ) + _WORKLOAD_WIDE, replica_set_row),
    "deployments": Printer((
        NAME_COLUMN,
        Column("Ready", description="Number of the pod with ready state"),
        Column("Up-to-date", "integer", "Total number of non-terminated pods targeted by this deployment "
                                        "that have the desired template spec."),
        Column("Available", "integer", "Total number of available pods (ready for at least minReadySeconds) "
                                       "targeted by this deployment."),
        AGE_COLUMN,
    ) + _WORKLOAD_WIDE, deployment_row),
    "jobs": Printer((
        NAME_COLUMN,
        Column("Status", description="Status of the job."),
        Column("Completions", description="The desired number of successfully finished pods the job should be run "
                                          "with."),
        Column("Duration", description="Time required to complete the job."),
        AGE_COLUMN,
    ) + _WORKLOAD_WIDE, job_row),
    "cronjobs": Printer((
        NAME_COLUMN,
        Column("Schedule", description="The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
        Column("Timezone", description="The time zone name for the given schedule, see "
                                       "https://en.wikipedia.org/wiki/List_of_tz_database_time_zones."),
        Column("Suspend", "boolean", "This flag tells the controller to suspend subsequent executions."),
        Column("Active", "integer", "A list of pointers to currently running jobs."),
        Column("Last Schedule", description="Information when was the last time the job was successfully scheduled."),
        AGE_COLUMN,
    ) + _WORKLOAD_WIDE, cron_job_row),
    "horizontalpodautoscalers": Printer((
        NAME_COLUMN,
        Column("Reference", description="reference to the target object"),
        Column("Targets", description="the current and target values of the autoscaler's metrics"),
        Column("MinPods", description="the lower limit for the number of replicas"),
        Column("MaxPods", "integer", "the upper limit for the number of replicas"),
        Column("Replicas", "integer", "the current number of replicas"),
        AGE_COLUMN,
    ), lambda hpa, now: [_name(hpa), *hpa_row_cells(hpa), _created_age(hpa, now)]),
    "statefulsets": Printer((
        NAME_COLUMN,
        Column("Ready", description="Number of the pod with ready state"),
        AGE_COLUMN,
    ) + _WORKLOAD_WIDE[:2], stateful_set_row),
    "daemonsets": Printer((
        NAME_COLUMN,
        Column("Desired", "integer", "The total number of nodes that should be running the daemon pod"),
        Column("Current", "integer", "The number of nodes that are running at least 1 daemon pod and are supposed "
                                     "to run the daemon pod."),
        Column("Ready", "integer", "The number of nodes that should be running the daemon pod and have one or "
                                   "more of the daemon pod running with a Ready Condition."),
        Column("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod"),
        Column("Available", "integer", "The number of nodes that should be running the daemon pod and have one or "
                                       "more of the daemon pod running and available (ready for at least "
                                       "spec.minReadySeconds)"),
        Column("Node Selector", description="NodeSelector is a selector which must be true for the pod to fit on "
                                            "a node."),
        AGE_COLUMN,
    ) + _WORKLOAD_WIDE, daemon_set_row),
    "controllerrevisions": Printer((
        NAME_COLUMN,
        Column("Controller", description="Controller of the object"),
        Column("Revision", "number", "Revision indicates the revision of the state represented by Data."),
        AGE_COLUMN,
    ), controller_revision_row),
    "persistentvolumes": Printer((
        NAME_COLUMN,
        Column("Capacity", description="capacity is the description of the persistent volume's resources and "
                                       "capacity."),
        Column("Access Modes", description="accessModes contains all ways the volume can be mounted."),
        Column("Reclaim Policy", description="persistentVolumeReclaimPolicy defines what happens to a persistent "
                                             "volume when released from its claim."),
        Column("Status", description="phase indicates if a volume is available, bound to a claim, or released "
                                     "by a claim."),
        Column("Claim", description="claimRef is part of a bi-directional binding between PersistentVolume and "
                                    "PersistentVolumeClaim."),
        Column("StorageClass", description="StorageClass of the pv"),
        Column("VolumeAttributesClass", description="VolumeAttributesClass of the pv"),
        Column("Reason", description="reason is a brief CamelCase string that describes any failure and is meant "
                                     "for machine parsing and tidy display in the CLI."),
        AGE_COLUMN,
        _wide("VolumeMode", "volumeMode defines if a volume is intended to be used with a formatted filesystem or "
                            "to remain in raw block state."),
    ), storage_rows.persistent_volume_row),
    "persistentvolumeclaims": Printer((
        NAME_COLUMN,
        Column("Status", description="phase represents the current phase of PersistentVolumeClaim."),
        Column("Volume", description="volumeName is the binding reference to the PersistentVolume backing this "
                                     "claim."),
        Column("Capacity", description="capacity represents the actual resources of the underlying volume."),
        Column("Access Modes", description="accessModes contains the actual access modes the volume backing the "
                                           "PVC has."),
        Column("StorageClass", description="StorageClass of the pvc"),
        Column("VolumeAttributesClass", description="VolumeAttributesClass of the pvc"),
        AGE_COLUMN,
        _wide("VolumeMode", "volumeMode defines what type of volume is required by the claim."),
    ), storage_rows.persistent_volume_claim_row),
    "storageclasses": Printer((
        NAME_COLUMN,
        Column("Provisioner", description="provisioner indicates the type of the provisioner."),
        Column("ReclaimPolicy", description="reclaimPolicy controls the reclaimPolicy for dynamically "
                                            "provisioned PersistentVolumes of this storage class."),
        Column("VolumeBindingMode", description="volumeBindingMode indicates how PersistentVolumeClaims should "
                                                "be provisioned and bound."),
        Column("AllowVolumeExpansion", description="allowVolumeExpansion shows whether the storage class allow "
                                                   "volume expand."),
        AGE_COLUMN,
    ), storage_rows.storage_class_row),
    "namespaces": Printer((
        NAME_COLUMN,
        Column("Status", description="The status of the namespace"),
        AGE_COLUMN,
    ), namespace_row),
    "nodes": Printer((
        NAME_COLUMN,
        Column("Status", description="The status of the node"),
        Column("Roles", description="The roles of the node"),
        AGE_COLUMN,
        Column("Version", description="Kubelet Version reported by the node."),
        _wide("Internal-IP", "List of addresses reachable to the node."),
        _wide("External-IP", "List of addresses reachable to the node."),
        _wide("OS-Image", "OS Image reported by the node from /etc/os-release."),
        _wide("Kernel-Version", "Kernel Version reported by the node from 'uname -r'."),
        _wide("Container-Runtime", "ContainerRuntime Version reported by the node through runtime remote API."),
    ), node_row),
    # As in Kubernetes, events lead with LAST SEEN and keep their name as the last, wide-only column.
    "events": Printer((
        Column("Last Seen", description="The time at which the most recent occurrence of this event was recorded."),
        Column("Type", description="Type of this event (Normal, Warning)."),
        Column("Reason", description="This should be a short, machine understandable string that gives the "
                                     "reason for the transition into the object's current status."),
        Column("Object", description="The object that this event is about."),
        _wide("Subobject", "The field of the involved object this event is about, e.g. spec.containers{name}."),
        _wide("Source", "The component reporting this event."),
        Column("Message", description="A human-readable description of the status of this operation."),
        _wide("First Seen", "The time at which the event was first recorded."),
        _wide("Count", "The number of times this event has occurred."),
        Column("Name", format="name", priority=1, description=NAME_COLUMN.description),
    ), event_row),
    "services": Printer((
        NAME_COLUMN,
        Column("Type", description="type determines how the Service is exposed: ClusterIP, NodePort, "
                                   "LoadBalancer or ExternalName."),
        Column("Cluster-IP", description="clusterIP is the IP address of the service, usually assigned "
                                         "randomly; None for a headless service."),
        Column("External-IP", description="The addresses the service answers on outside the cluster: "
                                          "externalIPs and the load balancer's ingress."),
        Column("Port(s)", description="The list of ports that are exposed by this service."),
        AGE_COLUMN,
        _wide("Selector", "Route service traffic to pods with label keys and values matching this selector."),
    ), networking_rows.service_row),
    "endpoints": Printer((
        NAME_COLUMN,
        Column("Endpoints", description="Endpoints of this service: the addresses and ports of its ready pods."),
        AGE_COLUMN,
    ), networking_rows.endpoints_row),
    "endpointslices": Printer((
        NAME_COLUMN,
        Column("AddressType", description="addressType specifies the type of address carried by this "
                                          "EndpointSlice."),
        Column("Ports", description="ports specifies the list of network ports exposed by each endpoint."),
        Column("Endpoints", description="endpoints is a list of unique endpoints in this slice."),
        AGE_COLUMN,
    ), networking_rows.endpoint_slice_row),
    "configmaps": Printer((
        NAME_COLUMN,
        Column("Data", "integer", "The number of keys in data and binaryData."),
        AGE_COLUMN,
    ), networking_rows.config_map_row),
    "secrets": Printer((
        NAME_COLUMN,
        Column("Type", description="The type of the secret"),
        Column("Data", "integer", "The number of keys in the secret's data."),
        AGE_COLUMN,
    ), networking_rows.secret_row),
    "serviceaccounts": Printer((
        NAME_COLUMN,
        Column("Secrets", "integer", "The number of secrets this service account references."),
        AGE_COLUMN,
    ), networking_rows.service_account_row),
    "leases": Printer((
        NAME_COLUMN,
        Column("Holder", description="The holder of the lease (spec.holderIdentity)."),
        AGE_COLUMN,
    ), lambda lease, now: [lease["metadata"]["name"], (lease.get("spec") or {}).get("holderIdentity") or "",
                           age(lease["metadata"].get("creationTimestamp"), now)]),
    "priorityclasses": Printer((
        NAME_COLUMN,
        Column("Value", "integer", "The value of this priority class."),
        Column("Global-Default", "boolean", "globalDefault specifies whether this PriorityClass should be "
                                            "considered as the default priority."),
        AGE_COLUMN,
        Column("PreemptionPolicy", description="PreemptionPolicy is the Policy for preempting pods with lower "
                                               "priority."),
    ), lambda pc, now: [pc["metadata"]["name"], pc.get("value", 0), bool(pc.get("globalDefault")),
                        age(pc["metadata"].get("creationTimestamp"), now), pc.get("preemptionPolicy") or ""]),
    "poddisruptionbudgets": Printer((
        NAME_COLUMN,
        Column("Min Available", description="The minimum number of pods that must be available."),
        Column("Max Unavailable", description="The maximum number of pods that may be unavailable."),
        Column("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
        AGE_COLUMN,
    ), lambda pdb, now: [pdb["metadata"]["name"], str((pdb.get("spec") or {}).get("minAvailable", "N/A")),
                         str((pdb.get("spec") or {}).get("maxUnavailable", "N/A")),
                         (pdb.get("status") or {}).get("disruptionsAllowed", 0),
                         age(pdb["metadata"].get("creationTimestamp"), now)]),
}


# -- the Table ----------------------------------------------------------------------------------

def partial_object_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    """`PartialObjectMetadata`: what a Table row carries by default, the object's metadata alone."""
    return {"kind": "PartialObjectMetadata", "apiVersion": TABLE_API_VERSION,
            "metadata": copy.deepcopy(obj.get("metadata") or {})}


def _row_object(obj: dict[str, Any], include_object: str) -> dict[str, Any] | None:
    if include_object == INCLUDE_NONE:
        return None
    if include_object == INCLUDE_OBJECT:
        return obj
    return partial_object_metadata(obj)


def table(plural: str, objects: list[dict[str, Any]], now: float, resource_version: str | None = None,
          include_object: str = INCLUDE_METADATA) -> dict[str, Any]:
    """The `meta.k8s.io/v1` `Table` of `objects` of kind `plural` (a key of PRINTERS).

    `include_object` is the `includeObject` policy: None (rows without objects), Metadata (the
    default: a `PartialObjectMetadata` per row) or Object (the full object).
    """
    if include_object not in INCLUDE_POLICIES:
        raise ValueError(f"includeObject={include_object!r}: must be one of {', '.join(INCLUDE_POLICIES)}")
    printer = PRINTERS[plural]
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": printer.row(obj, now)}
        row_object = _row_object(obj, include_object)
        if row_object is not None:
            row["object"] = row_object
        rows.append(row)
    metadata = {"resourceVersion": resource_version} if resource_version else {}
    return {"kind": "Table", "apiVersion": TABLE_API_VERSION, "metadata": metadata,
            "columnDefinitions": [column.to_dict() for column in printer.columns],
            "rows": rows}
