"""Streams through the API, measured from the real clients: exec round trips, exec and port-forward
throughput, kubectl and our CLI side by side in one run.

Measures, on a private cluster with a TLS port (kubectl goes through it, our CLI through the unix
socket, as each does by default): each client's start-up (a command that reaches no server:
`kubectl version --client`, `minikube-py --help`) and `get pods`, p50; the p50 and p90 of
`exec POD -- true` (the whole command: process start, handshake, the command, the exit status); exec throughput, `cat` of an N-byte file in the
pod read through stdout, both over the whole command and over the transfer alone (first byte to
last: a Python CLI spends far longer starting than a Go one, and that is the round trip's figure,
not the stream's); port-forward throughput, one HTTP download of N bytes from busybox httpd in the
pod through a forwarded local port; and, for exec, the CPU time per 100 MB of the API server (the
daemon) and of the client process, which a loaded machine does not distort as it does MB/s. The
file is made once when the pod starts (busybox's `head -c` from /dev/zero writes 4 KiB at a time
and would be the slowest part of the pipe). Run as root from the repository root:
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
from dataclasses import dataclass

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
      command: ["sh", "-c", "head -c {size} /dev/zero > /big && touch /ready && exec sleep 3600"]
      readinessProbe:
        exec: {command: ["cat", "/ready"]}
        periodSeconds: 1
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


def ready(pod: dict) -> bool:
    return any(condition.get("type") == "Ready" and condition.get("status") == "True"
               for condition in (pod.get("status") or {}).get("conditions") or [])


def clients(cluster: PrivateCluster) -> dict[str, list[str]]:
    kubectl = shutil.which("kubectl")
    ours = [sys.executable, "-m", "minikube_py"]
    return {name: argv for name, argv in (("kubectl", [kubectl] if kubectl else None), ("minikube-py", ours)) if argv}


def exec_round_trips(argv: list[str], env: dict[str, str], runs: int) -> list[float]:
    return command_times([*argv, "exec", "bench-box", "--", "true"], env, runs)


def command_times(command: list[str], env: dict[str, str], runs: int) -> list[float]:
    """Wall times of `runs` runs of a whole client command (process start to exit)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def start_up_command(name: str, argv: list[str]) -> list[str]:
    """A command that only starts the client and exits, reaching no server: its start-up cost."""
    return [*argv, "version", "--client"] if name == "kubectl" else [*argv, "--help"]


@dataclass(frozen=True)
class ExecThroughput:
    whole_mb_s: float  # over the whole command
    transfer_mb_s: float  # from the first byte read to the last
    client_cpu_s: float  # the client process's user + system time per 100 MB


def exec_throughput(argv: list[str], env: dict[str, str], size: int) -> ExecThroughput:
    """`cat` of the pod's file through exec's stdout (bytes counted by the reader)."""
    started = time.perf_counter()
    process = subprocess.Popen([*argv, "exec", "bench-box", "--", "cat", "/big"], env=env, stdout=subprocess.PIPE)
    assert process.stdout is not None
    received = 0
    first_byte = None
    while chunk := process.stdout.read1(1 << 20):
        if first_byte is None:
            first_byte = time.perf_counter()
        received += len(chunk)
    last_byte = time.perf_counter()
    _, _, usage = os.wait4(process.pid, 0)
    process.returncode = 0
    elapsed = time.perf_counter() - started
    if received != size:
        raise RuntimeError(f"exec delivered {received} of {size} bytes")
    per_100_mb = 100e6 / size
    return ExecThroughput(size / elapsed / 1e6, size / (last_byte - (first_byte or started)) / 1e6,
                          (usage.ru_utime + usage.ru_stime) * per_100_mb)


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
    parser.add_argument("--repeats", type=int, default=3,
                        help="throughput runs per client and kind; the best is shown (default 3)")
    options = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("python -m benchmarks.streams: needs root (it runs real pods)", file=sys.stderr)
        return 2
    size = options.megabytes * 1_000_000
    cluster = PrivateCluster(name="benchstrm")
    from tests.e2e.cluster import free_port

    cluster.start(port=free_port())
    loads = [os.getloadavg()[0]]
    try:
        cluster.cli("apply", "-f", "-", input=PODS.replace("{size}", str(size)))
        for name in ("bench-box", "bench-web"):
            wait_for(lambda name=name: ready(cluster.client.raw.get("pods", "default", name)) or None, 120,
                     f"{name} ready (its file written)")
        with open(os.path.join(cluster.home, "daemon.pid")) as file:
            daemon = int(file.read().split()[0])
        rows = []
        for name, client in clients(cluster).items():
            times = exec_round_trips(client, cluster.env, options.runs)
            listing = command_times([*client, "get", "pods"], cluster.env, options.runs)
            start_up = command_times(start_up_command(name, client), cluster.env, options.runs)
            best: ExecThroughput | None = None
            server_cpu = []
            for _ in range(options.repeats):
                cpu_before = cpu_seconds_of(daemon)
                measured = exec_throughput(client, cluster.env, size)
                server_cpu.append((cpu_seconds_of(daemon) - cpu_before) * 100 / options.megabytes)
                if best is None or measured.transfer_mb_s > best.transfer_mb_s:
                    best = measured
            assert best is not None
            forward = max(port_forward_throughput(client, cluster.env, size) for _ in range(options.repeats))
            loads.append(os.getloadavg()[0])
            rows.append((name, percentile(times, 0.5) * 1000, percentile(times, 0.9) * 1000, best,
                         min(server_cpu), forward, percentile(listing, 0.5) * 1000, percentile(start_up, 0.5) * 1000))
    finally:
        cluster.stop()
    print(f"load average (1 min) during the run: {min(loads):.1f} to {max(loads):.1f}; "
          f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}")
    print(f"| client | start-up p50 (ms) | get pods p50 (ms) | exec -- true p50 (ms) | p90 (ms) | "
          f"exec cat MB/s, whole command ({options.megabytes} MB) | "
          "transfer alone | CPU s per 100 MB: API server | client | "
          f"port-forward MB/s ({options.megabytes} MB) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, p50, p90, exec_rate, server_cpu_s, forward_rate, get_p50, start_up_p50 in rows:
        print(f"| {name} | {start_up_p50:.0f} | {get_p50:.0f} | {p50:.0f} | {p90:.0f} | {exec_rate.whole_mb_s:.0f} | "
              f"{exec_rate.transfer_mb_s:.0f} | {server_cpu_s:.2f} | {exec_rate.client_cpu_s:.2f} | {forward_rate:.0f} |")
    if len(rows) == 2:
        print(f"\nminikube-py / kubectl p50: exec -- true {rows[1][1] / rows[0][1]:.2f}, "
              f"get pods {rows[1][6] / rows[0][6]:.2f}, start-up {rows[1][7] / rows[0][7]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
