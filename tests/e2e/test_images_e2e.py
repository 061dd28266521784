"""Images from a real registry on 127.0.0.1: a pod runs from it (the host's platform out of a
multi-arch index), shared base layers are stored once, a wrong tag reports not found and recovers
when pushed, a private registry (TLS + htpasswd) needs the pod's pull secret, and a corrupted blob
is refused. Registries and images are made here (tests/e2e/registry.py)."""

from __future__ import annotations

import base64
import json
import os
import shutil

import pytest

from minikube_py.runtime.images import platforms
from minikube_py.runtime.images.store import busybox_layer
from tests.e2e.cluster import Cluster
from harness.registry import LocalRegistry, OciLayout, layer_tar

BUSYBOX = shutil.which("busybox") or "/usr/bin/busybox"
CREDENTIALS = ("alice", "s3cret-pass")

pytestmark = pytest.mark.skipif(not (shutil.which("docker-registry") and shutil.which("skopeo") and shutil.which("htpasswd")),
                                reason="needs docker-registry, skopeo and htpasswd (install.sh installs them)")


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    layout = OciLayout(str(tmp_path_factory.mktemp("oci")))
    base = busybox_layer(BUSYBOX)
    host = platforms.host().architecture
    other = "arm64" if host != "arm64" else "amd64"
    command = {"Cmd": ["sh", "-c", "cat /app/message; exec sleep 3600"], "Env": ["PATH=/bin"]}
    for tag in ("v1", "v9"):
        ours = layout.image([base, layer_tar({"app/message": (f"{tag} {host}".encode(), 0o644)})], command, host)
        decoy = layout.image([layer_tar({"app/message": (b"wrong platform", 0o644)})], command, other)
        layout.tag(tag, [ours, decoy])
    layout.tag("other", [layout.image([base, layer_tar({"other": (b"o", 0o644)})], command, host)])
    layout.tag("broken", [layout.image([base, layer_tar({"broken": (os.urandom(4096), 0o644)})], command, host)])
    return layout


def serving(registry: LocalRegistry, layout: OciLayout, repository: str):
    """The registry started and filled with the layout's v1 as `repository`, stopped after the module."""
    registry.start()
    try:
        registry.push(layout.directory, "v1", repository)
        yield registry
    finally:
        registry.stop()


@pytest.fixture(scope="module")
def registry(layout):
    yield from serving(LocalRegistry(), layout, "team/app")


@pytest.fixture(scope="module")
def private_registry(layout):
    yield from serving(LocalRegistry(tls_auth=CREDENTIALS), layout, "team/secret")


@pytest.fixture(scope="module")
def cluster(private_registry):
    if os.geteuid() != 0:
        pytest.skip("e2e tests run real pods and need root")
    running = Cluster(name="e2eimages", pod_cidr="10.239.71.0/24")
    os.makedirs(running.home, exist_ok=True)
    with open(os.path.join(running.home, "registries.yaml"), "w") as file:
        json.dump({"configs": {private_registry.host: {"tls": {"ca_file": private_registry.ca_file}}}}, file)
    running.start()
    try:
        yield running
    finally:
        leftovers = running.stop()
        assert not leftovers, f"cluster {running.name} left these on the host after stop: {leftovers}"


def create_pod(cluster: Cluster, name: str, image: str, pull_secret: str | None = None, policy: str | None = None) -> None:
    """Through the API client: a CLI process costs seconds of start-up on a loaded machine and
    is no part of what these tests prove (the CLI's own image commands are)."""
    container = {"name": "app", "image": image, **({"imagePullPolicy": policy} if policy else {})}
    spec: dict = {"containers": [container], "terminationGracePeriodSeconds": 1}
    if pull_secret:
        spec["imagePullSecrets"] = [{"name": pull_secret}]
    cluster.client.raw.create("pods", "default", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                                                  "spec": spec})


def waiting(cluster: Cluster, name: str, reasons: tuple[str, ...], text: str) -> dict:
    def matches(pod: dict) -> bool:
        statuses = pod.get("status", {}).get("containerStatuses") or []
        state = (statuses[0].get("state") or {}).get("waiting") or {} if statuses else {}
        return state.get("reason") in reasons and text in (state.get("message") or "")
    pod = cluster.wait_pod(name, matches, f"waiting with {reasons} naming {text!r}", timeout=30)
    return pod["status"]["containerStatuses"][0]["state"]["waiting"]


def test_a_pod_runs_the_host_platform_image_of_a_multi_arch_index_from_a_local_registry(cluster, registry):
    image = f"{registry.host}/team/app:v1"
    create_pod(cluster, "app", image)
    pod = cluster.wait_running("app", timeout=60)
    assert cluster.exec("app", "cat", "/app/message").stdout == f"v1 {platforms.host().architecture}"
    status = pod["status"]["containerStatuses"][0]
    assert status["imageID"].startswith(f"{registry.host}/team/app@sha256:")
    events = [event["message"] for event in cluster.client.raw.list("events", "default")["items"]
              if event["involvedObject"]["name"] == "app"]
    assert f'Pulling image "{image}"' in events
    assert any(message.startswith(f'Successfully pulled image "{image}" in ') for message in events), events


def test_two_images_sharing_a_base_layer_store_it_once(cluster, registry, layout):
    registry.push(layout.directory, "other", "team/other")
    pulled = cluster.cli("image", "pull", f"{registry.host}/team/other:other")
    assert pulled.stdout.rstrip().endswith(f"{registry.host}/team/other:other")
    app = json.loads(cluster.cli("image", "inspect", f"{registry.host}/team/app:v1").stdout)[0]
    other = json.loads(cluster.cli("image", "inspect", f"{registry.host}/team/other:other").stdout)[0]
    assert app["LayerDirectories"][0] == other["LayerDirectories"][0]
    assert cluster.inspect("app")["containers"][0]["imageLayers"] == app["LayerDirectories"][::-1]
    busybox_bytes = os.path.getsize(BUSYBOX)
    stored = sum(os.path.getsize(os.path.join(directory, name))
                 for directory, _, names in os.walk(os.path.join(cluster.home, "images", "layers"))
                 for name in names if name == "busybox")
    assert stored == busybox_bytes, "the busybox binary of the shared base is on disk once"
    rows = {line.split()[0] + ":" + line.split()[1]: line for line in cluster.cli("image", "ls").stdout.splitlines()[1:]}
    assert f"{registry.host}/team/other:other" in rows


def test_a_wrong_tag_reports_not_found_and_recovers_once_the_tag_is_pushed(cluster, registry, layout):
    image = f"{registry.host}/team/app:v9"
    create_pod(cluster, "later", image)
    state = waiting(cluster, "later", ("ErrImagePull", "ImagePullBackOff"), "not found")
    assert f'failed to pull and unpack image "{image}"' in state["message"]
    registry.push(layout.directory, "v9", "team/app")
    cluster.wait_running("later", timeout=60)
    assert cluster.exec("later", "cat", "/app/message").stdout.startswith("v9 ")


def test_a_private_registry_needs_the_pods_pull_secret(cluster, private_registry):
    image = f"{private_registry.host}/team/secret:v1"
    create_pod(cluster, "nocreds", image)
    state = waiting(cluster, "nocreds", ("ImagePullBackOff",), "unauthorized")
    assert state["message"].startswith(f'Back-off pulling image "{image}": ErrImagePull: ')
    config = {"auths": {private_registry.host: {"auth": base64.b64encode(":".join(CREDENTIALS).encode()).decode()}}}
    cluster.client.raw.create("secrets", "default", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "regcred"}, "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()}})
    create_pod(cluster, "withcreds", image, pull_secret="regcred")
    cluster.wait_running("withcreds", timeout=60)


def test_a_corrupted_blob_is_refused_and_nothing_half_written_stays(cluster, registry, layout):
    registry.push(layout.directory, "broken", "team/broken")
    manifest_digest = next(entry["digest"] for entry in json.load(open(os.path.join(layout.directory, "index.json")))["manifests"]
                           if entry["annotations"]["org.opencontainers.image.ref.name"] == "broken")
    with open(os.path.join(layout.directory, "blobs", "sha256", manifest_digest[7:])) as file:
        top_layer = json.load(file)["layers"][-1]["digest"]
    path = registry.blob_data_path(top_layer)
    with open(path, "r+b") as file:
        data = bytearray(file.read())
        data[len(data) // 2] ^= 0xFF
        file.seek(0)
        file.write(data)
    layers = os.path.join(cluster.home, "images", "layers")
    before = sorted(os.listdir(layers))
    result = cluster.cli("image", "pull", "--quiet", f"{registry.host}/team/broken:broken", check=False)
    assert result.returncode == 1 and "refusing it" in result.stderr and top_layer in result.stderr
    assert sorted(os.listdir(layers)) == before
    assert os.listdir(os.path.join(cluster.home, "images", "ingest")) == []


def test_our_push_fills_a_registry_and_always_re_resolves_the_tag_after_a_push(cluster, registry, layout):
    live = f"{registry.host}/team/live:latest"
    cluster.cli("image", "pull", "--quiet", f"{registry.host}/team/app:v1")
    cluster.cli("image", "tag", f"{registry.host}/team/app:v1", live)
    first = cluster.cli("image", "push", live).stdout
    assert f"The push refers to repository [{registry.host}/team/live]" in first
    assert "Mounted" in first, "the layers come from team/app of the same registry: mounted, not uploaded"
    assert first.rstrip().splitlines()[-1].startswith("latest: digest: sha256:")
    create_pod(cluster, "always1", live, policy="Always")
    before = cluster.wait_running("always1", timeout=60)["status"]["containerStatuses"][0]["imageID"]
    assert cluster.exec("always1", "cat", "/app/message").stdout.startswith("v1 ")
    # A new image under the same tag: pushed with our client, pulled again by the next pod.
    registry.push(layout.directory, "v9", "team/source")
    cluster.cli("image", "pull", "--quiet", f"{registry.host}/team/source:v9")
    cluster.cli("image", "tag", f"{registry.host}/team/source:v9", live)
    digest = cluster.cli("image", "push", "--quiet", live).stdout.strip()
    cluster.cli("image", "tag", f"{registry.host}/team/app:v1", live)  # the node's copy of the tag is the old one again
    create_pod(cluster, "always2", live, policy="Always")
    after = cluster.wait_running("always2", timeout=60)["status"]["containerStatuses"][0]["imageID"]
    assert cluster.exec("always2", "cat", "/app/message").stdout.startswith("v9 ")
    assert after == f"{registry.host}/team/live@{digest}" and after != before
