"""Validation of lifecycle hooks and sidecar containers, with Kubernetes' field paths and messages."""

import pytest

from minikube_py import api
from minikube_py.api import errors


def pod(containers=None, init_containers=None, **spec) -> dict:
    spec = {"containers": containers or [{"name": "web", "image": "busybox"}], **spec}
    if init_containers is not None:
        spec["initContainers"] = init_containers
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": spec}


def with_lifecycle(lifecycle: dict, **spec) -> dict:
    return pod([{"name": "web", "image": "busybox", "lifecycle": lifecycle}], **spec)


def problems(manifest: dict) -> list[str]:
    with pytest.raises(errors.Invalid) as caught:
        api.parse_object(manifest)
    return [cause["field"] + ": " + cause["message"] for cause in caught.value.details["causes"]]


@pytest.mark.parametrize("lifecycle, grace", [
    ({"postStart": {"exec": {"command": ["touch", "/started"]}}}, 30),
    ({"preStop": {"httpGet": {"path": "/quit", "port": 8080}}}, 30),
    ({"preStop": {"sleep": {"seconds": 30}}}, 30),
    ({"preStop": {"sleep": {"seconds": 0}}}, 30),
    ({"preStop": {"tcpSocket": {"port": 80}}}, 30),  # deprecated: accepted, fails when run
])
def test_valid_hooks_are_accepted(lifecycle, grace):
    parsed = api.parse_object(with_lifecycle(lifecycle, terminationGracePeriodSeconds=grace))
    assert parsed.spec.containers[0].lifecycle is not None


@pytest.mark.parametrize("manifest, expected", [
    (with_lifecycle({"postStart": {}}),
     'spec.containers[0].lifecycle.postStart: Required value: must specify a handler type'),
    (with_lifecycle({"preStop": {"exec": {"command": ["x"]}, "sleep": {"seconds": 1}}}),
     'spec.containers[0].lifecycle.preStop.sleep: Forbidden: may not specify more than 1 handler type'),
    (with_lifecycle({"preStop": {"sleep": {"seconds": 31}}}),
     'spec.containers[0].lifecycle.preStop.sleep: Invalid value: 31: must be non-negative and less than '
     'terminationGracePeriodSeconds (30)'),
    (with_lifecycle({"preStop": {"sleep": {"seconds": 5}}}, terminationGracePeriodSeconds=2),
     'spec.containers[0].lifecycle.preStop.sleep: Invalid value: 5: must be non-negative and less than '
     'terminationGracePeriodSeconds (2)'),
    (with_lifecycle({"postStart": {"sleep": {"seconds": -1}}}),
     'spec.containers[0].lifecycle.postStart.sleep: Invalid value: -1: must be non-negative and less than '
     'terminationGracePeriodSeconds (30)'),
    (with_lifecycle({"postStart": {"exec": {}}}), 'spec.containers[0].lifecycle.postStart.exec.command: Required value'),
    (with_lifecycle({"preStop": {"httpGet": {"port": 0}}}),
     'spec.containers[0].lifecycle.preStop.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive'),
    (pod([{"name": "web", "image": "busybox", "restartPolicy": "Always"}]),
     'spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers'),
    (pod(init_containers=[{"name": "init", "image": "busybox", "restartPolicy": "OnFailure"}]),
     'spec.initContainers[0].restartPolicy: Unsupported value: "OnFailure": supported values: "Always"'),
    (pod(init_containers=[{"name": "init", "image": "busybox", "lifecycle": {"preStop": {"sleep": {"seconds": 1}}}}]),
     'spec.initContainers[0].lifecycle: Forbidden: may not be set for init containers without restartPolicy=Always'),
])
def test_bad_hooks_and_restart_policies_are_rejected_with_kubernetes_messages(manifest, expected):
    assert expected in problems(manifest)


def test_a_sidecar_may_have_probes_and_hooks():
    parsed = api.parse_object(pod(init_containers=[{
        "name": "proxy", "image": "busybox", "restartPolicy": "Always",
        "readinessProbe": {"exec": {"command": ["true"]}},
        "startupProbe": {"exec": {"command": ["true"]}},
        "lifecycle": {"preStop": {"sleep": {"seconds": 1}}},
    }]))
    assert parsed.spec.init_containers[0].restart_policy == "Always"
