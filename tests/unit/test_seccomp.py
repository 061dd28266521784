"""The seccomp profile data, which rules apply to which container, compilation to BPF, the cache.

The compiled program's meaning is checked by running it in a forked child (loading a filter
needs no privilege once no_new_privs is set) and watching which system calls fail.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os

import pytest

from minikube_py.runtime import linux, seccomp
from minikube_py.runtime.container import security_fields
from minikube_py.runtime.types import ContainerConfig, ContainerRuntimeError

DOCKER_DEFAULT = frozenset(name for name, number in linux.ALL_CAPABILITY_NUMBERS.items()
                           if number in linux.DEFAULT_CAPABILITIES)


def default_profile() -> dict:
    return seccomp.read_profile(seccomp.DEFAULT_PROFILE_FILE)[0]


def allowed_names(rules: list[dict]) -> set[str]:
    return {name for rule in rules if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args")
            for name in rule["names"]}


def test_the_default_profile_refuses_by_errno_and_keeps_namespace_mount_and_kernel_calls_out():
    profile = default_profile()
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    allowed = allowed_names(seccomp.select_rules(profile, DOCKER_DEFAULT, "amd64", (6, 1)))
    assert {"read", "write", "execve", "fork", "arch_prctl", "ptrace"} <= allowed
    for name in ("unshare", "setns", "mount", "umount2", "keyctl", "add_key", "bpf", "kexec_load", "init_module",
                 "reboot", "open_by_handle_at", "perf_event_open", "userfaultfd", "swapon"):
        assert name not in allowed, name


def test_capabilities_and_architecture_and_kernel_select_rules():
    profile = default_profile()
    with_admin = allowed_names(seccomp.select_rules(profile, DOCKER_DEFAULT | {"CAP_SYS_ADMIN"}, "amd64", (6, 1)))
    assert {"mount", "unshare", "setns", "bpf"} <= with_admin
    rules = seccomp.select_rules(profile, DOCKER_DEFAULT, "amd64", (6, 1))
    clone = [rule for rule in rules if rule["names"] == ["clone"]]
    assert len(clone) == 1 and clone[0]["args"][0]["op"] == "SCMP_CMP_MASKED_EQ" and clone[0]["args"][0]["index"] == 0
    assert [rule.get("errnoRet") for rule in rules if rule["names"] == ["clone3"]] == [errno.ENOSYS]
    admin_rules = seccomp.select_rules(profile, DOCKER_DEFAULT | {"CAP_SYS_ADMIN"}, "amd64", (6, 1))
    assert not [rule for rule in admin_rules if rule["names"] == ["clone"]]  # clone is allowed whole instead
    assert "arch_prctl" not in allowed_names(seccomp.select_rules(profile, DOCKER_DEFAULT, "arm64", (6, 1)))
    assert "ptrace" not in allowed_names(seccomp.select_rules(profile, DOCKER_DEFAULT, "amd64", (4, 4)))


def test_architectures_come_from_the_arch_map_or_the_profile():
    assert seccomp.architectures(default_profile(), "x86_64") == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert seccomp.architectures({"architectures": ["SCMP_ARCH_X86_64"]}, "x86_64") == ["SCMP_ARCH_X86_64"]
    assert seccomp.architectures({}, "x86_64") == ["SCMP_ARCH_X86_64"]


def run_filtered(program: bytes, calls) -> dict:
    """Load `program` in a forked child and report each call's errno (0 = it worked)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            libc = ctypes.CDLL(None, use_errno=True)
            libc.syscall.restype = ctypes.c_long
            linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
            seccomp.install_filter(program)
            results = {}
            for name, number, arguments in calls:
                ctypes.set_errno(0)
                result = libc.syscall(number, *arguments)
                results[name] = 0 if result >= 0 else ctypes.get_errno()
            os.write(write_end, json.dumps(results).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(data)


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers below are x86_64's")
def test_the_compiled_default_program_refuses_with_eperm_and_clone3_with_enosys():
    program = seccomp.compile_profile(default_profile(), DOCKER_DEFAULT)
    assert len(program) % seccomp.BPF_INSTRUCTION_SIZE == 0
    # The filter first checks the architecture (a BPF_LD of seccomp_data.arch at offset 4).
    assert seccomp.instructions(program)[0] == (0x20, 0, 0, 4)
    results = run_filtered(program, [
        ("getpid", 39, ()), ("unshare", 272, (linux.CLONE_NEWUSER,)), ("keyctl", 250, (0, -3, 1)),
        ("kexec_load", 246, (0, 0, 0, 0)), ("mount", 165, (0, 0, 0, 0, 0)), ("clone3", 435, (0, 0)),
        ("personality_query", 135, (ctypes.c_ulong(0xFFFFFFFF),)), ("personality_other", 135, (0x0040000,)),
    ])
    assert results == {"getpid": 0, "unshare": errno.EPERM, "keyctl": errno.EPERM, "kexec_load": errno.EPERM,
                       "mount": errno.EPERM, "clone3": errno.ENOSYS, "personality_query": 0,
                       "personality_other": errno.EPERM}


def test_an_unknown_action_or_operator_names_the_rule():
    with pytest.raises(seccomp.ProfileError, match=r"syscalls\[0\]: action 'SCMP_ACT_MAYBE'"):
        seccomp.compile_profile({"defaultAction": "SCMP_ACT_ALLOW",
                                 "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_MAYBE"}]}, frozenset())
    with pytest.raises(seccomp.ProfileError, match="operator 'SCMP_CMP_ROUGHLY'"):
        seccomp.compile_profile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ROUGHLY"}]}]},
            frozenset())


def test_names_libseccomp_does_not_know_are_skipped():
    program = seccomp.compile_profile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["no_such_call", "mkdir"], "action": "SCMP_ACT_ERRNO"}]}, frozenset())
    assert program


def test_the_cache_compiles_each_profile_and_capability_set_once(tmp_path, monkeypatch):
    cache = seccomp.ProgramCache(str(tmp_path / "cache"))
    compiled = []
    real = seccomp.compile_profile
    monkeypatch.setattr(seccomp, "compile_profile", lambda *args: compiled.append(args[1]) or real(*args))
    first = cache.program(seccomp.RUNTIME_DEFAULT, DOCKER_DEFAULT)
    assert cache.program(seccomp.RUNTIME_DEFAULT, DOCKER_DEFAULT) == first
    assert seccomp.ProgramCache(str(tmp_path / "cache")).program(seccomp.RUNTIME_DEFAULT, DOCKER_DEFAULT) == first
    other = cache.program(seccomp.RUNTIME_DEFAULT, DOCKER_DEFAULT | {"CAP_SYS_ADMIN"})
    assert other != first and len(compiled) == 2
    assert oct(os.stat(tmp_path / "cache").st_mode & 0o777) == "0o700"


def test_a_missing_or_broken_localhost_profile_says_which_file(tmp_path):
    cache = seccomp.ProgramCache(str(tmp_path / "cache"))
    with pytest.raises(seccomp.ProfileError, match=f'cannot load seccomp profile "{tmp_path}/nope.json"'):
        cache.program(f"localhost/{tmp_path}/nope.json", DOCKER_DEFAULT)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(seccomp.ProfileError, match="not JSON"):
        cache.program(f"localhost/{tmp_path}/bad.json", DOCKER_DEFAULT)


def config(**fields) -> ContainerConfig:
    return ContainerConfig(sandbox_id="pod-1", name="app", attempt=0, image="busybox", argv=["sh"], **fields)


def test_security_fields_for_the_container_child(tmp_path):
    cache = seccomp.ProgramCache(str(tmp_path))
    default = security_fields(config(), cache)
    assert default["capabilities"] is None and default["seccomp_profile"] == seccomp.RUNTIME_DEFAULT
    assert default["seccomp_program"].startswith(str(tmp_path)) and default["seccomp_program"].endswith(".bpf")
    dropped = security_fields(config(capabilities=["CAP_NET_ADMIN"], no_new_privileges=True), cache)
    assert dropped["capabilities"] == [12] and dropped["no_new_privileges"]
    privileged = security_fields(config(privileged=True, no_new_privileges=True), cache)
    assert privileged["seccomp_profile"] == seccomp.UNCONFINED and privileged["seccomp_program"] == ""
    assert privileged["capabilities"] == sorted(linux.ALL_CAPABILITY_NUMBERS.values())
    assert not privileged["no_new_privileges"]
    assert security_fields(config(seccomp_profile=seccomp.UNCONFINED), cache)["seccomp_program"] == ""


@pytest.mark.parametrize("fields, message", [
    ({"capabilities": ["CAP_FLY"]}, "unknown capability 'FLY'"),
    ({"devices": ["kmsg"]}, "unknown device 'kmsg'"),
    ({"seccomp_profile": "localhost//nonexistent/profile.json"}, 'cannot load seccomp profile "/nonexistent/profile.json"'),
])
def test_bad_security_settings_are_create_container_errors(tmp_path, fields, message):
    with pytest.raises(ContainerRuntimeError) as raised:
        security_fields(config(**fields), seccomp.ProgramCache(str(tmp_path)))
    assert raised.value.reason == "CreateContainerError" and message in raised.value.message


def test_process_seccomp_mode_reads_proc_status():
    assert seccomp.process_seccomp_mode(os.getpid()) in (0, 2)
    assert seccomp.process_seccomp_mode(2 ** 22 + 12345) is None
