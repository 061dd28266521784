"""Server-side dry run over HTTP: every write verb answers what it would store and stores nothing.

The store is wrapped to count writes (objects and IP/port leases): a dry-run request must leave
the count, the stored objects and the watch stream exactly as they were.
"""

from __future__ import annotations

import json

import pytest

from benchmarks.server_side_apply import CountingStore
from minikube_py.apiserver.registry import Registry
from minikube_py.apiserver.server import ApiHttpServer
from minikube_py.client.transport import UnixHTTPConnection
from minikube_py.clock import FakeClock
from minikube_py.store import Store

PODS = "/api/v1/namespaces/default/pods"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
SERVICES = "/api/v1/namespaces/default/services"
POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}},
       "spec": {"containers": [{"name": "main", "image": "busybox"}]}}
DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                                    "spec": {"containers": [{"name": "main", "image": "busybox"}]}}}}
SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "front"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], "type": "NodePort"}}
@pytest.fixture
def cluster(tmp_path):
    store = Store(":memory:")
    counting = CountingStore(store)
    registry = Registry(counting, FakeClock())
    registry.create("pods", "default", POD)
    registry.create("deployments", "default", DEPLOYMENT)
    server = ApiHttpServer(registry, str(tmp_path / "api.sock"))
    server.start()
    yield server, counting
    server.stop()
    store.close()


def call(server, method, path, body=None, content_type="application/json"):
    connection = UnixHTTPConnection(server.socket_path, timeout=10)
    data = json.dumps(body).encode() if body is not None else b""
    connection.request(method, path, data, {"Content-Type": content_type} if data else {})
    response = connection.getresponse()
    answer = json.loads(response.read() or b"null")
    connection.close()
    return response.status, answer


def unchanged(server, counting, writes_before, revision_before):
    assert counting.writes == writes_before
    assert counting._store.revision == revision_before


def test_every_write_verb_answers_the_object_and_stores_nothing(cluster):
    server, counting = cluster
    stored_pod = server.registry.get("pods", "default", "web")
    writes, revision = counting.writes, counting._store.revision
    watch = counting._store.watch("pods", "default", revision)

    status, created = call(server, "POST", f"{PODS}?dryRun=All", {**POD, "metadata": {"name": "other"}})
    assert status == 201 and created["metadata"]["name"] == "other"
    assert created["metadata"]["uid"] and created["metadata"]["creationTimestamp"]
    assert "resourceVersion" not in created["metadata"]  # nothing was committed to give it one
    assert created["spec"]["restartPolicy"] == "Always"  # defaulted as a real create is
    assert created["status"]["qosClass"] == "BestEffort"

    replaced = {**stored_pod, "metadata": {**stored_pod["metadata"], "labels": {"app": "other"}}}
    status, updated = call(server, "PUT", f"{PODS}/web?dryRun=All", replaced)
    assert status == 200 and updated["metadata"]["labels"] == {"app": "other"}
    assert updated["metadata"]["resourceVersion"] == stored_pod["metadata"]["resourceVersion"]

    for content_type, patch in (("application/merge-patch+json", {"metadata": {"labels": {"tier": "x"}}}),
                                ("application/strategic-merge-patch+json", {"metadata": {"labels": {"tier": "x"}}}),
                                ("application/json-patch+json",
                                 [{"op": "add", "path": "/metadata/labels/tier", "value": "x"}])):
        status, patched = call(server, "PATCH", f"{PODS}/web?dryRun=All", patch, content_type)
        assert status == 200 and patched["metadata"]["labels"] == {"app": "web", "tier": "x"}, content_type

    status, scale = call(server, "PUT", f"{DEPLOYMENTS}/web/scale?dryRun=All",
                         {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "web"},
                          "spec": {"replicas": 5}})
    assert status == 200 and scale["spec"]["replicas"] == 5
    status, deployment = call(server, "PATCH", f"{DEPLOYMENTS}/web/status?dryRun=All",
                              {"status": {"replicas": 3}}, "application/merge-patch+json")
    assert status == 200 and deployment["status"]["replicas"] == 3

    status, deleted = call(server, "DELETE", f"{DEPLOYMENTS}/web?dryRun=All")
    # A Deployment removed at once is answered with a Success Status naming it, dry run or not.
    assert status == 200 and deleted["kind"] == "Status" and deleted["details"]["name"] == "web"
    # kubectl sends dryRun inside DeleteOptions.
    status, deleted = call(server, "DELETE", f"{DEPLOYMENTS}/web",
                           {"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["All"]})
    assert status == 200 and deleted["details"]["name"] == "web"

    unchanged(server, counting, writes, revision)
    assert server.registry.get("pods", "default", "web") == stored_pod
    assert server.registry.get("deployments", "default", "web")["spec"]["replicas"] == 1
    assert watch.next(0.2) is None  # and no watcher heard of any of it
    watch.close()


def test_a_graceful_pod_delete_answers_the_pod_marked_for_deletion(cluster):
    server, counting = cluster
    server.registry.bind("default", "web", "node-1")
    writes, revision = counting.writes, counting._store.revision
    status, pod = call(server, "DELETE", f"{PODS}/web?dryRun=All")
    assert status == 200 and pod["metadata"]["deletionTimestamp"] and pod["metadata"]["deletionGracePeriodSeconds"] == 30
    unchanged(server, counting, writes, revision)
    assert "deletionTimestamp" not in server.registry.get("pods", "default", "web")["metadata"]


def test_a_dry_run_service_gets_a_free_address_and_port_that_stay_free(cluster):
    server, counting = cluster
    writes, revision = counting.writes, counting._store.revision
    status, service = call(server, "POST", f"{SERVICES}?dryRun=All", SERVICE)
    assert status == 201 and service["spec"]["clusterIP"].startswith("10.9")
    assert 30000 <= service["spec"]["ports"][0]["nodePort"] <= 32767
    unchanged(server, counting, writes, revision)
    status, real = call(server, "POST", SERVICES, SERVICE)
    assert status == 201 and real["spec"]["clusterIP"] == service["spec"]["clusterIP"]  # it was never taken


def test_dry_run_still_validates_and_checks_what_a_write_checks(cluster):
    server, counting = cluster
    writes = counting.writes
    status, error = call(server, "POST", f"{PODS}?dryRun=All", POD)
    assert status == 409 and error["reason"] == "AlreadyExists"
    bad = {**DEPLOYMENT, "metadata": {"name": "bad"}, "spec": {**DEPLOYMENT["spec"], "replicas": -1}}
    status, error = call(server, "POST", f"{DEPLOYMENTS}?dryRun=All", bad)
    assert status == 422 and "spec.replicas" in error["message"]
    stale = {**POD, "metadata": {"name": "web", "resourceVersion": "1"}}
    status, error = call(server, "PUT", f"{PODS}/web?dryRun=All", stale)
    assert status == 409 and error["reason"] == "Conflict"
    status, error = call(server, "DELETE", f"{PODS}/missing?dryRun=All")
    assert status == 404
    assert counting.writes == writes


@pytest.mark.parametrize("method, path, body, options", [
    ("POST", f"{PODS}?dryRun=Yes", POD, "CreateOptions"),
    ("PUT", f"{PODS}/web?dryRun=All&dryRun=Some", POD, "UpdateOptions"),
    ("PATCH", f"{PODS}/web?dryRun=true", {"metadata": {}}, "PatchOptions"),
    ("DELETE", f"{PODS}/web", {"dryRun": ["Server"]}, "DeleteOptions"),
])
def test_an_unknown_dry_run_value_is_kubernetes_422_for_the_verbs_options(cluster, method, path, body, options):
    server, counting = cluster
    writes = counting.writes
    content_type = "application/merge-patch+json" if method == "PATCH" else "application/json"
    status, error = call(server, method, path, body, content_type)
    assert status == 422 and error["reason"] == "Invalid"
    assert error["message"].startswith(f'{options}.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{{')
    assert error["message"].endswith(': supported values: "All"')
    assert error["details"]["kind"] == options and error["details"]["causes"][0]["field"] == "dryRun"
    assert counting.writes == writes


def test_a_dry_run_deletecollection_answers_the_list_and_deletes_nothing(cluster):
    server, counting = cluster
    server.registry.create("pods", "default", {**POD, "metadata": {"name": "bound", "labels": {"app": "web"}}})
    server.registry.bind("default", "bound", "node-1")  # would stop gracefully: marked, not removed
    server.registry.create("pods", "default", {**POD, "metadata": {"name": "apart", "labels": {"app": "db"}}})
    before = {p["metadata"]["name"]: p for p in server.registry.list("pods", "default")["items"]}
    writes, revision = counting.writes, counting._store.revision
    watch = counting._store.watch("pods", "default", revision)

    status, listing = call(server, "DELETE", f"{PODS}?dryRun=All&labelSelector=app%3Dweb")
    assert status == 200 and sorted(item["metadata"]["name"] for item in listing["items"]) == ["bound", "web"]
    status, listing = call(server, "DELETE", DEPLOYMENTS, {"kind": "DeleteOptions", "apiVersion": "v1",
                                                           "dryRun": ["All"]})
    assert status == 200 and [item["metadata"]["name"] for item in listing["items"]] == ["web"]

    unchanged(server, counting, writes, revision)
    after = {p["metadata"]["name"]: p for p in server.registry.list("pods", "default")["items"]}
    assert after == before
    assert server.registry.get("deployments", "default", "web")["spec"]["replicas"] == 1
    assert watch.next(0.2) is None
    watch.close()
    status, _ = call(server, "DELETE", f"{PODS}?labelSelector=app%3Dweb")  # the same request for real does delete
    assert status == 200 and counting.writes > writes
    assert "deletionTimestamp" in server.registry.get("pods", "default", "bound")["metadata"]
