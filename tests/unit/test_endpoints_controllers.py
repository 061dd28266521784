"""The EndpointSlice and Endpoints controllers, driven by hand against the in-memory Registry."""

from __future__ import annotations

import pytest

from controllers.endpoints import EndpointsController
from controllers.endpointslice import EndpointSliceController, MAX_ENDPOINTS_PER_SLICE


class Both:
    """Both controllers on one fake cluster, settled together."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.slices = EndpointSliceController(cluster.client, cluster.clock, cluster.informers)
        self.endpoints = EndpointsController(cluster.client, cluster.clock, cluster.informers)

    def settle(self):
        for _ in range(20):
            self.cluster.refresh()
            if self.slices.drain() + self.endpoints.drain() == 0:
                return


@pytest.fixture
def controllers(cluster):
    return Both(cluster)


def make_service(cluster, name="web", **spec):
    body = {"metadata": {"name": name, "labels": {"tier": "front"}},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}], **spec}}
    return cluster.create("services", body)


def make_pod(cluster, name, app="web", ip=None, ready=True, port_name="http", hostname=None, subdomain=None):
    container = {"name": "main", "image": "busybox",
                 "ports": [{"name": port_name, "containerPort": 8080}] if port_name else []}
    spec = {"nodeName": "node-1", "containers": [container]}
    if hostname:
        spec.update(hostname=hostname, subdomain=subdomain)
    cluster.create("pods", {"metadata": {"name": name, "labels": {"app": app}}, "spec": spec})
    if ip is not None:
        set_status(cluster, name, ip, ready)


def set_status(cluster, name, ip, ready, phase="Running"):
    status = {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}],
              "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    current = cluster.registry.get("pods", "default", name)
    cluster.registry.replace_status("pods", "default", name, {**current, "status": status})


def slices_of(cluster, service="web"):
    return [item for item in cluster.list("endpointslices")
            if (item.metadata.labels or {}).get("kubernetes.io/service-name") == service]


def slice_endpoints(cluster, service="web"):
    return {endpoint.addresses[0]: endpoint.conditions for item in slices_of(cluster, service)
            for endpoint in item.endpoints or []}


def test_ready_pods_become_ready_endpoints_with_resolved_ports(cluster, controllers):
    service = make_service(cluster)
    make_pod(cluster, "web-1", ip="10.244.0.5")
    make_pod(cluster, "web-2", ip="10.244.0.6", ready=False)
    make_pod(cluster, "other", app="db", ip="10.244.0.7")
    make_pod(cluster, "web-3")  # no IP yet
    controllers.settle()
    [endpoint_slice] = slices_of(cluster)
    assert endpoint_slice.address_type == "IPv4"
    assert endpoint_slice.metadata.name.startswith("web-")
    assert endpoint_slice.metadata.owner_references[0].uid == service.metadata.uid
    assert endpoint_slice.metadata.labels == {"tier": "front", "kubernetes.io/service-name": "web",
                                              "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    assert [(port.name, port.port, port.protocol) for port in endpoint_slice.ports] == [("http", 8080, "TCP")]
    conditions = slice_endpoints(cluster)
    assert set(conditions) == {"10.244.0.5", "10.244.0.6"}
    assert (conditions["10.244.0.5"].ready, conditions["10.244.0.5"].serving) == (True, True)
    assert (conditions["10.244.0.6"].ready, conditions["10.244.0.6"].serving) == (False, False)
    endpoints = cluster.get("endpoints", "web")
    [subset] = endpoints.subsets
    assert [address.ip for address in subset.addresses] == ["10.244.0.5"]
    assert [address.ip for address in subset.not_ready_addresses] == ["10.244.0.6"]
    assert subset.addresses[0].target_ref.name == "web-1"
    assert [(port.name, port.port) for port in subset.ports] == [("http", 8080)]


def test_a_pod_turning_ready_and_unready_moves_between_the_lists(cluster, controllers):
    make_service(cluster)
    make_pod(cluster, "web-1", ip="10.244.0.5", ready=False)
    controllers.settle()
    assert slice_endpoints(cluster)["10.244.0.5"].ready is False
    set_status(cluster, "web-1", "10.244.0.5", ready=True)
    controllers.settle()
    assert slice_endpoints(cluster)["10.244.0.5"].ready is True
    assert [address.ip for address in cluster.get("endpoints", "web").subsets[0].addresses] == ["10.244.0.5"]
    set_status(cluster, "web-1", "10.244.0.5", ready=True, phase="Failed")
    controllers.settle()
    assert slice_endpoints(cluster) == {}
    assert cluster.get("endpoints", "web").subsets is None


def test_publish_not_ready_addresses_makes_every_pod_ready(cluster, controllers):
    make_service(cluster, publishNotReadyAddresses=True)
    make_pod(cluster, "web-1", ip="10.244.0.5", ready=False)
    controllers.settle()
    assert slice_endpoints(cluster)["10.244.0.5"].ready is True
    assert [address.ip for address in cluster.get("endpoints", "web").subsets[0].addresses] == ["10.244.0.5"]


def test_terminating_pods_stay_in_slices_as_terminating_and_leave_endpoints(cluster, controllers):
    make_service(cluster)
    make_pod(cluster, "web-1", ip="10.244.0.5")
    make_pod(cluster, "web-2", ip="10.244.0.6")
    controllers.settle()
    cluster.registry.delete("pods", "default", "web-1", grace_period_seconds=30)
    controllers.settle()
    conditions = slice_endpoints(cluster)["10.244.0.5"]
    assert (conditions.ready, conditions.serving, conditions.terminating) == (False, True, True)
    assert [address.ip for address in cluster.get("endpoints", "web").subsets[0].addresses] == ["10.244.0.6"]


def test_named_target_ports_resolve_per_pod_and_missing_names_warn(cluster, controllers):
    make_service(cluster, ports=[{"name": "http", "port": 80, "targetPort": "web"}])
    make_pod(cluster, "web-1", ip="10.244.0.5", port_name="web")
    make_pod(cluster, "web-2", ip="10.244.0.6", port_name="other")
    controllers.settle()
    by_ports = {tuple((port.name, port.port) for port in item.ports or []): [e.addresses[0] for e in item.endpoints]
                for item in slices_of(cluster)}
    assert by_ports == {(("http", 8080),): ["10.244.0.5"], (): ["10.244.0.6"]}
    warnings = [event for event in cluster.list("events") if event.reason == "FailedToResolveTargetPort"]
    assert warnings and 'pod web-2 has no container port named "web"' in warnings[0].message


def test_a_service_selecting_nothing_has_one_empty_slice_and_no_subsets(cluster, controllers):
    make_service(cluster)
    controllers.settle()
    [placeholder] = slices_of(cluster)
    assert placeholder.endpoints in (None, []) and placeholder.ports in (None, [])
    assert cluster.get("endpoints", "web").subsets is None


def test_headless_services_get_hostnames_for_pods_in_their_subdomain(cluster, controllers):
    make_service(cluster, clusterIP="None")
    make_pod(cluster, "web-1", ip="10.244.0.5", hostname="web-1", subdomain="web")
    make_pod(cluster, "web-2", ip="10.244.0.6")
    controllers.settle()
    hostnames = {e.addresses[0]: e.hostname for item in slices_of(cluster) for e in item.endpoints}
    assert hostnames == {"10.244.0.5": "web-1", "10.244.0.6": None}
    assert slices_of(cluster)[0].metadata.labels["service.kubernetes.io/headless"] == ""


def test_a_steady_service_keeps_its_slice_and_a_deleted_one_loses_everything(cluster, controllers):
    make_service(cluster)
    make_pod(cluster, "web-1", ip="10.244.0.5")
    controllers.settle()
    [before] = slices_of(cluster)
    make_pod(cluster, "web-2", ip="10.244.0.6")
    controllers.settle()
    [after] = slices_of(cluster)
    assert after.metadata.name == before.metadata.name and len(after.endpoints) == 2
    cluster.registry.delete("services", "default", "web")
    controllers.settle()
    assert slices_of(cluster) == [] and cluster.get("endpoints", "web") is None


def test_a_service_without_selector_keeps_the_users_endpoints(cluster, controllers):
    cluster.create("services", {"metadata": {"name": "external"}, "spec": {"ports": [{"port": 80}]}})
    cluster.create("endpoints", {"metadata": {"name": "external"},
                                 "subsets": [{"addresses": [{"ip": "192.168.1.9"}], "ports": [{"port": 80}]}]})
    controllers.settle()
    assert cluster.get("endpoints", "external").subsets[0].addresses[0].ip == "192.168.1.9"
    assert slices_of(cluster, "external") == []


def test_large_services_are_split_into_slices_of_a_hundred(cluster, controllers):
    make_service(cluster)
    for index in range(MAX_ENDPOINTS_PER_SLICE + 5):
        make_pod(cluster, f"web-{index}", ip=f"10.244.{index // 250}.{index % 250 + 2}")
    controllers.settle()
    sizes = sorted(len(item.endpoints) for item in slices_of(cluster))
    assert sizes == [5, MAX_ENDPOINTS_PER_SLICE]
