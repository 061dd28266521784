"""Seccomp filters for containers: profiles compiled to BPF once, loaded by the container child.

Every container runs under a seccomp filter unless it is privileged or asks for `Unconfined`
(Kubernetes' `securityContext.seccompProfile`). The default, `RuntimeDefault`, is the rule set
of containerd's default profile, kept as our own data file `profiles/runtime-default.json` in the
JSON profile format Docker and Kubernetes' `Localhost` profiles use (`defaultAction`, `archMap`
or `architectures`, `syscalls[]` with `names`, `action`, `args`, `errnoRet` and `includes` /
`excludes` by capability, architecture and minimum kernel).

Building a filter through libseccomp takes milliseconds, so it is not done per container: the
daemon compiles each (profile, capabilities) pair once with libseccomp (PyPI `pyseccomp`, ctypes
over libseccomp2) and exports the BPF program into a cache file named by a hash of everything
that shaped it. The container child, a fork of the supervisor that runs without site-packages,
only reads those bytes and hands them to the kernel with prctl(PR_SET_SECCOMP) through ctypes, so
this module imports nothing outside the standard library until something is compiled.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import platform
import struct
import threading

RUNTIME_DEFAULT = "runtime/default"
UNCONFINED = "unconfined"
LOCALHOST_PREFIX = "localhost/"

DEFAULT_PROFILE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "profiles", "runtime-default.json")

# Machine names (uname -m) -> the Go names the profile format uses in includes/excludes.arches.
GO_ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "armv7l": "arm", "s390x": "s390x",
             "ppc64le": "ppc64le", "riscv64": "riscv64"}
# uname -m -> libseccomp's native architecture name.
SCMP_ARCHES = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64", "s390x": "SCMP_ARCH_S390X",
               "riscv64": "SCMP_ARCH_RISCV64", "ppc64le": "SCMP_ARCH_PPC64LE"}

_ACTIONS = ("SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_TRAP", "SCMP_ACT_LOG")
_OPERATORS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
              "SCMP_CMP_MASKED_EQ")
EPERM = 1

# Kernel ABI (linux/prctl.h, linux/seccomp.h).
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
BPF_INSTRUCTION_SIZE = 8  # struct sock_filter: u16 code, u8 jt, u8 jf, u32 k
X32_SYSCALL_BIT = 0x40000000
X86_64_GETPID = 39


class ProfileError(Exception):
    """A profile cannot be read or compiled; the message names the profile and what is wrong."""


def kernel_version(release: str | None = None) -> tuple[int, int]:
    """(major, minor) of the running kernel, from `uname -r` ("6.18.44-fc" -> (6, 18))."""
    numbers = (release or platform.release()).split("-")[0].split(".")
    return int(numbers[0]), int(numbers[1]) if len(numbers) > 1 and numbers[1].isdigit() else 0


def _matches(condition: dict | None, capabilities: frozenset[str], arch: str, kernel: tuple[int, int]) -> bool:
    """True when every part of an `includes` block holds (any listed cap/arch is enough)."""
    if not condition:
        return True
    if condition.get("caps") and not capabilities.intersection(condition["caps"]):
        return False
    if condition.get("arches") and arch not in condition["arches"]:
        return False
    if condition.get("minKernel") and kernel < kernel_version(condition["minKernel"]):
        return False
    return True


def _excluded(condition: dict | None, capabilities: frozenset[str], arch: str) -> bool:
    if not condition:
        return False
    return bool(capabilities.intersection(condition.get("caps") or [])) or arch in (condition.get("arches") or [])


def select_rules(profile: dict, capabilities: frozenset[str], arch: str, kernel: tuple[int, int]) -> list[dict]:
    """The profile's syscall rules that apply to a container with these bounding capabilities
    on this architecture (Go name) and kernel."""
    return [rule for rule in profile.get("syscalls") or []
            if _matches(rule.get("includes"), capabilities, arch, kernel)
            and not _excluded(rule.get("excludes"), capabilities, arch)]


def kernel_runs_x32() -> bool:
    """Whether this x86-64 kernel runs x32 system calls (CONFIG_X86_X32_ABI): getpid with the x32
    bit set answers ENOSYS where it does not."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return platform.machine() == "x86_64" and libc.syscall(X32_SYSCALL_BIT | X86_64_GETPID) >= 0


def architectures(profile: dict, machine: str, x32: bool = True) -> list[str]:
    """libseccomp architecture names the filter covers: `architectures`, else the `archMap`
    entry of this machine with its sub-architectures, else the native one. x32 is left out where
    the kernel cannot run it (`x32=False`): every x32 call fails there anyway, and the filter is a
    third shorter, which is a third less for the kernel to check when it loads it."""
    if profile.get("architectures"):
        names = list(profile["architectures"])
    else:
        native = SCMP_ARCHES.get(machine)
        names = [native] if native else []
        for entry in profile.get("archMap") or []:
            if entry.get("architecture") == native:
                names = [native, *(entry.get("subArchitectures") or [])]
    return [name for name in names if x32 or name != "SCMP_ARCH_X32"]


def _action(name: str, errno_ret: int | None, where: str):
    import pyseccomp

    if name not in _ACTIONS:
        raise ProfileError(f"{where}: action {name!r} is not supported; use one of {', '.join(_ACTIONS)}")
    if name == "SCMP_ACT_ERRNO":
        return pyseccomp.ERRNO(EPERM if errno_ret is None else errno_ret)
    return {"SCMP_ACT_ALLOW": pyseccomp.ALLOW, "SCMP_ACT_KILL": pyseccomp.KILL_THREAD,
            "SCMP_ACT_KILL_THREAD": pyseccomp.KILL_THREAD, "SCMP_ACT_KILL_PROCESS": pyseccomp.KILL_PROCESS,
            "SCMP_ACT_TRAP": pyseccomp.TRAP, "SCMP_ACT_LOG": pyseccomp.LOG}[name]


def compile_profile(profile: dict, capabilities: frozenset[str], machine: str | None = None,
                    kernel: tuple[int, int] | None = None, x32: bool | None = None) -> bytes:
    """The profile as a BPF program (struct sock_filter array) for this machine, via libseccomp.

    Syscall names this libseccomp does not know on any covered architecture are skipped, as runc
    skips them: profiles name syscalls of newer kernels and of other architectures.
    """
    import tempfile

    import pyseccomp

    machine = machine or platform.machine()
    kernel = kernel or kernel_version()
    x32 = kernel_runs_x32() if x32 is None else x32
    arch = GO_ARCHES.get(machine, machine)
    where = "seccomp profile"
    default = _action(profile.get("defaultAction", ""), profile.get("defaultErrnoRet"), where)
    seccomp_filter = pyseccomp.SyscallFilter(default)
    # A binary tree of syscall numbers instead of a linear list: the kernel walks the filter for
    # every syscall number when it loads it (its action cache), so loading costs about half.
    seccomp_filter.set_attr(pyseccomp.Attr.CTL_OPTIMIZE, 2)
    for name in architectures(profile, machine, x32):
        if name == SCMP_ARCHES.get(machine):
            continue  # the native architecture is always in the filter
        try:
            seccomp_filter.add_arch(getattr(pyseccomp.Arch, name.removeprefix("SCMP_ARCH_")))
        except (AttributeError, OSError) as error:
            raise ProfileError(f"{where}: architecture {name!r} cannot be added: {error}") from None
    for index, rule in enumerate(select_rules(profile, capabilities, arch, kernel)):
        at = f"{where}: syscalls[{index}]"
        action = _action(rule.get("action", ""), rule.get("errnoRet"), at)
        if action == default:
            continue  # libseccomp refuses rules that repeat the default action
        arguments = []
        for argument in rule.get("args") or []:
            if argument.get("op") not in _OPERATORS:
                raise ProfileError(f"{at}: operator {argument.get('op')!r} is not supported; use one of {', '.join(_OPERATORS)}")
            operator = getattr(pyseccomp, argument["op"].removeprefix("SCMP_CMP_"))
            arguments.append(pyseccomp.Arg(argument["index"], operator, argument["value"], argument.get("valueTwo", 0)))
        for name in rule.get("names") or ([rule["name"]] if rule.get("name") else []):
            number = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name)
            if number == -1:  # __NR_SCMP_ERROR: unknown to libseccomp everywhere
                continue
            try:
                seccomp_filter.add_rule(action, number, *arguments)
            except OSError as error:
                raise ProfileError(f"{at}: rule for {name} cannot be added: {error}") from None
    with tempfile.TemporaryFile() as output:
        seccomp_filter.export_bpf(output)
        output.seek(0)
        return output.read()


def read_profile(path: str) -> tuple[dict, bytes]:
    """A profile file's parsed content and raw bytes; ProfileError says what is wrong with it."""
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as error:
        raise ProfileError(f'cannot load seccomp profile "{path}": {error.strerror}') from None
    try:
        profile = json.loads(raw)
    except ValueError as error:
        raise ProfileError(f'cannot load seccomp profile "{path}": not JSON: {error}') from None
    if not isinstance(profile, dict) or not isinstance(profile.get("syscalls", []), list):
        raise ProfileError(f'cannot load seccomp profile "{path}": expected an object with a "syscalls" list')
    return profile, raw


class ProgramCache:
    """Compiled programs on disk, one file per distinct (profile bytes, capabilities, machine, kernel).

    `program(profile_ref, capabilities)` returns the path of the `.bpf` file the container child
    loads; it compiles only when that file does not exist yet, so the cost is paid once per
    profile and capability set for as long as the cluster home lives.
    """

    def __init__(self, directory: str):
        self.directory = directory
        self._lock = threading.Lock()
        self._known: dict[tuple[str, int, int, frozenset[str]], str] = {}

    def profile_path(self, profile_ref: str) -> str:
        if profile_ref == RUNTIME_DEFAULT:
            return DEFAULT_PROFILE_FILE
        if profile_ref.startswith(LOCALHOST_PREFIX):
            return profile_ref[len(LOCALHOST_PREFIX):]
        raise ProfileError(f"seccomp profile {profile_ref!r} is not runtime/default, unconfined or localhost/<path>")

    def program(self, profile_ref: str, capabilities: frozenset[str]) -> str:
        path = self.profile_path(profile_ref)
        try:
            info = os.stat(path)
        except OSError as error:
            raise ProfileError(f'cannot load seccomp profile "{path}": {error.strerror}') from None
        key = (path, info.st_mtime_ns, info.st_size, capabilities)
        with self._lock:
            known = self._known.get(key)
            if known is not None and os.path.exists(known):
                return known  # an unchanged file: no read, no parse, no hash
            profile, raw = read_profile(path)
            digest = hashlib.sha256(raw + b"\0" + ",".join(sorted(capabilities)).encode() + b"\0"
                                    + f"{platform.machine()} {kernel_version()}".encode()).hexdigest()[:32]
            target = os.path.join(self.directory, f"{digest}.bpf")
            if not os.path.exists(target):
                program = compile_profile(profile, capabilities)
                os.makedirs(self.directory, mode=0o700, exist_ok=True)
                temporary = f"{target}.{os.getpid()}.tmp"
                with open(temporary, "wb") as file:
                    file.write(program)
                os.replace(temporary, target)
            self._known[key] = target
            return target


# ---- the container child's side: load a compiled program ------------------------------------

class _SockFilterProgram(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def read_program(path: str) -> bytes:
    with open(path, "rb") as file:
        program = file.read()
    if not program or len(program) % BPF_INSTRUCTION_SIZE:
        raise OSError(f"seccomp program {path}: {len(program)} bytes is not a whole BPF program")
    return program


def install_filter(program: bytes) -> None:
    """Load a BPF program as this thread's seccomp filter (needs no_new_privs or CAP_SYS_ADMIN)."""
    libc = ctypes.CDLL(None, use_errno=True)
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFilterProgram(len(program) // BPF_INSTRUCTION_SIZE, ctypes.addressof(buffer))
    result = libc.prctl(PR_SET_SECCOMP, ctypes.c_ulong(SECCOMP_MODE_FILTER), ctypes.c_void_p(ctypes.addressof(fprog)),
                        ctypes.c_ulong(0), ctypes.c_ulong(0))
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"loading the seccomp filter: {os.strerror(error)}")


def instructions(program: bytes) -> list[tuple[int, int, int, int]]:
    """(code, jt, jf, k) of each instruction, for tests and inspection."""
    return [struct.unpack_from("<HBBI", program, offset) for offset in range(0, len(program), BPF_INSTRUCTION_SIZE)]


def process_seccomp_mode(pid: int) -> int | None:
    """The `Seccomp:` field of /proc/PID/status: 0 none, 1 strict, 2 filter."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("Seccomp:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None
