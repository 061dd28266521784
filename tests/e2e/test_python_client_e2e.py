"""The official Python client (`kubernetes` on PyPI) against a real cluster over TLS.

Two parts. Our own tests go through the typed APIs a program uses every day: CRUD of pods,
ConfigMaps and Deployments, watch, logs (with since/limitBytes), an exec stream, scale, nodes
(their nodeInfo must deserialize), pages with `limit`/`_continue`, deletecollection, the
self-reviews and the health endpoints. Then the client's own upstream e2e tests
(python_client_upstream/, vendored unchanged) run class by class, as unittest runs them; a test is
skipped only where the server does not serve a kind it needs (named in the reason, read from the
server's discovery at run time, so a kind that lands later is tested at once) or where it needs a
container image that cannot be pulled without a network (named too).
"""

from __future__ import annotations

import importlib
import io
import json
import os
import sys
import time
import types
import unittest

import pytest

from tests.e2e.cluster import Cluster, free_port, wait_for

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client, config, watch  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402
from kubernetes.config import kube_config  # noqa: E402
from kubernetes.stream import stream  # noqa: E402

UPSTREAM = os.path.join(os.path.dirname(__file__), "python_client_upstream")
NAMESPACE = "pyclient"

# What each upstream test needs beyond what every cluster serves: (group/version, kind), or an image.
NEEDS_KIND = {
    "test_replication_controller_apis": ("v1", "ReplicationController"),
    "test_create_daemonset": ("apps/v1", "DaemonSet"),
    "test_create_rbac_role_from_yaml": ("rbac.authorization.k8s.io/v1", "Role"),
    "test_create_rbac_role_from_yaml_with_verbose_enabled": ("rbac.authorization.k8s.io/v1", "Role"),
    "test_create_apiservice_from_yaml_with_conflict": ("apiregistration.k8s.io/v1", "APIService"),
    "test_create_multi_resource_from_directory": ("v1", "ReplicationController"),
    "test_create_from_multi_resource_yaml": ("v1", "ReplicationController"),
    "test_create_from_multi_resource_yaml_with_conflict": ("v1", "ReplicationController"),
    "test_create_from_multi_resource_yaml_with_multi_conflicts": ("v1", "ReplicationController"),
    "test_metrics_utilities_integration": ("metrics.k8s.io/v1beta1", "PodMetrics"),
}
NEEDS_IMAGE = {
    "test_portforward_raw": "python",
    "test_portforward_http": "nginx",
}
UPSTREAM_MODULES = ("test_client", "test_apps", "test_batch", "test_watch", "test_utils")


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("e2e tests run real pods and need root")
    running = Cluster().start(port=free_port())
    try:
        running.cli("apply", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n")
        yield running
    finally:
        leftovers = running.stop()
        assert not leftovers, f"cluster {running.name} left these on the host after stop: {leftovers}"


@pytest.fixture(scope="module")
def api_client(cluster):
    configuration = client.Configuration()
    config.load_kube_config(config_file=cluster.kubeconfig, client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        yield api


def pod(name: str, command: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", command]}]}}


def running(core: client.CoreV1Api, name: str) -> client.V1Pod:
    return wait_for(lambda: (lambda found: found if found.status.phase == "Running" else None)(
        core.read_namespaced_pod(name, NAMESPACE)), 60, f"pod {name} running")


def test_pods_crud_logs_and_an_exec_stream(api_client):
    core = client.CoreV1Api(api_client)
    created = core.create_namespaced_pod(NAMESPACE, pod("talker", "echo one; echo two; exec sleep 3600"))
    assert created.metadata.uid and created.status.phase == "Pending"
    running(core, "talker")
    wait_for(lambda: core.read_namespaced_pod_log("talker", NAMESPACE) == "one\ntwo\n", 20, "both log lines")
    assert core.read_namespaced_pod_log("talker", NAMESPACE, tail_lines=1) == "two\n"
    assert core.read_namespaced_pod_log("talker", NAMESPACE, limit_bytes=6) == "one\ntw"
    assert core.read_namespaced_pod_log("talker", NAMESPACE, since_seconds=3600) == "one\ntwo\n"
    with pytest.raises(ApiException) as raised:
        core.read_namespaced_pod_log("talker", NAMESPACE, since_seconds=0)
    assert raised.value.status == 422
    output = stream(core.connect_get_namespaced_pod_exec, "talker", NAMESPACE,
                    command=["sh", "-c", "echo out; echo err >&2"], stderr=True, stdin=False, stdout=True,
                    tty=False)
    assert "out" in output and "err" in output
    session = stream(core.connect_get_namespaced_pod_exec, "talker", NAMESPACE, command=["cat"], stdin=True,
                     stdout=True, stderr=True, tty=False, _preload_content=False)
    session.write_stdin("typed\n")
    read = ""
    deadline = time.monotonic() + 10
    while "typed" not in read and time.monotonic() < deadline:
        session.update(timeout=1)
        read += session.read_stdout() if session.peek_stdout() else ""
    session.close()
    assert "typed" in read
    patched = core.patch_namespaced_pod("talker", NAMESPACE, {"metadata": {"labels": {"extra": "yes"}}})
    assert patched.metadata.labels == {"app": "talker", "extra": "yes"}
    listed = core.list_namespaced_pod(NAMESPACE, label_selector="extra=yes")
    assert [item.metadata.name for item in listed.items] == ["talker"]
    deleted = core.delete_namespaced_pod("talker", NAMESPACE, grace_period_seconds=0)
    assert isinstance(deleted, client.V1Pod)
    wait_for(lambda: not core.list_namespaced_pod(NAMESPACE, label_selector="app=talker").items, 30, "pod gone")


def test_configmaps_watch_pages_and_deletecollection(api_client):
    core = client.CoreV1Api(api_client)
    listed = core.list_namespaced_config_map(NAMESPACE, label_selector="batch=1")
    for index in range(5):
        core.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": f"cm{index}", "labels": {"batch": "1"}},
                                                      "data": {"index": str(index)}})
    events = []
    for event in watch.Watch().stream(core.list_namespaced_config_map, NAMESPACE, label_selector="batch=1",
                                      resource_version=listed.metadata.resource_version, timeout_seconds=5):
        events.append((event["type"], event["object"].metadata.name))
        if len(events) == 5:
            break
    assert events == [("ADDED", f"cm{index}") for index in range(5)]
    first = core.list_namespaced_config_map(NAMESPACE, label_selector="batch=1", limit=2)
    assert [item.metadata.name for item in first.items] == ["cm0", "cm1"] and first.metadata._continue
    names = [item.metadata.name for item in first.items]
    token = first.metadata._continue
    while token:
        page = core.list_namespaced_config_map(NAMESPACE, label_selector="batch=1", limit=2, _continue=token)
        names += [item.metadata.name for item in page.items]
        token = page.metadata._continue
    assert names == [f"cm{index}" for index in range(5)]
    replaced = core.replace_namespaced_config_map("cm0", NAMESPACE, {
        "metadata": {"name": "cm0", "labels": {"batch": "1"}}, "data": {"index": "zero"}})
    assert replaced.data == {"index": "zero"}
    # The client declares V1Status for both answers, so they are read as sent.
    status = json.loads(core.delete_namespaced_config_map("cm4", NAMESPACE, _preload_content=False).data)
    assert status["kind"] == "Status" and status["status"] == "Success" and status["details"]["name"] == "cm4"
    removed = json.loads(core.delete_collection_namespaced_config_map(NAMESPACE, label_selector="batch=1",
                                                                      _preload_content=False).data)
    assert removed["kind"] == "ConfigMapList"
    assert {item["metadata"]["name"] for item in removed["items"]} == {"cm0", "cm1", "cm2", "cm3"}
    assert not core.list_namespaced_config_map(NAMESPACE, label_selector="batch=1").items


def test_deployments_scale_and_nodes_read(api_client):
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    body = {"metadata": {"name": "web"}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}}}}
    apps.create_namespaced_deployment(NAMESPACE, body)
    scale = apps.patch_namespaced_deployment_scale("web", NAMESPACE, {"spec": {"replicas": 2}})
    assert scale.spec.replicas == 2
    wait_for(lambda: (apps.read_namespaced_deployment_status("web", NAMESPACE).status.ready_replicas or 0) == 2,
             60, "two ready replicas")
    assert apps.read_namespaced_deployment_scale("web", NAMESPACE).status.replicas == 2
    apps.replace_namespaced_deployment_scale("web", NAMESPACE, {"metadata": {"name": "web"},
                                                                "spec": {"replicas": 0}})
    wait_for(lambda: not core.list_namespaced_pod(NAMESPACE, label_selector="app=web").items, 60, "scaled to 0")
    deleted = json.loads(apps.delete_namespaced_deployment("web", NAMESPACE, _preload_content=False).data)
    assert deleted["details"]["group"] == "apps" and deleted["kind"] == "Status"
    nodes = core.list_node().items
    info = nodes[0].status.node_info
    assert info.kubelet_version.startswith("v1.32") and info.kube_proxy_version and info.boot_id
    assert core.read_node(nodes[0].metadata.name).status.node_info.architecture == info.architecture


def test_autoscaling_v1_and_v2_apis_read_and_write_one_autoscaler(api_client):
    """AutoscalingV1Api (targetCPUUtilizationPercentage) and AutoscalingV2Api see one object."""
    v1, v2 = client.AutoscalingV1Api(api_client), client.AutoscalingV2Api(api_client)
    body = client.V1HorizontalPodAutoscaler(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1HorizontalPodAutoscalerSpec(
            scale_target_ref=client.V1CrossVersionObjectReference(api_version="apps/v1", kind="Deployment", name="web"),
            min_replicas=1, max_replicas=3, target_cpu_utilization_percentage=40))
    created = v1.create_namespaced_horizontal_pod_autoscaler(NAMESPACE, body)
    assert created.spec.target_cpu_utilization_percentage == 40
    assert (created.status.current_replicas, created.status.desired_replicas) == (0, 0)
    assert [hpa.metadata.name for hpa in v1.list_namespaced_horizontal_pod_autoscaler(NAMESPACE).items] == ["web"]
    patched = v1.patch_namespaced_horizontal_pod_autoscaler("web", NAMESPACE, {"spec": {"maxReplicas": 7}})
    assert patched.spec.max_replicas == 7 and patched.spec.target_cpu_utilization_percentage == 40
    stored = v2.read_namespaced_horizontal_pod_autoscaler("web", NAMESPACE)
    assert stored.spec.max_replicas == 7 and stored.spec.metrics[0].resource.target.average_utilization == 40
    stored.spec.behavior = client.V2HorizontalPodAutoscalerBehavior(
        scale_down=client.V2HPAScalingRules(stabilization_window_seconds=60))
    stored.metadata.resource_version = None  # unconditional: the controller may write status meanwhile
    v2.replace_namespaced_horizontal_pod_autoscaler("web", NAMESPACE, stored)
    as_v1 = v1.read_namespaced_horizontal_pod_autoscaler("web", NAMESPACE)
    assert "StabilizationWindowSeconds" in as_v1.metadata.annotations["autoscaling.alpha.kubernetes.io/behavior"]
    as_v1.spec.min_replicas = 2
    as_v1.metadata.resource_version = None
    v1.replace_namespaced_horizontal_pod_autoscaler("web", NAMESPACE, as_v1)
    stored = v2.read_namespaced_horizontal_pod_autoscaler("web", NAMESPACE)
    assert stored.spec.min_replicas == 2 and stored.spec.behavior.scale_down.stabilization_window_seconds == 60
    with pytest.raises(ApiException) as refused:
        v1.create_namespaced_horizontal_pod_autoscaler(NAMESPACE, {"metadata": {"name": "bad"}, "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 4, "maxReplicas": 2}})
    assert refused.value.status == 422
    assert "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`" in refused.value.body
    v1.delete_namespaced_horizontal_pod_autoscaler("web", NAMESPACE)


def test_self_reviews(api_client):
    review = client.AuthorizationV1Api(api_client).create_self_subject_access_review(
        client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(verb="delete", resource="pods", namespace=NAMESPACE))))
    assert review.status.allowed is True
    whoami = client.AuthenticationV1Api(api_client).create_self_subject_review(client.V1SelfSubjectReview())
    assert "system:masters" in whoami.status.user_info.groups


# -- the client's own e2e tests ---------------------------------------------------------------


def served_kinds(api_client) -> set[tuple[str, str]]:
    """(group/version, kind) of everything the server's discovery lists."""
    served = set()
    for resource in client.CoreV1Api(api_client).get_api_resources().resources:
        served.add(("v1", resource.kind))
    for group in client.ApisApi(api_client).get_api_versions().groups:
        for version in group.versions:
            try:
                listed = client.CustomObjectsApi(api_client).get_api_resources(group.name, version.version)
            except ApiException:
                continue
            served.update((version.group_version, resource.kind) for resource in listed.resources)
    return served


def upstream_package() -> None:
    """Make the vendored directory importable as `kubernetes.e2e_test`, as the tests import it."""
    if "kubernetes.e2e_test" not in sys.modules:
        package = types.ModuleType("kubernetes.e2e_test")
        package.__path__ = [os.path.join(UPSTREAM, "kubernetes", "e2e_test")]
        sys.modules["kubernetes.e2e_test"] = package
        kubernetes.e2e_test = package  # type: ignore[attr-defined]


@pytest.mark.parametrize("module_name", UPSTREAM_MODULES)
def test_the_clients_upstream_e2e_tests(cluster, api_client, module_name, monkeypatch):
    upstream_package()
    module = importlib.import_module(f"kubernetes.e2e_test.{module_name}")
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", cluster.kubeconfig)
    monkeypatch.chdir(UPSTREAM)  # test_utils reads its manifests from kubernetes/e2e_test/test_yaml/
    served = served_kinds(api_client)
    suite = unittest.TestSuite()
    for case in [value for value in vars(module).values()
                 if isinstance(value, type) and issubclass(value, unittest.TestCase)]:
        for method in unittest.defaultTestLoader.getTestCaseNames(case):
            reason = None
            if method in NEEDS_KIND and NEEDS_KIND[method] not in served:
                group_version, kind = NEEDS_KIND[method]
                reason = f"kind {kind} ({group_version}) is not served by minikube-py"
            elif method in NEEDS_IMAGE:
                reason = f"needs the image {NEEDS_IMAGE[method]!r}, which cannot be pulled without a network"
            if reason is not None:
                monkeypatch.setattr(case, method, unittest.skip(reason)(getattr(case, method)))
            suite.addTest(case(method))
    report = io.StringIO()
    result = unittest.TextTestRunner(stream=report, verbosity=2).run(suite)
    print(report.getvalue())
    problems = [f"{test.id()}:\n{trace}" for test, trace in result.failures + result.errors]
    assert not problems, "\n\n".join(problems)
    assert result.testsRun > len(result.skipped), f"every test of {module_name} was skipped"
