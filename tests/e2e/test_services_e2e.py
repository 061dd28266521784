"""Services on real pods: cluster DNS, ClusterIP through the nftables proxy, hairpin, NodePort from
the host, refusal without endpoints, endpoints following readiness, and `stop` leaving no table
and no DNS listener behind (the cluster's leftovers check)."""

from __future__ import annotations

import ipaddress
import socket
import struct
import subprocess
import sys
import urllib.request

import pytest
from dnslib import DNSRecord

from minikube_py.apiserver import certificates
from tests.e2e.cluster import Cluster, wait_for

APPLICATION = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: httpd
          image: busybox
          command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
          ports:
            - name: http
              containerPort: 8080
          readinessProbe:
            exec:
              command: ["sh", "-c", "test ! -e /tmp/unready"]
            periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: NodePort
  selector:
    app: web
  ports:
    - name: http
      port: 80
      targetPort: http
---
apiVersion: v1
kind: Service
metadata:
  name: web-pods
spec:
  clusterIP: None
  selector:
    app: web
  ports:
    - name: http
      port: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: nothing
spec:
  selector:
    app: nobody
  ports:
    - port: 80
---
apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  terminationGracePeriodSeconds: 0
  containers:
    - name: main
      image: busybox
      command: ["sleep", "3600"]
"""


@pytest.fixture(scope="module", autouse=True)
def application(cluster: Cluster):
    """The Deployment, Services and client pod every test here uses (the cluster's leftovers
    check after `stop` includes its nftables table)."""
    cluster.apply(APPLICATION)


def service(cluster: Cluster, name: str) -> dict:
    return cluster.client.raw.get("services", "default", name)


def ready_addresses(cluster: Cluster, name: str) -> list[str]:
    endpoints = cluster.client.raw.get("endpoints", "default", name)
    return sorted(address["ip"] for subset in endpoints.get("subsets") or [] for address in subset.get("addresses") or [])


def web_pods(cluster: Cluster) -> list[dict]:
    return cluster.client.raw.list("pods", "default", label_selector="app=web")["items"]


def wait_two_ready(cluster: Cluster) -> list[str]:
    return wait_for(lambda: (lambda found: found if len(found) == 2 else None)(ready_addresses(cluster, "web")),
                    60, "two ready endpoints for Service web")


def fetch_in(cluster: Cluster, pod: str, url: str):
    return cluster.exec(pod, "wget", "-q", "-O", "-", url, check=False)


def test_a_pod_reaches_every_ready_replica_through_the_cluster_ip(cluster: Cluster):
    wait_two_ready(cluster)
    cluster.wait_running("client", timeout=60)
    cluster_ip = service(cluster, "web")["spec"]["clusterIP"]
    assert ipaddress.ip_address(cluster_ip) in ipaddress.ip_network(cluster.service_cidr)
    names = {pod["metadata"]["name"] for pod in web_pods(cluster)}
    answered = set()

    def both_answered():
        result = fetch_in(cluster, "client", f"http://{cluster_ip}/")
        if result.returncode == 0:
            answered.add(result.stdout.strip())
        return answered >= names or None

    wait_for(both_answered, 60, f"both replicas {sorted(names)} answering through {cluster_ip}", interval=0.1)


def test_a_pod_reaches_itself_through_its_own_service(cluster: Cluster):
    wait_two_ready(cluster)
    cluster_ip = service(cluster, "web")["spec"]["clusterIP"]
    pod = web_pods(cluster)[0]["metadata"]["name"]
    # The proxy programs the endpoints a moment after the API has them, as kube-proxy does.
    wait_for(lambda: fetch_in(cluster, pod, f"http://{cluster_ip}/").returncode == 0, 60,
             f"{pod} reaching {cluster_ip}")
    for _ in range(6):  # random balancing: some of these go back to the pod itself (hairpin)
        result = fetch_in(cluster, pod, f"http://{cluster_ip}/")
        assert result.returncode == 0, result.stderr


def test_the_node_port_answers_from_the_host(cluster: Cluster):
    wait_two_ready(cluster)
    node_port = service(cluster, "web")["spec"]["ports"][0]["nodePort"]
    gateway = next(ipaddress.ip_network(cluster.pod_cidr).hosts())  # the cluster bridge's address on the host
    with urllib.request.urlopen(f"http://{gateway}:{node_port}/", timeout=5) as response:
        assert response.read().decode().strip() in {pod["metadata"]["name"] for pod in web_pods(cluster)}


def test_a_service_without_endpoints_refuses_at_once(cluster: Cluster):
    cluster_ip = service(cluster, "nothing")["spec"]["clusterIP"]
    cluster.wait_running("client", timeout=60)
    result = fetch_in(cluster, "client", f"http://{cluster_ip}/")
    assert result.returncode != 0 and "refused" in result.stderr.lower(), result.stderr
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((cluster_ip, 80), timeout=3).close()


def test_an_unready_pod_leaves_the_endpoints_and_comes_back(cluster: Cluster):
    wait_two_ready(cluster)
    pod = web_pods(cluster)[0]
    ip = pod["status"]["podIP"]
    cluster.exec(pod["metadata"]["name"], "touch", "/tmp/unready")
    wait_for(lambda: ip not in ready_addresses(cluster, "web") or None, 10, f"{ip} leaving the endpoints")
    cluster.exec(pod["metadata"]["name"], "rm", "/tmp/unready")
    wait_for(lambda: ip in ready_addresses(cluster, "web") or None, 10, f"{ip} back in the endpoints")


def resolved(cluster: Cluster, name: str) -> set[str]:
    result = cluster.exec("client", "nslookup", name, check=False)
    lines = result.stdout.split("Name:", 1)[-1] if "Name:" in result.stdout else ""
    return {line.split()[-1] for line in lines.splitlines() if line.strip().startswith("Address")}


def test_a_pod_resolves_a_service_name_and_reaches_it(cluster: Cluster):
    wait_two_ready(cluster)
    cluster.wait_running("client", timeout=60)
    resolv_conf = cluster.exec("client", "cat", "/etc/resolv.conf").stdout
    gateway = str(next(ipaddress.ip_network(cluster.pod_cidr).hosts()))
    assert f"nameserver {gateway}" in resolv_conf
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in resolv_conf
    assert "options ndots:5" in resolv_conf
    cluster_ip = service(cluster, "web")["spec"]["clusterIP"]
    assert resolved(cluster, "web.default.svc.cluster.local") == {cluster_ip}
    result = fetch_in(cluster, "client", f"http://{cluster_ip}/")
    assert result.returncode == 0 and result.stdout.strip().startswith("web-")
    unknown = cluster.exec("client", "nslookup", "nope.default.svc.cluster.local", check=False)
    assert unknown.returncode != 0 and "NXDOMAIN" in unknown.stdout + unknown.stderr
    assert resolved_over_tcp(gateway, "web.default.svc.cluster.local") == [cluster_ip]


def resolved_over_tcp(server: str, name: str) -> list[str]:
    """A records of `name` asked over TCP (RFC 7766 framing), from the host."""
    question = DNSRecord.question(name).pack()
    with socket.create_connection((server, 53), timeout=5) as connection:
        connection.sendall(struct.pack("!H", len(question)) + question)
        (length,) = struct.unpack("!H", connection.recv(2, socket.MSG_WAITALL))
        reply = DNSRecord.parse(connection.recv(length, socket.MSG_WAITALL))
    return [str(record.rdata) for record in reply.rr]


def test_a_headless_service_resolves_to_each_ready_pod(cluster: Cluster):
    addresses = set(wait_two_ready(cluster))
    wait_for(lambda: resolved(cluster, "web-pods.default.svc.cluster.local") == addresses or None, 60,
             f"web-pods resolving to {sorted(addresses)}")


def test_a_load_balancer_gets_the_node_address_as_its_external_ip(cluster: Cluster):
    cluster.apply("""
apiVersion: v1
kind: Service
metadata:
  name: web-lb
spec:
  type: LoadBalancer
  selector:
    app: web
  ports:
    - port: 8081
      targetPort: 8080
""")
    node = cluster.client.raw.list("nodes")["items"][0]
    internal_ip = next(address["address"] for address in node["status"]["addresses"] if address["type"] == "InternalIP")
    wait_for(lambda: ((service(cluster, "web-lb").get("status") or {}).get("loadBalancer") or {}).get("ingress"),
             10, "web-lb's load balancer address")
    assert service(cluster, "web-lb")["status"]["loadBalancer"]["ingress"] == [{"ip": internal_ip, "ipMode": "VIP"}]
    assert internal_ip in cluster.cli("get", "svc", "web-lb").stdout


IN_POD_API_CLIENT = """
import http.client, ssl, sys
address, ca, token = sys.argv[1:4]
context = ssl.create_default_context(cafile=ca)
statuses = []
for credential in (token, None):
    connection = http.client.HTTPSConnection(address, 443, timeout=10, context=context)
    connection.putrequest("GET", "/api/v1/namespaces/default/services/kubernetes")
    connection.putheader("Host", "kubernetes.default.svc")
    if credential:
        connection.putheader("Authorization", "Bearer " + credential)
    connection.endheaders()
    statuses.append(str(connection.getresponse().status))
print(" ".join(statuses))
"""


def test_a_pod_reaches_the_api_through_the_kubernetes_service_over_tls_with_a_token(cluster: Cluster):
    """From the client pod's network namespace: the ClusterIP of `kubernetes` leads to the API on
    the bridge address, whose certificate names the Service, and a request needs a credential."""
    cluster.wait_running("client", timeout=60)
    kubernetes_ip = service(cluster, "kubernetes")["spec"]["clusterIP"]
    paths = certificates.Paths(cluster.home)
    token = certificates.token_of(paths, certificates.ADMIN_USER)
    pause_pid = cluster.inspect("client")["pause"]["pid"]
    result = subprocess.run(["nsenter", f"--net=/proc/{pause_pid}/ns/net", sys.executable, "-c", IN_POD_API_CLIENT,
                             kubernetes_ip, paths.ca_certificate, token], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["200", "401"]
