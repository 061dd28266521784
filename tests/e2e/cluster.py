"""A real minikube-py cluster for end-to-end tests: own home, own name, own pod CIDR.

`Cluster` is the shared `PrivateCluster` (harness/cluster.py: start and stop through the real
CLI, the leftovers check, KUBECONFIG in its own home) with what the tests ask of it: the real
kubectl, apply, reading and waiting on pods, inspect and exec. `wait_for` and `host_leftovers`
come from the harness too.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from typing import Callable

from harness.cluster import PrivateCluster, Timeout, host_leftovers, wait_for

__all__ = ["Cluster", "Timeout", "free_port", "host_leftovers", "wait_for"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 free right now (for `start --port`)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sequence_numbers(path: str) -> list[int]:
    """The N of each `line N` a test's logger wrote, read from its CRI log file, in file order."""
    with open(path) as file:
        return [int(line.split(" ", 3)[3].split()[1]) for line in file]


class Cluster(PrivateCluster):
    def kubectl(self, *args: str, timeout: float = 30, check: bool = True,
                input: str | None = None) -> subprocess.CompletedProcess:
        """The real kubectl with no flags but the command: the merged context says where and who."""
        kubectl = shutil.which("kubectl")
        assert kubectl is not None, "kubectl is not installed"
        result = subprocess.run([kubectl, *args], env=self.env, capture_output=True, text=True,
                                timeout=timeout, input=input)
        if check:
            assert result.returncode == 0, f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
        return result

    def apply(self, manifest: str) -> subprocess.CompletedProcess:
        return self.cli("apply", "-f", "-", input=manifest)

    def pod(self, name: str, namespace: str = "default") -> dict:
        return json.loads(self.cli("get", "pod", name, "-n", namespace, "-o", "json").stdout)

    def wait_pod(self, name: str, predicate: Callable[[dict], bool], what: str, timeout: float = 30,
                 namespace: str = "default") -> dict:
        return wait_for(lambda: (lambda pod: pod if predicate(pod) else None)(self.client.raw.get("pods", namespace, name)),
                        timeout, f"pod {namespace}/{name}: {what}")

    def wait_running(self, name: str, timeout: float = 30, namespace: str = "default") -> dict:
        def running(pod: dict) -> bool:
            statuses = pod.get("status", {}).get("containerStatuses") or []
            return pod.get("status", {}).get("phase") == "Running" and bool(statuses) and all(
                "running" in (status.get("state") or {}) for status in statuses)
        return self.wait_pod(name, running, "all containers running", timeout, namespace)

    def inspect(self, name: str, namespace: str = "default") -> dict:
        return json.loads(self.cli("inspect", "pod", name, "-n", namespace, "-o", "json").stdout)

    def exec(self, pod: str, *command: str, container: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        args = ["exec", pod] + (["-c", container] if container else []) + ["--", *command]
        return self.cli(*args, check=check)
