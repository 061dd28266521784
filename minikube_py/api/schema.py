"""The shape of our models as data: wire names, value types and how each list merges.

Several parts of the API server need to walk an object together with its schema: OpenAPI
(`apiserver/openapi.py`) publishes it, strategic merge patch and server-side apply merge keyed
lists element by element, protobuf encodes it, and `fieldValidation` looks for unknown fields.
They all read it here, so a list's merge key or a field's type is written down once: the models
themselves say the types, and `MERGE_RULES` says what Go struct tags say in Kubernetes
(`patchStrategy`, `patchMergeKey`, `+listType`, `+listMapKey`; k/k `staging/src/k8s.io/api/*/v1/
types.go`). A new kind needs nothing here unless it has keyed lists of its own: then it adds
their rules to `MERGE_RULES` under its model's class name.
"""

from __future__ import annotations

import functools
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from minikube_py.api import meta


@dataclass(frozen=True)
class MergeRule:
    """How one field of a model merges.

    `list_type` is the server-side apply list type (`atomic`, `set` or `map` keyed by
    `list_map_keys`); `patch_strategy` (`merge`, `retainKeys`, `merge,retainKeys`) and
    `patch_merge_key` are what strategic merge patch uses. A list with no rule is atomic and a
    strategic merge patch replaces it whole.
    """

    list_type: str | None = None
    list_map_keys: tuple[str, ...] = ()
    patch_strategy: str | None = None
    patch_merge_key: str | None = None


def _keyed(*keys: str, merge_key: str | None = None, strategy: str = "merge") -> MergeRule:
    return MergeRule("map", keys, strategy, merge_key or keys[0])


_BY_NAME = _keyed("name")
_BY_TYPE = _keyed("type")
_CONTAINER_FIELDS = {
    "env": _BY_NAME,
    "ports": _keyed("containerPort", "protocol"),
    "volumeMounts": _keyed("mountPath"),
}

# (model class name, wire field) -> rule. Lists not named here are atomic, except status
# conditions (`merge_rule`).
MERGE_RULES: dict[tuple[str, str], MergeRule] = {
    ("ObjectMeta", "ownerReferences"): _keyed("uid"),
    ("ObjectMeta", "finalizers"): MergeRule("set", (), "merge"),
    ("PodSpec", "containers"): _BY_NAME,
    ("PodSpec", "initContainers"): _BY_NAME,
    ("PodSpec", "ephemeralContainers"): _BY_NAME,
    ("PodSpec", "imagePullSecrets"): _BY_NAME,
    ("PodSpec", "volumes"): _keyed("name", strategy="merge,retainKeys"),
    ("PodSpec", "topologySpreadConstraints"): _keyed("topologyKey", "whenUnsatisfiable"),
    ("PodSpec", "schedulingGates"): _BY_NAME,
    ("PodDisruptionBudgetStatus", "conditions"): _BY_TYPE,
    **{("Container", field): rule for field, rule in _CONTAINER_FIELDS.items()},
    **{("EphemeralContainer", field): rule for field, rule in _CONTAINER_FIELDS.items()},
    ("PodStatus", "podIPs"): _keyed("ip"),
    ("NodeSpec", "podCIDRs"): MergeRule("set", (), "merge"),
    ("NodeStatus", "addresses"): _BY_TYPE,
    ("ServiceSpec", "ports"): _keyed("port", "protocol"),
    ("ServiceAccount", "secrets"): _BY_NAME,
    ("DeploymentSpec", "strategy"): MergeRule(patch_strategy="retainKeys"),
    ("JobStatus", "conditions"): MergeRule("atomic", (), "merge", "type"),
    ("EndpointSliceEndpoint", "addresses"): MergeRule("set"),
    ("PodFailurePolicyOnExitCodesRequirement", "values"): MergeRule("set"),
    ("UncountedTerminatedPods", "succeeded"): MergeRule("set"),
    ("UncountedTerminatedPods", "failed"): MergeRule("set"),
}


def merge_rule(model: type | None, wire_field: str) -> MergeRule | None:
    """The rule for a field of `model` (looked up along its base classes), or None.

    Kubernetes' convention needs no entry: a `conditions` list whose elements have a `type` is a
    map keyed by it (every kind's status conditions are), so a new kind's conditions merge by type.
    """
    for cls in getattr(model, "__mro__", ()):
        rule = MERGE_RULES.get((cls.__name__, wire_field))
        if rule is not None:
            return rule
    field = fields_of(model).get(wire_field) if wire_field == "conditions" and model is not None else None
    if field is not None and field.shape.kind == "array":
        element = element_model(model, wire_field)
        if element is not None and "type" in fields_of(element):
            return _BY_TYPE
    return None


# --- value types -------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """The type of a field's value.

    `kind` is `object` (a model: `model`), `array` or `map` (of `element`, map keys being
    strings), or a scalar: `string`, `integer` (`format` int32 or int64 when fixed),
    `boolean`, `number`, `int-or-string`, `quantity`, or `any`.
    """

    kind: str
    model: type | None = None
    element: Shape | None = None
    format: str | None = None


_SCALARS: dict[Any, Shape] = {
    str: Shape("string"), bool: Shape("boolean"), int: Shape("integer"), float: Shape("number"),
}


def shape_of(annotation: Any) -> Shape:
    """The Shape of a pydantic field annotation (Optional is looked through)."""
    if annotation is meta.Int32 or annotation == meta.Int32:
        return Shape("integer", format="int32")
    if annotation is meta.Int64 or annotation == meta.Int64:
        return Shape("integer", format="int64")
    if annotation == meta.IntOrString:
        return Shape("int-or-string")
    if annotation == meta.Quantity:
        return Shape("quantity")
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [member for member in typing.get_args(annotation) if member is not type(None)]
        return shape_of(members[0]) if len(members) == 1 else Shape("any")
    if origin is typing.Annotated:
        return shape_of(typing.get_args(annotation)[0])
    if origin is list:
        return Shape("array", element=shape_of(typing.get_args(annotation)[0]))
    if origin is dict:
        return Shape("map", element=shape_of(typing.get_args(annotation)[1]))
    if origin is typing.Literal:
        return Shape("string")
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return Shape("object", model=annotation)
    return _SCALARS.get(annotation, Shape("any"))


@dataclass(frozen=True)
class Field:
    """One field of a model on the wire."""

    name: str
    shape: Shape
    required: bool
    description: str | None


@functools.cache
def fields_of(model: type) -> dict[str, Field]:
    """The wire fields of a model, by wire name, in declaration order."""
    found = {}
    for attribute, info in model.model_fields.items():  # type: ignore[attr-defined]
        name = info.alias or attribute
        annotation = info.annotation
        if info.metadata:  # pydantic keeps a bare `Annotated` field's metadata apart from its type
            annotation = typing.Annotated[(annotation, *info.metadata)]
        found[name] = Field(name, shape_of(annotation), info.is_required(), info.description)
    return found


def element_model(model: type | None, wire_field: str) -> type | None:
    """The model a field's value (or each element of its list or map) is, if any."""
    if model is None:
        return None
    field = fields_of(model).get(wire_field)
    shape = field.shape if field else None
    while shape is not None and shape.kind in ("array", "map"):
        shape = shape.element
    return shape.model if shape is not None else None


def unknown_fields(model: type, data: Any, path: str = "") -> list[str]:
    """The paths of fields in `data` that `model` does not declare (`spec.foo`,
    `spec.containers[0].imag`), as Kubernetes' strict decoding names them. Keys starting with
    `$` are a strategic merge patch's directives and are not fields."""
    if not isinstance(data, dict):
        return []
    found: list[str] = []
    fields = fields_of(model)
    for key, value in data.items():
        if isinstance(key, str) and key.startswith("$"):
            continue  # a strategic merge patch's directive ($patch, $setElementOrder/...)
        field_path = f"{path}.{key}" if path else str(key)
        field = fields.get(key)
        if field is None:
            found.append(field_path)
        else:
            found += _unknown_in_value(field.shape, value, field_path)
    return found


def _unknown_in_value(shape: Shape, value: Any, path: str) -> list[str]:
    if shape.kind == "object" and shape.model is not None:
        return unknown_fields(shape.model, value, path)
    if shape.kind == "array" and isinstance(value, list) and shape.element is not None:
        return [found for index, item in enumerate(value)
                for found in _unknown_in_value(shape.element, item, f"{path}[{index}]")]
    if shape.kind == "map" and isinstance(value, dict) and shape.element is not None:
        return [found for key, item in value.items()
                for found in _unknown_in_value(shape.element, item, f"{path}[{key}]")]
    return []


def drop_fields(data: Any, paths: list[str], model: type) -> Any:
    """A copy of `data` without the fields `unknown_fields` named (fieldValidation Ignore/Warn)."""
    unknown = set(paths)
    return _drop(data, model, "", unknown)


def _drop(value: Any, model: type | None, path: str, unknown: set[str]) -> Any:
    if not isinstance(value, dict) or model is None:
        return value
    kept = {}
    fields = fields_of(model)
    for key, item in value.items():
        field_path = f"{path}.{key}" if path else str(key)
        if field_path in unknown:
            continue
        field = fields.get(key)
        kept[key] = _drop_in_value(field.shape, item, field_path, unknown) if field else item
    return kept


def _drop_in_value(shape: Shape, value: Any, path: str, unknown: set[str]) -> Any:
    if shape.kind == "object":
        return _drop(value, shape.model, path, unknown)
    if shape.kind == "array" and isinstance(value, list) and shape.element is not None:
        return [_drop_in_value(shape.element, item, f"{path}[{index}]", unknown) for index, item in enumerate(value)]
    if shape.kind == "map" and isinstance(value, dict) and shape.element is not None:
        return {key: _drop_in_value(shape.element, item, f"{path}[{key}]", unknown) for key, item in value.items()}
    return value
