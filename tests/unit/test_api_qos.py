"""status.qosClass: Kubernetes' rules, and the API server setting it when a pod is created."""

import pytest

from minikube_py import api
from minikube_py.api.qos import pod_qos_class
from minikube_py.apiserver.registry import Registry
from minikube_py.store import Store


def resources(limits=None, requests=None) -> dict:
    result = {}
    if limits is not None:
        result["limits"] = limits
    if requests is not None:
        result["requests"] = requests
    return {"name": "c", "image": "busybox", "resources": result}


def spec_of(*containers, init=()) -> api.PodSpec:
    pod = api.parse_object({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                            "spec": {"containers": [dict(c, name=f"c{i}") for i, c in enumerate(containers)],
                                     "initContainers": [dict(c, name=f"i{i}") for i, c in enumerate(init)]}})
    return pod.spec


BOTH = {"cpu": "500m", "memory": "64Mi"}


@pytest.mark.parametrize("spec, expected", [
    (spec_of(resources()), "BestEffort"),
    (spec_of(resources(limits={"ephemeral-storage": "1Gi"})), "BestEffort"),  # only cpu and memory count
    (spec_of(resources(requests={"cpu": "0"})), "BestEffort"),  # zero is not a request
    (spec_of(resources(limits=BOTH)), "Guaranteed"),  # requests default to limits
    (spec_of(resources(limits=BOTH, requests=BOTH), resources(limits={"cpu": "1", "memory": "1Gi"})), "Guaranteed"),
    (spec_of(resources(limits=BOTH, requests={"cpu": "250m", "memory": "64Mi"})), "Burstable"),
    (spec_of(resources(limits={"memory": "64Mi"})), "Burstable"),  # no cpu limit
    (spec_of(resources(limits=BOTH), resources()), "Burstable"),  # one container without limits
    (spec_of(resources(requests={"memory": "10Mi"})), "Burstable"),
    (spec_of(resources(limits=BOTH), init=[resources()]), "Burstable"),  # init containers count too
    (spec_of(resources(limits=BOTH), init=[resources(limits=BOTH)]), "Guaranteed"),
])
def test_the_qos_class_follows_kubernetes_rules(spec, expected):
    assert pod_qos_class(spec) == expected


def test_the_api_server_sets_the_qos_class_when_a_pod_is_created():
    registry = Registry(Store(":memory:"))
    created = registry.create("pods", "default", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "web", "image": "busybox", "resources": {"limits": BOTH}}]},
        "status": {"qosClass": "BestEffort"},
    })
    assert created["status"]["qosClass"] == "Guaranteed"
