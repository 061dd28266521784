"""A real minikube-py cluster for end-to-end tests: own home, own name, own pod CIDR.

`Cluster` starts the daemon through the real CLI, gives tests the CLI and an API client, waits
on conditions with deadlines (never fixed sleeps), and on teardown runs `stop` and reports
anything of the cluster still on the host. Its KUBECONFIG points into its own home, so `start
--port` merges its context there and never into the real ~/.kube/config; `kubectl()` uses it.
"""

from __future__ import annotations

import glob
import json
import os
import random
import shutil
import string
import subprocess
import sys
import tempfile
import time
from typing import Callable, TypeVar

T = TypeVar("T")


class Timeout(AssertionError):
    pass


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Return the first truthy value of predicate(); fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as error:  # the condition may not be observable yet
            last_error = error
        time.sleep(interval)
    raise Timeout(f"timed out after {timeout:.0f}s waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


def host_leftovers(name: str, home: str) -> list[str]:
    """Everything on the host that carries this cluster's name or home: links, cgroups, mounts, processes."""
    found: list[str] = []
    for link in glob.glob("/sys/class/net/*"):
        link_name = os.path.basename(link)
        try:
            with open(os.path.join(link, "ifalias")) as file:
                alias = file.read().strip()
        except OSError:
            alias = ""
        if link_name == f"mkpy-{name}" or alias.startswith(f"minikube-py/{name}/"):
            found.append(f"link {link_name} ({alias})")
    for path in glob.glob(f"/sys/fs/cgroup/*/minikube-py-{name}") + glob.glob(f"/sys/fs/cgroup/minikube-py-{name}"):
        found.append(f"cgroup {path}")
    with open("/proc/mounts") as file:
        for line in file:
            mount_point = line.split()[1]
            if mount_point.startswith(home):
                found.append(f"mount {mount_point}")
    for proc in glob.glob("/proc/[0-9]*"):
        try:
            with open(os.path.join(proc, "cmdline"), "rb") as file:
                command_line = file.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if home in command_line and int(os.path.basename(proc)) != os.getpid():
            found.append(f"process {os.path.basename(proc)}: {command_line.strip()}")
    return found


class Cluster:
    # More `start` flags a kind of cluster always wants (the benchmarks' room for pods).
    start_flags: tuple[str, ...] = ()

    def __init__(self, restart_backoff: str = "1s:4s", home: str | None = None):
        """`home`: an empty directory to use (a test may mount something there first)."""
        suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=4))
        self.name = f"e2e{suffix}"
        self.home = home or tempfile.mkdtemp(prefix=f"minikube-py-{self.name}-")
        self.pod_cidr = f"10.{random.randint(200, 239)}.{random.randint(0, 255)}.0/24"
        self.restart_backoff = restart_backoff
        self.kubeconfig = os.path.join(self.home, "user-kube", "config")
        self.env = dict(os.environ, MINIKUBE_PY_HOME=self.home, KUBECONFIG=self.kubeconfig)
        self.port: int | None = None
        self._client = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, port: int | None = None) -> "Cluster":
        """Start the daemon; with `port`, the API also listens over TLS on 127.0.0.1:port and
        the cluster's context is merged into `self.kubeconfig` (for kubectl)."""
        port_args = ["--port", str(port)] if port is not None else []
        self.port = port
        result = self.cli("start", "--name", self.name, "--pod-cidr", self.pod_cidr,
                          "--restart-backoff", self.restart_backoff, *port_args, *self.start_flags,
                          check=False, timeout=120)
        if result.returncode != 0:
            log = ""
            if os.path.exists(os.path.join(self.home, "daemon.log")):
                with open(os.path.join(self.home, "daemon.log")) as file:
                    log = file.read()[-4000:]
            self.stop()
            raise AssertionError(f"minikube-py start failed:\n{result.stdout}\n{result.stderr}\n{log}")
        return self

    def stop(self) -> list[str]:
        """Stop the cluster; return what is still left on the host (should be nothing)."""
        # sleep and httpd run as PID 1 without a SIGTERM handler: don't wait out 30 s grace periods.
        self.cli("stop", "--grace-period", "2", check=False, timeout=180)
        leftovers = host_leftovers(self.name, self.home)
        if not leftovers:
            shutil.rmtree(self.home, ignore_errors=True)
        return leftovers

    # -- access ----------------------------------------------------------------------------------
    def cli(self, *args: str, check: bool = True, timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "minikube_py", *args],
            env=self.env, capture_output=True, text=True, timeout=timeout, input=input,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"minikube-py {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    @property
    def client(self):
        if self._client is None:
            from minikube_py.client.api import ApiClient

            self._client = ApiClient.connect(self.home)
        return self._client

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
