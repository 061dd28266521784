"""The node's content-addressed image store: blobs, layers unpacked once, images, names.

Layout under `<home>/images/` (0700: nothing here is for other users):

    blobs/sha256/<hex>     manifests, indexes and configs as pulled (by their digest)
    ingest/<hex>.partial   blobs being downloaded; a later pull resumes them
    layers/<hex>/root      one layer unpacked by itself, keyed by its diffID (unpack.py);
    layers/<hex>/layer.json  written last: its presence means the layer is complete
    images/<hex>.json      an image: its config, ordered diffIDs, repo digests (hex = config digest)
    tags.json              "docker.io/library/busybox:latest" -> "sha256:<config digest>"

A container's root is an overlay of its image's layer directories (top first) under its own
upper dir, so nothing is copied per container and images that share a base share its
directories on disk and in the page cache. Everything is written to a temporary name and renamed
into place once complete and verified, so a crash leaves no half-written layer or record;
leftovers (`.unpack-*`, stale `.partial` files) are swept by `prune`.

Images arrive four ways, all ending in `add_layer` + `commit_image`: pulled from a registry
(puller.py), `busybox:latest` built from the host's static busybox, a root filesystem tarball
(`image import`, `docker import` semantics) and a docker-save / OCI archive (`image load`). The
store of earlier releases (one flattened `content/<id>/rootfs` per image) is migrated on open:
each flattened root becomes a layer of its own.

Names are kept normalized (`docker.io/library/nginx:1.27`) and printed in Docker's short form.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import IO, Callable, Iterator

from minikube_py.runtime.images import reference as references
from minikube_py.runtime.images.archives import ArchiveError, ArchiveReader, LayerOpener, images_in
from minikube_py.runtime.images.pack import pack_layer
from minikube_py.runtime.images.unpack import (
    LayerError,
    OverlayWhiteouts,
    remove_path,
    resolve_inside,
    unpack,
)
from minikube_py.runtime.types import ContainerRuntimeError

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUSYBOX_REFERENCE = "docker.io/library/busybox:latest"
BUSYBOX_LABEL = "io.minikube-py.busybox-sha256"
DIGEST_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")

BUSYBOX_PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""
BUSYBOX_GROUP = """root:x:0:
daemon:x:1:
nogroup:x:65533:
nobody:x:65534:
"""


class ImageStoreError(Exception):
    """An image operation asked for by a user failed (bad archive, unknown name); the message says why."""


@dataclass
class OciImageConfig:
    """The parts of an image config a container uses (OCI `config` object, snake_case)."""

    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)  # "NAME=value"
    working_dir: str = ""
    user: str = ""
    stop_signal: str = ""
    exposed_ports: list[str] = field(default_factory=list)  # "80/tcp"
    labels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_oci(cls, config: dict | None) -> "OciImageConfig":
        config = config or {}
        return cls(
            entrypoint=list(config.get("Entrypoint") or []),
            cmd=list(config.get("Cmd") or []),
            env=list(config.get("Env") or []),
            working_dir=config.get("WorkingDir") or "",
            user=config.get("User") or "",
            stop_signal=config.get("StopSignal") or "",
            exposed_ports=sorted(config.get("ExposedPorts") or {}),
            labels=dict(config.get("Labels") or {}),
        )

    def to_oci(self) -> dict:
        document: dict = {"Env": self.env}
        for key, value in (("Entrypoint", self.entrypoint), ("Cmd", self.cmd), ("WorkingDir", self.working_dir),
                           ("User", self.user), ("StopSignal", self.stop_signal), ("Labels", self.labels)):
            if value:
                document[key] = value
        if self.exposed_ports:
            document["ExposedPorts"] = {port: {} for port in self.exposed_ports}
        return document


@dataclass
class Image:
    id: str  # "sha256:<hex>" of the config
    reference: str  # the normalized name it was found by (or the id)
    layers: list[str]  # absolute layer directories, bottom first
    config: OciImageConfig
    size: int  # bytes in the layer directories
    created: float  # epoch seconds
    repo_digests: list[str] = field(default_factory=list)  # "docker.io/library/nginx@sha256:..."
    diff_ids: list[str] = field(default_factory=list)

    @property
    def repo_digest(self) -> str:
        """What kubelet shows as imageID: the repo digest for `reference`'s repository, else the id."""
        name = self.reference.split("@", 1)[0]
        if ":" in name.rsplit("/", 1)[-1]:
            name = name.rsplit(":", 1)[0]
        for digest in self.repo_digests:
            if digest.split("@", 1)[0] == name:
                return digest
        return self.repo_digests[0] if self.repo_digests else self.id


@dataclass
class ImageRow:
    """One line of `image ls`: REPOSITORY TAG IMAGE ID SIZE SHARED SIZE CREATED."""

    repository: str
    tag: str
    image_id: str
    size: int
    created: float
    shared_size: int = 0  # bytes of its layers that other images use too

    def columns(self, now: float | None = None) -> list[str]:
        return [self.repository, self.tag, short_id(self.image_id), format_size(self.size),
                format_size(self.shared_size), format_age(self.created, now)]


def short_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def format_size(size: int) -> str:
    """Decimal units, the way `docker images` prints them: 4.26MB."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 999.5 or unit == "GB":  # 999.6 would print as "1e+03"
            return f"{value:.3g}{unit}"
        value /= 1000
    raise AssertionError("unreachable")


def format_age(created: float, now: float | None = None) -> str:
    seconds = max(0, int((time.time() if now is None else now) - created))
    for unit, length in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= length:
            count = seconds // length
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "Less than a minute ago"


def normalize_reference(ref: str) -> str:
    """Docker's short `name:tag`: `busybox`, `library/busybox` and `docker.io/library/busybox:latest`
    all become `busybox:latest`. InvalidImageName when it does not parse."""
    return parse_reference(ref).with_default_tag().familiar()


def parse_reference(ref: str) -> references.Reference:
    try:
        return references.parse(ref)
    except references.InvalidReference as error:
        raise ContainerRuntimeError("InvalidImageName", f'Failed to apply default image tag "{ref}": couldn\'t parse '
                                                        f'image name "{ref}": {error}') from None


def _full_name(ref: str) -> str:
    return str(parse_reference(ref).with_default_tag())


def _is_id_reference(ref: str) -> bool:
    return re.fullmatch(r"(sha256:)?[0-9a-f]{12,64}", ref) is not None


def _not_present(ref: str) -> ContainerRuntimeError:
    return ContainerRuntimeError(
        "ErrImageNeverPull",
        f'Container image "{ref}" is not present with pull policy of Never',
    )


class ImageStore:
    def __init__(self, home: str, whiteouts: OverlayWhiteouts | None = None):
        self.home = home
        self.directory = os.path.join(home, "images")
        self.blobs_directory = os.path.join(self.directory, "blobs", "sha256")
        self.ingest_directory = os.path.join(self.directory, "ingest")
        self.layers_directory = os.path.join(self.directory, "layers")
        self.records_directory = os.path.join(self.directory, "images")
        self.tags_path = os.path.join(self.directory, "tags.json")
        self.whiteouts = whiteouts or OverlayWhiteouts()
        os.makedirs(self.directory, 0o700, exist_ok=True)
        os.chmod(self.directory, 0o700)
        for directory in (self.blobs_directory, self.ingest_directory, self.layers_directory, self.records_directory):
            os.makedirs(directory, 0o700, exist_ok=True)
        if os.path.isdir(os.path.join(self.directory, "content")):
            self._migrate_flattened_store()

    # --- locks and small files ------------------------------------------------------------------

    @contextmanager
    def locked(self, name: str = "index") -> Iterator[None]:
        """One writer of `name` at a time across threads and processes (the daemon, CLI commands)."""
        with open(os.path.join(self.directory, f".{name}.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _tags(self) -> dict[str, str]:
        try:
            with open(self.tags_path) as file:
                return json.load(file)
        except FileNotFoundError:
            return {}

    def _write_tags(self, tags: dict[str, str]) -> None:
        _write_json(self.tags_path, dict(sorted(tags.items())))

    def _record_path(self, image_id: str) -> str:
        return os.path.join(self.records_directory, image_id.removeprefix("sha256:") + ".json")

    def _record(self, image_id: str) -> dict | None:
        try:
            with open(self._record_path(image_id)) as file:
                return json.load(file)
        except FileNotFoundError:
            return None

    def _records(self) -> dict[str, dict]:
        records = {}
        for name in os.listdir(self.records_directory):
            if name.endswith(".json"):
                record = self._record(name.removesuffix(".json"))
                if record is not None:
                    records[record["id"]] = record
        return records

    # --- blobs ----------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> str:
        if not DIGEST_PATTERN.fullmatch(digest):
            raise ImageStoreError(f"unsupported or malformed digest {digest!r}; only sha256 is supported")
        return os.path.join(self.blobs_directory, digest.removeprefix("sha256:"))

    def partial_path(self, digest: str) -> str:
        return os.path.join(self.ingest_directory, digest.removeprefix("sha256:") + ".partial")

    def has_blob(self, digest: str) -> bool:
        return os.path.exists(self.blob_path(digest))

    def put_blob(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.has_blob(digest):
            _write_bytes(self.blob_path(digest), data)
        return digest

    def read_blob(self, digest: str) -> bytes:
        with open(self.blob_path(digest), "rb") as file:
            return file.read()

    # --- layers ---------------------------------------------------------------------------------

    def layer_directory(self, diff_id: str) -> str:
        return os.path.join(self.layers_directory, diff_id.removeprefix("sha256:"))

    def has_layer(self, diff_id: str) -> bool:
        return os.path.exists(os.path.join(self.layer_directory(diff_id), "layer.json"))

    def layer_size(self, diff_id: str) -> int:
        try:
            with open(os.path.join(self.layer_directory(diff_id), "layer.json")) as file:
                return int(json.load(file).get("size", 0))
        except (FileNotFoundError, ValueError):
            return 0

    def layer_blob(self, diff_id: str) -> str:
        """The digest of the compressed blob the layer was unpacked from ("" when it was made here)."""
        try:
            with open(os.path.join(self.layer_directory(diff_id), "layer.json")) as file:
                return str(json.load(file).get("blob") or "")
        except (FileNotFoundError, ValueError):
            return ""

    def add_layer(self, stream: IO[bytes], source: str, expected_diff_id: str | None = None,
                  blob_digest: str = "", verify: Callable[[], None] | None = None) -> str:
        """Unpack a layer stream unless its diffID is here; returns the diffID.

        With `expected_diff_id` (from an image config) a present layer is not read at all, and a
        stream whose uncompressed digest differs is refused. `verify` runs after the unpack and
        before the layer is kept (a streamed download's digest check): raising drops the layer.
        """
        if expected_diff_id and self.has_layer(expected_diff_id):
            return expected_diff_id
        staging = tempfile.mkdtemp(prefix=".unpack-", dir=self.layers_directory)
        try:
            root = os.path.join(staging, "root")
            os.mkdir(root, 0o755)
            try:
                unpacked = unpack(stream, root, source, self.whiteouts)
            except LayerError as error:
                raise ImageStoreError(str(error)) from None
            if expected_diff_id and unpacked.diff_id != expected_diff_id:
                raise ImageStoreError(f"{source}: its content has digest {unpacked.diff_id}, not the diffID "
                                      f"{expected_diff_id} its image config names; refusing the layer")
            if verify is not None:
                verify()
            _write_json(os.path.join(staging, "layer.json"), {"diffId": unpacked.diff_id, "size": unpacked.size,
                                                              "blob": blob_digest, "unpacked": time.time()})
            with self.locked(f"layer-{unpacked.diff_id.removeprefix('sha256:')[:16]}"):
                if not self.has_layer(unpacked.diff_id):
                    remove_path(self.layer_directory(unpacked.diff_id))
                    os.rename(staging, self.layer_directory(unpacked.diff_id))
            return unpacked.diff_id
        finally:
            if os.path.exists(staging):
                shutil.rmtree(staging, ignore_errors=True)

    def add_directory_layer(self, root: str, source: str) -> tuple[str, str]:
        """A directory in overlay format (a build step's upper directory or files to copy)
        packed as a layer (pack.py) and stored with its gzip blob; returns (diffID, blob digest).
        The packing is deterministic, so `image push` sends that blob as it is."""
        scratch = tempfile.mkdtemp(prefix=".pack-", dir=self.directory)
        try:
            packed = pack_layer(root, scratch)
            with open(packed.tar_path, "rb") as tar:
                diff_id = self.add_layer(tar, source, packed.diff_id, packed.digest)
            if not self.has_blob(packed.digest):
                os.replace(packed.blob_path, self.blob_path(packed.digest))
            return diff_id, packed.digest
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def add_tarball_layer(self, stream: IO[bytes], source: str) -> tuple[str, str]:
        """A layer tarball made here or given by a user (busybox, `image import`), unpacked and
        also kept as a gzip blob (as it came when it is gzip, compressed here when it is a plain
        tar), so `image push` sends the layer under the diffID it has here; returns (diffID, blob
        digest, "" for zstd input, which push packs again)."""
        scratch = tempfile.mkdtemp(prefix=".import-", dir=self.directory)
        try:
            spooled = os.path.join(scratch, "layer")
            with open(spooled, "wb") as file:
                shutil.copyfileobj(stream, file, 1 << 20)
            with open(spooled, "rb") as file:
                head = file.read(4)
            if head.startswith(b"\x1f\x8b"):
                blob_file = spooled
            elif head == b"\x28\xb5\x2f\xfd":
                with open(spooled, "rb") as file:
                    return self.add_layer(file, source), ""
            else:
                blob_file = spooled + ".gz"
                with open(spooled, "rb") as plain, open(blob_file, "wb") as raw, \
                        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as compressed:
                    shutil.copyfileobj(plain, compressed, 1 << 20)
            with open(blob_file, "rb") as file:
                digest = "sha256:" + hashlib.file_digest(file, "sha256").hexdigest()
            with open(spooled, "rb") as file:
                diff_id = self.add_layer(file, source, blob_digest=digest)
            if not self.has_blob(digest):
                os.replace(blob_file, self.blob_path(digest))
            return diff_id, digest
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    # --- images ---------------------------------------------------------------------------------

    def commit_image(self, config_blob: bytes, diff_ids: list[str], names: list[str], manifest_digest: str = "",
                     repo_digests: list[str] | None = None, blobs: list[str] | None = None) -> str:
        """Record an image whose layers are all here and point `names` at it; returns its id."""
        missing = [diff_id for diff_id in diff_ids if not self.has_layer(diff_id)]
        if missing:
            raise ImageStoreError(f"cannot record the image: layers {missing} are not in the store")
        image_id = self.put_blob(config_blob)
        try:
            document = json.loads(config_blob)
        except ValueError as error:
            raise ImageStoreError(f"image config {image_id} is not JSON: {error}") from None
        with self.locked():
            record = self._record(image_id) or {
                "id": image_id,
                "config": OciImageConfig.from_oci(document.get("config")).__dict__,
                "diffIds": diff_ids,
                "created": _parse_created(document.get("created")),
                "size": sum(self.layer_size(diff_id) for diff_id in diff_ids),
                "platform": "/".join(part for part in (document.get("os"), document.get("architecture"),
                                                       document.get("variant")) if part),
                "repoDigests": [],
                "manifest": manifest_digest,
            }
            for digest in repo_digests or []:
                if digest not in record["repoDigests"]:
                    record["repoDigests"].append(digest)
            if manifest_digest:
                record["manifest"] = manifest_digest
            record["blobs"] = sorted(set(record.get("blobs", [])) | set(blobs or []))
            _write_json(self._record_path(image_id), record)
            tags = self._tags()
            for name in names:
                tags[_full_name(name)] = image_id
            self._write_tags(tags)
        return image_id

    def add_repo_digest(self, image_id: str, repo_digest: str, manifest_digest: str = "") -> None:
        """Note that the image is in a registry as `repo_digest` (after a push): its imageID there."""
        with self.locked():
            record = self._record(image_id)
            if record is None:
                return
            if repo_digest not in record.setdefault("repoDigests", []):
                record["repoDigests"].append(repo_digest)
            if manifest_digest and not record.get("manifest"):
                record["manifest"] = manifest_digest
                record["blobs"] = sorted(set(record.get("blobs", [])) | {manifest_digest})
            _write_json(self._record_path(image_id), record)

    def manifest_of(self, image_id: str) -> str:
        """The digest of the manifest the image was pulled (or pushed) as, "" when it has none."""
        record = self._record(image_id) or {}
        return str(record.get("manifest") or "")

    def _image_id_for(self, ref: str) -> str | None:
        """Image id for a name, a name@digest, or an id (`sha256:<hex>`, or a unique hex prefix of 12+)."""
        if _is_id_reference(ref):
            candidate = ref.removeprefix("sha256:")
            matches = [name.removesuffix(".json") for name in os.listdir(self.records_directory)
                       if name.startswith(candidate) and name.endswith(".json")]
            if len(matches) == 1:
                return f"sha256:{matches[0]}"
            if ref.startswith("sha256:"):
                return None
        parsed = parse_reference(ref)
        if parsed.digest:
            wanted = f"{parsed.name}@{parsed.digest}"
            for image_id, record in self._records().items():
                if wanted in record.get("repoDigests", []):
                    return image_id
            return None
        image_id = self._tags().get(str(parsed.with_default_tag()))
        if image_id is not None and self._record(image_id) is None:
            return None
        return image_id

    def has(self, ref: str) -> bool:
        return self._image_id_for(ref) is not None

    def resolve(self, ref: str) -> Image:
        """The image for a pod's `image:`; ContainerRuntimeError ErrImageNeverPull when it is not here."""
        image_id = self._image_id_for(ref)
        record = self._record(image_id) if image_id else None
        if record is None or not all(self.has_layer(diff_id) for diff_id in record["diffIds"]):
            raise _not_present(ref)
        name = ref if _is_id_reference(ref) else str(parse_reference(ref).with_default_tag())
        return Image(
            id=record["id"],
            reference=name,
            layers=[os.path.join(self.layer_directory(diff_id), "root") for diff_id in record["diffIds"]],
            config=OciImageConfig(**record["config"]),
            size=record["size"],
            created=record["created"],
            repo_digests=list(record.get("repoDigests", [])),
            diff_ids=list(record["diffIds"]),
        )

    def inspect(self, ref: str) -> dict:
        """What `image inspect` prints: the record, names, layer directories and the config."""
        image = self.resolve(ref)
        record = self._record(image.id) or {}
        names = [references.parse(name).familiar() for name, value in self._tags().items() if value == image.id]
        try:
            config = json.loads(self.read_blob(image.id))
        except (OSError, ValueError):
            config = {}
        return {"Id": image.id, "RepoTags": sorted(names), "RepoDigests": image.repo_digests,
                "Created": datetime.fromtimestamp(image.created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "Size": image.size, "Platform": record.get("platform", ""), "Manifest": record.get("manifest", ""),
                "Config": config.get("config", {}), "RootFS": {"Type": "layers", "Layers": image.diff_ids},
                "LayerDirectories": image.layers}

    def list(self) -> list[ImageRow]:
        records = self._records()
        users: dict[str, int] = {}
        for record in records.values():
            for diff_id in set(record["diffIds"]):
                users[diff_id] = users.get(diff_id, 0) + 1
        rows = []
        for name, image_id in sorted(self._tags().items(), key=lambda item: references.parse(item[0]).familiar()):
            record = records.get(image_id)
            if record is None:
                continue
            parsed = references.parse(name)
            shared = sum(self.layer_size(diff_id) for diff_id in set(record["diffIds"]) if users.get(diff_id, 0) > 1)
            rows.append(ImageRow(parsed.familiar_name(), parsed.tag, image_id, record["size"], record["created"], shared))
        return rows

    # --- names and removal ----------------------------------------------------------------------

    def tag(self, source: str, target: str) -> None:
        with self.locked():
            image_id = self._image_id_for(source)
            if image_id is None:
                raise ImageStoreError(f'image "{source}" not found; list images with \'minikube-py image ls\'')
            tags = self._tags()
            tags[_full_name(target)] = image_id
            self._write_tags(tags)

    def untag(self, name: str) -> None:
        """Drop one name and nothing else: the image stays (nameless, `image prune` removes it)."""
        with self.locked():
            tags = self._tags()
            tags.pop(_full_name(name), None)
            self._write_tags(tags)

    def remove(self, ref: str) -> str:
        """Untag `ref` (an id removes every tag of it); the image goes when no name is left, and its
        layers when no other image uses them. Returns the id."""
        with self.locked():
            image_id = self._image_id_for(ref)
            if image_id is None:
                raise ImageStoreError(f'image "{ref}" not found; list images with \'minikube-py image ls\'')
            tags = self._tags()
            if _is_id_reference(ref) or "@" in ref:
                tags = {name: value for name, value in tags.items() if value != image_id}
            else:
                tags.pop(_full_name(ref), None)
            self._write_tags(tags)
            if image_id not in tags.values():
                os.unlink(self._record_path(image_id))
        self.remove_unused_layers()
        return image_id

    def prune(self, all_unused: bool = False, images_in_use: set[str] | None = None) -> tuple[list[str], int]:
        """Remove untagged images (all images no container uses with `all_unused`), unused layers and
        leftovers of interrupted work; returns (removed image ids, bytes freed)."""
        in_use = self.layers_in_use()
        removed = []
        with self.locked():
            tags = self._tags()
            for image_id, record in self._records().items():
                used = bool({os.path.join(self.layer_directory(d), "root") for d in record["diffIds"]} & in_use) \
                    or image_id in (images_in_use or set())
                if used:
                    continue
                if image_id not in tags.values() or all_unused:
                    tags = {name: value for name, value in tags.items() if value != image_id}
                    os.unlink(self._record_path(image_id))
                    removed.append(image_id)
            self._write_tags(tags)
        return removed, self.remove_unused_layers(sweep_leftovers=True)

    def layers_in_use(self) -> set[str]:
        """Layer root directories some container record (running or not) stacks."""
        used: set[str] = set()
        containers = os.path.join(self.home, "containers")
        for name in os.listdir(containers) if os.path.isdir(containers) else []:
            try:
                with open(os.path.join(containers, name, "state.json")) as file:
                    spec = json.load(file).get("spec") or {}
            except (OSError, ValueError):
                continue
            used.update(os.path.normpath(layer) for layer in spec.get("layers") or [])
        return used

    def remove_unused_layers(self, sweep_leftovers: bool = False) -> int:
        """Delete layers no image record names and no container stacks; returns bytes freed."""
        freed = 0
        with self.locked():
            wanted = {diff_id.removeprefix("sha256:") for record in self._records().values() for diff_id in record["diffIds"]}
            in_use = self.layers_in_use()
            for name in os.listdir(self.layers_directory):
                path = os.path.join(self.layers_directory, name)
                if name.startswith(".unpack-"):
                    if sweep_leftovers and time.time() - os.stat(path).st_mtime > 3600:
                        shutil.rmtree(path, ignore_errors=True)  # an unpack a crash cut short
                    continue
                if name in wanted or os.path.join(path, "root") in in_use:
                    continue
                freed += self.layer_size(f"sha256:{name}")
                shutil.rmtree(path, ignore_errors=True)
            if sweep_leftovers:
                for name in os.listdir(self.ingest_directory):
                    path = os.path.join(self.ingest_directory, name)
                    if time.time() - os.stat(path).st_mtime > 86400:
                        freed += os.stat(path).st_size
                        os.unlink(path)
            referenced = set()
            for record in self._records().values():
                referenced.add(record["id"].removeprefix("sha256:"))
                referenced.update(digest.removeprefix("sha256:") for digest in record.get("blobs", []))
                if record.get("manifest"):
                    referenced.add(record["manifest"].removeprefix("sha256:"))
            for name in os.listdir(self.blobs_directory):
                if name not in referenced and not name.endswith(".tmp"):
                    path = os.path.join(self.blobs_directory, name)
                    freed += os.stat(path).st_size
                    os.unlink(path)
        return freed

    # --- garbage collection at disk thresholds ---------------------------------------------------

    def disk_usage(self) -> tuple[float, int]:
        """(percent used, total bytes) of the file system the store is on."""
        disk = os.statvfs(self.directory)
        total = disk.f_blocks * disk.f_frsize
        return (100.0 * (total - disk.f_bavail * disk.f_frsize) / total if total else 0.0), total

    def mark_used(self, image_id: str) -> None:
        """Note that a container started from the image now (the record's mtime: garbage collection's order)."""
        try:
            os.utime(self._record_path(image_id))
        except FileNotFoundError:
            pass

    def collect_garbage(self, high_percent: float = 85, low_percent: float = 80,
                        keep: set[str] | None = None, min_age_seconds: float = 120) -> tuple[list[str], int]:
        """Kubelet's image garbage collection: when the disk under the store is `high_percent`
        full, remove images no container uses, least recently used first (each unused for at
        least `min_age_seconds`), until it is below `low_percent`. Returns (ids, bytes freed)."""
        usage, total = self.disk_usage()
        if usage < high_percent:
            return [], 0
        to_free = (usage - low_percent) / 100 * total
        in_use = self.layers_in_use()
        keep_ids = {self._image_id_for(ref) for ref in (keep or set())} | {self._image_id_for(BUSYBOX_REFERENCE)}
        candidates = []
        for image_id, record in self._records().items():
            layers = {os.path.join(self.layer_directory(diff_id), "root") for diff_id in record["diffIds"]}
            last_used = os.stat(self._record_path(image_id)).st_mtime
            if image_id in keep_ids or layers & in_use or time.time() - last_used < min_age_seconds:
                continue
            candidates.append((last_used, image_id))
        removed, freed = [], 0
        for _, image_id in sorted(candidates):
            if freed >= to_free:
                break
            with self.locked():
                tags = {name: value for name, value in self._tags().items() if value != image_id}
                self._write_tags(tags)
                os.unlink(self._record_path(image_id))
            removed.append(image_id)
            freed += self.remove_unused_layers()
        return removed, freed

    # --- images made here -----------------------------------------------------------------------

    def ensure_busybox(self, busybox_path: str = "/usr/bin/busybox") -> Image:
        """Build `busybox:latest` from the host's static busybox once; later calls only check it."""
        with open(busybox_path, "rb") as file:
            binary_digest = hashlib.file_digest(file, "sha256").hexdigest()
        image_id = self._image_id_for(BUSYBOX_REFERENCE)
        record = self._record(image_id) if image_id else None
        if record is not None and record["config"].get("labels", {}).get(BUSYBOX_LABEL) == binary_digest:
            return self.resolve(BUSYBOX_REFERENCE)
        layer = busybox_layer(busybox_path)
        diff_id, blob = self.add_tarball_layer(io.BytesIO(layer), "the busybox layer")
        config = OciImageConfig(cmd=["sh"], env=[DEFAULT_PATH], labels={BUSYBOX_LABEL: binary_digest})
        created = os.stat(busybox_path).st_mtime
        self.commit_image(_config_blob(config, [diff_id], created), [diff_id], [BUSYBOX_REFERENCE], blobs=[blob])
        return self.resolve(BUSYBOX_REFERENCE)

    def import_rootfs(self, ref: str, tarball: str | IO[bytes]) -> Image:
        """A root filesystem tarball (plain, gzip or zstd, path or stream) as a one-layer image.

        `docker import` semantics: no entrypoint or command, only the default PATH.
        """
        target = _full_name(ref)
        with _open_source(tarball) as raw:
            diff_id, blob = self.add_tarball_layer(raw, f"tarball for {ref}")
        config = OciImageConfig(env=[DEFAULT_PATH])
        self.commit_image(_config_blob(config, [diff_id], time.time()), [diff_id], [target], blobs=[blob])
        return self.resolve(target)

    def load_archive(self, path: str, name: str | None = None) -> list[str]:
        """Load an OCI image layout or `docker save` archive (tar file or directory); returns the names.

        Names come from the archive (`RepoTags`, or the OCI `io.containerd.image.name` /
        `org.opencontainers.image.ref.name` annotations); `name` is used when it carries none.
        """
        try:
            with ArchiveReader(path) as archive:
                loaded: list[str] = []
                for config_blob, layer_openers, refs in images_in(archive):
                    refs = refs or ([name] if name else [])
                    if not refs:
                        raise ImageStoreError(
                            f"{path}: the archive does not name its image (no RepoTags or ref.name annotation); "
                            "give a name to load it under")
                    diff_ids = self._load_layers(path, config_blob, layer_openers)
                    self.commit_image(config_blob, diff_ids, refs)
                    loaded.extend(normalize_reference(ref) for ref in refs)
                return loaded
        except ArchiveError as error:
            raise ImageStoreError(str(error)) from None

    def _load_layers(self, path: str, config_blob: bytes, layer_openers: list[LayerOpener]) -> list[str]:
        try:
            expected = list((json.loads(config_blob).get("rootfs") or {}).get("diff_ids") or [])
        except (ValueError, AttributeError):
            raise ImageStoreError(f"{path}: image config is not JSON") from None
        if expected and len(expected) != len(layer_openers):
            raise ImageStoreError(f"{path}: the config names {len(expected)} layers, the manifest {len(layer_openers)}")
        diff_ids = []
        for index, open_layer in enumerate(layer_openers):
            wanted = expected[index] if expected else None
            if wanted and self.has_layer(wanted):
                diff_ids.append(wanted)
                continue
            with open_layer() as raw:
                diff_ids.append(self.add_layer(raw, f"{path}: layer {index + 1}", wanted))
        return diff_ids

    # --- migration ------------------------------------------------------------------------------

    def _migrate_flattened_store(self) -> None:
        """Earlier releases kept one flattened `content/<id>/rootfs` per image: each becomes a layer."""
        content = os.path.join(self.directory, "content")
        with self.locked():
            for name in os.listdir(content):
                try:
                    with open(os.path.join(content, name, "image.json")) as file:
                        old = json.load(file)
                except (OSError, ValueError):
                    continue
                diff_id = f"sha256:{name}"
                if not self.has_layer(diff_id):
                    layer = self.layer_directory(diff_id)
                    remove_path(layer)
                    os.makedirs(layer, 0o700)
                    os.rename(os.path.join(content, name, "rootfs"), os.path.join(layer, "root"))
                    _write_json(os.path.join(layer, "layer.json"), {"diffId": diff_id, "size": old.get("size", 0),
                                                                    "blob": "", "migrated": True})
                config = {key: value for key, value in old.get("config", {}).items() if key in OciImageConfig.__dataclass_fields__}
                _write_json(self._record_path(diff_id), {
                    "id": diff_id, "config": OciImageConfig(**config).__dict__, "diffIds": [diff_id],
                    "created": old.get("created", time.time()), "size": old.get("size", 0), "platform": "",
                    "repoDigests": [], "manifest": ""})
            tags = {}
            for name, image_id in self._tags().items():
                try:
                    tags[_full_name(name)] = image_id
                except ContainerRuntimeError:
                    continue
            self._write_tags(tags)
            shutil.rmtree(content, ignore_errors=True)


# --- user lookup ------------------------------------------------------------------------------


def resolve_user(image_layers: list[str], user_spec: str) -> tuple[int, int]:
    """(uid, gid) for an image `USER` or a `user[:group]` spec, read from the image's /etc files.

    Numeric ids are taken as they are; a numeric user not in /etc/passwd gets gid 0, as runc does.
    """
    if not user_spec:
        return 0, 0
    user, _, group = user_spec.partition(":")
    passwd = [line.split(":") for line in read_image_file(image_layers, "etc/passwd").splitlines()]
    passwd = [entry for entry in passwd if len(entry) >= 4 and entry[2].isdigit() and entry[3].isdigit()]
    if user.isdigit():
        uid = int(user)
        gid = next((int(entry[3]) for entry in passwd if int(entry[2]) == uid), 0)
    else:
        entry = next((entry for entry in passwd if entry[0] == user), None)
        if entry is None:
            raise ContainerRuntimeError(
                "CreateContainerConfigError",
                f"unable to find user {user}: no matching entries in passwd file; "
                "use a numeric runAsUser or a user the image's /etc/passwd defines",
            )
        uid, gid = int(entry[2]), int(entry[3])
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            groups = [line.split(":") for line in read_image_file(image_layers, "etc/group").splitlines()]
            found = next((entry for entry in groups if len(entry) >= 3 and entry[0] == group and entry[2].isdigit()), None)
            if found is None:
                raise ContainerRuntimeError(
                    "CreateContainerConfigError",
                    f"unable to find group {group}: no matching entries in group file; "
                    "use a numeric runAsGroup or a group the image's /etc/group defines",
                )
            gid = int(found[2])
    return uid, gid


def read_image_file(image_layers: list[str], relative: str) -> str:
    """A file as the container sees it: the topmost layer that has it (a whiteout hides it)."""
    for layer in reversed(image_layers):
        try:
            path = resolve_inside(layer, relative, follow_last=True)
        except LayerError:
            continue
        if OverlayWhiteouts.is_whiteout(path):
            return ""
        try:
            with open(path, errors="replace") as file:
                return file.read()
        except OSError:
            continue
    return ""


# --- helpers ----------------------------------------------------------------------------------


def busybox_layer(busybox_path: str) -> bytes:
    """The busybox image's one layer as a tar: the binary, an applet symlink each, /etc basics."""
    applets = subprocess.run([busybox_path, "--list"], capture_output=True, text=True, check=True).stdout.split()
    mtime = int(os.stat(busybox_path).st_mtime)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name: str, kind: bytes, mode: int, data: bytes = b"", link: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.linkname, info.size = kind, mode, mtime, link, len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        for directory, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777), ("root", 0o700), ("home", 0o755),
                                ("var", 0o755), ("proc", 0o555), ("sys", 0o555), ("dev", 0o755), ("usr", 0o755),
                                ("usr/bin", 0o755)):
            add(directory, tarfile.DIRTYPE, mode)
        with open(busybox_path, "rb") as file:
            add("bin/busybox", tarfile.REGTYPE, 0o755, file.read())
        for applet in sorted(set(applets) | {"sh"}):
            if applet != "busybox" and "/" not in applet:
                add(f"bin/{applet}", tarfile.SYMTYPE, 0o777, link="busybox")
        add("etc/passwd", tarfile.REGTYPE, 0o644, BUSYBOX_PASSWD.encode())
        add("etc/group", tarfile.REGTYPE, 0o644, BUSYBOX_GROUP.encode())
    return buffer.getvalue()


def _config_blob(config: OciImageConfig, diff_ids: list[str], created: float) -> bytes:
    import platform as host

    from minikube_py.runtime.images import platforms

    document = {
        "created": datetime.fromtimestamp(created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "architecture": platforms.normalize("linux", host.machine()).architecture,
        "os": "linux",
        "config": config.to_oci(),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


@contextmanager
def _open_source(source: str | IO[bytes]) -> Iterator[IO[bytes]]:
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as file:
            yield file
    else:
        yield source


def _write_json(path: str, value: object) -> None:
    _write_bytes(path, json.dumps(value, indent=1).encode())


def _write_bytes(path: str, data: bytes) -> None:
    """Written under a temporary name and renamed: readers see all of it or nothing."""
    temporary = f"{path}.{os.getpid()}.{time.monotonic_ns()}.tmp"
    with open(temporary, "wb") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(data)
    os.replace(temporary, path)


def _parse_created(text: str | None) -> float:
    if not text:
        return time.time()
    try:
        return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()
