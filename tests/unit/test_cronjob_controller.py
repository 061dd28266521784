"""CronJob: schedule parsing and next times, validation, and the controller on the fake cluster and clock."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from minikube_py.api import errors
from minikube_py.api.cron import ScheduleError, parse_schedule
from minikube_py.api.times import format_time
from controllers.cronjob import CronJobController, job_name, most_recent_schedule_time


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() if "+" not in text \
        else datetime.fromisoformat(text).timestamp()


def iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M")


# -- schedules --------------------------------------------------------------------------------------

# (expression, time zone, after (UTC), the next three times (UTC))
SCHEDULES = [
    ("*/1 * * * *", None, "2026-03-07T12:00:30", ["2026-03-07T12:01", "2026-03-07T12:02", "2026-03-07T12:03"]),
    ("*/15 * * * *", None, "2026-03-07T12:14:59", ["2026-03-07T12:15", "2026-03-07T12:30", "2026-03-07T12:45"]),
    ("5-10/5 3 * * *", None, "2026-03-07T00:00", ["2026-03-07T03:05", "2026-03-07T03:10", "2026-03-08T03:05"]),
    ("0 0 1,15 * *", None, "2026-03-07T00:00", ["2026-03-15T00:00", "2026-04-01T00:00", "2026-04-15T00:00"]),
    ("15 10 * * mon-fri", None, "2026-03-06T11:00", ["2026-03-09T10:15", "2026-03-10T10:15", "2026-03-11T10:15"]),
    ("0 12 * jan,JUL sun", None, "2026-03-07T00:00", ["2026-07-05T12:00", "2026-07-12T12:00", "2026-07-19T12:00"]),
    # Both day fields restricted: either matches (the 13th, or any Friday).
    ("0 0 13 * 5", None, "2026-03-01T00:00", ["2026-03-06T00:00", "2026-03-13T00:00", "2026-03-20T00:00"]),
    ("0 0 29 2 *", None, "2026-01-01T00:00", ["2028-02-29T00:00", "2032-02-29T00:00", "2036-02-29T00:00"]),
    ("@hourly", None, "2026-03-07T12:00", ["2026-03-07T13:00", "2026-03-07T14:00", "2026-03-07T15:00"]),
    ("@daily", None, "2026-03-07T12:00", ["2026-03-08T00:00", "2026-03-09T00:00", "2026-03-10T00:00"]),
    ("@weekly", None, "2026-03-07T12:00", ["2026-03-08T00:00", "2026-03-15T00:00", "2026-03-22T00:00"]),
    ("@monthly", None, "2026-03-07T12:00", ["2026-04-01T00:00", "2026-05-01T00:00", "2026-06-01T00:00"]),
    ("@yearly", None, "2026-03-07T12:00", ["2027-01-01T00:00", "2028-01-01T00:00", "2029-01-01T00:00"]),
    ("@every 90m", None, "2026-03-07T12:00", ["2026-03-07T13:30", "2026-03-07T15:00", "2026-03-07T16:30"]),
    # 09:00 in New York is 14:00 UTC before the spring-forward of 8 March 2026, 13:00 after.
    ("0 9 * * *", "America/New_York", "2026-03-07T00:00", ["2026-03-07T14:00", "2026-03-08T13:00", "2026-03-09T13:00"]),
    # 02:30 does not exist in New York on 8 March 2026: that day has no run, as in Kubernetes.
    ("30 2 * * *", "America/New_York", "2026-03-07T00:00", ["2026-03-07T07:30", "2026-03-09T06:30", "2026-03-10T06:30"]),
    # Autumn: 09:00 in Paris is 07:00 UTC in summer time, 08:00 after 25 October 2026.
    ("0 9 * * *", "Europe/Paris", "2026-10-24T00:00", ["2026-10-24T07:00", "2026-10-25T08:00", "2026-10-26T08:00"]),
    ("0 0 * * *", "Asia/Tokyo", "2026-03-07T00:00", ["2026-03-07T15:00", "2026-03-08T15:00", "2026-03-09T15:00"]),
]


@pytest.mark.parametrize("expression, zone, after, expected", SCHEDULES)
def test_next_times_follow_the_cron_library(expression, zone, after, expected):
    schedule = parse_schedule(expression, zone)
    moment = utc(after)
    found = []
    for _ in range(3):
        moment = schedule.next(moment)
        found.append(iso(moment))
    assert found == expected


def test_a_schedule_that_never_fires_has_no_next_time():
    assert parse_schedule("0 0 30 2 *").next(utc("2026-01-01T00:00")) is None


@pytest.mark.parametrize("expression, message", [
    ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("* * * * * *", "expected exactly 5 fields, found 6: [* * * * * *]"),
    ("60 * * * *", "end of range (60) above maximum (59): 60"),
    ("* 5-1 * * *", "beginning of range (5) beyond end of range (1): 5-1"),
    ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
    ("@sometimes", "unrecognized descriptor: @sometimes"),
    ("a * * * *", 'failed to parse int from a: strconv.Atoi: parsing "a": invalid syntax'),
    ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
])
def test_bad_schedules_are_refused_with_the_library_messages(expression, message):
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(expression)
    assert str(caught.value) == message


# -- API ------------------------------------------------------------------------------------------


def cron_body(name="tick", schedule="*/1 * * * *", **spec):
    body_spec = {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox", "command": ["true"]}]}}}}}
    body_spec.update(spec)
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name}, "spec": body_spec}


def test_cronjob_gets_kubernetes_defaults(cluster):
    created = cluster.create("cronjobs", cron_body())
    spec = created.spec
    assert (spec.concurrency_policy, spec.suspend) == ("Allow", False)
    assert (spec.successful_jobs_history_limit, spec.failed_jobs_history_limit) == (3, 1)
    assert spec.job_template.spec.backoff_limit == 6


@pytest.mark.parametrize("body, message", [
    (cron_body(schedule="TZ=UTC 0 * * * *"),
     'spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead'),
    (cron_body(schedule="CRON_TZ=Europe/Paris 0 * * * *"), "cannot use TZ or CRON_TZ in schedule"),
    (cron_body(schedule="* * *"), 'spec.schedule: Invalid value: "* * *": expected exactly 5 fields, found 3: [* * *]'),
    (cron_body(timeZone="Mars/Olympus"), 'spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus'),
    (cron_body(timeZone="Local"), "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"),
    (cron_body(concurrencyPolicy="Sometimes"),
     'spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"'),
    (cron_body(startingDeadlineSeconds=-1), "spec.startingDeadlineSeconds: Invalid value: -1"),
    (cron_body(name="a" * 53), "must be no more than 52 characters"),
])
def test_invalid_cronjobs_are_refused(cluster, body, message):
    with pytest.raises(errors.Invalid) as caught:
        cluster.create("cronjobs", body)
    assert message in str(caught.value)


# -- controller -------------------------------------------------------------------------------------


@pytest.fixture
def controller(cluster):
    return CronJobController(cluster.client, cluster.clock, cluster.informers)


def jobs(cluster):
    return sorted(cluster.list("jobs"), key=lambda job: job.metadata.name)


def cron(cluster, name="tick"):
    return cluster.get("cronjobs", name)


def event_reasons(cluster):
    return [event.reason for event in cluster.list("events")]


def start_at_minute(cluster, offset_seconds=0.0):
    """Move the fake clock to a whole minute (plus an offset)."""
    now = cluster.clock.now()
    cluster.clock.advance(60 - now % 60 + offset_seconds)


def finish_job(cluster, job, condition="Complete"):
    now = format_time(cluster.clock.now())
    status = {"startTime": job.metadata.creation_timestamp,
              "conditions": [{"type": condition, "status": "True", "lastTransitionTime": now}]}
    if condition == "Complete":
        status["completionTime"] = now
    cluster.registry.patch_status("jobs", "default", job.metadata.name, {"status": status})


def test_creates_one_job_per_scheduled_minute_named_after_it(cluster, controller):
    start_at_minute(cluster, 10)
    cluster.create("cronjobs", cron_body())
    cluster.refresh()
    delay = controller.sync("default/tick")
    assert jobs(cluster) == []
    assert delay == pytest.approx(50.1)
    cluster.clock.advance(delay)
    cluster.settle(controller)
    created = jobs(cluster)
    scheduled = cluster.clock.now() - 0.1
    assert [job.metadata.name for job in created] == [f"tick-{int(scheduled) // 60}"]
    assert created[0].metadata.owner_references[0].kind == "CronJob"
    assert created[0].metadata.annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"] == \
        datetime.fromtimestamp(round(scheduled), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = cron(cluster).status
    assert status.last_schedule_time == format_time(round(scheduled))
    assert [reference.name for reference in status.active] == [created[0].metadata.name]
    assert "SuccessfulCreate" in event_reasons(cluster)


def test_finished_jobs_leave_active_and_history_limits_keep_the_newest(cluster, controller):
    start_at_minute(cluster, 1)
    cluster.create("cronjobs", cron_body(successfulJobsHistoryLimit=2, failedJobsHistoryLimit=1))
    for minute in range(5):
        cluster.clock.advance(60)
        cluster.settle(controller)
        newest = jobs(cluster)[-1]
        finish_job(cluster, newest, "Failed" if minute == 1 else "Complete")
        cluster.settle(controller)
    names = [job.metadata.name for job in jobs(cluster) if job.metadata.deletion_timestamp is None]
    assert len(names) == 3  # two complete, one failed
    status = cron(cluster).status
    assert not status.active and status.last_successful_time is not None
    reasons = event_reasons(cluster)
    assert "SawCompletedJob" in reasons and "SuccessfulDelete" in reasons


def test_forbid_skips_a_run_while_one_is_active(cluster, controller):
    start_at_minute(cluster, 1)
    cluster.create("cronjobs", cron_body(concurrencyPolicy="Forbid"))
    cluster.clock.advance(60)
    cluster.settle(controller)
    cluster.clock.advance(60)
    cluster.settle(controller)
    assert len(jobs(cluster)) == 1
    assert "JobAlreadyActive" in event_reasons(cluster)


def test_replace_deletes_the_running_job_for_the_new_one(cluster, controller):
    start_at_minute(cluster, 1)
    cluster.create("cronjobs", cron_body(concurrencyPolicy="Replace"))
    cluster.clock.advance(60)
    cluster.settle(controller)
    first = jobs(cluster)[0].metadata.name
    cluster.clock.advance(60)
    cluster.settle(controller)
    remaining = [job.metadata.name for job in jobs(cluster) if job.metadata.deletion_timestamp is None]
    assert first not in remaining and len(remaining) == 1
    assert [reference.name for reference in cron(cluster).status.active] == remaining


def test_allow_runs_concurrently(cluster, controller):
    start_at_minute(cluster, 1)
    cluster.create("cronjobs", cron_body())
    for _ in range(3):
        cluster.clock.advance(60)
        cluster.settle(controller)
    assert len(jobs(cluster)) == 3 and len(cron(cluster).status.active) == 3


def test_after_a_restart_only_the_most_recent_missed_run_starts(cluster):
    start_at_minute(cluster, 1)
    cluster.create("cronjobs", cron_body())
    # The daemon was down for 30 minutes: the controller starts afresh.
    cluster.clock.advance(30 * 60)
    restarted = CronJobController(cluster.client, cluster.clock, cluster.informers)
    cluster.settle(restarted)
    created = jobs(cluster)
    assert len(created) == 1
    latest = int(cluster.clock.now()) // 60 * 60
    assert created[0].metadata.name == f"tick-{latest // 60}"
    assert "TooManyMissedTimes" not in event_reasons(cluster)


def test_more_than_a_hundred_missed_times_warns(cluster, controller):
    start_at_minute(cluster, 1)
    cluster.create("cronjobs", cron_body())
    cluster.clock.advance(101 * 60 + 30)
    cluster.settle(controller)
    assert len(jobs(cluster)) == 1
    assert "TooManyMissedTimes" in event_reasons(cluster)
    warning = [event for event in cluster.list("events") if event.reason == "TooManyMissedTimes"][0]
    assert warning.message == ("too many missed start times. Set or decrease .spec.startingDeadlineSeconds "
                               "or check clock skew")


def test_starting_deadline_skips_a_late_run(cluster, controller):
    start_at_minute(cluster, 1)
    cluster.create("cronjobs", cron_body(schedule="0 * * * *", startingDeadlineSeconds=30))
    cluster.clock.advance(3600 + 60)  # a minute past the hour: more than 30 s late
    cluster.settle(controller)
    assert jobs(cluster) == []


def test_starting_deadline_lets_a_recent_run_start(cluster, controller):
    start_at_minute(cluster, 1)
    cluster.create("cronjobs", cron_body(startingDeadlineSeconds=30))
    cluster.clock.advance(60 + 10)
    cluster.settle(controller)
    assert len(jobs(cluster)) == 1


def test_suspended_cronjob_starts_nothing(cluster, controller):
    start_at_minute(cluster, 1)
    cluster.create("cronjobs", cron_body(suspend=True))
    cluster.clock.advance(5 * 60)
    cluster.settle(controller)
    assert jobs(cluster) == []


def test_a_job_deleted_by_hand_leaves_the_active_list(cluster, controller):
    start_at_minute(cluster, 1)
    cluster.create("cronjobs", cron_body())
    cluster.clock.advance(60)
    cluster.settle(controller)
    cluster.registry.delete("jobs", "default", jobs(cluster)[0].metadata.name)
    cluster.settle(controller)
    assert not cron(cluster).status.active


def test_time_zone_moves_the_run_with_daylight_saving(cluster, controller):
    cluster.clock.advance(utc("2026-03-07T13:00") - cluster.clock.now())
    cluster.create("cronjobs", cron_body(schedule="0 9 * * *", timeZone="America/New_York"))
    cluster.clock.advance(utc("2026-03-08T13:00:05") - cluster.clock.now())
    cluster.settle(controller)
    runs = [job.metadata.name for job in jobs(cluster)]
    assert runs == [f"tick-{int(utc('2026-03-08T13:00')) // 60}"]  # 09:00 EDT, not 14:00 UTC
    annotation = jobs(cluster)[0].metadata.annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    assert annotation == "2026-03-08T09:00:00-04:00"


def test_most_recent_schedule_time_counts_missed_runs(cluster):
    start_at_minute(cluster)
    created = cluster.create("cronjobs", cron_body(schedule="@hourly"))
    now = cluster.clock.now() + 5.5 * 3600
    _, most_recent, missed = most_recent_schedule_time(created, now, parse_schedule("@hourly"), False)
    assert missed == 5
    assert most_recent == (now // 3600) * 3600


def test_job_name_is_minutes_since_the_epoch(cluster):
    created = cluster.create("cronjobs", cron_body())
    assert job_name(created, 1_800_000_060.0) == "tick-30000001"


def test_a_schedule_that_never_fires_creates_nothing_and_other_cronjobs_still_run(cluster, controller):
    start_at_minute(cluster, 1)
    cluster.create("cronjobs", cron_body(name="never", schedule="0 0 30 2 *"))
    cluster.create("cronjobs", cron_body(name="tick"))
    cluster.clock.advance(60)
    cluster.settle(controller)
    assert [job.metadata.name.split("-")[0] for job in jobs(cluster)] == ["tick"]
    assert cron(cluster, "never").status.last_schedule_time is None


def test_a_job_template_the_api_refuses_is_a_failed_create_event_and_a_retry(cluster, controller):
    from minikube_py.api.errors import Forbidden

    start_at_minute(cluster, 1)
    cluster.create("cronjobs", cron_body())
    cluster.client.fail("create", Forbidden("jobs is forbidden: exceeded quota"), resource="jobs")
    cluster.clock.advance(60)
    cluster.settle(controller)
    assert "FailedCreate" in event_reasons(cluster)
    cluster.clock.advance(1)
    cluster.settle(controller)
    assert len(jobs(cluster)) == 1  # the retry after the failure made the run
