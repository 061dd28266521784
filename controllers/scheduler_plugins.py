"""kube-scheduler's default filter and score plugins, over one scheduling cycle.

A `Cycle` is one attempt to place one pod: the snapshot of every node (`NodeInfo`), the
namespaces' labels, and what the PreFilter steps compute once for the pod (its affinity terms,
the matching pods per topology domain). `filter_node` runs the filters in kube-scheduler's order
and stops at the first that fails, as the framework does, so a node is reported under one reason
(NodeResourcesFit excepted, which lists every resource short): NodeUnschedulable, NodeName,
TaintToleration, NodeAffinity (with nodeSelector), NodeResourcesFit, PodTopologySpread,
InterPodAffinity. `score_nodes` adds the scores with the default profile's weights:
TaintToleration 3, NodeAffinity 2, PodTopologySpread 2, InterPodAffinity 2,
NodeResourcesFit (LeastAllocated) 1, NodeResourcesBalancedAllocation 1.

Reasons and codes are kube-scheduler's (k/k pkg/scheduler/framework/plugins/*): an
UnschedulableAndUnresolvable node is one preemption cannot help.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from minikube_py.api.core import Pod
from minikube_py.api.errors import BadRequest
from minikube_py.api.placement import (
    LABEL_HOSTNAME,
    LABEL_ZONE,
    NO_EXECUTE,
    NO_SCHEDULE,
    PREFER_NO_SCHEDULE,
    TAINT_UNSCHEDULABLE,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    PodAffinityTerm,
    Taint,
    TopologySpreadConstraint,
    tolerated,
)
from minikube_py.api.selectors import IN, NOT_IN, Requirement, Selector
from controllers.scheduler_framework import (
    FIT,
    MAX_NODE_SCORE,
    NodeInfo,
    PodGroup,
    ResourceAmounts,
    Status,
    place,
    pod_requests,
    unresolvable,
    unschedulable,
)

REASON_UNSCHEDULABLE = "node(s) were unschedulable"
REASON_NODE_NAME = "node(s) didn't match the requested node name"
REASON_TAINT = "node(s) had untolerated taint {{{key}: {value}}}"
REASON_SELECTOR = "node(s) didn't match Pod's node affinity/selector"
REASON_TOO_MANY_PODS = "Too many pods"
REASON_INSUFFICIENT = "Insufficient {resource}"
REASON_SPREAD = "node(s) didn't match pod topology spread constraints"
REASON_SPREAD_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"
REASON_AFFINITY = "node(s) didn't match pod affinity rules"
REASON_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
REASON_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"

# Score plugin weights of the default profile (k/k pkg/scheduler/apis/config/v1/default_plugins.go).
WEIGHT_TAINTS, WEIGHT_NODE_AFFINITY, WEIGHT_SPREAD, WEIGHT_POD_AFFINITY = 3, 2, 2, 2
WEIGHT_LEAST_ALLOCATED, WEIGHT_BALANCED = 1, 1
# Existing pods' required affinity terms that the incoming pod matches count this much in scoring.
HARD_POD_AFFINITY_WEIGHT = 1
# The default constraints used when a pod has none (k/k podtopologyspread systemDefaultConstraints).
DEFAULT_SPREAD = (
    TopologySpreadConstraint(max_skew=3, topology_key=LABEL_HOSTNAME, when_unsatisfiable="ScheduleAnyway"),
    TopologySpreadConstraint(max_skew=5, topology_key=LABEL_ZONE, when_unsatisfiable="ScheduleAnyway"),
)


# --- node selection ---------------------------------------------------------------------------


def _node_requirement_matches(requirement: NodeSelectorRequirement, labels: dict[str, str]) -> bool:
    present = requirement.key in labels
    values = requirement.values or []
    operator = requirement.operator
    if operator == "In":
        return present and labels[requirement.key] in values
    if operator == "NotIn":
        return not present or labels[requirement.key] not in values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt") and present and len(values) == 1:
        try:
            have, bound = int(labels[requirement.key]), int(values[0])
        except ValueError:
            return False
        return have > bound if operator == "Gt" else have < bound
    return False


def node_term_matches(term: NodeSelectorTerm, node: NodeInfo) -> bool:
    """A term matches when all its requirements do; a term with none matches nothing."""
    if not term.match_expressions and not term.match_fields:
        return False
    labels = node.labels
    fields = {"metadata.name": node.name}
    return (all(_node_requirement_matches(r, labels) for r in term.match_expressions or [])
            and all(_node_requirement_matches(r, fields) for r in term.match_fields or []))


def matches_node_selector_and_affinity(pod: Pod, node: NodeInfo) -> bool:
    labels = node.labels
    if any(labels.get(key) != value for key, value in (pod.spec.node_selector or {}).items()):
        return False
    affinity = pod.spec.affinity
    required = affinity.node_affinity.required_during_scheduling_ignored_during_execution \
        if affinity is not None and affinity.node_affinity is not None else None
    if required is None:
        return True
    return any(node_term_matches(term, node) for term in required.node_selector_terms)


def untolerated_taint(pod: Pod, taints: list[Taint], effects: tuple[str, ...] = (NO_SCHEDULE, NO_EXECUTE)) -> Taint | None:
    for taint in taints:
        if taint.effect in effects and not tolerated(pod.spec.tolerations, taint):
            return taint
    return None


def insufficient_resources(node: NodeInfo, requests: ResourceAmounts) -> list[str]:
    """NodeResourcesFit's reasons: the pod count first, then each requested resource that the
    node's allocatable cannot cover beside what its pods already request."""
    reasons = []
    allocatable = node.allocatable
    if len(node.pods) + 1 > allocatable.get("pods", 0):
        reasons.append(REASON_TOO_MANY_PODS)
    for resource, amount in sorted(requests.items()):
        if amount > 0 and resource != "pods" and amount > allocatable.get(resource, 0) - node.requested.get(resource, 0):
            reasons.append(REASON_INSUFFICIENT.format(resource=resource))
    return reasons


# --- pod affinity terms -----------------------------------------------------------------------


@dataclass(frozen=True)
class AffinityTerm:
    """A pod affinity term ready to match pods: its selector (with matchLabelKeys folded in),
    the namespaces it looks at, and its topology key and weight."""

    selector: Selector
    namespaces: frozenset[str]
    namespace_selector: Selector | None
    topology_key: str
    weight: int = 0

    def matches(self, pod: Pod, namespace_labels: dict[str, dict[str, str]]) -> bool:
        return self.matches_labels(pod.metadata.namespace or "default", pod.metadata.labels, namespace_labels)

    def matches_labels(self, namespace: str, labels: dict[str, str] | None,
                       namespace_labels: dict[str, dict[str, str]]) -> bool:
        if namespace not in self.namespaces and not (
                self.namespace_selector is not None and self.namespace_selector.matches(namespace_labels.get(namespace))):
            return False
        return self.selector.matches(labels)


def affinity_term(owner: Pod, term: PodAffinityTerm, weight: int = 0) -> AffinityTerm:
    try:
        selector = Selector.from_label_selector(term.label_selector)
    except BadRequest:
        selector = Selector.nothing()  # validation refuses these; an old stored pod matches nothing
    labels = owner.metadata.labels or {}
    extra = [Requirement(key, IN, (labels[key],)) for key in term.match_label_keys or [] if key in labels]
    extra += [Requirement(key, NOT_IN, (labels[key],)) for key in term.mismatch_label_keys or [] if key in labels]
    if extra and not selector.matches_nothing:
        selector = Selector(selector.requirements + tuple(extra))
    namespaces = frozenset(term.namespaces or ())
    if not namespaces and term.namespace_selector is None:
        namespaces = frozenset((owner.metadata.namespace or "default",))
    namespace_selector = Selector.from_label_selector(term.namespace_selector) if term.namespace_selector is not None else None
    return AffinityTerm(selector, namespaces, namespace_selector, term.topology_key, weight)


@dataclass
class PodAffinityTerms:
    required_affinity: list[AffinityTerm] = field(default_factory=list)
    required_anti_affinity: list[AffinityTerm] = field(default_factory=list)
    preferred_affinity: list[AffinityTerm] = field(default_factory=list)
    preferred_anti_affinity: list[AffinityTerm] = field(default_factory=list)

    @classmethod
    def of(cls, pod: Pod) -> PodAffinityTerms:
        terms = cls()
        affinity = pod.spec.affinity
        if affinity is None:
            return terms
        for source, required, preferred in (
                (affinity.pod_affinity, terms.required_affinity, terms.preferred_affinity),
                (affinity.pod_anti_affinity, terms.required_anti_affinity, terms.preferred_anti_affinity)):
            if source is None:
                continue
            required += [affinity_term(pod, term) for term in source.required_during_scheduling_ignored_during_execution or []]
            preferred += [affinity_term(pod, weighted.pod_affinity_term, weighted.weight)
                          for weighted in source.preferred_during_scheduling_ignored_during_execution or []]
        return terms


def terms_of(group: PodGroup) -> PodAffinityTerms:
    """A group of existing pods' compiled terms, computed once per group."""
    if not isinstance(group.affinity_terms, PodAffinityTerms):
        group.affinity_terms = PodAffinityTerms.of(group.pod)
    return group.affinity_terms


# --- one cycle --------------------------------------------------------------------------------


@dataclass
class SpreadConstraint:
    max_skew: int
    topology_key: str
    hard: bool
    min_domains: int
    selector: Selector
    honor_node_affinity: bool
    honor_taints: bool


def spread_constraints(pod: Pod, default_selector: Selector | None, hard: bool) -> list[SpreadConstraint]:
    """The pod's DoNotSchedule (hard) or ScheduleAnyway constraints; without any of its own, the
    default soft ones over the pods of its Services and controllers (`default_selector`)."""
    own = pod.spec.topology_spread_constraints or []
    if not own:
        if hard or default_selector is None:
            return []
        return [SpreadConstraint(c.max_skew, c.topology_key, False, 1, default_selector, True, False) for c in DEFAULT_SPREAD]
    constraints = []
    labels = pod.metadata.labels or {}
    for constraint in own:
        if (constraint.when_unsatisfiable == "DoNotSchedule") != hard:
            continue
        try:
            selector = Selector.from_label_selector(constraint.label_selector)
        except BadRequest:
            selector = Selector.nothing()
        extra = tuple(Requirement(key, IN, (labels[key],)) for key in constraint.match_label_keys or [] if key in labels)
        if extra and not selector.matches_nothing:
            selector = Selector(selector.requirements + extra)
        constraints.append(SpreadConstraint(
            constraint.max_skew, constraint.topology_key, hard, constraint.min_domains or 1, selector,
            constraint.node_affinity_policy != "Ignore", constraint.node_taints_policy == "Honor"))
    return constraints


class Cycle:
    """One attempt to place `pod` on the nodes of `nodes`; PreFilter results are computed on
    first use and kept for every node of the cycle."""

    def __init__(self, pod: Pod, nodes: list[NodeInfo], namespace_labels: dict[str, dict[str, str]],
                 default_spread_selector: Selector | None = None):
        self.pod = pod
        self.nodes = nodes
        self.namespace_labels = namespace_labels
        self.default_spread_selector = default_spread_selector
        self.requests = pod_requests(pod)
        self.score_requests = pod_requests(pod, non_zero=True)
        self._node_affinity: dict[str, bool] = {}

    def fits_node_affinity(self, node: NodeInfo) -> bool:
        """nodeSelector and required node affinity on `node`, worked out once per node and cycle
        (the NodeAffinity filter and every topology spread constraint ask)."""
        fits = self._node_affinity.get(node.name)
        if fits is None:
            fits = self._node_affinity[node.name] = matches_node_selector_and_affinity(self.pod, node)
        return fits

    # -- PreFilter -----------------------------------------------------------------------------

    @cached_property
    def terms(self) -> PodAffinityTerms:
        return PodAffinityTerms.of(self.pod)

    def _same_namespace_labels(self, node: NodeInfo) -> Iterator[tuple[dict[str, str], int]]:
        """(labels, how many pods) of the node's pods in this pod's namespace, not being deleted."""
        namespace = self.pod.metadata.namespace or "default"
        for group, count in node.groups.values():
            if group.namespace == namespace and not group.terminating:
                yield group.labels, count

    @cached_property
    def groups_with_affinity(self) -> list[tuple[NodeInfo, PodGroup, int]]:
        return [(node, group, count) for node in self.nodes for group, count in node.groups.values()
                if group.has_affinity]

    @cached_property
    def existing_anti_affinity(self) -> set[tuple[str, str]]:
        """Topology pairs (key, value) where an existing pod's required anti-affinity matches
        this pod: no node in those domains may take it."""
        pairs: set[tuple[str, str]] = set()
        for node, group, _ in self.groups_with_affinity:
            for term in terms_of(group).required_anti_affinity:
                value = node.labels.get(term.topology_key)
                if value is not None and term.matches(self.pod, self.namespace_labels):
                    pairs.add((term.topology_key, value))
        return pairs

    @cached_property
    def affinity_counts(self) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
        """For this pod's required affinity and anti-affinity terms: how many existing pods
        match them, per topology pair of the node they run on."""
        affinity: dict[tuple[str, str], int] = {}
        anti: dict[tuple[str, str], int] = {}
        terms = self.terms
        if not terms.required_affinity and not terms.required_anti_affinity:
            return affinity, anti
        for node in self.nodes:
            labels = node.labels
            for group, count in node.groups.values():
                for term_list, counts in ((terms.required_affinity, affinity), (terms.required_anti_affinity, anti)):
                    for term in term_list:
                        value = labels.get(term.topology_key)
                        if value is not None and term.matches_labels(group.namespace, group.labels, self.namespace_labels):
                            counts[(term.topology_key, value)] = counts.get((term.topology_key, value), 0) + count
        return affinity, anti

    def _counts_node(self, constraint: SpreadConstraint, node: NodeInfo) -> bool:
        if constraint.topology_key not in node.labels:
            return False
        if constraint.honor_node_affinity and not self.fits_node_affinity(node):
            return False
        return not (constraint.honor_taints and untolerated_taint(self.pod, node.taints) is not None)

    def _spread_counts(self, constraints: list[SpreadConstraint]) -> list[dict[str, int]]:
        """Per constraint: matching pods per domain value, over the nodes that count."""
        result = []
        for constraint in constraints:
            counts: dict[str, int] = {}
            for node in self.nodes:
                if not self._counts_node(constraint, node):
                    continue
                value = node.labels[constraint.topology_key]
                matched = sum(count for labels, count in self._same_namespace_labels(node) if constraint.selector.matches(labels))
                counts[value] = counts.get(value, 0) + matched
            result.append(counts)
        return result

    @cached_property
    def hard_spread(self) -> tuple[list[SpreadConstraint], list[dict[str, int]]]:
        constraints = spread_constraints(self.pod, None, hard=True)
        return constraints, self._spread_counts(constraints)

    @cached_property
    def soft_spread(self) -> tuple[list[SpreadConstraint], list[dict[str, int]]]:
        constraints = spread_constraints(self.pod, self.default_spread_selector, hard=False)
        if not (self.pod.spec.topology_spread_constraints or []):
            # The default constraints only count keys every node has (a cluster without zones
            # spreads by hostname alone).
            constraints = [c for c in constraints if all(c.topology_key in node.labels for node in self.nodes)]
        return constraints, self._spread_counts(constraints)

    # -- Filter --------------------------------------------------------------------------------

    def filter_node(self, node: NodeInfo, extra_pods: Sequence[Pod] = ()) -> Status:
        """The filters in kube-scheduler's order; the first failure is the node's status.
        `extra_pods` (nominated pods of higher priority) count against the node's resources."""
        pod = self.pod
        if node.node.spec.unschedulable and not tolerated(
                pod.spec.tolerations, Taint(key=TAINT_UNSCHEDULABLE, effect=NO_SCHEDULE)):
            return unresolvable(REASON_UNSCHEDULABLE)
        if pod.spec.node_name and pod.spec.node_name != node.name:
            return unresolvable(REASON_NODE_NAME)
        taint = untolerated_taint(pod, node.taints)
        if taint is not None:
            return unresolvable(REASON_TAINT.format(key=taint.key, value=taint.value or ""))
        if not self.fits_node_affinity(node):
            return unresolvable(REASON_SELECTOR)
        target = node
        for extra in extra_pods:
            target = target.with_pod(place(extra, node.name))
        reasons = insufficient_resources(target, self.requests)
        if reasons:
            return unschedulable(*reasons)
        status = self.filter_spread(node)
        if not status.ok:
            return status
        return self.filter_pod_affinity(node)

    def filter_spread(self, node: NodeInfo) -> Status:
        """PodTopologySpread: placing the pod here must keep each hard constraint's skew (this
        domain's matching pods + 1, minus the least loaded domain's) within maxSkew. E.g. zones
        a: 2, b: 0 with maxSkew 1: a gives 2 + 1 - 0 = 3 > 1 (refused), b gives 0 + 1 - 0 = 1."""
        constraints, counts = self.hard_spread
        labels = self.pod.metadata.labels or {}
        for constraint, domain_counts in zip(constraints, counts, strict=True):
            value = node.labels.get(constraint.topology_key)
            if value is None:
                return unresolvable(REASON_SPREAD_LABEL)
            self_match = 1 if constraint.selector.matches(labels) else 0
            lowest = min(domain_counts.values()) if domain_counts else 0
            if len(domain_counts) < constraint.min_domains:
                lowest = 0
            if domain_counts.get(value, 0) + self_match - lowest > constraint.max_skew:
                return unschedulable(REASON_SPREAD)
        return FIT

    def filter_pod_affinity(self, node: NodeInfo) -> Status:
        terms = self.terms
        labels = node.labels
        affinity, anti = self.affinity_counts
        if terms.required_affinity:
            satisfied = all(labels.get(t.topology_key) is not None and affinity.get((t.topology_key, labels[t.topology_key]), 0) > 0
                            for t in terms.required_affinity)
            if not satisfied:
                # The first pod of a group that matches its own terms may go anywhere the
                # topology keys exist (no pod anywhere matches yet).
                alone = not affinity and all(t.matches(self.pod, self.namespace_labels) for t in terms.required_affinity)
                if not (alone and all(t.topology_key in labels for t in terms.required_affinity)):
                    return unresolvable(REASON_AFFINITY)
        for term in terms.required_anti_affinity:
            value = labels.get(term.topology_key)
            if value is not None and anti.get((term.topology_key, value), 0) > 0:
                return unschedulable(REASON_ANTI_AFFINITY)
        for key, value in self.existing_anti_affinity:
            if labels.get(key) == value:
                return unschedulable(REASON_EXISTING_ANTI_AFFINITY)
        return FIT

    # -- Score ---------------------------------------------------------------------------------

    def score_nodes(self, nodes: list[NodeInfo]) -> dict[str, float]:
        """Each feasible node's weighted total of the default score plugins."""
        totals = {node.name: 0.0 for node in nodes}
        for weight, scores in (
                (WEIGHT_TAINTS, self._taint_scores(nodes)),
                (WEIGHT_NODE_AFFINITY, self._node_affinity_scores(nodes)),
                (WEIGHT_SPREAD, self._spread_scores(nodes)),
                (WEIGHT_POD_AFFINITY, self._pod_affinity_scores(nodes)),
                (WEIGHT_LEAST_ALLOCATED, self._least_allocated_scores(nodes)),
                (WEIGHT_BALANCED, self._balanced_scores(nodes))):
            for name, score in scores.items():
                totals[name] += weight * score
        return totals

    def _taint_scores(self, nodes: list[NodeInfo]) -> dict[str, float]:
        """Fewer untolerated PreferNoSchedule taints score higher (normalized, reversed)."""
        tolerations = [t for t in self.pod.spec.tolerations or [] if t.effect in (None, "", PREFER_NO_SCHEDULE)]
        counts = {node.name: sum(1 for taint in node.taints if taint.effect == PREFER_NO_SCHEDULE
                                 and not any(t.tolerates(taint) for t in tolerations)) for node in nodes}
        highest = max(counts.values(), default=0)
        return {name: MAX_NODE_SCORE - (count * MAX_NODE_SCORE / highest if highest else 0) for name, count in counts.items()}

    def _node_affinity_scores(self, nodes: list[NodeInfo]) -> dict[str, float]:
        affinity = self.pod.spec.affinity
        preferred = affinity.node_affinity.preferred_during_scheduling_ignored_during_execution \
            if affinity is not None and affinity.node_affinity is not None else None
        if not preferred:
            return {}
        raw = {node.name: sum(term.weight for term in preferred if node_term_matches(term.preference, node)) for node in nodes}
        highest = max(raw.values(), default=0)
        return {name: score * MAX_NODE_SCORE / highest if highest else 0 for name, score in raw.items()}

    def _spread_scores(self, nodes: list[NodeInfo]) -> dict[str, float]:
        """PodTopologySpread's score: fewer matching pods in the node's domains is better, each
        constraint weighted by log(domains + 2); normalized so the emptiest node scores 100."""
        constraints, counts = self.soft_spread
        if not constraints:
            return {}
        raw: dict[str, float] = {}
        for node in nodes:
            if not all(c.topology_key in node.labels for c in constraints):
                continue
            total = 0.0
            for constraint, domain_counts in zip(constraints, counts, strict=True):
                value = node.labels[constraint.topology_key]
                total += domain_counts.get(value, 0) * math.log(len(domain_counts) + 2) + (constraint.max_skew - 1)
            raw[node.name] = total
        if not raw:
            return {}
        highest, lowest = max(raw.values()), min(raw.values())
        if highest == 0:
            return {name: MAX_NODE_SCORE for name in raw}
        return {name: MAX_NODE_SCORE * (highest + lowest - score) / highest for name, score in raw.items()}

    def _pod_affinity_scores(self, nodes: list[NodeInfo]) -> dict[str, float]:
        """InterPodAffinity's score: per topology domain, + weight for each pod the incoming pod's
        preferred affinity matches (- for anti-affinity), and the same for existing pods' preferred
        terms (and required affinity, weight 1) that the incoming pod matches; min-max normalized."""
        terms = self.terms
        incoming_terms = [(t, 1) for t in terms.preferred_affinity] + [(t, -1) for t in terms.preferred_anti_affinity]
        if not incoming_terms and not self.groups_with_affinity:
            return {}
        pair_scores: dict[tuple[str, str], float] = {}

        def add(key: str, labels: dict[str, str], amount: float) -> None:
            value = labels.get(key)
            if value is not None:
                pair_scores[(key, value)] = pair_scores.get((key, value), 0) + amount

        if incoming_terms:
            for node in self.nodes:
                for group, count in node.groups.values():
                    for term, sign in incoming_terms:
                        if term.matches_labels(group.namespace, group.labels, self.namespace_labels):
                            add(term.topology_key, node.labels, sign * term.weight * count)
        for holder, group, count in self.groups_with_affinity:
            existing = terms_of(group)
            for term_list, amount in ((existing.preferred_affinity, None), (existing.preferred_anti_affinity, -1),
                                      (existing.required_affinity, HARD_POD_AFFINITY_WEIGHT)):
                for term in term_list:
                    if term.matches(self.pod, self.namespace_labels):
                        weight = term.weight if amount is None else (amount * term.weight if amount == -1 else amount)
                        add(term.topology_key, holder.labels, weight * count)
        if not pair_scores:
            return {}
        raw = {node.name: sum(score for (key, value), score in pair_scores.items() if node.labels.get(key) == value)
               for node in nodes}
        highest, lowest = max(raw.values()), min(raw.values())
        spread = highest - lowest
        return {name: MAX_NODE_SCORE * (score - lowest) / spread if spread > 0 else 0 for name, score in raw.items()}

    def _fractions(self, node: NodeInfo) -> list[float]:
        fractions = []
        for resource in ("cpu", "memory"):
            capacity = node.allocatable.get(resource, 0)
            requested = node.score_requested.get(resource, 0) + self.score_requests.get(resource, 0)
            fractions.append(min(requested / capacity, 1.0) if capacity > 0 else 1.0)
        return fractions

    def _least_allocated_scores(self, nodes: list[NodeInfo]) -> dict[str, float]:
        """(allocatable - requested) / allocatable for cpu and memory, averaged, times 100."""
        return {node.name: sum((1 - f) * MAX_NODE_SCORE for f in self._fractions(node)) / 2 for node in nodes}

    def _balanced_scores(self, nodes: list[NodeInfo]) -> dict[str, float]:
        """(1 - standard deviation of the cpu and memory fractions) times 100."""
        scores = {}
        for node in nodes:
            cpu, memory = self._fractions(node)
            deviation = abs(cpu - memory) / 2
            scores[node.name] = (1 - deviation) * MAX_NODE_SCORE
        return scores
