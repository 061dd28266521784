"""Two checkouts of minikube-py side by side in one run: did a change make pods start slower?

A refactor that promises "behaviour unchanged" must also leave speed unchanged, and on a shared
machine two runs an hour apart differ more than the change does. So this starts one cluster from
each checkout (each daemon and supervisor run the code of the checkout their `start` came from)
and measures them interleaved, so load from other users hits both alike:

- pod start: one pod at a time, create -> Running seen by a watch, alternating pod by pod
  (before, after, then after, before, ...), after one warm-up pod per side; then the same
  deletions, alternating;
- Deployment 0 -> N Ready: on each side in turn, a Deployment scaled from 0 to N replicas, timed
  until the watch has seen N pods Ready, then deleted and its pods awaited gone, so only one side
  runs pods at a time; several rounds, the side that goes first alternating.

The operations and their clocks are the main benchmark's (`MinikubePods`), run from this
checkout's client against both clusters. The load average (`/proc/loadavg`) is recorded at the
start, between phases and at the end, so figures can be read against the machine's business.

    sudo python -m benchmarks.before_after --before /tmp/mkpy-before --after /tmp/mkpy-after

prints a Markdown table and writes it with every sample to `--out` (default
benchmarks/results/before-after-<timestamp>/).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from datetime import datetime, timezone

from benchmarks.minikube_side import BenchCluster, MinikubePods, make_busybox_rootfs_tarball
from benchmarks.runner import SLEEP_COMMAND, describe_machine
from benchmarks.statistics import Summary, percentile, ratio

DEFAULT_RESULTS_DIRECTORY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
SIDES = ("before", "after")
SAMPLED_ONE_BY_ONE = ("start_ms", "delete_ms")  # enough samples for a bootstrap interval of the p50 ratio


class CheckoutCluster(BenchCluster):
    """A benchmark cluster whose CLI, and so whose daemon and supervisor, run another checkout's code."""

    start_flags = ()  # an older checkout may not know `--max-pods`: keep N Ready within its default 110

    def __init__(self, checkout: str, avoid_pod_cidrs: tuple[str, ...] = ()):
        super().__init__()
        while self.pod_cidr in avoid_pod_cidrs:  # two clusters on one host need distinct ranges
            self.pod_cidr = f"10.23{random.randint(0, 9)}.0.0/24"
        self.checkout = os.path.abspath(checkout)

    def cli(self, *args: str, check: bool = True, timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess:
        if args and args[0] == "start":
            args = ("start", *self._known_start_flags(args[1:]))
        return self._run(*args, check=check, timeout=timeout, input=input)

    def _known_start_flags(self, flags: tuple[str, ...]) -> list[str]:
        """The `--flag value` pairs this checkout's `start` knows (an older one lacks newer flags)."""
        usage = self._run("start", "--help").stdout
        kept: list[str] = []
        for index in range(0, len(flags), 2):
            if f"{flags[index]} " in usage or f"{flags[index]}\n" in usage:
                kept += flags[index:index + 2]
        return kept

    def _run(self, *args: str, check: bool = True, timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess:
        # `python -m` puts the working directory first on sys.path, ahead of the installed package.
        result = subprocess.run([sys.executable, "-m", "minikube_py", *args], cwd=self.checkout,
                                env=dict(self.env, PYTHONPATH=self.checkout), capture_output=True, text=True,
                                timeout=timeout, input=input)
        if check and result.returncode != 0:
            raise AssertionError(f"minikube-py {' '.join(args)} ({self.checkout}) exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result


def p50_ratio_interval(before: list[float], after: list[float], resamples: int = 2000,
                       seed: int = 1) -> tuple[float, float]:
    """A 95% bootstrap interval of p50(after) / p50(before): both sample sets are resampled with
    replacement `resamples` times and the 2.5th and 97.5th percentiles of the ratios are returned.
    An interval that holds 1.0 means the two medians differ by no more than the run's noise."""
    generator = random.Random(seed)
    ratios = sorted(
        percentile(generator.choices(after, k=len(after)), 0.5) / percentile(generator.choices(before, k=len(before)), 0.5)
        for _ in range(resamples))
    return percentile(ratios, 0.025), percentile(ratios, 0.975)


def git_revision(checkout: str) -> str:
    result = subprocess.run(["git", "-C", checkout, "log", "-1", "--format=%h %s"], capture_output=True, text=True)
    return result.stdout.strip()[:90] or "(not a git checkout)"


def load_average() -> str:
    with open("/proc/loadavg") as file:
        return " ".join(file.read().split()[:3])


class Comparison:
    def __init__(self, checkouts: dict[str, str], pods: int, replicas: int, rounds: int):
        self.checkouts = checkouts
        self.pods = pods
        self.replicas = replicas
        self.rounds = rounds
        self.run_id = datetime.now().strftime("%H%M%S")
        self.samples: dict[str, dict[str, list[float]]] = {side: {"start_ms": [], "delete_ms": [], "scale_up_s": []}
                                                          for side in SIDES}
        self.loads: list[tuple[str, str]] = []

    def note_load(self, moment: str) -> None:
        self.loads.append((moment, load_average()))
        print(f"[before-after] {moment}: load average {self.loads[-1][1]}", flush=True)

    def execute(self) -> dict:
        started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        self.note_load("start")
        with tempfile.TemporaryDirectory(prefix="minikube-py-before-after-") as scratch, ExitStack() as stack:
            tarball = make_busybox_rootfs_tarball(os.path.join(scratch, "busybox-rootfs.tar"))
            pods: dict[str, MinikubePods] = {}
            for side in SIDES:
                cluster = CheckoutCluster(self.checkouts[side], tuple(p.cluster.pod_cidr for p in pods.values()))
                print(f"[before-after] {side}: cluster {cluster.name} ({cluster.pod_cidr}) from {cluster.checkout}",
                      flush=True)
                cluster.start()
                stack.callback(self._stop, cluster)
                cluster.ensure_busybox(tarball)
                pods[side] = MinikubePods(cluster, f"{self.run_id}{side[0]}")
                stack.callback(pods[side].close)
            self.pod_start_and_delete(pods)
            self.note_load("after pod start and deletion")
            self.scale_up(pods)
            self.note_load("after 0 -> N Ready")
        return self.results(started)

    @staticmethod
    def _stop(cluster: CheckoutCluster) -> None:
        leftovers = cluster.stop()
        if leftovers:
            print(f"[before-after] cluster {cluster.name} left these on the host: {leftovers}", file=sys.stderr)

    @staticmethod
    def _order(index: int) -> tuple[str, str]:
        """before first on even steps, after first on odd ones, so neither side always follows the other."""
        return SIDES if index % 2 == 0 else SIDES[::-1]

    def pod_start_and_delete(self, pods: dict[str, MinikubePods]) -> None:
        for side in SIDES:
            pods[side].start_pod(f"bench-{self.run_id}-warm", SLEEP_COMMAND)
            pods[side].delete_pod(f"bench-{self.run_id}-warm")
        for index in range(self.pods):
            for side in self._order(index):
                seconds = pods[side].start_pod(f"bench-{self.run_id}-s{index}", SLEEP_COMMAND)
                self.samples[side]["start_ms"].append(seconds * 1000)
        for index in range(self.pods):
            for side in self._order(index):
                seconds = pods[side].delete_pod(f"bench-{self.run_id}-s{index}")
                self.samples[side]["delete_ms"].append(seconds * 1000)

    def scale_up(self, pods: dict[str, MinikubePods]) -> None:
        for round_index in range(self.rounds):
            for side in self._order(round_index):
                name = f"bench-{self.run_id}-web{round_index}"
                pods[side].create_deployment(name, SLEEP_COMMAND)
                try:
                    seconds, _ = pods[side].scale_up(name, self.replicas)
                    self.samples[side]["scale_up_s"].append(seconds)
                    print(f"[before-after] round {round_index + 1}, {side}: 0 -> {self.replicas} Ready in {seconds:.2f} s",
                          flush=True)
                finally:
                    pods[side].delete_deployment(name)

    def results(self, started: str) -> dict:
        summaries = {side: {figure: Summary.of(values).to_dict() for figure, values in figures.items() if values}
                     for side, figures in self.samples.items()}
        machine = describe_machine()
        return {"started": started,
                "machine": f"{machine['cpus']} vCPU {machine['cpu_model']}, {machine['memory_gib']} GiB, Linux "
                           f"{machine['kernel']}, Python {machine['python']}; {machine['memory_cgroups']} memory "
                           "cgroups in the kernel at the end (live and dying)",
                "checkouts": {side: {"path": self.checkouts[side], "revision": git_revision(self.checkouts[side])}
                              for side in SIDES},
                "options": {"pods": self.pods, "replicas": self.replicas, "rounds": self.rounds},
                "load_average": self.loads, "samples": self.samples, "summaries": summaries}


def markdown(results: dict) -> str:
    before, after = results["summaries"]["before"], results["summaries"]["after"]
    options = results["options"]
    rows = [
        (f"pod start, sequential ({options['pods']} pods), p50", "start_ms", "p50", "{:.1f} ms"),
        (f"pod start, sequential ({options['pods']} pods), p90", "start_ms", "p90", "{:.1f} ms"),
        (f"pod deletion to gone ({options['pods']} pods), p50", "delete_ms", "p50", "{:.1f} ms"),
        (f"Deployment 0 → {options['replicas']} Ready, median of {options['rounds']} rounds", "scale_up_s", "p50", "{:.2f} s"),
        (f"Deployment 0 → {options['replicas']} Ready, fastest / slowest round", "scale_up_s", None, "{:.2f} s"),
    ]
    lines = ["| measurement | before | after | after / before |", "|---|---:|---:|---:|"]
    for title, figure, statistic, number in rows:
        if figure not in before or figure not in after:
            lines.append(f"| {title} | not measured | not measured | – |")
            continue
        if statistic is None:
            cells = [f"{number.format(side[figure]['minimum'])} / {number.format(side[figure]['maximum'])}"
                     for side in (before, after)]
            lines.append(f"| {title} | {cells[0]} | {cells[1]} | – |")
            continue
        value_before, value_after = before[figure][statistic], after[figure][statistic]
        interval = ""
        if statistic == "p50" and figure in SAMPLED_ONE_BY_ONE:
            low, high = p50_ratio_interval(results["samples"]["before"][figure], results["samples"]["after"][figure])
            interval = f" ({low:.2f} to {high:.2f})"
        lines.append(f"| {title} | {number.format(value_before)} | {number.format(value_after)} | "
                     f"{ratio(value_after, value_before):.2f}{interval} |")
    rounds = {side: ", ".join(f"{value:.2f}" for value in results["samples"][side]["scale_up_s"]) for side in SIDES}
    checkouts = results["checkouts"]
    loads = "; ".join(f"{moment} {load}" for moment, load in results["load_average"])
    return "\n".join([
        f"{results['started']}, {results['machine']}.",
        f"before: {checkouts['before']['revision']} ({checkouts['before']['path']}); "
        f"after: {checkouts['after']['revision']} ({checkouts['after']['path']}).",
        f"Load average (1, 5, 15 min): {loads}.",
        "",
        *lines,
        "",
        f"0 → {options['replicas']} Ready per round, in seconds: before {rounds['before']}; after {rounds['after']}. "
        "In brackets: the 95% bootstrap interval of the p50 ratio; one that holds 1.00 is a difference within "
        "the run's noise.",
    ])


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.before_after", description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="checkout of the earlier version (git worktree add DIR REV)")
    parser.add_argument("--after", required=True, help="checkout of the later version")
    parser.add_argument("--pods", type=int, default=100, help="pods started one at a time per side (default 100)")
    parser.add_argument("--replicas", type=int, default=100, help="replicas of the scale-up (default 100)")
    parser.add_argument("--rounds", type=int, default=3, help="scale-ups per side (default 3)")
    parser.add_argument("--out", help="output directory (default benchmarks/results/before-after-<timestamp>/)")
    arguments = parser.parse_args(argv)
    for side in SIDES:
        if not os.path.isfile(os.path.join(getattr(arguments, side), "minikube_py", "__main__.py")):
            parser.error(f"--{side} {getattr(arguments, side)}: not a minikube-py checkout (no minikube_py/__main__.py)")
    if min(arguments.pods, arguments.replicas, arguments.rounds) < 1:
        parser.error("--pods, --replicas and --rounds must be at least 1")
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        print("python -m benchmarks.before_after: needs root (it runs real pods); rerun with sudo", file=sys.stderr)
        return 2
    comparison = Comparison({"before": arguments.before, "after": arguments.after},
                            arguments.pods, arguments.replicas, arguments.rounds)
    results = comparison.execute()
    out_dir = arguments.out or os.path.join(DEFAULT_RESULTS_DIRECTORY,
                                            "before-after-" + datetime.now().strftime("%Y%m%d-%H%M%S"))
    os.makedirs(out_dir, exist_ok=True)
    table = markdown(results)
    with open(os.path.join(out_dir, "results.json"), "w") as file:
        json.dump(results, file, indent=2)
    with open(os.path.join(out_dir, "results.md"), "w") as file:
        file.write(table + "\n")
    print(table)
    print(f"wrote {out_dir}/results.json and results.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
