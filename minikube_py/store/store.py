"""The sqlite store (the embedded default backend): every API object, one global revision, a revision log for watches, leases.

This is minikube-py's etcd (kine-shaped, see semantics.md section 7). The Registry is its only
writer. Every write is one transaction that bumps the global revision, writes the object with
`metadata.resourceVersion` set to that revision, and appends the change to the revision log;
watchers are handed the change as the transaction commits. The log is what lets a client that
was away resume from a resourceVersion; `compact` trims it, and a watch from below the trimmed
point gets 410 Gone so the client re-lists. Objects are also kept in memory, as their JSON text,
so reads never touch the database; the in-memory copy changes only after a commit succeeded, under
the same lock, so it cannot disagree with the file. The leases table is the pod IP allocator's
book: a primary key on (pool, value) means a value is never handed out twice.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from typing import Iterable

import sqlite_utils

from minikube_py.api import errors
from minikube_py.store.interface import (Compactor, InMemoryState, already_exists, conflict, namespace_and_name, not_found,
                                         pool_exhausted, too_old)
from minikube_py.store.watch import ADDED, DELETED, MODIFIED, LogEntry, Watcher

log = logging.getLogger(__name__)

REVISION_KEY = "revision"
COMPACTED_REVISION_KEY = "compacted_revision"


def storage_error(error: sqlite3.Error, path: str) -> errors.ApiError:
    """What a failed sqlite write means to an API client: 507 when the disk is full or the
    database cannot be written (say which, and what to do), 500 for anything else."""
    message = str(error)
    if isinstance(error, sqlite3.OperationalError) and any(
            sign in message for sign in ("full", "readonly", "disk I/O", "unable to open")):
        return errors.InsufficientStorage(
            f"the store could not write ({message}); nothing was changed. Free space on the disk "
            f"holding {path} (or make it writable), then try again")
    return errors.ApiError(f"the store could not write ({message}); nothing was changed")


def _rollback(connection: sqlite3.Connection) -> None:
    """Undo an open transaction, if sqlite has not already rolled it back itself (it does on
    SQLITE_FULL and I/O errors, and a second ROLLBACK would hide the real error)."""
    if connection.in_transaction:
        try:
            connection.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def _make_private(path: str) -> None:
    """The database and its WAL and shared-memory files are readable by their owner only.
    sqlite creates the -wal and -shm files with the database file's mode, so creating the
    database 0600 first is what keeps them 0600 too; files left by older versions are fixed."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(descriptor)
    for existing in (path, f"{path}-wal", f"{path}-shm"):
        try:
            os.chmod(existing, 0o600)
        except FileNotFoundError:
            pass


class Store(InMemoryState):
    """Objects as wire dicts keyed by (resource, namespace or "", name). `path` is a file or
    ":memory:". All writes, and every read of the database, go through one lock and one
    connection; sqlite in WAL mode with synchronous=NORMAL loses nothing committed when the
    process is killed."""

    def __init__(self, path: str | os.PathLike = ":memory:"):
        self.path = str(path)
        if self.path != ":memory:":
            _make_private(self.path)
        connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db = sqlite_utils.Database(connection)
        if self.path != ":memory:":
            self.db.enable_wal()
            self.db.execute("PRAGMA synchronous=NORMAL")
        self._create_schema()
        self._lock = threading.Lock()
        self._watchers: list[Watcher] = []
        self._compactor: Compactor | None = None
        meta = {row[0]: row[1] for row in self.db.execute("SELECT key, value FROM meta")}
        self._revision = meta[REVISION_KEY]
        self._compacted_revision = meta[COMPACTED_REVISION_KEY]
        # resource -> (namespace, name) -> (revision, JSON text)
        self._objects: dict[str, dict[tuple[str, str], tuple[int, str]]] = {}
        for resource, namespace, name, revision, data in self.db.execute(
                "SELECT resource, namespace, name, revision, data FROM objects"):
            self._objects.setdefault(resource, {})[(namespace, name)] = (revision, data)

    def _create_schema(self) -> None:
        self.db["objects"].create(
            {"resource": str, "namespace": str, "name": str, "revision": int, "data": str},
            pk=("resource", "namespace", "name"), not_null={"revision", "data"}, if_not_exists=True)
        self.db["log"].create(
            {"revision": int, "resource": str, "namespace": str, "name": str, "type": str,
             "data": str, "previous_data": str},
            pk="revision", if_not_exists=True)
        self.db["meta"].create({"key": str, "value": int}, pk="key", if_not_exists=True)
        self.db["leases"].create({"pool": str, "value": str, "owner": str},
                                 pk=("pool", "value"), if_not_exists=True)
        self.db["leases"].create_index(["pool", "owner"], unique=True, if_not_exists=True)
        self.db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, 0), (?, 0)",
                        [REVISION_KEY, COMPACTED_REVISION_KEY])

    # -- writes ------------------------------------------------------------------------------

    def create(self, resource: str, obj: dict) -> dict:
        namespace, name = namespace_and_name(obj)
        with self._lock:
            if (namespace, name) in self._objects.get(resource, {}):
                raise already_exists(resource, name)
            return self._write(resource, namespace, name, ADDED, obj, None)

    def update(self, resource: str, obj: dict, expected_rv: str | int | None = None) -> dict:
        """Replace the stored object; with `expected_rv`, only if it is still at that revision."""
        namespace, name = namespace_and_name(obj)
        with self._lock:
            previous = self._current(resource, namespace, name, expected_rv)
            return self._write(resource, namespace, name, MODIFIED, obj, previous[1])

    def delete(self, resource: str, namespace: str | None, name: str,
               expected_rv: str | int | None = None) -> dict:
        """Remove the object; the returned last state carries the deletion's revision."""
        namespace = namespace or ""
        with self._lock:
            _, previous_text = self._current(resource, namespace, name, expected_rv)
            return self._write(resource, namespace, name, DELETED, json.loads(previous_text),
                               previous_text)

    def _current(self, resource: str, namespace: str, name: str,
                 expected_rv: str | int | None) -> tuple[int, str]:
        stored = self._objects.get(resource, {}).get((namespace, name))
        if stored is None:
            raise not_found(resource, name)
        if expected_rv is not None and str(expected_rv) != str(stored[0]):
            raise conflict(resource, name)
        return stored

    def _write(self, resource: str, namespace: str, name: str, change: str, obj: dict,
               previous_text: str | None) -> dict:
        """One transaction: bump the revision, write or remove the object, log the change;
        then, committed, update the in-memory copy and hand the change to the watchers."""
        revision = self._revision + 1
        stored = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(revision)}}
        text = json.dumps(stored, separators=(",", ":"))
        connection = self.db.conn
        connection.execute("BEGIN IMMEDIATE")
        try:
            if change == DELETED:
                connection.execute(
                    "DELETE FROM objects WHERE resource = ? AND namespace = ? AND name = ?",
                    (resource, namespace, name))
            else:
                connection.execute(
                    "INSERT OR REPLACE INTO objects (resource, namespace, name, revision, data) "
                    "VALUES (?, ?, ?, ?, ?)", (resource, namespace, name, revision, text))
            connection.execute(
                "INSERT INTO log (revision, resource, namespace, name, type, data, previous_data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (revision, resource, namespace, name, change, text, previous_text))
            connection.execute("UPDATE meta SET value = ? WHERE key = ?", (revision, REVISION_KEY))
            connection.execute("COMMIT")
        except sqlite3.Error as error:
            _rollback(connection)
            raise storage_error(error, self.path) from None
        except BaseException:
            _rollback(connection)
            raise
        self._revision = revision
        objects = self._objects.setdefault(resource, {})
        if change == DELETED:
            del objects[(namespace, name)]
        else:
            objects[(namespace, name)] = (revision, text)
        entry = LogEntry(revision, resource, namespace, name, change, text, previous_text)
        for watcher in self._watchers:
            if watcher.matches(entry):
                watcher.deliver(entry)
        if any(watcher.closed for watcher in self._watchers):
            self._watchers = [watcher for watcher in self._watchers if not watcher.closed]
        return stored

    # -- watch and compaction ----------------------------------------------------------------

    def watch(self, resource: str | None, namespace: str | None = None,
              since: str | int | None = None) -> Watcher:
        """Changes after revision `since` (None: from now on), in revision order. `resource`
        None watches every resource. Raises `Gone` when `since` is older than the log keeps."""
        with self._lock:
            since = self._revision if since is None else int(since)
            if since < self._compacted_revision:
                raise too_old(since, self._compacted_revision)
            query = ("SELECT revision, resource, namespace, name, type, data, previous_data "
                     "FROM log WHERE revision > ?")
            parameters: list = [since]
            if resource is not None:
                query += " AND resource = ?"
                parameters.append(resource)
            if namespace is not None:
                query += " AND namespace = ?"
                parameters.append(namespace)
            backlog = [LogEntry(*row) for row in
                       self.db.execute(query + " ORDER BY revision", parameters)]
            watcher = Watcher(resource, namespace, backlog, self._forget_watcher, since=since)
            self._watchers.append(watcher)
            return watcher

    def compact(self, keep: int = 1000) -> int:
        """Drop log entries older than the newest `keep` revisions; returns the compacted
        revision (watches from below it get Gone)."""
        with self._lock:
            target = self._revision - max(keep, 0)
            if target <= self._compacted_revision:
                return self._compacted_revision
            connection = self.db.conn
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.execute("DELETE FROM log WHERE revision <= ?", (target,))
                connection.execute("UPDATE meta SET value = ? WHERE key = ?",
                                   (target, COMPACTED_REVISION_KEY))
                connection.execute("COMMIT")
            except sqlite3.Error as error:
                _rollback(connection)
                raise storage_error(error, self.path) from None
            except BaseException:
                _rollback(connection)
                raise
            self._compacted_revision = target
            return target

    def start_compactor(self, interval: float, keep: int = 1000) -> None:
        """Compact every `interval` seconds in a background thread until `close()`."""
        if self._compactor is None:
            self._compactor = Compactor(self.compact, interval, keep)

    # -- leases ------------------------------------------------------------------------------

    def allocate(self, pool: str, candidates: Iterable, owner: str) -> str:
        """Hold the first free candidate for `owner` (the same value again if it already holds
        one in this pool). Raises `PoolExhausted` when every candidate is held."""
        with self._lock:
            held = self.db.execute("SELECT value FROM leases WHERE pool = ? AND owner = ?",
                                   (pool, owner)).fetchone()
            if held is not None:
                return held[0]
            taken = {row[0] for row in
                     self.db.execute("SELECT value FROM leases WHERE pool = ?", (pool,))}
            for candidate in candidates:
                value = str(candidate)
                if value not in taken:
                    try:
                        self.db.execute("INSERT INTO leases (pool, value, owner) VALUES (?, ?, ?)",
                                        (pool, value, owner))
                    except sqlite3.Error as error:
                        raise storage_error(error, self.path) from None
                    return value
        raise pool_exhausted(pool, len(taken))

    def release(self, pool: str, owner: str) -> str | None:
        """Give back what `owner` holds in `pool`; returns the value, or None if it held none."""
        with self._lock:
            held = self.db.execute("SELECT value FROM leases WHERE pool = ? AND owner = ?",
                                   (pool, owner)).fetchone()
            if held is None:
                return None
            try:
                self.db.execute("DELETE FROM leases WHERE pool = ? AND owner = ?", (pool, owner))
            except sqlite3.Error as error:
                raise storage_error(error, self.path) from None
            return held[0]

    def allocations(self, pool: str) -> dict[str, str]:
        with self._lock:
            return dict(self.db.execute("SELECT value, owner FROM leases WHERE pool = ?",
                                        (pool,)).fetchall())

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        if self._compactor is not None:
            self._compactor.stop()
            self._compactor = None
        for watcher in list(self._watchers):
            watcher.close()
        with self._lock:
            self.db.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
