"""Lifecycle hooks, the termination message and sidecars on real pods (issue 10.5).

One cluster for the module (its own name, home and pod CIDR). The proofs: a postStart exec hook
really runs in the container before it is reported running; a preStop sleep really delays the
SIGTERM the container's trap sees; a message written to /dev/termination-log (and a failed
container's log, with FallbackToLogsOnError) comes back in lastState / state; a sidecar keeps
running beside the main container and is stopped after it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import pytest

from tests.e2e.cluster import Cluster, wait_for


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("e2e tests run real pods and need root")
    running = Cluster(name=f"e2ehk{os.getpid() % 10000}", pod_cidr="10.241.15.0/24").start()
    try:
        yield running
    finally:
        leftovers = running.stop()
        assert not leftovers, f"cluster {running.name} left these on the host after stop: {leftovers}"


@pytest.fixture
def shared_dir():
    """A host directory the test's pods write into (hostPath), removed afterwards."""
    directory = tempfile.mkdtemp(prefix="minikube-py-hooks-")
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def container_status(pod: dict, name: str, key: str = "containerStatuses") -> dict:
    return next(status for status in pod.get("status", {}).get(key) or [] if status["name"] == name)


def test_a_post_start_exec_hook_runs_in_the_container(cluster: Cluster):
    cluster.apply("""
apiVersion: v1
kind: Pod
metadata:
  name: poststart
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: busybox
      command: ["sleep", "3600"]
      lifecycle:
        postStart:
          exec:
            command: ["sh", "-c", "echo started by the hook > /tmp/poststart"]
""")
    cluster.wait_running("poststart")
    assert cluster.exec("poststart", "cat", "/tmp/poststart").stdout == "started by the hook\n"
    cluster.cli("delete", "pod", "poststart")


def test_a_pre_stop_sleep_delays_sigterm(cluster: Cluster, shared_dir: str):
    cluster.apply(f"""
apiVersion: v1
kind: Pod
metadata:
  name: prestop
spec:
  terminationGracePeriodSeconds: 10
  volumes:
    - name: out
      hostPath: {{path: {shared_dir}}}
  containers:
    - name: main
      image: busybox
      command: ["sh", "-c", "trap 'touch /out/sigterm; exit 0' TERM; touch /out/up; while true; do sleep 0.1; done"]
      volumeMounts: [{{name: out, mountPath: /out}}]
      lifecycle:
        preStop:
          sleep: {{seconds: 2}}
""")
    cluster.wait_running("prestop")
    wait_for(lambda: os.path.exists(os.path.join(shared_dir, "up")), 10, "the container's trap set")
    deleted_at = time.time()
    cluster.cli("delete", "pod", "prestop", "--wait=false")
    sigterm = os.path.join(shared_dir, "sigterm")
    wait_for(lambda: os.path.exists(sigterm), 20, "SIGTERM reaching the container")
    # The file's time is the kernel's: SIGTERM came only after the 2 s preStop sleep.
    assert os.stat(sigterm).st_mtime - deleted_at >= 1.9
    wait_for(lambda: cluster.cli("get", "pod", "prestop", check=False).returncode != 0, 20, "the pod to be gone")


def test_the_termination_message_is_in_last_state(cluster: Cluster):
    cluster.apply("""
apiVersion: v1
kind: Pod
metadata:
  name: message
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: busybox
      command: ["sh", "-c", "echo 'config file missing' > /dev/termination-log; sleep 0.5; exit 3"]
""")
    pod = cluster.wait_pod("message", lambda p: container_status(p, "main").get("lastState", {}).get("terminated"),
                           "a first termination in lastState", timeout=30)
    terminated = container_status(pod, "main")["lastState"]["terminated"]
    assert terminated["exitCode"] == 3 and terminated["message"] == "config file missing\n"
    cluster.cli("delete", "pod", "message")


def test_fallback_to_logs_on_error_puts_the_logs_tail_in_the_message(cluster: Cluster):
    cluster.apply("""
apiVersion: v1
kind: Pod
metadata:
  name: fallback
spec:
  restartPolicy: Never
  containers:
    - name: main
      image: busybox
      terminationMessagePolicy: FallbackToLogsOnError
      command: ["sh", "-c", "echo first; echo 'cannot reach the database' >&2; exit 1"]
""")
    pod = cluster.wait_pod("fallback", lambda p: p["status"].get("phase") == "Failed", "phase Failed", timeout=30)
    assert container_status(pod, "main")["state"]["terminated"]["message"] == "first\ncannot reach the database\n"
    cluster.cli("delete", "pod", "fallback")


def test_a_sidecar_runs_beside_the_main_container_and_stops_after_it(cluster: Cluster, shared_dir: str):
    cluster.apply(f"""
apiVersion: v1
kind: Pod
metadata:
  name: sidecar
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 5
  volumes:
    - name: out
      hostPath: {{path: {shared_dir}}}
  initContainers:
    - name: logger
      image: busybox
      restartPolicy: Always
      command: ["sh", "-c", "trap 'touch /out/sidecar-stopped; exit 0' TERM; while true; do sleep 0.1; done"]
      volumeMounts: [{{name: out, mountPath: /out}}]
  containers:
    - name: main
      image: busybox
      command: ["sh", "-c", "until [ -e /out/go ]; do sleep 0.1; done; touch /out/main-done"]
      volumeMounts: [{{name: out, mountPath: /out}}]
""")
    pod = cluster.wait_running("sidecar")
    logger = container_status(pod, "logger", "initContainerStatuses")
    assert "running" in logger["state"] and logger["started"] is True
    assert cluster.cli("get", "pod", "sidecar").stdout.split("\n")[1].split()[1] == "2/2"
    assert not os.path.exists(os.path.join(shared_dir, "sidecar-stopped"))

    open(os.path.join(shared_dir, "go"), "w").close()  # let the main container finish
    pod = cluster.wait_pod("sidecar", lambda p: p["status"].get("phase") == "Succeeded", "phase Succeeded", timeout=30)
    assert container_status(pod, "main")["state"]["terminated"]["exitCode"] == 0
    stopped, done = (os.stat(os.path.join(shared_dir, name)).st_mtime for name in ("sidecar-stopped", "main-done"))
    assert stopped >= done, "the sidecar got SIGTERM after the main container ended"
    cluster.cli("delete", "pod", "sidecar")
