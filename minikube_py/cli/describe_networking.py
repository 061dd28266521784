"""`describe` for Services, Endpoints, EndpointSlices, ConfigMaps, Secrets and ServiceAccounts.

The pages follow kubectl's describers for these kinds (`kubectl/pkg/describe/describe.go`:
describeService, describeEndpoints, describeEndpointSliceV1, describeConfigMap, describeSecret,
describeServiceAccount), the same kinds `api/networking_rows.py` prints for `get`. A Service's
`Endpoints:` lines come from its EndpointSlices (label `kubernetes.io/service-name`), one line per
port, three addresses then `+ N more...`. A Secret's values are never shown, only their sizes.
"""

from __future__ import annotations

import base64
import binascii

from minikube_py import api
from minikube_py.cli.context import Context
from minikube_py.cli.describe_format import DescribeWriter, describe_events, events_about
from minikube_py.cli.tables import NONE

UNSET = "<unset>"
MAX_SHOWN_ENDPOINTS = 3
SERVICE_ACCOUNT_TOKEN_TYPE = "kubernetes.io/service-account-token"


def _header(writer: DescribeWriter, obj: dict) -> None:
    metadata = obj["metadata"]
    writer.write(0, f"Name:\t{metadata['name']}")
    writer.write(0, f"Namespace:\t{metadata.get('namespace', '')}")
    writer.labels(0, "Labels", metadata.get("labels"))
    writer.annotations(0, "Annotations", metadata.get("annotations"))


def _ready_endpoints(endpoint_slice: dict) -> list[dict]:
    """The endpoints a Service sends traffic to: those not marked unready."""
    return [endpoint for endpoint in endpoint_slice.get("endpoints") or []
            if (endpoint.get("conditions") or {}).get("ready") is not False and endpoint.get("addresses")]


def format_endpoint_slices(endpoint_slices: list[dict], port_name: str | None) -> str:
    """kubectl's formatEndpointSlices for one Service port: `ip:port,...` (first address of each
    endpoint), at most three, then `+ N more...`; `<none>` without slices."""
    if not endpoint_slices:
        return NONE
    shown: list[str] = []
    total = 0
    for endpoint_slice in endpoint_slices:
        endpoints = _ready_endpoints(endpoint_slice)
        ports = endpoint_slice.get("ports") or []
        if not ports:  # a headless Service without ports: addresses alone
            pairs = [endpoint["addresses"][0] for endpoint in endpoints]
        else:
            pairs = [f"{endpoint['addresses'][0]}:{port.get('port')}" for port in ports
                     if (port.get("name") or "") == (port_name or "") for endpoint in endpoints]
        total += len(pairs)
        shown += pairs[:max(0, MAX_SHOWN_ENDPOINTS - len(shown))]
    text = ",".join(shown)
    return f"{text} + {total - MAX_SHOWN_ENDPOINTS} more..." if total > MAX_SHOWN_ENDPOINTS else text


def slices_of(context: Context, service: dict) -> list[dict]:
    metadata = service["metadata"]
    listing = context.transport.list("endpointslices", namespace=metadata.get("namespace"),
                                     label_selector=f"{api.networking.SERVICE_NAME_LABEL}={metadata['name']}")
    return sorted(listing.get("items") or [], key=lambda item: item["metadata"]["name"])


def describe_service(context: Context, service: dict, now: float) -> str:
    spec, status = service.get("spec") or {}, service.get("status") or {}
    writer = DescribeWriter()
    _header(writer, service)
    selector = spec.get("selector") or {}
    writer.write(0, f"Selector:\t{','.join(f'{key}={value}' for key, value in sorted(selector.items())) or NONE}")
    writer.write(0, f"Type:\t{spec.get('type', 'ClusterIP')}")
    if spec.get("ipFamilyPolicy"):
        writer.write(0, f"IP Family Policy:\t{spec['ipFamilyPolicy']}")
    writer.write(0, f"IP Families:\t{','.join(spec.get('ipFamilies') or []) or NONE}")
    writer.write(0, f"IP:\t{spec.get('clusterIP', '')}")
    writer.write(0, f"IPs:\t{','.join(spec.get('clusterIPs') or []) or NONE}")
    if spec.get("externalIPs"):
        writer.write(0, f"External IPs:\t{','.join(spec['externalIPs'])}")
    if spec.get("loadBalancerIP"):
        writer.write(0, f"IP:\t{spec['loadBalancerIP']}")
    if spec.get("loadBalancerClass"):
        writer.write(0, f"LoadBalancer Class:\t{spec['loadBalancerClass']}")
    if spec.get("type") == "ExternalName":
        writer.write(0, f"External Name:\t{spec.get('externalName', '')}")
    ingress = (status.get("loadBalancer") or {}).get("ingress") or []
    if ingress:
        writer.write(0, f"LoadBalancer Ingress:\t"
                        f"{', '.join(entry.get('ip') or entry.get('hostname') or '' for entry in ingress)}")
    endpoint_slices = slices_of(context, service)
    for port in spec.get("ports") or []:
        name, protocol = port.get("name") or UNSET, port.get("protocol", "TCP")
        writer.write(0, f"Port:\t{name}\t{port.get('port')}/{protocol}")
        writer.write(0, f"TargetPort:\t{port.get('targetPort', port.get('port'))}/{protocol}")
        if port.get("nodePort"):
            writer.write(0, f"NodePort:\t{name}\t{port['nodePort']}/{protocol}")
        writer.write(0, f"Endpoints:\t{format_endpoint_slices(endpoint_slices, port.get('name'))}")
    writer.write(0, f"Session Affinity:\t{spec.get('sessionAffinity', 'None')}")
    if spec.get("externalTrafficPolicy"):
        writer.write(0, f"External Traffic Policy:\t{spec['externalTrafficPolicy']}")
    if spec.get("healthCheckNodePort"):
        writer.write(0, f"HealthCheck NodePort:\t{spec['healthCheckNodePort']}")
    if spec.get("loadBalancerSourceRanges"):
        writer.write(0, f"LoadBalancer Source Ranges:\t{','.join(spec['loadBalancerSourceRanges'])}")
    if spec.get("internalTrafficPolicy"):
        writer.write(0, f"Internal Traffic Policy:\t{spec['internalTrafficPolicy']}")
    describe_events(writer, events_about(context, service), now)
    return writer.render()


def _port_table(writer: DescribeWriter, level: int, ports: list[dict]) -> None:
    writer.write(level, "Name\tPort\tProtocol")
    writer.write(level, "----\t----\t--------")
    for port in ports:
        number = port.get("port")
        writer.write(level, f"{port.get('name') or UNSET}\t{UNSET if number is None else number}\t"
                                f"{port.get('protocol', 'TCP')}")


def describe_endpoints(context: Context, endpoints: dict, now: float) -> str:
    writer = DescribeWriter()
    _header(writer, endpoints)
    writer.write(0, "Subsets:")
    for subset in endpoints.get("subsets") or []:
        for field, title in (("addresses", "Addresses"), ("notReadyAddresses", "NotReadyAddresses")):
            addresses = ",".join(address.get("ip", "") for address in subset.get(field) or [])
            writer.write(1, f"{title}:\t{addresses or NONE}")
        if subset.get("ports"):
            writer.write(1, "Ports:")
            _port_table(writer, 2, subset["ports"])
        writer.write(0, "")
    describe_events(writer, events_about(context, endpoints), now)
    return writer.render()


def describe_endpoint_slice(context: Context, endpoint_slice: dict, now: float) -> str:
    writer = DescribeWriter()
    _header(writer, endpoint_slice)
    writer.write(0, f"AddressType:\t{endpoint_slice.get('addressType', '')}")
    ports = endpoint_slice.get("ports") or []
    if not ports:
        writer.write(0, f"Ports: {UNSET}")
    else:
        writer.write(0, "Ports:")
        _port_table(writer, 1, ports)
    endpoints = endpoint_slice.get("endpoints") or []
    if not endpoints:
        writer.write(0, f"Endpoints: {NONE}")
    else:
        writer.write(0, "Endpoints:")
    for endpoint in endpoints:
        conditions = endpoint.get("conditions") or {}
        ready = conditions.get("ready")
        writer.write(1, f"- Addresses:\t{', '.join(endpoint.get('addresses') or []) or NONE}")
        writer.write(2, "Conditions:")
        writer.write(3, f"Ready:\t{UNSET if ready is None else str(ready).lower()}")
        writer.write(2, f"Hostname:\t{endpoint.get('hostname') or UNSET}")
        target = endpoint.get("targetRef")
        if target:
            writer.write(2, f"TargetRef:\t{target.get('kind', '')}/{target.get('name', '')}")
        writer.write(2, f"NodeName:\t{endpoint.get('nodeName') or UNSET}")
        writer.write(2, f"Zone:\t{endpoint.get('zone') or UNSET}")
    describe_events(writer, events_about(context, endpoint_slice), now)
    return writer.render()


def _decoded_size(value: str) -> int:
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return len(value)


def describe_config_map(context: Context, config_map: dict, now: float) -> str:
    writer = DescribeWriter()
    _header(writer, config_map)
    writer.write(0, "")
    writer.write(0, "Data")
    writer.write(0, "====")
    for key, value in sorted((config_map.get("data") or {}).items()):
        writer.write(0, f"{key}:")
        writer.write(0, "----")
        writer.write(0, value)
        writer.write(0, "")
    writer.write(0, "")
    writer.write(0, "BinaryData")
    writer.write(0, "====")
    for key, value in sorted((config_map.get("binaryData") or {}).items()):
        writer.write(0, f"{key}: {_decoded_size(value)} bytes")
    writer.write(0, "")
    describe_events(writer, events_about(context, config_map), now)
    return writer.render()


def describe_secret(context: Context, secret: dict, now: float) -> str:
    """Sizes only: the values stay secret (a ServiceAccount token is shown, as kubectl does)."""
    writer = DescribeWriter()
    _header(writer, secret)
    writer.write(0, "")
    writer.write(0, f"Type:\t{secret.get('type', '')}")
    writer.write(0, "")
    writer.write(0, "Data")
    writer.write(0, "====")
    for key, value in sorted((secret.get("data") or {}).items()):
        if key == "token" and secret.get("type") == SERVICE_ACCOUNT_TOKEN_TYPE:
            writer.write(0, f"{key}:\t{base64.b64decode(value).decode(errors='replace')}")
        else:
            writer.write(0, f"{key}:\t{_decoded_size(value)} bytes")
    return writer.render()


def describe_service_account(context: Context, service_account: dict, now: float) -> str:
    writer = DescribeWriter()
    _header(writer, service_account)
    # kubectl pads the three titles to one width and lists further names under blank titles.
    sections = (("Image pull secrets:", service_account.get("imagePullSecrets")),
                ("Mountable secrets: ", service_account.get("secrets")),
                ("Tokens:            ", []))
    for title, references in sections:
        names = [reference.get("name", "") for reference in references or []]
        if not names:
            writer.write(0, f"{title}\t{NONE}")
        for index, name in enumerate(names):
            writer.write(0, f"{title if index == 0 else ' ' * len(title)}\t{name}")
    describe_events(writer, events_about(context, service_account), now)
    return writer.render()


DESCRIBERS = {
    "services": describe_service,
    "endpoints": describe_endpoints,
    "endpointslices": describe_endpoint_slice,
    "configmaps": describe_config_map,
    "secrets": describe_secret,
    "serviceaccounts": describe_service_account,
}
