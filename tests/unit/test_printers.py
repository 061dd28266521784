"""Server-side printers: each kind's cells, its column definitions, and the meta.k8s.io/v1 Table."""

import pytest

from minikube_py.api import printers
from minikube_py.api.times import format_time

NOW = 1_800_000_000.0


def ago(seconds: float) -> str:
    return format_time(NOW - seconds)


def metadata(name: str, seconds_ago: float = 300, **extra) -> dict:
    return {"name": name, "namespace": "default", "uid": "u-1", "resourceVersion": "7",
            "creationTimestamp": ago(seconds_ago), **extra}


TEMPLATE = {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "server", "image": "busybox"}, {"name": "side", "image": "pause"}]}}


def test_pod_row_has_name_ready_status_restarts_age_then_wide_cells():
    pod = {"metadata": metadata("web-1"),
           "spec": {"containers": [{"name": "main", "image": "busybox"}], "nodeName": "node1"},
           "status": {"phase": "Running", "podIP": "10.244.0.5",
                      "containerStatuses": [{"name": "main", "ready": True, "restartCount": 2,
                                             "state": {"running": {"startedAt": ago(60)}},
                                             "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(90)}}}]}}
    assert printers.pod_row(pod, NOW) == ["web-1", "1/1", "Running", "2 (90s ago)", "5m",
                                          "10.244.0.5", "node1", "<none>", "<none>"]


def test_pod_row_of_a_crash_looping_container_shows_the_waiting_reason():
    pod = {"metadata": metadata("web-1"), "spec": {"containers": [{"name": "main", "image": "busybox"}]},
           "status": {"phase": "Running", "containerStatuses": [
               {"name": "main", "ready": False, "restartCount": 1, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}
    assert printers.pod_row(pod, NOW)[1:3] == ["0/1", "CrashLoopBackOff"]


def test_replica_set_row_counts_are_integers_and_wide_cells_list_the_template():
    replica_set = {"metadata": metadata("web-abc", 7200),
                   "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE},
                   "status": {"replicas": 2, "readyReplicas": 1}}
    assert printers.replica_set_row(replica_set, NOW) == [
        "web-abc", 3, 2, 1, "120m", "server,side", "busybox,pause", "app=web"]


def test_deployment_row_shows_ready_over_desired_and_missing_counts_as_zero():
    deployment = {"metadata": metadata("web", 30),
                  "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE},
                  "status": {"readyReplicas": 2, "updatedReplicas": 3}}
    assert printers.deployment_row(deployment, NOW) == [
        "web", "2/3", 3, 0, "30s", "server,side", "busybox,pause", "app=web"]


def test_namespace_row_shows_its_phase():
    namespace = {"metadata": {"name": "team", "creationTimestamp": ago(3 * 86400)}, "status": {"phase": "Terminating"}}
    assert printers.namespace_row(namespace, NOW) == ["team", "Terminating", "3d"]


def test_node_row_shows_readiness_roles_version_and_wide_addresses():
    node = {"metadata": {"name": "node1", "creationTimestamp": ago(600),
                         "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": "False"}],
                       "addresses": [{"type": "InternalIP", "address": "10.0.0.2"}],
                       "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Debian", "kernelVersion": "6.1",
                                    "containerRuntimeVersion": "minikube-py://0.1"}}}
    assert printers.node_row(node, NOW) == ["node1", "NotReady", "control-plane", "10m", "v1.32.0",
                                            "10.0.0.2", "<none>", "Debian", "6.1", "minikube-py://0.1"]


def test_event_row_ends_with_first_seen_count_and_name():
    event = {"metadata": {"name": "web-1.17a", "creationTimestamp": ago(100)},
             "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{main}"},
             "type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container\n",
             "source": {"component": "kubelet", "host": "node1"},
             "firstTimestamp": ago(100), "lastTimestamp": ago(20), "count": 4}
    assert printers.event_row(event, NOW) == [
        "20s", "Warning", "BackOff", "pod/web-1", "spec.containers{main}", "kubelet, node1",
        "Back-off restarting failed container", "100s", "4", "web-1.17a"]


@pytest.mark.parametrize("plural", sorted(printers.PRINTERS))
def test_every_printer_has_one_cell_per_column_and_one_name_column(plural):
    printer = printers.PRINTERS[plural]
    sample = {
        "pods": {"metadata": metadata("p"), "spec": {"containers": []}, "status": {}},
        "replicasets": {"metadata": metadata("r"), "spec": {}},
        "deployments": {"metadata": metadata("d"), "spec": {}},
        "namespaces": {"metadata": metadata("n")},
        "nodes": {"metadata": metadata("n")},
        "events": {"metadata": metadata("e")},
    }.get(plural, {"metadata": metadata("x")})
    assert len(printer.row(sample, NOW)) == len(printer.columns)
    assert [column.name for column in printer.columns if column.format == "name"] == ["Name"]
    assert all(column.priority in (0, 1) and column.type in ("string", "integer", "number", "boolean") for column in printer.columns)


def test_name_is_the_first_column_except_for_events_where_it_is_last_and_wide_only():
    for plural, printer in printers.PRINTERS.items():
        if plural == "events":
            assert printer.name_index() == len(printer.columns) - 1
            assert printer.columns[-1].priority == 1
        else:
            assert printer.name_index() == 0 and printer.columns[0].priority == 0


def test_visible_columns_hide_wide_ones_unless_asked():
    printer = printers.PRINTERS["deployments"]
    assert [printer.columns[index].name for index in printer.visible(wide=False)] == [
        "Name", "Ready", "Up-to-date", "Available", "Age"]
    assert len(printer.visible(wide=True)) == 8


def test_table_carries_column_definitions_rows_and_partial_object_metadata_by_default():
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata("team"), "status": {"phase": "Active"}}
    table = printers.table("namespaces", [namespace], NOW, resource_version="42")
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "42"}
    assert table["columnDefinitions"][0] == {
        "name": "Name", "type": "string", "format": "name", "priority": 0,
        "description": printers.NAME_COLUMN.description}
    assert [column["name"] for column in table["columnDefinitions"]] == ["Name", "Status", "Age"]
    assert table["rows"] == [{"cells": ["team", "Active", "5m"], "object": {
        "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": namespace["metadata"]}}]


def test_table_include_object_none_leaves_objects_out_and_object_keeps_them_whole():
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata("team"), "status": {"phase": "Active"}}
    assert "object" not in printers.table("namespaces", [namespace], NOW, include_object="None")["rows"][0]
    assert printers.table("namespaces", [namespace], NOW, include_object="Object")["rows"][0]["object"] == namespace
    with pytest.raises(ValueError, match="includeObject"):
        printers.table("namespaces", [namespace], NOW, include_object="Everything")


def test_table_of_nothing_has_columns_and_no_rows():
    table = printers.table("pods", [], NOW)
    assert table["rows"] == [] and table["metadata"] == {}
    assert len(table["columnDefinitions"]) == 9
