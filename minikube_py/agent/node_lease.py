"""The node's heartbeat Lease, as kubelet's node lease controller keeps it.

Every node agent owns a `coordination.k8s.io/v1` Lease named after its node in the
`kube-node-lease` namespace: `holderIdentity` the node, `leaseDurationSeconds` 40 (kubelet's
`nodeLeaseDurationSeconds`), `renewTime` set on every renewal, and an ownerReference to the Node so
the Lease goes with it. Kubelet renews every quarter of the duration (10 s); a renewal is a small
write, much cheaper than a Node status update, which is why the node lifecycle controller watches
Leases for liveness (controllers/nodelifecycle.py). A failed renewal is retried sooner, 200 ms
doubling up to 7 s, as kubelet's `retryUpdateLease`/backoff does, so a short API hiccup does not
cost a whole interval.
"""

from __future__ import annotations

import logging

from minikube_py.api import errors
from minikube_py.api.coordination import Lease, LeaseSpec
from minikube_py.api.meta import ObjectMeta, OwnerReference
from minikube_py.client.leaderelection import micro_time
from minikube_py.clock import Clock

log = logging.getLogger(__name__)

NODE_LEASE_NAMESPACE = "kube-node-lease"
NODE_LEASE_DURATION_SECONDS = 40  # kubelet's nodeLeaseDurationSeconds
RENEW_FRACTION = 0.25  # kubelet renews every quarter of the duration: 10 s
RETRY_INITIAL_SECONDS = 0.2
RETRY_MAX_SECONDS = 7.0


class NodeLease:
    """Creates and renews one node's Lease; `renew()` returns when to call it again (seconds)."""

    def __init__(self, client, node_name: str, clock: Clock, duration_seconds: int = NODE_LEASE_DURATION_SECONDS):
        self.client = client
        self.node_name = node_name
        self.clock = clock
        self.duration_seconds = duration_seconds
        self.renew_interval = duration_seconds * RENEW_FRACTION
        self._retry = RETRY_INITIAL_SECONDS

    def renew(self) -> float:
        """One renewal (creating the Lease if it is missing); on failure, the back-off's next delay."""
        try:
            self._renew_once()
        except Exception as error:
            delay, self._retry = self._retry, min(self._retry * 2, RETRY_MAX_SECONDS)
            log.warning("node %s: renewing its Lease %s/%s failed (%s); retrying in %.1fs", self.node_name,
                        NODE_LEASE_NAMESPACE, self.node_name, getattr(error, "message", error), delay)
            return delay
        self._retry = RETRY_INITIAL_SECONDS
        return self.renew_interval

    def _renew_once(self) -> None:
        now = micro_time(self.clock.now())
        try:
            lease = self.client.get("leases", self.node_name, NODE_LEASE_NAMESPACE)
        except errors.NotFound:
            self.client.create(Lease(
                metadata=ObjectMeta(name=self.node_name, namespace=NODE_LEASE_NAMESPACE,
                                    owner_references=self._owner()),
                spec=LeaseSpec(holder_identity=self.node_name, lease_duration_seconds=self.duration_seconds,
                               renew_time=now),
            ))
            return
        lease.spec.holder_identity = self.node_name
        lease.spec.lease_duration_seconds = self.duration_seconds
        lease.spec.renew_time = now
        if not lease.metadata.owner_references:
            lease.metadata.owner_references = self._owner()
        self.client.replace(lease)  # a compare-and-swap on the resourceVersion read above

    def _owner(self) -> list[OwnerReference] | None:
        """The Node as the Lease's owner (kubelet's setNodeOwnerFunc), once the Node exists."""
        try:
            node = self.client.get("nodes", self.node_name)
        except errors.NotFound:
            return None
        return [OwnerReference(api_version="v1", kind="Node", name=self.node_name, uid=node.metadata.uid)]
