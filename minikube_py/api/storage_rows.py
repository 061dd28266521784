"""`get` columns of PersistentVolumes, PersistentVolumeClaims and StorageClasses (kubectl's printers)."""

from __future__ import annotations

from typing import Any

from minikube_py.api import times

UNSET = "<unset>"
# kubectl's GetAccessModesAsString order.
_MODE_ORDER = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
               ("ReadWriteOncePod", "RWOP"))


def access_modes_text(modes: list[str] | None) -> str:
    present = set(modes or [])
    return ",".join(short for mode, short in _MODE_ORDER if mode in present)


def _age(obj: dict[str, Any], now: float) -> str:
    created = (obj.get("metadata") or {}).get("creationTimestamp")
    return times.human_duration(now - times.parse_time(created)) if created else "<unknown>"


def _phase(obj: dict[str, Any]) -> str:
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    return str((obj.get("status") or {}).get("phase") or "")


def persistent_volume_row(volume: dict[str, Any], now: float) -> list[Any]:
    """Name, Capacity, Access Modes, Reclaim Policy, Status, Claim, StorageClass,
    VolumeAttributesClass, Reason, Age, then the wide VolumeMode."""
    spec = volume.get("spec") or {}
    reference = spec.get("claimRef") or {}
    claim = f"{reference.get('namespace', '')}/{reference.get('name', '')}" if reference else ""
    return [volume["metadata"]["name"], (spec.get("capacity") or {}).get("storage", ""),
            access_modes_text(spec.get("accessModes")), spec.get("persistentVolumeReclaimPolicy", ""),
            _phase(volume), claim, spec.get("storageClassName") or "", UNSET,
            (volume.get("status") or {}).get("reason") or "", _age(volume, now), spec.get("volumeMode") or UNSET]


def persistent_volume_claim_row(claim: dict[str, Any], now: float) -> list[Any]:
    """Name, Status, Volume, Capacity, Access Modes, StorageClass, VolumeAttributesClass, Age,
    then the wide VolumeMode; capacity and modes only once a volume is named."""
    spec, status = claim.get("spec") or {}, claim.get("status") or {}
    capacity = modes = ""
    if spec.get("volumeName"):
        capacity = (status.get("capacity") or {}).get("storage", "")
        modes = access_modes_text(status.get("accessModes"))
    annotations = (claim.get("metadata") or {}).get("annotations") or {}
    storage_class = annotations.get("volume.beta.kubernetes.io/storage-class", spec.get("storageClassName") or "")
    return [claim["metadata"]["name"], _phase(claim), spec.get("volumeName") or "", capacity, modes, storage_class,
            UNSET, _age(claim, now), spec.get("volumeMode") or UNSET]


def storage_class_row(storage_class: dict[str, Any], now: float) -> list[Any]:
    """Name (` (default)` after the default one), Provisioner, ReclaimPolicy, VolumeBindingMode,
    AllowVolumeExpansion, Age."""
    metadata = storage_class.get("metadata") or {}
    name = metadata["name"]
    if (metadata.get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class") == "true":
        name += " (default)"
    return [name, storage_class.get("provisioner", ""), storage_class.get("reclaimPolicy") or "Delete",
            storage_class.get("volumeBindingMode") or "Immediate",
            "true" if storage_class.get("allowVolumeExpansion") else "false", _age(storage_class, now)]
