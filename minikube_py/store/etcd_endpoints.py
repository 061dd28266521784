"""How an etcd member is addressed and what TLS files reach it: kept apart from the etcd client so
that parsing `--store` and the `--etcd-*` flags loads nothing of it (a cluster on sqlite never does)."""

from __future__ import annotations

from dataclasses import dataclass

HTTPS = "https://"
HTTP = "http://"


@dataclass(frozen=True)
class EtcdTLS:
    """kube-apiserver's --etcd-cafile (the CA that signed etcd's serving certificates; the
    public CAs without it), --etcd-certfile and --etcd-keyfile (the client certificate an etcd
    started with --client-cert-auth asks for): files on this host, or None."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @property
    def given(self) -> bool:
        return any((self.ca_file, self.cert_file, self.key_file))


def split_endpoint(endpoint: str) -> tuple[str, str, int]:
    """(`http` or `https`, host, port) of `host:port`, `http://host:port` or `https://host:port`."""
    scheme = "https" if endpoint.startswith(HTTPS) else "http"
    address = endpoint.removeprefix(HTTPS).removeprefix(HTTP)
    host, port = address.rsplit(":", 1)
    return scheme, host.strip("[]"), int(port)
