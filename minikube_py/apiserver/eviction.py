"""The pods `/eviction` subresource: a polite delete that a PodDisruptionBudget may refuse.

`kubectl drain` (and our `drain`) posts a `policy/v1` Eviction for each pod instead of deleting
it. As kube-apiserver does (k/k `pkg/registry/core/pod/storage/eviction.go`):
- a pod that has finished, or is already being deleted, is simply deleted;
- a pod no PDB selects is deleted;
- more than one PDB selecting the pod is an error (500), as the subresource does not support it;
- a PDB whose status is older than its spec (`observedGeneration`) refuses, 429;
- a healthy (Ready) pod needs `disruptionsAllowed > 0`: the budget's allowance goes down by one
  and the pod is recorded in `status.disruptedPods` (the disruption controller counts it as gone
  until it is) in one compare-and-swap, then the pod is deleted; else 429 `Cannot evict pod as it
  would violate the pod's disruption budget.` with the cause `The disruption budget NAME needs N
  healthy pods and has M currently`;
- an unhealthy pod may go if the budget is met (`IfHealthyBudget`) or always (`AlwaysAllow`).
The answer to an eviction that went through is a Status with `status: Success` and code 201.
"""

from __future__ import annotations

from typing import Any

from minikube_py.api import errors
from minikube_py.api.selectors import Selector

EVICTION_REFUSED = "Cannot evict pod as it would violate the pod's disruption budget."
# Attempts at the budget's compare-and-swap before giving up with a conflict.
BUDGET_UPDATE_ATTEMPTS = 5


def _ready(pod: dict[str, Any]) -> bool:
    return any(condition.get("type") == "Ready" and condition.get("status") == "True"
               for condition in (pod.get("status") or {}).get("conditions") or [])


def _budgets_for(registry, pod: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    labels = pod["metadata"].get("labels") or {}
    matching = []
    for pdb in registry.list("poddisruptionbudgets", namespace)["items"]:
        selector_data = (pdb.get("spec") or {}).get("selector")
        if selector_data is None:
            continue
        selector = Selector.from_label_selector(selector_data)
        if selector.matches(labels):
            matching.append(pdb)
    return matching


def _refused(pdb: dict[str, Any], message: str) -> errors.TooManyRequests:
    return errors.TooManyRequests(EVICTION_REFUSED, {"causes": [{"reason": "DisruptionBudget", "message": message}]})


def _delete_options(body: Any) -> tuple[int | None, dict[str, Any] | None]:
    options = body.get("deleteOptions") if isinstance(body, dict) else None
    if not isinstance(options, dict):
        return None, None
    grace = options.get("gracePeriodSeconds")
    if grace is not None and not isinstance(grace, int):
        raise errors.BadRequest("deleteOptions.gracePeriodSeconds must be an integer")
    preconditions = options.get("preconditions")
    return grace, preconditions if isinstance(preconditions, dict) else None


def evict(registry, namespace: str, name: str, body: Any, now: str) -> dict[str, Any]:
    """Carry out an Eviction of pod `namespace/name`; raises TooManyRequests when a PDB refuses."""
    if body is not None and not isinstance(body, dict):
        raise errors.BadRequest("the request body must be a policy/v1 Eviction")
    if isinstance(body, dict) and body.get("kind") not in (None, "Eviction"):
        raise errors.BadRequest(f"the request body must be a policy/v1 Eviction, not {body.get('kind')}")
    grace, preconditions = _delete_options(body)
    pod = registry.get("pods", namespace, name)
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed") or pod["metadata"].get("deletionTimestamp"):
        return _deleted(registry, namespace, name, grace, preconditions)
    budgets = _budgets_for(registry, pod, namespace)
    if len(budgets) > 1:
        raise errors.ApiError("This pod has more than one PodDisruptionBudget, which the eviction subresource "
                              "does not support.")
    if not budgets:
        return _deleted(registry, namespace, name, grace, preconditions)
    pdb = budgets[0]
    healthy = _ready(pod)
    for _ in range(BUDGET_UPDATE_ATTEMPTS):
        spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
        pdb_name = pdb["metadata"]["name"]
        if not healthy:
            met = status.get("currentHealthy", 0) >= status.get("desiredHealthy", 0)
            if spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow" or met:
                return _deleted(registry, namespace, name, grace, preconditions)
        if (status.get("observedGeneration") or 0) < (pdb["metadata"].get("generation") or 0):
            raise _refused(pdb, f"The disruption budget {pdb_name} is still being processed by the server.")
        if status.get("disruptionsAllowed", 0) <= 0:
            raise _refused(pdb, f"The disruption budget {pdb_name} needs {status.get('desiredHealthy', 0)} healthy "
                                f"pods and has {status.get('currentHealthy', 0)} currently")
        disrupted = dict(status.get("disruptedPods") or {})
        disrupted[name] = now
        new_status = {**status, "disruptionsAllowed": status["disruptionsAllowed"] - 1, "disruptedPods": disrupted}
        try:
            registry.replace_status("poddisruptionbudgets", namespace, pdb_name,
                                    {**pdb, "status": new_status})
        except errors.Conflict:
            pdb = registry.get("poddisruptionbudgets", namespace, pdb_name)
            continue
        return _deleted(registry, namespace, name, grace, preconditions)
    raise errors.Conflict(f"the PodDisruptionBudget of pod {name} kept changing; try the eviction again")


def _deleted(registry, namespace: str, name: str, grace: int | None, preconditions: dict[str, Any] | None) -> dict[str, Any]:
    registry.delete("pods", namespace, name, grace_period_seconds=grace, preconditions=preconditions)
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
