"""The EndpointSlice controller: which pod addresses back each Service, as EndpointSlices.

Follows k/k `pkg/controller/endpointslice` (and `staging/.../endpointslice/reconciler.go`). For a
Service with a selector, every pod in its namespace that the selector matches, that has an IP and
is not finished, is an endpoint, with the conditions the service proxy and DNS go by:
`ready` (the pod is Ready and not terminating, or the Service publishes not-ready addresses),
`serving` (Ready, even while terminating) and `terminating` (being deleted). Each Service port's
`targetPort` is resolved per pod (a name is looked up in the pod's container ports), so pods can
resolve it differently; endpoints are grouped by their resolved port list, one slice per group
(at most 100 endpoints in a slice, as the controller manager's default). Slices carry the labels
`kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by` and are owned by the
Service; when the Service goes, or stops having a selector, its slices go too.

Event handlers only compute the Service keys (`namespace/name`) a change concerns; `sync`
re-reads the Service, its pods and its slices from the caches and writes the difference.
`ServicePodsController` is that shared skeleton; the Endpoints controller (`controllers.endpoints`)
builds on it and on `service_endpoints`, so both objects always say the same thing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from minikube_py.api import errors
from minikube_py.api.meta import ObjectMeta, ObjectReference, OwnerReference
from minikube_py.api.networking import (
    ENDPOINTSLICE_CONTROLLER_NAME,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    EndpointConditions,
    EndpointSlice,
    EndpointSliceEndpoint,
    EndpointSlicePort,
)
from minikube_py.api.selectors import Selector
from minikube_py.client.controller import Controller
from minikube_py.client.events import WARNING, EventRecorder
from minikube_py.client.informer import SharedInformers, cache_key, shared_informers, split_cache_key
from minikube_py.clock import Clock
from controllers.common import is_pod_ready

log = logging.getLogger(__name__)

COMPONENT = "endpointslice-controller"
MAX_ENDPOINTS_PER_SLICE = 100  # kube-controller-manager's --max-endpoints-per-slice default
HEADLESS_LABEL = "service.kubernetes.io/headless"
PORT_NOT_FOUND = "FailedToResolveTargetPort"

Port = tuple[str, int, str]  # (name, port, protocol) as an endpoint offers it


@dataclass(frozen=True)
class PodEndpoint:
    """One pod as an endpoint of one Service: its address, conditions and resolved ports."""

    pod: Any
    address: str
    ready: bool
    serving: bool
    terminating: bool
    hostname: str | None
    ports: tuple[Port, ...]

    def target_ref(self) -> ObjectReference:
        metadata = self.pod.metadata
        return ObjectReference(kind="Pod", namespace=metadata.namespace, name=metadata.name, uid=metadata.uid)


def service_selector(service: Any) -> Selector | None:
    """The Service's pod selector, or None when it has none (then endpoints are the user's to write).

    An empty map counts as none: on the wire Kubernetes drops it, and so selects nothing.
    """
    if not service.spec.selector or service.spec.type == "ExternalName":
        return None
    return Selector.from_label_selector({"matchLabels": service.spec.selector})


def resolve_target_port(pod: Any, target_port: int | str | None, protocol: str) -> int | None:
    """A Service port's targetPort in this pod: a number as is, a name looked up among the pod's
    container ports of the same protocol (k/k podutil.FindPort); None when no container has it."""
    if isinstance(target_port, int):
        return target_port
    for container in pod.spec.containers:
        for port in container.ports or []:
            if port.name == target_port and port.protocol == protocol:
                return port.container_port
    return None


def service_endpoints(service: Any, pods: list[Any]) -> tuple[list[PodEndpoint], list[str]]:
    """The endpoints `pods` give `service`, sorted by address, and the problems found (a named
    targetPort no container of a pod declares).

    A pod is left out while it has no IP or once it has finished (Succeeded or Failed).
    """
    endpoints, problems = [], []
    publish_not_ready = bool(service.spec.publish_not_ready_addresses)
    for pod in pods:
        if not pod.status.pod_ip or pod.status.phase in ("Succeeded", "Failed"):
            continue
        ports = []
        for service_port in service.spec.ports or []:
            number = resolve_target_port(pod, service_port.target_port, service_port.protocol)
            if number is None:
                problems.append(f'pod {pod.metadata.name} has no container port named "{service_port.target_port}" '
                                f"({service_port.protocol}) for port {service_port.name or service_port.port}")
                continue
            ports.append((service_port.name or "", number, service_port.protocol))
        terminating = pod.metadata.deletion_timestamp is not None
        pod_ready = is_pod_ready(pod)
        hostname = None
        if pod.spec.hostname and pod.spec.subdomain == service.metadata.name:
            hostname = pod.spec.hostname
        endpoints.append(PodEndpoint(
            pod=pod, address=pod.status.pod_ip,
            ready=(publish_not_ready or pod_ready) and not terminating,
            serving=publish_not_ready or pod_ready, terminating=terminating,
            hostname=hostname, ports=tuple(sorted(ports))))
    endpoints.sort(key=lambda endpoint: (endpoint.address, endpoint.pod.metadata.name))
    return endpoints, problems


def group_by_ports(endpoints: list[PodEndpoint]) -> dict[tuple[Port, ...], list[PodEndpoint]]:
    """Endpoints grouped by their resolved port list, groups in a stable order."""
    groups: dict[tuple[Port, ...], list[PodEndpoint]] = {}
    for endpoint in endpoints:
        groups.setdefault(endpoint.ports, []).append(endpoint)
    return dict(sorted(groups.items()))


class ServicePodsController(Controller[str]):
    """What the EndpointSlice and Endpoints controllers share: keys are Service `namespace/name`,
    enqueued for a Service's own changes and for changes of the pods its selector matches."""

    def __init__(self, name: str, client: Any, clock: Clock | None, informers: SharedInformers | None,
                 recorder: EventRecorder | None, workers: int):
        super().__init__(name, clock, workers)
        self.client = client
        informers = informers or shared_informers(client)
        self.recorder = recorder or EventRecorder(client, name, self.clock)
        self.services = self.watch(informers.informer("services"), on_add=self._service_changed,
                                   on_update=lambda old, new: self._service_changed(new),
                                   on_delete=self._service_changed)
        self.pods = self.watch(informers.informer("pods"), on_add=self._pod_changed,
                               on_update=self._pod_updated, on_delete=self._pod_changed)

    def _service_changed(self, service: Any) -> None:
        self.enqueue(cache_key(service))

    def _pod_changed(self, pod: Any) -> None:
        for service in self.services.list(pod.metadata.namespace):
            selector = service_selector(service)
            if selector is not None and selector.matches(pod.metadata.labels or {}):
                self.enqueue(cache_key(service))

    def _pod_updated(self, old: Any, new: Any) -> None:
        if old.metadata.resource_version == new.metadata.resource_version:
            return
        self._pod_changed(new)
        if (old.metadata.labels or {}) != (new.metadata.labels or {}):
            self._pod_changed(old)

    def selected_pods(self, service: Any) -> list[Any]:
        selector = service_selector(service)
        return [] if selector is None else self.pods.list(service.metadata.namespace, selector)

    def warn_unresolved_ports(self, service: Any, problems: list[str]) -> None:
        for problem in problems:
            self.recorder.event(service, WARNING, PORT_NOT_FOUND, problem)


class EndpointSliceController(ServicePodsController):
    """Keeps each selecting Service's EndpointSlices; keys are `namespace/name` of Services."""

    def __init__(self, client: Any, clock: Clock | None = None, informers: SharedInformers | None = None,
                 recorder: EventRecorder | None = None, workers: int = 2):
        super().__init__(COMPONENT, client, clock, informers, recorder, workers)
        informers = informers or shared_informers(client)
        self.slices = self.watch(informers.informer("endpointslices"), on_add=self._slice_changed,
                                 on_update=lambda old, new: self._slice_changed(new), on_delete=self._slice_changed)

    def _slice_changed(self, endpoint_slice: Any) -> None:
        labels = endpoint_slice.metadata.labels or {}
        if labels.get(MANAGED_BY_LABEL) == ENDPOINTSLICE_CONTROLLER_NAME and labels.get(SERVICE_NAME_LABEL):
            self.enqueue(f"{endpoint_slice.metadata.namespace}/{labels[SERVICE_NAME_LABEL]}")

    def _managed_slices(self, namespace: str, service_name: str) -> list[Any]:
        selector = Selector.from_label_selector({"matchLabels": {
            SERVICE_NAME_LABEL: service_name, MANAGED_BY_LABEL: ENDPOINTSLICE_CONTROLLER_NAME}})
        return sorted(self.slices.list(namespace, selector), key=lambda item: item.metadata.name)

    def sync(self, key: Any) -> None:
        namespace, name = split_cache_key(key)
        assert namespace is not None, f"service key without a namespace: {key!r}"
        service = self.services.get(key)
        existing = self._managed_slices(namespace, name)
        if service is None or service_selector(service) is None:
            for stale in existing:
                self._delete(stale)
            return None
        endpoints, problems = service_endpoints(service, self.selected_pods(service))
        self.warn_unresolved_ports(service, problems)
        desired = self.desired_slices(service, endpoints)
        # Reuse slices whose ports match, in name order, so a steady Service keeps its slice names.
        unused = list(existing)
        for ports, wanted in desired:
            reusable = next((item for item in unused if _slice_ports(item) == ports), None)
            if reusable is None:
                self._create(wanted)
                continue
            unused.remove(reusable)
            self._update(reusable, wanted)
        for stale in unused:
            self._delete(stale)
        return None

    def desired_slices(self, service: Any, endpoints: list[PodEndpoint]) -> list[tuple[tuple[Any, ...], EndpointSlice]]:
        """`(ports, slice)` for every slice the Service should have (names left to the server).

        A Service with no endpoints still gets one empty placeholder slice (no ports, no
        endpoints), so readers can tell "no endpoints" from "not processed yet", as Kubernetes does.
        """
        groups = group_by_ports(endpoints) or {(): []}
        result = []
        for ports, members in groups.items():
            chunks = [members[start:start + MAX_ENDPOINTS_PER_SLICE]
                      for start in range(0, len(members), MAX_ENDPOINTS_PER_SLICE)] or [[]]
            for chunk in chunks:
                result.append((ports, self._slice(service, ports, chunk)))
        return result

    @staticmethod
    def _slice(service: Any, ports: tuple[Port, ...], members: list[PodEndpoint]) -> EndpointSlice:
        labels = dict(service.metadata.labels or {})
        labels[SERVICE_NAME_LABEL] = service.metadata.name
        labels[MANAGED_BY_LABEL] = ENDPOINTSLICE_CONTROLLER_NAME
        if service.is_headless:
            labels[HEADLESS_LABEL] = ""
        owner = OwnerReference(api_version="v1", kind="Service", name=service.metadata.name,
                               uid=service.metadata.uid, controller=True, block_owner_deletion=True)
        return EndpointSlice(
            metadata=ObjectMeta(generate_name=f"{service.metadata.name}-", namespace=service.metadata.namespace,
                                labels=labels, owner_references=[owner]),
            address_type="IPv4",
            endpoints=[EndpointSliceEndpoint(
                addresses=[member.address],
                conditions=EndpointConditions(ready=member.ready, serving=member.serving,
                                              terminating=member.terminating),
                hostname=member.hostname, target_ref=member.target_ref(),
                node_name=member.pod.spec.node_name) for member in members],
            ports=[EndpointSlicePort(name=port_name, port=number, protocol=protocol)
                   for port_name, number, protocol in ports])

    # -- writes ------------------------------------------------------------------------------

    def _create(self, wanted: EndpointSlice) -> None:
        self.client.create(wanted)

    def _update(self, current: Any, wanted: EndpointSlice) -> None:
        if (current.metadata.labels, current.endpoints or [], current.ports or [], current.metadata.owner_references) \
                == (wanted.metadata.labels, wanted.endpoints or [], wanted.ports or [], wanted.metadata.owner_references):
            return
        replacement = current.model_copy(deep=True)
        replacement.metadata.labels = wanted.metadata.labels
        replacement.metadata.owner_references = wanted.metadata.owner_references
        replacement.endpoints = wanted.endpoints
        replacement.ports = wanted.ports
        self.client.replace(replacement)

    def _delete(self, stale: Any) -> None:
        try:
            self.client.delete("endpointslices", stale.metadata.name, stale.metadata.namespace)
        except errors.NotFound:
            pass


def _slice_ports(endpoint_slice: Any) -> tuple[Port, ...]:
    return tuple(sorted((port.name or "", port.port or 0, port.protocol) for port in endpoint_slice.ports or []))

