"""The forked child's side of starting a pause process or a container.

The supervisor forks, and the child runs the code here to turn itself into the pod's pause
process or into a container: join or create namespaces, join its cgroup, build the root file
system (overlay, /proc, /sys, /dev, volumes), pivot_root into it, mask kernel files, drop to the
configured user and capabilities, load the seccomp filter, and exec. Everything the child will do is first computed as
plain data (the namespaces to join, the list of mount steps) so it can be read and unit-tested
without root; the child then applies that data in a few small loops. The child is a fork of the
already-loaded supervisor, so it imports nothing at start. A failure travels back to the
supervisor as one JSON line on a close-on-exec status pipe; end-of-file on that pipe without an
error line means exec succeeded.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import stat
import termios
from dataclasses import asdict, dataclass, field
from typing import NamedTuple, NoReturn

from minikube_py.runtime import devices, linux, seccomp
from minikube_py.runtime.types import ContainerRuntimeError

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Kernel files a container must not read or write (the list runc and Docker use).
MASKED_PATHS = (
    "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
)
READ_ONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

# Character devices of the container's /dev: name -> (major, minor).
DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9), "tty": (5, 0)}
DEV_SYMLINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
                "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"}

_NOSUID_NODEV_NOEXEC = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC


@dataclass
class SandboxSpec:
    """What the supervisor's child needs to become a pod's pause process."""

    id: str
    hostname: str
    share_process_namespace: bool
    pause_binary: str
    cgroup_dirs: list[str] = field(default_factory=list)  # absolute, one per controller


@dataclass
class ContainerSpec:
    """What the supervisor's child needs to become a container; sent as JSON by the runtime."""

    id: str
    sandbox_id: str
    name: str
    attempt: int
    image: str  # the image reference, for the records
    directory: str  # home/containers/<id>: rootfs/, upper/, work/ and state.json
    layers: list[str]  # image layer directories, bottom first
    argv: list[str]
    env: list[list[str]] = field(default_factory=list)
    working_dir: str = "/"
    uid: int = 0
    gid: int = 0
    namespaces: list[list[str]] = field(default_factory=list)  # [kind, path] to join, e.g. ["net", "/proc/9/ns/net"]
    new_pid_namespace: bool = True
    mounts: list[dict] = field(default_factory=list)  # types.Mount as dicts
    cgroup_dirs: list[str] = field(default_factory=list)
    cgroup: str = ""  # relative cgroup path, for the records
    log_path: str = ""
    log_max_bytes: int = 10 * 1024 * 1024
    log_max_files: int = 5
    capabilities: list[int] | None = None  # bounding set numbers; None: Docker's default 14
    privileged: bool = False
    read_only_rootfs: bool = False
    no_new_privileges: bool = True  # what a record written before these fields existed had; set per container now
    seccomp_profile: str = seccomp.UNCONFINED  # what is in force, for the records and `inspect`
    seccomp_program: str = ""  # compiled BPF file (seccomp.ProgramCache); "" loads no filter
    supplemental_groups: list[int] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)  # optional device nodes to create ("fuse")
    stdin: bool = False  # keep a stdin pipe open for attach (its write end is the monitor's)
    tty: bool = False  # stdin, stdout and stderr are a terminal, the container's controlling one

    @property
    def rootfs(self) -> str:
        return os.path.join(self.directory, "rootfs")

    def to_json(self) -> dict:
        return asdict(self)


def security_fields(config, programs: seccomp.ProgramCache) -> dict:
    """The ContainerSpec fields that confine a container, from a `types.ContainerConfig`.

    Capability names become numbers, a privileged container gets every capability, every device
    and no seccomp filter (as containerd gives it), and the seccomp profile becomes the path of
    its compiled program (compiled once per profile and capability set).
    """
    where = f"container {config.name}"
    if config.privileged:
        names = list(linux.ALL_CAPABILITY_NUMBERS)
    elif config.capabilities is None:
        names = [name for name, number in linux.ALL_CAPABILITY_NUMBERS.items() if number in linux.DEFAULT_CAPABILITIES]
    else:
        names = list(config.capabilities)
    unknown = [name for name in names if name not in linux.ALL_CAPABILITY_NUMBERS]
    if unknown:
        raise ContainerRuntimeError("CreateContainerError", f"{where}: unknown capability {unknown[0].removeprefix('CAP_')!r} "
                            "in securityContext.capabilities; use the names of capabilities(7) without CAP_, like NET_ADMIN")
    try:
        devices.rules_for(config.devices, config.privileged)
    except ValueError as error:
        raise ContainerRuntimeError("CreateContainerError", f"{where}: {error}") from None
    profile = seccomp.UNCONFINED if config.privileged else config.seccomp_profile
    try:
        program = "" if profile == seccomp.UNCONFINED else programs.program(profile, frozenset(names))
    except (seccomp.ProfileError, OSError) as error:
        raise ContainerRuntimeError("CreateContainerError", f"{where}: {error}") from None
    return {
        "capabilities": None if config.capabilities is None and not config.privileged
        else sorted(linux.ALL_CAPABILITY_NUMBERS[name] for name in names),
        "privileged": config.privileged,
        "read_only_rootfs": config.read_only_rootfs,
        "no_new_privileges": config.no_new_privileges and not config.privileged,
        "seccomp_profile": profile,
        "seccomp_program": program,
        "supplemental_groups": list(config.supplemental_groups),
        "devices": list(config.devices),
    }


class MountStep(NamedTuple):
    """One action of building the root file system; `action` picks what `apply_step` does."""

    action: str  # mkdir, file, device, symlink, chdir, mount, remount_read_only, mask, read_only
    target: str
    source: str | None = None
    fstype: str | None = None
    flags: int = 0
    data: str | None = None


def overlay_options(layers: list[str], directory: str) -> str:
    """Mount options for the container's overlay, with paths relative to its directory.

    overlayfs wants the topmost lower layer first; image stores list layers bottom first. The
    paths are relative (the mount runs with the container's directory as working directory)
    because /proc/mounts inside the container shows them: the host's layout stays hidden.
    """
    lower = ":".join(os.path.relpath(layer, directory) for layer in reversed(layers))
    return f"lowerdir={lower},upperdir=upper,workdir=work"


def inside(rootfs: str, path: str) -> str:
    """The host path of `path` inside the container's root; refuses paths that climb out of it."""
    parts = [part for part in path.split("/") if part and part != "."]
    if ".." in parts:
        raise ContainerRuntimeError("CreateContainerError", f"mount destination {path!r} must not contain '..'")
    return os.path.join(rootfs, *parts)


def rootfs_steps(spec: ContainerSpec) -> list[MountStep]:
    """The steps that build the container's root file system, before pivot_root (host paths)."""
    rootfs = spec.rootfs
    upper, work = os.path.join(spec.directory, "upper"), os.path.join(spec.directory, "work")
    dev = os.path.join(rootfs, "dev")
    steps = [
        MountStep("mount", "/", flags=linux.MS_REC | linux.MS_PRIVATE),
        MountStep("mkdir", upper), MountStep("mkdir", work), MountStep("mkdir", rootfs),
        MountStep("chdir", spec.directory),
        MountStep("mount", rootfs, "overlay", "overlay", 0, overlay_options(spec.layers, spec.directory)),
        MountStep("mkdir", os.path.join(rootfs, "proc")),
        MountStep("mount", os.path.join(rootfs, "proc"), "proc", "proc", _NOSUID_NODEV_NOEXEC),
        MountStep("mkdir", os.path.join(rootfs, "sys")),
        MountStep("mount", os.path.join(rootfs, "sys"), "sysfs", "sysfs",
                  _NOSUID_NODEV_NOEXEC | (0 if spec.privileged else linux.MS_RDONLY)),
        MountStep("mkdir", dev),
        MountStep("mount", dev, "tmpfs", "tmpfs", linux.MS_NOSUID | linux.MS_STRICTATIME, "mode=755,size=65536k"),
    ]
    steps += [MountStep("device", os.path.join(dev, name), data=f"{major}:{minor}")
              for name, (major, minor) in DEVICES.items()]
    for name in spec.devices:
        rule, node = devices.OPTIONAL_DEVICES[name]
        steps.append(MountStep("device", os.path.join(dev, node), data=f"{rule.major}:{rule.minor}"))
    steps += [
        MountStep("mkdir", os.path.join(dev, "pts")),
        MountStep("mount", os.path.join(dev, "pts"), "devpts", "devpts", linux.MS_NOSUID | linux.MS_NOEXEC,
                  "newinstance,ptmxmode=0666,mode=0620,gid=5"),
        MountStep("mkdir", os.path.join(dev, "shm")),
        MountStep("mount", os.path.join(dev, "shm"), "shm", "tmpfs", _NOSUID_NODEV_NOEXEC, "mode=1777,size=65536k"),
        MountStep("mkdir", os.path.join(dev, "mqueue")),
        MountStep("mount", os.path.join(dev, "mqueue"), "mqueue", "mqueue", _NOSUID_NODEV_NOEXEC),
    ]
    steps += [MountStep("symlink", os.path.join(dev, name), target) for name, target in DEV_SYMLINKS.items()]
    for mount in spec.mounts:
        target = inside(rootfs, mount["destination"])
        if mount.get("type", "bind") == "tmpfs":
            # An fsGroup owns the volume, group-writable and setgid, as kubelet leaves an emptyDir.
            group = mount.get("group")
            data = None if group is None else f"mode=2777,gid={group}"
            steps += [MountStep("mkdir", target),
                      MountStep("mount", target, "tmpfs", "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, data)]
        else:
            source = mount["source"]
            steps += [MountStep("mkdir" if os.path.isdir(source) else "file", target),
                      MountStep("mount", target, source, None, linux.MS_BIND | linux.MS_REC)]
        if mount.get("read_only"):
            steps.append(MountStep("remount_read_only", target))
    return steps


def kernel_file_steps(spec: ContainerSpec) -> list[MountStep]:
    """Steps applied after pivot_root (container paths): hide and freeze kernel interfaces (not
    for a privileged container, as runc), then make the root read-only when asked."""
    steps = [] if spec.privileged else ([MountStep("mask", path) for path in MASKED_PATHS]
                                        + [MountStep("read_only", path) for path in READ_ONLY_PATHS])
    if spec.read_only_rootfs:
        steps.append(MountStep("remount_read_only", "/"))
    return steps


def apply_step(step: MountStep) -> None:
    action, target = step.action, step.target
    if action == "mkdir":
        os.makedirs(target, exist_ok=True)
    elif action == "file":
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
    elif action == "device":
        major, minor = (int(number) for number in step.data.split(":"))
        os.mknod(target, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(target, 0o666)  # mknod honours the umask
    elif action == "symlink":
        os.symlink(step.source, target)
    elif action == "chdir":
        os.chdir(target)
    elif action == "mount":
        linux.mount(step.source, target, step.fstype, step.flags, step.data)
    elif action == "remount_read_only":
        linux.mount(None, target, None, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY)
    elif action == "mask" and os.path.exists(target):
        if os.path.isdir(target):
            linux.mount("tmpfs", target, "tmpfs", linux.MS_RDONLY)
        else:
            linux.mount("/dev/null", target, None, linux.MS_BIND)
    elif action == "read_only" and os.path.exists(target):
        linux.mount(target, target, None, linux.MS_BIND | linux.MS_REC)
        linux.mount(None, target, None, linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | _NOSUID_NODEV_NOEXEC)


def container_environment(env: list[list[str]], hostname: str, uid: int) -> list[tuple[str, str]]:
    """The configured environment plus what runc/containerd add when missing: PATH, HOSTNAME, HOME."""
    result = [(name, value) for name, value in env]
    names = {name for name, _ in result}
    defaults = (("PATH", DEFAULT_PATH), ("HOSTNAME", hostname), ("HOME", "/root" if uid == 0 else "/"))
    result += [(name, value) for name, value in defaults if name not in names]
    return result


def resolve_executable(command: str, path_value: str, root: str = "/") -> str | None:
    """execvp's lookup: a name with a slash is used as is; otherwise the first executable on PATH."""
    if "/" in command:
        return command
    for directory in path_value.split(":"):
        candidate = os.path.join(directory or ".", command)
        on_host = os.path.join(root, candidate.lstrip("/")) if os.path.isabs(candidate) else candidate
        if os.path.isfile(on_host) and os.access(on_host, os.X_OK):
            return candidate
    return None


def reset_after_fork() -> None:
    """Undo what the Python supervisor set up that a container must not inherit."""
    signal.set_wakeup_fd(-1)
    for number in (signal.SIGCHLD, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)  # Python ignores SIGPIPE/SIGXFSZ, and "ignored" survives exec


def report(status_fd: int, message: dict) -> None:
    os.write(status_fd, (json.dumps(message) + "\n").encode())


def join_cgroups(cgroup_dirs: list[str]) -> None:
    for directory in cgroup_dirs:
        with open(os.path.join(directory, "cgroup.procs"), "w") as file:
            file.write("0")  # "0" means the writing process


def _protect_from_oom_killer() -> None:
    """oom_score_adj -998, as containerd gives the sandbox; lowering it needs CAP_SYS_RESOURCE,
    which some hosts withhold even from root, and then pause keeps the default score."""
    try:
        with open("/proc/self/oom_score_adj", "w") as file:
            file.write("-998")
    except PermissionError:
        pass


def _fork_into_namespace(status_fd: int) -> None:
    """Fork so the child is born in the PID namespace just entered; the parent reports and exits.

    The supervisor is a child subreaper, so it adopts the child when this intermediate exits.
    """
    pid = os.fork()
    if pid:
        report(status_fd, {"pid": pid})
        os._exit(0)


def _stdio(stdin: int, stdout: int, stderr: int) -> None:
    for source, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
        if source != target:
            os.dup2(source, target)


def _fail(status_fd: int, reason: str, message: str, exit_code: int) -> NoReturn:
    try:
        report(status_fd, {"reason": reason, "message": message})
    finally:
        os._exit(exit_code)


def run_sandbox_child(spec: SandboxSpec, status_fd: int) -> NoReturn:
    """Become the pod's pause process: new uts/ipc/net (and pid) namespaces, hostname, cgroup."""
    try:
        reset_after_fork()
        flags = linux.CLONE_NEWUTS | linux.CLONE_NEWIPC | linux.CLONE_NEWNET
        linux.unshare(flags | (linux.CLONE_NEWPID if spec.share_process_namespace else 0))
        linux.sethostname(spec.hostname)
        join_cgroups(spec.cgroup_dirs)
        _protect_from_oom_killer()
        if spec.share_process_namespace:
            _fork_into_namespace(status_fd)  # pause becomes PID 1 of the pod's PID namespace
        else:
            report(status_fd, {"pid": os.getpid()})
        null = os.open("/dev/null", os.O_RDWR)
        _stdio(null, null, null)
        linux.close_range_cloexec(3)
        os.execv(spec.pause_binary, ["pause"])
    except BaseException as error:  # the child must never return into the supervisor's loop
        _fail(status_fd, "CreatePodSandboxError", f"pause for sandbox {spec.id}: {error}", 1)


def join_namespaces(namespaces: list[list[str]] | list[tuple[str, str]]) -> None:
    """Join namespaces given as data, [kind, path] pairs, in order.

    All are opened first: joining a mount namespace changes what later paths would mean.
    """
    descriptors = [(kind, os.open(path, os.O_RDONLY | os.O_CLOEXEC)) for kind, path in namespaces]
    for kind, descriptor in descriptors:
        linux.setns(descriptor, linux.NAMESPACE_FLAGS[kind])
        os.close(descriptor)


def _enter_namespaces(spec: ContainerSpec) -> None:
    """Join the sandbox's namespaces, then make the container's own."""
    join_namespaces(spec.namespaces)
    linux.unshare(linux.CLONE_NEWNS | (linux.CLONE_NEWPID if spec.new_pid_namespace else 0))


def _build_root(spec: ContainerSpec) -> None:
    for step in rootfs_steps(spec):
        apply_step(step)
    os.chdir(spec.rootfs)
    # pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves only the new.
    linux.pivot_root(".", ".")
    linux.umount2(".", linux.MNT_DETACH)
    os.chdir("/")
    for step in kernel_file_steps(spec):
        apply_step(step)


def become_user(uid: int, gid: int, last_cap: int, capabilities: list[int] | None = None,
                groups: list[int] | None = None, no_new_privileges: bool = True) -> None:
    """Switch to uid/gid with the given capabilities (Docker's default set when None), the
    supplementary groups, and no_new_privs when asked (containers and execs).

    The bounding set is dropped while still root (that needs CAP_SETPCAP); setuid to a non-root
    user then empties the permitted set by itself, as runc leaves it for such a user.
    """
    keep = linux.DEFAULT_CAPABILITIES if capabilities is None else frozenset(capabilities)
    for number in range(last_cap + 1):
        if number not in keep:
            linux.prctl(linux.PR_CAPBSET_DROP, number)
    os.setgroups(list(dict.fromkeys([gid, *(groups or [])])))
    os.setgid(gid)
    os.setuid(uid)
    linux.prctl(linux.PR_CAP_AMBIENT, linux.PR_CAP_AMBIENT_CLEAR_ALL)
    mask = linux.capability_mask({number for number in keep if number <= last_cap}) if uid == 0 else 0
    linux.capset(mask, mask, mask)
    if no_new_privileges:
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)


def confine(program: bytes | None, uid: int, gid: int, last_cap: int, capabilities: list[int] | None,
            groups: list[int], no_new_privileges: bool) -> None:
    """User, capabilities and seccomp, in runc's order: with no_new_privs the filter is loaded
    last (it then needs no privilege); without it, first, while CAP_SYS_ADMIN is still held."""
    if program is not None and not no_new_privileges:
        seccomp.install_filter(program)
    become_user(uid, gid, last_cap, capabilities, groups, no_new_privileges)
    if program is not None and no_new_privileges:
        seccomp.install_filter(program)


def _exec(spec: ContainerSpec) -> NoReturn:
    try:
        os.chdir(spec.working_dir)
    except FileNotFoundError:
        raise ContainerRuntimeError("CreateContainerError", f"failed to chdir to {spec.working_dir}: no such file or directory") from None
    env = container_environment(spec.env, os.uname().nodename, spec.uid)
    command = spec.argv[0]
    path_value = dict(env)["PATH"]
    executable = resolve_executable(command, path_value)
    if executable is None:
        raise ContainerRuntimeError("RunContainerError", f'exec: "{command}": executable file not found in $PATH')
    linux.close_range_cloexec(3)
    try:
        os.execve(executable, spec.argv, dict(env))
    except OSError as error:
        raise ContainerRuntimeError("RunContainerError", f'exec: "{command}": {error.strerror.lower()}') from None


def run_container_child(spec: ContainerSpec, stdout_fd: int, stderr_fd: int, last_cap: int,
                        status_fd: int, stdin_fd: int | None = None) -> NoReturn:
    """Become the container: namespaces, cgroup, root file system, user, capabilities, seccomp, exec."""
    try:
        reset_after_fork()
        program = seccomp.read_program(spec.seccomp_program) if spec.seccomp_program else None
        _enter_namespaces(spec)
        join_cgroups(spec.cgroup_dirs)
        # Its own cgroup namespace, entered after joining: its cgroups read as "/" from inside, and
        # /proc/self/cgroup shows nothing of the cluster's or any other cgroup path.
        linux.unshare(linux.CLONE_NEWCGROUP)
        _fork_into_namespace(status_fd)
        _build_root(spec)
        # Without stdin: the container's own /dev/null.
        _stdio(os.open("/dev/null", os.O_RDONLY) if stdin_fd is None else stdin_fd, stdout_fd, stderr_fd)
        if spec.tty:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        confine(program, spec.uid, spec.gid, last_cap, spec.capabilities, spec.supplemental_groups,
                spec.no_new_privileges)
        _exec(spec)
    except ContainerRuntimeError as error:
        _fail(status_fd, error.reason, error.message, 128)
    except BaseException as error:  # the child must never return into the supervisor's loop
        _fail(status_fd, "CreateContainerError", f"container {spec.name}: {error}", 128)
