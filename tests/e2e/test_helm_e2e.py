"""Helm installs, upgrades, rolls back and uninstalls a chart on a real cluster.

No `helm` binary can be installed from the package registries this project may use (Debian has
none, PyPI and npm have no package shipping it). PyPI's `helm-python-sdk` (in the test extra)
bundles Helm v4's own Go SDK, built as a C library, with Python bindings: the same install,
upgrade, rollback and uninstall actions, the same kube client, the same release storage as the
`helm` command. So this is Helm itself talking to the cluster over TLS with the merged
kubeconfig. The chart has a Deployment, a Service, a ConfigMap and a Secret; Helm keeps each
release revision in a Secret of type `helm.sh/release.v1` (`sh.helm.release.v1.NAME.vN`), which
the test reads back to check the revisions and their states.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import textwrap

import pytest

from tests.e2e.cluster import Cluster, free_port, wait_for

helm = pytest.importorskip("helm_python", reason="helm-python-sdk (Helm's SDK for Python) is not installed")

NAMESPACE = "helmed"
RELEASE = "shop"
CHART = {
    "Chart.yaml": """
        apiVersion: v2
        name: shop
        version: 0.1.0
        appVersion: "1"
    """,
    "values.yaml": """
        replicas: 1
        greeting: hello
    """,
    "templates/configmap.yaml": """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: {{ .Release.Name }}-settings
        data:
          greeting: {{ .Values.greeting | quote }}
    """,
    "templates/secret.yaml": """
        apiVersion: v1
        kind: Secret
        metadata:
          name: {{ .Release.Name }}-credentials
        type: Opaque
        stringData:
          password: {{ printf "%s-secret" .Values.greeting | quote }}
    """,
    "templates/deployment.yaml": """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {{ .Release.Name }}-web
          labels: {app: {{ .Release.Name }}-web}
        spec:
          replicas: {{ .Values.replicas }}
          selector:
            matchLabels: {app: {{ .Release.Name }}-web}
          template:
            metadata:
              labels: {app: {{ .Release.Name }}-web}
            spec:
              terminationGracePeriodSeconds: 1
              containers:
                - name: web
                  image: busybox
                  command: ["sh", "-c", "echo $GREETING; exec sleep 3600"]
                  env:
                    - name: GREETING
                      valueFrom: {configMapKeyRef: {name: {{ .Release.Name }}-settings, key: greeting}}
    """,
    "templates/service.yaml": """
        apiVersion: v1
        kind: Service
        metadata:
          name: {{ .Release.Name }}-web
        spec:
          selector: {app: {{ .Release.Name }}-web}
          ports: [{port: 80, targetPort: 8080}]
    """,
}


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("e2e tests run real pods and need root")
    running = Cluster().start(port=free_port())
    try:
        running.cli("apply", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n")
        yield running
    finally:
        leftovers = running.stop()
        assert not leftovers, f"cluster {running.name} left these on the host after stop: {leftovers}"


@pytest.fixture
def chart(tmp_path):
    for name, text in CHART.items():
        path = tmp_path / "shop" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return str(tmp_path / "shop")


def releases(cluster: Cluster) -> dict[int, dict]:
    """Helm's release records in the cluster: revision -> the decoded release."""
    secrets = cluster.client.raw.list("secrets", NAMESPACE, f"owner=helm,name={RELEASE}")["items"]
    found = {}
    for secret in secrets:
        assert secret["type"] == "helm.sh/release.v1"
        # Helm stores base64(gzip(JSON)) in the `release` key; the API adds its own base64.
        record = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(secret["data"]["release"]))))
        found[int(secret["metadata"]["labels"]["version"])] = record
    return found


def deployment_replicas(cluster: Cluster) -> int:
    return cluster.client.raw.get("deployments", NAMESPACE, f"{RELEASE}-web")["spec"]["replicas"]


def test_install_upgrade_rollback_and_uninstall_a_chart(cluster, chart):
    with helm.Config(kubeconfig_path=cluster.kubeconfig, namespace=NAMESPACE) as config:
        installed = config.install(chart, RELEASE, {"greeting": "hi"}, wait="legacy", timeout=120)
        assert installed["revision"] == 1 and installed["status"] == "deployed"
        raw = cluster.client.raw
        assert raw.get("configmaps", NAMESPACE, f"{RELEASE}-settings")["data"] == {"greeting": "hi"}
        assert base64.b64decode(raw.get("secrets", NAMESPACE, f"{RELEASE}-credentials")["data"]["password"]) \
            == b"hi-secret"
        assert raw.get("services", NAMESPACE, f"{RELEASE}-web")["spec"]["ports"][0]["port"] == 80
        assert raw.get("deployments", NAMESPACE, f"{RELEASE}-web")["metadata"]["annotations"][
            "meta.helm.sh/release-name"] == RELEASE
        wait_for(lambda: (raw.get("deployments", NAMESPACE, f"{RELEASE}-web").get("status") or {})
                 .get("readyReplicas") == 1, 60, "the release's Deployment ready")

        upgraded = config.upgrade(chart, RELEASE, {"greeting": "hey", "replicas": 2}, wait="legacy", timeout=120)
        assert upgraded["revision"] == 2 and upgraded["status"] == "deployed"
        assert raw.get("configmaps", NAMESPACE, f"{RELEASE}-settings")["data"] == {"greeting": "hey"}
        assert deployment_replicas(cluster) == 2

        config.rollback(RELEASE, version=1, wait="legacy", timeout=120)
        assert raw.get("configmaps", NAMESPACE, f"{RELEASE}-settings")["data"] == {"greeting": "hi"}
        assert deployment_replicas(cluster) == 1
        history = config.history(RELEASE)
        assert [(entry["revision"], entry["status"]) for entry in history] == [
            (1, "superseded"), (2, "superseded"), (3, "deployed")]
        assert {revision: record["info"]["status"] for revision, record in releases(cluster).items()} == {
            1: "superseded", 2: "superseded", 3: "deployed"}
        assert [item["name"] for item in config.list()] == [RELEASE]

        config.uninstall(RELEASE, wait="legacy", timeout=120)
        for resource, name in (("configmaps", "settings"), ("secrets", "credentials"), ("services", "web"),
                               ("deployments", "web")):
            assert not [item for item in raw.list(resource, NAMESPACE)["items"]
                        if item["metadata"]["name"] == f"{RELEASE}-{name}"], resource
        assert releases(cluster) == {}
        assert list(config.list()) == []
    wait_for(lambda: not raw.list("pods", NAMESPACE)["items"], 60, "the release's pods gone")
