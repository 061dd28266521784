"""`python -m benchmarks.before_after` on two real clusters (this checkout twice), in miniature."""

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_a_tiny_comparison_measures_both_sides_and_leaves_nothing(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.before_after", "--before", str(ROOT), "--after", str(ROOT),
         "--pods", "2", "--replicas", "2", "--rounds", "1", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "left these on the host" not in result.stderr, result.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    for side in ("before", "after"):
        assert len(results["samples"][side]["start_ms"]) == 2
        assert len(results["samples"][side]["delete_ms"]) == 2
        assert len(results["samples"][side]["scale_up_s"]) == 1
    assert len(results["load_average"]) == 3
    table = (tmp_path / "results.md").read_text()
    assert "| pod start, sequential (2 pods), p50 |" in table and "Load average" in table
