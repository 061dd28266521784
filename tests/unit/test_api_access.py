"""The API's two doors: TLS with a credential on TCP, root's unix socket without one.

Authentication (bearer token or a client certificate of the cluster CA, else 401), authorization
(admin everything, a node only its own objects, else 403), the certificates `start` makes, and
the kubeconfig it writes and merges.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import stat
import time

import pytest
import yaml
from cryptography import x509

from minikube_py.api import errors
from minikube_py.apiserver import certificates
from minikube_py.apiserver.registry import Registry
from minikube_py.apiserver.server import ApiHttpServer
from minikube_py.client import kubeconfig
from minikube_py.client.transport import HttpTransport
from minikube_py.clock import FakeClock
from minikube_py.store import Store
from tests.unit.tls_harness import NODE, admin_kubeconfig, https_connection, make_credentials, tls_config

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
       "spec": {"containers": [{"name": "main", "image": "busybox"}]}}


@pytest.fixture
def paths(tmp_path):
    return make_credentials(tmp_path)


@pytest.fixture
def server(tmp_path, paths):
    store = Store(":memory:")
    server = ApiHttpServer(Registry(store, FakeClock()), str(tmp_path / "api.sock"), port=0, tls=tls_config(paths))
    server.start()
    yield server
    server.stop()
    store.close()


def get(server, paths, path: str, headers: dict | None = None, certificate=None, method: str = "GET",
        body: dict | None = None) -> tuple[int, dict]:
    connection = https_connection(paths, server.port, certificate=certificate)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, payload, {**(headers or {}), **({"Content-Type": "application/json"}
                                                                          if payload else {})})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def bearer(paths, user: str) -> dict:
    return {"Authorization": f"Bearer {certificates.token_of(paths, user)}"}


def test_no_credential_is_a_401_status(server, paths):
    status, body = get(server, paths, "/api/v1/namespaces")
    assert status == 401
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "Unauthorized", 401)


def test_an_unknown_token_and_other_schemes_are_401(server, paths):
    assert get(server, paths, "/api/v1/namespaces", {"Authorization": "Bearer nope"})[0] == 401
    assert get(server, paths, "/api/v1/namespaces", {"Authorization": "Basic YWRtaW46YWRtaW4="})[0] == 401
    token = certificates.token_of(paths, certificates.ADMIN_USER)
    assert get(server, paths, "/api/v1/namespaces", {"Authorization": f"Bearer {token}x"})[0] == 401


def test_discovery_and_unknown_methods_also_need_a_credential(server, paths):
    assert get(server, paths, "/version")[0] == 401
    assert get(server, paths, "/api/v1/namespaces", method="OPTIONS")[0] == 401


def test_the_admin_token_may_do_everything(server, paths):
    assert get(server, paths, "/api/v1/namespaces", bearer(paths, "admin"))[0] == 200
    status, created = get(server, paths, "/api/v1/namespaces/default/pods", bearer(paths, "admin"), method="POST",
                          body=POD)
    assert status == 201 and created["metadata"]["name"] == "web"


def test_a_client_certificate_of_the_cluster_ca_is_a_credential(server, paths):
    status, body = get(server, paths, "/api/v1/namespaces", certificate=(paths.admin_certificate, paths.admin_key))
    assert status == 200 and body["kind"] == "NamespaceList"


def test_a_client_certificate_of_another_ca_is_refused(server, paths, tmp_path):
    stranger = certificates.ensure_credentials(str(tmp_path / "stranger"), "other", ())
    try:
        status, _ = get(server, paths, "/api/v1/namespaces", certificate=(stranger.admin_certificate, stranger.admin_key))
    except (ssl.SSLError, OSError):
        return  # refused in the handshake
    assert status == 401  # or, if the handshake passed, refused as a request


def test_plain_http_on_the_tls_port_gets_no_api_answer(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = connection.recv(4096)
        except OSError:
            answer = b""
    assert b"NamespaceList" not in answer and b"200 OK" not in answer


def test_the_unix_socket_needs_no_credential(server):
    assert HttpTransport(socket_path=server.socket_path).list("namespaces")["kind"] == "NamespaceList"


def test_a_port_without_tls_is_refused_at_construction(tmp_path):
    with pytest.raises(ValueError, match="TLS only"):
        ApiHttpServer(Registry(Store(":memory:"), FakeClock()), str(tmp_path / "x.sock"), port=0)


def test_a_node_may_touch_its_own_node_and_pods_and_nothing_else(server, paths):
    registry = server.registry
    node = bearer(paths, certificates.node_user(NODE))
    registry.create("nodes", None, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}})
    registry.create("nodes", None, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "other"}})
    registry.create("pods", "default", {**POD, "metadata": {"name": "mine"}, "spec": {**POD["spec"], "nodeName": NODE}})
    registry.create("pods", "default", {**POD, "metadata": {"name": "theirs"},
                                        "spec": {**POD["spec"], "nodeName": "other"}})
    assert get(server, paths, f"/api/v1/nodes/{NODE}", node)[0] == 200
    assert get(server, paths, "/api/v1/namespaces/default/pods/mine", node)[0] == 200
    assert get(server, paths, f"/api/v1/pods?fieldSelector=spec.nodeName%3D{NODE}", node)[0] == 200
    status, forbidden = get(server, paths, "/api/v1/nodes/other", node)
    assert status == 403 and forbidden["reason"] == "Forbidden"
    assert f'User "system:node:{NODE}" cannot get resource "nodes"' in forbidden["message"]
    assert get(server, paths, "/api/v1/namespaces/default/pods/theirs", node)[0] == 403
    assert get(server, paths, "/api/v1/pods", node)[0] == 403
    assert get(server, paths, "/api/v1/namespaces/default/pods", node, method="POST", body=POD)[0] == 403
    assert get(server, paths, "/apis/apps/v1/deployments", node)[0] == 403
    for stream in ("exec?command=ls&stdout=true", "attach?stdout=true", "portforward?ports=80"):
        assert get(server, paths, f"/api/v1/namespaces/default/pods/mine/{stream}", node)[0] == 403


def test_certificates_name_every_local_address_and_are_kept_on_a_second_start(tmp_path):
    home = str(tmp_path / "home")
    paths = certificates.ensure_credentials(home, "c1", ("n1",))
    with open(paths.serving_certificate, "rb") as file:
        serving = x509.load_pem_x509_certificate(file.read())
    names = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    hosts = {str(address) for address in names.get_values_for_type(x509.IPAddress)} | set(
        names.get_values_for_type(x509.DNSName))
    assert {"127.0.0.1", "::1", "localhost", socket.gethostname()} <= hosts
    before = {name: open(paths.file(name), "rb").read() for name in os.listdir(paths.directory)}
    certificates.ensure_credentials(home, "c1", ("n1",))
    assert {name: open(paths.file(name), "rb").read() for name in os.listdir(paths.directory)} == before
    assert stat.S_IMODE(os.stat(paths.directory).st_mode) == 0o700
    assert {stat.S_IMODE(os.stat(paths.file(name)).st_mode) for name in before} == {0o600}
    users = {token.user for token in certificates.read_tokens(paths.tokens)}
    assert users == {"admin", "system:node:n1"}


def test_kubeconfig_merge_keeps_other_entries_replaces_ours_and_is_private(tmp_path, paths):
    target = tmp_path / "kube" / "config"
    target.parent.mkdir()
    target.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "prod",
        "clusters": [{"name": "prod", "cluster": {"server": "https://prod"}},
                     {"name": "unit", "cluster": {"server": "https://stale"}}],
        "users": [{"name": "prod", "user": {"token": "p"}}],
        "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "prod"}}]}))
    kubeconfig.merge(str(target), admin_kubeconfig(paths, 1234))
    merged = yaml.safe_load(target.read_text())
    assert merged["current-context"] == "unit"
    assert [cluster["name"] for cluster in merged["clusters"]] == ["prod", "unit"]
    assert merged["clusters"][1]["cluster"]["server"] == "https://127.0.0.1:1234"
    assert [user["name"] for user in merged["users"]] == ["prod", "unit"]
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600


def test_the_user_kubeconfig_is_the_first_of_KUBECONFIG_else_home(tmp_path):
    assert kubeconfig.user_kubeconfig_path({"KUBECONFIG": f"{tmp_path}/a{os.pathsep}{tmp_path}/b"}) == f"{tmp_path}/a"
    assert kubeconfig.user_kubeconfig_path({}).endswith(os.path.join(".kube", "config"))


def test_a_kubeconfig_context_gives_a_working_transport(server, paths):
    transport = kubeconfig.transport_for(admin_kubeconfig(paths, server.port))
    assert transport.create("pods", "default", POD)["metadata"]["name"] == "web"
    stream = transport.watch("pods", "default", resource_version="0")
    try:
        assert stream.next(timeout=5)["object"]["metadata"]["name"] == "web"
    finally:
        stream.close()
    unauthorized = HttpTransport(url=f"https://127.0.0.1:{server.port}", tls=transport.tls)
    with pytest.raises(errors.ApiError) as refused:
        unauthorized.list("pods")
    assert refused.value.code == 401


def test_the_tcp_door_caps_open_connections_and_frees_a_slot_when_one_closes(tmp_path, paths):
    store = Store(":memory:")
    server = ApiHttpServer(Registry(store, FakeClock()), str(tmp_path / "capped.sock"), port=0,
                           tls=tls_config(paths), max_tcp_connections=2)
    server.start()
    try:
        idle = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(2)]
        extra = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        assert extra.recv(1) == b""  # closed at once: no slot
        extra.close()
        idle.pop().close()

        def answered() -> int:
            return get(server, paths, "/api/v1/namespaces")[0]

        # The freed slot is taken by the next client (give the server a moment to notice the close).
        deadline = time.monotonic() + 10
        while True:
            try:
                assert answered() == 401
                break
            except (ssl.SSLError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        for connection in idle:
            connection.close()
    finally:
        server.stop()
        store.close()


def test_a_tls_watch_is_released_when_its_client_hangs_up(server, paths):
    transport = kubeconfig.transport_for(admin_kubeconfig(paths, server.port))
    stream = transport.watch("pods", "default", resource_version="0")
    deadline = time.monotonic() + 10
    while not server._watches and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(server._watches) == 1
    stream.close()
    while server._watches and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not server._watches, "the hang-up detector did not notice the TLS client leave"


def test_clients_outlive_the_server_closing_their_idle_keep_alive_connections(tmp_path, paths):
    store = Store(":memory:")
    server = ApiHttpServer(Registry(store, FakeClock()), str(tmp_path / "idle.sock"), port=0,
                           tls=tls_config(paths), read_timeout=0.3)
    server.start()
    try:
        for transport in (kubeconfig.transport_for(admin_kubeconfig(paths, server.port)),
                          HttpTransport(socket_path=server.socket_path)):
            transport.version()
            deadline = time.monotonic() + 10
            while server._connections and time.monotonic() < deadline:
                time.sleep(0.02)  # until the server has hung up on the idle connection
            assert not server._connections
            assert transport.get("namespaces", None, "default")["metadata"]["name"] == "default"
    finally:
        server.stop()
        store.close()


def test_a_node_may_list_what_its_agent_proxy_and_dns_follow(server, paths):
    node = bearer(paths, certificates.node_user(NODE))
    for path in ("/api/v1/services", "/apis/discovery.k8s.io/v1/endpointslices", "/api/v1/configmaps",
                 "/api/v1/serviceaccounts", "/api/v1/nodes", "/api/v1/persistentvolumeclaims",
                 "/api/v1/persistentvolumes"):
        assert get(server, paths, path, node)[0] == 200, path
    assert get(server, paths, "/api/v1/namespaces/default/services", node, method="POST",
               body={"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                     "spec": {"ports": [{"port": 80}]}})[0] == 403
    assert get(server, paths, "/api/v1/nodes/other", node, method="DELETE")[0] == 403


def test_a_token_added_to_the_file_works_and_a_removed_one_stops_working_without_a_restart(server, paths, tmp_path):
    status, _ = get(server, paths, "/api/v1/nodes", {"Authorization": "Bearer not-yet"})
    assert status == 401
    certificates.ensure_credentials(paths.home, "unit", ("node-9",))
    newcomer = bearer(paths, certificates.node_user("node-9"))
    assert get(server, paths, "/api/v1/nodes", newcomer)[0] == 200
    certificates.remove_token(paths, certificates.node_user("node-9"))
    assert get(server, paths, "/api/v1/nodes", newcomer)[0] == 401


def local_path_volume(name: str, node: str, affinity_node: str | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "annotations": {"local.path.provisioner/selected-node": node}},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "hostPath": {"path": f"/srv/{name}"},
                     "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                         {"key": "kubernetes.io/hostname", "operator": "In",
                          "values": [affinity_node or node]}]}]}}}}


def test_a_node_may_create_and_delete_only_its_own_local_path_volumes(server, paths):
    """The node's local-path provisioner writes PersistentVolumes, as NodeRestriction would let it:
    only volumes named for it and reachable only from it; it deletes only its own."""
    node = bearer(paths, certificates.node_user(NODE))
    status, _ = get(server, paths, "/api/v1/persistentvolumes", node, method="POST", body=local_path_volume("mine", NODE))
    assert status == 201
    for body in (local_path_volume("other", "other"), local_path_volume("sneaky", NODE, affinity_node="other"),
                 {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "plain"},
                  "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                           "hostPath": {"path": "/"}}}):
        status, refused = get(server, paths, "/api/v1/persistentvolumes", node, method="POST", body=body)
        assert status == 403 and "may create only its own local-path volumes" in refused["message"], body
    server.registry.create("persistentvolumes", None, local_path_volume("theirs", "other"))
    assert get(server, paths, "/api/v1/persistentvolumes/theirs", node, method="DELETE")[0] == 403
    assert get(server, paths, "/api/v1/persistentvolumes/mine", node, method="DELETE")[0] == 200
