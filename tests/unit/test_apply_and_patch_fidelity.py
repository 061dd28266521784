"""Server-side apply and patch as kube-apiserver records and checks them, in the corners earlier
versions got wrong: the apiVersion of a managedFields entry is the request's; an Update entry
marks each map it brings with `.`; a JSON patch's result goes through fieldValidation; apply
works through the status and scale subresources."""

from __future__ import annotations

import pytest

from tests.unit.test_fieldmanager import APPLY, WEB, call, deployment, entries
from tests.unit.test_fieldmanager import server as server  # noqa: F401 (the fixture)

HPAS_V1 = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers"
HPAS_V2 = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers"
HPA_V1 = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
          "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                   "minReplicas": 1, "maxReplicas": 3, "targetCPUUtilizationPercentage": 50}}
JSON_PATCH = "application/json-patch+json"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


def versions(obj: dict) -> dict[tuple[str, str], str]:
    return {key: entry["apiVersion"] for key, entry in entries(obj).items()}


# -- the apiVersion a managedFields entry records --------------------------------------------------

def test_writes_at_autoscaling_v1_are_recorded_at_v1_and_writes_at_v2_at_v2(server):
    status, created = call(server, "POST", f"{HPAS_V1}?fieldManager=maker", HPA_V1)
    assert status == 201 and versions(created)[("maker", "Update")] == "autoscaling/v1"
    status, patched = call(server, "PATCH", f"{HPAS_V2}/web?fieldManager=tuner",
                           {"metadata": {"labels": {"tier": "front"}}}, "application/merge-patch+json")
    assert status == 200 and versions(patched)[("tuner", "Update")] == "autoscaling/v2"
    applied_config = {**HPA_V1, "spec": {**HPA_V1["spec"], "maxReplicas": 5}}
    status, applied = call(server, "PATCH", f"{HPAS_V1}/web?fieldManager=gitops&force=true", applied_config, APPLY)
    assert status == 200 and versions(applied)[("gitops", "Apply")] == "autoscaling/v1"
    # What the server stores, read at either version, keeps those versions.
    stored = server.registry.get("horizontalpodautoscalers", "default", "web")
    assert versions(stored) == {("maker", "Update"): "autoscaling/v1", ("tuner", "Update"): "autoscaling/v2",
                                ("gitops", "Apply"): "autoscaling/v1"}


# -- the `.` marker on maps an Update brings -------------------------------------------------------

def test_an_update_marks_each_map_it_brings_and_not_a_map_that_was_there(server):
    status, created = call(server, "POST", f"{DEPLOYMENTS}?fieldManager=maker", deployment())
    fields = entries(created)[("maker", "Update")]["fieldsV1"]
    assert fields["f:metadata"]["f:labels"] == {".": {}, "f:app": {}}
    assert fields["f:spec"]["f:template"]["f:metadata"]["f:labels"] == {".": {}, "f:app": {}}
    assert "." not in fields["f:spec"] and "." not in fields["f:spec"]["f:template"]  # objects, not maps
    status, patched = call(server, "PATCH", f"{WEB}?fieldManager=labeller",
                           {"metadata": {"labels": {"tier": "front"}, "annotations": {"team": "a"}},
                            "spec": {"template": {"spec": {"nodeSelector": {"disk": "ssd"}}}}},
                           "application/merge-patch+json")
    fields = entries(patched)[("labeller", "Update")]["fieldsV1"]
    assert fields["f:metadata"]["f:annotations"] == {".": {}, "f:team": {}}  # new map: marked
    assert fields["f:metadata"]["f:labels"] == {"f:tier": {}}  # the map was there: only its new key
    assert fields["f:spec"]["f:template"]["f:spec"]["f:nodeSelector"] == {".": {}, "f:disk": {}}


def test_an_apply_entry_owns_a_maps_keys_without_the_marker_as_kubernetes_does(server):
    status, applied = call(server, "PATCH", f"{WEB}?fieldManager=gitops", deployment(), APPLY)
    assert status == 201
    assert entries(applied)[("gitops", "Apply")]["fieldsV1"]["f:metadata"]["f:labels"] == {"f:app": {}}


# -- fieldValidation on a JSON patch's result ------------------------------------------------------

ADD_UNKNOWN = [{"op": "add", "path": "/spec/bogus", "value": 1},
               {"op": "replace", "path": "/spec/replicas", "value": 4}]


def test_a_json_patch_that_adds_an_unknown_field_is_refused_under_strict(server):
    call(server, "POST", DEPLOYMENTS, deployment())
    status, error = call(server, "PATCH", f"{WEB}?fieldValidation=Strict", ADD_UNKNOWN, JSON_PATCH)
    assert status == 400
    assert error["message"] == ('Deployment in version "v1" cannot be handled as a Deployment: strict decoding '
                                'error: unknown field "spec.bogus"')
    assert server.registry.get("deployments", "default", "web")["spec"]["replicas"] == 2  # nothing written


@pytest.mark.parametrize("directive, warned", [("Warn", True), ("Ignore", False), (None, True)])
def test_a_json_patch_under_warn_or_ignore_drops_the_unknown_field_and_warn_says_so(server, directive, warned):
    call(server, "POST", DEPLOYMENTS, deployment())
    query = f"?fieldValidation={directive}" if directive else ""
    connection_status, patched, warning = patch_with_warning(server, f"{WEB}{query}", ADD_UNKNOWN)
    assert connection_status == 200 and patched["spec"]["replicas"] == 4 and "bogus" not in patched["spec"]
    assert (warning == '299 - "unknown field \\"spec.bogus\\""') if warned else warning is None


def test_a_json_patch_of_status_goes_through_field_validation_too(server):
    call(server, "POST", DEPLOYMENTS, deployment())
    status, error = call(server, "PATCH", f"{WEB}/status?fieldValidation=Strict",
                         [{"op": "add", "path": "/status/madeUp", "value": "x"}], JSON_PATCH)
    assert status == 400 and 'unknown field "status.madeUp"' in error["message"]


def patch_with_warning(server, path: str, body) -> tuple[int, dict, str | None]:
    import json

    from minikube_py.client.transport import UnixHTTPConnection

    connection = UnixHTTPConnection(server.socket_path, timeout=10)
    connection.request("PATCH", path, json.dumps(body).encode(), {"Content-Type": JSON_PATCH})
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    return response.status, answer, response.getheader("Warning")


# -- apply through the status and scale subresources ----------------------------------------------

def test_apply_to_status_owns_status_fields_under_the_status_subresource_and_leaves_spec(server):
    call(server, "PATCH", f"{WEB}?fieldManager=gitops", deployment(), APPLY)
    config = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
              "spec": {"replicas": 9}, "status": {"replicas": 2, "observedGeneration": 1}}
    status, applied = call(server, "PATCH", f"{WEB}/status?fieldManager=my-controller", config, APPLY)
    assert status == 200
    assert applied["status"]["replicas"] == 2 and applied["spec"]["replicas"] == 2  # spec is not the status's
    entry = entries(applied)[("my-controller", "Apply")]
    assert entry["subresource"] == "status"
    assert entry["fieldsV1"] == {"f:status": {"f:observedGeneration": {}, "f:replicas": {}}}


def test_apply_to_the_status_of_a_missing_object_is_404(server):
    config = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "status": {"replicas": 1}}
    status, error = call(server, "PATCH", f"{WEB}/status?fieldManager=x", config, APPLY)
    assert status == 404 and error["reason"] == "NotFound"


def test_apply_to_scale_sets_replicas_owned_under_scale_and_conflicts_with_the_applier_of_replicas(server):
    call(server, "PATCH", f"{WEB}?fieldManager=gitops", deployment(), APPLY)
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"}, "spec": {"replicas": 5}}
    status, error = call(server, "PATCH", f"{WEB}/scale?fieldManager=autoscaler", scale, APPLY)
    assert status == 409 and 'conflict with "gitops"' in error["message"] and ".spec.replicas" in error["message"]
    status, answered = call(server, "PATCH", f"{WEB}/scale?fieldManager=autoscaler&force=true", scale, APPLY)
    assert status == 200 and answered["kind"] == "Scale" and answered["spec"]["replicas"] == 5
    stored = server.registry.get("deployments", "default", "web")
    assert stored["spec"]["replicas"] == 5
    entry = entries(stored)[("autoscaler", "Apply")]
    assert entry["subresource"] == "scale" and entry["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in entries(stored)[("gitops", "Apply")]["fieldsV1"]["f:spec"]  # forced away


@pytest.mark.parametrize("scale, code", [
    ({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 1}}, 400),
    ({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"}, "spec": {"replicas": "3"}}, 422),
    ({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "other"}, "spec": {"replicas": 1}}, 400),
])
def test_an_apply_to_scale_that_is_not_a_good_scale_is_refused(server, scale, code):
    call(server, "PATCH", f"{WEB}?fieldManager=gitops", deployment(), APPLY)
    status, error = call(server, "PATCH", f"{WEB}/scale?fieldManager=autoscaler", scale, APPLY)
    assert status == code, error


# -- bad input: an apply patch whose types do not fit ----------------------------------------------

@pytest.mark.parametrize("change, field", [
    ({"spec": {"template": {"spec": {"containers": {"name": "main"}}}}}, ".spec.template.spec.containers"),
    ({"spec": {"replicas": "two"}}, ".spec.replicas"),
    ({"metadata": {"name": "web", "labels": ["app"]}}, ".metadata.labels"),
])
def test_an_apply_patch_with_a_type_mismatch_is_a_400_status_and_leaks_nothing(server, change, field):
    import os
    import threading
    import time

    call(server, "PATCH", f"{WEB}?fieldManager=gitops", deployment(), APPLY)
    descriptors, threads = len(os.listdir("/proc/self/fd")), threading.active_count()
    config = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, **change}
    for _ in range(10):
        status, error = call(server, "PATCH", f"{WEB}?fieldManager=gitops", config, APPLY)
        assert status == 400 and error["kind"] == "Status" and error["reason"] == "BadRequest"
        assert error["message"].startswith("failed to create typed patch object (default/web; apps/v1, "
                                           f"Kind=Deployment): {field}: expected ")
    deadline = time.monotonic() + 10
    while len(os.listdir("/proc/self/fd")) > descriptors or threading.active_count() > threads:
        assert time.monotonic() < deadline, "descriptors or threads were left behind"
        time.sleep(0.01)
    status, stored = call(server, "GET", WEB)
    assert status == 200 and stored["spec"]["replicas"] == 2  # nothing was written, and it still serves
