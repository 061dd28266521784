"""A private minikube-py cluster on this host, shared by the e2e tests and the benchmarks.

`PrivateCluster` has its own name, home and pod CIDR, so it never touches another cluster; it
starts the daemon through the real CLI, gives the CLI and an API client, and `stop` reports
anything of the cluster still on the host (`host_leftovers`). Its KUBECONFIG points into its own
home, so `start --port` merges its context there and never into the real ~/.kube/config.
`wait_for` waits on a condition with a deadline (never a fixed sleep). The e2e tests add their
helpers in tests/e2e/cluster.py, the benchmarks theirs in benchmarks/minikube_side.py.
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
from typing import Callable, Self, TypeVar

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
    """Everything on the host that carries this cluster's name or home: links, cgroups, mounts,
    nftables tables, processes."""
    found: list[str] = []
    for link in glob.glob("/sys/class/net/*"):
        link_name = os.path.basename(link)
        try:
            with open(os.path.join(link, "ifalias")) as file:
                alias = file.read().strip()
        except OSError:
            alias = ""
        if link_name in (f"mkpy-{name}", f"mkpn-{name}") or alias.startswith(
                (f"minikube-py/{name}/", f"minikube-py-node/{name}/")):
            found.append(f"link {link_name} ({alias})")
    for path in glob.glob(f"/sys/fs/cgroup/*/minikube-py-{name}") + glob.glob(f"/sys/fs/cgroup/minikube-py-{name}") \
            + glob.glob(f"/sys/fs/cgroup/*/minikube-py-{name}-*") + glob.glob(f"/sys/fs/cgroup/minikube-py-{name}-*"):
        found.append(f"cgroup {path}")
    # Nodes added on this host: their network namespaces (runtime/node_network.py).
    found += [f"network namespace {path}" for path in glob.glob(f"/run/netns/mkpy-{name}-*")]
    with open("/proc/mounts") as file:
        for line in file:
            mount_point = line.split()[1]
            if mount_point.startswith(home):
                found.append(f"mount {mount_point}")
    found += [f"nftables table ip {table}" for table in _nftables_tables() if table == f"minikube-py-{name}"]
    for proc in glob.glob("/proc/[0-9]*"):
        try:
            with open(os.path.join(proc, "cmdline"), "rb") as file:
                command_line = file.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if home in command_line and int(os.path.basename(proc)) != os.getpid():
            found.append(f"process {os.path.basename(proc)}: {command_line.strip()}")
    return found


def _nftables_tables() -> list[str]:
    """The names of the host's `ip` nftables tables (the service proxy makes one per cluster)."""
    try:
        import nftables
    except ImportError:
        return []
    library = nftables.Nftables()
    library.set_json_output(True)
    code, output, _ = library.json_cmd({"nftables": [{"list": {"tables": {"family": "ip"}}}]})
    if code != 0:
        return []
    listed = output if isinstance(output, dict) else json.loads(output)
    return [item["table"]["name"] for item in listed.get("nftables", []) if "table" in item]


def random_suffix(length: int) -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=length))


NODE_PORT_SLICES = 8  # of 30000-32767, 345 ports each: more than the test workers ever run at once


def node_port_slice(worker: str) -> str:
    """The node-port range for a cluster of pytest-xdist worker `worker` (`gw0`, `gw1`...): its own
    slice, so clusters of workers running side by side never claim the same host port."""
    slot = int(worker[2:]) % NODE_PORT_SLICES if worker.startswith("gw") else random.randrange(NODE_PORT_SLICES)
    size = (32767 - 30000 + 1) // NODE_PORT_SLICES
    low = 30000 + slot * size
    return f"{low}-{low + size - 1}"


class PrivateCluster:
    """One cluster of its own, driven through the real CLI (`start`, `stop`, any command) and the API."""

    # More `start` flags a kind of cluster always wants (the benchmarks' room for pods).
    start_flags: tuple[str, ...] = ()

    def __init__(self, restart_backoff: str = "1s:4s", home: str | None = None, name: str | None = None,
                 pod_cidr: str | None = None):
        """`home`: an empty directory to use (a test may mount something there first). The name
        (`e2e` + 4 random characters), the pod CIDR (a random /24 in 10.200-239) and the service
        CIDR (a random /24 in 10.96-127, so clusters running side by side never share a
        ClusterIP) are the e2e tests' unless given. Node ports are the host's, so each pytest-xdist
        worker's clusters take their own slice of 30000-32767 (a random slice outside pytest)."""
        self.name = name or f"e2e{random_suffix(4)}"
        self.home = home or tempfile.mkdtemp(prefix=f"minikube-py-{self.name}-")
        self.pod_cidr = pod_cidr or f"10.{random.randint(200, 239)}.{random.randint(0, 255)}.0/24"
        self.service_cidr = f"10.{random.randint(96, 127)}.{random.randint(0, 255)}.0/24"
        self.node_port_range = node_port_slice(os.environ.get("PYTEST_XDIST_WORKER", ""))
        self.restart_backoff = restart_backoff
        self.kubeconfig = os.path.join(self.home, "user-kube", "config")
        self.env = dict(os.environ, MINIKUBE_PY_HOME=self.home, KUBECONFIG=self.kubeconfig)
        self.port: int | None = None
        self._client = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, port: int | None = None) -> Self:
        """Start the daemon; with `port`, the API also listens over TLS on 127.0.0.1:port and
        the cluster's context is merged into `self.kubeconfig` (for kubectl)."""
        port_args = ["--port", str(port)] if port is not None else []
        self.port = port
        result = self.cli("start", "--name", self.name, "--pod-cidr", self.pod_cidr, "--service-cidr", self.service_cidr,
                          "--service-node-port-range", self.node_port_range,
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
