"""Env from ConfigMaps, Secrets and resources: values, kubelet's CreateContainerConfigError messages,
and the pod starting by itself once the object it waits for appears."""

import base64

import pytest

from minikube_py.api import errors
from tests.unit.agent_harness import AgentHarness


@pytest.fixture
def harness(tmp_path):
    harness = AgentHarness(tmp_path)
    harness.start()
    return harness


def started_env(harness, uid: str, name: str = "main") -> dict[str, str]:
    return dict(harness.runtime.container_configs[harness.runtime.container_for(uid, name).id].env)


def config_map(harness, name: str, data: dict[str, str]) -> None:
    harness.registry.create("configmaps", "default", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})


def secret(harness, name: str, data: dict[str, str]) -> None:
    harness.registry.create("secrets", "default", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}})


def test_env_takes_keys_from_config_maps_and_secrets_env_overriding_env_from(harness):
    config_map(harness, "app-config", {"LOG_LEVEL": "debug", "MODE": "fast"})
    secret(harness, "app-secret", {"PASSWORD": "s3cret"})
    uid = harness.create_pod("web", [{
        "name": "main",
        "envFrom": [{"configMapRef": {"name": "app-config"}}, {"secretRef": {"name": "app-secret"}, "prefix": "DB_"}],
        "env": [
            {"name": "MODE", "value": "slow"},
            {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "LOG_LEVEL"}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "app-secret", "key": "PASSWORD"}}},
            {"name": "URL", "value": "db://$(DB_PASSWORD)@$(LEVEL)"},
            {"name": "ABSENT", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "NOPE", "optional": True}}},
            {"name": "GONE", "valueFrom": {"secretKeyRef": {"name": "nothing", "key": "x", "optional": True}}},
        ],
    }])
    harness.sync()
    env = started_env(harness, uid)
    assert env["LOG_LEVEL"] == "debug" and env["MODE"] == "slow" and env["DB_PASSWORD"] == "s3cret"
    assert env["LEVEL"] == "debug" and env["PW"] == "s3cret" and env["URL"] == "db://s3cret@debug"
    assert "ABSENT" not in env and "GONE" not in env


def test_an_optional_missing_env_from_object_adds_nothing(harness):
    uid = harness.create_pod("web", [{"name": "main", "envFrom": [{"configMapRef": {"name": "none", "optional": True}}]}])
    harness.sync()
    assert harness.runtime.container_for(uid, "main") is not None


@pytest.mark.parametrize("env, env_from, message", [
    ([], [{"configMapRef": {"name": "app-config"}}], 'configmap "app-config" not found'),
    ([], [{"secretRef": {"name": "app-secret"}}], 'secret "app-secret" not found'),
    ([{"name": "L", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "LOG_LEVEL"}}}], [],
     'configmap "app-config" not found'),
    ([{"name": "P", "valueFrom": {"secretKeyRef": {"name": "app-secret", "key": "PASSWORD"}}}], [],
     'secret "app-secret" not found'),
])
def test_a_missing_object_waits_with_kubelets_message_and_starts_once_it_appears(harness, env, env_from, message):
    uid = harness.create_pod("web", [{"name": "main", "env": env, "envFrom": env_from}])
    harness.sync()
    waiting = harness.status("web")["state"]["waiting"]
    assert waiting == {"reason": "CreateContainerConfigError", "message": message}
    assert ("Failed", f"Error: {message}") in harness.events()
    assert harness.runtime.container_for(uid, "main") is None
    config_map(harness, "app-config", {"LOG_LEVEL": "info"})
    secret(harness, "app-secret", {"PASSWORD": "pw"})
    harness.sync()  # no clock advance: the informer re-syncs the pod, not its back-off timer
    assert harness.runtime.container_for(uid, "main") is not None
    assert "running" in harness.status("web")["state"]


def test_a_missing_key_waits_with_kubelets_message_until_the_object_gains_it(harness):
    config_map(harness, "app-config", {"OTHER": "x"})
    secret(harness, "app-secret", {"OTHER": "x"})
    uid = harness.create_pod("web", [{"name": "main", "env": [
        {"name": "L", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "LOG_LEVEL"}}}]}])
    harness.sync()
    assert harness.status("web")["state"]["waiting"]["message"] == \
        "couldn't find key LOG_LEVEL in ConfigMap default/app-config"
    stored = harness.registry.get("configmaps", "default", "app-config")
    stored["data"]["LOG_LEVEL"] = "warn"
    harness.registry.replace("configmaps", "default", "app-config", stored)
    harness.sync()
    assert started_env(harness, uid)["L"] == "warn"
    uid2 = harness.create_pod("db", [{"name": "main", "env": [
        {"name": "P", "valueFrom": {"secretKeyRef": {"name": "app-secret", "key": "PASSWORD"}}}]}])
    harness.sync()
    assert harness.status("db")["state"]["waiting"]["message"] == "couldn't find key PASSWORD in Secret default/app-secret"
    assert harness.runtime.container_for(uid2, "main") is None


def resource_env(resource: str, divisor: str | None = None, container: str | None = None) -> dict:
    reference: dict = {"resource": resource}
    if divisor is not None:
        reference["divisor"] = divisor
    if container is not None:
        reference["containerName"] = container
    return {"name": "VALUE", "valueFrom": {"resourceFieldRef": reference}}


@pytest.mark.parametrize("resources, resource, divisor, expected", [
    ({"limits": {"cpu": "500m"}}, "limits.cpu", None, "1"),  # rounded up to whole cores
    ({"limits": {"cpu": "500m"}}, "limits.cpu", "1m", "500"),
    ({"limits": {"cpu": "1500m"}}, "limits.cpu", "1", "2"),
    ({"requests": {"cpu": "250m"}}, "requests.cpu", "1m", "250"),
    ({"limits": {"memory": "64Mi"}}, "limits.memory", "1Mi", "64"),
    ({"limits": {"memory": "64Mi"}}, "limits.memory", None, str(64 * 1024 * 1024)),
    ({"requests": {"memory": "1500k"}}, "requests.memory", "1M", "2"),
    ({}, "requests.memory", None, "0"),
])
def test_resource_field_ref_divides_and_rounds_up_as_kubelet(harness, resources, resource, divisor, expected):
    uid = harness.create_pod("web", [{"name": "main", "resources": resources, "env": [resource_env(resource, divisor)]}])
    harness.sync()
    assert started_env(harness, uid)["VALUE"] == expected


def test_an_unset_limit_is_the_nodes_allocatable(harness):
    uid = harness.create_pod("web", [
        {"name": "main", "env": [resource_env("limits.cpu", "1m", container="side")]},
        {"name": "side", "resources": {"limits": {"cpu": "2"}}},
    ])
    other = harness.create_pod("free", [{"name": "main", "env": [resource_env("limits.cpu")]}])
    harness.sync()
    assert started_env(harness, uid)["VALUE"] == "2000"
    allocatable = harness.registry.get("nodes", "", "node1")["status"]["allocatable"]["cpu"]
    assert started_env(harness, other)["VALUE"] == str(allocatable)


@pytest.mark.parametrize("container, field, message", [
    ({"env": [{"name": "X", "valueFrom": {}}]}, "spec.containers[0].env[0].valueFrom",
     "Required value: must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"),
    ({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "a", "key": "k"},
                                          "secretKeyRef": {"name": "a", "key": "k"}}}]},
     "spec.containers[0].env[0].valueFrom", "may not have more than one field specified at a time"),
    ({"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"key": "k"}}}]},
     "spec.containers[0].env[0].valueFrom.configMapKeyRef.name", "Required value"),
    ({"env": [resource_env("limits.gpu")]}, "spec.containers[0].env[0].valueFrom.resourceFieldRef.resource",
     'Unsupported value: "limits.gpu"'),
    ({"env": [resource_env("limits.cpu", "2")]}, "spec.containers[0].env[0].valueFrom.resourceFieldRef.divisor",
     'Unsupported value: "2"'),
    ({"envFrom": [{"prefix": "P_"}]}, "spec.containers[0].envFrom[0]",
     "Required value: must specify one of: `configMapRef` or `secretRef`"),
    ({"envFrom": [{"prefix": "1X", "configMapRef": {"name": "a"}}]}, "spec.containers[0].envFrom[0].prefix",
     "a valid environment variable name"),
])
def test_invalid_env_sources_are_refused_naming_the_field(harness, container, field, message):
    with pytest.raises(errors.Invalid) as raised:
        harness.create_pod("web", [{"name": "main", **container}])
    text = str(raised.value.status()) if hasattr(raised.value, "status") else str(raised.value)
    assert field in text and message in text
