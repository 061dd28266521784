"""`/metrics`: the API server's own metrics in Prometheus' text format, under kube-apiserver's names.

Prometheus, Grafana dashboards and `kubectl get --raw /metrics` read these. The request handler
reports every request once it is answered (`observe`): `apiserver_request_total` counts them by
verb, group, version, resource, subresource, scope and HTTP code, and
`apiserver_request_duration_seconds` is their latency histogram with kube-apiserver's buckets.
`apiserver_longrunning_requests` is the number of watches and streams open right now.
`apiserver_storage_objects` (objects per resource) and `apiserver_storage_size_bytes` (the sqlite
database's files) are read from the store when scraped. prometheus_client does the format; each
server has its own collector registry, so several servers in one process (the unit tests) do
not mix their figures. The process's CPU, memory and open files come with it.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from minikube_py import api

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
COMPONENT = "apiserver"
REQUEST_LABELS = ("verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component")
LONGRUNNING_LABELS = ("verb", "group", "version", "resource", "subresource", "scope", "component")
# kube-apiserver's buckets for apiserver_request_duration_seconds.
DURATION_BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
                    10.0, 15.0, 20.0, 30.0, 45.0, 60.0)
# Non-resource paths kube-apiserver reports under their own name (in the subresource label).
NAMED_PATHS = ("/healthz", "/livez", "/readyz", "/metrics")


class RequestLabels:
    """What one request was, in kube-apiserver's metric labels (verb in capitals: GET, LIST,
    WATCH, POST, PUT, PATCH, DELETE, DELETECOLLECTION, CONNECT)."""

    def __init__(self, verb: str, group: str = "", version: str = "", resource: str = "", subresource: str = "",
                 scope: str = "", dry_run: str = ""):
        self.verb, self.group, self.version = verb, group, version
        self.resource, self.subresource, self.scope, self.dry_run = resource, subresource, scope, dry_run

    @classmethod
    def of_path(cls, method: str, path: str) -> "RequestLabels":
        return cls(method, subresource=path if path in NAMED_PATHS else "")

    def request(self) -> dict[str, str]:
        return {"verb": self.verb, "dry_run": self.dry_run, "group": self.group, "version": self.version,
                "resource": self.resource, "subresource": self.subresource, "scope": self.scope,
                "component": COMPONENT}

    def longrunning(self) -> dict[str, str]:
        labels = self.request()
        labels.pop("dry_run")
        return labels


class StoreCollector(Collector):
    """Object counts per resource and the database's size, read from the store at scrape time."""

    def __init__(self, store):
        self._store = store

    def collect(self):
        objects = GaugeMetricFamily("apiserver_storage_objects",
                                    "Number of stored objects at the time of last check split by kind.",
                                    labels=["resource"])
        for info in api.RESOURCES.values():
            objects.add_metric([info.qualified_plural], self._store.count(info.plural))
        yield objects
        path = getattr(self._store, "path", None)
        if path and path != ":memory:":
            size = GaugeMetricFamily("apiserver_storage_size_bytes",
                                     "Size of the storage database file physically allocated in bytes.",
                                     labels=["storage_cluster_id"])
            total = sum(os.path.getsize(name) for name in (path, f"{path}-wal") if os.path.exists(name))
            size.add_metric([os.path.basename(path)], total)
            yield size


class ApiMetrics:
    """The metrics of one API server over `store` (None: a node's kubelet server, no store figures)."""

    def __init__(self, store):
        self.registry = CollectorRegistry()
        self._requests = Counter("apiserver_request_total",
                                 "Counter of apiserver requests broken out for each verb, dry run value, group, "
                                 "version, resource, scope, component, and HTTP response code.",
                                 [*REQUEST_LABELS, "code"], registry=self.registry)
        self._durations = Histogram("apiserver_request_duration_seconds",
                                    "Response latency distribution in seconds for each verb, dry run value, "
                                    "group, version, resource, subresource, scope and component.",
                                    REQUEST_LABELS, buckets=DURATION_BUCKETS, registry=self.registry)
        self._longrunning = Gauge("apiserver_longrunning_requests",
                                  "Gauge of all active long-running apiserver requests broken out by verb, group, "
                                  "version, resource, scope and component. Not all requests are tracked this way.",
                                  LONGRUNNING_LABELS, registry=self.registry)
        if store is not None:
            self.registry.register(StoreCollector(store))
        ProcessCollector(registry=self.registry)

    def observe(self, labels: RequestLabels, code: int, seconds: float) -> None:
        self._requests.labels(**labels.request(), code=str(code)).inc()
        self._durations.labels(**labels.request()).observe(seconds)

    @contextmanager
    def longrunning(self, labels: RequestLabels) -> Iterator[None]:
        """Counts a watch or stream as open while the block runs."""
        gauge = self._longrunning.labels(**labels.longrunning())
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
