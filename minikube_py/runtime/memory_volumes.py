"""tmpfs mounts that hold a pod's secret and projected volumes on the host, never on disk.

kubelet backs secret and projected volumes with a memory-medium emptyDir: a tmpfs mounted at the
volume's directory under the pod's directory, which every container of the pod then binds (so
all of them see one copy, and the atomic writer's `..data` swap reaches them all). The mount is
made in the host's mount namespace, where the supervisor forks containers, before any container
of the pod starts; it goes when the pod's sandbox goes, and `stop` sweeps any left under the
cluster's home (a daemon killed with -9 leaves them behind).
"""

from __future__ import annotations

import os

from minikube_py.runtime import linux

# As kubelet's memory-backed emptyDir: world-writable with the sticky bit; the agent then gives
# an fsGroup the group and setgid (volume ownership).
TMPFS_OPTIONS = "mode=1777"


def is_mount_point(path: str) -> bool:
    return os.path.ismount(path)


def mount_memory_volume(path: str, size_bytes: int | None = None) -> None:
    """A tmpfs at `path` (made when missing), of at most `size_bytes` (else the kernel's default,
    half the RAM); nothing when one is there already (re-adoption)."""
    os.makedirs(path, exist_ok=True)
    if is_mount_point(path):
        return
    options = TMPFS_OPTIONS + (f",size={size_bytes}" if size_bytes else "")
    linux.mount("tmpfs", path, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, options)


def unmount_memory_volume(path: str) -> None:
    """Detach the tmpfs at `path`, if one is mounted there; its files go with it."""
    if is_mount_point(path):
        linux.umount2(path, linux.MNT_DETACH)


def mount_points_under(directory: str, mountinfo: str = "/proc/self/mountinfo") -> list[str]:
    """Every mount point below `directory`, deepest first (field 5 of mountinfo, octal escapes undone)."""
    prefix = os.path.join(os.path.realpath(directory), "")
    found = []
    with open(mountinfo) as file:
        for line in file:
            fields = line.split()
            if len(fields) < 5:
                continue
            point = fields[4].encode().decode("unicode_escape")
            if point.startswith(prefix):
                found.append(point)
    return sorted(set(found), key=len, reverse=True)


def unmount_all_under(directory: str) -> None:
    for point in mount_points_under(directory):
        try:
            linux.umount2(point, linux.MNT_DETACH)
        except OSError:
            pass  # gone already
