"""Label selectors (text and API forms) and field selectors."""

import pytest

from minikube_py.api import LabelSelector, errors
from minikube_py.api.selectors import Selector, get_field, matches_fields, parse_field_selector, parse_selector, selector_to_string

LABELS = {"app": "web", "tier": "frontend", "track": "stable"}

SELECTOR_TABLE = [
    ("app=web", True),
    ("app==web", True),
    ("app = web", True),
    ("app=db", False),
    ("app!=db", True),
    ("app!=web", False),
    ("missing!=x", True),
    ("tier in (frontend, backend)", True),
    ("tier in (backend)", False),
    ("tier notin (backend)", True),
    ("tier notin (frontend,backend)", False),
    ("missing notin (x)", True),
    ("missing in (x)", False),
    ("app", True),
    ("missing", False),
    ("!missing", True),
    ("!app", False),
    ("app=web,tier=frontend", True),
    ("app=web,tier=backend", False),
    ("app=web,!canary,track in (stable)", True),
    ("", True),
]


@pytest.mark.parametrize("text, expected", SELECTOR_TABLE)
def test_label_selector_text_matches_like_kubectl(text, expected):
    assert parse_selector(text).matches(LABELS) is expected


def test_empty_value_matches_an_empty_label():
    assert parse_selector("app=").matches({"app": ""})
    assert not parse_selector("app=").matches({"app": "web"})


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("app=web,", "found end of string, expected: identifier"),
        ("=web", "found '=', expected: identifier"),
        ("app in web", "found 'web', expected: '('"),
        ("app in (a b)", "expected: ',' or ')'"),
        ("app in ()", "values set can't be empty"),
        ("app web", "found 'web', expected: '=', '!=', 'in', 'notin', ',' or end of string"),
        ("a=b=c", "found '=', expected: ',' or end of string"),
        ("app=bad value!", "found"),
        ("bad key=x", "found"),
        ("app=-x", "invalid label selector"),
    ],
)
def test_bad_label_selector_syntax_is_a_clear_bad_request(text, fragment):
    with pytest.raises(errors.BadRequest) as caught:
        parse_selector(text)
    assert fragment in caught.value.message
    assert f'"{text}"' in caught.value.message


def test_missing_api_selector_matches_nothing_and_empty_matches_everything():
    assert not Selector.from_label_selector(None).matches(LABELS)
    assert not Selector.from_label_selector(None).matches({})
    assert Selector.from_label_selector({}).matches(LABELS)
    assert Selector.from_label_selector(LabelSelector()).matches({})
    assert Selector.from_label_selector({}).is_empty()


def test_api_selector_from_model_and_from_wire_dict_agree():
    wire = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["frontend", "backend"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "track", "operator": "Exists"},
            {"key": "env", "operator": "NotIn", "values": ["dev"]},
        ],
    }
    from_dict = Selector.from_label_selector(wire)
    from_model = Selector.from_label_selector(LabelSelector.model_validate(wire))
    assert from_dict == from_model
    assert from_dict.matches(LABELS)
    assert not from_dict.matches({**LABELS, "canary": "yes"})
    assert not from_dict.matches({"app": "web", "tier": "frontend"})


def test_api_selector_with_bad_operator_or_shape_is_a_bad_request():
    with pytest.raises(errors.BadRequest, match="Like"):
        Selector.from_label_selector({"matchExpressions": [{"key": "a", "operator": "Like", "values": ["x"]}]})
    with pytest.raises(errors.BadRequest, match="invalid label selector"):
        Selector.from_label_selector({"matchLabels": "app=web"})


@pytest.mark.parametrize(
    "selector, text",
    [
        ({"matchLabels": {"tier": "fe", "app": "web"}}, "app=web,tier=fe"),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]}, "tier in (be,fe)"),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["x"]},
                               {"key": "b", "operator": "Exists"}, {"key": "c", "operator": "DoesNotExist"}]},
         "a notin (x),b,!c"),
        ({}, ""),
    ],
)
def test_selector_to_string_is_sorted_by_key_like_kubectl_wide_output(selector, text):
    assert selector_to_string(Selector.from_label_selector(selector)) == text


def test_selector_text_round_trips_through_parse():
    text = "app=web,tier in (be,fe),!canary,track,env!=dev"
    parsed = parse_selector(text)
    assert parse_selector(selector_to_string(parsed)) == parsed


POD = {"metadata": {"name": "web-1", "namespace": "default"}, "spec": {"nodeName": "node1"}, "status": {"phase": "Running"}}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("metadata.name=web-1", True),
        ("metadata.name==web-1", True),
        ("metadata.namespace=kube-system", False),
        ("status.phase!=Running", False),
        ("status.phase!=Pending,spec.nodeName=node1", True),
        ("spec.nodeName=", False),
        ("", True),
    ],
)
def test_field_selector_matches_pod_fields(text, expected):
    requirements = parse_field_selector(text, "pods")
    assert matches_fields(POD, requirements) is expected


def test_field_selector_terms_unpack_as_field_operator_value():
    assert [tuple(term) for term in parse_field_selector("status.phase!=Running,metadata.name=a")] == [
        ("status.phase", "!=", "Running"),
        ("metadata.name", "=", "a"),
    ]


def test_unsupported_field_is_a_bad_request_naming_the_field():
    with pytest.raises(errors.BadRequest) as caught:
        parse_field_selector("spec.replicas=3", "pods")
    assert caught.value.message == "field label not supported: spec.replicas"
    with pytest.raises(errors.BadRequest, match="field label not supported: status.phase"):
        parse_field_selector("status.phase=Running", "deployments")


def test_field_selector_without_operator_is_a_bad_request():
    with pytest.raises(errors.BadRequest, match="expected <field>=<value>"):
        parse_field_selector("metadata.name")


def test_get_field_reads_dotted_paths_and_event_sources():
    assert get_field(POD, "spec.nodeName") == "node1"
    assert get_field(POD, "status.podIP") == ""
    assert get_field({"source": {"component": "kubelet"}}, "source") == "kubelet"
    assert get_field({"spec": {"unschedulable": True}}, "spec.unschedulable") == "true"


def test_event_field_selector_finds_events_of_one_object():
    event = {"involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default"}, "type": "Warning"}
    requirements = parse_field_selector("involvedObject.name=web-1,involvedObject.kind=Pod,type=Warning", "events")
    assert matches_fields(event, requirements)
