"""What every CLI command shares: the `Context`, the `Subcommands` builder and kubectl's error lines.

`main` builds the argparse tree from the command modules, and the command modules need these
pieces; keeping them here (not in `main`) means the command modules import nothing from `main`,
so the imports point one way: main -> commands -> context.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field

from minikube_py import api
from minikube_py.api.errors import ApiError, Invalid

DEFAULT_HOME = "/var/lib/minikube-py"
DEFAULT_NAMESPACE = "default"


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


def add_home_flag(parser: argparse.ArgumentParser, default) -> None:
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
        add_home_flag(parser, argparse.SUPPRESS)
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
