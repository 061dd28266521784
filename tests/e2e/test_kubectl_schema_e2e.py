"""The real kubectl against a real cluster: explain, field validation, unknown kinds, and the
`create` generators, which speak protobuf, making objects whose pods really run.

Skipped without root (real pods) or without `kubectl` on PATH. One cluster for the module, over
TLS on a free port; kubectl runs through the context `start` merged into the cluster's own
KUBECONFIG.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.e2e.cluster import Cluster, free_port

KUBECTL = shutil.which("kubectl")
TYPO = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: typo
data:
  colour: blue
dta:
  size: large
"""


@pytest.fixture(scope="module")
def kubectl():
    if os.geteuid() != 0:
        pytest.skip("e2e tests run real pods and need root")
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    running = Cluster(name=f"e2esch{os.getpid() % 10000}", pod_cidr="10.241.47.0/24").start(port=free_port())
    try:
        yield running.kubectl
    finally:
        leftovers = running.stop()
        assert not leftovers, f"cluster {running.name} left these on the host after stop: {leftovers}"


def test_explain_reads_the_openapi_documents(kubectl):
    result = kubectl("explain", "pod.spec.containers.ports")
    assert "FIELD: ports <[]ContainerPort>" in result.stdout
    assert "containerPort\t<integer> -required-" in result.stdout


def test_field_validation_is_strict_by_default_and_an_unknown_kind_has_no_match(kubectl):
    result = kubectl("apply", "-f", "-", input=TYPO, check=False)
    assert result.returncode == 1 and 'strict decoding error: unknown field "dta"' in result.stderr
    result = kubectl("apply", "--validate=warn", "-f", "-", input=TYPO)
    assert 'Warning: unknown field "dta"' in result.stderr
    assert kubectl("get", "configmap", "typo", "-o", "jsonpath={.data.colour}").stdout == "blue"
    result = kubectl("apply", "-f", "-", input="apiVersion: example.com/v1\nkind: Gizmo\nmetadata:\n  name: g\n",
                     check=False)
    assert result.returncode == 1 and 'no matches for kind "Gizmo" in version "example.com/v1"' in result.stderr


def test_protobuf_generators_make_working_objects(kubectl):
    kubectl("create", "configmap", "settings", "--from-literal=greeting=hello")
    kubectl("create", "secret", "generic", "creds", "--from-literal=password=s3cret")
    assert kubectl("get", "secret", "creds", "-o", "jsonpath={.data.password}").stdout == "czNjcmV0"
    kubectl("create", "job", "once", "--image=busybox", "--", "echo", "done by a protobuf job")
    kubectl("create", "deployment", "web", "--image=busybox", "--", "sleep", "3600")
    kubectl("wait", "--for=condition=complete", "job/once", "--timeout=60s", timeout=70)
    assert kubectl("logs", "job/once").stdout == "done by a protobuf job\n"
    kubectl("rollout", "status", "deployment/web", "--timeout=60s", timeout=70)
    assert kubectl("get", "deployment", "web", "-o", "jsonpath={.status.readyReplicas}").stdout == "1"


def test_create_token_sends_a_protobuf_token_request(kubectl):
    token = kubectl("create", "token", "default", "--duration=10m").stdout.strip()
    assert token.count(".") == 2  # a JWT: header, claims, signature
