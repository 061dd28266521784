"""`fieldValidation=Ignore|Warn|Strict`: what a write does with unknown and duplicate fields.

As kube-apiserver: `Strict` refuses the request (400, naming every unknown and duplicate field),
`Warn` (the default when the parameter is absent) drops unknown fields and says so in `Warning`
headers, `Ignore` drops them silently. kubectl sends `Strict` unless told `--validate=false`
(Ignore) or `--validate=warn`. The body of a create or update is checked, and so is a merge or
strategic merge patch, whose fields are the object's (its `$`-directives aside); a JSON patch
names no fields, so its result is checked instead (`check` on the patched object).

Duplicate fields are found while the JSON body is parsed (`DuplicateRecorder`): the last value
wins, as with Go's decoder.
"""

from __future__ import annotations

from typing import Any

from minikube_py.api import errors, schema
from minikube_py.api.resources import ResourceInfo, ServedVersion

IGNORE, WARN, STRICT = "Ignore", "Warn", "Strict"
DIRECTIVES = (IGNORE, WARN, STRICT)


def directive(values: list[str] | None) -> str:
    """The query's fieldValidation directive (Warn when absent); BadRequest for anything else."""
    value = values[-1] if values else ""
    if value == "":
        return WARN
    if value not in DIRECTIVES:
        raise errors.BadRequest(f'fieldValidation "{value}" is not supported: use Ignore, Warn or Strict')
    return value


class _ObjectWithDuplicates(dict):
    """A JSON object that had the same key more than once (the keys are in `duplicates`)."""

    duplicates: list[str]


def object_pairs(pairs: list[tuple[str, Any]]) -> dict:
    """`json.loads` object hook keeping the last value of a repeated key and remembering it."""
    document = dict(pairs)
    if len(document) == len(pairs):
        return document
    marked = _ObjectWithDuplicates(document)
    seen: set[str] = set()
    marked.duplicates = [key for key, _ in pairs if key in seen or seen.add(key)]  # type: ignore[func-returns-value]
    return marked


def duplicate_fields(document: Any, path: str = "") -> list[str]:
    """Paths of the repeated keys `object_pairs` found anywhere in a parsed document."""
    found: list[str] = []
    if isinstance(document, dict):
        for key in getattr(document, "duplicates", ()):
            found.append(f"{path}.{key}" if path else key)
        for key, value in document.items():
            found += duplicate_fields(value, f"{path}.{key}" if path else key)
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += duplicate_fields(value, f"{path}[{index}]")
    return found


def check(info: ResourceInfo, body: Any, field_validation: str, warnings: list[str],
          served: ServedVersion | None = None) -> Any:
    """The body to write: unknown fields dropped (Ignore, Warn with a warning each), or
    BadRequest naming them and the duplicate fields (Strict). `served` is the version the body
    is in (the storage version without it)."""
    if not isinstance(body, dict):
        return body
    served = served or info.version(info.api_version)
    model = served.model
    unknown = schema.unknown_fields(model, body)
    duplicates = duplicate_fields(body)
    problems = [f'unknown field "{path}"' for path in unknown] + [f'duplicate field "{path}"' for path in duplicates]
    if not problems or field_validation == IGNORE:
        return schema.drop_fields(body, unknown, model) if unknown else body
    if field_validation == STRICT:
        version = served.api_version.rpartition("/")[2]
        raise errors.BadRequest(f'{info.kind} in version "{version}" cannot be handled as a {info.kind}: '
                                f'strict decoding error: {", ".join(problems)}')
    warnings.extend(problems)
    return schema.drop_fields(body, unknown, model) if unknown else body
