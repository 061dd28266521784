"""ConfigMap and Secret volumes in a real pod: the files, the live update through the `..data`
swap (but not through a subPath), the Secret on a tmpfs of the pod (never on disk), a pod whose
ConfigMap is missing waiting with kubelet's FailedMount until it is applied, and the default
kube-api-access volume whose token the API's TLS door takes as the pod's ServiceAccount."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import ssl

import pytest

from minikube_py.apiserver import certificates
from tests.e2e.cluster import Cluster, wait_for

TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@pytest.fixture(scope="module")
def cluster():
    """This module's cluster serves the API over TLS too, for the ServiceAccount token."""
    if os.geteuid() != 0:
        pytest.skip("e2e tests run real pods and need root")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    running = Cluster().start(port=port)
    try:
        yield running
    finally:
        leftovers = running.stop()
        assert not leftovers, f"cluster {running.name} left these on the host after stop: {leftovers}"

CONFIG = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  level: {level}
"""

SECRET = f"""
apiVersion: v1
kind: Secret
metadata:
  name: app-secret
data:
  password: {base64.b64encode(b"s3cret").decode()}
"""

READER = """
apiVersion: v1
kind: Pod
metadata:
  name: reader
spec:
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
    volumeMounts:
    - {name: config, mountPath: /etc/config}
    - {name: config, mountPath: /etc/level, subPath: level}
    - {name: secret, mountPath: /etc/secret}
  volumes:
  - name: config
    configMap: {name: app-config}
  - name: secret
    secret: {secretName: app-secret, defaultMode: 0400}
"""

WAITER = """
apiVersion: v1
kind: Pod
metadata:
  name: waiter
spec:
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
    volumeMounts:
    - {name: later, mountPath: /etc/later}
  volumes:
  - name: later
    configMap: {name: later-config}
"""

LATER = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: later-config
data:
  greeting: hello
"""


def in_reader(cluster: Cluster, *commands: str) -> list[str]:
    """Each command's output, from one exec into the reader pod (each exec is a CLI start)."""
    marker = "-----split-----"
    script = f"; echo {marker}; ".join(commands)
    return cluster.exec("reader", "sh", "-c", script).stdout.split(marker + "\n")


def reader_mounts(cluster: Cluster) -> dict[str, list[str]]:
    return {line.split()[1]: line.split() for line in cluster.exec("reader", "cat", "/proc/mounts").stdout.splitlines()}


def test_config_map_and_secret_files_update_in_place_on_a_tmpfs(cluster: Cluster):
    cluster.apply(CONFIG.format(level="info") + "---" + SECRET + "---" + READER)
    cluster.wait_running("reader")
    level, password, secret_mode, listing = in_reader(cluster, "cat /etc/config/level", "cat /etc/secret/password",
                                                      "stat -L -c %a /etc/secret/password", "ls -la /etc/config")
    assert (level, password, secret_mode.strip()) == ("info", "s3cret", "400")
    assert "..data -> ..20" in listing and "level -> ..data/level" in listing
    mounts = reader_mounts(cluster)
    assert mounts["/etc/secret"][2] == "tmpfs" and "ro" in mounts["/etc/secret"][3].split(",")
    assert mounts["/etc/config"][2] != "tmpfs" and "ro" in mounts["/etc/config"][3].split(",")

    cluster.apply(CONFIG.format(level="debug"))
    wait_for(lambda: cluster.exec("reader", "cat", "/etc/config/level").stdout == "debug", 20,
             "the ConfigMap's new value in the running container")
    assert cluster.exec("reader", "cat", "/etc/level").stdout == "info"  # a subPath is not updated
    assert cluster.pod("reader")["status"]["containerStatuses"][0]["restartCount"] == 0


def test_a_missing_config_map_holds_the_pod_in_container_creating_until_it_appears(cluster: Cluster):
    cluster.apply(WAITER)

    def failed_mount() -> bool:
        events = cluster.client.raw.list("events", "default")["items"]
        return any(event["reason"] == "FailedMount" and event["involvedObject"]["name"] == "waiter" and
                   event["message"] == 'MountVolume.SetUp failed for volume "later" : configmap "later-config" not found'
                   for event in events)

    wait_for(failed_mount, 20, "the FailedMount event of pod waiter")
    status = cluster.pod("waiter")["status"]
    assert status["phase"] == "Pending"
    assert status["containerStatuses"][0]["state"]["waiting"]["reason"] == "ContainerCreating"
    cluster.apply(LATER)
    cluster.wait_running("waiter", timeout=20)
    assert cluster.exec("waiter", "cat", "/etc/later/greeting").stdout == "hello"


def test_the_default_token_volume_authenticates_the_pod_as_its_service_account(cluster: Cluster):
    cluster.wait_running("reader")
    files, namespace, ca, token = in_reader(cluster, f"ls {TOKEN_DIR}", f"cat {TOKEN_DIR}/namespace",
                                            f"cat {TOKEN_DIR}/ca.crt", f"cat {TOKEN_DIR}/token")
    assert files.split() == ["ca.crt", "namespace", "token"] and namespace == "default"
    assert reader_mounts(cluster)[TOKEN_DIR][2] == "tmpfs"
    with open(os.path.join(cluster.home, "pki", "ca.crt")) as file:
        assert ca == file.read()
    # Authenticated (not 401) as the pod's ServiceAccount, which may do nothing, as with Kubernetes' default RBAC.
    code, message = list_secrets_with(cluster, token)
    assert code == 403 and 'User "system:serviceaccount:default:default" cannot list resource "secrets"' in message
    # The admin asks the TokenRequest API over TLS for a token of the account, bound to nothing.
    admin = certificates.token_of(certificates.Paths(cluster.home), certificates.ADMIN_USER)
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}}
    code, reply = over_tls(cluster, "POST", "/api/v1/namespaces/default/serviceaccounts/default/token", admin, request)
    assert code == 201, reply
    made = reply["status"]["token"]
    assert list_secrets_with(cluster, made)[0] == 403
    assert list_secrets_with(cluster, made[:-2] + ("xx" if not made.endswith("xx") else "yy"))[0] == 401


def over_tls(cluster: Cluster, method: str, path: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    context = ssl.create_default_context(cafile=os.path.join(cluster.home, "pki", "ca.crt"))
    connection = http.client.HTTPSConnection("127.0.0.1", cluster.port, context=context, timeout=10)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def list_secrets_with(cluster: Cluster, token: str) -> tuple[int, str]:
    code, status = over_tls(cluster, "GET", "/api/v1/namespaces/default/secrets", token)
    return code, status.get("message", "")
