"""Sets of field paths in Kubernetes' `FieldsV1` form, and how they are made from objects.

Server-side apply records which manager owns which fields of an object as a set of paths, stored
in `metadata.managedFields[].fieldsV1` (structured-merge-diff's `fieldpath.Set` serialised). We
keep the sets in that serialised form all along, since it is already a canonical tree: a node is a
dict from path elements to child nodes, where a path element is
- `f:NAME`, a field of an object;
- `k:{"name":"web"}`, an element of a "map" list, by its key fields (JSON, keys sorted);
- `v:"value"`, an element of a "set" list of scalars;
- `i:3`, an element of an atomic list, by index (never made here, only read).
A node is itself in the set when it is empty (a leaf) or holds the key `.`; a node that is not in
the set and has no children does not appear.

Objects are walked with their model's schema (`api.schema`: the one source of list types that
strategic merge patch, OpenAPI and apply share); objects (dicts) are granular, so each field of a dict is owned on its own. As
structured-merge-diff does, an element of a map or set list is always itself in the set (so a
manager owns the element, not only its fields), and so is a field whose value is null, an empty
object, a scalar or an atomic list.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from minikube_py.api import schema

SELF = "."
Node = dict  # path element -> Node, with SELF -> {} when the node itself is in the set


class ApplyTypeError(ValueError):
    """The applied configuration does not have the shape of the object's type at `path`."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path


# -- path elements ------------------------------------------------------------------------------

def field_element(name: str) -> str:
    return f"f:{name}"


def key_element(element: dict, keys: tuple[str, ...]) -> str:
    return "k:" + json.dumps({key: element.get(key) for key in sorted(keys)}, separators=(",", ":"),
                             sort_keys=True)


def value_element(value: Any) -> str:
    return "v:" + json.dumps(value, separators=(",", ":"))


def path_text(elements: list[str]) -> str:
    """A path as structured-merge-diff prints it in conflicts: `.spec.containers[name="web"].image`."""
    parts = []
    for element in elements:
        kind, text = element[0], element[2:]
        if kind == "f":
            parts.append("." + text)
        elif kind == "k":
            fields = json.loads(text)
            parts.append("[" + ",".join(f"{key}={_scalar_text(value)}" for key, value in fields.items()) + "]")
        elif kind == "v":
            parts.append(f"[={_scalar_text(json.loads(text))}]")
        else:
            parts.append(f"[{text}]")
    return "".join(parts)


def _scalar_text(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


# -- set algebra --------------------------------------------------------------------------------

def is_member(node: Node) -> bool:
    return not node or SELF in node


def _make(member: bool, children: Node) -> Node | None:
    if not children:
        return {} if member else None
    if member:
        return {SELF: {}, **children}
    return children


def _children(node: Node) -> Node:
    return {element: child for element, child in node.items() if element != SELF} if SELF in node else node


def union(left: Node, right: Node) -> Node:
    """The children of two set roots, merged (roots are never members themselves)."""
    result = dict(_children(left))
    for element, child in _children(right).items():
        if element in result:
            mine = result[element]
            merged = _make(is_member(mine) or is_member(child), union(_children(mine), _children(child)))
            result[element] = merged if merged is not None else {}
        else:
            result[element] = child
    return result


def difference(left: Node, right: Node) -> Node:
    """`left` without the members of `right` (a member of `left` stays if `right` only has its
    children). `left` itself when nothing is taken from it, so an unchanged set keeps its identity."""
    if not right or not left:
        return left
    right_children = _children(right)
    result: Node = {}
    changed = False
    for element, child in left.items():
        other = right_children.get(element) if element != SELF else None
        if other is None:
            result[element] = child
            continue
        loses_membership = is_member(child) and is_member(other)
        children = _children(child)
        kept_children = difference(children, _children(other)) if children else children
        if not loses_membership and kept_children is children:
            result[element] = child
            continue
        changed = True
        kept = _make(is_member(child) and not loses_membership, kept_children)
        if kept is not None:
            result[element] = kept
    return result if changed else left


def intersection(left: Node, right: Node) -> Node:
    result = {}
    for element, child in _children(left).items():
        other = _children(right).get(element)
        if other is None:
            continue
        shared = _make(is_member(child) and is_member(other), intersection(_children(child), _children(other)))
        if shared is not None:
            result[element] = shared
    return result


def without_subtrees(node: Node, excluded: Node) -> Node:
    """`node` without everything at or below the members of `excluded` (its "reset fields")."""
    result = {}
    for element, child in _children(node).items():
        if element not in excluded:
            result[element] = child
        elif not is_member(excluded[element]):
            kept = _make(is_member(child), without_subtrees(_children(child), _children(excluded[element])))
            if kept is not None:
                result[element] = kept
    return result


def members(node: Node, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every path in the set, parents before their children, in element order."""
    for element in sorted(_children(node)):
        child = node[element]
        path = prefix + (element,)
        if is_member(child):
            yield path
        yield from members(child, path)


def has_members_below(node: Node) -> bool:
    return any(True for _ in members(node))


def child_at(node: Node, path: tuple[str, ...]) -> Node | None:
    for element in path:
        node = _children(node).get(element)
        if node is None:
            return None
    return node


def insert(root: Node, path: tuple[str, ...]) -> None:
    """Add `path` to the set rooted at `root`, in place. Parents made on the way carry a
    placeholder (`.` -> None) saying they are not members; `normalized` drops it."""
    node = root
    for depth, element in enumerate(path):
        last = depth == len(path) - 1
        child = node.get(element)
        if child is None:
            child = {} if last else {SELF: None}
            node[element] = child
        elif last:
            if SELF in child and child[SELF] is None:
                child[SELF] = {}
        elif not child:
            child[SELF] = {}  # a member leaf that now has children stays a member
        node = child


def normalized(node: Node) -> Node:
    """`insert` leaves placeholders on parents that are not members: drop them."""
    result = {}
    for element, child in node.items():
        if element == SELF:
            if child is not None:
                result[SELF] = {}
            continue
        result[element] = normalized(child)
    if set(result) == {SELF}:
        return {}
    return result


# -- sets from objects --------------------------------------------------------------------------

def list_kind(model: type | None, key: str) -> tuple[str, tuple[str, ...]]:
    """How the list in field `key` of an object of `model` is owned, from the schema's merge
    rules (`api.schema.MERGE_RULES`): ("map", its keys), ("set", ()) or ("atomic", ())."""
    rule = schema.merge_rule(model, key)
    if rule is None or rule.list_type not in ("map", "set"):
        return "atomic", ()
    return rule.list_type, rule.list_map_keys


def is_map(model: type | None, key: str) -> bool:
    """Whether field `key` of an object of `model` is a map (string keys to values, such as
    `labels`), as opposed to an object of a model (a struct)."""
    if model is None:
        return False
    field = schema.fields_of(model).get(key)
    return field is not None and field.shape is not None and field.shape.kind == "map"


def field_set(obj: dict, model: type | None, new_maps_are_members: bool = False) -> Node:
    """What an applied configuration (an object of `model`) sets: every field it names
    (structured-merge-diff's `ToFieldSet`). Raises ApplyTypeError for a "map" list element
    without its keys, a duplicate element, or a list where an object belongs.
    `new_maps_are_members`: the set of a created object as an Update records it, where each map
    the object brings is itself a member (the `.` marker of structured-merge-diff's Compare,
    which records every non-leaf node the old object lacked)."""
    return _object_set(obj, model, [], new_maps_are_members)


def _object_set(obj: dict, model: type | None, elements: list[str], new_maps_are_members: bool = False) -> Node:
    result: Node = {}
    for key, value in obj.items():
        element = field_element(key)
        member, children = _value_set(value, model, key, elements + [element], new_maps_are_members)
        if new_maps_are_members and isinstance(value, dict) and value and is_map(model, key):
            member = True
        made = _make(member or value is None or value == {}, children)
        if made is not None:
            result[element] = made
    return result


def _value_set(value: Any, model: type | None, key: str, elements: list[str],
               new_maps_are_members: bool = False) -> tuple[bool, Node]:
    """The set of the value of field `key` of an object of `model`, and whether the field
    itself is a member."""
    if isinstance(value, dict):
        return False, _object_set(value, schema.element_model(model, key), elements, new_maps_are_members)
    if isinstance(value, list):
        kind, keys = list_kind(model, key)
        if kind == "map":
            return False, _map_list_set(value, model, key, keys, elements, new_maps_are_members)
        if kind == "set":
            found: Node = {}
            for item in value:
                if isinstance(item, (dict, list)):
                    raise ApplyTypeError(path_text(elements), "expected a list of scalars (a set), got an object or list")
                item_element = value_element(item)
                if item_element in found:
                    raise ApplyTypeError(path_text(elements), f"duplicate entries for key [={_scalar_text(item)}]")
                found[item_element] = {}
            return False, found
    return True, {}


def _map_list_set(items: list, model: type | None, key: str, keys: tuple[str, ...], elements: list[str],
                  new_maps_are_members: bool = False) -> Node:
    found: Node = {}
    item_model = schema.element_model(model, key)
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ApplyTypeError(path_text(elements), f"element {index}: associative list with keys has an element "
                                                      "that is not a map type")
        missing = [name for name in keys if name not in item and name not in _KEY_DEFAULTS]
        if missing:
            raise ApplyTypeError(path_text(elements), f"element {index}: associative list with keys has an element "
                                                      f"that omits key field {json.dumps(missing[0])}")
        element = key_element(_with_key_defaults(item, keys), keys)
        if element in found:
            raise ApplyTypeError(path_text(elements), f"duplicate entries for key {path_text([element])}")
        children = _object_set(item, item_model, elements + [element], new_maps_are_members)
        found[element] = _make(True, children) or {}
    return found


# Key fields that have a default: Kubernetes' schema gives `protocol` the default "TCP", so a port
# applied without it is keyed as TCP (structured-merge-diff reads the default from OpenAPI).
_KEY_DEFAULTS = {"protocol": "TCP"}


def _with_key_defaults(item: dict, keys: tuple[str, ...]) -> dict:
    if all(key in item for key in keys):
        return item
    return {**{key: _KEY_DEFAULTS[key] for key in keys if key in _KEY_DEFAULTS}, **item}


def list_element_key(item: Any, model: type | None, key: str) -> str | None:
    """The path element of one element of the list in field `key` of an object of `model`
    (None in an atomic list)."""
    kind, keys = list_kind(model, key)
    if kind == "map" and isinstance(item, dict):
        return key_element(_with_key_defaults(item, keys), keys)
    if kind == "set" and not isinstance(item, (dict, list)):
        return value_element(item)
    return None


# -- comparing two objects ----------------------------------------------------------------------

class Comparison:
    """The fields an update added, changed and removed (structured-merge-diff's `Compare`)."""

    def __init__(self) -> None:
        self.added: Node = {}
        self.modified: Node = {}
        self.removed: Node = {}

    def changed(self) -> Node:
        """What was added or modified (the sets are normalized by `finish`)."""
        return union(self.added, self.modified)

    def finish(self) -> "Comparison":
        self.added, self.modified, self.removed = (normalized(self.added), normalized(self.modified),
                                                   normalized(self.removed))
        return self


def compare(old: dict, new: dict, model: type | None, skipped: Node | None = None) -> Comparison:
    """Walk both objects (of `model`): a leaf (scalar, atomic list) that differs is modified, one
    only in `new` added, one only in `old` removed; so are the elements of map and set lists.
    A map (`labels`) that appears or disappears whole is itself recorded too, as
    structured-merge-diff's Compare does (the `.` marker in managedFields). Objects of a model
    are not: our objects are stored with their defaults filled in, so an object's presence
    carries no intent of its own. The members of
    `skipped` are not compared at all (what the caller does not track)."""
    result = Comparison()
    _compare_objects(old, new, model, (), result, skipped or {})
    return result.finish()


_ABSENT = object()


def _compare_objects(old: dict, new: dict, model: type | None, path: tuple[str, ...],
                     result: Comparison, skipped: Node | None = None) -> None:
    for key in old.keys() | new.keys():
        element = field_element(key)
        skip = skipped.get(element) if skipped else None
        if skip is not None and is_member(skip):
            continue
        before, after = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if skip and isinstance(before, dict) and isinstance(after, dict):
            _compare_objects(before, after, schema.element_model(model, key), path + (element,), result, skip)
        else:
            _compare_values(before, after, model, key, path + (element,), result)


def _compare_values(old: Any, new: Any, model: type | None, key: str, path: tuple[str, ...],
                    result: Comparison) -> None:
    """Compare the values of field `key` of an object of `model`."""
    if isinstance(old, dict) and isinstance(new, dict):
        _compare_objects(old, new, schema.element_model(model, key), path, result)
        return
    if isinstance(old, list) and isinstance(new, list) and list_kind(model, key)[0] != "atomic":
        _compare_lists(old, new, model, key, path, result)
        return
    if old is _ABSENT:
        _record_all(new, model, key, path, result.added)
    elif new is _ABSENT:
        _record_all(old, model, key, path, result.removed)
    elif old != new:
        if isinstance(old, dict) or isinstance(new, dict):
            # A type change (a scalar became an object): everything below is new.
            _record_all(old, model, key, path, result.removed)
            _record_all(new, model, key, path, result.added)
        else:
            insert(result.modified, path)


def _record_all(value: Any, model: type | None, key: str, path: tuple[str, ...], into: Node) -> None:
    """The value of field `key` of an object of `model` appears or disappears whole: record its
    leaves (and list elements)."""
    if isinstance(value, dict):
        if not value or is_map(model, key):
            insert(into, path)
        child_model = schema.element_model(model, key)
        for child_key, child in value.items():
            _record_all(child, child_model, child_key, path + (field_element(child_key),), into)
    elif isinstance(value, list) and list_kind(model, key)[0] != "atomic":
        item_model = schema.element_model(model, key)
        for item in value:
            element = list_element_key(item, model, key)
            if element is None:
                continue
            insert(into, path + (element,))
            if isinstance(item, dict):
                for child_key, child in item.items():
                    _record_all(child, item_model, child_key, path + (element, field_element(child_key)), into)
    else:
        insert(into, path)


def _compare_lists(old: list, new: list, model: type | None, key: str, path: tuple[str, ...],
                   result: Comparison) -> None:
    old_items = {list_element_key(item, model, key): item for item in old}
    new_items = {list_element_key(item, model, key): item for item in new}
    old_items.pop(None, None)
    new_items.pop(None, None)
    item_model = schema.element_model(model, key)
    for element in old_items.keys() | new_items.keys():
        before, after = old_items.get(element, _ABSENT), new_items.get(element, _ABSENT)
        if before is _ABSENT:
            _record_all([after], model, key, path, result.added)
        elif after is _ABSENT:
            _record_all([before], model, key, path, result.removed)
        elif isinstance(before, dict) and isinstance(after, dict):
            _compare_objects(before, after, item_model, path + (element,), result)
