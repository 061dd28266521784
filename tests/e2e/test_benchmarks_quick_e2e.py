"""`python -m benchmarks run --quick` end to end, as CI runs it: real pods, as root.

The run starts and stops its own cluster; this test checks that it finishes, that results.json
and results.md carry every row with a figure for minikube-py, and that nothing of the run is left
on the host. With podman installed the podman column is checked too.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from benchmarks.podman_side import podman_installed

pytestmark = pytest.mark.e2e

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Rows every quick run must fill for minikube-py.
EXPECTED_ROWS = [
    "start_sequential_p50", "start_sequential_p90", "start_sequential_p99", "start_burst_p50", "start_burst_p99",
    "burst_wall", "delete_sequential_p50", "delete_sequential_p99", "scale_up", "rolling_update",
    "pod_overhead_rss", "pod_overhead_pss", "container_rss", "control_plane_rss", "control_plane_rss_per_pod",
    "idle_cpu", "store_writes", "api_creates", "http_watch_p50", "http_watch_p99", "store_watch_p50",
    "store_watch_p99",
]
PODMAN_ROWS = ["start_sequential_p50", "delete_sequential_p50", "start_burst_p50", "pod_overhead_rss", "container_rss"]


def benchmark_leftovers() -> list[str]:
    found = [f"link {name}" for name in os.listdir("/sys/class/net") if name.startswith("mkpy-bench")]
    found += [f"cgroup {name}" for name in os.listdir("/sys/fs/cgroup/memory") if name.startswith("minikube-py-bench")]
    with open("/proc/mounts") as file:
        found += [f"mount {line.split()[1]}" for line in file if "minikube-py-bench" in line]
    return found


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the benchmark runs real pods and needs root")
    out_dir = tmp_path_factory.mktemp("benchmark")
    before = set(benchmark_leftovers())
    command = [sys.executable, "-m", "benchmarks", "run", "--quick", "--out", str(out_dir)]
    if podman_installed():
        command += ["--vs", "podman"]
    result = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, timeout=600)
    yield result, out_dir, set(benchmark_leftovers()) - before
    shutil.rmtree(out_dir, ignore_errors=True)


def test_quick_run_finishes_without_failed_phases(quick_run):
    result, _, _ = quick_run
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def test_quick_run_writes_every_row_to_json_with_a_figure_for_minikube_py(quick_run):
    _, out_dir, _ = quick_run
    document = json.loads((out_dir / "results.json").read_text())
    rows = {row["key"]: row for row in document["rows"]}
    missing = [key for key in EXPECTED_ROWS if key not in rows or rows[key]["ours"] is None]
    assert not missing, f"rows without a minikube-py figure: {missing}; notes: {document['notes']}"
    assert rows["rolling_update"]["ours"] > 0
    assert len(document["series"]["pod_start_ms"]["minikube-py"]["sequential"]) == document["options"]["pods"]
    if podman_installed():
        assert all(rows[key]["podman"] is not None for key in PODMAN_ROWS), document["notes"]


def test_quick_run_writes_every_row_to_the_markdown_table(quick_run):
    _, out_dir, _ = quick_run
    document = json.loads((out_dir / "results.json").read_text())
    markdown = (out_dir / "results.md").read_text()
    table_lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    for row in document["rows"]:
        assert any(line.startswith(f"| {row['title']} |") for line in table_lines), row["title"]


def test_quick_run_leaves_nothing_on_the_host(quick_run):
    _, _, leftovers = quick_run
    assert not leftovers
