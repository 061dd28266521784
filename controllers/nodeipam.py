"""Node IPAM: every Node gets a slice of the cluster's pod CIDR as `spec.podCIDR`, as
kube-controller-manager's range allocator does (`--allocate-node-cidrs`, `--cluster-cidr`,
`--node-cidr-mask-size`).

A node agent makes its bridge and hands out pod IPs from its Node's `spec.podCIDR`, so a node that
registers without one waits until this controller gives it the lowest free slice. Slices already
named by Nodes (the daemon's own node registers with the first one) are taken; a Node deleted frees
its slice. The last slice is never given out: on this host it is the node network
(runtime/node_network.py), the link the nodes and the host share. When every slice is taken the
Node gets the event `CIDRNotAvailable` and is tried again later, as Kubernetes does.
"""

from __future__ import annotations

import ipaddress
import logging

from minikube_py.api import errors
from minikube_py.api.core import Node
from minikube_py.client.api import Client
from minikube_py.client.controller import Controller
from minikube_py.client.events import EventRecorder
from minikube_py.client.informer import SharedInformers, shared_informers
from minikube_py.clock import Clock

log = logging.getLogger(__name__)

COMPONENT = "node-ipam-controller"
RETRY_SECONDS = 30.0


def node_slices(cluster_cidr: str, mask_size: int) -> list[str]:
    """The cluster CIDR cut in slices of `/mask_size`, in order; the last is the node network's."""
    return [str(subnet) for subnet in ipaddress.ip_network(cluster_cidr).subnets(new_prefix=mask_size)]


def node_network(cluster_cidr: str, mask_size: int) -> str:
    """The slice the host and the nodes added on it share as their link (never a node's pod CIDR)."""
    return node_slices(cluster_cidr, mask_size)[-1]


class NodeIpamController(Controller[str]):
    def __init__(self, client: Client, cluster_cidr: str, mask_size: int, clock: Clock | None = None,
                 informers: SharedInformers | None = None):
        super().__init__(COMPONENT, clock)
        self.client = client
        self.slices = node_slices(cluster_cidr, mask_size)[:-1]
        self.recorder = EventRecorder(client, COMPONENT, self.clock)
        # Slices given out by this controller, by node: the cache may not show them yet (as
        # Kubernetes' range allocator keeps its own bitmap of allocated CIDRs).
        self.given: dict[str, str] = {}
        informers = informers or shared_informers(client)
        self.nodes = self.watch(informers.informer("nodes"), self._on_node, lambda old, new: self._on_node(new),
                                self._on_node_deleted)

    def _on_node(self, node: Node) -> None:
        if not node.spec.pod_cidr:
            self.enqueue(node.metadata.name or "")

    def _on_node_deleted(self, node: Node) -> None:
        self.given.pop(node.metadata.name or "", None)

    def sync(self, name: str) -> float | None:
        node = self.nodes.get(name)
        if node is None or node.spec.pod_cidr:
            return None
        taken = {other.spec.pod_cidr for other in self.nodes.list() if other.spec.pod_cidr} | {
            cidr for owner, cidr in self.given.items() if owner != name}
        free = next((cidr for cidr in self.slices if cidr not in taken), None)
        if free is None:
            self.recorder.event(node, "Normal", "CIDRNotAvailable",
                                f"Node {name} status is now: CIDRNotAvailable")
            return RETRY_SECONDS
        try:
            # The slice and the Node's resourceVersion in one compare-and-swap: two syncs (or two
            # leaders) can never give one slice twice.
            self.client.patch("nodes", name, {"metadata": {"resourceVersion": node.metadata.resource_version},
                                              "spec": {"podCIDR": free, "podCIDRs": [free]}})
        except errors.Conflict:
            return 0.0  # the cache was behind; look again with the new state
        self.given[name] = free
        log.info("node %s: pod CIDR %s", name, free)
        return None
