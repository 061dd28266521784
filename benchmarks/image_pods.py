"""Pods from a multi-layer image, side by side with busybox in one run: start time and disk use.

A local registry serves a multi-layer image (busybox's layer and `--layers` layers of
incompressible files, about `--megabytes` MB in all); a private cluster pulls it once. Then:

- pod start: `--rounds` pods of busybox and of the multi-layer image, alternating, each timed
  from the create request to the watch event showing it Running (then deleted), p50 of each.
  A container's root is an overlay of the image's layer directories, so more and bigger layers
  should cost nothing measurable at start (target: within 5 ms of busybox's p50);
- 50 pods from the image at once: the growth of the cluster's home on disk (`du -sxb`, which
  stays off the pods' overlay mounts) against the bytes in the pods' upper and work directories
  and in the image's layers, showing that no pod copies the image.

Run as root from the repository root:
`python -m benchmarks.image_pods [--layers 5] [--megabytes 100] [--rounds 20] [--pods 50]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time

from benchmarks.image_pull import build_layers
from benchmarks.minikube_side import NAMESPACE, BenchCluster, TimedWatch, pod_is_running
from benchmarks.statistics import percentile
from harness.registry import LocalRegistry, OciLayout
from minikube_py.runtime.images.store import busybox_layer

BUSYBOX = shutil.which("busybox") or "/usr/bin/busybox"
LABEL = "minikube-py-bench-images"


def disk_bytes(path: str) -> int:
    """Bytes under `path` on its own file system (overlay mounts of running pods left out).

    A running cluster creates and removes files while du walks it; du then reports them and
    exits 1 but still prints its total, which is what we want."""
    result = subprocess.run(["du", "-sxb", path], capture_output=True, text=True)
    if not result.stdout.strip():
        raise RuntimeError(f"du -sxb {path} printed no total: {result.stderr.strip()}")
    return int(result.stdout.split()[0])


def tree_bytes(path: str) -> int:
    total = 0
    for directory, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
            except FileNotFoundError:
                continue
    return total


class Pods:
    def __init__(self, cluster: BenchCluster, timeout: float = 180):
        self.api = cluster.client.raw
        self.timeout = timeout
        revision = self.api.list("pods", NAMESPACE)["metadata"]["resourceVersion"]
        self.events = TimedWatch({"pods": self.api.watch("pods", NAMESPACE, resource_version=revision,
                                                         label_selector=f"{LABEL}=yes")})

    def body(self, name: str, image: str) -> dict:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {LABEL: "yes"}},
                "spec": {"terminationGracePeriodSeconds": 0,
                         "containers": [{"name": "main", "image": image, "imagePullPolicy": "IfNotPresent",
                                         "command": ["sleep", "3600"]}]}}

    def wait(self, names: set[str], condition) -> dict[str, float]:
        seen: dict[str, float] = {}
        deadline = time.perf_counter() + self.timeout
        while len(seen) < len(names):
            arrived, _, event = self.events.next(deadline)
            name = event["object"]["metadata"]["name"]
            if name in names and name not in seen and condition(event):
                seen[name] = arrived
        return seen

    def start(self, names: list[str], image: str) -> dict[str, float]:
        created = {}
        for name in names:
            created[name] = time.perf_counter()
            self.api.create("pods", NAMESPACE, self.body(name, image))
        running = self.wait(set(names), lambda event: event["type"] != "DELETED" and pod_is_running(event["object"]))
        return {name: running[name] - created[name] for name in names}

    def delete(self, names: list[str]) -> None:
        for name in names:
            self.api.delete("pods", NAMESPACE, name, grace_period_seconds=0)
        self.wait(set(names), lambda event: event["type"] == "DELETED")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.image_pods", description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=5, help="layers of random files on top of busybox (default 5)")
    parser.add_argument("--megabytes", type=int, default=100, help="size of those layers in MB (default 100)")
    parser.add_argument("--rounds", type=int, default=20, help="pods of each image timed one at a time (default 20)")
    parser.add_argument("--pods", type=int, default=50, help="pods started at once for the disk figure (default 50)")
    arguments = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="minikube-py-bench-image-pods-")
    registry = LocalRegistry()
    cluster = BenchCluster()
    started = False
    try:
        layout = OciLayout(os.path.join(scratch, "layout"))
        tars = [busybox_layer(BUSYBOX), *build_layers(arguments.layers, arguments.megabytes)]
        layout.tag("v1", [layout.image(tars, {"Cmd": ["sh"], "Env": ["PATH=/bin"]})])
        registry.start()
        registry.push(layout.directory, "v1", "bench/big")
        image = f"{registry.host}/bench/big:v1"
        cluster.start()
        started = True
        cluster.cli("image", "pull", "--quiet", image, timeout=300)
        pods = Pods(cluster)
        # One pod of each first: the first pod of a cluster pays for caches (seccomp program, pause).
        pods.delete(list(pods.start(["warm-busybox"], "busybox")))
        pods.delete(list(pods.start(["warm-big"], image)))
        busybox_times, big_times = [], []
        for round_number in range(arguments.rounds):
            for kind, image_name, times in (("busybox", "busybox", busybox_times), ("big", image, big_times)):
                name = f"{kind}-{round_number}"
                times.append(pods.start([name], image_name)[name])
                pods.delete([name])
        layers_bytes = tree_bytes(os.path.join(cluster.home, "images", "layers"))
        before = disk_bytes(cluster.home)
        names = [f"many-{index}" for index in range(arguments.pods)]
        pods.start(names, image)
        after = disk_bytes(cluster.home)
        containers = os.path.join(cluster.home, "containers")
        upper_bytes = sum(tree_bytes(os.path.join(containers, name, part)) for name in os.listdir(containers)
                          for part in ("upper", "work") if os.path.isdir(os.path.join(containers, name, part)))
        pods.delete(names)
        pods.events.close()
        busybox_p50, big_p50 = percentile(busybox_times, 0.5), percentile(big_times, 0.5)
        print(f"image: busybox + {arguments.layers} layers, {layers_bytes / 1e6:.0f} MB unpacked; "
              f"{arguments.rounds} rounds; {arguments.pods} pods at once")
        print("| measure | multi-layer image | busybox |")
        print("|---|---:|---:|")
        print(f"| pod start p50 (create -> Running) | {big_p50 * 1000:.1f} ms | {busybox_p50 * 1000:.1f} ms |")
        print(f"| difference of the p50s | {(big_p50 - busybox_p50) * 1000:+.1f} ms | |")
        print(f"| pod start p90 | {percentile(big_times, 0.9) * 1000:.1f} ms | {percentile(busybox_times, 0.9) * 1000:.1f} ms |")
        print()
        print("| disk, " + f"{arguments.pods} pods of the multi-layer image | bytes |")
        print("|---|---:|")
        print(f"| growth of the cluster's home (du -sxb) | {(after - before) / 1e6:.2f} MB |")
        print(f"| in the pods' upper and work directories | {upper_bytes / 1e6:.2f} MB |")
        print(f"| the image's layers (stored once) | {layers_bytes / 1e6:.1f} MB |")
        print(f"| a copy per pod would be | {arguments.pods * layers_bytes / 1e6:.0f} MB |")
        return 0
    finally:
        if started:
            leftovers = cluster.stop()
            if leftovers:
                print(f"leftovers after stop: {leftovers}")
        registry.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
