"""Validation of the volumes that carry API data into a pod: configMap, secret, downwardAPI and
projected, with Kubernetes' field paths and messages (k/k `pkg/apis/core/validation`:
validateConfigMapVolumeSource, validateSecretVolumeSource, validateDownwardAPIVolumeSource,
validateProjectedVolumeSource, validateKeyToPath, ValidateLocalNonReservedPath).

It is a module of its own so `validation.py`, which many kinds share, only calls it; the checks
it needs from there (the problem collector, the divisor rule) are handed in, so neither module
imports the other in a circle.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Protocol

from minikube_py.api.core import (
    DownwardAPIVolumeFile,
    KeyToPath,
    ProjectedVolumeSource,
    ResourceFieldSelector,
    Volume,
)
from minikube_py.api.names import qualified_name_errors

FILE_MODE_ERROR = "must be a number between 0 and 0777 (octal), both inclusive"
MAX_FILE_MODE = 0o777
MIN_TOKEN_EXPIRATION_SECONDS = 10 * 60
MAX_TOKEN_EXPIRATION_SECONDS = 1 << 32
# What a downwardAPI volume file may name (k/k validVolumeDownwardAPIFieldPathExpressions): only
# the pod's own metadata; node and status fields are for env only.
VOLUME_FIELD_REFS = ("metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid")
VOLUME_RESOURCE_FIELDS = (
    "limits.cpu", "limits.ephemeral-storage", "limits.memory",
    "requests.cpu", "requests.ephemeral-storage", "requests.memory",
)
_SUBSCRIPT = re.compile(r"^(metadata\.[a-zA-Z]+)\['(.*)'\]$")
API_DATA_SOURCES = ("config_map", "secret", "downward_api", "projected")


class ProblemSink(Protocol):
    """What `validation.Problems` offers; named here so this module does not import it."""

    def required(self, path: str, detail: str = "") -> None: ...
    def invalid(self, path: str, value: Any, detail: str) -> None: ...
    def unsupported(self, path: str, value: Any, supported: tuple[str, ...]) -> None: ...
    def forbidden(self, path: str, detail: str) -> None: ...
    def one_of(self, path: str, value: str | None, supported: tuple[str, ...]) -> None: ...


DivisorCheck = Callable[[Any, str, ResourceFieldSelector], None]


def local_descending_path_errors(target: str) -> list[str]:
    """validateLocalDescendingPath: relative, and no `..` element."""
    errors = []
    if target.startswith("/"):
        errors.append("must be a relative path")
    if ".." in target.split("/"):
        errors.append("must not contain '..'")
    return errors


def local_non_reserved_path_errors(target: str) -> list[str]:
    """ValidateLocalNonReservedPath: a descending path that does not start with `..` either (the
    atomic writer's own `..data` and `..<timestamp>` names live there)."""
    errors = local_descending_path_errors(target)
    if target.startswith("..") and not target.startswith("../"):
        errors.append("must not start with '..'")
    return errors


def _check_path(problems: ProblemSink, path: str, target: str) -> None:
    if not target:
        problems.required(path)
    for error in local_non_reserved_path_errors(target):
        problems.invalid(path, target, error)


def _check_mode(problems: ProblemSink, path: str, mode: int | None) -> None:
    if mode is not None and not 0 <= mode <= MAX_FILE_MODE:
        problems.invalid(path, mode, FILE_MODE_ERROR)


def _check_key_to_path(problems: ProblemSink, path: str, item: KeyToPath) -> None:
    if not item.key:
        problems.required(f"{path}.key")
    _check_path(problems, f"{path}.path", item.path)
    _check_mode(problems, f"{path}.mode", item.mode)


def _check_field_ref(problems: ProblemSink, path: str, api_version: str | None, field_path: str) -> None:
    if api_version not in (None, "v1"):
        problems.unsupported(f"{path}.apiVersion", api_version, ("v1",))
    if not field_path:
        problems.required(f"{path}.fieldPath")
        return
    subscripted = _SUBSCRIPT.match(field_path)
    if subscripted is not None:
        kind, key = subscripted.groups()
        if kind == "metadata.labels":
            reasons = qualified_name_errors(key)
        elif kind == "metadata.annotations":
            reasons = qualified_name_errors(key.lower())
        else:
            reasons = ["does not support subscript"]
        for reason in reasons:
            problems.invalid(path, field_path if reason == "does not support subscript" else key, reason)
    elif field_path not in VOLUME_FIELD_REFS:
        problems.unsupported(f"{path}.fieldPath", field_path, VOLUME_FIELD_REFS)


def _check_downward_file(problems: ProblemSink, path: str, item: DownwardAPIVolumeFile, check_divisor: DivisorCheck) -> None:
    _check_path(problems, f"{path}.path", item.path)
    if item.field_ref is not None:
        _check_field_ref(problems, f"{path}.fieldRef", item.field_ref.api_version, item.field_ref.field_path)
        if item.resource_field_ref is not None:
            problems.invalid(path, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously")
    elif item.resource_field_ref is not None:
        reference = item.resource_field_ref
        if not reference.container_name:
            problems.required(f"{path}.resourceFieldRef.containerName")
        if not reference.resource:
            problems.required(f"{path}.resourceFieldRef.resource")
        else:
            problems.one_of(f"{path}.resourceFieldRef.resource", reference.resource, VOLUME_RESOURCE_FIELDS)
            check_divisor(problems, f"{path}.resourceFieldRef.divisor", reference)
    else:
        problems.required(path, "one of fieldRef and resourceFieldRef is required")
    _check_mode(problems, f"{path}.mode", item.mode)


def _check_projected(problems: ProblemSink, path: str, projected: ProjectedVolumeSource, check_divisor: DivisorCheck) -> None:
    _check_mode(problems, f"{path}.defaultMode", projected.default_mode)
    paths: set[str] = set()

    def claim(target: str, shown: str) -> None:
        if target in paths:
            problems.invalid(path, shown, "conflicting duplicate paths")
        paths.add(target)

    for index, source in enumerate(projected.sources or []):
        at = f"{path}.sources[{index}]"
        given = [name for name in ("secret", "config_map", "downward_api", "service_account_token")
                 if getattr(source, name) is not None]
        if not given:
            problems.required(at, "must specify exactly 1 volume type per source")
        elif len(given) > 1:
            problems.forbidden(at, "may not specify more than 1 volume type per source")
        for name, wire in (("secret", "secret"), ("config_map", "configMap")):
            reference = getattr(source, name)
            if reference is None:
                continue
            if not reference.name:
                problems.required(f"{at}.{wire}.name")
            for item_index, item in enumerate(reference.items or []):
                _check_key_to_path(problems, f"{at}.{wire}.items[{item_index}]", item)
                if item.path:
                    claim(item.path, reference.name or "")
        if source.downward_api is not None:
            for item_index, file in enumerate(source.downward_api.items or []):
                _check_downward_file(problems, f"{at}.downwardAPI.items[{item_index}]", file, check_divisor)
                if file.path:
                    claim(file.path, file.path)
        token = source.service_account_token
        if token is not None:
            expiration = token.expiration_seconds
            if expiration < MIN_TOKEN_EXPIRATION_SECONDS:
                problems.invalid(f"{at}.serviceAccountToken.expirationSeconds", expiration,
                                 "may not specify a duration less than 10 minutes")
            if expiration > MAX_TOKEN_EXPIRATION_SECONDS:
                problems.invalid(f"{at}.serviceAccountToken.expirationSeconds", expiration,
                                 "may not specify a duration larger than 2^32 seconds")
            _check_path(problems, f"{at}.serviceAccountToken.path", token.path)
            if token.path:
                claim(token.path, token.path)


def validate_api_data_volume(problems: ProblemSink, path: str, volume: Volume, check_divisor: DivisorCheck) -> None:
    """The configMap, secret, downwardAPI or projected source of one pod volume, if it has one."""
    if volume.config_map is not None:
        at = f"{path}.configMap"
        if not volume.config_map.name:
            problems.required(f"{at}.name")
        _check_mode(problems, f"{at}.defaultMode", volume.config_map.default_mode)
        for index, item in enumerate(volume.config_map.items or []):
            _check_key_to_path(problems, f"{at}.items[{index}]", item)
    if volume.secret is not None:
        at = f"{path}.secret"
        if not volume.secret.secret_name:
            problems.required(f"{at}.secretName")
        _check_mode(problems, f"{at}.defaultMode", volume.secret.default_mode)
        for index, item in enumerate(volume.secret.items or []):
            _check_key_to_path(problems, f"{at}.items[{index}]", item)
    if volume.downward_api is not None:
        at = f"{path}.downwardAPI"
        _check_mode(problems, f"{at}.defaultMode", volume.downward_api.default_mode)
        for index, file in enumerate(volume.downward_api.items or []):
            _check_downward_file(problems, f"{at}.items[{index}]", file, check_divisor)
    if volume.projected is not None:
        _check_projected(problems, f"{path}.projected", volume.projected, check_divisor)


def validate_sub_path(problems: ProblemSink, path: str, sub_path: str | None, sub_path_expr: str | None) -> None:
    """A volumeMount's subPath and subPathExpr: each relative without `..`, never both."""
    if sub_path and sub_path_expr:
        problems.invalid(f"{path}.subPathExpr", sub_path_expr, "subPathExpr and subPath are mutually exclusive")
    for wire, value in (("subPath", sub_path), ("subPathExpr", sub_path_expr)):
        for error in local_descending_path_errors(value or ""):
            problems.invalid(f"{path}.{wire}", value, error)
