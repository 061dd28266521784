"""Where the agent gets pod IPs: the protocol it needs, the node's lease files, and an in-memory pool for tests.

Pod IPs are node state, as in Kubernetes: the node hands out addresses of its pod CIDR locally
(CNI's host-local IPAM) and only `status.podIP` reaches the API. The daemon gives the agent
`HostLocalIpam`, one file per held address in the node's directory, so an address stays with its
pod across daemon restarts without writing to the API's store (whose only writer is the API);
unit tests use `InMemoryIpam`. Owners are pod uids.
"""

from __future__ import annotations

import ipaddress
import os
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


class HostLocalIpam:
    """Leases as files `<directory>/<address>` holding the owner, as CNI's host-local store keeps
    them: creating one with O_EXCL is the claim, so two claims of one address cannot both win.

    The files are read once, when the agent starts; after that an in-memory index of them answers
    every question, so an allocation costs one file create however many pods the node holds (the
    agent is the only writer of its node's directory). Like host-local, the search for a free
    address starts after the last one handed out, so a released address is not reused at once
    (conntrack entries and caches of the old pod's peers age out first). Leases are not fsynced:
    they must outlive the daemon, not the host, whose pod network namespaces die with it.
    """

    def __init__(self, directory: str, pod_cidr: str):
        network = ipaddress.ip_network(pod_cidr)
        self.directory = directory
        # The first address is the bridge's (the pods' gateway).
        self._candidates = [str(address) for address in list(network.hosts())[1:]]
        self._lock = threading.Lock()
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self._held = self._read_all()
        self._address_of = {owner: address for address, owner in self._held.items()}
        self._next_candidate = 0

    def allocate(self, owner: str) -> str:
        with self._lock:
            address = self._address_of.get(owner)
            if address is not None:
                return address
            count = len(self._candidates)
            for step in range(count):
                position = (self._next_candidate + step) % count
                address = self._candidates[position]
                if address not in self._held and self._claim(address, owner):
                    self._next_candidate = (position + 1) % count
                    return address
        raise RuntimeError(f"pod IP pool exhausted: all {len(self._candidates)} addresses of "
                           f"{self.directory} are held; delete pods or use a larger --pod-cidr")

    def hold(self, address: str, owner: str) -> bool:
        """Take over a lease made elsewhere (an older version's, in the store); False if taken."""
        with self._lock:
            return self._claim(address, owner)

    def release(self, owner: str) -> None:
        with self._lock:
            address = self._address_of.pop(owner, None)
            if address is None:
                return
            self._held.pop(address, None)
            try:
                os.unlink(os.path.join(self.directory, address))
            except FileNotFoundError:
                pass

    def allocations(self) -> dict[str, str]:
        with self._lock:
            return dict(self._held)

    def _claim(self, address: str, owner: str) -> bool:
        try:
            descriptor = os.open(os.path.join(self.directory, address), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            # Held by a file this index did not know of: learn its owner, so it is not tried again.
            self._held[address] = self._owner_on_disk(address)
            return False
        with os.fdopen(descriptor, "w") as file:
            file.write(owner)
        self._held[address] = owner
        self._address_of[owner] = address
        return True

    def _owner_on_disk(self, address: str) -> str:
        try:
            with open(os.path.join(self.directory, address)) as file:
                return file.read().strip()
        except FileNotFoundError:
            return ""

    def _read_all(self) -> dict[str, str]:
        held = {}
        for address in os.listdir(self.directory):
            try:
                with open(os.path.join(self.directory, address)) as file:
                    held[address] = file.read().strip()
            except FileNotFoundError:
                continue
        return held
