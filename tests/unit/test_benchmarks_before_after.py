"""The before/after comparison's arguments and its Markdown table, without a cluster."""

import pytest

from benchmarks.before_after import markdown, p50_ratio_interval, parse_arguments
from benchmarks.statistics import Summary


def results(before_start: list[float], after_start: list[float]) -> dict:
    samples = {"before": {"start_ms": before_start, "delete_ms": [30.0], "scale_up_s": [3.0, 4.0, 3.5]},
               "after": {"start_ms": after_start, "delete_ms": [33.0], "scale_up_s": [3.2, 3.1, 3.6]}}
    return {"started": "2026-12-03 10:10 UTC", "machine": "2 vCPU",
            "checkouts": {"before": {"path": "/tmp/b", "revision": "ab544fe x"},
                          "after": {"path": "/tmp/a", "revision": "1234567 y"}},
            "options": {"pods": 3, "replicas": 100, "rounds": 3},
            "load_average": [("start", "1.00 0.50 0.20"), ("end", "2.00 1.00 0.40")],
            "samples": samples,
            "summaries": {side: {figure: Summary.of(values).to_dict() for figure, values in figures.items()}
                          for side, figures in samples.items()}}


def test_the_table_gives_both_sides_their_ratio_every_round_and_the_load():
    table = markdown(results([40.0, 42.0, 44.0], [44.0, 46.0, 48.0]))
    assert "| pod start, sequential (3 pods), p50 | 42.0 ms | 46.0 ms | 1.10 (" in table
    assert "| Deployment 0 → 100 Ready, median of 3 rounds | 3.50 s | 3.20 s | 0.91 |" in table
    assert "| Deployment 0 → 100 Ready, fastest / slowest round | 3.00 s / 4.00 s | 3.10 s / 3.60 s | – |" in table
    assert "before 3.00, 4.00, 3.50; after 3.20, 3.10, 3.60" in table
    assert "start 1.00 0.50 0.20; end 2.00 1.00 0.40" in table and "ab544fe x" in table


def test_a_phase_without_samples_reads_not_measured():
    data = results([40.0], [41.0])
    del data["summaries"]["after"]["delete_ms"]
    assert "| pod deletion to gone (3 pods), p50 | not measured | not measured | – |" in markdown(data)


def test_both_checkouts_must_be_minikube_py_trees(tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse_arguments(["--before", str(tmp_path), "--after", str(tmp_path)])
    assert "not a minikube-py checkout" in capsys.readouterr().err


def test_the_p50_ratio_interval_holds_one_for_the_same_samples_and_not_for_a_clear_shift():
    samples = [40.0, 55.0, 38.0, 70.0, 45.0, 41.0, 90.0, 43.0, 39.0, 60.0]
    low, high = p50_ratio_interval(samples, list(samples))
    assert low < 1.0 < high
    low, high = p50_ratio_interval(samples, [value * 2 for value in samples])
    assert 1.0 < low <= 2.0 <= high
