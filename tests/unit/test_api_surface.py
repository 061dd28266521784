"""The API surface clients probe besides objects: health endpoints, `/metrics`, self-reviews,
deletecollection, list pages, delete answers per kind, Status details and JSON patch `test`."""

from __future__ import annotations

import json
import os
import time

import pytest

from minikube_py.api import errors, times
from minikube_py.apiserver import certificates
from minikube_py.apiserver.pod_logs import LogNarrowing
from minikube_py.apiserver.registry import Registry
from minikube_py.apiserver.server import ApiHttpServer
from minikube_py.clock import FakeClock
from minikube_py.store import Store
from tests.unit.tls_harness import NODE, https_connection, make_credentials, tls_config


def configmap(name: str, labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}},
            "data": {"k": name}}


@pytest.fixture
def paths(tmp_path):
    return make_credentials(tmp_path)


@pytest.fixture
def server(tmp_path, paths):
    store = Store(":memory:")
    server = ApiHttpServer(Registry(store, FakeClock()), str(tmp_path / "api.sock"), port=0, tls=tls_config(paths))
    server.start()
    yield server
    server.stop()
    store.close()


def call(server, paths, path: str, user: str | None = certificates.ADMIN_USER, method: str = "GET",
         body=None, content_type: str = "application/json", token: str | None = None) -> tuple[int, str, str]:
    """(status, Content-Type, body text) of one request over TLS; `user` None sends no credential."""
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    elif user is not None:
        headers["Authorization"] = f"Bearer {certificates.token_of(paths, user)}"
    payload = json.dumps(body).encode() if body is not None else None
    if payload is not None:
        headers["Content-Type"] = content_type
    connection = https_connection(paths, server.port)
    try:
        connection.request(method, path, payload, headers)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read().decode()
    finally:
        connection.close()


def call_json(server, paths, path: str, **kwargs) -> tuple[int, dict]:
    status, _, text = call(server, paths, path, **kwargs)
    return status, json.loads(text)


# -- health ----------------------------------------------------------------------------------


def test_health_endpoints_answer_ok_and_list_their_checks_when_verbose(server, paths):
    for endpoint in ("healthz", "livez", "readyz"):
        status, content_type, text = call(server, paths, f"/{endpoint}")
        assert (status, text) == (200, "ok") and content_type.startswith("text/plain")
    status, _, text = call(server, paths, "/readyz?verbose")
    assert status == 200
    assert text.splitlines() == ["[+]ping ok", "[+]log ok", "[+]etcd ok", "[+]etcd-readiness ok",
                                 "[+]informer-sync ok", "[+]shutdown ok", "readyz check passed"]
    assert call(server, paths, "/livez/etcd")[::2] == (200, "ok")
    status, _, text = call(server, paths, "/livez?verbose&exclude=etcd&exclude=nope")
    assert "[+]etcd excluded: ok" in text
    assert 'warn: some health checks cannot be excluded: no matches for "nope"' in text


def test_health_endpoints_need_no_credential_but_refuse_a_wrong_one(server, paths):
    assert call(server, paths, "/livez", user=None)[::2] == (200, "ok")
    assert call(server, paths, "/livez", token="wrong")[0] == 401
    status, body = call_json(server, paths, "/api/v1/pods", user=None)
    assert status == 401 and body["reason"] == "Unauthorized"


def test_an_unknown_check_is_404_and_a_write_405(server, paths):
    status, body = call_json(server, paths, "/livez/nothing")
    assert status == 404 and body["reason"] == "NotFound" and body["details"] == {}
    status, body = call_json(server, paths, "/healthz", method="POST", body={})
    assert status == 405 and body["kind"] == "Status"


def test_readyz_fails_once_the_server_is_stopping_with_the_reason_withheld(server, paths):
    server._stopping = True
    status, _, text = call(server, paths, "/readyz")
    assert status == 500
    assert "[-]shutdown failed: reason withheld" in text and text.endswith("readyz check failed\n")
    assert call(server, paths, "/livez")[0] == 200
    status, _, text = call(server, paths, "/readyz/shutdown")
    assert status == 500 and "the API server is shutting down" in text


# -- metrics ---------------------------------------------------------------------------------


def test_metrics_count_requests_by_verb_resource_and_code_and_report_store_objects(server, paths):
    assert call(server, paths, "/api/v1/namespaces/default/configmaps", method="POST", body=configmap("a"))[0] == 201
    assert call(server, paths, "/api/v1/namespaces/default/configmaps/missing")[0] == 404
    call(server, paths, "/api/v1/namespaces/default/configmaps")
    status, content_type, text = call(server, paths, "/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    lines = text.splitlines()

    def sample(name: str, **labels: str) -> float:
        for line in lines:
            if line.startswith(name + "{") and all(f'{key}="{value}"' in line for key, value in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"no {name} {labels} in /metrics")

    assert sample("apiserver_request_total", verb="POST", resource="configmaps", code="201", scope="namespace") == 1
    assert sample("apiserver_request_total", verb="GET", resource="configmaps", code="404", scope="resource") == 1
    assert sample("apiserver_request_total", verb="LIST", resource="configmaps", code="200") == 1
    assert sample("apiserver_request_duration_seconds_count", verb="LIST", resource="configmaps") == 1
    assert sample("apiserver_storage_objects", resource="configmaps") == 1
    assert sample("apiserver_storage_objects", resource="namespaces") == 4
    assert "# TYPE apiserver_request_duration_seconds histogram" in text


def test_metrics_are_the_admins_only(server, paths):
    status, body = call_json(server, paths, "/metrics", user=certificates.node_user(NODE))
    assert status == 403 and body["message"] == f'forbidden: User "system:node:{NODE}" cannot get path "/metrics"'
    assert call(server, paths, "/metrics", user=None)[0] == 401


# -- self reviews ----------------------------------------------------------------------------


def access_review(resource_attributes: dict) -> dict:
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": resource_attributes}}


def test_can_i_answers_with_the_same_rules_the_server_enforces(server, paths):
    path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    status, review = call_json(server, paths, path, method="POST",
                               body=access_review({"verb": "delete", "resource": "deployments", "group": "apps"}))
    assert status == 201 and review["status"]["allowed"] is True
    node = certificates.node_user(NODE)
    status, review = call_json(server, paths, path, method="POST", user=node,
                               body=access_review({"verb": "get", "resource": "nodes", "name": NODE}))
    assert review["status"]["allowed"] is True
    status, review = call_json(server, paths, path, method="POST", user=node,
                               body=access_review({"verb": "create", "resource": "secrets"}))
    assert review["status"]["allowed"] is False
    status, review = call_json(server, paths, path, method="POST", user=node, body={
        "spec": {"nonResourceAttributes": {"path": "/readyz", "verb": "get"}}})
    assert review["status"]["allowed"] is True


def test_an_access_review_without_exactly_one_kind_of_attributes_is_422(server, paths):
    path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    status, body = call_json(server, paths, path, method="POST", body={"spec": {}})
    assert status == 422 and "exactly one of nonResourceAttributes or resourceAttributes" in body["message"]
    status, body = call_json(server, paths, path, method="POST", body=[1])
    assert status == 400
    assert call_json(server, paths, path)[0] == 405


def test_whoami_names_the_authenticated_user_and_groups(server, paths):
    status, review = call_json(server, paths, "/apis/authentication.k8s.io/v1/selfsubjectreviews", method="POST",
                               body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert status == 201
    assert review["status"]["userInfo"] == {"username": certificates.ADMIN_USER,
                                            "groups": list(certificates.ADMIN_GROUPS)}


def test_discovery_lists_the_review_groups_and_deletecollection(server, paths):
    groups = {group["name"] for group in call_json(server, paths, "/apis")[1]["groups"]}
    assert {"authorization.k8s.io", "authentication.k8s.io"} <= groups
    resources = call_json(server, paths, "/apis/authorization.k8s.io/v1")[1]["resources"]
    assert [resource["name"] for resource in resources] == ["selfsubjectaccessreviews"]
    core = {resource["name"]: resource["verbs"] for resource in call_json(server, paths, "/api/v1")[1]["resources"]}
    assert "deletecollection" in core["configmaps"] and "deletecollection" not in core["namespaces"]


# -- deletecollection, delete answers, Status details ----------------------------------------


def test_deletecollection_deletes_what_the_selector_matches_and_returns_the_list(server, paths):
    registry = server.registry
    for name, labels in (("a", {"tier": "x"}), ("b", {"tier": "x"}), ("c", {"tier": "y"})):
        registry.create("configmaps", "default", configmap(name, labels))
    status, listing = call_json(server, paths, "/api/v1/namespaces/default/configmaps?labelSelector=tier%3Dx",
                                method="DELETE")
    assert status == 200 and listing["kind"] == "ConfigMapList"
    assert [item["metadata"]["name"] for item in listing["items"]] == ["a", "b"]
    assert [item["metadata"]["name"] for item in registry.list("configmaps", "default")["items"]] == ["c"]
    status, body = call_json(server, paths, "/api/v1/namespaces", method="DELETE")
    assert status == 405 and body["reason"] == "MethodNotAllowed"
    status, body = call_json(server, paths, "/api/v1/namespaces/default/configmaps?labelSelector=%3D%3D",
                             method="DELETE")
    assert status == 400


def test_deletes_answer_with_a_status_or_the_object_as_kubernetes_does_per_kind(server, paths):
    registry = server.registry
    created = registry.create("configmaps", "default", configmap("gone"))
    status, answer = call_json(server, paths, "/api/v1/namespaces/default/configmaps/gone", method="DELETE")
    assert status == 200
    assert answer == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                      "details": {"name": "gone", "kind": "configmaps", "uid": created["metadata"]["uid"]}}
    registry.create("serviceaccounts", "default", {"apiVersion": "v1", "kind": "ServiceAccount",
                                                   "metadata": {"name": "robot"}})
    status, answer = call_json(server, paths, "/api/v1/namespaces/default/serviceaccounts/robot", method="DELETE")
    assert answer["kind"] == "ServiceAccount"


def test_not_found_statuses_carry_details_with_the_group(server, paths):
    status, body = call_json(server, paths, "/apis/apps/v1/namespaces/default/deployments/none")
    assert status == 404 and body["details"] == {"name": "none", "group": "apps", "kind": "deployments"}
    status, body = call_json(server, paths, "/api/v1/namespaces/default/configmaps/none")
    assert body["details"] == {"name": "none", "kind": "configmaps"}
    status, body = call_json(server, paths, "/no/such/path")
    assert status == 404 and body["details"] == {}
    status, body = call_json(server, paths, "/api/v1/pods?limit=x")
    assert status == 400 and "details" not in body


def test_a_failed_json_patch_test_is_422_with_the_reason_in_a_cause(server, paths):
    server.registry.create("configmaps", "default", configmap("p"))
    patch = [{"op": "test", "path": "/data/k", "value": "other"}, {"op": "replace", "path": "/data/k", "value": "z"}]
    status, body = call_json(server, paths, "/api/v1/namespaces/default/configmaps/p", method="PATCH", body=patch,
                             content_type="application/json-patch+json")
    assert status == 422 and body["reason"] == "Invalid"
    assert body["message"] == "the server rejected our request due to an error in our request"
    assert body["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "/data/k",
                                          "message": "json patch operation 0: test failed: the value is not 'other'"}]
    assert server.registry.get("configmaps", "default", "p")["data"] == {"k": "p"}


def test_the_bootstrap_namespaces_include_kube_public_and_kube_node_lease(server):
    names = [item["metadata"]["name"] for item in server.registry.list("namespaces")["items"]]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]


# -- pages -----------------------------------------------------------------------------------


def names(listing: dict) -> list[str]:
    return [item["metadata"]["name"] for item in listing["items"]]


def test_pages_are_consistent_with_the_first_pages_revision(server, paths):
    registry = server.registry
    for index in range(5):
        registry.create("configmaps", "default", configmap(f"cm{index}"))
    status, first = call_json(server, paths, "/api/v1/namespaces/default/configmaps?limit=2")
    assert names(first) == ["cm0", "cm1"] and first["metadata"]["remainingItemCount"] == 3
    # Changes after the first page are not seen by the rest of the pages.
    registry.delete("configmaps", "default", "cm3")
    registry.create("configmaps", "default", configmap("cm2a"))
    registry.patch("configmaps", "default", "cm4", {"data": {"k": "changed"}})
    token = first["metadata"]["continue"]
    status, second = call_json(server, paths, f"/api/v1/namespaces/default/configmaps?limit=2&continue={token}")
    assert names(second) == ["cm2", "cm3"]
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    status, third = call_json(server, paths, "/api/v1/namespaces/default/configmaps?limit=2&continue="
                              + second["metadata"]["continue"])
    assert names(third) == ["cm4"] and third["items"][0]["data"] == {"k": "cm4"}
    assert "continue" not in third["metadata"]


def test_an_expired_continue_token_is_410_with_an_inconsistent_token_for_the_rest(server, paths):
    registry = server.registry
    for index in range(3):
        registry.create("configmaps", "default", configmap(f"cm{index}"))
    first = registry.list("configmaps", "default", limit=1)
    registry.delete("configmaps", "default", "cm2")
    registry.store.compact(keep=0)
    status, body = call_json(server, paths, "/api/v1/namespaces/default/configmaps?limit=1&continue="
                             + first["metadata"]["continue"])
    assert status == 410 and body["reason"] == "Expired"
    assert body["message"].startswith("The provided continue parameter is too old")
    rest = registry.list("configmaps", "default", continue_token=body["metadata"]["continue"])
    assert names(rest) == ["cm1"]


@pytest.mark.parametrize("query, message", [
    ("limit=-1", "limit"),
    ("limit=2&continue=bm90LWEtdG9rZW4", "invalid continue token"),
    ("limit=2&continue=!!", "invalid continue token"),
    ("continue=x&resourceVersion=5", "specifying resource version is not allowed when using continue"),
])
def test_bad_page_parameters_are_400_naming_the_parameter(server, paths, query, message):
    status, body = call_json(server, paths, f"/api/v1/namespaces/default/configmaps?{query}")
    assert status == 400 and message in body["message"]


def test_kubectl_tables_keep_the_continue_token(server, paths):
    for index in range(3):
        server.registry.create("configmaps", "default", configmap(f"cm{index}"))
    connection = https_connection(paths, server.port)
    connection.request("GET", "/api/v1/namespaces/default/configmaps?limit=2", headers={
        "Authorization": f"Bearer {certificates.token_of(paths, certificates.ADMIN_USER)}",
        "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    table = json.loads(connection.getresponse().read())
    connection.close()
    assert table["kind"] == "Table" and len(table["rows"]) == 2 and table["metadata"]["continue"]


# -- pod log narrowing -----------------------------------------------------------------------

STAMPED = [b"2026-12-03T10:00:00.5Z early\n", b"2026-12-03T10:00:10.123456789Z late one\n",
           b"2026-12-03T10:00:20Z late two\n"]


def test_since_seconds_drops_older_lines_and_their_stamps_unless_asked_for():
    now = times.parse_time("2026-12-03T10:00:30Z")
    narrowing = LogNarrowing.of({"sinceSeconds": ["25"]}, "web", timestamps=False, now=now)
    assert narrowing.needs_timestamps
    assert list(narrowing.apply(iter(STAMPED))) == [b"late one\n", b"late two\n"]
    stamped = LogNarrowing.of({"sinceTime": ["2026-12-03T10:00:15Z"]}, "web", timestamps=True)
    assert list(stamped.apply(iter(STAMPED))) == [STAMPED[2]]


def test_limit_bytes_stops_the_output_mid_line():
    narrowing = LogNarrowing.of({"limitBytes": ["12"]}, "web", timestamps=False)
    assert b"".join(narrowing.apply(iter([b"one line\n", b"two line\n", b"three\n"]))) == b"one line\ntwo"


@pytest.mark.parametrize("query, code, message", [
    ({"sinceSeconds": ["0"]}, 422, 'PodLogOptions "web" is invalid: sinceSeconds: Invalid value: 0: must be greater than 0'),
    ({"limitBytes": ["0"]}, 422, "limitBytes: Invalid value: 0: must be greater than 0"),
    ({"sinceSeconds": ["5"], "sinceTime": ["2026-12-03T10:00:15Z"]}, 422,
     "at most one of `sinceTime` or `sinceSeconds` may be specified"),
    ({"sinceTime": ["yesterday"]}, 400, "query parameter sinceTime='yesterday'"),
    ({"sinceSeconds": ["soon"]}, 400, "query parameter sinceSeconds='soon'"),
])
def test_bad_log_options_get_kubernetes_answers(query, code, message):
    with pytest.raises(errors.ApiError) as raised:
        LogNarrowing.of(query, "web", timestamps=False)
    assert raised.value.code == code and message in raised.value.message


def test_log_options_reach_the_http_api_as_statuses(server, paths):
    server.registry.create("pods", "default", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                                               "spec": {"containers": [{"name": "main", "image": "busybox"}]}})
    status, body = call_json(server, paths, "/api/v1/namespaces/default/pods/web/log?limitBytes=0")
    assert status == 422 and body["details"]["kind"] == "PodLogOptions"


def test_metrics_count_open_watches_and_the_databases_size(tmp_path, paths):
    store = Store(str(tmp_path / "state.db"))
    server = ApiHttpServer(Registry(store, FakeClock()), str(tmp_path / "api2.sock"), port=0, tls=tls_config(paths))
    server.start()
    watched = "/api/v1/namespaces/default/configmaps"
    labels = 'component="apiserver",group="",resource="configmaps",scope="namespace",subresource="",verb="WATCH",' \
             'version="v1"'

    def scraped() -> str:
        status, _, text = call(server, paths, "/metrics")
        assert status == 200
        return text

    def open_watches() -> float:
        for line in scraped().splitlines():
            if line.startswith("apiserver_longrunning_requests{") and labels in line:
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def wait_until(condition, what: str) -> None:
        deadline = time.monotonic() + 10
        while not condition():
            assert time.monotonic() < deadline, f"no {what} within 10 s"
            time.sleep(0.05)

    try:
        assert call(server, paths, watched, method="POST", body=configmap("a"))[0] == 201
        watch = https_connection(paths, server.port)
        watch.request("GET", f"{watched}?watch=true", headers={
            "Authorization": f"Bearer {certificates.token_of(paths, certificates.ADMIN_USER)}"})
        response = watch.getresponse()
        assert response.status == 200 and json.loads(response.readline())["type"] == "ADDED"
        assert open_watches() == 1
        second = https_connection(paths, server.port)
        second.request("GET", f"{watched}?watch=true", headers={
            "Authorization": f"Bearer {certificates.token_of(paths, certificates.ADMIN_USER)}"})
        assert second.getresponse().status == 200
        wait_until(lambda: open_watches() == 2, "second watch counted")
        watch.close()
        second.close()
        # The server sees a watch closed when it writes to it again: new events end both.
        written = iter(range(1000))

        def closed_watches_uncounted() -> bool:
            created = call(server, paths, watched, method="POST", body=configmap(f"b{next(written)}"))[0]
            return created == 201 and open_watches() == 0
        wait_until(closed_watches_uncounted, "closed watches uncounted")

        def on_disk() -> int:
            return sum(os.path.getsize(name) for name in (store.path, f"{store.path}-wal") if os.path.exists(name))
        before = on_disk()
        text = scraped()
        after = on_disk()
        sizes = [line for line in text.splitlines() if line.startswith("apiserver_storage_size_bytes{")]
        assert len(sizes) == 1 and sizes[0].startswith('apiserver_storage_size_bytes{storage_cluster_id="state.db"} ')
        assert 0 < min(before, after) <= float(sizes[0].rsplit(" ", 1)[1]) <= max(before, after)
        assert "# TYPE apiserver_storage_size_bytes gauge" in text
    finally:
        server.stop()
        store.close()
