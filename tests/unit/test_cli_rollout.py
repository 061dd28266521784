"""rollout status|history|undo|pause|resume|restart: kubectl's messages and what reaches the API."""

import threading



def with_revisions(live):
    """A Deployment on its third revision, with ReplicaSets for revisions 1 (busybox:1), 2 (busybox:2) and 3."""
    deployment = live.deployment(image="busybox:3")
    live.replica_set("web-one", owner=deployment, image="busybox:1", revision="1", template_hash="one", replicas=0)
    live.replica_set("web-two", owner=deployment, image="busybox:2", revision="2", template_hash="two", replicas=0)
    live.replica_set("web-three", owner=deployment, image="busybox:3", revision="3", template_hash="three")
    live.registry.patch("deployments", "default", "web",
                        {"metadata": {"annotations": {"deployment.kubernetes.io/revision": "3"}}})
    return deployment


def image_of(live) -> str:
    return live.registry.get("deployments", "default", "web")["spec"]["template"]["spec"]["containers"][0]["image"]


def test_rollout_undo_restores_the_previous_revisions_template(live):
    with_revisions(live)
    result = live.run("rollout", "undo", "deployment/web")
    assert (result.code, result.out) == (0, "deployment.apps/web rolled back\n")
    assert image_of(live) == "busybox:2"
    labels = live.registry.get("deployments", "default", "web")["spec"]["template"]["metadata"]["labels"]
    assert "pod-template-hash" not in labels


def test_rollout_undo_to_a_revision_and_its_errors(live):
    with_revisions(live)
    assert live.run("rollout", "undo", "deploy/web", "--to-revision=1").out == "deployment.apps/web rolled back\n"
    assert image_of(live) == "busybox:1"
    missing = live.run("rollout", "undo", "deploy/web", "--to-revision=9")
    assert (missing.code, missing.err) == (1, "error: unable to find specified revision 9 in history\n")


def test_rollout_undo_to_the_current_template_is_skipped(live):
    with_revisions(live)
    result = live.run("rollout", "undo", "deploy/web", "--to-revision=3")
    assert result.out == "deployment.apps/web skipped rollback (current template already matches revision 3)\n"


def test_rollout_undo_of_a_paused_deployment_is_refused(live):
    with_revisions(live)
    live.registry.patch("deployments", "default", "web", {"spec": {"paused": True}})
    result = live.run("rollout", "undo", "deploy/web")
    assert result.code == 1
    assert result.err.startswith("error: you cannot rollback a paused deployment; resume it first")
    assert image_of(live) == "busybox:3"


def test_rollout_pause_and_resume_print_kubectls_messages(live):
    live.deployment()
    assert live.run("rollout", "pause", "deployment/web").out == "deployment.apps/web paused\n"
    assert live.registry.get("deployments", "default", "web")["spec"]["paused"] is True
    assert live.run("rollout", "pause", "deployment/web").out == "deployment.apps/web already paused\n"
    assert live.run("rollout", "resume", "deployment/web").out == "deployment.apps/web resumed\n"
    assert live.run("rollout", "resume", "deployment/web").out == "deployment.apps/web already resumed\n"


def test_rollout_restart_stamps_the_template_and_refuses_a_paused_deployment(live):
    live.deployment()
    assert live.run("rollout", "restart", "deploy/web").out == "deployment.apps/web restarted\n"
    template = live.registry.get("deployments", "default", "web")["spec"]["template"]
    assert "kubectl.kubernetes.io/restartedAt" in template["metadata"]["annotations"]
    live.run("rollout", "pause", "deploy/web")
    assert live.run("rollout", "restart", "deploy/web").code == 1


def test_rollout_history_lists_revisions_with_change_causes(live):
    with_revisions(live)
    live.registry.patch("replicasets", "default", "web-two",
                        {"metadata": {"annotations": {"kubernetes.io/change-cause": "set image to 2"}}})
    result = live.run("rollout", "history", "deployment/web")
    assert result.out.splitlines() == [
        "deployment.apps/web ",
        "REVISION  CHANGE-CAUSE",
        "1         <none>",
        "2         set image to 2",
        "3         <none>",
        "",
    ]
    revision = live.run("rollout", "history", "deployment/web", "--revision=1").out
    assert revision.startswith("deployment.apps/web with revision #1\nPod Template:\n")
    assert "busybox:1" in revision


def set_status(live, **status):
    generation = live.registry.get("deployments", "default", "web")["metadata"]["generation"]
    live.registry.patch_status("deployments", "default", "web",
                               {"status": {"observedGeneration": generation, **status}})


def test_rollout_status_prints_a_line_per_change_until_the_rollout_is_done(live, capsys):
    live.deployment(replicas=2)
    set_status(live, replicas=2, updatedReplicas=1, availableReplicas=1)
    outcome = {}
    watcher = threading.Thread(target=lambda: outcome.setdefault("result", live.run("rollout", "status",
                                                                                    "deploy/web")))
    watcher.start()
    # Whether the watch starts before or after these writes, it sees the final state.
    set_status(live, replicas=3, updatedReplicas=2, availableReplicas=1)
    set_status(live, replicas=2, updatedReplicas=2, availableReplicas=2)
    watcher.join(10)
    result = outcome["result"]
    assert result.code == 0
    assert result.out.splitlines()[-1] == 'deployment "web" successfully rolled out'
    assert all(line.startswith('Waiting for deployment "web" rollout to finish: ')
               for line in result.out.splitlines()[:-1])


def test_rollout_status_exits_1_when_the_progress_deadline_is_exceeded(live):
    live.deployment(replicas=2)
    set_status(live, replicas=2, updatedReplicas=1, conditions=[
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}])
    result = live.run("rollout", "status", "deploy/web")
    assert (result.code, result.err) == (1, 'error: deployment "web" exceeded its progress deadline\n')


def test_rollout_status_times_out(live):
    live.deployment(replicas=2)
    set_status(live, replicas=2, updatedReplicas=1)
    result = live.run("rollout", "status", "deploy/web", "--timeout=3s")
    assert result.code == 1
    assert result.out == 'Waiting for deployment "web" rollout to finish: 1 out of 2 new replicas have been updated...\n'
    assert result.err == "error: timed out waiting for the condition\n"


def test_rollout_status_without_watch_prints_once(live):
    live.deployment(replicas=2)
    result = live.run("rollout", "status", "deploy/web", "--watch=false")
    assert (result.code, result.out) == (0, "Waiting for deployment spec update to be observed...\n")


def stateful_set_with_revisions(live):
    """A StatefulSet running busybox:2, with revisions 1 (busybox:1) and 2 (busybox:2)."""
    from minikube_py import api
    from minikube_py.client import history
    from minikube_py.client.api import ApiClient

    client = ApiClient.local(live.registry)
    body = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"}, "spec": {
        "replicas": 3, "serviceName": "web", "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "main", "image": "busybox:1"}]}}}}
    made = api.StatefulSet.model_validate(live.registry.create("statefulsets", "default", body))
    for number, image in ((1, "busybox:1"), (2, "busybox:2")):
        made.spec.template.spec.containers[0].image = image
        revision = history.new_controller_revision(made, {"app": "web"}, history.template_patch(made.spec.template),
                                                   number, None)
        history.create_controller_revision(client, made, revision, 0)
    current = live.registry.get("statefulsets", "default", "web")
    current["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2"
    live.registry.replace("statefulsets", "default", "web", current)


def statefulset_image(live) -> str:
    return live.registry.get("statefulsets", "default", "web")["spec"]["template"]["spec"]["containers"][0]["image"]


def test_rollout_history_and_undo_of_a_statefulset_use_its_controller_revisions(live):
    stateful_set_with_revisions(live)
    listed = live.run("rollout", "history", "statefulset/web")
    assert listed.code == 0
    assert listed.out.splitlines()[:4] == ["statefulset.apps/web ", "REVISION  CHANGE-CAUSE", "1         <none>",
                                           "2         <none>"]
    assert "busybox:1" in live.run("rollout", "history", "sts/web", "--revision=1").out
    assert live.run("rollout", "undo", "sts/web").out == "statefulset.apps/web rolled back\n"
    assert statefulset_image(live) == "busybox:1"
    skipped = live.run("rollout", "undo", "sts/web", "--to-revision=1")
    assert skipped.out == "statefulset.apps/web skipped rollback (current template already matches revision 1)\n"
    missing = live.run("rollout", "undo", "sts/web", "--to-revision=9")
    assert (missing.code, missing.err) == (1, "error: unable to find specified revision 9 in history\n")


def test_rollout_status_of_a_statefulset_prints_kubectls_line_and_pause_is_refused(live):
    stateful_set_with_revisions(live)
    live.registry.patch_status("statefulsets", "default", "web",
                               {"status": {"observedGeneration": 2, "replicas": 3, "readyReplicas": 1}})
    result = live.run("rollout", "status", "statefulset/web", "--watch=false")
    assert (result.code, result.out) == (0, "Waiting for 2 pods to be ready...\n")
    refused = live.run("rollout", "pause", "statefulset/web")
    assert refused.code == 1 and "rollout supports deployments only, not statefulsets" in refused.err


def test_get_storageclass_marks_the_default_class_as_kubectl_does(live):
    from minikube_py.agent.localpath import default_storage_class

    live.registry.create("storageclasses", None, default_storage_class().to_dict())
    lines = live.run("get", "storageclass").out.splitlines()
    assert lines[0].split() == ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION",
                                "AGE"]
    assert lines[1].split()[:3] == ["local-path", "(default)", "rancher.io/local-path"]


def test_scale_of_a_statefulset_goes_through_its_scale_subresource(live):
    stateful_set_with_revisions(live)
    result = live.run("scale", "statefulset", "web", "--replicas=1")
    assert (result.code, result.out) == (0, "statefulset.apps/web scaled\n")
    assert live.registry.get("statefulsets", "default", "web")["spec"]["replicas"] == 1
    assert live.registry.get_scale("statefulsets", "default", "web")["status"]["selector"] == "app=web"
