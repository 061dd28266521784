"""The Job controller: runs a Job's pods to completion and counts them exactly once.

Follows k/k `pkg/controller/job/job_controller.go` (1.32, with JobPodReplacementPolicy,
JobSuccessPolicy and JobBackoffLimitPerIndex on). Event handlers only enqueue the Job's
`namespace/name` key (or `orphan-pod:namespace/name` for a pod that still carries our finalizer
but has no live Job). `sync` re-reads everything from the shared caches:

1. claim the pods (adopting matching orphans, releasing pods that stopped matching);
2. count what finished since the status was written: every pod we create carries the
   `batch.kubernetes.io/job-tracking` finalizer, so a finished pod cannot vanish before it is
   counted. A newly finished pod's uid goes into `status.uncountedTerminatedPods` first (written),
   then its finalizer is removed, then it moves into `succeeded`/`failed` (written again): a
   crash between any two steps neither loses nor double-counts it;
3. decide whether the Job is done: pod failure policy (FailJob), `backoffLimit`, per-index
   limits, `activeDeadlineSeconds`, the success policy, or enough completions. A failing Job
   first gets `FailureTarget` (a succeeding one `SuccessCriteriaMet`), its remaining pods are
   deleted, and `Failed` (`Complete`) follows once none is left terminating;
4. otherwise create or delete pods towards `parallelism`: never more than the completions still
   needed, lowest missing indexes first in Indexed mode, after the pod-failure back-off (10 s
   doubling per failure since the last success, capped at 10 minutes), none while suspended.

Expectations (creations, deletions and finalizer removals not yet seen in the cache) keep a
lagging cache from causing double creates or double counts.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from minikube_py.api import errors
from minikube_py.api.batch import (
    COMPLETE,
    FAILED,
    FAILURE_TARGET,
    INDEXED,
    JOB_COMPLETION_INDEX_ANNOTATION,
    JOB_COMPLETION_INDEX_ENV,
    JOB_INDEX_FAILURE_COUNT_ANNOTATION,
    JOB_TRACKING_FINALIZER,
    SUCCESS_CRITERIA_MET,
    SUSPENDED,
    Job,
    JobCondition,
    PodFailurePolicy,
    UncountedTerminatedPods,
)
from minikube_py.api.core import EnvVar, Pod
from minikube_py.api.names import is_dns1123_subdomain
from minikube_py.api.selectors import Selector
from minikube_py.api.times import format_time, parse_time
from minikube_py.client.api import Client
from minikube_py.client.controller import Controller
from minikube_py.client.events import NORMAL, WARNING, EventRecorder
from minikube_py.client.informer import SharedInformers, cache_key, shared_informers, split_cache_key
from minikube_py.clock import Clock
from controllers.common import (
    SLOW_START_INITIAL_BATCH_SIZE,
    ControllerExpectations,
    ControllerRefManager,
    error_text,
    get_controller_of,
    is_pod_active,
    is_pod_ready,
    new_controller_ref,
    pods_to_delete,
    pod_deleter,
    run_in_parallel,
    slow_start_batch,
)

log = logging.getLogger(__name__)

COMPONENT = "job-controller"
MANAGED_BY_JOB_CONTROLLER = "kubernetes.io/job-controller"
ORPHAN_POD_KEY_PREFIX = "orphan-pod:"
DEFAULT_POD_FAILURE_BACKOFF_SECONDS = 10.0
MAX_POD_FAILURE_BACKOFF_SECONDS = 600.0
MAX_UNCOUNTED_PODS = 500  # keeps status.uncountedTerminatedPods under ~20 KB
MAX_POD_CREATE_DELETE_PER_SYNC = 500
MAX_GENERATED_NAME_PREFIX = 58  # a generated name adds 5 random characters to at most 58

# Condition reasons and messages, Kubernetes' words.
REASON_BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
REASON_DEADLINE_EXCEEDED = "DeadlineExceeded"
REASON_POD_FAILURE_POLICY = "PodFailurePolicy"
REASON_FAILED_INDEXES = "FailedIndexes"
REASON_MAX_FAILED_INDEXES_EXCEEDED = "MaxFailedIndexesExceeded"
REASON_COMPLETIONS_REACHED = "CompletionsReached"
REASON_SUCCESS_POLICY = "SuccessPolicy"
MESSAGE_BACKOFF_LIMIT_EXCEEDED = "Job has reached the specified backoff limit"
MESSAGE_DEADLINE_EXCEEDED = "Job was active longer than specified deadline"
MESSAGE_FAILED_INDEXES = "Job has failed indexes"
MESSAGE_MAX_FAILED_INDEXES_EXCEEDED = "Job has exceeded the specified maximal number of failed indexes"
MESSAGE_COMPLETIONS_REACHED = "Reached expected number of succeeded pods"


# -- pods and indexes -----------------------------------------------------------------------------


def completion_index(pod: Pod) -> int | None:
    """The pod's index from its annotation; None when absent or not a non-negative integer."""
    text = (pod.metadata.annotations or {}).get(JOB_COMPLETION_INDEX_ANNOTATION)
    if text is None or not text.isdigit():
        return None
    return int(text)


def _valid_index(pod: Pod, completions: int) -> int | None:
    index = completion_index(pod)
    return index if index is not None and index < completions else None


def has_tracking_finalizer(pod: Pod) -> bool:
    return JOB_TRACKING_FINALIZER in (pod.metadata.finalizers or [])


def only_replace_failed_pods(job: Job) -> bool:
    return job.spec.pod_replacement_policy == "Failed" or job.spec.pod_failure_policy is not None


def is_pod_failed(pod: Pod, job: Job) -> bool:
    """Failed phase; or, unless only failed pods are replaced, deleted before it succeeded."""
    if pod.status.phase == "Failed":
        return True
    if only_replace_failed_pods(job):
        return False
    return pod.metadata.deletion_timestamp is not None and pod.status.phase != "Succeeded"


def is_pod_terminating(pod: Pod) -> bool:
    return pod.metadata.deletion_timestamp is not None and pod.status.phase not in ("Succeeded", "Failed")


def pod_finished_time(pod: Pod) -> float:
    """When the pod finished: its last container's exit, else Ready turning False, else the
    deletion time less its grace period, else its creation (k/k getFinishedTime)."""
    finish: float | None = None
    statuses = pod.status.container_statuses or []
    for status in statuses:
        terminated = status.state.terminated if status.state is not None else None
        if terminated is None or not terminated.finished_at:
            finish = None
            break
        moment = parse_time(terminated.finished_at)
        finish = moment if finish is None else max(finish, moment)
    if finish is not None:
        return finish
    ready = pod.status.condition("Ready")
    if ready is not None and ready.status == "False" and ready.last_transition_time:
        return parse_time(ready.last_transition_time)
    if pod.metadata.deletion_timestamp:
        return parse_time(pod.metadata.deletion_timestamp) - (pod.metadata.deletion_grace_period_seconds or 0)
    return parse_time(pod.metadata.creation_timestamp) if pod.metadata.creation_timestamp else 0.0


@dataclass(frozen=True)
class PolicyMatch:
    """What the pod failure policy says of a failed pod: fail the Job (with this message),
    whether the failure counts towards backoffLimit, and the action of the rule that matched."""

    fail_job_message: str | None
    counts: bool
    action: str | None


def match_pod_failure_policy(policy: PodFailurePolicy, pod: Pod) -> PolicyMatch:
    """The first rule that matches a failed pod (k/k matchPodFailurePolicy)."""
    target = f"{pod.metadata.namespace}/{pod.metadata.name}"
    for index, rule in enumerate(policy.rules):
        requirement = rule.on_exit_codes
        if requirement is not None:
            for statuses in (pod.status.container_statuses or [], pod.status.init_container_statuses or []):
                for status in statuses:
                    terminated = status.state.terminated if status.state is not None else None
                    if terminated is None or terminated.exit_code == 0:
                        continue
                    if requirement.container_name is not None and requirement.container_name != status.name:
                        continue
                    in_values = terminated.exit_code in requirement.values
                    if in_values != (requirement.operator == "In"):
                        continue
                    if rule.action == "FailJob":
                        return PolicyMatch(f"Container {status.name} for pod {target} failed with exit code "
                                           f"{terminated.exit_code} matching FailJob rule at index {index}",
                                           True, rule.action)
                    return PolicyMatch(None, rule.action != "Ignore", rule.action)
        for pattern in rule.on_pod_conditions or []:
            condition = pod.status.condition(pattern.type)
            if condition is None or condition.status != (pattern.status or "True"):
                continue
            if rule.action == "FailJob":
                return PolicyMatch(f"Pod {target} has condition {pattern.type} matching FailJob rule at index {index}",
                                   True, rule.action)
            return PolicyMatch(None, rule.action != "Ignore", rule.action)
    return PolicyMatch(None, True, None)


class OrderedIndexes:
    """A set of completion indexes, written as Kubernetes writes `completedIndexes`: `1,3-5,7`."""

    def __init__(self, indexes: Iterable[int] = ()):
        self.indexes: set[int] = set(indexes)

    @classmethod
    def parse(cls, text: str | None, completions: int) -> "OrderedIndexes":
        found: set[int] = set()
        for part in (text or "").split(","):
            if not part:
                continue
            low_text, _, high_text = part.partition("-")
            if not low_text.isdigit() or (high_text and not high_text.isdigit()):
                continue
            low, high = int(low_text), int(high_text or low_text)
            found.update(index for index in range(low, min(high, completions - 1) + 1))
        return cls(found)

    def __contains__(self, index: object) -> bool:
        return index in self.indexes

    def __len__(self) -> int:
        return len(self.indexes)

    def union(self, other: Iterable[int]) -> "OrderedIndexes":
        return OrderedIndexes(self.indexes | set(other))

    def __str__(self) -> str:
        ordered = sorted(self.indexes)
        parts: list[str] = []
        start = previous = None
        for index in ordered + [None]:
            if start is not None and (index is None or previous is None or index != previous + 1):
                parts.append(str(start) if start == previous else f"{start}-{previous}")
                start = None
            if index is not None and start is None:
                start = index
            previous = index
        return ",".join(parts)


def index_failure_count(pod: Pod) -> int:
    text = (pod.metadata.annotations or {}).get(JOB_INDEX_FAILURE_COUNT_ANNOTATION, "0")
    return int(text) if text.isdigit() else 0


def backoff_remaining(failures: int, last_failure: float | None, now: float) -> float:
    """Seconds before a replacement may be created: 10 s after the first failure, doubling per
    further failure up to 10 minutes, counted from the last failure (k/k
    getRemainingTimeForFailuresCount). E.g. 3 failures, the last 15 s ago: 40 - 15 = 25 s."""
    if failures == 0 or last_failure is None:
        return 0.0
    backoff = DEFAULT_POD_FAILURE_BACKOFF_SECONDS
    for _ in range(1, failures):
        backoff *= 2
        if backoff >= MAX_POD_FAILURE_BACKOFF_SECONDS:
            backoff = MAX_POD_FAILURE_BACKOFF_SECONDS
            break
    elapsed = now - last_failure
    return 0.0 if backoff < elapsed else backoff - elapsed


@dataclass
class BackoffRecord:
    """Failures since the last success and when the last one happened (k/k backoffRecord)."""

    failures_after_last_success: int = 0
    last_failure_time: float | None = None


def next_backoff_record(previous: BackoffRecord, new_succeeded: list[Pod], new_failed: list[Pod]) -> BackoffRecord:
    record = BackoffRecord(previous.failures_after_last_success, previous.last_failure_time)
    succeeded_times = sorted(pod_finished_time(pod) for pod in new_succeeded)
    failed_times = sorted(pod_finished_time(pod) for pod in new_failed)
    if not succeeded_times:
        if failed_times:
            record.failures_after_last_success += len(failed_times)
            record.last_failure_time = failed_times[-1]
        return record
    record = BackoffRecord()
    # Only the failures after the last success count.
    for failed_at in reversed(failed_times):
        if failed_at <= succeeded_times[-1]:
            break
        if record.last_failure_time is None:
            record.last_failure_time = failed_at
        record.failures_after_last_success += 1
    return record


def new_condition(condition_type: str, status: str, reason: str, message: str, now: float) -> JobCondition:
    moment = format_time(now)
    return JobCondition(type=condition_type, status=status, reason=reason or None, message=message or None,
                        last_probe_time=moment, last_transition_time=moment)


def ensure_condition(job: Job, condition_type: str, status: str, reason: str, message: str, now: float) -> bool:
    """Set a condition (never add one that is False); True when the list changed."""
    conditions = list(job.status.conditions or [])
    for index, condition in enumerate(conditions):
        if condition.type == condition_type:
            if condition.status == status and (condition.reason or "") == reason and (condition.message or "") == message:
                return False
            conditions[index] = new_condition(condition_type, status, reason, message, now)
            job.status.conditions = conditions
            return True
    if status == "False":
        return False
    job.status.conditions = conditions + [new_condition(condition_type, status, reason, message, now)]
    return True


def _count(value: int) -> int | None:
    """Counters Kubernetes omits when zero (`omitempty` ints)."""
    return value or None


@dataclass
class SyncContext:
    """What one sync of one Job has found and decided (k/k syncJobCtx)."""

    job: Job
    pods: list[Pod]
    active_pods: list[Pod]
    ready: int
    terminating: int
    uncounted_succeeded: set[str]
    uncounted_failed: set[str]
    expected_finalizer_removals: set[str]
    succeeded: int = 0
    failed: int = 0
    finished: JobCondition | None = None
    backoff: BackoffRecord = field(default_factory=BackoffRecord)
    previous_succeeded_indexes: OrderedIndexes = field(default_factory=OrderedIndexes)
    succeeded_indexes: OrderedIndexes = field(default_factory=OrderedIndexes)
    failed_indexes: OrderedIndexes | None = None
    delayed_deletion_per_index: dict[int, Pod] = field(default_factory=dict)
    requeue_after: list[float] = field(default_factory=list)


class JobController(Controller[str]):
    """Reconciles Jobs; keys are `namespace/name` (and `orphan-pod:namespace/name`)."""

    def __init__(
        self,
        client: Client,
        clock: Clock | None = None,
        informers: SharedInformers | None = None,
        recorder: EventRecorder | None = None,
        workers: int = 2,
    ):
        super().__init__(COMPONENT, clock, workers)
        self.client = client
        informers = informers or shared_informers(client)
        self.recorder = recorder or EventRecorder(client, COMPONENT, self.clock)
        self.expectations = ControllerExpectations(self.clock)
        self._finalizer_removals: dict[str, set[str]] = {}
        self._backoff: dict[str, BackoffRecord] = {}
        self.jobs = self.watch(informers.informer("jobs"), on_add=self._job_added,
                               on_update=self._job_updated, on_delete=self._job_deleted)
        self.pods = self.watch(informers.informer("pods"), on_add=self._pod_added,
                               on_update=self._pod_updated, on_delete=self._pod_deleted)

    # -- event handlers: compute the Job key and enqueue it, nothing else ----------------------

    def _job_added(self, job: Job) -> None:
        self.enqueue(cache_key(job))

    def _job_updated(self, old: Job, new: Job) -> None:
        if old.metadata.uid != new.metadata.uid:
            self._job_deleted(old)
        self.enqueue(cache_key(new))

    def _job_deleted(self, job: Job) -> None:
        key = cache_key(job)
        self.expectations.delete(key)
        self.enqueue(key)
        # Its pods may still carry our finalizer: they are orphans now.
        for pod in self.pods.by_owner_uid(job.metadata.uid or ""):
            if has_tracking_finalizer(pod):
                self.enqueue(ORPHAN_POD_KEY_PREFIX + cache_key(pod))

    def _job_of(self, pod: Pod) -> Job | None:
        reference = get_controller_of(pod)
        if reference is None or reference.kind != "Job" or reference.api_version != "batch/v1":
            return None
        job = self.jobs.get(f"{pod.metadata.namespace}/{reference.name}")
        if job is None or job.metadata.uid != reference.uid:
            return None
        return job

    def _enqueue_owner_or_orphan(self, pod: Pod) -> str | None:
        job = self._job_of(pod)
        if job is not None:
            key = cache_key(job)
            self.enqueue(key)
            return key
        if has_tracking_finalizer(pod):
            self.enqueue(ORPHAN_POD_KEY_PREFIX + cache_key(pod))
        return None

    def _pod_added(self, pod: Pod) -> None:
        if pod.metadata.deletion_timestamp is not None:
            self._pod_deleted(pod)
            return
        job = self._job_of(pod)
        if job is not None:
            self.expectations.creation_observed(cache_key(job))
        self._enqueue_owner_or_orphan(pod)

    def _pod_updated(self, old: Pod, new: Pod) -> None:
        if old.metadata.resource_version == new.metadata.resource_version:
            return
        job = self._job_of(new)
        if job is not None:
            key = cache_key(job)
            if new.metadata.deletion_timestamp is not None:
                self.expectations.deletion_observed(key, cache_key(new))
            if not has_tracking_finalizer(new):
                self._finalizer_removal_observed(key, new.metadata.uid or "")
        self._enqueue_owner_or_orphan(new)
        old_job = self._job_of(old)
        if old_job is not None and (job is None or old_job.metadata.uid != job.metadata.uid):
            self.enqueue(cache_key(old_job))

    def _pod_deleted(self, pod: Pod) -> None:
        job = self._job_of(pod)
        if job is None:
            return
        key = cache_key(job)
        self.expectations.deletion_observed(key, cache_key(pod))
        self._finalizer_removal_observed(key, pod.metadata.uid or "")
        self.enqueue(key)

    def _finalizer_removal_observed(self, key: str, uid: str) -> None:
        pending = self._finalizer_removals.get(key)
        if pending is not None:
            pending.discard(uid)

    # -- sync -----------------------------------------------------------------------------------

    def sync(self, key: str) -> float | None:
        if key.startswith(ORPHAN_POD_KEY_PREFIX):
            self._sync_orphan_pod(key[len(ORPHAN_POD_KEY_PREFIX):])
            return None
        cached = self.jobs.get(key)
        if cached is None:
            self.expectations.delete(key)
            self._finalizer_removals.pop(key, None)
            self._backoff.pop(key, None)
            return None
        if cached.spec.managed_by not in (None, MANAGED_BY_JOB_CONTROLLER):
            return None
        if cached.is_finished():
            self._backoff.pop(key, None)
            return None
        job = cached.model_copy(deep=True)
        if job.spec.completion_mode not in (None, "NonIndexed", INDEXED):
            self.recorder.event(job, WARNING, "UnknownCompletionMode", "Skipped Job sync because completion mode is unknown")
            return None
        if job.status.uncounted_terminated_pods is None:
            job.status.uncounted_terminated_pods = UncountedTerminatedPods()
        satisfied = self.expectations.satisfied(key)
        pods = self._pods_for_job(job)
        active_pods = [pod for pod in pods if is_pod_active(pod)]
        uncounted = job.status.uncounted_terminated_pods
        context = SyncContext(
            job=job, pods=pods, active_pods=active_pods,
            ready=sum(1 for pod in active_pods if is_pod_ready(pod)),
            terminating=sum(1 for pod in pods if is_pod_terminating(pod)),
            uncounted_succeeded=set(uncounted.succeeded or []),
            uncounted_failed=set(uncounted.failed or []),
            expected_finalizer_removals=set(self._finalizer_removals.get(key, set())),
        )
        now = self.clock.now()
        active = len(active_pods)
        new_succeeded, new_failed = self._new_finished_pods(context)
        context.succeeded = (job.status.succeeded or 0) + len(new_succeeded) + len(context.uncounted_succeeded)
        context.failed = ((job.status.failed or 0) + self._counted_failures(job, new_failed)
                          + len(context.uncounted_failed))
        if job.status.start_time is None and not job.spec.suspend:
            job.status.start_time = format_time(now)
        context.backoff = next_backoff_record(self._backoff.get(key, BackoffRecord()), new_succeeded, new_failed)

        self._decide_failure(context, now)
        if job.spec.completion_mode == INDEXED:
            self._decide_indexed(context, now)

        manage_error: Exception | None = None
        suspend_changed = False
        if context.finished is not None:
            deleted_ready, deleted, manage_error = self._delete_active_pods(job, active_pods)
            if deleted != active or not satisfied:
                # Not finished yet: pods may be left, or not in the cache yet.
                context.finished = None
            active -= deleted
            context.terminating += deleted
            context.ready -= deleted_ready
        else:
            manage_called = False
            if satisfied and job.metadata.deletion_timestamp is None:
                try:
                    active = self._manage_job(key, context)
                except Exception as error:
                    manage_error = error
                    active = len(context.active_pods)
                manage_called = True
            if job.spec.completions is None:
                # A work queue: done when any pod succeeded and the rest have finished.
                complete = context.succeeded > 0 and active == 0
            else:
                complete = context.succeeded >= job.spec.completions and active == 0
            if complete:
                context.finished = new_condition(SUCCESS_CRITERIA_MET, "True", REASON_COMPLETIONS_REACHED,
                                                 MESSAGE_COMPLETIONS_REACHED, now)
            elif manage_called:
                suspend_changed = self._update_suspended_condition(job, now)

        needs_update = (suspend_changed or (job.status.active or 0) != active or job.status.ready != context.ready
                        or job.status.terminating != context.terminating)
        job.status.active = _count(active)
        job.status.ready = context.ready
        job.status.terminating = context.terminating
        self._track_status_and_remove_finalizers(key, context, needs_update)
        if manage_error is not None:
            raise manage_error
        return min(context.requeue_after) if context.requeue_after else None

    def _update_suspended_condition(self, job: Job, now: float) -> bool:
        if job.spec.suspend:
            changed = ensure_condition(job, SUSPENDED, "True", "JobSuspended", "Job suspended", now)
            if changed:
                self.recorder.event(job, NORMAL, "Suspended", "Job suspended")
            return changed
        changed = ensure_condition(job, SUSPENDED, "False", "JobResumed", "Job resumed", now)
        if changed:
            self.recorder.event(job, NORMAL, "Resumed", "Job resumed")
            # activeDeadlineSeconds counts the time a Job is continuously active.
            job.status.start_time = format_time(now)
        return changed

    def _decide_failure(self, context: SyncContext, now: float) -> None:
        job = context.job
        context.finished = job.status.condition(SUCCESS_CRITERIA_MET)
        if context.finished is None:
            target = job.status.condition(FAILURE_TARGET)
            if target is not None and target.status == "True":
                context.finished = new_condition(FAILED, "True", target.reason or "", target.message or "", now)
            elif job.spec.pod_failure_policy is not None:
                for pod in context.pods:
                    if is_pod_failed(pod, job):
                        match = match_pod_failure_policy(job.spec.pod_failure_policy, pod)
                        if match.fail_job_message is not None:
                            context.finished = new_condition(FAILURE_TARGET, "True", REASON_POD_FAILURE_POLICY,
                                                             match.fail_job_message, now)
                            break
        if context.finished is not None:
            return
        if context.failed > (job.spec.backoff_limit or 0) or self._past_backoff_limit_on_failure(job, context.pods):
            context.finished = new_condition(FAILURE_TARGET, "True", REASON_BACKOFF_LIMIT_EXCEEDED,
                                             MESSAGE_BACKOFF_LIMIT_EXCEEDED, now)
        elif self._past_active_deadline(job, now):
            context.finished = new_condition(FAILURE_TARGET, "True", REASON_DEADLINE_EXCEEDED,
                                             MESSAGE_DEADLINE_EXCEEDED, now)
        elif job.spec.active_deadline_seconds is not None and not job.spec.suspend and job.status.start_time:
            remaining = job.spec.active_deadline_seconds - (now - parse_time(job.status.start_time))
            context.requeue_after.append(max(remaining, 0.0))

    def _decide_indexed(self, context: SyncContext, now: float) -> None:
        job = context.job
        completions = job.spec.completions or 0
        previous = OrderedIndexes.parse(job.status.completed_indexes, completions)
        succeeded_now = [index for pod in context.pods
                         if pod.status.phase == "Succeeded" and has_tracking_finalizer(pod)
                         and (index := _valid_index(pod, completions)) is not None]
        context.previous_succeeded_indexes = previous
        context.succeeded_indexes = previous.union(succeeded_now)
        context.succeeded = len(context.succeeded_indexes)
        if job.spec.backoff_limit_per_index is not None:
            context.failed_indexes = self._failed_indexes(context)
            failed_count = len(context.failed_indexes)
            if context.finished is None:
                if job.spec.max_failed_indexes is not None and failed_count > job.spec.max_failed_indexes:
                    context.finished = new_condition(FAILURE_TARGET, "True", REASON_MAX_FAILED_INDEXES_EXCEEDED,
                                                     MESSAGE_MAX_FAILED_INDEXES_EXCEEDED, now)
                elif failed_count > 0 and failed_count + len(context.succeeded_indexes) >= completions:
                    context.finished = new_condition(FAILURE_TARGET, "True", REASON_FAILED_INDEXES,
                                                     MESSAGE_FAILED_INDEXES, now)
            context.delayed_deletion_per_index = self._pods_with_delayed_deletion(context)
        if context.finished is None and job.spec.success_policy is not None:
            message = self._match_success_policy(job, context.succeeded_indexes)
            if message is not None:
                context.finished = new_condition(SUCCESS_CRITERIA_MET, "True", REASON_SUCCESS_POLICY, message, now)

    @staticmethod
    def _match_success_policy(job: Job, succeeded: OrderedIndexes) -> str | None:
        completions = job.spec.completions or 0
        for index, rule in enumerate(job.spec.success_policy.rules if job.spec.success_policy else []):
            if rule.succeeded_indexes is not None:
                wanted = OrderedIndexes.parse(rule.succeeded_indexes, completions)
                matched = len(wanted.indexes & succeeded.indexes)
                needed = rule.succeeded_count if rule.succeeded_count is not None else len(wanted)
                if matched >= needed and needed > 0:
                    return f"Matched rules at index {index}"
            elif rule.succeeded_count is not None and len(succeeded) >= rule.succeeded_count:
                return f"Matched rules at index {index}"
        return None

    def _failed_indexes(self, context: SyncContext) -> OrderedIndexes:
        job = context.job
        completions = job.spec.completions or 0
        failed = OrderedIndexes.parse(job.status.failed_indexes, completions)
        limit = job.spec.backoff_limit_per_index or 0
        for pod in context.pods:
            index = _valid_index(pod, completions)
            if index is None or not has_tracking_finalizer(pod) or not is_pod_failed(pod, job):
                continue
            if job.spec.pod_failure_policy is not None:
                match = match_pod_failure_policy(job.spec.pod_failure_policy, pod)
                if match.action == "FailIndex":
                    failed.indexes.add(index)
                    continue
                if not match.counts:
                    continue
            if index_failure_count(pod) + 1 > limit:
                failed.indexes.add(index)
        return failed

    def _pods_with_delayed_deletion(self, context: SyncContext) -> dict[int, Pod]:
        """Per index, the last failed pod whose finalizer stays until its replacement exists: the
        replacement takes its failure count (k/k getPodsWithDelayedDeletionPerIndex)."""
        job = context.job
        completions = job.spec.completions or 0
        active_indexes = {completion_index(pod) for pod in context.active_pods}
        delayed: dict[int, Pod] = {}
        for pod in context.pods:
            if not has_tracking_finalizer(pod) or pod.metadata.uid in context.expected_finalizer_removals:
                continue
            if not is_pod_failed(pod, job):
                continue
            index = _valid_index(pod, completions)
            if index is None or index in context.succeeded_indexes or index in active_indexes:
                continue
            if context.failed_indexes is not None and index in context.failed_indexes:
                continue
            last = delayed.get(index)
            if last is None or (index_failure_count(last) <= index_failure_count(pod)
                                and pod_finished_time(pod) >= pod_finished_time(last)):
                delayed[index] = pod
        return delayed

    @staticmethod
    def _past_backoff_limit_on_failure(job: Job, pods: list[Pod]) -> bool:
        """restartPolicy OnFailure: the container restarts of running pods count as failures."""
        if job.spec.template.spec.restart_policy != "OnFailure":
            return False
        restarts = 0
        for pod in pods:
            if pod.status.phase in ("Running", "Pending"):
                for status in [*(pod.status.init_container_statuses or []), *(pod.status.container_statuses or [])]:
                    restarts += status.restart_count
        limit = job.spec.backoff_limit or 0
        return restarts > 0 if limit == 0 else restarts >= limit

    @staticmethod
    def _past_active_deadline(job: Job, now: float) -> bool:
        if job.spec.active_deadline_seconds is None or job.status.start_time is None or job.spec.suspend:
            return False
        return now - parse_time(job.status.start_time) >= job.spec.active_deadline_seconds

    def _pods_for_job(self, job: Job) -> list[Pod]:
        """The Job's pods after adoption and release (every pod of the namespace is a candidate,
        so pods that stopped matching but still name us are released)."""
        selector = Selector.from_label_selector(job.spec.selector)
        candidates = self.pods.list(namespace=job.metadata.namespace)
        pods = ControllerRefManager(self.client, job, "jobs", selector).claim("pods", candidates)
        adopted: list[Pod] = []
        for pod in pods:
            if not has_tracking_finalizer(pod) and not any(
                    reference.uid == job.metadata.uid for reference in pod.metadata.owner_references or []):
                # Just adopted: track it as if it carried our finalizer (the adoption added it).
                pod = pod.model_copy(deep=True)
                pod.metadata.finalizers = [*(pod.metadata.finalizers or []), JOB_TRACKING_FINALIZER]
            adopted.append(pod)
        return adopted

    def _new_finished_pods(self, context: SyncContext) -> tuple[list[Pod], list[Pod]]:
        """Finished pods not yet in the status: still carrying our finalizer, not in the uncounted
        lists, and (Indexed) with a valid index."""
        job = context.job
        succeeded: list[Pod] = []
        failed: list[Pod] = []
        for pod in context.pods:
            uid = pod.metadata.uid or ""
            if not has_tracking_finalizer(pod) or uid in context.expected_finalizer_removals:
                continue
            if job.spec.completion_mode == INDEXED and _valid_index(pod, job.spec.completions or 0) is None:
                continue
            if pod.status.phase == "Succeeded" and uid not in context.uncounted_succeeded:
                succeeded.append(pod)
            elif is_pod_failed(pod, job) and uid not in context.uncounted_failed:
                failed.append(pod)
        return succeeded, failed

    @staticmethod
    def _counted_failures(job: Job, failed: list[Pod]) -> int:
        if job.spec.pod_failure_policy is None:
            return len(failed)
        return sum(1 for pod in failed if match_pod_failure_policy(job.spec.pod_failure_policy, pod).counts)

    # -- creating and deleting pods --------------------------------------------------------------

    def _manage_job(self, key: str, context: SyncContext) -> int:
        """Create or delete pods towards parallelism; returns the active count after it."""
        job = context.job
        active = len(context.active_pods)
        parallelism = job.spec.parallelism or 0
        if job.spec.suspend:
            victims = self._active_pods_for_removal(job, context.active_pods, active)
            return active - self._delete_job_pods(key, context, victims)
        if job.spec.completions is None:
            # A work queue: once one pod succeeded, let the others finish but start no more.
            wanted = active if context.succeeded > 0 else parallelism
        else:
            wanted = max(0, min(job.spec.completions - context.succeeded, parallelism))
        surplus = max(active - wanted, 0)
        victims = self._active_pods_for_removal(job, context.active_pods, surplus)[:MAX_POD_CREATE_DELETE_PER_SYNC]
        if victims:
            # Never delete and create in the same sync; deletion goes first.
            return active - self._delete_job_pods(key, context, victims)
        terminating = context.terminating if only_replace_failed_pods(job) else 0
        missing = wanted - terminating - active
        if missing <= 0:
            return active
        if job.spec.backoff_limit_per_index is None:
            remaining = backoff_remaining(context.backoff.failures_after_last_success,
                                          context.backoff.last_failure_time, self.clock.now())
            if remaining > 0:
                context.requeue_after.append(remaining)
                return active
        missing = min(missing, MAX_POD_CREATE_DELETE_PER_SYNC)
        indexes: list[int | None] = [None] * missing
        if job.spec.completion_mode == INDEXED:
            pending = self._first_pending_indexes(context, missing)
            if job.spec.backoff_limit_per_index is not None:
                pending, remaining = self._indexes_ready_to_create(context, pending)
                if remaining > 0:
                    context.requeue_after.append(remaining)
                    return active
            indexes = list(pending)
        if not indexes:
            return active
        return active + self._create_pods(key, context, indexes)

    def _indexes_ready_to_create(self, context: SyncContext, indexes: list[int]) -> tuple[list[int], float]:
        ready: list[int] = []
        soonest: float | None = None
        now = self.clock.now()
        for index in indexes:
            last_failed = context.delayed_deletion_per_index.get(index)
            remaining = 0.0 if last_failed is None else backoff_remaining(
                index_failure_count(last_failed) + 1, pod_finished_time(last_failed), now)
            if remaining == 0:
                ready.append(index)
            elif soonest is None or remaining < soonest:
                soonest = remaining
        return (ready, 0.0) if ready else (ready, soonest or 0.0)

    def _first_pending_indexes(self, context: SyncContext, count: int) -> list[int]:
        """The lowest indexes with no success, no active pod (and, when only failed pods are
        replaced, no terminating pod) and not failed for good."""
        job = context.job
        completions = job.spec.completions or 0
        taken = set(context.succeeded_indexes.indexes)
        taken.update(index for pod in context.active_pods if (index := _valid_index(pod, completions)) is not None)
        if only_replace_failed_pods(job):
            taken.update(index for pod in context.pods if is_pod_terminating(pod)
                         and (index := _valid_index(pod, completions)) is not None)
        if context.failed_indexes is not None:
            taken.update(context.failed_indexes.indexes)
        pending: list[int] = []
        for index in range(completions):
            if len(pending) == count:
                break
            if index not in taken:
                pending.append(index)
        return pending

    def _active_pods_for_removal(self, job: Job, pods: list[Pod], at_least: int) -> list[Pod]:
        """Indexed: pods without a valid index and duplicates of an index first; then the pods in
        the earliest stages (unscheduled, pending, not ready) as the ReplicaSet ranks them."""
        remove: list[Pod] = []
        left = list(pods)
        if job.spec.completion_mode == INDEXED:
            completions = job.spec.completions or 0
            left = []
            by_index: dict[int, list[Pod]] = {}
            for pod in pods:
                index = _valid_index(pod, completions)
                if index is None:
                    remove.append(pod)
                else:
                    by_index.setdefault(index, []).append(pod)
            for same_index in by_index.values():
                ranked = pods_to_delete(same_index, len(same_index) - 1, same_index, self.clock.now())
                remove.extend(ranked)
                left.extend(pod for pod in same_index if pod not in ranked)
        if len(remove) < at_least:
            remove.extend(pods_to_delete(left, at_least - len(remove), left, self.clock.now()))
        return remove

    def _delete_job_pods(self, key: str, context: SyncContext, victims: list[Pod]) -> int:
        """Delete pods that are not needed (suspend, too many): their finalizer goes first, as
        they are not counted. Returns how many were deleted."""
        if not victims:
            return 0
        self.expectations.expect_deletions(key, [cache_key(pod) for pod in victims])
        job = context.job

        failures = run_in_parallel([
            pod_deleter(self.client, self.expectations, self.recorder, key, job, pod,
                        before_delete=functools.partial(self._remove_finalizer, pod) if has_tracking_finalizer(pod) else None)
            for pod in victims])
        deleted = len(victims) - len(failures)
        deleted_ready = sum(1 for pod in victims if is_pod_ready(pod)) if not failures else 0
        context.terminating += deleted
        context.ready -= deleted_ready
        if failures:
            raise failures[0]
        return deleted

    def _delete_active_pods(self, job: Job, pods: list[Pod]) -> tuple[int, int, Exception | None]:
        """A finished Job's remaining pods are deleted keeping their finalizers, so they are
        counted (as failed) when they are gone. Returns (ready deleted, deleted, error)."""
        def deleter(pod: Pod) -> Callable[[], None]:
            def delete_one() -> None:
                try:
                    self.client.delete("pods", pod.metadata.name or "", namespace=pod.metadata.namespace)
                except errors.NotFound:
                    return
                self.recorder.event(job, NORMAL, "SuccessfulDelete", f"Deleted pod: {pod.metadata.name}")

            return delete_one

        if not pods:
            return 0, 0, None
        failures = run_in_parallel([deleter(pod) for pod in pods])
        deleted = len(pods) - len(failures)
        ready = sum(1 for pod in pods if is_pod_ready(pod)) if not failures else 0
        return ready, deleted, _first_error(failures)

    def _create_pods(self, key: str, context: SyncContext, indexes: list[int | None]) -> int:
        """Create one pod per entry (an index, or None in NonIndexed mode) in slow-start batches;
        returns how many were created."""
        job = context.job
        self.expectations.expect_creations(key, len(indexes))
        queue = list(indexes)

        def create_one() -> None:
            index = queue.pop(0)
            pod = self._pod_from_template(context, index)
            try:
                created = self.client.create(pod)
            except Exception as error:
                self.recorder.event(job, WARNING, "FailedCreate", f"Error creating: {error_text(error)}")
                raise
            self.recorder.event(job, NORMAL, "SuccessfulCreate", f"Created pod: {created.metadata.name}")

        successes, error = slow_start_batch(len(indexes), SLOW_START_INITIAL_BATCH_SIZE, create_one)
        for _ in range(len(indexes) - successes):
            self.expectations.creation_observed(key)
        if error is not None:
            raise error
        return successes

    def _pod_from_template(self, context: SyncContext, index: int | None) -> Pod:
        job = context.job
        template = job.spec.template.model_copy(deep=True)
        name = job.metadata.name or ""
        annotations = dict(template.metadata.annotations or {})
        labels = dict(template.metadata.labels or {})
        prefix = f"{name}-" if is_dns1123_subdomain(f"{name}a") else name
        if index is not None:
            # Indexed: the index in an annotation, a label and JOB_COMPLETION_INDEX; a stable hostname.
            annotations[JOB_COMPLETION_INDEX_ANNOTATION] = str(index)
            labels[JOB_COMPLETION_INDEX_ANNOTATION] = str(index)
            template.spec.hostname = f"{name}-{index}"
            for container in [*template.spec.containers, *(template.spec.init_containers or [])]:
                if not any(variable.name == JOB_COMPLETION_INDEX_ENV for variable in container.env or []):
                    container.env = [*(container.env or []), EnvVar.model_validate({
                        "name": JOB_COMPLETION_INDEX_ENV,
                        "valueFrom": {"fieldRef": {"fieldPath":
                                                   f"metadata.annotations['{JOB_COMPLETION_INDEX_ANNOTATION}']"}}})]
            appendix = f"-{index}-"
            prefix = name + appendix
            if len(prefix) > MAX_GENERATED_NAME_PREFIX:
                prefix = prefix[:MAX_GENERATED_NAME_PREFIX - len(appendix)] + appendix
            if job.spec.backoff_limit_per_index is not None:
                last_failed = context.delayed_deletion_per_index.get(index)
                count = 0
                if last_failed is not None:
                    count = index_failure_count(last_failed)
                    policy = job.spec.pod_failure_policy
                    if policy is None or match_pod_failure_policy(policy, last_failed).counts:
                        count += 1
                annotations[JOB_INDEX_FAILURE_COUNT_ANNOTATION] = str(count)
        finalizers = list(template.metadata.finalizers or [])
        if JOB_TRACKING_FINALIZER not in finalizers:
            finalizers.append(JOB_TRACKING_FINALIZER)
        metadata = {
            "generateName": prefix,
            "namespace": job.metadata.namespace,
            "labels": labels or None,
            "annotations": annotations or None,
            "finalizers": finalizers,
            "ownerReferences": [new_controller_ref(job).to_dict()],
        }
        return Pod.model_validate({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {key: value for key, value in metadata.items() if value is not None},
            "spec": template.spec.to_dict(),
        })

    # -- counting and finalizers -------------------------------------------------------------------

    def _remove_finalizer(self, pod: Pod) -> None:
        remaining = [name for name in pod.metadata.finalizers or [] if name != JOB_TRACKING_FINALIZER]
        self.client.patch("pods", pod.metadata.name or "", {"metadata": {"finalizers": remaining or None}},
                          namespace=pod.metadata.namespace)

    def _can_remove_finalizer(self, context: SyncContext, pod: Pod, considered_failed: bool) -> bool:
        job = context.job
        if job.metadata.deletion_timestamp is not None or context.finished is not None or pod.status.phase == "Succeeded":
            return True
        if not considered_failed:
            return False
        if job.spec.backoff_limit_per_index is not None:
            index = completion_index(pod)
            delayed = context.delayed_deletion_per_index.get(index) if index is not None else None
            if delayed is not None and delayed.metadata.uid == pod.metadata.uid:
                return False
        return True

    def _track_status_and_remove_finalizers(self, key: str, context: SyncContext, needs_flush: bool) -> None:
        """Finished pods into uncountedTerminatedPods (written), their finalizers removed, then into
        the counters (written), then the final condition (k/k trackJobStatusAndRemoveFinalizers)."""
        job = context.job
        indexed = job.spec.completion_mode == INDEXED
        completions = job.spec.completions or 0
        pods = sorted(context.pods, key=lambda pod: completion_index(pod) or 0) if indexed else context.pods
        with_finalizer = {pod.metadata.uid or "" for pod in pods
                          if has_tracking_finalizer(pod) and pod.metadata.uid not in context.expected_finalizer_removals}
        uncounted = job.status.uncounted_terminated_pods or UncountedTerminatedPods()
        job.status.uncounted_terminated_pods = uncounted
        if _count_uncounted_without_finalizers(job, with_finalizer):
            needs_flush = True
        to_remove: list[Pod] = []
        new_succeeded_indexes: list[int] = []
        reached_limit = False
        success = context.finished is not None and context.finished.type == SUCCESS_CRITERIA_MET
        for pod in pods:
            uid = pod.metadata.uid or ""
            if not has_tracking_finalizer(pod) or uid in context.expected_finalizer_removals:
                continue
            considered_failed = is_pod_failed(pod, job)
            if not self._can_remove_finalizer(context, pod, considered_failed):
                continue
            to_remove.append(pod)
            if pod.status.phase == "Succeeded" and uid not in context.uncounted_failed:
                if indexed:
                    index = _valid_index(pod, completions)
                    if index is not None and index not in context.previous_succeeded_indexes:
                        new_succeeded_indexes.append(index)
                        needs_flush = True
                elif uid not in (uncounted.succeeded or []):
                    uncounted.succeeded = [*(uncounted.succeeded or []), uid]
                    needs_flush = True
            elif considered_failed or (context.finished is not None and not success):
                # Once the Job is finished (failing), every pod still running counts as failed.
                if uid not in (uncounted.failed or []) and (not indexed or _valid_index(pod, completions) is not None):
                    policy = job.spec.pod_failure_policy
                    if policy is None or match_pod_failure_policy(policy, pod).counts:
                        uncounted.failed = [*(uncounted.failed or []), uid]
                        needs_flush = True
            if len(new_succeeded_indexes) + len(uncounted.succeeded or []) + len(uncounted.failed or []) >= MAX_UNCOUNTED_PODS:
                reached_limit = True
                break
        if indexed:
            context.succeeded_indexes = context.succeeded_indexes.union(new_succeeded_indexes)
            text = str(context.succeeded_indexes)
            if text != (job.status.completed_indexes or ""):
                needs_flush = True
            job.status.succeeded = _count(len(context.succeeded_indexes))
            job.status.completed_indexes = text
            failed_text = str(context.failed_indexes) if context.failed_indexes is not None else None
            if failed_text != job.status.failed_indexes:
                job.status.failed_indexes = failed_text
                needs_flush = True
        if context.finished is not None and context.finished.type == FAILURE_TARGET:
            if job.status.condition(FAILURE_TARGET) is None:
                job.status.conditions = [*(job.status.conditions or []), context.finished]
                needs_flush = True
            context.finished = new_condition(FAILED, "True", context.finished.reason or "",
                                             context.finished.message or "", self.clock.now())
        if context.finished is not None and context.finished.type == SUCCESS_CRITERIA_MET:
            if job.status.condition(SUCCESS_CRITERIA_MET) is None:
                job.status.conditions = [*(job.status.conditions or []), context.finished]
                needs_flush = True
            context.finished = new_condition(COMPLETE, "True", context.finished.reason or "",
                                             context.finished.message or "", self.clock.now())
        if needs_flush:
            job = context.job = self._write_status(job)
            self._backoff[key] = context.backoff
            needs_flush = False
        removal_error: Exception | None = None
        if to_remove:
            removed, removal_error = self._remove_finalizers(key, to_remove)
            with_finalizer -= removed
        if _count_uncounted_without_finalizers(job, with_finalizer):
            needs_flush = True
        if removal_error is not None:
            if needs_flush:
                self._write_status(job)
            raise removal_error
        finished_now = not reached_limit and self._enact_finished(context)
        if finished_now:
            needs_flush = True
        if needs_flush:
            job = context.job = self._write_status(job)
            if finished_now and context.finished is not None:
                self._record_finished(job, context.finished)

    def _remove_finalizers(self, key: str, pods: list[Pod]) -> tuple[set[str], Exception | None]:
        """Remove our finalizer from each pod; the uids done (a pod already gone counts as done)."""
        uids = {pod.metadata.uid or "" for pod in pods}
        self._finalizer_removals.setdefault(key, set()).update(uids)
        removed: set[str] = set()

        def remover(pod: Pod) -> Callable[[], None]:
            def remove_one() -> None:
                try:
                    self._remove_finalizer(pod)
                except errors.NotFound:
                    pass
                except Exception:
                    self._finalizer_removal_observed(key, pod.metadata.uid or "")
                    raise
                removed.add(pod.metadata.uid or "")

            return remove_one

        failures = run_in_parallel([remover(pod) for pod in pods])
        return removed, _first_error(failures)

    def _enact_finished(self, context: SyncContext) -> bool:
        """Add the final Complete or Failed condition once nothing is uncounted or terminating."""
        if context.finished is None:
            return False
        job = context.job
        uncounted = job.status.uncounted_terminated_pods
        if uncounted is not None and (uncounted.succeeded or uncounted.failed):
            return False
        if context.terminating > 0:
            return False
        finished = context.finished
        now = self.clock.now()
        ensure_condition(job, finished.type, finished.status, finished.reason or "", finished.message or "", now)
        if finished.type == COMPLETE:
            condition = job.status.condition(COMPLETE)
            job.status.completion_time = condition.last_transition_time if condition is not None else format_time(now)
        return True

    def _record_finished(self, job: Job, finished: JobCondition) -> None:
        if finished.type == COMPLETE:
            if job.spec.completions is not None and (job.status.succeeded or 0) > job.spec.completions:
                self.recorder.event(job, WARNING, "TooManySucceededPods",
                                    "Too many succeeded pods running after completion count reached")
            self.recorder.event(job, NORMAL, "Completed", "Job completed")
        else:
            self.recorder.event(job, WARNING, finished.reason or "", finished.message or "")

    def _write_status(self, job: Job) -> Job:
        return self.client.replace_status(job)

    # -- orphans --------------------------------------------------------------------------------

    def _sync_orphan_pod(self, pod_key: str) -> None:
        """Remove our finalizer from a pod whose Job is gone or finished (k/k syncOrphanPod)."""
        namespace, name = split_cache_key(pod_key)
        pod = self.pods.get(pod_key)
        if pod is None or not has_tracking_finalizer(pod):
            return
        reference = get_controller_of(pod)
        if reference is not None:
            if reference.kind != "Job" or reference.api_version != "batch/v1":
                return
            job = self._job_of(pod)
            if job is not None and not job.is_finished():
                return  # adopted or still running: the Job's own sync takes care of it
        try:
            self._remove_finalizer(pod)
        except errors.NotFound:
            log.debug("orphan pod %s/%s is gone", namespace, name)


def _count_uncounted_without_finalizers(job: Job, with_finalizer: set[str]) -> bool:
    """Move uids whose finalizer is gone from uncountedTerminatedPods into the counters."""
    uncounted = job.status.uncounted_terminated_pods
    if uncounted is None:
        return False
    changed = False
    still_succeeded = [uid for uid in uncounted.succeeded or [] if uid in with_finalizer]
    if len(still_succeeded) != len(uncounted.succeeded or []):
        changed = True
        job.status.succeeded = _count((job.status.succeeded or 0) + len(uncounted.succeeded or []) - len(still_succeeded))
        uncounted.succeeded = still_succeeded or None
    still_failed = [uid for uid in uncounted.failed or [] if uid in with_finalizer]
    if len(still_failed) != len(uncounted.failed or []):
        changed = True
        job.status.failed = _count((job.status.failed or 0) + len(uncounted.failed or []) - len(still_failed))
        uncounted.failed = still_failed or None
    return changed


def _first_error(failures: list[BaseException]) -> Exception | None:
    if not failures:
        return None
    return failures[0] if isinstance(failures[0], Exception) else RuntimeError(str(failures[0]))
