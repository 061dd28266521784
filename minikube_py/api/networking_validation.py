"""Defaulting and validation of Service, Endpoints, EndpointSlice, ConfigMap, Secret, ServiceAccount.

Follows k/k `pkg/apis/core/v1/defaults.go` (SetDefaults_Service, SetDefaults_Secret) and
`pkg/apis/core/validation/validation.go` (ValidateService, ValidateConfigMap, ValidateSecret and
their updates) with the API server's wording, so `kubectl apply` of a bad Service says the same
thing here as on a real cluster. `api.resources` attaches these functions to their kinds
(`ResourceInfo.defaults`, `.validate`, `.validate_update`); `parse_object` and the Registry call
them. What needs the cluster's state (a free ClusterIP, a free node port, the node port range)
is checked when the Registry allocates (`apiserver.service_allocation`).
"""

from __future__ import annotations

from typing import Any

import base64
import binascii
import ipaddress
import json
import re

from minikube_py.api.configuration import (
    SECRET_TYPE_BASIC_AUTH,
    SECRET_TYPE_DOCKER_CONFIG,
    SECRET_TYPE_DOCKER_CONFIG_JSON,
    SECRET_TYPE_OPAQUE,
    SECRET_TYPE_SERVICE_ACCOUNT_TOKEN,
    SECRET_TYPE_SSH_AUTH,
    SECRET_TYPE_TLS,
    ConfigMap,
    Secret,
    ServiceAccount,
)
from minikube_py.api.meta import WireModel
from minikube_py.api.names import dns1123_label_errors, dns1123_subdomain_errors
from minikube_py.api.networking import (
    ClientIPConfig,
    EndpointSlice,
    Endpoints,
    Service,
    SessionAffinityConfig,
)
from minikube_py.api.validation import IP_ERROR, Problems, _is_ip, _port_name_errors, validate_labels, validate_metadata

DEFAULT_NAMESPACE = "default"
MAX_CONFIG_BYTES = 1024 * 1024  # core.MaxSecretSize, the limit of a ConfigMap's and a Secret's data
DEFAULT_CLIENT_IP_TIMEOUT_SECONDS = 10800  # 3 hours, as SetDefaults_Service
MAX_CLIENT_IP_TIMEOUT_SECONDS = 86400
MAX_ENDPOINTS_PER_SLICE = 1000
MAX_ADDRESSES_PER_ENDPOINT = 100
MAX_PORTS_PER_SLICE = 100
SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
PROTOCOLS = ("SCTP", "TCP", "UDP")
REDACTED = "<secret contents redacted>"

_DNS1035_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"
DNS1035_LABEL_ERROR = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    f"validation is '{_DNS1035_LABEL}')"
)
_CONFIG_KEY = r"[-._a-zA-Z0-9]+"
CONFIG_KEY_ERROR = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    f"'KEY_NAME',  or 'key-name', regex used for validation is '{_CONFIG_KEY}')"
)


def dns1035_label_errors(text: str) -> list[str]:
    """Why `text` is not a DNS-1035 label, the rule for Service names (they become DNS names)."""
    problems = []
    if len(text) > 63:
        problems.append("must be no more than 63 characters")
    if not re.fullmatch(_DNS1035_LABEL, text):
        problems.append(DNS1035_LABEL_ERROR)
    return problems


def config_key_errors(key: str) -> list[str]:
    """apimachinery's IsConfigMapKey: a key must be usable as a file name in a volume."""
    problems = []
    if len(key) > 253:
        problems.append("must be no more than 253 characters")
    if not re.fullmatch(_CONFIG_KEY, key):
        problems.append(CONFIG_KEY_ERROR)
    if key == ".":
        problems.append("must not be '.'")
    elif key == "..":
        problems.append("must not be '..'")
    elif key.startswith(".."):
        problems.append("must not start with '..'")
    return problems


def _default_namespace(obj: WireModel) -> None:
    metadata = getattr(obj, "metadata", None)
    if metadata is not None and not metadata.namespace:
        metadata.namespace = DEFAULT_NAMESPACE


# --- Service ----------------------------------------------------------------------------------


def default_service(service: Service) -> None:
    _default_namespace(service)
    spec = service.spec
    for port in spec.ports or []:
        # A missing targetPort (or 0, or "") means "the same as port".
        if port.target_port in (None, 0, ""):
            port.target_port = port.port
    if spec.cluster_ip and not spec.cluster_ips:
        spec.cluster_ips = [spec.cluster_ip]
    elif spec.cluster_ips and not spec.cluster_ip:
        spec.cluster_ip = spec.cluster_ips[0]
    if spec.session_affinity == "ClientIP":
        if spec.session_affinity_config is None:
            spec.session_affinity_config = SessionAffinityConfig()
        if spec.session_affinity_config.client_ip is None:
            spec.session_affinity_config.client_ip = ClientIPConfig()
        if spec.session_affinity_config.client_ip.timeout_seconds is None:
            spec.session_affinity_config.client_ip.timeout_seconds = DEFAULT_CLIENT_IP_TIMEOUT_SECONDS
    if spec.type in ("NodePort", "LoadBalancer") or spec.external_ips:
        spec.external_traffic_policy = spec.external_traffic_policy or "Cluster"
    if spec.type != "ExternalName":
        spec.internal_traffic_policy = spec.internal_traffic_policy or "Cluster"
        spec.ip_family_policy = spec.ip_family_policy or "SingleStack"
        spec.ip_families = spec.ip_families or ["IPv4"]
    if spec.type == "LoadBalancer" and spec.allocate_load_balancer_node_ports is None:
        spec.allocate_load_balancer_node_ports = True


def uses_node_ports(spec: dict[str, Any]) -> bool:
    """Whether a Service spec (wire form) gets node ports: NodePort Services, and LoadBalancer ones
    unless `allocateLoadBalancerNodePorts` is false."""
    kind = spec.get("type", "ClusterIP")
    return kind == "NodePort" or (kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is not False)


def validate_service(service: Service) -> list[tuple[str, str]]:
    problems = Problems()
    validate_metadata(problems, service.metadata, True, dns1035_label_errors)
    spec = service.spec
    problems.one_of("spec.type", spec.type, SERVICE_TYPES)
    if spec.type == "ExternalName":
        if spec.cluster_ip:
            problems.invalid("spec.clusterIP", spec.cluster_ip, "may not be set for ExternalName services")
        if not spec.external_name:
            problems.required("spec.externalName")
        else:
            problems.check_each("spec.externalName", spec.external_name,
                                dns1123_subdomain_errors(spec.external_name.rstrip(".")))
    elif spec.external_name:
        problems.forbidden("spec.externalName", "may only be set when `type` is 'ExternalName'")
    headless = spec.cluster_ip == "None"
    if not spec.ports and not headless and spec.type != "ExternalName":
        problems.required("spec.ports")
    _validate_cluster_ips(problems, service)
    _validate_service_ports(problems, service)
    validate_labels(problems, "spec.selector", spec.selector)
    problems.one_of("spec.sessionAffinity", spec.session_affinity, ("ClientIP", "None"))
    if spec.session_affinity == "ClientIP":
        timeout = spec.session_affinity_config.client_ip.timeout_seconds  # type: ignore[union-attr]
        if timeout is None or not 0 < timeout <= MAX_CLIENT_IP_TIMEOUT_SECONDS:
            problems.invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", timeout,
                             f"must be greater than 0 and less than {MAX_CLIENT_IP_TIMEOUT_SECONDS}")
    elif spec.session_affinity_config is not None:
        problems.invalid("spec.sessionAffinityConfig", spec.session_affinity_config,
                         "must not be set when session affinity is None")
    if spec.external_traffic_policy is not None:
        if spec.type not in ("NodePort", "LoadBalancer") and not spec.external_ips:
            problems.invalid("spec.externalTrafficPolicy", spec.external_traffic_policy,
                             "may only be set when `type` is 'NodePort' or 'LoadBalancer'")
        else:
            problems.one_of("spec.externalTrafficPolicy", spec.external_traffic_policy, ("Cluster", "Local"))
    problems.one_of("spec.internalTrafficPolicy", spec.internal_traffic_policy, ("Cluster", "Local"))
    problems.one_of("spec.ipFamilyPolicy", spec.ip_family_policy, ("SingleStack", "PreferDualStack", "RequireDualStack"))
    if spec.ip_family_policy == "RequireDualStack":
        problems.invalid("spec.ipFamilyPolicy", spec.ip_family_policy,
                         "this cluster is not configured for dual-stack services")
    for index, family in enumerate(spec.ip_families or []):
        if family != "IPv4":
            problems.invalid(f"spec.ipFamilies[{index}]", family, "not configured on this cluster")
    for index, address in enumerate(spec.external_ips or []):
        if not _is_ip(address):
            problems.invalid(f"spec.externalIPs[{index}]", address, IP_ERROR)
    if spec.load_balancer_ip and spec.type != "LoadBalancer":
        problems.forbidden("spec.loadBalancerIP", "may only be used when `type` is 'LoadBalancer'")
    if spec.allocate_load_balancer_node_ports is not None and spec.type != "LoadBalancer":
        problems.forbidden("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'")
    return problems.items


def _validate_cluster_ips(problems: Problems, service: Service) -> None:
    spec = service.spec
    if spec.type == "ExternalName":
        return
    for index, address in enumerate(spec.cluster_ips or []):
        path = f"spec.clusterIPs[{index}]"
        if index == 0 and spec.cluster_ip and address != spec.cluster_ip:
            problems.invalid(path, address, "must match `clusterIP` when both are specified")
        elif address == "None":
            if index > 0 or len(spec.cluster_ips or []) > 1:
                problems.invalid(path, address, "must not have more than one value when the first is 'None'")
            elif spec.type in ("NodePort", "LoadBalancer"):
                problems.invalid(path, address, f"may not be set to 'None' for {spec.type} services")
        elif not _is_ip(address):
            problems.invalid(path, address, IP_ERROR)
    if len(spec.cluster_ips or []) > 1:
        problems.invalid("spec.clusterIPs", spec.cluster_ips, "may only hold one address: this cluster is IPv4 only")


def _validate_service_ports(problems: Problems, service: Service) -> None:
    spec = service.spec
    ports = spec.ports or []
    names: set[str] = set()
    seen: set[tuple[int, str]] = set()
    node_ports: set[tuple[int, str]] = set()
    for index, port in enumerate(ports):
        path = f"spec.ports[{index}]"
        if not port.name:
            if len(ports) > 1:
                problems.required(f"{path}.name")
        else:
            problems.check_each(f"{path}.name", port.name, dns1123_label_errors(port.name))
            if port.name in names:
                problems.duplicate(f"{path}.name", port.name)
            names.add(port.name)
        problems.in_range(f"{path}.port", port.port, 1, 65535)
        problems.one_of(f"{path}.protocol", port.protocol, PROTOCOLS)
        if (port.port, port.protocol) in seen:
            problems.duplicate(path, {"port": port.port, "protocol": port.protocol})
        seen.add((port.port, port.protocol))
        if isinstance(port.target_port, int):
            problems.in_range(f"{path}.targetPort", port.target_port, 1, 65535)
        elif port.target_port is not None:
            problems.check_each(f"{path}.targetPort", port.target_port, _port_name_errors(port.target_port))
        if port.node_port:
            if spec.type in ("ClusterIP", "ExternalName"):
                problems.forbidden(f"{path}.nodePort", f"may not be used when `type` is '{spec.type}'")
            elif (port.node_port, port.protocol) in node_ports:
                problems.duplicate(f"{path}.nodePort", port.node_port)
            node_ports.add((port.node_port, port.protocol))


def validate_service_update(new: Service, old: Service) -> list[tuple[str, str]]:
    problems = Problems()
    # The ClusterIP stays for the Service's life, unless the Service turns into or out of ExternalName.
    if "ExternalName" not in (new.spec.type, old.spec.type) and old.spec.cluster_ip and \
            new.spec.cluster_ip != old.spec.cluster_ip:
        problems.invalid("spec.clusterIP", new.spec.cluster_ip, "field is immutable")
    return problems.items


# --- Endpoints and EndpointSlice --------------------------------------------------------------


def default_endpoints(endpoints: Endpoints) -> None:
    _default_namespace(endpoints)


def validate_endpoints(endpoints: Endpoints) -> list[tuple[str, str]]:
    problems = Problems()
    validate_metadata(problems, endpoints.metadata, True, dns1123_subdomain_errors)
    for index, subset in enumerate(endpoints.subsets or []):
        path = f"subsets[{index}]"
        for field, addresses in (("addresses", subset.addresses), ("notReadyAddresses", subset.not_ready_addresses)):
            for position, address in enumerate(addresses or []):
                if not _is_ip(address.ip):
                    problems.invalid(f"{path}.{field}[{position}].ip", address.ip, IP_ERROR)
        ports = subset.ports or []
        for position, port in enumerate(ports):
            port_path = f"{path}.ports[{position}]"
            if port.name:
                problems.check_each(f"{port_path}.name", port.name, dns1123_label_errors(port.name))
            elif len(ports) > 1:
                problems.required(f"{port_path}.name")
            problems.in_range(f"{port_path}.port", port.port, 1, 65535)
            problems.one_of(f"{port_path}.protocol", port.protocol, PROTOCOLS)
    return problems.items


def default_endpoint_slice(endpoint_slice: EndpointSlice) -> None:
    _default_namespace(endpoint_slice)


def validate_endpoint_slice(endpoint_slice: EndpointSlice) -> list[tuple[str, str]]:
    problems = Problems()
    validate_metadata(problems, endpoint_slice.metadata, True, dns1123_subdomain_errors)
    address_type = endpoint_slice.address_type
    problems.one_of("addressType", address_type, ("FQDN", "IPv4", "IPv6"))
    endpoints = endpoint_slice.endpoints or []
    if len(endpoints) > MAX_ENDPOINTS_PER_SLICE:
        problems.add("endpoints", f"Too many: {len(endpoints)}: must have at most {MAX_ENDPOINTS_PER_SLICE} items")
    for index, endpoint in enumerate(endpoints):
        path = f"endpoints[{index}]"
        if not endpoint.addresses:
            problems.required(f"{path}.addresses", "must contain at least 1 address")
        elif len(endpoint.addresses) > MAX_ADDRESSES_PER_ENDPOINT:
            problems.add(f"{path}.addresses", f"Too many: {len(endpoint.addresses)}: must have at most "
                                              f"{MAX_ADDRESSES_PER_ENDPOINT} items")
        for position, address in enumerate(endpoint.addresses):
            address_path = f"{path}.addresses[{position}]"
            if address_type in ("IPv4", "IPv6"):
                version = 4 if address_type == "IPv4" else 6
                try:
                    valid = ipaddress.ip_address(address).version == version
                except ValueError:
                    valid = False
                if not valid:
                    problems.invalid(address_path, address, f"must be a valid {address_type} address")
            elif address_type == "FQDN":
                problems.check_each(address_path, address, dns1123_subdomain_errors(address))
        if endpoint.hostname:
            problems.check_each(f"{path}.hostname", endpoint.hostname, dns1123_label_errors(endpoint.hostname))
    ports = endpoint_slice.ports or []
    if len(ports) > MAX_PORTS_PER_SLICE:
        problems.add("ports", f"Too many: {len(ports)}: must have at most {MAX_PORTS_PER_SLICE} items")
    names: set[str] = set()
    for index, port in enumerate(ports):
        path = f"ports[{index}]"
        name = port.name or ""
        if name:
            problems.check_each(f"{path}.name", name, dns1123_label_errors(name))
        if name in names:
            problems.duplicate(f"{path}.name", name)
        names.add(name)
        if port.port is not None:
            problems.in_range(f"{path}.port", port.port, 1, 65535)
        problems.one_of(f"{path}.protocol", port.protocol, PROTOCOLS)
    return problems.items


# --- ConfigMap --------------------------------------------------------------------------------


def _base64_size(problems: Problems, path: str, value: str, show: str) -> int:
    """The decoded size of a base64 value, or 0 after reporting it when it is not base64."""
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        problems.invalid(path, show, "must be base64-encoded (as `base64 -w0` prints it)")
        return 0


def default_config_map(config_map: ConfigMap) -> None:
    _default_namespace(config_map)


def validate_config_map(config_map: ConfigMap) -> list[tuple[str, str]]:
    problems = Problems()
    validate_metadata(problems, config_map.metadata, True, dns1123_subdomain_errors)
    data, binary_data = config_map.data or {}, config_map.binary_data or {}
    total = 0
    for key, value in data.items():
        problems.check_each(f"data[{key}]", key, config_key_errors(key))
        if key in binary_data:
            problems.invalid(f"data[{key}]", key, "duplicate of key present in binaryData")
        total += len(value.encode())
    for key, value in binary_data.items():
        problems.check_each(f"binaryData[{key}]", key, config_key_errors(key))
        total += _base64_size(problems, f"binaryData[{key}]", value, value[:64])
    if total > MAX_CONFIG_BYTES:
        problems.add("", f"Too long: must have at most {MAX_CONFIG_BYTES} bytes")
    return problems.items


def _immutable_data_update(problems: Problems, new: ConfigMap | Secret, old: ConfigMap | Secret,
                           data_fields: tuple[str, ...]) -> None:
    """ValidateConfigMapUpdate / ValidateSecretUpdate: an immutable object's data is frozen."""
    if not old.immutable:
        return
    if not new.immutable:
        problems.forbidden("immutable", "field is immutable when `immutable` is set")
    for field in data_fields:
        if getattr(new, field) != getattr(old, field):
            wire = "binaryData" if field == "binary_data" else field
            problems.forbidden(wire, "field is immutable when `immutable` is set")


def validate_config_map_update(new: ConfigMap, old: ConfigMap) -> list[tuple[str, str]]:
    problems = Problems()
    _immutable_data_update(problems, new, old, ("data", "binary_data"))
    return problems.items


# --- Secret -----------------------------------------------------------------------------------


def default_secret(secret: Secret) -> None:
    """Type Opaque when unset; `stringData` is folded into `data` (base64) and never stored."""
    _default_namespace(secret)
    secret.type = secret.type or SECRET_TYPE_OPAQUE
    if secret.string_data:
        data = dict(secret.data or {})
        for key, value in secret.string_data.items():
            data[key] = base64.b64encode(value.encode()).decode()
        secret.data = data
    secret.string_data = None


def _secret_bytes(secret: Secret, key: str) -> bytes | None:
    value = (secret.data or {}).get(key)
    if value is None:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def validate_secret(secret: Secret) -> list[tuple[str, str]]:
    problems = Problems()
    validate_metadata(problems, secret.metadata, True, dns1123_subdomain_errors)
    data = secret.data or {}
    total = 0
    for key, value in data.items():
        problems.check_each(f"data[{key}]", key, config_key_errors(key))
        total += _base64_size(problems, f"data[{key}]", value, REDACTED)
    if total > MAX_CONFIG_BYTES:
        problems.add("data", f"Too long: must have at most {MAX_CONFIG_BYTES} bytes")
    kind = secret.type
    if kind == SECRET_TYPE_SERVICE_ACCOUNT_TOKEN:
        if not (secret.metadata.annotations or {}).get("kubernetes.io/service-account.name"):
            problems.required("metadata.annotations[kubernetes.io/service-account.name]")
    elif kind in (SECRET_TYPE_DOCKER_CONFIG, SECRET_TYPE_DOCKER_CONFIG_JSON):
        key = ".dockercfg" if kind == SECRET_TYPE_DOCKER_CONFIG else ".dockerconfigjson"
        if key not in data:
            problems.required(f"data[{key}]")
        else:
            raw = _secret_bytes(secret, key)
            if raw is not None:
                try:
                    json.loads(raw)
                except ValueError as error:
                    problems.invalid(f"data[{key}]", REDACTED, f"must be valid JSON ({error})")
    elif kind == SECRET_TYPE_BASIC_AUTH:
        # Either may be empty, but one of the two keys must be there.
        if "username" not in data and "password" not in data:
            problems.required("data[username]")
            problems.required("data[password]")
    elif kind == SECRET_TYPE_SSH_AUTH:
        if "ssh-privatekey" not in data:
            problems.required("data[ssh-privatekey]")
    elif kind == SECRET_TYPE_TLS:
        for key in ("tls.crt", "tls.key"):
            if key not in data:
                problems.required(f"data[{key}]")
    return problems.items


def validate_secret_update(new: Secret, old: Secret) -> list[tuple[str, str]]:
    problems = Problems()
    if new.type != old.type:
        problems.invalid("type", new.type, "field is immutable")
    _immutable_data_update(problems, new, old, ("data",))
    return problems.items


# --- ServiceAccount ---------------------------------------------------------------------------


def default_service_account(service_account: ServiceAccount) -> None:
    _default_namespace(service_account)


def validate_service_account(service_account: ServiceAccount) -> list[tuple[str, str]]:
    problems = Problems()
    validate_metadata(problems, service_account.metadata, True, dns1123_subdomain_errors)
    return problems.items
