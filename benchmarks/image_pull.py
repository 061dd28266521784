"""Image pulls and layer unpacking, side by side with skopeo, podman and tar in one run.

A local registry (Debian's docker-registry on 127.0.0.1) serves a multi-layer image of
incompressible data built here; each round pulls it into a fresh store with our puller (download,
digest checks, unpack of every layer into its own directory) and, interleaved, copies it with
`skopeo copy docker://... oci:DIR` (download and digest checks only, no unpack) and pulls it with
`podman pull` into podman's own scratch storage (download, digest checks and unpack into
containers/storage's overlay layers: the same work as ours). Then the layers are unpacked by our
unpacker and by `tar -xzf` into fresh directories, reported in MB/s of uncompressed layer data.
Run as root from the repository root:
`python -m benchmarks.image_pull [--layers 5] [--megabytes 100] [--rounds 3]`.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import shutil
import subprocess
import tempfile
import time

from benchmarks.podman_side import PodmanHost, podman_installed
from benchmarks.statistics import percentile
from harness.registry import LocalRegistry, OciLayout, layer_tar
from minikube_py.runtime.images import ImageStore
from minikube_py.runtime.images.puller import Puller
from minikube_py.runtime.images.registry import RegistryClient
from minikube_py.runtime.images.unpack import unpack


def build_layers(count: int, megabytes: int) -> list[bytes]:
    """`count` tars of incompressible files, about `megabytes` MB in all, in 1 MB files."""
    per_layer = max(1, megabytes // count)
    return [layer_tar({f"layer{index}/file{number}": (os.urandom(1 << 20), 0o644) for number in range(per_layer)})
            for index in range(count)]


def timed(action, *arguments, **keywords) -> float:
    started = time.perf_counter()
    action(*arguments, **keywords)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.image_pull", description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=5, help="layers in the image (default 5)")
    parser.add_argument("--megabytes", type=int, default=100, help="image size in MB (default 100)")
    parser.add_argument("--rounds", type=int, default=3, help="pulls of each kind (default 3)")
    arguments = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="minikube-py-bench-images-")
    registry = LocalRegistry()
    try:
        tars = build_layers(arguments.layers, arguments.megabytes)
        layout = OciLayout(os.path.join(scratch, "layout"))
        layout.tag("v1", [layout.image(tars, {"Cmd": ["sh"]})])
        registry.start()
        registry.push(layout.directory, "v1", "bench/app")
        reference = f"{registry.host}/bench/app:v1"
        ours, skopeo, podman = [], [], []
        with contextlib.ExitStack() as stack:
            podman_host = stack.enter_context(PodmanHost()) if podman_installed() else None
            for round_number in range(arguments.rounds):
                home = os.path.join(scratch, f"home{round_number}")
                client = RegistryClient()
                ours.append(timed(Puller(ImageStore(home), client).pull, reference))
                client.close()
                target = os.path.join(scratch, f"skopeo{round_number}")
                skopeo.append(timed(subprocess.run, ["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                                                     f"docker://{reference}", f"oci:{target}:v1"], check=True,
                                    capture_output=True))
                if podman_host is not None:
                    podman.append(timed(podman_host.podman, "pull", "--quiet", "--tls-verify=false", reference,
                                        timeout=600))
                    podman_host.podman("rmi", "--force", reference)
                shutil.rmtree(home, ignore_errors=True)
                shutil.rmtree(target, ignore_errors=True)
        uncompressed = sum(len(tar) for tar in tars) / 1e6
        compressed = [gzip.compress(tar, compresslevel=1) for tar in tars]
        paths = []
        for index, blob in enumerate(compressed):
            paths.append(os.path.join(scratch, f"layer{index}.tar.gz"))
            with open(paths[-1], "wb") as file:
                file.write(blob)
        unpack_ours, unpack_tar = [], []
        for round_number in range(arguments.rounds):
            for kind, seconds in (("ours", unpack_ours), ("tar", unpack_tar)):
                root = os.path.join(scratch, f"unpack-{kind}-{round_number}")
                total = 0.0
                for path in paths:
                    target = os.path.join(root, os.path.basename(path))
                    os.makedirs(target)
                    if kind == "ours":
                        with open(path, "rb") as stream:
                            total += timed(unpack, stream, target, path)
                    else:
                        total += timed(subprocess.run, ["tar", "-xzf", path, "-C", target], check=True)
                seconds.append(total)
                shutil.rmtree(root)
        print(f"image: {arguments.layers} layers, {uncompressed:.0f} MB, registry {registry.host}, {arguments.rounds} rounds")
        print("| measure | minikube-py | reference | ratio |")
        print("|---|---:|---:|---:|")
        print(f"| pull wall time p50 (ours unpacks too) | {percentile(ours, 0.5):.2f} s | skopeo copy {percentile(skopeo, 0.5):.2f} s "
              f"| {percentile(ours, 0.5) / percentile(skopeo, 0.5):.2f} |")
        if podman:
            print(f"| pull wall time p50 | {percentile(ours, 0.5):.2f} s | podman pull {percentile(podman, 0.5):.2f} s "
                  f"| {percentile(ours, 0.5) / percentile(podman, 0.5):.2f} |")
        else:
            print("| pull wall time p50 | | podman is not installed (apt-get install podman) | |")
        print(f"| pull wall times, all rounds | {_seconds(ours)} | skopeo {_seconds(skopeo)}; podman {_seconds(podman)} | |")
        print(f"| unpack of the gzip layers p50 | {uncompressed / percentile(unpack_ours, 0.5):.0f} MB/s | tar -xzf "
              f"{uncompressed / percentile(unpack_tar, 0.5):.0f} MB/s | {percentile(unpack_tar, 0.5) / percentile(unpack_ours, 0.5):.2f} |")
        return 0
    finally:
        registry.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def _seconds(values: list[float]) -> str:
    return " ".join(f"{value:.2f}" for value in values) or "-"


if __name__ == "__main__":
    raise SystemExit(main())
