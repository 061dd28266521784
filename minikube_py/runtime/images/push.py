"""Pushing an image of the node's store to a registry: blobs first, the manifest last.

`Pusher.push(reference, keyring)` follows the OCI distribution spec as containerd's pusher does.
Each layer blob is skipped when the repository has it (HEAD), else mounted from another
repository of the same registry that the image was pulled from or pushed to (a cross-repository
mount: no bytes sent), else uploaded: in one PUT when small, in PATCH chunks when large. The
config follows, then the manifest under the tag. Auth is the pull's (bearer token or basic,
credentials from `--creds` or registries.yaml), with `pull,push` scope.

The store keeps a pulled layer only unpacked, so a layer whose compressed blob the registry does
not have is packed again from its directory (pack.py); layers made here (busybox, import, build)
keep the blob they were packed to and send it. When a repacked layer's diffID differs (a layer
loaded from a tar this packer would not write), the image goes out with a config naming the new
diffIDs, which is the pushed image's new id. An image whose layers all reach the registry under their original blobs is pushed with
its original manifest, so its digest does not change (pushing `team/app:v1` as `team/copy:v1`
gives the same repo digest).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Callable

from minikube_py.runtime.images.auth import Keyring
from minikube_py.runtime.images.pack import pack_layer
from minikube_py.runtime.images.reference import InvalidReference, Reference, parse
from minikube_py.runtime.images.registry import OCI_MANIFEST, RegistryClient, RegistryError, Repository
from minikube_py.runtime.images.store import ImageStore, ImageStoreError
from minikube_py.runtime.types import ContainerRuntimeError

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


class PushError(Exception):
    """A push failed; `kind` is "not_found" (no such local image), "unauthorized", "invalid" or "unavailable"."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass
class BlobProgress:
    """One blob's state for a progress display."""

    digest: str
    size: int
    done: int
    state: str  # "preparing", "pushing", "pushed", "mounted", "layer already exists"


@dataclass
class PushResult:
    reference: str
    digest: str  # of the manifest
    size: int  # of the manifest
    uploaded: int  # bytes sent
    seconds: float


class Pusher:
    def __init__(self, store: ImageStore, client: RegistryClient | None = None, chunk_size: int = 16 << 20):
        self.store = store
        self.client = client or RegistryClient()
        self.chunk_size = chunk_size

    def push(self, text: str, keyring: Keyring | None = None,
             progress: Callable[[BlobProgress], None] | None = None) -> PushResult:
        try:
            reference = parse(text).with_default_tag()
        except InvalidReference as error:
            raise PushError("invalid", f'invalid reference format "{text}": {error}') from None
        if reference.digest:
            raise PushError("invalid", f'cannot push "{text}": push a name with a tag, not a digest')
        try:
            image = self.store.resolve(text)
        except ContainerRuntimeError:
            raise PushError("not_found", f"An image does not exist locally with the tag: {reference.familiar()}; "
                                         "list images with 'minikube-py image ls'") from None
        repository = self.client.repository(reference, keyring or Keyring(), push=True)
        started = time.monotonic()
        scratch = tempfile.mkdtemp(prefix=".push-", dir=self.store.directory)
        try:
            return self._push(reference, image, repository, scratch, progress, started)
        except RegistryError as error:
            raise PushError(error.kind, f'failed to push "{reference}": {error.message}') from None
        except (ImageStoreError, OSError) as error:
            raise PushError("invalid", f'failed to push "{reference}": {error}') from None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _push(self, reference: Reference, image, repository: Repository, scratch: str,
              progress: Callable[[BlobProgress], None] | None, started: float) -> PushResult:
        uploaded = 0
        sources = self._mount_sources(image, reference)
        media_types = self._layer_media_types(image.id)
        descriptors: list[dict] = []
        diff_ids: list[str] = []
        for index, diff_id in enumerate(image.diff_ids):
            blob = self.store.layer_blob(diff_id)
            state = BlobProgress(blob or diff_id, 0, 0, "preparing")
            size, how = self._reuse(repository, blob, sources) if blob else (None, "")
            if size is not None:
                state.size, state.done, state.state = size, size, how
                descriptors.append({"mediaType": media_types.get(blob, OCI_LAYER_GZIP), "digest": blob, "size": size})
                diff_ids.append(diff_id)
            elif blob and self.store.has_blob(blob):  # a layer built here keeps its blob
                size = os.path.getsize(self.store.blob_path(blob))
                state.size = size
                uploaded += self._send_blob(repository, blob, size, self.store.blob_path(blob), state, progress)
                descriptors.append({"mediaType": OCI_LAYER_GZIP, "digest": blob, "size": size})
                diff_ids.append(diff_id)
            else:
                layer_scratch = os.path.join(scratch, str(index))
                os.mkdir(layer_scratch)
                packed = pack_layer(self.store.layer_directory(diff_id) + "/root", layer_scratch)
                state.digest, state.size = packed.digest, packed.size
                if progress is not None:
                    progress(state)
                uploaded += self._send_blob(repository, packed.digest, packed.size, packed.blob_path, state, progress)
                descriptors.append({"mediaType": OCI_LAYER_GZIP, "digest": packed.digest, "size": packed.size})
                diff_ids.append(packed.diff_id)
                os.unlink(packed.tar_path)
            if progress is not None:
                progress(state)
        original_manifest = self._original_manifest(image.id, descriptors)
        config_blob = self.store.read_blob(image.id)
        if diff_ids != image.diff_ids:
            config = json.loads(config_blob)
            config.setdefault("rootfs", {"type": "layers"})["diff_ids"] = diff_ids
            config_blob = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
            original_manifest = None
        config_digest = "sha256:" + hashlib.sha256(config_blob).hexdigest()
        if self._reuse(repository, config_digest, sources)[0] is None:
            path = os.path.join(scratch, "config.json")
            with open(path, "wb") as file:
                file.write(config_blob)
            uploaded += self._send_blob(repository, config_digest, len(config_blob), path,
                                        BlobProgress(config_digest, len(config_blob), 0, "pushing"), None)
        if original_manifest is not None:
            media_type, body = original_manifest
        else:
            media_type = OCI_MANIFEST
            body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_blob)},
                               "layers": descriptors}, separators=(",", ":")).encode()
        digest = repository.put_manifest(reference.tag, media_type, body)
        if config_digest == image.id:
            self.store.put_blob(body)
            self.store.add_repo_digest(image.id, f"{reference.name}@{digest}", digest)
        return PushResult(str(reference), digest, len(body), uploaded, time.monotonic() - started)

    def _mount_sources(self, image, reference: Reference) -> list[str]:
        """Repositories of the same registry the image is known in (its repo digests)."""
        sources = []
        for repo_digest in image.repo_digests:
            try:
                known = parse(repo_digest)
            except InvalidReference:
                continue
            if known.domain == reference.domain and known.path != reference.path and known.path not in sources:
                sources.append(known.path)
        return sources

    def _reuse(self, repository: Repository, blob: str, sources: list[str]) -> tuple[int | None, str]:
        """(size, "layer already exists" | "mounted") once the repository has `blob` without an
        upload, (None, "") when it must be uploaded."""
        size = repository.blob_size(blob)
        if size is not None:
            return size, "layer already exists"
        for source in sources:
            if repository.mount_blob(blob, source):
                return repository.blob_size(blob), "mounted"
        return None, ""

    def _send_blob(self, repository: Repository, digest: str, size: int, path: str, state: BlobProgress,
                   progress: Callable[[BlobProgress], None] | None) -> int:
        if repository.blob_size(digest) is not None:
            state.done, state.state = size, "layer already exists"
            return 0

        def sent(count: int) -> None:
            state.done, state.state = count, "pushing"
            if progress is not None:
                progress(state)

        repository.upload_blob(digest, size, lambda: open(path, "rb"), sent, self.chunk_size)
        state.done, state.state = size, "pushed"
        return size

    def _layer_media_types(self, image_id: str) -> dict[str, str]:
        digest = self.store.manifest_of(image_id)
        try:
            document = json.loads(self.store.read_blob(digest)) if digest else {}
            return {str(layer["digest"]): str(layer.get("mediaType") or OCI_LAYER_GZIP) for layer in document["layers"]}
        except (OSError, ValueError, KeyError, TypeError, ImageStoreError):
            return {}

    def _original_manifest(self, image_id: str, descriptors: list[dict]) -> tuple[str, bytes] | None:
        """The manifest the image was pulled as, when it names exactly these layer blobs."""
        digest = self.store.manifest_of(image_id)
        if not digest or not self.store.has_blob(digest):
            return None
        body = self.store.read_blob(digest)
        try:
            document = json.loads(body)
            layers = [layer["digest"] for layer in document["layers"]]
        except (ValueError, KeyError, TypeError):
            return None
        if layers != [descriptor["digest"] for descriptor in descriptors] or document.get("config", {}).get("digest") != image_id:
            return None
        return str(document.get("mediaType") or OCI_MANIFEST), body
