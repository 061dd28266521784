"""The Linux system calls the runtime needs and Python 3.11 does not wrap, called through ctypes.

Namespaces (setns, unshare), mounts (mount, umount2, pivot_root), the hostname, prctl and the
capability sets are what turn a forked process into a container. Each function raises `OSError`
with the errno and names what it was doing, so a failure in a container's setup reads as
`mount overlay on /…/rootfs: [Errno 2] No such file or directory`. Numbers that differ between
architectures (syscall numbers) are looked up per machine; the rest is the stable kernel ABI.
"""

from __future__ import annotations

import ctypes
import os
import platform

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]

# Namespace flags (linux/sched.h).
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

NAMESPACE_FLAGS = {
    "mnt": CLONE_NEWNS,
    "uts": CLONE_NEWUTS,
    "ipc": CLONE_NEWIPC,
    "net": CLONE_NEWNET,
    "pid": CLONE_NEWPID,
    "cgroup": CLONE_NEWCGROUP,
}

# Mount flags (linux/mount.h).
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2

# prctl options (linux/prctl.h).
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

CLOSE_RANGE_CLOEXEC = 1 << 2

_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# Syscall numbers without a glibc wrapper on every distribution we run on.
_SYSCALLS = {
    "x86_64": {"pivot_root": 155, "capget": 125, "capset": 126, "close_range": 436, "pidfd_getfd": 438},
    "aarch64": {"pivot_root": 41, "capget": 90, "capset": 91, "close_range": 436, "pidfd_getfd": 438},
}

# Docker's default capability set, which Kubernetes containers get unless the pod asks otherwise.
CAPABILITY_NUMBERS = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_RAW": 13,
    "CAP_SYS_CHROOT": 18,
    "CAP_MKNOD": 27,
    "CAP_AUDIT_WRITE": 29,
    "CAP_SETFCAP": 31,
}
DEFAULT_CAPABILITIES = frozenset(CAPABILITY_NUMBERS.values())

# Every capability the kernel defines (linux/capability.h), for securityContext.capabilities.add.
ALL_CAPABILITY_NUMBERS = {
    name: number for number, name in enumerate((
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
        "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
        "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
        "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
        "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
        "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ))
}


def _syscall_number(name: str) -> int:
    machine = platform.machine()
    try:
        return _SYSCALLS[machine][name]
    except KeyError:
        raise OSError(f"{name}: syscall number unknown for machine {machine!r}; add it to linux._SYSCALLS") from None


def _check(result: int, what: str) -> int:
    if result < 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")
    return result


def _bytes(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), f"setns fd {fd}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), f"unshare {flags:#x}")


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    result = _libc.mount(_bytes(source), _bytes(target), _bytes(fstype), flags, _bytes(data))
    _check(result, f"mount {fstype or source} on {target}")


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_bytes(target), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    result = _libc.syscall(_syscall_number("pivot_root"), _bytes(new_root), _bytes(put_old))
    _check(result, f"pivot_root {new_root}")


def sethostname(name: str) -> None:
    encoded = name.encode()
    _check(_libc.sethostname(encoded, len(encoded)), f"sethostname {name}")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    args = [ctypes.c_ulong(value) for value in (arg2, arg3, arg4, arg5)]
    return _check(_libc.prctl(option, *args), f"prctl {option}")


def close_range_cloexec(first: int) -> None:
    """Mark every descriptor from `first` up close-on-exec; they vanish at execve, not before."""
    _check(_libc.syscall(_syscall_number("close_range"), first, 0xFFFFFFFF, CLOSE_RANGE_CLOEXEC), "close_range")


def pidfd_getfd(pidfd: int, target_fd: int) -> int:
    """A close-on-exec duplicate of descriptor `target_fd` of the process behind `pidfd` (root only)."""
    return _check(_libc.syscall(_syscall_number("pidfd_getfd"), pidfd, target_fd, 0), "pidfd_getfd")


class _CapabilityHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapabilityData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def capability_mask(capabilities: frozenset[int] | set[int]) -> int:
    """The 64-bit mask with one bit per capability number."""
    mask = 0
    for number in capabilities:
        mask |= 1 << number
    return mask


def capget(pid: int = 0) -> tuple[int, int, int]:
    """(effective, permitted, inheritable) masks of `pid` (0: this thread)."""
    header = _CapabilityHeader(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapabilityData * 2)()
    _check(_libc.syscall(_syscall_number("capget"), ctypes.byref(header), data), "capget")
    return tuple(getattr(data[0], name) | (getattr(data[1], name) << 32)
                 for name in ("effective", "permitted", "inheritable"))


def capset(effective: int, permitted: int, inheritable: int) -> None:
    header = _CapabilityHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapabilityData * 2)()
    for index in (0, 1):
        shift = 32 * index
        data[index].effective = (effective >> shift) & 0xFFFFFFFF
        data[index].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[index].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.syscall(_syscall_number("capset"), ctypes.byref(header), data), "capset")


def last_capability() -> int:
    with open("/proc/sys/kernel/cap_last_cap") as file:
        return int(file.read())


def process_start_time(pid: int) -> int:
    """Field 22 of /proc/PID/stat (start time in clock ticks since boot): with the pid, names one process."""
    with open(f"/proc/{pid}/stat", "rb") as file:
        return parse_start_time(file.read())


def parse_start_time(stat: bytes) -> int:
    # The command name (field 2) may hold spaces and parentheses; fields after the last ')' are plain.
    after_name = stat[stat.rindex(b")") + 2:].split()
    return int(after_name[22 - 3])


def namespace_inode(pid: int, kind: str) -> int:
    """The inode number of a process's namespace, as `readlink /proc/PID/ns/KIND` shows it."""
    link = os.readlink(f"/proc/{pid}/ns/{kind}")
    return int(link[link.index("[") + 1:-1])
