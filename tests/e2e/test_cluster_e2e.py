"""The control plane through the real daemon and CLI, as a kubectl user drives it."""

from __future__ import annotations

import json
import os
import pathlib

import yaml

from tests.e2e.cluster import Cluster, wait_for

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_starting_a_running_cluster_says_so_and_succeeds(cluster: Cluster):
    result = cluster.cli("start")
    assert "already running" in result.stdout
    status = json.loads(cluster.cli("status", "-o", "json").stdout)
    assert status["running"] is True and isinstance(status["pid"], int)
    assert status["name"] == cluster.name


def test_apply_the_examples_then_get_describe_and_delete(cluster: Cluster):
    first = cluster.cli("apply", "-f", str(REPO / "manifests"))
    assert "deployment.apps/web created" in first.stdout
    assert "pod/hello created" in first.stdout
    again = cluster.cli("apply", "-f", str(REPO / "manifests"))
    assert "deployment.apps/web unchanged" in again.stdout and "pod/hello unchanged" in again.stdout

    wait_for(lambda: cluster.client.raw.get("deployments", "default", "web").get("status", {}).get("availableReplicas") == 3,
             90, "deployment web to have 3 available replicas")
    everything = cluster.cli("get", "all").stdout
    for expected in ("pod/hello", "deployment.apps/web", "replicaset.apps/web-", "NAME", "READY", "UP-TO-DATE", "AVAILABLE"):
        assert expected in everything, everything

    document = yaml.safe_load(cluster.cli("get", "deploy", "web", "-o", "yaml").stdout)
    assert document["kind"] == "Deployment" and document["apiVersion"] == "apps/v1"
    assert document["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert document["status"]["readyReplicas"] == 3

    described = cluster.cli("describe", "deployment", "web").stdout
    assert "Replicas:" in described and "3 desired" in described and "Events:" in described
    assert "ScalingReplicaSet" in described

    deleted = cluster.cli("delete", "-f", str(REPO / "manifests"), timeout=120)
    assert 'deployment.apps "web" deleted' in deleted.stdout and 'pod "hello" deleted' in deleted.stdout
    missing = cluster.cli("get", "deployment", "web", check=False)
    assert missing.returncode == 1
    assert 'Error from server (NotFound): deployments.apps "web" not found' in missing.stderr


def test_a_bad_document_is_rejected_clearly_and_the_others_still_apply(cluster: Cluster, tmp_path):
    manifest = tmp_path / "mixed.yaml"
    manifest.write_text("""
apiVersion: v1
kind: Namespace
metadata:
  name: mixed
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: broken
  namespace: mixed
spec:
  selector:
    matchLabels:
      app: one
  template:
    metadata:
      labels:
        app: other
    spec:
      containers:
        - name: main
          image: busybox
""")
    result = cluster.cli("apply", "-f", str(manifest), check=False)
    assert result.returncode == 1
    assert "namespace/mixed created" in result.stdout
    assert "broken" in result.stderr and "spec.template.metadata.labels" in result.stderr
    assert cluster.cli("get", "deployment", "broken", "-n", "mixed", check=False).returncode == 1

    syntax = tmp_path / "syntax.yaml"
    syntax.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: x\n")
    result = cluster.cli("apply", "-f", str(syntax), check=False)
    assert result.returncode == 1 and str(syntax) in result.stderr and "document 1" in result.stderr
    assert cluster.cli("status").returncode == 0


def test_errors_use_kubectls_form(cluster: Cluster):
    result = cluster.cli("get", "pod", "nothing-here", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == 'Error from server (NotFound): pods "nothing-here" not found'


def test_the_api_socket_is_private(cluster: Cluster):
    mode = os.stat(os.path.join(cluster.home, "api.sock")).st_mode & 0o777
    assert mode == 0o600
