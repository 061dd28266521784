"""The `kubernetes` Service in `default`, and its endpoints: where pods find the API server.

kube-apiserver keeps this Service itself (its "bootstrap controller" and endpoint reconciler),
with the first address of the service CIDR and one endpoint, the API server's own address and
port: here the cluster bridge's address, where the API serves pods over TLS. The daemon calls `ensure_kubernetes_service` at every start, so a changed node address or
API port is written again. The Service has no selector: the endpoints controller leaves it alone.
"""

from __future__ import annotations

from minikube_py.api import errors
from minikube_py.api.networking import SERVICE_NAME_LABEL

NAME = "kubernetes"
NAMESPACE = "default"
SERVICE_PORT = 443
LABELS = {"component": "apiserver", "provider": "kubernetes"}


def ensure_kubernetes_service(registry, api_address: str, api_port: int) -> dict:
    """Create or refresh the Service, its Endpoints and its EndpointSlice; returns the Service."""
    port = {"name": "https", "protocol": "TCP", "port": SERVICE_PORT, "targetPort": api_port}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": NAME, "labels": LABELS},
               "spec": {"type": "ClusterIP", "clusterIP": registry.services.kubernetes_service_ip,
                        "ports": [port], "sessionAffinity": "None"}}
    endpoints = {"apiVersion": "v1", "kind": "Endpoints",
                 "metadata": {"name": NAME, "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
                 "subsets": [{"addresses": [{"ip": api_address}],
                              "ports": [{"name": "https", "port": api_port, "protocol": "TCP"}]}]}
    endpoint_slice = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                      # Not labelled managed-by the EndpointSlice controller, which deletes the
                      # slices it manages for a Service without a selector.
                      "metadata": {"name": NAME, "labels": {SERVICE_NAME_LABEL: NAME}},
                      "addressType": "IPv4",
                      "endpoints": [{"addresses": [api_address],
                                     "conditions": {"ready": True, "serving": True, "terminating": False}}],
                      "ports": [{"name": "https", "port": api_port, "protocol": "TCP"}]}
    written = _create_or_replace(registry, "services", service)
    _create_or_replace(registry, "endpoints", endpoints)
    _create_or_replace(registry, "endpointslices", endpoint_slice)
    return written


def _create_or_replace(registry, resource: str, body: dict) -> dict:
    try:
        return registry.create(resource, NAMESPACE, body)
    except errors.AlreadyExists:
        return registry.replace(resource, NAMESPACE, body["metadata"]["name"], body)
