"""Validation of the `apps/v1` kinds that carry their own rules: ControllerRevision.

Follows k/k `pkg/apis/apps/validation/validation.go` (ValidateControllerRevision and its
update) with the API server's wording. `api.resources` attaches these functions to the kinds.
"""

from __future__ import annotations

from minikube_py.api.apps import ControllerRevision
from minikube_py.api.names import dns1123_subdomain_errors
from minikube_py.api.validation import Problems, validate_metadata


def default_namespace(obj: ControllerRevision) -> None:
    if not obj.metadata.namespace:
        obj.metadata.namespace = "default"


def validate_controller_revision(revision: ControllerRevision) -> list[tuple[str, str]]:
    problems = Problems()
    validate_metadata(problems, revision.metadata, True, dns1123_subdomain_errors)
    if revision.data is None:
        problems.required("data", "data is mandatory")
    problems.non_negative("revision", revision.revision)
    return problems.items


def validate_controller_revision_update(new: ControllerRevision, old: ControllerRevision) -> list[tuple[str, str]]:
    """Only `revision` (and metadata) may change: the snapshot itself is immutable."""
    problems = Problems()
    if new.data != old.data:
        problems.invalid("data", new.data, "field is immutable")
    return problems.items
