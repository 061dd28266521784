"""Which device nodes a container may create and open: the device controller, as runc sets it.

Root in a container holds CAP_MKNOD, so without a device controller it could create the host's
/dev/kmsg, a disk or /dev/fuse in its own /dev and open them. The kernel checks every open (and
mknod) of a device node against the container's cgroup: on cgroup v1 the `devices` controller's
`devices.deny` / `devices.allow` lists, on cgroup v2 a BPF program of type
BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup. The rules are runc's defaults: creating any
node is allowed (`m`), reading and writing only the harmless ones (null, zero, full, random,
urandom, tty, ptmx and the container's own pts); /dev/fuse only when the pod asks for it, and
everything for a privileged container. Any other open fails with EPERM.

The rules are plain data (`DeviceRule`); `v1_writes` turns them into cgroup file writes and
`device_program` into BPF instructions, also plain data, so both are unit-tested without root.
`evaluate` runs a program the way the kernel would for one access, which is how the tests check
what the generated instructions mean.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
from typing import NamedTuple

WILDCARD = None


class DeviceRule(NamedTuple):
    type: str  # "c" character, "b" block, "a" all
    major: int | None  # None: any
    minor: int | None
    access: str  # letters of "rwm": read, write, mknod
    allow: bool = True

    def v1_line(self) -> str:
        """`c 1:3 rwm`, `a *:* rwm`: the line devices.allow / devices.deny take."""
        major = "*" if self.major is None else str(self.major)
        minor = "*" if self.minor is None else str(self.minor)
        return f"{self.type} {major}:{minor} {self.access}"


# runc's default allow list (libcontainer/specconv AllowedDevices).
DEFAULT_RULES = (
    DeviceRule("c", WILDCARD, WILDCARD, "m"),  # mknod of any node; opening it is what is checked
    DeviceRule("b", WILDCARD, WILDCARD, "m"),
    DeviceRule("c", 1, 3, "rwm"),  # /dev/null
    DeviceRule("c", 1, 5, "rwm"),  # /dev/zero
    DeviceRule("c", 1, 7, "rwm"),  # /dev/full
    DeviceRule("c", 1, 8, "rwm"),  # /dev/random
    DeviceRule("c", 1, 9, "rwm"),  # /dev/urandom
    DeviceRule("c", 5, 0, "rwm"),  # /dev/tty
    DeviceRule("c", 5, 2, "rwm"),  # /dev/ptmx
    DeviceRule("c", 136, WILDCARD, "rwm"),  # /dev/pts/*
)
# Devices a pod may ask for by name, and the node the container's /dev then holds.
OPTIONAL_DEVICES = {"fuse": (DeviceRule("c", 10, 229, "rwm"), "fuse")}
ALLOW_ALL = (DeviceRule("a", WILDCARD, WILDCARD, "rwm"),)


def rules_for(extra_devices: list[str] | tuple[str, ...] = (), privileged: bool = False) -> list[DeviceRule]:
    if privileged:
        return list(ALLOW_ALL)
    unknown = [name for name in extra_devices if name not in OPTIONAL_DEVICES]
    if unknown:
        raise ValueError(f"unknown device {unknown[0]!r}; the devices a pod may ask for are: {', '.join(OPTIONAL_DEVICES)}")
    return list(DEFAULT_RULES) + [OPTIONAL_DEVICES[name][0] for name in extra_devices]


def v1_writes(rules: list[DeviceRule]) -> list[tuple[str, str]]:
    """(file, line) writes that leave a v1 devices cgroup with exactly these rules: deny all, then allow."""
    writes = [("devices.deny", "a")]
    writes += [("devices.allow" if rule.allow else "devices.deny", rule.v1_line()) for rule in rules]
    return writes


# ---- cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program -----------------------------------------
#
# The kernel calls the program with r1 pointing at struct bpf_cgroup_dev_ctx
# { u32 access_type; u32 major; u32 minor; }, where access_type = (access << 16) | type.
# Returning 1 allows the access, 0 refuses it with EPERM.

DEV_TYPE = {"b": 1, "c": 2}  # BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR
ACCESS_BITS = {"m": 1, "r": 2, "w": 4}  # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE


class Instruction(NamedTuple):
    """One eBPF instruction (struct bpf_insn)."""

    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0

    def encode(self) -> bytes:
        return struct.pack("<BBhi", self.code, (self.src << 4) | self.dst, self.off, self.imm)


# Opcodes: class | size/op | source.
LDX_MEM_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
ALU32_AND_K = 0x54  # BPF_ALU | BPF_AND | BPF_K: dst &= imm (32-bit)
ALU32_RSH_K = 0x74  # BPF_ALU | BPF_RSH | BPF_K: dst >>= imm
MOV32_X = 0xBC  # BPF_ALU | BPF_MOV | BPF_X: dst = src
MOV64_K = 0xB7  # BPF_ALU64 | BPF_MOV | BPF_K: dst = imm
JNE_K = 0x55  # BPF_JMP | BPF_JNE | BPF_K: if dst != imm: pc += off
EXIT = 0x95  # BPF_JMP | BPF_EXIT: return r0

# Registers after the prologue: r2 type, r3 access, r4 major, r5 minor; r1 is scratch.
R0, R1, R2, R3, R4, R5 = range(6)


def _access_mask(access: str) -> int:
    mask = 0
    for letter in access:
        mask |= ACCESS_BITS[letter]
    return mask


def _rule_block(rule: DeviceRule) -> list[Instruction]:
    """Instructions that return the rule's verdict when it matches, else fall through past them."""
    checks: list[list[Instruction]] = []
    if rule.type != "a":
        checks.append([Instruction(JNE_K, R2, imm=DEV_TYPE[rule.type])])
    mask = _access_mask(rule.access)
    if mask != 0b111:
        # Matches only when every requested access bit is in the rule: (access & ~mask) == 0.
        checks.append([Instruction(MOV32_X, R1, R3), Instruction(ALU32_AND_K, R1, imm=~mask & 0b111),
                       Instruction(JNE_K, R1, imm=0)])
    if rule.major is not None:
        checks.append([Instruction(JNE_K, R4, imm=rule.major)])
    if rule.minor is not None:
        checks.append([Instruction(JNE_K, R5, imm=rule.minor)])
    verdict = [Instruction(MOV64_K, R0, imm=1 if rule.allow else 0), Instruction(EXIT)]
    block: list[Instruction] = []
    length = sum(len(check) for check in checks) + len(verdict)
    for check in checks:
        for instruction in check:
            position = len(block)
            if instruction.code == JNE_K:
                # Jump past the rest of this block: offsets count from the next instruction.
                instruction = instruction._replace(off=length - position - 1)
            block.append(instruction)
    return block + verdict


def device_program(rules: list[DeviceRule]) -> list[Instruction]:
    """The BPF program for these rules: the first rule that matches decides; nothing matching is refused."""
    program = [
        Instruction(LDX_MEM_W, R2, R1, 0),  # access_type
        Instruction(MOV32_X, R3, R2),
        Instruction(ALU32_AND_K, R2, imm=0xFFFF),  # type
        Instruction(ALU32_RSH_K, R3, imm=16),  # access
        Instruction(LDX_MEM_W, R4, R1, 4),  # major
        Instruction(LDX_MEM_W, R5, R1, 8),  # minor
    ]
    for rule in rules:
        program += _rule_block(rule)
    return program + [Instruction(MOV64_K, R0, imm=0), Instruction(EXIT)]


def encode(program: list[Instruction]) -> bytes:
    return b"".join(instruction.encode() for instruction in program)


def evaluate(program: list[Instruction], dev_type: str, major: int, minor: int, access: str) -> int:
    """Run the program on one access as the kernel would (only the opcodes `device_program` emits)."""
    context = struct.pack("<III", (_access_mask(access) << 16) | DEV_TYPE[dev_type], major, minor)
    registers = [0] * 11
    pc = 0
    while True:
        instruction = program[pc]
        pc += 1
        code, dst, src = instruction.code, instruction.dst, instruction.src
        if code == LDX_MEM_W:
            registers[dst] = struct.unpack_from("<I", context, instruction.off)[0]
        elif code == MOV32_X:
            registers[dst] = registers[src] & 0xFFFFFFFF
        elif code == ALU32_AND_K:
            registers[dst] = (registers[dst] & instruction.imm) & 0xFFFFFFFF
        elif code == ALU32_RSH_K:
            registers[dst] = (registers[dst] & 0xFFFFFFFF) >> instruction.imm
        elif code == MOV64_K:
            registers[dst] = instruction.imm
        elif code == JNE_K:
            if registers[dst] != instruction.imm:
                pc += instruction.off
        elif code == EXIT:
            return registers[R0]
        else:
            raise ValueError(f"opcode {code:#x} at {pc - 1} is not one device_program emits")


# Kernel ABI (linux/bpf.h).
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2
_BPF_SYSCALL = {"x86_64": 321, "aarch64": 280}


class _ProgLoadAttr(ctypes.Structure):
    _fields_ = [("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32), ("insns", ctypes.c_uint64),
                ("license", ctypes.c_uint64), ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
                ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32), ("prog_flags", ctypes.c_uint32),
                ("padding", ctypes.c_uint8 * 64)]


class _ProgAttachAttr(ctypes.Structure):
    _fields_ = [("target_fd", ctypes.c_uint32), ("attach_bpf_fd", ctypes.c_uint32), ("attach_type", ctypes.c_uint32),
                ("attach_flags", ctypes.c_uint32), ("padding", ctypes.c_uint8 * 64)]


def _bpf(command: int, attr: ctypes.Structure, what: str) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    number = _BPF_SYSCALL.get(platform.machine())
    if number is None:
        raise OSError(f"bpf: syscall number unknown for machine {platform.machine()!r}")
    result = libc.syscall(number, command, ctypes.byref(attr), ctypes.sizeof(attr))
    if result < 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")
    return result


def load_program(program: list[Instruction]) -> int:
    """BPF_PROG_LOAD the device program; returns its file descriptor. On refusal it loads again
    with the verifier's log, so the error says why."""
    code = encode(program)
    buffer = ctypes.create_string_buffer(code, len(code))
    license_text = ctypes.create_string_buffer(b"Apache")
    attr = _ProgLoadAttr(prog_type=BPF_PROG_TYPE_CGROUP_DEVICE, insn_cnt=len(program),
                         insns=ctypes.addressof(buffer), license=ctypes.addressof(license_text))
    try:
        return _bpf(BPF_PROG_LOAD, attr, "loading the device program")
    except OSError as error:
        log = ctypes.create_string_buffer(1 << 16)
        attr.log_level, attr.log_size, attr.log_buf = 1, len(log), ctypes.addressof(log)
        try:
            os.close(_bpf(BPF_PROG_LOAD, attr, "loading the device program"))
        except OSError:
            pass
        raise OSError(error.errno, f"{error.strerror}; verifier: {log.value.decode(errors='replace')[-400:]}") from None


def attach_program(cgroup_directory: str, program: list[Instruction]) -> None:
    """Load the program and attach it to a cgroup v2 directory; it stays as long as the cgroup does."""
    program_fd = load_program(program)
    try:
        cgroup_fd = os.open(cgroup_directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            attr = _ProgAttachAttr(target_fd=cgroup_fd, attach_bpf_fd=program_fd, attach_type=BPF_CGROUP_DEVICE,
                                   attach_flags=BPF_F_ALLOW_MULTI)
            _bpf(BPF_PROG_ATTACH, attr, f"attaching the device program to {cgroup_directory}")
        finally:
            os.close(cgroup_fd)
    finally:
        os.close(program_fd)
