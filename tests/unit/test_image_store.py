"""The content store: layers unpacked once in overlayfs's format, shared between images, migrated
from the flattened store, removed and pruned without touching what containers stack."""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import tarfile
import zlib

import pytest
import zstandard

from minikube_py.runtime.images import ImageStore, ImageStoreError
from minikube_py.runtime.images.unpack import OPAQUE_XATTR, LayerError, OverlayWhiteouts, unpack
from tests.unit.test_images import Layer, docker_save_archive, sha256, write_archive

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="overlay whiteouts are root-only device nodes and xattrs")


@pytest.fixture
def store(tmp_path):
    return ImageStore(str(tmp_path / "home"))


def with_member(layer: Layer, info: tarfile.TarInfo, data: bytes = b"") -> Layer:
    info.size = len(data)
    layer.tar.addfile(info, io.BytesIO(data) if data else None)
    return layer


@needs_root
def test_whiteouts_and_opaque_directories_are_written_for_overlayfs(tmp_path):
    layer = Layer().file(".wh.gone").directory("d").file("d/.wh..wh..opq").file("d/kept", b"k").bytes()
    root = tmp_path / "root"
    root.mkdir()
    unpack(io.BytesIO(layer), str(root), "test layer")
    gone = os.lstat(root / "gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0
    assert os.getxattr(root / "d", OPAQUE_XATTR) == b"y"
    assert (root / "d" / "kept").read_bytes() == b"k"
    assert not (root / ".wh.gone").exists() and not (root / "d" / ".wh..wh..opq").exists()


def test_hard_links_share_the_inode_of_a_file_of_the_same_layer(tmp_path):
    layer = Layer().file("bin/tool", b"#!x", mode=0o755).hardlink("bin/alias", "bin/tool").bytes()
    root = tmp_path / "root"
    root.mkdir()
    unpack(io.BytesIO(layer), str(root), "test layer")
    assert os.stat(root / "bin" / "alias").st_ino == os.stat(root / "bin" / "tool").st_ino


def test_a_hard_link_to_nothing_in_the_layer_is_refused(tmp_path):
    (tmp_path / "root").mkdir()
    with pytest.raises(LayerError, match="no file of this layer"):
        unpack(io.BytesIO(Layer().hardlink("link", "etc/shadow").bytes()), str(tmp_path / "root"), "test layer")


def test_device_nodes_are_left_out_and_ownership_modes_and_xattrs_kept(tmp_path):
    layer = Layer()
    device = tarfile.TarInfo("dev/sda")
    device.type, device.devmajor, device.devminor = tarfile.BLKTYPE, 8, 0
    with_member(layer, device)
    owned = tarfile.TarInfo("srv/data")
    owned.uid, owned.gid, owned.mode = 1234, 5678, 0o640
    owned.pax_headers = {"SCHILY.xattr.user.origin": "test", "SCHILY.xattr.trusted.overlay.opaque": "y"}
    with_member(layer, owned, b"payload")
    layer.tar.format = tarfile.PAX_FORMAT
    root = tmp_path / "root"
    root.mkdir()
    result = unpack(io.BytesIO(layer.bytes()), str(root), "test layer")
    assert not os.path.lexists(root / "dev" / "sda")
    info = os.stat(root / "srv" / "data")
    assert info.st_mode & 0o7777 == 0o640 and result.size == len(b"payload")
    if os.geteuid() == 0:
        assert (info.st_uid, info.st_gid) == (1234, 5678)
    assert os.getxattr(root / "srv" / "data", "user.origin") == b"test"
    assert "trusted.overlay.opaque" not in os.listxattr(root / "srv" / "data")


@pytest.mark.parametrize("compress", [lambda data: data, gzip.compress, lambda data: zstandard.ZstdCompressor().compress(data)],
                         ids=["plain", "gzip", "zstd"])
def test_the_diff_id_is_the_digest_of_the_uncompressed_tar_whatever_the_compression(tmp_path, compress):
    tar = Layer().file("a", b"x" * 100_000).bytes()
    root = tmp_path / "root"
    root.mkdir()
    assert unpack(io.BytesIO(compress(tar)), str(root), "layer").diff_id == f"sha256:{sha256(tar)}"
    assert (root / "a").read_bytes() == b"x" * 100_000


def test_a_layer_unpacking_past_its_limit_is_refused(tmp_path):
    bomb = gzip.compress(Layer().file("zeros", b"\0" * 5_000_000).bytes())
    assert len(bomb) < 20_000
    (tmp_path / "root").mkdir()
    with pytest.raises(LayerError, match="more than 1000000 bytes"):
        unpack(io.BytesIO(bomb), str(tmp_path / "root"), "bomb", max_bytes=1_000_000)


class Trickle(io.RawIOBase):
    """A download that hands out a few bytes per read, as a slow registry's chunks arrive."""

    def __init__(self, data: bytes, piece: int):
        self.data, self.piece, self.offset = data, piece, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = self.piece if size < 0 else min(size, self.piece)
        chunk = self.data[self.offset:self.offset + size]
        self.offset += len(chunk)
        return chunk

    def readinto(self, buffer) -> int:
        chunk = self.read(len(buffer))
        buffer[:len(chunk)] = chunk
        return len(chunk)


def test_a_layer_in_several_gzip_members_arriving_in_small_pieces_unpacks_whole(tmp_path):
    tar = Layer().file("one", b"1" * 70_000).directory("d").file("d/two", os.urandom(3000)).file("empty").bytes()
    half = len(tar) // 2 + 7  # the members split the tar stream anywhere, not at a tar block
    blob = gzip.compress(tar[:half]) + gzip.compress(tar[half:])
    root = tmp_path / "root"
    root.mkdir()
    assert unpack(Trickle(blob, 3), str(root), "layer").diff_id == f"sha256:{sha256(tar)}"
    assert (root / "one").read_bytes() == b"1" * 70_000 and len((root / "d" / "two").read_bytes()) == 3000
    assert (root / "empty").read_bytes() == b""


@pytest.mark.parametrize("compress", [lambda data: data, gzip.compress], ids=["plain", "gzip"])
def test_a_layer_cut_inside_a_file_is_refused(tmp_path, compress):
    tar = Layer().file("a", b"z" * 50_000).bytes()
    (tmp_path / "root").mkdir()
    with pytest.raises(LayerError, match="ends inside 'a'|not a valid tar|damaged"):
        unpack(io.BytesIO(compress(tar[:20_000])), str(tmp_path / "root"), "cut")


def test_a_bomb_is_inflated_a_bounded_piece_at_a_time(tmp_path, monkeypatch):
    bomb = gzip.compress(Layer().file("zeros", b"\0" * 40_000_000).bytes())
    inflated = []
    original = zlib.decompressobj

    class Counting:
        def __init__(self, *arguments):
            self.inner = original(*arguments)

        def decompress(self, data, max_length=0):
            output = self.inner.decompress(data, max_length)
            inflated.append(len(output))
            return output

        def __getattr__(self, name):
            return getattr(self.inner, name)

    monkeypatch.setattr(zlib, "decompressobj", Counting)
    (tmp_path / "root").mkdir()
    with pytest.raises(LayerError, match="more than 1000000 bytes"):
        unpack(io.BytesIO(bomb), str(tmp_path / "root"), "bomb", max_bytes=1_000_000)
    assert inflated and max(inflated) <= 1 << 20 and sum(inflated) < 4 << 20


def test_a_damaged_compressed_layer_is_refused(tmp_path):
    data = bytearray(gzip.compress(Layer().file("a", b"y" * 50_000).bytes()))
    data[40:60] = b"\xff" * 20
    (tmp_path / "root").mkdir()
    with pytest.raises(LayerError):
        unpack(io.BytesIO(bytes(data)), str(tmp_path / "root"), "damaged")


def two_images_sharing_a_base(tmp_path) -> tuple[str, str]:
    base = Layer().file("base/lib", b"L" * 300_000).bytes()
    paths = []
    for name, top in (("one", Layer().file("app/one", b"1").bytes()), ("two", Layer().file("app/two", b"22").bytes())):
        config = json.dumps({"config": {"Cmd": [name]}, "rootfs": {"type": "layers",
                             "diff_ids": [f"sha256:{sha256(base)}", f"sha256:{sha256(top)}"]}}).encode()
        manifest = [{"Config": "c.json", "RepoTags": [f"{name}:1"], "Layers": ["base.tar", "top.tar"]}]
        paths.append(write_archive(str(tmp_path / f"{name}.tar"), {"manifest.json": json.dumps(manifest).encode(),
                                                                   "c.json": config, "base.tar": base, "top.tar": top}))
    return paths[0], paths[1]


def test_images_sharing_a_base_layer_store_it_once_and_report_it_shared(store, tmp_path):
    first, second = two_images_sharing_a_base(tmp_path)
    store.load_archive(first)
    store.load_archive(second)
    one, two = store.resolve("one:1"), store.resolve("two:1")
    assert one.layers[0] == two.layers[0] and one.layers[1] != two.layers[1]
    assert len([name for name in os.listdir(store.layers_directory) if not name.startswith(".")]) == 3
    rows = {row.repository: row for row in store.list()}
    assert rows["one"].shared_size == rows["two"].shared_size == 300_000
    assert rows["one"].size == 300_001 and rows["two"].size == 300_002


def test_removing_an_image_keeps_the_layers_another_image_uses(store, tmp_path):
    first, second = two_images_sharing_a_base(tmp_path)
    store.load_archive(first)
    store.load_archive(second)
    one, two = store.resolve("one:1"), store.resolve("two:1")
    store.remove("one:1")
    assert os.path.isdir(one.layers[0]) and not os.path.exists(one.layers[1])
    store.remove("two:1")
    assert not os.path.exists(two.layers[0])
    assert os.listdir(store.blobs_directory) == []


def test_prune_leaves_the_layers_a_container_stacks(store, tmp_path):
    first, _ = two_images_sharing_a_base(tmp_path)
    store.load_archive(first)
    image = store.resolve("one:1")
    container = os.path.join(store.home, "containers", "c1")
    os.makedirs(container)
    with open(os.path.join(container, "state.json"), "w") as file:
        json.dump({"spec": {"layers": image.layers}}, file)
    assert store.prune(all_unused=True)[0] == []
    os.unlink(os.path.join(container, "state.json"))
    removed, freed = store.prune(all_unused=True)
    assert removed == [image.id] and freed >= 300_001
    assert not os.path.exists(image.layers[0])


def test_the_flattened_store_of_earlier_releases_migrates_into_layers(tmp_path):
    home = tmp_path / "home"
    content = home / "images" / "content" / ("ab" * 32)
    (content / "rootfs" / "bin").mkdir(parents=True)
    (content / "rootfs" / "bin" / "app").write_text("app")
    (content / "image.json").write_text(json.dumps({"id": "sha256:" + "ab" * 32, "created": 1.0, "size": 3,
                                                    "config": {"entrypoint": [], "cmd": ["app"], "env": [],
                                                               "working_dir": "", "user": "", "stop_signal": ""}}))
    (home / "images" / "tags.json").write_text(json.dumps({"old/app:1": "sha256:" + "ab" * 32}))
    store = ImageStore(str(home))
    image = store.resolve("old/app:1")
    assert image.config.cmd == ["app"] and open(os.path.join(image.layers[0], "bin", "app")).read() == "app"
    assert not (home / "images" / "content").exists()
    assert [(row.repository, row.tag) for row in store.list()] == [("old/app", "1")]


def test_a_layer_whose_content_differs_from_the_configs_diff_id_is_refused(store, tmp_path):
    archive, _ = docker_save_archive(str(tmp_path / "app.tar"), ["app:1"])
    with open(archive, "rb") as file:
        data = file.read()
    config = json.dumps({"config": {}, "rootfs": {"diff_ids": ["sha256:" + "0" * 64, "sha256:" + "1" * 64]}}).encode()
    manifest = [{"Config": "c.json", "RepoTags": ["bad:1"], "Layers": ["l1/layer.tar", "l2/layer.tar"]}]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        layers = {name: tar.extractfile(name).read() for name in ("l1/layer.tar", "l2/layer.tar")}
    bad = write_archive(str(tmp_path / "bad.tar"), {"manifest.json": json.dumps(manifest).encode(), "c.json": config, **layers})
    with pytest.raises(ImageStoreError, match="not the diffID"):
        store.load_archive(bad)
    assert store.list() == [] and [n for n in os.listdir(store.layers_directory) if not n.startswith(".")] == []


def test_merged_reads_honour_an_upper_whiteout(store, tmp_path):
    lower = Layer().directory("etc").file("etc/passwd", b"app:x:7:7::/:/bin/sh\n").bytes()
    upper = Layer().directory("etc").file("etc/.wh.passwd").bytes()
    if os.geteuid() != 0:
        pytest.skip("overlay whiteouts are root-only device nodes")
    config = json.dumps({"config": {}}).encode()
    manifest = [{"Config": "c.json", "RepoTags": ["wh:1"], "Layers": ["1.tar", "2.tar"]}]
    archive = write_archive(str(tmp_path / "wh.tar"), {"manifest.json": json.dumps(manifest).encode(), "c.json": config,
                                                       "1.tar": lower, "2.tar": upper})
    store.load_archive(archive)
    from minikube_py.runtime.images.store import read_image_file
    assert read_image_file(store.resolve("wh:1").layers, "etc/passwd") == ""
    assert OverlayWhiteouts.is_whiteout(os.path.join(store.resolve("wh:1").layers[1], "etc", "passwd"))


def test_garbage_collection_at_the_high_threshold_removes_unused_images_least_recently_used_first(store, tmp_path):
    first, second = two_images_sharing_a_base(tmp_path)
    store.load_archive(first)
    store.load_archive(second)
    one, two = store.resolve("one:1"), store.resolve("two:1")
    os.utime(store._record_path(one.id), (1, 1))  # "one" was used long ago, "two" a little later
    os.utime(store._record_path(two.id), (2, 2))
    store.disk_usage = lambda: (84.9, 100)
    assert store.collect_garbage(85, 80) == ([], 0), "below the high threshold nothing goes"
    store.disk_usage = lambda: (85.1, 100)  # down to 85 % of 100 bytes: "one"'s own layer (1 byte) is enough
    removed, freed = store.collect_garbage(85, 85)
    assert removed == [one.id] and freed >= 1
    assert not store.has("one:1") and store.has("two:1") and os.path.isdir(two.layers[0])


def test_garbage_collection_keeps_images_in_use_busybox_and_recent_ones(store, tmp_path):
    first, _ = two_images_sharing_a_base(tmp_path)
    store.load_archive(first)
    store.disk_usage = lambda: (99.0, 10**12)
    assert store.collect_garbage(85, 80) == ([], 0), "used within the last two minutes"
    image = store.resolve("one:1")
    os.utime(store._record_path(image.id), (1, 1))
    container = os.path.join(store.home, "containers", "c1")
    os.makedirs(container)
    with open(os.path.join(container, "state.json"), "w") as file:
        json.dump({"spec": {"layers": image.layers}}, file)
    assert store.collect_garbage(85, 80) == ([], 0), "a container stacks its layers"
