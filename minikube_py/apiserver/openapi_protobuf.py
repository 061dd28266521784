"""`/openapi/v2` in the form the client asks for: JSON, or gnostic's protobuf `Document`.

client-go fetches `/openapi/v2` with `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`
only, and decodes the answer as gnostic's `openapi_v2.Document` message.
"""

from __future__ import annotations

import functools
import json

from minikube_py.api import errors
from minikube_py.apiserver import openapi

JSON = "application/json"
PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


@functools.cache
def v2_json() -> bytes:
    return json.dumps(openapi.v2_document(), separators=(",", ":")).encode()


def negotiate_v2(accept: str | None) -> tuple[str, bytes]:
    """(content type, body) of `/openapi/v2` for an Accept header; NotAcceptable otherwise."""
    for alternative in (accept or JSON).split(","):
        media_type = alternative.split(";")[0].strip().lower()
        if media_type in (JSON, "application/*", "*/*"):
            return JSON, v2_json()
    raise errors.NotAcceptable(f"/openapi/v2 is served as {JSON}; the request accepts only {accept}")
