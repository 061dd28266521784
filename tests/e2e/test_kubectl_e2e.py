"""The real `kubectl` drives a real cluster: apply, rollout status, get, logs, delete of manifests/web.yaml.

Skipped without root (real pods) or without `kubectl` on PATH. The cluster listens on a free
127.0.0.1 port; kubectl gets it with `--server` and a throwaway kubeconfig, never ~/.kube.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess

import pytest

from tests.e2e.cluster import Cluster, wait_for

KUBECTL = shutil.which("kubectl")
ECHO_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: echo
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: busybox
      command: ["sh", "-c", "echo hello from echo; echo second line; exec sleep 3600"]
"""
WEB_MANIFEST = os.path.join(os.path.dirname(__file__), "..", "..", "manifests", "web.yaml")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def kubectl_cluster(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("e2e tests run real pods and need root")
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    port = free_port()
    running = Cluster().start(port=port)
    kubeconfig = tmp_path_factory.mktemp("kubectl") / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")

    def kubectl(*args: str, timeout: float = 30, check: bool = True,
                input: str | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [KUBECTL, f"--server=http://127.0.0.1:{port}", f"--kubeconfig={kubeconfig}", *args],
            capture_output=True, text=True, timeout=timeout, input=input)
        if check:
            assert result.returncode == 0, f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
        return result

    try:
        yield running, kubectl
    finally:
        leftovers = running.stop()
        assert not leftovers, f"cluster {running.name} left these on the host after stop: {leftovers}"


def test_kubectl_applies_rolls_out_lists_reads_logs_and_deletes_the_web_deployment(kubectl_cluster):
    cluster, kubectl = kubectl_cluster
    applied = kubectl("apply", "-f", WEB_MANIFEST).stdout
    assert applied.strip() == "deployment.apps/web created"

    status = kubectl("rollout", "status", "deployment/web", "--timeout=90s", timeout=100).stdout
    assert 'deployment "web" successfully rolled out' in status

    rows = [line.split() for line in kubectl("get", "pods", "-l", "app=web").stdout.strip().splitlines()]
    assert rows[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert len(rows) == 4
    assert all(row[1:3] == ["1/1", "Running"] for row in rows[1:]), rows

    # httpd writes nothing until it is asked: what kubectl reads must be what our own CLI reads.
    pod_name = rows[1][0]
    assert kubectl("logs", pod_name).stdout == cluster.cli("logs", pod_name).stdout

    deleted = kubectl("delete", "-f", WEB_MANIFEST, timeout=60).stdout
    assert deleted.strip() == 'deployment.apps "web" deleted'
    wait_for(lambda: not cluster.client.raw.list("pods", "default", "app=web")["items"], 60,
             "the web pods to be gone after kubectl delete")


def test_kubectl_logs_reads_what_a_container_printed(kubectl_cluster):
    cluster, kubectl = kubectl_cluster
    kubectl("apply", "-f", "-", input=ECHO_POD)
    cluster.wait_running("echo")
    wait_for(lambda: kubectl("logs", "echo").stdout == "hello from echo\nsecond line\n", 15,
             "kubectl logs echo to show both lines")
    assert kubectl("logs", "echo", "--tail=1").stdout == "second line\n"
    assert kubectl("delete", "pod", "echo", "--grace-period=1", timeout=60).stdout.strip() == 'pod "echo" deleted'
