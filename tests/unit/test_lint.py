"""The linter and the type checker are part of the test command, so CI keeps the tree passing them.

ruff checks the whole tree for defects (its rule set and the reasons are in pyproject.toml);
mypy checks `minikube_py/api`, `minikube_py/client` and `controllers` strictly, with pydantic's
plugin, so the controllers work on the API models and the `Client` protocol rather than `Any`.
Both run as subprocesses with their caches off, and a failure shows their own output.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def run_tool(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *command], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_ruff_finds_no_defects():
    result = run_tool("ruff", "check", "--no-cache", "--output-format", "concise", ".")
    assert result.returncode == 0, f"ruff check (fix these, or `ruff check --fix .`):\n{result.stdout}{result.stderr}"


def test_mypy_finds_no_type_errors():
    # The files and the strictness come from pyproject.toml's [tool.mypy].
    result = run_tool("mypy", "--cache-dir", "/dev/null", "--no-error-summary", "--show-error-codes")
    assert result.returncode == 0, f"mypy:\n{result.stdout}{result.stderr}"
