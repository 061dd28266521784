"""managedFields and server-side apply: who set which field of an object, kept on every write.

kube-apiserver records, on every create, update and patch, which fields the request changed and
who made it (the `fieldManager` of the request, else the first word of its User-Agent), in
`metadata.managedFields`: one entry per manager and operation (`Update`, or `Apply` for
server-side apply), with the API version, the time of its last change, an optional subresource
and the set of fields it owns (`fieldsV1`, see fieldsets.py). Server-side apply
(`PATCH` with `application/apply-patch+yaml`) uses those entries:
- the applied configuration is merged into the object (objects key by key, "map" lists element
  by element by their keys, everything else replaced) and its manager then owns exactly the
  fields it names;
- a field it changes that another manager owns is a conflict (409 naming each field and
  manager), unless `force=true`, which moves the field to the applier;
- a field it applied last time, does not apply now and nobody else owns is removed.
An update takes the fields it changed from every other manager (it never conflicts).

What is not tracked, as in kube-apiserver: the fields the server owns (apiVersion, kind, name,
namespace, uid, resourceVersion, generation, creationTimestamp, managedFields) and the part of
the object the request's endpoint resets (status on the main resource, spec on `/status`).
As in kube-apiserver, an object keeps at most ten Update entries: the oldest are merged into an
`ancient-changes` entry.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Callable

from minikube_py.api import errors, schema
from minikube_py.apiserver import fieldsets
from minikube_py.apiserver.fieldsets import ApplyTypeError, Node

APPLY, UPDATE = "Apply", "Update"
FIELDS_V1 = "FieldsV1"
MAX_MANAGER_LENGTH = 128
MAX_UPDATE_MANAGERS = 10  # kube-apiserver's DefaultMaxUpdateManagers
ANCIENT_CHANGES = "ancient-changes"
# kubectl's client-side apply keeps what it applied in this annotation; when `kubectl apply
# --server-side` takes over such an object, kube-apiserver lets it take the fields the annotation
# still describes, and keeps the annotation up to date (its lastAppliedManager and Updater).
KUBECTL = "kubectl"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"  # k8s.io/apimachinery validation.FieldManagerMaxLength
# Fields the server owns: never part of any manager's set (apiserver's stripMetaManager).
SERVER_FIELDS: Node = {
    "f:apiVersion": {}, "f:kind": {},
    "f:metadata": {"f:name": {}, "f:namespace": {}, "f:uid": {}, "f:resourceVersion": {}, "f:generation": {},
                   "f:creationTimestamp": {}, "f:managedFields": {}, "f:selfLink": {},
                   "f:deletionTimestamp": {}, "f:deletionGracePeriodSeconds": {}},
}
# What a write through each endpoint may not take ownership of (the strategies' reset fields).
RESET_FIELDS: dict[str | None, Node] = {None: {"f:status": {}}, "status": {"f:spec": {}},
                                        "scale": {"f:status": {}}}

ManagerKey = tuple[str, str, str, str]  # manager, operation, apiVersion ("" for Apply), subresource


class Entry:
    """One managedFields entry: the fields it owns, its API version and the time of its last change."""

    __slots__ = ("fields", "api_version", "time", "stored")

    def __init__(self, fields: Node, api_version: str, time: str | None, stored: dict | None = None):
        self.fields, self.api_version, self.time = fields, api_version, time
        self.stored = stored  # the entry as stored, reused as long as nothing in it changes


def manager_from_request(field_manager: str | None, user_agent: str | None) -> str:
    """The manager of a write: `fieldManager`, else the User-Agent up to its first `/` (printable
    characters only, at most 128 bytes), as kube-apiserver derives it; "unknown" without either."""
    if field_manager:
        return field_manager
    prefix = ""
    for character in (user_agent or "").split("/")[0]:
        if not character.isprintable():
            continue
        if len((prefix + character).encode()) > MAX_MANAGER_LENGTH:
            break
        prefix += character
    return prefix or "unknown"


def field_manager_problems(field_manager: str) -> list[tuple[str, str]]:
    """ValidateFieldManager: at most 128 bytes, printable characters only."""
    problems = []
    if len(field_manager.encode()) > MAX_MANAGER_LENGTH:
        problems.append(("fieldManager", f"Too long: may not be more than {MAX_MANAGER_LENGTH} bytes"))
    for position, character in enumerate(field_manager):
        if not character.isprintable():
            problems.append(("fieldManager", f"Invalid value: {json.dumps(field_manager)}: invalid character "
                                             f"U+{ord(character):04X} (at position {position})"))
    return problems


def decode(obj: dict | None) -> dict[ManagerKey, Entry]:
    """The managedFields of a stored object, by manager identity."""
    managers: dict[ManagerKey, Entry] = {}
    for entry in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
        operation = entry.get("operation") or UPDATE
        key = (entry.get("manager") or "", operation, entry.get("apiVersion") or "" if operation == UPDATE else "",
               entry.get("subresource") or "")
        managers[key] = Entry(entry.get("fieldsV1") or {}, entry.get("apiVersion") or "", entry.get("time"), entry)
    return managers


def encode(managers: dict[ManagerKey, Entry]) -> list[dict]:
    """managedFields entries in kube-apiserver's order: Apply before Update, then by time, manager,
    API version and subresource; entries owning nothing are dropped."""
    entries = []
    for (manager, operation, _, subresource), entry in managers.items():
        if not entry.fields:
            continue
        if entry.stored is not None and entry.stored.get("fieldsV1") is entry.fields \
                and entry.stored.get("time") == entry.time:
            entries.append(entry.stored)
            continue
        encoded = {"manager": manager, "operation": operation, "apiVersion": entry.api_version}
        if entry.time:
            encoded["time"] = entry.time
        encoded.update(fieldsType=FIELDS_V1, fieldsV1=_sorted(entry.fields))
        if subresource:
            encoded["subresource"] = subresource
        entries.append(encoded)
    entries.sort(key=lambda entry: (entry["operation"], entry.get("time") or "", entry["manager"],
                                    entry["apiVersion"], entry.get("subresource") or ""))
    return entries


_ELEMENT_ORDER = {".": 0, "f": 1, "k": 2, "v": 3, "i": 4}


def _sorted(node: Node) -> Node:
    """A set with its elements in structured-merge-diff's order: itself, fields, keys, values, indexes."""
    return {element: _sorted(node[element])
            for element in sorted(node, key=lambda element: (_ELEMENT_ORDER.get(element[0], 5), element))}


def _changes(live: dict | None, new: dict, model: type | None, untracked: Node) -> tuple[Node, Node]:
    """What a write changed (added or modified) and removed, outside `untracked`. A create
    changes every field: its set is built directly, faster than comparing with nothing (a list
    with duplicate keys, which validation may let through, falls back to the comparison)."""
    if live is None:
        try:
            return fieldsets.without_subtrees(fieldsets.field_set(_content(new), model, new_maps_are_members=True),
                                              untracked), {}
        except ApplyTypeError:
            pass
    comparison = fieldsets.compare(_content(live), _content(new), model, untracked)
    return (fieldsets.without_subtrees(comparison.changed(), untracked),
            fieldsets.without_subtrees(comparison.removed, untracked))


def _untracked(subresource: str | None) -> Node:
    return fieldsets.union(SERVER_FIELDS, RESET_FIELDS.get(subresource, {}))


def cap_update_managers(managers: dict[ManagerKey, Entry]) -> None:
    """At most MAX_UPDATE_MANAGERS Update entries, as kube-apiserver keeps (its capManagersManager):
    the oldest are merged, per API version, into an `ancient-changes` entry (in place)."""
    def updaters() -> list[ManagerKey]:
        return [key for key, entry in managers.items() if key[1] == UPDATE and entry.fields]

    while len(found := updaters()) > MAX_UPDATE_MANAGERS:
        oldest = min((key for key in found if key[0] != ANCIENT_CHANGES),
                     key=lambda key: (managers[key].time or "", key), default=None)
        if oldest is None:
            return
        entry = managers.pop(oldest)
        bucket_key = (ANCIENT_CHANGES, UPDATE, entry.api_version, "")
        bucket = managers.get(bucket_key)
        if bucket is None:
            managers[bucket_key] = Entry(entry.fields, entry.api_version, entry.time)
        else:
            managers[bucket_key] = Entry(fieldsets.union(bucket.fields, entry.fields), entry.api_version,
                                         max(bucket.time or "", entry.time or "") or None)


def _set_managed_fields(obj: dict, managers: dict[ManagerKey, Entry]) -> None:
    cap_update_managers(managers)
    entries = encode(managers)
    if entries:
        obj["metadata"]["managedFields"] = entries
    else:
        obj["metadata"].pop("managedFields", None)


def _content(obj: dict | None) -> dict:
    """The object as compared: without its managedFields."""
    if not obj:
        return {}
    metadata = {key: value for key, value in (obj.get("metadata") or {}).items() if key != "managedFields"}
    return {**obj, "metadata": metadata}


class FieldManager:
    """Keeps managedFields on writes; `now()` gives the RFC 3339 time stamped on changed entries."""

    def __init__(self, now: Callable[[], str]):
        self.now = now

    # -- updates (create, PUT, merge/strategic/JSON patch, subresources) -------------------------

    def update(self, live: dict | None, new: dict, manager: str, subresource: str | None = None,
               model: type | None = None, api_version: str | None = None) -> None:
        """Record in `new` (in place) that `manager` changed what differs between `live` (None
        for a create) and `new`, at `api_version` (the request's; `new`'s own without one). An
        object that arrives with managedFields of its own (a client that edits them) starts
        from those; `[{}]` clears them."""
        managers = self._base(live, new, subresource)
        if managers is None:
            new["metadata"].pop("managedFields", None)
            return
        untracked = _untracked(subresource)
        changed, removed = _changes(live, new, model, untracked)
        for entry in managers.values():
            entry.fields = fieldsets.difference(fieldsets.difference(entry.fields, changed), removed)
        if changed:
            api_version = api_version or new["apiVersion"]
            key = (manager, UPDATE, api_version, subresource or "")
            previous = managers.get(key)
            fields = fieldsets.union(previous.fields, changed) if previous else changed
            managers[key] = Entry(fields, api_version, self.now())
        _set_managed_fields(new, managers)

    @staticmethod
    def _base(live: dict | None, new: dict, subresource: str | None) -> dict[ManagerKey, Entry] | None:
        given = (new.get("metadata") or {}).get("managedFields")
        if given == [{}]:
            return None
        if given and not subresource and given != ((live or {}).get("metadata") or {}).get("managedFields"):
            return decode(new)
        return decode(live)

    # -- server-side apply ---------------------------------------------------------------------

    def apply(self, live: dict | None, config: dict, manager: str, force: bool, model: type | None = None,
              api_version: str | None = None, subresource: str | None = None) -> dict:
        """The object (of `model`) after applying `config` for `manager` to `live` (None: it does
        not exist yet), with its managedFields recorded at `api_version` (the request's; the
        config's own without one) and through `subresource` ("status", "scale"; None for the
        object itself, whose reset fields it may not own); errors.Conflict naming the fields
        other managers own, or ApplyTypeError when `config` does not fit the object's shape."""
        api_version = api_version or config["apiVersion"]
        managers = decode(live)
        untracked = _untracked(subresource)
        applied = fieldsets.without_subtrees(fieldsets.field_set(config, model), untracked)
        key = (manager, APPLY, "", subresource or "")
        last = managers.get(key)
        merged = merge(copy.deepcopy(_content(live)), config, model)
        others = {other: entry for other, entry in managers.items() if other != key}
        if last is not None:
            owned_by_others: Node = {}
            for entry in others.values():
                owned_by_others = fieldsets.union(owned_by_others, entry.fields)
            prune(merged, fieldsets.difference(last.fields, applied), fieldsets.union(owned_by_others, applied), model)
        comparison = fieldsets.compare(_content(live), merged, model, untracked)
        changed = fieldsets.without_subtrees(comparison.changed(), untracked)
        removed = fieldsets.without_subtrees(comparison.removed, untracked)
        conflicts = {other: shared for other, entry in others.items()
                     if (shared := fieldsets.intersection(entry.fields, changed))}
        if conflicts and not force and manager == KUBECTL:
            conflicts = _without_client_side_applied(conflicts, live, model)
            force = not conflicts
        if conflicts and not force:
            raise conflict_error(conflicts, others)
        for other, entry in others.items():
            entry.fields = fieldsets.difference(fieldsets.difference(entry.fields, conflicts.get(other, {})), removed)
        if manager == KUBECTL and LAST_APPLIED in ((live or {}).get("metadata") or {}).get("annotations", {}):
            _record_last_applied(merged, config)
        time = self.now() if (changed or removed or last is None or last.fields != applied) else last.time
        managers[key] = Entry(applied, api_version, time)
        _set_managed_fields(merged, managers)
        return merged


def _without_client_side_applied(conflicts: dict[ManagerKey, Node], live: dict | None,
                                 model: type | None) -> dict[ManagerKey, Node]:
    """The conflicts left once those on fields client-side apply last applied, still at the value
    it applied, are allowed (a `kubectl apply --server-side` after `kubectl apply`)."""
    try:
        last_applied = json.loads(live["metadata"]["annotations"][LAST_APPLIED])  # type: ignore[index]
        if not isinstance(last_applied, dict):
            return conflicts
        allowed = fieldsets.difference(fieldsets.field_set(last_applied, model),
                                       fieldsets.compare(last_applied, _content(live), model).modified)
    except (KeyError, TypeError, ValueError):  # ApplyTypeError is a ValueError
        return conflicts
    remaining = {key: left for key, fields in conflicts.items() if (left := fieldsets.difference(fields, allowed))}
    return remaining


def _record_last_applied(merged: dict, config: dict) -> None:
    annotations = {key: value for key, value in ((config.get("metadata") or {}).get("annotations") or {}).items()
                   if key != LAST_APPLIED}
    applied = {**config, "metadata": {**config.get("metadata", {}), "annotations": annotations}}
    if not annotations:
        applied["metadata"].pop("annotations")
    merged["metadata"].setdefault("annotations", {})[LAST_APPLIED] = json.dumps(applied, separators=(",", ":")) + "\n"


def conflict_error(conflicts: dict[ManagerKey, Node], entries: dict[ManagerKey, Entry]) -> errors.Conflict:
    """kube-apiserver's 409 for an apply that would take fields others own."""
    found = []
    for key in sorted(conflicts):
        who = _manager_text(key, entries[key])
        found += [(who, fieldsets.path_text(list(path))) for path in fieldsets.members(conflicts[key])]
    causes = [{"type": "FieldManagerConflict", "message": f"conflict with {who}", "field": field}
              for who, field in found]
    if len(found) == 1:
        message = f"Apply failed with 1 conflict: conflict with {found[0][0]}: {found[0][1]}"
    else:
        lines = []
        for key in sorted(conflicts):
            who = _manager_text(key, entries[key])
            lines.append(f"conflicts with {who}:")
            lines += [f"- {fieldsets.path_text(list(path))}" for path in fieldsets.members(conflicts[key])]
        message = f"Apply failed with {len(found)} conflicts: " + "\n".join(lines)
    return errors.Conflict(message, {"causes": causes})


def _manager_text(key: ManagerKey, entry: Entry) -> str:
    manager, operation, _, subresource = key
    text = json.dumps(manager)
    if subresource:
        text += f" with subresource {json.dumps(subresource)}"
    if operation == UPDATE:
        text += f" using {entry.api_version}"
    return text


# -- merging and pruning objects ----------------------------------------------------------------

def merge(live: dict | None, config: dict, model: type | None, elements: tuple[str, ...] = ()) -> dict:
    """`config` merged into `live`, both objects of `model`: key by key (a null in `config`
    removes the key), "map" and "set" lists element by element (live order, new elements after),
    anything else replaced. ApplyTypeError where `config` does not have the field's type."""
    result = dict(live or {})
    for key, value in config.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_value(result.get(key), value, model, key, elements + (fieldsets.field_element(key),))
    return result


def _merge_value(live: Any, config: Any, model: type | None, key: str, elements: tuple[str, ...]) -> Any:
    """The value of field `key` of an object of `model` after the merge."""
    where = fieldsets.path_text(list(elements))
    shape = _shape(model, key)
    if isinstance(config, dict):
        if shape is not None and shape.kind not in ("object", "map", "any") or \
                live is not None and not isinstance(live, dict):
            raise ApplyTypeError(where, f"expected {_expected(shape, live)}, got map")
        return merge(live, config, schema.element_model(model, key), elements)
    if isinstance(config, list):
        if shape is not None and shape.kind not in ("array", "any") or live is not None and not isinstance(live, list):
            raise ApplyTypeError(where, f"expected {_expected(shape, live)}, got list")
        if live is None or fieldsets.list_kind(model, key)[0] == "atomic":
            return copy.deepcopy(config)
        return _merge_list(live, config, model, key, elements)
    if shape is not None and not _scalar_fits(shape, config) or isinstance(live, (dict, list)):
        raise ApplyTypeError(where, f"expected {_expected(shape, live)}, got {_kind(config)}")
    return config


def _shape(model: type | None, key: str) -> schema.Shape | None:
    field = schema.fields_of(model).get(key) if model is not None else None
    return field.shape if field is not None else None


_SCALAR_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "int-or-string": (int, str), "quantity": (str, int, float),
}


def _scalar_fits(shape: schema.Shape, value: Any) -> bool:
    allowed = _SCALAR_TYPES.get(shape.kind)
    if allowed is None:
        return shape.kind == "any"
    if isinstance(value, bool):
        return bool in allowed
    return isinstance(value, allowed)


_SHAPE_TEXT = {"object": "map", "map": "map", "array": "list", "string": "string",
               "integer": "numeric (int or float)", "number": "numeric (int or float)", "boolean": "boolean",
               "int-or-string": "string or numeric (int or float)", "quantity": "string or numeric (int or float)"}


def _expected(shape: schema.Shape | None, live: Any) -> str:
    if shape is not None and shape.kind in _SHAPE_TEXT:
        return _SHAPE_TEXT[shape.kind]
    return _kind(live)


def _merge_list(live: list, config: list, model: type | None, key: str, elements: tuple[str, ...]) -> list:
    result = list(live)
    positions = {fieldsets.list_element_key(item, model, key): index for index, item in enumerate(result)}
    item_model = schema.element_model(model, key)
    for item in config:
        element = fieldsets.list_element_key(item, model, key)
        if element is None:
            raise ApplyTypeError(fieldsets.path_text(list(elements)), "expected a list element of the list's type")
        if element in positions:
            index = positions[element]
            if isinstance(item, dict):
                result[index] = merge(result[index], item, item_model, elements + (element,))
        else:
            positions[element] = len(result)
            result.append(copy.deepcopy(item))
    return result


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "numeric (int or float)"
    return "string" if isinstance(value, str) else "null"


def prune(obj: dict, candidates: Node, kept: Node, model: type | None) -> None:
    """Remove from `obj` (an object of `model`, in place) each field of `candidates` (what the
    applier applied before and not now) that no set in `kept` owns, at it or below it."""
    for path in list(fieldsets.members(candidates)):
        owner = fieldsets.child_at(kept, path)
        if owner is not None and (fieldsets.is_member(owner) or fieldsets.has_members_below(owner)):
            continue
        _remove_in_object(obj, path, model)


def _remove_in_object(obj: Any, path: tuple[str, ...], model: type | None) -> None:
    element, rest = path[0], path[1:]
    if not element.startswith("f:") or not isinstance(obj, dict) or element[2:] not in obj:
        return
    name = element[2:]
    if not rest:
        del obj[name]
    elif isinstance(obj[name], dict):
        _remove_in_object(obj[name], rest, schema.element_model(model, name))
    elif isinstance(obj[name], list):
        _remove_in_list(obj[name], rest, model, name)


def _remove_in_list(items: list, path: tuple[str, ...], model: type | None, key: str) -> None:
    """Remove `path` from the list in field `key` of an object of `model`."""
    element, rest = path[0], path[1:]
    for index, item in enumerate(items):
        if fieldsets.list_element_key(item, model, key) == element:
            if not rest:
                del items[index]
            elif isinstance(item, dict):
                _remove_in_object(item, rest, schema.element_model(model, key))
            return
