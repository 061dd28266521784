"""Nodes beyond the daemon's own, without root: how the pod CIDR is cut into node slices, the node
IPAM controller handing them out, the routes each node wants, and the checks `join` makes."""

from __future__ import annotations

import pytest

from controllers.nodeipam import NodeIpamController, node_network, node_slices
from minikube_py.agent.routes import wanted_routes
from minikube_py.api.core import Node
from minikube_py.client.leaderelection import micro_time
from minikube_py.daemon import ClusterConfig, ConfigError, node_cidr_mask_size, node_pod_cidr, validate_config
from minikube_py.nodes import NodeError, check_identity, cluster_name_of


@pytest.mark.parametrize("pod_cidr, max_pods, mask, own", [
    ("10.244.0.0/16", 110, 24, "10.244.0.0/24"),   # Kubernetes' defaults: a /24 per node
    ("10.244.0.0/16", 300, 22, "10.244.0.0/22"),   # twice max pods: 602 addresses
    ("10.200.7.0/24", 110, None, "10.200.7.0/24"),  # too small to share: the daemon's node's alone
    ("10.250.0.0/22", 1000, None, "10.250.0.0/22"),  # pods1000's cluster stays one node
])
def test_each_node_gets_a_slice_twice_its_max_pods_when_the_pod_cidr_has_room(pod_cidr, max_pods, mask, own):
    config = ClusterConfig(pod_cidr=pod_cidr, max_pods=max_pods)
    assert node_cidr_mask_size(config) == mask
    assert node_pod_cidr(config) == own


def test_a_mask_size_too_small_for_max_pods_or_the_cidr_is_refused():
    with pytest.raises(ConfigError, match="fewer than --max-pods 110"):
        validate_config(ClusterConfig(name="t", pod_cidr="10.244.0.0/16", node_cidr_mask_size=26))
    with pytest.raises(ConfigError, match="must be between 18"):
        validate_config(ClusterConfig(name="t", pod_cidr="10.244.0.0/16", node_cidr_mask_size=17))


def test_the_last_slice_is_the_node_network_never_a_nodes_range():
    assert node_slices("10.250.0.0/22", 24)[-1] == node_network("10.250.0.0/22", 24) == "10.250.3.0/24"


def test_the_node_ipam_controller_gives_each_node_the_lowest_free_slice_once(cluster):
    controller = NodeIpamController(cluster.client, "10.250.0.0/22", 24, cluster.clock, cluster.informers)
    cluster.create("nodes", {"metadata": {"name": "node-1"}, "spec": {"podCIDR": "10.250.0.0/24"}}, namespace=None)
    cluster.create("nodes", {"metadata": {"name": "node-2"}}, namespace=None)
    cluster.create("nodes", {"metadata": {"name": "node-3"}}, namespace=None)
    cluster.settle(controller)
    cidrs = {name: cluster.get("nodes", name, None).spec.pod_cidr for name in ("node-1", "node-2", "node-3")}
    assert cidrs == {"node-1": "10.250.0.0/24", "node-2": "10.250.1.0/24", "node-3": "10.250.2.0/24"}
    assert cluster.get("nodes", "node-2", None).spec.pod_cidrs == ["10.250.1.0/24"]
    cluster.create("nodes", {"metadata": {"name": "node-4"}}, namespace=None)  # 10.250.3.0/24 is the node network
    cluster.settle(controller)
    assert cluster.get("nodes", "node-4", None).spec.pod_cidr is None
    events = cluster.registry.list("events", None)["items"]
    assert any(e["reason"] == "CIDRNotAvailable" and e["involvedObject"]["name"] == "node-4" for e in events)
    cluster.registry.delete("nodes", None, "node-3")
    cluster.clock.advance(30)
    cluster.settle(controller)
    controller.queue.tick()
    cluster.settle(controller)
    assert cluster.get("nodes", "node-4", None).spec.pod_cidr == "10.250.2.0/24"


def node(name: str, pod_cidr: str | None, address: str | None) -> Node:
    return Node.model_validate({"metadata": {"name": name}, "spec": {"podCIDR": pod_cidr} if pod_cidr else {},
                                "status": {"addresses": [{"type": "InternalIP", "address": address}] if address else []}})


def test_a_node_routes_every_other_nodes_pod_cidr_through_its_address():
    nodes = [node("node-1", "10.250.0.0/24", "192.0.2.2"), node("node-2", "10.250.1.0/24", "10.250.255.2"),
             node("node-3", "10.250.2.0/24", "10.250.255.3"), node("new", None, "10.250.255.4"),
             node("silent", "10.250.4.0/24", None)]
    assert wanted_routes(nodes, "node-2") == {"10.250.0.0/24": "192.0.2.2", "10.250.2.0/24": "10.250.255.3"}


def test_join_takes_the_cluster_name_from_its_ca(tmp_path):
    from minikube_py.apiserver import certificates

    paths = certificates.ensure_credentials(str(tmp_path), "nodedev", ())
    assert cluster_name_of(paths.ca_certificate) == "nodedev"


class Leases:
    def __init__(self, renew_time: str | None):
        self.renew_time = renew_time

    def get(self, resource, name, namespace=None):
        from minikube_py.api import errors
        from minikube_py.api.coordination import Lease

        if self.renew_time is None:
            raise errors.NotFound("not found")
        return Lease.model_validate({"metadata": {"name": name, "namespace": namespace},
                                     "spec": {"holderIdentity": name, "renewTime": self.renew_time}})


def test_a_second_agent_for_a_node_whose_lease_is_fresh_is_refused():
    now = 1_800_000_000.0
    with pytest.raises(NodeError, match='a node named "node-2" is already running'):
        check_identity(Leases(micro_time(now - 5)), "node-2", 40, now)
    check_identity(Leases(micro_time(now - 60)), "node-2", 40, now)  # its agent is gone: it may come back
    check_identity(Leases(None), "node-2", 40, now)
