"""`describe` for StatefulSets, HorizontalPodAutoscalers, PodDisruptionBudgets and PriorityClasses,
and kubectl's generic page for every other kind (ControllerRevisions, Leases, ...).

Each follows its kubectl describer (`describeStatefulSet`, `describeHorizontalPodAutoscalerV2`,
`describePodDisruptionBudgetV1`, `describePriorityClass` in kubectl's describe.go). A kind kubectl
has no describer for gets `genericDescriber`'s page: name, namespace, labels, annotations, then
every other field of the object, sorted, under labels made from the field names
(`smartLabelFor`: `holderIdentity` -> `Holder Identity`, `apiVersion` -> `API Version`).
"""

from __future__ import annotations

import re
from typing import Any

from minikube_py.cli import tables
from minikube_py.cli.context import Context
from minikube_py.cli.describe_format import DescribeWriter, describe_events, events_about, rfc1123
from minikube_py.cli.describe_storage import format_labels, go_list, storage_class_of
from minikube_py.cli.describe_template import describe_pod_template, write_pods_status
from minikube_py.cli.tables import NONE


def _volume_claim_templates(writer: DescribeWriter, templates: list[dict] | None) -> None:
    if not templates:
        writer.write(0, f"Volume Claims:\t{NONE}")
        return
    writer.write(0, "Volume Claims:")
    for claim in templates:
        spec = claim.get("spec") or {}
        writer.write(1, f"Name:\t{claim['metadata'].get('name', '')}")
        writer.write(1, f"StorageClass:\t{storage_class_of(claim)}")
        writer.labels(1, "Labels", claim["metadata"].get("labels"))
        writer.labels(1, "Annotations", claim["metadata"].get("annotations"))
        capacity = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
        writer.write(1, f"Capacity:\t{capacity or '<default>'}")
        writer.write(1, f"Access Modes:\t{go_list(spec.get('accessModes'))}")


def describe_stateful_set(context: Context, stateful_set: dict, now: float) -> str:
    metadata, spec, status = stateful_set["metadata"], stateful_set.get("spec") or {}, stateful_set.get("status") or {}
    writer = DescribeWriter()
    writer.write(0, f"Name:\t{metadata['name']}")
    writer.write(0, f"Namespace:\t{metadata.get('namespace', '')}")
    writer.write(0, f"CreationTimestamp:\t{rfc1123(metadata.get('creationTimestamp'))}")
    writer.write(0, f"Selector:\t{tables.format_label_selector(spec.get('selector'))}")
    writer.labels(0, "Labels", metadata.get("labels"))
    writer.annotations(0, "Annotations", metadata.get("annotations"))
    writer.write(0, f"Replicas:\t{spec.get('replicas', 1)} desired | {status.get('replicas', 0)} total")
    strategy = spec.get("updateStrategy") or {}
    writer.write(0, f"Update Strategy:\t{strategy.get('type', '')}")
    rolling = strategy.get("rollingUpdate")
    if rolling is not None and rolling.get("partition") is not None:
        writer.write(1, f"Partition:\t{rolling['partition']}")
        if rolling.get("maxUnavailable") is not None:
            writer.write(1, f"MaxUnavailable:\t{rolling['maxUnavailable']}")
    write_pods_status(context, writer, stateful_set)
    describe_pod_template(writer, spec.get("template") or {})
    _volume_claim_templates(writer, spec.get("volumeClaimTemplates"))
    describe_events(writer, events_about(context, stateful_set), now)
    return writer.render()


def _resource_metric_line(writer: DescribeWriter, metric: dict, current: dict | None) -> None:
    source = metric.get("resource") or {}
    target = source.get("target") or {}
    current_value = ((current or {}).get("resource") or {}).get("current") or {}
    if target.get("averageValue") is not None:
        writer.write(1, f"resource {source.get('name', '')} on pods:\t"
                        f"{current_value.get('averageValue') or '<unknown>'} / {target['averageValue']}")
        return
    shown = "<unknown>"
    if current_value.get("averageUtilization") is not None:
        shown = f"{current_value['averageUtilization']}% ({current_value.get('averageValue', '')})"
    wanted = f"{target['averageUtilization']}%" if target.get("averageUtilization") is not None else "<auto>"
    writer.write(1, f"resource {source.get('name', '')} on pods  (as a percentage of request):\t{shown} / {wanted}")


def _direction_behavior(writer: DescribeWriter, direction: str, rules: dict | None) -> None:
    if rules is None:
        return
    writer.write(1, f"{direction}:")
    if rules.get("stabilizationWindowSeconds") is not None:
        writer.write(2, f"Stabilization Window: {rules['stabilizationWindowSeconds']} seconds")
    if rules.get("policies"):
        writer.write(2, f"Select Policy: {rules.get('selectPolicy') or 'Max'}")
        writer.write(2, "Policies:")
        for policy in rules["policies"]:
            writer.write(3, f"- Type: {policy.get('type', '')}\tValue: {policy.get('value', 0)}\t"
                            f"Period: {policy.get('periodSeconds', 0)} seconds")


def describe_horizontal_pod_autoscaler(context: Context, autoscaler: dict, now: float) -> str:
    """kubectl's describeHorizontalPodAutoscalerV2 (ours stores autoscaling/v2)."""
    metadata, spec, status = autoscaler["metadata"], autoscaler.get("spec") or {}, autoscaler.get("status") or {}
    target = spec.get("scaleTargetRef") or {}
    writer = DescribeWriter()
    writer.write(0, f"Name:\t{metadata['name']}")
    writer.write(0, f"Namespace:\t{metadata.get('namespace', '')}")
    writer.labels(0, "Labels", metadata.get("labels"))
    writer.annotations(0, "Annotations", metadata.get("annotations"))
    writer.write(0, f"CreationTimestamp:\t{rfc1123(metadata.get('creationTimestamp'))}")
    writer.write(0, f"Reference:\t{target.get('kind', '')}/{target.get('name', '')}")
    writer.write(0, "Metrics:\t( current / target )")
    current_metrics = status.get("currentMetrics") or []
    for index, metric in enumerate(spec.get("metrics") or []):
        current = current_metrics[index] if index < len(current_metrics) else None
        if metric.get("type") == "Resource":
            _resource_metric_line(writer, metric, current)
        else:
            writer.write(1, f'<unknown metric type "{metric.get("type", "")}">')
    writer.write(0, f"Min replicas:\t{spec['minReplicas'] if spec.get('minReplicas') is not None else '<unset>'}")
    writer.write(0, f"Max replicas:\t{spec.get('maxReplicas', 0)}")
    behavior = spec.get("behavior")
    if behavior is not None:
        writer.write(0, "Behavior:")
        _direction_behavior(writer, "Scale Up", behavior.get("scaleUp"))
        _direction_behavior(writer, "Scale Down", behavior.get("scaleDown"))
    writer.write(0, f"{target.get('kind', '')} pods:\t{status.get('currentReplicas', 0)} current / "
                    f"{status.get('desiredReplicas', 0)} desired")
    if status.get("conditions"):
        writer.write(0, "Conditions:")
        writer.write(1, "Type\tStatus\tReason\tMessage")
        writer.write(1, "----\t------\t------\t-------")
        for condition in status["conditions"]:
            writer.write(1, f"{condition.get('type', '')}\t{condition.get('status', '')}\t"
                            f"{condition.get('reason', '')}\t{condition.get('message', '')}")
    describe_events(writer, events_about(context, autoscaler), now)
    return writer.render()


def describe_pod_disruption_budget(context: Context, budget: dict, now: float) -> str:
    metadata, spec, status = budget["metadata"], budget.get("spec") or {}, budget.get("status") or {}
    writer = DescribeWriter()
    writer.write(0, f"Name:\t{metadata['name']}")
    writer.write(0, f"Namespace:\t{metadata.get('namespace', '')}")
    if spec.get("minAvailable") is not None:
        writer.write(0, f"Min available:\t{spec['minAvailable']}")
    elif spec.get("maxUnavailable") is not None:
        writer.write(0, f"Max unavailable:\t{spec['maxUnavailable']}")
    selector = spec.get("selector")
    writer.write(0, f"Selector:\t{tables.format_label_selector(selector) if selector is not None else '<unset>'}")
    writer.write(0, "Status:")
    writer.write(2, f"Allowed disruptions:\t{status.get('disruptionsAllowed', 0)}")
    writer.write(2, f"Current:\t{status.get('currentHealthy', 0)}")
    writer.write(2, f"Desired:\t{status.get('desiredHealthy', 0)}")
    writer.write(2, f"Total:\t{status.get('expectedPods', 0)}")
    describe_events(writer, events_about(context, budget), now)
    return writer.render()


def describe_priority_class(context: Context, priority_class: dict, now: float) -> str:
    metadata = priority_class["metadata"]
    writer = DescribeWriter()
    writer.write(0, f"Name:\t{metadata['name']}")
    writer.write(0, f"Value:\t{priority_class.get('value', 0)}")
    writer.write(0, f"GlobalDefault:\t{'true' if priority_class.get('globalDefault') else 'false'}")
    writer.write(0, f"PreemptionPolicy:\t{priority_class.get('preemptionPolicy', 'PreemptLowerPriority')}")
    writer.write(0, f"Description:\t{priority_class.get('description', '')}")
    writer.write(0, f"Annotations:\t{format_labels(metadata.get('annotations'))}")
    describe_events(writer, events_about(context, priority_class), now)
    return writer.render()


# -- kubectl's generic describer --------------------------------------------------------------

_ACRONYMS = ("API", "URL", "UID", "GUID")
_CHARACTER_RUNS = re.compile(r"[a-z]+|[A-Z]+|[0-9]+|[^a-zA-Z0-9]+")


def _camel_case_parts(field: str) -> list[str]:
    """fatih/camelcase's Split: runs of one character class; an upper run followed by lower case
    gives its last letter to the next word (`HTMLParser` -> `HTML`, `Parser`)."""
    runs = _CHARACTER_RUNS.findall(field)
    for index in range(len(runs) - 1):
        if runs[index].isupper() and runs[index + 1].islower():
            runs[index], runs[index + 1] = runs[index][:-1], runs[index][-1] + runs[index + 1]
    return [run for run in runs if run]


def smart_label(field: str) -> str:
    """kubectl's smartLabelFor: `holderIdentity` -> `Holder Identity`, `podCIDRs` -> `Pod CIDRs`."""
    if any(not (character.isalpha() or character == "-") for character in field):
        return field
    parts = _camel_case_parts(field)
    merged: list[str] = []
    index = 0
    while index < len(parts):
        part = parts[index]
        following = parts[index + 1] if index + 1 < len(parts) else ""
        if len(part) >= 2 and part.isupper() and following[:1].isupper():
            merged.append(part + following)
            index += 2
            continue
        merged.append(part)
        index += 1
    words = []
    for part in merged:
        if part == "_":
            continue
        if part.upper() in _ACRONYMS:
            part = part.upper()
        elif part.islower():
            part = part[:1].upper() + part[1:]
        words.append(part)
    return " ".join(words)


def _go_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "<nil>" if value is None else str(value)


def _unstructured(writer: DescribeWriter, level: int, content: dict, prefix: str, skip: tuple[str, ...]) -> None:
    """printUnstructuredContent: fields sorted; maps and lists open a section one level deeper."""
    for field in sorted(content):
        value, path = content[field], f"{prefix}.{field}"
        if path in skip:
            continue
        if isinstance(value, dict):
            writer.write(level, f"{smart_label(field)}:")
            _unstructured(writer, level + 1, value, path, skip)
        elif isinstance(value, list):
            writer.write(level, f"{smart_label(field)}:")
            for child in value:
                if isinstance(child, dict):
                    _unstructured(writer, level + 1, child, path, skip)
                else:
                    writer.write(level + 1, _go_value(child))
        else:
            writer.write(level, f"{smart_label(field)}:\t{_go_value(value)}")


GENERIC_SKIPPED = (".metadata.managedFields", ".metadata.name", ".metadata.namespace", ".metadata.labels",
                   ".metadata.annotations")


def describe_generic(context: Context, obj: dict, now: float) -> str:
    """kubectl's genericDescriber, for the kinds without a describer of their own."""
    metadata = obj["metadata"]
    writer = DescribeWriter()
    writer.write(0, f"Name:\t{metadata['name']}")
    writer.write(0, f"Namespace:\t{metadata.get('namespace', '')}")
    writer.labels(0, "Labels", metadata.get("labels"))
    writer.annotations(0, "Annotations", metadata.get("annotations"))
    _unstructured(writer, 0, obj, "", GENERIC_SKIPPED)
    describe_events(writer, events_about(context, obj), now)
    return writer.render()


DESCRIBERS = {
    "statefulsets": describe_stateful_set,
    "horizontalpodautoscalers": describe_horizontal_pod_autoscaler,
    "poddisruptionbudgets": describe_pod_disruption_budget,
    "priorityclasses": describe_priority_class,
}
