"""Image references parsed and normalized exactly as Docker's distribution/reference does.

A pod's `image:` is a reference: `[domain/]path[:tag][@digest]`. Docker's rules decide what a
short name means (`nginx` is `docker.io/library/nginx:latest`, `user/app` is on Docker Hub,
`host:5000/app` and `localhost/app` are not), and every registry client in the ecosystem
(containerd, CRI-O, kubelet's credential matching) follows them, so ours does too: the grammar
below is distribution/reference's, and `tests/unit/test_image_reference.py` carries its table.

    reference        := name [ ":" tag ] [ "@" digest ]
    name             := [domain "/"] path-component ["/" path-component]*
    domain           := host [":" port]    host: DNS labels joined by ".", or "[IPv6]"
    path-component   := [a-z0-9]+ (separator [a-z0-9]+)*    separator: "." "_" "__" "-"+
    tag              := [\\w][\\w.-]{0,127}
    digest           := algorithm ":" hex   (sha256: 64 lower-case hex digits)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPOSITORY_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALPHANUMERIC}(?:{_SEPARATOR}{_ALPHANUMERIC})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
REFERENCE_PATTERN = re.compile(rf"({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?")
_ANCHORED_ID = re.compile(r"[a-f0-9]{64}")
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


class InvalidReference(ValueError):
    """A reference that does not parse; the message is Docker's (`invalid reference format`, ...)."""


@dataclass(frozen=True)
class Reference:
    """A normalized reference: `domain` is never empty, Docker Hub paths carry `library/`."""

    domain: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        """`docker.io/library/nginx`: the repository with its registry."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def familiar_name(self) -> str:
        """The short form Docker prints: `nginx`, `user/app`, `ghcr.io/org/app`."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        path = self.path
        if path.startswith(OFFICIAL_REPOSITORY_PREFIX) and path.count("/") == 1:
            path = path[len(OFFICIAL_REPOSITORY_PREFIX):]
        return path

    def familiar(self) -> str:
        text = self.familiar_name()
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def with_default_tag(self) -> "Reference":
        """`:latest` when there is neither tag nor digest (containerd's TagNameOnly rule)."""
        if self.tag or self.digest:
            return self
        return Reference(self.domain, self.path, DEFAULT_TAG)

    @property
    def object(self) -> str:
        """What to ask the registry's manifests endpoint for: the digest when pinned, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG


def split_docker_domain(name: str) -> tuple[str, str]:
    """(domain, path) of a name as Docker reads it: the first component is a registry only if it
    has a "." or ":" or is `localhost` (and is not upper-case); otherwise it is Docker Hub."""
    first, slash, rest = name.partition("/")
    if not slash or ("." not in first and ":" not in first and first != "localhost" and first.lower() == first):
        domain, path = DEFAULT_DOMAIN, name
    else:
        domain, path = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_REPOSITORY_PREFIX + path
    return domain, path


def parse(text: str) -> Reference:
    """A normalized reference from what a user wrote (docker's ParseNormalizedNamed)."""
    if _ANCHORED_ID.fullmatch(text):
        raise InvalidReference(f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings")
    name_part, at, digest_part = text.partition("@")
    # The tag's colon is the last one after the last slash (a domain's port comes before a slash).
    colon = name_part.rfind(":")
    if colon > name_part.rfind("/"):
        name_only, tag_part = name_part[:colon], name_part[colon:]
    else:
        name_only, tag_part = name_part, ""
    domain, path = split_docker_domain(name_only)
    if path.lower() != path:
        raise InvalidReference(f"invalid reference format: repository name ({path}) must be lowercase")
    return _parse_anchored(f"{domain}/{path}{tag_part}{at}{digest_part}", text)


def _parse_anchored(candidate: str, original: str) -> Reference:
    match = REFERENCE_PATTERN.fullmatch(candidate)
    if match is None:
        if not original:
            raise InvalidReference("invalid reference format: repository name must have at least one component")
        if REFERENCE_PATTERN.fullmatch(candidate.lower()):
            raise InvalidReference("invalid reference format: repository name must be lowercase")
        raise InvalidReference("invalid reference format")
    name, tag, digest = match.group(1), match.group(2) or "", match.group(3) or ""
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")
    if digest:
        algorithm, _, hex_digits = digest.partition(":")
        if algorithm not in _DIGEST_LENGTHS:
            raise InvalidReference("unsupported digest algorithm")
        if len(hex_digits) != _DIGEST_LENGTHS[algorithm] or hex_digits.lower() != hex_digits:
            raise InvalidReference("invalid checksum digest format" if hex_digits.lower() != hex_digits
                                   else "invalid checksum digest length")
    domain, _, path = name.partition("/")
    return Reference(domain, path, tag, digest)


def normalize(text: str) -> str:
    """The full string kubelet and containerd work with: `docker.io/library/nginx:latest`."""
    return str(parse(text).with_default_tag())
