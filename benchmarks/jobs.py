"""A Job of many short pods against a Deployment of as many, in one run (issue 13's Job figure).

`python -m benchmarks.jobs [--completions 200] [--parallelism 20] [--out DIR]`, as root. One
private cluster; first a Job of `completions` pods of `true`, `parallelism` at a time, timed from
its create request until its `Complete` condition (every pod created, run, reaped, counted and
released from the Job's finalizer); then, as the reference, a Deployment scaled from 0 to the
same number of busybox pods, timed until all are Ready. Both are reported as seconds and pods/s,
with the load average beside them, and written to results.json in `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime

from benchmarks.minikube_side import NAMESPACE, BenchCluster, MinikubePods, make_busybox_rootfs_tarball
from benchmarks.runner import SLEEP_COMMAND

DEFAULT_RESULTS_DIRECTORY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
POLL_SECONDS = 0.05


def job_body(name: str, completions: int, parallelism: int) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"completions": completions, "parallelism": parallelism, "backoffLimit": completions,
                     "template": {"spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                                           "containers": [{"name": "main", "image": "busybox",
                                                           "command": ["true"]}]}}}}


def run_job(cluster: BenchCluster, completions: int, parallelism: int, timeout: float) -> float:
    """Seconds from the Job's create request until it has the Complete condition."""
    api = cluster.client.raw
    started = time.perf_counter()
    api.create("jobs", NAMESPACE, job_body("bench-job", completions, parallelism))
    deadline = started + timeout
    while time.perf_counter() < deadline:
        status = api.get("jobs", NAMESPACE, "bench-job").get("status") or {}
        if any(condition.get("type") == "Complete" and condition.get("status") == "True"
               for condition in status.get("conditions") or []):
            return time.perf_counter() - started
        if any(condition.get("type") == "Failed" for condition in status.get("conditions") or []):
            raise RuntimeError(f"the benchmark Job failed: {status}")
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"the Job did not complete within {timeout:.0f} s; see {cluster.home}/daemon.log")


def measure(completions: int, parallelism: int, timeout: float) -> dict:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="minikube-py-bench-") as scratch:
        tarball = make_busybox_rootfs_tarball(os.path.join(scratch, "busybox-rootfs.tar"))
        cluster = BenchCluster()
        result = cluster.cli("start", "--name", cluster.name, "--pod-cidr", cluster.pod_cidr,
                             "--max-pods", str(max(completions, 110) + 10), check=False, timeout=180)
        if result.returncode != 0:
            raise RuntimeError(f"minikube-py start failed:\n{result.stdout}\n{result.stderr}")
        try:
            cluster.ensure_busybox(tarball)
            print(f"[jobs] a Job of {completions} completions, {parallelism} at a time", flush=True)
            figures["job_s"] = run_job(cluster, completions, parallelism, timeout)
            figures["job_pods_per_s"] = completions / figures["job_s"]
            cluster.client.raw.delete("jobs", NAMESPACE, "bench-job")
            print(f"[jobs]   {figures['job_s']:.1f} s; a Deployment 0 -> {completions} Ready", flush=True)
            ours = MinikubePods(cluster, "jobs", timeout=timeout)
            ours.create_deployment("bench-deploy", SLEEP_COMMAND)
            figures["deployment_s"], _ = ours.scale_up("bench-deploy", completions)
            figures["deployment_pods_per_s"] = completions / figures["deployment_s"]
            ours.close()
            print(f"[jobs]   {figures['deployment_s']:.1f} s", flush=True)
        finally:
            cluster.cli("stop", "--grace-period", "2", check=False, timeout=600)
            leftovers = cluster.stop()
            if leftovers:
                print(f"[jobs] cluster {cluster.name} left these on the host: {leftovers[:10]}", file=sys.stderr)
    return figures


def report(figures: dict, completions: int, parallelism: int) -> str:
    def shown(key: str, unit: str) -> str:
        return "not measured" if key not in figures else f"{figures[key]:.1f} {unit}"

    return "\n".join([
        "| workload | total | pods/s |",
        "|---|---:|---:|",
        f"| Job: {completions} completions of `true`, parallelism {parallelism}, create -> Complete "
        f"| {shown('job_s', 's')} | {shown('job_pods_per_s', '')} |",
        f"| Deployment: 0 -> {completions} Ready (reference) | {shown('deployment_s', 's')} "
        f"| {shown('deployment_pods_per_s', '')} |",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.jobs", description=__doc__.splitlines()[0])
    parser.add_argument("--completions", type=int, default=200, help="pods the Job runs, and the Deployment's size")
    parser.add_argument("--parallelism", type=int, default=20, help="the Job's parallelism (default 20)")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up on a phase after this long")
    parser.add_argument("--out", help="output directory (default benchmarks/results/jobs-<timestamp>/)")
    arguments = parser.parse_args(argv)
    if arguments.completions < 1 or arguments.parallelism < 1:
        parser.error("--completions and --parallelism must be at least 1")
    if os.geteuid() != 0:
        print("python -m benchmarks.jobs: needs root (it runs real pods); rerun with sudo", file=sys.stderr)
        return 2
    load_at_start = os.getloadavg()
    figures = measure(arguments.completions, arguments.parallelism, arguments.timeout)
    load = {"start": load_at_start, "end": os.getloadavg()}
    out_dir = arguments.out or os.path.join(DEFAULT_RESULTS_DIRECTORY, f"jobs-{datetime.now():%Y%m%d-%H%M%S}")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "results.json"), "w") as file:
        json.dump({"completions": arguments.completions, "parallelism": arguments.parallelism,
                   "load_average": load, "figures": figures}, file, indent=2)
    print(report(figures, arguments.completions, arguments.parallelism))
    print("load average (1, 5, 15 min) at the start: {:.2f} {:.2f} {:.2f}; at the end: {:.2f} {:.2f} {:.2f}".format(
        *load["start"], *load["end"]))
    return 0 if "job_s" in figures and "deployment_s" in figures else 1


if __name__ == "__main__":
    sys.exit(main())
