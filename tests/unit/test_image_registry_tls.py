"""registries.yaml's `tls` settings against a real TLS server on 127.0.0.1 with a self-signed
certificate: refused by default, trusted through `ca_file`, accepted unchecked only with
`insecure_skip_verify: true` (a boolean; the string "false" must not turn checking off)."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import ssl
import threading

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from minikube_py.runtime.images.hosts import RegistriesConfigError, RegistryHosts
from minikube_py.runtime.images.registry import RegistryClient, RetryPolicy


class Registry(http.server.BaseHTTPRequestHandler):
    def log_message(self, *arguments) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.end_headers()
        self.wfile.write(b"{}")


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory):
    """(host:port, path of its self-signed certificate)."""
    directory = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "registry.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_file), str(key_file))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}", str(cert_file)
    server.shutdown()
    server.server_close()


def get_v2(host: str, document: dict) -> httpx.Response:
    """GET /v2/ through the client's HTTP client for the registry's https endpoint."""
    client = RegistryClient(RegistryHosts.from_document(document, "registries.yaml"),
                            retry=RetryPolicy(attempts=1, connect_timeout=5, read_timeout=5))
    try:
        endpoint = client.hosts.endpoints(host)[0]
        assert endpoint.url == f"https://{host}"
        return client.http(endpoint).get(f"{endpoint.url}/v2/")
    finally:
        client.close()


def test_a_self_signed_registry_is_refused_without_tls_settings(tls_registry):
    host, _ = tls_registry
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        get_v2(host, {})
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        get_v2(host, {"configs": {host: {"tls": {"insecure_skip_verify": False}}}})


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_insecure_skip_verify_accepts_the_certificate_unchecked(tls_registry):
    host, _ = tls_registry
    response = get_v2(host, {"configs": {host: {"tls": {"insecure_skip_verify": True}}}})
    assert response.status_code == 200 and response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_insecure_skip_verify_applies_only_to_its_own_host(tls_registry):
    host, _ = tls_registry
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        get_v2(host, {"configs": {"other.test:5000": {"tls": {"insecure_skip_verify": True}}}})


def test_a_ca_file_trusts_the_registrys_own_certificate(tls_registry):
    host, cert_file = tls_registry
    assert get_v2(host, {"configs": {host: {"tls": {"ca_file": cert_file}}}}).status_code == 200


@pytest.mark.parametrize("tls, message", [
    ({"insecure_skip_verify": "false"}, r"configs.r.tls.insecure_skip_verify: must be true or false, not 'false'"),
    ({"insecure_skip_verify": 1}, r"configs.r.tls.insecure_skip_verify: must be true or false, not 1"),
    ({"ca_file": ["a.pem"]}, r"configs.r.tls.ca_file: must be a file path"),
])
def test_tls_settings_of_the_wrong_type_are_refused_with_the_field(tls, message):
    with pytest.raises(RegistriesConfigError, match=message):
        RegistryHosts.from_document({"configs": {"r": {"tls": tls}}}, "registries.yaml")
