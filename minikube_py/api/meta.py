"""Object metadata and the pieces every Kubernetes kind shares.

Every model in `minikube_py.api` derives from `WireModel`: Python attributes are snake_case,
the wire (JSON, YAML, the store) is Kubernetes' camelCase, and unknown fields are rejected so a
typo in a manifest is reported instead of silently ignored. This module also holds the types
several kinds reuse: `ObjectMeta`, `OwnerReference`, `LabelSelector`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, PlainSerializer
from pydantic_core import PydanticCustomError

# Words Kubernetes writes in capitals inside camelCase names (`podIP`, `imageID`, `podCIDR`).
_UPPERCASE_WORDS = {"ip": "IP", "ips": "IPs", "id": "ID", "uuid": "UUID", "cidr": "CIDR", "cidrs": "CIDRs"}


def wire_name(attribute: str) -> str:
    """The Kubernetes wire name of a snake_case attribute: `pod_ip` -> `podIP`."""
    first, *rest = attribute.split("_")
    return first + "".join(_UPPERCASE_WORDS.get(word, word.capitalize()) for word in rest)


class WireModel(BaseModel):
    """Base of every API model: camelCase aliases on the wire, unknown fields are errors."""

    model_config = ConfigDict(
        alias_generator=wire_name,
        populate_by_name=True,
        extra="forbid",
        defer_build=True,
        strict=True,  # like Kubernetes: `replicas: "3"` is an error, not silently an int
    )

    def to_dict(self) -> dict[str, Any]:
        """The wire form: camelCase keys, None fields dropped, JSON-compatible values."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _fixed_width(bits: int, low: int, high: int) -> AfterValidator:
    """A check that an integer fits Kubernetes' Go field type (`int32`, `int64`).

    Python integers have no size; Go's JSON decoder rejects a number its field cannot hold
    (`cannot unmarshal number 9223372036854775808 into ... of type int32`), so we do too.
    """

    def check(value: int) -> int:
        if not low <= value <= high:
            raise PydanticCustomError(
                f"int{bits}_range",
                f"cannot unmarshal number into a field of type int{bits} (must be between {low} and {high}, inclusive)",
            )
        return value

    return AfterValidator(check)


Int32 = Annotated[int, _fixed_width(32, INT32_MIN, INT32_MAX)]
"""An `int32` field of a Kubernetes type: replicas, ports, probe timings, exit codes."""
Int64 = Annotated[int, _fixed_width(64, INT64_MIN, INT64_MAX)]
"""An `int64` field of a Kubernetes type: grace periods, deadlines, user ids, generation."""


def _int_or_string(value: Any) -> int | str:
    # bool is an int subclass in Python but never a valid int-or-string on the wire.
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise PydanticCustomError("int_or_string", "must be an integer or a string")
    if isinstance(value, int) and not INT32_MIN <= value <= INT32_MAX:
        # intstr.IntOrString holds its number as an int32.
        raise PydanticCustomError(
            "int32_range",
            f"cannot unmarshal number into a field of type int32 (must be between {INT32_MIN} and {INT32_MAX}, inclusive)",
        )
    return value


IntOrString = Annotated[int | str, BeforeValidator(_int_or_string)]
"""Kubernetes' `intstr.IntOrString`: `maxSurge: 1` or `maxSurge: "25%"`, port 8080 or "http"."""


def _quantity_text(value: Any) -> str:
    # Manifests often write `cpu: 1` or `memory: 0.5`; Kubernetes accepts those and stores strings.
    if isinstance(value, bool):
        raise PydanticCustomError("quantity_type", "must be a quantity string such as \"500m\" or \"64Mi\"")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if not value.is_integer() else str(int(value))
    if isinstance(value, str):
        return value
    raise PydanticCustomError("quantity_type", "must be a quantity string such as \"500m\" or \"64Mi\"")


Quantity = Annotated[str, BeforeValidator(_quantity_text), PlainSerializer(str)]
"""A resource quantity, kept as its text (`"500m"`, `"64Mi"`); parse with `api.quantity`."""

ResourceList = dict[str, Quantity]


class WithConditions:
    """Mixin for status types with a `conditions` list: look one up by type."""

    conditions: Any

    def condition(self, condition_type: str) -> Any:
        """The condition of that type (`Ready`, `Available`, `Progressing`, ...), or None."""
        for condition in self.conditions or []:
            if condition.type == condition_type:
                return condition
        return None


class OwnerReference(WireModel):
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ManagedFieldsEntry(WireModel):
    """Who set which fields (`fieldsV1`), by which operation (Apply or Update), and when;
    kept by the API server on every write (apiserver/fieldmanager.py)."""

    manager: str | None = None
    operation: Literal["Apply", "Update"] | None = None
    api_version: str | None = None
    time: str | None = None
    fields_type: Literal["FieldsV1"] | None = None
    fields_v1: dict[str, Any] | None = None
    subresource: str | None = None


class ObjectMeta(WireModel):
    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: Int64 | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    deletion_grace_period_seconds: Int64 | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    owner_references: list[OwnerReference] | None = None
    finalizers: list[str] | None = None
    managed_fields: list[ManagedFieldsEntry] | None = None

    def controller_reference(self) -> OwnerReference | None:
        """The owner reference with `controller: true`, if any."""
        for reference in self.owner_references or []:
            if reference.controller:
                return reference
        return None


class LabelSelectorRequirement(WireModel):
    key: str
    operator: str
    values: list[str] | None = None


class LabelSelector(WireModel):
    match_labels: dict[str, str] | None = None
    match_expressions: list[LabelSelectorRequirement] | None = None


class ObjectReference(WireModel):
    """Points at another object, as in an Event's `involvedObject`."""

    api_version: str | None = None
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    field_path: str | None = None
