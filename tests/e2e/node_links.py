"""What the multi-node e2e modules do to nodes added with `node add`: cut or restore a node's link
to the host (as pulling its cable would), and fetch a page from inside a pod."""

from __future__ import annotations

import subprocess
import sys

from controllers.nodeipam import node_network
from tests.e2e.cluster import Cluster


def set_link(cluster: Cluster, name: str, up: bool, mask_size: int = 24) -> None:
    """Bring node `name`'s link to the host down or up (its namespace's end of the node network;
    `mask_size`: the cluster's node slice size, a /24 for the default --max-pods)."""
    network = node_network(cluster.pod_cidr, mask_size)
    code = ("import sys; from minikube_py.runtime.node_network import NodeNetwork; "
            "NodeNetwork(sys.argv[1], sys.argv[2]).set_link(sys.argv[3], sys.argv[4] == 'up')")
    subprocess.run([sys.executable, "-c", code, cluster.name, network, name, "up" if up else "down"], check=True)


def http_get(cluster: Cluster, pod: str, host: str, port: int) -> str:
    """The body of GET / from inside `pod` (busybox nc: its wget crashes on -T here)."""
    result = cluster.exec(pod, "sh", "-c", f'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 {host} {port} | tail -1',
                          check=False)
    return result.stdout.strip()
