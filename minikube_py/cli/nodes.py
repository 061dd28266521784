"""Commands about nodes: `node add|rm|ls` on this host, and `join`, which runs a node agent
against a cluster's TLS API with the node's token (what `node add` starts in the node's own
network namespace). They hand over to `minikube_py.nodes`.
"""

from __future__ import annotations

import argparse
import os

from minikube_py import api
from minikube_py.cli.context import CommandError, Context, Subcommands


def register(subcommands: Subcommands) -> None:
    node = subcommands.group("node", "add, remove and list the cluster's nodes")
    add = node.add("add", "start another node on this host: its own network namespace, address, agent, "
                          "supervisor, bridge and slice of the pod CIDR")
    add.add_argument("name", metavar="NAME", help="the node's name (lowercase letters, digits and '-')")
    add.add_argument("--max-pods", type=int, metavar="N",
                     help="how many pods the node holds (default: the cluster's --max-pods)")
    add.set_defaults(run=run_node_add)
    remove = node.add("rm", "drain a node (cordon, delete its pods) and remove it and everything it had on this host",
                      aliases=("remove",))
    remove.add_argument("name", metavar="NAME", help="the node to remove")
    remove.add_argument("--no-drain", action="store_true",
                        help="do not wait for its pods to stop first (they are removed with the node)")
    remove.set_defaults(run=run_node_remove)
    node.add("ls", "list the cluster's nodes, as get nodes -o wide", aliases=("list",)).set_defaults(run=run_node_list)

    join = subcommands.add("join", "run a node agent (with its service proxy and DNS) against a cluster's TLS API, "
                                   "in the foreground, until interrupted")
    join.add_argument("--server", required=True, metavar="URL",
                      help="the API server, such as https://10.244.0.1:6443 (node add uses the daemon's bridge address)")
    join.add_argument("--token", metavar="T", help="the node's bearer token (system:node:NAME)")
    join.add_argument("--token-file", metavar="FILE", help="read the token from FILE instead (keeps it out of ps)")
    join.add_argument("--certificate-authority", metavar="FILE",
                      help="the cluster CA to trust (default: ca.crt in the cluster home's pki directory)")
    join.add_argument("--name", metavar="NAME", help="the node's name (default: this host's name)")
    join.add_argument("--node-home", metavar="DIR",
                      help="where the node keeps its supervisor, containers and pod IPs (default: HOME/nodes/NAME)")
    join.add_argument("--max-pods", type=int, default=110, metavar="N", help="how many pods the node holds (default 110)")
    join.add_argument("--node-lease-duration", type=int, default=40, metavar="SECONDS",
                      help="the node Lease's duration, renewed every quarter of it (kubelet's nodeLeaseDurationSeconds; "
                           "keep it at most the cluster's --node-monitor-grace-period; default 40)")
    join.set_defaults(run=run_join)


def _nodes():
    from minikube_py import nodes

    return nodes


def run_node_add(args: argparse.Namespace, context: Context) -> int:
    nodes = _nodes()
    if os.geteuid() != 0:
        raise CommandError("node add needs root: a node is a network namespace, links, cgroups and processes. "
                           "Run it with sudo.")
    try:
        print(nodes.add_node(context.home, args.name, args.max_pods))
    except nodes.NodeError as error:
        raise CommandError(str(error)) from None
    return 0


def run_node_remove(args: argparse.Namespace, context: Context) -> int:
    nodes = _nodes()
    try:
        print(nodes.remove_node(context.home, args.name, drain=not args.no_drain))
    except nodes.NodeError as error:
        raise CommandError(str(error)) from None
    return 0


def run_node_list(args: argparse.Namespace, context: Context) -> int:
    from minikube_py.cli.get import TablePrinter

    items = context.transport.list("nodes")["items"]
    print(TablePrinter(api.resource_for("nodes"), True, False, False, False, context.now()).render(items))
    return 0


def run_join(args: argparse.Namespace, context: Context) -> int:
    import socket

    nodes = _nodes()
    name = args.name or socket.gethostname()
    try:
        token = nodes.read_token(args.token, args.token_file)
    except nodes.NodeError as error:
        raise CommandError(str(error)) from None
    authority = args.certificate_authority or os.path.join(context.home, "pki", "ca.crt")
    if not os.path.exists(authority):
        raise CommandError(f"--certificate-authority: {authority} does not exist; copy the cluster's CA "
                           "(HOME/pki/ca.crt on the control plane's host) here and name it")
    home = args.node_home or os.path.join(context.home, "nodes", name)
    return nodes.serve_node(home, args.server, token, authority, name, max_pods=args.max_pods,
                            lease_duration=args.node_lease_duration)
