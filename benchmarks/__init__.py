"""Benchmarks of minikube-py, side by side with podman: `python -m benchmarks run [--quick] [--vs podman]`.

Each capability issue names speed and memory targets; this package measures them on the machine
at hand, repeatably, and writes results.json, results.md and plots. docs/performance.md explains
the method and quotes the latest full run.
"""
