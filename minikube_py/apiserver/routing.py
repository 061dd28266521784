"""Routing: from a request's path, query and Accept header to what it asks for.

`parse_route` turns `/api/v1/namespaces/{ns}/pods/{name}/status`-shaped paths into a `Route`
(resource, namespace, name, subresource), or into the discovery document the path names; the
query helpers read Kubernetes' query parameters with their exact spellings, and `wants_table`
does the one piece of content negotiation we need (kubectl's `as=Table` Accept header).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from minikube_py import api
from minikube_py.api import errors, printers
from minikube_py.apiserver import openapi
from minikube_py.apiserver.discovery import REVIEW_RESOURCES, api_group_list, api_resource_list, api_versions, group_versions, version_info
from minikube_py.apiserver.resource_metrics import GROUP as METRICS_GROUP
from minikube_py.apiserver.resource_metrics import VERSION as METRICS_VERSION
from minikube_py.apiserver.resource_metrics import MetricsRoute, parse_metrics_route

CUSTOM_RESOURCE_DEFINITIONS = ["apis", "apiextensions.k8s.io", "v1", "customresourcedefinitions"]
TABLE_MEDIA_PARAMETERS = {"as": "Table", "v": "v1", "g": "meta.k8s.io"}


def wants_table(accept: str | None) -> bool:
    """Whether the first alternative of an Accept header that we can serve is a v1 Table.

    kubectl sends `application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;
    v=v1beta1;g=meta.k8s.io,application/json`; we serve the v1 Table and plain JSON, and skip
    what we do not (v1beta1 Tables, protobuf). Without any servable alternative: plain JSON.
    """
    for alternative in (accept or "").split(","):
        media_type, *parameter_texts = [piece.strip() for piece in alternative.split(";")]
        parameters = dict(text.partition("=")[::2] for text in parameter_texts)
        parameters.pop("q", None)
        if media_type not in ("application/json", "application/*", "*/*"):
            continue
        if not parameters.get("as"):
            return False
        if {key: parameters.get(key) for key in TABLE_MEDIA_PARAMETERS} == TABLE_MEDIA_PARAMETERS:
            return True
    return False


def wants_protobuf(accept: str | None) -> bool:
    """Whether the first alternative of an Accept header that we can serve is Kubernetes'
    protobuf (`application/vnd.kubernetes.protobuf,application/json`, as kubectl's generators
    and client-go's typed clients send). An alternative with `as=` (a Table, a partial object)
    is not a plain object; JSON and wildcards mean JSON."""
    for alternative in (accept or "").split(","):
        media_type, *parameter_texts = [piece.strip() for piece in alternative.split(";")]
        parameters = {name for name, _, _ in (text.partition("=") for text in parameter_texts)} - {"q"}
        if media_type == "application/vnd.kubernetes.protobuf" and not parameters:
            return True
        if media_type in ("application/json", "application/*", "*/*") and "as" not in parameters:
            return False
    return False


def include_object_policy(query: dict) -> str:
    policy = text(query, "includeObject") or printers.INCLUDE_METADATA
    if policy not in printers.INCLUDE_POLICIES:
        raise errors.BadRequest(f"query parameter includeObject={policy!r}: must be one of "
                                f"{', '.join(printers.INCLUDE_POLICIES)}")
    return policy



@dataclass
class OpenApiV2:
    """`/openapi/v2`: one document served as JSON or, as kubectl asks for it, as protobuf."""


@dataclass
class Route:
    info: Any
    namespace: str | None
    name: str | None
    subresource: str | None
    # The group/version of the URL; "" means the resource's storage version.
    api_version: str = ""

    @property
    def served(self) -> api.ServedVersion:
        """The version this request reads and writes the resource in (api.ServedVersion)."""
        return self.info.version(self.api_version or self.info.api_version)


def not_found(path: str) -> errors.NotFound:
    return errors.NotFound(f"the server could not find the requested resource (path {path})")


def parse_route(path: str) -> Route | MetricsRoute | OpenApiV2 | dict:
    """A resource route, or the discovery document the path names. Raises NotFound."""
    # Segments are percent-decoded after splitting, as Kubernetes does: `x%3Fy` names `x?y`.
    parts = [unquote(part) for part in path.split("/") if part]
    if parts == ["version"]:
        return version_info()
    if parts == ["api"]:
        return api_versions()
    if parts == ["apis"]:
        return api_group_list()
    if parts == ["openapi", "v2"]:
        return OpenApiV2()
    if parts == CUSTOM_RESOURCE_DEFINITIONS:
        # kubectl lists CRDs to decide how to validate a kind it finds in no OpenAPI document;
        # there are none (the group is not served), and saying so lets it answer `no matches for kind`.
        return {"kind": "CustomResourceDefinitionList", "apiVersion": "apiextensions.k8s.io/v1",
                "metadata": {}, "items": []}
    if parts[:2] == ["openapi", "v3"]:
        if len(parts) == 2:
            return openapi.v3_index()
        group_version = "v1" if parts[2:] == ["api", "v1"] else "/".join(parts[3:])
        if parts[2] in ("api", "apis") and group_version in group_versions():
            return openapi.v3_document(group_version)
        raise not_found(path)
    if parts[:3] == ["apis", METRICS_GROUP, METRICS_VERSION]:
        return parse_metrics_route(parts[3:], path)
    if parts[:2] == ["api", "v1"]:
        group_version, rest = "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group_version, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        raise not_found(path)
    if not rest and group_version in REVIEW_RESOURCES:
        return api_resource_list(group_version)
    if group_version not in group_versions():
        raise not_found(path)
    if not rest:
        return api_resource_list(group_version)
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        contained = api.RESOURCES.get(rest[2])
        if contained is not None and contained.namespaced and _serves(contained, group_version):
            namespace, rest = rest[1], rest[2:]
    info = api.RESOURCES.get(rest[0])
    if info is None or not _serves(info, group_version) or len(rest) > 3:
        raise not_found(path)
    if namespace is not None and not info.namespaced:
        raise not_found(path)
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else None
    return Route(info, namespace, name, subresource, group_version)


def _serves(info: api.ResourceInfo, group_version: str) -> bool:
    return any(served.api_version == group_version for served in info.versions)


def flag(query: dict, key: str) -> bool:
    return query.get(key, [""])[-1].lower() in ("true", "1")


def text(query: dict, key: str) -> str | None:
    values = query.get(key)
    return values[-1] if values else None


INT64_MAX = 2**63 - 1


def integer(query: dict, key: str, minimum: int = -INT64_MAX - 1, maximum: int = INT64_MAX) -> int | None:
    """An integer query parameter within [minimum, maximum] (Kubernetes' int64 by default)."""
    value = text(query, key)
    if value in (None, ""):
        return None
    if len(value) > 20:
        raise errors.BadRequest(f"query parameter {key}={value[:24]!r}...: must be an integer between "
                                f"{minimum} and {maximum}")
    try:
        number = int(value)
    except ValueError:
        raise errors.BadRequest(f"query parameter {key}={value!r}: must be an integer") from None
    if not minimum <= number <= maximum:
        raise errors.BadRequest(f"query parameter {key}={value}: must be an integer between {minimum} and {maximum}")
    return number
