"""The cgroup driver against fake cgroupfs trees: detection, the v1/v2 files written, reading back, removal."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import threading

import pytest

from minikube_py.runtime import cgroups
from minikube_py.runtime.cgroups import CgroupDriver, CgroupV1, CgroupV2, cpu_weight_from_shares
from minikube_py.runtime.types import CgroupLimits, ContainerRuntimeError

POD = "minikube-py-test/pod-1234"
CONTAINER = f"{POD}/c1"
LIMITS = CgroupLimits(memory_bytes=32 * 1024 * 1024, cpu_quota_us=50_000, cpu_shares=512, pids_max=64)


def write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as file:
        file.write(text)


def read(path: str) -> str:
    with open(path) as file:
        return file.read()


@pytest.fixture
def v1_root(tmp_path):
    for controller in ("memory", "cpu", "cpuacct", "pids", "freezer"):
        write(str(tmp_path / controller / "cgroup.procs"), "")
    return str(tmp_path)


@pytest.fixture
def v2_root(tmp_path):
    write(str(tmp_path / "cgroup.controllers"), "cpuset cpu io memory hugetlb pids rdma misc\n")
    write(str(tmp_path / "cgroup.subtree_control"), "")
    write(str(tmp_path / "cgroup.procs"), "1\n")
    return str(tmp_path)


@pytest.fixture
def cgroupfs_rmdir(monkeypatch):
    """rmdir as cgroupfs does it: busy while processes are listed alive or child cgroups exist."""

    def remove_directory(directory: str) -> None:
        if not os.path.isdir(directory):
            raise FileNotFoundError(errno.ENOENT, "gone", directory)
        if any(os.path.isdir(os.path.join(directory, entry)) for entry in os.listdir(directory)):
            raise OSError(errno.EBUSY, "Device or resource busy", directory)
        procs_file = os.path.join(directory, "cgroup.procs")
        for pid in (read(procs_file).split() if os.path.exists(procs_file) else []):
            if os.path.exists(f"/proc/{pid}") and read(f"/proc/{pid}/stat").split(") ")[1][0] != "Z":
                raise OSError(errno.EBUSY, "Device or resource busy", directory)
        shutil.rmtree(directory)

    monkeypatch.setattr(cgroups, "_remove_directory", remove_directory)


def sleeping_child() -> tuple[subprocess.Popen, threading.Thread]:
    """A real process to put in a fake cgroup; a thread reaps it so it never lingers as a zombie."""
    child = subprocess.Popen(["sleep", "60"])
    reaper = threading.Thread(target=child.wait, daemon=True)
    reaper.start()
    return child, reaper


def test_detect_returns_v1_for_per_controller_hierarchies(v1_root):
    assert isinstance(CgroupDriver.detect(v1_root), CgroupV1)


def test_detect_returns_v2_when_the_root_has_cgroup_controllers(v2_root):
    assert isinstance(CgroupDriver.detect(v2_root), CgroupV2)


def test_detect_names_what_is_missing_when_no_hierarchy_is_usable(tmp_path):
    write(str(tmp_path / "memory" / "cgroup.procs"), "")
    with pytest.raises(ContainerRuntimeError) as raised:
        CgroupDriver.detect(str(tmp_path))
    assert "cpu, pids" in raised.value.message


def test_v1_create_writes_memory_cpu_and_pids_limits(v1_root):
    driver = CgroupDriver.detect(v1_root)
    driver.create(CONTAINER, LIMITS)
    paths = driver.absolute_paths(CONTAINER)
    assert read(os.path.join(paths["memory"], "memory.limit_in_bytes")) == str(32 * 1024 * 1024)
    assert read(os.path.join(paths["cpu"], "cpu.cfs_period_us")) == "100000"
    assert read(os.path.join(paths["cpu"], "cpu.cfs_quota_us")) == "50000"
    assert read(os.path.join(paths["cpu"], "cpu.shares")) == "512"
    assert read(os.path.join(paths["pids"], "pids.max")) == "64"
    assert os.path.isdir(paths["cpuacct"])
    assert "freezer" not in paths


def test_v1_unset_limits_write_the_kernel_defaults(v1_root):
    driver = CgroupDriver.detect(v1_root)
    driver.create(CONTAINER, CgroupLimits())
    paths = driver.absolute_paths(CONTAINER)
    assert read(os.path.join(paths["memory"], "memory.limit_in_bytes")) == "-1"
    assert read(os.path.join(paths["cpu"], "cpu.cfs_quota_us")) == "-1"
    assert read(os.path.join(paths["cpu"], "cpu.shares")) == "1024"
    assert read(os.path.join(paths["pids"], "pids.max")) == "max"


def test_v2_create_enables_controllers_in_every_ancestor(v2_root):
    driver = CgroupDriver.detect(v2_root)
    driver.create(CONTAINER, LIMITS)
    for ancestor in ("", "minikube-py-test", POD):
        enabled = read(os.path.join(v2_root, ancestor, "cgroup.subtree_control")).split()
        assert enabled == ["+memory", "+cpu", "+pids"], ancestor
    assert not os.path.exists(os.path.join(v2_root, CONTAINER, "cgroup.subtree_control"))


def test_v2_limits_use_memory_max_cpu_max_and_weight(v2_root):
    driver = CgroupDriver.detect(v2_root)
    driver.create(CONTAINER)
    directory = os.path.join(v2_root, CONTAINER)
    write(os.path.join(directory, "memory.swap.max"), "max")
    driver.set_limits(CONTAINER, LIMITS)
    assert read(os.path.join(directory, "memory.max")) == str(32 * 1024 * 1024)
    assert read(os.path.join(directory, "memory.swap.max")) == "0"
    assert read(os.path.join(directory, "cpu.max")) == "50000 100000"
    assert read(os.path.join(directory, "cpu.weight")) == str(cpu_weight_from_shares(512))
    assert read(os.path.join(directory, "pids.max")) == "64"


def test_v2_does_not_create_memory_swap_max_when_the_kernel_has_none(v2_root):
    driver = CgroupDriver.detect(v2_root)
    driver.create(CONTAINER, LIMITS)
    assert not os.path.exists(os.path.join(v2_root, CONTAINER, "memory.swap.max"))
    driver.set_limits(CONTAINER, CgroupLimits())
    assert read(os.path.join(v2_root, CONTAINER, "cpu.max")) == "max 100000"
    assert read(os.path.join(v2_root, CONTAINER, "memory.max")) == "max"


@pytest.mark.parametrize("shares, weight", [(2, 1), (1024, 39), (512, 20), (262144, 10000), (1, 1), (10**6, 10000)])
def test_cpu_weight_follows_the_kubernetes_conversion(shares, weight):
    assert cpu_weight_from_shares(shares) == weight


def test_v1_add_process_writes_the_pid_to_every_controller(v1_root):
    driver = CgroupDriver.detect(v1_root)
    driver.create(CONTAINER)
    driver.add_process(CONTAINER, 4242)
    for controller, directory in driver.absolute_paths(CONTAINER).items():
        assert read(os.path.join(directory, "cgroup.procs")).split() == ["4242"], controller
    assert driver.procs(CONTAINER) == [4242]


def test_v1_read_limits_turns_the_unlimited_memory_value_into_none(v1_root):
    driver = CgroupDriver.detect(v1_root)
    driver.create(CONTAINER)
    paths = driver.absolute_paths(CONTAINER)
    write(os.path.join(paths["memory"], "memory.limit_in_bytes"), "9223372036854771712\n")
    write(os.path.join(paths["memory"], "memory.usage_in_bytes"), "409600\n")
    write(os.path.join(paths["cpu"], "cpu.cfs_quota_us"), "25000\n")
    write(os.path.join(paths["cpu"], "cpu.cfs_period_us"), "100000\n")
    write(os.path.join(paths["cpu"], "cpu.shares"), "256\n")
    write(os.path.join(paths["cpuacct"], "cpuacct.usage"), "5000000\n")
    write(os.path.join(paths["pids"], "pids.max"), "max\n")
    write(os.path.join(paths["pids"], "pids.current"), "3\n")
    limits = driver.read_limits(CONTAINER)
    assert limits["memory_bytes"] is None
    assert limits["cpu_quota_us"] == 25000 and limits["cpu_period_us"] == 100000
    assert limits["cpu_shares"] == 256 and limits["pids_max"] is None
    assert limits["memory_usage_bytes"] == 409600 and limits["pids_current"] == 3 and limits["cpu_usage_us"] == 5000


def test_v2_read_limits_parses_cpu_max_and_cpu_stat(v2_root):
    driver = CgroupDriver.detect(v2_root)
    driver.create(CONTAINER, LIMITS)
    write(os.path.join(v2_root, CONTAINER, "cpu.stat"), "usage_usec 1234\nuser_usec 1000\n")
    limits = driver.read_limits(CONTAINER)
    assert limits["memory_bytes"] == 32 * 1024 * 1024
    assert (limits["cpu_quota_us"], limits["cpu_period_us"]) == (50000, 100000)
    assert limits["cpu_weight"] == cpu_weight_from_shares(512) and limits["cpu_usage_us"] == 1234


def test_oom_kill_count_reads_v1_oom_control_and_v2_memory_events(v1_root, tmp_path_factory):
    v1 = CgroupDriver.detect(v1_root)
    v1.create(CONTAINER)
    assert v1.oom_kill_count(CONTAINER) == 0
    write(os.path.join(v1.absolute_paths(CONTAINER)["memory"], "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert v1.oom_kill_count(CONTAINER) == 2

    v2_root = str(tmp_path_factory.mktemp("v2"))
    write(os.path.join(v2_root, "cgroup.controllers"), "memory pids\n")
    v2 = CgroupDriver.detect(v2_root)
    v2.create(CONTAINER)
    write(os.path.join(v2_root, CONTAINER, "memory.events"), "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
    assert v2.oom_kill_count(CONTAINER) == 1


def test_kill_all_signals_processes_in_the_cgroup_and_its_children(v1_root):
    driver = CgroupDriver.detect(v1_root)
    driver.create(CONTAINER)
    child, reaper = sleeping_child()
    driver.add_process(CONTAINER, child.pid)
    assert driver.kill_all(POD, signal.SIGKILL) == 1
    reaper.join(timeout=10)
    assert child.returncode == -signal.SIGKILL


def test_v1_kill_all_reads_only_the_pids_hierarchy(v1_root):
    driver = CgroupDriver.detect(v1_root)
    driver.create(CONTAINER)
    child, reaper = sleeping_child()
    bystander, bystander_reaper = sleeping_child()  # listed where kill_all must not look
    try:
        write(os.path.join(v1_root, "pids", CONTAINER, "cgroup.procs"), f"{child.pid}\n")
        write(os.path.join(v1_root, "memory", CONTAINER, "cgroup.procs"), f"{bystander.pid}\n")
        assert driver.kill_all(POD, signal.SIGKILL) == 1
        reaper.join(timeout=10)
        assert child.returncode == -signal.SIGKILL and bystander.poll() is None
    finally:
        bystander.kill()
        bystander_reaper.join(timeout=10)


def test_v2_kill_all_uses_cgroup_kill_for_sigkill(v2_root):
    driver = CgroupDriver.detect(v2_root)
    driver.create(CONTAINER)
    write(os.path.join(v2_root, POD, "cgroup.kill"), "")
    driver.kill_all(POD, signal.SIGKILL)
    assert read(os.path.join(v2_root, POD, "cgroup.kill")) == "1"


def test_remove_kills_leftovers_removes_children_first_and_is_idempotent(v1_root, cgroupfs_rmdir):
    driver = CgroupDriver.detect(v1_root)
    driver.create(CONTAINER, LIMITS)
    driver.create(f"{POD}/c2")
    child, reaper = sleeping_child()
    driver.add_process(CONTAINER, child.pid)
    driver.remove(POD)
    reaper.join(timeout=10)
    assert child.returncode == -signal.SIGKILL
    assert all(not os.path.exists(path) for path in driver.absolute_paths(POD).values())
    assert os.path.isdir(os.path.join(v1_root, "memory", "minikube-py-test"))
    driver.remove(POD)  # already gone: no error


def test_remove_reports_a_cgroup_that_stays_busy(v1_root, monkeypatch):
    driver = CgroupDriver.detect(v1_root)
    driver.create(CONTAINER)

    def always_busy(directory):
        raise OSError(errno.EBUSY, "Device or resource busy", directory)

    monkeypatch.setattr(cgroups, "_remove_directory", always_busy)
    with pytest.raises(ContainerRuntimeError) as raised:
        driver.remove(CONTAINER, timeout=0.05)
    assert "could not be removed" in raised.value.message and CONTAINER in raised.value.message


@pytest.mark.parametrize("path", ["/abs/path", "a/../b", "", "a//b"])
def test_paths_must_be_relative_without_dot_dot(v1_root, path):
    with pytest.raises(ValueError):
        CgroupDriver.detect(v1_root).create(path)


def test_a_rejected_write_names_the_cgroup_file_and_value(v1_root):
    driver = CgroupDriver.detect(v1_root)
    driver.create(CONTAINER)
    os.mkdir(os.path.join(driver.absolute_paths(CONTAINER)["pids"], "pids.max"))  # unwritable: a directory
    with pytest.raises(ContainerRuntimeError) as raised:
        driver.set_limits(CONTAINER, LIMITS)
    assert "pids.max" in raised.value.message and "64" in raised.value.message and CONTAINER in raised.value.message
