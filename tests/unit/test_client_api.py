"""ApiClient: models in and out, the same over the Registry and over HTTP."""

import pytest

from minikube_py import api
from minikube_py.api import errors
from minikube_py.apiserver.server import ApiHttpServer
from minikube_py.apiserver.registry import Registry
from minikube_py.client.api import ApiClient
from minikube_py.client.transport import HttpTransport
from minikube_py.clock import FakeClock
from minikube_py.store import Store


def pod(name="web", namespace="default"):
    return api.Pod.model_validate({"metadata": {"name": name, "namespace": namespace, "labels": {"app": "web"}},
                                   "spec": {"containers": [{"name": "main", "image": "busybox"}]}})


@pytest.fixture(params=["local", "http"])
def client(request, tmp_path):
    store = Store(":memory:")
    registry = Registry(store, FakeClock())
    if request.param == "local":
        yield ApiClient.local(registry)
    else:
        server = ApiHttpServer(registry, str(tmp_path / "api.sock"))
        server.start()
        yield ApiClient.connect(str(tmp_path))
        server.stop()
    store.close()


def test_create_and_get_return_models(client):
    created = client.create(pod())
    assert isinstance(created, api.Pod)
    assert created.metadata.uid and created.status.phase == "Pending"
    fetched = client.get("pods", "web", namespace="default")
    assert fetched.metadata.resource_version == created.metadata.resource_version
    assert client.get("po", "web").metadata.name == "web"


def test_list_returns_models_and_the_resource_version(client):
    client.create(pod("a"))
    client.create(pod("b"))
    items, resource_version = client.list("pods", namespace="default", label_selector="app=web")
    assert [item.metadata.name for item in items] == ["a", "b"]
    assert resource_version == items[-1].metadata.resource_version


def test_replace_patch_and_status_writes(client):
    created = client.create(pod())
    created.metadata.labels["tier"] = "fe"
    replaced = client.replace(created)
    assert replaced.metadata.labels == {"app": "web", "tier": "fe"}
    patched = client.patch("pods", "web", {"metadata": {"annotations": {"a": "b"}}}, namespace="default")
    assert patched.metadata.annotations == {"a": "b"}
    running = client.patch_status("pods", "web", {"status": {"phase": "Running"}}, namespace="default")
    assert running.status.phase == "Running"
    running.status.phase = "Succeeded"
    assert client.replace_status(running).status.phase == "Succeeded"


def test_bind_scale_and_delete(client):
    client.create(pod())
    assert client.bind("default", "web", "node-1") is None
    assert client.get("pods", "web", namespace="default").spec.node_name == "node-1"
    deployment = api.Deployment.model_validate({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "main", "image": "busybox"}]}}}})
    client.create(deployment)
    assert client.scale("deployments", "web", 3, namespace="default")["spec"]["replicas"] == 3
    assert client.get_scale("deployments", "web", namespace="default")["spec"]["replicas"] == 3
    marked = client.delete("pods", "web", namespace="default", grace_period_seconds=5)
    assert marked.metadata.deletion_grace_period_seconds == 5
    client.delete("pods", "web", namespace="default", grace_period_seconds=0)
    with pytest.raises(errors.NotFound):
        client.get("pods", "web", namespace="default")


def test_watch_yields_events_with_models(client):
    client.create(pod("a"))
    watch = client.watch("pods", namespace="default")
    first = watch.next(timeout=10)
    assert first.type == "ADDED" and isinstance(first.object, api.Pod) and first.object.metadata.name == "a"
    client.delete("pods", "a", namespace="default")
    deleted = watch.next(timeout=10)
    assert (deleted.type, deleted.object.metadata.name) == ("DELETED", "a")
    watch.close()


def test_raw_is_the_transport_with_dicts(client):
    client.create(pod())
    assert client.raw.get("pods", "default", "web")["kind"] == "Pod"
    assert isinstance(client.raw, (Registry, HttpTransport))
