"""The real kubectl v1.32 and the official Python client stream into real pods over WebSocket:
exec with exit codes, `exec -it` through a pty, `run -it --rm`, `attach` (stdinOnce), `debug -it
--target` (an ephemeral container), `cp` both ways, port-forward (kubectl's SPDY tunnel, the Python client's and our CLI's channel protocol),
and the Python client's exec.

Skipped without root (real pods) or without `kubectl` on PATH. One cluster with a TLS port; kubectl
runs through the context `start` merged into the cluster's own KUBECONFIG.
"""

from __future__ import annotations

import hashlib
import re
import os
import shutil
import subprocess
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.cluster import Cluster, free_port, wait_for
from tests.e2e.terminal import Terminal

KUBECTL = shutil.which("kubectl")
BOX = """
apiVersion: v1
kind: Pod
metadata:
  name: box
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
  name: web
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: busybox
      command: ["sh", "-c", "mkdir /www && echo hello from web > /www/index.html && exec httpd -f -p 8080 -h /www"]
---
apiVersion: v1
kind: Pod
metadata:
  name: reader
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: Never
  containers:
    - name: main
      image: busybox
      command: ["sh", "-c", "while read line; do echo got $line; done; echo input ended"]
      stdin: true
      stdinOnce: true
"""


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("e2e tests run real pods and need root")
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    running = Cluster(name=f"e2estr{os.getpid() % 10000}", pod_cidr="10.241.12.0/24").start(port=free_port())
    try:
        running.apply(BOX)
        running.wait_running("box")
        running.wait_running("web")
        running.wait_running("reader")
        yield running
    finally:
        leftovers = running.stop()
        assert not leftovers, f"cluster {running.name} left these on the host after stop: {leftovers}"


SHELL = """
apiVersion: v1
kind: Pod
metadata:
  name: attached
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: Never
  containers:
    - name: main
      image: busybox
      command: ["sh"]
      stdin: true
      tty: true
"""


def test_kubectl_exec_passes_stdout_stderr_and_the_exit_code(cluster):
    result = cluster.kubectl("exec", "box", "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert (result.returncode, result.stdout, result.stderr) == (
        3, "out\n", "err\ncommand terminated with exit code 3\n")
    assert cluster.kubectl("exec", "box", "--", "true").returncode == 0
    piped = cluster.kubectl("exec", "-i", "box", "--", "sh", "-c", "cat; echo done", input="from stdin\n")
    assert piped.stdout == "from stdin\ndone\n"
    missing = cluster.kubectl("exec", "box", "-c", "nope", "--", "true", check=False)
    assert missing.returncode != 0 and "container nope is not valid for pod box" in missing.stderr


def test_our_cli_exec_speaks_the_same_protocol(cluster):
    result = cluster.cli("exec", "box", "--", "sh", "-c", "echo out; echo err >&2; exit 4", check=False)
    assert (result.returncode, result.stdout, result.stderr) == (4, "out\n", "err\n")
    assert cluster.cli("exec", "-i", "box", "--", "cat", input="piped\n").stdout == "piped\n"


@pytest.mark.parametrize("client", ["kubectl", "minikube-py"])
def test_exec_it_gives_the_command_a_terminal_of_the_containers_own(cluster, client):
    argv = [KUBECTL] if client == "kubectl" else ["python3", "-m", "minikube_py"]
    terminal = Terminal([*argv, "exec", "-it", "box", "--", "sh"], cluster.env)
    terminal.expect(b"# ")
    terminal.type("echo answer=$((6*7)); tty; stty size\r")
    output = terminal.expect(b"30 100")
    assert b"answer=42" in output and b"/dev/pts/0" in output
    terminal.type("exit 5\r")
    assert terminal.exit_code() == 5


def test_kubectl_run_it_rm_attaches_to_a_new_pods_terminal_and_deletes_it(cluster):
    terminal = Terminal([KUBECTL, "run", "-it", "--rm", "--restart=Never", "--image=busybox", "shell", "--", "sh"],
                        cluster.env)
    terminal.expect(b"try pressing enter")
    terminal.press_enter_until_prompt()
    terminal.type("echo answer=$((6*7)); stty size\r")
    output = terminal.expect(b"30 100")
    assert b"answer=42" in output
    terminal.type("exit 0\r")
    assert terminal.exit_code() == 0
    assert b'pod "shell" deleted' in terminal.output
    assert cluster.client.raw.list("pods", "default", field_selector="metadata.name=shell")["items"] == []


def test_stdin_once_closes_the_containers_input_after_the_first_attach(cluster):
    result = cluster.kubectl("attach", "-i", "reader", input="one\ntwo\n")
    assert result.stdout == "got one\ngot two\ninput ended\n"
    cluster.wait_pod("reader", lambda pod: pod["status"].get("phase") == "Succeeded", "the reader to finish")
    piped = cluster.kubectl("run", "-i", "--rm", "--restart=Never", "--image=busybox", "cat", "--", "cat",
                            input="through kubectl run\n")
    assert piped.stdout.startswith("through kubectl run\n") and 'pod "cat" deleted' in piped.stdout


def test_our_cli_attaches_to_a_terminal(cluster):
    cluster.apply(SHELL)
    cluster.wait_running("attached")
    terminal = Terminal(["python3", "-m", "minikube_py", "attach", "-it", "attached"], cluster.env)
    terminal.expect(b"try pressing enter")
    terminal.press_enter_until_prompt()
    terminal.type("echo attached=$((2*21))\r")
    terminal.expect(b"attached=42")
    terminal.type("exit\r")
    assert terminal.exit_code() == 0
    cluster.cli("delete", "pod", "attached")


def test_kubectl_debug_adds_an_ephemeral_container_in_the_targets_pid_namespace(cluster):
    terminal = Terminal([KUBECTL, "debug", "-it", "box", "--image=busybox", "--target=main",
                         "--container=debugger", "--", "sh"], cluster.env)
    terminal.expect(b"try pressing enter")
    terminal.press_enter_until_prompt()
    terminal.type("ps -o pid,args\r")
    output = terminal.expect(b"sleep 3600")
    assert re.search(rb"\n\s*1 sleep 3600", output), "the target's PID 1 is not the debugger's PID 1"
    terminal.type("exit 0\r")
    assert terminal.exit_code() == 0
    pod = cluster.wait_pod("box", lambda pod: "terminated" in (
        (pod["status"].get("ephemeralContainerStatuses") or [{}])[0].get("state") or {}), "the debugger to end")
    assert [c["name"] for c in pod["spec"]["ephemeralContainers"]] == ["debugger"]
    assert pod["spec"]["ephemeralContainers"][0]["targetContainerName"] == "main"
    assert pod["status"]["phase"] == "Running" and pod["status"]["containerStatuses"][0]["ready"]


def test_kubectl_cp_copies_10_mb_both_ways_intact(cluster, tmp_path):
    original = tmp_path / "original.bin"
    original.write_bytes(os.urandom(10 * 1024 * 1024))
    digest = hashlib.sha256(original.read_bytes()).hexdigest()
    cluster.kubectl("cp", str(original), "box:/tmp/copied.bin", timeout=60)
    inside = cluster.kubectl("exec", "box", "--", "sha256sum", "/tmp/copied.bin").stdout.split()[0]
    assert inside == digest
    back = tmp_path / "back.bin"
    cluster.kubectl("cp", "box:/tmp/copied.bin", str(back), timeout=60)
    assert hashlib.sha256(back.read_bytes()).hexdigest() == digest


def test_the_python_client_execs_with_stdin_and_exit_codes(cluster):
    kubernetes = pytest.importorskip("kubernetes")
    from kubernetes.stream import stream

    api_client = kubernetes.config.new_client_from_config(config_file=cluster.kubeconfig)
    core = kubernetes.client.CoreV1Api(api_client)
    assert stream(core.connect_get_namespaced_pod_exec, "box", "default", command=["echo", "plain"],
                  stderr=True, stdin=False, stdout=True, tty=False) == "plain\n"
    failing = stream(core.connect_get_namespaced_pod_exec, "box", "default",
                     command=["sh", "-c", "echo hi; echo oops >&2; exit 3"], stderr=True, stdin=False,
                     stdout=True, tty=False, _preload_content=False)
    failing.run_forever(timeout=20)
    assert (failing.read_stdout(), failing.read_stderr(), failing.returncode) == ("hi\n", "oops\n", 3)
    interactive = stream(core.connect_get_namespaced_pod_exec, "box", "default", command=["cat"], stderr=True,
                         stdin=True, stdout=True, tty=False, _preload_content=False)
    interactive.write_stdin("through stdin\n")
    echoed = wait_for(lambda: (interactive.update(timeout=0.2), interactive.peek_stdout())[1] or None, 20,
                      "cat to echo the Python client's stdin")
    assert echoed == "through stdin\n"
    interactive.close()
    api_client.close()


def forwarded_port(process: subprocess.Popen) -> int:
    """The local port a port-forward (kubectl's or ours) says it listens on."""
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8080", line)
    assert match, f"unexpected first line from port-forward: {line!r}"
    return int(match.group(1))


def fetch(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=20) as response:
        return response.read().decode()


@pytest.mark.parametrize("client", ["kubectl", "minikube-py"])
def test_port_forward_serves_20_parallel_http_requests(cluster, client):
    argv = [KUBECTL] if client == "kubectl" else ["python3", "-m", "minikube_py"]
    process = subprocess.Popen([*argv, "port-forward", "pod/web" if client == "kubectl" else "web", ":8080"],
                               env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = forwarded_port(process)
        with ThreadPoolExecutor(max_workers=20) as pool:
            pages = list(pool.map(fetch, [port] * 20))
        assert pages == ["hello from web\n"] * 20
        assert process.poll() is None, "port-forward ended after serving"
    finally:
        process.terminate()
        process.communicate(timeout=20)


def test_kubectl_port_forward_to_a_closed_port_reports_it(cluster):
    process = subprocess.Popen([KUBECTL, "port-forward", "pod/web", ":9"], env=cluster.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port = int(re.search(r"127\.0\.0\.1:(\d+)", process.stdout.readline()).group(1))
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=20).read()
        _, stderr = process.communicate(timeout=20)
        assert "failed to connect to localhost:9" in stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert fetch_through_python_client(cluster) == b"hello from web\n"


def fetch_through_python_client(cluster) -> bytes:
    """The Python client's portforward (v4.channel.k8s.io) to the same pod, after the failure above."""
    kubernetes = pytest.importorskip("kubernetes")
    from kubernetes.stream import portforward

    api_client = kubernetes.config.new_client_from_config(config_file=cluster.kubeconfig)
    core = kubernetes.client.CoreV1Api(api_client)
    forward = portforward(core.connect_get_namespaced_pod_portforward, "web", "default", ports="8080")
    sock = forward.socket(8080)
    sock.setblocking(True)
    sock.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    sock.close()
    assert forward.error(8080) is None
    forward.close()
    api_client.close()
    return answer.partition(b"\r\n\r\n")[2]
