"""Building a ContainerConfig from a pod: argv merge rules, env with fieldRef and $(VAR), user, limits."""

import pytest

from minikube_py.agent.containers import build_container_config, cgroup_limits, expand, merge_argv
from minikube_py.api.core import Pod
from minikube_py.runtime.types import ResolvedImage, ContainerRuntimeError

IMAGE = ResolvedImage("img", "sha256:1", entrypoint=["/entry"], cmd=["default-arg"], env=[("PATH", "/bin"), ("MODE", "image")],
                    working_dir="/srv", user="1000:1000")


@pytest.mark.parametrize(
    "command, args, expected",
    [
        (None, None, ["/entry", "default-arg"]),
        (["/bin/sh", "-c", "x"], None, ["/bin/sh", "-c", "x"]),
        (None, ["--flag"], ["/entry", "--flag"]),
        (["/app"], ["--flag"], ["/app", "--flag"]),
    ],
)
def test_command_replaces_entrypoint_and_args_replace_cmd(command, args, expected):
    assert merge_argv(IMAGE.entrypoint, IMAGE.cmd, command, args) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("$(A)-$(B)", "alpha-beta"),
        ("$(MISSING)", "$(MISSING)"),
        ("$$(A)", "$(A)"),
        ("cost $5", "cost $5"),
        ("open $(A", "open $(A"),
        ("trailing $", "trailing $"),
    ],
)
def test_dollar_paren_expansion_follows_kubernetes(text, expected):
    assert expand(text, {"A": "alpha", "B": "beta"}.get) == expected


def make_pod(container: dict, **spec) -> Pod:
    return Pod.model_validate({
        "metadata": {"name": "web-1", "namespace": "shop", "uid": "uid-123", "labels": {"app": "web"}},
        "spec": {"nodeName": "node1", "containers": [container], **spec},
    })


def config_for(pod: Pod, image: ResolvedImage = IMAGE):
    return build_container_config(pod, pod.spec.containers[0], image, 2, "/home/pods/uid-123", "10.244.0.7", "192.168.1.5")


def test_env_gets_field_refs_and_expands_earlier_variables_over_the_image_env():
    pod = make_pod({
        "name": "app", "image": "img",
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "URL", "value": "http://$(POD_IP):80/$(POD_NAME)/$(LATER)"},
            {"name": "MODE", "value": "pod"},
            {"name": "LATER", "value": "x"},
        ],
        "args": ["serve", "$(URL)"],
    })
    config = config_for(pod)
    env = dict(config.env)
    assert env["POD_NAME"] == "web-1" and env["POD_NAMESPACE"] == "shop" and env["POD_UID"] == "uid-123"
    assert env["POD_IP"] == "10.244.0.7" and env["NODE"] == "node1" and env["APP"] == "web"
    assert env["URL"] == "http://10.244.0.7:80/web-1/$(LATER)"  # only variables defined before are expanded
    assert env["MODE"] == "pod" and env["PATH"] == "/bin"
    assert [name for name, _ in config.env][:2] == ["PATH", "MODE"]  # image variables first
    assert config.argv == ["/entry", "serve", "http://10.244.0.7:80/web-1/$(LATER)"]


def test_container_security_context_wins_over_pod_and_image_user():
    pod = make_pod({"name": "app", "image": "img", "securityContext": {"runAsUser": 7}},
                   securityContext={"runAsUser": 5, "runAsGroup": 6})
    config = config_for(pod)
    assert (config.uid, config.gid) == (7, 6)
    assert (config_for(make_pod({"name": "app", "image": "img"})).uid, config_for(make_pod({"name": "app", "image": "img"})).gid) == (1000, 1000)


def test_working_dir_log_path_and_pod_files_are_set():
    config = config_for(make_pod({"name": "app", "image": "img"}))
    assert config.working_dir == "/srv"
    assert config.log_path == "/home/pods/uid-123/logs/app/2.log"
    mounted = {mount.destination: mount.source for mount in config.mounts}
    assert mounted["/etc/hosts"] == "/home/pods/uid-123/etc-hosts"
    assert mounted["/etc/resolv.conf"] == "/home/pods/uid-123/resolv.conf"


def test_volumes_mount_empty_dirs_from_the_pod_directory_and_host_paths_as_given():
    pod = make_pod({"name": "app", "image": "img", "volumeMounts": [
        {"name": "scratch", "mountPath": "/scratch"}, {"name": "host", "mountPath": "/host", "readOnly": True}]},
        volumes=[{"name": "scratch", "emptyDir": {}}, {"name": "host", "hostPath": {"path": "/var/data"}}])
    mounts = {mount.destination: mount for mount in config_for(pod).mounts}
    assert mounts["/scratch"].source == "/home/pods/uid-123/volumes/scratch"
    assert mounts["/host"].source == "/var/data" and mounts["/host"].read_only


def test_limits_become_memory_bytes_cpu_quota_and_shares():
    pod = make_pod({"name": "app", "image": "img", "resources": {
        "limits": {"cpu": "250m", "memory": "64Mi"}, "requests": {"cpu": "100m"}}})
    limits = cgroup_limits(pod.spec.containers[0])
    assert limits.memory_bytes == 64 * 1024 * 1024
    assert (limits.cpu_quota_us, limits.cpu_period_us) == (25_000, 100_000)
    assert limits.cpu_shares == 102
    unlimited = cgroup_limits(make_pod({"name": "app", "image": "img"}).spec.containers[0])
    assert (unlimited.memory_bytes, unlimited.cpu_quota_us, unlimited.cpu_shares) == (None, None, 2)  # BestEffort: minimum shares


def test_an_image_without_command_and_a_spec_without_one_is_a_create_container_error():
    empty = ResolvedImage("scratch", "sha256:2")
    with pytest.raises(ContainerRuntimeError) as raised:
        config_for(make_pod({"name": "app", "image": "scratch"}), empty)
    assert raised.value.reason == "CreateContainerError" and "no command specified" in raised.value.message


def test_an_image_user_missing_from_its_passwd_is_a_config_error_unless_the_pod_sets_run_as_user():
    ghost = ResolvedImage("ghost:1", "sha256:3", cmd=["id"], user="ghost")
    with pytest.raises(ContainerRuntimeError) as raised:
        config_for(make_pod({"name": "app", "image": "ghost:1"}), ghost)
    assert raised.value.reason == "CreateContainerConfigError" and "unable to find user ghost" in raised.value.message
    numeric = make_pod({"name": "app", "image": "ghost:1", "securityContext": {"runAsUser": 1000}})
    assert config_for(numeric, ghost).uid == 1000


def test_service_account_field_ref_is_the_pods_account_or_default_as_kubernetes_admission_sets_it():
    env = [{"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}}]
    assert dict(config_for(make_pod({"name": "app", "image": "img", "env": env})).env)["SA"] == "default"
    named = make_pod({"name": "app", "image": "img", "env": env}, serviceAccountName="builder")
    assert dict(config_for(named).env)["SA"] == "builder"
