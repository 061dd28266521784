"""What a container can and cannot do, read from inside real containers and from /proc.

Device nodes (the device cgroup), the default seccomp profile, a Localhost profile, capabilities,
no_new_privs, a read-only root, fsGroup and supplementalGroups, runAsNonRoot, and the cgroup
namespace. System calls busybox has no applet for are tried by `syscall_probe.c`, built statically
here and mounted into the pods read-only.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

import pytest

from tests.e2e.cluster import Cluster, wait_for

PROBE_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "syscall_probe.c")
DEFAULT_CAPABILITIES_MASK = "00000000a80425fb"


@pytest.fixture(scope="module")
def probe_dir():
    directory = tempfile.mkdtemp(prefix="mkpy-probe-")
    os.chmod(directory, 0o755)
    try:
        subprocess.run(["cc", "-static", "-O1", "-o", os.path.join(directory, "probe"), PROBE_SOURCE],
                       check=True, capture_output=True, timeout=120)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def status_field(pid: int, name: str) -> str:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    raise AssertionError(f"{name} not in /proc/{pid}/status")


def container(inspect: dict, name: str) -> dict:
    return next(entry for entry in inspect["containers"] if entry["name"] == name)


def run(cluster: Cluster, pod: str, *command: str, name: str | None = None) -> subprocess.CompletedProcess:
    return cluster.exec(pod, *command, container=name, check=False)


DEFAULT_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: confined
spec:
  shareProcessNamespace: true
  volumes:
    - name: probe
      hostPath: {{path: {probe}}}
  containers:
    - name: main
      image: busybox
      command: ["sleep", "3600"]
      volumeMounts:
        - {{name: probe, mountPath: /probe, readOnly: true}}
    - name: loose
      image: busybox
      command: ["sleep", "3600"]
      securityContext:
        seccompProfile: {{type: Unconfined}}
"""


@pytest.fixture(scope="module")
def confined(cluster: Cluster, probe_dir):
    cluster.apply(DEFAULT_POD.format(probe=probe_dir))
    cluster.wait_running("confined")
    return cluster.inspect("confined")


def test_a_default_container_runs_under_the_runtime_default_seccomp_filter(cluster, confined):
    pid = container(confined, "main")["pid"]
    assert status_field(pid, "Seccomp") == "2"
    assert run(cluster, "confined", "grep", "Seccomp:", "/proc/self/status").stdout.split() == ["Seccomp:", "2"]
    security = container(confined, "main")["security"]
    assert security["seccompProfile"] == "RuntimeDefault" and security["seccompMode"] == "2"
    assert container(confined, "loose")["security"]["seccompProfile"] == "Unconfined"
    assert status_field(container(confined, "loose")["pid"], "Seccomp") == "0"
    text = cluster.cli("inspect", "pod", "confined").stdout
    assert "Seccomp:" in text and "RuntimeDefault" in text


@pytest.mark.parametrize("command", [
    ["unshare", "-U", "true"],
    ["mount", "-t", "tmpfs", "none", "/mnt"],
    ["/probe/probe", "keyctl"],
    ["/probe/probe", "bpf"],
    ["/probe/probe", "kexec_load"],
    ["/probe/probe", "ptrace", "1"],  # PID 1 is pause, in the shared PID namespace
])
def test_a_default_container_cannot_make_dangerous_system_calls(cluster, confined, command):
    result = run(cluster, "confined", *command, name="main")
    assert result.returncode != 0, f"{command} worked inside the container: {result.stdout}{result.stderr}"
    said = (result.stdout + result.stderr).lower()
    assert "not permitted" in said or "permission denied" in said or "errno 1 " in said, said


def test_seccomp_is_what_stops_a_user_namespace(cluster, confined):
    # The same unshare works in the Unconfined container: the filter, not a capability, refuses it.
    assert run(cluster, "confined", "unshare", "-U", "true", name="loose").returncode == 0


def test_host_devices_can_be_created_but_not_opened(cluster, confined):
    script = "mknod /tmp/kmsg c 1 11 && mknod /tmp/loop0 b 7 0 && mknod /tmp/fuse c 10 229 && echo created; " \
             "for node in kmsg loop0 fuse; do head -c1 /tmp/$node >/dev/null 2>/tmp/$node.err; cat /tmp/$node.err; done; " \
             "head -c4 /dev/zero | wc -c"
    result = run(cluster, "confined", "sh", "-c", script, name="main")
    lines = result.stdout.splitlines()
    assert lines[0] == "created"
    assert len([line for line in lines if "Operation not permitted" in line]) == 3, result.stdout
    assert lines[-1].strip() == "4"  # /dev/zero, on the allow list, still works


def test_default_capabilities_and_cgroup_namespace(cluster, confined):
    pid = container(confined, "main")["pid"]
    assert status_field(pid, "CapEff") == DEFAULT_CAPABILITIES_MASK
    assert status_field(pid, "CapBnd") == DEFAULT_CAPABILITIES_MASK
    cgroups = run(cluster, "confined", "cat", "/proc/self/cgroup", name="main").stdout.splitlines()
    assert cgroups and all(line.endswith(":/") for line in cgroups), cgroups
    assert os.readlink(f"/proc/{pid}/ns/cgroup") != os.readlink("/proc/self/ns/cgroup")
    with open(f"/proc/{pid}/cgroup") as file:
        assert cluster.name in file.read()  # from the host it is still the cluster's cgroup


RESTRICTED_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: restricted
spec:
  securityContext:
    fsGroup: 2000
    supplementalGroups: [3000]
  volumes:
    - {name: data, emptyDir: {}}
    - {name: scratch, emptyDir: {medium: Memory}}
  containers:
    - name: app
      image: busybox
      command: ["sh", "-c", "echo hello > /data/note && echo hi > /scratch/note && exec sleep 3600"]
      securityContext:
        runAsUser: 1000
        runAsGroup: 1000
        readOnlyRootFilesystem: true
        allowPrivilegeEscalation: false
        capabilities: {drop: [ALL]}
      volumeMounts:
        - {name: data, mountPath: /data}
        - {name: scratch, mountPath: /scratch}
    - name: admin
      image: busybox
      command: ["sleep", "3600"]
      securityContext:
        capabilities: {drop: [ALL], add: [NET_ADMIN, CHOWN]}
"""


@pytest.fixture(scope="module")
def restricted(cluster: Cluster):
    cluster.apply(RESTRICTED_POD)
    cluster.wait_running("restricted")
    return cluster.inspect("restricted")


def test_capabilities_add_and_drop(restricted):
    admin = container(restricted, "admin")["pid"]
    assert int(status_field(admin, "CapEff"), 16) == (1 << 12) | (1 << 0)  # NET_ADMIN, CHOWN
    assert status_field(admin, "NoNewPrivs") == "0"  # allowPrivilegeEscalation unset: as Kubernetes
    app = container(restricted, "app")["pid"]
    assert int(status_field(app, "CapBnd"), 16) == 0 and int(status_field(app, "CapEff"), 16) == 0
    assert status_field(app, "NoNewPrivs") == "1"


def test_read_only_root_with_writable_volumes(cluster, restricted):
    result = run(cluster, "restricted", "touch", "/newfile", name="app")
    assert result.returncode != 0 and "Read-only file system" in result.stderr
    assert run(cluster, "restricted", "cat", "/data/note", name="app").stdout == "hello\n"
    assert run(cluster, "restricted", "touch", "/tmp/x", name="admin").returncode == 0  # others keep a writable root


def test_fs_group_owns_the_volumes_and_joins_the_supplementary_groups(cluster, restricted):
    groups = status_field(container(restricted, "app")["pid"], "Groups").split()
    assert {"1000", "2000", "3000"} <= set(groups)
    for path in ("/data", "/scratch"):
        mode_group = run(cluster, "restricted", "stat", "-c", "%a %g", path, name="app").stdout.split()
        assert mode_group[1] == "2000" and mode_group[0].startswith("2"), (path, mode_group)  # setgid, group 2000
    assert run(cluster, "restricted", "stat", "-c", "%g", "/data/note", name="app").stdout.strip() == "2000"


NON_ROOT_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: nonroot
spec:
  securityContext: {runAsNonRoot: true}
  containers:
    - {name: app, image: busybox, command: ["sleep", "3600"]}
"""


def test_run_as_non_root_refuses_an_image_that_runs_as_root(cluster):
    cluster.apply(NON_ROOT_POD)
    pod = cluster.wait_pod("nonroot", lambda pod: any(
        (status.get("state") or {}).get("waiting", {}).get("reason") == "CreateContainerConfigError"
        for status in pod.get("status", {}).get("containerStatuses") or []), "CreateContainerConfigError")
    message = pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    assert message.startswith("container has runAsNonRoot and image will run as root (pod: \"nonroot_default(")
    assert message.endswith(", container: app)")


LOCALHOST_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: local
spec:
  securityContext:
    seccompProfile: {type: Localhost, localhostProfile: profiles/no-mkdir.json}
  containers:
    - {name: app, image: busybox, command: ["sleep", "3600"]}
"""


def test_a_localhost_profile_from_the_cluster_home(cluster):
    directory = os.path.join(cluster.home, "seccomp", "profiles")
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "no-mkdir.json"), "w") as file:
        json.dump({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}, file)
    cluster.apply(LOCALHOST_POD)
    cluster.wait_running("local")
    result = run(cluster, "local", "mkdir", "/tmp/x")
    assert result.returncode != 0 and "not permitted" in result.stderr
    assert run(cluster, "local", "touch", "/tmp/x").returncode == 0
    assert wait_for(lambda: container(cluster.inspect("local"), "app")["security"]["seccompProfile"].endswith(
        "profiles/no-mkdir.json"), 10, "inspect naming the Localhost profile")


def test_the_cgroup_v2_device_program_refuses_host_devices_in_a_real_cgroup():
    """This host's devices controller is v1, but its hybrid layout mounts a cgroup2 hierarchy too,
    where a BPF device program can be attached and tried as `CgroupV2.set_devices` does it."""
    from minikube_py.runtime import devices
    from minikube_py.runtime.cgroups import CgroupV2

    root = "/sys/fs/cgroup/unified"
    with open("/proc/self/mounts") as mounts:
        if not any(line.split()[1:3] == [root, "cgroup2"] for line in mounts):
            pytest.skip(f"no cgroup2 hierarchy at {root}")
    path = f"minikube-py-e2e-devices-{os.getpid()}"
    os.makedirs(os.path.join(root, path))
    try:
        CgroupV2(root).set_devices(path, devices.rules_for())
        read_end, write_end = os.pipe()
        child = os.fork()
        if child == 0:
            try:
                with open(os.path.join(root, path, "cgroup.procs"), "w") as procs:
                    procs.write("0")
                results = []
                for device in ("/dev/null", "/dev/kmsg", "/dev/tty0"):
                    try:
                        os.close(os.open(device, os.O_RDONLY))
                        results.append(f"{device} ok")
                    except OSError as error:
                        results.append(f"{device} {error.errno}")
                os.write(write_end, "\n".join(results).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            results = pipe.read().splitlines()
        os.waitpid(child, 0)
        assert results == ["/dev/null ok", "/dev/kmsg 1", "/dev/tty0 1"]
    finally:
        wait_for(lambda: not open(os.path.join(root, path, "cgroup.procs")).read().strip(), 10, "the child to leave")
        os.rmdir(os.path.join(root, path))
