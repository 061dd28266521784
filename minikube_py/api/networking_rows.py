"""The `get` cells of Services, Endpoints, EndpointSlices, ConfigMaps, Secrets and ServiceAccounts.

As kube-apiserver's printers compute them (k/k `pkg/printers/internalversion/printers.go`:
printService, printEndpoints, printEndpointSlice, printConfigMap, printSecret,
printServiceAccount): `80:30080/TCP` port lists, `<pending>` for a LoadBalancer without an
address, at most three endpoints then `+ N more...`. `api.printers` puts them in its table of
printers; they are pure functions of wire dicts and `now`, like the rest of it.
"""

from __future__ import annotations

from typing import Any

from minikube_py.api import times

NONE = "<none>"
UNSET = "<unset>"
PENDING = "<pending>"
MAX_SHOWN_ENDPOINTS = 3


def _age(obj: dict[str, Any], now: float) -> str:
    timestamp = (obj.get("metadata") or {}).get("creationTimestamp")
    return times.human_duration(now - times.parse_time(timestamp)) if timestamp else "<unknown>"


def _name(obj: dict[str, Any]) -> str:
    return obj["metadata"]["name"]


def _more(shown: list[str], total: int) -> str:
    text = ",".join(shown)
    if total > len(shown):
        text += f" + {total - len(shown)} more..."
    return text


def service_ports(spec: dict[str, Any]) -> str:
    """`80/TCP`, `80:30080/TCP,443:30443/TCP`; `<none>` without ports."""
    ports = []
    for port in spec.get("ports") or []:
        text = str(port.get("port"))
        if port.get("nodePort"):
            text += f":{port['nodePort']}"
        ports.append(f"{text}/{port.get('protocol', 'TCP')}")
    return ",".join(ports) or NONE


def service_external_ip(service: dict[str, Any]) -> str:
    spec = service.get("spec") or {}
    kind = spec.get("type", "ClusterIP")
    external = list(spec.get("externalIPs") or [])
    if kind == "ExternalName":
        return spec.get("externalName") or NONE
    if kind == "LoadBalancer":
        ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        addresses = [entry.get("ip") or entry.get("hostname") for entry in ingress]
        addresses = [address for address in addresses if address] + external
        return ",".join(addresses) if addresses else PENDING
    return ",".join(external) or NONE


def service_row(service: dict[str, Any], now: float) -> list[Any]:
    """Name, Type, Cluster-IP, External-IP, Port(s), Age, Selector (wide)."""
    spec = service.get("spec") or {}
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    selector = spec.get("selector") or {}
    return [_name(service), spec.get("type", "ClusterIP"), cluster_ips[0] if cluster_ips else NONE,
            service_external_ip(service), service_ports(spec), _age(service, now),
            ",".join(f"{key}={value}" for key, value in sorted(selector.items())) or NONE]


def endpoints_row(endpoints: dict[str, Any], now: float) -> list[Any]:
    """Name, Endpoints (`10.244.0.5:8080,10.244.0.6:8080 + 1 more...`), Age.

    kubectl's formatEndpoints: port by port, each ready address with that port; a subset without
    ports gives bare addresses; `<none>` without subsets, an empty cell when none is ready.
    """
    subsets = endpoints.get("subsets") or []
    if not subsets:
        return [_name(endpoints), NONE, _age(endpoints, now)]
    shown: list[str] = []
    total = 0
    for subset in subsets:
        addresses = [address["ip"] for address in subset.get("addresses") or []]
        ports = subset.get("ports") or []
        pairs = [f"{ip}:{port.get('port')}" for port in ports for ip in addresses] if ports else addresses
        total += len(pairs)
        shown += pairs[:max(0, MAX_SHOWN_ENDPOINTS - len(shown))]
    return [_name(endpoints), _more(shown, total), _age(endpoints, now)]


def endpoint_slice_row(endpoint_slice: dict[str, Any], now: float) -> list[Any]:
    """Name, AddressType, Ports (`80,443`), Endpoints (addresses), Age."""
    ports = [str(port["port"]) for port in endpoint_slice.get("ports") or [] if port.get("port") is not None]
    addresses = [address for endpoint in endpoint_slice.get("endpoints") or [] for address in endpoint.get("addresses") or []]
    return [_name(endpoint_slice), endpoint_slice.get("addressType", ""),
            _more(ports[:MAX_SHOWN_ENDPOINTS], len(ports)) if ports else UNSET,
            _more(addresses[:MAX_SHOWN_ENDPOINTS], len(addresses)) if addresses else UNSET,
            _age(endpoint_slice, now)]


def config_map_row(config_map: dict[str, Any], now: float) -> list[Any]:
    """Name, Data (number of keys in data and binaryData), Age."""
    keys = len(config_map.get("data") or {}) + len(config_map.get("binaryData") or {})
    return [_name(config_map), keys, _age(config_map, now)]


def secret_row(secret: dict[str, Any], now: float) -> list[Any]:
    """Name, Type, Data (number of keys), Age."""
    return [_name(secret), secret.get("type", ""), len(secret.get("data") or {}), _age(secret, now)]


def service_account_row(service_account: dict[str, Any], now: float) -> list[Any]:
    """Name, Secrets (number of secret references), Age."""
    return [_name(service_account), len(service_account.get("secrets") or []), _age(service_account, now)]
