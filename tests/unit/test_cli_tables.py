"""kubectl's table cells and alignment: pod READY/STATUS/RESTARTS, AGE, selectors, tabwriter."""

import pytest

from minikube_py.api.times import format_time
from minikube_py.cli import tables

NOW = 1_800_000_000.0


def ago(seconds: float) -> str:
    return format_time(NOW - seconds)


def pod(container_statuses=None, init_statuses=None, containers=1, init_containers=0, phase="Running",
        deleting=False, reason=None, conditions=None, sidecars=0):
    spec = {"containers": [{"name": f"c{index}", "image": "busybox"} for index in range(containers)]}
    if init_containers or sidecars:
        spec["initContainers"] = (
            [{"name": f"i{index}", "image": "busybox"} for index in range(init_containers)]
            + [{"name": f"s{index}", "image": "busybox", "restartPolicy": "Always"} for index in range(sidecars)])
    status = {"phase": phase, "containerStatuses": container_statuses or [],
              "initContainerStatuses": init_statuses or [], "conditions": conditions or []}
    if reason:
        status["reason"] = reason
    metadata = {"name": "web", "namespace": "default", "creationTimestamp": ago(300)}
    if deleting:
        metadata["deletionTimestamp"] = ago(-30)
    return {"metadata": metadata, "spec": spec, "status": status}


def running(name="c0", ready=True, restarts=0, last_finished=None):
    status = {"name": name, "ready": ready, "restartCount": restarts, "state": {"running": {"startedAt": ago(60)}}}
    if last_finished is not None:
        status["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(last_finished)}}
    return status


def waiting(reason, name="c0", restarts=0, last_finished=None):
    status = {"name": name, "ready": False, "restartCount": restarts, "state": {"waiting": {"reason": reason}}}
    if last_finished is not None:
        status["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(last_finished)}}
    return status


def terminated(exit_code=0, reason=None, name="c0", signal=None):
    state = {"exitCode": exit_code}
    if reason:
        state["reason"] = reason
    if signal:
        state["signal"] = signal
    return {"name": name, "ready": False, "restartCount": 0, "state": {"terminated": state}}


@pytest.mark.parametrize("case, expected", [
    (pod([running()]), ("1/1", "Running", "0")),
    (pod([waiting("ContainerCreating")], phase="Pending"), ("0/1", "ContainerCreating", "0")),
    (pod([waiting("CrashLoopBackOff", restarts=4, last_finished=90)]), ("0/1", "CrashLoopBackOff", "4 (90s ago)")),
    (pod([running(restarts=2, last_finished=600)]), ("1/1", "Running", "2 (10m ago)")),
    (pod([terminated(0, "Completed")], phase="Succeeded"), ("0/1", "Completed", "0")),
    (pod([terminated(1, "Error")], phase="Failed"), ("0/1", "Error", "0")),
    (pod([terminated(137, "OOMKilled")]), ("0/1", "OOMKilled", "0")),
    (pod([terminated(3)], phase="Failed"), ("0/1", "ExitCode:3", "0")),
    (pod([terminated(0, signal=9)], phase="Failed"), ("0/1", "Signal:9", "0")),
    (pod([running()], deleting=True), ("1/1", "Terminating", "0")),
    (pod([terminated(0, "Completed")], phase="Succeeded", deleting=True), ("0/1", "Completed", "0")),
    (pod([running()], deleting=True, reason="NodeLost"), ("1/1", "Unknown", "0")),
    (pod([running("c0"), terminated(0, "Completed", name="c1")], containers=2,
         conditions=[{"type": "Ready", "status": "True"}]), ("1/2", "Running", "0")),
    (pod([running("c0"), terminated(0, "Completed", name="c1")], containers=2), ("1/2", "NotReady", "0")),
    (pod([waiting("PodInitializing")], init_containers=2, phase="Pending",
         init_statuses=[terminated(0, "Completed", name="i0"), waiting("PodInitializing", name="i1")]),
     ("0/1", "Init:1/2", "0")),
    (pod([], init_containers=1, phase="Pending", init_statuses=[waiting("CrashLoopBackOff", name="i0", restarts=3)]),
     ("0/1", "Init:CrashLoopBackOff", "3")),
    (pod([], init_containers=1, phase="Failed", init_statuses=[terminated(2, name="i0")]),
     ("0/1", "Init:ExitCode:2", "0")),
    (pod([], init_containers=1, phase="Failed", init_statuses=[terminated(1, "Error", name="i0")]),
     ("0/1", "Init:Error", "0")),
    (pod([running()], sidecars=1, init_statuses=[{**running("s0"), "started": True}]), ("2/2", "Running", "0")),
    (pod([], phase="Pending", conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]),
     ("0/1", "SchedulingGated", "0")),
])
def test_pod_ready_status_and_restarts_follow_kubectls_print_pod(case, expected):
    summary = tables.pod_summary(case, NOW)
    assert (summary.ready, summary.status, summary.restarts) == expected


@pytest.mark.parametrize("seconds, expected", [
    (0, "0s"), (59, "59s"), (119, "119s"), (120, "2m"), (125, "2m5s"), (599, "9m59s"), (600, "10m"),
    (3 * 3600 - 1, "179m"), (3 * 3600, "3h"), (3 * 3600 + 60 * 5, "3h5m"), (8 * 3600, "8h"), (47 * 3600, "47h"),
    (48 * 3600, "2d"), (3 * 86400 + 4 * 3600, "3d4h"), (8 * 86400, "8d"), (400 * 86400, "400d"),
    (3 * 365 * 86400 + 2 * 86400, "3y2d"), (9 * 365 * 86400, "9y"),
])
def test_age_column_is_apimachinery_human_duration(seconds, expected):
    assert tables.age(ago(seconds), NOW) == expected


def test_age_of_a_missing_timestamp_is_unknown_and_of_the_future_is_invalid():
    assert tables.age(None, NOW) == "<unknown>"
    assert tables.age(ago(-10), NOW) == "<invalid>"


def test_get_tables_pad_columns_by_three_with_a_minimum_of_six_and_leave_the_last_unpadded():
    table = tables.Table(["NAME", "READY", "AGE"], [["web-1", "1/1", "5m"], ["a", "0/1", "10s"]])
    assert table.render().split("\n") == [
        "NAME    READY   AGE",
        "web-1   1/1     5m",
        "a       0/1     10s",
    ]


def test_remembered_widths_keep_later_watch_rows_under_the_header():
    widths: list[int] = []
    tables.Table(["NAME", "STATUS", "AGE"], [["a", "Running", "1s"]]).render(True, widths)
    row = tables.Table(["NAME", "STATUS", "AGE"], [["b", "Pending", "0s"]]).render(False, widths)
    assert row == "b      Pending   0s"


def test_describe_alignment_restarts_where_a_line_has_no_tab():
    text = "Name:\tweb\nNamespace:\tdefault\nContainers:\n  c:\n    Image:\tbusybox"
    assert tables.align_columns(text).split("\n") == [
        "Name:       web",
        "Namespace:  default",
        "Containers:",
        "  c:",
        "    Image:  busybox",
    ]


def test_label_selector_is_printed_like_format_label_selector():
    selector = {"matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]},
                                     {"key": "canary", "operator": "DoesNotExist"}]}
    assert tables.format_label_selector(selector) == "app=web,!canary,tier in (a,b)"
    assert tables.format_label_selector({}) == "<none>"


def test_wide_pod_cells_show_ip_node_and_readiness_gates():
    case = pod([running()], conditions=[{"type": "example.com/gate", "status": "True"}])
    case["spec"]["nodeName"] = "node1"
    case["spec"]["readinessGates"] = [{"conditionType": "example.com/gate"}, {"conditionType": "other"}]
    case["status"]["podIP"] = "10.244.0.5"
    assert tables.cells("pods", case, NOW, wide=True)[4:] == ["10.244.0.5", "node1", "<none>", "1/2"]


def test_node_status_and_roles_come_from_the_ready_condition_and_role_labels():
    node = {"metadata": {"name": "n", "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v0.1.0"}}}
    assert tables.cells("nodes", node, NOW, wide=False)[:2] == ["Ready,SchedulingDisabled", "control-plane"]


def test_event_rows_name_the_object_as_lowercase_kind_slash_name_and_use_the_last_time():
    event = {"metadata": {"name": "web.1", "namespace": "default"}, "type": "Normal", "reason": "Started",
             "involvedObject": {"kind": "Pod", "name": "web"}, "message": " Started container c \n",
             "firstTimestamp": ago(600), "lastTimestamp": ago(30), "count": 3}
    assert tables.cells("events", event, NOW, wide=False) == ["30s", "Normal", "Started", "pod/web",
                                                          "Started container c"]
