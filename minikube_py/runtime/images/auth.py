"""Registry authentication: `WWW-Authenticate` challenges, and credentials from Docker config JSON.

A registry answers an unauthenticated request with 401 and one or more challenges (RFC 7235):
`Bearer realm="https://auth.example/token",service="registry",scope="repository:team/app:pull"`
sends us to a token server (anonymously, or with a user name and password as basic auth);
`Basic realm="..."` wants the credentials on every request. Credentials come from
`kubernetes.io/dockerconfigjson` Secrets (the pod's imagePullSecrets and its ServiceAccount's),
matched to the image's registry the way kubelet's credential keyring matches them, and from
`registries.yaml` (`configs.<host>.auth`).
"""

from __future__ import annotations

import base64
import fnmatch
import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_SCHEME = re.compile(rf"\s*({_TOKEN})")
_PARAMETER = re.compile(rf'\s*({_TOKEN})\s*=\s*("(?:[^"\\]|\\.)*"|{_TOKEN})\s*')
_DOCKER_HUB_KEYS = ("docker.io", "index.docker.io", "registry-1.docker.io")


class AuthConfigError(ValueError):
    """A pull secret or registries.yaml auth that cannot be read; the message names what is wrong."""


@dataclass
class Challenge:
    scheme: str  # lower case: "bearer", "basic"
    parameters: dict[str, str] = field(default_factory=dict)  # keys lower case


def parse_challenges(header: str) -> list[Challenge]:
    """Every challenge of one `WWW-Authenticate` value; malformed parts are skipped, never raised.

    A challenge is a scheme and comma-separated `key=value` parameters (values quoted or tokens);
    a token not followed by `=` starts the next challenge.
    """
    challenges: list[Challenge] = []
    position = 0
    current: Challenge | None = None
    while position < len(header):
        if header[position] in ", \t":
            position += 1
            continue
        parameter = _PARAMETER.match(header, position)
        if parameter is not None and current is not None:
            value = parameter.group(2)
            if value.startswith('"'):
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            current.parameters[parameter.group(1).lower()] = value
            position = parameter.end()
            continue
        scheme = _SCHEME.match(header, position)
        if scheme is None:
            break
        current = Challenge(scheme.group(1).lower())
        challenges.append(current)
        position = scheme.end()
    return challenges


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""  # an OAuth refresh token (`identitytoken`), sent to the token server

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


def credentials_from_entry(entry: dict, where: str) -> Credentials:
    """One `auths` entry: `auth` (base64 of user:password) or `username`/`password`, maybe `identitytoken`."""
    if not isinstance(entry, dict):
        raise AuthConfigError(f"{where}: must be an object with auth or username and password")
    username, password = str(entry.get("username") or ""), str(entry.get("password") or "")
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            raise AuthConfigError(f"{where}.auth: not base64 of user:password") from None
        username, separator, password = decoded.partition(":")
        if not separator:
            raise AuthConfigError(f"{where}.auth: the decoded value has no ':' between user and password")
    return Credentials(username, password, str(entry.get("identitytoken") or entry.get("identityToken") or ""))


@dataclass
class Keyring:
    """Credentials by registry key, looked up for an image as kubelet's keyring does.

    Keys are `host[:port][/path]` (a scheme is ignored; `*.example.com` globs one DNS label per
    `*`); an image matches a key whose host matches its registry and whose path is a prefix of its
    repository path; the longest matching key wins. Docker Hub's spellings are one registry.
    """

    entries: list[tuple[str, str, Credentials]] = field(default_factory=list)  # (host, path, credentials)

    def add(self, key: str, credentials: Credentials) -> None:
        host, path = _split_key(key)
        self.entries.append((host, path, credentials))

    def add_docker_config(self, document: bytes | str | dict, where: str) -> None:
        """A `.dockerconfigjson` (with `auths`) or an old `.dockercfg` (the map itself)."""
        if not isinstance(document, dict):
            try:
                document = json.loads(document)
            except ValueError as error:
                raise AuthConfigError(f"{where}: not valid JSON ({error})") from None
        if not isinstance(document, dict):
            raise AuthConfigError(f"{where}: must be a JSON object")
        auths = document.get("auths", document)
        if not isinstance(auths, dict):
            raise AuthConfigError(f"{where}.auths: must be an object of registry -> credentials")
        for key, entry in auths.items():
            self.add(key, credentials_from_entry(entry, f"{where}.auths[{key!r}]"))

    def lookup(self, registry: str, repository: str) -> list[Credentials]:
        """Credentials to try for `registry/repository`, best match first."""
        registry = _canonical_host(registry)
        found = []
        for host, path, credentials in self.entries:
            if _host_matches(host, registry) and (not path or repository == path or repository.startswith(path + "/")):
                found.append((len(host) + len(path), credentials))
        found.sort(key=lambda item: -item[0])
        result: list[Credentials] = []
        for _, credentials in found:
            if credentials not in result:
                result.append(credentials)
        return result


def _split_key(key: str) -> tuple[str, str]:
    if "://" not in key:
        key = "https://" + key
    parts = urlsplit(key)
    host = _canonical_host(parts.netloc)
    path = parts.path.strip("/")
    if host == "docker.io" and path in ("v1", "v2"):  # https://index.docker.io/v1/
        path = ""
    return host, path


def _canonical_host(host: str) -> str:
    host = host.lower()
    return "docker.io" if host in _DOCKER_HUB_KEYS else host


def _host_matches(pattern: str, host: str) -> bool:
    if "*" not in pattern:
        return pattern == host
    pattern_labels, host_labels = pattern.split("."), host.split(".")
    return len(pattern_labels) == len(host_labels) and all(
        fnmatch.fnmatchcase(label, wanted) for wanted, label in zip(pattern_labels, host_labels, strict=True))
