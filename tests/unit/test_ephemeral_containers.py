"""Ephemeral containers (kubectl debug): the pods/ephemeralcontainers subresource only adds, and
the node agent starts each once in its target's PID namespace, never restarts it and reports it
in ephemeralContainerStatuses, apart from the pod's phase and readiness."""

import pytest

from minikube_py.api import errors
from minikube_py.apiserver.patch import STRATEGIC_MERGE_PATCH
from minikube_py.apiserver.registry import Registry
from minikube_py.clock import FakeClock
from minikube_py.store import Store
from tests.unit.agent_harness import AgentHarness

DEBUGGER = {"name": "debugger", "image": "busybox", "targetContainerName": "main", "stdin": True, "tty": True}


@pytest.fixture
def registry():
    store = Store(":memory:")
    registry = Registry(store, FakeClock())
    registry.create("pods", "default", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                                        "spec": {"containers": [{"name": "main", "image": "busybox"}]}})
    yield registry
    store.close()


def add(registry, *containers):
    return registry.update_ephemeral_containers(
        "default", "web", {"spec": {"ephemeralContainers": list(containers)}}, STRATEGIC_MERGE_PATCH)


def test_a_strategic_merge_patch_adds_ephemeral_containers_by_name(registry):
    pod = add(registry, DEBUGGER)
    assert [c["name"] for c in pod["spec"]["ephemeralContainers"]] == ["debugger"]
    pod = add(registry, {"name": "second", "image": "busybox"})
    assert [c["name"] for c in pod["spec"]["ephemeralContainers"]] == ["debugger", "second"]
    assert pod["spec"]["containers"][0]["name"] == "main"


def test_a_put_may_not_remove_or_change_one(registry):
    pod = add(registry, DEBUGGER)
    pod["spec"]["ephemeralContainers"][0]["image"] = "other"
    with pytest.raises(errors.Invalid, match='existing ephemeral containers "debugger" may not be changed'):
        registry.update_ephemeral_containers("default", "web", pod)
    pod["spec"]["ephemeralContainers"] = []
    with pytest.raises(errors.Invalid, match='existing ephemeral containers "debugger" may not be removed'):
        registry.update_ephemeral_containers("default", "web", pod)


@pytest.mark.parametrize("container, message", [
    ({"name": "main", "image": "busybox"}, 'spec.ephemeralContainers[0].name: Duplicate value: "main"'),
    ({"name": "Bad_Name", "image": "busybox"}, "must be a lowercase RFC 1123 label"),
    ({"name": "d"}, "spec.ephemeralContainers[0].image: Required value"),
    ({"name": "d", "image": "busybox", "targetContainerName": "nope"}, 'targetContainerName: Not found: "nope"'),
    ({"name": "d", "image": "busybox", "ports": [{"containerPort": 80}]},
     "spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container"),
])
def test_bad_ephemeral_containers_are_refused_and_nothing_is_stored(registry, container, message):
    with pytest.raises(errors.Invalid, match=message.replace("[", r"\[").replace("]", r"\]")):
        add(registry, container)
    assert "ephemeralContainers" not in registry.get("pods", "default", "web")["spec"]


def test_the_agent_starts_it_once_in_its_targets_pid_namespace_and_reports_it(tmp_path):
    harness = AgentHarness(tmp_path)
    harness.start()
    harness.create_pod("web", [{"name": "main"}])
    harness.sync()
    harness.registry.update_ephemeral_containers(
        "default", "web", {"spec": {"ephemeralContainers": [DEBUGGER]}}, STRATEGIC_MERGE_PATCH)
    harness.sync()
    configs = {config.name: config for config in harness.runtime.container_configs.values()}
    main_id = next(cid for cid, config in harness.runtime.container_configs.items() if config.name == "main")
    assert configs["debugger"].target_container_id == main_id
    assert configs["debugger"].stdin and configs["debugger"].tty
    status = harness.pod("web")["status"]
    assert [s["name"] for s in status["ephemeralContainerStatuses"]] == ["debugger"]
    assert "running" in status["ephemeralContainerStatuses"][0]["state"]
    assert [s["name"] for s in status["containerStatuses"]] == ["main"]
    debugger_id = next(cid for cid, config in harness.runtime.container_configs.items() if config.name == "debugger")
    harness.runtime.exit_container(debugger_id, 1)
    harness.advance(60)
    status = harness.pod("web")["status"]
    assert status["ephemeralContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 1
    assert status["phase"] == "Running"
    starts = [call for call in harness.runtime.calls if call[0] == "start_container" and call[2] == "debugger"]
    assert len(starts) == 1  # never restarted
