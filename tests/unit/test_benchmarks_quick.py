"""The benchmark's pure parts: statistics, targets, rows, the Markdown and JSON reports, the
rollout-complete rule and /proc parsing. No root, no cluster."""

import json
import os

import pytest

from benchmarks import procfs
from benchmarks.minikube_side import ReadySeries, pod_is_ready, pod_is_running, rollout_complete
from benchmarks.report import Results, Target, markdown_report, markdown_table, write_results
from benchmarks.runner import Options, build_rows
from benchmarks.statistics import Summary, percentile, ratio


def test_percentile_interpolates_between_closest_ranks():
    assert percentile([10, 20, 30, 40], 0.9) == pytest.approx(37.0)
    assert percentile([40, 10, 30, 20], 0.5) == pytest.approx(25.0)
    assert percentile([7], 0.99) == 7


def test_percentile_of_no_samples_names_the_problem():
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 0.5)


def test_summary_reports_p50_p90_p99_min_max_and_mean():
    summary = Summary.of([float(value) for value in range(1, 101)])
    assert summary.count == 100
    assert summary.p50 == pytest.approx(50.5)
    assert summary.p90 == pytest.approx(90.1)
    assert summary.p99 == pytest.approx(99.01)
    assert (summary.minimum, summary.maximum, summary.mean) == (1.0, 100.0, 50.5)


def test_ratio_is_missing_when_either_side_is_missing_or_theirs_is_zero():
    assert ratio(50.0, 200.0) == 0.25
    assert ratio(None, 200.0) is None
    assert ratio(50.0, None) is None
    assert ratio(1.0, 0.0) is None


def test_targets_compare_in_their_direction_and_report_the_shortfall():
    at_most = Target("<=", 40)
    at_least = Target(">=", 3000)
    assert at_most.met_by(40) and not at_most.met_by(41)
    assert at_least.met_by(3000) and not at_least.met_by(1500)
    assert at_most.shortfall(60) == pytest.approx(1.5)
    assert at_least.shortfall(1500) == pytest.approx(2.0)


def quick_figures():
    figures = {
        "minikube-py": {"burst_wall_s": 0.2, "scale_up_s": 0.3, "rolling_update_s": 0.9,
                        "pause_rss_kb": 900.0, "pause_pss_kb": 300.0, "supervisor_rss_kb": 3000.0,
                        "supervisor_pss_kb": 2900.0, "container_rss_kb": 3000.0, "container_pss_kb": 600.0,
                        "daemon_rss_kb": 14000.0, "daemon_pss_kb": 13000.0, "daemon_total_rss_kb": 70000.0,
                        "idle_cpu_percent": 0.2, "store_writes_per_s": 8000.0, "api_creates_per_s": 1500.0},
        "podman": {"burst_wall_s": 1.5, "conmon_rss_kb": 5600.0, "conmon_pss_kb": 1000.0, "infra_rss_kb": 680.0,
                   "infra_pss_kb": 250.0, "container_rss_kb": 3000.0, "container_pss_kb": 650.0,
                   "idle_cpu_percent": 0.0},
    }
    samples = {
        "minikube-py": {"start_sequential": [0.05, 0.06, 0.07], "delete_sequential": [0.04, 0.05, 0.06],
                        "start_burst": [0.1, 0.12, 0.14], "store_watch": [0.0001, 0.0002],
                        "http_watch": [0.0005, 0.004]},
        "podman": {"start_sequential": [0.2, 0.25, 0.3], "delete_sequential": [0.24, 0.25, 0.5],
                   "start_burst": [1.0, 1.2, 1.5]},
    }
    return figures, samples


def built_results(quick=True):
    results = Results(started="2026-11-21 22:00 UTC", machine={"description": "2 vCPU test machine"},
                      options={"quick": quick, "vs": "podman", "pods": 3, "replicas": 5})
    figures, samples = quick_figures()
    build_rows(results, figures, samples, Options.for_mode(quick, "podman", 3))
    return results


def test_rows_cover_every_measurement_with_ours_and_podmans_figures():
    rows = {row.key: row for row in built_results().rows}
    assert {"start_sequential_p50", "start_sequential_p99", "delete_sequential_p50", "start_burst_p50", "scale_up",
            "rolling_update", "pod_overhead_rss", "control_plane_rss", "idle_cpu", "store_writes", "api_creates",
            "http_watch_p50"} <= set(rows)
    assert rows["start_sequential_p50"].ours == pytest.approx(60.0)
    assert rows["start_sequential_p50"].podman == pytest.approx(250.0)
    assert rows["start_sequential_p50"].ratio == pytest.approx(0.24)
    # pause 900 kB + supervisor share 3000 kB per pod
    assert rows["pod_overhead_rss"].ours == pytest.approx(3900 / 1024)
    # conmon x2 5600 kB + catatonit 680 kB per pod
    assert rows["pod_overhead_rss"].podman == pytest.approx(6280 / 1024)
    assert rows["control_plane_rss"].ours == pytest.approx(70000 / 1024)


def test_quick_mode_does_not_judge_targets_stated_for_a_hundred_pods():
    quick_rows = {row.key: row for row in built_results(quick=True).rows}
    full_rows = {row.key: row for row in built_results(quick=False).rows}
    assert quick_rows["scale_up"].met is None
    assert full_rows["scale_up"].met is True
    assert quick_rows["start_sequential_p50"].met is False  # 60 ms against 40 ms holds at any size


def test_markdown_table_has_a_line_per_row_with_the_verdict():
    results = built_results()
    table = markdown_table(results)
    lines = table.splitlines()
    assert lines[0] == "| measurement | minikube-py | podman | ratio ours/podman | target | met? |"
    assert len(lines) == 2 + len(results.rows)
    start_line = next(line for line in lines if line.startswith("| pod start, sequential (3 pods), p50 "))
    assert "60.0 ms" in start_line and "250.0 ms" in start_line and "0.24" in start_line
    assert "**no** (1.50× target)" in start_line
    assert "n/a (quick)" in next(line for line in lines if "Deployment 0 → 5 Ready" in line)


def test_missing_figures_read_not_measured_instead_of_disappearing():
    results = Results(started="now", machine={}, options={"quick": False})
    build_rows(results, {"minikube-py": {}}, {"minikube-py": {}}, Options.for_mode(False, None, None))
    table = markdown_table(results)
    assert "| pod start, sequential (50 pods), p50 | – | – | – | <= 40.0 ms | not measured |" in table


def test_report_describes_each_method_once():
    report = markdown_report(built_results(), ["pod-start-latency.png"])
    assert report.count("**pod start, sequential (3 pods)**") == 1
    assert "![pod-start-latency](pod-start-latency.png)" in report
    assert "2 vCPU test machine" in report


def test_write_results_writes_json_and_markdown_with_every_row(tmp_path):
    results = built_results()
    results.series["scale_up_ready"] = [{"seconds": 0.0, "ready": 0}, {"seconds": 0.3, "ready": 5}]
    written = write_results(results, str(tmp_path))
    document = json.loads((tmp_path / "results.json").read_text())
    assert [row["key"] for row in document["rows"]] == [row.key for row in results.rows]
    markdown = (tmp_path / "results.md").read_text()
    assert all(row.title in markdown for row in results.rows)
    assert str(tmp_path / "results.md") in written


def test_ready_series_keeps_only_changes():
    series = ReadySeries()
    series.record(0.0, {"ready": 0})
    series.record(0.1, {"ready": 0})
    series.record(0.2, {"ready": 1})
    assert series.to_dict() == [{"seconds": 0.0, "ready": 0}, {"seconds": 0.2, "ready": 1}]


def deployment(generation=2, observed=2, replicas=4, updated=4, total=4, available=4):
    return {"metadata": {"generation": generation}, "spec": {"replicas": replicas},
            "status": {"observedGeneration": observed, "updatedReplicas": updated, "replicas": total,
                       "availableReplicas": available}}


def test_rollout_is_complete_only_when_kubectl_rollout_status_would_say_so():
    assert rollout_complete(deployment())
    assert not rollout_complete(deployment(observed=1))
    assert not rollout_complete(deployment(updated=3))
    assert not rollout_complete(deployment(total=5))
    assert not rollout_complete(deployment(available=3))


def test_pod_running_needs_every_container_running_and_ready_needs_the_condition():
    running = {"status": {"phase": "Running", "containerStatuses": [{"state": {"running": {}}}],
                          "conditions": [{"type": "Ready", "status": "True"}]}}
    waiting = {"status": {"phase": "Running", "containerStatuses": [{"state": {"waiting": {}}}]}}
    assert pod_is_running(running) and pod_is_ready(running)
    assert not pod_is_running(waiting) and not pod_is_ready(waiting)


def test_procfs_reads_this_process_memory_cpu_and_tree():
    memory = procfs.memory_of(os.getpid())
    assert memory.rss_kb > 1000 and 0 < memory.pss_kb <= memory.rss_kb
    assert procfs.cpu_seconds_of(os.getpid()) > 0
    parents = procfs.parent_map()
    assert parents[os.getpid()] == os.getppid()
    assert os.getpid() in procfs.process_tree(os.getppid(), parents)
    assert procfs.memory_of(2 ** 22 + 1) == procfs.NO_MEMORY


def test_the_thousand_pod_report_marks_each_figure_against_its_target():
    from benchmarks.pods1000 import report, threads_of

    figures = {"scale_up_s": 42.0, "scale_down_s": 31.5, "stop_s": 12.0, "idle_rss_mb": 250.0,
               "idle_cpu_percent": 0.4, "idle_daemon_threads": 50, "peak_daemon_threads": 58}
    table = report(figures, 1000, 30)
    assert "| Deployment 0 -> 1000 Running | 42.0 s | <= 60 s | yes |" in table
    assert "| scale 1000 -> 0, all processes gone | 31.5 s | <= 30 s | NO |" in table
    assert "| daemon threads at 1000 idle pods | 50 | <= 64 | yes |" in table
    assert "not measured" in report({}, 1000, 30)
    assert threads_of(os.getpid()) >= 1
