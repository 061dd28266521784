"""`taint`, `cordon`, `uncordon` and `drain`: kubectl's node maintenance commands.

`taint nodes NAME key=value:Effect` adds a taint (`key:Effect-` or `key-` removes), `cordon` marks
a node unschedulable and `uncordon` clears it, and `drain` cordons a node then evicts its pods
through the `eviction` subresource, so PodDisruptionBudgets are honoured: an eviction a budget
refuses is retried every 5 seconds until it goes through or `--timeout` passes, with kubectl's
messages. As kubectl does, drain refuses pods no controller would recreate unless `--force`, and
pods with emptyDir data unless `--delete-emptydir-data`.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from minikube_py import api
from minikube_py.api import errors
from minikube_py.cli.context import CommandError, Context, Subcommands, print_error
from minikube_py.cli.mutate import parse_duration

EVICTION_RETRY_SECONDS = 5.0
DELETE_POLL_SECONDS = 1.0
UNMANAGED_FATAL = "cannot delete Pods that declare no controller (use --force to override)"
UNMANAGED_WARNING = "deleting Pods that declare no controller"
DAEMON_SET_FATAL = "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore)"
DAEMON_SET_WARNING = "ignoring DaemonSet-managed Pods"
LOCAL_STORAGE_FATAL = "cannot delete Pods with local storage (use --delete-emptydir-data to override)"


def register(subcommands: Subcommands) -> None:
    taint = subcommands.add("taint", "add or remove taints on nodes: KEY=VALUE:EFFECT adds, KEY:EFFECT- or KEY- removes")
    taint.add_argument("kind", metavar="nodes", help="always nodes (node, no)")
    taint.add_argument("node", metavar="NAME", help="the node")
    taint.add_argument("taints", nargs="+", metavar="TAINT",
                       help="KEY[=VALUE]:EFFECT to add (EFFECT is NoSchedule, PreferNoSchedule or NoExecute), "
                            "KEY[:EFFECT]- to remove")
    taint.add_argument("--overwrite", action="store_true",
                       help="replace a taint of the same key and effect that has another value")
    taint.set_defaults(run=run_taint)

    cordon = subcommands.add("cordon", "mark a node unschedulable: no new pods go there")
    cordon.add_argument("node", metavar="NAME", help="the node")
    cordon.set_defaults(run=lambda args, context: set_unschedulable(context, args.node, True))
    uncordon = subcommands.add("uncordon", "mark a node schedulable again")
    uncordon.add_argument("node", metavar="NAME", help="the node")
    uncordon.set_defaults(run=lambda args, context: set_unschedulable(context, args.node, False))

    drain = subcommands.add("drain", "cordon a node and evict its pods, honouring PodDisruptionBudgets")
    drain.add_argument("node", metavar="NAME", help="the node")
    drain.add_argument("--force", action="store_true", help="also delete pods that no controller manages")
    drain.add_argument("--ignore-daemonsets", action="store_true", help="leave DaemonSet-managed pods in place")
    drain.add_argument("--delete-emptydir-data", action="store_true",
                       help="also evict pods with emptyDir volumes, whose data is lost")
    drain.add_argument("--disable-eviction", action="store_true",
                       help="delete pods instead of evicting them, bypassing PodDisruptionBudgets")
    drain.add_argument("--grace-period", type=int, default=-1, metavar="N",
                       help="seconds each pod gets to stop; -1 uses the pod's own (default)")
    drain.add_argument("--timeout", type=parse_duration, default=0.0, metavar="DURATION",
                       help="give up after this long, such as 2m; 0 waits forever (default)")
    drain.set_defaults(run=run_drain)


# --- taint ---------------------------------------------------------------------------------------


def parse_taint(text: str) -> tuple[dict[str, Any], bool]:
    """`key=value:Effect` -> (taint, False); `key:Effect-` or `key-` -> (taint to remove, True)."""
    removing = text.endswith("-")
    body = text[:-1] if removing else text
    key_value, colon, effect = body.partition(":")
    key, equals, value = key_value.partition("=")
    if removing:
        if equals:
            raise CommandError(f"invalid taint spec: {text}, unremovable taint format: key[:effect]-")
    elif not colon:
        raise CommandError(f"invalid taint spec: {text}, Missing effect")
    if not key:
        raise CommandError(f"invalid taint spec: {text}")
    if effect and effect not in api.placement.TAINT_EFFECTS:
        raise CommandError(f"invalid taint effect: {effect}, unsupported taint effect")
    taint: dict[str, Any] = {"key": key, "effect": effect}
    if value:
        taint["value"] = value
    return taint, removing


def run_taint(args: argparse.Namespace, context: Context) -> int:
    if args.kind not in ("nodes", "node", "no"):
        raise CommandError(f"taint only applies to nodes, not {args.kind}")
    changes = [parse_taint(text) for text in args.taints]
    node = context.transport.get("nodes", None, args.node)
    taints: list[dict[str, Any]] = list((node.get("spec") or {}).get("taints") or [])
    removed_any = added_any = False
    for taint, removing in changes:
        if removing:
            kept = [t for t in taints if not (t["key"] == taint["key"] and (not taint["effect"] or t["effect"] == taint["effect"]))]
            if len(kept) == len(taints):
                shown = f"{taint['key']}:{taint['effect']}" if taint["effect"] else taint["key"]
                raise CommandError(f'taint "{shown}" not found')
            taints, removed_any = kept, True
            continue
        same = [t for t in taints if t["key"] == taint["key"] and t["effect"] == taint["effect"]]
        if same and not args.overwrite:
            if all(t.get("value") == taint.get("value") for t in same):
                continue
            raise CommandError(f"node {args.node} already has {taint['key']} taint(s) with same effect(s) and "
                               "--overwrite is false")
        taints = [t for t in taints if t not in same] + [taint]
        added_any = True
    context.transport.patch("nodes", None, args.node, {"metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                                                       "spec": {"taints": taints or None}})
    print(f"node/{args.node} {'modified' if added_any and removed_any else 'untainted' if removed_any else 'tainted'}")
    return 0


# --- cordon and uncordon -------------------------------------------------------------------------


def set_unschedulable(context: Context, node_name: str, unschedulable: bool) -> int:
    node = context.transport.get("nodes", None, node_name)
    word = "cordoned" if unschedulable else "uncordoned"
    if bool((node.get("spec") or {}).get("unschedulable")) == unschedulable:
        print(f"node/{node_name} already {word}")
        return 0
    context.transport.patch("nodes", None, node_name, {"spec": {"unschedulable": True if unschedulable else None}})
    print(f"node/{node_name} {word}")
    return 0


# --- drain ---------------------------------------------------------------------------------------


def _controller(pod: dict[str, Any]) -> dict[str, Any] | None:
    return next((ref for ref in pod["metadata"].get("ownerReferences") or [] if ref.get("controller")), None)


def pods_to_drain(pods: list[dict[str, Any]], args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """(pods to evict, warnings, fatal errors), as kubectl's drain filters decide."""
    chosen, warnings, fatal = [], [], []
    unmanaged, daemon_sets, local = [], [], []
    for pod in pods:
        phase = (pod.get("status") or {}).get("phase")
        label = f"{pod['metadata'].get('namespace')}/{pod['metadata']['name']}"
        controller = _controller(pod)
        if controller is not None and controller.get("kind") == "DaemonSet" and phase not in ("Succeeded", "Failed"):
            daemon_sets.append(label)
            continue
        if controller is None and phase not in ("Succeeded", "Failed"):
            unmanaged.append(label)
            if not args.force:
                continue
        if any("emptyDir" in volume for volume in (pod.get("spec") or {}).get("volumes") or []) \
                and phase not in ("Succeeded", "Failed") and not args.delete_emptydir_data:
            local.append(label)
            continue
        chosen.append(pod)
    for labels, fatal_text, warning_text, allowed in (
            (daemon_sets, DAEMON_SET_FATAL, DAEMON_SET_WARNING, args.ignore_daemonsets),
            (unmanaged, UNMANAGED_FATAL, UNMANAGED_WARNING, args.force),
            (local, LOCAL_STORAGE_FATAL, "", False)):
        if not labels:
            continue
        if allowed:
            warnings.append(f"{warning_text}: {', '.join(labels)}")
        else:
            fatal.append(f"{fatal_text}: {', '.join(labels)}")
    return chosen, warnings, fatal


def run_drain(args: argparse.Namespace, context: Context) -> int:
    set_unschedulable(context, args.node, True)
    listing = context.transport.list("pods", None, field_selector=f"spec.nodeName={args.node}")
    pods, warnings, fatal = pods_to_drain(listing["items"], args)
    if fatal:
        print_error(f'error: unable to drain node "{args.node}" due to error: [{", ".join(fatal)}], continuing command...')
        print_error(f"There are pending nodes to be drained:\n {args.node}")
        raise CommandError(", ".join(fatal))
    for warning in warnings:
        print_error(f"Warning: {warning}")
    deadline = time.monotonic() + args.timeout if args.timeout else None
    grace = None if args.grace_period < 0 else args.grace_period
    pending = list(pods)
    for pod in pending:
        print(f"evicting pod {pod['metadata']['namespace']}/{pod['metadata']['name']}")
    while pending:
        waiting = []
        for pod in pending:
            namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
            try:
                if args.disable_eviction:
                    context.transport.delete("pods", namespace, name, grace_period_seconds=grace)
                else:
                    body: dict[str, Any] = {"apiVersion": "policy/v1", "kind": "Eviction",
                                            "metadata": {"name": name, "namespace": namespace}}
                    if grace is not None:
                        body["deleteOptions"] = {"gracePeriodSeconds": grace}
                    context.transport.evict(namespace, name, body)
            except errors.NotFound:
                continue
            except errors.TooManyRequests as refused:
                print_error(f'error when evicting pods/"{name}" -n "{namespace}" (will retry after 5s): {refused.message}')
                waiting.append(pod)
        if not waiting:
            break
        if deadline is not None and time.monotonic() + EVICTION_RETRY_SECONDS > deadline:
            raise CommandError(f"drain did not complete within {args.timeout:g}s")
        time.sleep(EVICTION_RETRY_SECONDS)
        pending = waiting
    _wait_gone(context, pods, deadline, args.timeout)
    print(f"node/{args.node} drained")
    return 0


def _wait_gone(context: Context, pods: list[dict[str, Any]], deadline: float | None, timeout: float) -> None:
    """Wait until every evicted pod is deleted (same uid gone), printing `pod/x evicted`."""
    left = {(pod["metadata"]["namespace"], pod["metadata"]["name"]): pod["metadata"]["uid"] for pod in pods}
    while left:
        for (namespace, name), uid in list(left.items()):
            try:
                current = context.transport.get("pods", namespace, name)
            except errors.NotFound:
                current = None
            if current is None or current["metadata"]["uid"] != uid:
                print(f"pod/{name} evicted")
                del left[(namespace, name)]
        if not left:
            return
        if deadline is not None and time.monotonic() > deadline:
            raise CommandError(f"drain did not complete within {timeout:g}s")
        time.sleep(DELETE_POLL_SECONDS)
