"""`autoscaling/v2` HorizontalPodAutoscaler: keep a workload's replicas where its pods' CPU or
memory meets a target.

The controller (controllers/horizontalpodautoscaler.py) reads the Metrics API and writes the
target's `/scale` subresource. Defaults and validation are kube-apiserver's: `minReplicas` 1, no
metrics means CPU at 80 % of requests, and a `behavior` that is given has its missing rules filled
with Kubernetes' (scale up: no stabilization, the larger of 4 pods or 100 % per 15 s; scale down:
100 % per 15 s, the stabilization window left to the controller's 300 s).
"""

from __future__ import annotations


from pydantic import Field

from minikube_py.api.meta import Int32, ObjectMeta, WireModel
from minikube_py.api.quantity import parse_quantity


class CrossVersionObjectReference(WireModel):
    kind: str = ""
    name: str = ""
    api_version: str | None = None


class MetricTarget(WireModel):
    type: str = ""  # Utilization, AverageValue or Value
    average_utilization: Int32 | None = None
    average_value: str | None = None
    value: str | None = None


class ResourceMetricSource(WireModel):
    name: str = ""
    target: MetricTarget = Field(default_factory=MetricTarget)


class MetricSpec(WireModel):
    type: str = ""
    resource: ResourceMetricSource | None = None


class HPAScalingPolicy(WireModel):
    type: str = ""  # Pods or Percent
    value: Int32 = 0
    period_seconds: Int32 = 0


class HPAScalingRules(WireModel):
    stabilization_window_seconds: Int32 | None = None
    select_policy: str | None = None  # Max, Min or Disabled
    policies: list[HPAScalingPolicy] | None = None


class HorizontalPodAutoscalerBehavior(WireModel):
    scale_up: HPAScalingRules | None = None
    scale_down: HPAScalingRules | None = None


class HorizontalPodAutoscalerSpec(WireModel):
    scale_target_ref: CrossVersionObjectReference = Field(default_factory=CrossVersionObjectReference)
    min_replicas: Int32 | None = None
    max_replicas: Int32 = 0
    metrics: list[MetricSpec] | None = None
    behavior: HorizontalPodAutoscalerBehavior | None = None


class MetricValueStatus(WireModel):
    average_utilization: Int32 | None = None
    average_value: str | None = None
    value: str | None = None


class ResourceMetricStatus(WireModel):
    name: str = ""
    current: MetricValueStatus = Field(default_factory=MetricValueStatus)


class MetricStatus(WireModel):
    type: str = ""
    resource: ResourceMetricStatus | None = None


class HorizontalPodAutoscalerCondition(WireModel):
    type: str = ""
    status: str = ""
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class HorizontalPodAutoscalerStatus(WireModel):
    observed_generation: int | None = None
    last_scale_time: str | None = None
    current_replicas: Int32 | None = None
    desired_replicas: Int32 = 0
    current_metrics: list[MetricStatus] | None = None
    conditions: list[HorizontalPodAutoscalerCondition] | None = None


class HorizontalPodAutoscaler(WireModel):
    api_version: str = "autoscaling/v2"
    kind: str = "HorizontalPodAutoscaler"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: HorizontalPodAutoscalerSpec = Field(default_factory=HorizontalPodAutoscalerSpec)
    status: HorizontalPodAutoscalerStatus | None = None


DEFAULT_CPU_UTILIZATION = 80
SCALE_UP_POLICIES = [HPAScalingPolicy(type="Pods", value=4, period_seconds=15),
                     HPAScalingPolicy(type="Percent", value=100, period_seconds=15)]
SCALE_DOWN_POLICIES = [HPAScalingPolicy(type="Percent", value=100, period_seconds=15)]


def scale_up_rules(rules: HPAScalingRules | None) -> HPAScalingRules:
    """GenerateHPAScaleUpRules: what is missing from `rules` filled with the defaults."""
    rules = rules or HPAScalingRules()
    return HPAScalingRules(
        stabilization_window_seconds=0 if rules.stabilization_window_seconds is None else rules.stabilization_window_seconds,
        select_policy=rules.select_policy or "Max",
        policies=rules.policies if rules.policies is not None else [p.model_copy() for p in SCALE_UP_POLICIES])


def scale_down_rules(rules: HPAScalingRules | None) -> HPAScalingRules:
    """GenerateHPAScaleDownRules: the window stays unset (the controller's 300 s default applies)."""
    rules = rules or HPAScalingRules()
    return HPAScalingRules(
        stabilization_window_seconds=rules.stabilization_window_seconds,
        select_policy=rules.select_policy or "Max",
        policies=rules.policies if rules.policies is not None else [p.model_copy() for p in SCALE_DOWN_POLICIES])


def default_horizontal_pod_autoscaler(hpa: HorizontalPodAutoscaler) -> None:
    spec = hpa.spec
    if spec.min_replicas is None:
        spec.min_replicas = 1
    if not spec.metrics:
        spec.metrics = [MetricSpec(type="Resource", resource=ResourceMetricSource(
            name="cpu", target=MetricTarget(type="Utilization", average_utilization=DEFAULT_CPU_UTILIZATION)))]
    if spec.behavior is not None:
        spec.behavior.scale_up = scale_up_rules(spec.behavior.scale_up)
        spec.behavior.scale_down = scale_down_rules(spec.behavior.scale_down)


SUPPORTED_METRIC_TYPES = ("Resource",)
TARGET_TYPES = ("Utilization", "AverageValue", "Value")
MAX_PERIOD_SECONDS = 1800
MAX_STABILIZATION_SECONDS = 3600


def _validate_rules(rules: HPAScalingRules | None, path: str) -> list[tuple[str, str]]:
    if rules is None:
        return []
    problems = []
    window = rules.stabilization_window_seconds
    if window is not None and not 0 <= window <= MAX_STABILIZATION_SECONDS:
        problems.append((f"{path}.stabilizationWindowSeconds",
                         f"Invalid value: {window}: must be less than or equal to {MAX_STABILIZATION_SECONDS}"
                         if window > 0 else f"Invalid value: {window}: must be greater than or equal to zero"))
    if rules.select_policy is not None and rules.select_policy not in ("Max", "Min", "Disabled"):
        problems.append((f"{path}.selectPolicy", f'Unsupported value: "{rules.select_policy}": supported values: '
                         '"Disabled", "Max", "Min"'))
    if rules.policies is not None and not rules.policies and rules.select_policy != "Disabled":
        problems.append((f"{path}.policies", "Required value: must specify at least one Policy"))
    for index, policy in enumerate(rules.policies or []):
        where = f"{path}.policies[{index}]"
        if policy.type not in ("Pods", "Percent"):
            problems.append((f"{where}.type", f'Unsupported value: "{policy.type}": supported values: "Percent", "Pods"'))
        if policy.value <= 0:
            problems.append((f"{where}.value", f"Invalid value: {policy.value}: must be greater than zero"))
        if not 0 < policy.period_seconds <= MAX_PERIOD_SECONDS:
            problems.append((f"{where}.periodSeconds",
                             f"Invalid value: {policy.period_seconds}: must be greater than zero"
                             if policy.period_seconds <= 0 else
                             f"Invalid value: {policy.period_seconds}: must be less than or equal to {MAX_PERIOD_SECONDS}"))
    return problems


def _validate_metric(metric: MetricSpec, path: str) -> list[tuple[str, str]]:
    if metric.type not in SUPPORTED_METRIC_TYPES:
        return [(f"{path}.type", f'Unsupported value: "{metric.type}": supported values: "Resource" '
                 "(minikube-py serves resource metrics only: cpu and memory)")]
    if metric.resource is None:
        return [(f"{path}.resource", "Required value: must populate information for the given metric source")]
    problems = []
    where = f"{path}.resource"
    if metric.resource.name not in ("cpu", "memory"):
        problems.append((f"{where}.name", f'Unsupported value: "{metric.resource.name}": supported values: "cpu", '
                         '"memory"' if metric.resource.name else "Required value: must specify a resource name"))
    target = metric.resource.target
    if target.type not in TARGET_TYPES:
        problems.append((f"{where}.target.type", "Required value: must specify a metric target type"
                         if not target.type else f'Unsupported value: "{target.type}": supported values: '
                         '"AverageValue", "Utilization", "Value"'))
    elif target.type == "Utilization":
        if target.average_utilization is None:
            problems.append((f"{where}.target.averageUtilization", "Required value: must set either a target raw "
                             "value or a target utilization"))
        elif target.average_utilization <= 0:
            problems.append((f"{where}.target.averageUtilization",
                             f"Invalid value: {target.average_utilization}: must be greater than 0"))
    elif target.type == "AverageValue":
        problems += _positive_quantity(target.average_value, f"{where}.target.averageValue")
    else:
        problems.append((f"{where}.target.type", 'Unsupported value: "Value": a Resource metric takes "Utilization" '
                         'or "AverageValue"'))
    return problems


def _positive_quantity(text: str | None, path: str) -> list[tuple[str, str]]:
    if text is None:
        return [(path, "Required value: must set either a target raw value or a target utilization")]
    try:
        value = parse_quantity(text)
    except ValueError:
        return [(path, f'Invalid value: "{text}": quantities must match the regular expression '
                 "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    return [] if value > 0 else [(path, f'Invalid value: "{text}": must be positive')]


def validate_horizontal_pod_autoscaler(hpa: HorizontalPodAutoscaler) -> list[tuple[str, str]]:
    spec = hpa.spec
    problems: list[tuple[str, str]] = []
    if not spec.scale_target_ref.kind:
        problems.append(("spec.scaleTargetRef.kind", "Required value"))
    if not spec.scale_target_ref.name:
        problems.append(("spec.scaleTargetRef.name", "Required value"))
    minimum = spec.min_replicas if spec.min_replicas is not None else 1
    if minimum < 1:
        problems.append(("spec.minReplicas", f"Invalid value: {minimum}: must be greater than or equal to 1"))
    if spec.max_replicas < 1:
        problems.append(("spec.maxReplicas", f"Invalid value: {spec.max_replicas}: must be greater than 0"))
    elif spec.max_replicas < minimum:
        problems.append(("spec.maxReplicas",
                         f"Invalid value: {spec.max_replicas}: must be greater than or equal to `minReplicas`"))
    for index, metric in enumerate(spec.metrics or []):
        problems += _validate_metric(metric, f"spec.metrics[{index}]")
    if spec.behavior is not None:
        problems += _validate_rules(spec.behavior.scale_up, "spec.behavior.scaleUp")
        problems += _validate_rules(spec.behavior.scale_down, "spec.behavior.scaleDown")
    return problems
