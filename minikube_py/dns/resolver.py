"""Cluster DNS answers, as CoreDNS's `kubernetes` plugin gives them, from the informer caches.

Names under the cluster domain (`cluster.local`):

- `<service>.<ns>.svc.<domain>` A: the ClusterIP; for a headless Service every ready endpoint's
  address; CNAME to `externalName` for an ExternalName Service.
- `<hostname>.<service>.<ns>.svc.<domain>` A: a headless Service's endpoint that has a hostname
  (a pod with `hostname` and `subdomain: <service>`).
- `_<port>._<proto>.<service>.<ns>.svc.<domain>` SRV for each named port: the Service's name
  (ClusterIP) or each endpoint's name (headless) with the port number.
- `<a-b-c-d>.<ns>.pod.<domain>` A: the address written in the name (CoreDNS's `pods insecure`).
- Anything else under the domain is NXDOMAIN; an existing name asked for another type is an empty
  NOERROR answer. Names outside the domain are forwarded to the host's resolvers.

`ClusterResolver.answer(request)` is pure over the caches, so each record type is unit-tested
without a socket; `server.ClusterDnsServer` puts it on the wire with dnslib.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any, Callable

from dnslib import CNAME, QTYPE, RCODE, RR, SRV, A, DNSRecord

from minikube_py.client.slice_index import EndpointSliceIndex

log = logging.getLogger(__name__)

DEFAULT_DOMAIN = "cluster.local"
TTL_SECONDS = 5  # CoreDNS's kubernetes plugin default ttl


class ClusterResolver:
    """Answers DNS questions from Service and EndpointSlice caches; forwards the rest."""

    def __init__(self, services: Any, slices: Any, domain: str = DEFAULT_DOMAIN,
                 forward: Callable[[DNSRecord], DNSRecord | None] | None = None):
        self.services = services
        self.slices = EndpointSliceIndex(slices)
        self.domain = domain.strip(".").lower()
        self.forward = forward

    def is_forwarded(self, request: DNSRecord) -> bool:
        """Whether the question is outside the cluster domain (answered by the host's resolvers)."""
        name = str(request.q.qname).rstrip(".").lower()
        return name != self.domain and not name.endswith("." + self.domain)

    def answer(self, request: DNSRecord) -> DNSRecord:
        question = request.q
        name = str(question.qname).rstrip(".").lower()
        if self.is_forwarded(request):
            forwarded = self.forward(request) if self.forward is not None else None
            if forwarded is not None:
                return forwarded
            reply = request.reply()
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        reply = request.reply()
        reply.header.aa = 1
        records = self._records(name[: -len(self.domain)].rstrip(".").split(".") if name != self.domain else [])
        if records is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        wanted = question.qtype
        for record in records:
            if wanted in (record.rtype, QTYPE.ANY) or (record.rtype == QTYPE.CNAME and wanted == QTYPE.A):
                reply.add_answer(record)
        return reply

    # -- the records of a name under the domain (None: the name does not exist) ------------------

    def _records(self, labels: list[str]) -> list[RR] | None:
        if len(labels) == 3 and labels[2] == "pod":
            return self._pod_records(labels)
        if len(labels) >= 3 and labels[-1] == "svc":
            return self._service_records(labels[:-1])
        # The domain itself and `<ns>.svc` style parents exist but hold nothing.
        if labels in ([], ["svc"], ["pod"]) or (len(labels) == 2 and labels[1] in ("svc", "pod")):
            return []
        return None

    def _fqdn(self, *labels: str) -> str:
        return ".".join([*labels, self.domain]) + "."

    def _pod_records(self, labels: list[str]) -> list[RR] | None:
        text, namespace, _ = labels
        try:
            address = ipaddress.IPv4Address(text.replace("-", "."))
        except ValueError:
            return None
        return [RR(self._fqdn(text, namespace, "pod"), QTYPE.A, rdata=A(str(address)), ttl=TTL_SECONDS)]

    def _service_records(self, labels: list[str]) -> list[RR] | None:
        # labels end with <service>.<namespace>; before them a hostname or `_port._proto`.
        *prefix, service_name, namespace = labels
        service = self.services.get(f"{namespace}/{service_name}")
        if service is None:
            return None
        owner = self._fqdn(*labels, "svc")
        endpoints = self._ready_endpoints(namespace, service_name)
        headless = service.spec.cluster_ip == "None"
        if not prefix:
            if service.spec.type == "ExternalName":
                return [RR(owner, QTYPE.CNAME, rdata=CNAME(service.spec.external_name.rstrip(".") + "."), ttl=TTL_SECONDS)]
            if headless:
                return [RR(owner, QTYPE.A, rdata=A(address), ttl=TTL_SECONDS) for address, _ in endpoints]
            return [RR(owner, QTYPE.A, rdata=A(service.spec.cluster_ip), ttl=TTL_SECONDS)]
        if len(prefix) == 1 and headless:
            matching = [address for address, hostname in endpoints if _endpoint_label(address, hostname) == prefix[0]]
            if not matching:
                return None
            return [RR(owner, QTYPE.A, rdata=A(address), ttl=TTL_SECONDS) for address in matching]
        if len(prefix) == 2 and prefix[0].startswith("_") and prefix[1].startswith("_"):
            port_name, protocol = prefix[0][1:], prefix[1][1:]
            port = next((port for port in service.spec.ports or []
                         if port.name == port_name and port.protocol.lower() == protocol), None)
            if port is None:
                return None
            if not headless:
                target = self._fqdn(service_name, namespace, "svc")
                return [RR(owner, QTYPE.SRV, rdata=SRV(0, 100, port.port, target), ttl=TTL_SECONDS)]
            records = []
            for address, hostname in endpoints:
                target = self._fqdn(_endpoint_label(address, hostname), service_name, namespace, "svc")
                number = self._endpoint_port(namespace, service_name, port_name, port.protocol) or port.port
                records.append(RR(owner, QTYPE.SRV, rdata=SRV(0, 100, number, target), ttl=TTL_SECONDS))
            return records
        return None

    def _service_slices(self, namespace: str, service_name: str) -> list[Any]:
        return self.slices.slices(namespace, service_name)

    def _ready_endpoints(self, namespace: str, service_name: str) -> list[tuple[str, str | None]]:
        found = set()
        for endpoint_slice in self._service_slices(namespace, service_name):
            for endpoint in endpoint_slice.endpoints or []:
                if endpoint.conditions.ready is not False:
                    for address in endpoint.addresses:
                        found.add((address, endpoint.hostname))
        return sorted(found, key=lambda item: item[0])

    def _endpoint_port(self, namespace: str, service_name: str, port_name: str, protocol: str) -> int | None:
        for endpoint_slice in self._service_slices(namespace, service_name):
            for port in endpoint_slice.ports or []:
                if (port.name or "") == port_name and port.protocol == protocol and port.port:
                    return port.port
        return None


def _endpoint_label(address: str, hostname: str | None) -> str:
    """An endpoint's own name under its Service: its hostname, else its address with dashes."""
    return hostname or address.replace(".", "-")


def host_upstreams(resolv_conf: str = "/etc/resolv.conf") -> list[str]:
    """The host's name servers, where names outside the cluster domain are forwarded."""
    try:
        with open(resolv_conf) as file:
            lines = file.read().splitlines()
    except OSError:
        return []
    return [words[1] for words in (line.split() for line in lines) if len(words) >= 2 and words[0] == "nameserver"]


def forwarder(upstreams: list[str], timeout: float = 2.0) -> Callable[[DNSRecord], DNSRecord | None]:
    """Ask each upstream in turn over UDP; None when none answered."""
    def forward(request: DNSRecord) -> DNSRecord | None:
        for upstream in upstreams:
            try:
                return DNSRecord.parse(request.send(upstream, 53, timeout=timeout))
            except Exception as error:  # a dead or slow upstream: try the next
                log.debug("DNS upstream %s did not answer: %s", upstream, error)
        return None
    return forward
