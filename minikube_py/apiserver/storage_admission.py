"""Admission for storage objects: the DefaultStorageClass and StorageObjectInUseProtection plugins.

kube-apiserver's admission chain gives a new PersistentVolumeClaim without a class the default
StorageClass (the one annotated `storageclass.kubernetes.io/is-default-class: "true"`, the newest
if several are), and puts the protection finalizers on every new claim and volume
(`kubernetes.io/pvc-protection`, `kubernetes.io/pv-protection`), so that the protection
controllers can hold a deletion while a pod still uses the claim or a claim the volume.
"""

from __future__ import annotations

from typing import Any

from minikube_py.api.storage import (
    BETA_STORAGE_CLASS_ANNOTATION,
    DEFAULT_CLASS_ANNOTATION,
    PV_PROTECTION_FINALIZER,
    PVC_PROTECTION_FINALIZER,
)


def _add_finalizer(metadata: dict[str, Any], finalizer: str) -> None:
    finalizers = list(metadata.get("finalizers") or [])
    if finalizer not in finalizers:
        finalizers.append(finalizer)
    metadata["finalizers"] = finalizers


def default_storage_class(classes: list[dict[str, Any]]) -> str | None:
    """The default class's name: among those annotated default, the newest (then by name)."""
    defaults = [item for item in classes
                if ((item.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"]
    if not defaults:
        return None
    newest = max(defaults, key=lambda item: (item["metadata"].get("creationTimestamp") or "", item["metadata"]["name"]))
    return str(newest["metadata"]["name"])


def admit_storage(plural: str, body: dict[str, Any], list_classes) -> None:
    """Mutate a create request's body in place; `list_classes()` gives the stored StorageClasses."""
    metadata = body.setdefault("metadata", {})
    if plural == "persistentvolumes":
        _add_finalizer(metadata, PV_PROTECTION_FINALIZER)
    elif plural == "persistentvolumeclaims":
        _add_finalizer(metadata, PVC_PROTECTION_FINALIZER)
        spec = body.get("spec")
        annotations = metadata.get("annotations") or {}
        if isinstance(spec, dict) and spec.get("storageClassName") is None and \
                BETA_STORAGE_CLASS_ANNOTATION not in annotations:
            name = default_storage_class(list_classes())
            if name is not None:
                spec["storageClassName"] = name
