"""The one place the service proxy touches the kernel: libnftables' JSON API.

Each `apply` is one libnftables transaction, so the kernel sees the whole change or none of it: a
failed transaction leaves the previous table as it was, and the next apply writes the table from
scratch. The first apply replaces the table; later ones send only what the changed Services'
parts changed since the last successful one (`rules.update_commands`). No `nft` process is ever
run: Debian's libnftables1 is called through PyPI's `pip-nftables` binding.

Routing a pod's packet to another pod after DNAT needs IPv4 forwarding on the packets' way in;
`enable_bridge_forwarding` turns it on for the cluster's bridge only
(`net.ipv4.conf.<bridge>.forwarding`), never host-wide, and it goes away with the bridge.
"""

from __future__ import annotations

import json
import logging
import threading

from typing import Iterable

from minikube_py.proxy.rules import FAMILY, ServiceKey, TableState, document, full_commands, update_commands

log = logging.getLogger(__name__)


class NftablesError(RuntimeError):
    pass


def _library():
    try:
        import nftables  # PyPI pip-nftables over Debian's libnftables1
    except ImportError as error:
        raise NftablesError("the service proxy needs libnftables' Python binding: apt-get install libnftables1 "
                            "&& pip install pip-nftables (install.sh does both)") from error
    library = nftables.Nftables()
    library.set_json_output(True)
    return library


class NftablesTable:
    """Writes `TableState`s into one table, remembering what the kernel holds."""

    def __init__(self, table: str):
        self.table = table
        self._library = None
        self.state: TableState | None = None  # what the last successful transaction left; None: unknown
        self._lock = threading.Lock()

    def _run(self, commands: list[dict]) -> None:
        if self._library is None:
            self._library = _library()
        code, _, error = self._library.json_cmd(document(commands))
        if code != 0:
            raise NftablesError(f"nftables transaction on table {FAMILY} {self.table} failed: {error.strip()}")

    def apply(self, state: TableState, changed: Iterable[ServiceKey] | None = None) -> int:
        """Make the kernel's table `state`, which differs from the last one applied only in the
        Services `changed` (None: anything may differ; the table is replaced). Returns how many
        commands the transaction held."""
        with self._lock:
            if self.state is None or changed is None:
                commands = full_commands(state.ruleset())
            else:
                commands = update_commands(self.state, state, changed)
            if commands:
                try:
                    self._run(commands)
                except NftablesError:
                    self.state = None  # unknown state: the next apply replaces the table
                    raise
            self.state = state
            return len(commands)

    def remove(self) -> None:
        """Delete the table (and so every rule of the cluster), whether or not it exists."""
        with self._lock:
            self._run([{"add": {"table": {"family": FAMILY, "name": self.table}}},
                       {"delete": {"table": {"family": FAMILY, "name": self.table}}}])
            self.state = None

    def listing(self) -> dict:
        """The table as libnftables lists it (JSON), for inspection and tests."""
        if self._library is None:
            self._library = _library()
        code, output, error = self._library.json_cmd(
            {"nftables": [{"list": {"table": {"family": FAMILY, "name": self.table}}}]})
        if code != 0:
            raise NftablesError(error.strip())
        return json.loads(output) if isinstance(output, str) else output


def table_exists(table: str) -> bool:
    library = _library()
    code, output, _ = library.json_cmd({"nftables": [{"list": {"tables": {"family": FAMILY}}}]})
    listed = json.loads(output) if isinstance(output, str) else output
    return code == 0 and any(item.get("table", {}).get("name") == table for item in listed.get("nftables", []))


def enable_bridge_forwarding(bridge: str) -> None:
    """Let packets arriving on the cluster's bridge be routed (to another pod after DNAT)."""
    path = f"/proc/sys/net/ipv4/conf/{bridge}/forwarding"
    with open(path, "w") as file:
        file.write("1")


def bridge_netfilter_enabled() -> bool:
    """Whether bridged IPv4 passes the netfilter hooks (br_netfilter with bridge-nf-call-iptables=1).

    Without it a pod's reply to a pod on the same bridge bypasses conntrack, so the proxy
    masquerades all Service traffic instead.
    """
    try:
        with open("/proc/sys/net/bridge/bridge-nf-call-iptables") as file:
            return file.read().strip() == "1"
    except OSError:
        return False
