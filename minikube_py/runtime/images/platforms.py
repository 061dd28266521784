"""Choosing one image manifest from a multi-platform index for this machine, as containerd does.

A manifest list (Docker) or image index (OCI) names one manifest per platform (`os`,
`architecture`, `variant`). We take the host's: Linux and the normalized architecture of the
machine (`x86_64` is `amd64`, `aarch64` is `arm64`, whose default variant is `v8`). An exact
variant beats an unspecified one; entries without a platform or for `unknown` (build
attestations) never match. No match is containerd's `no match for platform in manifest`.
"""

from __future__ import annotations

import platform as host_platform
from dataclasses import dataclass

_ARCHITECTURES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm",
                  "i386": "386", "i686": "386"}
_DEFAULT_VARIANTS = {"arm64": "v8", "arm": "v7"}


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)


def normalize(os_name: str, architecture: str, variant: str = "") -> Platform:
    architecture = _ARCHITECTURES.get(architecture.lower(), architecture.lower())
    variant = variant.lower()
    if architecture == "arm64" and variant in ("8", "v8"):
        variant = ""  # containerd treats arm64/v8 and arm64 as one platform
    if architecture == "arm" and variant in ("", "7"):
        variant = "v7"
    return Platform(os_name.lower(), architecture, variant)


def host() -> Platform:
    return normalize("linux", host_platform.machine())


def parse(text: str) -> Platform:
    """`linux/amd64`, `linux/arm64/v8`, `linux/arm/v6` (an `--platform` flag's value)."""
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"platform {text!r}: expected os/architecture[/variant], like linux/amd64")
    return normalize(*parts)


class NoMatchingPlatform(LookupError):
    pass


def select(manifests: list[dict], wanted: Platform) -> dict:
    """The descriptor of `manifests` (an index's list) for `wanted`; NoMatchingPlatform when none fits."""
    best: tuple[int, dict] | None = None
    for descriptor in manifests:
        described = descriptor.get("platform")
        if not isinstance(described, dict):
            continue
        offered = normalize(str(described.get("os", "")), str(described.get("architecture", "")),
                            str(described.get("variant", "")))
        if offered.os != wanted.os or offered.architecture != wanted.architecture:
            continue
        if offered.variant == wanted.variant:
            score = 2
        elif not offered.variant or not wanted.variant:
            score = 1
        else:
            continue
        if best is None or score > best[0]:
            best = (score, descriptor)
    if best is None:
        offered_list = ", ".join(sorted({str(normalize(str(d.get("platform", {}).get("os", "")),
                                                       str(d.get("platform", {}).get("architecture", "")),
                                                       str(d.get("platform", {}).get("variant", ""))))
                                        for d in manifests if isinstance(d.get("platform"), dict)}))
        raise NoMatchingPlatform(f"no match for platform in manifest: not found (wanted {wanted}; the index offers "
                                 f"{offered_list or 'no platforms'})")
    return best[1]
