"""Building an image from a Dockerfile and a context directory, into the node's store.

`Builder.build` walks the instructions (dockerfile.py) from the FROM image (the store's, pulled
when missing, or `scratch`). Metadata instructions (ENV, ARG, LABEL, USER, EXPOSE, ENTRYPOINT,
CMD, STOPSIGNAL, WORKDIR) change the config; COPY, ADD, RUN and WORKDIR of a missing directory
each add one layer. A RUN step runs in a container of ours through `run_step` (the CLI starts it
as a pod, so it gets a pod's network, DNS, cgroup and security defaults): its root is the image
so far and its upper directory, packed (pack.py), is the step's layer. Mount points the runtime
made in that upper directory (/proc, /sys, /dev, /etc/hosts, /etc/hostname, /etc/resolv.conf,
when empty) are not image content and stay out, as they do with Docker.

Every layer step is cached by its input, as Docker's builder caches: a key chained from the
FROM image's id, each instruction's text, the build arguments a RUN sees, and the content,
modes and owners of the files a COPY or ADD takes from the context. A step whose key is cached
and whose layer is still in the store is not run again (`---> Using cache`); a changed step
and every step after it are. The cache lives in `images/build-cache/` and goes with `image prune`
of the layers it names.
"""

from __future__ import annotations

import copy
import fnmatch
import glob
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from minikube_py.runtime.images import dockerfile
from minikube_py.runtime.images.dockerfile import DockerfileError, Instruction
from minikube_py.runtime.images.store import DEFAULT_PATH, Image, ImageStore, ImageStoreError, OciImageConfig
from minikube_py.runtime.images.store import resolve_user as image_user
from minikube_py.runtime.images.unpack import LayerError, OverlayWhiteouts, resolve_inside, unpack
from minikube_py.runtime.types import ContainerRuntimeError

BUILD_NAMESPACE_DOMAIN = "build.minikube-py.local"  # the temporary names RUN steps' images carry
MOUNT_STUBS = ("proc", "sys", "dev", "etc/hosts", "etc/hostname", "etc/resolv.conf")


class BuildError(Exception):
    """The build failed; the message names the step."""


@dataclass
class StepRun:
    """A RUN step for `run_step`: the store image to run (a temporary name), the command and the
    build arguments it sees as environment variables (ENV values are in the image's config)."""

    image: str
    argv: list[str]
    env: list[tuple[str, str]]
    description: str  # "RUN ..." for messages


# run_step(step) -> a context manager giving the container's upper directory once the command
# exited 0 (raises BuildError otherwise); leaving it removes the container.
StepRunner = Callable[[StepRun], AbstractContextManager[str]]


@dataclass
class _State:
    key: str
    diff_ids: list[str]
    blobs: list[str]
    config: OciImageConfig
    history: list[dict]
    created: float
    base_document: dict = field(default_factory=dict)
    cmd_set: bool = False  # this Dockerfile set CMD (an ENTRYPOINT then keeps it)


@dataclass
class BuildResult:
    image_id: str
    names: list[str]
    steps: int
    cached: int  # layer steps taken from the cache


class Builder:
    def __init__(self, store: ImageStore, run_step: StepRunner | None, pull: Callable[[str], Image] | None = None,
                 output: Callable[[str], None] = print):
        self.store = store
        self.run_step = run_step
        self.pull = pull
        self.output = output
        self.cache_directory = os.path.join(store.directory, "build-cache")
        os.makedirs(self.cache_directory, 0o700, exist_ok=True)

    def build(self, dockerfile_text: str, context_directory: str, names: list[str],
              build_args: dict[str, str] | None = None) -> BuildResult:
        build_args = dict(build_args or {})
        if not os.path.isdir(context_directory):
            raise BuildError(f"the build context {context_directory} is not a directory")
        instructions = dockerfile.parse(dockerfile_text)
        context = os.path.realpath(context_directory)
        ignore = _dockerignore(context)
        meta_args: dict[str, str] = {}
        index = 0
        while instructions[index].keyword == "ARG":
            name, value = _arg(instructions[index], meta_args, build_args)
            meta_args[name] = value
            index += 1
        steps = instructions[index:]
        state = self._from(steps[0], meta_args)
        self.output(f"STEP 1/{len(steps)}: {steps[0].text}")
        declared: dict[str, str] = {}
        cached = 0
        scratch = tempfile.mkdtemp(prefix=".build-", dir=self.store.directory)
        try:
            for number, instruction in enumerate(steps[1:], 2):
                self.output(f"STEP {number}/{len(steps)}: {instruction.text}")
                variables = {**declared, **_env_map(state.config.env)}
                try:
                    hit = self._step(instruction, state, variables, declared, build_args, context, ignore, scratch)
                except (ImageStoreError, LayerError, ContainerRuntimeError, OSError) as error:
                    message = getattr(error, "message", None) or str(error)
                    raise BuildError(f"Dockerfile line {instruction.line}: {instruction.text}: {message}") from None
                except BuildError as error:  # from run_step, which names the step
                    raise BuildError(f"Dockerfile line {instruction.line}: {error}") from None
                except DockerfileError as error:  # already names the line
                    raise BuildError(str(error)) from None
                cached += hit
            unused = sorted(set(build_args) - set(declared) - set(meta_args))
            if unused:
                self.output(f"[Warning] one or more build args were not consumed: {unused}")
            image_id = self._commit(state, names)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        self.output(f"COMMIT {' '.join(names)}" if names else "COMMIT")
        self.output(f"--> {image_id.removeprefix('sha256:')[:12]}")
        for name in names:
            self.output(f"Successfully tagged {name}")
        return BuildResult(image_id, names, len(steps), cached)

    # ---- FROM -----------------------------------------------------------------------------------

    def _from(self, instruction: Instruction, meta_args: dict[str, str]) -> _State:
        name = dockerfile.substitute(instruction.arguments, meta_args).split()[0]
        if name == "scratch":
            return _State("scratch", [], [], OciImageConfig(env=[DEFAULT_PATH]), [], 0.0)
        try:
            image = self.store.resolve(name)
        except ContainerRuntimeError:
            if self.pull is None:
                raise BuildError(f"Dockerfile line {instruction.line}: FROM {name}: the image is not in the "
                                 "node's store; pull it first ('minikube-py image pull')") from None
            try:
                image = self.pull(name)
            except Exception as error:
                raise BuildError(f"Dockerfile line {instruction.line}: FROM {name}: "
                                 f"{getattr(error, 'message', None) or error}") from None
        try:
            document = json.loads(self.store.read_blob(image.id))
        except (OSError, ValueError):
            document = {}
        history = list(document.get("history") or [])
        return _State(image.id, list(image.diff_ids), [], copy.deepcopy(image.config), history, image.created,
                      document)

    # ---- one instruction ------------------------------------------------------------------------

    def _step(self, instruction: Instruction, state: _State, variables: dict[str, str], declared: dict[str, str],
              build_args: dict[str, str], context: str, ignore: list[str], scratch: str) -> int:
        keyword = instruction.keyword
        config = state.config
        text = dockerfile.substitute(instruction.arguments, variables) if keyword in dockerfile.SUBSTITUTED \
            else instruction.arguments
        if keyword == "ARG":
            name, value = _arg(instruction, variables, build_args)
            declared[name] = value
            # Its value is in the key of each RUN (which sees it), not here: as with Docker, another
            # --build-arg value rebuilds from the first RUN, not from the ARG.
            return self._metadata(state, instruction)
        if keyword == "ENV":
            for name, value in dockerfile.key_values(instruction, variables):
                config.env = [entry for entry in config.env if entry.partition("=")[0] != name] + [f"{name}={value}"]
                variables[name] = value
            return self._metadata(state, instruction)
        if keyword == "LABEL":
            config.labels.update(dockerfile.key_values(instruction, variables))
            return self._metadata(state, instruction)
        if keyword == "USER":
            config.user = text.strip()
            return self._metadata(state, instruction)
        if keyword == "STOPSIGNAL":
            config.stop_signal = text.strip()
            return self._metadata(state, instruction)
        if keyword == "EXPOSE":
            for port in text.split():
                number, _, protocol = port.partition("/")
                if not number.isdigit() or protocol not in ("", "tcp", "udp", "sctp"):
                    raise instruction.error(f"invalid port {port!r}: use PORT or PORT/tcp|udp|sctp")
                entry = f"{number}/{protocol or 'tcp'}"
                if entry not in config.exposed_ports:
                    config.exposed_ports = sorted([*config.exposed_ports, entry])
            return self._metadata(state, instruction)
        if keyword in ("CMD", "ENTRYPOINT"):
            argv, _ = dockerfile.command_form(instruction)
            if keyword == "CMD":
                config.cmd = argv
                state.cmd_set = True
            else:
                config.entrypoint = argv
                if not state.cmd_set:
                    config.cmd = []  # an ENTRYPOINT resets the CMD the base image gave, as Docker does
            return self._metadata(state, instruction)
        if keyword == "WORKDIR":
            path = os.path.normpath(os.path.join(config.working_dir or "/", text.strip()))
            config.working_dir = path
            if self._exists(state, path):
                return self._metadata(state, instruction)
            return self._layer_step(state, instruction, f"WORKDIR {path}", scratch,
                                    lambda root: os.makedirs(os.path.join(root, path.lstrip("/")), 0o755, exist_ok=True))
        if keyword in ("COPY", "ADD"):
            return self._copy(instruction, state, variables, context, ignore, scratch)
        if keyword == "RUN":
            return self._run(instruction, state, declared, scratch)
        raise instruction.error("not supported")  # parse() refuses these first

    def _metadata(self, state: _State, instruction: Instruction, text: str | None = None) -> int:
        state.key = _chain(state.key, text or instruction.text)
        # The time of the newest layer (not now): a build whose steps all hit the cache makes the same image.
        state.history.append({"created": _timestamp(state.created), "created_by": instruction.text, "empty_layer": True})
        return 0

    def _layer_step(self, state: _State, instruction: Instruction, key_text: str, scratch: str,
                    make: Callable[[str], None] | None = None, upper: Callable[[], AbstractContextManager[str]] | None = None,
                    stubs: tuple[str, ...] = ()) -> int:
        """A step that adds one layer, from the cache when its key is there and its layer is still stored."""
        key = _chain(state.key, key_text)
        entry = self._cached(key)
        if entry is not None:
            self.output(f"--> Using cache {key[:12]}")
            self._apply(state, key, entry, instruction)
            return 1
        if make is not None:
            root = tempfile.mkdtemp(dir=scratch)
            os.chmod(root, 0o755)
            make(root)
            entry = self._add_layer(root)
        else:
            assert upper is not None
            with upper() as directory:
                self._drop_mount_stubs(state, directory, stubs)
                entry = self._add_layer(directory)
        _write_entry(os.path.join(self.cache_directory, key + ".json"), entry)
        self._apply(state, key, entry, instruction)
        return 0

    def _drop_mount_stubs(self, state: _State, upper: str, stubs: tuple[str, ...]) -> None:
        """Remove the empty mount points the runtime made in a step's upper directory, and the
        directories copied up only to hold them (/etc when the image has one)."""
        for stub in stubs:
            path = os.path.join(upper, stub)
            if not _is_empty_stub(path):
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)
            else:
                os.unlink(path)
            parent = os.path.dirname(stub)
            while parent and _is_empty_stub(os.path.join(upper, parent)) and self._exists(state, "/" + parent):
                os.rmdir(os.path.join(upper, parent))
                parent = os.path.dirname(parent)

    def _add_layer(self, root: str) -> dict:
        diff_id, blob = self.store.add_directory_layer(root, "a build step's layer")
        return {"diffId": diff_id, "blob": blob, "created": time.time()}

    def _cached(self, key: str) -> dict | None:
        try:
            with open(os.path.join(self.cache_directory, key + ".json")) as file:
                entry = json.load(file)
        except (FileNotFoundError, ValueError):
            return None
        return entry if self.store.has_layer(entry.get("diffId", "")) else None

    def _apply(self, state: _State, key: str, entry: dict, instruction: Instruction) -> None:
        state.key = key
        state.diff_ids.append(entry["diffId"])
        if entry.get("blob") and self.store.has_blob(entry["blob"]):
            state.blobs.append(entry["blob"])
        state.created = max(state.created, float(entry.get("created") or 0))
        state.history.append({"created": _timestamp(float(entry.get("created") or time.time())),
                              "created_by": instruction.text})

    def _exists(self, state: _State, path: str) -> bool:
        for diff_id in reversed(state.diff_ids):
            layer = os.path.join(self.store.layer_directory(diff_id), "root")
            try:
                found = resolve_inside(layer, path, follow_last=True)
            except LayerError:
                return False
            if OverlayWhiteouts.is_whiteout(found):
                return False
            if os.path.lexists(found):
                return os.path.isdir(found)
        return False

    # ---- COPY and ADD ---------------------------------------------------------------------------

    def _copy(self, instruction: Instruction, state: _State, variables: dict[str, str], context: str,
              ignore: list[str], scratch: str) -> int:
        sources, destination = dockerfile.source_and_destination(instruction, variables)
        if any("://" in source for source in sources):
            raise instruction.error("sources from URLs are not supported; put the file in the build context")
        owner = (0, 0)
        if instruction.flags.get("chown"):
            owner = image_user([os.path.join(self.store.layer_directory(d), "root") for d in state.diff_ids],
                               dockerfile.substitute(instruction.flags["chown"], variables))
        mode = None
        if instruction.flags.get("chmod"):
            try:
                mode = int(instruction.flags["chmod"], 8)
            except ValueError:
                raise instruction.error(f"--chmod={instruction.flags['chmod']}: not an octal mode") from None
        matches: list[str] = []
        for source in sources:
            found = _context_paths(context, source, ignore, instruction)
            matches.extend(found)
        if not destination.startswith("/"):
            destination = os.path.join(state.config.working_dir or "/", destination)
        into_directory = destination.endswith("/") or len(matches) > 1 or len(sources) > 1 \
            or any(glob.has_magic(source) for source in sources)
        digest = hashlib.sha256()
        for path in matches:
            _hash_tree(digest, context, path)
        key_text = f"{instruction.text}\n{owner}\n{mode}\n{digest.hexdigest()}"

        def make(root: str) -> None:
            for path in matches:
                relative = os.path.relpath(path, context)
                if os.path.isdir(path):
                    target = destination
                elif into_directory:
                    target = os.path.join(destination, os.path.basename(path))
                else:
                    target = destination
                host_target = os.path.join(root, target.strip("/")) if target.strip("/") else root
                _make_parents(root, os.path.dirname(host_target))
                if instruction.keyword == "ADD" and os.path.isfile(path) and _is_archive(path):
                    # A local archive is unpacked into the destination directory (safely: unpack.py).
                    host_target = os.path.join(root, destination.strip("/")) if destination.strip("/") else root
                    os.makedirs(host_target, exist_ok=True)
                    staging = tempfile.mkdtemp(dir=scratch)
                    with open(path, "rb") as stream:
                        unpack(stream, staging, f"ADD {relative}")
                    _copy_tree(staging, host_target, owner, mode, ignore=None, context=None)
                    continue
                if os.path.isdir(path):
                    os.makedirs(host_target, exist_ok=True)
                    _copy_tree(path, host_target, owner, mode, ignore, context)
                else:
                    _copy_file(path, host_target, owner, mode)

        return self._layer_step(state, instruction, key_text, scratch, make=make)

    # ---- RUN ------------------------------------------------------------------------------------

    def _run(self, instruction: Instruction, state: _State, declared: dict[str, str], scratch: str) -> int:
        argv, _ = dockerfile.command_form(instruction)
        env = sorted(declared.items())
        key_text = f"{instruction.text}\n{json.dumps(env)}"
        if self.run_step is None:
            raise instruction.error("RUN steps need a running cluster to run in; start it with 'minikube-py start'")
        name = f"{BUILD_NAMESPACE_DOMAIN}/step:{_chain(state.key, key_text)[:20]}"
        run_step = self.run_step

        def upper():
            self._commit(state, [name])
            return _Untagging(self.store, name, run_step(StepRun(name, argv, env, instruction.text)))

        return self._layer_step(state, instruction, key_text, scratch, upper=upper, stubs=MOUNT_STUBS)

    # ---- the image ------------------------------------------------------------------------------

    def _commit(self, state: _State, names: list[str]) -> str:
        import platform as host

        from minikube_py.runtime.images import platforms

        document = {key: value for key, value in state.base_document.items()
                    if key in ("architecture", "os", "variant", "os.version")}
        document.setdefault("architecture", platforms.normalize("linux", host.machine()).architecture)
        document.setdefault("os", "linux")
        document.update({
            "created": _timestamp(state.created or time.time()),
            "config": state.config.to_oci(),
            "rootfs": {"type": "layers", "diff_ids": state.diff_ids},
            "history": state.history,
        })
        config_blob = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        return self.store.commit_image(config_blob, state.diff_ids, names, blobs=state.blobs)


class _Untagging(AbstractContextManager):
    """The RUN step's context, then its temporary image name removed."""

    def __init__(self, store: ImageStore, name: str, inner: AbstractContextManager[str]):
        self.store, self.name, self.inner = store, name, inner

    def __enter__(self) -> str:
        try:
            return self.inner.__enter__()
        except BaseException:
            self._untag()
            raise

    def __exit__(self, *exc) -> None:
        try:
            self.inner.__exit__(*exc)
        finally:
            self._untag()

    def _untag(self) -> None:
        try:
            self.store.untag(self.name)
        except (ImageStoreError, ContainerRuntimeError):
            pass


# ---- helpers --------------------------------------------------------------------------------


def _chain(previous: str, text: str) -> str:
    return hashlib.sha256(f"{previous}\n{text}".encode()).hexdigest()


def _timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _env_map(env: list[str]) -> dict[str, str]:
    return dict(entry.partition("=")[::2] for entry in env)


def _arg(instruction: Instruction, variables: dict[str, str], build_args: dict[str, str]) -> tuple[str, str]:
    name, separator, default = instruction.arguments.strip().partition("=")
    if not name or " " in name:
        raise instruction.error(f"{instruction.arguments!r}: use ARG NAME or ARG NAME=DEFAULT")
    default = dockerfile.substitute(default.strip().strip('"'), variables) if separator else ""
    return name, build_args.get(name, default)


def _dockerignore(context: str) -> list[str]:
    try:
        with open(os.path.join(context, ".dockerignore")) as file:
            return [line.strip().strip("/") for line in file if line.strip() and not line.startswith("#")]
    except FileNotFoundError:
        return []


def _ignored(relative: str, ignore: list[str]) -> bool:
    result = False
    for pattern in ignore:
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!")
        if fnmatch.fnmatch(relative, pattern) or relative.startswith(pattern.rstrip("*").rstrip("/") + "/") and \
                not glob.has_magic(pattern):
            result = not negated
    return result


def _context_paths(context: str, source: str, ignore: list[str], instruction: Instruction) -> list[str]:
    """The context paths a COPY source names; nothing outside the context, nothing .dockerignore'd."""
    pattern = os.path.normpath(os.path.join(context, source.lstrip("/")))
    if pattern != context and not pattern.startswith(context + os.sep):
        raise instruction.error(f"forbidden path outside the build context: {source}")
    found = sorted(glob.glob(pattern)) if glob.has_magic(source) else ([pattern] if os.path.lexists(pattern) else [])
    result = []
    for path in found:
        real = os.path.realpath(path)
        if real != context and not real.startswith(context + os.sep):
            raise instruction.error(f"forbidden path outside the build context: {source} ({path} leads out of it)")
        relative = os.path.relpath(path, context)
        if relative != "." and _ignored(relative, ignore):
            continue
        result.append(path)
    if not result:
        raise instruction.error(f"{source}: no such file or directory in the build context")
    return result


def _hash_tree(digest, context: str, path: str) -> None:
    paths = [path]
    if os.path.isdir(path) and not os.path.islink(path):
        for directory, names, files in os.walk(path):
            names.sort()
            paths.extend(os.path.join(directory, name) for name in sorted(names + files))
    for item in paths:
        info = os.lstat(item)
        digest.update(f"{os.path.relpath(item, context)}\0{info.st_mode}\0{info.st_size}\0".encode())
        if stat.S_ISREG(info.st_mode):
            with open(item, "rb") as file:
                digest.update(hashlib.file_digest(file, "sha256").digest())
        elif stat.S_ISLNK(info.st_mode):
            digest.update(os.readlink(item).encode())


def _make_parents(root: str, directory: str) -> None:
    relative = os.path.relpath(directory, root)
    current = root
    for part in [] if relative == "." else relative.split(os.sep):
        current = os.path.join(current, part)
        if not os.path.isdir(current):
            os.mkdir(current, 0o755)


def _copy_file(source: str, target: str, owner: tuple[int, int], mode: int | None) -> None:
    if os.path.isdir(target) and not os.path.islink(target):
        target = os.path.join(target, os.path.basename(source))
    if os.path.islink(source):
        os.symlink(os.readlink(source), target)
    else:
        shutil.copyfile(source, target)
        shutil.copystat(source, target)
        if mode is not None:
            os.chmod(target, mode)
    if os.geteuid() == 0:
        os.chown(target, *owner, follow_symlinks=False)


def _copy_tree(source: str, target: str, owner: tuple[int, int], mode: int | None, ignore: list[str] | None,
               context: str | None) -> None:
    for name in sorted(os.listdir(source)):
        path = os.path.join(source, name)
        if ignore and context and _ignored(os.path.relpath(path, context), ignore):
            continue
        destination = os.path.join(target, name)
        if os.path.isdir(path) and not os.path.islink(path):
            os.makedirs(destination, exist_ok=True)
            shutil.copystat(path, destination)
            if os.geteuid() == 0:
                os.chown(destination, *owner)
            _copy_tree(path, destination, owner, mode, ignore, context)
        else:
            _copy_file(path, destination, owner, mode)


def _is_archive(path: str) -> bool:
    """A local tar (plain, gzip or zstd) that ADD unpacks, recognized by its content as Docker does."""
    with open(path, "rb") as file:
        head = file.read(512)
    if head.startswith(b"\x1f\x8b") or head.startswith(b"\x28\xb5\x2f\xfd"):
        return True
    return len(head) == 512 and head[257:262] == b"ustar"


def _is_empty_stub(path: str) -> bool:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(info.st_mode):
        return not os.listdir(path)
    return stat.S_ISREG(info.st_mode) and info.st_size == 0


def _write_entry(path: str, entry: dict) -> None:
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as file:
        os.fchmod(file.fileno(), 0o600)
        json.dump(entry, file)
    os.replace(temporary, path)
