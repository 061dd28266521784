"""The cluster's certificates and tokens: who the TCP listener is, and who may talk to it.

`start` makes them once per cluster home with the `cryptography` package: a cluster CA (kept, so
kubeconfigs stay valid across restarts), a serving certificate for the API (SANs 127.0.0.1, ::1,
localhost and the host name; re-issued when the host name changes or it nears expiry), an admin
client certificate (CN admin, O system:masters, as minikube's `minikube-user`) and bearer tokens
in Kubernetes' static token file format (`token,user,uid,"group1,group2"`): one for the admin and
one per node agent (`system:node:NAME`, group `system:nodes`). Every file is 0600 in `pki/`, a
0700 directory of the 0700 cluster home.
"""

from __future__ import annotations

import csv
import datetime
import ipaddress
import os
import secrets
import socket
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ADMIN_USER = "admin"
ADMIN_GROUPS = ("system:masters", "system:authenticated")
NODE_GROUPS = ("system:nodes", "system:authenticated")
CA_DAYS = 3650
LEAF_DAYS = 365
RENEW_BEFORE = datetime.timedelta(days=30)


def node_user(node_name: str) -> str:
    return f"system:node:{node_name}"


@dataclass(frozen=True)
class Paths:
    """Where one cluster home keeps its credentials."""

    home: str

    @property
    def directory(self) -> str:
        return os.path.join(self.home, "pki")

    def file(self, name: str) -> str:
        return os.path.join(self.directory, name)

    @property
    def ca_certificate(self) -> str:
        return self.file("ca.crt")

    @property
    def ca_key(self) -> str:
        return self.file("ca.key")

    @property
    def serving_certificate(self) -> str:
        return self.file("apiserver.crt")

    @property
    def serving_key(self) -> str:
        return self.file("apiserver.key")

    @property
    def admin_certificate(self) -> str:
        return self.file("admin.crt")

    @property
    def admin_key(self) -> str:
        return self.file("admin.key")

    @property
    def tokens(self) -> str:
        return self.file("tokens.csv")


def _write_private(path: str, data: bytes) -> None:
    """Write a file only its owner can read, replacing any old one atomically."""
    temporary = f"{path}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _certificate_pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str, organizations: tuple[str, ...] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in organizations]
    return x509.Name(attributes + [x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def make_ca(cluster_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    name = _name(f"minikube-py-{cluster_name}-ca")
    now = _now()
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256()))
    return certificate, key


def issue(ca_certificate: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, common_name: str,
          organizations: tuple[str, ...] = (), hosts: tuple[str, ...] = (),
          client: bool = False) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A leaf certificate signed by the CA: for serving `hosts`, or (`client`) for a user."""
    key = _new_key()
    now = _now()
    builder = (
        x509.CertificateBuilder().subject_name(_name(common_name, organizations))
        .issuer_name(ca_certificate.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=False,
                                     crl_sign=False, content_commitment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH if client
                                              else ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    if hosts:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def serving_hosts(extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The serving certificate's names: loopback, this host's name, and `extra` (the addresses and
    names pods reach the API by: the bridge address, the `kubernetes` Service's IP and names)."""
    hosts = ["127.0.0.1", "::1", "localhost"]
    hostname = socket.gethostname()
    for host in (hostname, *extra):
        if host and host not in hosts:
            hosts.append(host)
    return tuple(hosts)


def _load_certificate(path: str) -> x509.Certificate | None:
    try:
        with open(path, "rb") as file:
            return x509.load_pem_x509_certificate(file.read())
    except (FileNotFoundError, ValueError):
        return None


def _hosts_of(certificate: x509.Certificate) -> set[str]:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return ({str(address) for address in names.get_values_for_type(x509.IPAddress)}
            | set(names.get_values_for_type(x509.DNSName)))


def _fresh(certificate: x509.Certificate | None) -> bool:
    return certificate is not None and certificate.not_valid_after_utc - _now() > RENEW_BEFORE


@dataclass(frozen=True)
class Token:
    token: str
    user: str
    uid: str
    groups: tuple[str, ...]


def read_tokens(path: str) -> list[Token]:
    """The static token file; a missing file means no tokens."""
    try:
        with open(path, newline="") as file:
            rows = list(csv.reader(file))
    except FileNotFoundError:
        return []
    tokens = []
    for row in rows:
        if len(row) >= 3 and row[0]:
            groups = tuple(group for group in (row[3] if len(row) > 3 else "").split(",") if group)
            tokens.append(Token(row[0], row[1], row[2], groups))
    return tokens


def _write_tokens(path: str, tokens: list[Token]) -> None:
    lines = []
    for token in tokens:
        groups = ",".join(token.groups)
        lines.append(f'{token.token},{token.user},{token.uid},"{groups}"\n')
    _write_private(path, "".join(lines).encode())


def ensure_credentials(home: str, cluster_name: str, node_names: tuple[str, ...],
                       extra_hosts: tuple[str, ...] = ()) -> Paths:
    """Make whatever of the cluster's credentials is missing or stale; keep the rest."""
    paths = Paths(home)
    os.makedirs(paths.directory, mode=0o700, exist_ok=True)
    os.chmod(paths.directory, 0o700)
    ca_certificate = _load_certificate(paths.ca_certificate)
    ca_key = None
    if ca_certificate is not None and os.path.exists(paths.ca_key):
        with open(paths.ca_key, "rb") as file:
            loaded = serialization.load_pem_private_key(file.read(), password=None)
        ca_key = loaded if isinstance(loaded, ec.EllipticCurvePrivateKey) else None
    renew_all = ca_certificate is None or ca_key is None or not _fresh(ca_certificate)
    if renew_all:
        ca_certificate, ca_key = make_ca(cluster_name)
        _write_private(paths.ca_key, _key_pem(ca_key))
        _write_private(paths.ca_certificate, _certificate_pem(ca_certificate))
    assert ca_certificate is not None and ca_key is not None
    serving = _load_certificate(paths.serving_certificate)
    hosts = serving_hosts(extra_hosts)
    if renew_all or not _fresh(serving) or _hosts_of(serving) != set(hosts):  # type: ignore[arg-type]
        certificate, key = issue(ca_certificate, ca_key, "minikube-py-apiserver", hosts=hosts)
        _write_private(paths.serving_key, _key_pem(key))
        _write_private(paths.serving_certificate, _certificate_pem(certificate))
    if renew_all or not _fresh(_load_certificate(paths.admin_certificate)):
        certificate, key = issue(ca_certificate, ca_key, ADMIN_USER, organizations=("system:masters",), client=True)
        _write_private(paths.admin_key, _key_pem(key))
        _write_private(paths.admin_certificate, _certificate_pem(certificate))
    tokens = read_tokens(paths.tokens)
    wanted = [(ADMIN_USER, ADMIN_GROUPS)] + [(node_user(name), NODE_GROUPS) for name in node_names]
    known = {token.user for token in tokens}
    missing = [Token(secrets.token_urlsafe(32), user, user, groups) for user, groups in wanted if user not in known]
    if missing or not os.path.exists(paths.tokens):
        _write_tokens(paths.tokens, tokens + missing)
    return paths


def token_of(paths: Paths, user: str) -> str:
    for token in read_tokens(paths.tokens):
        if token.user == user:
            return token.token
    raise LookupError(f"no token for {user} in {paths.tokens}; run 'minikube-py start' to make one")


def remove_token(paths: Paths, user: str) -> None:
    """Take `user`'s token out of the token file (`node rm`): the API refuses it from then on."""
    tokens = read_tokens(paths.tokens)
    kept = [token for token in tokens if token.user != user]
    if len(kept) != len(tokens):
        _write_tokens(paths.tokens, kept)


def write_self_signed_serving(certificate_path: str, key_path: str, common_name: str, hosts: tuple[str, ...]) -> None:
    """A serving certificate for `hosts` signed by a CA of its own made for it alone, as a kubelet
    makes its own when none is given (its clients do not verify it)."""
    authority, authority_key = make_ca(f"{common_name}-self-signed")
    certificate, key = issue(authority, authority_key, common_name, hosts=hosts)
    _write_private(key_path, _key_pem(key))
    _write_private(certificate_path, _certificate_pem(certificate))
