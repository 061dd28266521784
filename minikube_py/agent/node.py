"""The Node object this agent stands for: what the host offers and whether the agent is alive.

Like the kubelet, the agent registers its Node (capacity, allocatable, InternalIP and Hostname
addresses, nodeInfo) and then refreshes the conditions' lastHeartbeatTime every few seconds;
Ready stays True with reason KubeletReady while the agent runs. The scheduler and
`kubectl get nodes` read this object.

Capacity is what the daemon may use: the CPUs it may run on (its affinity, lowered by a CFS
quota on its own cgroup), the host's memory (lowered by its cgroup's memory limit) and `pods`
from `start --max-pods` (kubelet's --max-pods, 110 by default). Allocatable is capacity less
kubelet's default hard eviction threshold, `memory.available<100Mi`, as on a kubelet with no
reservations; the scheduler fits pods' requests into allocatable.
"""

from __future__ import annotations

import math
import os
import platform
import socket

from minikube_py import __version__ as minikube_py_version
from minikube_py.api.times import format_time

MAX_PODS = 110
EVICTION_HARD_MEMORY_KIB = 100 * 1024  # kubelet's default evictionHard memory.available: 100Mi
KUBELET_VERSION = "v1.32.0-minikube-py"
ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}

# (type, status, reason, message) as kubelet's setters write them (k/k pkg/kubelet/nodestatus/setters.go).
NODE_CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)


def memory_kib(meminfo: str = "/proc/meminfo") -> int:
    with open(meminfo) as file:
        for line in file:
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    raise RuntimeError(f"{meminfo}: no MemTotal line")


def own_cgroup_directory(controller: str, proc_cgroup: str = "/proc/self/cgroup",
                         root: str = "/sys/fs/cgroup") -> str | None:
    """This process's cgroup directory for `controller` (v1 `cpu`, `memory`; "" for v2), or None."""
    try:
        with open(proc_cgroup) as file:
            lines = file.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller and controller in controllers.split(","):
            return os.path.join(root, controllers, path.lstrip("/"))
        if not controller and controllers == "":
            return os.path.join(root, path.lstrip("/"))
    return None


def _read_numbers(path: str) -> list[str]:
    try:
        with open(path) as file:
            return file.read().split()
    except OSError:
        return []


def cpu_capacity(proc_cgroup: str = "/proc/self/cgroup", root: str = "/sys/fs/cgroup") -> int:
    """Whole CPUs this process may use: its CPU affinity, lowered by a CFS quota (v1 or v2)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota, period = None, None
    v1 = own_cgroup_directory("cpu", proc_cgroup, root)
    if v1 is not None:
        quota_text = _read_numbers(os.path.join(v1, "cpu.cfs_quota_us"))
        period_text = _read_numbers(os.path.join(v1, "cpu.cfs_period_us"))
        if quota_text and period_text and quota_text[0].lstrip("-").isdigit() and int(quota_text[0]) > 0:
            quota, period = int(quota_text[0]), int(period_text[0])
    else:
        v2 = own_cgroup_directory("", proc_cgroup, root)
        fields = _read_numbers(os.path.join(v2, "cpu.max")) if v2 else []
        if len(fields) == 2 and fields[0].isdigit():
            quota, period = int(fields[0]), int(fields[1])
    if quota and period:
        cpus = min(cpus, max(1, math.ceil(quota / period)))
    return max(1, cpus)


def memory_capacity_kib(meminfo: str = "/proc/meminfo", proc_cgroup: str = "/proc/self/cgroup",
                        root: str = "/sys/fs/cgroup") -> int:
    """The host's memory, lowered by a memory limit on this process's cgroup (v1 or v2)."""
    total = memory_kib(meminfo)
    v1 = own_cgroup_directory("memory", proc_cgroup, root)
    limit_file = (os.path.join(v1, "memory.limit_in_bytes") if v1 is not None
                  else os.path.join(own_cgroup_directory("", proc_cgroup, root) or root, "memory.max"))
    limit = _read_numbers(limit_file)
    if limit and limit[0].isdigit():
        total = min(total, int(limit[0]) // 1024)
    return total


def node_resources(max_pods: int = MAX_PODS) -> tuple[dict[str, str], dict[str, str]]:
    """(capacity, allocatable) as the Node reports them."""
    memory = memory_capacity_kib()
    capacity = {"cpu": str(cpu_capacity()), "memory": f"{memory}Ki", "pods": str(max_pods)}
    allocatable = {**capacity, "memory": f"{max(0, memory - EVICTION_HARD_MEMORY_KIB)}Ki"}
    return capacity, allocatable


def host_ip() -> str:
    """The address of the interface holding the default route (a UDP connect sends nothing)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))
        return probe.getsockname()[0]
    except OSError:
        return "127.0.0.1"
    finally:
        probe.close()


def _read_first_line(path: str) -> str:
    try:
        with open(path) as file:
            return file.readline().strip()
    except OSError:
        return ""


def _os_image() -> str:
    try:
        with open("/etc/os-release") as file:
            for line in file:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def node_info() -> dict:
    architecture = platform.machine()
    return {
        "machineID": _read_first_line("/etc/machine-id"),
        "systemUUID": _read_first_line("/sys/class/dmi/id/product_uuid"),
        "bootID": _read_first_line("/proc/sys/kernel/random/boot_id"),
        "kernelVersion": os.uname().release,
        "osImage": _os_image(),
        "containerRuntimeVersion": f"minikube-py://{minikube_py_version}",
        "kubeletVersion": KUBELET_VERSION,
        # Deprecated in Kubernetes but still a required field of clients' NodeSystemInfo models
        # (the Python client refuses a Node without it); our service proxy runs in the daemon.
        "kubeProxyVersion": KUBELET_VERSION,
        "operatingSystem": "linux",
        "architecture": ARCHITECTURES.get(architecture, architecture),
    }


def node_labels(node_name: str) -> dict:
    return {
        "kubernetes.io/hostname": node_name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": node_info()["architecture"],
    }


def node_status(node_name: str, address: str, now: float, previous_conditions: list[dict] | None = None,
                max_pods: int = MAX_PODS) -> dict:
    """The Node's status; lastTransitionTime is kept from `previous_conditions` when status is unchanged."""
    capacity, allocatable = node_resources(max_pods)
    before = {condition.get("type"): condition for condition in previous_conditions or []}
    conditions = []
    for type_, status, reason, message in NODE_CONDITIONS:
        previous = before.get(type_)
        unchanged = previous is not None and previous.get("status") == status and previous.get("lastTransitionTime")
        conditions.append({
            "type": type_,
            "status": status,
            "lastHeartbeatTime": format_time(now),
            "lastTransitionTime": previous["lastTransitionTime"] if unchanged else format_time(now),
            "reason": reason,
            "message": message,
        })
    return {
        "capacity": capacity,
        "allocatable": allocatable,
        "conditions": conditions,
        "addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": node_name}],
        "nodeInfo": node_info(),
    }
