"""Unit tests of the runtime's pure parts: what a container child will do, log files, records, and
the supervisor's protocol (a real supervisor process in the foreground, with no container in it).

None of these needs root: mount plans and namespace lists are data, and the supervisor tests only
use requests that fork nothing.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from minikube_py.runtime import linux, protocol
from minikube_py.runtime.container import (
    ContainerSpec,
    MountStep,
    container_environment,
    inside,
    kernel_file_steps,
    overlay_options,
    resolve_executable,
    rootfs_steps,
)
from minikube_py.runtime.pause import binary_path
from minikube_py.runtime.cgroups import CgroupError
from minikube_py.runtime.runtime import LinuxRuntime, SupervisorClient, container_id_for, state_from_record
from minikube_py.runtime.supervisor import exit_status
from minikube_py.runtime.types import CgroupLimits, ContainerConfig, ContainerRuntimeError, Sandbox


def spec(**overrides) -> ContainerSpec:
    values = dict(id="c1", sandbox_id="pod-1", name="app", attempt=0, image="busybox:latest",
                  directory="/home/containers/c1", layers=["/images/base", "/images/top"], argv=["sh"])
    values.update(overrides)
    return ContainerSpec(**values)


# ---- linux.py


def test_start_time_is_read_after_a_command_name_with_spaces_and_parentheses():
    fields_after_name = " ".join(str(number) for number in range(3, 30))
    stat = f"4242 (evil) (name x) {fields_after_name}".encode()
    assert linux.parse_start_time(stat) == 22


def test_default_capability_mask_is_dockers():
    assert linux.capability_mask(linux.DEFAULT_CAPABILITIES) == 0xA80425FB


def test_namespace_inode_matches_the_link_of_this_process():
    link = os.readlink(f"/proc/{os.getpid()}/ns/net")
    assert f"net:[{linux.namespace_inode(os.getpid(), 'net')}]" == link


# ---- container.py: the child's plan


def test_overlay_lists_the_topmost_layer_first_with_paths_that_hide_the_home():
    options = overlay_options(["/home/images/base", "/home/images/top"], "/home/containers/c1")
    assert options == "lowerdir=../../images/top:../../images/base,upperdir=upper,workdir=work"


def test_rootfs_steps_make_root_private_then_mount_the_overlay_before_anything_inside_it():
    steps = rootfs_steps(spec())
    assert steps[0] == MountStep("mount", "/", flags=linux.MS_REC | linux.MS_PRIVATE)
    mounts = [step for step in steps if step.action == "mount"]
    assert mounts[1].fstype == "overlay" and mounts[1].target == "/home/containers/c1/rootfs"
    assert steps[steps.index(mounts[1]) - 1] == MountStep("chdir", "/home/containers/c1")  # relative layer paths
    assert [step.fstype for step in mounts[2:]] == ["proc", "sysfs", "tmpfs", "devpts", "tmpfs", "mqueue"]
    sysfs = next(step for step in mounts if step.fstype == "sysfs")
    assert sysfs.flags & linux.MS_RDONLY


def test_rootfs_steps_create_the_standard_devices_and_links():
    steps = rootfs_steps(spec())
    devices = {os.path.basename(step.target): step.data for step in steps if step.action == "device"}
    assert devices == {"null": "1:3", "zero": "1:5", "full": "1:7", "random": "1:8", "urandom": "1:9", "tty": "5:0"}
    links = {os.path.basename(step.target): step.source for step in steps if step.action == "symlink"}
    assert links["ptmx"] == "pts/ptmx" and links["stdout"] == "/proc/self/fd/1"


def test_a_read_only_bind_mount_gets_a_file_target_and_a_read_only_remount(tmp_path):
    hosts = tmp_path / "etc-hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    steps = rootfs_steps(spec(mounts=[{"destination": "/etc/hosts", "source": str(hosts), "type": "bind", "read_only": True}]))
    target = "/home/containers/c1/rootfs/etc/hosts"
    assert steps[-3:] == [
        MountStep("file", target),
        MountStep("mount", target, str(hosts), None, linux.MS_BIND | linux.MS_REC),
        MountStep("remount_read_only", target),
    ]


def test_a_directory_volume_gets_a_directory_target(tmp_path):
    steps = rootfs_steps(spec(mounts=[{"destination": "/data", "source": str(tmp_path)}]))
    assert MountStep("mkdir", "/home/containers/c1/rootfs/data") in steps


def test_a_mount_destination_climbing_out_of_the_root_is_refused():
    with pytest.raises(ContainerRuntimeError) as raised:
        inside("/rootfs", "/etc/../../host")
    assert raised.value.reason == "CreateContainerError" and "'..'" in raised.value.message


def test_kernel_files_are_masked_and_proc_sys_is_read_only():
    steps = kernel_file_steps(spec())
    assert MountStep("mask", "/proc/keys") in steps and MountStep("mask", "/sys/firmware") in steps
    assert MountStep("read_only", "/proc/sys") in steps and MountStep("read_only", "/proc/sysrq-trigger") in steps
    assert MountStep("remount_read_only", "/") not in steps


def test_a_privileged_container_sees_kernel_files_and_a_writable_sys():
    assert kernel_file_steps(spec(privileged=True)) == []
    sys_mount = next(step for step in rootfs_steps(spec(privileged=True)) if step.fstype == "sysfs")
    assert not sys_mount.flags & linux.MS_RDONLY


def test_a_read_only_root_is_remounted_read_only_after_the_kernel_files():
    steps = kernel_file_steps(spec(read_only_rootfs=True))
    assert steps[-1] == MountStep("remount_read_only", "/")


def test_an_optional_device_gets_its_node_and_an_fs_group_owns_a_memory_volume():
    steps = rootfs_steps(spec(devices=["fuse"], mounts=[{"destination": "/cache", "type": "tmpfs", "group": 2000}]))
    assert any(step.action == "device" and step.target.endswith("/dev/fuse") and step.data == "10:229" for step in steps)
    tmpfs = next(step for step in steps if step.action == "mount" and step.target.endswith("/cache"))
    assert tmpfs.data == "mode=2777,gid=2000"


def test_environment_gets_a_default_path_hostname_and_home_but_keeps_given_values():
    env = container_environment([["PATH", "/opt/bin"], ["A", "1"]], "web", uid=1000)
    assert env == [("PATH", "/opt/bin"), ("A", "1"), ("HOSTNAME", "web"), ("HOME", "/")]
    assert dict(container_environment([], "web", uid=0))["PATH"].startswith("/usr/local/sbin:")


def test_executable_lookup_follows_path_and_skips_non_executables(tmp_path):
    for directory, mode in (("first", 0o644), ("second", 0o755)):
        (tmp_path / directory).mkdir()
        (tmp_path / directory / "tool").write_text("#!/bin/sh\n")
        os.chmod(tmp_path / directory / "tool", mode)
    assert resolve_executable("tool", "/first:/second", root=str(tmp_path)) == "/second/tool"
    assert resolve_executable("missing", "/first:/second", root=str(tmp_path)) is None
    assert resolve_executable("./relative/tool", "/first", root=str(tmp_path)) == "./relative/tool"


# ---- supervisor.py: records (the log files are the monitor's: test_runtime_monitor.py)


def test_exit_status_reports_a_signal_as_128_plus_its_number():
    child = os.fork()
    if child == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    _, status = os.waitpid(child, 0)
    assert exit_status(status) == (137, signal.SIGKILL)
    assert exit_status(3 << 8) == (3, None)


def test_records_are_written_whole_and_read_back(tmp_path):
    path = str(tmp_path / "state.json")
    record = protocol.ContainerRecord(id="c1", sandbox_id="p", name="app", attempt=0, spec=spec(),
                                      status=protocol.ContainerStatus.RUNNING, pid=7)
    protocol.write_record(path, record)
    assert protocol.load_container_record(path) == record
    assert protocol.load_container_record(str(tmp_path / "missing.json")) is None
    assert os.listdir(tmp_path) == ["state.json"]
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"


def test_container_ids_are_stable_per_attempt():
    assert container_id_for("pod-1", "app", 0) == container_id_for("pod-1", "app", 0)
    assert container_id_for("pod-1", "app", 0) != container_id_for("pod-1", "app", 1)
    assert len(container_id_for("pod-1", "app", 0)) == 32


def test_an_exited_record_reports_no_pid():
    record = protocol.container_record_from({
        "id": "c1", "sandbox_id": "p", "name": "app", "attempt": 2, "status": "exited", "pid": 99,
        "started_at": 1.0, "finished_at": 2.0, "exit_code": 1, "signal": None, "oom_killed": False,
        "log_path": "/l", "cgroup": "g"})
    state = state_from_record(record)
    assert (state.pid, state.exit_code, state.attempt) == (0, 1, 2)


def test_pause_binary_name_changes_with_its_source(tmp_path):
    assert binary_path(str(tmp_path), b"a") != binary_path(str(tmp_path), b"b")
    assert binary_path(str(tmp_path), b"a").startswith(str(tmp_path / "bin" / "pause-"))


# ---- the supervisor process and its protocol


@pytest.fixture
def supervisor_home(tmp_path):
    """A supervisor in the foreground on a temporary home; records can be planted before it starts."""
    home = tmp_path / "home"
    (home / "containers").mkdir(parents=True)
    process = None

    def start():
        nonlocal process
        ready_read, ready_write = os.pipe()
        process = subprocess.Popen(
            [sys.executable, "-m", "minikube_py.runtime.supervisor", "--home", str(home), "--foreground",
             "--ready-fd", str(ready_write)], pass_fds=(ready_write,), stderr=subprocess.DEVNULL,
            env=dict(os.environ, PYTHONPATH=os.getcwd()))
        os.close(ready_write)
        with os.fdopen(ready_read, "rb") as ready:
            assert ready.readline() == b"ready\n"
        return SupervisorClient(str(home))

    yield home, start
    if process is not None:
        process.terminate()
        process.wait(timeout=10)


def plant_record(home, container_id: str, pid: int, start_time: int, sandbox_id: str = "pod-1") -> None:
    """A record in the first release's shape (no version): the supervisor upgrades it on load."""
    directory = home / "containers" / container_id
    directory.mkdir()
    (directory / "state.json").write_text(json.dumps({
        "id": container_id, "sandbox_id": sandbox_id, "name": container_id, "attempt": 0, "status": "running",
        "pid": pid, "start_time": start_time, "started_at": 1.0, "finished_at": 0.0, "exit_code": None,
        "signal": None, "oom_killed": False, "reason": "", "message": "", "log_path": "", "cgroup": "",
    }))


def test_supervisor_answers_ping_and_names_unknown_operations(supervisor_home):
    home, start = supervisor_home
    client = start()
    assert client.alive()
    with client.connect() as sock:
        sock.sendall(b'{"op": "reboot", "version": %d}\n' % protocol.PROTOCOL_VERSION)
        reply = protocol.decode_reply(protocol.Ping(), sock.makefile("rb").readline())
    assert isinstance(reply, protocol.ErrorReply)
    assert reply.reason == "BadRequest" and "reboot" in reply.message
    assert oct(os.stat(home / "supervisor.sock").st_mode & 0o777) == "0o600"


def test_a_restarted_supervisor_marks_vanished_containers_and_follows_live_ones(supervisor_home):
    home, start = supervisor_home
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        plant_record(home, "gone", pid=2 ** 22 + 1, start_time=1)
        plant_record(home, "alive", pid=sleeper.pid, start_time=linux.process_start_time(sleeper.pid))
        client = start()
        records = {record.id: record for record in client.call(protocol.ListRecords()).containers}
        assert (records["gone"].status, records["gone"].exit_code, records["gone"].reason) == \
            (protocol.ContainerStatus.UNKNOWN, 137, "ContainerStatusUnknown")
        assert state_from_record(records["gone"]).status == "exited"
        assert records["alive"].status == protocol.ContainerStatus.RUNNING
        subscription = client.connect()
        subscription.sendall(protocol.encode_request(protocol.Subscribe()))
        events = subscription.makefile("rb")
        assert json.loads(events.readline()) == {"ok": True}
        sleeper.kill()
        sleeper.wait()
        subscription.settimeout(10)
        event = protocol.decode_event(events.readline())
        assert isinstance(event, protocol.ContainerExited) and event.container.id == "alive"
        on_disk = json.loads((home / "containers" / "alive" / "state.json").read_text())
        assert (on_disk["status"], on_disk["version"]) == ("unknown", protocol.RECORD_VERSION)
        subscription.close()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_listing_one_sandbox_answers_only_its_containers_and_forgets_removed_ones(supervisor_home):
    home, start = supervisor_home
    for index in range(3):
        plant_record(home, f"a{index}", pid=2 ** 22 + 1, start_time=1, sandbox_id="pod-a")
    plant_record(home, "b0", pid=2 ** 22 + 1, start_time=1, sandbox_id="pod-b")
    client = start()
    assert [record.id for record in client.call(protocol.ListRecords(sandbox_id="pod-a")).containers] == ["a0", "a1", "a2"]
    assert [record.id for record in client.call(protocol.ListRecords(sandbox_id="pod-b")).containers] == ["b0"]
    assert client.call(protocol.ListRecords(sandbox_id="pod-c")).containers == []
    client.call(protocol.RemoveContainer("a1"))
    assert [record.id for record in client.call(protocol.ListRecords(sandbox_id="pod-a")).containers] == ["a0", "a2"]
    assert len(client.call(protocol.ListRecords()).containers) == 3


def test_a_removed_container_directory_is_moved_aside_and_one_left_aside_is_deleted_at_start(supervisor_home):
    home, start = supervisor_home
    plant_record(home, "gone", pid=2 ** 22 + 1, start_time=1)
    plant_record(home, "kept", pid=2 ** 22 + 1, start_time=1)
    left_aside = home / "containers" / f"{protocol.REMOVED_CONTAINER_PREFIX}older"
    (left_aside / "upper").mkdir(parents=True)
    (left_aside / "state.json").write_text("{}")
    client = start()
    assert not left_aside.exists()
    client.call(protocol.RemoveContainer("gone"))
    assert sorted(path.name for path in (home / "containers").iterdir()) == [
        f"{protocol.REMOVED_CONTAINER_PREFIX}gone", "kept"]
    assert [record.id for record in client.call(protocol.ListRecords()).containers] == ["kept"]


def test_wait_exit_answers_after_its_timeout_while_the_container_runs(supervisor_home):
    home, start = supervisor_home
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        plant_record(home, "alive", pid=sleeper.pid, start_time=linux.process_start_time(sleeper.pid))
        client = start()
        started = time.monotonic()
        answer = client.call(protocol.WaitExit("alive", 0.2))
        assert answer.container.status == protocol.ContainerStatus.RUNNING and time.monotonic() - started >= 0.2
        with pytest.raises(ContainerRuntimeError) as raised:
            client.call(protocol.Signal(protocol.SignalTarget.CONTAINER, "nobody", 15))
        assert raised.value.reason == "NotFound"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_supervisor_socket_refuses_when_no_supervisor_runs(tmp_path):
    client = SupervisorClient(str(tmp_path))
    assert not client.alive()
    with pytest.raises(ContainerRuntimeError) as raised:
        client.call(protocol.Ping())
    assert raised.value.reason == "RuntimeNotReady"


def test_a_supervisor_refuses_to_start_twice_on_one_home(supervisor_home):
    home, start = supervisor_home
    start()
    second = subprocess.run([sys.executable, "-m", "minikube_py.runtime.supervisor", "--home", str(home), "--foreground"],
                            capture_output=True, text=True, timeout=20, env=dict(os.environ, PYTHONPATH=os.getcwd()))
    assert second.returncode == 0 and "another supervisor already runs" in second.stderr
    with socket.socket(socket.AF_UNIX) as probe:
        assert probe.connect_ex(str(home / "supervisor.sock")) == 0


# ---- runtime.py: error paths


class RecordingCgroups:
    """Stand-in cgroup driver: remembers which cgroups exist; refuses a negative memory limit after mkdir, as the kernel does."""

    def __init__(self):
        self.existing: set[str] = set()

    def create(self, path: str, limits: CgroupLimits | None = None) -> None:
        self.existing.add(path)
        if limits is not None and (limits.memory_bytes or 0) < 0:
            raise CgroupError(f"cgroup {path}: writing {limits.memory_bytes} to memory.limit_in_bytes failed")

    def remove(self, path: str) -> None:
        self.existing = {cgroup for cgroup in self.existing if cgroup != path and not cgroup.startswith(path + "/")}

    def absolute_paths(self, path: str) -> dict[str, str]:
        return {"memory": f"/fake/memory/{path}"}

    def set_devices(self, path: str, rules) -> None:
        assert path in self.existing


def runtime_without_root(tmp_path) -> tuple[LinuxRuntime, Sandbox]:
    images = SimpleNamespace(resolve=lambda reference: SimpleNamespace(reference=reference, layers=["/layers/base"], id="sha256:1"),
                             mark_used=lambda image_id: None)
    runtime = LinuxRuntime("unit", str(tmp_path), "10.240.0.0/24", cgroups=RecordingCgroups(), images=images)
    sandbox = Sandbox(id="pod-1", pod_name="web", namespace="default", pause_pid=os.getpid(),
                      pause_start_time=linux.process_start_time(os.getpid()), ip="10.240.0.5", host_veth="",
                      cgroup="minikube-py-unit/pod-pod-1")
    runtime.cgroups.create(sandbox.cgroup)
    return runtime, sandbox


def test_a_refused_container_limit_leaves_no_container_cgroup(tmp_path):
    runtime, sandbox = runtime_without_root(tmp_path)
    config = ContainerConfig(sandbox_id=sandbox.id, name="app", attempt=0, image="busybox", argv=["true"],
                             limits=CgroupLimits(memory_bytes=-7))
    with pytest.raises(ContainerRuntimeError) as raised:
        runtime.start_container(sandbox, config)
    assert raised.value.reason == "CreateContainerError"
    assert runtime.cgroups.existing == {sandbox.cgroup}


def test_an_unreachable_supervisor_leaves_no_container_cgroup(tmp_path):
    runtime, sandbox = runtime_without_root(tmp_path)
    config = ContainerConfig(sandbox_id=sandbox.id, name="app", attempt=0, image="busybox", argv=["true"])
    with pytest.raises(ContainerRuntimeError) as raised:
        runtime.start_container(sandbox, config)
    assert raised.value.reason == "RuntimeNotReady"
    assert runtime.cgroups.existing == {sandbox.cgroup}


def test_a_container_record_from_before_security_settings_keeps_no_new_privs_for_its_execs():
    from minikube_py.runtime import protocol

    old = {"id": "c1", "sandbox_id": "pod-1", "name": "app", "attempt": 0, "status": "running", "pid": 5,
           "spec": {"id": "c1", "sandbox_id": "pod-1", "name": "app", "attempt": 0, "image": "busybox",
                    "directory": "/home/containers/c1", "layers": [], "argv": ["sh"]}}
    spec = protocol.container_record_from(old).spec
    assert spec.no_new_privileges and spec.capabilities is None and spec.seccomp_program == ""
