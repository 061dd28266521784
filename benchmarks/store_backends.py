"""The store backends side by side in one run: sqlite, etcd with 1 member, etcd with 3 members.

Measures, for each: store writes/s with one writer (each create waits for its commit, and on etcd
for its change to come back through the mirror's watch, as the API server's writes do) and with 8
concurrent writers; watch latency p50/p99 from the start of a write to a watcher thread holding
the event (one write in flight at a time, so queueing does not count). Then pod creates/s through
the HTTP API, each API server a process of its own as the daemon is, with the same 8 client
threads (keep-alive, unix sockets) spread over the servers: one API server on sqlite, one on the
3-member etcd, and two on it (the highly available control plane). sqlite's file and etcd's
data directories are on the same disk (a temporary directory), so fsyncs cost the same; etcd
members run on loopback. The order of the backends rotates between rounds so none always goes
first. Run from the repository root (no root needed, `etcd` on the PATH):
`python -m benchmarks.store_backends [--writes N] [--rounds R] [--api-creates N]`.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import tempfile
import threading
import time
from collections import defaultdict
from typing import Callable

from benchmarks.statistics import percentile
from minikube_py.store import ObjectStore, Store
from minikube_py.store.etcd import EtcdStore
from tests.etcd_cluster import ETCD, ETCD_MISSING, EtcdCluster

CLIENTS = 8

WRITERS = 8
_clusters = itertools.count()


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}}


def writes_per_second(store: ObjectStore, count: int, writers: int) -> float:
    """Creates per second with `writers` threads sharing `count` creates."""
    prefix = f"w{next(_clusters)}-"

    def write(offset: int) -> None:
        for index in range(offset, count, writers):
            store.create("pods", pod(f"{prefix}{index}"))

    threads = [threading.Thread(target=write, args=(offset,)) for offset in range(writers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return count / (time.perf_counter() - started)


def watch_latencies(store: ObjectStore, count: int) -> list[float]:
    """Seconds from the start of a write to the watcher thread holding its event."""
    prefix = f"l{next(_clusters)}-"
    watcher = store.watch("pods")
    received: list[float] = []
    arrived = threading.Condition()

    def consume() -> None:
        for _ in range(count):
            if watcher.next(timeout=10) is None:
                return
            with arrived:
                received.append(time.perf_counter())
                arrived.notify()

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    sent = []
    for index in range(count):
        sent.append(time.perf_counter())
        store.create("pods", pod(f"{prefix}{index}"))
        with arrived:
            arrived.wait_for(lambda index=index: len(received) > index, timeout=10)
    watcher.close()
    return [end - start for start, end in zip(sent, received, strict=False)]


def measure(open_store: Callable[[], ObjectStore], writes: int) -> dict[str, float | list[float]]:
    with open_store() as store:  # type: ignore[attr-defined]
        return {"writes/s, 1 writer": writes_per_second(store, writes, 1),
                f"writes/s, {WRITERS} writers": writes_per_second(store, writes, WRITERS),
                "watch": watch_latencies(store, min(writes, 500))}


def serve_api(socket_path: str, store_spec: tuple, ready) -> None:
    """An API server process on `store_spec`: ("sqlite", path) or ("etcd", endpoints, cluster)."""
    from minikube_py.apiserver.registry import Registry
    from minikube_py.apiserver.server import ApiHttpServer

    store = Store(store_spec[1]) if store_spec[0] == "sqlite" else EtcdStore(list(store_spec[1]), store_spec[2])
    ApiHttpServer(Registry(store), socket_path).start()
    ready.set()
    threading.Event().wait()


def api_creates_per_second(directory: str, store_spec: tuple, servers: int, count: int) -> float:
    """Pod creates/s through `servers` API server processes on one store, CLIENTS threads in all."""
    from minikube_py.client.transport import HttpTransport

    run = next(_clusters)
    sockets = [os.path.join(directory, f"api-{run}-{index}.sock") for index in range(servers)]
    processes = []
    for socket_path in sockets:
        ready = multiprocessing.Event()
        process = multiprocessing.Process(target=serve_api, args=(socket_path, store_spec, ready), daemon=True)
        process.start()
        processes.append(process)
        if not ready.wait(300):
            raise RuntimeError(f"the API server on {store_spec[0]} did not start")
    try:
        per_client = count // CLIENTS

        def create(client: int) -> None:
            transport = HttpTransport(socket_path=sockets[client % servers])
            for index in range(per_client):
                transport.create("pods", "default", pod(f"api-{client}-{index}"))

        threads = [threading.Thread(target=create, args=(client,)) for client in range(CLIENTS)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return per_client * CLIENTS / (time.perf_counter() - started)
    finally:
        for process in processes:
            process.terminate()
            process.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=1000, help="creates per measurement (default 1000)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, the backends' order rotating (default 2)")
    parser.add_argument("--api-creates", type=int, default=2000, help="pods created through the API per setup "
                        "(default 2000; 0 skips the API measurement)")
    arguments = parser.parse_args()
    if ETCD is None:
        raise SystemExit(f"python -m benchmarks.store_backends: {ETCD_MISSING}")
    with tempfile.TemporaryDirectory() as directory, \
            EtcdCluster(1, name="bench1", in_memory=False) as single, \
            EtcdCluster(3, name="bench3", in_memory=False) as trio:
        backends: dict[str, Callable[[], ObjectStore]] = {
            "sqlite": lambda: Store(os.path.join(directory, f"state-{next(_clusters)}.db")),
            "etcd, 1 member": lambda: EtcdStore(single.endpoints, f"bench{next(_clusters)}"),
            "etcd, 3 members": lambda: EtcdStore(trio.endpoints, f"bench{next(_clusters)}"),
        }
        results: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        names = list(backends)
        setups = {"1 API server on sqlite": (("sqlite", os.path.join(directory, "api.db")), 1),
                  "1 API server on etcd, 3 members": (("etcd", tuple(trio.endpoints), "api1"), 1),
                  "2 API servers on etcd, 3 members": (("etcd", tuple(trio.endpoints), "api2"), 2)}
        api_rates: dict[str, list[float]] = defaultdict(list)
        for round_number in range(arguments.rounds):
            for name in names[round_number % len(names):] + names[:round_number % len(names)]:
                for figure, value in measure(backends[name], arguments.writes).items():
                    results[name][figure] += value if isinstance(value, list) else [value]
        print(f"{'':28}" + "".join(f"{name:>18}" for name in names))
        for figure in ("writes/s, 1 writer", f"writes/s, {WRITERS} writers"):
            print(f"{figure:28}" + "".join(f"{percentile(results[name][figure], 0.5):18.0f}" for name in names))
        for label, fraction in (("watch latency p50 (ms)", 0.5), ("watch latency p99 (ms)", 0.99)):
            print(f"{label:28}" + "".join(f"{percentile(results[name]['watch'], fraction) * 1e3:18.2f}" for name in names))
        for round_number in range(arguments.rounds if arguments.api_creates else 0):
            order = list(setups)
            for setup in order[round_number % len(order):] + order[:round_number % len(order)]:
                spec, servers = setups[setup]
                spec = spec[:2] + (f"{spec[2]}r{round_number}",) if spec[0] == "etcd" else (
                    "sqlite", os.path.join(directory, f"api-{round_number}.db"))
                api_rates[setup].append(api_creates_per_second(directory, spec, servers, arguments.api_creates))
    if api_rates:
        print(f"\nAPI pod creates/s, {CLIENTS} clients (median of {arguments.rounds} rounds):")
        for setup, rates in api_rates.items():
            print(f"  {setup:34}{percentile(rates, 0.5):8.0f}   (rounds: {', '.join(f'{rate:.0f}' for rate in rates)})")


if __name__ == "__main__":
    main()
