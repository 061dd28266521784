"""Service, Endpoints, EndpointSlice, ConfigMap, Secret, ServiceAccount: defaults, Kubernetes' messages,
ClusterIP and node port allocation through the Registry, and kubectl's columns."""

from __future__ import annotations

import base64

import pytest

from minikube_py import api
from minikube_py.api import networking_rows, printers
from minikube_py.api.errors import Invalid

NOW = 1_800_000_000.0


def service(name="web", **spec):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}], **spec}}


def problems_of(body) -> list[str]:
    with pytest.raises(Invalid) as caught:
        api.parse_object(body)
    return [f"{path}: {message}" for path, message in caught.value.causes] if hasattr(caught.value, "causes") \
        else [str(caught.value)]


def invalid_text(body) -> str:
    with pytest.raises(Invalid) as caught:
        api.parse_object(body)
    return str(caught.value)


# -- Service defaults and validation ------------------------------------------------------------


def test_service_defaults_are_kubernetes_ones():
    spec = api.parse_object(service(type="NodePort", sessionAffinity="ClientIP")).to_dict()["spec"]
    assert spec["ports"] == [{"protocol": "TCP", "port": 80, "targetPort": 80}]
    assert spec["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    assert spec["externalTrafficPolicy"] == "Cluster"
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert (spec["ipFamilies"], spec["ipFamilyPolicy"]) == (["IPv4"], "SingleStack")
    cluster_ip = api.parse_object(service())
    assert cluster_ip.spec.external_traffic_policy is None and cluster_ip.metadata.namespace == "default"


def test_service_name_must_be_a_dns1035_label():
    assert 'metadata.name: Invalid value: "1web": a DNS-1035 label must consist of lower case alphanumeric' \
        in invalid_text(service("1web"))


@pytest.mark.parametrize("spec, message", [
    ({"ports": None}, "spec.ports: Required value"),
    ({"type": "Cluster"}, 'spec.type: Unsupported value: "Cluster": supported values: '
                          '"ClusterIP", "ExternalName", "LoadBalancer", "NodePort"'),
    ({"ports": [{"port": 80}, {"port": 81}]}, "spec.ports[0].name: Required value"),
    ({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]},
     'spec.ports[1]: Duplicate value: {"port":80,"protocol":"TCP"}'),
    ({"ports": [{"port": 70000}]}, "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive"),
    ({"ports": [{"port": 80, "nodePort": 30080}]},
     "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"),
    ({"clusterIP": "None", "type": "NodePort"},
     "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"),
    ({"clusterIP": "10.96.0.300"},
     'spec.clusterIPs[0]: Invalid value: "10.96.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'),
    ({"externalTrafficPolicy": "Local"},
     "spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set when `type` is 'NodePort' or 'LoadBalancer'"),
    ({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}},
     "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: must be greater than 0 and less than 86400"),
    ({"type": "ExternalName"}, "spec.externalName: Required value"),
    ({"ports": [{"port": 80, "targetPort": "Http"}]},
     'spec.ports[0].targetPort: Invalid value: "Http": must contain only alpha-numeric characters'),
    ({"ipFamilies": ["IPv6"]}, 'spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster'),
])
def test_bad_services_get_kubernetes_messages(spec, message):
    assert message in invalid_text(service(**spec))


def test_headless_service_needs_no_ports():
    assert api.parse_object(service(clusterIP="None", ports=None)).is_headless


# -- ConfigMap and Secret --------------------------------------------------------------------------


def config_map(**fields):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, **fields}


def secret(**fields):
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "credentials"}, **fields}


def test_config_map_keys_must_be_file_names_and_not_in_both_maps():
    text = invalid_text(config_map(data={"a b": "1", "..x": "2", "same": "3"}, binaryData={"same": "eA=="}))
    assert "data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters" in text
    assert "data[..x]: Invalid value: \"..x\": must not start with '..'" in text
    assert 'data[same]: Invalid value: "same": duplicate of key present in binaryData' in text


def test_config_map_over_one_mebibyte_is_too_long():
    assert 'ConfigMap "settings" is invalid: Too long: must have at most 1048576 bytes' == \
        invalid_text(config_map(data={"big": "x" * (1024 * 1024 + 1)}))


def test_secret_string_data_is_folded_into_data_and_not_stored():
    parsed = api.parse_object(secret(data={"a": base64.b64encode(b"old").decode()},
                                     stringData={"a": "new", "b": "two"})).to_dict()
    assert parsed["type"] == "Opaque" and "stringData" not in parsed
    assert {key: base64.b64decode(value) for key, value in parsed["data"].items()} == {"a": b"new", "b": b"two"}


@pytest.mark.parametrize("kind, data, message", [
    ("kubernetes.io/tls", {}, "data[tls.crt]: Required value"),
    ("kubernetes.io/tls", {"tls.crt": "eA=="}, "data[tls.key]: Required value"),
    ("kubernetes.io/dockerconfigjson", {}, "data[.dockerconfigjson]: Required value"),
    ("kubernetes.io/dockerconfigjson", {".dockerconfigjson": base64.b64encode(b"{nope").decode()},
     'data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": must be valid JSON'),
    ("kubernetes.io/basic-auth", {}, "data[username]: Required value"),
])
def test_typed_secrets_need_their_keys(kind, data, message):
    assert message in invalid_text(secret(type=kind, data=data))


def test_typed_secrets_with_their_keys_are_accepted():
    tls = {"tls.crt": "Y2VydA==", "tls.key": "a2V5"}
    assert api.parse_object(secret(type="kubernetes.io/tls", data=tls)).type == "kubernetes.io/tls"
    config = base64.b64encode(b'{"auths": {}}').decode()
    api.parse_object(secret(type="kubernetes.io/dockerconfigjson", data={".dockerconfigjson": config}))
    api.parse_object(secret(type="kubernetes.io/basic-auth", stringData={"username": "admin"}))


def test_secret_values_must_be_base64_and_are_not_echoed():
    text = invalid_text(secret(data={"password": "hunter2!"}))
    assert 'data[password]: Invalid value: "<secret contents redacted>": must be base64-encoded' in text
    assert "hunter2" not in text


def test_secret_over_one_mebibyte_is_refused():
    big = base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()
    assert "data: Too long: must have at most 1048576 bytes" in invalid_text(secret(data={"big": big}))


# -- through the Registry: allocation and immutability ----------------------------------------------


def test_services_get_cluster_ips_and_node_ports_that_are_given_back(cluster):
    registry = cluster.registry
    first = registry.create("services", "default", service("a"))
    second = registry.create("services", "default", service("b", type="NodePort"))
    assert first["spec"]["clusterIP"] == "10.96.0.2" and first["spec"]["clusterIPs"] == ["10.96.0.2"]
    assert second["spec"]["clusterIP"] == "10.96.0.3"
    assert 30000 <= second["spec"]["ports"][0]["nodePort"] <= 32767
    registry.delete("services", "default", "a")
    again = registry.create("services", "default", service("c"))
    assert again["spec"]["clusterIP"] == "10.96.0.2"


def test_requested_addresses_must_be_free_and_in_range(cluster):
    registry = cluster.registry
    registry.create("services", "default", service("a", clusterIP="10.96.0.50"))
    with pytest.raises(Invalid) as taken:
        registry.create("services", "default", service("b", clusterIP="10.96.0.50"))
    assert 'spec.clusterIPs: Invalid value: ["10.96.0.50"]: failed to allocate IP 10.96.0.50: provided IP is ' \
           "already allocated" in str(taken.value)
    with pytest.raises(Invalid) as outside:
        registry.create("services", "default", service("c", clusterIP="10.0.0.5"))
    assert "is not in the valid range. The range of valid IPs is 10.96.0.0/12" in str(outside.value)
    with pytest.raises(Invalid) as port:
        registry.create("services", "default", service("d", type="NodePort", ports=[{"port": 80, "nodePort": 80}]))
    assert "spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. " \
           "The range of valid ports is 30000-32767" in str(port.value)
    held = registry.create("services", "default", service("e", type="NodePort", ports=[{"port": 80, "nodePort": 30080}]))
    # Nothing the refused creates took stays held: the first dynamic address is still free.
    assert held["spec"]["clusterIP"] == "10.96.0.2"
    with pytest.raises(Invalid) as port_taken:
        registry.create("services", "default", service("f", type="NodePort", ports=[{"port": 80, "nodePort": 30080}]))
    assert "provided port is already allocated" in str(port_taken.value)


def test_an_update_without_the_allocated_values_keeps_them_and_the_cluster_ip_cannot_change(cluster):
    registry = cluster.registry
    created = registry.create("services", "default", service("web", type="NodePort"))
    node_port = created["spec"]["ports"][0]["nodePort"]
    replaced = registry.replace("services", "default", "web", service("web", type="NodePort"))
    assert replaced["spec"]["clusterIP"] == created["spec"]["clusterIP"]
    assert replaced["spec"]["ports"][0]["nodePort"] == node_port
    with pytest.raises(Invalid) as changed:
        registry.replace("services", "default", "web", service("web", type="NodePort", clusterIP="10.96.0.99"))
    assert 'spec.clusterIP: Invalid value: "10.96.0.99": field is immutable' in str(changed.value)
    to_cluster_ip = registry.replace("services", "default", "web", service("web"))
    assert "nodePort" not in to_cluster_ip["spec"]["ports"][0]
    # The port went back to the pool: another Service may ask for it.
    registry.create("services", "default", service("other", type="NodePort",
                                                   ports=[{"port": 80, "nodePort": node_port}]))


def test_immutable_config_maps_and_secrets_refuse_data_changes(cluster):
    registry = cluster.registry
    registry.create("configmaps", "default", config_map(data={"a": "1"}, immutable=True))
    with pytest.raises(Invalid) as caught:
        registry.replace("configmaps", "default", "settings", config_map(data={"a": "2"}, immutable=True))
    assert "data: Forbidden: field is immutable when `immutable` is set" in str(caught.value)
    registry.create("secrets", "default", secret(stringData={"a": "1"}))
    with pytest.raises(Invalid) as retyped:
        registry.replace("secrets", "default", "credentials", secret(type="kubernetes.io/basic-auth",
                                                                      stringData={"username": "x"}))
    assert 'type: Invalid value: "kubernetes.io/basic-auth": field is immutable' in str(retyped.value)


def test_endpoint_slices_are_served_in_their_group(cluster):
    body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "web-abc"},
            "addressType": "IPv4", "endpoints": [{"addresses": ["10.244.0.5"]}], "ports": [{"port": 8080}]}
    created = cluster.registry.create("endpointslices", "default", body)
    assert api.resource_for("endpointslices.discovery.k8s.io").plural == "endpointslices"
    assert created["endpoints"][0]["addresses"] == ["10.244.0.5"]
    with pytest.raises(Invalid) as caught:
        cluster.registry.create("endpointslices", "default", {**body, "metadata": {"name": "bad"},
                                                              "endpoints": [{"addresses": ["web"]}]})
    assert 'endpoints[0].addresses[0]: Invalid value: "web": must be a valid IPv4 address' in str(caught.value)


# -- kubectl's columns ----------------------------------------------------------------------------------


def test_service_rows_show_type_addresses_and_ports():
    created = "2027-01-15T08:00:00Z"
    node_port = {"metadata": {"name": "web", "creationTimestamp": created},
                 "spec": {"type": "NodePort", "clusterIP": "10.96.0.7", "clusterIPs": ["10.96.0.7"],
                          "selector": {"app": "web"},
                          "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"},
                                    {"port": 53, "protocol": "UDP"}]}}
    row = networking_rows.service_row(node_port, NOW)
    assert row[:5] == ["web", "NodePort", "10.96.0.7", "<none>", "80:30080/TCP,53/UDP"]
    assert row[6] == "app=web"
    balancer = {**node_port, "spec": {**node_port["spec"], "type": "LoadBalancer"}}
    assert networking_rows.service_row(balancer, NOW)[3] == "<pending>"
    served = {**balancer, "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.5"}]}}}
    assert networking_rows.service_row(served, NOW)[3] == "192.168.1.5"
    headless = {"metadata": {"name": "db"}, "spec": {"clusterIP": "None", "clusterIPs": ["None"]}}
    assert networking_rows.service_row(headless, NOW)[1:5] == ["ClusterIP", "None", "<none>", "<none>"]


def test_endpoints_rows_show_three_then_how_many_more():
    endpoints = {"metadata": {"name": "web"}, "subsets": [
        {"addresses": [{"ip": f"10.244.0.{n}"} for n in range(2, 7)], "ports": [{"port": 8080}]}]}
    assert networking_rows.endpoints_row(endpoints, NOW)[1] == \
        "10.244.0.2:8080,10.244.0.3:8080,10.244.0.4:8080 + 2 more..."
    assert networking_rows.endpoints_row({"metadata": {"name": "web"}}, NOW)[1] == "<none>"
    # Port by port, as kubectl; a subset with only unready addresses is an empty cell.
    two_ports = {"metadata": {"name": "web"}, "subsets": [
        {"addresses": [{"ip": "10.244.0.2"}, {"ip": "10.244.0.3"}], "ports": [{"name": "a", "port": 80},
                                                                          {"name": "b", "port": 443}]}]}
    assert networking_rows.endpoints_row(two_ports, NOW)[1] == \
        "10.244.0.2:80,10.244.0.3:80,10.244.0.2:443 + 1 more..."
    unready = {"metadata": {"name": "web"}, "subsets": [{"notReadyAddresses": [{"ip": "10.244.0.2"}]}]}
    assert networking_rows.endpoints_row(unready, NOW)[1] == ""
    endpoint_slice = {"metadata": {"name": "web-x"}, "addressType": "IPv4", "ports": [{"port": 8080}],
                      "endpoints": [{"addresses": ["10.244.0.2"]}]}
    assert networking_rows.endpoint_slice_row(endpoint_slice, NOW)[:4] == ["web-x", "IPv4", "8080", "10.244.0.2"]
    assert networking_rows.endpoint_slice_row({"metadata": {"name": "e"}, "addressType": "IPv4"}, NOW)[2:4] == \
        ["<unset>", "<unset>"]


def test_config_rows_count_keys():
    assert networking_rows.config_map_row({"metadata": {"name": "c"}, "data": {"a": "1"},
                                           "binaryData": {"b": "eA=="}}, NOW)[:2] == ["c", 2]
    assert networking_rows.secret_row({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "eA=="}},
                                      NOW)[:3] == ["s", "Opaque", 1]
    assert [column.name for column in printers.PRINTERS["services"].columns] == \
        ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]


def test_the_kubernetes_service_takes_the_first_address_and_points_at_the_api(cluster):
    from minikube_py.apiserver.kubernetes_service import ensure_kubernetes_service

    service = ensure_kubernetes_service(cluster.registry, "192.168.1.5", 6443)
    assert service["spec"]["clusterIP"] == "10.96.0.1"
    assert service["spec"]["ports"] == [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": 6443}]
    again = ensure_kubernetes_service(cluster.registry, "192.168.1.6", 6444)
    assert again["spec"]["clusterIP"] == "10.96.0.1"
    endpoints = cluster.registry.get("endpoints", "default", "kubernetes")
    assert endpoints["subsets"][0]["addresses"] == [{"ip": "192.168.1.6"}]
    assert cluster.registry.get("endpointslices", "default", "kubernetes")["endpoints"][0]["addresses"] == \
        ["192.168.1.6"]


# -- a pod's dnsConfig -------------------------------------------------------------------------------


def pod_with_dns(**spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "resolver"},
            "spec": {"containers": [{"name": "main", "image": "busybox"}], **spec}}


@pytest.mark.parametrize("spec, message", [
    ({"dnsPolicy": "None"}, "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"),
    ({"dnsPolicy": "None", "dnsConfig": {"searches": ["corp"]}},
     "spec.dnsConfig.nameservers: Required value: must provide at least one DNS nameserver when `dnsPolicy` is None"),
    ({"dnsConfig": {"nameservers": ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]}},
     'spec.dnsConfig.nameservers: Invalid value: ["10.0.0.1","10.0.0.2","10.0.0.3","10.0.0.4"]: '
     "must not have more than 3 nameservers"),
    ({"dnsConfig": {"nameservers": ["dns.example"]}},
     'spec.dnsConfig.nameservers[0]: Invalid value: "dns.example": must be a valid IP address'),
    ({"dnsConfig": {"searches": [f"d{index}.example" for index in range(33)]}},
     "must not have more than 32 search paths"),
    ({"dnsConfig": {"searches": ["a" * 60 + f".d{index}" for index in range(32)]}},
     "must not have more than 2048 characters (including spaces) in the search list"),
    ({"dnsConfig": {"searches": ["Not_A_Domain"]}},
     'spec.dnsConfig.searches[0]: Invalid value: "Not_A_Domain": a lowercase RFC 1123 subdomain'),
    ({"dnsConfig": {"options": [{"value": "2"}]}},
     "spec.dnsConfig.options[0]: Required value: Option.Name must not be empty"),
])
def test_dns_config_gets_kubernetes_limits_and_messages(spec, message):
    assert message in invalid_text(pod_with_dns(**spec))


def test_dns_config_within_the_limits_is_accepted():
    pod = api.parse_object(pod_with_dns(dnsPolicy="None", dnsConfig={
        "nameservers": ["10.0.0.1", "10.0.0.2", "10.0.0.3"], "searches": ["corp.example.", "."],
        "options": [{"name": "ndots", "value": "2"}]}))
    assert pod.spec.dns_config.nameservers == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert pod.spec.enable_service_links is True


def test_node_ports_come_from_the_configured_range_from_a_random_start():
    from minikube_py.apiserver.registry import Registry
    from minikube_py.store import Store

    registry = Registry(Store(":memory:"), node_ports=(31000, 31009))
    ports = [registry.create("services", "default", service(f"s{index}", type="NodePort"))["spec"]["ports"][0]["nodePort"]
             for index in range(10)]
    assert sorted(ports) == list(range(31000, 31010))
    with pytest.raises(Invalid) as full:
        registry.create("services", "default", service("full", type="NodePort"))
    assert "failed to allocate a nodePort: range is full (31000-31009)" in str(full.value)
    with pytest.raises(Invalid) as outside:
        registry.create("services", "default", service("out", type="NodePort", ports=[{"port": 80, "nodePort": 30080}]))
    assert "The range of valid ports is 31000-31009" in str(outside.value)
    # Two fresh clusters do not both start at the bottom of the range, as a scan from its low end would.
    firsts = {Registry(Store(":memory:")).create("services", "default", service("a", type="NodePort"))
              ["spec"]["ports"][0]["nodePort"] for _ in range(5)}
    assert len(firsts) > 1


def test_the_node_port_range_flag_is_checked():
    from minikube_py.apiserver.service_allocation import parse_node_port_range

    assert parse_node_port_range("30000-32767") == (30000, 32767)
    for bad in ("30000", "a-b", "32767-30000", "0-10", "1-70000"):
        with pytest.raises(ValueError) as error:
            parse_node_port_range(bad)
        assert "is not a port range" in str(error.value)
