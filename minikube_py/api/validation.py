"""Semantic validation of API objects: Kubernetes' rules, field paths and messages.

The models already guarantee shape and types; this module checks meaning, following k/k
`pkg/apis/core/validation/validation.go` and `pkg/apis/apps/validation/validation.go`: names,
labels, container and volume rules, probes, quantities, selectors that must match their
template, rolling-update parameters, and on update the fields that may not change. Every
problem is one `(path, message)` pair, worded as the API server words it
(`Required value`, `Invalid value: "x": ...`, `Unsupported value: ...: supported values: ...`).

It stays one module, as long as the Kubernetes files it follows: the rules of the core and apps
kinds call each other (a pod template is validated inside a ReplicaSet and a Deployment).
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
from typing import Any, Callable

from minikube_py.api.apps import Deployment, DeploymentStrategy, ReplicaSet
from minikube_py.api.core import (
    Container, EnvVarSource, Event, Lifecycle, Namespace, Node, Pod, PodDNSConfig, PodSpec, PodTemplateSpec, Probe,
    ResourceFieldSelector,
    SeccompProfile, Volume,
)
from minikube_py.api.meta import INT64_MAX, INT64_MIN, IntOrString, LabelSelector, ObjectMeta, WireModel, wire_name
from minikube_py.api.names import (
    dns1123_label_errors,
    dns1123_subdomain_errors,
    label_value_errors,
    qualified_name_errors,
)
from minikube_py.api.quantity import QUANTITY_REGEX, parse_quantity
from minikube_py.api.selectors import Selector
from minikube_py.api.placement_validation import validate_pod_placement, validate_scheduling_gates_update, validate_taints
from minikube_py.api.volume_validation import API_DATA_SOURCES, validate_api_data_volume, validate_sub_path

MAX_INT32 = 2**31 - 1
# Limits of libc's resolver that Kubernetes enforces on a pod's dnsConfig.
MAX_DNS_NAMESERVERS = 3
MAX_DNS_SEARCH_PATHS = 32
MAX_DNS_SEARCH_CHARS = 2048
IP_ERROR = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
MAX_ANNOTATIONS_BYTES = 256 * 1024
STANDARD_FINALIZERS = ("kubernetes", "orphan", "foregroundDeletion")
STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")
# An env var may name these, or one label or annotation (`metadata.labels['key']`); the whole
# `metadata.labels` is for downwardAPI volumes only (k/k validEnvDownwardAPIFieldPathExpressions).
SUPPORTED_FIELD_REFS = (
    "metadata.name", "metadata.namespace", "metadata.uid",
    "spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
)
_SUBSCRIPTED_FIELD_REF = re.compile(r"^metadata\.(labels|annotations)\['[^']+'\]$")
ALLOWED_POD_UPDATES = ("`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
                       "`spec.tolerations` (only additions to existing tolerations)")

_ENV_VAR_NAME = r"[-._a-zA-Z][-._a-zA-Z0-9]*"
ENV_VAR_NAME_ERROR = (
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', "
    "and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used "
    f"for validation is '{_ENV_VAR_NAME}')"
)
PERCENT_ERROR = (
    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', "
    "regex used for validation is '[0-9]+%')"
)


def show_value(value: Any) -> str:
    """A value as Kubernetes prints it after `Invalid value:`: strings quoted, maps as JSON."""
    if isinstance(value, WireModel):
        value = value.to_dict()
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=isinstance(value, dict), default=str)
    except (TypeError, ValueError):
        return repr(value)


def env_var_name_errors(name: str) -> list[str]:
    """Why `name` cannot be an environment variable's name (IsEnvVarName)."""
    return [] if re.fullmatch(_ENV_VAR_NAME, name) else [ENV_VAR_NAME_ERROR]


class Problems:
    """Collects `(path, message)` pairs with Kubernetes' message shapes."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append((path, message))

    def required(self, path: str, detail: str = "") -> None:
        self.add(path, f"Required value: {detail}" if detail else "Required value")

    def invalid(self, path: str, value: Any, detail: str) -> None:
        self.add(path, f"Invalid value: {show_value(value)}: {detail}")

    def unsupported(self, path: str, value: Any, supported: tuple[str, ...]) -> None:
        choices = ", ".join(f'"{choice}"' for choice in supported)
        self.add(path, f"Unsupported value: {show_value(value)}: supported values: {choices}")

    def duplicate(self, path: str, value: Any) -> None:
        self.add(path, f"Duplicate value: {show_value(value)}")

    def forbidden(self, path: str, detail: str) -> None:
        self.add(path, f"Forbidden: {detail}")

    def not_found(self, path: str, value: Any) -> None:
        self.add(path, f"Not found: {show_value(value)}")

    def check_each(self, path: str, value: Any, reasons: list[str]) -> None:
        for reason in reasons:
            self.invalid(path, value, reason)

    def non_negative(self, path: str, value: int | None) -> None:
        if value is not None and value < 0:
            self.invalid(path, value, "must be greater than or equal to 0")

    def in_range(self, path: str, value: int | None, low: int, high: int) -> None:
        if value is not None and not low <= value <= high:
            self.invalid(path, value, f"must be between {low} and {high}, inclusive")

    def one_of(self, path: str, value: str | None, supported: tuple[str, ...]) -> None:
        if value is not None and value not in supported:
            self.unsupported(path, value, supported)


# --- metadata ------------------------------------------------------------------------------


def _mask_trailing_dash(prefix: str) -> str:
    # A generateName prefix may end in '-' because random characters follow it.
    return prefix[:-1] + "a" if len(prefix) > 1 and prefix.endswith("-") else prefix


def validate_labels(problems: Problems, path: str, labels: dict[str, str] | None) -> None:
    for key, value in (labels or {}).items():
        problems.check_each(path, key, qualified_name_errors(key))
        problems.check_each(path, value, label_value_errors(value))


def validate_metadata(
    problems: Problems, metadata: ObjectMeta, namespaced: bool, name_rules: Callable[[str], list[str]]
) -> None:
    if metadata.name:
        problems.check_each("metadata.name", metadata.name, name_rules(metadata.name))
    elif metadata.generate_name:
        masked = _mask_trailing_dash(metadata.generate_name)
        problems.check_each("metadata.generateName", metadata.generate_name, name_rules(masked))
    else:
        problems.required("metadata.name", "name or generateName is required")
    if namespaced:
        if metadata.namespace:
            problems.check_each("metadata.namespace", metadata.namespace, dns1123_label_errors(metadata.namespace))
        else:
            problems.required("metadata.namespace")
    elif metadata.namespace:
        problems.forbidden("metadata.namespace", "not allowed on this type")
    validate_labels(problems, "metadata.labels", metadata.labels)
    annotations = metadata.annotations or {}
    for key in annotations:
        problems.check_each("metadata.annotations", key, qualified_name_errors(key.lower()))
    if sum(len(key) + len(value) for key, value in annotations.items()) > MAX_ANNOTATIONS_BYTES:
        problems.add("metadata.annotations", f"Too long: must have at most {MAX_ANNOTATIONS_BYTES} bytes")
    controllers = []
    for index, reference in enumerate(metadata.owner_references or []):
        path = f"metadata.ownerReferences[{index}]"
        for attribute in ("api_version", "kind", "name", "uid"):
            if not getattr(reference, attribute):
                problems.required(f"{path}.{wire_name(attribute)}")
        if reference.controller:
            controllers.append(f"{reference.kind}/{reference.name}")
    if len(controllers) > 1:
        problems.invalid(
            "metadata.ownerReferences",
            [reference.to_dict() for reference in metadata.owner_references or []],
            f'Only one reference can have Controller set to true. Found "true" in references for {" and ".join(controllers)}',
        )
    for index, finalizer in enumerate(metadata.finalizers or []):
        if finalizer not in STANDARD_FINALIZERS and (
            "/" not in finalizer or qualified_name_errors(finalizer)
        ):
            problems.invalid(
                f"metadata.finalizers[{index}]", finalizer, "name is neither a standard finalizer name nor is it fully qualified"
            )


# --- pods ----------------------------------------------------------------------------------


def _port_name_errors(name: str) -> list[str]:
    # IANA_SVC_NAME, as Kubernetes checks container port names and named probe ports.
    problems = []
    if len(name) > 15:
        problems.append("must be no more than 15 characters")
    if not re.fullmatch(r"[-a-z0-9]+", name):
        problems.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if "--" in name:
        problems.append("must not contain consecutive hyphens")
    if not re.search(r"[a-z]", name):
        problems.append("must contain at least one letter (a-z)")
    if name.startswith("-") or name.endswith("-"):
        problems.append("must not begin or end with a hyphen")
    return problems


def _validate_port(problems: Problems, path: str, port: IntOrString) -> None:
    if isinstance(port, int):
        problems.in_range(path, port, 1, 65535)
    else:
        problems.check_each(path, port, _port_name_errors(port))


def _validate_handler(problems: Problems, path: str, handler: Any, grace: int | None = None) -> None:
    """Kubernetes' validateHandler, shared by probes and lifecycle hooks: exactly one handler type
    (probes: exec, httpGet, tcpSocket; hooks also sleep, whose seconds must fit the grace period)."""
    handlers = [name for name in ("exec", "http_get", "tcp_socket", "sleep") if getattr(handler, name, None) is not None]
    if not handlers:
        problems.required(path, "must specify a handler type")
    elif len(handlers) > 1:
        problems.forbidden(f"{path}.{wire_name(handlers[1])}", "may not specify more than 1 handler type")
    if handler.exec is not None and not handler.exec.command:
        problems.required(f"{path}.exec.command")
    if handler.http_get is not None:
        _validate_port(problems, f"{path}.httpGet.port", handler.http_get.port)
        problems.one_of(f"{path}.httpGet.scheme", handler.http_get.scheme, ("HTTP", "HTTPS"))
        for index, header in enumerate(handler.http_get.http_headers or []):
            if not re.fullmatch(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+", header.name):
                problems.invalid(f"{path}.httpGet.httpHeaders[{index}].name", header.name, "a valid HTTP header must consist of alphanumeric characters or '-'")
    if handler.tcp_socket is not None:
        _validate_port(problems, f"{path}.tcpSocket.port", handler.tcp_socket.port)
    sleep = getattr(handler, "sleep", None)
    # A zero sleep is allowed (AllowPodLifecycleSleepActionZeroValue, on by default since 1.33).
    if sleep is not None and grace is not None and not 0 <= sleep.seconds <= grace:
        problems.invalid(f"{path}.sleep", sleep.seconds,
                         f"must be non-negative and less than terminationGracePeriodSeconds ({grace})")


def validate_lifecycle(problems: Problems, path: str, lifecycle: Lifecycle | None, grace: int | None) -> None:
    if lifecycle is None:
        return
    for attribute in ("post_start", "pre_stop"):
        handler = getattr(lifecycle, attribute)
        if handler is not None:
            _validate_handler(problems, f"{path}.{wire_name(attribute)}", handler, grace)


def validate_probe(problems: Problems, path: str, probe: Probe | None, probe_kind: str) -> None:
    if probe is None:
        return
    _validate_handler(problems, path, probe)
    for attribute in ("initial_delay_seconds", "timeout_seconds", "period_seconds", "success_threshold", "failure_threshold"):
        problems.non_negative(f"{path}.{wire_name(attribute)}", getattr(probe, attribute))
    if probe_kind in ("liveness", "startup") and probe.success_threshold != 1:
        problems.invalid(f"{path}.successThreshold", probe.success_threshold, "must be 1")
    grace = probe.termination_grace_period_seconds
    if grace is not None:
        if probe_kind == "readiness":
            problems.invalid(f"{path}.terminationGracePeriodSeconds", grace, "must not be set for readinessProbes")
        elif grace <= 0:
            problems.invalid(f"{path}.terminationGracePeriodSeconds", grace, "must be greater than 0")


def _validate_resources(problems: Problems, path: str, container: Container) -> None:
    if container.resources is None:
        return
    parsed: dict[str, dict[str, Any]] = {}
    for group in ("limits", "requests"):
        parsed[group] = {}
        for resource, text in (getattr(container.resources, group) or {}).items():
            at = f"{path}.{group}[{resource}]"
            if resource not in STANDARD_RESOURCES and not resource.startswith("hugepages-") and "/" not in resource:
                problems.invalid(at, resource, "must be a standard resource type or fully qualified")
                continue
            try:
                value = parse_quantity(text)
            except ValueError:
                problems.invalid(at, text, f"quantities must match the regular expression '{QUANTITY_REGEX}'")
                continue
            if value < 0:
                problems.invalid(at, text, "must be greater than or equal to 0")
                continue
            parsed[group][resource] = (value, text)
    for resource, (requested, text) in parsed["requests"].items():
        limit = parsed["limits"].get(resource)
        if limit is not None and requested > limit[0]:
            problems.invalid(f"{path}.requests[{resource}]", text, f"must be less than or equal to {resource} limit of {limit[1]}")


ENV_RESOURCE_FIELDS = (
    "limits.cpu", "limits.memory", "limits.ephemeral-storage",
    "requests.cpu", "requests.memory", "requests.ephemeral-storage",
)
_VALUE_FROM_SOURCES = "`fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"


def _validate_env(problems: Problems, path: str, container: Container) -> None:
    for index, variable in enumerate(container.env or []):
        at = f"{path}[{index}]"
        if not variable.name:
            problems.required(f"{at}.name")
        elif not re.fullmatch(_ENV_VAR_NAME, variable.name):
            problems.invalid(f"{at}.name", variable.name, ENV_VAR_NAME_ERROR)
        if variable.value_from is None:
            continue
        if variable.value:
            problems.invalid(f"{at}.valueFrom", "", "may not be specified when `value` is not empty")
        _validate_value_from(problems, f"{at}.valueFrom", variable.value_from)


def _validate_value_from(problems: Problems, at: str, source: EnvVarSource) -> None:
    given = [name for name in ("field_ref", "resource_field_ref", "config_map_key_ref", "secret_key_ref")
             if getattr(source, name) is not None]
    if not given:
        problems.required(at, f"must specify one of: {_VALUE_FROM_SOURCES}")
        return
    if len(given) > 1:
        problems.invalid(at, "", "may not have more than one field specified at a time")
        return
    field_ref = source.field_ref
    if field_ref is not None:
        if field_ref.api_version not in (None, "v1"):
            problems.unsupported(f"{at}.fieldRef.apiVersion", field_ref.api_version, ("v1",))
        if not field_ref.field_path:
            problems.required(f"{at}.fieldRef.fieldPath")
        elif not _SUBSCRIPTED_FIELD_REF.match(field_ref.field_path):
            problems.one_of(f"{at}.fieldRef.fieldPath", field_ref.field_path, SUPPORTED_FIELD_REFS)
    for field, wire in (("config_map_key_ref", "configMapKeyRef"), ("secret_key_ref", "secretKeyRef")):
        reference = getattr(source, field)
        if reference is None:
            continue
        if not reference.name:
            problems.required(f"{at}.{wire}.name")
        if not reference.key:
            problems.required(f"{at}.{wire}.key")
        elif not re.fullmatch(r"[-._a-zA-Z0-9]+", reference.key) or reference.key in (".", ".."):
            problems.invalid(f"{at}.{wire}.key", reference.key,
                             "a valid config key must consist of alphanumeric characters, '-', '_' or '.'")
    resource_ref = source.resource_field_ref
    if resource_ref is not None:
        if not resource_ref.resource:
            problems.required(f"{at}.resourceFieldRef.resource")
        else:
            problems.one_of(f"{at}.resourceFieldRef.resource", resource_ref.resource, ENV_RESOURCE_FIELDS)
        _validate_divisor(problems, f"{at}.resourceFieldRef.divisor", resource_ref)


def _validate_divisor(problems: Problems, path: str, resource_ref: ResourceFieldSelector) -> None:
    """Kubernetes allows only unit divisors: 1m or 1 for cpu, 1 and the 1k..1Ei units for memory."""
    if resource_ref.divisor is None:
        return
    text = str(resource_ref.divisor)
    if resource_ref.resource.endswith(".cpu"):
        allowed: tuple[str, ...] = ("1m", "1")
    else:
        allowed = ("1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei")
    try:
        value = parse_quantity(text)
    except ValueError:
        problems.invalid(path, text, "must be a quantity")
        return
    if value not in {parse_quantity(unit) for unit in allowed}:
        problems.unsupported(path, text, allowed)


def _validate_env_from(problems: Problems, path: str, container: Container) -> None:
    for index, source in enumerate(container.env_from or []):
        at = f"{path}[{index}]"
        if source.prefix and not re.fullmatch(_ENV_VAR_NAME, source.prefix):
            problems.invalid(f"{at}.prefix", source.prefix, ENV_VAR_NAME_ERROR)
        references = [(wire, reference) for wire, reference in
                      (("configMapRef", source.config_map_ref), ("secretRef", source.secret_ref)) if reference is not None]
        if not references:
            problems.required(at, "must specify one of: `configMapRef` or `secretRef`")
        elif len(references) > 1:
            problems.invalid(at, "", "may not have more than one field specified at a time")
        else:
            wire, reference = references[0]
            if not reference.name:
                problems.required(f"{at}.{wire}.name")


def _validate_ports(problems: Problems, path: str, container: Container) -> None:
    seen_names: set[str] = set()
    for index, port in enumerate(container.ports or []):
        at = f"{path}[{index}]"
        problems.in_range(f"{at}.containerPort", port.container_port, 1, 65535)
        if port.host_port:
            problems.in_range(f"{at}.hostPort", port.host_port, 1, 65535)
        problems.one_of(f"{at}.protocol", port.protocol, ("SCTP", "TCP", "UDP"))
        if port.name:
            problems.check_each(f"{at}.name", port.name, _port_name_errors(port.name))
            if port.name in seen_names:
                problems.duplicate(f"{at}.name", port.name)
            seen_names.add(port.name)


def _validate_volume_mounts(problems: Problems, path: str, container: Container, volume_names: set[str]) -> None:
    mount_paths: set[str] = set()
    for index, mount in enumerate(container.volume_mounts or []):
        at = f"{path}[{index}]"
        if not mount.name:
            problems.required(f"{at}.name")
        elif mount.name not in volume_names:
            problems.not_found(f"{at}.name", mount.name)
        if not mount.mount_path:
            problems.required(f"{at}.mountPath")
        elif not mount.mount_path.startswith("/"):
            problems.invalid(f"{at}.mountPath", mount.mount_path, "must be an absolute path")
        elif mount.mount_path in mount_paths:
            problems.invalid(f"{at}.mountPath", mount.mount_path, "must be unique")
        mount_paths.add(mount.mount_path)
        validate_sub_path(problems, at, mount.sub_path, mount.sub_path_expr)


def validate_container(problems: Problems, path: str, container: Container, volume_names: set[str], init: bool,
                       grace: int | None = None) -> None:
    if not container.name:
        problems.required(f"{path}.name")
    else:
        problems.check_each(f"{path}.name", container.name, dns1123_label_errors(container.name))
    if not container.image:
        problems.required(f"{path}.image")
    elif container.image != container.image.strip():
        problems.invalid(f"{path}.image", container.image, "must not have leading or trailing whitespace")
    problems.one_of(f"{path}.imagePullPolicy", container.image_pull_policy, ("Always", "IfNotPresent", "Never"))
    problems.one_of(
        f"{path}.terminationMessagePolicy", container.termination_message_policy, ("File", "FallbackToLogsOnError")
    )
    if not container.termination_message_path:
        problems.required(f"{path}.terminationMessagePath")
    _validate_ports(problems, f"{path}.ports", container)
    _validate_env(problems, f"{path}.env", container)
    _validate_env_from(problems, f"{path}.envFrom", container)
    _validate_resources(problems, f"{path}.resources", container)
    # A sidecar (an init container with restartPolicy Always) may have probes and hooks; other
    # init containers may not, and app containers have no restartPolicy of their own.
    sidecar = init and container.restart_policy == "Always"
    if container.restart_policy is not None:
        if not init:
            problems.forbidden(f"{path}.restartPolicy", "may not be set for non-init containers")
        elif not sidecar:
            problems.unsupported(f"{path}.restartPolicy", container.restart_policy, ("Always",))
    for probe_kind in ("liveness", "readiness", "startup"):
        probe = getattr(container, f"{probe_kind}_probe")
        if init and not sidecar and probe is not None:
            problems.forbidden(f"{path}.{probe_kind}Probe", "may not be set for init containers without restartPolicy=Always")
        else:
            validate_probe(problems, f"{path}.{probe_kind}Probe", probe, probe_kind)
    if init and not sidecar and container.lifecycle is not None:
        problems.forbidden(f"{path}.lifecycle", "may not be set for init containers without restartPolicy=Always")
    else:
        validate_lifecycle(problems, f"{path}.lifecycle", container.lifecycle, grace)
    context = container.security_context
    if context is not None:
        problems.in_range(f"{path}.securityContext.runAsUser", context.run_as_user, 0, MAX_INT32)
        problems.in_range(f"{path}.securityContext.runAsGroup", context.run_as_group, 0, MAX_INT32)
        if context.privileged and context.allow_privilege_escalation is False:
            problems.invalid(
                f"{path}.securityContext", context, "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"
            )
        if context.allow_privilege_escalation is False and "SYS_ADMIN" in ((context.capabilities and context.capabilities.add) or []):
            problems.invalid(
                f"{path}.securityContext", context,
                "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
            )
        validate_seccomp_profile(problems, f"{path}.securityContext.seccompProfile", context.seccomp_profile)
    _validate_volume_mounts(problems, f"{path}.volumeMounts", container, volume_names)


SECCOMP_PROFILE_TYPES = ("Localhost", "RuntimeDefault", "Unconfined")


def validate_seccomp_profile(problems: Problems, path: str, profile: SeccompProfile | None) -> None:
    """Kubernetes' validateSeccompProfileField: a known type; localhostProfile a relative path
    below the profiles directory, set exactly when the type is Localhost."""
    if profile is None:
        return
    if not profile.type:
        problems.required(f"{path}.type", "type is required when seccompProfile is set")
    elif profile.type not in SECCOMP_PROFILE_TYPES:
        problems.unsupported(f"{path}.type", profile.type, SECCOMP_PROFILE_TYPES)
    local = profile.localhost_profile
    if profile.type == "Localhost":
        if local is None:
            problems.required(f"{path}.localhostProfile", "must be set when seccomp type is Localhost")
        elif local.startswith("/"):
            problems.invalid(f"{path}.localhostProfile", local, "must be a relative path")
        elif ".." in local.split("/"):
            problems.invalid(f"{path}.localhostProfile", local, "must not contain '..'")
    elif local is not None:
        problems.invalid(f"{path}.localhostProfile", profile, "can only be set when seccomp type is Localhost")


def _validate_volume(problems: Problems, path: str, volume: Volume) -> None:
    if not volume.name:
        problems.required(f"{path}.name")
    else:
        problems.check_each(f"{path}.name", volume.name, dns1123_label_errors(volume.name))
    sources = [name for name in ("empty_dir", "host_path", "persistent_volume_claim", *API_DATA_SOURCES)
               if getattr(volume, name) is not None]
    if not sources:
        problems.required(path, "must specify a volume type")
    elif len(sources) > 1:
        problems.forbidden(f"{path}.{wire_name(sources[1])}", "may not specify more than 1 volume type")
    if volume.empty_dir is not None:
        problems.one_of(f"{path}.emptyDir.medium", volume.empty_dir.medium or "", ("", "Memory"))
        if volume.empty_dir.size_limit is not None:
            try:
                if parse_quantity(volume.empty_dir.size_limit) < 0:
                    problems.invalid(f"{path}.emptyDir.sizeLimit", volume.empty_dir.size_limit, "must be greater than or equal to 0")
            except ValueError:
                problems.invalid(
                    f"{path}.emptyDir.sizeLimit", volume.empty_dir.size_limit, f"quantities must match the regular expression '{QUANTITY_REGEX}'"
                )
    if volume.host_path is not None:
        host_path = volume.host_path.path
        if not host_path:
            problems.required(f"{path}.hostPath.path")
        elif not host_path.startswith("/"):
            problems.invalid(f"{path}.hostPath.path", host_path, "must be an absolute path")
        elif ".." in host_path.split("/"):
            problems.invalid(f"{path}.hostPath.path", host_path, "must not contain '..'")
        problems.one_of(
            f"{path}.hostPath.type",
            volume.host_path.type,
            ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"),
        )
    if volume.persistent_volume_claim is not None and not volume.persistent_volume_claim.claim_name:
        problems.required(f"{path}.persistentVolumeClaim.claimName")
    validate_api_data_volume(problems, path, volume, _validate_divisor)


def validate_pod_spec(problems: Problems, path: str, spec: PodSpec) -> None:
    volume_names: set[str] = set()
    for index, volume in enumerate(spec.volumes or []):
        _validate_volume(problems, f"{path}.volumes[{index}]", volume)
        if volume.name in volume_names:
            problems.duplicate(f"{path}.volumes[{index}].name", volume.name)
        volume_names.add(volume.name)
    if not spec.containers:
        problems.required(f"{path}.containers")
    container_names: set[str] = set()
    for field_name, containers, init in (
        ("initContainers", spec.init_containers or [], True),
        ("containers", spec.containers, False),
    ):
        for index, container in enumerate(containers):
            at = f"{path}.{field_name}[{index}]"
            validate_container(problems, at, container, volume_names, init, spec.termination_grace_period_seconds)
            if container.name and container.name in container_names:
                problems.duplicate(f"{at}.name", container.name)
            container_names.add(container.name)
    problems.one_of(f"{path}.restartPolicy", spec.restart_policy, ("Always", "OnFailure", "Never"))
    problems.one_of(f"{path}.dnsPolicy", spec.dns_policy, ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"))
    validate_pod_dns_config(problems, f"{path}.dnsConfig", spec.dns_config, spec.dns_policy)
    problems.non_negative(f"{path}.terminationGracePeriodSeconds", spec.termination_grace_period_seconds)
    problems.in_range(f"{path}.activeDeadlineSeconds", spec.active_deadline_seconds, 1, MAX_INT32)
    for attribute, rules in (
        ("hostname", dns1123_label_errors),
        ("subdomain", dns1123_label_errors),
        ("node_name", dns1123_subdomain_errors),
        ("service_account_name", dns1123_subdomain_errors),
        ("scheduler_name", dns1123_subdomain_errors),
    ):
        value = getattr(spec, attribute)
        if value:
            problems.check_each(f"{path}.{wire_name(attribute)}", value, rules(value))
    validate_labels(problems, f"{path}.nodeSelector", spec.node_selector)
    if spec.security_context is not None:
        for attribute in ("run_as_user", "run_as_group", "fs_group"):
            problems.in_range(
                f"{path}.securityContext.{wire_name(attribute)}", getattr(spec.security_context, attribute), 0, MAX_INT32
            )
        for index, group in enumerate(spec.security_context.supplemental_groups or []):
            problems.in_range(f"{path}.securityContext.supplementalGroups[{index}]", group, 0, MAX_INT32)
        validate_seccomp_profile(problems, f"{path}.securityContext.seccompProfile", spec.security_context.seccomp_profile)
    for index, gate in enumerate(spec.readiness_gates or []):
        problems.check_each(f"{path}.readinessGates[{index}].conditionType", gate.condition_type, qualified_name_errors(gate.condition_type))
    validate_pod_placement(problems, path, spec, validate_label_selector)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def validate_pod_dns_config(problems: Problems, path: str, config: PodDNSConfig | None, policy: str | None) -> None:
    """ValidatePodDNSConfig: the limits of libc's resolver (3 name servers, 32 search domains of
    2048 characters in all), and `dnsPolicy: None` needs a name server to ask."""
    if policy == "None":
        if config is None:
            problems.required(path, "must provide `dnsConfig` when `dnsPolicy` is None")
            return
        if not config.nameservers:
            problems.required(f"{path}.nameservers", "must provide at least one DNS nameserver when `dnsPolicy` is None")
            return
    if config is None:
        return
    nameservers, searches = config.nameservers or [], config.searches or []
    if len(nameservers) > MAX_DNS_NAMESERVERS:
        problems.invalid(f"{path}.nameservers", nameservers,
                         f"must not have more than {MAX_DNS_NAMESERVERS} nameservers")
    for index, address in enumerate(nameservers):
        if not _is_ip(address):
            problems.invalid(f"{path}.nameservers[{index}]", address, IP_ERROR)
    if len(searches) > MAX_DNS_SEARCH_PATHS:
        problems.invalid(f"{path}.searches", searches, f"must not have more than {MAX_DNS_SEARCH_PATHS} search paths")
    if len(" ".join(searches)) > MAX_DNS_SEARCH_CHARS:
        problems.invalid(f"{path}.searches", searches, f"must not have more than {MAX_DNS_SEARCH_CHARS} characters "
                                                        "(including spaces) in the search list")
    for index, search in enumerate(searches):
        if search == ".":
            continue  # the root domain is allowed
        search = search.removesuffix(".")  # a trailing dot is fine
        problems.check_each(f"{path}.searches[{index}]", search, dns1123_subdomain_errors(search))
    for index, option in enumerate(config.options or []):
        if not option.name:
            problems.required(f"{path}.options[{index}]", "Option.Name must not be empty")


# --- ReplicaSets and Deployments ------------------------------------------------------------


def validate_label_selector(problems: Problems, path: str, selector: LabelSelector) -> bool:
    """Check a selector's syntax; True when it is usable for matching."""
    before = len(problems.items)
    validate_labels(problems, f"{path}.matchLabels", selector.match_labels)
    for index, expression in enumerate(selector.match_expressions or []):
        at = f"{path}.matchExpressions[{index}]"
        problems.check_each(f"{at}.key", expression.key, qualified_name_errors(expression.key))
        if expression.operator in ("In", "NotIn"):
            if not expression.values:
                problems.required(f"{at}.values", "must be specified when `operator` is 'In' or 'NotIn'")
        elif expression.operator in ("Exists", "DoesNotExist"):
            if expression.values:
                problems.forbidden(f"{at}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        else:
            problems.invalid(f"{at}.operator", expression.operator, "not a valid selector operator")
        for value in expression.values or []:
            problems.check_each(f"{at}.values", value, label_value_errors(value))
    return len(problems.items) == before


def validate_replicated_template(
    problems: Problems, selector: LabelSelector | None, template: PodTemplateSpec, kind: str
) -> None:
    """Rules shared by ReplicaSet and Deployment specs (apps/v1)."""
    usable = False
    if selector is None:
        problems.required("spec.selector")
    else:
        usable = validate_label_selector(problems, "spec.selector", selector)
        if not selector.match_labels and not selector.match_expressions:
            # Kubernetes says "deployment" for ReplicaSets too.
            problems.invalid("spec.selector", selector,
                             f"empty selector is invalid for {'statefulset' if kind == 'StatefulSet' else 'deployment'}")
            usable = False
    validate_labels(problems, "spec.template.metadata.labels", template.metadata.labels)
    if usable and not Selector.from_label_selector(selector).matches(template.metadata.labels):
        problems.invalid("spec.template.metadata.labels", template.metadata.labels, "`selector` does not match template `labels`")
    validate_pod_spec(problems, "spec.template.spec", template.spec)
    if template.spec.restart_policy != "Always" and template.spec.restart_policy in ("OnFailure", "Never"):
        problems.unsupported("spec.template.spec.restartPolicy", template.spec.restart_policy, ("Always",))
    if template.spec.active_deadline_seconds is not None:
        problems.forbidden("spec.template.spec.activeDeadlineSeconds", f"activeDeadlineSeconds in {kind} is not Supported")


def percent_or_int(problems: Problems, path: str, value: IntOrString | None) -> int | None:
    """Validate an int-or-percent; returns its number (percent without '%'), None if invalid."""
    if value is None:
        return None
    if isinstance(value, int):
        if value < 0:
            problems.invalid(path, value, "must be greater than or equal to 0")
            return None
        return value
    if not re.fullmatch(r"[0-9]+%", value):
        problems.invalid(path, value, PERCENT_ERROR)
        return None
    return int(value[:-1])


def _validate_strategy(problems: Problems, strategy: DeploymentStrategy) -> None:
    if strategy.type == "Recreate":
        if strategy.rolling_update is not None:
            problems.forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")
        return
    if strategy.type != "RollingUpdate":
        problems.unsupported("spec.strategy.type", strategy.type, ("Recreate", "RollingUpdate"))
        return
    rolling = strategy.rolling_update
    if rolling is None:
        problems.required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil")
        return
    path = "spec.strategy.rollingUpdate"
    unavailable = percent_or_int(problems, f"{path}.maxUnavailable", rolling.max_unavailable)
    surge = percent_or_int(problems, f"{path}.maxSurge", rolling.max_surge)
    if unavailable == 0 and surge == 0:
        problems.invalid(f"{path}.maxUnavailable", rolling.max_unavailable, "may not be 0 when `maxSurge` is 0")
    if isinstance(rolling.max_unavailable, str) and unavailable is not None and unavailable > 100:
        problems.invalid(f"{path}.maxUnavailable", rolling.max_unavailable, "must not be greater than 100%")


def _validate_replica_set(problems: Problems, replica_set: ReplicaSet) -> None:
    spec = replica_set.spec
    problems.non_negative("spec.replicas", spec.replicas)
    problems.non_negative("spec.minReadySeconds", spec.min_ready_seconds)
    validate_replicated_template(problems, spec.selector, spec.template, "ReplicaSet")


def _validate_deployment(problems: Problems, deployment: Deployment) -> None:
    spec = deployment.spec
    problems.non_negative("spec.replicas", spec.replicas)
    validate_replicated_template(problems, spec.selector, spec.template, "Deployment")
    _validate_strategy(problems, spec.strategy)
    problems.non_negative("spec.minReadySeconds", spec.min_ready_seconds)
    problems.non_negative("spec.revisionHistoryLimit", spec.revision_history_limit)
    problems.non_negative("spec.progressDeadlineSeconds", spec.progress_deadline_seconds)
    if spec.progress_deadline_seconds <= spec.min_ready_seconds:
        problems.invalid("spec.progressDeadlineSeconds", spec.progress_deadline_seconds, "must be greater than minReadySeconds")


# --- DeleteOptions ---------------------------------------------------------------------------


def grace_period_problem(value: Any) -> str | None:
    """What is wrong with a DeleteOptions `gracePeriodSeconds` (an int64, query or body), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        return f"gracePeriodSeconds: Invalid value: {show_value(value)}: must be an integer"
    if not INT64_MIN <= value <= INT64_MAX:
        return (
            f"gracePeriodSeconds: Invalid value: {value}: cannot unmarshal number into a field of type int64 "
            f"(must be between {INT64_MIN} and {INT64_MAX}, inclusive)"
        )
    return None


# --- entry points ---------------------------------------------------------------------------


def validate_object(obj: WireModel) -> list[tuple[str, str]]:
    """Every semantic problem of a parsed, defaulted object, as `(path, message)` pairs."""
    problems = Problems()
    if isinstance(obj, Namespace):
        validate_metadata(problems, obj.metadata, False, dns1123_label_errors)
    elif isinstance(obj, Node):
        validate_metadata(problems, obj.metadata, False, dns1123_subdomain_errors)
        validate_taints(problems, "spec.taints", obj.spec.taints)
    elif isinstance(obj, (Pod, ReplicaSet, Deployment, Event)):
        validate_metadata(problems, obj.metadata, True, dns1123_subdomain_errors)
    if isinstance(obj, Pod):
        validate_pod_spec(problems, "spec", obj.spec)
    elif isinstance(obj, ReplicaSet):
        _validate_replica_set(problems, obj)
    elif isinstance(obj, Deployment):
        _validate_deployment(problems, obj)
    elif isinstance(obj, Event):
        problems.one_of("type", obj.type or None, ("Normal", "Warning"))
    return problems.items


def _wire_dict(obj: WireModel | dict[str, Any]) -> dict[str, Any]:
    return obj.to_dict() if isinstance(obj, WireModel) else copy.deepcopy(obj)


def _immutable(problems: Problems, path: str, new: Any, old: Any) -> None:
    if new != old:
        problems.invalid(path, new, "field is immutable")


def validate_update(new: WireModel | dict[str, Any], old: WireModel | dict[str, Any]) -> list[tuple[str, str]]:
    """Problems of replacing `old` by `new` (models or wire dicts): fields that may not change.

    The new object's own validity is `parse_object`'s job; this only compares the two.
    """
    new_dict, old_dict = _wire_dict(new), _wire_dict(old)
    problems = Problems()
    new_meta, old_meta = new_dict.get("metadata") or {}, old_dict.get("metadata") or {}
    for key in ("name", "namespace"):
        if old_meta.get(key):
            _immutable(problems, f"metadata.{key}", new_meta.get(key), old_meta.get(key))
    kind = new_dict.get("kind")
    new_spec, old_spec = new_dict.get("spec") or {}, old_dict.get("spec") or {}
    if kind in ("ReplicaSet", "Deployment", "DaemonSet"):
        _immutable(problems, "spec.selector", new_spec.get("selector"), old_spec.get("selector"))
    if kind == "Pod":
        _validate_pod_update(problems, new_spec, old_spec)
    return problems.items


def _allow_scheduling_updates(problems: Problems, new_rest: dict[str, Any], old_rest: dict[str, Any]) -> None:
    """What Kubernetes lets change in a pod's scheduling fields: tolerations may be added (an
    existing one may only change its tolerationSeconds), scheduling gates may only be removed, and
    while the pod is still gated its nodeSelector and affinity may change. The allowed parts are
    taken out of both specs so the caller's comparison only sees the rest."""
    old_tolerations = [dict(t, tolerationSeconds=None) for t in old_rest.pop("tolerations", None) or []]
    new_tolerations = [dict(t, tolerationSeconds=None) for t in new_rest.pop("tolerations", None) or []]
    if any(toleration not in new_tolerations for toleration in old_tolerations):
        new_rest["tolerations"], old_rest["tolerations"] = new_tolerations, old_tolerations
    gates_before = old_rest.pop("schedulingGates", None)
    validate_scheduling_gates_update(problems, "spec.schedulingGates", new_rest.pop("schedulingGates", None), gates_before)
    if gates_before:
        for key in ("nodeSelector", "affinity"):
            new_rest.pop(key, None)
            old_rest.pop(key, None)


def _validate_pod_update(problems: Problems, new_spec: dict[str, Any], old_spec: dict[str, Any]) -> None:
    # Copy over what Kubernetes lets change (images, activeDeadlineSeconds); any difference left is forbidden.
    new_rest, old_rest = copy.deepcopy(new_spec), copy.deepcopy(old_spec)
    new_rest.pop("activeDeadlineSeconds", None)
    old_rest.pop("activeDeadlineSeconds", None)
    if old_spec.get("nodeName"):
        _immutable(problems, "spec.nodeName", new_spec.get("nodeName"), old_spec.get("nodeName"))
        new_rest.pop("nodeName", None)
        old_rest.pop("nodeName", None)
    _allow_scheduling_updates(problems, new_rest, old_rest)
    for key in ("containers", "initContainers"):
        new_containers, old_containers = new_rest.get(key), old_rest.get(key)
        if isinstance(new_containers, list) and isinstance(old_containers, list):
            for new_container, old_container in zip(new_containers, old_containers, strict=False):
                if isinstance(new_container, dict) and isinstance(old_container, dict):
                    # imagePullPolicy goes with the image: a new tag re-defaults it (latest -> Always).
                    if new_container.get("image") != old_container.get("image"):
                        for key in ("imagePullPolicy", "image"):
                            new_container.pop(key, None)
                            if key in old_container:
                                new_container[key] = old_container[key]
    if new_rest != old_rest:
        problems.forbidden("spec", f"pod updates may not change fields other than {ALLOWED_POD_UPDATES}")
