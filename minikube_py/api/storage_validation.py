"""Validation of PersistentVolumes, PersistentVolumeClaims and StorageClasses.

Follows k/k `pkg/apis/core/validation/validation.go` (ValidatePersistentVolume,
ValidatePersistentVolumeClaim and their updates) and `pkg/apis/storage/validation` with the API
server's wording. `api.resources` attaches these functions to the kinds.
"""

from __future__ import annotations

from minikube_py.api.meta import WireModel
from minikube_py.api.names import dns1123_subdomain_errors
from minikube_py.api.quantity import parse_quantity
from minikube_py.api.storage import (
    ACCESS_MODES,
    BINDING_MODES,
    RECLAIM_POLICIES,
    PersistentVolume,
    PersistentVolumeClaim,
    PersistentVolumeClaimSpec,
    StorageClass,
)
from minikube_py.api.validation import Problems, validate_label_selector, validate_metadata

STORAGE = "storage"
VOLUME_MODES = ("Block", "Filesystem")


def default_namespace(obj: WireModel) -> None:
    metadata = getattr(obj, "metadata", None)
    if metadata is not None and not metadata.namespace:
        metadata.namespace = "default"


def _access_modes(problems: Problems, path: str, modes: list[str] | None) -> None:
    if not modes:
        problems.required(path, "at least 1 access mode is required")
        return
    for mode in modes:
        if mode not in ACCESS_MODES:
            problems.unsupported(path, mode, tuple(ACCESS_MODES))
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        problems.forbidden(path, "may not use ReadWriteOncePod with other access modes")


def _storage_quantity(problems: Problems, path: str, text: str | None) -> None:
    if text is None:
        problems.required(path)
        return
    try:
        amount = parse_quantity(text)
    except ValueError:
        problems.invalid(path, text, "quantities must match the regular expression "
                                     "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
        return
    if amount <= 0:
        problems.invalid(path, text, "must be greater than zero")


def validate_persistent_volume(volume: PersistentVolume) -> list[tuple[str, str]]:
    problems = Problems()
    validate_metadata(problems, volume.metadata, False, dns1123_subdomain_errors)
    spec = volume.spec
    _access_modes(problems, "spec.accessModes", spec.access_modes)
    capacity = spec.capacity or {}
    if not capacity:
        problems.required("spec.capacity")
    for resource in capacity:
        if resource != STORAGE:
            problems.unsupported("spec.capacity", resource, (STORAGE,))
    if STORAGE in capacity:
        _storage_quantity(problems, "spec.capacity[storage]", capacity[STORAGE])
    problems.one_of("spec.persistentVolumeReclaimPolicy", spec.persistent_volume_reclaim_policy, RECLAIM_POLICIES)
    problems.one_of("spec.volumeMode", spec.volume_mode, VOLUME_MODES)
    sources = [name for name, source in (("hostPath", spec.host_path), ("local", spec.local)) if source is not None]
    if not sources:
        problems.required("spec", "must specify a volume type")
    elif len(sources) > 1:
        problems.forbidden(f"spec.{sources[1]}", "may not specify more than 1 volume type")
    path = spec.host_path.path if spec.host_path is not None else spec.local.path if spec.local is not None else None
    if path is not None and sources:
        field = f"spec.{sources[0]}.path"
        if not path.startswith("/"):
            problems.invalid(field, path, "must be an absolute path")
        elif ".." in path.split("/"):
            problems.invalid(field, path, "must not contain '..'")
    if spec.local is not None and spec.node_affinity is None:
        problems.required("spec.nodeAffinity", "Local volume requires node affinity")
    if spec.persistent_volume_reclaim_policy == "Recycle" and spec.host_path is not None and \
            not (path or "").startswith("/tmp"):
        problems.forbidden("spec.persistentVolumeReclaimPolicy", "may not be 'recycle' for a hostPath volume "
                           "other than '/tmp' or '/tmp/'")
    if spec.storage_class_name:
        problems.check_each("spec.storageClassName", spec.storage_class_name,
                            dns1123_subdomain_errors(spec.storage_class_name))
    return problems.items


def validate_persistent_volume_update(new: PersistentVolume, old: PersistentVolume) -> list[tuple[str, str]]:
    """A volume's source and class are fixed once made (`ValidatePersistentVolumeUpdate`)."""
    problems = Problems()
    for field, new_value, old_value in (
            ("spec.hostPath", new.spec.host_path, old.spec.host_path),
            ("spec.local", new.spec.local, old.spec.local),
            ("spec.storageClassName", new.spec.storage_class_name, old.spec.storage_class_name),
            ("spec.volumeMode", new.spec.volume_mode, old.spec.volume_mode)):
        if new_value != old_value:
            problems.invalid(field, new_value.to_dict() if isinstance(new_value, WireModel) else new_value,
                             "field is immutable")
    if old.spec.node_affinity is not None and new.spec.node_affinity != old.spec.node_affinity:
        problems.invalid("spec.nodeAffinity.required", "", "field is immutable")
    return problems.items


def _validate_claim_spec(problems: Problems, path: str, spec: PersistentVolumeClaimSpec) -> None:
    _access_modes(problems, f"{path}.accessModes", spec.access_modes)
    if spec.selector is not None:
        validate_label_selector(problems, f"{path}.selector", spec.selector)
    requests = spec.resources.requests or {}
    _storage_quantity(problems, f"{path}.resources[storage]", requests.get(STORAGE))
    problems.one_of(f"{path}.volumeMode", spec.volume_mode, VOLUME_MODES)
    if spec.storage_class_name:
        problems.check_each(f"{path}.storageClassName", spec.storage_class_name,
                            dns1123_subdomain_errors(spec.storage_class_name))


def validate_claim_template_spec(problems: Problems, path: str, spec: PersistentVolumeClaimSpec) -> None:
    """A StatefulSet's volumeClaimTemplates[].spec: the same rules as a claim's spec."""
    _validate_claim_spec(problems, path, spec)


def validate_persistent_volume_claim(claim: PersistentVolumeClaim) -> list[tuple[str, str]]:
    problems = Problems()
    validate_metadata(problems, claim.metadata, True, dns1123_subdomain_errors)
    _validate_claim_spec(problems, "spec", claim.spec)
    return problems.items


def validate_persistent_volume_claim_update(new: PersistentVolumeClaim,
                                            old: PersistentVolumeClaim) -> list[tuple[str, str]]:
    """Only a larger storage request, and the volumeName while it is empty, may change."""
    problems = Problems()
    new_spec, old_spec = new.spec.model_copy(deep=True), old.spec.model_copy(deep=True)
    if not old_spec.volume_name:
        old_spec.volume_name = new_spec.volume_name
    new_spec.resources, old_spec.resources = old_spec.resources, old_spec.resources
    if new_spec != old_spec:
        problems.forbidden("spec", "spec is immutable after creation except resources.requests and "
                           "volumeAttributesClassName for bound claims")
    old_size = (old.spec.resources.requests or {}).get(STORAGE)
    new_size = (new.spec.resources.requests or {}).get(STORAGE)
    if old_size and new_size and new_size != old_size:
        try:
            smaller = parse_quantity(new_size) < parse_quantity(old_size)
        except ValueError:
            smaller = False
        if smaller:
            problems.forbidden("spec.resources.requests.storage", "field can not be less than previous value")
        elif old.status.phase != "Bound":
            problems.forbidden("spec.resources.requests.storage", "only dynamically provisioned pvc can be resized "
                               "and the storageclass that provisions the pvc must support resize")
    return problems.items


def validate_storage_class(storage_class: StorageClass) -> list[tuple[str, str]]:
    problems = Problems()
    validate_metadata(problems, storage_class.metadata, False, dns1123_subdomain_errors)
    if not storage_class.provisioner:
        problems.required("provisioner")
    else:
        problems.check_each("provisioner", storage_class.provisioner,
                            dns1123_subdomain_errors(storage_class.provisioner.lower().replace("/", "-")))
    problems.one_of("reclaimPolicy", storage_class.reclaim_policy, ("Delete", "Retain"))
    problems.one_of("volumeBindingMode", storage_class.volume_binding_mode, BINDING_MODES)
    return problems.items


def validate_storage_class_update(new: StorageClass, old: StorageClass) -> list[tuple[str, str]]:
    problems = Problems()
    if new.parameters != old.parameters:
        problems.forbidden("parameters", "updates to parameters are forbidden.")
    if new.provisioner != old.provisioner:
        problems.forbidden("provisioner", "updates to provisioner are forbidden.")
    if new.reclaim_policy != old.reclaim_policy:
        problems.forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden.")
    if new.volume_binding_mode != old.volume_binding_mode:
        problems.invalid("volumeBindingMode", new.volume_binding_mode, "field is immutable")
    return problems.items

