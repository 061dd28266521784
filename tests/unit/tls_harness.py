"""Credentials for unit tests of the TLS door: a cluster CA, tokens and kubeconfigs in tmp_path."""

from __future__ import annotations

import http.client
import pathlib
import ssl

from minikube_py.apiserver import certificates
from minikube_py.apiserver.server import TlsConfig
from minikube_py.client import kubeconfig

NODE = "node1"


def make_credentials(directory: pathlib.Path) -> certificates.Paths:
    return certificates.ensure_credentials(str(directory / "tls-home"), "unit", (NODE,))


def tls_config(paths: certificates.Paths) -> TlsConfig:
    return TlsConfig.of(paths)


def admin_kubeconfig(paths: certificates.Paths, port: int) -> dict:
    with open(paths.ca_certificate, "rb") as file:
        ca = file.read()
    return kubeconfig.build("unit", f"https://127.0.0.1:{port}", ca,
                            certificates.token_of(paths, certificates.ADMIN_USER))


def write_admin_kubeconfig(paths: certificates.Paths, port: int, path: pathlib.Path) -> pathlib.Path:
    kubeconfig.write(str(path), admin_kubeconfig(paths, port))
    return path


def client_context(paths: certificates.Paths, certificate: tuple[str, str] | None = None) -> ssl.SSLContext:
    """A client TLS context trusting the cluster CA, optionally presenting a client certificate."""
    context = ssl.create_default_context(cafile=paths.ca_certificate)
    if certificate is not None:
        context.load_cert_chain(*certificate)
    return context


def https_connection(paths: certificates.Paths, port: int, timeout: float = 10,
                     certificate: tuple[str, str] | None = None) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout,
                                       context=client_context(paths, certificate))


def admin_headers(paths: certificates.Paths, headers: dict | None = None) -> dict:
    return {"Authorization": f"Bearer {certificates.token_of(paths, certificates.ADMIN_USER)}", **(headers or {})}
