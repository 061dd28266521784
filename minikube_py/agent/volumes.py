"""The volumes that carry API data into a pod: configMap, secret, downwardAPI and projected.

kubelet sets them up before the pod's sandbox and containers (its volume manager's
WaitForAttachAndMount), and keeps them current while the pod runs. So does `PodVolumes`:

- Each volume's payload (relative path -> bytes and mode) is computed from the agent's caches of
  ConfigMaps and Secrets, from the pod itself (downward API), from the node (resource limits) and
  from the API's TokenRequest (serviceAccountToken), with Kubernetes' `items`, `defaultMode`,
  `mode` and `optional` rules (k/k pkg/volume/{configmap,secret,downwardapi,projected}).
- It is written by the atomic writer (volumes_writer.py) under `<pod>/volumes/<name>`; secret and
  projected volumes sit on a tmpfs of the pod (the runtime mounts it), configMap and downwardAPI
  ones on disk, as kubelet's wrapped emptyDirs are. With an fsGroup the files get its group.
- emptyDir volumes with medium Memory are a tmpfs of the pod too (sizeLimit its size), mounted
  here once so that all the pod's containers bind the same one.
- Every sync of the pod writes them again; the writer changes nothing unless the payload did, so
  a changed ConfigMap or Secret (the agent re-syncs the pods naming it), changed labels or
  annotations, or a token near its end reach the running containers through the `..data` swap.
  A volume whose every object is `immutable` is written once.
- A missing object or key that is not `optional` is kubelet's `FailedMount` event (`MountVolume.
  SetUp failed for volume "x" : configmap "y" not found`); the pod's containers wait in
  ContainerCreating until the object appears, and the pod then starts by itself.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from minikube_py.agent.volumes_claims import ClaimNotReady, claim_directory, link_claim_volume
from minikube_py.agent.volumes_writer import AtomicWriter, FileProjection, Payload
from minikube_py.api.quantity import memory_bytes
from minikube_py.runtime.types import ContainerRuntimeError, Runtime

log = logging.getLogger(__name__)

FAILED_MOUNT = "FailedMount"
# kubelet renews a projected token once 80 % of its life has passed, or after a day.
TOKEN_REFRESH_FRACTION = 0.8
TOKEN_REFRESH_MAX_SECONDS = 24 * 3600
# Volume types the writer fills, and which of them live on a tmpfs (kubelet's wrapped emptyDir
# with medium Memory for secret and projected; on disk for configMap and downwardAPI).
API_DATA_TYPES = ("config_map", "secret", "downward_api", "projected")
MEMORY_TYPES = ("secret", "projected")
DISK_VOLUME_MODE = 0o777  # as kubelet's emptyDir directory

Lookup = Callable[[str, str], Any]  # (namespace, name) -> cached object or None


class VolumeSetupError(Exception):
    """One volume could not be set up; `message` is kubelet's text after the volume name."""

    def __init__(self, volume: str, message: str):
        super().__init__(message)
        self.volume = volume
        self.message = message

    @property
    def event_message(self) -> str:
        return f'MountVolume.SetUp failed for volume "{self.volume}" : {self.message}'


@dataclass(frozen=True)
class ServiceAccountToken:
    token: str
    expires_at: float  # epoch seconds
    issued_at: float  # epoch seconds, as the node saw it

    @property
    def renew_at(self) -> float:
        """kubelet's rule: renew once 80 % of the lifetime has passed, or after a day."""
        lifetime = max(0.0, self.expires_at - self.issued_at)
        return self.issued_at + min(lifetime * TOKEN_REFRESH_FRACTION, TOKEN_REFRESH_MAX_SECONDS)


class TokenSource(Protocol):
    """The API's TokenRequest for a pod's ServiceAccount (what kubelet asks for a projected token)."""

    def request_token(self, pod, audiences: list[str], expiration_seconds: int) -> ServiceAccountToken: ...

    def forget(self, pod_uid: str) -> None: ...


class ResourceValues(Protocol):
    def resource_value(self, pod, container, reference) -> str: ...


@dataclass
class ObjectSources:
    """Where payloads come from: the agent's caches, the node's resources and the token API."""

    config_maps: Lookup
    secrets: Lookup
    resources: ResourceValues
    tokens: TokenSource | None = None
    host_ca: Callable[[], bytes] | None = None  # the cluster CA, for the default token volume's ca.crt
    claims: Lookup | None = None  # PersistentVolumeClaims, for persistentVolumeClaim volumes
    persistent_volumes: Lookup | None = None  # their PersistentVolumes (namespace "")


# --- values ---------------------------------------------------------------------------------

_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
               "\\": "\\\\", '"': '\\"'}


def go_quote(text: str) -> str:
    """Go's `%q` of a string, which the downward API uses for label and annotation values."""
    out = ['"']
    for char in text:
        if char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)


def format_map(mapping: dict[str, str] | None) -> str:
    """k/k fieldpath.FormatMap: `key="value"` lines in key order, no newline after the last."""
    return "\n".join(f"{key}={go_quote(value)}" for key, value in sorted((mapping or {}).items()))


def downward_value(pod, field_path: str) -> str:
    """A downwardAPI volume file's `fieldRef` value (labels and annotations as whole maps too)."""
    metadata = pod.metadata
    if field_path == "metadata.labels":
        return format_map(metadata.labels)
    if field_path == "metadata.annotations":
        return format_map(metadata.annotations)
    simple = {"metadata.name": metadata.name, "metadata.namespace": metadata.namespace, "metadata.uid": metadata.uid}
    if field_path in simple:
        return simple[field_path] or ""
    for prefix, mapping in (("metadata.labels", metadata.labels), ("metadata.annotations", metadata.annotations)):
        if field_path.startswith(prefix + "['") and field_path.endswith("']"):
            return (mapping or {}).get(field_path[len(prefix) + 2:-2], "")
    raise ValueError(f"fieldPath {field_path!r} is not supported in a downwardAPI volume")


# --- payloads -------------------------------------------------------------------------------


def _decoded(values: dict[str, str] | None, what: str) -> dict[str, bytes]:
    decoded = {}
    for key, value in (values or {}).items():
        try:
            decoded[key] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{what}: key {key} is not valid base64; re-create the object") from None
    return decoded


def config_map_data(config_map) -> dict[str, bytes]:
    data = {key: value.encode() for key, value in (config_map.data or {}).items()}
    data.update(_decoded(config_map.binary_data, f"configmap {config_map.metadata.name}"))
    return data


def secret_data(secret) -> dict[str, bytes]:
    return _decoded(secret.data, f"secret {secret.metadata.name}")


def keys_payload(data: dict[str, bytes], items, default_mode: int, optional: bool, missing_key: str) -> Payload:
    """kubelet's MakePayload for a ConfigMap or Secret: every key under its own name, or only the
    `items` (key -> path, own mode), a missing key being an error unless optional."""
    if not items:
        return {key: FileProjection(value, default_mode) for key, value in data.items()}
    payload: Payload = {}
    for item in items:
        if item.key not in data:
            if optional:
                continue
            raise ValueError(f"{missing_key}: {item.key}")
        payload[item.path] = FileProjection(data[item.key], item.mode if item.mode is not None else default_mode)
    return payload


@dataclass
class BuiltPayload:
    payload: Payload
    frozen: bool  # every source is an existing immutable ConfigMap or Secret: write once
    token_refresh_at: float | None = None  # epoch seconds when a token in it needs renewing


class PayloadBuilder:
    """Computes one volume's payload; raises ValueError with kubelet's message."""

    def __init__(self, pod, sources: ObjectSources, fs_group: int | None, now: float):
        self.pod = pod
        self.sources = sources
        self.fs_group = fs_group
        self.now = now
        self.frozen = True
        self.refresh_at: float | None = None
        self.errors: list[str] = []

    def _object(self, kind: str, name: str, optional: bool):
        lookup = self.sources.config_maps if kind == "configmap" else self.sources.secrets
        obj = lookup(self.pod.metadata.namespace, name)
        if obj is None:
            self.frozen = False
            if not optional:
                raise ValueError(f'{kind} "{name}" not found')
            return None
        if not obj.immutable:
            self.frozen = False
        return obj

    def config_map(self, name: str, items, default_mode: int, optional: bool) -> Payload:
        config_map = self._object("configmap", name, optional)
        data = config_map_data(config_map) if config_map is not None else {}
        return keys_payload(data, items, default_mode, optional, "configmap references non-existent config key")

    def secret(self, name: str, items, default_mode: int, optional: bool) -> Payload:
        secret = self._object("secret", name, optional)
        data = secret_data(secret) if secret is not None else {}
        return keys_payload(data, items, default_mode, optional, "references non-existent secret key")

    def downward(self, items, default_mode: int) -> Payload:
        self.frozen = False
        payload: Payload = {}
        for item in items or []:
            mode = item.mode if item.mode is not None else default_mode
            if item.field_ref is not None:
                value = downward_value(self.pod, item.field_ref.field_path)
            else:
                value = self.sources.resources.resource_value(self.pod, None, item.resource_field_ref)
            payload[os.path.normpath(item.path)] = FileProjection(value.encode(), mode)
        return payload

    def token(self, projection, default_mode: int) -> Payload:
        self.frozen = False
        if self.sources.tokens is None:
            raise ValueError("serviceAccountToken projections need the API's TokenRequest, which this node has not")
        audiences = [projection.audience] if projection.audience else []
        token = self.sources.tokens.request_token(self.pod, audiences, projection.expiration_seconds)
        refresh_at = token.renew_at
        self.refresh_at = refresh_at if self.refresh_at is None else min(self.refresh_at, refresh_at)
        # With an fsGroup the token starts 0600 and the ownership step makes it 0640, as kubelet does.
        mode = 0o600 if self.fs_group is not None else default_mode
        return {projection.path: FileProjection(token.token.encode(), mode)}

    def projected(self, projected) -> Payload:
        """Each source in turn; every failing source is reported, as kubelet aggregates them."""
        default_mode = projected.default_mode if projected.default_mode is not None else 0o644
        payload: Payload = {}
        errors: list[str] = []
        for source in projected.sources or []:
            try:
                if source.config_map is not None:
                    part = self.config_map(source.config_map.name or "", source.config_map.items, default_mode,
                                           bool(source.config_map.optional))
                elif source.secret is not None:
                    part = self.secret(source.secret.name or "", source.secret.items, default_mode,
                                       bool(source.secret.optional))
                elif source.downward_api is not None:
                    part = self.downward(source.downward_api.items, default_mode)
                elif source.service_account_token is not None:
                    part = self.token(source.service_account_token, default_mode)
                else:
                    continue
            except ValueError as error:
                errors.append(str(error))
                continue
            payload.update(part)
        if errors:
            raise ValueError(errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")
        return payload

    def build(self, volume) -> BuiltPayload:
        if volume.config_map is not None:
            source = volume.config_map
            payload = self.config_map(source.name or "", source.items, _mode(source.default_mode), bool(source.optional))
        elif volume.secret is not None:
            source = volume.secret
            payload = self.secret(source.secret_name or "", source.items, _mode(source.default_mode), bool(source.optional))
        elif volume.downward_api is not None:
            payload = self.downward(volume.downward_api.items, _mode(volume.downward_api.default_mode))
        else:
            payload = self.projected(volume.projected)
        return BuiltPayload(payload, self.frozen, self.refresh_at)


def _mode(mode: int | None) -> int:
    return 0o644 if mode is None else mode


def volume_payload(pod, volume, sources: ObjectSources, fs_group: int | None, now: float) -> BuiltPayload:
    """The payload of one API data volume; raises VolumeSetupError with kubelet's message."""
    try:
        return PayloadBuilder(pod, sources, fs_group, now).build(volume)
    except ValueError as error:
        raise VolumeSetupError(volume.name, str(error)) from None


def is_api_data_volume(volume) -> bool:
    return any(getattr(volume, kind, None) is not None for kind in API_DATA_TYPES)


def api_data_volumes(pod) -> list:
    return [volume for volume in pod.spec.volumes or [] if is_api_data_volume(volume)]


def is_memory_empty_dir(volume) -> bool:
    empty_dir = getattr(volume, "empty_dir", None)
    return empty_dir is not None and getattr(empty_dir, "medium", None) == "Memory"


def is_memory_volume(volume) -> bool:
    """Backed by a tmpfs of the pod: secret, projected, and emptyDir with medium Memory."""
    return is_memory_empty_dir(volume) or any(getattr(volume, kind, None) is not None for kind in MEMORY_TYPES)


def referenced_objects(pod) -> set[tuple[str, str]]:
    """("configmaps" | "secrets" | "serviceaccounts", name) for every ConfigMap and Secret the pod's
    volumes name, and its ServiceAccount when a projected token is asked for."""
    names: set[tuple[str, str]] = set()
    for volume in pod.spec.volumes or []:
        if getattr(volume, "config_map", None) is not None:
            names.add(("configmaps", volume.config_map.name or ""))
        if getattr(volume, "secret", None) is not None:
            names.add(("secrets", volume.secret.secret_name or ""))
        projected = getattr(volume, "projected", None)
        for source in (projected.sources or []) if projected is not None else []:
            if source.config_map is not None:
                names.add(("configmaps", source.config_map.name or ""))
            if source.secret is not None:
                names.add(("secrets", source.secret.name or ""))
            if source.service_account_token is not None:
                names.add(("serviceaccounts", pod.spec.service_account_name or "default"))
        claim = getattr(volume, "persistent_volume_claim", None)
        if claim is not None:
            names.add(("persistentvolumeclaims", claim.claim_name))
    return names


def pod_volume_name(claims: Lookup, pod, volume) -> str:
    """The PersistentVolume name bound to a pod's claim volume ("" when unknown)."""
    claim = claims(pod.metadata.namespace, volume.persistent_volume_claim.claim_name)
    return (getattr(getattr(claim, "spec", None), "volume_name", None) or "") if claim is not None else ""


def volume_dir(pod_dir: str, name: str) -> str:
    return os.path.join(pod_dir, "volumes", name)


# --- the per-pod state ----------------------------------------------------------------------


@dataclass
class _PodState:
    frozen: set[str] = field(default_factory=set)  # volumes written once and never again (immutable)
    memory_empty_dirs: set[str] = field(default_factory=set)  # emptyDir tmpfs mounts made
    refresh_at: dict[str, float] = field(default_factory=dict)  # volume -> when its token needs renewing


class PodVolumes:
    """Sets up and keeps current the API data volumes of this node's pods."""

    def __init__(self, runtime: Runtime, sources: ObjectSources, now: Callable[[], float],
                 set_ownership: Callable[[str, int, bool], None]):
        self.runtime = runtime
        self.sources = sources
        self.now = now
        self.set_ownership = set_ownership
        self._states: dict[str, _PodState] = {}
        self._lock = threading.Lock()

    def _state(self, uid: str) -> _PodState:
        with self._lock:
            return self._states.setdefault(uid, _PodState())

    def set_up(self, pod, pod_dir: str) -> float | None:
        """Write every API data volume of the pod; the seconds until a token needs renewing (None:
        nothing to renew). Raises VolumeSetupError for the first volume that cannot be set up,
        after trying the others."""
        state = self._state(pod.metadata.uid)
        fs_group = getattr(getattr(pod.spec, "security_context", None), "fs_group", None)
        now = self.now()
        failure: VolumeSetupError | None = None
        for volume in pod.spec.volumes or []:
            if is_memory_empty_dir(volume) and volume.name not in state.memory_empty_dirs:
                try:
                    self._set_up_memory_empty_dir(volume, volume_dir(pod_dir, volume.name), fs_group)
                    state.memory_empty_dirs.add(volume.name)
                except (OSError, ContainerRuntimeError) as error:
                    failure = failure or VolumeSetupError(volume.name, f"mounting a tmpfs: {error}")
        for volume in pod.spec.volumes or []:
            if getattr(volume, "persistent_volume_claim", None) is not None:
                try:
                    self._set_up_claim(pod, volume, volume_dir(pod_dir, volume.name))
                except VolumeSetupError as error:
                    failure = failure or error
        for volume in api_data_volumes(pod):
            if volume.name in state.frozen:
                continue
            try:
                self._set_up_volume(pod, volume, volume_dir(pod_dir, volume.name), fs_group, now, state)
            except VolumeSetupError as error:
                failure = failure or error
        if failure is not None:
            raise failure
        if not state.refresh_at:
            return None
        return max(0.0, min(state.refresh_at.values()) - now)

    def _set_up_claim(self, pod, volume, link: str) -> None:
        """A persistentVolumeClaim volume: `link` to its bound volume's directory (volumes_claims.py)."""
        if self.sources.claims is None or self.sources.persistent_volumes is None:
            raise VolumeSetupError(volume.name, "persistentVolumeClaim volumes are not available on this node")
        try:
            directory = claim_directory(pod.metadata.namespace, volume.persistent_volume_claim.claim_name,
                                        self.sources.claims, self.sources.persistent_volumes)
            bound = self.sources.persistent_volumes("", pod_volume_name(self.sources.claims, pod, volume))
            host_path = getattr(getattr(bound, "spec", None), "host_path", None)
            link_claim_volume(link, directory, getattr(host_path, "type", None) == "DirectoryOrCreate")
        except ClaimNotReady as error:
            raise VolumeSetupError(volume.name, str(error)) from None
        except OSError as error:
            raise VolumeSetupError(volume.name, f"linking the volume's directory: {error}") from None

    def _set_up_memory_empty_dir(self, volume, directory: str, fs_group: int | None) -> None:
        """One tmpfs for the pod, which each container binds (so they share it), as kubelet's
        memory-medium emptyDir; `sizeLimit` is its size; an fsGroup gets it group-writable."""
        size_limit = getattr(volume.empty_dir, "size_limit", None)
        self.runtime.mount_memory_volume(directory, int(memory_bytes(size_limit)) if size_limit else None)
        if fs_group is not None:
            self.set_ownership(directory, fs_group, False)

    def _set_up_volume(self, pod, volume, directory: str, fs_group: int | None, now: float, state: _PodState) -> None:
        built = volume_payload(pod, volume, self.sources, fs_group, now)
        try:
            if is_memory_volume(volume):
                self.runtime.mount_memory_volume(directory)
            elif not os.path.isdir(directory):
                os.makedirs(directory, exist_ok=True)
                os.chmod(directory, DISK_VOLUME_MODE)
            ownership = None
            if fs_group is not None:
                def ownership(path: str) -> None:
                    self.set_ownership(path, fs_group, True)
            changed = AtomicWriter(directory, self.now).write(built.payload, ownership)
        except (OSError, ValueError, ContainerRuntimeError) as error:
            raise VolumeSetupError(volume.name, f"writing the volume under {directory}: {error}") from None
        if changed:
            log.debug("pod %s/%s: volume %s written", pod.metadata.namespace, pod.metadata.name, volume.name)
        if built.frozen:
            state.frozen.add(volume.name)
        if built.token_refresh_at is not None:
            state.refresh_at[volume.name] = built.token_refresh_at
        else:
            state.refresh_at.pop(volume.name, None)

    def tear_down(self, pod, pod_dir: str) -> None:
        """Unmount the pod's tmpfs volumes (their files go with them) and forget its state and
        tokens; the on-disk ones go with the pod's directory."""
        with self._lock:
            self._states.pop(pod.metadata.uid, None)
        if self.sources.tokens is not None:
            self.sources.tokens.forget(pod.metadata.uid)
        for volume in pod.spec.volumes or []:
            if is_memory_volume(volume):
                self.runtime.unmount_memory_volume(volume_dir(pod_dir, volume.name))

    def tear_down_directory(self, pod_dir: str) -> None:
        """Unmount whatever tmpfs volumes a pod directory has, knowing nothing of its pod (leftovers)."""
        root = os.path.join(pod_dir, "volumes")
        try:
            names = os.listdir(root)
        except FileNotFoundError:
            return
        for name in names:
            self.runtime.unmount_memory_volume(os.path.join(root, name))


# --- mounts into a container ----------------------------------------------------------------


def sub_path_source(volume_root: str, sub_path: str, container_name: str, mount_name: str) -> str:
    """The host path a subPath mount binds: inside the volume even after symlinks are followed (a
    container could have planted `x -> /` in an emptyDir), made as a directory when missing, as
    kubelet's subpath preparation does."""
    if os.path.isabs(sub_path):
        raise ContainerRuntimeError("CreateContainerConfigError", f"error SubPath `{sub_path}` must not be an absolute path")
    if ".." in sub_path.split("/"):
        raise ContainerRuntimeError("CreateContainerConfigError",
                                    f"unable to provision SubPath `{sub_path}`: must not contain '..'")
    source = os.path.join(volume_root, sub_path)
    if not os.path.lexists(source):
        try:
            os.makedirs(source, mode=0o750, exist_ok=True)
        except OSError:
            raise ContainerRuntimeError(
                "CreateContainerConfigError",
                f'failed to create subPath directory for volumeMount "{mount_name}" of container "{container_name}"',
            ) from None
    root = os.path.realpath(volume_root)
    resolved = os.path.realpath(source)
    if resolved != root and not resolved.startswith(root + os.sep):
        raise ContainerRuntimeError(
            "CreateContainerConfigError",
            f'subPath "{sub_path}" of volumeMount "{mount_name}" of container "{container_name}" resolves outside the '
            "volume; remove the symlink or use another subPath",
        )
    return resolved
