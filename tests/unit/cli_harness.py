"""A live API for CLI tests: a real Registry behind ApiHttpServer on a temporary unix socket.

The `live` fixture (exported through tests/unit/conftest.py) runs `minikube-py` commands against it
in-process and captures what they print.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass

import pytest

from minikube_py.apiserver.server import ApiHttpServer
from minikube_py.apiserver.registry import Registry
from minikube_py.cli.main import main
from minikube_py.store import Store


@dataclass
class Result:
    code: int
    out: str
    err: str


class LiveCluster:
    def __init__(self, capsys):
        # A short directory: unix socket paths are limited to 108 bytes.
        self.home = tempfile.mkdtemp(prefix="mkpy-cli-")
        self.registry = Registry(Store(":memory:"))
        self.server = ApiHttpServer(self.registry, socket_path=os.path.join(self.home, "api.sock"))
        self.server.start()
        self.capsys = capsys

    def run(self, *argv: str) -> Result:
        self.capsys.readouterr()
        code = main(["--home", self.home, *argv])
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def write(self, name: str, text: str) -> str:
        path = os.path.join(self.home, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as file:
            file.write(text)
        return path

    def close(self) -> None:
        self.server.stop()
        shutil.rmtree(self.home, ignore_errors=True)

    # -- objects -----------------------------------------------------------------------------

    def pod(self, name: str, labels: dict | None = None, namespace: str = "default", status: dict | None = None,
            node: str | None = None, containers: int = 1) -> dict:
        spec = {"containers": [{"name": f"c{index}", "image": "busybox"} for index in range(containers)]}
        self.registry.create("pods", namespace, {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}}, "spec": spec})
        if node:
            self.registry.bind(namespace, name, node)
        if status:
            self.registry.patch_status("pods", namespace, name, {"status": status})
        return self.registry.get("pods", namespace, name)

    def deployment(self, name: str = "web", replicas: int = 3, image: str = "busybox") -> dict:
        return self.registry.create("deployments", "default", {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": name, "image": image}]}}}})

    def replica_set(self, name: str, owner: dict | None = None, replicas: int = 3, image: str = "busybox",
                    revision: str | None = None, template_hash: str = "abc") -> dict:
        app = owner["metadata"]["name"] if owner else "web"
        metadata = {"name": name, "namespace": "default", "labels": {"app": app, "pod-template-hash": template_hash}}
        if owner:
            metadata["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": app,
                                            "uid": owner["metadata"]["uid"], "controller": True}]
        if revision:
            metadata["annotations"] = {"deployment.kubernetes.io/revision": revision}
        return self.registry.create("replicasets", "default", {
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": metadata,
            "spec": {"replicas": replicas,
                     "selector": {"matchLabels": {"app": app, "pod-template-hash": template_hash}},
                     "template": {"metadata": {"labels": {"app": app, "pod-template-hash": template_hash}},
                                  "spec": {"containers": [{"name": app, "image": image}]}}}})

    def node(self, name: str = "node1") -> dict:
        self.registry.create("nodes", None, {"apiVersion": "v1", "kind": "Node",
                                             "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}})
        self.registry.patch_status("nodes", None, name, {"status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "addresses": [{"type": "InternalIP", "address": "192.168.1.5"}],
            "nodeInfo": {"kubeletVersion": "v0.1.0", "osImage": "Debian", "kernelVersion": "6.1",
                         "containerRuntimeVersion": "minikube-py://0.1.0"}}})
        return self.registry.get("nodes", None, name)

    def event(self, name: str, involved: dict, reason: str, message: str, seconds_ago: float = 0,
              event_type: str = "Normal") -> dict:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds_ago))
        return self.registry.create("events", involved["metadata"].get("namespace") or "default", {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": involved["metadata"].get("namespace") or "default"},
            "involvedObject": {"kind": involved["kind"], "name": involved["metadata"]["name"],
                               "namespace": involved["metadata"].get("namespace"),
                               "uid": involved["metadata"]["uid"]},
            "reason": reason, "message": message, "type": event_type, "count": 1,
            "firstTimestamp": when, "lastTimestamp": when, "source": {"component": "kubelet"}})


RUNNING = {"phase": "Running", "podIP": "10.244.0.7",
           "conditions": [{"type": "Ready", "status": "True"}],
           "containerStatuses": [{"name": "c0", "ready": True, "restartCount": 0, "image": "busybox",
                                  "imageID": "", "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}


@pytest.fixture
def live(capsys):
    cluster = LiveCluster(capsys)
    yield cluster
    cluster.close()
