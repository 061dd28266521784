"""The cluster DNS listeners: UDP and TCP on the cluster bridge's address, port 53.

Every pod reaches the bridge address (it is their gateway), so pods get it as their `nameserver`
(kubelet's `--cluster-dns`); the host reaches it too, nobody outside does. The answers come from
`resolver.ClusterResolver` over the shared informer caches: the DNS is a client of the API like
the controllers and reads no store. dnslib does the wire format.

The listeners are our own rather than dnslib's `DNSServer`, which starts a thread per UDP query
(about as long as the answer itself takes): here one thread answers every UDP query for a cluster
name straight from the caches, and only questions forwarded to the host's resolvers, which may
wait on the network, go to a small pool of threads. A reply too large for the client's UDP buffer
(512 bytes, or the EDNS size it announces) comes back truncated (TC), and the client asks again
over TCP, where each connection gets a thread and may carry several length-prefixed queries
(RFC 7766) until it is idle for `TCP_IDLE_SECONDS`.

Building an answer with dnslib costs about 0.2 ms of CPU, so UDP answers for cluster names are
kept, packed, keyed by the query's bytes after its ID (flags, question, EDNS): a repeated
question is answered with its ID swapped in. Every Service or EndpointSlice event drops them all,
so a kept answer is never older than the caches it came from. A packet that does not parse is dropped; an
answer that fails is SERVFAIL; neither stops a listener. `stop()` closes both sockets, so no
listener outlives the cluster.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dnslib import QTYPE, RCODE, DNSRecord

from minikube_py.client.informer import SharedInformers, shared_informers
from minikube_py.dns.resolver import DEFAULT_DOMAIN, ClusterResolver, forwarder, host_upstreams

log = logging.getLogger(__name__)

DNS_PORT = 53
UDP_PAYLOAD_DEFAULT = 512  # RFC 1035's limit without EDNS
UDP_PAYLOAD_MAX = 4096
TCP_IDLE_SECONDS = 10.0
TCP_CONNECTIONS_MAX = 64
FORWARDING_THREADS = 4
KEPT_ANSWERS_MAX = 10_000


# Tries at a UDP and TCP port pair when the caller lets the kernel choose (port 0).
BIND_ATTEMPTS_ON_ANY_PORT = 10


class ClusterDnsServer:
    """Serves cluster DNS on `address:port`, UDP and TCP, until `stop()`."""

    def __init__(self, client: Any, address: str, port: int = DNS_PORT, domain: str = DEFAULT_DOMAIN,
                 informers: SharedInformers | None = None, upstreams: list[str] | None = None):
        informers = informers or shared_informers(client)
        self.services = informers.informer("services")
        self.slices = informers.informer("endpointslices")
        self.resolver = ClusterResolver(self.services, self.slices, domain,
                                        forwarder(host_upstreams() if upstreams is None else upstreams))
        self.address = address
        # Port 0 (tests) lets the kernel pick the UDP port; TCP then takes the same number, which
        # another socket may hold already: pick again a few times.
        for attempt in range(1 if port else BIND_ATTEMPTS_ON_ANY_PORT):
            self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                self._udp.bind((address, port))
                self._tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                self._tcp.bind((address, self._udp.getsockname()[1]))
                self._tcp.listen(64)
                break
            except OSError:
                self._udp.close()
                self._tcp.close()
                if port or attempt == BIND_ATTEMPTS_ON_ANY_PORT - 1:
                    raise
        self.port = self._udp.getsockname()[1]
        self._stopping = threading.Event()
        self._forwarding = ThreadPoolExecutor(FORWARDING_THREADS, thread_name_prefix="dns-forward")
        self._connections = threading.BoundedSemaphore(TCP_CONNECTIONS_MAX)
        self._threads: list[threading.Thread] = []
        self._kept_answers: dict[bytes, bytes] = {}  # query bytes after the ID -> packed reply
        for informer in (self.services, self.slices):
            informer.add_event_handler(self._forget_answers, lambda _old, _new: self._forget_answers(),
                                       self._forget_answers)

    def start(self) -> None:
        for informer in (self.services, self.slices):
            informer.start()
        for target, name in ((self._serve_udp, "dns-udp"), (self._serve_tcp, "dns-tcp")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("cluster DNS listening on %s:%d (UDP and TCP)", self.address, self.port)

    def stop(self) -> None:
        self._stopping.set()
        for sock in (self._udp, self._tcp):
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in recvfrom/accept
            except OSError:
                pass
        for thread in self._threads:
            thread.join(timeout=5)
        self._udp.close()
        self._tcp.close()
        self._forwarding.shutdown(wait=False, cancel_futures=True)
        if self._threads:
            for informer in (self.services, self.slices):
                informer.stop()

    # -- answering ----------------------------------------------------------------------------------

    def _forget_answers(self, _changed: Any = None) -> None:
        self._kept_answers = {}  # a new dict: an answer being built from older caches lands in the old one

    def reply(self, request: DNSRecord) -> DNSRecord:
        """The answer to a parsed request (SERVFAIL when answering it failed)."""
        try:
            return self.resolver.answer(request)
        except Exception:
            log.exception("answering %s failed", request.q.qname)
            reply = request.reply()
            reply.header.rcode = RCODE.SERVFAIL
            return reply

    # -- UDP ---------------------------------------------------------------------------------------

    def _serve_udp(self) -> None:
        while not self._stopping.is_set():
            try:
                data, peer = self._udp.recvfrom(UDP_PAYLOAD_MAX)
            except OSError:
                break
            if len(data) < 12:
                continue  # the shutdown's wake-up, or no DNS header
            kept = self._kept_answers.get(data[2:])
            if kept is not None:
                self._send_udp(data[:2] + kept[2:], peer)
                continue
            try:
                request = DNSRecord.parse(data)
            except Exception as error:
                log.debug("dropping an unparsable DNS packet from %s: %s", peer, error)
                continue
            if self.resolver.is_forwarded(request):
                self._forwarding.submit(self._answer_udp, request, peer)
            else:
                self._answer_udp(request, peer, keep_as=data[2:])

    def _answer_udp(self, request: DNSRecord, peer: tuple[str, int], keep_as: bytes | None = None) -> None:
        kept_answers = self._kept_answers
        reply = self.reply(request)
        try:
            packed = reply.pack()
            if len(packed) > _udp_payload_size(request):
                packed = reply.truncate().pack()  # header and question only, TC set: ask over TCP
        except Exception as error:
            log.warning("DNS reply to %s for %s could not be packed: %s", peer, request.q.qname, error)
            return
        if keep_as is not None and reply.header.rcode != RCODE.SERVFAIL and len(kept_answers) < KEPT_ANSWERS_MAX:
            kept_answers[keep_as] = packed
        self._send_udp(packed, peer)

    def _send_udp(self, packed: bytes, peer: tuple[str, int]) -> None:
        try:
            self._udp.sendto(packed, peer)
        except OSError as error:  # a closed socket at stop, an unreachable client
            log.debug("DNS reply to %s not sent: %s", peer, error)

    # -- TCP ---------------------------------------------------------------------------------------

    def _serve_tcp(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, peer = self._tcp.accept()
            except OSError:
                break
            if not self._connections.acquire(blocking=False):
                log.warning("DNS over TCP: %d connections open, refusing %s", TCP_CONNECTIONS_MAX, peer)
                connection.close()
                continue
            threading.Thread(target=self._serve_connection, args=(connection, peer), name="dns-tcp-connection",
                             daemon=True).start()

    def _serve_connection(self, connection: socket.socket, peer: tuple[str, int]) -> None:
        try:
            connection.settimeout(TCP_IDLE_SECONDS)
            while not self._stopping.is_set():
                header = _read_exactly(connection, 2)
                if header is None:
                    return
                (length,) = struct.unpack("!H", header)
                data = _read_exactly(connection, length)
                if data is None:
                    return
                try:
                    request = DNSRecord.parse(data)
                except Exception as error:
                    log.debug("closing a DNS over TCP connection from %s: unparsable query: %s", peer, error)
                    return
                packed = self.reply(request).pack()
                connection.sendall(struct.pack("!H", len(packed)) + packed)
        except OSError as error:  # idle timeout, reset by the client
            log.debug("DNS over TCP connection from %s ended: %s", peer, error)
        finally:
            connection.close()
            self._connections.release()


def _read_exactly(connection: socket.socket, count: int) -> bytes | None:
    """`count` bytes, or None when the peer closed the connection first."""
    data = b""
    while len(data) < count:
        chunk = connection.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _udp_payload_size(request: DNSRecord) -> int:
    """The largest UDP reply the client takes: the EDNS size it announces (OPT's class), else 512."""
    for record in request.ar:
        if record.rtype == QTYPE.OPT:
            return max(UDP_PAYLOAD_DEFAULT, min(int(record.rclass), UDP_PAYLOAD_MAX))
    return UDP_PAYLOAD_DEFAULT
