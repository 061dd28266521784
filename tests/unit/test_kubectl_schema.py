"""The real kubectl reading our OpenAPI documents: explain, field validation, strategic merge.

Skipped when `kubectl` is not on PATH. kubectl runs with a throwaway kubeconfig and cache
directory against an in-process server on a free port.
"""

import shutil
import subprocess

import pytest

from minikube_py.apiserver.registry import Registry
from minikube_py.apiserver.server import ApiHttpServer
from minikube_py.clock import FakeClock
from minikube_py.store import Store
from tests.unit.tls_harness import make_credentials, tls_config, write_admin_kubeconfig

KUBECTL = shutil.which("kubectl")

CONFIG_MAP_WITH_TYPO = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  colour: blue
dta:
  size: large
"""


@pytest.fixture
def kubectl(tmp_path):
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    store = Store(":memory:")
    credentials = make_credentials(tmp_path)
    server = ApiHttpServer(Registry(store, FakeClock()), str(tmp_path / "api.sock"), port=0,
                           tls=tls_config(credentials))
    server.start()
    kubeconfig = write_admin_kubeconfig(credentials, server.port, tmp_path / "kubeconfig")

    def run(*args, input=None):
        return subprocess.run([KUBECTL, f"--kubeconfig={kubeconfig}", f"--cache-dir={tmp_path / 'cache'}",
                               "--request-timeout=10s", *args],
                              capture_output=True, text=True, input=input, timeout=60, cwd=tmp_path)

    run.registry = server.registry
    yield run
    server.stop()
    store.close()


def test_explain_walks_our_schema(kubectl):
    result = kubectl("explain", "pod.spec.containers")
    assert result.returncode == 0, result.stderr
    assert "FIELD: containers <[]Container>" in result.stdout
    assert "image\t<string>" in result.stdout and "volumeMounts\t<[]VolumeMount>" in result.stdout
    result = kubectl("explain", "deployments.spec.strategy.rollingUpdate")
    assert result.returncode == 0, result.stderr
    assert "GROUP:      apps" in result.stdout and "maxSurge\t<" in result.stdout
    result = kubectl("explain", "pods.spec.nothing")
    assert result.returncode != 0 and 'field "nothing" does not exist' in result.stderr


def test_apply_validates_fields_strictly_by_default_and_warns_or_ignores_when_told(kubectl):
    result = kubectl("apply", "-f", "-", input=CONFIG_MAP_WITH_TYPO)
    assert result.returncode == 1
    assert 'strict decoding error: unknown field "dta"' in result.stderr
    assert kubectl("get", "configmap", "settings").returncode == 1
    result = kubectl("apply", "--validate=warn", "-f", "-", input=CONFIG_MAP_WITH_TYPO)
    assert result.returncode == 0, result.stderr
    assert 'Warning: unknown field "dta"' in result.stderr
    result = kubectl("apply", "--validate=false", "-f", "-", input=CONFIG_MAP_WITH_TYPO.replace("blue", "red"))
    assert result.returncode == 0 and "Warning" not in result.stderr
    assert kubectl("get", "configmap", "settings", "-o", "jsonpath={.data}").stdout == '{"colour":"red"}'


@pytest.mark.parametrize("manifest", [
    "apiVersion: apps/v1\nkind: Gizmo\nmetadata:\n  name: x\n",  # a group we serve
    "apiVersion: example.com/v1\nkind: Gizmo\nmetadata:\n  name: x\n",  # one we do not
])
def test_an_unknown_kind_gets_no_matches_for_kind(kubectl, manifest):
    """kubectl validates such a kind against /openapi/v2 (fetched as protobuf) before the REST
    mapping refuses it; without that document it said "failed to download openapi"."""
    result = kubectl("apply", "-f", "-", input=manifest)
    assert result.returncode == 1
    assert 'no matches for kind "Gizmo"' in result.stderr
    assert "openapi" not in result.stderr


def test_generators_send_protobuf_and_read_protobuf_answers(kubectl):
    commands = [("create", "configmap", "settings", "--from-literal=colour=blue"),
                ("create", "secret", "generic", "creds", "--from-literal=password=s3cret"),
                ("create", "job", "once", "--image=busybox", "--", "echo", "hi"),
                ("create", "deployment", "web", "--image=busybox", "--replicas=0", "--port=8080"),
                ("create", "service", "clusterip", "web", "--tcp=80:8080"),
                ("create", "cronjob", "tick", "--image=busybox", "--schedule=*/5 * * * *"),
                ("create", "serviceaccount", "robot"),
                ("create", "namespace", "team")]
    for command in commands:
        result = kubectl("-v=8", *command)
        assert result.returncode == 0, f"{command}: {result.stderr[-2000:]}"
        assert "Content-Type: application/vnd.kubernetes.protobuf" in result.stderr, command
    registry = kubectl.registry
    assert registry.get("configmaps", "default", "settings")["data"] == {"colour": "blue"}
    assert registry.get("secrets", "default", "creds")["data"] == {"password": "czNjcmV0"}
    job = registry.get("jobs", "default", "once")
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo", "hi"]
    deployment = registry.get("deployments", "default", "web")
    assert deployment["spec"]["replicas"] == 0  # a pointer's zero is a value
    assert deployment["spec"]["template"]["spec"]["containers"][0]["ports"] == [
        {"containerPort": 8080, "protocol": "TCP"}]
    assert registry.get("services", "default", "web")["spec"]["ports"][0]["targetPort"] == 8080


def test_apply_merges_containers_by_name_with_our_merge_keys(kubectl):
    deployment = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: server
        image: busybox
        env: [{name: A, value: "1"}]
"""
    assert kubectl("apply", "-f", "-", input=deployment).returncode == 0
    result = kubectl("set", "env", "deployment/web", "B=2")
    assert result.returncode == 0, result.stderr
    result = kubectl("apply", "-f", "-", input=deployment.replace("busybox", "busybox:1"))
    assert result.returncode == 0, result.stderr
    stored = kubectl.registry.get("deployments", "default", "web")
    container, = stored["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "busybox:1"
    assert container["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
