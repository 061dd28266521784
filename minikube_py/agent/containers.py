"""Translate a pod's container spec into the runtime's `ContainerConfig`, by Kubernetes' rules.

The runtime receives only final values: the argv already merged with the image's ENTRYPOINT/CMD
(command replaces ENTRYPOINT, args replace CMD, args alone go after ENTRYPOINT), the environment
already merged with the image's Env and expanded (`$(VAR)` from earlier variables, `fieldRef`
values from the pod, `envFrom`, ConfigMap/Secret/resource values and the Service variables
(`service_env`) from `config_sources`), the
user from the container's, else the pod's, securityContext, cgroup limits from resources, the mounts (volumes plus the pod's hosts, hostname and resolv.conf), and
what confines the container, resolved as kubelet and containerd resolve the securityContext:
capabilities (Docker's default set, then `add`, then `drop`, `ALL` in either), privileged,
readOnlyRootFilesystem, no_new_privs from allowPrivilegeEscalation, the seccomp profile
(container's, else pod's, else RuntimeDefault or Unconfined after `start --seccomp-default`),
runAsNonRoot's refusals with kubelet's messages, and supplementalGroups plus fsGroup.
Everything here is pure except for reading the pod files' paths, so it is tested as tables.
"""

from __future__ import annotations

import os
from typing import Callable

from minikube_py.agent.config_sources import EnvSources
from minikube_py.agent.volumes import is_api_data_volume, sub_path_source
from minikube_py.runtime.linux import ALL_CAPABILITY_NUMBERS, CAPABILITY_NUMBERS
from minikube_py.runtime.types import CgroupLimits, ContainerConfig, ResolvedImage, Mount, ContainerRuntimeError

# A pod annotation naming optional devices its containers get ("fuse"), comma-separated.
DEVICES_ANNOTATION = "minikube-py.io/devices"
SECCOMP_PROFILE_REFS = {"RuntimeDefault": "runtime/default", "Unconfined": "unconfined"}

CPU_PERIOD_US = 100_000
MIN_CPU_SHARES = 2
DEFAULT_SERVICE_ACCOUNT = "default"


def merge_argv(entrypoint: list[str], cmd: list[str], command: list[str] | None, args: list[str] | None) -> list[str]:
    """Kubernetes' rule (docs "Define a Command and Arguments for a Container"):

    | command | args | runs                 |
    | -       | -    | ENTRYPOINT + CMD     |
    | yes     | -    | command              |
    | -       | yes  | ENTRYPOINT + args    |
    | yes     | yes  | command + args       |
    """
    if command:
        return list(command) + list(args or [])
    if args:
        return list(entrypoint) + list(args)
    return list(entrypoint) + list(cmd)


def expand(text: str, lookup: Callable[[str], str | None]) -> str:
    """Kubernetes' `$(VAR)` expansion (k8s third_party/forked/golang/expansion): `$(NAME)` becomes the
    variable's value, an unknown name stays `$(NAME)` verbatim, `$$` is a literal `$`, and a `$`
    not followed by `(` or `$` is kept as written."""
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char != "$" or index + 1 >= len(text):
            out.append(char)
            index += 1
            continue
        following = text[index + 1]
        if following == "$":
            out.append("$")
            index += 2
        elif following == "(":
            closing = text.find(")", index + 2)
            if closing == -1:
                out.append("$(")
                index += 2
                continue
            name = text[index + 2:closing]
            value = lookup(name)
            out.append(value if value is not None else f"$({name})")
            index = closing + 1
        else:
            out.append("$" + following)
            index += 2
    return "".join(out)


def container_field_path(pod, name: str) -> str:
    """How kubelet's events name one container of a pod (`involvedObject.fieldPath`):
    `spec.containers{NAME}`, `spec.initContainers{NAME}` or `spec.ephemeralContainers{NAME}`."""
    spec = pod.spec
    if any(container.name == name for container in spec.init_containers or []):
        return f"spec.initContainers{{{name}}}"
    if any(container.name == name for container in spec.ephemeral_containers or []):
        return f"spec.ephemeralContainers{{{name}}}"
    return f"spec.containers{{{name}}}"


def field_ref_value(pod, field_path: str, pod_ip: str, host_ip: str) -> str:
    """The downward API values a container's env can name with `valueFrom.fieldRef.fieldPath`."""
    metadata, spec = pod.metadata, pod.spec
    simple = {
        "metadata.name": metadata.name,
        "metadata.namespace": metadata.namespace,
        "metadata.uid": metadata.uid,
        "spec.nodeName": spec.node_name,
        # Kubernetes' ServiceAccount admission stores "default" when the pod names no account.
        "spec.serviceAccountName": spec.service_account_name or DEFAULT_SERVICE_ACCOUNT,
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if field_path in simple:
        return simple[field_path] or ""
    for prefix, mapping in (("metadata.labels", metadata.labels), ("metadata.annotations", metadata.annotations)):
        if field_path.startswith(prefix + "['") and field_path.endswith("']"):
            return (mapping or {}).get(field_path[len(prefix) + 2:-2], "")
    raise ContainerRuntimeError(
        "CreateContainerConfigError",
        f"pod {metadata.namespace}/{metadata.name}: env fieldRef.fieldPath {field_path!r} is not supported; use "
        "metadata.name, metadata.namespace, metadata.uid, metadata.labels['k'], metadata.annotations['k'], "
        "spec.nodeName, status.podIP or status.hostIP",
    )


def container_env(pod, container, pod_ip: str, host_ip: str, sources: EnvSources | None = None) -> list[tuple[str, str]]:
    """The container's own env in order: `envFrom` first, then `env`, each value expanded against
    the variables defined before it and the Service variables (ConfigMap, Secret, resource and
    Service values from `sources`), then the Service variables the container does not set."""
    defined: dict[str, str] = {}
    result: list[tuple[str, str]] = []
    services = sources.service_env(pod) if sources is not None else {}

    def lookup(name: str) -> str | None:
        # kubelet expands against the container's variables first, then the Services' ones.
        return defined[name] if name in defined else services.get(name)

    if sources is not None:
        for name, value in sources.env_from(pod, container):
            defined[name] = value
            result.append((name, value))
    for variable in container.env or []:
        value_from = variable.value_from
        if value_from is not None and value_from.field_ref is not None:
            value = field_ref_value(pod, value_from.field_ref.field_path, pod_ip, host_ip)
        elif value_from is not None:
            if sources is None:
                raise ContainerRuntimeError("CreateContainerConfigError",
                                            f"container {container.name}: env {variable.name}: no ConfigMap/Secret source")
            from_source = sources.value_from(pod, container, value_from)
            if from_source is None:
                continue  # an optional object or key that is missing: the variable is not set
            value = from_source
        else:
            value = expand(variable.value or "", lookup)
        defined[variable.name] = value
        result.append((variable.name, value))
    # The Service variables come last; a container's own variable of the same name wins.
    result += [(name, value) for name, value in sorted(services.items()) if name not in defined]
    return result


def merge_env(image_env: list[tuple[str, str]], own_env: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Image variables first; a container variable of the same name replaces the image's value."""
    merged = dict(image_env)
    merged.update(own_env)
    return list(merged.items())


def context_value(pod, container, field: str, default=None):
    """A securityContext field that pod and container both have: the container's wins."""
    for context in (getattr(container, "security_context", None), getattr(pod.spec, "security_context", None)):
        value = getattr(context, field, None) if context is not None else None
        if value is not None:
            return value
    return default


def verify_run_as_non_root(pod, container, image: ResolvedImage) -> None:
    """kubelet's verifyRunAsNonRoot: with runAsNonRoot, refuse uid 0, whether asked for or the image's."""
    if not context_value(pod, container, "run_as_non_root"):
        return
    where = f'(pod: "{pod.metadata.name}_{pod.metadata.namespace}({pod.metadata.uid})", container: {container.name})'
    explicit = context_value(pod, container, "run_as_user")
    if explicit is not None:
        if explicit == 0:
            raise ContainerRuntimeError("CreateContainerConfigError", f"container's runAsUser breaks non-root policy {where}")
        return
    user = image.user.split(":")[0] if image.user else ""
    if user and not user.isdigit():
        raise ContainerRuntimeError("CreateContainerConfigError", f"container has runAsNonRoot and image has non-numeric user "
                            f"({user}), cannot verify user is non-root {where}")
    if not user or int(user) == 0:
        raise ContainerRuntimeError("CreateContainerConfigError", f"container has runAsNonRoot and image will run as root {where}")


def run_as(pod, container, image: ResolvedImage) -> tuple[int, int]:
    """runAsUser/runAsGroup: the container's securityContext wins over the pod's, which wins over
    the image's numeric USER."""
    image_uid, image_gid = 0, 0
    user = image.user.split(":") if image.user else []
    if user and user[0].isdigit():
        image_uid = int(user[0])
        image_gid = int(user[1]) if len(user) > 1 and user[1].isdigit() else 0

    def pick(field: str, default: int | None) -> int | None:
        return context_value(pod, container, field, default)

    uid = pick("run_as_user", None)
    if uid is None and user and not user[0].isdigit():
        raise ContainerRuntimeError(
            "CreateContainerConfigError",
            f"unable to find user {user[0]}: no matching entries in passwd file of image {image.reference}; "
            "set securityContext.runAsUser to a numeric id, or use an image whose /etc/passwd defines the user",
        )
    return image_uid if uid is None else uid, pick("run_as_group", image_gid)


def cgroup_limits(container) -> CgroupLimits:
    """limits.memory -> bytes; limits.cpu 500m -> quota 50000 us per 100000 us; cpu shares from
    requests.cpu (or limits.cpu, which the API copies into requests when requests are absent):
    millis * 1024 / 1000, at least 2, as kubelet's MilliCPUToShares."""
    from minikube_py.api.quantity import cpu_millis, memory_bytes

    resources = container.resources
    limits = (resources.limits if resources is not None else None) or {}
    requests = (resources.requests if resources is not None else None) or {}
    result = CgroupLimits()
    if "memory" in limits:
        result.memory_bytes = int(memory_bytes(limits["memory"]))
    if "cpu" in limits:
        # 250m -> 25000 us of every 100000 us: a quarter of one CPU.
        result.cpu_quota_us = max(1000, int(cpu_millis(limits["cpu"])) * CPU_PERIOD_US // 1000)
        result.cpu_period_us = CPU_PERIOD_US
    # No CPU request means the smallest share, as kubelet's MilliCPUToShares(0) gives a BestEffort container.
    requested = requests.get("cpu", limits.get("cpu"))
    millis = int(cpu_millis(requested)) if requested is not None else 0
    result.cpu_shares = max(MIN_CPU_SHARES, millis * 1024 // 1000)
    return result


def capability_names(container) -> list[str] | None:
    """containerd's rule: Docker's default set; `add: [ALL]` makes it every capability, `drop:
    [ALL]` empties it; then the other names are added and dropped. None when nothing is asked.
    Names are written as in Kubernetes (`NET_ADMIN`); `CAP_NET_ADMIN` is accepted too."""
    context = getattr(container, "security_context", None)
    capabilities = getattr(context, "capabilities", None)
    if capabilities is None or (not capabilities.add and not capabilities.drop):
        return None

    def normalized(names: list[str] | None) -> list[str]:
        return [name.upper() if name.upper().startswith("CAP_") or name.upper() == "ALL" else f"CAP_{name.upper()}"
                for name in names or []]

    add, drop = normalized(capabilities.add), normalized(capabilities.drop)
    result = list(ALL_CAPABILITY_NUMBERS) if "ALL" in add else list(CAPABILITY_NUMBERS)
    if "ALL" in drop:
        result = []
    result += [name for name in add if name != "ALL" and name not in result]
    return [name for name in result if name not in drop]


def seccomp_profile_ref(pod, container, profiles_dir: str, seccomp_default: bool) -> str:
    """The runtime's profile reference: the container's seccompProfile, else the pod's, else
    RuntimeDefault (kubelet's --seccomp-default, on here by default) or Unconfined."""
    profile = context_value(pod, container, "seccomp_profile")
    if profile is None:
        return "runtime/default" if seccomp_default else "unconfined"
    if profile.type == "Localhost":
        return "localhost/" + os.path.join(profiles_dir, profile.localhost_profile or "")
    return SECCOMP_PROFILE_REFS.get(profile.type, "runtime/default")


def pod_devices(pod) -> list[str]:
    value = (pod.metadata.annotations or {}).get(DEVICES_ANNOTATION, "")
    return [name.strip() for name in value.split(",") if name.strip()]


def volume_mounts(pod, container, pod_dir: str, env: dict[str, str] | None = None) -> list[Mount]:
    """The container's volumeMounts resolved against the pod's volumes, then the pod files.
    `subPathExpr` is expanded with the container's `env` (`$(POD_NAME)`); configMap, secret,
    downwardAPI and projected volumes are always read-only, as kubelet mounts them."""
    volumes = {volume.name: volume for volume in pod.spec.volumes or []}
    mounts: list[Mount] = []
    for volume_mount in container.volume_mounts or []:
        volume = volumes.get(volume_mount.name)
        if volume is None:
            raise ContainerRuntimeError(
                "CreateContainerConfigError",
                f"container {container.name}: volumeMounts {volume_mount.name}: no volume of that name in spec.volumes",
            )
        read_only = bool(volume_mount.read_only)
        if getattr(volume, "host_path", None) is not None:
            source = volume.host_path.path
        elif getattr(volume, "empty_dir", None) is not None:
            # medium Memory: the pod's tmpfs there (agent/volumes.py), shared by its containers.
            source = os.path.join(pod_dir, "volumes", volume.name)
        elif getattr(volume, "persistent_volume_claim", None) is not None:
            # A link to the bound volume's directory (agent/volumes_claims.py), followed by the bind.
            source = os.path.join(pod_dir, "volumes", volume.name)
            read_only = read_only or bool(volume.persistent_volume_claim.read_only)
        elif is_api_data_volume(volume):
            source, read_only = os.path.join(pod_dir, "volumes", volume.name), True
        else:
            raise ContainerRuntimeError(
                "CreateContainerConfigError",
                f"volume {volume.name}: only emptyDir, hostPath, persistentVolumeClaim, configMap, secret, "
                "downwardAPI and projected volumes are supported",
            )
        sub_path = getattr(volume_mount, "sub_path", None)
        sub_path_expr = getattr(volume_mount, "sub_path_expr", None)
        if sub_path_expr:
            sub_path = expand(sub_path_expr, (env or {}).get)
        if sub_path:
            source = sub_path_source(source, sub_path, container.name, volume_mount.name)
        mounts.append(Mount(destination=volume_mount.mount_path, source=source, read_only=read_only))
    taken = {mount.destination for mount in mounts}
    for file_name, destination in (("etc-hosts", "/etc/hosts"), ("hostname", "/etc/hostname"),
                                   ("resolv.conf", "/etc/resolv.conf")):
        if destination not in taken:
            mounts.append(Mount(destination=destination, source=os.path.join(pod_dir, file_name)))
    return mounts


def log_path(pod_dir: str, container_name: str, attempt: int) -> str:
    return os.path.join(pod_dir, "logs", container_name, f"{attempt}.log")


def build_container_config(pod, container, image: ResolvedImage, attempt: int, pod_dir: str, pod_ip: str,
                           host_ip: str, seccomp_profiles_dir: str = "", seccomp_default: bool = True,
                           sources: EnvSources | None = None) -> ContainerConfig:
    own_env = container_env(pod, container, pod_ip, host_ip, sources)
    variables = dict(own_env)
    # command and args see the container's own env (not the image's), as kubelet expands them.
    command = [expand(part, variables.get) for part in container.command or []]
    args = [expand(part, variables.get) for part in container.args or []]
    argv = merge_argv(image.entrypoint, image.cmd, command, args)
    if not argv:
        raise ContainerRuntimeError(
            "CreateContainerError",
            f"container {container.name}: no command specified: image {container.image!r} has no ENTRYPOINT or "
            "CMD; set command in the container spec",
        )
    verify_run_as_non_root(pod, container, image)
    uid, gid = run_as(pod, container, image)
    context = getattr(container, "security_context", None)
    pod_context = getattr(pod.spec, "security_context", None)
    privileged = bool(getattr(context, "privileged", None))
    escalation = getattr(context, "allow_privilege_escalation", None)
    groups = list(getattr(pod_context, "supplemental_groups", None) or [])
    fs_group = getattr(pod_context, "fs_group", None)
    return ContainerConfig(
        sandbox_id=pod.metadata.uid,
        name=container.name,
        attempt=attempt,
        image=container.image,
        argv=argv,
        env=merge_env(image.env, own_env),
        working_dir=container.working_dir or image.working_dir or "/",
        uid=uid,
        gid=gid,
        mounts=volume_mounts(pod, container, pod_dir, variables),
        limits=cgroup_limits(container),
        log_path=log_path(pod_dir, container.name, attempt),
        capabilities=capability_names(container),
        privileged=privileged,
        read_only_rootfs=bool(getattr(context, "read_only_root_filesystem", None)),
        no_new_privileges=escalation is False and not privileged,
        seccomp_profile=seccomp_profile_ref(pod, container, seccomp_profiles_dir, seccomp_default),
        supplemental_groups=groups + ([fs_group] if fs_group is not None else []),
        devices=pod_devices(pod),
        stdin=bool(container.stdin),
        tty=bool(container.tty),
    )
