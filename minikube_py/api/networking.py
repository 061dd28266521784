"""Service, Endpoints (`v1`) and EndpointSlice (`discovery.k8s.io/v1`): how pods are found.

A Service names a set of pods (its selector) and the ports it offers; the API server gives it a
virtual address (the ClusterIP) and, for NodePort and LoadBalancer Services, a port on the node.
The endpoints controller writes which pod addresses currently back each Service, both as the
legacy `Endpoints` object and as `EndpointSlice`s, which the service proxy and the cluster DNS
read. Field names and unconditional defaults are Kubernetes' own; the defaults that depend on
other fields (targetPort from port, externalTrafficPolicy by type) are in
`api.networking_validation.default_service`.
"""

from __future__ import annotations

from pydantic import Field

from minikube_py.api.meta import IntOrString, ObjectMeta, ObjectReference, WireModel

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
ENDPOINTSLICE_CONTROLLER_NAME = "endpointslice-controller.k8s.io"


# --- Service ----------------------------------------------------------------------------------


class ServicePort(WireModel):
    name: str | None = None
    protocol: str = "TCP"
    app_protocol: str | None = None
    port: int
    target_port: IntOrString | None = None
    node_port: int | None = None


class ClientIPConfig(WireModel):
    timeout_seconds: int | None = None


class SessionAffinityConfig(WireModel):
    client_ip: ClientIPConfig | None = Field(default=None, alias="clientIP")


class ServiceSpec(WireModel):
    ports: list[ServicePort] | None = None
    selector: dict[str, str] | None = None
    cluster_ip: str | None = Field(default=None, alias="clusterIP")
    cluster_ips: list[str] | None = Field(default=None, alias="clusterIPs")
    type: str = "ClusterIP"
    external_ips: list[str] | None = Field(default=None, alias="externalIPs")
    session_affinity: str = "None"
    session_affinity_config: SessionAffinityConfig | None = None
    load_balancer_ip: str | None = Field(default=None, alias="loadBalancerIP")
    load_balancer_source_ranges: list[str] | None = None
    load_balancer_class: str | None = None
    external_name: str | None = None
    external_traffic_policy: str | None = None
    internal_traffic_policy: str | None = None
    health_check_node_port: int | None = None
    publish_not_ready_addresses: bool | None = None
    ip_families: list[str] | None = Field(default=None, alias="ipFamilies")
    ip_family_policy: str | None = Field(default=None, alias="ipFamilyPolicy")
    allocate_load_balancer_node_ports: bool | None = None


class PortStatus(WireModel):
    port: int
    protocol: str
    error: str | None = None


class LoadBalancerIngress(WireModel):
    ip: str | None = None
    hostname: str | None = None
    ip_mode: str | None = None
    ports: list[PortStatus] | None = None


class LoadBalancerStatus(WireModel):
    ingress: list[LoadBalancerIngress] | None = None


class ServiceStatus(WireModel):
    load_balancer: LoadBalancerStatus | None = None


class Service(WireModel):
    api_version: str = "v1"
    kind: str = "Service"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ServiceSpec = Field(default_factory=ServiceSpec)
    status: ServiceStatus | None = None

    @property
    def is_headless(self) -> bool:
        return self.spec.cluster_ip == "None"


# --- Endpoints (v1) ---------------------------------------------------------------------------


class EndpointAddress(WireModel):
    ip: str
    hostname: str | None = None
    node_name: str | None = None
    target_ref: ObjectReference | None = None


class EndpointPort(WireModel):
    name: str | None = None
    port: int
    protocol: str = "TCP"
    app_protocol: str | None = None


class EndpointSubset(WireModel):
    addresses: list[EndpointAddress] | None = None
    not_ready_addresses: list[EndpointAddress] | None = None
    ports: list[EndpointPort] | None = None


class Endpoints(WireModel):
    api_version: str = "v1"
    kind: str = "Endpoints"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    subsets: list[EndpointSubset] | None = None


# --- EndpointSlice (discovery.k8s.io/v1) ------------------------------------------------------


class EndpointConditions(WireModel):
    ready: bool | None = None
    serving: bool | None = None
    terminating: bool | None = None


class EndpointSliceEndpoint(WireModel):
    addresses: list[str]
    conditions: EndpointConditions = Field(default_factory=EndpointConditions)
    hostname: str | None = None
    target_ref: ObjectReference | None = None
    node_name: str | None = None
    zone: str | None = None


class EndpointSlicePort(WireModel):
    name: str | None = None
    protocol: str = "TCP"
    port: int | None = None
    app_protocol: str | None = None


class EndpointSlice(WireModel):
    api_version: str = "discovery.k8s.io/v1"
    kind: str = "EndpointSlice"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    address_type: str
    endpoints: list[EndpointSliceEndpoint] | None = None
    ports: list[EndpointSlicePort] | None = None
