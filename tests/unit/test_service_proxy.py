"""The service proxy's control loop against the in-memory Registry, with a recording table."""

from __future__ import annotations

from minikube_py.proxy.proxy import ServiceProxy


class RecordingTable:
    table = "minikube-py-test"

    def __init__(self):
        self.applied = []
        self.removed = False

    def apply(self, ruleset):
        self.applied.append(ruleset)
        return 1

    def remove(self):
        self.removed = True


def test_changes_are_written_and_load_balancers_get_the_node_address(cluster):
    table = RecordingTable()
    proxy = ServiceProxy(cluster.client, "test", "10.244.0.0/16", "node-1", "192.168.1.5",
                         clock=cluster.clock, informers=cluster.informers, table=table)
    cluster.create("services", {"metadata": {"name": "web"}, "spec": {
        "type": "LoadBalancer", "selector": {"app": "web"}, "ports": [{"port": 80}]}})
    cluster.settle(proxy)
    assert table.applied and "service-ips" in table.applied[-1].maps
    status = cluster.registry.get("services", "default", "web")["status"]
    assert status == {"loadBalancer": {"ingress": [{"ip": "192.168.1.5", "ipMode": "VIP"}]}}
    proxy.stop()
    assert table.removed
