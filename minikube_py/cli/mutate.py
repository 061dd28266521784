"""Commands that change objects by name: delete, scale and set image.

Each prints kubectl's line for what it did: the name printer (`deployment.apps/web scaled`) or
delete's quoted form (`deployment.apps "web" deleted`, kubectl 1.32, without "from <ns>"). `delete`
waits, like kubectl, until each object is really gone (a pod leaves only after its containers
stopped; a foreground cascade only after its dependents), unless `--wait=false`.
"""

from __future__ import annotations

import argparse
import time

from minikube_py import api
from minikube_py.api.errors import ApiError, NotFound
from minikube_py.cli.apply import DRY_RUN_CHOICES, DRY_RUN_SUFFIX, manifest_files, read_documents
from minikube_py.cli.context import (
    CommandError, Context, Subcommands, format_api_error, print_error, qualified_kind, resolve_resource,
    split_type_and_name, watch_events)

FORCE_WARNING = ("Warning: Immediate deletion does not wait for confirmation that the running resource has been "
                 "terminated. The resource may continue to run on the cluster indefinitely.")


def parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parse_duration(text: str) -> float:
    """kubectl's `--timeout` values: `30s`, `2m`, `1h`, `500ms`, or plain seconds; 0 means forever."""
    units = (("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600))
    for suffix, factor in units:
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(text[: -len(suffix)]) * factor
    if text.replace(".", "", 1).isdigit():
        return float(text)
    raise argparse.ArgumentTypeError(f"expected a duration such as 30s, 2m or 1h, got {text!r}")


def register(subcommands: Subcommands) -> None:
    delete = subcommands.add("delete", "delete objects by type and name, by label selector, or from manifests",
                             namespaced=True)
    delete.add_argument("targets", nargs="*", metavar="TYPE[/NAME] [NAME...]",
                        help="a type followed by names, or TYPE/NAME pairs")
    delete.add_argument("-f", "--filename", action="append", metavar="FILE|DIR|-",
                        help="delete the objects these manifests describe; repeatable")
    delete.add_argument("-R", "--recursive", action="store_true", help="with -f DIR, also read subdirectories")
    delete.add_argument("-l", "--selector", help="delete every object of the type matching this label selector")
    delete.add_argument("--all", action="store_true", help="delete every object of the type in the namespace")
    delete.add_argument("--cascade", choices=["background", "foreground", "orphan"], default="background",
                        help="what happens to dependents: deleted in the background (default), deleted "
                             "before the owner goes (foreground), or left behind (orphan)")
    delete.add_argument("--grace-period", type=int, default=-1, metavar="N",
                        help="seconds a pod gets to stop; -1 uses the pod's terminationGracePeriodSeconds; "
                             "0 only with --force")
    delete.add_argument("--force", action="store_true",
                        help="remove the objects from the API at once, without waiting for their processes to stop")
    delete.add_argument("--now", action="store_true", help="shorthand for --grace-period=1")
    delete.add_argument("--wait", type=parse_bool, default=True, metavar="true|false",
                        help="wait until the objects are gone before returning (default true); "
                             "a bare --wait means true, --wait=false returns at once")
    delete.add_argument("--timeout", type=parse_duration, default=0.0, metavar="DURATION",
                        help="how long to wait for deletion, such as 30s; 0 waits forever (default)")
    delete.add_argument("--dry-run", nargs="?", const="client", default="none", choices=DRY_RUN_CHOICES,
                        help="client: only print what would be deleted; server: have the server check the "
                             "deletion and delete nothing")
    delete.set_defaults(run=run_delete)

    scale = subcommands.add("scale", "set the replica count of a deployment or replicaset", namespaced=True)
    scale.add_argument("targets", nargs="+", metavar="TYPE/NAME | TYPE NAME",
                       help="deployment/web, rs/web-abc, or a type followed by names")
    scale.add_argument("--replicas", type=int, required=True, metavar="N", help="the new number of replicas")
    scale.add_argument("--current-replicas", type=int, metavar="N",
                       help="only scale if the current replica count is N")
    scale.set_defaults(run=run_scale)

    set_group = subcommands.group("set", "change one field of existing objects")
    image = set_group.add("image", "set container images of a deployment or replicaset", namespaced=True)
    image.add_argument("target", metavar="TYPE/NAME", help="deployment/web or rs/web-abc")
    image.add_argument("images", nargs="+", metavar="CONTAINER=IMAGE",
                       help="container name and new image; * sets every container")
    image.set_defaults(run=run_set_image)


def targets_from_arguments(context: Context, words: list[str]) -> list[tuple[api.ResourceInfo, str]]:
    if not words:
        return []
    if "/" in words[0]:
        return [split_type_and_name(word) for word in words]
    info = resolve_resource(words[0])
    return [(info, name) for name in words[1:]]


def manifest_targets(args: argparse.Namespace, context: Context) -> tuple[list[tuple[api.ResourceInfo, str, str | None]], bool]:
    """(resource, name, namespace) triples of the objects in `-f` manifests, and whether every
    document could be read: a bad document is reported and skipped, the others still count."""
    found, readable = [], True
    for path in manifest_files(args.filename, args.recursive):
        try:
            documents = read_documents(path)
        except (OSError, UnicodeDecodeError) as error:
            print_error(f"error: {path}: {error}")
            readable = False
            continue
        for document in documents:
            metadata = (document.data or {}).get("metadata") or {}
            if document.error or not metadata.get("name"):
                print_error(f"error: {document.error or document.location + ': metadata.name: Required value'}")
                readable = False
                continue
            info = api.resource_for_kind(document.data["apiVersion"], document.data["kind"])
            namespace = metadata.get("namespace") or context.namespace_for(info)
            found.append((info, metadata["name"], namespace if info.namespaced else None))
    return found, readable


def deletion_targets(args: argparse.Namespace, context: Context) -> list[tuple[api.ResourceInfo, str, str | None]]:
    """(resource, name, namespace) triples from names, a selector or --all."""
    if not args.targets:
        raise CommandError("you must provide one or more resources by argument or filename")
    if args.selector or args.all:
        if len(args.targets) != 1 or "/" in args.targets[0]:
            raise CommandError("with -l or --all give only the resource type, such as 'delete pods -l app=web'")
        info = resolve_resource(args.targets[0])
        listing = context.transport.list(info.plural, namespace=context.namespace_for(info),
                                         label_selector=args.selector)
        return [(info, item["metadata"]["name"], item["metadata"].get("namespace")) for item in listing["items"]]
    targets = targets_from_arguments(context, args.targets)
    if not targets:
        raise CommandError(f'resource(s) were provided, but no name was specified for "{args.targets[0]}"')
    return [(info, name, context.namespace_for(info)) for info, name in targets]


def effective_grace_period(args: argparse.Namespace) -> int:
    """kubectl's rules: --now is 1; 0 without --force becomes 1; --force alone means 0."""
    grace = args.grace_period
    if args.now:
        if grace != -1:
            raise CommandError("--now and --grace-period cannot be specified together")
        grace = 1
    if grace == 0 and not args.force:
        grace = 1
    if args.force and grace < 0:
        grace = 0
    return grace


def run_delete(args: argparse.Namespace, context: Context) -> int:
    grace = effective_grace_period(args)
    if args.force and grace == 0:
        print_error(FORCE_WARNING)
    if args.filename:
        if args.targets:
            raise CommandError("give either -f or TYPE NAME, not both")
        targets, readable = manifest_targets(args, context)
    else:
        targets, readable = deletion_targets(args, context), True
    if not targets:
        if readable:
            print_error("No resources found")
        return 0 if readable else 1
    failed = not readable
    deleted = []
    suffix = DRY_RUN_SUFFIX[args.dry_run]
    for info, name, namespace in targets:
        if args.dry_run != "client":
            try:
                gone = context.transport.delete(info.plural, namespace, name,
                                                propagation_policy=args.cascade.capitalize(),
                                                grace_period_seconds=None if grace < 0 else grace,
                                                dry_run=args.dry_run == "server")
            except ApiError as error:
                print_error(format_api_error(error))
                failed = True
                continue
            if args.dry_run == "none":
                deleted.append((info, namespace, deleted_object(gone, name)))
        print(f'{qualified_kind(info)} "{name}" {"force deleted" if args.force and grace == 0 else "deleted"}{suffix}',
              flush=True)
    if args.wait:
        deadline = time.monotonic() + args.timeout if args.timeout > 0 else None
        for info, namespace, gone in deleted:
            if not wait_until_deleted(context, info, namespace, gone, deadline):
                print_error(f"error: timed out waiting for the condition on {info.plural}/{gone['metadata']['name']}")
                failed = True
    return 1 if failed else 0


def deleted_object(answer: dict, name: str) -> dict:
    """What a DELETE answered, as the object to wait for: Kubernetes answers the deletes of some
    kinds (Deployments, ...) with a Success Status, whose details name the object and its uid."""
    if answer.get("kind") != "Status":
        return answer
    details = answer.get("details") or {}
    return {"metadata": {"name": details.get("name") or name, "uid": details.get("uid")}}


def wait_until_deleted(context: Context, info: api.ResourceInfo, namespace: str | None, deleted: dict,
                       deadline: float | None) -> bool:
    """Watch the object until it is gone (or replaced by a new one with another uid)."""
    name, uid = deleted["metadata"]["name"], deleted["metadata"].get("uid")

    def gone() -> bool:
        try:
            current = context.transport.get(info.plural, namespace, name)
        except NotFound:
            return True
        return current["metadata"].get("uid") != uid

    if not deleted["metadata"].get("deletionTimestamp") and gone():
        return True
    stream = context.transport.watch(info.plural, namespace=namespace, field_selector=f"metadata.name={name}")
    try:
        if gone():
            return True
        for event in watch_events(stream, deadline):
            if event.get("type") == "DELETED" and event["object"]["metadata"].get("uid") == uid:
                return True
        return gone()
    finally:
        stream.close()


SCALABLE = ("deployments", "replicasets", "statefulsets")


def run_scale(args: argparse.Namespace, context: Context) -> int:
    if args.replicas < 0:
        raise CommandError("The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")
    targets = targets_from_arguments(context, args.targets)
    if not targets:
        raise CommandError("give what to scale as TYPE/NAME or TYPE NAME, such as deployment/web")
    for info, name in targets:
        if info.plural not in SCALABLE:
            raise CommandError(f"cannot scale {info.plural}: only deployments, replicasets and statefulsets have a scale")
        namespace = context.namespace_for(info)
        if args.current_replicas is not None:
            current = context.transport.get_scale(info.plural, namespace, name)["spec"].get("replicas", 0)
            if current != args.current_replicas:
                raise CommandError(f"Expected replicas to be {args.current_replicas}, was {current}")
        context.transport.patch_scale(info.plural, namespace, name, {"spec": {"replicas": args.replicas}})
        print(f"{qualified_kind(info)}/{name} scaled")
    return 0


def set_images(containers: list[dict], wanted: dict[str, str]) -> bool:
    """Apply CONTAINER=IMAGE pairs (`*` for all); returns whether anything changed."""
    changed = False
    for container in containers:
        image = wanted.get(container["name"], wanted.get("*"))
        if image is not None and container.get("image") != image:
            container["image"] = image
            changed = True
    return changed


def run_set_image(args: argparse.Namespace, context: Context) -> int:
    info, name = split_type_and_name(args.target)
    if info.plural not in SCALABLE:
        raise CommandError(f"set image supports deployments and replicasets, not {info.plural}")
    wanted = {}
    for pair in args.images:
        container, equals, image = pair.partition("=")
        if not equals or not container or not image:
            raise CommandError(f"expected CONTAINER=IMAGE, got {pair!r}")
        wanted[container] = image
    namespace = context.namespace_for(info)
    current = context.transport.get(info.plural, namespace, name)
    pod_spec = current["spec"]["template"]["spec"]
    known = {container["name"] for container in pod_spec.get("containers", []) + pod_spec.get("initContainers", [])}
    for container in wanted:
        if container != "*" and container not in known:
            raise CommandError(f'unable to find container named "{container}"')
    changed = set_images(pod_spec.get("containers", []), wanted)
    changed = set_images(pod_spec.get("initContainers", []), wanted) or changed
    if changed:
        # Replace with the resourceVersion we read: a concurrent edit is a Conflict, not lost.
        context.transport.replace(info.plural, namespace, name, current)
        print(f"{qualified_kind(info)}/{name} image updated")
    return 0
