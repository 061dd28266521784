"""The Deployment and ReplicaSet controllers together, driven through random histories.

Each seeded scenario creates a Deployment with random replicas, maxSurge/maxUnavailable,
minReadySeconds and strategy, then applies a random sequence of template changes, scale changes,
pause/resume and pod deletions, with pods turning Ready at random moments (by patching their
status, as a node agent would). Both controllers are the real ones over the in-memory Registry
on a FakeClock, driven round by round: Deployment controller, ReplicaSet controller, pods turn
ready, time moves on one second. After every round the rolling-update guarantees must hold, and
after the last change the system must settle into exactly one full, available ReplicaSet with
the current template and every old one at 0.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest


from controllers.common import is_pod_active, is_pod_available, is_pod_ready
from controllers.deployment import DeploymentController, util
from controllers.replicaset import ReplicaSetController
from tests.unit.fakes import FakeCluster

FENCEPOST_CHOICES = (0, 1, 2, "25%", "50%")
SCENARIOS = 60
MAX_ROUNDS = 400


@dataclass
class Scenario:
    cluster: FakeCluster
    deployments: DeploymentController
    replica_sets: ReplicaSetController
    rng: random.Random
    # Pods are bound to a node, so a deleted pod stays Terminating until the "node agent" here
    # removes it, at a random later round.
    bind_pods: bool = False
    # Set while a template change that started from a complete, fully ready Deployment is rolling
    # out with nothing else (scaling, pod deletions, pausing) getting in its way.
    clean_rollout: bool = False

    # -- reading the world --

    def deployment(self):
        return self.cluster.get("deployments", "web")

    def replica_set_list(self):
        return self.cluster.list("replicasets")

    def active_pods(self):
        return [pod for pod in self.cluster.list("pods") if is_pod_active(pod)]

    def revision(self) -> str:
        return self.cluster.registry.list("namespaces")["metadata"]["resourceVersion"]

    # -- driving --

    def make_some_pods_ready(self, probability: float) -> None:
        for pod in self.active_pods():
            if self.bind_pods and not pod.spec.node_name:
                self.cluster.registry.bind("default", pod.metadata.name, "node-1")
            if not is_pod_ready(pod) and self.rng.random() < probability:
                self.cluster.set_pod_status(pod.metadata.name, ready=True)

    def finish_some_terminating_pods(self, probability: float) -> None:
        for pod in self.cluster.list("pods"):
            if pod.metadata.deletion_timestamp is not None and self.rng.random() < probability:
                self.cluster.registry.delete("pods", "default", pod.metadata.name, grace_period_seconds=0)

    def round(self, ready_probability: float) -> None:
        self.cluster.refresh()
        self.deployments.drain()
        self.check_rolling_invariants()
        self.cluster.refresh()
        self.replica_sets.drain()
        self.check_recreate_invariant()
        self.make_some_pods_ready(ready_probability)
        self.finish_some_terminating_pods(ready_probability)
        self.check_recreate_invariant()
        self.cluster.clock.advance(1)
        self.deployments.queue.tick()
        self.replica_sets.queue.tick()

    def settle(self, rounds_without_writes: int) -> None:
        quiet = 0
        for _ in range(MAX_ROUNDS):
            before = self.revision()
            self.round(ready_probability=1.0)
            quiet = quiet + 1 if self.revision() == before else 0
            if quiet >= rounds_without_writes:
                return
        raise AssertionError(f"no steady state after {MAX_ROUNDS} rounds: {self.describe()}")

    def describe(self) -> str:
        deployment = self.deployment()
        sizes = [(rs.metadata.name, rs.spec.replicas, rs.status.available_replicas) for rs in self.replica_set_list()]
        return f"spec={deployment.spec.to_dict()} status={deployment.status.to_dict()} replica sets={sizes}"

    # -- what must hold --

    def check_rolling_invariants(self) -> None:
        deployment = self.deployment()
        if deployment.spec.strategy.type != util.ROLLING_UPDATE:
            return
        if (deployment.status.observed_generation or 0) < (deployment.metadata.generation or 0):
            return  # the controller has not acted on the latest spec yet
        replicas = deployment.spec.replicas
        total = sum(rs.spec.replicas for rs in self.replica_set_list())
        assert total <= replicas + util.max_surge(deployment), self.describe()
        if self.clean_rollout:
            minimum_available = replicas - util.max_unavailable(deployment)
            now = self.cluster.clock.now()
            available = sum(is_pod_available(pod, deployment.spec.min_ready_seconds, now)
                            for pod in self.active_pods())
            assert available >= minimum_available, self.describe()

    def check_recreate_invariant(self) -> None:
        """Recreate: no pod of the new template while a pod of an old one may still run."""
        deployment = self.deployment()
        if deployment.spec.strategy.type != util.RECREATE or not self.clean_rollout:
            return
        templates = {rs.metadata.uid: util.equal_ignore_hash(rs.spec.template, deployment.spec.template)
                     for rs in self.replica_set_list()}
        pods = [pod for pod in self.cluster.list("pods") if pod.status.phase not in ("Succeeded", "Failed")]
        owners = {templates.get(pod.metadata.owner_references[0].uid) for pod in pods}
        assert owners != {True, False}, self.describe()

    def check_converged(self) -> None:
        deployment = self.deployment()
        replicas = deployment.spec.replicas
        current = [rs for rs in self.replica_set_list()
                   if util.equal_ignore_hash(rs.spec.template, deployment.spec.template)]
        old = [rs for rs in self.replica_set_list() if rs not in current]
        description = self.describe()
        assert len(current) == 1, description
        (new_replica_set,) = current
        assert new_replica_set.spec.replicas == replicas, description
        assert all(rs.spec.replicas == 0 for rs in old), description
        assert len(old) <= deployment.spec.revision_history_limit, description
        pods = self.active_pods()
        assert len(pods) == replicas, description
        assert len(self.cluster.list("pods")) == replicas, description
        assert all(pod.metadata.owner_references[0].uid == new_replica_set.metadata.uid for pod in pods), description
        status = deployment.status
        assert status.observed_generation == deployment.metadata.generation, description
        assert ((status.replicas or 0), (status.updated_replicas or 0), (status.available_replicas or 0),
                (status.unavailable_replicas or 0)) == (replicas, replicas, replicas, 0), description
        assert status.condition("Available").status == "True", description
        progressing = status.condition("Progressing")
        assert (progressing.status, progressing.reason) == ("True", "NewReplicaSetAvailable"), description
        assert deployment.metadata.annotations[util.REVISION_ANNOTATION] == \
            new_replica_set.metadata.annotations[util.REVISION_ANNOTATION], description
        revisions = [util.revision_of(rs) for rs in self.replica_set_list()]
        assert len(set(revisions)) == len(revisions), description
        assert util.revision_of(new_replica_set) == max(revisions), description

    def is_complete_and_available(self) -> bool:
        """The status says complete and the pods agree (a pod just deleted is not in the status yet)."""
        deployment = self.deployment()
        now = self.cluster.clock.now()
        pods = self.active_pods()
        return (util.deployment_complete(deployment, deployment.status)
                and len(pods) == deployment.spec.replicas
                and all(is_pod_available(pod, deployment.spec.min_ready_seconds, now) for pod in pods))


def fenceposts(rng: random.Random) -> tuple[int | str, int | str]:
    while True:
        surge, unavailable = rng.choice(FENCEPOST_CHOICES), rng.choice(FENCEPOST_CHOICES)
        if surge not in (0, "0%") or unavailable not in (0, "0%"):
            return surge, unavailable


def new_scenario(seed: int) -> Scenario:
    rng = random.Random(seed)
    cluster = FakeCluster()
    deployments = DeploymentController(cluster.client, cluster.clock, cluster.informers)
    replica_sets = ReplicaSetController(cluster.client, cluster.clock, cluster.informers)
    strategy: dict = {"type": "Recreate"} if rng.random() < 0.2 else {"type": "RollingUpdate"}
    if strategy["type"] == "RollingUpdate":
        surge, unavailable = fenceposts(rng)
        strategy["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    cluster.create("deployments", {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": rng.randint(0, 6), "minReadySeconds": rng.choice((0, 0, 2)),
                 "revisionHistoryLimit": rng.randint(1, 3), "strategy": strategy,
                 "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "main", "image": "busybox:0"}]}}},
    })
    return Scenario(cluster, deployments, replica_sets, rng, bind_pods=rng.random() < 0.5)


def patch_deployment(scenario: Scenario, patch: dict) -> None:
    scenario.cluster.registry.patch("deployments", "default", "web", patch)


def run(seed: int) -> None:
    scenario = new_scenario(seed)
    rng = scenario.rng
    try:
        quiet_rounds = scenario.deployment().spec.min_ready_seconds + 3
        scenario.settle(quiet_rounds)
        scenario.check_converged()
        for step in range(rng.randint(3, 8)):
            operation = rng.choice(("template", "template", "scale", "pause", "resume", "delete pod"))
            paused = bool(scenario.deployment().spec.paused)
            if operation == "template":
                scenario.clean_rollout = not paused and scenario.is_complete_and_available()
                # Sometimes an image used before: a roll back onto an existing ReplicaSet.
                image = f"busybox:{rng.randint(0, step + 1)}"
                patch_deployment(scenario, {"spec": {"template": {"spec": {"containers": [
                    {"name": "main", "image": image}]}}}})
            elif operation == "scale":
                scenario.clean_rollout = False
                patch_deployment(scenario, {"spec": {"replicas": rng.randint(0, 6)}})
            elif operation == "pause":
                scenario.clean_rollout = False
                patch_deployment(scenario, {"spec": {"paused": True}})
            elif operation == "resume":
                scenario.clean_rollout = False
                patch_deployment(scenario, {"spec": {"paused": None}})
            else:
                # The caches see the pod first: a pod created and deleted between two re-lists
                # is invisible to an informer, and its creation would stay expected for the
                # five-minute expectations timeout (in Kubernetes too; its watch sees both).
                scenario.cluster.refresh()
                pods = scenario.active_pods()
                if pods:
                    scenario.clean_rollout = False
                    victim = rng.choice(pods)
                    scenario.cluster.registry.delete("pods", "default", victim.metadata.name)
            # Let the change take a few random steps, new pods turning Ready only now and then,
            # before the next change lands on top of it.
            for _ in range(rng.randint(0, 6)):
                scenario.round(ready_probability=0.4)
        patch_deployment(scenario, {"spec": {"paused": None}})
        scenario.clean_rollout = False
        scenario.settle(quiet_rounds)
        scenario.check_converged()
    finally:
        scenario.cluster.close()


@pytest.mark.parametrize("seed", range(SCENARIOS))
def test_random_histories_of_changes_converge_to_one_full_replica_set(seed):
    run(seed)


def test_a_rollout_from_a_complete_state_never_drops_below_min_available():
    """The availability guarantee checked on its own, for the docs' replicas 3 with 25%/25%."""
    cluster = FakeCluster()
    try:
        scenario = Scenario(cluster, DeploymentController(cluster.client, cluster.clock, cluster.informers),
                            ReplicaSetController(cluster.client, cluster.clock, cluster.informers), random.Random(7))
        cluster.create("deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "main", "image": "busybox:0"}]}}},
        })
        scenario.settle(3)
        scenario.clean_rollout = True
        patch_deployment(scenario, {"spec": {"template": {"spec": {"containers": [
            {"name": "main", "image": "busybox:1"}]}}}})
        for _ in range(30):
            scenario.round(ready_probability=0.3)
        scenario.settle(3)
        scenario.check_converged()
    finally:
        cluster.close()
