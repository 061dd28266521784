"""Pod status derivation: the phase table and the conditions' transition times (semantics.md 3.1-3.2)."""

import pytest

from minikube_py.agent.status import ContainerRecord, Termination, pod_conditions, pod_phase
from minikube_py.api.times import format_time
from minikube_py.runtime.types import ContainerState


def exited(code: int) -> Termination:
    return Termination.from_state(ContainerState("c1", "uid", "main", 0, "exited", started_at=1.0, finished_at=2.0,
                                                 exit_code=code))


def after_exit(policy: str, code: int) -> ContainerRecord:
    """The record as the agent leaves it after one exit: waiting to restart, or terminated for good."""
    record = ContainerRecord("main", "busybox")
    if policy == "Always" or (policy == "OnFailure" and code != 0):
        record.last_state = exited(code)
        record.set_waiting("CrashLoopBackOff", "back-off 10s ...")
    else:
        record.set_terminated(exited(code))
    return record


@pytest.mark.parametrize(
    "policy, code, phase",
    [
        ("Always", 0, "Running"),
        ("Always", 1, "Running"),
        ("OnFailure", 0, "Succeeded"),
        ("OnFailure", 1, "Running"),
        ("Never", 0, "Succeeded"),
        ("Never", 1, "Failed"),
    ],
)
def test_phase_after_an_exit_follows_the_restart_policy(policy, code, phase):
    assert pod_phase([after_exit(policy, code)], policy) == phase


def test_a_container_not_yet_started_keeps_the_pod_pending():
    running = ContainerRecord("a", "busybox")
    running.set_running(ContainerState("c1", "uid", "a", 0, "running", started_at=1.0))
    assert pod_phase([running, ContainerRecord("b", "busybox")], "Always") == "Pending"
    assert pod_phase([running], "Always") == "Running"


def test_a_deleted_pod_ends_succeeded_only_if_every_container_exited_zero():
    assert pod_phase([after_exit("Always", 0)], "Always", pod_is_terminal=True) == "Failed"  # waiting counts as not succeeded
    done = ContainerRecord("a", "busybox")
    done.set_terminated(exited(0))
    assert pod_phase([done], "Always", pod_is_terminal=True) == "Succeeded"


def test_termination_reasons_and_the_container_id_prefix():
    oom = Termination.from_state(ContainerState("c9", "uid", "m", 0, "exited", started_at=1, finished_at=2, exit_code=137,
                                                oom_killed=True))
    assert oom.reason == "OOMKilled"
    assert exited(0).reason == "Completed" and exited(2).reason == "Error"
    assert oom.to_dict()["containerID"] == "minikube-py://c9"


def test_conditions_come_in_kubelets_order_and_keep_transition_times_while_unchanged():
    record = ContainerRecord("web", "busybox")
    record.set_running(ContainerState("c1", "uid", "web", 0, "running", started_at=1.0))
    first = pod_conditions([record], "Running", True, [], now=100.0)
    assert [c["type"] for c in first] == ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
    ready = next(c for c in first if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ContainersNotReady"
    assert ready["message"] == "containers with unready status: [web]"

    again = pod_conditions([record], "Running", True, first, now=200.0)
    assert next(c for c in again if c["type"] == "Ready")["lastTransitionTime"] == format_time(100.0)

    record.ready = True
    flipped = pod_conditions([record], "Running", True, again, now=300.0)
    ready = next(c for c in flipped if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["lastTransitionTime"] == format_time(300.0)
    assert next(c for c in flipped if c["type"] == "Initialized")["lastTransitionTime"] == format_time(100.0)


def test_a_container_moves_only_along_the_state_machines_edges():
    from minikube_py.agent.status import IllegalTransition, State

    record = ContainerRecord("main", "busybox")
    running = ContainerState("c1", "uid", "main", 0, "running", started_at=1.0)
    record.set_running(running)
    assert record.state is State.RUNNING
    with pytest.raises(IllegalTransition, match="running -> waiting"):
        record.set_waiting("CrashLoopBackOff")
    with pytest.raises(IllegalTransition, match="running -> running"):
        record.set_running(running)
    record.set_terminated(exited(1))
    record.set_waiting("CrashLoopBackOff")
    record.set_running(running)
    assert record.state_kind == "running"


def test_a_pod_record_moves_only_along_its_lifecycle():
    from minikube_py.agent.pod import IllegalPodTransition, Lifecycle, PodRecord

    record = PodRecord("uid", "default", "web", pod=None)
    record.move(Lifecycle.TERMINATING)
    with pytest.raises(IllegalPodTransition, match="terminating -> active"):
        record.move(Lifecycle.ACTIVE)
    record.move(Lifecycle.FINISHED)
    with pytest.raises(IllegalPodTransition):
        record.move(Lifecycle.TERMINATING)
