"""delete, create namespace, scale and set image: kubectl's messages and their effect on the API."""

import threading

import pytest

from minikube_py.api.errors import NotFound
from minikube_py.cli.mutate import FORCE_WARNING

from tests.unit.cli_harness import RUNNING


def test_delete_prints_kubectls_quoted_form_with_the_group(live):
    live.pod("web-1")
    live.deployment()
    assert live.run("delete", "pod", "web-1").out == 'pod "web-1" deleted\n'
    assert live.run("delete", "deployment/web").out == 'deployment.apps "web" deleted\n'
    with pytest.raises(NotFound):
        live.registry.get("deployments", "default", "web")


def test_delete_by_label_selector_deletes_only_matching_objects(live):
    live.pod("web-1", labels={"app": "web"})
    live.pod("web-2", labels={"app": "web"})
    live.pod("db-1", labels={"app": "db"})
    result = live.run("delete", "pods", "-l", "app=web")
    assert result.out == 'pod "web-1" deleted\npod "web-2" deleted\n'
    assert [pod["metadata"]["name"] for pod in live.registry.list("pods", "default")["items"]] == ["db-1"]


def test_delete_of_a_missing_object_prints_not_found_and_exits_1(live):
    result = live.run("delete", "pod", "nope")
    assert result.code == 1
    assert result.err == 'Error from server (NotFound): pods "nope" not found\n'


def test_force_delete_with_grace_zero_warns_and_removes_a_running_pod_at_once(live):
    live.pod("web-1", node="node1", status=RUNNING)
    result = live.run("delete", "pod", "web-1", "--force", "--grace-period=0")
    assert result.out == 'pod "web-1" force deleted\n'
    assert result.err == FORCE_WARNING + "\n"
    with pytest.raises(NotFound):
        live.registry.get("pods", "default", "web-1")


def test_delete_waits_until_a_gracefully_stopping_pod_is_gone(live):
    live.pod("web-1", node="node1", status=RUNNING)
    # Play the node agent: once the pod is marked for deletion, finish the deletion with grace 0.
    watch = live.registry.watch("pods", "default")

    def agent() -> None:
        while (event := watch.next(10)) is not None:
            if event["object"]["metadata"].get("deletionTimestamp"):
                live.registry.delete("pods", "default", "web-1", grace_period_seconds=0)
                return

    stopper = threading.Thread(target=agent)
    stopper.start()
    result = live.run("delete", "pod", "web-1")
    stopper.join(10)
    watch.close()
    assert (result.code, result.out) == (0, 'pod "web-1" deleted\n')
    with pytest.raises(NotFound):
        live.registry.get("pods", "default", "web-1")


def test_delete_wait_times_out_when_the_pod_never_goes(live):
    live.pod("web-1", node="node1", status=RUNNING)
    result = live.run("delete", "pod", "web-1", "--timeout=100ms")
    assert result.code == 1
    assert "timed out waiting for the condition" in result.err
    assert live.registry.get("pods", "default", "web-1")["metadata"]["deletionTimestamp"]


def test_delete_without_wait_returns_while_the_pod_is_still_terminating(live):
    live.pod("web-1", node="node1", status=RUNNING)
    result = live.run("delete", "pod", "web-1", "--wait=false")
    assert (result.code, result.out) == (0, 'pod "web-1" deleted\n')
    assert live.run("get", "pod", "web-1").out.split("\n")[1].split()[2] == "Terminating"


def test_delete_from_a_manifest_file(live):
    live.deployment()
    path = live.write("web.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n")
    assert live.run("delete", "-f", path).out == 'deployment.apps "web" deleted\n'


def test_delete_orphan_cascade_is_sent_to_the_server(live):
    deployment = live.deployment()
    live.replica_set("web-abc", owner=deployment)
    assert live.run("delete", "deploy", "web", "--cascade=orphan", "--wait=false").code == 0
    finalizers = live.registry.get("deployments", "default", "web")["metadata"].get("finalizers")
    assert finalizers == ["orphan"]


def test_create_namespace_prints_created(live):
    assert live.run("create", "namespace", "team").out == "namespace/team created\n"
    assert live.registry.get("namespaces", None, "team")["metadata"]["name"] == "team"
    assert live.run("create", "ns", "team").code == 1


def test_scale_uses_the_scale_subresource_and_prints_scaled(live):
    deployment = live.deployment(replicas=3)
    live.replica_set("web-abc", owner=deployment)
    assert live.run("scale", "deployment/web", "--replicas=5").out == "deployment.apps/web scaled\n"
    assert live.registry.get("deployments", "default", "web")["spec"]["replicas"] == 5
    assert live.run("scale", "rs", "web-abc", "--replicas", "1").out == "replicaset.apps/web-abc scaled\n"
    assert live.registry.get("replicasets", "default", "web-abc")["spec"]["replicas"] == 1


def test_scale_with_a_wrong_current_replicas_precondition_changes_nothing(live):
    live.deployment(replicas=3)
    result = live.run("scale", "deploy/web", "--replicas=5", "--current-replicas=2")
    assert (result.code, result.err) == (1, "error: Expected replicas to be 2, was 3\n")
    assert live.registry.get("deployments", "default", "web")["spec"]["replicas"] == 3


def test_set_image_updates_the_container_and_prints_image_updated(live):
    live.deployment()
    result = live.run("set", "image", "deployment/web", "web=busybox:1.36")
    assert result.out == "deployment.apps/web image updated\n"
    containers = live.registry.get("deployments", "default", "web")["spec"]["template"]["spec"]["containers"]
    assert containers[0]["image"] == "busybox:1.36"
    assert live.run("set", "image", "deployment/web", "web=busybox:1.36").out == ""


def test_set_image_of_an_unknown_container_is_an_error(live):
    live.deployment()
    result = live.run("set", "image", "deploy/web", "nginx=nginx")
    assert (result.code, result.err) == (1, 'error: unable to find container named "nginx"\n')


@pytest.mark.parametrize("flag, suffix", [("--dry-run=server", " (server dry run)"), ("--dry-run", " (dry run)")])
def test_a_dry_run_delete_prints_kubectls_line_and_deletes_nothing(live, flag, suffix):
    live.pod("web-1", node="node1", status=RUNNING)
    assert live.run("delete", "pod", "web-1", flag).out == f'pod "web-1" deleted{suffix}\n'
    assert "deletionTimestamp" not in live.registry.get("pods", "default", "web-1")["metadata"]
    missing = live.run("delete", "pod", "nope", "--dry-run=server")
    assert missing.code == 1 and "NotFound" in missing.err
