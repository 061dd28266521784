"""The Metrics API: cgroup readings (v1 and v2), the agent's rates over a window, the API
server's PodMetrics/NodeMetrics with labels and selectors, and `top`."""

import os

import pytest

from minikube_py.agent.pod import PodRecord, PodTable
from minikube_py.agent.resource_metrics import ResourceMetricsCollector
from minikube_py.agent.status import ContainerRecord
from minikube_py.api import errors
from minikube_py.api.core import Pod
from minikube_py.api.metrics import (
    ContainerMetrics, NodeMetrics, PodMetrics, format_binary_bytes, format_go_duration, format_nanocores)
from minikube_py.api.meta import ObjectMeta
from minikube_py.apiserver.registry import Registry
from minikube_py.clock import FakeClock
from minikube_py.runtime.cgroups import CgroupV1, CgroupV2
from minikube_py.runtime.fake import FakeRuntime
from minikube_py.runtime.types import ContainerState, ResourceUsage, Sandbox
from minikube_py.store import Store
from tests.unit.cli_harness import RUNNING

MIB = 1024 * 1024


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as file:
        file.write(text)


def test_cgroup_v1_usage_is_cpuacct_time_and_usage_minus_total_inactive_file(tmp_path):
    root = str(tmp_path)
    write(f"{root}/cpuacct/mk/pod/cpuacct.usage", "123456789\n")
    write(f"{root}/memory/mk/pod/memory.usage_in_bytes", f"{10 * MIB}\n")
    write(f"{root}/memory/mk/pod/memory.stat", f"inactive_file 4096\ntotal_inactive_file {3 * MIB}\n")
    usage = CgroupV1(root).read_usage("mk/pod")
    assert usage == ResourceUsage(cpu_usage_ns=123456789, memory_working_set_bytes=7 * MIB)


def test_cgroup_v2_usage_is_cpu_stat_usec_and_memory_current_minus_inactive_file(tmp_path):
    root = str(tmp_path)
    write(f"{root}/mk/pod/cpu.stat", "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n")
    write(f"{root}/mk/pod/memory.current", f"{8 * MIB}\n")
    write(f"{root}/mk/pod/memory.stat", f"anon 1000\ninactive_file {9 * MIB}\n")
    usage = CgroupV2(root).read_usage("mk/pod")
    # Never below zero, even when inactive file pages are counted above the usage.
    assert usage == ResourceUsage(cpu_usage_ns=2_500_000, memory_working_set_bytes=0)


def test_a_cgroup_that_is_gone_has_no_usage(tmp_path):
    assert CgroupV1(str(tmp_path)).read_usage("mk/gone") is None
    assert CgroupV2(str(tmp_path)).read_usage("mk/gone") is None


@pytest.mark.parametrize("nanocores, text", [(0, "0"), (2_000_000, "2m"), (1_500_000_000, "1500m"),
                                            (3_000_000_000, "3"), (12_345, "12345n"), (7_000, "7u")])
def test_cpu_rates_print_as_canonical_quantities(nanocores, text):
    assert format_nanocores(nanocores) == text


@pytest.mark.parametrize("count, text", [(0, "0"), (4096, "4Ki"), (64 * MIB, "64Mi"), (1000, "1000")])
def test_memory_prints_in_binary_units(count, text):
    assert format_binary_bytes(count) == text


@pytest.mark.parametrize("seconds, text", [(15, "15s"), (1.5, "1.5s"), (90, "1m30s"), (0.25, "250ms"),
                                          (3600, "1h0m0s"), (0, "0s")])
def test_windows_print_as_go_durations(seconds, text):
    assert format_go_duration(seconds) == text


class Node:
    """One pod with two running containers on a FakeRuntime, and the agent's collector."""

    def __init__(self):
        self.clock = FakeClock()
        self.runtime = FakeRuntime(self.clock)
        self.table = PodTable()
        pod = Pod.model_validate({"metadata": {"name": "web", "namespace": "default", "uid": "u1"},
                                  "spec": {"containers": [{"name": "app", "image": "busybox"},
                                                          {"name": "log", "image": "busybox"}]}})
        record = PodRecord(uid="u1", namespace="default", name="web", pod=pod)
        record.sandbox = Sandbox("u1", "web", "default", 10, 1, "10.244.0.5", "veth", "mk/pod-u1")
        for name in ("app", "log"):
            container = ContainerRecord(name=name, image="busybox")
            container.set_running(ContainerState(id=f"id-{name}", sandbox_id="u1", name=name, attempt=0,
                                                 status="running", started_at=self.clock.now()))
            record.containers[name] = container
        self.table.add(record)
        self.record = record
        self.collector = ResourceMetricsCollector(self.runtime, self.table, "node1", self.clock, resolution=10)

    def usage(self, app_ns, log_ns, node_ns, memory=5 * MIB):
        self.runtime.usage["id-app"] = ResourceUsage(app_ns, memory)
        self.runtime.usage["id-log"] = ResourceUsage(log_ns, 1 * MIB)
        self.runtime.node_resource_usage = ResourceUsage(node_ns, 100 * MIB)


def test_cpu_usage_is_the_rate_between_the_last_two_readings():
    node = Node()
    node.usage(app_ns=1_000_000_000, log_ns=0, node_ns=5_000_000_000)
    node.collector.take_readings()
    node.clock.advance(10)
    node.usage(app_ns=6_000_000_000, log_ns=100_000_000, node_ns=15_000_000_000, memory=6 * MIB)
    node.collector.take_readings()
    node.collector._last_read = node.clock.monotonic()  # read recently: no fresh readings taken

    [pod] = node.collector.pod_metrics()
    assert pod.metadata.name == "web" and pod.metadata.uid == "u1"
    assert pod.window == "10s"
    # 5 s of CPU in 10 s is half a core; 0.1 s in 10 s is 10 millicores.
    assert [(c.name, c.usage) for c in pod.containers] == [
        ("app", {"cpu": "500m", "memory": "6Mi"}), ("log", {"cpu": "10m", "memory": "1Mi"})]
    node_metrics = node.collector.node_metrics()
    assert node_metrics is not None and node_metrics.usage == {"cpu": "1", "memory": "100Mi"}


def test_a_pod_appears_once_each_of_its_containers_has_two_readings():
    node = Node()
    node.usage(app_ns=0, log_ns=0, node_ns=0)
    node.collector.take_readings()
    node.collector._last_read = node.clock.monotonic()
    assert node.collector.pod_metrics() == []  # one reading only: no rate yet
    del node.runtime.usage["id-log"]  # the log container's cgroup cannot be read
    node.clock.advance(10)
    node.collector.take_readings()
    assert node.collector.pod_metrics() == []


def test_a_read_after_idleness_takes_two_readings_apart_and_answers_at_once():
    node = Node()
    node.usage(app_ns=0, log_ns=0, node_ns=0)
    original = node.runtime.container_usage

    def growing(sandbox, container_id):
        usage = original(sandbox, container_id)
        return ResourceUsage((usage.cpu_usage_ns or 0) + int(node.clock.monotonic() * 1e9) % 10**12,
                             usage.memory_working_set_bytes)
    node.runtime.container_usage = growing
    [pod] = node.collector.pod_metrics()
    assert pod.window == "500ms"
    assert pod.containers[0].usage["cpu"] == "1"  # the counter grew by the clock: one core


def registry_with_pods():
    registry = Registry(Store(":memory:"), FakeClock())
    for name, app in (("web-1", "web"), ("web-2", "web"), ("db", "db")):
        registry.create("pods", "default", {"metadata": {"name": name, "labels": {"app": app}},
                                            "spec": {"containers": [{"name": "c0", "image": "busybox"}]}})
    registry.create("nodes", None, {"metadata": {"name": "node1", "labels": {"zone": "a"}}})
    return registry


class StaticSource:
    def __init__(self, registry, names, fail=False):
        self.uids = {name: registry.get("pods", "default", name)["metadata"]["uid"] for name in names}
        self.fail = fail

    def node_metrics(self):
        if self.fail:
            raise OSError("node unreachable")
        return NodeMetrics(metadata=ObjectMeta(name="node1"), timestamp="2027-01-15T08:00:00Z", window="15s",
                           usage={"cpu": "250m", "memory": "100Mi"})

    def pod_metrics(self):
        if self.fail:
            raise OSError("node unreachable")
        return [PodMetrics(metadata=ObjectMeta(name=name, namespace="default", uid=uid),
                           timestamp="2027-01-15T08:00:00Z", window="15s",
                           containers=[ContainerMetrics(name="c0", usage={"cpu": "5m", "memory": "2Mi"})])
                for name, uid in self.uids.items()]


def test_pod_metrics_carry_the_pods_labels_and_answer_label_and_field_selectors():
    registry = registry_with_pods()
    registry.resource_metrics.add_node("node1", StaticSource(registry, ["web-1", "web-2", "db"]))
    listing = registry.list_metrics("pods", "default", "app=web")
    assert listing["kind"] == "PodMetricsList" and listing["apiVersion"] == "metrics.k8s.io/v1beta1"
    assert sorted(item["metadata"]["name"] for item in listing["items"]) == ["web-1", "web-2"]
    item = listing["items"][0]
    assert item["metadata"]["labels"] == {"app": "web"} and item["window"] == "15s"
    assert item["containers"] == [{"name": "c0", "usage": {"cpu": "5m", "memory": "2Mi"}}]
    by_field = registry.list_metrics("pods", None, None, "metadata.name=db")
    assert [item["metadata"]["name"] for item in by_field["items"]] == ["db"]
    assert registry.get_metrics("pods", "default", "db")["metadata"]["labels"] == {"app": "db"}


def test_a_pod_without_metrics_and_a_missing_pod_are_not_found():
    registry = registry_with_pods()
    registry.resource_metrics.add_node("node1", StaticSource(registry, ["web-1"]))
    with pytest.raises(errors.NotFound, match='podmetrics.metrics.k8s.io "default/db" not found'):
        registry.get_metrics("pods", "default", "db")
    with pytest.raises(errors.NotFound):
        registry.get_metrics("pods", "default", "nothing")


def test_node_metrics_take_the_nodes_labels_and_a_failing_node_is_left_out():
    registry = registry_with_pods()
    registry.resource_metrics.add_node("node1", StaticSource(registry, []))
    [item] = registry.list_metrics("nodes", None, "zone=a")["items"]
    assert item["kind"] == "NodeMetrics" and item["usage"] == {"cpu": "250m", "memory": "100Mi"}
    assert item["metadata"]["labels"] == {"zone": "a"}
    assert registry.list_metrics("nodes", None, "zone=b")["items"] == []
    registry.resource_metrics.add_node("node1", StaticSource(registry, [], fail=True))
    assert registry.list_metrics("nodes")["items"] == []
    assert registry.list_metrics("pods")["items"] == []


def test_the_metrics_api_over_http_with_discovery_and_top(live):
    live.node("node1")
    live.registry.patch_status("nodes", None, "node1", {"status": {"allocatable": {"cpu": "2", "memory": "1000Mi"}}})
    live.pod("web-1", {"app": "web"}, status=RUNNING)
    live.pod("web-2", {"app": "web"}, status=RUNNING)
    live.registry.resource_metrics.add_node("node1", StaticSource(live.registry, ["web-1", "web-2"]))
    result = live.run("top", "pods", "-l", "app=web")
    assert result.code == 0, result.err
    assert result.out.splitlines() == ["NAME    CPU(cores)   MEMORY(bytes)",
                                       "web-1   5m           2Mi",
                                       "web-2   5m           2Mi"]
    result = live.run("top", "nodes")
    assert result.out.splitlines() == ["NAME    CPU(cores)   CPU(%)   MEMORY(bytes)   MEMORY(%)",
                                       "node1   250m         12%      100Mi           10%"]
    result = live.run("top", "pods", "web-1", "--containers")
    assert result.out.splitlines()[1].split() == ["web-1", "c0", "5m", "2Mi"]


def test_discovery_lists_the_metrics_group_and_its_resources(live):
    from minikube_py.client.transport import HttpTransport

    transport = HttpTransport(os.path.join(live.home, "api.sock"))
    groups = transport._request("GET", "/apis")["groups"]
    assert {"name": "metrics.k8s.io", "versions": [{"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}],
            "preferredVersion": {"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}} in groups
    resources = transport._request("GET", "/apis/metrics.k8s.io/v1beta1")["resources"]
    assert [(r["name"], r["kind"], r["verbs"]) for r in resources] == [
        ("nodes", "NodeMetrics", ["get", "list"]), ("pods", "PodMetrics", ["get", "list"])]
    with pytest.raises(errors.ApiError) as refused:
        transport._request("DELETE", "/apis/metrics.k8s.io/v1beta1/nodes/node1")
    assert refused.value.code == 405
    with pytest.raises(errors.NotFound):
        transport._request("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/default/nodes")


class AgentMetrics:
    """What a node agent answers for its own figures (NodeAgent.node_metrics / pod_metrics)."""

    node_name = "node2"

    def __init__(self, source):
        self.source = source

    def node_metrics(self):
        return self.source.node_metrics().model_copy(update={"metadata": ObjectMeta(name="node2")})

    def pod_metrics(self):
        return self.source.pod_metrics()


def test_other_nodes_metrics_come_from_their_kubelet_port(tmp_path):
    """A node without an agent in the API server's process is asked over its kubelet server, as
    metrics-server scrapes every kubelet; a node whose kubelet does not answer is left out, and a
    NotReady one is not asked."""
    from minikube_py.agent.remote_proxy import RemoteNodeMetrics
    from minikube_py.apiserver.server import ApiHttpServer
    from minikube_py.client.transport import HttpTransport
    from minikube_py.clock import FakeClock
    from minikube_py.nodes import KubeletPods

    registry = registry_with_pods()
    registry.create("nodes", None, {"metadata": {"name": "node2", "labels": {"zone": "b"}}})
    registry.create("nodes", None, {"metadata": {"name": "node3"}})
    registry.create("nodes", None, {"metadata": {"name": "node4"}})  # NotReady: not even asked
    registry.patch_status("nodes", None, "node4", {"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}})
    kubelet = ApiHttpServer(KubeletPods(AgentMetrics(StaticSource(registry, ["web-2"])), FakeClock()),
                            str(tmp_path / "kubelet.sock"))
    kubelet.start()
    try:
        asked = []

        def remote_source(node):
            asked.append(node)
            socket_path = str(tmp_path / f"{'kubelet' if node == 'node2' else 'nothing'}.sock")
            return RemoteNodeMetrics(HttpTransport(socket_path, timeout=5))

        registry.resource_metrics.add_node("node1", StaticSource(registry, ["web-1"]))
        registry.resource_metrics.remote_source = remote_source
        pods = registry.list_metrics("pods", "default")["items"]
        assert sorted(item["metadata"]["name"] for item in pods) == ["web-1", "web-2"]
        assert sorted(asked) == ["node2", "node3"]  # node1's agent is in the process; node4 is down
        web2 = registry.get_metrics("pods", "default", "web-2")
        assert web2["metadata"]["labels"] == {"app": "web"} and web2["containers"][0]["usage"]["cpu"] == "5m"
        nodes = registry.list_metrics("nodes")["items"]
        assert sorted(item["metadata"]["name"] for item in nodes) == ["node1", "node2"]
        assert registry.get_metrics("nodes", None, "node2")["metadata"]["labels"]["zone"] == "b"
        with pytest.raises(errors.NotFound):
            registry.get_metrics("nodes", None, "node3")
    finally:
        kubelet.stop()


def test_the_kubelet_port_answers_only_its_own_nodes_figures():
    from minikube_py.clock import FakeClock
    from minikube_py.nodes import KubeletPods

    registry = registry_with_pods()
    kubelet = KubeletPods(AgentMetrics(StaticSource(registry, ["web-1", "db"])), FakeClock())
    assert [item["metadata"]["name"] for item in kubelet.list_metrics("nodes")["items"]] == ["node2"]
    listing = kubelet.list_metrics("pods", "default")
    assert listing["kind"] == "PodMetricsList" and len(listing["items"]) == 2
    assert kubelet.list_metrics("pods", "other")["items"] == []
