"""The node's pod-IP leases: files in its own directory, never in the API's store."""

from __future__ import annotations

import os
import stat

import pytest

from minikube_py import daemon
from minikube_py.agent.ipam import HostLocalIpam
from minikube_py.store import Store


def test_each_pod_gets_its_own_address_after_the_gateway_and_keeps_it(tmp_path):
    ipam = HostLocalIpam(str(tmp_path / "pod-ips"), "10.244.0.0/24")
    first = ipam.allocate("uid-a")
    assert first == "10.244.0.2"  # .1 is the bridge
    assert ipam.allocate("uid-b") == "10.244.0.3"
    assert ipam.allocate("uid-a") == first
    assert ipam.allocations() == {"10.244.0.2": "uid-a", "10.244.0.3": "uid-b"}


def test_leases_outlive_the_process_and_a_release_frees_the_address(tmp_path):
    directory = str(tmp_path / "pod-ips")
    HostLocalIpam(directory, "10.244.0.0/24").allocate("uid-a")
    again = HostLocalIpam(directory, "10.244.0.0/24")
    assert again.allocate("uid-a") == "10.244.0.2"
    again.release("uid-a")
    assert again.allocations() == {}
    assert again.allocate("uid-b") == "10.244.0.2"


def test_a_full_range_is_a_clear_error(tmp_path):
    ipam = HostLocalIpam(str(tmp_path / "pod-ips"), "10.244.0.0/30")  # hosts .1 (bridge) and .2
    ipam.allocate("uid-a")
    with pytest.raises(RuntimeError, match="pod IP pool exhausted"):
        ipam.allocate("uid-b")


def test_the_lease_files_are_readable_by_root_only(tmp_path):
    ipam = HostLocalIpam(str(tmp_path / "pod-ips"), "10.244.0.0/24")
    address = ipam.allocate("uid-a")
    assert stat.S_IMODE(os.stat(ipam.directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(ipam.directory, address)).st_mode) == 0o600


def test_the_daemon_takes_over_leases_an_older_version_kept_in_the_store(tmp_path):
    store = Store(":memory:")
    try:
        pool = "pod-ip/10.244.0.0/24"
        store.allocate(pool, ["10.244.0.7"], "uid-running")
        ipam = daemon.node_ipam(str(tmp_path), store, "10.244.0.0/24")
        assert ipam.allocations() == {"10.244.0.7": "uid-running"}
        assert ipam.allocate("uid-running") == "10.244.0.7"
        assert store.allocations(pool) == {}
    finally:
        store.close()


def test_a_released_address_is_not_handed_out_again_before_the_others(tmp_path):
    ipam = HostLocalIpam(str(tmp_path / "pod-ips"), "10.244.0.0/24")
    first = ipam.allocate("uid-a")
    ipam.release("uid-a")
    assert ipam.allocate("uid-b") == "10.244.0.3"
    assert first not in ipam.allocations()


def test_a_lease_file_the_index_did_not_know_is_skipped_and_learnt(tmp_path):
    ipam = HostLocalIpam(str(tmp_path / "pod-ips"), "10.244.0.0/24")
    with open(os.path.join(ipam.directory, "10.244.0.2"), "w") as file:
        file.write("uid-elsewhere")
    assert ipam.allocate("uid-a") == "10.244.0.3"
    assert ipam.allocations() == {"10.244.0.2": "uid-elsewhere", "10.244.0.3": "uid-a"}
