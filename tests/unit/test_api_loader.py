"""Manifest loading: documents, Lists, one clear line per broken document, never an exception."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minikube_py import api
from minikube_py.api import errors

NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n"
POD = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: web\n    image: busybox\n"


def test_multi_document_yaml_gives_one_document_per_object_numbered_from_one():
    documents = api.load_manifests(f"{NAMESPACE}---\n{POD}", "all.yaml")
    assert [(d.index, d.data["kind"], d.error) for d in documents] == [(1, "Namespace", None), (2, "Pod", None)]
    assert all(d.source == "all.yaml" for d in documents)


def test_empty_documents_and_comments_are_skipped_but_keep_the_numbering():
    documents = api.load_manifests(f"---\n# nothing here\n---\n{POD}---\n\n", "web.yaml")
    assert [(d.index, d.data["kind"]) for d in documents] == [(2, "Pod")]


def test_empty_text_gives_no_documents():
    assert api.load_manifests("", "empty.yaml") == []
    assert api.load_manifests("   \n", "empty.json") == []


def test_syntax_error_names_file_document_and_line_of_the_whole_file():
    text = f"{NAMESPACE}---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n    labels: x\n"
    documents = api.load_manifests(text, "manifests/web.yaml")
    assert documents[0].data["kind"] == "Namespace"
    assert documents[1].data is None
    assert documents[1].error == "manifests/web.yaml: document 2: YAML syntax error at line 10: mapping values are not allowed here"


def test_documents_after_a_broken_one_are_still_read():
    documents = api.load_manifests(f"a: [b\n---\n{POD}", "web.yaml")
    assert documents[0].error.startswith("web.yaml: document 1: YAML syntax error at line ")
    assert documents[1].data["metadata"]["name"] == "web"


def test_document_that_is_not_a_mapping_is_reported():
    documents = api.load_manifests("- a\n- b\n---\njust text\n", "list.yaml")
    assert [d.error for d in documents] == [
        "list.yaml: document 1: expected a mapping with apiVersion and kind, got a list",
        "list.yaml: document 2: expected a mapping with apiVersion and kind, got a string",
    ]


def test_missing_api_version_or_kind_is_reported():
    documents = api.load_manifests("kind: Pod\n---\napiVersion: v1\n---\nmetadata: {}\n", "m.yaml")
    assert [d.error for d in documents] == [
        "m.yaml: document 1: apiVersion not set",
        "m.yaml: document 2: kind not set",
        "m.yaml: document 3: apiVersion and kind not set",
    ]


def test_unknown_kind_is_reported_with_the_supported_kinds():
    (document,) = api.load_manifests("apiVersion: v1\nkind: ReplicationController\n", "s.yaml")
    assert document.error.startswith('s.yaml: document 1: no matches for kind "ReplicationController" in version "v1" (supported: ')
    assert "apps/v1 Deployment" in document.error


def test_list_kinds_are_expanded_into_their_items():
    text = json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}},
        {"apiVersion": "v1", "kind": "Thing"},
    ]})
    documents = api.load_manifests(text, "list.json")
    assert documents[0].data["metadata"]["name"] == "a" and documents[0].item == 1
    assert documents[1].error.startswith('list.json: document 1, item 2: no matches for kind "Thing"')


def test_typed_lists_such_as_pod_list_are_expanded_too():
    text = "apiVersion: v1\nkind: PodList\nitems:\n- " + POD.replace("\n", "\n  ").rstrip() + "\n"
    (document,) = api.load_manifests(text, "pods.yaml")
    assert document.data["kind"] == "Pod"


def test_json_manifest_and_json_syntax_error():
    (good,) = api.load_manifests(json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}), "ns.json")
    assert good.data["metadata"]["name"] == "a"
    (bad,) = api.load_manifests('{\n "apiVersion": "v1",\n "kind": }', "ns.json")
    assert bad.error == "ns.json: document 1: JSON syntax error at line 3: Expecting value"


def test_timestamps_stay_strings_and_numeric_keys_become_strings():
    text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  creationTimestamp: 2026-01-02T03:04:05Z\n  annotations:\n    80: x\n"
    (document,) = api.load_manifests(text, "p.yaml")
    assert document.data["metadata"]["creationTimestamp"] == "2026-01-02T03:04:05Z"
    assert document.data["metadata"]["annotations"] == {"80": "x"}


def test_recursive_yaml_aliases_are_an_error_not_a_crash():
    (document,) = api.load_manifests("a: &x [*x]\n", "loop.yaml")
    assert document.error.startswith("loop.yaml: document 1: ")


def test_loaded_document_parses_into_a_model():
    (document,) = api.load_manifests(POD, "web.yaml")
    assert api.parse_object(document.data).spec.containers[0].image == "busybox"


# --- fuzzing: whatever comes in, the result is a value or a clean error ---------------------

_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
_keys = st.sampled_from(
    ["apiVersion", "kind", "metadata", "name", "spec", "containers", "image", "replicas", "selector",
     "matchLabels", "template", "labels", "strategy", "rollingUpdate", "maxSurge", "ports", "containerPort",
     "resources", "limits", "cpu", "livenessProbe", "httpGet", "port", "volumes", "emptyDir", "env", "x"]
) | st.text(max_size=8)
_trees = st.recursive(_scalars, lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=5), max_leaves=30)


def _call_cleanly(function, *args):
    try:
        return function(*args)
    except errors.ApiError as exc:
        assert exc.message
        return exc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_random_text_never_makes_the_loader_raise(text):
    for document in api.load_manifests(text, "fuzz.yaml"):
        assert (document.data is None) != (document.error is None)
        if document.error:
            assert document.error.startswith("fuzz.yaml: document ")
        else:
            _call_cleanly(api.parse_object, document.data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([("v1", "Pod"), ("v1", "Namespace"), ("v1", "Node"), ("v1", "Event"),
                     ("apps/v1", "ReplicaSet"), ("apps/v1", "Deployment"), ("v1", "Nope")]),
    st.dictionaries(_keys, _trees, max_size=6),
)
def test_random_objects_parse_or_fail_with_an_api_error(kind, body):
    data = {**body, "apiVersion": kind[0], "kind": kind[1]}
    result = _call_cleanly(api.parse_object, data)
    if not isinstance(result, errors.ApiError):
        assert result.to_dict()["kind"] == kind[1]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_trees)
def test_random_trees_dumped_as_json_load_and_parse_cleanly(tree):
    text = json.dumps(tree)
    for document in api.load_manifests(text, "fuzz.json"):
        if document.data is not None:
            _call_cleanly(api.parse_object, document.data)


@pytest.mark.parametrize("text, number", [
    ("replicas: 3.0", 3),  # kubectl sends 3: Go writes a float without fraction as an integer
    ("replicas: 1e20", 10**20),  # a number to go-yaml, so the API rejects it as beyond int32
    ("replicas: 1.5", 1.5),  # stays a float: the API says "must be an integer"
])
def test_numbers_are_read_as_kubectl_reads_them(text, number):
    [document] = api.load_manifests(f"apiVersion: apps/v1\nkind: Deployment\nspec:\n  {text}\n")
    assert document.data["spec"]["replicas"] == number
    assert type(document.data["spec"]["replicas"]) is type(number)
