"""Version conversion at the API's edge: a request at another version than the storage one.

A resource may be served at several versions (`api.ResourceInfo.versions`: HorizontalPodAutoscaler
at autoscaling/v2, where it is stored, and autoscaling/v1). As in kube-apiserver, the Registry
and the store only ever see the storage version: a body sent to another version's URL is
converted on the way in (`body_to_storage`), every answer on the way out (`answer_in`), and a
patch is applied to the object as the request's version shows it (the Registry's `version`
argument). A request at the storage version goes through unchanged.
"""

from __future__ import annotations

from typing import Any

from minikube_py import api
from minikube_py.api import errors


def body_to_storage(info: api.ResourceInfo, served: api.ServedVersion, body: Any) -> Any:
    """A request body of the served version as the storage version. A body naming another
    version than the URL's is refused, as kube-apiserver's decoder refuses it."""
    if served.api_version == info.api_version or not isinstance(body, dict):
        return body
    api_version = body.get("apiVersion")
    if api_version not in (None, "", served.api_version):
        raise errors.BadRequest(f"the API version in the data ({api_version}) does not match the expected "
                                f"API version ({served.api_version})")
    return served.to_storage({**body, "apiVersion": served.api_version})


def answer_in(info: api.ResourceInfo, served: api.ServedVersion, document: Any) -> Any:
    """An answer as the served version: an object of the resource, a list of them or a Table
    holding whole objects; anything else (a Status, a Scale, object metadata) as it is."""
    if served.api_version == info.api_version or not isinstance(document, dict):
        return document
    kind = document.get("kind")
    if kind == info.kind and document.get("apiVersion") == info.api_version:
        return served.from_storage(document)
    if kind == info.list_kind and isinstance(document.get("items"), list):
        return {**document, "apiVersion": served.api_version,
                "items": [answer_in(info, served, item) for item in document["items"]]}
    if kind == "Table" and isinstance(document.get("rows"), list):
        return {**document, "rows": [{**row, "object": answer_in(info, served, row["object"])}
                                     if isinstance(row, dict) and "object" in row else row
                                     for row in document["rows"]]}
    return document


def watch_event_in(info: api.ResourceInfo, served: api.ServedVersion, event: dict) -> dict:
    """A watch event with its object as the served version (ERROR and BOOKMARK events as they are)."""
    if served.api_version == info.api_version or event.get("type") not in ("ADDED", "MODIFIED", "DELETED"):
        return event
    return {**event, "object": answer_in(info, served, event.get("object"))}
