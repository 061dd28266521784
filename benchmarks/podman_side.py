"""Podman pods as the peer a user would pick instead, made to work on this host and undone after.

`PodmanHost` is a context manager that prepares podman in a scratch directory (its own storage,
containers.conf and network config, so the user's podman state is never touched), applies the
host fixes this machine needs (see /work/shared/peers/RESULTS.md: crun refuses a hybrid cgroup
layout while cgroup2 holds a controller, so each such controller is bound to a scratch v1
hierarchy; podman's default rlimits cannot be raised without CAP_SYS_RESOURCE, so they are
lowered) and on exit removes every pod it made, the empty `libpod_parent` cgroups podman 4.3
leaves, the `NETAVARK*` iptables chains and the `podman0` bridge if they were not there before,
restores `net.ipv4.ip_forward`, and unmounts the scratch cgroup hierarchies.

`PodmanPods` runs the operations the benchmark compares: `pod create` + `run -d --pod` (returns
once the container runs), `pod rm -f -t 0`, and reads which processes a pod costs (conmon per
container, the catatonit infra process and the container's process tree).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time

PODMAN_IMAGE = "localhost/minikube-py-bench-busybox:latest"
NETAVARK_CHAIN_PREFIX = "NETAVARK"
IPTABLES_TABLES = ("nat", "filter")
# Podman writes here whatever its configuration says (netavark's IPAM database, the image blob cache).
PODMAN_FIXED_DIRECTORIES = ("/run/containers", "/var/lib/containers")


def podman_installed() -> bool:
    return all(shutil.which(tool) for tool in ("podman", "crun", "conmon"))


def _run(command: list[str], env: dict | None = None, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}: {result.stderr.strip()[-800:]}")
    return result


def _netavark_chains(table: str) -> set[str]:
    result = _run(["iptables", "-t", table, "-S"], check=False)
    return {line.split()[1] for line in result.stdout.splitlines()
            if line.startswith("-N ") and line.split()[1].startswith(NETAVARK_CHAIN_PREFIX)}


def _ip_tables() -> set[str]:
    """The host's `ip` nftables tables by name."""
    listed = _run(["nft", "list", "tables", "ip"], check=False).stdout.split()
    return {listed[index + 2] for index, word in enumerate(listed) if word == "table" and index + 2 < len(listed)}


class PodmanHost:
    """Podman in a scratch directory with this host's fixes applied; everything undone on exit."""

    def __init__(self) -> None:
        self.scratch = ""
        self.env: dict[str, str] = {}
        self._cgroup_mounts: list[str] = []
        self._ip_forward = ""
        self._chains_before: dict[str, set[str]] = {}
        self._bridge_existed = False
        self._tables_before: set[str] = set(IPTABLES_TABLES)
        self._new_fixed_directories: list[str] = []

    def __enter__(self) -> "PodmanHost":
        self.scratch = tempfile.mkdtemp(prefix="minikube-py-bench-podman-")
        try:
            self._write_config()
            with open("/proc/sys/net/ipv4/ip_forward") as file:
                self._ip_forward = file.read().strip()
            self._tables_before = _ip_tables()  # listing with iptables-nft below can make nat/filter
            self._chains_before = {table: _netavark_chains(table) for table in IPTABLES_TABLES}
            self._bridge_existed = os.path.exists("/sys/class/net/podman0")
            self._new_fixed_directories = [path for path in PODMAN_FIXED_DIRECTORIES if not os.path.exists(path)]
            self._move_controllers_off_cgroup2()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _write_config(self) -> None:
        for directory in ("storage", "run", "tmp", "networks", "volumes"):
            os.mkdir(os.path.join(self.scratch, directory))
        containers_conf = os.path.join(self.scratch, "containers.conf")
        storage_conf = os.path.join(self.scratch, "storage.conf")
        with open(containers_conf, "w") as file:
            # nproc must stay at or below the hard limit podman itself runs with (kernel.pid_max here).
            file.write(f"""[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
log_driver = "k8s-file"

[network]
network_backend = "netavark"
network_config_dir = "{self.scratch}/networks"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{self.scratch}/events.log"
runtime = "crun"
tmp_dir = "{self.scratch}/tmp"
volume_path = "{self.scratch}/volumes"
""")
        with open(storage_conf, "w") as file:
            file.write(f"""[storage]
driver = "overlay"
graphroot = "{self.scratch}/storage"
runroot = "{self.scratch}/run"
""")
        self.env = dict(os.environ, CONTAINERS_CONF=containers_conf, CONTAINERS_STORAGE_CONF=storage_conf)

    def _move_controllers_off_cgroup2(self) -> None:
        """crun 1.8 refuses hybrid mode while cgroup2 has controllers; bind each to a scratch v1 hierarchy."""
        try:
            with open("/sys/fs/cgroup/unified/cgroup.controllers") as file:
                controllers = file.read().split()
        except FileNotFoundError:
            return
        for controller in controllers:
            mount_point = os.path.join(self.scratch, f"cgroup-{controller}")
            os.mkdir(mount_point)
            _run(["mount", "-t", "cgroup", "-o", controller, "cgroup", mount_point])
            self._cgroup_mounts.append(mount_point)

    def podman(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        return _run(["podman", *args], env=self.env, check=check, timeout=timeout)

    def import_busybox(self, rootfs_tarball: str) -> str:
        self.podman("import", "--change", "CMD=[\"sh\"]", rootfs_tarball, PODMAN_IMAGE)
        return PODMAN_IMAGE

    def __exit__(self, *exc_info) -> None:
        if self.env:
            self.podman("pod", "rm", "-a", "-f", "-t", "0", check=False)
            self.podman("rm", "-a", "-f", "-t", "0", check=False)
            self._wait_for_cleanup_processes()
        self._remove_firewall_and_bridge()
        if self._ip_forward:
            with open("/proc/sys/net/ipv4/ip_forward", "w") as file:
                file.write(self._ip_forward)
        for hierarchy in ("systemd", "unified", "memory", "pids", "cpu", "cpuacct", "cpuset", "blkio",
                          "devices", "freezer", "net_cls", "perf_event"):
            _remove_empty_cgroups(f"/sys/fs/cgroup/{hierarchy}/libpod_parent")
        for mount_point in self._cgroup_mounts:
            _remove_empty_cgroups(mount_point, keep_root=True)
            _run(["umount", mount_point], check=False)
        self._cgroup_mounts = []
        for directory in self._new_fixed_directories:
            shutil.rmtree(directory, ignore_errors=True)
        if self.scratch:
            _unmount_below(self.scratch)
            shutil.rmtree(self.scratch, ignore_errors=True)

    def _wait_for_cleanup_processes(self, timeout: float = 10) -> None:
        """conmon runs `podman container cleanup` asynchronously after a container exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(self.scratch in _command_line(pid) for pid in _all_pids()):
                return
            time.sleep(0.05)

    def _remove_firewall_and_bridge(self) -> None:
        for table in IPTABLES_TABLES:
            added = _netavark_chains(table) - self._chains_before.get(table, set())
            if not added:
                continue
            rules = _run(["iptables", "-t", table, "-S"], check=False).stdout.splitlines()
            for rule in rules:
                fields = shlex.split(rule)
                if fields[:1] == ["-A"] and any(chain in fields for chain in added) and fields[1] not in added:
                    _run(["iptables", "-t", table, "-D", *fields[1:]], check=False)
            for chain in added:
                _run(["iptables", "-t", table, "-F", chain], check=False)
            for chain in added:
                _run(["iptables", "-t", table, "-X", chain], check=False)
        for table in set(IPTABLES_TABLES) & _ip_tables() - self._tables_before:
            if not _run(["iptables", "-t", table, "-S"], check=False).stdout.count("-A "):
                _run(["nft", "delete", "table", "ip", table], check=False)  # empty, and not there before
        if not self._bridge_existed and os.path.exists("/sys/class/net/podman0"):
            _run(["ip", "link", "del", "podman0"], check=False)


def _remove_empty_cgroups(root: str, keep_root: bool = False) -> None:
    """rmdir bottom-up; the kernel refuses to remove a cgroup still in use, which is what we want."""
    if not os.path.isdir(root):
        return
    for directory, _, _ in sorted(os.walk(root), key=lambda entry: -entry[0].count("/")):
        if keep_root and directory == root:
            continue
        try:
            os.rmdir(directory)
        except OSError:
            pass


def _unmount_below(directory: str) -> None:
    with open("/proc/mounts") as file:
        mount_points = [line.split()[1] for line in file]
    for mount_point in sorted((point for point in mount_points if point.startswith(directory + "/")), reverse=True):
        _run(["umount", "-l", mount_point], check=False)


def _all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return file.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class PodmanPods:
    """The podman operations compared with minikube-py's, on one `PodmanHost`."""

    label = "podman"

    def __init__(self, host: PodmanHost, image: str):
        self.host = host
        self.image = image

    def start_pod(self, name: str, command: list[str]) -> float:
        """`pod create` + `run -d --pod`; seconds until `run -d` returns, when the container runs."""
        started = time.perf_counter()
        self.host.podman("pod", "create", "--name", name)
        self.host.podman("run", "-d", "--pod", name, self.image, *command)
        return time.perf_counter() - started

    def delete_pod(self, name: str) -> float:
        """`pod rm -f -t 0`: kills at once (no grace period), unlike a Kubernetes pod deletion."""
        started = time.perf_counter()
        self.host.podman("pod", "rm", "-f", "-t", "0", name)
        return time.perf_counter() - started

    def pod_processes(self, names: list[str]) -> dict[str, list[int]]:
        """Process ids per role over the given pods: conmon, infra (catatonit), container (main pid)."""
        inspected = json.loads(self.host.podman("pod", "inspect", *names).stdout)
        if isinstance(inspected, dict):
            inspected = [inspected]
        container_ids = [container["Id"] for pod in inspected for container in pod["Containers"]]
        roles: dict[str, list[int]] = {"conmon": [], "infra": [], "container": []}
        for container in json.loads(self.host.podman("inspect", *container_ids).stdout):
            roles["conmon"].append(container["State"]["ConmonPid"])
            roles["infra" if container.get("IsInfra") else "container"].append(container["State"]["Pid"])
        return roles
