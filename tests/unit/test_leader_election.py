"""Leader election on a coordination.k8s.io/v1 Lease: one leader at a time, hand-over after the
lease duration when the leader dies, at once when it steps down, and never two leaders; on one
API (fake clock) and between two API servers on one etcd (real time)."""

from __future__ import annotations

import time

import pytest

from minikube_py.api import errors
from minikube_py.apiserver.registry import Registry
from minikube_py.client.api import ApiClient
from minikube_py.client.leaderelection import LEADING, LeaderElectionTimings, LeaderElector
from minikube_py.clock import FakeClock
from minikube_py.store import Store
from tests.etcd_cluster import wait_until

TIMINGS = LeaderElectionTimings(lease_duration=15, renew_deadline=10, retry_period=2)


class Candidate:
    """An elector plus the record of what its callbacks saw."""

    def __init__(self, client, identity: str, clock, timings=TIMINGS, log: list | None = None):
        self.log = log if log is not None else []
        self.elector = LeaderElector(client, "kube-system", "minikube-py-controller-manager", identity,
                                     on_started_leading=lambda: self.log.append(("start", identity, time.monotonic())),
                                     on_stopped_leading=lambda: self.log.append(("stop", identity, time.monotonic())),
                                     clock=clock, timings=timings)


@pytest.fixture
def api():
    clock = FakeClock()
    store = Store(":memory:")
    yield ApiClient.local(Registry(store, clock=clock)), clock
    store.close()


def lease(client):
    return client.get("leases", "minikube-py-controller-manager", "kube-system")


def test_the_first_candidate_takes_the_lease_and_the_second_follows(api):
    client, clock = api
    first, second = Candidate(client, "a", clock), Candidate(client, "b", clock)
    first.elector.step()
    second.elector.step()
    assert first.elector.state == LEADING and not second.elector.is_leader
    held = lease(client)
    assert (held.spec.holder_identity, held.spec.lease_duration_seconds, held.spec.lease_transitions) == ("a", 15, 0)
    assert held.spec.acquire_time == held.spec.renew_time and held.spec.renew_time.endswith("Z")
    clock.advance(2)
    first.elector.step()
    assert lease(client).spec.renew_time != held.spec.renew_time
    assert lease(client).spec.acquire_time == held.spec.acquire_time


def test_a_dead_leaders_lease_is_taken_over_only_after_the_lease_duration(api):
    client, clock = api
    first, second = Candidate(client, "a", clock), Candidate(client, "b", clock)
    first.elector.step()
    second.elector.step()  # b observes a's lease now
    clock.advance(14)  # a is dead: no renewal
    second.elector.step()
    assert not second.elector.is_leader
    clock.advance(1.5)
    second.elector.step()
    assert second.elector.is_leader
    held = lease(client)
    assert (held.spec.holder_identity, held.spec.lease_transitions) == ("b", 1)


def test_a_leader_that_cannot_renew_steps_down_before_anyone_may_take_over(api):
    client, clock = api
    first, second = Candidate(client, "a", clock), Candidate(client, "b", clock)
    first.elector.step()
    second.elector.step()
    original_replace = client.raw.replace

    def partitioned(*args, **kwargs):
        raise errors.ServiceUnavailable("etcd has no quorum")

    client.raw.replace = partitioned  # a's renewals fail from now on
    for _ in range(4):
        clock.advance(2)
        first.elector.step()
    assert first.elector.is_leader, "8 s without renewing: still within the 10 s renew deadline"
    clock.advance(2)
    first.elector.step()
    assert not first.elector.is_leader and first.log[-1][:2] == ("stop", "a")
    client.raw.replace = original_replace
    clock.advance(4.5)  # 14.5 s since b saw a's last renewal: not yet
    second.elector.step()
    assert not second.elector.is_leader
    clock.advance(1)
    second.elector.step()
    assert second.elector.is_leader


def test_a_leader_stepping_down_gives_the_lease_up_at_once(api):
    client, clock = api
    first, second = Candidate(client, "a", clock), Candidate(client, "b", clock)
    first.elector.step()
    second.elector.step()
    first.elector.stop(release=True)
    assert first.log[-1][:2] == ("stop", "a")
    clock.advance(1.5)  # the released lease lasts 1 s
    second.elector.step()
    assert second.elector.is_leader


def test_timings_must_leave_room_to_step_down_before_a_takeover():
    with pytest.raises(ValueError, match="retry period < renew deadline < lease duration"):
        LeaderElectionTimings(lease_duration=10, renew_deadline=10, retry_period=2)


def test_two_api_servers_on_one_etcd_hand_over_when_the_leader_dies_and_never_overlap(etcd_single):
    from minikube_py.store.etcd import EtcdStore

    # Real time on a machine that may be loaded: a lease long enough that a leader renewing every
    # 0.2 s does not lose it to a slow write; the checks below hold whatever the timing.
    timings = LeaderElectionTimings(lease_duration=3, renew_deadline=2, retry_period=0.2)
    log: list = []
    name = f"elect{time.monotonic_ns() % 10**6}"
    with EtcdStore(etcd_single.endpoints, name) as one, EtcdStore(etcd_single.endpoints, name) as two:
        clients = [ApiClient.local(Registry(store)) for store in (one, two)]
        candidates = [Candidate(client, identity, None, timings, log)
                      for client, identity in zip(clients, ("server-1", "server-2"), strict=True)]
        for candidate in candidates:
            candidate.elector.run()
        assert wait_until(lambda: any(c.elector.is_leader for c in candidates), timeout=30)
        leader = next(c for c in candidates if c.elector.is_leader)
        other = next(c for c in candidates if c is not leader)
        # The leader renews (three renewals seen by the other's API server) while the other follows.
        renewals = set()

        def three_renewals_seen() -> bool:
            try:
                renewals.add(lease(clients[candidates.index(other)]).metadata.resource_version)
            except errors.NotFound:
                pass  # the other API server's mirror of etcd has not seen the Lease yet
            return len(renewals) >= 3

        assert wait_until(three_renewals_seen, timeout=30)
        leader.elector._stopping.set()  # the leader dies: no more renewals, no release
        leader.elector._thread.join()
        last_renewal = leader.elector._renewed_at
        assert wait_until(lambda: other.elector.is_leader, timeout=30)
        other.elector.stop()
        starts = [entry for entry in log if entry[0] == "start"]
        assert [entry[1] for entry in starts] == [leader.elector.identity, other.elector.identity], log
        # Nobody took over before the dead leader would have stepped down (renew deadline after
        # its last renewal): the two leaderships never overlapped.
        assert starts[1][2] - last_renewal >= timings.renew_deadline


def test_a_leader_whose_renewal_hangs_steps_down_at_the_renew_deadline(api):
    """A renewal still in flight at the renew deadline (a store that does not answer) ends the
    leadership then, not when the write finally returns."""
    import threading

    client, _ = api
    timings = LeaderElectionTimings(lease_duration=3, renew_deadline=0.5, retry_period=0.1)
    leader = Candidate(client, "a", None, timings)
    leader.elector.step()
    assert leader.elector.is_leader
    release = threading.Event()
    original_get = client.raw.get
    client.raw.get = lambda *args, **kwargs: release.wait(10) and original_get(*args, **kwargs)
    try:
        started = time.monotonic()
        leader.elector.step()  # the renewal hangs in the store
        assert not leader.elector.is_leader and leader.log[-1][:2] == ("stop", "a")
        assert time.monotonic() - started < 5, "it stopped at the deadline, not when the store answered"
    finally:
        release.set()
        client.raw.get = original_get
        for thread in threading.enumerate():
            if thread.name.startswith("leader-election-renew-"):
                thread.join(10)
