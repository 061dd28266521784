"""The `minikube-py` command: argument parsing, the connection to the daemon, and error output.

The CLI is a thin client of the daemon's API (the unix socket `$MINIKUBE_PY_HOME/api.sock`), with
kubectl's verbs, flags and messages so kubectl habits carry over. This module builds the
argparse tree from the command modules beside it (each has `register(subcommands)`), gives
every command a `Context` (home, namespace, transport; `cli/context.py`), and turns failures into kubectl's error
lines on stderr with exit status 1: `Error from server (NotFound): pods "x" not found`,
`The Deployment "web" is invalid: ...`, `error: ...`.
"""

from __future__ import annotations

import argparse
import os
import select
import sys

from minikube_py.api.errors import ApiError
from minikube_py.cli import (
    apply, autoscale, cluster, create, describe, get, images, mutate, nodes, pods, rollout, scheduling, services, top)
from minikube_py.cli.context import (
    DEFAULT_HOME, CommandError, Context, Subcommands, add_home_flag, format_api_error, print_error,
)

# kubectl's boolean flags take a value only as `--wait=false`: a bare `--wait` means true and the
# next word stays an argument (`delete --wait pod web`).
BARE_TRUE_FLAGS = ("--wait",)
# Exit status of a command whose stdout reader went away (`get pods -o name | head -1`), as if
# killed by SIGPIPE like kubectl.
EXIT_STDOUT_CLOSED = 128 + 13


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minikube-py",
        description="Kubernetes-style pods, ReplicaSets and Deployments on one Linux host, with kubectl's verbs.")
    add_home_flag(parser, None)
    parser.add_argument("-n", "--namespace", default=None, help="the namespace to use (default: default)")
    subcommands = Subcommands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    for module in (cluster, nodes, images, apply, get, describe, mutate, create, services, rollout, pods, top, autoscale,
                   scheduling):
        module.register(subcommands)
    return parser


def iter_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """Every (command path, parser, help text) in the tree; the docs and help tests walk it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, subparser in action.choices.items():
                if name not in helps:
                    continue  # an alias
                yield prefix + (name,), subparser, helps[name]
                yield from iter_commands(subparser, prefix + (name,))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after `--` is exec's command, flags included; argparse would read them as ours.
    trailing: list[str] = []
    if "--" in argv:
        argv, trailing = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    argv = [f"{word}=true" if word in BARE_TRUE_FLAGS else word for word in argv]
    args = parser.parse_args(argv)
    if trailing and not getattr(args, "takes_command", False):
        parser.error(f"unexpected arguments after --: {' '.join(trailing)}")
    args.trailing = trailing
    context = Context(
        home=args.home or os.environ.get("MINIKUBE_PY_HOME") or DEFAULT_HOME,
        namespace=args.namespace,
        all_namespaces=getattr(args, "all_namespaces", False),
    )
    try:
        code = args.run(args, context) or 0
        sys.stdout.flush()  # a reader that went away shows here, inside the handlers below
        return code
    except CommandError as error:
        print_error(f"error: {error}")
    except ApiError as error:
        print_error(format_api_error(error))
    except BrokenPipeError as error:
        if stdout_closed():
            silence_stdout()
            return EXIT_STDOUT_CLOSED
        print_error(_unreachable(context, error))
    except (ConnectionError, FileNotFoundError) as error:
        print_error(_unreachable(context, error))
    except OSError as error:
        print_error(f"error: {error}")
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # the last line of defence: a message, never a traceback
        print_error(f"error: {type(error).__name__}: {error} (an unexpected failure of minikube-py; please report it)")
    return 1


def _unreachable(context: Context, error: OSError) -> str:
    return (f"error: cannot reach the minikube-py API at {context.socket_path} ({error}): "
            f"is the cluster running? Check with 'minikube-py status'")


def stdout_closed() -> bool:
    """Whether nobody reads our stdout any more: a pipe whose reader exited polls as an error."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (OSError, ValueError):  # not a real file (tests capture stdout): it cannot be closed
        return False


def silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush does not report the broken pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
