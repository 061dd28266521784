"""The service account controller, driven by hand against the in-memory Registry."""

from __future__ import annotations

import pytest

from controllers.serviceaccount import ServiceAccountController


@pytest.fixture
def controller(cluster):
    return ServiceAccountController(cluster.client, cluster.clock, cluster.informers)


def test_every_namespace_gets_a_default_service_account(cluster, controller):
    cluster.create("namespaces", {"metadata": {"name": "team"}}, namespace=None)
    cluster.settle(controller)
    for namespace in ("default", "kube-system", "team"):
        assert cluster.get("serviceaccounts", "default", namespace) is not None


def test_a_deleted_default_service_account_comes_back(cluster, controller):
    cluster.settle(controller)
    first = cluster.get("serviceaccounts", "default")
    cluster.registry.delete("serviceaccounts", "default", "default")
    cluster.settle(controller)
    again = cluster.get("serviceaccounts", "default")
    assert again is not None and again.metadata.uid != first.metadata.uid


def test_a_terminating_namespace_gets_none(cluster, controller):
    cluster.create("namespaces", {"metadata": {"name": "going"}}, namespace=None)
    cluster.create("pods", {"metadata": {"name": "p"}, "spec": {"nodeName": "n", "containers": [
        {"name": "c", "image": "busybox"}]}}, namespace="going")
    cluster.registry.delete("namespaces", None, "going")
    cluster.settle(controller)
    assert cluster.get("serviceaccounts", "default", "going") is None
