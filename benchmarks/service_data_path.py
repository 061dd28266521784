"""What a pod sees of Services and cluster DNS, measured from inside a pod (root needed).

Starts a cluster of its own (`harness.cluster.PrivateCluster`), a busybox httpd pod serving a
file behind a Service, and a client pod. The measuring code runs in the client pod's network
namespace (`nsenter --net` on its pause process, this Python), so every packet takes the pod's
path: its veth, the bridge, the service proxy's table.

- DNS: UDP queries for the Service's name to the pod's nameserver (the cluster bridge's address),
  one at a time (latency p50/p99; repeated questions get the server's kept answer), then the same
  name in new capitals each time (an answer built from the caches), then `--dns-clients` sockets
  each keeping 8 queries in flight for 3 s (queries answered per second).
- ClusterIP throughput: HTTP downloads of the same file through the Service's ClusterIP and
  straight to the pod's IP, alternating, `--transfers` of each; the median MB/s of each side.

Run from the repository root: `python3 -m benchmarks.service_data_path [--megabytes 256]`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

from harness.cluster import PrivateCluster, random_suffix, wait_for

MANIFEST = """
apiVersion: v1
kind: Pod
metadata:
  name: bulk
  labels:
    app: bulk
spec:
  terminationGracePeriodSeconds: 0
  containers:
    - name: httpd
      image: busybox
      command: ["sh", "-c", "mkdir -p /www && dd if=/dev/zero of=/www/big bs=1M count={megabytes} 2>/dev/null && touch /www/ready && exec httpd -f -p 8080 -h /www"]
      readinessProbe:
        exec:
          command: ["test", "-e", "/www/ready"]
        periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: bulk
spec:
  selector:
    app: bulk
  ports:
    - port: 80
      targetPort: 8080
---
apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  terminationGracePeriodSeconds: 0
  containers:
    - name: main
      image: busybox
      command: ["sleep", "3600"]
"""

# Runs in the client pod's network namespace; prints one JSON document.
IN_POD = r'''
import json, socket, sys, time, urllib.request
from dnslib import DNSRecord
task = sys.argv[1]
if task == "dns":
    server, name, clients = sys.argv[2], sys.argv[3], int(sys.argv[4])
    question = DNSRecord.question(name).pack()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((server, 53))
    sock.settimeout(2)
    latencies = []
    for _ in range(2000):
        started = time.perf_counter()
        sock.send(question)
        sock.recv(4096)
        latencies.append(time.perf_counter() - started)
    sockets = []
    for _ in range(clients):
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.connect((server, 53))
        client.setblocking(False)
        sockets.append(client)
    import selectors
    selector = selectors.DefaultSelector()
    for client in sockets:
        selector.register(client, selectors.EVENT_READ)
        for _ in range(8):
            client.send(question)
    answered, lost = 0, 0
    deadline = time.perf_counter() + 3.0
    while time.perf_counter() < deadline:
        events = selector.select(timeout=0.5)
        if not events:
            lost += 1
            for client in sockets:  # a dropped query: put one back in flight per socket
                client.send(question)
        for key, _ in events:
            try:
                key.fileobj.recv(4096)
            except BlockingIOError:
                continue
            answered += 1
            key.fileobj.send(question)
    # Answers are kept by the query's bytes: the same name in a new mix of capitals each time
    # (DNS names are case-insensitive) is answered from the caches, not from a kept answer.
    import random
    fresh = []
    for _ in range(1000):
        varied = "".join(letter.upper() if random.random() < 0.5 else letter for letter in name)
        started = time.perf_counter()
        sock.send(DNSRecord.question(varied).pack())
        sock.recv(4096)
        fresh.append(time.perf_counter() - started)
    print(json.dumps({"latencies": latencies, "fresh": fresh, "answered": answered, "seconds": 3.0, "stalls": lost}))
else:
    urls = sys.argv[2:]
    results = {}
    for url in urls:
        started = time.perf_counter()
        size = 0
        with urllib.request.urlopen(url, timeout=60) as response:
            while True:
                chunk = response.read(1 << 20)
                if not chunk:
                    break
                size += len(chunk)
        results.setdefault(url, []).append(size / (time.perf_counter() - started) / 1e6)
    print(json.dumps(results))
'''


class DataPathCluster(PrivateCluster):
    def __init__(self) -> None:
        super().__init__(name=f"benchdp{random_suffix(3)}", pod_cidr=f"10.24{random.randint(0, 9)}.{random.randint(0, 255)}.0/24")


def in_pod(cluster: PrivateCluster, pod: str, *args: str) -> dict:
    document = json.loads(cluster.cli("inspect", "pod", pod, "-o", "json").stdout)
    pause_pid = document["pause"]["pid"]
    result = subprocess.run(["nsenter", f"--net=/proc/{pause_pid}/ns/net", sys.executable, "-c", IN_POD, *args],
                            capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"the in-pod measurement failed: {result.stderr}")
    return json.loads(result.stdout)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run(megabytes: int, transfers: int, dns_clients: int) -> dict:
    cluster = DataPathCluster().start()
    try:
        cluster.cli("apply", "-f", "-", input=MANIFEST.replace("{megabytes}", str(megabytes)))

        def ready() -> dict | None:
            endpoints = cluster.client.raw.get("endpoints", "default", "bulk")
            addresses = [address["ip"] for subset in endpoints.get("subsets") or [] for address in subset.get("addresses") or []]
            client = cluster.client.raw.get("pods", "default", "client")
            running = (client.get("status") or {}).get("phase") == "Running"
            return {"pod_ip": addresses[0]} if addresses and running else None

        pod_ip = wait_for(ready, 120, "the bulk pod ready and the client running")["pod_ip"]
        cluster_ip = cluster.client.raw.get("services", "default", "bulk")["spec"]["clusterIP"]
        nameserver = str(next(__import__("ipaddress").ip_network(cluster.pod_cidr).hosts()))
        dns = in_pod(cluster, "client", "dns", nameserver, "bulk.default.svc.cluster.local", str(dns_clients))
        urls = []
        for _ in range(transfers):
            urls += [f"http://{cluster_ip}/big", f"http://{pod_ip}:8080/big"]
        speeds = in_pod(cluster, "client", "transfer", *urls)
        return {
            "dns_p50_ms": 1000 * percentile(dns["latencies"], 0.5),
            "dns_p99_ms": 1000 * percentile(dns["latencies"], 0.99),
            "dns_queries_per_second": dns["answered"] / dns["seconds"],
            "dns_fresh_p50_ms": 1000 * percentile(dns["fresh"], 0.5),
            "dns_fresh_p99_ms": 1000 * percentile(dns["fresh"], 0.99),
            "cluster_ip_mb_per_second": statistics.median(speeds[f"http://{cluster_ip}/big"]),
            "pod_ip_mb_per_second": statistics.median(speeds[f"http://{pod_ip}:8080/big"]),
        }
    finally:
        leftovers = cluster.stop()
        if leftovers:
            print(f"warning: the cluster left {leftovers}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m benchmarks.service_data_path", description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=256, help="size of the file transferred")
    parser.add_argument("--transfers", type=int, default=5, help="transfers through each path")
    parser.add_argument("--dns-clients", type=int, default=4, help="sockets asking at once for the throughput")
    arguments = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("python3 -m benchmarks.service_data_path: needs root (it runs a cluster)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    results = run(arguments.megabytes, arguments.transfers, arguments.dns_clients)
    print(f"DNS from a pod (UDP, one at a time): p50 {results['dns_p50_ms']:.2f} ms, p99 {results['dns_p99_ms']:.2f} ms")
    print(f"DNS from a pod, each query new (not a kept answer): p50 {results['dns_fresh_p50_ms']:.2f} ms, "
          f"p99 {results['dns_fresh_p99_ms']:.2f} ms")
    print(f"DNS from a pod ({arguments.dns_clients} sockets, 8 in flight each): "
          f"{results['dns_queries_per_second']:.0f} queries/s")
    ratio = results["cluster_ip_mb_per_second"] / results["pod_ip_mb_per_second"]
    print(f"bulk transfer of {arguments.megabytes} MB, median of {arguments.transfers}: ClusterIP "
          f"{results['cluster_ip_mb_per_second']:.0f} MB/s, pod IP {results['pod_ip_mb_per_second']:.0f} MB/s "
          f"(ratio {ratio:.2f})")
    print(f"(run took {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
