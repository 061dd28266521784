"""`autoscaling/v1` HorizontalPodAutoscaler: the same resource as `autoscaling/v2`, in its first shape.

Kubernetes serves one HorizontalPodAutoscaler at two versions and stores it once; so do we (the
storage version is v2, `api/autoscaling.py`). v1 knows one metric, CPU utilization
(`spec.targetCPUUtilizationPercentage`, `status.currentCPUUtilizationPercentage`); everything
else v2 holds travels in four annotations, so that a v1 client that reads, edits and writes an
object back loses nothing (k/k `pkg/apis/autoscaling/v1/conversion.go`):

- `autoscaling.alpha.kubernetes.io/metrics`: the spec's metrics other than CPU utilization, as
  v1 `MetricSpec`s (`{"type":"Resource","resource":{"name":"memory","targetAverageValue":"100Mi"}}`);
- `autoscaling.alpha.kubernetes.io/current-metrics`: every current metric, as v1 `MetricStatus`es;
- `autoscaling.alpha.kubernetes.io/behavior`: `spec.behavior`, written with Go's field names
  (`{"ScaleUp":{"StabilizationWindowSeconds":0,...}}`) as kube-apiserver marshals its internal
  type, and read back case-insensitively as Go's decoder does;
- `autoscaling.alpha.kubernetes.io/conditions`: the status conditions.

Going in (v1 -> v2), the annotations are taken out of the object's metadata and turned back into
fields: the metrics of the annotation first, then the CPU target. Going out (v2 -> v1), the first
CPU utilization metric becomes `targetCPUUtilizationPercentage` and every CPU utilization metric
is left out of the annotation, as Kubernetes does; so a round trip keeps every field, with the CPU
metric moved last. The conversions work on wire dicts and take partial objects (a server-side
apply configuration) and malformed ones (they convert what they can; validation reports the rest).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from minikube_py.api.meta import Int32, ObjectMeta, WireModel

API_VERSION = "autoscaling/v1"
STORAGE_VERSION = "autoscaling/v2"
METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"
CURRENT_METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/current-metrics"
BEHAVIOR_ANNOTATION = "autoscaling.alpha.kubernetes.io/behavior"
CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"
ROUND_TRIP_ANNOTATIONS = (METRICS_ANNOTATION, CURRENT_METRICS_ANNOTATION, BEHAVIOR_ANNOTATION, CONDITIONS_ANNOTATION)


class CrossVersionObjectReference(WireModel):
    kind: str = ""
    name: str = ""
    api_version: str | None = None


class HorizontalPodAutoscalerSpec(WireModel):
    scale_target_ref: CrossVersionObjectReference = Field(default_factory=CrossVersionObjectReference)
    min_replicas: Int32 | None = None
    max_replicas: Int32 = 0
    target_cpu_utilization_percentage: Int32 | None = Field(default=None, alias="targetCPUUtilizationPercentage")


class HorizontalPodAutoscalerStatus(WireModel):
    observed_generation: int | None = None
    last_scale_time: str | None = None
    current_replicas: Int32 = 0
    desired_replicas: Int32 = 0
    current_cpu_utilization_percentage: Int32 | None = Field(default=None, alias="currentCPUUtilizationPercentage")


class HorizontalPodAutoscaler(WireModel):
    """configuration of a horizontal pod autoscaler (autoscaling/v1: CPU utilization only)."""

    api_version: str = API_VERSION
    kind: str = "HorizontalPodAutoscaler"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: HorizontalPodAutoscalerSpec = Field(default_factory=HorizontalPodAutoscalerSpec)
    status: HorizontalPodAutoscalerStatus | None = None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _present(pairs: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in pairs.items() if value is not None}


def _is_cpu_utilization(metric: Any) -> bool:
    resource = _mapping(_mapping(metric).get("resource"))
    return metric.get("type") == "Resource" and resource.get("name") == "cpu" and \
        _mapping(resource.get("target")).get("averageUtilization") is not None


# -- v2 -> v1 ------------------------------------------------------------------------------------


def _metric_spec_to_v1(metric: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {"type": metric.get("type", "")}
    resource = metric.get("resource")
    if isinstance(resource, dict):
        target = _mapping(resource.get("target"))
        converted["resource"] = _present({"name": resource.get("name", ""),
                                          "targetAverageUtilization": target.get("averageUtilization"),
                                          "targetAverageValue": target.get("averageValue")})
    return converted


def _metric_status_to_v1(metric: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {"type": metric.get("type", "")}
    resource = metric.get("resource")
    if isinstance(resource, dict):
        current = _mapping(resource.get("current"))
        converted["resource"] = _present({"name": resource.get("name", ""),
                                          "currentAverageUtilization": current.get("averageUtilization"),
                                          "currentAverageValue": current.get("averageValue")})
    return converted


GO_BEHAVIOR_FIELDS = {"scaleUp": "ScaleUp", "scaleDown": "ScaleDown"}
GO_RULES_FIELDS = {"stabilizationWindowSeconds": "StabilizationWindowSeconds", "selectPolicy": "SelectPolicy",
                   "policies": "Policies"}
GO_POLICY_FIELDS = {"type": "Type", "value": "Value", "periodSeconds": "PeriodSeconds"}


def _behavior_to_go(behavior: dict[str, Any]) -> dict[str, Any]:
    """`spec.behavior` as Go's encoding/json writes kube-apiserver's internal type: field names
    capitalized, every field present, unset ones null."""
    def rules(value: Any) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            return None
        policies = value.get("policies")
        return {"StabilizationWindowSeconds": value.get("stabilizationWindowSeconds"),
                "SelectPolicy": value.get("selectPolicy"),
                "Policies": None if not isinstance(policies, list) else
                [{go: _mapping(policy).get(wire) for wire, go in GO_POLICY_FIELDS.items()} for policy in policies]}

    return {"ScaleUp": rules(behavior.get("scaleUp")), "ScaleDown": rules(behavior.get("scaleDown"))}


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def from_v2(obj: dict[str, Any]) -> dict[str, Any]:
    """A v2 HorizontalPodAutoscaler (wire dict[str, Any]) as autoscaling/v1 (ConvertHorizontalPodAutoscaler
    from the internal version to v1)."""
    spec, status = _mapping(obj.get("spec")), _mapping(obj.get("status"))
    metadata = dict(_mapping(obj.get("metadata")))
    annotations = {key: value for key, value in _mapping(metadata.get("annotations")).items()
                   if key not in ROUND_TRIP_ANNOTATIONS}
    metrics = [metric for metric in spec.get("metrics") or [] if isinstance(metric, dict)]
    v1_spec: dict[str, Any] = {key: spec[key] for key in ("scaleTargetRef", "minReplicas", "maxReplicas") if key in spec}
    cpu = next((metric for metric in metrics if _is_cpu_utilization(metric)), None)
    if cpu is not None:
        v1_spec["targetCPUUtilizationPercentage"] = cpu["resource"]["target"]["averageUtilization"]
    other_metrics = [_metric_spec_to_v1(metric) for metric in metrics if not _is_cpu_utilization(metric)]
    if other_metrics:
        annotations[METRICS_ANNOTATION] = _compact(other_metrics)
    current_metrics = [metric for metric in status.get("currentMetrics") or [] if isinstance(metric, dict)]
    if current_metrics:
        annotations[CURRENT_METRICS_ANNOTATION] = _compact([_metric_status_to_v1(metric) for metric in current_metrics])
    if isinstance(spec.get("behavior"), dict):
        annotations[BEHAVIOR_ANNOTATION] = _compact(_behavior_to_go(spec["behavior"]))
    if status.get("conditions"):
        annotations[CONDITIONS_ANNOTATION] = _compact(status["conditions"])
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    v1_status: dict[str, Any] = {key: status[key] for key in ("observedGeneration", "lastScaleTime") if key in status}
    # Not pointers in v1, so always written (0 before the controller's first sync).
    v1_status["currentReplicas"] = status.get("currentReplicas") or 0
    v1_status["desiredReplicas"] = status.get("desiredReplicas") or 0
    for metric in current_metrics:  # the last CPU utilization wins, as in Kubernetes' loop
        resource = _mapping(metric.get("resource"))
        utilization = _mapping(resource.get("current")).get("averageUtilization")
        if metric.get("type") == "Resource" and resource.get("name") == "cpu" and utilization is not None:
            v1_status["currentCPUUtilizationPercentage"] = utilization
    converted = {key: value for key, value in obj.items() if key not in ("metadata", "spec", "status")}
    converted.update(apiVersion=API_VERSION, metadata=metadata, spec=v1_spec, status=v1_status)
    return converted


# -- v1 -> v2 ------------------------------------------------------------------------------------


def _json_annotation(annotations: dict[str, Any], key: str) -> Any:
    """The JSON held by a round-trip annotation, or None when absent or not JSON (ignored, as
    Kubernetes ignores an annotation it cannot decode)."""
    text = annotations.get(key)
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _metric_spec_to_v2(metric: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {"type": metric.get("type", "")}
    resource = metric.get("resource")
    if isinstance(resource, dict):
        utilization = resource.get("targetAverageUtilization")
        converted["resource"] = {"name": resource.get("name", ""), "target": _present({
            "type": "AverageValue" if utilization is None else "Utilization",
            "averageUtilization": utilization, "averageValue": resource.get("targetAverageValue")})}
    return converted


def _metric_status_to_v2(metric: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {"type": metric.get("type", "")}
    resource = metric.get("resource")
    if isinstance(resource, dict):
        converted["resource"] = {"name": resource.get("name", ""), "current": _present({
            "averageUtilization": resource.get("currentAverageUtilization"),
            "averageValue": resource.get("currentAverageValue")})}
    return converted


def _go_fields(value: Any, fields: dict[str, str]) -> dict[str, Any]:
    """A JSON object's fields under their wire names, matched case-insensitively as Go's
    encoding/json matches them; nulls dropped."""
    by_lower = {wire.lower(): wire for wire in fields}
    return {by_lower[key.lower()]: item for key, item in _mapping(value).items()
            if isinstance(key, str) and key.lower() in by_lower and item is not None}


def _behavior_from_annotation(value: Any) -> dict[str, Any] | None:
    behavior: dict[str, Any] = {}
    for direction, rules_value in _go_fields(value, GO_BEHAVIOR_FIELDS).items():
        rules = _go_fields(rules_value, GO_RULES_FIELDS)
        if isinstance(rules.get("policies"), list):
            rules["policies"] = [_go_fields(policy, GO_POLICY_FIELDS) for policy in rules["policies"]]
        behavior[direction] = rules
    return behavior or None


def to_v2(obj: dict[str, Any]) -> dict[str, Any]:
    """An autoscaling/v1 HorizontalPodAutoscaler (wire dict[str, Any], perhaps partial) as v2
    (ConvertHorizontalPodAutoscaler from v1 to the internal version)."""
    metadata = dict(_mapping(obj.get("metadata")))
    annotations = dict(_mapping(metadata.get("annotations")))
    round_trip = {key: _json_annotation(annotations, key) for key in ROUND_TRIP_ANNOTATIONS}
    for key in ROUND_TRIP_ANNOTATIONS:
        annotations.pop(key, None)
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    converted = {key: value for key, value in obj.items() if key not in ("metadata", "spec", "status")}
    converted["apiVersion"] = STORAGE_VERSION
    if "metadata" in obj or metadata:
        converted["metadata"] = metadata
    if isinstance(obj.get("spec"), dict):
        spec = {key: value for key, value in obj["spec"].items() if key != "targetCPUUtilizationPercentage"}
        metrics = [_metric_spec_to_v2(metric) for metric in round_trip[METRICS_ANNOTATION] or []
                   if isinstance(metric, dict)] if isinstance(round_trip[METRICS_ANNOTATION], list) else []
        cpu = obj["spec"].get("targetCPUUtilizationPercentage")
        if cpu is not None:
            metrics.append({"type": "Resource", "resource": {
                "name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu}}})
        if metrics:
            spec["metrics"] = metrics
        behavior = _behavior_from_annotation(round_trip[BEHAVIOR_ANNOTATION])
        if behavior is not None:
            spec["behavior"] = behavior
        converted["spec"] = spec
    elif "spec" in obj:
        converted["spec"] = obj["spec"]  # not an object: validation says so
    status_in = obj.get("status")
    cpu_now = _mapping(status_in).get("currentCPUUtilizationPercentage")
    status = {key: value for key, value in _mapping(status_in).items() if key != "currentCPUUtilizationPercentage"}
    current_metrics = round_trip[CURRENT_METRICS_ANNOTATION]
    if isinstance(current_metrics, list):
        status["currentMetrics"] = [_metric_status_to_v2(metric) for metric in current_metrics
                                    if isinstance(metric, dict)]
    elif cpu_now is not None:
        status["currentMetrics"] = [{"type": "Resource", "resource": {"name": "cpu", "current": {
            "averageUtilization": cpu_now}}}]
    if isinstance(round_trip[CONDITIONS_ANNOTATION], list):
        status["conditions"] = round_trip[CONDITIONS_ANNOTATION]
    if not status.get("currentMetrics"):
        status.pop("currentMetrics", None)
    if status.get("currentReplicas") == 0:
        status.pop("currentReplicas")  # v2's is omitted when 0 (omitempty), v1's always written
    if isinstance(status_in, dict) or status:
        converted["status"] = status
    elif "status" in obj:
        converted["status"] = status_in
    return converted
