"""Cluster DNS answers per record type, from the informer caches of an in-memory cluster, and the
pod's resolv.conf by dnsPolicy."""

from __future__ import annotations

import socket
import struct

import pytest
from dnslib import EDNS0, RCODE, RR, DNSRecord

from minikube_py import api
from minikube_py.agent.podfiles import pod_resolv_conf
from minikube_py.dns.resolver import ClusterResolver
from minikube_py.dns.server import ClusterDnsServer

HOST_RESOLV = "nameserver 192.168.1.1\nsearch corp.example\noptions edns0\n"


@pytest.fixture
def resolver(cluster):
    cluster.create("services", {"metadata": {"name": "web"}, "spec": {
        "clusterIP": "10.96.0.20", "selector": {"app": "web"},
        "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    cluster.create("services", {"metadata": {"name": "db"}, "spec": {
        "clusterIP": "None", "selector": {"app": "db"}, "ports": [{"name": "sql", "port": 5432}]}})
    cluster.create("services", {"metadata": {"name": "ext"}, "spec": {"type": "ExternalName",
                                                                      "externalName": "example.com"}})
    cluster.create("endpointslices", {"metadata": {"name": "db-a", "labels": {"kubernetes.io/service-name": "db"}},
                                      "addressType": "IPv4", "ports": [{"name": "sql", "port": 5432}],
                                      "endpoints": [
                                          {"addresses": ["10.244.0.5"], "hostname": "db-0", "conditions": {"ready": True}},
                                          {"addresses": ["10.244.0.6"], "conditions": {"ready": True}},
                                          {"addresses": ["10.244.0.7"], "conditions": {"ready": False}}]})
    forwarded = []

    def forward(request):
        forwarded.append(str(request.q.qname))
        reply = request.reply()
        reply.add_answer(*RR.fromZone(f"{request.q.qname} 60 A 93.184.216.34"))
        return reply

    cluster.refresh()
    dns = ClusterResolver(cluster.informers.informer("services"), cluster.informers.informer("endpointslices"),
                          forward=forward)
    cluster.refresh()
    dns.forwarded = forwarded
    return dns


def ask(resolver, name, qtype="A"):
    reply = resolver.answer(DNSRecord.question(name, qtype))
    return reply.header.rcode, sorted(str(record.rdata) for record in reply.rr)


def test_a_service_name_is_its_cluster_ip(resolver):
    assert ask(resolver, "web.default.svc.cluster.local") == (RCODE.NOERROR, ["10.96.0.20"])


def test_a_headless_service_name_is_each_ready_endpoint(resolver):
    assert ask(resolver, "db.default.svc.cluster.local") == (RCODE.NOERROR, ["10.244.0.5", "10.244.0.6"])
    assert ask(resolver, "db-0.db.default.svc.cluster.local") == (RCODE.NOERROR, ["10.244.0.5"])
    assert ask(resolver, "10-244-0-6.db.default.svc.cluster.local") == (RCODE.NOERROR, ["10.244.0.6"])


def test_named_ports_have_srv_records(resolver):
    assert ask(resolver, "_http._tcp.web.default.svc.cluster.local", "SRV") == \
        (RCODE.NOERROR, ["0 100 80 web.default.svc.cluster.local."])
    assert ask(resolver, "_sql._tcp.db.default.svc.cluster.local", "SRV") == (RCODE.NOERROR, [
        "0 100 5432 10-244-0-6.db.default.svc.cluster.local.", "0 100 5432 db-0.db.default.svc.cluster.local."])


def test_pod_names_carry_their_address(resolver):
    assert ask(resolver, "10-244-0-9.default.pod.cluster.local") == (RCODE.NOERROR, ["10.244.0.9"])


def test_external_names_are_cnames(resolver):
    assert ask(resolver, "ext.default.svc.cluster.local") == (RCODE.NOERROR, ["example.com."])


def test_unknown_cluster_names_are_nxdomain_and_other_types_empty(resolver):
    assert ask(resolver, "nope.default.svc.cluster.local")[0] == RCODE.NXDOMAIN
    assert ask(resolver, "web.other.svc.cluster.local")[0] == RCODE.NXDOMAIN
    assert ask(resolver, "web.default.svc.cluster.local", "AAAA") == (RCODE.NOERROR, [])
    assert resolver.forwarded == []


def test_other_names_are_forwarded(resolver):
    assert ask(resolver, "example.org") == (RCODE.NOERROR, ["93.184.216.34"])
    assert resolver.forwarded == ["example.org."]


def pod(policy="ClusterFirst", dns_config=None):
    spec = {"containers": [{"name": "c", "image": "busybox"}], "dnsPolicy": policy}
    if dns_config:
        spec["dnsConfig"] = dns_config
    return api.Pod.model_validate({"metadata": {"name": "p", "namespace": "team"}, "spec": spec})


def test_cluster_first_pods_get_the_cluster_dns_and_search_path():
    assert pod_resolv_conf(pod(), HOST_RESOLV, "10.244.0.1") == (
        "nameserver 10.244.0.1\n"
        "search team.svc.cluster.local svc.cluster.local cluster.local corp.example\n"
        "options ndots:5\n")


def test_default_and_none_policies_and_dns_config():
    assert pod_resolv_conf(pod("Default"), HOST_RESOLV, "10.244.0.1") == \
        "nameserver 192.168.1.1\nsearch corp.example\noptions edns0\n"
    config = {"nameservers": ["1.1.1.1"], "searches": ["a.example"], "options": [{"name": "ndots", "value": "2"}]}
    assert pod_resolv_conf(pod("None", config), HOST_RESOLV, "10.244.0.1") == \
        "nameserver 1.1.1.1\nsearch a.example\noptions ndots:2\n"
    assert pod_resolv_conf(pod("ClusterFirst", config), HOST_RESOLV, "10.244.0.1").splitlines()[-1] == "options ndots:2"


# -- the listeners, on loopback -------------------------------------------------------------------

@pytest.fixture
def dns_server(cluster):
    cluster.create("services", {"metadata": {"name": "big"}, "spec": {
        "clusterIP": "None", "selector": {"app": "big"}, "ports": [{"name": "http", "port": 80}]}})
    cluster.create("endpointslices", {"metadata": {"name": "big-a", "labels": {"kubernetes.io/service-name": "big"}},
                                      "addressType": "IPv4", "ports": [{"name": "http", "port": 80}],
                                      "endpoints": [{"addresses": [f"10.244.1.{index}"], "conditions": {"ready": True}}
                                                    for index in range(1, 61)]})
    server = ClusterDnsServer(cluster.client, "127.0.0.1", port=0, informers=cluster.informers, upstreams=[])
    cluster.refresh()
    server.start()
    yield server
    server.stop()


def over_tcp(port, *questions):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        replies = []
        for question in questions:  # several queries on one connection (RFC 7766)
            packed = question.pack()
            connection.sendall(struct.pack("!H", len(packed)) + packed)
            (length,) = struct.unpack("!H", connection.recv(2, socket.MSG_WAITALL))
            replies.append(DNSRecord.parse(connection.recv(length, socket.MSG_WAITALL)))
        return replies


def over_udp(port, question):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(question.pack(), ("127.0.0.1", port))
        return DNSRecord.parse(sock.recv(4096))


def test_a_large_answer_is_truncated_over_udp_and_whole_over_tcp(dns_server):
    question = DNSRecord.question("big.default.svc.cluster.local")
    udp = over_udp(dns_server.port, question)
    assert udp.header.tc == 1 and udp.rr == []
    [tcp, again] = over_tcp(dns_server.port, question, DNSRecord.question("nope.default.svc.cluster.local"))
    assert tcp.header.tc == 0 and len(tcp.rr) == 60
    assert again.header.rcode == RCODE.NXDOMAIN


def test_garbage_is_dropped_and_the_listeners_keep_answering(dns_server):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"\x00\x01garbage", ("127.0.0.1", dns_server.port))
    with socket.create_connection(("127.0.0.1", dns_server.port), timeout=5) as connection:
        connection.sendall(struct.pack("!H", 7) + b"garbage")
        assert connection.recv(2) == b""  # closed, nothing answered
    reply = over_udp(dns_server.port, DNSRecord.question("big.default.svc.cluster.local", "SRV"))
    assert reply.header.rcode == RCODE.NOERROR


def test_stop_closes_both_listeners(cluster):
    server = ClusterDnsServer(cluster.client, "127.0.0.1", port=0, informers=cluster.informers, upstreams=[])
    server.start()
    port = server.port
    server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", port))  # the UDP port is free again


def test_a_kept_udp_answer_carries_the_new_query_id_and_goes_when_the_service_changes(cluster, dns_server):
    question = DNSRecord.question("big.default.svc.cluster.local")
    question.add_ar(EDNS0(udp_len=4096))  # room for all 60 addresses over UDP
    first = over_udp(dns_server.port, question)
    question.header.id = (question.header.id + 1) % 65536
    again = over_udp(dns_server.port, question)
    assert again.header.id == question.header.id and again.rr == first.rr and len(again.rr) == 60
    cluster.registry.delete("services", "default", "big")
    cluster.refresh()
    assert over_udp(dns_server.port, question).header.rcode == RCODE.NXDOMAIN
