"""Streams through the API, measured from the real clients: exec round trips, exec and port-forward
throughput, kubectl and our CLI side by side in one run.

Measures, on a private cluster with a TLS port (kubectl goes through it, our CLI through the unix
socket, as each does by default): the p50 and p90 of `exec POD -- true` (the whole command: process
start, handshake, the command, the exit status); exec throughput, `head -c N /dev/zero` in the pod
read through stdout; port-forward throughput, one HTTP download of N bytes from busybox httpd in
the pod through a forwarded local port; and, for exec throughput, the API server's (the daemon's)
CPU time per 100 MB, which a loaded machine does not distort as it does MB/s. Run as root from
the repository root:
`python -m benchmarks.streams [--runs 20] [--megabytes 100]`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

from benchmarks.procfs import cpu_seconds_of
from benchmarks.statistics import percentile
from harness.cluster import PrivateCluster, wait_for

PODS = """
apiVersion: v1
kind: Pod
metadata:
  name: bench-box
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: busybox
      command: ["sleep", "3600"]
---
apiVersion: v1
kind: Pod
metadata:
  name: bench-web
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: busybox
      command: ["sh", "-c", "mkdir /www && head -c {size} /dev/zero > /www/big && exec httpd -f -p 8080 -h /www"]
"""


def clients(cluster: PrivateCluster) -> dict[str, list[str]]:
    kubectl = shutil.which("kubectl")
    ours = [sys.executable, "-m", "minikube_py"]
    return {name: argv for name, argv in (("kubectl", [kubectl] if kubectl else None), ("minikube-py", ours)) if argv}


def exec_round_trips(argv: list[str], env: dict[str, str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([*argv, "exec", "bench-box", "--", "true"], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def exec_throughput(argv: list[str], env: dict[str, str], size: int) -> float:
    """MB/s of `head -c size /dev/zero` through exec's stdout (bytes counted by the reader)."""
    started = time.perf_counter()
    process = subprocess.Popen([*argv, "exec", "bench-box", "--", "head", "-c", str(size), "/dev/zero"], env=env,
                               stdout=subprocess.PIPE)
    assert process.stdout is not None
    received = 0
    while chunk := process.stdout.read(1 << 20):
        received += len(chunk)
    process.wait()
    elapsed = time.perf_counter() - started
    if received != size:
        raise RuntimeError(f"exec delivered {received} of {size} bytes")
    return size / elapsed / 1e6


def port_forward_throughput(argv: list[str], env: dict[str, str], size: int) -> float:
    target = "pod/bench-web" if argv[0].endswith("kubectl") else "bench-web"
    process = subprocess.Popen([*argv, "port-forward", target, ":8080"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        match = re.search(r"127\.0\.0\.1:(\d+)", process.stdout.readline())
        if match is None:
            raise RuntimeError("port-forward did not say where it listens")
        started = time.perf_counter()
        received = 0
        with urllib.request.urlopen(f"http://127.0.0.1:{match.group(1)}/big", timeout=120) as response:
            while chunk := response.read(1 << 20):
                received += len(chunk)
        elapsed = time.perf_counter() - started
    finally:
        process.terminate()
        process.wait()
    if received != size:
        raise RuntimeError(f"port-forward delivered {received} of {size} bytes")
    return size / elapsed / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.streams", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="exec round trips per client (default 20)")
    parser.add_argument("--megabytes", type=int, default=100, help="bytes moved per throughput run, in MB")
    options = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("python -m benchmarks.streams: needs root (it runs real pods)", file=sys.stderr)
        return 2
    size = options.megabytes * 1_000_000
    cluster = PrivateCluster(name="benchstrm")
    from tests.e2e.cluster import free_port

    cluster.start(port=free_port())
    try:
        cluster.cli("apply", "-f", "-", input=PODS.replace("{size}", str(size)))
        for name in ("bench-box", "bench-web"):
            wait_for(lambda name=name: (cluster.client.raw.get("pods", "default", name).get("status") or {})
                     .get("phase") == "Running" or None, 60, f"{name} running")
        with open(os.path.join(cluster.home, "daemon.pid")) as file:
            daemon = int(file.read().split()[0])
        rows = []
        for name, client in clients(cluster).items():
            times = exec_round_trips(client, cluster.env, options.runs)
            cpu_before = cpu_seconds_of(daemon)
            exec_rate = exec_throughput(client, cluster.env, size)
            exec_cpu = (cpu_seconds_of(daemon) - cpu_before) * 100 / options.megabytes
            rows.append((name, percentile(times, 0.5) * 1000, percentile(times, 0.9) * 1000,
                         exec_rate, exec_cpu, port_forward_throughput(client, cluster.env, size)))
    finally:
        cluster.stop()
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(f"| client | exec -- true p50 (ms) | p90 (ms) | exec stdout MB/s ({options.megabytes} MB) | "
          f"API server CPU s per 100 MB of exec output | port-forward MB/s ({options.megabytes} MB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, p50, p90, exec_rate, exec_cpu, forward_rate in rows:
        print(f"| {name} | {p50:.0f} | {p90:.0f} | {exec_rate:.0f} | {exec_cpu:.2f} | {forward_rate:.0f} |")
    if len(rows) == 2:
        print(f"\nkubectl exec p50 / minikube-py exec p50 = {rows[0][1] / rows[1][1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
