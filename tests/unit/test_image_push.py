"""Pushing from the store to an in-memory registry that speaks the distribution spec's upload
protocol (HEAD, POST with and without `mount`, PATCH chunks, PUT): monolithic and chunked
uploads, blobs the repository has are not sent, a cross-repository mount sends none, a pulled
image goes out under its original manifest digest, and the repacked layer round-trips."""

from __future__ import annotations

import hashlib
import io
import os
import uuid

import httpx
import pytest

from minikube_py.runtime.images import ImageStore
from minikube_py.runtime.images.pack import pack_layer, write_layer_tar
from minikube_py.runtime.images.platforms import Platform
from minikube_py.runtime.images.puller import Puller
from minikube_py.runtime.images.push import Pusher, PushError
from minikube_py.runtime.images.registry import RegistryClient, RetryPolicy
from minikube_py.runtime.images.unpack import unpack
from tests.unit.test_images import Layer


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class UploadRegistry:
    """Blobs per repository (as distribution links them), upload sessions, manifests by tag and digest."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.links: dict[str, set[str]] = {}
        self.manifests: dict[tuple[str, str], tuple[str, bytes]] = {}
        self.sessions: dict[str, bytearray] = {}
        self.requests: list[tuple[str, str]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/v2/")
        self.requests.append((request.method, request.url.path))
        if "/blobs/uploads/" in path:
            repository, _, session = path.partition("/blobs/uploads/")
            return self._upload(request, repository, session)
        if "/blobs/" in path:
            repository, _, digest = path.partition("/blobs/")
            if digest in self.links.get(repository, set()):
                blob = self.blobs[digest]
                return httpx.Response(200, headers={"Content-Length": str(len(blob))},
                                      content=b"" if request.method == "HEAD" else blob)
            return httpx.Response(404, json={"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown"}]})
        repository, _, name = path.partition("/manifests/")
        if request.method == "PUT":
            body = request.read()
            self.manifests[(repository, name)] = self.manifests[(repository, digest_of(body))] = \
                (request.headers["Content-Type"], body)
            return httpx.Response(201, headers={"Docker-Content-Digest": digest_of(body)})
        if (repository, name) not in self.manifests:
            return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]})
        media_type, body = self.manifests[(repository, name)]
        return httpx.Response(200, headers={"Content-Type": media_type, "Docker-Content-Digest": digest_of(body)},
                              content=body)

    def _upload(self, request: httpx.Request, repository: str, session: str) -> httpx.Response:
        if request.method == "POST":
            mount, source = request.url.params.get("mount"), request.url.params.get("from")
            if mount and mount in self.links.get(source or "", set()):
                self.links.setdefault(repository, set()).add(mount)
                return httpx.Response(201)
            session = uuid.uuid4().hex
            self.sessions[session] = bytearray()
            return httpx.Response(202, headers={"Location": f"/v2/{repository}/blobs/uploads/{session}"})
        if request.method == "PATCH":
            start = int(request.headers["Content-Range"].split("-")[0])
            assert start == len(self.sessions[session]), "chunks arrive in order"
            self.sessions[session] += request.read()
            return httpx.Response(202, headers={"Location": f"/v2/{repository}/blobs/uploads/{session}"})
        if request.method == "PUT":
            data = bytes(self.sessions.pop(session)) + request.read()
            digest = request.url.params["digest"]
            if digest_of(data) != digest:
                return httpx.Response(400, json={"errors": [{"code": "DIGEST_INVALID", "message": "digest invalid"}]})
            self.blobs[digest] = data
            self.links.setdefault(repository, set()).add(digest)
            return httpx.Response(201)
        return httpx.Response(204)

    def count(self, method: str, part: str = "") -> int:
        return sum(1 for verb, path in self.requests if verb == method and part in path)


@pytest.fixture
def registry():
    return UploadRegistry()


@pytest.fixture
def client(registry):
    return RegistryClient(retry=RetryPolicy(attempts=2, first_delay=0.01), transport=httpx.MockTransport(registry.handler),
                          sleep=lambda seconds: None)


def made_image(store: ImageStore, name: str, payload: bytes) -> None:
    tar = Layer().file("app/data", payload).directory("app/empty").symlink("app/link", "data").bytes()
    store.import_rootfs(name, io.BytesIO(tar))


def test_a_pushed_image_pulls_back_with_the_same_files_and_config(registry, client, tmp_path):
    store = ImageStore(str(tmp_path / "a"))
    made_image(store, "reg.test/team/app:v1", b"x" * 5000)
    result = Pusher(store, client).push("reg.test/team/app:v1")
    assert result.digest == digest_of(registry.manifests[("team/app", "v1")][1])
    assert registry.count("PATCH") == 0, "a small blob goes in one PUT"
    pulled = Puller(ImageStore(str(tmp_path / "b")), client, platform=Platform("linux", "amd64")).pull("reg.test/team/app:v1")
    assert open(os.path.join(pulled.image.layers[0], "app", "data"), "rb").read() == b"x" * 5000
    assert os.readlink(os.path.join(pulled.image.layers[0], "app", "link")) == "data"
    assert pulled.image.config.env == store.resolve("reg.test/team/app:v1").config.env
    assert pulled.repo_digest == f"reg.test/team/app@{result.digest}"


def test_a_large_blob_goes_in_chunks_and_a_second_push_sends_no_layer(registry, client, tmp_path):
    store = ImageStore(str(tmp_path / "a"))
    made_image(store, "reg.test/team/app:v1", os.urandom(300_000))
    Pusher(store, client, chunk_size=64 * 1024).push("reg.test/team/app:v1")
    assert registry.count("PATCH") >= 4
    registry.requests.clear()
    Pusher(store, client, chunk_size=64 * 1024).push("reg.test/team/app:v1")
    assert registry.count("PATCH") == 0 and registry.count("POST") == 0, registry.requests


def test_a_pulled_image_pushed_to_another_repository_mounts_its_layers_and_keeps_its_digest(registry, client, tmp_path):
    first = ImageStore(str(tmp_path / "a"))
    made_image(first, "reg.test/team/app:v1", os.urandom(100_000))
    pushed = Pusher(first, client).push("reg.test/team/app:v1")
    store = ImageStore(str(tmp_path / "b"))
    Puller(store, client, platform=Platform("linux", "amd64")).pull("reg.test/team/app:v1")
    store.tag("reg.test/team/app:v1", "reg.test/other/copy:v2")
    registry.requests.clear()
    copied = Pusher(store, client).push("reg.test/other/copy:v2")
    assert copied.digest == pushed.digest
    assert registry.count("POST", "/other/copy/blobs/uploads/") >= 1
    assert registry.count("PATCH") == 0 and registry.count("PUT", "/blobs/uploads/") <= 1  # the config at most
    assert copied.uploaded < 2000


def test_pushing_an_image_that_is_not_here_names_it(client, tmp_path):
    with pytest.raises(PushError) as caught:
        Pusher(ImageStore(str(tmp_path / "a")), client).push("reg.test/team/nothing:v1")
    assert caught.value.kind == "not_found"
    assert "An image does not exist locally with the tag: reg.test/team/nothing:v1" in caught.value.message
    with pytest.raises(PushError, match="not a digest"):
        Pusher(ImageStore(str(tmp_path / "a")), client).push("reg.test/team/app@sha256:" + "a" * 64)


def test_a_registry_that_refuses_the_push_says_so(tmp_path):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "HEAD":
            return httpx.Response(404)
        return httpx.Response(403, json={"errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]})

    client = RegistryClient(retry=RetryPolicy(attempts=1), transport=httpx.MockTransport(handler))
    store = ImageStore(str(tmp_path / "a"))
    made_image(store, "reg.test/team/app:v1", b"x")
    with pytest.raises(PushError) as caught:
        Pusher(store, client).push("reg.test/team/app:v1")
    assert caught.value.kind == "unauthorized"
    assert caught.value.message.startswith('failed to push "reg.test/team/app:v1": push access denied')
    assert "requested access to the resource is denied" in caught.value.message


def test_a_packed_layer_unpacks_to_the_same_diff_id_and_packs_again_the_same(tmp_path):
    source = tmp_path / "source"
    tar = Layer().file("etc/config", b"a=b").directory("var/empty").symlink("etc/link", "config").hardlink("etc/again", "etc/config").bytes()
    os.mkdir(source)
    unpack(io.BytesIO(tar), str(source), "test")
    packed = pack_layer(str(source), str(tmp_path))
    again = tmp_path / "again"
    os.mkdir(again)
    with open(packed.blob_path, "rb") as blob:
        assert unpack(blob, str(again), "test").diff_id == packed.diff_id
    assert write_layer_tar(str(again), io.BytesIO()) == packed.diff_id
    assert os.stat(again / "etc" / "again").st_ino == os.stat(again / "etc" / "config").st_ino


@pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts are character devices and opaque dirs trusted xattrs: root only")
def test_whiteouts_and_opaque_directories_pack_as_oci_whiteouts(tmp_path):
    source = tmp_path / "source"
    tar = Layer().file("gone/.wh.old", b"").file("fresh/.wh..wh..opq", b"").file("fresh/new", b"n").bytes()
    os.mkdir(source)
    unpack(io.BytesIO(tar), str(source), "test")
    output = io.BytesIO()
    write_layer_tar(str(source), output)
    import tarfile

    names = tarfile.open(fileobj=io.BytesIO(output.getvalue())).getnames()
    assert "gone/.wh.old" in names and "fresh/.wh..wh..opq" in names and "fresh/new" in names
    assert "gone/old" not in names


def test_an_imported_image_pushes_its_own_blob_and_keeps_its_id(registry, client, tmp_path):
    store = ImageStore(str(tmp_path / "a"))
    made_image(store, "reg.test/team/app:v1", b"y" * 1000)
    image = store.resolve("reg.test/team/app:v1")
    assert store.has_blob(store.layer_blob(image.diff_ids[0])), "the layer keeps a gzip blob of its tar"
    result = Pusher(store, client).push("reg.test/team/app:v1")
    assert store.resolve("reg.test/team/app:v1").repo_digests == [f"reg.test/team/app@{result.digest}"]
    pulled = Puller(ImageStore(str(tmp_path / "b")), client, platform=Platform("linux", "amd64")).pull("reg.test/team/app:v1")
    assert pulled.image.id == image.id
