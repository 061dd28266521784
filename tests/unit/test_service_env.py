"""The Service environment variables containers get, as kubelet's envvars rules, and in the agent."""

import pytest

from minikube_py import api
from minikube_py.agent.service_env import service_environment, service_variables, variable_name
from tests.unit.agent_harness import AgentHarness


def service(name: str, ports: list[dict], namespace: str = "default", cluster_ip: str | None = "10.96.0.10",
            **spec) -> api.Service:
    body = {"ports": ports, **spec}
    if cluster_ip is not None:
        body["clusterIP"] = cluster_ip
    return api.parse_object({"apiVersion": "v1", "kind": "Service",
                             "metadata": {"name": name, "namespace": namespace}, "spec": body})


KUBERNETES = service("kubernetes", [{"name": "https", "port": 443, "targetPort": 6443}], cluster_ip="10.96.0.1")


@pytest.mark.parametrize("name, expected", [
    ("web", "WEB"), ("redis-master", "REDIS_MASTER"), ("a-b-c", "A_B_C"),
])
def test_variable_names_are_upper_case_with_underscores(name, expected):
    assert variable_name(name) == expected


def test_one_unnamed_port_gives_the_host_port_and_docker_link_variables():
    assert service_variables(service("redis-master", [{"port": 6379}], cluster_ip="10.0.0.11")) == [
        ("REDIS_MASTER_SERVICE_HOST", "10.0.0.11"),
        ("REDIS_MASTER_SERVICE_PORT", "6379"),
        ("REDIS_MASTER_PORT", "tcp://10.0.0.11:6379"),
        ("REDIS_MASTER_PORT_6379_TCP", "tcp://10.0.0.11:6379"),
        ("REDIS_MASTER_PORT_6379_TCP_PROTO", "tcp"),
        ("REDIS_MASTER_PORT_6379_TCP_PORT", "6379"),
        ("REDIS_MASTER_PORT_6379_TCP_ADDR", "10.0.0.11"),
    ]


def test_named_ports_get_their_own_service_port_and_the_first_port_is_the_default():
    variables = dict(service_variables(service("web", [
        {"name": "http", "port": 80}, {"name": "dns-udp", "port": 53, "protocol": "UDP"}])))
    assert variables["WEB_SERVICE_PORT"] == "80"
    assert variables["WEB_SERVICE_PORT_HTTP"] == "80" and variables["WEB_SERVICE_PORT_DNS_UDP"] == "53"
    assert variables["WEB_PORT"] == "tcp://10.96.0.10:80"
    assert variables["WEB_PORT_53_UDP"] == "udp://10.96.0.10:53" and variables["WEB_PORT_53_UDP_PROTO"] == "udp"
    assert variables["WEB_PORT_53_UDP_ADDR"] == "10.96.0.10" and variables["WEB_PORT_53_UDP_PORT"] == "53"


@pytest.mark.parametrize("services, namespace, links, expected_prefixes", [
    # The namespace's Services and the API's, by default.
    ([KUBERNETES, service("web", [{"port": 80}])], "default", True, {"KUBERNETES", "WEB"}),
    # Other namespaces' Services are not seen; the API's always is.
    ([KUBERNETES, service("web", [{"port": 80}], namespace="other")], "default", True, {"KUBERNETES"}),
    ([KUBERNETES, service("web", [{"port": 80}], namespace="team")], "team", True, {"KUBERNETES", "WEB"}),
    # enableServiceLinks: false keeps only the API's.
    ([KUBERNETES, service("web", [{"port": 80}])], "default", False, {"KUBERNETES"}),
    ([KUBERNETES, service("web", [{"port": 80}], namespace="team")], "team", False, {"KUBERNETES"}),
    # Headless Services have no address to give.
    ([service("db", [{"port": 5432}], cluster_ip="None")], "default", True, set()),
])
def test_which_services_a_pod_sees(services, namespace, links, expected_prefixes):
    environment = service_environment(services, namespace, links)
    assert {name[:-len("_SERVICE_HOST")] for name in environment if name.endswith("_SERVICE_HOST")} == \
        expected_prefixes


def test_a_namespace_service_named_kubernetes_wins_over_the_api_one():
    own = service("kubernetes", [{"port": 8080}], namespace="team", cluster_ip="10.96.0.99")
    for order in ([KUBERNETES, own], [own, KUBERNETES]):
        assert service_environment(order, "team")["KUBERNETES_SERVICE_HOST"] == "10.96.0.99"
    assert service_environment([own, KUBERNETES], "team", False)["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"


# -- in the agent --------------------------------------------------------------------------------


@pytest.fixture
def harness(tmp_path):
    harness = AgentHarness(tmp_path)
    harness.start()
    return harness


def create_service(harness, name: str, port: int, namespace: str = "default") -> str:
    created = harness.registry.create("services", namespace, {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": port}]}})
    return created["spec"]["clusterIP"]


def started_env(harness, uid: str) -> list[tuple[str, str]]:
    return harness.runtime.container_configs[harness.runtime.container_for(uid, "main").id].env


def test_containers_get_the_variables_of_services_that_exist_when_they_start(harness):
    address = create_service(harness, "web", 80)
    uid = harness.create_pod("client", [{"name": "main", "env": [
        {"name": "WEB_URL", "value": "http://$(WEB_SERVICE_HOST):$(WEB_SERVICE_PORT)/"},
        {"name": "WEB_PORT", "value": "mine"},
    ]}])
    harness.sync()
    env = dict(started_env(harness, uid))
    assert env["WEB_SERVICE_HOST"] == address and env["WEB_SERVICE_PORT"] == "80"
    assert env["WEB_URL"] == f"http://{address}:80/"  # expanded against the Service variables
    assert env["WEB_PORT"] == "mine"  # the container's own variable wins
    create_service(harness, "later", 81)
    harness.sync()
    assert "LATER_SERVICE_HOST" not in dict(started_env(harness, uid))


def test_enable_service_links_false_leaves_the_namespace_services_out(harness):
    create_service(harness, "web", 80)
    uid = harness.create_pod("quiet", [{"name": "main"}], enableServiceLinks=False)
    harness.sync()
    assert not any(name.startswith("WEB_") for name, _ in started_env(harness, uid))
