"""Registry semantics: server-set metadata, generation, status separation, scale, binding."""

import pytest

from minikube_py.api import errors
from minikube_py.apiserver.registry import Registry
from minikube_py.clock import FakeClock
from minikube_py.store import Store


def pod_body(name="web", labels=None, **metadata):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {"app": "web"}, **metadata},
            "spec": {"containers": [{"name": "main", "image": "busybox"}]}}


def deployment_body(name="web", replicas=2):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "main", "image": "busybox"}]}}}}


@pytest.fixture
def registry():
    store = Store(":memory:")
    yield Registry(store, FakeClock())
    store.close()


def test_a_new_store_has_the_bootstrap_namespaces(registry):
    names = [item["metadata"]["name"] for item in registry.list("namespaces")["items"]]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    assert registry.get("namespaces", None, "default")["status"] == {"phase": "Active"}


def test_create_sets_uid_timestamp_generation_and_drops_user_status(registry):
    created = registry.create("pods", "default", {**pod_body(), "status": {"phase": "Running"}})
    metadata = created["metadata"]
    assert len(metadata["uid"]) == 36 and metadata["generation"] == 1
    assert metadata["creationTimestamp"] == "2027-01-15T08:00:00Z"
    assert created["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    assert created["spec"]["restartPolicy"] == "Always"


def test_nodes_keep_the_status_they_are_created_with(registry):
    node = registry.create("nodes", None, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
                                           "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    assert node["status"]["conditions"][0]["type"] == "Ready"
    assert "namespace" not in node["metadata"]


def test_generate_name_appends_five_characters(registry):
    created = registry.create("pods", None, pod_body(name=None, generateName="web-"))
    name = created["metadata"]["name"]
    assert name.startswith("web-") and len(name) == 9
    assert created["metadata"]["namespace"] == "default"


def test_create_without_name_or_generate_name_is_invalid(registry):
    with pytest.raises(errors.Invalid, match="name or generateName is required"):
        registry.create("pods", "default", pod_body(name=None))


def test_create_in_a_missing_namespace_is_not_found(registry):
    with pytest.raises(errors.NotFound, match='namespaces "nope" not found'):
        registry.create("pods", "nope", pod_body())


def test_create_rejects_a_body_that_disagrees_with_the_url(registry):
    with pytest.raises(errors.BadRequest, match="namespace of the provided object"):
        registry.create("pods", "default", pod_body(namespace="kube-system"))
    with pytest.raises(errors.BadRequest, match="deployments endpoint"):
        registry.create("pods", "default", deployment_body())
    with pytest.raises(errors.BadRequest, match="resourceVersion should not be set"):
        registry.create("pods", "default", pod_body(resourceVersion="5"))


def test_generation_changes_only_with_the_spec(registry):
    created = registry.create("pods", "default", pod_body())
    relabeled = registry.patch("pods", "default", "web", {"metadata": {"labels": {"tier": "fe"}}})
    assert relabeled["metadata"]["generation"] == 1
    assert relabeled["metadata"]["labels"] == {"app": "web", "tier": "fe"}
    respecced = registry.patch("pods", "default", "web", {"spec": {"activeDeadlineSeconds": 5}})
    assert respecced["metadata"]["generation"] == 2
    assert respecced["metadata"]["uid"] == created["metadata"]["uid"]


def test_deployment_generation_also_follows_annotations(registry):
    registry.create("deployments", "default", deployment_body())
    annotated = registry.patch("deployments", "default", "web",
                               {"metadata": {"annotations": {"kubernetes.io/change-cause": "v2"}}})
    assert annotated["metadata"]["generation"] == 2


def test_an_update_that_changes_nothing_keeps_the_resource_version(registry):
    created = registry.create("pods", "default", pod_body())
    same = registry.patch("pods", "default", "web", {"metadata": {"labels": {"app": "web"}}})
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_spec_writes_keep_status_and_status_writes_keep_spec(registry):
    registry.create("pods", "default", pod_body())
    running = registry.patch_status("pods", "default", "web",
                                    {"status": {"phase": "Running"}, "spec": {"activeDeadlineSeconds": 9},
                                     "metadata": {"labels": {"ignored": "yes"}}})
    assert running["status"]["phase"] == "Running"
    assert "activeDeadlineSeconds" not in running["spec"] and "ignored" not in running["metadata"]["labels"]
    replaced = registry.replace("pods", "default", "web", {**running, "status": {"phase": "Failed"}})
    assert replaced["status"]["phase"] == "Running"
    full = registry.replace_status("pods", "default", "web", {**replaced, "status": {"phase": "Succeeded"}})
    assert full["status"] == {"phase": "Succeeded"}


def test_replace_with_a_stale_resource_version_is_a_conflict(registry):
    created = registry.create("pods", "default", pod_body())
    registry.patch("pods", "default", "web", {"metadata": {"labels": {"v": "2"}}})
    with pytest.raises(errors.Conflict, match='Operation cannot be fulfilled on pods "web"'):
        registry.replace("pods", "default", "web", created)
    with pytest.raises(errors.Conflict):
        registry.patch("pods", "default", "web", {"metadata": {"resourceVersion": "1", "labels": {"v": "3"}}})


def test_replacing_a_recreated_object_with_its_predecessors_uid_is_invalid(registry):
    # kubectl replace of a saved manifest after the object was deleted and created again must
    # not silently overwrite the new incarnation (apiserver ValidateObjectMetaUpdate).
    old = registry.create("pods", "default", pod_body())
    registry.delete("pods", "default", "web")
    registry.create("pods", "default", pod_body())
    stale = {**old, "metadata": {key: value for key, value in old["metadata"].items() if key != "resourceVersion"}}
    with pytest.raises(errors.Invalid, match=rf'metadata.uid: Invalid value: "{old["metadata"]["uid"]}": field is immutable'):
        registry.replace("pods", "default", "web", stale)
    with pytest.raises(errors.Invalid, match="metadata.uid"):
        registry.replace_status("pods", "default", "web", stale)
    current = registry.get("pods", "default", "web")
    assert registry.replace("pods", "default", "web", current)["metadata"]["uid"] == current["metadata"]["uid"]


def test_replace_with_a_different_name_than_the_url_is_bad_request(registry):
    created = registry.create("pods", "default", pod_body())
    with pytest.raises(errors.BadRequest, match=r"does not match the name on the URL \(other\)"):
        registry.replace("pods", "default", "other", created)


def test_updates_to_missing_objects_are_not_found_with_the_group(registry):
    with pytest.raises(errors.NotFound, match='deployments.apps "ghost" not found'):
        registry.patch("deployments", "default", "ghost", {"spec": {"replicas": 1}})


def test_strategic_merge_patch_changes_one_container_and_keeps_the_others(registry):
    body = pod_body()
    body["spec"]["containers"].append({"name": "side", "image": "busybox", "command": ["sleep", "1"]})
    registry.create("pods", "default", body)
    patched = registry.patch("pods", "default", "web",
                             {"spec": {"containers": [{"name": "side", "image": "busybox:2"}]}},
                             "application/strategic-merge-patch+json")
    assert [(c["name"], c["image"]) for c in patched["spec"]["containers"]] == [
        ("main", "busybox"), ("side", "busybox:2")]
    assert patched["spec"]["containers"][1]["command"] == ["sleep", "1"]


def test_json_patch_replaces_a_path(registry):
    registry.create("deployments", "default", deployment_body())
    patched = registry.patch("deployments", "default", "web",
                             [{"op": "replace", "path": "/spec/replicas", "value": 5}],
                             "application/json-patch+json")
    assert patched["spec"]["replicas"] == 5


def test_scale_subresource_reads_and_writes_replicas(registry):
    registry.create("deployments", "default", deployment_body(replicas=2))
    scale = registry.get_scale("deployments", "default", "web")
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 2}
    assert scale["status"] == {"replicas": 0, "selector": "app=web"}
    scaled = registry.patch_scale("deployments", "default", "web", {"spec": {"replicas": 4}})
    assert scaled["spec"]["replicas"] == 4
    deployment = registry.get("deployments", "default", "web")
    assert deployment["spec"]["replicas"] == 4 and deployment["metadata"]["generation"] == 2
    with pytest.raises(errors.Invalid, match="must be greater than or equal to 0"):
        registry.replace_scale("deployments", "default", "web", {"spec": {"replicas": -1}})
    with pytest.raises(errors.NotFound):
        registry.get_scale("pods", "default", "web")


def test_bind_sets_the_node_once_and_marks_the_pod_scheduled(registry):
    registry.create("pods", "default", pod_body())
    bound = registry.bind("default", "web", "node-1")
    assert bound["spec"]["nodeName"] == "node-1"
    assert bound["status"]["conditions"][0]["type"] == "PodScheduled"
    assert registry.bind("default", "web", "node-1")["metadata"]["resourceVersion"] == \
        bound["metadata"]["resourceVersion"]
    with pytest.raises(errors.Conflict, match='already assigned to node "node-1"'):
        registry.bind("default", "web", "node-2")


def test_validation_problems_are_invalid_with_the_field_path(registry):
    body = pod_body()
    body["spec"]["containers"][0]["bogus"] = 1
    with pytest.raises(errors.Invalid) as raised:
        registry.create("pods", "default", body)
    assert "spec.containers[0].bogus" in raised.value.message


def test_list_filters_by_label_and_field_selectors(registry):
    registry.create("pods", "default", pod_body("a", {"app": "web"}))
    registry.create("pods", "default", pod_body("b", {"app": "db"}))
    registry.create("pods", "kube-system", pod_body("c", {"app": "web"}))
    registry.bind("default", "a", "node-1")
    listed = registry.list("pods", label_selector="app=web")
    assert listed["kind"] == "PodList" and listed["apiVersion"] == "v1"
    assert [item["metadata"]["name"] for item in listed["items"]] == ["a", "c"]
    assert [item["metadata"]["name"] for item in
            registry.list("pods", "default", field_selector="spec.nodeName=node-1")["items"]] == ["a"]
    assert [item["metadata"]["name"] for item in
            registry.list("pods", field_selector="metadata.namespace!=default")["items"]] == ["c"]
    with pytest.raises(errors.BadRequest, match="field label not supported"):
        registry.list("pods", field_selector="spec.bogus=1")
    with pytest.raises(errors.BadRequest):
        registry.list("pods", label_selector="app in (")


def test_events_expire_an_hour_after_their_last_update_as_with_kube_apiservers_event_ttl():
    from minikube_py.api.times import format_time

    clock = FakeClock()
    registry = Registry(Store(":memory:"), clock=clock)

    def event(name, last_written):
        return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
                "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
                "reason": "BackOff", "message": "Back-off", "type": "Warning", "count": 1,
                "firstTimestamp": format_time(last_written), "lastTimestamp": format_time(last_written)}

    registry.create("events", "default", event("old", clock.now() - 3700))
    registry.create("events", "default", event("recent", clock.now() - 600))
    assert registry.expire_events(3600) == 1
    assert [e["metadata"]["name"] for e in registry.list("events", "default")["items"]] == ["recent"]
    # A later write of an Event counts from then, though the last pass remembered the old time.
    registry.create("events", "default", event("bumped", clock.now() - 600))
    assert registry.expire_events(3600) == 0
    bumped = registry.get("events", "default", "bumped")
    registry.replace("events", "default", "bumped", {**bumped, "lastTimestamp": format_time(clock.now())})
    clock.advance(3001)
    assert registry.expire_events(3600) == 1
    assert [e["metadata"]["name"] for e in registry.list("events", "default")["items"]] == ["bumped"]
