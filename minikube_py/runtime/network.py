"""Pod networking: one Linux bridge per cluster and a veth pair per pod, made with pyroute2.

Every pod sandbox gets its own network namespace (held by the pause process). `PodNetwork`
plugs it into the cluster's bridge `mkpy-<cluster>`, which carries the pod CIDR's first address
as the gateway: a veth pair is created in the host namespace with its peer moved straight into
the pod's namespace as `eth0`, the host end joins the bridge, and the pod side gets its address,
`lo` and a default route. Pods reach each other on the same L2 segment and the host reaches them
through the bridge address, so no host sysctl (ip_forward and the like) is touched.

The pod side is configured in-process: a short-lived thread enters the pod's network namespace
with setns(2) (which moves only that thread), opens a netlink socket there, configures and exits.
pyroute2's own netns helper forks a process per call and is 4-5 times slower; the daemon's own
threads never change namespace. No `ip` command is ever run. Each netlink request through
pyroute2's request machinery costs about a millisecond of Python, most of it parsing the answer,
so the pod start path encodes its requests with pyroute2's message classes and sends them on a
plain socket, reading only the acknowledgements: the veth pair (pod end with its MAC, straight in
the pod's namespace; host end on the bridge and up), the host end's alias, and the pod side's
address, links and route. The rarer paths (name clashes, checks, the bridge) use pyroute2's
`IPRoute`, one host-namespace socket per calling thread.

Host veth names (at most 15 characters, IFNAMSIZ - 1): `mk` + the first seven characters of the
cluster name + hex digits of sha256("<cluster>/<sandbox id>") filling the name to 15 characters
(so at least six). The digest covers the full cluster name, so clusters that share a seven
character prefix still get different names; if a name is taken by another pod's veth the digest
input gets a counter (`/1`, `/2`, ...). Ownership is never read from the name: every host veth
carries the ifalias `minikube-py/<cluster>/<alias>` (alias = `<namespace>/<pod>`), and
`list_veths` finds them by that alias or by their bridge.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import os
import socket
import struct
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NLMSG_ERROR, nlmsg
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from minikube_py.runtime import linux
from minikube_py.runtime.types import CLUSTER_NAME_PATTERN, ContainerRuntimeError

INTERFACE_NAME_MAX = 15
POD_INTERFACE = "eth0"
ALIAS_PREFIX = "minikube-py"
NAME_ATTEMPTS = 16
LOOPBACK_INDEX = 1  # the kernel registers lo first in every network namespace
IFF_UP = 0x1
RT_TABLE_MAIN, RTPROT_STATIC, RTN_UNICAST = 254, 4, 1  # the main table, "proto static", a unicast route
NLMSG_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr: length, type, flags, sequence, port id
NLMSG_ERROR_CODE = struct.Struct("=i")  # struct nlmsgerr starts with the (negative) errno, 0 for an ack
NETLINK_BATCH_TIMEOUT_SECONDS = 10.0
# How long a removed pod's host veth may outlive the pod before it is deleted by hand.
RELEASED_VETH_GRACE_SECONDS = 5.0

T = TypeVar("T")


def host_veth_name(cluster_name: str, sandbox_id: str, attempt: int = 0) -> str:
    """The host end's name for a pod; see the module docstring for the rule."""
    prefix = f"mk{cluster_name[:7]}"
    key = f"{cluster_name}/{sandbox_id}" + (f"/{attempt}" if attempt else "")
    digest = hashlib.sha256(key.encode()).hexdigest()
    return prefix + digest[: INTERFACE_NAME_MAX - len(prefix)]


def pod_mac(ip: str) -> str:
    """The pod's eth0 MAC, derived from its IP: 0a:58 followed by the four address bytes.

    Pod IPs are reused once released, and the host (and other pods) keep ARP entries for a while:
    with a random MAC per veth, a new pod on a recycled IP is unreachable until the stale entry
    expires. Deriving the MAC from the IP, as OVN-Kubernetes does, keeps every such entry right.
    """
    return "0a:58:" + ":".join(f"{int(octet):02x}" for octet in ip.split("."))


def bridge_mac(cluster_name: str) -> str:
    """A fixed, locally administered MAC for the bridge.

    A bridge without an explicitly set address takes the lowest MAC of its ports and changes it
    whenever ports come and go, which would silently invalidate every pod's ARP entry for the
    gateway. Setting it once pins it.
    """
    digest = hashlib.sha256(f"{ALIAS_PREFIX}/{cluster_name}/bridge".encode()).digest()
    return ":".join(f"{byte:02x}" for byte in (0x02, *digest[:5]))


def in_network_namespace(path: str, work: Callable[[], T]) -> T:
    """Run `work` in a fresh thread that has entered the network namespace at `path`
    (`/proc/PID/ns/net`, or a bound one such as `/run/netns/NAME`).

    setns(CLONE_NEWNET) changes only the calling thread; the thread exits afterwards, so the
    namespace never leaks into any other thread of the daemon.
    """
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                linux.setns(fd, linux.CLONE_NEWNET)
            finally:
                os.close(fd)
            outcome["value"] = work()
        except BaseException as error:  # handed to the caller's thread below
            outcome["error"] = error

    thread = threading.Thread(target=run, name="netns", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def _in_network_namespace(pid: int, work: Callable[[], T]) -> T:
    """`in_network_namespace` for the network namespace of process `pid`."""
    return in_network_namespace(f"/proc/{pid}/ns/net", work)


def pod_side_requests(eth0_index: int, ip: str, prefix_len: int, gateway: str) -> list[nlmsg]:
    """The pod namespace's configuration as rtnetlink requests, each asking for an acknowledgement:
    the address on eth0, lo up, eth0 up, and the default route through the gateway on eth0."""
    create = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    address = ifaddrmsg()
    address["family"], address["prefixlen"], address["index"] = socket.AF_INET, prefix_len, eth0_index
    address["attrs"] = [("IFA_LOCAL", ip), ("IFA_ADDRESS", ip)]
    requests: list[tuple[nlmsg, int, int]] = [(address, RTM_NEWADDR, create)]
    for index in (LOOPBACK_INDEX, eth0_index):
        link = ifinfmsg()
        link["index"], link["flags"], link["change"] = index, IFF_UP, IFF_UP
        requests.append((link, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK))
    route = rtmsg()
    route["family"], route["table"], route["proto"], route["type"] = socket.AF_INET, RT_TABLE_MAIN, RTPROT_STATIC, RTN_UNICAST
    route["attrs"] = [("RTA_GATEWAY", gateway), ("RTA_OIF", eth0_index)]
    requests.append((route, RTM_NEWROUTE, create))
    return [_encoded(message, message_type, flags, sequence)
            for sequence, (message, message_type, flags) in enumerate(requests, start=1)]


def host_veth_requests(name: str, bridge_index: int, pid: int, mac: str) -> list[nlmsg]:
    """The veth pair as one rtnetlink request: host end `name` on the bridge and up, pod end
    `eth0` with `mac` created straight in the network namespace of process `pid`."""
    link = ifinfmsg()
    link["family"], link["flags"], link["change"] = socket.AF_UNSPEC, IFF_UP, IFF_UP
    peer = {"attrs": [("IFLA_IFNAME", POD_INTERFACE), ("IFLA_NET_NS_PID", pid), ("IFLA_ADDRESS", mac)]}
    link["attrs"] = [("IFLA_IFNAME", name), ("IFLA_MASTER", bridge_index),
                     ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "veth"),
                                                  ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", peer)]})]})]
    return [_encoded(link, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, 1)]


def alias_requests(name: str, ifalias: str) -> list[nlmsg]:
    """Set the ifalias of link `name` (the kernel takes no alias when it creates a link)."""
    link = ifinfmsg()
    link["family"] = socket.AF_UNSPEC
    link["attrs"] = [("IFLA_IFNAME", name), ("IFLA_IFALIAS", ifalias)]
    return [_encoded(link, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 1)]


def _encoded(message: nlmsg, message_type: int, flags: int, sequence: int) -> nlmsg:
    message["header"]["type"], message["header"]["flags"] = message_type, flags
    message["header"]["sequence_number"] = sequence
    message.encode()
    return message


def send_netlink_batch(messages: list[nlmsg]) -> None:
    """Send encoded rtnetlink requests in one write on a socket of the calling thread's network
    namespace and wait for every acknowledgement; the first refusal raises its NetlinkError.
    The kernel still carries out the requests after a refused one: batch only requests that
    are harmless without the ones before them."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as netlink:
        netlink.settimeout(NETLINK_BATCH_TIMEOUT_SECONDS)
        netlink.bind((0, 0))
        netlink.sendall(b"".join(bytes(message.data) for message in messages))
        waiting = {message["header"]["sequence_number"] for message in messages}
        while waiting:
            reply = netlink.recv(65536)
            offset = 0
            while offset + NLMSG_HEADER.size <= len(reply):
                length, message_type, _, sequence, _ = NLMSG_HEADER.unpack_from(reply, offset)
                if message_type == NLMSG_ERROR and sequence in waiting:
                    (code,) = NLMSG_ERROR_CODE.unpack_from(reply, offset + NLMSG_HEADER.size)
                    if code != 0:
                        raise NetlinkError(-code)
                    waiting.discard(sequence)
                offset += max(length, NLMSG_HEADER.size)


def _link_kind(message) -> str | None:
    info = message.get_attr("IFLA_LINKINFO")
    return info.get_attr("IFLA_INFO_KIND") if info is not None else None


class PodNetwork:
    """The cluster's bridge and the pods' veth pairs for one pod CIDR."""

    def __init__(self, cluster_name: str, pod_cidr: str):
        if not CLUSTER_NAME_PATTERN.fullmatch(cluster_name):
            raise ValueError(
                f"cluster name {cluster_name!r}: must match [a-z][a-z0-9]{{0,9}} "
                "(it becomes part of 15-character interface names)"
            )
        network = ipaddress.ip_network(pod_cidr, strict=True)
        if network.version != 4 or network.prefixlen > 30:
            raise ValueError(f"pod CIDR {pod_cidr!r}: must be an IPv4 network of at least 4 addresses, like 10.244.0.0/24")
        self.cluster_name = cluster_name
        self.network = network
        self.bridge_name = f"mkpy-{cluster_name}"
        self.gateway = str(network.network_address + 1)
        self.prefix_len = network.prefixlen
        self.alias_prefix = f"{ALIAS_PREFIX}/{cluster_name}/"
        self._cached_bridge_index: int | None = None
        self._thread_sockets = threading.local()
        # Host veths of removed pods that the kernel is to take away with their namespaces:
        # name -> when to check. `_veth_names` is held while a name is created or checked.
        self._released: dict[str, float] = {}
        self._veth_names = threading.Lock()

    @contextmanager
    def _host_netlink(self) -> Iterator[IPRoute]:
        """The calling thread's netlink socket in the host namespace, opened on its first use.

        The agent's workers are long-lived, so this is one socket per worker. A socket that
        failed other than with a netlink error answer is closed and reopened next time.
        """
        ipr = getattr(self._thread_sockets, "ipr", None)
        if ipr is None:
            ipr = self._thread_sockets.ipr = IPRoute()
        try:
            yield ipr
        except NetlinkError:
            raise
        except BaseException:
            self._thread_sockets.ipr = None
            ipr.close()
            raise

    def allocate_candidates(self) -> Iterator[str]:
        """Pod IPs in the CIDR, in order: every host address except the gateway."""
        for address in self.network.hosts():
            if str(address) != self.gateway:
                yield str(address)

    # --- bridge -------------------------------------------------------------------------------

    def ensure_bridge(self) -> None:
        """Create the bridge if missing, give it the gateway address and bring it up. Idempotent."""
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=self.bridge_name)
            if found:
                index = found[0]
                kind = _link_kind(ipr.link("get", index=index)[0])
                if kind != "bridge":
                    raise ContainerRuntimeError(
                        "CreatePodSandboxError",
                        f"interface {self.bridge_name} exists but is a {kind or 'plain'} link, not a bridge; "
                        f"delete it (ip link del {self.bridge_name}) or use another cluster name",
                    )
            else:
                ipr.link(
                    "add",
                    ifname=self.bridge_name,
                    kind="bridge",
                    address=bridge_mac(self.cluster_name),
                    ifalias=f"{ALIAS_PREFIX}/{self.cluster_name}",
                )
                index = ipr.link_lookup(ifname=self.bridge_name)[0]
            self._cached_bridge_index = index
            addresses = {
                (message.get_attr("IFA_ADDRESS"), message["prefixlen"])
                for message in ipr.get_addr(index=index, family=2)
            }
            for address, prefix_len in addresses - {(self.gateway, self.prefix_len)}:
                # The node's range changed (a cluster made before nodes had slices of the pod CIDR
                # held all of it): the old prefix would keep other nodes' pods on-link.
                ipr.addr("del", index=index, address=address, prefixlen=prefix_len)
            if (self.gateway, self.prefix_len) not in addresses:
                try:
                    ipr.addr("add", index=index, address=self.gateway, prefixlen=self.prefix_len)
                except NetlinkError as error:
                    if error.code != errno.EEXIST:
                        raise
            ipr.link("set", index=index, state="up")

    def remove_bridge(self) -> None:
        """Delete the bridge if present. Pods' veths are not touched: detach them first."""
        self._cached_bridge_index = None
        with IPRoute() as ipr:
            _delete_link(ipr, ipr.link_lookup(ifname=self.bridge_name))

    # --- pods ---------------------------------------------------------------------------------

    def attach(self, sandbox_id: str, pid: int, ip: str, alias: str) -> str:
        """Give the network namespace of `pid` an `eth0` with `ip` on the bridge; returns the host end's name.

        `alias` names the pod for people reading `ip link` (`<namespace>/<pod>`). On any failure
        the host end is deleted again, which also removes the pod end.
        """
        if ipaddress.ip_address(ip) not in self.network:
            raise ContainerRuntimeError("CreatePodSandboxError", f"pod IP {ip} is outside the pod CIDR {self.network}")
        ifalias = f"{self.alias_prefix}{alias}"
        with self._host_netlink() as ipr:
            with self._veth_names:
                name = self._add_veth(ipr, sandbox_id, pid, ifalias, pod_mac(ip))
                self._released.pop(name, None)
            try:
                send_netlink_batch(alias_requests(name, ifalias))
                _in_network_namespace(pid, lambda: self._configure_pod_side(ip))
            except BaseException as error:
                _delete_link(ipr, ipr.link_lookup(ifname=name))
                if isinstance(error, ContainerRuntimeError):
                    raise
                raise ContainerRuntimeError(
                    "CreatePodSandboxError", f"configuring the network of pod {alias} (process {pid}, veth {name}): {error}"
                ) from error
        return name

    def _add_veth(self, ipr: IPRoute, sandbox_id: str, pid: int, ifalias: str, mac: str) -> str:
        """Create the pair, pod end straight in the namespace of `pid`, host end on the bridge and up.

        Tries candidate names in order; a name held by a leftover veth of this very pod (same
        ifalias) is reclaimed, one held by another pod is skipped.
        """
        attempt = 0
        reclaimed: set[str] = set()
        bridge_looked_up_again = False
        while attempt < NAME_ATTEMPTS:
            name = host_veth_name(self.cluster_name, sandbox_id, attempt)
            try:
                send_netlink_batch(host_veth_requests(name, self._bridge_index(ipr), pid, mac))
                return name
            except NetlinkError as error:
                if error.code == errno.EEXIST:
                    existing = ipr.link_lookup(ifname=name)
                    leftover = existing and ipr.link("get", index=existing[0])[0].get_attr("IFLA_IFALIAS") == ifalias
                    if leftover and name not in reclaimed:
                        reclaimed.add(name)
                        _delete_link(ipr, existing)
                    else:
                        attempt += 1
                    continue
                if error.code in (errno.ENODEV, errno.EINVAL) and not bridge_looked_up_again:
                    self._cached_bridge_index = None  # the bridge may have been recreated: look it up again
                    bridge_looked_up_again = True
                    continue
                raise ContainerRuntimeError(
                    "CreatePodSandboxError", f"creating veth {name} for {ifalias} (process {pid}): {os.strerror(error.code)}"
                ) from error
        raise ContainerRuntimeError(
            "CreatePodSandboxError", f"no free host veth name for sandbox {sandbox_id} after {NAME_ATTEMPTS} attempts"
        )

    def _bridge_index(self, ipr: IPRoute) -> int:
        if self._cached_bridge_index is None:
            found = ipr.link_lookup(ifname=self.bridge_name)
            if not found:
                raise ContainerRuntimeError(
                    "CreatePodSandboxError",
                    f"bridge {self.bridge_name} does not exist; the runtime creates it at start (ensure_bridge)",
                )
            self._cached_bridge_index = found[0]
        return self._cached_bridge_index

    def _configure_pod_side(self, ip: str) -> None:
        """Runs inside the pod's network namespace: address on eth0, lo and eth0 up, default route.

        The four requests go out as one batch on a plain netlink socket, encoded by pyroute2's
        message classes: a socket and four round trips through pyroute2's request machinery cost
        about eight times as much CPU, paid once per pod start.
        """
        eth0_index = socket.if_nametoindex(POD_INTERFACE)
        send_netlink_batch(pod_side_requests(eth0_index, ip, self.prefix_len, self.gateway))

    def check(self, host_veth: str, pid: int, ip: str) -> str:
        """What is missing of a pod's network, "" when it is whole: the host veth on the bridge, and
        in the namespace of `pid` an `eth0` that is up and holds `ip`. Reads only."""
        if not host_veth:
            return "the sandbox has no host veth (its creation was cut short)"
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=host_veth)
            if not found:
                return f"host veth {host_veth} is gone"
            bridge = ipr.link_lookup(ifname=self.bridge_name)
            if not bridge or ipr.link("get", index=found[0])[0].get_attr("IFLA_MASTER") != bridge[0]:
                return f"host veth {host_veth} is not a port of bridge {self.bridge_name}"

        def pod_side() -> str:
            with IPRoute() as ipr:
                found = ipr.link_lookup(ifname=POD_INTERFACE)
                if not found:
                    return f"the pod has no {POD_INTERFACE}"
                if not ipr.link("get", index=found[0])[0]["flags"] & IFF_UP:
                    return f"{POD_INTERFACE} is down"
                addresses = {message.get_attr("IFA_ADDRESS") for message in ipr.get_addr(index=found[0], family=2)}
                if ip not in addresses:
                    return f"{POD_INTERFACE} does not hold the pod IP {ip}"
                return ""

        return _in_network_namespace(pid, pod_side)

    def release_with_namespace(self, host_veth_name: str) -> None:
        """The pod's last process is gone: the kernel deletes its veth pair with its network
        namespace, many namespaces in one batch. Deleting the veth here instead costs about 40 ms
        under the kernel's RTNL lock, one pod after the other, which made a node's scale-down wait
        on it. Should anything still hold the namespace, `sweep_released` deletes the veth after
        RELEASED_VETH_GRACE_SECONDS."""
        with self._veth_names:
            self._released[host_veth_name] = time.monotonic() + RELEASED_VETH_GRACE_SECONDS

    def sweep_released(self) -> None:
        """Delete the released veths that outlived their grace period; cheap when none is due."""
        now = time.monotonic()
        with self._veth_names:
            if not any(deadline <= now for deadline in self._released.values()):
                return
            due = [name for name, deadline in self._released.items() if deadline <= now]
            for name in due:
                del self._released[name]
            # Nearly all are gone by now with their namespaces: ask the kernel by name first
            # (one ioctl) before paying for a netlink request.
            left = [index for index in map(_host_link_index, due) if index is not None]
            if left:
                with self._host_netlink() as ipr:
                    _delete_link(ipr, left)

    def detach(self, host_veth_name: str) -> None:
        """Delete a pod's host veth (its peer goes with it). Idempotent."""
        index = _host_link_index(host_veth_name)
        if index is not None:
            with self._host_netlink() as ipr:
                _delete_link(ipr, index)

    def list_veths(self) -> list[str]:
        """Host veth names of this cluster: by ifalias, or by being a port of the cluster's bridge."""
        with IPRoute() as ipr:
            bridge = ipr.link_lookup(ifname=self.bridge_name)
            names = []
            for message in ipr.get_links():
                if _link_kind(message) != "veth":
                    continue
                ifalias = message.get_attr("IFLA_IFALIAS") or ""
                on_bridge = bool(bridge) and message.get_attr("IFLA_MASTER") == bridge[0]
                if ifalias.startswith(self.alias_prefix) or on_bridge:
                    names.append(message.get_attr("IFLA_IFNAME"))
            return sorted(names)


def _host_link_index(name: str) -> int | None:
    """The index of link `name` in the calling thread's network namespace, None when there is none."""
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return None


def _delete_link(ipr: IPRoute, indexes: list[int] | int) -> None:
    """Delete links by index; one already gone (or going with its netns) is fine."""
    for index in [indexes] if isinstance(indexes, int) else indexes:
        try:
            ipr.link("del", index=index)
        except NetlinkError as error:
            if error.code not in (errno.ENODEV, errno.ENOENT):
                raise
