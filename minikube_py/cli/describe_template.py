"""The sections a pod's page and every workload's Pod Template share, in kubectl's layout.

Containers (image, ports, command, state and Last State, resources, probes as `http-get
http://:8080/ delay=0s timeout=1s ...`, environment and mounts), volumes, the `Pod Template:`
block of Deployments, ReplicaSets, DaemonSets, StatefulSets, Jobs and CronJobs, and an owner's
`Pods Status:` line. `cli.describe` (pods and workloads) and `cli.describe_workloads`
(StatefulSets) both build on it.
"""

from __future__ import annotations

from minikube_py.cli.context import Context
from minikube_py.cli.describe_format import DescribeWriter, go_duration, rfc1123
from minikube_py.cli.tables import NONE


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
    if spec.get("serviceAccountName"):
        writer.write(1, f"Service Account:\t{spec['serviceAccountName']}")
    if spec.get("initContainers"):
        describe_containers(writer, "Init Containers", spec["initContainers"], None, template=True)
    describe_containers(writer, "Containers", spec.get("containers") or [], None, template=True)
    describe_volumes(writer, spec.get("volumes"), 1)
    if spec.get("priorityClassName"):
        writer.write(1, f"Priority Class Name:\t{spec['priorityClassName']}")
    writer.labels(1, "Node-Selectors", spec.get("nodeSelector"))
    describe_tolerations(writer, 1, spec.get("tolerations"))


def toleration_text(toleration: dict) -> str:
    """kubectl's form of one toleration: `key=value:Effect`, then ` op=Exists` and ` for 300s`."""
    text = toleration.get("key") or ""
    if toleration.get("value"):
        text += f"={toleration['value']}"
    if toleration.get("effect"):
        text += f":{toleration['effect']}"
    if toleration.get("operator") == "Exists" and not toleration.get("value"):
        text += " op=Exists" if toleration.get("key") or toleration.get("effect") else "op=Exists"
    if toleration.get("tolerationSeconds") is not None:
        text += f" for {toleration['tolerationSeconds']}s"
    return text


def describe_tolerations(writer: DescribeWriter, level: int, tolerations: list[dict] | None) -> None:
    """`Tolerations:` one per line, sorted by key, as kubectl's printPodTolerationsMultiline."""
    ordered = sorted(tolerations or [], key=lambda toleration: toleration.get("key") or "")
    if not ordered:
        writer.write(level, f"Tolerations:\t{NONE}")
    for index, toleration in enumerate(ordered):
        writer.write(level, f"{'Tolerations:' if index == 0 else ''}\t{toleration_text(toleration)}")


def write_pods_status(context: Context, writer: DescribeWriter, owner: dict) -> None:
    """`Pods Status: N Running / N Waiting / N Succeeded / N Failed` of the pods `owner` controls."""
    metadata = owner["metadata"]
    pods = context.transport.list("pods", namespace=metadata.get("namespace")).get("items") or []
    owned = [pod for pod in pods if any(reference.get("uid") == metadata.get("uid") and reference.get("controller")
                                        for reference in pod["metadata"].get("ownerReferences") or [])]
    phases = [(pod.get("status") or {}).get("phase") for pod in owned]
    writer.write(0, f"Pods Status:\t{phases.count('Running')} Running / {phases.count('Pending')} Waiting / "
                    f"{phases.count('Succeeded')} Succeeded / {phases.count('Failed')} Failed")
