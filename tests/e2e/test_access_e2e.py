"""Nobody but root gets in: the two doors of a real cluster, tried as another local user.

A cluster started with `--port` serves TLS only on 127.0.0.1; the test runs requests as the
unprivileged user `nobody` (with setpriv, and Debian's /usr/bin/python3 and kubectl, which nobody
may execute): without a credential it gets 401, it cannot open the unix socket or enter the
cluster home, and with the kubeconfig's token it is let in. File modes are read with os.stat.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile

import pytest
import yaml

from tests.e2e.cluster import Cluster

SECRET_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: secretive
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: busybox
      command: ["sleep", "3600"]
      env:
        - name: PASSWORD
          value: hunter2
"""
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
SYSTEM_PYTHON = "/usr/bin/python3"

# Run as nobody: one HTTPS GET, printing the status and the body's kind/reason as JSON.
HTTPS_GET = r"""
import http.client, json, ssl, sys
port, token = int(sys.argv[1]), sys.argv[2]
context = ssl.create_default_context(); context.check_hostname = False; context.verify_mode = ssl.CERT_NONE
connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
connection.request("GET", "/api/v1/namespaces/default/pods",
                   headers={"Authorization": f"Bearer {token}"} if token else {})
response = connection.getresponse()
body = json.loads(response.read())
print(json.dumps({"status": response.status, "kind": body.get("kind"), "reason": body.get("reason")}))
"""
PLAIN_HTTP_GET = r"""
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as connection:
    connection.sendall(b"GET /api/v1/pods HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        print(repr(connection.recv(100)))
    except OSError as error:
        print(f"error {error}")
"""
# Run as nobody: print every path from stdin that can be looked at (lstat) at all.
STAT_EACH = r"""
import os, sys
for path in sys.stdin.read().splitlines():
    try:
        os.lstat(path)
        print(path)
    except PermissionError:
        pass
"""
OPEN_SOCKET = r"""
import socket, sys
probe = socket.socket(socket.AF_UNIX)
try:
    probe.connect(sys.argv[1])
    print("connected")
except OSError as error:
    print(type(error).__name__)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def as_nobody(*command: str, env: dict | None = None, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*NOBODY, *command], capture_output=True, text=True, timeout=60, cwd="/", input=input,
                          env=env or {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})


@pytest.fixture(scope="module")
def access_cluster():
    if os.geteuid() != 0:
        pytest.skip("e2e tests run real pods and need root")
    if shutil.which("setpriv") is None or not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.skip("needs setpriv and /usr/bin/python3 to act as another user")
    running = Cluster().start(port=free_port())
    try:
        yield running
    finally:
        leftovers = running.stop()
        assert not leftovers, f"cluster {running.name} left these on the host after stop: {leftovers}"


def admin_token(cluster: Cluster) -> str:
    document = yaml.safe_load(cluster.cli("kubeconfig").stdout)
    return document["users"][0]["user"]["token"]


def mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_another_user_without_a_token_is_refused_with_401(access_cluster):
    result = as_nobody(SYSTEM_PYTHON, "-c", HTTPS_GET, str(access_cluster.port), "")
    assert json.loads(result.stdout) == {"status": 401, "kind": "Status", "reason": "Unauthorized"}, result.stderr
    wrong = as_nobody(SYSTEM_PYTHON, "-c", HTTPS_GET, str(access_cluster.port), "not-the-token")
    assert json.loads(wrong.stdout)["status"] == 401


def test_plain_http_on_the_port_gets_nothing(access_cluster):
    result = as_nobody(SYSTEM_PYTHON, "-c", PLAIN_HTTP_GET, str(access_cluster.port))
    assert "PodList" not in result.stdout and "200 OK" not in result.stdout, result.stdout


def test_another_user_cannot_open_the_unix_socket_or_enter_the_home(access_cluster):
    socket_path = os.path.join(access_cluster.home, "api.sock")
    assert as_nobody(SYSTEM_PYTHON, "-c", OPEN_SOCKET, socket_path).stdout.strip() == "PermissionError"
    listing = as_nobody("ls", access_cluster.home)
    assert listing.returncode != 0 and "Permission denied" in listing.stderr


def test_another_user_with_the_kubeconfig_token_is_let_in(access_cluster):
    result = as_nobody(SYSTEM_PYTHON, "-c", HTTPS_GET, str(access_cluster.port), admin_token(access_cluster))
    assert json.loads(result.stdout) == {"status": 200, "kind": "PodList", "reason": None}, result.stderr
    # The real kubectl as nobody, with a copy of the kubeconfig handed to it.
    scratch = tempfile.mkdtemp(prefix="minikube-py-nobody-")
    try:
        copy = os.path.join(scratch, "config")
        with open(copy, "w") as file:
            file.write(access_cluster.cli("kubeconfig").stdout)
        os.chown(scratch, 65534, 65534)
        os.chown(copy, 65534, 65534)
        kubectl = as_nobody(shutil.which("kubectl") or "kubectl", "--kubeconfig", copy, "get", "namespaces", "-o", "name",
                            env={"PATH": "/usr/bin:/bin", "HOME": scratch})
        assert kubectl.returncode == 0 and "namespace/default" in kubectl.stdout, kubectl.stderr
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_the_home_the_store_and_the_credentials_are_private(access_cluster):
    home = access_cluster.home
    access_cluster.apply(SECRET_POD)
    access_cluster.wait_running("secretive")
    assert mode(home) == 0o700
    for name in ("state.db", "state.db-wal", "state.db-shm"):
        assert mode(os.path.join(home, name)) == 0o600, name
    assert mode(os.path.join(home, "api.sock")) == 0o600
    assert mode(os.path.join(home, "kubeconfig")) == 0o600
    assert mode(os.path.join(home, "pki")) == 0o700
    for name in os.listdir(os.path.join(home, "pki")):
        assert mode(os.path.join(home, "pki", name)) == 0o600, name
    # No path in the whole tree (store, credentials, container state.json and upper dirs, image
    # layers) can even be looked at by another user: the closed home stands before every one.
    paths = [os.path.join(directory, name) for directory, directories, files in os.walk(home)
             for name in directories + files]
    assert any(path.endswith("state.json") for path in paths), "expected container state files in the home"
    reachable = as_nobody(SYSTEM_PYTHON, "-c", STAT_EACH, input="\n".join(paths))
    assert reachable.returncode == 0 and reachable.stdout == "", f"nobody could reach: {reachable.stdout[:2000]}"
    # Nor the pods' cgroups: what they run and use is root's to read.
    cgroups = glob.glob(f"/sys/fs/cgroup/*/minikube-py-{access_cluster.name}/**/", recursive=True) + \
        glob.glob(f"/sys/fs/cgroup/minikube-py-{access_cluster.name}/**/", recursive=True)
    leaves = [path for path in cgroups if path.count("/") > cgroups[0].count("/")]
    assert leaves, "expected the pod's cgroups"
    assert all(mode(path) == 0o700 for path in leaves), {path: oct(mode(path)) for path in leaves}


def test_the_merged_context_is_current_in_the_clusters_kubeconfig_and_private(access_cluster):
    merged = yaml.safe_load(open(access_cluster.kubeconfig))
    assert merged["current-context"] == access_cluster.name
    assert [context["name"] for context in merged["contexts"]] == [access_cluster.name]
    assert merged["clusters"][0]["cluster"]["server"] == f"https://127.0.0.1:{access_cluster.port}"
    assert mode(access_cluster.kubeconfig) == 0o600


def test_a_second_start_refreshes_the_context_and_keeps_other_entries(access_cluster):
    merged = yaml.safe_load(open(access_cluster.kubeconfig))
    merged["contexts"].append({"name": "elsewhere", "context": {"cluster": "elsewhere", "user": "elsewhere"}})
    merged["contexts"][0]["context"]["namespace"] = "stale"
    with open(access_cluster.kubeconfig, "w") as file:
        yaml.safe_dump(merged, file)
    access_cluster.cli("start")
    refreshed = yaml.safe_load(open(access_cluster.kubeconfig))
    contexts = {context["name"]: context["context"] for context in refreshed["contexts"]}
    assert set(contexts) == {access_cluster.name, "elsewhere"}
    assert contexts[access_cluster.name]["namespace"] == "default"
    assert access_cluster.kubectl("get", "pods").returncode == 0


def test_stop_leaves_the_context_in_the_users_kubeconfig(access_cluster):
    access_cluster.cli("stop", "--grace-period", "1", timeout=120)
    kept = yaml.safe_load(open(access_cluster.kubeconfig))
    assert access_cluster.name in [context["name"] for context in kept["contexts"]]
    assert kept["current-context"] == access_cluster.name
