"""Registry deletion (graceful pods, finalizers, propagation, namespaces) and filtered watches."""

import pytest

from minikube_py.api import errors
from minikube_py.apiserver.registry import Registry
from minikube_py.clock import FakeClock
from minikube_py.store import Store


def pod_body(name="web", labels=None, grace=None, finalizers=None):
    spec = {"containers": [{"name": "main", "image": "busybox"}]}
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    metadata = {"name": name, "labels": labels or {"app": "web"}}
    if finalizers:
        metadata["finalizers"] = finalizers
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


@pytest.fixture
def clock():
    return FakeClock(start=1_800_000_000.0)


@pytest.fixture
def registry(clock):
    store = Store(":memory:")
    yield Registry(store, clock)
    store.close()


def names(watch_events):
    return [(event["type"], event["object"]["metadata"]["name"]) for event in watch_events]


def drain(watch):
    events = []
    while (event := watch.next(timeout=0)) is not None:
        events.append(event)
    return events


def test_an_unbound_pod_is_removed_at_once(registry):
    registry.create("pods", "default", pod_body())
    deleted = registry.delete("pods", "default", "web")
    assert deleted["metadata"]["name"] == "web"
    with pytest.raises(errors.NotFound, match='pods "web" not found'):
        registry.get("pods", "default", "web")


def test_a_bound_pod_is_marked_for_its_grace_period_until_deleted_with_grace_zero(registry):
    registry.create("pods", "default", pod_body(grace=20))
    registry.bind("default", "web", "node-1")
    marked = registry.delete("pods", "default", "web")
    assert marked["metadata"]["deletionTimestamp"] == "2027-01-15T08:00:20Z"
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 20
    assert registry.get("pods", "default", "web")["metadata"]["deletionTimestamp"]
    registry.delete("pods", "default", "web", grace_period_seconds=0)
    with pytest.raises(errors.NotFound):
        registry.get("pods", "default", "web")


def test_deleting_again_with_a_shorter_grace_moves_the_deadline_closer(registry, clock):
    registry.create("pods", "default", pod_body(grace=30))
    registry.bind("default", "web", "node-1")
    registry.delete("pods", "default", "web")
    longer = registry.delete("pods", "default", "web", grace_period_seconds=60)
    assert longer["metadata"]["deletionGracePeriodSeconds"] == 30
    shorter = registry.delete("pods", "default", "web", grace_period_seconds=5)
    assert shorter["metadata"]["deletionGracePeriodSeconds"] == 5
    assert shorter["metadata"]["deletionTimestamp"] == "2027-01-15T08:00:05Z"


def test_finalizers_keep_an_object_until_an_update_removes_the_last_one(registry):
    registry.create("pods", "default", pod_body(finalizers=["example.com/hold"]))
    marked = registry.delete("pods", "default", "web")
    assert marked["metadata"]["deletionTimestamp"]
    with pytest.raises(errors.Invalid, match="no new finalizers"):
        registry.patch("pods", "default", "web", {"metadata": {"finalizers": ["example.com/hold", "example.com/other"]}})
    registry.patch("pods", "default", "web", {"metadata": {"finalizers": None}})
    with pytest.raises(errors.NotFound):
        registry.get("pods", "default", "web")


def test_foreground_and_orphan_policies_add_their_finalizers(registry):
    registry.create("pods", "default", pod_body("a"))
    registry.create("pods", "default", pod_body("b"))
    foreground = registry.delete("pods", "default", "a", propagation_policy="Foreground")
    orphan = registry.delete("pods", "default", "b", propagation_policy="Orphan")
    assert foreground["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert orphan["metadata"]["finalizers"] == ["orphan"]
    with pytest.raises(errors.BadRequest, match="propagationPolicy"):
        registry.delete("pods", "default", "a", propagation_policy="Sideways")


def test_deleting_a_namespace_removes_what_it_contains_then_itself(registry):
    registry.create("namespaces", None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    registry.create("pods", "team", pod_body("loose"))
    registry.create("pods", "team", pod_body("running", grace=10))
    registry.bind("team", "running", "node-1")
    terminating = registry.delete("namespaces", None, "team")
    assert terminating["status"]["phase"] == "Terminating"
    assert [item["metadata"]["name"] for item in registry.list("pods", "team")["items"]] == ["running"]
    with pytest.raises(errors.ApiError, match="because it is being terminated") as raised:
        registry.create("pods", "team", pod_body("new"))
    assert raised.value.code == 403
    registry.delete("pods", "team", "running", grace_period_seconds=0)
    with pytest.raises(errors.NotFound):
        registry.get("namespaces", None, "team")


def test_a_create_racing_a_namespace_deletion_does_not_leave_the_namespace_terminating_for_ever(registry):
    registry.create("namespaces", None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    store_create = registry.store.create

    def create_after_the_namespace_deletion_ran(resource, obj):
        # The creating thread passed the namespace check; the deletion runs before it commits.
        if resource == "pods":
            registry.delete("namespaces", None, "team")
        return store_create(resource, obj)

    registry.store.create = create_after_the_namespace_deletion_ran
    with pytest.raises(errors.ApiError, match="because it is being terminated") as raised:
        registry.create("pods", "team", pod_body("late"))
    assert raised.value.code == 403
    assert registry.store.count("pods", "team") == 0
    with pytest.raises(errors.NotFound):
        registry.get("namespaces", None, "team")


def test_the_default_namespace_cannot_be_deleted(registry):
    with pytest.raises(errors.ApiError, match="may not be deleted"):
        registry.delete("namespaces", None, "default")


def test_a_watch_without_resource_version_starts_with_synthetic_added_events(registry):
    registry.create("pods", "default", pod_body("a"))
    watch = registry.watch("pods", "default")
    registry.create("pods", "default", pod_body("b"))
    registry.delete("pods", "default", "a")
    assert names(drain(watch)) == [("ADDED", "a"), ("ADDED", "b"), ("DELETED", "a")]
    watch.close()
    assert watch.next(timeout=0) is None


def test_a_watch_from_a_resource_version_sends_only_later_changes(registry):
    created = registry.create("pods", "default", pod_body("a"))
    registry.create("pods", "default", pod_body("b"))
    watch = registry.watch("pods", resource_version=created["metadata"]["resourceVersion"])
    assert names(drain(watch)) == [("ADDED", "b")]


def test_a_watch_from_a_compacted_resource_version_is_gone(registry):
    for index in range(5):
        registry.create("pods", "default", pod_body(f"p{index}"))
    registry.store.compact(keep=1)
    with pytest.raises(errors.Gone, match="too old resource version: 2"):
        registry.watch("pods", resource_version="2")


def test_an_object_that_stops_matching_the_selector_is_deleted_for_that_watcher(registry):
    registry.create("pods", "default", pod_body("a", {"app": "web"}))
    watch = registry.watch("pods", "default", label_selector="app=web")
    registry.create("pods", "default", pod_body("b", {"app": "db"}))
    registry.patch("pods", "default", "a", {"metadata": {"labels": {"app": "db"}}})
    registry.patch("pods", "default", "b", {"metadata": {"labels": {"app": "web"}}})
    events = drain(watch)
    assert names(events) == [("ADDED", "a"), ("DELETED", "a"), ("ADDED", "b")]
    assert events[1]["object"]["metadata"]["labels"] == {"app": "web"}


def test_a_field_selector_watch_sees_pods_bound_to_its_node(registry):
    watch = registry.watch("pods", field_selector="spec.nodeName=node-1")
    registry.create("pods", "default", pod_body("a"))
    registry.create("pods", "default", pod_body("b"))
    registry.bind("default", "b", "node-1")
    assert names(drain(watch)) == [("ADDED", "b")]


def test_delete_preconditions_on_uid_and_resource_version_are_checked_with_the_delete(registry):
    created = registry.create("pods", "default", pod_body("web"))
    with pytest.raises(errors.Conflict) as wrong_uid:
        registry.delete("pods", "default", "web", preconditions={"uid": "not-this-one"})
    assert wrong_uid.value.message == (
        f'Operation cannot be fulfilled on pods "web": Precondition failed: UID in precondition: not-this-one, '
        f'UID in object meta: {created["metadata"]["uid"]}')
    with pytest.raises(errors.Conflict, match="ResourceVersion in precondition: 1,"):
        registry.delete("pods", "default", "web", preconditions={"resourceVersion": "1"})
    assert registry.get("pods", "default", "web")["metadata"]["uid"] == created["metadata"]["uid"]

    registry.delete("pods", "default", "web", preconditions={"uid": created["metadata"]["uid"],
                                                             "resourceVersion": created["metadata"]["resourceVersion"]})
    with pytest.raises(errors.NotFound):
        registry.get("pods", "default", "web")


def test_the_largest_grace_period_deletes_with_the_last_representable_timestamp(registry):
    registry.create("pods", "default", pod_body(grace=2**63 - 1))
    registry.bind("default", "web", "node-1")
    marked = registry.delete("pods", "default", "web")
    assert marked["metadata"]["deletionTimestamp"] == "9999-12-31T23:59:59Z"
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 2**63 - 1
    registry.delete("pods", "default", "web", grace_period_seconds=0)
    with pytest.raises(errors.NotFound):
        registry.get("pods", "default", "web")


@pytest.mark.parametrize("grace", [2**63, 10**40, "30", [1], 1.5])
def test_a_grace_period_that_is_not_an_int64_is_a_bad_request_and_deletes_nothing(registry, grace):
    registry.create("pods", "default", pod_body())
    registry.bind("default", "web", "node-1")
    with pytest.raises(errors.BadRequest, match="gracePeriodSeconds: Invalid value"):
        registry.delete("pods", "default", "web", grace_period_seconds=grace)
    assert "deletionTimestamp" not in registry.get("pods", "default", "web")["metadata"]


def test_a_negative_grace_period_asked_for_becomes_one_second_as_in_kubernetes(registry):
    registry.create("pods", "default", pod_body(grace=20))
    registry.bind("default", "web", "node-1")
    marked = registry.delete("pods", "default", "web", grace_period_seconds=-5)
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 1
    assert marked["metadata"]["deletionTimestamp"] == "2027-01-15T08:00:01Z"
