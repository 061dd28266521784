"""The runtime's state as data: every supervisor request, reply and event, and every record on disk.

The daemon's `LinuxRuntime` and the per-node supervisor are separate processes that outlive each
other's versions: a supervisor started by one release keeps running while the daemon is upgraded,
and records written by one release are read by the next. So everything that crosses that line is
declared here once, as dataclasses with a version:

- `PROTOCOL_VERSION` is the wire's version. Each request carries it; `Ping` answers with the
  supervisor's own. A runtime that finds a supervisor of another version does not talk to it any
  further: it starts its own supervisor, which takes over from the old one (see supervisor.py,
  "Taking over"). Version 1 is the unversioned JSON of the first release, whose `ping` and
  `shutdown` look exactly like version 2's, which is all a takeover needs.
- `RECORD_VERSION` is the version of `containers/<id>/state.json` and `sandboxes/<id>.json`. A
  file without a `version` is version 1 (the first release's shape); `load_container_record` and
  `load_sandbox_record` upgrade older files step by step through `RECORD_UPGRADES`, so renaming
  or adding a field never loses a running container across an upgrade.

A container's lifecycle is an explicit state machine (`ContainerStatus`, `CONTAINER_TRANSITIONS`):
created -> running -> exited, created -> exited (it never started), running -> unknown (the
process vanished and nobody could read its exit status). `ContainerRecord.transition` refuses any
other move with `IllegalTransition`, as runc's libcontainer refuses an illegal state change.

Only the standard library is used: the supervisor runs with `python -S`.
"""

from __future__ import annotations

import enum
import functools
import json
import os
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Callable, ClassVar

from minikube_py.runtime.container import ContainerSpec, SandboxSpec
from minikube_py.runtime.types import ContainerRuntimeError

PROTOCOL_VERSION = 3
RECORD_VERSION = 3
UNVERSIONED = 1  # what a request, reply or file without "version" is: the first release's shape


class ProtocolError(ContainerRuntimeError):
    """A message or record that does not have the declared shape."""

    def __init__(self, message: str):
        super().__init__("BadRequest", message)


class IllegalTransition(ContainerRuntimeError):
    """A container was asked to move between states its lifecycle does not connect."""

    def __init__(self, container_id: str, current: "ContainerStatus", wanted: "ContainerStatus"):
        super().__init__("InvalidContainerState",
                         f"container {container_id} cannot go from {current.value} to {wanted.value}")
        self.current = current
        self.wanted = wanted


# ---- encoding: dataclasses <-> JSON-able values ---------------------------------------------------


def encode(value: Any) -> Any:
    """Dataclasses as dicts, enums as their values, recursively."""
    if is_dataclass(value) and not isinstance(value, type):
        return {item.name: encode(getattr(value, item.name)) for item in fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [encode(item) for item in value]
    if isinstance(value, dict):
        return {key: encode(item) for key, item in value.items()}
    return value


def decode(cls: type, data: Any) -> Any:
    """An instance of dataclass `cls` from its dict; unknown keys are ignored, missing ones take defaults."""
    if not isinstance(data, dict):
        raise ProtocolError(f"{cls.__name__} must be an object, not {type(data).__name__}")
    values = {name: data[name] if convert is None else convert(data[name])
              for name, convert in _decoding_plan(cls) if name in data}
    try:
        return cls(**values)
    except TypeError as error:
        raise ProtocolError(f"{cls.__name__}: {error}") from None


@functools.cache
def _decoding_plan(cls: type) -> tuple[tuple[str, Callable[[Any], Any] | None], ...]:
    """Each init field of dataclass `cls` with how to convert its JSON value (None: as it is),
    worked out once per class: reading type hints on every reply cost more than the reply."""
    hints = typing.get_type_hints(cls)
    return tuple((item.name, _converter(hints[item.name], f"{cls.__name__}.{item.name}"))
                 for item in fields(cls) if item.init)


def _converter(kind: Any, where: str) -> Callable[[Any], Any] | None:
    origin, arguments = typing.get_origin(kind), typing.get_args(kind)
    optional = False
    if origin in (typing.Union, types.UnionType):
        optional = type(None) in arguments
        kind = next(argument for argument in arguments if argument is not type(None))
        origin, arguments = typing.get_origin(kind), typing.get_args(kind)
    convert: Callable[[Any], Any] | None = None
    if isinstance(kind, type) and is_dataclass(kind):
        convert = functools.partial(decode, kind)
    elif isinstance(kind, type) and issubclass(kind, enum.Enum):
        convert = functools.partial(_enum_member, kind, where)
    elif origin is list and arguments and isinstance(arguments[0], type) and is_dataclass(arguments[0]):
        convert = functools.partial(_dataclass_list, arguments[0], where)
    if convert is None or not optional:
        return convert
    present = convert
    return lambda value: None if value is None else present(value)


def _enum_member(kind: type[enum.Enum], where: str, value: Any) -> enum.Enum:
    try:
        return kind(value)
    except ValueError:
        raise ProtocolError(f"{where}: {value!r} is not one of {[member.value for member in kind]}") from None


def _dataclass_list(kind: type, where: str, value: Any) -> list:
    if not isinstance(value, list):
        raise ProtocolError(f"{where} must be a list")
    return [decode(kind, item) for item in value]


# ---- records --------------------------------------------------------------------------------------


class ContainerStatus(str, enum.Enum):
    CREATED = "created"  # the record exists, the process does not run yet
    RUNNING = "running"
    EXITED = "exited"  # with the exit code the kernel reported
    UNKNOWN = "unknown"  # the process is gone and its exit status could not be read (kubelet: ContainerStatusUnknown)


CONTAINER_TRANSITIONS: dict[ContainerStatus, frozenset[ContainerStatus]] = {
    ContainerStatus.CREATED: frozenset({ContainerStatus.RUNNING, ContainerStatus.EXITED}),
    ContainerStatus.RUNNING: frozenset({ContainerStatus.EXITED, ContainerStatus.UNKNOWN}),
    ContainerStatus.EXITED: frozenset(),
    ContainerStatus.UNKNOWN: frozenset(),
}

# What the agent is told for a container whose exit status is unknown: kubelet's numbers and words.
UNKNOWN_EXIT_CODE = 137
UNKNOWN_EXIT_REASON = "ContainerStatusUnknown"


class SandboxStatus(str, enum.Enum):
    RUNNING = "running"
    EXITED = "exited"


@dataclass
class ContainerRecord:
    """What the supervisor knows of one container attempt; `containers/<id>/state.json`."""

    id: str
    sandbox_id: str
    name: str
    attempt: int
    status: ContainerStatus = ContainerStatus.CREATED
    pid: int = 0
    start_time: int = 0  # field 22 of /proc/PID/stat: tells the process from a later one with its pid
    started_at: float = 0.0
    finished_at: float = 0.0
    exit_code: int | None = None
    signal: int | None = None
    oom_killed: bool = False
    reason: str = ""
    message: str = ""
    log_path: str = ""
    cgroup: str = ""
    spec: ContainerSpec | None = None  # None only in records planted by hand or lost in a crash
    monitor_pid: int = 0  # the container's monitor (monitor.py): holds its pipes, records its exit status
    monitor_start_time: int = 0
    version: int = RECORD_VERSION

    @property
    def directory(self) -> str:
        return self.spec.directory if self.spec is not None else ""

    @property
    def finished(self) -> bool:
        return self.status in (ContainerStatus.EXITED, ContainerStatus.UNKNOWN)

    def transition(self, status: ContainerStatus, **changes: Any) -> None:
        """Move to `status` (applying `changes`), or raise IllegalTransition."""
        if status not in CONTAINER_TRANSITIONS[self.status]:
            raise IllegalTransition(self.id, self.status, status)
        self.status = status
        for name, value in changes.items():
            setattr(self, name, value)


@dataclass
class SandboxRecord:
    """What the supervisor knows of one pod's pause process; `sandboxes/<id>.json`."""

    id: str
    pod_name: str = ""
    namespace: str = ""
    ip: str = ""
    cgroup: str = ""
    host_veth: str = ""
    status: SandboxStatus = SandboxStatus.RUNNING
    pid: int = 0
    start_time: int = 0
    share_process_namespace: bool = False
    started_at: float = 0.0
    finished_at: float = 0.0
    version: int = RECORD_VERSION


def _upgrade_container_v1(data: dict) -> dict:
    """Version 1 (no version field) had "running"/"exited" only and wrote an unknown exit as exited."""
    if data.get("status") == "exited" and data.get("reason") == UNKNOWN_EXIT_REASON:
        data["status"] = ContainerStatus.UNKNOWN.value
    return data


def _upgrade_container_v2(data: dict) -> dict:
    """Version 3 added the container's monitor; a version 2 container has none (its supervisor held its pipes)."""
    return dict(data, monitor_pid=0, monitor_start_time=0)


def _unchanged(data: dict) -> dict:
    return data


# version N -> the function that turns a version N dict into a version N + 1 dict
RECORD_UPGRADES: dict[str, dict[int, Any]] = {
    "container": {1: _upgrade_container_v1, 2: _upgrade_container_v2},
    "sandbox": {1: _unchanged, 2: _unchanged},
}


def upgrade(kind: str, data: dict) -> dict:
    version = data.get("version", UNVERSIONED)
    if not isinstance(version, int) or version > RECORD_VERSION:
        raise ProtocolError(f"{kind} record {data.get('id')!r} has version {version!r}; this release reads "
                            f"versions up to {RECORD_VERSION}: run the release that wrote it, or a newer one")
    while version < RECORD_VERSION:
        data = RECORD_UPGRADES[kind][version](dict(data))
        version += 1
    data["version"] = RECORD_VERSION
    return data


def container_record_from(data: dict) -> ContainerRecord:
    return decode(ContainerRecord, upgrade("container", data))


def sandbox_record_from(data: dict) -> SandboxRecord:
    return decode(SandboxRecord, upgrade("sandbox", data))


# A removed container's directory, moved aside by the supervisor for its caller to delete.
REMOVED_CONTAINER_PREFIX = ".removed-"


def write_record(path: str, record: ContainerRecord | SandboxRecord) -> None:
    """Readers see the old or the new record, never half of one. 0600: env values live in the spec."""
    partial = f"{path}.tmp"
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(encode(record), file)
    os.replace(partial, path)


def _read_json(path: str) -> dict | None:
    try:
        with open(path) as file:
            data = json.load(file)
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def load_container_record(path: str) -> ContainerRecord | None:
    """The record at path, upgraded to this release's shape; None when there is none (or half of one)."""
    data = _read_json(path)
    return None if data is None else container_record_from(data)


def load_sandbox_record(path: str) -> SandboxRecord | None:
    data = _read_json(path)
    return None if data is None else sandbox_record_from(data)


# ---- requests -------------------------------------------------------------------------------------


@dataclass
class Request:
    op: ClassVar[str]


@dataclass
class Ping(Request):
    op: ClassVar[str] = "ping"


@dataclass
class CreateSandbox(Request):
    op: ClassVar[str] = "create_sandbox"
    spec: SandboxSpec
    pod_name: str
    namespace: str
    ip: str
    cgroup: str


@dataclass
class SetSandboxVeth(Request):
    """The runtime attached the pod's network after pause started: remember the host end."""

    op: ClassVar[str] = "set_sandbox_veth"
    id: str
    host_veth: str


@dataclass
class RemoveSandboxes(Request):
    """Forget these sandboxes' records (their processes are gone); several at once for `stop`."""

    op: ClassVar[str] = "remove_sandboxes"
    ids: list[str]


@dataclass
class StartContainer(Request):
    op: ClassVar[str] = "start_container"
    spec: ContainerSpec


class SignalTarget(str, enum.Enum):
    CONTAINER = "container"  # the container's PID 1
    SANDBOX = "sandbox"  # the pod's pause process


@dataclass
class Signal(Request):
    op: ClassVar[str] = "signal"
    kind: SignalTarget
    id: str
    signal: int


@dataclass
class WaitExit(Request):
    """Answered when the container has exited, or after `timeout` seconds with it still running."""

    op: ClassVar[str] = "wait_exit"
    id: str
    timeout: float


@dataclass
class RemoveContainer(Request):
    op: ClassVar[str] = "remove_container"
    id: str


@dataclass
class ListRecords(Request):
    """Sandboxes and containers; with sandbox_id only that pod's (answered from an index)."""

    op: ClassVar[str] = "list"
    sandbox_id: str | None = None
    running_sandboxes_only: bool = False


@dataclass
class Subscribe(Request):
    """This connection then receives `ContainerExited` and `SandboxExited` events."""

    op: ClassVar[str] = "subscribe"


@dataclass
class Shutdown(Request):
    op: ClassVar[str] = "shutdown"


REQUESTS: dict[str, type[Request]] = {cls.op: cls for cls in (
    Ping, CreateSandbox, SetSandboxVeth, RemoveSandboxes, StartContainer, Signal, WaitExit, RemoveContainer,
    ListRecords, Subscribe, Shutdown,
)}

# Requests whose wire shape has not changed since version 1: a takeover sends them to an old supervisor.
VERSION_INDEPENDENT = (Ping, Shutdown)


def encode_request(request: Request) -> bytes:
    return (json.dumps({"op": request.op, "version": PROTOCOL_VERSION, **encode(request)}) + "\n").encode()


def decode_request(line: bytes) -> Request:
    try:
        data = json.loads(line)
    except (ValueError, UnicodeDecodeError) as error:
        raise ProtocolError(f"a request must be one JSON object per line: {error}") from None
    if not isinstance(data, dict):
        raise ProtocolError("a request must be a JSON object")
    cls = REQUESTS.get(data.get("op"))  # type: ignore[arg-type]
    if cls is None:
        raise ProtocolError(f"unknown supervisor operation {data.get('op')!r}")
    version = data.get("version", UNVERSIONED)
    if version != PROTOCOL_VERSION and cls not in VERSION_INDEPENDENT:
        raise ContainerRuntimeError(
            "VersionMismatch", f"this supervisor speaks protocol version {PROTOCOL_VERSION}, the request "
            f"{cls.op!r} version {version!r}: start the node with the release that started this supervisor, "
            "or let the new release take it over (minikube-py start)")
    return decode(cls, data)


# ---- replies and events ---------------------------------------------------------------------------


@dataclass
class Reply:
    pass


@dataclass
class Pong(Reply):
    pid: int
    version: int = UNVERSIONED  # a version 1 supervisor does not say


@dataclass
class SandboxReply(Reply):
    sandbox: SandboxRecord


@dataclass
class ContainerReply(Reply):
    container: ContainerRecord | None  # None: no such container


@dataclass
class SignalReply(Reply):
    delivered: bool  # False: the process had already exited


@dataclass
class ListReply(Reply):
    sandboxes: list[SandboxRecord] = field(default_factory=list)
    containers: list[ContainerRecord] = field(default_factory=list)


@dataclass
class Done(Reply):
    pass


@dataclass
class ErrorReply(Reply):
    reason: str
    message: str
    container: ContainerRecord | None = None  # the record of a container that failed to start


REPLIES: dict[type[Request], type[Reply]] = {
    Ping: Pong, CreateSandbox: SandboxReply, SetSandboxVeth: SandboxReply, RemoveSandboxes: Done,
    StartContainer: ContainerReply, Signal: SignalReply, WaitExit: ContainerReply, RemoveContainer: Done,
    ListRecords: ListReply, Subscribe: Done, Shutdown: Pong,
}


def encode_reply(reply: Reply) -> bytes:
    body = {"ok": not isinstance(reply, ErrorReply), **encode(reply)}
    if isinstance(reply, Pong):
        body["version"] = PROTOCOL_VERSION
    return (json.dumps(body) + "\n").encode()


def decode_reply(request: Request, line: bytes) -> Reply:
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ProtocolError("a reply must be a JSON object")
    if not data.get("ok"):
        return decode(ErrorReply, data)
    return decode(REPLIES[type(request)], data)


@dataclass
class ContainerExited:
    """A container's process ended. The record comes without its spec (`spec` None): subscribers
    need its state, and a node stopping a thousand pods should not send each one's spec again."""

    event: ClassVar[str] = "exited"
    container: ContainerRecord


@dataclass
class SandboxExited:
    event: ClassVar[str] = "sandbox-exited"
    sandbox: SandboxRecord


Event = ContainerExited | SandboxExited
EVENTS: dict[str, type] = {ContainerExited.event: ContainerExited, SandboxExited.event: SandboxExited}


def encode_event(event: Event) -> bytes:
    return (json.dumps({"event": event.event, **encode(event)}) + "\n").encode()


def decode_event(line: bytes) -> Event:
    data = json.loads(line)
    cls = EVENTS.get(data.get("event")) if isinstance(data, dict) else None
    if cls is None:
        raise ProtocolError(f"unknown supervisor event {line[:100]!r}")
    return decode(cls, data)
