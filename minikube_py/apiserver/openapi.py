"""OpenAPI documents of the API, generated from our models: `/openapi/v2` and `/openapi/v3`.

kubectl reads these to explain fields (`kubectl explain pod.spec.containers`), to learn that the
server validates fields itself (the `fieldValidation` parameter of each kind's PATCH), to compute
strategic merge patches (`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`) and, for
kinds it does not find, to validate on the client before the REST mapping says `no matches for
kind`. Every schema comes from the pydantic models through `api.schema` (wire names, types,
merge rules), and the kinds from `api.RESOURCES`, so a kind registered there is published here
with no work of its own. Definition names are Kubernetes' (`io.k8s.api.core.v1.Pod`), because
tools look some of them up by name.

`/openapi/v2` is one Swagger 2.0 document (kubectl fetches it as protobuf, see
`openapi_protobuf.py`); `/openapi/v3` is an index of one OpenAPI 3.0 document per group
version, each at a URL carrying a hash of its content as kube-apiserver's do, so clients may
cache them.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from typing import Any

from minikube_py import api
from minikube_py.api import schema
from minikube_py.api.schema import Shape

KUBERNETES_MINOR = "32"
META_PACKAGE = "io.k8s.apimachinery.pkg.apis.meta.v1"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
# Types that are not models of ours but have a definition of their own, as in Kubernetes.
SPECIAL_DEFINITIONS = {
    QUANTITY: {"description": "A fixed-point number with a suffix (\"500m\", \"64Mi\", \"2\"): an amount of "
                              "a resource such as CPU or memory.", "type": "string"},
    INT_OR_STRING: {"description": "Either an integer or a string (a port number or name, a count or a "
                                   "percentage such as \"25%\").", "type": "string", "format": "int-or-string"},
}
LIST_META = f"{META_PACKAGE}.ListMeta"
LIST_META_SCHEMA = {
    "description": "Metadata of a list: its resourceVersion and the continue token of a paged list.",
    "type": "object",
    "properties": {"resourceVersion": {"type": "string"}, "continue": {"type": "string"},
                   "remainingItemCount": {"type": "integer", "format": "int64"}},
}


def package_of_group(group: str, version: str = "v1") -> str:
    """`io.k8s.api.apps.v1` for `apps`, `io.k8s.api.core.v1` for the core group."""
    return f"io.k8s.api.{group.split('.')[0] if group else 'core'}.{version}"


@functools.cache
def _module_packages() -> dict[str, str]:
    """Each model module's package: that of the first kind it defines (meta's is apimachinery's)."""
    packages = {api.meta.__name__: META_PACKAGE}
    for _, served in _served_resources(None):
        group, _, version = served.api_version.rpartition("/")
        packages.setdefault(served.model.__module__, package_of_group(group, version))
    return packages


def definition_name(model: type) -> str:
    """Kubernetes' definition name of a model: `io.k8s.api.core.v1.PodSpec`."""
    for _, served in _served_resources(None):
        if served.model is model:
            group, _, version = served.api_version.rpartition("/")
            return f"{package_of_group(group, version)}.{model.__name__}"
    package = _module_packages().get(model.__module__, package_of_group(""))
    return f"{package}.{model.__name__}"


def _description(model: type) -> str | None:
    text = model.__dict__.get("__doc__")
    return inspect.cleandoc(text).split("\n\n")[0].replace("\n", " ") if text else None


class _SchemaWriter:
    """Writes the definitions reachable from some models in one dialect (v2 or v3)."""

    def __init__(self, version: int):
        self.version = version
        self.prefix = "#/definitions/" if version == 2 else "#/components/schemas/"
        self.definitions: dict[str, dict] = {}

    def reference(self, name: str) -> dict:
        return {"$ref": self.prefix + name}

    def object_field(self, name: str) -> dict:
        # OpenAPI 3.0 ignores siblings of a $ref; Kubernetes' v3 documents wrap it in allOf.
        return {"allOf": [self.reference(name)]} if self.version == 3 else self.reference(name)

    def add_model(self, model: type) -> str:
        name = definition_name(model)
        if name in self.definitions:
            return name
        self.definitions[name] = {}  # placeholder: models refer to themselves (none do yet, but cheaply safe)
        properties: dict[str, dict] = {}
        required = []
        for field in schema.fields_of(model).values():
            properties[field.name] = self.field_schema(model, field)
            if field.required:
                required.append(field.name)
        definition: dict[str, Any] = {"type": "object", "properties": properties}
        description = _description(model)
        if description:
            definition["description"] = description
        if required:
            definition["required"] = required
        kind = _kind_of(model)
        if kind is not None:
            definition["x-kubernetes-group-version-kind"] = [kind]
        self.definitions[name] = definition
        return name

    def field_schema(self, model: type, field: schema.Field) -> dict:
        value = self.value_schema(field.shape)
        rule = schema.merge_rule(model, field.name)
        if rule is not None:
            if rule.list_type:
                value["x-kubernetes-list-type"] = rule.list_type
            if rule.list_map_keys:
                value["x-kubernetes-list-map-keys"] = list(rule.list_map_keys)
            if rule.patch_strategy:
                value["x-kubernetes-patch-strategy"] = rule.patch_strategy
            if rule.patch_merge_key:
                value["x-kubernetes-patch-merge-key"] = rule.patch_merge_key
        description = field.description or (_description(field.shape.model) if field.shape.model else None)
        if description:
            value["description"] = description
        return value

    def value_schema(self, shape: Shape) -> dict:
        if shape.kind == "object" and shape.model is not None:
            return self.object_field(self.add_model(shape.model))
        if shape.kind == "array" and shape.element is not None:
            return {"type": "array", "items": self.value_schema(shape.element)}
        if shape.kind == "map" and shape.element is not None:
            return {"type": "object", "additionalProperties": self.value_schema(shape.element)}
        if shape.kind in ("quantity", "int-or-string"):
            name = QUANTITY if shape.kind == "quantity" else INT_OR_STRING
            self.definitions[name] = dict(SPECIAL_DEFINITIONS[name])
            return self.reference(name) if self.version == 2 else self.object_field(name)
        if shape.kind == "any":
            return {}
        return {"type": shape.kind, **({"format": shape.format} if shape.format else {})}

    def add_list(self, info: api.ResourceInfo, served: api.ServedVersion) -> str:
        group, _, version = served.api_version.rpartition("/")
        name = f"{package_of_group(group, version)}.{info.list_kind}"
        self.definitions[LIST_META] = LIST_META_SCHEMA
        self.definitions[name] = {
            "description": f"A list of {info.kind} objects.", "type": "object", "required": ["items"],
            "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                           "metadata": self.object_field(LIST_META),
                           "items": {"type": "array", "items": self.reference(self.add_model(served.model))}},
            "x-kubernetes-group-version-kind": [{"group": group, "kind": info.list_kind, "version": version}],
        }
        return name


def _kind_of(model: type) -> dict | None:
    for info, served in _served_resources(None):
        if served.model is model:
            group, _, version = served.api_version.rpartition("/")
            return {"group": group, "kind": info.kind, "version": version}
    return None


def _base_path(info: api.ResourceInfo, served: api.ServedVersion) -> str:
    base = "/api/v1" if served.api_version == "v1" else f"/apis/{served.api_version}"
    return f"{base}/namespaces/{{namespace}}/{info.plural}" if info.namespaced else f"{base}/{info.plural}"


QUERY_PARAMETERS = {
    "get": ["pretty"],
    "list": ["labelSelector", "fieldSelector", "resourceVersion", "watch", "limit", "continue"],
    "post": ["dryRun", "fieldManager", "fieldValidation", "pretty"],
    "put": ["dryRun", "fieldManager", "fieldValidation", "pretty"],
    "patch": ["dryRun", "fieldManager", "fieldValidation", "force", "pretty"],
    "delete": ["dryRun", "gracePeriodSeconds", "propagationPolicy", "pretty"],
}
VERB_ACTIONS = {"get": "get", "list": "list", "post": "post", "put": "put", "patch": "patch", "delete": "delete"}
PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml"]


def _operations(info: api.ResourceInfo, served: api.ServedVersion, writer: _SchemaWriter) -> dict[str, dict]:
    """The paths of one resource at one version: its collection and its items, with each
    operation's gvk."""
    group, _, version = served.api_version.rpartition("/")
    gvk = {"group": group, "kind": info.kind, "version": version}
    object_ref = writer.reference(writer.add_model(served.model))
    list_ref = writer.reference(writer.add_list(info, served))
    # Unique across versions, as Swagger wants: the storage version keeps the short id.
    operation_suffix = "" if served.api_version == info.api_version else \
        "".join(part.capitalize() for part in served.api_version.replace(".", "/").split("/"))

    def operation(verb: str, summary: str, response: dict, body: bool = False) -> dict:
        parameters = []
        for name in QUERY_PARAMETERS[verb]:
            kind = "boolean" if name == "watch" else "integer" if name in ("limit", "gracePeriodSeconds") else "string"
            parameters.append({"name": name, "in": "query", "uniqueItems": True,
                               **({"type": kind} if writer.version == 2 else {"schema": {"type": kind}})})
        entry: dict[str, Any] = {
            "description": summary, "operationId": f"{verb}{operation_suffix}{info.kind}", "parameters": parameters,
            "x-kubernetes-action": VERB_ACTIONS[verb], "x-kubernetes-group-version-kind": gvk,
            "tags": [served.api_version.replace("/", "_").replace(".", "_")],
        }
        if writer.version == 2:
            entry["responses"] = {"200": {"description": "OK", "schema": response}}
            entry["produces"] = ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"]
            if body:
                entry["parameters"] = [{"name": "body", "in": "body", "required": True,
                                        "schema": {"type": "object"} if verb == "patch" else object_ref},
                                       *parameters]
                entry["consumes"] = PATCH_TYPES if verb == "patch" else ["*/*"]
        else:
            entry["responses"] = {"200": {"description": "OK",
                                          "content": {"application/json": {"schema": response}}}}
            if body:
                types = PATCH_TYPES if verb == "patch" else ["*/*"]
                entry["requestBody"] = {"required": True, "content": {
                    media: {"schema": {"type": "object"} if verb == "patch" else object_ref} for media in types}}
        return entry

    name_parameter = {"name": "name", "in": "path", "required": True, "description": f"name of the {info.kind}",
                      "uniqueItems": True}
    namespace_parameter = {"name": "namespace", "in": "path", "required": True, "uniqueItems": True,
                           "description": "object name and auth scope, such as for teams and projects"}
    for parameter in (name_parameter, namespace_parameter):
        if writer.version == 2:
            parameter["type"] = "string"
        else:
            parameter["schema"] = {"type": "string"}
    shared = [namespace_parameter] if info.namespaced else []
    base = _base_path(info, served)
    return {
        base: {"get": operation("list", f"list or watch objects of kind {info.kind}", list_ref),
               "post": operation("post", f"create a {info.kind}", object_ref, body=True),
               "parameters": shared},
        f"{base}/{{name}}": {
            "get": operation("get", f"read the specified {info.kind}", object_ref),
            "put": operation("put", f"replace the specified {info.kind}", object_ref, body=True),
            "patch": operation("patch", f"partially update the specified {info.kind}", object_ref, body=True),
            "delete": operation("delete", f"delete a {info.kind}", object_ref),
            "parameters": [name_parameter, *shared]},
    }


def _served_resources(group_version: str | None) -> list[tuple[api.ResourceInfo, api.ServedVersion]]:
    """Each resource at each version it is served at (only at `group_version`, when given)."""
    return [(info, served) for info in api.RESOURCES.values() for served in info.versions
            if group_version in (None, served.api_version)]


def _info(title: str) -> dict:
    return {"title": title, "version": f"v1.{KUBERNETES_MINOR}.0"}


@functools.cache
def v2_document() -> dict:
    """The whole API as one Swagger 2.0 document (`/openapi/v2`)."""
    writer = _SchemaWriter(2)
    paths: dict[str, dict] = {}
    for info, served in _served_resources(None):
        paths.update(_operations(info, served, writer))
    return {"swagger": "2.0", "info": _info("minikube-py"), "paths": paths,
            "definitions": dict(sorted(writer.definitions.items())),
            "security": [{"BearerToken": []}],
            "securityDefinitions": {"BearerToken": {"type": "apiKey", "name": "authorization", "in": "header",
                                                    "description": "Bearer Token authentication"}}}


def group_version_path(group_version: str) -> str:
    return "api/v1" if group_version == "v1" else f"apis/{group_version}"


@functools.cache
def v3_document(group_version: str) -> dict:
    """One group version as an OpenAPI 3.0 document (`/openapi/v3/apis/apps/v1`). KeyError
    when the group version is not served."""
    resources = _served_resources(group_version)
    if not resources:
        raise KeyError(group_version)
    writer = _SchemaWriter(3)
    paths: dict[str, dict] = {}
    for info, served in resources:
        paths.update(_operations(info, served, writer))
    return {"openapi": "3.0.0", "info": _info("minikube-py"), "paths": paths,
            "components": {"schemas": dict(sorted(writer.definitions.items())),
                           "securitySchemes": {"BearerToken": {"type": "apiKey", "name": "authorization",
                                                               "in": "header"}}}}


@functools.cache
def v3_document_bytes(group_version: str) -> bytes:
    return json.dumps(v3_document(group_version), separators=(",", ":"), sort_keys=True).encode()


def v3_hash(group_version: str) -> str:
    return hashlib.sha512(v3_document_bytes(group_version)).hexdigest().upper()


def v3_index() -> dict:
    """`/openapi/v3`: where each group version's document is, with the hash of its content."""
    group_versions = sorted({served.api_version for _, served in _served_resources(None)})
    return {"paths": {group_version_path(group_version):
                      {"serverRelativeURL": f"/openapi/v3/{group_version_path(group_version)}"
                                            f"?hash={v3_hash(group_version)}"}
                      for group_version in group_versions}}
