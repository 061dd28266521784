"""The node agent ending pods: terminal phase and container states of a deleted pod, a pod object
recreated under the same name while the old one stops, and a termination that failed half-way."""

import pytest

from minikube_py.api import errors
from tests.unit.agent_harness import AgentHarness


@pytest.fixture
def harness(tmp_path):
    harness = AgentHarness(tmp_path)
    harness.start()
    return harness


def final_status(harness, name: str) -> dict:
    """The last status the agent wrote before it deleted the pod object."""
    return harness.written_statuses[name]


@pytest.fixture
def recording(harness):
    """Keep the status each pod had after every status write, so that of a deleted pod can be read."""
    harness.written_statuses = {}
    original = harness.client.raw.patch_status

    def patch_status(resource, namespace, name, patch, *args):
        written = original(resource, namespace, name, patch, *args)
        harness.written_statuses[name] = written["status"]
        return written

    harness.client.raw.patch_status = patch_status
    return harness


def test_a_pod_deleted_while_its_container_could_not_be_created_ends_failed(recording):
    harness = recording
    harness.create_pod("lost", [{"name": "main", "image": "registry.example/nothing:1.0", "imagePullPolicy": "Never"}])
    harness.sync()
    assert harness.status("lost")["state"]["waiting"]["reason"] == "ErrImageNeverPull"
    harness.registry.delete("pods", "default", "lost")
    harness.sync()
    status = final_status(harness, "lost")
    assert status["phase"] == "Failed", "kubelet moves a deleted pod to a terminal phase (TerminatePod)"
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert terminated["reason"] == "ContainerStatusUnknown" and terminated["exitCode"] == 137


def test_a_pod_deleted_in_crash_loop_back_off_ends_failed_with_a_terminated_container(recording):
    harness = recording
    uid = harness.create_pod("crasher", [{"name": "main"}])
    harness.sync()
    for _ in range(2):  # the first restart is immediate; the second exit waits
        harness.runtime.exit_container(harness.container_id(uid), 0)
        harness.sync()
    assert harness.status("crasher")["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    harness.registry.delete("pods", "default", "crasher")
    harness.sync()
    status = final_status(harness, "crasher")
    assert status["phase"] == "Failed"
    container = status["containerStatuses"][0]
    assert container["state"]["terminated"]["reason"] == "ContainerStatusUnknown"
    assert container["lastState"]["terminated"]["exitCode"] == 0


def test_a_pod_deleted_before_its_init_containers_finished_ends_failed(recording):
    harness = recording
    uid = harness.create_pod("starting", [{"name": "main"}],
                             initContainers=[{"name": "setup", "image": "busybox", "command": ["sleep", "60"]}])
    harness.sync()
    assert harness.runtime.container_for(uid, "setup").status == "running"
    harness.registry.delete("pods", "default", "starting")
    harness.sync()
    status = final_status(harness, "starting")
    assert status["phase"] == "Failed"
    assert status["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing", \
        "an app container that never started keeps waiting: the init failure explains the pod"


def test_a_pod_recreated_under_the_same_name_while_the_old_one_stops_is_left_alone(harness):
    old_uid = harness.create_pod("web", [{"name": "main"}], terminationGracePeriodSeconds=20)
    harness.sync()
    kill_container = harness.runtime.kill_container
    replacement = {}

    def stop_then_replace(container_id, signal_number):
        state = kill_container(container_id, signal_number)
        # Meanwhile somebody force-deletes the old pod and creates a new one of the same name.
        harness.registry.delete("pods", "default", "web", grace_period_seconds=0)
        replacement.update(harness.registry.create("pods", "default", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
            "spec": {"nodeName": "elsewhere", "containers": [{"name": "main", "image": "busybox"}]}}))
        return state

    harness.runtime.kill_container = stop_then_replace
    harness.registry.delete("pods", "default", "web")
    harness.sync()
    current = harness.pod("web")
    assert current["metadata"]["uid"] == replacement["metadata"]["uid"] != old_uid
    assert "deletionTimestamp" not in current["metadata"], "the new pod must not be deleted"
    assert current.get("status", {}).get("phase") != "Failed", "the old pod's status must not land on the new one"


def test_a_termination_that_failed_half_way_is_tried_again(harness):
    harness.create_pod("web", [{"name": "main"}], terminationGracePeriodSeconds=5)
    harness.sync()
    delete = harness.client.delete
    failures = {"left": 1}

    def flaky_delete(resource, name, namespace=None, **options):
        if resource == "pods" and failures["left"]:
            failures["left"] -= 1
            raise errors.ApiError("the database is locked")
        return delete(resource, name, namespace=namespace, **options)

    harness.client.delete = flaky_delete
    harness.registry.delete("pods", "default", "web")
    harness.sync()
    harness.advance(5)
    with pytest.raises(errors.NotFound):
        harness.pod("web")
    assert harness.agent.table.records == {} and harness.agent.table.keys == {}


def test_a_stubborn_termination_holds_no_worker_and_other_pods_go_on(harness):
    """Stops are steps in the work queue: while one pod waits out its grace, others start."""
    uid = harness.create_pod("stubborn", [{"name": "main"}], terminationGracePeriodSeconds=30)
    harness.sync()
    harness.runtime.ignore_sigterm(harness.container_id(uid))
    harness.registry.delete("pods", "default", "stubborn")
    harness.sync()
    began = harness.clock.now()
    other = harness.create_pod("other", [{"name": "main"}])
    harness.sync()
    assert harness.clock.now() == began, "nothing waited for the grace period"
    assert harness.runtime.container_for(other, "main").status == "running"
    assert harness.runtime.container_for(uid, "main").status == "running"
    harness.advance(30)
    with pytest.raises(errors.NotFound):
        harness.pod("stubborn")
    assert harness.runtime.container_for(other, "main").status == "running"


def test_the_largest_int64_grace_period_is_waited_as_a_century_not_an_overflow(harness):
    import threading

    uid = harness.create_pod("web", [{"name": "main"}], terminationGracePeriodSeconds=2**63 - 1)
    harness.sync()
    harness.runtime.ignore_sigterm(harness.container_id(uid))
    harness.registry.delete("pods", "default", "web")
    harness.sync()
    stop = harness.agent.table.get(uid).containers["main"].stop
    assert 0 < stop.grace <= threading.TIMEOUT_MAX
    assert harness.pod("web")["metadata"]["deletionTimestamp"]
