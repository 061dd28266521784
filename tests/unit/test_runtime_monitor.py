"""The container monitor (runtime/monitor.c) run for real, without root: CRI log lines, rotation, exit records.

Each test feeds the monitor's two pipes (fds 3 and 4) from here, or makes it the parent of a real
child, and reads the files it writes.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess

import pytest

from minikube_py.runtime.monitor import ensure_monitor_binary, read_exit_status
from minikube_py.runtime.supervisor import exit_status
from tests.e2e.cluster import wait_for

MAX_LINE = 16 * 1024
CRI_LINE = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) [FP] ")


@pytest.fixture(scope="module")
def monitor(tmp_path_factory):
    return ensure_monitor_binary(str(tmp_path_factory.mktemp("home")))


class Fed:
    """A monitor with no child, fed through its pipes by the test."""

    def __init__(self, monitor: str, directory, max_bytes: int = 1 << 20, max_files: int = 5):
        self.log = str(directory / "0.log")
        self.exit = str(directory / "exit")
        out_read, self.stdout = os.pipe()
        err_read, self.stderr = os.pipe()

        def arrange():
            os.dup2(out_read, 3)
            os.dup2(err_read, 4)

        self.process = subprocess.Popen([monitor, self.exit, self.log, str(max_bytes), str(max_files)],
                                        preexec_fn=arrange, pass_fds=(3, 4, out_read, err_read))
        os.close(out_read)
        os.close(err_read)

    def write(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    def finish(self) -> None:
        os.close(self.stdout)
        os.close(self.stderr)
        assert self.process.wait(timeout=10) == 0


def lines_of(path) -> list[tuple[str, str, str]]:
    with open(path) as file:
        return [tuple(line.rstrip("\n").split(" ", 3)[1:]) for line in file]


def test_log_lines_have_the_kubelet_format(monitor, tmp_path):
    fed = Fed(monitor, tmp_path)
    fed.write(fed.stderr, b"x\n")
    wait_for(lambda: os.path.exists(fed.log) and lines_of(fed.log), 10, "the first line")
    fed.write(fed.stdout, b"y z\n")
    fed.finish()
    raw = open(fed.log, "rb").read().splitlines()
    assert all(CRI_LINE.match(line) for line in raw)
    assert lines_of(fed.log) == [("stderr", "F", "x"), ("stdout", "F", "y z")]


def test_an_unfinished_line_waits_for_its_end_or_the_end_of_output(monitor, tmp_path):
    fed = Fed(monitor, tmp_path)
    fed.write(fed.stdout, b"one\ntw")
    wait_for(lambda: os.path.exists(fed.log) and lines_of(fed.log) == [("stdout", "F", "one")], 10, "one")
    fed.write(fed.stdout, b"o\nthree")
    wait_for(lambda: len(lines_of(fed.log)) == 2, 10, "two")
    assert lines_of(fed.log) == [("stdout", "F", "one"), ("stdout", "F", "two")]
    fed.finish()
    assert lines_of(fed.log)[-1] == ("stdout", "F", "three")


def test_a_line_longer_than_the_limit_is_split_into_partial_entries(monitor, tmp_path):
    fed = Fed(monitor, tmp_path, max_bytes=1 << 22)
    fed.write(fed.stderr, b"a" * (MAX_LINE + 10) + b"\n")
    fed.finish()
    entries = lines_of(fed.log)
    assert [(stream, tag, len(text)) for stream, tag, text in entries] == [("stderr", "P", MAX_LINE), ("stderr", "F", 10)]


def test_many_short_lines_are_all_logged_in_order(monitor, tmp_path):
    fed = Fed(monitor, tmp_path, max_bytes=1 << 24)
    fed.write(fed.stdout, b"".join(b"%d\n" % number for number in range(50_000)))
    fed.finish()
    assert [int(text) for _, _, text in lines_of(fed.log)] == list(range(50_000))


def test_rotation_keeps_every_file_within_the_limit_and_the_newest_lines(monitor, tmp_path):
    fed = Fed(monitor, tmp_path, max_bytes=1000, max_files=3)
    fed.write(fed.stdout, b"".join(b"%04d\n" % number for number in range(60)))  # 37 bytes per entry
    fed.finish()
    files = [fed.log + ".2", fed.log + ".1", fed.log]
    assert sorted(os.listdir(tmp_path)) == ["0.log", "0.log.1", "0.log.2"]
    assert all(os.path.getsize(name) <= 1000 for name in files)
    numbers = [int(text) for name in files for _, _, text in lines_of(name)]
    assert numbers == list(range(numbers[0], 60)) and len(numbers) >= 50


def run_as_parent(monitor: str, directory, command: list[str]) -> tuple[str, str]:
    """The monitor as the parent of `command`, the way the supervisor's child arranges it."""
    log, exit_path = str(directory / "0.log"), str(directory / "exit")
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            if os.fork() == 0:
                os.dup2(out_write, 1)
                os.dup2(err_write, 2)
                os.execvp(command[0], command)
            os.close(out_write)
            os.close(err_write)
            os.dup2(out_read, 3)
            os.dup2(err_read, 4)
            os.execv(monitor, [monitor, exit_path, log, str(1 << 20), "5"])
        finally:
            os._exit(127)
    for fd in (out_read, out_write, err_read, err_write):
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    return log, exit_path


def test_the_monitor_records_its_childs_exact_exit_status_after_its_last_lines(monitor, tmp_path):
    log, exit_path = run_as_parent(monitor, tmp_path, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    [line] = open(exit_path).read().splitlines()
    pid, status = (int(field) for field in line.split())
    assert read_exit_status(exit_path, pid) == status and exit_status(status) == (3, None)
    assert read_exit_status(exit_path, pid + 1) is None
    assert sorted(lines_of(log)) == [("stderr", "F", "err"), ("stdout", "F", "out")]


def test_a_child_killed_by_a_signal_is_recorded_as_such(monitor, tmp_path):
    _, exit_path = run_as_parent(monitor, tmp_path, ["sh", "-c", "kill -KILL $$"])
    [line] = open(exit_path).read().splitlines()
    assert exit_status(int(line.split()[1])) == (128 + signal.SIGKILL, signal.SIGKILL)
