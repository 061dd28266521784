"""EventRecorder: Events as Kubernetes writes them, repeats folded into `count`, never raising."""

from __future__ import annotations

import threading

import pytest

from minikube_py.api import errors
from minikube_py.api.times import format_time
from minikube_py.client.events import EventRecorder


@pytest.fixture
def recorder(cluster):
    return EventRecorder(cluster.client, "replicaset-controller", cluster.clock, host="test-host")


def test_an_event_points_at_the_object_and_names_its_source(cluster, recorder):
    replica_set = cluster.replica_set("web", 1)

    recorder.event(replica_set, "Normal", "SuccessfulCreate", "Created pod: web-abcde")

    (event,) = cluster.list("events")
    involved = event.involved_object
    assert (involved.kind, involved.api_version, involved.namespace, involved.name, involved.uid,
            involved.resource_version) == ("ReplicaSet", "apps/v1", "default", "web", replica_set.metadata.uid,
                                           replica_set.metadata.resource_version)
    assert (event.type, event.reason, event.message, event.count) == (
        "Normal", "SuccessfulCreate", "Created pod: web-abcde", 1)
    assert event.source.component == event.reporting_component == "replicaset-controller"
    assert event.first_timestamp == event.last_timestamp == format_time(cluster.clock.now())
    assert event.metadata.name.startswith("web.")


def test_a_repeat_within_ten_minutes_bumps_the_count_of_the_same_event(cluster, recorder):
    pod = cluster.pod("web")
    recorder.event(pod, "Warning", "BackOff", "Back-off restarting failed container")
    first_time = format_time(cluster.clock.now())
    cluster.clock.advance(300)
    recorder.event(pod, "Warning", "BackOff", "Back-off restarting failed container")
    recorder.event(pod, "Normal", "Pulled", "Container image already present")

    events = {event.reason: event for event in cluster.list("events")}
    assert len(events) == 2
    assert events["BackOff"].count == 2
    assert events["BackOff"].first_timestamp == first_time
    assert events["BackOff"].last_timestamp == format_time(cluster.clock.now())
    assert events["Pulled"].count == 1


def test_a_repeat_hours_later_still_bumps_the_count_as_client_go_does(cluster, recorder):
    # A container that runs for a while between crashes repeats BackOff more than ten minutes
    # apart; kubectl describe shows such a crash loop as one row "(x3 over 2h)".
    pod = cluster.pod("web")
    recorder.event(pod, "Warning", "BackOff", "Back-off restarting failed container")
    cluster.clock.advance(601)
    recorder.event(pod, "Warning", "BackOff", "Back-off restarting failed container")
    cluster.clock.advance(7200)
    recorder.event(pod, "Warning", "BackOff", "Back-off restarting failed container")

    (event,) = cluster.list("events")
    assert event.count == 3
    assert event.last_timestamp == format_time(cluster.clock.now())


def test_identical_events_recorded_at_once_from_several_threads_make_one_counted_event(cluster, recorder):
    pod = cluster.pod("web")
    start = threading.Barrier(8)

    def record():
        start.wait()
        for _ in range(5):
            recorder.event(pod, "Warning", "BackOff", "Back-off restarting failed container")

    threads = [threading.Thread(target=record) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [(event.reason, event.count) for event in cluster.list("events")] == [("BackOff", 40)]


def test_a_repeat_of_a_deleted_event_creates_it_again(cluster, recorder):
    pod = cluster.pod("web")
    recorder.event(pod, "Normal", "Killing", "Stopping container main")
    (stored,) = cluster.list("events")
    cluster.registry.delete("events", "default", stored.metadata.name)

    recorder.event(pod, "Normal", "Killing", "Stopping container main")

    (again,) = cluster.list("events")
    assert again.count == 1 and again.metadata.name != stored.metadata.name


def test_events_about_nodes_live_in_the_default_namespace(cluster, recorder):
    node = cluster.add_node("node-1")

    recorder.event(node, "Normal", "NodeReady", "Node node-1 status is now: NodeReady")

    (event,) = cluster.list("events")
    assert event.metadata.namespace == "default"
    assert event.involved_object.namespace is None and event.involved_object.name == "node-1"


def test_recording_never_raises_and_logs_the_failure(cluster, recorder, caplog):
    pod = cluster.pod("web")
    create = cluster.registry.create

    def locked_for_events(resource, *args, **kwargs):
        if resource == "events":
            raise errors.ApiError("database is locked")
        return create(resource, *args, **kwargs)

    # The recorder writes the Event's wire dict straight through the client's transport.
    cluster.registry.create = locked_for_events

    recorder.event(pod, "Normal", "Scheduled", "Successfully assigned default/web to node-1")

    assert cluster.list("events") == []
    assert "could not record event Scheduled on Pod default/web: database is locked" in caplog.text


def test_a_slow_write_of_one_event_does_not_hold_up_events_about_other_objects(cluster, recorder):
    """A node starting many pods records three events per pod from many workers at once."""
    slow, fast = cluster.pod("slow"), cluster.pod("fast")
    create = cluster.registry.create
    release = threading.Event()

    def create_slowly_for_slow(resource, namespace, body, *args, **kwargs):
        if resource == "events" and body["involvedObject"]["name"] == "slow":
            assert release.wait(10), "never released"
        return create(resource, namespace, body, *args, **kwargs)

    cluster.registry.create = create_slowly_for_slow
    blocked = threading.Thread(target=recorder.event, args=(slow, "Normal", "Pulled", "image present"))
    blocked.start()
    try:
        done = threading.Thread(target=recorder.event, args=(fast, "Normal", "Pulled", "image present"))
        done.start()
        done.join(5)
        assert not done.is_alive(), "the other object's event waited for the slow write"
        assert [event.involved_object.name for event in cluster.list("events")] == ["fast"]
    finally:
        release.set()
        blocked.join(10)
    assert sorted(event.involved_object.name for event in cluster.list("events")) == ["fast", "slow"]
