"""minikube-py: Kubernetes-style pods and controllers on one Linux host, as real processes."""

__version__ = "0.1.0"
