"""describe: kubectl's sections for pods, deployments, replicasets, namespaces and nodes."""

import re


CRASHING = {
    "phase": "Running", "podIP": "10.244.0.9", "hostIP": "192.168.1.5", "startTime": "2026-01-01T00:00:00Z",
    "conditions": [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}],
    "containerStatuses": [{
        "name": "c0", "ready": False, "restartCount": 3, "image": "busybox", "imageID": "sha256:1",
        "containerID": "minikube-py://abc",
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": "2026-01-01T00:00:00Z",
                                     "finishedAt": "2026-01-01T00:00:05Z"}}}],
}


def test_describe_pod_shows_containers_states_conditions_volumes_and_its_own_events(live):
    live.registry.create("pods", "default", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "namespace": "default",
                                                         "labels": {"app": "web"}},
        "spec": {"containers": [{
            "name": "c0", "image": "busybox", "env": [{"name": "MODE", "value": "test"}],
            "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "100m"}},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
            "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 5},
            "volumeMounts": [{"name": "cache", "mountPath": "/cache"}]}],
            "volumes": [{"name": "cache", "emptyDir": {}}]}})
    live.registry.bind("default", "web-1", "node1")
    live.registry.patch_status("pods", "default", "web-1", {"status": CRASHING})
    pod = {**live.registry.get("pods", "default", "web-1"), "kind": "Pod"}
    other = {**live.pod("other"), "kind": "Pod"}
    live.event("web-1.1", pod, "BackOff", "Back-off restarting failed container c0 in pod web-1",
               event_type="Warning")
    live.event("other.1", other, "Scheduled", "about another pod")
    text = live.run("describe", "pod", "web-1").out
    for expected in ("Name:", "Namespace:", "Node:", "node1/192.168.1.5", "Labels:", "app=web", "Annotations:",
                     "Status:", "Running", "IP:", "10.244.0.9", "Containers:", "  c0:", "State:", "Waiting",
                     "Reason:", "CrashLoopBackOff", "Last State:", "Terminated", "Exit Code:", "Ready:",
                     "Restart Count:", "Limits:", "memory:", "64Mi", "Requests:", "100m",
                     "Liveness:", "http-get http://:8080/healthz delay=0s timeout=1s period=10s #success=1 #failure=3",
                     "Readiness:", "exec [cat /tmp/ready] delay=0s timeout=1s period=5s #success=1 #failure=3",
                     "Environment:", "MODE:", "Mounts:", "/cache from cache (rw)", "Conditions:", "Volumes:",
                     "EmptyDir (a temporary directory that shares a pod's lifetime)", "QoS Class:", "Burstable",
                     "Events:", "Back-off restarting failed container c0 in pod web-1"):
        assert expected in text, expected
    assert "about another pod" not in text
    events = text[text.index("Events:"):].splitlines()
    assert events[1].split() == ["Type", "Reason", "Age", "From", "Message"]
    assert events[3].split()[:2] == ["Warning", "BackOff"]


def test_describe_deployment_shows_replicas_strategy_template_and_replica_sets(live):
    deployment = live.deployment(replicas=3)
    live.registry.patch_status("deployments", "default", "web", {"status": {
        "replicas": 3, "updatedReplicas": 3, "availableReplicas": 2, "unavailableReplicas": 1,
        "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]}})
    live.replica_set("web-abc", owner=deployment, revision="1")
    live.replica_set("web-old", owner=deployment, image="busybox:0", template_hash="old", replicas=1)
    text = live.run("describe", "deployment", "web").out
    assert "Replicas:               3 desired | 3 updated | 3 total | 2 available | 1 unavailable" in text
    assert "StrategyType:           RollingUpdate" in text
    assert "RollingUpdateStrategy:  25% max unavailable, 25% max surge" in text
    for expected in ("MinReadySeconds:", "Selector:", "Pod Template:", "  Containers:", "Image:", "Conditions:",
                     "MinimumReplicasAvailable", "Events:"):
        assert expected in text, expected
    assert re.search(r"\nNewReplicaSet: +web-abc \(0/3 replicas created\)\n", text)
    assert re.search(r"\nOldReplicaSets: +web-old \(0/1 replicas created\)\n", text)


def test_describe_replica_set_counts_its_pods_by_phase(live):
    deployment = live.deployment()
    replica_set = live.replica_set("web-abc", owner=deployment)
    owner = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc",
              "uid": replica_set["metadata"]["uid"], "controller": True}]
    for name, phase in (("web-abc-1", "Running"), ("web-abc-2", "Pending"), ("web-abc-3", "Failed")):
        live.registry.create("pods", "default", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "ownerReferences": owner},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
        live.registry.patch_status("pods", "default", name, {"status": {"phase": phase}})
    text = live.run("describe", "rs/web-abc").out
    assert "Replicas:       0 current / 3 desired" in text
    assert "Pods Status:    1 Running / 1 Waiting / 0 Succeeded / 1 Failed" in text
    assert "Controlled By:  Deployment/web" in text


def test_describe_namespace_and_node(live):
    namespace = live.run("describe", "namespace", "default").out
    assert "Name:" in namespace and "Status:       Active" in namespace and "No resource quota." in namespace
    live.node()
    live.pod("web-1", node="node1")
    node = live.run("describe", "node", "node1").out
    for expected in ("Roles:", "Conditions:", "Ready", "KubeletReady", "Addresses:", "InternalIP:", "192.168.1.5",
                     "System Info:", "Kubelet Version:", "Non-terminated Pods:", "(1 in total)", "web-1"):
        assert expected in node, expected


def test_describe_of_a_missing_object_is_not_found(live):
    result = live.run("describe", "pod", "nope")
    assert (result.code, result.err) == (1, 'Error from server (NotFound): pods "nope" not found\n')


def test_describe_pod_shows_configmap_secret_downward_and_projected_volumes_as_kubectl(live):
    live.registry.create("pods", "default", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "configured", "namespace": "default"},
        "spec": {"containers": [{"name": "c0", "image": "busybox"}], "volumes": [
            {"name": "config", "configMap": {"name": "app-config"}},
            {"name": "creds", "secret": {"secretName": "app-secret", "optional": True}},
            {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
            {"name": "kube-api-access-x7k2q", "projected": {"sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}}]}})
    text = live.run("describe", "pod", "configured").out
    lines = [" ".join(line.split()) for line in text.splitlines()]
    for expected in ("Type: ConfigMap (a volume populated by a ConfigMap)", "Name: app-config", "Optional: false",
                     "Type: Secret (a volume populated by a Secret)", "SecretName: app-secret", "Optional: true",
                     "Type: DownwardAPI (a volume populated by information about the pod)", "metadata.labels -> labels",
                     "Type: Projected (a volume that contains injected data from multiple sources)",
                     "TokenExpirationSeconds: 3607", "ConfigMapName: kube-root-ca.crt", "ConfigMapOptional: <nil>",
                     "DownwardAPI: true"):
        assert expected in lines, expected
