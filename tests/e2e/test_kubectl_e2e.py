"""The real `kubectl` drives a real cluster: apply, rollout status, get, logs, delete of manifests/web.yaml.

Skipped without root (real pods) or without `kubectl` on PATH. The cluster listens over TLS on a
free 127.0.0.1 port; kubectl runs with no flags, through the context `start` merged into the
cluster's own KUBECONFIG (inside its home, never ~/.kube).
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.e2e.cluster import Cluster, free_port, wait_for

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


@pytest.fixture(scope="module")
def kubectl_cluster():
    if os.geteuid() != 0:
        pytest.skip("e2e tests run real pods and need root")
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    running = Cluster().start(port=free_port())
    kubectl = running.kubectl

    try:
        yield running, kubectl
    finally:
        leftovers = running.stop()
        assert not leftovers, f"cluster {running.name} left these on the host after stop: {leftovers}"


def test_kubectl_needs_no_flags_with_the_merged_context(kubectl_cluster):
    cluster, kubectl = kubectl_cluster
    assert kubectl("config", "current-context").stdout.strip() == cluster.name
    assert kubectl("get", "namespaces", "default", "-o", "name").stdout.strip() == "namespace/default"


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
    # kubectl sends dryRun in the DELETE body: the server answers as if it deleted, and nothing goes.
    dry = kubectl("delete", "pod", "echo", "--dry-run=server")
    assert dry.stdout.strip() == 'pod "echo" deleted (server dry run)', dry.stdout
    assert cluster.client.raw.get("pods", "default", "echo")["metadata"].get("deletionTimestamp") is None
    assert kubectl("delete", "pod", "echo", "--grace-period=1", timeout=60).stdout.strip() == 'pod "echo" deleted'
