"""Kubeconfig files: the cluster's own, and the user's that kubectl reads.

`start --port` writes `kubeconfig` into the cluster home (server URL, the cluster CA inline, the
admin's bearer token; mode 0600) and merges the same cluster, user and context, each named after
the cluster, into the user's kubeconfig (the first file of `$KUBECONFIG`, else `~/.kube/config`)
and makes it the current context, as minikube does. Entries of other clusters are kept as they
are; a second `start` replaces ours; `stop` leaves them. `transport_for` turns a kubeconfig
context back into an `HttpTransport`, so our own clients can use the TLS door too.
"""

from __future__ import annotations

import base64
import os
import ssl
from collections.abc import Mapping
from typing import Any

import yaml

from minikube_py.client.transport import HttpTransport

ENTRY_KINDS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))


def build(cluster_name: str, server: str, ca_pem: bytes, token: str) -> dict[str, Any]:
    """A complete kubeconfig for one cluster, its admin user and a context joining them."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": cluster_name, "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "users": [{"name": cluster_name, "user": {"token": token}}],
        "contexts": [{"name": cluster_name, "context": {
            "cluster": cluster_name, "user": cluster_name, "namespace": "default"}}],
        "current-context": cluster_name,
    }


def user_kubeconfig_path(environ: Mapping[str, str] | None = None) -> str:
    """Where kubectl looks first: the first entry of $KUBECONFIG, else ~/.kube/config."""
    variables = os.environ if environ is None else environ
    for entry in (variables.get("KUBECONFIG") or "").split(os.pathsep):
        if entry:
            return os.path.expanduser(entry)
    return os.path.join(os.path.expanduser("~"), ".kube", "config")


def load(path: str) -> dict[str, Any]:
    """A kubeconfig as a dict; a missing or empty file is an empty Config."""
    try:
        with open(path) as file:
            document = yaml.safe_load(file)
    except FileNotFoundError:
        document = None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ValueError(f"{path} is not a kubeconfig (its top level is not a mapping)")
    document.setdefault("apiVersion", "v1")
    document.setdefault("kind", "Config")
    return document


def write(path: str, document: dict[str, Any]) -> None:
    """Write a kubeconfig readable by its owner only (it holds a credential), atomically."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700, exist_ok=True)
    temporary = f"{path}.minikube-py.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        yaml.safe_dump(document, file, default_flow_style=False, sort_keys=False)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def merge(path: str, ours: dict[str, Any]) -> None:
    """Put our cluster, user and context into the kubeconfig at `path`, replacing earlier
    entries of the same names, keeping everyone else's, and make our context current."""
    document = load(path)
    for plural, _ in ENTRY_KINDS:
        mine = ours.get(plural) or []
        names = {entry["name"] for entry in mine}
        kept = [entry for entry in document.get(plural) or [] if not (isinstance(entry, dict) and entry.get("name") in names)]
        document[plural] = kept + mine
    document["current-context"] = ours["current-context"]
    write(path, document)


def _entry(document: dict[str, Any], plural: str, singular: str, name: str) -> dict[str, Any]:
    for entry in document.get(plural) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry.get(singular) or {}
    raise ValueError(f"the kubeconfig has no {singular} named {name!r}")


def transport_for(document: dict[str, Any], context_name: str | None = None, timeout: float | None = 60.0) -> HttpTransport:
    """An HttpTransport for a kubeconfig context (the current one by default): its server, CA
    and bearer token."""
    context = _entry(document, "contexts", "context", context_name or document.get("current-context") or "")
    cluster = _entry(document, "clusters", "cluster", context.get("cluster", ""))
    user = _entry(document, "users", "user", context.get("user", ""))
    tls: ssl.SSLContext | None = None
    if str(cluster.get("server", "")).startswith("https://"):
        tls = ssl.create_default_context()
        data: Any = cluster.get("certificate-authority-data")
        if data:
            tls.load_verify_locations(cadata=base64.b64decode(data).decode())
        elif cluster.get("certificate-authority"):
            tls.load_verify_locations(cafile=cluster["certificate-authority"])
    return HttpTransport(url=cluster["server"], timeout=timeout, token=user.get("token"), tls=tls)
