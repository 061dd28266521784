"""HorizontalPodAutoscaler served at autoscaling/v1 and autoscaling/v2, stored once (as v2).

The conversions both ways (api/autoscaling_v1.py) against Kubernetes' annotations, a round trip
that keeps every v2 field, and the API at both versions over HTTP: discovery, create and read
across versions, patches applied as v1 shows the object, lists, watches, tables, protobuf,
server-side apply, and v1's validation messages.
"""

from __future__ import annotations

import copy
import json

import pytest

from minikube_py import api
from minikube_py.api import autoscaling_v1, errors
from minikube_py.apiserver import protobuf
from tests.unit import api_harness
from tests.unit.api_harness import running_server

V1_PATH = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers"
V2_PATH = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers"
TARGET = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}


def v1_body(name="web", **spec):
    return {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name},
            "spec": {"scaleTargetRef": TARGET, "maxReplicas": 5, **spec}}


def cpu_metric(percent):
    return {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                        "averageUtilization": percent}}}


MEMORY_METRIC = {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue",
                                                                                "averageValue": "100Mi"}}}
BEHAVIOR = {"scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                        "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]},
            "scaleDown": {"selectPolicy": "Min", "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]}}
CONDITIONS = [{"type": "AbleToScale", "status": "True", "lastTransitionTime": "2026-12-01T10:00:00Z",
               "reason": "ReadyForNewScale", "message": "recommended size matches current size"}]


def full_v2():
    """A v2 object using every field v1 has no place for (its CPU metric last, as v1 puts it back)."""
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default", "uid": "u-1", "resourceVersion": "7",
                         "annotations": {"team": "blue"}},
            "spec": {"scaleTargetRef": TARGET, "minReplicas": 2, "maxReplicas": 9,
                     "metrics": [MEMORY_METRIC, cpu_metric(50)], "behavior": BEHAVIOR},
            "status": {"observedGeneration": 3, "lastScaleTime": "2026-12-01T10:00:00Z", "currentReplicas": 3,
                       "desiredReplicas": 4,
                       "currentMetrics": [
                           {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "80Mi"}}},
                           {"type": "Resource", "resource": {"name": "cpu", "current": {
                               "averageUtilization": 65, "averageValue": "130m"}}}],
                       "conditions": CONDITIONS}}


# -- the conversions -------------------------------------------------------------------------------


def test_v2_reads_as_v1_with_the_cpu_target_in_fields_and_the_rest_in_kubernetes_annotations():
    converted = autoscaling_v1.from_v2(full_v2())
    assert converted["apiVersion"] == "autoscaling/v1"
    assert converted["spec"] == {"scaleTargetRef": TARGET, "minReplicas": 2, "maxReplicas": 9,
                                 "targetCPUUtilizationPercentage": 50}
    assert converted["status"] == {"observedGeneration": 3, "lastScaleTime": "2026-12-01T10:00:00Z",
                                   "currentReplicas": 3, "desiredReplicas": 4, "currentCPUUtilizationPercentage": 65}
    annotations = converted["metadata"]["annotations"]
    assert annotations["team"] == "blue"
    assert annotations["autoscaling.alpha.kubernetes.io/metrics"] == \
        '[{"type":"Resource","resource":{"name":"memory","targetAverageValue":"100Mi"}}]'
    assert annotations["autoscaling.alpha.kubernetes.io/current-metrics"] == (
        '[{"type":"Resource","resource":{"name":"memory","currentAverageValue":"80Mi"}},'
        '{"type":"Resource","resource":{"name":"cpu","currentAverageUtilization":65,"currentAverageValue":"130m"}}]')
    # kube-apiserver marshals its internal type here: Go's field names, unset fields null.
    assert json.loads(annotations["autoscaling.alpha.kubernetes.io/behavior"]) == {
        "ScaleUp": {"StabilizationWindowSeconds": 0, "SelectPolicy": "Max",
                    "Policies": [{"Type": "Pods", "Value": 4, "PeriodSeconds": 15}]},
        "ScaleDown": {"StabilizationWindowSeconds": None, "SelectPolicy": "Min",
                      "Policies": [{"Type": "Percent", "Value": 50, "PeriodSeconds": 60}]}}
    assert json.loads(annotations["autoscaling.alpha.kubernetes.io/conditions"]) == CONDITIONS
    api.resource_for("hpa").version("autoscaling/v1").model.model_validate(converted)  # a valid v1 object


def test_a_round_trip_through_v1_keeps_every_v2_field():
    original = full_v2()
    assert autoscaling_v1.to_v2(autoscaling_v1.from_v2(copy.deepcopy(original))) == original


def test_the_cpu_metric_comes_back_last_as_kubernetes_orders_it():
    original = full_v2()
    original["spec"]["metrics"] = [cpu_metric(50), MEMORY_METRIC]
    back = autoscaling_v1.to_v2(autoscaling_v1.from_v2(original))
    assert back["spec"]["metrics"] == [MEMORY_METRIC, cpu_metric(50)]


def test_a_plain_v1_object_becomes_v2_with_a_cpu_utilization_metric():
    converted = autoscaling_v1.to_v2({**v1_body(targetCPUUtilizationPercentage=50, minReplicas=1),
                                      "status": {"currentReplicas": 0, "desiredReplicas": 0,
                                                 "currentCPUUtilizationPercentage": 12}})
    assert converted["apiVersion"] == "autoscaling/v2"
    assert converted["spec"] == {"scaleTargetRef": TARGET, "minReplicas": 1, "maxReplicas": 5,
                                 "metrics": [cpu_metric(50)]}
    assert converted["status"] == {"desiredReplicas": 0, "currentMetrics": [
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12}}}]}
    assert "annotations" not in converted["metadata"]


def test_the_behavior_annotation_is_read_case_insensitively_as_go_does():
    body = v1_body()
    body["metadata"]["annotations"] = {
        "autoscaling.alpha.kubernetes.io/behavior": '{"scaleup":{"selectPolicy":"Min","POLICIES":null},"ScaleDown":null}'}
    assert autoscaling_v1.to_v2(body)["spec"]["behavior"] == {"scaleUp": {"selectPolicy": "Min"}}


def test_annotations_that_are_not_json_are_dropped_and_ignored():
    body = v1_body(targetCPUUtilizationPercentage=40)
    body["metadata"]["annotations"] = {"autoscaling.alpha.kubernetes.io/metrics": "[{not json",
                                       "autoscaling.alpha.kubernetes.io/conditions": "7"}
    converted = autoscaling_v1.to_v2(body)
    assert converted["spec"]["metrics"] == [cpu_metric(40)]
    assert "annotations" not in converted["metadata"] and "conditions" not in converted.get("status", {})


@pytest.mark.parametrize("body", [{"apiVersion": "autoscaling/v1", "spec": "nope", "status": 3, "metadata": None},
                                  {"spec": {"targetCPUUtilizationPercentage": "x"}}, {}])
def test_malformed_objects_convert_without_crashing_and_validation_reports_them(body):
    autoscaling_v1.to_v2(body)
    autoscaling_v1.from_v2(body)


def test_parse_object_takes_v1_and_gives_the_storage_model_defaulted():
    hpa = api.parse_object({**v1_body(targetCPUUtilizationPercentage=50), "metadata": {"name": "web",
                                                                                       "namespace": "default"}})
    assert hpa.api_version == "autoscaling/v2" and hpa.spec.min_replicas == 1
    assert hpa.to_dict()["spec"]["metrics"] == [cpu_metric(50)]
    defaulted = api.parse_object({**v1_body(), "metadata": {"name": "web", "namespace": "default"}})
    assert defaulted.to_dict()["spec"]["metrics"] == [cpu_metric(80)]  # the v1 default: CPU at 80 %


def test_v1_validation_names_the_missing_target_and_the_inverted_bounds():
    body = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "bad", "namespace": "default"}, "spec": {"minReplicas": 5, "maxReplicas": 2}}
    with pytest.raises(errors.Invalid) as raised:
        api.parse_object(body)
    assert raised.value.errors == [
        ("spec.scaleTargetRef.kind", "Required value"), ("spec.scaleTargetRef.name", "Required value"),
        ("spec.maxReplicas", "Invalid value: 2: must be greater than or equal to `minReplicas`")]
    assert str(raised.value).startswith('HorizontalPodAutoscaler.autoscaling "bad" is invalid')


def test_names_with_a_version_select_it():
    assert api.resource_and_version_for("hpa.v1.autoscaling")[1] == "autoscaling/v1"
    assert api.resource_and_version_for("horizontalpodautoscalers.v2.autoscaling")[1] == "autoscaling/v2"
    assert api.resource_and_version_for("hpa")[1] == "autoscaling/v2"
    assert api.resource_for_kind("autoscaling/v1", "HorizontalPodAutoscaler").plural == "horizontalpodautoscalers"
    with pytest.raises(KeyError):
        api.resource_and_version_for("hpa.v3.autoscaling")


# -- over HTTP ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("hpa-versions")) as server:
        yield server


def call(server, method, path, body=None, headers=None):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    status, response_headers, payload = api_harness.exchange(
        server, method, path, data, {"Content-Type": "application/json", **(headers or {})})
    content_type = response_headers.get("Content-Type") or ""
    return status, protobuf.decode(payload) if content_type == protobuf.MEDIA_TYPE else json.loads(payload or b"null")


def test_discovery_lists_both_versions_with_v2_preferred(server):
    _, groups = call(server, "GET", "/apis")
    autoscaling = next(group for group in groups["groups"] if group["name"] == "autoscaling")
    assert [entry["groupVersion"] for entry in autoscaling["versions"]] == ["autoscaling/v2", "autoscaling/v1"]
    assert autoscaling["preferredVersion"]["version"] == "v2"
    _, resources = call(server, "GET", "/apis/autoscaling/v1")
    assert {entry["name"] for entry in resources["resources"]} == {"horizontalpodautoscalers",
                                                                    "horizontalpodautoscalers/status"}
    _, document = call(server, "GET", "/openapi/v3/apis/autoscaling/v1")
    assert "io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler" in document["components"]["schemas"]
    assert "/apis/autoscaling/v1/namespaces/{namespace}/horizontalpodautoscalers/{name}" in document["paths"]


def test_an_object_created_at_v1_is_read_at_both_versions_and_patched_as_v1_shows_it(server):
    status, created = call(server, "POST", V1_PATH, v1_body("across", targetCPUUtilizationPercentage=50))
    assert status == 201 and created["apiVersion"] == "autoscaling/v1"
    assert created["spec"]["targetCPUUtilizationPercentage"] == 50
    assert created["status"] == {"currentReplicas": 0, "desiredReplicas": 0}
    _, stored = call(server, "GET", f"{V2_PATH}/across")
    assert stored["apiVersion"] == "autoscaling/v2" and stored["spec"]["metrics"] == [cpu_metric(50)]
    status, patched = call(server, "PATCH", f"{V1_PATH}/across", {"spec": {"targetCPUUtilizationPercentage": 70}},
                           {"Content-Type": "application/merge-patch+json"})
    assert status == 200 and patched["spec"]["targetCPUUtilizationPercentage"] == 70
    _, stored = call(server, "GET", f"{V2_PATH}/across")
    assert stored["spec"]["metrics"] == [cpu_metric(70)] and stored["metadata"]["generation"] == 2


def test_a_v1_replace_of_what_v1_read_keeps_the_v2_only_fields(server):
    v2 = {**full_v2(), "metadata": {"name": "keep"}}
    del v2["status"]
    assert call(server, "POST", V2_PATH, v2)[0] == 201
    _, as_v1 = call(server, "GET", f"{V1_PATH}/keep")
    as_v1["spec"]["maxReplicas"] = 12
    status, replaced = call(server, "PUT", f"{V1_PATH}/keep", as_v1)
    assert status == 200, replaced
    _, stored = call(server, "GET", f"{V2_PATH}/keep")
    assert stored["spec"]["maxReplicas"] == 12
    assert stored["spec"]["metrics"] == [MEMORY_METRIC, cpu_metric(50)] and stored["spec"]["behavior"] == {
        **BEHAVIOR, "scaleDown": {**BEHAVIOR["scaleDown"]}}
    assert "annotations" not in stored["metadata"] or not any(
        key.startswith("autoscaling.alpha") for key in stored["metadata"]["annotations"])


def test_lists_watches_and_tables_answer_in_the_version_asked_for(server):
    call(server, "POST", V1_PATH, v1_body("listed"))
    _, listing = call(server, "GET", V1_PATH)
    assert listing["kind"] == "HorizontalPodAutoscalerList" and listing["apiVersion"] == "autoscaling/v1"
    assert {item["apiVersion"] for item in listing["items"]} == {"autoscaling/v1"}
    _, table = call(server, "GET", f"{V1_PATH}?includeObject=Object",
                    headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    assert [column["name"] for column in table["columnDefinitions"]][:7] == [
        "Name", "Reference", "Targets", "MinPods", "MaxPods", "Replicas", "Age"]
    assert {row["object"]["apiVersion"] for row in table["rows"]} == {"autoscaling/v1"}
    status, headers, payload = api_harness.exchange(server, "GET", f"{V1_PATH}?watch=1&timeoutSeconds=1")
    events = [json.loads(line) for line in payload.splitlines() if line.strip()]
    assert status == 200 and events and {event["object"]["apiVersion"] for event in events} == {"autoscaling/v1"}


def test_a_v1_object_sent_as_protobuf_is_answered_as_protobuf_v1(server):
    body = protobuf.encode({**v1_body("proto", targetCPUUtilizationPercentage=50, minReplicas=1),
                            "metadata": {"name": "proto"}})
    status, created = call(server, "POST", V1_PATH, body, {"Content-Type": protobuf.MEDIA_TYPE,
                                                           "Accept": f"{protobuf.MEDIA_TYPE},application/json"})
    assert status == 201 and created["apiVersion"] == "autoscaling/v1"
    assert created["spec"]["targetCPUUtilizationPercentage"] == 50


def test_server_side_apply_at_v1_converts_the_configuration(server):
    config = {**v1_body("applied", targetCPUUtilizationPercentage=30), "metadata": {"name": "applied"}}
    status, applied = call(server, "PATCH", f"{V1_PATH}/applied?fieldManager=me", config,
                           {"Content-Type": "application/apply-patch+yaml"})
    assert status == 201 and applied["spec"]["targetCPUUtilizationPercentage"] == 30
    status, answer = call(server, "PATCH", f"{V1_PATH}/applied?fieldManager=me",
                          {**config, "apiVersion": "autoscaling/v2"}, {"Content-Type": "application/apply-patch+yaml"})
    assert status == 400 and "expected: autoscaling/v1" in answer["message"]


def test_a_body_of_the_other_version_is_refused_as_kube_apiserver_does(server):
    v2 = {**full_v2(), "metadata": {"name": "mixed"}}
    status, answer = call(server, "POST", V1_PATH, v2)
    assert status == 400
    assert answer["message"] == ("the API version in the data (autoscaling/v2) does not match the expected "
                                 "API version (autoscaling/v1)")


def test_strict_field_validation_checks_v1_bodies_against_the_v1_schema(server):
    body = v1_body("strict", targetCPUUtilizationPercentage=50, metrics=[])
    status, answer = call(server, "POST", f"{V1_PATH}?fieldValidation=Strict", body)
    assert status == 400
    assert answer["message"] == ('HorizontalPodAutoscaler in version "v1" cannot be handled as a '
                                 'HorizontalPodAutoscaler: strict decoding error: unknown field "spec.metrics"')


def test_a_v1_object_without_target_or_with_inverted_bounds_is_a_422_naming_the_field(server):
    body = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "bad"},
            "spec": {"minReplicas": 5, "maxReplicas": 2}}
    status, answer = call(server, "POST", V1_PATH, body)
    assert status == 422
    assert [(cause["field"], cause["message"]) for cause in answer["details"]["causes"]] == [
        ("spec.scaleTargetRef.kind", "Required value"), ("spec.scaleTargetRef.name", "Required value"),
        ("spec.maxReplicas", "Invalid value: 2: must be greater than or equal to `minReplicas`")]


# -- our CLI at autoscaling/v1 -------------------------------------------------------------------------

V1_MANIFEST = """
apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata:
  name: web
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: MAX
  targetCPUUtilizationPercentage: 60
"""


def test_the_cli_applies_a_v1_manifest_at_v1_and_reads_either_version(live):
    path = live.write("hpa.yaml", V1_MANIFEST.replace("MAX", "4"))
    assert live.run("apply", "-f", path).out == "horizontalpodautoscaler.autoscaling/web created\n"
    assert live.run("apply", "-f", path).out == "horizontalpodautoscaler.autoscaling/web unchanged\n"
    live.write("hpa.yaml", V1_MANIFEST.replace("MAX", "6"))
    assert live.run("apply", "-f", path).out == "horizontalpodautoscaler.autoscaling/web configured\n"
    stored = live.registry.get("horizontalpodautoscalers", "default", "web")
    assert stored["spec"]["maxReplicas"] == 6 and stored["spec"]["metrics"] == [cpu_metric(60)]
    as_v1 = json.loads(live.run("get", "hpa.v1.autoscaling", "web", "-o", "json").out)
    assert as_v1["apiVersion"] == "autoscaling/v1" and as_v1["spec"]["targetCPUUtilizationPercentage"] == 60
    assert json.loads(live.run("get", "hpa", "web", "-o", "json").out)["apiVersion"] == "autoscaling/v2"
    table = live.run("get", "hpa.v1.autoscaling").out
    assert "cpu: <unknown>/60%" in table and "Deployment/web" in table
    assert live.run("apply", "--server-side", "-f", path).out == \
        "horizontalpodautoscaler.autoscaling/web serverside-applied\n"
