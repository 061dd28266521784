"""Every command and flag has help text and a place in docs/cli.md."""

import argparse
import pathlib
import re

import pytest

from minikube_py.cli.main import build_parser, iter_commands, main

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def commands():
    return list(iter_commands(build_parser()))


def doc_sections() -> dict[str, str]:
    """`### minikube-py rollout status` heading -> the text up to the next heading."""
    sections, current = {}, None
    for line in DOCS.read_text().splitlines():
        heading = re.match(r"^### minikube-py (.+)$", line)
        if heading:
            current = heading.group(1).strip()
            sections[current] = ""
        elif line.startswith("## "):
            current = None
        elif current is not None:
            sections[current] += line + "\n"
    return sections


def flags_of(parser: argparse.ArgumentParser) -> list[tuple[str, str | None]]:
    return [(action.option_strings[-1], action.help) for action in parser._actions
            if action.option_strings and action.dest not in ("help", "home", "namespace")]


def test_every_command_has_help_text():
    missing = [" ".join(path) for path, _, help_text in commands() if not help_text]
    assert not missing


def test_every_flag_and_argument_has_help_text():
    missing = [f"{' '.join(path)} {action.option_strings or action.dest}"
               for path, parser, _ in commands() for action in parser._actions
               if action.dest != "help" and not isinstance(action, argparse._SubParsersAction) and not action.help]
    assert not missing


def test_every_command_that_does_something_has_a_section_in_docs_cli_md():
    sections = doc_sections()
    runnable = [" ".join(path) for path, parser, _ in commands() if parser.get_default("run")]
    assert runnable
    assert [name for name in runnable if name not in sections] == []


def test_every_flag_is_named_in_its_commands_section_of_docs_cli_md():
    sections = doc_sections()
    missing = [f"{' '.join(path)} {flag}" for path, parser, _ in commands() if parser.get_default("run")
               for flag, _ in flags_of(parser) if flag not in sections.get(" ".join(path), "")]
    assert missing == []


@pytest.mark.parametrize("argv", [["--help"], ["get", "--help"], ["rollout", "undo", "--help"]])
def test_help_exits_zero_and_prints_usage(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    assert "usage: minikube-py" in capsys.readouterr().out


def test_version_prints_the_package_version(capsys):
    assert main(["version"]) == 0
    assert re.fullmatch(r"minikube-py version: v\d+\.\d+\.\d+\n", capsys.readouterr().out)
