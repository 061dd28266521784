"""The ServiceAccount admission step of pod creation (kube-apiserver's ServiceAccount plugin).

Before a new pod is stored, as Kubernetes does: `spec.serviceAccountName` is set to `default` when
empty, and, unless the pod or its ServiceAccount says `automountServiceAccountToken: false`, the
pod gets the projected volume `kube-api-access-<5 random characters>` (a bound token of the
account, lifetime 3607 s; the cluster CA from the `kube-root-ca.crt` ConfigMap; the namespace) and
every container and init container mounts it read-only at
/var/run/secrets/kubernetes.io/serviceaccount, unless it mounts something there already. A missing
ServiceAccount does not refuse the pod here (Kubernetes refuses it until the controller has made
`default`): the node waits for it with FailedMount instead, so a pod created right after its
namespace starts as soon as the account exists.
"""

from __future__ import annotations

import random
from typing import Any

from minikube_py.api import errors

DEFAULT_SERVICE_ACCOUNT = "default"
TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_VOLUME_PREFIX = "kube-api-access-"
# Kubernetes' token for this volume lives 3607 s: an hour, and seven seconds that tell it apart.
TOKEN_EXPIRATION_SECONDS = 3607
ROOT_CA_CONFIG_MAP = "kube-root-ca.crt"
# apimachinery's utilrand alphabet: no vowels, no confusable characters.
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def token_volume(name: str) -> dict[str, Any]:
    return {"name": name, "projected": {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
        {"configMap": {"name": ROOT_CA_CONFIG_MAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                     "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}}


def _automount(registry, namespace: str, spec: dict) -> bool:
    if spec.get("automountServiceAccountToken") is False:
        return False
    if spec.get("automountServiceAccountToken") is True:
        return True
    try:
        account = registry.get("serviceaccounts", namespace, spec["serviceAccountName"])
    except errors.NotFound:
        return True
    return account.get("automountServiceAccountToken") is not False


def admit_pod(registry, body: dict) -> None:
    """Change the pod body in place as the ServiceAccount admission plugin does."""
    spec = body.get("spec")
    if not isinstance(spec, dict):
        return  # validation will say what is wrong
    if not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec.get("serviceAccount") or DEFAULT_SERVICE_ACCOUNT
    namespace = (body.get("metadata") or {}).get("namespace") or "default"
    if not _automount(registry, namespace, spec):
        return
    volumes = spec.get("volumes")
    if volumes is not None and not isinstance(volumes, list):
        return
    names = {volume.get("name") for volume in volumes or [] if isinstance(volume, dict)}
    if any(isinstance(name, str) and name.startswith(TOKEN_VOLUME_PREFIX) for name in names):
        return  # admitted before (a copy of an admitted pod)
    name = TOKEN_VOLUME_PREFIX + "".join(random.choice(_ALPHABET) for _ in range(5))
    mounted = False
    for field in ("initContainers", "containers"):
        for container in spec.get(field) or []:
            if not isinstance(container, dict):
                continue
            mounts = container.get("volumeMounts")
            if mounts is not None and not isinstance(mounts, list):
                continue
            if any(isinstance(mount, dict) and mount.get("mountPath") == TOKEN_MOUNT_PATH for mount in mounts or []):
                continue
            container["volumeMounts"] = [*(mounts or []), {"name": name, "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}]
            mounted = True
    if mounted:
        spec["volumes"] = [*(volumes or []), token_volume(name)]
