"""Packing a directory in overlayfs's format back into an OCI layer: tar, diffID, gzip blob.

The reverse of unpack.py, for the two places a layer is made here rather than pulled: a build
step's upper directory (build.py) and a layer pushed to a registry that the store holds only
unpacked (push.py). A character device 0/0 becomes a `.wh.<name>` whiteout, a directory with
`trusted.overlay.opaque=y` gets a `.wh..wh..opq` entry, hard links within the directory become
tar hard links, and `trusted.*` xattrs stay behind (they belong to overlayfs, not the image).

The tar is deterministic for a given directory: entries in sorted order, PAX format, no user or
group names, times in whole seconds. So packing a layer the store made from this packer's own
output gives the same bytes, and the same diffID, again.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass
from typing import IO, Iterable

from minikube_py.runtime.images.unpack import OPAQUE_WHITEOUT, OPAQUE_XATTR, WHITEOUT_PREFIX, OverlayWhiteouts

CHUNK = 1 << 20


@dataclass
class PackedLayer:
    diff_id: str  # sha256 of the tar
    digest: str  # sha256 of the gzip blob
    size: int  # bytes of the gzip blob
    tar_path: str
    blob_path: str


class _HashingWriter:
    def __init__(self, file: IO[bytes]):
        self.file = file
        self.hash = hashlib.sha256()
        self.count = 0

    def write(self, data) -> int:
        self.hash.update(data)
        self.count += len(data)
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()


def write_layer_tar(root: str, output: IO[bytes], exclude: Iterable[str] = ()) -> str:
    """Write `root` (overlay format) to `output` as a layer tar; returns its diffID.
    `exclude` holds paths relative to `root` left out with everything under them."""
    excluded = {path.strip("/") for path in exclude}
    writer = _HashingWriter(output)
    links: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as archive:  # type: ignore[call-overload]
        for relative in _walk(root, "", excluded):
            _add(archive, root, relative, links)
    return "sha256:" + writer.hash.hexdigest()


def _walk(root: str, relative: str, excluded: set[str]):
    directory = os.path.join(root, relative) if relative else root
    for name in sorted(os.listdir(directory)):
        child = f"{relative}/{name}" if relative else name
        if child in excluded:
            continue
        yield child
        path = os.path.join(root, child)
        if os.path.isdir(path) and not os.path.islink(path):
            yield from _walk(root, child, excluded)


def _add(archive: tarfile.TarFile, root: str, relative: str, links: dict[tuple[int, int], str]) -> None:
    path = os.path.join(root, relative)
    info = os.lstat(path)
    parent, _, name = relative.rpartition("/")
    if stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
        whiteout = tarfile.TarInfo(f"{parent}/{WHITEOUT_PREFIX}{name}" if parent else WHITEOUT_PREFIX + name)
        whiteout.mtime = int(info.st_mtime)
        archive.addfile(whiteout)
        return
    member = tarfile.TarInfo(relative)
    member.mode = stat.S_IMODE(info.st_mode)
    member.uid, member.gid = info.st_uid, info.st_gid
    member.mtime = int(info.st_mtime)
    member.uname = member.gname = ""
    data = None
    if stat.S_ISDIR(info.st_mode):
        member.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(info.st_mode):
        member.type = tarfile.SYMTYPE
        member.linkname = os.readlink(path)
    elif stat.S_ISREG(info.st_mode):
        key = (info.st_dev, info.st_ino)
        if info.st_nlink > 1 and key in links:
            member.type = tarfile.LNKTYPE
            member.linkname = links[key]
        else:
            links[key] = relative
            member.type = tarfile.REGTYPE
            member.size = info.st_size
            data = path
    elif stat.S_ISFIFO(info.st_mode):
        member.type = tarfile.FIFOTYPE
    else:
        return  # sockets and device nodes are not image content
    if member.type != tarfile.SYMTYPE:
        member.pax_headers = _xattrs(path)
    if data is None:
        archive.addfile(member)
    else:
        with open(data, "rb") as file:
            archive.addfile(member, file)
    if member.type == tarfile.DIRTYPE and OverlayWhiteouts.is_opaque(path):
        opaque = tarfile.TarInfo(f"{relative}/{OPAQUE_WHITEOUT}")
        opaque.mtime = member.mtime
        archive.addfile(opaque)


def _xattrs(path: str) -> dict[str, str]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    headers = {}
    for name in sorted(names):
        if name.startswith("trusted.") or name == OPAQUE_XATTR:
            continue
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        headers[f"SCHILY.xattr.{name}"] = value.decode("utf-8", "surrogateescape")
    return headers


def pack_layer(root: str, scratch: str, exclude: Iterable[str] = ()) -> PackedLayer:
    """`root` as a layer tar and its gzip blob, both files in `scratch` (the caller removes them)."""
    tar_path = os.path.join(scratch, "layer.tar")
    with open(tar_path, "wb") as output:
        diff_id = write_layer_tar(root, output, exclude)
    blob_path = os.path.join(scratch, "layer.tar.gz")
    with open(tar_path, "rb") as source, open(blob_path, "wb") as raw:
        writer = _HashingWriter(raw)
        # mtime=0: the same tar always compresses to the same blob (a stable digest to push and cache).
        with gzip.GzipFile(fileobj=writer, mode="wb", compresslevel=6, mtime=0) as compressed:  # type: ignore[arg-type]
            shutil.copyfileobj(source, compressed, CHUNK)
    return PackedLayer(diff_id, "sha256:" + writer.hash.hexdigest(), writer.count, tar_path, blob_path)
