"""`get` and `events` against a live in-process API server on a temporary unix socket.

The `live` fixture and `LiveCluster` here are shared by the other test_cli_* modules: a real
Registry over an in-memory store behind the real HTTP server, and `run(...)` calling the CLI's
`main` with `--home` pointing at that socket, returning (exit code, stdout, stderr).
"""

from __future__ import annotations

import json
import re
import threading
import time

import yaml

from minikube_py.cli.main import main
from tests.unit.cli_harness import RUNNING


def lines(text: str) -> list[list[str]]:
    """Table rows split on runs of 2+ spaces (cells themselves hold single spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.strip().splitlines()]


def test_get_pods_prints_kubectls_columns_and_derived_status(live):
    live.pod("web-1", status=RUNNING)
    live.pod("web-2")
    result = live.run("get", "pods")
    assert result.code == 0
    rows = lines(result.out)
    assert rows[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert rows[1][:4] == ["web-1", "1/1", "Running", "0"]
    assert rows[2][:4] == ["web-2", "0/1", "Pending", "0"]
    assert re.fullmatch(r"\d+s", rows[1][4])


def test_get_pods_wide_adds_ip_node_nominated_node_and_readiness_gates(live):
    live.pod("web-1", status=RUNNING, node="node1")
    rows = lines(live.run("get", "pods", "-o", "wide").out)
    assert rows[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE",
                       "READINESS GATES"]
    assert rows[1][5:] == ["10.244.0.7", "node1", "<none>", "<none>"]


def test_get_deployments_and_replicasets_tables_and_wide_columns(live):
    deployment = live.deployment(replicas=3)
    live.registry.patch_status("deployments", "default", "web", {"status": {
        "replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}})
    live.replica_set("web-abc", owner=deployment)
    deployments = lines(live.run("get", "deploy").out)
    assert deployments[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert deployments[1][:4] == ["web", "2/3", "3", "2"]
    wide = lines(live.run("get", "deployments", "-o", "wide").out)
    assert wide[0][5:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1][5:] == ["web", "busybox", "app=web"]
    replica_sets = lines(live.run("get", "rs", "-o", "wide").out)
    assert replica_sets[0] == ["NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert replica_sets[1][:4] == ["web-abc", "3", "0", "0"]
    assert replica_sets[1][7] == "app=web,pod-template-hash=abc"


def test_get_namespaces_and_nodes_tables(live):
    live.node()
    namespaces = lines(live.run("get", "ns").out)
    assert namespaces[0] == ["NAME", "STATUS", "AGE"]
    assert ["default", "Active"] == namespaces[1][:2]
    nodes = lines(live.run("get", "no").out)
    assert nodes[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert nodes[1][:3] == ["node1", "Ready", "<none>"] and nodes[1][4] == "v0.1.0"
    wide = lines(live.run("get", "nodes", "-o", "wide").out)
    assert wide[1][5:] == ["192.168.1.5", "<none>", "Debian", "6.1", "minikube-py://0.1.0"]


def test_get_events_and_the_events_command_sort_oldest_first(live):
    pod = {**live.pod("web-1"), "kind": "Pod"}
    live.event("web-1.b", pod, "Started", "Started container c0", seconds_ago=10)
    # An hour ago prints `60m` for a whole minute: a slow machine cannot turn it into `5m1s`.
    live.event("web-1.a", pod, "Scheduled", "Successfully assigned default/web-1 to node1", seconds_ago=3600)
    table = lines(live.run("get", "events").out)
    assert table[0] == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert [row[2] for row in table[1:]] == ["Scheduled", "Started"]  # by name: web-1.a, web-1.b
    assert table[1][:4] == ["60m", "Normal", "Scheduled", "pod/web-1"]
    events = lines(live.run("events").out)
    assert [row[2] for row in events[1:]] == ["Scheduled", "Started"]


def test_get_one_object_as_yaml_or_json_prints_the_object_itself(live):
    live.pod("web-1", labels={"app": "web"})
    document = yaml.safe_load(live.run("get", "pod", "web-1", "-o", "yaml").out)
    assert document["kind"] == "Pod" and document["metadata"]["name"] == "web-1"
    document = json.loads(live.run("get", "pod/web-1", "-o", "json").out)
    assert document["kind"] == "Pod" and document["apiVersion"] == "v1"


def test_get_several_objects_as_yaml_or_json_prints_a_list(live):
    live.pod("web-1")
    live.pod("web-2")
    document = json.loads(live.run("get", "pods", "-o", "json").out)
    assert document["kind"] == "List"
    assert [item["metadata"]["name"] for item in document["items"]] == ["web-1", "web-2"]
    assert all(item["kind"] == "Pod" for item in document["items"])
    document = yaml.safe_load(live.run("get", "pods", "web-1", "web-2", "-o", "yaml").out)
    assert document["kind"] == "List" and len(document["items"]) == 2


def test_get_output_name_prints_kind_group_slash_name(live):
    live.deployment()
    live.pod("web-1")
    assert live.run("get", "deploy", "-o", "name").out == "deployment.apps/web\n"
    assert live.run("get", "pods", "-o", "name").out == "pod/web-1\n"
    namespaces = live.run("get", "ns", "-o", "name").out.split()
    assert "namespace/default" in namespaces


def test_get_yaml_writes_the_last_applied_annotation_as_a_block_and_quotes_timestamps(live):
    live.pod("web-1")
    text = live.run("get", "pod", "web-1", "-o", "yaml").out
    assert re.search(r'creationTimestamp: "\d{4}-\d\d-\d\dT', text)


def test_get_with_label_selector_all_namespaces_and_show_labels(live):
    live.registry.create("namespaces", None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    live.pod("web-1", labels={"app": "web"})
    live.pod("db-1", labels={"app": "db"})
    live.pod("web-2", labels={"app": "web"}, namespace="other")
    rows = lines(live.run("get", "pods", "-l", "app=web", "-A", "--show-labels").out)
    assert rows[0] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "LABELS"]
    assert [(row[0], row[1], row[-1]) for row in rows[1:]] == [("default", "web-1", "app=web"),
                                                               ("other", "web-2", "app=web")]
    other = lines(live.run("get", "pods", "-n", "other").out)
    assert [row[0] for row in other[1:]] == ["web-2"]


def test_get_with_nothing_to_show_says_so_on_stderr(live):
    result = live.run("get", "pods")
    assert (result.code, result.out) == (0, "")
    assert result.err == "No resources found in default namespace.\n"
    assert live.run("get", "pods", "-A").err == "No resources found\n"


def test_get_of_a_missing_name_prints_kubectls_not_found_and_exits_1(live):
    live.pod("web-1")
    result = live.run("get", "pods", "web-1", "nope")
    assert result.code == 1
    assert result.err == 'Error from server (NotFound): pods "nope" not found\n'
    assert lines(result.out)[1][0] == "web-1"


def test_get_of_an_unknown_type_is_an_error(live):
    result = live.run("get", "widgets")
    assert result.code == 1
    assert result.err == 'error: the server doesn\'t have a resource type "widgets"\n'


def test_get_all_groups_pods_deployments_and_replicasets_with_kind_prefixes(live):
    deployment = live.deployment()
    live.replica_set("web-abc", owner=deployment)
    live.pod("web-abc-x1")
    blocks = live.run("get", "all").out.strip().split("\n\n")
    assert [lines(block)[0][0] for block in blocks] == ["NAME", "NAME", "NAME"]
    assert [lines(block)[1][0] for block in blocks] == ["pod/web-abc-x1", "deployment.apps/web",
                                                        "replicaset.apps/web-abc"]


def test_get_watch_prints_the_table_then_a_row_per_change(live, capsys):
    live.pod("web-1")
    outcome = {}
    watcher = threading.Thread(target=lambda: outcome.setdefault("code", main(["--home", live.home, "get", "pods",
                                                                                "-w"])))
    watcher.start()
    live.pod("web-2")
    collected = ""
    deadline = time.monotonic() + 10
    while "web-2" not in collected and time.monotonic() < deadline:
        collected += capsys.readouterr().out
        time.sleep(0.01)
    live.registry.patch_status("pods", "default", "web-2", {"status": RUNNING})
    while collected.count("web-2") < 2 and time.monotonic() < deadline:
        collected += capsys.readouterr().out
        time.sleep(0.01)
    live.server.stop()  # ends the watch stream, so the command returns
    watcher.join(10)
    collected += capsys.readouterr().out
    rows = lines(collected)
    assert rows[0][0] == "NAME" and [row[0] for row in rows].count("NAME") == 1
    assert [row[0] for row in rows[1:]][:1] == ["web-1"]
    assert [row[2] for row in rows if row[0] == "web-2"][-1] == "Running"
    assert outcome["code"] == 0
