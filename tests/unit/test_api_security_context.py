"""securityContext fields the API accepts, with Kubernetes' names and validation messages."""

import pytest

from minikube_py.api.core import Pod
from minikube_py.api.validation import validate_object


def problems(pod_context: dict | None = None, container_context: dict | None = None) -> list[tuple[str, str]]:
    container = {"name": "app", "image": "busybox"}
    if container_context is not None:
        container["securityContext"] = container_context
    spec = {"containers": [container], **({"securityContext": pod_context} if pod_context is not None else {})}
    return validate_object(Pod.model_validate({"metadata": {"name": "p", "namespace": "default"}, "spec": spec}))


def test_every_supported_field_round_trips_on_the_wire():
    pod_context = {"runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": True, "supplementalGroups": [3000],
                   "fsGroup": 2000, "seccompProfile": {"type": "RuntimeDefault"}}
    container_context = {"capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}, "privileged": False,
                         "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                         "seccompProfile": {"type": "Localhost", "localhostProfile": "team/p.json"}}
    pod = Pod.model_validate({"metadata": {"name": "p"}, "spec": {"securityContext": pod_context, "containers": [
        {"name": "app", "image": "busybox", "securityContext": container_context}]}})
    assert pod.to_dict()["spec"]["securityContext"] == pod_context
    assert pod.to_dict()["spec"]["containers"][0]["securityContext"] == container_context
    assert problems(pod_context, container_context) == []


@pytest.mark.parametrize("profile, expected", [
    ({"type": "Sometimes"}, ("spec.securityContext.seccompProfile.type",
                             'Unsupported value: "Sometimes": supported values: "Localhost", "RuntimeDefault", "Unconfined"')),
    ({"type": ""}, ("spec.securityContext.seccompProfile.type", "Required value: type is required when seccompProfile is set")),
    ({"type": "Localhost"}, ("spec.securityContext.seccompProfile.localhostProfile",
                             "Required value: must be set when seccomp type is Localhost")),
    ({"type": "Localhost", "localhostProfile": "/etc/p.json"}, ("spec.securityContext.seccompProfile.localhostProfile",
                                                                'Invalid value: "/etc/p.json": must be a relative path')),
    ({"type": "Localhost", "localhostProfile": "../p.json"}, ("spec.securityContext.seccompProfile.localhostProfile",
                                                              "Invalid value: \"../p.json\": must not contain '..'")),
    ({"type": "RuntimeDefault", "localhostProfile": "p.json"}, ("spec.securityContext.seccompProfile.localhostProfile",
     'Invalid value: {"localhostProfile":"p.json","type":"RuntimeDefault"}: can only be set when seccomp type is Localhost')),
])
def test_seccomp_profile_validation_messages(profile, expected):
    assert problems({"seccompProfile": profile}) == [expected]


def test_container_level_seccomp_profile_is_validated_at_its_own_path():
    assert problems(container_context={"seccompProfile": {"type": "Localhost"}}) == [
        ("spec.containers[0].securityContext.seccompProfile.localhostProfile",
         "Required value: must be set when seccomp type is Localhost")]


def test_supplemental_groups_are_group_ids():
    assert problems({"supplementalGroups": [5, -1]}) == [
        ("spec.securityContext.supplementalGroups[1]", "Invalid value: -1: must be between 0 and 2147483647, inclusive")]


def test_no_privilege_escalation_with_sys_admin_is_refused():
    [(path, message)] = problems(container_context={"allowPrivilegeEscalation": False,
                                                    "capabilities": {"add": ["SYS_ADMIN"]}})
    assert path == "spec.containers[0].securityContext"
    assert message.endswith("cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN")


def test_unknown_security_context_fields_are_still_refused():
    with pytest.raises(Exception, match="procMount"):
        Pod.model_validate({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "app", "image": "busybox", "securityContext": {"procMount": "Unmasked"}}]}})
