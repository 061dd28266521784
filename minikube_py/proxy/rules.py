"""The service proxy's rule set, as data: (Services, EndpointSlices) -> one nftables table.

Pure functions, so the data path is unit-tested as a document, not through the kernel. The layout
follows kube-proxy's nftables mode (k/k `pkg/proxy/nftables/proxier.go`), cut to one node:

    nat-prerouting / nat-output (dstnat)    -> jump services
    services:  ip daddr . l4proto . dport vmap @service-ips          (ClusterIPs, LoadBalancer)
               fib daddr type local: l4proto . dport vmap @service-nodeports
    service-<id>   (one per Service port):  masquerade mark for clients outside the pod network,
                   then `dnat to numgen random mod N map { 0 : addr . port, ... }` over the
                   ready endpoints
    external-<id>  (NodePort and LoadBalancer):  mark for masquerade, goto service-<id>
                   (externalTrafficPolicy: Local: no masquerade, only this node's endpoints)
    nat-postrouting (srcnat): hairpin (`ip saddr . ip daddr @hairpin`: a pod reaching itself)
                   and marked packets are masqueraded
    filter-input / filter-forward / filter-output: a Service port with no endpoint
                   is `reject`ed (the client sees "connection refused" at once, not a hang)

One difference from kube-proxy: an endpoint gets its own chain only for `sessionAffinity: ClientIP`
(where it records the client in its affinity set). kube-proxy gives every endpoint a chain, whose
first rule masquerades hairpin traffic; here one `hairpin` set of `address . address` pairs does
that in postrouting. The reason is libnftables' cache: every transaction that adds a rule first
lists every chain of the table, so a transaction's cost grows with the chain count (about 20 ms
with 11,000 chains, 4 ms with 1,000 on the project's VM), and an endpoint change must cost
milliseconds however many Services there are.

A packet from outside the pod network to a ClusterIP is masqueraded too (kube-proxy's
`--cluster-cidr` rule), so replies come back through this node. Endpoints are the slices'
`ready` ones; when a Service has none but has `serving` terminating ones, those are used, as
kube-proxy does, so a rolling update does not drop connections in flight.

Each Service's part of the table is built on its own (`service_rules`), and a `TableState` holds
the parts the kernel has: `full_commands` writes the whole table in one transaction that replaces
it, `update_commands` writes only what the changed Services' parts changed (one transaction as
well), so an endpoint change touches one chain and a few map elements however big the table is.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable

FAMILY = "ip"
MASQUERADE_MARK = 0x4000
SERVICE_IPS_MAP = "service-ips"
SERVICE_NODEPORTS_MAP = "service-nodeports"
NO_ENDPOINT_SERVICES_MAP = "no-endpoint-services"
NO_ENDPOINT_NODEPORTS_MAP = "no-endpoint-nodeports"
HAIRPIN_SET = "hairpin"
SERVICE_KEY_TYPE = ["ipv4_addr", "inet_proto", "inet_service"]
NODEPORT_KEY_TYPE = ["inet_proto", "inet_service"]

# Base chains: name -> (type, hook, priority). dstnat is -100, srcnat 100; the filter chains run
# before conntrack's NAT lookups, which does not matter for a reject of a new connection.
BASE_CHAINS = {
    "nat-prerouting": ("nat", "prerouting", -100),
    "nat-output": ("nat", "output", -100),
    "nat-postrouting": ("nat", "postrouting", 100),
    "filter-input": ("filter", "input", -110),
    "filter-forward": ("filter", "forward", -110),
    "filter-output": ("filter", "output", -110),
}

Rule = list[dict]  # one nftables rule: its list of statements/expressions
MapKey = tuple  # a verdict map's key: (address, protocol, port) or (protocol, port)
ServiceKey = tuple[str, str]  # (namespace, name)


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
    elements: dict[MapKey, dict] = field(default_factory=dict)  # key -> verdict


@dataclass(frozen=True)
class NamedSet:
    """A set of the table: an affinity set (client addresses, each forgotten after the timeout,
    filled by the kernel) or the hairpin set (elements written by the proxy)."""
    key_type: str | tuple[str, ...]
    timeout_seconds: int | None = None


@dataclass
class Ruleset:
    table: str
    chains: dict[str, Chain] = field(default_factory=dict)
    maps: dict[str, Map] = field(default_factory=dict)
    sets: dict[str, NamedSet] = field(default_factory=dict)
    hairpin: set[str] = field(default_factory=set)  # endpoint addresses in the hairpin set


@dataclass(frozen=True)
class Endpoint:
    address: str
    port: int
    node_name: str | None


@dataclass(frozen=True)
class Settings:
    """What the rules depend on besides Services and EndpointSlices."""
    cluster_name: str
    pod_cidr: str
    node_name: str
    node_address: str
    masquerade_all: bool = False  # hosts where bridged packets skip netfilter (no br_netfilter)
    # What the daemon serves pods on the bridge's host address (DNS, the API for the `kubernetes`
    # Service): reachable from the bridge and the host only, never from other hosts.
    bridge: str | None = None
    bridge_address: str | None = None
    bridge_ports: tuple[int, ...] = ()
    # The node network's bridge on this host (nodes added with `node add`): their agents and pods
    # reach the API and DNS on the bridge address through it, so it is let in as the bridge is.
    node_network_bridge: str | None = None

    @property
    def table(self) -> str:
        return table_name(self.cluster_name)

    @property
    def pod_network(self) -> dict | None:
        """The pod CIDR as an nftables prefix; None when every client is masqueraded."""
        if self.masquerade_all:
            return None
        network, prefix = self.pod_cidr.split("/")
        return {"prefix": {"addr": network, "len": int(prefix)}}


@dataclass
class ServiceRules:
    """One Service's part of the table."""
    chains: dict[str, Chain] = field(default_factory=dict)
    elements: dict[str, dict[MapKey, dict]] = field(default_factory=dict)  # map name -> key -> verdict
    sets: dict[str, NamedSet] = field(default_factory=dict)
    hairpin: frozenset[str] = frozenset()  # its endpoints' addresses

    def add_element(self, map_name: str, key: MapKey, verdict: dict) -> None:
        self.elements.setdefault(map_name, {})[key] = verdict


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


# -- one Service's rules ---------------------------------------------------------------------------------

def ready_endpoints(slices: Iterable[Any], port_name: str, protocol: str) -> list[Endpoint]:
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


def service_key(service: Any) -> ServiceKey:
    return (service.metadata.namespace, service.metadata.name)


def service_rules(service: Any, slices: Iterable[Any], settings: Settings) -> ServiceRules:
    """The chains, map elements and sets one Service (a model) adds, from its EndpointSlices."""
    part = ServiceRules()
    spec = service.spec
    if spec.type == "ExternalName" or not spec.cluster_ip or spec.cluster_ip == "None":
        return part
    slices = list(slices)
    hairpin: set[str] = set()
    for port in spec.ports or []:
        protocol = port.protocol.lower()
        if protocol not in ("tcp", "udp", "sctp"):
            continue
        identity = f"{service.metadata.namespace}/{service.metadata.name}/{protocol}/{port.name or port.port}"
        endpoints = ready_endpoints(slices, port.name or "", port.protocol)
        cluster_key = (spec.cluster_ip, protocol, port.port)
        # k3s' ServiceLB: a LoadBalancer's own port on the node's address.
        external_keys = [(settings.node_address, protocol, port.port)] if spec.type == "LoadBalancer" else []
        node_port_key = (protocol, port.node_port) if port.node_port else None
        if not endpoints:
            reject = _goto("reject-chain")
            for key in [cluster_key, *external_keys]:
                part.add_element(NO_ENDPOINT_SERVICES_MAP, key, reject)
            if node_port_key:
                part.add_element(NO_ENDPOINT_NODEPORTS_MAP, node_port_key, reject)
            continue
        hairpin.update(endpoint.address for endpoint in endpoints)
        affinity = spec.session_affinity_config.client_ip.timeout_seconds \
            if spec.session_affinity == "ClientIP" and spec.session_affinity_config \
            and spec.session_affinity_config.client_ip else None
        service_chain = _chain_name("service", identity)
        part.chains[service_chain] = Chain(_balancing_rules(part, identity, protocol, endpoints, affinity,
                                                            settings.pod_network, masquerade_outside=True))
        part.add_element(SERVICE_IPS_MAP, cluster_key, _goto(service_chain))
        if not external_keys and not node_port_key:
            continue
        external_chain = _chain_name("external", identity)
        if spec.external_traffic_policy == "Local":
            local = [endpoint for endpoint in endpoints if endpoint.node_name == settings.node_name]
            if local:
                local_chain = _chain_name("local", identity)
                part.chains[local_chain] = Chain(_balancing_rules(part, identity, protocol, local, affinity,
                                                                  settings.pod_network, masquerade_outside=False))
                part.chains[external_chain] = Chain([[_goto(local_chain)]])
            else:
                part.chains[external_chain] = Chain([[{"drop": None}]])
        else:
            part.chains[external_chain] = Chain([[_jump("mark-for-masquerade")], [_goto(service_chain)]])
        for key in external_keys:
            part.add_element(SERVICE_IPS_MAP, key, _goto(external_chain))
        if node_port_key:
            part.add_element(SERVICE_NODEPORTS_MAP, node_port_key, _goto(external_chain))
    part.hairpin = frozenset(hairpin)
    return part


def _dnat(protocol: str, endpoints: list[Endpoint]) -> Rule:
    """DNAT to one of `endpoints`, chosen at random for each new connection."""
    if len(endpoints) == 1:
        target: dict = {"addr": endpoints[0].address, "port": endpoints[0].port}
    else:
        choices = [[index, {"concat": [endpoint.address, endpoint.port]}] for index, endpoint in enumerate(endpoints)]
        target = {"family": FAMILY, "addr": {"map": {
            "key": {"numgen": {"mode": "random", "mod": len(endpoints), "offset": 0}}, "data": {"set": choices}}}}
    return [_match({"meta": {"key": "l4proto"}}, protocol), {"dnat": target}]


def _balancing_rules(part: ServiceRules, identity: str, protocol: str, endpoints: list[Endpoint],
                     affinity: int | None, pod_network: dict | None, masquerade_outside: bool) -> list[Rule]:
    """The rules of a chain spreading connections over `endpoints`; `pod_network` None masquerades
    every client, else those outside it. With ClientIP affinity each endpoint gets a chain that
    remembers the client in the endpoint's set, and known clients go back to their endpoint."""
    rules: list[Rule] = []
    if masquerade_outside:
        rules.append([_jump("mark-for-masquerade")] if pod_network is None else
                     [_match(_payload("ip", "saddr"), pod_network, "!="), _jump("mark-for-masquerade")])
    if affinity is None:
        rules.append(_dnat(protocol, endpoints))
        return rules
    targets = []
    for endpoint in endpoints:
        endpoint_identity = f"{identity}__{endpoint.address}/{endpoint.port}"
        endpoint_chain = _chain_name("endpoint", endpoint_identity)
        # The timeout is in the set's name: a changed timeout makes a new set (a set's timeout
        # cannot be changed in place).
        affinity_set = _chain_name("affinity", f"{endpoint_identity}/{affinity}s")
        targets.append(endpoint_chain)
        part.sets[affinity_set] = NamedSet("ipv4_addr", affinity)
        rules.append([_match(_payload("ip", "saddr"), f"@{affinity_set}"), _goto(endpoint_chain)])
        part.chains[endpoint_chain] = Chain([
            [{"set": {"op": "update", "elem": _payload("ip", "saddr"), "set": f"@{affinity_set}"}}],
            _dnat(protocol, [endpoint]),
        ])
    if len(targets) == 1:
        rules.append([_goto(targets[0])])
    else:
        rules.append([{"vmap": {"key": {"numgen": {"mode": "random", "mod": len(targets), "offset": 0}},
                                "data": {"set": [[index, _goto(target)] for index, target in enumerate(targets)]}}}])
    return rules


# -- the whole table -----------------------------------------------------------------------------------

def base_ruleset(settings: Settings) -> Ruleset:
    """The table without any Service: base chains, the verdict maps, the shared chains."""
    ruleset = Ruleset(settings.table)
    chains = ruleset.chains
    for name, base in BASE_CHAINS.items():
        chains[name] = Chain(base=base)
    for name in (SERVICE_IPS_MAP, NO_ENDPOINT_SERVICES_MAP):
        ruleset.maps[name] = Map(SERVICE_KEY_TYPE)
    for name in (SERVICE_NODEPORTS_MAP, NO_ENDPOINT_NODEPORTS_MAP):
        ruleset.maps[name] = Map(NODEPORT_KEY_TYPE)
    ruleset.sets[HAIRPIN_SET] = NamedSet(("ipv4_addr", "ipv4_addr"))
    service_key_expression = {"concat": [_payload("ip", "daddr"), {"meta": {"key": "l4proto"}}, _payload("th", "dport")]}
    node_port_key = {"concat": [{"meta": {"key": "l4proto"}}, _payload("th", "dport")]}
    local_destination = _match({"fib": {"result": "type", "flags": ["daddr"]}}, "local")
    mark = {"meta": {"key": "mark"}}
    chains["mark-for-masquerade"] = Chain([[{"mangle": {"key": mark, "value": {"|": [mark, MASQUERADE_MARK]}}}]])
    chains["masquerading"] = Chain([
        # Hairpin: a pod that reached itself through a Service (after DNAT its source is its
        # destination) must see the reply come back from the Service, so it goes through the node.
        [_match({"concat": [_payload("ip", "saddr"), _payload("ip", "daddr")]}, f"@{HAIRPIN_SET}"),
         {"masquerade": {"flags": ["fully-random"]}}],
        [_match({"&": [mark, MASQUERADE_MARK]}, 0), {"return": None}],
        [{"mangle": {"key": mark, "value": {"^": [mark, MASQUERADE_MARK]}}}, {"masquerade": {"flags": ["fully-random"]}}],
    ])
    chains["services"] = Chain([
        [{"vmap": {"key": service_key_expression, "data": f"@{SERVICE_IPS_MAP}"}}],
        [local_destination, {"vmap": {"key": node_port_key, "data": f"@{SERVICE_NODEPORTS_MAP}"}}],
    ])
    chains["reject-chain"] = Chain([[{"reject": None}]])
    chains["endpoints-check"] = Chain([
        [{"vmap": {"key": service_key_expression, "data": f"@{NO_ENDPOINT_SERVICES_MAP}"}}],
        [local_destination, {"vmap": {"key": node_port_key, "data": f"@{NO_ENDPOINT_NODEPORTS_MAP}"}}],
    ])
    not_new = _match({"ct": {"key": "state"}}, "new", "!=")
    for name in ("nat-prerouting", "nat-output"):
        chains[name].rules = [[_jump("services")]]
    chains["nat-postrouting"].rules = [[_jump("masquerading")]]
    for name in ("filter-input", "filter-forward", "filter-output"):
        chains[name].rules = [[not_new, {"return": None}], [_jump("endpoints-check")]]
    if settings.bridge and settings.bridge_address and settings.bridge_ports:
        # A packet for the daemon's listeners on the bridge address that came in any other way
        # than from a pod or the host itself (another host routing to it) is dropped.
        chains["filter-input"].rules.insert(0, [
            _match(_payload("ip", "daddr"), settings.bridge_address),
            _match({"meta": {"key": "iifname"}},
                   {"set": ["lo", settings.bridge] + ([settings.node_network_bridge] if settings.node_network_bridge else [])},
                   "!="),
            _match({"meta": {"key": "l4proto"}}, {"set": ["tcp", "udp"]}),
            _match(_payload("th", "dport"), {"set": sorted(settings.bridge_ports)}),
            {"drop": None}])
    return ruleset


def slices_by_service(slices: Iterable[Any]) -> dict[ServiceKey, list[Any]]:
    """EndpointSlices grouped by the Service their `kubernetes.io/service-name` label names."""
    grouped: dict[ServiceKey, list[Any]] = {}
    for endpoint_slice in slices:
        name = (endpoint_slice.metadata.labels or {}).get("kubernetes.io/service-name")
        if name:
            grouped.setdefault((endpoint_slice.metadata.namespace, name), []).append(endpoint_slice)
    return grouped


@dataclass
class TableState:
    """The table as Service parts: what a transaction wrote, or is about to write."""
    settings: Settings
    services: dict[ServiceKey, ServiceRules] = field(default_factory=dict)
    hairpin: dict[str, int] = field(default_factory=dict)  # endpoint address -> how many Services have it

    @classmethod
    def of(cls, settings: Settings, services: Iterable[Any], slices: Iterable[Any]) -> TableState:
        grouped = slices_by_service(slices)
        return cls(settings).changed({service_key(service): service_rules(service, grouped.get(service_key(service), []),
                                                                          settings)
                                      for service in services})

    def changed(self, parts: dict[ServiceKey, ServiceRules | None]) -> TableState:
        """A new state with these Services' parts replaced (None: the Service is gone)."""
        services, hairpin = dict(self.services), dict(self.hairpin)
        for key, part in parts.items():
            old = services.pop(key, None)
            for address in old.hairpin if old is not None else ():
                hairpin[address] -= 1
                if not hairpin[address]:
                    del hairpin[address]
            if part is not None:
                services[key] = part
                for address in part.hairpin:
                    hairpin[address] = hairpin.get(address, 0) + 1
        return TableState(self.settings, services, hairpin)

    def ruleset(self) -> Ruleset:
        """The whole table as one document (the first write, tests, inspection)."""
        ruleset = base_ruleset(self.settings)
        for key in sorted(self.services):
            part = self.services[key]
            ruleset.chains.update(part.chains)
            ruleset.sets.update(part.sets)
            for name, elements in part.elements.items():
                ruleset.maps[name].elements.update(elements)
        ruleset.hairpin = set(self.hairpin)
        return ruleset


def build_ruleset(cluster_name: str, services: list[Any], slices: list[Any], pod_cidr: str,
                  node_name: str, node_address: str, masquerade_all: bool = False) -> Ruleset:
    """The whole table for these Services and EndpointSlices (models)."""
    settings = Settings(cluster_name, pod_cidr, node_name, node_address, masquerade_all)
    return TableState.of(settings, services, slices).ruleset()


# -- to nftables commands --------------------------------------------------------------------------------

def _map_key(key: MapKey) -> Any:
    return {"concat": list(key)}


def _hairpin_element(address: str) -> dict:
    return {"concat": [address, address]}


def _chain_object(table: str, name: str, chain: Chain) -> dict:
    body: dict = {"family": FAMILY, "table": table, "name": name}
    if chain.base is not None:
        kind, hook, priority = chain.base
        body.update(type=kind, hook=hook, prio=priority, policy="accept")
    return {"chain": body}


def _rule_commands(table: str, name: str, chain: Chain) -> list[dict]:
    return [{"add": {"rule": {"family": FAMILY, "table": table, "chain": name, "expr": rule}}} for rule in chain.rules]


def _set_object(table: str, name: str, named_set: NamedSet) -> dict:
    body: dict = {"family": FAMILY, "table": table, "name": name,
                  "type": list(named_set.key_type) if isinstance(named_set.key_type, tuple) else named_set.key_type}
    if named_set.timeout_seconds is not None:
        body.update(flags=["timeout"], timeout=named_set.timeout_seconds)
    return {"set": body}


def _element_command(verb: str, table: str, name: str, elements: list) -> dict:
    return {verb: {"element": {"family": FAMILY, "table": table, "name": name, "elem": elements}}}


def full_commands(ruleset: Ruleset) -> list[dict]:
    """Replace the table with `ruleset` in one transaction: add (so the delete cannot fail),
    delete, write anew."""
    table = ruleset.table
    commands: list[dict] = [
        {"add": {"table": {"family": FAMILY, "name": table}}},
        {"delete": {"table": {"family": FAMILY, "name": table}}},
        {"add": {"table": {"family": FAMILY, "name": table}}},
    ]
    commands += [{"add": _chain_object(table, name, chain)} for name, chain in ruleset.chains.items()]
    commands += [{"add": _set_object(table, name, named_set)} for name, named_set in ruleset.sets.items()]
    for name, nft_map in ruleset.maps.items():
        commands.append({"add": {"map": {"family": FAMILY, "table": table, "name": name,
                                         "type": nft_map.key_type, "map": "verdict"}}})
    for name, chain in ruleset.chains.items():
        commands += _rule_commands(table, name, chain)
    for name, nft_map in ruleset.maps.items():
        if nft_map.elements:
            commands.append(_element_command("add", table, name, [[_map_key(key), verdict] for key, verdict
                                                                  in sorted(nft_map.elements.items(), key=str)]))
    if ruleset.hairpin:
        commands.append(_element_command("add", table, HAIRPIN_SET,
                                         [_hairpin_element(address) for address in sorted(ruleset.hairpin)]))
    return commands


def update_commands(before: TableState, after: TableState, keys: Iterable[ServiceKey]) -> list[dict]:
    """One transaction turning the table from `before` into `after`, where only the Services
    `keys` differ: their new chains and sets, their changed chains flushed and refilled, their map
    elements, the hairpin set, and last what is gone, once nothing refers to it any more.

    Phases run across all the Services, so a map key passing from one Service to another in the
    same transaction is deleted before it is added.
    """
    table = after.settings.table
    empty = ServiceRules()
    new_chains: list[dict] = []
    rules: list[dict] = []
    deleted_elements: dict[str, list] = {}
    added_elements: dict[str, list] = {}
    gone_chains: list[str] = []
    gone_sets: list[str] = []
    keys = sorted(set(keys))
    for key in keys:
        old, new = before.services.get(key, empty), after.services.get(key, empty)
        new_chains += [{"add": _set_object(table, name, named_set)} for name, named_set in new.sets.items()
                       if name not in old.sets]
        for name, chain in new.chains.items():
            if name not in old.chains:
                new_chains.append({"add": _chain_object(table, name, chain)})
                rules += _rule_commands(table, name, chain)
            elif old.chains[name].rules != chain.rules:
                rules.append({"flush": {"chain": {"family": FAMILY, "table": table, "name": name}}})
                rules += _rule_commands(table, name, chain)
        for map_name in set(old.elements) | set(new.elements):
            old_elements, new_elements = old.elements.get(map_name, {}), new.elements.get(map_name, {})
            deleted_elements.setdefault(map_name, []).extend(
                _map_key(element) for element, verdict in old_elements.items() if new_elements.get(element) != verdict)
            added_elements.setdefault(map_name, []).extend(
                [_map_key(element), verdict] for element, verdict in new_elements.items()
                if old_elements.get(element) != verdict)
        gone_chains += [name for name in old.chains if name not in new.chains]
        gone_sets += [name for name in old.sets if name not in new.sets]
    commands = new_chains + rules
    for map_name, elements in sorted(deleted_elements.items()):
        if elements:
            commands.append(_element_command("delete", table, map_name, elements))
    touched = set().union(*(part.hairpin for key in keys for part in (before.services.get(key, empty),
                                                                       after.services.get(key, empty))))
    hairpin_gone = sorted(address for address in touched if address in before.hairpin and address not in after.hairpin)
    if hairpin_gone:
        commands.append(_element_command("delete", table, HAIRPIN_SET, [_hairpin_element(a) for a in hairpin_gone]))
    for map_name, elements in sorted(added_elements.items()):
        if elements:
            commands.append(_element_command("add", table, map_name, elements))
    hairpin_new = sorted(address for address in touched if address in after.hairpin and address not in before.hairpin)
    if hairpin_new:
        commands.append(_element_command("add", table, HAIRPIN_SET, [_hairpin_element(a) for a in hairpin_new]))
    commands += [{"flush": {"chain": {"family": FAMILY, "table": table, "name": name}}} for name in gone_chains]
    commands += [{"delete": {"chain": {"family": FAMILY, "table": table, "name": name}}} for name in gone_chains]
    commands += [{"delete": {"set": {"family": FAMILY, "table": table, "name": name}}}
                 for name in gone_sets]
    return commands


def document(commands: list[dict]) -> dict:
    """The libnftables JSON document of a list of commands."""
    return {"nftables": [{"metainfo": {"json_schema_version": 1}}, *commands]}
