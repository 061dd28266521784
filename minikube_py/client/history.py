"""Controller history: ControllerRevisions, as k/k `pkg/controller/history` keeps them.

A StatefulSet (and a DaemonSet) records each pod template it has run as an immutable
ControllerRevision named `<parent>-<hash>`, owned by the parent, with a `revision` number
that grows. Pods carry the name of the revision they were made from
(`controller-revision-hash`), which is how a rolling update tells old pods from new ones, and
`rollout history|undo` read the same objects. This module hashes a revision, makes, finds,
creates (with hash-collision probing) and prunes them; the controllers and the CLI share it, as
kubectl vendors the same history package.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from minikube_py.api import errors
from minikube_py.api.apps import ControllerRevision
from minikube_py.api.core import PodTemplateSpec
from minikube_py.api.meta import ObjectMeta, OwnerReference
from minikube_py.api.times import parse_time
from minikube_py.client.api import ApiObject, Client

CONTROLLER_REVISION_HASH_LABEL = "controller.kubernetes.io/hash"
# Names are `<prefix>-<hash>`; a hash is at most 10 characters, and names at most 253.
MAX_PREFIX_LENGTH = 223

_FNV32_OFFSET_BASIS = 2166136261
_FNV32_PRIME = 16777619
# `rand.SafeEncodeString`'s alphabet: no vowels (no accidental words) and no 0/1/3 (look like letters).
_SAFE_ALPHANUMERICS = "bcdfghjklmnpqrstvwxz2456789"


def fnv1_32(data: bytes, state: int = _FNV32_OFFSET_BASIS) -> int:
    """FNV-1 (multiply, then xor), 32 bit: Go's `fnv.New32`, which the history package uses."""
    for byte in data:
        state = ((state * _FNV32_PRIME) & 0xFFFFFFFF) ^ byte
    return state


def safe_encode_string(text: str) -> str:
    """Map each character to `bcdfghjklmnpqrstvwxz2456789[ord(c) % 27]` (`rand.SafeEncodeString`)."""
    return "".join(_SAFE_ALPHANUMERICS[ord(character) % len(_SAFE_ALPHANUMERICS)] for character in text)


def revision_data_bytes(data: dict[str, Any] | None) -> bytes:
    """The stored form of a revision's data that is hashed and compared: compact JSON, keys sorted."""
    return json.dumps(data or {}, sort_keys=True, separators=(",", ":")).encode()


def hash_controller_revision(revision: ControllerRevision, probe: int | None = None) -> str:
    """`HashControllerRevision`: FNV-1 over the data, then the decimal collision count when given."""
    state = fnv1_32(revision_data_bytes(revision.data))
    if probe is not None:
        state = fnv1_32(str(probe).encode(), state)
    return safe_encode_string(str(state))


def controller_revision_name(prefix: str, hash_text: str) -> str:
    return f"{prefix[:MAX_PREFIX_LENGTH]}-{hash_text}"


def template_patch(template: PodTemplateSpec) -> dict[str, Any]:
    """What a StatefulSet or DaemonSet revision records (their `getPatch`): a strategic merge
    patch replacing `spec.template` with this one."""
    return {"spec": {"template": {**template.to_dict(), "$patch": "replace"}}}


def template_of(revision: ControllerRevision) -> PodTemplateSpec:
    """The pod template a `template_patch` revision restores (`ApplyRevision`)."""
    template = dict(((revision.data or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return PodTemplateSpec.model_validate(template)


def new_controller_revision(parent: ApiObject, template_labels: dict[str, str] | None, data: dict[str, Any],
                            revision: int, collision_count: int | None) -> ControllerRevision:
    """`NewControllerRevision`: owned by `parent`, labelled like its pods plus the hash label,
    named `<parent>-<hash>`."""
    owner = OwnerReference(api_version=parent.api_version, kind=parent.kind, name=parent.metadata.name or "",
                           uid=parent.metadata.uid or "", controller=True, block_owner_deletion=True)
    made = ControllerRevision(metadata=ObjectMeta(namespace=parent.metadata.namespace,
                                                  labels=dict(template_labels or {}), owner_references=[owner]),
                              data=data, revision=revision)
    hash_text = hash_controller_revision(made, collision_count)
    made.metadata.name = controller_revision_name(parent.metadata.name or "", hash_text)
    made.metadata.labels = {**(made.metadata.labels or {}), CONTROLLER_REVISION_HASH_LABEL: hash_text}
    return made


def equal_revision(first: ControllerRevision | None, second: ControllerRevision | None) -> bool:
    """Same hash label and same data (`EqualRevision`)."""
    if first is None or second is None:
        return first is second
    first_hash = (first.metadata.labels or {}).get(CONTROLLER_REVISION_HASH_LABEL)
    second_hash = (second.metadata.labels or {}).get(CONTROLLER_REVISION_HASH_LABEL)
    if first_hash != second_hash:
        return False
    return revision_data_bytes(first.data) == revision_data_bytes(second.data)


def find_equal_revisions(revisions: Iterable[ControllerRevision], needle: ControllerRevision) -> list[ControllerRevision]:
    return [revision for revision in revisions if equal_revision(revision, needle)]


def _order(revision: ControllerRevision) -> tuple[int, float, str]:
    created = revision.metadata.creation_timestamp
    return (revision.revision, parse_time(created) if created else 0.0, revision.metadata.name or "")


def sorted_revisions(revisions: Iterable[ControllerRevision]) -> list[ControllerRevision]:
    """Oldest first: by revision, then creation time, then name (`SortControllerRevisions`)."""
    return sorted(revisions, key=_order)


def next_revision(revisions: Sequence[ControllerRevision]) -> int:
    """One more than the highest revision, 1 for the first."""
    return max((revision.revision for revision in revisions), default=0) + 1


def owned_revisions(parent: ApiObject, revisions: Iterable[ControllerRevision]) -> list[ControllerRevision]:
    """The revisions whose controller reference is `parent` (by uid), oldest first."""
    uid = parent.metadata.uid
    owned = []
    for revision in revisions:
        owner = revision.metadata.controller_reference()
        if owner is not None and owner.uid == uid:
            owned.append(revision)
    return sorted_revisions(owned)


def create_controller_revision(client: Client, parent: ApiObject, revision: ControllerRevision,
                               collision_count: int) -> tuple[ControllerRevision, int]:
    """Create `revision` under its hash name (`CreateControllerRevision`); returns it and the
    collision count, bumped for every name already taken by a revision with other data."""
    while True:
        probe = revision.model_copy(deep=True)
        hash_text = hash_controller_revision(probe, collision_count)
        probe.metadata.name = controller_revision_name(parent.metadata.name or "", hash_text)
        probe.metadata.labels = {**(probe.metadata.labels or {}), CONTROLLER_REVISION_HASH_LABEL: hash_text}
        try:
            return client.create(probe), collision_count
        except errors.AlreadyExists:
            existing = client.get("controllerrevisions", probe.metadata.name or "", probe.metadata.namespace)
            if revision_data_bytes(existing.data) == revision_data_bytes(probe.data):
                return existing, collision_count
            collision_count += 1


def revisions_to_prune(revisions: Sequence[ControllerRevision], live: set[str], limit: int) -> list[ControllerRevision]:
    """The oldest revisions beyond `limit` that no live pod, current or update revision
    (`live`, by name) uses: what `truncateHistory` deletes."""
    unused = [revision for revision in sorted_revisions(revisions) if revision.metadata.name not in live]
    excess = len(unused) - max(limit, 0)
    return unused[:excess] if excess > 0 else []
