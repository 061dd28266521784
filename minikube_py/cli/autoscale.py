"""`autoscale`: a HorizontalPodAutoscaler for a Deployment, ReplicaSet or StatefulSet, as kubectl's.

Makes an `autoscaling/v2` HorizontalPodAutoscaler named after the target, scaling it through its
`/scale` subresource between `--min` and `--max` to keep the pods' CPU at `--cpu-percent` of
their requests (the API's default, 80 %, without it).
"""

from __future__ import annotations

import argparse

from minikube_py.cli.context import CommandError, Context, Subcommands, split_type_and_name

SCALABLE_KINDS = {"deployments": "Deployment", "replicasets": "ReplicaSet", "statefulsets": "StatefulSet"}


def register(subcommands: Subcommands) -> None:
    autoscale = subcommands.add("autoscale", "make a HorizontalPodAutoscaler for a deployment, replicaset or "
                                "statefulset", namespaced=True)
    autoscale.add_argument("target", metavar="TYPE/NAME", help="what to scale, such as deployment/web")
    autoscale.add_argument("target_name", nargs="?", metavar="NAME", help="the object's name, after a bare TYPE")
    autoscale.add_argument("--max", type=int, required=True, metavar="N", help="the most replicas (required)")
    autoscale.add_argument("--min", type=int, metavar="N", help="the fewest replicas (default 1)")
    autoscale.add_argument("--cpu-percent", type=int, metavar="N",
                           help="the pods' CPU to aim for, in percent of their requests (default 80)")
    autoscale.add_argument("--name", help="the autoscaler's name (default: the target's)")
    autoscale.set_defaults(run=run_autoscale)


def horizontal_pod_autoscaler(kind: str, name: str, namespace: str, maximum: int, minimum: int | None,
                              cpu_percent: int | None, hpa_name: str | None) -> dict:
    api_version = "apps/v1"
    spec: dict = {"scaleTargetRef": {"apiVersion": api_version, "kind": kind, "name": name}, "maxReplicas": maximum}
    if minimum is not None:
        spec["minReplicas"] = minimum
    if cpu_percent is not None:
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu_percent}}}]
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": hpa_name or name, "namespace": namespace}, "spec": spec}


def run_autoscale(args: argparse.Namespace, context: Context) -> int:
    info, name = split_type_and_name(args.target if args.target_name is None else f"{args.target}/{args.target_name}")
    kind = SCALABLE_KINDS.get(info.plural)
    if kind is None:
        raise CommandError(f"cannot autoscale a {info.kind}: only deployments, replicasets and statefulsets "
                           "have a scale subresource")
    namespace = context.default_namespace
    context.transport.get(info.plural, namespace, name)  # NotFound names the target
    body = horizontal_pod_autoscaler(kind, name, namespace, args.max, args.min, args.cpu_percent, args.name)
    created = context.transport.create("horizontalpodautoscalers", namespace, body)
    print(f"horizontalpodautoscaler.autoscaling/{created['metadata']['name']} autoscaled")
    return 0
