"""The Service and configuration commands: describe pages, create configmap|secret, expose, service."""

from __future__ import annotations

import base64
import datetime
import json

import pytest
import yaml

from minikube_py.cli import create, services
from minikube_py.cli.context import CommandError


def web_service(live, service_type: str = "ClusterIP", **port) -> dict:
    return live.registry.create("services", "default", {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"type": service_type, "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": "http", **port}]}})


def endpoint_slice(live, addresses: list[str], ready: bool = True) -> dict:
    return live.registry.create("endpointslices", "default", {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-abcde", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": [address], "conditions": {"ready": ready}, "nodeName": "node1",
                       "targetRef": {"kind": "Pod", "name": f"web-{index}", "namespace": "default"}}
                      for index, address in enumerate(addresses)]})


def lines_of(text: str) -> dict[str, str]:
    """`Key:  value` lines of a describe page, by key (first occurrence)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        if colon and key.strip() and key.strip() not in found:
            found[key.strip()] = value.strip()
    return found


# -- describe ----------------------------------------------------------------------------------


def test_describe_service_shows_each_port_with_its_endpoints(live):
    created = web_service(live, "NodePort")
    endpoint_slice(live, ["10.244.0.5", "10.244.0.6", "10.244.0.7", "10.244.0.8"])
    live.event("web.1", {**created, "kind": "Service"}, "Type", "ClusterIP -> NodePort")
    text = live.run("describe", "svc", "web").out
    fields = lines_of(text)
    assert fields["Name"] == "web" and fields["Selector"] == "app=web" and fields["Type"] == "NodePort"
    assert fields["IP"] == created["spec"]["clusterIP"] and fields["IP Families"] == "IPv4"
    assert fields["Port"].split() == ["http", "80/TCP"] and fields["TargetPort"] == "http/TCP"
    assert fields["NodePort"].split() == ["http", f"{created['spec']['ports'][0]['nodePort']}/TCP"]
    assert fields["Endpoints"] == "10.244.0.5:8080,10.244.0.6:8080,10.244.0.7:8080 + 1 more..."
    assert fields["Session Affinity"] == "None" and fields["External Traffic Policy"] == "Cluster"
    assert "ClusterIP -> NodePort" in text
    # One tabwriter block: every value starts in the same column.
    assert len({line.index(value) for line in text.splitlines()[:6] for value in [line.split()[-1]]}) == 1


def test_describe_service_without_endpoint_slices_says_none_and_skips_unready(live):
    web_service(live)
    assert lines_of(live.run("describe", "service/web").out)["Endpoints"] == "<none>"
    endpoint_slice(live, ["10.244.0.5"], ready=False)
    assert lines_of(live.run("describe", "service/web").out)["Endpoints"] == ""


def test_describe_endpoint_slice_lists_ports_and_endpoints_with_conditions(live):
    endpoint_slice(live, ["10.244.0.5"])
    text = live.run("describe", "endpointslices", "web-abcde").out
    assert "AddressType:  IPv4" in text
    assert [line.split() for line in text.splitlines() if "8080" in line] == [["http", "8080", "TCP"]]
    fields = lines_of(text)
    assert fields["- Addresses"] == "10.244.0.5" and fields["Ready"] == "true"
    assert fields["TargetRef"] == "Pod/web-0" and fields["NodeName"] == "node1" and fields["Zone"] == "<unset>"


def test_describe_endpoints_lists_subsets(live):
    live.registry.create("endpoints", "default", {
        "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"},
        "subsets": [{"addresses": [{"ip": "10.244.0.5"}], "notReadyAddresses": [{"ip": "10.244.0.9"}],
                     "ports": [{"port": 8080, "protocol": "TCP"}]}]})
    text = live.run("describe", "ep", "web").out
    fields = lines_of(text)
    assert fields["Addresses"] == "10.244.0.5" and fields["NotReadyAddresses"] == "10.244.0.9"
    assert ["<unset>", "8080", "TCP"] in [line.split() for line in text.splitlines()]


def test_describe_config_map_prints_values_and_binary_sizes(live):
    live.registry.create("configmaps", "default", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
        "data": {"mode": "fast", "greeting": "hello\nworld"}, "binaryData": {"logo": base64.b64encode(b"\x89PNG").decode()}})
    text = live.run("describe", "cm", "settings").out
    assert "Data\n====\ngreeting:\n----\nhello\nworld\n\nmode:\n----\nfast\n\n\nBinaryData\n====\nlogo: 4 bytes\n" in text
    assert text.rstrip().endswith("Events:  <none>")


def test_describe_secret_prints_sizes_never_values(live):
    live.registry.create("secrets", "default", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"password": "hunter2"}})
    text = live.run("describe", "secret", "db").out
    assert "Type:  Opaque" in text and "password:  7 bytes" in text and "hunter2" not in text


def test_describe_service_account_lists_its_secrets(live):
    live.registry.create("serviceaccounts", "default", {
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "builder"},
        "imagePullSecrets": [{"name": "registry"}], "secrets": [{"name": "a"}, {"name": "b"}]})
    lines = live.run("describe", "sa", "builder").out.splitlines()
    assert "Image pull secrets:  registry" in lines and "Mountable secrets:   a" in lines
    assert "                     b" in lines and "Tokens:              <none>" in lines


# -- get ----------------------------------------------------------------------------------------


def test_get_prints_kubectl_columns_for_the_new_kinds(live):
    web_service(live)
    endpoint_slice(live, ["10.244.0.5"])
    live.run("create", "configmap", "settings", "--from-literal=a=1", "--from-literal=b=2")
    live.run("create", "secret", "generic", "db", "--from-literal=password=x")
    live.registry.create("serviceaccounts", "default", {"apiVersion": "v1", "kind": "ServiceAccount",
                                                        "metadata": {"name": "builder"}})
    headers = {kind: live.run("get", kind).out.splitlines()[0].split()
               for kind in ("svc", "cm", "secrets", "endpointslices", "sa")}
    assert headers == {"svc": ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
                       "cm": ["NAME", "DATA", "AGE"], "secrets": ["NAME", "TYPE", "DATA", "AGE"],
                       "endpointslices": ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"],
                       "sa": ["NAME", "SECRETS", "AGE"]}
    assert live.run("get", "cm", "settings").out.splitlines()[1].split()[:2] == ["settings", "2"]
    assert live.run("get", "secrets", "db").out.splitlines()[1].split()[:3] == ["db", "Opaque", "1"]
    assert live.run("get", "endpointslices").out.splitlines()[1].split()[:4] == ["web-abcde", "IPv4", "8080",
                                                                                 "10.244.0.5"]


# -- create configmap | secret ------------------------------------------------------------------


def test_config_map_from_literals_files_directories_and_env_files(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "index.html").write_text("<h1>hi</h1>\n")
    (tmp_path / "conf" / "logo.png").write_bytes(b"\x89PNG\xff")
    (tmp_path / "conf" / "sub").mkdir()
    (tmp_path / "app.env").write_text("# settings\n\nMODE=fast\n  LEVEL=debug=2\n")
    (tmp_path / "nginx.conf").write_text("worker 1;\n")
    config_map = create.config_map_from_sources(
        "app", None, ["greeting=hello=world"], [str(tmp_path / "conf"), f"main.conf={tmp_path / 'nginx.conf'}"],
        [str(tmp_path / "app.env")])
    assert config_map == {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "creationTimestamp": None},
        "data": {"index.html": "<h1>hi</h1>\n", "main.conf": "worker 1;\n", "greeting": "hello=world",
                 "MODE": "fast", "LEVEL": "debug=2"},
        "binaryData": {"logo.png": base64.b64encode(b"\x89PNG\xff").decode()}}


@pytest.mark.parametrize("literals, message", [
    (["novalue"], "invalid literal source novalue, expected key=value"),
    (["=x"], "invalid literal source =x, expected key=value"),
    (["a b=1"], '"a b" is not a valid key name for a ConfigMap: a valid config key must consist of alphanumeric '
                "characters, '-', '_' or '.'"),
    (["a=1", "a=2"], 'cannot add key "a", another key by that name already exists in Data for ConfigMap "app"'),
])
def test_config_map_sources_are_refused_with_kubectl_messages(literals, message):
    with pytest.raises(CommandError) as caught:
        create.config_map_from_sources("app", None, literals, [], [])
    assert str(caught.value).startswith(message)


def test_a_key_name_for_a_directory_is_refused(tmp_path):
    with pytest.raises(CommandError, match="cannot give a key name for a directory path"):
        create.file_sources(f"key={tmp_path}")


def test_create_configmap_prints_kubectl_line_and_stores_it(live):
    result = live.run("create", "configmap", "settings", "--from-literal=mode=fast")
    assert (result.code, result.out) == (0, "configmap/settings created\n")
    assert live.registry.get("configmaps", "default", "settings")["data"] == {"mode": "fast"}


def test_dry_run_prints_the_manifest_and_creates_nothing(live):
    result = live.run("create", "cm", "settings", "--from-literal=mode=fast", "--dry-run=client", "-o", "yaml")
    assert yaml.safe_load(result.out) == {"apiVersion": "v1", "kind": "ConfigMap", "data": {"mode": "fast"},
                                          "metadata": {"name": "settings", "creationTimestamp": None}}
    assert "creationTimestamp: null" in result.out
    assert live.run("create", "cm", "other", "--from-literal=a=b", "--dry-run").out == \
        "configmap/other created (dry run)\n"
    assert live.registry.list("configmaps", "default")["items"] == []



def test_a_server_dry_run_create_shows_the_object_as_stored_and_stores_nothing(live):
    assert live.run("create", "cm", "settings", "--from-literal=mode=fast", "--dry-run=server").out == \
        "configmap/settings created (server dry run)\n"
    shown = yaml.safe_load(live.run("create", "cm", "settings", "--from-literal=mode=fast", "--dry-run=server",
                                    "-o", "yaml").out)
    assert shown["metadata"]["uid"] and shown["metadata"]["creationTimestamp"]  # as the server would store it
    assert live.registry.list("configmaps", "default")["items"] == []


def test_create_secret_generic_base64_encodes_every_source(live, tmp_path):
    (tmp_path / "key.bin").write_bytes(b"\x00\x01")
    result = live.run("-n", "default", "create", "secret", "generic", "db", "--from-literal=user=admin",
                      f"--from-file={tmp_path / 'key.bin'}")
    assert result.out == "secret/db created\n"
    stored = live.registry.get("secrets", "default", "db")
    assert stored["type"] == "Opaque"
    assert {key: base64.b64decode(value) for key, value in stored["data"].items()} == \
        {"user": b"admin", "key.bin": b"\x00\x01"}


def test_a_secret_over_one_mebibyte_gets_the_api_message(live):
    result = live.run("create", "secret", "generic", "big", f"--from-literal=blob={'x' * (1024 * 1024 + 1)}")
    assert result.code == 1
    assert result.err.strip() == 'The Secret "big" is invalid: data: Too long: must have at most 1048576 bytes'


def self_signed(tmp_path, name: str) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web.example")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                   .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_tls_secret_needs_a_key_that_matches_the_certificate(tmp_path):
    cert, key = self_signed(tmp_path, "a")
    secret = create.tls_secret("web-tls", None, cert, key)
    assert secret["type"] == "kubernetes.io/tls" and set(secret["data"]) == {"tls.crt", "tls.key"}
    _, other_key = self_signed(tmp_path, "b")
    with pytest.raises(CommandError, match="failed to load key pair tls: private key does not match public key"):
        create.tls_secret("web-tls", None, cert, other_key)


def test_docker_registry_secret_holds_docker_logins_config():
    secret = create.docker_registry_secret("pull", None, "registry.example:5000", "ci", "s3cret", "ci@example", [])
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert config == {"auths": {"registry.example:5000": {
        "username": "ci", "password": "s3cret", "email": "ci@example", "auth": base64.b64encode(b"ci:s3cret").decode()}}}
    with pytest.raises(CommandError, match="either --from-file or the combination of --docker-username"):
        create.docker_registry_secret("pull", None, "registry.example", "", "", "", [])


# -- expose --------------------------------------------------------------------------------------


def deployment_with_ports(ports: list[dict]) -> dict:
    return {"metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "web", "ports": ports}]}}}}


def test_expose_deployment_takes_its_selector_labels_and_the_given_ports():
    service = services.exposing_service("deployments", deployment_with_ports([]), None, None, 80, "8080", None,
                                        "NodePort")
    assert service == {"apiVersion": "v1", "kind": "Service",
                       "metadata": {"name": "web", "creationTimestamp": None, "labels": {"app": "web", "tier": "front"}},
                       "spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}],
                                "selector": {"app": "web"}, "type": "NodePort"},
                       "status": {"loadBalancer": {}}}


def test_expose_without_port_takes_the_declared_container_ports():
    one = services.exposing_service("deployments", deployment_with_ports([{"containerPort": 8080}]),
                                    "front", None, None, None, None, None)
    assert one["metadata"]["name"] == "front"
    assert one["spec"]["ports"] == [{"port": 8080, "protocol": "TCP", "targetPort": 8080}]
    two = services.exposing_service("deployments", deployment_with_ports(
        [{"containerPort": 8080}, {"containerPort": 53, "protocol": "UDP"}]), None, None, None, "http", None, None)
    assert two["spec"]["ports"] == [{"port": 8080, "protocol": "TCP", "name": "port-1", "targetPort": "http"},
                                    {"port": 53, "protocol": "UDP", "name": "port-2", "targetPort": "http"}]
    with pytest.raises(CommandError, match="couldn't find port via --port flag or introspection"):
        services.exposing_service("deployments", deployment_with_ports([]), None, None, None, None, None, None)


def test_expose_pod_selects_its_labels_and_needs_some():
    pod = {"metadata": {"name": "solo", "labels": {"run": "solo"}}, "spec": {"containers": []}}
    assert services.exposing_service("pods", pod, None, None, 80, None, None, None)["spec"]["selector"] == {"run": "solo"}
    with pytest.raises(CommandError, match="the pod has no labels and cannot be exposed"):
        services.exposing_service("pods", {"metadata": {"name": "bare"}, "spec": {}}, None, None, 80, None, None, None)


def test_expose_creates_the_service_and_says_exposed(live):
    live.deployment()
    result = live.run("expose", "deployment", "web", "--port=80", "--target-port=8080", "--type=NodePort")
    assert (result.code, result.out) == (0, "service/web exposed\n")
    stored = live.registry.get("services", "default", "web")
    assert stored["spec"]["selector"] == {"app": "web"} and stored["spec"]["ports"][0]["nodePort"] >= 30000
    refused = live.run("expose", "node/node1", "--port=80")
    assert refused.code == 1 and refused.err.strip() == "error: cannot expose a Node"


# -- service --------------------------------------------------------------------------------------


def test_service_url_is_the_node_address_and_node_port(live):
    live.node()
    node_port = web_service(live, "NodePort")["spec"]["ports"][0]["nodePort"]
    assert live.run("service", "web", "--url").out == f"http://192.168.1.5:{node_port}\n"
    table = live.run("service", "web").out.splitlines()
    assert table[1].split("|")[1:-1] == [" NAMESPACE ", " NAME ", " TARGET PORT ", table[1].split("|")[4]]
    assert [cell.strip() for cell in table[3].split("|")[1:-1]] == \
        ["default", "web", "http/80", f"http://192.168.1.5:{node_port}"]


def test_service_refuses_a_cluster_ip_service_with_what_to_do(live):
    live.node()
    web_service(live)
    result = live.run("service", "web", "--url")
    assert result.code == 1 and result.out == ""
    assert result.err.startswith("error: service default/web has no node port: its type is ClusterIP")
    assert "NodePort" in result.err


def test_describe_pod_shows_where_env_values_come_from(live):
    live.registry.create("pods", "default", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "configured"},
        "spec": {"containers": [{
            "name": "main", "image": "busybox", "command": ["sh", "-c", "echo one\necho two"],
            "envFrom": [{"configMapRef": {"name": "settings"}}, {"secretRef": {"name": "db", "optional": True},
                                                                  "prefix": "DB_"}],
            "env": [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
                    {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]}]}})
    lines = live.run("describe", "pod", "configured").out.splitlines()
    assert "      echo one" in lines and "      echo two" in lines  # every line of an argument indented
    assert "    Environment Variables from:" in lines
    assert [line.split() for line in lines if "Optional:" in line][:2] == [
        ["settings", "ConfigMap", "Optional:", "false"], ["db", "Secret", "with", "prefix", "'DB_'", "Optional:", "true"]]
    assert any(line.split() == ["MODE:", "<set", "to", "the", "key", "'mode'", "of", "config", "map", "'settings'>",
                                "Optional:", "false"] for line in lines)
    assert any(line.split() == ["PASSWORD:", "<set", "to", "the", "key", "'password'", "in", "secret", "'db'>",
                                "Optional:", "false"] for line in lines)
