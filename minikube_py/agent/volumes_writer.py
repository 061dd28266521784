"""kubelet's atomic writer: the files of a configMap, secret, downwardAPI or projected volume, swapped
as a whole so a reading container never sees half an update.

The layout kubelet makes, and this module makes the same:

    <volume>/..2026_12_03_11_40_00.123456789/   the payload, written once, never changed
    <volume>/..data -> ..2026_12_03_11_40_00.123456789
    <volume>/key     -> ..data/key               one symlink per top-level path of the payload

An update writes a new timestamped directory, points a `..data_tmp` symlink at it and renames that
over `..data` (rename(2) is atomic), adds or removes the per-key symlinks, then deletes the old
directory. A reader that opened `key` before the swap keeps reading the old file; one that opens
it after reads the new one; nobody sees a mix. Nothing is written when the payload is unchanged.
A `subPath` mount binds the file `key` resolves to at container start, so it keeps the old
content: that is Kubernetes' behaviour too.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Callable

DATA_DIR = "..data"
DATA_DIR_TMP = "..data_tmp"
DIRECTORY_MODE = 0o755


@dataclass(frozen=True)
class FileProjection:
    """One file of a volume's payload: its bytes and mode bits."""

    data: bytes
    mode: int


Payload = dict[str, FileProjection]  # relative path -> file


class PayloadError(ValueError):
    """A payload path that would escape the volume or clash with the writer's own names."""


def check_payload_path(path: str) -> str:
    """The path cleaned; raises PayloadError for one that is absolute, climbs out or starts with `..`."""
    cleaned = os.path.normpath(path)
    if not path or os.path.isabs(path) or cleaned.startswith("..") or ".." in path.split("/"):
        raise PayloadError(f"invalid path {path!r}: must be relative, without '..', and not start with '..'")
    return cleaned


class AtomicWriter:
    """Writes payloads into one volume directory, which must exist."""

    def __init__(self, target_dir: str, now: Callable[[], float] = time.time):
        self.target_dir = target_dir
        self.now = now

    def current_dir(self) -> str | None:
        """The timestamped directory `..data` points at, or None before the first write."""
        try:
            return os.readlink(os.path.join(self.target_dir, DATA_DIR))
        except FileNotFoundError:
            return None

    def write(self, payload: Payload, set_permissions: Callable[[str], None] | None = None) -> bool:
        """Make the volume show `payload`; True when something changed. `set_permissions(volume_dir)`
        runs after the new files are written and before they become visible (fsGroup ownership)."""
        cleaned = {check_payload_path(path): projection for path, projection in payload.items()}
        old_dir = self.current_dir()
        if old_dir is not None and self._matches(os.path.join(self.target_dir, old_dir), cleaned):
            return False
        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime(self.now()))
        new_dir = tempfile.mkdtemp(prefix=stamp, dir=self.target_dir)
        try:
            os.chmod(new_dir, DIRECTORY_MODE)
            for path, projection in cleaned.items():
                self._write_file(os.path.join(new_dir, path), projection, new_dir)
            if set_permissions is not None:
                set_permissions(self.target_dir)
            temporary_link = os.path.join(self.target_dir, DATA_DIR_TMP)
            if os.path.lexists(temporary_link):
                os.unlink(temporary_link)
            os.symlink(os.path.basename(new_dir), temporary_link)
            os.rename(temporary_link, os.path.join(self.target_dir, DATA_DIR))
        except BaseException:
            shutil.rmtree(new_dir, ignore_errors=True)
            raise
        self._update_user_links({path.split("/")[0] for path in cleaned})
        if old_dir is not None and old_dir != os.path.basename(new_dir):
            shutil.rmtree(os.path.join(self.target_dir, old_dir), ignore_errors=True)
        return True

    @staticmethod
    def _write_file(path: str, projection: FileProjection, root: str) -> None:
        parent = os.path.dirname(path)
        if parent != root:
            os.makedirs(parent, mode=DIRECTORY_MODE, exist_ok=True)
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(projection.data)
            os.fchmod(file.fileno(), projection.mode & 0o7777)  # exactly the mode asked, whatever the umask

    @staticmethod
    def _matches(directory: str, payload: Payload) -> bool:
        """kubelet writes only when a file's content differs or the set of paths changed."""
        present: set[str] = set()
        for current, _, files in os.walk(directory):
            for name in files:
                present.add(os.path.relpath(os.path.join(current, name), directory))
        if present != set(payload):
            return False
        for path, projection in payload.items():
            try:
                with open(os.path.join(directory, path), "rb") as file:
                    if file.read() != projection.data:
                        return False
            except OSError:
                return False
        return True

    def _update_user_links(self, names: set[str]) -> None:
        """A `name -> ..data/name` symlink for each top-level path; stale ones removed."""
        for name in names:
            link = os.path.join(self.target_dir, name)
            if not os.path.lexists(link):
                os.symlink(os.path.join(DATA_DIR, name), link)
        for name in os.listdir(self.target_dir):
            if name.startswith("..") or name in names:
                continue
            path = os.path.join(self.target_dir, name)
            if os.path.islink(path):
                os.unlink(path)
