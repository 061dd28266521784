"""The Node the agent reports: capacity from the CPUs and memory the daemon may use, pods from
--max-pods, and allocatable less kubelet's default memory eviction threshold."""

from __future__ import annotations

import os
import platform

from minikube_py.agent import node


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as file:
        file.write(text)


def test_a_cfs_quota_on_the_daemons_v1_cgroup_lowers_the_cpu_count(tmp_path):
    write(tmp_path / "proc", "4:cpu,cpuacct:/limited\n3:memory:/limited\n0::/\n")
    write(tmp_path / "cg/cpu,cpuacct/limited/cpu.cfs_quota_us", "150000\n")
    write(tmp_path / "cg/cpu,cpuacct/limited/cpu.cfs_period_us", "100000\n")
    cpus = node.cpu_capacity(str(tmp_path / "proc"), str(tmp_path / "cg"))
    assert cpus == min(2, len(os.sched_getaffinity(0)))


def test_no_quota_leaves_the_cpus_of_the_affinity_mask(tmp_path):
    write(tmp_path / "proc", "4:cpu,cpuacct:/\n")
    write(tmp_path / "cg/cpu,cpuacct/cpu.cfs_quota_us", "-1\n")
    write(tmp_path / "cg/cpu,cpuacct/cpu.cfs_period_us", "100000\n")
    assert node.cpu_capacity(str(tmp_path / "proc"), str(tmp_path / "cg")) == len(os.sched_getaffinity(0))


def test_a_v2_cpu_max_and_memory_max_are_read_from_the_unified_hierarchy(tmp_path):
    write(tmp_path / "proc", "0::/daemon\n")
    write(tmp_path / "cg/daemon/cpu.max", "100000 100000\n")
    write(tmp_path / "cg/daemon/memory.max", f"{512 * 2**20}\n")
    write(tmp_path / "meminfo", "MemTotal:       16000000 kB\n")
    assert node.cpu_capacity(str(tmp_path / "proc"), str(tmp_path / "cg")) == 1
    assert node.memory_capacity_kib(str(tmp_path / "meminfo"), str(tmp_path / "proc"), str(tmp_path / "cg")) == 512 * 1024


def test_memory_without_a_limit_is_the_hosts(tmp_path):
    write(tmp_path / "proc", "3:memory:/\n")
    write(tmp_path / "cg/memory/memory.limit_in_bytes", "9223372036854771712\n")
    write(tmp_path / "meminfo", "MemTotal:       16000000 kB\n")
    assert node.memory_capacity_kib(str(tmp_path / "meminfo"), str(tmp_path / "proc"), str(tmp_path / "cg")) == 16000000


def test_the_node_reports_max_pods_and_allocatable_memory_less_the_eviction_threshold():
    status = node.node_status("n1", "10.0.0.1", 1_800_000_000.0, max_pods=1000)
    assert status["capacity"]["pods"] == status["allocatable"]["pods"] == "1000"
    capacity_kib = int(status["capacity"]["memory"].removesuffix("Ki"))
    assert status["allocatable"]["memory"] == f"{capacity_kib - 100 * 1024}Ki"
    assert status["allocatable"]["cpu"] == status["capacity"]["cpu"]


def test_the_agent_reports_its_configured_max_pods(tmp_path):
    from tests.unit.agent_harness import NODE, AgentHarness

    harness = AgentHarness(tmp_path)
    harness.agent.config.max_pods = 7
    harness.start()
    assert harness.registry.get("nodes", None, NODE)["status"]["allocatable"]["pods"] == "7"


def test_the_node_reports_every_node_info_field_from_the_host(tmp_path, monkeypatch):
    from tests.unit.agent_harness import NODE, AgentHarness

    host_files = {"/etc/machine-id": "0123456789abcdef0123456789abcdef",
                  "/sys/class/dmi/id/product_uuid": "4c4c4544-0042-3510-8052-b3c04f4e4d32",
                  "/proc/sys/kernel/random/boot_id": "d2c1e6a4-98f3-4a51-9d2b-6c7e0f1a2b3c"}
    monkeypatch.setattr(node, "_read_first_line", lambda path: host_files[path])
    harness = AgentHarness(tmp_path)
    harness.start()
    info = harness.registry.get("nodes", None, NODE)["status"]["nodeInfo"]
    assert info == {
        "machineID": "0123456789abcdef0123456789abcdef",
        "systemUUID": "4c4c4544-0042-3510-8052-b3c04f4e4d32",
        "bootID": "d2c1e6a4-98f3-4a51-9d2b-6c7e0f1a2b3c",
        "kernelVersion": os.uname().release,
        "osImage": node._os_image(),
        "containerRuntimeVersion": f"minikube-py://{node.minikube_py_version}",
        "kubeletVersion": node.KUBELET_VERSION,
        "kubeProxyVersion": node.KUBELET_VERSION,  # deprecated, yet required by the Python client's model
        "operatingSystem": "linux",
        "architecture": node.ARCHITECTURES.get(platform.machine(), platform.machine()),
    }
    assert info["kubeletVersion"].startswith("v1.") and info["osImage"]
    assert harness.registry.get("nodes", None, NODE)["metadata"]["labels"]["kubernetes.io/arch"] == info["architecture"]


def test_node_info_reads_the_hosts_ids_and_leaves_unreadable_ones_empty():
    info = node.node_info()
    with open("/proc/sys/kernel/random/boot_id") as boot_id:
        assert info["bootID"] == boot_id.read().strip()
    if os.path.exists("/etc/machine-id"):
        with open("/etc/machine-id") as machine_id:
            assert info["machineID"] == machine_id.read().strip()
    assert node._read_first_line("/nonexistent/product_uuid") == ""
