"""Lists in pages: `limit` and `continue`, with Kubernetes' continue-token semantics.

A list with `?limit=N` answers at most N items and, when more remain, `metadata.continue`: an
opaque token (base64url of `{"v": "meta.k8s.io/v1", "rv": REVISION, "start": "NS/NAME\\0"}`, the
shape kube-apiserver uses) and, without selectors, `metadata.remainingItemCount`. Every later
page is served as the list was at the first page's revision, so pages never skip or repeat an
object that changed in between: the store's current objects are rolled back through its change
log to that revision. Once the log no longer reaches back that far (the store compacted it),
the token has expired: 410 Expired with Kubernetes' message and, in the Status's
`metadata.continue`, an inconsistent token (`rv` -1) that lists the rest as it is now.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
from typing import Any

from minikube_py.api import errors

TOKEN_VERSION = "meta.k8s.io/v1"
INCONSISTENT = -1
EXPIRED_MESSAGE = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new list "
    "without the continue parameter, or use the continue token in this response to retrieve the remainder of the "
    "results. Continuing with the provided token results in an inconsistent list - objects that were created, "
    "modified, or deleted between the time the first chunk was returned and now may show up in the list.")


class ContinueExpired(errors.Gone):
    """410 for a continue token older than the store's log, carrying the inconsistent token."""

    def __init__(self, continue_token: str):
        super().__init__(EXPIRED_MESSAGE)
        self.continue_token = continue_token

    def to_status(self) -> dict[str, Any]:
        status = super().to_status()
        status["metadata"] = {"continue": self.continue_token}
        return status


Key = tuple[str, str]


def object_key(obj: dict) -> Key:
    metadata = obj.get("metadata") or {}
    return metadata.get("namespace") or "", metadata.get("name") or ""


def encode_continue(revision: int, last: Key) -> str:
    namespace, name = last
    start = (f"{namespace}/{name}" if namespace else name) + "\x00"
    document = json.dumps({"v": TOKEN_VERSION, "rv": revision, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(document.encode()).decode().rstrip("=")


def decode_continue(token: str, namespaced: bool) -> tuple[int, Key]:
    """(revision, key of the last object already sent); BadRequest naming `continue`."""
    def bad(reason: str) -> errors.BadRequest:
        return errors.BadRequest(f"invalid continue token: continue key is not valid: {reason}")

    try:
        document = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad("the continue parameter is not a token this server gave out") from None
    if not isinstance(document, dict) or document.get("v") != TOKEN_VERSION:
        raise bad(f"incorrect encoded start resourceVersion (version {TOKEN_VERSION})")
    revision, start = document.get("rv"), document.get("start")
    if isinstance(revision, bool) or not isinstance(revision, int) or not isinstance(start, str) \
            or not start.endswith("\x00") or revision < INCONSISTENT or revision == 0:
        raise bad("the encoded revision or start key is malformed")
    start = start[:-1]
    if namespaced:
        namespace, slash, name = start.partition("/")
        if not slash:
            raise bad("the start key does not name a namespace")
        return revision, (namespace, name)
    return revision, ("", start)


def objects_at(store, resource: str, namespace: str | None, revision: int) -> tuple[list[dict], int]:
    """The objects of `resource` (in `namespace`) as they were at `revision`, sorted by
    namespace and name, rolled back from the current ones through the store's change log.
    Raises Gone when the log no longer reaches back to `revision`."""
    watcher = store.watch(resource, namespace, revision)
    try:
        # Every change up to the listed revision was handed to the watcher before the list
        # could see that revision (the store delivers under its writer lock).
        items, current = store.list(resource, namespace)
        changes = []
        while True:
            event = watcher.next(0)
            if event is None or event.revision > current:
                break
            changes.append(event)
    finally:
        watcher.close()
    state = {object_key(item): item for item in items}
    for event in reversed(changes):
        key = object_key(event.object)
        if event.type == "ADDED":
            state.pop(key, None)
        elif event.type == "MODIFIED":
            state[key] = copy.deepcopy(event.previous)  # an event's objects are shared: the list's are its own
        else:  # DELETED: back to its last state before the deletion
            state[key] = copy.deepcopy(event.previous or event.object)
    return [state[key] for key in sorted(state) if state[key] is not None], revision


def page(listing: dict, items: list[dict], limit: int | None, after: Key | None, counted: bool) -> dict:
    """Fill `listing` (a List with metadata.resourceVersion set) with the page of `items`
    (sorted) after the key `after`, at most `limit` of them; add the continue token when more
    remain, and `remainingItemCount` when `counted` (no selector filtered the list)."""
    if after is not None:
        items = [item for item in items if object_key(item) > after]
    if limit and len(items) > limit:
        remaining = len(items) - limit
        items = items[:limit]
        listing["metadata"]["continue"] = encode_continue(int(listing["metadata"]["resourceVersion"]),
                                                          object_key(items[-1]))
        if counted:
            listing["metadata"]["remainingItemCount"] = remaining
    listing["items"] = items
    return listing
