"""One node with a thousand pods (issue 9 item 17): `python -m benchmarks.pods1000 [--pods N] [--out DIR]`.

Needs root, like every benchmark that runs real pods, and loads the whole machine for a few
minutes: run it only to measure. One private cluster with a /22 pod CIDR (1,021 pod addresses)
and `start --max-pods N`, and one Deployment of N busybox pods whose shell exits on TERM (as the
main benchmark's pods), measured as a user sees it:

1. scale 0 -> N until the pods watch has delivered all N Running (target <= 60 s);
2. at N idle pods, after a short settling pause: daemon + supervisor RSS from smaps_rollup
   (<= 400 MB), their CPU time over the idle window (<= 1 % of one core), the daemon's threads
   (<= 64; the highest count seen during the whole run is reported too);
3. scale N -> 0 until the API has no pod of it left and no process is left in the cluster's
   cgroups (<= 30 s);
4. scale to N again, then `minikube-py stop` with N pods running, timed until the command
   returns (<= 30 s).

Prints the six figures next to their targets and writes them to results.json in `--out`.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import sys
import tempfile
import threading
import time
from datetime import datetime

from benchmarks import procfs
from benchmarks.minikube_side import NAMESPACE, BenchCluster, MinikubePods, make_busybox_rootfs_tarball, pod_is_running
from benchmarks.runner import SLEEP_COMMAND

KB_PER_MB = 1024
SETTLE_SECONDS = 10.0
DEFAULT_RESULTS_DIRECTORY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
TARGETS = {  # figure: (comparison, limit, unit, title)
    "scale_up_s": ("<=", 60, "s", "Deployment 0 -> {pods} Running"),
    "scale_down_s": ("<=", 30, "s", "scale {pods} -> 0, all processes gone"),
    "stop_s": ("<=", 30, "s", "`stop` with {pods} pods"),
    "idle_rss_mb": ("<=", 400, "MB", "daemon + supervisor RSS at {pods} idle pods"),
    "idle_cpu_percent": ("<=", 1, "%", "daemon + supervisor CPU at {pods} idle pods ({idle:g} s)"),
    "idle_daemon_threads": ("<=", 64, "", "daemon threads at {pods} idle pods"),
    "peak_daemon_threads": (None, None, "", "daemon threads, highest seen during the run"),
    # CPU time moves far less with the machine's load than wall time does: where the time goes.
    "scale_up_daemon_cpu_ms_per_pod": (None, None, "ms", "daemon CPU per pod, scaling up"),
    "scale_up_supervisor_cpu_ms_per_pod": (None, None, "ms", "supervisor CPU per pod, scaling up"),
    "scale_down_daemon_cpu_ms_per_pod": (None, None, "ms", "daemon CPU per pod, scaling down"),
    "scale_down_supervisor_cpu_ms_per_pod": (None, None, "ms", "supervisor CPU per pod, scaling down"),
}


def threads_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as file:
            for line in file:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class ThreadPeak:
    """Samples the daemon's thread count every 0.2 s and keeps the highest."""

    def __init__(self, pid: int):
        self.pid, self.peak = pid, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="thread-peak", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, threads_of(self.pid))

    def close(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def cluster_processes(name: str) -> int:
    """Processes left in the cluster's cgroups (pause and containers), on cgroup v1 or v2."""
    roots = glob.glob(f"/sys/fs/cgroup/pids/minikube-py-{name}") or glob.glob(f"/sys/fs/cgroup/minikube-py-{name}")
    count = 0
    for root in roots:
        for directory, _, files in os.walk(root):
            if "cgroup.procs" in files:
                try:
                    with open(os.path.join(directory, "cgroup.procs")) as file:
                        count += sum(1 for line in file if line.strip())
                except OSError:
                    continue
    return count


def start_cluster(cluster: BenchCluster, pods: int) -> None:
    """`start` with a pod CIDR wide enough and room for `pods` pods on the node."""
    result = cluster.cli("start", "--name", cluster.name, "--pod-cidr", cluster.pod_cidr, "--max-pods", str(pods),
                         check=False, timeout=180)
    if result.returncode != 0:
        raise RuntimeError(f"minikube-py start failed:\n{result.stdout}\n{result.stderr}")


def scale_and_wait_running(ours: MinikubePods, name: str, pods: int, timeout: float) -> float:
    """Seconds from the scale request until the watch has seen `pods` pods of it Running."""
    running: set[str] = set()
    started = time.perf_counter()
    ours.api.patch("deployments", NAMESPACE, name, {"spec": {"replicas": pods}})
    deadline = started + timeout
    last = started
    while len(running) < pods:
        last, label, event = ours._next_or_fail(deadline, f"{name}: {pods} pods Running")
        pod = event["object"]
        if label != "pods":
            continue
        if event["type"] != "DELETED" and pod_is_running(pod) and not pod["metadata"].get("deletionTimestamp"):
            running.add(pod["metadata"]["name"])
        else:
            running.discard(pod["metadata"]["name"])
    return last - started


def scale_to_zero_and_wait_gone(ours: MinikubePods, cluster: BenchCluster, name: str, timeout: float) -> float:
    """Seconds from the scale request until no pod of it is in the API and no pod process is left.

    The pods are followed through the watch, as scaling up is: listing a thousand pods ten times a
    second would cost the daemon more than the teardown it measures.
    """
    present = {pod["metadata"]["name"] for pod in ours.api.list("pods", NAMESPACE, label_selector=f"app={name}")["items"]}
    started = time.perf_counter()
    ours.api.patch("deployments", NAMESPACE, name, {"spec": {"replicas": 0}})
    deadline = started + timeout
    while present:
        _, label, event = ours._next_or_fail(deadline, f"{name}: every pod deleted")
        if label == "pods" and event["type"] == "DELETED":
            present.discard(event["object"]["metadata"]["name"])
    while time.perf_counter() < deadline:
        if cluster_processes(cluster.name) == 0:
            return time.perf_counter() - started
        time.sleep(0.1)
    raise TimeoutError(f"{name}: pod processes still there {timeout:.0f}s after scaling to 0")


def measure(pods: int, idle_seconds: float, timeout: float) -> dict:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="minikube-py-bench-") as scratch:
        tarball = make_busybox_rootfs_tarball(os.path.join(scratch, "busybox-rootfs.tar"))
        cluster = BenchCluster()
        cluster.pod_cidr = f"10.{random.randint(248, 251)}.{random.randint(0, 63) * 4}.0/22"
        print(f"[pods1000] starting cluster {cluster.name} ({cluster.pod_cidr}, {pods} pods) in {cluster.home}", flush=True)
        start_cluster(cluster, pods)
        stopped = False
        try:
            cluster.ensure_busybox(tarball)
            ours = MinikubePods(cluster, "p1000", timeout=timeout)
            name = "bench-p1000"
            ours.create_deployment(name, SLEEP_COMMAND)
            daemon, supervisor = cluster.pid_of("daemon"), cluster.pid_of("supervisor")
            peak = ThreadPeak(daemon)

            def cpu_ms() -> tuple[float, float]:
                return 1000 * procfs.cpu_seconds_of(daemon), 1000 * procfs.cpu_seconds_of(supervisor)

            print(f"[pods1000] scale 0 -> {pods}", flush=True)
            cpu_before = cpu_ms()
            figures["scale_up_s"] = scale_and_wait_running(ours, name, pods, timeout)
            cpu_after = cpu_ms()
            figures["scale_up_daemon_cpu_ms_per_pod"] = (cpu_after[0] - cpu_before[0]) / pods
            figures["scale_up_supervisor_cpu_ms_per_pod"] = (cpu_after[1] - cpu_before[1]) / pods
            print(f"[pods1000]   {figures['scale_up_s']:.1f} s; settling {SETTLE_SECONDS:g} s, then idle {idle_seconds:g} s",
                  flush=True)
            time.sleep(SETTLE_SECONDS)  # the measurement's own pause: the last status writes and events land
            memory = procfs.memory_of_all([daemon, supervisor])
            figures["idle_rss_mb"] = memory.rss_kb / KB_PER_MB
            figures["idle_daemon_threads"] = threads_of(daemon)
            before = procfs.cpu_seconds_of(daemon) + procfs.cpu_seconds_of(supervisor)
            window_start = time.monotonic()
            time.sleep(idle_seconds)  # the idle window itself
            used = procfs.cpu_seconds_of(daemon) + procfs.cpu_seconds_of(supervisor) - before
            figures["idle_cpu_percent"] = 100.0 * used / (time.monotonic() - window_start)

            print(f"[pods1000] scale {pods} -> 0", flush=True)
            cpu_before = cpu_ms()
            figures["scale_down_s"] = scale_to_zero_and_wait_gone(ours, cluster, name, timeout)
            cpu_after = cpu_ms()
            figures["scale_down_daemon_cpu_ms_per_pod"] = (cpu_after[0] - cpu_before[0]) / pods
            figures["scale_down_supervisor_cpu_ms_per_pod"] = (cpu_after[1] - cpu_before[1]) / pods
            print(f"[pods1000]   {figures['scale_down_s']:.1f} s; scale to {pods} again for stop", flush=True)
            scale_and_wait_running(ours, name, pods, timeout)
            ours.close()

            print(f"[pods1000] stop with {pods} pods", flush=True)
            started = time.perf_counter()
            result = cluster.cli("stop", check=False, timeout=max(timeout, 300))
            figures["stop_s"] = time.perf_counter() - started
            stopped = True
            if result.returncode != 0:
                raise RuntimeError(f"minikube-py stop failed:\n{result.stdout}\n{result.stderr}")
            figures["peak_daemon_threads"] = peak.close()
        finally:
            if not stopped:
                cluster.cli("stop", "--grace-period", "2", check=False, timeout=600)
            leftovers = cluster.stop()
            if leftovers:
                print(f"[pods1000] cluster {cluster.name} left these on the host: {leftovers[:10]}", file=sys.stderr)
    return figures


def report(figures: dict, pods: int, idle_seconds: float) -> str:
    lines = ["| figure | value | target | met |", "|---|---|---|---|"]
    for key, (comparison, limit, unit, title) in TARGETS.items():
        value = figures.get(key)
        shown = "not measured" if value is None else f"{value:.1f} {unit}".strip() if isinstance(value, float) else f"{value} {unit}".strip()
        target = f"{comparison} {limit} {unit}".strip() if comparison else ""
        met = "" if comparison is None or value is None else "yes" if value <= limit else "NO"
        lines.append(f"| {title.format(pods=pods, idle=idle_seconds)} | {shown} | {target} | {met} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pods1000", description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=1000, help="pods on the node (default 1000)")
    parser.add_argument("--idle-seconds", type=float, default=30.0, help="the idle CPU window (default 30)")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up on a phase after this long (default 300)")
    parser.add_argument("--out", help="output directory (default benchmarks/results/pods1000-<timestamp>/)")
    arguments = parser.parse_args(argv)
    if arguments.pods < 1:
        parser.error("--pods must be at least 1")
    if os.geteuid() != 0:
        print("python -m benchmarks.pods1000: needs root (it runs real pods); rerun with sudo", file=sys.stderr)
        return 2
    load_at_start = os.getloadavg()
    figures = measure(arguments.pods, arguments.idle_seconds, arguments.timeout)
    # A shared machine's load moves every figure: shown beside them, as the other benchmarks do.
    load = {"start": load_at_start, "end": os.getloadavg()}
    out_dir = arguments.out or os.path.join(DEFAULT_RESULTS_DIRECTORY, f"pods1000-{datetime.now():%Y%m%d-%H%M%S}")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as file:
        json.dump({"pods": arguments.pods, "idle_seconds": arguments.idle_seconds, "load_average": load,
                   "figures": figures}, file, indent=2)
    print(report(figures, arguments.pods, arguments.idle_seconds))
    print("load average (1, 5, 15 min) at the start: {:.2f} {:.2f} {:.2f}; at the end: {:.2f} {:.2f} {:.2f}".format(
        *load["start"], *load["end"]))
    missed = [key for key, (comparison, limit, _, _) in TARGETS.items()
              if comparison and (figures.get(key) is None or figures[key] > limit)]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
