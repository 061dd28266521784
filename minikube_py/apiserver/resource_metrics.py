"""The Metrics API (`metrics.k8s.io/v1beta1`), what metrics-server serves in Kubernetes.

Nothing here is stored. A request for PodMetrics or NodeMetrics asks each node's agent
(`NodeMetricsSource`, which the agent implements from its cgroup readings) for the usage of what
it runs, and adds what the API knows: the pod's and the node's labels, so label selectors work as
on metrics-server, and only pods that still exist. A node that cannot answer is left out (logged),
as metrics-server leaves out a node it cannot scrape.

The daemon's own agent is a source in the process (`add_node`); every other Node the API knows
(added with `node add`, joined from elsewhere) is asked over its kubelet port, through the
`remote_source` the daemon gives (agent/remote_proxy.py's RemoteNodeMetrics), as metrics-server
scrapes each kubelet. So a `--control-plane-only` API server sees the added nodes too.

Paths: `/apis/metrics.k8s.io/v1beta1/nodes[/{name}]`, `/apis/metrics.k8s.io/v1beta1/pods` and
`/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods[/{name}]`, `get` and `list` only, with
`labelSelector` and `fieldSelector` (metadata.name, metadata.namespace).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from minikube_py import api
from minikube_py.api import errors
from minikube_py.api.metrics import GROUP_VERSION, NodeMetrics, PodMetrics

log = logging.getLogger(__name__)

GROUP, VERSION = GROUP_VERSION.split("/")
KINDS = {"pods": "PodMetrics", "nodes": "NodeMetrics"}
MAX_PARALLEL_NODES = 16  # nodes asked at once for one request


class NodeMetricsSource(Protocol):
    """One node's usage, as its agent measures it (agent/resource_metrics.py)."""

    def node_metrics(self) -> NodeMetrics | None: ...

    def pod_metrics(self) -> list[PodMetrics]: ...


@dataclass(frozen=True)
class MetricsRoute:
    """A request path under /apis/metrics.k8s.io/v1beta1: `pods` or `nodes`, maybe one of them."""

    resource: str
    namespace: str | None
    name: str | None


def parse_metrics_route(rest: list[str], path: str) -> MetricsRoute | dict:
    """The route (or the APIResourceList) of the path segments after `/apis/metrics.k8s.io/v1beta1`."""
    if not rest:
        return api_resource_list()
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] == "pods":
        namespace, rest = rest[1], rest[2:]
    if rest[0] not in KINDS or len(rest) > 2 or (rest[0] == "nodes" and namespace is not None):
        raise errors.NotFound(f"the server could not find the requested resource (path {path})")
    return MetricsRoute(rest[0], namespace, rest[1] if len(rest) > 1 else None)


def api_resource_list() -> dict:
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION, "resources": [
        {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics", "verbs": ["get", "list"]},
        {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics", "verbs": ["get", "list"]},
    ]}


def api_group() -> dict:
    """The group's entry in `/apis`."""
    entry = {"groupVersion": GROUP_VERSION, "version": VERSION}
    return {"name": GROUP, "versions": [entry], "preferredVersion": entry}


class ResourceMetricsApi:
    """Assembles PodMetrics and NodeMetrics from every node's source and the registry's objects."""

    def __init__(self, registry: Any):
        self.registry = registry
        self._sources: dict[str, NodeMetricsSource] = {}
        self._lock = threading.Lock()
        # The source for a Node with no in-process agent (its kubelet port), or None when it has none.
        self.remote_source: Callable[[str], NodeMetricsSource | None] | None = None

    def add_node(self, node_name: str, source: NodeMetricsSource) -> None:
        with self._lock:
            self._sources[node_name] = source

    def remove_node(self, node_name: str) -> None:
        with self._lock:
            self._sources.pop(node_name, None)

    def _each_source(self) -> list[tuple[str, NodeMetricsSource]]:
        """The in-process agents, then every other Node's kubelet (when the daemon can reach them)
        unless its Ready condition says it is down or unreachable: asking it would only wait."""
        with self._lock:
            sources = list(self._sources.items())
        if self.remote_source is not None:
            local = {name for name, _ in sources}
            for node in self.registry.list("nodes")["items"]:
                name = node["metadata"]["name"]
                ready = next((condition.get("status") for condition in (node.get("status") or {}).get("conditions")
                              or [] if condition.get("type") == "Ready"), "True")
                if name not in local and ready == "True" and (source := self.remote_source(name)) is not None:
                    sources.append((name, source))
        return sources

    def _ask_each_node(self, question: Callable[[NodeMetricsSource], Any], what: str) -> list[Any]:
        """Each node's answer, all nodes asked at once (as metrics-server scrapes its nodes in
        parallel, so one slow node costs one timeout, not one each); a node that fails is logged
        and left out, as metrics-server leaves out a node it cannot scrape."""
        def ask(node_name: str, source: NodeMetricsSource) -> list[Any]:
            try:
                return [question(source)]
            except (OSError, errors.ApiError) as error:  # a node that is down or cut off
                log.warning("node %s did not give %s (%s); leaving it out", node_name, what, error)
            except Exception:
                log.exception("node %s did not give %s; leaving it out", node_name, what)
            return []

        sources = self._each_source()
        if len(sources) <= 1:
            return [answer for node_name, source in sources for answer in ask(node_name, source)]
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_NODES, len(sources)),
                                thread_name_prefix="metrics-scrape") as pool:
            return [answer for answers in pool.map(lambda pair: ask(*pair), sources) for answer in answers]

    def _node_usage(self) -> dict[str, dict]:
        """NodeMetrics by node name."""
        found = self._ask_each_node(lambda source: source.node_metrics(), "its resource metrics")
        return {metrics.metadata.name: metrics.to_dict() for metrics in found if metrics is not None}

    def _pod_usage(self) -> dict[str, dict]:
        """PodMetrics by pod uid, from every node."""
        found = self._ask_each_node(lambda source: source.pod_metrics(), "its pods' resource metrics")
        return {metrics.metadata.uid or "": metrics.to_dict() for answer in found for metrics in answer}

    @staticmethod
    def _with_metadata(metrics: dict, obj: dict) -> dict:
        """metrics-server's metadata: the object's name, namespace and labels, created now."""
        metadata = obj.get("metadata") or {}
        return {**metrics, "metadata": {key: value for key, value in {
            "name": metadata.get("name"), "namespace": metadata.get("namespace"),
            "creationTimestamp": metrics.get("timestamp"), "labels": metadata.get("labels")}.items()
            if value is not None}}

    def list(self, resource: str, namespace: str | None = None, label_selector: str | None = None,
             field_selector: str | None = None) -> dict:
        fields = api.selectors.parse_field_selector(field_selector, "podmetrics")
        if resource == "nodes":
            usage, objects = self._node_usage(), self.registry.list("nodes", None, label_selector)["items"]
            items = [self._with_metadata(usage[node["metadata"]["name"]], node) for node in objects
                     if node["metadata"]["name"] in usage]
        else:
            usage, objects = self._pod_usage(), self.registry.list("pods", namespace, label_selector)["items"]
            items = [self._with_metadata(usage[pod["metadata"].get("uid", "")], pod) for pod in objects
                     if pod["metadata"].get("uid", "") in usage]
        items = [item for item in items if api.selectors.matches_fields(item, fields)]
        return {"kind": f"{KINDS[resource]}List", "apiVersion": GROUP_VERSION, "metadata": {}, "items": items}

    def get(self, resource: str, namespace: str | None, name: str) -> dict:
        if resource == "nodes":
            node = self.registry.get("nodes", None, name)
            found = self._node_usage().get(name)
        else:
            node = self.registry.get("pods", namespace, name)
            found = self._pod_usage().get(node["metadata"].get("uid", ""))
        if found is None:
            what = "podmetrics" if resource == "pods" else "nodemetrics"
            shown = name if resource == "nodes" else f"{namespace}/{name}"
            raise errors.NotFound(f'{what}.{GROUP} "{shown}" not found')
        return self._with_metadata(found, node)
