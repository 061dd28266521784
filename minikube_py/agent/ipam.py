"""Where the agent gets pod IPs: the protocol it needs, and a small in-memory pool for tests.

The daemon hands the agent `StoreIpam` (leases in the sqlite store, so an address stays with its
pod across daemon restarts); unit tests use `InMemoryIpam`. Owners are pod uids.
"""

from __future__ import annotations

import ipaddress
import threading
from typing import Protocol


class Ipam(Protocol):
    def allocate(self, owner: str) -> str:
        """The owner's address; the same one again if it already holds one."""

    def release(self, owner: str) -> None: ...

    def allocations(self) -> dict[str, str]:
        """{address: owner} for every address held."""


class InMemoryIpam:
    def __init__(self, pod_cidr: str = "10.244.0.0/24"):
        network = ipaddress.ip_network(pod_cidr)
        # The first address is the bridge's (the pods' gateway).
        self._candidates = [str(address) for address in list(network.hosts())[1:]]
        self._held: dict[str, str] = {}
        self._lock = threading.Lock()

    def allocate(self, owner: str) -> str:
        with self._lock:
            for address, holder in self._held.items():
                if holder == owner:
                    return address
            for address in self._candidates:
                if address not in self._held:
                    self._held[address] = owner
                    return address
        raise RuntimeError(f"pod IP pool exhausted: all {len(self._candidates)} addresses are held")

    def release(self, owner: str) -> None:
        with self._lock:
            for address in [address for address, holder in self._held.items() if holder == owner]:
                del self._held[address]

    def allocations(self) -> dict[str, str]:
        with self._lock:
            return dict(self._held)
