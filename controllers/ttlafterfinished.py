"""The TTL-after-finished controller: deletes a finished Job `ttlSecondsAfterFinished` after it ended.

Follows k/k `pkg/controller/ttlafterfinished`: a Job that has a `Complete` or `Failed` condition
and a TTL expires at the condition's transition time plus the TTL. Until then its key waits in the
queue for the remaining time; once expired, one fresh read from the API (not the cache) confirms
the Job is still finished with the same TTL, and it is deleted with foreground propagation, so its
pods go first. A Job whose TTL is changed or removed before it expires is kept.
"""

from __future__ import annotations

from minikube_py.api import errors
from minikube_py.api.batch import Job
from minikube_py.api.times import parse_time
from minikube_py.client.api import Client
from minikube_py.client.controller import Controller
from minikube_py.client.informer import SharedInformers, cache_key, shared_informers, split_cache_key
from minikube_py.clock import Clock

COMPONENT = "ttl-after-finished-controller"


def expires_in(job: Job, now: float) -> float | None:
    """Seconds until the finished Job's TTL expires (<= 0: expired); None when it has no TTL or
    has not finished."""
    ttl = job.spec.ttl_seconds_after_finished
    finished = job.finished_condition()
    if ttl is None or finished is None or job.metadata.deletion_timestamp is not None:
        return None
    finished_at = parse_time(finished.last_transition_time) if finished.last_transition_time else now
    return finished_at + ttl - now


class TTLAfterFinishedController(Controller[str]):
    """Deletes finished Jobs whose TTL expired; keys are `namespace/name`."""

    def __init__(self, client: Client, clock: Clock | None = None, informers: SharedInformers | None = None,
                 workers: int = 1):
        super().__init__(COMPONENT, clock, workers)
        self.client = client
        informers = informers or shared_informers(client)
        self.jobs = self.watch(informers.informer("jobs"), on_add=self._job_changed,
                               on_update=lambda old, new: self._job_changed(new))

    def _job_changed(self, job: Job) -> None:
        if job.spec.ttl_seconds_after_finished is not None and job.is_finished():
            self.enqueue(cache_key(job))

    def sync(self, key: str) -> float | None:
        job = self.jobs.get(key)
        if job is None:
            return None
        remaining = expires_in(job, self.clock.now())
        if remaining is None:
            return None
        if remaining > 0:
            return remaining
        namespace, name = split_cache_key(key)
        try:
            fresh = self.client.get("jobs", name, namespace=namespace)
        except errors.NotFound:
            return None
        remaining = expires_in(fresh, self.clock.now())
        if remaining is None:
            return None
        if remaining > 0:
            return remaining
        try:
            self.client.delete("jobs", name, namespace=namespace, propagation_policy="Foreground",
                               preconditions={"uid": fresh.metadata.uid, "resourceVersion": fresh.metadata.resource_version})
        except errors.NotFound:
            pass
        return None
