"""Platform selection from an image index."""

from __future__ import annotations

import pytest

from minikube_py.runtime.images import platforms
from minikube_py.runtime.images.platforms import NoMatchingPlatform, Platform, select


def entry(digest: str, os_name: str, architecture: str, variant: str | None = None) -> dict:
    described = {"os": os_name, "architecture": architecture}
    if variant is not None:
        described["variant"] = variant
    return {"digest": digest, "platform": described}


INDEX = [
    entry("amd", "linux", "amd64"),
    entry("armv6", "linux", "arm", "v6"),
    entry("armv7", "linux", "arm", "v7"),
    entry("arm64", "linux", "arm64", "v8"),
    entry("win", "windows", "amd64"),
    entry("attestation", "unknown", "unknown"),
]


@pytest.mark.parametrize("wanted, digest", [
    ("linux/amd64", "amd"),
    ("linux/arm64", "arm64"),
    ("linux/arm64/v8", "arm64"),
    ("linux/arm/v6", "armv6"),
    ("linux/arm", "armv7"),
    ("windows/amd64", "win"),
])
def test_the_wanted_platform_and_variant_are_picked(wanted, digest):
    assert select(INDEX, platforms.parse(wanted))["digest"] == digest


def test_an_exact_variant_beats_an_unspecified_one():
    index = [entry("plain", "linux", "arm", ""), entry("v6", "linux", "arm", "v6")]
    assert select(index, Platform("linux", "arm", "v6"))["digest"] == "v6"


def test_no_matching_platform_says_what_was_wanted_and_offered():
    with pytest.raises(NoMatchingPlatform, match=r"no match for platform in manifest: not found \(wanted linux/s390x; "
                                                 r"the index offers linux/amd64\)"):
        select([entry("amd", "linux", "amd64")], Platform("linux", "s390x"))


def test_host_architecture_names_are_normalized():
    assert platforms.normalize("Linux", "x86_64") == Platform("linux", "amd64")
    assert platforms.normalize("linux", "aarch64") == Platform("linux", "arm64")
    assert platforms.host().os == "linux"
