"""The Endpoints controller: the legacy `v1` Endpoints object of each Service with a selector.

Follows k/k `pkg/controller/endpoint`. Same inputs and the same per-pod computation as the
EndpointSlice controller (`controllers.endpointslice.service_endpoints`), written the old way: one
object named after the Service, subsets grouped by resolved port list, Ready pods under
`addresses`, the others under `notReadyAddresses`. Unlike slices, Endpoints leave terminating
pods out altogether unless the Service publishes not-ready addresses. When the Service goes, its
Endpoints go; a Service without a selector keeps whatever Endpoints the user wrote.
"""

from __future__ import annotations

from typing import Any

from minikube_py.api import errors
from minikube_py.api.meta import ObjectMeta
from minikube_py.api.networking import EndpointAddress, EndpointPort, Endpoints, EndpointSubset
from minikube_py.client.events import EventRecorder
from minikube_py.client.informer import SharedInformers, shared_informers, split_cache_key
from minikube_py.clock import Clock
from controllers.endpointslice import HEADLESS_LABEL, PodEndpoint, ServicePodsController, group_by_ports, \
    service_endpoints, service_selector

COMPONENT = "endpoint-controller"


class EndpointsController(ServicePodsController):
    """Keeps each selecting Service's Endpoints; keys are `namespace/name` of Services."""

    def __init__(self, client: Any, clock: Clock | None = None, informers: SharedInformers | None = None,
                 recorder: EventRecorder | None = None, workers: int = 2):
        super().__init__(COMPONENT, client, clock, informers, recorder, workers)
        informers = informers or shared_informers(client)
        self.endpoints = self.watch(informers.informer("endpoints"),
                                    on_update=lambda old, new: self._endpoints_changed(new),
                                    on_delete=self._endpoints_changed)

    def _endpoints_changed(self, endpoints: Any) -> None:
        self.enqueue(f"{endpoints.metadata.namespace}/{endpoints.metadata.name}")

    def sync(self, key: Any) -> None:
        namespace, name = split_cache_key(key)
        service = self.services.get(key)
        current = self.endpoints.get(key)
        if service is None:
            if current is not None:
                self._delete(namespace, name)
            return None
        if service_selector(service) is None:
            return None
        endpoints, _ = service_endpoints(service, self.selected_pods(service))
        wanted = self.desired_endpoints(service, endpoints)
        if current is None:
            try:
                self.client.create(wanted)
            except errors.AlreadyExists:
                pass  # the cache is behind; the next event brings it round again
            return None
        if (current.metadata.labels, current.subsets or []) != (wanted.metadata.labels, wanted.subsets or []):
            replacement = current.model_copy(deep=True)
            replacement.metadata.labels = wanted.metadata.labels
            replacement.subsets = wanted.subsets
            self.client.replace(replacement)
        return None

    @staticmethod
    def desired_endpoints(service: Any, endpoints: list[PodEndpoint]) -> Endpoints:
        include_terminating = bool(service.spec.publish_not_ready_addresses)
        subsets = []
        for ports, members in group_by_ports(endpoints).items():
            ready: list[EndpointAddress] = []
            not_ready: list[EndpointAddress] = []
            for member in members:
                if member.terminating and not include_terminating:
                    continue
                address = EndpointAddress(ip=member.address, hostname=member.hostname,
                                          node_name=member.pod.spec.node_name, target_ref=member.target_ref())
                (ready if member.ready or include_terminating else not_ready).append(address)
            if not ready and not not_ready:
                continue
            subsets.append(EndpointSubset(
                addresses=ready or None, not_ready_addresses=not_ready or None,
                ports=[EndpointPort(name=port_name or None, port=number, protocol=protocol)
                       for port_name, number, protocol in ports] or None))
        labels = dict(service.metadata.labels or {})
        if service.is_headless:
            labels[HEADLESS_LABEL] = ""
        return Endpoints(metadata=ObjectMeta(name=service.metadata.name, namespace=service.metadata.namespace,
                                             labels=labels or None),
                         subsets=subsets or None)

    def _delete(self, namespace: str | None, name: str) -> None:
        try:
            self.client.delete("endpoints", name, namespace)
        except errors.NotFound:
            pass
