"""`apply`: created / configured / unchanged, the three-way merge, per-document errors, --watch."""

import json
import os
import threading
import time

import pytest

from minikube_py.api.errors import NotFound
from minikube_py.cli import apply
from minikube_py.cli.context import Context


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {{app: web{extra_label}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: web
        image: {image}
        command: [sleep, "3600"]
"""


def deployment(replicas=2, image="busybox", extra_label=""):
    return DEPLOYMENT.format(replicas=replicas, image=image, extra_label=extra_label)


def test_apply_creates_then_reports_unchanged_then_configured(live):
    path = live.write("web.yaml", deployment())
    first = live.run("apply", "-f", path)
    assert (first.code, first.out) == (0, "deployment.apps/web created\n")
    assert live.run("apply", "-f", path).out == "deployment.apps/web unchanged\n"
    live.write("web.yaml", deployment(replicas=5))
    assert live.run("apply", "-f", path).out == "deployment.apps/web configured\n"
    assert live.registry.get("deployments", "default", "web")["spec"]["replicas"] == 5


def test_apply_stores_the_manifest_in_the_last_applied_annotation(live):
    path = live.write("web.yaml", deployment())
    live.run("apply", "-f", path)
    annotations = live.registry.get("deployments", "default", "web")["metadata"]["annotations"]
    applied = json.loads(annotations[apply.LAST_APPLIED_ANNOTATION])
    assert applied["spec"]["replicas"] == 2 and applied["metadata"]["namespace"] == "default"


def test_apply_removes_fields_dropped_from_the_manifest_but_keeps_server_defaults(live):
    path = live.write("web.yaml", deployment(extra_label=", tier: front"))
    live.run("apply", "-f", path)
    live.write("web.yaml", deployment())
    assert live.run("apply", "-f", path).out == "deployment.apps/web configured\n"
    stored = live.registry.get("deployments", "default", "web")
    assert stored["metadata"]["labels"] == {"app": "web"}
    assert stored["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"]  # defaulted, kept
    assert stored["spec"]["strategy"]["type"] == "RollingUpdate"


def test_apply_keeps_changes_made_by_others_to_fields_the_manifest_never_set(live):
    path = live.write("web.yaml", deployment())
    live.run("apply", "-f", path)
    live.registry.patch("deployments", "default", "web", {"spec": {"minReadySeconds": 7}})
    assert live.run("apply", "-f", path).out == "deployment.apps/web unchanged\n"
    assert live.registry.get("deployments", "default", "web")["spec"]["minReadySeconds"] == 7


def test_apply_of_a_multi_document_file_with_one_bad_document_applies_the_others(live):
    bad = deployment().replace("name: web\n  labels", "name: bad\n  labels").replace("        image: busybox\n", "")
    text = deployment() + "---\n" + bad + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: team}\n"
    path = live.write("manifests/all.yaml", text)
    result = live.run("apply", "-f", path)
    assert result.code == 1
    assert result.out == "deployment.apps/web created\nnamespace/team created\n"
    assert result.err == (f'error: {path}: document 2: The Deployment "bad" is invalid: '
                          f"spec.template.spec.containers[0].image: Required value\n")
    with pytest.raises(NotFound):
        live.registry.get("deployments", "default", "bad")


def test_apply_reports_unreadable_documents_with_file_and_document(live):
    path = live.write("broken.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\nkind: [\n")
    result = live.run("apply", "-f", path)
    assert result.code == 1
    assert result.out == "namespace/a created\n"
    assert result.err.startswith(f"error: {path}: document 2: YAML syntax error")


def test_apply_of_a_directory_reads_manifest_files_and_recurses_with_r(live):
    live.write("dir/a.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
    live.write("dir/notes.txt", "not a manifest")
    live.write("dir/sub/b.json", json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "b"}}))
    directory = os.path.join(live.home, "dir")
    assert live.run("apply", "-f", directory).out == "namespace/a created\n"
    assert live.run("apply", "-R", "-f", directory).out == "namespace/a unchanged\nnamespace/b created\n"


def test_apply_refuses_a_namespace_that_contradicts_the_flag(live):
    path = live.write("ns.yaml", deployment().replace("name: web\n", "name: web\n  namespace: default\n", 1))
    live.registry.create("namespaces", None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    result = live.run("apply", "-n", "other", "-f", path)
    assert result.code == 1
    assert 'the namespace from the provided object "default" does not match the namespace "other"' in result.err


def test_three_way_merge_patch_deletes_what_the_last_manifest_had_and_the_new_one_lost():
    last = {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"paused": True}}
    new = {"metadata": {"labels": {"a": "1"}}, "spec": {}}
    live_object = {"metadata": {"labels": {"a": "1", "b": "2", "added-by-someone": "x"}},
                   "spec": {"paused": True, "replicas": 1}}
    assert apply.three_way_merge_patch(last, new, live_object) == {"metadata": {"labels": {"b": None}},
                                                                   "spec": {"paused": None}}


def test_mounts_the_server_appended_do_not_make_a_pod_manifest_a_change():
    containers = [{"name": "web", "image": "nginx", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]
    live_containers = [{"name": "web", "image": "nginx", "volumeMounts": [
        {"name": "data", "mountPath": "/data"},
        {"name": "kube-api-access-x7k2q", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": True}]}]
    assert apply.three_way_merge_patch({"containers": containers}, {"containers": containers},
                                       {"containers": live_containers}) == {}
    volumes = [{"name": "data", "emptyDir": {}}]
    live_volumes = volumes + [{"name": "kube-api-access-x7k2q", "projected": {"sources": []}}]
    assert apply.three_way_merge_patch({"volumes": volumes}, {"volumes": volumes}, {"volumes": live_volumes}) == {}


def test_three_way_merge_patch_sends_lists_only_when_the_manifest_changed_them():
    containers = [{"name": "c", "image": "busybox"}]
    defaulted = [{"name": "c", "image": "busybox", "imagePullPolicy": "Always"}]
    assert apply.three_way_merge_patch({"containers": containers}, {"containers": containers},
                                       {"containers": defaulted}) == {}
    changed = [{"name": "c", "image": "busybox:2"}]
    assert apply.three_way_merge_patch({"containers": containers}, {"containers": changed},
                                       {"containers": defaulted}) == {"containers": changed}


def test_apply_watch_reapplies_a_file_when_it_changes(live, capsys):
    path = live.write("watched/web.yaml", deployment())
    assert live.run("apply", "-f", path).code == 0
    stop = threading.Event()
    context = Context(home=live.home)
    watcher = threading.Thread(target=apply.watch_and_apply,
                               args=(context, [os.path.dirname(path)], False, stop))
    watcher.start()
    try:
        deadline = time.monotonic() + 15
        # watchfiles starts watching a moment after the thread does: rewrite until it notices.
        collected = ""
        while "configured" not in collected and time.monotonic() < deadline:
            live.write("watched/web.yaml", deployment(replicas=4))
            waited = time.monotonic() + 1
            while "configured" not in collected and time.monotonic() < waited:
                collected += capsys.readouterr().out
                time.sleep(0.02)
    finally:
        stop.set()
        watcher.join(10)
    assert "deployment.apps/web configured" in collected
    assert live.registry.get("deployments", "default", "web")["spec"]["replicas"] == 4


def managers(obj):
    return {(entry["manager"], entry["operation"]) for entry in obj["metadata"].get("managedFields", [])}


def test_server_side_apply_creates_conflicts_forces_and_is_recorded_as_kubectl(live):
    path = live.write("web.yaml", deployment())
    created = live.run("apply", "--server-side", "-f", path)
    assert (created.code, created.out) == (0, "deployment.apps/web serverside-applied\n")
    assert managers(live.registry.get("deployments", "default", "web")) == {("kubectl", "Apply")}
    live.registry.acting_as("autoscaler").patch("deployments", "default", "web", {"spec": {"replicas": 7}})
    live.write("web.yaml", deployment(replicas=3))
    refused = live.run("apply", "--server-side", "-f", path)
    assert refused.code == 1
    assert 'conflict with "autoscaler" using apps/v1: .spec.replicas' in refused.err
    assert live.registry.get("deployments", "default", "web")["spec"]["replicas"] == 7
    forced = live.run("apply", "--server-side", "--force-conflicts", "--field-manager", "me", "-f", path)
    assert forced.out == "deployment.apps/web serverside-applied\n"
    stored = live.registry.get("deployments", "default", "web")
    assert stored["spec"]["replicas"] == 3 and ("me", "Apply") in managers(stored)


def test_force_conflicts_needs_server_side(live):
    path = live.write("web.yaml", deployment())
    result = live.run("apply", "--force-conflicts", "-f", path)
    assert result.code == 1 and "--force-conflicts only works with --server-side" in result.err


@pytest.mark.parametrize("flags, suffix", [(["--dry-run=server"], " (server dry run)"), (["--dry-run"], " (dry run)"),
                                           (["--server-side", "--dry-run=server"], " (server dry run)")])
def test_apply_dry_runs_print_kubectls_line_and_store_nothing(live, flags, suffix):
    path = live.write("web.yaml", deployment())
    verb = "serverside-applied" if "--server-side" in flags else "created"
    result = live.run("apply", *flags, "-f", path)
    assert (result.code, result.out) == (0, f"deployment.apps/web {verb}{suffix}\n")
    with pytest.raises(NotFound):
        live.registry.get("deployments", "default", "web")
    live.run("apply", "-f", path)
    live.write("web.yaml", deployment(replicas=4))
    verb = "serverside-applied" if "--server-side" in flags else "configured"
    assert live.run("apply", *flags, "-f", path).out == f"deployment.apps/web {verb}{suffix}\n"
    assert live.registry.get("deployments", "default", "web")["spec"]["replicas"] == 2


def test_client_side_apply_is_recorded_as_kubectl_client_side_apply(live):
    path = live.write("web.yaml", deployment())
    live.run("apply", "-f", path)
    assert managers(live.registry.get("deployments", "default", "web")) == {("kubectl-client-side-apply", "Update")}
