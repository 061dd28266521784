"""Nodes beyond the daemon's own: `node add|rm|ls` on this host, and `join`, the node process.

A node is a node agent, its own supervisor, bridge and slice of the pod CIDR, its service proxy and
cluster DNS, talking to the API server over TLS with the node's own token, as kubelet and
kube-proxy do. `join --server URL --token T` runs one in the foreground wherever it is started.
`node add NAME` makes a "host" for one on this machine (a network namespace with its own address
on the cluster's node network, runtime/node_network.py), writes the node's token, and starts
`join` inside that namespace as a detached process: the same code path. The node's files live in
`<home>/nodes/<NAME>/` (its runtime home: supervisor, containers, pod IPs, images, `node.log`).

Joining: the node presents `system:node:NAME`'s token; a node of that name whose Lease is still
being renewed is refused (two agents would fight over its pods). It registers its Node, waits for
the node IPAM controller to give it `spec.podCIDR`, makes its bridge with that range, then runs
its pods, routes to the other nodes' pod CIDRs, and serves DNS on its bridge address for its pods.

`node rm NAME` drains the node (cordon, then delete its pods and wait until its agent stopped
them), stops its process, deletes the Node (its Lease goes with it) and removes its namespace,
link, cgroups, files and token. `stop` does the same for every node, without the drain.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass

from minikube_py.daemon import (DEFAULT_API_SERVICE_PORT, NODE_LEASE_DURATION_SECONDS, ClusterConfig, _process_running, _read_pid, _tail,
                                node_cidr_mask_size, node_lease_duration, pod_api_hosts)

log = logging.getLogger("minikube_py.nodes")

NODES_DIRECTORY = "nodes"
NODE_CONFIG = "node.json"
NODE_TOKEN = "token"
NODE_CA = "ca.crt"
NODE_PID = "node.pid"
NODE_LOG = "node.log"
READY_TIMEOUT_SECONDS = 60.0
POD_CIDR_TIMEOUT_SECONDS = 60.0
DRAIN_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 90.0
NODE_NAME_PATTERN = re.compile(r"[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?")


class NodeError(RuntimeError):
    """A node command that cannot be done; the message says why and what to do."""


@dataclass
class NodeConfig:
    """What `node add` made for a node on this host; saved in its home."""

    name: str
    cluster_name: str
    server: str
    address: str
    netns: str
    max_pods: int


def nodes_directory(home: str) -> str:
    return os.path.join(os.path.abspath(home), NODES_DIRECTORY)


def node_home(home: str, name: str) -> str:
    return os.path.join(nodes_directory(home), name)


def load_node_config(home: str, name: str) -> NodeConfig | None:
    try:
        with open(os.path.join(node_home(home, name), NODE_CONFIG)) as file:
            return NodeConfig(**json.load(file))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def local_node_names(home: str) -> list[str]:
    try:
        return sorted(os.listdir(nodes_directory(home)))
    except FileNotFoundError:
        return []


def _write_private(path: str, data: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(data)


def _node_network(config: ClusterConfig):
    from controllers.nodeipam import node_network
    from minikube_py.runtime.node_network import NodeNetwork

    mask = node_cidr_mask_size(config)
    if mask is None:
        return None
    return NodeNetwork(config.name, node_network(config.pod_cidr, mask))


def api_server_url(config: ClusterConfig) -> str:
    """Where nodes on this host reach the API: the TLS listener on the daemon's bridge address."""
    return f"https://{pod_api_hosts(config)[0]}:{config.port or DEFAULT_API_SERVICE_PORT}"


# ---------------------------------------------------------------------------------------------
# node add / rm / ls (on the host, as root)


def _cluster(home: str) -> ClusterConfig:
    config = ClusterConfig.load(home)
    if config is None or _read_pid(home) is None:
        raise NodeError(f"no cluster is running in {home}; start one first (minikube-py start)")
    return config


def _admin_client(home: str):
    from minikube_py.client.api import ApiClient

    return ApiClient.connect(home)


def add_node(home: str, name: str, max_pods: int | None = None) -> str:
    """Make node `name` on this host and start its agent; returns a line saying what was made."""
    from minikube_py.api import errors
    from minikube_py.apiserver import certificates

    home = os.path.abspath(home)
    config = _cluster(home)
    if not NODE_NAME_PATTERN.fullmatch(name):
        raise NodeError(f"node name {name!r}: use 1 to 40 lowercase letters, digits and '-', starting and ending "
                        "with a letter or digit")
    network = _node_network(config)
    if network is None:
        raise NodeError(f"the pod CIDR {config.pod_cidr} is the node {config.node_name!r}'s alone: it is too small to "
                        "give other nodes slices of it. Start the cluster with a larger --pod-cidr (a /16 holds 256 "
                        "nodes of 110 pods) or a larger --node-cidr-mask-size")
    client = _admin_client(home)
    try:
        client.get("nodes", name)
        raise NodeError(f'node "{name}" already exists; remove it first (minikube-py node rm {name}) or pick another name')
    except errors.NotFound:
        pass
    directory = node_home(home, name)
    if os.path.exists(directory):
        raise NodeError(f"{directory} exists: a node {name!r} was made here before and not removed; "
                        f"run minikube-py node rm {name}")
    taken = {node.address for node in (load_node_config(home, other) for other in local_node_names(home)) if node}
    address = next((candidate for candidate in network.node_addresses() if candidate not in taken), None)
    if address is None:
        raise NodeError(f"the node network {network.network} has no free address left")

    paths = certificates.ensure_credentials(home, config.name, (name,), pod_api_hosts(config))
    os.makedirs(directory, mode=0o700)
    node = NodeConfig(name=name, cluster_name=config.name, server=api_server_url(config), address=address,
                      netns="", max_pods=max_pods or config.max_pods)
    try:
        _write_private(os.path.join(directory, NODE_TOKEN), certificates.token_of(paths, certificates.node_user(name)))
        shutil.copyfile(paths.ca_certificate, os.path.join(directory, NODE_CA))
        node.netns = network.add_node(name, address)
        _write_private(os.path.join(directory, NODE_CONFIG), json.dumps(asdict(node), indent=2))
        process = _launch(directory, node, config)
        _wait_ready(client, name, process, directory)
    except BaseException:
        _remove_local_node(home, config, name)
        raise
    pod_cidr = client.get("nodes", name).spec.pod_cidr
    return f"node/{name} added: address {address} on {network.bridge}, pod CIDR {pod_cidr}, pid {process.pid}"


def _launch(directory: str, node: NodeConfig, config: ClusterConfig) -> subprocess.Popen:
    """`join` as a detached process in the node's namespace (it enters it itself, first thing)."""
    command = [sys.executable, "-m", "minikube_py.nodes", "join", "--server", node.server,
               "--token-file", os.path.join(directory, NODE_TOKEN),
               "--certificate-authority", os.path.join(directory, NODE_CA), "--name", node.name,
               "--home", directory, "--netns", node.netns, "--cluster", config.name, "--max-pods", str(node.max_pods),
               "--node-lease-duration", str(node_lease_duration(config))]
    # This copy of minikube_py, whatever the working directory (as the daemon and supervisor run theirs).
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")])))
    with open(os.path.join(directory, NODE_LOG), "ab") as log_file, open(os.devnull, "rb") as devnull:
        return subprocess.Popen(command, stdin=devnull, stdout=log_file, stderr=log_file, start_new_session=True,
                                close_fds=True, cwd="/", env=environment)


def _wait_ready(client, name: str, process: subprocess.Popen, directory: str) -> None:
    from minikube_py.api import errors

    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NodeError(f"the agent of node {name} exited with status {process.returncode} while starting; the "
                            f"end of {directory}/{NODE_LOG}:\n{_tail(os.path.join(directory, NODE_LOG), 15)}")
        try:
            if _is_ready(client.get("nodes", name)):
                return
        except errors.NotFound:
            pass
        time.sleep(0.1)
    raise NodeError(f"node {name} did not become Ready within {READY_TIMEOUT_SECONDS:.0f}s; see {directory}/{NODE_LOG}")


def _is_ready(node) -> bool:
    return any(condition.type == "Ready" and condition.status == "True" for condition in node.status.conditions or [])


def remove_node(home: str, name: str, drain: bool = True) -> str:
    """Drain node `name`, stop its agent, delete the Node and remove what it had on this host."""
    from minikube_py.api import errors

    home = os.path.abspath(home)
    config = _cluster(home)
    client = _admin_client(home)
    if name == config.node_name:
        raise NodeError(f"node {name!r} is the daemon's own node; it goes with the cluster (minikube-py stop)")
    try:
        client.get("nodes", name)
        known = True
    except errors.NotFound:
        known = False
    if not known and name not in local_node_names(home):
        raise NodeError(f'node "{name}" not found')
    evicted = _drain(client, name) if known and drain else 0
    _remove_local_node(home, config, name)
    for resource, namespace in (("nodes", None), ("leases", "kube-node-lease")):
        try:
            client.delete(resource, name, namespace)
        except errors.NotFound:
            pass
    return f"node/{name} removed" + (f" ({evicted} pods deleted)" if evicted else "")


def _drain(client, name: str) -> int:
    """kubectl drain's effect: cordon, delete the node's pods, wait until its agent stopped them."""
    from minikube_py.api import errors

    client.patch("nodes", name, {"spec": {"unschedulable": True}})
    pods, _ = client.list("pods", field_selector=f"spec.nodeName={name}")
    for pod in pods:
        try:
            client.delete("pods", pod.metadata.name, pod.metadata.namespace)
        except errors.NotFound:
            pass
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if not client.list("pods", field_selector=f"spec.nodeName={name}")[0]:
            break
        time.sleep(0.2)
    return len(pods)


def _node_pid(directory: str) -> int | None:
    try:
        with open(os.path.join(directory, NODE_PID)) as file:
            pid = int(file.read().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _process_running(pid) else None


NODE_STOP_REQUEST = "stop-request.json"


def signal_local_nodes(home: str, grace_period: float | None = None) -> None:
    """Ask every node process on this host to stop (each stops its pods, with `grace_period` if
    given, then its runtime)."""
    for name in local_node_names(home):
        directory = node_home(home, name)
        pid = _node_pid(directory)
        if pid is not None:
            _write_private(os.path.join(directory, NODE_STOP_REQUEST), json.dumps({"gracePeriodSeconds": grace_period}))
            os.kill(pid, signal.SIGTERM)


def _take_stop_request(home: str) -> float | None:
    path = os.path.join(home, NODE_STOP_REQUEST)
    try:
        with open(path) as file:
            request = json.load(file)
        os.unlink(path)
    except (FileNotFoundError, ValueError):
        return None
    grace = request.get("gracePeriodSeconds")
    return float(grace) if isinstance(grace, (int, float)) else None


def _remove_local_node(home: str, config: ClusterConfig, name: str) -> None:
    """Stop the node's process (it stops its pods and removes its runtime), undo whatever a killed
    process left (cgroups, supervisor, mounts), delete its namespace and link, files and token."""
    from minikube_py.apiserver import certificates
    from minikube_py.runtime.network import in_network_namespace
    from minikube_py.runtime.node_network import node_netns_path
    from minikube_py.runtime.runtime import LinuxRuntime

    directory = node_home(home, name)
    pid = _node_pid(directory)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while time.monotonic() < deadline and _process_running(pid):
            time.sleep(0.05)
        if _process_running(pid):
            os.kill(pid, signal.SIGKILL)
    netns = node_netns_path(config.name, name)
    if os.path.isdir(directory):
        # Only to remove what is left: the pod range does not matter here.
        runtime = LinuxRuntime(config.name, directory, config.pod_cidr, cgroup_parent=node_cgroup(config.name, name))
        if os.path.exists(netns):
            in_network_namespace(netns, lambda: runtime.shutdown(remove_all=True))
        else:
            runtime.shutdown(remove_all=True)
    network = _node_network(config)
    if network is not None:
        network.remove_node(name)
        if not network.node_names():
            network.remove_all()
    shutil.rmtree(directory, ignore_errors=True)
    certificates.remove_token(certificates.Paths(home), certificates.node_user(name))


def node_cgroup(cluster_name: str, node_name: str) -> str:
    return f"minikube-py-{cluster_name}-{node_name}"


def remove_local_nodes(home: str, config: ClusterConfig) -> None:
    """`stop`: every node on this host goes (no drain: their pods go with the cluster); waits for
    each node's process, which `signal_local_nodes` asked to stop."""
    for name in local_node_names(home):
        try:
            _remove_local_node(home, config, name)
        except Exception as error:  # one node's leftovers must not keep the others
            print(f"warning: removing node {name}: {error}", file=sys.stderr)
    network = _node_network(config)
    if network is not None:
        network.remove_all()


def stop_cluster(home: str, grace_period: float | None = None) -> int:
    """`stop`: the nodes on this host stop their pods (all at once) while the API server still
    answers them, then the daemon stops, and what is left of the nodes goes with it."""
    from minikube_py import daemon

    signal_local_nodes(home, grace_period)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    names = local_node_names(home)
    for name in names:
        pid = _node_pid(node_home(home, name))
        while pid is not None and time.monotonic() < deadline and _process_running(pid):
            time.sleep(0.05)
    _forget_nodes(home, names)
    return daemon.stop(home, grace_period, remove_nodes=lambda config: remove_local_nodes(home, config))


def _forget_nodes(home: str, names: list[str]) -> None:
    """The added nodes go with `stop`: their Node objects too (the pod garbage collector then
    deletes their pods and controllers recreate them where nodes are, after the next start)."""
    from minikube_py.api import errors

    if not names or _read_pid(home) is None:
        return
    client = _admin_client(home)
    for name in names:
        try:
            client.delete("nodes", name)
        except errors.ApiError:
            pass  # gone already, or the API is not answering: the objects stay, harmlessly NotReady


# ---------------------------------------------------------------------------------------------
# join: the node process


def cluster_name_of(ca_file: str) -> str:
    """The cluster's name from its CA's common name (`minikube-py-<cluster>-ca`)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    with open(ca_file, "rb") as file:
        certificate = x509.load_pem_x509_certificate(file.read())
    common_name = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    match = re.fullmatch(r"minikube-py-(.+)-ca", str(common_name))
    if not match:
        raise NodeError(f"{ca_file}: not a minikube-py cluster CA (common name {common_name!r}); pass --cluster NAME")
    return match.group(1)


def connect(server: str, token: str, ca_file: str):
    from minikube_py.client.api import ApiClient
    from minikube_py.client.transport import HttpTransport

    try:
        tls = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as error:
        raise NodeError(f"--certificate-authority {ca_file}: {error}") from None
    return ApiClient(HttpTransport(url=server, token=token, tls=tls))


def check_identity(client, name: str, lease_duration: float, now: float) -> None:
    """Refuse to run as a node that another agent still runs: its Lease renewed within its duration
    (by the API server's clock as this node reads it), and the token must be this node's."""
    from minikube_py.api import errors
    from minikube_py.api.times import parse_time

    try:
        lease = client.get("leases", name, "kube-node-lease")
    except errors.NotFound:
        return
    except errors.ApiError as error:
        if error.code in (401, 403):
            raise NodeError(f"the API server refused this node's credentials: {error.message}. Use the token of "
                            f"system:node:{name} (node add writes it in the node's home)") from None
        raise
    renewed = lease.spec.renew_time
    if renewed and now - parse_time(renewed) < lease_duration:
        raise NodeError(f'a node named "{name}" is already running: its Lease kube-node-lease/{name} was renewed '
                        f"{max(0.0, now - parse_time(renewed)):.0f}s ago; stop it or pick another name")


class KubeletPods:
    """What the node's kubelet server reads of the cluster: the pods bound to it, from its agent's
    cache (the server's routes look a pod up before streaming from it), and its resource metrics."""

    token_issuer = None

    def __init__(self, agent, clock):
        self.agent = agent
        self.clock = clock

    def get(self, resource: str, namespace: str | None, name: str) -> dict:
        from minikube_py.api import errors

        pod = self.agent.pods.get(f"{namespace}/{name}") if resource == "pods" else None
        if pod is None:
            raise errors.NotFound(f'pods "{name}" not found on node {self.agent.node_name}')
        return pod.to_dict()

    def list_metrics(self, resource: str, namespace: str | None = None, label_selector: str | None = None,
                     field_selector: str | None = None) -> dict:
        """This node's own figures for the API server's Metrics API (`metrics.k8s.io` paths on the
        kubelet port, as metrics-server scrapes each kubelet): the node's NodeMetrics ("nodes") or
        its running pods' PodMetrics ("pods"), without labels; the API server adds them and applies
        the selectors."""
        from minikube_py.apiserver.resource_metrics import KINDS, GROUP_VERSION

        if resource == "nodes":
            node = self.agent.node_metrics()
            found = [] if node is None else [node]
        else:
            found = [pod for pod in self.agent.pod_metrics()
                     if namespace is None or pod.metadata.namespace == namespace]
        return {"kind": f"{KINDS[resource]}List", "apiVersion": GROUP_VERSION, "metadata": {},
                "items": [metrics.to_dict() for metrics in found]}


def kubelet_tls(home: str, cluster_name: str, name: str, address: str, ca_file: str):
    """The kubelet server's TLS: a self-signed certificate for the node's address (kubelet's
    default), and the cluster CA for the clients it accepts (the API server's admin certificate)."""
    from minikube_py.apiserver import certificates
    from minikube_py.apiserver.server import TlsConfig

    os.makedirs(os.path.join(home, "pki"), mode=0o700, exist_ok=True)
    paths = certificates.Paths(home)
    certificates.write_self_signed_serving(paths.file("kubelet.crt"), paths.file("kubelet.key"),
                                           f"minikube-py-{cluster_name}-{name}-kubelet", (address, name))
    return TlsConfig(paths.file("kubelet.crt"), paths.file("kubelet.key"), ca_file, paths.file("no-tokens.csv"))


def _wait_for_pod_cidr(client, name: str, stopping: threading.Event) -> str:
    deadline = time.monotonic() + POD_CIDR_TIMEOUT_SECONDS
    while time.monotonic() < deadline and not stopping.is_set():
        cidr = client.get("nodes", name).spec.pod_cidr
        if cidr:
            return cidr
        stopping.wait(0.2)
    raise NodeError(f"node {name} got no spec.podCIDR within {POD_CIDR_TIMEOUT_SECONDS:.0f}s: the control plane "
                    "gives one only when its pod CIDR has room for more nodes (see its node-ipam-controller events)")


def serve_node(home: str, server: str, token: str, ca_file: str, name: str, netns: str | None = None,
               cluster_name: str | None = None, max_pods: int = 110,
               lease_duration: int = NODE_LEASE_DURATION_SECONDS) -> int:
    """Run node `name` against the API at `server` until SIGTERM/SIGINT, then stop its pods and
    remove its runtime. Returns a process exit code."""
    from minikube_py.runtime.node_network import enter_namespace

    if netns:
        enter_namespace(netns)  # before any thread starts: every thread of this process is in it
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    home = os.path.abspath(home)
    os.makedirs(home, mode=0o700, exist_ok=True)
    running = _node_pid(home)
    if running is not None:
        print(f"error: {home} is the home of a node process that runs (pid {running}); give another --node-home",
              file=sys.stderr)
        return 1
    _write_private(os.path.join(home, NODE_PID), str(os.getpid()))  # first: `stop` finds it from now on
    try:
        return _run_node(home, server, token, ca_file, name, cluster_name, max_pods, lease_duration)
    finally:
        try:
            os.unlink(os.path.join(home, NODE_PID))
        except FileNotFoundError:
            pass


def _run_node(home: str, server: str, token: str, ca_file: str, name: str, cluster_name: str | None,
              max_pods: int, lease_duration: int) -> int:
    from minikube_py.agent import AgentConfig, NodeAgent
    from minikube_py.agent.ipam import HostLocalIpam
    from minikube_py.agent.localpath import LocalPathProvisioner
    from minikube_py.agent.node import host_ip, node_labels
    from minikube_py.agent.remote_proxy import KUBELET_PORT
    from minikube_py.agent.routes import NodeRoutes
    from minikube_py.api import errors
    from minikube_py.api.core import Node
    from minikube_py.apiserver.server import ApiHttpServer
    from minikube_py.clock import Clock
    from minikube_py.dns.server import DNS_PORT, ClusterDnsServer
    from minikube_py.proxy.proxy import ServiceProxy
    from minikube_py.runtime.node_network import sync_routes
    from minikube_py.runtime.runtime import LinuxRuntime
    import ipaddress

    clock = Clock()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    try:
        cluster_name = cluster_name or cluster_name_of(ca_file)
        client = connect(server, token, ca_file)
        check_identity(client, name, lease_duration, clock.now())
        try:
            client.get("nodes", name)
        except errors.NotFound:
            client.create(Node.model_validate({"metadata": {"name": name, "labels": node_labels(name)}}))
        pod_cidr = _wait_for_pod_cidr(client, name, stopping)
    except NodeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except errors.ApiError as error:
        print(f"error: the API server at {server} refused node {name}: {error.message}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: cannot reach the API server at {server}: {error}", file=sys.stderr)
        return 1
    network = ipaddress.ip_network(pod_cidr)
    gateway = str(next(network.hosts()))
    log.info("node %s of cluster %s: pod CIDR %s, API at %s", name, cluster_name, pod_cidr, server)

    runtime = LinuxRuntime(cluster_name, home, pod_cidr, cgroup_parent=node_cgroup(cluster_name, name))
    runtime.start()
    agent = NodeAgent(client, runtime, node_name=name, ipam=HostLocalIpam(os.path.join(home, "pod-ips"), pod_cidr),
                      clock=clock, config=AgentConfig(home=home, cluster_name=cluster_name, gateway=gateway,
                                                      prefix_len=network.prefixlen, max_pods=max_pods,
                                                      cluster_dns=gateway, node_lease_duration=lease_duration))
    # kube-proxy's --detect-local-mode=NodeCIDR: traffic from this node's pod CIDR is local.
    service_proxy = ServiceProxy(client, cluster_name, pod_cidr, name, host_ip(), bridge=f"mkpy-{cluster_name}",
                                 clock=clock, bridge_address=gateway, bridge_ports=(DNS_PORT,),
                                 publish_load_balancers=False)
    cluster_dns = ClusterDnsServer(client, gateway)
    node_address = host_ip()
    kubelet = ApiHttpServer(KubeletPods(agent, clock), os.path.join(home, "kubelet.sock"), node_proxy=agent,
                            tls=kubelet_tls(home, cluster_name, name, node_address, ca_file),
                            pod_listener=(node_address, KUBELET_PORT))
    # In its own namespace every route of ours is this node's: nothing else to spare.
    routes = NodeRoutes(client, name, lambda wanted: sync_routes("0.0.0.0/0", wanted), clock=clock)
    # The local-path volumes of claims whose pods are scheduled here, under this node's home.
    provisioner = LocalPathProvisioner(client, name, os.path.join(home, "storage"), clock, takes_unselected=False)

    agent.start()
    kubelet.start()
    provisioner.run()
    service_proxy.run()
    cluster_dns.start()
    routes.run()
    log.info("node %s ready", name)

    stopping.wait()
    grace_period = _take_stop_request(home)
    log.info("node %s stopping: stopping its pods (grace %s) and removing its runtime", name,
             "as each pod says" if grace_period is None else f"{grace_period}s")
    routes.stop()
    provisioner.stop()
    kubelet.stop()
    service_proxy.stop()
    cluster_dns.stop()
    agent.stop(stop_pods=True, grace_period=grace_period)
    runtime.shutdown(remove_all=True)
    log.info("node %s stopped", name)
    return 0


def read_token(token: str | None, token_file: str | None) -> str:
    if token_file:
        try:
            with open(token_file) as file:
                return file.read().strip()
        except OSError as error:
            raise NodeError(f"--token-file {token_file}: {error.strerror}") from None
    if not token:
        raise NodeError("join needs the node's token: --token T or --token-file FILE")
    return token


def main(argv: list[str] | None = None) -> int:
    """`python -m minikube_py.nodes join ...`: how `node add` starts a node's process."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m minikube_py.nodes")
    parser.add_argument("command", choices=["join"])
    parser.add_argument("--server", required=True)
    parser.add_argument("--token")
    parser.add_argument("--token-file")
    parser.add_argument("--certificate-authority", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--home", required=True)
    parser.add_argument("--netns")
    parser.add_argument("--cluster")
    parser.add_argument("--max-pods", type=int, default=110)
    parser.add_argument("--node-lease-duration", type=int, default=NODE_LEASE_DURATION_SECONDS)
    arguments = parser.parse_args(argv)
    try:
        token = read_token(arguments.token, arguments.token_file)
    except NodeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return serve_node(arguments.home, arguments.server, token, arguments.certificate_authority, arguments.name,
                      arguments.netns, arguments.cluster, arguments.max_pods, arguments.node_lease_duration)


if __name__ == "__main__":
    sys.exit(main())
