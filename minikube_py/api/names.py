"""Object names and label syntax, with Kubernetes' exact rules and messages.

Validation quotes these messages verbatim (apimachinery `pkg/util/validation/validation.go`), so
a user who knows Kubernetes recognises them. `generate_name` is the server side of
`metadata.generateName` (apiserver `pkg/storage/names/generate.go`).
"""

from __future__ import annotations

import random
import re

# The alphabet has no vowels (no accidental words) and no look-alike characters.
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
RANDOM_SUFFIX_LENGTH = 5
MAX_NAME_LENGTH = 63
MAX_GENERATED_PREFIX_LENGTH = MAX_NAME_LENGTH - RANDOM_SUFFIX_LENGTH

DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
LABEL_VALUE_MAX_LENGTH = 63
QUALIFIED_NAME_MAX_LENGTH = 63

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*"
_QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = rf"({_QUALIFIED_NAME})?"

DNS1123_LABEL_ERROR = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    f"validation is '{_DNS1123_LABEL}')"
)
DNS1123_SUBDOMAIN_ERROR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    f"validation is '{_DNS1123_SUBDOMAIN}')"
)
QUALIFIED_NAME_ERROR = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation "
    f"is '{_QUALIFIED_NAME}')"
)
LABEL_VALUE_ERROR = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    f"'12345', regex used for validation is '{_LABEL_VALUE}')"
)


def _full_match(pattern: str, text: str) -> bool:
    return re.fullmatch(pattern, text) is not None


def is_dns1123_label(text: str) -> bool:
    return len(text) <= DNS1123_LABEL_MAX_LENGTH and _full_match(_DNS1123_LABEL, text)


def is_dns1123_subdomain(text: str) -> bool:
    return len(text) <= DNS1123_SUBDOMAIN_MAX_LENGTH and _full_match(_DNS1123_SUBDOMAIN, text)


def dns1123_label_errors(text: str) -> list[str]:
    """Why `text` is not a DNS-1123 label (empty list when it is one)."""
    problems = []
    if len(text) > DNS1123_LABEL_MAX_LENGTH:
        problems.append(f"must be no more than {DNS1123_LABEL_MAX_LENGTH} characters")
    if not _full_match(_DNS1123_LABEL, text):
        problems.append(DNS1123_LABEL_ERROR)
    return problems


def dns1123_subdomain_errors(text: str) -> list[str]:
    """Why `text` is not a DNS-1123 subdomain (empty list when it is one)."""
    problems = []
    if len(text) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        problems.append(f"must be no more than {DNS1123_SUBDOMAIN_MAX_LENGTH} characters")
    if not _full_match(_DNS1123_SUBDOMAIN, text):
        problems.append(DNS1123_SUBDOMAIN_ERROR)
    return problems


def qualified_name_errors(text: str) -> list[str]:
    """Why `text` is not a valid label/annotation key (`[prefix/]name`)."""
    parts = text.split("/")
    if len(parts) == 1:
        prefix, name = "", parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return ["prefix part must be non-empty"]
    else:
        return [
            "a qualified name " + QUALIFIED_NAME_ERROR
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    problems: list[str] = []
    if prefix:
        problems.extend("prefix part " + problem for problem in dns1123_subdomain_errors(prefix))
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > QUALIFIED_NAME_MAX_LENGTH:
        problems.append(f"name part must be no more than {QUALIFIED_NAME_MAX_LENGTH} characters")
    if name and not _full_match(_QUALIFIED_NAME, name):
        problems.append("name part " + QUALIFIED_NAME_ERROR)
    return problems


def label_value_errors(text: str) -> list[str]:
    """Why `text` is not a valid label value (empty values are valid)."""
    problems = []
    if len(text) > LABEL_VALUE_MAX_LENGTH:
        problems.append(f"must be no more than {LABEL_VALUE_MAX_LENGTH} characters")
    if not _full_match(_LABEL_VALUE, text):
        problems.append(LABEL_VALUE_ERROR)
    return problems


def is_label_key(text: str) -> bool:
    return not qualified_name_errors(text)


def is_label_value(text: str) -> bool:
    return not label_value_errors(text)


def generate_name(prefix: str, rng: random.Random | None = None) -> str:
    """`prefix` (cut to 58 characters) plus 5 random characters, as the API server does."""
    chooser = rng or random
    suffix = "".join(chooser.choice(NAME_ALPHABET) for _ in range(RANDOM_SUFFIX_LENGTH))
    return prefix[:MAX_GENERATED_PREFIX_LENGTH] + suffix
