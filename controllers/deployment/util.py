"""The Deployment controller's pure arithmetic and bookkeeping (k/k `deployment/util/deployment_util.go`).

Everything here reads models and returns values: resolving maxSurge/maxUnavailable, the
pod-template hash, telling the new ReplicaSet from the old ones, revision and replica
annotations, the size of the next rolling step, proportional scaling shares, and the
Deployment's conditions. Nothing talks to the API, so the tricky parts are tested directly and
the controller modules (`sync`, `rolling`, `recreate`, `rollback`, `progress`) stay about
*when* to act rather than *how much*.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Sequence

from minikube_py.api.core import PodTemplateSpec
from minikube_py.api.apps import Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetCondition
from minikube_py.api.times import format_time, parse_time
from minikube_py.client.history import safe_encode_string as safe_encode_string
from minikube_py.client.deployments import (  # shared with kubectl-side rollout commands
    ANNOTATIONS_TO_SKIP as ANNOTATIONS_TO_SKIP,
    CHANGE_CAUSE_ANNOTATION as CHANGE_CAUSE_ANNOTATION,
    DESIRED_REPLICAS_ANNOTATION as DESIRED_REPLICAS_ANNOTATION,
    LAST_APPLIED_CONFIG_ANNOTATION as LAST_APPLIED_CONFIG_ANNOTATION,
    MAX_REPLICAS_ANNOTATION as MAX_REPLICAS_ANNOTATION,
    POD_TEMPLATE_HASH_LABEL as POD_TEMPLATE_HASH_LABEL,
    PROGRESSING as PROGRESSING,
    RESTARTED_AT_ANNOTATION as RESTARTED_AT_ANNOTATION,
    REVISION_ANNOTATION as REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION as REVISION_HISTORY_ANNOTATION,
    ROLLBACK_TO_ANNOTATION as ROLLBACK_TO_ANNOTATION,
    TIMED_OUT_REASON as TIMED_OUT_REASON,
    by_creation as by_creation,
    creation_order as creation_order,
    equal_ignore_hash as equal_ignore_hash,
    find_new_replica_set as find_new_replica_set,
    get_condition as get_condition,
    revision_of as revision_of,
    semantic_form as semantic_form,
    template_without_hash as template_without_hash,
    without_hash_label as without_hash_label,
)

# -- names Kubernetes fixes (the ones kubectl reads too are in client/deployments.py) -------------------------------------------------------------------

# The revision-history annotation is trimmed (oldest entries first) to stay within this.
MAX_REVISION_HISTORY_LENGTH_IN_CHARS = 2000

# progressDeadlineSeconds or revisionHistoryLimit set to MaxInt32 means "none".
MAX_INT32 = 2**31 - 1

ROLLING_UPDATE = "RollingUpdate"
RECREATE = "Recreate"

# Condition types and reasons (k/k deployment_util.go), quoted by `kubectl describe`.
AVAILABLE = "Available"
REPLICA_FAILURE = "ReplicaFailure"
MINIMUM_REPLICAS_AVAILABLE = "MinimumReplicasAvailable"
MINIMUM_REPLICAS_UNAVAILABLE = "MinimumReplicasUnavailable"
REPLICA_SET_UPDATED_REASON = "ReplicaSetUpdated"
FAILED_REPLICA_SET_CREATE_REASON = "ReplicaSetCreateError"
NEW_REPLICA_SET_CREATED_REASON = "NewReplicaSetCreated"
FOUND_NEW_REPLICA_SET_REASON = "FoundNewReplicaSet"
NEW_REPLICA_SET_AVAILABLE_REASON = "NewReplicaSetAvailable"
PAUSED_REASON = "DeploymentPaused"
RESUMED_REASON = "DeploymentResumed"
ROLLBACK_REVISION_NOT_FOUND = "DeploymentRollbackRevisionNotFound"
ROLLBACK_TEMPLATE_UNCHANGED = "DeploymentRollbackTemplateUnchanged"
ROLLBACK_DONE = "DeploymentRollback"


# -- maxSurge / maxUnavailable ----------------------------------------------------------------


def scaled_value(value: int | str | None, total: int, round_up: bool, field: str = "value") -> int:
    """An int-or-percent against `total` (`intstr.GetScaledValueFromIntOrPercent`).

    "25%" of 10 is 2.5: 3 when rounding up (maxSurge), 2 when rounding down (maxUnavailable).
    """
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = value.strip()
    if not text.endswith("%") or not text[:-1].lstrip("-").isdigit():
        raise ValueError(f"{field}: invalid value {value!r}: must be an integer or a percentage such as \"25%\"")
    percent = int(text[:-1])
    if round_up:
        return -(-percent * total // 100)
    return percent * total // 100


def is_rolling_update(deployment: Deployment) -> bool:
    return deployment.spec.strategy.type == ROLLING_UPDATE


def _rolling_parameters(deployment: Deployment) -> tuple[int | str | None, int | str | None]:
    rolling_update = deployment.spec.strategy.rolling_update
    if rolling_update is None:
        # Defaulting fills both with "25%" for RollingUpdate; mirror that if it did not run.
        return "25%", "25%"
    return rolling_update.max_surge, rolling_update.max_unavailable


def resolve_fenceposts(max_surge: int | str | None, max_unavailable: int | str | None, desired: int) -> tuple[int, int]:
    """(surge, unavailable) as absolute pod counts (`ResolveFenceposts`).

    Worked example, replicas 3 with 25%/25%: surge = ceil(0.75) = 1, unavailable = floor(0.75) = 0,
    so the rollout never drops below 3 available pods and never runs more than 4.
    Both resolving to 0 (maxSurge 0, maxUnavailable 10% of 5 = floor(0.5) = 0) would deadlock the
    rollout, so unavailable becomes 1: surge could be blocked by quota, unavailability cannot.
    """
    surge = scaled_value(max_surge, desired, round_up=True, field="spec.strategy.rollingUpdate.maxSurge")
    unavailable = scaled_value(
        max_unavailable, desired, round_up=False, field="spec.strategy.rollingUpdate.maxUnavailable"
    )
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(deployment: Deployment) -> int:
    """How many pods above spec.replicas a rollout may run; 0 for Recreate."""
    if not is_rolling_update(deployment):
        return 0
    surge, _ = resolve_fenceposts(*_rolling_parameters(deployment), deployment.spec.replicas)
    return surge


def max_unavailable(deployment: Deployment) -> int:
    """How many of spec.replicas may be unavailable; 0 for Recreate or zero replicas, never more than replicas."""
    replicas = deployment.spec.replicas
    if not is_rolling_update(deployment) or replicas == 0:
        return 0
    _, unavailable = resolve_fenceposts(*_rolling_parameters(deployment), replicas)
    return min(unavailable, replicas)


def min_available(deployment: Deployment) -> int:
    if not is_rolling_update(deployment):
        return 0
    return deployment.spec.replicas - max_unavailable(deployment)


def has_progress_deadline(deployment: Deployment) -> bool:
    deadline = deployment.spec.progress_deadline_seconds
    return deadline is not None and deadline != MAX_INT32


def has_revision_history_limit(deployment: Deployment) -> bool:
    limit = deployment.spec.revision_history_limit
    return limit is not None and limit != MAX_INT32


# -- pod-template hash ------------------------------------------------------------------------

_FNV32_OFFSET_BASIS = 2166136261
_FNV32_PRIME = 16777619


def fnv1a_32(data: bytes, state: int = _FNV32_OFFSET_BASIS) -> int:
    """FNV-1a, 32 bit; pass the previous result as `state` to keep hashing more bytes."""
    for byte in data:
        state = ((state ^ byte) * _FNV32_PRIME) & 0xFFFFFFFF
    return state


def compute_hash(template: PodTemplateSpec, collision_count: int | None = None) -> str:
    """The pod-template-hash of a template (`controller.ComputeHash`).

    FNV-1a over a deterministic JSON dump of the template; a collisionCount, when set, is fed in
    as a little-endian uint32 in an 8-byte buffer, so bumping it gives a different name. The
    decimal digits of the 32-bit sum are then mapped through SafeEncodeString (1-10 characters).
    """
    dump = json.dumps(semantic_form(template.to_dict()), sort_keys=True, separators=(",", ":"))
    state = fnv1a_32(dump.encode())
    if collision_count is not None:
        state = fnv1a_32(struct.pack("<I4x", collision_count & 0xFFFFFFFF), state)
    return safe_encode_string(str(state))


# -- replica sets -----------------------------------------------------------------------------


def find_old_replica_sets(deployment: Deployment, replica_sets: Sequence[ReplicaSet]) -> list[ReplicaSet]:
    """Every owned ReplicaSet except the new one, active or not."""
    new_replica_set = find_new_replica_set(deployment, replica_sets)
    new_uid = new_replica_set.metadata.uid if new_replica_set is not None else None
    return [rs for rs in replica_sets if new_uid is None or rs.metadata.uid != new_uid]


def filter_active(replica_sets: Iterable[ReplicaSet | None]) -> list[ReplicaSet]:
    """ReplicaSets that want pods (spec.replicas > 0), skipping a missing new one."""
    return [rs for rs in replica_sets if rs is not None and rs.spec.replicas > 0]


def spec_replicas(replica_sets: Iterable[ReplicaSet | None]) -> int:
    return sum(rs.spec.replicas for rs in replica_sets if rs is not None)


def status_replicas(replica_sets: Iterable[ReplicaSet | None]) -> int:
    return sum(rs.status.replicas or 0 for rs in replica_sets if rs is not None)


def ready_replicas(replica_sets: Iterable[ReplicaSet | None]) -> int:
    return sum(rs.status.ready_replicas or 0 for rs in replica_sets if rs is not None)


def available_replicas(replica_sets: Iterable[ReplicaSet | None]) -> int:
    return sum(rs.status.available_replicas or 0 for rs in replica_sets if rs is not None)


# -- revisions and annotations ----------------------------------------------------------------


def _revisions(replica_sets: Iterable[ReplicaSet | None]) -> list[int]:
    revisions = []
    for replica_set in replica_sets:
        if replica_set is None:
            continue
        try:
            revisions.append(revision_of(replica_set))
        except ValueError:
            continue  # an unparsable revision is skipped, as Kubernetes does
    return revisions


def max_revision(replica_sets: Iterable[ReplicaSet | None]) -> int:
    return max(_revisions(replica_sets), default=0)


def last_revision(replica_sets: Iterable[ReplicaSet | None]) -> int:
    """The second-highest revision: the one before the current (`LastRevision`); 0 if none."""
    highest = second = 0
    for revision in _revisions(replica_sets):
        if revision >= highest:
            highest, second = revision, highest
        elif revision > second:
            second = revision
    return second


def by_revision(replica_sets: Iterable[ReplicaSet]) -> list[ReplicaSet]:
    """Lowest revision first, creation time breaking ties (`ReplicaSetsByRevision`)."""

    def key(replica_set: ReplicaSet) -> tuple[int, float, str]:
        try:
            revision = revision_of(replica_set)
        except ValueError:
            revision = 0
        return (revision, *creation_order(replica_set))

    return sorted(replica_sets, key=key)


def _annotation_int(obj: ReplicaSet | Deployment, key: str) -> int | None:
    """A non-negative int32 annotation, or None when missing or malformed."""
    text = (obj.metadata.annotations or {}).get(key)
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return value if 0 <= value <= MAX_INT32 else None


def desired_replicas_annotation(replica_set: ReplicaSet) -> int | None:
    return _annotation_int(replica_set, DESIRED_REPLICAS_ANNOTATION)


def max_replicas_annotation(replica_set: ReplicaSet) -> int | None:
    return _annotation_int(replica_set, MAX_REPLICAS_ANNOTATION)


def copy_deployment_annotations(deployment: Deployment, replica_set: ReplicaSet) -> bool:
    """Copy the Deployment's annotations (minus the skip list) onto `replica_set`; True if any changed.

    The revision is deliberately not copied: the ReplicaSet's own revision is the reliable one,
    and the Deployment's copy of it is refreshed from the ReplicaSet, not the other way round.
    """
    annotations = dict(replica_set.metadata.annotations or {})
    changed = False
    for key, value in (deployment.metadata.annotations or {}).items():
        if key in ANNOTATIONS_TO_SKIP or annotations.get(key) == value:
            continue
        annotations[key] = value
        changed = True
    replica_set.metadata.annotations = annotations
    return changed


def set_replicas_annotations(replica_set: ReplicaSet, desired: int, maximum: int) -> bool:
    """Record desired-replicas and max-replicas on `replica_set`; True if either changed."""
    annotations = dict(replica_set.metadata.annotations or {})
    changed = False
    for key, value in ((DESIRED_REPLICAS_ANNOTATION, str(desired)), (MAX_REPLICAS_ANNOTATION, str(maximum))):
        if annotations.get(key) != value:
            annotations[key] = value
            changed = True
    replica_set.metadata.annotations = annotations
    return changed


def replicas_annotations_need_update(replica_set: ReplicaSet, desired: int, maximum: int) -> bool:
    annotations = replica_set.metadata.annotations or {}
    return (annotations.get(DESIRED_REPLICAS_ANNOTATION) != str(desired)
            or annotations.get(MAX_REPLICAS_ANNOTATION) != str(maximum))


def _append_revision_history(history: str, previous_revision: str, limit: int) -> str | None:
    """`history` + `previous_revision`, dropping the oldest entries to stay within `limit` chars."""
    if not history:
        return previous_revision
    entries = history.split(",")
    total_length = len(history) + len(previous_revision) + 1
    start = 0
    while total_length > limit and start < len(entries):
        total_length -= len(entries[start]) + 1
        start += 1
    if total_length > limit:
        return None
    return ",".join([*entries[start:], previous_revision])


def set_new_replica_set_annotations(
    deployment: Deployment,
    replica_set: ReplicaSet,
    new_revision: int,
    exists: bool,
    history_limit_in_chars: int = MAX_REVISION_HISTORY_LENGTH_IN_CHARS,
) -> bool:
    """Bring the new ReplicaSet's annotations up to date; True if anything changed.

    Copies the Deployment's annotations, raises (never lowers) the revision to `new_revision`,
    and when an RS that already had a revision is raised (a rollback to it) appends the old
    number to revision-history. A ReplicaSet about to be created also gets desired-replicas and
    max-replicas.
    """
    changed = copy_deployment_annotations(deployment, replica_set)
    annotations = dict(replica_set.metadata.annotations or {})
    old_revision_text = annotations.get(REVISION_ANNOTATION)
    if old_revision_text is None or old_revision_text == "":
        old_revision = 0
    else:
        try:
            old_revision = int(old_revision_text)
        except ValueError:
            return False
    if old_revision < new_revision:
        annotations[REVISION_ANNOTATION] = str(new_revision)
        changed = True
        if old_revision_text is not None:
            history = _append_revision_history(
                annotations.get(REVISION_HISTORY_ANNOTATION, ""), old_revision_text, history_limit_in_chars
            )
            if history is not None:
                annotations[REVISION_HISTORY_ANNOTATION] = history
    replica_set.metadata.annotations = annotations
    if not exists and set_replicas_annotations(
        replica_set, deployment.spec.replicas, deployment.spec.replicas + max_surge(deployment)
    ):
        changed = True
    return changed


def set_deployment_revision(deployment: Deployment, revision: str) -> bool:
    """Set the Deployment's revision annotation; True if it changed."""
    annotations = dict(deployment.metadata.annotations or {})
    if annotations.get(REVISION_ANNOTATION) == revision:
        return False
    annotations[REVISION_ANNOTATION] = revision
    deployment.metadata.annotations = annotations
    return True


def set_deployment_annotations_to(deployment: Deployment, replica_set: ReplicaSet) -> None:
    """On rollback: the Deployment takes the ReplicaSet's annotations, keeping its own skip-list ones."""
    own = {key: value for key, value in (deployment.metadata.annotations or {}).items() if key in ANNOTATIONS_TO_SKIP}
    copied = {key: value for key, value in (replica_set.metadata.annotations or {}).items()
              if key not in ANNOTATIONS_TO_SKIP}
    deployment.metadata.annotations = {**own, **copied}


# -- sizing -----------------------------------------------------------------------------------


def new_replica_set_new_replicas(deployment: Deployment, all_replica_sets: Sequence[ReplicaSet | None], new_replica_set: ReplicaSet) -> int:
    """How many replicas the new ReplicaSet may have after this step (`NewRSNewReplicas`).

    Rolling update, worked example: replicas 3, surge 1, old RS at 3, new RS at 0:
    maxTotal = 3 + 1 = 4, current = 3, so the new RS may grow by min(4 - 3, 3 - 0) = 1 -> 1.
    Once the total reaches maxTotal it keeps its size until old pods go away. Recreate: all at once.
    """
    desired = deployment.spec.replicas
    if not is_rolling_update(deployment):
        return desired
    surge, _ = _rolling_parameters(deployment)
    max_total = desired + scaled_value(surge, desired, round_up=True, field="spec.strategy.rollingUpdate.maxSurge")
    current = spec_replicas(all_replica_sets)
    if current >= max_total:
        return new_replica_set.spec.replicas
    scale_up = min(max_total - current, desired - new_replica_set.spec.replicas)
    return new_replica_set.spec.replicas + scale_up


def is_saturated(deployment: Deployment, replica_set: ReplicaSet | None) -> bool:
    """The ReplicaSet runs every desired replica, available, and knows it was sized for them."""
    if replica_set is None:
        return False
    desired = desired_replicas_annotation(replica_set)
    if desired is None:
        return False
    replicas = deployment.spec.replicas
    return (replica_set.spec.replicas == replicas
            and desired == replicas
            and (replica_set.status.available_replicas or 0) == replicas)


def find_active_or_latest(new_replica_set: ReplicaSet | None, old_replica_sets: Sequence[ReplicaSet]) -> ReplicaSet | None:
    """The only active ReplicaSet; the newest one if none is active; None if several are."""
    if new_replica_set is None and not old_replica_sets:
        return None
    newest_first = list(reversed(by_creation(old_replica_sets)))
    active = filter_active([*newest_first, new_replica_set])
    if not active:
        return new_replica_set if new_replica_set is not None else newest_first[0]
    if len(active) == 1:
        return active[0]
    return None


def round_half_away_from_zero(value: float) -> int:
    """Go's math.Round: 2.5 -> 3, -2.5 -> -3 (Python's round() would give 2 and -2)."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def replica_set_fraction(replica_set: ReplicaSet, deployment: Deployment) -> int:
    """How many replicas this RS gains (or loses) if every RS keeps its share (`getReplicaSetFraction`).

    The max-replicas annotation says what the Deployment's maximum size was when this RS was last
    sized. Worked example: RS at 8 sized for a maximum of 13 (10 + surge 3); the Deployment now
    allows 15 + 3 = 18; share = round(8 * 18 / 13) = round(11.08) = 11, so the fraction is +3.
    """
    if deployment.spec.replicas == 0:
        return -replica_set.spec.replicas
    deployment_max_replicas = deployment.spec.replicas + max_surge(deployment)
    max_before_scale = max_replicas_annotation(replica_set)
    if not max_before_scale:
        # Someone scaled the RS by hand: fall back to the Deployment's current size.
        max_before_scale = deployment.status.replicas or 0
        if max_before_scale == 0:
            return 0
    share = replica_set.spec.replicas * deployment_max_replicas / max_before_scale
    return round_half_away_from_zero(share) - replica_set.spec.replicas


def replica_set_proportion(replica_set: ReplicaSet, deployment: Deployment, replicas_to_add: int, replicas_added: int) -> int:
    """This RS's part of `replicas_to_add`, never more than what is left to hand out."""
    if replica_set.spec.replicas == 0 or replicas_to_add == 0 or replicas_to_add == replicas_added:
        return 0
    fraction = replica_set_fraction(replica_set, deployment)
    allowed = replicas_to_add - replicas_added
    if replicas_to_add > 0:
        return min(fraction, allowed)
    return max(fraction, allowed)


def proportional_sizes(deployment: Deployment, active_replica_sets: Sequence[ReplicaSet]) -> list[tuple[ReplicaSet, int]]:
    """New sizes for every active ReplicaSet when a Deployment is resized mid-rollout.

    Extra replicas (or removals) are shared in proportion to each RS's size; rounding leftovers
    go to the largest RS. Worked example (docs "Proportional scaling"): replicas 10, surge 3,
    RSs at 8 (old) and 5 (new), both annotated max-replicas 13; scale to 15:
    allowed = 15 + 3 = 18, to add = 18 - 13 = 5; old: round(8 * 18 / 13) - 8 = 11 - 8 = 3,
    new: min(round(5 * 18 / 13) - 5, 5 - 3) = min(2, 2) = 2 -> 11 and 7, leftover 0.
    Returns (replica set, new size) pairs, largest first (newer first on ties when growing,
    older first when shrinking), the order the writes should go in.
    """
    replicas = deployment.spec.replicas
    allowed = replicas + max_surge(deployment) if replicas > 0 else 0
    to_add = allowed - spec_replicas(active_replica_sets)
    ordered = list(active_replica_sets)
    if to_add > 0:
        # Largest first; on a tie the newer RS grows first.
        ordered.sort(key=lambda rs: creation_order(rs), reverse=True)
        ordered.sort(key=lambda rs: rs.spec.replicas, reverse=True)
    elif to_add < 0:
        # Largest first; on a tie the older RS shrinks first.
        ordered.sort(key=creation_order)
        ordered.sort(key=lambda rs: rs.spec.replicas, reverse=True)
    sizes: list[tuple[ReplicaSet, int]] = []
    added = 0
    for replica_set in ordered:
        if to_add != 0:
            proportion = replica_set_proportion(replica_set, deployment, to_add, added)
            added += proportion
            sizes.append((replica_set, replica_set.spec.replicas + proportion))
        else:
            sizes.append((replica_set, replica_set.spec.replicas))
    if sizes and to_add != 0:
        first, size = sizes[0]
        sizes[0] = (first, max(size + to_add - added, 0))
    return sizes


# -- status and conditions --------------------------------------------------------------------


def new_condition(condition_type: str, status: str, reason: str, message: str, now: float) -> DeploymentCondition:
    timestamp = format_time(now)
    return DeploymentCondition(
        type=condition_type,
        status=status,
        reason=reason,
        message=message,
        last_update_time=timestamp,
        last_transition_time=timestamp,
    )


def set_condition(status: DeploymentStatus, condition: DeploymentCondition) -> None:
    """Put `condition` into `status` (`SetDeploymentCondition`).

    Same status and reason: nothing changes (not even lastUpdateTime). Same status, new reason:
    the lastTransitionTime is kept. The condition moves to the end of the list.
    """
    current = get_condition(status, condition.type)
    if current is not None and current.status == condition.status and current.reason == condition.reason:
        return
    if current is not None and current.status == condition.status:
        condition = condition.model_copy(update={"last_transition_time": current.last_transition_time})
    others = [c for c in status.conditions or [] if c.type != condition.type]
    status.conditions = [*others, condition]


def remove_condition(status: DeploymentStatus, condition_type: str) -> None:
    remaining = [c for c in status.conditions or [] if c.type != condition_type]
    status.conditions = remaining or None


def replica_set_condition_to_deployment(condition: ReplicaSetCondition) -> DeploymentCondition:
    return DeploymentCondition(
        type=condition.type,
        status=condition.status,
        reason=condition.reason,
        message=condition.message,
        last_update_time=condition.last_transition_time,
        last_transition_time=condition.last_transition_time,
    )


def deployment_complete(deployment: Deployment, status: DeploymentStatus) -> bool:
    """Every desired replica is updated and available and no old pod is left (`DeploymentComplete`)."""
    replicas = deployment.spec.replicas
    return ((status.updated_replicas or 0) == replicas
            and (status.replicas or 0) == replicas
            and (status.available_replicas or 0) == replicas
            and (status.observed_generation or 0) >= (deployment.metadata.generation or 0))


def deployment_progressing(deployment: Deployment, status: DeploymentStatus) -> bool:
    """Something moved since the last status: more updated, fewer old, more ready or more available."""
    old = deployment.status
    old_old_replicas = (old.replicas or 0) - (old.updated_replicas or 0)
    new_old_replicas = (status.replicas or 0) - (status.updated_replicas or 0)
    return ((status.updated_replicas or 0) > (old.updated_replicas or 0)
            or new_old_replicas < old_old_replicas
            or (status.ready_replicas or 0) > (old.ready_replicas or 0)
            or (status.available_replicas or 0) > (old.available_replicas or 0))


def deployment_timed_out(deployment: Deployment, status: DeploymentStatus, now: float) -> bool:
    """No progress reported for longer than progressDeadlineSeconds (`DeploymentTimedOut`)."""
    if not has_progress_deadline(deployment):
        return False
    condition = get_condition(status, PROGRESSING)
    if condition is None or condition.reason == NEW_REPLICA_SET_AVAILABLE_REASON:
        return False
    if condition.reason == TIMED_OUT_REASON:
        return True
    if not condition.last_update_time:
        return False
    return parse_time(condition.last_update_time) + deployment.spec.progress_deadline_seconds < now
