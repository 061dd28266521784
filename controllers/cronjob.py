"""The CronJob controller: makes a Job from `jobTemplate` each time the schedule fires.

Follows k/k `pkg/controller/cronjob/cronjob_controllerv2.go`. Event handlers enqueue the CronJob's
`namespace/name` (for a Job event, its owning CronJob's). `sync` re-reads the CronJob and the
Jobs it controls from the caches, then:

1. brings `status.active` up to date (finished Jobs leave it with a `SawCompletedJob` event, a
   missing one with `MissingJob`; a successful Job moves `lastSuccessfulTime`);
2. unless suspended, finds the most recent scheduled time that has not run yet, counting from
   `lastScheduleTime` (or the creation time): after a daemon restart or a long suspend that is
   still only one run, the latest; more than 100 missed times also gives the `TooManyMissedTimes`
   warning; a run later than `startingDeadlineSeconds` is skipped (`MissSchedule`);
3. honours `concurrencyPolicy` (Forbid skips while a Job is active, Replace deletes the active
   Jobs first), creates the Job `<cronjob>-<scheduled minutes since the epoch>` (the name is the
   lock that keeps a restarted controller from running a time twice), and records it;
4. deletes the oldest finished Jobs beyond the history limits;
5. asks to be called again just after the next scheduled time (100 ms later, as Kubernetes).

Time comes from the injected clock, so tests run schedules in milliseconds.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from email.utils import format_datetime
from zoneinfo import ZoneInfo

from minikube_py.api import errors
from minikube_py.api.batch import (
    COMPLETE,
    CRONJOB_SCHEDULED_TIMESTAMP_ANNOTATION,
    FAILED,
    CronJob,
    Job,
)
from minikube_py.api.cron import Schedule, ScheduleError, parse_schedule, time_zone_problem
from minikube_py.api.meta import ObjectReference
from minikube_py.api.times import format_time, parse_time
from minikube_py.client.api import Client
from minikube_py.client.controller import Controller
from minikube_py.client.events import NORMAL, WARNING, EventRecorder
from minikube_py.client.informer import SharedInformers, cache_key, shared_informers
from minikube_py.clock import Clock
from controllers.common import error_text, get_controller_of, new_controller_ref

log = logging.getLogger(__name__)

COMPONENT = "cronjob-controller"
NEXT_SCHEDULE_DELTA_SECONDS = 0.1  # wake just after the scheduled time, never just before
TOO_MANY_MISSED = 100


def job_name(cron_job: CronJob, scheduled: float) -> str:
    """`<cronjob>-<minutes since the epoch>`: one name per scheduled time."""
    return f"{cron_job.metadata.name}-{int(scheduled) // 60}"


def schedule_of(cron_job: CronJob) -> Schedule:
    return parse_schedule(cron_job.spec.schedule, cron_job.spec.time_zone)


def most_recent_schedule_time(cron_job: CronJob, now: float, schedule: Schedule,
                              include_starting_deadline: bool) -> tuple[float, float | None, int]:
    """(earliest time considered, the most recent unmet scheduled time or None, number missed).

    k/k mostRecentScheduleTime: counting from lastScheduleTime (else creation), or from
    now - startingDeadlineSeconds when that is later. The number missed is an estimate from the
    interval between the first two times, e.g. hourly and 5 h 30 min since the last run: 5 + 1.
    """
    earliest = parse_time(cron_job.metadata.creation_timestamp) if cron_job.metadata.creation_timestamp else now
    if cron_job.status.last_schedule_time:
        earliest = parse_time(cron_job.status.last_schedule_time)
    if include_starting_deadline and cron_job.spec.starting_deadline_seconds is not None:
        earliest = max(earliest, now - cron_job.spec.starting_deadline_seconds)
    first = schedule.next(earliest)
    if first is not None and now < first:
        return earliest, None, 0
    second = schedule.next(first) if first is not None else None
    if first is None or second is None:
        # A schedule that parses but never comes (`0 0 31 2 *`): the library finds no next time
        # within five years and answers the zero time, whose interval Kubernetes refuses below.
        raise ScheduleError("time difference between two schedules is less than 1 second")
    if now < second:
        return earliest, first, 1
    interval = round(second - first)
    if interval < 1:
        raise ScheduleError("time difference between two schedules is less than 1 second")
    missed = int(now - first) // interval + 1
    # Start a little before the estimate (two intervals back) and walk forward to the last time
    # not after now: exact for irregular schedules such as `30 6-16/4 * * 1-5`.
    moment = schedule.next(first + (missed - 2) * interval)
    most_recent = None
    while moment is not None and moment <= now:
        most_recent = moment
        moment = schedule.next(moment)
    return earliest, most_recent, missed


def next_schedule_delay(cron_job: CronJob, now: float, schedule: Schedule) -> float | None:
    """Seconds until just after the next scheduled time."""
    try:
        earliest, most_recent, _ = most_recent_schedule_time(cron_job, now, schedule, False)
    except ScheduleError:
        return None
    following = schedule.next(most_recent if most_recent is not None else earliest)
    if following is None:
        return None
    return max(following + NEXT_SCHEDULE_DELTA_SECONDS - now, 0.0)


def _finished_type(job: Job) -> str | None:
    condition = job.finished_condition()
    return condition.type if condition is not None else None


def _rfc1123z(epoch: float) -> str:
    return format_datetime(datetime.fromtimestamp(epoch, timezone.utc)).replace("-0000", "+0000")


class CronJobController(Controller[str]):
    """Reconciles CronJobs; keys are `namespace/name`."""

    def __init__(self, client: Client, clock: Clock | None = None, informers: SharedInformers | None = None,
                 recorder: EventRecorder | None = None, workers: int = 1):
        super().__init__(COMPONENT, clock, workers)
        self.client = client
        informers = informers or shared_informers(client)
        self.recorder = recorder or EventRecorder(client, COMPONENT, self.clock)
        self.cron_jobs = self.watch(informers.informer("cronjobs"), on_add=self._cron_job_changed,
                                    on_update=lambda old, new: self._cron_job_changed(new),
                                    on_delete=self._cron_job_changed)
        self.jobs = self.watch(informers.informer("jobs"), on_add=self._job_changed,
                               on_update=self._job_updated, on_delete=self._job_changed)

    # -- event handlers ---------------------------------------------------------------------------

    def _cron_job_changed(self, cron_job: CronJob) -> None:
        self.enqueue(cache_key(cron_job))

    def _job_changed(self, job: Job) -> None:
        reference = get_controller_of(job)
        if reference is not None and reference.kind == "CronJob":
            self.enqueue(f"{job.metadata.namespace}/{reference.name}")

    def _job_updated(self, old: Job, new: Job) -> None:
        self._job_changed(new)
        if get_controller_of(old) != get_controller_of(new):
            self._job_changed(old)

    # -- sync ---------------------------------------------------------------------------------------

    def sync(self, key: str) -> float | None:
        cached = self.cron_jobs.get(key)
        if cached is None:
            return None
        cron_job = cached.model_copy(deep=True)
        jobs = [job for job in self.jobs.by_owner_uid(cron_job.metadata.uid or "")
                if (reference := get_controller_of(job)) is not None and reference.uid == cron_job.metadata.uid]
        before = cron_job.status.to_dict()
        error: Exception | None = None
        requeue: float | None = None
        try:
            requeue = self._sync_cron_job(cron_job, jobs)
        except Exception as raised:
            error = raised
        if cron_job.metadata.deletion_timestamp is None:
            self._clean_up_finished_jobs(cron_job, jobs)
        if cron_job.status.to_dict() != before:
            try:
                self.client.replace_status(cron_job)
            except errors.NotFound:
                return None
        if error is not None:
            raise error
        return requeue

    def _sync_cron_job(self, cron_job: CronJob, jobs: list[Job]) -> float | None:
        now = self.clock.now()
        self._update_active(cron_job, jobs)
        if cron_job.metadata.deletion_timestamp is not None:
            return None
        if cron_job.spec.time_zone is not None:
            problem = time_zone_problem(cron_job.spec.time_zone)
            if problem:
                self.recorder.event(cron_job, WARNING, "UnknownTimeZone",
                                    f'invalid timeZone: "{cron_job.spec.time_zone}": {problem}')
                return None
        if cron_job.spec.suspend:
            return None
        try:
            schedule = schedule_of(cron_job)
        except ScheduleError as problem:
            self.recorder.event(cron_job, WARNING, "UnparseableSchedule",
                                f'unparseable schedule: "{cron_job.spec.schedule}" : {problem}')
            return None
        try:
            _, scheduled, missed = most_recent_schedule_time(cron_job, now, schedule, True)
        except ScheduleError as problem:
            self.recorder.event(cron_job, WARNING, "InvalidSchedule",
                                f"invalid schedule: {cron_job.spec.schedule} : {problem}")
            return None
        if scheduled is not None and missed > TOO_MANY_MISSED:
            self.recorder.event(cron_job, WARNING, "TooManyMissedTimes",
                                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds "
                                "or check clock skew")
        if scheduled is None:
            return next_schedule_delay(cron_job, now, schedule)
        deadline = cron_job.spec.starting_deadline_seconds
        if deadline is not None and scheduled + deadline < now:
            self.recorder.event(cron_job, WARNING, "MissSchedule",
                                f"Missed scheduled time to start a job: {_rfc1123z(scheduled)}")
            return next_schedule_delay(cron_job, now, schedule)
        name = job_name(cron_job, scheduled)
        already_processed = any(reference.name == name for reference in cron_job.status.active or [])
        if already_processed or (cron_job.status.last_schedule_time
                                 and parse_time(cron_job.status.last_schedule_time) == scheduled):
            return next_schedule_delay(cron_job, now, schedule)
        if cron_job.spec.concurrency_policy == "Forbid" and cron_job.status.active:
            self.recorder.event(cron_job, NORMAL, "JobAlreadyActive",
                                "Not starting job because prior execution is running and concurrency policy is Forbid")
            return next_schedule_delay(cron_job, now, schedule)
        if cron_job.spec.concurrency_policy == "Replace":
            for reference in list(cron_job.status.active or []):
                try:
                    job = self.client.get("jobs", reference.name or "", namespace=reference.namespace)
                except errors.NotFound:
                    self._remove_from_active(cron_job, reference.uid)
                    continue
                except Exception as problem:
                    self.recorder.event(cron_job, WARNING, "FailedGet", f"Get job: {problem}")
                    raise
                self._delete_job(cron_job, job)
        created = self._create_job(cron_job, scheduled)
        if created is None:
            return next_schedule_delay(cron_job, now, schedule)
        if not any(reference.uid == created.metadata.uid for reference in cron_job.status.active or []):
            cron_job.status.active = [*(cron_job.status.active or []), ObjectReference(
                api_version="batch/v1", kind="Job", namespace=created.metadata.namespace, name=created.metadata.name,
                uid=created.metadata.uid, resource_version=created.metadata.resource_version)]
        cron_job.status.last_schedule_time = format_time(scheduled)
        return next_schedule_delay(cron_job, now, schedule)

    def _update_active(self, cron_job: CronJob, jobs: list[Job]) -> None:
        children = {job.metadata.uid for job in jobs}
        for job in jobs:
            in_active = any(reference.uid == job.metadata.uid for reference in cron_job.status.active or [])
            finished = _finished_type(job)
            if not in_active and finished is None:
                self.recorder.event(cron_job, WARNING, "UnexpectedJob",
                                    f"Saw a job that the controller did not create or forgot: {job.metadata.name}")
            elif in_active and finished is not None:
                self._remove_from_active(cron_job, job.metadata.uid)
                self.recorder.event(cron_job, NORMAL, "SawCompletedJob",
                                    f"Saw completed job: {job.metadata.name}, condition: {finished}")
            if finished == COMPLETE and job.status.completion_time:
                last = cron_job.status.last_successful_time
                if last is None or parse_time(job.status.completion_time) > parse_time(last):
                    cron_job.status.last_successful_time = job.status.completion_time
        for reference in list(cron_job.status.active or []):
            if reference.uid in children:
                continue
            try:
                self.client.get("jobs", reference.name or "", namespace=reference.namespace)
            except errors.NotFound:
                self.recorder.event(cron_job, NORMAL, "MissingJob", f"Active job went missing: {reference.name}")
                self._remove_from_active(cron_job, reference.uid)

    @staticmethod
    def _remove_from_active(cron_job: CronJob, uid: str | None) -> None:
        remaining = [reference for reference in cron_job.status.active or [] if reference.uid != uid]
        cron_job.status.active = remaining or None

    def _job_from_template(self, cron_job: CronJob, scheduled: float) -> Job:
        template = cron_job.spec.job_template
        annotations = dict(template.metadata.annotations or {})
        zone = ZoneInfo(cron_job.spec.time_zone) if cron_job.spec.time_zone else timezone.utc
        moment = datetime.fromtimestamp(scheduled, zone)
        annotations[CRONJOB_SCHEDULED_TIMESTAMP_ANNOTATION] = (
            moment.isoformat().replace("+00:00", "Z") if zone is timezone.utc else moment.isoformat())
        metadata = {
            "name": job_name(cron_job, scheduled),
            "namespace": cron_job.metadata.namespace,
            "labels": dict(template.metadata.labels or {}) or None,
            "annotations": annotations,
            "ownerReferences": [new_controller_ref(cron_job).to_dict()],
        }
        return Job.model_validate({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {key: value for key, value in metadata.items() if value is not None},
            "spec": template.spec.to_dict(),
        })

    def _create_job(self, cron_job: CronJob, scheduled: float) -> Job | None:
        """Create the run's Job; an existing one of ours (a restart between create and status
        write) is taken as created. None when a Job of that name belongs to someone else."""
        wanted = self._job_from_template(cron_job, scheduled)
        try:
            created: Job = self.client.create(wanted)
        except errors.AlreadyExists:
            existing: Job = self.client.get("jobs", wanted.metadata.name or "", namespace=wanted.metadata.namespace)
            reference = get_controller_of(existing)
            if reference is None or reference.uid != cron_job.metadata.uid:
                return None
            return existing
        except Exception as problem:
            self.recorder.event(cron_job, WARNING, "FailedCreate", f"Error creating job: {error_text(problem)}")
            raise
        self.recorder.event(cron_job, NORMAL, "SuccessfulCreate", f"Created job {created.metadata.name}")
        return created

    def _delete_job(self, cron_job: CronJob, job: Job) -> None:
        try:
            self.client.delete("jobs", job.metadata.name or "", namespace=job.metadata.namespace,
                               propagation_policy="Background")
        except errors.NotFound:
            pass
        except Exception as problem:
            self.recorder.event(cron_job, WARNING, "FailedDelete", f"Deleted job: {error_text(problem)}")
            raise
        self._remove_from_active(cron_job, job.metadata.uid)
        self.recorder.event(cron_job, NORMAL, "SuccessfulDelete", f"Deleted job {job.metadata.name}")

    def _clean_up_finished_jobs(self, cron_job: CronJob, jobs: list[Job]) -> None:
        """Keep the newest `successfulJobsHistoryLimit` complete and `failedJobsHistoryLimit`
        failed Jobs, by start time (k/k cleanupFinishedJobs)."""
        def started(job: Job) -> float:
            moment = job.status.start_time or job.metadata.creation_timestamp
            return parse_time(moment) if moment else 0.0

        for kind, limit in ((COMPLETE, cron_job.spec.successful_jobs_history_limit),
                            (FAILED, cron_job.spec.failed_jobs_history_limit)):
            finished = sorted((job for job in jobs if _finished_type(job) == kind
                               and job.metadata.deletion_timestamp is None), key=started)
            for job in finished[:max(len(finished) - limit, 0)]:
                try:
                    self._delete_job(cron_job, job)
                except Exception:
                    log.exception("deleting old job %s of cronjob %s failed", job.metadata.name, cache_key(cron_job))
