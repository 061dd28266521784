"""No request makes the server answer 500 or show Python: a table of hostile request shapes.

Each row is one raw request over the unix socket (so no credential is involved) and the codes it
may get. Every answer must be a JSON `Status` whose message names the problem, the connection
must not be left half-read, and the server must keep serving afterwards. A small hypothesis run
then throws random bodies and query values at the same routes.
"""

from __future__ import annotations

import json
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minikube_py.apiserver.registry import Registry
from minikube_py.apiserver.server import ApiHttpServer
from minikube_py.clock import FakeClock
from minikube_py.runtime.fake import FakeExecSession
from minikube_py.runtime.types import ExecResult
from minikube_py.store import Store

PODS = "/api/v1/namespaces/default/pods"
POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
       "spec": {"containers": [{"name": "main", "image": "busybox"}]}}
DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                                    "spec": {"containers": [{"name": "main", "image": "busybox"}]}}}}
JSON = {"Content-Type": "application/json"}


class ExecNodeProxy:
    def logs(self, namespace, name, container=None, follow=False, tail_lines=None, timestamps=False, previous=False):
        return iter([b"line\n"])

    def exec(self, namespace, name, container, command, tty=False):
        return FakeExecSession(ExecResult(0, b"", b""), bytearray())

    def inspect(self, namespace, name):
        return {}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = Store(":memory:")
    registry = Registry(store, FakeClock())
    server = ApiHttpServer(registry, str(tmp_path_factory.mktemp("api") / "api.sock"), node_proxy=ExecNodeProxy(),
                           read_timeout=2.0)
    server.start()
    registry.create("pods", "default", POD)
    registry.create("deployments", "default", DEPLOYMENT)
    yield server
    server.stop()
    store.close()


def exchange(server, raw: bytes) -> tuple[int, dict]:
    """Send raw bytes, read one response; returns (status, JSON body)."""
    with socket.socket(socket.AF_UNIX) as connection:
        connection.settimeout(10)
        connection.connect(server.socket_path)
        connection.sendall(raw)
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = connection.recv(65536)
            if not chunk:
                break
            response += chunk
        head, _, body = response.partition(b"\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:] if ": " in line)
        if headers.get("Transfer-Encoding") == "chunked":
            return int(head.split()[1]), {}  # a stream (watch, logs) that started: its status is the answer
        length = int(headers.get("Content-Length", "0"))
        while len(body) < length:
            chunk = connection.recv(65536)
            if not chunk:
                break
            body += chunk
    status = int(head.split()[1])
    return status, json.loads(body)


def request(method: str, path: str, body: bytes | str | None = None, headers: dict | None = None) -> bytes:
    data = body.encode() if isinstance(body, str) else (body or b"")
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", "Connection: close"]
    headers = dict(headers or {})
    headers.setdefault("Content-Length", str(len(data)))
    lines += [f"{key}: {value}" for key, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


def deep(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


BIG = "9" * 23
CASES = {
    "deep nesting (within the parser's reach)": (request("POST", PODS, deep(500), JSON), {400}, "nests"),
    "deep nesting (beyond the parser's reach)": (request("POST", PODS, "[" * 100_000 + "]" * 100_000, JSON),
                                                 {400, 413}, ""),
    "negative Content-Length": (request("POST", PODS, b"", {**JSON, "Content-Length": "-5"}), {400}, "Content-Length"),
    "Content-Length not a number": (request("POST", PODS, b"", {**JSON, "Content-Length": "ten"}), {400},
                                    "Content-Length"),
    "Content-Length huge": (request("POST", PODS, b"", {**JSON, "Content-Length": "99999999999"}), {413},
                            "too large"),
    "Content-Length in other digits": (request("POST", PODS, b"", {**JSON, "Content-Length": "\u00b2"}), {400},
                                       "Content-Length"),
    "Content-Length of 40 digits": (request("POST", PODS, b"", {**JSON, "Content-Length": "9" * 40}), {400},
                                    "Content-Length"),
    "chunked body": (request("POST", PODS, b"", {**JSON, "Transfer-Encoding": "chunked"}), {400}, "chunked"),
    "NaN in a body": (request("POST", PODS, '{"metadata": {"name": NaN}}', JSON), {400}, "JSON"),
    "a body that is a list": (request("POST", PODS, "[1, 2]", JSON), {400, 422}, ""),
    "a body that is a string": (request("POST", PODS, '"pod"', JSON), {400, 422}, ""),
    "metadata that is a list": (request("POST", PODS, json.dumps({**POD, "metadata": ["web"]}), JSON),
                                {400, 422}, "metadata"),
    "metadata that is a list (update)": (request("PUT", PODS + "/web", json.dumps({**POD, "metadata": ["web"]}), JSON),
                                         {400, 422}, "metadata"),
    "labels that are a list": (request("POST", PODS, json.dumps({**POD, "metadata": {"name": "x", "labels": [1]}}),
                                       JSON), {400, 422}, "labels"),
    "scale body that is a list": (request("PUT", "/apis/apps/v1/namespaces/default/deployments/web/scale", "[]",
                                          JSON), {400, 422}, ""),
    "scale replicas that are text": (request("PUT", "/apis/apps/v1/namespaces/default/deployments/web/scale",
                                             json.dumps({"spec": {"replicas": "many"}}), JSON), {400, 422}, "replicas"),
    "scale spec that is a list": (request("PUT", "/apis/apps/v1/namespaces/default/deployments/web/scale",
                                          json.dumps({"spec": [3]}), JSON), {400, 422}, "spec"),
    "status body that is a list": (request("PUT", PODS + "/web/status", "[]", JSON), {400, 422}, ""),
    "status that is a list": (request("PUT", PODS + "/web/status", json.dumps({**POD, "status": []}), JSON),
                              {400, 422}, "status"),
    "binding target that is a list": (request("POST", PODS + "/web/binding", json.dumps({"target": ["n"]}), JSON),
                                      {400, 422}, "target"),
    "binding body that is a list": (request("POST", PODS + "/web/binding", "[]", JSON), {400, 422}, ""),
    "merge patch that is a list": (request("PATCH", PODS + "/web", "[1]", {"Content-Type": "application/merge-patch+json"}),
                                   {400, 422}, ""),
    "JSON patch that is an object": (request("PATCH", PODS + "/web", "{}", {"Content-Type": "application/json-patch+json"}),
                                     {400, 422}, ""),
    "JSON patch with a bad op": (request("PATCH", PODS + "/web", '[{"op": "frobnicate", "path": "/x"}]',
                                         {"Content-Type": "application/json-patch+json"}), {400, 422}, ""),
    "23-digit resourceVersion on a list": (request("GET", f"{PODS}?resourceVersion={BIG}"), {400, 410, 504, 200}, ""),
    "23-digit resourceVersion on a watch": (request("GET", f"{PODS}?watch=1&resourceVersion={BIG}"), {400, 410}, ""),
    "23-digit resourceVersion in an update": (
        request("PUT", PODS + "/web", json.dumps({**POD, "metadata": {"name": "web", "resourceVersion": BIG}}), JSON),
        {400, 409, 422}, ""),
    "resourceVersion that is not a number": (
        request("PUT", PODS + "/web", json.dumps({**POD, "metadata": {"name": "web", "resourceVersion": "abc"}}), JSON),
        {400, 409, 422}, ""),
    "40-digit tailLines": (request("GET", f"{PODS}/web/log?tailLines={'9' * 40}"), {400}, "tailLines"),
    "negative tailLines": (request("GET", f"{PODS}/web/log?tailLines=-1"), {422}, "tailLines"),
    "40-digit timeoutSeconds": (request("GET", f"{PODS}?watch=1&timeoutSeconds={'9' * 40}"), {400}, "timeoutSeconds"),
    "40-digit gracePeriodSeconds": (request("DELETE", f"{PODS}/web?gracePeriodSeconds={'9' * 40}"), {400},
                                    "gracePeriodSeconds"),
    "grace period in the body that is text": (request("DELETE", PODS + "/web", json.dumps({"gracePeriodSeconds": "x"}),
                                                      JSON), {400, 422}, "gracePeriodSeconds"),
    "DeleteOptions that are a list": (request("DELETE", PODS + "/web", "[]", JSON), {400, 422}, ""),
    "NUL in an exec command": (request("POST", f"{PODS}/web/exec?command=sh%00-c",
                                       headers={"Connection": "Upgrade", "Upgrade": "websocket"}), {400}, "NUL"),
    "a label selector that does not parse": (request("GET", f"{PODS}?labelSelector=%3D%3D%3D"), {400}, ""),
    "a field selector on an unknown field": (request("GET", f"{PODS}?fieldSelector=spec.nothing%3Dx"), {400}, ""),
    "a name that is too long": (request("GET", f"{PODS}/{'x' * 5000}"), {400, 404, 414}, ""),
    "text/plain from a browser": (request("POST", PODS, json.dumps(POD), {"Content-Type": "text/plain"}), {415},
                                  "text/plain"),
    "a form post": (request("POST", PODS, "a=b", {"Content-Type": "application/x-www-form-urlencoded"}), {415}, ""),
    "OPTIONS": (request("OPTIONS", PODS), {405}, "OPTIONS"),
    "HEAD": (request("HEAD", PODS), {405}, "HEAD"),
    "an invented method": (request("BREW", PODS), {405}, "BREW"),
    "an unknown dryRun in the query": (request("POST", f"{PODS}?dryRun=Yes",
                                               json.dumps({**POD, "metadata": {"name": "dry"}}), JSON), {422},
                                       'dryRun: Unsupported value: []string{"Yes"}'),
    "an unknown dryRun in DeleteOptions": (request("DELETE", PODS + "/web", json.dumps({"dryRun": ["Maybe"]}), JSON),
                                           {422}, "dryRun"),
    "a dryRun in DeleteOptions that is not a list": (request("DELETE", PODS + "/web", json.dumps({"dryRun": "All"}),
                                                             JSON), {400}, "dryRun"),
}


@pytest.mark.parametrize("raw, codes, mentions", CASES.values(), ids=CASES.keys())
def test_a_hostile_request_gets_a_status_naming_the_problem(server, raw, codes, mentions):
    if raw.startswith(b"HEAD "):
        return check_head(server, raw)
    status, body = exchange(server, raw)
    assert status in codes, body
    if status >= 400:
        assert body["kind"] == "Status" and body["code"] == status
        assert "Traceback" not in body["message"] and "internal error" not in body["message"]
        assert mentions in body["message"]
    # Whatever that was, the server still serves, and nothing was changed by a refused request.
    status, pod = exchange(server, request("GET", PODS + "/web"))
    assert status == 200 and pod["metadata"].get("deletionTimestamp") is None
    assert exchange(server, request("GET", PODS + "/dry"))[0] == 404


def check_head(server, raw: bytes) -> None:
    # A HEAD answer has headers only; its status line is what says 405.
    with socket.socket(socket.AF_UNIX) as connection:
        connection.settimeout(10)
        connection.connect(server.socket_path)
        connection.sendall(raw)
        assert connection.recv(100).startswith(b"HTTP/1.1 405")


def test_a_client_that_sends_nothing_is_hung_up_on_after_the_read_timeout(server):
    with socket.socket(socket.AF_UNIX) as connection:
        connection.settimeout(30)
        connection.connect(server.socket_path)
        connection.sendall(b"GET /version HTTP/1.1\r\n")  # and then nothing, ever
        assert connection.recv(100) == b""  # the server closed it (read_timeout is 2 s here)


def test_a_client_that_trickles_its_request_is_hung_up_on_too(server):
    """A byte every 0.2 s never trips a per-read timeout; the whole request has one deadline."""
    import time

    head = b"GET /version HTTP/1.1\r\n" + b"X-Slow: " + b"a" * 200 + b"\r\n\r\n"
    with socket.socket(socket.AF_UNIX) as connection:
        connection.settimeout(30)
        connection.connect(server.socket_path)
        connection.setblocking(False)
        hung_up = False
        for index in range(len(head)):  # 0.2 s a byte: the whole head would take 45 s
            try:
                if connection.recv(1) == b"":
                    hung_up = True
                    break
            except BlockingIOError:
                pass
            except ConnectionResetError:
                hung_up = True
                break
            try:
                connection.send(head[index:index + 1])
            except (BrokenPipeError, ConnectionResetError):
                hung_up = True
                break
            time.sleep(0.2)
    assert hung_up, "the server waited for the whole trickled request"


def test_a_malformed_request_line_gets_a_json_status(server):
    with socket.socket(socket.AF_UNIX) as connection:
        connection.settimeout(10)
        connection.connect(server.socket_path)
        connection.sendall(b"GET /version HTTP/9.9\r\n\r\n")
        response = b""
        while chunk := connection.recv(65536):  # the server closes the connection after it
            response += chunk
    assert response.startswith(b"HTTP/1.1 505") or response.startswith(b"HTTP/1.1 400")
    assert b'"kind":"Status"' in response


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                       lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children,
                                                                                          max_size=3), max_leaves=12)
TARGETS = st.sampled_from([("POST", PODS), ("PUT", PODS + "/web"), ("PUT", PODS + "/web/status"),
                           ("PATCH", PODS + "/web"), ("PUT", "/apis/apps/v1/namespaces/default/deployments/web/scale"),
                           ("POST", PODS + "/web/binding"), ("DELETE", PODS + "/nothing")])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=TARGETS, body=JSONISH, metadata=JSONISH)
def test_random_bodies_never_get_a_500(server, target, body, metadata):
    method, path = target
    if isinstance(body, dict) and not path.endswith("/nothing"):
        body = {**body, "metadata": metadata}
    headers = {"Content-Type": "application/merge-patch+json" if method == "PATCH" else "application/json"}
    status, answer = exchange(server, request(method, path, json.dumps(body), headers))
    assert status < 500, answer
    if status in (200, 201) and method != "DELETE":
        # A write that was accepted is undone, so the next example starts from the same objects.
        exchange(server, request("DELETE", PODS + "/" + str(answer.get("metadata", {}).get("name")), "{}", JSON))
        if path != PODS:
            exchange(server, request("POST", PODS, json.dumps(POD), JSON))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["resourceVersion", "timeoutSeconds", "labelSelector", "fieldSelector", "tailLines",
                            "gracePeriodSeconds", "limit", "watch", "includeObject"]),
       value=st.text(max_size=30))
def test_random_query_values_never_get_a_500(server, key, value):
    from urllib.parse import quote

    path = f"{PODS}/web/log" if key == "tailLines" else PODS
    if key == "watch":
        path += "?timeoutSeconds=0"
    separator = "&" if "?" in path else "?"
    status, answer = exchange(server, request("GET", f"{path}{separator}{key}={quote(value, safe='')}"
                                              + ("&watch=1&timeoutSeconds=1" if key == "resourceVersion" else "")))
    assert status < 500, answer


def test_one_object_that_cannot_be_shown_does_not_end_a_table_watch(server, monkeypatch):
    from minikube_py.apiserver.handler import ApiRequestHandler

    shown = ApiRequestHandler.table

    def table(self, resource, objects, query, resource_version):
        if objects and objects[0]["metadata"]["name"] == "unshowable":
            raise KeyError("a printer bug")
        return shown(self, resource, objects, query, resource_version)

    monkeypatch.setattr(ApiRequestHandler, "table", table)
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io"
    with socket.socket(socket.AF_UNIX) as connection:
        connection.settimeout(10)
        connection.connect(server.socket_path)
        connection.sendall(request("GET", f"{PODS}?watch=1&timeoutSeconds=5&resourceVersion="
                                   f"{server.registry.store.revision}", headers={"Accept": accept}))
        reader = connection.makefile("rb")
        while reader.readline() not in (b"\r\n", b""):
            pass  # the response head
        server.registry.create("pods", "default", {**POD, "metadata": {"name": "unshowable"}})
        server.registry.create("pods", "default", {**POD, "metadata": {"name": "fine"}})
        events = []
        while len(events) < 2:
            size = int(reader.readline(), 16)
            events.append(json.loads(reader.read(size)))
            reader.readline()
    assert events[0]["type"] == "ERROR" and "unshowable" in events[0]["object"]["message"]
    assert events[1]["type"] == "ADDED" and events[1]["object"]["rows"][0]["cells"][0] == "fine"
    for name in ("unshowable", "fine"):
        server.registry.delete("pods", "default", name)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(segments=st.lists(st.sampled_from(["api", "apis", "v1", "apps", "namespaces", "default", "pods", "web",
                                          "deployments", "scale", "status", "log", "exec", "binding", "nodes",
                                          "%00", "%ff", "..", "x" * 300, "openapi", "v3", "version"]),
                         max_size=8),
       method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]))
def test_random_paths_never_get_a_500(server, segments, method):
    path = "/" + "/".join(segments)
    body, headers = (b"", {}) if method == "GET" else (b"{}", {"Content-Type": "application/merge-patch+json"
                                                               if method == "PATCH" else "application/json"})
    if method in ("DELETE", "PUT", "PATCH", "POST") and "web" in segments:
        return  # keep the shared objects; writes to them are covered above
    status, answer = exchange(server, request(method, path, body, headers))
    assert status < 500, (path, answer)
