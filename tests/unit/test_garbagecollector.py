"""Garbage collector: background, foreground and orphan cascades through ownerReferences."""

from __future__ import annotations

import pytest

from controllers.garbagecollector import GarbageCollector


@pytest.fixture
def collector(cluster):
    return GarbageCollector(cluster.client, cluster.clock, cluster.informers)


def deployment(cluster, name="web"):
    return cluster.create("deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "main", "image": "busybox"}]}}},
    })


def names(cluster, resource):
    return sorted(obj.metadata.name for obj in cluster.list(resource))


def test_background_delete_of_an_owner_deletes_its_dependents(cluster, collector):
    replica_set = cluster.replica_set("web", 2)
    cluster.pod("web-a", labels={"app": "web"}, owner=replica_set)
    cluster.pod("web-b", labels={"app": "web"}, owner=replica_set)
    cluster.pod("bystander", labels={"app": "web"})
    cluster.settle(collector)
    assert cluster.client.calls_of("delete") == []

    cluster.registry.delete("replicasets", "default", "web")
    cluster.settle(collector)

    assert names(cluster, "pods") == ["bystander"]
    assert sorted(call.name for call in cluster.client.calls_of("delete", "pods")) == ["web-a", "web-b"]
    assert {call.detail for call in cluster.client.calls_of("delete", "pods")} == {"Background"}


def test_background_deletion_cascades_through_every_level(cluster, collector):
    owner = deployment(cluster)
    replica_set = cluster.replica_set("web-1", 1, labels={"app": "web"}, owner=owner)
    cluster.pod("web-1-a", labels={"app": "web"}, owner=replica_set)
    cluster.settle(collector)

    cluster.registry.delete("deployments", "default", "web")
    cluster.settle(collector)

    assert names(cluster, "replicasets") == []
    assert names(cluster, "pods") == []


def test_an_owner_recreated_under_the_same_name_does_not_save_the_old_dependents(cluster, collector):
    old = cluster.replica_set("web", 1)
    cluster.pod("web-a", labels={"app": "web"}, owner=old)
    cluster.registry.delete("replicasets", "default", "web")
    cluster.replica_set("web", 1)  # same name, new uid

    cluster.settle(collector)

    assert names(cluster, "pods") == []


def test_an_owner_missing_from_the_cache_is_checked_with_a_fresh_read(cluster, collector):
    replica_set = cluster.replica_set("web", 1)
    cluster.pod("web-a", labels={"app": "web"}, owner=replica_set)
    cluster.informers.informer("pods").refresh()  # the ReplicaSet cache is still empty

    collector.drain()

    assert names(cluster, "pods") == ["web-a"]
    assert cluster.client.calls_of("delete") == []


def test_only_references_to_gone_owners_are_dropped_when_another_owner_remains(cluster, collector):
    kept = cluster.replica_set("kept", 1)
    gone = cluster.replica_set("gone", 1)
    cluster.registry.create("pods", "default", {
        "metadata": {"name": "shared", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "kept", "uid": kept.metadata.uid},
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "gone", "uid": gone.metadata.uid},
        ]},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    })
    cluster.registry.delete("replicasets", "default", "gone")

    cluster.settle(collector)

    references = cluster.get("pods", "shared").metadata.owner_references
    assert [reference.name for reference in references] == ["kept"]


def test_foreground_delete_removes_dependents_before_the_owner(cluster, collector):
    owner = deployment(cluster)
    replica_set = cluster.replica_set("web-1", 1, labels={"app": "web"}, owner=owner)
    cluster.pod("web-1-a", labels={"app": "web"}, owner=replica_set)
    cluster.settle(collector)

    cluster.registry.delete("deployments", "default", "web", propagation_policy="Foreground")
    cluster.refresh()
    collector.drain()

    waiting = cluster.get("deployments", "web")
    assert waiting is not None and waiting.metadata.finalizers == ["foregroundDeletion"]
    assert cluster.client.calls_of("delete", "replicasets")[0].detail == "Foreground"

    cluster.settle(collector)

    assert cluster.get("deployments", "web") is None
    assert names(cluster, "replicasets") == []
    assert names(cluster, "pods") == []


def test_foreground_owner_waits_for_a_blocking_dependent_still_stopping(cluster, collector):
    cluster.add_node()
    replica_set = cluster.replica_set("web", 1)
    cluster.pod("web-a", labels={"app": "web"}, owner=replica_set, node_name="node-1")

    cluster.registry.delete("replicasets", "default", "web", propagation_policy="Foreground")
    cluster.settle(collector)

    stopping = cluster.get("pods", "web-a")
    assert stopping.metadata.deletion_timestamp is not None, "the node agent has not stopped it yet"
    assert cluster.get("replicasets", "web") is not None

    cluster.registry.delete("pods", "default", "web-a", grace_period_seconds=0)  # the agent is done
    cluster.settle(collector)

    assert cluster.get("pods", "web-a") is None
    assert cluster.get("replicasets", "web") is None


def test_foreground_owner_does_not_wait_for_dependents_without_block_owner_deletion(cluster, collector):
    cluster.add_node()
    replica_set = cluster.replica_set("web", 1)
    cluster.pod("web-a", labels={"app": "web"}, owner=replica_set, node_name="node-1", block_owner_deletion=False)

    cluster.registry.delete("replicasets", "default", "web", propagation_policy="Foreground")
    cluster.settle(collector)

    assert cluster.get("replicasets", "web") is None
    assert cluster.get("pods", "web-a").metadata.deletion_timestamp is not None


def test_orphan_delete_strips_owner_references_and_keeps_dependents(cluster, collector):
    replica_set = cluster.replica_set("web", 2)
    cluster.pod("web-a", labels={"app": "web"}, owner=replica_set)
    cluster.pod("web-b", labels={"app": "web"}, owner=replica_set)

    cluster.registry.delete("replicasets", "default", "web", propagation_policy="Orphan")
    cluster.settle(collector)

    assert cluster.get("replicasets", "web") is None
    assert names(cluster, "pods") == ["web-a", "web-b"]
    assert all(pod.metadata.owner_references is None for pod in cluster.list("pods"))
    assert cluster.client.calls_of("delete") == []
