"""Server-side apply and dry run through the HTTP API, on this machine.

Issue 12's targets: server-side apply of 100 Deployments in at most 2 s, and a dry run that costs
no store write. One API server (sqlite file store, as the daemon has it) serves a unix socket in
this process; one keep-alive client sends, in one run, side by side:
- 100 Deployments created by POST (the reference: no apply merge, no conflict check);
- the same 100 server-side applied (`PATCH application/apply-patch+yaml`, fieldManager=bench)
  into a fresh namespace: creates;
- all 100 applied again with a new image: updates, each merge, ownership and conflict check;
- all 100 applied again unchanged: no-ops, which write nothing;
- all 100 applied with `dryRun=All`, and 100 dry-run creates and deletes.
The store is wrapped to count writes; the dry runs and the unchanged apply must count 0.
Run from the repository root: `python -m benchmarks.server_side_apply [--objects N] [--rounds R]`
(no root needed).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from minikube_py.apiserver.registry import Registry
from minikube_py.apiserver.server import ApiHttpServer
from minikube_py.client.transport import UnixHTTPConnection
from minikube_py.store import Store

APPLY = "application/apply-patch+yaml"
STORE_WRITES = ("create", "update", "delete", "allocate", "release")


class CountingStore:
    """The real store, counting the writes made through it."""

    def __init__(self, store):
        self._store = store
        self.writes = 0

    def __getattr__(self, name):
        attribute = getattr(self._store, name)
        if name not in STORE_WRITES:
            return attribute

        def counted(*args, **kwargs):
            self.writes += 1
            return attribute(*args, **kwargs)

        return counted


def deployment(name: str, namespace: str, image: str = "busybox:1") -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace,
                                                                      "labels": labels},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "web", "image": image,
                                                           "command": ["httpd", "-f", "-p", "8080"],
                                                           "ports": [{"containerPort": 8080}],
                                                           "env": [{"name": "MODE", "value": "bench"}]}]}}}}


class Client:
    def __init__(self, socket_path: str):
        self.connection = UnixHTTPConnection(socket_path, timeout=60)

    def request(self, method: str, path: str, body: dict | None = None, content_type: str = "application/json") -> int:
        data = json.dumps(body).encode() if body is not None else b""
        self.connection.request(method, path, data, {"Content-Type": content_type})
        response = self.connection.getresponse()
        answer = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {answer[:300]!r}")
        return response.status


def timed(action, count: int) -> float:
    started = time.perf_counter()
    for index in range(count):
        action(index)
    return time.perf_counter() - started


def run_round(client: Client, counting: CountingStore, count: int, round_number: int) -> dict:
    figures: dict[str, float] = {}

    def collection(namespace: str) -> str:
        return f"/apis/apps/v1/namespaces/{namespace}/deployments"

    def apply_path(namespace: str, name: str, extra: str = "") -> str:
        return f"{collection(namespace)}/{name}?fieldManager=bench{extra}"

    posted, applied = f"posted-{round_number}", f"applied-{round_number}"
    for namespace in (posted, applied):
        client.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": namespace}})
    figures["post_create_s"] = timed(
        lambda index: client.request("POST", collection(posted), deployment(f"d{index}", posted)), count)
    figures["apply_create_s"] = timed(
        lambda index: client.request("PATCH", apply_path(applied, f"d{index}"),
                                     deployment(f"d{index}", applied), APPLY), count)
    figures["apply_update_s"] = timed(
        lambda index: client.request("PATCH", apply_path(applied, f"d{index}"),
                                     deployment(f"d{index}", applied, "busybox:2"), APPLY), count)
    before = counting.writes
    figures["apply_unchanged_s"] = timed(
        lambda index: client.request("PATCH", apply_path(applied, f"d{index}"),
                                     deployment(f"d{index}", applied, "busybox:2"), APPLY), count)
    figures["apply_unchanged_writes"] = counting.writes - before
    before = counting.writes
    figures["apply_dry_run_s"] = timed(
        lambda index: client.request("PATCH", apply_path(applied, f"d{index}", "&dryRun=All"),
                                     deployment(f"d{index}", applied, "busybox:3"), APPLY), count)
    figures["create_dry_run_s"] = timed(
        lambda index: client.request("POST", collection(applied) + "?dryRun=All",
                                     deployment(f"new{index}", applied)), count)
    figures["delete_dry_run_s"] = timed(
        lambda index: client.request("DELETE", f"{collection(applied)}/d{index}?dryRun=All"), count)
    figures["dry_run_writes"] = counting.writes - before
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=100, help="Deployments per measurement (default 100)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each in fresh namespaces (default 3)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        store = Store(os.path.join(directory, "bench.db"))
        counting = CountingStore(store)
        server = ApiHttpServer(Registry(counting), os.path.join(directory, "api.sock"))
        server.start()
        try:
            client = Client(server.socket_path)
            rounds = [run_round(client, counting, options.objects, number) for number in range(options.rounds)]
        finally:
            server.stop()
            store.close()
    print(f"{options.objects} Deployments per figure, {options.rounds} rounds (load average "
          f"{os.getloadavg()[0]:.1f}); seconds per round:")
    for key in rounds[0]:
        values = [figures[key] for figures in rounds]
        shown = ", ".join(f"{value:.3f}" if key.endswith("_s") else f"{value:.0f}" for value in values)
        print(f"  {key:24} {shown}")
    best_apply = min(figures["apply_create_s"] for figures in rounds)
    worst_writes = max(figures["dry_run_writes"] + figures["apply_unchanged_writes"] for figures in rounds)
    print(f"server-side apply of {options.objects} Deployments (create), best round: {best_apply:.2f} s "
          f"(target <= 2 s: {'met' if best_apply <= 2 else 'NOT met'})")
    print(f"store writes by dry runs and unchanged applies: {worst_writes} (target 0: "
          f"{'met' if worst_writes == 0 else 'NOT met'})")


if __name__ == "__main__":
    main()
