"""ClusterIPs and node ports for Services, held as leases in the store.

kube-apiserver's Service storage allocates a Service's virtual address from the service CIDR
(`--service-cluster-ip-range`, ours `start --service-cidr`, default 10.96.0.0/12) and a node port
from 30000-32767 (`--service-node-port-range`, ours `start --service-node-port-range`) for
NodePort and LoadBalancer Services, scanning from a random offset as kube-apiserver's port
allocator does (so two clusters on one host rarely pick the same port), keeps them across updates that leave
them out (a PUT without `clusterIP` keeps the address: "patchAllocatedValues") and gives them
back when the Service goes. The leases live in the store beside the pod IPs, so an address is
never handed out twice, survives daemon restarts, and a requested one that is taken or outside
the range is refused with Kubernetes' message. The first address of the range is reserved for
the `kubernetes` Service, as kube-apiserver reserves it.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Callable

from minikube_py.api.networking_validation import uses_node_ports
from minikube_py.store import PoolExhausted

DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
NODE_PORT_RANGE = (30000, 32767)


def parse_node_port_range(text: str) -> tuple[int, int]:
    """`LOW-HIGH` (kube-apiserver's `--service-node-port-range` form) as a pair; ValueError says why."""
    low_text, dash, high_text = text.partition("-")
    try:
        low, high = int(low_text), int(high_text)
    except ValueError:
        raise ValueError(f"{text!r} is not a port range: write it as LOW-HIGH, such as 30000-32767") from None
    if not dash or not 1 <= low <= high <= 65535:
        raise ValueError(f"{text!r} is not a port range: LOW-HIGH with 1 <= LOW <= HIGH <= 65535")
    return low, high

Problem = tuple[str, str]


class ServiceAllocator:
    """Allocates and releases the ClusterIP and node ports of Services; owners are Service uids."""

    def __init__(self, store, service_cidr: str = DEFAULT_SERVICE_CIDR, node_ports: tuple[int, int] = NODE_PORT_RANGE):
        self.store = store
        self.network = ipaddress.ip_network(service_cidr)
        self.node_ports = node_ports
        self._ip_pool = f"service-ip/{service_cidr}"
        self._port_pool = "service-node-port"

    @property
    def kubernetes_service_ip(self) -> str:
        """The first address of the range, the `kubernetes` Service's."""
        return str(self.network.network_address + 1)

    # -- the Registry's hooks ----------------------------------------------------------------

    def carry_over(self, new: dict, current: dict) -> None:
        """Fill what an update left out with what the stored Service holds (the ClusterIP, each
        port's nodePort), as kube-apiserver's patchAllocatedValues does."""
        new_spec, old_spec = new.setdefault("spec", {}), current.get("spec") or {}
        if new_spec.get("type", "ClusterIP") != "ExternalName" and old_spec.get("clusterIP") \
                and not new_spec.get("clusterIP") and not new_spec.get("clusterIPs"):
            new_spec["clusterIP"] = old_spec["clusterIP"]
            new_spec["clusterIPs"] = list(old_spec.get("clusterIPs") or [old_spec["clusterIP"]])
        if uses_node_ports(new_spec):
            held = {(port.get("port"), port.get("protocol", "TCP")): port.get("nodePort")
                    for port in old_spec.get("ports") or [] if port.get("nodePort")}
            for port in new_spec.get("ports") or []:
                if isinstance(port, dict) and not port.get("nodePort"):
                    node_port = held.get((port.get("port"), port.get("protocol", "TCP")))
                    if node_port:
                        port["nodePort"] = node_port

    def allocate(self, service: dict) -> Callable[[], None]:
        """Allocate what `service` (a parsed wire dict with its uid) needs and write it into its
        spec; returns an undo that releases what this call took. Raises `AllocationError` with
        the problems (a taken or out-of-range address or port)."""
        uid = service["metadata"]["uid"]
        spec = service["spec"]
        taken: list[tuple[str, str]] = []
        problems: list[Problem] = []
        if spec.get("type") == "ExternalName" or spec.get("clusterIP") == "None":
            self.store.release(self._ip_pool, uid)
        try:
            if spec.get("type") != "ExternalName" and spec.get("clusterIP") != "None":
                self._allocate_cluster_ip(uid, spec, taken, problems)
            if uses_node_ports(spec):
                self._allocate_node_ports(uid, spec, taken, problems)
        except BaseException:
            self._release(taken)
            raise
        self._release_unused_node_ports(uid, spec)
        if problems:
            self._release(taken)
            raise AllocationError(problems)
        return lambda: self._release(taken)

    def release(self, service: dict) -> None:
        """Give back everything a deleted Service held."""
        uid = (service.get("metadata") or {}).get("uid")
        if not uid:
            return
        self.store.release(self._ip_pool, uid)
        for owner in self.store.allocations(self._port_pool).values():
            if owner.startswith(f"{uid}/"):
                self.store.release(self._port_pool, owner)

    # -- the parts -----------------------------------------------------------------------------

    def _allocate_cluster_ip(self, uid: str, spec: dict, taken: list, problems: list[Problem]) -> None:
        requested = spec.get("clusterIP")
        held = self.store.allocations(self._ip_pool)
        mine = next((address for address, owner in held.items() if owner == uid), None)
        if requested:
            if requested == mine:
                return
            address = ipaddress.ip_address(requested)
            if address not in self.network or address in (self.network.network_address, self.network.broadcast_address):
                problems.append(("spec.clusterIPs", f'Invalid value: ["{requested}"]: failed to allocate IP '
                                 f"{requested}: the provided IP ({requested}) is not in the valid range. "
                                 f"The range of valid IPs is {self.network}"))
                return
            if mine is not None:
                self.store.release(self._ip_pool, uid)
            try:
                self.store.allocate(self._ip_pool, [requested], uid)
            except PoolExhausted:
                problems.append(("spec.clusterIPs", f'Invalid value: ["{requested}"]: failed to allocate IP '
                                 f"{requested}: provided IP is already allocated"))
                return
            taken.append((self._ip_pool, uid))
            return
        if mine is not None:
            address = mine
        else:
            try:
                address = self.store.allocate(self._ip_pool, self._dynamic_addresses(), uid)
            except PoolExhausted:
                problems.append(("spec.clusterIPs", "Internal error: failed to allocate a serviceIP: range is full "
                                 f"({self.network}); delete Services or start the cluster with a wider --service-cidr"))
                return
            taken.append((self._ip_pool, uid))
        spec["clusterIP"] = address
        spec["clusterIPs"] = [address]

    def _dynamic_addresses(self):
        # The first host address is the `kubernetes` Service's; dynamic ones start after it.
        first = self.network.network_address + 2
        last = self.network.broadcast_address
        address = first
        while address < last:
            yield str(address)
            address += 1

    def _allocate_node_ports(self, uid: str, spec: dict, taken: list, problems: list[Problem]) -> None:
        low, high = self.node_ports
        held = self.store.allocations(self._port_pool)
        for index, port in enumerate(spec.get("ports") or []):
            owner = f"{uid}/{port.get('port')}/{port.get('protocol', 'TCP')}"
            mine = next((int(value) for value, holder in held.items() if holder == owner), None)
            requested = port.get("nodePort")
            path = f"spec.ports[{index}].nodePort"
            if requested:
                if requested == mine:
                    continue
                if not low <= requested <= high:
                    problems.append((path, f"Invalid value: {requested}: provided port is not in the valid range. "
                                           f"The range of valid ports is {low}-{high}"))
                    continue
                if mine is not None:
                    self.store.release(self._port_pool, owner)
                try:
                    self.store.allocate(self._port_pool, [requested], owner)
                except PoolExhausted:
                    problems.append((path, f"Invalid value: {requested}: provided port is already allocated"))
                    continue
                taken.append((self._port_pool, owner))
                continue
            if mine is None:
                try:
                    start = random.randint(low, high)
                    candidates = [*range(start, high + 1), *range(low, start)]
                    mine = int(self.store.allocate(self._port_pool, candidates, owner))
                except PoolExhausted:
                    problems.append((path, f"Internal error: failed to allocate a nodePort: range is full ({low}-{high})"))
                    continue
                taken.append((self._port_pool, owner))
            port["nodePort"] = mine

    def _release_unused_node_ports(self, uid: str, spec: dict) -> None:
        """Ports the Service no longer has (or a type without node ports) give theirs back."""
        keep = set()
        if uses_node_ports(spec):
            keep = {f"{uid}/{port.get('port')}/{port.get('protocol', 'TCP')}" for port in spec.get("ports") or []}
        for owner in self.store.allocations(self._port_pool).values():
            if owner.startswith(f"{uid}/") and owner not in keep:
                self.store.release(self._port_pool, owner)
        if not uses_node_ports(spec):
            for port in spec.get("ports") or []:
                port.pop("nodePort", None)

    def _release(self, taken: list[tuple[str, str]]) -> None:
        for pool, owner in taken:
            self.store.release(pool, owner)


class AllocationError(Exception):
    """What could not be allocated, as `(path, message)` problems for an Invalid error."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems))
        self.problems = problems
