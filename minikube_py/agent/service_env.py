"""The Service environment variables kubelet gives every container (`WEB_SERVICE_HOST`, ...).

Before cluster DNS, pods found Services through environment variables, and Kubernetes still
injects them: for each Service of the pod's namespace that has a ClusterIP when the container is
created, `{NAME}_SERVICE_HOST` and `{NAME}_SERVICE_PORT` (the first port), one
`{NAME}_SERVICE_PORT_{PORTNAME}` per named port, and Docker links' variables (`{NAME}_PORT`,
`{NAME}_PORT_{port}_{PROTO}` with `_PROTO`, `_PORT`, `_ADDR`). `NAME` is the Service's name
upper-cased with `-` as `_`. Headless and ExternalName Services (no ClusterIP) give nothing.
`spec.enableServiceLinks: false` turns the namespace's Services off, but the `kubernetes`
Service of `default` (the API) is always there, as kubelet's `getServiceEnvVarMap` and
`pkg/kubelet/envvars` do. A Service created after the container started is not seen until the
container is created again: the values are read once, as in Kubernetes.
"""

from __future__ import annotations

from typing import Iterable

MASTER_SERVICE_NAMESPACE = "default"
MASTER_SERVICES = ("kubernetes",)


def variable_name(name: str) -> str:
    """kubelet's makeEnvVariableName: upper case, `-` becomes `_`."""
    return name.replace("-", "_").upper()


def _has_cluster_ip(service) -> bool:
    return bool(service.spec.cluster_ip) and service.spec.cluster_ip != "None"


def visible_services(services: Iterable, namespace: str, enable_service_links: bool) -> list:
    """The Services a pod of `namespace` gets variables for, one per name: the master Services of
    `default` always; the namespace's own when links are enabled (which win over a master one of
    the same name)."""
    chosen: dict[str, object] = {}
    for service in services:
        if not _has_cluster_ip(service):
            continue
        name, service_namespace = service.metadata.name, service.metadata.namespace
        if service_namespace == MASTER_SERVICE_NAMESPACE and name in MASTER_SERVICES:
            chosen.setdefault(name, service)
        elif service_namespace == namespace and enable_service_links:
            chosen[name] = service
    return [chosen[name] for name in sorted(chosen)]


def service_variables(service) -> list[tuple[str, str]]:
    """One Service's variables, in kubelet's order."""
    spec = service.spec
    ports = spec.ports or []
    if not _has_cluster_ip(service) or not ports:
        return []
    prefix = variable_name(service.metadata.name)
    address = spec.cluster_ip
    variables = [(f"{prefix}_SERVICE_HOST", address), (f"{prefix}_SERVICE_PORT", str(ports[0].port))]
    for port in ports:
        if port.name:
            variables.append((f"{prefix}_SERVICE_PORT_{variable_name(port.name)}", str(port.port)))
    for index, port in enumerate(ports):
        protocol = port.protocol or "TCP"
        url = f"{protocol.lower()}://{address}:{port.port}"
        if index == 0:
            variables.append((f"{prefix}_PORT", url))  # Docker special-cases the first port
        port_prefix = f"{prefix}_PORT_{port.port}_{protocol.upper()}"
        variables += [(port_prefix, url), (f"{port_prefix}_PROTO", protocol.lower()),
                      (f"{port_prefix}_PORT", str(port.port)), (f"{port_prefix}_ADDR", address)]
    return variables


def service_environment(services: Iterable, namespace: str, enable_service_links: bool = True) -> dict[str, str]:
    """Every Service variable a container of a pod in `namespace` gets, by name."""
    environment: dict[str, str] = {}
    for service in visible_services(services, namespace, enable_service_links):
        environment.update(service_variables(service))
    return environment
