"""Kubernetes' protobuf encoding: round trips of our kinds, the envelope, and bad bodies."""

import base64
import json
import os
import threading
import time

import pytest
import yaml

from minikube_py import api
from minikube_py.api import errors
from minikube_py.apiserver import openapi_protobuf, protobuf
from tests.unit import api_harness
from tests.unit.api_harness import running_server

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
                 "creationTimestamp": "2026-12-03T14:00:00Z", "generation": 3,
                 "ownerReferences": [{"apiVersion": "v1", "kind": "Thing", "name": "t", "uid": "u", "controller": True}]},
    "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
             "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "server", "image": "busybox", "command": ["httpd", "-f"],
                                                   "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                                                   "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}},
                                                   "readinessProbe": {"httpGet": {"path": "/", "port": "http"},
                                                                      "periodSeconds": 3}}],
                                   "volumes": [{"name": "scratch", "emptyDir": {}},
                                               {"name": "config", "configMap": {"name": "settings"}}]}}},
    "status": {"replicas": 2, "conditions": [{"type": "Available", "status": "True",
                                              "lastTransitionTime": "2026-12-03T14:00:01Z"}]},
}
SECRET = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}, "type": "Opaque",
          "data": {"password": base64.b64encode(b"\x00\xffsecret").decode()}}


@pytest.mark.parametrize("obj", [
    DEPLOYMENT, SECRET,
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}, "immutable": True},
    {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
     "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
                                                       "containers": [{"name": "c", "image": "busybox"}]}}}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
     "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
              "type": "ClusterIP"}},
    {"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"resourceVersion": "7"},
     "items": [{"metadata": {"name": "c"}, "data": {"a": "1"}}]},
    {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure", "message": "no", "reason": "NotFound",
     "code": 404, "details": {"name": "x", "kind": "pods"}},
], ids=lambda obj: obj["kind"])
def test_objects_survive_a_round_trip(obj):
    data = protobuf.encode(obj)
    assert data.startswith(b"k8s\x00")
    decoded = protobuf.decode(data)
    if obj["kind"] == "Status":
        obj = {key: value for key, value in obj.items() if key != "metadata"}  # an empty ListMeta is unset
    assert decoded == obj


def test_every_served_kind_has_a_message():
    for info in api.RESOURCES.values():
        assert protobuf.message_name(info.api_version, info.kind), info.kind
        assert protobuf.message_name(info.api_version, info.list_kind), info.list_kind


def test_zero_values_of_fields_that_are_not_pointers_read_as_unset():
    """Go's encoder writes every non-pointer field; its zero means unset, a pointer's zero is a value."""
    messages = protobuf.kubernetes_messages()
    pod = protobuf.to_message(messages, "k8s.io.api.core.v1.Pod", {"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "image": "i"}]}})
    pod.metadata.namespace = ""
    pod.metadata.creationTimestamp.seconds = protobuf.GO_ZERO_TIME_SECONDS
    pod.spec.containers[0].stdin = False
    pod.spec.containers[0].resources.SetInParent()
    pod.spec.terminationGracePeriodSeconds = 0  # *int64: zero is a value
    decoded = protobuf.from_message(messages, "k8s.io.api.core.v1.Pod", pod)
    assert decoded == {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}],
                                                           "terminationGracePeriodSeconds": 0}}


def test_the_envelope_names_the_kind_and_wraps_its_message():
    data = protobuf.encode({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    messages = protobuf.kubernetes_messages()
    unknown = messages.message_class(protobuf.UNKNOWN)()
    unknown.ParseFromString(data[4:])
    assert (unknown.typeMeta.apiVersion, unknown.typeMeta.kind) == ("v1", "ConfigMap")
    config_map = messages.message_class("k8s.io.api.core.v1.ConfigMap")()
    config_map.ParseFromString(unknown.raw)
    assert config_map.metadata.name == "c"
    # Field numbers are Kubernetes': ObjectMeta.name is 1, ConfigMap.metadata is 1, data is 2.
    assert unknown.raw == b"\n\x03\n\x01c"


@pytest.mark.parametrize("body, message", [
    (b"", "must start with"),
    (b"{\"kind\": \"Pod\"}", "must start with"),
    (b"k8s\x00\n\x0f\n\x02v1\x12\tConfigMa", "truncated"),
    (protobuf.encode(DEPLOYMENT)[:-7], "truncated"),
], ids=["empty", "json", "truncated-envelope", "truncated-deployment"])
def test_truncated_or_foreign_bodies_are_bad_requests(body, message):
    with pytest.raises(errors.BadRequest) as raised:
        protobuf.decode(body)
    assert message in raised.value.message


def test_a_kind_without_a_message_is_unsupported_media_type():
    messages = protobuf.kubernetes_messages()
    unknown = messages.message_class(protobuf.UNKNOWN)()
    unknown.typeMeta.apiVersion, unknown.typeMeta.kind = "example.com/v1", "Gizmo"
    with pytest.raises(errors.UnsupportedMediaType):
        protobuf.decode(b"k8s\x00" + unknown.SerializeToString())
    assert protobuf.encode({"apiVersion": "example.com/v1", "kind": "Gizmo"}) is None


@pytest.mark.parametrize("text, nanoseconds", [("1h0m0s", 3600 * 10**9), ("1m30s", 90 * 10**9), ("1.5s", 1500 * 10**6),
                                               ("0s", 0)])
def test_durations_read_and_write_as_go_does(text, nanoseconds):
    assert protobuf.parse_duration(text) == nanoseconds
    assert protobuf.format_duration(nanoseconds) == text


# --- over HTTP ---------------------------------------------------------------------------


@pytest.fixture
def server(tmp_path):
    with running_server(tmp_path) as server:
        yield server


def exchange(server, method, path, body=b"", headers=None):
    status, response_headers, payload = api_harness.exchange(server, method, path, body, headers)
    return status, response_headers.get("Content-Type"), payload


PROTOBUF_HEADERS = {"Content-Type": protobuf.MEDIA_TYPE, "Accept": f"{protobuf.MEDIA_TYPE},application/json"}
CONFIG_MAPS = "/api/v1/namespaces/default/configmaps"


def test_a_protobuf_create_is_answered_in_protobuf_and_json_clients_see_the_same_object(server):
    body = protobuf.encode({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}})
    status, content_type, payload = exchange(server, "POST", CONFIG_MAPS, body, PROTOBUF_HEADERS)
    assert (status, content_type) == (201, protobuf.MEDIA_TYPE)
    created = protobuf.decode(payload)
    assert created["data"] == {"a": "1"} and created["metadata"]["uid"]
    status, content_type, payload = exchange(server, "GET", f"{CONFIG_MAPS}/c", headers={"Accept": "application/json"})
    assert (status, content_type) == (200, "application/json") and json.loads(payload) == created
    status, content_type, payload = exchange(server, "GET", CONFIG_MAPS, headers=PROTOBUF_HEADERS)
    assert protobuf.decode(payload)["items"][0]["metadata"]["name"] == "c"


def test_a_truncated_protobuf_body_is_a_400_status_and_the_server_keeps_serving(server):
    body = protobuf.encode({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}})
    descriptors, threads = len(os.listdir("/proc/self/fd")), threading.active_count()
    for cut in range(1, len(body) - 4):  # cut anywhere: in the envelope, a length, a field
        status, content_type, payload = exchange(server, "POST", CONFIG_MAPS, body[:-cut], PROTOBUF_HEADERS)
        answer = json.loads(payload)
        # Cut inside a field: the message cannot be read (400). Cut at a field's end: what is
        # left is a shorter message, refused by validation (422: the name is missing) as kube does.
        assert content_type == "application/json" and answer["kind"] == "Status", cut
        assert (status, answer["reason"]) in ((400, "BadRequest"), (422, "Invalid")), (cut, answer)
    status, content_type, payload = exchange(server, "POST", CONFIG_MAPS, body[:-3], PROTOBUF_HEADERS)
    assert "truncated" in json.loads(payload)["message"]
    wait_for_count(lambda: len(os.listdir("/proc/self/fd")) <= descriptors, "the descriptors to be released")
    wait_for_count(lambda: threading.active_count() <= threads, "the request threads to end")
    assert exchange(server, "GET", f"{CONFIG_MAPS}/c")[0] == 404
    assert exchange(server, "POST", CONFIG_MAPS, body, PROTOBUF_HEADERS)[0] == 201


def test_openapi_v2_is_served_as_gnostic_protobuf_with_our_definitions(server):
    status, content_type, payload = exchange(
        server, "GET", "/openapi/v2", headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    assert (status, content_type) == (200, openapi_protobuf.PROTOBUF)
    messages = protobuf.MessageTable(openapi_protobuf.GNOSTIC_MESSAGES)
    document = messages.message_class("openapi.v2.Document")()
    document.ParseFromString(payload)
    assert document.swagger == "2.0"
    definitions = {named.name: named.value for named in document.definitions.additional_properties}
    pod = definitions["io.k8s.api.core.v1.Pod"]
    extensions = {named.name: yaml.safe_load(named.value.yaml) for named in pod.vendor_extension}
    assert extensions["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod", "version": "v1"}]
    spec = {named.name: named.value for named in definitions["io.k8s.api.core.v1.PodSpec"].properties.additional_properties}
    containers = {named.name: yaml.safe_load(named.value.yaml) for named in spec["containers"].vendor_extension}
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert spec["containers"].items.schema[0]._ref == "#/definitions/io.k8s.api.core.v1.Container"
    paths = {named.name for named in document.paths.path}
    assert "/apis/apps/v1/namespaces/{namespace}/deployments/{name}" in paths
    status, _, payload = exchange(server, "GET", "/openapi/v2", headers={"Accept": "text/html"})
    assert status == 406 and json.loads(payload)["reason"] == "NotAcceptable"


def wait_for_count(predicate, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
