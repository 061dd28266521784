"""configMap, secret, downwardAPI and projected volumes in the Pod model: Kubernetes' defaults and
validation messages, as a table."""

import pytest

from minikube_py import api
from minikube_py.api import errors


def pod_with(volume: dict, mount: dict | None = None) -> dict:
    container = {"name": "app", "image": "busybox"}
    if mount is not None:
        container["volumeMounts"] = [{"name": "v", "mountPath": "/v", **mount}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [container], "volumes": [{"name": "v", **volume}]}}


def problems_of(manifest: dict) -> str:
    with pytest.raises(errors.Invalid) as caught:
        api.parse_object(manifest)
    return str(caught.value.message)


def test_every_default_mode_is_0644_and_a_token_lives_an_hour():
    pod = api.parse_object(pod_with({"projected": {"sources": [
        {"serviceAccountToken": {"path": "token"}}, {"configMap": {"name": "c"}}]}}))
    projected = pod.spec.volumes[0].projected
    assert projected.default_mode == 0o644 == 420
    assert projected.sources[0].service_account_token.expiration_seconds == 3600
    for source in ({"configMap": {"name": "c"}}, {"secret": {"secretName": "s"}}, {"downwardAPI": {}}):
        volume = api.parse_object(pod_with(source)).spec.volumes[0]
        wire = volume.to_dict()
        assert wire[next(iter(source))]["defaultMode"] == 420
    assert "downwardAPI" in api.parse_object(pod_with({"downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}})).spec.volumes[0].to_dict()


VALID = [
    {"configMap": {"name": "c", "items": [{"key": "a", "path": "dir/a.conf", "mode": 0o400}], "optional": True}},
    {"secret": {"secretName": "s", "defaultMode": 0o600, "items": [{"key": "tls.crt", "path": "tls.crt"}]}},
    {"downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "tier", "fieldRef": {"fieldPath": "metadata.labels['tier']"}},
        {"path": "cpu", "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu", "divisor": "1m"}}]}},
    {"projected": {"sources": [
        {"configMap": {"name": "c", "items": [{"key": "a", "path": "a"}]}},
        {"secret": {"name": "s", "items": [{"key": "b", "path": "b"}]}},
        {"downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
        {"serviceAccountToken": {"path": "token", "audience": "vault", "expirationSeconds": 600}}]}},
]


@pytest.mark.parametrize("volume", VALID)
def test_valid_api_data_volumes_are_accepted(volume):
    api.parse_object(pod_with(volume))


MODE = "must be a number between 0 and 0777 (octal), both inclusive"
BAD = [
    ("configMap without a name", {"configMap": {}}, None, "spec.volumes[0].configMap.name: Required value"),
    ("secret without a name", {"secret": {}}, None, "spec.volumes[0].secret.secretName: Required value"),
    ("defaultMode too large", {"configMap": {"name": "c", "defaultMode": 512}}, None,
     f"spec.volumes[0].configMap.defaultMode: Invalid value: 512: {MODE}"),
    ("negative item mode", {"secret": {"secretName": "s", "items": [{"key": "a", "path": "a", "mode": -1}]}}, None,
     f"spec.volumes[0].secret.items[0].mode: Invalid value: -1: {MODE}"),
    ("item without key", {"configMap": {"name": "c", "items": [{"path": "a"}]}}, None,
     "spec.volumes[0].configMap.items[0].key: Required value"),
    ("item without path", {"configMap": {"name": "c", "items": [{"key": "a"}]}}, None,
     "spec.volumes[0].configMap.items[0].path: Required value"),
    ("absolute item path", {"configMap": {"name": "c", "items": [{"key": "a", "path": "/etc/a"}]}}, None,
     'spec.volumes[0].configMap.items[0].path: Invalid value: "/etc/a": must be a relative path'),
    ("item path climbing out", {"configMap": {"name": "c", "items": [{"key": "a", "path": "x/../../a"}]}}, None,
     "spec.volumes[0].configMap.items[0].path: Invalid value: \"x/../../a\": must not contain '..'"),
    ("item path on the writer's names", {"configMap": {"name": "c", "items": [{"key": "a", "path": "..data"}]}}, None,
     "spec.volumes[0].configMap.items[0].path: Invalid value: \"..data\": must not start with '..'"),
    ("two volume types", {"configMap": {"name": "c"}, "secret": {"secretName": "s"}}, None,
     "spec.volumes[0].secret: Forbidden: may not specify more than 1 volume type"),
    ("downward file naming a node field", {"downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "spec.nodeName"}}]}},
     None, 'spec.volumes[0].downwardAPI.items[0].fieldRef.fieldPath: Unsupported value: "spec.nodeName": supported values: '
     '"metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid"'),
    ("downward file with both refs", {"downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"},
                                                                  "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu"}}]}},
     None, 'spec.volumes[0].downwardAPI.items[0]: Invalid value: "resource": fieldRef and resourceFieldRef can not be specified simultaneously'),
    ("downward file with no ref", {"downwardAPI": {"items": [{"path": "n"}]}}, None,
     "spec.volumes[0].downwardAPI.items[0]: Required value: one of fieldRef and resourceFieldRef is required"),
    ("downward resource without container", {"downwardAPI": {"items": [{"path": "n", "resourceFieldRef": {"resource": "limits.cpu"}}]}},
     None, "spec.volumes[0].downwardAPI.items[0].resourceFieldRef.containerName: Required value"),
    ("downward subscript on a plain field", {"downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name['x']"}}]}},
     None, "spec.volumes[0].downwardAPI.items[0].fieldRef: Invalid value: \"metadata.name['x']\": does not support subscript"),
    ("projection with two sources", {"projected": {"sources": [{"configMap": {"name": "c"}, "secret": {"name": "s"}}]}}, None,
     "spec.volumes[0].projected.sources[0]: Forbidden: may not specify more than 1 volume type per source"),
    ("projection with no source", {"projected": {"sources": [{}]}}, None,
     "spec.volumes[0].projected.sources[0]: Required value: must specify exactly 1 volume type per source"),
    ("short token", {"projected": {"sources": [{"serviceAccountToken": {"path": "t", "expirationSeconds": 599}}]}}, None,
     "spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds: Invalid value: 599: "
     "may not specify a duration less than 10 minutes"),
    ("endless token", {"projected": {"sources": [{"serviceAccountToken": {"path": "t", "expirationSeconds": 2**32 + 1}}]}}, None,
     "spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds: Invalid value: 4294967297: "
     "may not specify a duration larger than 2^32 seconds"),
    ("token without path", {"projected": {"sources": [{"serviceAccountToken": {}}]}}, None,
     "spec.volumes[0].projected.sources[0].serviceAccountToken.path: Required value"),
    ("projected paths that collide", {"projected": {"sources": [
        {"configMap": {"name": "c", "items": [{"key": "a", "path": "same"}]}},
        {"secret": {"name": "s", "items": [{"key": "b", "path": "same"}]}}]}}, None,
     'spec.volumes[0].projected: Invalid value: "s": conflicting duplicate paths'),
    ("subPath and subPathExpr", {"emptyDir": {}}, {"subPath": "a", "subPathExpr": "$(POD)"},
     'spec.containers[0].volumeMounts[0].subPathExpr: Invalid value: "$(POD)": subPathExpr and subPath are mutually exclusive'),
    ("absolute subPathExpr", {"emptyDir": {}}, {"subPathExpr": "/$(POD)"},
     'spec.containers[0].volumeMounts[0].subPathExpr: Invalid value: "/$(POD)": must be a relative path'),
    ("subPath climbing out", {"emptyDir": {}}, {"subPath": "../x"},
     "spec.containers[0].volumeMounts[0].subPath: Invalid value: \"../x\": must not contain '..'"),
]


@pytest.mark.parametrize("volume, mount, expected", [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_api_data_volumes_get_kubernetes_messages(volume, mount, expected):
    assert expected in problems_of(pod_with(volume, mount))
