"""Extra nodes on this host: each a network namespace of its own with its own address on a link to
the host, and the routes that carry pod traffic between nodes.

A node added on this host (`minikube-py node add`) is a "host" of its own as far as the network is
concerned: a named network namespace `mkpy-<cluster>-<node>` (in /run/netns, so `ip netns exec`
finds it), joined to the host by a veth pair. The host ends of every node's pair are ports of one
bridge per cluster, `mkpn-<cluster>`, the cluster's node network, on which the host holds the
network's first address: the nodes and the host sit on one L2 segment as machines on a LAN do. In
its namespace each node has `eth0` with its own address and a default route through the host,
where the API server listens.

Pods reach pods of other nodes by routing, as flannel's host-gw backend or kube-router do it:
every node (the host included) routes each other node's pod CIDR through that node's address on
the node network (`sync_routes`, driven by the agent's route controller from the Node objects).
Forwarding is turned on only where it is needed: on the node network's bridge in the host (packets
from nodes to the host's pods) and in each node's own namespace (which belongs to the cluster), never
host-wide. The routes carry the protocol number `ROUTE_PROTOCOL` and are always inside the
cluster's pod CIDR, so a sync removes exactly the routes it made.

Names, within Linux's 15 characters: the bridge `mkpn-<cluster>`, each host end `mkn` + the first
seven characters of the cluster name + hex digits of sha256("<cluster>/<node>"), with the ifalias
`minikube-py-node/<cluster>/<node>`. Deleting a node's namespace and host end removes everything of
it from the network; the bridge goes with the last node or with `stop`.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import os
import threading
from typing import Callable

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from minikube_py.runtime import linux
from minikube_py.runtime.network import in_network_namespace
from minikube_py.runtime.types import ContainerRuntimeError

NETNS_DIRECTORY = "/run/netns"
NODE_ALIAS_PREFIX = "minikube-py-node"
NODE_INTERFACE = "eth0"
INTERFACE_NAME_MAX = 15
ROUTE_PROTOCOL = 77  # marks the routes between nodes' pod CIDRs (iproute2 shows "proto 77")
LOOPBACK_INDEX = 1

def node_network_bridge(cluster_name: str) -> str:
    return f"mkpn-{cluster_name}"


def node_netns_name(cluster_name: str, node_name: str) -> str:
    return f"mkpy-{cluster_name}-{node_name}"


def node_netns_path(cluster_name: str, node_name: str) -> str:
    return os.path.join(NETNS_DIRECTORY, node_netns_name(cluster_name, node_name))


def node_link_name(cluster_name: str, node_name: str) -> str:
    prefix = f"mkn{cluster_name[:7]}"
    digest = hashlib.sha256(f"{cluster_name}/{node_name}".encode()).hexdigest()
    return prefix + digest[: INTERFACE_NAME_MAX - len(prefix)]


def enter_namespace(path: str) -> None:
    """Move the calling thread into the network namespace at `path` (the node process does this
    first, before it starts any thread, so every thread it starts is in the node's namespace)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        linux.setns(fd, linux.CLONE_NEWNET)
    finally:
        os.close(fd)


def enable_forwarding(interface: str | None = None) -> None:
    """IPv4 forwarding for packets arriving on `interface`, or (None) for the calling thread's whole
    network namespace, which must be a node's own."""
    path = f"/proc/sys/net/ipv4/conf/{interface}/forwarding" if interface else "/proc/sys/net/ipv4/ip_forward"
    with open(path, "w") as file:
        file.write("1")


def _create_netns(path: str) -> None:
    """A new network namespace kept alive by a bind mount at `path`, as `ip netns add` makes it."""
    os.makedirs(NETNS_DIRECTORY, exist_ok=True)
    with open(path, "x"):
        pass

    def make() -> None:
        linux.unshare(linux.CLONE_NEWNET)
        linux.mount(f"/proc/self/task/{threading.get_native_id()}/ns/net", path, None, linux.MS_BIND)

    outcome: list[BaseException] = []
    thread = threading.Thread(target=lambda: _capture(make, outcome), name="netns-create", daemon=True)
    thread.start()
    thread.join()
    if outcome:
        os.unlink(path)
        raise outcome[0]


def _capture(work: Callable[[], None], outcome: list[BaseException]) -> None:
    try:
        work()
    except BaseException as error:
        outcome.append(error)


def _remove_netns(path: str) -> None:
    try:
        linux.umount2(path, linux.MNT_DETACH)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOENT):
            raise
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _delete_links(ipr: IPRoute, indexes: list[int]) -> None:
    for index in indexes:
        try:
            ipr.link("del", index=index)
        except NetlinkError as error:
            if error.code not in (errno.ENODEV, errno.ENOENT):
                raise


class NodeNetwork:
    """The cluster's node network on this host: its bridge, and each added node's namespace and link."""

    def __init__(self, cluster_name: str, network: str):
        self.cluster_name = cluster_name
        self.network = ipaddress.ip_network(network)
        self.bridge = node_network_bridge(cluster_name)
        self.host_address = str(next(self.network.hosts()))

    def node_addresses(self) -> list[str]:
        """Addresses a node may take, in order (the first host address is the host's)."""
        return [str(address) for address in self.network.hosts()][1:]

    # --- the host's side ---------------------------------------------------------------------------

    def ensure_bridge(self) -> None:
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=self.bridge)
            if not found:
                ipr.link("add", ifname=self.bridge, kind="bridge", ifalias=f"{NODE_ALIAS_PREFIX}/{self.cluster_name}")
                found = ipr.link_lookup(ifname=self.bridge)
            index = found[0]
            addresses = {message.get_attr("IFA_ADDRESS") for message in ipr.get_addr(index=index, family=2)}
            if self.host_address not in addresses:
                ipr.addr("add", index=index, address=self.host_address, prefixlen=self.network.prefixlen)
            ipr.link("set", index=index, state="up")
        enable_forwarding(self.bridge)

    def add_node(self, node_name: str, address: str) -> str:
        """Make the node's namespace and link: `eth0` with `address`, default route through the
        host; returns the namespace's path. On failure nothing of it is left."""
        path = node_netns_path(self.cluster_name, node_name)
        link = node_link_name(self.cluster_name, node_name)
        self.ensure_bridge()
        try:
            _create_netns(path)
        except FileExistsError:
            raise ContainerRuntimeError("NodeExists", f"the network namespace {path} already exists: node "
                                        f"{node_name} is already on this host (minikube-py node rm {node_name})") from None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                with IPRoute() as ipr:
                    bridge = ipr.link_lookup(ifname=self.bridge)[0]
                    _delete_links(ipr, ipr.link_lookup(ifname=link))  # a leftover of a killed `node add`
                    ipr.link("add", ifname=link, kind="veth", peer={"ifname": NODE_INTERFACE, "net_ns_fd": fd},
                             master=bridge, state="up", ifalias=f"{NODE_ALIAS_PREFIX}/{self.cluster_name}/{node_name}")
            finally:
                os.close(fd)
            in_network_namespace(path, lambda: self._configure_node_side(address))
        except BaseException:
            self.remove_node(node_name)
            raise
        return path

    def _configure_node_side(self, address: str) -> None:
        with IPRoute() as ipr:
            eth0 = ipr.link_lookup(ifname=NODE_INTERFACE)[0]
            ipr.link("set", index=LOOPBACK_INDEX, state="up")
            ipr.addr("add", index=eth0, address=address, prefixlen=self.network.prefixlen)
            ipr.link("set", index=eth0, state="up")
            ipr.route("add", dst="0.0.0.0/0", gateway=self.host_address, oif=eth0)
        enable_forwarding()  # the node's namespace routes between its bridge and eth0

    def set_link(self, node_name: str, up: bool) -> None:
        """Bring the node's link to the host up or down (a node losing its network)."""
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=node_link_name(self.cluster_name, node_name))
            if not found:
                raise ContainerRuntimeError("NodeNotFound", f"node {node_name} has no link on this host")
            ipr.link("set", index=found[0], state="up" if up else "down")

    def remove_node(self, node_name: str) -> None:
        """Delete the node's link and namespace (idempotent). The node's processes must be gone."""
        with IPRoute() as ipr:
            _delete_links(ipr, ipr.link_lookup(ifname=node_link_name(self.cluster_name, node_name)))
        _remove_netns(node_netns_path(self.cluster_name, node_name))

    def node_names(self) -> list[str]:
        """Nodes of this cluster with a namespace on this host."""
        prefix = node_netns_name(self.cluster_name, "")
        try:
            entries = os.listdir(NETNS_DIRECTORY)
        except FileNotFoundError:
            return []
        return sorted(entry[len(prefix):] for entry in entries if entry.startswith(prefix))

    def remove_all(self) -> None:
        """Every node's link and namespace, and the bridge: what `stop` leaves of the node network."""
        for node_name in self.node_names():
            self.remove_node(node_name)
        with IPRoute() as ipr:
            alias_prefix = f"{NODE_ALIAS_PREFIX}/{self.cluster_name}/"
            leftovers = [message["index"] for message in ipr.get_links()
                         if (message.get_attr("IFLA_IFALIAS") or "").startswith(alias_prefix)]
            _delete_links(ipr, leftovers + ipr.link_lookup(ifname=self.bridge))


def sync_routes(pod_cidr: str, wanted: dict[str, str]) -> list[str]:
    """Make the calling thread's namespace route each pod CIDR in `wanted` through its gateway (a
    node's address), and remove routes of ours inside `pod_cidr` that are no longer wanted.
    Returns the CIDRs whose gateway is not on a directly connected network here (not routed)."""
    cluster = ipaddress.ip_network(pod_cidr)
    unreachable = []
    with IPRoute() as ipr:
        present: dict[str, str] = {}
        for route in ipr.get_routes(family=2, proto=ROUTE_PROTOCOL):
            destination = f"{route.get_attr('RTA_DST')}/{route['dst_len']}"
            if route["proto"] == ROUTE_PROTOCOL and ipaddress.ip_network(destination).subnet_of(cluster):
                present[destination] = route.get_attr("RTA_GATEWAY")
        for destination, gateway in present.items():
            if wanted.get(destination) != gateway:
                try:
                    ipr.route("del", dst=destination, gateway=gateway, proto=ROUTE_PROTOCOL)
                except NetlinkError as error:
                    if error.code != errno.ESRCH:
                        raise
        for destination, gateway in wanted.items():
            if present.get(destination) == gateway:
                continue
            try:
                ipr.route("replace", dst=destination, gateway=gateway, proto=ROUTE_PROTOCOL)
            except NetlinkError as error:
                if error.code not in (errno.ENETUNREACH, errno.EHOSTUNREACH):
                    raise
                unreachable.append(destination)
    return unreachable
