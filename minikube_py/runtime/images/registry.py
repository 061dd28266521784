"""A client of the OCI distribution API: manifests and blobs from a registry, over httpx.

`RegistryClient.repository(reference, keyring)` gives a `Repository` that knows the endpoints to
try (registries.yaml mirrors, then the registry itself; hosts.py) and authenticates the way
registries ask: a request without credentials, a 401 with a `WWW-Authenticate` challenge, then
a bearer token from the challenge's realm (anonymous, or with basic credentials, or an identity
token as a refresh token) or basic auth on every request. Tokens are kept per endpoint and scope.

Every answer is checked: manifests are parsed and their digest computed from the bytes (and
compared with the one asked for or `Docker-Content-Digest`), blobs are streamed into a file
while hashing and kept only when size and digest match. Connection errors, timeouts, 429 and
5xx are retried with doubling back-off; a partial blob resumes with a Range request.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import IO, Callable, Iterator

import httpx

from minikube_py.runtime.images.auth import Credentials, Keyring, parse_challenges
from minikube_py.runtime.images.hosts import Endpoint, RegistryHosts
from minikube_py.runtime.images.reference import Reference
from minikube_py.runtime.images.transport import Urllib3Transport

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
MANIFEST_SIZE_MAX = 4 << 20  # containerd's limit for a manifest or index
CHUNK = 1 << 20
Content = bytes | Callable[[], bytes | Iterator[bytes]] | None  # a request body; a callable makes it again for a retry


class RegistryError(Exception):
    """A registry operation failed. `kind` is what kubelet's message hinges on:
    "not_found", "unauthorized", "invalid" (a bad answer, a digest mismatch) or "unavailable"."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass
class Manifest:
    digest: str
    media_type: str
    body: bytes
    document: dict

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES or ("manifests" in self.document and "config" not in self.document)


@dataclass
class RetryPolicy:
    attempts: int = 4
    first_delay: float = 0.25
    connect_timeout: float = 10.0
    read_timeout: float = 30.0

    def delays(self) -> Iterator[float]:
        for attempt in range(self.attempts):
            yield 0.0 if attempt == 0 else self.first_delay * 2 ** (attempt - 1)


class RegistryClient:
    """One per node: httpx clients per endpoint (connection pools, TLS settings) and tokens."""

    def __init__(self, hosts: RegistryHosts | None = None, retry: RetryPolicy | None = None,
                 transport: httpx.BaseTransport | None = None, sleep: Callable[[float], None] = time.sleep):
        self.hosts = hosts or RegistryHosts()
        self.retry = retry or RetryPolicy()
        self.transport = transport  # tests pass httpx.MockTransport
        self.sleep = sleep
        self._clients: dict[str, httpx.Client] = {}
        self._tokens: dict[tuple[str, str, str], str] = {}  # (endpoint, scope, who) -> Authorization value
        self._lock = threading.Lock()

    def repository(self, reference: Reference, keyring: Keyring | None = None, push: bool = False) -> "Repository":
        """A repository to pull from (its mirrors first), or with `push` to push to (the registry itself)."""
        return Repository(self, reference, keyring or Keyring(), push)

    def http(self, endpoint: Endpoint) -> httpx.Client:
        with self._lock:
            client = self._clients.get(endpoint.url)
            if client is None:
                timeout = httpx.Timeout(self.retry.read_timeout, connect=self.retry.connect_timeout)
                if self.transport is not None:
                    client = httpx.Client(transport=self.transport, timeout=timeout, follow_redirects=True)
                else:
                    client = httpx.Client(transport=Urllib3Transport(endpoint.tls.verify()), timeout=timeout,
                                          follow_redirects=True, trust_env=False)
                self._clients[endpoint.url] = client
            return client

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()


class Repository:
    """One repository at one registry, through its endpoints."""

    def __init__(self, client: RegistryClient, reference: Reference, keyring: Keyring, push: bool = False):
        self.client = client
        self.reference = reference
        self.keyring = keyring
        self.push = push
        # Pushes go to the registry itself, never to a mirror (as containerd's pusher does).
        self.endpoints = [endpoint for endpoint in client.hosts.endpoints(reference.domain)
                          if not (push and endpoint.is_mirror)]
        self.actions = "pull,push" if push else "pull"
        self.endpoint: Endpoint | None = None  # the one that answered last
        # https:// endpoints that turned out to be plain HTTP servers: not tried again by this
        # Repository (one pull or push), as skopeo and containerd settle the scheme once.
        self.plain_http: set[str] = set()

    # ---- manifests ---------------------------------------------------------------------------

    def manifest(self, object_name: str) -> Manifest:
        """The manifest or index for a tag or digest, checked against its digest."""
        response = self._send("GET", "manifests", object_name, {"Accept": ACCEPT}, what=f"{self.reference}")
        try:
            body = response.read()
        finally:
            response.close()
        if len(body) > MANIFEST_SIZE_MAX:
            raise RegistryError("invalid", f"manifest of {self.reference} is larger than {MANIFEST_SIZE_MAX} bytes")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        expected = object_name if object_name.startswith("sha256:") else response.headers.get("Docker-Content-Digest", "")
        if expected.startswith("sha256:") and expected != digest:
            raise RegistryError("invalid", f"manifest {expected} of {self.reference}: the registry sent content whose "
                                           f"digest is {digest}; refusing it")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        try:
            document = json.loads(body)
        except ValueError:
            raise RegistryError("invalid", f"{self.reference}: the registry's answer is not a manifest "
                                           f"(Content-Type {media_type or 'none'}, not JSON)") from None
        if not isinstance(document, dict):
            raise RegistryError("invalid", f"{self.reference}: the registry's answer is not a manifest")
        media_type = document.get("mediaType") or media_type
        if media_type in DOCKER_SCHEMA1 or document.get("schemaVersion") == 1:
            raise RegistryError("invalid", f"{self.reference}: Docker image manifest schema 1 is not supported; "
                                           "push the image again with a current client (schema 2 or OCI)")
        if media_type not in INDEX_TYPES + MANIFEST_TYPES and not ("manifests" in document or "config" in document):
            raise RegistryError("invalid", f"{self.reference}: unknown manifest type {media_type or 'none'}")
        return Manifest(digest, media_type, body, document)

    # ---- blobs -------------------------------------------------------------------------------

    def fetch_blob(self, digest: str, size: int, destination: str, partial: str,
                   progress: Callable[[int], None] | None = None) -> None:
        """Download blob `digest` to `destination` through `partial` (resumed when present);
        the file appears only once size and digest match. `progress` gets the bytes held so far."""
        for delay in self.client.retry.delays():
            if delay:
                self.client.sleep(delay)
            try:
                self._fetch_blob_once(digest, size, destination, partial, progress)
                return
            except RegistryError as error:
                if error.kind != "unavailable":
                    raise
                last = error
            except (httpx.TransportError, OSError) as error:
                last = RegistryError("unavailable", f"blob {digest} of {self.reference}: {error or type(error).__name__}")
        raise last

    def _fetch_blob_once(self, digest: str, size: int, destination: str, partial: str,
                         progress: Callable[[int], None] | None) -> None:
        hashing = hashlib.sha256()
        have = 0
        if os.path.exists(partial):
            with open(partial, "rb") as file:
                while chunk := file.read(CHUNK):
                    hashing.update(chunk)
                    have += len(chunk)
            if size and have > size:
                os.unlink(partial)
                hashing, have = hashlib.sha256(), 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        response = self._send("GET", "blobs", digest, headers, what=f"blob {digest} of {self.reference}")
        try:
            if have and response.status_code != 206:
                hashing, have = hashlib.sha256(), 0  # no range support: start over
            if progress is not None and have:
                progress(have)
            with open(partial, "ab" if have else "wb") as file:
                os.fchmod(file.fileno(), 0o600)
                for chunk in response.iter_bytes(CHUNK):
                    file.write(chunk)
                    hashing.update(chunk)
                    have += len(chunk)
                    if size and have > size:
                        break
                    if progress is not None:
                        progress(have)
        finally:
            response.close()
        actual = "sha256:" + hashing.hexdigest()
        if (size and have != size) or actual != digest:
            if size and have < size:
                # Cut short: keep the partial file, the next attempt resumes from it.
                raise RegistryError("unavailable", f"blob {digest} of {self.reference}: got {have} of {size} bytes")
            os.unlink(partial)
            raise RegistryError("invalid", f"blob {digest} of {self.reference}: the registry sent {have} bytes with "
                                           f"digest {actual}, not the {size} bytes the manifest names; refusing it")
        os.replace(partial, destination)

    def stream_blob(self, digest: str, size: int, partial: str,
                    progress: Callable[[int], None] | None = None) -> "BlobReader":
        """The blob as a readable stream, copied into `partial` as it is read (so a cut pull can
        resume from it); `BlobReader.verify()` checks size and digest once everything is read."""
        response = self._send("GET", "blobs", digest, {}, what=f"blob {digest} of {self.reference}")
        return BlobReader(response, digest, size, partial, f"blob {digest} of {self.reference}", progress)

    # ---- pushing (OCI distribution spec: HEAD, cross-repository mount, POST/PATCH/PUT uploads) ----

    def blob_size(self, digest: str) -> int | None:
        """The size of blob `digest` in this repository, or None when the registry does not have it here."""
        try:
            response = self._send("HEAD", "blobs", digest, {}, what=f"blob {digest} of {self.reference}", ok=(200,))
        except RegistryError as error:
            if error.kind == "not_found":
                return None
            raise
        response.close()
        return int(response.headers.get("Content-Length") or 0)

    def mount_blob(self, digest: str, source_repository: str) -> bool:
        """Ask the registry to link blob `digest` from another of its repositories (no upload);
        False when it will not (it then opened an upload session, which is cancelled)."""
        what = f"mounting blob {digest} from {source_repository} into {self.reference}"
        response = self._send("POST", "blobs/uploads", f"?mount={digest}&from={source_repository}", {}, what,
                              content=b"", ok=(201, 202))
        response.close()
        if response.status_code == 201:
            return True
        location = response.headers.get("Location")
        if location:
            try:
                self._send("DELETE", "", self._absolute(location), {}, what, ok=(200, 202, 204, 404)).close()
            except RegistryError:
                pass  # an abandoned upload session expires on the registry's side
        return False

    def upload_blob(self, digest: str, size: int, opener: Callable[[], IO[bytes]],
                    progress: Callable[[int], None] | None = None, chunk_size: int = 16 << 20) -> None:
        """Upload a blob: one PUT when it fits in `chunk_size`, else PATCH chunks and a closing PUT.
        A cut upload starts again in a new session (retries with back-off, as for pulls)."""
        what = f"uploading blob {digest} to {self.reference}"
        last: RegistryError | None = None
        for delay in self.client.retry.delays():
            if delay:
                self.client.sleep(delay)
            try:
                self._upload_once(digest, size, opener, progress, chunk_size, what)
                return
            except RegistryError as error:
                if error.kind != "unavailable":
                    raise
                last = error
            except httpx.TransportError as error:
                last = RegistryError("unavailable", f"{what}: {error or type(error).__name__}")
        raise last or RegistryError("unavailable", f"{what}: the registry did not answer")

    def _upload_once(self, digest: str, size: int, opener: Callable[[], IO[bytes]],
                     progress: Callable[[int], None] | None, chunk_size: int, what: str) -> None:
        started = self._send("POST", "blobs/uploads", "", {}, what, content=b"", ok=(202,))
        started.close()
        location = self._location(started, what)
        with opener() as source:
            sent = 0
            if size > chunk_size:
                while chunk := source.read(chunk_size):
                    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(chunk)),
                               "Content-Range": f"{sent}-{sent + len(chunk) - 1}"}
                    answer = self._send("PATCH", "", location, headers, what, content=chunk, ok=(202,))
                    answer.close()
                    location = self._location(answer, what)
                    sent += len(chunk)
                    if progress is not None:
                        progress(sent)
                body: bytes | Iterator[bytes] = b""
            else:
                body = source.read()
                sent = len(body)
            url = httpx.URL(location).copy_merge_params({"digest": digest})
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(body))}
            self._send("PUT", "", str(url), headers, what, content=body, ok=(201, 204)).close()
        if progress is not None:
            progress(sent)

    def put_manifest(self, tag: str, media_type: str, body: bytes) -> str:
        """PUT a manifest under `tag` (or its digest); returns its digest as the registry names it."""
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        response = self._send("PUT", "manifests", tag, {"Content-Type": media_type}, f"manifest {self.reference}",
                              content=body, ok=(200, 201, 202))
        response.close()
        answered = response.headers.get("Docker-Content-Digest", digest)
        if answered != digest:
            raise RegistryError("invalid", f"manifest of {self.reference}: the registry stored it as {answered}, "
                                           f"not {digest}")
        return digest

    def _location(self, response: httpx.Response, what: str) -> str:
        location = response.headers.get("Location")
        if not location:
            raise RegistryError("invalid", f"{what}: the registry's answer has no upload Location")
        return self._absolute(location)

    def _absolute(self, location: str) -> str:
        assert self.endpoint is not None
        return location if "://" in location else self.endpoint.url + location

    # ---- requests, endpoints and auth ----------------------------------------------------------

    def _send(self, method: str, kind: str, object_name: str, headers: dict, what: str,
              content: "Content" = None, ok: tuple[int, ...] = (200, 206)) -> httpx.Response:
        """A streamed response with an `ok` status from the first endpoint that has the object
        (`kind` "manifests", "blobs" or "blobs/uploads"; an absolute URL in `object_name` is used as it is)."""
        failures: list[RegistryError] = []
        endpoints = [self.endpoint] if self.push and self.endpoint is not None else self.endpoints
        for endpoint in endpoints:
            if endpoint.url in self.plain_http:
                continue
            path = object_name if "://" in object_name else \
                f"/v2/{endpoint.repository(self.reference.path)}/{kind}/{object_name}"
            try:
                response = self._send_to(endpoint, method, path, headers, what, content, ok)
            except RegistryError as error:
                failures.append(error)
                if error.kind in ("unavailable", "not_found") or endpoint.is_mirror:
                    continue  # the next mirror, or the registry itself, may have it
                raise
            self.endpoint = endpoint
            return response
        # Report the registry's own answer when it gave one; a mirror's failure otherwise.
        for kind_wanted in ("unauthorized", "not_found", "invalid", "unavailable"):
            for failure in reversed(failures):
                if failure.kind == kind_wanted:
                    raise failure
        raise RegistryError("unavailable", f"{what}: no endpoint to try")

    def _send_to(self, endpoint: Endpoint, method: str, path: str, headers: dict, what: str,
                 content: "Content" = None, ok: tuple[int, ...] = (200, 206)) -> httpx.Response:
        http = self.client.http(endpoint)
        url = path if "://" in path else endpoint.url + path
        scope = f"repository:{endpoint.repository(self.reference.path)}:{self.actions}"
        authorized_once = False
        last: RegistryError | None = None
        for delay in self.client.retry.delays():
            if delay:
                self.client.sleep(delay)
            request_headers = dict(headers)
            authorization = self._cached_authorization(endpoint, scope)
            if authorization:
                request_headers["Authorization"] = authorization
            body = content() if callable(content) else content
            try:
                response = http.send(http.build_request(method, url, headers=request_headers, content=body), stream=True)
            except httpx.TransportError as error:
                last = RegistryError("unavailable", f"{what}: {endpoint.url} cannot be reached: "
                                                    f"{error or type(error).__name__}")
                if isinstance(error, httpx.ConnectError) and endpoint.url.startswith("https://") \
                        and "SSL" in str(error).upper():
                    # A plain HTTP server: retrying TLS is useless, the http:// endpoint is next.
                    if endpoint is not self.endpoints[-1]:
                        self.plain_http.add(endpoint.url)
                    break
                continue
            status = response.status_code
            if status in ok:
                return response
            body = _read_error_body(response)
            if status == 401 and not authorized_once:
                authorized_once = True
                self._authorize(endpoint, scope, response.headers.get("WWW-Authenticate", ""), what)
                last = None
                continue
            if status == 401 or status == 403:
                raise RegistryError("unauthorized", f"{'push' if self.push else 'pull'} access denied, repository does "
                                                    "not exist or may require authorization: server message: "
                                                    f"{body or 'unauthorized'}")
            if status == 404:
                raise RegistryError("not_found", f"{what}: not found")
            last = RegistryError("unavailable" if status >= 500 or status == 429 else "invalid",
                                 f"{what}: unexpected status from {method} request to {url}: {status} "
                                 f"{response.reason_phrase}{': ' + body if body else ''}")
            if last.kind == "invalid":
                raise last
        raise last or RegistryError("unavailable", f"{what}: {endpoint.url} did not answer")

    def _credentials(self, endpoint: Endpoint) -> list[Credentials]:
        found = self.keyring.lookup(self.reference.domain, self.reference.path)
        if endpoint.is_mirror or not found:
            found = found + ([endpoint.credentials] if endpoint.credentials else [])
        return found

    def _cached_authorization(self, endpoint: Endpoint, scope: str) -> str:
        with self.client._lock:
            return self.client._tokens.get((endpoint.url, scope, self._who(endpoint)), "")

    def _who(self, endpoint: Endpoint) -> str:
        credentials = self._credentials(endpoint)
        return f"{credentials[0].username}:{hashlib.sha256(credentials[0].password.encode()).hexdigest()}" \
            if credentials else ""

    def _authorize(self, endpoint: Endpoint, scope: str, header: str, what: str) -> None:
        challenges = parse_challenges(header)
        credentials = self._credentials(endpoint)
        authorization = ""
        bearer = next((challenge for challenge in challenges if challenge.scheme == "bearer"), None)
        basic = next((challenge for challenge in challenges if challenge.scheme == "basic"), None)
        if bearer is not None and bearer.parameters.get("realm"):
            authorization = "Bearer " + self._fetch_token(endpoint, bearer.parameters, scope, credentials, what)
        elif basic is not None:
            if not credentials:
                raise RegistryError("unauthorized", "pull access denied, repository does not exist or may require "
                                                    "authorization: server message: unauthorized: authentication required")
            authorization = credentials[0].basic()
        else:
            raise RegistryError("unauthorized", f"{what}: the registry asks for authentication it does not name "
                                                f"(WWW-Authenticate: {header or 'missing'})")
        with self.client._lock:
            self.client._tokens[(endpoint.url, scope, self._who(endpoint))] = authorization

    def _fetch_token(self, endpoint: Endpoint, parameters: dict, scope: str, credentials: list[Credentials],
                     what: str) -> str:
        http = self.client.http(endpoint)
        query = {"scope": parameters.get("scope") or scope}
        if parameters.get("service"):
            query["service"] = parameters["service"]
        headers = {}
        if credentials and credentials[0].identity_token:
            response = http.post(parameters["realm"], data={**query, "grant_type": "refresh_token",
                                                            "refresh_token": credentials[0].identity_token,
                                                            "client_id": "minikube-py"})
        else:
            if credentials:
                headers["Authorization"] = credentials[0].basic()
            response = http.get(parameters["realm"], params=query, headers=headers)
        if response.status_code in (401, 403):
            raise RegistryError("unauthorized", "pull access denied, repository does not exist or may require "
                                                f"authorization: failed to fetch {'oauth' if credentials else 'anonymous'} "
                                                f"token: {response.status_code} {response.reason_phrase}: unauthorized")
        if response.status_code != 200:
            raise RegistryError("unavailable", f"{what}: token server {parameters['realm']} answered "
                                               f"{response.status_code} {response.reason_phrase}")
        try:
            token = response.json()
            return str(token.get("token") or token["access_token"])
        except (ValueError, KeyError, AttributeError):
            raise RegistryError("invalid", f"{what}: token server {parameters['realm']} sent no token") from None


class BlobReader(io.RawIOBase):
    """A blob download read as a stream (by the layer unpacker), hashed and kept in a partial file."""

    def __init__(self, response: httpx.Response, digest: str, size: int, partial: str, what: str,
                 progress: Callable[[int], None] | None):
        self.response, self.digest, self.size, self.partial, self.what = response, digest, size, partial, what
        self.progress = progress
        self.chunks = response.iter_bytes()  # as the transport reads them (1 MiB), not re-chunked
        self.hash = hashlib.sha256()
        self.count = 0
        self.pending = b""
        self.offset = 0  # of the next unread byte in `pending`
        self.file = open(partial, "wb")
        os.fchmod(self.file.fileno(), 0o600)

    def readable(self) -> bool:
        return True

    def _next_chunk(self) -> None:
        try:
            chunk = next(self.chunks, b"")
        except httpx.HTTPError as error:
            raise RegistryError("unavailable", f"{self.what}: {error or type(error).__name__}") from None
        if chunk:
            self.hash.update(chunk)
            self.file.write(chunk)
            self.count += len(chunk)
            if self.progress is not None:
                self.progress(self.count)
        self.pending, self.offset = chunk, 0

    def read(self, size: int = -1) -> bytes:
        """The next bytes as they came off the wire (no copy when a whole chunk is wanted)."""
        if self.offset >= len(self.pending):
            self._next_chunk()
        if self.offset == 0 and (size < 0 or size >= len(self.pending)):
            self.offset = len(self.pending)
            return self.pending
        end = len(self.pending) if size < 0 else self.offset + size
        data = self.pending[self.offset:end]
        self.offset += len(data)
        return data

    def readinto(self, buffer) -> int:
        if self.offset >= len(self.pending):
            self._next_chunk()
        data = memoryview(self.pending)[self.offset:self.offset + len(buffer)]
        count = len(data)
        buffer[:count] = data
        self.offset += count
        return count

    def verify(self) -> None:
        """Read what the unpacker left, then check size and digest (a mismatch drops the partial file)."""
        while self.read(CHUNK):
            pass
        self.file.close()
        actual = "sha256:" + self.hash.hexdigest()
        if self.size and self.count < self.size:
            # Cut short: the partial file stays, the next fetch resumes from it.
            raise RegistryError("unavailable", f"{self.what}: got {self.count} of {self.size} bytes")
        if (self.size and self.count != self.size) or actual != self.digest:
            os.unlink(self.partial)
            raise RegistryError("invalid", f"{self.what}: the registry sent {self.count} bytes with digest {actual}, "
                                           f"not the {self.size} bytes the manifest names; refusing it")

    def close(self) -> None:
        if not self.file.closed:
            self.file.close()
        self.response.close()
        super().close()


def _read_error_body(response: httpx.Response) -> str:
    """The registry's error as `code: message` (distribution's error JSON), else a short text."""
    try:
        body = response.read()[:4096]
    except httpx.HTTPError:
        return ""
    finally:
        response.close()
    try:
        errors = json.loads(body).get("errors") or []
        return "; ".join(f"{str(error.get('code', '')).lower()}: {error.get('message', '')}" for error in errors)
    except (ValueError, AttributeError):
        text = body.decode(errors="replace").strip()
        if text.lstrip().startswith("<"):
            return "(an HTML page, not a registry answer)"
        return text[:200]
