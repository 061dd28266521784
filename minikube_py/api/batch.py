"""`batch/v1` kinds: Job and CronJob, the workloads that run to completion.

A Job runs pods until enough of them succeed (`completions`, `parallelism`, Indexed mode with
one pod per index), gives up after `backoffLimit` failures or `activeDeadlineSeconds`, and
reports it in conditions (`Complete`, `Failed`, and the interim `SuccessCriteriaMet` and
`FailureTarget`). A CronJob makes Jobs from `jobTemplate` on a cron schedule. Field names are
Kubernetes' own; the defaults that depend on other fields (completions and parallelism together,
backoffLimit with backoffLimitPerIndex, podReplacementPolicy with podFailurePolicy) and the
selector the API server generates are in `api.batch_validation`.
"""

from __future__ import annotations

from pydantic import Field

from minikube_py.api.core import PodTemplateSpec
from minikube_py.api.meta import Int32, Int64, LabelSelector, ObjectMeta, ObjectReference, WireModel, WithConditions

# Labels and annotations the API server and the Job controller put on a Job's pods.
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_JOB_NAME_LABEL = "job-name"
JOB_COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
JOB_INDEX_FAILURE_COUNT_ANNOTATION = "batch.kubernetes.io/job-index-failure-count"
JOB_TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
CRONJOB_SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
JOB_COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"

NON_INDEXED, INDEXED = "NonIndexed", "Indexed"

# Job condition types.
COMPLETE, FAILED, SUSPENDED = "Complete", "Failed", "Suspended"
FAILURE_TARGET, SUCCESS_CRITERIA_MET = "FailureTarget", "SuccessCriteriaMet"


class PodFailurePolicyOnExitCodesRequirement(WireModel):
    container_name: str | None = None
    operator: str
    values: list[Int32]


class PodFailurePolicyOnPodConditionsPattern(WireModel):
    type: str
    status: str | None = None


class PodFailurePolicyRule(WireModel):
    action: str
    on_exit_codes: PodFailurePolicyOnExitCodesRequirement | None = None
    on_pod_conditions: list[PodFailurePolicyOnPodConditionsPattern] | None = None


class PodFailurePolicy(WireModel):
    rules: list[PodFailurePolicyRule]


class SuccessPolicyRule(WireModel):
    succeeded_indexes: str | None = None
    succeeded_count: Int32 | None = None


class SuccessPolicy(WireModel):
    rules: list[SuccessPolicyRule]


class JobSpec(WireModel):
    parallelism: Int32 | None = None
    completions: Int32 | None = None
    active_deadline_seconds: Int64 | None = None
    pod_failure_policy: PodFailurePolicy | None = None
    success_policy: SuccessPolicy | None = None
    backoff_limit: Int32 | None = None
    backoff_limit_per_index: Int32 | None = None
    max_failed_indexes: Int32 | None = None
    selector: LabelSelector | None = None
    manual_selector: bool | None = None
    template: PodTemplateSpec = Field(default_factory=PodTemplateSpec)
    ttl_seconds_after_finished: Int32 | None = None
    completion_mode: str | None = None
    suspend: bool | None = None
    pod_replacement_policy: str | None = None
    managed_by: str | None = None


class JobCondition(WireModel):
    type: str
    status: str
    last_probe_time: str | None = None
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class UncountedTerminatedPods(WireModel):
    succeeded: list[str] | None = None
    failed: list[str] | None = None


class JobStatus(WithConditions, WireModel):
    conditions: list[JobCondition] | None = None
    start_time: str | None = None
    completion_time: str | None = None
    active: Int32 | None = None
    succeeded: Int32 | None = None
    failed: Int32 | None = None
    terminating: Int32 | None = None
    completed_indexes: str | None = None
    failed_indexes: str | None = None
    uncounted_terminated_pods: UncountedTerminatedPods | None = None
    ready: Int32 | None = None


class Job(WireModel):
    api_version: str = "batch/v1"
    kind: str = "Job"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: JobSpec = Field(default_factory=JobSpec)
    status: JobStatus = Field(default_factory=JobStatus)

    def is_finished(self) -> bool:
        """Kubernetes' IsJobFinished: a Complete or Failed condition that is True."""
        return any(condition.type in (COMPLETE, FAILED) and condition.status == "True"
                   for condition in self.status.conditions or [])

    def finished_condition(self) -> JobCondition | None:
        for condition in self.status.conditions or []:
            if condition.type in (COMPLETE, FAILED) and condition.status == "True":
                return condition
        return None


class JobTemplateSpec(WireModel):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: JobSpec = Field(default_factory=JobSpec)


class CronJobSpec(WireModel):
    schedule: str = ""
    time_zone: str | None = None
    starting_deadline_seconds: Int64 | None = None
    concurrency_policy: str = "Allow"
    suspend: bool = False
    job_template: JobTemplateSpec = Field(default_factory=JobTemplateSpec)
    successful_jobs_history_limit: Int32 = 3
    failed_jobs_history_limit: Int32 = 1


class CronJobStatus(WireModel):
    active: list[ObjectReference] | None = None
    last_schedule_time: str | None = None
    last_successful_time: str | None = None


class CronJob(WireModel):
    api_version: str = "batch/v1"
    kind: str = "CronJob"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: CronJobSpec = Field(default_factory=CronJobSpec)
    status: CronJobStatus = Field(default_factory=CronJobStatus)
