"""The pure parts of pod networking: interface names, addresses and argument checks (no netlink)."""

from __future__ import annotations

import pytest

from minikube_py.runtime.network import (PodNetwork, alias_requests, bridge_mac, host_veth_name, host_veth_requests,
                                         pod_side_requests)
from minikube_py.runtime.types import ContainerRuntimeError


@pytest.mark.parametrize("cluster", ["a", "dev", "minikube", "abcdefghij"])
def test_host_veth_names_fit_in_fifteen_characters_and_carry_the_cluster_name(cluster):
    name = host_veth_name(cluster, "0b6f2a1c-5c1d-4c3e-9a8e-2f1d3c4b5a69")
    assert len(name) == 15
    assert name.startswith("mk" + cluster[:7])
    assert len(name) - len("mk" + cluster[:7]) >= 6


def test_host_veth_names_are_stable_per_pod_and_differ_between_pods():
    first = host_veth_name("dev", "uid-1")
    assert first == host_veth_name("dev", "uid-1")
    names = {host_veth_name("dev", f"uid-{index}") for index in range(2000)}
    assert len(names) == 2000


def test_clusters_sharing_a_long_prefix_get_different_veth_names():
    assert host_veth_name("abcdefgh1", "uid-1") != host_veth_name("abcdefgh2", "uid-1")


def test_a_retry_attempt_gives_another_name():
    assert host_veth_name("dev", "uid-1", attempt=1) != host_veth_name("dev", "uid-1")


def test_pod_network_derives_bridge_gateway_and_prefix_from_the_cidr():
    network = PodNetwork("dev", "10.244.0.0/24")
    assert network.bridge_name == "mkpy-dev"
    assert network.gateway == "10.244.0.1"
    assert network.prefix_len == 24


def test_allocation_candidates_skip_network_gateway_and_broadcast():
    network = PodNetwork("dev", "10.250.1.0/29")
    assert list(network.allocate_candidates()) == [f"10.250.1.{host}" for host in range(2, 7)]


@pytest.mark.parametrize("cluster", ["", "Dev", "1dev", "dev-1", "abcdefghijk"])
def test_cluster_names_outside_the_naming_rule_are_refused(cluster):
    with pytest.raises(ValueError, match="cluster name"):
        PodNetwork(cluster, "10.244.0.0/24")


@pytest.mark.parametrize("cidr", ["10.244.0.0/31", "fd00::/64"])
def test_pod_cidrs_too_small_or_not_ipv4_are_refused(cidr):
    with pytest.raises(ValueError, match="pod CIDR"):
        PodNetwork("dev", cidr)


def test_attach_refuses_an_ip_outside_the_cidr_before_touching_the_host():
    with pytest.raises(ContainerRuntimeError) as raised:
        PodNetwork("dev", "10.244.0.0/24").attach("uid-1", 1, "10.245.0.5", "default/web")
    assert raised.value.reason == "CreatePodSandboxError"
    assert "10.245.0.5" in raised.value.message


def test_bridge_mac_is_unicast_locally_administered_and_per_cluster():
    mac = bridge_mac("dev")
    first_octet = int(mac.split(":")[0], 16)
    assert first_octet & 0x02 and not first_octet & 0x01
    assert mac == bridge_mac("dev") != bridge_mac("other")
    assert len(mac.split(":")) == 6


def test_pod_mac_is_derived_from_the_ip_so_a_reused_ip_keeps_its_arp_entries_valid():
    from minikube_py.runtime.network import pod_mac

    assert pod_mac("10.244.0.5") == "0a:58:0a:f4:00:05"
    assert pod_mac("10.244.0.5") == pod_mac("10.244.0.5")
    assert pod_mac("10.244.0.6") != pod_mac("10.244.0.5")


def test_the_pod_side_is_four_acknowledged_requests_address_lo_up_eth0_up_default_route():
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    encoded = [bytes(message.data) for message in pod_side_requests(2, "10.244.0.7", 24, "10.244.0.1")]
    address, lo, eth0, route = ifaddrmsg(encoded[0]), ifinfmsg(encoded[1]), ifinfmsg(encoded[2]), rtmsg(encoded[3])
    for message in (address, lo, eth0, route):
        message.decode()
    assert [message["header"]["sequence_number"] for message in (address, lo, eth0, route)] == [1, 2, 3, 4]
    assert all(message["header"]["flags"] & 0x4 for message in (address, lo, eth0, route))  # NLM_F_ACK
    assert (address["index"], address["prefixlen"], address.get_attr("IFA_LOCAL")) == (2, 24, "10.244.0.7")
    assert [(link["index"], link["flags"] & 1, link["change"] & 1) for link in (lo, eth0)] == [(1, 1, 1), (2, 1, 1)]
    assert (route["dst_len"], route["table"], route.get_attr("RTA_GATEWAY"), route.get_attr("RTA_OIF")) == (0, 254, "10.244.0.1", 2)


def test_the_host_side_is_the_veth_pair_on_the_bridge_then_its_alias():
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

    (pair,) = [ifinfmsg(bytes(message.data)) for message in host_veth_requests("mkdevabc123", 7, 4242, "02:42:0a:f4:00:07")]
    (alias,) = [ifinfmsg(bytes(message.data)) for message in alias_requests("mkdevabc123", "minikube-py/dev/default/web")]
    pair.decode()
    alias.decode()
    assert pair["header"]["flags"] & 0x605 == 0x605  # request, ack, create, exclusive: never reuse a link
    assert (pair.get_attr("IFLA_IFNAME"), pair.get_attr("IFLA_MASTER"), pair["flags"] & 1) == ("mkdevabc123", 7, 1)
    info = pair.get_attr("IFLA_LINKINFO")
    assert info.get_attr("IFLA_INFO_KIND") == "veth"
    peer = info.get_attr("IFLA_INFO_DATA").get_attr("VETH_INFO_PEER")
    assert (peer.get_attr("IFLA_IFNAME"), peer.get_attr("IFLA_NET_NS_PID"), peer.get_attr("IFLA_ADDRESS")) == \
        ("eth0", 4242, "02:42:0a:f4:00:07")
    assert alias["header"]["flags"] & 0x600 == 0  # changes the link named, creates nothing
    assert (alias.get_attr("IFLA_IFNAME"), alias.get_attr("IFLA_IFALIAS")) == ("mkdevabc123", "minikube-py/dev/default/web")
