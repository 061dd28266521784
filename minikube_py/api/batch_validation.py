"""Defaulting and validation of Jobs and CronJobs (`batch/v1`).

Follows k/k `pkg/apis/batch/v1/defaults.go` (SetDefaults_Job, SetDefaults_CronJob),
`pkg/registry/batch/job/strategy.go` (the selector the API server generates from the Job's uid)
and `pkg/apis/batch/validation/validation.go` (ValidateJob, ValidateCronJob and their updates)
with the API server's wording. `api.resources` attaches these functions to the two kinds;
`parse_object` and the Registry call them.
"""

from __future__ import annotations

from typing import Any

from minikube_py.api import cron
from minikube_py.api.batch import (
    CONTROLLER_UID_LABEL,
    INDEXED,
    JOB_NAME_LABEL,
    LEGACY_CONTROLLER_UID_LABEL,
    LEGACY_JOB_NAME_LABEL,
    NON_INDEXED,
    CronJob,
    Job,
    JobSpec,
)
from minikube_py.api.defaults import default_pod_spec
from minikube_py.api.meta import LabelSelector, WireModel
from minikube_py.api.names import dns1123_subdomain_errors, qualified_name_errors
from minikube_py.api.selectors import Selector
from minikube_py.api.validation import (
    Problems,
    show_value,
    validate_label_selector,
    validate_labels,
    validate_metadata,
    validate_pod_spec,
)

DEFAULT_NAMESPACE = "default"
DEFAULT_BACKOFF_LIMIT = 6
MAX_INT32 = 2**31 - 1
MAX_INDEXED_COMPLETIONS = 100_000
MAX_POD_FAILURE_POLICY_RULES = 20
MAX_EXIT_CODE_VALUES = 255
MAX_SUCCESS_POLICY_RULES = 20
MAX_CRONJOB_NAME_LENGTH = 52  # 63 minus the 11 characters of `-<minutes>` in its Jobs' names
POD_FAILURE_ACTIONS = ("Count", "FailIndex", "FailJob", "Ignore")
POD_REPLACEMENT_POLICIES = ("Failed", "TerminatingOrFailed")
CONCURRENCY_POLICIES = ("Allow", "Forbid", "Replace")


def _default_namespace(obj: WireModel) -> None:
    metadata = getattr(obj, "metadata", None)
    if metadata is not None and not metadata.namespace:
        metadata.namespace = DEFAULT_NAMESPACE


def default_job_spec(spec: JobSpec) -> None:
    """SetDefaults_Job's spec part, shared by a CronJob's jobTemplate."""
    if spec.completions is None and spec.parallelism is None:
        spec.completions = 1
        spec.parallelism = 1
    if spec.parallelism is None:
        spec.parallelism = 1
    if spec.backoff_limit is None:
        spec.backoff_limit = MAX_INT32 if spec.backoff_limit_per_index is not None else DEFAULT_BACKOFF_LIMIT
    if spec.completion_mode is None:
        spec.completion_mode = NON_INDEXED
    if spec.suspend is None:
        spec.suspend = False
    if spec.pod_failure_policy is not None:
        for rule in spec.pod_failure_policy.rules:
            for pattern in rule.on_pod_conditions or []:
                if not pattern.status:
                    pattern.status = "True"
    if spec.pod_replacement_policy is None:
        spec.pod_replacement_policy = "Failed" if spec.pod_failure_policy is not None else "TerminatingOrFailed"
    default_pod_spec(spec.template.spec)


def _generate_selector(job: Job) -> None:
    """The API server's generateSelector: pods carry the Job's name and uid, the selector its uid."""
    uid = job.metadata.uid
    if not uid:
        return  # parsed outside the API server (a client checking a manifest): nothing to generate yet
    labels = dict(job.spec.template.metadata.labels or {})
    for key in (LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL):
        labels.setdefault(key, job.metadata.name or "")
    for key in (LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL):
        labels.setdefault(key, uid)
    job.spec.template.metadata.labels = labels
    if job.spec.selector is None:
        job.spec.selector = LabelSelector()
    match_labels = dict(job.spec.selector.match_labels or {})
    match_labels.setdefault(CONTROLLER_UID_LABEL, uid)
    job.spec.selector.match_labels = match_labels


def default_job(job: Job) -> None:
    _default_namespace(job)
    default_job_spec(job.spec)
    if not job.spec.manual_selector:
        _generate_selector(job)
    # Kubernetes defaults a Job again each time it is read back, so the stored Job ends up with
    # its template's labels, the generated ones included.
    if job.spec.template.metadata.labels and not job.metadata.labels:
        job.metadata.labels = dict(job.spec.template.metadata.labels)


def default_cron_job(cron_job: CronJob) -> None:
    _default_namespace(cron_job)
    default_job_spec(cron_job.spec.job_template.spec)


# --- Job validation --------------------------------------------------------------------------


def _validate_pod_failure_policy(problems: Problems, path: str, spec: JobSpec) -> None:
    policy = spec.pod_failure_policy
    if policy is None:
        return
    if len(policy.rules) > MAX_POD_FAILURE_POLICY_RULES:
        problems.add(f"{path}.rules", f"Too many: {len(policy.rules)}: must have at most "
                                      f"{MAX_POD_FAILURE_POLICY_RULES} items")
    container_names = {container.name for container in
                       [*spec.template.spec.containers, *(spec.template.spec.init_containers or [])]}
    for index, rule in enumerate(policy.rules):
        at = f"{path}.rules[{index}]"
        problems.one_of(f"{at}.action", rule.action, POD_FAILURE_ACTIONS)
        if rule.action == "FailIndex" and spec.backoff_limit_per_index is None:
            problems.forbidden(f"{at}.action", "requires the backoffLimitPerIndex to be set")
        if rule.on_exit_codes is None and rule.on_pod_conditions is None:
            problems.invalid(at, rule, "specifying one of OnExitCodes and OnPodConditions is required")
        elif rule.on_exit_codes is not None and rule.on_pod_conditions is not None:
            problems.invalid(at, rule, "specifying both OnExitCodes and OnPodConditions is not supported")
        requirement = rule.on_exit_codes
        if requirement is not None:
            code_path = f"{at}.onExitCodes"
            if requirement.container_name is not None and requirement.container_name not in container_names:
                problems.invalid(f"{code_path}.containerName", requirement.container_name,
                                 "must be one of the container or initContainer names in the pod template")
            problems.one_of(f"{code_path}.operator", requirement.operator, ("In", "NotIn"))
            if not requirement.values:
                problems.invalid(f"{code_path}.values", requirement.values, "at least one value is required")
            elif len(requirement.values) > MAX_EXIT_CODE_VALUES:
                problems.add(f"{code_path}.values", f"Too many: {len(requirement.values)}: must have at most "
                                                    f"{MAX_EXIT_CODE_VALUES} items")
            previous: int | None = None
            seen: set[int] = set()
            for value_index, value in enumerate(requirement.values):
                value_path = f"{code_path}.values[{value_index}]"
                if requirement.operator == "In" and value == 0:
                    problems.invalid(value_path, value, "must not be 0 for the In operator")
                if value in seen:
                    problems.duplicate(value_path, value)
                elif previous is not None and value < previous:
                    problems.invalid(value_path, value, "must be ordered")
                seen.add(value)
                previous = value
        for pattern_index, pattern in enumerate(rule.on_pod_conditions or []):
            pattern_path = f"{at}.onPodConditions[{pattern_index}]"
            problems.one_of(f"{pattern_path}.status", pattern.status, ("False", "True", "Unknown"))
            problems.check_each(f"{pattern_path}.type", pattern.type, qualified_name_errors(pattern.type))


def _parse_indexes(text: str, completions: int) -> list[tuple[int, int]] | str:
    """`1,3-5` as sorted, non-overlapping intervals, or the reason it is not valid."""
    intervals: list[tuple[int, int]] = []
    for part in text.split(","):
        bounds = part.split("-")
        if len(bounds) > 2 or not all(bound.isdigit() for bound in bounds):
            return f"error parsing succeededIndexes: {part}"
        low, high = int(bounds[0]), int(bounds[-1])
        if low > high:
            return f"first index is greater than the last index: {part}"
        if high >= completions:
            return f"too large index: {high}"
        if intervals and low <= intervals[-1][1]:
            return f"overlapping or out-of-order intervals: {part}"
        intervals.append((low, high))
    return intervals


def _validate_success_policy(problems: Problems, path: str, spec: JobSpec) -> None:
    policy = spec.success_policy
    if policy is None:
        return
    if spec.completion_mode != INDEXED:
        problems.invalid(path, policy, "requires indexed completion mode")
        return
    if not policy.rules:
        problems.required(f"{path}.rules", "at least one rules must be specified when the successPolicy is specified")
    if len(policy.rules) > MAX_SUCCESS_POLICY_RULES:
        problems.add(f"{path}.rules", f"Too many: {len(policy.rules)}: must have at most {MAX_SUCCESS_POLICY_RULES} items")
    completions = spec.completions or 0
    for index, rule in enumerate(policy.rules):
        at = f"{path}.rules[{index}]"
        if rule.succeeded_count is None and rule.succeeded_indexes is None:
            problems.required(at, "at least one of succeededCount or succeededIndexes must be specified")
        total_indexes = None
        if rule.succeeded_indexes is not None:
            parsed = _parse_indexes(rule.succeeded_indexes, completions)
            if isinstance(parsed, str):
                problems.invalid(f"{at}.succeededIndexes", rule.succeeded_indexes, parsed)
            else:
                total_indexes = sum(high - low + 1 for low, high in parsed)
        if rule.succeeded_count is not None:
            count_path = f"{at}.succeededCount"
            problems.non_negative(count_path, rule.succeeded_count)
            if rule.succeeded_count > completions:
                problems.invalid(count_path, rule.succeeded_count,
                                 f"must be less than or equal to {completions} (the number of specified completions)")
            if total_indexes is not None and rule.succeeded_count > total_indexes:
                problems.invalid(count_path, rule.succeeded_count,
                                 f"must be less than or equal to {total_indexes} (the number of indexes in the "
                                 "specified succeededIndexes field)")


def _validate_job_spec(problems: Problems, path: str, spec: JobSpec) -> None:
    """validateJobSpec: everything a Job and a CronJob's jobTemplate share (not the selector)."""
    problems.non_negative(f"{path}.parallelism", spec.parallelism)
    problems.non_negative(f"{path}.completions", spec.completions)
    problems.non_negative(f"{path}.activeDeadlineSeconds", spec.active_deadline_seconds)
    problems.non_negative(f"{path}.backoffLimit", spec.backoff_limit)
    problems.non_negative(f"{path}.ttlSecondsAfterFinished", spec.ttl_seconds_after_finished)
    problems.one_of(f"{path}.completionMode", spec.completion_mode, (NON_INDEXED, INDEXED))
    if spec.completion_mode == INDEXED:
        if spec.completions is None:
            problems.required(f"{path}.completions", f"when completion mode is {INDEXED}")
        elif spec.completions > MAX_INDEXED_COMPLETIONS:
            problems.invalid(f"{path}.completions", spec.completions,
                             f"must be less than or equal to {MAX_INDEXED_COMPLETIONS} when completion mode is {INDEXED}")
        if spec.parallelism is not None and spec.parallelism > MAX_INDEXED_COMPLETIONS:
            problems.invalid(f"{path}.parallelism", spec.parallelism,
                             f"must be less than or equal to {MAX_INDEXED_COMPLETIONS} when completion mode is {INDEXED}")
    if spec.backoff_limit_per_index is not None:
        problems.non_negative(f"{path}.backoffLimitPerIndex", spec.backoff_limit_per_index)
        if spec.completion_mode != INDEXED:
            problems.forbidden(f"{path}.backoffLimitPerIndex", "requires indexed completion mode")
    if spec.max_failed_indexes is not None:
        problems.non_negative(f"{path}.maxFailedIndexes", spec.max_failed_indexes)
        if spec.backoff_limit_per_index is None:
            problems.required(f"{path}.backoffLimitPerIndex",
                              "when maxFailedIndexes is specified")
        if spec.completions is not None and spec.max_failed_indexes > spec.completions:
            problems.invalid(f"{path}.maxFailedIndexes", spec.max_failed_indexes,
                             "must be less than or equal to completions")
    problems.one_of(f"{path}.podReplacementPolicy", spec.pod_replacement_policy, POD_REPLACEMENT_POLICIES)
    if spec.pod_failure_policy is not None and spec.pod_replacement_policy not in (None, "Failed"):
        problems.unsupported(f"{path}.podReplacementPolicy", spec.pod_replacement_policy, ("Failed",))
    _validate_pod_failure_policy(problems, f"{path}.podFailurePolicy", spec)
    _validate_success_policy(problems, f"{path}.successPolicy", spec)
    template_path = f"{path}.template"
    validate_labels(problems, f"{template_path}.metadata.labels", spec.template.metadata.labels)
    validate_pod_spec(problems, f"{template_path}.spec", spec.template.spec)
    restart_policy = spec.template.spec.restart_policy
    if restart_policy not in ("OnFailure", "Never"):
        problems.unsupported(f"{template_path}.spec.restartPolicy", restart_policy, ("OnFailure", "Never"))
    elif spec.pod_failure_policy is not None and restart_policy != "Never":
        problems.invalid(f"{template_path}.spec.restartPolicy", restart_policy,
                         'only "Never" is supported when podFailurePolicy is specified')


def _validate_generated_selector(problems: Problems, job: Job) -> None:
    """ValidateGeneratedSelector: a generated selector is exactly the Job's uid label."""
    if job.spec.manual_selector or not job.metadata.uid:
        return
    labels = job.spec.template.metadata.labels or {}
    for key in (LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL):
        if key in labels and labels[key] != job.metadata.uid:
            problems.invalid(f"spec.template.metadata.labels[{key}]", labels[key], "must be equal to the UID of the job")
    for key in (LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL):
        if key in labels and labels[key] != job.metadata.name:
            problems.invalid(f"spec.template.metadata.labels[{key}]", labels[key], "must be equal to the job name")
    selector = job.spec.selector
    if selector is not None and (selector.match_labels or {}).get(CONTROLLER_UID_LABEL) != job.metadata.uid:
        problems.invalid("spec.selector", selector, "`selector` not auto-generated")


def validate_job(job: Job) -> list[tuple[str, str]]:
    problems = Problems()
    validate_metadata(problems, job.metadata, True, dns1123_subdomain_errors)
    _validate_generated_selector(problems, job)
    _validate_job_spec(problems, "spec", job.spec)
    selector = job.spec.selector
    if selector is None:
        if job.spec.manual_selector or job.metadata.uid:
            problems.required("spec.selector")
    elif validate_label_selector(problems, "spec.selector", selector):
        if not Selector.from_label_selector(selector).matches(job.spec.template.metadata.labels or {}):
            problems.invalid("spec.template.metadata.labels", job.spec.template.metadata.labels,
                             "`selector` does not match template `labels`")
    return problems.items


def _immutable(problems: Problems, path: str, new: Any, old: Any) -> None:
    if new != old:
        problems.invalid(path, new, "field is immutable")


def _dump(value: Any) -> Any:
    return value.to_dict() if isinstance(value, WireModel) else value


def validate_job_update(new: Job, old: Job) -> list[tuple[str, str]]:
    """ValidateJobUpdate: what may not change once a Job exists."""
    problems = Problems()
    new_spec, old_spec = new.spec, old.spec
    _immutable(problems, "spec.selector", _dump(new_spec.selector), _dump(old_spec.selector))
    _immutable(problems, "spec.completionMode", new_spec.completion_mode, old_spec.completion_mode)
    _immutable(problems, "spec.podFailurePolicy", _dump(new_spec.pod_failure_policy), _dump(old_spec.pod_failure_policy))
    _immutable(problems, "spec.successPolicy", _dump(new_spec.success_policy), _dump(old_spec.success_policy))
    _immutable(problems, "spec.backoffLimitPerIndex", new_spec.backoff_limit_per_index, old_spec.backoff_limit_per_index)
    _immutable(problems, "spec.managedBy", new_spec.managed_by, old_spec.managed_by)
    # Elastic Indexed Jobs: completions may change together with parallelism, kept equal.
    elastic = (new_spec.completion_mode == INDEXED and new_spec.completions == new_spec.parallelism
               and old_spec.completions == old_spec.parallelism)
    if not elastic:
        _immutable(problems, "spec.completions", new_spec.completions, old_spec.completions)
    # The pod template may change only while the Job is suspended and has not started.
    if _dump(new_spec.template) != _dump(old_spec.template) and not (old_spec.suspend and old.status.start_time is None):
        problems.invalid("spec.template", new_spec.template, "field is immutable")
    return problems.items


# --- CronJob validation ----------------------------------------------------------------------


def validate_cron_job(cron_job: CronJob) -> list[tuple[str, str]]:
    problems = Problems()
    validate_metadata(problems, cron_job.metadata, True, dns1123_subdomain_errors)
    name = cron_job.metadata.name or ""
    if len(name) > MAX_CRONJOB_NAME_LENGTH:
        problems.invalid("metadata.name", name, f"must be no more than {MAX_CRONJOB_NAME_LENGTH} characters")
    spec = cron_job.spec
    if not spec.schedule:
        problems.required("spec.schedule")
    elif "TZ" in spec.schedule:
        problems.invalid("spec.schedule", spec.schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
    else:
        try:
            cron.parse_schedule(spec.schedule)
        except cron.ScheduleError as error:
            problems.invalid("spec.schedule", spec.schedule, str(error))
    if spec.time_zone is not None:
        problem = cron.time_zone_problem(spec.time_zone)
        if problem:
            problems.invalid("spec.timeZone", spec.time_zone, problem)
    problems.non_negative("spec.startingDeadlineSeconds", spec.starting_deadline_seconds)
    if not spec.concurrency_policy:
        problems.required("spec.concurrencyPolicy")
    else:
        problems.one_of("spec.concurrencyPolicy", spec.concurrency_policy, CONCURRENCY_POLICIES)
    problems.non_negative("spec.successfulJobsHistoryLimit", spec.successful_jobs_history_limit)
    problems.non_negative("spec.failedJobsHistoryLimit", spec.failed_jobs_history_limit)
    template = spec.job_template
    validate_labels(problems, "spec.jobTemplate.metadata.labels", template.metadata.labels)
    _validate_job_spec(problems, "spec.jobTemplate.spec", template.spec)
    if template.spec.selector is not None:
        problems.invalid("spec.jobTemplate.spec.selector", template.spec.selector, "`selector` will be auto-generated")
    if template.spec.manual_selector:
        problems.add("spec.jobTemplate.spec.manualSelector",
                     f"Unsupported value: {show_value(True)}: supported values: \"nil\", \"false\"")
    return problems.items


def validate_cron_job_update(new: CronJob, old: CronJob) -> list[tuple[str, str]]:
    # Everything in a CronJob's spec may change; the new spec is validated on its own.
    return []
