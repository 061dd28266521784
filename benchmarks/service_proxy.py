"""How fast the service proxy programs the kernel, with the real nftables table (root needed).

Measures, with the daemon's `ServiceProxy` over an in-process API (a sqlite store in a temporary
directory, no pods):

- programming N Services x M endpoints: from the proxy's start (its informers list everything)
  to the one transaction that writes the whole table having returned;
- one more endpoint after that: from the EndpointSlice write to its transaction having returned
  (the rule is live in the kernel then: a transaction returns after the kernel committed it);
- endpoint changes (an endpoint turning ready, one Service at a time), p50/p99 of the same span,
  on the full table.

Run from the repository root: `python3 -m benchmarks.service_proxy [--services 1000] [--endpoints 10]
[--changes 100]`. The table is `ip minikube-py-bench-proxy`, removed at the end.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
import tempfile
import threading
import time

from benchmarks.statistics import percentile
from minikube_py.apiserver.registry import Registry
from minikube_py.client.api import ApiClient
from minikube_py.proxy.nftables import NftablesTable
from minikube_py.proxy.proxy import ServiceProxy
from minikube_py.store import Store

CLUSTER = "bench-proxy"
POD_CIDR = "10.240.0.0/13"  # room for 1000 x 10 distinct endpoint addresses


def endpoint_slice(service: str, addresses: list[str], ready: list[bool]) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service}-bench", "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [address], "nodeName": "bench",
                           "conditions": {"ready": state, "serving": state, "terminating": False}}
                          for address, state in zip(addresses, ready, strict=True)]}


class AppliedSignal:
    """Counts the proxy's transactions so a writer can wait for the next one."""

    def __init__(self) -> None:
        self.count = 0
        self.sync_seconds: list[float] = []  # each transaction's sync, from reading the caches to its return
        self.condition = threading.Condition()

    def __call__(self, seconds: float) -> None:
        with self.condition:
            self.count += 1
            self.sync_seconds.append(seconds)
            self.condition.notify_all()

    def wait_beyond(self, count: int, timeout: float = 30.0) -> None:
        with self.condition:
            if not self.condition.wait_for(lambda: self.count > count, timeout):
                raise TimeoutError("the service proxy wrote nothing within 30 s")


def run(services: int, endpoints: int, changes: int) -> dict[str, float]:
    hosts = ipaddress.ip_network(POD_CIDR).hosts()
    addresses = [[str(next(hosts)) for _ in range(endpoints + 1)] for _ in range(services)]
    with tempfile.TemporaryDirectory(prefix="proxy-bench-") as directory:
        store = Store(os.path.join(directory, "state.db"))
        registry = Registry(store, service_cidr="10.96.0.0/12")
        client = ApiClient.local(registry)
        for index in range(services):
            name = f"bench-{index}"
            registry.create("services", "default", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                                                    "spec": {"selector": {"app": name},
                                                             "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
            # The last address of each Service is an endpoint that is not ready yet.
            registry.create("endpointslices", "default",
                            endpoint_slice(name, addresses[index], [True] * endpoints + [False]))
        applied = AppliedSignal()
        proxy = ServiceProxy(client, CLUSTER, POD_CIDR, "bench", "192.0.2.1", on_applied=applied)
        results: dict[str, float] = {}
        try:
            started = time.perf_counter()
            proxy.run()
            applied.wait_beyond(0, timeout=120)
            results["program_seconds"] = time.perf_counter() - started

            def turn_ready(index: int) -> float:
                before = applied.count
                started = time.perf_counter()
                registry.replace("endpointslices", "default", f"bench-{index}-bench",
                                 endpoint_slice(f"bench-{index}", addresses[index], [True] * (endpoints + 1)))
                applied.wait_beyond(before)
                return time.perf_counter() - started

            results["one_more_endpoint_seconds"] = turn_ready(0)
            spans = [turn_ready(index) for index in range(1, min(changes, services - 1) + 1)]
            results["change_p50_seconds"] = percentile(spans, 0.5)
            results["change_p99_seconds"] = percentile(spans, 0.99)
            results["first_sync_seconds"] = applied.sync_seconds[0]
            results["change_sync_p50_seconds"] = percentile(applied.sync_seconds[2:], 0.5)
            listing = str(NftablesTable(proxy.table.table).listing())
            last = addresses[len(spans)][endpoints]
            if last not in listing:
                raise AssertionError(f"the last endpoint changed ({last}) is not in the kernel's table")
        finally:
            proxy.stop()
            store.close()
        return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m benchmarks.service_proxy", description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=10)
    parser.add_argument("--changes", type=int, default=100, help="endpoint changes timed for p50/p99")
    arguments = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("python3 -m benchmarks.service_proxy: needs root (it writes an nftables table)", file=sys.stderr)
        return 2
    results = run(arguments.services, arguments.endpoints, arguments.changes)
    print(f"{arguments.services} Services x {arguments.endpoints} endpoints programmed: "
          f"{results['program_seconds']:.2f} s (of which the sync, building and writing the table: "
          f"{results['first_sync_seconds']:.2f} s)")
    print(f"one more endpoint after that, write -> rule live: {1000 * results['one_more_endpoint_seconds']:.1f} ms")
    print(f"endpoint turning ready -> rule live ({arguments.changes} changes): "
          f"p50 {1000 * results['change_p50_seconds']:.1f} ms, p99 {1000 * results['change_p99_seconds']:.1f} ms "
          f"(the proxy's sync alone: p50 {1000 * results['change_sync_p50_seconds']:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
