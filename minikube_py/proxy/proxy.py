"""The service proxy's control loop: informers on Services and EndpointSlices, one key, one table.

Every Service or EndpointSlice event marks its Service changed and enqueues the single key
`table`. The work queue folds a burst of events into one sync, and a key being synced is marked
to be synced once more after, so a burst of endpoint changes becomes one or two transactions.
`sync` rebuilds only the changed Services' parts of the table (`rules.service_rules`) from the
caches and writes what they changed in one transaction (`nftables.NftablesTable`): a flushed
and refilled chain, a few verdict-map elements. The first sync, and the first after a failed
transaction, writes the whole table instead. A failed transaction raises, the kernel keeps the
previous table, the changed Services stay marked, and the queue retries with back-off.
`stop()` removes the table. Like k3s' ServiceLB, it also writes each LoadBalancer Service's
`status.loadBalancer.ingress`: the node's address.

kube-proxy's nftables mode waits up to a second between syncs (`--min-sync-period`); this proxy
syncs as soon as a change arrives, since a sync that only touches the changed Service is cheap.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from minikube_py.client.controller import Controller
from minikube_py.client.informer import SharedInformers, shared_informers
from minikube_py.client.slice_index import EndpointSliceIndex, slice_service
from minikube_py.clock import Clock
from minikube_py.proxy.nftables import NftablesTable, bridge_netfilter_enabled, enable_bridge_forwarding
from minikube_py.proxy.rules import ServiceKey, ServiceRules, Settings, TableState, service_rules, table_name

log = logging.getLogger(__name__)

COMPONENT = "service-proxy"
TABLE_KEY = "table"


class ServiceProxy(Controller):
    """Keeps the cluster's nftables table equal to what its Services and EndpointSlices say."""

    # A failed transaction is retried for as long as it fails (kube-proxy never gives up either).
    max_retries = 1_000_000

    def __init__(self, client: Any, cluster_name: str, pod_cidr: str, node_name: str, node_address: str,
                 bridge: str | None = None, clock: Clock | None = None, informers: SharedInformers | None = None,
                 table: NftablesTable | None = None, on_applied: Callable[[float], None] | None = None,
                 bridge_address: str | None = None, bridge_ports: tuple[int, ...] = (),
                 node_network_bridge: str | None = None, publish_load_balancers: bool = True):
        super().__init__(COMPONENT, clock, workers=1)
        self.client = client
        self.cluster_name = cluster_name
        self.pod_cidr = pod_cidr
        self.node_name = node_name
        self.node_address = node_address
        self.bridge = bridge
        self.bridge_address = bridge_address
        self.bridge_ports = bridge_ports
        self.node_network_bridge = node_network_bridge
        # One proxy per cluster writes LoadBalancer addresses (the daemon's); a joined node's
        # proxy only programs its own namespace.
        self.publish_load_balancers = publish_load_balancers
        self.table = table or NftablesTable(table_name(cluster_name))
        self.on_applied = on_applied
        self._lock = threading.Lock()
        self._changed: set[ServiceKey] = set()  # Services whose part of the table may be stale
        informers = informers or shared_informers(client)
        # Registered before this proxy's own handlers, so a sync they trigger finds it up to date.
        self.slice_index = EndpointSliceIndex(informers.informer("endpointslices"))
        self.services = self.watch(informers.informer("services"), on_add=self._service_changed,
                                   on_update=lambda old, new: self._service_changed(new),
                                   on_delete=self._service_changed)
        self.slices = self.watch(informers.informer("endpointslices"), on_add=self._slice_changed,
                                 on_update=self._slice_updated, on_delete=self._slice_changed)
        self._masquerade_all = False

    # -- event handlers: mark the Service, enqueue the one key -----------------------------------

    def _mark(self, *keys: ServiceKey | None) -> None:
        with self._lock:
            self._changed.update(key for key in keys if key is not None)
        self.enqueue(TABLE_KEY)

    def _service_changed(self, service: Any) -> None:
        self._mark((service.metadata.namespace, service.metadata.name))

    def _slice_changed(self, endpoint_slice: Any) -> None:
        self._mark(slice_service(endpoint_slice))

    def _slice_updated(self, old: Any, new: Any) -> None:
        if old.metadata.resource_version != new.metadata.resource_version:
            self._mark(slice_service(old), slice_service(new))

    # -- the loop -------------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return Settings(self.cluster_name, self.pod_cidr, self.node_name, self.node_address, self._masquerade_all,
                        self.bridge, self.bridge_address, self.bridge_ports, self.node_network_bridge)

    def run(self) -> None:
        if self.bridge:
            enable_bridge_forwarding(self.bridge)
        self._masquerade_all = not bridge_netfilter_enabled()
        if self._masquerade_all:
            log.info("bridged packets skip netfilter here (no br_netfilter): masquerading all Service traffic")
        self.enqueue(TABLE_KEY)
        super().run()

    def _service_rules(self, key: ServiceKey, settings: Settings) -> ServiceRules | None:
        """The Service's part of the table from the caches now; None when it is gone."""
        service = self.services.get(f"{key[0]}/{key[1]}")
        if service is None:
            return None
        slices = self.slice_index.slices(*key)
        return service_rules(service, slices, settings)

    def sync(self, key: Any) -> None:
        started = time.monotonic()
        with self._lock:
            changed, self._changed = self._changed, set()
        settings = self.settings
        applied = self.table.state
        try:
            if applied is None or applied.settings != settings:
                state = TableState.of(settings, self.services.list(), self.slices.list())
                commands = self.table.apply(state)
            else:
                state = applied.changed({service: self._service_rules(service, settings) for service in changed})
                commands = self.table.apply(state, changed)
        except Exception:
            with self._lock:
                self._changed |= changed  # written by the retry (a full write after a failed transaction)
            raise
        if commands and self.on_applied is not None:
            self.on_applied(time.monotonic() - started)
        if self.publish_load_balancers:
            self._publish_load_balancer_addresses(changed if applied is not None else None)
        return None

    def _publish_load_balancer_addresses(self, changed: set[ServiceKey] | None) -> None:
        """As k3s' ServiceLB: a LoadBalancer Service's status names the node's address, where the
        table serves its ports (`get svc` shows it as EXTERNAL-IP instead of `<pending>`)."""
        wanted = {"ingress": [{"ip": self.node_address, "ipMode": "VIP"}]}
        services = self.services.list() if changed is None else \
            [item for item in (self.services.get(f"{namespace}/{name}") for namespace, name in changed) if item]
        for service in services:
            if service.spec.type != "LoadBalancer":
                continue
            load_balancer = service.status.load_balancer if service.status else None
            if load_balancer is not None and load_balancer.to_dict() == wanted:
                continue
            try:
                self.client.patch_status("services", service.metadata.name, {"status": {"loadBalancer": wanted}},
                                         service.metadata.namespace)
            except Exception:
                with self._lock:  # the retry writes it again
                    self._changed.add((service.metadata.namespace, service.metadata.name))
                raise

    def stop(self, timeout: float = 5.0, remove_table: bool = True) -> None:
        super().stop(timeout)
        if remove_table:
            try:
                self.table.remove()
            except Exception:
                log.exception("removing nftables table %s failed", self.table.table)
