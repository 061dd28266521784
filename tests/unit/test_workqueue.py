"""The work queue keeps client-go's guarantees: dedup, one worker per key, delayed and back-off adds."""

from __future__ import annotations

import threading
import time

import pytest

from minikube_py.client.controller import Controller
from minikube_py.client.workqueue import WorkQueue
from minikube_py.clock import FakeClock


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def queue(clock):
    return WorkQueue(clock, "test")


def test_adding_a_waiting_key_again_is_a_no_op(queue):
    queue.add("default/a")
    queue.add("default/b")
    queue.add("default/a")

    assert len(queue) == 2
    assert queue.get(0) == "default/a"
    assert queue.get(0) == "default/b"
    assert queue.get(0) is None


def test_a_key_added_while_processing_is_handed_out_again_only_after_done(queue):
    queue.add("default/a")
    key = queue.get(0)
    queue.add("default/a")

    assert queue.get(0) is None, "a key being processed must not go to a second worker"
    queue.done(key)
    assert queue.get(0) == "default/a"


def test_done_without_a_new_add_does_not_requeue(queue):
    queue.add("default/a")
    queue.done(queue.get(0))

    assert len(queue) == 0


def test_add_after_waits_for_the_clock(queue, clock):
    queue.add_after("default/a", 10)

    assert queue.get(0) is None
    clock.advance(9.9)
    assert queue.tick() == pytest.approx(0.1)
    assert len(queue) == 0
    clock.advance(0.2)
    assert queue.tick() is None
    assert queue.get(0) == "default/a"


def test_add_after_keeps_the_earliest_time_for_a_key(queue, clock):
    queue.add_after("default/a", 10)
    queue.add_after("default/a", 2)
    queue.add_after("default/a", 30)

    clock.advance(2)
    assert queue.get(0) == "default/a"
    queue.done("default/a")
    clock.advance(30)
    assert queue.get(0) is None, "the later duplicate times were folded into the earliest"


def test_add_after_a_non_positive_delay_adds_at_once(queue):
    queue.add_after("default/a", 0)

    assert queue.get(0) == "default/a"


def test_rate_limited_adds_back_off_exponentially_per_key(queue, clock):
    delays = []
    for _ in range(4):
        queue.add_rate_limited("default/a")
        delays.append(queue.tick())
        clock.advance(delays[-1])
        assert queue.get(0) == "default/a"
        queue.done("default/a")

    assert delays == pytest.approx([0.005, 0.01, 0.02, 0.04], abs=1e-6)
    assert queue.num_requeues("default/a") == 4
    assert queue.num_requeues("default/b") == 0


def test_rate_limit_is_capped(clock):
    queue = WorkQueue(clock, "capped", retry_max_delay=0.02)
    delays = []
    for _ in range(6):
        queue.add_rate_limited("default/a")
        delays.append(queue.tick())
        clock.advance(delays[-1])
        queue.done(queue.get(0))

    assert delays == pytest.approx([0.005, 0.01, 0.02, 0.02, 0.02, 0.02], abs=1e-6)


def test_default_back_off_cap_is_1000_seconds_and_survives_huge_retry_counts(clock, queue):
    for _ in range(2000):
        queue.add_rate_limited("default/a")

    assert queue.num_requeues("default/a") == 2000
    clock.advance(0.005)
    assert queue.get(0) == "default/a", "the earliest pending retry wins over later ones"
    queue.done("default/a")
    queue.add_rate_limited("default/a")
    assert queue.tick() == pytest.approx(1000.0, abs=1e-6)


def test_forget_resets_the_back_off(queue):
    queue.add_rate_limited("default/a")
    queue.add_rate_limited("default/a")
    queue.forget("default/a")

    assert queue.num_requeues("default/a") == 0


def test_get_blocks_until_a_key_is_added(queue):
    received = []
    worker = threading.Thread(target=lambda: received.append(queue.get(timeout=5)))
    worker.start()
    queue.add("default/a")
    worker.join(5)

    assert received == ["default/a"]


def test_a_waiting_worker_wakes_when_a_delayed_key_comes_due():
    queue = WorkQueue(name="real-clock")
    queue.add_after("default/a", 0.05)
    started = time.monotonic()

    assert queue.get(timeout=5) == "default/a"
    assert time.monotonic() - started >= 0.04


def test_get_with_a_timeout_returns_none_on_a_fake_clock(queue):
    started = time.monotonic()

    assert queue.get(timeout=0.05) is None
    assert time.monotonic() - started < 2


def test_shut_down_releases_waiting_workers_and_refuses_new_keys(queue):
    received = []
    worker = threading.Thread(target=lambda: received.append(queue.get(timeout=5)))
    worker.start()
    queue.shut_down()
    worker.join(5)
    queue.add("default/a")

    assert received == [None]
    assert queue.shutting_down
    assert len(queue) == 0


def test_many_workers_never_hold_the_same_key_at_once():
    queue = WorkQueue(name="concurrent")
    holders: dict[str, int] = {}
    overlaps = []
    lock = threading.Lock()
    handled = []

    def work():
        while (key := queue.get(timeout=0.05)) is not None:
            with lock:
                holders[key] = holders.get(key, 0) + 1
                if holders[key] > 1:
                    overlaps.append(key)
            time.sleep(0.001)  # hold the key long enough for others to try to take it
            with lock:
                holders[key] -= 1
                handled.append(key)
            queue.done(key)

    workers = [threading.Thread(target=work) for _ in range(4)]
    for worker in workers:
        worker.start()
    for _ in range(50):
        for key in ("a", "b", "c"):
            queue.add(key)
    for worker in workers:
        worker.join(10)

    assert overlaps == []
    assert set(handled) == {"a", "b", "c"}


class _CountingController(Controller):
    def __init__(self, clock, outcomes):
        super().__init__("counting", clock)
        self.outcomes = outcomes
        self.synced = []

    def sync(self, key):
        self.synced.append(key)
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def test_controller_retries_a_failed_sync_with_back_off_then_forgets_on_success(clock):
    controller = _CountingController(clock, [RuntimeError("boom"), RuntimeError("boom"), None])
    controller.enqueue("default/a")

    assert controller.drain() == 1
    assert controller.queue.num_requeues("default/a") == 1
    clock.advance(0.005)
    assert controller.drain() == 1
    clock.advance(0.01)
    assert controller.drain() == 1
    assert controller.synced == ["default/a"] * 3
    assert controller.queue.num_requeues("default/a") == 0


def test_controller_requeues_after_the_seconds_sync_returns(clock):
    controller = _CountingController(clock, [7.5, None])
    controller.enqueue("default/a")

    controller.drain()
    clock.advance(7)
    assert controller.drain() == 0
    clock.advance(0.5)
    assert controller.drain() == 1


class _SlowController(Controller):
    """Each sync of a key takes `seconds` of the fake clock."""

    pace_slow_syncs = True

    def __init__(self, clock, seconds):
        super().__init__("slow", clock)
        self.seconds = seconds
        self.synced = []

    def sync(self, key):
        self.synced.append(key)
        self.clock.advance(self.seconds)


def test_a_paced_controller_waits_ten_times_as_long_as_a_slow_sync_took_before_syncing_its_key_again(clock):
    controller = _SlowController(clock, 0.02)
    controller.enqueue("default/a")
    assert controller.drain() == 1
    controller.enqueue("default/a")
    assert controller.drain() == 0
    clock.advance(0.199)
    assert controller.drain() == 0
    clock.advance(0.001)
    assert controller.drain() == 1 and controller.synced == ["default/a", "default/a"]


class _ActingController(_SlowController):
    """Reads for `seconds`, then acts (creates pods, say) for ten times as long."""

    def sync(self, key):
        super().sync(key)
        with self.unpaced():
            self.clock.advance(10 * self.seconds)


def test_time_spent_acting_does_not_count_towards_pacing(clock):
    controller = _ActingController(clock, 0.02)
    controller.enqueue("default/a")
    assert controller.drain() == 1
    controller.enqueue("default/a")
    clock.advance(0.2)  # ten times the reading alone, though the whole sync took 0.22 s
    assert controller.drain() == 1


def test_fast_syncs_are_never_paced(clock):
    controller = _SlowController(clock, 0.0009)
    for _ in range(3):
        controller.enqueue("default/a")
        assert controller.drain() == 1
    assert controller.synced == ["default/a"] * 3


def test_controller_drops_a_key_after_15_failed_retries(clock, caplog):
    controller = _CountingController(clock, [RuntimeError("always")] * 100)
    controller.enqueue("default/a")

    for _ in range(16):
        controller.drain()
        clock.advance(2000)

    assert len(controller.synced) == 16
    assert controller.queue.pending_delayed() == 0
    assert controller.queue.num_requeues("default/a") == 0
    assert "dropping default/a out of the queue after 16 failed syncs" in caplog.text


def test_controller_workers_sync_keys_until_stopped():
    controller = _CountingController(None, [])
    controller.workers = 2
    controller.run()
    controller.enqueue("default/a")
    deadline = time.monotonic() + 5
    while not controller.synced and time.monotonic() < deadline:
        time.sleep(0.005)
    controller.stop()

    assert controller.synced == ["default/a"]
    assert all(not thread.is_alive() for thread in threading.enumerate() if thread.name.startswith("counting-worker"))


def test_a_key_due_in_the_far_future_does_not_break_waiting():
    """A delay beyond threading.TIMEOUT_MAX (a grace period of 1e20 s) must not kill a worker in get()."""
    import threading

    from minikube_py.client.workqueue import WorkQueue

    queue = WorkQueue()
    queue.add_after("far", 1e20)
    got = []
    worker = threading.Thread(target=lambda: got.append(queue.get()), daemon=True)
    worker.start()
    worker.join(0.2)
    queue.add("near")
    worker.join(5)
    assert got == ["near"]
