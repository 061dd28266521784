"""The typed API client: models in, models out, over any transport.

Controllers, the agent and the CLI talk to the API through `ApiClient`. Its transport is either
the `Registry` itself (in the daemon: no serialisation, no socket) or an `HttpTransport` (the CLI,
a remote agent); both take and return wire dicts with the same method names, and `client.raw`
exposes them for code that wants dicts. Here the dicts become `api` models, with the resource,
name and namespace taken from the model where it has them. `Client` is the protocol the
controllers are written against (`ApiClient` is it; unit tests wrap one to record calls).
"""

from __future__ import annotations

import builtins
import os
from dataclasses import dataclass
from typing import Any, Callable, Protocol, TypeVar

from minikube_py import api
from minikube_py.api.metrics import NodeMetrics, PodMetrics
from minikube_py.api.watch import EventStream
from minikube_py.client.transport import HttpTransport


class ApiObject(Protocol):
    """A top-level API object's model (`Pod`, `ReplicaSet`, ...): it names its kind and itself."""

    api_version: str
    kind: str
    metadata: api.ObjectMeta

    def to_dict(self) -> dict[str, Any]: ...


# An object of any kind: what `create`/`replace` take they give back, as the server stored it.
ModelT = TypeVar("ModelT", bound=ApiObject)


@dataclass(frozen=True)
class WatchEvent:
    """`type` is ADDED, MODIFIED, DELETED or ERROR; `object` is the model (for ERROR, the
    Status dict)."""

    type: str
    object: Any


def _info(resource: str) -> api.ResourceInfo:
    info = api.RESOURCES.get(resource)
    return info if info is not None else api.resource_for(resource)


def _info_of(obj: Any) -> api.ResourceInfo:
    return api.resource_for_kind(obj.api_version, obj.kind)


def _model(info: api.ResourceInfo, data: dict[str, Any]) -> Any:
    return info.model.model_validate(data)


class ModelWatch(EventStream):
    """A transport watch whose events carry models. Iterate, or `next(timeout)`; `close()`."""

    def __init__(self, info: api.ResourceInfo, watch: EventStream) -> None:
        self._info = info
        self._watch = watch

    def next(self, timeout: float | None = None) -> WatchEvent | None:
        event = self._watch.next(timeout)
        if event is None:
            return None
        if event["type"] == "ERROR":
            return WatchEvent("ERROR", event["object"])
        return WatchEvent(event["type"], _model(self._info, event["object"]))

    def close(self) -> None:
        self._watch.close()

    @property
    def closed(self) -> bool:
        return bool(getattr(self._watch, "closed", False))

    def on_ready(self, callback: Callable[[], None] | None) -> bool:
        """Ask the underlying stream to call `callback` whenever `next(0)` may return something;
        False if it cannot (a watch over HTTP: read it from a thread of its own)."""
        register = getattr(self._watch, "on_ready", None)
        if register is None:
            return False
        register(callback)
        return True


class Client(Protocol):
    """The API as controllers use it: models in, models out. `get`, `list`, `patch` and `delete`
    name the resource, so they return the model of that resource (typed `Any`)."""

    def create(self, obj: ModelT) -> ModelT: ...

    def get(self, resource: str, name: str, namespace: str | None = None) -> Any: ...

    def list(self, resource: str, namespace: str | None = None, label_selector: str | None = None,
             field_selector: str | None = None) -> tuple[list[Any], str]: ...

    def replace(self, obj: ModelT) -> ModelT: ...

    def patch(self, resource: str, name: str, patch: Any, namespace: str | None = None) -> Any: ...

    def replace_status(self, obj: ModelT) -> ModelT: ...

    def patch_status(self, resource: str, name: str, patch: Any, namespace: str | None = None) -> Any: ...

    def bind(self, namespace: str | None, name: str, node_name: str) -> None: ...

    def get_scale(self, resource: str, name: str, namespace: str | None = None) -> dict[str, Any]: ...

    def scale(self, resource: str, name: str, replicas: int, namespace: str | None = None) -> dict[str, Any]: ...

    def pod_metrics(self, namespace: str | None = None, label_selector: str | None = None) -> "builtins.list[PodMetrics]": ...

    def delete(self, resource: str, name: str, namespace: str | None = None, propagation_policy: str | None = None,
               grace_period_seconds: int | None = None, preconditions: dict[str, Any] | None = None) -> Any: ...

    def watch(self, resource: str, namespace: str | None = None, resource_version: str | None = None,
              label_selector: str | None = None, field_selector: str | None = None) -> ModelWatch: ...


class ApiClient:
    """Models over a transport with the Registry's methods (`client.raw`)."""

    def __init__(self, transport: Any, in_process: bool = False):
        self.raw = transport
        # In-process watches signal when they have events (ModelWatch.on_ready), so this client's
        # informers are followed by one shared thread instead of one thread each (informer.py).
        self.in_process = in_process

    @classmethod
    def local(cls, registry: Any) -> "ApiClient":
        """In-process: calls go straight to the Registry."""
        return cls(registry, in_process=True)

    @classmethod
    def connect(cls, home: str) -> "ApiClient":
        """Over the unix socket of the daemon running in `home`."""
        return cls(HttpTransport(socket_path=os.path.join(home, "api.sock")))

    def create(self, obj: ModelT) -> ModelT:
        info = _info_of(obj)
        return _model(info, self.raw.create(info.plural, obj.metadata.namespace, obj.to_dict()))

    def get(self, resource: str, name: str, namespace: str | None = None) -> Any:
        info = _info(resource)
        return _model(info, self.raw.get(info.plural, namespace, name))

    def list(self, resource: str, namespace: str | None = None, label_selector: str | None = None,
             field_selector: str | None = None) -> tuple[list[Any], str]:
        """The items as models and the list's resourceVersion (watch from it)."""
        info = _info(resource)
        listing = self.raw.list(info.plural, namespace, label_selector, field_selector)
        return [_model(info, item) for item in listing["items"]], listing["metadata"]["resourceVersion"]

    def replace(self, obj: ModelT) -> ModelT:
        info = _info_of(obj)
        metadata = obj.metadata
        return _model(info, self.raw.replace(info.plural, metadata.namespace, metadata.name, obj.to_dict()))

    def patch(self, resource: str, name: str, patch: Any, namespace: str | None = None) -> Any:
        """A JSON merge patch of spec and metadata."""
        info = _info(resource)
        return _model(info, self.raw.patch(info.plural, namespace, name, patch))

    def replace_status(self, obj: ModelT) -> ModelT:
        info = _info_of(obj)
        metadata = obj.metadata
        return _model(info, self.raw.replace_status(info.plural, metadata.namespace, metadata.name, obj.to_dict()))

    def patch_status(self, resource: str, name: str, patch: Any, namespace: str | None = None) -> Any:
        """A JSON merge patch of status only."""
        info = _info(resource)
        return _model(info, self.raw.patch_status(info.plural, namespace, name, patch))

    def pod_metrics(self, namespace: str | None = None, label_selector: str | None = None) -> "builtins.list[PodMetrics]":
        """PodMetrics from metrics.k8s.io (usage the nodes measured), as the autoscaler reads them."""
        listing = self.raw.list_metrics("pods", namespace, label_selector)
        return [PodMetrics.model_validate(item) for item in listing.get("items", [])]

    def node_metrics(self, label_selector: str | None = None) -> "builtins.list[NodeMetrics]":
        listing = self.raw.list_metrics("nodes", None, label_selector)
        return [NodeMetrics.model_validate(item) for item in listing.get("items", [])]

    def get_scale(self, resource: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        return self.raw.get_scale(_info(resource).plural, namespace, name)

    def scale(self, resource: str, name: str, replicas: int, namespace: str | None = None) -> dict[str, Any]:
        """Set spec.replicas through the scale subresource; returns the Scale."""
        return self.raw.patch_scale(_info(resource).plural, namespace, name, {"spec": {"replicas": replicas}})

    def bind(self, namespace: str | None, name: str, node_name: str) -> None:
        """Bind the pod to `node_name`. As kube-apiserver's binding answers with a Status, not
        the pod, nothing comes back: the scheduler learns of the bound pod from its watch, and
        not parsing the answer is a good part of what a binding costs it."""
        self.raw.bind(namespace, name, node_name)

    def delete(self, resource: str, name: str, namespace: str | None = None, propagation_policy: str | None = None,
               grace_period_seconds: int | None = None, preconditions: dict[str, Any] | None = None) -> Any:
        """Delete; returns the object (marked with deletionTimestamp, or its last state), or None
        where the API answers with a Success Status, as Kubernetes does for most kinds.
        `preconditions` ({"uid"}, {"resourceVersion"}) make it a Conflict if the object changed."""
        info = _info(resource)
        answer = self.raw.delete(info.plural, namespace, name, propagation_policy, grace_period_seconds,
                                 preconditions=preconditions)
        return None if answer.get("kind") == "Status" else _model(info, answer)

    def watch(self, resource: str, namespace: str | None = None, resource_version: str | None = None,
              label_selector: str | None = None, field_selector: str | None = None) -> ModelWatch:
        info = _info(resource)
        return ModelWatch(info, self.raw.watch(info.plural, namespace, resource_version, label_selector,
                                               field_selector))
