"""The `get hpa` row: REFERENCE, TARGETS and the replica bounds as kube-apiserver's printer shows them.

Kept apart from the HorizontalPodAutoscaler models (`api.autoscaling`) so that printing a table,
in the API server or in the CLI, needs no pydantic model: the cells are computed on wire dicts.
"""

from __future__ import annotations

from typing import Any

MAX_TARGETS_SHOWN = 2  # kubectl's printer shows two metrics, then "+ N more..."


def format_targets(hpa: dict[str, Any]) -> str:
    """TARGETS as kube-apiserver's printer writes it: `cpu: 45%/50%`, `memory: 12Mi/100Mi`,
    `cpu: <unknown>/50%` before the first measurement."""
    spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
    current = {(metric.get("resource") or {}).get("name"): (metric.get("resource") or {}).get("current") or {}
               for metric in status.get("currentMetrics") or [] if metric.get("type") == "Resource"}
    cells = []
    for metric in spec.get("metrics") or []:
        resource = metric.get("resource") or {}
        name, target = resource.get("name", ""), resource.get("target") or {}
        now = current.get(name) or {}
        if target.get("type") == "Utilization":
            shown = f"{now['averageUtilization']}%" if now.get("averageUtilization") is not None else "<unknown>"
            cells.append(f"{name}: {shown}/{target.get('averageUtilization')}%")
        else:
            shown = now.get("averageValue") or "<unknown>"
            cells.append(f"{name}: {shown}/{target.get('averageValue')}")
    if not cells:
        return "<none>"
    if len(cells) > MAX_TARGETS_SHOWN:
        return ", ".join(cells[:MAX_TARGETS_SHOWN]) + f" + {len(cells) - MAX_TARGETS_SHOWN} more..."
    return ", ".join(cells)


def hpa_row_cells(hpa: dict[str, Any]) -> list[Any]:
    """REFERENCE, TARGETS, MINPODS, MAXPODS, REPLICAS (between NAME and AGE)."""
    spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
    target = spec.get("scaleTargetRef") or {}
    minimum = spec.get("minReplicas")
    return [f"{target.get('kind', '')}/{target.get('name', '')}", format_targets(hpa),
            "<unset>" if minimum is None else minimum, spec.get("maxReplicas", 0), status.get("currentReplicas", 0)]
