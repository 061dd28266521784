"""Pulling an image from a registry into the store: resolve, pick the platform, fetch, unpack.

`Puller.pull(reference, keyring)` follows containerd's steps: resolve the reference to a
manifest (through an index when the image is multi-platform, picking this host's platform),
fetch the config, then each layer the store does not have yet, several at a time; each layer
blob is verified by digest (one re-fetch when a registry sends damaged bytes), unpacked once into
its own directory with its diffID checked against the config, and its compressed blob dropped.
The image is recorded last, so an interrupted pull leaves only complete layers and resumable
partial blobs behind.

Pulls of the same reference share one operation (two pods pulling `nginx` at once download it
once); pulls of images that share layers fetch each shared layer once (a per-layer lock).
Errors read like containerd's (`failed to pull and unpack image "...": failed to resolve
reference "...": ...: not found`), and `PullError.kind` tells not-found, unauthorized and the rest
apart.
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from minikube_py.runtime.images import platforms
from minikube_py.runtime.images.auth import Keyring
from minikube_py.runtime.images.reference import InvalidReference, Reference, parse
from minikube_py.runtime.images.registry import RegistryClient, RegistryError, Repository
from minikube_py.runtime.images.store import Image, ImageStore, ImageStoreError

LAYER_MEDIA_TYPES = (
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
)


class PullError(Exception):
    """A pull failed; `kind` is "not_found", "unauthorized", "invalid", "unavailable" or "store"."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass
class LayerProgress:
    """One layer's state for a progress display."""

    digest: str
    size: int
    done: int  # bytes held
    state: str  # "waiting", "downloading", "unpacking", "complete", "already exists"


@dataclass
class PullResult:
    image: Image
    reference: str  # normalized, e.g. docker.io/library/nginx:1.27
    repo_digest: str  # name@sha256:... of what the reference resolved to
    downloaded: int  # bytes fetched by this pull
    seconds: float
    shared: bool = False  # this caller waited on another caller's pull of the same reference


class _Flight:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: PullResult | None = None
        self.error: BaseException | None = None


class Puller:
    def __init__(self, store: ImageStore, client: RegistryClient | None = None,
                 platform: platforms.Platform | None = None, parallel_layers: int = 6):
        self.store = store
        self.client = client or RegistryClient()
        self.platform = platform or platforms.host()
        self.parallel_layers = parallel_layers
        self._flights: dict[str, _Flight] = {}
        self._lock = threading.Lock()

    def pull(self, text: str, keyring: Keyring | None = None,
             progress: Callable[[LayerProgress], None] | None = None) -> PullResult:
        try:
            reference = parse(text).with_default_tag()
        except InvalidReference as error:
            raise PullError("invalid", f'failed to pull and unpack image "{text}": {error}') from None
        key = str(reference)
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            started = time.monotonic()
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            assert flight.result is not None
            return PullResult(flight.result.image, key, flight.result.repo_digest, 0, time.monotonic() - started,
                              shared=True)
        try:
            flight.result = self._pull(reference, keyring or Keyring(), progress)
            return flight.result
        except BaseException as error:
            flight.error = error
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def _pull(self, reference: Reference, keyring: Keyring, progress) -> PullResult:
        started = time.monotonic()
        name = str(reference)
        repository = self.client.repository(reference, keyring)
        try:
            top = repository.manifest(reference.object)
        except RegistryError as error:
            raise PullError(error.kind, f'failed to pull and unpack image "{name}": failed to resolve reference '
                                        f'"{name}": {error.message}') from None
        try:
            blobs = [self.store.put_blob(top.body)]
            manifest = top
            if top.is_index:
                try:
                    chosen = platforms.select(top.document.get("manifests") or [], self.platform)
                except platforms.NoMatchingPlatform as error:
                    raise PullError("not_found", f'failed to pull and unpack image "{name}": {error}') from None
                manifest = repository.manifest(str(chosen.get("digest", "")))
                blobs.append(self.store.put_blob(manifest.body))
            config_descriptor = manifest.document.get("config") or {}
            layers = manifest.document.get("layers") or []
            config_blob = self._fetch_small_blob(repository, config_descriptor)
            try:
                config = json.loads(config_blob)
                diff_ids = list(config["rootfs"]["diff_ids"])
            except (ValueError, KeyError, TypeError):
                raise PullError("invalid", f'failed to pull and unpack image "{name}": its config '
                                           f'{config_descriptor.get("digest")} has no rootfs.diff_ids') from None
            if len(diff_ids) != len(layers):
                raise PullError("invalid", f'failed to pull and unpack image "{name}": the manifest has {len(layers)} '
                                           f"layers, the config {len(diff_ids)}")
            for layer in layers:
                if layer.get("mediaType") and layer["mediaType"] not in LAYER_MEDIA_TYPES:
                    raise PullError("invalid", f'failed to pull and unpack image "{name}": layer {layer.get("digest")} '
                                               f'has media type {layer["mediaType"]}, which cannot be unpacked here')
            downloaded = self._fetch_layers(repository, name, layers, diff_ids, progress)
            repo_digest = f"{reference.name}@{top.digest}"
            self.store.commit_image(config_blob, diff_ids, [name] if reference.tag and not reference.digest else [],
                                    manifest.digest, [repo_digest], blobs)
            image = self.store.resolve(name)
        except RegistryError as error:
            raise PullError(error.kind, f'failed to pull and unpack image "{name}": failed to copy: {error.message}') from None
        except (ImageStoreError, OSError) as error:
            raise PullError("store", f'failed to pull and unpack image "{name}": failed to extract layer: {error}') from None
        return PullResult(image, name, repo_digest, downloaded, time.monotonic() - started)

    def _fetch_small_blob(self, repository: Repository, descriptor: dict) -> bytes:
        digest, size = str(descriptor.get("digest", "")), int(descriptor.get("size") or 0)
        path = self.store.blob_path(digest)
        if not os.path.exists(path):
            repository.fetch_blob(digest, size, path, self.store.partial_path(digest))
        return self.store.read_blob(digest)

    def _stream_layer(self, repository: Repository, name: str, state: LayerProgress, diff_id: str, partial: str,
                      on_bytes) -> None:
        """Unpack a layer while it downloads; its blob is checked before the layer is kept.

        A layer the unpacker refuses is refused for good only when the blob itself was whole and
        matched its digest; a damaged transfer raises RegistryError, so the caller fetches again.
        """
        reader = repository.stream_blob(state.digest, state.size, partial, on_bytes)
        try:
            self.store.add_layer(reader, f"layer {state.digest} of {name}", diff_id, state.digest, verify=reader.verify)
        except ImageStoreError:
            if not reader.file.closed:
                reader.verify()  # raises RegistryError when the bytes were damaged in transit
            if os.path.exists(partial):
                os.unlink(partial)  # the blob is fine and its layer is not: nothing to resume
            raise
        finally:
            reader.close()
        os.unlink(partial)

    def _fetch_layers(self, repository: Repository, name: str, layers: list[dict], diff_ids: list[str],
                      progress) -> int:
        states = [LayerProgress(str(layer.get("digest", "")), int(layer.get("size") or 0), 0, "waiting") for layer in layers]
        downloaded = [0] * len(layers)

        def report(index: int) -> None:
            if progress is not None:
                progress(states[index])

        def fetch(index: int) -> None:
            state, diff_id = states[index], diff_ids[index]
            if self.store.has_layer(diff_id):
                state.state, state.done = "already exists", state.size
                report(index)
                return
            with self.store.locked(f"blob-{state.digest.removeprefix('sha256:')[:16]}"):
                if self.store.has_layer(diff_id):  # another pull unpacked it while we waited
                    state.state, state.done = "already exists", state.size
                    report(index)
                    return
                blob = self.store.blob_path(state.digest)
                partial = self.store.partial_path(state.digest)
                resumed_from = os.path.getsize(partial) if os.path.exists(partial) else 0

                def on_bytes(held: int) -> None:
                    state.state, state.done = "downloading", held
                    report(index)

                if not os.path.exists(blob) and not os.path.exists(partial):
                    # The common case: unpack while downloading, the blob kept only as a partial
                    # file until its digest is checked (and resumable if the pull is cut).
                    try:
                        self._stream_layer(repository, name, state, diff_id, partial, on_bytes)
                        downloaded[index] = state.size
                        state.state, state.done = "complete", state.size
                        report(index)
                        return
                    except RegistryError as error:
                        if error.kind not in ("invalid", "unavailable"):
                            raise
                        # Cut short (the partial file resumes) or damaged (dropped): fetch it whole.
                    resumed_from = os.path.getsize(partial) if os.path.exists(partial) else 0
                if not os.path.exists(blob):
                    try:
                        repository.fetch_blob(state.digest, state.size, blob, partial, on_bytes)
                    except RegistryError as error:
                        if error.kind != "invalid":
                            raise
                        # A damaged copy was thrown away: fetch it once more before giving up.
                        repository.fetch_blob(state.digest, state.size, blob, partial, on_bytes)
                    downloaded[index] = state.size - resumed_from
                state.state = "unpacking"
                report(index)
                try:
                    with open(blob, "rb") as stream:
                        self.store.add_layer(stream, f"layer {state.digest} of {name}", diff_id, state.digest)
                finally:
                    os.unlink(blob)  # unpacked (or refused): the layer directory is what is kept
                state.state, state.done = "complete", state.size
                report(index)

        with ThreadPoolExecutor(max_workers=max(1, self.parallel_layers), thread_name_prefix="image-layer") as pool:
            futures = [pool.submit(fetch, index) for index in range(len(layers))]
            errors = [future.exception() for future in futures]
        for error in errors:
            if error is not None:
                raise error
        return sum(downloaded)
