"""The registry client against an in-memory registry (httpx.MockTransport): auth flows, manifests,
digest checks, retries, resumed blobs, mirrors."""

from __future__ import annotations

import base64
import hashlib
import json

import httpx
import pytest

from minikube_py.runtime.images.auth import Credentials, Keyring
from minikube_py.runtime.images.hosts import RegistriesConfigError, RegistryHosts
from minikube_py.runtime.images.reference import parse
from minikube_py.runtime.images.registry import DOCKER_MANIFEST, OCI_INDEX, RegistryClient, RegistryError, RetryPolicy


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


LAYER = b"layer-bytes" * 1000
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                       "config": {"digest": digest_of(b"{}"), "size": 2},
                       "layers": [{"digest": digest_of(LAYER), "size": len(LAYER)}]}).encode()


class FakeRegistry:
    """A distribution-like registry: token auth or basic auth, manifests by tag and digest, blobs."""

    def __init__(self, auth: str = "", users: dict | None = None):
        self.auth = auth  # "", "bearer" or "basic"
        self.users = users or {}
        self.manifests = {"v1": MANIFEST, digest_of(MANIFEST): MANIFEST}
        self.blobs = {digest_of(LAYER): LAYER}
        self.requests: list[httpx.Request] = []
        self.failures_left = 0  # answer 503 this many times first
        self.cut_blob_once = False
        self.ranges_supported = True

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/token":
            basic = request.headers.get("Authorization", "")
            if basic and not self._valid_basic(basic):
                return httpx.Response(401)
            return httpx.Response(200, json={"token": "tok-" + ("user" if basic else "anon")})
        if self.failures_left:
            self.failures_left -= 1
            return httpx.Response(503)
        if not self._authorized(request):
            challenge = ('Bearer realm="https://reg.test/token",service="reg.test"' if self.auth == "bearer"
                         else 'Basic realm="reg"')
            return httpx.Response(401, headers={"WWW-Authenticate": challenge},
                                  json={"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]})
        _, _, repository_and_rest = request.url.path.partition("/v2/")
        kind, name = repository_and_rest.split("/")[-2:]
        if kind == "manifests":
            if name not in self.manifests:
                return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]})
            body = self.manifests[name]
            return httpx.Response(200, content=body, headers={"Content-Type": DOCKER_MANIFEST,
                                                               "Docker-Content-Digest": digest_of(body)})
        body = self.blobs.get(name)
        if body is None:
            return httpx.Response(404)
        start = 0
        if "Range" in request.headers and self.ranges_supported:
            start = int(request.headers["Range"].split("=")[1].rstrip("-"))
        if self.cut_blob_once:
            self.cut_blob_once = False
            return httpx.Response(200, content=body[: len(body) // 2])
        return httpx.Response(206 if start else 200, content=body[start:])

    def _valid_basic(self, header: str) -> bool:
        user, _, password = base64.b64decode(header.split()[1]).decode().partition(":")
        return self.users.get(user) == password

    def _authorized(self, request: httpx.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if self.auth == "bearer":
            return header.startswith("Bearer tok-") and (not self.users or header == "Bearer tok-user")
        if self.auth == "basic":
            return header.startswith("Basic ") and self._valid_basic(header)
        return True


def client_for(registry: FakeRegistry, hosts: RegistryHosts | None = None) -> RegistryClient:
    return RegistryClient(hosts, RetryPolicy(attempts=3, first_delay=0.01), transport=httpx.MockTransport(registry.handler),
                          sleep=lambda seconds: None)


def keyring(user: str, password: str) -> Keyring:
    ring = Keyring()
    ring.add("reg.test", Credentials(user, password))
    return ring


def test_an_anonymous_bearer_challenge_is_answered_with_a_token():
    registry = FakeRegistry(auth="bearer")
    manifest = client_for(registry).repository(parse("reg.test/team/app:v1")).manifest("v1")
    assert manifest.digest == digest_of(MANIFEST) and not manifest.is_index
    token_request = next(r for r in registry.requests if r.url.path == "/token")
    assert token_request.url.params["scope"] == "repository:team/app:pull"
    assert token_request.url.params["service"] == "reg.test"
    assert "Authorization" not in token_request.headers


def test_credentials_go_to_the_token_server_and_a_wrong_password_is_unauthorized():
    registry = FakeRegistry(auth="bearer", users={"alice": "pw"})
    client = client_for(registry)
    assert client.repository(parse("reg.test/team/app:v1"), keyring("alice", "pw")).manifest("v1").digest
    with pytest.raises(RegistryError) as raised:
        client.repository(parse("reg.test/team/app:v1"), keyring("alice", "wrong")).manifest("v1")
    assert raised.value.kind == "unauthorized" and "unauthorized" in raised.value.message


def test_a_token_is_reused_for_the_next_request():
    registry = FakeRegistry(auth="bearer")
    repository = client_for(registry).repository(parse("reg.test/team/app:v1"))
    repository.manifest("v1")
    repository.manifest("v1")
    assert sum(1 for r in registry.requests if r.url.path == "/token") == 1


def test_basic_auth_sends_the_credentials_and_without_them_is_unauthorized():
    registry = FakeRegistry(auth="basic", users={"bob": "pw"})
    client = client_for(registry)
    assert client.repository(parse("reg.test/team/app:v1"), keyring("bob", "pw")).manifest("v1").digest
    with pytest.raises(RegistryError, match="authorization") as raised:
        client.repository(parse("reg.test/team/app:v1")).manifest("v1")
    assert raised.value.kind == "unauthorized"


def test_an_unknown_tag_is_not_found():
    with pytest.raises(RegistryError, match="reg.test/team/app:nope: not found") as raised:
        client_for(FakeRegistry()).repository(parse("reg.test/team/app:nope")).manifest("nope")
    assert raised.value.kind == "not_found"


def test_a_manifest_whose_digest_differs_from_the_one_asked_for_is_refused():
    registry = FakeRegistry()
    wanted = "sha256:" + "0" * 64
    registry.manifests[wanted] = MANIFEST
    with pytest.raises(RegistryError, match="refusing it") as raised:
        client_for(registry).repository(parse("reg.test/team/app")).manifest(wanted)
    assert raised.value.kind == "invalid"


def test_an_html_answer_is_not_taken_for_a_manifest():
    def html(request):
        return httpx.Response(200, content=b"<html>login</html>", headers={"Content-Type": "text/html"})
    client = RegistryClient(transport=httpx.MockTransport(html), sleep=lambda s: None)
    with pytest.raises(RegistryError, match="not a manifest"):
        client.repository(parse("reg.test/team/app:v1")).manifest("v1")


def test_an_index_is_recognized():
    registry = FakeRegistry()
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode()
    registry.manifests["multi"] = index
    assert client_for(registry).repository(parse("reg.test/a:multi")).manifest("multi").is_index


def test_server_errors_are_retried_with_back_off_then_succeed():
    registry = FakeRegistry()
    registry.failures_left = 2
    assert client_for(registry).repository(parse("reg.test/a:v1")).manifest("v1").digest == digest_of(MANIFEST)


def test_a_registry_that_keeps_failing_is_unavailable():
    registry = FakeRegistry()
    registry.failures_left = 100
    with pytest.raises(RegistryError) as raised:
        client_for(registry).repository(parse("reg.test/a:v1")).manifest("v1")
    assert raised.value.kind == "unavailable" and "503" in raised.value.message


def test_a_blob_is_verified_and_a_cut_download_resumes_with_a_range(tmp_path):
    registry = FakeRegistry()
    registry.cut_blob_once = True
    destination, partial = str(tmp_path / "blob"), str(tmp_path / "blob.partial")
    seen = []
    client_for(registry).repository(parse("reg.test/a:v1")).fetch_blob(
        digest_of(LAYER), len(LAYER), destination, partial, progress=seen.append)
    assert open(destination, "rb").read() == LAYER
    assert any(r.headers.get("Range") == f"bytes={len(LAYER) // 2}-" for r in registry.requests)
    assert seen[-1] == len(LAYER) and seen == sorted(seen)


def test_a_corrupted_blob_is_refused_and_nothing_is_kept(tmp_path):
    registry = FakeRegistry()
    registry.blobs[digest_of(LAYER)] = LAYER[:-1] + b"X"
    destination, partial = str(tmp_path / "blob"), str(tmp_path / "blob.partial")
    with pytest.raises(RegistryError, match="refusing it") as raised:
        client_for(registry).repository(parse("reg.test/a:v1")).fetch_blob(digest_of(LAYER), len(LAYER), destination, partial)
    assert raised.value.kind == "invalid"
    assert not (tmp_path / "blob").exists() and not (tmp_path / "blob.partial").exists()


def test_mirrors_are_tried_first_then_the_registry_itself():
    hosts = RegistryHosts.from_document({"mirrors": {"reg.test": {"endpoint": ["http://mirror.test:5000"],
                                                                  "rewrite": {"^team/(.*)": "cache/$1"}}}}, "r.yaml")
    seen = []

    def handler(request):
        seen.append(str(request.url))
        if request.url.host == "mirror.test":
            return httpx.Response(404)
        return FakeRegistry().handler(request)

    client = RegistryClient(hosts, transport=httpx.MockTransport(handler), sleep=lambda s: None)
    client.repository(parse("reg.test/team/app:v1")).manifest("v1")
    assert seen == ["http://mirror.test:5000/v2/cache/app/manifests/v1", "https://reg.test/v2/team/app/manifests/v1"]


def test_loopback_registries_fall_back_to_plain_http_and_docker_hub_uses_its_endpoint():
    hosts = RegistryHosts()
    assert [e.url for e in hosts.endpoints("127.0.0.1:5000")] == ["https://127.0.0.1:5000", "http://127.0.0.1:5000"]
    assert [e.url for e in hosts.endpoints("docker.io")] == ["https://registry-1.docker.io"]


@pytest.mark.parametrize("document, message", [
    ({"mirrors": []}, "mirrors: must be a mapping"),
    ({"mirrors": {"docker.io": {"endpoint": "x"}}}, "endpoint: must be a list"),
    ({"mirrors": {"docker.io": {"endpoint": ["ftp://x"]}}}, "is not http"),
    ({"configs": {"r": {"tls": {"ca": "x"}}}}, "unknown fields"),
    ({"configs": {"r": {"auth": {"auth": "!!"}}}}, "not base64"),
])
def test_bad_registries_yaml_names_the_field(document, message):
    with pytest.raises(RegistriesConfigError, match=message):
        RegistryHosts.from_document(document, "registries.yaml")
