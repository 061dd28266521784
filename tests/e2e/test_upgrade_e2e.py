"""An upgrade keeps the pods: a pod started by the previous release is re-adopted by this one.

The previous release (PREVIOUS_RELEASE, the last main commit whose supervisor spoke the
unversioned protocol and wrote unversioned records) is unpacked with `git archive` and started
from its own directory on this test's home; its daemon is then killed the way an upgrade replaces
it (the pods keep running), and `start` with this release's code must re-adopt the pod with the
same pids, take over from the old supervisor and still stop the pod.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import io

import pytest

from minikube_py.runtime import protocol
from minikube_py.runtime.runtime import SupervisorClient
from tests.e2e.cluster import Cluster, sequence_numbers, wait_for

pytestmark = pytest.mark.e2e

PREVIOUS_RELEASE = "bd6e997f5b9cfc8c36ad01cd375671511ec14559"
REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

POD = """
apiVersion: v1
kind: Pod
metadata:
  name: across
spec:
  terminationGracePeriodSeconds: 2
  containers:
    - name: main
      image: busybox
      command: ["sleep", "3600"]
    - name: logger
      image: busybox
      command: ["sh", "-c", "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.01; done"]
"""


def unpack_previous_release(target: str) -> None:
    try:
        archive = subprocess.run(["git", "-C", REPOSITORY, "archive", "--format=tar", PREVIOUS_RELEASE],
                                 capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"the previous release {PREVIOUS_RELEASE[:12]} is not in this clone's history: {error}")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")


@pytest.fixture
def cluster():
    if os.geteuid() != 0:
        pytest.skip("e2e tests run real pods and need root")
    old_code = tempfile.mkdtemp(prefix="minikube-py-previous-")
    running = Cluster()
    try:
        unpack_previous_release(old_code)
        yield running, old_code
    finally:
        leftovers = running.stop()
        shutil.rmtree(old_code, ignore_errors=True)
        assert not leftovers, f"cluster {running.name} left these on the host after stop: {leftovers}"


def process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_pod_of_the_previous_release_is_readopted_after_an_upgrade(cluster):
    cluster, old_code = cluster
    started = subprocess.run(
        [sys.executable, "-m", "minikube_py", "start", "--name", cluster.name, "--pod-cidr", cluster.pod_cidr],
        cwd=old_code, env=dict(cluster.env, PYTHONPATH=old_code), capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stdout + started.stderr
    old_supervisor = SupervisorClient(cluster.home).ping()
    assert old_supervisor is not None and old_supervisor.version == 1  # it is really the old code
    cluster.apply(POD)
    cluster.wait_running("across", timeout=60)
    before = cluster.inspect("across")
    pids = {container["name"]: container["pid"] for container in before["containers"]}
    assert all(pids.values())

    daemon_pid = json.loads(cluster.cli("status", "-o", "json").stdout)["pid"]
    os.kill(daemon_pid, signal.SIGKILL)  # the old daemon goes away; its pods and supervisor stay
    wait_for(lambda: not os.path.exists(f"/proc/{daemon_pid}"), 10, "the old daemon to die")

    cluster.cli("start", timeout=120)
    new_supervisor = SupervisorClient(cluster.home).ping()
    assert new_supervisor is not None and new_supervisor.version == protocol.PROTOCOL_VERSION
    assert not process_alive(old_supervisor.pid), "the old supervisor must have handed over"
    after = cluster.inspect("across")
    assert after["pause"]["pid"] == before["pause"]["pid"]
    assert {container["name"]: container["pid"] for container in after["containers"]} == pids
    pod = cluster.client.raw.get("pods", "default", "across")
    assert pod["status"]["phase"] == "Running"
    # The logger, whose pipes the old supervisor held, keeps running and logging: not one line lost.
    log_path = os.path.join(cluster.home, "pods", pod["metadata"]["uid"], "logs", "logger", "0.log")
    logged = len(sequence_numbers(log_path))
    wait_for(lambda: len(sequence_numbers(log_path)) > logged + 50, 20, "the logger to log under the new release")
    numbers = sequence_numbers(log_path)
    assert numbers == list(range(1, len(numbers) + 1)), "a log line was lost across the upgrade"
    assert [status["restartCount"] for status in pod["status"]["containerStatuses"]] == [0, 0]
    assert all(process_alive(pid) for pid in [after["pause"]["pid"], *pids.values()])
    records = [json.load(open(os.path.join(cluster.home, "containers", entry, "state.json")))
               for entry in os.listdir(os.path.join(cluster.home, "containers"))]
    assert {record["version"] for record in records} == {protocol.RECORD_VERSION}  # upgraded on disk

    cluster.cli("delete", "pod", "across", "--grace-period", "1", timeout=60)
    wait_for(lambda: not any(process_alive(pid) for pid in [after["pause"]["pid"], *pids.values()]), 30,
             "the re-adopted pod's processes to stop")
