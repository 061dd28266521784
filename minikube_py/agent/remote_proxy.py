"""Reaching pods on any node from the API server, as kube-apiserver reaches kubelets.

Every node process serves its agent's NodeProxy (logs, exec, attach, port-forward, inspect) on the
kubelet port, 10250, of its own address, over TLS with a self-signed certificate (kubelet's
default; kube-apiserver does not verify it unless `--kubelet-certificate-authority` is given), and
takes only client certificates of the cluster CA, as kubelet with `--client-ca-file` does. The API
server's `NodeProxies` sends each request to the agent of the node the pod is bound to: its own
agent for the daemon's node, else the node's kubelet port, presenting the cluster admin's client
certificate (kube-apiserver's `--kubelet-client-certificate`). The paths and the stream protocols
are the API's own, so the node's server is the same HTTP server as the API's.

The same port serves the node's resource metrics, which the API server's Metrics API gathers from
every node (`RemoteNodeMetrics`), as metrics-server scrapes each kubelet. Kubelet serves them as
Prometheus counters on `/metrics/resource` and metrics-server turns two scrapes into rates; our
agent already keeps its cgroup readings and computes the rates (agent/resource_metrics.py), so
the kubelet port answers the `metrics.k8s.io` paths with the node's own NodeMetrics and
PodMetrics, and the API server adds labels and applies selectors as for its own agent.
"""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Any, Callable, Iterator

from minikube_py.api import errors
from minikube_py.api.metrics import NodeMetrics, PodMetrics
from minikube_py.client.transport import HttpTransport

KUBELET_PORT = 10250
METRICS_TIMEOUT_SECONDS = 5.0  # metrics-server's default --kubelet-request-timeout is 10s; `top` waits for every node


def kubelet_client_tls(certificate: str, key: str) -> ssl.SSLContext:
    """TLS to kubelets: the admin's client certificate; the kubelet's self-signed one not verified."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(certificate, key)
    return context


class RemoteNodeProxy:
    """One node's agent over its kubelet port: the NodeProxy methods, over HTTP."""

    def __init__(self, transport: HttpTransport):
        self.transport = transport

    def logs(self, namespace, name, container=None, follow=False, tail_lines=None, timestamps=False,
             previous=False) -> Iterator[bytes]:
        return self.transport.logs(namespace, name, container, follow, tail_lines, timestamps, previous)

    def exec(self, namespace, name, container, command, tty=False):
        return self.transport.exec(namespace, name, container, command, tty=tty)

    def attach(self, namespace, name, container, stdin=False, tty=False):
        return self.transport.attach(namespace, name, container, tty=tty, stdin=stdin)

    def inspect(self, namespace, name) -> dict:
        return self.transport.inspect(namespace, name)

    def port_forward(self, namespace, name, port) -> socket.socket:
        """A socket whose other end is a channel-protocol stream to the pod's `port` on the node."""
        channels = self.transport.port_forward(namespace, name, port)
        ours, theirs = socket.socketpair()

        def to_pod() -> None:
            try:
                while data := ours.recv(65536):
                    channels.send(0, data)
            except OSError:
                pass
            channels.close()

        def from_pod() -> None:
            opened: set[int] = set()
            try:
                while (message := channels.receive()) is not None:
                    channel, data = message
                    if channel not in opened:  # each channel starts with the port it serves
                        opened.add(channel)
                    elif channel == 0:
                        ours.sendall(data)
                    elif channel == 1 and data:
                        break  # the node could not connect: the caller sees the socket close
            except OSError:
                pass
            finally:
                try:
                    ours.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                channels.shutdown()
                channels.sock.close()

        threading.Thread(target=to_pod, name="port-forward-to-node", daemon=True).start()
        threading.Thread(target=from_pod, name="port-forward-from-node", daemon=True).start()
        return theirs


class RemoteNodeMetrics:
    """One node's resource metrics over its kubelet port: the Metrics API's NodeMetricsSource."""

    def __init__(self, transport: HttpTransport):
        self.transport = transport

    def node_metrics(self) -> NodeMetrics | None:
        items = self.transport.list_metrics("nodes").get("items") or []
        return NodeMetrics.model_validate(items[0]) if items else None

    def pod_metrics(self) -> list[PodMetrics]:
        return [PodMetrics.model_validate(item) for item in self.transport.list_metrics("pods").get("items") or []]


def kubelet_transport(address: str, tls: ssl.SSLContext, timeout: float | None = 60.0) -> HttpTransport:
    return HttpTransport(url=f"https://{address}:{KUBELET_PORT}", tls=tls, timeout=timeout)


class NodeProxies:
    """The API server's NodeProxy for the whole cluster: each call goes to the agent of the pod's node."""

    def __init__(self, local: Any, local_node: str, node_of_pod: Callable[[str, str], str | None],
                 address_of_node: Callable[[str], str | None], tls: ssl.SSLContext):
        self.local = local
        self.local_node = local_node
        self.node_of_pod = node_of_pod
        self.address_of_node = address_of_node
        self.tls = tls

    def _proxy(self, namespace: str, name: str) -> Any:
        node = self.node_of_pod(namespace, name)
        if self.local is None and node in (None, self.local_node):
            # A control-plane-only API server (start --control-plane-only) has no node of its own.
            raise errors.ServiceUnavailable(f"pod {namespace}/{name} is not on a node this API server reaches"
                                            + ("" if node is None else f" ({node}'s agent serves no kubelet port)")
                                            + "; ask the API server of the daemon the pod's node belongs to")
        if node is None or node == self.local_node:
            return self.local
        address = self.address_of_node(node)
        if address is None:
            raise errors.ServiceUnavailable(f"node {node!r} of pod {namespace}/{name} reports no InternalIP to "
                                            "reach its agent at")
        return RemoteNodeProxy(kubelet_transport(address, self.tls))

    def _call(self, method: str, namespace: str, name: str, *arguments: Any) -> Any:
        proxy = self._proxy(namespace, name)
        try:
            return getattr(proxy, method)(namespace, name, *arguments)
        except OSError as error:
            raise errors.ServiceUnavailable(f"the agent of pod {namespace}/{name}'s node "
                                            f"({self.node_of_pod(namespace, name)}) did not answer: {error}") from None

    def logs(self, namespace, name, container=None, follow=False, tail_lines=None, timestamps=False, previous=False):
        return self._call("logs", namespace, name, container, follow, tail_lines, timestamps, previous)

    def exec(self, namespace, name, container, command, tty=False):
        return self._call("exec", namespace, name, container, command, tty)

    def attach(self, namespace, name, container, stdin=False, tty=False):
        return self._call("attach", namespace, name, container, stdin, tty)

    def port_forward(self, namespace, name, port):
        return self._call("port_forward", namespace, name, port)

    def inspect(self, namespace, name) -> dict:
        return self._call("inspect", namespace, name)

    def metrics_source(self, node: str) -> RemoteNodeMetrics | None:
        """The Metrics API's source for a node other than this daemon's: its kubelet port, or None
        when it reports no address (then it is left out, as metrics-server leaves out a node it
        cannot scrape)."""
        address = self.address_of_node(node)
        if address is None:
            return None
        return RemoteNodeMetrics(kubelet_transport(address, self.tls, timeout=METRICS_TIMEOUT_SECONDS))
