"""configMap, secret, downwardAPI and projected volumes in the node agent: what lands in the pod's
directory, how containers mount it, updates through the `..data` swap, and kubelet's FailedMount."""

import base64
import os

import pytest

from minikube_py.agent import podfiles
from minikube_py.agent.containers import container_env
from minikube_py.agent.volumes import downward_value, format_map, go_quote
from minikube_py.api import parse_object
from minikube_py.apiserver.registry import Registry
from minikube_py.apiserver.serviceaccount_tokens import ISSUER, TokenIssuer, load_or_create_signing_key
from minikube_py.clock import FakeClock
from minikube_py.store import Store
from tests.unit.agent_harness import AgentHarness


@pytest.fixture
def harness(tmp_path):
    harness = AgentHarness(tmp_path)
    harness.start()
    return harness


def config_map(harness, name, data, immutable=None):
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
    if immutable is not None:
        body["immutable"] = immutable
    harness.registry.create("configmaps", "default", body)


def update_config_map(harness, name, data):
    current = harness.registry.get("configmaps", "default", name)
    current["data"] = data
    harness.registry.replace("configmaps", "default", name, current)


def secret(harness, name, data):
    harness.registry.create("secrets", "default", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
        "data": {key: base64.b64encode(value).decode() for key, value in data.items()}})


def volume_path(harness, uid, volume, *parts):
    return os.path.join(podfiles.pod_dir(harness.home, uid), "volumes", volume, *parts)


def read(path):
    with open(path, "rb") as file:
        return file.read()


def mode(path):
    return os.stat(path).st_mode & 0o7777


def mounts_of(harness, uid, name="main"):
    config = harness.runtime.container_configs[harness.runtime.container_for(uid, name).id]
    return {mount.destination: mount for mount in config.mounts}


def mounted(volume_mounts):
    return [{"name": "main", "volumeMounts": volume_mounts}]


def test_a_config_map_volume_has_every_key_with_the_default_mode_and_is_read_only(harness):
    config_map(harness, "app", {"app.properties": "color=blue\n", "level": "info"})
    uid = harness.create_pod("web", mounted([{"name": "config", "mountPath": "/etc/config"}]),
                             volumes=[{"name": "config", "configMap": {"name": "app"}}])
    harness.sync()
    assert harness.status("web")["state"].get("running") is not None
    assert read(volume_path(harness, uid, "config", "app.properties")) == b"color=blue\n"
    assert mode(volume_path(harness, uid, "config", "level")) == 0o644
    assert os.readlink(volume_path(harness, uid, "config", "level")) == "..data/level"
    mount = mounts_of(harness, uid)["/etc/config"]
    assert mount.source == volume_path(harness, uid, "config") and mount.read_only and mount.type == "bind"
    assert volume_path(harness, uid, "config") not in harness.runtime.memory_volumes  # on disk, as kubelet


def test_items_modes_and_binary_data_are_projected_as_asked(harness):
    harness.registry.create("configmaps", "default", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app"},
        "data": {"a": "1", "b": "2"}, "binaryData": {"blob": base64.b64encode(b"\x00\xff").decode()}})
    uid = harness.create_pod("web", mounted([{"name": "config", "mountPath": "/c"}]), volumes=[
        {"name": "config", "configMap": {"name": "app", "defaultMode": 0o440, "items": [
            {"key": "a", "path": "conf/a.txt", "mode": 0o600}, {"key": "blob", "path": "blob"}]}}])
    harness.sync()
    assert sorted(name for name in os.listdir(volume_path(harness, uid, "config")) if not name.startswith("..")) == ["blob", "conf"]
    assert read(volume_path(harness, uid, "config", "conf/a.txt")) == b"1"
    assert mode(volume_path(harness, uid, "config", "conf/a.txt")) == 0o600
    assert read(volume_path(harness, uid, "config", "blob")) == b"\x00\xff"
    assert mode(volume_path(harness, uid, "config", "blob")) == 0o440


def test_a_changed_config_map_reaches_the_volume_by_a_data_swap_but_not_a_sub_path(harness):
    config_map(harness, "app", {"level": "info"})
    uid = harness.create_pod("web", mounted([{"name": "config", "mountPath": "/etc/config"},
                                             {"name": "config", "mountPath": "/etc/level", "subPath": "level"}]),
                             volumes=[{"name": "config", "configMap": {"name": "app"}}])
    harness.sync()
    before = os.readlink(volume_path(harness, uid, "config", "..data"))
    sub_path_source = mounts_of(harness, uid)["/etc/level"].source
    assert sub_path_source == os.path.join(volume_path(harness, uid, "config"), before, "level")
    held = os.open(sub_path_source, os.O_RDONLY)  # as the subPath bind mount holds the file
    harness.clock.advance(2)
    update_config_map(harness, "app", {"level": "debug"})
    harness.sync()
    assert read(volume_path(harness, uid, "config", "level")) == b"debug"
    assert os.readlink(volume_path(harness, uid, "config", "..data")) != before
    assert os.pread(held, 10, 0) == b"info"
    os.close(held)
    assert harness.status("web")["restartCount"] == 0


def test_an_immutable_config_map_is_written_once(harness):
    config_map(harness, "frozen", {"level": "info"}, immutable=True)
    uid = harness.create_pod("web", mounted([{"name": "config", "mountPath": "/c"}]),
                             volumes=[{"name": "config", "configMap": {"name": "frozen"}}])
    harness.sync()
    harness.registry.delete("configmaps", "default", "frozen")
    config_map(harness, "frozen", {"level": "debug"}, immutable=True)
    harness.sync()
    assert read(volume_path(harness, uid, "config", "level")) == b"info"


def test_a_missing_config_map_is_failed_mount_and_the_pod_starts_once_it_appears(harness):
    uid = harness.create_pod("web", mounted([{"name": "config", "mountPath": "/c"}]),
                             volumes=[{"name": "config", "configMap": {"name": "later"}}])
    harness.sync()
    assert ("FailedMount", 'MountVolume.SetUp failed for volume "config" : configmap "later" not found') in harness.events()
    assert harness.status("web")["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert uid not in harness.runtime.sandboxes
    config_map(harness, "later", {"k": "v"})
    harness.sync()  # the ConfigMap's event re-syncs the pod at once, without its back-off
    assert harness.status("web")["state"].get("running") is not None


@pytest.mark.parametrize("volume, message", [
    ({"configMap": {"name": "app", "items": [{"key": "nope", "path": "x"}]}},
     "configmap references non-existent config key: nope"),
    ({"secret": {"secretName": "missing"}}, 'secret "missing" not found'),
    ({"secret": {"secretName": "creds", "items": [{"key": "nope", "path": "x"}]}},
     "references non-existent secret key: nope"),
    ({"projected": {"sources": [{"configMap": {"name": "gone"}}, {"secret": {"name": "gone"}}]}},
     '[configmap "gone" not found, secret "gone" not found]'),
])
def test_missing_objects_and_keys_give_kubelets_messages(harness, volume, message):
    config_map(harness, "app", {"k": "v"})
    secret(harness, "creds", {"k": b"v"})
    harness.create_pod("web", mounted([{"name": "v", "mountPath": "/v"}]), volumes=[{"name": "v", **volume}])
    harness.sync()
    assert ("FailedMount", f'MountVolume.SetUp failed for volume "v" : {message}') in harness.events()


def test_optional_missing_objects_and_keys_give_an_empty_volume(harness):
    config_map(harness, "app", {"k": "v"})
    uid = harness.create_pod("web", mounted([{"name": "v", "mountPath": "/v"}, {"name": "w", "mountPath": "/w"}]),
                             volumes=[{"name": "v", "configMap": {"name": "nothing", "optional": True}},
                                      {"name": "w", "configMap": {"name": "app", "optional": True,
                                                                  "items": [{"key": "nope", "path": "x"}]}}])
    harness.sync()
    assert harness.status("web")["state"].get("running") is not None
    assert [name for name in os.listdir(volume_path(harness, uid, "v")) if not name.startswith("..")] == []
    assert not os.path.lexists(volume_path(harness, uid, "w", "x"))


def test_a_secret_volume_is_on_a_pod_tmpfs_decoded_and_unmounted_with_the_pod(harness):
    secret(harness, "creds", {"password": b"s3cret", "bin": b"\x01\x02"})
    uid = harness.create_pod("web", mounted([{"name": "s", "mountPath": "/etc/secret"}]),
                             volumes=[{"name": "s", "secret": {"secretName": "creds", "defaultMode": 0o400}}])
    harness.sync()
    directory = volume_path(harness, uid, "s")
    assert directory in harness.runtime.memory_volumes
    assert read(os.path.join(directory, "password")) == b"s3cret"
    assert mode(os.path.join(directory, "bin")) == 0o400
    assert mounts_of(harness, uid)["/etc/secret"].read_only
    harness.registry.delete("pods", "default", "web")
    harness.advance(31)
    assert directory not in harness.runtime.memory_volumes
    assert ("unmount_memory_volume", directory) in harness.runtime.calls


def test_a_downward_api_volume_has_the_pods_fields_and_labels_update_in_place(harness):
    uid = harness.create_pod("web", [{"name": "main", "resources": {"limits": {"cpu": "250m", "memory": "64Mi"}},
                                      "volumeMounts": [{"name": "info", "mountPath": "/info"}]}],
                             volumes=[{"name": "info", "downwardAPI": {"items": [
                                 {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                                 {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                                 {"path": "tier", "fieldRef": {"fieldPath": "metadata.labels['tier']"}},
                                 {"path": "cpu", "resourceFieldRef": {"containerName": "main", "resource": "limits.cpu",
                                                                      "divisor": "1m"}},
                                 {"path": "mem", "resourceFieldRef": {"containerName": "main",
                                                                      "resource": "limits.memory", "divisor": "1Mi"}}]}}])
    harness.sync()
    assert read(volume_path(harness, uid, "info", "name")) == b"web"
    assert read(volume_path(harness, uid, "info", "cpu")) == b"250"
    assert read(volume_path(harness, uid, "info", "mem")) == b"64"
    assert read(volume_path(harness, uid, "info", "labels")) == b""
    harness.registry.patch("pods", "default", "web", {"metadata": {"labels": {"tier": "front", "app": "web"}}})
    harness.sync()
    assert read(volume_path(harness, uid, "info", "labels")) == b'app="web"\ntier="front"'
    assert read(volume_path(harness, uid, "info", "tier")) == b"front"


def test_a_projected_volume_merges_its_sources_on_a_tmpfs(harness):
    config_map(harness, "app", {"a": "1"})
    secret(harness, "creds", {"b": b"2"})
    uid = harness.create_pod("web", mounted([{"name": "all", "mountPath": "/all"}]), volumes=[{"name": "all", "projected": {
        "defaultMode": 0o440, "sources": [
            {"configMap": {"name": "app"}},
            {"secret": {"name": "creds", "items": [{"key": "b", "path": "nested/b", "mode": 0o400}]}},
            {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}}])
    harness.sync()
    directory = volume_path(harness, uid, "all")
    assert directory in harness.runtime.memory_volumes
    assert read(os.path.join(directory, "a")) == b"1" and mode(os.path.join(directory, "a")) == 0o440
    assert read(os.path.join(directory, "nested/b")) == b"2" and mode(os.path.join(directory, "nested/b")) == 0o400
    assert read(os.path.join(directory, "ns")) == b"default"


def test_sub_path_expr_expands_the_containers_env_for_any_volume(harness):
    uid = harness.create_pod("web", [{"name": "main",
                                      "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                                      "volumeMounts": [{"name": "logs", "mountPath": "/logs", "subPathExpr": "$(POD)"}]}],
                             volumes=[{"name": "logs", "emptyDir": {}}])
    harness.sync()
    source = mounts_of(harness, uid)["/logs"].source
    assert source == os.path.realpath(volume_path(harness, uid, "logs", "web")) and os.path.isdir(source)


def test_a_sub_path_through_a_symlink_out_of_the_volume_is_refused(harness):
    uid = harness.create_pod("web", mounted([{"name": "data", "mountPath": "/data", "subPath": "escape"}]),
                             volumes=[{"name": "data", "emptyDir": {}}])
    os.makedirs(volume_path(harness, uid, "data"), exist_ok=True)
    os.symlink("/", volume_path(harness, uid, "data", "escape"))  # planted by a container
    harness.sync()
    waiting = harness.status("web")["state"]["waiting"]
    assert waiting["reason"] == "CreateContainerConfigError"
    assert "resolves outside the volume" in waiting["message"]


def test_fs_group_owns_the_files_group_readable(harness):
    group = os.getgid()
    config_map(harness, "app", {"a": "1"})
    uid = harness.create_pod("web", mounted([{"name": "c", "mountPath": "/c"}]),
                             volumes=[{"name": "c", "configMap": {"name": "app", "defaultMode": 0o400}}],
                             securityContext={"fsGroup": group})
    harness.sync()
    path = volume_path(harness, uid, "c", "a")
    assert os.stat(path).st_gid == group and mode(path) == 0o440


# --- values -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value, quoted", [
    ("plain", '"plain"'), ('say "hi"', '"say \\"hi\\""'), ("a\nb\tc", '"a\\nb\\tc"'), ("back\\slash", '"back\\\\slash"'),
    ("\x00\x7f", '"\\x00\\x7f"'), ("café", '"café"'), ("\u200b", '"\\u200b"'),
])
def test_label_values_are_quoted_as_gos_percent_q(value, quoted):
    assert go_quote(value) == quoted


def test_maps_are_sorted_lines_without_a_last_newline():
    assert format_map({"b": "2", "a": "1"}) == 'a="1"\nb="2"'
    assert format_map(None) == ""


POD = parse_object({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "web", "namespace": "prod", "uid": "u-1", "labels": {"app": "web"},
                                 "annotations": {"team": "a"}},
                    "spec": {"containers": [{"name": "main", "image": "busybox"}]}})


@pytest.mark.parametrize("field_path, value", [
    ("metadata.name", "web"), ("metadata.namespace", "prod"), ("metadata.uid", "u-1"),
    ("metadata.labels", 'app="web"'), ("metadata.annotations", 'team="a"'),
    ("metadata.labels['app']", "web"), ("metadata.annotations['team']", "a"), ("metadata.labels['none']", ""),
])
def test_downward_api_volume_values(field_path, value):
    assert downward_value(POD, field_path) == value


@pytest.mark.parametrize("field_path, value", [
    ("metadata.name", "web"), ("metadata.namespace", "prod"), ("metadata.uid", "u-1"),
    ("metadata.labels['app']", "web"), ("metadata.annotations['team']", "a"),
    ("spec.nodeName", "node1"), ("spec.serviceAccountName", "default"),
    ("status.podIP", "10.244.0.7"), ("status.podIPs", "10.244.0.7"),
    ("status.hostIP", "192.0.2.1"), ("status.hostIPs", "192.0.2.1"),
])
def test_every_env_field_ref_kubernetes_allows(field_path, value):
    pod = POD.model_copy(deep=True)
    pod.spec.node_name = "node1"
    container = parse_object({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {"containers": [
        {"name": "main", "image": "busybox", "env": [{"name": "V", "valueFrom": {"fieldRef": {"fieldPath": field_path}}}]}]}}
    ).spec.containers[0]
    assert container_env(pod, container, "10.244.0.7", "192.0.2.1") == [("V", value)]


# --- ServiceAccount tokens --------------------------------------------------------------------


@pytest.fixture
def token_harness(tmp_path):
    """An agent whose API signs ServiceAccount tokens (and so admits pods with kube-api-access-*)."""
    clock = FakeClock()
    registry = Registry(Store(":memory:"), clock=clock)
    registry.token_issuer = TokenIssuer(load_or_create_signing_key(str(tmp_path / "sa.key")), clock)
    harness = AgentHarness(tmp_path, registry=registry, clock=clock)
    harness.start()
    return harness


def service_account(harness, name="default"):
    harness.registry.create("serviceaccounts", "default", {"apiVersion": "v1", "kind": "ServiceAccount",
                                                           "metadata": {"name": name}})


def claims_of(harness, path):
    return harness.registry.token_issuer.verify(read(path).decode(), audiences=("vault", ISSUER))


def test_a_projected_token_is_bound_to_the_pod_and_renewed_at_80_percent_of_its_life(token_harness):
    harness = token_harness
    service_account(harness)
    uid = harness.create_pod("web", mounted([{"name": "token", "mountPath": "/t"}]), automountServiceAccountToken=False,
                             volumes=[{"name": "token", "projected": {"sources": [
                                 {"serviceAccountToken": {"path": "vault-token", "audience": "vault",
                                                          "expirationSeconds": 600}}]}}])
    harness.sync()
    path = volume_path(harness, uid, "token", "vault-token")
    claims = claims_of(harness, path)
    assert claims["aud"] == ["vault"] and claims["kubernetes.io"]["pod"]["uid"] == uid
    assert mode(path) == 0o644 and path.startswith(volume_path(harness, uid, "token"))
    assert volume_path(harness, uid, "token") in harness.runtime.memory_volumes
    first = read(path)
    harness.advance(300)
    assert read(path) == first  # still young: the cached token
    harness.advance(181)  # past 80 % of 600 s: the pod's own wake-up renews it
    assert read(path) != first and claims_of(harness, path) is not None


def test_every_pod_gets_kube_api_access_with_token_ca_and_namespace(token_harness):
    harness = token_harness
    service_account(harness)
    harness.registry.create("configmaps", "default", {"apiVersion": "v1", "kind": "ConfigMap",
                                                      "metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": "CA"}})
    uid = harness.create_pod("web", [{"name": "main"}])
    harness.sync()
    name = next(volume["name"] for volume in harness.pod("web")["spec"]["volumes"])
    assert read(volume_path(harness, uid, name, "ca.crt")) == b"CA"
    assert read(volume_path(harness, uid, name, "namespace")) == b"default"
    claims = claims_of(harness, volume_path(harness, uid, name, "token"))
    assert claims["sub"] == "system:serviceaccount:default:default" and claims["exp"] - claims["iat"] == 3607
    mount = mounts_of(harness, uid)["/var/run/secrets/kubernetes.io/serviceaccount"]
    assert mount.read_only and mount.source == volume_path(harness, uid, name)


def test_a_missing_service_account_holds_the_pod_until_it_exists(token_harness):
    harness = token_harness
    harness.create_pod("web", mounted([{"name": "token", "mountPath": "/t"}]), automountServiceAccountToken=False,
                       volumes=[{"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}])
    harness.sync()
    assert ("FailedMount", 'MountVolume.SetUp failed for volume "token" : failed to fetch token: '
                           'serviceaccounts "default" not found') in harness.events()
    service_account(harness)
    harness.sync()  # the ServiceAccount's event re-syncs the pod
    assert harness.status("web")["state"].get("running") is not None


def test_a_memory_empty_dir_is_one_tmpfs_of_the_pod_that_every_container_binds(harness):
    uid = harness.create_pod("web", [{"name": "a", "volumeMounts": [{"name": "cache", "mountPath": "/cache"}]},
                                     {"name": "b", "volumeMounts": [{"name": "cache", "mountPath": "/shared"}]}],
                             volumes=[{"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}],
                             securityContext={"fsGroup": os.getgid()})
    harness.sync()
    directory = volume_path(harness, uid, "cache")
    assert directory in harness.runtime.memory_volumes
    assert [call for call in harness.runtime.calls if call[0] == "mount_memory_volume"] == [
        ("mount_memory_volume", directory, 64 * 1024 * 1024)]  # once, not per sync or container
    assert mounts_of(harness, uid, "a")["/cache"].source == mounts_of(harness, uid, "b")["/shared"].source == directory
    assert os.stat(directory).st_mode & 0o2000  # setgid for the fsGroup
    harness.registry.delete("pods", "default", "web")
    harness.advance(31)
    assert directory not in harness.runtime.memory_volumes
