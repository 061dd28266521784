"""The `minikube-py` command: argument parsing, the connection to the daemon, and error output.

The CLI is a thin client of the daemon's API (the unix socket `$MINIKUBE_PY_HOME/api.sock`), with
kubectl's verbs, flags and messages so kubectl habits carry over. This module builds the
argparse tree from the command modules beside it (each has `register(subcommands)`), gives
every command a `Context` (home, namespace, transport), and turns failures into kubectl's error
lines on stderr with exit status 1: `Error from server (NotFound): pods "x" not found`,
`The Deployment "web" is invalid: ...`, `error: ...`.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import time
from dataclasses import dataclass, field

from minikube_py import api
from minikube_py.api.errors import ApiError, Invalid

DEFAULT_HOME = "/var/lib/minikube-py"
DEFAULT_NAMESPACE = "default"
# kubectl's boolean flags take a value only as `--wait=false`: a bare `--wait` means true and the
# next word stays an argument (`delete --wait pod web`).
BARE_TRUE_FLAGS = ("--wait",)
# Exit status of a command whose stdout reader went away (`get pods -o name | head -1`), as if
# killed by SIGPIPE like kubectl.
EXIT_STDOUT_CLOSED = 128 + 13


class CommandError(Exception):
    """A user-facing failure printed as `error: <message>` (exit status 1)."""


@dataclass
class Context:
    """What every command needs: where the cluster lives, the namespace asked for, the API."""

    home: str
    namespace: str | None = None
    all_namespaces: bool = False
    _transport: object = field(default=None, repr=False)

    @property
    def socket_path(self) -> str:
        return os.path.join(self.home, "api.sock")

    @property
    def transport(self):
        """The API over the daemon's unix socket (dicts in, dicts out; the Registry's methods)."""
        if self._transport is None:
            from minikube_py.client.transport import HttpTransport

            if not os.path.exists(self.socket_path):
                raise CommandError(
                    f"no minikube-py API at {self.socket_path}: start the cluster with "
                    f"'minikube-py start' or point --home (or MINIKUBE_PY_HOME) at its home")
            self._transport = HttpTransport(self.socket_path)
        return self._transport

    @property
    def default_namespace(self) -> str:
        return self.namespace or DEFAULT_NAMESPACE

    def namespace_for(self, info: api.ResourceInfo) -> str | None:
        """The namespace a request about `info` goes to: None for cluster-scoped kinds or -A."""
        if not info.namespaced or self.all_namespaces:
            return None
        return self.default_namespace

    @staticmethod
    def now() -> float:
        return time.time()


def resolve_resource(type_name: str) -> api.ResourceInfo:
    try:
        return api.resource_for(type_name)
    except KeyError:
        raise CommandError(f'the server doesn\'t have a resource type "{type_name}"') from None


def qualified_kind(info: api.ResourceInfo) -> str:
    """The name printer's kind: `pod`, `deployment.apps` (cli-runtime `pkg/printers/name.go`)."""
    return f"{info.kind.lower()}.{info.group}" if info.group else info.kind.lower()


def split_type_and_name(text: str, default_type: str | None = None) -> tuple[api.ResourceInfo, str]:
    """`deployment/web` -> (deployments, "web"); a bare `web` needs `default_type`."""
    type_name, slash, name = text.partition("/")
    if not slash:
        if default_type is None:
            raise CommandError(f"expected TYPE/NAME such as deployment/web, got {text!r}")
        type_name, name = default_type, text
    if not name:
        raise CommandError(f"resource name may not be empty in {text!r}")
    return resolve_resource(type_name), name


def watch_events(stream, deadline: float | None = None):
    """A watch's events until it ends or `deadline` (a `time.monotonic()` value) passes."""
    while True:
        timeout = None if deadline is None else deadline - time.monotonic()
        if timeout is not None and timeout <= 0:
            return
        event = stream.next(timeout)
        if event is None:
            return
        yield event


def format_api_error(error: ApiError) -> str:
    """kubectl's `StandardErrorMessage`: Invalid errors name the kind, object and each field."""
    if isinstance(error, Invalid):
        # `ApiError.from_status` hands a received Status's details to Invalid's `errors` slot.
        details = error.details or (error.errors if isinstance(error.errors, dict) else {})
        causes = [f"{cause.get('field')}: {cause.get('message')}" for cause in details.get("causes") or []]
        if not causes and isinstance(error.errors, list):
            causes = [f"{path}: {message}" for path, message in error.errors]
        kind, name = details.get("kind"), details.get("name")
        if kind and name:
            try:
                kind = api.resource_for(kind).kind  # details carry `deployment`; kubectl says `Deployment`
            except KeyError:
                pass
            text = f'The {kind} "{name}" is invalid'
            if len(causes) == 1:
                return f"{text}: {causes[0]}"
            if causes:
                return f"{text}: [{', '.join(causes)}]"
            return f"{text}: {error.message}"
    return f"Error from server ({error.reason}): {error.message}"


def print_error(text: str) -> None:
    sys.stdout.flush()
    print(text, file=sys.stderr, flush=True)


def _add_home(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument(
        "--home", default=default, metavar="DIR",
        help="the cluster's home directory (default: $MINIKUBE_PY_HOME or /var/lib/minikube-py)")


class Subcommands:
    """Adds subcommands with the flags every command shares (`--home`, and `-n`/`-A` on request)."""

    def __init__(self, action):
        self._action = action

    def add(self, name: str, help_text: str, namespaced: bool = False, all_namespaces: bool = False,
            aliases: tuple[str, ...] = ()) -> argparse.ArgumentParser:
        parser = self._action.add_parser(name, help=help_text, description=help_text, aliases=list(aliases))
        # SUPPRESS: `--home` after the verb only overrides when given, so the global one still counts.
        _add_home(parser, argparse.SUPPRESS)
        if namespaced:
            parser.add_argument("-n", "--namespace", default=argparse.SUPPRESS,
                                help="the namespace to use (default: default)")
        if all_namespaces:
            parser.add_argument("-A", "--all-namespaces", action="store_true", default=argparse.SUPPRESS,
                                help="list the requested objects across all namespaces")
        return parser

    def group(self, name: str, help_text: str) -> "Subcommands":
        parser = self.add(name, help_text)
        return Subcommands(parser.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND"))


def build_parser() -> argparse.ArgumentParser:
    from minikube_py.cli import apply, cluster, describe, get, mutate, pods, rollout

    parser = argparse.ArgumentParser(
        prog="minikube-py",
        description="Kubernetes-style pods, ReplicaSets and Deployments on one Linux host, with kubectl's verbs.")
    _add_home(parser, None)
    parser.add_argument("-n", "--namespace", default=None, help="the namespace to use (default: default)")
    subcommands = Subcommands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    for module in (cluster, apply, get, describe, mutate, rollout, pods):
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
