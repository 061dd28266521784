"""DaemonSets on the CLI: rollout status|history|undo|restart, describe and get, against the live
API with the real DaemonSet controller driven by hand."""

from __future__ import annotations

import pytest

from minikube_py.client.api import ApiClient
from minikube_py.client.informer import SharedInformers
from minikube_py.clock import FakeClock
from controllers.daemonset import DaemonSetController


class Controlled:
    """The live cluster with a DaemonSet controller on it, synced on demand."""

    def __init__(self, live):
        self.live = live
        self.informers = SharedInformers(ApiClient.local(live.registry))
        self.controller = DaemonSetController(ApiClient.local(live.registry), FakeClock(), self.informers)

    def sync(self) -> None:
        for _ in range(5):
            self.informers.refresh()
            if self.controller.drain() == 0:
                return

    def close(self) -> None:
        self.informers.stop()


@pytest.fixture
def controlled(live):
    made = Controlled(live)
    yield made
    made.close()


def create_daemon_set(live, image="busybox:1", strategy=None):
    spec = {"selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}},
                         "spec": {"nodeSelector": {"disk": "ssd"},
                                  "containers": [{"name": "main", "image": image}]}}}
    if strategy is not None:
        spec["updateStrategy"] = strategy
    live.registry.create("daemonsets", "default", {"apiVersion": "apps/v1", "kind": "DaemonSet",
                                                   "metadata": {"name": "agent"}, "spec": spec})


def set_image(live, image):
    current = live.registry.get("daemonsets", "default", "agent")
    current["spec"]["template"]["spec"]["containers"][0]["image"] = image
    live.registry.replace("daemonsets", "default", "agent", current)


def image_of(live):
    return live.registry.get("daemonsets", "default", "agent")["spec"]["template"]["spec"]["containers"][0]["image"]


def test_rollout_history_and_undo_of_a_daemonset_use_its_controller_revisions(live, controlled):
    create_daemon_set(live)
    controlled.sync()
    set_image(live, "busybox:2")
    controlled.sync()
    listed = live.run("rollout", "history", "daemonset/agent")
    assert listed.code == 0
    assert listed.out.splitlines()[:4] == ["daemonset.apps/agent ", "REVISION  CHANGE-CAUSE", "1         <none>",
                                           "2         <none>"]
    assert "busybox:1" in live.run("rollout", "history", "ds/agent", "--revision=1").out
    assert live.run("rollout", "undo", "ds/agent").out == "daemonset.apps/agent rolled back\n"
    assert image_of(live) == "busybox:1"
    controlled.sync()
    # The first template's revision is reused, renumbered as the newest.
    assert [line.split()[0] for line in live.run("rollout", "history", "ds/agent").out.splitlines()[2:4]] == ["2", "3"]
    skipped = live.run("rollout", "undo", "ds/agent", "--to-revision=3")
    assert skipped.out == "daemonset.apps/agent skipped rollback (current template already matches revision 3)\n"
    missing = live.run("rollout", "undo", "ds/agent", "--to-revision=9")
    assert (missing.code, missing.err) == (1, "error: unable to find specified revision 9 in history\n")


def test_rollout_status_of_a_daemonset_prints_kubectls_lines(live, controlled):
    create_daemon_set(live)
    observed = live.run("rollout", "status", "daemonset/agent", "--watch=false")
    assert observed.out == "Waiting for daemon set spec update to be observed...\n"
    live.registry.patch_status("daemonsets", "default", "agent", {"status": {
        "observedGeneration": 1, "desiredNumberScheduled": 2, "updatedNumberScheduled": 1}})
    assert live.run("rollout", "status", "ds/agent", "--watch=false").out == \
        'Waiting for daemon set "agent" rollout to finish: 1 out of 2 new pods have been updated...\n'
    live.registry.patch_status("daemonsets", "default", "agent", {"status": {
        "updatedNumberScheduled": 2, "numberAvailable": 1}})
    assert live.run("rollout", "status", "ds/agent", "--watch=false").out == \
        'Waiting for daemon set "agent" rollout to finish: 1 of 2 updated pods are available...\n'
    live.registry.patch_status("daemonsets", "default", "agent", {"status": {"numberAvailable": 2}})
    assert live.run("rollout", "status", "ds/agent").out == 'daemon set "agent" successfully rolled out\n'


def test_rollout_status_of_an_on_delete_daemonset_is_refused_and_pause_is_for_deployments(live):
    create_daemon_set(live, strategy={"type": "OnDelete"})
    refused = live.run("rollout", "status", "ds/agent")
    assert (refused.code, refused.err) == (1, "error: rollout status is only available for RollingUpdate strategy type\n")
    paused = live.run("rollout", "pause", "ds/agent")
    assert paused.code == 1 and "rollout supports deployments only, not daemonsets" in paused.err


def test_rollout_restart_stamps_the_template(live):
    create_daemon_set(live)
    assert live.run("rollout", "restart", "daemonset/agent").out == "daemonset.apps/agent restarted\n"
    annotations = live.registry.get("daemonsets", "default", "agent")["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations
    assert live.registry.get("daemonsets", "default", "agent")["metadata"]["annotations"][
        "deprecated.daemonset.template.generation"] == "2"


def test_describe_daemonset_shows_kubectls_counts_and_template(live, controlled):
    live.node("node-1")
    node = live.registry.get("nodes", None, "node-1")
    node["metadata"]["labels"] = {"disk": "ssd"}
    live.registry.replace("nodes", None, "node-1", node)
    create_daemon_set(live)
    controlled.sync()
    text = live.run("describe", "ds", "agent").out
    lines = text.splitlines()
    # kubectl's DaemonSet page has no Namespace line.
    assert lines[:4] == ["Name:           agent", "Selector:       app=agent", "Node-Selector:  disk=ssd",
                         "Labels:         <none>"]
    for expected in ("Annotations:    deprecated.daemonset.template.generation: 1",
                     "Desired Number of Nodes Scheduled: 1", "Current Number of Nodes Scheduled: 1",
                     "Number of Nodes Scheduled with Up-to-date Pods: 1",
                     "Number of Nodes Scheduled with Available Pods: 0", "Number of Nodes Misscheduled: 0",
                     "Pods Status:  0 Running / 1 Waiting / 0 Succeeded / 0 Failed", "Pod Template:",
                     # The template's lines align with its Node-Selectors and Tolerations, as kubectl's.
                     "    Image:         busybox:1", "  Node-Selectors:  disk=ssd", "  Tolerations:     <none>",
                     "Events:"):
        assert expected in lines, (expected, text)
    assert "SuccessfulCreate" in text and "Created pod: agent-" in text


def test_get_ds_and_get_all_list_daemonsets(live, controlled):
    create_daemon_set(live)
    controlled.sync()
    table = live.run("get", "ds").out.splitlines()
    assert table[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE", "SELECTOR",
                                "AGE"]
    assert table[1].split()[:7] == ["agent", "0", "0", "0", "0", "0", "disk=ssd"]
    assert "daemonset.apps/agent" in live.run("get", "all").out
