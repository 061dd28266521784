"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection package does it
for kube-controller-manager and kube-scheduler.

Several daemons may serve one cluster (on one etcd store); the controllers and the scheduler must
run in exactly one of them at a time, or two ReplicaSet controllers would both create the missing
pod. Every candidate tries to take the Lease every `retry_period` seconds: it may when nobody holds
it, or when the holder has not renewed it for `lease_duration` seconds as this candidate observed
them pass on its own monotonic clock (so skewed wall clocks between hosts do not matter). Each
write is a compare-and-swap on the Lease's resourceVersion, so two candidates can never both win.
The leader renews every `retry_period`; if it has not managed to for `renew_deadline` seconds
(shorter than `lease_duration`), it stops leading before anyone else may start: leaderships never
overlap. A leader that stops cleanly gives the Lease up, so the next one need not wait.

The states are explicit: FOLLOWING (trying to acquire) and LEADING (renewing);
`on_started_leading` runs on FOLLOWING -> LEADING and `on_stopped_leading` on LEADING -> FOLLOWING,
from the elector's own thread.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from minikube_py.api import errors
from minikube_py.api.coordination import Lease, LeaseSpec
from minikube_py.api.meta import ObjectMeta
from minikube_py.client.api import Client
from minikube_py.clock import Clock

log = logging.getLogger(__name__)

FOLLOWING, LEADING = "following", "leading"
JITTER = 1.2  # client-go's JitterFactor: a follower waits retry_period * (1 .. 1 + 1.2)


@dataclass(frozen=True)
class LeaderElectionTimings:
    """kube-controller-manager's defaults: --leader-elect-lease-duration 15s,
    --leader-elect-renew-deadline 10s, --leader-elect-retry-period 2s."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError("leader election needs 0 < retry period < renew deadline < lease duration, got "
                             f"{self.retry_period}, {self.renew_deadline}, {self.lease_duration}")


def micro_time(epoch: float) -> str:
    """A MicroTime: RFC 3339 with microseconds, as Lease times are written."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Competes for the Lease `namespace/name` as `identity`; `run()` starts its thread, `stop()`
    ends it (leaving leadership and giving the Lease up when `release`)."""

    def __init__(self, client: Client, namespace: str, name: str, identity: str,
                 on_started_leading: Callable[[], None], on_stopped_leading: Callable[[], None],
                 clock: Clock | None = None, timings: LeaderElectionTimings | None = None):
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.clock = clock or Clock()
        self.timings = timings or LeaderElectionTimings()
        self.state = FOLLOWING
        self._observed: tuple[str, str] | None = None  # (resourceVersion, holder) last seen
        self._observed_at = 0.0  # monotonic time it was first seen
        self._renewed_at = 0.0  # monotonic time of this leader's last successful renewal
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        return self.state == LEADING

    # -- one round ---------------------------------------------------------------------------

    def try_acquire_or_renew(self) -> bool:
        """One attempt: True if this candidate holds the Lease now (it took or renewed it)."""
        now, seen_at = self.clock.now(), self.clock.monotonic()
        try:
            current = self.client.get("leases", self.name, self.namespace)
        except errors.NotFound:
            return self._write(Lease(metadata=ObjectMeta(name=self.name, namespace=self.namespace), spec=LeaseSpec(
                holder_identity=self.identity, lease_duration_seconds=round(self.timings.lease_duration),
                acquire_time=micro_time(now), renew_time=micro_time(now), lease_transitions=0)), create=True)
        except errors.ApiError as error:
            log.warning("leader election: reading lease %s/%s failed: %s", self.namespace, self.name, error.message)
            return False
        spec = current.spec
        holder = spec.holder_identity or ""
        observed = (current.metadata.resource_version or "", holder)
        if observed != self._observed:
            self._observed, self._observed_at = observed, seen_at
        duration = spec.lease_duration_seconds or self.timings.lease_duration
        if holder and holder != self.identity and seen_at < self._observed_at + duration:
            return False  # someone else holds it and has renewed within the lease duration
        taking_over = holder != self.identity
        current.spec = LeaseSpec(
            holder_identity=self.identity, lease_duration_seconds=round(self.timings.lease_duration),
            acquire_time=micro_time(now) if taking_over else spec.acquire_time, renew_time=micro_time(now),
            lease_transitions=(spec.lease_transitions or 0) + (1 if taking_over and holder else 0))
        return self._write(current, create=False)

    def _write(self, lease: Lease, create: bool) -> bool:
        try:
            written = self.client.create(lease) if create else self.client.replace(lease)
        except (errors.Conflict, errors.AlreadyExists):
            return False  # another candidate wrote first: it won this round
        except errors.ApiError as error:
            log.warning("leader election: writing lease %s/%s failed: %s", self.namespace, self.name, error.message)
            return False
        self._observed = (written.metadata.resource_version or "", self.identity)
        self._observed_at = self.clock.monotonic()
        return True

    def step(self) -> None:
        """One round of the state machine (the thread's loop body; tests call it directly)."""
        held = self._renew_within_deadline() if self.state == LEADING else self.try_acquire_or_renew()
        if self.state == FOLLOWING and held:
            self.state, self._renewed_at = LEADING, self.clock.monotonic()
            log.info("leader election: %s became the leader (lease %s/%s)", self.identity, self.namespace, self.name)
            self.on_started_leading()
        elif self.state == LEADING and held:
            self._renewed_at = self.clock.monotonic()
        elif self.state == LEADING and self.clock.monotonic() - self._renewed_at >= self.timings.renew_deadline:
            self._stop_leading("could not renew the lease within the renew deadline")

    def _renew_within_deadline(self) -> bool:
        """A leader's renewal, given only until its renew deadline: a write still in flight then
        (a slow or partitioned store) must not keep it leading past the point where another
        candidate may take over, as client-go bounds each renewal with the renew deadline."""
        left = self.timings.renew_deadline - (self.clock.monotonic() - self._renewed_at)
        outcome: list[bool] = []

        def renew() -> None:
            try:
                outcome.append(self.try_acquire_or_renew())
            except Exception as error:  # an abandoned attempt must not die with a traceback
                log.warning("leader election: renewing lease %s/%s failed: %s", self.namespace, self.name, error)

        attempt = threading.Thread(target=renew, name=f"leader-election-renew-{self.name}", daemon=True)
        attempt.start()
        attempt.join(max(0.0, left))
        return bool(outcome and outcome[0])

    def _stop_leading(self, why: str) -> None:
        self.state = FOLLOWING
        log.warning("leader election: %s stopped leading: %s", self.identity, why)
        self.on_stopped_leading()

    # -- lifetime ----------------------------------------------------------------------------

    def run(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"leader-election-{self.name}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.step()
            except Exception:  # the elector must outlive any one failure
                log.exception("leader election round failed; trying again")
            wait = self.timings.retry_period
            if self.state == FOLLOWING:
                wait *= 1 + random.random() * JITTER
            self._stopping.wait(wait)

    def stop(self, release: bool = True) -> None:
        """Stop competing; a leader stops leading and, with `release`, gives the Lease up (an
        empty holder), so another candidate takes it at once rather than after the duration."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.state == LEADING:
            self._stop_leading("stopping")
            if release:
                self._release()

    def _release(self) -> None:
        try:
            current = self.client.get("leases", self.name, self.namespace)
            if current.spec.holder_identity == self.identity:
                current.spec.holder_identity = None
                current.spec.lease_duration_seconds = 1
                self.client.replace(current)
        except errors.ApiError as error:
            log.warning("leader election: giving up lease %s/%s failed: %s", self.namespace, self.name, error.message)
