"""Writes `minikube_py/apiserver/protobuf_messages.json`, our table of Kubernetes' protobuf messages.

Kubernetes' wire format for `application/vnd.kubernetes.protobuf` is fixed by the field numbers of
its `generated.proto` files (k8s.io/api and k8s.io/apimachinery). This reads those files from
checkouts given on the command line and keeps only the facts we need, per message: each field's
JSON name, number, label and type, and from the Go types beside them (their `protobuf:` struct
tags) which fields are embedded inline in the JSON form (`Volume.volumeSource`, `Probe.handler`)
and which scalars are pointers (a zero there is a value, elsewhere it means unset). The table is
our data; neither the .proto nor the Go files are part of minikube-py. Run it again to cover a new API group (add the group to GROUPS):

    python3 tools/generate_protobuf_messages.py KUBERNETES_API_CHECKOUT APIMACHINERY_CHECKOUT
"""

from __future__ import annotations

import json
import pathlib
import re
import sys

# k8s.io/api group versions whose messages we keep (kinds we serve or that helpers are adding).
GROUPS = ["core/v1", "apps/v1", "batch/v1", "discovery/v1", "coordination/v1", "autoscaling/v1", "autoscaling/v2",
          "policy/v1", "scheduling/v1", "storage/v1", "authentication/v1", "authorization/v1", "networking/v1",
          "rbac/v1", "events/v1"]
APIMACHINERY = ["pkg/apis/meta/v1", "pkg/runtime", "pkg/runtime/schema", "pkg/util/intstr", "pkg/api/resource"]
OUTPUT = pathlib.Path(__file__).resolve().parent.parent / "minikube_py" / "apiserver" / "protobuf_messages.json"
STRUCT = re.compile(r"^type (\w+) struct \{(.*?)^\}", re.S | re.M)
STRUCT_FIELD = re.compile(r"^\s*([\w.*\[\]]+(?:\s+[\w.*\[\]]+)?)\s+`[^`]*?json:\"([^\"]*)\"[^`]*?protobuf:\"([^\"]*)\"", re.M)
SCALARS = {"string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "double", "float", "fixed64", "sfixed64"}

FIELD = re.compile(r"^\s*(optional|repeated|required)?\s*([\w.]+)\s+(\w+)\s*=\s*(\d+)\s*[;\[]")
MAP_FIELD = re.compile(r"^\s*map<\s*([\w.]+)\s*,\s*([\w.]+)\s*>\s+(\w+)\s*=\s*(\d+)\s*;")


def parse(text: str) -> tuple[str, dict[str, dict]]:
    package = re.search(r"^package\s+([\w.]+);", text, re.M).group(1)  # type: ignore[union-attr]
    messages: dict[str, dict] = {}
    comment: list[str] = []
    current: dict | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if current is None:
            if stripped.startswith("//"):
                comment.append(stripped)
                continue
            match = re.match(r"message\s+(\w+)\s*\{", stripped)
            if match:
                current = {"fields": [], "nullable": any("+protobuf.nullable=true" in c for c in comment)}
                messages[match.group(1)] = current
            comment = []
            continue
        if stripped == "}":
            current = None
            continue
        match = MAP_FIELD.match(line)
        if match:
            key, value, name, number = match.groups()
            current["fields"].append([name, int(number), "map", key, value])
            continue
        match = FIELD.match(line)
        if match:
            label, type_name, name, number = match.groups()
            current["fields"].append([name, int(number), "repeated" if label == "repeated" else "optional", type_name])
    return package, messages


def go_fields(directory: pathlib.Path) -> dict[str, dict[str, tuple[str, bool]]]:
    """struct -> proto field name -> (JSON name, "" when inlined; whether a scalar is a pointer)."""
    structs: dict[str, dict[str, tuple[str, bool]]] = {}
    for path in sorted(directory.glob("*.go")):
        if path.name.startswith(("zz_", "generated")) or path.name.endswith("_test.go"):
            continue
        for struct_name, body in STRUCT.findall(path.read_text()):
            fields = structs.setdefault(struct_name, {})
            for declaration, json_tag, proto_tag in STRUCT_FIELD.findall(body):
                parts = declaration.split()
                embedded = len(parts) == 1
                named = re.search(r"name=(\w+)", proto_tag)
                go_type = parts[-1].lstrip("*").rpartition(".")[2]
                proto_name = named.group(1) if named else go_type[:1].lower() + go_type[1:]
                json_name = json_tag.split(",")[0]  # "" for an embedded struct inlined in the JSON form
                if json_name == "-":  # not in the JSON form (RawExtension.Raw...): keep the proto name
                    json_name = proto_name
                fields[proto_name] = (json_name, not embedded and parts[1].startswith("*"))
    return structs


def qualify(type_name: str, package: str) -> str:
    type_name = type_name.lstrip(".")
    return type_name if type_name in SCALARS or "." in type_name else f"{package}.{type_name}"


def main(api_checkout: str, apimachinery_checkout: str) -> None:
    directories = [pathlib.Path(api_checkout) / group for group in GROUPS]
    directories += [pathlib.Path(apimachinery_checkout) / path for path in APIMACHINERY]
    table: dict[str, dict] = {}
    for directory in directories:
        package, messages = parse((directory / "generated.proto").read_text())
        structs = go_fields(directory)
        for name, message in messages.items():
            full_name = f"{package}.{name}"
            fields = []
            for field in message["fields"]:
                json_name, pointer = structs.get(name, {}).get(field[0], (field[0], False))
                flags = ("inline" if json_name == "" else "") + (" pointer" if pointer else "")
                field[0] = json_name or field[0]
                field[3:] = [qualify(type_name, package) for type_name in field[3:]]
                if field[2] != "map":
                    field.append(None)
                fields.append(field + [flags.strip()] if flags else field)
            entry: dict = {"fields": fields}
            if message["nullable"] and [field[:3] for field in fields] == [["items", 1, "repeated"]]:
                entry["listWrapper"] = True  # a Go named slice: a JSON array on the wire
            table[full_name] = entry
    # Fields of types from groups we do not keep (alpha and beta features) are left out.
    for entry in table.values():
        entry["fields"] = [field for field in entry["fields"]
                           if all(type_name in SCALARS or type_name in table for type_name in field[3:5] if type_name)]
    OUTPUT.write_text(json.dumps(dict(sorted(table.items())), separators=(",", ":")) + "\n")
    print(f"{len(table)} messages -> {OUTPUT}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
