"""The scheduling queue: activeQ by priority then queue time, back-off, unschedulable pods moved by events."""

from __future__ import annotations

import pytest

from controllers.scheduler_queue import SchedulingQueue, backoff_seconds
from minikube_py.clock import FakeClock


@pytest.fixture
def clock():
    return FakeClock()


def make_queue(clock, priorities=None):
    priorities = priorities if priorities is not None else {}
    return SchedulingQueue(clock, "test", priority_of=lambda key: priorities.get(key, 0))


def take(queue):
    key = queue.get(timeout=0)
    if key is not None:
        queue.done(key)
    return key


def attempt(queue, expected, unschedulable=True):
    """Take `expected` from activeQ and fail its attempt (no node fits)."""
    key = queue.get(timeout=0)
    assert key == expected
    if unschedulable:
        queue.add_unschedulable(key)
    queue.done(key)


def test_higher_priority_first_then_the_earliest_queued(clock):
    queue = make_queue(clock, {"default/urgent": 1000, "default/later-urgent": 1000, "default/mid": 10})
    for key in ("default/low-1", "default/mid", "default/urgent", "default/low-2"):
        queue.add(key)
        clock.advance(1)
    queue.add("default/later-urgent")

    assert [take(queue) for _ in range(6)] == [
        "default/urgent", "default/later-urgent", "default/mid", "default/low-1", "default/low-2", None]


def test_equal_priority_and_time_keeps_the_order_of_arrival(clock):
    queue = make_queue(clock)
    for index in range(5):
        queue.add(f"default/pod-{index}")
    assert [take(queue) for _ in range(5)] == [f"default/pod-{index}" for index in range(5)]


def test_adding_a_queued_pod_again_queues_it_once(clock):
    queue = make_queue(clock)
    queue.add("default/web")
    queue.add("default/web")
    assert len(queue) == 1
    assert [take(queue), take(queue)] == ["default/web", None]


def test_back_off_doubles_from_one_second_to_at_most_ten():
    assert [backoff_seconds(attempts) for attempts in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_an_unschedulable_pod_waits_for_a_cluster_event(clock):
    queue = make_queue(clock)
    queue.add("default/web")
    attempt(queue, "default/web")
    assert queue.where("default/web") == "unschedulable"

    clock.advance(60)
    queue.tick()
    assert take(queue) is None, "time alone does not bring it back before the leftover flush"

    assert queue.move_all() == 1
    assert queue.where("default/web") == "active", "its 1 s back-off is long over"
    assert take(queue) == "default/web"


def test_an_event_during_the_back_off_moves_the_pod_to_backoff_until_it_ends(clock):
    queue = make_queue(clock)
    queue.add("default/web")
    attempt(queue, "default/web")  # attempt 1 fails: back-off 1 s
    queue.move_all()
    assert queue.where("default/web") == "backoff"
    assert queue.tick() == 1.0
    assert take(queue) is None
    clock.advance(1)
    attempt(queue, "default/web")  # attempt 2 fails: back-off 2 s
    clock.advance(1)
    queue.move_all()
    assert queue.where("default/web") == "backoff"
    assert take(queue) is None, "1 s into a 2 s back-off"
    clock.advance(1)
    queue.tick()
    assert take(queue) == "default/web"


def test_the_back_off_grows_with_each_attempt_and_stops_at_ten_seconds(clock):
    queue = make_queue(clock)
    queue.add("default/web")
    waits = []
    for _ in range(6):
        key = queue.get(timeout=0)
        assert key == "default/web"
        queue.add_rate_limited(key)  # an API error: straight to backoffQ
        queue.done(key)
        assert queue.where(key) == "backoff"
        waits.append(queue.tick())
        clock.advance(waits[-1])
    assert waits == [1, 2, 4, 8, 10, 10]


def test_a_pod_that_fails_while_an_event_came_in_goes_to_backoff_not_unschedulable(clock):
    queue = make_queue(clock)
    queue.add("default/web")
    key = queue.get(timeout=0)
    queue.move_all()  # e.g. a node was added while the pod was being tried
    queue.add_unschedulable(key)
    queue.done(key)
    assert queue.where(key) == "backoff"
    clock.advance(1)
    queue.tick()
    assert take(queue) == "default/web"


def test_an_update_of_the_pod_during_its_attempt_brings_it_back(clock):
    queue = make_queue(clock)
    queue.add("default/web")
    key = queue.get(timeout=0)
    queue.add(key)  # its labels changed meanwhile
    assert queue.where(key) == "in flight"
    queue.done(key)
    assert take(queue) == "default/web"


def test_an_update_of_an_unschedulable_pod_moves_it(clock):
    queue = make_queue(clock)
    queue.add("default/web")
    attempt(queue, "default/web")
    clock.advance(5)
    queue.add("default/web")
    assert take(queue) == "default/web"


def test_move_all_moves_only_the_pods_chosen(clock):
    queue = make_queue(clock)
    for key in ("default/a", "default/b"):
        queue.add(key)
    attempt(queue, "default/a")
    attempt(queue, "default/b")
    clock.advance(2)
    assert queue.move_all(lambda key: key == "default/b") == 1
    assert (queue.where("default/a"), queue.where("default/b")) == ("unschedulable", "active")


def test_pods_unschedulable_for_five_minutes_are_flushed_back(clock):
    queue = make_queue(clock)
    queue.add("default/old")
    attempt(queue, "default/old")
    clock.advance(200)
    queue.add("default/new")
    attempt(queue, "default/new")
    assert queue.tick() == pytest.approx(100)
    clock.advance(100)
    queue.tick()
    assert queue.counts() == {"active": 1, "backoff": 0, "unschedulable": 1}
    assert take(queue) == "default/old"


def test_a_removed_pod_is_forgotten_everywhere(clock):
    queue = make_queue(clock)
    for key in ("default/a", "default/b", "default/c"):
        queue.add(key)
    attempt(queue, "default/a")
    key = queue.get(timeout=0)
    queue.add_rate_limited(key)
    queue.done(key)
    for key in ("default/a", "default/b", "default/c"):
        queue.remove(key)
    assert queue.counts() == {"active": 0, "backoff": 0, "unschedulable": 0}
    clock.advance(400)
    assert queue.tick() is None
    assert take(queue) is None


def test_a_delayed_add_joins_activeq_when_due(clock):
    queue = make_queue(clock, {"default/urgent": 5})
    queue.add("default/plain")
    queue.add_after("default/urgent", 1.0)
    clock.advance(1)
    queue.tick()
    assert [take(queue), take(queue)] == ["default/urgent", "default/plain"]


def test_a_pod_removed_during_its_attempt_is_not_queued_by_its_outcome(clock):
    queue = make_queue(clock)
    queue.add("default/web")
    key = queue.get(timeout=0)
    queue.remove(key)  # deleted while it was being tried
    queue.add_unschedulable(key)
    queue.done(key)
    assert queue.where(key) is None
    assert queue.counts() == {"active": 0, "backoff": 0, "unschedulable": 0}
