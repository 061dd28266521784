"""`apply -f`: make the cluster match manifests, kubectl's client-side way, and `--watch` for edits.

Each document is applied on its own: created when missing, else patched with a three-way merge
(last applied manifest, the new manifest, the live object) so that fields a user removed from
the manifest are removed from the object while fields the server or controllers filled in are
left alone. The applied manifest is stored in the `kubectl.kubernetes.io/last-applied-configuration`
annotation for the next round. A rejected document stores nothing (the create or the patch is one
request) and does not stop the others; its error names the file and the document.
`--watch` re-applies a file whenever it changes, a GitOps loop on one host.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import threading
from dataclasses import dataclass

from minikube_py import api
from minikube_py.api.errors import ApiError, NotFound
from minikube_py.cli.context import CommandError, Context, Subcommands, format_api_error, print_error, qualified_kind

LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
MANIFEST_EXTENSIONS = (".yaml", ".yml", ".json")
# kubectl's field managers: apply records its writes under the same names as kubectl, so an object
# can move between `minikube-py apply` and `kubectl apply` (either way) without conflicts.
CLIENT_SIDE_FIELD_MANAGER = "kubectl-client-side-apply"
SERVER_SIDE_FIELD_MANAGER = "kubectl"
DRY_RUN_CHOICES = ("none", "client", "server")
# What kubectl appends to its line for each --dry-run.
DRY_RUN_SUFFIX = {"none": "", "client": " (dry run)", "server": " (server dry run)"}


@dataclass(frozen=True)
class ApplyOptions:
    server_side: bool = False
    force_conflicts: bool = False
    field_manager: str | None = None
    dry_run: str = "none"  # none, client or server

    @property
    def manager(self) -> str:
        return self.field_manager or (SERVER_SIDE_FIELD_MANAGER if self.server_side else CLIENT_SIDE_FIELD_MANAGER)


def register(subcommands: Subcommands) -> None:
    apply = subcommands.add("apply", "create or update objects from manifests (YAML or JSON, multi-document)",
                            namespaced=True)
    add_file_flags(apply, "the manifests to apply")
    apply.add_argument("--watch", action="store_true",
                       help="after applying, re-apply each file when it changes, until Ctrl-C")
    apply.add_argument("--server-side", action="store_true",
                       help="let the API server merge (server-side apply): fields are owned by field managers, "
                            "and changing another manager's field is a conflict")
    apply.add_argument("--force-conflicts", action="store_true",
                       help="with --server-side, take the conflicting fields from their managers")
    apply.add_argument("--field-manager", metavar="NAME",
                       help="the name apply's writes are recorded under in managedFields "
                            "(default kubectl-client-side-apply, or kubectl with --server-side, as kubectl)")
    apply.add_argument("--dry-run", nargs="?", const="client", default="none", choices=DRY_RUN_CHOICES,
                       help="client: only say what would be done; server: send it for the server to run "
                            "(admission, defaults, validation, conflicts) and store nothing")
    apply.set_defaults(run=run_apply)


def add_file_flags(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("-f", "--filename", action="append", required=True, metavar="FILE|DIR|-",
                        help=f"{what}: a file, a directory of .yaml/.yml/.json files, or - for stdin; repeatable")
    parser.add_argument("-R", "--recursive", action="store_true",
                        help="with a directory, also read the directories inside it")


def manifest_files(paths: list[str], recursive: bool) -> list[str]:
    """The files named by -f: files as given, directories expanded (sorted, like kubectl)."""
    files = []
    for path in paths:
        if path == "-" or not os.path.isdir(path):
            if path != "-" and not os.path.exists(path):
                raise CommandError(f'the path "{path}" does not exist')
            files.append(path)
            continue
        for directory, subdirectories, names in os.walk(path):
            subdirectories.sort()
            if not recursive:
                subdirectories.clear()
            files += [os.path.join(directory, name) for name in sorted(names) if name.endswith(MANIFEST_EXTENSIONS)]
    return files


def read_documents(path: str) -> list[api.ManifestDocument]:
    if path == "-":
        return api.load_manifests(sys.stdin.read(), "STDIN")
    with open(path, encoding="utf-8") as file:
        return api.load_manifests(file.read(), path)




class ManifestError(Exception):
    """A document that cannot be read; its text already says where (`file: document 2: ...`)."""


def _contained(wanted, live) -> bool:
    """Whether every field of `wanted` is in `live` with the same value (live may have more). A
    live list may have more elements after the wanted ones: others (the ServiceAccount admission's
    kube-api-access volume and mounts) appended them, and kubectl's strategic merge keeps them too."""
    if isinstance(wanted, dict):
        return isinstance(live, dict) and all(key in live and _contained(value, live[key])
                                              for key, value in wanted.items())
    if isinstance(wanted, list):
        return (isinstance(live, list) and len(wanted) <= len(live)
                and all(_contained(item, live_item) for item, live_item in zip(wanted, live, strict=False)))
    return wanted == live


def three_way_merge_patch(last_applied: dict | None, modified: dict, live: dict) -> dict:
    """The merge patch taking `live` to `modified`, deleting what `last_applied` had and `modified` lost.

    Lists are sent whole, as JSON merge patch requires, but only when the manifest changed them
    or the live list no longer contains them: the server defaults list elements (containers get
    `imagePullPolicy`, ...), and comparing whole lists would call every apply a change.
    """
    last_applied = last_applied or {}
    patch: dict = {}
    for key in last_applied:
        if key not in modified and key in live:
            patch[key] = None
    for key, value in modified.items():
        live_value, last_value = live.get(key), last_applied.get(key)
        if value is None:
            if key in live:
                patch[key] = None
        elif isinstance(value, dict) and isinstance(live_value, dict):
            nested = three_way_merge_patch(last_value if isinstance(last_value, dict) else None, value, live_value)
            if nested:
                patch[key] = nested
        elif isinstance(value, list):
            if value != last_value or not _contained(value, live_value):
                patch[key] = value
        elif value != live_value:
            patch[key] = value
    return patch


def applied_manifest(document: api.ManifestDocument, info: api.ResourceInfo, context: Context) -> dict:
    """The object kubectl would send: namespace filled in, status dropped, last-applied annotated."""
    manifest = copy.deepcopy(document.data)
    manifest.pop("status", None)
    if manifest.get("metadata") is None:  # `metadata:` with nothing after it is no metadata, as for kubectl
        manifest["metadata"] = {}
    metadata = manifest["metadata"]
    if not metadata.get("name"):
        raise CommandError("metadata.name: required: every applied object needs a name")
    if info.namespaced:
        namespace = metadata.get("namespace")
        if namespace and context.namespace and namespace != context.namespace:
            raise CommandError(
                f'the namespace from the provided object "{namespace}" does not match the namespace '
                f'"{context.namespace}". You must pass \'--namespace={namespace}\' to perform this operation.')
        metadata["namespace"] = namespace or context.default_namespace
    annotations = metadata.get("annotations") or {}
    annotations.pop(LAST_APPLIED_ANNOTATION, None)
    if not annotations:
        metadata.pop("annotations", None)
    last_applied = json.dumps(manifest, sort_keys=True, separators=(",", ":")) + "\n"
    metadata["annotations"] = {**annotations, LAST_APPLIED_ANNOTATION: last_applied}
    return manifest


def apply_document(context: Context, document: api.ManifestDocument, options: ApplyOptions = ApplyOptions()) -> str:
    """Apply one document; returns kubectl's line (`deployment.apps/web configured`)."""
    if document.error:
        raise ManifestError(document.error)
    info = api.resource_for_kind(document.data["apiVersion"], document.data["kind"])
    # Read and written at the manifest's version (an autoscaling/v1 HorizontalPodAutoscaler at
    # v1), so the three-way merge compares like with like.
    resource = info.name_at(document.data["apiVersion"])
    if options.server_side:
        return _apply_server_side(context, document, info, options)
    manifest = applied_manifest(document, info, context)
    name, namespace = manifest["metadata"]["name"], manifest["metadata"].get("namespace")
    label = f"{qualified_kind(info)}/{name}"
    suffix = DRY_RUN_SUFFIX[options.dry_run]
    server_dry_run = options.dry_run == "server"
    try:
        live = context.transport.get(resource, namespace, name)
    except NotFound:
        if options.dry_run != "client":
            context.transport.create(resource, namespace, manifest, dry_run=server_dry_run,
                                     field_manager=options.manager)
        return f"{label} created{suffix}"
    annotation = (live["metadata"].get("annotations") or {}).get(LAST_APPLIED_ANNOTATION)
    if annotation is None:
        print_error(f"Warning: resource {info.plural}/{name} is missing the {LAST_APPLIED_ANNOTATION} "
                    f"annotation which is required by minikube-py apply. The missing annotation will be "
                    f"patched automatically.")
    try:
        last_applied = json.loads(annotation) if annotation else None
    except ValueError:
        last_applied = None
    patch = three_way_merge_patch(last_applied, manifest, live)
    if not patch:
        return f"{label} unchanged{suffix}"
    if options.dry_run != "client":
        context.transport.patch(resource, namespace, name, patch, dry_run=server_dry_run,
                                field_manager=options.manager)
    return f"{label} configured{suffix}"


def _apply_server_side(context: Context, document: api.ManifestDocument, info: api.ResourceInfo,
                       options: ApplyOptions) -> str:
    """`--server-side`: send the manifest as it is; the server merges and keeps ownership."""
    manifest = copy.deepcopy(document.data)
    metadata = manifest.setdefault("metadata", {}) or {}
    manifest["metadata"] = metadata
    if not metadata.get("name"):
        raise CommandError("metadata.name: required: every applied object needs a name")
    namespace = None
    if info.namespaced:
        namespace = metadata.get("namespace") or context.default_namespace
        if context.namespace and metadata.get("namespace") and metadata["namespace"] != context.namespace:
            raise CommandError(
                f'the namespace from the provided object "{metadata["namespace"]}" does not match the namespace '
                f'"{context.namespace}". You must pass \'--namespace={metadata["namespace"]}\' to perform this operation.')
        metadata["namespace"] = namespace
    label = f"{qualified_kind(info)}/{metadata['name']}"
    if options.dry_run != "client":
        context.transport.apply(info.name_at(manifest["apiVersion"]), namespace, metadata["name"], manifest,
                                options.manager,
                                force=options.force_conflicts, dry_run=options.dry_run == "server")
    return f"{label} serverside-applied{DRY_RUN_SUFFIX[options.dry_run]}"


def apply_file(context: Context, path: str, options: ApplyOptions = ApplyOptions()) -> bool:
    """Apply every document of one file, printing a line each; False if any document failed."""
    try:
        documents = read_documents(path)
    except (OSError, UnicodeDecodeError) as error:
        print_error(f"error: {path}: {error}")
        return False
    succeeded = True
    for document in documents:
        try:
            print(apply_document(context, document, options), flush=True)
        except ManifestError as error:
            print_error(f"error: {error}")
            succeeded = False
        except ApiError as error:
            print_error(f"error: {document.location}: {format_api_error(error)}")
            succeeded = False
        except CommandError as error:
            print_error(f"error: {document.location}: {error}")
            succeeded = False
    return succeeded


def run_apply(args: argparse.Namespace, context: Context) -> int:
    if args.force_conflicts and not args.server_side:
        raise CommandError("--force-conflicts only works with --server-side")
    options = ApplyOptions(args.server_side, args.force_conflicts, args.field_manager, args.dry_run)
    files = manifest_files(args.filename, args.recursive)
    results = [apply_file(context, path, options) for path in files]
    if args.watch:
        if "-" in files:
            raise CommandError("--watch cannot follow stdin; pass files or directories")
        watch_and_apply(context, args.filename, args.recursive, options=options)
    return 0 if all(results) else 1


def watch_and_apply(context: Context, paths: list[str], recursive: bool,
                    stop_event: threading.Event | None = None, options: ApplyOptions = ApplyOptions()) -> None:
    """Re-apply each manifest file as it is written, until Ctrl-C (or `stop_event`, for tests)."""
    import watchfiles

    roots = [os.path.abspath(path) for path in paths]
    directories = {root for root in roots if os.path.isdir(root)}
    # Watch a file's directory, not the file: editors save by writing a new file and renaming it.
    watched = sorted(directories | {os.path.dirname(root) for root in roots if root not in directories})

    def wanted(change, path: str) -> bool:
        if change == watchfiles.Change.deleted or not path.endswith(MANIFEST_EXTENSIONS):
            return False
        if path in roots:
            return True
        parent = os.path.dirname(path)
        return parent in directories or (recursive and any(path.startswith(root + os.sep) for root in directories))

    print(f"watching {', '.join(paths)} for changes (Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        for changes in watchfiles.watch(*watched, watch_filter=wanted, stop_event=stop_event,
                                        debounce=300, step=50, raise_interrupt=False):
            for path in sorted({path for _, path in changes}):
                if os.path.exists(path):
                    apply_file(context, os.path.relpath(path), options)
    except KeyboardInterrupt:
        pass
