"""The benchmark's results as data, a Markdown table and plots.

A run produces `Row`s (one figure each: ours, podman's where there is an equivalent, the
target from the issues and how it was measured) and time series (pod-start samples, pods Ready
over time). `write_results` turns them into `results.json` (everything, including raw samples),
`results.md` (measurement | ours | podman | ratio | target | met?) and, when matplotlib is
installed (the `bench` extra), the PNG plots. Nothing here touches the host, so the unit tests
drive it directly.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime

from benchmarks.statistics import ratio

UNIT_FORMATS = {"ms": "{:.1f} ms", "s": "{:.2f} s", "MB": "{:.2f} MB", "%": "{:.2f} %", "/s": "{:,.0f} /s"}


@dataclass(frozen=True)
class Target:
    """A figure a capability issue promises: `ours <comparison> value`."""

    comparison: str  # "<=" or ">="
    value: float

    def met_by(self, ours: float) -> bool:
        return ours <= self.value if self.comparison == "<=" else ours >= self.value

    def shortfall(self, ours: float) -> float:
        """How far ours misses, as a multiple of the target (1.5 = 50% over a <= target)."""
        if self.comparison == "<=":
            return ours / self.value
        return self.value / ours if ours else float("inf")


@dataclass
class Row:
    key: str
    title: str
    unit: str
    ours: float | None
    podman: float | None = None
    target: Target | None = None
    method: str = ""
    # False where the target is stated for the full size (100 pods) and the run was --quick.
    target_applies: bool = True

    @property
    def ratio(self) -> float | None:
        return ratio(self.ours, self.podman)

    @property
    def met(self) -> bool | None:
        if self.target is None or self.ours is None or not self.target_applies:
            return None
        return self.target.met_by(self.ours)

    def to_dict(self) -> dict:
        document = asdict(self)
        document["ratio"] = self.ratio
        document["met"] = self.met
        return document


@dataclass
class Results:
    started: str
    machine: dict
    options: dict
    rows: list[Row] = field(default_factory=list)
    series: dict[str, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def to_dict(self) -> dict:
        return {"started": self.started, "machine": self.machine, "options": self.options,
                "rows": [row.to_dict() for row in self.rows], "series": self.series, "notes": self.notes}


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    return UNIT_FORMATS.get(unit, "{:.3g} " + unit).format(value)


def format_target(target: Target | None, unit: str) -> str:
    if target is None:
        return ""
    return f"{target.comparison} {format_value(target.value, unit)}"


def format_met(row: Row) -> str:
    if row.target is None:
        return ""
    if not row.target_applies:
        return "n/a (quick)"
    if row.met is None:
        return "not measured"
    return "yes" if row.met else f"**no** ({row.target.shortfall(row.ours):.2f}× target)"


def markdown_table(results: Results) -> str:
    lines = ["| measurement | minikube-py | podman | ratio ours/podman | target | met? |",
             "|---|---:|---:|---:|---|---|"]
    for row in results.rows:
        ratio_text = f"{row.ratio:.2f}" if row.ratio is not None else "–"
        lines.append(f"| {row.title} | {format_value(row.ours, row.unit)} | {format_value(row.podman, row.unit)} | "
                     f"{ratio_text} | {format_target(row.target, row.unit)} | {format_met(row)} |")
    return "\n".join(lines)


def method_lines(rows: list[Row]) -> list[str]:
    """One line per distinct method; rows differing only in the percentile share theirs."""
    lines, seen = [], set()
    for row in rows:
        if row.method and row.method not in seen:
            seen.add(row.method)
            title = re.sub(r", p\d+$", "", row.title)
            lines.append(f"- **{title}**: {row.method}")
    return lines


def markdown_report(results: Results, plot_files: list[str]) -> str:
    machine = results.machine
    options = results.options
    parts = [
        f"# minikube-py benchmark, {results.started}",
        "",
        f"Machine: {machine.get('description', '')}. Mode: {'quick' if options.get('quick') else 'full'}, "
        f"{options.get('pods')} pods for pod start and deletion, {options.get('replicas')} replicas for the "
        f"Deployment, memory and idle CPU; peer: {options.get('vs') or 'none'}.",
        "",
        markdown_table(results),
        "",
        "## How each figure was measured",
        "",
    ]
    parts.extend(method_lines(results.rows))
    if results.notes:
        parts += ["", "## Notes", ""] + [f"- {note}" for note in results.notes]
    if plot_files:
        parts += ["", "## Plots", ""] + [f"![{os.path.splitext(name)[0]}]({name})" for name in plot_files]
    return "\n".join(parts) + "\n"


def write_results(results: Results, out_dir: str) -> list[str]:
    """Write results.json, the plots (if matplotlib is there) and results.md; return the paths written."""
    os.makedirs(out_dir, exist_ok=True)
    written = []
    json_path = os.path.join(out_dir, "results.json")
    with open(json_path, "w") as file:
        json.dump(results.to_dict(), file, indent=2)
    written.append(json_path)
    plot_files = write_plots(results, out_dir)
    if plot_files is None:
        results.notes.append("plots skipped: matplotlib is not installed (pip install -e '.[bench]')")
        plot_files = []
    written += [os.path.join(out_dir, name) for name in plot_files]
    markdown_path = os.path.join(out_dir, "results.md")
    with open(markdown_path, "w") as file:
        file.write(markdown_report(results, plot_files))
    written.append(markdown_path)
    return written


def write_plots(results: Results, out_dir: str) -> list[str] | None:
    """The PNGs for the series present; None when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    start = results.series.get("pod_start_ms")
    if start:
        figure, axes = plt.subplots(figsize=(7, 4))
        for side, style in (("minikube-py", "-"), ("podman", "--")):
            for variant in ("sequential", "burst"):
                samples = sorted((start.get(side) or {}).get(variant) or [])
                if samples:
                    fractions = [(index + 1) / len(samples) for index in range(len(samples))]
                    axes.step(samples, fractions, style, where="post", label=f"{side}, {variant}")
        axes.set_xscale("log")
        axes.set_xlabel("create → Running (ms, log scale)")
        axes.set_ylabel("fraction of pods")
        axes.set_title("Pod start latency (cumulative distribution)")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
        written.append(_save(figure, out_dir, "pod-start-latency.png"))
    for key, title, groups in (("scale_up_ready", "Pods Ready during scale-up", ("ready",)),
                               ("rolling_update_ready", "Pods Ready during the rolling update", ("old", "new"))):
        points = results.series.get(key)
        if not points:
            continue
        figure, axes = plt.subplots(figsize=(7, 4))
        for group in groups:
            axes.step([point["seconds"] for point in points], [point.get(group, 0) for point in points],
                      where="post", label=group)
        axes.set_xlabel("seconds since the request")
        axes.set_ylabel("pods Ready")
        axes.set_title(title)
        axes.grid(True, alpha=0.3)
        axes.legend()
        written.append(_save(figure, out_dir, key.replace("_", "-") + ".png"))
    plt.close("all")
    return written


def _save(figure, out_dir: str, name: str) -> str:
    figure.tight_layout()
    figure.savefig(os.path.join(out_dir, name), dpi=110)
    return name


def one_minute_load() -> str:
    with open("/proc/loadavg") as file:
        return file.read().split()[0]


def measure_and_save(measure: Callable[[], dict], out_dir: str, file_name: str) -> dict:
    """Run `measure`, add the load average before -> after and the time, print each figure on a
    line and write them all as JSON to `out_dir/file_name` (the one-off scale benchmarks)."""
    load_before = one_minute_load()
    figures = measure()
    figures["load_average"] = f"{load_before} -> {one_minute_load()}"
    figures["when"] = datetime.now().isoformat(timespec="seconds")
    for key, value in figures.items():
        print(f"{key:40} {value:.2f}" if isinstance(value, float) else f"{key:40} {value}")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, file_name), "w") as file:
        json.dump(figures, file, indent=2)
    return figures
