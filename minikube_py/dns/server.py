"""The cluster DNS listener: dnslib's UDP server on the cluster bridge's address, port 53.

Every pod reaches the bridge address (it is their gateway), so pods get it as their `nameserver`
(kubelet's `--cluster-dns`); the host reaches it too, nobody outside does. The answers come from
`resolver.ClusterResolver` over the shared informer caches: the DNS is a client of the API like
the controllers and reads no store. `stop()` closes the socket, so no listener outlives the cluster.
"""

from __future__ import annotations

import logging
from typing import Any

from dnslib.server import BaseResolver, DNSLogger, DNSServer

from minikube_py.client.informer import SharedInformers, shared_informers
from minikube_py.dns.resolver import DEFAULT_DOMAIN, ClusterResolver, forwarder, host_upstreams

log = logging.getLogger(__name__)

DNS_PORT = 53


class _Resolver(BaseResolver):
    def __init__(self, cluster: ClusterResolver):
        self.cluster = cluster

    def resolve(self, request, handler):
        try:
            return self.cluster.answer(request)
        except Exception:
            log.exception("answering %s failed", request.q.qname)
            reply = request.reply()
            reply.header.rcode = 2  # SERVFAIL
            return reply


class ClusterDnsServer:
    """Serves cluster DNS on `address:port` until `stop()`."""

    def __init__(self, client: Any, address: str, port: int = DNS_PORT, domain: str = DEFAULT_DOMAIN,
                 informers: SharedInformers | None = None, upstreams: list[str] | None = None):
        informers = informers or shared_informers(client)
        self.services = informers.informer("services")
        self.slices = informers.informer("endpointslices")
        self.resolver = ClusterResolver(self.services, self.slices, domain,
                                        forwarder(host_upstreams() if upstreams is None else upstreams))
        self.address = address
        self.port = port
        self._server = DNSServer(_Resolver(self.resolver), address=address, port=port,
                                 logger=DNSLogger(log="-request,-reply,-truncated,-data", prefix=False))

    def start(self) -> None:
        for informer in (self.services, self.slices):
            informer.start()
        self._server.start_thread()
        log.info("cluster DNS listening on %s:%d", self.address, self.port)

    def stop(self) -> None:
        self._server.stop()
        self._server.server.server_close()
