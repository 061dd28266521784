"""The HTTP API over a unix socket: each verb, each error code, watch streaming, node proxy."""

import json
import os
import socket
import threading
import time

import pytest

from minikube_py.api import errors
from minikube_py.apiserver.server import ApiHttpServer
from minikube_py.apiserver.registry import Registry
from minikube_py.client import kubeconfig
from minikube_py.client.transport import HttpTransport
from minikube_py.clock import FakeClock
from minikube_py.runtime.fake import FakeExecSession
from minikube_py.runtime.types import ExecResult
from minikube_py.store import Store
from tests.unit.tls_harness import admin_kubeconfig, make_credentials, tls_config


def pod_body(name="web", labels=None):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {"app": "web"}},
            "spec": {"containers": [{"name": "main", "image": "busybox"}]}}


class RecordingNodeProxy:
    """A node agent stand-in: fixed log lines, a scripted exec, a small inspect document."""

    def __init__(self):
        self.exec_sessions = []

    def logs(self, namespace, name, container=None, follow=False, tail_lines=None, timestamps=False,
             previous=False):
        if container == "missing":
            raise errors.BadRequest(f"container {container} is not valid for pod {name}")
        lines = [b"one\n", b"two\n", b"three\n"]
        return iter(lines[-tail_lines:] if tail_lines else lines)

    def exec(self, namespace, name, container, command, tty=False):
        session = FakeExecSession(ExecResult(7, b"out:" + " ".join(command).encode(), b"err"), bytearray())
        self.exec_sessions.append(session)
        return session

    def inspect(self, namespace, name):
        return {"pod": {"namespace": namespace, "name": name}}


@pytest.fixture
def server(tmp_path):
    store = Store(":memory:")
    server = ApiHttpServer(Registry(store, FakeClock()), str(tmp_path / "api.sock"), port=0,
                           node_proxy=RecordingNodeProxy(), tls=tls_config(make_credentials(tmp_path)))
    server.start()
    yield server
    server.stop()
    store.close()


@pytest.fixture
def transport(server):
    return HttpTransport(socket_path=server.socket_path)


def raw_request(server, method, path, body=b"", headers=None):
    """One request by hand, for what the transport never sends."""
    from minikube_py.client.transport import UnixHTTPConnection

    connection = UnixHTTPConnection(server.socket_path, timeout=10)
    connection.request(method, path, body, headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, json.loads(data) if data else None


def test_the_socket_is_private_to_its_owner(server):
    assert oct(os.stat(server.socket_path).st_mode & 0o777) == "0o600"


def test_many_clients_connecting_at_once_are_all_taken(server):
    """A unix connect with a timeout fails with EAGAIN once the listen backlog is full."""
    from minikube_py.client.transport import UnixHTTPConnection

    pause = threading.Event()
    (accepting,) = [listener for listener in server._servers if listener.address_family == socket.AF_UNIX]
    original = accepting._handle_request_noblock
    accepting._handle_request_noblock = lambda: pause.wait(5) or original()  # nothing accepted yet
    connections = [UnixHTTPConnection(server.socket_path, timeout=10) for _ in range(32)]
    try:
        for connection in connections:
            connection.connect()  # all queued in the backlog
    finally:
        pause.set()
        for connection in connections:
            connection.close()


def test_create_get_replace_patch_delete_round_trip(transport):
    created = transport.create("pods", "default", pod_body())
    assert created["metadata"]["uid"]
    fetched = transport.get("pods", "default", "web")
    assert fetched == created
    replaced = transport.replace("pods", "default", "web",
                                 {**fetched, "metadata": {**fetched["metadata"], "labels": {"app": "v2"}}})
    assert replaced["metadata"]["labels"] == {"app": "v2"}
    patched = transport.patch("pods", "default", "web", {"metadata": {"annotations": {"a": "b"}}})
    assert patched["metadata"]["annotations"] == {"a": "b"}
    status = transport.patch_status("pods", "default", "web", {"status": {"phase": "Running"}})
    assert status["status"]["phase"] == "Running"
    assert transport.replace_status("pods", "default", "web", {**status, "status": {"phase": "Failed"}})[
        "status"]["phase"] == "Failed"
    assert transport.delete("pods", "default", "web")["metadata"]["name"] == "web"
    with pytest.raises(errors.NotFound):
        transport.get("pods", "default", "web")


def test_cluster_wide_and_namespaced_lists_with_selectors(transport):
    transport.create("pods", "default", pod_body("a", {"app": "web"}))
    transport.create("pods", "kube-system", pod_body("b", {"app": "dns"}))
    everything = transport.list("pods")
    assert everything["kind"] == "PodList"
    assert [item["metadata"]["name"] for item in everything["items"]] == ["a", "b"]
    assert [item["metadata"]["name"] for item in transport.list("pods", "kube-system")["items"]] == ["b"]
    assert [item["metadata"]["name"] for item in transport.list("pods", label_selector="app=web")["items"]] == ["a"]
    assert [item["metadata"]["name"] for item in
            transport.list("pods", field_selector="metadata.name=b")["items"]] == ["b"]


def test_apps_resources_scale_and_binding(transport):
    transport.create("deployments", "default", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "main", "image": "busybox"}]}}}})
    assert transport.patch_scale("deployments", "default", "web", {"spec": {"replicas": 3}})["spec"]["replicas"] == 3
    assert transport.get_scale("deployments", "default", "web")["status"]["selector"] == "app=web"
    assert transport.list("deployments")["items"][0]["spec"]["replicas"] == 3
    transport.create("pods", "default", pod_body())
    assert transport.bind("default", "web", "node-1")["spec"]["nodeName"] == "node-1"


def test_error_codes_arrive_as_the_matching_errors(server, transport):
    with pytest.raises(errors.BadRequest) as bad_request:
        transport.create("pods", "default", {"apiVersion": "v1", "kind": "Pod",
                                             "metadata": {"name": "x", "namespace": "other"}})
    assert bad_request.value.code == 400
    with pytest.raises(errors.NotFound) as not_found:
        transport.get("pods", "default", "ghost")
    assert not_found.value.code == 404 and not_found.value.message == 'pods "ghost" not found'
    created = transport.create("pods", "default", pod_body())
    with pytest.raises(errors.AlreadyExists):
        transport.create("pods", "default", pod_body())
    transport.patch("pods", "default", "web", {"metadata": {"labels": {"v": "2"}}})
    with pytest.raises(errors.Conflict) as conflict:
        transport.replace("pods", "default", "web", created)
    assert conflict.value.code == 409
    server.registry.store.compact(keep=0)
    with pytest.raises(errors.Gone) as gone:
        transport.watch("pods", resource_version="1")
    assert gone.value.code == 410
    invalid_pod = pod_body("bad")
    invalid_pod["spec"]["containers"][0]["image"] = ""
    with pytest.raises(errors.Invalid) as invalid:
        transport.create("pods", "default", invalid_pod)
    assert invalid.value.code == 422 and "spec.containers[0].image" in invalid.value.message


def test_unknown_paths_and_methods_are_status_errors(server):
    status, document = raw_request(server, "GET", "/api/v1/widgets")
    assert status == 404 and document["kind"] == "Status" and document["reason"] == "NotFound"
    status, document = raw_request(server, "PUT", "/api/v1/pods")
    assert status == 405
    status, document = raw_request(server, "POST", "/api/v1/namespaces/default/pods", b"{not json",
                                   {"Content-Type": "application/json"})
    assert status == 400
    status, document = raw_request(server, "PATCH", "/api/v1/namespaces/default/pods/web", b"{}",
                                   {"Content-Type": "text/plain"})
    assert status == 415


def test_delete_options_in_the_body_and_the_query(server, transport):
    transport.create("pods", "default", pod_body())
    transport.bind("default", "web", "node-1")
    marked = transport.delete("pods", "default", "web", grace_period_seconds=10)
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 10
    status, document = raw_request(server, "DELETE", "/api/v1/namespaces/default/pods/web?gracePeriodSeconds=0")
    assert status == 200
    with pytest.raises(errors.NotFound):
        transport.get("pods", "default", "web")


def test_discovery_documents_describe_the_served_resources(server, transport):
    assert transport.version()["gitVersion"].startswith("v1.32.0-minikube-py")
    _, core = raw_request(server, "GET", "/api/v1")
    pods = next(entry for entry in core["resources"] if entry["name"] == "pods")
    assert pods["kind"] == "Pod" and pods["namespaced"] and "po" in pods["shortNames"] and "watch" in pods["verbs"]
    _, groups = raw_request(server, "GET", "/apis")
    assert groups["groups"][0]["name"] == "apps"
    _, apps = raw_request(server, "GET", "/apis/apps/v1")
    assert {"deployments", "deployments/scale", "replicasets"} <= {entry["name"] for entry in apps["resources"]}


def test_a_watch_streams_synthetic_adds_then_changes_until_closed(transport):
    transport.create("pods", "default", pod_body("a"))
    watch = transport.watch("pods", "default")
    assert (watch.next(timeout=10)["type"], ) == ("ADDED",)
    transport.create("pods", "default", pod_body("b"))
    transport.delete("pods", "default", "a")
    events = [watch.next(timeout=10), watch.next(timeout=10)]
    assert [(event["type"], event["object"]["metadata"]["name"]) for event in events] == [
        ("ADDED", "b"), ("DELETED", "a")]
    watch.close()
    assert watch.next(timeout=1) is None


def test_a_watch_with_timeout_seconds_ends_by_itself(transport):
    watch = transport.watch("pods", "default", resource_version=transport.list("pods")["metadata"]["resourceVersion"],
                            timeout_seconds=1)
    assert watch.next(timeout=10) is None
    assert watch.closed


def test_stopping_the_server_ends_open_watches(server, transport):
    watch = transport.watch("pods")
    ended = threading.Event()
    threading.Thread(target=lambda: (list(watch), ended.set()), daemon=True).start()
    server.stop()
    assert ended.wait(10)
    server.start()


def test_logs_stream_from_the_node_proxy(transport):
    transport.create("pods", "default", pod_body())
    assert b"".join(transport.logs("default", "web")) == b"one\ntwo\nthree\n"
    assert b"".join(transport.logs("default", "web", tail_lines=1)) == b"three\n"
    with pytest.raises(errors.BadRequest, match="container missing is not valid"):
        transport.logs("default", "web", container="missing")
    with pytest.raises(errors.NotFound):
        transport.logs("default", "ghost")


def test_exec_runs_over_a_websocket_channel_stream(server, transport):
    transport.create("pods", "default", pod_body())
    stream = transport.exec("default", "web", None, ["echo", "hi"])
    stream.write_stdin(b"input")
    stream.close_stdin()
    output = list(stream.read())
    assert output == [(1, b"out:echo hi"), (2, b"err")]
    assert stream.wait() == 7


def test_inspect_and_missing_node_proxy(server, transport):
    transport.create("pods", "default", pod_body())
    assert transport.inspect("default", "web") == {"pod": {"namespace": "default", "name": "web"}}
    server.node_proxy = None
    with pytest.raises(errors.ApiError) as unavailable:
        transport.inspect("default", "web")
    assert unavailable.value.code == 503


def test_a_second_server_on_a_live_socket_is_refused(server):
    with pytest.raises(OSError, match="another API server is listening"):
        ApiHttpServer(server.registry, server.socket_path).start()


def test_tcp_port_serves_the_same_api_over_tls_with_a_token(server, tmp_path):
    transport = kubeconfig.transport_for(admin_kubeconfig(make_credentials(tmp_path), server.port))
    assert transport.get("namespaces", None, "default")["status"]["phase"] == "Active"


def test_keep_alive_connections_are_reused_per_thread(transport):
    transport.version()
    first = transport._local.connection.sock
    transport.version()
    assert transport._local.connection.sock is first
    assert isinstance(first, socket.socket)


def test_a_watch_with_resource_version_zero_and_a_label_selector(transport):
    transport.create("pods", "default", pod_body("a", {"app": "web"}))
    transport.create("pods", "default", pod_body("b", {"app": "db"}))
    watch = transport.watch("pods", "default", resource_version="0", label_selector="app=web")
    assert watch.next(timeout=10)["object"]["metadata"]["name"] == "a"
    transport.patch("pods", "default", "b", {"metadata": {"labels": {"app": "web"}}})
    event = watch.next(timeout=10)
    assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "b")
    watch.close()


def test_clients_that_hang_up_on_idle_watches_release_the_store_watchers_and_server_threads(server, transport):
    store = server.registry.store
    baseline_watchers, baseline_threads = len(store._watchers), threading.active_count()
    for _ in range(20):
        watch = transport.watch("pods", "default", label_selector="app=x")
        watch.close()
    deadline = time.monotonic() + 5
    while (len(store._watchers), threading.active_count()) != (baseline_watchers, baseline_threads):
        assert time.monotonic() < deadline, (
            f"{len(store._watchers) - baseline_watchers} store watchers and "
            f"{threading.active_count() - baseline_threads} threads still held by hung-up watches")
        time.sleep(0.02)


def test_delete_options_preconditions_travel_over_http(server, transport):
    created = transport.create("pods", "default", pod_body())
    with pytest.raises(errors.Conflict, match="UID in precondition: someone-else"):
        transport.delete("pods", "default", "web", preconditions={"uid": "someone-else"})
    transport.delete("pods", "default", "web", preconditions={"uid": created["metadata"]["uid"]})
    with pytest.raises(errors.NotFound):
        transport.get("pods", "default", "web")


@pytest.mark.parametrize("path, body", [
    ("/api/v1/namespaces/default/pods/web?gracePeriodSeconds=1" + "0" * 40, None),
    ("/api/v1/namespaces/default/pods/web", {"gracePeriodSeconds": 2**64}),
    ("/api/v1/namespaces/default/pods/web", {"gracePeriodSeconds": "soon"}),
])
def test_a_grace_period_beyond_int64_in_the_query_or_body_is_400(server, transport, path, body):
    transport.create("pods", "default", pod_body())
    transport.bind("default", "web", "node-1")
    payload = json.dumps(body).encode() if body is not None else b""
    status, document = raw_request(server, "DELETE", path, payload, {"Content-Type": "application/json"})
    assert status == 400 and document["reason"] == "BadRequest" and "gracePeriodSeconds" in document["message"]
    assert "deletionTimestamp" not in transport.get("pods", "default", "web")["metadata"]


def test_a_pod_with_the_largest_grace_period_is_deleted_without_error(server, transport):
    body = pod_body()
    body["spec"]["terminationGracePeriodSeconds"] = 2**63 - 1
    transport.create("pods", "default", body)
    transport.bind("default", "web", "node-1")
    status, document = raw_request(server, "DELETE", "/api/v1/namespaces/default/pods/web")
    assert status == 200 and document["metadata"]["deletionTimestamp"] == "9999-12-31T23:59:59Z"


def test_path_segments_are_percent_decoded_so_errors_name_what_the_client_asked_for(server, transport):
    status, document = raw_request(server, "GET", "/api/v1/namespaces/default/pods/x%3Fy")
    assert status == 404 and document["message"] == 'pods "x?y" not found'
    with pytest.raises(errors.NotFound, match='pods "../web" not found'):
        transport.get("pods", "default", "../web")
