"""`expose` (a Service for a deployment, replicaset, pod or service) and `service` (its URL on the host).

`expose` builds the Service kubectl's `expose` builds: the object's selector (a pod's labels),
its labels, the ports from `--port` or else from the containers' declared ports (`port-1`,
`port-2`... when there are several), `targetPort` from `--target-port` or else the port itself.
`service NAME` prints what `minikube service` prints: `http://<node address>:<node port>` for
each port of a NodePort or LoadBalancer Service, which the host can open; a ClusterIP Service
has no such address, and says so.
"""

from __future__ import annotations

import argparse

from minikube_py.cli.context import CommandError, Context, Subcommands, resolve_resource
from minikube_py.cli.create import add_dry_run_flags, object_metadata, send

EXPOSABLE = ("pods", "services", "deployments", "replicasets")
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
PROTOCOLS = ("TCP", "UDP", "SCTP")


def register(subcommands: Subcommands) -> None:
    expose = subcommands.add("expose", "create a Service for a deployment, replicaset, pod or service",
                             namespaced=True)
    expose.add_argument("target", metavar="TYPE[/NAME]", help="deployment, replicaset, pod or service, or TYPE/NAME")
    expose.add_argument("target_name", nargs="?", metavar="NAME", help="the object's name, after a bare TYPE")
    expose.add_argument("--port", type=int, metavar="PORT",
                        help="the Service's port (default: the ports the containers declare)")
    expose.add_argument("--target-port", metavar="PORT|NAME",
                        help="the container port or port name traffic goes to (default: the same as --port)")
    expose.add_argument("--protocol", choices=PROTOCOLS, help="the port's protocol (default TCP)")
    expose.add_argument("--type", choices=SERVICE_TYPES, help="the Service's type (default ClusterIP)")
    expose.add_argument("--name", help="the Service's name (default: the exposed object's)")
    expose.add_argument("--external-ip", metavar="ADDRESS", help="an external address the Service also answers on")
    expose.add_argument("-l", "--labels", metavar="KEY=VALUE,...",
                        help="labels for the Service (default: the exposed object's)")
    expose.add_argument("--selector", metavar="KEY=VALUE,...",
                        help="the pods the Service selects (default: the exposed object's selector)")
    add_dry_run_flags(expose)
    expose.set_defaults(run=run_expose)

    service = subcommands.add("service", "print the URL the host opens to reach a NodePort or LoadBalancer Service",
                              namespaced=True)
    service.add_argument("name", metavar="NAME", help="the Service's name")
    service.add_argument("--url", action="store_true", help="print only the URLs, one per port")
    service.set_defaults(run=run_service)


# -- expose -----------------------------------------------------------------------------------


def parse_map(text: str, flag: str) -> dict[str, str]:
    """`a=b,c=d` as kubectl's --labels and --selector read it."""
    result = {}
    for pair in text.split(","):
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise CommandError(f"invalid {flag} {text!r}: expected KEY=VALUE pairs separated by commas")
        result[key] = value
    return result


def exposed_selector(kind: str, obj: dict) -> dict[str, str]:
    """The Service selector for the object: a pod's labels, a Service's selector, a workload's
    matchLabels (match expressions cannot be a Service selector)."""
    spec = obj.get("spec") or {}
    if kind == "pods":
        labels = obj["metadata"].get("labels") or {}
        if not labels:
            raise CommandError("couldn't retrieve selectors via --selector flag or introspection: "
                               "the pod has no labels and cannot be exposed")
        return dict(labels)
    if kind == "services":
        if not spec.get("selector"):
            raise CommandError("couldn't retrieve selectors via --selector flag or introspection: "
                               "the service has no selector")
        return dict(spec["selector"])
    selector = spec.get("selector") or {}
    if selector.get("matchExpressions"):
        raise CommandError(f"couldn't convert expressions - {selector['matchExpressions']!r} to map-based selector "
                           "format; give the Service's selector with --selector")
    return dict(selector.get("matchLabels") or {})


def exposed_ports(kind: str, obj: dict) -> list[tuple[int, str]]:
    """(port, protocol) pairs the object offers: a Service's ports, else its containers' ports."""
    spec = obj.get("spec") or {}
    if kind == "services":
        return [(port["port"], port.get("protocol", "TCP")) for port in spec.get("ports") or []]
    pod_spec = spec if kind == "pods" else (spec.get("template") or {}).get("spec") or {}
    return [(port["containerPort"], port.get("protocol", "TCP"))
            for container in pod_spec.get("containers") or [] for port in container.get("ports") or []]


def exposing_service(kind: str, obj: dict, name: str | None, namespace: str | None, port: int | None,
                     target_port: str | None, protocol: str | None, service_type: str | None,
                     external_ip: str | None = None, labels: dict[str, str] | None = None,
                     selector: dict[str, str] | None = None) -> dict:
    """The Service `kubectl expose` generates for `obj` (a wire dict of resource `kind`)."""
    selector = selector if selector is not None else exposed_selector(kind, obj)
    if port is not None:
        ports = [(port, protocol or "TCP")]
    else:
        ports = [(number, protocol or declared) for number, declared in exposed_ports(kind, obj)]
        if not ports:
            raise CommandError("couldn't find port via --port flag or introspection")
    service_ports = []
    for index, (number, port_protocol) in enumerate(ports):
        entry: dict = {"port": number, "protocol": port_protocol}
        if len(ports) > 1:
            entry["name"] = f"port-{index + 1}"
        if target_port is None:
            entry["targetPort"] = number
        else:
            entry["targetPort"] = int(target_port) if target_port.isdigit() else target_port
        service_ports.append(entry)
    metadata = object_metadata(name or obj["metadata"]["name"], namespace)
    object_labels = labels if labels is not None else obj["metadata"].get("labels")
    if object_labels:
        metadata["labels"] = dict(object_labels)
    spec: dict = {"ports": service_ports, "selector": selector}
    if service_type:
        spec["type"] = service_type
    if external_ip:
        spec["externalIPs"] = [external_ip]
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec, "status": {"loadBalancer": {}}}


def run_expose(args: argparse.Namespace, context: Context) -> int:
    type_name, slash, name = args.target.partition("/")
    if not slash:
        name = args.target_name or ""
    elif args.target_name:
        raise CommandError("there is no need to specify a resource type as a separate argument when passing "
                           "arguments in resource/name form")
    if not name:
        raise CommandError("you must provide one or more resources by argument or filename")
    info = resolve_resource(type_name)
    if info.plural not in EXPOSABLE:
        raise CommandError(f"cannot expose a {info.kind}")
    obj = context.transport.get(info.plural, context.default_namespace, name)
    service = exposing_service(
        info.plural, obj, args.name, context.namespace, args.port, args.target_port, args.protocol, args.type,
        args.external_ip, parse_map(args.labels, "--labels") if args.labels else None,
        parse_map(args.selector, "--selector") if args.selector else None)
    return send(context, args, "services", service, verb="exposed")


# -- service ----------------------------------------------------------------------------------


def node_address(nodes: list[dict]) -> str:
    """The node's InternalIP, the address `minikube service` puts in its URLs."""
    for node in nodes:
        for address in (node.get("status") or {}).get("addresses") or []:
            if address.get("type") == "InternalIP" and address.get("address"):
                return address["address"]
    raise CommandError("no node with an InternalIP address: is the cluster's node registered? "
                       "Check with 'minikube-py get nodes -o wide'")


def service_urls(service: dict, address: str) -> list[tuple[str, str]]:
    """(port label, URL) for each port the host reaches: the node address and node port, or, for a
    LoadBalancer without node ports, its ingress address and port."""
    spec = service.get("spec") or {}
    metadata = service["metadata"]
    where = f"{metadata.get('namespace', 'default')}/{metadata['name']}"
    kind = spec.get("type", "ClusterIP")
    if kind not in ("NodePort", "LoadBalancer"):
        raise CommandError(f"service {where} has no node port: its type is {kind}, which only pods reach; give it "
                           f"type NodePort or LoadBalancer, such as 'minikube-py expose deployment NAME "
                           f"--type=NodePort --port=80'")
    ingress = [entry.get("ip") for entry in ((service.get("status") or {}).get("loadBalancer") or {})
               .get("ingress") or [] if entry.get("ip")]
    urls = []
    for port in spec.get("ports") or []:
        label = f"{port['name']}/{port['port']}" if port.get("name") else str(port["port"])
        if port.get("nodePort"):
            urls.append((label, f"http://{address}:{port['nodePort']}"))
        elif ingress:
            urls.append((label, f"http://{ingress[0]}:{port['port']}"))
    if not urls:
        raise CommandError(f"service {where} has no node port yet; try again in a moment")
    return urls


def boxed_table(header: list[str], rows: list[list[str]]) -> str:
    """The bordered table `minikube service` prints."""
    widths = [max(len(row[index]) for row in [header] + rows) for index in range(len(header))]
    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    lines = [rule, "| " + " | ".join(cell.center(width) for cell, width in zip(header, widths, strict=True)) + " |", rule]
    lines += ["| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |" for row in rows]
    return "\n".join(lines + [rule])


def run_service(args: argparse.Namespace, context: Context) -> int:
    namespace = context.default_namespace
    service = context.transport.get("services", namespace, args.name)
    urls = service_urls(service, node_address(context.transport.list("nodes").get("items") or []))
    if args.url:
        for _, url in urls:
            print(url)
        return 0
    print(boxed_table(["NAMESPACE", "NAME", "TARGET PORT", "URL"],
                      [[namespace, args.name, label, url] for label, url in urls]))
    return 0
