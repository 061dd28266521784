"""Label and field selectors: kubectl's `-l app=web,tier in (fe,be),!canary` and `--field-selector`.

The same `Selector` answers for the two forms Kubernetes has: the text form users type
(`parse_selector`) and the API form inside ReplicaSets and Deployments (`matchLabels` +
`matchExpressions`, `Selector.from_label_selector`). As in apimachinery's `labels` package,
requirements are ANDed, `!=` and `notin` also match objects without the key, a missing selector
matches nothing and an empty one matches everything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from pydantic import ValidationError

from minikube_py.api.errors import BadRequest
from minikube_py.api.meta import LabelSelector
from minikube_py.api.names import label_value_errors, qualified_name_errors

# Operators, as written in the text form; `exists` has no symbol (`key`) and `!` is `!key`.
EQUALS, NOT_EQUALS, IN, NOT_IN, EXISTS, DOES_NOT_EXIST = "=", "!=", "in", "notin", "exists", "!"

_EXPRESSION_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        if self.operator == EXISTS:
            return present
        if self.operator == DOES_NOT_EXIST:
            return not present
        if self.operator in (EQUALS, IN):
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values

    def __str__(self) -> str:
        if self.operator == EXISTS:
            return self.key
        if self.operator == DOES_NOT_EXIST:
            return f"!{self.key}"
        if self.operator in (EQUALS, NOT_EQUALS):
            return f"{self.key}{self.operator}{self.values[0]}"
        return f"{self.key} {self.operator} ({','.join(sorted(self.values))})"


@dataclass(frozen=True)
class Selector:
    """A set of requirements, all of which must hold; `matches_nothing` for a missing selector."""

    requirements: tuple[Requirement, ...] = ()
    matches_nothing: bool = False

    @classmethod
    def everything(cls) -> "Selector":
        return cls()

    @classmethod
    def nothing(cls) -> "Selector":
        return cls(matches_nothing=True)

    def matches(self, labels: dict[str, str] | None) -> bool:
        if self.matches_nothing:
            return False
        present = labels or {}
        return all(requirement.matches(present) for requirement in self.requirements)

    def is_empty(self) -> bool:
        """True for the selector that matches everything (`{}`)."""
        return not self.matches_nothing and not self.requirements

    @classmethod
    def from_label_selector(cls, selector: LabelSelector | dict[str, Any] | None) -> "Selector":
        """The API form (model or wire dict) as a Selector: None matches nothing, `{}` everything.

        Raises BadRequest for an unknown operator or values that do not fit it.
        """
        if selector is None:
            return cls.nothing()
        if isinstance(selector, dict):
            try:
                selector = LabelSelector.model_validate(selector)
            except ValidationError as exc:
                raise BadRequest(f"invalid label selector {selector!r}: {exc.errors()[0]['msg']}") from None
        requirements = [Requirement(key, EQUALS, (value,)) for key, value in (selector.match_labels or {}).items()]
        for expression in selector.match_expressions or []:
            operator = _EXPRESSION_OPERATORS.get(expression.operator)
            if operator is None:
                raise BadRequest(f'"{expression.operator}" is not a valid label selector operator')
            values = tuple(expression.values or ())
            if operator in (IN, NOT_IN) and not values:
                raise BadRequest(f"for '{expression.operator}' operator, values set can't be empty")
            if operator in (EXISTS, DOES_NOT_EXIST) and values:
                raise BadRequest(f"values set must be empty for '{expression.operator}' operator")
            requirements.append(Requirement(expression.key, operator, values))
        return cls(_sorted(requirements))

    def __str__(self) -> str:
        return selector_to_string(self)


def _sorted(requirements: list[Requirement]) -> tuple[Requirement, ...]:
    # apimachinery keeps requirements sorted by key, which makes String() deterministic.
    return tuple(sorted(requirements, key=lambda requirement: requirement.key))


def selector_to_string(selector: Selector) -> str:
    """The text form, as `kubectl get -o wide` shows it: `app=web,tier in (be,fe)`."""
    return ",".join(str(requirement) for requirement in selector.requirements)


# --- the text form ---------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<operator>==|!=|=|!|\(|\)|,)|(?P<word>[^\s!=(),]+))")


class _Tokens:
    def __init__(self, text: str, what: str):
        self.text = text
        self.what = what
        self.items: list[str] = []
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                break
            if match.group("operator") or match.group("word"):
                self.items.append(match.group("operator") or match.group("word"))
            position = match.end()
        self.index = 0

    def peek(self) -> str | None:
        return self.items[self.index] if self.index < len(self.items) else None

    def take(self) -> str | None:
        token = self.peek()
        self.index += 1
        return token

    def take_word(self) -> str:
        """The next token, which the caller has seen `is_word`."""
        token = self.take()
        assert token is not None
        return token

    def fail(self, expected: str) -> BadRequest:
        found = self.peek()
        found_text = "end of string" if found is None else f"'{found}'"
        return BadRequest(f'unable to parse {self.what} "{self.text}": found {found_text}, expected: {expected}')

    def is_word(self, token: str | None) -> bool:
        return token is not None and token not in ("==", "!=", "=", "!", "(", ")", ",")


def parse_selector(text: str) -> Selector:
    """Parse kubectl's `-l` syntax; raises BadRequest quoting the selector and what was expected."""
    if not isinstance(text, str):
        raise BadRequest(f"label selector must be a string, got {text!r}")
    if not text.strip():
        return Selector.everything()
    tokens = _Tokens(text, "label selector")
    requirements: list[Requirement] = []
    while True:
        requirements.append(_parse_requirement(tokens))
        token = tokens.take()
        if token is None:
            break
        if token != ",":
            tokens.index -= 1
            raise tokens.fail("',' or end of string")
    for requirement in requirements:
        _check_requirement(text, requirement)
    return Selector(_sorted(requirements))


def _parse_requirement(tokens: _Tokens) -> Requirement:
    negated = tokens.peek() == "!"
    if negated:
        tokens.take()
    if not tokens.is_word(tokens.peek()):
        raise tokens.fail("identifier")
    key = tokens.take_word()
    if negated:
        return Requirement(key, DOES_NOT_EXIST)
    operator = tokens.peek()
    if operator is None or operator == ",":
        return Requirement(key, EXISTS)
    if operator in ("=", "==", "!="):
        tokens.take()
        value = tokens.take_word() if tokens.is_word(tokens.peek()) else ""
        return Requirement(key, NOT_EQUALS if operator == "!=" else EQUALS, (value,))
    if operator in (IN, NOT_IN):
        tokens.take()
        if tokens.take() != "(":
            tokens.index -= 1
            raise tokens.fail("'('")
        values: list[str] = []
        while True:
            token = tokens.peek()
            if tokens.is_word(token):
                values.append(tokens.take_word())
            token = tokens.take()
            if token == ")":
                break
            if token != ",":
                tokens.index -= 1
                raise tokens.fail("',' or ')'")
        if not values:
            raise BadRequest(f'unable to parse label selector "{tokens.text}": for \'{operator}\' operator, values set can\'t be empty')
        return Requirement(key, operator, tuple(values))
    raise tokens.fail("'=', '!=', 'in', 'notin', ',' or end of string")


def _check_requirement(text: str, requirement: Requirement) -> None:
    problems = qualified_name_errors(requirement.key)
    for value in requirement.values:
        problems += [f"value {value!r}: {problem}" for problem in label_value_errors(value)]
    if problems:
        raise BadRequest(f'invalid label selector "{text}": key {requirement.key!r}: {problems[0]}')


# --- field selectors -------------------------------------------------------------------

_COMMON_FIELDS = ("metadata.name", "metadata.namespace")
SUPPORTED_FIELDS: dict[str, tuple[str, ...]] = {
    "pods": _COMMON_FIELDS + ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "status.phase", "status.podIP"),
    "replicasets": _COMMON_FIELDS + ("status.replicas",),
    "deployments": _COMMON_FIELDS,
    "namespaces": _COMMON_FIELDS + ("status.phase",),
    "nodes": _COMMON_FIELDS + ("spec.unschedulable",),
    "events": _COMMON_FIELDS
    + (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
}


class FieldRequirement(NamedTuple):
    """One `field=value` / `field!=value` term; unpacks as `(field, operator, value)`."""

    field: str
    operator: str  # "=" or "!="
    value: str

    def matches(self, obj: dict[str, Any]) -> bool:
        equal = get_field(obj, self.field) == self.value
        return equal if self.operator == EQUALS else not equal


def parse_field_selector(text: str | None, resource: str | None = None) -> list[FieldRequirement]:
    """`status.phase!=Running,spec.nodeName=node1` -> [(field, "=" | "!=", value), ...].

    With `resource` (a plural), only that resource's fields are accepted; without it, any field
    some resource supports. Raises BadRequest `field label not supported: <field>`.
    """
    if text is None or not text.strip():
        return []
    # Every kind answers to metadata.name and metadata.namespace, as in Kubernetes.
    allowed = set(SUPPORTED_FIELDS.get(resource, _COMMON_FIELDS)) if resource else {f for fs in SUPPORTED_FIELDS.values() for f in fs}
    requirements = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*([^=!\s]+)\s*(==|=|!=)\s*(.*?)\s*", part)
        if match is None:
            raise BadRequest(f'invalid field selector "{text}": expected <field>=<value> or <field>!=<value>, got "{part}"')
        name, operator, value = match.groups()
        if name not in allowed:
            raise BadRequest(f"field label not supported: {name}")
        requirements.append(FieldRequirement(name, NOT_EQUALS if operator == "!=" else EQUALS, value))
    return requirements


def get_field(obj: dict[str, Any], dotted: str) -> str:
    """The value of a dotted field of a wire dict as field selectors compare it ("" when absent)."""
    value: Any = obj
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return value.get("component", "") if dotted == "source" else ""
    return str(value)


def matches_fields(obj: dict[str, Any], requirements: list[FieldRequirement]) -> bool:
    return all(requirement.matches(obj) for requirement in requirements)


__all__ = [
    "Requirement",
    "Selector",
    "FieldRequirement",
    "parse_selector",
    "selector_to_string",
    "parse_field_selector",
    "get_field",
    "matches_fields",
    "SUPPORTED_FIELDS",
]
