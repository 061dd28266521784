"""The Node object this agent stands for: what the host offers and whether the agent is alive.

Like the kubelet, the agent registers its Node (capacity and allocatable from the host's CPUs
and /proc/meminfo, 110 pods, InternalIP and Hostname addresses, nodeInfo) and then refreshes the
conditions' lastHeartbeatTime every few seconds; Ready stays True with reason KubeletReady while
the agent runs. The scheduler and `kubectl get nodes` read this object.
"""

from __future__ import annotations

import os
import platform
import socket

from minikube_py import __version__ as minikube_py_version
from minikube_py.api.times import format_time

MAX_PODS = 110
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
        "operatingSystem": "linux",
        "architecture": ARCHITECTURES.get(architecture, architecture),
    }


def node_labels(node_name: str) -> dict:
    return {
        "kubernetes.io/hostname": node_name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": node_info()["architecture"],
    }


def node_status(node_name: str, address: str, now: float, previous_conditions: list[dict] | None = None) -> dict:
    """The Node's status; lastTransitionTime is kept from `previous_conditions` when status is unchanged."""
    resources = {"cpu": str(os.cpu_count() or 1), "memory": f"{memory_kib()}Ki", "pods": str(MAX_PODS)}
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
        "capacity": resources,
        "allocatable": dict(resources),
        "conditions": conditions,
        "addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": node_name}],
        "nodeInfo": node_info(),
    }
