"""Every command in the docs' runnable code blocks works on a real cluster, with output of the shape shown.

Blocks are marked and read as `tests/e2e/runnable_docs.py` describes. Each page runs from the top
in its own bash steps against this module's cluster: the working directory starts at the
repository root and follows `cd`, `HOME` is a fresh directory (so `~/tutorial` is the test's own),
and `minikube-py` is this checkout's CLI. A command that fails, or whose output lacks the shape
the page shows, is run again until it passes or a deadline ends (a reader also waits for a pod to
start before running `exec` in it); then the test fails naming the page, its line and the output.
After each page its pods and Deployments are deleted.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time

import pytest

from tests.e2e.runnable_docs import Command, runnable_commands, shape_mismatches

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").glob("*.md"))
RUNNABLE_PAGES = [page for page in PAGES if runnable_commands(page.read_text())]
COMMAND_DEADLINE_SECONDS = 90
COMMAND_TIMEOUT_SECONDS = 180  # a limit for a hung command; rollouts on a loaded machine with other clusters beside take over a minute


@pytest.fixture(scope="module")
def shell_env(cluster, tmp_path_factory):
    """PATH with a `minikube-py` that runs this checkout against the cluster's home."""
    bin_dir = tmp_path_factory.mktemp("bin")
    shim = bin_dir / "minikube-py"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m minikube_py "$@"\n')
    shim.chmod(0o755)
    return dict(os.environ, PATH=f"{bin_dir}:{os.environ.get('PATH', '')}", PYTHONPATH=str(ROOT),
                MINIKUBE_PY_HOME=cluster.home)


def run_step(command: Command, env: dict, cwd: str, cwd_file: pathlib.Path) -> subprocess.CompletedProcess:
    """Run one command in bash from `cwd`; the directory it ends in is written to `cwd_file`."""
    script = f'cd {cwd!r} || exit 97\n{command.text}\nstatus=$?\npwd > {str(cwd_file)!r}\nexit $status\n'
    return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)


def run_until_it_passes(command: Command, env: dict, cwd: str, cwd_file: pathlib.Path, where: str) -> None:
    deadline = time.monotonic() + COMMAND_DEADLINE_SECONDS
    while True:
        result = run_step(command, env, cwd, cwd_file)
        problems = [] if result.returncode == 0 else [f"exit status {result.returncode}"]
        if command.shown_output and not problems:
            problems = [f"no {missing}" for missing in shape_mismatches(command.shown_output, result.stdout)]
        if not problems:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{where}: {command.text}\n{'; '.join(problems)}\n"
                        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}", pytrace=False)
        time.sleep(0.5)


def clean_up(cluster) -> None:
    cluster.cli("delete", "deployments", "--all", "--wait=false", check=False)
    cluster.cli("delete", "pods", "--all", "--force", "--grace-period", "0", check=False)


def test_the_docs_have_runnable_blocks():
    assert RUNNABLE_PAGES, "no docs/*.md block is marked runnable"


@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=lambda page: page.name)
def test_runnable_commands_of_the_page_work(cluster, shell_env, tmp_path, page):
    env = dict(shell_env, HOME=str(tmp_path / "home"))
    os.makedirs(env["HOME"])
    cwd_file = tmp_path / "cwd"
    cwd = str(ROOT)
    try:
        for command in runnable_commands(page.read_text()):
            run_until_it_passes(command, env, cwd, cwd_file, f"docs/{page.name}:{command.line}")
            cwd = cwd_file.read_text().strip() or cwd
    finally:
        clean_up(cluster)
