"""OpenAPI documents, the schema's merge rules and fieldValidation, as kubectl reads and uses them."""

import json

import pytest

from minikube_py import api
from minikube_py.api import schema
from minikube_py.apiserver import openapi
from minikube_py.apiserver.patch import STRATEGIC_MERGE_PATCH, apply_patch
from tests.unit import api_harness
from tests.unit.api_harness import running_server

V1_PATH = "/openapi/v3/api/v1"


def reachable_models():
    seen = []
    pending = [info.model for info in api.RESOURCES.values()]
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.append(model)
        pending += [element for name in schema.fields_of(model)
                    if (element := schema.element_model(model, name)) is not None]
    return seen


def test_every_merge_rule_names_a_field_of_a_served_model():
    models = {model.__name__: model for model in reachable_models()}
    for (class_name, field), rule in schema.MERGE_RULES.items():
        assert class_name in models, class_name
        assert field in schema.fields_of(models[class_name]), (class_name, field)
        shape = schema.fields_of(models[class_name])[field].shape
        assert (shape.kind == "array") == (rule.list_type is not None), (class_name, field)
        if rule.list_type == "map":
            element = schema.element_model(models[class_name], field)
            assert set(rule.list_map_keys) <= set(schema.fields_of(element)), (class_name, field)


def test_every_kinds_conditions_merge_by_type_without_an_entry():
    """A kind added later (storage's PersistentVolumeClaim, ...) gets Kubernetes' conditions rule."""
    for model in reachable_models():
        field = schema.fields_of(model).get("conditions")
        if field is not None and field.shape.kind == "array" and model.__name__ != "JobStatus":
            rule = schema.merge_rule(model, "conditions")
            assert rule is not None and rule.list_map_keys == ("type",) and rule.patch_merge_key == "type", model
    assert schema.merge_rule(api.EndpointSliceEndpoint, "conditions") is None  # an object, not a list


def test_the_v3_index_points_at_one_document_per_group_version_with_its_hash():
    index = openapi.v3_index()
    assert set(index["paths"]) == {"api/v1", "apis/apps/v1", "apis/batch/v1", "apis/discovery.k8s.io/v1",
                                   "apis/coordination.k8s.io/v1"} | {
        openapi.group_version_path(served.api_version) for info in api.RESOURCES.values() for served in info.versions}
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    assert url == f"/openapi/v3/apis/apps/v1?hash={openapi.v3_hash('apps/v1')}"


def test_every_kind_has_a_patch_operation_with_its_gvk_and_field_validation():
    """What kubectl's QueryParamVerifierV3 looks for before it leaves validation to the server."""
    for info in api.RESOURCES.values():
        document = openapi.v3_document(info.api_version)
        group, _, version = info.api_version.rpartition("/")
        patches = [item["patch"] for item in document["paths"].values() if "patch" in item
                   and item["patch"]["x-kubernetes-group-version-kind"] == {"group": group, "version": version,
                                                                             "kind": info.kind}]
        assert len(patches) == 1, info.kind
        assert "fieldValidation" in [parameter["name"] for parameter in patches[0]["parameters"]]


def test_each_kind_schema_carries_its_gvk_and_kubectl_explain_finds_fields_through_refs():
    document = openapi.v3_document("v1")
    schemas = document["components"]["schemas"]
    pod = schemas["io.k8s.api.core.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod", "version": "v1"}]
    spec_ref = pod["properties"]["spec"]["allOf"][0]["$ref"]
    assert spec_ref == "#/components/schemas/io.k8s.api.core.v1.PodSpec"
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["type"] == "array"
    assert containers["items"]["allOf"][0]["$ref"] == "#/components/schemas/io.k8s.api.core.v1.Container"
    assert "name" in schemas["io.k8s.api.core.v1.Container"]["required"]
    deployment = openapi.v3_document("apps/v1")["components"]["schemas"]
    assert "io.k8s.api.core.v1.PodSpec" in deployment  # another package's types are in the document too
    assert deployment["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["type"] == "object"


@pytest.mark.parametrize("definition, field, expected", [
    ("io.k8s.api.core.v1.PodSpec", "containers", {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": [
        "name"], "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "name"}),
    ("io.k8s.api.core.v1.PodSpec", "volumes", {"x-kubernetes-patch-strategy": "merge,retainKeys"}),
    ("io.k8s.api.core.v1.Container", "ports", {"x-kubernetes-list-map-keys": ["containerPort", "protocol"],
                                               "x-kubernetes-patch-merge-key": "containerPort"}),
    ("io.k8s.api.core.v1.ServiceSpec", "ports", {"x-kubernetes-list-map-keys": ["port", "protocol"],
                                                 "x-kubernetes-patch-merge-key": "port"}),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "finalizers", {"x-kubernetes-list-type": "set"}),
    ("io.k8s.api.core.v1.Container", "command", {"type": "array"}),
])
def test_lists_carry_kubernetes_list_types_and_patch_extensions(definition, field, expected):
    for document, key in ((openapi.v3_document("v1")["components"]["schemas"], definition),
                          (openapi.v2_document()["definitions"], definition)):
        value = document[key]["properties"][field]
        assert {name: value.get(name) for name in expected} == expected
    if field == "command":
        assert "x-kubernetes-patch-merge-key" not in value


def test_int_or_string_and_quantity_are_kubernetes_definitions():
    schemas = openapi.v2_document()["definitions"]
    port = schemas["io.k8s.api.core.v1.HTTPGetAction"]["properties"]["port"]
    assert port == {"$ref": "#/definitions/io.k8s.apimachinery.pkg.util.intstr.IntOrString"}
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string"
    limits = schemas["io.k8s.api.core.v1.ResourceRequirements"]["properties"]["limits"]
    assert limits["additionalProperties"] == {"$ref": "#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity"}
    replicas = openapi.v2_document()["definitions"]["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["replicas"]
    assert replicas == {"type": "integer", "format": "int32"}


def all_refs(value):
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref":
                yield item
            else:
                yield from all_refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from all_refs(item)


def test_every_reference_resolves_inside_its_document():
    v2 = openapi.v2_document()
    assert {ref.removeprefix("#/definitions/") for ref in all_refs(v2)} <= set(v2["definitions"])
    for group_version in {info.api_version for info in api.RESOURCES.values()}:
        v3 = openapi.v3_document(group_version)
        assert {ref.removeprefix("#/components/schemas/") for ref in all_refs(v3)} <= set(v3["components"]["schemas"])


def test_strategic_merge_uses_the_schema_merge_keys_per_path():
    service = {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}}
    patched = apply_patch(service, {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}, STRATEGIC_MERGE_PATCH,
                          api.Service)
    assert patched["spec"]["ports"] == [{"port": 80, "targetPort": 9090}, {"port": 443}]
    pod = {"metadata": {"finalizers": ["a"]},
           "spec": {"containers": [{"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}]},
                                   {"name": "b", "image": "y"}]}}
    patch = {"metadata": {"finalizers": ["b"]},
             "spec": {"containers": [{"name": "a", "env": [{"name": "B", "value": "2"}]}]}}
    patched = apply_patch(pod, patch, STRATEGIC_MERGE_PATCH, api.Pod)
    assert patched["metadata"]["finalizers"] == ["a", "b"]
    assert patched["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert patched["spec"]["containers"][1] == {"name": "b", "image": "y"}
    # An atomic list (command) is replaced whole.
    patched = apply_patch({"spec": {"containers": [{"name": "a", "command": ["x", "y"]}]}},
                          {"spec": {"containers": [{"name": "a", "command": ["z"]}]}}, STRATEGIC_MERGE_PATCH, api.Pod)
    assert patched["spec"]["containers"][0]["command"] == ["z"]


def test_unknown_fields_are_named_by_path_and_dropped_by_path():
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "colour": "red"},
            "spec": {"containers": [{"name": "a", "image": "x", "imag": "y"}], "$setElementOrder/containers": []},
            "extra": 1}
    unknown = schema.unknown_fields(api.Pod, body)
    assert unknown == ["metadata.colour", "spec.containers[0].imag", "extra"]
    dropped = schema.drop_fields(body, unknown, api.Pod)
    assert dropped["metadata"] == {"name": "a"} and "extra" not in dropped
    assert dropped["spec"]["containers"] == [{"name": "a", "image": "x"}]


# --- over HTTP ---------------------------------------------------------------------------


@pytest.fixture
def server(tmp_path):
    with running_server(tmp_path) as server:
        yield server


def exchange(server, method, path, body=None, headers=None):
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    status, response_headers, payload = api_harness.exchange(
        server, method, path, data, {"Content-Type": "application/json", **(headers or {})})
    return status, response_headers.get_all("Warning") or [], payload


def config_map(**extra):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "1"}, **extra}


CONFIG_MAPS = "/api/v1/namespaces/default/configmaps"


def test_strict_refuses_unknown_and_duplicate_fields_naming_each(server):
    body = b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "name": "again"}, "bogus": 1}'
    status, _, payload = exchange(server, "POST", f"{CONFIG_MAPS}?fieldValidation=Strict", body)
    assert status == 400
    assert json.loads(payload)["message"] == ('ConfigMap in version "v1" cannot be handled as a ConfigMap: strict '
                                              'decoding error: unknown field "bogus", duplicate field "metadata.name"')
    status, _, _ = exchange(server, "GET", f"{CONFIG_MAPS}/again")
    assert status == 404


def test_warn_is_the_default_and_drops_unknown_fields_with_a_warning_header(server):
    status, warnings, payload = exchange(server, "POST", CONFIG_MAPS, config_map(bogus={"x": 1}))
    assert status == 201
    assert warnings == ['299 - "unknown field \\"bogus\\""']
    assert "bogus" not in json.loads(payload)
    status, warnings, payload = exchange(server, "PATCH", f"{CONFIG_MAPS}/settings?fieldValidation=Warn",
                                         {"data": {"b": "2"}, "metadata": {"colour": "red"}},
                                         {"Content-Type": "application/merge-patch+json"})
    assert status == 200 and warnings == ['299 - "unknown field \\"metadata.colour\\""']
    assert json.loads(payload)["data"] == {"a": "1", "b": "2"}


def test_ignore_drops_unknown_fields_silently_and_a_bad_directive_is_400(server):
    status, warnings, payload = exchange(server, "POST", f"{CONFIG_MAPS}?fieldValidation=Ignore", config_map(bogus=1))
    assert (status, warnings) == (201, [])
    status, _, payload = exchange(server, "PUT", f"{CONFIG_MAPS}/settings?fieldValidation=Sometimes", config_map())
    assert status == 400 and "fieldValidation" in json.loads(payload)["message"]


def test_the_openapi_v3_documents_are_served_at_the_index_urls(server):
    status, _, payload = exchange(server, "GET", "/openapi/v3")
    url = json.loads(payload)["paths"]["api/v1"]["serverRelativeURL"]
    status, _, payload = exchange(server, "GET", url)
    assert status == 200 and json.loads(payload) == json.loads(json.dumps(openapi.v3_document("v1")))
    status, _, _ = exchange(server, "GET", "/openapi/v3/apis/nothing.example.com/v1")
    assert status == 404
