"""Routes to the other nodes' pods: each node routes every other node's pod CIDR through that
node's InternalIP, as flannel's host-gw backend does (runtime/node_network.py has the kernel side).

One key (`routes`); any Node event enqueues it; `sync` computes the whole wanted set from the Node
cache (every other node with a `spec.podCIDR` and an InternalIP) and hands it to `apply`, which
makes the kernel's routes match and returns the CIDRs whose gateway is not on a directly connected
network here (the host's own node, whose address is not on the node network: nodes reach its pods
through their default route to the host). Level-triggered: a resync puts back a route someone
deleted.
"""

from __future__ import annotations

import logging
from typing import Callable

from minikube_py.api.core import Node
from minikube_py.client.controller import Controller
from minikube_py.client.informer import Informer
from minikube_py.clock import Clock

log = logging.getLogger(__name__)

ROUTES_KEY = "routes"
RESYNC_SECONDS = 30.0


def internal_ip(node: Node) -> str | None:
    for address in node.status.addresses or []:
        if address.type == "InternalIP":
            return address.address
    return None


def wanted_routes(nodes: list[Node], this_node: str) -> dict[str, str]:
    """pod CIDR -> the node's InternalIP, for every node but this one that has both."""
    wanted = {}
    for node in nodes:
        address = internal_ip(node)
        if node.metadata.name != this_node and node.spec.pod_cidr and address:
            wanted[node.spec.pod_cidr] = address
    return wanted


class NodeRoutes(Controller):
    def __init__(self, client, node_name: str, apply: Callable[[dict[str, str]], list[str]],
                 clock: Clock | None = None, informer: Informer | None = None):
        super().__init__("node-routes", clock)
        self.node_name = node_name
        self.apply = apply
        self._unreachable: list[str] = []
        self.nodes = self.watch(informer or Informer(client, "nodes"), lambda node: self.enqueue(ROUTES_KEY),
                                lambda old, new: self.enqueue(ROUTES_KEY), lambda node: self.enqueue(ROUTES_KEY))

    def run(self) -> None:
        self.enqueue(ROUTES_KEY)
        super().run()

    def sync(self, key: str) -> float | None:
        unreachable = self.apply(wanted_routes(self.nodes.list(), self.node_name))
        if unreachable != self._unreachable:
            self._unreachable = unreachable
            if unreachable:
                log.info("node %s: not routing %s: their nodes' addresses are not on a network of this node "
                         "(the default route carries them)", self.node_name, ", ".join(unreachable))
        return RESYNC_SECONDS
