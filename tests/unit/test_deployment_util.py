"""The Deployment controller's arithmetic, tested without an API: fenceposts, step sizes,
proportional scaling, the pod-template hash, revisions, conditions and status."""

from __future__ import annotations

import pytest

from minikube_py.api.apps import ReplicaSetCondition

from controllers.deployment import rolling, util
from controllers.deployment.progress import replica_failure_conditions
from controllers.deployment.sync import calculate_status

from tests.unit.test_deployment_helpers import START, deployment, replica_set


# -- fenceposts -------------------------------------------------------------------------------


def test_25_percent_of_3_gives_surge_1_and_unavailable_0():
    assert util.resolve_fenceposts("25%", "25%", 3) == (1, 0)


def test_absolute_surge_3_unavailable_2_of_10_allow_13_pods_and_8_available():
    web = deployment(replicas=10, max_surge=3, max_unavailable=2)
    assert util.max_surge(web) == 3
    assert util.min_available(web) == 8


def test_both_fenceposts_rounding_to_zero_force_unavailable_to_1():
    assert util.resolve_fenceposts(0, "10%", 5) == (0, 1)


def test_max_unavailable_is_clamped_to_replicas():
    assert util.max_unavailable(deployment(replicas=3, max_surge=1, max_unavailable=5)) == 3


def test_recreate_has_no_surge_and_no_unavailability_budget():
    web = deployment(strategy="Recreate")
    assert (util.max_surge(web), util.max_unavailable(web), util.min_available(web)) == (0, 0, 0)


def test_malformed_percentage_names_the_field():
    with pytest.raises(ValueError, match="maxSurge"):
        util.resolve_fenceposts("lots", 1, 3)


# -- rolling-update step sizes ----------------------------------------------------------------


def test_new_replica_set_grows_by_the_surge_when_old_pods_fill_the_deployment():
    web = deployment(replicas=3)
    old, new = replica_set("old", 3), replica_set("new", 0)
    assert util.new_replica_set_new_replicas(web, [old, new], new) == 1


def test_new_replica_set_keeps_its_size_when_the_total_is_at_the_maximum():
    web = deployment(replicas=3)
    old, new = replica_set("old", 3), replica_set("new", 1)
    assert util.new_replica_set_new_replicas(web, [old, new], new) == 1


def test_new_replica_set_of_10_with_surge_3_starts_at_3():
    web = deployment(replicas=10, max_surge=3, max_unavailable=2)
    old, new = replica_set("old", 10), replica_set("new", 0)
    assert util.new_replica_set_new_replicas(web, [old, new], new) == 3


def test_old_replica_sets_may_drop_to_min_available_plus_new_unavailable():
    # 10 replicas, surge 3, unavailable 2: old 8 + new 5 where no new pod is available.
    web = deployment(replicas=10, max_surge=3, max_unavailable=2)
    new = replica_set("new", 5, available=0)
    assert rolling.max_scaled_down(web, [replica_set("old", 8), new], new) == 0
    # After a rollback the good RS (8 pods, 1 unavailable) is the new one: 13 - 8 - 1 = 4.
    good = replica_set("good", 8, available=7)
    assert rolling.max_scaled_down(web, [replica_set("bad", 5, available=0), good], good) == 4


def test_unhealthy_old_replicas_are_removed_first_oldest_replica_set_first():
    older = replica_set("older", 4, available=1, created=START)
    newer = replica_set("newer", 2, available=0, created=START + 10)
    plan = rolling.scale_down_plan_for_unhealthy([newer, older], limit=4)
    assert [(rs.metadata.name, size) for rs, size in plan] == [("older", 1), ("newer", 1)]


def test_available_old_replicas_go_only_down_to_min_available():
    web = deployment(replicas=3)
    old, new = replica_set("old", 3), replica_set("new", 1, available=1)
    plan = rolling.scale_down_plan_for_rolling_update(web, [old, new], [old])
    assert [(rs.metadata.name, size) for rs, size in plan] == [("old", 2)]


def test_no_old_replica_goes_while_only_min_available_pods_are_available():
    web = deployment(replicas=3)
    old, new = replica_set("old", 3), replica_set("new", 1, available=0)
    assert rolling.scale_down_plan_for_rolling_update(web, [old, new], [old]) == []


# -- proportional scaling ---------------------------------------------------------------------


def sizes(plan):
    return {rs.metadata.name: size for rs, size in plan}


def test_proportional_scaling_of_8_old_and_5_new_to_15_gives_11_and_7():
    web = deployment(replicas=15, max_surge=3, max_unavailable=2)
    annotations = {util.MAX_REPLICAS_ANNOTATION: "13", util.DESIRED_REPLICAS_ANNOTATION: "10"}
    old = replica_set("old", 8, annotations=annotations, created=START)
    new = replica_set("new", 5, annotations=annotations, created=START + 60)
    assert sizes(util.proportional_sizes(web, [old, new])) == {"old": 11, "new": 7}


def test_proportional_scale_down_removes_from_the_largest_first_and_never_below_zero():
    web = deployment(replicas=5, max_surge=1, max_unavailable=0)
    annotations = {util.MAX_REPLICAS_ANNOTATION: "11"}
    old = replica_set("old", 6, annotations=annotations, created=START)
    new = replica_set("new", 5, annotations=annotations, created=START + 60)
    # allowed 6, to remove 5: old round(6*6/11)=3 -> -3, new round(5*6/11)=3 -> -2.
    assert sizes(util.proportional_sizes(web, [old, new])) == {"old": 3, "new": 3}


def test_scaling_to_zero_empties_every_replica_set():
    web = deployment(replicas=0)
    old, new = replica_set("old", 2, created=START), replica_set("new", 2, created=START + 1)
    assert sizes(util.proportional_sizes(web, [old, new])) == {"old": 0, "new": 0}


def test_rounding_is_half_away_from_zero_like_go():
    assert [util.round_half_away_from_zero(v) for v in (2.5, -2.5, 0.49, 11.08)] == [3, -3, 0, 11]


def test_saturated_new_replica_set_needs_desired_annotation_and_all_available():
    web = deployment(replicas=3)
    assert util.is_saturated(web, replica_set("new", 3, annotations={util.DESIRED_REPLICAS_ANNOTATION: "3"}))
    assert not util.is_saturated(web, replica_set("new", 3))
    assert not util.is_saturated(web, replica_set("new", 3, available=2,
                                                  annotations={util.DESIRED_REPLICAS_ANNOTATION: "3"}))


def test_only_active_replica_set_or_else_the_newest_takes_the_whole_size():
    older, newer = replica_set("older", 0, created=START), replica_set("newer", 0, created=START + 5)
    assert util.find_active_or_latest(None, [older, newer]) is newer
    active = replica_set("active", 2)
    assert util.find_active_or_latest(None, [older, active]) is active
    assert util.find_active_or_latest(replica_set("new", 1), [active]) is None


# -- hash and templates -----------------------------------------------------------------------


def test_fnv1a_matches_the_reference_vectors():
    assert util.fnv1a_32(b"") == 0x811C9DC5
    assert util.fnv1a_32(b"a") == 0xE40C292C
    assert util.fnv1a_32(b"foobar") == 0xBF9CF968


def test_safe_encode_maps_digits_through_the_vowel_free_alphabet():
    assert util.safe_encode_string("0123456789") == "456789bcdf"


def test_pod_template_hash_is_stable_and_changes_with_template_and_collision_count():
    first = deployment(image="busybox:1").spec.template
    again = deployment(image="busybox:1").spec.template
    other = deployment(image="busybox:2").spec.template
    value = util.compute_hash(first)
    assert value == util.compute_hash(again)
    assert value != util.compute_hash(other)
    assert value != util.compute_hash(first, collision_count=1)
    assert set(value) <= set("bcdfghjklmnpqrstvwxz2456789") and 1 <= len(value) <= 10


def test_templates_equal_apart_from_the_hash_label():
    web = deployment()
    assert util.equal_ignore_hash(web.spec.template, replica_set("abc", 1).spec.template)
    assert not util.equal_ignore_hash(web.spec.template, replica_set("abc", 1, image="busybox:2").spec.template)


def test_new_replica_set_is_the_oldest_with_the_current_template():
    web = deployment()
    older = replica_set("older", 1, created=START)
    newer = replica_set("newer", 1, created=START + 1)
    different = replica_set("different", 1, image="busybox:2", created=START - 1)
    assert util.find_new_replica_set(web, [newer, different, older]) is older
    assert [rs.metadata.name for rs in util.find_old_replica_sets(web, [newer, different, older])] == ["newer", "different"]


# -- revisions and annotations ----------------------------------------------------------------


def test_new_replica_set_gets_copied_annotations_revision_and_sizes():
    web = deployment(replicas=4, annotations={
        util.CHANGE_CAUSE_ANNOTATION: "kubectl set image", util.LAST_APPLIED_CONFIG_ANNOTATION: "{}",
        util.REVISION_ANNOTATION: "7",
    })
    new = replica_set("new", 0)
    assert util.set_new_replica_set_annotations(web, new, 3, exists=False)
    assert new.metadata.annotations == {
        util.CHANGE_CAUSE_ANNOTATION: "kubectl set image",
        util.REVISION_ANNOTATION: "3",
        util.DESIRED_REPLICAS_ANNOTATION: "4",
        util.MAX_REPLICAS_ANNOTATION: "5",
    }


def test_rolled_back_replica_set_moves_its_old_revision_into_history():
    rolled_back = replica_set("two", 0, revision=2, annotations={util.REVISION_HISTORY_ANNOTATION: "1"})
    assert util.set_new_replica_set_annotations(deployment(), rolled_back, 4, exists=True)
    annotations = rolled_back.metadata.annotations
    assert (annotations[util.REVISION_ANNOTATION], annotations[util.REVISION_HISTORY_ANNOTATION]) == ("4", "1,2")


def test_revision_is_never_lowered():
    current = replica_set("current", 3, revision=5)
    assert not util.set_new_replica_set_annotations(deployment(), current, 3, exists=True)
    assert current.metadata.annotations[util.REVISION_ANNOTATION] == "5"


def test_revision_history_drops_oldest_entries_to_fit_the_limit():
    rolled_back = replica_set("r", 0, revision=40, annotations={util.REVISION_HISTORY_ANNOTATION: "10,20,30"})
    util.set_new_replica_set_annotations(deployment(), rolled_back, 41, exists=True, history_limit_in_chars=8)
    assert rolled_back.metadata.annotations[util.REVISION_HISTORY_ANNOTATION] == "20,30,40"


def test_last_revision_is_the_second_highest():
    replica_sets = [replica_set("a", 0, revision=1), replica_set("b", 0, revision=3), replica_set("c", 0, revision=2)]
    assert util.last_revision(replica_sets) == 2
    assert util.max_revision(replica_sets) == 3


# -- conditions and status --------------------------------------------------------------------


def test_condition_with_same_status_and_reason_is_left_untouched():
    status = deployment().status
    util.set_condition(status, util.new_condition("Progressing", "True", "ReplicaSetUpdated", "a", START))
    util.set_condition(status, util.new_condition("Progressing", "True", "ReplicaSetUpdated", "b", START + 60))
    assert (status.conditions[0].message, status.conditions[0].last_update_time) == ("a", "2027-01-15T08:00:00Z")


def test_condition_with_same_status_new_reason_keeps_transition_time():
    status = deployment().status
    util.set_condition(status, util.new_condition("Progressing", "True", "NewReplicaSetCreated", "a", START))
    util.set_condition(status, util.new_condition("Progressing", "True", "ReplicaSetUpdated", "b", START + 60))
    (condition,) = status.conditions
    assert condition.reason == "ReplicaSetUpdated"
    assert condition.last_transition_time == "2027-01-15T08:00:00Z"
    assert condition.last_update_time == "2027-01-15T08:01:00Z"


def test_progress_times_out_only_after_the_deadline():
    web = deployment(progress_deadline_seconds=60)
    util.set_condition(web.status, util.new_condition("Progressing", "True", "ReplicaSetUpdated", "x", START))
    assert not util.deployment_timed_out(web, web.status, START + 60)
    assert util.deployment_timed_out(web, web.status, START + 61)


def test_status_sums_replica_sets_and_omits_zero_counts():
    web = deployment(replicas=3, generation=4)
    old = replica_set("old", 2, available=2)
    new = replica_set("new", 2, available=0)
    status = calculate_status([old, new], new, web, START)
    assert (status.observed_generation, status.replicas, status.updated_replicas,
            status.available_replicas, status.unavailable_replicas, status.ready_replicas) == (4, 4, 2, 2, 2, None)
    (available,) = status.conditions
    assert (available.type, available.status, available.reason, available.message) == (
        "Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.")


def test_deployment_is_complete_when_all_replicas_are_updated_and_available():
    web = deployment(replicas=2)
    status = calculate_status([replica_set("new", 2)], None, web, START)
    assert not util.deployment_complete(web, status)
    new = replica_set("new", 2)
    status = calculate_status([new], new, web, START)
    assert util.deployment_complete(web, status)
    assert status.condition("Available").reason == "MinimumReplicasAvailable"


def test_replica_failure_of_the_new_replica_set_wins_over_old_ones():
    def failing(name, message):
        failing_set = replica_set(name, 1)
        failing_set.status.conditions = [ReplicaSetCondition(
            type="ReplicaFailure", status="True", reason="FailedCreate", message=message,
            last_transition_time="2027-01-15T08:00:00Z")]
        return failing_set

    old, new = failing("old", "quota exceeded (old)"), failing("new", "quota exceeded (new)")
    (condition,) = replica_failure_conditions([old, new], new)
    assert (condition.type, condition.reason, condition.message, condition.last_update_time) == (
        "ReplicaFailure", "FailedCreate", "quota exceeded (new)", "2027-01-15T08:00:00Z")
    assert replica_failure_conditions([old, replica_set("healthy", 1)], replica_set("healthy", 1))[0].message == \
        "quota exceeded (old)"
