"""Reading a Dockerfile: the common subset `image build` runs, with Docker's parsing rules.

Lines join on a trailing backslash, `#` lines are comments, keywords are case-insensitive.
RUN, CMD and ENTRYPOINT take the exec form (a JSON array) or the shell form (run by
`/bin/sh -c`). ENV and LABEL take `key=value ...` (quotes allowed) or the old `key value`.
Variables (`$NAME`, `${NAME}`, `${NAME:-default}`, `${NAME:+alternative}`) are replaced as
Docker's shell lexer does in FROM, COPY, ADD, ENV, ARG, LABEL, WORKDIR, USER, EXPOSE and
STOPSIGNAL; RUN leaves them to the shell, which gets ARG and ENV values in its environment.

Supported: FROM (one stage), RUN, COPY and ADD of files in the build context (`--chown`; ADD
unpacks a local tar archive), ENV, ARG, WORKDIR, USER, EXPOSE, ENTRYPOINT, CMD, LABEL and
STOPSIGNAL. Anything else is an error naming the line, never skipped silently.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

SUPPORTED = ("FROM", "RUN", "COPY", "ADD", "ENV", "ARG", "WORKDIR", "USER", "EXPOSE", "ENTRYPOINT", "CMD",
             "LABEL", "STOPSIGNAL")
SUBSTITUTED = {"FROM", "COPY", "ADD", "ENV", "ARG", "LABEL", "WORKDIR", "USER", "EXPOSE", "STOPSIGNAL"}
VARIABLE = re.compile(r"\\(\$)|\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


class DockerfileError(Exception):
    """The Dockerfile cannot be built; the message names the line."""


@dataclass
class Instruction:
    keyword: str  # upper case
    arguments: str  # the text after the keyword, continuation lines joined
    line: int  # where it starts (1-based)
    flags: dict[str, str] = field(default_factory=dict)  # --chown=..., --from=...

    @property
    def text(self) -> str:
        flags = "".join(f"--{name}={value} " for name, value in sorted(self.flags.items()))
        return f"{self.keyword} {flags}{self.arguments}".rstrip()

    def error(self, message: str) -> DockerfileError:
        return DockerfileError(f"Dockerfile line {self.line}: {self.keyword}: {message}")


def parse(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile, checked for the supported subset."""
    instructions: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # comment lines inside a continued instruction are dropped, as Docker does
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        instructions.append(_instruction(pending.strip(), start))
        pending = ""
    if pending.strip():
        instructions.append(_instruction(pending.strip(), start))
    if not instructions:
        raise DockerfileError("the Dockerfile has no instructions; it needs at least FROM")
    froms = [instruction for instruction in instructions if instruction.keyword == "FROM"]
    if not froms:
        raise DockerfileError("the Dockerfile has no FROM; start it with FROM IMAGE (or FROM scratch)")
    if len(froms) > 1:
        raise froms[1].error("multi-stage builds (a second FROM) are not supported; build each stage on its own")
    before = instructions[:instructions.index(froms[0])]
    for instruction in before:
        if instruction.keyword != "ARG":
            raise instruction.error("only ARG may come before FROM")
    return instructions


def _instruction(text: str, line: int) -> Instruction:
    keyword, _, arguments = text.partition(" ")
    keyword = keyword.upper()
    if keyword not in SUPPORTED:
        raise DockerfileError(f"Dockerfile line {line}: unknown or unsupported instruction {keyword}; "
                              f"image build supports {', '.join(SUPPORTED)}")
    arguments = arguments.strip()
    flags: dict[str, str] = {}
    if keyword in ("COPY", "ADD", "FROM", "RUN"):
        while arguments.startswith("--"):
            flag, _, arguments = arguments.partition(" ")
            name, _, value = flag[2:].partition("=")
            flags[name] = value
            arguments = arguments.strip()
    instruction = Instruction(keyword, arguments, line, flags)
    allowed = {"COPY": {"chown", "chmod"}, "ADD": {"chown", "chmod"}, "FROM": {"platform"}}.get(keyword, set())
    for name in flags:
        if name not in allowed:
            hint = "; multi-stage builds are not supported" if name == "from" else ""
            raise instruction.error(f"the flag --{name} is not supported{hint}")
    if not arguments and keyword not in ("CMD", "ENTRYPOINT"):
        raise instruction.error("needs arguments")
    return instruction


def substitute(text: str, variables: dict[str, str], instruction: Instruction | None = None) -> str:
    """Docker's variable replacement; `\\$` stays a literal `$`."""
    def replace(match: re.Match) -> str:
        if match.group(1):
            return "$"
        name = match.group(2) or match.group(5)
        value = variables.get(name)
        operator, word = match.group(3), match.group(4) or ""
        if operator == ":-":
            return value if value else word
        if operator == ":+":
            return word if value else ""
        return value or ""

    return VARIABLE.sub(replace, text)


def command_form(instruction: Instruction) -> tuple[list[str], bool]:
    """(argv, was the exec form) of RUN, CMD or ENTRYPOINT."""
    text = instruction.arguments
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return value, True
        # Not valid JSON: Docker runs it in the shell form, as written.
    return (["/bin/sh", "-c", text] if text else []), False


def key_values(instruction: Instruction, variables: dict[str, str]) -> list[tuple[str, str]]:
    """ENV and LABEL pairs: `k=v k2="v 2"`, or the old `k v` form (one pair, the rest is the value)."""
    text = instruction.arguments
    try:
        words = shlex.split(text, posix=True)
    except ValueError as error:
        raise instruction.error(f"{error}") from None
    first = text.split(None, 1)[0]
    if "=" not in first:
        name, _, value = text.partition(" ")
        if not value.strip():
            raise instruction.error(f"{name} needs a value: {instruction.keyword} NAME=VALUE")
        return [(name, substitute(value.strip(), variables))]
    pairs = []
    raw_words = _raw_words(text)
    if len(raw_words) != len(words):
        raise instruction.error(f"cannot read {text!r} as NAME=VALUE pairs; quote values with spaces")
    for word, raw in zip(words, raw_words, strict=True):
        name, separator, value = word.partition("=")
        if not separator or not name:
            raise instruction.error(f"{word!r} is not NAME=VALUE")
        raw_value = raw.partition("=")[2]
        # Variables in single quotes stay as written; elsewhere they are replaced.
        pairs.append((name, value if raw_value.startswith("'") else substitute(value, variables)))
    return pairs


def _raw_words(text: str) -> list[str]:
    """The words as written (quotes kept), split where shlex splits: unquoted whitespace."""
    words, current, quote, escaped = [], "", "", False
    for character in text:
        if escaped:
            current, escaped = current + character, False
        elif character == "\\" and quote != "'":
            current, escaped = current + character, True
        elif quote:
            current += character
            quote = "" if character == quote else quote
        elif character in "'\"":
            current, quote = current + character, character
        elif character.isspace():
            if current:
                words.append(current)
            current = ""
        else:
            current += character
    return words + ([current] if current else [])


def source_and_destination(instruction: Instruction, variables: dict[str, str]) -> tuple[list[str], str]:
    """COPY and ADD: (sources, destination), JSON form or words."""
    text = substitute(instruction.arguments, variables)
    if text.startswith("["):
        try:
            words = json.loads(text)
        except ValueError:
            raise instruction.error("the JSON form is not valid JSON") from None
    else:
        words = text.split()
    if len(words) < 2:
        raise instruction.error("needs at least one source and a destination: COPY SRC... DEST")
    return [str(word) for word in words[:-1]], str(words[-1])
