"""End-to-end tests of `LinuxRuntime` on this host: real pause processes and busybox containers.

Facts are read from /proc and cgroupfs, not from the runtime's own records, wherever the kernel
can tell. Each module run gets its own cluster name, pod CIDR and temporary home, and the fixture
removes everything (and asserts that nothing of the cluster is left) even when a test fails.
"""

from __future__ import annotations

import glob
import os
import random
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

from minikube_py.runtime import linux
from minikube_py.runtime.runtime import LinuxRuntime
from minikube_py.runtime.types import CgroupLimits, ContainerConfig, ContainerRuntimeError, SandboxConfig
from tests.e2e.cluster import host_leftovers, sequence_numbers, wait_for

pytestmark = pytest.mark.e2e


def random_cluster() -> tuple[str, str, str]:
    name = "rt" + "".join(random.choices(string.ascii_lowercase + string.digits, k=6))
    home = tempfile.mkdtemp(prefix=f"minikube-py-{name}-")
    pod_cidr = f"10.{random.randint(200, 239)}.{random.randint(0, 255)}.0/24"
    return name, home, pod_cidr


def leftovers(runtime: LinuxRuntime) -> list[str]:
    found = host_leftovers(runtime.cluster_name, runtime.home)
    pause_binaries = os.path.join(runtime.home, "bin")
    for exe in glob.glob("/proc/[0-9]*/exe"):
        try:
            if os.readlink(exe).startswith(pause_binaries):
                found.append(f"pause process {exe.split('/')[2]}")
        except OSError:
            continue
    return found


def started_runtime() -> LinuxRuntime:
    name, home, pod_cidr = random_cluster()
    runtime = LinuxRuntime(name, home, pod_cidr)
    runtime.start()
    runtime.images.ensure_busybox()
    return runtime


def stop_runtime(runtime: LinuxRuntime) -> None:
    try:
        runtime.shutdown(remove_all=True)
        left = leftovers(runtime)
        with open(os.path.join(runtime.home, "supervisor.log")) as file:
            supervisor_log = file.read()
    finally:
        shutil.rmtree(runtime.home, ignore_errors=True)
    assert not left, f"runtime {runtime.cluster_name} left these on the host: {left}"
    assert "Traceback" not in supervisor_log, f"the supervisor logged an error:\n{supervisor_log}"


@pytest.fixture(scope="module")
def runtime():
    if os.geteuid() != 0:
        pytest.skip("runtime e2e tests create namespaces, cgroups and veths and need root")
    running = started_runtime()
    try:
        yield running
    finally:
        stop_runtime(running)


class Pods:
    """Creates sandboxes with fresh uids and IPs and removes them after the test."""

    def __init__(self, runtime: LinuxRuntime):
        self.runtime = runtime
        self.sandboxes = []
        self.next_host = 10

    def sandbox(self, name: str = "web", share_process_namespace: bool = False, hostname: str | None = None):
        network = self.runtime.network
        self.next_host += 1
        config = SandboxConfig(
            pod_uid=f"{name}-{os.urandom(4).hex()}", pod_name=name, namespace="default", hostname=hostname or name,
            ip=str(network.network.network_address + self.next_host), prefix_len=network.prefix_len,
            gateway=network.gateway, share_process_namespace=share_process_namespace,
        )
        sandbox = self.runtime.create_sandbox(config)
        self.sandboxes.append(sandbox)
        return sandbox

    def container(self, sandbox, argv: list[str], name: str = "app", **options):
        config = ContainerConfig(
            sandbox_id=sandbox.id, name=name, attempt=options.pop("attempt", 0), image="busybox", argv=argv,
            log_path=os.path.join(self.runtime.home, "pods", sandbox.id, "logs", name, "0.log"), **options,
        )
        return self.runtime.start_container(sandbox, config)

    def remove_all(self) -> None:
        for sandbox in self.sandboxes:
            self.runtime.remove_sandbox(sandbox)


@pytest.fixture
def pods(runtime):
    made = Pods(runtime)
    try:
        yield made
    finally:
        made.remove_all()


def wait_exited(runtime: LinuxRuntime, container_id: str, timeout: float = 10.0):
    return wait_for(lambda: (state := runtime.container_state(container_id)).status == "exited" and state,
                    timeout, f"container {container_id} to exit")


def log_text(state) -> str:
    with open(state.log_path) as file:
        return "".join(line.split(" ", 3)[3] for line in file)


def status_field(pid: int, field: str) -> str:
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
    raise KeyError(field)


def test_pause_is_pid_one_of_a_shared_pid_namespace(runtime, pods):
    sandbox = pods.sandbox(share_process_namespace=True)
    state = pods.container(sandbox, ["sleep", "1000"])
    assert status_field(sandbox.pause_pid, "NSpid").split()[-1] == "1"
    assert linux.namespace_inode(state.pid, "pid") == linux.namespace_inode(sandbox.pause_pid, "pid")
    result = runtime.exec_sync(state.id, ["cat", "/proc/1/cmdline"], timeout=10)
    assert result.stdout.split(b"\0")[0] == b"pause"


def test_container_shares_uts_ipc_and_net_with_pause_but_not_mnt_or_pid(runtime, pods):
    sandbox = pods.sandbox()
    state = pods.container(sandbox, ["sleep", "1000"])
    for kind in ("uts", "ipc", "net"):
        assert linux.namespace_inode(state.pid, kind) == linux.namespace_inode(sandbox.pause_pid, kind), kind
    for kind in ("mnt", "pid"):
        assert linux.namespace_inode(state.pid, kind) != linux.namespace_inode(sandbox.pause_pid, kind), kind
    assert linux.namespace_inode(sandbox.pause_pid, "net") != linux.namespace_inode(os.getpid(), "net")
    assert status_field(state.pid, "NSpid").split()[-1] == "1"


def test_hostname_inside_is_the_configured_one(runtime, pods):
    sandbox = pods.sandbox(hostname="frontend-7d4b9")
    state = wait_exited(runtime, pods.container(sandbox, ["hostname"]).id)
    assert log_text(state) == "frontend-7d4b9\n"


def test_container_pid_one_holds_only_standard_descriptors(runtime, pods):
    state = pods.container(pods.sandbox(), ["sleep", "1000"])
    assert sorted(os.listdir(f"/proc/{state.pid}/fd")) == ["0", "1", "2"]
    assert os.readlink(f"/proc/{state.pid}/fd/0") == "/dev/null"


def test_container_sees_neither_host_processes_nor_host_mounts(runtime, pods):
    state = pods.container(pods.sandbox(), ["sleep", "1000"])
    processes = runtime.exec_sync(state.id, ["sh", "-c", "ls /proc | grep '^[0-9]'"], timeout=10).stdout.split()
    assert b"1" in processes and len(processes) <= 4  # sleep, the exec'd shell, ls and grep
    mounts = runtime.exec_sync(state.id, ["cat", "/proc/mounts"], timeout=10).stdout.decode()
    mount_points = [line.split()[1] for line in mounts.splitlines()]
    assert "/" in mount_points and "/proc" in mount_points and "/dev/pts" in mount_points
    assert not [point for point in mount_points if point.startswith((runtime.home, "/work", "/sys/fs/cgroup"))]
    assert runtime.home not in mounts  # not even in the overlay's options
    keys = runtime.exec_sync(state.id, ["wc", "-c", "/proc/keys"], timeout=10).stdout.split()
    assert keys[0] == b"0"  # masked by /dev/null
    sysctl = runtime.exec_sync(state.id, ["sh", "-c", "echo other > /proc/sys/kernel/hostname"], timeout=10)
    assert sysctl.exit_code != 0 and b"Read-only file system" in sysctl.stderr


def test_root_gets_the_default_capabilities_and_other_users_none(runtime, pods):
    sandbox = pods.sandbox()
    root = pods.container(sandbox, ["sleep", "1000"], name="root")
    nobody = pods.container(sandbox, ["sleep", "1000"], name="nobody", uid=65534, gid=65534)
    expected = linux.capability_mask(linux.DEFAULT_CAPABILITIES)
    assert int(status_field(root.pid, "CapEff"), 16) == expected
    assert int(status_field(root.pid, "CapBnd"), 16) == expected
    assert int(status_field(nobody.pid, "CapEff"), 16) == 0
    assert status_field(nobody.pid, "Uid").split()[0] == "65534"
    # no_new_privs only when asked (allowPrivilegeEscalation: false), as Kubernetes sets it.
    assert status_field(root.pid, "NoNewPrivs") == "0"
    strict = pods.container(sandbox, ["sleep", "1000"], name="strict", no_new_privileges=True)
    assert status_field(strict.pid, "NoNewPrivs") == "1" and status_field(strict.pid, "Seccomp") == "2"


def test_exit_codes_are_recorded_and_reported_by_wait_any(runtime, pods):
    runtime.wait_any(0)  # forget exits of earlier tests
    state = pods.container(pods.sandbox(), ["sh", "-c", "echo bye; exit 3"])
    exited = wait_for(lambda: [seen for seen in runtime.wait_any(1.0) if seen.id == state.id], 10, "the exit event")
    assert exited[0].exit_code == 3 and exited[0].signal is None and exited[0].status == "exited"
    assert runtime.container_state(state.id).exit_code == 3
    assert log_text(runtime.container_state(state.id)) == "bye\n"


def test_exec_sync_returns_at_its_timeout_while_a_background_process_holds_its_output(runtime, pods):
    state = pods.container(pods.sandbox(), ["sleep", "1000"])
    started = time.monotonic()
    with pytest.raises(ContainerRuntimeError) as raised:
        runtime.exec_sync(state.id, ["sh", "-c", "echo started; sleep 60 &"], timeout=1)
    assert raised.value.reason == "DeadlineExceeded"
    assert time.monotonic() - started < 1 + 5  # not the 60 s the background sleep keeps the pipes open


def test_an_exit_is_recorded_while_a_process_left_in_a_shared_pid_namespace_keeps_writing(runtime, pods):
    sandbox = pods.sandbox(share_process_namespace=True)
    state = pods.container(sandbox, ["sh", "-c", "yes & sleep 0.2; echo done"])
    exited = wait_exited(runtime, state.id)  # draining the pipe at exit must not follow `yes` forever
    assert exited.exit_code == 0
    assert runtime.supervisor.alive()


def test_a_missing_command_fails_with_run_container_error_and_exit_code_128(runtime, pods):
    sandbox = pods.sandbox()
    with pytest.raises(ContainerRuntimeError) as raised:
        pods.container(sandbox, ["no-such-command", "--flag"])
    assert raised.value.reason == "RunContainerError"
    assert raised.value.message == 'exec: "no-such-command": executable file not found in $PATH'
    failed = [state for state in runtime.list_containers() if state.sandbox_id == sandbox.id]
    assert [(state.status, state.exit_code) for state in failed] == [("exited", 128)]


def test_a_missing_working_directory_fails_with_create_container_error(runtime, pods):
    with pytest.raises(ContainerRuntimeError) as raised:
        pods.container(pods.sandbox(), ["true"], working_dir="/no/such/dir")
    assert raised.value.reason == "CreateContainerError"
    assert raised.value.message == "failed to chdir to /no/such/dir: no such file or directory"


def test_stop_honours_sigterm_within_the_grace_period(runtime, pods):
    script = "trap 'exit 7' TERM; echo ready; while true; do sleep 0.05; done"
    state = pods.container(pods.sandbox(), ["sh", "-c", script])
    wait_for(lambda: os.path.getsize(state.log_path) > 0, 10, "the trap to be installed")
    stopped = runtime.stop_container(state.id, grace_seconds=20)
    assert (stopped.status, stopped.exit_code, stopped.signal) == ("exited", 7, None)


def test_stop_sends_sigkill_when_sigterm_is_ignored(runtime, pods):
    script = "trap '' TERM; echo ready; while true; do sleep 0.05; done"
    state = pods.container(pods.sandbox(), ["sh", "-c", script])
    wait_for(lambda: os.path.getsize(state.log_path) > 0, 10, "the trap to be installed")
    started = time.monotonic()
    stopped = runtime.stop_container(state.id, grace_seconds=0.5)
    assert time.monotonic() - started >= 0.5
    assert (stopped.exit_code, stopped.signal) == (137, signal.SIGKILL)
    assert not os.path.exists(f"/proc/{state.pid}")


def test_a_container_over_its_memory_limit_is_recorded_as_oom_killed(runtime, pods):
    state = pods.container(pods.sandbox(), ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
                           limits=CgroupLimits(memory_bytes=16 * 1024 * 1024))
    exited = wait_exited(runtime, state.id)
    assert (exited.exit_code, exited.oom_killed) == (137, True)


def test_remove_sandbox_leaves_no_process_cgroup_or_veth(runtime, pods):
    sandbox = pods.sandbox()
    state = pods.container(sandbox, ["sleep", "1000"])
    cgroup_dirs = list(runtime.cgroups.absolute_paths(sandbox.cgroup).values())
    runtime.remove_sandbox(sandbox)
    assert not os.path.exists(f"/proc/{sandbox.pause_pid}") and not os.path.exists(f"/proc/{state.pid}")
    assert not [directory for directory in cgroup_dirs if os.path.exists(directory)]
    assert not os.path.exists(f"/sys/class/net/{sandbox.host_veth}")
    assert not os.path.exists(os.path.join(runtime.home, "containers", state.id))


def test_a_killed_supervisor_is_restarted_and_follows_the_containers_it_left(runtime, pods):
    sandbox = pods.sandbox()
    state = pods.container(sandbox, ["sleep", "1000"])
    old_supervisor = int(open(os.path.join(runtime.home, "supervisor.pid")).read())
    os.kill(old_supervisor, signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{old_supervisor}"), 10, "the supervisor to die")
    runtime.wait_any(0)  # notices the broken event stream and starts a new supervisor
    assert int(open(os.path.join(runtime.home, "supervisor.pid")).read()) != old_supervisor
    assert runtime.container_state(state.id).status == "running" and runtime.sandbox_alive(sandbox)
    os.kill(state.pid, signal.SIGKILL)
    exited = wait_for(lambda: [seen for seen in runtime.wait_any(1.0) if seen.id == state.id], 10, "the exit event")
    assert (exited[0].status, exited[0].exit_code) == ("exited", 137)


def running_in_proc(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_supervisor_killed_with_sigkill_loses_no_log_line_and_no_exit_code(runtime, pods):
    sandbox = pods.sandbox()
    logger = pods.container(sandbox, ["sh", "-c", "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.005; done"],
                            name="logger")
    quitter = pods.container(sandbox, ["sh", "-c", "sleep 1; echo last words; exit 3"], name="quitter")
    runtime.wait_any(0)
    wait_for(lambda: len(sequence_numbers(logger.log_path)) >= 20, 10, "the logger to log")
    old_supervisor = int(open(os.path.join(runtime.home, "supervisor.pid")).read())
    os.kill(old_supervisor, signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{old_supervisor}"), 10, "the supervisor to die")
    # Without any supervisor: the logger keeps running and logging, the quitter exits 3.
    logged_before = len(sequence_numbers(logger.log_path))
    wait_for(lambda: len(sequence_numbers(logger.log_path)) > logged_before + 20, 10, "lines logged without a supervisor")
    wait_for(lambda: not running_in_proc(quitter.pid), 10, "the quitter to exit")
    assert running_in_proc(logger.pid)

    runtime.wait_any(0)  # notices the broken event stream and starts a new supervisor
    assert int(open(os.path.join(runtime.home, "supervisor.pid")).read()) != old_supervisor
    assert runtime.container_state(quitter.id).exit_code == 3  # not 137: the monitor kept the status
    assert log_text(runtime.container_state(quitter.id)) == "last words\n"
    now = runtime.container_state(logger.id)
    assert (now.status, now.pid) == ("running", logger.pid) and running_in_proc(logger.pid)
    stopped = runtime.stop_container(logger.id, grace_seconds=0)
    assert (stopped.exit_code, stopped.signal) == (137, signal.SIGKILL)  # the real status, from its monitor
    numbers = sequence_numbers(logger.log_path)
    assert numbers == list(range(1, len(numbers) + 1)), "a log line was lost or repeated"


DAEMON = textwrap.dedent("""
    import os, sys
    from minikube_py.runtime.runtime import LinuxRuntime
    from minikube_py.runtime.types import ContainerConfig, SandboxConfig
    name, home, cidr, marker = sys.argv[1:5]
    held = open(marker, "w")  # a descriptor the supervisor must not inherit
    runtime = LinuxRuntime(name, home, cidr)
    runtime.start()
    runtime.images.ensure_busybox()
    prefix = cidr.rsplit(".", 1)[0]
    sandbox = runtime.create_sandbox(SandboxConfig(pod_uid="pod-1", pod_name="p", namespace="default",
        hostname="p", ip=prefix + ".7", prefix_len=24, gateway=prefix + ".1"))
    state = runtime.start_container(sandbox, ContainerConfig(sandbox_id=sandbox.id, name="c", attempt=0,
        image="busybox", argv=["sleep", "1000"]))
    print(sandbox.pause_pid, state.pid, flush=True)
    sys.stdin.read()
""")


def test_containers_survive_a_daemon_killed_with_sigkill(runtime):
    name, home, pod_cidr = random_cluster()
    marker = os.path.join(home, "daemon-marker")
    daemon = subprocess.Popen([sys.executable, "-c", DAEMON, name, home, pod_cidr, marker], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    survivor = LinuxRuntime(name, home, pod_cidr)
    try:
        pause_pid, container_pid = (int(word) for word in daemon.stdout.readline().split())
        daemon.kill()
        daemon.wait()
        supervisor_pid = int(open(os.path.join(home, "supervisor.pid")).read())
        assert os.path.exists(f"/proc/{pause_pid}") and status_field(pause_pid, "PPid") == str(supervisor_pid)
        container_monitor = int(status_field(container_pid, "PPid"))  # the container's monitor, a child of the supervisor
        assert status_field(container_monitor, "PPid") == str(supervisor_pid)
        assert os.readlink(f"/proc/{container_monitor}/exe").startswith(os.path.join(home, "bin", "monitor-"))
        held = [os.readlink(link) for link in glob.glob(f"/proc/{supervisor_pid}/fd/*")]
        assert marker not in held
        survivor.start()  # a restarted daemon re-adopts: same sandbox, same container
        assert [sandbox.pause_pid for sandbox in survivor.list_sandboxes()] == [pause_pid]
        assert [(state.pid, state.status) for state in survivor.list_containers()] == [(container_pid, "running")]
    finally:
        if daemon.poll() is None:
            daemon.kill()
        stop_runtime(survivor)
