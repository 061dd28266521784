"""Device rules, their cgroup v1 writes, and the cgroup v2 BPF program: its instructions and meaning.

The program is checked two ways: `evaluate` runs it on every interesting access as the kernel
would, and (as root, where the kernel allows it) the kernel's verifier loads it.
"""

from __future__ import annotations

import os
import struct

import pytest

from minikube_py.runtime import devices
from minikube_py.runtime.cgroups import CgroupV1
from minikube_py.runtime.devices import DeviceRule, Instruction


def test_v1_writes_deny_everything_then_allow_runcs_defaults():
    writes = devices.v1_writes(devices.rules_for())
    assert writes[0] == ("devices.deny", "a")
    allowed = [line for name, line in writes[1:] if name == "devices.allow"]
    assert allowed == ["c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
                       "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm"]
    assert "c 10:229 rwm" in [line for _, line in devices.v1_writes(devices.rules_for(["fuse"]))]
    assert devices.v1_writes(devices.rules_for(privileged=True)) == [("devices.deny", "a"), ("devices.allow", "a *:* rwm")]


def test_an_unknown_optional_device_is_refused():
    with pytest.raises(ValueError, match="unknown device 'kmsg'"):
        devices.rules_for(["kmsg"])


ACCESSES = [
    # (type, major, minor, access, allowed by default, allowed with fuse)
    ("c", 1, 3, "rw", True, True),  # /dev/null
    ("c", 1, 9, "r", True, True),  # /dev/urandom
    ("c", 5, 2, "rw", True, True),  # /dev/ptmx
    ("c", 136, 7, "rw", True, True),  # /dev/pts/7
    ("c", 1, 11, "r", False, False),  # /dev/kmsg
    ("c", 1, 11, "m", True, True),  # creating it is allowed; opening is what is refused
    ("c", 5, 1, "w", False, False),  # /dev/console
    ("c", 10, 229, "rw", False, True),  # /dev/fuse
    ("b", 7, 0, "r", False, False),  # /dev/loop0
    ("b", 8, 0, "rw", False, False),  # /dev/sda
    ("b", 8, 0, "m", True, True),
    ("c", 1, 3, "rwm", True, True),
    ("c", 4, 0, "rw", False, False),  # /dev/tty0
]


@pytest.mark.parametrize("dev_type, major, minor, access, default, with_fuse", ACCESSES)
def test_the_bpf_program_decides_like_the_v1_rules(dev_type, major, minor, access, default, with_fuse):
    assert devices.evaluate(devices.device_program(devices.rules_for()), dev_type, major, minor, access) == int(default)
    assert devices.evaluate(devices.device_program(devices.rules_for(["fuse"])), dev_type, major, minor, access) == int(with_fuse)
    assert devices.evaluate(devices.device_program(devices.rules_for(privileged=True)), dev_type, major, minor, access) == 1


def test_the_program_reads_the_context_then_ends_in_a_default_deny():
    program = devices.device_program([DeviceRule("c", 1, 3, "rwm")])
    assert program[0] == Instruction(devices.LDX_MEM_W, dst=2, src=1, off=0)  # access_type
    assert program[4:6] == [Instruction(devices.LDX_MEM_W, 4, 1, 4), Instruction(devices.LDX_MEM_W, 5, 1, 8)]
    # One rule: type, major and minor checks jump past its verdict to the final "return 0".
    block = program[6:-2]
    assert [instruction.code for instruction in block] == [devices.JNE_K] * 3 + [devices.MOV64_K, devices.EXIT]
    assert [instruction.off for instruction in block[:3]] == [4, 3, 2]
    assert program[-2:] == [Instruction(devices.MOV64_K, 0, imm=0), Instruction(devices.EXIT)]


def test_a_partial_access_rule_checks_the_requested_bits_are_a_subset():
    program = devices.device_program([DeviceRule("c", None, None, "m")])
    assert devices.evaluate(program, "c", 9, 9, "m") == 1
    assert devices.evaluate(program, "c", 9, 9, "rm") == 0
    assert devices.evaluate(program, "b", 9, 9, "m") == 0


def test_a_deny_rule_before_an_allow_rule_wins():
    program = devices.device_program([DeviceRule("c", 1, 11, "rwm", allow=False), DeviceRule("a", None, None, "rwm")])
    assert devices.evaluate(program, "c", 1, 11, "r") == 0 and devices.evaluate(program, "c", 1, 3, "r") == 1


def test_instructions_encode_as_struct_bpf_insn():
    assert Instruction(devices.JNE_K, dst=4, off=3, imm=136).encode() == struct.pack("<BBhi", 0x55, 0x04, 3, 136)
    assert Instruction(devices.LDX_MEM_W, dst=2, src=1, off=8).encode() == bytes([0x61, 0x12, 8, 0, 0, 0, 0, 0])
    assert len(devices.encode(devices.device_program(devices.rules_for()))) == 8 * len(devices.device_program(devices.rules_for()))


@pytest.mark.skipif(os.geteuid() != 0, reason="loading a BPF program needs root")
def test_the_kernel_verifier_accepts_the_program():
    try:
        descriptor = devices.load_program(devices.device_program(devices.rules_for(["fuse"])))
    except OSError as error:
        if error.errno in (1, 38):  # no BPF here (EPERM in a container, ENOSYS): nothing to verify against
            pytest.skip(f"this kernel does not load BPF programs here: {error}")
        raise
    os.close(descriptor)


def test_v1_set_devices_writes_deny_then_allow_lines(tmp_path):
    for controller in ("memory", "cpu", "pids", "devices"):
        (tmp_path / controller).mkdir()
        (tmp_path / controller / "cgroup.procs").write_text("")
    driver = CgroupV1(str(tmp_path))
    driver.create("cluster/pod/c1")
    directory = tmp_path / "devices" / "cluster/pod/c1"
    assert str(directory) in driver.absolute_paths("cluster/pod/c1").values()
    for name in ("devices.deny", "devices.allow"):
        (directory / name).write_text("")
    driver.set_devices("cluster/pod/c1", devices.rules_for())
    assert (directory / "devices.deny").read_text() == "a\n"
    assert (directory / "devices.allow").read_text().splitlines() == [rule.v1_line() for rule in devices.DEFAULT_RULES]


def test_v1_without_a_devices_hierarchy_refuses_rather_than_leave_devices_open(tmp_path):
    for controller in ("memory", "cpu", "pids"):
        (tmp_path / controller).mkdir()
    driver = CgroupV1(str(tmp_path))
    driver.create("cluster/pod/c1")
    with pytest.raises(Exception, match="devices controller is not mounted"):
        driver.set_devices("cluster/pod/c1", devices.rules_for())
