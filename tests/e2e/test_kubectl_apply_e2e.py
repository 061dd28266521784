"""The real kubectl v1.32's server-side apply, server dry run and diff against a real cluster.

`kubectl apply --server-side` (with conflicts, `--force-conflicts` and removal of fields no longer
applied), `kubectl diff` (client-side and `--server-side`), and `--dry-run=server` on apply,
create and delete, each checked for what kubectl prints, its exit code, and that a dry run left
the stored object as it was. Only ConfigMaps and a Deployment of zero replicas: no pod needs to
start, so the module is quick. Skipped without root or without kubectl on PATH.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from tests.e2e.cluster import Cluster, free_port

KUBECTL = shutil.which("kubectl")
SETTINGS = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels: {team: web}
data:
  mode: {mode}
  level: "3"
"""
DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: idle
spec:
  replicas: 0
  selector: {matchLabels: {app: idle}}
  template:
    metadata: {labels: {app: idle}}
    spec:
      containers:
        - name: main
          image: busybox
          command: ["sleep", "3600"]
"""


def settings(mode: str, drop_level: bool = False) -> str:
    text = SETTINGS.replace("{mode}", mode)
    return text.replace('  level: "3"\n', "") if drop_level else text


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("e2e tests run a real cluster and need root")
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    running = Cluster().start(port=free_port())
    try:
        yield running
    finally:
        leftovers = running.stop()
        assert not leftovers, f"cluster {running.name} left these on the host after stop: {leftovers}"


def stored(cluster: Cluster, resource: str, name: str) -> dict:
    return cluster.client.raw.get(resource, "default", name)


def managers(obj: dict) -> dict[str, str]:
    return {entry["manager"]: entry["operation"] for entry in obj["metadata"].get("managedFields", [])}


def test_server_side_apply_owns_fields_conflicts_forces_and_removes(cluster):
    kubectl = cluster.kubectl
    applied = kubectl("apply", "--server-side", "-f", "-", input=settings("fast"))
    assert applied.stdout.strip() == "configmap/settings serverside-applied"
    shown = json.loads(kubectl("get", "configmap", "settings", "-o", "json", "--show-managed-fields").stdout)
    assert managers(shown) == {"kubectl": "Apply"}
    assert shown["metadata"]["managedFields"][0]["fieldsV1"]["f:data"] == {"f:level": {}, "f:mode": {}}

    # Someone else changes a field kubectl applied: the next apply is refused, naming both.
    kubectl("patch", "configmap", "settings", "--type", "merge", "-p", '{"data":{"mode":"slow"}}')
    refused = kubectl("apply", "--server-side", "-f", "-", input=settings("fast"), check=False)
    assert refused.returncode == 1
    assert 'conflict with "kubectl-patch" using v1: .data.mode' in refused.stderr, refused.stderr
    assert stored(cluster, "configmaps", "settings")["data"]["mode"] == "slow"

    forced = kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=settings("fast"))
    assert forced.stdout.strip() == "configmap/settings serverside-applied"
    after = stored(cluster, "configmaps", "settings")
    assert after["data"]["mode"] == "fast" and managers(after) == {"kubectl": "Apply"}

    # A field kubectl no longer applies goes, unless another manager has taken it since.
    kubectl("label", "--overwrite", "configmap", "settings", "team=ops")
    kubectl("apply", "--server-side", "-f", "-", input=settings("fast", drop_level=True).replace("  labels: {team: web}\n", ""))
    after = stored(cluster, "configmaps", "settings")
    assert after["data"] == {"mode": "fast"} and after["metadata"]["labels"] == {"team": "ops"}
    assert managers(after) == {"kubectl": "Apply", "kubectl-label": "Update"}


def test_diff_and_server_dry_run_show_the_change_and_store_nothing(cluster):
    kubectl = cluster.kubectl
    kubectl("apply", "-f", "-", input=settings("fast").replace("settings", "shown"))
    before = stored(cluster, "configmaps", "shown")
    changed = settings("slow").replace("settings", "shown")

    unchanged = kubectl("diff", "-f", "-", input=settings("fast").replace("settings", "shown"), check=False)
    assert unchanged.returncode == 0 and unchanged.stdout == "", unchanged.stdout + unchanged.stderr
    for flags in ([], ["--server-side", "--force-conflicts"]):
        diff = kubectl("diff", *flags, "-f", "-", input=changed, check=False)
        assert diff.returncode == 1, diff.stderr  # 1: there are differences
        assert "-  mode: fast" in diff.stdout and "+  mode: slow" in diff.stdout, diff.stdout
        assert "managedFields" not in diff.stdout

    dry = kubectl("apply", "--dry-run=server", "-f", "-", input=changed)
    assert dry.stdout.strip() == "configmap/shown configured (server dry run)"
    # Fields client-side apply last applied, still at their applied value, pass to kubectl's
    # server-side apply without a conflict, as kube-apiserver allows.
    dry_ssa = kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", input=changed)
    assert dry_ssa.stdout.strip() == "configmap/shown serverside-applied (server dry run)"
    assert stored(cluster, "configmaps", "shown") == before

    created = kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", input=DEPLOYMENT)
    preview = json.loads(created.stdout)
    assert preview["metadata"]["uid"] and preview["spec"]["strategy"]["type"] == "RollingUpdate"  # defaulted
    assert kubectl("get", "deployment", "idle", check=False).returncode == 1  # and not there

    deleted = kubectl("delete", "configmap", "shown", "--dry-run=server")
    assert deleted.stdout.strip() == 'configmap "shown" deleted (server dry run)'
    assert stored(cluster, "configmaps", "shown") == before


def test_a_server_side_applied_deployment_and_an_apply_of_the_wrong_shape(cluster):
    kubectl = cluster.kubectl
    assert kubectl("apply", "--server-side", "-f", "-", input=DEPLOYMENT).stdout.strip() == \
        "deployment.apps/idle serverside-applied"
    deployment = stored(cluster, "deployments", "idle")
    assert managers(deployment)["kubectl"] == "Apply" and deployment["spec"]["replicas"] == 0
    bad = DEPLOYMENT.replace("replicas: 0", "replicas: {many: 2}")
    refused = kubectl("apply", "--server-side", "-f", "-", input=bad, check=False)
    assert refused.returncode == 1 and ".spec.replicas: expected numeric (int or float), got map" in refused.stderr, \
        refused.stderr
    kubectl("delete", "deployment", "idle")
