"""The real `kubectl` against our API server in-process: tables, watch, round-trips, apply, scale, delete.

The kubectl tests are skipped when `kubectl` is not on PATH; each runs it with `--server` on the
server's TCP port, a throwaway kubeconfig (so ~/.kube is never read) and a timeout on every
call. The first tests speak kubectl's Table protocol by hand and need no kubectl.
"""

import json
import queue
import shutil
import subprocess
import threading
import time

import pytest
import yaml

from minikube_py.apiserver.server import ApiHttpServer
from minikube_py.apiserver.registry import Registry
from minikube_py.clock import FakeClock
from minikube_py.store import Store
from tests.unit.tls_harness import admin_headers, https_connection, make_credentials, tls_config, write_admin_kubeconfig

KUBECTL = shutil.which("kubectl")
# What kubectl 1.32 sends with `get`.
TABLE_ACCEPT = ("application/json;as=Table;v=v1;g=meta.k8s.io,"
                "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")

# The fake clock starts here; objects are created at it, and advanced time gives their AGE.
START = 1_800_000_000.0

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "server", "image": "busybox"}]}}},
}
MANIFEST = """\
apiVersion: v1
kind: Pod
metadata:
  name: applied
  labels:
    app: applied
spec:
  containers:
  - name: main
    image: busybox
"""


@pytest.fixture
def server(tmp_path):
    """A server on a free port with a fake clock."""
    store = Store(":memory:")
    server = ApiHttpServer(Registry(store, FakeClock(START)), str(tmp_path / "api.sock"), port=0,
                           node_proxy=LinesNodeProxy(), tls=tls_config(make_credentials(tmp_path)))
    server.tls_paths = make_credentials(tmp_path)
    server.start()
    yield server
    server.stop()
    store.close()


class LinesNodeProxy:
    """A node agent stand-in serving two fixed log lines."""

    def logs(self, namespace, name, container=None, follow=False, tail_lines=None, timestamps=False,
             previous=False):
        lines = [b"first line\n", b"second line\n"]
        return iter(lines[-tail_lines:] if tail_lines else lines)


@pytest.fixture
def cluster(server, tmp_path):
    """The server's registry and clock, and a function running kubectl against it."""
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    registry = server.registry
    clock = registry.clock
    kubeconfig = write_admin_kubeconfig(make_credentials(tmp_path), server.port, tmp_path / "kubeconfig")

    def kubectl(*args, input=None, check=True):
        result = subprocess.run(
            [KUBECTL, f"--kubeconfig={kubeconfig}", "--request-timeout=10s", *args],
            capture_output=True, text=True, input=input, timeout=30, cwd=tmp_path)
        if check:
            assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result

    return registry, clock, kubectl


def request(server, path, accept=None):
    connection = https_connection(server.tls_paths, server.port)
    try:
        connection.request("GET", path, headers=admin_headers(server.tls_paths, {"Accept": accept} if accept else {}))
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_a_table_accept_header_gets_a_v1_table_and_plain_json_stays_a_list(server):
    running_pod(server.registry, "web-1")
    status, table = request(server, "/api/v1/namespaces/default/pods", TABLE_ACCEPT)
    assert status == 200 and (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert table["rows"][0]["cells"][:3] == ["web-1", "1/1", "Running"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert table["metadata"]["resourceVersion"] == server.registry.list("pods")["metadata"]["resourceVersion"]
    assert request(server, "/api/v1/namespaces/default/pods", "application/json")[1]["kind"] == "PodList"
    # Only a v1beta1 Table is asked for first: we skip it and take the plain JSON after it.
    beta_first = "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
    assert request(server, "/api/v1/namespaces/default/pods", beta_first)[1]["kind"] == "PodList"


def test_include_object_picks_what_each_row_carries_and_rejects_unknown_values(server):
    running_pod(server.registry, "web-1")
    path = "/api/v1/namespaces/default/pods/web-1?includeObject="
    assert request(server, path + "Object", TABLE_ACCEPT)[1]["rows"][0]["object"]["kind"] == "Pod"
    assert "object" not in request(server, path + "None", TABLE_ACCEPT)[1]["rows"][0]
    status, error = request(server, path + "Everything", TABLE_ACCEPT)
    assert status == 400 and "includeObject" in error["message"]


def test_a_table_watch_sends_each_event_as_a_one_row_table(server):
    connection = https_connection(server.tls_paths, server.port)
    connection.request("GET", "/api/v1/namespaces/default/pods?watch=true&timeoutSeconds=5",
                       headers=admin_headers(server.tls_paths, {"Accept": TABLE_ACCEPT}))
    response = connection.getresponse()
    running_pod(server.registry, "web-1")
    try:
        event = json.loads(response.readline())
    finally:
        connection.close()
    assert event["type"] == "ADDED" and event["object"]["kind"] == "Table"
    assert [row["cells"][0] for row in event["object"]["rows"]] == ["web-1"]
    assert event["object"]["columnDefinitions"][0]["name"] == "Name"


def running_pod(registry, name, ready=True, restarts=0, node="node1", ip="10.244.0.7"):
    registry.create("pods", "default", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "main", "image": "busybox"}], "nodeName": node}})
    registry.patch_status("pods", "default", name, {"status": {
        "phase": "Running", "podIP": ip,
        "containerStatuses": [{"name": "main", "image": "busybox", "imageID": "", "ready": ready,
                               "restartCount": restarts, "state": {"running": {"startedAt": "2027-01-15T08:00:00Z"}}}],
    }})


def lines(text):
    return [line.split() for line in text.strip().splitlines()]


def test_get_pods_prints_kubectl_columns_with_our_cells(cluster):
    registry, clock, kubectl = cluster
    running_pod(registry, "web-1")
    running_pod(registry, "web-2", ready=False)
    clock.advance(300)
    assert lines(kubectl("get", "pods").stdout) == [
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        ["web-1", "1/1", "Running", "0", "5m"],
        ["web-2", "0/1", "Running", "0", "5m"],
    ]


def test_get_pods_wide_and_show_labels_and_all_namespaces(cluster):
    registry, clock, kubectl = cluster
    running_pod(registry, "web-1")
    wide = lines(kubectl("get", "pods", "-o", "wide").stdout)
    assert wide[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE",
                       "READINESS", "GATES"]
    assert wide[1] == ["web-1", "1/1", "Running", "0", "0s", "10.244.0.7", "node1", "<none>", "<none>"]
    assert lines(kubectl("get", "pods", "--show-labels").stdout)[1][-1] == "app=web"
    assert lines(kubectl("get", "pods", "-A").stdout)[1][:2] == ["default", "web-1"]


def test_get_single_pod_by_name_is_one_row(cluster):
    registry, _, kubectl = cluster
    running_pod(registry, "web-1")
    running_pod(registry, "web-2")
    assert [row[0] for row in lines(kubectl("get", "pod", "web-2").stdout)] == ["NAME", "web-2"]


def test_get_deployments_wide_replicasets_namespaces_and_nodes(cluster):
    registry, clock, kubectl = cluster
    registry.create("deployments", "default", DEPLOYMENT)
    registry.patch_status("deployments", "default", "web", {"status": {
        "replicas": 2, "updatedReplicas": 2, "readyReplicas": 1, "availableReplicas": 1}})
    registry.create("replicasets", "default", {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-abc"},
        "spec": {**DEPLOYMENT["spec"], "replicas": 2}})
    registry.patch_status("replicasets", "default", "web-abc", {"status": {"replicas": 2, "readyReplicas": 1}})
    registry.create("nodes", None, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node1"},
                                    "status": {"conditions": [{"type": "Ready", "status": "True"}],
                                               "nodeInfo": {"kubeletVersion": "v1.32.0-minikube-py"}}})
    registry.patch_status("nodes", None, "node1", {"status": {
        "conditions": [{"type": "Ready", "status": "True"}],
        "nodeInfo": {"kubeletVersion": "v1.32.0-minikube-py"}}})
    clock.advance(7200)

    assert lines(kubectl("get", "deploy", "-o", "wide").stdout) == [
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"],
        ["web", "1/2", "2", "1", "120m", "server", "busybox", "app=web"],
    ]
    assert lines(kubectl("get", "rs").stdout) == [
        ["NAME", "DESIRED", "CURRENT", "READY", "AGE"], ["web-abc", "2", "2", "1", "120m"]]
    namespaces = lines(kubectl("get", "ns").stdout)
    assert namespaces[0] == ["NAME", "STATUS", "AGE"]
    assert ["default", "Active", "120m"] in namespaces
    assert lines(kubectl("get", "nodes").stdout) == [
        ["NAME", "STATUS", "ROLES", "AGE", "VERSION"], ["node1", "Ready", "<none>", "120m", "v1.32.0-minikube-py"]]


def test_get_json_and_yaml_are_the_stored_object(cluster):
    registry, _, kubectl = cluster
    running_pod(registry, "web-1")
    stored = registry.get("pods", "default", "web-1")
    assert stored["metadata"]["managedFields"]
    shown = json.loads(kubectl("get", "pod", "web-1", "-o", "json", "--show-managed-fields").stdout)
    assert shown == stored
    # Without the flag kubectl leaves managedFields out, and shows the rest as stored.
    stored["metadata"].pop("managedFields")
    assert json.loads(kubectl("get", "pod", "web-1", "-o", "json").stdout) == stored
    assert yaml.safe_load(kubectl("get", "pod", "web-1", "-o", "yaml").stdout) == stored
    listed = json.loads(kubectl("get", "pods", "-o", "json").stdout)
    assert [item["metadata"]["name"] for item in listed["items"]] == ["web-1"]


def test_apply_creates_then_reports_unchanged(cluster, tmp_path):
    registry, _, kubectl = cluster
    (tmp_path / "pod.yaml").write_text(MANIFEST)
    assert kubectl("apply", "-f", "pod.yaml").stdout.strip() == "pod/applied created"
    assert kubectl("apply", "-f", "pod.yaml").stdout.strip() == "pod/applied unchanged"
    assert registry.get("pods", "default", "applied")["metadata"]["labels"] == {"app": "applied"}


def test_scale_deployment_sets_replicas(cluster):
    registry, _, kubectl = cluster
    registry.create("deployments", "default", DEPLOYMENT)
    assert kubectl("scale", "deployment/web", "--replicas=3").stdout.strip() == "deployment.apps/web scaled"
    assert registry.get("deployments", "default", "web")["spec"]["replicas"] == 3


def test_delete_pod_removes_it(cluster):
    registry, _, kubectl = cluster
    running_pod(registry, "web-1", node=None)
    assert kubectl("delete", "pod", "web-1").stdout.strip() == 'pod "web-1" deleted'
    result = kubectl("get", "pod", "web-1", check=False)
    assert result.returncode != 0 and 'pods "web-1" not found' in result.stderr


def test_api_resources_lists_our_kinds(cluster):
    _, _, kubectl = cluster
    rows = lines(kubectl("api-resources").stdout)
    names = {row[0] for row in rows[1:]}
    assert {"pods", "deployments", "replicasets", "namespaces", "nodes", "events"} <= names
    assert ["deployments", "deploy", "apps/v1", "true", "Deployment"] in rows


def test_version_shows_our_server_version(cluster):
    _, _, kubectl = cluster
    output = kubectl("version").stdout
    assert "Server Version: v1.32.0-minikube-py-" in output


def test_get_watch_prints_a_row_per_change(cluster, server, tmp_path):
    registry, _, _ = cluster
    running_pod(registry, "web-1")
    watcher = subprocess.Popen(
        [KUBECTL, f"--kubeconfig={tmp_path / 'kubeconfig'}", "get", "pods", "-w"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    printed: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [printed.put(line.split()) for line in watcher.stdout], daemon=True).start()

    def next_line():
        return printed.get(timeout=max(0.1, deadline - time.monotonic()))

    deadline = time.monotonic() + 15
    try:
        assert next_line() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        assert next_line()[:3] == ["web-1", "1/1", "Running"]
        registry.patch_status("pods", "default", "web-1", {"status": {"phase": "Failed", "containerStatuses": [
            {"name": "main", "image": "busybox", "imageID": "", "ready": False, "restartCount": 0,
             "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}})
        assert next_line()[:3] == ["web-1", "0/1", "Error"]
    finally:
        watcher.kill()
        watcher.wait(timeout=10)
        watcher.stdout.close()


def test_logs_reads_the_node_agents_log_stream(cluster):
    registry, _, kubectl = cluster
    running_pod(registry, "web-1")
    assert kubectl("logs", "web-1").stdout == "first line\nsecond line\n"
    assert kubectl("logs", "web-1", "--tail=1").stdout == "second line\n"
