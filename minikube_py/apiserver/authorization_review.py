"""Asking the server about yourself: SelfSubjectAccessReview and SelfSubjectReview.

`kubectl auth can-i VERB RESOURCE` creates a `authorization.k8s.io/v1` SelfSubjectAccessReview
and prints `yes` or `no` from its `status.allowed`; `kubectl auth whoami` creates an
`authentication.k8s.io/v1` SelfSubjectReview and prints the user name and groups the server
authenticated. Neither is stored: the answer is computed from the request's user with the same
rules `auth.authorize` enforces (apiserver/auth.py), so "can I" never disagrees with "may I".
"""

from __future__ import annotations

from typing import Any

from minikube_py import api
from minikube_py.api import errors
from minikube_py.apiserver import auth
from minikube_py.apiserver.routing import Route

ACCESS_REVIEW_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SUBJECT_REVIEW_PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
REVIEW_PATHS = (ACCESS_REVIEW_PATH, SUBJECT_REVIEW_PATH)
VERB_METHODS = {"get": "GET", "list": "GET", "watch": "GET", "create": "POST", "update": "PUT", "patch": "PATCH",
                "delete": "DELETE", "deletecollection": "DELETE"}


def _invalid(kind: str, problems: list[tuple[str, str]]) -> errors.Invalid:
    summary = ", ".join(f"{path}: {message}" for path, message in problems)
    return errors.Invalid(f'{kind}.{"authorization.k8s.io"} "" is invalid: {summary}', problems,
                          {"group": "authorization.k8s.io", "kind": kind,
                           "causes": [{"reason": "FieldValueInvalid", "message": message, "field": path}
                                      for path, message in problems]})


def _check_kind(body: Any, kind: str, api_version: str) -> dict:
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise errors.BadRequest(f"the request body must be a {api_version} {kind} object")
    if body.get("kind") not in (None, kind) or body.get("apiVersion") not in (None, api_version):
        raise errors.BadRequest(f"the object's apiVersion/kind {body.get('apiVersion') or '?'}/"
                                f"{body.get('kind') or '?'} does not match this URL, which serves {api_version}/{kind}")
    return body


def _string(attributes: dict, key: str, path: str) -> str:
    value = attributes.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _invalid("SelfSubjectAccessReview", [(f"{path}.{key}", f"Invalid value: {value!r}: must be a string")])
    return value


def access_review(user: auth.User, body: Any, registry) -> dict:
    """POST selfsubjectaccessreviews: the review with `status.allowed` for `user`."""
    body = _check_kind(body, "SelfSubjectAccessReview", "authorization.k8s.io/v1")
    spec = body.get("spec")
    if not isinstance(spec, dict):
        raise _invalid("SelfSubjectAccessReview", [("spec", "Required value: an object with resourceAttributes "
                                                            "or nonResourceAttributes")])
    resource_attributes, path_attributes = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (resource_attributes is None) == (path_attributes is None):
        raise _invalid("SelfSubjectAccessReview", [("spec.resourceAttributes", "Invalid value: exactly one of "
                                                    "nonResourceAttributes or resourceAttributes must be specified")])
    for key, value in (("resourceAttributes", resource_attributes), ("nonResourceAttributes", path_attributes)):
        if value is not None and not isinstance(value, dict):
            raise _invalid("SelfSubjectAccessReview", [(f"spec.{key}", "Invalid value: must be an object")])
    if path_attributes is not None:
        path = _string(path_attributes, "path", "spec.nonResourceAttributes")
        verb = _string(path_attributes, "verb", "spec.nonResourceAttributes")
        first = path.strip("/").split("/")[0]
        allowed = user.is_admin or (verb == "get" and first in auth.PUBLIC_PATHS)
    else:
        allowed = _resource_allowed(user, resource_attributes, registry)
    status: dict[str, Any] = {"allowed": allowed}
    if not allowed:
        status["reason"] = "" if user.is_admin else f'User "{user.name}" has no rule allowing this'
    metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    return {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {**metadata, "creationTimestamp": None}, "spec": spec, "status": status}


def _resource_allowed(user: auth.User, attributes: dict, registry) -> bool:
    path = "spec.resourceAttributes"
    verb = _string(attributes, "verb", path)
    group, resource = _string(attributes, "group", path), _string(attributes, "resource", path)
    subresource, name = _string(attributes, "subresource", path), _string(attributes, "name", path)
    namespace = _string(attributes, "namespace", path)
    if user.is_admin:
        return True  # system:masters may do anything, even with kinds this server does not serve
    info = next((info for info in api.RESOURCES.values()
                 if info.plural == resource and info.api_version.rpartition("/")[0] == group), None)
    method = VERB_METHODS.get(verb)
    if info is None or method is None:
        return False
    named = verb not in ("list", "watch", "deletecollection") and verb != "create"
    route = Route(info, namespace or None, name or None if named else None, subresource or None)
    query = {"watch": ["true"]} if verb == "watch" else {}
    return auth.allowed(user, method, route, query, registry)


def subject_review(user: auth.User, body: Any) -> dict:
    """POST selfsubjectreviews: who the server thinks `user` is."""
    body = _check_kind(body, "SelfSubjectReview", "authentication.k8s.io/v1")
    return {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "status": {"userInfo": {"username": user.name, "groups": list(user.groups)}}}


def review(path: str, user: auth.User, body: Any, registry) -> dict:
    if path == ACCESS_REVIEW_PATH:
        return access_review(user, body, registry)
    return subject_review(user, body)
