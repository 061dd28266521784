"""kubectl's table printers: the columns, cell values and alignment of `get`, `events` and `describe`.

Users read our tables with kubectl habits, so the cells are computed the way kubectl's
server-side printers compute them (k/k `pkg/printers/internalversion/printers.go`): a pod's
STATUS walks init containers then containers from last to first, RESTARTS carries the age of
the latest restart, AGE is apimachinery's `HumanDuration`. Alignment is Go's `text/tabwriter`
algorithm, so a column block ends where a line has fewer cells, exactly as in kubectl's output.
Everything here works on wire dicts and takes `now` as an argument, which keeps it pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from minikube_py.api import times

# cli-runtime `printers/tabwriter.go`: minwidth 6, padding 3, widths remembered across flushes.
GET_MIN_WIDTH = 6
GET_PADDING = 3
# kubectl describe's `tabbedString`: minwidth 0, padding 2.
DESCRIBE_PADDING = 2

NONE = "<none>"


def align_columns(text: str, min_width: int = 0, padding: int = DESCRIBE_PADDING,
                  remembered_widths: list[int] | None = None) -> str:
    """Go's `text/tabwriter`: tab-terminated cells of consecutive lines form aligned columns.

    A column block is a run of consecutive lines that all have a tab-terminated cell in that
    column; a line with fewer cells ends the block (so `Containers:` in `describe` starts a new
    alignment). The last cell of a line is never padded. `remembered_widths` plays the
    `RememberWidths` flag: widths only grow, which keeps `get -w` rows under their header.
    """
    lines = [line.split("\t") for line in text.split("\n")]
    output: list[str] = []
    widths: list[int] = []

    def write_lines(first: int, last: int) -> None:
        for line in lines[first:last]:
            pieces = []
            for column, cell in enumerate(line):
                if column < len(line) - 1 and column < len(widths):
                    pieces.append(cell.ljust(widths[column]))
                else:
                    pieces.append(cell)
            output.append("".join(pieces))

    def format_block(first: int, last: int) -> None:
        column = len(widths)
        line_index = first
        while line_index < last:
            if column >= len(lines[line_index]) - 1:
                line_index += 1
                continue
            write_lines(first, line_index)
            first = line_index
            width = min_width
            while line_index < last and column < len(lines[line_index]) - 1:
                width = max(width, len(lines[line_index][column]) + padding)
                line_index += 1
            if remembered_widths is not None:
                if column < len(remembered_widths):
                    width = max(width, remembered_widths[column])
                    remembered_widths[column] = width
                else:
                    remembered_widths.append(width)
            widths.append(width)
            format_block(first, line_index)
            widths.pop()
            first = line_index
        write_lines(first, last)

    format_block(0, len(lines))
    return "\n".join(output)


@dataclass
class Table:
    """Header plus rows of cells, rendered like kubectl's `get` printer."""

    header: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def render(self, with_header: bool = True, remembered_widths: list[int] | None = None) -> str:
        lines = ([self.header] if with_header else []) + self.rows
        text = "\n".join("\t".join(cells) for cells in lines)
        return align_columns(text, GET_MIN_WIDTH, GET_PADDING, remembered_widths)


def age(timestamp: str | None, now: float) -> str:
    """kubectl's `translateTimestampSince`: `<unknown>` without a time, else `HumanDuration`."""
    if not timestamp:
        return "<unknown>"
    return times.human_duration(now - times.parse_time(timestamp))


def format_labels(labels: dict | None) -> str:
    if not labels:
        return NONE
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def format_label_selector(selector: dict | None) -> str:
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


def _terminal(phase: str | None) -> bool:
    return phase in ("Succeeded", "Failed")


def _restartable_init_container(container: dict | None) -> bool:
    return bool(container) and container.get("restartPolicy") == "Always"


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


def pod_summary(pod: dict, now: float) -> PodSummary:
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


def pod_cells(pod: dict, now: float, wide: bool) -> list[str]:
    summary = pod_summary(pod, now)
    cells = [summary.ready, summary.status, summary.restarts, age(pod["metadata"].get("creationTimestamp"), now)]
    if wide:
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
        cells += [ip or NONE, spec.get("nodeName") or NONE, status.get("nominatedNodeName") or NONE, gate_text]
    return cells


def _template_wide_cells(template: dict, selector: dict | None) -> list[str]:
    containers = (template.get("spec") or {}).get("containers") or []
    return [
        ",".join(container.get("name", "") for container in containers),
        ",".join(container.get("image", "") for container in containers),
        format_label_selector(selector),
    ]


def replica_set_cells(replica_set: dict, now: float, wide: bool) -> list[str]:
    spec, status = replica_set.get("spec") or {}, replica_set.get("status") or {}
    cells = [str(spec.get("replicas", 0)), str(status.get("replicas", 0)), str(status.get("readyReplicas", 0)),
             age(replica_set["metadata"].get("creationTimestamp"), now)]
    if wide:
        cells += _template_wide_cells(spec.get("template") or {}, spec.get("selector"))
    return cells


def deployment_cells(deployment: dict, now: float, wide: bool) -> list[str]:
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    cells = [f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 0)}", str(status.get("updatedReplicas", 0)),
             str(status.get("availableReplicas", 0)), age(deployment["metadata"].get("creationTimestamp"), now)]
    if wide:
        cells += _template_wide_cells(spec.get("template") or {}, spec.get("selector"))
    return cells


def namespace_cells(namespace: dict, now: float, wide: bool) -> list[str]:
    return [(namespace.get("status") or {}).get("phase", ""), age(namespace["metadata"].get("creationTimestamp"), now)]


def node_status(node: dict) -> str:
    ready = next((condition for condition in (node.get("status") or {}).get("conditions") or []
                  if condition.get("type") == "Ready"), None)
    text = "Ready" if ready and ready.get("status") == "True" else "NotReady"
    if (node.get("spec") or {}).get("unschedulable"):
        text += ",SchedulingDisabled"
    return text


def node_roles(node: dict) -> str:
    prefix = "node-role.kubernetes.io/"
    roles = sorted(key[len(prefix):] for key in (node["metadata"].get("labels") or {}) if key.startswith(prefix))
    return ",".join(roles) or NONE


def node_cells(node: dict, now: float, wide: bool) -> list[str]:
    status = node.get("status") or {}
    info = status.get("nodeInfo") or {}
    cells = [node_status(node), node_roles(node), age(node["metadata"].get("creationTimestamp"), now),
             info.get("kubeletVersion", "")]
    if wide:
        addresses = status.get("addresses") or []

        def address(kind: str) -> str:
            return next((item["address"] for item in addresses if item.get("type") == kind), NONE)

        cells += [address("InternalIP"), address("ExternalIP"), info.get("osImage") or "<unknown>",
                  info.get("kernelVersion") or "<unknown>", info.get("containerRuntimeVersion") or "<unknown>"]
    return cells


def event_last_seen_time(event: dict) -> str | None:
    """The time an event last happened, with kubectl's fallbacks (series, eventTime, first)."""
    series = event.get("series") or {}
    return (series.get("lastObservedTime") or event.get("lastTimestamp") or event.get("firstTimestamp")
            or event.get("eventTime") or event["metadata"].get("creationTimestamp"))


def event_object(event: dict) -> str:
    involved = event.get("involvedObject") or {}
    return f"{(involved.get('kind') or '').lower()}/{involved.get('name', '')}"


def event_source(event: dict) -> str:
    source = event.get("source") or {}
    text = source.get("component") or event.get("reportingComponent") or ""
    if source.get("host"):
        text += f", {source['host']}"
    return text


def event_cells(event: dict, now: float, wide: bool) -> list[str]:
    first_seen = age(event.get("firstTimestamp") or event.get("eventTime"), now)
    cells = [age(event_last_seen_time(event), now), event.get("type", ""), event.get("reason", ""),
             event_object(event)]
    if wide:
        cells += [(event.get("involvedObject") or {}).get("fieldPath", ""), event_source(event)]
    cells.append((event.get("message") or "").strip())
    if wide:
        count = (event.get("series") or {}).get("count") or event.get("count") or 1
        cells += [first_seen, str(count), event["metadata"]["name"]]
    return cells


@dataclass(frozen=True)
class Columns:
    """The printer of one kind: its header (plain and `-o wide` extras) and its cell function."""

    header: list[str]
    wide_header: list[str]
    cells: Callable[[dict, float, bool], list[str]]


COLUMNS = {
    "pods": Columns(["READY", "STATUS", "RESTARTS", "AGE"],
                    ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"], pod_cells),
    "replicasets": Columns(["DESIRED", "CURRENT", "READY", "AGE"],
                           ["CONTAINERS", "IMAGES", "SELECTOR"], replica_set_cells),
    "deployments": Columns(["READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
                           ["CONTAINERS", "IMAGES", "SELECTOR"], deployment_cells),
    "namespaces": Columns(["STATUS", "AGE"], [], namespace_cells),
    "nodes": Columns(["STATUS", "ROLES", "AGE", "VERSION"],
                     ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"], node_cells),
}

EVENT_HEADER = ["LAST SEEN", "TYPE", "REASON", "OBJECT"]
EVENT_WIDE_HEADER = ["SUBOBJECT", "SOURCE"]


def header_for(plural: str, wide: bool) -> list[str]:
    """Column titles after NAME (and NAMESPACE): events put NAME last in wide form, like kubectl."""
    if plural == "events":
        header = EVENT_HEADER + (EVENT_WIDE_HEADER if wide else []) + ["MESSAGE"]
        return header + (["FIRST SEEN", "COUNT", "NAME"] if wide else [])
    columns = COLUMNS[plural]
    return ["NAME"] + columns.header + (columns.wide_header if wide else [])


def row_for(plural: str, obj: dict, now: float, wide: bool, name: str) -> list[str]:
    if plural == "events":
        return event_cells(obj, now, wide)
    return [name] + COLUMNS[plural].cells(obj, now, wide)


PRINTABLE = ("pods", "replicasets", "deployments", "namespaces", "nodes", "events")
