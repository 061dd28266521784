"""`persistentVolumeClaim` volumes on the node: from a pod's claim to the directory it binds.

kubelet mounts a claim's bound PersistentVolume into the pod. Our volumes are directories on
this host (hostPath and local volumes, and what the local-path provisioner makes), so setting
one up is finding the directory: the claim must exist, not be being deleted and be bound, and its
volume must be a directory source. The pod's `volumes/<name>` then becomes a symbolic link to it,
which every container's bind mount follows (so all containers of the pod, and later pods of the
same claim, see the same files), and which goes with the pod's directory without touching the
data. Anything missing is kubelet's FailedMount, retried when the claim changes.
"""

from __future__ import annotations

import os
from typing import Any, Callable

Lookup = Callable[[str, str], Any]  # (namespace, name) -> cached object or None; namespace "" for volumes


class ClaimNotReady(Exception):
    """The claim cannot be mounted yet; the text is kubelet's."""


def claim_directory(namespace: str, claim_name: str, claims: Lookup, volumes: Lookup) -> str:
    """The host directory of the volume bound to `namespace/claim_name`; ClaimNotReady otherwise."""
    claim = claims(namespace, claim_name)
    if claim is None:
        raise ClaimNotReady(f'persistentvolumeclaim "{claim_name}" not found')
    if claim.metadata.deletion_timestamp is not None:
        raise ClaimNotReady(f'persistentvolumeclaim "{claim_name}" is being deleted')
    volume_name = claim.spec.volume_name
    if claim.status.phase != "Bound" or not volume_name:
        raise ClaimNotReady(f"PVC {namespace}/{claim_name} has not been bound")
    volume = volumes("", volume_name)
    if volume is None:
        raise ClaimNotReady(f'persistentvolume "{volume_name}" not found')
    reference = volume.spec.claim_ref
    if reference is None or reference.uid != claim.metadata.uid:
        raise ClaimNotReady(f"PVC {namespace}/{claim_name} is not bound to PV {volume_name}")
    path = volume.source_path()
    if path is None:
        raise ClaimNotReady(f'persistentvolume "{volume_name}" has no hostPath or local source this node can mount')
    return str(path)


def link_claim_volume(link: str, directory: str, create_missing: bool) -> None:
    """Point the pod's volume path at `directory` (made first when its volume says DirectoryOrCreate)."""
    if create_missing and not os.path.isdir(directory):
        os.makedirs(directory, mode=0o755, exist_ok=True)
    if not os.path.isdir(directory):
        raise ClaimNotReady(f"hostPath type check failed: {directory} is not a directory")
    if os.path.islink(link) and os.readlink(link) == directory:
        return
    os.makedirs(os.path.dirname(link), exist_ok=True)
    staged = f"{link}.link"
    if os.path.lexists(staged):
        os.unlink(staged)
    os.symlink(directory, staged)
    os.replace(staged, link)
