"""Pulling into the store from an in-memory registry: index and platform, shared layers, one
download for concurrent pulls, damaged blobs re-fetched, containerd's error messages."""

from __future__ import annotations

import gzip
import json
import os
import threading

import httpx
import pytest

from minikube_py.runtime.images import ImageStore
from minikube_py.runtime.images.platforms import Platform
from minikube_py.runtime.images.puller import PullError, Puller
from minikube_py.runtime.images.registry import (DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, RegistryClient,
                                                   RetryPolicy)
from tests.unit.test_image_registry import FakeRegistry, digest_of
from tests.unit.test_images import Layer


def publish(registry: FakeRegistry, tag: str, layer_tars: list[bytes], cmd: list[str], index: bool = False) -> str:
    blobs = [gzip.compress(tar) for tar in layer_tars]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": cmd},
                         "rootfs": {"type": "layers", "diff_ids": [digest_of(tar) for tar in layer_tars]}}).encode()
    for blob in (*blobs, config):
        registry.blobs[digest_of(blob)] = blob
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest_of(config), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest_of(b),
                                       "size": len(b)} for b in blobs]}).encode()
    registry.manifests[digest_of(manifest)] = manifest
    top = manifest
    if index:
        top = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"digest": "sha256:" + "9" * 64, "size": 1, "platform": {"os": "linux", "architecture": "arm64"}},
            {"digest": digest_of(manifest), "size": len(manifest), "platform": {"os": "linux", "architecture": "amd64"}},
        ]}).encode()
        registry.manifests[digest_of(top)] = top
    registry.manifests[tag] = top
    return digest_of(top)


BASE = Layer().file("base/lib", b"B" * 200_000).bytes()


@pytest.fixture
def registry():
    return FakeRegistry()


@pytest.fixture
def puller(registry, tmp_path):
    client = RegistryClient(retry=RetryPolicy(attempts=2, first_delay=0.01), transport=httpx.MockTransport(registry.handler),
                            sleep=lambda seconds: None)
    return Puller(ImageStore(str(tmp_path / "home")), client, platform=Platform("linux", "amd64"))


def test_a_multi_platform_image_is_pulled_for_the_wanted_platform(registry, puller):
    top = publish(registry, "v1", [BASE, Layer().file("app", b"A").bytes()], ["app"], index=True)
    result = puller.pull("reg.test/team/app:v1")
    assert result.reference == "reg.test/team/app:v1"
    assert result.repo_digest == f"reg.test/team/app@{top}"
    assert result.image.config.cmd == ["app"] and len(result.image.layers) == 2
    assert open(os.path.join(result.image.layers[1], "app")).read() == "A"
    assert result.image.repo_digest == result.repo_digest
    assert puller.store.resolve(f"reg.test/team/app@{top}").id == result.image.id
    assert os.listdir(puller.store.ingest_directory) == []


def test_a_second_image_on_the_same_base_downloads_only_its_own_layer(registry, puller):
    publish(registry, "one", [BASE, Layer().file("one", b"1").bytes()], ["one"])
    publish(registry, "two", [BASE, Layer().file("two", b"2").bytes()], ["two"])
    puller.pull("reg.test/app:one")
    registry.requests.clear()
    second = puller.pull("reg.test/app:two")
    assert sum(1 for r in registry.requests if "/blobs/" in r.url.path) == 2  # config and the top layer
    assert second.downloaded < 1000


def test_concurrent_pulls_of_one_reference_share_one_download(registry, puller):
    publish(registry, "v1", [BASE], ["x"])
    gate = threading.Event()
    original = registry.handler

    def slow(request):
        gate.wait(5)
        return original(request)

    puller.client.transport = httpx.MockTransport(slow)
    results = []
    threads = [threading.Thread(target=lambda: results.append(puller.pull("reg.test/app:v1"))) for _ in range(3)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(10)
    assert len(results) == 3 and sum(1 for result in results if result.shared) == 2
    assert sum(1 for r in registry.requests if "/manifests/" in r.url.path) == 1


def test_a_damaged_layer_is_fetched_again_once(registry, puller):
    publish(registry, "v1", [BASE], ["x"])
    digest = next(d for d, blob in registry.blobs.items() if blob[:2] == b"\x1f\x8b")
    good = registry.blobs[digest]
    served = []
    original = registry.handler

    def damaging(request):
        response = original(request)
        if request.url.path.endswith(digest) and not served:
            served.append(1)
            return httpx.Response(200, content=good[:-4] + b"XXXX")
        return response

    puller.client.transport = httpx.MockTransport(damaging)
    assert puller.pull("reg.test/app:v1").image.layers


def test_a_missing_tag_says_not_found_in_containerds_words(puller):
    with pytest.raises(PullError) as raised:
        puller.pull("reg.test/team/app:nope")
    assert raised.value.kind == "not_found"
    assert raised.value.message == ('failed to pull and unpack image "reg.test/team/app:nope": failed to resolve reference '
                                    '"reg.test/team/app:nope": reg.test/team/app:nope: not found')


def test_an_index_without_this_platform_is_refused_and_nothing_is_recorded(registry, puller):
    publish(registry, "v1", [BASE], ["x"], index=True)
    puller.platform = Platform("linux", "s390x")
    with pytest.raises(PullError, match="no match for platform in manifest"):
        puller.pull("reg.test/app:v1")
    assert puller.store.list() == []


def test_a_config_that_differs_from_its_digest_is_refused_and_nothing_recorded(registry, puller):
    publish(registry, "v1", [BASE], ["x"])
    config_digest, config = next((d, b) for d, b in registry.blobs.items() if b.startswith(b"{"))
    registry.blobs[config_digest] = config.replace(digest_of(BASE).encode(), b"sha256:" + b"0" * 64)
    with pytest.raises(PullError):
        puller.pull("reg.test/app:v1")
    assert puller.store.list() == []


def test_a_download_cut_while_unpacking_resumes_from_what_was_kept(registry, puller):
    publish(registry, "v1", [Layer().file("big", os.urandom(300_000)).bytes()], ["x"])
    layer = next(d for d, blob in registry.blobs.items() if blob[:2] == b"\x1f\x8b")
    original, cut = registry.handler, []

    def cutting(request):
        if request.url.path.endswith(layer) and not cut:
            cut.append(1)  # the first answer for the layer stops half-way
            return httpx.Response(200, content=registry.blobs[layer][: len(registry.blobs[layer]) // 2])
        return original(request)

    puller.client.transport = httpx.MockTransport(cutting)
    assert puller.pull("reg.test/app:v1").image.layers
    ranges = [r.headers["Range"] for r in registry.requests if "Range" in r.headers]
    assert ranges == [f"bytes={len(registry.blobs[layer]) // 2}-"]
    assert os.listdir(puller.store.ingest_directory) == []


def test_a_loopback_registry_found_to_be_plain_http_is_not_tried_over_tls_again_in_one_pull(registry, puller):
    publish(registry, "v1", [BASE, Layer().file("app", b"A").bytes()], ["app"])
    tls_attempts = []

    def plain_http_server(request):
        if request.url.scheme == "https":
            tls_attempts.append(request.url.path)
            raise httpx.ConnectError("[SSL: WRONG_VERSION_NUMBER] wrong version number", request=request)
        return registry.handler(request)

    puller.client.transport = httpx.MockTransport(plain_http_server)
    assert len(puller.pull("127.0.0.1:5000/team/app:v1").image.layers) == 2
    assert len(tls_attempts) == 1 and tls_attempts[0].endswith("/manifests/v1")
    assert sum(1 for r in registry.requests if "/blobs/" in r.url.path) == 3  # config and two layers, over http


DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def publish_docker(registry: FakeRegistry, tag: str, layer_tars: list[bytes], cmd: list[str]) -> str:
    """An image as `docker push` writes it: a manifest list over Docker schema 2 manifests."""
    blobs = [gzip.compress(tar) for tar in layer_tars]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": cmd},
                         "rootfs": {"type": "layers", "diff_ids": [digest_of(tar) for tar in layer_tars]}}).encode()
    for blob in (*blobs, config):
        registry.blobs[digest_of(blob)] = blob
    manifest = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                           "config": {"mediaType": DOCKER_CONFIG, "digest": digest_of(config), "size": len(config)},
                           "layers": [{"mediaType": DOCKER_LAYER, "digest": digest_of(b), "size": len(b)}
                                      for b in blobs]}).encode()
    listing = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [
        {"mediaType": DOCKER_MANIFEST, "digest": "sha256:" + "8" * 64, "size": 1,
         "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
        {"mediaType": DOCKER_MANIFEST, "digest": digest_of(manifest), "size": len(manifest),
         "platform": {"os": "linux", "architecture": "amd64"}},
    ]}).encode()
    registry.manifests[digest_of(manifest)] = manifest
    registry.manifests[digest_of(listing)] = listing
    registry.manifests[tag] = listing
    return digest_of(listing)


def serving_media_types(registry: FakeRegistry):
    """The registry's handler with each manifest's own media type as its Content-Type, as Docker Hub answers."""
    def handler(request):
        response = registry.handler(request)
        if "/manifests/" in request.url.path and response.status_code == 200:
            body = response.read()
            return httpx.Response(200, content=body, headers={"Content-Type": json.loads(body)["mediaType"],
                                                              "Docker-Content-Digest": digest_of(body)})
        return response
    return httpx.MockTransport(handler)


def test_an_image_in_docker_media_types_is_pulled_through_its_manifest_list(registry, puller):
    top = publish_docker(registry, "v1", [BASE, Layer().file("app", b"A").bytes()], ["app"])
    puller.client.transport = serving_media_types(registry)
    result = puller.pull("reg.test/team/app:v1")
    assert result.repo_digest == f"reg.test/team/app@{top}"
    assert result.image.config.cmd == ["app"] and len(result.image.layers) == 2
    assert open(os.path.join(result.image.layers[1], "app")).read() == "A"
    assert open(os.path.join(result.image.layers[0], "base", "lib"), "rb").read() == b"B" * 200_000
    fetched = [r.url.path.rsplit("/", 1)[1] for r in registry.requests if "/manifests/" in r.url.path]
    chosen = json.loads(registry.manifests[top])["manifests"][1]["digest"]
    assert fetched == ["v1", chosen]  # the list by tag, then only the amd64 manifest
    assert registry.requests[0].headers["Accept"].split(", ")[:4] == [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST,
                                                                       DOCKER_MANIFEST]
    assert puller.store.resolve(f"reg.test/team/app@{top}").id == result.image.id


def test_the_layers_of_one_pull_download_at_the_same_time(registry, puller):
    publish(registry, "v1", [BASE, Layer().file("app", os.urandom(50_000)).bytes()], ["app"])
    layers = {digest for digest, blob in registry.blobs.items() if blob[:2] == b"\x1f\x8b"}
    both_in_flight = threading.Barrier(2)
    one_at_a_time = []

    def waiting_for_the_other_layer(request):
        if request.url.path.rsplit("/", 1)[1] in layers:
            try:
                both_in_flight.wait(5)  # opens only when the second layer's request arrives too
            except threading.BrokenBarrierError:
                one_at_a_time.append(request.url.path)
        return registry.handler(request)

    puller.client.transport = httpx.MockTransport(waiting_for_the_other_layer)
    assert len(puller.pull("reg.test/app:v1").image.layers) == 2
    assert one_at_a_time == [], "the layers were requested one after the other"
