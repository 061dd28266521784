"""The service proxy's control loop: informers on Services and EndpointSlices, one key, one table.

Every Service or EndpointSlice change enqueues the single key `table`; the work queue folds a
burst of changes into one sync, and a key being synced is marked to be synced once more after,
so the table is always rewritten from the latest caches and never from a stale half. `sync`
builds the whole rule set (`rules.build_ruleset`, a pure function) and applies the difference in
one transaction (`nftables.NftablesTable`); a failed transaction raises, and the queue retries
with back-off while the kernel keeps the previous table. `stop()` removes the table. Like k3s' ServiceLB, it also writes each LoadBalancer Service's
`status.loadBalancer.ingress`: the node's address.

kube-proxy's nftables mode waits up to a second between syncs (`--min-sync-period`); this proxy
syncs as soon as a change arrives, since a sync that only touches the changed Service is cheap.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from minikube_py.client.controller import Controller
from minikube_py.client.informer import SharedInformers, shared_informers
from minikube_py.clock import Clock
from minikube_py.proxy.nftables import NftablesTable, bridge_netfilter_enabled, enable_bridge_forwarding
from minikube_py.proxy.rules import build_ruleset, table_name

log = logging.getLogger(__name__)

COMPONENT = "service-proxy"
TABLE_KEY = "table"


class ServiceProxy(Controller):
    """Keeps the cluster's nftables table equal to what its Services and EndpointSlices say."""

    def __init__(self, client: Any, cluster_name: str, pod_cidr: str, node_name: str, node_address: str,
                 bridge: str | None = None, clock: Clock | None = None, informers: SharedInformers | None = None,
                 table: NftablesTable | None = None, on_applied: Callable[[float], None] | None = None):
        super().__init__(COMPONENT, clock, workers=1)
        self.client = client
        self.cluster_name = cluster_name
        self.pod_cidr = pod_cidr
        self.node_name = node_name
        self.node_address = node_address
        self.bridge = bridge
        self.table = table or NftablesTable(table_name(cluster_name))
        self.on_applied = on_applied
        informers = informers or shared_informers(client)
        self.services = self.watch(informers.informer("services"), on_add=self._changed,
                                   on_update=self._updated, on_delete=self._changed)
        self.slices = self.watch(informers.informer("endpointslices"), on_add=self._changed,
                                 on_update=self._updated, on_delete=self._changed)
        self._masquerade_all: bool | None = None

    def _changed(self, _obj: Any) -> None:
        self.enqueue(TABLE_KEY)

    def _updated(self, old: Any, new: Any) -> None:
        if old.metadata.resource_version != new.metadata.resource_version:
            self.enqueue(TABLE_KEY)

    def run(self) -> None:
        if self.bridge:
            enable_bridge_forwarding(self.bridge)
        self._masquerade_all = not bridge_netfilter_enabled()
        if self._masquerade_all:
            log.info("bridged packets skip netfilter here (no br_netfilter): masquerading all Service traffic")
        self.enqueue(TABLE_KEY)
        super().run()

    def sync(self, key: Any) -> None:
        started = time.monotonic()
        ruleset = build_ruleset(self.cluster_name, self.services.list(), self.slices.list(), self.pod_cidr,
                                self.node_name, self.node_address, masquerade_all=bool(self._masquerade_all))
        commands = self.table.apply(ruleset)
        if commands and self.on_applied is not None:
            self.on_applied(time.monotonic() - started)
        self._publish_load_balancer_addresses()
        return None

    def _publish_load_balancer_addresses(self) -> None:
        """As k3s' ServiceLB: a LoadBalancer Service's status names the node's address, where the
        table serves its ports (`get svc` shows it as EXTERNAL-IP instead of `<pending>`)."""
        wanted = {"ingress": [{"ip": self.node_address, "ipMode": "VIP"}]}
        for service in self.services.list():
            if service.spec.type != "LoadBalancer":
                continue
            load_balancer = service.status.load_balancer if service.status else None
            if load_balancer is not None and load_balancer.to_dict() == wanted:
                continue
            self.client.patch_status("services", service.metadata.name, {"status": {"loadBalancer": wanted}},
                                     service.metadata.namespace)

    def stop(self, timeout: float = 5.0, remove_table: bool = True) -> None:
        super().stop(timeout)
        if remove_table:
            try:
                self.table.remove()
            except Exception:
                log.exception("removing nftables table %s failed", self.table.table)
