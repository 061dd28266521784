"""logs, exec and inspect through the API's pod subresources, served by a fake node agent."""

import os
import queue
import sys

from minikube_py.cli.pods import format_inspect



class FakeExecSession:
    """`cat` echoes stdin; `exit N` prints to both streams and exits N."""

    def __init__(self, command: list[str]):
        self.command = command
        self.stdin: queue.Queue = queue.Queue()

    def write_stdin(self, data: bytes) -> None:
        self.stdin.put(data)

    def close_stdin(self) -> None:
        self.stdin.put(None)

    def read(self):
        if self.command == ["cat"]:
            while (data := self.stdin.get(timeout=10)) is not None:
                yield 1, data
        else:
            yield 1, b"to stdout\n"
            yield 2, b"to stderr\n"

    def wait(self) -> int:
        return 0 if self.command == ["cat"] else int(self.command[-1])

    def kill(self) -> None:
        self.stdin.put(None)


INSPECT_DOCUMENT = {
    "pod": {"namespace": "default", "name": "web-1", "uid": "u-1", "ip": "10.244.0.5",
            "hostVeth": "mkminikabc", "bridge": "mkpy-minikube", "cgroup": "minikube-py-minikube/pod-u-1"},
    "pause": {"pid": 1234, "namespaces": {"uts": 11, "ipc": 12, "net": 13, "pid": 14, "mnt": 15},
              "cgroups": {"memory": "/sys/fs/cgroup/memory/minikube-py-minikube/pod-u-1"}},
    "containers": [{
        "name": "c0", "id": "abc", "pid": 1240, "state": "running",
        "namespaces": {"uts": 11, "ipc": 12, "net": 13, "pid": 24, "mnt": 25},
        "sharedWithPause": ["ipc", "net", "uts"],
        "cgroups": {"memory": "/sys/fs/cgroup/memory/minikube-py-minikube/pod-u-1/abc"},
        "limits": {"memory_bytes": 16777216, "cpu_quota_us": 50000, "cpu_period_us": 100000, "cpu_shares": 512,
                   "pids_max": None},
        "rootfs": "/var/lib/minikube-py/containers/abc/rootfs", "image": "busybox"}],
}


class FakeNodeProxy:
    def __init__(self):
        self.log_requests = []

    def logs(self, namespace, name, container=None, follow=False, tail_lines=None, timestamps=False,
             previous=False):
        self.log_requests.append({"container": container, "follow": follow, "tail_lines": tail_lines,
                                  "timestamps": timestamps, "previous": previous})
        return iter([b"first line\n", b"second line\n"])

    def exec(self, namespace, name, container, command, tty=False):
        return FakeExecSession(command)

    def inspect(self, namespace, name):
        return INSPECT_DOCUMENT


def with_proxy(live) -> FakeNodeProxy:
    proxy = FakeNodeProxy()
    live.server.node_proxy = proxy
    return proxy


def test_logs_streams_the_containers_log_and_passes_the_flags(live):
    proxy = with_proxy(live)
    live.pod("web-1")
    result = live.run("logs", "web-1", "--tail", "5", "--timestamps", "--previous")
    assert (result.code, result.out) == (0, "first line\nsecond line\n")
    assert proxy.log_requests == [{"container": "c0", "follow": False, "tail_lines": 5, "timestamps": True,
                                   "previous": True}]


def test_logs_of_a_pod_with_several_containers_says_which_it_defaulted_to(live):
    proxy = with_proxy(live)
    live.pod("web-1", containers=2)
    result = live.run("logs", "pod/web-1")
    assert result.err == 'Defaulted container "c0" out of: c0, c1\n'
    assert proxy.log_requests[0]["container"] == "c0"
    live.run("logs", "web-1", "-c", "c1")
    assert proxy.log_requests[1]["container"] == "c1"


def test_exec_returns_the_commands_exit_code_and_splits_stdout_from_stderr(live):
    with_proxy(live)
    live.pod("web-1")
    result = live.run("exec", "web-1", "--", "exit", "3")
    assert (result.code, result.out, result.err) == (3, "to stdout\n", "to stderr\n")


def test_exec_with_stdin_forwards_it_until_end_of_file(live, monkeypatch):
    with_proxy(live)
    live.pod("web-1")
    read_end, write_end = os.pipe()
    os.write(write_end, b"hello through stdin\n")
    os.close(write_end)
    with open(read_end, "rb") as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        result = live.run("exec", "web-1", "-i", "-c", "c0", "--", "cat")
    assert (result.code, result.out) == (0, "hello through stdin\n")


def test_exec_without_a_command_is_an_error(live):
    live.pod("web-1")
    result = live.run("exec", "web-1")
    assert result.code == 1 and "at least one command" in result.err


def test_logs_without_a_node_agent_is_a_service_unavailable_error(live):
    live.pod("web-1")
    result = live.run("logs", "web-1")
    assert result.code == 1
    assert result.err.startswith("Error from server (ServiceUnavailable): no node agent")


def test_inspect_pod_marks_the_namespaces_a_container_shares_with_pause(live):
    with_proxy(live)
    live.pod("web-1")
    text = live.run("inspect", "pod", "web-1").out
    lines = [line.strip() for line in text.splitlines()]
    assert any(line.startswith("net:") and line.endswith("13  (shared with pause)") for line in lines)
    pid_lines = [line for line in lines if line.startswith("pid:")]
    assert pid_lines and not any("shared" in line for line in pid_lines)
    assert any(line.startswith("Host veth:") and "mkminikabc" in line for line in lines)
    assert "IP:" in text and "10.244.0.5" in text


def test_inspect_text_shows_pids_cgroups_limits_and_rootfs():
    text = format_inspect(INSPECT_DOCUMENT)
    assert "1240" in text and "1234" in text
    assert "/sys/fs/cgroup/memory/minikube-py-minikube/pod-u-1/abc" in text
    assert "16777216 bytes (16Mi)" in text and "50000us per 100000us (500m)" in text
    assert "/var/lib/minikube-py/containers/abc/rootfs" in text
    assert "pids:" in text and "unlimited" in text
