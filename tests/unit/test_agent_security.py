"""The agent hands the securityContext to the runtime (FakeRuntime) and reports refusals in status."""

import os

import pytest

from tests.unit.agent_harness import AgentHarness


@pytest.fixture
def harness(tmp_path):
    harness = AgentHarness(tmp_path)
    harness.start()
    return harness


def started_config(harness, uid: str, name: str = "main"):
    return harness.runtime.container_configs[harness.runtime.container_for(uid, name).id]


def test_a_pod_reaches_the_runtime_with_runtime_default_seccomp_and_its_security_context(harness):
    uid = harness.create_pod("web", [{"name": "main", "securityContext": {
        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}, "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False, "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}}}],
        securityContext={"fsGroup": 2000, "supplementalGroups": [3000]})
    harness.sync()
    config = started_config(harness, uid)
    assert config.capabilities == ["CAP_NET_BIND_SERVICE"] and config.read_only_rootfs and config.no_new_privileges
    assert config.seccomp_profile == "localhost/" + os.path.join(harness.home, "seccomp", "p.json")
    assert config.supplemental_groups == [3000, 2000]


def test_seccomp_default_off_leaves_containers_unconfined(harness):
    harness.agent.config.seccomp_default = False
    uid = harness.create_pod("web", [{"name": "main"}])
    harness.sync()
    assert started_config(harness, uid).seccomp_profile == "unconfined"
    harness.agent.config.seccomp_default = True
    uid = harness.create_pod("web2", [{"name": "main"}])
    harness.sync()
    assert started_config(harness, uid).seccomp_profile == "runtime/default"


def test_run_as_non_root_with_a_root_image_waits_in_create_container_config_error(harness):
    uid = harness.create_pod("web", [{"name": "main"}], securityContext={"runAsNonRoot": True})
    harness.sync()
    waiting = harness.status("web")["state"]["waiting"]
    assert waiting["reason"] == "CreateContainerConfigError"
    assert waiting["message"] == f'container has runAsNonRoot and image will run as root (pod: "web_default({uid})", container: main)'
    assert harness.runtime.container_for(uid, "main") is None


def test_fs_group_owns_an_empty_dir_volume(harness):
    uid = harness.create_pod("web", [{"name": "main"}], securityContext={"fsGroup": os.getgid()},
                             volumes=[{"name": "data", "emptyDir": {}}])
    harness.sync()
    volume = os.path.join(harness.home, "pods", uid, "volumes", "data")
    info = os.stat(volume)
    assert info.st_gid == os.getgid() and info.st_mode & 0o7777 == 0o2777
