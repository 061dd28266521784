"""DefaultPreemption: when no node fits a pod, find one where removing lower-priority pods would.

kube-scheduler's PostFilter step (k/k pkg/scheduler/framework/preemption, plugins/defaultpreemption):
1. A pod with `preemptionPolicy: Never` does not preempt; nor does one whose nominated node
   already has a lower-priority pod terminating for it (it waits for that room).
2. Only nodes that failed a filter preemption can fix (Unschedulable, not
   UnschedulableAndUnresolvable) are candidates; the others are "Preemption is not helpful for
   scheduling".
3. On each candidate, every pod of lower priority is taken away; if the pod still does not fit,
   the node is out. Otherwise the victims are given back one by one, most important first (higher
   priority, then older), those whose PodDisruptionBudget forbids a disruption first, keeping
   each one the pod can live beside; what cannot be given back are the victims.
4. The node chosen has the fewest PDB violations, then the lowest highest-victim priority, then
   the lowest sum of priorities, then the fewest victims, then the newest victims, then the first.
The caller then nominates the pod for that node, marks each victim `DisruptionTarget`
(PreemptionByScheduler) and deletes it gracefully.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from minikube_py.api.core import Pod
from minikube_py.api.policy import PodDisruptionBudget
from minikube_py.api.selectors import Selector
from minikube_py.api.times import parse_time
from controllers.scheduler_framework import UNSCHEDULABLE, NodeInfo, Status, pod_priority, unresolvable
from controllers.scheduler_plugins import Cycle

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
NEVER_PREEMPTS = "not eligible due to preemptionPolicy=Never."
WAITS_FOR_TERMINATING = "not eligible due to a terminating pod on the nominated node."


@dataclass
class Candidate:
    node: NodeInfo
    victims: list[Pod] = field(default_factory=list)
    pdb_violations: int = 0


@dataclass
class PreemptionResult:
    """Either a candidate to act on, or the message for FailedScheduling after `preemption: `."""

    candidate: Candidate | None
    message: str


def _start_time(pod: Pod) -> float:
    text = pod.status.start_time or pod.metadata.creation_timestamp
    try:
        return parse_time(text) if text else 0.0
    except ValueError:
        return 0.0


def _importance(pod: Pod) -> tuple[int, float]:
    """MoreImportantPod: higher priority first, then the one that started earlier."""
    return (-pod_priority(pod), _start_time(pod))


class DisruptionBudgets:
    """How many more disruptions each PDB of the cluster allows, as preemption spends them."""

    def __init__(self, budgets: list[PodDisruptionBudget]):
        # A budget without a selector, or with the empty one, protects no pod here (as in Kubernetes).
        self._budgets = [(pdb, Selector.from_label_selector(pdb.spec.selector)) for pdb in budgets
                         if pdb.spec.selector is not None]
        self._budgets = [(pdb, selector) for pdb, selector in self._budgets if not selector.is_empty()]

    def violating(self, victims: list[Pod]) -> tuple[list[Pod], list[Pod]]:
        """Split victims into those whose eviction would break a budget and the rest
        (filterPodsWithPDBViolation), spending each budget's allowance in order."""
        allowed = {id(pdb): pdb.status.disruptions_allowed for pdb, _ in self._budgets}
        breaking: list[Pod] = []
        fine: list[Pod] = []
        for pod in victims:
            violates = False
            for pdb, selector in self._budgets:
                if pdb.metadata.namespace != pod.metadata.namespace or not selector.matches(pod.metadata.labels):
                    continue
                if (pdb.status.disrupted_pods or {}).get(pod.metadata.name or ""):
                    continue  # already counted as disrupted
                allowed[id(pdb)] -= 1
                if allowed[id(pdb)] < 0:
                    violates = True
            (breaking if violates else fine).append(pod)
        return breaking, fine


def eligible(pod: Pod, nominated_node: NodeInfo | None) -> str | None:
    """Why the pod may not preempt (PodEligibleToPreemptOthers), or None."""
    if pod.spec.preemption_policy == "Never":
        return NEVER_PREEMPTS
    if nominated_node is not None:
        for placed in nominated_node.pods:
            other = placed.pod
            if other.metadata.deletion_timestamp is not None and pod_priority(other) < pod_priority(pod):
                return WAITS_FOR_TERMINATING
    return None


def select_victims(cycle: Cycle, node: NodeInfo, budgets: DisruptionBudgets,
                   filter_node: Callable[[NodeInfo], Status]) -> tuple[Candidate | None, Status]:
    """SelectVictimsOnNode: the fewest lower-priority pods whose removal lets the pod fit."""
    priority = pod_priority(cycle.pod)
    lower = [placed.pod for placed in node.pods if pod_priority(placed.pod) < priority]
    if not lower:
        return None, unresolvable(NO_VICTIMS)
    emptied = node.without({pod.metadata.uid or "" for pod in lower})
    status = filter_node(emptied)
    if not status.ok:
        return None, status
    lower.sort(key=_importance)
    breaking, fine = budgets.violating(lower)
    victims: list[Pod] = []
    violations = 0
    kept = emptied
    for group, counts_violation in ((breaking, True), (fine, False)):
        for pod in group:
            trial = kept.with_pod(next(p for p in node.pods if p.pod.metadata.uid == pod.metadata.uid))
            if filter_node(trial).ok:
                kept = trial
            else:
                victims.append(pod)
                violations += 1 if counts_violation else 0
    return Candidate(node, victims, violations), status


def pick_candidate(candidates: list[Candidate]) -> Candidate:
    """pickOneNodeForPreemption's order of preference."""
    def key(candidate: Candidate) -> tuple[int, int, int, int, float]:
        victims = candidate.victims
        highest = max((pod_priority(v) for v in victims), default=-(2**31))
        top = [v for v in victims if pod_priority(v) == highest]
        latest_start = max((_start_time(v) for v in top), default=0.0)
        return (candidate.pdb_violations, highest, sum(pod_priority(v) for v in victims), len(victims), -latest_start)
    return min(candidates, key=key)


def preempt(cycle: Cycle, statuses: dict[str, Status], budgets: DisruptionBudgets,
            filter_node: Callable[[NodeInfo], Status], nominated_node: NodeInfo | None) -> PreemptionResult:
    """Run DefaultPreemption for a pod no node fits; `statuses` are the filters' verdicts."""
    reason = eligible(cycle.pod, nominated_node)
    if reason is not None:
        return PreemptionResult(None, reason)
    node_statuses: dict[str, Status] = {}
    candidates = []
    for node in cycle.nodes:
        status = statuses.get(node.name)
        if status is None or status.code != UNSCHEDULABLE:
            node_statuses[node.name] = unresolvable(NOT_HELPFUL)
            continue
        candidate, why = select_victims(cycle, node, budgets, filter_node)
        if candidate is None:
            node_statuses[node.name] = why
        else:
            candidates.append(candidate)
    if candidates:
        return PreemptionResult(pick_candidate(candidates), "")
    return PreemptionResult(None, fit_error_message(len(cycle.nodes), node_statuses))


def fit_error_message(node_count: int, statuses: dict[str, Status]) -> str:
    """FitError.Error(): `0/3 nodes are available: 1 Insufficient cpu, 2 node(s) ...`, reasons
    counted over nodes and sorted as strings."""
    histogram: dict[str, int] = {}
    for status in statuses.values():
        for reason in status.reasons:
            histogram[reason] = histogram.get(reason, 0) + 1
    counted = sorted(f"{count} {reason}" for reason, count in histogram.items())
    message = f"0/{node_count} nodes are available:"
    if counted:
        message += f" {', '.join(counted)}."
    return message
