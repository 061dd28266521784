"""Pod lifecycle on real pods: restart policies, crash-loop back-off, probes, graceful stop, daemon crash.

The module's cluster runs with a short back-off curve (1s:4s) so restarts are observable quickly.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from tests.e2e.cluster import Cluster, wait_for


def first_status(pod: dict) -> dict:
    return (pod.get("status", {}).get("containerStatuses") or [{}])[0]


def pod_manifest(name: str, restart_policy: str, script: str, extra_container: str = "", extra_spec: str = "") -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: {restart_policy}
  terminationGracePeriodSeconds: 2
{extra_spec}  containers:
    - name: main
      image: busybox
      command: ["sh", "-c", "{script}"]
{extra_container}"""


@pytest.mark.parametrize(
    "policy, code, expected_phase, restarts",
    [
        ("Always", 0, "Running", True),
        ("Always", 1, "Running", True),
        ("OnFailure", 0, "Succeeded", False),
        ("OnFailure", 1, "Running", True),
        ("Never", 0, "Succeeded", False),
        ("Never", 1, "Failed", False),
    ],
)
def test_restart_policy_decides_restarts_and_phase(cluster: Cluster, policy, code, expected_phase, restarts):
    name = f"policy-{policy.lower()}-{code}"
    cluster.apply(pod_manifest(name, policy, f"sleep 0.3; exit {code}"))
    if restarts:
        pod = cluster.wait_pod(name, lambda p: first_status(p).get("restartCount", 0) >= 1, "a restart", timeout=30)
        last = first_status(pod)["lastState"]["terminated"]
        assert last["exitCode"] == code
        assert last["reason"] == ("Completed" if code == 0 else "Error")
        assert pod["status"]["phase"] == expected_phase
    else:
        pod = cluster.wait_pod(name, lambda p: p["status"].get("phase") == expected_phase, f"phase {expected_phase}", timeout=30)
        terminated = first_status(pod)["state"]["terminated"]
        assert terminated["exitCode"] == code
        assert first_status(pod)["restartCount"] == 0


def test_crash_loop_back_off_appears_and_restart_count_climbs(cluster: Cluster):
    cluster.apply(pod_manifest("crasher", "Always", "exit 3"))
    pod = cluster.wait_pod("crasher", lambda p: first_status(p).get("state", {}).get("waiting", {}).get("reason") == "CrashLoopBackOff",
                           "CrashLoopBackOff", timeout=30)
    message = first_status(pod)["state"]["waiting"]["message"]
    assert message.startswith("back-off ") and "restarting failed container=main pod=crasher_default(" in message
    cluster.wait_pod("crasher", lambda p: first_status(p).get("restartCount", 0) >= 3, "three restarts", timeout=40)
    table = cluster.cli("get", "pods", "crasher").stdout
    assert "CrashLoopBackOff" in table or "Error" in table
    events = cluster.cli("get", "events").stdout
    assert "BackOff" in events


def test_liveness_probe_restarts_a_hung_httpd(cluster: Cluster):
    cluster.apply("""
apiVersion: v1
kind: Pod
metadata:
  name: hung
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: httpd
      image: busybox
      command: ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
      livenessProbe:
        httpGet:
          path: /
          port: 8080
        periodSeconds: 1
        timeoutSeconds: 1
        failureThreshold: 2
""")
    cluster.wait_running("hung")
    pid = next(c["pid"] for c in cluster.inspect("hung")["containers"] if c["name"] == "httpd")
    os.kill(pid, signal.SIGSTOP)  # really hung: the process no longer answers
    pod = cluster.wait_pod("hung", lambda p: first_status(p).get("restartCount", 0) >= 1, "a liveness restart", timeout=40)
    assert "running" in first_status(cluster.wait_running("hung"))["state"]
    assert pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 137
    events = cluster.cli("get", "events").stdout
    assert "Unhealthy" in events and "Killing" in events


def test_readiness_probe_turns_ready_off_and_on(cluster: Cluster):
    cluster.apply("""
apiVersion: v1
kind: Pod
metadata:
  name: toggled
spec:
  containers:
    - name: main
      image: busybox
      command: ["sh", "-c", "touch /tmp/ready && exec sleep 3600"]
      readinessProbe:
        exec:
          command: ["test", "-f", "/tmp/ready"]
        periodSeconds: 1
""")

    def ready(pod: dict) -> str:
        return next((c["status"] for c in pod["status"].get("conditions", []) if c["type"] == "Ready"), "")

    cluster.wait_pod("toggled", lambda p: ready(p) == "True", "Ready=True")
    cluster.exec("toggled", "rm", "/tmp/ready")
    pod = cluster.wait_pod("toggled", lambda p: ready(p) == "False", "Ready=False")
    assert first_status(pod)["ready"] is False and first_status(pod)["restartCount"] == 0
    cluster.exec("toggled", "touch", "/tmp/ready")
    cluster.wait_pod("toggled", lambda p: ready(p) == "True", "Ready=True again")


def test_sigterm_is_honoured_within_grace_and_sigkill_follows_after_it(cluster: Cluster):
    cluster.apply("""
apiVersion: v1
kind: Pod
metadata:
  name: polite
spec:
  terminationGracePeriodSeconds: 30
  containers:
    - name: main
      image: busybox
      command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
---
apiVersion: v1
kind: Pod
metadata:
  name: stubborn
spec:
  terminationGracePeriodSeconds: 6
  containers:
    - name: main
      image: busybox
      command: ["sh", "-c", "trap '' TERM; while true; do sleep 0.2; done"]
""")
    cluster.wait_running("polite")
    cluster.wait_running("stubborn")

    began = time.monotonic()
    cluster.cli("delete", "pod", "polite", "--wait=false")
    # A pod that leaves on SIGTERM may be gone before a poll sees its deletionTimestamp: the
    # graceful path is proved by the timing below, not by catching the Terminating state.
    wait_for(lambda: cluster.cli("get", "pod", "polite", check=False).returncode != 0, 20, "polite to be gone")
    polite_seconds = time.monotonic() - began

    began = time.monotonic()
    cluster.cli("delete", "pod", "stubborn", "--wait=false")
    # Read at once through the API (a CLI process can take seconds to start on a loaded machine).
    assert cluster.client.raw.get("pods", "default", "stubborn")["metadata"].get("deletionTimestamp")
    wait_for(lambda: cluster.cli("get", "pod", "stubborn", check=False).returncode != 0, 20, "stubborn to be gone")
    stubborn_seconds = time.monotonic() - began

    # The polite pod leaves on SIGTERM, well inside its 30 s; the stubborn one needs the SIGKILL after 6 s.
    assert polite_seconds < 15
    assert stubborn_seconds >= 5.5


def test_daemon_kill_9_loses_nothing(cluster: Cluster):
    cluster.apply("""
apiVersion: v1
kind: Pod
metadata:
  name: survivor
spec:
  containers:
    - name: a
      image: busybox
      command: ["sleep", "3600"]
    - name: b
      image: busybox
      command: ["sleep", "3600"]
---
apiVersion: v1
kind: Pod
metadata:
  name: exits-while-down
spec:
  restartPolicy: OnFailure
  containers:
    - name: main
      image: busybox
      command: ["sleep", "3600"]
""")
    survivor = cluster.wait_running("survivor")
    cluster.wait_running("exits-while-down")
    before = cluster.inspect("survivor")
    victim_pid = cluster.inspect("exits-while-down")["containers"][0]["pid"]
    daemon_pid = json.loads(cluster.cli("status", "-o", "json").stdout)["pid"]

    os.kill(daemon_pid, signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{daemon_pid}"), 10, "the daemon to die")
    assert os.path.exists(f"/proc/{before['pause']['pid']}"), "pause must outlive the daemon"
    os.kill(victim_pid, signal.SIGKILL)  # exits while nobody from the control plane watches
    wait_for(lambda: not os.path.exists(f"/proc/{victim_pid}") or open(f"/proc/{victim_pid}/stat").read().split()[2] == "Z",
             10, "the victim to exit")

    cluster.cli("start", timeout=120)
    after = cluster.inspect("survivor")
    assert after["pause"]["pid"] == before["pause"]["pid"]
    assert {c["name"]: c["pid"] for c in after["containers"]} == {c["name"]: c["pid"] for c in before["containers"]}
    pod = cluster.client.raw.get("pods", "default", "survivor")
    assert pod["status"]["podIP"] == survivor["status"]["podIP"]
    assert [s["restartCount"] for s in pod["status"]["containerStatuses"]] == [0, 0]

    restarted = cluster.wait_pod("exits-while-down", lambda p: first_status(p).get("restartCount", 0) == 1,
                                 "the container that died while the daemon was down to be restarted", timeout=30)
    last = first_status(restarted)["lastState"]["terminated"]
    assert last["exitCode"] == 137 and last.get("signal") in (None, 9)


def waiting_or_terminated_reason(status: dict) -> tuple[str, str]:
    state = status.get("state") or {}
    for kind in ("waiting", "terminated"):
        if kind in state and state[kind].get("reason") not in (None, "ContainerCreating"):
            return state[kind]["reason"], state[kind].get("message", "")
    last = (status.get("lastState") or {}).get("terminated")
    if last:
        return last.get("reason", ""), last.get("message", "")
    return "", ""


def test_bad_input_in_a_pod_gets_a_reason_naming_the_cause_and_the_daemon_survives(cluster: Cluster):
    cluster.apply("""
apiVersion: v1
kind: Pod
metadata:
  name: no-such-command
spec:
  restartPolicy: Never
  containers:
    - name: main
      image: busybox
      command: ["definitely-not-here"]
---
apiVersion: v1
kind: Pod
metadata:
  name: no-such-workdir
spec:
  restartPolicy: Never
  containers:
    - name: main
      image: busybox
      command: ["sleep", "3600"]
      workingDir: /does/not/exist
---
apiVersion: v1
kind: Pod
metadata:
  name: probe-on-a-dead-port
spec:
  containers:
    - name: main
      image: busybox
      command: ["sleep", "3600"]
      readinessProbe:
        tcpSocket:
          port: 9999
        periodSeconds: 1
""")
    command = cluster.wait_pod("no-such-command", lambda p: waiting_or_terminated_reason(first_status(p))[0] != "",
                               "a reason for the missing command")
    reason, message = waiting_or_terminated_reason(first_status(command))
    assert reason in ("StartError", "RunContainerError") and "definitely-not-here" in message

    workdir = cluster.wait_pod("no-such-workdir", lambda p: waiting_or_terminated_reason(first_status(p))[0] != "",
                               "a reason for the missing workingDir")
    reason, message = waiting_or_terminated_reason(first_status(workdir))
    assert reason in ("CreateContainerError", "StartError", "RunContainerError") and "/does/not/exist" in message

    probed = cluster.wait_running("probe-on-a-dead-port")
    cluster.wait_pod("probe-on-a-dead-port", lambda p: "Readiness probe failed" in cluster.cli("describe", "pod", "probe-on-a-dead-port").stdout,
                     "an Unhealthy event for the dead port")
    assert first_status(cluster.client.raw.get("pods", "default", "probe-on-a-dead-port"))["ready"] is False
    assert probed["status"]["phase"] == "Running"
    assert json.loads(cluster.cli("status", "-o", "json").stdout)["running"] is True


def test_a_numeric_run_as_user_needs_no_passwd_entry(cluster: Cluster):
    cluster.apply("""
apiVersion: v1
kind: Pod
metadata:
  name: numeric-user
spec:
  restartPolicy: Never
  securityContext:
    runAsUser: 4242
  containers:
    - name: main
      image: busybox
      command: ["id"]
""")
    # A numeric uid needs no passwd entry (as in Kubernetes): the container runs as 4242.
    pod = cluster.wait_pod("numeric-user", lambda p: p["status"].get("phase") in ("Succeeded", "Failed"), "id to finish")
    assert pod["status"]["phase"] == "Succeeded"
    assert "uid=4242" in cluster.cli("logs", "numeric-user").stdout


def docker_save_archive(path, tag: str, user: str) -> None:
    """A docker-save archive of a one-layer busybox image whose config runs as `user`."""
    import io
    import tarfile

    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        tar.add("/usr/bin/busybox", arcname="bin/busybox")
        for applet in ("sh", "id", "sleep"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        passwd = b"root:x:0:0:root:/root:/bin/sh\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        tar.addfile(info, io.BytesIO(passwd))
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"User": user, "Cmd": ["id"], "Env": ["PATH=/bin"]},
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    manifest = json.dumps([{"Config": "config.json", "RepoTags": [tag], "Layers": ["layer.tar"]}]).encode()
    with tarfile.open(path, "w") as archive:
        for name, data in (("layer.tar", layer.getvalue()), ("config.json", config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_a_user_the_image_cannot_provide_is_a_config_error(cluster: Cluster, tmp_path):
    docker_save_archive(tmp_path / "ghost.tar", "ghost:1", user="ghost")
    loaded = cluster.cli("image", "load", str(tmp_path / "ghost.tar"))
    assert "ghost:1" in loaded.stdout
    assert "ghost" in cluster.cli("image", "ls").stdout
    cluster.apply("""
apiVersion: v1
kind: Pod
metadata:
  name: ghost-user
spec:
  restartPolicy: Never
  containers:
    - name: main
      image: ghost:1
""")
    pod = cluster.wait_pod("ghost-user", lambda p: waiting_or_terminated_reason(first_status(p))[0] != "", "a reason for the unknown user")
    reason, message = waiting_or_terminated_reason(first_status(pod))
    assert reason == "CreateContainerConfigError" and "ghost" in message


def run_sleeping_pod(cluster: Cluster, name: str) -> dict:
    """A one-container pod that sleeps, Running; returns its inspect document."""
    cluster.apply(f"""
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: busybox
      command: ["sleep", "3600"]
""")
    cluster.wait_running(name)
    return cluster.inspect(name)


def test_a_lost_pause_process_gets_a_new_sandbox_and_counts_a_restart(cluster: Cluster):
    before = run_sleeping_pod(cluster, "lost-sandbox")
    os.kill(before["pause"]["pid"], signal.SIGKILL)
    pod = cluster.wait_pod("lost-sandbox", lambda p: first_status(p).get("restartCount", 0) >= 1
                           and "running" in first_status(p).get("state", {}), "a new sandbox with the container restarted")
    after = cluster.inspect("lost-sandbox")
    assert after["pause"]["pid"] != before["pause"]["pid"]
    assert os.readlink(f"/proc/{after['containers'][0]['pid']}/ns/net") == os.readlink(f"/proc/{after['pause']['pid']}/ns/net")
    assert pod["status"]["podIP"]


def test_a_sandbox_whose_network_broke_while_the_daemon_was_down_is_recreated(cluster: Cluster):
    """kill -9 during a burst of creates can leave a sandbox without veth, eth0 or address: `start`
    must not adopt it as Running but replace it (SandboxChanged, a restart counted)."""
    from pyroute2 import IPRoute

    before = run_sleeping_pod(cluster, "net-broken")
    daemon_pid = json.loads(cluster.cli("status", "-o", "json").stdout)["pid"]
    os.kill(daemon_pid, signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{daemon_pid}"), 10, "the daemon to die")
    with IPRoute() as ipr:
        ipr.link("del", index=ipr.link_lookup(ifname=before["pod"]["hostVeth"])[0])  # eth0 goes with it

    cluster.cli("start", timeout=120)
    pod = cluster.wait_pod("net-broken", lambda p: first_status(p).get("restartCount", 0) == 1
                           and "running" in first_status(p).get("state", {}), "a new sandbox with the container restarted")
    after = cluster.inspect("net-broken")
    assert after["pause"]["pid"] != before["pause"]["pid"]
    assert os.path.exists(f"/sys/class/net/{after['pod']['hostVeth']}")
    assert pod["status"]["podIP"]
    assert "SandboxChanged" in cluster.cli("get", "events").stdout
