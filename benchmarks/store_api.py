"""Store and API throughput and watch latency, on this machine.

Measures: store writes/s (sqlite file, WAL, one object per transaction); pod creates/s through
the HTTP API with one keep-alive client, over the unix socket and, side by side, over the TLS
listener with a bearer token (the server runs in its own process, as the daemon does); watch latency p50/p99 from a write to its delivery, both to an in-process
store watcher and to an HTTP watch client. Run from the repository root:
`python -m benchmarks.store_api [--objects N]` (no root needed).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import threading
import time

from benchmarks.statistics import percentile
from minikube_py.apiserver import certificates
from minikube_py.apiserver.registry import Registry
from minikube_py.apiserver.server import ApiHttpServer, TlsConfig
from minikube_py.client import kubeconfig
from minikube_py.client.transport import HttpTransport
from minikube_py.store import Store


def pod(name: str, namespace: str = "default") -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}}


def store_writes_per_second(directory: str, count: int) -> float:
    with Store(os.path.join(directory, "store-bench.db")) as store:
        started = time.perf_counter()
        for index in range(count):
            store.create("pods", pod(f"p{index}"))
        return count / (time.perf_counter() - started)


def store_watch_latency(count: int) -> list[float]:
    """Seconds from the start of a write to the watcher thread holding the event."""
    with Store(":memory:") as store:
        watcher = store.watch("pods")
        received: list[float] = []
        done = threading.Event()

        def consume() -> None:
            for _ in range(count):
                watcher.next(timeout=10)
                received.append(time.perf_counter())
            done.set()

        threading.Thread(target=consume, daemon=True).start()
        sent = []
        for index in range(count):
            sent.append(time.perf_counter())
            store.create("pods", pod(f"w{index}"))
            while len(received) <= index and not done.is_set():
                time.sleep(0)  # one write in flight at a time, so queueing does not count
        done.wait(10)
        return [end - start for start, end in zip(sent, received, strict=False)]  # a write may not have come back


def serve(socket_path: str, ready, port=None, home: str | None = None) -> None:
    """The API server process; with `home`, also the TLS listener (its port put in `port`)."""
    store = Store(":memory:")
    tls = TlsConfig.of(certificates.ensure_credentials(home, "bench", ())) if home else None
    server = ApiHttpServer(Registry(store), socket_path, port=0 if tls else None, tls=tls)
    server.start()
    if port is not None:
        port.value = server.port
    ready.set()
    threading.Event().wait()


def api_creates_per_second(transport: HttpTransport, count: int) -> float:
    return count_creates(transport, "default", count)


def count_creates(transport: HttpTransport, namespace: str, count: int) -> float:
    started = time.perf_counter()
    for index in range(count):
        transport.create("pods", namespace, pod(f"api{index}", namespace))
    return count / (time.perf_counter() - started)


def http_watch_latency(transport: HttpTransport, count: int) -> list[float]:
    watch = transport.watch("pods", "default", resource_version=transport.list("pods", "kube-system")[
        "metadata"]["resourceVersion"])
    latencies = []
    for index in range(count):
        started = time.perf_counter()
        transport.create("pods", "default", pod(f"lat{index}"))
        event = watch.next(timeout=10)
        assert event is not None and event["object"]["metadata"]["name"] == f"lat{index}"
        latencies.append(time.perf_counter() - started)
    watch.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=5000)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        print(f"store writes/s (file, WAL):         {store_writes_per_second(directory, arguments.objects):8.0f}")
        latencies = store_watch_latency(1000)
        print(f"store watch latency p50 / p99 (ms): {percentile(latencies, 0.5) * 1e3:8.3f} / "
              f"{percentile(latencies, 0.99) * 1e3:.3f}")
        socket_path = os.path.join(directory, "api.sock")
        ready, port = multiprocessing.Event(), multiprocessing.Value("i", 0)
        home = os.path.join(directory, "home")
        server = multiprocessing.Process(target=serve, args=(socket_path, ready, port, home), daemon=True)
        server.start()
        try:
            ready.wait(30)
            transport = HttpTransport(socket_path=socket_path)
            print(f"API pod creates/s (unix socket):    {api_creates_per_second(transport, arguments.objects // 2):8.0f}")
            paths = certificates.Paths(home)
            with open(paths.ca_certificate, "rb") as file:
                tls = kubeconfig.transport_for(kubeconfig.build(
                    "bench", f"https://127.0.0.1:{port.value}", file.read(),
                    certificates.token_of(paths, certificates.ADMIN_USER)))
            tls.create("namespaces", None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tls"}})
            tls_rate = count_creates(tls, "tls", arguments.objects // 2)
            print(f"API pod creates/s (TLS + token):    {tls_rate:8.0f}")
            latencies = http_watch_latency(transport, 500)
            print(f"HTTP create->watch event p50 / p99 (ms): {percentile(latencies, 0.5) * 1e3:.3f} / "
                  f"{percentile(latencies, 0.99) * 1e3:.3f}")
        finally:
            server.terminate()
            server.join()


if __name__ == "__main__":
    main()
