"""Running minikube-py for real, for the e2e tests and the benchmarks (see harness/cluster.py)."""
