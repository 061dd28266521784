"""`create job` (from an image, from a CronJob) and `get jobs|cronjobs`: kubectl's shapes against the live API."""

from __future__ import annotations


def test_create_job_from_an_image_and_command(live):
    result = live.run("create", "job", "once", "--image=busybox", "--", "sh", "-c", "echo hi")
    assert (result.code, result.out) == (0, "job.batch/once created\n")
    job = live.registry.get("jobs", "default", "once")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container == {**container, "name": "once", "image": "busybox", "command": ["sh", "-c", "echo hi"]}
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["selector"]["matchLabels"] == {"batch.kubernetes.io/controller-uid": job["metadata"]["uid"]}


def test_create_job_from_a_cronjob_copies_its_template_and_names_its_owner(live):
    live.registry.create("cronjobs", "default", {
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
        "spec": {"schedule": "@hourly", "jobTemplate": {"metadata": {"labels": {"app": "tick"}}, "spec": {
            "template": {"spec": {"restartPolicy": "OnFailure",
                                  "containers": [{"name": "main", "image": "busybox", "command": ["date"]}]}}}}}})
    result = live.run("create", "job", "tick-now", "--from=cronjob/tick")
    assert (result.code, result.out) == (0, "job.batch/tick-now created\n")
    job = live.registry.get("jobs", "default", "tick-now")
    assert job["metadata"]["annotations"] == {"cronjob.kubernetes.io/instantiate": "manual"}
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    assert job["metadata"]["labels"]["app"] == "tick"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["date"]


def test_create_job_needs_exactly_one_of_image_and_from(live):
    assert live.run("create", "job", "x").err == "error: either --image or --from must be specified\n"
    assert live.run("create", "job", "x", "--image=busybox", "--from=cronjob/y").err == \
        "error: --image and --from are mutually exclusive\n"
    assert live.run("create", "job", "x", "--from=deployment/web").code == 1
    missing = live.run("create", "job", "x", "--from=cronjob/nothing")
    assert missing.code == 1 and 'cronjobs.batch "nothing" not found' in missing.err


def test_a_job_without_a_valid_restart_policy_is_refused_with_the_field(live):
    live.run("create", "job", "ok", "--image=busybox")
    path = live.write("bad-job.yaml", """
apiVersion: batch/v1
kind: Job
metadata: {name: bad}
spec:
  template:
    spec:
      containers: [{name: main, image: busybox}]
""")
    result = live.run("apply", "-f", path)
    assert result.code == 1
    assert 'spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"' \
        in result.err


def test_get_jobs_and_cronjobs_print_kubectl_columns(live):
    live.run("create", "job", "once", "--image=busybox")
    jobs = live.run("get", "jobs").out.splitlines()
    assert jobs[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert jobs[1].split()[:3] == ["once", "Running", "0/1"]
    live.registry.create("cronjobs", "default", {
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
        "spec": {"schedule": "*/5 * * * *", "timeZone": "Europe/Paris", "jobTemplate": {"spec": {
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}}}}})
    cronjobs = live.run("get", "cronjobs").out.splitlines()
    assert cronjobs[0].split() == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"]
    assert cronjobs[1].split()[:7] == ["tick", "*/5", "*", "*", "*", "*", "Europe/Paris"]
    assert cronjobs[1].split()[7:10] == ["False", "0", "<none>"]


def test_describe_job_and_cronjob_show_kubectl_keys(live):
    live.run("create", "job", "once", "--image=busybox")
    text = live.run("describe", "job", "once").out
    for key in ("Name:", "Selector:", "Parallelism:", "Completions:", "Completion Mode:", "Suspend:",
                "Backoff Limit:", "Pods Statuses:", "Pod Template:"):
        assert key in text
    assert "Pods Statuses:" in text and "0 Active (0 Ready) / 0 Succeeded / 0 Failed" in text
    live.registry.create("cronjobs", "default", {
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
        "spec": {"schedule": "@daily", "jobTemplate": {"spec": {
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}}}}})
    text = live.run("describe", "cronjob/tick").out
    for line in ("Schedule:", "Concurrency Policy:", "Successful Job History Limit:", "Last Schedule Time:",
                 "Active Jobs:"):
        assert line in text
