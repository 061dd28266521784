"""The user docs stay true: relative links lead to files, and the tutorial types only real commands.

Links are read from README.md and docs/*.md outside code blocks. Every `minikube-py ...` command
in a ```sh block of docs/tutorial.md (and every `$ minikube-py ...` line of its ```console
blocks) must be parsed by the CLI's own argparse tree, flags included, so renaming a command or
a flag breaks this test rather than the reader's copy-and-paste.
"""

import contextlib
import io
import pathlib
import re
import shlex

import pytest

from minikube_py.cli.main import build_parser

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TUTORIAL = ROOT / "docs" / "tutorial.md"

FENCE = re.compile(r"^```(\S*)")  # the language; words after it (`runnable`) do not matter here
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"`[^`]*`")
SHELL_SEPARATORS = {"|", "||", "&&", ";", "&"}


def fenced_blocks(text: str) -> list[tuple[str, list[str]]]:
    """(language, lines) of every fenced code block."""
    blocks, language, lines = [], None, []
    for line in text.splitlines():
        fence = FENCE.match(line)
        if fence and language is None:
            language, lines = fence.group(1), []
        elif line.startswith("```") and language is not None:
            blocks.append((language, lines))
            language = None
        elif language is not None:
            lines.append(line)
    return blocks


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, with inline code removed."""
    kept, inside = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif not inside:
            kept.append(INLINE_CODE.sub("", line))
    return kept


def relative_links(document: pathlib.Path) -> list[str]:
    targets = [match.group(1) for line in prose_lines(document.read_text()) for match in LINK.finditer(line)]
    return [target for target in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", target) and not target.startswith("#")]


def broken_links(document: pathlib.Path) -> list[str]:
    broken = []
    for target in relative_links(document):
        path = target.split("#", 1)[0]
        if not (document.parent / path).exists():
            broken.append(f"{document.relative_to(ROOT)}: {target}")
    return broken


def shell_commands(line: str) -> list[list[str]]:
    """The simple commands of one shell line: words split at pipes, `&&` and `;`, comments dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    commands, current = [], []
    for word in lexer:
        if word in SHELL_SEPARATORS:
            commands.append(current)
            current = []
        else:
            current.append(word)
    return [command for command in commands + [current] if command]


def tutorial_command_lines(text: str) -> list[str]:
    """Shell lines of the ```sh blocks, and the prompted lines of ```console blocks; heredoc bodies skipped."""
    lines = []
    for language, block in fenced_blocks(text):
        heredoc_end = None
        for line in block:
            if heredoc_end is not None:
                if line.strip() == heredoc_end:
                    heredoc_end = None
                continue
            if language == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            elif language != "sh":
                continue
            heredoc = re.search(r"<<-?\s*'?\"?(\w+)", line)
            if heredoc:
                heredoc_end = heredoc.group(1)
                line = line[:heredoc.start()]
            lines.append(line)
    return lines


def minikube_invocations(text: str) -> list[list[str]]:
    """The argument lists given to `minikube-py` in the tutorial's commands."""
    return [command[1:] for line in tutorial_command_lines(text) for command in shell_commands(line)
            if command[0] == "minikube-py"]


def parse_error(arguments: list[str]) -> str | None:
    """None when the CLI accepts `arguments` (split at `--` as main() does), else argparse's complaint."""
    if "--" in arguments:
        arguments = arguments[:arguments.index("--")]
    complaint = io.StringIO()
    try:
        with contextlib.redirect_stderr(complaint):
            parsed = build_parser().parse_args(arguments)
    except SystemExit:
        return complaint.getvalue().strip().splitlines()[-1]
    if parsed.__dict__.get("run") is None:
        return "not a command that does something (it only groups subcommands)"
    return None


def test_links_are_found_in_prose_and_not_in_code():
    text = "See [the docs](docs/a.md) and `[not](b.md)`.\n```sh\necho [x](c.md)\n```\n[web](https://example.com)\n"
    targets = [match.group(1) for line in prose_lines(text) for match in LINK.finditer(line)]
    assert targets == ["docs/a.md", "https://example.com"]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_points_to_an_existing_file(document):
    assert broken_links(document) == []


def test_shell_lines_split_into_commands_without_comments():
    assert shell_commands("cp -r manifests /tmp/t && cd /tmp/t   # a copy") == [
        ["cp", "-r", "manifests", "/tmp/t"], ["cd", "/tmp/t"]]
    assert shell_commands("minikube-py get pods | grep web") == [["minikube-py", "get", "pods"], ["grep", "web"]]


def test_heredoc_bodies_are_not_read_as_commands():
    text = "```sh\nminikube-py apply -f - <<'EOF'\nkind: Pod\nEOF\nminikube-py get pods\n```\n"
    assert minikube_invocations(text) == [["apply", "-f", "-"], ["get", "pods"]]


def test_parse_error_rejects_unknown_commands_and_flags():
    assert parse_error(["get", "pods", "-o", "wide"]) is None
    assert parse_error(["exec", "first", "--", "ps", "-ef"]) is None
    assert parse_error(["rollout"]) is not None
    assert parse_error(["frobnicate"]) is not None
    assert parse_error(["get", "pods", "--no-such-flag"]) is not None


def test_the_tutorial_uses_many_commands():
    used = {" ".join(arguments[:2]) if arguments[0] == "rollout" else arguments[0]
            for arguments in minikube_invocations(TUTORIAL.read_text())}
    assert {"start", "apply", "get", "describe", "logs", "exec", "inspect", "scale", "rollout status",
            "rollout history", "rollout undo", "delete", "stop"} <= used


def test_every_minikube_py_command_in_the_tutorial_is_accepted_by_the_cli():
    rejected = [f"minikube-py {shlex.join(arguments)}: {error}"
                for arguments in minikube_invocations(TUTORIAL.read_text())
                if (error := parse_error(arguments)) is not None]
    assert rejected == []
