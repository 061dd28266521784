"""The service proxy's control loop against the in-memory Registry, with a recording table."""

from __future__ import annotations

from minikube_py.proxy.nftables import NftablesError
from minikube_py.proxy.proxy import ServiceProxy


class RecordingTable:
    table = "minikube-py-test"

    def __init__(self):
        self.applied = []
        self.state = None
        self.removed = False

    def apply(self, state, changed=None):
        self.applied.append((state.ruleset(), None if changed is None else set(changed)))
        self.state = state
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
    assert table.applied and "service-ips" in table.applied[-1][0].maps
    status = cluster.registry.get("services", "default", "web")["status"]
    assert status == {"loadBalancer": {"ingress": [{"ip": "192.168.1.5", "ipMode": "VIP"}]}}
    proxy.stop()
    assert table.removed


class FailingOnceTable(RecordingTable):
    """Fails the next transaction as the kernel would: nothing written, the state unknown."""

    fail_next = False

    def apply(self, state, changed=None):
        if self.fail_next:
            self.fail_next = False
            self.state = None
            raise NftablesError("nftables transaction on table ip minikube-py-test failed: injected")
        return super().apply(state, changed)


def slice_body(service, *addresses):
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service}-abcde", "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "ports": [{"name": "", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [address], "conditions": {"ready": True}} for address in addresses]}


def dnat_addresses(ruleset):
    return sorted(str(rule[-1]["dnat"]) for chain in ruleset.chains.values() for rule in chain.rules
                  if rule and "dnat" in rule[-1])


def test_only_changed_services_are_rewritten_and_a_failed_transaction_is_retried_whole(cluster):
    table = FailingOnceTable()
    proxy = ServiceProxy(cluster.client, "test", "10.244.0.0/16", "node-1", "192.168.1.5",
                         clock=cluster.clock, informers=cluster.informers, table=table)
    for name in ("web", "api"):
        cluster.create("services", {"metadata": {"name": name}, "spec": {
            "selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}})
    cluster.create("endpointslices", slice_body("web", "10.244.0.5"))
    cluster.settle(proxy)
    assert table.applied[0][1] is None  # the first write is the whole table
    assert "10.244.0.5" in str(dnat_addresses(table.applied[-1][0]))

    cluster.create("endpointslices", slice_body("api", "10.244.0.8"))
    cluster.settle(proxy)
    assert table.applied[-1][1] == {("default", "api")}

    table.fail_next = True
    cluster.registry.replace("endpointslices", "default", "web-abcde", slice_body("web", "10.244.0.5", "10.244.0.6"))
    cluster.settle(proxy)
    written = len(table.applied)
    cluster.clock.advance(1.0)
    cluster.settle(proxy)
    assert len(table.applied) == written + 1
    ruleset, changed = table.applied[-1]
    assert changed is None and "10.244.0.6" in str(dnat_addresses(ruleset))
    proxy.stop()
