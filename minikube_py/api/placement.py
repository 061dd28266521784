"""Where a pod may run: node and pod affinity, tolerations, taints, topology spread constraints
and scheduling gates, as the `v1` types inside PodSpec and NodeSpec.

These are the fields kube-scheduler reads (docs: "Assigning Pods to Nodes", "Taints and
Tolerations", "Pod Topology Spread Constraints", "Pod Scheduling Readiness"). They are a module of
their own because both the Pod (spec.affinity, spec.tolerations, ...) and the Node
(spec.taints) carry them, and the scheduler, the taint eviction controller and validation all read
them; `core.py` only names them in its specs.
"""

from __future__ import annotations

from pydantic import Field

from minikube_py.api.meta import Int32, Int64, LabelSelector, WireModel

# Taint effects (k/k core/v1 types.go TaintEffect).
NO_SCHEDULE = "NoSchedule"
PREFER_NO_SCHEDULE = "PreferNoSchedule"
NO_EXECUTE = "NoExecute"
TAINT_EFFECTS = (NO_SCHEDULE, PREFER_NO_SCHEDULE, NO_EXECUTE)
# The taints the node lifecycle controller puts on a node that stopped reporting or is not
# Ready (k/k core/v1 well_known_taints.go), and the unschedulable node's.
TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
# Well-known labels the scheduler's defaults use.
LABEL_HOSTNAME = "kubernetes.io/hostname"
LABEL_ZONE = "topology.kubernetes.io/zone"


class NodeSelectorRequirement(WireModel):
    key: str
    operator: str
    values: list[str] | None = None


class NodeSelectorTerm(WireModel):
    match_expressions: list[NodeSelectorRequirement] | None = None
    match_fields: list[NodeSelectorRequirement] | None = None


class NodeSelector(WireModel):
    node_selector_terms: list[NodeSelectorTerm] = Field(default_factory=list)


class PreferredSchedulingTerm(WireModel):
    weight: Int32
    preference: NodeSelectorTerm = Field(default_factory=NodeSelectorTerm)


class NodeAffinity(WireModel):
    required_during_scheduling_ignored_during_execution: NodeSelector | None = None
    preferred_during_scheduling_ignored_during_execution: list[PreferredSchedulingTerm] | None = None


class PodAffinityTerm(WireModel):
    label_selector: LabelSelector | None = None
    namespaces: list[str] | None = None
    topology_key: str = ""
    namespace_selector: LabelSelector | None = None
    match_label_keys: list[str] | None = None
    mismatch_label_keys: list[str] | None = None


class WeightedPodAffinityTerm(WireModel):
    weight: Int32
    pod_affinity_term: PodAffinityTerm = Field(default_factory=PodAffinityTerm)


class PodAffinity(WireModel):
    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] | None = None
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] | None = None


class PodAntiAffinity(WireModel):
    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] | None = None
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] | None = None


class Affinity(WireModel):
    node_affinity: NodeAffinity | None = None
    pod_affinity: PodAffinity | None = None
    pod_anti_affinity: PodAntiAffinity | None = None


class Toleration(WireModel):
    key: str | None = None
    operator: str | None = None
    value: str | None = None
    effect: str | None = None
    toleration_seconds: Int64 | None = None

    def tolerates(self, taint: Taint) -> bool:
        """ToleratesTaint (k/k core/v1 toleration.go): same effect (or any, when the toleration
        names none), same key (or any, when empty with Exists), and for Equal the same value."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        if self.operator in (None, "", "Equal"):
            return (self.value or "") == (taint.value or "")
        return False


class Taint(WireModel):
    key: str
    effect: str
    value: str | None = None
    time_added: str | None = None


class TopologySpreadConstraint(WireModel):
    max_skew: Int32
    topology_key: str
    when_unsatisfiable: str
    label_selector: LabelSelector | None = None
    min_domains: Int32 | None = None
    node_affinity_policy: str | None = None
    node_taints_policy: str | None = None
    match_label_keys: list[str] | None = None


class PodSchedulingGate(WireModel):
    name: str


def tolerated(tolerations: list[Toleration] | None, taint: Taint) -> bool:
    return any(toleration.tolerates(taint) for toleration in tolerations or [])
