"""A real pod configured from a ConfigMap, a Secret and its own resources through its environment:
it waits with kubelet's CreateContainerConfigError while the ConfigMap is missing and starts by
itself once it is applied."""

from __future__ import annotations

import base64

from tests.e2e.cluster import Cluster

POD = """
apiVersion: v1
kind: Pod
metadata:
  name: configured
spec:
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
    resources:
      limits: {memory: 64Mi}
    envFrom:
    - configMapRef: {name: app-config}
      prefix: CFG_
    env:
    - name: LOG_LEVEL
      valueFrom: {configMapKeyRef: {name: app-config, key: LOG_LEVEL}}
    - name: PASSWORD
      valueFrom: {secretKeyRef: {name: app-secret, key: password}}
    - name: MEMORY_MI
      valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}
"""

CONFIG = f"""
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  LOG_LEVEL: debug
---
apiVersion: v1
kind: Secret
metadata:
  name: app-secret
data:
  password: {base64.b64encode(b"s3cret").decode()}
"""


def test_env_from_config_map_secret_and_resources_waiting_until_the_config_map_exists(cluster: Cluster):
    cluster.apply(POD)

    def waiting_for_config(pod: dict) -> bool:
        statuses = pod.get("status", {}).get("containerStatuses") or []
        waiting = statuses[0].get("state", {}).get("waiting", {}) if statuses else {}
        return waiting.get("reason") == "CreateContainerConfigError"

    pod = cluster.wait_pod("configured", waiting_for_config, "CreateContainerConfigError")
    assert pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"] == 'configmap "app-config" not found'
    cluster.apply(CONFIG)
    cluster.wait_running("configured")
    env = dict(line.split("=", 1) for line in cluster.exec("configured", "env").stdout.splitlines() if "=" in line)
    assert env["CFG_LOG_LEVEL"] == "debug" and env["LOG_LEVEL"] == "debug"
    assert env["PASSWORD"] == "s3cret" and env["MEMORY_MI"] == "64"
