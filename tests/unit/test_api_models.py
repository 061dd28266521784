"""Models, wire names, defaults and the resource registry of minikube_py.api."""

import copy

import pytest

from minikube_py import api
from minikube_py.api import Container, Deployment, ObjectMeta, Pod, PodSpec, ReplicaSet
from minikube_py.api.defaults import default_image_pull_policy

FULL_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "web-7d9f-abcde",
        "generateName": "web-7d9f-",
        "namespace": "default",
        "uid": "0b1c",
        "resourceVersion": "42",
        "generation": 1,
        "creationTimestamp": "2026-11-21T22:30:00Z",
        "deletionTimestamp": "2026-11-21T22:31:00Z",
        "deletionGracePeriodSeconds": 30,
        "labels": {"app": "web", "pod-template-hash": "7d9f"},
        "annotations": {"example.com/note": "x"},
        "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f", "uid": "1a2b",
             "controller": True, "blockOwnerDeletion": True}
        ],
        "finalizers": ["example.com/hold"],
    },
    "spec": {
        "containers": [
            {
                "name": "web",
                "image": "busybox:1.36",
                "imagePullPolicy": "IfNotPresent",
                "command": ["httpd"],
                "args": ["-f"],
                "workingDir": "/srv",
                "env": [
                    {"name": "MODE", "value": "prod"},
                    {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                ],
                "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP", "hostPort": 8080}],
                "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}, "requests": {"cpu": "250m"}},
                "livenessProbe": {
                    "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP",
                                "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
                    "initialDelaySeconds": 3, "periodSeconds": 5, "timeoutSeconds": 2,
                    "successThreshold": 1, "failureThreshold": 4, "terminationGracePeriodSeconds": 10,
                },
                "readinessProbe": {"tcpSocket": {"port": 80}, "initialDelaySeconds": 0, "periodSeconds": 10,
                                   "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
                "startupProbe": {"exec": {"command": ["true"]}, "initialDelaySeconds": 0, "periodSeconds": 10,
                                 "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 30},
                "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": True,
                                    "privileged": False, "readOnlyRootFilesystem": True,
                                    "allowPrivilegeEscalation": False},
                "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True, "subPath": "web"}],
                "stdin": False,
                "tty": False,
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
            }
        ],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "activeDeadlineSeconds": 600,
        "shareProcessNamespace": True,
        "hostname": "web",
        "subdomain": "svc",
        "nodeName": "node1",
        "nodeSelector": {"disk": "ssd"},
        "serviceAccountName": "default",
        "dnsPolicy": "ClusterFirst",
        "schedulerName": "default-scheduler",
        "volumes": [{"name": "data", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
                    {"name": "host", "hostPath": {"path": "/srv", "type": "Directory"}}],
        "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 2000},
        "readinessGates": [{"conditionType": "example.com/ready"}],
    },
    "status": {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": None,
                        "lastTransitionTime": "2026-11-21T22:30:05Z", "reason": "r", "message": "m"}],
        "hostIP": "192.168.1.2",
        "podIP": "10.88.0.5",
        "podIPs": [{"ip": "10.88.0.5"}],
        "startTime": "2026-11-21T22:30:01Z",
        "containerStatuses": [
            {
                "name": "web",
                "state": {"running": {"startedAt": "2026-11-21T22:30:02Z"}},
                "lastState": {"terminated": {"exitCode": 137, "signal": 9, "reason": "OOMKilled", "message": "m",
                                             "startedAt": "2026-11-21T22:29:00Z",
                                             "finishedAt": "2026-11-21T22:30:00Z", "containerID": "mkpy://1"}},
                "ready": True,
                "started": True,
                "restartCount": 1,
                "image": "busybox:1.36",
                "imageID": "sha256:abc",
                "containerID": "mkpy://2",
            }
        ],
        "qosClass": "Burstable",
    },
}


def _without_none(value):
    if isinstance(value, dict):
        return {key: _without_none(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_none(item) for item in value]
    return value


def test_full_pod_round_trips_from_wire_to_model_and_back_unchanged():
    pod = Pod.model_validate(FULL_POD)
    assert pod.to_dict() == _without_none(FULL_POD)


def test_attributes_are_snake_case_with_ip_spelled_as_kubernetes_does():
    pod = Pod.model_validate(FULL_POD)
    assert pod.status.pod_ip == "10.88.0.5"
    assert pod.status.host_ip == "192.168.1.2"
    assert pod.status.pod_ips[0].ip == "10.88.0.5"
    assert pod.status.container_statuses[0].image_id == "sha256:abc"
    assert pod.metadata.owner_references[0].block_owner_deletion is True
    assert pod.spec.containers[0].liveness_probe.http_get.port == "http"


def test_models_accept_snake_case_names_in_code_and_write_camel_case():
    pod = Pod(metadata=ObjectMeta(name="p"), spec=PodSpec(containers=[Container(name="c", image="busybox")]))
    pod.status.pod_ip = "10.0.0.1"
    wire = pod.to_dict()
    assert wire["status"] == {"podIP": "10.0.0.1"}
    assert wire["spec"]["containers"][0]["terminationMessagePath"] == "/dev/termination-log"


def test_deployment_wire_names_are_camel_case():
    deployment = Deployment.model_validate(
        {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "10%"}},
                  "progressDeadlineSeconds": 60}}
    )
    assert deployment.spec.strategy.rolling_update.max_surge == 1
    assert deployment.spec.strategy.rolling_update.max_unavailable == "10%"
    assert deployment.to_dict()["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": "10%", "maxSurge": 1}


def test_unknown_field_is_rejected_by_the_model():
    with pytest.raises(Exception, match="extra"):
        Pod.model_validate({"spec": {"containerz": []}})


def test_quantities_given_as_numbers_are_stored_as_strings():
    container = Container.model_validate(
        {"name": "c", "image": "i", "resources": {"limits": {"cpu": 1, "memory": 0.5}, "requests": {"cpu": 2.0}}}
    )
    assert container.resources.limits == {"cpu": "1", "memory": "0.5"}
    assert container.resources.requests == {"cpu": "2"}


def test_condition_lookup_finds_the_condition_by_type():
    pod = Pod.model_validate(FULL_POD)
    assert pod.status.condition("Ready").status == "True"
    assert pod.status.condition("PodScheduled") is None


def test_controller_reference_is_the_owner_marked_controller():
    pod = Pod.model_validate(FULL_POD)
    assert pod.metadata.controller_reference().name == "web-7d9f"


MINIMAL_DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "web", "image": "busybox",
                                              "ports": [{"containerPort": 80}],
                                              "readinessProbe": {"httpGet": {"port": 80}}}]}},
    },
}


def test_parse_object_applies_kubernetes_defaults_to_a_deployment():
    deployment = api.parse_object(copy.deepcopy(MINIMAL_DEPLOYMENT))
    spec = deployment.spec
    assert deployment.metadata.namespace == "default"
    assert spec.replicas == 1
    assert spec.strategy.type == "RollingUpdate"
    assert spec.strategy.rolling_update.max_surge == "25%"
    assert spec.strategy.rolling_update.max_unavailable == "25%"
    assert spec.revision_history_limit == 10
    assert spec.progress_deadline_seconds == 600
    assert spec.min_ready_seconds == 0
    assert spec.paused is False
    pod_spec = spec.template.spec
    assert pod_spec.restart_policy == "Always"
    assert pod_spec.termination_grace_period_seconds == 30
    assert pod_spec.dns_policy == "ClusterFirst"
    assert pod_spec.scheduler_name == "default-scheduler"
    container = pod_spec.containers[0]
    assert container.image_pull_policy == "Always"
    assert container.ports[0].protocol == "TCP"
    assert container.termination_message_path == "/dev/termination-log"
    assert container.termination_message_policy == "File"
    probe = container.readiness_probe
    assert (probe.initial_delay_seconds, probe.period_seconds, probe.timeout_seconds,
            probe.success_threshold, probe.failure_threshold) == (0, 10, 1, 1, 3)
    assert (probe.http_get.path, probe.http_get.scheme) == ("/", "HTTP")


def test_recreate_deployment_gets_no_rolling_update_defaults():
    manifest = copy.deepcopy(MINIMAL_DEPLOYMENT)
    manifest["spec"]["strategy"] = {"type": "Recreate"}
    assert api.parse_object(manifest).spec.strategy.rolling_update is None


def test_probe_timings_given_as_zero_are_defaulted_like_kubernetes():
    manifest = copy.deepcopy(MINIMAL_DEPLOYMENT)
    manifest["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {
        "exec": {"command": ["true"]}, "periodSeconds": 0, "timeoutSeconds": 0, "failureThreshold": 0}
    probe = api.parse_object(manifest).spec.template.spec.containers[0].readiness_probe
    assert (probe.period_seconds, probe.timeout_seconds, probe.failure_threshold) == (10, 1, 3)


def test_replicaset_defaults_to_one_replica_in_the_default_namespace():
    replica_set = api.parse_object({
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs"},
        "spec": {"selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}},
    })
    assert isinstance(replica_set, ReplicaSet)
    assert (replica_set.spec.replicas, replica_set.spec.min_ready_seconds) == (1, 0)
    assert replica_set.metadata.namespace == "default"
    assert replica_set.spec.template.spec.containers[0].image_pull_policy == "IfNotPresent"


def test_cluster_scoped_kinds_get_no_namespace():
    namespace = api.parse_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
    node = api.parse_object({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node1"}})
    assert namespace.metadata.namespace is None and node.metadata.namespace is None


@pytest.mark.parametrize(
    "image, policy",
    [
        ("busybox", "Always"),
        ("busybox:latest", "Always"),
        ("busybox:1.36", "IfNotPresent"),
        ("registry.local:5000/app", "Always"),
        ("registry.local:5000/app:v2", "IfNotPresent"),
        ("app@sha256:0123", "IfNotPresent"),
    ],
)
def test_image_pull_policy_defaults_from_the_tag(image, policy):
    assert default_image_pull_policy(image) == policy


def test_explicit_image_pull_policy_is_kept():
    manifest = copy.deepcopy(MINIMAL_DEPLOYMENT)
    manifest["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Never"
    assert api.parse_object(manifest).spec.template.spec.containers[0].image_pull_policy == "Never"


def test_parse_object_does_not_change_its_input():
    manifest = copy.deepcopy(MINIMAL_DEPLOYMENT)
    api.parse_object(manifest)
    assert manifest == MINIMAL_DEPLOYMENT


def test_event_parses_with_involved_object_and_source():
    event = api.parse_object({
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default", "uid": "u"},
        "reason": "Scheduled", "message": "ok", "type": "Normal", "count": 1,
        "firstTimestamp": "2026-11-21T22:30:00Z", "lastTimestamp": "2026-11-21T22:30:00Z",
        "source": {"component": "default-scheduler"}, "reportingComponent": "default-scheduler",
    })
    assert event.involved_object.name == "web"
    assert event.source.component == "default-scheduler"
    assert event.to_dict()["firstTimestamp"] == "2026-11-21T22:30:00Z"


def test_node_status_keeps_capacity_and_node_info():
    node = api.parse_object({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": "node1"},
        "status": {"capacity": {"cpu": "2", "pods": "110"}, "allocatable": {"cpu": "2"},
                   "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-11-21T22:30:00Z"}],
                   "addresses": [{"type": "InternalIP", "address": "10.88.0.1"}],
                   "nodeInfo": {"kernelVersion": "6.1", "machineID": "m", "systemUUID": "s"}},
    })
    assert node.status.condition("Ready").status == "True"
    assert node.to_dict()["status"]["nodeInfo"] == {"machineID": "m", "systemUUID": "s", "kernelVersion": "6.1"}


@pytest.mark.parametrize(
    "name, plural",
    [("pods", "pods"), ("pod", "pods"), ("po", "pods"), ("Pod", "pods"), ("rs", "replicasets"),
     ("replicaset", "replicasets"), ("deploy", "deployments"), ("deployments.apps", "deployments"),
     ("deployment.apps", "deployments"), ("ns", "namespaces"), ("no", "nodes"), ("ev", "events"),
     ("events", "events")],
)
def test_resource_for_accepts_every_name_kubectl_accepts(name, plural):
    assert api.resource_for(name).plural == plural


def test_resource_for_rejects_unknown_names_and_wrong_groups():
    with pytest.raises(KeyError):
        api.resource_for("ingresses")
    with pytest.raises(KeyError):
        api.resource_for("pods.apps")


def test_resource_info_names_kinds_lists_and_scopes():
    deployments = api.RESOURCES["deployments"]
    assert (deployments.kind, deployments.api_version, deployments.group) == ("Deployment", "apps/v1", "apps")
    assert deployments.list_kind == "DeploymentList"
    assert deployments.qualified_kind == "Deployment.apps"
    assert deployments.model is Deployment
    assert api.RESOURCES["pods"].qualified_kind == "Pod"
    assert api.RESOURCES["nodes"].namespaced is False
    assert api.resource_for_kind("v1", "Pod").plural == "pods"
    with pytest.raises(KeyError):
        api.resource_for_kind("v1", "Deployment")
