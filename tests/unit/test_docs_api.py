"""docs/api.md against the models: every accepted field is documented, every documented field exists.

The page lists fields by wire path under a heading per kind (`## Pod`, ...), with object metadata
once under `## Object metadata` and the pod spec once under `## Pod`. These tests walk the
pydantic models the API parses manifests with, following the page's conventions (see
`documented_form`), so adding a field to a model without documenting it, or removing one the page
still lists, fails here.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from minikube_py import api
from minikube_py.api.core import PodSpec
from minikube_py.api.meta import ObjectMeta
from minikube_py.api.selectors import SUPPORTED_FIELDS

API_PAGE = Path(__file__).resolve().parents[2] / "docs" / "api.md"
METADATA_SECTION = "Object metadata"
POD_SECTION = "Pod"


def nested_model(annotation) -> tuple[type[BaseModel] | None, bool]:
    """The model a field holds, directly or in a list, and whether it is a list; (None, False) for
    scalars and maps, which the page documents as one field."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return nested_model(typing.get_args(annotation)[0])
    if origin is list:
        model, _ = nested_model(typing.get_args(annotation)[0])
        return model, model is not None
    if origin in (typing.Union, types.UnionType):
        for argument in typing.get_args(annotation):
            model, is_list = nested_model(argument)
            if model is not None:
                return model, is_list
    return None, False


def model_paths(model: type[BaseModel], prefix: str, section: str):
    """`(section, wire path, is_leaf)` for every field under `model`. Object metadata belongs to
    its own section and a pod spec (a Pod's or a template's) to the Pod section, both with the
    paths they have on a Pod, as the page documents them once."""
    for name, field in model.model_fields.items():
        wire = field.alias or name
        path = f"{prefix}.{wire}" if prefix else wire
        if not prefix and wire in ("apiVersion", "kind"):
            yield METADATA_SECTION, wire, True
            continue
        child, is_list = nested_model(field.annotation)
        if child is ObjectMeta:
            yield from model_paths(ObjectMeta, "metadata", METADATA_SECTION)
        elif child is PodSpec:
            yield from model_paths(PodSpec, "spec", POD_SECTION)
        elif child is not None:
            container = path + ("[]" if is_list else "")
            yield section, container, False
            yield from model_paths(child, container, section)
        else:
            yield section, path, True


def documented_form(path: str) -> str:
    """The page's shorthand: init and ephemeral containers and last states share rows with their twins,
    `<probe>` stands for the three probes and `<hook>` for postStart and preStop."""
    path = path.replace("initContainers[]", "containers[]").replace("initContainerStatuses[]", "containerStatuses[]")
    path = path.replace("ephemeralContainers[]", "containers[]").replace("ephemeralContainerStatuses[]",
                                                                        "containerStatuses[]")
    path = path.replace(".lastState", ".state")
    path = re.sub(r"\blifecycle\.(postStart|preStop)\b", "lifecycle.<hook>", path)
    return re.sub(r"\b(liveness|readiness|startup)Probe\b", "<probe>", path)


def kind_paths(kind: str) -> set[tuple[str, str, bool]]:
    """Every field of the kind at every version it is served at (HorizontalPodAutoscaler: v2 and v1)."""
    info = next(info for info in api.RESOURCES.values() if info.kind == kind)
    return {(section, documented_form(path), leaf) for served in info.versions
            for section, path, leaf in model_paths(served.model, "", kind)}


def page_sections() -> dict[str, str]:
    sections: dict[str, str] = {}
    title = ""
    for line in API_PAGE.read_text().splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
        sections[title] = sections.get(title, "") + line + "\n"
    return sections


def table_rows(text: str) -> list[tuple[str, str]]:
    """`(first cell, rest of the row)` for table rows whose first cell is one backticked field."""
    rows = []
    for line in text.splitlines():
        match = re.match(r"\|\s*`([^`]+)`\s*\|(.*)", line)
        if match:
            rows.append((match.group(1), match.group(2)))
    return rows


def is_documented(path: str, text: str) -> bool:
    """Named in backticks, or listed in the row of the object holding it
    (`| `status.podIPs[]` | `ip` |` documents `status.podIPs[].ip`)."""
    if f"`{path}`" in text:
        return True
    parent, _, field = path.rpartition(".")
    return any(first == parent and f"`{field}`" in rest for first, rest in table_rows(text))


KINDS = [info.kind for info in api.RESOURCES.values()]


@pytest.mark.parametrize("kind", KINDS)
def test_every_field_the_model_accepts_is_documented_under_its_section(kind):
    sections = page_sections()
    missing = sorted(
        f"{section}: {path}"
        for section, path, leaf in kind_paths(kind)
        if leaf and not is_documented(path, sections.get(section, ""))
    )
    assert not missing, "fields accepted by the API but missing from docs/api.md:\n" + "\n".join(missing)


@pytest.mark.parametrize("section", [METADATA_SECTION, *KINDS])
def test_every_field_row_in_a_section_names_a_real_field(section):
    known = set()
    for info in api.RESOURCES.values():
        for where, path, _ in (entry for served in info.versions for entry in model_paths(served.model, "", info.kind)):
            if where == section:
                known |= {path, documented_form(path)}
    rows = table_rows(page_sections()[section])
    assert rows, f"docs/api.md has no field table under '## {section}'"
    invented = sorted(first for first, _ in rows if first not in known)
    assert not invented, f"docs/api.md documents fields the models do not have under '## {section}': {invented}"


def test_the_walk_reaches_deep_template_fields():
    # Guards the walker itself: a Deployment's template probe port lands in the Pod section.
    assert (POD_SECTION, "spec.containers[].<probe>.httpGet.port", True) in kind_paths("Deployment")
    assert (METADATA_SECTION, "metadata.ownerReferences[].uid", True) in kind_paths("ReplicaSet")


def test_kinds_table_lists_every_resource_with_its_names():
    kinds_section = page_sections()["Kinds"]
    for info in api.RESOURCES.values():
        row = next((line for line in kinds_section.splitlines() if line.startswith(f"| {info.kind} |")), None)
        assert row is not None, f"docs/api.md: no row for {info.kind} in the Kinds table"
        expected = [*(f"`{served.api_version}`" for served in info.versions), f"`{info.plural}`",
                    *(f"`{name}`" for name in info.short_names),
                    "yes" if info.namespaced else "no"]
        assert all(part in row for part in expected), f"docs/api.md Kinds row for {info.kind} should show {expected}"


def test_every_supported_field_selector_is_documented():
    field_selectors = page_sections()["Field selectors"]
    missing = sorted({field for fields in SUPPORTED_FIELDS.values() for field in fields}
                     - set(re.findall(r"`([^`]+)`", field_selectors)))
    assert not missing, f"field selectors missing from docs/api.md: {missing}"
