"""`rollout status|history|undo|pause|resume|restart` for Deployments (and status, history, undo
and restart for StatefulSets and DaemonSets, whose history is their ControllerRevisions), as
kubectl does them.

The decisions (what the status line says, which ReplicaSet a revision is, what undo restores)
live in `minikube_py/client/rollout.py`, on `client/deployments.py`, which the controller shares so
both read revisions the same way; this module fetches the Deployment and its ReplicaSets, calls those helpers, writes
the result and prints kubectl's lines. Undo is client-side like modern kubectl: the Deployment's
template and annotations are replaced with the target ReplicaSet's (compare-and-swap on the
resourceVersion read), and the controller then scales that existing ReplicaSet back up.
"""

from __future__ import annotations

import argparse
import time

from minikube_py import api
from minikube_py.cli.describe import DescribeWriter, describe_pod_template, owned_replica_sets
from minikube_py.cli.context import (
    CommandError, Context, Subcommands, qualified_kind, split_type_and_name, watch_events)
from minikube_py.cli.mutate import parse_bool, parse_duration

# Kinds whose rollout history is their ControllerRevisions.
REVISIONED = ("statefulsets", "daemonsets")

# The helpers in minikube_py.client work on the models, so each command imports them when it
# runs: building the models at import would slow every other command's start.


def register(subcommands: Subcommands) -> None:
    rollout = subcommands.group("rollout", "manage the rollout of a deployment, statefulset or daemonset")

    def target(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("target", metavar="TYPE/NAME",
                            help="the deployment, statefulset or daemonset (deployment/web, deploy/web, "
                                 "statefulset/db, sts/db, daemonset/agent, ds/agent)")

    status = rollout.add("status", "watch a rollout until it finishes", namespaced=True)
    target(status)
    status.add_argument("--timeout", type=parse_duration, default=0.0, metavar="DURATION",
                        help="give up after this long, such as 5m; 0 waits forever (default)")
    status.add_argument("-w", "--watch", type=parse_bool, default=True, metavar="true|false",
                        help="keep watching until the rollout finishes (default true)")
    status.set_defaults(run=run_status)

    history = rollout.add("history", "list the revisions of a deployment", namespaced=True)
    target(history)
    history.add_argument("--revision", type=int, default=0, metavar="N",
                         help="show the pod template of revision N")
    history.set_defaults(run=run_history)

    undo = rollout.add("undo", "roll back to the previous (or a given) revision", namespaced=True)
    target(undo)
    undo.add_argument("--to-revision", type=int, default=0, metavar="N",
                      help="the revision to roll back to (default 0: the previous one)")
    undo.set_defaults(run=run_undo)

    for verb, help_text in (("pause", "stop rolling out template changes (scaling still works)"),
                            ("resume", "resume rolling out a paused deployment"),
                            ("restart", "replace every pod of the deployment, one rollout at a time")):
        parser = rollout.add(verb, help_text, namespaced=True)
        target(parser)
        parser.set_defaults(run=run_pause_resume_restart, verb=verb)


def deployment_target(context: Context, text: str, revisioned: bool = True) -> tuple[api.ResourceInfo, str, str]:
    info, name = split_type_and_name(text)
    allowed = ("deployments", *REVISIONED) if revisioned else ("deployments",)
    if info.plural not in allowed:
        listed = " and ".join(allowed) if len(allowed) < 3 else f"{', '.join(allowed[:-1])} and {allowed[-1]}"
        raise CommandError(f"rollout supports {listed} only, not {info.plural}")
    return info, name, context.default_namespace


def status_message(info: api.ResourceInfo, obj: dict) -> tuple[str, bool, str | None]:
    from minikube_py.client import daemonset_rollout, statefulset_rollout
    from minikube_py.client import rollout as rollout_helpers

    if info.plural == "statefulsets":
        return statefulset_rollout.status_message(api.StatefulSet.model_validate(obj))
    if info.plural == "daemonsets":
        return daemonset_rollout.status_message(api.DaemonSet.model_validate(obj))
    return rollout_helpers.rollout_status_message(api.Deployment.model_validate(obj))


def revisioned_history(context: Context, info: api.ResourceInfo, namespace: str, workload: dict):
    """The StatefulSet or DaemonSet as its model, and the namespace's ControllerRevisions."""
    revisions = context.transport.list("controllerrevisions", namespace)["items"]
    return (info.model.model_validate(workload),
            [api.ControllerRevision.model_validate(item) for item in revisions])


def as_models(deployment: dict, replica_sets: list[dict]):
    return api.Deployment.model_validate(deployment), [api.ReplicaSet.model_validate(item) for item in replica_sets]


def run_status(args: argparse.Namespace, context: Context) -> int:
    info, name, namespace = deployment_target(context, args.target)
    deployment = context.transport.get(info.plural, namespace, name)
    if not args.watch:
        message, _, error = status_message(info, deployment)
        if error:
            raise CommandError(error)
        print(message, end="" if message.endswith("\n") else "\n")
        return 0
    deadline = time.monotonic() + args.timeout if args.timeout > 0 else None
    stream = context.transport.watch(info.plural, namespace=namespace, field_selector=f"metadata.name={name}")
    try:
        for event in watch_events(stream, deadline):
            if event.get("type") == "DELETED":
                raise CommandError("object has been deleted")
            if event.get("type") not in ("ADDED", "MODIFIED"):
                continue
            message, done, error = status_message(info, event["object"])
            if error:
                raise CommandError(error)
            print(message, end="" if message.endswith("\n") else "\n", flush=True)
            if done:
                return 0
    except KeyboardInterrupt:
        return 130
    finally:
        stream.close()
    raise CommandError("timed out waiting for the condition")


def run_history(args: argparse.Namespace, context: Context) -> int:
    from minikube_py.client import rollout as rollout_helpers

    info, name, namespace = deployment_target(context, args.target)
    deployment = context.transport.get(info.plural, namespace, name)
    if info.plural in REVISIONED:
        return revisioned_history_command(args, context, info, namespace, deployment)
    model, replica_sets = as_models(deployment, owned_replica_sets(context, deployment))
    label = f"{qualified_kind(info)}/{name}"
    try:
        if args.revision:
            template = rollout_helpers.revision_template(model, replica_sets, args.revision)
            writer = DescribeWriter()
            describe_pod_template(writer, template.to_dict())
            print(f"{label} with revision #{args.revision}\n{writer.render()}\n")
            return 0
        rows = rollout_helpers.history(model, replica_sets)
    except rollout_helpers.RolloutError as error:
        raise CommandError(str(error)) from None
    if not rows:
        print(f"{label} \nNo rollout history found.\n")
        return 0
    writer = DescribeWriter()
    writer.write(0, "REVISION\tCHANGE-CAUSE")
    for row in rows:
        writer.write(0, f"{row.revision}\t{row.change_cause}")
    print(f"{label} \n{writer.render()}\n")
    return 0


def revisioned_history_command(args: argparse.Namespace, context: Context, info: api.ResourceInfo,
                               namespace: str, workload: dict) -> int:
    from minikube_py.client import history, statefulset_rollout
    from minikube_py.client import rollout as rollout_helpers

    model, revisions = revisioned_history(context, info, namespace, workload)
    label = f"{qualified_kind(info)}/{model.metadata.name}"
    try:
        if args.revision:
            revision = statefulset_rollout.find_revision(model, revisions, args.revision)
            writer = DescribeWriter()
            describe_pod_template(writer, history.template_of(revision).to_dict())
            print(f"{label} with revision #{args.revision}\n{writer.render()}\n")
            return 0
    except rollout_helpers.RolloutError as error:
        raise CommandError(str(error)) from None
    rows = statefulset_rollout.history_rows(model, revisions)
    if not rows:
        print(f"{label} \nNo rollout history found.\n")
        return 0
    writer = DescribeWriter()
    writer.write(0, "REVISION\tCHANGE-CAUSE")
    for row in rows:
        writer.write(0, f"{row.revision}\t{row.change_cause}")
    print(f"{label} \n{writer.render()}\n")
    return 0


def revisioned_undo(args: argparse.Namespace, context: Context, info: api.ResourceInfo, namespace: str,
                    workload: dict) -> int:
    from minikube_py.client import statefulset_rollout
    from minikube_py.client import rollout as rollout_helpers

    model, revisions = revisioned_history(context, info, namespace, workload)
    label = f"{qualified_kind(info)}/{model.metadata.name}"
    try:
        target = statefulset_rollout.rollback_target(model, revisions, args.to_revision)
    except rollout_helpers.RolloutError as error:
        raise CommandError(str(error)) from None
    if target.already_current:
        print(f"{label} {target.skipped_message}")
        return 0
    context.transport.replace(info.plural, namespace, model.metadata.name,
                              statefulset_rollout.apply_rollback(model, target).to_dict())
    print(f"{label} rolled back")
    return 0


def run_undo(args: argparse.Namespace, context: Context) -> int:
    from minikube_py.client import rollout as rollout_helpers

    info, name, namespace = deployment_target(context, args.target)
    deployment = context.transport.get(info.plural, namespace, name)
    if info.plural in REVISIONED:
        return revisioned_undo(args, context, info, namespace, deployment)
    model, replica_sets = as_models(deployment, owned_replica_sets(context, deployment))
    try:
        target = rollout_helpers.find_rollback_target(model, replica_sets, args.to_revision)
    except rollout_helpers.RolloutError as error:
        raise CommandError(str(error)) from None
    label = f"{qualified_kind(info)}/{name}"
    if target.already_current:
        print(f"{label} {target.skipped_message}")
        return 0
    # A replace carrying the resourceVersion we read: a concurrent change is a Conflict, not lost.
    context.transport.replace(info.plural, namespace, name,
                              rollout_helpers.apply_rollback(model, target).to_dict())
    print(f"{label} rolled back")
    return 0


def run_pause_resume_restart(args: argparse.Namespace, context: Context) -> int:
    from minikube_py.client import rollout as rollout_helpers

    info, name, namespace = deployment_target(context, args.target, revisioned=args.verb == "restart")
    deployment = context.transport.get(info.plural, namespace, name)
    label = f"{qualified_kind(info)}/{name}"
    paused = bool((deployment.get("spec") or {}).get("paused"))
    if args.verb == "restart":
        if paused:
            raise CommandError(f"{label}: can't restart paused deployment (run rollout resume first)")
        context.transport.patch(info.plural, namespace, name, rollout_helpers.restart_patch(context.now()))
        print(f"{label} restarted")
        return 0
    want_paused = args.verb == "pause"
    if paused == want_paused:
        print(f"{label} already {'paused' if want_paused else 'resumed'}")
        return 0
    context.transport.patch(info.plural, namespace, name, {"spec": {"paused": want_paused}})
    print(f"{label} {'paused' if want_paused else 'resumed'}")
    return 0

