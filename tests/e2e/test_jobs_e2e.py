"""Jobs and CronJobs on real pods, driven by the real kubectl: completions with parallelism, Indexed
pods that see their index, `create job` and `kubectl wait --for=condition=complete`, and a
CronJob `*/1 * * * *` that starts its first Job within 70 s and keeps its history limit.

The CronJob is created first and checked last, so the minute boundary it waits for passes while
the Job tests run.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time

import pytest

from tests.e2e.cluster import Cluster, wait_for

CRONJOB = """
apiVersion: batch/v1
kind: CronJob
metadata:
  name: tick
spec:
  schedule: "*/1 * * * *"
  successfulJobsHistoryLimit: 1
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 1
          containers:
          - name: main
            image: busybox
            command: ["sh", "-c", "echo tick"]
"""

FIVE = """
apiVersion: batch/v1
kind: Job
metadata:
  name: five
spec:
  completions: 5
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "echo working"]
"""

INDEXED = """
apiVersion: batch/v1
kind: Job
metadata:
  name: indexed
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "echo index=$JOB_COMPLETION_INDEX host=$(hostname)"]
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("e2e tests run real pods and need root")
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    running = Cluster().start(port=free_port())
    try:
        yield running
    finally:
        leftovers = running.stop()
        assert not leftovers, f"cluster {running.name} left these on the host after stop: {leftovers}"


def job_pods(cluster: Cluster, job: str) -> list[dict]:
    return cluster.client.raw.list("pods", "default", label_selector=f"batch.kubernetes.io/job-name={job}")["items"]


def test_a_cronjob_and_a_manual_run_of_it_are_created(cluster):
    assert cluster.kubectl("apply", "-f", "-", input=CRONJOB).stdout.strip() == "cronjob.batch/tick created"
    assert cluster.client.raw.get("cronjobs", "default", "tick")["spec"]["schedule"] == "*/1 * * * *"
    # A run by hand, owned by the CronJob: it counts towards the history limit.
    created = cluster.cli("create", "job", "tick-by-hand", "--from=cronjob/tick").stdout
    assert created.strip() == "job.batch/tick-by-hand created"
    cluster.kubectl("wait", "--for=condition=complete", "job/tick-by-hand", "--timeout=60s", timeout=70)


def test_job_of_five_completions_with_parallelism_two_completes(cluster):
    cluster.kubectl("apply", "-f", "-", input=FIVE)
    waited = cluster.kubectl("wait", "--for=condition=complete", "job/five", "--timeout=60s", timeout=70)
    assert waited.stdout.strip() == "job.batch/five condition met"
    job = json.loads(cluster.kubectl("get", "job", "five", "-o", "json").stdout)
    assert job["status"]["succeeded"] == 5 and "active" not in job["status"]
    assert job["status"]["uncountedTerminatedPods"] == {}
    pods = job_pods(cluster, "five")
    assert len(pods) == 5
    assert all(pod["status"]["phase"] == "Succeeded" and not pod["metadata"].get("finalizers") for pod in pods)
    row = cluster.kubectl("get", "job", "five").stdout.splitlines()
    assert row[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert row[1].split()[:3] == ["five", "Complete", "5/5"]
    described = cluster.kubectl("describe", "job", "five").stdout
    assert "Pods Statuses:    0 Active (0 Ready) / 5 Succeeded / 0 Failed" in described
    assert "Completed" in described  # the Completed event


def test_indexed_job_pods_see_their_index_and_hostname(cluster):
    cluster.kubectl("apply", "-f", "-", input=INDEXED)
    cluster.kubectl("wait", "--for=condition=complete", "job/indexed", "--timeout=60s", timeout=70)
    seen = set()
    for pod in job_pods(cluster, "indexed"):
        index = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        log = cluster.kubectl("logs", pod["metadata"]["name"]).stdout.strip()
        assert log == f"index={index} host=indexed-{index}"
        seen.add(index)
    assert seen == {"0", "1", "2"}
    assert cluster.client.raw.get("jobs", "default", "indexed")["status"]["completedIndexes"] == "0-2"


def test_create_job_runs_a_command_and_a_failing_one_fails_after_its_backoff_limit(cluster):
    cluster.cli("create", "job", "hello", "--image=busybox", "--", "sh", "-c", "echo hello")
    cluster.kubectl("wait", "--for=condition=complete", "job/hello", "--timeout=60s", timeout=70)
    pod = job_pods(cluster, "hello")[0]
    assert cluster.kubectl("logs", pod["metadata"]["name"]).stdout.strip() == "hello"
    # kubectl's own `create job` sends protobuf; its manifest, applied, is JSON.
    manifest = cluster.kubectl("create", "job", "from-kubectl", "--image=busybox", "--dry-run=client", "-o", "yaml",
                               "--", "true").stdout
    cluster.kubectl("apply", "-f", "-", input=manifest)
    cluster.kubectl("wait", "--for=condition=complete", "job/from-kubectl", "--timeout=60s", timeout=70)
    failing = FIVE.replace("name: five", "name: fails").replace("completions: 5", "completions: 1").replace(
        "parallelism: 2", "parallelism: 1\n  backoffLimit: 0").replace("echo working", "exit 3")
    cluster.kubectl("apply", "-f", "-", input=failing)
    cluster.kubectl("wait", "--for=condition=failed", "job/fails", "--timeout=60s", timeout=70)
    job = cluster.client.raw.get("jobs", "default", "fails")
    failed = [c for c in job["status"]["conditions"] if c["type"] == "Failed"][0]
    assert (failed["reason"], failed["message"]) == ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
    pod = job_pods(cluster, "fails")[0]
    assert pod["status"]["phase"] == "Failed"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3


def test_deleting_a_job_deletes_its_pods(cluster):
    cluster.kubectl("delete", "job", "hello", timeout=60)
    wait_for(lambda: not job_pods(cluster, "hello"), 30, "the pods of job/hello to be deleted")


def test_the_cronjob_starts_its_first_job_within_70_seconds_and_keeps_its_history_limit(cluster):
    created = cluster.client.raw.get("cronjobs", "default", "tick")["metadata"]["creationTimestamp"]
    started = time.time()

    def scheduled_jobs() -> list[dict]:
        return [job for job in cluster.client.raw.list("jobs", "default")["items"]
                if job["metadata"]["name"].startswith("tick-") and job["metadata"]["name"] != "tick-by-hand"]

    first = wait_for(lambda: scheduled_jobs() or None, 70, f"a Job of cronjob/tick (created {created})")
    assert time.time() - started < 70
    name = first[0]["metadata"]["name"]
    assert int(name.removeprefix("tick-")) * 60 % 60 == 0
    cluster.kubectl("wait", "--for=condition=complete", f"job/{name}", "--timeout=60s", timeout=70)
    # successfulJobsHistoryLimit 1: the older run by hand goes once this one has completed.
    wait_for(lambda: cluster.client.raw.list("jobs", "default", field_selector="metadata.name=tick-by-hand")["items"] == [],
             30, "job/tick-by-hand to be deleted by the history limit")
    cron_job = cluster.client.raw.get("cronjobs", "default", "tick")
    assert cron_job["status"]["lastScheduleTime"] and cron_job["status"]["lastSuccessfulTime"]
    row = cluster.kubectl("get", "cronjob", "tick").stdout.splitlines()
    assert row[0].split() == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"]
