"""Job API and controller: defaults, validation, and sync driven by hand on the fake cluster and clock."""

from __future__ import annotations

import pytest

from minikube_py import api
from minikube_py.api import errors
from minikube_py.api.batch import JOB_COMPLETION_INDEX_ANNOTATION, JOB_TRACKING_FINALIZER
from minikube_py.api.times import format_time
from controllers.job import (
    BackoffRecord,
    JobController,
    OrderedIndexes,
    backoff_remaining,
    next_backoff_record,
)
from controllers.ttlafterfinished import TTLAfterFinishedController


def job_body(name="work", completions=None, parallelism=None, restart_policy="Never", **spec):
    body_spec = {"template": {"spec": {"restartPolicy": restart_policy,
                                       "containers": [{"name": "main", "image": "busybox", "command": ["true"]}]}}}
    if completions is not None:
        body_spec["completions"] = completions
    if parallelism is not None:
        body_spec["parallelism"] = parallelism
    body_spec.update(spec)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": body_spec}


@pytest.fixture
def controller(cluster):
    return JobController(cluster.client, cluster.clock, cluster.informers)


def job_pods(cluster, job_name="work"):
    return sorted((pod for pod in cluster.list("pods") if (pod.metadata.labels or {}).get("job-name") == job_name),
                  key=lambda pod: pod.metadata.creation_timestamp or "")


def finish_pod(cluster, pod, phase="Succeeded", exit_code=0, when=None):
    """What the node agent writes when a pod's container exits."""
    finished = format_time(cluster.clock.now() if when is None else when)
    status = {"phase": phase, "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": finished}],
              "containerStatuses": [{"name": "main", "ready": False, "restartCount": 0, "image": "busybox",
                                     "state": {"terminated": {"exitCode": exit_code, "finishedAt": finished}}}]}
    cluster.registry.patch_status("pods", "default", pod.metadata.name, {"status": status})


def job(cluster, name="work"):
    return cluster.get("jobs", name)


def conditions(job_model):
    return [(c.type, c.status, c.reason) for c in job_model.status.conditions or []]


# -- API: defaults and validation ---------------------------------------------------------------


def test_job_gets_kubernetes_defaults_and_a_generated_selector(cluster):
    created = cluster.create("jobs", job_body())
    spec = created.spec
    assert (spec.completions, spec.parallelism, spec.backoff_limit) == (1, 1, 6)
    assert spec.completion_mode == "NonIndexed" and spec.suspend is False
    assert spec.pod_replacement_policy == "TerminatingOrFailed"
    uid = created.metadata.uid
    assert spec.selector.match_labels == {"batch.kubernetes.io/controller-uid": uid}
    assert spec.template.metadata.labels == {
        "batch.kubernetes.io/controller-uid": uid, "controller-uid": uid,
        "batch.kubernetes.io/job-name": "work", "job-name": "work"}
    assert created.metadata.labels == spec.template.metadata.labels


def test_backoff_limit_defaults_to_max_int32_with_a_per_index_limit(cluster):
    created = cluster.create("jobs", job_body(completions=3, completionMode="Indexed", backoffLimitPerIndex=1))
    assert created.spec.backoff_limit == 2**31 - 1


def test_work_queue_job_defaults_only_parallelism(cluster):
    created = cluster.create("jobs", job_body(parallelism=3))
    assert created.spec.completions is None and created.spec.parallelism == 3


@pytest.mark.parametrize("body, message", [
    (job_body(restart_policy="Always"),
     'spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"'),
    (job_body(parallelism=2, completionMode="Indexed"),
     "spec.completions: Required value: when completion mode is Indexed"),
    (job_body(completionMode="Sometimes"),
     'spec.completionMode: Unsupported value: "Sometimes": supported values: "NonIndexed", "Indexed"'),
    (job_body(backoffLimit=-1), "spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0"),
    (job_body(backoffLimitPerIndex=1), "spec.backoffLimitPerIndex: Forbidden: requires indexed completion mode"),
    (job_body(restart_policy="OnFailure", podFailurePolicy={"rules": [
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}),
     'spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is supported when '
     'podFailurePolicy is specified'),
    (job_body(podFailurePolicy={"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [0]}}]}),
     "spec.podFailurePolicy.rules[0].onExitCodes.values[0]: Invalid value: 0: must not be 0 for the In operator"),
    (job_body(podFailurePolicy={"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [3, 1]}}]}),
     "spec.podFailurePolicy.rules[0].onExitCodes.values[1]: Invalid value: 1: must be ordered"),
    (job_body(podFailurePolicy={"rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [1]}}]}),
     "spec.podFailurePolicy.rules[0].action: Forbidden: requires the backoffLimitPerIndex to be set"),
    (job_body(completions=2, successPolicy={"rules": [{"succeededCount": 1}]}),
     "spec.successPolicy: Invalid value: "),
    (job_body(manualSelector=True), "spec.selector: Required value"),
])
def test_invalid_jobs_are_refused_with_kubernetes_messages(cluster, body, message):
    with pytest.raises(errors.Invalid) as caught:
        cluster.create("jobs", body)
    assert message in str(caught.value)


def test_job_selector_and_completion_mode_are_immutable(cluster):
    created = cluster.create("jobs", job_body(completions=2))
    body = created.to_dict()
    body["spec"]["completions"] = 3
    with pytest.raises(errors.Invalid, match="spec.completions: Invalid value: 3: field is immutable"):
        cluster.registry.replace("jobs", "default", "work", body)


# -- controller ---------------------------------------------------------------------------------


def test_creates_parallelism_pods_with_finalizer_and_owner(cluster, controller):
    cluster.create("jobs", job_body(completions=5, parallelism=2))
    cluster.settle(controller)
    pods = job_pods(cluster)
    assert len(pods) == 2
    for pod in pods:
        assert JOB_TRACKING_FINALIZER in pod.metadata.finalizers
        assert pod.metadata.owner_references[0].kind == "Job"
        assert pod.metadata.generate_name == "work-"
    status = job(cluster).status
    assert status.active == 2 and status.ready == 0 and status.start_time is not None
    assert status.uncounted_terminated_pods is not None


def test_job_of_five_completions_completes_and_counts_each_pod_once(cluster, controller):
    cluster.create("jobs", job_body(completions=5, parallelism=2))
    cluster.settle(controller)
    for _ in range(10):
        running = [pod for pod in job_pods(cluster) if pod.status.phase == "Pending"]
        if not running:
            break
        for pod in running:
            cluster.clock.advance(1)
            finish_pod(cluster, pod)
        cluster.settle(controller)
    finished = job(cluster)
    assert finished.status.succeeded == 5
    assert finished.status.active is None
    assert len(job_pods(cluster)) == 5
    assert conditions(finished) == [("SuccessCriteriaMet", "True", "CompletionsReached"),
                                    ("Complete", "True", "CompletionsReached")]
    assert finished.status.completion_time is not None
    assert all(not pod.metadata.finalizers for pod in job_pods(cluster))
    assert finished.status.uncounted_terminated_pods.to_dict() == {}
    reasons = [event.reason for event in cluster.list("events")]
    assert reasons.count("SuccessfulCreate") == 5 and "Completed" in reasons


def test_failed_pods_are_replaced_after_the_doubling_back_off(cluster, controller):
    cluster.create("jobs", job_body(backoffLimit=3))
    cluster.settle(controller)
    first = job_pods(cluster)[0]
    finish_pod(cluster, first, phase="Failed", exit_code=1)
    cluster.settle(controller)
    assert len(job_pods(cluster)) == 1 and job(cluster).status.failed == 1
    cluster.clock.advance(9)
    cluster.settle(controller)
    assert len(job_pods(cluster)) == 1  # still backing off: 10 s after the first failure
    cluster.clock.advance(1.5)
    cluster.settle(controller)
    pods = job_pods(cluster)
    assert len(pods) == 2
    finish_pod(cluster, pods[1], phase="Failed", exit_code=1)
    cluster.settle(controller)
    cluster.clock.advance(15)
    cluster.settle(controller)
    assert len(job_pods(cluster)) == 2  # 20 s after the second failure
    cluster.clock.advance(6)
    cluster.settle(controller)
    assert len(job_pods(cluster)) == 3


def test_backoff_limit_exceeded_fails_the_job(cluster, controller):
    cluster.create("jobs", job_body(backoffLimit=0))
    cluster.settle(controller)
    finish_pod(cluster, job_pods(cluster)[0], phase="Failed", exit_code=2)
    cluster.settle(controller)
    failed = job(cluster)
    assert conditions(failed) == [("FailureTarget", "True", "BackoffLimitExceeded"),
                                  ("Failed", "True", "BackoffLimitExceeded")]
    assert failed.status.condition("Failed").message == "Job has reached the specified backoff limit"
    assert failed.status.failed == 1 and failed.status.completion_time is None
    assert ("Warning", "BackoffLimitExceeded") in [(e.type, e.reason) for e in cluster.list("events")]


def test_active_deadline_deletes_pods_and_fails_with_deadline_exceeded(cluster, controller):
    cluster.add_node("node-1")
    cluster.create("jobs", job_body(parallelism=2, completions=4, activeDeadlineSeconds=30))
    cluster.settle(controller)
    for pod in job_pods(cluster):
        cluster.registry.bind("default", pod.metadata.name, "node-1")
    cluster.clock.advance(31)
    cluster.settle(controller)
    marked = job_pods(cluster)
    assert all(pod.metadata.deletion_timestamp for pod in marked)
    assert conditions(job(cluster)) == [("FailureTarget", "True", "DeadlineExceeded")]
    # The agent stops them (phase Failed); the Job counts them and fails for good.
    for pod in marked:
        finish_pod(cluster, pod, phase="Failed", exit_code=137)
    cluster.settle(controller)
    failed = job(cluster)
    assert ("Failed", "True", "DeadlineExceeded") in conditions(failed)
    assert failed.status.condition("Failed").message == "Job was active longer than specified deadline"
    assert failed.status.failed == 2
    assert all(not pod.metadata.finalizers for pod in job_pods(cluster))  # the agent may now remove them


def test_sync_asks_to_be_called_back_at_the_deadline(cluster, controller):
    cluster.create("jobs", job_body(activeDeadlineSeconds=100))
    cluster.refresh()
    cluster.clock.advance(0)
    controller.sync("default/work")
    cluster.refresh()
    cluster.clock.advance(40)
    assert controller.sync("default/work") == pytest.approx(60, abs=1)


def test_indexed_job_gives_each_pod_its_index_env_and_hostname(cluster, controller):
    cluster.create("jobs", job_body(completions=3, parallelism=3, completionMode="Indexed"))
    cluster.settle(controller)
    pods = sorted(job_pods(cluster), key=lambda pod: pod.metadata.annotations[JOB_COMPLETION_INDEX_ANNOTATION])
    assert [pod.metadata.annotations[JOB_COMPLETION_INDEX_ANNOTATION] for pod in pods] == ["0", "1", "2"]
    assert [pod.spec.hostname for pod in pods] == ["work-0", "work-1", "work-2"]
    assert [pod.metadata.generate_name for pod in pods] == ["work-0-", "work-1-", "work-2-"]
    env = pods[0].spec.containers[0].env[0]
    assert env.name == "JOB_COMPLETION_INDEX"
    assert env.value_from.field_ref.field_path == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    finish_pod(cluster, pods[2])
    finish_pod(cluster, pods[0])
    cluster.settle(controller)
    status = job(cluster).status
    assert status.completed_indexes == "0,2" and status.succeeded == 2
    finish_pod(cluster, pods[1])
    cluster.settle(controller)
    assert job(cluster).status.completed_indexes == "0-2"
    assert job(cluster).is_finished()


def test_indexed_job_replaces_a_failed_index_with_the_same_index(cluster, controller):
    cluster.create("jobs", job_body(completions=2, parallelism=2, completionMode="Indexed"))
    cluster.settle(controller)
    failing = [pod for pod in job_pods(cluster) if pod.metadata.annotations[JOB_COMPLETION_INDEX_ANNOTATION] == "1"][0]
    finish_pod(cluster, failing, phase="Failed", exit_code=1)
    cluster.settle(controller)
    cluster.clock.advance(11)
    cluster.settle(controller)
    index_one = [pod for pod in job_pods(cluster) if pod.metadata.annotations[JOB_COMPLETION_INDEX_ANNOTATION] == "1"]
    assert len(index_one) == 2


def test_backoff_limit_per_index_marks_the_index_failed(cluster, controller):
    cluster.create("jobs", job_body(completions=2, parallelism=2, completionMode="Indexed", backoffLimitPerIndex=0))
    cluster.settle(controller)
    by_index = {pod.metadata.annotations[JOB_COMPLETION_INDEX_ANNOTATION]: pod for pod in job_pods(cluster)}
    finish_pod(cluster, by_index["0"], phase="Failed", exit_code=1)
    cluster.settle(controller)
    assert job(cluster).status.failed_indexes == "0"
    finish_pod(cluster, by_index["1"])
    cluster.settle(controller)
    finished = job(cluster)
    assert ("Failed", "True", "FailedIndexes") in conditions(finished)
    assert finished.status.completed_indexes == "1"


def test_pod_failure_policy_fail_job_names_the_container_and_rule(cluster, controller):
    cluster.create("jobs", job_body(parallelism=1, podFailurePolicy={"rules": [
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}},
        {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}}]}))
    cluster.settle(controller)
    pod = job_pods(cluster)[0]
    finish_pod(cluster, pod, phase="Failed", exit_code=42)
    cluster.settle(controller)
    failed = job(cluster)
    condition = failed.status.condition("Failed")
    assert condition.reason == "PodFailurePolicy"
    assert condition.message == (f"Container main for pod default/{pod.metadata.name} failed with exit code 42 "
                                 "matching FailJob rule at index 1")


def test_pod_failure_policy_ignore_does_not_count_the_failure(cluster, controller):
    cluster.create("jobs", job_body(backoffLimit=0, podFailurePolicy={"rules": [
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}}]}))
    cluster.settle(controller)
    finish_pod(cluster, job_pods(cluster)[0], phase="Failed", exit_code=3)
    cluster.settle(controller)
    current = job(cluster)
    assert not current.is_finished() and (current.status.failed or 0) == 0
    cluster.clock.advance(11)  # the back-off still applies, as in Kubernetes
    cluster.settle(controller)
    assert len(job_pods(cluster)) == 2


def test_suspend_deletes_active_pods_and_resume_starts_again(cluster, controller):
    cluster.create("jobs", job_body(completions=4, parallelism=2))
    cluster.settle(controller)
    cluster.registry.patch("jobs", "default", "work", {"spec": {"suspend": True}})
    cluster.settle(controller)
    suspended = job(cluster)
    assert ("Suspended", "True", "JobSuspended") in conditions(suspended)
    assert all(pod.metadata.deletion_timestamp for pod in job_pods(cluster))
    assert all(not pod.metadata.finalizers for pod in job_pods(cluster))
    cluster.clock.advance(5)
    cluster.registry.patch("jobs", "default", "work", {"spec": {"suspend": False}})
    cluster.settle(controller)
    resumed = job(cluster)
    assert ("Suspended", "False", "JobResumed") in conditions(resumed)
    assert resumed.status.start_time == format_time(cluster.clock.now())
    events = [event.reason for event in cluster.list("events")]
    assert "Suspended" in events and "Resumed" in events


def test_job_created_suspended_does_not_start(cluster, controller):
    cluster.create("jobs", job_body(suspend=True))
    cluster.settle(controller)
    assert job_pods(cluster) == [] and job(cluster).status.start_time is None


def test_success_policy_completes_an_indexed_job_early(cluster, controller):
    cluster.create("jobs", job_body(completions=3, parallelism=3, completionMode="Indexed",
                                    successPolicy={"rules": [{"succeededIndexes": "0"}]}))
    cluster.settle(controller)
    index_zero = [pod for pod in job_pods(cluster) if pod.metadata.annotations[JOB_COMPLETION_INDEX_ANNOTATION] == "0"]
    finish_pod(cluster, index_zero[0])
    cluster.settle(controller)
    current = job(cluster)
    assert ("SuccessCriteriaMet", "True", "SuccessPolicy") in conditions(current)
    assert current.status.condition("SuccessCriteriaMet").message == "Matched rules at index 0"
    for pod in job_pods(cluster):
        if pod.metadata.deletion_timestamp:
            finish_pod(cluster, pod, phase="Failed", exit_code=137)
    cluster.settle(controller)
    assert ("Complete", "True", "SuccessPolicy") in conditions(job(cluster))


def test_orphan_pod_loses_the_finalizer_when_its_job_is_gone(cluster, controller):
    cluster.create("jobs", job_body())
    cluster.settle(controller)
    pod = job_pods(cluster)[0]
    cluster.registry.delete("jobs", "default", "work", propagation_policy="Orphan")
    cluster.settle(controller)
    stored = cluster.get("pods", pod.metadata.name)
    assert stored is None or not stored.metadata.finalizers


def test_ttl_after_finished_deletes_the_job_once_expired(cluster, controller):
    ttl = TTLAfterFinishedController(cluster.client, cluster.clock, cluster.informers)
    cluster.create("jobs", job_body(ttlSecondsAfterFinished=60))
    cluster.settle(controller)
    finish_pod(cluster, job_pods(cluster)[0])
    cluster.settle(controller)
    assert job(cluster).is_finished()
    cluster.refresh()
    ttl.drain()
    assert job(cluster) is not None
    cluster.clock.advance(61)
    cluster.refresh()
    ttl.drain()
    deleted = job(cluster)
    assert deleted is None or deleted.metadata.deletion_timestamp is not None


# -- helpers --------------------------------------------------------------------------------------


@pytest.mark.parametrize("failures, since_last, remaining", [
    (0, 0, 0), (1, 0, 10), (1, 4, 6), (2, 0, 20), (3, 15, 25), (6, 0, 320), (7, 0, 600), (20, 0, 600), (2, 30, 0)])
def test_back_off_doubles_from_ten_seconds_to_ten_minutes(failures, since_last, remaining):
    assert backoff_remaining(failures, 1000.0, 1000.0 + since_last) == remaining


def test_a_success_resets_the_back_off_to_the_failures_after_it(cluster):
    def pod_finished_at(when):
        return api.Pod.model_validate({"metadata": {"name": "p"}, "spec": {"containers": []}, "status": {
            "containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": 1,
                                                                           "finishedAt": format_time(when)}}}]}})
    record = next_backoff_record(BackoffRecord(3, 50.0), [pod_finished_at(100.0)],
                                 [pod_finished_at(90.0), pod_finished_at(110.0), pod_finished_at(120.0)])
    assert (record.failures_after_last_success, record.last_failure_time) == (2, 120.0)


def test_ordered_indexes_render_as_kubernetes_writes_them():
    assert str(OrderedIndexes([0, 1, 2, 5, 7, 8])) == "0-2,5,7-8"
    assert OrderedIndexes.parse("1,3-5", 10).indexes == {1, 3, 4, 5}
    assert str(OrderedIndexes()) == ""


def test_deleting_a_job_cascades_to_its_pods(cluster, controller):
    from controllers.garbagecollector import GarbageCollector

    collector = GarbageCollector(cluster.client, cluster.clock, cluster.informers)
    cluster.create("jobs", job_body(completions=2, parallelism=2))
    cluster.settle(controller)
    finish_pod(cluster, job_pods(cluster)[0])
    cluster.settle(controller)
    cluster.registry.delete("jobs", "default", "work")
    for _ in range(5):
        cluster.settle(controller)
        cluster.settle(collector)
    assert job_pods(cluster) == []


def test_pod_failure_policy_on_pod_conditions_ignores_disrupted_pods(cluster, controller):
    cluster.create("jobs", job_body(backoffLimit=0, podFailurePolicy={"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}))
    cluster.settle(controller)
    pod = job_pods(cluster)[0]
    finish_pod(cluster, pod, phase="Failed", exit_code=137)
    cluster.registry.patch_status("pods", "default", pod.metadata.name, {"status": {"conditions": [
        {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager"}]}})
    cluster.settle(controller)
    current = job(cluster)
    assert not current.is_finished() and (current.status.failed or 0) == 0


def test_a_failing_pod_create_is_an_event_and_the_next_sync_retries(cluster, controller):
    cluster.client.fail("create", errors.Conflict("injected"), resource="pods")
    cluster.create("jobs", job_body(completions=2, parallelism=2))
    cluster.refresh()
    with pytest.raises(errors.Conflict):
        controller.sync("default/work")
    assert "FailedCreate" in [event.reason for event in cluster.list("events")]
    cluster.settle(controller)
    assert len(job_pods(cluster)) == 2
