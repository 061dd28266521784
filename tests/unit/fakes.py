"""Test doubles for controller unit tests: the real API in memory, recorded and fault-injected.

The best fake API is the real one: a `Registry` over an in-memory `Store` with a `FakeClock`,
behind the real in-process `ApiClient`. `RecordingClient` wraps that client, records every
write a controller makes (create, delete, patch, bind, ...) and can make chosen calls fail.
`FakeCluster` puts them together with shared informers, plus helpers that set the scene through
the Registry directly (so the scene itself is not recorded): namespaces' objects, nodes, pod
status. Tests drive controllers synchronously: `cluster.refresh()` then `controller.drain()`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from minikube_py import api
from minikube_py.api.times import format_time
from minikube_py.apiserver.registry import Registry
from minikube_py.client.api import ApiClient
from minikube_py.client.informer import SharedInformers
from minikube_py.clock import FakeClock
from minikube_py.store import Store

RECORDED_METHODS = ("create", "replace", "patch", "replace_status", "patch_status", "bind", "delete")


@dataclass
class Call:
    method: str
    resource: str
    namespace: str | None
    name: str | None
    detail: Any = None


@dataclass
class _Fault:
    method: str
    resource: str | None
    error: Exception
    skip: int
    times: int


def _describe_call(method: str, args: tuple, kwargs: dict) -> Call:
    if method in ("create", "replace", "replace_status"):
        obj = args[0]
        resource = api.resource_for_kind(obj.api_version, obj.kind).plural
        return Call(method, resource, obj.metadata.namespace, obj.metadata.name, obj)
    if method == "bind":
        namespace, name, node_name = (list(args) + [None] * 3)[:3]
        namespace = kwargs.get("namespace", namespace)
        name = kwargs.get("name", name)
        node_name = kwargs.get("node_name", node_name)
        return Call(method, "pods", namespace, name, node_name)
    resource, name = args[0], args[1] if len(args) > 1 else kwargs.get("name")
    namespace = kwargs.get("namespace")
    if method in ("patch", "patch_status"):
        patch = args[2] if len(args) > 2 else kwargs.get("patch")
        namespace = namespace if namespace is not None else (args[3] if len(args) > 3 else None)
        return Call(method, resource, namespace, name, patch)
    namespace = namespace if namespace is not None else (args[2] if len(args) > 2 else None)
    return Call(method, resource, namespace, name, kwargs.get("propagation_policy"))


class RecordingClient:
    """An ApiClient that records its writes and fails the calls a test asks it to."""

    def __init__(self, client: Any):
        self._client = client
        self.calls: list[Call] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        for method in RECORDED_METHODS:
            setattr(self, method, self._recorded(method))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def fail(self, method: str, error: Exception, times: int = 1, skip: int = 0, resource: str | None = None) -> None:
        """Make `times` calls of `method` (on `resource`, if given) raise `error`, after letting
        `skip` matching calls through."""
        with self._lock:
            self._faults.append(_Fault(method, resource, error, skip, times))

    def _recorded(self, method: str):
        def call(*args, **kwargs):
            described = _describe_call(method, args, kwargs)
            with self._lock:
                self.calls.append(described)
                error = self._take_fault(described)
            if error is not None:
                raise error
            return getattr(self._client, method)(*args, **kwargs)

        return call

    def _take_fault(self, call: Call) -> Exception | None:
        for fault in self._faults:
            if fault.method != call.method or (fault.resource and fault.resource != call.resource):
                continue
            if fault.skip > 0:
                fault.skip -= 1
                return None
            if fault.times > 0:
                fault.times -= 1
                return fault.error
        return None

    def calls_of(self, method: str, resource: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and (resource is None or c.resource == resource)]

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()


def _condition(condition_type: str, status: bool, since: float) -> dict:
    return {"type": condition_type, "status": "True" if status else "False",
            "lastTransitionTime": format_time(since)}


# What a node reports by default: room for many pods without resources.
NODE_ALLOCATABLE = {"cpu": "4", "memory": "8Gi", "pods": "110"}


class FakeCluster:
    """A Registry in memory, a recording client over it and shared informers, on a FakeClock."""

    def __init__(self):
        self.clock = FakeClock()
        self.store = Store(":memory:")
        self.registry = Registry(self.store, clock=self.clock)
        self.client = RecordingClient(ApiClient.local(self.registry))
        self.informers = SharedInformers(self.client)

    def close(self) -> None:
        self.informers.stop()
        self.store.close()

    def refresh(self) -> None:
        """Bring every informer cache up to date with the Registry."""
        self.informers.refresh()

    def settle(self, controller, rounds: int = 20) -> None:
        """Let caches catch up and the controller's queue empty, as the threads would (no time passes)."""
        for _ in range(rounds):
            self.refresh()
            if controller.drain() == 0:
                return

    # -- scene setting through the Registry (not recorded) -------------------------------------

    def create(self, resource: str, body: dict, namespace: str | None = "default") -> Any:
        wire = self.registry.create(resource, namespace, body)
        return api.RESOURCES[resource].model.model_validate(wire)

    def get(self, resource: str, name: str, namespace: str | None = "default") -> Any | None:
        try:
            wire = self.registry.get(resource, namespace, name)
        except api.errors.NotFound:
            return None
        return api.RESOURCES[resource].model.model_validate(wire)

    def list(self, resource: str, namespace: str | None = "default") -> list[Any]:
        model = api.RESOURCES[resource].model
        return [model.model_validate(item) for item in self.registry.list(resource, namespace)["items"]]

    def add_node(self, name: str = "node-1", ready: bool = True, labels: dict | None = None,
                 unschedulable: bool = False, allocatable: dict | None = None) -> Any:
        body = {"metadata": {"name": name, "labels": labels or {}},
                "spec": {"unschedulable": unschedulable} if unschedulable else {},
                "status": {"conditions": [_condition("Ready", ready, self.clock.now())],
                           "allocatable": dict(allocatable or NODE_ALLOCATABLE)}}
        return self.create("nodes", body, namespace=None)

    def replica_set(self, name: str, replicas: int, labels: dict | None = None, min_ready_seconds: int = 0,
                    owner: Any = None) -> Any:
        labels = labels or {"app": name}
        metadata: dict = {"name": name}
        if owner is not None:
            metadata["ownerReferences"] = [{
                "apiVersion": owner.api_version, "kind": owner.kind, "name": owner.metadata.name,
                "uid": owner.metadata.uid, "controller": True, "blockOwnerDeletion": True}]
        return self.create("replicasets", {
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": metadata,
            "spec": {"replicas": replicas, "minReadySeconds": min_ready_seconds,
                     "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "main", "image": "busybox"}]}}},
        })

    def pod(self, name: str, labels: dict | None = None, owner: Any = None, node_name: str | None = None,
            block_owner_deletion: bool = True, annotations: dict | None = None) -> Any:
        metadata: dict = {"name": name, "labels": labels or {}}
        if annotations:
            metadata["annotations"] = annotations
        if owner is not None:
            metadata["ownerReferences"] = [{
                "apiVersion": owner.api_version, "kind": owner.kind, "name": owner.metadata.name,
                "uid": owner.metadata.uid, "controller": True, "blockOwnerDeletion": block_owner_deletion}]
        spec: dict = {"containers": [{"name": "main", "image": "busybox"}]}
        if node_name:
            spec["nodeName"] = node_name
        return self.create("pods", {"metadata": metadata, "spec": spec})

    def set_pod_status(self, name: str, phase: str = "Running", ready: bool = True,
                       ready_since: float | None = None, restarts: int = 0, namespace: str = "default") -> Any:
        """Write what a node agent would: phase, Ready condition (since `ready_since`, default now)."""
        since = self.clock.now() if ready_since is None else ready_since
        status = {
            "phase": phase,
            "conditions": [_condition("Ready", ready, since)],
            "containerStatuses": [{"name": "main", "ready": ready, "restartCount": restarts, "image": "busybox"}],
        }
        wire = self.registry.patch_status("pods", namespace, name, {"status": status})
        return api.Pod.model_validate(wire)
