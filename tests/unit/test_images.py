"""The local image store: references, busybox, rootfs imports, OCI and docker-save archives, whiteouts, users."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile

import pytest

from minikube_py.runtime.images import (
    ImageStore,
    ImageStoreError,
    format_size,
    normalize_reference,
    resolve_user,
)
from minikube_py.runtime.images.unpack import OverlayWhiteouts
from minikube_py.runtime.types import ContainerRuntimeError

BUSYBOX = shutil.which("busybox") or "/usr/bin/busybox"


class Layer:
    """Builds one tar layer in memory."""

    def __init__(self):
        self.buffer = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buffer, mode="w")

    def file(self, name: str, data: bytes = b"", mode: int = 0o644) -> "Layer":
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), mode
        self.tar.addfile(info, io.BytesIO(data))
        return self

    def directory(self, name: str, mode: int = 0o755) -> "Layer":
        info = tarfile.TarInfo(name)
        info.type, info.mode = tarfile.DIRTYPE, mode
        self.tar.addfile(info)
        return self

    def symlink(self, name: str, target: str) -> "Layer":
        info = tarfile.TarInfo(name)
        info.type, info.linkname = tarfile.SYMTYPE, target
        self.tar.addfile(info)
        return self

    def hardlink(self, name: str, target: str) -> "Layer":
        info = tarfile.TarInfo(name)
        info.type, info.linkname = tarfile.LNKTYPE, target
        self.tar.addfile(info)
        return self

    def bytes(self, compress: bool = False) -> bytes:
        self.tar.close()
        data = self.buffer.getvalue()
        return gzip.compress(data) if compress else data


def write_archive(path: str, files: dict[str, bytes]) -> str:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


CONFIG = {
    "architecture": "amd64",
    "os": "linux",
    "created": "2024-05-01T10:00:00.123456789Z",
    "config": {
        "Entrypoint": ["/app/run"],
        "Cmd": ["--serve"],
        "Env": ["PATH=/bin", "MODE=test"],
        "WorkingDir": "/app",
        "User": "app",
    },
}


def two_layers() -> tuple[bytes, bytes]:
    lower = (
        Layer().directory("a").file("a/1", b"one").file("a/2", b"two").directory("d").file("d/x").file("d/y")
        .file("gone", b"bye").directory("etc").file("etc/passwd", b"root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n")
        .bytes()
    )
    upper = (
        Layer().file(".wh.gone").directory("d").file("d/z", b"zed").file("d/.wh..wh..opq").file("a/3", b"three")
        .file("a/.wh.2").bytes()
    )
    return lower, upper


def docker_save_archive(path: str, repo_tags: list[str]) -> tuple[str, bytes]:
    lower, upper = two_layers()
    config = json.dumps(CONFIG).encode()
    manifest = [{"Config": f"{sha256(config)}.json", "RepoTags": repo_tags, "Layers": ["l1/layer.tar", "l2/layer.tar"]}]
    files = {"manifest.json": json.dumps(manifest).encode(), f"{sha256(config)}.json": config, "l1/layer.tar": lower, "l2/layer.tar": upper}
    return write_archive(path, files), config


def oci_layout_archive(path: str, ref_name: str | None, corrupt_layer: bool = False) -> tuple[str, bytes]:
    lower, upper = two_layers()
    lower, upper = gzip.compress(lower), gzip.compress(upper)
    config = json.dumps(CONFIG).encode()
    layers = [lower, upper]
    manifest = json.dumps({
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": f"sha256:{sha256(config)}", "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": f"sha256:{sha256(layer)}", "size": len(layer)} for layer in layers],
    }).encode()
    annotations = {"org.opencontainers.image.ref.name": ref_name} if ref_name else {}
    index = {"schemaVersion": 2, "manifests": [{"digest": f"sha256:{sha256(manifest)}", "size": len(manifest), "annotations": annotations}]}
    blobs = {f"blobs/sha256/{sha256(blob)}": blob for blob in (config, manifest, *layers)}
    if corrupt_layer:
        blobs[f"blobs/sha256/{sha256(upper)}"] = gzip.compress(Layer().file("evil", b"x").bytes())
    files = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}', "index.json": json.dumps(index).encode(), **blobs}
    return write_archive(path, files), config


def merged(layers: list[str]) -> set[str]:
    """The paths a container sees through overlayfs: layers bottom first, whiteouts and opaque dirs applied."""
    seen: set[str] = set()
    for layer in layers:
        for directory, directories, files in os.walk(layer):
            relative_directory = os.path.relpath(directory, layer)
            if relative_directory != "." and OverlayWhiteouts.is_opaque(directory):
                seen = {path for path in seen if not path.startswith(relative_directory + "/")}
            for name in directories + files:
                path = os.path.normpath(os.path.join(relative_directory, name))
                if OverlayWhiteouts.is_whiteout(os.path.join(directory, name)):
                    seen = {p for p in seen if p != path and not p.startswith(path + "/")}
                else:
                    seen.add(path)
    return seen


def tree(root: str) -> set[str]:
    found = set()
    for directory, directories, files in os.walk(root):
        for name in directories + files:
            found.add(os.path.relpath(os.path.join(directory, name), root))
    return found


@pytest.fixture
def store(tmp_path):
    return ImageStore(str(tmp_path / "home"))


@pytest.mark.parametrize(
    "ref", ["busybox", "busybox:latest", "library/busybox", "docker.io/library/busybox:latest", "docker.io/busybox"]
)
def test_docker_hub_short_forms_normalize_to_name_and_tag(ref):
    assert normalize_reference(ref) == "busybox:latest"


def test_references_keep_registry_ports_and_tags():
    assert normalize_reference("localhost:5000/team/app:1.2") == "localhost:5000/team/app:1.2"
    assert normalize_reference("quay.io/library/app") == "quay.io/library/app:latest"


@pytest.mark.parametrize("ref", ["BusyBox", "app:", "app:tag with space", "-app"])
def test_invalid_references_give_invalid_image_name(ref):
    with pytest.raises(ContainerRuntimeError) as raised:
        normalize_reference(ref)
    assert raised.value.reason == "InvalidImageName"


def test_an_unknown_image_gives_kubelets_err_image_never_pull(store):
    with pytest.raises(ContainerRuntimeError) as raised:
        store.resolve("nginx:1.25")
    assert raised.value.reason == "ErrImageNeverPull"
    assert raised.value.message == 'Container image "nginx:1.25" is not present with pull policy of Never'


@pytest.mark.skipif(not os.path.exists(BUSYBOX), reason="needs a static busybox")
def test_ensure_busybox_builds_a_runnable_rootfs_once(store):
    image = store.ensure_busybox(BUSYBOX)
    rootfs = image.layers[0]
    assert os.readlink(os.path.join(rootfs, "bin", "sh")) == "busybox"
    assert os.readlink(os.path.join(rootfs, "bin", "ls")) == "busybox"
    assert os.stat(os.path.join(rootfs, "tmp")).st_mode & 0o7777 == 0o1777
    assert all(os.path.isdir(os.path.join(rootfs, name)) for name in ("proc", "sys", "dev", "root", "home", "var"))
    assert image.config.cmd == ["sh"]
    assert image.config.env == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    assert resolve_user(image.layers, "nobody") == (65534, 65534)
    inode = os.stat(rootfs).st_ino
    again = store.ensure_busybox(BUSYBOX)
    assert again.id == image.id and os.stat(again.layers[0]).st_ino == inode
    assert store.resolve("docker.io/library/busybox:latest").id == image.id


def test_import_rootfs_makes_a_one_layer_image_with_only_path(store):
    tarball = Layer().directory("bin").file("bin/hello", b"#!/bin/sh\necho hi\n", 0o755).bytes(compress=True)
    image = store.import_rootfs("example/hello:1", io.BytesIO(tarball))
    assert len(image.layers) == 1
    assert open(os.path.join(image.layers[0], "bin", "hello")).read().startswith("#!/bin/sh")
    assert os.stat(os.path.join(image.layers[0], "bin", "hello")).st_mode & 0o777 == 0o755
    assert image.config.env == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    assert image.config.cmd == [] and image.config.entrypoint == []
    assert store.resolve("example/hello:1").id == image.id == store.resolve(image.id).id


def test_docker_save_archive_applies_layers_and_whiteouts_in_order(store, tmp_path):
    archive, config = docker_save_archive(str(tmp_path / "app.tar"), ["example/app:1.0"])
    assert store.load_archive(archive) == ["example/app:1.0"]
    image = store.resolve("example/app:1.0")
    assert image.id == f"sha256:{sha256(config)}"
    assert len(image.layers) == 2
    assert merged(image.layers) == {"a", "a/1", "a/3", "d", "d/z", "etc", "etc/passwd"}
    assert open(os.path.join(image.layers[1], "d", "z")).read() == "zed"
    assert image.config.entrypoint == ["/app/run"] and image.config.cmd == ["--serve"]
    assert image.config.env == ["PATH=/bin", "MODE=test"]
    assert (image.config.working_dir, image.config.user) == ("/app", "app")
    assert resolve_user(image.layers, image.config.user) == (1000, 1000)


def test_oci_layout_with_gzip_layers_loads_under_its_annotated_name(store, tmp_path):
    archive, config = oci_layout_archive(str(tmp_path / "oci.tar"), "docker.io/library/app:2")
    assert store.load_archive(archive) == ["app:2"]
    image = store.resolve("app:2")
    assert image.id == f"sha256:{sha256(config)}"
    assert merged(image.layers) == {"a", "a/1", "a/3", "d", "d/z", "etc", "etc/passwd"}


def test_an_unnamed_oci_archive_needs_a_name(store, tmp_path):
    archive, _ = oci_layout_archive(str(tmp_path / "oci.tar"), None)
    with pytest.raises(ImageStoreError, match="give a name"):
        store.load_archive(archive)
    assert store.load_archive(archive, name="mine/app:3") == ["mine/app:3"]


def test_loading_the_same_archive_twice_keeps_one_image(store, tmp_path):
    archive, _ = docker_save_archive(str(tmp_path / "app.tar"), ["app:1", "app:latest"])
    store.load_archive(archive)
    store.load_archive(archive)
    rows = store.list()
    assert [(row.repository, row.tag) for row in rows] == [("app", "1"), ("app", "latest")]
    assert len({row.image_id for row in rows}) == 1
    assert len(os.listdir(store.records_directory)) == 1
    assert len([name for name in os.listdir(store.layers_directory) if not name.startswith(".")]) == 2


def test_a_layer_that_does_not_match_its_digest_is_refused(store, tmp_path):
    archive, _ = oci_layout_archive(str(tmp_path / "oci.tar"), "app:bad", corrupt_layer=True)
    with pytest.raises(ImageStoreError, match="does not match its digest"):
        store.load_archive(archive)
    assert store.list() == []
    assert os.listdir(store.records_directory) == []
    assert [name for name in os.listdir(store.layers_directory) if name.startswith(".unpack")] == []


def test_an_opaque_whiteout_keeps_what_its_own_layer_wrote_before_it(store, tmp_path):
    lower = Layer().directory("d").file("d/old").bytes()
    upper = Layer().directory("d").file("d/new").file("d/.wh..wh..opq").bytes()
    config = json.dumps({"config": {}}).encode()
    manifest = [{"Config": "c.json", "RepoTags": ["opq:1"], "Layers": ["1.tar", "2.tar"]}]
    archive = write_archive(str(tmp_path / "opq.tar"), {"manifest.json": json.dumps(manifest).encode(), "c.json": config, "1.tar": lower, "2.tar": upper})
    store.load_archive(archive)
    assert merged(store.resolve("opq:1").layers) == {"d", "d/new"}


@pytest.mark.parametrize(
    "layer, what",
    [
        (Layer().file("../escape", b"x"), "outside the image root"),
        (Layer().file("/etc/evil", b"x"), "outside the image root"),
        (Layer().directory("a").symlink("a/up", "../../outside"), "climbs out"),
        (Layer().hardlink("link", "../../etc/passwd"), "outside the image root"),
    ],
)
def test_archives_reaching_outside_the_root_are_refused(store, tmp_path, layer, what):
    with pytest.raises(ImageStoreError, match=what):
        store.import_rootfs("evil:1", io.BytesIO(layer.bytes()))
    assert store.list() == []
    assert [name for name in os.listdir(store.layers_directory) if name.startswith(".unpack")] == []
    assert not os.path.exists(tmp_path / "escape") and not os.path.exists(tmp_path / "outside")


def test_writes_through_a_symlinked_directory_stay_inside_the_root(store, tmp_path):
    outside = tmp_path / "outside"
    layer = Layer().symlink("out", str(outside)).file("out/planted", b"x").symlink("etc", "/").file("etc/passwd", b"p")
    image = store.import_rootfs("inside:1", io.BytesIO(layer.bytes()))
    assert not outside.exists()
    rootfs = image.layers[0]
    assert open(os.path.join(rootfs, str(outside).lstrip("/"), "planted")).read() == "x"
    assert open(os.path.join(rootfs, "passwd")).read() == "p"


def test_tag_and_remove_keep_content_until_the_last_tag_goes(store):
    image = store.import_rootfs("first:1", io.BytesIO(Layer().file("f", b"data").bytes()))
    store.tag("first:1", "docker.io/library/second")
    assert store.resolve("second:latest").id == image.id
    assert store.remove("first:1") == image.id
    assert os.path.isdir(image.layers[0])
    store.remove("second")
    assert not os.path.exists(image.layers[0])
    with pytest.raises(ImageStoreError, match="not found"):
        store.remove("second")


def test_remove_by_id_drops_every_tag(store):
    image = store.import_rootfs("first:1", io.BytesIO(Layer().file("f", b"data").bytes()))
    store.tag(image.id, "other:2")
    store.remove(image.id.removeprefix("sha256:")[:12])
    assert store.list() == []
    assert not os.path.exists(image.layers[0])


def test_list_rows_show_short_id_and_human_size(store):
    store.import_rootfs("sized:1", io.BytesIO(Layer().file("blob", b"x" * 4_260_000).bytes()))
    [row] = store.list()
    columns = row.columns(now=row.created + 3 * 86400)
    assert columns[:2] == ["sized", "1"]
    assert len(columns[2]) == 12 and columns[3] == "4.26MB" and columns[4] == "0B" and columns[5] == "3 days ago"


@pytest.mark.parametrize("size, text", [(0, "0B"), (999, "999B"), (999_600, "1MB"), (1_500_000_000, "1.5GB")])
def test_sizes_print_in_decimal_units(size, text):
    assert format_size(size) == text


def test_resolve_user_reads_names_numbers_and_groups_from_the_image(tmp_path):
    layer = tmp_path / "layer"
    (layer / "etc").mkdir(parents=True)
    (layer / "etc" / "real-passwd").write_text("root:x:0:0::/root:/bin/sh\nweb:x:33:34::/srv:/bin/sh\n")
    (layer / "etc" / "passwd").symlink_to("/etc/real-passwd")
    (layer / "etc" / "group").write_text("root:x:0:\nstaff:x:50:web\n")
    layers = [str(layer)]
    assert resolve_user(layers, "") == (0, 0)
    assert resolve_user(layers, "web") == (33, 34)
    assert resolve_user(layers, "33") == (33, 34)
    assert resolve_user(layers, "4000") == (4000, 0)
    assert resolve_user(layers, "web:staff") == (33, 50)
    assert resolve_user(layers, "web:7") == (33, 7)
    with pytest.raises(ContainerRuntimeError) as raised:
        resolve_user(layers, "nosuchuser")
    assert raised.value.reason == "CreateContainerConfigError" and "nosuchuser" in raised.value.message
    with pytest.raises(ContainerRuntimeError, match="group nosuchgroup"):
        resolve_user(layers, "web:nosuchgroup")
