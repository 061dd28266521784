"""Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`), read and written.

kubectl's generators (`create configmap|secret|job|deployment|service|token`, `autoscale`, `auth
can-i`) send their objects as protobuf and accept protobuf answers. The wire is Kubernetes' own:
the 4 bytes `k8s\\0`, then a `runtime.Unknown` message holding the apiVersion and kind and the
object's message, whose field numbers are those of Kubernetes' `generated.proto` files. We keep
those numbers as data (`protobuf_messages.json`, written by `tools/generate_protobuf_messages.py`)
and build message classes from it at first use with the `protobuf` package's descriptor pool, so
the encoding and decoding are the library's. `to_wire`/`from_wire` convert between those
messages and our wire dicts, with Kubernetes' special cases: Time, Quantity and IntOrString
messages are strings or numbers in JSON, `bytes` fields base64 strings, RawExtension and FieldsV1
raw JSON, a few messages (`Volume.volumeSource`, `Probe.handler`) inlined in their parent, and
a zero in a field that is not a Go pointer means unset, as Go's decoder reads it.

Every kind of the groups in the table has its message, so a kind another module registers in
`api.RESOURCES` (a DaemonSet, a PersistentVolumeClaim, a HorizontalPodAutoscaler) is served as
protobuf with no work here; a new API group is added by running the generator with it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from importlib import resources
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

from minikube_py.api import errors, times

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
META = "k8s.io.apimachinery.pkg.apis.meta.v1"
UNKNOWN = "k8s.io.apimachinery.pkg.runtime.Unknown"
TIME, MICRO_TIME, DURATION = f"{META}.Time", f"{META}.MicroTime", f"{META}.Duration"
FIELDS_V1 = f"{META}.FieldsV1"
QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
RAW_EXTENSION = "k8s.io.apimachinery.pkg.runtime.RawExtension"
# Go's zero time.Time, as metav1.Time writes it.
GO_ZERO_TIME_SECONDS = -62135596800

_TYPES = {
    "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    "bytes": descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
    "bool": descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
    "int32": descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
    "int64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    "uint32": descriptor_pb2.FieldDescriptorProto.TYPE_UINT32,
    "uint64": descriptor_pb2.FieldDescriptorProto.TYPE_UINT64,
    "double": descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
    "float": descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT,
    "fixed64": descriptor_pb2.FieldDescriptorProto.TYPE_FIXED64,
    "sfixed64": descriptor_pb2.FieldDescriptorProto.TYPE_SFIXED64,
}


class FieldSpec:
    """One field of a message in our table."""

    __slots__ = ("name", "number", "label", "type", "value_type", "inline", "pointer")

    def __init__(self, entry: list):
        self.name, self.number, self.label, self.type, self.value_type = entry[:5]
        flags = entry[5].split() if len(entry) > 5 else []
        self.inline, self.pointer = "inline" in flags, "pointer" in flags

    @property
    def is_message(self) -> bool:
        return self.type not in _TYPES


class MessageTable:
    """Message classes built from a table `{full name: {"fields": [...], "listWrapper": bool}}`
    (the format `tools/generate_protobuf_messages.py` writes)."""

    def __init__(self, table: dict[str, dict]):
        self.fields = {name: [FieldSpec(entry) for entry in message["fields"]] for name, message in table.items()}
        self.list_wrappers = {name for name, message in table.items() if message.get("listWrapper")}
        self.pool = descriptor_pool.DescriptorPool()
        for file_proto in self._files():
            self.pool.Add(file_proto)
        self._classes: dict[str, type[Message]] = {}

    def _files(self) -> list[descriptor_pb2.FileDescriptorProto]:
        """One file per package, dependencies first."""
        packages: dict[str, list[str]] = {}
        for name in self.fields:
            packages.setdefault(name.rpartition(".")[0], []).append(name)
        files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
        needs: dict[str, set[str]] = {}
        for package, names in packages.items():
            file_proto = descriptor_pb2.FileDescriptorProto(name=f"{package}.proto", package=package, syntax="proto2")
            needs[package] = set()
            for name in names:
                message = file_proto.message_type.add(name=name.rpartition(".")[2])
                for spec in self.fields[name]:
                    self._add_field(message, spec, name)
                    for type_name in (spec.type, spec.value_type):
                        if type_name and type_name not in _TYPES and type_name.rpartition(".")[0] != package:
                            needs[package].add(type_name.rpartition(".")[0])
            file_proto.dependency.extend(f"{dependency}.proto" for dependency in sorted(needs[package]))
            files[package] = file_proto
        ordered: list[descriptor_pb2.FileDescriptorProto] = []
        done: set[str] = set()

        def visit(package: str) -> None:
            if package in done:
                return
            done.add(package)
            for dependency in sorted(needs[package]):
                visit(dependency)
            ordered.append(files[package])

        for package in sorted(files):
            visit(package)
        return ordered

    @staticmethod
    def _add_field(message: descriptor_pb2.DescriptorProto, spec: FieldSpec, full_name: str) -> None:
        field = message.field.add(name=spec.name, number=spec.number)
        if spec.label == "map":
            entry = message.nested_type.add(name=f"{spec.name[:1].upper()}{spec.name[1:]}Entry")
            entry.options.map_entry = True
            for number, (name, type_name) in enumerate((("key", spec.type), ("value", spec.value_type)), start=1):
                MessageTable._set_type(entry.field.add(name=name, number=number,
                                                       label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL),
                                       type_name)
            field.label = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
            field.type = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
            field.type_name = f".{full_name}.{entry.name}"
            return
        field.label = (descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED if spec.label == "repeated"
                       else descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
        MessageTable._set_type(field, spec.type)

    @staticmethod
    def _set_type(field: descriptor_pb2.FieldDescriptorProto, type_name: str) -> None:
        if type_name in _TYPES:
            field.type = _TYPES[type_name]  # type: ignore[assignment]
        else:
            field.type = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
            field.type_name = f".{type_name}"

    def message_class(self, name: str) -> type[Message]:
        cls = self._classes.get(name)
        if cls is None:
            cls = self._classes[name] = message_factory.GetMessageClass(self.pool.FindMessageTypeByName(name))
        return cls


@functools.cache
def kubernetes_messages() -> MessageTable:
    text = resources.files("minikube_py.apiserver").joinpath("protobuf_messages.json").read_text()
    return MessageTable(json.loads(text))


# --- which message a kind is --------------------------------------------------------------


def message_name(api_version: str, kind: str) -> str | None:
    """The full message name of a kind (`k8s.io.api.apps.v1.Deployment`), or None if the
    table has none (meta kinds such as Status and DeleteOptions are apimachinery's)."""
    group, _, version = api_version.rpartition("/")
    table = kubernetes_messages().fields
    for name in (f"k8s.io.api.{group.split('.')[0] or 'core'}.{version}.{kind}", f"{META}.{kind}"):
        if name in table:
            return name
    return None


# --- envelope --------------------------------------------------------------------------------


def encode(obj: dict) -> bytes | None:
    """`k8s\\0` + runtime.Unknown holding the object; None when its kind has no message."""
    name = message_name(str(obj.get("apiVersion") or ""), str(obj.get("kind") or ""))
    if name is None:
        return None
    messages = kubernetes_messages()
    raw = to_message(messages, name, obj).SerializeToString()
    unknown = messages.message_class(UNKNOWN)()
    unknown.typeMeta.apiVersion = obj["apiVersion"]
    unknown.typeMeta.kind = obj["kind"]
    unknown.raw = raw
    return MAGIC + unknown.SerializeToString()


def decode(data: bytes, what: str = "the request body") -> dict:
    """The wire dict of a protobuf object; BadRequest naming what is wrong."""
    if not data.startswith(MAGIC):
        raise errors.BadRequest(f"{what} is not a Kubernetes protobuf object: it must start with the "
                                "4 bytes k8s\\0")
    messages = kubernetes_messages()
    unknown = messages.message_class(UNKNOWN)()
    try:
        unknown.ParseFromString(data[len(MAGIC):])
    except DecodeError as error:
        raise errors.BadRequest(f"{what} is not a valid protobuf runtime.Unknown (truncated or corrupt): "
                                f"{error}") from None
    api_version, kind = unknown.typeMeta.apiVersion, unknown.typeMeta.kind
    if unknown.contentEncoding or (unknown.contentType and unknown.contentType != MEDIA_TYPE):
        raise errors.UnsupportedMediaType(f"{what}: content encoding {unknown.contentEncoding!r} and type "
                                          f"{unknown.contentType!r} inside the protobuf envelope are not supported")
    name = message_name(api_version, kind)
    if name is None:
        raise errors.UnsupportedMediaType(f"{what}: {api_version}/{kind} cannot be sent as protobuf to "
                                          "minikube-py; send it as JSON")
    message = messages.message_class(name)()
    try:
        message.ParseFromString(unknown.raw)
    except DecodeError as error:
        raise errors.BadRequest(f"{what}: the {kind} message is truncated or corrupt: {error}") from None
    return {"apiVersion": api_version, "kind": kind, **from_message(messages, name, message)}


# --- dict -> message -------------------------------------------------------------------------


def to_message(messages: MessageTable, name: str, value: Any) -> Message:
    message = messages.message_class(name)()
    _fill(messages, name, message, value, name)
    return message


def _fill(messages: MessageTable, name: str, message: Message, value: Any, path: str) -> None:
    if name in (TIME, MICRO_TIME):
        if value:
            seconds = times.parse_time(value)
            message.seconds = int(seconds // 1)  # type: ignore[attr-defined]
            message.nanos = int(round((seconds % 1) * 1e9))  # type: ignore[attr-defined]
        return
    if name == QUANTITY:
        message.string = str(value)  # type: ignore[attr-defined]
        return
    if name == INT_OR_STRING:
        if isinstance(value, int) and not isinstance(value, bool):
            message.type, message.intVal = 0, value  # type: ignore[attr-defined]
        else:
            message.type, message.strVal = 1, str(value)  # type: ignore[attr-defined]
        return
    if name in (RAW_EXTENSION, FIELDS_V1):
        setattr(message, "raw" if name == RAW_EXTENSION else "Raw",
                json.dumps(value, separators=(",", ":")).encode())
        return
    if name == DURATION:
        message.duration = parse_duration(value)  # type: ignore[attr-defined]
        return
    if name in messages.list_wrappers:
        if not isinstance(value, list):
            raise errors.BadRequest(f"{path}: expected a list")
        message.items.extend(str(item) for item in value)  # type: ignore[attr-defined]
        return
    if not isinstance(value, dict):
        raise errors.BadRequest(f"{path}: expected an object for protobuf message {name.rpartition('.')[2]}")
    for spec in messages.fields[name]:
        if spec.inline:
            _fill(messages, spec.type, getattr(message, spec.name), value, path)
            continue
        if spec.name not in value or value[spec.name] is None:
            continue
        item = value[spec.name]
        field_path = f"{path}.{spec.name}"
        if spec.label == "map":
            target = getattr(message, spec.name)
            for key, element in (item or {}).items():
                if spec.value_type in _TYPES:
                    target[key] = _scalar(spec.value_type, element, f"{field_path}[{key}]")
                else:
                    _fill(messages, spec.value_type, target[key], element, f"{field_path}[{key}]")
        elif spec.label == "repeated":
            target = getattr(message, spec.name)
            for index, element in enumerate(item):
                if spec.is_message:
                    _fill(messages, spec.type, target.add(), element, f"{field_path}[{index}]")
                else:
                    target.append(_scalar(spec.type, element, f"{field_path}[{index}]"))
        elif spec.is_message:
            sub = getattr(message, spec.name)
            sub.SetInParent()
            _fill(messages, spec.type, sub, item, field_path)
        else:
            setattr(message, spec.name, _scalar(spec.type, item, field_path))


def _scalar(type_name: str, value: Any, path: str) -> Any:
    if type_name == "bytes":
        try:
            return base64.b64decode(value, validate=True) if isinstance(value, str) else bytes(value)
        except (binascii.Error, TypeError, ValueError):
            raise errors.BadRequest(f"{path}: not base64 data") from None
    if type_name == "string":
        return str(value)
    if type_name == "bool":
        return bool(value)
    if type_name in ("double", "float"):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.BadRequest(f"{path}: {value!r} is not an integer")
    return value


# --- message -> dict -------------------------------------------------------------------------


def from_message(messages: MessageTable, name: str, message: Message) -> Any:
    if name in (TIME, MICRO_TIME):
        seconds, nanos = message.seconds, message.nanos  # type: ignore[attr-defined]
        if nanos == 0 and seconds in (0, GO_ZERO_TIME_SECONDS):
            return None
        if name == MICRO_TIME:  # RFC 3339 with microseconds, as metav1.MicroTime is written
            return times.format_time(seconds).removesuffix("Z") + f".{nanos // 1000:06d}Z"
        return times.format_time(seconds)
    if name == QUANTITY:
        return message.string or None  # type: ignore[attr-defined]
    if name == INT_OR_STRING:
        return message.strVal if message.type == 1 else message.intVal  # type: ignore[attr-defined]
    if name in (RAW_EXTENSION, FIELDS_V1):
        raw = getattr(message, "raw" if name == RAW_EXTENSION else "Raw")
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise errors.BadRequest(f"a {name.rpartition('.')[2]} inside the protobuf body is not JSON") from None
    if name == DURATION:
        return format_duration(message.duration)  # type: ignore[attr-defined]
    if name in messages.list_wrappers:
        return list(message.items)  # type: ignore[attr-defined]
    result: dict[str, Any] = {}
    for spec in messages.fields[name]:
        value = getattr(message, spec.name)
        if spec.inline:
            result.update(from_message(messages, spec.type, value))
        elif spec.label == "map":
            if value:
                result[spec.name] = {key: _from_value(messages, spec.value_type, element)
                                     for key, element in value.items()}
        elif spec.label == "repeated":
            if value:
                result[spec.name] = [_from_value(messages, spec.type, element) for element in value]
        elif message.HasField(spec.name):
            converted = _from_value(messages, spec.type, value)
            # Go's decoder cannot tell an unset field that is not a pointer from its zero value,
            # and its JSON leaves it out: do the same, so defaults apply as for a JSON client.
            if spec.pointer or converted not in ("", 0, False, None, {}, []):
                result[spec.name] = converted
    return result


def _from_value(messages: MessageTable, type_name: str, value: Any) -> Any:
    if type_name in _TYPES:
        return base64.b64encode(value).decode() if type_name == "bytes" else value
    return from_message(messages, type_name, value)


# --- Go durations (metav1.Duration is "1h2m3s" in JSON) ---------------------------------------

_DURATION_UNITS = {"h": 3600 * 10**9, "m": 60 * 10**9, "s": 10**9, "ms": 10**6, "us": 10**3, "µs": 10**3, "ns": 1}


def parse_duration(text: Any) -> int:
    """Nanoseconds of a Go duration string (`1h30m`, `1.5s`, `300ms`)."""
    parts = re.findall(r"([0-9.]+)(h|ms|us|µs|ns|m|s)", str(text))
    if not parts or "".join(number + unit for number, unit in parts) != str(text).lstrip("-+"):
        raise errors.BadRequest(f"{text!r} is not a duration such as 1h30m or 90s")
    total = sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)
    return -int(total) if str(text).startswith("-") else int(total)


def format_duration(nanoseconds: int) -> str:
    """Go's time.Duration.String for whole seconds and above (`1h0m0s`, `90s` -> `1m30s`)."""
    sign, nanoseconds = ("-", -nanoseconds) if nanoseconds < 0 else ("", nanoseconds)
    if nanoseconds < 10**9:
        return f"{sign}{nanoseconds / 10**6:g}ms" if nanoseconds else "0s"
    hours, rest = divmod(nanoseconds, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    seconds = f"{rest / 10**9:.9f}".rstrip("0").rstrip(".")
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{sign}{minutes}m{seconds}s"
    return f"{sign}{seconds}s"
