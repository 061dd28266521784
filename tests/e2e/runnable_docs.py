"""Reading the runnable code blocks of the docs, and comparing the output they show with real output.

A fenced block whose info string carries the word `runnable` (```` ```sh runnable ```` or
```` ```console runnable ````; renderers only look at the first word) holds commands that work
verbatim on a running cluster, in the order of the page:

- in a `sh` block every line is a command (a heredoc's body and a line ending in `\\` belong to
  the line that opens them); the first `console` block after it, before the next runnable block,
  shows the output: each `$ command` there that is one of the block's commands is compared;
- in a `console` block every `$ command` line is a command, followed by its output.

Shown output is compared by shape, since names, ages, pids and addresses differ from run to run:
every table header it shows (two or more upper-case columns, such as `NAME   READY   STATUS`)
must be a header of the real output, and every `Key:` line (`Pod:`, `    Restart Count:`) must
have a real line with the same key at the same indentation. `...` lines and free text are not
compared. `tests/e2e/test_docs_runnable_e2e.py` runs them; the parsing is unit-tested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

OPENING_FENCE = re.compile(r"^```(\S*)(.*)$")
HEREDOC = re.compile(r"<<-?\s*['\"]?(\w+)['\"]?")
HEADER_COLUMN = re.compile(r"^[A-Z][A-Z0-9-]*( [A-Z][A-Z0-9-]*)*$")
KEY_LINE = re.compile(r"^(\s*)([A-Za-z](?:[A-Za-z -]*[A-Za-z])?):(?:\s|$)")
TRAILING_COMMENT = re.compile(r"\s+#[^'\"]*$")


@dataclass
class Command:
    text: str  # what is run with bash, heredoc included
    line: int  # 1-based line of the page where it starts
    shown_output: list[str] | None = None  # the output the page shows for it, if any


@dataclass
class Block:
    language: str
    runnable: bool
    line: int  # 1-based line of the opening fence
    lines: list[str] = field(default_factory=list)


def fenced_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    current: Block | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if current is None:
            fence = OPENING_FENCE.match(line)
            if fence:
                current = Block(fence.group(1), "runnable" in fence.group(2).split(), number)
        elif line.startswith("```"):
            blocks.append(current)
            current = None
        else:
            current.lines.append(line)
    return blocks


def shell_commands(block: Block) -> list[Command]:
    """The commands of a `sh` block: heredoc bodies and continued lines join their command."""
    commands: list[Command] = []
    pending: list[str] = []
    start = 0
    heredoc_end: str | None = None
    for offset, line in enumerate(block.lines):
        if not pending:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            start = block.line + 1 + offset
        pending.append(line)
        if heredoc_end is not None:
            if line.strip() == heredoc_end:
                heredoc_end = None
            else:
                continue
        else:
            opened = HEREDOC.search(line)
            if opened:
                heredoc_end = opened.group(1)
                continue
            if line.endswith("\\"):
                continue
        commands.append(Command("\n".join(pending), start))
        pending = []
    if pending:
        commands.append(Command("\n".join(pending), start))
    return commands


def console_commands(block: Block) -> list[Command]:
    """The `$ command` lines of a `console` block, each with the output lines below it."""
    commands: list[Command] = []
    for offset, line in enumerate(block.lines):
        if line.startswith("$ "):
            commands.append(Command(line[2:], block.line + 1 + offset, []))
        elif commands:
            commands[-1].shown_output.append(line)
    return commands


def normalized(command: str) -> str:
    """A command without its trailing `# comment` and surrounding spaces, to pair sh and console lines."""
    return TRAILING_COMMENT.sub("", command).strip()


def runnable_commands(text: str) -> list[Command]:
    """Every command of the page's runnable blocks, in order, with the output the page shows for it."""
    commands: list[Command] = []
    waiting_for_output: list[Command] = []  # commands of the last runnable sh block
    for block in fenced_blocks(text):
        if block.runnable and block.language == "console":
            waiting_for_output = []
            commands.extend(console_commands(block))
        elif block.runnable:
            waiting_for_output = shell_commands(block)
            commands.extend(waiting_for_output)
        elif block.language == "console" and waiting_for_output:
            by_text = {normalized(command.text): command for command in waiting_for_output}
            for shown in console_commands(block):
                command = by_text.get(normalized(shown.text))
                if command is not None and command.shown_output is None:
                    command.shown_output = shown.shown_output
            waiting_for_output = []
    return commands


def _columns(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def table_header(line: str) -> list[str] | None:
    """The columns of a table header line (at least two upper-case columns), else None."""
    columns = _columns(line)
    if len(columns) >= 2 and all(HEADER_COLUMN.match(column) for column in columns):
        return columns
    return None


def shape_mismatches(shown: list[str], actual: str) -> list[str]:
    """What of the shown output's shape the actual output lacks: table headers and `Key:` lines."""
    actual_lines = actual.splitlines()
    actual_headers = [columns for line in actual_lines if (columns := table_header(line))]
    actual_keys = {(match.group(1), match.group(2)) for line in actual_lines if (match := KEY_LINE.match(line))}
    missing: list[str] = []
    for line in shown:
        if line.strip() in ("", "..."):
            continue
        header = table_header(line)
        if header is not None:
            if header not in actual_headers:
                missing.append(f"table header {'  '.join(header)}")
            continue
        key = KEY_LINE.match(line)
        if key is not None and (key.group(1), key.group(2)) not in actual_keys:
            missing.append(f"line {key.group(1)}{key.group(2)}:")
    return missing
