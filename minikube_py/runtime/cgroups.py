"""Control groups for pods and containers, on cgroup v1 (this machine) and cgroup v2.

The runtime puts every pod and every container in a cgroup under the cluster's parent
(`minikube-py-<cluster>`), so limits from `resources` hold and everything a pod started can be
found and killed. `CgroupDriver.detect` looks at the mounted hierarchy and returns a `CgroupV1` or
`CgroupV2`; both offer the same small interface and take cgroup paths relative to the controller
roots (`"minikube-py-dev/pod-<uid>/<container-id>"`). Where v1 and v2 differ in file names or
units, the two writes sit side by side in the one place the value is written. The driver takes
its root as an argument so unit tests run against an ordinary temporary directory tree.

On cgroup v2 a cgroup that has controllers enabled for its children cannot hold processes itself
(the "no internal processes" rule), so processes belong in leaf cgroups only: `create` enables
the controllers in every ancestor's `cgroup.subtree_control`, which fails for an ancestor that
already holds processes.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import signal
import time
from abc import ABC, abstractmethod

from minikube_py.runtime import devices, linux
from minikube_py.runtime.types import CgroupLimits, ContainerRuntimeError, ResourceUsage

log = logging.getLogger(__name__)

# v1 hierarchies the runtime manages: limits go to memory, cpu and pids; cpuacct gives CPU usage;
# devices holds which device nodes a container may open (runtime/devices.py).
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "devices")
V1_REQUIRED = ("memory", "cpu", "pids")
V2_CONTROLLERS = ("memory", "cpu", "pids")

# v1 reports "no memory limit" as the largest page-aligned 64-bit value (9223372036854771712).
V1_UNLIMITED_THRESHOLD = 1 << 62

REMOVE_TIMEOUT_SECONDS = 5.0
CGROUP_DIRECTORY_MODE = 0o700  # cgroups the cluster makes: root only, like its home


class CgroupError(ContainerRuntimeError):
    """A cgroup file could not be written; the message names the cgroup, the file and the value."""

    def __init__(self, message: str):
        super().__init__("CreateContainerError", message)


def cpu_weight_from_shares(shares: int) -> int:
    """cgroup v2 cpu.weight for v1 cpu.shares, the way Kubernetes converts them.

    Shares run 2..262144, weights 1..10000; 2 -> 1, 1024 (one CPU) -> 39, 262144 -> 10000.
    """
    shares = min(max(shares, 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


def _check_relative(path: str) -> str:
    parts = path.strip("/").split("/")
    if not path or path.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"cgroup path {path!r} must be relative, like 'minikube-py-dev/pod-<uid>', without '..'")
    return "/".join(parts)


def _read(file_path: str) -> str | None:
    try:
        with open(file_path) as file:
            return file.read()
    except FileNotFoundError:
        return None


def _read_keyed(file_path: str) -> dict[str, int]:
    """Parse `key value` lines (memory.events, memory.oom_control, cpu.stat)."""
    return _parse_keyed(_read(file_path) or "")


def _parse_keyed(text: str) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[key] = int(value)
    return values


def _parse_limit(text: str | None) -> int | None:
    """A limit file's value; None for unlimited ('max', -1, v1's huge memory value) or missing."""
    if text is None:
        return None
    value = text.split()[0] if text.split() else ""
    if value == "max" or not value.lstrip("-").isdigit():
        return None
    number = int(value)
    return None if number < 0 or number >= V1_UNLIMITED_THRESHOLD else number


class CgroupDriver(ABC):
    """One cgroup hierarchy layout. Use `CgroupDriver.detect()`; never construct a layout by guess."""

    version: int

    def __init__(self, root: str = "/sys/fs/cgroup"):
        self.root = root

    @staticmethod
    def detect(root: str = "/sys/fs/cgroup") -> "CgroupV1 | CgroupV2":
        """Pure v2 when `<root>/cgroup.controllers` exists; v1 (or hybrid) when the v1 hierarchies do."""
        if os.path.exists(os.path.join(root, "cgroup.controllers")):
            return CgroupV2(root)
        missing = [name for name in V1_REQUIRED if not os.path.isfile(os.path.join(root, name, "cgroup.procs"))]
        if missing:
            raise ContainerRuntimeError(
                "CreatePodSandboxError",
                f"no usable cgroup hierarchy under {root}: neither {root}/cgroup.controllers (cgroup v2) nor "
                f"the v1 controllers {', '.join(missing)}; mount cgroup2 at {root} or the v1 hierarchies under it",
            )
        return CgroupV1(root)

    # --- layout (differs per version) ---------------------------------------------------------

    @abstractmethod
    def absolute_paths(self, path: str) -> dict[str, str]:
        """Controller name -> absolute directory of the cgroup `path` (v2: one directory for all)."""

    def _directories(self, path: str) -> list[str]:
        """The distinct directories that make up cgroup `path` (co-mounted v1 controllers count once)."""
        seen: dict[str, str] = {}
        for directory in self.absolute_paths(path).values():
            seen.setdefault(os.path.realpath(directory), directory)
        return list(seen.values())

    def _file(self, controller: str, path: str, name: str) -> str:
        return os.path.join(self.absolute_paths(path)[controller], name)

    def _prepare_parents(self, path: str) -> None:  # noqa: B027 (a hook: v1 needs nothing)
        """v2 enables controllers for children; v1 needs nothing."""

    # --- operations ---------------------------------------------------------------------------

    def create(self, path: str, limits: CgroupLimits | None = None) -> None:
        """Create cgroup `path` (and its parents) in every managed controller; apply `limits`. Idempotent.

        The directory is root's alone (0700): what a pod uses and runs is nobody else's to read."""
        path = _check_relative(path)
        self._prepare_parents(path)
        for directory in self._directories(path):
            os.makedirs(directory, mode=CGROUP_DIRECTORY_MODE, exist_ok=True)
        if limits is not None:
            self.set_limits(path, limits)

    def _write(self, controller: str, path: str, name: str, value: object) -> None:
        file_path = self._file(controller, path, name)
        try:
            with open(file_path, "w") as file:
                file.write(str(value))
        except OSError as error:
            raise CgroupError(
                f"cgroup {path}: writing {value!r} to {file_path} failed: {error.strerror}; "
                "check that the limit is valid and within the parent cgroup's limits"
            ) from error

    def set_limits(self, path: str, limits: CgroupLimits) -> None:
        """Write memory, CPU and pids limits; a None field sets the kernel default (unlimited)."""
        path = _check_relative(path)
        v2 = self.version == 2
        period = limits.cpu_period_us

        # Memory. Swap is disabled for limited containers on v2, as the kubelet does; v1 has no
        # separate swap limit unless memsw accounting is on, and the kubelet leaves it alone there.
        if v2:
            self._write("memory", path, "memory.max", "max" if limits.memory_bytes is None else limits.memory_bytes)
            if os.path.exists(self._file("memory", path, "memory.swap.max")):
                self._write("memory", path, "memory.swap.max", "max" if limits.memory_bytes is None else 0)
        else:
            self._write("memory", path, "memory.limit_in_bytes", -1 if limits.memory_bytes is None else limits.memory_bytes)

        # CPU quota: v1 takes period then quota (-1 = none) in two files, v2 "quota period" in one.
        if v2:
            quota = "max" if limits.cpu_quota_us is None else limits.cpu_quota_us
            self._write("cpu", path, "cpu.max", f"{quota} {period}")
        else:
            self._write("cpu", path, "cpu.cfs_period_us", period)
            self._write("cpu", path, "cpu.cfs_quota_us", -1 if limits.cpu_quota_us is None else limits.cpu_quota_us)

        # CPU share under contention: v1 shares (default 1024), v2 weight (default 100).
        if v2:
            weight = 100 if limits.cpu_shares is None else cpu_weight_from_shares(limits.cpu_shares)
            self._write("cpu", path, "cpu.weight", weight)
        else:
            self._write("cpu", path, "cpu.shares", 1024 if limits.cpu_shares is None else max(limits.cpu_shares, 2))

        # Process count: same file name and format on both.
        self._write("pids", path, "pids.max", "max" if limits.pids_max is None else limits.pids_max)

    @abstractmethod
    def set_devices(self, path: str, rules: list[devices.DeviceRule]) -> None:
        """Allow exactly these device accesses to the processes of cgroup `path`; any other open is EPERM."""

    def add_process(self, path: str, pid: int) -> None:
        """Move process `pid` into cgroup `path` (v1: in every managed controller)."""
        path = _check_relative(path)
        for directory in self._directories(path):
            file_path = os.path.join(directory, "cgroup.procs")
            try:
                # Append mode: the kernel file takes one pid per write either way, and a plain
                # file in a unit test's fake tree then keeps every pid added.
                with open(file_path, "a") as file:
                    file.write(f"{pid}\n")
            except OSError as error:
                raise CgroupError(f"cgroup {path}: adding process {pid} to {file_path} failed: {error.strerror}") from error

    def procs(self, path: str) -> list[int]:
        """Processes in cgroup `path` itself (not its children), from every managed controller."""
        path = _check_relative(path)
        pids: set[int] = set()
        for directory in self._directories(path):
            text = _read(os.path.join(directory, "cgroup.procs")) or ""
            pids.update(int(line) for line in text.split() if line.isdigit())
        return sorted(pids)

    def _subtree_procs(self, path: str) -> list[int]:
        pids: set[int] = set()
        for directory in self._directories(path):
            for current, _, _ in os.walk(directory):
                text = _read(os.path.join(current, "cgroup.procs")) or ""
                pids.update(int(line) for line in text.split() if line.isdigit())
        return sorted(pids)

    def kill_all(self, path: str, sig: int = signal.SIGKILL) -> int:
        """Send `sig` to every process in `path` and its children; returns how many were signalled."""
        path = _check_relative(path)
        signalled = 0
        for pid in self._subtree_procs(path):
            try:
                os.kill(pid, sig)
                signalled += 1
            except ProcessLookupError:
                pass
        return signalled

    def remove(self, path: str, timeout: float = REMOVE_TIMEOUT_SECONDS) -> None:
        """Remove `path` and everything under it, children first, killing leftover processes.

        Idempotent: a cgroup that is already gone is not an error. Killed processes leave their
        cgroup only once the kernel has reaped them, so a busy rmdir is retried until `timeout`.
        """
        path = _check_relative(path)
        deadline = time.monotonic() + timeout
        for directory in self._directories(path):
            if not os.path.isdir(directory):
                continue
            for current, _, _ in os.walk(directory, topdown=False):
                self._remove_one(current, deadline)

    def _remove_one(self, directory: str, deadline: float) -> None:
        delay = 0.001
        while True:
            try:
                _remove_directory(directory)
                return
            except FileNotFoundError:
                return
            except OSError as error:
                if error.errno != errno.EBUSY or time.monotonic() > deadline:
                    left = (_read(os.path.join(directory, "cgroup.procs")) or "").split()
                    raise CgroupError(
                        f"cgroup directory {directory} could not be removed: {error.strerror}; "
                        f"processes still in it: {' '.join(left) or 'none'}"
                    ) from error
            for pid in (_read(os.path.join(directory, "cgroup.procs")) or "").split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    # --- reading ------------------------------------------------------------------------------

    @abstractmethod
    def read_limits(self, path: str) -> dict:
        """Limits and current usage as the kernel reports them (None = unlimited)."""

    @abstractmethod
    def oom_kill_count(self, path: str) -> int:
        """How many processes the OOM killer has killed in this cgroup."""

    @abstractmethod
    def read_usage(self, path: str) -> ResourceUsage | None:
        """Cumulative CPU time and the memory working set (None when the cgroup is gone)."""


def _working_set(usage: int | None, inactive_file: int | None) -> int | None:
    """cAdvisor's working set: usage minus inactive file pages, never below zero."""
    if usage is None:
        return None
    return max(0, usage - (inactive_file or 0))


def _remove_directory(directory: str) -> None:
    """rmdir; a cgroup directory's interface files vanish with it (unit tests replace this)."""
    os.rmdir(directory)


class CgroupV1(CgroupDriver):
    """cgroup v1 (or hybrid): one hierarchy per controller under <root>/<controller>."""

    version = 1

    def absolute_paths(self, path: str) -> dict[str, str]:
        path = _check_relative(path)
        return {
            controller: os.path.join(self.root, controller, path)
            for controller in V1_CONTROLLERS
            if os.path.isdir(os.path.join(self.root, controller))
        }

    def _subtree_procs(self, path: str) -> list[int]:
        """The processes of the subtree as one hierarchy sees them, pids' if mounted: the runtime
        puts every process into every hierarchy, and a node's thousand pods make each walk of a
        hierarchy cost a second. A straggler seen only elsewhere is killed by `remove`."""
        paths = self.absolute_paths(path)
        directory = paths.get("pids") or next(iter(paths.values()), None)
        if directory is None:
            return []
        pids: set[int] = set()
        for current, _, _ in os.walk(directory):
            text = _read(os.path.join(current, "cgroup.procs")) or ""
            pids.update(int(line) for line in text.split() if line.isdigit())
        return sorted(pids)

    def read_limits(self, path: str) -> dict:
        path = _check_relative(path)
        cpuacct = self.absolute_paths(path).get("cpuacct")
        usage_ns = _parse_limit(_read(os.path.join(cpuacct, "cpuacct.usage"))) if cpuacct else None
        return {
            "cgroup_version": 1,
            "memory_bytes": _parse_limit(_read(self._file("memory", path, "memory.limit_in_bytes"))),
            "cpu_quota_us": _parse_limit(_read(self._file("cpu", path, "cpu.cfs_quota_us"))),
            "cpu_period_us": _parse_limit(_read(self._file("cpu", path, "cpu.cfs_period_us"))),
            "cpu_shares": _parse_limit(_read(self._file("cpu", path, "cpu.shares"))),
            "pids_max": _parse_limit(_read(self._file("pids", path, "pids.max"))),
            "memory_usage_bytes": _parse_limit(_read(self._file("memory", path, "memory.usage_in_bytes"))),
            "pids_current": _parse_limit(_read(self._file("pids", path, "pids.current"))),
            "cpu_usage_us": None if usage_ns is None else usage_ns // 1000,
        }

    def oom_kill_count(self, path: str) -> int:
        return _read_keyed(self._file("memory", _check_relative(path), "memory.oom_control")).get("oom_kill", 0)

    def read_usage(self, path: str) -> ResourceUsage | None:
        paths = self.absolute_paths(_check_relative(path))
        memory, cpuacct = paths.get("memory"), paths.get("cpuacct")
        memory_usage = _parse_limit(_read(os.path.join(memory, "memory.usage_in_bytes"))) if memory else None
        cpu_text = _read(os.path.join(cpuacct, "cpuacct.usage")) if cpuacct else None
        if memory_usage is None and cpu_text is None:
            return None
        # v1's memory.stat counts the cgroup itself and, with the total_ prefix, its subtree.
        inactive_file = _read_keyed(os.path.join(memory, "memory.stat")).get("total_inactive_file") if memory else None
        return ResourceUsage(cpu_usage_ns=int(cpu_text) if cpu_text and cpu_text.strip().isdigit() else None,
                             memory_working_set_bytes=_working_set(memory_usage, inactive_file))

    def set_devices(self, path: str, rules: list[devices.DeviceRule]) -> None:
        """`devices.deny a`, then one `devices.allow` line per rule, as runc writes them."""
        path = _check_relative(path)
        if "devices" not in self.absolute_paths(path):
            raise CgroupError(f"cgroup {path}: the v1 devices controller is not mounted under {self.root}; "
                              "mount it (mount -t cgroup -o devices cgroup /sys/fs/cgroup/devices) so containers "
                              "cannot open host devices")
        # In order, one open per run of lines for the same file, one write per line (the kernel
        # takes one rule per write): a dozen rules cost a few opens, not a dozen.
        for name, run in itertools.groupby(devices.v1_writes(rules), key=lambda write: write[0]):
            file_path = self._file("devices", path, name)
            try:
                descriptor = os.open(file_path, os.O_WRONLY | os.O_CLOEXEC)
                try:
                    for _, line in run:
                        os.write(descriptor, f"{line}\n".encode())
                finally:
                    os.close(descriptor)
            except OSError as error:
                raise CgroupError(f"cgroup {path}: writing device rules to {file_path} failed: {error.strerror}") from error


class CgroupV2(CgroupDriver):
    """cgroup v2 (unified): one directory per cgroup, controllers enabled top-down."""

    version = 2

    def absolute_paths(self, path: str) -> dict[str, str]:
        directory = os.path.join(self.root, _check_relative(path))
        return {controller: directory for controller in V2_CONTROLLERS}

    def _prepare_parents(self, path: str) -> None:
        available = set((_read(os.path.join(self.root, "cgroup.controllers")) or "").split())
        wanted = [name for name in V2_CONTROLLERS if name in available]
        parts = path.split("/")
        for depth in range(len(parts)):
            parent = os.path.join(self.root, *parts[:depth])
            os.makedirs(parent, mode=CGROUP_DIRECTORY_MODE, exist_ok=True)
            control = os.path.join(parent, "cgroup.subtree_control")
            enabled = set((_read(control) or "").split())
            missing = [name for name in wanted if name not in enabled]
            if not missing:
                continue
            try:
                with open(control, "w") as file:
                    file.write(" ".join(f"+{name}" for name in missing))
            except OSError as error:
                raise CgroupError(
                    f"cgroup {path}: enabling {', '.join(missing)} in {control} failed: {error.strerror}; "
                    "on cgroup v2 a cgroup with processes cannot have controlled children, so "
                    "processes belong in leaf cgroups only"
                ) from error

    def read_limits(self, path: str) -> dict:
        directory = os.path.join(self.root, _check_relative(path))
        cpu_max = (_read(os.path.join(directory, "cpu.max")) or "").split()
        return {
            "cgroup_version": 2,
            "memory_bytes": _parse_limit(_read(os.path.join(directory, "memory.max"))),
            "cpu_quota_us": _parse_limit(cpu_max[0]) if cpu_max else None,
            "cpu_period_us": _parse_limit(cpu_max[1]) if len(cpu_max) > 1 else None,
            "cpu_weight": _parse_limit(_read(os.path.join(directory, "cpu.weight"))),
            "pids_max": _parse_limit(_read(os.path.join(directory, "pids.max"))),
            "memory_usage_bytes": _parse_limit(_read(os.path.join(directory, "memory.current"))),
            "pids_current": _parse_limit(_read(os.path.join(directory, "pids.current"))),
            "cpu_usage_us": _read_keyed(os.path.join(directory, "cpu.stat")).get("usage_usec"),
        }

    def oom_kill_count(self, path: str) -> int:
        directory = os.path.join(self.root, _check_relative(path))
        return _read_keyed(os.path.join(directory, "memory.events")).get("oom_kill", 0)

    def read_usage(self, path: str) -> ResourceUsage | None:
        directory = os.path.join(self.root, _check_relative(path))
        cpu_stat = _read(os.path.join(directory, "cpu.stat"))
        memory_usage = _parse_limit(_read(os.path.join(directory, "memory.current")))
        if cpu_stat is None and memory_usage is None:
            return None
        usage_usec = _parse_keyed(cpu_stat).get("usage_usec") if cpu_stat else None
        inactive_file = _read_keyed(os.path.join(directory, "memory.stat")).get("inactive_file")
        return ResourceUsage(cpu_usage_ns=None if usage_usec is None else usage_usec * 1000,
                             memory_working_set_bytes=_working_set(memory_usage, inactive_file))

    def set_devices(self, path: str, rules: list[devices.DeviceRule]) -> None:
        """A BPF_PROG_TYPE_CGROUP_DEVICE program attached to the cgroup (v2 has no devices files)."""
        directory = os.path.join(self.root, _check_relative(path))
        try:
            devices.attach_program(directory, devices.device_program(rules))
        except OSError as error:
            raise CgroupError(f"cgroup {path}: {error}; device access cannot be limited without it") from error

    def kill_all(self, path: str, sig: int = signal.SIGKILL) -> int:
        # cgroup.kill (Linux 5.14+) kills the whole subtree atomically, so no fork can escape.
        kill_file = os.path.join(self.root, _check_relative(path), "cgroup.kill")
        count = len(self._subtree_procs(path))
        if sig == signal.SIGKILL and os.path.exists(kill_file):
            with open(kill_file, "w") as file:
                file.write("1")
            return count
        return super().kill_all(path, sig)


# ---- fast cgroup migration ------------------------------------------------------------------
#
# Moving a process into a cgroup takes the kernel's global cgroup_threadgroup_rwsem for writing.
# That per-cpu rwsem must wait out an RCU grace period whenever it was idle: 10 to 20 ms per
# migration on this kind of VM, paid twice per pod (pause, then each container). Since Linux 6.0
# the `favordynmods` option of any cgroup hierarchy keeps that lock in its writer-friendly state
# (migrations cost about 0.5 ms; fork and exit take a slightly slower read path meanwhile). The
# runtime mounts one tiny named v1 hierarchy with no controllers and that option for as long as
# the cluster runs, so it changes no controller and no existing mount of the host.

FAST_ATTACH_DIRECTORY = "cgroup-favordynmods"


def fast_attach_mount_point(home: str) -> str:
    return os.path.join(home, FAST_ATTACH_DIRECTORY)


def enable_fast_attach(home: str, cluster_name: str) -> bool:
    """Mount the favordynmods hierarchy (idempotent); False where the kernel has no such option."""
    mount_point = fast_attach_mount_point(home)
    if _is_mount_point(mount_point):
        return True
    os.makedirs(mount_point, exist_ok=True)
    try:
        linux.mount("cgroup", mount_point, "cgroup", 0, f"none,name=minikube-py-{cluster_name},favordynmods")
    except OSError as error:
        log.info("cgroup favordynmods is not available (%s); pod starts pay the slower cgroup migrations", error)
        os.rmdir(mount_point)
        return False
    return True


def disable_fast_attach(home: str) -> None:
    mount_point = fast_attach_mount_point(home)
    if _is_mount_point(mount_point):
        linux.umount2(mount_point, 0)
    try:
        os.rmdir(mount_point)
    except FileNotFoundError:
        pass


def _is_mount_point(path: str) -> bool:
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == path for line in mounts)
