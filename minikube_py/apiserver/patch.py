"""Patch formats the API accepts, applied to wire dicts.

JSON merge patch (RFC 7386) is the native format: `kubectl patch --type merge`, our own CLI and
clients send it. A JSON patch (RFC 6902, a list of operations) is what `kubectl rollout undo`
sends. kubectl's strategic merge patch is applied as a merge patch with Kubernetes' merge keys,
read from the schema (`api.schema.MERGE_RULES`: `containers` by `name`, a Service's `ports` by
`port`, ...), which is what `kubectl apply` and `kubectl set image` need: changing one
container's image must not drop the others.
"""

from __future__ import annotations

import copy
from typing import Any

from minikube_py.api import errors, schema

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"  # server-side apply (apiserver/fieldmanager.py)

def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any, model: type | None = None) -> Any:
    """A merge patch that merges the keyed lists of `model`'s schema by key (and its `merge`
    lists of strings as sets), honouring the directives kubectl writes: `$patch:
    delete|replace`, `$retainKeys`, `$deleteFromPrimitiveList/<field>` and
    `$setElementOrder/<field>` (order hints, applied by keeping the merged order). Without a
    model every list is replaced."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {key: copy.deepcopy(value) for key, value in patch.items() if key != "$patch"}
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$patch", "$retainKeys"):
            continue
        rule = schema.merge_rule(model, key)
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.partition("/")[2]
            result[field] = [item for item in result.get(field) or [] if item not in value]
        elif value is None:
            result.pop(key, None)
        elif rule is not None and "merge" in (rule.patch_strategy or "") and isinstance(value, list) \
                and isinstance(result.get(key), list):
            if rule.patch_merge_key:
                result[key] = _merge_keyed_list(result[key], value, rule.patch_merge_key,
                                                schema.element_model(model, key))
            else:  # a set of strings (finalizers, podCIDRs): patch elements are added
                result[key] = result[key] + [item for item in value if item not in result[key]]
        else:
            result[key] = strategic_merge_patch(result.get(key), value, schema.element_model(model, key))
    if "$retainKeys" in patch:
        retained = set(patch["$retainKeys"])
        result = {key: value for key, value in result.items() if key in retained}
    return result


def _merge_keyed_list(current: list, patch: list, merge_key: str, model: type | None) -> list:
    merged = list(current)
    for element in patch:
        if not isinstance(element, dict) or merge_key not in element:
            return copy.deepcopy(patch)
        index = next((position for position, existing in enumerate(merged)
                      if isinstance(existing, dict) and existing.get(merge_key) == element[merge_key]),
                     None)
        if element.get("$patch") == "delete":
            if index is not None:
                del merged[index]
        elif index is None:
            merged.append(strategic_merge_patch({}, element, model))
        else:
            merged[index] = strategic_merge_patch(merged[index], element, model)
    return merged


def patch_not_applicable(path: str, reason: str) -> errors.Invalid:
    """A well-formed JSON patch that does not apply to the object (a failed `test`, a path that
    is not there): kube-apiserver answers 422 Invalid with this fixed message and empty details;
    the reason goes in a cause, so a client can still say what failed."""
    return errors.Invalid("the server rejected our request due to an error in our request",
                          details={"causes": [{"reason": "FieldValueInvalid", "message": reason, "field": path}]})


def json_patch(target: Any, operations: list) -> Any:
    """RFC 6902: add, remove, replace, move, copy and test, applied in order to a copy."""
    document = copy.deepcopy(target)
    for number, operation in enumerate(operations):
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise errors.BadRequest(f"json patch operation {number}: needs \"op\" and \"path\"")
        op, path = operation["op"], operation["path"]
        if op == "test":
            if _resolve(document, path) != operation.get("value"):
                raise patch_not_applicable(path, f"json patch operation {number}: test failed: the value is not {operation.get('value')!r}")
        elif op == "remove":
            document = _remove(document, path)
        elif op in ("add", "replace"):
            if "value" not in operation:
                raise errors.BadRequest(f"json patch operation {number} ({op} {path}): needs \"value\"")
            if op == "replace":
                _resolve(document, path)
            document = _add(document, path, copy.deepcopy(operation["value"]), replace=op == "replace")
        elif op in ("move", "copy"):
            source = operation.get("from")
            if source is None:
                raise errors.BadRequest(f"json patch operation {number} ({op} {path}): needs \"from\"")
            value = copy.deepcopy(_resolve(document, source))
            if op == "move":
                document = _remove(document, source)
            document = _add(document, path, value, replace=False)
        else:
            raise errors.BadRequest(f"json patch operation {number}: unknown op {op!r}")
    return document


def _tokens(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise errors.BadRequest(f"json patch path {path!r} must start with '/'")
    return [token.replace("~1", "/").replace("~0", "~") for token in path[1:].split("/")]


def _step(container: Any, token: str, path: str) -> Any:
    try:
        if isinstance(container, list):
            return container[int(token)]
        return container[token]
    except (KeyError, IndexError, ValueError, TypeError):
        raise patch_not_applicable(path, "json patch: this path does not exist in the object") from None


def _resolve(document: Any, path: str) -> Any:
    for token in _tokens(path):
        document = _step(document, token, path)
    return document


def _parent(document: Any, path: str) -> tuple[Any, str]:
    tokens = _tokens(path)
    parent = document
    for token in tokens[:-1]:
        parent = _step(parent, token, path)
    return parent, tokens[-1]


def _add(document: Any, path: str, value: Any, replace: bool) -> Any:
    if path == "":
        return value
    parent, last = _parent(document, path)
    if isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif replace:
            parent[int(last)] = value
        else:
            index = int(last)
            if not 0 <= index <= len(parent):
                raise patch_not_applicable(path, "json patch: index out of range")
            parent.insert(index, value)
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise patch_not_applicable(path, "json patch: the parent is not an object or array")
    return document


def _remove(document: Any, path: str) -> Any:
    parent, last = _parent(document, path)
    _step(parent, last, path)
    if isinstance(parent, list):
        del parent[int(last)]
    else:
        del parent[last]
    return document


def apply_patch(target: dict, patch: Any, content_type: str = MERGE_PATCH, model: type | None = None) -> dict:
    """Apply a patch of the given content type (a JSON patch is a list, the others objects);
    `model` is the target's model, whose schema says how a strategic merge patch merges lists."""
    if content_type == JSON_PATCH or isinstance(patch, list):
        if not isinstance(patch, list):
            raise errors.BadRequest("a JSON patch (application/json-patch+json) must be a list of operations")
        return json_patch(target, patch)
    if not isinstance(patch, dict):
        raise errors.BadRequest(f"a {content_type} patch must be a JSON object")
    if content_type == STRATEGIC_MERGE_PATCH:
        return strategic_merge_patch(target, patch, model)
    return merge_patch(target, patch)
