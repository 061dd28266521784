"""`get` and `events`: list objects as kubectl's tables, or as YAML, JSON or names, and watch them.

`get` accepts kubectl's target forms (`pods`, `pods,rs`, `pod/a deploy/b`, `pods a b`, `all`),
the output formats (`-o wide|yaml|json|name`), selectors and `-w`/`--watch-only`, which print the
table and then one row per change. The cells come from `cli.tables`; this module only fetches,
groups and formats. `events` is `get events` sorted by when each event last happened.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from functools import cache

from minikube_py import api
from minikube_py.api.errors import NotFound
from minikube_py.cli import tables
from minikube_py.cli.context import (
    CommandError, Context, Subcommands, format_api_error, print_error, qualified_kind, resolve_resource)

ALL_RESOURCES = ("pods", "services", "daemonsets", "deployments", "replicasets", "statefulsets", "jobs", "cronjobs")
OUTPUT_FORMATS = ("wide", "yaml", "json", "name")


def register(subcommands: Subcommands) -> None:
    get = subcommands.add("get", "display one or many objects: pods, replicasets, deployments, namespaces, "
                                 "nodes, events, or all", namespaced=True, all_namespaces=True)
    get.add_argument("targets", nargs="+", metavar="TYPE[/NAME] [NAME...]",
                     help="what to show: a type (pods, po, rs, deploy, ns, no, ev, all; comma-separated for "
                          "several), optionally followed by names, or TYPE/NAME pairs")
    add_output_flags(get)
    get.add_argument("-l", "--selector", help="label selector, such as app=web,tier in (a,b)")
    get.add_argument("--field-selector", help="field selector, such as status.phase=Running")
    get.add_argument("-w", "--watch", action="store_true", help="after listing, print a row for every change")
    get.add_argument("--watch-only", action="store_true", help="print only changes, without listing first")
    get.add_argument("--show-labels", action="store_true", help="add a LABELS column")
    get.add_argument("--show-managed-fields", action="store_true",
                     help="with -o yaml|json, keep metadata.managedFields (left out by default, as kubectl does)")
    get.set_defaults(run=run_get)

    events = subcommands.add("events", "list events, oldest first", namespaced=True, all_namespaces=True)
    add_output_flags(events)
    events.set_defaults(run=run_events)


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", choices=OUTPUT_FORMATS,
                        help="output format: wide (more columns), yaml, json, or name (TYPE/NAME)")


@dataclass
class Target:
    """One resource type of a `get` request and the names asked for (none = list them all), at
    the version its name asks for (`hpa.v1.autoscaling`; "" for the storage version)."""

    info: api.ResourceInfo
    names: list[str] = field(default_factory=list)
    api_version: str = ""

    @property
    def resource(self) -> str:
        """The name the transport fetches it by, with its version."""
        return self.info.name_at(self.api_version or self.info.api_version)


def resolve_target(type_name: str) -> tuple[api.ResourceInfo, str]:
    """The resource and version a `get` type names."""
    info = resolve_resource(type_name)
    return info, api.resource_and_version_for(type_name)[1]


def parse_targets(words: list[str]) -> tuple[list[Target], bool]:
    """kubectl's argument forms; returns the targets and whether the request named objects."""
    if "/" in words[0]:
        targets: dict[str, Target] = {}
        for word in words:
            type_name, slash, name = word.partition("/")
            if not slash or not name:
                raise CommandError(f"there is no need to specify a resource type as a separate argument when "
                                   f"passing arguments in resource/name form (got {word!r})")
            info, api_version = resolve_target(type_name)
            targets.setdefault(info.plural, Target(info, api_version=api_version)).names.append(name)
        return list(targets.values()), True
    infos: list[tuple[api.ResourceInfo, str]] = []
    for type_name in words[0].split(","):
        if type_name == "all":
            infos += [(api.RESOURCES[plural], "") for plural in ALL_RESOURCES]
        elif type_name:
            infos.append(resolve_target(type_name))
    names = words[1:]
    if "" in names:
        raise CommandError("resource name may not be empty")  # kubectl's words
    if names and len(infos) > 1:
        raise CommandError("names can only be given with a single resource type")
    return [Target(info, list(names), api_version) for info, api_version in infos], bool(names)


def with_type(obj: dict, info: api.ResourceInfo, api_version: str = "") -> dict:
    """List items may come without kind/apiVersion; printed objects always carry them."""
    return {"apiVersion": api_version or info.api_version, "kind": info.kind, **obj}


def listing_order(obj: dict) -> tuple[str, str]:
    """The sort key of `get`'s output: namespace, then name (kubectl sorts a list the same way)."""
    return obj["metadata"].get("namespace") or "", obj["metadata"]["name"]


def fetch(context: Context, target: Target, label_selector: str | None,
          field_selector: str | None) -> tuple[list[dict], str | None, bool]:
    """The objects of one target, the list's resourceVersion, and whether a named one was missing."""
    namespace = context.namespace_for(target.info)
    if not target.names:
        listing = context.transport.list(target.resource, namespace=namespace,
                                         label_selector=label_selector, field_selector=field_selector)
        items = sorted(listing.get("items") or [], key=listing_order)
        return ([with_type(item, target.info, target.api_version) for item in items],
                listing["metadata"].get("resourceVersion"), False)
    found, missing = [], False
    for name in target.names:
        try:
            found.append(with_type(context.transport.get(target.resource, namespace, name), target.info,
                                   target.api_version))
        except NotFound as error:
            print_error(format_api_error(error))
            missing = True
    return found, None, missing


def display_name(obj: dict, info: api.ResourceInfo, with_kind: bool) -> str:
    name = obj["metadata"]["name"]
    return f"{qualified_kind(info)}/{name}" if with_kind else name


class TablePrinter:
    """Rows of one resource type, with kubectl's NAMESPACE and LABELS columns when asked for."""

    def __init__(self, info: api.ResourceInfo, wide: bool, all_namespaces: bool, show_labels: bool,
                 with_kind: bool, now: float):
        self.info, self.wide, self.now = info, wide, now
        self.with_namespace = all_namespaces and info.namespaced
        self.show_labels, self.with_kind = show_labels, with_kind
        self.widths: list[int] = []

    def header(self) -> list[str]:
        header = tables.header_for(self.info.plural, self.wide)
        return (["NAMESPACE"] if self.with_namespace else []) + header + (["LABELS"] if self.show_labels else [])

    def row(self, obj: dict) -> list[str]:
        if obj.get("apiVersion") != self.info.api_version:
            # Read at another version (`get hpa.v1.autoscaling`): the columns are the same.
            obj = self.info.version(obj["apiVersion"]).to_storage(obj)
        cells = tables.row_for(self.info.plural, obj, self.now, self.wide,
                               display_name(obj, self.info, self.with_kind))
        if self.with_namespace:
            cells.insert(0, obj["metadata"].get("namespace", ""))
        if self.show_labels:
            cells.append(tables.format_labels(obj["metadata"].get("labels")))
        return cells

    def render(self, objects: list[dict], with_header: bool = True) -> str:
        return tables.Table(self.header(), [self.row(obj) for obj in objects]).render(with_header, self.widths)


def no_resources_message(context: Context, infos: list[api.ResourceInfo]) -> str:
    if context.all_namespaces or not any(info.namespaced for info in infos):
        return "No resources found"
    return f"No resources found in {context.default_namespace} namespace."


def as_list(objects: list[dict]) -> dict:
    return {"apiVersion": "v1", "items": objects, "kind": "List", "metadata": {"resourceVersion": ""}}


@cache
def kubectl_yaml_dumper() -> type:
    """YAML as kubectl writes it: multi-line strings as `|` blocks, quoted scalars in double quotes.
    Made on first use, so commands that print no YAML do not import it."""
    import yaml

    class KubectlYamlDumper(yaml.SafeDumper):
        def choose_scalar_style(self):
            style = super().choose_scalar_style()
            return '"' if style == "'" else style

    def represent_text(dumper: yaml.SafeDumper, text: str):
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)

    KubectlYamlDumper.add_representer(str, represent_text)
    return KubectlYamlDumper


def without_managed_fields(obj: dict) -> dict:
    """The object (or each item of a List) without metadata.managedFields, as kubectl prints
    objects unless given --show-managed-fields."""
    if isinstance(obj.get("items"), list):
        return {**obj, "items": [without_managed_fields(item) for item in obj["items"]]}
    metadata = obj.get("metadata")
    if isinstance(metadata, dict) and "managedFields" in metadata:
        return {**obj, "metadata": {key: value for key, value in metadata.items() if key != "managedFields"}}
    return obj


def dump(obj: dict, output: str, show_managed_fields: bool = False) -> str:
    if not show_managed_fields:
        obj = without_managed_fields(obj)
    if output == "json":
        return json.dumps(obj, indent=4)
    import yaml

    return yaml.dump(obj, Dumper=kubectl_yaml_dumper(), default_flow_style=False, sort_keys=True).rstrip("\n")


def print_objects(context: Context, groups: list[tuple[api.ResourceInfo, list[dict]]], output: str | None,
                  single_object: bool, show_labels: bool = False, with_kind: bool = False,
                  show_managed_fields: bool = False) -> None:
    """Print fetched objects in the requested format; tables go per type, separated by a blank line."""
    if output in ("yaml", "json"):
        objects = [obj for _, group in groups for obj in group]
        print(dump(objects[0] if single_object and len(objects) == 1 else as_list(objects), output,
                   show_managed_fields))
        return
    if output == "name":
        for info, group in groups:
            for obj in group:
                print(display_name(obj, info, with_kind=True))
        return
    blocks = []
    for info, group in groups:
        if group:
            printer = TablePrinter(info, output == "wide", context.all_namespaces, show_labels, with_kind,
                                   context.now())
            blocks.append(printer.render(group))
    print("\n\n".join(blocks))


def run_get(args: argparse.Namespace, context: Context) -> int:
    targets, named = parse_targets(args.targets)
    if args.watch or args.watch_only:
        if len(targets) != 1 or len(targets[0].names) > 1:
            raise CommandError("you may only specify a single resource type and at most one name with -w")
        return watch(context, targets[0], args)
    groups, any_missing = [], False
    for target in targets:
        objects, _, missing = fetch(context, target, args.selector, args.field_selector)
        groups.append((target.info, objects))
        any_missing = any_missing or missing
    if not any(objects for _, objects in groups):
        if not named and args.output not in ("yaml", "json"):
            print_error(no_resources_message(context, [target.info for target in targets]))
            return 0
        if named:
            return 1
    # kubectl prefixes names with their kind when more than one kind was asked for (`get all`).
    with_kind = len(targets) > 1
    single_object = named and len(targets) == 1 and len(targets[0].names) == 1
    print_objects(context, groups, args.output, single_object, args.show_labels, with_kind,
                  args.show_managed_fields)
    return 1 if any_missing else 0


def watch(context: Context, target: Target, args: argparse.Namespace) -> int:
    """`get -w`: the current table (unless --watch-only), then one row per ADDED/MODIFIED/DELETED."""
    field_selector = args.field_selector
    if target.names:
        by_name = f"metadata.name={target.names[0]}"
        field_selector = f"{field_selector},{by_name}" if field_selector else by_name
        target = Target(target.info, api_version=target.api_version)
    printer = TablePrinter(target.info, args.output == "wide", context.all_namespaces, args.show_labels,
                           False, context.now())
    objects, resource_version, _ = fetch(context, target, args.selector, field_selector)
    header_printed = False
    if not args.watch_only:
        if objects:
            print_watched(printer, objects, args.output, with_header=True)
            header_printed = True
        elif args.output not in ("yaml", "json", "name"):
            print_error(no_resources_message(context, [target.info]))
    stream = context.transport.watch(target.resource, namespace=context.namespace_for(target.info),
                                     resource_version=resource_version, label_selector=args.selector,
                                     field_selector=field_selector)
    try:
        for event in stream:
            if event.get("type") not in ("ADDED", "MODIFIED", "DELETED"):
                continue
            printer.now = context.now()
            print_watched(printer, [with_type(event["object"], target.info, target.api_version)], args.output,
                          with_header=not header_printed)
            header_printed = True
    except KeyboardInterrupt:
        pass
    finally:
        close = getattr(stream, "close", None)
        if close:
            close()
    return 0


def print_watched(printer: TablePrinter, objects: list[dict], output: str | None, with_header: bool) -> None:
    if output in ("yaml", "json"):
        for obj in objects:
            print(dump(obj, output) if output == "json" else "---\n" + dump(obj, output))
    elif output == "name":
        for obj in objects:
            print(display_name(obj, printer.info, with_kind=True))
    else:
        print(printer.render(objects, with_header=with_header))
    sys.stdout.flush()


def run_events(args: argparse.Namespace, context: Context) -> int:
    info = api.RESOURCES["events"]
    listing = context.transport.list("events", namespace=context.namespace_for(info))
    items = sorted(listing.get("items") or [],
                   key=lambda event: api.times.parse_time(tables.event_last_seen_time(event) or
                                                          "1970-01-01T00:00:00Z"))
    if not items:
        print_error(no_resources_message(context, [info]))
        return 0
    print_objects(context, [(info, [with_type(item, info) for item in items])], args.output, False)
    return 0
