"""The node's heartbeat Lease in kube-node-lease: created owned by the Node, renewed every 10 s,
and retried sooner (200 ms doubling to 7 s) while the API refuses."""

from __future__ import annotations

from minikube_py.agent.node_lease import NodeLease
from minikube_py.api import errors
from minikube_py.apiserver.registry import Registry
from minikube_py.client.api import ApiClient
from minikube_py.clock import FakeClock
from minikube_py.store import Store


def cluster():
    clock = FakeClock()
    registry = Registry(Store(":memory:"), clock=clock)
    registry.create("nodes", None, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}})
    return clock, registry, ApiClient.local(registry)


def test_the_first_renewal_creates_the_lease_owned_by_the_node():
    clock, registry, client = cluster()
    assert NodeLease(client, "node-1", clock).renew() == 10.0
    lease = registry.get("leases", "kube-node-lease", "node-1")
    node = registry.get("nodes", None, "node-1")
    assert lease["spec"]["holderIdentity"] == "node-1"
    assert lease["spec"]["leaseDurationSeconds"] == 40
    assert lease["spec"]["renewTime"].endswith("Z") and "." in lease["spec"]["renewTime"]  # MicroTime
    assert lease["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": "node-1", "uid": node["metadata"]["uid"]}]


def test_each_renewal_moves_the_renew_time_forward():
    clock, registry, client = cluster()
    lease = NodeLease(client, "node-1", clock)
    lease.renew()
    first = registry.get("leases", "kube-node-lease", "node-1")["spec"]["renewTime"]
    clock.advance(10)
    lease.renew()
    second = registry.get("leases", "kube-node-lease", "node-1")["spec"]["renewTime"]
    assert second > first


class RefusingClient:
    """Every call fails as an API server that cannot be reached."""

    def __getattr__(self, name):
        def refuse(*args, **kwargs):
            raise errors.ApiError("the server is unavailable")
        return refuse


def test_a_failed_renewal_is_retried_sooner_with_a_doubling_back_off_and_recovers():
    clock, registry, client = cluster()
    lease = NodeLease(RefusingClient(), "node-1", clock)
    delays = [lease.renew() for _ in range(7)]
    assert delays == [0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 7.0]
    lease.client = client
    assert lease.renew() == 10.0
    lease.client = RefusingClient()
    assert lease.renew() == 0.2  # the back-off starts over after a success


def test_a_started_agent_holds_its_lease(tmp_path):
    from tests.unit.agent_harness import NODE, AgentHarness

    harness = AgentHarness(tmp_path)
    harness.agent.register_node()
    harness.agent.lease.renew()
    assert harness.registry.get("leases", "kube-node-lease", NODE)["spec"]["holderIdentity"] == NODE


def test_a_pod_marked_not_ready_while_its_node_was_cut_off_is_ready_again_once_the_agent_syncs(tmp_path):
    """The node lifecycle controller sets Ready=False on a lost node's pods; the agent, back,
    writes what it sees again (kubelet's status manager reconciles with the API's copy)."""
    from tests.unit.agent_harness import AgentHarness

    harness = AgentHarness(tmp_path)
    harness.start()
    harness.create_pod("web", [{"name": "main"}])
    harness.sync()
    assert harness.condition("web", "Ready")["status"] == "True"
    conditions = harness.pod("web")["status"]["conditions"]
    for condition in conditions:
        if condition["type"] == "Ready":
            condition["status"] = "False"
    harness.registry.patch_status("pods", "default", "web", {"status": {"conditions": conditions}})
    harness.sync()
    assert harness.condition("web", "Ready")["status"] == "True"
