"""ConfigMap and Secret volumes in a real pod: the files, the live update through the `..data`
swap (but not through a subPath), the Secret on a tmpfs of the pod (never on disk), and a pod whose
ConfigMap is missing waiting with kubelet's FailedMount until it is applied."""

from __future__ import annotations

import base64

from tests.e2e.cluster import Cluster, wait_for

CONFIG = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  level: {level}
"""

SECRET = f"""
apiVersion: v1
kind: Secret
metadata:
  name: app-secret
data:
  password: {base64.b64encode(b"s3cret").decode()}
"""

READER = """
apiVersion: v1
kind: Pod
metadata:
  name: reader
spec:
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
    volumeMounts:
    - {name: config, mountPath: /etc/config}
    - {name: config, mountPath: /etc/level, subPath: level}
    - {name: secret, mountPath: /etc/secret}
  volumes:
  - name: config
    configMap: {name: app-config}
  - name: secret
    secret: {secretName: app-secret, defaultMode: 0400}
"""

WAITER = """
apiVersion: v1
kind: Pod
metadata:
  name: waiter
spec:
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
    volumeMounts:
    - {name: later, mountPath: /etc/later}
  volumes:
  - name: later
    configMap: {name: later-config}
"""

LATER = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: later-config
data:
  greeting: hello
"""


def test_config_map_and_secret_files_update_in_place_on_a_tmpfs(cluster: Cluster):
    cluster.apply(CONFIG.format(level="info") + "---" + SECRET + "---" + READER)
    cluster.wait_running("reader")
    assert cluster.exec("reader", "cat", "/etc/config/level").stdout == "info"
    assert cluster.exec("reader", "cat", "/etc/secret/password").stdout == "s3cret"
    assert cluster.exec("reader", "stat", "-L", "-c", "%a", "/etc/secret/password").stdout.strip() == "400"
    mounts = {line.split()[1]: line.split() for line in cluster.exec("reader", "cat", "/proc/mounts").stdout.splitlines()}
    assert mounts["/etc/secret"][2] == "tmpfs" and "ro" in mounts["/etc/secret"][3].split(",")
    assert mounts["/etc/config"][2] != "tmpfs" and "ro" in mounts["/etc/config"][3].split(",")
    listing = cluster.exec("reader", "ls", "-la", "/etc/config").stdout
    assert "..data -> ..20" in listing and "level -> ..data/level" in listing

    cluster.apply(CONFIG.format(level="debug"))
    wait_for(lambda: cluster.exec("reader", "cat", "/etc/config/level").stdout == "debug", 20,
             "the ConfigMap's new value in the running container")
    assert cluster.exec("reader", "cat", "/etc/level").stdout == "info"  # a subPath is not updated
    assert cluster.pod("reader")["status"]["containerStatuses"][0]["restartCount"] == 0


def test_a_missing_config_map_holds_the_pod_in_container_creating_until_it_appears(cluster: Cluster):
    cluster.apply(WAITER)

    def failed_mount() -> bool:
        events = cluster.client.raw.list("events", "default")["items"]
        return any(event["reason"] == "FailedMount" and event["involvedObject"]["name"] == "waiter" and
                   event["message"] == 'MountVolume.SetUp failed for volume "later" : configmap "later-config" not found'
                   for event in events)

    wait_for(failed_mount, 20, "the FailedMount event of pod waiter")
    status = cluster.pod("waiter")["status"]
    assert status["phase"] == "Pending"
    assert status["containerStatuses"][0]["state"]["waiting"]["reason"] == "ContainerCreating"
    cluster.apply(LATER)
    cluster.wait_running("waiter", timeout=20)
    assert cluster.exec("waiter", "cat", "/etc/later/greeting").stdout == "hello"
