"""Unpacking one image layer into a directory of its own, in overlayfs's format.

Each layer is unpacked once, by itself, into `layers/<diffID>/root`; a container's root is an
overlay of its image's layer directories. So a layer's whiteouts are not applied here but
written the way overlayfs reads them: `.wh.<name>` becomes a character device 0/0 at `<name>`
(overlayfs hides `<name>` of the layers below), `.wh..wh..opq` sets `trusted.overlay.opaque=y`
on its directory (the layers below contribute nothing to it).

The tar stream comes from a registry or an archive, so it is not trusted. Members with absolute
paths or `..` are refused; parent directories are resolved inside the layer (a symlink in the
layer cannot make a write land outside it); files are created with O_EXCL|O_NOFOLLOW; hard links
must point at a non-directory of the same layer; relative symlinks may not climb above the root;
device nodes are left out (a container gets its own /dev); `trusted.*` xattrs from the archive
are dropped (they would steer overlayfs), others (file capabilities, user.*) are kept with
ownership, modes and times. A layer may not grow past `max_bytes`, nor fill the disk.

Layers come gzip, zstd or uncompressed (recognized by their first bytes, as containerd does);
the uncompressed stream's sha256 is the layer's diffID, which the image config names.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import shutil
import stat
import tarfile
import zlib
from dataclasses import dataclass
from typing import IO

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
SYMLINK_HOPS_MAX = 40
MAX_LAYER_BYTES = 64 << 30
DISK_RESERVE_BYTES = 512 << 20  # stop before the disk fills (a tar bomb, a layer too big for this host)
CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class LayerError(Exception):
    """A layer that cannot be unpacked safely; the message names the layer and the member."""


class OverlayWhiteouts:
    """Whiteouts and opaque directories as overlayfs reads them (needs root, as the daemon is)."""

    def whiteout(self, path: str) -> None:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))

    def opaque(self, directory: str) -> None:
        os.setxattr(directory, OPAQUE_XATTR, b"y", follow_symlinks=False)

    @staticmethod
    def is_whiteout(path: str) -> bool:
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return False
        return stat.S_ISCHR(info.st_mode) and info.st_rdev == 0

    @staticmethod
    def is_opaque(directory: str) -> bool:
        try:
            return os.getxattr(directory, OPAQUE_XATTR, follow_symlinks=False) == b"y"
        except OSError:
            return False


@dataclass
class UnpackedLayer:
    diff_id: str  # "sha256:<hex>" of the uncompressed tar stream
    size: int  # bytes of regular files


class HashingReader(io.RawIOBase):
    """Passes reads through while hashing (and counting) them."""

    def __init__(self, raw: IO[bytes]):
        self.raw = raw
        self.hash = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self.raw.readinto(buffer)
        self.hash.update(memoryview(buffer)[:count])
        self.count += count
        return count

    def finish(self) -> str:
        """Read what is left (tar's end padding) and return "sha256:<hex>"."""
        buffer = bytearray(CHUNK)
        while self.readinto(buffer):
            pass
        return "sha256:" + self.hash.hexdigest()


class LayerStream(io.RawIOBase):
    """The uncompressed tar stream, hashed (the diffID) as it passes, read forward only.

    tarfile reads it in its random-access mode ("r:"), which reads headers and member data
    straight from the file object; its stream mode ("r|") instead joins and slices every block
    through a buffer of its own, which cost more than inflating. tarfile only ever seeks
    forward here (past a member's data and padding), which is done by reading and hashing.
    """

    def __init__(self, raw: IO[bytes]):
        self.raw = _Decompressor(raw)
        self.hash = hashlib.sha256()
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self.raw.readinto(buffer)
        self.hash.update(memoryview(buffer)[:count])
        self.position += count
        return count

    def read_view(self, size: int) -> memoryview:
        """Up to `size` bytes without copying them (valid until the next read); empty at the end."""
        view = self.raw.read_view(size)
        self.hash.update(view)
        self.position += len(view)
        return view

    def read(self, size: int = -1) -> bytes:
        """Exactly `size` bytes unless the stream ends first (tarfile counts on whole headers)."""
        if size is None or size < 0:
            return self.readall()
        buffer = bytearray(size)
        view = memoryview(buffer)
        held = 0
        while held < size:
            count = self.readinto(view[held:])
            if not count:
                break
            held += count
        del view
        return bytes(buffer[:held]) if held < size else bytes(buffer)

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset if whence == io.SEEK_SET else self.position + offset if whence == io.SEEK_CUR else -1
        if target < self.position:
            raise io.UnsupportedOperation("a layer stream is read forward only")
        self.skip(target - self.position)
        return self.position

    def skip(self, count: int) -> None:
        while count > 0:
            read = len(self.read_view(min(count, CHUNK)))
            if not read:
                return
            count -= read

    def finish(self) -> str:
        """Read what is left (tar's end padding) and return "sha256:<hex>"."""
        while self.read_view(CHUNK):
            pass
        return "sha256:" + self.hash.hexdigest()


class _Decompressor(io.RawIOBase):
    """gzip (several members too), zstd or plain, by the stream's first bytes."""

    def __init__(self, raw: IO[bytes]):
        self.raw = raw
        head = _read_at_least(raw, 4)
        # Decompressed bytes not yet read, from `offset` on: slicing from an offset copies only
        # what a read takes (a 10 KB read from a 8 MB buffer must not copy the other 8 MB).
        self.pending = b""
        self.offset = 0
        self.done = False
        if head.startswith(GZIP_MAGIC):
            self.kind = "gzip"
            self.zlib = zlib.decompressobj(31)
            self.pending = self.zlib.decompress(head, CHUNK)
        elif head[:4] == ZSTD_MAGIC:
            import zstandard

            self.kind = "zstd"
            self.reader = zstandard.ZstdDecompressor().stream_reader(_Prefixed(head, raw), read_across_frames=True)
        else:
            self.kind = "tar"
            self.pending = head

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.read_view(len(buffer))
        count = len(data)
        buffer[:count] = data
        return count

    def read_view(self, size: int) -> memoryview:
        if self.kind == "zstd":
            return memoryview(self.reader.read(size))
        while self.offset >= len(self.pending) and not self.done:
            self.pending, self.offset = self._inflate() if self.kind == "gzip" else self._plain(), 0
        view = memoryview(self.pending)[self.offset:self.offset + size]
        self.offset += len(view)
        return view

    def _plain(self) -> bytes:
        chunk = self.raw.read(CHUNK)
        self.done = not chunk
        return chunk

    def _inflate(self) -> bytes:
        """At most CHUNK bytes more: a small compressed block can inflate to gigabytes (a bomb)."""
        if self.zlib.unconsumed_tail:
            return self.zlib.decompress(self.zlib.unconsumed_tail, CHUNK)
        if self.zlib.eof:  # a multi-member gzip: the next member starts in unused_data or the next chunk
            rest = self.zlib.unused_data
            self.zlib = zlib.decompressobj(31)
            if rest:
                return self.zlib.decompress(rest, CHUNK)
        chunk = self.raw.read(CHUNK)
        if not chunk:
            self.done = True
            return self.zlib.flush()
        return self.zlib.decompress(chunk, CHUNK)


def _read_at_least(raw: IO[bytes], size: int) -> bytes:
    """The first `size` bytes (or all there are): a stream may hand them out in pieces."""
    data = b""
    while len(data) < size:
        chunk = raw.read(CHUNK)
        if not chunk:
            break
        data += chunk
    return data


class _Prefixed(io.RawIOBase):
    def __init__(self, head: bytes, raw: IO[bytes]):
        self.head, self.raw = head, raw

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.head:
            if size is None or size < 0:
                size = len(self.head)
            data, self.head = self.head[:size], self.head[size:]
            return data
        return self.raw.read(size)


def unpack(stream: IO[bytes], root: str, source: str, whiteouts: OverlayWhiteouts | None = None,
           max_bytes: int = MAX_LAYER_BYTES) -> UnpackedLayer:
    """Unpack a (compressed) layer tar stream into the empty directory `root`."""
    whiteouts = whiteouts or OverlayWhiteouts()
    try:
        layer = LayerStream(stream)
    except (zlib.error, OSError, ValueError) as error:
        raise LayerError(f"{source}: cannot decompress the layer ({error})") from None
    unpacker = _Unpacker(root, source, whiteouts, max_bytes, layer)
    try:
        with tarfile.open(fileobj=layer, mode="r:") as archive:  # type: ignore[call-overload]
            for member in archive:
                unpacker.apply(archive, member)
        unpacker.finish()
        diff_id = layer.finish()
    except tarfile.TarError as error:
        raise LayerError(f"{source}: not a valid tar archive ({error})") from None
    except (zlib.error, EOFError) as error:
        raise LayerError(f"{source}: the compressed layer is damaged ({error})") from None
    except Exception as error:
        if type(error).__module__.startswith("zstandard"):
            raise LayerError(f"{source}: the compressed layer is damaged ({error})") from None
        raise
    return UnpackedLayer(diff_id, unpacker.size)


class _Unpacker:
    def __init__(self, root: str, source: str, whiteouts: OverlayWhiteouts, max_bytes: int, layer: LayerStream):
        self.root, self.source, self.whiteouts, self.max_bytes = root, source, whiteouts, max_bytes
        self.layer = layer
        self.running_as_root = os.geteuid() == 0
        self.size = 0
        self.checked_disk_at = 0
        self.directories: list[tuple[str, tarfile.TarInfo]] = []  # times set last, children change them

    def apply(self, archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        relative = member_path(member.name, self.source)
        if not relative:
            if member.isdir():
                self._attributes(self.root, member)
            return
        parent_relative, _, base = relative.rpartition("/")
        parent = resolve_inside(self.root, parent_relative, follow_last=True, source=self.source)
        self._make_parents(parent)
        if base == OPAQUE_WHITEOUT:
            self.whiteouts.opaque(parent)
            return
        if base.startswith(WHITEOUT_PREFIX):
            target = os.path.join(parent, base[len(WHITEOUT_PREFIX):])
            if not os.path.lexists(target):  # this layer's own entry of that name wins
                self.whiteouts.whiteout(target)
            return
        target = os.path.join(parent, base)
        if member.isdir():
            if os.path.lexists(target) and not (os.path.isdir(target) and not os.path.islink(target)):
                os.unlink(target)
            if not os.path.lexists(target):
                os.mkdir(target, 0o700)
            self._attributes(target, member)
            self.directories.append((target, member))
            return
        remove_path(target)
        if member.isreg():
            self._grow(member.size)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                self._copy_data(member, fd)
            finally:
                os.close(fd)
        elif member.issym():
            _check_symlink(relative, parent_relative, member.linkname, self.source)
            os.symlink(member.linkname, target)
        elif member.islnk():
            link_source = resolve_inside(self.root, member_path(member.linkname, self.source), source=self.source)
            if not os.path.lexists(link_source) or (os.path.isdir(link_source) and not os.path.islink(link_source)):
                raise LayerError(f"{self.source}: hard link {relative!r} -> {member.linkname!r} has no file of this "
                                 "layer to link to; refusing the layer")
            os.link(link_source, target, follow_symlinks=False)
            return  # a hard link shares its target's inode and attributes
        elif member.isfifo():
            os.mkfifo(target)
        else:
            return  # device nodes and anything else: left out, the container gets its own /dev
        self._attributes(target, member)

    def _copy_data(self, member: tarfile.TarInfo, fd: int) -> None:
        """The member's data from the layer stream into `fd`, written from the decompressor's own output."""
        if member.sparse is not None:
            raise LayerError(f"{self.source}: member {member.name!r} is a sparse file, which image layers do not "
                             "use; refusing the layer")
        self.layer.seek(member.offset_data)
        left = member.size
        while left:
            view = self.layer.read_view(min(left, CHUNK))
            if not view:
                raise LayerError(f"{self.source}: the layer ends inside {member.name!r}; refusing the layer")
            written = 0
            while written < len(view):
                written += os.write(fd, view[written:])
            left -= len(view)

    def finish(self) -> None:
        for directory, member in reversed(self.directories):
            os.utime(directory, (member.mtime, member.mtime), follow_symlinks=False)

    def _make_parents(self, parent: str) -> None:
        if not os.path.isdir(parent):
            os.makedirs(parent, 0o755, exist_ok=True)

    def _grow(self, size: int) -> None:
        self.size += size
        if self.size > self.max_bytes:
            raise LayerError(f"{self.source}: unpacks to more than {self.max_bytes} bytes; refusing the layer")
        if self.size - self.checked_disk_at > 64 << 20 or size > 64 << 20:
            self.checked_disk_at = self.size
            disk = os.statvfs(self.root)
            if disk.f_bavail * disk.f_frsize - size < DISK_RESERVE_BYTES:
                raise LayerError(f"{self.source}: the disk under {self.root} is nearly full; free space and pull again")

    def _attributes(self, target: str, member: tarfile.TarInfo) -> None:
        if self.running_as_root:
            os.chown(target, member.uid, member.gid, follow_symlinks=False)
        if member.issym():
            # Its own time, as tar restores it (and as pack.py reads it back: a repacked layer is the same).
            os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)
            return
        os.chmod(target, member.mode & 0o7777)
        for key, value in (member.pax_headers or {}).items():
            if key.startswith("SCHILY.xattr.") and not key.startswith("SCHILY.xattr.trusted."):
                try:
                    os.setxattr(target, key[len("SCHILY.xattr."):], value.encode("utf-8", "surrogateescape"),
                                follow_symlinks=False)
                except OSError as error:
                    if error.errno not in (errno.ENOTSUP, errno.EPERM):
                        raise
        if not member.isdir():
            os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)


def member_path(name: str, source: str) -> str:
    """The member's path relative to the layer root; absolute paths and `..` are refused."""
    if name.startswith("/") or ".." in name.split("/"):
        raise LayerError(f"{source}: member {name!r} points outside the image root (absolute or '..'); refusing the layer")
    return "/".join(part for part in name.split("/") if part not in ("", "."))


def _check_symlink(relative: str, parent_relative: str, link: str, source: str) -> None:
    """Relative targets are checked lexically from the link's own directory: none climbs out."""
    if link.startswith("/"):
        return  # resolved against the container's root at run time, never on the host
    depth = len(parent_relative.split("/")) if parent_relative else 0
    for part in link.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                raise LayerError(f"{source}: symlink {relative!r} -> {link!r} climbs out of the image root; refusing the layer")
        elif part not in ("", "."):
            depth += 1


def resolve_inside(root: str, relative: str, follow_last: bool = False, source: str = "") -> str:
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
        if os.path.islink(candidate) and (follow_last or pending):
            hops += 1
            if hops > SYMLINK_HOPS_MAX:
                raise LayerError(f"{source or root}: too many levels of symbolic links resolving {relative}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            pending = [p for p in target.split("/") if p not in ("", ".")] + pending
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def remove_path(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)
