"""The etcd v3 store: the same contract as the sqlite store, on etcd's revisions, transactions
and watches, so several API servers can share one replicated store.

Objects live where kube-apiserver keeps them, under the cluster's prefix so clusters can share an
etcd: `/<cluster>/registry/<resource>/<namespace>/<name>` (`/<cluster>/registry/<resource>/<name>`
when cluster-scoped), as JSON without `resourceVersion`: an object's resourceVersion is its key's
mod_revision, and the store's revision is etcd's. Every write is one transaction guarded by a
compare (create_revision = 0 to create, mod_revision = the expected resourceVersion for
compare-and-swap, create_revision > 0 for "must exist"), so two API servers never lose each
other's updates; a failed compare reads the key in the same transaction to tell Conflict from
NotFound. The compare also makes a write safe to try again when etcd could not take it: one refused
(no leader, a member unreachable: 503) is retried for a few seconds, and one that timed out
(the etcd leader died holding it: 504) is read back, and tried again only if it did not happen
(a delete whose key is gone is reported done, with the object the mirror held), so losing an etcd
member mid-request is not an error a client sees.

Reads come from a mirror, as kube-apiserver's watch cache: one etcd watch on the cluster's
prefix, started from the revision of a full read, applies every change in revision order to
in-memory objects and hands it to this store's watchers, with the last changes kept for watches
that resume from a revision. A write returns once the mirror has its revision, so a client reads
its own writes. Without etcd quorum, writes fail (503/504) and reads keep answering from the
last revision the mirror saw. A watch from below what the mirror keeps (its start, compaction or
its window of MAX_REPLAY_EVENTS) is 410 Gone, and the client re-lists, as with kube-apiserver's
watch cache. `compact(keep)` compacts etcd itself (for every cluster sharing it, as
kube-apiserver's compaction does).

Leases (the allocators' book) are two keys per held value, `/<cluster>/leases/<pool>/values/<v>`
-> owner and `.../owners/<owner>` -> value, created together only if neither exists.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from typing import Callable, Iterable
from urllib.parse import quote, unquote

from minikube_py.api import errors
from minikube_py.store.etcd_client import EtcdMembers, WatchStream, decode, encode, prefix_end
from minikube_py.store.etcd_endpoints import EtcdTLS
from minikube_py.store.interface import (Compactor, InMemoryState, already_exists, conflict, namespace_and_name, not_found,
                                         pool_exhausted, too_old)
from minikube_py.store.watch import ADDED, DELETED, MODIFIED, LogEntry, Watcher

log = logging.getLogger(__name__)

# How many changes the mirror keeps for watches resuming from a revision (kube-apiserver's watch
# cache keeps a window too); older resourceVersions are 410 Gone and the client re-lists.
MAX_REPLAY_EVENTS = 10_000
LIST_PAGE_SIZE = 500
# How long a write waits for its change to come back through the mirror's watch; past it the
# write has still happened, and the mirror catches up by itself.
WRITE_VISIBLE_SECONDS = 30.0
RECONNECT_BACKOFF_SECONDS = (0.05, 2.0)
# How long a write is tried again while etcd elects a leader or moves to another member.
WRITE_RETRY_SECONDS = 10.0


class EtcdStore(InMemoryState):
    """Objects as wire dicts in etcd under `/<cluster>/`, read from an in-memory mirror fed by
    one etcd watch. `endpoints` are etcd members' client URLs: `host:port` (plain HTTP: keep
    them on loopback) or `https://host:port`, spoken to with `tls`'s files. Raises
    ServiceUnavailable naming the endpoints when no member answers."""

    def __init__(self, endpoints: list[str], cluster: str, tls: EtcdTLS | None = None):
        self.endpoints = list(endpoints)
        self.cluster = cluster
        self._prefix = f"/{cluster}/"
        self._registry = f"/{cluster}/registry/"
        self._members = EtcdMembers(self.endpoints, tls=tls)
        self._lock = threading.Lock()
        self._applied = threading.Condition(self._lock)
        self._watchers: list[Watcher] = []
        self._compactor: Compactor | None = None
        # One allocation at a time from this process, as the sqlite store's lock gives; the
        # transactions still keep other API servers' allocations apart.
        self._allocating = threading.Lock()
        self._closing = threading.Event()
        self._stream: WatchStream | None = None
        # resource -> (namespace, name) -> (revision, JSON text with resourceVersion)
        self._objects: dict[str, dict[tuple[str, str], tuple[int, str]]] = {}
        self._log: deque[LogEntry] = deque()
        self._revision = 0
        self._compacted_revision = 0
        self._load()
        self._mirror = threading.Thread(target=self._follow, name=f"etcd-mirror-{cluster}", daemon=True)
        self._mirror.start()

    # -- keys --------------------------------------------------------------------------------

    def _key(self, resource: str, namespace: str, name: str) -> str:
        return f"{self._registry}{resource}/{namespace}/{name}" if namespace else f"{self._registry}{resource}/{name}"

    def _parse_key(self, key: str) -> tuple[str, str, str] | None:
        """(resource, namespace or "", name) of an object key; None for the cluster's other keys."""
        if not key.startswith(self._registry):
            return None
        parts = key[len(self._registry):].split("/")
        if len(parts) == 3:
            return parts[0], parts[1], parts[2]
        if len(parts) == 2:
            return parts[0], "", parts[1]
        return None

    # -- the mirror --------------------------------------------------------------------------

    def _range_all(self, key: str, range_end: str) -> tuple[list[dict], int]:
        """Every key in [key, range_end) at one revision, page by page."""
        items: list[dict] = []
        start, revision = key, 0
        while True:
            request = {"key": encode(start), "range_end": encode(range_end), "limit": LIST_PAGE_SIZE}
            if revision:
                request["revision"] = revision
            answer = self._members.call("/kv/range", request)
            revision = revision or int(answer["header"]["revision"])
            page = answer.get("kvs", [])
            items.extend(page)
            if not answer.get("more") or not page:
                return items, revision
            start = decode(page[-1]["key"]) + "\0"

    def _load(self) -> None:
        """Fill the mirror from a full read; its revision is where the mirror's watch starts."""
        kvs, revision = self._range_all(self._registry, prefix_end(self._registry))
        objects: dict[str, dict[tuple[str, str], tuple[int, str]]] = {}
        for kv in kvs:
            place = self._parse_key(decode(kv["key"]))
            if place is not None:
                resource, namespace, name = place
                modified = int(kv["mod_revision"])
                objects.setdefault(resource, {})[(namespace, name)] = (
                    modified, _with_version(decode(kv.get("value", "")), modified))
        with self._lock:
            self._objects = objects
            self._log.clear()
            self._revision = self._compacted_revision = revision
            self._applied.notify_all()

    def _follow(self) -> None:
        """The mirror thread: watch the cluster's prefix from the mirror's revision, apply every
        change; reconnect (to the next member if need be) when the stream breaks, re-read
        everything when etcd compacted past the mirror. It never dies before `close()`."""
        backoff = RECONNECT_BACKOFF_SECONDS[0]
        while not self._closing.is_set():
            try:
                stream = self._members.watch(self._prefix, prefix_end(self._prefix), self._revision + 1)
                with self._lock:
                    if self._closing.is_set():
                        stream.close()
                        return
                    self._stream = stream
                for response in stream.responses():
                    if response.get("canceled"):
                        if response.get("compact_revision"):
                            log.warning("etcd compacted past the store's mirror (revision %s < %s); re-reading "
                                        "everything and ending every watch with 410 Gone",
                                        self._revision, response["compact_revision"])
                            self._reload()
                        break
                    if response.get("events"):
                        self._apply(response["events"])
                        backoff = RECONNECT_BACKOFF_SECONDS[0]
            except Exception as error:  # the mirror must outlive any failure; it retries
                if self._closing.is_set():
                    return
                log.warning("the etcd watch behind the store broke (%s); reconnecting in %.2fs",
                            getattr(error, "message", error), backoff)
            if self._closing.wait(backoff):
                return
            backoff = min(backoff * 2, RECONNECT_BACKOFF_SECONDS[1])

    def _reload(self) -> None:
        self._load()
        with self._lock:
            watchers, self._watchers = self._watchers, []
        for watcher in watchers:
            watcher.expire(errors.Gone(
                "the store's history was compacted while this watch was behind; list again and watch "
                "from the list's resourceVersion"))

    def _apply(self, events: list[dict]) -> None:
        """Apply one watch response's changes in order, under the lock, and hand each object
        change to the matching watchers (the same order every watcher sees)."""
        with self._lock:
            for event in events:
                kv = event["kv"]
                revision = int(kv["mod_revision"])
                place = self._parse_key(decode(kv["key"]))
                if place is not None:
                    self._apply_object(place, event.get("type") == "DELETE", kv, revision)
                self._revision = max(self._revision, revision)
            if any(watcher.closed for watcher in self._watchers):
                self._watchers = [watcher for watcher in self._watchers if not watcher.closed]
            self._applied.notify_all()

    def _apply_object(self, place: tuple[str, str, str], deleted: bool, kv: dict, revision: int) -> None:
        resource, namespace, name = place
        objects = self._objects.setdefault(resource, {})
        previous = objects.get((namespace, name))
        previous_text = previous[1] if previous is not None else None
        if deleted:
            if previous_text is None:
                return
            del objects[(namespace, name)]
            change, text = DELETED, _with_version(previous_text, revision)
        else:
            text = _with_version(decode(kv.get("value", "")), revision)
            objects[(namespace, name)] = (revision, text)
            change = MODIFIED if previous is not None else ADDED
        entry = LogEntry(revision, resource, namespace, name, change, text, previous_text)
        self._log.append(entry)
        if len(self._log) > MAX_REPLAY_EVENTS:
            self._compacted_revision = max(self._compacted_revision, self._log.popleft().revision)
        for watcher in self._watchers:
            if watcher.matches(entry):
                watcher.deliver(entry)

    def _await_mirror(self, revision: int) -> None:
        """Return once the mirror holds `revision` (so this process reads its own writes)."""
        with self._applied:
            if not self._applied.wait_for(lambda: self._revision >= revision or self._closing.is_set(),
                                          WRITE_VISIBLE_SECONDS):
                log.warning("the store's mirror has not seen revision %d after %.0fs (it is at %d); "
                            "reads may lag until its etcd watch catches up", revision,
                            WRITE_VISIBLE_SECONDS, self._revision)

    # -- writes ------------------------------------------------------------------------------

    def _transaction(self, compare: list[dict], success: list[dict], failure: list[dict]) -> dict:
        return self._members.call("/kv/txn", {"compare": compare, "success": success, "failure": failure})

    def _guarded_write(self, key: str, compare: list[dict], success: list[dict], failure: list[dict],
                       took: Callable[[dict], bool]) -> dict:
        """One compare-guarded transaction, tried again while etcd cannot take it: after a 503
        nothing was written; after a 504 the key is read back, and `took(kv)` (kv None when the
        key is gone) says whether this write is what it holds; then the answer says so, with the
        key's revision (etcd's revision at the read for a key gone) and `read_back`. The compare
        keeps a retried write from happening twice."""
        deadline = time.monotonic() + WRITE_RETRY_SECONDS
        backoff = RECONNECT_BACKOFF_SECONDS[0]
        while True:
            try:
                return self._transaction(compare, success, failure)
            except (errors.ServiceUnavailable, errors.Timeout) as error:
                if time.monotonic() + backoff > deadline:
                    raise
                failed = error
            if isinstance(failed, errors.Timeout):
                try:
                    read = self._members.call("/kv/range", {"key": encode(key)})
                except errors.ApiError:
                    raise failed from None
                kvs = read.get("kvs", [])
                if took(kvs[0] if kvs else None):
                    revision = kvs[0]["mod_revision"] if kvs else read["header"]["revision"]
                    return {"succeeded": True, "header": {"revision": revision}, "responses": [], "read_back": True}
            log.warning("an etcd write of %s failed (%s); trying again", key, failed.message)
            time.sleep(backoff)
            backoff = min(backoff * 2, RECONNECT_BACKOFF_SECONDS[1])

    @staticmethod
    def _guard(key: str, expected_rv: str | int | None) -> dict:
        """The compare of a write to an existing key: at `expected_rv`, or merely existing."""
        if expected_rv is None:
            return {"key": encode(key), "target": "CREATE", "result": "GREATER", "create_revision": 0}
        try:
            expected = int(str(expected_rv))
        except ValueError:
            expected = -1  # matches no revision: a Conflict, as the sqlite store's string compare
        return {"key": encode(key), "target": "MOD", "result": "EQUAL", "mod_revision": expected}

    def _refused(self, answer: dict, resource: str, name: str) -> errors.ApiError:
        """Why a guarded write's compare failed: the failure branch read the key."""
        read = answer.get("responses", [{}])[0].get("response_range", {})
        return conflict(resource, name) if read.get("kvs") else not_found(resource, name)

    def create(self, resource: str, obj: dict) -> dict:
        namespace, name = namespace_and_name(obj)
        key = self._key(resource, namespace, name)
        value = _without_version(obj)
        answer = self._guarded_write(
            key, [{"key": encode(key), "target": "CREATE", "result": "EQUAL", "create_revision": 0}],
            [{"request_put": {"key": encode(key), "value": encode(value)}}], [],
            took=lambda kv: kv is not None and decode(kv.get("value", "")) == value)
        if not answer.get("succeeded"):
            raise already_exists(resource, name)
        return self._written(obj, int(answer["header"]["revision"]))

    def update(self, resource: str, obj: dict, expected_rv: str | int | None = None) -> dict:
        namespace, name = namespace_and_name(obj)
        key = self._key(resource, namespace, name)
        value = _without_version(obj)
        answer = self._guarded_write(
            key, [self._guard(key, expected_rv)],
            [{"request_put": {"key": encode(key), "value": encode(value)}}],
            [{"request_range": {"key": encode(key), "keys_only": True}}],
            took=lambda kv: (kv is not None and decode(kv.get("value", "")) == value
                             and str(kv["mod_revision"]) != str(expected_rv)))
        if not answer.get("succeeded"):
            raise self._refused(answer, resource, name)
        return self._written(obj, int(answer["header"]["revision"]))

    def delete(self, resource: str, namespace: str | None, name: str,
               expected_rv: str | int | None = None) -> dict:
        key = self._key(resource, namespace or "", name)
        with self._lock:  # what the object was, should the answer be lost and the delete read back
            known = self._objects.get(resource, {}).get((namespace or "", name))
        answer = self._guarded_write(
            key, [self._guard(key, expected_rv)],
            [{"request_delete_range": {"key": encode(key), "prev_kv": True}}],
            [{"request_range": {"key": encode(key), "keys_only": True}}],
            took=lambda kv: kv is None and known is not None)
        if not answer.get("succeeded"):
            raise self._refused(answer, resource, name)
        if answer.get("read_back") and known is not None:  # the key is gone: the delete that timed out happened
            return self._written(json.loads(known[1]), int(answer["header"]["revision"]))
        deleted = answer["responses"][0]["response_delete_range"].get("prev_kvs", [])
        if not deleted:
            raise not_found(resource, name)
        return self._written(json.loads(decode(deleted[0].get("value", ""))), int(answer["header"]["revision"]))

    def _written(self, obj: dict, revision: int) -> dict:
        self._await_mirror(revision)
        return {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(revision)}}

    # -- watch and compaction ----------------------------------------------------------------

    def watch(self, resource: str | None, namespace: str | None = None,
              since: str | int | None = None) -> Watcher:
        with self._lock:
            since = self._revision if since is None else int(since)
            if since < self._compacted_revision:
                raise too_old(since, self._compacted_revision)
            backlog = [entry for entry in self._log if entry.revision > since
                       and (resource is None or entry.resource == resource)
                       and (namespace is None or entry.namespace == namespace)]
            watcher = Watcher(resource, namespace, backlog, self._forget_watcher, since=since)
            self._watchers.append(watcher)
            return watcher

    def compact(self, keep: int = 1000) -> int:
        """Compact etcd's history below the newest `keep` revisions and forget the mirror's
        changes there; returns the compacted revision (watches from below it get Gone)."""
        target = self._revision - max(keep, 0)
        if target <= self._compacted_revision:
            return self._compacted_revision
        try:
            self._members.call("/kv/compaction", {"revision": target})
        except errors.ApiError as error:
            if "compacted" not in error.message:  # someone compacted further already: fine
                raise
        with self._lock:
            while self._log and self._log[0].revision <= target:
                self._log.popleft()
            self._compacted_revision = max(self._compacted_revision, target)
            return self._compacted_revision

    def start_compactor(self, interval: float, keep: int = 1000) -> None:
        if self._compactor is None:
            self._compactor = Compactor(self.compact, interval, keep)

    # -- leases ------------------------------------------------------------------------------

    def _lease_keys(self, pool: str, value: str, owner: str) -> tuple[str, str]:
        base = f"{self._prefix}leases/{quote(pool, safe='')}/"
        return f"{base}values/{quote(value, safe='')}", f"{base}owners/{quote(owner, safe='')}"

    def _held_by(self, pool: str, owner: str) -> str | None:
        _, owner_key = self._lease_keys(pool, "", owner)
        kvs = self._members.call("/kv/range", {"key": encode(owner_key)}).get("kvs", [])
        return decode(kvs[0].get("value", "")) if kvs else None

    def allocate(self, pool: str, candidates: Iterable, owner: str) -> str:
        """Hold the first free candidate for `owner` (the same value again if it already holds
        one in this pool). Raises `PoolExhausted` when every candidate is held."""
        with self._allocating:
            return self._allocate(pool, candidates, owner)

    def _allocate(self, pool: str, candidates: Iterable, owner: str) -> str:
        held = self._held_by(pool, owner)
        if held is not None:
            return held
        taken = set(self.allocations(pool))
        for candidate in candidates:
            value = str(candidate)
            if value in taken:
                continue
            value_key, owner_key = self._lease_keys(pool, value, owner)
            answer = self._transaction(
                [{"key": encode(value_key), "target": "CREATE", "result": "EQUAL", "create_revision": 0},
                 {"key": encode(owner_key), "target": "CREATE", "result": "EQUAL", "create_revision": 0}],
                [{"request_put": {"key": encode(value_key), "value": encode(owner)}},
                 {"request_put": {"key": encode(owner_key), "value": encode(value)}}], [])
            if answer.get("succeeded"):
                return value
            held = self._held_by(pool, owner)  # lost a race: for this value, or for this owner?
            if held is not None:
                return held
            taken.add(value)
        raise pool_exhausted(pool, len(taken))

    def release(self, pool: str, owner: str) -> str | None:
        held = self._held_by(pool, owner)
        if held is None:
            return None
        value_key, owner_key = self._lease_keys(pool, held, owner)
        self._transaction([], [{"request_delete_range": {"key": encode(value_key)}},
                               {"request_delete_range": {"key": encode(owner_key)}}], [])
        return held

    def allocations(self, pool: str) -> dict[str, str]:
        values_prefix = self._lease_keys(pool, "", "")[0]
        kvs, _ = self._range_all(values_prefix, prefix_end(values_prefix))
        return {unquote(decode(kv["key"])[len(values_prefix):]): decode(kv.get("value", "")) for kv in kvs}

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        if self._compactor is not None:
            self._compactor.stop()
            self._compactor = None
        with self._lock:
            self._closing.set()
            stream, self._stream = self._stream, None
            self._applied.notify_all()
        if stream is not None:
            stream.close()
        self._mirror.join(timeout=10)
        for watcher in list(self._watchers):
            watcher.close()

    def __enter__(self) -> "EtcdStore":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _without_version(obj: dict) -> str:
    """The stored JSON: the object without resourceVersion, which is the key's mod_revision."""
    metadata = {key: value for key, value in obj["metadata"].items() if key != "resourceVersion"}
    return json.dumps({**obj, "metadata": metadata}, separators=(",", ":"))


def _with_version(text: str, revision: int) -> str:
    obj = json.loads(text)
    obj["metadata"]["resourceVersion"] = str(revision)
    return json.dumps(obj, separators=(",", ":"))


def wait_for_members(endpoints: list[str], timeout: float, tls: EtcdTLS | None = None) -> None:
    """Wait until etcd at `endpoints` answers a read (for tests and benchmarks that start it)."""
    members = EtcdMembers(endpoints, timeout=2.0, tls=tls)
    deadline = time.monotonic() + timeout
    while True:
        try:
            members.call("/kv/range", {"key": encode("/")})
            return
        except errors.ApiError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
