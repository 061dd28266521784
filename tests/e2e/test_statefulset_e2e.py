"""StatefulSets and persistent storage on real pods: a StatefulSet of 3 comes up in order with a
claim per pod provisioned by local-path; `web-1` deleted comes back with the same name, the same
claim and the data it wrote, and is found by its DNS name under the headless Service; deleted with
`--cascade=orphan` and applied again, the set adopts its running pods and revisions; a claim in
use is not deleted until its pod is gone; and reclaim policy Delete removes a volume's directory
where Retain keeps it.
"""

from __future__ import annotations

import os
import shutil

import pytest

from minikube_py.api.times import parse_time
from tests.e2e.cluster import Cluster, free_port, wait_for

WEB = """
apiVersion: v1
kind: Service
metadata:
  name: nginx
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: nginx
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "hostname >> /data/boots; exec sleep 3600"]
        volumeMounts: [{name: www, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: www}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 16Mi}}
"""


def claim_and_pod(claim: str, pod: str, storage_class: str | None = None) -> str:
    class_line = f"  storageClassName: {storage_class}\n" if storage_class else ""
    return f"""
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: {claim}}}
spec:
{class_line}  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 8Mi}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: {pod}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo kept > /data/file; exec sleep 3600"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes:
  - name: data
    persistentVolumeClaim: {{claimName: {claim}}}
"""


KEEP_CLASS = """
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: keep}
provisioner: rancher.io/local-path
reclaimPolicy: Retain
volumeBindingMode: WaitForFirstConsumer
"""


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("e2e tests run real pods and need root")
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    running = Cluster().start(port=free_port())
    try:
        yield running
    finally:
        leftovers = running.stop()
        assert not leftovers, f"cluster {running.name} left these on the host after stop: {leftovers}"


def raw(cluster, resource, name, namespace="default"):
    try:
        return cluster.client.raw.get(resource, namespace, name)
    except Exception:
        return None


def ready_since(pod: dict) -> float:
    condition = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
    return parse_time(condition["lastTransitionTime"])


def volume_directory(cluster, claim_name: str) -> str:
    claim = cluster.client.raw.get("persistentvolumeclaims", "default", claim_name)
    volume = cluster.client.raw.get("persistentvolumes", None, claim["spec"]["volumeName"])
    return volume["spec"]["hostPath"]["path"]


def test_a_statefulset_of_three_comes_up_in_order_each_pod_with_its_own_claim(cluster):
    cluster.apply(WEB)
    pods = [cluster.wait_running(f"web-{ordinal}", timeout=60) for ordinal in range(3)]
    for earlier, later in zip(pods, pods[1:], strict=False):
        # OrderedReady: a pod is created only once the one before it is Ready.
        assert parse_time(later["metadata"]["creationTimestamp"]) >= int(ready_since(earlier))
    for ordinal, pod in enumerate(pods):
        assert pod["spec"]["hostname"] == f"web-{ordinal}" and pod["spec"]["subdomain"] == "nginx"
        assert pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == str(ordinal)
        assert pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == f"web-{ordinal}"
        claim = cluster.client.raw.get("persistentvolumeclaims", "default", f"www-web-{ordinal}")
        assert claim["status"]["phase"] == "Bound" and claim["spec"]["storageClassName"] == "local-path"
    table = wait_for(lambda: (lambda out: out if out[1].split()[1] == "3/3" else None)(
        cluster.kubectl("get", "sts", "web").stdout.splitlines()), 30, "get sts shows 3/3 ready")
    assert table[0].split() == ["NAME", "READY", "AGE"]
    # The headless Service's DNS has a name per pod.
    address = pods[1]["status"]["podIP"]
    wait_for(lambda: address in cluster.exec("web-0", "nslookup", "web-1.nginx.default.svc.cluster.local",
                                             check=False).stdout, 30, "web-1.nginx resolves from web-0")


def test_a_deleted_pod_comes_back_with_its_name_claim_and_data(cluster):
    before = cluster.client.raw.get("pods", "default", "web-1")
    claim_uid = cluster.client.raw.get("persistentvolumeclaims", "default", "www-web-1")["metadata"]["uid"]
    cluster.exec("web-1", "sh", "-c", "echo precious > /data/mark")
    cluster.client.raw.delete("pods", "default", "web-1")
    wait_for(lambda: (lambda pod: pod and pod["metadata"]["uid"] != before["metadata"]["uid"])(
        raw(cluster, "pods", "web-1")), 60, "web-1 recreated")
    cluster.wait_running("web-1", timeout=60)
    # The data it wrote, and a second boot of the same pod name on the same claim.
    assert cluster.exec("web-1", "cat", "/data/mark", "/data/boots").stdout.split() == ["precious", "web-1", "web-1"]
    assert cluster.client.raw.get("persistentvolumeclaims", "default", "www-web-1")["metadata"]["uid"] == claim_uid


def controller_uid(obj: dict) -> str | None:
    return next((reference["uid"] for reference in obj["metadata"].get("ownerReferences") or []
                 if reference.get("controller")), None)


def test_a_set_deleted_with_orphan_cascade_leaves_its_pods_running_and_a_new_set_adopts_them(cluster):
    pods_before = {f"web-{ordinal}": cluster.client.raw.get("pods", "default", f"web-{ordinal}")["metadata"]["uid"]
                   for ordinal in range(3)}
    old_uid = cluster.client.raw.get("statefulsets", "default", "web")["metadata"]["uid"]
    cluster.kubectl("delete", "statefulset", "web", "--cascade=orphan")
    wait_for(lambda: all(controller_uid(cluster.client.raw.get("pods", "default", name)) is None
                         for name in pods_before), 30, "the orphaned pods lose their owner")
    cluster.apply(WEB)
    new_uid = wait_for(lambda: (raw(cluster, "statefulsets", "web") or {}).get("metadata", {}).get("uid"), 30,
                       "the new set")
    assert new_uid != old_uid
    wait_for(lambda: all(controller_uid(cluster.client.raw.get("pods", "default", name)) == new_uid
                         for name in pods_before), 30, "the new set adopts web-0..2")
    # Adopted, not replaced: the same pods, and the revision history came along too.
    assert {name: cluster.client.raw.get("pods", "default", name)["metadata"]["uid"] for name in pods_before} == \
        pods_before
    revisions = cluster.client.raw.list("controllerrevisions", "default")["items"]
    assert revisions and all(controller_uid(revision) == new_uid for revision in revisions)
    described = cluster.cli("describe", "statefulset", "web").stdout
    assert ["Pods", "Status:", "3", "Running", "/", "0", "Waiting", "/", "0", "Succeeded", "/", "0", "Failed"] in \
        [line.split() for line in described.splitlines()]


def test_a_claim_in_use_is_deleted_only_after_its_pod_and_delete_removes_its_directory(cluster):
    cluster.apply(claim_and_pod("solo", "holder"))
    cluster.wait_running("holder", timeout=60)
    directory = volume_directory(cluster, "solo")
    assert os.path.isfile(os.path.join(directory, "file"))
    # Other local users cannot reach any volume: the storage root is root's alone.
    assert os.stat(os.path.dirname(directory)).st_mode & 0o777 == 0o700
    cluster.kubectl("delete", "pvc", "solo", "--wait=false")
    held = cluster.client.raw.get("persistentvolumeclaims", "default", "solo")
    assert held["metadata"]["deletionTimestamp"] and "kubernetes.io/pvc-protection" in held["metadata"]["finalizers"]
    assert cluster.kubectl("get", "pvc", "solo").stdout.splitlines()[1].split()[1] == "Terminating"
    cluster.client.raw.delete("pods", "default", "holder")
    wait_for(lambda: raw(cluster, "persistentvolumeclaims", "solo") is None, 60, "claim solo removed")
    wait_for(lambda: not os.path.exists(directory), 30, "the Delete volume's directory removed")


def test_retain_keeps_the_released_volume_and_its_data(cluster):
    cluster.apply(KEEP_CLASS + "---" + claim_and_pod("kept", "keeper", storage_class="keep"))
    cluster.wait_running("keeper", timeout=60)
    directory = volume_directory(cluster, "kept")
    volume_name = cluster.client.raw.get("persistentvolumeclaims", "default", "kept")["spec"]["volumeName"]
    cluster.client.raw.delete("pods", "default", "keeper")
    cluster.client.raw.delete("persistentvolumeclaims", "default", "kept")
    released = wait_for(lambda: (lambda volume: volume if volume["status"].get("phase") == "Released" else None)(
        cluster.client.raw.get("persistentvolumes", None, volume_name)), 60, "volume Released")
    assert released["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    with open(os.path.join(directory, "file")) as file:
        assert file.read().strip() == "kept"
