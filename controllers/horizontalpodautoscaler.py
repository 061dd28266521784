"""The HorizontalPodAutoscaler controller: sets a workload's replicas from its pods' CPU or memory.

Follows k/k `pkg/controller/podautoscaler` (horizontal.go and replica_calculator.go). Every sync
period (`start --hpa-sync-period`, 15 s) each HPA is synced:
1. the target's `/scale` gives the current replicas and the pods' selector (a kind without a
   scale subresource: `AbleToScale` False, `FailedGetScale`);
2. outside [minReplicas, maxReplicas] the target is brought inside; with 0 replicas autoscaling
   is off (`ScalingDisabled`);
3. otherwise each metric gives a replica count from the Metrics API (the largest wins): the
   ratio of the ready pods' usage to the target, within a tolerance of 0.1 no change; pods
   without metrics count as at the target when scaling down and as idle when scaling up, and
   not-yet-ready pods count as idle when scaling up (see `resource_replicas`);
4. the count is stabilized (the highest recommendation of the scale-down window, the lowest of
   the scale-up window) and limited by the scaling policies or, without `behavior`, by Kubernetes'
   older rule (at most double, or 4) and min/max; `AbleToScale`, `ScalingActive` and
   `ScalingLimited` say what happened, with Kubernetes' reasons and messages;
5. a change goes through `/scale` with the `SuccessfulRescale` event, and the status is written.
Recommendations and scale events live in memory, as in kube-controller-manager.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable

from minikube_py import api
from minikube_py.api import errors
from minikube_py.api.autoscaling import (
    HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition, HorizontalPodAutoscalerStatus, HPAScalingRules, MetricSpec, MetricStatus,
    MetricValueStatus, ResourceMetricStatus, scale_down_rules, scale_up_rules)
from minikube_py.api.core import Pod
from minikube_py.api.metrics import format_binary_bytes
from minikube_py.api.quantity import parse_quantity
from minikube_py.api.selectors import parse_selector
from minikube_py.api.times import format_time, parse_time
from minikube_py.client.api import Client
from minikube_py.client.controller import Controller
from minikube_py.client.events import NORMAL, WARNING, EventRecorder
from minikube_py.client.informer import SharedInformers, cache_key, shared_informers
from minikube_py.clock import Clock
from controllers.common import error_text

log = logging.getLogger(__name__)

COMPONENT = "horizontal-pod-autoscaler"
DEFAULT_SYNC_PERIOD = 15.0
TOLERANCE = 0.1
DOWNSCALE_STABILIZATION_SECONDS = 300.0  # --horizontal-pod-autoscaler-downscale-stabilization
CPU_INITIALIZATION_PERIOD = 300.0  # --horizontal-pod-autoscaler-cpu-initialization-period
INITIAL_READINESS_DELAY = 30.0  # --horizontal-pod-autoscaler-initial-readiness-delay
SCALE_UP_LIMIT_FACTOR, SCALE_UP_LIMIT_MINIMUM = 2, 4


class MetricError(Exception):
    """A metric could not give a replica count; `reason` is the condition's and the event's."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


# -- the replica calculator (replica_calculator.go) ----------------------------------------------


@dataclass
class PodSample:
    """What the calculator needs of one pod: phase, readiness, and its usage (None: no metrics)."""

    name: str
    phase: str
    deleting: bool
    ready: bool | None  # the Ready condition; None without one
    ready_since: float | None  # its lastTransitionTime
    started: float | None  # status.startTime
    usage: int | None  # milli-units (millicores, or bytes x 1000)
    metric_timestamp: float = 0.0
    metric_window: float = 0.0
    request: int | None = None  # milli-units summed over containers; None when a container has none


def _unready_for_cpu(sample: PodSample, now: float) -> bool:
    """k/k groupPods: a pod still in its CPU initialization period is unready while not Ready or
    until one metric window passed since it became Ready; later, only a pod never Ready since its
    start (within the initial readiness delay) is."""
    if sample.ready is None or sample.started is None:
        return True
    transition = sample.ready_since or 0.0
    if sample.started + CPU_INITIALIZATION_PERIOD > now:
        return not sample.ready or sample.metric_timestamp < transition + sample.metric_window
    return not sample.ready and sample.started + INITIAL_READINESS_DELAY > transition


@dataclass
class Replicas:
    count: int
    utilization: int | None  # percent of requests (Utilization targets)
    average: int  # milli-units per pod with metrics


def resource_replicas(current: int, samples: list[PodSample], resource: str, now: float,
                      target_utilization: int | None = None, target_average: int | None = None) -> Replicas:
    """The replica count for one resource metric: a Utilization target (percent of requests)
    or an AverageValue target (milli-units per pod). Raises MetricError.

    Example (Kubernetes' own test case): 3 pods using 500m, 700m and 900m of 1 CPU requested
    each, target 50 %: utilization 70 %, ratio 1.4, ceil(1.4 x 3) = 5 replicas.
    """
    if not samples:
        raise MetricError("FailedGetResourceMetric", "no pods returned by selector while calculating replica count")
    metrics: dict[str, PodSample] = {}
    ready_count, unready, missing = 0, [], []
    for sample in samples:
        if sample.deleting or sample.phase == "Failed":
            continue  # ignored
        if sample.phase == "Pending":
            unready.append(sample)
            continue
        if sample.usage is None:
            missing.append(sample)
            continue
        if resource == "cpu" and _unready_for_cpu(sample, now):
            unready.append(sample)
            continue
        metrics[sample.name] = sample
        ready_count += 1
    if not metrics:
        raise MetricError("FailedGetResourceMetric", f"failed to get {resource} utilization: did not receive "
                          "metrics for targeted pods (pods might be unready)")
    usage = {name: sample.usage or 0 for name, sample in metrics.items()}

    def ratio(values: dict[str, int]) -> tuple[float, int | None, int]:
        total = sum(values.values())
        average = total // len(values)
        if target_utilization is None:
            return total / ((target_average or 1) * len(values)), None, average
        requests = 0
        for name in values:
            request = ({**metrics, **{s.name: s for s in missing + unready}}[name]).request
            if request is None:
                raise MetricError("FailedGetResourceMetric", f"failed to get {resource} utilization: missing request "
                                  f"for {resource} in pod {name}")
            requests += request
        if requests == 0:
            raise MetricError("FailedGetResourceMetric", f"failed to get {resource} utilization: no requests")
        utilization = total * 100 // requests
        return utilization / target_utilization, utilization, average

    usage_ratio, utilization, average = ratio(usage)
    scale_up_with_unready = bool(unready) and usage_ratio > 1.0
    if not scale_up_with_unready and not missing:
        if abs(1.0 - usage_ratio) <= TOLERANCE:
            return Replicas(current, utilization, average)
        return Replicas(math.ceil(usage_ratio * ready_count), utilization, average)
    if missing:
        for sample in missing:
            if usage_ratio < 1.0:  # assume they use what the target asks (at least 100 % of requests)
                if target_utilization is None:
                    usage[sample.name] = target_average or 0
                else:
                    usage[sample.name] = (sample.request or 0) * max(100, target_utilization) // 100
            elif usage_ratio > 1.0:
                usage[sample.name] = 0
    if scale_up_with_unready:
        for sample in unready:
            usage[sample.name] = 0
    new_ratio, _, _ = ratio(usage)
    if abs(1.0 - new_ratio) <= TOLERANCE or (usage_ratio < 1.0 < new_ratio) or (usage_ratio > 1.0 > new_ratio):
        return Replicas(current, utilization, average)
    count = math.ceil(new_ratio * len(usage))
    if (new_ratio < 1.0 and count > current) or (new_ratio > 1.0 and count < current):
        return Replicas(current, utilization, average)
    return Replicas(count, utilization, average)


# -- stabilization and rate limits (horizontal.go) -----------------------------------------------


@dataclass
class Recommendation:
    timestamp: float
    replicas: int


@dataclass
class ScaleEvent:
    timestamp: float
    change: int


def change_in_period(events: list[ScaleEvent], period: float, now: float) -> int:
    return sum(event.change for event in events if event.timestamp > now - period)


def scale_up_limit(current: int, events: list[ScaleEvent], rules: HPAScalingRules, now: float) -> int:
    """calculateScaleUpLimitWithScalingRules. Example: 4 pods, 2 added in the last 15 s, policies
    Pods 4 and Percent 100 per 15 s, Max: the period started at 2, so max(2 + 4, 2 x 2) = 6."""
    if rules.select_policy == "Disabled":
        return current
    pick: Callable[[int, int], int] = min if rules.select_policy == "Min" else max
    result: int | None = None
    for policy in rules.policies or []:
        start = current - change_in_period(events, policy.period_seconds, now)
        proposed = start + policy.value if policy.type == "Pods" else math.ceil(start * (1 + policy.value / 100))
        result = proposed if result is None else pick(result, proposed)
    return current if result is None else result


def scale_down_limit(current: int, events: list[ScaleEvent], rules: HPAScalingRules, now: float) -> int:
    """calculateScaleDownLimitWithBehaviors: Max picks the policy that allows the largest drop."""
    if rules.select_policy == "Disabled":
        return current
    pick: Callable[[int, int], int] = max if rules.select_policy == "Min" else min
    result: int | None = None
    for policy in rules.policies or []:
        start = current + change_in_period(events, policy.period_seconds, now)
        proposed = start - policy.value if policy.type == "Pods" else int(start * (1 - policy.value / 100))
        result = proposed if result is None else pick(result, proposed)
    return current if result is None else result


def limited_without_behavior(current: int, desired: int, minimum: int, maximum: int) -> tuple[int, str, str]:
    """convertDesiredReplicasWithRules: at most double (or 4), within min and max."""
    scale_up_cap = max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM)
    if maximum > scale_up_cap:
        allowed_max, reason, message = scale_up_cap, "ScaleUpLimit", \
            "the desired replica count is increasing faster than the maximum scale rate"
    else:
        allowed_max, reason, message = maximum, "TooManyReplicas", \
            "the desired replica count is more than the maximum replica count"
    if desired < minimum:
        return minimum, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
    if desired > allowed_max:
        return allowed_max, reason, message
    return desired, "DesiredWithinRange", "the desired count is within the acceptable range"


def limited_with_behavior(current: int, desired: int, minimum: int, maximum: int, up: HPAScalingRules,
                          down: HPAScalingRules, up_events: list[ScaleEvent], down_events: list[ScaleEvent],
                          now: float) -> tuple[int, str, str]:
    """convertDesiredReplicasWithBehaviorRate."""
    if desired > current:
        limit = max(scale_up_limit(current, up_events, up, now), current)
        if maximum > limit:
            allowed, reason, message = limit, "ScaleUpLimit", \
                "the desired replica count is increasing faster than the maximum scale rate"
        else:
            allowed, reason, message = maximum, "TooManyReplicas", \
                "the desired replica count is more than the maximum replica count"
        if desired > allowed:
            return allowed, reason, message
    elif desired < current:
        limit = min(scale_down_limit(current, down_events, down, now), current)
        if minimum < limit:
            allowed, reason, message = limit, "ScaleDownLimit", \
                "the desired replica count is decreasing faster than the maximum scale rate"
        else:
            allowed, reason, message = minimum, "TooFewReplicas", \
                "the desired replica count is less than the minimum replica count"
        if desired < allowed:
            return allowed, reason, message
    return desired, "DesiredWithinRange", "the desired count is within the acceptable range"


def stabilized(recommendations: list[Recommendation], current: int, desired: int, up_window: float,
               down_window: float, now: float) -> int:
    """stabilizeRecommendationWithBehaviors: no higher than the lowest recommendation of the
    scale-up window, no lower than the highest of the scale-down window (both include `desired`);
    `recommendations` gets `desired` (replacing one older than both windows)."""
    up_recommendation = down_recommendation = desired
    old_index = None
    for index, recommendation in enumerate(recommendations):
        if recommendation.timestamp > now - up_window:
            up_recommendation = min(up_recommendation, recommendation.replicas)
        if recommendation.timestamp > now - down_window:
            down_recommendation = max(down_recommendation, recommendation.replicas)
        if recommendation.timestamp < now - max(up_window, down_window):
            old_index = index
    result = max(current, up_recommendation)
    result = min(result, down_recommendation)
    if old_index is not None:
        recommendations[old_index] = Recommendation(now, desired)
    else:
        recommendations.append(Recommendation(now, desired))
    return result


# -- the controller -----------------------------------------------------------------------------


def _milli(text: str) -> int:
    return int(parse_quantity(text) * 1000)


def _condition(type_: str, status: str, reason: str, message: str) -> tuple[str, str, str, str]:
    return (type_, status, reason, message)


class HorizontalPodAutoscalerController(Controller[str]):
    """Reconciles HorizontalPodAutoscalers; keys are `namespace/name`."""

    def __init__(self, client: Client, clock: Clock | None = None, informers: SharedInformers | None = None,
                 recorder: EventRecorder | None = None, sync_period: float = DEFAULT_SYNC_PERIOD,
                 downscale_stabilization: float = DOWNSCALE_STABILIZATION_SECONDS, workers: int = 1):
        super().__init__(COMPONENT, clock, workers)
        self.client = client
        informers = informers or shared_informers(client)
        self.recorder = recorder or EventRecorder(client, COMPONENT, self.clock)
        self.sync_period = sync_period
        self.downscale_stabilization = downscale_stabilization
        self.autoscalers = self.watch(informers.informer("horizontalpodautoscalers"),
                                      on_add=lambda hpa: self.enqueue(cache_key(hpa)),
                                      on_update=self._autoscaler_updated,
                                      on_delete=self._forget)
        self.pods = self.watch(informers.informer("pods"))
        self._memory_lock = threading.Lock()
        self.recommendations: dict[str, list[Recommendation]] = {}
        self.scale_up_events: dict[str, list[ScaleEvent]] = {}
        self.scale_down_events: dict[str, list[ScaleEvent]] = {}

    def _autoscaler_updated(self, old: HorizontalPodAutoscaler, new: HorizontalPodAutoscaler) -> None:
        """A spec change is synced at once; the controller's own status writes wait for the next
        period (kube-controller-manager delays every enqueue by the sync period)."""
        if old.metadata.generation != new.metadata.generation:
            self.enqueue(cache_key(new))

    def _forget(self, hpa: HorizontalPodAutoscaler) -> None:
        key = cache_key(hpa)
        with self._memory_lock:
            for memory in (self.recommendations, self.scale_up_events, self.scale_down_events):
                memory.pop(key, None)

    # -- sync ---------------------------------------------------------------------------------

    def sync(self, key: str) -> float | None:
        hpa = self.autoscalers.get(key)
        if hpa is None:
            return None
        hpa = hpa.model_copy(deep=True)
        conditions: list[tuple[str, str, str, str]] = []
        metric_statuses: list[MetricStatus] = []
        now = self.clock.now()
        target = hpa.spec.scale_target_ref
        reference = f"{target.kind}/{target.name}"
        try:
            resource = self._scale_resource(target.api_version or "", target.kind)
            scale = self.client.get_scale(resource, target.name, hpa.metadata.namespace)
        except (errors.ApiError, KeyError) as error:
            text = error.args[0] if isinstance(error, KeyError) else error_text(error)
            message = f"the HPA controller was unable to get the target's current scale: {text}"
            self.recorder.event(hpa, WARNING, "FailedGetScale", text)
            conditions.append(_condition("AbleToScale", "False", "FailedGetScale", message))
            self._write_status(hpa, None, hpa.status.desired_replicas if hpa.status else 0, [], conditions, False, now)
            return self.sync_period
        # Later AbleToScale conditions of this sync (rescaled, stabilized, failed update) replace it.
        conditions.append(_condition("AbleToScale", "True", "SucceededGetScale",
                                     "the HPA controller was able to get the target's current scale"))
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        minimum, maximum = hpa.spec.min_replicas or 1, hpa.spec.max_replicas
        rescale_reason = ""
        if current == 0 and minimum != 0:
            desired = 0
            conditions.append(_condition("ScalingActive", "False", "ScalingDisabled",
                                         "scaling is disabled since the replica count of the target is zero"))
        elif current > maximum:
            rescale_reason, desired = "Current number of replicas above Spec.MaxReplicas", maximum
        elif current < minimum:
            rescale_reason, desired = "Current number of replicas below Spec.MinReplicas", minimum
        else:
            try:
                proposed, metric_name, metric_statuses = self._replicas_for_metrics(hpa, scale, current, now, reference)
            except MetricError as error:
                conditions.append(_condition("ScalingActive", "False", error.reason,
                                             f"the HPA was unable to compute the replica count: {error.message}"))
                self.recorder.event(hpa, WARNING, "FailedComputeMetricsReplicas",
                                    f"invalid metrics (1 invalid out of 1), first error is: {error.message}")
                self._write_status(hpa, current, hpa.status.desired_replicas if hpa.status else 0, [], conditions,
                                   False, now)
                return self.sync_period
            conditions.append(_condition(
                "ScalingActive", "True", "ValidMetricFound",
                f"the HPA was able to successfully calculate a replica count from {metric_name}"))
            if proposed > current:
                rescale_reason = f"{metric_name.split(' ')[0]} resource utilization (percentage of request) above target" \
                    if "utilization" in metric_name else f"{metric_name} above target"
            else:
                rescale_reason = "All metrics below target"
            desired = self._normalize(key, hpa, current, proposed, minimum, maximum, conditions, now)
        rescale = desired != current
        if rescale:
            try:
                self.client.scale(resource, target.name, desired, hpa.metadata.namespace)
            except errors.ApiError as error:
                text = error_text(error)
                self.recorder.event(hpa, WARNING, "FailedRescale",
                                    f"New size: {desired}; reason: {rescale_reason}; error: {text}")
                conditions.append(_condition("AbleToScale", "False", "FailedUpdateScale",
                                             f"the HPA controller was unable to update the target scale: {text}"))
                self._write_status(hpa, current, hpa.status.desired_replicas if hpa.status else 0, metric_statuses,
                                   conditions, False, now)
                return self.sync_period
            conditions.append(_condition("AbleToScale", "True", "SucceededRescale",
                                         f"the HPA controller was able to update the target scale to {desired}"))
            self.recorder.event(hpa, NORMAL, "SuccessfulRescale", f"New size: {desired}; reason: {rescale_reason}")
            self._remember_scale(key, hpa, current, desired, now)
            log.info("%s: scaled %s from %d to %d (%s)", key, reference, current, desired, rescale_reason)
        self._write_status(hpa, current, desired, metric_statuses, conditions, rescale, now)
        return self.sync_period

    @staticmethod
    def _scale_resource(api_version: str, kind: str) -> str:
        """The plural of a scale target's kind; KeyError in the RESTMapper's words."""
        for info in api.RESOURCES.values():
            if info.kind == kind and (not api_version or info.api_version == api_version):
                return info.plural
        group = api_version.rpartition("/")[0]
        raise KeyError(f'no matches for kind "{kind}" in group "{group}"')

    def _replicas_for_metrics(self, hpa: HorizontalPodAutoscaler, scale: dict[str, Any], current: int, now: float,
                              reference: str) -> tuple[int, str, list[MetricStatus]]:
        selector_text = (scale.get("status") or {}).get("selector") or ""
        if not selector_text:
            self.recorder.event(hpa, WARNING, "SelectorRequired", "selector is required")
            raise MetricError("InvalidSelector", "the HPA target's scale is missing a selector")
        try:
            selector = parse_selector(selector_text)
        except errors.ApiError as error:
            self.recorder.event(hpa, WARNING, "InvalidSelector", f"couldn't convert selector into a corresponding "
                                f"internal selector object: {error.message}")
            raise MetricError("InvalidSelector", f"couldn't convert selector into a corresponding internal selector "
                              f"object: {error.message}") from None
        pods: list[Pod] = self.pods.list(hpa.metadata.namespace, selector)
        best, best_name, statuses = -1, "", []
        for metric in hpa.spec.metrics or []:
            replicas, name, status = self._resource_metric(hpa, metric, pods, current, now, selector_text)
            statuses.append(status)
            if replicas > best:
                best, best_name = replicas, name
        return best, best_name, statuses

    def _resource_metric(self, hpa: HorizontalPodAutoscaler, metric: MetricSpec, pods: list[Pod], current: int,
                         now: float, selector_text: str) -> tuple[int, str, MetricStatus]:
        assert metric.resource is not None  # validation requires it for Resource metrics
        resource, target = metric.resource.name, metric.resource.target
        try:
            usage = {pod_metrics.metadata.name: pod_metrics for pod_metrics in
                     self.client.pod_metrics(hpa.metadata.namespace, selector_text)}
        except errors.ApiError as error:
            raise MetricError("FailedGetResourceMetric", f"failed to get {resource} utilization: unable to get "
                              f"metrics for resource {resource}: {error_text(error)}") from None
        if not usage:
            message = (f"failed to get {resource} utilization: unable to get metrics for resource {resource}: "
                       "no metrics returned from resource metrics API")
            self.recorder.event(hpa, WARNING, "FailedGetResourceMetric", message)
            raise MetricError("FailedGetResourceMetric", message)
        samples = [self._sample(pod, usage.get(pod.metadata.name or ""), resource) for pod in pods]
        try:
            if target.type == "Utilization":
                result = resource_replicas(current, samples, resource, now, target_utilization=target.average_utilization)
                name = f"{resource} resource utilization (percentage of request)"
                current_value = MetricValueStatus(average_utilization=result.utilization,
                                                  average_value=_format_milli(result.average, resource))
            else:
                result = resource_replicas(current, samples, resource, now,
                                           target_average=_milli(target.average_value or "0"))
                name = f"{resource} resource"
                current_value = MetricValueStatus(average_value=_format_milli(result.average, resource))
        except MetricError as error:
            self.recorder.event(hpa, WARNING, error.reason, error.message)
            raise
        status = MetricStatus(type="Resource", resource=ResourceMetricStatus(name=resource, current=current_value))
        return result.count, name, status

    @staticmethod
    def _sample(pod: Pod, pod_metrics: Any, resource: str) -> PodSample:
        status = pod.status
        ready_condition = next((c for c in (status.conditions or []) if c.type == "Ready"), None) if status else None
        requests: int | None = 0
        for container in pod.spec.containers:
            request = ((container.resources.requests or {}) if container.resources else {}).get(resource)
            if request is None:
                requests = None
                break
            requests = (requests or 0) + _milli(request)
        usage = None
        timestamp = window = 0.0
        if pod_metrics is not None:
            usage = sum(_milli(c.usage.get(resource, "0")) for c in pod_metrics.containers)
            timestamp = parse_time(pod_metrics.timestamp) if pod_metrics.timestamp else 0.0
            window = _seconds(pod_metrics.window)
        return PodSample(
            name=pod.metadata.name or "", phase=(status.phase if status else None) or "Pending",
            deleting=pod.metadata.deletion_timestamp is not None,
            ready=None if ready_condition is None else ready_condition.status == "True",
            ready_since=parse_time(ready_condition.last_transition_time)
            if ready_condition is not None and ready_condition.last_transition_time else None,
            started=parse_time(status.start_time) if status and status.start_time else None,
            usage=usage, metric_timestamp=timestamp, metric_window=window, request=requests)

    def _normalize(self, key: str, hpa: HorizontalPodAutoscaler, current: int, proposed: int, minimum: int,
                   maximum: int, conditions: list[tuple[str, str, str, str]], now: float) -> int:
        behavior = hpa.spec.behavior
        if behavior is None:
            up, down = scale_up_rules(None), scale_down_rules(None)
        else:
            up, down = scale_up_rules(behavior.scale_up), scale_down_rules(behavior.scale_down)
        down_window = float(down.stabilization_window_seconds) if down.stabilization_window_seconds is not None \
            else self.downscale_stabilization
        up_window = float(up.stabilization_window_seconds or 0) if behavior is not None else 0.0
        with self._memory_lock:
            recommendations = self.recommendations.setdefault(key, [])
            settled = stabilized(recommendations, current, proposed, up_window, down_window, now)
            up_events = list(self.scale_up_events.get(key, []))
            down_events = list(self.scale_down_events.get(key, []))
        if settled != proposed:
            if settled < proposed:
                conditions.append(_condition("AbleToScale", "True", "ScaleUpStabilized",
                                             "recent recommendations were lower than current one, applying the "
                                             "lowest recent recommendation"))
            else:
                conditions.append(_condition("AbleToScale", "True", "ScaleDownStabilized",
                                             "recent recommendations were higher than current one, applying the "
                                             "highest recent recommendation"))
        else:
            conditions.append(_condition("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size"))
        if behavior is None:
            desired, reason, message = limited_without_behavior(current, settled, minimum, maximum)
        else:
            desired, reason, message = limited_with_behavior(current, settled, minimum, maximum, up, down,
                                                             up_events, down_events, now)
        conditions.append(_condition("ScalingLimited", "False" if desired == settled else "True", reason, message))
        return desired

    def _remember_scale(self, key: str, hpa: HorizontalPodAutoscaler, previous: int, new: int, now: float) -> None:
        """storeScaleEvent: kept for the longest policy period of the direction."""
        behavior = hpa.spec.behavior
        rules = (scale_up_rules(behavior.scale_up if behavior else None) if new > previous
                 else scale_down_rules(behavior.scale_down if behavior else None))
        longest = max((policy.period_seconds for policy in rules.policies or []), default=0)
        with self._memory_lock:
            events = (self.scale_up_events if new > previous else self.scale_down_events).setdefault(key, [])
            events[:] = [event for event in events if event.timestamp > now - longest]
            events.append(ScaleEvent(now, abs(new - previous)))

    def _write_status(self, hpa: HorizontalPodAutoscaler, current: int | None, desired: int,
                      metrics: list[MetricStatus], conditions: list[tuple[str, str, str, str]], rescaled: bool,
                      now: float) -> None:
        old = hpa.status
        status = hpa.status.model_copy(deep=True) if hpa.status else None
        status = status or HorizontalPodAutoscalerStatus()
        status.current_replicas = current if current is not None else status.current_replicas
        status.desired_replicas = desired
        status.current_metrics = metrics or None
        status.observed_generation = hpa.metadata.generation
        if rescaled:
            status.last_scale_time = format_time(now)
        merged = {condition.type: condition for condition in (status.conditions or [])}
        for type_, state, reason, message in conditions:
            before = merged.get(type_)
            changed = before is None or before.status != state
            merged[type_] = HorizontalPodAutoscalerCondition(
                type=type_, status=state, reason=reason, message=message,
                last_transition_time=format_time(now) if changed or before is None else before.last_transition_time)
        order = ["AbleToScale", "ScalingActive", "ScalingLimited"]
        status.conditions = sorted(merged.values(), key=lambda c: order.index(c.type) if c.type in order else 9)
        if old is not None and old.model_dump() == status.model_dump():
            return
        hpa.status = status
        try:
            self.client.replace_status(hpa)
        except errors.Conflict:
            self.enqueue(cache_key(hpa))


def _seconds(go_duration: str) -> float:
    """Seconds of a Go duration as the Metrics API writes windows (`15s`, `1m30s`, `500ms`)."""
    total = 0.0
    for number, unit in re.findall(r"([0-9.]+)(h|ms|m|s|µs|us|ns)", go_duration or ""):
        total += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}[unit]
    return total


def _format_milli(milli: int, resource: str) -> str:
    """A milli-unit average as the status shows it: `250m` of CPU, bytes of memory (`12Mi`)."""
    if resource == "cpu":
        return f"{milli}m" if milli % 1000 else str(milli // 1000)
    return format_binary_bytes(milli // 1000)
