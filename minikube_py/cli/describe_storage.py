"""`describe` for PersistentVolumes, PersistentVolumeClaims and StorageClasses.

kubectl's describers for the storage kinds (`describePersistentVolume`,
`describePersistentVolumeClaim`, `describeStorageClass` in kubectl's describe.go): the class,
phase, claim or volume, access modes and capacity, the source of a volume (our local-path
provisioner makes `local` volumes, a hand-made one may be `hostPath`), the pods using a claim
(`Used By`), and the events (the binder's `ProvisioningFailed`, `WaitForFirstConsumer`, ...).
"""

from __future__ import annotations

from minikube_py import api
from minikube_py.api.storage_rows import access_modes_text
from minikube_py.cli.context import Context
from minikube_py.cli.describe_format import DescribeWriter, describe_events, events_about, rfc1123
from minikube_py.cli.tables import NONE

BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
DEFAULT_CLASS_ANNOTATIONS = ("storageclass.kubernetes.io/is-default-class",
                             "storageclass.beta.kubernetes.io/is-default-class")


def format_labels(values: dict | None) -> str:
    """apimachinery's `labels.FormatLabels`: `a=b,c=d` sorted, `<none>` when empty."""
    return ",".join(f"{key}={value}" for key, value in sorted((values or {}).items())) or NONE


def go_list(values: list | None) -> str:
    """Go's `%v` of a string slice: `[a b]`."""
    return f"[{' '.join(str(value) for value in values or [])}]"


def go_bool(value: bool | None) -> str:
    """kubectl's printBoolPtr: `True`, `False`, or `<unset>`."""
    return "<unset>" if value is None else ("True" if value else "False")


def terminating_or_phase(obj: dict, now: float) -> str:
    deletion = obj["metadata"].get("deletionTimestamp")
    if deletion:
        return f"Terminating (lasts {api.times.human_duration(now - api.times.parse_time(deletion))})"
    return (obj.get("status") or {}).get("phase", "")


def storage_class_of(obj: dict) -> str:
    """A volume's or claim's class (`GetPersistentVolumeClass`, `GetPersistentVolumeClaimClass`):
    the beta annotation, else spec.storageClassName."""
    annotations = obj["metadata"].get("annotations") or {}
    return annotations.get(BETA_CLASS_ANNOTATION) or (obj.get("spec") or {}).get("storageClassName") or ""


def _node_affinity(writer: DescribeWriter, affinity: dict | None) -> None:
    required = (affinity or {}).get("required")
    if required is None:
        writer.write(0, f"Node Affinity:\t{NONE}")
        return
    writer.write(0, "Node Affinity:\t")
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        writer.write(1, f"Required Terms:\t{NONE}")
        return
    writer.write(1, "Required Terms:\t")
    for index, term in enumerate(terms):
        expressions = term.get("matchExpressions") or []
        if not expressions:
            writer.write(2, f"Term {index}:\t{NONE}")
        for position, requirement in enumerate(expressions):
            text = f"{requirement.get('key')} {str(requirement.get('operator', '')).lower()}"
            if requirement.get("values"):
                text += f" [{', '.join(requirement['values'])}]"
            writer.write(2, f"{f'Term {index}:' if position == 0 else ''}\t{text}")


def _volume_source(writer: DescribeWriter, spec: dict) -> None:
    writer.write(0, "Source:")
    if spec.get("hostPath") is not None:
        host_path = spec["hostPath"]
        writer.write(2, "Type:\tHostPath (bare host directory volume)")
        writer.write(2, f"Path:\t{host_path.get('path', '')}")
        writer.write(2, f"HostPathType:\t{host_path.get('type') or NONE}")
    elif spec.get("local") is not None:
        writer.write(2, "Type:\tLocalVolume (a persistent volume backed by local storage on a node)")
        writer.write(2, f"Path:\t{spec['local'].get('path', '')}")
    else:
        writer.write(1, "<unknown>")


def describe_persistent_volume(context: Context, volume: dict, now: float) -> str:
    metadata, spec, status = volume["metadata"], volume.get("spec") or {}, volume.get("status") or {}
    writer = DescribeWriter()
    writer.write(0, f"Name:\t{metadata['name']}")
    writer.labels(0, "Labels", metadata.get("labels"))
    writer.annotations(0, "Annotations", metadata.get("annotations"))
    writer.write(0, f"Finalizers:\t{go_list(metadata.get('finalizers'))}")
    writer.write(0, f"StorageClass:\t{storage_class_of(volume)}")
    writer.write(0, f"Status:\t{terminating_or_phase(volume, now)}")
    claim = spec.get("claimRef")
    writer.write(0, f"Claim:\t{claim.get('namespace', '') + '/' + claim.get('name', '') if claim else ''}")
    writer.write(0, f"Reclaim Policy:\t{spec.get('persistentVolumeReclaimPolicy', '')}")
    writer.write(0, f"Access Modes:\t{access_modes_text(spec.get('accessModes'))}")
    if spec.get("volumeMode"):
        writer.write(0, f"VolumeMode:\t{spec['volumeMode']}")
    writer.write(0, f"Capacity:\t{(spec.get('capacity') or {}).get('storage', '0')}")
    _node_affinity(writer, spec.get("nodeAffinity"))
    writer.write(0, f"Message:\t{status.get('message', '')}")
    _volume_source(writer, spec)
    describe_events(writer, events_about(context, volume), now)
    return writer.render()


def pods_using(context: Context, claim: dict) -> list[dict]:
    """`getPodsForPVC`: the namespace's pods with a volume of this claim, then pods owning it."""
    metadata = claim["metadata"]
    pods = context.transport.list("pods", namespace=metadata.get("namespace")).get("items") or []
    using = [pod for pod in pods if any((volume.get("persistentVolumeClaim") or {}).get("claimName") == metadata["name"]
                                        for volume in (pod.get("spec") or {}).get("volumes") or [])]
    owners = {reference.get("uid") for reference in metadata.get("ownerReferences") or []
              if reference.get("kind") == "Pod"}
    using += [pod for pod in pods if pod["metadata"].get("uid") in owners and pod not in using]
    return using


def describe_persistent_volume_claim(context: Context, claim: dict, now: float) -> str:
    metadata, spec, status = claim["metadata"], claim.get("spec") or {}, claim.get("status") or {}
    writer = DescribeWriter()
    writer.write(0, f"Name:\t{metadata['name']}")
    writer.write(0, f"Namespace:\t{metadata.get('namespace', '')}")
    writer.write(0, f"StorageClass:\t{storage_class_of(claim)}")
    writer.write(0, f"Status:\t{terminating_or_phase(claim, now)}")
    writer.write(0, f"Volume:\t{spec.get('volumeName', '')}")
    writer.labels(0, "Labels", metadata.get("labels"))
    writer.annotations(0, "Annotations", metadata.get("annotations"))
    writer.write(0, f"Finalizers:\t{go_list(metadata.get('finalizers'))}")
    bound = bool(spec.get("volumeName"))
    writer.write(0, f"Capacity:\t{(status.get('capacity') or {}).get('storage', '') if bound else ''}")
    writer.write(0, f"Access Modes:\t{access_modes_text(status.get('accessModes')) if bound else ''}")
    if spec.get("volumeMode"):
        writer.write(0, f"VolumeMode:\t{spec['volumeMode']}")
    users = sorted(pod["metadata"]["name"] for pod in pods_using(context, claim))
    writer.write(0, f"Used By:\t{users[0] if users else NONE}")
    for name in users[1:]:
        writer.write(0, f"\t{name}")
    if status.get("conditions"):
        writer.write(0, "Conditions:")
        writer.write(1, "Type\tStatus\tLastProbeTime\tLastTransitionTime\tReason\tMessage")
        writer.write(1, "----\t------\t-----------------\t------------------\t------\t-------")
        for condition in status["conditions"]:
            writer.write(1, f"{condition.get('type')} \t{condition.get('status')} \t"
                            f"{rfc1123(condition.get('lastProbeTime'))} \t"
                            f"{rfc1123(condition.get('lastTransitionTime'))} \t{condition.get('reason', '')} \t"
                            f"{condition.get('message', '')}")
    describe_events(writer, events_about(context, claim), now)
    return writer.render()


def is_default_class(storage_class: dict) -> str:
    annotations = storage_class["metadata"].get("annotations") or {}
    return "Yes" if any(annotations.get(key) == "true" for key in DEFAULT_CLASS_ANNOTATIONS) else "No"


def describe_storage_class(context: Context, storage_class: dict, now: float) -> str:
    metadata = storage_class["metadata"]
    writer = DescribeWriter()
    writer.write(0, f"Name:\t{metadata['name']}")
    writer.write(0, f"IsDefaultClass:\t{is_default_class(storage_class)}")
    writer.write(0, f"Annotations:\t{format_labels(metadata.get('annotations'))}")
    writer.write(0, f"Provisioner:\t{storage_class.get('provisioner', '')}")
    writer.write(0, f"Parameters:\t{format_labels(storage_class.get('parameters'))}")
    writer.write(0, f"AllowVolumeExpansion:\t{go_bool(storage_class.get('allowVolumeExpansion'))}")
    options = storage_class.get("mountOptions") or []
    writer.write(0, "MountOptions:" + ("" if options else f"\t{NONE}"))
    for option in options:
        writer.write(1, option)
    if storage_class.get("reclaimPolicy"):
        writer.write(0, f"ReclaimPolicy:\t{storage_class['reclaimPolicy']}")
    if storage_class.get("volumeBindingMode"):
        writer.write(0, f"VolumeBindingMode:\t{storage_class['volumeBindingMode']}")
    describe_events(writer, events_about(context, storage_class), now)
    return writer.render()


DESCRIBERS = {
    "persistentvolumes": describe_persistent_volume,
    "persistentvolumeclaims": describe_persistent_volume_claim,
    "storageclasses": describe_storage_class,
}
