"""A full disk under a real cluster: writes get a 507 that says so, nothing is half-written, and
writes work again once there is room.

The cluster home is a small tmpfs of its own; once the cluster runs, a ballast file takes the
rest of the space, so the next store write meets a real ENOSPC.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import tempfile

import pytest

from minikube_py.api import errors
from tests.e2e.cluster import Cluster, host_leftovers

TMPFS_SIZE = "48m"


def deployment(name: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "annotations": {"padding": "x" * 100_000}},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "main", "image": "busybox"}]}}}}


def fill(path: str) -> None:
    """Write zeros into `path` until the file system is full."""
    block = b"\0" * (1 << 16)
    with open(path, "wb", buffering=0) as file:
        try:
            while True:
                file.write(block)
        except OSError as error:
            assert error.errno == errno.ENOSPC, error
    with open(path, "ab", buffering=0) as file:  # and the last few bytes
        try:
            while True:
                file.write(b"\0")
        except OSError:
            pass


@pytest.fixture(scope="module")
def small_disk_cluster():
    if os.geteuid() != 0:
        pytest.skip("e2e tests run real pods and need root")
    home = tempfile.mkdtemp(prefix="minikube-py-tmpfs-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", home], check=True)
    cluster = Cluster(home=home)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.cli("stop", "--grace-period", "1", check=False, timeout=180)
        unmounted = subprocess.run(["umount", home], capture_output=True, text=True)
        leftovers = host_leftovers(cluster.name, home)
        if unmounted.returncode == 0:
            os.rmdir(home)
        else:
            leftovers.append(f"tmpfs {home} could not be unmounted: {unmounted.stderr.strip()}")
        assert not leftovers, f"cluster {cluster.name} left these on the host after stop: {leftovers}"


def test_a_full_disk_is_a_507_nothing_is_half_written_and_writes_recover(small_disk_cluster):
    cluster = small_disk_cluster
    api = cluster.client.raw
    api.create("deployments", "default", deployment("before"))
    ballast = os.path.join(cluster.home, "ballast")
    fill(ballast)
    try:
        with pytest.raises(errors.ApiError) as full:
            for index in range(20):
                api.create("deployments", "default", deployment(f"during-{index}"))
        assert full.value.code == 507, full.value.message
        assert "database or disk is full" in full.value.message
        assert "rollback" not in full.value.message
        # The refused write left nothing behind, and the API still answers reads.
        names = {item["metadata"]["name"] for item in api.list("deployments", "default")["items"]}
        assert "before" in names
        failed = next(f"during-{index}" for index in range(20) if f"during-{index}" not in names)
        with pytest.raises(errors.NotFound):
            api.get("deployments", "default", failed)
    finally:
        os.unlink(ballast)
    created = api.create("deployments", "default", deployment("after"))
    assert api.get("deployments", "default", "after")["metadata"]["uid"] == created["metadata"]["uid"]
    api.delete("deployments", "default", "after")
    database = sqlite3.connect(f"file:{os.path.join(cluster.home, 'state.db')}?mode=ro", uri=True)
    try:
        assert database.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        database.close()
