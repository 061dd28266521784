"""Commands about the cluster itself rather than its objects: start, stop, status, kubeconfig,
version (the `image` commands are in images.py).

`start`, `stop` and `status` hand over to `minikube_py.daemon`, which owns the daemon's life.
These commands never talk to the API except through the daemon module.
"""

from __future__ import annotations

import argparse
import json
import re

import minikube_py
from minikube_py.cli.context import CommandError, Context, Subcommands


def register(subcommands: Subcommands) -> None:
    start = subcommands.add("start", "start the cluster daemon (API, controllers, scheduler, node agent)")
    start.add_argument("--name", help="cluster name, [a-z][a-z0-9]{0,9}; it tags every host resource "
                                      "(default: minikube)")
    start.add_argument("--pod-cidr", metavar="CIDR", help="the range pod IPs come from (default: 10.244.0.0/16)")
    start.add_argument("--service-cidr", metavar="CIDR",
                       help="the range Service ClusterIPs come from (default: 10.96.0.0/12)")
    start.add_argument("--service-node-port-range", metavar="LOW-HIGH",
                       help="the range NodePort Services' node ports come from, as kube-apiserver's flag "
                            "(default: 30000-32767)")
    start.add_argument("--port", type=int, metavar="N",
                       help="also serve the API over TLS on 127.0.0.1:N, to holders of the cluster's token or "
                            "client certificate, and merge a kubeconfig context for kubectl (default: the "
                            "root-only unix socket only)")
    start.add_argument("--node-name", metavar="NAME", help="the Node's name (default: the host name)")
    start.add_argument("--foreground", action="store_true",
                       help="run the daemon attached to this terminal instead of in the background")
    start.add_argument("--restart-backoff", metavar="INITIAL:MAX",
                       help="crash-loop back-off curve such as 1s:10s (default: Kubernetes' 10s:300s)")
    start.add_argument("--max-pods", type=int, metavar="N",
                       help="how many pods the node holds, its pods capacity (default 110, as kubelet's --max-pods)")
    start.add_argument("--terminated-pod-gc-threshold", type=int, metavar="N",
                       help="delete the oldest Succeeded/Failed pods beyond this many (default 12500; 0: never)")
    start.add_argument("--pids-limit", type=int, metavar="N",
                       help="the largest number of processes one pod may run (default: 1024)")
    start.add_argument("--seccomp-default", type=_boolean, nargs="?", const=True, metavar="true|false",
                       help="give containers that name no seccompProfile the RuntimeDefault profile, as kubelet's "
                            "flag of the same name (default: true; false leaves them Unconfined)")
    start.add_argument("--store", metavar="sqlite|etcd://[https://]HOST:PORT[,...]",
                       help="where API objects live: the home's sqlite file (default), or etcd v3 members, under "
                            "/<cluster name>/ so clusters can share them; https:// members are spoken to over TLS "
                            "with --etcd-cafile, --etcd-certfile, --etcd-keyfile (docs/scale-out.md)")
    start.add_argument("--etcd-cafile", metavar="FILE",
                       help="the CA that signed the etcd members' serving certificates, as kube-apiserver's flag "
                            "(default: the public CAs); \"\" forgets a saved one")
    start.add_argument("--etcd-certfile", metavar="FILE",
                       help="the client certificate to present to etcd (one started with --client-cert-auth asks "
                            "for it), as kube-apiserver's flag")
    start.add_argument("--etcd-keyfile", metavar="FILE", help="the private key of --etcd-certfile")
    start.add_argument("--leader-elect", type=_boolean, nargs="?", const=True, metavar="true|false",
                       help="run the controllers and the scheduler only while this daemon holds the Lease "
                            "kube-system/minikube-py-controller-manager, as kube-controller-manager's flag, so "
                            "several daemons can share one etcd store (default: false)")
    start.add_argument("--leader-elect-lease-duration", type=_duration, metavar="DURATION",
                       help="how long a silent leader keeps the Lease before another daemon may take it, as "
                            "kube-controller-manager's flag (default 15s)")
    start.add_argument("--leader-elect-renew-deadline", type=_duration, metavar="DURATION",
                       help="how long a leader tries to renew the Lease before it stops its controllers "
                            "(default 10s; less than the lease duration)")
    start.add_argument("--leader-elect-retry-period", type=_duration, metavar="DURATION",
                       help="how often a daemon tries to take or renew the Lease (default 2s)")
    start.add_argument("--control-plane-only", action="store_true", default=None,
                       help="run another API server and controller manager of a cluster whose store is etcd, "
                            "with no node: give the same --name, --store and --leader-elect as the cluster's "
                            "other daemons, a home of its own and --certificates-from (docs/scale-out.md)")
    start.add_argument("--certificates-from", metavar="HOME",
                       help="serve with the CA, tokens and signing keys of the cluster whose home is HOME "
                            "(for --control-plane-only, as kubeadm join --control-plane copies them)")
    start.add_argument("--metric-resolution", type=_duration, metavar="DURATION",
                       help="how often each node reads its pods' cgroup CPU and memory for the Metrics API "
                            "(kubectl top, autoscaling), as metrics-server's flag: 15s, 2s, 500ms (default 15s)")
    start.add_argument("--hpa-sync-period", type=_duration, metavar="DURATION",
                       help="how often the HorizontalPodAutoscaler controller checks each autoscaler, as "
                            "kube-controller-manager's --horizontal-pod-autoscaler-sync-period (default 15s)")
    start.add_argument("--image-gc-high-threshold", type=int, metavar="PERCENT",
                       help="disk use of the image store's file system at which unused images are removed, "
                            "least recently used first, as kubelet's flag (default: 85)")
    start.add_argument("--image-gc-low-threshold", type=int, metavar="PERCENT",
                       help="disk use that image garbage collection brings the file system down to (default: 80)")
    start.add_argument("--node-cidr-mask-size", type=int, metavar="N",
                       help="the prefix length of each node's slice of the pod CIDR, as kube-controller-manager's "
                            "flag (default: twice --max-pods, at most /24; a pod CIDR too small for four slices "
                            "is the first node's alone and no node can be added)")
    start.add_argument("--node-monitor-grace-period", type=float, metavar="SECONDS",
                       help="how long a node may go without renewing its Lease or status before it is marked "
                            "NotReady (Unknown) and tainted unreachable (default 40)")
    start.add_argument("--default-not-ready-toleration-seconds", type=int, metavar="SECONDS",
                       help="the tolerationSeconds pods get for node.kubernetes.io/not-ready:NoExecute, as "
                            "kube-apiserver's flag: how long they stay on a NotReady node (default 300)")
    start.add_argument("--default-unreachable-toleration-seconds", type=int, metavar="SECONDS",
                       help="the same for node.kubernetes.io/unreachable:NoExecute (default 300)")
    start.add_argument("--node-eviction-rate", type=float, metavar="NODES_PER_SECOND",
                       help="how many lost nodes a second get a NoExecute taint (and so have their pods "
                            "evicted), as kube-controller-manager's flag; 0 never taints (default 0.1)")
    start.set_defaults(run=run_start)

    stop = subcommands.add("stop", "stop every pod and the daemon, and remove every host resource the cluster made")
    stop.add_argument("--grace-period", type=float, default=None, metavar="SECONDS",
                      help="seconds each pod gets between SIGTERM and SIGKILL, instead of its own "
                           "terminationGracePeriodSeconds")
    stop.set_defaults(run=run_stop)

    status = subcommands.add("status", "show whether the cluster is running, and where its API is")
    status.add_argument("-o", "--output", choices=["json"], help="print the status as JSON")
    status.set_defaults(run=run_status)

    subcommands.add("kubeconfig", "print the cluster's kubeconfig (server URL, CA, admin token) for kubectl"
                    ).set_defaults(run=run_kubeconfig)

    subcommands.add("version", "print the minikube-py version").set_defaults(run=run_version)


def _boolean(text: str) -> bool:
    if text.lower() in ("true", "1"):
        return True
    if text.lower() in ("false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _duration(text: str) -> float:
    """Seconds from a Go-style duration (`15s`, `500ms`, `1m30s`) or a plain number of seconds."""
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    pieces = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not pieces or "".join(number + unit for number, unit in pieces) != text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 15s, 500ms or 1m30s")
    return sum(float(number) * DURATION_UNITS[unit] for number, unit in pieces)


def _daemon():
    from minikube_py import daemon

    return daemon


def run_start(args: argparse.Namespace, context: Context) -> int:
    return _daemon().start(
        context.home, name=args.name, pod_cidr=args.pod_cidr, service_cidr=args.service_cidr,
        service_node_port_range=args.service_node_port_range, port=args.port,
        node_name=args.node_name,
        foreground=args.foreground, restart_backoff=args.restart_backoff, pids_limit=args.pids_limit,
        max_pods=args.max_pods, terminated_pod_gc_threshold=args.terminated_pod_gc_threshold,
        seccomp_default=args.seccomp_default, store=args.store,
        etcd_cafile=args.etcd_cafile, etcd_certfile=args.etcd_certfile, etcd_keyfile=args.etcd_keyfile,
        leader_elect=args.leader_elect, metric_resolution=args.metric_resolution,
        hpa_sync_period=args.hpa_sync_period, image_gc_high_threshold=args.image_gc_high_threshold,
        image_gc_low_threshold=args.image_gc_low_threshold, node_cidr_mask_size=args.node_cidr_mask_size,
        node_monitor_grace_period=args.node_monitor_grace_period,
        default_not_ready_toleration_seconds=args.default_not_ready_toleration_seconds,
        default_unreachable_toleration_seconds=args.default_unreachable_toleration_seconds,
        node_eviction_rate=args.node_eviction_rate, leader_elect_lease_duration=args.leader_elect_lease_duration,
        leader_elect_renew_deadline=args.leader_elect_renew_deadline,
        leader_elect_retry_period=args.leader_elect_retry_period, control_plane_only=args.control_plane_only,
        certificates_from=args.certificates_from)


def run_stop(args: argparse.Namespace, context: Context) -> int:
    from minikube_py import nodes

    return nodes.stop_cluster(context.home, grace_period=args.grace_period)


def format_status(status: dict) -> str:
    """The `status` text: one `key: value` line per fact, like `minikube status`."""
    if not status.get("running"):
        state = "Stopped"
    elif status.get("apiReachable", True):
        state = f"Running (pid {status.get('pid')})"
    else:
        state = f"Running (pid {status.get('pid')}), API not answering"
    node = status.get("node") or "<none>"
    if status.get("running") and "nodeReady" in status:
        node += " (Ready)" if status["nodeReady"] else " (NotReady)"
    lines = [
        f"cluster:\t{status.get('name') or '<none>'}",
        f"daemon:\t{state}",
        f"node:\t{node}",
        f"pod CIDR:\t{status.get('podCIDR') or '<none>'}",
        f"API:\t{status.get('apiSocket')}" + (f" and https://127.0.0.1:{status['port']}" if status.get("port") else ""),
        f"pods:\t{status['pods'] if status.get('pods') is not None else '<unknown>'}",
    ]
    from minikube_py.cli.tables import align_columns

    return align_columns("\n".join(lines))


def run_status(args: argparse.Namespace, context: Context) -> int:
    status = _daemon().status(context.home)
    if args.output == "json":
        print(json.dumps(status, indent=2))
    else:
        print(format_status(status))
    return 0 if status.get("running") else 1


def run_kubeconfig(args: argparse.Namespace, context: Context) -> int:
    path = _daemon().kubeconfig_path(context.home)
    try:
        with open(path) as file:
            print(file.read(), end="")
    except FileNotFoundError:
        raise CommandError(f"no kubeconfig in {context.home}: the API is served over TLS only when the cluster "
                           "is started with --port N (minikube-py start --port 8443)") from None
    except PermissionError:
        raise CommandError(f"{path} is readable by root only (it holds the admin token); run with sudo") from None
    return 0


def run_version(args: argparse.Namespace, context: Context) -> int:
    print(f"minikube-py version: v{minikube_py.__version__}")
    return 0
