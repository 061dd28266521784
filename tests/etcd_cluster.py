"""Real etcd members for tests and benchmarks: 1 or 3 of them on free loopback ports, each with
its own data directory, run as whoever runs the tests (etcd needs no root). Debian's
`etcd-server` provides the binary (install.sh installs it); `ETCD_MISSING` says why etcd tests
skip where it is absent. `stop()` kills every member and removes the data directories."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ETCD = shutil.which("etcd")
ETCD_MISSING = "the etcd binary is not installed (Debian's etcd-server; install.sh installs it)"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class EtcdCluster:
    """`size` etcd members on loopback. `endpoints` are their client host:port, `spec` the
    matching `--store` value."""

    def __init__(self, size: int = 1, name: str = "etcd", quota_bytes: int | None = None,
                 in_memory: bool = True):
        if ETCD is None:
            raise RuntimeError(ETCD_MISSING)
        # Tests keep etcd's data on tmpfs, where its fsyncs are free; benchmarks measure a disk.
        parent = "/dev/shm" if in_memory and os.path.isdir("/dev/shm") else None
        self.directory = tempfile.mkdtemp(prefix=f"minikube-py-{name}-", dir=parent)
        self.names = [f"{name}{index}" for index in range(size)]
        self.client_ports = [free_port() for _ in self.names]
        self.peer_ports = [free_port() for _ in self.names]
        self.quota_bytes = quota_bytes
        self.processes: dict[int, subprocess.Popen] = {}
        self.initial_cluster = ",".join(f"{member}=http://127.0.0.1:{port}"
                                        for member, port in zip(self.names, self.peer_ports, strict=True))
        try:
            for index in range(size):
                self.start_member(index)
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    @property
    def endpoints(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.client_ports]

    @property
    def spec(self) -> str:
        return "etcd://" + ",".join(self.endpoints)

    def start_member(self, index: int) -> None:
        client = f"http://127.0.0.1:{self.client_ports[index]}"
        peer = f"http://127.0.0.1:{self.peer_ports[index]}"
        command = [ETCD, "--name", self.names[index], "--data-dir", os.path.join(self.directory, self.names[index]),
                   "--listen-client-urls", client, "--advertise-client-urls", client,
                   "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                   "--initial-cluster", self.initial_cluster, "--initial-cluster-state", "new",
                   "--initial-cluster-token", os.path.basename(self.directory),
                   # Short heartbeats so losing and regaining a leader takes well under a second.
                   "--heartbeat-interval", "50", "--election-timeout", "500"]
        if self.quota_bytes is not None:
            command += ["--quota-backend-bytes", str(self.quota_bytes)]
        log = open(os.path.join(self.directory, f"{self.names[index]}.log"), "ab")
        with log:
            self.processes[index] = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL)

    def wait_ready(self, timeout: float = 30.0) -> None:
        from minikube_py.store.etcd import wait_for_members

        wait_for_members(self.endpoints, timeout)

    def leader(self) -> int:
        """The index of the member that leads now."""
        from minikube_py.store.etcd_client import EtcdMembers

        for index in self.processes:
            status = EtcdMembers([self.endpoints[index]], timeout=2.0).call("/maintenance/status", {})
            if status.get("leader") == status["header"]["member_id"]:
                return index
        raise RuntimeError("no etcd member leads")

    def kill_member(self, index: int) -> None:
        process = self.processes.pop(index, None)
        if process is not None:
            process.send_signal(signal.SIGKILL)
            process.wait()

    def log_tail(self, index: int = 0, lines: int = 20) -> str:
        try:
            with open(os.path.join(self.directory, f"{self.names[index]}.log"), "rb") as file:
                return b"\n".join(file.read().splitlines()[-lines:]).decode(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        for index in list(self.processes):
            self.kill_member(index)
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> "EtcdCluster":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def wait_until(condition, timeout: float = 10.0, interval: float = 0.01):
    """The condition's first truthy value within `timeout` seconds, else its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
