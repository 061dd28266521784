"""Reading image archives: `docker save` tarballs and OCI image layouts (a tar file or a directory).

`image load` and the tests' fixtures produce these; each image comes out as its config blob, the
openers of its layer blobs (checked against their digests as they are read) and the names the
archive gives it. The store unpacks the layers (unpack.py) like pulled ones.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
from contextlib import contextmanager
from typing import IO, Callable, ContextManager, Iterator

from minikube_py.runtime.images import platforms
from minikube_py.runtime.images.unpack import HashingReader, LayerError, member_path, resolve_inside

TAG_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
LayerOpener = Callable[[], ContextManager[IO[bytes]]]


class ArchiveError(Exception):
    """An archive that cannot be loaded; the message names the archive and what is wrong."""


class ArchiveReader:
    """Files of an image archive, whether a tar file or an unpacked directory."""

    def __init__(self, path: str):
        self.path = path
        self.tar: tarfile.TarFile | None = None

    def __enter__(self) -> "ArchiveReader":
        if not os.path.isdir(self.path):
            try:
                self.tar = tarfile.open(self.path, "r:*")
            except (tarfile.TarError, OSError) as error:
                raise ArchiveError(f"{self.path}: cannot read the image archive ({error})") from None
        return self

    def __exit__(self, *exc) -> None:
        if self.tar is not None:
            self.tar.close()

    def _member_name(self, name: str) -> str:
        try:
            return member_path(name, self.path)
        except LayerError as error:
            raise ArchiveError(str(error)) from None

    def exists(self, name: str) -> bool:
        name = self._member_name(name)
        if self.tar is None:
            return os.path.isfile(resolve_inside(self.path, name, follow_last=True))
        for candidate in (name, f"./{name}"):
            try:
                member = self.tar.getmember(candidate)
            except KeyError:
                continue
            return member.isfile() or member.islnk()
        return False

    def open(self, name: str) -> IO[bytes]:
        name = self._member_name(name)
        if self.tar is None:
            try:
                return open(resolve_inside(self.path, name, follow_last=True), "rb")
            except OSError as error:
                raise ArchiveError(f"{self.path}: {name}: {error.strerror}") from None
        for candidate in (name, f"./{name}"):
            try:
                extracted = self.tar.extractfile(candidate)
            except KeyError:
                continue
            if extracted is not None:
                return extracted
        raise ArchiveError(f"{self.path}: the archive lists {name} but does not contain it")

    def read(self, name: str) -> bytes:
        with self.open(name) as file:
            return file.read()

    def read_json(self, name: str):
        try:
            return json.loads(self.read(name))
        except ValueError as error:
            raise ArchiveError(f"{self.path}: {name} is not valid JSON ({error})") from None


def images_in(archive: ArchiveReader) -> Iterator[tuple[bytes, list[LayerOpener], list[str]]]:
    """(config blob, layer openers, names) of each image in a docker-save archive or OCI layout."""
    if archive.exists("manifest.json"):
        return _docker_save_images(archive)
    if archive.exists("index.json"):
        return _oci_layout_images(archive)
    raise ArchiveError(f"{archive.path}: neither a docker-save archive (manifest.json) nor an OCI image layout (index.json)")


def _docker_save_images(archive: ArchiveReader):
    manifest = archive.read_json("manifest.json")
    if not isinstance(manifest, list):
        raise ArchiveError(f"{archive.path}: manifest.json must be a list of images")
    for entry in manifest:
        config_blob = archive.read(entry["Config"])
        layers = [_opener(archive, layer) for layer in entry.get("Layers") or []]
        yield config_blob, layers, list(entry.get("RepoTags") or [])


def _oci_layout_images(archive: ArchiveReader):
    index = archive.read_json("index.json")
    for descriptor in index.get("manifests") or []:
        annotations = descriptor.get("annotations") or {}
        names = []
        full_name = annotations.get("io.containerd.image.name")
        ref_name = annotations.get("org.opencontainers.image.ref.name")
        if full_name:
            names.append(full_name)
        elif ref_name and ("/" in ref_name or ":" in ref_name or not TAG_PATTERN.fullmatch(ref_name)):
            names.append(ref_name)
        manifest = _image_manifest(archive, descriptor)
        config_blob = verified_blob(archive, manifest["config"]["digest"])
        layers = [_opener(archive, blob_path(layer["digest"]), layer["digest"]) for layer in manifest.get("layers") or []]
        yield config_blob, layers, names


def _image_manifest(archive: ArchiveReader, descriptor: dict) -> dict:
    """Follow image indexes down to the manifest for this machine's platform."""
    for _ in range(4):
        document = json.loads(verified_blob(archive, descriptor["digest"]))
        if "config" in document:
            return document
        candidates = document.get("manifests") or []
        if not candidates:
            break
        try:
            descriptor = platforms.select(candidates, platforms.host())
        except platforms.NoMatchingPlatform as error:
            raise ArchiveError(f"{archive.path}: {error}") from None
    raise ArchiveError(f"{archive.path}: no image manifest found under {descriptor.get('digest')}")


def blob_path(digest: str) -> str:
    algorithm, _, hex_digest = digest.partition(":")
    if algorithm != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", hex_digest):
        raise ArchiveError(f"unsupported or malformed digest {digest!r}; only sha256 is supported")
    return f"blobs/sha256/{hex_digest}"


def verified_blob(archive: ArchiveReader, digest: str) -> bytes:
    blob = archive.read(blob_path(digest))
    if "sha256:" + hashlib.sha256(blob).hexdigest() != digest:
        raise ArchiveError(f"{archive.path}: blob {digest} does not match its digest; the archive is damaged")
    return blob


def _opener(archive: ArchiveReader, name: str, digest: str | None = None) -> LayerOpener:
    """A function opening one layer stream; with a digest, the stream is checked when fully read."""

    @contextmanager
    def open_layer() -> Iterator[IO[bytes]]:
        with archive.open(name) as raw:
            hashing = HashingReader(raw)
            yield hashing
            if digest is not None and hashing.finish() != digest:
                raise ArchiveError(f"{archive.path}: layer {digest} does not match its digest; the archive is damaged")

    return open_layer
