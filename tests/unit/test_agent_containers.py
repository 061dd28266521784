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


# ---- securityContext: what confines the container --------------------------------------------

ROOT_IMAGE = ResolvedImage("busybox", "sha256:4", cmd=["sh"], user="")


def test_a_container_with_no_security_context_gets_docker_defaults_and_runtime_default_seccomp():
    config = config_for(make_pod({"name": "app", "image": "img"}))
    assert config.capabilities is None and not config.privileged and not config.read_only_rootfs
    assert config.no_new_privileges is False  # allowPrivilegeEscalation unset: kubelet sets no no_new_privs
    assert config.seccomp_profile == "runtime/default"
    assert config.supplemental_groups == [] and config.devices == []


@pytest.mark.parametrize("capabilities, expected", [
    ({"drop": ["ALL"]}, []),
    ({"drop": ["ALL"], "add": ["NET_ADMIN", "chown"]}, ["CAP_NET_ADMIN", "CAP_CHOWN"]),
    ({"add": ["SYS_TIME"], "drop": ["NET_RAW", "CAP_MKNOD"]},
     ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
      "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_AUDIT_WRITE", "CAP_SETFCAP", "CAP_SYS_TIME"]),
    ({"add": ["ALL"], "drop": ["SYS_ADMIN"]}, "all but CAP_SYS_ADMIN"),
    ({}, None),
])
def test_capabilities_add_and_drop_apply_to_dockers_default_set_as_containerd_does(capabilities, expected):
    from minikube_py.runtime.linux import ALL_CAPABILITY_NUMBERS

    config = config_for(make_pod({"name": "app", "image": "img", "securityContext": {"capabilities": capabilities}}))
    if expected == "all but CAP_SYS_ADMIN":
        expected = [name for name in ALL_CAPABILITY_NUMBERS if name != "CAP_SYS_ADMIN"]
    assert config.capabilities == expected


@pytest.mark.parametrize("pod_profile, container_profile, default, expected", [
    (None, None, True, "runtime/default"),
    (None, None, False, "unconfined"),
    ({"type": "Unconfined"}, None, True, "unconfined"),
    ({"type": "Unconfined"}, {"type": "RuntimeDefault"}, False, "runtime/default"),
    ({"type": "Localhost", "localhostProfile": "team/strict.json"}, None, True, "localhost//home/seccomp/team/strict.json"),
])
def test_the_seccomp_profile_comes_from_the_container_then_the_pod_then_the_node_default(
        pod_profile, container_profile, default, expected):
    container = {"name": "app", "image": "img"}
    if container_profile:
        container["securityContext"] = {"seccompProfile": container_profile}
    pod = make_pod(container, **({"securityContext": {"seccompProfile": pod_profile}} if pod_profile else {}))
    config = build_container_config(pod, pod.spec.containers[0], IMAGE, 0, "/home/pods/uid-123", "10.244.0.7",
                                    "192.168.1.5", seccomp_profiles_dir="/home/seccomp", seccomp_default=default)
    assert config.seccomp_profile == expected


def test_privileged_read_only_root_and_no_new_privs_are_passed_on():
    config = config_for(make_pod({"name": "app", "image": "img", "securityContext": {
        "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False}}))
    assert config.read_only_rootfs and config.no_new_privileges and not config.privileged
    privileged = config_for(make_pod({"name": "app", "image": "img", "securityContext": {"privileged": True}}))
    assert privileged.privileged and not privileged.no_new_privileges


def test_supplemental_groups_then_fs_group_join_the_user_and_fs_group_owns_memory_volumes():
    pod = make_pod({"name": "app", "image": "img", "volumeMounts": [{"name": "cache", "mountPath": "/cache"}]},
                   securityContext={"fsGroup": 2000, "supplementalGroups": [3000, 3001]},
                   volumes=[{"name": "cache", "emptyDir": {"medium": "Memory"}}])
    config = config_for(pod)
    assert config.supplemental_groups == [3000, 3001, 2000]
    cache = next(mount for mount in config.mounts if mount.destination == "/cache")
    # The pod's tmpfs (made and owned by the fsGroup in agent/volumes.py), bound like any volume.
    assert cache.type == "bind" and cache.source.endswith("/volumes/cache")


def test_the_devices_annotation_asks_for_optional_devices():
    pod = make_pod({"name": "app", "image": "img"})
    pod.metadata.annotations = {"minikube-py.io/devices": "fuse"}
    assert config_for(pod).devices == ["fuse"]


@pytest.mark.parametrize("pod_context, container_context, image, message", [
    ({"runAsNonRoot": True}, {}, ROOT_IMAGE,
     'container has runAsNonRoot and image will run as root (pod: "web-1_shop(uid-123)", container: app)'),
    ({}, {"runAsNonRoot": True, "runAsUser": 0}, IMAGE,
     'container\'s runAsUser breaks non-root policy (pod: "web-1_shop(uid-123)", container: app)'),
    ({"runAsNonRoot": True}, {}, ResolvedImage("ghost", "sha256:5", cmd=["sh"], user="ghost"),
     'container has runAsNonRoot and image has non-numeric user (ghost), cannot verify user is non-root '
     '(pod: "web-1_shop(uid-123)", container: app)'),
])
def test_run_as_non_root_refuses_root_with_kubelets_messages(pod_context, container_context, image, message):
    pod = make_pod({"name": "app", "image": "img", "securityContext": container_context}, securityContext=pod_context)
    with pytest.raises(ContainerRuntimeError) as raised:
        config_for(pod, image)
    assert raised.value.reason == "CreateContainerConfigError" and raised.value.message == message


def test_run_as_non_root_accepts_a_non_root_user_from_the_image_or_the_spec():
    assert config_for(make_pod({"name": "app", "image": "img"}, securityContext={"runAsNonRoot": True})).uid == 1000
    pod = make_pod({"name": "app", "image": "img", "securityContext": {"runAsNonRoot": False}},
                   securityContext={"runAsNonRoot": True})
    assert config_for(pod, ROOT_IMAGE).uid == 0  # the container's false wins over the pod's true
