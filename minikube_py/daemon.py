"""The minikube-py daemon: one process holding the whole cluster (k3s style).

`start` launches it detached and returns once the API answers and the node is Ready; `serve`
is the daemon itself: the sqlite store, the API server on a unix socket (and, with `--port`, a
TLS listener on loopback that asks every request for a credential), the controllers, the
scheduler and the node agent, wired together in one process. The cluster home is 0700: nothing
in it (store, credentials, container directories) is reachable by another local user. With a
port, `start` also makes the cluster's certificates and tokens and writes a kubeconfig.
Containers are not children of this process but of the runtime's supervisor, so a crash or
`kill -9` of the daemon loses no pod; `stop` stops every pod and removes every host resource the
cluster made.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Callable

from minikube_py.runtime.types import CLUSTER_NAME_PATTERN

if TYPE_CHECKING:  # imported where used: the CLI imports this module and must start fast
    from minikube_py.agent.ipam import HostLocalIpam
    from minikube_py.store import ObjectStore

DEFAULT_HOME = "/var/lib/minikube-py"
DEFAULT_NAME = "minikube"
DEFAULT_POD_CIDR = "10.244.0.0/16"
DEFAULT_SERVICE_CIDR = "10.96.0.0/12"  # kube-apiserver's --service-cluster-ip-range in kubeadm and minikube
STARTUP_TIMEOUT_SECONDS = 60.0
DEFAULT_API_SERVICE_PORT = 6443  # the `kubernetes` Service's target port when `--port` is not given
EVENT_TTL_SECONDS = 3600.0  # kube-apiserver's --event-ttl default
EVENT_EXPIRY_INTERVAL_SECONDS = 60.0
LEADER_ELECTION_LEASE = "minikube-py-controller-manager"  # in kube-system, as kube-controller-manager's

log = logging.getLogger("minikube_py.daemon")


@dataclass
class ClusterConfig:
    """What `start` was asked for; saved in the home so later commands and restarts agree."""

    name: str = DEFAULT_NAME
    pod_cidr: str = DEFAULT_POD_CIDR
    service_cidr: str = DEFAULT_SERVICE_CIDR
    service_node_port_range: str = "30000-32767"  # kube-apiserver's --service-node-port-range
    port: int | None = None
    node_name: str = field(default_factory=socket.gethostname)
    restart_backoff: tuple[float, float] = (10.0, 300.0)
    pids_limit: int = 1024
    max_pods: int = 110  # kubelet's --max-pods: the Node's pods capacity
    terminated_pod_gc_threshold: int = 12500  # kube-controller-manager's flag; 0 turns it off
    seccomp_default: bool = True  # containers with no seccompProfile get RuntimeDefault (kubelet --seccomp-default)
    store: str = "sqlite"  # or etcd://[https://]HOST:PORT[,...] (minikube_py.store.backends)
    # kube-apiserver's flags for an etcd on https:// members: its CA, and this client's certificate and key.
    etcd_cafile: str | None = None
    etcd_certfile: str | None = None
    etcd_keyfile: str | None = None
    leader_elect: bool = False  # controllers and scheduler only while holding the kube-system Lease
    # kube-controller-manager's --leader-elect-lease-duration, -renew-deadline and -retry-period.
    leader_elect_lease_duration: float = 15.0
    leader_elect_renew_deadline: float = 10.0
    leader_elect_retry_period: float = 2.0
    # Another API server (and controller manager) of a cluster on etcd, with no node of its own.
    control_plane_only: bool = False
    metric_resolution: float = 15.0  # seconds between the agent's cgroup readings (metrics-server's --metric-resolution)
    hpa_sync_period: float = 15.0  # kube-controller-manager's --horizontal-pod-autoscaler-sync-period
    image_gc_high_threshold: int = 85  # kubelet's imageGCHighThresholdPercent: disk use that starts image GC
    image_gc_low_threshold: int = 80  # kubelet's imageGCLowThresholdPercent: where image GC stops
    # kube-controller-manager's --node-cidr-mask-size: each node's slice of the pod CIDR (None: a
    # slice twice as large as --max-pods, at most /24; a pod CIDR too small for four slices is the
    # daemon's node's alone, and no node can be added).
    node_cidr_mask_size: int | None = None
    node_monitor_grace_period: float = 40.0  # kube-controller-manager's flag: NotReady after this long
    # kube-apiserver's DefaultTolerationSeconds admission: how long pods stay on a not-ready /
    # unreachable node before the taint eviction controller evicts them.
    default_not_ready_toleration_seconds: int = 300
    default_unreachable_toleration_seconds: int = 300
    node_eviction_rate: float = 0.1  # kube-controller-manager's --node-eviction-rate: nodes/s tainted NoExecute

    @staticmethod
    def load(home: str) -> "ClusterConfig | None":
        try:
            with open(os.path.join(home, "config.json")) as file:
                data = json.load(file)
        except FileNotFoundError:
            return None
        data["restart_backoff"] = tuple(data.get("restart_backoff", (10.0, 300.0)))
        return ClusterConfig(**data)

    def save(self, home: str) -> None:
        make_private_home(home)
        temporary = os.path.join(home, "config.json.tmp")
        with open(temporary, "w") as file:
            json.dump(asdict(self), file, indent=2)
        os.replace(temporary, os.path.join(home, "config.json"))


class ConfigError(ValueError):
    pass


NODE_CIDR_MASK_MAX = 24  # kube-controller-manager's --node-cidr-mask-size default for IPv4
NODE_LEASE_DURATION_SECONDS = 40  # kubelet's nodeLeaseDurationSeconds


def node_lease_duration(config: ClusterConfig) -> int:
    """The Lease duration the cluster's agents write (they renew every quarter of it): kubelet's
    40 s, or the grace period when that is shorter, so a node renews several times within it."""
    return max(1, min(NODE_LEASE_DURATION_SECONDS, int(config.node_monitor_grace_period)))


def node_cidr_mask_size(config: ClusterConfig) -> int | None:
    """The prefix length of each node's slice of the pod CIDR, or None when the pod CIDR is too
    small to share (it is then the daemon's node's alone, as before nodes could be added).

    Kubernetes sizes a node's range at about twice its max pods (110 pods: a /24). Four slices at
    least: the daemon's node, the node network (the last slice), and two more nodes."""
    prefix = ipaddress.ip_network(config.pod_cidr).prefixlen
    if config.node_cidr_mask_size is not None:
        mask = config.node_cidr_mask_size
    else:
        mask = min(NODE_CIDR_MASK_MAX, 32 - math.ceil(math.log2(2 * config.max_pods + 2)))
    return mask if mask - prefix >= 2 else None


def node_pod_cidr(config: ClusterConfig) -> str:
    """The daemon's own node's pod CIDR: the first slice, or the whole pod CIDR."""
    mask = node_cidr_mask_size(config)
    if mask is None:
        return config.pod_cidr
    return str(next(ipaddress.ip_network(config.pod_cidr).subnets(new_prefix=mask)))


def make_private_home(home: str) -> None:
    """The cluster home exists and only its owner (root) may enter it."""
    os.makedirs(home, mode=0o700, exist_ok=True)
    os.chmod(home, 0o700)


def kubeconfig_path(home: str) -> str:
    return os.path.join(home, "kubeconfig")


def pod_api_hosts(config: ClusterConfig) -> tuple[str, ...]:
    """Where pods reach the API: the bridge address and the `kubernetes` Service's IP and names
    (the serving certificate names them all, as kube-apiserver's does)."""
    bridge_address = str(next(ipaddress.ip_network(config.pod_cidr).hosts()))
    service_ip = str(ipaddress.ip_network(config.service_cidr).network_address + 1)  # the allocator's first
    names = ("kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local")
    return (bridge_address, service_ip, *names)


def ensure_access(home: str, config: ClusterConfig) -> None:
    """The cluster's CA, serving certificate and tokens (made once, refreshed when stale: pods
    reach the API over TLS through the `kubernetes` Service) and, with a port, its own kubeconfig
    in the home."""
    from minikube_py.apiserver import certificates
    from minikube_py.client import kubeconfig

    paths = certificates.ensure_credentials(home, config.name, (config.node_name,), pod_api_hosts(config))
    if config.port is None:
        return
    with open(paths.ca_certificate, "rb") as file:
        ca = file.read()
    document = kubeconfig.build(config.name, f"https://127.0.0.1:{config.port}", ca,
                                certificates.token_of(paths, certificates.ADMIN_USER))
    kubeconfig.write(kubeconfig_path(home), document)


def merge_user_kubeconfig(home: str, config: ClusterConfig) -> str | None:
    """Merge the cluster's context into $KUBECONFIG / ~/.kube/config as the current context, as
    minikube does; returns the file written (None without a port, or if it could not be)."""
    if config.port is None:
        return None
    import yaml

    from minikube_py.client import kubeconfig

    target = kubeconfig.user_kubeconfig_path()
    try:
        kubeconfig.merge(target, kubeconfig.load(kubeconfig_path(home)))
    except (OSError, ValueError, yaml.YAMLError) as error:
        print(f"warning: could not merge the context {config.name!r} into {target}: {error}; "
              f"use {kubeconfig_path(home)} (minikube-py kubeconfig)", file=sys.stderr)
        return None
    return target


def parse_restart_backoff(text: str) -> tuple[float, float]:
    """`1s:10s` -> (1.0, 10.0); plain numbers are seconds; `ms` and `m` suffixes are accepted."""

    def seconds(part: str) -> float:
        match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", part.strip())
        if not match:
            raise ConfigError(f"--restart-backoff: {part!r} is not a duration such as 500ms, 10s or 5m")
        value, unit = float(match.group(1)), match.group(2) or "s"
        return value / 1000 if unit == "ms" else value * 60 if unit == "m" else value

    parts = text.split(":")
    if len(parts) != 2:
        raise ConfigError(f"--restart-backoff: expected INITIAL:MAX such as 1s:10s, got {text!r}")
    initial, maximum = seconds(parts[0]), seconds(parts[1])
    if initial <= 0 or maximum < initial:
        raise ConfigError(f"--restart-backoff: need 0 < INITIAL <= MAX, got {text!r}")
    return initial, maximum


def _ipv4_network(flag: str, text: str, example: str) -> ipaddress.IPv4Network:
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as error:
        raise ConfigError(f"{flag}: {text!r} is not a network such as {example} ({error})") from None
    if not isinstance(network, ipaddress.IPv4Network) or network.prefixlen > 28:
        raise ConfigError(f"{flag}: {text} must be an IPv4 network of /28 or larger")
    return network


def validate_config(config: ClusterConfig) -> None:
    if not CLUSTER_NAME_PATTERN.fullmatch(config.name):
        raise ConfigError(
            f"--name: {config.name!r} is not a valid cluster name: use 1 to 10 lowercase letters and "
            "digits, starting with a letter (it prefixes host interface names, limited to 15 characters)"
        )
    network = _ipv4_network("--pod-cidr", config.pod_cidr, "10.244.0.0/16")
    services = _ipv4_network("--service-cidr", config.service_cidr, "10.96.0.0/12")
    if services.overlaps(network):
        raise ConfigError(f"--service-cidr: {config.service_cidr} overlaps the pod CIDR {config.pod_cidr}; "
                          "pick ranges that do not overlap")
    from minikube_py.apiserver.service_allocation import parse_node_port_range

    try:
        parse_node_port_range(config.service_node_port_range)
    except ValueError as error:
        raise ConfigError(f"--service-node-port-range: {error}") from None
    if config.port is not None and not 1 <= config.port <= 65535:
        raise ConfigError(f"--port: {config.port} is not a TCP port (1-65535)")
    if config.pids_limit < 1:
        raise ConfigError(f"--pids-limit: {config.pids_limit} must be at least 1")
    if not 1 <= config.max_pods <= 2**31 - 1:
        raise ConfigError(f"--max-pods: {config.max_pods} must be between 1 and 2147483647")
    mask = config.node_cidr_mask_size
    if mask is not None:
        if not network.prefixlen + 2 <= mask <= 30:
            raise ConfigError(f"--node-cidr-mask-size: {mask} must be between {network.prefixlen + 2} (four slices of "
                              f"the pod CIDR {config.pod_cidr}) and 30")
        if 2 ** (32 - mask) - 2 < config.max_pods:
            raise ConfigError(f"--node-cidr-mask-size: a /{mask} holds {2 ** (32 - mask) - 2} pod IPs, fewer than "
                              f"--max-pods {config.max_pods}; use a smaller mask size")
    if config.node_monitor_grace_period <= 0:
        raise ConfigError(f"--node-monitor-grace-period: {config.node_monitor_grace_period} must be more than 0 seconds")
    for flag, value in (("--default-not-ready-toleration-seconds", config.default_not_ready_toleration_seconds),
                        ("--default-unreachable-toleration-seconds", config.default_unreachable_toleration_seconds)):
        if value < 0:
            raise ConfigError(f"{flag}: {value} must be 0 or more seconds")
    if config.control_plane_only and not (config.store.startswith("etcd://") and config.leader_elect):
        raise ConfigError("--control-plane-only: another API server of a cluster shares its etcd store and takes "
                          "turns with the others at running the controllers: give --store etcd://... and "
                          "--leader-elect, as every other daemon of the cluster")
    try:
        leader_election_timings(config)
    except ValueError as error:
        raise ConfigError(f"--leader-elect-lease-duration, --leader-elect-renew-deadline, --leader-elect-retry-period: "
                          f"{error}") from None
    if not 0 <= config.node_eviction_rate <= 1000 or math.isnan(config.node_eviction_rate):
        raise ConfigError(f"--node-eviction-rate: {config.node_eviction_rate} must be between 0 (never taint a "
                          "lost node NoExecute) and 1000 nodes a second")
    try:
        store_spec(config)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    for flag, seconds in (("--metric-resolution", config.metric_resolution),
                          ("--hpa-sync-period", config.hpa_sync_period)):
        if not 0.1 <= seconds <= 86400:
            raise ConfigError(f"{flag}: {seconds}s must be between 0.1s and 24h")
    for flag, value in (("--image-gc-high-threshold", config.image_gc_high_threshold),
                        ("--image-gc-low-threshold", config.image_gc_low_threshold)):
        if not 0 <= value <= 100:
            raise ConfigError(f"{flag}: {value} must be a percentage of the disk between 0 and 100")
    if config.image_gc_low_threshold > config.image_gc_high_threshold:
        raise ConfigError(f"--image-gc-low-threshold: {config.image_gc_low_threshold} must not be above "
                          f"--image-gc-high-threshold ({config.image_gc_high_threshold})")
    if not 0 <= config.terminated_pod_gc_threshold <= 2**31 - 1:
        raise ConfigError(f"--terminated-pod-gc-threshold: {config.terminated_pod_gc_threshold} must be between "
                          "0 (off) and 2147483647")


def leader_election_timings(config: ClusterConfig):
    """The daemon's LeaderElectionTimings; raises ValueError unless retry < renew deadline < duration."""
    from minikube_py.client.leaderelection import LeaderElectionTimings

    return LeaderElectionTimings(config.leader_elect_lease_duration, config.leader_elect_renew_deadline,
                                 config.leader_elect_retry_period)


def store_spec(config: ClusterConfig):
    """The cluster's StoreSpec (--store and the --etcd-* TLS files); raises ValueError naming the flag."""
    from minikube_py.store.backends import parse_store_spec
    from minikube_py.store.etcd_endpoints import EtcdTLS

    return parse_store_spec(config.store, EtcdTLS(config.etcd_cafile, config.etcd_certfile, config.etcd_keyfile))


def store_unreachable(config: ClusterConfig) -> str | None:
    """Why the cluster's store cannot be used now (an etcd no member of which answers), or None."""
    from minikube_py.api.errors import ApiError
    from minikube_py.store.backends import probe

    try:
        probe(store_spec(config))
    except ApiError as error:
        return error.message
    return None


# ---------------------------------------------------------------------------------------------
# Commands used by the CLI: start, stop, status.


def _pid_file(home: str) -> str:
    return os.path.join(home, "daemon.pid")


def _read_pid(home: str) -> int | None:
    try:
        with open(_pid_file(home)) as file:
            pid = int(file.read().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            command_line = file.read()
    except FileNotFoundError:
        return None
    # The daemon runs as `python -m minikube_py.daemon serve` or `minikube-py start --foreground`.
    return pid if b"minikube" in command_line else None


def _api_answers(home: str) -> bool:
    from minikube_py.client.transport import HttpTransport

    try:
        transport = HttpTransport(socket_path=os.path.join(home, "api.sock"))
        transport.version()
        return True
    except Exception:
        return False


def _node_ready(home: str, node_name: str) -> bool:
    from minikube_py.client.transport import HttpTransport

    try:
        node = HttpTransport(socket_path=os.path.join(home, "api.sock")).get("nodes", None, node_name)
    except Exception:
        return False
    for condition in node.get("status", {}).get("conditions", []):
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def start(
    home: str,
    name: str | None = None,
    pod_cidr: str | None = None,
    service_cidr: str | None = None,
    service_node_port_range: str | None = None,
    port: int | None = None,
    node_name: str | None = None,
    foreground: bool = False,
    restart_backoff: str | None = None,
    pids_limit: int | None = None,
    max_pods: int | None = None,
    terminated_pod_gc_threshold: int | None = None,
    seccomp_default: bool | None = None,
    store: str | None = None,
    etcd_cafile: str | None = None,
    etcd_certfile: str | None = None,
    etcd_keyfile: str | None = None,
    leader_elect: bool | None = None,
    metric_resolution: float | None = None,
    hpa_sync_period: float | None = None,
    image_gc_high_threshold: int | None = None,
    image_gc_low_threshold: int | None = None,
    node_cidr_mask_size: int | None = None,
    node_monitor_grace_period: float | None = None,
    default_not_ready_toleration_seconds: int | None = None,
    default_unreachable_toleration_seconds: int | None = None,
    node_eviction_rate: float | None = None,
    leader_elect_lease_duration: float | None = None,
    leader_elect_renew_deadline: float | None = None,
    leader_elect_retry_period: float | None = None,
    control_plane_only: bool | None = None,
    certificates_from: str | None = None,
) -> int:
    """Start the cluster in `home`; returns a process exit code."""
    home = os.path.abspath(home)
    config = ClusterConfig.load(home) or ClusterConfig()
    running = _read_pid(home)
    if running is not None:
        print(f'minikube-py: cluster "{config.name}" is already running (pid {running}) in {home}')
        _announce_kubeconfig(home, config)
        return 0
    config.name = name or config.name
    config.pod_cidr = pod_cidr or config.pod_cidr
    config.service_cidr = service_cidr or config.service_cidr
    config.service_node_port_range = service_node_port_range or config.service_node_port_range
    config.port = port if port is not None else config.port
    config.node_name = node_name or config.node_name
    try:
        if restart_backoff:
            config.restart_backoff = parse_restart_backoff(restart_backoff)
        if pids_limit is not None:
            config.pids_limit = pids_limit
        if max_pods is not None:
            config.max_pods = max_pods
        if terminated_pod_gc_threshold is not None:
            config.terminated_pod_gc_threshold = terminated_pod_gc_threshold
        if seccomp_default is not None:
            config.seccomp_default = seccomp_default
        if store is not None:
            config.store = store
        for field_name, path in (("etcd_cafile", etcd_cafile), ("etcd_certfile", etcd_certfile),
                                 ("etcd_keyfile", etcd_keyfile)):
            if path is not None:
                setattr(config, field_name, os.path.abspath(path) if path else None)
        if leader_elect is not None:
            config.leader_elect = leader_elect
        if metric_resolution is not None:
            config.metric_resolution = metric_resolution
        if hpa_sync_period is not None:
            config.hpa_sync_period = hpa_sync_period
        if image_gc_high_threshold is not None:
            config.image_gc_high_threshold = image_gc_high_threshold
        if image_gc_low_threshold is not None:
            config.image_gc_low_threshold = image_gc_low_threshold
        if node_cidr_mask_size is not None:
            config.node_cidr_mask_size = node_cidr_mask_size
        if node_monitor_grace_period is not None:
            config.node_monitor_grace_period = node_monitor_grace_period
        if default_not_ready_toleration_seconds is not None:
            config.default_not_ready_toleration_seconds = default_not_ready_toleration_seconds
        if default_unreachable_toleration_seconds is not None:
            config.default_unreachable_toleration_seconds = default_unreachable_toleration_seconds
        if node_eviction_rate is not None:
            config.node_eviction_rate = node_eviction_rate
        if leader_elect_lease_duration is not None:
            config.leader_elect_lease_duration = leader_elect_lease_duration
        if leader_elect_renew_deadline is not None:
            config.leader_elect_renew_deadline = leader_elect_renew_deadline
        if leader_elect_retry_period is not None:
            config.leader_elect_retry_period = leader_elect_retry_period
        if control_plane_only is not None:
            config.control_plane_only = control_plane_only
        validate_config(config)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    unreachable = store_unreachable(config)
    if unreachable is not None:
        print(f"error: --store {config.store}: {unreachable}", file=sys.stderr)
        return 1
    if os.geteuid() != 0:
        print("error: minikube-py start needs root: pods are made of namespaces, cgroups, veths and "
              "mounts. Run it with sudo.", file=sys.stderr)
        return 1
    config.save(home)
    try:
        if certificates_from is not None:
            copy_certificates(certificates_from, home)
        ensure_access(home, config)
    except OSError as error:
        print(f"error: could not write the cluster's certificates and kubeconfig in {home}: {error}",
              file=sys.stderr)
        return 1
    if foreground:
        _announce_kubeconfig(home, config)
        return serve(home)

    log_path = os.path.join(home, "daemon.log")
    with open(log_path, "ab") as log_file, open(os.devnull, "rb") as devnull:
        process = subprocess.Popen(
            [sys.executable, "-m", "minikube_py.daemon", "serve", "--home", home],
            stdin=devnull, stdout=log_file, stderr=log_file,
            start_new_session=True, close_fds=True,
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            print(f"error: the minikube-py daemon exited with status {process.returncode} while "
                  f"starting; the end of {log_path}:", file=sys.stderr)
            print(_tail(log_path, 20), file=sys.stderr)
            return 1
        if _api_answers(home) and (config.control_plane_only or _node_ready(home, config.node_name)):
            where = os.path.join(home, "api.sock") + (f" and https://127.0.0.1:{config.port}" if config.port else "")
            ready = "control plane only" if config.control_plane_only else f'node "{config.node_name}" Ready'
            print(f'minikube-py: cluster "{config.name}" is running (pid {process.pid}); {ready}; API at {where}')
            _announce_kubeconfig(home, config)
            return 0
        time.sleep(0.05)
    print(f"error: the daemon did not become ready within {STARTUP_TIMEOUT_SECONDS:.0f}s; see {log_path}",
          file=sys.stderr)
    return 1


def copy_certificates(source_home: str, home: str) -> None:
    """`start --certificates-from`: another API server of a cluster serves with the cluster's CA,
    tokens and ServiceAccount signing key, taken from a home of the cluster on this host, as
    kubeadm's `join --control-plane` copies the control plane's certificates."""
    import shutil

    from minikube_py.apiserver import certificates

    source = certificates.Paths(os.path.abspath(source_home)).directory
    if not os.path.isfile(os.path.join(source, "ca.crt")):
        raise OSError(f"--certificates-from: {source_home} holds no cluster certificates ({source}/ca.crt)")
    target = certificates.Paths(home).directory
    os.makedirs(target, mode=0o700, exist_ok=True)
    for name in os.listdir(source):
        if os.path.isfile(os.path.join(source, name)):
            shutil.copy2(os.path.join(source, name), os.path.join(target, name))
            os.chmod(os.path.join(target, name), 0o600)


def _announce_kubeconfig(home: str, config: ClusterConfig) -> None:
    merged = merge_user_kubeconfig(home, config)
    if merged is not None:
        print(f'minikube-py: kubectl is now configured to use "{config.name}" (context in {merged})')


def _stop_request_file(home: str) -> str:
    return os.path.join(home, "stop-request.json")


def stop(home: str, grace_period: float | None = None,
         remove_nodes: Callable[[ClusterConfig], None] | None = None) -> int:
    """Stop every pod and the daemon, and remove every host resource of the cluster.

    Pods get their own terminationGracePeriodSeconds unless `grace_period` replaces it.
    `remove_nodes` removes the nodes added on this host once the daemon is gone (nodes.stop_cluster).
    """
    home = os.path.abspath(home)
    config = ClusterConfig.load(home)
    if config is None:
        print(f"minikube-py: no cluster in {home}")
        return 0
    if grace_period is not None and grace_period < 0:
        print(f"error: --grace-period: {grace_period} must be 0 or more seconds", file=sys.stderr)
        return 1
    pid = _read_pid(home)
    if pid is not None:
        with open(_stop_request_file(home), "w") as file:
            json.dump({"gracePeriodSeconds": grace_period}, file)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 90
        # Until the process is gone, not just its pid file: the interpreter's own shutdown comes
        # after the file is removed, and `stop` promises nothing of the cluster is left running.
        while time.monotonic() < deadline and _process_running(pid):
            time.sleep(0.05)
        if _process_running(pid):
            print(f"error: the daemon (pid {pid}) did not stop within 90s; see {home}/daemon.log",
                  file=sys.stderr)
            return 1
    if config.control_plane_only:  # it made nothing on the host, and its cluster's resources are another daemon's
        print(f'minikube-py: control plane of cluster "{config.name}" in {home} stopped')
        return 0
    if remove_nodes is not None:
        remove_nodes(config)
    # Whatever the daemon could not undo (it may have been killed), undo from here.
    _remove_host_resources(home, config)
    print(f'minikube-py: cluster "{config.name}" stopped')
    return 0


def _process_running(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def status(home: str) -> dict:
    home = os.path.abspath(home)
    config = ClusterConfig.load(home)
    pid = _read_pid(home)
    result = {
        "home": home,
        "running": pid is not None,
        "pid": pid,
        "name": config.name if config else None,
        "podCIDR": config.pod_cidr if config else None,
        "serviceCIDR": config.service_cidr if config else None,
        "apiSocket": os.path.join(home, "api.sock"),
        "port": config.port if config else None,
        "node": config.node_name if config else None,
        "apiReachable": False,
        "nodeReady": False,
        "pods": None,
    }
    if pid is not None and config is not None:
        result["apiReachable"] = _api_answers(home)
        result["nodeReady"] = not config.control_plane_only and _node_ready(home, config.node_name)
        if result["apiReachable"]:
            from minikube_py.client.transport import HttpTransport

            pods = HttpTransport(socket_path=result["apiSocket"]).list("pods")
            result["pods"] = len(pods.get("items", []))
    return result


def _tail(path: str, lines: int) -> str:
    try:
        with open(path, "rb") as file:
            return b"\n".join(file.read().splitlines()[-lines:]).decode(errors="replace")
    except FileNotFoundError:
        return ""


def _remove_host_resources(home: str, config: ClusterConfig) -> None:
    from minikube_py.runtime.runtime import LinuxRuntime

    LinuxRuntime(config.name, home, config.pod_cidr).shutdown(remove_all=True)
    _remove_service_table(config.name)


def _remove_service_table(cluster_name: str) -> None:
    """The service proxy's nftables table, if a killed daemon left it behind."""
    from minikube_py.proxy.nftables import NftablesError, NftablesTable
    from minikube_py.proxy.rules import table_name

    try:
        NftablesTable(table_name(cluster_name)).remove()
    except NftablesError as error:
        print(f"warning: could not remove the cluster's nftables table: {error}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# The daemon itself.


def node_ipam(home: str, store: ObjectStore, pod_cidr: str, node_cidr: str | None = None) -> HostLocalIpam:
    """The node's pod-IP leases (`<home>/pod-ips/`) in its range `node_cidr` (default: the whole
    pod CIDR), taking over those an older version kept in the store's `pod-ip/<pod cidr>` pool, so
    running pods keep their addresses across the upgrade."""
    from minikube_py.agent.ipam import HostLocalIpam

    ipam = HostLocalIpam(os.path.join(home, "pod-ips"), node_cidr or pod_cidr)
    pool = f"pod-ip/{pod_cidr}"
    for address, owner in store.allocations(pool).items():
        if not ipam.hold(address, owner):
            log.warning("pod IP %s of pod uid %s from the store is already leased on the node; dropping it", address, owner)
        store.release(pool, owner)
    return ipam


def serve(home: str) -> int:
    """Run the daemon in this process until SIGTERM/SIGINT (then stop every pod) or SIGKILL."""
    from minikube_py.agent import AgentConfig, NodeAgent
    from minikube_py.agent.localpath import LocalPathProvisioner, ensure_default_storage_class
    from minikube_py.apiserver import certificates
    from minikube_py.apiserver.server import ApiHttpServer, TlsConfig
    from minikube_py.agent.node import host_ip
    from minikube_py.apiserver.kubernetes_service import ensure_kubernetes_service
    from minikube_py.apiserver.registry import Registry
    from minikube_py.apiserver.scheduling_admission import DefaultTolerationSeconds
    from minikube_py.apiserver.service_allocation import parse_node_port_range
    from minikube_py.apiserver.serviceaccount_tokens import SIGNING_KEY_FILE, TokenIssuer, load_or_create_signing_key
    from minikube_py.dns.server import DNS_PORT, ClusterDnsServer
    from minikube_py.proxy.proxy import ServiceProxy
    from minikube_py.client.api import ApiClient
    from minikube_py.client.informer import shared_informers
    from minikube_py.clock import Clock
    from minikube_py.api.errors import ApiError
    from minikube_py.agent.routes import NodeRoutes
    from minikube_py.runtime.node_network import node_network_bridge, sync_routes
    from minikube_py.runtime.runtime import LinuxRuntime
    from minikube_py.store import open_store

    home = os.path.abspath(home)
    config = ClusterConfig.load(home)
    if config is None:
        print(f"error: no cluster configuration in {home}; run 'minikube-py start'", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.info("starting cluster %r in %s", config.name, home)
    make_private_home(home)
    ensure_access(home, config)

    clock = Clock()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    try:
        store = open_store(store_spec(config), home, config.name)
    except ApiError as error:
        log.error("cannot open the store %s: %s", config.store, error.message)
        print(f"error: --store {config.store}: {error.message}", file=sys.stderr)
        return 1
    store.start_compactor(interval=60.0, keep=10_000)
    registry = Registry(store, clock=clock, service_cidr=config.service_cidr,
                        node_ports=parse_node_port_range(config.service_node_port_range))
    registry.default_tolerations = DefaultTolerationSeconds(config.default_not_ready_toleration_seconds,
                                                            config.default_unreachable_toleration_seconds)
    registry.token_issuer = TokenIssuer(load_or_create_signing_key(
        certificates.Paths(home).file(SIGNING_KEY_FILE)), clock)
    # The cluster CA (ensure_access made it), which every pod's kube-api-access volume carries as kube-root-ca.crt.
    with open(certificates.Paths(home).ca_certificate) as file:
        ca_pem = file.read()
    client = ApiClient.local(registry)
    # managedFields name the node agent and the controllers as Kubernetes names its components.
    agent_client = ApiClient.local(registry.acting_as("kubelet"))
    controller_client = ApiClient.local(registry.acting_as("kube-controller-manager"))
    if config.control_plane_only:
        return serve_control_plane(home, config, store, registry, ControlLoops(controller_client, clock, config, ca_pem),
                                   stopping)
    node_address = host_ip()
    node_mask = node_cidr_mask_size(config)
    own_pod_cidr = node_pod_cidr(config)
    network = ipaddress.ip_network(own_pod_cidr)
    gateway = str(next(network.hosts()))
    # Pods reach the API through the `kubernetes` Service: its endpoint is the bridge's address.
    pod_api_port = config.port or DEFAULT_API_SERVICE_PORT
    ensure_kubernetes_service(registry, gateway, pod_api_port)

    # One set of caches for every in-process reader of the cluster-wide objects: the controllers,
    # this node's agent, service proxy, DNS and volume provisioner (each informer is a thread and
    # parses every change it follows; a reader's writes still go through its own client).
    informers = shared_informers(controller_client)
    runtime = LinuxRuntime(config.name, home, own_pod_cidr,
                           image_gc_percent=(config.image_gc_high_threshold, config.image_gc_low_threshold))
    runtime.start()
    agent = NodeAgent(
        agent_client,
        runtime,
        node_name=config.node_name,
        ipam=node_ipam(home, store, config.pod_cidr, own_pod_cidr),
        clock=clock,
        config=AgentConfig(
            home=home,
            cluster_name=config.name,
            gateway=gateway,
            prefix_len=network.prefixlen,
            backoff_initial=config.restart_backoff[0],
            backoff_max=config.restart_backoff[1],
            pods_max_pids=config.pids_limit,
            max_pods=config.max_pods,
            seccomp_default=config.seccomp_default,
            cluster_dns=gateway,
            metric_resolution=config.metric_resolution,
            pod_cidr=own_pod_cidr if node_mask is not None else None,
            node_lease_duration=node_lease_duration(config),
        ),
        informers=informers,
    )
    node_proxies = cluster_node_proxy(registry, agent, config.node_name, certificates.Paths(home))
    # The Metrics API: this node's agent in the process, the other nodes' over their kubelet ports.
    registry.resource_metrics.add_node(config.node_name, agent)
    registry.resource_metrics.remote_source = node_proxies.metrics_source
    server = ApiHttpServer(registry, os.path.join(home, "api.sock"), port=config.port, node_proxy=node_proxies,
                           tls=TlsConfig.of(certificates.Paths(home)), pod_listener=(gateway, pod_api_port))
    controllers = ControlLoops(controller_client, clock, config, ca_pem)
    elector = leader_elector(client, config, controllers, clock) if config.leader_elect else None
    service_proxy = ServiceProxy(client, config.name, config.pod_cidr, config.node_name, node_address,
                                 bridge=f"mkpy-{config.name}", clock=clock, bridge_address=gateway,
                                 bridge_ports=(DNS_PORT, pod_api_port),
                                 node_network_bridge=node_network_bridge(config.name) if node_mask is not None else None,
                                 informers=informers)
    cluster_dns = ClusterDnsServer(client, gateway, informers=informers)
    # k3s' local-path provisioner and its default StorageClass (docs/workloads.md).
    ensure_default_storage_class(client)
    provisioner = LocalPathProvisioner(client, config.node_name, os.path.join(home, "storage"), clock,
                                       informers=informers)
    # Routes to the pod CIDRs of nodes added on this host (or joined from elsewhere on a shared link).
    node_routes = NodeRoutes(client, config.node_name, lambda wanted: sync_routes(config.pod_cidr, wanted),
                             clock=clock) if node_mask is not None else None

    server.start()
    agent.start()
    provisioner.run()
    if elector is not None:
        elector.run()  # the control loops start once this daemon leads
    else:
        controllers.start()
    service_proxy.run()
    cluster_dns.start()
    if node_routes is not None:
        node_routes.run()
    threading.Thread(target=_expire_events, args=(registry, stopping), name="event-ttl", daemon=True).start()
    _write_pid_file(home)
    log.info("cluster %r ready: API at %s", config.name, os.path.join(home, "api.sock"))

    stopping.wait()
    grace_period = _take_stop_request(home)
    log.info("stopping cluster %r: stopping pods (grace %s) and removing host resources", config.name,
             "as each pod says" if grace_period is None else f"{grace_period}s")
    if elector is not None:
        elector.stop(release=True)  # stops the control loops if leading, and lets the next daemon lead at once
    controllers.stop()
    service_proxy.stop()
    cluster_dns.stop()
    provisioner.stop()
    if node_routes is not None:
        node_routes.stop()
    agent.stop(stop_pods=True, grace_period=grace_period)
    server.stop()
    runtime.shutdown(remove_all=True)
    store.close()
    _remove_pid_file(home)
    log.info("cluster %r stopped", config.name)
    return 0


def serve_control_plane(home: str, config: ClusterConfig, store, registry, controllers: "ControlLoops",
                        stopping: threading.Event) -> int:
    """`start --control-plane-only`: another API server of a cluster on etcd, with a controller
    manager that takes turns with the other daemons' (leader election), as a second control-plane
    host of Kubernetes runs kube-apiserver and kube-controller-manager. No node: nothing of the
    host is touched, so `stop` has nothing to undo but the process."""
    from minikube_py.apiserver import certificates
    from minikube_py.apiserver.server import ApiHttpServer, TlsConfig
    from minikube_py.client.api import ApiClient
    from minikube_py.clock import Clock

    paths = certificates.Paths(home)
    node_proxies = cluster_node_proxy(registry, None, "", paths)
    # The Metrics API asks every node's kubelet port (the daemons' own nodes serve none: left out).
    registry.resource_metrics.remote_source = node_proxies.metrics_source
    server = ApiHttpServer(registry, os.path.join(home, "api.sock"), port=config.port, node_proxy=node_proxies,
                           tls=TlsConfig.of(paths))
    elector = leader_elector(ApiClient.local(registry), config, controllers, Clock())
    server.start()
    elector.run()
    threading.Thread(target=_expire_events, args=(registry, stopping), name="event-ttl", daemon=True).start()
    _write_pid_file(home)
    log.info("control plane of cluster %r ready: API at %s", config.name, os.path.join(home, "api.sock"))
    stopping.wait()
    elector.stop(release=True)
    controllers.stop()
    server.stop()
    store.close()
    _remove_pid_file(home)
    log.info("control plane of cluster %r stopped", config.name)
    return 0


def leader_elector(client, config: ClusterConfig, controllers: "ControlLoops", clock):
    """This daemon's candidacy for the Lease kube-system/minikube-py-controller-manager: the
    control loops run while it leads."""
    from minikube_py.client.leaderelection import LeaderElector

    return LeaderElector(client, "kube-system", LEADER_ELECTION_LEASE, f"{config.node_name}_{uuid.uuid4()}",
                         on_started_leading=controllers.start, on_stopped_leading=controllers.stop, clock=clock,
                         timings=leader_election_timings(config))


def _write_pid_file(home: str) -> None:
    with open(_pid_file(home) + ".tmp", "w") as file:
        file.write(str(os.getpid()))
    os.replace(_pid_file(home) + ".tmp", _pid_file(home))


def _remove_pid_file(home: str) -> None:
    try:
        os.unlink(_pid_file(home))
    except FileNotFoundError:
        pass


def cluster_node_proxy(registry, agent, node_name: str, paths):
    """Pod logs, exec, attach, port-forward and inspect: through this daemon's agent for its own
    node's pods, through the node's kubelet port for the others' (agent/remote_proxy.py)."""
    from minikube_py.agent.remote_proxy import NodeProxies, kubelet_client_tls
    from minikube_py.api.errors import NotFound

    def node_of_pod(namespace: str, name: str) -> str | None:
        try:
            return (registry.get("pods", namespace, name).get("spec") or {}).get("nodeName")
        except NotFound:
            return None

    def address_of_node(node: str) -> str | None:
        try:
            addresses = (registry.get("nodes", None, node).get("status") or {}).get("addresses") or []
        except NotFound:
            return None
        return next((item["address"] for item in addresses if item.get("type") == "InternalIP"), None)

    return NodeProxies(agent, node_name, node_of_pod, address_of_node,
                       kubelet_client_tls(paths.admin_certificate, paths.admin_key))


class ControlLoops:
    """The controllers and the scheduler as one whole, started and stopped together: at start, or
    whenever this daemon becomes or stops being the leader (`--leader-elect`). A controller runs
    once, so each start builds them anew."""

    def __init__(self, client, clock, config: ClusterConfig, ca_pem: str | None = None):
        self._arguments = (client, clock, config, ca_pem)
        self._running: list = []
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if not self._running:
                self._running = control_loops(*self._arguments)
                for controller in self._running:
                    controller.run()

    def stop(self) -> None:
        with self._lock:
            for controller in self._running:
                controller.stop()
            self._running = []


def control_loops(client, clock, config: ClusterConfig, ca_pem: str | None = None) -> list:
    """Every controller the daemon runs (kube-controller-manager's and the scheduler), sharing caches;
    with the cluster CA, the root CA publisher too."""
    from controllers import build_controllers
    from controllers.rootca import RootCaPublisher
    from controllers.deployment import DeploymentController
    from controllers.horizontalpodautoscaler import HorizontalPodAutoscalerController
    from controllers.nodeipam import NodeIpamController
    from controllers.nodelifecycle import NodeLifecycleController
    from controllers.podgc import PodGarbageCollector
    from minikube_py.client.events import EventRecorder
    from minikube_py.client.informer import shared_informers

    informers = shared_informers(client)
    node_mask = node_cidr_mask_size(config)
    return build_controllers(client, clock, informers) + [
        DeploymentController(client, clock, recorder=EventRecorder(client, "deployment-controller", clock)),
        PodGarbageCollector(client, clock, informers, terminated_pod_threshold=config.terminated_pod_gc_threshold),
        HorizontalPodAutoscalerController(client, clock, informers, sync_period=config.hpa_sync_period),
        NodeLifecycleController(client, clock, informers, grace_period=config.node_monitor_grace_period,
                                eviction_rate=config.node_eviction_rate),
    ] + ([RootCaPublisher(client, ca_pem, clock, informers)] if ca_pem is not None else []) + (
        [NodeIpamController(client, config.pod_cidr, node_mask, clock, informers)] if node_mask is not None else [])


def _expire_events(registry, stopping: threading.Event) -> None:
    """Kubernetes' --event-ttl: Events older than an hour are deleted, checked once a minute."""
    while not stopping.wait(EVENT_EXPIRY_INTERVAL_SECONDS):
        try:
            registry.expire_events(EVENT_TTL_SECONDS)
        except Exception:
            log.exception("expiring old events failed; trying again in a minute")


def _take_stop_request(home: str) -> float | None:
    """The grace period `stop --grace-period` asked for (None: each pod's own), consumed once."""
    try:
        with open(_stop_request_file(home)) as file:
            request = json.load(file)
        os.unlink(_stop_request_file(home))
    except (FileNotFoundError, ValueError):
        return None
    return request.get("gracePeriodSeconds")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m minikube_py.daemon")
    parser.add_argument("command", choices=["serve"], help="run the daemon in the foreground")
    parser.add_argument("--home", default=os.environ.get("MINIKUBE_PY_HOME", DEFAULT_HOME))
    arguments = parser.parse_args(argv)
    return serve(arguments.home)


if __name__ == "__main__":
    sys.exit(main())
