"""`/openapi/v2` in the form the client asks for: JSON, or gnostic's protobuf `Document`.

client-go fetches `/openapi/v2` with `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`
only, and decodes the answer as gnostic's `openapi_v2.Document` message. kubectl needs it for kinds
the OpenAPI v3 documents do not have: it validates such a manifest against v2 before it asks the
REST mapping, which then says `no matches for kind`; without a v2 document the user would read
"failed to download openapi" instead. We publish the same Swagger document as `openapi.py`
writes, converted to gnostic's messages (paths, operations and their parameters, responses,
definitions with their properties and `x-kubernetes-*` extensions, as YAML text in `Any.yaml`
the way gnostic keeps them), encoded by `protobuf.MessageTable` from the field numbers below.
"""

from __future__ import annotations

import functools
import json

from minikube_py.api import errors
from minikube_py.apiserver import openapi, protobuf

JSON = "application/json"
PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
# What client-go asks for; an `@` is not valid in a media type Go parses, so the answer carries
# PROTOBUF (the same document), as kube-apiserver's does.
PROTOBUF_ACCEPTED = (PROTOBUF, "application/com.github.proto-openapi.spec.v2@v1.0+protobuf")


# Gnostic's openapi_v2 messages (github.com/google/gnostic openapiv2/OpenAPIv2.proto): the field
# numbers of the parts of a Swagger document we publish, in protobuf.MessageTable's format.
def _message(*fields: tuple) -> dict:
    return {"fields": [[name, number, label, type_name, None] for name, number, label, type_name in fields]}


_O, _R = "optional", "repeated"
GNOSTIC = "openapi.v2"
GNOSTIC_MESSAGES = {f"{GNOSTIC}.{name}": message for name, message in {
    "Document": _message(("swagger", 1, _O, "string"), ("info", 2, _O, f"{GNOSTIC}.Info"),
                         ("paths", 8, _O, f"{GNOSTIC}.Paths"), ("definitions", 9, _O, f"{GNOSTIC}.Definitions"),
                         ("vendor_extension", 16, _R, f"{GNOSTIC}.NamedAny")),
    "Info": _message(("title", 1, _O, "string"), ("version", 2, _O, "string"), ("description", 3, _O, "string")),
    "Paths": _message(("path", 2, _R, f"{GNOSTIC}.NamedPathItem")),
    "NamedPathItem": _message(("name", 1, _O, "string"), ("value", 2, _O, f"{GNOSTIC}.PathItem")),
    "PathItem": _message(("get", 2, _O, f"{GNOSTIC}.Operation"), ("put", 3, _O, f"{GNOSTIC}.Operation"),
                         ("post", 4, _O, f"{GNOSTIC}.Operation"), ("delete", 5, _O, f"{GNOSTIC}.Operation"),
                         ("patch", 8, _O, f"{GNOSTIC}.Operation"),
                         ("parameters", 9, _R, f"{GNOSTIC}.ParametersItem")),
    "Operation": _message(("tags", 1, _R, "string"), ("description", 3, _O, "string"),
                          ("operation_id", 5, _O, "string"), ("produces", 6, _R, "string"),
                          ("consumes", 7, _R, "string"), ("parameters", 8, _R, f"{GNOSTIC}.ParametersItem"),
                          ("responses", 9, _O, f"{GNOSTIC}.Responses"),
                          ("vendor_extension", 13, _R, f"{GNOSTIC}.NamedAny")),
    "ParametersItem": _message(("parameter", 1, _O, f"{GNOSTIC}.Parameter")),
    "Parameter": _message(("body_parameter", 1, _O, f"{GNOSTIC}.BodyParameter"),
                          ("non_body_parameter", 2, _O, f"{GNOSTIC}.NonBodyParameter")),
    "BodyParameter": _message(("description", 1, _O, "string"), ("name", 2, _O, "string"), ("in", 3, _O, "string"),
                              ("required", 4, _O, "bool"), ("schema", 5, _O, f"{GNOSTIC}.Schema")),
    "NonBodyParameter": _message(("query_parameter_sub_schema", 3, _O, f"{GNOSTIC}.QueryParameterSubSchema"),
                                 ("path_parameter_sub_schema", 4, _O, f"{GNOSTIC}.PathParameterSubSchema")),
    "QueryParameterSubSchema": _message(("required", 1, _O, "bool"), ("in", 2, _O, "string"),
                                        ("description", 3, _O, "string"), ("name", 4, _O, "string"),
                                        ("type", 6, _O, "string"), ("unique_items", 20, _O, "bool")),
    "PathParameterSubSchema": _message(("required", 1, _O, "bool"), ("in", 2, _O, "string"),
                                       ("description", 3, _O, "string"), ("name", 4, _O, "string"),
                                       ("type", 5, _O, "string"), ("unique_items", 19, _O, "bool")),
    "Responses": _message(("response_code", 1, _R, f"{GNOSTIC}.NamedResponseValue")),
    "NamedResponseValue": _message(("name", 1, _O, "string"), ("value", 2, _O, f"{GNOSTIC}.ResponseValue")),
    "ResponseValue": _message(("response", 1, _O, f"{GNOSTIC}.Response")),
    "Response": _message(("description", 1, _O, "string"), ("schema", 2, _O, f"{GNOSTIC}.SchemaItem")),
    "SchemaItem": _message(("schema", 1, _O, f"{GNOSTIC}.Schema")),
    "Definitions": _message(("additional_properties", 1, _R, f"{GNOSTIC}.NamedSchema")),
    "NamedSchema": _message(("name", 1, _O, "string"), ("value", 2, _O, f"{GNOSTIC}.Schema")),
    "Schema": _message(("_ref", 1, _O, "string"), ("format", 2, _O, "string"), ("description", 4, _O, "string"),
                       ("required", 19, _R, "string"),
                       ("additional_properties", 21, _O, f"{GNOSTIC}.AdditionalPropertiesItem"),
                       ("type", 22, _O, f"{GNOSTIC}.TypeItem"), ("items", 23, _O, f"{GNOSTIC}.ItemsItem"),
                       ("all_of", 24, _R, f"{GNOSTIC}.Schema"), ("properties", 25, _O, f"{GNOSTIC}.Properties"),
                       ("vendor_extension", 31, _R, f"{GNOSTIC}.NamedAny")),
    "Properties": _message(("additional_properties", 1, _R, f"{GNOSTIC}.NamedSchema")),
    "AdditionalPropertiesItem": _message(("schema", 1, _O, f"{GNOSTIC}.Schema"), ("boolean", 2, _O, "bool")),
    "ItemsItem": _message(("schema", 1, _R, f"{GNOSTIC}.Schema")),
    "TypeItem": _message(("value", 1, _R, "string")),
    "NamedAny": _message(("name", 1, _O, "string"), ("value", 2, _O, f"{GNOSTIC}.Any")),
    "Any": _message(("yaml", 2, _O, "string")),
}.items()}


def _extensions(document: dict) -> list[dict]:
    return [{"name": key, "value": {"yaml": json.dumps(value)}} for key, value in document.items()
            if key.startswith("x-")]


def _schema(schema: dict) -> dict:
    """A Swagger schema in gnostic's Schema message shape."""
    result: dict = {"vendor_extension": _extensions(schema)}
    for key in ("format", "description", "required"):
        if key in schema:
            result[key] = schema[key]
    if "$ref" in schema:
        result["_ref"] = schema["$ref"]
    if "type" in schema:
        result["type"] = {"value": [schema["type"]]}
    if "items" in schema:
        result["items"] = {"schema": [_schema(schema["items"])]}
    if "additionalProperties" in schema:
        result["additional_properties"] = {"schema": _schema(schema["additionalProperties"])}
    if "properties" in schema:
        result["properties"] = {"additional_properties": [{"name": name, "value": _schema(value)}
                                                          for name, value in schema["properties"].items()]}
    return result


def _parameter(parameter: dict) -> dict:
    if parameter["in"] == "body":
        return {"parameter": {"body_parameter": {"name": parameter["name"], "in": "body", "required": True,
                                                 "schema": _schema(parameter["schema"])}}}
    kind = "path_parameter_sub_schema" if parameter["in"] == "path" else "query_parameter_sub_schema"
    fields = {key: parameter[key] for key in ("required", "in", "description", "name", "type") if key in parameter}
    return {"parameter": {"non_body_parameter": {kind: {**fields, "unique_items": parameter.get("uniqueItems", False)}}}}


def _operation(operation: dict) -> dict:
    responses = [{"name": code, "value": {"response": {"description": response["description"],
                                                       **({"schema": {"schema": _schema(response["schema"])}}
                                                          if "schema" in response else {})}}}
                 for code, response in operation["responses"].items()]
    return {"tags": operation.get("tags", []), "description": operation.get("description", ""),
            "operation_id": operation.get("operationId", ""), "produces": operation.get("produces", []),
            "consumes": operation.get("consumes", []),
            "parameters": [_parameter(parameter) for parameter in operation.get("parameters", [])],
            "responses": {"response_code": responses}, "vendor_extension": _extensions(operation)}


def gnostic_document(document: dict) -> dict:
    """A Swagger 2.0 document (as openapi.v2_document writes it) in gnostic's Document shape."""
    paths = []
    for path, item in document["paths"].items():
        value = {verb: _operation(operation) for verb, operation in item.items() if verb != "parameters"}
        value["parameters"] = [_parameter(parameter) for parameter in item.get("parameters", [])]
        paths.append({"name": path, "value": value})
    return {"swagger": document["swagger"], "info": document["info"], "paths": {"path": paths},
            "definitions": {"additional_properties": [{"name": name, "value": _schema(schema)}
                                                      for name, schema in document["definitions"].items()]}}


@functools.cache
def v2_protobuf() -> bytes:
    messages = protobuf.MessageTable(GNOSTIC_MESSAGES)
    return protobuf.to_message(messages, f"{GNOSTIC}.Document",
                               gnostic_document(openapi.v2_document())).SerializeToString()


@functools.cache
def v2_json() -> bytes:
    return json.dumps(openapi.v2_document(), separators=(",", ":")).encode()


def negotiate_v2(accept: str | None) -> tuple[str, bytes]:
    """(content type, body) of `/openapi/v2` for an Accept header; NotAcceptable otherwise."""
    for alternative in (accept or JSON).split(","):
        media_type = alternative.split(";")[0].strip().lower()
        if media_type in (JSON, "application/*", "*/*"):
            return JSON, v2_json()
        if media_type in PROTOBUF_ACCEPTED:
            return PROTOBUF, v2_protobuf()
    raise errors.NotAcceptable(f"/openapi/v2 is served as {JSON} or {PROTOBUF}; the request accepts only {accept}")
