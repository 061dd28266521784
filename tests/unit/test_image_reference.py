"""Reference parsing against Docker's own table (distribution/reference normalize_test.go cases)."""

from __future__ import annotations

import pytest

from minikube_py.runtime.images.reference import InvalidReference, normalize, parse

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, full, familiar", [
    ("docker/docker", "docker.io/docker/docker:latest", "docker/docker"),
    ("library/debian", "docker.io/library/debian:latest", "debian"),
    ("debian", "docker.io/library/debian:latest", "debian"),
    ("localhost/library/debian", "localhost/library/debian:latest", "localhost/library/debian"),
    ("localhost/debian", "localhost/debian:latest", "localhost/debian"),
    ("LOCALDOMAIN/library/debian", "LOCALDOMAIN/library/debian:latest", "LOCALDOMAIN/library/debian"),
    ("docker.io/docker/docker", "docker.io/docker/docker:latest", "docker/docker"),
    ("docker.io/library/debian", "docker.io/library/debian:latest", "debian"),
    ("docker.io/debian", "docker.io/library/debian:latest", "debian"),
    ("index.docker.io/docker/docker", "docker.io/docker/docker:latest", "docker/docker"),
    ("index.docker.io/debian", "docker.io/library/debian:latest", "debian"),
    ("127.0.0.1:5000/docker/docker", "127.0.0.1:5000/docker/docker:latest", "127.0.0.1:5000/docker/docker"),
    ("127.0.0.1:5000/debian", "127.0.0.1:5000/debian:latest", "127.0.0.1:5000/debian"),
    ("192.168.0.1", "docker.io/library/192.168.0.1:latest", "192.168.0.1"),
    ("192.168.0.1:80", "docker.io/library/192.168.0.1:80", "192.168.0.1:80"),
    ("192.168.0.1:8/debian", "192.168.0.1:8/debian:latest", "192.168.0.1:8/debian"),
    ("[fc00::1]:5000/docker", "[fc00::1]:5000/docker:latest", "[fc00::1]:5000/docker"),
    ("[fc00:1:2:3:4:5:6:7]:5000/debian", "[fc00:1:2:3:4:5:6:7]:5000/debian:latest", "[fc00:1:2:3:4:5:6:7]:5000/debian"),
    ("docker.io/" + "1a3f" * 16, "docker.io/library/" + "1a3f" * 16 + ":latest", "1a3f" * 16),
    ("test_com/foo", "docker.io/test_com/foo:latest", "test_com/foo"),
    ("foo-bar.com:8080/a__b/c--d", "foo-bar.com:8080/a__b/c--d:latest", "foo-bar.com:8080/a__b/c--d"),
    ("nginx:1.27", "docker.io/library/nginx:1.27", "nginx:1.27"),
    (f"ghcr.io/org/app@{DIGEST}", f"ghcr.io/org/app@{DIGEST}", f"ghcr.io/org/app@{DIGEST}"),
    (f"nginx:1.27@{DIGEST}", f"docker.io/library/nginx:1.27@{DIGEST}", f"nginx:1.27@{DIGEST}"),
    ("127.0.0.1:5000/team/app:v1", "127.0.0.1:5000/team/app:v1", "127.0.0.1:5000/team/app:v1"),
])
def test_references_normalize_as_docker_does(text, full, familiar):
    assert normalize(text) == full
    assert parse(text).familiar() == familiar


@pytest.mark.parametrize("text, message", [
    ("", "must have at least one component"),
    ("https://github.com/docker/docker", "invalid reference format"),
    ("docker/Docker", "must be lowercase"),
    ("-docker", "invalid reference format"),
    ("-docker/docker", "invalid reference format"),
    ("-docker.io/docker/docker", "invalid reference format"),
    ("docker///docker", "invalid reference format"),
    ("docker.io/docker/Docker", "must be lowercase"),
    ("docker.io/docker///docker", "invalid reference format"),
    ("[fc00::1]", "invalid reference format"),
    ("[fc00::1]:5000", "invalid reference format"),
    ("fc00::1:5000/debian", "invalid reference format"),
    ("[fe80::1%eth0]:5000/debian", "invalid reference format"),
    ("foo_bar.com:8080/app", "invalid reference format"),
    ("[2001:db8:3:4::192.0.2.33]:5000/debian", "invalid reference format"),
    ("1a3f" * 16, "cannot specify 64-byte hexadecimal strings"),
    ("127.0.0.1:/docker", "invalid reference format"),
    ("nginx@sha256:abc", "invalid reference format"),
    ("nginx@sha256:" + "a" * 63 + "A", "invalid checksum digest"),
    ("nginx@md5:" + "a" * 32, "unsupported digest algorithm"),
    ("a:b:c", "invalid reference format"),
    ("nginx:" + "t" * 129, "invalid reference format"),
    ("a/" * 128 + "b", "must not be more than 255 characters"),
])
def test_invalid_references_say_why_in_dockers_words(text, message):
    with pytest.raises(InvalidReference, match=message.replace("(", r"\(")):
        parse(text)


def test_the_object_asked_for_is_the_digest_when_pinned_else_the_tag():
    assert parse("nginx").with_default_tag().object == "latest"
    assert parse("nginx:1").object == "1"
    assert parse(f"nginx:1@{DIGEST}").object == DIGEST
