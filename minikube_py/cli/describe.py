"""`describe`: one object in kubectl's long form, with the events about it.

The layout follows kubectl's describers (`kubectl/pkg/describe/describe.go`): `Key:\\tvalue`
lines indented by level and aligned as one Go tabwriter block per run of lines, container
states with their Last State, probes as `http-get http://:8080/ delay=0s timeout=1s ...`, a
Deployment's `N desired | N updated | N total | N available | N unavailable`, and an `Events:`
table of the events whose involvedObject is this object's uid, oldest first.
"""

from __future__ import annotations

import argparse

from minikube_py import api
from minikube_py.client.deployments import find_new_replica_set
from minikube_py.cli import describe_networking, tables
from minikube_py.cli.get import no_resources_message
from minikube_py.cli.context import CommandError, Context, Subcommands, print_error, resolve_resource
from minikube_py.cli.describe_format import (  # noqa: F401 (DescribeWriter: imported from here by rollout, pods)
    DescribeWriter, describe_events, events_about, go_duration, rfc1123)
from minikube_py.cli.tables import NONE, age


def register(subcommands: Subcommands) -> None:
    describe = subcommands.add("describe", "show details of objects and the events about them",
                               namespaced=True, all_namespaces=True)
    describe.add_argument("type", metavar="TYPE[/NAME]",
                          help="pods, replicasets, deployments, jobs, cronjobs, namespaces, nodes, services, endpoints, "
                               "endpointslices, configmaps, secrets or serviceaccounts (or TYPE/NAME)")
    describe.add_argument("names", nargs="*", metavar="NAME", help="objects to describe (default: all of the type)")
    describe.add_argument("-l", "--selector", help="describe the objects matching this label selector")
    describe.set_defaults(run=run_describe)


def describe_probe(probe: dict) -> str:
    attributes = (f"delay={go_duration(probe.get('initialDelaySeconds', 0))} "
                  f"timeout={go_duration(probe.get('timeoutSeconds', 1))} "
                  f"period={go_duration(probe.get('periodSeconds', 10))} "
                  f"#success={probe.get('successThreshold', 1)} #failure={probe.get('failureThreshold', 3)}")
    if probe.get("exec"):
        return f"exec [{' '.join(probe['exec'].get('command') or [])}] {attributes}"
    if probe.get("httpGet"):
        action = probe["httpGet"]
        scheme = (action.get("scheme") or "HTTP").lower()
        return f"http-get {scheme}://{action.get('host', '')}:{action.get('port')}{action.get('path', '')} {attributes}"
    if probe.get("tcpSocket"):
        action = probe["tcpSocket"]
        return f"tcp-socket {action.get('host', '')}:{action.get('port')} {attributes}"
    return f"unknown {attributes}"


def describe_state(writer: DescribeWriter, title: str, state: dict) -> None:
    if state.get("running") is not None:
        writer.write(2, f"{title}:\tRunning")
        writer.write(3, f"Started:\t{rfc1123(state['running'].get('startedAt'))}")
    elif state.get("terminated") is not None:
        terminated = state["terminated"]
        writer.write(2, f"{title}:\tTerminated")
        if terminated.get("reason"):
            writer.write(3, f"Reason:\t{terminated['reason']}")
        if terminated.get("message"):
            writer.write(3, f"Message:\t{terminated['message']}")
        writer.write(3, f"Exit Code:\t{terminated.get('exitCode', 0)}")
        if terminated.get("signal"):
            writer.write(3, f"Signal:\t{terminated['signal']}")
        writer.write(3, f"Started:\t{rfc1123(terminated.get('startedAt'))}")
        writer.write(3, f"Finished:\t{rfc1123(terminated.get('finishedAt'))}")
    else:
        writer.write(2, f"{title}:\tWaiting")
        if (state.get("waiting") or {}).get("reason"):
            writer.write(3, f"Reason:\t{state['waiting']['reason']}")


def _ports(container: dict, field: str) -> str:
    ports = [f"{port.get(field, 0)}/{port.get('protocol', 'TCP')}" for port in container.get("ports") or []]
    return ", ".join(ports) or NONE


def describe_containers(writer: DescribeWriter, title: str, containers: list[dict], statuses: list[dict] | None,
                        template: bool) -> None:
    """Containers with their image, ports, state, resources, probes, environment and mounts.

    `template` is the Pod Template form (Deployments, ReplicaSets): no state, kubectl's indent.
    """
    base = 1 if template else 0
    writer.write(base, f"{title}:")
    by_name = {status.get("name"): status for status in statuses or []}
    for container in containers:
        writer.write(base, f"{' ' if template else '  '}{container['name']}:")
        status = by_name.get(container["name"])
        if status is not None:
            writer.write(2, f"Container ID:\t{status.get('containerID', '')}")
        writer.write(2, f"Image:\t{container.get('image', '')}")
        if status is not None:
            writer.write(2, f"Image ID:\t{status.get('imageID', '')}")
        ports = container.get("ports") or []
        writer.write(2, f"Port{'s' if len(ports) > 1 else ''}:\t{_ports(container, 'containerPort')}")
        writer.write(2, f"Host Port{'s' if len(ports) > 1 else ''}:\t{_ports(container, 'hostPort')}")
        for field, label in (("command", "Command"), ("args", "Args")):
            if container.get(field):
                writer.write(2, f"{label}:")
                for word in container[field]:
                    for line in word.split("\n"):  # kubectl indents every line of a multi-line argument
                        writer.write(3, line)
        if status is not None:
            describe_state(writer, "State", status.get("state") or {})
            if (status.get("lastState") or {}).get("terminated"):
                describe_state(writer, "Last State", status["lastState"])
            writer.write(2, f"Ready:\t{'True' if status.get('ready') else 'False'}")
            writer.write(2, f"Restart Count:\t{status.get('restartCount', 0)}")
        resources = container.get("resources") or {}
        for field, label in (("limits", "Limits"), ("requests", "Requests")):
            if resources.get(field):
                writer.write(2, f"{label}:")
                for resource_name, quantity in sorted(resources[field].items()):
                    writer.write(3, f"{resource_name}:\t{quantity}")
        for field, label in (("livenessProbe", "Liveness"), ("readinessProbe", "Readiness"),
                             ("startupProbe", "Startup")):
            if container.get(field):
                writer.write(2, f"{label}:\t{describe_probe(container[field])}")
        describe_env_from(writer, container.get("envFrom") or [])
        environment = container.get("env") or []
        if not environment:
            writer.write(2, f"Environment:\t{NONE}")
        else:
            writer.write(2, "Environment:")
            for variable in environment:
                writer.write(3, f"{variable['name']}:\t{describe_env_value(variable)}")
        mounts = container.get("volumeMounts") or []
        if not mounts:
            writer.write(2, f"Mounts:\t{NONE}")
        else:
            writer.write(2, "Mounts:")
            for mount in sorted(mounts, key=lambda item: item.get("mountPath", "")):
                mode = "ro" if mount.get("readOnly") else "rw"
                if mount.get("subPath"):
                    mode += f',path="{mount["subPath"]}"'
                writer.write(3, f"{mount.get('mountPath')} from {mount.get('name')} ({mode})")


def describe_env_from(writer: DescribeWriter, sources: list[dict]) -> None:
    """kubectl's `Environment Variables from:` lines: the object, its kind, the prefix, optional."""
    if not sources:
        return
    writer.write(2, "Environment Variables from:")
    for source in sources:
        kind, reference = ("ConfigMap", source["configMapRef"]) if source.get("configMapRef") else \
            ("Secret", source.get("secretRef") or {})
        prefix = f" with prefix '{source['prefix']}'" if source.get("prefix") else ""
        optional = "true" if reference.get("optional") else "false"
        writer.write(3, f"{reference.get('name', '')}\t{kind}{prefix}\tOptional: {optional}")


def describe_env_value(variable: dict) -> str:
    """An env variable's value as kubectl shows it: the value, or where it comes from."""
    source = variable.get("valueFrom")
    if "value" in variable or not source:
        return variable.get("value", "")
    for field, text in (("configMapKeyRef", "of config map"), ("secretKeyRef", "in secret")):
        if source.get(field):
            reference = source[field]
            optional = "true" if reference.get("optional") else "false"
            return (f"<set to the key '{reference.get('key', '')}' {text} '{reference.get('name', '')}'>\t"
                    f"Optional: {optional}")
    if source.get("resourceFieldRef"):
        return f" ({source['resourceFieldRef'].get('resource', '')})"
    field_ref = source.get("fieldRef") or {}
    return f" ({field_ref.get('apiVersion', 'v1')}:{field_ref.get('fieldPath', '')})"


def describe_volumes(writer: DescribeWriter, volumes: list[dict] | None, level: int) -> None:
    if not volumes:
        writer.write(level, f"Volumes:\t{NONE}")
        return
    writer.write(level, "Volumes:")
    for volume in volumes:
        writer.write(level + 1, f"{volume['name']}:")
        if "emptyDir" in volume:
            empty_dir = volume.get("emptyDir") or {}
            writer.write(level + 2, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)")
            writer.write(level + 2, f"Medium:\t{empty_dir.get('medium', '')}")
            writer.write(level + 2, f"SizeLimit:\t{empty_dir.get('sizeLimit', '<unset>')}")
        elif "hostPath" in volume:
            host_path = volume.get("hostPath") or {}
            writer.write(level + 2, "Type:\tHostPath (bare host directory volume)")
            writer.write(level + 2, f"Path:\t{host_path.get('path', '')}")
            writer.write(level + 2, f"HostPathType:\t{host_path.get('type', '')}")
        elif "configMap" in volume or "secret" in volume or "downwardAPI" in volume or "projected" in volume:
            for line in api_data_volume_lines(volume):
                writer.write(level + 2, line)
        else:
            kinds = [key for key in volume if key != "name"]
            writer.write(level + 2, f"Type:\t{', '.join(kinds) or '<unknown>'}")


def _optional(value) -> str:
    return "<nil>" if value is None else str(bool(value)).lower()


def api_data_volume_lines(volume: dict) -> list[str]:
    """kubectl describe's lines for configMap, secret, downwardAPI and projected volumes."""
    if "configMap" in volume:
        source = volume.get("configMap") or {}
        return ["Type:\tConfigMap (a volume populated by a ConfigMap)", f"Name:\t{source.get('name', '')}",
                f"Optional:\t{str(bool(source.get('optional'))).lower()}"]
    if "secret" in volume:
        source = volume.get("secret") or {}
        return ["Type:\tSecret (a volume populated by a Secret)", f"SecretName:\t{source.get('secretName', '')}",
                f"Optional:\t{str(bool(source.get('optional'))).lower()}"]
    if "downwardAPI" in volume:
        lines = ["Type:\tDownwardAPI (a volume populated by information about the pod)", "Items:"]
        for item in (volume.get("downwardAPI") or {}).get("items") or []:
            reference = item.get("fieldRef") or {}
            resource = item.get("resourceFieldRef") or {}
            lines.append(f"  {reference.get('fieldPath') or resource.get('resource', '')} -> {item.get('path', '')}")
        return lines
    lines = ["Type:\tProjected (a volume that contains injected data from multiple sources)"]
    for source in (volume.get("projected") or {}).get("sources") or []:
        if "secret" in source:
            lines += [f"SecretName:\t{source['secret'].get('name', '')}",
                      f"SecretOptionalName:\t{_optional(source['secret'].get('optional'))}"]
        elif "downwardAPI" in source:
            lines.append("DownwardAPI:\ttrue")
        elif "configMap" in source:
            lines += [f"ConfigMapName:\t{source['configMap'].get('name', '')}",
                      f"ConfigMapOptional:\t{_optional(source['configMap'].get('optional'))}"]
        elif "serviceAccountToken" in source:
            lines.append(f"TokenExpirationSeconds:\t{source['serviceAccountToken'].get('expirationSeconds', 3600)}")
    return lines


def describe_pod_template(writer: DescribeWriter, template: dict) -> None:
    metadata, spec = template.get("metadata") or {}, template.get("spec") or {}
    writer.write(0, "Pod Template:")
    writer.labels(1, "Labels", metadata.get("labels"))
    if metadata.get("annotations"):
        writer.annotations(1, "Annotations", metadata["annotations"])
    if spec.get("initContainers"):
        describe_containers(writer, "Init Containers", spec["initContainers"], None, template=True)
    describe_containers(writer, "Containers", spec.get("containers") or [], None, template=True)
    describe_volumes(writer, spec.get("volumes"), 1)


def controller_of(obj: dict) -> str | None:
    for reference in obj["metadata"].get("ownerReferences") or []:
        if reference.get("controller"):
            return f"{reference['kind']}/{reference['name']}"
    return None


def quality_of_service(pod: dict) -> str:
    """Kubernetes' QoS class: Guaranteed when every container's requests equal its cpu and memory limits."""
    containers = (pod.get("spec") or {}).get("containers") or []
    resources = [container.get("resources") or {} for container in containers]
    if not any(item.get("limits") or item.get("requests") for item in resources):
        return "BestEffort"
    for item in resources:
        limits, requests = item.get("limits") or {}, {**(item.get("limits") or {}), **(item.get("requests") or {})}
        if any(name not in limits or requests.get(name) != limits[name] for name in ("cpu", "memory")):
            return "Burstable"
    return "Guaranteed"


def describe_pod(context: Context, pod: dict, now: float) -> str:
    metadata, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    writer = DescribeWriter()
    writer.write(0, f"Name:\t{metadata['name']}")
    writer.write(0, f"Namespace:\t{metadata.get('namespace', '')}")
    if spec.get("serviceAccountName"):
        writer.write(0, f"Service Account:\t{spec['serviceAccountName']}")
    node = spec.get("nodeName")
    writer.write(0, f"Node:\t{node + '/' + status.get('hostIP', '') if node else NONE}")
    if status.get("startTime"):
        writer.write(0, f"Start Time:\t{rfc1123(status['startTime'])}")
    writer.labels(0, "Labels", metadata.get("labels"))
    writer.annotations(0, "Annotations", metadata.get("annotations"))
    if metadata.get("deletionTimestamp"):
        remaining = api.times.parse_time(metadata["deletionTimestamp"]) - now
        writer.write(0, f"Status:\tTerminating (lasts {api.times.human_duration(remaining)})")
        writer.write(0, f"Termination Grace Period:\t{metadata.get('deletionGracePeriodSeconds', 0)}s")
    else:
        writer.write(0, f"Status:\t{status.get('phase', '')}")
    if status.get("reason"):
        writer.write(0, f"Reason:\t{status['reason']}")
    if status.get("message"):
        writer.write(0, f"Message:\t{status['message']}")
    writer.write(0, f"IP:\t{status.get('podIP', '')}")
    pod_ips = [item.get("ip") for item in status.get("podIPs") or []] or (
        [status["podIP"]] if status.get("podIP") else [])
    if pod_ips:
        writer.write(0, "IPs:")
        for ip in pod_ips:
            writer.write(1, f"IP:\t{ip}")
    else:
        writer.write(0, f"IPs:\t{NONE}")
    if controller_of(pod):
        writer.write(0, f"Controlled By:\t{controller_of(pod)}")
    if spec.get("initContainers"):
        describe_containers(writer, "Init Containers", spec["initContainers"],
                            status.get("initContainerStatuses"), template=False)
    describe_containers(writer, "Containers", spec.get("containers") or [], status.get("containerStatuses"),
                        template=False)
    if status.get("conditions"):
        writer.write(0, "Conditions:")
        writer.write(1, "Type\tStatus")
        for condition in status["conditions"]:
            writer.write(1, f"{condition.get('type')} \t{condition.get('status')} ")
    describe_volumes(writer, spec.get("volumes"), 0)
    writer.write(0, f"QoS Class:\t{quality_of_service(pod)}")
    writer.labels(0, "Node-Selectors", spec.get("nodeSelector"))
    writer.write(0, f"Tolerations:\t{NONE}")
    describe_events(writer, events_about(context, pod), now)
    return writer.render()


def owned_replica_sets(context: Context, deployment: dict) -> list[dict]:
    uid = deployment["metadata"].get("uid")
    items = context.transport.list("replicasets", namespace=deployment["metadata"]["namespace"]).get("items") or []
    return [replica_set for replica_set in items
            if any(reference.get("uid") == uid and reference.get("controller")
                   for reference in replica_set["metadata"].get("ownerReferences") or [])]


def replica_sets_text(replica_sets: list[dict]) -> str:
    parts = [f"{replica_set['metadata']['name']} ({(replica_set.get('status') or {}).get('replicas', 0)}/"
             f"{(replica_set.get('spec') or {}).get('replicas', 0)} replicas created)"
             for replica_set in replica_sets]
    return ", ".join(parts) or NONE


def describe_conditions(writer: DescribeWriter, conditions: list[dict] | None) -> None:
    if not conditions:
        return
    writer.write(0, "Conditions:")
    writer.write(1, "Type\tStatus\tReason")
    writer.write(1, "----\t------\t------")
    for condition in conditions:
        writer.write(1, f"{condition.get('type')} \t{condition.get('status')}\t{condition.get('reason', '')}")


def describe_deployment(context: Context, deployment: dict, now: float) -> str:
    metadata, spec, status = deployment["metadata"], deployment.get("spec") or {}, deployment.get("status") or {}
    writer = DescribeWriter()
    writer.write(0, f"Name:\t{metadata['name']}")
    writer.write(0, f"Namespace:\t{metadata.get('namespace', '')}")
    writer.write(0, f"CreationTimestamp:\t{rfc1123(metadata.get('creationTimestamp'))}")
    writer.labels(0, "Labels", metadata.get("labels"))
    writer.annotations(0, "Annotations", metadata.get("annotations"))
    writer.write(0, f"Selector:\t{tables.format_label_selector(spec.get('selector'))}")
    writer.write(0, f"Replicas:\t{spec.get('replicas', 0)} desired | {status.get('updatedReplicas', 0)} updated | "
                    f"{status.get('replicas', 0)} total | {status.get('availableReplicas', 0)} available | "
                    f"{status.get('unavailableReplicas', 0)} unavailable")
    strategy = spec.get("strategy") or {}
    writer.write(0, f"StrategyType:\t{strategy.get('type', '')}")
    writer.write(0, f"MinReadySeconds:\t{spec.get('minReadySeconds', 0)}")
    if strategy.get("rollingUpdate"):
        rolling = strategy["rollingUpdate"]
        writer.write(0, f"RollingUpdateStrategy:\t{rolling.get('maxUnavailable')} max unavailable, "
                        f"{rolling.get('maxSurge')} max surge")
    template = spec.get("template") or {}
    describe_pod_template(writer, template)
    describe_conditions(writer, status.get("conditions"))
    replica_sets = owned_replica_sets(context, deployment)
    new_model = find_new_replica_set(api.Deployment.model_validate(deployment),
                                     [api.ReplicaSet.model_validate(item) for item in replica_sets])
    new = [item for item in replica_sets if new_model is not None and item["metadata"]["uid"] == new_model.metadata.uid]
    old = [replica_set for replica_set in replica_sets
           if replica_set not in new and (replica_set.get("spec") or {}).get("replicas", 0) != 0]
    writer.write(0, f"OldReplicaSets:\t{replica_sets_text(old)}")
    writer.write(0, f"NewReplicaSet:\t{replica_sets_text(new)}")
    describe_events(writer, events_about(context, deployment), now)
    return writer.render()


def describe_replica_set(context: Context, replica_set: dict, now: float) -> str:
    metadata, spec, status = replica_set["metadata"], replica_set.get("spec") or {}, replica_set.get("status") or {}
    writer = DescribeWriter()
    writer.write(0, f"Name:\t{metadata['name']}")
    writer.write(0, f"Namespace:\t{metadata.get('namespace', '')}")
    writer.write(0, f"Selector:\t{tables.format_label_selector(spec.get('selector'))}")
    writer.labels(0, "Labels", metadata.get("labels"))
    writer.annotations(0, "Annotations", metadata.get("annotations"))
    if controller_of(replica_set):
        writer.write(0, f"Controlled By:\t{controller_of(replica_set)}")
    writer.write(0, f"Replicas:\t{status.get('replicas', 0)} current / {spec.get('replicas', 0)} desired")
    write_pods_status(context, writer, replica_set)
    describe_pod_template(writer, spec.get("template") or {})
    describe_conditions(writer, status.get("conditions"))
    describe_events(writer, events_about(context, replica_set), now)
    return writer.render()


def write_pods_status(context: Context, writer: DescribeWriter, owner: dict) -> None:
    """`Pods Status: N Running / N Waiting / N Succeeded / N Failed` of the pods `owner` controls."""
    metadata = owner["metadata"]
    pods = context.transport.list("pods", namespace=metadata.get("namespace")).get("items") or []
    owned = [pod for pod in pods if any(reference.get("uid") == metadata.get("uid") and reference.get("controller")
                                        for reference in pod["metadata"].get("ownerReferences") or [])]
    phases = [(pod.get("status") or {}).get("phase") for pod in owned]
    writer.write(0, f"Pods Status:\t{phases.count('Running')} Running / {phases.count('Pending')} Waiting / "
                    f"{phases.count('Succeeded')} Succeeded / {phases.count('Failed')} Failed")


def describe_daemon_set(context: Context, daemon_set: dict, now: float) -> str:
    """kubectl's describeDaemonSet: selectors, labels, the node counts, pods, template, events."""
    metadata, spec, status = daemon_set["metadata"], daemon_set.get("spec") or {}, daemon_set.get("status") or {}
    template = spec.get("template") or {}
    writer = DescribeWriter()
    writer.write(0, f"Name:\t{metadata['name']}")
    writer.write(0, f"Namespace:\t{metadata.get('namespace', '')}")
    writer.write(0, f"Selector:\t{tables.format_label_selector(spec.get('selector'))}")
    writer.write(0, f"Node-Selector:\t{tables.format_labels((template.get('spec') or {}).get('nodeSelector'))}")
    writer.labels(0, "Labels", metadata.get("labels"))
    writer.annotations(0, "Annotations", metadata.get("annotations"))
    for title, field in (("Desired Number of Nodes Scheduled", "desiredNumberScheduled"),
                         ("Current Number of Nodes Scheduled", "currentNumberScheduled"),
                         ("Number of Nodes Scheduled with Up-to-date Pods", "updatedNumberScheduled"),
                         ("Number of Nodes Scheduled with Available Pods", "numberAvailable"),
                         ("Number of Nodes Misscheduled", "numberMisscheduled")):
        # Not tab-aligned in kubectl either: these lines end the aligned block.
        writer.write(0, f"{title}: {status.get(field, 0)}")
    write_pods_status(context, writer, daemon_set)
    describe_pod_template(writer, template)
    describe_events(writer, events_about(context, daemon_set), now)
    return writer.render()


def describe_namespace(context: Context, namespace: dict, now: float) -> str:
    metadata = namespace["metadata"]
    writer = DescribeWriter()
    writer.write(0, f"Name:\t{metadata['name']}")
    writer.labels(0, "Labels", metadata.get("labels"))
    writer.annotations(0, "Annotations", metadata.get("annotations"))
    writer.write(0, f"Status:\t{(namespace.get('status') or {}).get('phase', '')}")
    writer.write(0, "")
    writer.write(0, "No resource quota.")
    writer.write(0, "")
    writer.write(0, "No LimitRange resource.")
    return writer.render()


def describe_node(context: Context, node: dict, now: float) -> str:
    metadata, spec, status = node["metadata"], node.get("spec") or {}, node.get("status") or {}
    writer = DescribeWriter()
    writer.write(0, f"Name:\t{metadata['name']}")
    writer.write(0, f"Roles:\t{tables.node_roles(node)}")
    writer.labels(0, "Labels", metadata.get("labels"))
    writer.annotations(0, "Annotations", metadata.get("annotations"))
    writer.write(0, f"CreationTimestamp:\t{rfc1123(metadata.get('creationTimestamp'))}")
    writer.write(0, f"Unschedulable:\t{'true' if spec.get('unschedulable') else 'false'}")
    writer.write(0, "Conditions:")
    writer.write(1, "Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage")
    writer.write(1, "----\t------\t-----------------\t------------------\t------\t-------")
    for condition in status.get("conditions") or []:
        writer.write(1, f"{condition.get('type')} \t{condition.get('status')} \t"
                        f"{rfc1123(condition.get('lastHeartbeatTime'))} \t"
                        f"{rfc1123(condition.get('lastTransitionTime'))} \t{condition.get('reason', '')} \t"
                        f"{condition.get('message', '')}")
    writer.write(0, "Addresses:")
    for address in status.get("addresses") or []:
        writer.write(1, f"{address.get('type')}:\t{address.get('address')}")
    for field, label in (("capacity", "Capacity"), ("allocatable", "Allocatable")):
        if status.get(field):
            writer.write(0, f"{label}:")
            for resource_name, quantity in sorted(status[field].items()):
                writer.write(1, f"{resource_name}:\t{quantity}")
    info = status.get("nodeInfo") or {}
    if info:
        writer.write(0, "System Info:")
        for key, label in (("machineID", "Machine ID"), ("bootID", "Boot ID"), ("kernelVersion", "Kernel Version"),
                           ("osImage", "OS Image"), ("operatingSystem", "Operating System"),
                           ("architecture", "Architecture"), ("containerRuntimeVersion", "Container Runtime Version"),
                           ("kubeletVersion", "Kubelet Version")):
            if key in info:
                writer.write(1, f"{label}:\t{info[key]}")
    writer.write(0, f"PodCIDR:\t{spec.get('podCIDR', '')}")
    pods = [pod for pod in context.transport.list("pods").get("items") or []
            if (pod.get("spec") or {}).get("nodeName") == metadata["name"]
            and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    writer.write(0, f"Non-terminated Pods:\t({len(pods)} in total)")
    if pods:
        writer.write(1, "Namespace\tName\tAge")
        writer.write(1, "---------\t----\t---")
        for pod in sorted(pods, key=lambda item: (item["metadata"].get("namespace"), item["metadata"]["name"])):
            writer.write(1, f"{pod['metadata'].get('namespace')}\t{pod['metadata']['name']}\t"
                            f"{age(pod['metadata'].get('creationTimestamp'), now)}")
    describe_events(writer, events_about(context, node), now)
    return writer.render()


def describe_job(context: Context, job: dict, now: float) -> str:
    """kubectl's JobDescriber: parallelism and completions, times, pod counts, the template."""
    metadata, spec, status = job["metadata"], job.get("spec") or {}, job.get("status") or {}
    writer = DescribeWriter()
    writer.write(0, f"Name:\t{metadata['name']}")
    writer.write(0, f"Namespace:\t{metadata.get('namespace', '')}")
    writer.write(0, f"Selector:\t{tables.format_label_selector(spec.get('selector'))}")
    writer.labels(0, "Labels", metadata.get("labels"))
    writer.annotations(0, "Annotations", metadata.get("annotations"))
    if controller_of(job):
        writer.write(0, f"Controlled By:\t{controller_of(job)}")
    writer.write(0, f"Parallelism:\t{spec.get('parallelism', 0)}")
    writer.write(0, f"Completions:\t{spec['completions'] if spec.get('completions') is not None else '<unset>'}")
    writer.write(0, f"Completion Mode:\t{spec.get('completionMode', 'NonIndexed')}")
    writer.write(0, f"Suspend:\t{'true' if spec.get('suspend') else 'false'}")
    writer.write(0, f"Backoff Limit:\t{spec.get('backoffLimit', 6)}")
    if spec.get("ttlSecondsAfterFinished") is not None:
        writer.write(0, f"TTL Seconds After Finished:\t{spec['ttlSecondsAfterFinished']}")
    if status.get("startTime"):
        writer.write(0, f"Start Time:\t{rfc1123(status['startTime'])}")
    if status.get("completionTime"):
        writer.write(0, f"Completed At:\t{rfc1123(status['completionTime'])}")
        elapsed = api.times.parse_time(status["completionTime"]) - api.times.parse_time(status["startTime"])
        writer.write(0, f"Duration:\t{api.times.human_duration(elapsed)}")
    if spec.get("activeDeadlineSeconds") is not None:
        writer.write(0, f"Active Deadline Seconds:\t{spec['activeDeadlineSeconds']}s")
    writer.write(0, f"Pods Statuses:\t{status.get('active', 0)} Active ({status.get('ready', 0)} Ready) / "
                    f"{status.get('succeeded', 0)} Succeeded / {status.get('failed', 0)} Failed")
    if spec.get("completionMode") == "Indexed":
        writer.write(0, f"Completed Indexes:\t{status.get('completedIndexes') or NONE}")
    describe_pod_template(writer, spec.get("template") or {})
    describe_conditions(writer, status.get("conditions"))
    describe_events(writer, events_about(context, job), now)
    return writer.render()


def describe_cron_job(context: Context, cron_job: dict, now: float) -> str:
    """kubectl's CronJobDescriber: the schedule and policies, the job template, the active Jobs."""
    metadata, spec, status = cron_job["metadata"], cron_job.get("spec") or {}, cron_job.get("status") or {}
    job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    writer = DescribeWriter()
    writer.write(0, f"Name:\t{metadata['name']}")
    writer.write(0, f"Namespace:\t{metadata.get('namespace', '')}")
    writer.labels(0, "Labels", metadata.get("labels"))
    writer.annotations(0, "Annotations", metadata.get("annotations"))
    writer.write(0, f"Schedule:\t{spec.get('schedule', '')}")
    if spec.get("timeZone"):
        writer.write(0, f"Time Zone:\t{spec['timeZone']}")
    writer.write(0, f"Concurrency Policy:\t{spec.get('concurrencyPolicy', 'Allow')}")
    writer.write(0, f"Suspend:\t{'True' if spec.get('suspend') else 'False'}")
    writer.write(0, f"Successful Job History Limit:\t{spec.get('successfulJobsHistoryLimit', 3)}")
    writer.write(0, f"Failed Job History Limit:\t{spec.get('failedJobsHistoryLimit', 1)}")
    deadline = spec.get("startingDeadlineSeconds")
    writer.write(0, f"Starting Deadline Seconds:\t{'<unset>' if deadline is None else f'{deadline}s'}")
    writer.write(0, f"Selector:\t{tables.format_label_selector(job_spec.get('selector')) if job_spec.get('selector') else '<unset>'}")
    for label, field in (("Parallelism", "parallelism"), ("Completions", "completions")):
        writer.write(0, f"{label}:\t{job_spec[field] if job_spec.get(field) is not None else '<unset>'}")
    describe_pod_template(writer, job_spec.get("template") or {})
    writer.write(0, f"Last Schedule Time:\t{rfc1123(status.get('lastScheduleTime')) if status.get('lastScheduleTime') else '<unset>'}")
    active = ", ".join(reference.get("name", "") for reference in status.get("active") or [])
    writer.write(0, f"Active Jobs:\t{active or NONE}")
    describe_events(writer, events_about(context, cron_job), now)
    return writer.render()


DESCRIBERS = {
    "pods": describe_pod,
    "deployments": describe_deployment,
    "replicasets": describe_replica_set,
    "daemonsets": describe_daemon_set,
    "namespaces": describe_namespace,
    "nodes": describe_node,
    "jobs": describe_job,
    "cronjobs": describe_cron_job,
    **describe_networking.DESCRIBERS,
}


def run_describe(args: argparse.Namespace, context: Context) -> int:
    type_name, slash, name = args.type.partition("/")
    info = resolve_resource(type_name)
    names = ([name] if slash else []) + list(args.names)
    describer = DESCRIBERS.get(info.plural)
    if describer is None:
        raise CommandError(f"describe does not support {info.plural}; use 'get {info.plural}' instead")
    namespace = context.namespace_for(info)
    if names:
        objects = []
        for object_name in names:
            objects.append(context.transport.get(info.plural, namespace, object_name))
    else:
        objects = context.transport.list(info.plural, namespace=namespace,
                                         label_selector=args.selector).get("items") or []
        if not objects:
            print_error(no_resources_message(context, [info]))
            return 0
    now = context.now()
    print("\n\n".join(describer(context, obj, now) for obj in objects))
    return 0
