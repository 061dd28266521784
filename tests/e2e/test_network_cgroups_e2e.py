"""Real cgroups and real pod networking on this host: limits land in cgroupfs, pods on the bridge answer.

Each test makes its own network namespaces from a forked `busybox sleep` that unshared its
network namespace, and its own bridge and cgroup parent named after the test; facts are read
from /proc, cgroupfs and ping, and everything is removed afterwards, failures included.
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time

import pytest
from pyroute2 import IPRoute

from minikube_py.runtime import linux
from minikube_py.runtime.cgroups import CgroupDriver
from minikube_py.runtime.network import PodNetwork
from minikube_py.runtime.types import CgroupLimits, ContainerRuntimeError
from tests.e2e.cluster import wait_for

# Own name and subnet per run, so two runs of this module on one host never meet.
NETWORK_NAME = "net" + "".join(random.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=4))
SUBNET = f"10.250.{random.randint(0, 255)}"
CGROUP_PARENT = f"minikube-py-{NETWORK_NAME}"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="cgroups and network namespaces need root"),
]

BUSYBOX = "/usr/bin/busybox"
MEMORY_LIMIT = 32 * 1024 * 1024


def in_new_network_namespace() -> None:
    linux.unshare(linux.CLONE_NEWNET)


def run_in_network_namespace_of(pid: int):
    def enter() -> None:
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        linux.setns(fd, linux.CLONE_NEWNET)

    return enter


def ping(address: str, preexec_fn=None) -> bool:
    result = subprocess.run([BUSYBOX, "ping", "-c1", "-W1", address], capture_output=True, preexec_fn=preexec_fn)
    return result.returncode == 0


@pytest.fixture
def sandboxes():
    """Factory for processes that each hold a fresh network namespace; all killed at the end."""
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        process = subprocess.Popen([BUSYBOX, "sleep", "300"], preexec_fn=in_new_network_namespace)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


@pytest.fixture
def network():
    pod_network = PodNetwork(NETWORK_NAME, f"{SUBNET}.0/24")
    pod_network.ensure_bridge()
    yield pod_network
    for name in pod_network.list_veths():
        pod_network.detach(name)
    pod_network.remove_bridge()
    with IPRoute() as ipr:
        assert not ipr.link_lookup(ifname=pod_network.bridge_name)


@pytest.fixture
def cgroup_driver():
    driver = CgroupDriver.detect()
    yield driver
    driver.remove(CGROUP_PARENT)
    assert all(not os.path.exists(path) for path in driver.absolute_paths(CGROUP_PARENT).values())


def default_gateway_of(pid: int) -> str | None:
    """The default route's gateway in the network namespace of `pid`, from /proc/<pid>/net/route."""
    with open(f"/proc/{pid}/net/route") as file:
        for line in file.read().splitlines()[1:]:
            fields = line.split()
            if fields[1] == "00000000":
                return ".".join(str(byte) for byte in bytes.fromhex(fields[2])[::-1])
    return None


def test_pods_on_the_bridge_answer_the_host_and_each_other(network, sandboxes):
    first, second = sandboxes(), sandboxes()
    first_ip, second_ip = f"{SUBNET}.10", f"{SUBNET}.11"
    first_veth = network.attach("sandbox-first", first.pid, first_ip, "default/first")
    second_veth = network.attach("sandbox-second", second.pid, second_ip, "default/second")

    assert sorted([first_veth, second_veth]) == network.list_veths()
    assert default_gateway_of(first.pid) == network.gateway
    assert ping(first_ip) and ping(second_ip)
    assert ping(second_ip, preexec_fn=run_in_network_namespace_of(first.pid))
    with IPRoute() as ipr:
        link = ipr.link("get", ifname=first_veth)[0]
        assert link.get_attr("IFLA_IFALIAS") == f"minikube-py/{NETWORK_NAME}/default/first"
        assert link.get_attr("IFLA_MASTER") == ipr.link_lookup(ifname=network.bridge_name)[0]

    network.detach(first_veth)
    network.detach(first_veth)  # idempotent
    assert network.list_veths() == [second_veth]
    assert not ping(first_ip)


def test_a_released_veth_goes_with_its_namespace_and_one_whose_namespace_lives_on_is_swept(network, sandboxes, monkeypatch):
    from minikube_py.runtime import network as network_module

    monkeypatch.setattr(network_module, "RELEASED_VETH_GRACE_SECONDS", 0.2)
    ended, held = sandboxes(), sandboxes()
    ended_veth = network.attach("sandbox-ended", ended.pid, f"{SUBNET}.30", "default/ended")
    held_veth = network.attach("sandbox-held", held.pid, f"{SUBNET}.31", "default/held")
    ended.kill()
    ended.wait()
    network.release_with_namespace(ended_veth)
    network.release_with_namespace(held_veth)  # its namespace still has a process: the sweep must delete it
    wait_for(lambda: ended_veth not in network.list_veths(), 10, "the kernel removes the veth of a dead namespace")
    assert held_veth in network.list_veths()
    time.sleep(0.2)
    network.sweep_released()
    assert network.list_veths() == []


def test_a_veth_made_again_under_a_released_name_is_not_swept(network, sandboxes, monkeypatch):
    from minikube_py.runtime import network as network_module

    monkeypatch.setattr(network_module, "RELEASED_VETH_GRACE_SECONDS", 0.0)
    old, new = sandboxes(), sandboxes()
    name = network.attach("sandbox-reborn", old.pid, f"{SUBNET}.32", "default/reborn")
    network.release_with_namespace(name)
    assert network.attach("sandbox-reborn", new.pid, f"{SUBNET}.32", "default/reborn") == name
    network.sweep_released()
    assert network.list_veths() == [name]


def test_attaching_the_same_sandbox_again_replaces_its_leftover_veth(network, sandboxes):
    old, new = sandboxes(), sandboxes()
    name = network.attach("sandbox-again", old.pid, f"{SUBNET}.20", "default/again")
    assert network.attach("sandbox-again", new.pid, f"{SUBNET}.20", "default/again") == name
    assert network.list_veths() == [name]
    assert ping(f"{SUBNET}.20", preexec_fn=run_in_network_namespace_of(new.pid))


def test_a_failed_attach_leaves_no_veth_behind(network, sandboxes):
    gone = sandboxes()
    gone.kill()
    gone.wait()
    with pytest.raises(ContainerRuntimeError) as raised:
        network.attach("sandbox-gone", gone.pid, f"{SUBNET}.30", "default/gone")
    assert raised.value.reason == "CreatePodSandboxError"
    assert network.list_veths() == []


def test_attach_cost_per_pod(network, sandboxes):
    """Not a timing assertion: prints the median so the report and benchmarks can quote it."""
    durations = []
    addresses = network.allocate_candidates()
    for index in range(20):
        process = sandboxes()
        started = time.perf_counter()
        network.attach(f"sandbox-{index}", process.pid, next(addresses), f"default/pod-{index}")
        durations.append((time.perf_counter() - started) * 1000)
    print(f"\nattach per pod: median {statistics.median(durations):.2f} ms, max {max(durations):.2f} ms", file=sys.stderr)
    assert len(network.list_veths()) == 20


def test_a_cgroup_gets_its_memory_limit_and_its_process(cgroup_driver):
    path = f"{CGROUP_PARENT}/pod-1/c1"
    cgroup_driver.create(path, CgroupLimits(memory_bytes=MEMORY_LIMIT, cpu_quota_us=50_000, pids_max=32))
    memory_directory = cgroup_driver.absolute_paths(path)["memory"]
    limit_file = "memory.max" if cgroup_driver.version == 2 else "memory.limit_in_bytes"
    with open(os.path.join(memory_directory, limit_file)) as file:
        assert int(file.read()) == MEMORY_LIMIT
    assert cgroup_driver.read_limits(path)["pids_max"] == 32

    process = subprocess.Popen([BUSYBOX, "sleep", "300"])
    try:
        cgroup_driver.add_process(path, process.pid)
        assert cgroup_driver.procs(path) == [process.pid]
        with open(f"/proc/{process.pid}/cgroup") as file:
            assert any(line.endswith(f"/{path}") for line in file.read().splitlines() if "memory" in line or line.startswith("0::"))
        # remove() kills what is left; the process must be reaped for its cgroup to empty.
        reaped = []
        waiter = threading.Thread(target=lambda: reaped.append(process.wait()))
        waiter.start()
        cgroup_driver.remove(f"{CGROUP_PARENT}/pod-1")
        waiter.join(timeout=10)
        assert reaped == [-signal.SIGKILL]
        assert not os.path.exists(memory_directory)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_going_over_the_memory_limit_is_counted_as_an_oom_kill(cgroup_driver):
    path = f"{CGROUP_PARENT}/pod-2/hog"
    cgroup_driver.create(path, CgroupLimits(memory_bytes=MEMORY_LIMIT))
    hog = subprocess.run(
        [sys.executable, "-c", "data = b'x' * (256 << 20)"],
        preexec_fn=lambda: cgroup_driver.add_process(path, os.getpid()),
        capture_output=True,
    )
    assert hog.returncode == -signal.SIGKILL
    wait_for(lambda: cgroup_driver.oom_kill_count(path) >= 1, 5, "the OOM kill to be counted")
