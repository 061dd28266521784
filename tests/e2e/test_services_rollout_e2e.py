"""The headline of Services: a client on the host keeps requesting through a ClusterIP while a
Deployment of 10 replicas rolls (maxSurge 1, maxUnavailable 0, a readiness probe), and the
requests that fail are counted.

The container stops as a real server does when told to (`trap TERM`), which opens the race this
module is about: when a pod is deleted, the endpoint controllers take it out of the EndpointSlice
and the service proxy out of the table while, at the same moment, the node agent sends it SIGTERM.
Without a `preStop` hook the server may be gone before the table stops sending it new
connections: those fail (refused, reset, or unreachable once the pod's address is gone). With
`preStop: sleep` the server keeps answering until the table has moved on, so nothing fails.
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass, field

from tests.e2e.cluster import Cluster, wait_for

REPLICAS = 10


def application(name: str, pre_stop_seconds: int | None) -> str:
    lifecycle = f"""
          lifecycle:
            preStop:
              sleep:
                seconds: {pre_stop_seconds}""" if pre_stop_seconds else ""
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {REPLICAS}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
        - name: httpd
          image: busybox
          command: ["sh", "-c", "trap 'exit 0' TERM; mkdir -p /www && hostname > /www/index.html && httpd -f -p 8080 -h /www & wait"]
          ports:
            - containerPort: 8080
          readinessProbe:
            httpGet:
              path: /
              port: 8080
            periodSeconds: 1{lifecycle}
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector:
    app: {name}
  ports:
    - port: 80
      targetPort: 8080
"""


@dataclass
class ClientLoop:
    """Requests http://<ClusterIP>/ from the host, one new connection each, until stopped."""

    address: str
    successes: int = 0
    failures: list[str] = field(default_factory=list)  # each failure's kind
    answered_by: set[str] = field(default_factory=set)
    wrong_answers: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self._stop.is_set():
            connection = http.client.HTTPConnection(self.address, 80, timeout=5)
            try:
                connection.request("GET", "/")
                response = connection.getresponse()
                body = response.read().decode().strip()
                if response.status != 200 or not body:
                    self.wrong_answers.append(f"{response.status} {body!r}")
                else:
                    self.successes += 1
                    self.answered_by.add(body)
            except OSError as error:
                self.failures.append(type(error).__name__ + (f" ({error.errno})" if error.errno else ""))
            except http.client.HTTPException as error:
                self.failures.append(type(error).__name__)
            finally:
                connection.close()

    def __enter__(self) -> "ClientLoop":
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def ready_endpoints(cluster: Cluster, name: str) -> int:
    endpoints = cluster.client.raw.get("endpoints", "default", name)
    return sum(len(subset.get("addresses") or []) for subset in endpoints.get("subsets") or [])


def roll(cluster: Cluster, name: str, pre_stop_seconds: int | None) -> ClientLoop:
    """Apply the application, wait for 10 ready endpoints, then roll it under the client loop."""
    cluster.apply(application(name, pre_stop_seconds))
    wait_for(lambda: ready_endpoints(cluster, name) == REPLICAS or None, 120, f"{REPLICAS} ready endpoints of {name}")
    cluster_ip = cluster.client.raw.get("services", "default", name)["spec"]["clusterIP"]
    before = {pod["metadata"]["name"] for pod in cluster.client.raw.list("pods", "default", label_selector=f"app={name}")["items"]}
    with ClientLoop(cluster_ip) as client:
        wait_for(lambda: client.successes >= 20 or None, 30, f"the client loop getting answers through {cluster_ip}")
        cluster.cli("rollout", "restart", f"deployment/{name}")
        cluster.cli("rollout", "status", f"deployment/{name}", "--timeout", "180s", timeout=200)
        # Until every old pod is gone: their termination is where requests can fail.
        wait_for(lambda: not before & {pod["metadata"]["name"] for pod in cluster.client.raw.list(
            "pods", "default", label_selector=f"app={name}")["items"]} or None, 60, f"the old pods of {name} gone")
        served = client.successes
        wait_for(lambda: client.successes >= served + 20 or None, 30, "answers after the rollout")
    assert client.wrong_answers == [], client.wrong_answers
    assert client.answered_by - before, "no new pod ever answered"
    print(f"\n{name}: {client.successes} requests answered, {len(client.failures)} failed: "
          f"{sorted(set(client.failures))}")
    return client


def test_without_pre_stop_only_connections_to_terminating_pods_fail(cluster: Cluster):
    """What fails without preStop, and only that: connections the table still sent to a pod whose
    server had already stopped (refused or reset, or unreachable once its address was gone), or was
    stopped while it was sending its answer (an incomplete read).
    Every request that got an HTTP answer got the right one; how many fail depends on the race."""
    client = roll(cluster, "plain", pre_stop_seconds=None)
    allowed = ("ConnectionRefusedError", "ConnectionResetError", "RemoteDisconnected", "OSError (113)",
               "TimeoutError", "BrokenPipeError", "IncompleteRead")
    assert all(failure.startswith(allowed) for failure in client.failures), client.failures


def test_with_pre_stop_sleep_a_rolling_update_fails_no_request(cluster: Cluster):
    client = roll(cluster, "graceful", pre_stop_seconds=3)
    assert client.failures == [], f"{len(client.failures)} of {client.successes + len(client.failures)} failed"
