"""The node agent (our kubelet): runs the pods bound to this node and reports how they are doing.

Shape, as every controller here (client/controller.py): an informer on pods feeds a work queue
keyed by pod uid, and a pool of workers (eight by default) runs `sync(uid)`, with the
controller's retry back-off and retry cap. The queue guarantees one worker per pod at a time, so
a small pool serves a thousand pods. Each sync moves the pod's record (pod.py: one lifecycle
state machine, one container-status state machine per container in status.py) one
level-triggered step:

- an active pod: sandbox, init containers, app containers, probes, status (sync.py);
- a pod deleted, gone from the API, or on a stopping node: stop its containers and free it
  (termination.py), in steps too: a stop never blocks a worker for a grace period.

Nothing polls: the queue wakes on pod events, on container exits (one thread blocked in
`runtime.wait_any`), on back-off timers and stop deadlines (the sync's return value), and on probe
results (ProbeManager's timer heap and pool). Re-adoption after a daemon restart is in
adoption.py, the NodeProxy (logs, exec, port-forward, inspect) in proxy.py; here are the wiring, the Node
object and its heartbeat, and starting and stopping.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from minikube_py.agent import node as node_status
from minikube_py.agent.admission import Rejection, admit
from minikube_py.agent.adoption import Adoption
from minikube_py.agent.backoff import CrashLoopBackOff
from minikube_py.agent.config_sources import EnvSources, referenced_objects
from minikube_py.agent import podfiles
from minikube_py.agent.images import ImagePulls
from minikube_py.agent.hooks import HookRunner
from minikube_py.agent.ipam import Ipam
from minikube_py.agent.node_lease import NodeLease
from minikube_py.agent.pod import LONGEST_GRACE_SECONDS, Lifecycle, PodRecord, PodTable, Why
from minikube_py.agent.probes import ProbeManager
from minikube_py.agent.proxy import NodeProxy
from minikube_py.agent.resource_metrics import ResourceMetricsCollector
from minikube_py.agent.status import ContainerRecord
from minikube_py.agent.sync import PodSync
from minikube_py.agent.termination import KILL_WAIT_SECONDS, PodTermination
from minikube_py.agent.volumes import ObjectSources, PodVolumes
from minikube_py.agent.volumes import referenced_objects as volume_references
from minikube_py.agent.volumes_tokens import ApiTokenSource
from minikube_py.api import errors
from minikube_py.api.core import Node, Pod
from minikube_py.client.controller import Controller
from minikube_py.client.events import EventRecorder
from minikube_py.client.informer import Informer, SharedInformers
from minikube_py.clock import Clock
from minikube_py.runtime.types import Runtime

log = logging.getLogger(__name__)

# The exit watcher's longest wait in runtime.wait_any: also how long `stop` may wait for it to let
# go of the runtime's event subscription.
EXIT_WAIT_SECONDS = 1.0
# `stop` waits this long beyond the longest grace period for the pods to be stopped.
STOP_MARGIN_SECONDS = KILL_WAIT_SECONDS + 30.0


@dataclass
class AgentConfig:
    home: str
    cluster_name: str
    gateway: str  # the bridge's address, first of the pod CIDR
    prefix_len: int
    backoff_initial: float = 10.0
    backoff_max: float = 300.0
    backoff_reset: float = 600.0
    pods_max_pids: int = 1024
    max_pods: int = node_status.MAX_PODS  # the Node's pods capacity (kubelet's --max-pods)
    seccomp_default: bool = True  # RuntimeDefault for containers that name no seccompProfile
    node_status_interval: float = 10.0
    pod_cidr: str | None = None  # set: the Node registers with it as spec.podCIDR (the daemon's own node)
    node_lease_duration: int = 40  # kubelet's nodeLeaseDurationSeconds; renewed every quarter of it
    workers: int = 8
    host_resolv_conf: str = "/etc/resolv.conf"
    cluster_dns: str | None = None  # kubelet's --cluster-dns: the nameserver of ClusterFirst pods
    metric_resolution: float = 15.0  # seconds between cgroup readings for the Metrics API (agent/resource_metrics.py)
    image_pulls_in_parallel: int = 3  # pulls run beside the pod workers (agent/images.py); 0: on the worker


class NodeAgent(Controller, PodSync, PodTermination, Adoption):
    """Runs this node's pods through `runtime` and is the NodeProxy the API server forwards to."""

    def __init__(self, client, runtime: Runtime, node_name: str, ipam: Ipam, clock: Clock, config: AgentConfig,
                 informers: SharedInformers | None = None):
        """`informers`: caches to share for what the whole cluster's pods read (ConfigMaps, Secrets,
        ServiceAccounts, Services, claims and volumes), as the daemon's own node shares its
        controllers'; an agent of its own process keeps its own."""
        super().__init__("agent", clock, workers=config.workers)

        def informer(resource: str) -> Informer:
            return informers.informer(resource) if informers is not None else Informer(client, resource)

        self.client = client
        self.runtime = runtime
        self.node_name = node_name
        self.ipam = ipam
        self.config = config
        self.host_ip = node_status.host_ip()
        self.recorder = EventRecorder(client, "kubelet", clock, host=node_name)
        self.backoff = CrashLoopBackOff(config.backoff_initial, config.backoff_max, config.backoff_reset)
        self.probes = ProbeManager(runtime, clock, self._on_probe_result)
        self.hooks = HookRunner(runtime, clock, self.queue.add)
        self.table = PodTable()
        self.lease = NodeLease(client, node_name, clock, config.node_lease_duration)
        self.proxy = NodeProxy(self.table, runtime, config.home, node_name, self._stopping)
        self.resource_metrics = ResourceMetricsCollector(runtime, self.table, node_name, clock, config.metric_resolution)
        # Set by stop(stop_pods=True): every pod terminates (grace: this, or each pod's own).
        self._node_stopping = False
        # Admission is one pod at a time, as kubelet's, so two new pods cannot both take the last room.
        self._admission_lock = threading.Lock()
        self._rejected: set[str] = set()  # uids refused by admission, until they are deleted
        self._stop_grace: float | None = None
        self._helpers: list[threading.Thread] = []
        self.pods = self.watch(Informer(client, "pods", field_selector=f"spec.nodeName={node_name}"), self._on_pod, lambda old, new: self._on_pod(new), self._on_pod)
        # ConfigMaps and Secrets that containers' env and volumes read: a change re-syncs the pods naming them.
        self.config_maps = self.watch(informer("configmaps"), *self._config_handlers("configmaps"))
        self.secrets = self.watch(informer("secrets"), *self._config_handlers("secrets"))
        # ServiceAccounts: their imagePullSecrets, and the tokens projected volumes ask for (one
        # appearing re-syncs the pods waiting on it).
        self.service_accounts = self.watch(informer("serviceaccounts"), *self._config_handlers("serviceaccounts"))
        self.image_pulls = ImagePulls(runtime, clock, self.recorder, self.queue.add,
                                      lambda namespace, name: self.secrets.get(f"{namespace}/{name}"),
                                      lambda namespace, name: self.service_accounts.get(f"{namespace}/{name}"),
                                      config.backoff_initial, config.backoff_max, config.image_pulls_in_parallel)
        # Services whose variables a container gets when it is created (agent/service_env.py).
        self.services = self.watch(informer("services"))
        self.env_sources = EnvSources(lambda namespace, name: self.config_maps.get(f"{namespace}/{name}"),
                                      lambda namespace, name: self.secrets.get(f"{namespace}/{name}"),
                                      node_status.node_resources(config.max_pods)[1],
                                      services=self.services.list)
        self.tokens = ApiTokenSource(client, clock.now)
        # Claims that persistentVolumeClaim volumes name (one binding re-syncs its pods), and their volumes.
        self.claims = self.watch(informer("persistentvolumeclaims"),
                                 *self._config_handlers("persistentvolumeclaims"))
        self.persistent_volumes = self.watch(informer("persistentvolumes"))
        self.volumes = PodVolumes(runtime, ObjectSources(
            self.env_sources.config_maps, self.env_sources.secrets, self.env_sources, self.tokens,
            claims=lambda namespace, name: self.claims.get(f"{namespace}/{name}"),
            persistent_volumes=lambda _namespace, name: self.persistent_volumes.get(name)), clock.now,
            podfiles.set_volume_ownership)

    # ------------------------------------------------------------------------------------------
    # Running

    def start(self) -> None:
        """Register the node, re-adopt what the runtime still runs, then follow the API."""
        self.register_node()
        self.lease.renew()
        self.pods.refresh()
        self.adopt()
        self.hooks.start()  # before the workers: no hook may run on a worker
        self.run()
        self.probes.start()
        self.resource_metrics.start()
        for name, target in (("heartbeat", self._heartbeat_loop), ("lease", self._lease_loop),
                             ("exit-loop", self._exit_loop)):
            thread = threading.Thread(target=target, name=f"agent-{name}", daemon=True)
            thread.start()
            self._helpers.append(thread)

    def stop(self, stop_pods: bool = False, grace_period: float | None = None, timeout: float = 5.0) -> None:
        """Stop following the API; with `stop_pods`, first stop every container gracefully (the pods
        stay in the API, and start again on the next start) and leave their sandboxes to the
        runtime's `shutdown(remove_all=True)`, which must follow. `grace_period`, when given,
        replaces every pod's terminationGracePeriodSeconds (`stop --grace-period`)."""
        if stop_pods:
            self._stop_all_pods(grace_period)
        super().stop(timeout)
        self.probes.stop()
        self.resource_metrics.stop()
        self.image_pulls.close()
        self.hooks.stop()
        # The exit watcher returns from runtime.wait_any within EXIT_WAIT_SECONDS: waited for, so
        # the runtime's shutdown does not queue behind it for the event subscription.
        for thread in self._helpers:
            thread.join(timeout)
        self._helpers.clear()

    def _stop_all_pods(self, grace_period: float | None) -> None:
        """Terminate every pod through the work queue (as the node's own workers, or on this thread
        when none run) and wait until all are stopped."""
        self._stop_grace, self._node_stopping = grace_period, True
        records = self.table.all()
        for record in records:
            self.queue.add(record.uid)
        if not self._threads:
            self.run_until_idle()
            return
        graces = [record.pod.spec.termination_grace_period_seconds or 0 for record in records]
        longest = grace_period if grace_period is not None else max(graces, default=0)
        timeout = min(longest, LONGEST_GRACE_SECONDS) + STOP_MARGIN_SECONDS
        if not self.table.wait_until_empty(timeout):
            log.warning("node %s: %d pods still stopping after %ss; leaving them to the runtime's shutdown",
                        self.node_name, len(self.table.all()), timeout)

    def _exit_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                exited = self.runtime.wait_any(EXIT_WAIT_SECONDS)
            except Exception:
                if self._stopping.is_set():
                    return  # the runtime was shut down under us
                log.exception("waiting for container exits failed")
                self._stopping.wait(EXIT_WAIT_SECONDS)
                continue
            for state in exited:
                self.queue.add(state.sandbox_id)

    def _heartbeat_loop(self) -> None:
        while not self._stopping.wait(self.config.node_status_interval):
            try:
                self.register_node()  # creates it again if somebody deleted it
            except Exception:
                log.exception("node %s: status heartbeat failed", self.node_name)

    def _lease_loop(self) -> None:
        delay = self.lease.renew_interval
        while not self._stopping.wait(delay):
            delay = self.lease.renew()

    def run_until_idle(self, max_rounds: int = 100) -> None:
        """Do on this thread what the agent's threads would do now: refresh the pod cache, collect
        container exits, run due probes and sync every pod that is due. For tests on a FakeClock."""
        for _ in range(max_rounds):
            self.config_maps.refresh()
            self.secrets.refresh()
            self.service_accounts.refresh()
            self.services.refresh()
            self.pods.refresh()
            exited = self.runtime.wait_any(0)
            for state in exited:
                self.queue.add(state.sandbox_id)
            probes_ran = self.probes.run_due()
            self.queue.tick()
            if not len(self.queue) and not exited and not probes_ran:
                return
            self.drain()
        raise RuntimeError(f"node agent: still busy after {max_rounds} rounds")

    # ------------------------------------------------------------------------------------------
    # The Node

    def register_node(self) -> None:
        pod_cidr = self.config.pod_cidr
        try:
            node = self.client.get("nodes", self.node_name)
        except errors.NotFound:
            self.client.create(Node.model_validate({
                "metadata": {"name": self.node_name, "labels": node_status.node_labels(self.node_name)},
                "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]} if pod_cidr else {},
            }))
        else:
            if pod_cidr and not node.spec.pod_cidr:
                self.client.patch("nodes", self.node_name, {"spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]}})
        self.update_node_status()

    def update_node_status(self) -> None:
        current = self.client.get("nodes", self.node_name)
        previous = [condition.to_dict() for condition in current.status.conditions or []]
        status = node_status.node_status(self.node_name, self.host_ip, self.clock.now(), previous,
                                         max_pods=self.config.max_pods)
        self.client.patch_status("nodes", self.node_name, {"status": status})

    # ------------------------------------------------------------------------------------------
    # Events in

    def _on_pod(self, pod: Pod) -> None:
        if pod.spec.node_name != self.node_name:
            return
        uid = pod.metadata.uid
        self.table.remember(uid, f"{pod.metadata.namespace}/{pod.metadata.name}")
        record = self.table.get(uid)
        if record is not None and not record.terminating:
            # The last word of the API, also for a pod just deleted (its grace period).
            record.pod = pod
        self.queue.add(uid)

    def _config_handlers(self, resource: str):
        def changed(obj) -> None:
            for record in self.table.all():
                pod = record.pod
                if (pod.metadata.namespace == obj.metadata.namespace
                        and (resource, obj.metadata.name) in referenced_objects(pod) | volume_references(pod)):
                    self.queue.add(record.uid)
        return changed, lambda old, new: changed(new), changed

    def _current_pod(self, uid: str) -> Pod | None:
        key = self.table.key(uid)
        pod = self.pods.get(key) if key else None
        if pod is None or pod.metadata.uid != uid or pod.spec.node_name != self.node_name:
            return None
        return pod

    # ------------------------------------------------------------------------------------------
    # The sync: one step of the pod's lifecycle

    def sync(self, uid: str) -> float | None:
        pod = self._current_pod(uid)
        record = self.table.get(uid)
        if record is None:
            if pod is None:
                self.table.forget_key(uid)
                self._rejected.discard(uid)
                return None
            if self._node_stopping or uid in self._rejected or pod.status.phase in ("Succeeded", "Failed"):
                return None  # kubelet never starts a terminal pod
            record = self._admit(pod)
            if record is None:
                return None
        if record.lifecycle is Lifecycle.FINISHED:
            if pod is None:
                self.table.remove(uid, forget_key=True)
                self.image_pulls.forget(uid)
            return None  # stopped and deleted by us; the cache has not seen the deletion yet
        if pod is not None:
            record.pod = pod
        if not record.terminating:
            if pod is None:
                # Gone from the API (force-deleted, or deleted after we stopped it): clean up only.
                grace = record.pod.metadata.deletion_grace_period_seconds
                self._begin_termination(record, Why.GONE,
                                        record.pod.spec.termination_grace_period_seconds if grace is None else grace)
            elif self._node_stopping:
                self._begin_termination(record, Why.NODE_STOPPING, pod.spec.termination_grace_period_seconds
                                        if self._stop_grace is None else self._stop_grace)
            elif pod.metadata.deletion_timestamp:
                self._begin_termination(record, Why.DELETED, self._remaining_grace(pod))
        if record.lifecycle is Lifecycle.TERMINATING:
            return self._sync_terminating(record)
        requeue_after = self._sync_running_pod(record) if record.lifecycle is Lifecycle.ACTIVE else None
        self._write_status(record)
        return requeue_after

    def _admit(self, pod: Pod) -> PodRecord | None:
        """The new pod's record, or None when the node has no room for it (agent/admission.py)."""
        with self._admission_lock:
            # A pod counts until its containers have stopped: a deleted pod's terminal phase is
            # settled before its object goes, so the pod the scheduler binds next finds it gone.
            admitted = [record.requests for record in self.table.all()
                        if record.lifecycle not in (Lifecycle.COMPLETED, Lifecycle.FINISHED)
                        and not record.terminal_phase]
            rejection = admit(pod, self.env_sources.allocatable, admitted)
            if rejection is None:
                return self._new_record(pod)
            self._rejected.add(pod.metadata.uid)
        self._reject(pod, rejection)
        return None

    def _reject(self, pod: Pod, rejection: Rejection) -> None:
        self.recorder.event(pod, "Warning", rejection.reason, rejection.message)
        try:
            self.client.patch_status("pods", pod.metadata.name, {"status": {
                "phase": "Failed", "reason": rejection.reason, "message": rejection.status_message}},
                namespace=pod.metadata.namespace)
        except errors.NotFound:
            pass

    def _new_record(self, pod: Pod) -> PodRecord:
        record = PodRecord(pod.metadata.uid, pod.metadata.namespace, pod.metadata.name, pod)
        init_containers = pod.spec.init_containers or []
        # Before it exists a container waits as ContainerCreating, or as PodInitializing in a pod
        # with init containers (k/k convertToAPIContainerStatuses).
        waiting_reason = "PodInitializing" if init_containers else "ContainerCreating"
        for container in init_containers:
            # A sidecar (restartPolicy Always) is run like an app container once it is its turn.
            sidecar = container.restart_policy == "Always"
            record.containers[container.name] = ContainerRecord(container.name, container.image,
                                                                init_container=not sidecar, sidecar=sidecar,
                                                                waiting_reason=waiting_reason)
        for container in pod.spec.containers:
            record.containers[container.name] = ContainerRecord(container.name, container.image,
                                                                waiting_reason=waiting_reason)
        self.table.add(record)
        return record

    # ------------------------------------------------------------------------------------------
    # NodeProxy: the API server forwards these

    def logs(self, namespace, name, container=None, follow=False, tail_lines=None, timestamps=False, previous=False):
        return self.proxy.logs(namespace, name, container, follow, tail_lines, timestamps, previous)

    def exec(self, namespace, name, container, command, tty=False):
        return self.proxy.exec(namespace, name, container, command, tty)

    def attach(self, namespace, name, container, stdin=False, tty=False):
        return self.proxy.attach(namespace, name, container, stdin, tty)

    def port_forward(self, namespace, name, port):
        return self.proxy.port_forward(namespace, name, port)

    def inspect(self, namespace, name) -> dict:
        return self.proxy.inspect(namespace, name)

    def node_metrics(self):
        """This node's NodeMetrics (None until it has two readings): the Metrics API asks."""
        return self.resource_metrics.node_metrics()

    def pod_metrics(self):
        """PodMetrics of the pods this node runs, without labels."""
        return self.resource_metrics.pod_metrics()
