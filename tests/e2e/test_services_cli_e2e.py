"""The user's side of Services on a real cluster: the Service variables a pod gets, the two-tier
example (manifests/two-tier.yaml) answering end to end through `minikube-py service --url` from the
host, and the real kubectl's get, describe, expose and create against our API.

One cluster (its own name, home, pod and service CIDR) listening over TLS for kubectl; skipped
without root.
"""

from __future__ import annotations

import os
import shutil
import socket
import urllib.request

import pytest

from tests.e2e.cluster import Cluster, Timeout, wait_for

TWO_TIER = os.path.join(os.path.dirname(__file__), "..", "..", "manifests", "two-tier.yaml")
CLIENTS = """
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: nothing}
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Pod
metadata:
  name: linked
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: busybox, command: [sleep, "3600"]}
---
apiVersion: v1
kind: Pod
metadata:
  name: unlinked
spec:
  terminationGracePeriodSeconds: 1
  enableServiceLinks: false
  containers:
  - {name: main, image: busybox, command: [sleep, "3600"]}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("e2e tests run real pods and need root")
    running = Cluster().start(port=free_port() if shutil.which("kubectl") else None)
    try:
        yield running
    finally:
        leftovers = running.stop()
        assert not leftovers, f"cluster {running.name} left these on the host after stop: {leftovers}"


def environment(cluster: Cluster, pod: str) -> dict[str, str]:
    lines = cluster.exec(pod, "env").stdout.splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def cluster_ip(cluster: Cluster, name: str) -> str:
    return cluster.client.raw.get("services", "default", name)["spec"]["clusterIP"]


def test_a_pod_gets_the_variables_of_the_services_that_exist_when_it_starts(cluster: Cluster):
    cluster.apply(CLIENTS)
    cluster.wait_running("linked")
    cluster.wait_running("unlinked")
    linked, unlinked = environment(cluster, "linked"), environment(cluster, "unlinked")
    address = cluster_ip(cluster, "web")
    assert linked["WEB_SERVICE_HOST"] == address and linked["WEB_SERVICE_PORT"] == "8080"
    assert linked["WEB_SERVICE_PORT_HTTP"] == "8080" and linked["WEB_PORT"] == f"tcp://{address}:8080"
    assert linked["WEB_PORT_8080_TCP_ADDR"] == address and linked["WEB_PORT_8080_TCP_PROTO"] == "tcp"
    assert not any(name.startswith("WEB_") for name in unlinked)
    for env in (linked, unlinked):  # the API's Service, always
        assert env["KUBERNETES_SERVICE_HOST"] == cluster_ip(cluster, "kubernetes")
        assert env["KUBERNETES_SERVICE_PORT"] == "443"


def fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except OSError:
        return None


def test_the_two_tier_example_answers_from_the_host_through_its_service_url(cluster: Cluster):
    cluster.cli("apply", "-f", TWO_TIER)
    cluster.cli("rollout", "status", "deployment/backend", "--timeout=60s", timeout=70)
    cluster.cli("rollout", "status", "deployment/frontend", "--timeout=60s", timeout=70)
    url = cluster.cli("service", "frontend", "--url").stdout.strip()
    node_port = cluster.client.raw.get("services", "default", "frontend")["spec"]["ports"][0]["nodePort"]
    assert url.startswith("http://") and url.endswith(f":{node_port}")
    backends = {pod["metadata"]["name"] for pod in
                cluster.client.raw.list("pods", "default", label_selector="app=backend")["items"]}
    # The front end asks the back end by its Service name, with the Secret's credentials.
    answers: list[str | None] = []

    def answer_naming_a_back_end() -> str | None:
        answers.append(fetch(url))
        return answers[-1] if answers[-1] and "back end backend-" in answers[-1] else None

    try:
        page = wait_for(answer_naming_a_back_end, 30, f"the front end at {url} answering with a back end's name")
    except Timeout as error:
        raise AssertionError(f"{error}; its last answers: {answers[-3:]}") from None
    assert page.splitlines()[0] == "Hello from the front end"
    assert page.splitlines()[1].removeprefix("the back end says: back end ") in backends
    refused = cluster.cli("service", "backend", "--url", check=False)
    assert refused.returncode == 1 and "has no node port: its type is ClusterIP" in refused.stderr


def test_the_real_kubectl_gets_describes_exposes_and_creates(cluster: Cluster):
    if cluster.port is None:
        pytest.skip("kubectl is not installed")
    cluster.cli("apply", "-f", TWO_TIER)
    cluster.cli("rollout", "status", "deployment/backend", "--timeout=60s", timeout=70)
    exposed = cluster.kubectl("expose", "deployment", "backend", "--name=backend-np", "--type=NodePort",
                              "--port=80", "--target-port=8080")
    assert exposed.stdout.strip() == "service/backend-np exposed"
    assert cluster.client.raw.get("services", "default", "backend-np")["spec"]["ports"][0]["nodePort"] >= 30000
    for kind, header in (("svc", "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE"), ("ep", "NAME ENDPOINTS AGE"),
                         ("endpointslices", "NAME ADDRESSTYPE PORTS ENDPOINTS AGE"), ("cm", "NAME DATA AGE"),
                         ("secrets", "NAME TYPE DATA AGE"), ("sa", "NAME SECRETS AGE")):
        theirs = cluster.kubectl("get", kind).stdout.splitlines()
        ours = cluster.cli("get", kind).stdout.splitlines()
        assert theirs[0].split() == header.split() == ours[0].split(), kind
        assert [line.split()[0] for line in theirs] == [line.split()[0] for line in ours], kind
    # kubectl's generators send protobuf, which this API does not read: their --dry-run output applies.
    manifest = cluster.kubectl("create", "configmap", "one", "--from-literal=mode=fast", "--dry-run=client",
                               "-o", "yaml").stdout
    assert cluster.kubectl("apply", "-f", "-", input=manifest).stdout.strip() == "configmap/one created"
    assert cluster.cli("create", "secret", "generic", "two", "--from-literal=token=abc").stdout == \
        "secret/two created\n"
    wait_for(lambda: cluster.client.raw.list("endpointslices", "default",
                                             label_selector="kubernetes.io/service-name=backend-np")["items"] or None,
             30, "backend-np's EndpointSlice")
    for target in ("svc/backend-np", "cm/one", "secret/two", "sa/default"):
        assert cluster.kubectl("describe", target).stdout == cluster.cli("describe", target).stdout, target
