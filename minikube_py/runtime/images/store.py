"""The local image store: images as unpacked root filesystems plus their config, found by name.

minikube-py never pulls. Images get here three ways: `busybox:latest` is built from the host's
static busybox (`ensure_busybox`), a root filesystem tarball is imported as a one-layer image
(`import_rootfs`, `docker import` semantics) and an OCI image layout or `docker save` archive is
loaded (`load_archive`). The runtime asks `resolve(ref)` for an `Image` and stacks its layer
directories as overlay lower dirs under a per-container upper dir.

Layers are flattened on import: every layer of an archive is applied in order into one
directory, honouring whiteouts (`.wh.<name>` deletes `<name>` from the layers below,
`.wh..wh..opq` empties the directory of what the layers below put there). So every image has
exactly one layer directory, whiteouts never reach overlayfs, and no root-only overlay whiteout
devices or trusted xattrs are needed. Tar members that would land outside the layer directory
(absolute paths, `..`, relative symlinks climbing out, writes through symlinks) are rejected;
symlinks in parent directories are resolved inside the layer, the way the container will see them.

Layout under `<home>/images/`: `tags.json` (`"busybox:latest"` -> `"sha256:<hex>"`),
`content/<hex>/image.json` (config and metadata) and `content/<hex>/rootfs/`. An image id is the
sha256 of its config (as `docker` computes it) for loaded archives, and of the imported content
otherwise.

Its length is the archive formats and the tar safety checks; the content-addressed store of
issue 11 replaces this flattened one and will be split into blobs, layers and the puller.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import platform
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime
from dataclasses import dataclass, field
from typing import IO, Iterator

from minikube_py.runtime.types import ContainerRuntimeError

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DOCKER_HUB_PREFIXES = ("docker.io/", "index.docker.io/", "registry-1.docker.io/")
WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
REFERENCE_PATTERN = re.compile(r"[a-z0-9]+([._-]+[a-z0-9]+|/[a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*")
TAG_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
SYMLINK_HOPS_MAX = 40

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
        )


@dataclass
class Image:
    id: str  # "sha256:<hex>"
    reference: str  # the normalized name:tag it was found by (or the id)
    layers: list[str]  # absolute layer directories, bottom first (one: layers are flattened)
    config: OciImageConfig
    size: int  # bytes in the layer directories
    created: float  # epoch seconds


@dataclass
class ImageRow:
    """One line of `image ls`: REPOSITORY TAG IMAGE ID SIZE CREATED."""

    repository: str
    tag: str
    image_id: str
    size: int
    created: float

    def columns(self, now: float | None = None) -> list[str]:
        return [self.repository, self.tag, short_id(self.image_id), format_size(self.size), format_age(self.created, now)]


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
    """Canonical `name:tag`: `busybox`, `busybox:latest`, `library/busybox` and
    `docker.io/library/busybox:latest` all become `busybox:latest`."""
    name, tag = ref, "latest"
    last_slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > last_slash:
        name, tag = ref[:colon], ref[colon + 1 :]
    for prefix in DOCKER_HUB_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    if name.startswith("library/") and name.count("/") == 1:
        name = name[len("library/") :]
    if not REFERENCE_PATTERN.fullmatch(name) or not TAG_PATTERN.fullmatch(tag):
        raise ContainerRuntimeError(
            "InvalidImageName",
            f'image reference "{ref}" is not valid: expected [registry/]name[:tag] in lower case, like busybox:latest',
        )
    return f"{name}:{tag}"


def _is_id_reference(ref: str) -> bool:
    return re.fullmatch(r"(sha256:)?[0-9a-f]{12,64}", ref) is not None


def _not_present(ref: str) -> ContainerRuntimeError:
    return ContainerRuntimeError(
        "ErrImageNeverPull",
        f"image \"{ref}\" is not in the local image store; list images with 'minikube-py image ls', "
        "add one with 'minikube-py image import' or 'image load'",
    )


class ImageStore:
    def __init__(self, home: str):
        self.directory = os.path.join(home, "images")
        self.content_directory = os.path.join(self.directory, "content")
        self.tags_path = os.path.join(self.directory, "tags.json")
        os.makedirs(self.content_directory, exist_ok=True)

    # --- index --------------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time across processes (the daemon and CLI commands)."""
        with open(os.path.join(self.directory, ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _tags(self) -> dict[str, str]:
        try:
            with open(self.tags_path) as file:
                return json.load(file)
        except FileNotFoundError:
            return {}

    def _write_tags(self, tags: dict[str, str]) -> None:
        temporary = f"{self.tags_path}.{os.getpid()}.tmp"
        with open(temporary, "w") as file:
            json.dump(dict(sorted(tags.items())), file, indent=1)
        os.replace(temporary, self.tags_path)

    def _content(self, image_id: str) -> str:
        return os.path.join(self.content_directory, image_id.removeprefix("sha256:"))

    def _image_id_for(self, ref: str) -> str | None:
        """Image id for a name or an id (`sha256:<hex>`, or a unique hex prefix of 12 or more)."""
        if "@" in ref:  # name@sha256:<hex> is taken by the digest: the id of a stored image
            ref = ref.split("@", 1)[1]
        candidate = ref.removeprefix("sha256:")
        if _is_id_reference(ref):
            matches = [name for name in os.listdir(self.content_directory) if name.startswith(candidate)]
            if len(matches) == 1 and os.path.exists(os.path.join(self.content_directory, matches[0], "image.json")):
                return f"sha256:{matches[0]}"
        if ref.startswith("sha256:"):
            return None
        return self._tags().get(normalize_reference(ref))

    # --- reading ------------------------------------------------------------------------------

    def resolve(self, ref: str) -> Image:
        """The image for a pod's `image:`; ContainerRuntimeError ErrImageNeverPull when it is not here."""
        image_id = self._image_id_for(ref)
        if image_id is None:
            raise _not_present(ref)
        try:
            with open(os.path.join(self._content(image_id), "image.json")) as file:
                record = json.load(file)
        except FileNotFoundError:
            raise _not_present(ref) from None
        return Image(
            id=image_id,
            reference=ref if ref.startswith("sha256:") or "@" in ref else normalize_reference(ref),
            layers=[os.path.join(self._content(image_id), "rootfs")],
            config=OciImageConfig(**record["config"]),
            size=record["size"],
            created=record["created"],
        )

    def list(self) -> list[ImageRow]:
        rows = []
        for ref, image_id in sorted(self._tags().items()):
            try:
                with open(os.path.join(self._content(image_id), "image.json")) as file:
                    record = json.load(file)
            except FileNotFoundError:
                continue
            repository, _, tag = ref.rpartition(":")
            rows.append(ImageRow(repository, tag, image_id, record["size"], record["created"]))
        return rows

    # --- writing ------------------------------------------------------------------------------

    def tag(self, source: str, target: str) -> None:
        with self._locked():
            image_id = self._image_id_for(source)
            if image_id is None:
                raise ImageStoreError(f'image "{source}" not found; list images with \'minikube-py image ls\'')
            tags = self._tags()
            tags[normalize_reference(target)] = image_id
            self._write_tags(tags)

    def remove(self, ref: str) -> str:
        """Untag `ref` (an id removes every tag of it); content goes when no tag is left. Returns the id."""
        with self._locked():
            image_id = self._image_id_for(ref)
            if image_id is None:
                raise ImageStoreError(f'image "{ref}" not found; list images with \'minikube-py image ls\'')
            tags = self._tags()
            if _is_id_reference(ref) and image_id.removeprefix("sha256:").startswith(ref.removeprefix("sha256:")):
                tags = {name: value for name, value in tags.items() if value != image_id}
            else:
                tags.pop(normalize_reference(ref), None)
            self._write_tags(tags)
            if image_id not in tags.values():
                shutil.rmtree(self._content(image_id), ignore_errors=True)
            return image_id

    def _commit(self, image_id: str, staged_rootfs: str, config: OciImageConfig, created: float, refs: list[str]) -> None:
        """Move a staged rootfs into place (unless this id is already stored) and point `refs` at it."""
        with self._locked():
            content = self._content(image_id)
            if not os.path.exists(os.path.join(content, "image.json")):
                shutil.rmtree(content, ignore_errors=True)
                os.makedirs(content)
                os.rename(staged_rootfs, os.path.join(content, "rootfs"))
                record = {"id": image_id, "config": config.__dict__, "created": created, "size": _tree_size(os.path.join(content, "rootfs"))}
                with open(os.path.join(content, "image.json.tmp"), "w") as file:
                    json.dump(record, file, indent=1)
                # image.json appears last: its presence means the content is complete.
                os.replace(os.path.join(content, "image.json.tmp"), os.path.join(content, "image.json"))
            tags = self._tags()
            for ref in refs:
                tags[normalize_reference(ref)] = image_id
            self._write_tags(tags)

    @contextmanager
    def _staging(self) -> Iterator[str]:
        """A scratch rootfs directory on the same filesystem as the store; removed unless committed."""
        scratch = tempfile.mkdtemp(prefix=".staging-", dir=self.directory)
        try:
            rootfs = os.path.join(scratch, "rootfs")
            os.mkdir(rootfs, 0o755)
            yield rootfs
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def ensure_busybox(self, busybox_path: str = "/usr/bin/busybox") -> Image:
        """Build `busybox:latest` from the host's static busybox once; later calls only check it."""
        with open(busybox_path, "rb") as file:
            binary_digest = hashlib.file_digest(file, "sha256").hexdigest()
        config = OciImageConfig(cmd=["sh"], env=[DEFAULT_PATH])
        image_id = "sha256:" + _digest_json({"busybox": binary_digest, "config": config.__dict__, "layout": 1})
        if self._tags().get("busybox:latest") == image_id and os.path.exists(
            os.path.join(self._content(image_id), "image.json")
        ):
            return self.resolve("busybox:latest")
        applets = subprocess.run([busybox_path, "--list"], capture_output=True, text=True, check=True).stdout.split()
        with self._staging() as rootfs:
            for directory, mode in (
                ("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777), ("root", 0o700), ("home", 0o755), ("var", 0o755),
                ("proc", 0o555), ("sys", 0o555), ("dev", 0o755), ("usr", 0o755), ("usr/bin", 0o755),
            ):
                os.mkdir(os.path.join(rootfs, directory))
                os.chmod(os.path.join(rootfs, directory), mode)  # mkdir's mode is masked by the umask
            shutil.copyfile(busybox_path, os.path.join(rootfs, "bin", "busybox"))
            os.chmod(os.path.join(rootfs, "bin", "busybox"), 0o755)
            for applet in applets:
                if applet != "busybox" and "/" not in applet:
                    os.symlink("busybox", os.path.join(rootfs, "bin", applet))
            if "sh" not in applets:
                os.symlink("busybox", os.path.join(rootfs, "bin", "sh"))
            for name, text in (("passwd", BUSYBOX_PASSWD), ("group", BUSYBOX_GROUP)):
                with open(os.path.join(rootfs, "etc", name), "w") as file:
                    file.write(text)
                os.chmod(os.path.join(rootfs, "etc", name), 0o644)
            self._commit(image_id, rootfs, config, time.time(), ["busybox:latest"])
        return self.resolve("busybox:latest")

    def import_rootfs(self, ref: str, tarball: str | IO[bytes]) -> Image:
        """A root filesystem tarball (plain or gzip, path or stream) as a one-layer image.

        `docker import` semantics: no entrypoint or command, only the default PATH.
        """
        target = normalize_reference(ref)
        config = OciImageConfig(env=[DEFAULT_PATH])
        with self._staging() as rootfs:
            with _open_source(tarball) as raw:
                hashing = _HashingReader(raw)
                _apply_layer(hashing, rootfs, source=f"tarball for {ref}")
                layer_digest = hashing.finish()
            image_id = "sha256:" + _digest_json({"layers": [layer_digest], "config": config.__dict__})
            self._commit(image_id, rootfs, config, time.time(), [target])
        return self.resolve(target)

    def load_archive(self, path: str, name: str | None = None) -> list[str]:
        """Load an OCI image layout or `docker save` archive (tar file or directory); returns the names.

        Names come from the archive (`RepoTags`, or the OCI `io.containerd.image.name` /
        `org.opencontainers.image.ref.name` annotations); `name` is used when it carries none.
        """
        with _ArchiveReader(path) as archive:
            if archive.exists("manifest.json"):
                images = _docker_save_images(archive)
            elif archive.exists("index.json"):
                images = _oci_layout_images(archive)
            else:
                raise ImageStoreError(f"{path}: neither a docker-save archive (manifest.json) nor an OCI image layout (index.json)")
            loaded: list[str] = []
            for config_blob, layer_readers, refs in images:
                refs = refs or ([name] if name else [])
                if not refs:
                    raise ImageStoreError(
                        f"{path}: the archive does not name its image (no RepoTags or ref.name annotation); "
                        "give a name to load it under"
                    )
                image_id = "sha256:" + hashlib.sha256(config_blob).hexdigest()
                try:
                    oci_config = json.loads(config_blob)
                except ValueError as error:
                    raise ImageStoreError(f"{path}: image config is not JSON: {error}") from None
                config = OciImageConfig.from_oci(oci_config.get("config"))
                created = _parse_created(oci_config.get("created"))
                with self._staging() as rootfs:
                    if not os.path.exists(os.path.join(self._content(image_id), "image.json")):
                        for index, open_layer in enumerate(layer_readers):
                            with open_layer() as raw:
                                _apply_layer(raw, rootfs, source=f"{path}: layer {index + 1}")
                    self._commit(image_id, rootfs, config, created, refs)
                loaded.extend(normalize_reference(ref) for ref in refs)
            return loaded


# --- user lookup ------------------------------------------------------------------------------


def resolve_user(image_layers: list[str], user_spec: str) -> tuple[int, int]:
    """(uid, gid) for an image `USER` or a `user[:group]` spec, read from the image's /etc files.

    Numeric ids are taken as they are; a numeric user not in /etc/passwd gets gid 0, as runc does.
    """
    if not user_spec:
        return 0, 0
    user, _, group = user_spec.partition(":")
    passwd = [line.split(":") for line in _read_image_file(image_layers, "etc/passwd").splitlines()]
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
            groups = [line.split(":") for line in _read_image_file(image_layers, "etc/group").splitlines()]
            found = next((entry for entry in groups if len(entry) >= 3 and entry[0] == group and entry[2].isdigit()), None)
            if found is None:
                raise ContainerRuntimeError(
                    "CreateContainerConfigError",
                    f"unable to find group {group}: no matching entries in group file; "
                    "use a numeric runAsGroup or a group the image's /etc/group defines",
                )
            gid = int(found[2])
    return uid, gid


def _read_image_file(image_layers: list[str], relative: str) -> str:
    """A file as the container sees it: the topmost layer that has it, symlinks resolved in the image."""
    for layer in reversed(image_layers):
        try:
            path = _resolve_inside(layer, relative, follow_last=True)
            with open(path, errors="replace") as file:
                return file.read()
        except (OSError, ImageStoreError):
            continue
    return ""


# --- layer extraction -------------------------------------------------------------------------


def _resolve_inside(root: str, relative: str, follow_last: bool = False) -> str:
    """Host path of `relative` inside `root`, following symlinks as if `root` were `/`.

    No symlink can lead outside `root`: an absolute target restarts at `root` and `..` stops there.
    """
    pending = [part for part in relative.split("/") if part not in ("", ".")]
    resolved: list[str] = []
    hops = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        is_last = not pending
        if os.path.islink(candidate) and (follow_last or not is_last):
            hops += 1
            if hops > SYMLINK_HOPS_MAX:
                raise ImageStoreError(f"too many levels of symbolic links resolving {relative}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            pending = [p for p in target.split("/") if p not in ("", ".")] + pending
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def _member_path(name: str, source: str) -> str:
    """The member's path relative to the layer root; absolute paths and `..` are refused."""
    if name.startswith("/") or ".." in name.split("/"):
        raise ImageStoreError(f"{source}: member {name!r} points outside the image root (absolute or '..'); refusing the archive")
    return "/".join(part for part in name.split("/") if part not in ("", "."))


def _remove_path(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _apply_layer(stream: IO[bytes], root: str, source: str) -> None:
    """Apply one layer tarball (plain or gzip) onto `root`, whiteouts included."""
    running_as_root = os.geteuid() == 0
    written: set[str] = set()  # paths this layer created: whiteouts only remove what lower layers made
    try:
        archive = tarfile.open(fileobj=stream, mode="r|*")
    except tarfile.TarError as error:
        raise ImageStoreError(f"{source}: not a tar archive ({error})") from None
    with archive:
        try:
            for member in archive:
                _apply_member(archive, member, root, source, written, running_as_root)
        except tarfile.TarError as error:
            raise ImageStoreError(f"{source}: damaged tar archive ({error})") from None


def _apply_member(archive, member: tarfile.TarInfo, root: str, source: str, written: set[str], running_as_root: bool) -> None:
    relative = _member_path(member.name, source)
    if not relative:
        return  # the root directory itself
    parent_relative, _, base = relative.rpartition("/")
    parent = _resolve_inside(root, parent_relative, follow_last=True)

    if base == OPAQUE_WHITEOUT:
        if os.path.isdir(parent):
            for entry in os.listdir(parent):
                if _join(parent_relative, entry) not in written:
                    _remove_path(os.path.join(parent, entry))
        return
    if base.startswith(WHITEOUT_PREFIX):
        hidden = base[len(WHITEOUT_PREFIX) :]
        if _join(parent_relative, hidden) not in written:
            _remove_path(os.path.join(parent, hidden))
        return

    os.makedirs(parent, exist_ok=True)
    target = os.path.join(parent, base)
    _mark_written(written, relative)

    if member.isdir():
        if os.path.lexists(target) and not (os.path.isdir(target) and not os.path.islink(target)):
            os.unlink(target)
        if not os.path.lexists(target):
            os.mkdir(target)
    else:
        _remove_path(target)
        if member.isreg():
            extracted = archive.extractfile(member)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as file:
                shutil.copyfileobj(extracted, file, 1 << 20)
        elif member.issym():
            link = member.linkname
            if not link.startswith("/"):
                # Relative targets are checked lexically from the link's own directory.
                depth = len(parent_relative.split("/")) if parent_relative else 0
                for part in link.split("/"):
                    if part == "..":
                        depth -= 1
                        if depth < 0:
                            raise ImageStoreError(
                                f"{source}: symlink {relative!r} -> {link!r} climbs out of the image root; refusing the archive"
                            )
                    elif part not in ("", "."):
                        depth += 1
            os.symlink(link, target)
        elif member.islnk():
            link_source = _resolve_inside(root, _member_path(member.linkname, source))
            if not os.path.isfile(link_source) or os.path.islink(link_source):
                raise ImageStoreError(f"{source}: hard link {relative!r} -> {member.linkname!r} has no regular file to link to")
            os.link(link_source, target)
        elif member.isfifo():
            os.mkfifo(target)
        elif member.ischr() or member.isblk():
            # Images rarely carry device nodes and the container gets its own /dev; without the
            # privilege to make one (unit tests, rootless) it is left out.
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            try:
                os.mknod(target, kind | 0o600, os.makedev(member.devmajor, member.devminor))
            except PermissionError:
                written.discard(relative)
                return
        else:
            written.discard(relative)
            return

    if running_as_root:
        os.chown(target, member.uid, member.gid, follow_symlinks=False)
    if not member.issym():
        os.chmod(target, member.mode & 0o7777)
        os.utime(target, (member.mtime, member.mtime))


def _mark_written(written: set[str], relative: str) -> None:
    """Record a path and its ancestors as this layer's own, so its whiteouts leave them alone."""
    parts = relative.split("/")
    for end in range(1, len(parts) + 1):
        written.add("/".join(parts[:end]))


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


# --- archive formats --------------------------------------------------------------------------


class _ArchiveReader:
    """Files of an image archive, whether a tar file or an unpacked directory."""

    def __init__(self, path: str):
        self.path = path
        self.tar: tarfile.TarFile | None = None

    def __enter__(self) -> "_ArchiveReader":
        if not os.path.isdir(self.path):
            try:
                self.tar = tarfile.open(self.path, "r:*")
            except (tarfile.TarError, OSError) as error:
                raise ImageStoreError(f"{self.path}: cannot read the image archive ({error})") from None
        return self

    def __exit__(self, *exc) -> None:
        if self.tar is not None:
            self.tar.close()

    def _member_name(self, name: str) -> str:
        return _member_path(name, self.path)

    def exists(self, name: str) -> bool:
        name = self._member_name(name)
        if self.tar is None:
            return os.path.isfile(_resolve_inside(self.path, name, follow_last=True))
        try:
            return self.tar.getmember(name).isfile() or self.tar.getmember(name).islnk()
        except KeyError:
            try:
                return self.tar.getmember(f"./{name}").isfile()
            except KeyError:
                return False

    def open(self, name: str) -> IO[bytes]:
        name = self._member_name(name)
        if self.tar is None:
            return open(_resolve_inside(self.path, name, follow_last=True), "rb")
        for candidate in (name, f"./{name}"):
            try:
                extracted = self.tar.extractfile(candidate)
            except KeyError:
                continue
            if extracted is not None:
                return extracted
        raise ImageStoreError(f"{self.path}: the archive lists {name} but does not contain it")

    def read(self, name: str) -> bytes:
        with self.open(name) as file:
            return file.read()

    def read_json(self, name: str):
        try:
            return json.loads(self.read(name))
        except ValueError as error:
            raise ImageStoreError(f"{self.path}: {name} is not valid JSON ({error})") from None


def _docker_save_images(archive: _ArchiveReader):
    """(config blob, layer openers, names) for each image of a `docker save` manifest.json."""
    manifest = archive.read_json("manifest.json")
    if not isinstance(manifest, list):
        raise ImageStoreError(f"{archive.path}: manifest.json must be a list of images")
    for entry in manifest:
        config_blob = archive.read(entry["Config"])
        layers = [_opener(archive, layer) for layer in entry.get("Layers") or []]
        yield config_blob, layers, list(entry.get("RepoTags") or [])


def _oci_layout_images(archive: _ArchiveReader):
    """(config blob, layer openers, names) for each image manifest of an OCI image layout."""
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
        config_blob = _verified_blob(archive, manifest["config"]["digest"])
        layers = [_opener(archive, _blob_path(layer["digest"]), layer["digest"]) for layer in manifest.get("layers") or []]
        yield config_blob, layers, names


def _image_manifest(archive: _ArchiveReader, descriptor: dict) -> dict:
    """Follow image indexes down to the manifest for this machine's platform."""
    for _ in range(4):
        document = json.loads(_verified_blob(archive, descriptor["digest"]))
        if "config" in document:
            return document
        candidates = document.get("manifests") or []
        if not candidates:
            break
        architecture = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
        descriptor = next(
            (item for item in candidates if (item.get("platform") or {}).get("architecture") == architecture
             and (item.get("platform") or {}).get("os", "linux") == "linux"),
            candidates[0],
        )
    raise ImageStoreError(f"{archive.path}: no image manifest found under {descriptor.get('digest')}")


def _blob_path(digest: str) -> str:
    algorithm, _, hex_digest = digest.partition(":")
    if algorithm != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", hex_digest):
        raise ImageStoreError(f"unsupported or malformed digest {digest!r}; only sha256 is supported")
    return f"blobs/sha256/{hex_digest}"


def _verified_blob(archive: _ArchiveReader, digest: str) -> bytes:
    blob = archive.read(_blob_path(digest))
    if "sha256:" + hashlib.sha256(blob).hexdigest() != digest:
        raise ImageStoreError(f"{archive.path}: blob {digest} does not match its digest; the archive is damaged")
    return blob


def _opener(archive: _ArchiveReader, name: str, digest: str | None = None):
    """A function opening one layer stream; with a digest, the stream is checked when fully read."""

    @contextmanager
    def open_layer() -> Iterator[IO[bytes]]:
        with archive.open(name) as raw:
            hashing = _HashingReader(raw)
            yield hashing
            if digest is not None and "sha256:" + hashing.finish() != digest:
                raise ImageStoreError(f"{archive.path}: layer {digest} does not match its digest; the archive is damaged")

    return open_layer


class _HashingReader(io.RawIOBase):
    """Passes reads through while hashing them; `finish` reads what is left and returns the hex digest."""

    def __init__(self, raw: IO[bytes]):
        self.raw = raw
        self.hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        self.hash.update(data)
        buffer[: len(data)] = data
        return len(data)

    def finish(self) -> str:
        while self.readinto(bytearray(1 << 20)):
            pass
        return self.hash.hexdigest()


@contextmanager
def _open_source(source: str | IO[bytes]) -> Iterator[IO[bytes]]:
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as file:
            yield file
    else:
        yield source


def _digest_json(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _parse_created(text: str | None) -> float:
    if not text:
        return time.time()
    try:
        return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()


def _tree_size(root: str) -> int:
    total = 0
    for directory, _, files in os.walk(root):
        for name in files:
            total += os.lstat(os.path.join(directory, name)).st_size
    return total
