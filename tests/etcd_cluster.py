"""Real etcd members for tests and benchmarks: 1 or 3 of them on free loopback ports, each with
its own data directory, run as whoever runs the tests (etcd needs no root). Debian's
`etcd-server` provides the binary (install.sh installs it); `ETCD_MISSING` says why etcd tests
skip where it is absent. `stop()` kills every member and removes the data directories.

With `tls=True` the members serve clients and each other over TLS only, and ask every client and
peer for a certificate their CA signed (`--client-cert-auth`, `--peer-client-cert-auth`), as a
production etcd under kube-apiserver does: `EtcdCertificates` makes that CA and the certificates
with the `cryptography` package, in the members' private directory; `client_tls` is what an API
server is given (`--etcd-cafile`, `--etcd-certfile`, `--etcd-keyfile`)."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from minikube_py.store.etcd_endpoints import EtcdTLS

ETCD = shutil.which("etcd")
ETCD_MISSING = "the etcd binary is not installed (Debian's etcd-server; install.sh installs it)"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class EtcdCertificates:
    """A CA of its own and the certificates it signs, as PEM files in `directory`."""

    def __init__(self, directory: str, name: str = "etcd-ca"):
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.certificate = (self._builder(subject, self.key).issuer_name(subject)
                            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                            .sign(self.key, hashes.SHA256()))
        self.ca_file = self._write("ca", self.certificate, self.key)[0]

    @staticmethod
    def _builder(subject: x509.Name, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
        now = datetime.datetime.now(datetime.timezone.utc)
        return (x509.CertificateBuilder().subject_name(subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1)))

    def _write(self, name: str, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[str, str]:
        certificate_file, key_file = (os.path.join(self.directory, f"{name}.{ext}") for ext in ("crt", "key"))
        with open(certificate_file, "wb") as file:
            file.write(certificate.public_bytes(serialization.Encoding.PEM))
        with open(os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as file:
            file.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))
        return certificate_file, key_file

    def issue(self, name: str, server: bool = False, client: bool = False) -> tuple[str, str]:
        """(certificate file, key file) of a leaf for 127.0.0.1 and localhost, serving and/or client."""
        key = ec.generate_private_key(ec.SECP256R1())
        usages = [usage for wanted, usage in ((server, ExtendedKeyUsageOID.SERVER_AUTH),
                                              (client, ExtendedKeyUsageOID.CLIENT_AUTH)) if wanted]
        certificate = (self._builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), key)
                       .issuer_name(self.certificate.subject)
                       .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                       .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
                       .add_extension(x509.SubjectAlternativeName([
                           x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                           critical=False)
                       .sign(self.key, hashes.SHA256()))
        return self._write(name, certificate, key)


class EtcdCluster:
    """`size` etcd members on loopback. `endpoints` are their client host:port, `spec` the
    matching `--store` value."""

    def __init__(self, size: int = 1, name: str = "etcd", quota_bytes: int | None = None,
                 in_memory: bool = True, tls: bool = False):
        if ETCD is None:
            raise RuntimeError(ETCD_MISSING)
        # Tests keep etcd's data on tmpfs, where its fsyncs are free; benchmarks measure a disk.
        parent = "/dev/shm" if in_memory and os.path.isdir("/dev/shm") else None
        self.directory = tempfile.mkdtemp(prefix=f"minikube-py-{name}-", dir=parent)
        self.names = [f"{name}{index}" for index in range(size)]
        self.client_ports = [free_port() for _ in self.names]
        self.peer_ports = [free_port() for _ in self.names]
        self.quota_bytes = quota_bytes
        self.processes: dict[int, subprocess.Popen] = {}
        self.scheme = "https" if tls else "http"
        self.certificates = EtcdCertificates(self.directory) if tls else None
        self.client_tls = EtcdTLS()
        if self.certificates is not None:
            # etcd 3.4's gRPC gateway dials its own server with this certificate: it is a client too.
            self.server_files = self.certificates.issue("server", server=True, client=True)
            self.peer_files = self.certificates.issue("peer", server=True, client=True)
            self.client_tls = EtcdTLS(self.certificates.ca_file, *self.certificates.issue("apiserver", client=True))
        self.initial_cluster = ",".join(f"{member}={self.scheme}://127.0.0.1:{port}"
                                        for member, port in zip(self.names, self.peer_ports, strict=True))
        try:
            for index in range(size):
                self.start_member(index)
            self.wait_ready()
        except BaseException:
            self.stop()
            raise

    @property
    def endpoints(self) -> list[str]:
        prefix = "https://" if self.certificates is not None else ""
        return [f"{prefix}127.0.0.1:{port}" for port in self.client_ports]

    @property
    def spec(self) -> str:
        return "etcd://" + ",".join(self.endpoints)

    @property
    def tls_flags(self) -> tuple[str, ...]:
        """The `start` flags an API server of this etcd needs."""
        if self.certificates is None:
            return ()
        return ("--etcd-cafile", str(self.client_tls.ca_file), "--etcd-certfile", str(self.client_tls.cert_file),
                "--etcd-keyfile", str(self.client_tls.key_file))

    def start_member(self, index: int) -> None:
        client = f"{self.scheme}://127.0.0.1:{self.client_ports[index]}"
        peer = f"{self.scheme}://127.0.0.1:{self.peer_ports[index]}"
        command = [ETCD, "--name", self.names[index], "--data-dir", os.path.join(self.directory, self.names[index]),
                   "--listen-client-urls", client, "--advertise-client-urls", client,
                   "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                   "--initial-cluster", self.initial_cluster, "--initial-cluster-state", "new",
                   "--initial-cluster-token", os.path.basename(self.directory),
                   # Short heartbeats so losing and regaining a leader takes well under a second.
                   "--heartbeat-interval", "50", "--election-timeout", "500"]
        if self.quota_bytes is not None:
            command += ["--quota-backend-bytes", str(self.quota_bytes)]
        if self.certificates is not None:
            ca = self.certificates.ca_file
            command += ["--cert-file", self.server_files[0], "--key-file", self.server_files[1],
                        "--trusted-ca-file", ca, "--client-cert-auth",
                        "--peer-cert-file", self.peer_files[0], "--peer-key-file", self.peer_files[1],
                        "--peer-trusted-ca-file", ca, "--peer-client-cert-auth"]
        log = open(os.path.join(self.directory, f"{self.names[index]}.log"), "ab")
        with log:
            self.processes[index] = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL)

    def wait_ready(self, timeout: float = 30.0) -> None:
        from minikube_py.store.etcd import wait_for_members

        wait_for_members(self.endpoints, timeout, self.client_tls)

    def leader(self) -> int:
        """The index of the member that leads now."""
        from minikube_py.store.etcd_client import EtcdMembers

        for index in self.processes:
            status = EtcdMembers([self.endpoints[index]], timeout=2.0, tls=self.client_tls).call("/maintenance/status", {})
            if status.get("leader") == status["header"]["member_id"]:
                return index
        raise RuntimeError("no etcd member leads")

    def kill_member(self, index: int) -> None:
        process = self.processes.pop(index, None)
        if process is not None:
            process.send_signal(signal.SIGKILL)
            process.wait()

    def log_tail(self, index: int = 0, lines: int = 20) -> str:
        try:
            with open(os.path.join(self.directory, f"{self.names[index]}.log"), "rb") as file:
                return b"\n".join(file.read().splitlines()[-lines:]).decode(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        for index in list(self.processes):
            self.kill_member(index)
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> "EtcdCluster":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def wait_until(condition, timeout: float = 10.0, interval: float = 0.01):
    """The condition's first truthy value within `timeout` seconds, else its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
