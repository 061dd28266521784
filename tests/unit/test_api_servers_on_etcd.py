"""Two API servers on one etcd store (issue 14.2): each serves every object the other wrote, and
an HTTP watch on each sees every change, in the same order, with the same resourceVersions."""

from __future__ import annotations

import threading
import time

from minikube_py.apiserver.registry import Registry
from minikube_py.apiserver.server import ApiHttpServer
from minikube_py.client.transport import HttpTransport
from minikube_py.clock import FakeClock


def config_map(name: str, value: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"},
            "data": {"value": value}}


def collect(watch, count: int, deadline: float) -> list[tuple]:
    """Up to `count` events of an HTTP watch, waiting until `deadline` (monotonic) at most."""
    events: list[tuple] = []
    while len(events) < count and (left := deadline - time.monotonic()) > 0:
        event = watch.next(timeout=left)
        if event is None:
            break
        events.append((event["type"], event["object"]["metadata"]["name"],
                       event["object"]["metadata"]["resourceVersion"], event["object"]["data"]["value"]))
    return events


def test_two_api_servers_on_one_etcd_serve_the_same_objects_and_watches(etcd_single, tmp_path):
    from minikube_py.store.etcd import EtcdStore

    name = f"api{abs(hash(tmp_path)) % 10**6}"
    stores = [EtcdStore(etcd_single.endpoints, name) for _ in range(2)]
    servers = [ApiHttpServer(Registry(store, FakeClock()), str(tmp_path / f"api-{index}.sock"))
               for index, store in enumerate(stores)]
    try:
        for server in servers:
            server.start()
        clients = [HttpTransport(socket_path=str(tmp_path / f"api-{index}.sock")) for index in range(2)]
        start = clients[0].list("configmaps", "default")["metadata"]["resourceVersion"]
        watches = [client.watch("configmaps", "default", resource_version=start) for client in clients]

        failures: list[BaseException] = []

        def write(client: HttpTransport, prefix: str) -> None:
            try:
                for index in range(15):
                    created = client.create("configmaps", "default", config_map(f"{prefix}{index}", "1"))
                    created["data"]["value"] = "2"
                    client.replace("configmaps", "default", created["metadata"]["name"], created)
            except BaseException as error:
                failures.append(error)
                raise

        writers = [threading.Thread(target=write, args=(client, prefix)) for client, prefix in zip(clients, "ab", strict=True)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        # A writer that failed (its thread ended with the error) leaves its events missing below:
        # say why here instead.
        assert not failures, failures
        # Each watch must see all 60 changes: wait for them with one deadline (a loaded machine
        # may deliver slowly; a lost event still fails here, naming what was seen).
        seen = [collect(watch, 60, deadline=time.monotonic() + 60) for watch in watches]
        for watch in watches:
            watch.close()
        assert len(seen[0]) == 60 and seen[0] == seen[1], seen
        assert [int(rv) for _, _, rv, _ in seen[0]] == sorted(int(rv) for _, _, rv, _ in seen[0])
        # Both servers have applied every change by now (their watches saw them all).
        listed = [client.list("configmaps", "default") for client in clients]
        assert listed[0]["items"] == listed[1]["items"] and len(listed[0]["items"]) == 30
        assert all(item["data"]["value"] == "2" for item in listed[0]["items"])
    finally:
        for server in servers:
            server.stop()
        for store in stores:
            store.close()
