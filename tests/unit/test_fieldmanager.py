"""managedFields and server-side apply: field sets, ownership on updates, apply merges, conflicts,
force and removal, as kube-apiserver's fieldmanager and structured-merge-diff behave."""

from __future__ import annotations

import copy
import json

import pytest

from minikube_py import api
from minikube_py.api import errors
from minikube_py.apiserver import fieldsets
from minikube_py.apiserver.fieldsets import ApplyTypeError
from minikube_py.apiserver.registry import Registry
from minikube_py.apiserver.server import ApiHttpServer
from minikube_py.client.transport import UnixHTTPConnection
from minikube_py.clock import FakeClock
from minikube_py.store import Store

DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
              "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                                    "spec": {"containers": [{"name": "main", "image": "busybox:1",
                                                             "args": ["httpd", "-f"],
                                                             "ports": [{"containerPort": 80}]}]}}}}
APPLY = "application/apply-patch+yaml"


def deployment(**spec_changes) -> dict:
    config = copy.deepcopy(DEPLOYMENT)
    config["spec"].update(spec_changes)
    return config


@pytest.fixture
def registry():
    store = Store(":memory:")
    yield Registry(store, FakeClock())
    store.close()


def entries(obj: dict) -> dict[tuple[str, str], dict]:
    return {(entry["manager"], entry["operation"]): entry for entry in obj["metadata"].get("managedFields", [])}


def owned(obj: dict, manager: str, operation: str) -> set[str]:
    return {fieldsets.path_text(list(path))
            for path in fieldsets.members(entries(obj)[(manager, operation)]["fieldsV1"])}


# -- field sets -------------------------------------------------------------------------------

def test_an_applied_configuration_owns_each_field_and_each_keyed_list_element():
    config = {"metadata": {"labels": {"app": "web"}, "finalizers": ["a/b"]},
              "spec": {"containers": [{"name": "main", "image": "x", "args": ["sh"], "env": [{"name": "A", "value": "1"}],
                                       "ports": [{"containerPort": 80}]}]}}
    found = {fieldsets.path_text(list(path)) for path in fieldsets.members(fieldsets.field_set(config, api.Pod))}
    assert found == {
        ".metadata.labels.app", '.metadata.finalizers[="a/b"]',
        '.spec.containers[name="main"]', '.spec.containers[name="main"].name', '.spec.containers[name="main"].image',
        '.spec.containers[name="main"].args',  # atomic: owned whole
        '.spec.containers[name="main"].env[name="A"]', '.spec.containers[name="main"].env[name="A"].name',
        '.spec.containers[name="main"].env[name="A"].value',
        # a port without a protocol is keyed by its default, as Kubernetes' schema gives it
        '.spec.containers[name="main"].ports[containerPort=80,protocol="TCP"]',
        '.spec.containers[name="main"].ports[containerPort=80,protocol="TCP"].containerPort',
    }


def test_a_service_port_is_keyed_by_port_and_protocol_and_a_container_port_by_container_port():
    service = fieldsets.field_set({"spec": {"ports": [{"port": 80, "protocol": "UDP"}]}}, api.Service)
    assert 'k:{"port":80,"protocol":"UDP"}' in service["f:spec"]["f:ports"]


@pytest.mark.parametrize("config, message", [
    ({"spec": {"containers": [{"image": "x"}]}}, 'omits key field "name"'),
    ({"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}, 'duplicate entries for key [name="a"]'),
    ({"spec": {"containers": ["main"]}}, "not a map type"),
    ({"metadata": {"finalizers": ["a", "a"]}}, 'duplicate entries for key [="a"]'),
])
def test_a_configuration_that_does_not_fit_its_lists_is_a_type_error(config, message):
    with pytest.raises(ApplyTypeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        fieldsets.field_set(config, api.Pod)


def test_set_algebra_keeps_membership_apart_from_children():
    parent_member = {"f:a": {".": {}, "f:b": {}}}
    children_only = {"f:a": {"f:b": {}}}
    assert fieldsets.difference(parent_member, children_only) == {"f:a": {}}
    assert fieldsets.difference(parent_member, {"f:a": {}}) == {"f:a": {"f:b": {}}}
    assert fieldsets.union(children_only, {"f:a": {}}) == parent_member
    assert fieldsets.intersection(parent_member, {"f:a": {"f:c": {}}}) == {}
    assert fieldsets.without_subtrees(parent_member, {"f:a": {}}) == {}


# -- updates ------------------------------------------------------------------------------------

def test_every_write_records_its_manager_and_the_fields_it_changed(registry):
    created = registry.acting_as("kubectl-create").create("deployments", "default", deployment())
    create_entry = entries(created)[("kubectl-create", "Update")]
    assert create_entry["apiVersion"] == "apps/v1" and create_entry["fieldsType"] == "FieldsV1"
    assert create_entry["time"] == registry._now()
    assert ".spec.replicas" in owned(created, "kubectl-create", "Update")
    # The server's own fields are no one's.
    assert not any(path.startswith((".metadata.name", ".metadata.uid", ".apiVersion", ".status"))
                   for path in owned(created, "kubectl-create", "Update"))

    scaled = registry.acting_as("kubectl-scale").patch("deployments", "default", "web", {"spec": {"replicas": 5}})
    assert owned(scaled, "kubectl-scale", "Update") == {".spec.replicas"}
    assert ".spec.replicas" not in owned(scaled, "kubectl-create", "Update")  # an update takes the field

    status = registry.acting_as("controller").patch_status("deployments", "default", "web",
                                                           {"status": {"replicas": 5}})
    status_entry = entries(status)[("controller", "Update")]
    assert status_entry["subresource"] == "status"
    assert owned(status, "controller", "Update") == {".status.replicas"}

    unchanged = registry.acting_as("someone").patch("deployments", "default", "web", {"spec": {"replicas": 5}})
    assert ("someone", "Update") not in entries(unchanged)  # a write that changes nothing owns nothing


def test_managed_fields_a_client_sends_replace_the_stored_ones_and_a_single_empty_entry_clears_them(registry):
    created = registry.create("deployments", "default", deployment())
    assert created["metadata"]["managedFields"]
    cleared = registry.patch("deployments", "default", "web", {"metadata": {"managedFields": [{}]}})
    assert "managedFields" not in cleared["metadata"]
    # A client that does not know managedFields (a body without them) does not drop them.
    again = registry.acting_as("editor").patch("deployments", "default", "web", {"spec": {"replicas": 3}})
    replaced = registry.replace("deployments", "default", "web",
                                {**again, "metadata": {k: v for k, v in again["metadata"].items() if k != "managedFields"}})
    assert entries(replaced) == entries(again)


# -- server-side apply ---------------------------------------------------------------------------

def test_apply_creates_then_merges_and_owns_exactly_what_it_applied(registry):
    alice = registry.acting_as("alice")
    created, was_created = alice.apply("deployments", "default", "web", deployment())
    assert was_created and created["spec"]["replicas"] == 2
    assert created["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"]  # defaulted as usual
    entry = entries(created)[("alice", "Apply")]
    assert entry["apiVersion"] == "apps/v1" and "subresource" not in entry
    assert '.spec.template.spec.containers[name="main"].terminationMessagePath' not in owned(created, "alice", "Apply")

    # Another applier adds a sidecar by name: the keyed list merges, each owns its own container.
    sidecar = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
               "spec": {"template": {"spec": {"containers": [{"name": "log", "image": "busybox"}]}}}}
    merged, was_created = registry.acting_as("bob").apply("deployments", "default", "web", sidecar)
    assert not was_created
    assert [c["name"] for c in merged["spec"]["template"]["spec"]["containers"]] == ["main", "log"]
    assert '.spec.template.spec.containers[name="log"].image' in owned(merged, "bob", "Apply")
    assert '.spec.template.spec.containers[name="main"].image' in owned(merged, "alice", "Apply")


def test_a_field_another_manager_changed_is_a_409_naming_field_and_manager(registry):
    alice = registry.acting_as("alice")
    alice.apply("deployments", "default", "web", deployment())
    registry.acting_as("kubectl-scale").patch("deployments", "default", "web", {"spec": {"replicas": 5}})
    with pytest.raises(errors.Conflict) as refused:
        alice.apply("deployments", "default", "web", deployment(replicas=3))
    assert refused.value.code == 409
    assert str(refused.value) == 'Apply failed with 1 conflict: conflict with "kubectl-scale" using apps/v1: .spec.replicas'
    assert refused.value.details == {"causes": [{"type": "FieldManagerConflict",
                                                 "message": 'conflict with "kubectl-scale" using apps/v1',
                                                 "field": ".spec.replicas"}]}
    assert registry.get("deployments", "default", "web")["spec"]["replicas"] == 5
    # Applying the same value as the other manager is no conflict: both own it.
    shared, _ = alice.apply("deployments", "default", "web", deployment(replicas=5))
    assert ".spec.replicas" in owned(shared, "alice", "Apply") and ".spec.replicas" in owned(shared, "kubectl-scale", "Update")


def test_conflicts_with_several_managers_are_listed_by_manager(registry):
    registry.acting_as("alice").apply("deployments", "default", "web", deployment())
    carol = registry.acting_as("carol")
    changed = deployment(replicas=9)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2"
    registry.acting_as("bob").apply("deployments", "default", "web",
                                    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                                     "spec": {"paused": True}})
    changed["spec"]["paused"] = False
    with pytest.raises(errors.Conflict) as refused:
        carol.apply("deployments", "default", "web", changed)
    assert str(refused.value) == (
        'Apply failed with 3 conflicts: conflicts with "alice":\n'
        "- .spec.replicas\n"
        '- .spec.template.spec.containers[name="main"].image\n'
        'conflicts with "bob":\n'
        "- .spec.paused")


def test_force_takes_the_fields_from_their_owners(registry):
    registry.acting_as("alice").apply("deployments", "default", "web", deployment())
    registry.acting_as("kubectl-scale").patch("deployments", "default", "web", {"spec": {"replicas": 5}})
    forced, _ = registry.acting_as("alice").apply("deployments", "default", "web", deployment(replicas=3), force=True)
    assert forced["spec"]["replicas"] == 3
    assert ("kubectl-scale", "Update") not in entries(forced)  # it owned nothing else, so its entry goes
    assert ".spec.replicas" in owned(forced, "alice", "Apply")


def test_a_field_no_longer_applied_is_removed_unless_someone_else_owns_it(registry):
    alice = registry.acting_as("alice")
    config = deployment()
    config["metadata"]["labels"]["tier"] = "front"
    config["spec"]["paused"] = True
    alice.apply("deployments", "default", "web", config)
    registry.acting_as("kubectl-scale").patch("deployments", "default", "web", {"spec": {"replicas": 4}})
    smaller = deployment()
    del smaller["spec"]["replicas"]
    applied, _ = alice.apply("deployments", "default", "web", smaller)
    assert applied["metadata"]["labels"] == {"app": "web"}  # tier: applied before, not now, no other owner
    assert "paused" not in applied["spec"] or applied["spec"]["paused"] is False
    assert applied["spec"]["replicas"] == 4  # kubectl-scale owns it: it stays
    assert ".spec.replicas" not in owned(applied, "alice", "Apply")


def test_an_atomic_list_is_replaced_and_owned_whole(registry):
    registry.acting_as("alice").apply("deployments", "default", "web", deployment())
    changed = deployment()
    changed["spec"]["template"]["spec"]["containers"][0]["args"] = ["sleep", "1"]
    applied, _ = registry.acting_as("alice").apply("deployments", "default", "web", changed)
    assert applied["spec"]["template"]["spec"]["containers"][0]["args"] == ["sleep", "1"]
    assert '.spec.template.spec.containers[name="main"].args' in owned(applied, "alice", "Apply")


def test_an_apply_that_changes_nothing_writes_nothing(registry):
    first, _ = registry.acting_as("alice").apply("deployments", "default", "web", deployment())
    again, _ = registry.acting_as("alice").apply("deployments", "default", "web", deployment())
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]


@pytest.mark.parametrize("change, message", [
    ({"spec": {"template": {"spec": {"containers": {"name": "main"}}}}},
     ".spec.template.spec.containers: expected list, got map"),
    ({"spec": {"selector": "app=web"}}, ".spec.selector: expected map, got string"),
    ({"metadata": {"labels": ["app"]}}, ".metadata.labels: expected map, got list"),
])
def test_an_apply_with_a_type_mismatch_is_a_400_naming_the_field(registry, change, message):
    registry.acting_as("alice").apply("deployments", "default", "web", deployment())
    config = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, **change}
    with pytest.raises(errors.BadRequest) as refused:
        registry.acting_as("alice").apply("deployments", "default", "web", config)
    assert str(refused.value) == ("failed to create typed patch object (default/web; apps/v1, Kind=Deployment): "
                                  + message)


@pytest.mark.parametrize("change, message", [
    ({"replicas": "two"}, ".spec.replicas: expected numeric (int or float), got string"),
    ({"paused": "yes"}, ".spec.paused: expected boolean, got string"),
    ({"minReadySeconds": True}, ".spec.minReadySeconds: expected numeric (int or float), got boolean"),
])
def test_a_scalar_of_the_wrong_type_is_a_400_naming_the_field_as_the_schema_types_it(registry, change, message):
    with pytest.raises(errors.BadRequest) as refused:
        registry.acting_as("alice").apply("deployments", "default", "web", deployment(**change))
    assert str(refused.value).endswith("(default/web; apps/v1, Kind=Deployment): " + message)
    with pytest.raises(errors.NotFound):
        registry.get("deployments", "default", "web")


@pytest.mark.parametrize("config, message", [
    ({"kind": "Deployment", "metadata": {"name": "web"}}, "apiVersion must be set in an apply patch"),
    ({"apiVersion": "apps/v2", "kind": "Deployment", "metadata": {"name": "web"}},
     "Incorrect version specified in apply patch. Specified patch version: apps/v2, expected: apps/v1"),
    ({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "managedFields": []}},
     "metadata.managedFields must be nil"),
    ({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "other"}}, "does not match the name"),
])
def test_an_apply_patch_that_is_not_this_object_is_a_400(registry, config, message):
    with pytest.raises(errors.BadRequest, match=message.replace(".", r"\.")):
        registry.acting_as("alice").apply("deployments", "default", "web", config)


# -- over HTTP --------------------------------------------------------------------------------

@pytest.fixture
def server(tmp_path):
    store = Store(":memory:")
    server = ApiHttpServer(Registry(store, FakeClock()), str(tmp_path / "api.sock"))
    server.start()
    yield server
    server.stop()
    store.close()


def call(server, method, path, body=None, content_type="application/json", headers=None):
    connection = UnixHTTPConnection(server.socket_path, timeout=10)
    data = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
    connection.request(method, path, data, {"Content-Type": content_type, **(headers or {})})
    response = connection.getresponse()
    answer = json.loads(response.read() or b"null")
    connection.close()
    return response.status, answer


WEB = "/apis/apps/v1/namespaces/default/deployments/web"


def test_apply_over_http_creates_with_201_then_answers_200_and_dry_run_stores_nothing(server):
    status, created = call(server, "PATCH", f"{WEB}?fieldManager=kubectl", deployment(), APPLY)
    assert status == 201 and ("kubectl", "Apply") in entries(created)
    revision = server.registry.store.revision
    status, dry = call(server, "PATCH", f"{WEB}?fieldManager=kubectl&dryRun=All&force=true",
                       deployment(replicas=7), APPLY)
    assert status == 200 and dry["spec"]["replicas"] == 7
    assert server.registry.store.revision == revision
    # YAML, as the content type says, works as well as JSON.
    yaml_body = b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 4\n"
    status, applied = call(server, "PATCH", f"{WEB}?fieldManager=scaler", yaml_body, APPLY)
    assert status == 409 and 'conflict with "kubectl"' in applied["message"]
    status, applied = call(server, "PATCH", f"{WEB}?fieldManager=scaler&force=true", yaml_body, APPLY)
    assert status == 200 and applied["spec"]["replicas"] == 4


def test_the_manager_of_a_write_is_its_field_manager_or_the_first_word_of_its_user_agent(server):
    status, created = call(server, "POST", "/apis/apps/v1/namespaces/default/deployments", deployment(),
                           headers={"User-Agent": "kubectl/v1.32.0 (linux/amd64) kubernetes/abc"})
    assert status == 201 and ("kubectl", "Update") in entries(created)
    status, patched = call(server, "PATCH", f"{WEB}?fieldManager=my-tool", {"spec": {"replicas": 3}},
                           "application/merge-patch+json", headers={"User-Agent": "kubectl/v1.32.0"})
    assert ("my-tool", "Update") in entries(patched)


@pytest.mark.parametrize("path, content_type, message", [
    (WEB, APPLY, 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'),
    (f"{WEB}?force=true", "application/merge-patch+json",
     'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch'),
    (f"{WEB}?fieldManager={'m' * 129}", "application/merge-patch+json",
     'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Too long: may not be more than 128 bytes'),
])
def test_bad_patch_options_are_kubernetes_422(server, path, content_type, message):
    status, error = call(server, "PATCH", path, deployment(), content_type)
    assert status == 422 and error["message"] == message
    assert error["details"]["kind"] == "PatchOptions" and error["details"]["group"] == "meta.k8s.io"


def test_an_apply_patch_that_is_not_yaml_is_a_400(server):
    status, error = call(server, "PATCH", f"{WEB}?fieldManager=x", b"kind: [unclosed", APPLY)
    assert status == 400 and error["message"].startswith("error decoding YAML")
    status, error = call(server, "PATCH", "/api/v1/namespaces/default/pods/web/ephemeralcontainers?fieldManager=x",
                         deployment(), APPLY)
    assert status == 415  # apply is served on the object, its status and its scale only


def test_kubectl_server_side_apply_takes_over_fields_client_side_apply_last_applied(registry):
    last_applied = json.dumps(deployment())
    config = deployment()
    config["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": last_applied}
    registry.acting_as("kubectl-client-side-apply").create("deployments", "default", config)
    # Another manager's field, and a client-side applied field changed since, still conflict.
    registry.acting_as("kubectl-edit").patch("deployments", "default", "web", {"spec": {"paused": True}})
    with pytest.raises(errors.Conflict, match=r'conflict with "kubectl-edit" using apps/v1: \.spec\.paused'):
        registry.acting_as("kubectl").apply("deployments", "default", "web", deployment(replicas=4, paused=False))
    with pytest.raises(errors.Conflict, match="kubectl-client-side-apply"):
        registry.acting_as("other-tool").apply("deployments", "default", "web", deployment(replicas=4))
    applied, _ = registry.acting_as("kubectl").apply("deployments", "default", "web", deployment(replicas=4))
    assert applied["spec"]["replicas"] == 4
    recorded = json.loads(applied["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert recorded["spec"]["replicas"] == 4  # kept in step for a later client-side apply


def test_at_most_ten_update_managers_are_kept_the_oldest_merged_into_ancient_changes(registry):
    registry.acting_as("appl").apply("deployments", "default", "web", deployment())
    clock = registry.clock
    for number in range(12):
        clock.advance(1)
        registry.acting_as(f"editor-{number:02}").patch("deployments", "default", "web",
                                                        {"metadata": {"labels": {f"by-{number}": "x"}}})
    stored = registry.get("deployments", "default", "web")
    updaters = [entry["manager"] for entry in stored["metadata"]["managedFields"] if entry["operation"] == "Update"]
    assert len(updaters) == 10 and "ancient-changes" in updaters
    assert "editor-00" not in updaters and "editor-02" not in updaters and "editor-03" in updaters
    assert owned(stored, "ancient-changes", "Update") == {".metadata.labels.by-0", ".metadata.labels.by-1",
                                                          ".metadata.labels.by-2"}
    assert ("appl", "Apply") in entries(stored)  # appliers are never merged
