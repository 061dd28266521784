"""The node survives its supervisor: `kill -9` of it loses no exit code, no log line and no pod.

Each container's monitor holds its pipes and its exit status (runtime/monitor.py), so the agent,
which restarts the supervisor when its event stream breaks, reports what really happened.
"""

from __future__ import annotations

import os
import signal

from tests.e2e.cluster import Cluster, wait_for

PODS = """
apiVersion: v1
kind: Pod
metadata:
  name: talker
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: busybox
      command: ["sh", "-c", "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.01; done"]
---
apiVersion: v1
kind: Pod
metadata:
  name: quitter
spec:
  restartPolicy: Never
  containers:
    - name: main
      image: busybox
      command: ["sh", "-c", "sleep 3; echo bye; exit 3"]
"""


def test_a_supervisor_killed_with_sigkill_loses_no_exit_code_and_no_log_line(cluster: Cluster):
    cluster.apply(PODS)
    cluster.wait_running("talker")
    cluster.wait_running("quitter")
    talker_pid = cluster.inspect("talker")["containers"][0]["pid"]
    supervisor_pid = int(open(os.path.join(cluster.home, "supervisor.pid")).read())
    os.kill(supervisor_pid, signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{supervisor_pid}"), 10, "the supervisor to die")

    done = cluster.wait_pod("quitter", lambda pod: pod["status"].get("phase") == "Failed", "quitter to fail", timeout=60)
    terminated = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")
    assert cluster.cli("logs", "quitter").stdout == "bye\n"
    assert int(open(os.path.join(cluster.home, "supervisor.pid")).read()) != supervisor_pid

    talker = cluster.client.raw.get("pods", "default", "talker")
    assert talker["status"]["phase"] == "Running" and talker["status"]["containerStatuses"][0]["restartCount"] == 0
    assert cluster.inspect("talker")["containers"][0]["pid"] == talker_pid
    numbers = [int(line.split()[1]) for line in cluster.cli("logs", "talker").stdout.splitlines()]
    assert numbers == list(range(1, len(numbers) + 1)), "a log line was lost"
