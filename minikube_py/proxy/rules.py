"""The service proxy's rule set, as data: (Services, EndpointSlices) -> one nftables table.

A pure function, so the data path is unit-tested as a document, not through the kernel. The
layout follows kube-proxy's nftables mode (k/k `pkg/proxy/nftables/proxier.go`), cut to one node:

    nat-prerouting / nat-output (dstnat)    -> jump services
    services:  ip daddr . l4proto . dport vmap @service-ips          (ClusterIPs, LoadBalancer)
               fib daddr type local: l4proto . dport vmap @service-nodeports
    service-<id>   (one per Service port):  affinity lookups, then numgen random mod N vmap
                   { 0: goto endpoint-<id>, ... } over the ready endpoints
    external-<id>  (NodePort and LoadBalancer):  mark for masquerade, goto service-<id>
                   (externalTrafficPolicy: Local: no masquerade, only this node's endpoints)
    endpoint-<id>  (one per endpoint):  hairpin mark when the client is the endpoint itself,
                   affinity update, dnat to the pod's address and port
    nat-postrouting (srcnat): marked packets are masqueraded
    filter-input / filter-forward / filter-output: a Service port with no endpoint
                   is `reject`ed (the client sees "connection refused" at once, not a hang)

A packet from outside the pod network to a ClusterIP is masqueraded too (kube-proxy's
`--cluster-cidr` rule), so replies come back through this node. Endpoints are the slices'
`ready` ones; when a Service has none but has `serving` terminating ones, those are used, as
kube-proxy does, so a rolling update does not drop connections in flight.

`Ruleset` is the desired state; `full_commands` writes it from scratch (replacing the table in one
transaction) and `diff_commands` turns the previous state into the next one touching only what
changed (one transaction as well), which keeps an endpoint change cheap however many Services
there are.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any

FAMILY = "ip"
MASQUERADE_MARK = 0x4000
SERVICE_IPS_MAP = "service-ips"
SERVICE_NODEPORTS_MAP = "service-nodeports"
NO_ENDPOINT_SERVICES_MAP = "no-endpoint-services"
NO_ENDPOINT_NODEPORTS_MAP = "no-endpoint-nodeports"
SERVICE_KEY_TYPE = ["ipv4_addr", "inet_proto", "inet_service"]
NODEPORT_KEY_TYPE = ["inet_proto", "inet_service"]

# Base chains: name -> (type, hook, priority). dstnat is -100, srcnat 100, filter 0; the filter
# chains run before NAT's conntrack-dependent work does not matter for a reject.
BASE_CHAINS = {
    "nat-prerouting": ("nat", "prerouting", -100),
    "nat-output": ("nat", "output", -100),
    "nat-postrouting": ("nat", "postrouting", 100),
    "filter-input": ("filter", "input", -110),
    "filter-forward": ("filter", "forward", -110),
    "filter-output": ("filter", "output", -110),
}

Rule = list[dict]  # one nftables rule: its list of statements/expressions


def table_name(cluster_name: str) -> str:
    """`minikube-py-<cluster>`: the one table a cluster's proxy owns."""
    return f"minikube-py-{cluster_name}"


@dataclass
class Chain:
    rules: list[Rule] = field(default_factory=list)
    base: tuple[str, str, int] | None = None  # (type, hook, priority) for base chains


@dataclass
class Map:
    key_type: list[str]
    elements: dict[Any, dict] = field(default_factory=dict)  # key (tuple) -> verdict


@dataclass
class AffinitySet:
    timeout_seconds: int


@dataclass
class Ruleset:
    table: str
    chains: dict[str, Chain] = field(default_factory=dict)
    maps: dict[str, Map] = field(default_factory=dict)
    sets: dict[str, AffinitySet] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint:
    address: str
    port: int
    node_name: str | None


# -- small expression builders ---------------------------------------------------------------------

def _payload(protocol: str, field_name: str) -> dict:
    return {"payload": {"protocol": protocol, "field": field_name}}


def _match(left: Any, right: Any, op: str = "==") -> dict:
    return {"match": {"op": op, "left": left, "right": right}}


def _goto(chain: str) -> dict:
    return {"goto": {"target": chain}}


def _jump(chain: str) -> dict:
    return {"jump": {"target": chain}}


def _short_hash(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:8].lower()


def _chain_name(prefix: str, identity: str) -> str:
    # A readable identity plus a hash, so distinct identities never collide after cutting.
    return f"{prefix}-{_short_hash(identity)}-{identity}"[:200]


# -- the builder --------------------------------------------------------------------------------------

def ready_endpoints(slices: list[Any], port_name: str, protocol: str) -> list[Endpoint]:
    """The endpoints traffic may go to for one Service port: ready ones, else serving terminating
    ones (kube-proxy's fallback), sorted; each with the port its slice gives that port name."""
    ready, serving = set(), set()
    for endpoint_slice in slices:
        if endpoint_slice.address_type != "IPv4":
            continue
        number = next((port.port for port in endpoint_slice.ports or []
                       if (port.name or "") == port_name and port.protocol == protocol and port.port), None)
        if number is None:
            continue
        for endpoint in endpoint_slice.endpoints or []:
            conditions = endpoint.conditions
            for address in endpoint.addresses:
                item = Endpoint(address, number, endpoint.node_name)
                # An unset `ready` means ready (the API's rule for consumers).
                if conditions.ready is not False:
                    ready.add(item)
                elif conditions.serving and conditions.terminating:
                    serving.add(item)
    return sorted(ready or serving, key=lambda item: (item.address, item.port))


def build_ruleset(cluster_name: str, services: list[Any], slices: list[Any], pod_cidr: str,
                  node_name: str, node_address: str, masquerade_all: bool = False) -> Ruleset:
    """The whole table for these Services (models) and EndpointSlices (models).

    `masquerade_all` masquerades pod-to-Service traffic too, for hosts where bridged packets skip
    netfilter (no br_netfilter): there a pod's reply to a pod on the same bridge would otherwise
    bypass the connection tracking that undoes the DNAT.
    """
    ruleset = Ruleset(table_name(cluster_name))
    chains, maps = ruleset.chains, ruleset.maps
    for name, base in BASE_CHAINS.items():
        chains[name] = Chain(base=base)
    for name in (SERVICE_IPS_MAP, NO_ENDPOINT_SERVICES_MAP):
        maps[name] = Map(SERVICE_KEY_TYPE)
    for name in (SERVICE_NODEPORTS_MAP, NO_ENDPOINT_NODEPORTS_MAP):
        maps[name] = Map(NODEPORT_KEY_TYPE)
    _base_rules(ruleset)
    network, prefix = pod_cidr.split("/")
    pod_network = None if masquerade_all else {"prefix": {"addr": network, "len": int(prefix)}}

    slices_by_service: dict[tuple[str, str], list[Any]] = {}
    for endpoint_slice in slices:
        service_name = (endpoint_slice.metadata.labels or {}).get("kubernetes.io/service-name")
        if service_name:
            slices_by_service.setdefault((endpoint_slice.metadata.namespace, service_name), []).append(endpoint_slice)

    for service in sorted(services, key=lambda item: (item.metadata.namespace, item.metadata.name)):
        spec = service.spec
        if spec.type == "ExternalName" or not spec.cluster_ip or spec.cluster_ip == "None":
            continue
        service_slices = slices_by_service.get((service.metadata.namespace, service.metadata.name), [])
        for port in spec.ports or []:
            protocol = port.protocol.lower()
            if protocol not in ("tcp", "udp", "sctp"):
                continue
            identity = f"{service.metadata.namespace}/{service.metadata.name}/{protocol}/{port.name or port.port}"
            endpoints = ready_endpoints(service_slices, port.name or "", port.protocol)
            cluster_key = (spec.cluster_ip, protocol, port.port)
            external_keys = []
            if spec.type == "LoadBalancer":
                # k3s' ServiceLB: the Service's own port on the node's address.
                external_keys.append((node_address, protocol, port.port))
            node_port_key = (protocol, port.node_port) if port.node_port else None
            if not endpoints:
                reject = _goto("reject-chain")
                maps[NO_ENDPOINT_SERVICES_MAP].elements[cluster_key] = reject
                for key in external_keys:
                    maps[NO_ENDPOINT_SERVICES_MAP].elements[key] = reject
                if node_port_key:
                    maps[NO_ENDPOINT_NODEPORTS_MAP].elements[node_port_key] = reject
                continue
            affinity = spec.session_affinity_config.client_ip.timeout_seconds \
                if spec.session_affinity == "ClientIP" and spec.session_affinity_config \
                and spec.session_affinity_config.client_ip else None
            service_chain = _chain_name("service", identity)
            chains[service_chain] = Chain(_balancing_rules(ruleset, identity, protocol, endpoints, affinity, pod_network,
                                                           masquerade_outside=True))
            maps[SERVICE_IPS_MAP].elements[cluster_key] = _goto(service_chain)
            if external_keys or node_port_key:
                external_chain = _chain_name("external", identity)
                if spec.external_traffic_policy == "Local":
                    local = [endpoint for endpoint in endpoints if endpoint.node_name == node_name]
                    if local:
                        local_chain = _chain_name("local", identity)
                        chains[local_chain] = Chain(_balancing_rules(ruleset, identity, protocol, local, affinity, pod_network,
                                                                     masquerade_outside=False))
                        chains[external_chain] = Chain([[_goto(local_chain)]])
                    else:
                        chains[external_chain] = Chain([[{"drop": None}]])
                else:
                    chains[external_chain] = Chain([[_jump("mark-for-masquerade")], [_goto(service_chain)]])
                for key in external_keys:
                    maps[SERVICE_IPS_MAP].elements[key] = _goto(external_chain)
                if node_port_key:
                    maps[SERVICE_NODEPORTS_MAP].elements[node_port_key] = _goto(external_chain)
    return ruleset


def _base_rules(ruleset: Ruleset) -> None:
    chains = ruleset.chains
    service_key = {"concat": [_payload("ip", "daddr"), {"meta": {"key": "l4proto"}}, _payload("th", "dport")]}
    node_port_key = {"concat": [{"meta": {"key": "l4proto"}}, _payload("th", "dport")]}
    local_destination = _match({"fib": {"result": "type", "flags": ["daddr"]}}, "local")
    chains["mark-for-masquerade"] = Chain([[{"mangle": {"key": {"meta": {"key": "mark"}},
                                                        "value": {"|": [{"meta": {"key": "mark"}}, MASQUERADE_MARK]}}}]])
    chains["masquerading"] = Chain([
        [_match({"&": [{"meta": {"key": "mark"}}, MASQUERADE_MARK]}, 0), {"return": None}],
        [{"mangle": {"key": {"meta": {"key": "mark"}}, "value": {"^": [{"meta": {"key": "mark"}}, MASQUERADE_MARK]}}},
         {"masquerade": {"flags": ["fully-random"]}}],
    ])
    chains["services"] = Chain([
        [{"vmap": {"key": service_key, "data": f"@{SERVICE_IPS_MAP}"}}],
        [local_destination, {"vmap": {"key": node_port_key, "data": f"@{SERVICE_NODEPORTS_MAP}"}}],
    ])
    chains["reject-chain"] = Chain([[{"reject": None}]])
    chains["endpoints-check"] = Chain([
        [{"vmap": {"key": service_key, "data": f"@{NO_ENDPOINT_SERVICES_MAP}"}}],
        [local_destination, {"vmap": {"key": node_port_key, "data": f"@{NO_ENDPOINT_NODEPORTS_MAP}"}}],
    ])
    not_new = _match({"ct": {"key": "state"}}, "new", "!=")
    for name in ("nat-prerouting", "nat-output"):
        chains[name].rules = [[_jump("services")]]
    chains["nat-postrouting"].rules = [[_jump("masquerading")]]
    for name in ("filter-input", "filter-forward", "filter-output"):
        chains[name].rules = [[not_new, {"return": None}], [_jump("endpoints-check")]]


def _balancing_rules(ruleset: Ruleset, identity: str, protocol: str, endpoints: list[Endpoint],
                     affinity: int | None, pod_network: dict | None, masquerade_outside: bool) -> list[Rule]:
    """The rules of a chain spreading connections over `endpoints` (and their endpoint chains);
    `pod_network` None masquerades every client, else those outside it."""
    rules: list[Rule] = []
    if masquerade_outside:
        rules.append([_jump("mark-for-masquerade")] if pod_network is None else
                     [_match(_payload("ip", "saddr"), pod_network, "!="), _jump("mark-for-masquerade")])
    targets = []
    for endpoint in endpoints:
        endpoint_identity = f"{identity}__{endpoint.address}/{endpoint.port}"
        endpoint_chain = _chain_name("endpoint", endpoint_identity)
        targets.append(endpoint_chain)
        endpoint_rules: list[Rule] = [
            # Hairpin: a pod reaching itself through its Service must see the reply come from the
            # Service, so its own address is masqueraded to the node's.
            [_match(_payload("ip", "saddr"), endpoint.address), _jump("mark-for-masquerade")],
        ]
        if affinity is not None:
            affinity_set = _chain_name("affinity", endpoint_identity)
            ruleset.sets[affinity_set] = AffinitySet(affinity)
            rules.append([_match(_payload("ip", "saddr"), f"@{affinity_set}"), _goto(endpoint_chain)])
            endpoint_rules.append([{"set": {"op": "update", "elem": _payload("ip", "saddr"), "set": f"@{affinity_set}"}}])
        endpoint_rules.append([_match({"meta": {"key": "l4proto"}}, protocol),
                               {"dnat": {"addr": endpoint.address, "port": endpoint.port}}])
        ruleset.chains[endpoint_chain] = Chain(endpoint_rules)
    if len(targets) == 1:
        rules.append([_goto(targets[0])])
    else:
        rules.append([{"vmap": {"key": {"numgen": {"mode": "random", "mod": len(targets), "offset": 0}},
                                "data": {"set": [[index, _goto(target)] for index, target in enumerate(targets)]}}}])
    return rules


# -- to nftables commands --------------------------------------------------------------------------------

def _map_key(key: tuple) -> Any:
    return {"concat": list(key)}


def _chain_object(table: str, name: str, chain: Chain) -> dict:
    body: dict = {"family": FAMILY, "table": table, "name": name}
    if chain.base is not None:
        kind, hook, priority = chain.base
        body.update(type=kind, hook=hook, prio=priority, policy="accept")
    return {"chain": body}


def _rule_objects(table: str, name: str, chain: Chain) -> list[dict]:
    return [{"add": {"rule": {"family": FAMILY, "table": table, "chain": name, "expr": rule}}} for rule in chain.rules]


def _map_object(table: str, name: str, nft_map: Map, with_elements: bool = True) -> dict:
    body: dict = {"family": FAMILY, "table": table, "name": name, "type": nft_map.key_type, "map": "verdict"}
    if with_elements and nft_map.elements:
        body["elem"] = [[_map_key(key), verdict] for key, verdict in sorted(nft_map.elements.items(), key=str)]
    return {"map": body}


def _set_object(table: str, name: str, affinity: AffinitySet) -> dict:
    return {"set": {"family": FAMILY, "table": table, "name": name, "type": "ipv4_addr",
                    "flags": ["timeout"], "timeout": affinity.timeout_seconds}}


def full_commands(ruleset: Ruleset) -> list[dict]:
    """Replace the table with `ruleset`: add (so the delete cannot fail), delete, write anew."""
    table = ruleset.table
    commands: list[dict] = [
        {"add": {"table": {"family": FAMILY, "name": table}}},
        {"delete": {"table": {"family": FAMILY, "name": table}}},
        {"add": {"table": {"family": FAMILY, "name": table}}},
    ]
    commands += [{"add": _chain_object(table, name, chain)} for name, chain in ruleset.chains.items()]
    commands += [{"add": _set_object(table, name, affinity)} for name, affinity in ruleset.sets.items()]
    commands += [{"add": _map_object(table, name, nft_map)} for name, nft_map in ruleset.maps.items()]
    for name, chain in ruleset.chains.items():
        commands += _rule_objects(table, name, chain)
    return commands


def diff_commands(previous: Ruleset, ruleset: Ruleset) -> list[dict]:
    """Turn the table from `previous` into `ruleset`, touching only what differs.

    Order matters inside the transaction: new chains and sets first (rules and map elements may
    point at them), then map elements and changed chains, and last what is gone, once nothing
    refers to it any more.
    """
    table = ruleset.table
    commands: list[dict] = []
    new_chains = [name for name in ruleset.chains if name not in previous.chains]
    commands += [{"add": _chain_object(table, name, ruleset.chains[name])} for name in new_chains]
    commands += [{"add": _set_object(table, name, affinity)} for name, affinity in ruleset.sets.items()
                 if name not in previous.sets]
    for name in new_chains:
        commands += _rule_objects(table, name, ruleset.chains[name])
    for name, chain in ruleset.chains.items():
        if name in previous.chains and previous.chains[name].rules != chain.rules:
            commands.append({"flush": {"chain": {"family": FAMILY, "table": table, "name": name}}})
            commands += _rule_objects(table, name, chain)
    for name, nft_map in ruleset.maps.items():
        old = previous.maps.get(name, Map(nft_map.key_type)).elements
        gone = [key for key, verdict in old.items() if nft_map.elements.get(key) != verdict]
        added = [key for key, verdict in nft_map.elements.items() if old.get(key) != verdict]
        if gone:
            commands.append({"delete": {"element": {"family": FAMILY, "table": table, "name": name,
                                                    "elem": [_map_key(key) for key in sorted(gone, key=str)]}}})
        if added:
            commands.append({"add": {"element": {"family": FAMILY, "table": table, "name": name,
                                                 "elem": [[_map_key(key), nft_map.elements[key]]
                                                          for key in sorted(added, key=str)]}}})
    removed_chains = [name for name in previous.chains if name not in ruleset.chains]
    for name in removed_chains:
        commands.append({"flush": {"chain": {"family": FAMILY, "table": table, "name": name}}})
    for name in removed_chains:
        commands.append({"delete": {"chain": {"family": FAMILY, "table": table, "name": name}}})
    commands += [{"delete": {"set": {"family": FAMILY, "table": table, "name": name}}}
                 for name in previous.sets if name not in ruleset.sets]
    return commands


def document(commands: list[dict]) -> dict:
    """The libnftables JSON document of a list of commands."""
    return {"nftables": [{"metainfo": {"json_schema_version": 1}}, *commands]}
