"""Pods are real namespaced processes: facts read from /proc, cgroupfs and sockets, not from our bookkeeping."""

from __future__ import annotations

import os
import urllib.request

import pytest

from tests.e2e.cluster import Cluster, host_leftovers, wait_for


def namespace_inode(pid: int, kind: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def container_pid(inspect: dict, name: str) -> int:
    for container in inspect["containers"]:
        if container["name"] == name:
            return container["pid"]
    raise AssertionError(f"container {name} not in inspect output: {inspect}")


TWO_CONTAINERS = """
apiVersion: v1
kind: Pod
metadata:
  name: pair
spec:
  volumes:
    - name: shared
      emptyDir: {}
  containers:
    - name: writer
      image: busybox
      command: ["sh", "-c", "echo written-by-writer > /data/note && exec sleep 3600"]
      volumeMounts:
        - name: shared
          mountPath: /data
    - name: reader
      image: busybox
      command: ["sleep", "3600"]
      volumeMounts:
        - name: shared
          mountPath: /data
"""


def test_two_containers_share_uts_ipc_net_with_pause_but_not_mnt(cluster: Cluster):
    cluster.apply(TWO_CONTAINERS)
    cluster.wait_running("pair")
    inspect = cluster.inspect("pair")
    pause = inspect["pause"]["pid"]
    for name in ("writer", "reader"):
        pid = container_pid(inspect, name)
        for kind in ("uts", "ipc", "net"):
            assert namespace_inode(pid, kind) == namespace_inode(pause, kind), f"{name} must share {kind} with pause"
        assert namespace_inode(pid, "mnt") != namespace_inode(pause, "mnt")
        assert namespace_inode(pid, "pid") != namespace_inode(pause, "pid")
    assert namespace_inode(container_pid(inspect, "writer"), "mnt") != namespace_inode(container_pid(inspect, "reader"), "mnt")


def test_empty_dir_is_shared_by_the_pods_containers(cluster: Cluster):
    cluster.apply(TWO_CONTAINERS)
    cluster.wait_running("pair")
    result = wait_for(lambda: (lambda r: r if r.returncode == 0 else None)(
        cluster.exec("pair", "cat", "/data/note", container="reader", check=False)), 15, "the note in the emptyDir")
    assert result.stdout.strip() == "written-by-writer"


def test_hostname_inside_is_the_pod_name(cluster: Cluster):
    cluster.apply(TWO_CONTAINERS)
    cluster.wait_running("pair")
    assert cluster.exec("pair", "hostname", container="reader").stdout.strip() == "pair"


def test_container_pid_1_holds_only_stdin_stdout_stderr(cluster: Cluster):
    cluster.apply(TWO_CONTAINERS)
    cluster.wait_running("pair")
    pid = container_pid(cluster.inspect("pair"), "reader")
    assert sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd")) == [0, 1, 2]


def test_container_sees_neither_host_processes_nor_host_mounts(cluster: Cluster):
    cluster.apply(TWO_CONTAINERS)
    cluster.wait_running("pair")
    processes = cluster.exec("pair", "ps", "-o", "pid,args", container="reader").stdout.strip().splitlines()[1:]
    # Only the container's own sleep (PID 1) and the ps we just ran.
    assert len(processes) <= 2, processes
    assert processes[0].split()[0] == "1"
    mount_points = {line.split()[1] for line in cluster.exec("pair", "cat", "/proc/mounts", container="reader").stdout.splitlines()}
    with open("/proc/mounts") as file:
        host_only = {line.split()[1] for line in file} - {"/", "/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/tmp", "/run"}
    assert not (mount_points & host_only), f"host mounts visible in the container: {mount_points & host_only}"
    assert cluster.home not in cluster.exec("pair", "cat", "/proc/mounts", container="reader").stdout


def test_shared_process_namespace_makes_pause_pid_1_and_shows_the_other_container(cluster: Cluster):
    cluster.apply("""
apiVersion: v1
kind: Pod
metadata:
  name: shared-pid
spec:
  shareProcessNamespace: true
  containers:
    - name: one
      image: busybox
      command: ["sleep", "3601"]
    - name: two
      image: busybox
      command: ["sleep", "3602"]
""")
    cluster.wait_running("shared-pid")
    inspect = cluster.inspect("shared-pid")
    pause = inspect["pause"]["pid"]
    for name in ("one", "two"):
        assert namespace_inode(container_pid(inspect, name), "pid") == namespace_inode(pause, "pid")
    listing = cluster.exec("shared-pid", "ps", "-o", "pid,args", container="one").stdout
    assert "sleep 3602" in listing
    first = [line for line in listing.splitlines()[1:] if line.split()[0] == "1"]
    assert first and "pause" in first[0], listing


def test_host_and_another_pod_fetch_a_page_from_a_pod_ip(cluster: Cluster):
    cluster.apply("""
apiVersion: v1
kind: Pod
metadata:
  name: server
spec:
  containers:
    - name: httpd
      image: busybox
      command: ["sh", "-c", "mkdir -p /www && echo served-by-$(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www"]
---
apiVersion: v1
kind: Pod
metadata:
  name: fetcher
spec:
  containers:
    - name: main
      image: busybox
      command: ["sleep", "3600"]
""")
    server = cluster.wait_running("server")
    cluster.wait_running("fetcher")
    ip = server["status"]["podIP"]
    assert ip and ip != server["status"].get("hostIP")

    def fetch_from_host():
        with urllib.request.urlopen(f"http://{ip}:8080/", timeout=2) as response:
            return response.read().decode()

    assert wait_for(fetch_from_host, 15, f"http://{ip}:8080/ from the host").strip() == "served-by-server"
    from_pod = cluster.exec("fetcher", "wget", "-q", "-O", "-", f"http://{ip}:8080/")
    assert from_pod.stdout.strip() == "served-by-server"


def test_memory_hog_under_a_32mi_limit_ends_oom_killed(cluster: Cluster):
    cluster.apply("""
apiVersion: v1
kind: Pod
metadata:
  name: hog
spec:
  restartPolicy: Never
  containers:
    - name: hog
      image: busybox
      command: ["sh", "-c", "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done"]
      resources:
        limits:
          memory: 32Mi
""")
    pod = cluster.wait_pod("hog", lambda p: p["status"].get("phase") == "Failed", "phase Failed", timeout=60)
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["reason"] == "OOMKilled"
    assert terminated["exitCode"] == 137


def test_cpu_limit_is_written_to_the_containers_cgroup(cluster: Cluster):
    cluster.apply("""
apiVersion: v1
kind: Pod
metadata:
  name: capped
spec:
  containers:
    - name: main
      image: busybox
      command: ["sleep", "3600"]
      resources:
        limits:
          cpu: 250m
          memory: 64Mi
""")
    cluster.wait_running("capped")
    pid = container_pid(cluster.inspect("capped"), "main")
    with open(f"/proc/{pid}/cgroup") as file:
        lines = [line.strip().split(":", 2) for line in file]
    v1_cpu = [path for _, controllers, path in lines if "cpu" in controllers.split(",")]
    if v1_cpu:
        base = f"/sys/fs/cgroup/cpu{v1_cpu[0]}"
        if not os.path.exists(base):
            base = f"/sys/fs/cgroup/cpu,cpuacct{v1_cpu[0]}"
        with open(f"{base}/cpu.cfs_quota_us") as quota, open(f"{base}/cpu.cfs_period_us") as period:
            assert int(quota.read()) * 1000 // int(period.read()) == 250
        memory = [path for _, controllers, path in lines if "memory" in controllers.split(",")][0]
        with open(f"/sys/fs/cgroup/memory{memory}/memory.limit_in_bytes") as limit:
            assert int(limit.read()) == 64 * 1024 * 1024
    else:
        unified = [path for hierarchy, controllers, path in lines if hierarchy == "0"][0]
        with open(f"/sys/fs/cgroup{unified}/cpu.max") as file:
            quota, period = file.read().split()
            assert int(quota) * 1000 // int(period) == 250


def test_unknown_image_waits_with_a_reason_naming_the_image(cluster: Cluster):
    cluster.apply("""
apiVersion: v1
kind: Pod
metadata:
  name: no-such-image
spec:
  containers:
    - name: main
      image: registry.example/nothing:1.0
""")
    pod = cluster.wait_pod("no-such-image", lambda p: (p["status"].get("containerStatuses") or [{}])[0]
                           .get("state", {}).get("waiting", {}).get("reason") in ("ErrImageNeverPull", "ImagePullBackOff"),
                           "an image waiting reason")
    assert "registry.example/nothing:1.0" in pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    assert cluster.cli("status").returncode == 0


def test_deleting_a_pod_removes_its_processes_veth_and_cgroup(cluster: Cluster):
    cluster.apply("""
apiVersion: v1
kind: Pod
metadata:
  name: short-lived
spec:
  terminationGracePeriodSeconds: 2
  containers:
    - name: main
      image: busybox
      command: ["sleep", "3600"]
""")
    cluster.wait_running("short-lived")
    inspect = cluster.inspect("short-lived")
    pids = [inspect["pause"]["pid"]] + [c["pid"] for c in inspect["containers"]]
    veth = inspect["pod"]["hostVeth"]
    cgroup_dirs = list(inspect["pause"]["cgroups"].values())
    cluster.cli("delete", "pod", "short-lived", timeout=60)
    wait_for(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in pids), 15, "the pod's processes to exit")
    assert not os.path.exists(f"/sys/class/net/{veth}")
    assert not any(os.path.exists(path) for path in cgroup_dirs)


@pytest.mark.e2e
def test_stop_leaves_nothing_of_the_cluster_on_the_host():
    own = Cluster().start()
    try:
        own.apply(TWO_CONTAINERS)
        own.wait_running("pair")
        assert host_leftovers(own.name, own.home), "a running cluster must be visible on the host"
    finally:
        leftovers = own.stop()
    assert leftovers == []


def test_exec_returns_the_commands_exit_code_and_runs_in_the_containers_cgroup(cluster: Cluster):
    cluster.apply(TWO_CONTAINERS)
    cluster.wait_running("pair")
    assert cluster.exec("pair", "sh", "-c", "exit 7", container="reader", check=False).returncode == 7
    inspect = cluster.inspect("pair")
    reader = next(c for c in inspect["containers"] if c["name"] == "reader")
    # The exec joins the container's cgroup and its cgroup namespace, whose root that cgroup is.
    own = cluster.exec("pair", "sh", "-c", "readlink /proc/self/ns/cgroup; cat /proc/self/cgroup", container="reader")
    namespace, *cgroup_lines = own.stdout.splitlines()
    assert namespace == os.readlink(f"/proc/{reader['pid']}/ns/cgroup")
    memory_line = next(line for line in cgroup_lines if ":memory:" in line or line.startswith("0::"))
    assert memory_line.split(":")[-1] == "/"



def test_a_pod_asking_more_cpu_than_the_node_has_stays_pending_with_the_schedulers_message(cluster: Cluster):
    from minikube_py.agent.node import cpu_capacity

    [node] = cluster.client.raw.list("nodes", None)["items"]
    allocatable = node["status"]["allocatable"]
    assert allocatable["pods"] == "110" and allocatable["cpu"] == str(cpu_capacity())
    cluster.apply("""
apiVersion: v1
kind: Pod
metadata:
  name: too-big
spec:
  containers:
    - name: main
      image: busybox
      command: ["sleep", "3600"]
      resources:
        requests:
          cpu: "1000"
""")
    pod = cluster.wait_pod("too-big", lambda p: any(
        condition.get("reason") == "Unschedulable" for condition in p.get("status", {}).get("conditions") or []),
        "PodScheduled=False")
    [condition] = [c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert condition["message"] == ("0/1 nodes are available: 1 Insufficient cpu. "
                                    "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod..")
    assert not pod["spec"].get("nodeName")
    events = cluster.cli("get", "events", "--field-selector", "involvedObject.name=too-big").stdout
    assert "FailedScheduling" in events and "Insufficient cpu" in events
    cluster.cli("delete", "pod", "too-big")
