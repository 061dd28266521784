"""Command line: `python -m benchmarks run [--quick] [--vs podman] [--pods N] [--out DIR]` (as root).

`--quick` (5 pods, 5 replicas, a 3 s idle window; about a minute) is what CI runs so a change that
breaks the benchmark is caught; the full run (50 pods, 100 replicas, 30 s) stays out of CI. The
exit status is 1 when a phase failed (its rows then read "not measured").
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime

from benchmarks.report import write_results
from benchmarks.runner import Options, Run

DEFAULT_RESULTS_DIRECTORY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run the benchmarks and write results.json, results.md and plots")
    run.add_argument("--quick", action="store_true", help="a few pods and seconds (what CI runs)")
    run.add_argument("--vs", choices=["podman"], help="run podman's equivalent operations in the same run, interleaved")
    run.add_argument("--pods", type=int, help="pods for the pod start and deletion figures (default 50, quick 5)")
    run.add_argument("--out", help="output directory (default benchmarks/results/<timestamp>/)")
    arguments = parser.parse_args(argv)
    if arguments.pods is not None and arguments.pods < 1:
        parser.error("--pods must be at least 1")
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        print("python -m benchmarks run: needs root (it runs real pods); rerun with sudo", file=sys.stderr)
        return 2
    out_dir = arguments.out or os.path.join(DEFAULT_RESULTS_DIRECTORY, datetime.now().strftime("%Y%m%d-%H%M%S"))
    run = Run(Options.for_mode(arguments.quick, arguments.vs, arguments.pods))
    results = run.execute()
    for path in write_results(results, out_dir):
        print(f"wrote {path}")
    with open(os.path.join(out_dir, "results.md")) as file:
        print(file.read())
    return 1 if run.failed_phases else 0


if __name__ == "__main__":
    sys.exit(main())
