"""From wire dict to checked model: the one door into the API.

`parse_object` checks the apiVersion and kind, parses the dict into its model, applies defaults
(`api.defaults`) and runs the semantic checks (`api.validation`). Shape and type problems that
pydantic finds are translated into Kubernetes' field paths and wording here, so a user sees
`spec.template.spec.containers[0].image: Required value` whichever layer caught it, and every
problem is raised together as one `errors.Invalid`:
`Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0`.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from minikube_py.api import errors
from minikube_py.api.defaults import set_defaults
from minikube_py.api.resources import ResourceInfo, resource_for_kind, unknown_kind_message
from minikube_py.api.validation import show_value, validate_object

# Wire fields whose values are maps: their keys are shown as `labels[app]`, not `labels.app`.
_MAP_FIELDS = {"labels", "annotations", "nodeSelector", "limits", "requests", "capacity", "allocatable", "matchLabels",
               "data", "binaryData", "stringData"}


def field_path(location: tuple[Any, ...]) -> str:
    """`("spec", "containers", 0, "image")` -> `spec.containers[0].image`."""
    text = ""
    previous = None
    for part in location:
        if isinstance(part, int) or previous in _MAP_FIELDS:
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
        previous = part
    return text


# pydantic error types -> what the field must be, for Kubernetes-style type errors.
_EXPECTED_TYPES = {
    "int": "an integer",
    "bool": "a boolean",
    "string": "a string",
    "dict": "an object",
    "model": "an object",
    "model_attributes": "an object",
    "list": "a list",
    "float": "a number",
}


def _pydantic_message(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "missing":
        return "Required value"
    if kind == "extra_forbidden":
        return "field not declared in schema"
    shown = show_value(error.get("input"))
    for family, description in _EXPECTED_TYPES.items():
        if kind in (f"{family}_type", f"{family}_parsing") or kind.startswith(f"{family}_from_"):
            return f"Invalid value: {shown}: must be {description}"
    message = error.get("msg", "").removeprefix("Value error, ")
    return f"Invalid value: {shown}: {message}"


def errors_from_pydantic(exc: ValidationError) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for error in exc.errors(include_url=False):
        pair = (field_path(tuple(error["loc"])), _pydantic_message(error))
        if pair not in found:
            found.append(pair)
    return found


def invalid_error(info: ResourceInfo, name: str, problems: list[tuple[str, str]]) -> errors.Invalid:
    """The API server's Invalid error: `Deployment.apps "web" is invalid: spec.replicas: ...`."""
    rendered = [f"{path}: {message}" if path else message for path, message in problems]
    summary = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    details = {
        "name": name,
        **({"group": info.group} if info.group else {}),
        "kind": info.kind,  # kubectl prints `The Pod "x" is invalid` from this
        "causes": [{"reason": "FieldValueInvalid", "message": message, "field": path} for path, message in problems],
    }
    return errors.Invalid(f'{info.qualified_kind} "{name}" is invalid: {summary}', problems, details)


def _display_name(data: dict[str, Any]) -> str:
    metadata = data.get("metadata")
    if isinstance(metadata, dict):
        for key in ("name", "generateName"):
            value = metadata.get(key)
            if isinstance(value, str) and value:
                return value
    return ""


def resource_of(data: Any) -> ResourceInfo:
    """The registered resource for a wire dict's apiVersion and kind; BadRequest otherwise."""
    if not isinstance(data, dict):
        raise errors.BadRequest(f"an API object must be a mapping with apiVersion and kind, got {type(data).__name__}")
    api_version, kind = data.get("apiVersion"), data.get("kind")
    missing = [field for field, value in (("apiVersion", api_version), ("kind", kind)) if not value]
    if missing:
        quoted = " and ".join(f"'{field}'" for field in missing)
        raise errors.BadRequest(f"Object {quoted} {'is' if len(missing) == 1 else 'are'} missing in the object")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        raise errors.BadRequest(unknown_kind_message(api_version, kind))
    try:
        return resource_for_kind(api_version, kind)
    except KeyError:
        raise errors.BadRequest(unknown_kind_message(api_version, kind)) from None


def parse_object(data: dict[str, Any]) -> Any:
    """Wire dict -> defaulted, validated model.

    Raises `errors.BadRequest` for an unknown apiVersion/kind and `errors.Invalid` carrying
    every `(path, message)` problem otherwise. An object of another served version of its
    resource (an autoscaling/v1 HorizontalPodAutoscaler) is converted to the storage version
    first, so the model is always the storage version's.
    """
    info = resource_of(data)
    if data.get("apiVersion") != info.api_version:
        data = info.version(data["apiVersion"]).to_storage(data)
    try:
        obj: Any = info.model.model_validate(data)
    except ValidationError as exc:
        raise invalid_error(info, _display_name(data), errors_from_pydantic(exc)) from None
    set_defaults(obj)
    if info.defaults is not None:
        info.defaults(obj)
    problems = validate_object(obj)
    if info.validate is not None:
        problems += info.validate(obj)
    if problems:
        raise invalid_error(info, obj.metadata.name or obj.metadata.generate_name or "", problems)
    return obj
