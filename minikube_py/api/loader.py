"""Reading manifests: multi-document YAML or JSON text -> one `ManifestDocument` per object.

This is the client side of `apply -f`: it never raises. Each document either carries its wire
dict or one line saying what is wrong, naming the file and the document number
(`manifests/web.yaml: document 2: YAML syntax error at line 7: ...`), so a multi-document apply
can report every document and store nothing of a broken one. `kind: List` (and `PodList`,
`DeploymentList`, ...) documents are expanded into their items.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import yaml

from minikube_py.api.resources import resource_for_kind, unknown_kind_message


@dataclass
class ManifestDocument:
    source: str
    index: int  # 1-based position of the document in the file
    data: dict[str, Any] | None = None
    error: str | None = None
    item: int | None = None  # 1-based position inside a `kind: List` document, else None

    @property
    def location(self) -> str:
        """`web.yaml: document 2` or `web.yaml: document 2, item 3`: where an error points."""
        where = f"{self.source}: document {self.index}"
        return where if self.item is None else f"{where}, item {self.item}"


class _ManifestLoader(yaml.SafeLoader):
    """SafeLoader that keeps timestamps as text: `creationTimestamp: 2026-01-01T00:00:00Z` is a string on the wire."""


def _construct_set(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[str, Any]:
    # A YAML set is a mapping whose values are null; JSON, and so the API, has only the mapping.
    return {str(key): None for key in loader.construct_mapping(node)}


def _construct_pairs(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> list[Any]:
    # `!!omap [a: 1]` / `!!pairs`: what is written, a list of one-key mappings, as go-yaml reads it.
    return [loader.construct_mapping(item) if isinstance(item, yaml.MappingNode) else loader.construct_object(item)
            for item in node.value]


_ManifestLoader.add_constructor("tag:yaml.org,2002:set", _construct_set)
_ManifestLoader.add_constructor("tag:yaml.org,2002:omap", _construct_pairs)
_ManifestLoader.add_constructor("tag:yaml.org,2002:pairs", _construct_pairs)

_ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

# kubectl's YAML reader (go-yaml) also takes `1e20` and `5.` as numbers; PyYAML's YAML 1.1 rules
# want a dot and a signed exponent. Same numbers, same errors as with kubectl.
_ManifestLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)$"),
    list("-+.0123456789"),
)

# Go's JSON encoder writes a float without a fraction as an integer below 1e21: kubectl turns
# `replicas: 3.0` into `"replicas": 3` (accepted) and `1.5` stays a float (rejected by the API).
_LARGEST_PLAIN_FLOAT = 1e21

_DOCUMENT_SEPARATOR = re.compile(r"^---(?=\s|$)", re.MULTILINE)


def _wire_value(value: Any, depth: int = 0) -> Any:
    # JSON has string keys only; Kubernetes' YAML reader turns `80: x` into `"80": x` too.
    if depth > 100:
        raise ValueError("document is nested too deeply")
    if isinstance(value, dict):
        return {str(key) if not isinstance(key, str) else key: _wire_value(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [_wire_value(item, depth + 1) for item in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and value.is_integer() and abs(value) < _LARGEST_PLAIN_FLOAT:
        return int(value)
    return value


def _split_documents(text: str) -> list[tuple[int, str]]:
    """YAML documents with the 0-based line each starts on; `---` lines start a new document."""
    starts = [0] + [match.start() for match in _DOCUMENT_SEPARATOR.finditer(text) if match.start() > 0]
    chunks = []
    for position, start in enumerate(starts):
        end = starts[position + 1] if position + 1 < len(starts) else len(text)
        chunks.append((text.count("\n", 0, start), text[start:end]))
    return chunks


def _looks_like_json(text: str) -> bool:
    return text.lstrip().startswith(("{", "["))


def _is_valid_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def _parse_json(text: str, source: str) -> list[ManifestDocument]:
    try:
        value = _wire_value(json.loads(text))
    except json.JSONDecodeError as exc:
        return [ManifestDocument(source, 1, error=f"{source}: document 1: JSON syntax error at line {exc.lineno}: {exc.msg}")]
    except (RecursionError, ValueError):
        return [ManifestDocument(source, 1, error=f"{source}: document 1: JSON document is nested too deeply")]
    return [] if value is None else _documents_from_value(source, 1, value)


def _yaml_error(source: str, index: int, first_line: int, exc: Exception) -> ManifestDocument:
    where = f"{source}: document {index}"
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        line = f" at line {first_line + mark.line + 1}" if mark is not None else ""
        if exc.context and exc.context_mark is not None and exc.problem_mark is not None:
            # "while parsing a flow mapping" + where it began: points at the unclosed bracket.
            problem += f" ({exc.context} that starts at line {first_line + exc.context_mark.line + 1})"
        return ManifestDocument(source, index, error=f"{where}: YAML syntax error{line}: {problem}")
    if isinstance(exc, RecursionError):
        return ManifestDocument(source, index, error=f"{where}: YAML document is nested too deeply")
    return ManifestDocument(source, index, error=f"{where}: YAML error: {exc}")


def _describe_type(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return type(value).__name__


def _check_object(document: ManifestDocument, value: Any) -> ManifestDocument:
    where = document.location
    if not isinstance(value, dict):
        document.error = f"{where}: expected a mapping with apiVersion and kind, got {_describe_type(value)}"
        return document
    missing = [field for field in ("apiVersion", "kind") if not value.get(field)]
    if missing:
        document.error = f"{where}: {' and '.join(missing)} not set"
        return document
    api_version, kind = value["apiVersion"], value["kind"]
    if not isinstance(api_version, str) or not isinstance(kind, str):
        document.error = f"{where}: apiVersion and kind must be strings, got apiVersion {api_version!r}, kind {kind!r}"
        return document
    try:
        resource_for_kind(api_version, kind)
    except KeyError:
        document.error = f"{where}: {unknown_kind_message(api_version, kind)}"
        return document
    problem = _metadata_problem(value.get("metadata"))
    if problem:
        document.error = f"{where}: {problem}"
        return document
    document.data = value
    return document


def _metadata_problem(metadata: Any) -> str | None:
    """What makes `metadata` unusable to a client (it names objects by it), in the API's words.

    The server checks everything else; these are the fields the CLI reads before sending.
    """
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        return f"metadata: Invalid value: {_shown(metadata)}: must be an object"
    for key in ("name", "generateName", "namespace"):
        if metadata.get(key) is not None and not isinstance(metadata[key], str):
            return f"metadata.{key}: Invalid value: {_shown(metadata[key])}: must be a string"
    for key in ("labels", "annotations"):
        if metadata.get(key) is not None and not isinstance(metadata[key], dict):
            return f"metadata.{key}: Invalid value: {_shown(metadata[key])}: must be an object"
    return None


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_list(value: Any) -> bool:
    kind = value.get("kind") if isinstance(value, dict) else None
    return isinstance(kind, str) and kind.endswith("List") and "items" in value


def _documents_from_value(source: str, index: int, value: Any) -> list[ManifestDocument]:
    if not _is_list(value):
        return [_check_object(ManifestDocument(source, index), value)]
    items = value["items"]
    if items is None:
        return []
    if not isinstance(items, list):
        message = f"{source}: document {index}: {value['kind']} items must be a list, got {_describe_type(items)}"
        return [ManifestDocument(source, index, error=message)]
    return [
        _check_object(ManifestDocument(source, index, item=position), item)
        for position, item in enumerate(items, start=1)
    ]


def load_manifests(text: str, source: str = "<stdin>") -> list[ManifestDocument]:
    """Every object in `text` (YAML, multi-document, or JSON), each with its data or an error.

    Empty documents are skipped but still counted, so document numbers match the file.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str):
        return [ManifestDocument(source, 1, error=f"{source}: manifest must be text, got {type(text).__name__}")]
    if not text.strip():
        return []
    if source.endswith(".json") or _looks_like_json(text) and _is_valid_json(text):
        return _parse_json(text, source)
    documents: list[ManifestDocument] = []
    for index, (first_line, chunk) in enumerate(_split_documents(text), start=1):
        try:
            value = _wire_value(yaml.load(chunk, Loader=_ManifestLoader))  # noqa: S506 - a SafeLoader subclass
        except Exception as exc:  # any parser failure is the document's error, never the caller's
            documents.append(_yaml_error(source, index, first_line, exc))
            continue
        if value is None:
            continue
        documents.extend(_documents_from_value(source, index, value))
    return documents
