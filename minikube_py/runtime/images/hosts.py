"""Where a registry's images are fetched from: `$MINIKUBE_PY_HOME/registries.yaml`, in k3s's shape.

```yaml
mirrors:
  docker.io:                         # a registry (or "*" for every registry)
    endpoint: ["https://mirror.internal:5000", "http://127.0.0.1:5001"]
    rewrite: {"^library/(.*)": "hub/$1"}   # repository rewrites at the mirrors
configs:
  mirror.internal:5000:              # an endpoint's host
    auth: {username: u, password: p}     # or auth: base64(u:p), or identitytoken
    tls: {ca_file: /path/ca.pem, cert_file: c.pem, key_file: k.pem, insecure_skip_verify: false}
```

Mirrors are tried in order, then the registry itself (as k3s and containerd do). An `http://`
endpoint is an insecure (plain HTTP) registry. A registry on a loopback address or `localhost`
without a mirror entry is tried over HTTPS first and then plain HTTP, as Docker treats
127.0.0.0/8 as insecure by default. Docker Hub's own endpoint is `registry-1.docker.io`.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import ssl
from dataclasses import dataclass, field

import yaml

from minikube_py.runtime.images.auth import AuthConfigError, Credentials, credentials_from_entry

FILE_NAME = "registries.yaml"


class RegistriesConfigError(ValueError):
    """registries.yaml cannot be used; the message names the file and the field."""


@dataclass
class TlsConfig:
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    insecure_skip_verify: bool = False

    def verify(self) -> ssl.SSLContext | bool:
        """What httpx's `verify=` takes."""
        if self.insecure_skip_verify:
            return False
        return _ssl_context(self.ca_file, self.cert_file, self.key_file)


@functools.lru_cache(maxsize=32)
def _ssl_context(ca_file: str, cert_file: str, key_file: str) -> ssl.SSLContext:
    """One context per TLS setting for the process: loading the system's CA certificates takes
    10 ms on a quiet machine and over a second on a loaded one, once per endpoint otherwise."""
    context = ssl.create_default_context(cafile=ca_file or None)
    if cert_file:
        context.load_cert_chain(cert_file, key_file or None)
    return context


@dataclass
class Endpoint:
    url: str  # "https://host:port", no path
    host: str  # "host:port": the key of its configs entry
    tls: TlsConfig = field(default_factory=TlsConfig)
    credentials: Credentials | None = None
    rewrites: list[tuple[re.Pattern, str]] = field(default_factory=list)
    is_mirror: bool = False

    def repository(self, path: str) -> str:
        for pattern, replacement in self.rewrites:
            if pattern.search(path):
                return pattern.sub(replacement.replace("$", "\\"), path, count=1)
        return path


@dataclass
class RegistryHosts:
    mirrors: dict[str, list[tuple[str, list[tuple[re.Pattern, str]]]]] = field(default_factory=dict)
    configs: dict[str, tuple[TlsConfig, Credentials | None]] = field(default_factory=dict)

    @classmethod
    def load(cls, home: str) -> "RegistryHosts":
        path = os.path.join(home, FILE_NAME)
        try:
            with open(path) as file:
                document = yaml.safe_load(file)
        except FileNotFoundError:
            return cls()
        except (OSError, yaml.YAMLError) as error:
            raise RegistriesConfigError(f"{path}: cannot be read ({error})") from None
        return cls.from_document(document or {}, path)

    @classmethod
    def from_document(cls, document: dict, where: str) -> "RegistryHosts":
        if not isinstance(document, dict):
            raise RegistriesConfigError(f"{where}: must be a mapping with mirrors and configs")
        hosts = cls()
        for registry, mirror in _mapping(document.get("mirrors"), f"{where}: mirrors").items():
            mirror = _mapping(mirror, f"{where}: mirrors.{registry}")
            endpoints = mirror.get("endpoint") or []
            if not isinstance(endpoints, list) or not all(isinstance(item, str) for item in endpoints):
                raise RegistriesConfigError(f"{where}: mirrors.{registry}.endpoint: must be a list of URLs")
            rewrites = []
            for pattern, replacement in _mapping(mirror.get("rewrite"), f"{where}: mirrors.{registry}.rewrite").items():
                try:
                    rewrites.append((re.compile(str(pattern)), str(replacement)))
                except re.error as error:
                    raise RegistriesConfigError(f"{where}: mirrors.{registry}.rewrite: {pattern!r}: {error}") from None
            for url in endpoints:
                if not re.fullmatch(r"https?://[^/\s]+/?(v2/?)?", url):
                    raise RegistriesConfigError(f"{where}: mirrors.{registry}.endpoint: {url!r} is not "
                                                "http(s)://host[:port]")
            hosts.mirrors[str(registry)] = [(url.rstrip("/").removesuffix("/v2"), rewrites) for url in endpoints]
        for host, config in _mapping(document.get("configs"), f"{where}: configs").items():
            config = _mapping(config, f"{where}: configs.{host}")
            tls_fields = _mapping(config.get("tls"), f"{where}: configs.{host}.tls")
            unknown = set(tls_fields) - {"ca_file", "cert_file", "key_file", "insecure_skip_verify"}
            if unknown:
                raise RegistriesConfigError(f"{where}: configs.{host}.tls: unknown fields {sorted(unknown)}")
            for key, value in tls_fields.items():
                wanted = bool if key == "insecure_skip_verify" else str
                if not isinstance(value, wanted):  # "false" as a string would turn verification off
                    raise RegistriesConfigError(f"{where}: configs.{host}.tls.{key}: must be "
                                                f"{'true or false' if wanted is bool else 'a file path'}, "
                                                f"not {value!r}")
            tls = TlsConfig(**tls_fields)
            credentials = None
            if config.get("auth"):
                try:
                    credentials = credentials_from_entry(config["auth"], f"{where}: configs.{host}.auth")
                except AuthConfigError as error:
                    raise RegistriesConfigError(str(error)) from None
            hosts.configs[str(host)] = (tls, credentials)
        return hosts

    def endpoints(self, registry: str) -> list[Endpoint]:
        """The endpoints to try for `registry`, in order: its mirrors (or "*"'s), then itself."""
        result = []
        for url, rewrites in self.mirrors.get(registry, self.mirrors.get("*", [])):
            result.append(self._endpoint(url, rewrites, is_mirror=True))
        default = "registry-1.docker.io" if registry == "docker.io" else registry
        if not any(endpoint.host == default for endpoint in result):
            result.append(self._endpoint(f"https://{default}", [], is_mirror=False))
            if _is_loopback(default) and registry not in self.mirrors:
                result.append(self._endpoint(f"http://{default}", [], is_mirror=False))
        return result

    def _endpoint(self, url: str, rewrites: list, is_mirror: bool) -> Endpoint:
        host = url.split("://", 1)[1]
        tls, credentials = self.configs.get(host, (TlsConfig(), None))
        return Endpoint(url, host, tls, credentials, rewrites, is_mirror)


def _mapping(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RegistriesConfigError(f"{where}: must be a mapping")
    return value


def _is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
