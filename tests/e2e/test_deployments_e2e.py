"""Deployments on real pods: availability during a rolling update, self-healing, rollback, cascade delete."""

from __future__ import annotations

import os
import signal
import threading

from tests.e2e.cluster import Cluster, wait_for


def deployment(version: int, replicas: int = 6) -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: roll
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: roll
  strategy:
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        app: roll
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: httpd
          image: busybox
          env:
            - name: VERSION
              value: "{version}"
          command: ["sh", "-c", "mkdir -p /www && echo v$VERSION > /www/index.html && exec httpd -f -p 8080 -h /www"]
          readinessProbe:
            httpGet:
              path: /
              port: 8080
            periodSeconds: 1
"""


def is_ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def deployment_complete(cluster: Cluster, replicas: int) -> dict | None:
    d = cluster.client.raw.get("deployments", "default", "roll")
    status = d.get("status", {})
    done = (status.get("observedGeneration", 0) >= d["metadata"]["generation"]
            and status.get("updatedReplicas") == replicas and status.get("replicas") == replicas
            and status.get("availableReplicas") == replicas)
    return d if done else None


class PodCensus:
    """Follows pods of app=roll through a watch and records the extremes a rolling update reaches."""

    def __init__(self, cluster: Cluster):
        self.pods: dict[str, dict] = {}
        self.max_pods = 0
        self.min_ready: int | None = None
        self._watch = cluster.client.raw.watch("pods", "default", label_selector="app=roll")
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self):
        for event in self._watch:
            pod = event["object"]
            if event["type"] == "DELETED":
                self.pods.pop(pod["metadata"]["name"], None)
            else:
                self.pods[pod["metadata"]["name"]] = pod
            live = [p for p in self.pods.values() if not p["metadata"].get("deletionTimestamp")]
            ready = sum(1 for p in live if is_ready(p))
            self.max_pods = max(self.max_pods, len(live))
            if self.min_ready is not None:
                self.min_ready = min(self.min_ready, ready)

    def start_counting_ready(self):
        self.min_ready = 10**6

    def close(self):
        self._watch.close()


def test_rolling_update_keeps_six_available_and_never_exceeds_seven_pods(cluster: Cluster):
    cluster.apply(deployment(1))
    wait_for(lambda: deployment_complete(cluster, 6), 90, "6 replicas of version 1 available")
    census = PodCensus(cluster)
    try:
        wait_for(lambda: len(census.pods) == 6, 10, "the census to see the 6 pods")
        census.start_counting_ready()
        cluster.apply(deployment(2))
        cluster.cli("rollout", "status", "deployment/roll", "--timeout=120s", timeout=150)
        wait_for(lambda: deployment_complete(cluster, 6), 30, "the rollout to complete")
    finally:
        census.close()
    assert census.max_pods <= 7, f"saw {census.max_pods} live pods (maxSurge 1 allows 7)"
    assert census.min_ready >= 6, f"saw only {census.min_ready} ready pods (maxUnavailable 0 keeps 6)"
    pods = cluster.client.raw.list("pods", "default", label_selector="app=roll")["items"]
    assert {p["spec"]["containers"][0]["env"][0]["value"] for p in pods if not p["metadata"].get("deletionTimestamp")} == {"2"}
    history = cluster.cli("rollout", "history", "deployment/roll").stdout
    assert "1" in history and "2" in history


def test_rollout_undo_brings_back_the_previous_template(cluster: Cluster):
    cluster.apply(deployment(1))
    wait_for(lambda: deployment_complete(cluster, 6), 90, "version 1 available")
    cluster.apply(deployment(2))
    wait_for(lambda: deployment_complete(cluster, 6) and deployment_complete(cluster, 6)["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "2", 90, "version 2 rolled out")
    result = cluster.cli("rollout", "undo", "deployment/roll")
    assert "deployment.apps/roll rolled back" in result.stdout
    wait_for(lambda: deployment_complete(cluster, 6), 90, "the undo to complete")
    d = cluster.client.raw.get("deployments", "default", "roll")
    assert d["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "1"
    pods = [p for p in cluster.client.raw.list("pods", "default", label_selector="app=roll")["items"] if not p["metadata"].get("deletionTimestamp")]
    ip = next(p["status"]["podIP"] for p in pods if is_ready(p))
    fetched = cluster.exec(pods[0]["metadata"]["name"], "wget", "-q", "-O", "-", f"http://{ip}:8080/").stdout
    assert fetched.strip() == "v1"


def test_a_deleted_pod_or_a_killed_container_is_replaced(cluster: Cluster):
    cluster.apply(deployment(1, replicas=2))
    wait_for(lambda: deployment_complete(cluster, 2), 90, "2 replicas available")
    pods = cluster.client.raw.list("pods", "default", label_selector="app=roll")["items"]
    # Pods of the previous test's larger Deployment may still be terminating: pick a live one.
    victim = next(p for p in pods if not p["metadata"].get("deletionTimestamp"))["metadata"]["name"]
    cluster.cli("delete", "pod", victim)
    wait_for(lambda: (lambda names: victim not in names and len(names) == 2)(
        [p["metadata"]["name"] for p in cluster.client.raw.list("pods", "default", label_selector="app=roll")["items"]]),
        60, "a replacement for the deleted pod")
    wait_for(lambda: deployment_complete(cluster, 2), 60, "2 replicas available again")

    survivor = next(p for p in cluster.client.raw.list("pods", "default", label_selector="app=roll")["items"]
                    if not p["metadata"].get("deletionTimestamp"))["metadata"]["name"]
    pid = cluster.inspect(survivor)["containers"][0]["pid"]
    os.kill(pid, signal.SIGKILL)
    pod = cluster.wait_pod(survivor, lambda p: p["status"]["containerStatuses"][0]["restartCount"] >= 1, "the killed container to restart")
    assert pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 137
    wait_for(lambda: deployment_complete(cluster, 2), 60, "2 replicas available after the kill")


def pod_links(cluster: Cluster) -> list[str]:
    """Host veth ends of this cluster's roll-* pods, found by their ifalias."""
    links = []
    for link in os.listdir("/sys/class/net"):
        try:
            with open(f"/sys/class/net/{link}/ifalias") as file:
                alias = file.read()
        except OSError:
            continue
        if alias.startswith(f"minikube-py/{cluster.name}/default/roll-"):
            links.append(link)
    return links


def test_deleting_the_deployment_leaves_no_replicaset_pod_or_host_resource(cluster: Cluster):
    cluster.apply(deployment(1, replicas=3))
    wait_for(lambda: deployment_complete(cluster, 3), 90, "3 replicas available")
    assert len(pod_links(cluster)) >= 3
    cluster.cli("delete", "deployment", "roll", timeout=90)
    wait_for(lambda: not cluster.client.raw.list("replicasets", "default", label_selector="app=roll")["items"], 60, "no ReplicaSet left")
    wait_for(lambda: not cluster.client.raw.list("pods", "default", label_selector="app=roll")["items"], 60, "no pod left")

    wait_for(lambda: not pod_links(cluster), 30, "the pods' veths to be removed")
