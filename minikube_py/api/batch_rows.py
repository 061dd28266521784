"""The `get` cells of Jobs and CronJobs, as kube-apiserver's printers compute them.

k/k `pkg/printers/internalversion/printers.go` printJob and printCronJob: a Job's STATUS is the
first of Complete, Failed, Terminating, Suspended, FailureTarget that applies (else Running),
COMPLETIONS is `succeeded/completions` (`0/1 of 3` for a work queue with parallelism 3), DURATION
runs from startTime to completionTime (or now); a CronJob shows its schedule, time zone, suspend
flag, how many Jobs are active and how long ago the last one was scheduled. Pure functions of
wire dicts and `now`, like the rest of `api.printers`.
"""

from __future__ import annotations

from typing import Any

from minikube_py.api import times

NONE = "<none>"


def _age(timestamp: str | None, now: float) -> str:
    return times.human_duration(now - times.parse_time(timestamp)) if timestamp else "<unknown>"


def _has_condition(status: dict[str, Any], condition_type: str) -> bool:
    return any(condition.get("type") == condition_type and condition.get("status") == "True"
               for condition in status.get("conditions") or [])


def job_status_text(job: dict[str, Any]) -> str:
    status = job.get("status") or {}
    if _has_condition(status, "Complete"):
        return "Complete"
    if _has_condition(status, "Failed"):
        return "Failed"
    if (job.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    if _has_condition(status, "Suspended"):
        return "Suspended"
    if _has_condition(status, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def job_completions(job: dict[str, Any]) -> str:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    succeeded = status.get("succeeded", 0)
    if spec.get("completions") is not None:
        return f"{succeeded}/{spec['completions']}"
    parallelism = spec.get("parallelism", 0)
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def job_duration(job: dict[str, Any], now: float) -> str:
    status = job.get("status") or {}
    start, completion = status.get("startTime"), status.get("completionTime")
    if not start:
        return ""
    end = times.parse_time(completion) if completion else now
    return times.human_duration(end - times.parse_time(start))


def job_cells(job: dict[str, Any], now: float) -> list[Any]:
    """Name, Status, Completions, Duration, Age (`api.printers` adds the wide template cells)."""
    return [job["metadata"]["name"], job_status_text(job), job_completions(job), job_duration(job, now),
            _age(job["metadata"].get("creationTimestamp"), now)]


def cron_job_cells(cron_job: dict[str, Any], now: float) -> list[Any]:
    """Name, Schedule, Timezone, Suspend, Active, Last Schedule, Age (`api.printers` adds the wide cells)."""
    spec, status = cron_job.get("spec") or {}, cron_job.get("status") or {}
    last_schedule = status.get("lastScheduleTime")
    suspend = spec.get("suspend")
    return [cron_job["metadata"]["name"], spec.get("schedule", ""), spec.get("timeZone") or NONE,
            "<unset>" if suspend is None else ("True" if suspend else "False"), len(status.get("active") or []),
            _age(last_schedule, now) if last_schedule else NONE,
            _age(cron_job["metadata"].get("creationTimestamp"), now)]
