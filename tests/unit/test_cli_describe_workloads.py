"""describe: kubectl's pages for the storage, autoscaling, disruption, priority and StatefulSet kinds,
and its generic page (every field) for kinds without one, such as Leases and ControllerRevisions."""

from __future__ import annotations

from minikube_py.cli.describe_workloads import smart_label

CLAIM = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}}


def lines_of(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()]


def test_describe_storage_class_volume_and_claim_as_kubectl_with_the_pods_using_the_claim(live):
    live.registry.create("storageclasses", None, {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": "local-path", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"})
    live.registry.create("persistentvolumes", None, {
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pvc-1"},
        "spec": {"capacity": {"storage": "16Mi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "local-path",
                 "persistentVolumeReclaimPolicy": "Delete", "local": {"path": "/var/lib/x/pvc-1"},
                 "claimRef": {"namespace": "default", "name": "data"},
                 "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                     {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node1"]}]}]}}}})
    live.registry.patch_status("persistentvolumes", None, "pvc-1", {"status": {"phase": "Bound"}})
    live.registry.create("persistentvolumeclaims", "default", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {**CLAIM, "storageClassName": "local-path", "volumeName": "pvc-1"}})
    claim = live.registry.patch_status("persistentvolumeclaims", "default", "data", {"status": {
        "phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "16Mi"}}})
    live.registry.create("pods", "default", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "user"},
        "spec": {"containers": [{"name": "c0", "image": "busybox"}],
                 "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}})
    live.event("data.1", {**claim, "kind": "PersistentVolumeClaim"}, "WaitForFirstConsumer",
               "waiting for first consumer to be created before binding")

    storage_class = lines_of(live.run("describe", "storageclass", "local-path").out)
    for expected in (["Name:", "local-path"], ["IsDefaultClass:", "Yes"],
                     ["Annotations:", "storageclass.kubernetes.io/is-default-class=true"],
                     ["Provisioner:", "rancher.io/local-path"], ["Parameters:", "<none>"],
                     ["AllowVolumeExpansion:", "<unset>"], ["MountOptions:", "<none>"], ["ReclaimPolicy:", "Delete"],
                     ["VolumeBindingMode:", "WaitForFirstConsumer"], ["Events:", "<none>"]):
        assert expected in storage_class, expected

    volume = live.run("describe", "pv", "pvc-1").out
    for expected in (["StorageClass:", "local-path"], ["Status:", "Bound"], ["Claim:", "default/data"],
                     ["Reclaim", "Policy:", "Delete"], ["Access", "Modes:", "RWO"], ["VolumeMode:", "Filesystem"],
                     ["Capacity:", "16Mi"], ["Node", "Affinity:"], ["Required", "Terms:"],
                     ["Term", "0:", "kubernetes.io/hostname", "in", "[node1]"], ["Source:"],
                     ["Type:", "LocalVolume", "(a", "persistent", "volume", "backed", "by", "local", "storage", "on", "a",
                      "node)"], ["Path:", "/var/lib/x/pvc-1"]):
        assert expected in lines_of(volume), expected

    claim_text = live.run("describe", "pvc", "data").out
    for expected in (["Namespace:", "default"], ["StorageClass:", "local-path"], ["Status:", "Bound"],
                     ["Volume:", "pvc-1"], ["Finalizers:", "[kubernetes.io/pvc-protection]"], ["Capacity:", "16Mi"], ["Access", "Modes:", "RWO"],
                     ["Used", "By:", "user"]):
        assert expected in lines_of(claim_text), expected
    events = claim_text[claim_text.index("Events:"):].splitlines()
    assert events[3].split()[:2] == ["Normal", "WaitForFirstConsumer"]


def test_a_pending_claim_shows_no_capacity_and_used_by_none(live):
    live.registry.create("persistentvolumeclaims", "default", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {**CLAIM, "storageClassName": "missing"}})
    live.registry.patch_status("persistentvolumeclaims", "default", "data", {"status": {"phase": "Pending"}})
    lines = lines_of(live.run("describe", "pvc", "data").out)
    for expected in (["StorageClass:", "missing"], ["Status:", "Pending"], ["Volume:"], ["Capacity:"],
                     ["Access", "Modes:"], ["Used", "By:", "<none>"]):
        assert expected in lines, expected


def test_describe_statefulset_shows_replicas_strategy_pods_template_and_claim_templates(live):
    made = live.registry.create("statefulsets", "default", {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
        "spec": {"replicas": 3, "serviceName": "nginx", "selector": {"matchLabels": {"app": "web"}},
                 "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "main", "image": "busybox"}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": CLAIM}]}})
    live.registry.patch_status("statefulsets", "default", "web", {"status": {"replicas": 1}})
    live.registry.create("pods", "default", {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-0", "labels": {"app": "web"}, "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": made["metadata"]["uid"],
             "controller": True}]},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]}})
    live.registry.patch_status("pods", "default", "web-0", {"status": {"phase": "Running"}})
    live.event("web.1", {**made, "kind": "StatefulSet"}, "SuccessfulCreate",
               "create Pod web-0 in StatefulSet web successful")
    text = live.run("describe", "statefulset", "web").out
    lines = lines_of(text)
    for expected in (["Selector:", "app=web"], ["Replicas:", "3", "desired", "|", "1", "total"],
                     ["Update", "Strategy:", "RollingUpdate"], ["Partition:", "2"],
                     ["Pods", "Status:", "1", "Running", "/", "0", "Waiting", "/", "0", "Succeeded", "/", "0", "Failed"],
                     ["Pod", "Template:"], ["Image:", "busybox"], ["Volume", "Claims:"], ["Name:", "www"],
                     ["StorageClass:"], ["Capacity:", "16Mi"], ["Access", "Modes:", "[ReadWriteOnce]"]):
        assert expected in lines, expected
    assert "create Pod web-0 in StatefulSet web successful" in text


def test_describe_hpa_shows_metrics_current_over_target_replicas_conditions_and_events(live):
    made = live.registry.create("horizontalpodautoscalers", "default", {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "burner"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "burner"},
                 "minReplicas": 1, "maxReplicas": 5,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                     "type": "Utilization", "averageUtilization": 50}}},
                     {"type": "Resource", "resource": {"name": "memory", "target": {
                         "type": "AverageValue", "averageValue": "64Mi"}}}]}})
    live.registry.patch_status("horizontalpodautoscalers", "default", "burner", {"status": {
        "currentReplicas": 2, "desiredReplicas": 3,
        "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {
            "averageUtilization": 90, "averageValue": "450m"}}}],
        "conditions": [{"type": "AbleToScale", "status": "True", "reason": "SucceededRescale",
                        "message": "the HPA controller was able to update the target scale to 3"}]}})
    live.event("burner.1", {**made, "kind": "HorizontalPodAutoscaler"}, "SuccessfulRescale",
               "New size: 3; reason: cpu resource utilization (percentage of request) above target")
    text = live.run("describe", "hpa", "burner").out
    lines = lines_of(text)
    for expected in (["Reference:", "Deployment/burner"], ["Metrics:", "(", "current", "/", "target", ")"],
                     ["resource", "cpu", "on", "pods", "(as", "a", "percentage", "of", "request):", "90%", "(450m)",
                      "/", "50%"],
                     ["resource", "memory", "on", "pods:", "<unknown>", "/", "64Mi"],
                     ["Min", "replicas:", "1"], ["Max", "replicas:", "5"],
                     ["Deployment", "pods:", "2", "current", "/", "3", "desired"],
                     ["Type", "Status", "Reason", "Message"],
                     ["AbleToScale", "True", "SucceededRescale", "the", "HPA", "controller", "was", "able", "to",
                      "update", "the", "target", "scale", "to", "3"]):
        assert expected in lines, expected
    assert "New size: 3; reason: cpu resource utilization (percentage of request) above target" in text


def test_describe_pdb_and_priority_class_as_kubectl(live):
    live.registry.create("poddisruptionbudgets", "default", {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"},
        "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}}})
    live.registry.patch_status("poddisruptionbudgets", "default", "web", {"status": {
        "disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3}})
    lines = lines_of(live.run("describe", "pdb", "web").out)
    for expected in (["Min", "available:", "50%"], ["Selector:", "app=web"], ["Status:"],
                     ["Allowed", "disruptions:", "1"], ["Current:", "3"], ["Desired:", "2"], ["Total:", "3"],
                     ["Events:", "<none>"]):
        assert expected in lines, expected

    live.registry.create("priorityclasses", None, {
        "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "high"},
        "value": 1000, "description": "for the important pods"})
    lines = lines_of(live.run("describe", "priorityclass", "high").out)
    for expected in (["Name:", "high"], ["Value:", "1000"], ["GlobalDefault:", "false"],
                     ["PreemptionPolicy:", "PreemptLowerPriority"], ["Description:", "for", "the", "important", "pods"],
                     ["Annotations:", "<none>"], ["Events:", "<none>"]):
        assert expected in lines, expected


def test_kinds_without_a_describer_get_kubectls_generic_page_of_every_field(live):
    live.registry.create("leases", "default", {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "leader", "labels": {"a": "b"}},
        "spec": {"holderIdentity": "daemon-1", "leaseDurationSeconds": 15}})
    text = live.run("describe", "lease", "leader").out
    lines = lines_of(text)
    for expected in (["Name:", "leader"], ["Namespace:", "default"], ["Labels:", "a=b"], ["Annotations:", "<none>"],
                     ["API", "Version:", "coordination.k8s.io/v1"], ["Kind:", "Lease"], ["Metadata:"],
                     ["Creation", "Timestamp:"], ["Resource", "Version:"], ["UID:"], ["Spec:"],
                     ["Holder", "Identity:", "daemon-1"], ["Lease", "Duration", "Seconds:", "15"], ["Events:", "<none>"]):
        assert any(line[:len(expected)] == expected for line in lines), expected
    assert "  Holder Identity:" in text  # one level under Spec:
    assert "Name:  leader" not in text.split("Metadata:")[1]  # metadata.name is not repeated


def test_smart_labels_are_kubectls():
    assert [smart_label(field) for field in ("apiVersion", "holderIdentity", "podCIDRs", "uid", "revision",
                                             "app.kubernetes.io/name")] == \
        ["API Version", "Holder Identity", "Pod CIDRs", "UID", "Revision", "app.kubernetes.io/name"]


def test_describe_pod_and_templates_list_node_selectors_and_tolerations_as_kubectl(live):
    live.registry.create("pods", "default", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "tolerant"},
        "spec": {"containers": [{"name": "c0", "image": "busybox"}], "nodeSelector": {"disk": "ssd"},
                 "tolerations": [
                     {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                      "tolerationSeconds": 300},
                     {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
                     {"operator": "Exists"}]}})
    lines = live.run("describe", "pod", "tolerant").out.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("Tolerations:"))
    assert [line.split(None, 1)[-1] if index == 0 else line.strip()
            for index, line in enumerate(lines[start:start + 3])] == [
        "op=Exists", "dedicated=gpu:NoSchedule", "node.kubernetes.io/not-ready:NoExecute op=Exists for 300s"]
    assert ["Node-Selectors:", "disk=ssd"] in [line.split() for line in lines]
    assert [line.split() for line in lines[:3]] == [["Name:", "tolerant"], ["Namespace:", "default"],
                                                     ["Priority:", "0"]]  # priority admission's default

    live.registry.create("statefulsets", "default", {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}}, "spec": {
                     "containers": [{"name": "main", "image": "busybox"}], "priorityClassName": "high",
                     "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]}}}})
    template = [line.split() for line in live.run("describe", "sts", "db").out.splitlines()]
    for expected in (["Priority", "Class", "Name:", "high"], ["Node-Selectors:", "<none>"],
                     ["Tolerations:", "dedicated:NoSchedule", "op=Exists"]):
        assert expected in template, expected
