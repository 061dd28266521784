"""`top pods` and `top nodes`: resource usage from the Metrics API, printed as kubectl top does.

The numbers come from `metrics.k8s.io/v1beta1` (each node measures its own pods' cgroups; see
docs/api.md): CPU in millicores (`12m`), memory as the working set in mebibytes (`3Mi`), and for
nodes the share of the node's allocatable CPU and memory, as kubectl's top printer computes them.
"""

from __future__ import annotations

import argparse

from minikube_py.api import errors
from minikube_py.api.quantity import cpu_millis, memory_bytes, parse_quantity
from minikube_py.cli.context import CommandError, Context, Subcommands
from minikube_py.cli.tables import GET_MIN_WIDTH, GET_PADDING, align_columns

MEBIBYTE = 1024 * 1024
POD_COLUMNS = ["NAME", "CPU(cores)", "MEMORY(bytes)"]
NODE_COLUMNS = ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]


def register(subcommands: Subcommands) -> None:
    top = subcommands.group("top", "show CPU and memory use of pods or nodes (from the Metrics API)")
    pods = top.add("pods", "CPU (millicores) and memory (working set) of each pod", namespaced=True,
                   all_namespaces=True, aliases=("pod", "po"))
    pods.add_argument("name", nargs="?", metavar="NAME", help="one pod (default: every pod of the namespace)")
    pods.add_argument("-l", "--selector", metavar="SELECTOR", help="only pods with these labels, such as app=web")
    pods.add_argument("--containers", action="store_true", help="one line per container")
    pods.add_argument("--sort-by", choices=["cpu", "memory"], help="largest first by cpu or memory")
    pods.add_argument("--no-headers", action="store_true", help="leave out the header line")
    pods.set_defaults(run=run_top_pods)
    nodes = top.add("nodes", "CPU and memory of each node, and their share of its allocatable", aliases=("node", "no"))
    nodes.add_argument("name", nargs="?", metavar="NAME", help="one node (default: every node)")
    nodes.add_argument("-l", "--selector", metavar="SELECTOR", help="only nodes with these labels")
    nodes.add_argument("--sort-by", choices=["cpu", "memory"], help="largest first by cpu or memory")
    nodes.add_argument("--no-headers", action="store_true", help="leave out the header line")
    nodes.set_defaults(run=run_top_nodes)


def cpu_cell(quantity: str) -> str:
    return f"{cpu_millis(quantity)}m"


def memory_cell(quantity: str) -> str:
    return f"{memory_bytes(quantity) // MEBIBYTE}Mi"


def _print(rows: list[list[str]], header: list[str], no_headers: bool) -> None:
    lines = ([] if no_headers else [header]) + rows
    text = align_columns("\n".join("\t".join(line) + "\t" for line in lines), GET_MIN_WIDTH, GET_PADDING)
    print("\n".join(line.rstrip() for line in text.split("\n")))


def _sort_key(sort_by: str | None):
    def key(usage: dict) -> float:
        return float(parse_quantity(usage.get(sort_by or "", "0")))
    return key


def pod_rows(items: list[dict], all_namespaces: bool, containers: bool, sort_by: str | None) -> list[list[str]]:
    """The rows of `top pods`: one per pod (usage summed over its containers) or per container."""
    def summed(item: dict) -> dict:
        cpu = sum(parse_quantity(c["usage"].get("cpu", "0")) for c in item.get("containers", []))
        memory = sum(parse_quantity(c["usage"].get("memory", "0")) for c in item.get("containers", []))
        return {"cpu": str(cpu), "memory": str(memory)}

    entries = []
    for item in items:
        prefix = [item["metadata"].get("namespace", "")] if all_namespaces else []
        if containers:
            for container in item.get("containers", []):
                entries.append((prefix + [item["metadata"]["name"], container["name"]], container["usage"]))
        else:
            entries.append((prefix + [item["metadata"]["name"]], summed(item)))
    if sort_by:
        entries.sort(key=lambda entry: _sort_key(sort_by)(entry[1]), reverse=True)
    return [names + [cpu_cell(usage.get("cpu", "0")), memory_cell(usage.get("memory", "0"))]
            for names, usage in entries]


def node_rows(items: list[dict], nodes: dict[str, dict], sort_by: str | None) -> list[list[str]]:
    """The rows of `top nodes`; percentages of the Node's allocatable (capacity when none is given)."""
    if sort_by:
        items = sorted(items, key=lambda item: _sort_key(sort_by)(item.get("usage", {})), reverse=True)
    rows = []
    for item in items:
        name, usage = item["metadata"]["name"], item.get("usage", {})
        status = (nodes.get(name) or {}).get("status") or {}
        available = status.get("allocatable") or status.get("capacity") or {}
        cpu, memory = usage.get("cpu", "0"), usage.get("memory", "0")

        def percent(used: str, total: str | None) -> str:
            if not total or parse_quantity(total) == 0:
                return "<unknown>"
            return f"{int(parse_quantity(used) / parse_quantity(total) * 100)}%"
        rows.append([name, cpu_cell(cpu), percent(cpu, available.get("cpu")), memory_cell(memory),
                     percent(memory, available.get("memory"))])
    return rows


def _metrics_api_error(error: errors.ApiError) -> CommandError:
    return CommandError(f"Metrics API not available: {error.message}")


def run_top_pods(args: argparse.Namespace, context: Context) -> int:
    all_namespaces = bool(getattr(args, "all_namespaces", False))
    namespace = None if all_namespaces else context.default_namespace
    try:
        if args.name:
            try:
                items = [context.transport.get_metrics("pods", namespace, args.name)]
            except errors.NotFound:
                pod = context.transport.get("pods", namespace, args.name)  # NotFound for a pod that does not exist
                raise CommandError(f"Metrics not available for pod {namespace}/{pod['metadata']['name']}; "
                                   "a pod shows up after its node read its cgroups twice") from None
        else:
            items = context.transport.list_metrics("pods", namespace, args.selector)["items"]
    except errors.ServiceUnavailable as error:
        raise _metrics_api_error(error) from None
    if not items:
        where = "" if all_namespaces else f" in {namespace} namespace"
        raise CommandError(f"No resources found{where}." if not args.selector else "metrics not available yet")
    header = (["NAMESPACE"] if all_namespaces else []) + (["POD"] if args.containers else []) + POD_COLUMNS
    _print(pod_rows(items, all_namespaces, args.containers, args.sort_by), header, args.no_headers)
    return 0


def run_top_nodes(args: argparse.Namespace, context: Context) -> int:
    try:
        if args.name:
            items = [context.transport.get_metrics("nodes", None, args.name)]
        else:
            items = context.transport.list_metrics("nodes", None, args.selector)["items"]
    except errors.ServiceUnavailable as error:
        raise _metrics_api_error(error) from None
    if not items:
        raise CommandError("metrics not available yet")
    nodes = {node["metadata"]["name"]: node for node in context.transport.list("nodes")["items"]}
    _print(node_rows(items, nodes, args.sort_by), NODE_COLUMNS, args.no_headers)
    return 0
