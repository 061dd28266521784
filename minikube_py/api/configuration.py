"""ConfigMap, Secret and ServiceAccount (`v1`): what a pod is configured with and runs as.

ConfigMaps and Secrets are maps of keys to values that pods read as environment variables or
files; a Secret's values are base64 on the wire (`data`) and may be written as plain text in
`stringData`, which the API server folds into `data` and never stores. A ServiceAccount is the
identity a pod runs as; every namespace gets a `default` one from the service account
controller. Defaulting and validation (key names, the 1 MiB limit, the typed Secrets' required
keys, `immutable`) are in `api.networking_validation`, next to the Service rules.
"""

from __future__ import annotations

from pydantic import Field

from minikube_py.api.meta import ObjectMeta, ObjectReference, WireModel

SECRET_TYPE_OPAQUE = "Opaque"
SECRET_TYPE_DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson"
SECRET_TYPE_DOCKER_CONFIG = "kubernetes.io/dockercfg"
SECRET_TYPE_TLS = "kubernetes.io/tls"
SECRET_TYPE_BASIC_AUTH = "kubernetes.io/basic-auth"
SECRET_TYPE_SSH_AUTH = "kubernetes.io/ssh-auth"
SECRET_TYPE_SERVICE_ACCOUNT_TOKEN = "kubernetes.io/service-account-token"
DEFAULT_SERVICE_ACCOUNT = "default"


class ConfigMap(WireModel):
    api_version: str = "v1"
    kind: str = "ConfigMap"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    data: dict[str, str] | None = None
    binary_data: dict[str, str] | None = None
    immutable: bool | None = None


class Secret(WireModel):
    api_version: str = "v1"
    kind: str = "Secret"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    type: str | None = None
    data: dict[str, str] | None = None
    string_data: dict[str, str] | None = None
    immutable: bool | None = None


class LocalObjectReference(WireModel):
    name: str | None = None


class ServiceAccount(WireModel):
    api_version: str = "v1"
    kind: str = "ServiceAccount"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    secrets: list[ObjectReference] | None = None
    image_pull_secrets: list[LocalObjectReference] | None = None
    automount_service_account_token: bool | None = None
